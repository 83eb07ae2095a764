/* The NATS usage sink; see ibp/usage_nats_sink.h. */
#include "ibp/usage_nats_sink.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/bus.h"
#include "ibp/clock.h"
#include "ibp/log.h"
#include "ibp/roster.h"
#include "ibp/subject.h"

#define COMPONENT "usage-sink"
#define PREFIX_MAX 128

typedef struct nats_sink {
    natsConnection *nc;
    jsCtx *js;
    ibp_signer *signer;
    char prefix[PREFIX_MAX + 1];
    uint64_t published, duplicates, failures;
} nats_sink;

void ibp_usage_nats_sink_opts_init(ibp_usage_nats_sink_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->subject_prefix = "ibp.hits";
    opts->publish_timeout_ms = 5000;
}

static ibp_status sink_deliver(void *ctx, const Ibp__V1__HitBatch *batch, const uint8_t *packed,
                               size_t len, ibp_err *err)
{
    nats_sink *s = ctx;
    const char *me = ibp_signer_id(s->signer);
    char subject[PREFIX_MAX + IBP_NODE_ID_MAX + 2];
    char msg_id[IBP_NODE_ID_MAX + 24];
    uint8_t *env = NULL;
    size_t env_len = 0;
    uint64_t seq = 0, stream_seq = 0;
    bool dup = false;

    if (batch->node == NULL || strcmp(batch->node, me) != 0)
        return ibp_err_set(err, IBP_E_INVAL,
                           "usage sink: HitBatch of node '%s' cannot be signed by '%s' (persist "
                           "accepts a node's hits only from that node)",
                           batch->node ? batch->node : "", me);
    natsConnStatus cs = natsConnection_Status(s->nc);
    if (cs != NATS_CONN_STATUS_CONNECTED) {
        s->failures++;
        return ibp_err_set(err, IBP_E_NATS,
                           "usage sink: NATS not connected (status %d): HitBatch %s flush_seq "
                           "%" PRIu64 " stays in the journal",
                           (int)cs, batch->node, batch->flush_seq);
    }
    int n = snprintf(subject, sizeof subject, "%s.%s", s->prefix, batch->node);
    int m = snprintf(msg_id, sizeof msg_id, "%s-%" PRIu64, batch->node, batch->flush_seq);
    if (n < 0 || (size_t)n >= sizeof subject || m < 0 || (size_t)m >= sizeof msg_id)
        return ibp_err_set(err, IBP_E_INVAL, "usage sink: subject or message id too long");
    ibp_status st = ibp_signer_seal_bytes(s->signer, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH,
                                          packed, len, ibp_clock_wall_ms(), &env, &env_len, &seq, err);
    if (st != IBP_OK)
        return st;
    st = ibp_bus_publish_envelope(s->js, subject, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH, me,
                                  seq, env, env_len, msg_id, 0, &stream_seq, &dup, err);
    free(env);
    if (st != IBP_OK) {
        s->failures++;
        ibp_err_wrap(err, "usage sink: HitBatch %s flush_seq %" PRIu64, batch->node,
                     batch->flush_seq);
        return st;
    }
    s->published++;
    if (dup)
        s->duplicates++;
    IBP_LOG(IBP_LOG_DEBUG, COMPONENT,
            "published HitBatch node=%s flush_seq=%" PRIu64 " rows=%zu stream_seq=%" PRIu64
            " duplicate=%d",
            batch->node, batch->flush_seq, batch->n_rows, stream_seq, dup);
    return IBP_OK;
}

static void sink_close(void *ctx)
{
    nats_sink *s = ctx;
    if (s == NULL)
        return;
    IBP_LOG(IBP_LOG_INFO, COMPONENT,
            "closed published=%" PRIu64 " duplicates=%" PRIu64 " failures=%" PRIu64, s->published,
            s->duplicates, s->failures);
    jsCtx_Destroy(s->js);
    free(s);
}

ibp_status ibp_usage_nats_sink_open(const ibp_usage_nats_sink_opts *opts, ibp_usage_sink *out,
                                    ibp_err *err)
{
    if (opts == NULL || out == NULL || opts->nc == NULL || opts->signer == NULL)
        return ibp_err_set(err, IBP_E_INVAL, "usage sink: nc and signer are required");
    const char *prefix = opts->subject_prefix ? opts->subject_prefix : "ibp.hits";
    size_t plen = strlen(prefix);
    if (plen == 0 || plen > PREFIX_MAX || prefix[plen - 1] == '.' || strpbrk(prefix, " *>\t\r\n"))
        return ibp_err_set(err, IBP_E_INVAL, "usage sink: bad subject prefix '%.140s'", prefix);
    nats_sink *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ibp_err_set(err, IBP_E_NOMEM, "usage sink: out of memory");
    s->nc = opts->nc;
    s->signer = opts->signer;
    memcpy(s->prefix, prefix, plen + 1);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = opts->publish_timeout_ms > 0 ? opts->publish_timeout_ms : 5000;
    natsStatus ns = natsConnection_JetStream(&s->js, s->nc, &jo);
    if (ns != NATS_OK) {
        free(s);
        return ibp_err_set(err, IBP_E_NATS, "usage sink: JetStream context: %s",
                           natsStatus_GetText(ns));
    }
    memset(out, 0, sizeof *out);
    out->deliver = sink_deliver;
    out->close = sink_close;
    out->ctx = s;
    return IBP_OK;
}
