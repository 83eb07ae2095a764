/*
 * Benchmark: the vote engine's ingest rate and a replica's memory.
 *
 *   BENCH engine_ingest_obs_per_s          steady state: 20 monitors re-report 100k keys
 *                                          in batches of 1000 (one core; target >= 1M)
 *   BENCH engine_ingest_first_round_obs_per_s  the first round, which creates the keys
 *   BENCH unpack_obs_per_s                 protobuf-c unpack (+ free) of the same batches
 *                                          encoded as ibp.v1.ObservationBatch: the cost the
 *                                          driver pays before the engine sees a batch
 *   RATIO ingest_vs_unpack                 engine ingest / unpack (> 1: the engine is not
 *                                          the bottleneck of a replica)
 *   BENCH replica_rss_mib                  VmRSS growth holding 100k keys x 20 monitors
 *                                          (every monitor's latest observation; target <= 256)
 *   BENCH replica_state_bytes_per_key      the same per key (20 observations each)
 *
 * Observations look like a monitor's: 2% down with an error text, 10% with
 * changing JSON data (latency), the rest with neither.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ibp/ibp.pb-c.h"
#include "ibp/vote.h"

#define NKEYS 100000
#define NMON 20
#define BATCH 1000
#define ROUNDS 4 /* the first creates the keys; the rest are the steady state */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            break;
    fclose(f);
    return v;
}

struct world {
    char members[200][32];
    char domains[500][32];
    char (*urls)[64];
    char mons[NMON][16];
    char (*data)[32]; /* per observation slot of a batch */
};

static void world_make(struct world *w)
{
    for (int i = 0; i < 200; i++)
        snprintf(w->members[i], sizeof w->members[i], "Member %d", i);
    for (int i = 0; i < 500; i++)
        snprintf(w->domains[i], sizeof w->domains[i], "rpc%d.ibp.network", i);
    w->urls = calloc(NKEYS, sizeof *w->urls);
    w->data = calloc(BATCH, sizeof *w->data);
    if (!w->urls || !w->data)
        abort();
    for (int i = 0; i < NKEYS; i++)
        snprintf(w->urls[i], sizeof w->urls[i], "wss://%s/chain-%d", w->domains[i % 500], i);
    for (int m = 0; m < NMON; m++)
        snprintf(w->mons[m], sizeof w->mons[m], "mon%02d", m);
}

static uint64_t rng_state = 42;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

/* Fills obs[] with one monitor's batch b of round r. */
static void fill_batch(struct world *w, ibp_vote_obs *obs, int b, int64_t t)
{
    for (int j = 0; j < BATCH; j++) {
        int k = b * BATCH + j;
        ibp_vote_obs *o = &obs[j];
        o->key.type = IBP_VOTE_ENDPOINT;
        o->key.check_name = "wss";
        o->key.member = w->members[(k / 500) % 200];
        o->key.domain = w->domains[k % 500];
        o->key.endpoint = w->urls[k];
        o->key.ipv6 = (k & 1) != 0;
        uint32_t r = rnd() % 100;
        o->status = r < 2 ? IBP_VOTE_DOWN : IBP_VOTE_UP;
        o->check_time_ms = t;
        o->error = r < 2 ? "connect: connection refused" : "";
        if (k % 10 == 0) {
            snprintf(w->data[j], sizeof w->data[j], "{\"latency_ms\":%u}", rnd() % 500);
            o->data_json = w->data[j];
        } else {
            o->data_json = "";
        }
    }
}

/* Encodes obs[] as an ObservationBatch; returns a malloc'd buffer. */
static uint8_t *encode(const ibp_vote_obs *obs, uint64_t batch_seq, size_t *len)
{
    Ibp__V1__ObservationBatch b = IBP__V1__OBSERVATION_BATCH__INIT;
    Ibp__V1__Observation *os = calloc(BATCH, sizeof *os);
    Ibp__V1__Observation **ps = calloc(BATCH, sizeof *ps);
    Ibp__V1__ResultKey *ks = calloc(BATCH, sizeof *ks);
    if (!os || !ps || !ks)
        abort();
    for (int j = 0; j < BATCH; j++) {
        Ibp__V1__ResultKey k = IBP__V1__RESULT_KEY__INIT;
        k.check_type = (Ibp__V1__CheckType)obs[j].key.type;
        k.check_name = (char *)obs[j].key.check_name;
        k.member = (char *)obs[j].key.member;
        k.domain = (char *)obs[j].key.domain;
        k.endpoint = (char *)obs[j].key.endpoint;
        k.ipv6 = obs[j].key.ipv6;
        ks[j] = k;
        Ibp__V1__Observation o = IBP__V1__OBSERVATION__INIT;
        o.key = &ks[j];
        o.status = (Ibp__V1__Status)obs[j].status;
        o.check_time_ms = obs[j].check_time_ms;
        o.error = (char *)obs[j].error;
        o.data_json = (char *)obs[j].data_json;
        os[j] = o;
        ps[j] = &os[j];
    }
    b.batch_seq = batch_seq;
    b.full = true;
    b.n_observations = BATCH;
    b.observations = ps;
    *len = ibp__v1__observation_batch__get_packed_size(&b);
    uint8_t *buf = malloc(*len);
    if (!buf)
        abort();
    ibp__v1__observation_batch__pack(&b, buf);
    free(os);
    free(ps);
    free(ks);
    return buf;
}

/* Protobuf-c unpack (+ free) of one monitor's round (100 batches, 100k
 * observations), a few times over: the per-observation cost of decoding. */
static double unpack_rate(struct world *w, ibp_vote_obs *obs, size_t *bytes_per_obs)
{
    const int nbatches = NKEYS / BATCH;
    uint8_t *enc[NKEYS / BATCH];
    size_t enc_len[NKEYS / BATCH];
    size_t enc_total = 0;
    for (int b = 0; b < nbatches; b++) {
        fill_batch(w, obs, b, 1700000000000LL);
        enc[b] = encode(obs, (uint64_t)b + 1, &enc_len[b]);
        enc_total += enc_len[b];
    }
    const int unpack_reps = 8;
    double t = now_s();
    size_t unpacked = 0;
    for (int r = 0; r < unpack_reps; r++)
        for (int b = 0; b < nbatches; b++) {
            Ibp__V1__ObservationBatch *m =
                ibp__v1__observation_batch__unpack(NULL, enc_len[b], enc[b]);
            if (!m || m->n_observations != BATCH)
                abort();
            unpacked += m->n_observations;
            ibp__v1__observation_batch__free_unpacked(m, NULL);
        }
    double rate = (double)unpacked / (now_s() - t);
    for (int b = 0; b < nbatches; b++)
        free(enc[b]);
    *bytes_per_obs = enc_total / NKEYS;
    return rate;
}

int main(void)
{
    struct world w;
    world_make(&w);
    ibp_vote_obs *obs = calloc(BATCH, sizeof *obs);
    if (!obs)
        abort();
    const int nbatches = NKEYS / BATCH;

    /* The engine first, so the RSS baseline is a heap nothing was freed into. */
    /* The engine: 20 monitors, every key every round, batches interleaved
     * across monitors as they would arrive on LOCAL. */
    ibp_vote_config cfg;
    ibp_vote_config_init(&cfg);
    cfg.max_batch_obs = BATCH;
    long rss0 = rss_kib();
    size_t heap0 = mallinfo2().uordblks;
    ibp_vote *e;
    if (ibp_vote_new(&cfg, &e) != IBP_VOTE_OK)
        abort();
    uint64_t seq = 0;
    int64_t now = 1700000000000LL;
    double first_s = 0, steady_s = 0;
    size_t first_obs = 0, steady_obs = 0;
    long rss1 = 0;
    size_t heap1 = 0;
    uint64_t epochs = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int b = 0; b < nbatches; b++)
            for (int m = 0; m < NMON; m++) {
                fill_batch(&w, obs, b, now);
                ibp_vote_msg msg;
                memset(&msg, 0, sizeof msg);
                msg.kind = IBP_VOTE_MSG_OBSERVATION_BATCH;
                msg.signer = w.mons[m];
                msg.local_seq = ++seq;
                msg.stream_ms = now;
                msg.batch_seq = seq;
                msg.full = true;
                msg.obs = obs;
                msg.nobs = BATCH;
                ibp_vote_update up;
                double t0 = now_s();
                ibp_vote_rc rc = ibp_vote_apply(e, &msg, &up);
                double dt = now_s() - t0;
                if (rc != IBP_VOTE_OK) {
                    fprintf(stderr, "apply: %s: %s\n", ibp_vote_strerror(rc),
                            ibp_vote_last_error(e));
                    return 1;
                }
                epochs += up.epoch_advanced;
                if (round == 0) {
                    first_s += dt;
                    first_obs += BATCH;
                } else {
                    steady_s += dt;
                    steady_obs += BATCH;
                }
                now += 1; /* ~20 batches per 20 ms: a round spans ~2 s of stream time */
            }
        if (round == 0) {
            rss1 = rss_kib();
            heap1 = mallinfo2().uordblks;
        }
        now += 60000 - 2000;
    }
    ibp_vote_info info;
    ibp_vote_get_info(e, &info);
    /* Decoding measured next to the engine's heap and on its own; the faster
     * is the baseline, so the ratio errs against the engine. */
    size_t enc_per_obs;
    double unpack_with_engine = unpack_rate(&w, obs, &enc_per_obs);
    ibp_vote_free(e);
    double unpack_alone = unpack_rate(&w, obs, &enc_per_obs);
    double unpack = unpack_alone > unpack_with_engine ? unpack_alone : unpack_with_engine;
    double ingest_rate = (double)steady_obs / steady_s;
    double first_rate = (double)first_obs / first_s;
    double rss_mib = (double)(rss1 - rss0) / 1024.0;

    printf("# %d keys x %d monitors, batches of %d, %d rounds; %zu keys held, %zu observations, "
           "%zu official, %llu epochs\n",
           NKEYS, NMON, BATCH, ROUNDS, info.keys, info.observations, info.official_keys,
           (unsigned long long)epochs);
    printf("# encoded batches: %zu bytes per observation; unpack %.0f obs/s next to the engine's "
           "heap, %.0f obs/s alone (the faster is the baseline)\n",
           enc_per_obs, unpack_with_engine, unpack_alone);
    printf("BENCH engine_ingest_obs_per_s %.0f obs/s (target >= 1000000)\n", ingest_rate);
    printf("BENCH engine_ingest_first_round_obs_per_s %.0f obs/s\n", first_rate);
    printf("BENCH unpack_obs_per_s %.0f obs/s\n", unpack);
    printf("RATIO ingest_vs_unpack %.2f\n", ingest_rate / unpack);
    printf("BENCH replica_rss_mib %.1f MiB (target <= 256)\n", rss_mib);
    printf("BENCH replica_state_bytes_per_key %.0f bytes/key (%d observations each; "
           "heap in use %.0f)\n",
           (double)(rss1 - rss0) * 1024.0 / NKEYS, NMON, (double)(heap1 - heap0) / NKEYS);
    free(obs);
    free(w.urls);
    free(w.data);
    return 0;
}
