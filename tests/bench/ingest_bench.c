/*
 * Benchmark: what a replica does per LOCAL message, without the network:
 * verify the envelope (signature once per batch), decode it, convert it and
 * apply it to the vote engine.
 *
 *   BENCH verified_ingest_obs_per_s   target >= 0.5M observations/s per core
 *   BENCH engine_only_obs_per_s       the engine alone on the same messages, same run
 *   RATIO verified_vs_engine_only
 * 5 monitors, 2,000 keys each round, batches of 500 observations.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ibp/envelope.h"
#include "ibp/local_msg.h"
#include "ibp/log.h"
#include "ibp/vote.h"

#define MONITORS 5
#define KEYS 2000
#define BATCH 500
#define ROUNDS 40

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
    ibp_roster *roster;
    ibp_signer *signers[MONITORS];
    ibp_err err;
    char tmp[] = "/tmp/ibp-ingest-bench.XXXXXX";
    if (!mkdtemp(tmp))
        return 1;
    ibp_log_set_level(IBP_LOG_OFF);
    ibp_roster_new(&roster);
    for (int m = 0; m < MONITORS; m++) {
        char id[16], path[128];
        ibp_key k;
        snprintf(id, sizeof id, "mon%d", m);
        snprintf(path, sizeof path, "%s/%s.seq", tmp, id);
        ibp_key_generate(&k);
        ibp_roster_add(roster, id, k.pk, IBP_ROLE_MONITOR, &err);
        if (ibp_signer_new(id, &k, path, &signers[m], &err) != IBP_OK)
            return 1;
    }
    /* Every monitor reports every key each round, alternating status every 10 rounds. */
    char(*urls)[64] = calloc(KEYS, sizeof *urls);
    Ibp__V1__ResultKey *keys = calloc(KEYS, sizeof *keys);
    Ibp__V1__Observation *obs = calloc(KEYS, sizeof *obs);
    Ibp__V1__Observation **ptrs = calloc(KEYS, sizeof *ptrs);
    for (int i = 0; i < KEYS; i++) {
        snprintf(urls[i], sizeof urls[i], "wss://rpc%d.example.net/chain-%d", i % 40, i);
        char *domain = strdup(urls[i] + 6);
        *strchr(domain, '/') = '\0';
        ibp__v1__result_key__init(&keys[i]);
        keys[i].check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
        keys[i].check_name = "wss";
        keys[i].member = i % 2 ? "Stake Plus" : "Amforc";
        keys[i].domain = domain;
        keys[i].endpoint = urls[i];
        ibp__v1__observation__init(&obs[i]);
        obs[i].key = &keys[i];
        ptrs[i] = &obs[i];
    }
    size_t nmsgs = (size_t)ROUNDS * MONITORS * (KEYS / BATCH);
    uint8_t **msgs = calloc(nmsgs, sizeof *msgs);
    size_t *lens = calloc(nmsgs, sizeof *lens);
    size_t k = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < KEYS; i++) {
            obs[i].status =
                (round / 10) % 2 ? IBP__V1__STATUS__STATUS_DOWN : IBP__V1__STATUS__STATUS_UP;
            obs[i].check_time_ms = 1700000000000 + round;
        }
        for (int m = 0; m < MONITORS; m++) {
            for (int off = 0; off < KEYS; off += BATCH) {
                Ibp__V1__ObservationBatch b = IBP__V1__OBSERVATION_BATCH__INIT;
                b.batch_seq = k + 1;
                b.n_observations = BATCH;
                b.observations = &ptrs[off];
                if (ibp_signer_seal(signers[m],
                                    IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH, &b.base,
                                    1, &msgs[k], &lens[k], NULL, &err) != IBP_OK)
                    return 1;
                k++;
            }
        }
    }

    ibp_vote_config cfg;
    ibp_vote_config_init(&cfg);
    ibp_vote *e;
    ibp_verifier *v;
    ibp_vote_new(&cfg, &e);
    ibp_verifier_new(roster, NULL, &v);
    double t0 = now_s();
    for (size_t i = 0; i < nmsgs; i++) {
        ibp_verified vm = {0};
        ibp_vote_msg msg;
        ibp_vote_obs *o = NULL;
        ibp_vote_update u;
        if (ibp_verifier_check(v, msgs[i], lens[i], &vm, &err) != IBP_OK ||
            ibp_local_msg_from_verified(&vm, i + 1, 1700000000000 + (int64_t)i * 5, &msg, &o) !=
                IBP_OK ||
            ibp_vote_apply(e, &msg, &u) != IBP_VOTE_OK) {
            fprintf(stderr, "ingest failed at %zu: %s %s\n", i, err.msg, ibp_vote_last_error(e));
            return 1;
        }
        free(o);
        ibp_verified_clear(&vm);
    }
    double verified_s = now_s() - t0;
    ibp_vote_info info;
    ibp_vote_get_info(e, &info);
    ibp_vote_free(e);

    /* The engine alone: decode everything first, then time the applies. */
    ibp_verifier *v2;
    ibp_verifier_new(roster, NULL, &v2);
    ibp_verified *vms = calloc(nmsgs, sizeof *vms);
    ibp_vote_msg *vmsgs = calloc(nmsgs, sizeof *vmsgs);
    ibp_vote_obs **vobs = calloc(nmsgs, sizeof *vobs);
    for (size_t i = 0; i < nmsgs; i++) {
        ibp_verifier_check(v2, msgs[i], lens[i], &vms[i], &err);
        ibp_local_msg_from_verified(&vms[i], i + 1, 1700000000000 + (int64_t)i * 5, &vmsgs[i],
                                    &vobs[i]);
    }
    ibp_vote_new(&cfg, &e);
    t0 = now_s();
    for (size_t i = 0; i < nmsgs; i++) {
        ibp_vote_update u;
        if (ibp_vote_apply(e, &vmsgs[i], &u) != IBP_VOTE_OK)
            return 1;
    }
    double engine_s = now_s() - t0;
    double total_obs = (double)nmsgs * BATCH;
    printf("BENCH verified_ingest_obs_per_s %.0f obs/s\n", total_obs / verified_s);
    printf("BENCH engine_only_obs_per_s %.0f obs/s\n", total_obs / engine_s);
    printf("RATIO verified_vs_engine_only %.2f\n", engine_s / verified_s);
    printf("BENCH ingest_epochs %llu epochs\n", (unsigned long long)info.epoch);

    for (size_t i = 0; i < nmsgs; i++) {
        free(vobs[i]);
        ibp_verified_clear(&vms[i]);
        free(msgs[i]);
    }
    free(vms);
    free(vmsgs);
    free(vobs);
    free(msgs);
    free(lens);
    for (int i = 0; i < KEYS; i++)
        free(keys[i].domain);
    free(keys);
    free(obs);
    free(ptrs);
    free(urls);
    ibp_vote_free(e);
    ibp_verifier_free(v);
    ibp_verifier_free(v2);
    for (int m = 0; m < MONITORS; m++)
        ibp_signer_free(signers[m]);
    ibp_roster_free(roster);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    return system(cmd) == 0 ? 0 : 1;
}
