/*
 * Unit tests: the Event codec (proto/codec_event.c): status and override
 * events round-trip from bytes and from a verified envelope, and each
 * receive check refuses a malformed Event.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ibp/codec_event.h"
#include "ibp/envelope.h"
#include "ibp/ibp.pb-c.h"

static const ibp_codec_voter voters[] = {{"mon-1", 10, 20, IBP_RESULT_DOWN},
                                         {"mon-2", 11, 21, IBP_RESULT_DOWN}};

static ibp_codec_event sample(void)
{
    return (ibp_codec_event){
        .id = "3-0123456789abcdef0123456789abcdef",
        .kind = IBP_CODEC_EVENT_STATUS,
        .key = {IBP_CHECK_ENDPOINT, "wss", "alice", "rpc.example.org",
                "wss://rpc.example.org/polkadot", true},
        .status = IBP_RESULT_DOWN,
        .error = "connection refused",
        .data_json = "{\"ms\":3}",
        .time_ms = 1700000000000,
        .epoch = 3,
        .voters = voters,
        .nvoters = 2,
    };
}

static ibp_status round_trip(const ibp_codec_event *e, ibp_codec_event *d, ibp_err *err)
{
    uint8_t *buf;
    size_t len;
    assert_int_equal(ibp_codec_event_encode(e, &buf, &len, err), IBP_OK);
    ibp_status st = ibp_codec_event_decode(buf, len, d, err);
    free(buf);
    return st;
}

static void test_round_trip(void **state)
{
    (void)state;
    ibp_codec_event e = sample(), d;
    ibp_err err;
    if (round_trip(&e, &d, &err) != IBP_OK)
        fail_msg("decode: %s", err.msg);
    assert_string_equal(d.id, e.id);
    assert_int_equal(d.kind, IBP_CODEC_EVENT_STATUS);
    assert_int_equal(ibp_codec_key_cmp(&d.key, &e.key), 0);
    assert_int_equal(d.status, IBP_RESULT_DOWN);
    assert_string_equal(d.error, "connection refused");
    assert_string_equal(d.data_json, "{\"ms\":3}");
    assert_int_equal(d.time_ms, 1700000000000);
    assert_int_equal(d.epoch, 3);
    assert_int_equal(d.nvoters, 2);
    assert_string_equal(d.voters[1].node, "mon-2");
    assert_int_equal(d.voters[1].local_seq, 11);
    assert_int_equal(d.voters[1].batch_seq, 21);
    assert_int_equal(d.voters[1].status, IBP_RESULT_DOWN);
    ibp_codec_event_clear(&d);
    ibp_codec_event_clear(&d);

    /* An override event: only the member in its key matters. */
    e = (ibp_codec_event){.id = "4-x",
                          .kind = IBP_CODEC_EVENT_OVERRIDE,
                          .key = {.check_name = "override", .member = "alice"},
                          .status = IBP_RESULT_UP,
                          .error = "back"};
    assert_int_equal(round_trip(&e, &d, &err), IBP_OK);
    assert_int_equal(d.kind, IBP_CODEC_EVENT_OVERRIDE);
    assert_string_equal(d.key.member, "alice");
    assert_string_equal(d.key.domain, "");
    assert_int_equal(d.nvoters, 0);
    ibp_codec_event_clear(&d);

    /* A removed event: a result key, the status it had, no voters. */
    e = sample();
    e.kind = IBP_CODEC_EVENT_REMOVED;
    e.voters = NULL;
    e.nvoters = 0;
    assert_int_equal(round_trip(&e, &d, &err), IBP_OK);
    assert_int_equal(d.kind, IBP_CODEC_EVENT_REMOVED);
    assert_int_equal(d.status, IBP_RESULT_DOWN);
    assert_string_equal(d.key.endpoint, e.key.endpoint);
    assert_int_equal(d.nvoters, 0);
    ibp_codec_event_clear(&d);
    e.key.endpoint = ""; /* its key is checked like a status event's */
    assert_int_equal(round_trip(&e, &d, &err), IBP_E_INVAL);
    assert_non_null(strstr(err.msg, "an endpoint"));

    /* The bytes protobuf-c makes of the same message (what replicas sent before the codec). */
    e = sample();
    {
        Ibp__V1__ResultKey k = IBP__V1__RESULT_KEY__INIT;
        k.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
        k.check_name = "wss";
        k.member = "alice";
        k.domain = "rpc.example.org";
        k.endpoint = "wss://rpc.example.org/polkadot";
        k.ipv6 = true;
        Ibp__V1__Voter v[2] = {IBP__V1__VOTER__INIT, IBP__V1__VOTER__INIT};
        Ibp__V1__Voter *vp[2] = {&v[0], &v[1]};
        for (int i = 0; i < 2; i++) {
            v[i].node = (char *)voters[i].node;
            v[i].local_seq = voters[i].local_seq;
            v[i].batch_seq = voters[i].batch_seq;
            v[i].status = IBP__V1__STATUS__STATUS_DOWN;
        }
        Ibp__V1__Event pe = IBP__V1__EVENT__INIT;
        pe.id = (char *)e.id;
        pe.kind = IBP__V1__EVENT_KIND__EVENT_KIND_STATUS;
        pe.key = &k;
        pe.status = IBP__V1__STATUS__STATUS_DOWN;
        pe.error = "connection refused";
        pe.data_json = "{\"ms\":3}";
        pe.time_ms = 1700000000000;
        pe.epoch = 3;
        pe.voters = vp;
        pe.n_voters = 2;
        uint8_t ref[512], *mine;
        size_t rlen = ibp__v1__event__pack(&pe, ref), mlen;
        assert_int_equal(ibp_codec_event_encode(&e, &mine, &mlen, &err), IBP_OK);
        assert_int_equal(mlen, rlen);
        assert_memory_equal(mine, ref, rlen);
        free(mine);
    }

    /* From a verified envelope. */
    uint8_t *buf;
    size_t len;
    assert_int_equal(ibp_codec_event_encode(&e, &buf, &len, &err), IBP_OK);
    Ibp__V1__Event *pb = ibp__v1__event__unpack(NULL, len, buf);
    Ibp__V1__Envelope env = IBP__V1__ENVELOPE__INIT;
    env.type = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT;
    ibp_verified vm = {&env, &pb->base, NULL};
    assert_int_equal(ibp_codec_event_decode_verified(&vm, &d, &err), IBP_OK);
    assert_ptr_equal(d.id, pb->id);
    ibp_codec_event_clear(&d);
    env.type = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH;
    assert_int_equal(ibp_codec_event_decode_verified(&vm, &d, &err), IBP_E_INVAL);
    ibp__v1__event__free_unpacked(pb, NULL);
    free(buf);
}

static void expect_refused(const ibp_codec_event *e, const char *detail)
{
    ibp_codec_event d;
    ibp_err err = {0};
    ibp_status st = round_trip(e, &d, &err);
    if (st != IBP_E_INVAL)
        fail_msg("%s: got %s (%s)", detail, ibp_status_name(st), err.msg);
    if (!strstr(err.msg, detail))
        fail_msg("\"%s\" does not contain \"%s\"", err.msg, detail);
    assert_null(d.owned);
}

static void test_refuses_malformed(void **state)
{
    (void)state;
    ibp_codec_event e;
    e = sample();
    e.id = "";
    expect_refused(&e, "Event without an id");
    e = sample();
    e.key.member = "";
    expect_refused(&e, "has no key or no member");
    e = sample();
    e.status = IBP_RESULT_NONE;
    expect_refused(&e, "has status 0 (neither up nor down)");
    e = sample();
    e.kind = IBP_CODEC_EVENT_NONE;
    expect_refused(&e, "has kind 0");
    e = sample();
    e.key.type = (ibp_check_type)0;
    expect_refused(&e, "has check type 0");
    e = sample();
    e.key.type = IBP_CHECK_SITE;
    expect_refused(&e, "a site key has no a domain and has no an endpoint");
    e = sample();
    e.key.type = IBP_CHECK_DOMAIN;
    expect_refused(&e, "a domain key needs a domain and has no an endpoint");
    e = sample();
    e.key.endpoint = "";
    expect_refused(&e, "an endpoint");
    ibp_codec_voter bad[] = {{"mon-1", 1, 1, IBP_RESULT_NONE}};
    e = sample();
    e.voters = bad;
    e.nvoters = 1;
    expect_refused(&e, "voter 0 has status 0");

    /* Bytes that are not an Event, and a missing key. */
    static const uint8_t junk[] = {0x1a, 0x7f};
    ibp_codec_event d;
    ibp_err err;
    assert_int_equal(ibp_codec_event_decode(junk, sizeof junk, &d, &err), IBP_E_PAYLOAD_DECODE);
    Ibp__V1__Event pb = IBP__V1__EVENT__INIT;
    pb.id = "x";
    pb.status = IBP__V1__STATUS__STATUS_UP;
    pb.kind = IBP__V1__EVENT_KIND__EVENT_KIND_OVERRIDE;
    uint8_t buf[64];
    size_t len = ibp__v1__event__pack(&pb, buf);
    assert_int_equal(ibp_codec_event_decode(buf, len, &d, &err), IBP_E_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refuses_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
