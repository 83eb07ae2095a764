/*
 * Integration: the monitor publisher against a private nats-server that is
 * killed (-9) and restarted, then frozen (SIGSTOP) past the PubAck timeout
 * and thawed, while observations keep changing. Afterwards the monitor's
 * subject on LOCAL must read, through a stateful verifier, as one strictly
 * increasing sequence (nothing reordered, nothing stored twice), and the
 * observations it carries, applied in order, must end in exactly the local
 * store's state (nothing lost).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ibp/bus.h"
#include "ibp/log.h"
#include "ibp/monitor_publisher.h"
#include "ibp/roster.h"
#include "ibp/subject.h"
#include "testenv.h"

#define KEYS 40
#define NODE "mon7"

static ibp_testenv_private servers;
static char dir[1024];

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void must(ibp_status st, const ibp_err *err)
{
    if (st != IBP_OK)
        fail_msg("%s: %s", ibp_status_name(st), err ? err->msg : "");
}

/* Observation number gen of key i: status and check time change every time. */
static void observe(ibp_store *store, int i, int64_t gen)
{
    char domain[64];
    snprintf(domain, sizeof domain, "D%d.Example.net.", i); /* normalised on the wire */
    ibp_result_key k = {IBP_CHECK_ENDPOINT, "wss", "Member", domain, "wss://x.example/rpc", false};
    ibp_result *r;
    ibp_err err;
    must(ibp_result_new(&k, gen % 2 == 0, 1700000000000 + gen, "", "", &r, &err), &err);
    must(ibp_store_update_local(store, r, &err), &err);
    ibp_result_free(r);
}

/* The last check time seen per key while reading the stream. */
typedef struct reader {
    ibp_verifier *v;
    int64_t last[KEYS];
    uint64_t batches, heartbeats, rejected;
} reader;

static void read_stream(jsCtx *js, reader *rd)
{
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    jsSubOptions_Init(&so);
    so.Stream = IBP_STREAM_LOCAL;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    assert_int_equal(js_SubscribeSync(&sub, js, "ibp.local." NODE, NULL, &so, &jerr), NATS_OK);
    for (;;) {
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, sub, 3000);
        if (s == NATS_TIMEOUT)
            break;
        assert_int_equal(s, NATS_OK);
        jsMsgMetaData *meta = NULL;
        assert_int_equal(natsMsg_GetMetaData(&meta, m), NATS_OK);
        uint64_t pending = meta->NumPending;
        jsMsgMetaData_Destroy(meta);
        ibp_verified vm = {0};
        ibp_err err = {0};
        if (ibp_verifier_check(rd->v, (const uint8_t *)natsMsg_GetData(m),
                               (size_t)natsMsg_GetDataLength(m), &vm, &err) != IBP_OK) {
            printf("rejected: %s\n", err.msg);
            rd->rejected++;
        } else if (vm.envelope->type == IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT) {
            rd->heartbeats++;
        } else {
            const Ibp__V1__ObservationBatch *b = (const Ibp__V1__ObservationBatch *)vm.payload;
            rd->batches++;
            for (size_t k = 0; k < b->n_observations; k++) {
                int i = -1;
                const char *d = b->observations[k]->key->domain;
                if (sscanf(d, "d%d.example.net", &i) != 1 || i < 0 || i >= KEYS)
                    fail_msg("unexpected domain '%s' (not normalised?)", d);
                rd->last[i] = b->observations[k]->check_time_ms;
            }
        }
        ibp_verified_clear(&vm);
        natsMsg_Destroy(m);
        if (pending == 0)
            break;
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
}

static void test_reconnects(void **state)
{
    (void)state;
    ibp_err err = {0};
    char path[1200];
    ibp_key key;
    ibp_roster *roster;
    ibp_signer *signer;
    ibp_store *store;
    natsConnection *nc;
    jsCtx *js;

    assert_int_equal(ibp_crypto_init(), IBP_OK);
    assert_int_equal(ibp_testenv_mkdtemp(dir, sizeof dir), 0);
    assert_int_equal(ibp_testenv_private_start(&servers), 0);
    must(ibp_key_generate(&key), NULL);
    must(ibp_roster_new(&roster), NULL);
    must(ibp_roster_add(roster, NODE, key.pk, IBP_ROLE_MONITOR, &err), &err);
    snprintf(path, sizeof path, "%s/signer.seq", dir);
    must(ibp_signer_new(NODE, &key, path, &signer, &err), &err);
    must(ibp_store_new(NULL, &store), NULL);
    must(ibp_bus_connect_url(servers.env.nats_auth_url, "publisher-it", &nc, &err), &err);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    must(ibp_bus_ensure_streams(js, NULL, &err), &err);

    ibp_monitor_publisher_opts o;
    ibp_monitor_publisher *p;
    ibp_monitor_publisher_opts_init(&o);
    o.nc = nc;
    o.signer = signer;
    o.store = store;
    o.work_dir = dir;
    o.publish_ms = 100;
    o.refresh_ms = 1500;
    o.heartbeat_ms = 300;
    o.ack_timeout_ms = 700;
    o.max_batch_obs = 7; /* several batches per round, so order within a round matters too */
    must(ibp_monitor_publisher_start(&o, &p, &err), &err);

    int64_t gen = 0;
    for (int i = 0; i < KEYS; i++)
        observe(store, i, gen++);
    must(ibp_monitor_publisher_flush(p, 5000, &err), &err);

    /* Crash the server; keep observing meanwhile. */
    assert_int_equal(ibp_testenv_private_signal(&servers, IBP_TESTENV_NATS, SIGKILL), 0);
    for (int round = 0; round < 20; round++) {
        observe(store, round % KEYS, gen++);
        observe(store, (round * 7) % KEYS, gen++);
        sleep_ms(50);
    }
    assert_int_equal(ibp_monitor_publisher_flush(p, 300, &err), IBP_E_NATS);
    assert_int_equal(ibp_testenv_private_restart(&servers, IBP_TESTENV_NATS), 0);
    for (int i = 0; i < KEYS; i += 3)
        observe(store, i, gen++);
    must(ibp_monitor_publisher_flush(p, 20000, &err), &err);

    /* Freeze it past the ack timeout: the resends must be dropped as duplicates. */
    for (int i = 0; i < KEYS; i += 2)
        observe(store, i, gen++);
    assert_int_equal(ibp_testenv_private_signal(&servers, IBP_TESTENV_NATS, SIGSTOP), 0);
    sleep_ms(150); /* the batch goes out into the frozen server's socket */
    for (int i = 1; i < KEYS; i += 4)
        observe(store, i, gen++);
    sleep_ms(1500);
    assert_int_equal(ibp_testenv_private_signal(&servers, IBP_TESTENV_NATS, SIGCONT), 0);
    must(ibp_monitor_publisher_flush(p, 20000, &err), &err);

    ibp_monitor_publisher_stats st;
    ibp_monitor_publisher_stats_get(p, &st);
    printf("publisher: batches=%" PRIu64 " full=%" PRIu64 " heartbeats=%" PRIu64
           " failures=%" PRIu64 " duplicates=%" PRIu64 " dropped=%" PRIu64 "\n",
           st.batches_published, st.full_batches, st.heartbeats_published, st.publish_failures,
           st.duplicates, st.dropped);
    assert_true(st.publish_failures > 0);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.dropped, 0);
    ibp_monitor_publisher_stop(p);

    /* Read back: in order, each once, ending in the store's state. */
    reader *rd = calloc(1, sizeof *rd);
    assert_non_null(rd);
    must(ibp_verifier_new(roster, NULL, &rd->v), NULL);
    read_stream(js, rd);
    printf("stream: batches=%" PRIu64 " heartbeats=%" PRIu64 " rejected=%" PRIu64 "\n", rd->batches,
           rd->heartbeats, rd->rejected);
    assert_int_equal(rd->rejected, 0);
    ibp_result_list all = {0};
    must(ibp_store_local_all(store, &all), NULL);
    assert_int_equal(all.count, KEYS);
    for (size_t k = 0; k < all.count; k++) {
        int i = -1;
        assert_int_equal(sscanf(all.items[k]->domain, "D%d.", &i), 1);
        if (rd->last[i] != all.items[k]->check_time_ms)
            fail_msg("key %d: the stream ends at check time %" PRId64 ", the store holds %" PRId64,
                     i, rd->last[i], all.items[k]->check_time_ms);
    }
    ibp_result_list_free(&all);
    ibp_verifier_free(rd->v);
    free(rd);

    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    ibp_store_free(store);
    ibp_signer_free(signer);
    ibp_roster_free(roster);
    ibp_key_wipe(&key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_reconnects)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (servers.started)
        ibp_testenv_private_stop(&servers);
    if (dir[0])
        ibp_testenv_rmtree(dir);
    return rc;
}
