/*
 * The ping module: ICMP (or ICMPv6) echo to the member's address. A raw
 * socket when the process may open one (root or CAP_NET_RAW), else an
 * unprivileged ICMP datagram socket (Linux, within net.ipv4.ping_group_range).
 * Requests go out every PingInterval; replies are awaited until PingTimeout
 * after the last request, never past the check's deadline.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_modules.h"
#include "ibp/check_rules.h"
#include "ibp/clock.h"
#include "ibp/icmp_echo.h"

#define PING_MAX 100

static int open_socket(bool v6, bool *raw)
{
    int proto = v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
    int fam = v6 ? AF_INET6 : AF_INET;
    int fd = socket(fam, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
    if (fd >= 0) {
        *raw = true;
        return fd;
    }
    *raw = false;
    return socket(fam, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
}

static double ms_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1000.0 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

void ibp_check_run_ping(const ibp_check_target *t, const ibp_check_env *env, int64_t deadline_ms,
                        ibp_check_outcome *out)
{
    (void)env;
    const ibp_check_params *p = &t->params;
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    if (t->ipv6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        sl = sizeof *a;
        if (inet_pton(AF_INET6, t->addr, &a->sin6_addr) != 1) {
            ibp_check_fail(out, "ping %s: not an IPv6 address", t->addr);
            return;
        }
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        sl = sizeof *a;
        if (inet_pton(AF_INET, t->addr, &a->sin_addr) != 1) {
            ibp_check_fail(out, "ping %s: not an IPv4 address", t->addr);
            return;
        }
    }
    bool raw = false;
    int fd = open_socket(t->ipv6, &raw);
    if (fd < 0) {
        ibp_check_fail(out,
                       "ping %s: cannot open an ICMP socket (%s; needs CAP_NET_RAW or "
                       "net.ipv4.ping_group_range)",
                       t->addr, strerror(errno));
        return;
    }
    int ttl = (int)p->ping_ttl;
    if (t->ipv6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl);
    else
        setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
    uint16_t id = 0;
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
        id = (uint16_t)getpid();
    size_t count = (size_t)(p->ping_count > PING_MAX ? PING_MAX : p->ping_count);
    struct timespec sent_at[PING_MAX];
    bool got[PING_MAX] = {0};
    double rtt[PING_MAX];
    size_t received = 0, sent = 0;
    uint8_t pkt[1500], in[2048];
    int64_t next_send = ibp_clock_mono_ms(), wait_until = next_send;
    char send_err[128] = "";
    for (;;) {
        int64_t now = ibp_clock_mono_ms();
        if (now >= deadline_ms || received == count || (sent == count && now >= wait_until))
            break;
        if (sent < count && now >= next_send) {
            size_t len = ibp_icmp_echo_build(t->ipv6, id, (uint16_t)sent, (size_t)p->ping_size, pkt,
                                             sizeof pkt);
            clock_gettime(CLOCK_MONOTONIC, &sent_at[sent]);
            if (sendto(fd, pkt, len, 0, (struct sockaddr *)&ss, sl) < 0 && !send_err[0])
                snprintf(send_err, sizeof send_err, "%s", strerror(errno));
            sent++;
            next_send = now + p->ping_interval_ms;
            wait_until = now + p->ping_timeout_ms;
            continue;
        }
        int64_t until = sent < count ? next_send : wait_until;
        if (until > deadline_ms)
            until = deadline_ms;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t left = until - now;
        if (poll(&pfd, 1, (int)(left > 0 ? left : 0)) <= 0)
            continue;
        for (;;) {
            ssize_t n = recv(fd, in, sizeof in, 0);
            if (n <= 0)
                break;
            uint16_t seq;
            if (!ibp_icmp_echo_reply(t->ipv6, raw && !t->ipv6, in, (size_t)n, raw, id, &seq) ||
                seq >= sent || got[seq])
                continue;
            struct timespec now_ts;
            clock_gettime(CLOCK_MONOTONIC, &now_ts);
            got[seq] = true;
            rtt[received++] = ms_between(&sent_at[seq], &now_ts);
        }
    }
    close(fd);
    ibp_ping_stats s;
    ibp_ping_stats_make(rtt, received, sent, &s);
    out->up = ibp_ping_judge(p, &s, out->error, sizeof out->error);
    if (!out->up) {
        char e[sizeof out->error];
        snprintf(e, sizeof e, "%s", out->error);
        snprintf(out->error, sizeof out->error, "%.300s (%.64s%s%.100s)", e, t->addr,
                 send_err[0] ? ", send: " : "", send_err);
    }
    out->data_json = ibp_ping_data(&s);
}
