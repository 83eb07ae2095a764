/*
 * Benchmark: the size and encoding time of an OfficialSnapshot.
 *
 *   BENCH snapshot_bytes_per_key     100k official endpoint keys (target <= 40)
 *   BENCH snapshot_bytes             the whole payload (limit 8 MiB)
 *   BENCH snapshot_encode_ms         encoding it once
 *   BENCH snapshot_decode_ms         protobuf-c unpack + checks into store results
 *   BENCH naive_bytes_per_key        the same keys as ObservationBatch observations
 *                                    (strings repeated): what interning saves
 *   RATIO snapshot_vs_naive          the two above
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ibp/ibp.pb-c.h"
#include "ibp/official_snapshot.h"
#include "ibp/snapshot_encode.h"
#include "ibp/vote.h"

#define KEYS 100000
#define MEMBERS 200
#define DOMAINS 500
#define MONITORS 3

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(void)
{
    ibp_vote_config cfg;
    ibp_vote *e;
    ibp_vote_config_init(&cfg);
    if (ibp_vote_new(&cfg, &e) != IBP_VOTE_OK)
        return 1;
    char(*members)[32] = calloc(MEMBERS, sizeof *members);
    char(*domains)[64] = calloc(DOMAINS, sizeof *domains);
    char(*urls)[96] = calloc(KEYS, sizeof *urls);
    ibp_vote_obs *obs = calloc(KEYS, sizeof *obs);
    for (int i = 0; i < MEMBERS; i++)
        snprintf(members[i], sizeof members[i], "Member %d", i);
    for (int i = 0; i < DOMAINS; i++)
        snprintf(domains[i], sizeof domains[i], "rpc%d.ibp.network", i);
    for (int i = 0; i < KEYS; i++) {
        int d = i % DOMAINS;
        snprintf(urls[i], sizeof urls[i], "wss://%s/chain-%d", domains[d], i / DOMAINS);
        obs[i].key = (ibp_vote_key){IBP_VOTE_ENDPOINT, "wss",   members[(i / 7) % MEMBERS],
                                    domains[d],        urls[i], (i & 1) != 0};
        obs[i].status = (i % 50) ? IBP_VOTE_UP : IBP_VOTE_DOWN;
        obs[i].check_time_ms = 1700000000000 + i % 1000;
        obs[i].error = obs[i].status == IBP_VOTE_DOWN ? "connect timeout" : "";
        obs[i].data_json = "";
    }
    /* Three monitors report every key: each key becomes official. */
    ibp_vote_update u;
    uint64_t seq = 0;
    for (int m = 0; m < MONITORS; m++) {
        char node[16];
        snprintf(node, sizeof node, "mon%d", m);
        for (int off = 0; off < KEYS; off += 10000) {
            ibp_vote_msg msg = {.kind = IBP_VOTE_MSG_OBSERVATION_BATCH,
                                .signer = node,
                                .local_seq = ++seq,
                                .stream_ms = 1700000000000 + (int64_t)seq,
                                .batch_seq = seq,
                                .obs = &obs[off],
                                .nobs = 10000};
            if (ibp_vote_apply(e, &msg, &u) != IBP_VOTE_OK) {
                fprintf(stderr, "apply: %s\n", ibp_vote_last_error(e));
                return 1;
            }
        }
    }
    ibp_vote_info info;
    ibp_vote_get_info(e, &info);
    uint8_t *buf;
    size_t len;
    ibp_err err;
    double t0 = now_ms();
    if (ibp_snapshot_encode(e, NULL, &buf, &len, &err) != IBP_OK) {
        fprintf(stderr, "encode: %s\n", err.msg);
        return 1;
    }
    double enc_ms = now_ms() - t0;
    t0 = now_ms();
    Ibp__V1__OfficialSnapshot *s = ibp__v1__official_snapshot__unpack(NULL, len, buf);
    ibp_official_snapshot snap;
    if (!s || ibp_official_snapshot_from_proto(s, &snap, &err) != IBP_OK) {
        fprintf(stderr, "decode: %s\n", err.msg);
        return 1;
    }
    double dec_ms = now_ms() - t0;
    size_t decoded = snap.results.count;
    ibp_official_snapshot_clear(&snap);
    ibp__v1__official_snapshot__free_unpacked(s, NULL);

    /* The naive encoding: every key's strings written out. */
    Ibp__V1__ResultKey *keys = calloc(KEYS, sizeof *keys);
    Ibp__V1__Observation *po = calloc(KEYS, sizeof *po);
    Ibp__V1__Observation **pp = calloc(KEYS, sizeof *pp);
    for (int i = 0; i < KEYS; i++) {
        ibp__v1__result_key__init(&keys[i]);
        keys[i].check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
        keys[i].check_name = "wss";
        keys[i].member = (char *)obs[i].key.member;
        keys[i].domain = (char *)obs[i].key.domain;
        keys[i].endpoint = (char *)obs[i].key.endpoint;
        keys[i].ipv6 = obs[i].key.ipv6;
        ibp__v1__observation__init(&po[i]);
        po[i].key = &keys[i];
        po[i].status = obs[i].status == IBP_VOTE_UP ? IBP__V1__STATUS__STATUS_UP
                                                    : IBP__V1__STATUS__STATUS_DOWN;
        po[i].check_time_ms = obs[i].check_time_ms;
        po[i].error = (char *)obs[i].error;
        pp[i] = &po[i];
    }
    Ibp__V1__ObservationBatch naive = IBP__V1__OBSERVATION_BATCH__INIT;
    naive.n_observations = KEYS;
    naive.observations = pp;
    size_t naive_len = ibp__v1__observation_batch__get_packed_size(&naive);

    printf("BENCH snapshot_keys %zu keys\n", info.official_keys);
    printf("BENCH snapshot_decoded_keys %zu keys\n", decoded);
    printf("BENCH snapshot_bytes %zu bytes\n", len);
    printf("BENCH snapshot_bytes_per_key %.1f bytes\n", (double)len / (double)info.official_keys);
    printf("BENCH snapshot_encode_ms %.1f ms\n", enc_ms);
    printf("BENCH snapshot_decode_ms %.1f ms\n", dec_ms);
    printf("BENCH naive_bytes_per_key %.1f bytes\n", (double)naive_len / KEYS);
    printf("RATIO snapshot_vs_naive %.2f\n", (double)len / (double)naive_len);
    free(buf);
    free(keys);
    free(po);
    free(pp);
    free(members);
    free(domains);
    free(urls);
    free(obs);
    ibp_vote_free(e);
    return 0;
}
