/*
 * Benchmark: answering DNS through PowerDNS with the dns role's remote backend.
 *
 * One run, the same PowerDNS settings for every server (deploy/pdns/pdns.conf
 * rendered by deploy/local/pdns.sh: caches as shipped, zone cache on, the
 * shipped thread counts), dnsperf on loopback with an ECS subnet in every
 * query (so each query needs a geo answer), the same query mix:
 *   BENCH dns_qps / dns_lat_*_ms            PowerDNS + this backend (unix socket)
 *   BENCH fixed_qps / fixed_lat_*_ms        PowerDNS + a fixed-answer backend written
 *                                           here, over the same unix connector: the
 *                                           connector's floor
 *   RATIO dns_vs_fixed_backend              dns_qps / fixed_qps (goal >= 0.8)
 *   BENCH dns_http_qps, RATIO unix_vs_http  this backend over the HTTP connector
 *   BENCH bind_qps                          PowerDNS with the bind backend serving an
 *                                           equivalent static zone (context: packet cache)
 *   BENCH backend_lookups_per_s_1t          the backend alone (request parsing, zone,
 *                                           geo, selection, hit, answer) on one thread
 *   BENCH member_online_per_s_1t            the official store's member-online queries
 *   RATIO backend_vs_member_online
 * Latencies are dnsperf's average and, from its per-query lines, p50/p99.
 * The dns and fixed runs alternate for IBP_DNS_BENCH_ROUNDS rounds (default
 * 3) of IBP_DNS_BENCH_SECONDS each (default 5) and the median round is
 * printed, so a load change on a shared machine hits both alike.
 *
 * The backends run in this process (the dns role's library, as ibp-node runs
 * it: zones, selector, City DB, usage with hits into a sink that drops them);
 * pdns_server and dnsperf are children.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ibp/dns_connector.h"
#include "ibp/dns_service.h"
#include "ibp/geo.h"
#include "ibp/log.h"
#include "ibp/usage.h"

#define HOST "rpc.ibp.test"
#define MEMBERS 12

static char dir[256];
static int seconds = 5, rounds = 3;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "dns_bench: %s\n", what);
    exit(1);
}

static int sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sh(char **out, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    if (!p)
        die("popen");
    size_t cap = 1 << 16, len = 0, n;
    char *buf = malloc(cap);
    while (buf && (n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (len + 1 == cap && !(buf = realloc(buf, cap *= 2)))
            die("out of memory");
    }
    if (!buf)
        die("out of memory");
    buf[len] = '\0';
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        die(path);
}

static unsigned free_port(void)
{
    char *out;
    if (sh(&out, "%s", IBP_FREEPORT_BIN) != 0)
        die("ibp-test-freeport");
    unsigned p = (unsigned)strtoul(out, NULL, 10);
    free(out);
    return p;
}

/* ---- the fixed-answer backend: the connector's floor ---------------------------------- */

static void fixed_handler(void *user, const char *req, size_t len, ibp_dns_buf *out)
{
    (void)user;
    (void)len;
    ibp_dns_buf_reset(out);
    if (strstr(req, "\"initialize\""))
        ibp_dns_buf_puts(out, "{\"result\":true}");
    else if (strstr(req, "\"getAllDomains\""))
        ibp_dns_buf_puts(out, "{\"result\":[{\"id\":1,\"zone\":\"ibp.test.\",\"masters\":[],"
                              "\"notified_serial\":1,\"serial\":1,\"last_check\":0,"
                              "\"kind\":\"native\"}]}");
    else if (strstr(req, "\"SOA\"") || strstr(req, "\"qname\": \"ibp.test.\""))
        ibp_dns_buf_puts(out, "{\"result\":[{\"qtype\":\"SOA\",\"qname\":\"ibp.test.\","
                              "\"content\":\"ns1.ibp.test. hostmaster.ibp.test. 1 10800 3600 "
                              "604800 60\",\"ttl\":3600,\"auth\":true,\"domain_id\":1}]}");
    else if (strstr(req, "\"ANY\"") && strstr(req, "\"" HOST "."))
        ibp_dns_buf_puts(out, "{\"result\":[{\"qtype\":\"A\",\"qname\":\"" HOST ".\","
                              "\"content\":\"10.0.0.1\",\"ttl\":30,\"auth\":true,"
                              "\"domain_id\":1,\"scopeMask\":24}]}");
    else
        ibp_dns_buf_puts(out, "{\"result\":[]}");
}

/* ---- usage into a sink that drops batches ------------------------------------------------ */

static ibp_status drop_deliver(void *ctx, const Ibp__V1__HitBatch *batch, const uint8_t *packed,
                               size_t len, ibp_err *err)
{
    (void)ctx;
    (void)batch;
    (void)packed;
    (void)len;
    (void)err;
    return IBP_OK;
}

/* ---- the network -------------------------------------------------------------------------- */

static void write_network(void)
{
    char members[16384];
    size_t n = 0;
    n += (size_t)snprintf(members + n, sizeof members - n, "{");
    for (int i = 0; i < MEMBERS; i++)
        n += (size_t)snprintf(
            members + n, sizeof members - n,
            "%s\"Member %d\": {\"Details\": {\"Name\": \"Member %d\"}, \"Membership\": "
            "{\"MemberLevel\": 5}, \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"10.0.0.%d\", "
            "\"ServiceIPv6\": \"fd00::%d\"}, \"ServiceAssignments\": {\"Polkadot\": "
            "[\"Polkadot\"]}, \"Location\": {\"Latitude\": %d, \"Longitude\": %d}}",
            i ? ", " : "", i, i, i + 1, i + 1, (i * 23) % 120 - 60, (i * 67) % 360 - 180);
    snprintf(members + n, sizeof members - n, "}");
    write_file("members.json", members);
    write_file("services.json",
               "{\"Polkadot\": {\"Configuration\": {\"Name\": \"Polkadot\", \"ServiceType\": "
               "\"RPC\", \"Active\": 1, \"LevelRequired\": 3}, \"Providers\": {\"Ibp\": "
               "{\"RpcUrls\": [\"wss://" HOST "/polkadot\"]}}}}");
    write_file("static.json",
               "[{\"qname\": \"ibp.test\", \"qtype\": \"NS\", \"content\": \"ns1.ibp.test.\"},"
               " {\"qname\": \"ns1.ibp.test\", \"qtype\": \"A\", \"content\": \"192.0.2.53\"}]");
    /* The bind backend's equivalent zone: the same names, the host with a fixed A. */
    write_file("ibp.test.zone",
               "$TTL 3600\n"
               "@ IN SOA ns1.ibp.test. hostmaster.ibp.test. 1 10800 3600 604800 60\n"
               "@ IN NS ns1.ibp.test.\n"
               "ns1 IN A 192.0.2.53\n"
               "rpc 30 IN A 10.0.0.1\n");
    char named[512];
    snprintf(named, sizeof named,
             "zone \"ibp.test\" { type master; file \"%s/ibp.test.zone\"; };\n", dir);
    write_file("named.conf", named);
    write_file("queries.txt", HOST " A\n");
}

/* ---- PowerDNS and dnsperf ----------------------------------------------------------------- */

typedef struct result {
    double qps, avg_ms, p50_ms, p99_ms;
    long lost;
} result;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Starts pdns_server in <dir>/<name> for conn (the bind backend when conn is NULL); its port. */
static unsigned start_pdns(const char *name, const char *conn)
{
    char pdir[512];
    unsigned port = free_port();
    snprintf(pdir, sizeof pdir, "%s/%s", dir, name);
    if (sh(NULL, "bash '%s/deploy/local/pdns.sh' render '%s' %u '%s'", IBP_SOURCE_DIR, pdir, port,
           conn ? conn : "unix:path=/nonexistent") != 0)
        die("pdns.sh render");
    if (!conn) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "sed -i -e 's|^launch=.*|launch=bind|' -e '/^remote-connection-string=/d' "
                 "'%s/pdns.conf' && echo 'bind-config=%s/named.conf' >> '%s/pdns.conf'",
                 pdir, dir, pdir);
        if (sh(NULL, "%s", cmd) != 0)
            die("bind config");
    }
    if (sh(NULL, "bash '%s/deploy/local/pdns.sh' start '%s'", IBP_SOURCE_DIR, pdir) != 0)
        die("pdns_server did not start (see its pdns.log)");
    /* ECS 11.0.0.0/24 (a located network of the test City DB): option 8, family 1, /24. */
    sh(NULL,
       "dnsperf -s 127.0.0.1 -p %u -d '%s/queries.txt' -l 1 -c 4 -q 64 -E 8:00011800"
       "0b0000 > /dev/null 2>&1",
       port, dir); /* warm-up */
    return port;
}

static void stop_pdns(const char *name)
{
    sh(NULL, "bash '%s/deploy/local/pdns.sh' stop '%s/%s'", IBP_SOURCE_DIR, dir, name);
}

/* One dnsperf run against port. */
static result run_dnsperf(unsigned port)
{
    result r = {0};
    char *out = NULL;
    int rc = sh(&out,
                "dnsperf -s 127.0.0.1 -p %u -d '%s/queries.txt' -l %d -c 8 -q 128 -v "
                "-E 8:000118000b0000 2>&1",
                port, dir, seconds);
    if (rc != 0)
        die("dnsperf failed");
    const char *q = strstr(out, "Queries per second:");
    const char *a = strstr(out, "Average Latency (s):");
    const char *l = strstr(out, "Queries lost:");
    if (!q || !a)
        die("dnsperf printed no statistics");
    r.qps = strtod(q + strlen("Queries per second:"), NULL);
    r.avg_ms = strtod(a + strlen("Average Latency (s):"), NULL) * 1000;
    if (l)
        r.lost = strtol(l + strlen("Queries lost:"), NULL, 10);
    /* Per-query lines: "> NOERROR rpc.ibp.test A 0.000123". */
    size_t cap = 1 << 20, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    for (char *line = strtok(out, "\n"); line && lat; line = strtok(NULL, "\n")) {
        if (line[0] != '>' || n == cap)
            continue;
        const char *sp = strrchr(line, ' ');
        if (sp)
            lat[n++] = strtod(sp + 1, NULL) * 1000;
    }
    if (lat && n > 0) {
        qsort(lat, n, sizeof *lat, cmp_double);
        r.p50_ms = lat[n / 2];
        r.p99_ms = lat[n * 99 / 100];
    }
    free(lat);
    free(out);
    return r;
}

/* The run with the median queries/s of n. */
static result median_run(result *runs, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && runs[j].qps < runs[j - 1].qps; j--) {
            result t = runs[j];
            runs[j] = runs[j - 1];
            runs[j - 1] = t;
        }
    return runs[n / 2];
}

static void print_result(const char *name, const result *r)
{
    printf("BENCH %s_qps %.0f queries/s\n", name, r->qps);
    printf("BENCH %s_lat_avg_ms %.3f ms\n", name, r->avg_ms);
    printf("BENCH %s_lat_p50_ms %.3f ms\n", name, r->p50_ms);
    printf("BENCH %s_lat_p99_ms %.3f ms\n", name, r->p99_ms);
    if (r->lost)
        printf("BENCH %s_lost %ld queries\n", name, r->lost);
    fflush(stdout);
}

/* ---- the backend alone -------------------------------------------------------------------- */

static double backend_alone(ibp_dns_backend *b)
{
    static const char req[] =
        "{\"method\": \"lookup\", \"parameters\": {\"local\": \"127.0.0.1\", \"qname\": "
        "\"" HOST ".\", \"qtype\": \"ANY\", \"real-remote\": \"11.0.%d.0/24\", \"remote\": "
        "\"127.0.0.1\", \"zone-id\": 1}}";
    char reqs[64][256];
    for (int i = 0; i < 64; i++)
        snprintf(reqs[i], sizeof reqs[i], req, i);
    ibp_dns_buf out = {0};
    long n = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 1000; i++, n++)
            ibp_dns_backend_handle(b, reqs[n & 63], strlen(reqs[n & 63]), &out);
        t = now_s();
    } while (t - t0 < 2.0);
    ibp_dns_buf_free(&out);
    return (double)n / (t - t0);
}

static double member_online_alone(ibp_store *store)
{
    char names[MEMBERS][32];
    for (int i = 0; i < MEMBERS; i++)
        snprintf(names[i], sizeof names[i], "Member %d", i);
    long n = 0, online = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 1000; i++, n++)
            online += ibp_store_member_online(store, HOST, names[n % MEMBERS], n & 1);
        t = now_s();
    } while (t - t0 < 2.0);
    if (online == 0)
        die("no member online");
    return (double)n / (t - t0);
}

int main(void)
{
    ibp_err err = {0};
    const char *s = getenv("IBP_DNS_BENCH_SECONDS");
    if (s && atoi(s) > 0)
        seconds = atoi(s);
    s = getenv("IBP_DNS_BENCH_ROUNDS");
    if (s && atoi(s) > 0 && atoi(s) <= 9)
        rounds = atoi(s);
    ibp_log_set_level(IBP_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof dir, "%s/ibp-dns-bench.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        die("mkdtemp");
    if (sh(NULL, "command -v pdns_server && command -v dnsperf") != 0)
        die("needs pdns_server and dnsperf (deploy/ensure-deps.sh)");
    write_network();

    char mp[512], sp[512];
    snprintf(mp, sizeof mp, "%s/members.json", dir);
    snprintf(sp, sizeof sp, "%s/services.json", dir);
    ibp_network *net = NULL;
    ibp_store *store = NULL;
    if (ibp_network_load(mp, sp, NULL, &net, &err) != IBP_OK ||
        ibp_store_new(NULL, &store) != IBP_OK)
        die(err.msg);
    ibp_geo_opts go;
    ibp_geo_opts_init(&go);
    go.city_db = IBP_DNS_MMDB_DIR "/dns-city.mmdb";
    ibp_geo *geo = NULL;
    if (ibp_geo_open(&go, &geo, &err) != IBP_OK)
        die(err.msg);
    ibp_usage_sink sink = {.deliver = drop_deliver};
    ibp_usage_opts uo;
    ibp_usage_opts_init(&uo);
    char ud[512];
    snprintf(ud, sizeof ud, "%s/usage", dir);
    mkdir(ud, 0700);
    uo.node_id = "bench";
    uo.work_dir = ud;
    uo.geo = geo;
    uo.sink = &sink;
    uo.background = true;
    ibp_usage *usage = NULL;
    if (ibp_usage_open(&uo, &usage, &err) != IBP_OK)
        die(err.msg);

    char sock[512], fsock[512], stat_path[512];
    snprintf(sock, sizeof sock, "%s/dns-backend.sock", dir);
    snprintf(fsock, sizeof fsock, "%s/fixed.sock", dir);
    snprintf(stat_path, sizeof stat_path, "%s/static.json", dir);
    ibp_dns_service_opts so;
    ibp_dns_service_opts_init(&so);
    so.network = net;
    so.store = store;
    so.usage = usage;
    so.city_db = go.city_db;
    so.static_records_file = stat_path;
    so.unix_socket = sock;
    so.http_port = free_port();
    ibp_dns_service *svc = NULL;
    if (ibp_dns_service_start(&so, &svc, &err) != IBP_OK)
        die(err.msg);
    ibp_dns_connector_opts co;
    ibp_dns_connector_opts_init(&co);
    co.handler = fixed_handler;
    co.unix_path = fsock;
    ibp_dns_unix *fixed = NULL;
    if (ibp_dns_unix_start(&co, &fixed, &err) != IBP_OK)
        die(err.msg);

    char conn[600];
    printf("dns_bench: dnsperf %d s per run, %d rounds (dns and fixed alternate), 8 clients, "
           "ECS 11.0.0.0/24, query %s A; figures are the median round\n",
           seconds, rounds, HOST);
    snprintf(conn, sizeof conn, "unix:path=%s", sock);
    unsigned p_dns = start_pdns("dns", conn);
    snprintf(conn, sizeof conn, "unix:path=%s", fsock);
    unsigned p_fixed = start_pdns("fixed", conn);
    result dr[9], fr[9];
    for (int i = 0; i < rounds; i++) {
        if (i % 2 == 0) {
            dr[i] = run_dnsperf(p_dns);
            fr[i] = run_dnsperf(p_fixed);
        } else {
            fr[i] = run_dnsperf(p_fixed);
            dr[i] = run_dnsperf(p_dns);
        }
        printf("dns_bench: round %d dns %.0f q/s fixed %.0f q/s\n", i + 1, dr[i].qps, fr[i].qps);
        fflush(stdout);
    }
    stop_pdns("fixed");
    result dns = median_run(dr, rounds), fx = median_run(fr, rounds);
    snprintf(conn, sizeof conn, "http:url=http://127.0.0.1:%u/dns,post=1,post_json=1",
             ibp_dns_service_http_port(svc));
    unsigned p_http = start_pdns("dns_http", conn);
    result http = run_dnsperf(p_http);
    stop_pdns("dns_http");
    unsigned p_bind = start_pdns("bind", NULL);
    result bind = run_dnsperf(p_bind);
    stop_pdns("bind");
    result dns2 = run_dnsperf(p_dns); /* beside HTTP and bind, measured at the same time */
    stop_pdns("dns");
    print_result("dns", &dns);
    print_result("fixed", &fx);
    printf("RATIO dns_vs_fixed_backend %.2f\n", fx.qps > 0 ? dns.qps / fx.qps : 0);
    print_result("dns_http", &http);
    printf("BENCH dns_unix_beside_http_qps %.0f queries/s\n", dns2.qps);
    printf("RATIO unix_vs_http %.2f\n", http.qps > 0 ? dns2.qps / http.qps : 0);
    print_result("bind", &bind);
    printf("RATIO dns_vs_bind %.2f\n", bind.qps > 0 ? dns2.qps / bind.qps : 0);

    double bl = backend_alone(ibp_dns_service_backend(svc));
    double mo = member_online_alone(store);
    printf("BENCH backend_lookups_per_s_1t %.0f lookups/s\n", bl);
    printf("BENCH member_online_per_s_1t %.0f queries/s\n", mo);
    printf("RATIO backend_vs_member_online %.3f\n", bl / mo);
    ibp_dns_backend_stats bs;
    ibp_dns_backend_stats_get(ibp_dns_service_backend(svc), &bs);
    printf("dns_bench: backend lookups=%" PRIu64 " hits=%" PRIu64 " rejected=%" PRIu64 "\n",
           bs.lookups, bs.hits, bs.rejected[1] + bs.rejected[2] + bs.rejected[3] + bs.rejected[4]);

    ibp_dns_unix_stop(fixed);
    ibp_dns_service_stop(svc);
    ibp_usage_close(usage, &err);
    ibp_geo_close(geo);
    ibp_store_free(store);
    ibp_network_free(net);
    sh(NULL, "rm -rf '%s'", dir);
    return 0;
}
