/* Helpers of the in-process replica tests; see replica_testlib.h. */
#include "replica_testlib.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ibp/bus.h"
#include "ibp/subject.h"

void rt_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void rt_must(ibp_status st, const ibp_err *err)
{
    if (st != IBP_OK)
        fail_msg("%s: %s", ibp_status_name(st), err ? err->msg : "");
}

ibp_signer *rt_signer(const char *dir, const char *id, const ibp_key *key)
{
    char path[1200];
    ibp_signer *s;
    ibp_err err;
    snprintf(path, sizeof path, "%s/%s.seq", dir, id);
    rt_must(ibp_signer_new(id, key, path, &s, &err), &err);
    return s;
}

void rt_add_nodes(ibp_roster *roster, const char *dir, const char *prefix, unsigned role, int n,
                  ibp_key *keys, ibp_signer **signers)
{
    ibp_err err;
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "%s%d", prefix, i + 1);
        rt_must(ibp_key_generate(&keys[i]), NULL);
        rt_must(ibp_roster_add(roster, id, keys[i].pk, role, &err), &err);
        signers[i] = rt_signer(dir, id, &keys[i]);
    }
}

uint64_t rt_observe(jsCtx *js, ibp_signer *s, bool up, uint64_t batch_seq, int64_t check_time_ms,
                    uint8_t **keep, size_t *keep_len)
{
    Ibp__V1__ResultKey k = IBP__V1__RESULT_KEY__INIT;
    k.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
    k.check_name = "wss";
    k.member = "Stake Plus";
    k.domain = "rpc.example.net";
    k.endpoint = RT_ENDPOINT;
    Ibp__V1__Observation o = IBP__V1__OBSERVATION__INIT;
    o.key = &k;
    o.status = up ? IBP__V1__STATUS__STATUS_UP : IBP__V1__STATUS__STATUS_DOWN;
    o.check_time_ms = check_time_ms;
    o.error = up ? "" : "connect timeout";
    Ibp__V1__Observation *list[] = {&o};
    Ibp__V1__ObservationBatch b = IBP__V1__OBSERVATION_BATCH__INIT;
    b.batch_seq = batch_seq;
    b.n_observations = 1;
    b.observations = list;
    uint8_t *msg;
    size_t len;
    uint64_t seq, stream_seq = 0;
    ibp_err err;
    char subject[128];
    rt_must(ibp_signer_seal(s, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH, &b.base, 1,
                            &msg, &len, &seq, &err),
            &err);
    ibp_subject_local(ibp_signer_id(s), subject, sizeof subject);
    rt_must(
        ibp_bus_publish_envelope(js, subject, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH,
                                 ibp_signer_id(s), seq, msg, len, NULL, 0, &stream_seq, NULL, &err),
        &err);
    if (keep) {
        *keep = msg;
        *keep_len = len;
    } else {
        free(msg);
    }
    return stream_seq;
}

void rt_wait_applied(ibp_replica **reps, size_t n, uint64_t seq)
{
    for (int i = 0; i < 500; i++) {
        bool all = true;
        for (size_t r = 0; r < n; r++) {
            ibp_replica_stats st;
            ibp_replica_stats_get(reps[r], &st);
            if (st.local_seq < seq)
                all = false;
        }
        if (all)
            return;
        rt_sleep_ms(20);
    }
    fail_msg("replicas did not reach LOCAL seq %" PRIu64, seq);
}

size_t rt_official_epochs(jsCtx *js, const ibp_roster *roster, uint64_t *epochs, size_t cap,
                          int *last_down)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    size_t n = 0;
    if (js_GetStreamInfo(&si, js, IBP_STREAM_OFFICIAL, NULL, &jerr) != NATS_OK)
        return 0;
    uint64_t first = si->State.FirstSeq, last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    ibp_verifier *v;
    ibp_verifier_new(roster, NULL, &v);
    for (uint64_t seq = first; seq && seq <= last && n < cap; seq++) {
        natsMsg *m = NULL;
        if (js_GetMsg(&m, js, IBP_STREAM_OFFICIAL, seq, NULL, &jerr) != NATS_OK)
            continue;
        ibp_verified vm = {0};
        ibp_err err;
        if (ibp_verifier_check_stateless(v, (const uint8_t *)natsMsg_GetData(m),
                                         (size_t)natsMsg_GetDataLength(m), &vm, &err) == IBP_OK) {
            const Ibp__V1__OfficialSnapshot *s = (const Ibp__V1__OfficialSnapshot *)vm.payload;
            epochs[n++] = s->epoch;
            if (last_down && s->n_entries == 1)
                *last_down = s->entries[0]->status == IBP__V1__STATUS__STATUS_DOWN;
            ibp_verified_clear(&vm);
        }
        natsMsg_Destroy(m);
    }
    ibp_verifier_free(v);
    return n;
}

/* Every message of stream, in order, into msgs (at most cap); returns the count. */
static size_t read_stream(jsCtx *js, const char *stream, natsMsg **msgs, size_t cap)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    size_t n = 0;
    if (js_GetStreamInfo(&si, js, stream, NULL, &jerr) != NATS_OK)
        return 0;
    uint64_t first = si->State.FirstSeq, last = si->State.LastSeq;
    uint64_t count = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    for (uint64_t seq = first; count && seq && seq <= last && n < cap; seq++)
        if (js_GetMsg(&msgs[n], js, stream, seq, NULL, &jerr) == NATS_OK)
            n++;
    return n;
}

void rt_certify_epoch(jsCtx *js, const ibp_roster *roster, uint64_t epoch, size_t quorum,
                      ibp_certificate_result *out)
{
    enum { CAP = 256 };
    natsMsg *snaps[CAP], *stmts[CAP];
    size_t ns = read_stream(js, IBP_STREAM_OFFICIAL, snaps, CAP);
    size_t nt = read_stream(js, IBP_STREAM_COSIGN, stmts, CAP);
    ibp_verifier *v;
    ibp_verifier_new(roster, NULL, &v);
    ibp_certificate_claim claim;
    memset(&claim, 0, sizeof claim);
    bool found = false;
    for (size_t i = 0; i < ns && !found; i++) {
        ibp_verified vm = {0};
        ibp_err err;
        if (ibp_verifier_check_stateless(v, (const uint8_t *)natsMsg_GetData(snaps[i]),
                                         (size_t)natsMsg_GetDataLength(snaps[i]), &vm,
                                         &err) != IBP_OK)
            continue;
        const Ibp__V1__OfficialSnapshot *s = (const Ibp__V1__OfficialSnapshot *)vm.payload;
        if (vm.envelope->type == IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT &&
            s->epoch == epoch && s->state_digest.len == IBP_CERT_DIGEST_BYTES) {
            found = true;
            claim.epoch = epoch;
            claim.local_seq = s->local_seq;
            memcpy(claim.state_digest, s->state_digest.data, IBP_CERT_DIGEST_BYTES);
            ibp_certificate_snapshot_hash(vm.envelope->payload.data, vm.envelope->payload.len,
                                          claim.snapshot_hash);
        }
        ibp_verified_clear(&vm);
    }
    ibp_verifier_free(v);
    const uint8_t *data[CAP];
    size_t lens[CAP];
    for (size_t i = 0; i < nt; i++) {
        data[i] = (const uint8_t *)natsMsg_GetData(stmts[i]);
        lens[i] = (size_t)natsMsg_GetDataLength(stmts[i]);
    }
    ibp_status st = ibp_certificate_verify(roster, quorum, &claim, data, lens, nt, out);
    for (size_t i = 0; i < ns; i++)
        natsMsg_Destroy(snaps[i]);
    for (size_t i = 0; i < nt; i++)
        natsMsg_Destroy(stmts[i]);
    if (!found)
        fail_msg("no snapshot of epoch %" PRIu64 " on %s", epoch, IBP_STREAM_OFFICIAL);
    if (st != IBP_OK)
        fail_msg("certificate of epoch %" PRIu64 ": %s", epoch, ibp_status_name(st));
}
