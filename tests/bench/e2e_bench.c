/*
 * Benchmark: end to end on loopback, from the publish of the batch that
 * completes a quorum to the swap of the new epoch at a dns node, with the
 * time of every stage in between.
 *
 * A private nats-server (tests/harness/servers.sh), three consensus
 * replicas, five monitors (2,000 keys each), and a dns node's official
 * subscriber (ibp/official_subscriber.h: JetStream ordered consumer on
 * OFFICIAL, verification, chain check, swap into an ibp_store). Round 0
 * establishes every key; then each of IBP_E2E_ROUNDS rounds (default 1,000)
 * flips one key, the next in turn: the five monitors report the new status
 * one after the other and the third report completes the quorum of three.
 * Per sample, times from the publish of that third batch (each stage's share
 * is from the end of the previous one):
 *
 *   local      its publish acknowledged: stored in LOCAL
 *   applied    the first replica has applied it (a new epoch in its stats)
 *   official   the epoch's snapshot stored in OFFICIAL (the stream's time of
 *              its last message, on the same host's clock)
 *   delivered  with IBP_E2E_PROBE=1 only: a second JetStream consumer of
 *              OFFICIAL has it (costs one more 200 kB delivery per epoch)
 *   swapped    the dns node's store shows the epoch: the end-to-end latency
 *
 * printed as p50, p99, p99.9 and max, with the slowest samples broken down,
 * the CPU time per sample (this process: replicas, dns node, bench; and the
 * nats-server), the load average before and after (the figures mean little
 * on a busy machine: run it with the other cores idle, or `nice -n -15`), and
 * the dns node's own work on one snapshot. Each round starts from an idle
 * cluster: the winner's event is out and every replica has settled the
 * epoch. Then MASS_ROUNDS rounds flip all 2,000 keys at once.
 *
 *   BENCH e2e_p50_ms / e2e_p99_ms / e2e_p999_ms   one key flips (target p99 <= 20)
 *   BENCH e2e_stage_<stage>_p50_ms / _p99_ms      each stage's share (local, applied,
 *                                                 official, delivered with the probe, swapped)
 *   BENCH e2e_mass_flip_p50_ms, e2e_snapshot_bytes, e2e_dns_swap_work_ms,
 *   BENCH e2e_cpu_per_sample_ms, e2e_load_avg
 *
 * OFFICIAL is created as the daemons create it (ibp_bus_ensure_streams with
 * the defaults: memory storage, nats.official_memory). The baseline it
 * replaced, the file store, is IBP_E2E_OFFICIAL_MEMORY=0 (printed as
 * "OFFICIAL storage: file (baseline...)"); run both in the same session to
 * compare. Other experiments: IBP_E2E_REPLICAS=1..3; IBP_E2E_OFFICIAL_LAST=1
 * a file stream keeping the last snapshot only. Measured here
 * (docs/operations.md): the tail on file is the delivery from OFFICIAL's
 * file store to its consumers, which stalls for 20-110 ms about every 110
 * snapshots of 200 kB; in memory it does not.
 *
 * Certification (ibp/certificate.h): the dns node above applies an epoch only
 * once a quorum of the replicas co-signed it (what every node does). A second
 * official subscriber in the same run, with its own connection and store,
 * applies each snapshot without waiting for statements (the behaviour before
 * certificates); a thread notes when its store shows each epoch. Per sample
 * both are measured from the same publish:
 *
 *   BENCH e2e_plain_p50_ms                     the uncertified subscriber
 *   BENCH e2e_certification_added_p50_ms       p50 certified - p50 plain (target <= 5)
 *   RATIO e2e_p50_certified_vs_plain
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ibp/bus.h"
#include "ibp/log.h"
#include "ibp/official_snapshot.h"
#include "ibp/official_subscriber.h"
#include "ibp/replica.h"
#include "ibp/store.h"
#include "ibp/subject.h"
#include "testenv.h"

#define MONITORS 5
#define REPLICAS_MAX 3
#define KEYS 2000
#define ROUNDS_DEFAULT 1000
#define MASS_ROUNDS 6
#define WORST 8

enum { ST_LOCAL, ST_APPLIED, ST_OFFICIAL, ST_DELIVERED, ST_SWAPPED, ST_COUNT };
static const char *const stage_names[ST_COUNT] = {"local", "applied", "official", "delivered",
                                                  "swapped"};

/* IBP_E2E_PROBE=1: a second JetStream consumer of OFFICIAL that only notes
 * when each snapshot arrives, splitting "swapped" into delivery and the dns
 * node's own work (it costs one more 200 kB delivery per epoch). */
static atomic_ullong probe_count;
static _Atomic double probe_ms;

static double now_ms(void);

static void on_probe(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    (void)nc;
    (void)sub;
    (void)closure;
    atomic_store(&probe_ms, now_ms());
    atomic_fetch_add(&probe_count, 1);
    natsMsg_Destroy(m);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double load_avg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

static double wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* When OFFICIAL stored its last message (the stream holds only snapshots), in wall ms. */
static double official_stored_wall_ms(jsCtx *js)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    double t = 0;
    if (js_GetStreamInfo(&si, js, IBP_STREAM_OFFICIAL, NULL, &jerr) == NATS_OK)
        t = (double)si->State.LastTime / 1e6;
    jsStreamInfo_Destroy(si);
    return t;
}

/* CPU time (user + system) of this process (replicas, dns node, bench), in ms. */
static double self_cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* CPU time of another process (the nats-server), in ms; -1 when unknown. */
static double proc_cpu_ms(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) * 1e3 / (double)sysconf(_SC_CLK_TCK);
}

static double pct(const double *sorted, int n, double p)
{
    int i = (int)((double)n * p);
    return sorted[i >= n ? n - 1 : i];
}

/* Prints p50/p99/p99.9/max of v[0..n) (sorted in a copy); a stage's (stage
 * true) also as BENCH lines e2e_stage_<what>_p50_ms and _p99_ms. */
static void summary(const char *what, const double *v, int n, bool stage)
{
    double *s = malloc((size_t)n * sizeof *s);
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    printf("  %-10s p50 %7.2f  p99 %7.2f  p99.9 %7.2f  max %7.2f ms\n", what, pct(s, n, 0.5),
           pct(s, n, 0.99), pct(s, n, 0.999), s[n - 1]);
    if (stage)
        printf("BENCH e2e_stage_%s_p50_ms %.2f ms\nBENCH e2e_stage_%s_p99_ms %.2f ms\n", what,
               pct(s, n, 0.5), what, pct(s, n, 0.99));
    free(s);
}

static int nreplicas = REPLICAS_MAX; /* IBP_E2E_REPLICAS (1..3): for experiments */

/* The uncertified subscriber's swap times, by epoch (a ring). */
#define PLAIN_RING 4096
static ibp_official_subscriber *plain_sub;
static _Atomic double plain_at[PLAIN_RING];
static atomic_int plain_stop;

static void *plain_watch(void *arg)
{
    (void)arg;
    for (uint64_t e = 1; !atomic_load(&plain_stop);) {
        if (ibp_official_subscriber_wait_epoch(plain_sub, e, 200) != IBP_OK)
            continue;
        atomic_store(&plain_at[e % PLAIN_RING], now_ms());
        e++;
    }
    return NULL;
}

static uint64_t replicas_epoch(ibp_replica **r)
{
    uint64_t e = 0;
    for (int i = 0; i < nreplicas; i++) {
        ibp_replica_stats st;
        ibp_replica_stats_get(r[i], &st);
        if (st.epoch > e)
            e = st.epoch;
    }
    return e;
}

static uint64_t replicas_events(ibp_replica **r)
{
    uint64_t n = 0;
    for (int i = 0; i < nreplicas; i++) {
        ibp_replica_stats st;
        ibp_replica_stats_get(r[i], &st);
        n += st.events_published;
    }
    return n;
}

/* Snapshots each replica has published or found published (after a lost race, with
 * its digest compared) so far, into n[]; 1 when each one has settled one more
 * epoch than in since[] (NULL: none). */
static int replicas_settled(ibp_replica **r, const uint64_t *since, uint64_t *n)
{
    int all = 1;
    for (int i = 0; i < nreplicas; i++) {
        ibp_replica_stats st;
        ibp_replica_stats_get(r[i], &st);
        n[i] = st.snapshots_published + st.snapshots_lost_race + st.digest_mismatches;
        if (since && n[i] <= since[i])
            all = 0;
    }
    return all;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

int main(void)
{
    ibp_testenv_private servers;
    char dir[1024];
    ibp_err err;
    int rounds = ROUNDS_DEFAULT;
    if (getenv("IBP_E2E_ROUNDS"))
        rounds = atoi(getenv("IBP_E2E_ROUNDS"));
    if (rounds < 10)
        rounds = 10;
    if (getenv("IBP_E2E_REPLICAS")) {
        nreplicas = atoi(getenv("IBP_E2E_REPLICAS"));
        if (nreplicas < 1 || nreplicas > REPLICAS_MAX)
            nreplicas = REPLICAS_MAX;
    }
    memset(&servers, 0, sizeof servers);
    ibp_log_set_level(IBP_LOG_ERROR);
    double load_before = load_avg();
    if (ibp_testenv_private_start(&servers) != 0 || ibp_testenv_mkdtemp(dir, sizeof dir) != 0) {
        ibp_testenv_private_stop(&servers);
        return 1;
    }
    ibp_roster *roster;
    ibp_roster_new(&roster);
    ibp_signer *mon[MONITORS], *rep[REPLICAS_MAX];
    ibp_key key;
    for (int i = 0; i < MONITORS + nreplicas; i++) {
        char id[16], path[1200];
        bool is_mon = i < MONITORS;
        snprintf(id, sizeof id, is_mon ? "mon%d" : "rep%d", is_mon ? i : i - MONITORS);
        snprintf(path, sizeof path, "%s/%s.seq", dir, id);
        ibp_key_generate(&key);
        ibp_roster_add(roster, id, key.pk, is_mon ? IBP_ROLE_MONITOR : IBP_ROLE_CONSENSUS, &err);
        if (ibp_signer_new(id, &key, path, is_mon ? &mon[i] : &rep[i - MONITORS], &err) != IBP_OK)
            return 1;
    }
    natsConnection *nc, *rnc[REPLICAS_MAX], *snc;
    jsCtx *js;
    if (ibp_bus_connect_url(servers.env.nats_auth_url, "bench", &nc, &err) != IBP_OK ||
        natsConnection_JetStream(&js, nc, NULL) != NATS_OK)
        return 1;
    ibp_bus_stream_opts streams;
    ibp_bus_stream_opts_init(&streams);
    const char *mem_env = getenv("IBP_E2E_OFFICIAL_MEMORY");
    if (mem_env && *mem_env)
        streams.official_memory = strcmp(mem_env, "0") != 0;
    if (getenv("IBP_E2E_OFFICIAL_LAST")) {
        /* Experiment: OFFICIAL on file keeping only the last snapshot. */
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        const char *subj[] = {IBP_SUBJECT_OFFICIAL_SNAPSHOT};
        sc.Name = IBP_STREAM_OFFICIAL;
        sc.Subjects = subj;
        sc.SubjectsLen = 1;
        sc.Storage = js_FileStorage;
        sc.MaxMsgsPerSubject = 1;
        sc.AllowDirect = true;
        if (js_AddStream(NULL, js, &sc, NULL, NULL) != NATS_OK)
            return 1;
    }
    if (ibp_bus_ensure_streams(js, &streams, &err) != IBP_OK) {
        fprintf(stderr, "streams: %s\n", err.msg);
        return 1;
    }
    jsStreamInfo *osi = NULL;
    bool official_in_memory = false;
    if (js_GetStreamInfo(&osi, js, IBP_STREAM_OFFICIAL, NULL, NULL) == NATS_OK) {
        official_in_memory = osi->Config->Storage == js_MemoryStorage;
        jsStreamInfo_Destroy(osi);
    }
    ibp_replica *replicas[REPLICAS_MAX];
    for (int i = 0; i < nreplicas; i++) {
        ibp_replica_opts o;
        char wd[1200];
        snprintf(wd, sizeof wd, "%s/rep%d", dir, i);
        mkdir(wd, 0700);
        ibp_replica_opts_init(&o);
        ibp_bus_connect_url(servers.env.nats_auth_url, "replica", &rnc[i], &err);
        o.nc = rnc[i];
        o.roster = roster;
        o.signer = rep[i];
        o.work_dir = wd;
        if (ibp_replica_start(&o, &replicas[i], &err) != IBP_OK) {
            fprintf(stderr, "replica: %s\n", err.msg);
            return 1;
        }
    }
    /* The dns node: its official subscriber and store. */
    ibp_store *store;
    ibp_store_new(NULL, &store);
    ibp_bus_connect_url(servers.env.nats_auth_url, "dns", &snc, &err);
    ibp_official_subscriber_opts so;
    ibp_official_subscriber_opts_init(&so);
    so.nc = snc;
    so.roster = roster;
    so.store = store;
    ibp_official_subscriber *osub = NULL;
    if (ibp_official_subscriber_start(&so, &osub, &err) != IBP_OK) {
        fprintf(stderr, "official subscriber: %s\n", err.msg);
        return 1;
    }
    /* The same dns node without certificates, for the comparison. */
    natsConnection *plain_nc = NULL;
    ibp_store *plain_store = NULL;
    ibp_store_new(NULL, &plain_store);
    ibp_bus_connect_url(servers.env.nats_auth_url, "dns", &plain_nc, &err);
    ibp_official_subscriber_opts po_plain = so;
    po_plain.nc = plain_nc;
    po_plain.store = plain_store;
    po_plain.skip_certificates = true;
    if (ibp_official_subscriber_start(&po_plain, &plain_sub, &err) != IBP_OK) {
        fprintf(stderr, "plain official subscriber: %s\n", err.msg);
        return 1;
    }
    pthread_t plain_thread;
    pthread_create(&plain_thread, NULL, plain_watch, NULL);
    double *plain_total = calloc((size_t)rounds + 1, sizeof *plain_total);
    int nplain = 0;
    natsConnection *pnc = NULL;
    natsSubscription *psub = NULL;
    jsCtx *pjs = NULL;
    if (getenv("IBP_E2E_PROBE")) {
        jsSubOptions po;
        jsSubOptions_Init(&po);
        po.Stream = IBP_STREAM_OFFICIAL;
        po.Ordered = true;
        po.Config.DeliverPolicy = js_DeliverNew;
        if (ibp_bus_connect_url(servers.env.nats_auth_url, "probe", &pnc, &err) != IBP_OK ||
            natsConnection_JetStream(&pjs, pnc, NULL) != NATS_OK ||
            js_Subscribe(&psub, pjs, IBP_SUBJECT_OFFICIAL_SNAPSHOT, on_probe, NULL, NULL, &po,
                         NULL) != NATS_OK)
            return 1;
    }
    Ibp__V1__ResultKey *keys = calloc(KEYS, sizeof *keys);
    Ibp__V1__Observation *obs = calloc(KEYS, sizeof *obs);
    Ibp__V1__Observation **ptrs = calloc(KEYS, sizeof *ptrs);
    char(*urls)[64] = calloc(KEYS, sizeof *urls);
    for (int i = 0; i < KEYS; i++) {
        snprintf(urls[i], sizeof urls[i], "wss://rpc.example.net/chain-%d", i);
        ibp__v1__result_key__init(&keys[i]);
        keys[i].check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
        keys[i].check_name = "wss";
        keys[i].member = "Stake Plus";
        keys[i].domain = "rpc.example.net";
        keys[i].endpoint = urls[i];
        ibp__v1__observation__init(&obs[i]);
        obs[i].key = &keys[i];
        obs[i].status = IBP__V1__STATUS__STATUS_UP;
        ptrs[i] = &obs[i];
    }
    double(*stage)[ST_COUNT] = calloc((size_t)rounds, sizeof *stage);
    double mass[MASS_ROUNDS];
    int nlat = 0, nmass = 0;
    double t_start = now_ms(), cpu_self0 = 0, cpu_server0 = 0, cpu_self = 0, cpu_server = 0;
    for (int round = 0; round <= rounds + MASS_ROUNDS; round++) {
        bool is_mass = round > rounds;
        if (round == 1) {
            cpu_self0 = self_cpu_ms();
            cpu_server0 = proc_cpu_ms(servers.pid[IBP_TESTENV_NATS]);
        } else if (round == rounds + 1) {
            cpu_self = self_cpu_ms() - cpu_self0;
            cpu_server = proc_cpu_ms(servers.pid[IBP_TESTENV_NATS]) - cpu_server0;
        }
        int flip_key = (round - 1) % KEYS;
        for (int i = 0; i < KEYS; i++) {
            if (round > 0 && (is_mass || i == flip_key))
                obs[i].status = obs[i].status == IBP__V1__STATUS__STATUS_UP
                                    ? IBP__V1__STATUS__STATUS_DOWN
                                    : IBP__V1__STATUS__STATUS_UP;
            if (is_mass || round == 0 || i == flip_key)
                obs[i].check_time_ms = 1700000000000 + round;
        }
        uint64_t before = ibp_store_official_epoch(store);
        uint64_t events_before = replicas_events(replicas), settled_before[REPLICAS_MAX];
        replicas_settled(replicas, NULL, settled_before);
        double t0 = 0, wall0 = 0, t[ST_COUNT] = {0};
        int completing = 2;
        for (int m = 0; m < MONITORS; m++) {
            if (m == completing + 1) {
                /* Wait for the swap before the remaining reports: watch the
                 * replicas until one has applied the batch, then block until
                 * the dns node's store has the epoch (no polling meanwhile). */
                unsigned long long probes = atomic_load(&probe_count);
                for (;;) {
                    double now = now_ms();
                    if (ibp_store_official_epoch(store) > before)
                        break;
                    if (replicas_epoch(replicas) > before) {
                        t[ST_APPLIED] = now;
                        break;
                    }
                    if (now - t0 > 10000)
                        break;
                    sleep_us(50);
                }
                if (ibp_official_subscriber_wait_epoch(osub, before + 1, 10000) != IBP_OK) {
                    fprintf(stderr, "round %d: no new epoch within 10 s\n", round);
                    return 1;
                }
                t[ST_SWAPPED] = now_ms();
                if (!is_mass && round > 0) {
                    /* The plain subscriber's time for the same epoch. */
                    uint64_t e = before + 1;
                    double at = 0;
                    for (int w = 0; w < 100000 && (at = atomic_load(&plain_at[e % PLAIN_RING])) < t0;
                         w++)
                        sleep_us(100);
                    if (at >= t0)
                        plain_total[nplain++] = at - t0;
                }
                /* OFFICIAL's stored time of the snapshot, on this host's clock. */
                double stored = official_stored_wall_ms(js);
                if (stored > 0)
                    t[ST_OFFICIAL] = t0 + (stored - wall0);
                if (psub && atomic_load(&probe_count) > probes)
                    t[ST_DELIVERED] = atomic_load(&probe_ms);
                else if (!psub)
                    t[ST_DELIVERED] = t[ST_OFFICIAL]; /* not measured: in "swapped" */
                /* A stage seen only after the next one: it took no longer than that. */
                if (t[ST_DELIVERED] == 0 || t[ST_DELIVERED] > t[ST_SWAPPED])
                    t[ST_DELIVERED] = t[ST_SWAPPED];
                if (t[ST_OFFICIAL] == 0 || t[ST_OFFICIAL] > t[ST_DELIVERED])
                    t[ST_OFFICIAL] = t[ST_DELIVERED];
                if (t[ST_APPLIED] == 0 || t[ST_APPLIED] > t[ST_OFFICIAL])
                    t[ST_APPLIED] = t[ST_OFFICIAL];
                if (is_mass)
                    mass[nmass++] = t[ST_SWAPPED] - t0;
                else if (round > 0) {
                    double prev = t0;
                    for (int s = 0; s < ST_COUNT; s++) {
                        double at = t[s] < prev ? prev : t[s];
                        stage[nlat][s] = at - prev;
                        prev = at;
                    }
                    nlat++;
                }
            }
            /* Monitors send what changed since their last batch (a delta), and
             * their whole state in round 0, as the monitor publisher does. */
            Ibp__V1__ObservationBatch b = IBP__V1__OBSERVATION_BATCH__INIT;
            b.batch_seq = (uint64_t)round + 1;
            b.full = round == 0;
            b.n_observations = (round == 0 || is_mass) ? KEYS : 1;
            b.observations = (round == 0 || is_mass) ? ptrs : &ptrs[flip_key];
            uint8_t *sealed;
            size_t len;
            uint64_t seq;
            char subject[64];
            ibp_signer_seal(mon[m], IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH, &b.base,
                            1, &sealed, &len, &seq, &err);
            ibp_subject_local(ibp_signer_id(mon[m]), subject, sizeof subject);
            if (m == completing) {
                t0 = now_ms();
                wall0 = wall_ms();
            }
            if (ibp_bus_publish_envelope(
                    js, subject, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH,
                    ibp_signer_id(mon[m]), seq, sealed, len, NULL, 0, NULL, NULL, &err) != IBP_OK) {
                fprintf(stderr, "publish: %s\n", err.msg);
                return 1;
            }
            if (m == completing)
                t[ST_LOCAL] = now_ms();
            free(sealed);
        }
        /* The winner publishes the epoch's event(s) and status message(s)
         * right after its snapshot, and every replica settles the epoch: wait
         * for them, so that each round starts from an idle cluster (a flip
         * is rare; bursts are the mass rounds). */
        double w0 = now_ms();
        uint64_t settled_now[REPLICAS_MAX];
        while ((replicas_events(replicas) == events_before ||
                !replicas_settled(replicas, settled_before, settled_now)) &&
               now_ms() - w0 < 2000)
            sleep_us(500);
    }
    double elapsed_s = (now_ms() - t_start) / 1e3;
    double load_after = load_avg();

    double *total = malloc((size_t)nlat * sizeof *total), *col = malloc((size_t)nlat * sizeof *col);
    for (int i = 0; i < nlat; i++) {
        total[i] = 0;
        for (int s = 0; s < ST_COUNT; s++)
            total[i] += stage[i][s];
    }
    printf("OFFICIAL storage: %s\n",
           official_in_memory
               ? "memory (the default, nats.official_memory; baseline: IBP_E2E_OFFICIAL_MEMORY=0)"
               : "file (baseline: the storage before nats.official_memory defaulted to true)");
    printf("e2e: %d single-key flips among %d keys, %d monitors, %d replicas, %.1f s; "
           "load average %.2f before, %.2f after, %ld CPUs\n",
           nlat, KEYS, MONITORS, nreplicas, elapsed_s, load_before, load_after,
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("CPU per sample: %.2f ms in this process (replicas, dns node, bench), %.2f ms in "
           "nats-server\n",
           cpu_self / nlat, cpu_server / nlat);
    for (int i = 0; i < nreplicas; i++) {
        ibp_replica_stats st;
        ibp_replica_stats_get(replicas[i], &st);
        printf("replica %d: epoch %" PRIu64 ", snapshots published %" PRIu64 ", lost races %" PRIu64
               ", digest mismatches %" PRIu64 "\n",
               i, st.epoch, st.snapshots_published, st.snapshots_lost_race, st.digest_mismatches);
    }
    printf("stage shares (each from the end of the previous one):\n");
    for (int s = 0; s < ST_COUNT; s++) {
        if (s == ST_DELIVERED && !psub)
            continue;
        for (int i = 0; i < nlat; i++)
            col[i] = stage[i][s];
        summary(stage_names[s], col, nlat, true);
    }
    summary("total", total, nlat, false);
    /* The slowest samples, stage by stage: where the tail comes from. */
    printf("slowest samples (local applied official delivered swapped = total, ms):\n");
    for (int w = 0; w < WORST && w < nlat; w++) {
        int worst = 0;
        for (int i = 1; i < nlat; i++)
            if (total[i] > total[worst])
                worst = i;
        printf("  #%-4d %6.2f %6.2f %6.2f %6.2f %6.2f = %6.2f\n", worst + 1, stage[worst][0],
               stage[worst][1], stage[worst][2], stage[worst][3], stage[worst][4], total[worst]);
        total[worst] = -total[worst]; /* taken */
    }
    for (int i = 0; i < nlat; i++)
        if (total[i] < 0)
            total[i] = -total[i];
    qsort(total, (size_t)nlat, sizeof *total, cmp_double);
    printf("BENCH e2e_samples %d\n", nlat);
    printf("BENCH e2e_p50_ms %.2f ms\n", pct(total, nlat, 0.5));
    printf("BENCH e2e_p99_ms %.2f ms (target <= 20)\n", pct(total, nlat, 0.99));
    printf("BENCH e2e_p999_ms %.2f ms\n", pct(total, nlat, 0.999));
    printf("BENCH e2e_max_ms %.2f ms\n", total[nlat - 1]);
    if (nplain > 0) {
        qsort(plain_total, (size_t)nplain, sizeof *plain_total, cmp_double);
        double p_cert = pct(total, nlat, 0.5), p_plain = pct(plain_total, nplain, 0.5);
        printf("BENCH e2e_plain_p50_ms %.2f ms (same run, without certificates; %d samples)\n",
               p_plain, nplain);
        printf("BENCH e2e_plain_p99_ms %.2f ms\n", pct(plain_total, nplain, 0.99));
        printf("BENCH e2e_certification_added_p50_ms %.2f ms (target <= 5)\n", p_cert - p_plain);
        printf("RATIO e2e_p50_certified_vs_plain %.3f\n", p_plain > 0 ? p_cert / p_plain : 0.0);
    }
    qsort(mass, (size_t)nmass, sizeof mass[0], cmp_double);
    printf("BENCH e2e_mass_flip_p50_ms %.2f ms\n", mass[nmass / 2]);
    printf("BENCH e2e_mass_flip_max_ms %.2f ms\n", mass[nmass - 1]);
    natsMsg *last = NULL;
    jsErrCode jerr = 0;
    if (js_GetLastMsg(&last, js, IBP_STREAM_OFFICIAL, IBP_SUBJECT_OFFICIAL_SNAPSHOT, NULL, &jerr) ==
        NATS_OK) {
        printf("BENCH e2e_snapshot_bytes %d bytes\n", natsMsg_GetDataLength(last));
        /* What the dns node does with it (verify, decode, swap), on an idle
         * pipeline: the floor of the "swapped" stage. */
        ibp_verifier *v = NULL;
        ibp_store *scratch = NULL;
        ibp_verifier_new(roster, NULL, &v);
        ibp_store_new(NULL, &scratch);
        double work[20];
        for (int i = 0; i < 20; i++) {
            double w0 = now_ms();
            ibp_verified vm = {0};
            if (ibp_verifier_check_stateless(v, (const uint8_t *)natsMsg_GetData(last),
                                             (size_t)natsMsg_GetDataLength(last), &vm,
                                             &err) == IBP_OK) {
                ibp_official_snapshot snap;
                if (ibp_official_snapshot_from_proto((const Ibp__V1__OfficialSnapshot *)vm.payload,
                                                     &snap, &err) == IBP_OK) {
                    ibp_official_snapshot_apply(scratch, &snap, &err);
                    ibp_official_snapshot_clear(&snap);
                }
            }
            ibp_verified_clear(&vm);
            work[i] = now_ms() - w0;
        }
        qsort(work, 20, sizeof work[0], cmp_double);
        printf("BENCH e2e_dns_swap_work_ms %.2f ms (verify, decode and swap one snapshot)\n",
               work[10]);
        ibp_store_free(scratch);
        ibp_verifier_free(v);
    }
    natsMsg_Destroy(last);
    printf("BENCH e2e_cpu_per_sample_ms %.2f process %.2f nats-server\n", cpu_self / nlat,
           cpu_server / nlat);
    printf("BENCH e2e_official_storage %s\n", official_in_memory ? "memory" : "file");
    printf("BENCH e2e_load_avg %.2f before %.2f after\n", load_before, load_after);

    free(total);
    free(col);
    free(stage);
    natsSubscription_Destroy(psub);
    jsCtx_Destroy(pjs);
    natsConnection_Destroy(pnc);
    atomic_store(&plain_stop, 1);
    pthread_join(plain_thread, NULL);
    ibp_official_subscriber_stop(plain_sub);
    ibp_store_free(plain_store);
    natsConnection_Destroy(plain_nc);
    free(plain_total);
    ibp_official_subscriber_stop(osub);
    for (int i = 0; i < nreplicas; i++) {
        ibp_replica_stop(replicas[i]);
        natsConnection_Destroy(rnc[i]);
        ibp_signer_free(rep[i]);
    }
    natsConnection_Destroy(snc);
    for (int i = 0; i < MONITORS; i++)
        ibp_signer_free(mon[i]);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    ibp_store_free(store);
    ibp_roster_free(roster);
    free(keys);
    free(obs);
    free(ptrs);
    free(urls);
    ibp_testenv_rmtree(dir);
    ibp_testenv_private_stop(&servers);
    return 0;
}
