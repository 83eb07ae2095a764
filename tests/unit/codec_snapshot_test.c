/*
 * Unit tests: the OfficialSnapshot codec (proto/codec_snapshot.c): a plain
 * snapshot packs in the canonical key order and decodes back equal, split
 * endpoint URLs included; packing is deterministic whatever the input order;
 * and every receive check refuses a malformed payload whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ibp/codec_snapshot.h"
#include "ibp/envelope.h"
#include "ibp/ibp.pb-c.h"

static const ibp_codec_snapshot_entry entries[] = {
    {{IBP_CHECK_SITE, "ping", "Stake Plus", "", "", false}, IBP_RESULT_UP, 10, "", ""},
    {{IBP_CHECK_ENDPOINT, "wss", "Amforc", "rpc.example.net", "wss://rpc.example.net/dot", true},
     IBP_RESULT_DOWN,
     20,
     "timeout",
     "{\"ms\":3}"},
    {{IBP_CHECK_DOMAIN, "ssl", "Amforc", "rpc.example.net", "", false}, IBP_RESULT_UP, 30, "", ""},
    {{IBP_CHECK_ENDPOINT, "wss", "Amforc", "rpc.example.net", "wss://other.example/x", false},
     IBP_RESULT_UP,
     40,
     "",
     ""},
};
#define NENTRIES (sizeof entries / sizeof entries[0])

static const ibp_codec_snapshot_override overrides[] = {{"Stake Plus", true, "maintenance"},
                                                        {"Amforc", false, ""}};
static const ibp_codec_snapshot_vote votes[] = {{"mon1", 7, 3, IBP_RESULT_DOWN},
                                                {"mon2", 8, 4, IBP_RESULT_DOWN}};
static const uint8_t digest[32] = {1, 2, 3};

static ibp_codec_snapshot sample(const ibp_codec_snapshot_entry *ents,
                                 ibp_codec_snapshot_evidence *ev)
{
    ev[0] = (ibp_codec_snapshot_evidence){false, entries[1].key, 0, votes, 2};
    ev[1] = (ibp_codec_snapshot_evidence){
        true, {IBP_CHECK_SITE, "ping", "Gone", "", "", true}, 0, votes, 1};
    return (ibp_codec_snapshot){.epoch = 9,
                                .local_seq = 99,
                                .applied_ms = 1700000000000,
                                .digest = digest,
                                .digest_len = sizeof digest,
                                .entries = ents,
                                .nentries = NENTRIES,
                                .overrides = overrides,
                                .noverrides = 2,
                                .evidence = ev,
                                .nevidence = 2};
}

static void assert_key_equal(const ibp_codec_key *a, const ibp_codec_key *b)
{
    if (ibp_codec_key_cmp(a, b) != 0)
        fail_msg("key %s/%s/%s/%s differs from %s/%s/%s/%s", a->check_name, a->member, a->domain,
                 a->endpoint, b->check_name, b->member, b->domain, b->endpoint);
}

static void test_round_trip(void **state)
{
    (void)state;
    ibp_codec_snapshot_evidence ev[2];
    ibp_codec_snapshot s = sample(entries, ev);
    uint8_t *buf;
    size_t len;
    ibp_err err;
    assert_int_equal(ibp_codec_snapshot_encode(&s, &buf, &len, &err), IBP_OK);

    ibp_codec_snapshot d;
    if (ibp_codec_snapshot_decode(buf, len, &d, &err) != IBP_OK)
        fail_msg("decode: %s", err.msg);
    assert_int_equal(d.epoch, 9);
    assert_int_equal(d.local_seq, 99);
    assert_int_equal(d.applied_ms, 1700000000000);
    assert_int_equal(d.digest_len, 32);
    assert_memory_equal(d.digest, digest, 32);
    assert_int_equal(d.nentries, NENTRIES);
    /* Canonical order on the wire, and every entry back as it went in. */
    for (size_t i = 1; i < d.nentries; i++)
        assert_true(ibp_codec_key_cmp(&d.entries[i - 1].key, &d.entries[i].key) < 0);
    for (size_t i = 0; i < NENTRIES; i++) {
        const ibp_codec_snapshot_entry *f = NULL;
        for (size_t j = 0; j < d.nentries; j++)
            if (ibp_codec_key_cmp(&d.entries[j].key, &entries[i].key) == 0)
                f = &d.entries[j];
        assert_non_null(f);
        assert_key_equal(&f->key, &entries[i].key);
        assert_string_equal(f->key.endpoint, entries[i].key.endpoint);
        assert_int_equal(f->status, entries[i].status);
        assert_int_equal(f->check_time_ms, entries[i].check_time_ms);
        assert_string_equal(f->error, entries[i].error);
        assert_string_equal(f->data_json, entries[i].data_json);
    }
    assert_int_equal(d.noverrides, 2);
    assert_string_equal(d.overrides[0].member, "Stake Plus");
    assert_true(d.overrides[0].disabled);
    assert_string_equal(d.overrides[0].reason, "maintenance");
    assert_false(d.overrides[1].disabled);
    assert_int_equal(d.nevidence, 2);
    assert_false(d.evidence[0].removed);
    assert_key_equal(&d.entries[d.evidence[0].entry].key, &entries[1].key);
    assert_key_equal(&d.evidence[0].key, &entries[1].key);
    assert_int_equal(d.evidence[0].nvotes, 2);
    assert_string_equal(d.evidence[0].votes[1].node, "mon2");
    assert_int_equal(d.evidence[0].votes[1].local_seq, 8);
    assert_int_equal(d.evidence[0].votes[1].batch_seq, 4);
    assert_int_equal(d.evidence[0].votes[1].status, IBP_RESULT_DOWN);
    assert_true(d.evidence[1].removed);
    assert_string_equal(d.evidence[1].key.member, "Gone");
    assert_true(d.evidence[1].key.ipv6);

    /* The split form was used for the URL on its own domain, not the other. */
    Ibp__V1__OfficialSnapshot *pb = ibp__v1__official_snapshot__unpack(NULL, len, buf);
    assert_non_null(pb);
    size_t split = 0;
    for (size_t i = 0; i < pb->n_entries; i++)
        split += pb->entries[i]->endpoint_scheme != 0;
    assert_int_equal(split, 1);
    ibp__v1__official_snapshot__free_unpacked(pb, NULL);

    /* Packing again the decoded snapshot, or the entries in another order, gives the same bytes. */
    ibp_codec_snapshot_entry rev[NENTRIES];
    for (size_t i = 0; i < NENTRIES; i++)
        rev[i] = entries[NENTRIES - 1 - i];
    ibp_codec_snapshot_evidence ev2[2];
    ibp_codec_snapshot s2 = sample(rev, ev2);
    uint8_t *b2;
    size_t l2;
    assert_int_equal(ibp_codec_snapshot_encode(&s2, &b2, &l2, &err), IBP_OK);
    assert_int_equal(l2, len);
    assert_memory_equal(b2, buf, len);
    free(b2);
    assert_int_equal(ibp_codec_snapshot_encode(&d, &b2, &l2, &err), IBP_OK);
    assert_int_equal(l2, len);
    assert_memory_equal(b2, buf, len);
    free(b2);
    ibp_codec_snapshot_clear(&d);
    ibp_codec_snapshot_clear(&d); /* twice is fine */

    /* Two entries with one key do not pack. */
    ibp_codec_snapshot_entry dup[NENTRIES];
    memcpy(dup, entries, sizeof dup);
    dup[3] = dup[0];
    ibp_codec_snapshot s3 = sample(dup, ev2);
    assert_int_equal(ibp_codec_snapshot_encode(&s3, &b2, &l2, &err), IBP_E_INVAL);
    free(buf);
}

/* Packs a hand-made snapshot and expects its decode to fail with want. */
static void expect_refused(const Ibp__V1__OfficialSnapshot *pb, ibp_status want, const char *what)
{
    size_t len = ibp__v1__official_snapshot__get_packed_size(pb);
    uint8_t *buf = malloc(len ? len : 1);
    ibp__v1__official_snapshot__pack(pb, buf);
    ibp_codec_snapshot d;
    ibp_err err = {0};
    ibp_status st = ibp_codec_snapshot_decode(buf, len, &d, &err);
    if (st != want)
        fail_msg("%s: got %s (%s), want %s", what, ibp_status_name(st), err.msg,
                 ibp_status_name(want));
    assert_null(d.entries);
    assert_null(d.owned);
    free(buf);
}

static void test_refuses_malformed(void **state)
{
    (void)state;
    char long_name[300];
    memset(long_name, 'm', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    char *strings[] = {"",       "ping", "Alpha",     "{\"a\":1}", "[1]",
                       "wss://", "/p",   "d.example", long_name};
    Ibp__V1__SnapshotEntry e = IBP__V1__SNAPSHOT_ENTRY__INIT, e2 = IBP__V1__SNAPSHOT_ENTRY__INIT;
    Ibp__V1__SnapshotEntry *ep[] = {&e, &e2};
    Ibp__V1__OfficialSnapshot s = IBP__V1__OFFICIAL_SNAPSHOT__INIT;
    s.epoch = 5;
    s.strings = strings;
    s.n_strings = 9;
    s.entries = ep;
    s.n_entries = 1;
#define RESET()                                                                                    \
    do {                                                                                           \
        ibp__v1__snapshot_entry__init(&e);                                                         \
        e.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE;                                       \
        e.check_name = 1;                                                                          \
        e.member = 2;                                                                              \
        e.status = IBP__V1__STATUS__STATUS_UP;                                                     \
        s.n_strings = 9;                                                                           \
        s.n_entries = 1;                                                                           \
        s.n_overrides = 0;                                                                         \
        s.n_evidence = 0;                                                                          \
    } while (0)

    /* The valid base case decodes. */
    RESET();
    {
        size_t len = ibp__v1__official_snapshot__get_packed_size(&s);
        uint8_t *buf = malloc(len);
        ibp__v1__official_snapshot__pack(&s, buf);
        ibp_codec_snapshot d;
        ibp_err err;
        assert_int_equal(ibp_codec_snapshot_decode(buf, len, &d, &err), IBP_OK);
        assert_int_equal(d.nentries, 1);
        ibp_codec_snapshot_clear(&d);
        free(buf);
    }
    RESET();
    s.n_strings = 0;
    expect_refused(&s, IBP_E_PAYLOAD_DECODE, "no string table");
    RESET();
    strings[0] = "x";
    expect_refused(&s, IBP_E_PAYLOAD_DECODE, "table not starting with \"\"");
    strings[0] = "";
    RESET();
    e.member = 40;
    expect_refused(&s, IBP_E_PAYLOAD_DECODE, "member index out of range");
    RESET();
    e.status = IBP__V1__STATUS__STATUS_UNSPECIFIED;
    expect_refused(&s, IBP_E_PAYLOAD_DECODE, "status unspecified");
    RESET();
    e.status = (Ibp__V1__Status)7;
    expect_refused(&s, IBP_E_PAYLOAD_DECODE, "unknown status");
    RESET();
    e.check_type = (Ibp__V1__CheckType)9;
    expect_refused(&s, IBP_E_PAYLOAD_DECODE, "unknown check type");
    RESET();
    e.member = 0;
    expect_refused(&s, IBP_E_PAYLOAD_DECODE, "empty member");
    RESET();
    e.domain = 7;
    expect_refused(&s, IBP_E_PAYLOAD_DECODE, "site key with a domain");
    RESET();
    e.member = 8;
    expect_refused(&s, IBP_E_TOO_LARGE, "member over IBP_NAME_MAX");
    RESET();
    e.data_json = 4;
    expect_refused(&s, IBP_E_PAYLOAD_DECODE, "data not a JSON object");
    RESET();
    e.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
    e.domain = 7;
    e.endpoint_scheme = 5;
    e.endpoint_path = 6;
    e.endpoint = 6;
    expect_refused(&s, IBP_E_PAYLOAD_DECODE, "split URL with endpoint set");
    RESET();
    e.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
    e.domain = 7;
    e.endpoint_scheme = 5;
    e.endpoint_path = 60;
    expect_refused(&s, IBP_E_PAYLOAD_DECODE, "split URL path out of range");
    RESET();
    e2 = e;
    s.n_entries = 2;
    expect_refused(&s, IBP_E_PAYLOAD_DECODE, "a key twice");
    /* Out of canonical order is accepted; a key twice apart from its twin is not. */
    Ibp__V1__SnapshotEntry e3;
    Ibp__V1__SnapshotEntry *ep3[] = {&e2, &e, &e3};
    RESET();
    e2 = e;
    e2.member = 7; /* "d.example" sorts after "Alpha" */
    e3 = e2;
    s.entries = ep3;
    s.n_entries = 2;
    {
        size_t len = ibp__v1__official_snapshot__get_packed_size(&s);
        uint8_t *buf = malloc(len);
        ibp__v1__official_snapshot__pack(&s, buf);
        ibp_codec_snapshot d;
        ibp_err err;
        assert_int_equal(ibp_codec_snapshot_decode(buf, len, &d, &err), IBP_OK);
        assert_string_equal(d.entries[0].key.member, "d.example");
        ibp_codec_snapshot_clear(&d);
        free(buf);
    }
    s.n_entries = 3;
    expect_refused(&s, IBP_E_PAYLOAD_DECODE, "a key twice, apart");
    s.entries = ep;

    Ibp__V1__SnapshotOverride o = IBP__V1__SNAPSHOT_OVERRIDE__INIT, o2;
    Ibp__V1__SnapshotOverride *op[] = {&o, &o2};
    s.overrides = op;
    RESET();
    o.member = 0;
    s.n_overrides = 1;
    expect_refused(&s, IBP_E_PAYLOAD_DECODE, "override without a member");
    RESET();
    o.member = 8;
    s.n_overrides = 1;
    expect_refused(&s, IBP_E_TOO_LARGE, "override member too long");
    RESET();
    o.member = 2;
    o.disabled = true;
    o2 = o;
    s.n_overrides = 2;
    expect_refused(&s, IBP_E_PAYLOAD_DECODE, "member disabled twice");

    Ibp__V1__SnapshotEvidence ev = IBP__V1__SNAPSHOT_EVIDENCE__INIT;
    Ibp__V1__SnapshotEvidence *evp[] = {&ev};
    Ibp__V1__SnapshotVote v = IBP__V1__SNAPSHOT_VOTE__INIT;
    Ibp__V1__SnapshotVote *vp[] = {&v};
    s.evidence = evp;
    RESET();
    ev.entry = 3;
    s.n_evidence = 1;
    expect_refused(&s, IBP_E_PAYLOAD_DECODE, "evidence entry out of range");
    RESET();
    ev.entry = 0;
    ev.votes = vp;
    ev.n_votes = 1;
    v.node = 30;
    v.status = IBP__V1__STATUS__STATUS_UP;
    s.n_evidence = 1;
    expect_refused(&s, IBP_E_PAYLOAD_DECODE, "vote node out of range");
    RESET();
    v.node = 2;
    v.status = IBP__V1__STATUS__STATUS_UNSPECIFIED;
    s.n_evidence = 1;
    expect_refused(&s, IBP_E_PAYLOAD_DECODE, "vote without a status");

    /* Bytes that are not protobuf at all. */
    static const uint8_t junk[] = {0x0f, 0xff, 0xff, 0xff};
    ibp_codec_snapshot d;
    ibp_err err;
    assert_int_equal(ibp_codec_snapshot_decode(junk, sizeof junk, &d, &err), IBP_E_PAYLOAD_DECODE);
    /* A verified message of another type is not a snapshot. */
    Ibp__V1__Envelope env = IBP__V1__ENVELOPE__INIT;
    env.type = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT;
    Ibp__V1__Heartbeat hb = IBP__V1__HEARTBEAT__INIT;
    ibp_verified vm = {&env, &hb.base, NULL};
    assert_int_equal(ibp_codec_snapshot_decode_verified(&vm, &d, &err), IBP_E_INVAL);
#undef RESET
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refuses_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
