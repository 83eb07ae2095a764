/*
 * Integration: two consensus replicas (in this process) on a private
 * nats-server, fed signed batches from five monitors. Checks that a status
 * flips only with a quorum, that racing replicas put exactly one snapshot per
 * epoch on OFFICIAL with equal digests, that forged and replayed envelopes are
 * refused and counted, that events and status messages appear, and that a
 * replica restarted from its saved state catches up without divergence, and
 * that both co-sign every epoch on COSIGN.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ibp/bus.h"
#include "ibp/log.h"
#include "ibp/replica.h"
#include "ibp/subject.h"
#include "replica_testlib.h"
#include "testenv.h"

#define MONITORS 5

static ibp_testenv_private servers;
static char dir[1024];
static ibp_roster *roster;
static ibp_key mon_key[MONITORS], rep_key[2], forger_key;
static ibp_signer *mon[MONITORS], *rep_signer[2], *forger;
static natsConnection *pub_nc, *rep_nc[2];
static jsCtx *js;
static uint64_t batch_seq;
#define CHECK_TIME 1700000000000

static ibp_replica *start_replica(int i)
{
    ibp_replica_opts o;
    ibp_replica *r;
    ibp_err err;
    char wd[1200];
    snprintf(wd, sizeof wd, "%s/rep%d", dir, i);
    mkdir(wd, 0700);
    ibp_replica_opts_init(&o);
    o.nc = rep_nc[i];
    o.roster = roster;
    o.signer = rep_signer[i];
    o.work_dir = wd;
    o.heartbeat_ms = 200;
    o.state_save_ms = 100000;
    rt_must(ibp_replica_start(&o, &r, &err), &err);
    return r;
}

static void test_replicas(void **state)
{
    (void)state;
    ibp_err err;
    ibp_log_set_level(IBP_LOG_ERROR);
    assert_int_equal(ibp_testenv_private_start(&servers), 0);
    assert_int_equal(ibp_testenv_mkdtemp(dir, sizeof dir), 0);

    ibp_roster_new(&roster);
    rt_add_nodes(roster, dir, "mon", IBP_ROLE_MONITOR, MONITORS, mon_key, mon);
    rt_add_nodes(roster, dir, "rep", IBP_ROLE_CONSENSUS, 2, rep_key, rep_signer);
    ibp_key_generate(&forger_key);
    forger = rt_signer(dir, "mallory", &forger_key);

    rt_must(ibp_bus_connect_url(servers.env.nats_auth_url, "test", &pub_nc, &err), &err);
    assert_int_equal(natsConnection_JetStream(&js, pub_nc, NULL), NATS_OK);
    rt_must(ibp_bus_ensure_streams(js, NULL, &err), &err);
    for (int i = 0; i < 2; i++)
        rt_must(ibp_bus_connect_url(servers.env.nats_auth_url, "replica", &rep_nc[i], &err), &err);
    ibp_replica *reps[2] = {start_replica(0), start_replica(1)};

    /* All five up: the key becomes official (epoch 1). */
    uint64_t seq = 0;
    for (int i = 0; i < MONITORS; i++)
        seq = rt_observe(js, mon[i], true, ++batch_seq, CHECK_TIME, NULL, NULL);
    rt_wait_applied(reps, 2, seq);
    /* Two of five down: no flip. */
    uint8_t *kept;
    size_t kept_len;
    rt_observe(js, mon[0], false, ++batch_seq, CHECK_TIME, &kept, &kept_len);
    seq = rt_observe(js, mon[1], false, ++batch_seq, CHECK_TIME, NULL, NULL);
    rt_wait_applied(reps, 2, seq);
    ibp_replica_stats st0;
    ibp_replica_stats_get(reps[0], &st0);
    assert_int_equal(st0.epoch, 1);
    /* A forged batch (key not in the roster) saying down, and a replay of mon1's. */
    rt_observe(js, forger, false, ++batch_seq, CHECK_TIME, NULL, NULL);
    char subject[64];
    uint64_t rseq = 0;
    ibp_subject_local("mon1", subject, sizeof subject);
    rt_must(ibp_bus_publish_envelope(js, subject,
                                  IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH, "mon1", 0,
                                  kept, kept_len, "replayed-copy", 0, &rseq, NULL, &err),
         &err);
    free(kept);
    rt_wait_applied(reps, 2, rseq - 1);
    rt_sleep_ms(300);
    ibp_replica_stats_get(reps[0], &st0);
    assert_int_equal(st0.epoch, 1);
    assert_int_equal(st0.rejected[IBP_E_UNKNOWN_SIGNER], 1);
    assert_int_equal(st0.rejected[IBP_E_REPLAY], 1);

    /* Third down: quorum (3 of 5) -> flips, epoch 2. */
    seq = rt_observe(js, mon[2], false, ++batch_seq, CHECK_TIME, NULL, NULL);
    rt_wait_applied(reps, 2, seq);
    rt_sleep_ms(300);

    /* Restart replica 0 from its saved state while the key comes back up. */
    ibp_replica_stop(reps[0]);
    for (int i = 0; i < 3; i++)
        seq = rt_observe(js, mon[i], true, ++batch_seq, CHECK_TIME, NULL, NULL);
    reps[0] = start_replica(0);
    rt_wait_applied(reps, 2, seq);
    rt_sleep_ms(500);

    uint64_t epochs[16];
    int last_down = -1;
    size_t n = rt_official_epochs(js, roster, epochs, 16, &last_down);
    printf("OFFICIAL epochs:");
    for (size_t i = 0; i < n; i++)
        printf(" %" PRIu64, epochs[i]);
    printf("\n");
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(epochs[i], i + 1); /* 1..N, no gap, no duplicate */
    assert_int_equal(last_down, 0);         /* back up */

    ibp_replica_stats s[2];
    uint64_t published = 0;
    for (int i = 0; i < 2; i++) {
        ibp_replica_stats_get(reps[i], &s[i]);
        printf("replica %d: epoch=%" PRIu64 " applied=%" PRIu64 " published=%" PRIu64
               " lost_race=%" PRIu64 " mismatches=%" PRIu64 " events=%" PRIu64 "\n",
               i, s[i].epoch, s[i].messages_applied, s[i].snapshots_published,
               s[i].snapshots_lost_race, s[i].digest_mismatches, s[i].events_published);
        assert_int_equal(s[i].epoch, 3);
        assert_int_equal(s[i].digest_mismatches, 0);
        published += s[i].snapshots_published;
    }
    assert_true(published >= 1);

    /* COSIGN: both replicas co-signed every epoch (the restarted one
     * included), with statements equal to the stored snapshots' bytes. */
    for (uint64_t e = 1; e <= 3; e++) {
        ibp_certificate_result cr;
        rt_certify_epoch(js, roster, e, 2, &cr);
        printf("epoch %" PRIu64 ": certified=%d signers=%zu refused=%s\n", e, cr.certified,
               cr.signers, ibp_certificate_verdict_text(cr.first_refusal));
        assert_true(cr.certified);
        assert_int_equal(cr.signers, 2);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s[i].statement_failures, 0);
        assert_int_equal(s[i].statements_skipped, 0);
    }

    /* STATUS: the late subscriber gets the current value at once. */
    Ibp__V1__ResultKey k = IBP__V1__RESULT_KEY__INIT;
    k.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
    k.check_name = "wss";
    k.member = "Stake Plus";
    k.domain = "rpc.example.net";
    k.endpoint = RT_ENDPOINT;
    char ssubj[1024];
    ibp_subject_status(&k, ssubj, sizeof ssubj);
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetLastMsg(&m, js, IBP_STREAM_STATUS, ssubj, NULL, &jerr), NATS_OK);
    printf("STATUS %s: %.*s\n", ssubj, natsMsg_GetDataLength(m), natsMsg_GetData(m));
    assert_non_null(strstr(natsMsg_GetData(m), "\"status\":\"up\""));
    natsMsg_Destroy(m);
    /* EVENTS: added-up (epoch 1), down (2), up (3). */
    jsStreamInfo *si = NULL;
    assert_int_equal(js_GetStreamInfo(&si, js, IBP_STREAM_EVENTS, NULL, &jerr), NATS_OK);
    printf("EVENTS messages: %" PRIu64 "\n", si->State.Msgs);
    assert_int_equal(si->State.Msgs, 3);
    jsStreamInfo_Destroy(si);

    for (int i = 0; i < 2; i++) {
        ibp_replica_stop(reps[i]);
        natsConnection_Destroy(rep_nc[i]);
        ibp_signer_free(rep_signer[i]);
    }
    for (int i = 0; i < MONITORS; i++)
        ibp_signer_free(mon[i]);
    ibp_signer_free(forger);
    jsCtx_Destroy(js);
    natsConnection_Destroy(pub_nc);
    ibp_roster_free(roster);
    ibp_testenv_rmtree(dir);
    ibp_testenv_private_stop(&servers);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_replicas)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (servers.started)
        ibp_testenv_private_stop(&servers);
    return rc;
}
