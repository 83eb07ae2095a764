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
    size_t n = ibp_certificate_consensus_nodes(roster);
    if (n)
        c->share = IBP__CERTIFY_STATEMENTS_MAX / n ? IBP__CERTIFY_STATEMENTS_MAX / n : 1;
}

void ibp__certify_clear(ibp__certify *c)
{
    for (size_t i = 0; i < c->npending; i++)
        ibp_verified_clear(&c->pending[i].vm);
    for (size_t i = 0; i < c->nstmts; i++)
        free(c->stmts[i].data);
    free(c->stmts);
    free(c->held);
    memset(c, 0, sizeof *c);
}

/* ---- statements ---------------------------------------------------------- */

/* The roster index of node (one of the roster's). */
static size_t roster_index(const ibp_roster *roster, const ibp_roster_node *node)
{
    size_t i = 0;
    while (ibp_roster_at(roster, i) != node)
        i++;
    return i;
}

/* Room for the statements: share x consensus nodes, so every share fits. */
static bool stmts_alloc(ibp__certify *c)
{
    if (c->stmts)
        return true;
    size_t cap = c->share * ibp_certificate_consensus_nodes(c->roster);
    c->stmts = calloc(cap ? cap : 1, sizeof *c->stmts);
    c->held = calloc(ibp_roster_count(c->roster) + 1, sizeof *c->held);
    if (c->stmts && c->held)
        return true;
    free(c->stmts);
    free(c->held);
    c->stmts = NULL;
    c->held = NULL;
    return false;
}

static void stmt_remove(ibp__certify *c, size_t i)
{
    c->held[c->stmts[i].signer]--;
    free(c->stmts[i].data);
    c->stmts[i] = c->stmts[--c->nstmts];
}

/*
 * Makes room in signer's share for a statement of epoch: at its share, the
 * signer gives up its lowest epoch, unless that is not below epoch (then the
 * newcomer is the one not kept: false). Other signers are never touched.
 */
static bool make_room(ibp__certify *c, size_t signer, uint64_t epoch)
{
    if (c->held[signer] < c->share)
        return true;
    size_t low = c->nstmts;
    for (size_t i = 0; i < c->nstmts; i++)
        if (c->stmts[i].signer == signer &&
            (low == c->nstmts || c->stmts[i].epoch < c->stmts[low].epoch))
            low = i;
    if (low == c->nstmts || c->stmts[low].epoch >= epoch)
        return false;
    stmt_remove(c, low);
    return true;
}

bool ibp__certify_add_statement(ibp__certify *c, const uint8_t *data, size_t len,
                                uint64_t min_epoch)
{
    if (!data || len == 0 || len > IBP_CERT_STATEMENT_BYTES_MAX || !c->share)
        return false;
    Ibp__V1__Envelope *env = ibp__v1__envelope__unpack(NULL, len, data);
    if (!env)
        return false;
    bool kept = false;
    uint8_t *copy = NULL;
    ibp_epoch_statement s;
    /* The cheap checks first: a name, a role and a decode cost no signature. */
    const ibp_roster_node *node = ibp_roster_find(c->roster, env->signer);
    if (!node || !(node->roles & IBP_ROLE_CONSENSUS) ||
        env->type != IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EPOCH_STATEMENT ||
        ibp_certificate_statement_decode(env->payload.data, env->payload.len, &s) != IBP_OK ||
        s.epoch <= min_epoch || !stmts_alloc(c))
        goto out;
    size_t signer = roster_index(c->roster, node), same_epoch = 0;
    for (size_t i = 0; i < c->nstmts; i++) {
        const ibp__certify_stmt *t = &c->stmts[i];
        if (t->signer != signer || t->epoch != s.epoch)
            continue;
        if (memcmp(&t->content, &s, sizeof s) == 0)
            goto out; /* said already (the same envelope, or the same statement sealed again) */
        same_epoch++;
    }
    if (same_epoch >= IBP__CERTIFY_SIGNER_EPOCH_MAX)
        goto out;
    /* Only now the signature: whose share a statement takes must be sure, or
     * statements sealed with another key in an honest replica's name would
     * push out its own. Checked once here; ibp__certify_find relies on it. */
    if (!ibp_envelope_signature_valid(env, node->pk) || !make_room(c, signer, s.epoch))
        goto out;
    copy = malloc(len);
    if (!copy)
        goto out;
    memcpy(copy, data, len);
    c->stmts[c->nstmts++] = (ibp__certify_stmt){
        .epoch = s.epoch, .signer = signer, .content = s, .data = copy, .len = len};
    c->held[signer]++;
    kept = true;
out:
    ibp__v1__envelope__free_unpacked(env, NULL);
    return kept;
}

/* ---- held snapshots -------------------------------------------------------- */

static size_t held_by(const ibp__certify *c, const char *signer)
{
    size_t n = 0;
    for (size_t i = 0; i < c->npending; i++)
        n += strcmp(c->pending[i].signer, signer) == 0;
    return n;
}

/*
 * The held snapshot to drop for p when every place is taken: the lowest
 * epoch of the signer holding the most, counting p; IBP__CERTIFY_PENDING_MAX
 * for p itself. pending is in epoch order, so a signer's first is its lowest.
 */
static size_t victim(const ibp__certify *c, const ibp__certify_pending *p)
{
    const char *who = p->signer;
    size_t most = held_by(c, p->signer) + 1;
    for (size_t i = 0; i < c->npending; i++) {
        size_t n = held_by(c, c->pending[i].signer);
        if (n > most) {
            most = n;
            who = c->pending[i].signer;
        }
    }
    for (size_t i = 0; i < c->npending; i++)
        if (strcmp(c->pending[i].signer, who) == 0)
            return who == p->signer && p->epoch <= c->pending[i].epoch ? IBP__CERTIFY_PENDING_MAX
                                                                       : i;
    return IBP__CERTIFY_PENDING_MAX;
}

void ibp__certify_add_snapshot(ibp__certify *c, ibp__certify_pending *p, bool *evicted)
{
    if (evicted)
        *evicted = false;
    if (c->npending == IBP__CERTIFY_PENDING_MAX) {
        size_t v = victim(c, p);
        if (evicted)
            *evicted = true;
        if (v == IBP__CERTIFY_PENDING_MAX) {
            ibp_verified_clear(&p->vm);
            return;
        }
        ibp_verified_clear(&c->pending[v].vm);
        memmove(&c->pending[v], &c->pending[v + 1], (c->npending - v - 1) * sizeof c->pending[0]);
        c->npending--;
    }
    /* After every held one of the same or a lower epoch. */
    size_t at = c->npending;
    while (at > 0 && c->pending[at - 1].epoch > p->epoch)
        at--;
    memmove(&c->pending[at + 1], &c->pending[at], (c->npending - at) * sizeof c->pending[0]);
    c->pending[at] = *p;
    c->npending++;
    memset(&p->vm, 0, sizeof p->vm);
}

int ibp__certify_find(ibp__certify *c, uint64_t have_epoch, bool have_prev, const uint8_t *prev,
                      ibp_certificate_result *result, uint8_t **certificate, size_t *cert_len)
{
    memset(result, 0, sizeof *result);
    const uint8_t **data = calloc(IBP_CERT_STATEMENTS_MAX, sizeof *data);
    size_t *lens = calloc(IBP_CERT_STATEMENTS_MAX, sizeof *lens);
    int found = -1;
    bool judged = false;
    for (size_t k = c->npending; data && lens && k-- > 0 && found < 0;) {
        ibp__certify_pending *p = &c->pending[k];
        if (p->epoch <= have_epoch)
            continue;
        /* At most IBP__CERTIFY_SIGNER_EPOCH_MAX per consensus node: more
         * than the verifier takes only with over 64 of them. */
        size_t n = 0;
        for (size_t i = 0; i < c->nstmts && n < IBP_CERT_STATEMENTS_MAX; i++)
            if (c->stmts[i].epoch == p->epoch) {
                data[n] = c->stmts[i].data;
                lens[n++] = c->stmts[i].len;
            }
        p->claim.have_prev = have_prev && p->epoch == have_epoch + 1;
        if (p->claim.have_prev)
            memcpy(p->claim.prev_digest, prev, IBP_CERT_DIGEST_BYTES);
        ibp_certificate_result r;
        /* Every signature was checked as the statement came. */
        if (ibp_certificate_verify_checked(c->roster, c->quorum, &p->claim, data, lens, n, &r) !=
            IBP_OK)
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
    for (size_t i = c->nstmts; i-- > 0;)
        if (c->stmts[i].epoch <= epoch)
            stmt_remove(c, i);
    return gone;
}
