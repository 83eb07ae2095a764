/*
 * Unit tests: the decoded-size bound of protobuf payloads (ibp/pb_bound.h)
 * and the verifier refusing a signed payload that would decode too large.
 *
 * "Sound" is checked against protobuf-c itself: each realistic message is
 * decoded with a counting allocator, and the bound must be at least what it
 * allocated (the sum of every allocation, transient ones included) and not
 * wildly more.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/envelope.h"
#include "ibp/log.h"
#include "ibp/pb_bound.h"
#include "test_util.h"

/* ---- a counting allocator for protobuf-c ----------------------------------- */

static size_t allocated;

static void *count_alloc(void *data, size_t size)
{
    (void)data;
    allocated += size + 16; /* the same per-allocation overhead the bound assumes */
    return malloc(size);
}

static void count_free(void *data, void *p)
{
    (void)data;
    free(p);
}

static ProtobufCAllocator counting = {count_alloc, count_free, NULL};

/* Packs m, bounds it and decodes it with the counting allocator; checks the bound. */
static size_t check_sound(const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    protobuf_c_message_pack(m, buf);
    size_t bound = 0;
    ibp_err err = {0};
    assert_int_equal(ibp_pb_decoded_bound(m->descriptor, buf, len, SIZE_MAX, &bound, &err), IBP_OK);
    allocated = 0;
    ProtobufCMessage *back = protobuf_c_message_unpack(m->descriptor, &counting, len, buf);
    assert_non_null(back);
    size_t used = allocated;
    protobuf_c_message_free_unpacked(back, &counting);
    free(buf);
    printf("%-28s wire %8zu B, decoded %9zu B, bound %9zu B (%.2fx)\n", m->descriptor->name, len,
           used, bound, (double)bound / (double)used);
    assert_true(bound >= used);
    assert_true(bound <= 8 * used);
    return bound;
}

static void test_sound_observation_batch(void **state)
{
    (void)state;
    enum { N = 2000 };
    Ibp__V1__ObservationBatch b = IBP__V1__OBSERVATION_BATCH__INIT;
    Ibp__V1__Observation *obs = calloc(N, sizeof *obs);
    Ibp__V1__Observation **ptrs = calloc(N, sizeof *ptrs);
    Ibp__V1__ResultKey *keys = calloc(N, sizeof *keys);
    char(*urls)[64] = calloc(N, sizeof *urls);
    for (size_t i = 0; i < N; i++) {
        ibp__v1__result_key__init(&keys[i]);
        ibp__v1__observation__init(&obs[i]);
        snprintf(urls[i], sizeof urls[i], "wss://rpc.example.net/chain-%zu", i);
        keys[i].check_name = "wss";
        keys[i].member = "Stake Plus";
        keys[i].domain = "rpc.example.net";
        keys[i].endpoint = urls[i];
        obs[i].key = &keys[i];
        obs[i].status = IBP__V1__STATUS__STATUS_DOWN;
        obs[i].check_time_ms = 1780000000000 + (int64_t)i;
        obs[i].error = i % 2 ? "connect timeout" : "";
        obs[i].data_json = i % 3 ? "{\"connect_ms\": 12}" : "";
        ptrs[i] = &obs[i];
    }
    b.batch_seq = 7;
    b.n_observations = N;
    b.observations = ptrs;
    check_sound(&b.base);
    free(obs);
    free(ptrs);
    free(keys);
    free(urls);
}

/* A snapshot shaped like consensus/snapshot_encode.c makes them: interned strings. */
static Ibp__V1__OfficialSnapshot *make_snapshot(size_t n_entries, size_t n_strings)
{
    Ibp__V1__OfficialSnapshot *s = calloc(1, sizeof *s);
    ibp__v1__official_snapshot__init(s);
    s->epoch = 42;
    s->n_strings = n_strings;
    s->strings = calloc(n_strings, sizeof *s->strings);
    for (size_t i = 0; i < n_strings; i++) {
        s->strings[i] = malloc(48); /* room for any size_t */
        snprintf(s->strings[i], 48, "string-%zu.example.net", i);
    }
    s->n_entries = n_entries;
    s->entries = calloc(n_entries, sizeof *s->entries);
    Ibp__V1__SnapshotEntry *e = calloc(n_entries, sizeof *e);
    for (size_t i = 0; i < n_entries; i++) {
        ibp__v1__snapshot_entry__init(&e[i]);
        e[i].check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
        e[i].check_name = 1;
        e[i].member = (uint32_t)(2 + i % 20);
        e[i].domain = (uint32_t)(22 + i % (n_strings - 30));
        e[i].endpoint_scheme = 3;
        e[i].endpoint_path = (uint32_t)(4 + i % 7);
        e[i].status = IBP__V1__STATUS__STATUS_UP;
        e[i].check_time_ms = 1780000000000 + (int64_t)i;
        s->entries[i] = &e[i];
    }
    return s;
}

static void free_snapshot(Ibp__V1__OfficialSnapshot *s)
{
    for (size_t i = 0; i < s->n_strings; i++)
        free(s->strings[i]);
    free(s->strings);
    free(s->n_entries ? s->entries[0] : NULL);
    free(s->entries);
    free(s);
}

static void test_sound_snapshot(void **state)
{
    (void)state;
    Ibp__V1__OfficialSnapshot *s = make_snapshot(20000, 2000);
    check_sound(&s->base);
    free_snapshot(s);
}

/* The largest snapshot consensus may publish (max_keys) passes the default limit. */
static void test_max_snapshot_fits(void **state)
{
    (void)state;
    Ibp__V1__OfficialSnapshot *s = make_snapshot(250000, 20000);
    size_t len = ibp__v1__official_snapshot__get_packed_size(s);
    uint8_t *buf = malloc(len);
    ibp__v1__official_snapshot__pack(s, buf);
    size_t bound = 0;
    ibp_err err = {0};
    assert_int_equal(ibp_pb_decoded_bound(&ibp__v1__official_snapshot__descriptor, buf, len,
                                          IBP_DECODED_MAX_DEFAULT, &bound, &err),
                     IBP_OK);
    printf("snapshot of 250000 keys: wire %zu B, bound %zu B (limit %u)\n", len, bound,
           IBP_DECODED_MAX_DEFAULT);
    assert_true(len < IBP_MESSAGE_MAX_DEFAULT);
    free(buf);
    free_snapshot(s);
}

static void test_sound_hits_and_event(void **state)
{
    (void)state;
    enum { ROWS = 500, VOTERS = 5 };
    Ibp__V1__HitBatch b = IBP__V1__HIT_BATCH__INIT;
    Ibp__V1__HitRow *rows = calloc(ROWS, sizeof *rows);
    Ibp__V1__HitRow **rp = calloc(ROWS, sizeof *rp);
    for (size_t i = 0; i < ROWS; i++) {
        ibp__v1__hit_row__init(&rows[i]);
        rows[i].date = "2026-11-27";
        rows[i].domain = "rpc.example.net";
        rows[i].member = "Stake Plus";
        rows[i].country_code = "DE";
        rows[i].asn = "AS3320";
        rows[i].network_name = "Deutsche Telekom AG";
        rows[i].country_name = "Germany";
        rows[i].hits = i * 13;
        rp[i] = &rows[i];
    }
    b.node = "dns1";
    b.flush_seq = 9;
    b.n_rows = ROWS;
    b.rows = rp;
    check_sound(&b.base);
    free(rows);
    free(rp);

    Ibp__V1__Event e = IBP__V1__EVENT__INIT;
    Ibp__V1__ResultKey k = IBP__V1__RESULT_KEY__INIT;
    Ibp__V1__Voter v[VOTERS], *vp[VOTERS];
    for (size_t i = 0; i < VOTERS; i++) {
        ibp__v1__voter__init(&v[i]);
        v[i].node = "mon1";
        vp[i] = &v[i];
    }
    k.check_name = "wss";
    k.member = "Stake Plus";
    e.id = "epoch-3-abcdef";
    e.key = &k;
    e.error = "timeout";
    e.n_voters = VOTERS;
    e.voters = vp;
    check_sound(&e.base);
}

/* 8 MiB of empty Observations: refused before decoding, early. */
static void test_hostile_batch(void **state)
{
    (void)state;
    size_t n = IBP_MESSAGE_MAX_DEFAULT;
    uint8_t *buf = malloc(n);
    for (size_t i = 0; i + 1 < n; i += 2) {
        buf[i] = 0x1a; /* field 3 (observations), length-delimited */
        buf[i + 1] = 0;
    }
    size_t bound = 0;
    ibp_err err = {0};
    assert_int_equal(ibp_pb_decoded_bound(&ibp__v1__observation_batch__descriptor, buf, n,
                                          IBP_DECODED_MAX_DEFAULT, &bound, &err),
                     IBP_E_TOO_LARGE);
    assert_true(bound > IBP_DECODED_MAX_DEFAULT);
    assert_non_null(strstr(err.msg, "would decode to more than"));
    /* Without a limit it says what decoding would take: hundreds of MB. */
    assert_int_equal(ibp_pb_decoded_bound(&ibp__v1__observation_batch__descriptor, buf, n, SIZE_MAX,
                                          &bound, &err),
                     IBP_OK);
    printf("8 MiB of empty observations: bound %zu MB\n", bound >> 20);
    assert_true(bound > 300u * 1024u * 1024u);
    free(buf);
}

static void expect_decode_error(const char *what, const uint8_t *buf, size_t len)
{
    size_t bound = 0;
    ibp_err err = {0};
    ibp_status st = ibp_pb_decoded_bound(&ibp__v1__observation_batch__descriptor, buf, len,
                                         SIZE_MAX, &bound, &err);
    printf("%-26s -> %s: %s\n", what, ibp_status_name(st), err.msg);
    assert_int_equal(st, IBP_E_DECODE);
    assert_non_null(strstr(err.msg, "at byte"));
}

static void test_malformed(void **state)
{
    (void)state;
    const uint8_t truncated_tag[] = {0x08, 0x01, 0x80};
    const uint8_t truncated_varint[] = {0x08, 0xff, 0xff};
    const uint8_t long_length[] = {0x1a, 0x10, 0x00};
    const uint8_t group[] = {0x1b};
    const uint8_t field_zero[] = {0x00, 0x01};
    const uint8_t fixed64_short[] = {0x09, 0x01, 0x02};
    expect_decode_error("truncated tag", truncated_tag, sizeof truncated_tag);
    expect_decode_error("truncated varint", truncated_varint, sizeof truncated_varint);
    expect_decode_error("length past the end", long_length, sizeof long_length);
    expect_decode_error("group wire type", group, sizeof group);
    expect_decode_error("field number 0", field_zero, sizeof field_zero);
    expect_decode_error("short fixed64", fixed64_short, sizeof fixed64_short);
    /* The empty message and unknown fields are fine. */
    size_t bound = 0;
    ibp_err err = {0};
    assert_int_equal(ibp_pb_decoded_bound(&ibp__v1__observation_batch__descriptor, group, 0,
                                          SIZE_MAX, &bound, &err),
                     IBP_OK);
    const uint8_t unknown[] = {0xf8, 0x07, 0x01, 0x82, 0x08, 0x02, 'h', 'i'};
    assert_int_equal(ibp_pb_decoded_bound(&ibp__v1__observation_batch__descriptor, unknown,
                                          sizeof unknown, SIZE_MAX, &bound, &err),
                     IBP_OK);
}

/* The verifier refuses a signed payload that would decode too large, and counts it. */
static void test_verifier_refuses(void **state)
{
    (void)state;
    ibp_log_set_level(IBP_LOG_OFF);
    char *dir = test_tmpdir();
    char path[4200];
    ibp_err err = {0};
    ibp_key key;
    ibp_roster *roster = NULL;
    ibp_signer *mon = NULL;
    ibp_verifier *v = NULL;
    assert_int_equal(ibp_key_generate(&key), IBP_OK);
    assert_int_equal(ibp_roster_new(&roster), IBP_OK);
    assert_int_equal(ibp_roster_add(roster, "mon1", key.pk, IBP_ROLE_MONITOR, &err), IBP_OK);
    snprintf(path, sizeof path, "%s/mon1.seq", dir);
    assert_int_equal(ibp_signer_new("mon1", &key, path, &mon, &err), IBP_OK);
    ibp_verifier_opts o;
    ibp_verifier_opts_init(&o);
    assert_int_equal(o.max_decoded_bytes, IBP_DECODED_MAX_DEFAULT);
    assert_int_equal(ibp_verifier_new(roster, &o, &v), IBP_OK);

    size_t n = IBP_MESSAGE_MAX_DEFAULT - 4096;
    uint8_t *payload = malloc(n);
    for (size_t i = 0; i + 1 < n; i += 2) {
        payload[i] = 0x1a;
        payload[i + 1] = 0;
    }
    uint8_t *env = NULL;
    size_t env_len = 0;
    assert_int_equal(ibp_signer_seal_bytes(mon,
                                           IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH,
                                           payload, n, 1780000000000, &env, &env_len, NULL, &err),
                     IBP_OK);
    ibp_verified vm = {0};
    assert_int_equal(ibp_verifier_check(v, env, env_len, &vm, &err), IBP_E_TOO_LARGE);
    printf("verifier: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "would decode to more than"));
    assert_int_equal(ibp_verifier_rejected(v, IBP_E_TOO_LARGE), 1);
    free(env);

    /* A normal batch from the same signer still passes afterwards. */
    const uint8_t small[] = {0x08, 0x01};
    assert_int_equal(
        ibp_signer_seal_bytes(mon, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH, small,
                              sizeof small, 1780000000001, &env, &env_len, NULL, &err),
        IBP_OK);
    assert_int_equal(ibp_verifier_check(v, env, env_len, &vm, &err), IBP_OK);
    ibp_verified_clear(&vm);
    free(env);
    free(payload);
    ibp_verifier_free(v);
    ibp_signer_free(mon);
    ibp_roster_free(roster);
    ibp_key_wipe(&key);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sound_observation_batch), cmocka_unit_test(test_sound_snapshot),
        cmocka_unit_test(test_max_snapshot_fits),       cmocka_unit_test(test_sound_hits_and_event),
        cmocka_unit_test(test_hostile_batch),           cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_verifier_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
