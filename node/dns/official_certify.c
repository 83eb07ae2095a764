/* Snapshots waiting for their certificate; see official_certify.h. */
#include "official_certify.h"

#include <stdlib.h>
#include <string.h>

#include "ibp/ibp.pb-c.h"

void ibp__certify_init(ibp__certify *c, const ibp_roster *roster, size_t quorum)
{
    memset(c, 0, sizeof *c);
    c->roster = roster;
    c->quorum = quorum;
}

void ibp__certify_clear(ibp__certify *c)
{
    for (size_t i = 0; i < c->npending; i++)
        ibp_verified_clear(&c->pending[i].vm);
    for (size_t i = 0; i < c->nstmts; i++)
        free(c->stmts[i].data);
    free(c->stmts);
    memset(c, 0, sizeof *c);
}

/* The epoch a statement envelope claims (0: not a statement). */
static uint64_t statement_epoch(const uint8_t *data, size_t len)
{
    if (len > IBP_CERT_STATEMENT_BYTES_MAX)
        return 0;
    Ibp__V1__Envelope *env = ibp__v1__envelope__unpack(NULL, len, data);
    if (!env)
        return 0;
    ibp_epoch_statement s;
    uint64_t epoch = 0;
    if (env->type == IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EPOCH_STATEMENT &&
        ibp_certificate_statement_decode(env->payload.data, env->payload.len, &s) == IBP_OK)
        epoch = s.epoch;
    ibp__v1__envelope__free_unpacked(env, NULL);
    return epoch;
}

bool ibp__certify_add_statement(ibp__certify *c, const uint8_t *data, size_t len,
                                uint64_t min_epoch)
{
    uint64_t epoch = statement_epoch(data, len);
    if (epoch <= min_epoch)
        return false;
    if (c->nstmts >= IBP__CERTIFY_STATEMENTS_MAX) {
        /* Full (a stream read from its start, many replicas): the oldest epoch goes. */
        size_t low = 0;
        for (size_t i = 1; i < c->nstmts; i++)
            if (c->stmts[i].epoch < c->stmts[low].epoch)
                low = i;
        if (c->stmts[low].epoch >= epoch)
            return false;
        free(c->stmts[low].data);
        c->stmts[low] = c->stmts[--c->nstmts];
    }
    for (size_t i = 0; i < c->nstmts; i++)
        if (c->stmts[i].len == len && memcmp(c->stmts[i].data, data, len) == 0)
            return false;
    if (!c->stmts) {
        c->stmts = calloc(IBP__CERTIFY_STATEMENTS_MAX, sizeof *c->stmts);
        if (!c->stmts)
            return false;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return false;
    memcpy(copy, data, len);
    c->stmts[c->nstmts++] = (ibp__certify_stmt){epoch, copy, len};
    return true;
}

void ibp__certify_add_snapshot(ibp__certify *c, ibp__certify_pending *p, bool *evicted)
{
    if (evicted)
        *evicted = false;
    if (c->npending == IBP__CERTIFY_PENDING_MAX) {
        ibp_verified_clear(&c->pending[0].vm);
        memmove(&c->pending[0], &c->pending[1], (c->npending - 1) * sizeof c->pending[0]);
        c->npending--;
        if (evicted)
            *evicted = true;
    }
    c->pending[c->npending++] = *p;
    memset(&p->vm, 0, sizeof p->vm);
}

int ibp__certify_find(ibp__certify *c, uint64_t have_epoch, bool have_prev, const uint8_t *prev,
                      ibp_certificate_result *result, uint8_t **certificate, size_t *cert_len)
{
    memset(result, 0, sizeof *result);
    const uint8_t **data = calloc(c->nstmts ? c->nstmts : 1, sizeof *data);
    size_t *lens = calloc(c->nstmts ? c->nstmts : 1, sizeof *lens);
    int found = -1;
    bool judged = false;
    for (size_t k = c->npending; data && lens && k-- > 0 && found < 0;) {
        ibp__certify_pending *p = &c->pending[k];
        if (p->epoch <= have_epoch)
            continue;
        size_t n = 0;
        for (size_t i = 0; i < c->nstmts; i++)
            if (c->stmts[i].epoch == p->epoch) {
                data[n] = c->stmts[i].data;
                lens[n++] = c->stmts[i].len;
            }
        p->claim.have_prev = have_prev && p->epoch == have_epoch + 1;
        if (p->claim.have_prev)
            memcpy(p->claim.prev_digest, prev, IBP_CERT_DIGEST_BYTES);
        ibp_certificate_result r;
        if (ibp_certificate_verify(c->roster, c->quorum, &p->claim, data, lens, n, &r) != IBP_OK)
            continue;
        if (!judged || r.certified) {
            *result = r;
            judged = true;
        }
        if (!r.certified)
            continue;
        found = (int)k;
        if (certificate &&
            ibp_certificate_encode(p->epoch, data, lens, n, certificate, cert_len) != IBP_OK)
            *certificate = NULL;
    }
    free(data);
    free(lens);
    return found;
}

size_t ibp__certify_forget_upto(ibp__certify *c, uint64_t epoch)
{
    size_t gone = 0, keep = 0;
    for (size_t i = 0; i < c->npending; i++) {
        if (c->pending[i].epoch <= epoch) {
            ibp_verified_clear(&c->pending[i].vm);
            gone++;
        } else {
            c->pending[keep++] = c->pending[i];
        }
    }
    c->npending = keep;
    keep = 0;
    for (size_t i = 0; i < c->nstmts; i++) {
        if (c->stmts[i].epoch <= epoch)
            free(c->stmts[i].data);
        else
            c->stmts[keep++] = c->stmts[i];
    }
    c->nstmts = keep;
    return gone;
}
