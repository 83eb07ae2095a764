/*
 * Benchmark: the checker's wss checks through the scheduler against a
 * Substrate double over TLS on loopback (a process of its own,
 * ibp-member-double), beside a minimal client doing the same work in a loop.
 *
 *   BENCH raw_client_checks_per_s      one thread, OpenSSL directly, its context (and CA)
 *                                      made once: connect, TLS with SNI and verification,
 *                                      upgrade, the five calls, close
 *   BENCH checker_checks_per_s         2000 wss targets through ibp_checker (default 32 in
 *                                      flight), one round
 *   RATIO checker_vs_raw_client        the two above (goal >= 0.5)
 *   BENCH checker_cpu_ms_per_check     this process's CPU time per check (the double runs
 *                                      in its own process)
 *   BENCH checker_cpu_ms_per_check_system_cas  the same trusting the system's CA bundle (and
 *                                      the test CA): loaded once per checker, shared
 *   BENCH raw_client_cpu_ms_per_check
 *   BENCH round_128_s                  the 2000 healthy targets with 128 in flight
 *   BENCH hang_round_s                 2000 targets of which 5 % (100) hang after the
 *                                      upgrade, Timeout 5 s, 128 in flight
 *   RATIO hang_round_excess_vs_timeout (hang round - healthy round) / Timeout: what the
 *                                      hanging targets add to a round, in Timeouts (goal
 *                                      <= 1.1: each holds one slot for its Timeout and
 *                                      delays nothing else)
 * The hanging targets are spread through the round (every 20th), so the last of them
 * starts near the round's end: a round can not end before that one's Timeout.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "ibp/checker.h"
#include "ibp/log.h"
#include "ibp/network.h"
#include "ibp/store.h"
#include "ibp/ws_frame.h"

#define TARGETS 2000
#define HOST "rpc.bench.example"
#define RAW_SECONDS 3.0

static char dir[256];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Starts ibp-member-double with extra arguments; returns its pid and port. */
static pid_t start_double(const char *extra, unsigned *port)
{
    char cmd[2048];
    snprintf(
        cmd, sizeof cmd,
        "exec '%s' --kind substrate --cert '%s/ok.pem' --key '%s/ok.key' --listen 127.0.0.1 %s",
        IBP_DOUBLE_BIN, dir, dir, extra);
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    if (!f || fscanf(f, "PORT %u", port) != 1) {
        fprintf(stderr, "the double did not start\n");
        return -1;
    }
    fclose(f);
    return pid;
}

/* ---- the minimal client ----------------------------------------------------- */

static int raw_read_msg(SSL *ssl, uint8_t *buf, size_t cap, size_t *have)
{
    for (;;) {
        ibp_ws_header h;
        char why[64];
        int hl = ibp_ws_header_read(buf, *have, &h, why, sizeof why);
        if (hl > 0 && *have >= (size_t)hl + h.length) {
            size_t used = (size_t)hl + h.length;
            memmove(buf, buf + used, *have - used);
            *have -= used;
            return 0;
        }
        if (hl < 0 || *have == cap)
            return -1;
        int n = SSL_read(ssl, buf + *have, (int)(cap - *have));
        if (n <= 0)
            return -1;
        *have += (size_t)n;
    }
}

static int raw_check(SSL_CTX *ctx, unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1, rc = -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SSL *ssl = NULL;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        goto out;
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, HOST);
    SSL_set1_host(ssl, HOST);
    if (SSL_connect(ssl) != 1)
        goto out;
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET / HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\nConnection: "
                     "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     HOST, port);
    if (SSL_write(ssl, req, n) != n)
        goto out;
    uint8_t buf[16384];
    size_t have = 0, end = 0;
    while (!(end = ibp_ws_head_end((char *)buf, have))) {
        int r = SSL_read(ssl, buf + have, (int)(sizeof buf - have));
        if (r <= 0)
            goto out;
        have += (size_t)r;
    }
    memmove(buf, buf + end, have - end);
    have -= end;
    static const char *const calls[] = {
        "chain_getBlockHash\",\"params\":[]", "chain_getBlockHash\",\"params\":[0]",
        "system_chain\",\"params\":[]", "system_health\",\"params\":[]"};
    for (int i = 0; i < 4; i++) {
        char msg[160];
        int ml = snprintf(msg, sizeof msg, "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"%s}", i + 1,
                          calls[i]);
        uint8_t frame[256], mask[4] = {1, 2, 3, 4};
        size_t hl = ibp_ws_header_write(IBP_WS_TEXT, (uint64_t)ml, mask, frame);
        memcpy(frame + hl, msg, (size_t)ml);
        ibp_ws_mask(frame + hl, (size_t)ml, mask, 0);
        if (SSL_write(ssl, frame, (int)(hl + (size_t)ml)) <= 0 ||
            raw_read_msg(ssl, buf, sizeof buf, &have) != 0)
            goto out;
    }
    rc = 0;
out:
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    close(fd);
    return rc;
}

/* ---- the checker -------------------------------------------------------------- */

static ibp_network *network(unsigned port_ok, unsigned port_hang, size_t hang_every, int timeout_s)
{
    size_t cap = TARGETS * 300 + 4096;
    char *m = malloc(cap), *checks = malloc(cap);
    size_t n = (size_t)snprintf(m, cap, "{");
    for (size_t i = 0; i < TARGETS; i++)
        n += (size_t)snprintf(m + n, cap - n,
                              "%s\"M%zu\": {\"Details\": {\"Name\": \"M%zu\"}, \"Membership\": "
                              "{\"MemberLevel\": 5}, \"Service\": {\"Active\": 1, "
                              "\"ServiceIPv4\": \"127.0.0.1\"}, \"ServiceAssignments\": "
                              "{\"P\": [\"Paseo\"]}}",
                              i ? ", " : "", i, i);
    snprintf(m + n, cap - n, "}");
    n = (size_t)snprintf(checks, cap,
                         "{\"wss\": {\"CheckType\": \"endpoint\", \"Timeout\": %d, "
                         "\"MinimumInterval\": 3600, \"ExtraOptions\": {\"port\": %u, \"ports\": {",
                         timeout_s, port_ok);
    bool first = true;
    for (size_t i = 0; hang_every && i < TARGETS; i += hang_every) {
        n += (size_t)snprintf(checks + n, cap - n, "%s\"M%zu\": %u", first ? "" : ", ", i,
                              port_hang);
        first = false;
    }
    snprintf(checks + n, cap - n, "}}}}");
    const char *svc = "{\"Paseo\": {\"Configuration\": {\"Name\": \"Paseo\", \"ServiceType\": "
                      "\"RPC\", \"Active\": 1, \"LevelRequired\": 1, \"NetworkName\": \"Paseo "
                      "Testnet\"}, \"Providers\": {\"I\": {\"RpcUrls\": [\"wss://" HOST "/\"]}}}}";
    ibp_network *net = NULL;
    ibp_err err = {0};
    if (ibp_network_load_buffers(m, strlen(m), svc, strlen(svc), checks, strlen(checks), &net,
                                 &err) != IBP_OK)
        fprintf(stderr, "network: %s\n", err.msg);
    free(m);
    free(checks);
    return net;
}

/* One round of every target through the checker; returns its wall time. */
static double checker_round(ibp_network *net, size_t in_flight, const char *ca_file, double *cpu,
                            size_t *up)
{
    ibp_store *store = NULL;
    ibp_store_new(NULL, &store);
    ibp_checker_opts o;
    ibp_checker_opts_init(&o);
    o.network = net;
    o.store = store;
    o.max_in_flight = in_flight;
    o.retries = 0;
    o.ca_file = ca_file;
    ibp_checker *c = NULL;
    ibp_err err = {0};
    double c0 = cpu_s(), t0 = now_s();
    if (ibp_checker_start(&o, &c, &err) != IBP_OK) {
        fprintf(stderr, "checker: %s\n", err.msg);
        exit(1);
    }
    bool trace = getenv("IBP_BENCH_TRACE") != NULL;
    double last = t0;
    while (ibp_checker_runs(c) < TARGETS) {
        usleep(2000);
        if (trace && now_s() - last > 0.5) {
            ibp_checker_stats st;
            ibp_checker_stats_get(c, &st);
            printf("  t=%.1f runs=%" PRIu64 " failed=%" PRIu64 " in_flight=%" PRIu64
                   " overdue=%" PRIu64 "\n",
                   now_s() - t0, st.runs, st.failed, st.in_flight, st.overdue);
            last = now_s();
        }
    }
    double t = now_s() - t0;
    *cpu = cpu_s() - c0;
    ibp_checker_stats st;
    ibp_checker_stats_get(c, &st);
    *up = (size_t)(st.runs - st.failed);
    ibp_checker_stop(c);
    ibp_store_free(store);
    return t;
}

int main(void)
{
    ibp_log_set_level(IBP_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof dir, "/tmp/ibp-checker-bench.XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "bash '%s/tests/doubles/make-certs.sh' '%s' %s", IBP_SOURCE_DIR, dir,
             HOST);
    if (system(cmd) != 0)
        return 1;
    unsigned port = 0, hang_port = 0;
    pid_t dbl = start_double("", &port);
    pid_t hang = start_double("--hang", &hang_port);
    if (dbl < 0 || hang < 0)
        return 1;

    /* The minimal client. */
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char ca[300];
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    SSL_CTX_load_verify_locations(ctx, ca, NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    size_t raw = 0, raw_fail = 0;
    double c0 = cpu_s(), t0 = now_s();
    while (now_s() - t0 < RAW_SECONDS) {
        if (raw_check(ctx, port) == 0)
            raw++;
        else
            raw_fail++;
    }
    double raw_t = now_s() - t0, raw_cpu = cpu_s() - c0;
    SSL_CTX_free(ctx);
    double raw_rate = (double)raw / raw_t;
    printf("BENCH raw_client_checks_per_s %.0f checks/s (%zu in %.2f s, %zu failed)\n", raw_rate,
           raw, raw_t, raw_fail);
    printf("BENCH raw_client_cpu_ms_per_check %.3f ms\n", raw ? 1000 * raw_cpu / (double)raw : 0);

    ibp_network *net = network(port, 0, 0, 5);
    double cpu = 0;
    size_t up = 0;
    double t = checker_round(net, IBP_CHECKER_MAX_IN_FLIGHT_DEFAULT, ca, &cpu, &up);
    double rate = TARGETS / t;
    printf("BENCH checker_checks_per_s %.0f checks/s (%d targets in %.2f s, %zu up)\n", rate,
           TARGETS, t, up);
    printf("BENCH checker_cpu_ms_per_check %.3f ms\n", 1000 * cpu / TARGETS);
    printf("RATIO checker_vs_raw_client %.2f\n", rate / raw_rate);
    /* With the system's CA bundle (plus the test CA), as on a real monitor: it is loaded once
     * per checker, not once per connection. */
    char bundle[400];
    snprintf(bundle, sizeof bundle, "%s/bundle.pem", dir);
    snprintf(cmd, sizeof cmd, "cat '%s' /etc/ssl/certs/ca-certificates.crt > '%s' 2>/dev/null", ca,
             bundle);
    if (system(cmd) == 0) {
        t = checker_round(net, IBP_CHECKER_MAX_IN_FLIGHT_DEFAULT, bundle, &cpu, &up);
        printf("BENCH checker_cpu_ms_per_check_system_cas %.3f ms (%.0f checks/s, %zu up)\n",
               1000 * cpu / TARGETS, TARGETS / t, up);
    }
    ibp_network_free(net);

    net = network(port, 0, 0, 5);
    double healthy = checker_round(net, 128, ca, &cpu, &up);
    printf("BENCH round_128_s %.2f s (%d targets, 128 in flight, %zu up)\n", healthy, TARGETS, up);
    ibp_network_free(net);
    net = network(port, hang_port, 20, 5); /* every 20th: 5 % */
    t = checker_round(net, 128, ca, &cpu, &up);
    printf("BENCH hang_round_s %.2f s (%d targets, %d hanging, Timeout 5 s, 128 in flight, %zu "
           "up)\n",
           t, TARGETS, TARGETS / 20, up);
    printf("RATIO hang_round_excess_vs_timeout %.2f\n", (t - healthy) / 5.0);
    ibp_network_free(net);

    kill(dbl, SIGTERM);
    kill(hang, SIGTERM);
    waitpid(dbl, NULL, 0);
    waitpid(hang, NULL, 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
