/* The signed envelope: sealing and verification; see ibp/envelope.h. */
#include "ibp/envelope.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/log.h"
#include "ibp/pb_bound.h"
#include "ibp/seqfile.h"

/* ---- payload types ------------------------------------------------------ */

static const struct payload_info {
    ibp_payload_type type;
    const char *name;
    const ProtobufCMessageDescriptor *desc;
    unsigned roles;
} payload_infos[] = {
    {IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH, "ObservationBatch",
     &ibp__v1__observation_batch__descriptor, IBP_ROLE_MONITOR},
    {IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT, "Heartbeat", &ibp__v1__heartbeat__descriptor,
     IBP_ROLE_ALL},
    {IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_MEMBER_OVERRIDE, "MemberOverride",
     &ibp__v1__member_override__descriptor, IBP_ROLE_ADMIN},
    {IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT, "OfficialSnapshot",
     &ibp__v1__official_snapshot__descriptor, IBP_ROLE_CONSENSUS},
    {IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT, "Event", &ibp__v1__event__descriptor,
     IBP_ROLE_CONSENSUS},
    {IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH, "HitBatch", &ibp__v1__hit_batch__descriptor,
     IBP_ROLE_DNS},
    /* A replica's state (ReplicaState); receivers also check that it came on
     * the signer's own subject (ibp/checkpoint.h). */
    {IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_CHECKPOINT, "Checkpoint",
     &ibp__v1__replica_state__descriptor, IBP_ROLE_CONSENSUS},
    /* A replica's vote for one epoch's snapshot (ibp/certificate.h). */
    {IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EPOCH_STATEMENT, "EpochStatement",
     &ibp__v1__epoch_statement__descriptor, IBP_ROLE_CONSENSUS},
};
#define PAYLOAD_INFO_COUNT (sizeof payload_infos / sizeof payload_infos[0])

static const struct payload_info *payload_info(ibp_payload_type type)
{
    for (size_t i = 0; i < PAYLOAD_INFO_COUNT; i++)
        if (payload_infos[i].type == type)
            return &payload_infos[i];
    return NULL;
}

const char *ibp_payload_type_name(ibp_payload_type type)
{
    const struct payload_info *pi = payload_info(type);
    return pi ? pi->name : NULL;
}

ibp_payload_type ibp_payload_type_parse(const char *name)
{
    for (size_t i = 0; name && i < PAYLOAD_INFO_COUNT; i++)
        if (strcmp(payload_infos[i].name, name) == 0)
            return payload_infos[i].type;
    return IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_UNSPECIFIED;
}

unsigned ibp_payload_allowed_roles(ibp_payload_type type)
{
    const struct payload_info *pi = payload_info(type);
    return pi ? pi->roles : 0;
}

const ProtobufCMessageDescriptor *ibp_payload_descriptor(ibp_payload_type type)
{
    const struct payload_info *pi = payload_info(type);
    return pi ? pi->desc : NULL;
}

/* ---- signing input ------------------------------------------------------ */

static const char signing_domain[16] = "ibp.v1.envelope"; /* 15 chars + NUL */
#define SIGNING_INPUT_MAX (16 + 4 + IBP_NODE_ID_MAX + 8 + 8 + 4 + 8 + 32)

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

/* Builds the signing input of DESIGN.md §4 (layout in ibp/envelope.h). */
static ibp_status signing_input(const char *signer, uint64_t seq, int64_t created_ms, uint32_t type,
                                const uint8_t *payload, size_t payload_len,
                                uint8_t out[SIGNING_INPUT_MAX], size_t *out_len)
{
    size_t slen = signer ? strlen(signer) : 0;
    if (slen > IBP_NODE_ID_MAX)
        return IBP_E_INVAL;
    uint8_t *p = out;
    memcpy(p, signing_domain, sizeof signing_domain);
    p += sizeof signing_domain;
    p = put_u32(p, (uint32_t)slen);
    memcpy(p, signer, slen);
    p += slen;
    p = put_u64(p, seq);
    p = put_u64(p, (uint64_t)created_ms);
    p = put_u32(p, type);
    p = put_u64(p, (uint64_t)payload_len);
    crypto_generichash(p, 32, payload, payload_len, NULL, 0);
    p += 32;
    *out_len = (size_t)(p - out);
    return IBP_OK;
}

ibp_status ibp_envelope_sign_fields(const Ibp__V1__Envelope *env, const ibp_key *key,
                                    uint8_t sig[IBP_SIGNATURE_BYTES])
{
    uint8_t in[SIGNING_INPUT_MAX];
    size_t in_len = 0;
    if (ibp_crypto_init() != IBP_OK)
        return IBP_E_CRYPTO;
    ibp_status st = signing_input(env->signer, env->seq, env->created_ms, (uint32_t)env->type,
                                  env->payload.data, env->payload.len, in, &in_len);
    if (st != IBP_OK)
        return st;
    if (crypto_sign_detached(sig, NULL, in, in_len, key->sk) != 0)
        return IBP_E_CRYPTO;
    return IBP_OK;
}

bool ibp_envelope_signature_valid(const Ibp__V1__Envelope *env, const uint8_t pk[IBP_PUBKEY_BYTES])
{
    uint8_t in[SIGNING_INPUT_MAX];
    size_t in_len = 0;
    return env && env->signature.len == IBP_SIGNATURE_BYTES && ibp_crypto_init() == IBP_OK &&
           signing_input(env->signer, env->seq, env->created_ms, (uint32_t)env->type,
                         env->payload.data, env->payload.len, in, &in_len) == IBP_OK &&
           crypto_sign_verify_detached(env->signature.data, in, in_len, pk) == 0;
}

/* ---- signer ------------------------------------------------------------- */

struct ibp_signer {
    char id[IBP_NODE_ID_MAX + 1];
    ibp_key key;
    ibp_seqfile *seq;
    pthread_mutex_t lock; /* serialises sequence numbers with sealing */
};

ibp_status ibp_signer_new(const char *node_id, const ibp_key *key, const char *seq_path,
                          ibp_signer **out, ibp_err *err)
{
    if (!ibp_node_id_valid(node_id))
        return ibp_err_set(err, IBP_E_INVAL, "signer: invalid node id '%s'",
                           node_id ? node_id : "(null)");
    if (!key)
        return ibp_err_set(err, IBP_E_INVAL, "signer '%s': no key", node_id);
    if (ibp_crypto_init() != IBP_OK)
        return ibp_err_set(err, IBP_E_CRYPTO, "libsodium failed to initialise");
    ibp_signer *s = calloc(1, sizeof *s);
    if (!s)
        return ibp_err_set(err, IBP_E_NOMEM, "signer: out of memory");
    strcpy(s->id, node_id);
    s->key = *key;
    ibp_status st = ibp_seqfile_open(seq_path, &s->seq, err);
    if (st != IBP_OK) {
        ibp_key_wipe(&s->key);
        free(s);
        return st;
    }
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return IBP_OK;
}

const char *ibp_signer_id(const ibp_signer *s)
{
    return s->id;
}

ibp_status ibp_signer_sign_detached(ibp_signer *s, const char *domain, const uint8_t *msg,
                                    size_t len, uint8_t sig[IBP_SIGNATURE_BYTES])
{
    size_t dlen = domain ? strlen(domain) : 0;
    if (!s || dlen == 0 || dlen > 64 || (!msg && len) ||
        strcmp(domain, signing_domain) == 0) /* never an envelope's signing input */
        return IBP_E_INVAL;
    uint8_t *in = malloc(dlen + 1 + len);
    if (!in)
        return IBP_E_NOMEM;
    memcpy(in, domain, dlen + 1);
    if (len)
        memcpy(in + dlen + 1, msg, len);
    ibp_status st = crypto_sign_detached(sig, NULL, in, dlen + 1 + len, s->key.sk) == 0
                        ? IBP_OK
                        : IBP_E_CRYPTO;
    sodium_memzero(in, dlen + 1 + len);
    free(in);
    return st;
}

void ibp_signer_free(ibp_signer *s)
{
    if (!s)
        return;
    ibp_seqfile_close(s->seq);
    ibp_key_wipe(&s->key);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

ibp_status ibp_signer_seal_bytes(ibp_signer *s, ibp_payload_type type, const uint8_t *payload,
                                 size_t payload_len, int64_t created_ms, uint8_t **out,
                                 size_t *out_len, uint64_t *seq_out, ibp_err *err)
{
    uint8_t sig[IBP_SIGNATURE_BYTES];
    uint64_t seq = 0;
    if (!payload_info(type))
        return ibp_err_set(err, IBP_E_INVAL, "seal: unknown payload type %d", (int)type);
    if (payload_len > IBP_MESSAGE_MAX_DEFAULT)
        return ibp_err_set(err, IBP_E_TOO_LARGE,
                           "seal %s: payload of %zu bytes is over the message limit of %u bytes",
                           ibp_payload_type_name(type), payload_len, IBP_MESSAGE_MAX_DEFAULT);

    Ibp__V1__Envelope env = IBP__V1__ENVELOPE__INIT;
    env.signer = s->id;
    env.created_ms = created_ms;
    env.type = type;
    env.payload.data = (uint8_t *)payload;
    env.payload.len = payload_len;

    /* Every receiver drops an envelope over the limit (ibp_verifier_check),
     * so refuse to make one. Measured with the widest sequence number and a
     * full signature, before a sequence number is spent on it. */
    uint8_t sig_room[IBP_SIGNATURE_BYTES] = {0};
    env.seq = UINT64_MAX;
    env.signature.data = sig_room;
    env.signature.len = sizeof sig_room;
    size_t bound = ibp__v1__envelope__get_packed_size(&env);
    if (bound > IBP_MESSAGE_MAX_DEFAULT)
        return ibp_err_set(err, IBP_E_TOO_LARGE,
                           "seal %s: envelope of up to %zu bytes (payload %zu) is over the message "
                           "limit of %u bytes",
                           ibp_payload_type_name(type), bound, payload_len,
                           IBP_MESSAGE_MAX_DEFAULT);

    pthread_mutex_lock(&s->lock);
    ibp_status st = ibp_seqfile_next(s->seq, &seq, err);
    pthread_mutex_unlock(&s->lock);
    if (st != IBP_OK)
        return ibp_err_wrap(err, "seal %s", ibp_payload_type_name(type));
    env.seq = seq;
    if ((st = ibp_envelope_sign_fields(&env, &s->key, sig)) != IBP_OK)
        return ibp_err_set(err, st, "seal %s: signing failed", ibp_payload_type_name(type));
    env.signature.data = sig;
    env.signature.len = sizeof sig;

    size_t len = ibp__v1__envelope__get_packed_size(&env);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return ibp_err_set(err, IBP_E_NOMEM, "seal: out of memory");
    ibp__v1__envelope__pack(&env, buf);
    *out = buf;
    *out_len = len;
    if (seq_out)
        *seq_out = seq;
    return IBP_OK;
}

ibp_status ibp_signer_seal(ibp_signer *s, ibp_payload_type type, const ProtobufCMessage *payload,
                           int64_t created_ms, uint8_t **out, size_t *out_len, uint64_t *seq_out,
                           ibp_err *err)
{
    const struct payload_info *pi = payload_info(type);
    if (!pi || !payload || payload->descriptor != pi->desc)
        return ibp_err_set(err, IBP_E_INVAL, "seal: payload does not match type %d", (int)type);
    size_t len = protobuf_c_message_get_packed_size(payload);
    if (len > IBP_MESSAGE_MAX_DEFAULT)
        return ibp_err_set(err, IBP_E_TOO_LARGE,
                           "seal %s: payload of %zu bytes is over the message limit of %u bytes",
                           pi->name, len, IBP_MESSAGE_MAX_DEFAULT);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return ibp_err_set(err, IBP_E_NOMEM, "seal: out of memory");
    protobuf_c_message_pack(payload, buf);
    ibp_status st =
        ibp_signer_seal_bytes(s, type, buf, len, created_ms, out, out_len, seq_out, err);
    free(buf);
    return st;
}

/* ---- verifier ----------------------------------------------------------- */

struct ibp_verifier {
    const ibp_roster *roster;
    ibp_verifier_opts opts;
    uint64_t *last_seq; /* indexed like the roster */
    uint64_t rejected[IBP_STATUS_COUNT];
    uint64_t accepted;
    ibp_log_limit log_limit; /* rejections are logged at a rate limit */
};

void ibp_verifier_opts_init(ibp_verifier_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->max_message_bytes = IBP_MESSAGE_MAX_DEFAULT;
    opts->max_decoded_bytes = IBP_DECODED_MAX_DEFAULT;
    opts->log_component = "verify";
}

ibp_status ibp_verifier_new(const ibp_roster *roster, const ibp_verifier_opts *opts,
                            ibp_verifier **out)
{
    if (!roster)
        return IBP_E_INVAL;
    if (ibp_crypto_init() != IBP_OK)
        return IBP_E_CRYPTO;
    ibp_verifier *v = calloc(1, sizeof *v);
    if (!v)
        return IBP_E_NOMEM;
    v->roster = roster;
    if (opts)
        v->opts = *opts;
    else
        ibp_verifier_opts_init(&v->opts);
    if (v->opts.max_message_bytes == 0)
        v->opts.max_message_bytes = IBP_MESSAGE_MAX_DEFAULT;
    if (v->opts.max_decoded_bytes == 0)
        v->opts.max_decoded_bytes = IBP_DECODED_MAX_DEFAULT;
    if (!v->opts.log_component)
        v->opts.log_component = "verify";
    size_t n = ibp_roster_count(roster);
    v->last_seq = calloc(n ? n : 1, sizeof *v->last_seq);
    if (!v->last_seq) {
        free(v);
        return IBP_E_NOMEM;
    }
    *out = v;
    return IBP_OK;
}

void ibp_verifier_free(ibp_verifier *v)
{
    if (!v)
        return;
    free(v->last_seq);
    free(v);
}

static size_t roster_index(const ibp_verifier *v, const ibp_roster_node *n)
{
    return (size_t)(n - ibp_roster_at(v->roster, 0));
}

/* Counts and logs one rejection; returns its status. */
static ibp_status reject(ibp_verifier *v, ibp_status reason, const Ibp__V1__Envelope *env,
                         ibp_err *err, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static ibp_status reject(ibp_verifier *v, ibp_status reason, const Ibp__V1__Envelope *env,
                         ibp_err *err, const char *fmt, ...)
{
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    v->rejected[reason]++;
    char signer[IBP_NODE_ID_MAX + 1] = "-";
    if (env && env->signer) {
        /* The signer field is untrusted: print at most the id length, printable bytes only. */
        size_t i = 0;
        for (; env->signer[i] && i < IBP_NODE_ID_MAX; i++) {
            unsigned char c = (unsigned char)env->signer[i];
            signer[i] = (c > 32 && c < 127) ? (char)c : '?';
        }
        signer[i ? i : 1] = '\0';
    }
    IBP_LOG_LIMITED(&v->log_limit, IBP_LOG_WARN, v->opts.log_component,
                    "rejected envelope reason=%s signer=%s seq=%" PRIu64 " detail=\"%s\"",
                    ibp_status_name(reason), signer, env ? env->seq : 0, detail);
    return ibp_err_set(err, reason, "%s: %s (signer=%s seq=%" PRIu64 ")", ibp_strerror(reason),
                       detail, signer, env ? env->seq : 0);
}

static ibp_status check(ibp_verifier *v, const uint8_t *data, size_t len, int stateful,
                        ibp_verified *out, ibp_err *err)
{
    Ibp__V1__Envelope *env = NULL;
    ProtobufCMessage *payload = NULL;
    ibp_status st;

    if (!data && len)
        return ibp_err_set(err, IBP_E_INVAL, "verify: no data");
    if (len > v->opts.max_message_bytes)
        return reject(v, IBP_E_TOO_LARGE, NULL, err, "%zu bytes, over the message limit of %zu",
                      len, v->opts.max_message_bytes);
    env = ibp__v1__envelope__unpack(NULL, len, data);
    if (!env)
        return reject(v, IBP_E_DECODE, NULL, err, "%zu bytes are not an Envelope", len);

    const ibp_roster_node *node = ibp_roster_find(v->roster, env->signer);
    if (!node) {
        st = reject(v, IBP_E_UNKNOWN_SIGNER, env, err, "not in the roster");
        goto fail;
    }
    uint8_t in[SIGNING_INPUT_MAX];
    size_t in_len = 0;
    if (env->signature.len != IBP_SIGNATURE_BYTES ||
        signing_input(env->signer, env->seq, env->created_ms, (uint32_t)env->type,
                      env->payload.data, env->payload.len, in, &in_len) != IBP_OK ||
        crypto_sign_verify_detached(env->signature.data, in, in_len, node->pk) != 0) {
        st = reject(v, IBP_E_BAD_SIGNATURE, env, err, "signature does not match the roster key");
        goto fail;
    }
    const struct payload_info *pi = payload_info(env->type);
    if (!pi) {
        st = reject(v, IBP_E_PAYLOAD_DECODE, env, err, "unknown payload type %d", (int)env->type);
        goto fail;
    }
    if (!(node->roles & pi->roles)) {
        char roles[64];
        ibp_roles_format(node->roles, roles, sizeof roles);
        st = reject(v, IBP_E_ROLE_DENIED, env, err, "roles %s may not send %s", roles, pi->name);
        goto fail;
    }
    size_t idx = roster_index(v, node);
    if (stateful && env->seq <= v->last_seq[idx]) {
        st = reject(v, IBP_E_REPLAY, env, err, "last accepted seq is %" PRIu64, v->last_seq[idx]);
        goto fail;
    }
    /* Signed by a roster member, but still not decoded blindly: a payload of
     * tiny sub-messages would take sixty times its size in memory. */
    size_t decoded = 0;
    ibp_err berr = {0};
    ibp_status bst = ibp_pb_decoded_bound(pi->desc, env->payload.data, env->payload.len,
                                          v->opts.max_decoded_bytes, &decoded, &berr);
    if (bst == IBP_E_TOO_LARGE) {
        st = reject(v, IBP_E_TOO_LARGE, env, err,
                    "%s of %zu bytes would decode to more than %zu bytes", pi->name,
                    env->payload.len, v->opts.max_decoded_bytes);
        goto fail;
    }
    if (bst != IBP_OK) {
        st = reject(v, IBP_E_PAYLOAD_DECODE, env, err, "%zu bytes are not a %s: %s",
                    env->payload.len, pi->name, berr.msg);
        goto fail;
    }
    payload = protobuf_c_message_unpack(pi->desc, NULL, env->payload.len, env->payload.data);
    if (!payload) {
        st = reject(v, IBP_E_PAYLOAD_DECODE, env, err, "%zu bytes are not a %s", env->payload.len,
                    pi->name);
        goto fail;
    }
    if (stateful)
        v->last_seq[idx] = env->seq;
    v->accepted++;
    out->envelope = env;
    out->payload = payload;
    out->signer = node;
    return IBP_OK;
fail:
    ibp__v1__envelope__free_unpacked(env, NULL);
    return st;
}

ibp_status ibp_verifier_check(ibp_verifier *v, const uint8_t *data, size_t len, ibp_verified *out,
                              ibp_err *err)
{
    return check(v, data, len, 1, out, err);
}

ibp_status ibp_verifier_check_stateless(ibp_verifier *v, const uint8_t *data, size_t len,
                                        ibp_verified *out, ibp_err *err)
{
    return check(v, data, len, 0, out, err);
}

void ibp_verified_clear(ibp_verified *vm)
{
    if (!vm)
        return;
    if (vm->payload)
        protobuf_c_message_free_unpacked(vm->payload, NULL);
    if (vm->envelope)
        ibp__v1__envelope__free_unpacked(vm->envelope, NULL);
    memset(vm, 0, sizeof *vm);
}

uint64_t ibp_verifier_rejected(const ibp_verifier *v, ibp_status reason)
{
    if (!v || (unsigned)reason >= IBP_STATUS_COUNT)
        return 0;
    return v->rejected[reason];
}

uint64_t ibp_verifier_accepted(const ibp_verifier *v)
{
    return v ? v->accepted : 0;
}

uint64_t ibp_verifier_last_seq(const ibp_verifier *v, const char *signer)
{
    const ibp_roster_node *n = ibp_roster_find(v->roster, signer);
    return n ? v->last_seq[roster_index(v, n)] : 0;
}

ibp_status ibp_verifier_set_last_seq(ibp_verifier *v, const char *signer, uint64_t seq)
{
    const ibp_roster_node *n = ibp_roster_find(v->roster, signer);
    if (!n)
        return IBP_E_UNKNOWN_SIGNER;
    v->last_seq[roster_index(v, n)] = seq;
    return IBP_OK;
}
