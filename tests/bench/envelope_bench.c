/*
 * Benchmark: sealing and verifying envelopes.
 *
 * Prints, per core:
 *   BENCH seal_per_s            envelopes sealed (pack + sequence + sign)
 *   BENCH verify_per_s          envelopes fully verified (decode, roster,
 *                               signature, role, sequence, payload decode)
 *   BENCH raw_ed25519_verify_per_s  crypto_sign_verify_detached alone, same run
 *   RATIO verify_vs_raw_ed25519 what the checks around the signature cost
 * for a batch of 50 observations, the size a monitor sends.
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ibp/envelope.h"
#include "ibp/log.h"

#define OBS_PER_BATCH 50
#define ROUNDS 20000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
    ibp_key key;
    ibp_roster *roster;
    ibp_signer *signer;
    ibp_verifier *verifier;
    ibp_err err;
    char seq_path[] = "/tmp/ibp-bench-seq.XXXXXX";
    int fd = mkstemp(seq_path);
    if (fd < 0)
        return 1;
    close(fd);
    unlink(seq_path);
    ibp_log_set_level(IBP_LOG_OFF);
    if (ibp_key_generate(&key) != IBP_OK || ibp_roster_new(&roster) != IBP_OK ||
        ibp_roster_add(roster, "mon1", key.pk, IBP_ROLE_MONITOR, &err) != IBP_OK ||
        ibp_signer_new("mon1", &key, seq_path, &signer, &err) != IBP_OK ||
        ibp_verifier_new(roster, NULL, &verifier) != IBP_OK) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }

    Ibp__V1__ResultKey keys[OBS_PER_BATCH];
    Ibp__V1__Observation obs[OBS_PER_BATCH];
    Ibp__V1__Observation *list[OBS_PER_BATCH];
    char names[OBS_PER_BATCH][64];
    for (int i = 0; i < OBS_PER_BATCH; i++) {
        ibp__v1__result_key__init(&keys[i]);
        ibp__v1__observation__init(&obs[i]);
        snprintf(names[i], sizeof names[i], "wss://rpc.ibp.network/chain-%d", i);
        keys[i].check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
        keys[i].check_name = "wss";
        keys[i].member = "Stake Plus";
        keys[i].domain = "rpc.ibp.network";
        keys[i].endpoint = names[i];
        obs[i].key = &keys[i];
        obs[i].status = IBP__V1__STATUS__STATUS_UP;
        obs[i].check_time_ms = 1700000000000 + i;
        list[i] = &obs[i];
    }
    Ibp__V1__ObservationBatch batch = IBP__V1__OBSERVATION_BATCH__INIT;
    batch.n_observations = OBS_PER_BATCH;
    batch.observations = list;

    uint8_t **sealed = calloc(ROUNDS, sizeof *sealed);
    size_t *lens = calloc(ROUNDS, sizeof *lens);
    double t0 = now_s();
    for (int i = 0; i < ROUNDS; i++) {
        batch.batch_seq = (uint64_t)i + 1;
        if (ibp_signer_seal(signer, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH,
                            &batch.base, 1, &sealed[i], &lens[i], NULL, &err) != IBP_OK) {
            fprintf(stderr, "seal: %s\n", err.msg);
            return 1;
        }
    }
    double seal_s = now_s() - t0;

    t0 = now_s();
    for (int i = 0; i < ROUNDS; i++) {
        ibp_verified vm = {0};
        if (ibp_verifier_check(verifier, sealed[i], lens[i], &vm, &err) != IBP_OK) {
            fprintf(stderr, "verify: %s\n", err.msg);
            return 1;
        }
        ibp_verified_clear(&vm);
    }
    double verify_s = now_s() - t0;

    /* The baseline: the Ed25519 verification alone, over an input of the same size
     * as our signing input (the envelope signs a fixed 144-byte-or-less input). */
    uint8_t msg[144], sig[64];
    memset(msg, 7, sizeof msg);
    crypto_sign_detached(sig, NULL, msg, sizeof msg, key.sk);
    t0 = now_s();
    for (int i = 0; i < ROUNDS; i++)
        if (crypto_sign_verify_detached(sig, msg, sizeof msg, key.pk) != 0)
            return 1;
    double raw_s = now_s() - t0;

    printf("BENCH envelope_bytes %zu bytes\n", lens[0]);
    printf("BENCH seal_per_s %.0f envelopes/s\n", ROUNDS / seal_s);
    printf("BENCH verify_per_s %.0f envelopes/s\n", ROUNDS / verify_s);
    printf("BENCH verify_obs_per_s %.0f observations/s\n", ROUNDS * OBS_PER_BATCH / verify_s);
    printf("BENCH raw_ed25519_verify_per_s %.0f signatures/s\n", ROUNDS / raw_s);
    printf("RATIO verify_vs_raw_ed25519 %.2f\n", raw_s / verify_s);

    for (int i = 0; i < ROUNDS; i++)
        free(sealed[i]);
    free(sealed);
    free(lens);
    ibp_verifier_free(verifier);
    ibp_signer_free(signer);
    ibp_roster_free(roster);
    unlink(seq_path);
    return 0;
}
