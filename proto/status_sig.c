/* Signed status messages: signing input, signing and verification; see ibp/status_sig.h. */
#include "ibp/status_sig.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/subject.h"

#define DOMAIN_LEN (sizeof IBP_STATUS_SIG_DOMAIN) /* with its NUL: 14 bytes */
#define HASH_LEN 32

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

/*
 * The signing input of ibp/status_sig.h after its domain separator (which
 * the signer prepends, see ibp_signer_sign_detached), in a buffer of room
 * bytes before it for the caller to put the separator in. *out is malloc'd.
 */
static ibp_status signing_tail(const char *signer, const char *subject, const uint8_t *body,
                               size_t body_len, size_t room, uint8_t **out, size_t *out_len)
{
    size_t slen = strlen(signer), jlen = strlen(subject);
    if (slen > UINT32_MAX || jlen > UINT32_MAX)
        return IBP_E_INVAL;
    size_t n = 4 + slen + 4 + jlen + 8 + HASH_LEN;
    uint8_t *buf = malloc(room + n);
    if (!buf)
        return IBP_E_NOMEM;
    uint8_t *p = buf + room;
    p = put_u32(p, (uint32_t)slen);
    memcpy(p, signer, slen);
    p += slen;
    p = put_u32(p, (uint32_t)jlen);
    memcpy(p, subject, jlen);
    p += jlen;
    p = put_u64(p, (uint64_t)body_len);
    crypto_generichash(p, HASH_LEN, body, body_len, NULL, 0);
    *out = buf;
    *out_len = n;
    return IBP_OK;
}

static void to_b64(const uint8_t sig[IBP_SIGNATURE_BYTES], char out[IBP_STATUS_SIG_B64_SIZE])
{
    sodium_bin2base64(out, IBP_STATUS_SIG_B64_SIZE, sig, IBP_SIGNATURE_BYTES,
                      sodium_base64_VARIANT_ORIGINAL);
}

ibp_status ibp_status_sig_sign(ibp_signer *s, const char *subject, const uint8_t *body,
                               size_t body_len, char sig_b64[IBP_STATUS_SIG_B64_SIZE], ibp_err *err)
{
    uint8_t *tail = NULL, sig[IBP_SIGNATURE_BYTES];
    size_t n = 0;
    if (!s || !subject || !*subject || (!body && body_len))
        return ibp_err_set(err, IBP_E_INVAL, "sign status: no signer, subject or body");
    ibp_status st = signing_tail(ibp_signer_id(s), subject, body, body_len, 0, &tail, &n);
    if (st != IBP_OK)
        return ibp_err_set(err, st, "sign status %s: %s", subject, ibp_strerror(st));
    st = ibp_signer_sign_detached(s, IBP_STATUS_SIG_DOMAIN, tail, n, sig);
    free(tail);
    if (st != IBP_OK)
        return ibp_err_set(err, st, "sign status %s: %s", subject, ibp_strerror(st));
    to_b64(sig, sig_b64);
    return IBP_OK;
}

ibp_status ibp_status_sig_sign_key(const ibp_key *key, const char *signer, const char *subject,
                                   const uint8_t *body, size_t body_len,
                                   char sig_b64[IBP_STATUS_SIG_B64_SIZE], ibp_err *err)
{
    uint8_t *in = NULL, sig[IBP_SIGNATURE_BYTES];
    size_t n = 0;
    if (!key || !signer || !subject || !*subject || (!body && body_len))
        return ibp_err_set(err, IBP_E_INVAL, "sign status: no key, signer, subject or body");
    if (ibp_crypto_init() != IBP_OK)
        return ibp_err_set(err, IBP_E_CRYPTO, "libsodium failed to initialise");
    ibp_status st = signing_tail(signer, subject, body, body_len, DOMAIN_LEN, &in, &n);
    if (st != IBP_OK)
        return ibp_err_set(err, st, "sign status %s: %s", subject, ibp_strerror(st));
    memcpy(in, IBP_STATUS_SIG_DOMAIN, DOMAIN_LEN);
    int rc = crypto_sign_detached(sig, NULL, in, DOMAIN_LEN + n, key->sk);
    free(in);
    if (rc != 0)
        return ibp_err_set(err, IBP_E_CRYPTO, "sign status %s: signing failed", subject);
    to_b64(sig, sig_b64);
    return IBP_OK;
}

ibp_status ibp_status_sig_verify(const ibp_roster *roster, const char *subject, const char *signer,
                                 const char *sig_b64, const uint8_t *body, size_t body_len,
                                 const ibp_roster_node **node, ibp_err *err)
{
    if (!roster || !subject || (!body && body_len))
        return ibp_err_set(err, IBP_E_INVAL, "verify status: no roster, subject or body");
    if (!signer || !*signer)
        return ibp_err_set(err, IBP_E_NOT_FOUND, "unsigned: no %s header", IBP_HDR_SIGNER);
    if (!sig_b64 || !*sig_b64)
        return ibp_err_set(err, IBP_E_NOT_FOUND, "unsigned: no %s header", IBP_HDR_SIGNATURE);
    const ibp_roster_node *n = ibp_roster_find(roster, signer);
    if (!n)
        /* The header is untrusted: only a valid node id is repeated. */
        return ibp_err_set(err, IBP_E_UNKNOWN_SIGNER, "signer %s is not in the roster",
                           ibp_node_id_valid(signer) ? signer : "(not a node id)");
    uint8_t sig[IBP_SIGNATURE_BYTES];
    size_t sig_len = 0;
    if (ibp_crypto_init() != IBP_OK)
        return ibp_err_set(err, IBP_E_CRYPTO, "libsodium failed to initialise");
    if (sodium_base642bin(sig, sizeof sig, sig_b64, strlen(sig_b64), NULL, &sig_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        sig_len != IBP_SIGNATURE_BYTES)
        return ibp_err_set(err, IBP_E_BAD_SIGNATURE,
                           "signer %s: %s is not base64 of a 64-byte signature", n->id,
                           IBP_HDR_SIGNATURE);
    uint8_t *in = NULL;
    size_t len = 0;
    ibp_status st = signing_tail(n->id, subject, body, body_len, DOMAIN_LEN, &in, &len);
    if (st != IBP_OK)
        return ibp_err_set(err, st, "verify status %s: %s", subject, ibp_strerror(st));
    memcpy(in, IBP_STATUS_SIG_DOMAIN, DOMAIN_LEN);
    int rc = crypto_sign_verify_detached(sig, in, DOMAIN_LEN + len, n->pk);
    free(in);
    if (rc != 0)
        return ibp_err_set(err, IBP_E_BAD_SIGNATURE,
                           "signer %s: signature does not match the roster key for this subject "
                           "and body",
                           n->id);
    if (!(n->roles & IBP_ROLE_CONSENSUS)) {
        char roles[64];
        ibp_roles_format(n->roles, roles, sizeof roles);
        return ibp_err_set(err, IBP_E_ROLE_DENIED,
                           "signer %s has roles %s; status messages need consensus", n->id, roles);
    }
    if (node)
        *node = n;
    return IBP_OK;
}
