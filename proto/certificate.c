/*
 * Quorum certificates of official epochs: the statement codec, the quorum
 * rule and the pure verifier; see ibp/certificate.h.
 */
#include "ibp/certificate.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/ibp.pb-c.h"
#include "ibp/key.h"

static const char *const verdict_texts[] = {
#define IBP_CERT_X_TEXT(name, key, text) text,
    IBP_CERT_VERDICTS(IBP_CERT_X_TEXT)
#undef IBP_CERT_X_TEXT
};

static const char *const verdict_keys[] = {
#define IBP_CERT_X_KEY(name, key, text) key,
    IBP_CERT_VERDICTS(IBP_CERT_X_KEY)
#undef IBP_CERT_X_KEY
};

const char *ibp_certificate_verdict_text(ibp_certificate_verdict v)
{
    return (unsigned)v < IBP_CERT_VERDICT_COUNT ? verdict_texts[v] : "?";
}

const char *ibp_certificate_verdict_key(ibp_certificate_verdict v)
{
    return (unsigned)v < IBP_CERT_VERDICT_COUNT ? verdict_keys[v] : "?";
}

void ibp_certificate_snapshot_hash(const uint8_t *payload, size_t len,
                                   uint8_t out[IBP_CERT_DIGEST_BYTES])
{
    crypto_generichash(out, IBP_CERT_DIGEST_BYTES, payload, len, NULL, 0);
}

/* ---- the statement ---------------------------------------------------- */

ibp_status ibp_certificate_statement_encode(const ibp_epoch_statement *s, uint8_t **out,
                                            size_t *out_len)
{
    Ibp__V1__EpochStatement m = IBP__V1__EPOCH_STATEMENT__INIT;
    m.epoch = s->epoch;
    m.local_seq = s->local_seq;
    m.state_digest.data = (uint8_t *)s->state_digest;
    m.state_digest.len = IBP_CERT_DIGEST_BYTES;
    m.prev_digest.data = (uint8_t *)s->prev_digest;
    m.prev_digest.len = IBP_CERT_DIGEST_BYTES;
    m.snapshot_hash.data = (uint8_t *)s->snapshot_hash;
    m.snapshot_hash.len = IBP_CERT_DIGEST_BYTES;
    size_t n = ibp__v1__epoch_statement__get_packed_size(&m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return IBP_E_NOMEM;
    ibp__v1__epoch_statement__pack(&m, buf);
    *out = buf;
    *out_len = n;
    return IBP_OK;
}

/* A statement from an unpacked message; false when a field is not as required. */
static bool statement_from(const Ibp__V1__EpochStatement *m, ibp_epoch_statement *out)
{
    if (m->epoch == 0 || m->state_digest.len != IBP_CERT_DIGEST_BYTES ||
        m->prev_digest.len != IBP_CERT_DIGEST_BYTES ||
        m->snapshot_hash.len != IBP_CERT_DIGEST_BYTES)
        return false;
    out->epoch = m->epoch;
    out->local_seq = m->local_seq;
    memcpy(out->state_digest, m->state_digest.data, IBP_CERT_DIGEST_BYTES);
    memcpy(out->prev_digest, m->prev_digest.data, IBP_CERT_DIGEST_BYTES);
    memcpy(out->snapshot_hash, m->snapshot_hash.data, IBP_CERT_DIGEST_BYTES);
    return true;
}

ibp_status ibp_certificate_statement_decode(const uint8_t *data, size_t len,
                                            ibp_epoch_statement *out)
{
    if (len > IBP_CERT_STATEMENT_BYTES_MAX)
        return IBP_E_PAYLOAD_DECODE;
    Ibp__V1__EpochStatement *m = ibp__v1__epoch_statement__unpack(NULL, len, data);
    if (!m)
        return IBP_E_PAYLOAD_DECODE;
    ibp_epoch_statement s;
    bool ok = statement_from(m, &s);
    ibp__v1__epoch_statement__free_unpacked(m, NULL);
    if (!ok)
        return IBP_E_PAYLOAD_DECODE;
    *out = s;
    return IBP_OK;
}

ibp_status ibp_certificate_statement_seal(ibp_signer *signer, const ibp_epoch_statement *s,
                                          int64_t created_ms, uint8_t **out, size_t *out_len,
                                          uint64_t *seq_out, ibp_err *err)
{
    uint8_t *payload = NULL;
    size_t plen = 0;
    if (ibp_certificate_statement_encode(s, &payload, &plen) != IBP_OK)
        return ibp_err_set(err, IBP_E_NOMEM, "statement: out of memory");
    ibp_status st = ibp_signer_seal_bytes(signer, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EPOCH_STATEMENT,
                                          payload, plen, created_ms, out, out_len, seq_out, err);
    free(payload);
    return st;
}

/* ---- quorum ----------------------------------------------------------- */

size_t ibp_certificate_consensus_nodes(const ibp_roster *roster)
{
    size_t n = 0;
    for (size_t i = 0; i < ibp_roster_count(roster); i++)
        if (ibp_roster_at(roster, i)->roles & IBP_ROLE_CONSENSUS)
            n++;
    return n;
}

ibp_status ibp_certificate_quorum(const ibp_roster *roster, size_t configured, size_t *out,
                                  bool *single, ibp_err *err)
{
    size_t n = ibp_certificate_consensus_nodes(roster);
    if (n == 0)
        return ibp_err_set(err, IBP_E_CONFIG, "quorum: the roster has no consensus node");
    size_t q = configured ? configured : n / 2 + 1;
    if (q > n)
        return ibp_err_set(err, IBP_E_CONFIG,
                           "quorum %zu is more than the roster's %zu consensus nodes", q, n);
    if (q == 1 && n > 1)
        return ibp_err_set(err, IBP_E_CONFIG,
                           "quorum 1 with %zu consensus nodes in the roster would let one "
                           "stolen key decide: use 0 (a majority, %zu) or more",
                           n, n / 2 + 1);
    if (single)
        *single = q == 1;
    *out = q;
    return IBP_OK;
}

/* ---- verifying -------------------------------------------------------- */

typedef struct judged {
    ibp_certificate_judgement j;
    const ibp_roster_node *node; /* the signer, when its signature verified */
} judged;

/* Everything about one statement that does not depend on the others. The
 * signature is checked unless the caller did already (check_signature). */
static void judge_one(const ibp_roster *roster, const ibp_certificate_claim *claim,
                      const uint8_t *data, size_t len, bool check_signature, judged *out)
{
    ibp_certificate_judgement *j = &out->j;
    memset(out, 0, sizeof *out);
    if (!data || len == 0 || len > IBP_CERT_STATEMENT_BYTES_MAX) {
        j->verdict = IBP_CERT_BAD_ENVELOPE;
        return;
    }
    Ibp__V1__Envelope *env = ibp__v1__envelope__unpack(NULL, len, data);
    if (!env) {
        j->verdict = IBP_CERT_BAD_ENVELOPE;
        return;
    }
    if (env->signer) {
        size_t n = strnlen(env->signer, IBP_NODE_ID_MAX);
        memcpy(j->signer, env->signer, n);
        j->signer[n] = '\0';
    }
    ibp_epoch_statement *s = &j->statement;
    const ibp_roster_node *node = ibp_roster_find(roster, env->signer);
    if (!node)
        j->verdict = IBP_CERT_UNKNOWN_SIGNER;
    else if (check_signature && !ibp_envelope_signature_valid(env, node->pk))
        j->verdict = IBP_CERT_BAD_SIGNATURE;
    else if (!(node->roles & IBP_ROLE_CONSENSUS))
        j->verdict = IBP_CERT_NOT_CONSENSUS;
    else if (env->type != IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EPOCH_STATEMENT)
        j->verdict = IBP_CERT_WRONG_TYPE;
    else if (!(j->decoded = ibp_certificate_statement_decode(env->payload.data, env->payload.len,
                                                             s) == IBP_OK))
        j->verdict = IBP_CERT_BAD_STATEMENT;
    else if (s->epoch != claim->epoch || s->local_seq != claim->local_seq ||
             memcmp(s->state_digest, claim->state_digest, IBP_CERT_DIGEST_BYTES) != 0)
        j->verdict = IBP_CERT_DIGEST_MISMATCH;
    else if (memcmp(s->snapshot_hash, claim->snapshot_hash, IBP_CERT_DIGEST_BYTES) != 0)
        j->verdict = IBP_CERT_HASH_MISMATCH;
    else if (claim->have_prev &&
             memcmp(s->prev_digest, claim->prev_digest, IBP_CERT_DIGEST_BYTES) != 0)
        j->verdict = IBP_CERT_CHAIN_MISMATCH;
    else
        j->verdict = IBP_CERT_OK;
    /* Only a signature that verified makes the name worth reporting. */
    if (node && j->verdict != IBP_CERT_BAD_SIGNATURE) {
        out->node = node;
        j->signer_verified = true;
    }
    ibp__v1__envelope__free_unpacked(env, NULL);
}

static bool same_prev(const judged *j, const uint8_t *prev)
{
    return memcmp(j->j.statement.prev_digest, prev, IBP_CERT_DIGEST_BYTES) == 0;
}

/* Distinct signers among the statements still OK whose previous digest is prev. */
static size_t group_signers(const judged *js, size_t n, const uint8_t *prev)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (js[i].j.verdict != IBP_CERT_OK || !same_prev(&js[i], prev))
            continue;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = js[k].j.verdict == IBP_CERT_OK && js[k].node == js[i].node &&
                   same_prev(&js[k], prev);
        if (!seen)
            count++;
    }
    return count;
}

static ibp_status verify(const ibp_roster *roster, size_t quorum, const ibp_certificate_claim *claim,
                         const uint8_t *const *statements, const size_t *lens, size_t n,
                         bool check_signatures, ibp_certificate_result *out,
                         ibp_certificate_judgement *each)
{
    if (!roster || !claim || !out || quorum == 0 || n > IBP_CERT_STATEMENTS_MAX ||
        (n && (!statements || !lens)))
        return IBP_E_INVAL;
    if (ibp_crypto_init() != IBP_OK)
        return IBP_E_CRYPTO;
    judged *js = calloc(n ? n : 1, sizeof *js);
    if (!js)
        return IBP_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        judge_one(roster, claim, statements[i], lens[i], check_signatures, &js[i]);

    /* The previous digest the counted statements share. */
    const uint8_t *prev = claim->have_prev ? claim->prev_digest : NULL;
    if (!prev) {
        size_t best = 0;
        for (size_t i = 0; i < n; i++) {
            if (js[i].j.verdict != IBP_CERT_OK)
                continue;
            size_t g = group_signers(js, n, js[i].j.statement.prev_digest);
            if (g > best) {
                best = g;
                prev = js[i].j.statement.prev_digest;
            }
        }
    }
    memset(out, 0, sizeof *out);
    out->quorum = quorum;
    out->first_refusal = IBP_CERT_OK;
    if (prev)
        memcpy(out->prev_digest, prev, IBP_CERT_DIGEST_BYTES);
    for (size_t i = 0; i < n; i++) {
        judged *j = &js[i];
        if (j->j.verdict == IBP_CERT_OK && !same_prev(j, prev))
            j->j.verdict = IBP_CERT_CHAIN_MISMATCH;
        if (j->j.verdict == IBP_CERT_OK) {
            for (size_t k = 0; k < i; k++)
                if (js[k].j.verdict == IBP_CERT_OK && js[k].node == j->node) {
                    j->j.verdict = IBP_CERT_DUPLICATE_SIGNER;
                    break;
                }
        }
        out->by_verdict[j->j.verdict]++;
        if (j->j.verdict == IBP_CERT_OK) {
            out->signers++;
        } else if (out->first_refusal == IBP_CERT_OK) {
            out->first_refusal = j->j.verdict;
            if (j->node)
                memcpy(out->first_refusal_signer, j->node->id, sizeof out->first_refusal_signer);
        }
        if (each)
            each[i] = j->j;
    }
    out->certified = out->signers >= quorum;
    free(js);
    return IBP_OK;
}

ibp_status ibp_certificate_verify(const ibp_roster *roster, size_t quorum,
                                  const ibp_certificate_claim *claim,
                                  const uint8_t *const *statements, const size_t *lens, size_t n,
                                  ibp_certificate_result *out)
{
    return verify(roster, quorum, claim, statements, lens, n, true, out, NULL);
}

ibp_status ibp_certificate_verify_each(const ibp_roster *roster, size_t quorum,
                                       const ibp_certificate_claim *claim,
                                       const uint8_t *const *statements, const size_t *lens,
                                       size_t n, ibp_certificate_result *out,
                                       ibp_certificate_judgement *each)
{
    return verify(roster, quorum, claim, statements, lens, n, true, out, each);
}

ibp_status ibp_certificate_verify_checked(const ibp_roster *roster, size_t quorum,
                                          const ibp_certificate_claim *claim,
                                          const uint8_t *const *statements, const size_t *lens,
                                          size_t n, ibp_certificate_result *out)
{
    return verify(roster, quorum, claim, statements, lens, n, false, out, NULL);
}

/* ---- as bytes ----------------------------------------------------------- */

ibp_status ibp_certificate_encode(uint64_t epoch, const uint8_t *const *statements,
                                  const size_t *lens, size_t n, uint8_t **out, size_t *out_len)
{
    Ibp__V1__EpochCertificate c = IBP__V1__EPOCH_CERTIFICATE__INIT;
    ProtobufCBinaryData *bs = calloc(n ? n : 1, sizeof *bs);
    if (!bs)
        return IBP_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        bs[i].data = (uint8_t *)statements[i];
        bs[i].len = lens[i];
    }
    c.epoch = epoch;
    c.n_statements = n;
    c.statements = bs;
    size_t len = ibp__v1__epoch_certificate__get_packed_size(&c);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf)
        ibp__v1__epoch_certificate__pack(&c, buf);
    free(bs);
    if (!buf)
        return IBP_E_NOMEM;
    *out = buf;
    *out_len = len;
    return IBP_OK;
}

void ibp_certificate_blob_free(ibp_certificate_blob *b)
{
    if (!b)
        return;
    free(b->statements ? b->statements[0] : NULL);
    free(b->statements);
    free(b->lens);
    memset(b, 0, sizeof *b);
}

ibp_status ibp_certificate_decode(const uint8_t *data, size_t len, ibp_certificate_blob *out)
{
    memset(out, 0, sizeof *out);
    if (len > (size_t)IBP_CERT_STATEMENTS_MAX * (IBP_CERT_STATEMENT_BYTES_MAX + 8) + 16)
        return IBP_E_PAYLOAD_DECODE;
    Ibp__V1__EpochCertificate *c = ibp__v1__epoch_certificate__unpack(NULL, len, data);
    if (!c)
        return IBP_E_PAYLOAD_DECODE;
    ibp_status st = IBP_OK;
    size_t n = c->n_statements, total = 0;
    if (n > IBP_CERT_STATEMENTS_MAX) {
        st = IBP_E_PAYLOAD_DECODE;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        total += c->statements[i].len;
    /* One block for every statement, so freeing needs no count. */
    uint8_t *block = malloc(total ? total : 1);
    out->statements = calloc(n ? n : 1, sizeof *out->statements);
    out->lens = calloc(n ? n : 1, sizeof *out->lens);
    if (!block || !out->statements || !out->lens) {
        free(block);
        free(out->statements);
        free(out->lens);
        memset(out, 0, sizeof *out);
        st = IBP_E_NOMEM;
        goto out;
    }
    out->statements[0] = block;
    for (size_t i = 0, off = 0; i < n; i++) {
        if (c->statements[i].len)
            memcpy(block + off, c->statements[i].data, c->statements[i].len);
        out->statements[i] = block + off;
        out->lens[i] = c->statements[i].len;
        off += c->statements[i].len;
    }
    out->n = n;
    out->epoch = c->epoch;
out:
    ibp__v1__epoch_certificate__free_unpacked(c, NULL);
    return st;
}
