/*
 * Benchmark: counting DNS hits (ibp_usage_record_dns_hit with City + ASN lookups).
 *
 * Prints:
 *   BENCH raw_lookups_per_s        inet_pton + MMDB_lookup_sockaddr in the City and the
 *                                  ASN DB, per address: the floor any hit pays
 *   BENCH hits_per_s_1t            record_dns_hit on one thread
 *   BENCH hits_per_s_2t            record_dns_hit on two threads (total)
 *   BENCH hits_per_s_global_mutex_2t  the same calls behind one process-wide mutex
 *   RATIO hit_vs_raw_lookup        hits_per_s_1t / raw_lookups_per_s   (target >= 0.6)
 *   RATIO hit_2t_vs_1t             hits_per_s_2t / hits_per_s_1t       (target >= 1.7)
 *   RATIO hit_vs_global_mutex_2t   hits_per_s_2t / hits_per_s_global_mutex_2t
 *   BENCH raw_lookups_per_s_2t, RATIO raw_2t_vs_1t: how the raw lookups themselves scale
 *                                  on this machine (a shared or throttled host shows here)
 * all measured in the same run over the same addresses: the generated DBs of
 * tests/data (12288 networks, 65536 client addresses, IPv4 and IPv6), keys
 * spread over 8 domains and 4 members. Every figure is the median of 5 rounds;
 * each hit run starts after a warm-up pass that created its keys (the steady
 * state between two flushes).
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "ibp/log.h"
#include "ibp/usage.h"

#define MMDB(name) IBP_TEST_MMDB_DIR "/" name
#define NIPS 65536
#define ROUNDS 5
#define PASSES 12 /* passes over the addresses per timed run */

static char ips[NIPS][48];
static const char *domains[8] = {
    "rpc.ibp.network",  "rpc.dotters.network", "sys.ibp.network", "sys.dotters.network",
    "boot.ibp.network", "a.example",           "b.example",       "c.example"};
static const char *members[4] = {"Stake Plus", "Dotters", "Gatotech", ""};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double v[ROUNDS])
{
    qsort(v, ROUNDS, sizeof v[0], cmp_double);
    return v[ROUNDS / 2];
}

/* ---- raw libmaxminddb ---------------------------------------------------------------------- */

static MMDB_s city_db, asn_db;

typedef struct raw_run {
    int offset;
    uint64_t found;
} raw_run;

static void *raw_main(void *p)
{
    raw_run *r = p;
    for (int pass = 0; pass < PASSES; pass++) {
        for (int k = 0; k < NIPS; k++) {
            int i = (k + r->offset) % NIPS;
            union {
                struct sockaddr sa;
                struct sockaddr_in in4;
                struct sockaddr_in6 in6;
            } a;
            memset(&a, 0, sizeof a);
            if (strchr(ips[i], ':')) {
                a.in6.sin6_family = AF_INET6;
                inet_pton(AF_INET6, ips[i], &a.in6.sin6_addr);
            } else {
                a.in4.sin_family = AF_INET;
                inet_pton(AF_INET, ips[i], &a.in4.sin_addr);
            }
            int e1, e2;
            MMDB_lookup_result_s r1 = MMDB_lookup_sockaddr(&city_db, &a.sa, &e1);
            MMDB_lookup_result_s r2 = MMDB_lookup_sockaddr(&asn_db, &a.sa, &e2);
            r->found += r1.found_entry + r2.found_entry;
        }
    }
    return NULL;
}

/* Addresses looked up (City + ASN) per second by nthreads threads. */
static double raw_rate(int nthreads)
{
    pthread_t t[2];
    raw_run r[2];
    double t0 = now_s();
    for (int i = 0; i < nthreads; i++) {
        r[i] = (raw_run){i * (NIPS / 2), 0};
        pthread_create(&t[i], NULL, raw_main, &r[i]);
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    double dt = now_s() - t0;
    if (r[0].found == 0) {
        fprintf(stderr, "raw lookups found nothing\n");
        exit(1);
    }
    return (double)nthreads * PASSES * NIPS / dt;
}

/* ---- record_dns_hit ------------------------------------------------------------------------ */

typedef struct run {
    ibp_usage *u;
    pthread_mutex_t *global; /* NULL: no process-wide lock */
    pthread_barrier_t *start;
    int offset;
    int passes;
    uint64_t failed;
} run;

static void one_pass(run *r)
{
    for (int k = 0; k < NIPS; k++) {
        int i = (k + r->offset) % NIPS;
        if (r->global)
            pthread_mutex_lock(r->global);
        ibp_status st =
            ibp_usage_record_dns_hit(r->u, i & 1, ips[i], domains[i & 7], members[(i >> 3) & 3]);
        if (r->global)
            pthread_mutex_unlock(r->global);
        r->failed += st != IBP_OK;
    }
}

static void *record_main(void *p)
{
    run *r = p;
    one_pass(r); /* warm-up: this thread's shard gets its keys */
    pthread_barrier_wait(r->start);
    for (int pass = 0; pass < r->passes; pass++)
        one_pass(r);
    return NULL;
}

/* Hits per second of nthreads recording PASSES passes each, after their warm-up pass. */
static double hit_rate(ibp_usage *u, int nthreads, pthread_mutex_t *global)
{
    pthread_t t[2];
    run r[2];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)nthreads + 1);
    for (int i = 0; i < nthreads; i++) {
        /* Behind the global mutex it is slow: fewer passes keep the run short. */
        r[i] = (run){u, global, &start, i * (NIPS / 2), global ? PASSES / 4 : PASSES, 0};
        pthread_create(&t[i], NULL, record_main, &r[i]);
    }
    pthread_barrier_wait(&start);
    double t0 = now_s();
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    double dt = now_s() - t0;
    pthread_barrier_destroy(&start);
    for (int i = 0; i < nthreads; i++)
        if (r[i].failed) {
            fprintf(stderr, "%" PRIu64 " hits failed\n", r[i].failed);
            exit(1);
        }
    return (double)nthreads * r[0].passes * NIPS / dt;
}

static int null_deliver_calls;
static ibp_status null_deliver(void *ctx, const Ibp__V1__HitBatch *b, const uint8_t *p, size_t n,
                               ibp_err *err)
{
    (void)ctx;
    (void)b;
    (void)p;
    (void)n;
    (void)err;
    null_deliver_calls++;
    return IBP_OK;
}

int main(void)
{
    ibp_log_set_level(IBP_LOG_OFF);
    FILE *fp = fopen(MMDB("bench-ips.txt"), "r");
    if (!fp) {
        perror(MMDB("bench-ips.txt"));
        return 1;
    }
    for (int i = 0; i < NIPS; i++) {
        if (!fgets(ips[i], sizeof ips[i], fp)) {
            fprintf(stderr, "bench-ips.txt: too short\n");
            return 1;
        }
        ips[i][strcspn(ips[i], "\n")] = '\0';
    }
    fclose(fp);
    if (MMDB_open(MMDB("bench-city.mmdb"), MMDB_MODE_MMAP, &city_db) != MMDB_SUCCESS ||
        MMDB_open(MMDB("bench-asn.mmdb"), MMDB_MODE_MMAP, &asn_db) != MMDB_SUCCESS) {
        fprintf(stderr, "cannot open the bench DBs in %s\n", IBP_TEST_MMDB_DIR);
        return 1;
    }
    ibp_geo_opts go;
    ibp_geo *geo = NULL;
    ibp_err err;
    ibp_geo_opts_init(&go);
    go.city_db = MMDB("bench-city.mmdb");
    go.asn_db = MMDB("bench-asn.mmdb");
    if (ibp_geo_open(&go, &geo, &err) != IBP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    char dir[] = "/tmp/ibp-usage-bench.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    ibp_usage_sink sink = {null_deliver, NULL, NULL};
    ibp_usage_opts o;
    ibp_usage_opts_init(&o);
    o.node_id = "bench";
    o.work_dir = dir;
    o.geo = geo;
    o.sink = &sink;

    /* The figures of one round are taken back to back, and the median of the
     * rounds is reported, so that a noisy machine skews all of them alike. */
    double raw1[ROUNDS], raw2[ROUNDS], one[ROUNDS], two[ROUNDS], glob[ROUNDS];
    pthread_mutex_t global = PTHREAD_MUTEX_INITIALIZER;
    raw_rate(1); /* warm the page cache, the CPU caches and the clock frequency */
    for (int round = 0; round < ROUNDS; round++) {
        ibp_usage *u = NULL;
        if (ibp_usage_open(&o, &u, &err) != IBP_OK) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        raw1[round] = raw_rate(1);
        one[round] = hit_rate(u, 1, NULL);
        ibp_usage_flush(u, NULL);
        raw2[round] = raw_rate(2);
        two[round] = hit_rate(u, 2, NULL);
        ibp_usage_flush(u, NULL);
        glob[round] = hit_rate(u, 2, &global);
        ibp_usage_close(u, NULL);
    }
    double r1 = median(raw1), r2 = median(raw2), h1 = median(one), h2 = median(two),
           g2 = median(glob);
    printf("BENCH raw_lookups_per_s %.0f lookups/s\n", r1);
    printf("BENCH raw_lookups_per_s_2t %.0f lookups/s\n", r2);
    printf("BENCH hits_per_s_1t %.0f hits/s\n", h1);
    printf("BENCH hits_per_s_2t %.0f hits/s\n", h2);
    printf("BENCH hits_per_s_global_mutex_2t %.0f hits/s\n", g2);
    printf("RATIO hit_vs_raw_lookup %.2f\n", h1 / r1);
    printf("RATIO hit_2t_vs_1t %.2f\n", h2 / h1);
    printf("RATIO raw_2t_vs_1t %.2f\n", r2 / r1);
    printf("RATIO hit_vs_global_mutex_2t %.2f\n", h2 / g2);
    ibp_geo_close(geo);
    MMDB_close(&city_db);
    MMDB_close(&asn_db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}
