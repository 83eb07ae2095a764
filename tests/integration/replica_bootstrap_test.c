/*
 * Integration: a replica added after LOCAL dropped its first messages starts
 * from another replica's checkpoint (ibp/checkpoint.h), on a private
 * nats-server. LOCAL is created with a 2 s max age before the replicas start
 * (a replica only creates streams that are missing). Two replicas run while
 * the test, signing as five monitors, moves a key through two epochs; their
 * checkpoints appear on CHECKPOINT; LOCAL's messages expire. Then forged
 * checkpoints replace the real ones (signed by a monitor's key, a digest that
 * matches no snapshot of its epoch, one on another node's subject): a third
 * replica with an empty work directory refuses each, says why, waits and
 * publishes nothing, and stops promptly while waiting. Once a real
 * checkpoint is back it starts from it, saves its state at once, and
 * computes the next epoch with the same digest as the running replica.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ibp/bus.h"
#include "ibp/clock.h"
#include "ibp/log.h"
#include "ibp/replica.h"
#include "ibp/replica_state.h"
#include "ibp/subject.h"
#include "replica_testlib.h"
#include "testenv.h"

#define MONITORS 5
#define REPLICAS 3

static ibp_testenv_private servers;
static char dir[1024];
static ibp_roster *roster;
static ibp_key mon_key[MONITORS], rep_key[REPLICAS];
static ibp_signer *mon[MONITORS], *rep_signer[REPLICAS];
static natsConnection *pub_nc, *rep_nc[REPLICAS];
static jsCtx *js;
static uint64_t batch_seq;

/* ---- log capture ---------------------------------------------------------- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[65536];
static size_t log_len;

static void log_hook(ibp_log_level level, const char *component, const char *msg, void *user)
{
    (void)user;
    if (level >= IBP_LOG_WARN)
        fprintf(stderr, "%s %s\n", component, msg);
    pthread_mutex_lock(&log_lock);
    int n = snprintf(log_text + log_len, sizeof log_text - log_len, "%s %s\n", component, msg);
    if (n > 0 && (size_t)n < sizeof log_text - log_len)
        log_len += (size_t)n;
    pthread_mutex_unlock(&log_lock);
}

static bool logged(const char *needle)
{
    pthread_mutex_lock(&log_lock);
    bool found = strstr(log_text, needle) != NULL;
    pthread_mutex_unlock(&log_lock);
    return found;
}

/* ---- helpers -------------------------------------------------------------- */

static uint64_t observe_many(int from, int to, bool up)
{
    uint64_t seq = 0;
    for (int i = from; i < to; i++)
        seq = rt_observe(js, mon[i], up, ++batch_seq, ibp_clock_wall_ms(), NULL, NULL);
    return seq;
}

static ibp_replica *start_replica(int i)
{
    ibp_replica_opts o;
    ibp_replica *r;
    ibp_err err;
    char wd[1200];
    snprintf(wd, sizeof wd, "%s/rep%d", dir, i + 1);
    mkdir(wd, 0700);
    ibp_replica_opts_init(&o);
    o.nc = rep_nc[i];
    o.roster = roster;
    o.signer = rep_signer[i];
    o.work_dir = wd;
    o.heartbeat_ms = 200;
    o.state_save_ms = 200;
    o.checkpoint_ms = 200;
    o.bootstrap_retry_ms = 200;
    rt_must(ibp_replica_start(&o, &r, &err), &err);
    return r;
}

static bool state_file_exists(int i)
{
    char path[1300];
    struct stat sb;
    snprintf(path, sizeof path, "%s/rep%d/consensus.state", dir, i + 1);
    return stat(path, &sb) == 0;
}

/* The last checkpoint on node's subject, verified: its state (free with
 * ibp__v1__replica_state__free_unpacked) or NULL when there is none. */
static Ibp__V1__ReplicaState *last_checkpoint(const char *node)
{
    char subject[128];
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    ibp_subject_checkpoint(node, subject, sizeof subject);
    if (js_GetLastMsg(&m, js, IBP_STREAM_CHECKPOINT, subject, NULL, &jerr) != NATS_OK)
        return NULL;
    ibp_verifier *v;
    ibp_verifier_new(roster, NULL, &v);
    ibp_verified vm = {0};
    ibp_err err;
    Ibp__V1__ReplicaState *rs = NULL;
    if (ibp_verifier_check_stateless(v, (const uint8_t *)natsMsg_GetData(m),
                                     (size_t)natsMsg_GetDataLength(m), &vm, &err) == IBP_OK) {
        rt_must(ibp_replica_state_decode(vm.envelope->payload.data, vm.envelope->payload.len, &rs,
                                      &err),
             &err);
        ibp_verified_clear(&vm);
    }
    ibp_verifier_free(v);
    natsMsg_Destroy(m);
    return rs;
}

/* Waits until node's checkpoint covers local_seq; returns it. */
static Ibp__V1__ReplicaState *wait_checkpoint(const char *node, uint64_t local_seq)
{
    for (int i = 0; i < 250; i++) {
        Ibp__V1__ReplicaState *rs = last_checkpoint(node);
        if (rs && rs->local_seq >= local_seq)
            return rs;
        if (rs)
            ibp__v1__replica_state__free_unpacked(rs, NULL);
        rt_sleep_ms(40);
    }
    fail_msg("no checkpoint of %s covering LOCAL seq %" PRIu64, node, local_seq);
    return NULL;
}

/* Publishes rs, signed by s, as a checkpoint on subject_node's subject. */
static void publish_checkpoint(ibp_signer *s, const char *subject_node,
                               const Ibp__V1__ReplicaState *rs)
{
    size_t len = ibp__v1__replica_state__get_packed_size(rs);
    uint8_t *buf = malloc(len), *sealed = NULL;
    size_t slen = 0;
    uint64_t seq = 0;
    char subject[128];
    ibp_err err;
    assert_non_null(buf);
    ibp__v1__replica_state__pack(rs, buf);
    rt_must(ibp_signer_seal_bytes(s, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_CHECKPOINT, buf, len, 1,
                               &sealed, &slen, &seq, &err),
         &err);
    ibp_subject_checkpoint(subject_node, subject, sizeof subject);
    rt_must(ibp_bus_publish_envelope(js, subject, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_CHECKPOINT,
                                  ibp_signer_id(s), seq, sealed, slen, NULL, 0, NULL, NULL, &err),
         &err);
    free(sealed);
    free(buf);
}

static uint64_t local_first_seq(void)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetStreamInfo(&si, js, IBP_STREAM_LOCAL, NULL, &jerr), NATS_OK);
    uint64_t first = si->State.FirstSeq;
    jsStreamInfo_Destroy(si);
    return first;
}

/* ---- the scenario --------------------------------------------------------- */

static void test_bootstrap(void **state)
{
    (void)state;
    ibp_err err;
    ibp_log_set_hook(log_hook, NULL);
    ibp_log_set_level(IBP_LOG_INFO);
    assert_int_equal(ibp_testenv_private_start(&servers), 0);
    assert_int_equal(ibp_testenv_mkdtemp(dir, sizeof dir), 0);

    ibp_roster_new(&roster);
    rt_add_nodes(roster, dir, "mon", IBP_ROLE_MONITOR, MONITORS, mon_key, mon);
    rt_add_nodes(roster, dir, "rep", IBP_ROLE_CONSENSUS, REPLICAS, rep_key, rep_signer);
    rt_must(ibp_bus_connect_url(servers.env.nats_auth_url, "test", &pub_nc, &err), &err);
    assert_int_equal(natsConnection_JetStream(&js, pub_nc, NULL), NATS_OK);
    /* LOCAL keeps 2 s (the duplicate window may not exceed the age). */
    ibp_bus_stream_opts so;
    ibp_bus_stream_opts_init(&so);
    so.streams = IBP_BUS_STREAM_LOCAL;
    so.local_max_age_ms = 2000;
    so.duplicate_window_ms = 1000;
    rt_must(ibp_bus_ensure_streams(js, &so, &err), &err);
    rt_must(ibp_bus_ensure_streams(js, NULL, &err), &err);
    for (int i = 0; i < REPLICAS; i++)
        rt_must(ibp_bus_connect_url(servers.env.nats_auth_url, "replica", &rep_nc[i], &err), &err);

    /* Two replicas; a fresh LOCAL holds its whole history: they read it from the start. */
    ibp_replica *reps[REPLICAS] = {start_replica(0), start_replica(1), NULL};
    uint64_t seq = observe_many(0, MONITORS, true); /* epoch 1 */
    seq = observe_many(0, 3, false);                /* epoch 2 */
    rt_wait_applied(reps, 2, seq);
    assert_true(logged("reading it from the start"));
    Ibp__V1__ReplicaState *cp1 = wait_checkpoint("rep1", seq);
    Ibp__V1__ReplicaState *cp2 = wait_checkpoint("rep2", seq);
    printf("checkpoints: rep1 epoch %" PRIu64 " local_seq %" PRIu64 ", rep2 epoch %" PRIu64
           " local_seq %" PRIu64 "\n",
           cp1->epoch, cp1->local_seq, cp2->epoch, cp2->local_seq);
    assert_int_equal(cp1->epoch, 2);
    assert_int_equal(cp2->epoch, 2);

    /* LOCAL drops its messages. */
    for (int i = 0; i < 300 && local_first_seq() <= seq; i++)
        rt_sleep_ms(50);
    printf("LOCAL first seq %" PRIu64 " after its max age\n", local_first_seq());
    assert_true(local_first_seq() > seq);

    /* rep2 stops; forged checkpoints replace the real ones. */
    ibp_replica_stop(reps[1]);
    reps[1] = NULL;
    publish_checkpoint(mon[0], "rep1", cp1);       /* signed by a monitor */
    cp2->epoch = 1;                                /* its digest is epoch 2's */
    publish_checkpoint(rep_signer[1], "rep2", cp2);
    cp2->epoch = 2;
    publish_checkpoint(rep_signer[1], "rep3", cp2); /* on another node's subject */

    /* rep3, empty work dir: refuses all three, waits, publishes nothing. */
    reps[2] = start_replica(2);
    ibp_replica_stats s3;
    for (int i = 0; i < 100; i++) {
        ibp_replica_stats_get(reps[2], &s3);
        if (s3.checkpoints_refused >= 3)
            break;
        rt_sleep_ms(20);
    }
    rt_sleep_ms(500);
    ibp_replica_stats_get(reps[2], &s3);
    printf("rep3 waiting: refused=%" PRIu64 " waiting=%" PRIu64 " epoch=%" PRIu64 "\n",
           s3.checkpoints_refused, s3.waiting_for_checkpoint, s3.epoch);
    assert_int_equal(s3.checkpoints_refused, 3);
    assert_int_equal(s3.waiting_for_checkpoint, 1);
    assert_int_equal(s3.epoch, 0);
    assert_int_equal(s3.snapshots_published + s3.snapshots_lost_race, 0);
    assert_int_equal(s3.checkpoints_published, 0);
    assert_false(state_file_exists(2));
    assert_true(logged("no usable checkpoint: waiting"));
    assert_true(logged("checkpoint refused node=rep1"));
    assert_true(logged("checkpoint refused node=rep2"));
    assert_true(logged("digest differs from the snapshot of its epoch"));
    assert_true(logged("published on another node's subject"));
    /* Stop works while it waits. */
    int64_t t0 = ibp_clock_mono_ms();
    ibp_replica_stop(reps[2]);
    printf("stopped while waiting in %lld ms\n", (long long)(ibp_clock_mono_ms() - t0));
    assert_true(ibp_clock_mono_ms() - t0 < 2000);
    assert_false(state_file_exists(2));
    reps[2] = start_replica(2);

    /* The key comes back up (epoch 3): rep1 publishes a real checkpoint; rep3 takes it. */
    seq = observe_many(0, 3, true);
    rt_wait_applied(reps, 1, seq);
    for (int i = 0; i < 250; i++) {
        ibp_replica_stats_get(reps[2], &s3);
        if (!s3.waiting_for_checkpoint && s3.local_seq >= seq)
            break;
        rt_sleep_ms(40);
    }
    ibp_replica_stats_get(reps[2], &s3);
    assert_int_equal(s3.waiting_for_checkpoint, 0);
    assert_int_equal(s3.epoch, 3);
    assert_true(logged("started from the checkpoint of node=rep1 epoch=3"));
    assert_true(state_file_exists(2));

    /* Down again (epoch 4): both compute it, with the same digest. */
    uint64_t rep3_statements = s3.statements_published;
    seq = observe_many(0, 3, false);
    reps[1] = reps[2];
    rt_wait_applied(reps, 2, seq);
    rt_sleep_ms(500);
    ibp_replica_stats s1;
    ibp_replica_stats_get(reps[0], &s1);
    ibp_replica_stats_get(reps[1], &s3);
    printf("rep1: epoch=%" PRIu64 " published=%" PRIu64 " lost=%" PRIu64 " mismatches=%" PRIu64
           " checkpoints=%" PRIu64 "\n",
           s1.epoch, s1.snapshots_published, s1.snapshots_lost_race, s1.digest_mismatches,
           s1.checkpoints_published);
    printf("rep3: epoch=%" PRIu64 " published=%" PRIu64 " lost=%" PRIu64 " mismatches=%" PRIu64
           "\n",
           s3.epoch, s3.snapshots_published, s3.snapshots_lost_race, s3.digest_mismatches);
    assert_int_equal(s1.epoch, 4);
    assert_int_equal(s3.epoch, 4);
    assert_int_equal(s1.digest_mismatches, 0);
    assert_int_equal(s3.digest_mismatches, 0);
    /* rep3 raced for epoch 4, or found it stored before it computed it (the
     * chain head read between two LOCAL messages); either way it vouched. */
    assert_true(s3.snapshots_published + s3.snapshots_lost_race <= 1);
    assert_true(s3.statements_published > rep3_statements);
    assert_true(s1.checkpoints_published >= 2);
    assert_false(logged("DIGEST MISMATCH"));
    uint64_t epochs[16];
    size_t n = rt_official_epochs(js, roster, epochs, 16, NULL);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(epochs[i], i + 1);

    ibp__v1__replica_state__free_unpacked(cp1, NULL);
    ibp__v1__replica_state__free_unpacked(cp2, NULL);
    ibp_replica_stop(reps[0]);
    ibp_replica_stop(reps[1]);
    for (int i = 0; i < REPLICAS; i++) {
        natsConnection_Destroy(rep_nc[i]);
        ibp_signer_free(rep_signer[i]);
    }
    for (int i = 0; i < MONITORS; i++)
        ibp_signer_free(mon[i]);
    jsCtx_Destroy(js);
    natsConnection_Destroy(pub_nc);
    ibp_roster_free(roster);
    ibp_log_set_hook(NULL, NULL);
    ibp_testenv_rmtree(dir);
    ibp_testenv_private_stop(&servers);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_bootstrap)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (servers.started)
        ibp_testenv_private_stop(&servers);
    return rc;
}
