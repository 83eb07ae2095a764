/*
 * Integration: the ping module inside a network namespace this test creates
 * (unshare(CLONE_NEWNET) in a child process: only a loopback interface, no
 * route anywhere else). 127.0.0.1 and ::1 answer; 192.0.2.1 (TEST-NET-1) is
 * unreachable, so the site is down with a reason. Then, unprivileged (uid
 * nobody, no CAP_NET_RAW), the module falls back to an ICMP datagram socket:
 * it answers once this namespace's net.ipv4.ping_group_range allows the
 * group, and says why it cannot ping otherwise. Needs root (or
 * CAP_SYS_ADMIN) for the namespace: otherwise it skips with exit code 77
 * and says why.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include "ibp/check_run.h"

#define SKIP 77

static int lo_up(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    int rc = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 ? 0 : -1;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (rc == 0)
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int ping(const char *addr, bool want_up, const char *want_error)
{
    ibp_check_target t = {0};
    ibp_err err = {0};
    if (ibp_check_params_parse("ping", "{\"PingCount\": 3, \"PingTimeout\": 500}", &t.params,
                               &err) != IBP_OK) {
        fprintf(stderr, "params: %s\n", err.msg);
        return 1;
    }
    t.type = IBP_CHECK_SITE;
    t.module = IBP_CHECK_MODULE_PING;
    t.check = "ping";
    t.member = "Alpha";
    t.domain = t.endpoint = t.host = t.network_name = t.options = "";
    t.path = "/";
    t.addr = (char *)addr;
    t.ipv6 = strchr(addr, ':') != NULL;
    t.timeout_ms = 3000;
    ibp_check_outcome o;
    ibp_check_run(&t, NULL, &o);
    printf("ping %s: up=%d error=\"%s\" data=%s\n", addr, o.up, o.error, o.data_json);
    int rc = o.up == want_up && (!want_error || strstr(o.error, want_error)) ? 0 : 1;
    if (rc)
        fprintf(stderr, "FAIL: ping %s: want up=%d%s%s\n", addr, want_up,
                want_error ? " with " : "", want_error ? want_error : "");
    ibp_check_outcome_clear(&o);
    ibp_check_params_free(&t.params);
    return rc;
}

/* In a child: sets this namespace's ping_group_range, drops root, pings 127.0.0.1. */
static int unprivileged(const char *range, bool want_up, const char *want_error)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ping_group_range", "w");
    if (!f || fputs(range, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "cannot set ping_group_range in the namespace\n");
        return 1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
            fprintf(stderr, "cannot drop root: %s\n", strerror(errno));
            _exit(1);
        }
        printf("as uid 65534, ping_group_range %s:\n", range);
        int rc = ping("127.0.0.1", want_up, want_error);
        fflush(stdout);
        _exit(rc);
    }
    int status = 0;
    return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) ? WEXITSTATUS(status)
                                                                           : 1;
}

int main(void)
{
    if (geteuid() != 0) {
        printf("SKIP: creating a network namespace needs root (CAP_SYS_ADMIN)\n");
        return SKIP;
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (unshare(CLONE_NEWNET) != 0) {
            printf("SKIP: unshare(CLONE_NEWNET): %s\n", strerror(errno));
            fflush(stdout);
            _exit(SKIP);
        }
        if (lo_up() != 0) {
            fprintf(stderr, "cannot bring lo up in the namespace: %s\n", strerror(errno));
            _exit(1);
        }
        int fails = ping("127.0.0.1", true, NULL);
        fails += unprivileged("1 0", false, "cannot open an ICMP socket");
        fails += unprivileged("0 2147483647", true, NULL);
        fails += ping("192.0.2.1", false, "no reply to 3 echo requests");
        int fd6 = socket(AF_INET6, SOCK_DGRAM, 0);
        if (fd6 >= 0) {
            close(fd6);
            fails += ping("::1", true, NULL);
            fails += ping("2001:db8::1", false, "no reply");
        }
        fflush(stdout);
        _exit(fails ? 1 : 0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        fprintf(stderr, "the namespace child failed\n");
        return 1;
    }
    return WEXITSTATUS(status);
}
