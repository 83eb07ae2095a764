/*
 * Unit tests: the wire helpers of the checks: WebSocket frames and the
 * upgrade's checks (RFC 6455, with its own examples), ICMP echo packets, and
 * the scheduler's due-time queue.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ibp/check_sched.h"
#include "ibp/icmp_echo.h"
#include "ibp/ws_frame.h"

static void test_accept_key(void **state)
{
    (void)state;
    char out[29];
    ibp_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out); /* RFC 6455 section 1.3 */
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_upgrade(void **state)
{
    (void)state;
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    char why[256];
    const char *ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n"
                     "Connection: keep-alive, Upgrade\r\n"
                     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    assert_int_equal(ibp_ws_head_end(ok, strlen(ok)), strlen(ok));
    assert_int_equal(ibp_ws_head_end(ok, strlen(ok) - 1), 0);
    assert_true(ibp_ws_upgrade_ok(ok, strlen(ok), key, why, sizeof why));
    struct {
        const char *head, *want;
    } bad[] = {
        {"HTTP/1.1 403 Forbidden\r\n\r\n", "HTTP 403 Forbidden"},
        {"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.1 response"},
        {"HTTP/1.1 101 OK\r\nConnection: upgrade\r\nSec-WebSocket-Accept: "
         "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
         "Upgrade: websocket"},
        {"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: close\r\n\r\n",
         "Connection: upgrade"},
        {"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
         "Sec-WebSocket-Accept: AAAA\r\n\r\n",
         "wrong Sec-WebSocket-Accept"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(ibp_ws_upgrade_ok(bad[i].head, strlen(bad[i].head), key, why, sizeof why));
        if (!strstr(why, bad[i].want))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why, bad[i].want);
    }
}

static void test_frames(void **state)
{
    (void)state;
    /* RFC 6455 section 5.7: a masked "Hello" from a client. */
    const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t buf[64];
    size_t hl = ibp_ws_header_write(IBP_WS_TEXT, 5, mask, buf);
    memcpy(buf + hl, "Hello", 5);
    ibp_ws_mask(buf + hl, 5, mask, 0);
    const uint8_t want[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    assert_int_equal(hl + 5, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    ibp_ws_header h;
    char why[128];
    for (size_t n = 0; n < 6; n++) /* every prefix of the header needs more bytes */
        assert_int_equal(ibp_ws_header_read(buf, n, &h, why, sizeof why), 0);
    assert_int_equal(ibp_ws_header_read(buf, sizeof want, &h, why, sizeof why), 6);
    assert_true(h.fin && h.masked && h.opcode == IBP_WS_TEXT && h.length == 5);
    ibp_ws_mask(buf + 6, 5, h.mask, 0);
    assert_memory_equal(buf + 6, "Hello", 5);

    /* 16- and 64-bit lengths, unmasked (a server's frame). */
    assert_int_equal(ibp_ws_header_write(IBP_WS_BINARY, 256, NULL, buf), 4);
    assert_int_equal(ibp_ws_header_read(buf, 4, &h, why, sizeof why), 4);
    assert_true(h.length == 256 && !h.masked);
    assert_int_equal(ibp_ws_header_write(IBP_WS_TEXT, 70000, NULL, buf), 10);
    assert_int_equal(ibp_ws_header_read(buf, 9, &h, why, sizeof why), 0);
    assert_int_equal(ibp_ws_header_read(buf, 10, &h, why, sizeof why), 10);
    assert_true(h.length == 70000);

    /* Protocol errors. */
    const uint8_t rsv[] = {0xC1, 0x00};
    assert_int_equal(ibp_ws_header_read(rsv, 2, &h, why, sizeof why), -1);
    assert_non_null(strstr(why, "reserved"));
    const uint8_t op[] = {0x83, 0x00};
    assert_int_equal(ibp_ws_header_read(op, 2, &h, why, sizeof why), -1);
    assert_non_null(strstr(why, "opcode"));
    const uint8_t ctl[] = {0x89, 0x7E, 0x00, 0x80}; /* a 128-byte ping */
    assert_int_equal(ibp_ws_header_read(ctl, 4, &h, why, sizeof why), -1);
    const uint8_t frag[] = {0x08, 0x00}; /* a fragmented close */
    assert_int_equal(ibp_ws_header_read(frag, 2, &h, why, sizeof why), -1);
    const uint8_t big[] = {0x81, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(ibp_ws_header_read(big, 10, &h, why, sizeof why), -1);
    const uint8_t loose[] = {0x81, 0x7E, 0x00, 0x05}; /* 5 in 16 bits */
    assert_int_equal(ibp_ws_header_read(loose, 4, &h, why, sizeof why), -1);
    assert_non_null(strstr(why, "minimally"));
}

static void test_icmp(void **state)
{
    (void)state;
    /* RFC 1071's example: the sum of 00 01 f2 03 f4 f5 f6 f7 is ddf2, so the checksum is 220d. */
    const uint8_t d[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    assert_int_equal(ibp_icmp_checksum(d, sizeof d), 0x220d);
    uint8_t pkt[128];
    size_t n = ibp_icmp_echo_build(false, 0x1234, 7, 32, pkt, sizeof pkt);
    assert_int_equal(n, 40);
    assert_int_equal(pkt[0], 8);
    assert_int_equal(ibp_icmp_checksum(pkt, n), 0); /* a correct checksum sums to zero */
    assert_int_equal(ibp_icmp_echo_build(false, 1, 1, 32, pkt, 39), 0);

    /* The reply: type 0, same id and seq; after a 20-byte IPv4 header on a raw socket. */
    uint8_t reply[128] = {0x45};
    memcpy(reply + 20, pkt, n);
    reply[20] = 0;
    uint16_t seq = 0;
    assert_true(ibp_icmp_echo_reply(false, true, reply, 20 + n, true, 0x1234, &seq));
    assert_int_equal(seq, 7);
    assert_false(ibp_icmp_echo_reply(false, true, reply, 20 + n, true, 0x1235, &seq));
    assert_true(ibp_icmp_echo_reply(false, false, reply + 20, n, false, 0x9999, &seq));
    assert_false(ibp_icmp_echo_reply(false, true, reply, 20 + 4, true, 0x1234, &seq));
    reply[20] = 8; /* our own request looped back is not a reply */
    assert_false(ibp_icmp_echo_reply(false, true, reply, 20 + n, true, 0x1234, &seq));
    reply[20] = 3; /* destination unreachable */
    assert_false(ibp_icmp_echo_reply(false, true, reply, 20 + n, true, 0x1234, &seq));

    n = ibp_icmp_echo_build(true, 0x0102, 3, 0, pkt, sizeof pkt);
    assert_int_equal(n, 8);
    assert_int_equal(pkt[0], 128);
    pkt[0] = 129;
    assert_true(ibp_icmp_echo_reply(true, false, pkt, n, true, 0x0102, &seq));
    assert_int_equal(seq, 3);
}

static void test_sched(void **state)
{
    (void)state;
    ibp_check_sched s = {0};
    int items[8];
    const int64_t due[8] = {50, 10, 30, 10, 70, 0, 30, 20};
    for (int i = 0; i < 8; i++)
        assert_int_equal(ibp_check_sched_push(&s, due[i], &items[i]), IBP_OK);
    assert_int_equal(ibp_check_sched_due(&s, 25), 4);
    assert_ptr_equal(ibp_check_sched_peek(&s)->item, &items[5]);
    /* Earliest first; equal due times in the order they were added. */
    const int order[8] = {5, 1, 3, 7, 2, 6, 0, 4};
    for (int i = 0; i < 8; i++) {
        ibp_check_sched_entry e;
        assert_true(ibp_check_sched_pop(&s, &e));
        assert_ptr_equal(e.item, &items[order[i]]);
    }
    ibp_check_sched_entry e;
    assert_false(ibp_check_sched_pop(&s, &e));
    assert_null(ibp_check_sched_peek(&s));
    for (int i = 0; i < 1000; i++) /* grows */
        assert_int_equal(ibp_check_sched_push(&s, (i * 7919) % 1000, &items[0]), IBP_OK);
    int64_t last = -1;
    while (ibp_check_sched_pop(&s, &e)) {
        assert_true(e.due_ms >= last);
        last = e.due_ms;
    }
    ibp_check_sched_free(&s);
    ibp_check_sched_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key), cmocka_unit_test(test_upgrade),
        cmocka_unit_test(test_frames),     cmocka_unit_test(test_icmp),
        cmocka_unit_test(test_sched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
