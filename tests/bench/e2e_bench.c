/*
 * Benchmark: end to end on loopback, from the publish of the batch that
 * completes a quorum to a subscriber's store swap.
 *
 * A private nats-server (started with tests/harness/servers.sh), three
 * consensus replicas, five monitors publishing batches of 2,000 keys, and a
 * subscriber that reads OFFICIAL, verifies each snapshot and swaps it into an
 * ibp_store. Each round the five monitors report a new status for every key
 * in turn; the third report completes the quorum, and the clock runs from
 * its publish until the subscriber's store shows the new epoch. Between rounds the replicas finish
 * publishing the epoch's events and status messages (2,000 of each when all
 * keys flip), so each round starts from an idle cluster.
 *
 *   BENCH e2e_p50_ms   BENCH e2e_p99_ms   one key flips (target p99 <= 20)
 *   BENCH e2e_mass_flip_p50_ms            all 2,000 keys flip in one batch: the
 *                                         replicas then also publish 2,000 events
 *                                         and 2,000 status messages each
 *   BENCH e2e_snapshot_bytes
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ibp/bus.h"
#include "ibp/log.h"
#include "ibp/official_snapshot.h"
#include "ibp/replica.h"
#include "ibp/store.h"
#include "ibp/subject.h"
#include "testenv.h"

#define MONITORS 5
#define REPLICAS 3
#define KEYS 2000
#define ROUNDS 40
#define MASS_ROUNDS 6

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

struct subscriber {
    ibp_store *store;
    ibp_verifier *verifier;
    atomic_ullong snapshot_bytes;
};

/* nats.c delivery thread: verify, decode, swap. */
static void on_snapshot(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    (void)nc;
    (void)sub;
    struct subscriber *s = closure;
    ibp_verified vm = {0};
    ibp_err err;
    if (ibp_verifier_check_stateless(s->verifier, (const uint8_t *)natsMsg_GetData(m),
                                     (size_t)natsMsg_GetDataLength(m), &vm, &err) == IBP_OK &&
        vm.envelope->type == IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT) {
        ibp_official_snapshot snap;
        const Ibp__V1__OfficialSnapshot *p = (const Ibp__V1__OfficialSnapshot *)vm.payload;
        if (p->epoch > ibp_store_official_epoch(s->store) &&
            ibp_official_snapshot_from_proto(p, &snap, &err) == IBP_OK) {
            ibp_official_snapshot_apply(s->store, &snap, &err);
            ibp_official_snapshot_clear(&snap);
        }
        atomic_store(&s->snapshot_bytes, (unsigned long long)natsMsg_GetDataLength(m));
    }
    ibp_verified_clear(&vm);
    natsMsg_Destroy(m);
}

int main(void)
{
    ibp_testenv_private servers;
    char dir[1024];
    ibp_err err;
    memset(&servers, 0, sizeof servers);
    ibp_log_set_level(IBP_LOG_ERROR);
    if (ibp_testenv_private_start(&servers) != 0 || ibp_testenv_mkdtemp(dir, sizeof dir) != 0) {
        ibp_testenv_private_stop(&servers);
        return 1;
    }
    ibp_roster *roster;
    ibp_roster_new(&roster);
    ibp_signer *mon[MONITORS], *rep[REPLICAS];
    ibp_key key;
    for (int i = 0; i < MONITORS + REPLICAS; i++) {
        char id[16], path[1200];
        bool is_mon = i < MONITORS;
        snprintf(id, sizeof id, is_mon ? "mon%d" : "rep%d", is_mon ? i : i - MONITORS);
        snprintf(path, sizeof path, "%s/%s.seq", dir, id);
        ibp_key_generate(&key);
        ibp_roster_add(roster, id, key.pk, is_mon ? IBP_ROLE_MONITOR : IBP_ROLE_CONSENSUS, &err);
        if (ibp_signer_new(id, &key, path, is_mon ? &mon[i] : &rep[i - MONITORS], &err) != IBP_OK)
            return 1;
    }
    natsConnection *nc, *rnc[REPLICAS], *snc;
    jsCtx *js;
    if (ibp_bus_connect_url(servers.env.nats_auth_url, "bench", &nc, &err) != IBP_OK ||
        natsConnection_JetStream(&js, nc, NULL) != NATS_OK ||
        ibp_bus_ensure_streams(js, NULL, &err) != IBP_OK)
        return 1;
    ibp_replica *replicas[REPLICAS];
    for (int i = 0; i < REPLICAS; i++) {
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
    struct subscriber sub = {0};
    ibp_store_new(NULL, &sub.store);
    ibp_verifier_new(roster, NULL, &sub.verifier);
    ibp_bus_connect_url(servers.env.nats_auth_url, "subscriber", &snc, &err);
    natsSubscription *ssub = NULL;
    /* Snapshots are stored by JetStream and also delivered to plain
     * subscribers of the subject as they are published. */
    natsConnection_Subscribe(&ssub, snc, IBP_SUBJECT_OFFICIAL_SNAPSHOT, on_snapshot, &sub);

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
        ptrs[i] = &obs[i];
    }
    double lat[ROUNDS], mass[MASS_ROUNDS];
    int nlat = 0, nmass = 0;
    for (int i = 0; i < KEYS; i++)
        obs[i].status = IBP__V1__STATUS__STATUS_UP;
    for (int round = 0; round <= ROUNDS + MASS_ROUNDS; round++) {
        /* Round 0 establishes every key; then ROUNDS rounds flip one key each
         * (an endpoint going down or up: the common case), then MASS_ROUNDS
         * rounds flip all 2,000 keys at once. */
        bool is_mass = round > ROUNDS;
        for (int i = 0; i < KEYS; i++) {
            bool flip = round > 0 && (is_mass || i == round % KEYS);
            if (flip)
                obs[i].status = obs[i].status == IBP__V1__STATUS__STATUS_UP
                                    ? IBP__V1__STATUS__STATUS_DOWN
                                    : IBP__V1__STATUS__STATUS_UP;
            obs[i].check_time_ms = 1700000000000 + round;
        }
        uint64_t before = ibp_store_official_epoch(sub.store);
        double t0 = 0;
        /* Every round all five report the new status in turn; with the last
         * status reported by all five, the third report completes the quorum
         * of three. In round 0 (first establishment) so does the third. */
        int senders = MONITORS, completing = 2;
        for (int m = 0; m < senders; m++) {
            if (m == completing + 1) {
                /* Wait for the swap before the remaining reports. */
                for (;;) {
                    if (ibp_store_official_epoch(sub.store) > before)
                        break;
                    if (now_ms() - t0 > 10000) {
                        fprintf(stderr, "round %d: no new epoch within 10 s\n", round);
                        return 1;
                    }
                    struct timespec ts = {0, 100000};
                    nanosleep(&ts, NULL);
                }
                if (is_mass)
                    mass[nmass++] = now_ms() - t0;
                else if (round > 0)
                    lat[nlat++] = now_ms() - t0;
            }
            /* Monitors send what changed since their last batch (a delta), and
             * their whole state in round 0, as the monitor publisher does. */
            Ibp__V1__ObservationBatch b = IBP__V1__OBSERVATION_BATCH__INIT;
            b.batch_seq = (uint64_t)round + 1;
            b.full = round == 0;
            b.n_observations = (round == 0 || is_mass) ? KEYS : 1;
            b.observations = (round == 0 || is_mass) ? ptrs : &ptrs[round % KEYS];
            uint8_t *sealed;
            size_t len;
            uint64_t seq;
            char subject[64];
            ibp_signer_seal(mon[m], IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH, &b.base,
                            1, &sealed, &len, &seq, &err);
            ibp_subject_local(ibp_signer_id(mon[m]), subject, sizeof subject);
            if (m == completing)
                t0 = now_ms();
            if (ibp_bus_publish_envelope(
                    js, subject, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH,
                    ibp_signer_id(mon[m]), seq, sealed, len, NULL, 0, NULL, NULL, &err) != IBP_OK) {
                fprintf(stderr, "publish: %s\n", err.msg);
                return 1;
            }
            free(sealed);
        }
        /* Let the replicas finish the epoch's events and status messages, so
         * each round measures a quorum completing on an idle cluster. */
        for (int idle = 0; idle < 200; idle++) {
            uint64_t events = 0;
            for (int i = 0; i < REPLICAS; i++) {
                ibp_replica_stats st;
                ibp_replica_stats_get(replicas[i], &st);
                events += st.events_published;
            }
            static uint64_t last_events;
            if (events == last_events && idle > 2)
                break;
            last_events = events;
            struct timespec ts = {0, 50000000};
            nanosleep(&ts, NULL);
        }
    }
    qsort(lat, (size_t)nlat, sizeof lat[0], cmp_double);
    printf("BENCH e2e_p50_ms %.2f ms\n", lat[nlat / 2]);
    printf("BENCH e2e_p99_ms %.2f ms\n",
           lat[(nlat * 99) / 100 >= nlat ? nlat - 1 : (nlat * 99) / 100]);
    printf("BENCH e2e_max_ms %.2f ms\n", lat[nlat - 1]);
    qsort(mass, (size_t)nmass, sizeof mass[0], cmp_double);
    printf("BENCH e2e_mass_flip_p50_ms %.2f ms\n", mass[nmass / 2]);
    printf("BENCH e2e_mass_flip_max_ms %.2f ms\n", mass[nmass - 1]);
    printf("BENCH e2e_snapshot_bytes %llu bytes\n",
           (unsigned long long)atomic_load(&sub.snapshot_bytes));
    printf("BENCH e2e_keys %d keys\n", KEYS);

    natsSubscription_Destroy(ssub);
    for (int i = 0; i < REPLICAS; i++) {
        ibp_replica_stop(replicas[i]);
        natsConnection_Destroy(rnc[i]);
        ibp_signer_free(rep[i]);
    }
    natsConnection_Destroy(snc);
    for (int i = 0; i < MONITORS; i++)
        ibp_signer_free(mon[i]);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    ibp_store_free(sub.store);
    ibp_verifier_free(sub.verifier);
    ibp_roster_free(roster);
    free(keys);
    free(obs);
    free(ptrs);
    free(urls);
    ibp_testenv_rmtree(dir);
    ibp_testenv_private_stop(&servers);
    return 0;
}
