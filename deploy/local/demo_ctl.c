/*
 * demo-ctl: a small client of ibp-node's control socket (ibp/control.h) for
 * the local cluster (deploy/local-cluster.sh).
 *
 *   demo-ctl --socket S [--wait SECONDS] 'JSON' ['JSON'...]
 *       sends each request line and prints each answer; exit 0 when every
 *       answer has "ok":true. With --wait, retries connecting (and the first
 *       request, until it answers ok) for that long: a readiness probe.
 *
 *   demo-ctl --socket S --hits N --members FILE --services FILE [--interval-ms MS]
 *       DNS hits without DNS (the local cluster's demo sends real queries
 *       through PowerDNS instead, deploy/local/demo-queries.sh): every
 *       interval (default 1000 ms), N times:
 *       picks a domain of the network and a client address (in the networks
 *       of tests/data/mmdb/make-test-mmdb.pl: DE, FR, NL, SE and unknown),
 *       asks the node which members are online for the domain (member_online)
 *       and counts a dns_hit for one of them (round robin). Runs until SIGTERM
 *       or SIGINT; errors are printed and it keeps going.
 *
 * Exit codes: 0 ok, 1 an answer was not ok or the socket failed, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ibp/network.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

typedef struct conn {
    int fd;
    FILE *in;
} conn;

static bool conn_open(conn *c, const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path)
        return false;
    strcpy(a.sun_path, path);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return false;
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(c->fd);
        c->fd = -1;
        return false;
    }
    int dup_fd = dup(c->fd);
    c->in = dup_fd >= 0 ? fdopen(dup_fd, "r") : NULL;
    if (!c->in) {
        if (dup_fd >= 0)
            close(dup_fd);
        close(c->fd);
        c->fd = -1;
        return false;
    }
    return true;
}

static void conn_close(conn *c)
{
    if (c->in)
        fclose(c->in);
    if (c->fd >= 0)
        close(c->fd);
    c->in = NULL;
    c->fd = -1;
}

/* Sends one line, reads the answer (malloc'd, caller frees); NULL on failure. */
static char *request(conn *c, const char *line)
{
    size_t len = strlen(line);
    const char *p = line;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return NULL;
        p += n;
        len -= (size_t)n;
    }
    if (send(c->fd, "\n", 1, MSG_NOSIGNAL) != 1)
        return NULL;
    char *ans = NULL;
    size_t cap = 0;
    ssize_t n = getline(&ans, &cap, c->in);
    if (n <= 0) {
        free(ans);
        return NULL;
    }
    if (ans[n - 1] == '\n')
        ans[n - 1] = '\0';
    return ans;
}

static bool answer_ok(const char *ans, json_t **out)
{
    json_t *j = json_loads(ans, 0, NULL);
    bool ok = j && json_is_true(json_object_get(j, "ok"));
    if (out)
        *out = j;
    else
        json_decref(j);
    return ok;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stop)
        ;
}

static int run_requests(const char *sock, long wait_s, char **lines, int n)
{
    conn c = {.fd = -1};
    int rc = 0;
    long tries = wait_s * 10;
    for (int i = 0; i < n; i++) {
        char *ans = NULL;
        for (;;) {
            if (c.fd < 0 && !conn_open(&c, sock)) {
                ans = NULL;
            } else {
                ans = request(&c, lines[i]);
                if (!ans)
                    conn_close(&c);
            }
            bool ok = ans && answer_ok(ans, NULL);
            if (ok || i > 0 || tries-- <= 0 || stop)
                break;
            free(ans);
            ans = NULL;
            sleep_ms(100);
        }
        if (!ans) {
            fprintf(stderr, "demo-ctl: %s: %s\n", sock, c.fd < 0 ? strerror(errno) : "no answer");
            conn_close(&c);
            return 1;
        }
        printf("%s\n", ans);
        if (!answer_ok(ans, NULL))
            rc = 1;
        free(ans);
    }
    conn_close(&c);
    return rc;
}

/* A client address in one of the test MaxMind DB networks (or outside them). */
static void client_ip(unsigned r, char *buf, size_t cap, bool *v6)
{
    unsigned host = 1 + (r >> 8) % 250;
    switch (r % 6) {
    case 0:
    case 1:
        snprintf(buf, cap, "192.0.2.%u", host); /* DE, AS64500 */
        *v6 = false;
        break;
    case 2:
        snprintf(buf, cap, "203.0.113.%u", host % 120 + 1); /* FR */
        *v6 = false;
        break;
    case 3:
        snprintf(buf, cap, "2001:db8:1::%x", host); /* NL, AS64502 */
        *v6 = true;
        break;
    case 4:
        snprintf(buf, cap, "2001:db8:2::%x", host); /* SE */
        *v6 = true;
        break;
    default:
        snprintf(buf, cap, "198.51.100.%u", host); /* unknown country, AS64501 */
        *v6 = false;
        break;
    }
}

static int run_hits(const char *sock, long hits, long interval_ms, const char *members,
                    const char *services)
{
    ibp_network *net = NULL;
    ibp_err err = {0};
    if (ibp_network_load(members, services, NULL, &net, &err) != IBP_OK) {
        fprintf(stderr, "demo-ctl: %s\n", err.msg);
        return 2;
    }
    size_t nd = ibp_network_domain_count(net);
    if (nd == 0) {
        fprintf(stderr, "demo-ctl: the network has no domains\n");
        ibp_network_free(net);
        return 2;
    }
    conn c = {.fd = -1};
    unsigned seed = (unsigned)time(NULL), rr = 0;
    uint64_t sent = 0, failed = 0;
    time_t last_report = time(NULL);
    while (!stop) {
        if (c.fd < 0 && !conn_open(&c, sock)) {
            sleep_ms(interval_ms);
            continue;
        }
        for (long h = 0; h < hits && !stop && c.fd >= 0; h++) {
            unsigned r = (unsigned)rand_r(&seed);
            const ibp_network_domain *d = ibp_network_domain_at(net, r % nd);
            char ip[64];
            bool v6;
            client_ip((unsigned)rand_r(&seed), ip, sizeof ip, &v6);
            const char *online[64];
            size_t n_online = 0;
            for (size_t m = 0; m < ibp_network_member_count(net) && n_online < 64; m++) {
                const ibp_network_member *mem = ibp_network_member_at(net, m);
                if (!mem->active || !ibp_network_member_serves_domain(net, mem, d->name))
                    continue;
                json_t *q = json_pack("{s:s, s:s, s:s, s:b}", "cmd", "member_online", "domain",
                                      d->name, "member", mem->name, "ipv6", v6);
                char *line = q ? json_dumps(q, JSON_COMPACT) : NULL;
                json_decref(q);
                char *ans = line ? request(&c, line) : NULL;
                free(line);
                json_t *j = NULL;
                if (!ans) {
                    conn_close(&c);
                    break;
                }
                if (answer_ok(ans, &j) && json_is_true(json_object_get(j, "online")))
                    online[n_online++] = mem->name;
                json_decref(j);
                free(ans);
            }
            if (c.fd < 0 || n_online == 0)
                continue;
            json_t *q =
                json_pack("{s:s, s:b, s:s, s:s, s:s}", "cmd", "dns_hit", "ipv6", v6, "client_ip",
                          ip, "domain", d->name, "member", online[rr++ % n_online]);
            char *line = q ? json_dumps(q, JSON_COMPACT) : NULL;
            json_decref(q);
            char *ans = line ? request(&c, line) : NULL;
            free(line);
            if (!ans) {
                conn_close(&c);
                failed++;
                break;
            }
            if (answer_ok(ans, NULL)) {
                sent++;
            } else {
                failed++;
                if (failed < 5)
                    fprintf(stderr, "demo-ctl: dns_hit: %s\n", ans);
            }
            free(ans);
        }
        if (time(NULL) - last_report >= 60) {
            printf("demo-ctl: hits sent=%llu failed=%llu\n", (unsigned long long)sent,
                   (unsigned long long)failed);
            fflush(stdout);
            last_report = time(NULL);
        }
        sleep_ms(interval_ms);
    }
    conn_close(&c);
    ibp_network_free(net);
    printf("demo-ctl: stopped; hits sent=%llu failed=%llu\n", (unsigned long long)sent,
           (unsigned long long)failed);
    return 0;
}

int main(int argc, char **argv)
{
    const char *sock = NULL, *members = NULL, *services = NULL;
    long wait_s = 0, hits = 0, interval_ms = 1000;
    static const struct option opts[] = {
        {"socket", required_argument, 0, 's'},  {"wait", required_argument, 0, 'w'},
        {"hits", required_argument, 0, 'n'},    {"interval-ms", required_argument, 0, 'i'},
        {"members", required_argument, 0, 'm'}, {"services", required_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            sock = optarg;
            break;
        case 'w':
            wait_s = strtol(optarg, NULL, 10);
            break;
        case 'n':
            hits = strtol(optarg, NULL, 10);
            break;
        case 'i':
            interval_ms = strtol(optarg, NULL, 10);
            break;
        case 'm':
            members = optarg;
            break;
        case 'v':
            services = optarg;
            break;
        case 'h':
            printf("usage: demo-ctl --socket S [--wait SECONDS] 'JSON'...\n"
                   "       demo-ctl --socket S --hits N --members FILE --services FILE "
                   "[--interval-ms MS]\n");
            return 0;
        default:
            return 2;
        }
    }
    if (!sock || wait_s < 0 || interval_ms < 1) {
        fprintf(stderr, "demo-ctl: --socket is required (see --help)\n");
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (hits > 0) {
        if (!members || !services || optind != argc) {
            fprintf(stderr, "demo-ctl: --hits needs --members and --services\n");
            return 2;
        }
        return run_hits(sock, hits, interval_ms, members, services);
    }
    if (optind == argc) {
        fprintf(stderr, "demo-ctl: no request given\n");
        return 2;
    }
    return run_requests(sock, wait_s, argv + optind, argc - optind);
}
