/*
 * The quorum certificate of an official snapshot, read from COSIGN and judged
 * against the roster; see certificate_report.h.
 */
#include "certificate_report.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/certificate.h"
#include "ibp/subject.h"
#include "ibp/vec.h"

/* Statements kept per consensus node and epoch: a replica signs an epoch
 * once, or again when it publishes its current epoch again; more is noise
 * (a stolen key can fill its own subject). Fewer with many consensus nodes,
 * so an epoch's statements stay within IBP_CERT_STATEMENTS_MAX. */
#define KEEP_PER_NODE 8
/* How long to wait for the next message of a subject known to hold more. */
#define READ_WAIT_MS 10000
#define SUBJECT_CAP 160

typedef struct stmt {
    uint64_t epoch;
    uint64_t stream_seq;
    char subject[SUBJECT_CAP];
    uint8_t *data;
    size_t len;
} stmt;

typedef struct stmt_list {
    stmt *items;
    size_t len, cap;
} stmt_list;

static void stmt_list_free(stmt_list *l)
{
    for (size_t i = 0; i < l->len; i++)
        free(l->items[i].data);
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* The epoch a statement envelope claims (0: not a statement). Nothing is
 * verified here: the verifier judges every kept statement. */
static uint64_t statement_epoch(const uint8_t *data, size_t len)
{
    if (len == 0 || len > IBP_CERT_STATEMENT_BYTES_MAX)
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

/* What to keep of a subject: statements of epochs lo..hi, at most keep of each. */
typedef struct keep_rule {
    uint64_t lo, hi;
    size_t keep;
} keep_rule;

/* Keeps a copy of a statement read from subject that the rule wants; the
 * oldest of the subject's for that epoch goes when it has rule->keep already. */
static ibp_status keep_statement(stmt_list *l, const keep_rule *rule, const char *subject,
                                 uint64_t stream_seq, const uint8_t *data, size_t len)
{
    uint64_t epoch = statement_epoch(data, len);
    if (epoch == 0 || epoch < rule->lo || epoch > rule->hi)
        return IBP_OK;
    size_t same = 0, oldest = 0;
    for (size_t i = l->len; i-- > 0;)
        if (l->items[i].epoch == epoch && strcmp(l->items[i].subject, subject) == 0) {
            same++;
            oldest = i;
        }
    if (same >= rule->keep) {
        free(l->items[oldest].data);
        memmove(&l->items[oldest], &l->items[oldest + 1],
                (l->len - oldest - 1) * sizeof l->items[0]);
        l->len--;
    }
    if (l->len + 1 > l->cap) {
        stmt *grown = ibp_grow(l->items, &l->cap, l->len + 1, sizeof *grown);
        if (!grown)
            return IBP_E_NOMEM;
        l->items = grown;
    }
    uint8_t *copy = malloc(len);
    if (!copy)
        return IBP_E_NOMEM;
    memcpy(copy, data, len);
    stmt *s = &l->items[l->len++];
    s->epoch = epoch;
    s->stream_seq = stream_seq;
    snprintf(s->subject, sizeof s->subject, "%s", subject);
    s->data = copy;
    s->len = len;
    return IBP_OK;
}

/*
 * Reads subject on COSIGN from its first message to the one that is last
 * now, through an ordered consumer (as the dns node's subscriber reads
 * COSIGN), keeping what rule wants.
 */
static ibp_status read_subject(jsCtx *js, const char *subject, const keep_rule *rule, stmt_list *l,
                               ibp_err *err)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetLastMsg(&m, js, IBP_STREAM_COSIGN, subject, NULL, &jerr);
    if (ns == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr || jerr == JSStreamNotFoundErr)
        return IBP_OK; /* nothing signed there (or no COSIGN at all) */
    if (ns != NATS_OK)
        return ibp_err_set(err, IBP_E_NATS, "stream %s, %s: %s (%d)", IBP_STREAM_COSIGN, subject,
                           natsStatus_GetText(ns), (int)jerr);
    uint64_t end = natsMsg_GetSequence(m);
    natsMsg_Destroy(m);

    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = IBP_STREAM_COSIGN;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    natsSubscription *sub = NULL;
    ns = js_SubscribeSync(&sub, js, subject, NULL, &so, &jerr);
    if (ns != NATS_OK)
        return ibp_err_set(err, IBP_E_NATS, "stream %s, %s: cannot read it: %s (%d)",
                           IBP_STREAM_COSIGN, subject, natsStatus_GetText(ns), (int)jerr);
    ibp_status st = IBP_OK;
    for (uint64_t seq = 0; seq < end && st == IBP_OK;) {
        m = NULL;
        ns = natsSubscription_NextMsg(&m, sub, READ_WAIT_MS);
        if (ns != NATS_OK) {
            st = ibp_err_set(err, IBP_E_NATS,
                             "stream %s, %s: no message after stream seq %" PRIu64 " (last %" PRIu64
                             "): %s",
                             IBP_STREAM_COSIGN, subject, seq, end, natsStatus_GetText(ns));
            break;
        }
        jsMsgMetaData *meta = NULL;
        if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
            seq = meta->Sequence.Stream;
            jsMsgMetaData_Destroy(meta);
        }
        if (keep_statement(l, rule, subject, seq, (const uint8_t *)natsMsg_GetData(m),
                           (size_t)natsMsg_GetDataLength(m)) != IBP_OK)
            st = ibp_err_set(err, IBP_E_NOMEM, "out of memory");
        natsMsg_Destroy(m);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return st;
}

ibp_status ibpctl_certificate_report_quorum(const char *prog, const ibp_roster *roster,
                                            uint64_t asked, size_t *out, ibp_err *err)
{
    size_t n = ibp_certificate_consensus_nodes(roster), q = 0;
    if (asked == 1 && n >= 1) {
        q = 1; /* what consensus.certificate_quorum refuses: the operator asked for it */
    } else {
        ibp_status st = ibp_certificate_quorum(roster, (size_t)asked, &q, NULL, err);
        if (st != IBP_OK)
            return st;
    }
    if (q == 1)
        fprintf(stderr,
                "%s: warning: quorum 1: one consensus node's key alone certifies an epoch "
                "(the roster has %zu consensus node%s)\n",
                prog, n, n == 1 ? "" : "s");
    *out = q;
    return IBP_OK;
}

static json_t *hex_json(const uint8_t *data, size_t len)
{
    char buf[2 * IBP_CERT_DIGEST_BYTES + 1];
    if (len > IBP_CERT_DIGEST_BYTES)
        return json_null();
    sodium_bin2hex(buf, sizeof buf, data, len);
    return json_string(buf);
}

/* One snapshot of the epoch, judged. */
typedef struct judged {
    ibp_certificate_claim claim;
    bool digest_ok; /* the snapshot carries a 32-byte state digest */
    ibp_certificate_result r;
    ibp_certificate_judgement *each; /* one per statement of the epoch */
    size_t *idx;                     /* each[i] is l->items[idx[i]] */
    size_t n;
} judged;

static void judged_clear(judged *j)
{
    free(j->each);
    free(j->idx);
    memset(j, 0, sizeof *j);
}

/* Judges snap with the kept statements of its epoch (prev: the previous digest, or NULL). */
static ibp_status judge(const ibp_roster *roster, size_t quorum, const stmt_list *l,
                        const ibpctl_cert_snapshot *snap, const uint8_t *prev, judged *j)
{
    memset(j, 0, sizeof *j);
    const Ibp__V1__OfficialSnapshot *s = snap->s;
    j->claim.epoch = s->epoch;
    j->claim.local_seq = s->local_seq;
    j->digest_ok = s->state_digest.len == IBP_CERT_DIGEST_BYTES;
    if (j->digest_ok)
        memcpy(j->claim.state_digest, s->state_digest.data, IBP_CERT_DIGEST_BYTES);
    ibp_certificate_snapshot_hash(snap->env->payload.data, snap->env->payload.len,
                                  j->claim.snapshot_hash);
    j->claim.have_prev = prev != NULL;
    if (prev)
        memcpy(j->claim.prev_digest, prev, IBP_CERT_DIGEST_BYTES);

    size_t n = 0;
    for (size_t i = 0; i < l->len; i++)
        n += l->items[i].epoch == s->epoch;
    const uint8_t **data = calloc(n ? n : 1, sizeof *data);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    j->idx = calloc(n ? n : 1, sizeof *j->idx);
    j->each = calloc(n ? n : 1, sizeof *j->each);
    ibp_status st = IBP_E_NOMEM;
    if (!data || !lens || !j->idx || !j->each)
        goto out;
    for (size_t i = 0, k = 0; i < l->len; i++)
        if (l->items[i].epoch == s->epoch) {
            data[k] = l->items[i].data;
            lens[k] = l->items[i].len;
            j->idx[k++] = i;
        }
    j->n = n;
    st = ibp_certificate_verify_each(roster, quorum, &j->claim, data, lens, n, &j->r, j->each);
    /* A snapshot without a state digest has nothing a statement could vouch for. */
    if (st == IBP_OK && !j->digest_ok) {
        j->r.certified = false;
        j->r.signers = 0;
    }
out:
    free(data);
    free(lens);
    if (st != IBP_OK)
        judged_clear(j);
    return st;
}

/* The statement a refused one said, for the report. */
static json_t *statement_json(const ibp_epoch_statement *s)
{
    return json_pack("{s:I,s:I,s:o,s:o,s:o}", "epoch", (json_int_t)s->epoch, "local_seq",
                     (json_int_t)s->local_seq, "state_digest",
                     hex_json(s->state_digest, IBP_CERT_DIGEST_BYTES), "prev_digest",
                     hex_json(s->prev_digest, IBP_CERT_DIGEST_BYTES), "snapshot_hash",
                     hex_json(s->snapshot_hash, IBP_CERT_DIGEST_BYTES));
}

/* The "certificate" object of the snapshot judged in j. */
static json_t *report_json(const ibp_roster *roster, const stmt_list *l,
                           const ibpctl_cert_snapshot *snap, const judged *j, bool prev_checked)
{
    json_t *signed_by = json_array(), *missing = json_array(), *refused = json_array();
    for (size_t i = 0; i < ibp_roster_count(roster); i++) {
        const ibp_roster_node *node = ibp_roster_at(roster, i);
        if (!(node->roles & IBP_ROLE_CONSENSUS))
            continue;
        bool counted = false;
        for (size_t k = 0; k < j->n && !counted; k++)
            counted = j->each[k].verdict == IBP_CERT_OK && j->each[k].signer_verified &&
                      strcmp(j->each[k].signer, node->id) == 0;
        json_array_append_new(counted ? signed_by : missing, json_string(node->id));
    }
    for (size_t k = 0; k < j->n; k++) {
        const ibp_certificate_judgement *e = &j->each[k];
        if (e->verdict == IBP_CERT_OK)
            continue;
        const stmt *s = &l->items[j->idx[k]];
        json_t *o =
            json_pack("{s:I,s:s,s:s,s:b,s:s,s:s}", "stream_seq", (json_int_t)s->stream_seq,
                      "subject", s->subject, "signer", e->signer, "signer_verified",
                      (int)e->signer_verified, "verdict", ibp_certificate_verdict_key(e->verdict),
                      "reason", ibp_certificate_verdict_text(e->verdict));
        if (o && e->decoded)
            json_object_set_new(o, "statement", statement_json(&e->statement));
        json_array_append_new(refused, o);
    }
    json_t *out = json_pack(
        "{s:b,s:I,s:I,s:I,s:o,s:o,s:I,s:o,s:I,s:o,s:b,s:o}", "certified", (int)j->r.certified,
        "quorum", (json_int_t)j->r.quorum, "signers", (json_int_t)j->r.signers, "consensus_nodes",
        (json_int_t)ibp_certificate_consensus_nodes(roster), "signed_by", signed_by,
        "not_signed_by", missing, "stream_seq", (json_int_t)snap->stream_seq, "snapshot_hash",
        hex_json(j->claim.snapshot_hash, IBP_CERT_DIGEST_BYTES), "statements", (json_int_t)j->n,
        "prev_digest",
        j->r.signers || j->claim.have_prev ? hex_json(j->r.prev_digest, IBP_CERT_DIGEST_BYTES)
                                           : json_null(),
        "prev_checked", (int)prev_checked, "refused", refused);
    if (out && !j->digest_ok)
        json_object_set_new(out, "reason", json_string("the snapshot has no 32-byte state_digest"));
    return out;
}

ibp_status ibpctl_certificate_report_make(jsCtx *js, const ibp_roster *roster, size_t quorum,
                                          const ibpctl_cert_snapshot *snaps, size_t n,
                                          const ibpctl_cert_snapshot *prev, size_t n_prev,
                                          ibpctl_certificate_report *out, ibp_err *err)
{
    if (!js || !roster || !snaps || !out || quorum == 0 || n == 0 ||
        n > IBPCTL_CERT_SNAPSHOTS_MAX || (n_prev && !prev))
        return ibp_err_set(err, IBP_E_INVAL, "certificate report: bad arguments");
    uint64_t epoch = snaps[0].s->epoch;
    size_t nodes = ibp_certificate_consensus_nodes(roster);
    keep_rule rule = {epoch, epoch, KEEP_PER_NODE};
    if (epoch > 1 && n_prev > 0)
        rule.lo = epoch - 1;
    if (nodes && IBP_CERT_STATEMENTS_MAX / nodes < rule.keep)
        rule.keep = IBP_CERT_STATEMENTS_MAX / nodes ? IBP_CERT_STATEMENTS_MAX / nodes : 1;
    stmt_list l = {0};
    judged cands[IBPCTL_CERT_SNAPSHOTS_MAX];
    size_t njudged = 0;
    ibpctl_certificate_report r;
    memset(cands, 0, sizeof cands);
    memset(&r, 0, sizeof r);
    ibp_status st = IBP_OK;

    /* Each consensus node's subject: statements signed by anyone else are
     * not where replicas publish, and would be refused anyway. */
    for (size_t i = 0; i < ibp_roster_count(roster) && st == IBP_OK; i++) {
        const ibp_roster_node *node = ibp_roster_at(roster, i);
        char subject[SUBJECT_CAP];
        if (!(node->roles & IBP_ROLE_CONSENSUS))
            continue;
        if (ibp_subject_cosign(node->id, subject, sizeof subject) != IBP_OK)
            st = ibp_err_set(err, IBP_E_INVAL, "node id %s makes no subject", node->id);
        else
            st = read_subject(js, subject, &rule, &l, err);
    }
    if (st != IBP_OK)
        goto out;

    /* The previous digest: the empty state's, or that of the certified epoch E-1 at hand. */
    static const uint8_t empty[IBP_CERT_DIGEST_BYTES];
    uint8_t prev_digest[IBP_CERT_DIGEST_BYTES];
    const uint8_t *have_prev = epoch == 1 ? empty : NULL;
    for (size_t i = 0; rule.lo < epoch && !have_prev && i < n_prev; i++) {
        judged p;
        if (prev[i].s->epoch != epoch - 1)
            continue;
        if ((st = judge(roster, quorum, &l, &prev[i], NULL, &p)) != IBP_OK) {
            ibp_err_set(err, st, "judging epoch %" PRIu64 ": %s", epoch - 1, ibp_strerror(st));
            goto out;
        }
        if (p.r.certified) {
            memcpy(prev_digest, p.claim.state_digest, sizeof prev_digest);
            have_prev = prev_digest;
        }
        judged_clear(&p);
    }

    for (size_t i = 0; i < n; i++) {
        if ((st = judge(roster, quorum, &l, &snaps[i], have_prev, &cands[i])) != IBP_OK) {
            ibp_err_set(err, st, "judging epoch %" PRIu64 ": %s", epoch, ibp_strerror(st));
            goto out;
        }
        njudged++;
    }
    /* The first certified one, else the first given. */
    for (size_t i = n; i-- > 0;)
        if (cands[i].r.certified)
            r.chosen = i;
    const judged *c = &cands[r.chosen];
    r.certified = c->r.certified;
    r.signers = c->r.signers;
    r.quorum = quorum;
    r.consensus_nodes = nodes;
    r.json = report_json(roster, &l, &snaps[r.chosen], c, have_prev != NULL);
    json_t *others = n > 1 ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        if (i == r.chosen)
            continue;
        r.others++;
        r.others_certified += cands[i].r.certified;
        json_array_append_new(others, json_pack("{s:I,s:s,s:b,s:I}", "stream_seq",
                                                (json_int_t)snaps[i].stream_seq, "signer",
                                                snaps[i].env->signer ? snaps[i].env->signer : "",
                                                "certified", (int)cands[i].r.certified, "signers",
                                                (json_int_t)cands[i].r.signers));
    }
    if (others)
        json_object_set_new(r.json, "other_snapshots", others); /* takes others, also on failure */
    if (!r.json || (others && !json_object_get(r.json, "other_snapshots"))) {
        st = ibp_err_set(err, IBP_E_NOMEM, "out of memory");
        goto out;
    }
    *out = r;
    memset(&r, 0, sizeof r);
out:
    ibpctl_certificate_report_clear(&r);
    for (size_t i = 0; i < njudged; i++)
        judged_clear(&cands[i]);
    stmt_list_free(&l);
    return st;
}

void ibpctl_certificate_report_print(const char *prog, const ibpctl_certificate_report *r,
                                     uint64_t epoch)
{
    if (!r->certified)
        fprintf(stderr,
                "%s: epoch %" PRIu64 " is NOT certified: %zu of %zu consensus nodes signed, "
                "quorum %zu\n",
                prog, epoch, r->signers, r->consensus_nodes, r->quorum);
    if (r->others)
        fprintf(stderr,
                "%s: %zu other snapshot%s of epoch %" PRIu64
                " on %s (%zu certified); see \"other_snapshots\"\n",
                prog, r->others, r->others == 1 ? "" : "s", epoch, IBP_STREAM_OFFICIAL,
                r->others_certified);
}

void ibpctl_certificate_report_clear(ibpctl_certificate_report *r)
{
    if (!r)
        return;
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}
