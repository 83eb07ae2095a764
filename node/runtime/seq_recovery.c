/* Sequence recovery from the node's own subjects; see ibp/seq_recovery.h. */
#include "ibp/seq_recovery.h"

#include <stdio.h>
#include <string.h>

#include "ibp/log.h"
#include "ibp/seqfile.h"
#include "ibp/subject.h"

#define COMPONENT "seq-recovery"

ibp_status ibp_seq_last_own_read(jsCtx *js, const ibp_roster *roster, const char *node_id,
                                 const char *stream, const char *subject, ibp_seq_last_own *out,
                                 ibp_err *err)
{
    memset(out, 0, sizeof *out);
    jsDirectGetMsgOptions o;
    jsDirectGetMsgOptions_Init(&o);
    o.LastBySubject = subject;
    natsMsg *m = NULL;
    natsStatus s = js_DirectGetMsg(&m, js, stream, NULL, &o);
    if (s == NATS_NOT_FOUND)
        return IBP_OK; /* nothing on the subject, or no such stream */
    if (s != NATS_OK)
        return ibp_err_set(err, IBP_E_NATS, "last message on %s (stream %s)%s: %s", subject,
                           stream, s == NATS_NOT_PERMITTED ? " refused" : "",
                           nats_GetLastError(NULL));

    ibp_verifier *v = NULL;
    ibp_verifier_opts vo;
    ibp_verifier_opts_init(&vo);
    vo.log_component = COMPONENT;
    ibp_status st = ibp_verifier_new(roster, &vo, &v);
    if (st != IBP_OK) {
        natsMsg_Destroy(m);
        return ibp_err_set(err, st, "verifier: %s", ibp_status_name(st));
    }
    ibp_verified vm = {0};
    ibp_err verr = {0};
    const uint8_t *data = (const uint8_t *)natsMsg_GetData(m);
    size_t len = (size_t)natsMsg_GetDataLength(m);
    if (ibp_verifier_check_stateless(v, data, len, &vm, &verr) != IBP_OK) {
        IBP_LOG(IBP_LOG_WARN, COMPONENT, "last message on %s does not verify, ignored: %s",
                subject, verr.msg);
    } else if (strcmp(vm.envelope->signer, node_id) != 0) {
        IBP_LOG(IBP_LOG_WARN, COMPONENT, "last message on %s is signed by %s, not %s: ignored",
                subject, vm.envelope->signer, node_id);
    } else {
        out->found = true;
        out->envelope_seq = vm.envelope->seq;
        out->type = vm.envelope->type;
        if (vm.envelope->type == IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH)
            out->payload_seq = ((const Ibp__V1__ObservationBatch *)vm.payload)->batch_seq;
        else if (vm.envelope->type == IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH)
            out->payload_seq = ((const Ibp__V1__HitBatch *)vm.payload)->flush_seq;
    }
    ibp_verified_clear(&vm);
    ibp_verifier_free(v);
    natsMsg_Destroy(m);
    return IBP_OK;
}

/* Raises work_dir/name above floor; counts and logs a raise. */
static ibp_status raise_file(const char *work_dir, const char *name, uint64_t floor,
                             const char *subject, unsigned *raised, ibp_err *err)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", work_dir, name);
    if (n < 0 || (size_t)n >= sizeof path)
        return ibp_err_set(err, IBP_E_CONFIG, "work dir path too long for %s", name);
    ibp_seqfile *sf = NULL;
    ibp_status st = ibp_seqfile_open(path, &sf, err);
    if (st != IBP_OK)
        return st;
    uint64_t before = ibp_seqfile_last(sf);
    bool up = false;
    st = ibp_seqfile_raise(sf, floor, &up, err);
    ibp_seqfile_close(sf);
    if (st != IBP_OK)
        return st;
    if (up) {
        (*raised)++;
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "%s was behind the bus (lost or restored work dir): raised from %llu to %llu, "
                "the last number on %s",
                path, (unsigned long long)before, (unsigned long long)floor, subject);
    }
    return IBP_OK;
}

ibp_status ibp_seq_recover(jsCtx *js, const ibp_roster *roster, const char *node_id,
                           unsigned roles, const char *work_dir, unsigned *raised, ibp_err *err)
{
    unsigned count = 0;
    uint64_t signer_floor = 0;
    const char *signer_subject = NULL;
    char local[512], hits[512];
    ibp_seq_last_own last;
    ibp_status st = IBP_OK;

    if (roles & IBP_ROLE_MONITOR) {
        if ((st = ibp_subject_local(node_id, local, sizeof local)) != IBP_OK)
            return ibp_err_set(err, st, "subject of node %s", node_id);
        if ((st = ibp_seq_last_own_read(js, roster, node_id, IBP_STREAM_LOCAL, local, &last,
                                        err)) != IBP_OK)
            return st;
        if (last.found) {
            signer_floor = last.envelope_seq;
            signer_subject = local;
            if (last.payload_seq &&
                (st = raise_file(work_dir, "monitor-batch.seq", last.payload_seq, local, &count,
                                 err)) != IBP_OK)
                return st;
        }
    }
    if (roles & IBP_ROLE_DNS) {
        if ((st = ibp_subject_hits(node_id, hits, sizeof hits)) != IBP_OK)
            return ibp_err_set(err, st, "subject of node %s", node_id);
        if ((st = ibp_seq_last_own_read(js, roster, node_id, IBP_STREAM_HITS, hits, &last, err)) !=
            IBP_OK)
            return st;
        if (last.found) {
            if (last.envelope_seq > signer_floor) {
                signer_floor = last.envelope_seq;
                signer_subject = hits;
            }
            if (last.payload_seq &&
                (st = raise_file(work_dir, "usage.seq", last.payload_seq, hits, &count, err)) !=
                    IBP_OK)
                return st;
        }
    }
    if (signer_floor &&
        (st = raise_file(work_dir, "signer.seq", signer_floor, signer_subject, &count, err)) !=
            IBP_OK)
        return st;
    if (raised)
        *raised = count;
    return IBP_OK;
}
