/*
 * The NATS usage sink with the usage journal and a real nats-server
 * (DESIGN.md §7), on private servers (the test stops nats-server):
 *   - hits recorded -> flushed -> sealed and published to ibp.hits.dns1 ->
 *     PubAck -> the journal entry is removed; the message carries the Ibp-*
 *     headers and Nats-Msg-Id "dns1-<flush_seq>", and its envelope verifies
 *     and decodes to the delta;
 *   - with nats-server down, deltas wait in the journal (also across a close
 *     and reopen of the usage) and go out in order, once each, when it is
 *     back.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "ibp/bus.h"
#include "ibp/usage.h"
#include "ibp/usage_nats_sink.h"
#include "persist_testlib.h"

typedef struct fx {
    ibp_testenv_private srv;
    pt_keys k;
    natsConnection *nc; /* the sink's: reconnects for ever */
    jsCtx *js;
    ibp_usage_sink sink;
    ibp_usage *u;
    char work[1200];
    ibp_verifier *verifier;
} fx;

static fx F;

/* A fixed day, so every hit of the test lands on one date. */
static int64_t fixed_clock(void *user)
{
    (void)user;
    return INT64_C(1767225600000) + 3600000; /* 2026-01-01T01:00:00Z */
}

static void usage_open(void)
{
    ibp_usage_opts o;
    ibp_usage_opts_init(&o);
    o.node_id = PT_DNS;
    o.work_dir = F.work;
    o.sink = &F.sink;
    o.clock = fixed_clock;
    o.retry_min_ms = 10;
    o.retry_max_ms = 100;
    ibp_err e;
    ibp_err_clear(&e);
    if (ibp_usage_open(&o, &F.u, &e) != IBP_OK)
        fail_msg("usage open: %s", e.msg);
}

static int setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof F);
    if (ibp_testenv_private_start(&F.srv) != 0)
        return -1;
    pt_keys_init(&F.k);
    snprintf(F.work, sizeof F.work, "%s/usage", F.k.dir);
    if (mkdir(F.work, 0700) != 0)
        return -1;
    ibp_err e;
    ibp_err_clear(&e);
    if (ibp_bus_connect_url(F.srv.env.nats_auth_url, "it-usage-sink", &F.nc, &e) != IBP_OK) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    natsConnection_JetStream(&F.js, F.nc, NULL);
    if (ibp_bus_ensure_streams(F.js, NULL, &e) != IBP_OK) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    ibp_usage_nats_sink_opts so;
    ibp_usage_nats_sink_opts_init(&so);
    so.nc = F.nc;
    so.signer = F.k.s_dns;
    so.publish_timeout_ms = 2000;
    if (ibp_usage_nats_sink_open(&so, &F.sink, &e) != IBP_OK) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    ibp_verifier_opts vo;
    ibp_verifier_opts_init(&vo);
    ibp_verifier_new(F.k.roster, &vo, &F.verifier);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ibp_err e;
    ibp_usage_close(F.u, &e);
    ibp_usage_sink_close(&F.sink);
    ibp_verifier_free(F.verifier);
    jsCtx_Destroy(F.js);
    natsConnection_Destroy(F.nc);
    pt_keys_free(&F.k);
    ibp_testenv_private_stop(&F.srv);
    nats_Close();
    return 0;
}

static void record(int n, const char *domain)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(
            ibp_usage_record_dns_hit(F.u, i % 3 == 0, "192.0.2.1", domain, "Stake Plus"), IBP_OK);
}

/* Reads stream message seq: checks headers, verifies, returns (flush_seq, hits). */
static void read_msg(uint64_t seq, uint64_t *flush_seq, uint64_t *hits)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetMsg(&m, F.js, "HITS", seq, NULL, &jerr);
    if (s != NATS_OK)
        fail_msg("js_GetMsg HITS %" PRIu64 ": %s", seq, natsStatus_GetText(s));
    const char *v = NULL;
    assert_int_equal(natsMsgHeader_Get(m, "Ibp-Type", &v), NATS_OK);
    assert_string_equal(v, "HitBatch");
    assert_int_equal(natsMsgHeader_Get(m, "Ibp-Signer", &v), NATS_OK);
    assert_string_equal(v, PT_DNS);
    assert_string_equal(natsMsg_GetSubject(m), "ibp.hits.dns1");
    ibp_verified vm = {0};
    ibp_err e;
    ibp_err_clear(&e);
    if (ibp_verifier_check_stateless(F.verifier, (const uint8_t *)natsMsg_GetData(m),
                                     (size_t)natsMsg_GetDataLength(m), &vm, &e) != IBP_OK)
        fail_msg("verify HITS %" PRIu64 ": %s", seq, e.msg);
    const Ibp__V1__HitBatch *hb = (const Ibp__V1__HitBatch *)vm.payload;
    assert_string_equal(hb->node, PT_DNS);
    char want_id[64];
    snprintf(want_id, sizeof want_id, "dns1-%" PRIu64, hb->flush_seq);
    assert_int_equal(natsMsgHeader_Get(m, "Nats-Msg-Id", &v), NATS_OK);
    assert_string_equal(v, want_id);
    *flush_seq = hb->flush_seq;
    *hits = 0;
    for (size_t i = 0; i < hb->n_rows; i++)
        *hits += hb->rows[i]->hits;
    ibp_verified_clear(&vm);
    natsMsg_Destroy(m);
}

static void wait_connected(void)
{
    long long end = pt_now_ms() + 20000;
    while (natsConnection_Status(F.nc) != NATS_CONN_STATUS_CONNECTED) {
        if (pt_now_ms() > end)
            fail_msg("the sink's connection did not come back");
        pt_sleep_ms(20);
    }
}

static void test_publish_and_outage(void **state)
{
    (void)state;
    ibp_err e;
    ibp_err_clear(&e);
    ibp_usage_stats st;
    usage_open();

    /* 1. Recorded, flushed, published, confirmed, removed. */
    record(10, "rpc.ibp.network");
    assert_int_equal(ibp_usage_flush(F.u, &e), IBP_OK);
    ibp_usage_stats_get(F.u, &st);
    assert_int_equal(st.journal.pending, 0);
    assert_int_equal(st.journal.delivered, 1);
    assert_int_equal(pt_stream_last_seq(F.js, "HITS"), 1);
    uint64_t fs = 0, hits = 0;
    read_msg(1, &fs, &hits);
    assert_int_equal(fs, 1);
    assert_int_equal(hits, 10);

    /* 2. nats-server down: deltas wait in the journal. */
    assert_int_equal(ibp_testenv_private_signal(&F.srv, IBP_TESTENV_NATS, SIGTERM), 0);
    for (int i = 0; i < 3; i++) {
        record(5 + i, "sys.ibp.network");
        assert_int_equal(ibp_usage_flush(F.u, &e), IBP_OK); /* journaled, not delivered */
    }
    ibp_usage_stats_get(F.u, &st);
    printf("NATS down: pending %" PRIu64 ", deliver errors %" PRIu64 "\n", st.journal.pending,
           st.journal.deliver_errors);
    assert_int_equal(st.journal.pending, 3);
    assert_true(st.journal.deliver_errors >= 1);
    assert_int_not_equal(ibp_usage_deliver(F.u, &e), IBP_OK);
    printf("deliver while down: %s\n", e.msg);

    /* ... also across a restart of the dns node: close, reopen. */
    record(4, "a.example");
    ibp_usage_close(F.u, &e); /* offers the entries once more: NATS is still away */
    F.u = NULL;
    usage_open();
    ibp_usage_stats_get(F.u, &st);
    assert_int_equal(st.journal.pending, 4);

    /* 3. Back: they go out in order, once each. */
    assert_int_equal(ibp_testenv_private_restart(&F.srv, IBP_TESTENV_NATS), 0);
    wait_connected();
    ibp_err_clear(&e);
    ibp_status ds = IBP_E_NATS;
    long long end = pt_now_ms() + 20000;
    while ((ds = ibp_usage_deliver(F.u, &e)) != IBP_OK && pt_now_ms() < end)
        pt_sleep_ms(100); /* JetStream may need a moment after the restart */
    if (ds != IBP_OK)
        fail_msg("deliver after NATS returned: %s", e.msg);
    ibp_usage_stats_get(F.u, &st);
    assert_int_equal(st.journal.pending, 0);
    assert_int_equal(pt_stream_last_seq(F.js, "HITS"), 5);
    uint64_t want_hits[5] = {10, 5, 6, 7, 4};
    for (uint64_t seq = 1; seq <= 5; seq++) {
        read_msg(seq, &fs, &hits);
        assert_int_equal(fs, seq); /* in flush order */
        assert_int_equal(hits, want_hits[seq - 1]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_and_outage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
