/*
 * Judging the quorum certificate kept with an official cache (ibp/cache.h).
 * The claim is rebuilt from what the file says it holds; the verifier
 * (ibp/certificate.h) counts the statements with the roster's keys, so a
 * file copied from elsewhere or edited by hand is not trusted more than a
 * snapshot that arrives without statements. The statements vouch for the
 * snapshot bytes kept beside them, and those bytes for the results and
 * overrides the node will load.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_internal.h"
#include "ibp/cache.h"
#include "ibp/official_snapshot.h"

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

/* Data texts as JSON values: "" (none) equals only "". */
static bool data_equal(const char *a, const char *b)
{
    a = ibp__cache_nz(a);
    b = ibp__cache_nz(b);
    if (!*a || !*b)
        return !*a && !*b;
    if (strcmp(a, b) == 0)
        return true;
    json_t *ja = json_loads(a, JSON_REJECT_DUPLICATES, NULL);
    json_t *jb = json_loads(b, JSON_REJECT_DUPLICATES, NULL);
    bool eq = ja && jb && json_equal(ja, jb);
    json_decref(ja);
    json_decref(jb);
    return eq;
}

static bool result_equal(const ibp_result *a, const ibp_result *b)
{
    return a->up == b->up && a->check_time_ms == b->check_time_ms &&
           strcmp(ibp__cache_nz(a->error), ibp__cache_nz(b->error)) == 0 &&
           data_equal(a->data_json, b->data_json);
}

/* The file's results (sorted by key) and disabled overrides against the snapshot's. */
static ibp_status contents_match(const ibp_cache_loaded *c, const ibp_official_snapshot *snap,
                                 char *why, size_t cap)
{
    if (snap->results.count != c->results.count)
        return refuse(why, cap, IBP_E_PAYLOAD_DECODE,
                      "results differ from the certified snapshot: %zu in the file, %zu in "
                      "the snapshot",
                      c->results.count, snap->results.count);
    for (size_t i = 0; i < snap->results.count; i++) {
        const ibp_result *want = snap->results.items[i];
        ibp_result *const *got = bsearch(&want, c->results.items, c->results.count,
                                         sizeof *c->results.items, ibp__cache_cmp_result_ptrs);
        if (!got || !result_equal(*got, want))
            return refuse(why, cap, IBP_E_PAYLOAD_DECODE,
                          "results differ from the certified snapshot: %s check=%s member=%s "
                          "domain=%s endpoint=%s ipv6=%d %s",
                          ibp_check_type_name(want->type), want->check_name, want->member,
                          want->domain, want->endpoint, (int)want->ipv6,
                          got ? "has other values" : "is missing from the file");
    }
    size_t disabled = 0;
    for (size_t i = 0; i < c->override_count; i++) {
        const ibp_cache_override *o = &c->overrides[i];
        if (!o->disabled)
            continue;
        disabled++;
        size_t k = 0;
        while (k < snap->n_overrides && strcmp(snap->overrides[k].member, o->member) != 0)
            k++;
        if (k == snap->n_overrides ||
            strcmp(ibp__cache_nz(snap->overrides[k].reason), ibp__cache_nz(o->reason)) != 0)
            return refuse(why, cap, IBP_E_PAYLOAD_DECODE,
                          "overrides differ from the certified snapshot: member %s", o->member);
    }
    if (disabled != snap->n_overrides)
        return refuse(why, cap, IBP_E_PAYLOAD_DECODE,
                      "overrides differ from the certified snapshot: %zu disabled in the file, "
                      "%zu in the snapshot",
                      disabled, snap->n_overrides);
    return IBP_OK;
}

/* The certified claim against the snapshot bytes, and those against the file. */
static ibp_status snapshot_match(const ibp_cache_loaded *c, char *why, size_t cap)
{
    const ibp_cache_certificate *cc = &c->certificate;
    uint8_t hash[IBP_CERT_DIGEST_BYTES];
    if (!cc->snapshot || !cc->snapshot_len)
        return refuse(why, cap, IBP_E_NOT_FOUND, "no snapshot bytes with the certificate");
    ibp_certificate_snapshot_hash(cc->snapshot, cc->snapshot_len, hash);
    if (memcmp(hash, cc->snapshot_hash, sizeof hash) != 0)
        return refuse(why, cap, IBP_E_BAD_SIGNATURE,
                      "the snapshot bytes are not the ones certified (their hash differs)");
    ibp_official_snapshot snap;
    ibp_err err = {0};
    ibp_status st = ibp_official_snapshot_decode(cc->snapshot, cc->snapshot_len, &snap, &err);
    if (st != IBP_OK)
        return refuse(why, cap, st == IBP_E_NOMEM ? st : IBP_E_PAYLOAD_DECODE,
                      "the certified snapshot does not decode: %s", err.msg);
    if (snap.epoch != c->epoch || snap.local_seq != cc->local_seq ||
        snap.digest_len != IBP_CERT_DIGEST_BYTES ||
        memcmp(snap.digest, cc->state_digest, IBP_CERT_DIGEST_BYTES) != 0)
        st = refuse(why, cap, IBP_E_PAYLOAD_DECODE,
                    "the certified snapshot is of epoch %" PRIu64 " local_seq %" PRIu64
                    " (another digest or place than the file says)",
                    snap.epoch, snap.local_seq);
    else
        st = contents_match(c, &snap, why, cap);
    ibp_official_snapshot_clear(&snap);
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
    st = snapshot_match(c, why, cap);
done:
    if (res)
        *res = r;
    ibp_certificate_blob_free(&blob);
    return st;
}
