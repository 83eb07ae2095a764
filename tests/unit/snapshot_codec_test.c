/* Unit tests: OfficialSnapshot encoding (consensus) and decoding (node). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ibp/codec_result_key.h"
#include "ibp/official_snapshot.h"
#include "ibp/snapshot_encode.h"
#include "ibp/vote.h"

static const char *const urls[] = {
    "wss://rpc.example.net/polkadot",   "wss://rpc.example.net",
    "wss://rpc.example.net:443/kusama", "wss://rpc.example.net.evil/x",
    "https://RPC.example.net/upper",    "wss://user@rpc.example.net/x",
};
#define NURLS (sizeof urls / sizeof urls[0])

static ibp_vote *engine_with_state(ibp_vote_update *u)
{
    ibp_vote_config cfg;
    ibp_vote *e;
    ibp_vote_config_init(&cfg);
    assert_int_equal(ibp_vote_new(&cfg, &e), IBP_VOTE_OK);
    ibp_vote_obs obs[NURLS + 1];
    for (size_t i = 0; i < NURLS; i++)
        obs[i] = (ibp_vote_obs){
            {IBP_VOTE_ENDPOINT, "wss", "Stake Plus", "rpc.example.net", urls[i], i % 2 == 1},
            i == 0 ? IBP_VOTE_DOWN : IBP_VOTE_UP,
            1700000000000 + (int64_t)i,
            i == 0 ? "timeout" : "",
            i == 2 ? "{\"ms\":3}" : ""};
    obs[NURLS] =
        (ibp_vote_obs){{IBP_VOTE_SITE, "ping", "Amforc", "", "", false}, IBP_VOTE_UP, 1, "", ""};
    uint64_t seq = 0;
    for (int m = 0; m < 2; m++) {
        ibp_vote_msg msg = {.kind = IBP_VOTE_MSG_OBSERVATION_BATCH,
                            .signer = m ? "mon2" : "mon1",
                            .local_seq = ++seq,
                            .stream_ms = 1000 + (int64_t)seq,
                            .batch_seq = seq,
                            .obs = obs,
                            .nobs = NURLS + 1};
        assert_int_equal(ibp_vote_apply(e, &msg, u), IBP_VOTE_OK);
    }
    ibp_vote_msg ovr = {.kind = IBP_VOTE_MSG_MEMBER_OVERRIDE,
                        .signer = "ops",
                        .local_seq = ++seq,
                        .stream_ms = 2000,
                        .override = {"Amforc", true, "maintenance"}};
    ibp_vote_update u2;
    assert_int_equal(ibp_vote_apply(e, &ovr, &u2), IBP_VOTE_OK);
    return e;
}

/* The store keeps results in the same order the wire uses. */
static void test_agrees_with_store_order(void **state)
{
    (void)state;
    enum { N = 400 };
    static const char *const names[] = {"a", "b", "ab", "", "B", "a\xc3\xa9"};
    srand(7);
    for (int i = 0; i < N; i++) {
        ibp_codec_key a = {1 + rand() % 3,           names[rand() % 6], names[rand() % 6],
                           names[rand() % 6],        names[rand() % 6], rand() % 2};
        ibp_codec_key b = {1 + rand() % 3,           names[rand() % 6], names[rand() % 6],
                           names[rand() % 6],        names[rand() % 6], rand() % 2};
        ibp_result_key ra = {a.type, a.check_name, a.member, a.domain, a.endpoint, a.ipv6};
        ibp_result_key rb = {b.type, b.check_name, b.member, b.domain, b.endpoint, b.ipv6};
        int c1 = ibp_codec_key_cmp(&a, &b), c2 = ibp_result_key_cmp(&ra, &rb);
        if ((c1 > 0) != (c2 > 0) || (c1 < 0) != (c2 < 0))
            fail_msg("wire order %d, store order %d", c1, c2);
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    ibp_vote_update u;
    ibp_vote *e = engine_with_state(&u);
    uint8_t *buf;
    size_t len;
    ibp_err err;
    assert_int_equal(ibp_snapshot_encode(e, NULL, &buf, &len, &err), IBP_OK);
    Ibp__V1__OfficialSnapshot *s = ibp__v1__official_snapshot__unpack(NULL, len, buf);
    assert_non_null(s);
    ibp_official_snapshot snap;
    if (ibp_official_snapshot_from_proto(s, &snap, &err) != IBP_OK)
        fail_msg("decode: %s", err.msg);
    ibp_vote_info info;
    ibp_vote_get_info(e, &info);
    assert_int_equal(snap.epoch, info.epoch);
    assert_int_equal(snap.local_seq, info.local_seq);
    assert_int_equal(snap.results.count, NURLS + 1);
    assert_memory_equal(snap.digest, info.digest, IBP_VOTE_DIGEST_SIZE);
    /* Every URL comes back byte for byte, split or not. */
    for (size_t i = 0; i < NURLS; i++) {
        bool found = false;
        for (size_t j = 0; j < snap.results.count; j++) {
            const ibp_result *r = snap.results.items[j];
            if (strcmp(r->endpoint, urls[i]) == 0) {
                found = true;
                assert_int_equal(r->up, i != 0);
                assert_int_equal(r->ipv6, i % 2 == 1);
                assert_int_equal(r->check_time_ms, 1700000000000 + (int64_t)i);
                assert_string_equal(r->error, i == 0 ? "timeout" : "");
                assert_string_equal(r->data_json, i == 2 ? "{\"ms\":3}" : "");
            }
        }
        if (!found)
            fail_msg("url %s lost in the round trip", urls[i]);
    }
    assert_int_equal(snap.n_overrides, 1);
    assert_string_equal(snap.overrides[0].member, "Amforc");
    assert_string_equal(snap.overrides[0].reason, "maintenance");
    ibp_official_snapshot_clear(&snap);
    ibp__v1__official_snapshot__free_unpacked(s, NULL);
    free(buf);

    /* Encoding is deterministic: the same state gives the same bytes. */
    uint8_t *b2;
    size_t l2;
    assert_int_equal(ibp_snapshot_encode(e, NULL, &buf, &len, &err), IBP_OK);
    assert_int_equal(ibp_snapshot_encode(e, NULL, &b2, &l2, &err), IBP_OK);
    assert_int_equal(len, l2);
    assert_memory_equal(buf, b2, len);
    free(buf);
    free(b2);
    ibp_vote_free(e);
}

static void test_decode_refuses_bad_snapshots(void **state)
{
    (void)state;
    ibp_official_snapshot snap;
    ibp_err err;
    char *strings[] = {"", "wss", "Stake Plus", "rpc.example.net", "wss://", "/p"};
    Ibp__V1__SnapshotEntry e = IBP__V1__SNAPSHOT_ENTRY__INIT;
    Ibp__V1__SnapshotEntry *ep[] = {&e, &e};
    Ibp__V1__OfficialSnapshot s = IBP__V1__OFFICIAL_SNAPSHOT__INIT;
    s.n_strings = 6;
    s.strings = strings;
    s.n_entries = 1;
    s.entries = ep;
    e.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
    e.check_name = 1;
    e.member = 2;
    e.domain = 3;
    e.endpoint_scheme = 4;
    e.endpoint_path = 5;
    e.status = IBP__V1__STATUS__STATUS_DOWN;
    assert_int_equal(ibp_official_snapshot_from_proto(&s, &snap, &err), IBP_OK);
    assert_string_equal(snap.results.items[0]->endpoint, "wss://rpc.example.net/p");
    ibp_official_snapshot_clear(&snap);
    /* Index out of range. */
    e.endpoint_path = 99;
    assert_int_equal(ibp_official_snapshot_from_proto(&s, &snap, &err), IBP_E_PAYLOAD_DECODE);
    e.endpoint_path = 5;
    /* Both forms at once. */
    e.endpoint = 5;
    assert_int_equal(ibp_official_snapshot_from_proto(&s, &snap, &err), IBP_E_PAYLOAD_DECODE);
    e.endpoint = 0;
    /* A status that is neither up nor down. */
    e.status = 0;
    assert_int_equal(ibp_official_snapshot_from_proto(&s, &snap, &err), IBP_E_PAYLOAD_DECODE);
    e.status = IBP__V1__STATUS__STATUS_UP;
    /* The same key twice. */
    s.n_entries = 2;
    assert_int_equal(ibp_official_snapshot_from_proto(&s, &snap, &err), IBP_E_PAYLOAD_DECODE);
    assert_non_null(strstr(err.msg, "twice"));
    s.n_entries = 1;
    /* A string table that does not start with "". */
    strings[0] = "x";
    assert_int_equal(ibp_official_snapshot_from_proto(&s, &snap, &err), IBP_E_PAYLOAD_DECODE);
    strings[0] = "";
    /* A bad key shape (endpoint type without a domain). */
    e.domain = 0;
    assert_int_equal(ibp_official_snapshot_from_proto(&s, &snap, &err), IBP_E_PAYLOAD_DECODE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agrees_with_store_order),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_decode_refuses_bad_snapshots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
