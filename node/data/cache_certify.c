/*
 * Judging the quorum certificate kept with an official cache (ibp/cache.h).
 * The claim is rebuilt from what the file says it holds; the verifier
 * (ibp/certificate.h) counts the statements with the roster's keys, so a
 * file copied from elsewhere or edited by hand is not trusted more than a
 * snapshot that arrives without statements.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cache_internal.h"
#include "ibp/cache.h"

static ibp_status refuse(char *why, size_t cap, ibp_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static ibp_status refuse(char *why, size_t cap, ibp_status st, const char *fmt, ...)
{
    if (why && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return st;
}

ibp_status ibp_cache_certificate_check(const ibp_cache_loaded *c, const ibp_roster *roster,
                                       size_t quorum, ibp_certificate_result *res, char *why,
                                       size_t cap)
{
    ibp_certificate_blob blob = {0};
    ibp_certificate_result r;
    ibp_status st;
    memset(&r, 0, sizeof r);
    if (why && cap)
        why[0] = '\0';
    if (!c || !roster || quorum == 0)
        return refuse(why, cap, IBP_E_INVAL, "no cache, roster or quorum");
    if (!c->has_epoch || !c->has_certificate)
        return refuse(why, cap, IBP_E_NOT_FOUND, "no certificate");
    if (ibp_certificate_decode(c->certificate.bytes, c->certificate.len, &blob) != IBP_OK)
        return refuse(why, cap, IBP_E_PAYLOAD_DECODE, "certificate does not decode");
    if (blob.epoch != c->epoch) {
        st = refuse(why, cap, IBP_E_PAYLOAD_DECODE,
                    "certificate of epoch %" PRIu64 ", cache holds %" PRIu64, blob.epoch,
                    c->epoch);
        goto done;
    }
    ibp_certificate_claim claim;
    memset(&claim, 0, sizeof claim);
    claim.epoch = c->epoch;
    claim.local_seq = c->certificate.local_seq;
    memcpy(claim.state_digest, c->certificate.state_digest, sizeof claim.state_digest);
    memcpy(claim.snapshot_hash, c->certificate.snapshot_hash, sizeof claim.snapshot_hash);
    st = ibp_certificate_verify(roster, quorum, &claim, (const uint8_t *const *)blob.statements,
                                blob.lens, blob.n, &r);
    if (st != IBP_OK) {
        st = refuse(why, cap, st, "certificate not judged: %s", ibp_strerror(st));
        goto done;
    }
    if (!r.certified) {
        st = refuse(why, cap, IBP_E_BAD_SIGNATURE,
                    "%zu of quorum %zu signers counted (%zu statements)%s%s%s%s%s", r.signers,
                    r.quorum, blob.n, r.first_refusal != IBP_CERT_OK ? "; first refusal: " : "",
                    r.first_refusal != IBP_CERT_OK ? ibp_certificate_verdict_text(r.first_refusal)
                                                   : "",
                    r.first_refusal_signer[0] ? " (signer " : "", r.first_refusal_signer,
                    r.first_refusal_signer[0] ? ")" : "");
        goto done;
    }
    st = IBP_OK;
done:
    if (res)
        *res = r;
    ibp_certificate_blob_free(&blob);
    return st;
}
