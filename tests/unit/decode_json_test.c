/* Unit tests: every bus message type decoded to JSON (ibp/decode_json.h, `ibpctl decode`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <sodium.h>
#include <string.h>

#include "ibp/decode_json.h"
#include "ibp/log.h"
#include "test_util.h"

#define T(x) IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_##x

struct fixture {
    char *dir;
    ibp_key key[4];
    ibp_roster *roster;
    ibp_signer *mon, *admin, *rep, *dns;
};

static ibp_signer *mk(struct fixture *f, const char *id, int i, unsigned roles)
{
    char path[4200];
    ibp_err err;
    ibp_signer *s;
    assert_int_equal(ibp_key_generate(&f->key[i]), IBP_OK);
    assert_int_equal(ibp_roster_add(f->roster, id, f->key[i].pk, roles, &err), IBP_OK);
    snprintf(path, sizeof path, "%s/%s.seq", f->dir, id);
    assert_int_equal(ibp_signer_new(id, &f->key[i], path, &s, &err), IBP_OK);
    return s;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    ibp_log_set_level(IBP_LOG_OFF);
    f->dir = test_tmpdir();
    assert_int_equal(ibp_roster_new(&f->roster), IBP_OK);
    f->mon = mk(f, "mon1", 0, IBP_ROLE_MONITOR);
    f->admin = mk(f, "ops", 1, IBP_ROLE_ADMIN);
    f->rep = mk(f, "rep1", 2, IBP_ROLE_CONSENSUS);
    f->dns = mk(f, "dns1", 3, IBP_ROLE_DNS);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ibp_signer_free(f->mon);
    ibp_signer_free(f->admin);
    ibp_signer_free(f->rep);
    ibp_signer_free(f->dns);
    ibp_roster_free(f->roster);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

/* Seals payload with s, decodes it with the roster; returns the JSON (checked envelope part). */
static json_t *roundtrip(struct fixture *f, ibp_signer *s, ibp_payload_type type,
                         const ProtobufCMessage *payload, const char *type_name)
{
    uint8_t *msg;
    size_t len;
    uint64_t seq;
    ibp_err err;
    json_t *j = NULL;
    assert_int_equal(ibp_signer_seal(s, type, payload, 1700000000123, &msg, &len, &seq, &err),
                     IBP_OK);
    assert_int_equal(ibp_decode_json(msg, len, f->roster, type, &j, &err), IBP_OK);
    free(msg);
    assert_string_equal(json_string_value(json_object_get(j, "signer")), ibp_signer_id(s));
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), seq);
    assert_int_equal(json_integer_value(json_object_get(j, "created_ms")), 1700000000123);
    assert_string_equal(json_string_value(json_object_get(j, "type")), type_name);
    assert_true(json_is_true(json_object_get(j, "verified")));
    assert_null(json_object_get(j, "header_type"));
    assert_non_null(json_object_get(j, "payload"));
    return j;
}

#define PS(j, path) json_string_value(json_object_get((j), (path)))
#define PI(j, path) json_integer_value(json_object_get((j), (path)))

static void test_observation_batch(void **state)
{
    struct fixture *f = *state;
    Ibp__V1__ResultKey k = IBP__V1__RESULT_KEY__INIT;
    k.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
    k.check_name = "wss";
    k.member = "Stake Plus";
    k.domain = "rpc.example.net";
    k.endpoint = "wss://rpc.example.net/polkadot";
    k.ipv6 = 1;
    Ibp__V1__Observation o = IBP__V1__OBSERVATION__INIT;
    o.key = &k;
    o.status = IBP__V1__STATUS__STATUS_DOWN;
    o.check_time_ms = 1700000000000;
    o.error = "connect timeout";
    o.data_json = "{\"latency_ms\":12}";
    Ibp__V1__Observation *list[] = {&o, &o};
    Ibp__V1__ObservationBatch b = IBP__V1__OBSERVATION_BATCH__INIT;
    b.batch_seq = 42;
    b.full = 1;
    b.n_observations = 2;
    b.observations = list;
    json_t *j = roundtrip(f, f->mon, T(OBSERVATION_BATCH), &b.base, "ObservationBatch");
    json_t *p = json_object_get(j, "payload");
    assert_int_equal(PI(p, "batch_seq"), 42);
    assert_true(json_is_true(json_object_get(p, "full")));
    json_t *obs = json_object_get(p, "observations");
    assert_int_equal(json_array_size(obs), 2);
    json_t *o0 = json_array_get(obs, 1);
    assert_string_equal(PS(o0, "status"), "down");
    assert_int_equal(PI(o0, "check_time_ms"), 1700000000000);
    assert_string_equal(PS(o0, "error"), "connect timeout");
    assert_string_equal(PS(o0, "data_json"), "{\"latency_ms\":12}");
    json_t *key = json_object_get(o0, "key");
    assert_string_equal(PS(key, "check_type"), "endpoint");
    assert_string_equal(PS(key, "check_name"), "wss");
    assert_string_equal(PS(key, "member"), "Stake Plus");
    assert_string_equal(PS(key, "domain"), "rpc.example.net");
    assert_string_equal(PS(key, "endpoint"), "wss://rpc.example.net/polkadot");
    assert_true(json_is_true(json_object_get(key, "ipv6")));
    json_decref(j);
}

static void test_heartbeat_override_hits(void **state)
{
    struct fixture *f = *state;
    char *roles[] = {"monitor", "consensus"};
    Ibp__V1__Heartbeat h = IBP__V1__HEARTBEAT__INIT;
    h.epoch = 7;
    h.local_seq = 99;
    h.n_roles = 2;
    h.roles = roles;
    json_t *j = roundtrip(f, f->rep, T(HEARTBEAT), &h.base, "Heartbeat");
    json_t *p = json_object_get(j, "payload");
    assert_int_equal(PI(p, "epoch"), 7);
    assert_int_equal(PI(p, "local_seq"), 99);
    assert_string_equal(json_string_value(json_array_get(json_object_get(p, "roles"), 1)),
                        "consensus");
    json_decref(j);

    Ibp__V1__MemberOverride mo = IBP__V1__MEMBER_OVERRIDE__INIT;
    mo.member = "Stake Plus";
    mo.disabled = 1;
    mo.reason = "maintenance";
    j = roundtrip(f, f->admin, T(MEMBER_OVERRIDE), &mo.base, "MemberOverride");
    p = json_object_get(j, "payload");
    assert_string_equal(PS(p, "member"), "Stake Plus");
    assert_true(json_is_true(json_object_get(p, "disabled")));
    assert_string_equal(PS(p, "reason"), "maintenance");
    json_decref(j);

    Ibp__V1__HitRow r = IBP__V1__HIT_ROW__INIT;
    r.date = "2026-11-27";
    r.domain = "rpc.example.net";
    r.member = "Stake Plus";
    r.country_code = "DE";
    r.asn = "AS3320";
    r.network_name = "Telekom";
    r.country_name = "Germany";
    r.ipv6 = 1;
    r.hits = 12345;
    Ibp__V1__HitRow *rows[] = {&r};
    Ibp__V1__HitBatch hb = IBP__V1__HIT_BATCH__INIT;
    hb.node = "dns1";
    hb.flush_seq = 5;
    hb.n_rows = 1;
    hb.rows = rows;
    j = roundtrip(f, f->dns, T(HIT_BATCH), &hb.base, "HitBatch");
    p = json_object_get(j, "payload");
    assert_string_equal(PS(p, "node"), "dns1");
    assert_int_equal(PI(p, "flush_seq"), 5);
    json_t *r0 = json_array_get(json_object_get(p, "rows"), 0);
    assert_string_equal(PS(r0, "date"), "2026-11-27");
    assert_string_equal(PS(r0, "country_code"), "DE");
    assert_string_equal(PS(r0, "asn"), "AS3320");
    assert_string_equal(PS(r0, "network_name"), "Telekom");
    assert_string_equal(PS(r0, "country_name"), "Germany");
    assert_true(json_is_true(json_object_get(r0, "ipv6")));
    assert_int_equal(PI(r0, "hits"), 12345);
    json_decref(j);
}

static void test_event(void **state)
{
    struct fixture *f = *state;
    Ibp__V1__ResultKey k = IBP__V1__RESULT_KEY__INIT;
    k.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE;
    k.check_name = "ping";
    k.member = "Stake Plus";
    Ibp__V1__Voter v1 = IBP__V1__VOTER__INIT, v2 = IBP__V1__VOTER__INIT;
    v1.node = "mon1";
    v1.local_seq = 10;
    v1.batch_seq = 3;
    v1.status = IBP__V1__STATUS__STATUS_DOWN;
    v2 = v1;
    v2.node = "mon2";
    v2.local_seq = 11;
    Ibp__V1__Voter *voters[] = {&v1, &v2};
    Ibp__V1__Event e = IBP__V1__EVENT__INIT;
    e.id = "ev-1";
    e.kind = IBP__V1__EVENT_KIND__EVENT_KIND_STATUS;
    e.key = &k;
    e.status = IBP__V1__STATUS__STATUS_DOWN;
    e.error = "timeout";
    e.data_json = "{}";
    e.time_ms = 1700000000999;
    e.epoch = 4;
    e.n_voters = 2;
    e.voters = voters;
    json_t *j = roundtrip(f, f->rep, T(EVENT), &e.base, "Event");
    json_t *p = json_object_get(j, "payload");
    assert_string_equal(PS(p, "id"), "ev-1");
    assert_string_equal(PS(p, "kind"), "status");
    assert_string_equal(PS(p, "status"), "down");
    assert_string_equal(PS(p, "error"), "timeout");
    assert_int_equal(PI(p, "time_ms"), 1700000000999);
    assert_int_equal(PI(p, "epoch"), 4);
    assert_string_equal(PS(json_object_get(p, "key"), "check_type"), "site");
    json_t *vs = json_object_get(p, "voters");
    assert_int_equal(json_array_size(vs), 2);
    assert_string_equal(PS(json_array_get(vs, 1), "node"), "mon2");
    assert_int_equal(PI(json_array_get(vs, 1), "local_seq"), 11);
    assert_int_equal(PI(json_array_get(vs, 1), "batch_seq"), 3);
    assert_string_equal(PS(json_array_get(vs, 1), "status"), "down");
    json_decref(j);
}

static void test_snapshot(void **state)
{
    struct fixture *f = *state;
    char *strings[] = {"",       "Stake Plus", "wss",     "rpc.example.net",
                       "wss://", "/dot",       "timeout", "{\"a\":1}",
                       "mon1",   "ops",        "ping",    "maint"};
    Ibp__V1__SnapshotEntry e0 = IBP__V1__SNAPSHOT_ENTRY__INIT, e1 = IBP__V1__SNAPSHOT_ENTRY__INIT;
    e0.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
    e0.check_name = 2;
    e0.member = 1;
    e0.domain = 3;
    e0.endpoint_scheme = 4;
    e0.endpoint_path = 5;
    e0.status = IBP__V1__STATUS__STATUS_DOWN;
    e0.check_time_ms = 1700000000000;
    e0.error = 6;
    e0.data_json = 7;
    e1.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE;
    e1.check_name = 10;
    e1.member = 1;
    e1.ipv6 = 1;
    e1.status = IBP__V1__STATUS__STATUS_UP;
    Ibp__V1__SnapshotEntry *entries[] = {&e0, &e1};
    Ibp__V1__SnapshotOverride o = IBP__V1__SNAPSHOT_OVERRIDE__INIT;
    o.member = 1;
    o.disabled = 1;
    o.reason = 11;
    Ibp__V1__SnapshotOverride *ovs[] = {&o};
    Ibp__V1__SnapshotVote v = IBP__V1__SNAPSHOT_VOTE__INIT;
    v.node = 8;
    v.local_seq = 17;
    v.batch_seq = 9;
    v.status = IBP__V1__STATUS__STATUS_DOWN;
    Ibp__V1__SnapshotVote *votes[] = {&v};
    Ibp__V1__ResultKey rk = IBP__V1__RESULT_KEY__INIT;
    rk.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_DOMAIN;
    rk.check_name = "gone";
    rk.member = "Old";
    rk.domain = "old.example.net";
    Ibp__V1__SnapshotEvidence ev0 = IBP__V1__SNAPSHOT_EVIDENCE__INIT,
                              ev1 = IBP__V1__SNAPSHOT_EVIDENCE__INIT;
    ev0.entry = 0;
    ev0.n_votes = 1;
    ev0.votes = votes;
    ev1.removed = &rk;
    Ibp__V1__SnapshotEvidence *evs[] = {&ev0, &ev1};
    uint8_t digest[3] = {0xab, 0x01, 0xff};
    Ibp__V1__OfficialSnapshot s = IBP__V1__OFFICIAL_SNAPSHOT__INIT;
    s.epoch = 12;
    s.local_seq = 345;
    s.applied_ms = 1700000001000;
    s.state_digest.data = digest;
    s.state_digest.len = 3;
    s.n_strings = sizeof strings / sizeof strings[0];
    s.strings = strings;
    s.n_entries = 2;
    s.entries = entries;
    s.n_overrides = 1;
    s.overrides = ovs;
    s.n_evidence = 2;
    s.evidence = evs;
    json_t *j = roundtrip(f, f->rep, T(OFFICIAL_SNAPSHOT), &s.base, "OfficialSnapshot");
    json_t *p = json_object_get(j, "payload");
    assert_int_equal(PI(p, "epoch"), 12);
    assert_int_equal(PI(p, "local_seq"), 345);
    assert_int_equal(PI(p, "applied_ms"), 1700000001000);
    assert_string_equal(PS(p, "state_digest"), "ab01ff");
    json_t *en = json_object_get(p, "entries");
    assert_int_equal(json_array_size(en), 2);
    json_t *x = json_array_get(en, 0);
    assert_string_equal(PS(x, "check_type"), "endpoint");
    assert_string_equal(PS(x, "check_name"), "wss");
    assert_string_equal(PS(x, "member"), "Stake Plus");
    assert_string_equal(PS(x, "domain"), "rpc.example.net");
    assert_string_equal(PS(x, "endpoint"), "wss://rpc.example.net/dot");
    assert_string_equal(PS(x, "status"), "down");
    assert_string_equal(PS(x, "error"), "timeout");
    assert_string_equal(PS(x, "data_json"), "{\"a\":1}");
    x = json_array_get(en, 1);
    assert_string_equal(PS(x, "check_name"), "ping");
    assert_string_equal(PS(x, "endpoint"), "");
    assert_true(json_is_true(json_object_get(x, "ipv6")));
    x = json_array_get(json_object_get(p, "overrides"), 0);
    assert_string_equal(PS(x, "member"), "Stake Plus");
    assert_true(json_is_true(json_object_get(x, "disabled")));
    assert_string_equal(PS(x, "reason"), "maint");
    json_t *evj = json_object_get(p, "evidence");
    assert_int_equal(json_array_size(evj), 2);
    x = json_array_get(evj, 0);
    assert_string_equal(PS(json_object_get(x, "key"), "endpoint"), "wss://rpc.example.net/dot");
    x = json_array_get(json_object_get(x, "votes"), 0);
    assert_string_equal(PS(x, "node"), "mon1");
    assert_int_equal(PI(x, "local_seq"), 17);
    assert_int_equal(PI(x, "batch_seq"), 9);
    assert_string_equal(PS(x, "status"), "down");
    x = json_array_get(evj, 1);
    assert_true(json_is_true(json_object_get(x, "removed")));
    assert_string_equal(PS(json_object_get(x, "key"), "domain"), "old.example.net");
    json_decref(j);

    /* An index out of range is refused, never read. */
    e1.error = 400;
    uint8_t *msg;
    size_t len;
    ibp_err err;
    assert_int_equal(
        ibp_signer_seal(f->rep, T(OFFICIAL_SNAPSHOT), &s.base, 1, &msg, &len, NULL, &err), IBP_OK);
    assert_int_equal(ibp_decode_json(msg, len, NULL, T(UNSPECIFIED), &j, &err),
                     IBP_E_PAYLOAD_DECODE);
    assert_null(j);
    free(msg);
}

static void test_unverified_status_and_garbage(void **state)
{
    struct fixture *f = *state;
    Ibp__V1__MemberOverride mo = IBP__V1__MEMBER_OVERRIDE__INIT;
    mo.member = "x";
    uint8_t *msg;
    size_t len;
    ibp_err err;
    json_t *j;
    /* A monitor may not send overrides: decoded, but not verified, with the reason. */
    assert_int_equal(
        ibp_signer_seal(f->mon, T(MEMBER_OVERRIDE), &mo.base, 1, &msg, &len, NULL, &err), IBP_OK);
    assert_int_equal(ibp_decode_json(msg, len, f->roster, T(HEARTBEAT), &j, &err), IBP_OK);
    assert_true(json_is_false(json_object_get(j, "verified")));
    assert_non_null(strstr(PS(j, "reason"), "IBP_E_ROLE_DENIED"));
    assert_string_equal(PS(j, "header_type"), "Heartbeat");
    json_decref(j);
    /* Without a roster: no verdict. */
    assert_int_equal(ibp_decode_json(msg, len, NULL, T(UNSPECIFIED), &j, &err), IBP_OK);
    assert_null(json_object_get(j, "verified"));
    json_decref(j);
    /* A flipped payload byte: decoded, signature refused. */
    msg[len - 70] ^= 1;
    if (ibp_decode_json(msg, len, f->roster, T(UNSPECIFIED), &j, &err) == IBP_OK) {
        assert_true(json_is_false(json_object_get(j, "verified")));
        json_decref(j);
    }
    free(msg);

    const char *status = " {\"member\":\"x\",\"status\":\"up\"}\n";
    assert_int_equal(ibp_decode_json((const uint8_t *)status, strlen(status), f->roster,
                                     T(UNSPECIFIED), &j, &err),
                     IBP_OK);
    assert_string_equal(PS(j, "status"), "up");
    json_decref(j);

    const char *texts[] = {"", "hello", "{not json", "\x0a\x03\x61\x62"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        j = (json_t *)1;
        assert_int_equal(ibp_decode_json((const uint8_t *)texts[i], strlen(texts[i]), f->roster,
                                         T(UNSPECIFIED), &j, &err),
                         IBP_E_DECODE);
        assert_null(j);
    }
    /* Random bytes never crash. */
    uint8_t buf[256];
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(round % 256);
        randombytes_buf(buf, n);
        if (ibp_decode_json(buf, n, f->roster, T(UNSPECIFIED), &j, &err) == IBP_OK)
            json_decref(j);
    }
}

/* The verdict `ibpctl decode` exits by, and the compact line of `ibpctl watch`. */
static void test_verdict_and_fields(void **state)
{
    struct fixture *f = *state;
    Ibp__V1__MemberOverride mo = IBP__V1__MEMBER_OVERRIDE__INIT;
    mo.member = "Stake Plus";
    mo.disabled = 1;
    mo.reason = "maint";
    uint8_t *msg;
    size_t len;
    ibp_err err;
    json_t *j;
    const char *why = NULL;
    assert_int_equal(
        ibp_signer_seal(f->admin, T(MEMBER_OVERRIDE), &mo.base, 1, &msg, &len, NULL, &err), IBP_OK);
    /* Verified with a roster and the right header; not with another header type. */
    assert_int_equal(ibp_decode_json(msg, len, f->roster, T(MEMBER_OVERRIDE), &j, &err), IBP_OK);
    assert_true(ibp_decode_json_verified(j, &why));
    assert_null(why);
    char line[256];
    const char *skip[] = {"signature", NULL};
    ibp_decode_json_fields(j, skip, line, sizeof line);
    assert_string_equal(line, "signer=ops seq=1 created_ms=1 type=MemberOverride verified=true");
    ibp_decode_json_fields(json_object_get(j, "payload"), NULL, line, sizeof line);
    assert_string_equal(line, "member=\"Stake Plus\" disabled=true reason=maint");
    /* A cut line ends in "..." within the buffer. */
    char small[16];
    ibp_decode_json_fields(json_object_get(j, "payload"), NULL, small, sizeof small);
    assert_string_equal(small, "member=\"Stak...");
    json_decref(j);
    assert_int_equal(ibp_decode_json(msg, len, f->roster, T(HEARTBEAT), &j, &err), IBP_OK);
    assert_false(ibp_decode_json_verified(j, &why));
    assert_non_null(strstr(why, "Ibp-Type"));
    json_decref(j);
    /* Without a roster nothing verifies. */
    assert_int_equal(ibp_decode_json(msg, len, NULL, T(UNSPECIFIED), &j, &err), IBP_OK);
    assert_false(ibp_decode_json_verified(j, &why));
    assert_non_null(strstr(why, "no roster"));
    json_decref(j);
    /* A bad signature: the reason of the document. */
    msg[len - 1] ^= 1;
    assert_int_equal(ibp_decode_json(msg, len, f->roster, T(UNSPECIFIED), &j, &err), IBP_OK);
    assert_false(ibp_decode_json_verified(j, &why));
    assert_non_null(strstr(why, "IBP_E_BAD_SIGNATURE"));
    json_decref(j);
    free(msg);
    /* An unsigned status message, and one without a roster. */
    const char *status = "{\"member\":\"x\",\"status\":\"up\"}";
    assert_int_equal(ibp_decode_status_json((const uint8_t *)status, strlen(status), "ibp.status.x",
                                            NULL, NULL, f->roster, &j, NULL, &err),
                     IBP_OK);
    assert_false(ibp_decode_json_verified(j, &why));
    assert_non_null(strstr(why, "IBP_E_NOT_FOUND"));
    json_decref(j);
    assert_int_equal(ibp_decode_status_json((const uint8_t *)status, strlen(status), "ibp.status.x",
                                            NULL, NULL, NULL, &j, NULL, &err),
                     IBP_OK);
    assert_false(ibp_decode_json_verified(j, NULL));
    json_decref(j);
    assert_false(ibp_decode_json_verified(NULL, &why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_observation_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_override_hits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unverified_status_and_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verdict_and_fields, setup, teardown),
    };
    if (ibp_crypto_init() != IBP_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
