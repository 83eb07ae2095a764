/*
 * Integration: foreign messages on the snapshot subject do not stall
 * consensus (ibp/snapshot_chain.h).
 *
 * Two consensus replicas and an official subscriber (what a dns node runs)
 * in this process, on a private nats-server with authentication: replicas
 * and the attacker log in with the consensus role's identity (so the server
 * lets them publish on ibp.official.snapshot), the subscriber with the dns
 * role's. Five monitors flip one key again and again; after each epoch one
 * hostile message goes to ibp.official.snapshot, in turn:
 *   - 200 bytes of garbage,
 *   - a snapshot signed with a key not in the roster under a replica's id,
 *   - a snapshot for a far future epoch signed with a real consensus key,
 *   - a replay of an old snapshot (its exact bytes).
 * Every later epoch must still be published exactly once, with no gap in the
 * epoch numbers, the replicas must count what they skipped, and the
 * subscriber's official epoch must follow the cluster (never the forged one).
 * Then a subscriber started late, with hostile messages last on the
 * subject, must start at the head of the chain. Last, a stolen consensus key
 * publishes a validly signed snapshot for the next epoch (another state) with
 * its own epoch statement: no subscriber applies it (one statement is below
 * the quorum of two), both count it as forged once real epochs certified by
 * the replicas follow it, and those apply.
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
#include <sys/stat.h>
#include <time.h>

#include "ibp/bus.h"
#include "ibp/certificate.h"
#include "ibp/log.h"
#include "ibp/official_subscriber.h"
#include "ibp/replica.h"
#include "ibp/store.h"
#include "ibp/subject.h"
#include "testenv.h"

#define MONITORS 5
#define REPLICAS 2
#define FLIPS 8
#define ENDPOINT "wss://rpc.example.net/polkadot"

static ibp_testenv_private servers;
static char dir[1024];
static ibp_roster *roster;
static ibp_key mon_key[MONITORS], rep_key[REPLICAS], forger_key;
static ibp_signer *mon[MONITORS], *rep_signer[REPLICAS], *forger, *rogue;
static natsConnection *pub_nc, *rep_nc[REPLICAS], *evil_nc, *dns_nc;
static jsCtx *js, *evil_js;
static uint64_t batch_seq;

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

static ibp_signer *make_signer(const char *id, const char *seqname, const ibp_key *key)
{
    char path[1200];
    ibp_signer *s;
    ibp_err err;
    snprintf(path, sizeof path, "%s/%s.seq", dir, seqname);
    must(ibp_signer_new(id, key, path, &s, &err), &err);
    return s;
}

static natsConnection *connect_as(ibp_testenv_nats_role role, const char *name)
{
    char url[600];
    natsConnection *nc = NULL;
    ibp_err err;
    assert_int_equal(ibp_testenv_nats_url(&servers.env, role, url, sizeof url), 0);
    must(ibp_bus_connect_url(url, name, &nc, &err), &err);
    return nc;
}

/* One observation of the test endpoint from monitor s. */
static void observe(ibp_signer *s, bool up)
{
    Ibp__V1__ResultKey k = IBP__V1__RESULT_KEY__INIT;
    k.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
    k.check_name = "wss";
    k.member = "Stake Plus";
    k.domain = "rpc.example.net";
    k.endpoint = ENDPOINT;
    Ibp__V1__Observation o = IBP__V1__OBSERVATION__INIT;
    o.key = &k;
    o.status = up ? IBP__V1__STATUS__STATUS_UP : IBP__V1__STATUS__STATUS_DOWN;
    o.check_time_ms = 1700000000000;
    o.error = up ? "" : "connect timeout";
    Ibp__V1__Observation *list[] = {&o};
    Ibp__V1__ObservationBatch b = IBP__V1__OBSERVATION_BATCH__INIT;
    b.batch_seq = ++batch_seq;
    b.n_observations = 1;
    b.observations = list;
    uint8_t *msg;
    size_t len;
    uint64_t seq;
    ibp_err err;
    char subject[128];
    must(ibp_signer_seal(s, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH, &b.base, 1, &msg,
                         &len, &seq, &err),
         &err);
    ibp_subject_local(ibp_signer_id(s), subject, sizeof subject);
    must(ibp_bus_publish_envelope(js, subject,
                                  IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH,
                                  ibp_signer_id(s), seq, msg, len, NULL, 0, NULL, NULL, &err),
         &err);
    free(msg);
}

/* Publishes raw bytes on the snapshot subject as the attacker (consensus identity). */
static void publish_hostile(const uint8_t *data, size_t len, const char *what)
{
    natsMsg *m = NULL;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    char id[64];
    static int n;
    snprintf(id, sizeof id, "hostile-%d", ++n);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = id;
    assert_int_equal(
        natsMsg_Create(&m, IBP_SUBJECT_OFFICIAL_SNAPSHOT, NULL, (const char *)data, (int)len),
        NATS_OK);
    natsMsgHeader_Set(m, "Ibp-Type", "OfficialSnapshot");
    natsStatus s = js_PublishMsg(&pa, evil_js, m, &po, &jerr);
    if (s != NATS_OK)
        fail_msg("publishing %s with the consensus identity failed: %s (jetstream error %d)", what,
                 natsStatus_GetText(s), (int)jerr);
    printf("hostile: %s stored at stream seq %" PRIu64 "\n", what, pa->Sequence);
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
}

/* A well-formed snapshot of epoch, sealed by s. */
static void sealed_snapshot(ibp_signer *s, uint64_t epoch, uint8_t **out, size_t *len)
{
    uint8_t digest[32];
    memset(digest, 0xEE, sizeof digest);
    Ibp__V1__OfficialSnapshot snap = IBP__V1__OFFICIAL_SNAPSHOT__INIT;
    snap.epoch = epoch;
    snap.local_seq = 1;
    snap.state_digest.data = digest;
    snap.state_digest.len = sizeof digest;
    ibp_err err;
    must(ibp_signer_seal(s, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT, &snap.base, 1,
                         out, len, NULL, &err),
         &err);
}

/* The bytes of the snapshot stored at stream sequence seq. */
static void stored_bytes(uint64_t seq, uint8_t **out, size_t *len)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetMsg(&m, js, IBP_STREAM_OFFICIAL, seq, NULL, &jerr), NATS_OK);
    *len = (size_t)natsMsg_GetDataLength(m);
    *out = malloc(*len);
    memcpy(*out, natsMsg_GetData(m), *len);
    natsMsg_Destroy(m);
}

typedef struct official_view {
    uint64_t epochs[256]; /* epochs of the valid snapshots, in stream order */
    uint64_t seqs[256];
    size_t n;
    size_t invalid; /* messages that do not verify as a consensus node's snapshot */
} official_view;

/* Reads OFFICIAL: the epochs of the snapshots the real replicas signed. */
static void read_official(official_view *v)
{
    memset(v, 0, sizeof *v);
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetStreamInfo(&si, js, IBP_STREAM_OFFICIAL, NULL, &jerr), NATS_OK);
    uint64_t first = si->State.FirstSeq, last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    ibp_verifier *ver;
    ibp_verifier_opts vo;
    ibp_verifier_opts_init(&vo);
    vo.log_component = "test-reader";
    assert_int_equal(ibp_verifier_new(roster, &vo, &ver), IBP_OK);
    for (uint64_t seq = first; seq && seq <= last && v->n < 256; seq++) {
        natsMsg *m = NULL;
        if (js_GetMsg(&m, js, IBP_STREAM_OFFICIAL, seq, NULL, &jerr) != NATS_OK)
            continue;
        ibp_verified vm = {0};
        ibp_err err;
        bool ok =
            ibp_verifier_check_stateless(ver, (const uint8_t *)natsMsg_GetData(m),
                                         (size_t)natsMsg_GetDataLength(m), &vm, &err) == IBP_OK &&
            vm.envelope->type == IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT;
        /* The rogue's snapshots are signed with a real key: tell them by their digest. */
        if (ok) {
            const Ibp__V1__OfficialSnapshot *s = (const Ibp__V1__OfficialSnapshot *)vm.payload;
            if (s->state_digest.len == 32 && s->state_digest.data[0] == 0xEE &&
                s->state_digest.data[31] == 0xEE && s->n_entries == 0)
                ok = false;
            else if (v->n && s->epoch <= v->epochs[v->n - 1])
                ok = false; /* a replay of an earlier one */
            else {
                v->epochs[v->n] = s->epoch;
                v->seqs[v->n++] = seq;
            }
        }
        if (!ok)
            v->invalid++;
        ibp_verified_clear(&vm);
        natsMsg_Destroy(m);
    }
    ibp_verifier_free(ver);
}

static uint64_t cluster_epoch(ibp_replica **reps)
{
    uint64_t e = 0;
    for (int i = 0; i < REPLICAS; i++) {
        ibp_replica_stats st;
        ibp_replica_stats_get(reps[i], &st);
        if (st.epoch > e)
            e = st.epoch;
    }
    return e;
}

/* Waits until OFFICIAL holds a real snapshot of epoch (30 s: sanitizer builds are slow). */
static void wait_published(uint64_t epoch)
{
    official_view v;
    for (int i = 0; i < 1500; i++) {
        read_official(&v);
        if (v.n && v.epochs[v.n - 1] >= epoch)
            return;
        sleep_ms(20);
    }
    fail_msg("epoch %" PRIu64 " was not published (last real epoch %" PRIu64 ")", epoch,
             v.n ? v.epochs[v.n - 1] : 0);
}

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
    must(ibp_replica_start(&o, &r, &err), &err);
    return r;
}

static ibp_official_subscriber *start_subscriber(ibp_store **store)
{
    ibp_store_opts so;
    ibp_store_opts_init(&so);
    assert_int_equal(ibp_store_new(&so, store), IBP_OK);
    ibp_official_subscriber_opts o;
    ibp_official_subscriber_opts_init(&o);
    o.nc = dns_nc;
    o.roster = roster;
    o.store = *store;
    o.retry_ms = 200;
    ibp_official_subscriber *sub = NULL;
    ibp_err err;
    must(ibp_official_subscriber_start(&o, &sub, &err), &err);
    return sub;
}

static void test_hostile_snapshots(void **state)
{
    (void)state;
    ibp_err err;
    ibp_log_set_level(IBP_LOG_ERROR);
    assert_int_equal(ibp_testenv_private_start(&servers), 0);
    assert_int_equal(ibp_testenv_mkdtemp(dir, sizeof dir), 0);

    ibp_roster_new(&roster);
    for (int i = 0; i < MONITORS; i++) {
        char id[16];
        snprintf(id, sizeof id, "mon%d", i + 1);
        ibp_key_generate(&mon_key[i]);
        must(ibp_roster_add(roster, id, mon_key[i].pk, IBP_ROLE_MONITOR, &err), &err);
        mon[i] = make_signer(id, id, &mon_key[i]);
    }
    for (int i = 0; i < REPLICAS; i++) {
        char id[16];
        snprintf(id, sizeof id, "rep%d", i + 1);
        ibp_key_generate(&rep_key[i]);
        must(ibp_roster_add(roster, id, rep_key[i].pk, IBP_ROLE_CONSENSUS, &err), &err);
        rep_signer[i] = make_signer(id, id, &rep_key[i]);
    }
    ibp_key_generate(&forger_key);
    forger = make_signer("rep1", "forger", &forger_key); /* a replica's id, the wrong key */
    rogue = make_signer("rep2", "rogue", &rep_key[1]);   /* a real consensus key */

    pub_nc = connect_as(IBP_TESTENV_NATS_TEST, "test");
    assert_int_equal(natsConnection_JetStream(&js, pub_nc, NULL), NATS_OK);
    must(ibp_bus_ensure_streams(js, NULL, &err), &err);
    /* The replicas log in with the consensus role: they check only its streams. */
    ibp_bus_streams_set_default(ibp_bus_streams_for_roles(IBP_ROLE_CONSENSUS));
    evil_nc = connect_as(IBP_TESTENV_NATS_CONSENSUS, "attacker");
    assert_int_equal(natsConnection_JetStream(&evil_js, evil_nc, NULL), NATS_OK);
    dns_nc = connect_as(IBP_TESTENV_NATS_DNS, "dns");
    for (int i = 0; i < REPLICAS; i++)
        rep_nc[i] = connect_as(IBP_TESTENV_NATS_CONSENSUS, "replica");
    ibp_replica *reps[REPLICAS];
    for (int i = 0; i < REPLICAS; i++)
        reps[i] = start_replica(i);
    ibp_store *store = NULL;
    ibp_official_subscriber *sub = start_subscriber(&store);

    /* Epoch 1: the key becomes official. Then flip it, a hostile message after each epoch. */
    bool up = true;
    for (int i = 0; i < MONITORS; i++)
        observe(mon[i], up);
    wait_published(1);
    uint8_t *first_bytes = NULL;
    size_t first_len = 0;
    {
        official_view v;
        read_official(&v);
        stored_bytes(v.seqs[0], &first_bytes, &first_len);
    }
    uint64_t expect = 1;
    for (int flip = 0; flip < FLIPS; flip++) {
        uint8_t *msg = NULL;
        size_t len = 0;
        switch (flip % 4) {
        case 0: {
            uint8_t junk[200];
            for (size_t k = 0; k < sizeof junk; k++)
                junk[k] = (uint8_t)(k * 37 + 11);
            publish_hostile(junk, sizeof junk, "200 bytes of garbage");
            break;
        }
        case 1:
            sealed_snapshot(forger, expect + 1, &msg, &len);
            publish_hostile(msg, len, "a snapshot signed with the wrong key");
            break;
        case 2:
            sealed_snapshot(rogue, expect + 1000, &msg, &len);
            publish_hostile(msg, len, "a snapshot for a future epoch (real consensus key)");
            break;
        case 3:
            publish_hostile(first_bytes, first_len, "a replay of epoch 1");
            break;
        }
        free(msg);
        up = !up;
        for (int i = 0; i < MONITORS; i++)
            observe(mon[i], up);
        expect++;
        wait_published(expect);
        /* The dns side follows the cluster, not the forged epoch. */
        assert_int_equal(ibp_official_subscriber_wait_epoch(sub, expect, 30000), IBP_OK);
        assert_int_equal(ibp_store_official_epoch(store), expect);
    }
    assert_int_equal(cluster_epoch(reps), expect);

    /* OFFICIAL: epochs 1..expect, each exactly once, in order. */
    official_view v;
    read_official(&v);
    printf("OFFICIAL: %zu real snapshots, %zu hostile messages\n", v.n, v.invalid);
    assert_int_equal(v.n, expect);
    for (size_t i = 0; i < v.n; i++)
        assert_int_equal(v.epochs[i], i + 1);
    assert_int_equal(v.invalid, FLIPS);

    uint64_t foreign = 0;
    for (int i = 0; i < REPLICAS; i++) {
        ibp_replica_stats st;
        ibp_replica_stats_get(reps[i], &st);
        printf("rep%d: epoch=%" PRIu64 " published=%" PRIu64 " lost_race=%" PRIu64
               " mismatches=%" PRIu64 " foreign=%" PRIu64 "\n",
               i + 1, st.epoch, st.snapshots_published, st.snapshots_lost_race,
               st.digest_mismatches, st.foreign_snapshots);
        assert_int_equal(st.digest_mismatches, 0);
        foreign += st.foreign_snapshots;
    }
    assert_true(foreign >= FLIPS); /* each replica counts those it had to publish after */
    ibp_official_subscriber_stats ss;
    ibp_official_subscriber_stats_get(sub, &ss);
    printf("subscriber: applied=%" PRIu64 " rejected=%" PRIu64 " foreign=%" PRIu64
           " ignored=%" PRIu64 " epoch=%" PRIu64 "\n",
           ss.applied, ss.rejected, ss.foreign, ss.ignored, ss.epoch);
    assert_int_equal(ss.epoch, expect);
    assert_true(ss.rejected + ss.foreign + ss.ignored >= FLIPS);

    /* A dns node that starts now, with hostile messages last on the subject,
     * starts at the head of the chain. */
    uint8_t *msg = NULL;
    size_t len = 0;
    sealed_snapshot(rogue, expect + 5000, &msg, &len);
    publish_hostile(msg, len, "a snapshot for a future epoch, last on the subject");
    free(msg);
    uint8_t junk[64] = {0};
    publish_hostile(junk, sizeof junk, "garbage, last on the subject");
    ibp_store *store2 = NULL;
    ibp_official_subscriber *late = start_subscriber(&store2);
    assert_int_equal(ibp_official_subscriber_wait_epoch(late, expect, 30000), IBP_OK);
    sleep_ms(300);
    assert_int_equal(ibp_store_official_epoch(store2), expect);
    /* And it follows the next epoch. */
    up = !up;
    for (int i = 0; i < MONITORS; i++)
        observe(mon[i], up);
    expect++;
    wait_published(expect);
    assert_int_equal(ibp_official_subscriber_wait_epoch(late, expect, 30000), IBP_OK);
    assert_int_equal(ibp_official_subscriber_wait_epoch(sub, expect, 30000), IBP_OK);

    /* A stolen consensus key: the next epoch, signed and co-signed by rep2's key. */
    sealed_snapshot(rogue, expect + 1, &msg, &len);
    {
        ibp_verifier *vv = NULL;
        ibp_verified vm = {0};
        ibp_verifier_new(roster, NULL, &vv);
        must(ibp_verifier_check_stateless(vv, msg, len, &vm, &err), &err);
        ibp_epoch_statement st;
        memset(&st, 0, sizeof st);
        st.epoch = expect + 1;
        st.local_seq = 1;
        memset(st.state_digest, 0xEE, sizeof st.state_digest);
        ibp_certificate_snapshot_hash(vm.envelope->payload.data, vm.envelope->payload.len,
                                      st.snapshot_hash);
        ibp_verified_clear(&vm);
        ibp_verifier_free(vv);
        uint8_t *sealed = NULL;
        size_t slen = 0;
        uint64_t sseq = 0;
        must(ibp_certificate_statement_seal(rogue, &st, 1, &sealed, &slen, &sseq, &err), &err);
        publish_hostile(msg, len, "a next epoch signed with a stolen consensus key");
        /* An id of its own: the default one (signer and seq) may be one rep2's
         * real statements took, and JetStream would drop the forgery unseen. */
        char forged_id[64];
        uint64_t forged_seq = 0;
        bool forged_dup = true;
        snprintf(forged_id, sizeof forged_id, "forged-statement-%" PRIu64, expect + 1);
        must(ibp_bus_publish_envelope(evil_js, "ibp.official.cosign.rep2",
                                      IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EPOCH_STATEMENT, "rep2",
                                      sseq, sealed, slen, forged_id, 0, &forged_seq, &forged_dup,
                                      &err),
             &err);
        assert_false(forged_dup);
        assert_true(forged_seq > 0);
        free(sealed);
    }
    free(msg);
    sleep_ms(500);
    assert_int_equal(ibp_store_official_epoch(store), expect);
    assert_int_equal(ibp_store_official_epoch(store2), expect);
    /* The replicas' next epochs: the first loses to the forgery (a mismatch,
     * not co-signed), the second follows it, co-signed by both. */
    for (int round = 0; round < 2; round++) {
        up = !up;
        for (int i = 0; i < MONITORS; i++)
            observe(mon[i], up);
        sleep_ms(300);
    }
    expect += 2;
    assert_int_equal(ibp_official_subscriber_wait_epoch(sub, expect, 30000), IBP_OK);
    assert_int_equal(ibp_official_subscriber_wait_epoch(late, expect, 30000), IBP_OK);
    ibp_official_subscriber_stats ls;
    ibp_official_subscriber_stats_get(sub, &ss);
    ibp_official_subscriber_stats_get(late, &ls);
    printf("after the stolen key: sub certified=%" PRIu64 " forged_refused=%" PRIu64
           " epoch=%" PRIu64 "; late certified=%" PRIu64 " forged_refused=%" PRIu64 "\n",
           ss.certified, ss.forged_refused, ss.epoch, ls.certified, ls.forged_refused);
    assert_int_equal(ss.epoch, expect);
    assert_true(ss.forged_refused >= 1);
    assert_true(ls.forged_refused >= 1);
    assert_int_equal(ss.certified, ss.applied);
    assert_int_equal(ss.cert_signers, 2);

    ibp_official_subscriber_stop(late);
    ibp_official_subscriber_stop(sub);
    ibp_store_free(store2);
    ibp_store_free(store);
    for (int i = 0; i < REPLICAS; i++)
        ibp_replica_stop(reps[i]);
    free(first_bytes);
    jsCtx_Destroy(js);
    jsCtx_Destroy(evil_js);
    natsConnection_Destroy(pub_nc);
    natsConnection_Destroy(evil_nc);
    natsConnection_Destroy(dns_nc);
    for (int i = 0; i < REPLICAS; i++)
        natsConnection_Destroy(rep_nc[i]);
    for (int i = 0; i < MONITORS; i++)
        ibp_signer_free(mon[i]);
    for (int i = 0; i < REPLICAS; i++)
        ibp_signer_free(rep_signer[i]);
    ibp_signer_free(forger);
    ibp_signer_free(rogue);
    ibp_roster_free(roster);
    ibp_testenv_rmtree(dir);
    assert_int_equal(ibp_testenv_private_stop(&servers), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_hostile_snapshots)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
