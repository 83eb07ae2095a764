/*
 * HitBatch and Event payloads to the columns persist writes; see
 * ibp/persist_parse.h. Pure: the JSON columns are built here too because
 * they must come out the same on every replay.
 */
#include "ibp/persist_parse.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "column_text.h"
#include "ibp/envelope.h"
#include "ibp/event.h"
#include "ibp/utf8.h"

/* MariaDB refuses JSON nested deeper than this (JSON_VALID fails). */
#define JSON_DEPTH_MAX 32

/* Checks a string for a column of persist's own: valid UTF-8, at most max characters. */
static ibp_status field_check(ibp_err *err, const char *what, const char *s, size_t max)
{
    size_t chars = 0;
    size_t len = s ? strlen(s) : 0;
    if (!ibp_utf8_count(s ? s : "", len, &chars))
        return ibp_err_set(err, IBP_E_INVAL, "%s is not valid UTF-8", what);
    if (chars > max)
        return ibp_err_set(err, IBP_E_RANGE, "%s has %zu characters, the column holds %zu", what,
                           chars, max);
    return IBP_OK;
}

/* Checks a string capped in ibp/types.h: valid UTF-8, at most cap bytes
 * (its column holds cap characters, so whatever passes fits). ctx starts the
 * message ("Event <id>: "). */
static ibp_status cap_check(ibp_err *err, const char *ctx, const char *what, const char *s,
                            size_t cap, const char *cap_name)
{
    size_t len = s ? strlen(s) : 0;
    if (!ibp_utf8_valid(s ? s : "", len))
        return ibp_err_set(err, IBP_E_INVAL, "%s%s is not valid UTF-8", ctx, what);
    if (len > cap)
        return ibp_err_set(err, IBP_E_RANGE, "%s%s of %zu bytes is over the limit of %zu (%s)", ctx,
                           what, len, cap, cap_name);
    return IBP_OK;
}

#define CAP_CHECK(err, ctx, what, s, cap) cap_check((err), (ctx), (what), (s), (cap), #cap)

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* ---- HitBatch ------------------------------------------------------------ */

/* The columns of one row; the codec has checked the date is a calendar day. */
static ibp_status check_row(const ibp_codec_hit_row *r, size_t i, ibp_err *err)
{
    char what[64];
    if (strncmp(r->date, "1000", 4) < 0) /* DATE starts at year 1000 */
        return ibp_err_set(err, IBP_E_INVAL, "row %zu: date '%.16s' is not YYYY-MM-DD", i, r->date);
    if (r->hits > IBP_PERSIST_MAX_ROW_HITS)
        return ibp_err_set(err, IBP_E_RANGE,
                           "row %zu: %" PRIu64 " hits is above the plausible maximum %" PRIu64, i,
                           r->hits, IBP_PERSIST_MAX_ROW_HITS);
    const struct {
        const char *name;
        const char *value;
        size_t lim;
        const char *cap_name; /* a cap of ibp/types.h (bytes), or NULL: lim is characters */
    } fields[] = {
        {"domain", r->domain, IBP_DOMAIN_MAX, "IBP_DOMAIN_MAX"},
        {"member", r->member, IBP_NAME_MAX, "IBP_NAME_MAX"},
        {"asn", r->asn, IBP_PERSIST_LIM_ASN, NULL},
        {"network_name", r->network_name, IBP_PERSIST_LIM_NETWORK, NULL},
        {"country_code", r->country_code, IBP_PERSIST_LIM_CC, NULL},
        {"country_name", r->country_name, IBP_PERSIST_LIM_COUNTRY, NULL},
    };
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        snprintf(what, sizeof what, "row %zu: %s", i, fields[f].name);
        ibp_status st = fields[f].cap_name ? cap_check(err, "", what, fields[f].value,
                                                       fields[f].lim, fields[f].cap_name)
                                           : field_check(err, what, fields[f].value, fields[f].lim);
        if (st != IBP_OK)
            return st;
    }
    return IBP_OK;
}

ibp_status ibp_persist_parse_hits(const ibp_codec_hit_batch *hb, const char *signer,
                                  ibp_persist_hit_batch *out, ibp_err *err)
{
    memset(out, 0, sizeof *out);
    if (hb == NULL || signer == NULL)
        return ibp_err_set(err, IBP_E_INVAL, "HitBatch missing");
    if (!hb->node || strcmp(hb->node, signer) != 0)
        return ibp_err_set(err, IBP_E_ROLE_DENIED,
                           "HitBatch of node '%.64s' signed by '%.64s': a dns node reports its "
                           "own hits",
                           or_empty(hb->node), signer);
    ibp_status st = CAP_CHECK(err, "", "node", hb->node, IBP_NODE_ID_MAX);
    for (size_t i = 0; st == IBP_OK && i < hb->nrows; i++)
        st = check_row(&hb->rows[i], i, err);
    if (st != IBP_OK)
        return st;
    if (hb->nrows > 0) {
        out->rows = calloc(hb->nrows, sizeof *out->rows);
        if (out->rows == NULL)
            return ibp_err_set(err, IBP_E_NOMEM, "HitBatch of %s: out of memory", hb->node);
    }
    for (size_t i = 0; i < hb->nrows; i++) {
        const ibp_codec_hit_row *r = &hb->rows[i];
        out->rows[i] = (ibp_persist_hit_row){
            .date = r->date,
            .domain = or_empty(r->domain),
            .member = or_empty(r->member),
            .asn = or_empty(r->asn),
            .network_name = or_empty(r->network_name),
            .country_code = or_empty(r->country_code),
            .country_name = or_empty(r->country_name),
            .ipv6 = r->ipv6,
            .hits = r->hits,
        };
    }
    out->n_rows = hb->nrows;
    out->node = hb->node;
    out->flush_seq = hb->flush_seq;
    return IBP_OK;
}

ibp_status ibp_persist_parse_hit_batch(const Ibp__V1__HitBatch *hb, const char *signer,
                                       ibp_persist_hit_batch *out, ibp_err *err)
{
    memset(out, 0, sizeof *out);
    if (hb == NULL || signer == NULL)
        return ibp_err_set(err, IBP_E_INVAL, "HitBatch missing");
    /* The codec takes a parsed payload only as part of a verified message. */
    Ibp__V1__Envelope env = IBP__V1__ENVELOPE__INIT;
    env.type = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH;
    ibp_verified vm = {&env, (ProtobufCMessage *)&hb->base, NULL};
    ibp_codec_hit_batch w;
    ibp_status st = ibp_codec_hit_batch_decode_verified(&vm, &w, err);
    if (st != IBP_OK)
        return st;
    st = ibp_persist_parse_hits(&w, signer, out, err);
    ibp_codec_hit_batch_clear(&w); /* the rows borrow from hb, not from w */
    return st;
}

void ibp_persist_hit_batch_clear(ibp_persist_hit_batch *out)
{
    if (out == NULL)
        return;
    free(out->rows);
    memset(out, 0, sizeof *out);
}

/* ---- Event --------------------------------------------------------------- */

static const char *status_name(ibp_result_status s)
{
    switch (s) {
    case IBP_RESULT_UP:
        return "up";
    case IBP_RESULT_DOWN:
        return "down";
    default:
        return "unspecified";
    }
}

static int json_depth(const json_t *j)
{
    int max = 0;
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v)
        {
            int d = json_depth(v);
            if (d > max)
                max = d;
        }
        return max + 1;
    }
    if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
        {
            int d = json_depth(v);
            if (d > max)
                max = d;
        }
        return max + 1;
    }
    return 0;
}

/*
 * additional_data: the observation's data_json as it is when it is JSON
 * MariaDB accepts; otherwise the text as a JSON string, so an outage is
 * never lost over its extra data (deterministic, so a replay agrees).
 */
static char *data_json_column(const char *text)
{
    if (text == NULL || *text == '\0')
        return NULL;
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (j != NULL && json_depth(j) <= JSON_DEPTH_MAX) {
        json_decref(j);
        return strdup(text);
    }
    json_decref(j);
    json_t *s = json_string(text);
    char *out = s ? json_dumps(s, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref(s);
    return out;
}

/* vote_data: {"epoch": E, "voters": [...]}, or with prefix "end_" for closing. */
static char *voters_json(const ibp_codec_event *ev, const char *epoch_key, const char *voters_key)
{
    if (ev->nvoters == 0)
        return NULL;
    json_t *o = json_object();
    json_t *arr = json_array();
    for (size_t i = 0; i < ev->nvoters; i++) {
        const ibp_codec_voter *v = &ev->voters[i];
        json_t *jv = json_object();
        json_object_set_new(jv, "node", json_string(or_empty(v->node)));
        json_object_set_new(jv, "local_seq", json_integer((json_int_t)v->local_seq));
        json_object_set_new(jv, "batch_seq", json_integer((json_int_t)v->batch_seq));
        json_object_set_new(jv, "status", json_string(status_name(v->status)));
        json_array_append_new(arr, jv);
    }
    json_object_set_new(o, epoch_key, json_integer((json_int_t)ev->epoch));
    json_object_set_new(o, voters_key, arr);
    char *out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return out;
}

/* The key columns of f from ev's kind and key (kind, type and shape checked by the codec). */
static void key_columns(const ibp_codec_event *ev, ibp_persist_event *f)
{
    const ibp_codec_key *k = &ev->key;
    if (ev->kind == IBP_CODEC_EVENT_OVERRIDE) {
        f->check_type = IBP_OVERRIDE_CHECK_NAME;
        f->check_name = k->check_name && *k->check_name ? k->check_name : IBP_OVERRIDE_CHECK_NAME;
        f->domain = "";
        f->endpoint = "";
        f->ipv6 = false;
        return;
    }
    f->check_type = ibp_codec_check_name(k->type);
    f->check_name = or_empty(k->check_name);
    f->domain = or_empty(k->domain);
    f->endpoint = or_empty(k->endpoint);
    f->ipv6 = k->ipv6;
}

/* The free texts: error, data_json and the voters' node names. */
static ibp_status text_columns(const ibp_codec_event *ev, ibp_persist_event *f, ibp_err *err)
{
    const char *error = or_empty(ev->error);
    size_t elen = strlen(error);
    if (!ibp_utf8_valid(error, elen))
        return ibp_err_set(err, IBP_E_INVAL, "Event %.128s: error text is not valid UTF-8", ev->id);
    f->error = error;
    f->error_len = ibp_persist_utf8_prefix(error, elen, IBP_ERROR_MAX, SIZE_MAX);
    const char *data = or_empty(ev->data_json);
    if (!ibp_utf8_valid(data, strlen(data)))
        return ibp_err_set(err, IBP_E_INVAL, "Event %.128s: data_json is not valid UTF-8", ev->id);
    for (size_t i = 0; i < ev->nvoters; i++) {
        const char *node = or_empty(ev->voters[i].node);
        if (!ibp_utf8_valid(node, strlen(node)))
            return ibp_err_set(err, IBP_E_INVAL, "Event %.128s: voter %zu is not valid UTF-8",
                               ev->id, i);
    }
    f->data_json = data_json_column(data);
    f->vote_json =
        f->up ? voters_json(ev, "end_epoch", "end_voters") : voters_json(ev, "epoch", "voters");
    if ((*data && f->data_json == NULL) || (ev->nvoters > 0 && f->vote_json == NULL))
        return ibp_err_set(err, IBP_E_NOMEM, "Event %.128s: out of memory encoding JSON", ev->id);
    return IBP_OK;
}

ibp_status ibp_persist_parse_event_wire(const ibp_codec_event *ev, ibp_persist_event *out,
                                        ibp_err *err)
{
    memset(out, 0, sizeof *out);
    if (ev == NULL)
        return ibp_err_set(err, IBP_E_INVAL, "Event missing");
    ibp_status st = CAP_CHECK(err, "", "event id", ev->id, IBP_EVENT_ID_MAX);
    if (st != IBP_OK)
        return st;
    if (ev->time_ms < IBP_PERSIST_TIME_MIN_MS || ev->time_ms > IBP_PERSIST_TIME_MAX_MS)
        return ibp_err_set(err, IBP_E_RANGE,
                           "Event %.128s time_ms %" PRId64 " is outside what DATETIME holds",
                           ev->id, ev->time_ms);
    out->id = ev->id;
    out->member = ev->key.member;
    /* A key that left the official state ends any outage open for it. */
    out->up = ev->status == IBP_RESULT_UP || ev->kind == IBP_CODEC_EVENT_REMOVED;
    out->time_ms = ev->time_ms;
    out->epoch = ev->epoch;
    key_columns(ev, out);
    char ctx[IBP_EVENT_ID_MAX + 16];
    snprintf(ctx, sizeof ctx, "Event %s: ", ev->id);
    if ((st = CAP_CHECK(err, ctx, "check_name", out->check_name, IBP_NAME_MAX)) != IBP_OK ||
        (st = CAP_CHECK(err, ctx, "member", out->member, IBP_NAME_MAX)) != IBP_OK ||
        (st = CAP_CHECK(err, ctx, "domain", out->domain, IBP_DOMAIN_MAX)) != IBP_OK ||
        (st = CAP_CHECK(err, ctx, "endpoint", out->endpoint, IBP_URL_MAX)) != IBP_OK)
        return st;
    return text_columns(ev, out, err);
}

ibp_status ibp_persist_parse_event(const Ibp__V1__Event *ev, ibp_persist_event *out, ibp_err *err)
{
    memset(out, 0, sizeof *out);
    if (ev == NULL)
        return ibp_err_set(err, IBP_E_INVAL, "Event missing");
    /* The codec takes a parsed payload only as part of a verified message. */
    Ibp__V1__Envelope env = IBP__V1__ENVELOPE__INIT;
    env.type = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT;
    ibp_verified vm = {&env, (ProtobufCMessage *)&ev->base, NULL};
    ibp_codec_event w;
    ibp_status st = ibp_codec_event_decode_verified(&vm, &w, err);
    if (st != IBP_OK)
        return st;
    st = ibp_persist_parse_event_wire(&w, out, err);
    ibp_codec_event_clear(&w); /* the columns borrow from ev, not from w */
    return st;
}

void ibp_persist_event_clear(ibp_persist_event *out)
{
    if (out == NULL)
        return;
    free(out->vote_json);
    free(out->data_json);
    memset(out, 0, sizeof *out);
}
