/*
 * Simulated cluster: byzantine consensus replicas against the official
 * subscribers' quorum certificates (ctest sim.byzantine, label sim).
 *
 * One process, a step counter for a clock, real keys (libsodium key pairs
 * from the seed, the project's signers and roster) and the project's own
 * certification code: the subscriber's store of held snapshots and statements
 * (node/dns/official_certify.h), the envelope verifier and the certificate
 * verifier (ibp/certificate.h). The official subscriber drives that code from
 * a NATS thread; here each subscriber makes the same calls in the same order
 * as official_subscriber.c (handle_msg, handle_snapshot and hold for a
 * snapshot, drain_statements for a statement, try_certify after either), with
 * the store's epoch, digest and apply reduced to three fields. The chain rule
 * (ibp_chain_follow) that the subscriber applies before holding a snapshot
 * is left out: it assumes OFFICIAL's order, which this model does not keep,
 * and leaving it out hands the certification code every snapshot it could
 * pass, forged ones included.
 *
 * N replicas (3 with 1 byzantine, 5 with 2) compute epochs: every EPOCH_EVERY
 * steps the honest ones agree on the next epoch, whose state digest and
 * snapshot bytes follow from the seed and the epoch. One honest replica that
 * is up publishes its snapshot; every honest replica that is up signs its
 * statement (now and then twice). The byzantine replicas collude: every step
 * they sign statements of any kind (random digests, future epochs, several
 * conflicting ones per epoch, wrong previous digests, other LOCAL positions,
 * and statements vouching for their own forged snapshots), seal statements
 * under honest replicas' names with their own keys, have a compromised dns
 * node and a key the roster does not know sign too, and publish forged
 * snapshots (future epochs, other states of the current epochs, the honest
 * digest with other bytes, chains of forged epochs); once, one of them sends
 * more statements about a coming epoch than a certificate may carry, and
 * later twice its share of the subscribers' statement store, in bursts.
 * They never vouch for an honest epoch with their own keys: that would only
 * help the honest replicas reach a quorum, during an outage too. Every
 * message reaches every subscriber after a random delay (so out of order),
 * sometimes twice.
 *
 * Checked after every delivery:
 *  - a subscriber applies only epochs above the one it holds, each with the
 *    honest digest and snapshot bytes, and the certificate it would keep
 *    verifies again from the roster alone (signatures included);
 *  - no statement of a key that is not a consensus node, or sealed in
 *    another node's name, is ever kept;
 * and after every step:
 *  - every honest statement delivered above the applied epoch is still held,
 *    and so is the newest honest snapshot delivered above it;
 *  - liveness: while a quorum of honest replicas is up, every subscriber
 *    holds each epoch (or a newer one) at most LIVENESS_BOUND steps after the
 *    replicas computed it;
 *  - outage: honest replicas drop below a quorum; the subscribers do not go
 *    past the last epoch a quorum signed, and stay on it; when the replicas
 *    come back (signing the epochs they missed, as a replica behind the chain
 *    head does) every subscriber catches up within CATCHUP_BOUND steps.
 * The figures go to stdout.
 *
 *   IBP_SIM_SEEDS=<n>  seeds per cluster size (default 3), from IBP_SIM_BASE (1)
 *   IBP_SIM_SEED=<s>   run exactly seed s (both cluster sizes)
 * A failure prints its seed and cluster size. The first seed of each size
 * runs twice: keys and all come from the seed, so both runs must apply the
 * same epochs at the same steps.
 */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ibp/certificate.h"
#include "ibp/envelope.h"
#include "ibp/key.h"
#include "ibp/log.h"
#include "ibp/roster.h"
#include "official_certify.h"
#include "sim.h"
#include "testenv.h"

#define MAX_REP 5
#define NSUB 3
#define MAX_EPOCHS 128
#define T0_MS 1700000000000

/* Time, in steps. */
#define EPOCH_EVERY 5   /* the honest replicas compute an epoch */
#define SIGN_JITTER 2   /* a replica signs up to this long after computing */
#define DELAY_MAX 8     /* a message reaches a subscriber after 1..DELAY_MAX */
#define DUP_PPM 100000  /* and reaches it twice with this chance */
#define OUTAGE_AT 150   /* honest replicas drop below a quorum */
#define OUTAGE_STEPS 60 /* for this long */
#define PRODUCE_END 360 /* the last epoch is computed before this step */
#define END (PRODUCE_END + 3 * DELAY_MAX + SIGN_JITTER)
#define EPOCH_BURST_AT 50 /* one byzantine key floods statements about one epoch */
#define BURST_AT 100      /* and about many */
#define BEHIND_MAX 16     /* a replica that comes back signs epochs this close to the head */
/* Bounds asserted. Every honest message of an epoch arrives within
 * SIGN_JITTER + DELAY_MAX steps, so no more may pass before subscribers
 * hold it: a flood that pushed out a held honest snapshot or statement, or
 * kept the honest statements from the verifier, would make them wait for
 * the next epoch. */
#define LIVENESS_BOUND (SIGN_JITTER + DELAY_MAX)
#define CATCHUP_BOUND (SIGN_JITTER + DELAY_MAX + 1)

/* Who sent a message (the checker's, never the subscriber's business). */
enum origin {
    HONEST,
    HONEST_AGAIN, /* an honest statement sealed a second time */
    BYZANTINE,    /* a byzantine replica, with its own key */
    IMPOSTOR,     /* a byzantine key under an honest replica's name */
    OUTSIDER,     /* the compromised dns node's key */
    STRANGER,     /* a key the roster does not know */
};

typedef struct sim_msg {
    int64_t at;
    int sub;
    bool snapshot;
    bool duplicate;
    enum origin origin;
    int rep;        /* the honest replica, for HONEST */
    uint64_t epoch; /* the statement's or snapshot's */
    uint64_t stream_seq;
    uint8_t *data;
    size_t len;
} sim_msg;

typedef struct replica {
    char id[16];
    ibp_key key;
    ibp_signer *signer;
    bool byzantine;
    bool up;
    ibp_signer *impostor[MAX_REP]; /* byzantine: its key under replica i's name */
} replica;

typedef struct subscriber {
    ibp__certify cert;
    ibp_verifier *verifier;
    /* The official store, reduced: its epoch and that epoch's digest. */
    uint64_t applied;
    uint64_t digest_epoch;
    uint8_t digest[IBP_CERT_DIGEST_BYTES];
    int64_t reached[MAX_EPOCHS + 1]; /* when it first held e or newer (-1: not yet) */
    int64_t last_apply_at;
    bool stmt_seen[MAX_REP][MAX_EPOCHS + 1]; /* honest statements delivered */
    uint64_t newest_honest_snapshot;         /* delivered */
    uint64_t frozen;                         /* its epoch during the outage */
} subscriber;

typedef struct figures {
    uint64_t runs, epochs, steps;
    uint64_t honest_sent, forged_statements, forged_snapshots, deliveries, duplicates;
    uint64_t forged_kept, forged_refused, snapshots_evicted, applies, forged_applied;
    uint64_t skipped_epochs;
    int64_t max_delay, max_stall, max_catchup;
    uint64_t stall_epochs;
    double secs;
} figures;

typedef struct world {
    uint64_t seed;
    int n;
    size_t quorum;
    sim_rng rng;
    char dir[4096];
    ibp_roster *roster;
    replica rep[MAX_REP];
    ibp_key outsider_key, stranger_key;
    ibp_signer *outsider, *stranger;
    subscriber sub[NSUB];
    sim_msg *q;
    size_t nq, capq;
    int64_t now;
    bool outage;
    uint64_t epoch;             /* the honest replicas' newest */
    uint64_t last_quorum_epoch; /* the newest one a quorum of them signed */
    uint64_t return_epoch;      /* the newest one when they came back */
    uint64_t stream_seq;
    uint8_t hdigest[MAX_EPOCHS + 1][IBP_CERT_DIGEST_BYTES];
    uint8_t *hpayload[MAX_EPOCHS + 1];
    size_t hlen[MAX_EPOCHS + 1];
    uint8_t hhash[MAX_EPOCHS + 1][IBP_CERT_DIGEST_BYTES];
    int64_t made_at[MAX_EPOCHS + 1];
    bool quorum_signed[MAX_EPOCHS + 1];
    uint64_t trace; /* FNV-1a over what was applied where and when */
    figures f;
} world;

static const char *g_config = "";

static void fail(const world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(const world *w, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "sim.byzantine: FAIL %s seed=%llu step=%lld: %s\n", g_config,
            (unsigned long long)w->seed, (long long)w->now, msg);
    fprintf(stderr, "sim.byzantine: replay with IBP_SIM_SEED=%llu\n", (unsigned long long)w->seed);
    exit(1);
}

#define CHECK(w, cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail((w), __VA_ARGS__);                                                                \
    } while (0)

static void trace_add(world *w, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        w->trace ^= (v >> (8 * i)) & 0xff;
        w->trace *= 0x100000001b3ULL;
    }
}

static void random_bytes(world *w, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)sim_next(&w->rng);
}

/* A 32-byte value named by (tag, seed, a, b). */
static void named_digest(const world *w, const char *tag, uint64_t a, uint64_t b,
                         uint8_t out[IBP_CERT_DIGEST_BYTES])
{
    char buf[128];
    int n = snprintf(buf, sizeof buf, "%s/%llu/%llu/%llu", tag, (unsigned long long)w->seed,
                     (unsigned long long)a, (unsigned long long)b);
    ibp_certificate_snapshot_hash((const uint8_t *)buf, (size_t)n, out);
}

/* ---- snapshots and statements ---------------------------------------------- */

static uint64_t local_seq_of(uint64_t e)
{
    return 1000 + 7 * e;
}

static uint8_t *snapshot_payload(uint64_t e, uint64_t local_seq, const uint8_t *digest,
                                 const char *note, size_t *len)
{
    Ibp__V1__OfficialSnapshot s = IBP__V1__OFFICIAL_SNAPSHOT__INIT;
    char *strings[1] = {(char *)note};
    s.epoch = e;
    s.local_seq = local_seq;
    s.applied_ms = T0_MS + (int64_t)e * 1000;
    s.state_digest.data = (uint8_t *)digest;
    s.state_digest.len = IBP_CERT_DIGEST_BYTES;
    s.n_strings = 1;
    s.strings = strings;
    *len = ibp__v1__official_snapshot__get_packed_size(&s);
    uint8_t *buf = malloc(*len);
    if (!buf)
        abort();
    ibp__v1__official_snapshot__pack(&s, buf);
    return buf;
}

/* The honest digests up to e (epoch 0: the empty state, all zero). */
static void honest_epoch(world *w, uint64_t e)
{
    CHECK(w, e <= MAX_EPOCHS, "epoch %llu over MAX_EPOCHS", (unsigned long long)e);
    named_digest(w, "honest", e, 0, w->hdigest[e]);
    w->hpayload[e] = snapshot_payload(e, local_seq_of(e), w->hdigest[e], "sim", &w->hlen[e]);
    ibp_certificate_snapshot_hash(w->hpayload[e], w->hlen[e], w->hhash[e]);
}

static ibp_epoch_statement honest_statement(const world *w, uint64_t e)
{
    ibp_epoch_statement s;
    memset(&s, 0, sizeof s);
    s.epoch = e;
    s.local_seq = local_seq_of(e);
    memcpy(s.state_digest, w->hdigest[e], IBP_CERT_DIGEST_BYTES);
    memcpy(s.prev_digest, w->hdigest[e - 1], IBP_CERT_DIGEST_BYTES);
    memcpy(s.snapshot_hash, w->hhash[e], IBP_CERT_DIGEST_BYTES);
    return s;
}

/*
 * Forged snapshot v of epoch e (shared by the colluding byzantine replicas)
 * and the statement vouching for it (the honest previous digest, so that it
 * chains on what subscribers hold). Variant 0 keeps the honest digest with
 * other bytes; 1 another state; 2 another state at another LOCAL position.
 */
static uint8_t *forged_snapshot(const world *w, uint64_t e, uint32_t v, size_t *len,
                                ibp_epoch_statement *vouch)
{
    uint8_t digest[IBP_CERT_DIGEST_BYTES];
    uint64_t seq = local_seq_of(e);
    char note[32];
    snprintf(note, sizeof note, "forged %u", v);
    if (v % 3 == 0 && e <= w->epoch)
        memcpy(digest, w->hdigest[e], sizeof digest);
    else
        named_digest(w, "forged", e, v, digest);
    if (v % 3 == 2)
        seq += 1 + v;
    uint8_t *p = snapshot_payload(e, seq, digest, note, len);
    memset(vouch, 0, sizeof *vouch);
    vouch->epoch = e;
    vouch->local_seq = seq;
    memcpy(vouch->state_digest, digest, sizeof digest);
    if (e - 1 <= w->epoch)
        memcpy(vouch->prev_digest, w->hdigest[e - 1], IBP_CERT_DIGEST_BYTES);
    ibp_certificate_snapshot_hash(p, *len, vouch->snapshot_hash);
    return p;
}

/* ---- the network -------------------------------------------------------------- */

static void enqueue(world *w, const sim_msg *m)
{
    if (w->nq == w->capq) {
        w->capq = w->capq ? 2 * w->capq : 256;
        w->q = realloc(w->q, w->capq * sizeof *w->q);
        if (!w->q)
            abort();
    }
    w->q[w->nq++] = *m;
}

/* Sends data (taken) to every subscriber, each after its own delay, some twice. */
static void publish(world *w, sim_msg m, uint8_t *data, size_t len, int64_t after)
{
    for (int s = 0; s < NSUB; s++) {
        int copies = sim_chance(&w->rng, DUP_PPM) ? 2 : 1;
        for (int c = 0; c < copies; c++) {
            m.sub = s;
            m.duplicate = c > 0;
            m.at = w->now + after + sim_range(&w->rng, 1, DELAY_MAX) +
                   (c ? sim_range(&w->rng, 0, DELAY_MAX) : 0);
            m.data = malloc(len);
            if (!m.data)
                abort();
            memcpy(m.data, data, len);
            m.len = len;
            enqueue(w, &m);
            w->f.duplicates += c > 0;
        }
    }
    free(data);
}

static void send_statement(world *w, ibp_signer *by, const ibp_epoch_statement *s,
                           enum origin origin, int rep, int64_t after)
{
    uint8_t *data = NULL;
    size_t len = 0;
    ibp_err err;
    if (ibp_certificate_statement_seal(by, s, T0_MS + w->now * 100, &data, &len, NULL, &err) !=
        IBP_OK)
        fail(w, "sealing a statement: %s", err.msg);
    sim_msg m = {.origin = origin, .rep = rep, .epoch = s->epoch};
    if (origin == HONEST || origin == HONEST_AGAIN)
        w->f.honest_sent++;
    else
        w->f.forged_statements++;
    publish(w, m, data, len, after);
}

static void send_snapshot(world *w, ibp_signer *by, const uint8_t *payload, size_t plen, uint64_t e,
                          enum origin origin, int rep)
{
    uint8_t *data = NULL;
    size_t len = 0;
    ibp_err err;
    if (ibp_signer_seal_bytes(by, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT, payload,
                              plen, T0_MS + w->now * 100, &data, &len, NULL, &err) != IBP_OK)
        fail(w, "sealing a snapshot: %s", err.msg);
    sim_msg m = {
        .snapshot = true, .origin = origin, .rep = rep, .epoch = e, .stream_seq = ++w->stream_seq};
    if (origin == HONEST)
        w->f.honest_sent++;
    else
        w->f.forged_snapshots++;
    publish(w, m, data, len, 0);
}

/* ---- the subscriber (official_subscriber.c, without NATS) --------------------- */

/* Whether the certificate the subscriber would keep with its cache verifies
 * again from the roster alone, signatures included (ibp_cache_certificate_check). */
static bool certificate_verifies(world *w, const ibp__certify_pending *p, const uint8_t *bytes,
                                 size_t len)
{
    ibp_certificate_blob b;
    ibp_certificate_result r;
    if (!bytes || ibp_certificate_decode(bytes, len, &b) != IBP_OK)
        return false;
    ibp_certificate_claim claim = p->claim;
    claim.have_prev = false;
    bool ok =
        b.epoch == p->epoch &&
        ibp_certificate_verify(w->roster, w->quorum, &claim, (const uint8_t *const *)b.statements,
                               b.lens, b.n, &r) == IBP_OK &&
        r.certified;
    ibp_certificate_blob_free(&b);
    return ok;
}

/* try_certify: applies the held snapshot of the highest epoch a quorum certifies. */
static void try_certify(world *w, int si)
{
    subscriber *s = &w->sub[si];
    uint64_t have = s->applied;
    ibp_certificate_result r;
    uint8_t *bytes = NULL;
    size_t len = 0;
    int k = ibp__certify_find(&s->cert, have, have > 0 && s->digest_epoch == have, s->digest, &r,
                              &bytes, &len);
    if (k < 0) {
        free(bytes);
        return;
    }
    ibp__certify_pending *p = &s->cert.pending[k];
    uint64_t e = p->epoch;
    const Ibp__V1__OfficialSnapshot *snap = (const Ibp__V1__OfficialSnapshot *)p->vm.payload;
    bool honest = e <= w->epoch &&
                  memcmp(snap->state_digest.data, w->hdigest[e], IBP_CERT_DIGEST_BYTES) == 0 &&
                  memcmp(p->claim.snapshot_hash, w->hhash[e], IBP_CERT_DIGEST_BYTES) == 0 &&
                  p->vm.envelope->payload.len == w->hlen[e] &&
                  memcmp(p->vm.envelope->payload.data, w->hpayload[e], w->hlen[e]) == 0;
    if (!honest) {
        w->f.forged_applied++;
        fail(w,
             "subscriber %d applies a forged epoch %llu (signer %s, %zu signers; honest epoch "
             "%llu)",
             si, (unsigned long long)e, p->signer, r.signers, (unsigned long long)w->epoch);
    }
    CHECK(w, e > have, "subscriber %d applies epoch %llu over %llu", si, (unsigned long long)e,
          (unsigned long long)have);
    CHECK(w, r.certified && r.signers >= w->quorum, "subscriber %d: epoch %llu with %zu signers",
          si, (unsigned long long)e, r.signers);
    CHECK(w, certificate_verifies(w, p, bytes, len),
          "subscriber %d: the certificate of epoch %llu does not verify again", si,
          (unsigned long long)e);
    free(bytes);
    /* apply_verified, reduced to what the store keeps. */
    s->applied = e;
    s->digest_epoch = e;
    memcpy(s->digest, snap->state_digest.data, IBP_CERT_DIGEST_BYTES);
    for (uint64_t x = have + 1; x <= e; x++)
        if (s->reached[x] < 0)
            s->reached[x] = w->now;
    w->f.skipped_epochs += e - have - 1;
    s->last_apply_at = w->now;
    w->f.applies++;
    trace_add(w, ((uint64_t)si << 56) ^ ((uint64_t)w->now << 20) ^ e);
    size_t gone = ibp__certify_forget_upto(&s->cert, e);
    w->f.forged_refused += gone ? gone - 1 : 0;
}

/* handle_msg, handle_snapshot and hold for a snapshot. */
static void on_snapshot(world *w, int si, const sim_msg *m)
{
    subscriber *s = &w->sub[si];
    ibp_verified vm = {0};
    ibp_err err;
    if (ibp_verifier_check_stateless(s->verifier, m->data, m->len, &vm, &err) != IBP_OK ||
        vm.envelope->type != IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT)
        fail(w, "a snapshot of %s signed by a consensus key does not verify",
             m->origin == HONEST ? "an honest replica" : "a byzantine replica");
    const Ibp__V1__OfficialSnapshot *snap = (const Ibp__V1__OfficialSnapshot *)vm.payload;
    if (m->origin == HONEST && snap->epoch > s->newest_honest_snapshot)
        s->newest_honest_snapshot = snap->epoch;
    bool held_already = false;
    for (size_t i = 0; i < s->cert.npending; i++)
        held_already |= s->cert.pending[i].stream_seq == m->stream_seq;
    if (snap->epoch <= s->applied || snap->state_digest.len != IBP_CERT_DIGEST_BYTES ||
        held_already) {
        ibp_verified_clear(&vm);
        return;
    }
    ibp__certify_pending p;
    memset(&p, 0, sizeof p);
    p.epoch = snap->epoch;
    p.stream_seq = m->stream_seq;
    p.claim.epoch = snap->epoch;
    p.claim.local_seq = snap->local_seq;
    memcpy(p.claim.state_digest, snap->state_digest.data, IBP_CERT_DIGEST_BYTES);
    ibp_certificate_snapshot_hash(vm.envelope->payload.data, vm.envelope->payload.len,
                                  p.claim.snapshot_hash);
    snprintf(p.signer, sizeof p.signer, "%s", vm.envelope->signer);
    p.vm = vm;
    memset(&vm, 0, sizeof vm);
    bool evicted = false;
    ibp__certify_add_snapshot(&s->cert, &p, &evicted);
    w->f.snapshots_evicted += evicted;
    try_certify(w, si);
}

/* drain_statements for one statement. */
static void on_statement(world *w, int si, const sim_msg *m)
{
    subscriber *s = &w->sub[si];
    uint64_t have = s->applied;
    bool kept = ibp__certify_add_statement(&s->cert, m->data, m->len, have);
    switch (m->origin) {
    case HONEST:
        /* The first copy of an honest statement above the store is kept,
         * whatever the byzantine keys sent before it. */
        CHECK(w, kept || m->duplicate || m->epoch <= have || s->stmt_seen[m->rep][m->epoch],
              "subscriber %d refused %s's statement of epoch %llu", si, w->rep[m->rep].id,
              (unsigned long long)m->epoch);
        if (m->epoch <= MAX_EPOCHS)
            s->stmt_seen[m->rep][m->epoch] = true;
        break;
    case HONEST_AGAIN:
        CHECK(w, !kept || !s->stmt_seen[m->rep][m->epoch],
              "subscriber %d kept an honest statement twice", si);
        if (m->epoch <= MAX_EPOCHS)
            s->stmt_seen[m->rep][m->epoch] = true;
        break;
    case BYZANTINE:
        w->f.forged_kept += kept;
        break;
    case IMPOSTOR:
    case OUTSIDER:
    case STRANGER:
        CHECK(w, !kept, "subscriber %d kept a statement of %s", si,
              m->origin == IMPOSTOR   ? "a byzantine key in an honest name"
              : m->origin == OUTSIDER ? "a dns node"
                                      : "an unknown key");
        break;
    }
    if (kept && s->cert.npending)
        try_certify(w, si);
}

/* ---- the replicas -------------------------------------------------------------- */

static int honest_up(const world *w)
{
    int n = 0;
    for (int i = 0; i < w->n; i++)
        n += !w->rep[i].byzantine && w->rep[i].up;
    return n;
}

static void honest_signs(world *w, int i, uint64_t e, int64_t after)
{
    ibp_epoch_statement s = honest_statement(w, e);
    send_statement(w, w->rep[i].signer, &s, HONEST, i, after);
    if (sim_chance(&w->rng, 50000)) /* sealed again (a restart): same statement, new envelope */
        send_statement(w, w->rep[i].signer, &s, HONEST_AGAIN, i, after + 1);
}

/* The honest replicas compute the next epoch. */
static void next_epoch(world *w)
{
    uint64_t e = ++w->epoch;
    honest_epoch(w, e);
    w->made_at[e] = w->now;
    w->quorum_signed[e] = (size_t)honest_up(w) >= w->quorum;
    if (w->quorum_signed[e])
        w->last_quorum_epoch = e;
    int up[MAX_REP], nup = 0;
    for (int i = 0; i < w->n; i++)
        if (!w->rep[i].byzantine && w->rep[i].up)
            up[nup++] = i;
    int pub = up[sim_below(&w->rng, (uint64_t)nup)];
    send_snapshot(w, w->rep[pub].signer, w->hpayload[e], w->hlen[e], e, HONEST, pub);
    for (int k = 0; k < nup; k++)
        honest_signs(w, up[k], e, sim_range(&w->rng, 0, SIGN_JITTER));
}

/* A statement of anything: c picks what. */
static ibp_epoch_statement junk(world *w, int c)
{
    uint64_t cur = w->epoch;
    ibp_epoch_statement s;
    memset(&s, 0, sizeof s);
    random_bytes(w, s.state_digest, sizeof s.state_digest);
    random_bytes(w, s.prev_digest, sizeof s.prev_digest);
    random_bytes(w, s.snapshot_hash, sizeof s.snapshot_hash);
    s.local_seq = sim_next(&w->rng) % 100000;
    switch (c) {
    case 0: /* random contents for the current or next epoch */
        s.epoch = cur + sim_below(&w->rng, 2);
        break;
    case 1: /* a future epoch, near or far */
        s.epoch = cur + (sim_chance(&w->rng, 500000) ? (uint64_t)sim_range(&w->rng, 2, 1000)
                                                     : (1ULL << 40) + sim_below(&w->rng, 1 << 20));
        break;
    case 2: /* the honest statement with another previous digest */
    case 3: /* ... or another LOCAL position */
        if (cur == 0) {
            s.epoch = 1;
            break;
        }
        s = honest_statement(w, cur);
        if (c == 2)
            random_bytes(w, s.prev_digest, sizeof s.prev_digest);
        else
            s.local_seq += 1 + sim_below(&w->rng, 5);
        break;
    }
    if (s.epoch == 0)
        s.epoch = 1;
    return s;
}

/* What a byzantine replica does in one step. */
static void byzantine_step(world *w, int i)
{
    replica *r = &w->rep[i];
    uint64_t cur = w->epoch;
    if (w->now == EPOCH_BURST_AT && i == w->n - 1) {
        /* More statements about the epoch after next than a certificate may
         * carry (IBP_CERT_STATEMENTS_MAX), all there before the honest ones:
         * held all, they would crowd those out of the verifier's judgement. */
        for (size_t k = 0; k < IBP_CERT_STATEMENTS_MAX + 44; k++) {
            ibp_epoch_statement s = junk(w, 0);
            s.epoch = cur + 2;
            send_statement(w, r->signer, &s, BYZANTINE, -1, 0);
        }
    }
    if (w->now == BURST_AT && i == w->n - 1) {
        /* Twice a signer's share of distinct future epochs at once: were the
         * store not shared out by signer, the honest statements of the
         * epochs in flight (the lowest held) would be the ones to go. */
        size_t burst = 2 * (IBP__CERTIFY_STATEMENTS_MAX / (size_t)w->n);
        for (size_t k = 0; k < burst; k++) {
            ibp_epoch_statement s = junk(w, 0);
            s.epoch = cur + 2 + k;
            send_statement(w, r->signer, &s, BYZANTINE, -1, 0);
        }
    }
    int flood = (int)sim_range(&w->rng, 0, 8);
    for (int k = 0; k < flood; k++) {
        int c = (int)sim_below(&w->rng, 8);
        ibp_epoch_statement s;
        if (c < 4) {
            s = junk(w, c);
            send_statement(w, r->signer, &s, BYZANTINE, -1, 0);
            continue;
        }
        /* Vouching for a forged snapshot (c 4, 5) or, under names that
         * would make a quorum with the honest ones up, for the honest epoch
         * (c 6, 7: during an outage that alone would move subscribers). */
        uint64_t e = cur + sim_below(&w->rng, 3);
        if (e == 0)
            e = 1;
        if (c < 6 || e > cur) {
            size_t plen = 0;
            free(forged_snapshot(w, e, (uint32_t)sim_below(&w->rng, 6), &plen, &s));
        } else {
            s = honest_statement(w, e);
        }
        if (c == 4 || c == 5) {
            send_statement(w, r->signer, &s, BYZANTINE, -1, 0);
        } else if (c == 6) {
            int victim;
            do
                victim = (int)sim_below(&w->rng, (uint64_t)w->n);
            while (w->rep[victim].byzantine);
            send_statement(w, r->impostor[victim], &s, IMPOSTOR, -1, 0);
        } else {
            bool dns = sim_chance(&w->rng, 500000);
            send_statement(w, dns ? w->outsider : w->stranger, &s, dns ? OUTSIDER : STRANGER, -1,
                           0);
        }
    }
    if (!sim_chance(&w->rng, 500000))
        return;
    /* Forged snapshots. */
    size_t plen = 0;
    ibp_epoch_statement vouch;
    uint8_t *p;
    switch (sim_below(&w->rng, 3)) {
    case 0: { /* a future epoch */
        uint64_t e = w->sub[0].applied + (uint64_t)sim_range(&w->rng, 2, 50);
        p = forged_snapshot(w, e, (uint32_t)sim_below(&w->rng, 6), &plen, &vouch);
        send_snapshot(w, r->signer, p, plen, e, BYZANTINE, -1);
        free(p);
        break;
    }
    case 1: { /* another state of the current or next epoch */
        uint64_t e = cur + sim_below(&w->rng, 2);
        if (e == 0)
            e = 1;
        p = forged_snapshot(w, e, (uint32_t)sim_below(&w->rng, 6), &plen, &vouch);
        send_snapshot(w, r->signer, p, plen, e, BYZANTINE, -1);
        free(p);
        break;
    }
    default: { /* a chain of forged epochs from what the subscribers hold */
        uint64_t from = w->sub[sim_below(&w->rng, NSUB)].applied + 1;
        uint32_t v = (uint32_t)sim_below(&w->rng, 6);
        int len = (int)sim_range(&w->rng, 2, 10);
        for (int k = 0; k < len; k++) {
            p = forged_snapshot(w, from + (uint64_t)k, v, &plen, &vouch);
            send_snapshot(w, r->signer, p, plen, from + (uint64_t)k, BYZANTINE, -1);
            free(p);
        }
        break;
    }
    }
}

/* ---- checks after each step ------------------------------------------------------ */

static void check_step(world *w)
{
    for (int si = 0; si < NSUB; si++) {
        subscriber *s = &w->sub[si];
        /* Every honest statement delivered above the store is still held. */
        for (int i = 0; i < w->n; i++) {
            if (w->rep[i].byzantine)
                continue;
            size_t want = 0, idx = 0;
            for (uint64_t e = s->applied + 1; e <= w->epoch; e++)
                want += s->stmt_seen[i][e];
            while (ibp_roster_at(w->roster, idx) != ibp_roster_find(w->roster, w->rep[i].id))
                idx++;
            size_t have = s->cert.held ? s->cert.held[idx] : 0;
            CHECK(w, have == want, "subscriber %d holds %zu statements of %s, %zu delivered", si,
                  have, w->rep[i].id, want);
        }
        /* And the newest honest snapshot delivered above it. */
        uint64_t e = s->newest_honest_snapshot;
        if (e > s->applied) {
            bool held = false;
            for (size_t k = 0; k < s->cert.npending && !held; k++)
                held = s->cert.pending[k].epoch == e &&
                       memcmp(s->cert.pending[k].claim.snapshot_hash, w->hhash[e],
                              IBP_CERT_DIGEST_BYTES) == 0;
            CHECK(w, held, "subscriber %d lost the honest snapshot of epoch %llu", si,
                  (unsigned long long)e);
        }
        /* Liveness while a quorum signs. */
        for (uint64_t x = 1; x <= w->epoch; x++) {
            if (!w->quorum_signed[x] || s->reached[x] >= 0)
                continue;
            CHECK(w, w->now - w->made_at[x] <= LIVENESS_BOUND,
                  "subscriber %d still holds epoch %llu, %lld steps after epoch %llu was "
                  "computed by a quorum",
                  si, (unsigned long long)s->applied, (long long)(w->now - w->made_at[x]),
                  (unsigned long long)x);
        }
        /* The outage: never past what a quorum signed, and still once settled. */
        if (w->outage) {
            CHECK(w, s->applied <= w->last_quorum_epoch,
                  "subscriber %d went to epoch %llu during the outage (a quorum signed up to "
                  "%llu)",
                  si, (unsigned long long)s->applied, (unsigned long long)w->last_quorum_epoch);
            if (w->now == OUTAGE_AT + LIVENESS_BOUND)
                s->frozen = s->applied;
            if (w->now >= OUTAGE_AT + LIVENESS_BOUND)
                CHECK(w, s->applied == s->frozen && s->applied == w->last_quorum_epoch,
                      "subscriber %d moved from epoch %llu to %llu during the outage", si,
                      (unsigned long long)s->frozen, (unsigned long long)s->applied);
        }
    }
}

/* Honest replicas go down (keeping one short of a quorum up) or come back. */
static void outage(world *w, bool begin)
{
    if (begin) {
        int down = honest_up(w) - (int)w->quorum + 1;
        for (int i = 0; i < w->n && down > 0; i++)
            if (!w->rep[i].byzantine) {
                w->rep[i].up = false;
                down--;
            }
        w->outage = true;
        return;
    }
    w->outage = false;
    w->return_epoch = w->epoch;
    w->f.stall_epochs = w->epoch - w->last_quorum_epoch;
    uint64_t from = w->epoch > BEHIND_MAX ? w->epoch - BEHIND_MAX + 1 : 1;
    for (int i = 0; i < w->n; i++) {
        if (w->rep[i].byzantine || w->rep[i].up)
            continue;
        w->rep[i].up = true;
        for (uint64_t e = from; e <= w->epoch; e++)
            honest_signs(w, i, e, sim_range(&w->rng, 0, SIGN_JITTER));
    }
}

/* ---- one run ----------------------------------------------------------------------- */

static ibp_signer *new_signer(world *w, const char *id, const ibp_key *key, const char *file)
{
    char path[4200];
    ibp_err err;
    ibp_signer *s = NULL;
    snprintf(path, sizeof path, "%s/%s", w->dir, file);
    if (ibp_signer_new(id, key, path, &s, &err) != IBP_OK)
        fail(w, "signer %s: %s", id, err.msg);
    return s;
}

static void seeded_key(world *w, ibp_key *key)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    random_bytes(w, seed, sizeof seed);
    crypto_sign_seed_keypair(key->pk, key->sk, seed);
}

static void world_init(world *w, uint64_t seed, int n, int b)
{
    memset(w, 0, sizeof *w);
    w->seed = seed;
    w->n = n;
    sim_rng_seed(&w->rng, seed ^ ((uint64_t)n << 32));
    ibp_err err;
    if (ibp_testenv_mkdtemp(w->dir, sizeof w->dir) != 0 || ibp_roster_new(&w->roster) != IBP_OK)
        fail(w, "setting up");
    for (int i = 0; i < n; i++) {
        replica *r = &w->rep[i];
        snprintf(r->id, sizeof r->id, "rep%d", i + 1);
        r->byzantine = i >= n - b;
        r->up = true;
        seeded_key(w, &r->key);
        if (ibp_roster_add(w->roster, r->id, r->key.pk, IBP_ROLE_CONSENSUS, &err) != IBP_OK)
            fail(w, "roster: %s", err.msg);
        r->signer = new_signer(w, r->id, &r->key, r->id);
    }
    seeded_key(w, &w->outsider_key);
    seeded_key(w, &w->stranger_key);
    if (ibp_roster_add(w->roster, "dns1", w->outsider_key.pk, IBP_ROLE_DNS, &err) != IBP_OK)
        fail(w, "roster: %s", err.msg);
    w->outsider = new_signer(w, "dns1", &w->outsider_key, "dns1");
    w->stranger = new_signer(w, "rep9", &w->stranger_key, "rep9");
    for (int i = 0; i < n; i++) {
        if (!w->rep[i].byzantine)
            continue;
        for (int v = 0; v < n; v++) {
            char file[64];
            snprintf(file, sizeof file, "%s-as-%s", w->rep[i].id, w->rep[v].id);
            if (!w->rep[v].byzantine)
                w->rep[i].impostor[v] = new_signer(w, w->rep[v].id, &w->rep[i].key, file);
        }
    }
    bool single = false;
    if (ibp_certificate_quorum(w->roster, 0, &w->quorum, &single, &err) != IBP_OK)
        fail(w, "quorum: %s", err.msg);
    ibp_verifier_opts vo;
    ibp_verifier_opts_init(&vo);
    for (int si = 0; si < NSUB; si++) {
        subscriber *s = &w->sub[si];
        ibp__certify_init(&s->cert, w->roster, w->quorum);
        if (ibp_verifier_new(w->roster, &vo, &s->verifier) != IBP_OK)
            fail(w, "verifier");
        for (int e = 0; e <= MAX_EPOCHS; e++)
            s->reached[e] = -1;
    }
}

static void world_free(world *w)
{
    for (int si = 0; si < NSUB; si++) {
        ibp__certify_clear(&w->sub[si].cert);
        ibp_verifier_free(w->sub[si].verifier);
    }
    for (size_t i = 0; i < w->nq; i++)
        free(w->q[i].data);
    free(w->q);
    for (int i = 0; i < w->n; i++) {
        ibp_signer_free(w->rep[i].signer);
        for (int v = 0; v < w->n; v++)
            ibp_signer_free(w->rep[i].impostor[v]);
        ibp_key_wipe(&w->rep[i].key);
    }
    ibp_signer_free(w->outsider);
    ibp_signer_free(w->stranger);
    for (int e = 0; e <= MAX_EPOCHS; e++)
        free(w->hpayload[e]);
    ibp_roster_free(w->roster);
    ibp_testenv_rmtree(w->dir);
}

/* Delivers what is due now, in a random order. */
static void deliver_due(world *w)
{
    size_t ndue = 0;
    for (size_t i = 0; i < w->nq; i++)
        if (w->q[i].at <= w->now) {
            sim_msg t = w->q[ndue];
            w->q[ndue++] = w->q[i];
            w->q[i] = t;
        }
    for (size_t i = ndue; i > 1; i--) {
        size_t j = sim_below(&w->rng, i);
        sim_msg t = w->q[i - 1];
        w->q[i - 1] = w->q[j];
        w->q[j] = t;
    }
    for (size_t i = 0; i < ndue; i++) {
        sim_msg *m = &w->q[i];
        if (m->snapshot)
            on_snapshot(w, m->sub, m);
        else
            on_statement(w, m->sub, m);
        w->f.deliveries++;
        free(m->data);
        m->data = NULL;
    }
    if (ndue) {
        memmove(w->q, w->q + ndue, (w->nq - ndue) * sizeof *w->q);
        w->nq -= ndue;
    }
}

static uint64_t run(uint64_t seed, int n, int b, figures *total)
{
    world *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    world_init(w, seed, n, b);
    int64_t stall_from[NSUB];
    for (w->now = 1; w->now <= END; w->now++) {
        if (w->now == OUTAGE_AT)
            outage(w, true);
        if (w->now == OUTAGE_AT + OUTAGE_STEPS) {
            outage(w, false);
            for (int si = 0; si < NSUB; si++)
                stall_from[si] = w->sub[si].last_apply_at;
        }
        if (w->now < PRODUCE_END && w->now % EPOCH_EVERY == 0)
            next_epoch(w);
        if (w->now < PRODUCE_END)
            for (int i = 0; i < n; i++)
                if (w->rep[i].byzantine)
                    byzantine_step(w, i);
        deliver_due(w);
        check_step(w);
        if (w->now > OUTAGE_AT + OUTAGE_STEPS && w->return_epoch) {
            bool all = true;
            for (int si = 0; si < NSUB; si++)
                all &= w->sub[si].applied >= w->return_epoch;
            int64_t took = w->now - (OUTAGE_AT + OUTAGE_STEPS);
            if (all) {
                if (took > w->f.max_catchup)
                    w->f.max_catchup = took;
                for (int si = 0; si < NSUB; si++) {
                    int64_t stall = w->sub[si].reached[w->return_epoch] - stall_from[si];
                    if (stall > w->f.max_stall)
                        w->f.max_stall = stall;
                }
                w->return_epoch = 0;
            } else {
                CHECK(w, took <= CATCHUP_BOUND,
                      "subscribers not caught up with epoch %llu %lld steps after the replicas "
                      "came back",
                      (unsigned long long)w->return_epoch, (long long)took);
            }
        }
    }
    CHECK(w, w->nq == 0, "%zu messages still in flight at the end", w->nq);
    for (int si = 0; si < NSUB; si++) {
        CHECK(w, w->sub[si].applied == w->epoch, "subscriber %d ends on epoch %llu of %llu", si,
              (unsigned long long)w->sub[si].applied, (unsigned long long)w->epoch);
        for (uint64_t e = 1; e <= w->epoch; e++) {
            int64_t d = w->sub[si].reached[e] - w->made_at[e];
            if (w->quorum_signed[e] && d > w->f.max_delay)
                w->f.max_delay = d;
        }
    }
    w->f.epochs = w->epoch;
    w->f.steps = END;
    uint64_t trace = w->trace;
    figures *f = &w->f;
    total->runs++;
    total->epochs += f->epochs;
    total->steps += f->steps;
    total->honest_sent += f->honest_sent;
    total->forged_statements += f->forged_statements;
    total->forged_snapshots += f->forged_snapshots;
    total->deliveries += f->deliveries;
    total->duplicates += f->duplicates;
    total->forged_kept += f->forged_kept;
    total->forged_refused += f->forged_refused;
    total->snapshots_evicted += f->snapshots_evicted;
    total->applies += f->applies;
    total->forged_applied += f->forged_applied;
    total->skipped_epochs += f->skipped_epochs;
    if (f->max_delay > total->max_delay)
        total->max_delay = f->max_delay;
    if (f->max_stall > total->max_stall)
        total->max_stall = f->max_stall;
    if (f->max_catchup > total->max_catchup)
        total->max_catchup = f->max_catchup;
    if (f->stall_epochs > total->stall_epochs)
        total->stall_epochs = f->stall_epochs;
    world_free(w);
    free(w);
    return trace;
}

/* ---- main ------------------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 10) : dflt;
}

static void print_figures(const char *what, const figures *f)
{
    printf("%s: %llu runs, %llu epochs, %llu steps; sent %llu honest messages, %llu forged "
           "statements, %llu forged snapshots; %llu deliveries (%llu duplicates); applied %llu "
           "times (%llu epochs skipped over), forged applied %llu; byzantine statements kept "
           "%llu; held snapshots dropped %llu (full) + %llu (uncertified when a newer applied); "
           "max certification delay %lld steps (bound %d); outage: stalled %llu epochs, max "
           "stall %lld steps, caught up in %lld steps (bound %d); %.2f s\n",
           what, (unsigned long long)f->runs, (unsigned long long)f->epochs,
           (unsigned long long)f->steps, (unsigned long long)f->honest_sent,
           (unsigned long long)f->forged_statements, (unsigned long long)f->forged_snapshots,
           (unsigned long long)f->deliveries, (unsigned long long)f->duplicates,
           (unsigned long long)f->applies, (unsigned long long)f->skipped_epochs,
           (unsigned long long)f->forged_applied, (unsigned long long)f->forged_kept,
           (unsigned long long)f->snapshots_evicted, (unsigned long long)f->forged_refused,
           (long long)f->max_delay, LIVENESS_BOUND, (unsigned long long)f->stall_epochs,
           (long long)f->max_stall, (long long)f->max_catchup, CATCHUP_BOUND, f->secs);
}

int main(void)
{
    static const int sizes[][2] = {{3, 1}, {5, 2}};
    ibp_log_set_level(IBP_LOG_OFF);
    if (ibp_crypto_init() != IBP_OK) {
        fprintf(stderr, "sim.byzantine: libsodium does not start\n");
        return 1;
    }
    const char *one = getenv("IBP_SIM_SEED");
    uint64_t base = one && *one ? strtoull(one, NULL, 10) : env_u64("IBP_SIM_BASE", 1);
    uint64_t nseeds = one && *one ? 1 : env_u64("IBP_SIM_SEEDS", 3);
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        int n = sizes[z][0], b = sizes[z][1];
        char what[96];
        snprintf(what, sizeof what, "%d replicas, %d byzantine", n, b);
        g_config = what;
        figures total;
        memset(&total, 0, sizeof total);
        double t0 = now_s();
        for (uint64_t seed = base; seed < base + nseeds; seed++) {
            uint64_t trace = run(seed, n, b, &total);
            if (seed == base) { /* the model itself must replay exactly */
                figures again;
                memset(&again, 0, sizeof again);
                if (run(seed, n, b, &again) != trace) {
                    fprintf(stderr,
                            "sim.byzantine: FAIL %s seed=%llu does not replay identically\n", what,
                            (unsigned long long)seed);
                    return 1;
                }
            }
        }
        total.secs = now_s() - t0;
        char head[160];
        snprintf(head, sizeof head, "sim.byzantine: %s, seeds %llu..%llu ok", what,
                 (unsigned long long)base, (unsigned long long)(base + nseeds - 1));
        print_figures(head, &total);
    }
    return 0;
}
