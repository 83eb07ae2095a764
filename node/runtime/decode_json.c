/* Bus messages to JSON: see ibp/decode_json.h. */
#include "ibp/decode_json.h"

#include <ctype.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/status_sig.h"

/* "STATUS_UP" of enum "Status" -> "up": drops the enum's upper-snake prefix, lower-cases. */
static json_t *enum_json(const ProtobufCEnumDescriptor *d, int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
    if (!v)
        return json_integer(value);
    char prefix[64];
    size_t n = 0;
    for (const char *p = d->short_name; *p && n + 2 < sizeof prefix; p++) {
        if (isupper((unsigned char)*p) && p != d->short_name)
            prefix[n++] = '_';
        prefix[n++] = (char)toupper((unsigned char)*p);
    }
    prefix[n++] = '_';
    prefix[n] = '\0';
    const char *name = v->name;
    if (strncmp(name, prefix, n) == 0 && name[n])
        name += n;
    char buf[128];
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof buf; i++)
        buf[i] = (char)tolower((unsigned char)name[i]);
    buf[i] = '\0';
    return json_string(buf);
}

static json_t *b64_json(const uint8_t *data, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    sodium_bin2base64(buf, cap, data, len, sodium_base64_VARIANT_ORIGINAL);
    json_t *j = json_string(buf);
    free(buf);
    return j;
}

static json_t *hex_json(const uint8_t *data, size_t len)
{
    char *buf = malloc(2 * len + 1);
    if (!buf)
        return NULL;
    sodium_bin2hex(buf, 2 * len + 1, data, len);
    json_t *j = json_string(buf);
    free(buf);
    return j;
}

/* Strings that are not valid UTF-8 come out as base64 under a marker. */
static json_t *str_json(const char *s)
{
    json_t *j = json_string(s ? s : "");
    return j ? j : json_pack("{s:o}", "base64", b64_json((const uint8_t *)s, strlen(s)));
}

static json_t *message_json(const ProtobufCMessage *m);

static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return json_integer(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return json_integer((json_int_t) * (const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return json_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_real(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM:
        return enum_json(f->descriptor, *(const int *)p);
    case PROTOBUF_C_TYPE_STRING:
        return str_json(*(char *const *)p);
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        return b64_json(b->data, b->len);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        return sub ? message_json(sub) : json_null();
    }
    }
    return json_null();
}

static size_t value_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 4;
    }
}

/* Every field of m by its proto name (generic, from the descriptor). */
static json_t *message_json(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_t *o = json_object();
    for (unsigned i = 0; o && i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m + f->offset;
        json_t *v;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            const char *arr = *(char *const *)base;
            v = json_array();
            for (size_t k = 0; v && k < n; k++)
                json_array_append_new(v, value_json(f, arr + k * value_size(f)));
        } else {
            v = value_json(f, base);
        }
        if (!v || json_object_set_new(o, f->name, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

const char *ibp_status_value_name(Ibp__V1__Status s)
{
    return s == IBP__V1__STATUS__STATUS_UP     ? "up"
           : s == IBP__V1__STATUS__STATUS_DOWN ? "down"
                                               : "unspecified";
}

json_t *ibp_result_key_to_json(const Ibp__V1__ResultKey *key)
{
    return key ? message_json(&key->base) : json_null();
}

/* ---- OfficialSnapshot with its string table resolved ------------------- */

static const char *str_at(const Ibp__V1__OfficialSnapshot *s, uint32_t i, bool *ok)
{
    if (i >= s->n_strings || !s->strings[i]) {
        *ok = false;
        return "";
    }
    return s->strings[i];
}

static json_t *entry_json(const Ibp__V1__OfficialSnapshot *s, const Ibp__V1__SnapshotEntry *e,
                          bool *ok)
{
    char *url = NULL;
    const char *endpoint;
    if (e->endpoint_scheme) {
        const char *scheme = str_at(s, e->endpoint_scheme, ok);
        const char *dom = str_at(s, e->domain, ok);
        const char *path = str_at(s, e->endpoint_path, ok);
        size_t n = strlen(scheme) + strlen(dom) + strlen(path) + 1;
        url = malloc(n);
        if (!url)
            return NULL;
        snprintf(url, n, "%s%s%s", scheme, dom, path);
        endpoint = url;
    } else {
        endpoint = str_at(s, e->endpoint, ok);
    }
    json_t *j = json_object();
    if (j) {
        json_object_set_new(j, "check_type",
                            enum_json(&ibp__v1__check_type__descriptor, (int)e->check_type));
        json_object_set_new(j, "check_name", str_json(str_at(s, e->check_name, ok)));
        json_object_set_new(j, "member", str_json(str_at(s, e->member, ok)));
        json_object_set_new(j, "domain", str_json(str_at(s, e->domain, ok)));
        json_object_set_new(j, "endpoint", str_json(endpoint));
        json_object_set_new(j, "ipv6", json_boolean(e->ipv6));
        json_object_set_new(j, "status", json_string(ibp_status_value_name(e->status)));
        json_object_set_new(j, "check_time_ms", json_integer(e->check_time_ms));
        json_object_set_new(j, "error", str_json(str_at(s, e->error, ok)));
        json_object_set_new(j, "data_json", str_json(str_at(s, e->data_json, ok)));
    }
    free(url);
    return j;
}

static json_t *snapshot_json(const Ibp__V1__OfficialSnapshot *s)
{
    bool ok = true;
    json_t *entries = json_array(), *overrides = json_array(), *evidence = json_array();
    json_t *j = json_object();
    if (!entries || !overrides || !evidence || !j)
        goto fail;
    for (size_t i = 0; i < s->n_entries; i++)
        if (json_array_append_new(entries, entry_json(s, s->entries[i], &ok)) != 0)
            goto fail;
    for (size_t i = 0; i < s->n_overrides; i++) {
        const Ibp__V1__SnapshotOverride *o = s->overrides[i];
        if (json_array_append_new(overrides, json_pack("{s:o,s:b,s:o}", "member",
                                                       str_json(str_at(s, o->member, &ok)),
                                                       "disabled", (int)o->disabled, "reason",
                                                       str_json(str_at(s, o->reason, &ok)))) != 0)
            goto fail;
    }
    for (size_t i = 0; i < s->n_evidence; i++) {
        const Ibp__V1__SnapshotEvidence *ev = s->evidence[i];
        json_t *votes = json_array(), *item = json_object();
        if (!votes || !item) {
            json_decref(votes);
            json_decref(item);
            goto fail;
        }
        if (ev->removed) {
            json_object_set_new(item, "removed", json_true());
            json_object_set_new(item, "key", ibp_result_key_to_json(ev->removed));
        } else if (ev->entry < s->n_entries) {
            json_object_set_new(item, "entry", json_integer(ev->entry));
            json_object_set_new(item, "key", json_incref(json_array_get(entries, ev->entry)));
        } else {
            ok = false;
        }
        for (size_t k = 0; k < ev->n_votes; k++) {
            const Ibp__V1__SnapshotVote *v = ev->votes[k];
            json_array_append_new(votes, json_pack("{s:o,s:I,s:I,s:s}", "node",
                                                   str_json(str_at(s, v->node, &ok)), "local_seq",
                                                   (json_int_t)v->local_seq, "batch_seq",
                                                   (json_int_t)v->batch_seq, "status",
                                                   ibp_status_value_name(v->status)));
        }
        json_object_set_new(item, "votes", votes);
        json_array_append_new(evidence, item);
    }
    if (!ok)
        goto fail;
    json_object_set_new(j, "epoch", json_integer((json_int_t)s->epoch));
    json_object_set_new(j, "local_seq", json_integer((json_int_t)s->local_seq));
    json_object_set_new(j, "applied_ms", json_integer(s->applied_ms));
    json_object_set_new(j, "state_digest", hex_json(s->state_digest.data, s->state_digest.len));
    json_object_set_new(j, "strings", json_integer((json_int_t)s->n_strings));
    json_object_set_new(j, "entries", entries);
    json_object_set_new(j, "overrides", overrides);
    json_object_set_new(j, "evidence", evidence);
    return j;
fail:
    json_decref(entries);
    json_decref(overrides);
    json_decref(evidence);
    json_decref(j);
    return NULL;
}

json_t *ibp_payload_to_json(ibp_payload_type type, const ProtobufCMessage *payload)
{
    if (!payload)
        return NULL;
    if (type == IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT)
        return snapshot_json((const Ibp__V1__OfficialSnapshot *)payload);
    return message_json(payload);
}

/* ---- one message body --------------------------------------------------- */

static bool looks_like_json(const uint8_t *data, size_t len)
{
    size_t i = 0;
    while (i < len && isspace(data[i]))
        i++;
    return i < len && data[i] == '{';
}

static json_t *str_or_null(const char *s)
{
    return s ? str_json(s) : json_null();
}

ibp_status ibp_decode_status_json(const uint8_t *data, size_t len, const char *subject,
                                  const char *signer, const char *signature,
                                  const ibp_roster *roster, json_t **out, bool *verified,
                                  ibp_err *err)
{
    *out = NULL;
    json_error_t jerr;
    json_t *doc = looks_like_json(data, len) ? json_loadb((const char *)data, len, 0, &jerr) : NULL;
    if (!json_is_object(doc)) {
        json_decref(doc);
        return ibp_err_set(err, IBP_E_DECODE, "not a JSON object (%zu bytes)", len);
    }
    ibp_status st = IBP_E_INVAL;
    ibp_err verr = {0};
    if (!roster)
        ibp_err_set(&verr, IBP_E_INVAL, "no roster to verify against (--roster FILE)");
    else if (!subject || !*subject)
        ibp_err_set(&verr, IBP_E_INVAL, "the signature covers the subject, and none was given");
    else
        st = ibp_status_sig_verify(roster, subject, signer, signature, data, len, NULL, &verr);
    json_t *j = json_object();
    if (!j) {
        json_decref(doc);
        return ibp_err_set(err, IBP_E_NOMEM, "decode: out of memory");
    }
    json_object_set_new(j, "type", json_string("Status"));
    json_object_set_new(j, "subject", str_or_null(subject));
    json_object_set_new(j, "signer", str_or_null(signer));
    json_object_set_new(j, "signature", str_or_null(signature));
    json_object_set_new(j, "verified", json_boolean(st == IBP_OK));
    if (st != IBP_OK) {
        char reason[sizeof verr.msg + 64];
        snprintf(reason, sizeof reason, "%s: %s", ibp_status_name(st), verr.msg);
        json_object_set_new(j, "reason", str_json(reason));
    }
    json_object_set_new(j, "payload", doc);
    if (verified)
        *verified = st == IBP_OK;
    *out = j;
    return IBP_OK;
}

ibp_status ibp_decode_json(const uint8_t *data, size_t len, const ibp_roster *roster,
                           ibp_payload_type type_hint, json_t **out, ibp_err *err)
{
    *out = NULL;
    if (looks_like_json(data, len)) {
        json_error_t jerr;
        json_t *doc = json_loadb((const char *)data, len, 0, &jerr);
        if (doc) {
            *out = doc;
            return IBP_OK;
        }
    }
    Ibp__V1__Envelope *env = ibp__v1__envelope__unpack(NULL, len, data);
    if (!env)
        return ibp_err_set(err, IBP_E_DECODE, "not JSON and not an IBP envelope (%zu bytes)", len);
    const char *tname = ibp_payload_type_name(env->type);
    if (!tname || !env->signer || !env->signer[0] || env->signature.len != IBP_SIGNATURE_BYTES) {
        ibp__v1__envelope__free_unpacked(env, NULL);
        return ibp_err_set(err, IBP_E_DECODE,
                           "not an IBP envelope (%zu bytes: no signer, signature or known type)",
                           len);
    }
    const ProtobufCMessageDescriptor *pd = ibp_payload_descriptor(env->type);
    ProtobufCMessage *payload =
        pd ? protobuf_c_message_unpack(pd, NULL, env->payload.len, env->payload.data) : NULL;
    if (!payload) {
        ibp_status st = ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                                    "envelope from %s seq %llu: payload does not decode as %s",
                                    env->signer, (unsigned long long)env->seq, tname);
        ibp__v1__envelope__free_unpacked(env, NULL);
        return st;
    }
    json_t *pj = ibp_payload_to_json(env->type, payload);
    protobuf_c_message_free_unpacked(payload, NULL);
    if (!pj) {
        ibp_status st = ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                                    "envelope from %s seq %llu: %s has an index out of range",
                                    env->signer, (unsigned long long)env->seq, tname);
        ibp__v1__envelope__free_unpacked(env, NULL);
        return st;
    }
    json_t *j = json_object();
    if (!j) {
        json_decref(pj);
        ibp__v1__envelope__free_unpacked(env, NULL);
        return ibp_err_set(err, IBP_E_NOMEM, "decode: out of memory");
    }
    json_object_set_new(j, "signer", str_json(env->signer));
    json_object_set_new(j, "seq", json_integer((json_int_t)env->seq));
    json_object_set_new(j, "created_ms", json_integer(env->created_ms));
    json_object_set_new(j, "type", json_string(tname));
    if (type_hint != IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_UNSPECIFIED && type_hint != env->type)
        json_object_set_new(
            j, "header_type",
            json_string(ibp_payload_type_name(type_hint) ? ibp_payload_type_name(type_hint) : "?"));
    json_object_set_new(j, "signature", b64_json(env->signature.data, env->signature.len));
    ibp__v1__envelope__free_unpacked(env, NULL);
    if (roster) {
        ibp_verifier *v = NULL;
        ibp_verifier_opts vo;
        ibp_verifier_opts_init(&vo);
        vo.log_component = "decode";
        if (ibp_verifier_new(roster, &vo, &v) != IBP_OK) {
            json_decref(j);
            json_decref(pj);
            return ibp_err_set(err, IBP_E_NOMEM, "decode: out of memory");
        }
        ibp_verified vm = {0};
        ibp_err verr = {0};
        ibp_status st = ibp_verifier_check_stateless(v, data, len, &vm, &verr);
        json_object_set_new(j, "verified", json_boolean(st == IBP_OK));
        if (st != IBP_OK) {
            char reason[sizeof verr.msg + 64];
            snprintf(reason, sizeof reason, "%s: %s", ibp_status_name(st), verr.msg);
            json_object_set_new(j, "reason", json_string(reason));
        }
        ibp_verified_clear(&vm);
        ibp_verifier_free(v);
    }
    json_object_set_new(j, "payload", pj);
    *out = j;
    return IBP_OK;
}

/* ---- verdicts and summaries --------------------------------------------- */

bool ibp_decode_json_verified(const json_t *doc, const char **why)
{
    const char *reason = NULL;
    const json_t *v = json_object_get(doc, "verified");
    if (!json_is_object(doc))
        reason = "not a decoded message";
    else if (!v)
        reason = "not verified: no roster to verify against (--roster FILE or $IBP_ROSTER)";
    else if (!json_is_true(v))
        reason = json_string_value(json_object_get(doc, "reason"))
                     ? json_string_value(json_object_get(doc, "reason"))
                     : "not verified";
    else if (json_object_get(doc, "header_type"))
        reason = "the Ibp-Type header disagrees with the signed type";
    if (why)
        *why = reason;
    return reason == NULL;
}

/* Appends text to buf (len so far in *n); false once it is full. */
static bool put(char *buf, size_t cap, size_t *n, const char *text)
{
    size_t t = strlen(text);
    if (*n + t + 1 > cap) {
        size_t room = cap - 1 - *n;
        memcpy(buf + *n, text, room);
        *n += room;
        buf[*n] = '\0';
        return false;
    }
    memcpy(buf + *n, text, t + 1);
    *n += t;
    return true;
}

static bool plain_string(const char *s)
{
    if (!*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == '=' || *p == '"' || *p == '\\' || *p == 0x7f)
            return false;
    return true;
}

char *ibp_decode_json_fields(const json_t *obj, const char *const *skip, char *buf, size_t cap)
{
    size_t n = 0;
    bool full = false;
    buf[0] = '\0';
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool skipped = json_is_object(v);
        for (size_t i = 0; skip && skip[i] && !skipped; i++)
            skipped = strcmp(skip[i], key) == 0;
        if (skipped)
            continue;
        char num[32];
        char *text = NULL;
        const char *val;
        if (json_is_array(v)) {
            snprintf(num, sizeof num, "#%zu", json_array_size(v));
            val = num;
        } else if (json_is_string(v) && plain_string(json_string_value(v))) {
            val = json_string_value(v);
        } else {
            text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            val = text ? text : "?";
        }
        full = (n > 0 && !put(buf, cap, &n, " ")) || !put(buf, cap, &n, key) ||
               !put(buf, cap, &n, "=") || !put(buf, cap, &n, val);
        free(text);
        if (full)
            break;
    }
    if (full && cap > 4) /* the line is cap - 1 long: end it with the mark */
        memcpy(buf + cap - 4, "...", 4);
    return buf;
}
