/*
 * Unit tests: what the official subscriber holds while it waits for quorum
 * certificates (node/dns/official_certify.h), against a consensus key that
 * signs anything: only consensus nodes' statements with a valid signature
 * are kept; a flood of statements or of forged snapshots from one key pushes
 * out only that key's own; the honest epoch is still certified after it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/certificate.h"
#include "ibp/log.h"
#include "official_certify.h"
#include "test_util.h"

#define NREP 3
#define T0_MS 1700000000000

struct fixture {
    char *dir;
    ibp_key rep_key[NREP], dns_key, stranger_key;
    ibp_roster *roster;
    ibp_signer *rep[NREP], *dns, *stranger, *outsider;
    ibp_verifier *verifier;
    ibp__certify c;
};

static ibp_signer *signer(struct fixture *f, const char *id, const ibp_key *key)
{
    char path[4200];
    ibp_err err;
    ibp_signer *s = NULL;
    test_path(path, sizeof path, f->dir, id);
    FILE *fp = fopen(path, "r");
    if (fp) { /* a second signer under a name used already: its own file */
        fclose(fp);
        strcat(path, ".2");
    }
    assert_int_equal(ibp_signer_new(id, key, path, &s, &err), IBP_OK);
    return s;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char id[16];
    ibp_err err;
    ibp_log_set_level(IBP_LOG_OFF);
    f->dir = test_tmpdir();
    assert_int_equal(ibp_roster_new(&f->roster), IBP_OK);
    for (int i = 0; i < NREP; i++) {
        snprintf(id, sizeof id, "rep%d", i + 1);
        assert_int_equal(ibp_key_generate(&f->rep_key[i]), IBP_OK);
        assert_int_equal(ibp_roster_add(f->roster, id, f->rep_key[i].pk, IBP_ROLE_CONSENSUS, &err),
                         IBP_OK);
        f->rep[i] = signer(f, id, &f->rep_key[i]);
    }
    assert_int_equal(ibp_key_generate(&f->dns_key), IBP_OK);
    assert_int_equal(ibp_roster_add(f->roster, "dns1", f->dns_key.pk, IBP_ROLE_DNS, &err), IBP_OK);
    f->dns = signer(f, "dns1", &f->dns_key);
    /* A key the roster does not know: under an honest replica's name, and its own. */
    assert_int_equal(ibp_key_generate(&f->stranger_key), IBP_OK);
    f->stranger = signer(f, "rep2", &f->stranger_key);
    f->outsider = signer(f, "rep9", &f->stranger_key);
    ibp_verifier_opts vo;
    ibp_verifier_opts_init(&vo);
    assert_int_equal(ibp_verifier_new(f->roster, &vo, &f->verifier), IBP_OK);
    ibp__certify_init(&f->c, f->roster, 2);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ibp__certify_clear(&f->c);
    ibp_verifier_free(f->verifier);
    for (int i = 0; i < NREP; i++)
        ibp_signer_free(f->rep[i]);
    ibp_signer_free(f->dns);
    ibp_signer_free(f->stranger);
    ibp_signer_free(f->outsider);
    ibp_roster_free(f->roster);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- the honest chain and forgeries ------------------------------------------ */

/* The honest state digest of epoch e (0: the empty state, all zero). */
static void digest(uint64_t e, uint8_t out[IBP_CERT_DIGEST_BYTES])
{
    memset(out, 0, IBP_CERT_DIGEST_BYTES);
    if (e)
        memset(out, (int)(0x40 + e % 64), IBP_CERT_DIGEST_BYTES);
}

/* The snapshot payload of epoch e: the honest one (forge 0) or another. */
static uint8_t *snapshot_payload(uint64_t e, uint32_t forge, size_t *len)
{
    Ibp__V1__OfficialSnapshot s = IBP__V1__OFFICIAL_SNAPSHOT__INIT;
    uint8_t d[IBP_CERT_DIGEST_BYTES];
    digest(e, d);
    if (forge)
        memcpy(d, &forge, sizeof forge);
    s.epoch = e;
    s.local_seq = 100 + e;
    s.applied_ms = T0_MS + (int64_t)e;
    s.state_digest.data = d;
    s.state_digest.len = sizeof d;
    *len = ibp__v1__official_snapshot__get_packed_size(&s);
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    ibp__v1__official_snapshot__pack(&s, buf);
    return buf;
}

/* What an honest replica states about epoch e. */
static ibp_epoch_statement honest(uint64_t e)
{
    ibp_epoch_statement s;
    memset(&s, 0, sizeof s);
    s.epoch = e;
    s.local_seq = 100 + e;
    digest(e, s.state_digest);
    digest(e - 1, s.prev_digest);
    size_t len = 0;
    uint8_t *p = snapshot_payload(e, 0, &len);
    ibp_certificate_snapshot_hash(p, len, s.snapshot_hash);
    free(p);
    return s;
}

/* Seals s with who and offers it to the store (stored epoch min_epoch). */
static bool offer(struct fixture *f, ibp_signer *who, const ibp_epoch_statement *s,
                  uint64_t min_epoch)
{
    uint8_t *data = NULL;
    size_t len = 0;
    ibp_err err;
    assert_int_equal(ibp_certificate_statement_seal(who, s, T0_MS, &data, &len, NULL, &err),
                     IBP_OK);
    bool kept = ibp__certify_add_statement(&f->c, data, len, min_epoch);
    free(data);
    return kept;
}

/* Holds the snapshot of epoch e (forge 0: the honest one) signed by who, as
 * the subscriber does: verified, its claim taken from the payload. */
static bool hold(struct fixture *f, ibp_signer *who, uint64_t e, uint32_t forge,
                 uint64_t stream_seq)
{
    size_t plen = 0, len = 0;
    uint8_t *payload = snapshot_payload(e, forge, &plen), *data = NULL;
    ibp_err err;
    assert_int_equal(ibp_signer_seal_bytes(who,
                                           IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT,
                                           payload, plen, T0_MS, &data, &len, NULL, &err),
                     IBP_OK);
    free(payload);
    ibp__certify_pending p;
    memset(&p, 0, sizeof p);
    assert_int_equal(ibp_verifier_check_stateless(f->verifier, data, len, &p.vm, &err), IBP_OK);
    free(data);
    const Ibp__V1__OfficialSnapshot *snap = (const Ibp__V1__OfficialSnapshot *)p.vm.payload;
    p.epoch = p.claim.epoch = snap->epoch;
    p.stream_seq = stream_seq;
    p.claim.local_seq = snap->local_seq;
    memcpy(p.claim.state_digest, snap->state_digest.data, IBP_CERT_DIGEST_BYTES);
    ibp_certificate_snapshot_hash(p.vm.envelope->payload.data, p.vm.envelope->payload.len,
                                  p.claim.snapshot_hash);
    snprintf(p.signer, sizeof p.signer, "%s", ibp_signer_id(who));
    bool evicted = false;
    ibp__certify_add_snapshot(&f->c, &p, &evicted);
    assert_null(p.vm.envelope); /* taken, or freed */
    return evicted;
}

static size_t roster_index(struct fixture *f, const char *id)
{
    for (size_t i = 0; i < ibp_roster_count(f->roster); i++)
        if (strcmp(ibp_roster_at(f->roster, i)->id, id) == 0)
            return i;
    fail_msg("%s is not in the roster", id);
    return 0;
}

/* Statements held from id (for epoch e, or any epoch with e 0); checks the
 * store's own count on the way. */
static size_t statements_of(struct fixture *f, const char *id, uint64_t e)
{
    size_t who = roster_index(f, id), n = 0, all = 0;
    for (size_t i = 0; i < f->c.nstmts; i++) {
        all += f->c.stmts[i].signer == who;
        n += f->c.stmts[i].signer == who && (!e || f->c.stmts[i].epoch == e);
    }
    assert_int_equal(f->c.held[who], all);
    return n;
}

/* Whether the honest snapshot of epoch e signed by id is held. */
static bool holds_honest(struct fixture *f, const char *id, uint64_t e)
{
    ibp_epoch_statement h = honest(e);
    for (size_t i = 0; i < f->c.npending; i++) {
        const ibp__certify_pending *p = &f->c.pending[i];
        if (p->epoch == e && strcmp(p->signer, id) == 0 &&
            memcmp(p->claim.state_digest, h.state_digest, IBP_CERT_DIGEST_BYTES) == 0 &&
            memcmp(p->claim.snapshot_hash, h.snapshot_hash, IBP_CERT_DIGEST_BYTES) == 0)
            return true;
    }
    return false;
}

/* Something a dishonest key states about epoch e: n picks the lie. */
static ibp_epoch_statement lie(uint64_t e, uint32_t n)
{
    ibp_epoch_statement s = honest(e);
    switch (n % 4) {
    case 0: /* another state */
        memcpy(s.state_digest, &n, sizeof n);
        break;
    case 1: /* another previous epoch */
        memcpy(s.prev_digest, &n, sizeof n);
        break;
    case 2: /* other snapshot bytes */
        memcpy(s.snapshot_hash, &n, sizeof n);
        break;
    default: /* another LOCAL position */
        s.local_seq += n;
        break;
    }
    return s;
}

/* ---- tests ------------------------------------------------------------------- */

static void test_only_consensus_statements_kept(void **state)
{
    struct fixture *f = *state;
    ibp_epoch_statement s = honest(3);
    uint8_t *data = NULL;
    size_t len = 0;
    ibp_err err;
    assert_false(offer(f, f->dns, &s, 0));      /* a dns node's */
    assert_false(offer(f, f->outsider, &s, 0)); /* a key the roster does not know */
    assert_false(offer(f, f->stranger, &s, 0)); /* rep2's name, another key */
    assert_false(offer(f, f->rep[0], &s, 3));   /* not above the applied epoch */
    assert_false(ibp__certify_add_statement(&f->c, (const uint8_t *)"not an envelope", 15, 0));
    /* A consensus node's envelope that is no statement. */
    uint8_t *payload = NULL;
    size_t plen = 0;
    assert_int_equal(ibp_certificate_statement_encode(&s, &payload, &plen), IBP_OK);
    assert_int_equal(ibp_signer_seal_bytes(f->rep[0], IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT,
                                           payload, plen, T0_MS, &data, &len, NULL, &err),
                     IBP_OK);
    assert_false(ibp__certify_add_statement(&f->c, data, len, 0));
    free(data);
    free(payload);
    assert_int_equal(f->c.nstmts, 0);

    assert_true(offer(f, f->rep[0], &s, 0));
    assert_false(offer(f, f->rep[0], &s, 0)); /* the same statement sealed again */
    assert_true(offer(f, f->rep[1], &s, 0));
    assert_int_equal(f->c.nstmts, 2);
    assert_int_equal(statements_of(f, "rep1", 0), 1);
    assert_int_equal(statements_of(f, "rep2", 0), 1);
    assert_int_equal(statements_of(f, "dns1", 0), 0);
    /* A tampered copy of a kept envelope is refused by its signature. */
    assert_int_equal(ibp_certificate_statement_seal(f->rep[2], &s, T0_MS, &data, &len, NULL, &err),
                     IBP_OK);
    data[len - 1] ^= 1;
    assert_false(ibp__certify_add_statement(&f->c, data, len, 0));
    free(data);
    assert_int_equal(f->c.nstmts, 2);
}

/* One signer's share: it gives up its own lowest epoch, never another's. */
static void test_share_evicts_own_lowest(void **state)
{
    struct fixture *f = *state;
    size_t share = IBP__CERTIFY_STATEMENTS_MAX / NREP;
    assert_int_equal(f->c.share, share);
    ibp_epoch_statement h = honest(2);
    assert_true(offer(f, f->rep[0], &h, 0));
    for (uint64_t e = 1; e <= share; e++) {
        ibp_epoch_statement s = lie(e, 0);
        assert_true(offer(f, f->rep[2], &s, 0));
    }
    assert_int_equal(statements_of(f, "rep3", 0), share);
    ibp_epoch_statement s = lie(1000, 0);
    assert_true(offer(f, f->rep[2], &s, 0)); /* epoch 1 goes */
    assert_int_equal(statements_of(f, "rep3", 1), 0);
    assert_int_equal(statements_of(f, "rep3", 0), share);
    s = lie(1, 0);
    assert_false(offer(f, f->rep[2], &s, 0)); /* below all its share holds */
    assert_int_equal(statements_of(f, "rep1", 2), 1);
    assert_int_equal(ibp__certify_forget_upto(&f->c, 100), 0);
    assert_int_equal(statements_of(f, "rep1", 0), 0);
    assert_int_equal(statements_of(f, "rep3", 0), share - 99);
}

/*
 * rep3 floods statements (far epochs, the honest epochs with every kind of
 * lie, many of one epoch) around the honest replicas' statements of epochs
 * 1-5; every honest one stays, and epoch 5 is certified.
 */
static void test_statement_flood(void **state)
{
    struct fixture *f = *state;
    uint32_t x = 12345;
    for (uint64_t e = 1; e <= 5; e++) {
        ibp_epoch_statement h = honest(e);
        assert_true(offer(f, f->rep[0], &h, 0));
        for (uint32_t i = 0; i < 300; i++) {
            x = x * 1103515245u + 12345u;
            uint64_t epoch = i % 3 == 0 ? 6 + x % 1000000 : e;
            ibp_epoch_statement s = lie(epoch, x);
            offer(f, f->rep[2], &s, 0);
        }
        assert_true(offer(f, f->rep[1], &h, 0));
    }
    for (uint64_t e = 1; e <= 5; e++) {
        assert_int_equal(statements_of(f, "rep1", e), 1);
        assert_int_equal(statements_of(f, "rep2", e), 1);
        assert_true(statements_of(f, "rep3", e) <= IBP__CERTIFY_SIGNER_EPOCH_MAX);
    }
    assert_int_equal(statements_of(f, "rep3", 0), f->c.share);
    assert_true(f->c.nstmts <= IBP__CERTIFY_STATEMENTS_MAX);

    hold(f, f->rep[0], 5, 0, 1);
    ibp_certificate_result r;
    uint8_t *cert = NULL;
    size_t cert_len = 0;
    uint8_t prev[IBP_CERT_DIGEST_BYTES];
    digest(4, prev);
    int k = ibp__certify_find(&f->c, 4, true, prev, &r, &cert, &cert_len);
    assert_int_equal(k, 0);
    assert_true(r.certified);
    assert_int_equal(r.signers, 2);
    assert_non_null(cert);
    free(cert);
}

/*
 * rep3 floods forged snapshots (a chain from the applied epoch on, other
 * states of the honest epochs) while the honest ones of epochs 6 and 7 are
 * held: they stay, and epoch 7 is certified.
 */
static void test_snapshot_flood(void **state)
{
    struct fixture *f = *state;
    uint64_t seq = 0;
    assert_false(hold(f, f->rep[0], 6, 0, ++seq));
    size_t evicted = 0;
    for (uint64_t e = 6; e < 40; e++) {
        evicted += hold(f, f->rep[2], e, 7, ++seq);                   /* the forged chain */
        evicted += hold(f, f->rep[2], 6 + e % 2, (uint32_t)e, ++seq); /* other states */
        if (e == 20) /* a forged one makes room for it */
            assert_true(hold(f, f->rep[1], 7, 0, ++seq));
    }
    assert_int_equal(f->c.npending, IBP__CERTIFY_PENDING_MAX);
    assert_true(evicted > 50);
    assert_true(holds_honest(f, "rep1", 6));
    assert_true(holds_honest(f, "rep2", 7));
    for (size_t i = 1; i < f->c.npending; i++)
        assert_true(f->c.pending[i - 1].epoch <= f->c.pending[i].epoch);

    /* rep3 vouches for its forgeries; the honest replicas for epoch 7. */
    for (uint64_t e = 6; e < 40; e++) {
        ibp_epoch_statement s = lie(e, (uint32_t)e);
        offer(f, f->rep[2], &s, 5);
    }
    ibp_epoch_statement h = honest(7);
    assert_true(offer(f, f->rep[0], &h, 5));
    ibp_certificate_result r;
    int k = ibp__certify_find(&f->c, 5, false, NULL, &r, NULL, NULL);
    assert_false(r.certified); /* one honest statement is no quorum */
    assert_int_equal(k, -1);
    assert_true(offer(f, f->rep[1], &h, 5));
    k = ibp__certify_find(&f->c, 5, false, NULL, &r, NULL, NULL);
    assert_true(k >= 0);
    assert_true(r.certified);
    assert_int_equal(f->c.pending[k].epoch, 7);
    assert_string_equal(f->c.pending[k].signer, "rep2");
    assert_true(holds_honest(f, "rep2", 7));
    /* Applied: what is not above 7 goes (epoch 6 of rep1, rep3's up to 7). */
    assert_true(ibp__certify_forget_upto(&f->c, 7) >= 2);
    for (size_t i = 0; i < f->c.npending; i++)
        assert_string_equal(f->c.pending[i].signer, "rep3");
    assert_int_equal(statements_of(f, "rep1", 0), 0);
}

/* A signer that holds as many as any other gives up its own lowest. */
static void test_snapshot_ties(void **state)
{
    struct fixture *f = *state;
    uint64_t seq = 0;
    for (uint64_t e = 1; e <= 4; e++) {
        assert_false(hold(f, f->rep[0], e, 0, ++seq));
        assert_false(hold(f, f->rep[2], e + 10, 9, ++seq));
    }
    assert_true(hold(f, f->rep[0], 5, 0, ++seq)); /* rep1: 5 against 4, its epoch 1 goes */
    assert_false(holds_honest(f, "rep1", 1));
    assert_true(holds_honest(f, "rep1", 2));
    assert_true(hold(f, f->rep[2], 3, 9, ++seq)); /* rep3 5 against 4: not above its own */
    assert_true(hold(f, f->rep[1], 9, 0, ++seq)); /* a tie of 4 and 4: rep1's lowest */
    assert_false(holds_honest(f, "rep1", 2));
    assert_true(holds_honest(f, "rep2", 9));
    assert_int_equal(f->c.npending, IBP__CERTIFY_PENDING_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_only_consensus_statements_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_share_evicts_own_lowest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statement_flood, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_flood, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_ties, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
