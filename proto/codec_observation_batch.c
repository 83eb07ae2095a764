/* ObservationBatch between a plain struct and its payload bytes; see ibp/codec_observation_batch.h.
 */
#include "ibp/codec_observation_batch.h"

#include <stdlib.h>
#include <string.h>

#include "ibp/envelope.h"
#include "ibp/ibp.pb-c.h"
#include "ibp/pb_bound.h"

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* Wire form of one observation, borrowing o's strings. */
struct pb_obs {
    Ibp__V1__Observation obs;
    Ibp__V1__ResultKey key;
};

static void obs_to_pb(struct pb_obs *p, const ibp_codec_observation *o)
{
    ibp__v1__result_key__init(&p->key);
    ibp__v1__observation__init(&p->obs);
    p->key.check_type = (Ibp__V1__CheckType)o->key.type;
    p->key.check_name = (char *)nz(o->key.check_name);
    p->key.member = (char *)nz(o->key.member);
    p->key.domain = (char *)nz(o->key.domain);
    p->key.endpoint = (char *)nz(o->key.endpoint);
    p->key.ipv6 = o->key.ipv6;
    p->obs.key = &p->key;
    p->obs.status = (Ibp__V1__Status)o->status;
    p->obs.check_time_ms = o->check_time_ms;
    p->obs.error = (char *)nz(o->error);
    p->obs.data_json = (char *)nz(o->data_json);
}

size_t ibp_codec_observation_size(const ibp_codec_observation *o)
{
    struct pb_obs p;
    obs_to_pb(&p, o);
    return ibp__v1__observation__get_packed_size(&p.obs) + 1 + 5; /* tag, varint length */
}

ibp_status ibp_codec_observation_batch_encode(const ibp_codec_observation_batch *b, uint8_t **out,
                                              size_t *out_len, ibp_err *err)
{
    ibp_status st = IBP_OK;
    size_t n = b->nobs;
    struct pb_obs *bufs = calloc(n ? n : 1, sizeof *bufs);
    Ibp__V1__Observation **obs = calloc(n ? n : 1, sizeof *obs);
    uint8_t *data = NULL;
    if (!bufs || !obs) {
        st = ibp_err_set(err, IBP_E_NOMEM, "observation batch: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        obs_to_pb(&bufs[i], &b->obs[i]);
        obs[i] = &bufs[i].obs;
    }
    Ibp__V1__ObservationBatch pb = IBP__V1__OBSERVATION_BATCH__INIT;
    pb.batch_seq = b->batch_seq;
    pb.full = b->full;
    pb.n_observations = n;
    pb.observations = obs;
    size_t len = ibp__v1__observation_batch__get_packed_size(&pb);
    if (!(data = malloc(len ? len : 1))) {
        st = ibp_err_set(err, IBP_E_NOMEM, "observation batch: out of memory");
        goto out;
    }
    ibp__v1__observation_batch__pack(&pb, data);
    *out = data;
    *out_len = len;
out:
    free(obs);
    free(bufs);
    return st;
}

/* ---- decode ------------------------------------------------------------- */

struct owned {
    Ibp__V1__ObservationBatch *pb; /* NULL when borrowed from a verified envelope */
    ibp_codec_observation *obs;
};

static void owned_free(struct owned *o)
{
    if (!o)
        return;
    if (o->pb)
        ibp__v1__observation_batch__free_unpacked(o->pb, NULL);
    free(o->obs);
    free(o);
}

void ibp_codec_observation_batch_clear(ibp_codec_observation_batch *b)
{
    if (!b)
        return;
    owned_free(b->owned);
    memset(b, 0, sizeof *b);
}

static ibp_status from_pb(const Ibp__V1__ObservationBatch *b, struct owned *o,
                          ibp_codec_observation_batch *out, ibp_err *err)
{
    unsigned long long bseq = (unsigned long long)b->batch_seq;
    o->obs = calloc(b->n_observations ? b->n_observations : 1, sizeof *o->obs);
    if (!o->obs)
        return ibp_err_set(err, IBP_E_NOMEM, "observation batch: out of memory");
    for (size_t i = 0; i < b->n_observations; i++) {
        const Ibp__V1__Observation *p = b->observations[i];
        ibp_codec_observation *d = &o->obs[i];
        if (!p->key)
            return ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                               "observation batch %llu: observation %zu: no key", bseq, i);
        d->key = (ibp_codec_key){(ibp_check_type)p->key->check_type,
                                 nz(p->key->check_name),
                                 nz(p->key->member),
                                 nz(p->key->domain),
                                 nz(p->key->endpoint),
                                 p->key->ipv6};
        d->status = (ibp_result_status)p->status;
        d->check_time_ms = p->check_time_ms;
        d->error = nz(p->error);
        d->data_json = nz(p->data_json);
        ibp_err e2 = {0};
        ibp_status kst = ibp_codec_key_check(&d->key, &e2);
        if (kst != IBP_OK)
            return ibp_err_set(err, kst == IBP_E_TOO_LARGE ? kst : IBP_E_PAYLOAD_DECODE,
                               "observation batch %llu: observation %zu: %s", bseq, i, e2.msg);
        if (d->status != IBP_RESULT_UP && d->status != IBP_RESULT_DOWN)
            return ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                               "observation batch %llu: observation %zu: status %d is neither "
                               "up nor down",
                               bseq, i, (int)p->status);
        size_t elen = strlen(d->error), dlen = strlen(d->data_json);
        if (elen > IBP_ERROR_MAX)
            return ibp_err_set(err, IBP_E_TOO_LARGE,
                               "observation batch %llu: observation %zu: error of %zu bytes is "
                               "over the limit of %d",
                               bseq, i, elen, IBP_ERROR_MAX);
        if (dlen > IBP_DATA_MAX)
            return ibp_err_set(err, IBP_E_TOO_LARGE,
                               "observation batch %llu: observation %zu: data of %zu bytes is "
                               "over the limit of %d",
                               bseq, i, dlen, IBP_DATA_MAX);
    }
    out->batch_seq = b->batch_seq;
    out->full = b->full;
    out->obs = o->obs;
    out->nobs = b->n_observations;
    return IBP_OK;
}

static ibp_status decode_pb(const Ibp__V1__ObservationBatch *b, Ibp__V1__ObservationBatch *owned_pb,
                            ibp_codec_observation_batch *out, ibp_err *err)
{
    struct owned *o = calloc(1, sizeof *o);
    if (!o) {
        if (owned_pb)
            ibp__v1__observation_batch__free_unpacked(owned_pb, NULL);
        return ibp_err_set(err, IBP_E_NOMEM, "observation batch: out of memory");
    }
    o->pb = owned_pb;
    ibp_status st = from_pb(b, o, out, err);
    if (st != IBP_OK) {
        owned_free(o);
        memset(out, 0, sizeof *out);
        return st;
    }
    out->owned = o;
    return IBP_OK;
}

ibp_status ibp_codec_observation_batch_decode(const uint8_t *data, size_t len,
                                              ibp_codec_observation_batch *out, ibp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!data && len)
        return ibp_err_set(err, IBP_E_INVAL, "observation batch: no data");
    size_t decoded = 0;
    ibp_err berr = {0};
    ibp_status bst = ibp_pb_decoded_bound(&ibp__v1__observation_batch__descriptor, data, len,
                                          IBP_DECODED_MAX_DEFAULT, &decoded, &berr);
    if (bst == IBP_E_TOO_LARGE)
        return ibp_err_set(err, IBP_E_TOO_LARGE,
                           "observation batch: %zu bytes would decode to more than %u bytes", len,
                           (unsigned)IBP_DECODED_MAX_DEFAULT);
    if (bst != IBP_OK)
        return ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                           "observation batch: %zu bytes are not a batch: %s", len, berr.msg);
    Ibp__V1__ObservationBatch *pb = ibp__v1__observation_batch__unpack(NULL, len, data);
    if (!pb)
        return ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                           "observation batch: %zu bytes are not a batch", len);
    return decode_pb(pb, pb, out, err);
}

ibp_status ibp_codec_observation_batch_decode_verified(const struct ibp_verified *vm,
                                                       ibp_codec_observation_batch *out,
                                                       ibp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!vm || !vm->envelope || !vm->payload ||
        vm->envelope->type != IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH)
        return ibp_err_set(err, IBP_E_INVAL, "observation batch: not an ObservationBatch envelope");
    return decode_pb((const Ibp__V1__ObservationBatch *)vm->payload, NULL, out, err);
}
