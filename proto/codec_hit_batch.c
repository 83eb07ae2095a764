/* HitBatch between a plain struct and its payload bytes; see ibp/codec_hit_batch.h. */
#include "ibp/codec_hit_batch.h"

#include <stdlib.h>
#include <string.h>

#include "ibp/envelope.h"
#include "ibp/ibp.pb-c.h"
#include "ibp/pb_bound.h"

static const char *nz(const char *s)
{
    return s ? s : "";
}

static void row_to_pb(Ibp__V1__HitRow *p, const ibp_codec_hit_row *r)
{
    ibp__v1__hit_row__init(p);
    p->date = (char *)nz(r->date);
    p->domain = (char *)nz(r->domain);
    p->member = (char *)nz(r->member);
    p->country_code = (char *)nz(r->country_code);
    p->asn = (char *)nz(r->asn);
    p->network_name = (char *)nz(r->network_name);
    p->country_name = (char *)nz(r->country_name);
    p->ipv6 = r->ipv6;
    p->hits = r->hits;
}

size_t ibp_codec_hit_row_size(const ibp_codec_hit_row *r)
{
    Ibp__V1__HitRow p;
    row_to_pb(&p, r);
    return ibp__v1__hit_row__get_packed_size(&p) + 1 + 5; /* tag, varint length */
}

ibp_status ibp_codec_hit_batch_encode(const ibp_codec_hit_batch *b, uint8_t **out, size_t *out_len,
                                      ibp_err *err)
{
    ibp_status st = IBP_OK;
    size_t n = b->nrows;
    Ibp__V1__HitRow *rows = calloc(n ? n : 1, sizeof *rows);
    Ibp__V1__HitRow **rp = calloc(n ? n : 1, sizeof *rp);
    uint8_t *buf = NULL;
    if (!rows || !rp) {
        st = ibp_err_set(err, IBP_E_NOMEM, "hit batch: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        row_to_pb(&rows[i], &b->rows[i]);
        rp[i] = &rows[i];
    }
    Ibp__V1__HitBatch pb = IBP__V1__HIT_BATCH__INIT;
    pb.node = (char *)nz(b->node);
    pb.flush_seq = b->flush_seq;
    pb.n_rows = n;
    pb.rows = rp;
    size_t len = ibp__v1__hit_batch__get_packed_size(&pb);
    if (!(buf = malloc(len ? len : 1))) {
        st = ibp_err_set(err, IBP_E_NOMEM, "hit batch: out of memory");
        goto out;
    }
    ibp__v1__hit_batch__pack(&pb, buf);
    *out = buf;
    *out_len = len;
out:
    free(rp);
    free(rows);
    return st;
}

/* ---- decode ------------------------------------------------------------- */

/* True for a calendar day written YYYY-MM-DD (proleptic Gregorian). */
static bool date_ok(const char *s)
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (int i = 0; i < 10; i++) {
        bool dash = i == 4 || i == 7;
        if (dash ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return false;
    }
    if (s[10] != '\0')
        return false;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return !(m == 2 && d == 29 && !leap);
}

struct owned {
    Ibp__V1__HitBatch *pb; /* NULL when borrowed from a verified envelope */
    ibp_codec_hit_row *rows;
};

static void owned_free(struct owned *o)
{
    if (!o)
        return;
    if (o->pb)
        ibp__v1__hit_batch__free_unpacked(o->pb, NULL);
    free(o->rows);
    free(o);
}

void ibp_codec_hit_batch_clear(ibp_codec_hit_batch *b)
{
    if (!b)
        return;
    owned_free(b->owned);
    memset(b, 0, sizeof *b);
}

static ibp_status from_pb(const Ibp__V1__HitBatch *hb, struct owned *o, ibp_codec_hit_batch *out,
                          ibp_err *err)
{
    if (hb->flush_seq == 0)
        return ibp_err_set(err, IBP_E_INVAL, "HitBatch of %.64s has flush_seq 0", nz(hb->node));
    o->rows = calloc(hb->n_rows ? hb->n_rows : 1, sizeof *o->rows);
    if (!o->rows)
        return ibp_err_set(err, IBP_E_NOMEM, "hit batch: out of memory");
    for (size_t i = 0; i < hb->n_rows; i++) {
        const Ibp__V1__HitRow *r = hb->rows[i];
        if (!date_ok(nz(r->date)))
            return ibp_err_set(err, IBP_E_INVAL, "row %zu: date '%.16s' is not YYYY-MM-DD", i,
                               nz(r->date));
        o->rows[i] = (ibp_codec_hit_row){nz(r->date),         nz(r->domain), nz(r->member),
                                         nz(r->country_code), nz(r->asn),    nz(r->network_name),
                                         nz(r->country_name), r->ipv6,       r->hits};
    }
    out->node = nz(hb->node);
    out->flush_seq = hb->flush_seq;
    out->rows = o->rows;
    out->nrows = hb->n_rows;
    return IBP_OK;
}

static ibp_status decode_pb(const Ibp__V1__HitBatch *hb, Ibp__V1__HitBatch *owned_pb,
                            ibp_codec_hit_batch *out, ibp_err *err)
{
    struct owned *o = calloc(1, sizeof *o);
    if (!o) {
        if (owned_pb)
            ibp__v1__hit_batch__free_unpacked(owned_pb, NULL);
        return ibp_err_set(err, IBP_E_NOMEM, "hit batch: out of memory");
    }
    o->pb = owned_pb;
    ibp_status st = from_pb(hb, o, out, err);
    if (st != IBP_OK) {
        owned_free(o);
        memset(out, 0, sizeof *out);
        return st;
    }
    out->owned = o;
    return IBP_OK;
}

ibp_status ibp_codec_hit_batch_decode(const uint8_t *data, size_t len, ibp_codec_hit_batch *out,
                                      ibp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!data && len)
        return ibp_err_set(err, IBP_E_INVAL, "hit batch: no data");
    size_t decoded = 0;
    ibp_err berr = {0};
    ibp_status bst = ibp_pb_decoded_bound(&ibp__v1__hit_batch__descriptor, data, len,
                                          IBP_DECODED_MAX_DEFAULT, &decoded, &berr);
    if (bst == IBP_E_TOO_LARGE)
        return ibp_err_set(err, IBP_E_TOO_LARGE, "hit batch: %zu bytes decode too large", len);
    if (bst != IBP_OK)
        return ibp_err_set(err, IBP_E_PAYLOAD_DECODE, "hit batch: %zu bytes are not one: %s", len,
                           berr.msg);
    Ibp__V1__HitBatch *pb = ibp__v1__hit_batch__unpack(NULL, len, data);
    if (!pb)
        return ibp_err_set(err, IBP_E_PAYLOAD_DECODE, "hit batch: %zu bytes are not one", len);
    return decode_pb(pb, pb, out, err);
}

ibp_status ibp_codec_hit_batch_decode_verified(const struct ibp_verified *vm,
                                               ibp_codec_hit_batch *out, ibp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!vm || !vm->envelope || !vm->payload ||
        vm->envelope->type != IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH)
        return ibp_err_set(err, IBP_E_INVAL, "hit batch: not a HitBatch envelope");
    return decode_pb((const Ibp__V1__HitBatch *)vm->payload, NULL, out, err);
}
