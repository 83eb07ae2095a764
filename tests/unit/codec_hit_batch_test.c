/*
 * Unit tests: the HitBatch codec (proto/codec_hit_batch.c): round trip from
 * bytes and from a verified envelope, the row size bound, and refusal of a
 * batch with flush_seq 0, a date that is not a calendar day, and junk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ibp/codec_hit_batch.h"
#include "ibp/envelope.h"
#include "ibp/ibp.pb-c.h"

static const ibp_codec_hit_row rows[] = {
    {"2026-12-04", "rpc.example.org", "Stake Plus", "DE", "AS24940", "Hetzner Online GmbH",
     "Germany", false, 12},
    {"2024-02-29", "rpc.example.org", "(none)", "??", "", "", "", true, 1},
};

static ibp_status round_trip(const ibp_codec_hit_batch *b, ibp_codec_hit_batch *d, ibp_err *err)
{
    uint8_t *buf;
    size_t len;
    assert_int_equal(ibp_codec_hit_batch_encode(b, &buf, &len, err), IBP_OK);
    ibp_status st = ibp_codec_hit_batch_decode(buf, len, d, err);
    free(buf);
    return st;
}

static void test_round_trip(void **state)
{
    (void)state;
    ibp_codec_hit_batch b = {.node = "dns-1", .flush_seq = 7, .rows = rows, .nrows = 2}, d;
    ibp_err err;
    uint8_t *buf;
    size_t len;
    assert_int_equal(ibp_codec_hit_batch_encode(&b, &buf, &len, &err), IBP_OK);
    assert_true(len <= 32 + ibp_codec_hit_row_size(&rows[0]) + ibp_codec_hit_row_size(&rows[1]));
    free(buf);
    if (round_trip(&b, &d, &err) != IBP_OK)
        fail_msg("decode: %s", err.msg);
    assert_string_equal(d.node, "dns-1");
    assert_int_equal(d.flush_seq, 7);
    assert_int_equal(d.nrows, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(d.rows[i].date, rows[i].date);
        assert_string_equal(d.rows[i].domain, rows[i].domain);
        assert_string_equal(d.rows[i].member, rows[i].member);
        assert_string_equal(d.rows[i].country_code, rows[i].country_code);
        assert_string_equal(d.rows[i].asn, rows[i].asn);
        assert_string_equal(d.rows[i].network_name, rows[i].network_name);
        assert_string_equal(d.rows[i].country_name, rows[i].country_name);
        assert_int_equal(d.rows[i].ipv6, rows[i].ipv6);
        assert_int_equal(d.rows[i].hits, rows[i].hits);
    }
    ibp_codec_hit_batch_clear(&d);
    ibp_codec_hit_batch_clear(&d);

    assert_int_equal(ibp_codec_hit_batch_encode(&b, &buf, &len, &err), IBP_OK);
    Ibp__V1__HitBatch *pb = ibp__v1__hit_batch__unpack(NULL, len, buf);
    Ibp__V1__Envelope env = IBP__V1__ENVELOPE__INIT;
    env.type = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH;
    ibp_verified vm = {&env, &pb->base, NULL};
    assert_int_equal(ibp_codec_hit_batch_decode_verified(&vm, &d, &err), IBP_OK);
    assert_ptr_equal(d.node, pb->node);
    assert_int_equal(d.nrows, 2);
    ibp_codec_hit_batch_clear(&d);
    env.type = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT;
    assert_int_equal(ibp_codec_hit_batch_decode_verified(&vm, &d, &err), IBP_E_INVAL);
    ibp__v1__hit_batch__free_unpacked(pb, NULL);
    free(buf);
}

static void test_refuses_malformed(void **state)
{
    (void)state;
    ibp_codec_hit_batch b = {.node = "dns-1", .flush_seq = 0, .rows = rows, .nrows = 2}, d;
    ibp_err err;
    assert_int_equal(round_trip(&b, &d, &err), IBP_E_INVAL);
    assert_non_null(strstr(err.msg, "HitBatch of dns-1 has flush_seq 0"));
    assert_null(d.owned);
    static const char *const bad_dates[] = {"",           "2026-1-04",  "2026-13-01",
                                            "2026-02-30", "2023-02-29", "2026-12-04x",
                                            "2026/12/04", "1900-02-29"};
    for (size_t i = 0; i < sizeof bad_dates / sizeof bad_dates[0]; i++) {
        ibp_codec_hit_row r = rows[0];
        r.date = bad_dates[i];
        b = (ibp_codec_hit_batch){.node = "dns-1", .flush_seq = 1, .rows = &r, .nrows = 1};
        if (round_trip(&b, &d, &err) != IBP_E_INVAL || !strstr(err.msg, "is not YYYY-MM-DD"))
            fail_msg("date '%s' was not refused (%s)", bad_dates[i], err.msg);
    }
    static const uint8_t junk[] = {0x10, 0x80};
    assert_int_equal(ibp_codec_hit_batch_decode(junk, sizeof junk, &d, &err), IBP_E_PAYLOAD_DECODE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refuses_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
