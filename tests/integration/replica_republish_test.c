/*
 * Integration: OFFICIAL in memory (the default) loses its snapshots when
 * every NATS server restarts; the consensus replicas publish their current
 * epoch again, exactly once, and dns nodes' official subscribers get it.
 *
 * Three replicas (in this process) on a private nats-server, five monitors:
 *   1. epochs 1 and 2 are published; a subscriber (a running dns node) holds 2;
 *   2. the replicas stop (saving consensus.state), OFFICIAL is deleted (what
 *      a single server's memory stream looks like after its restart) and the
 *      replicas start again from their state: one snapshot of epoch 2 lands,
 *      with the digest of the original; a new subscriber applies it, the
 *      running one ignores it;
 *   3. nats-server itself is stopped and started again with the replicas and
 *      subscribers running: the stream is gone; the replicas reconnect,
 *      create it and publish epoch 2 again, once; a new subscriber applies it;
 *      the next status change (epoch 3) reaches every subscriber.
 * Subscribers apply only certified epochs (the default): each time, the
 * replicas co-sign the snapshot published again (COSIGN went with OFFICIAL,
 * or was kept and holds statements about the first bytes), chaining to the
 * digest of epoch 1 that each kept in consensus.state.
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
#include <sys/stat.h>

#include "ibp/bus.h"
#include "ibp/log.h"
#include "ibp/official_chain.h"
#include "ibp/official_subscriber.h"
#include "ibp/replica.h"
#include "ibp/store.h"
#include "ibp/subject.h"
#include "replica_testlib.h"
#include "testenv.h"

#define MONITORS 5
#define REPLICAS 3
#define CHECK_TIME 1700000000000
#define WAIT_MS 20000

static ibp_testenv_private servers;
static char dir[1024];
static ibp_roster *roster;
static ibp_key mon_key[MONITORS], rep_key[REPLICAS];
static ibp_signer *mon[MONITORS], *rep_signer[REPLICAS];
static natsConnection *pub_nc, *rep_nc[REPLICAS];
static jsCtx *js;
static uint64_t batch_seq;

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
    o.state_save_ms = 100000; /* saved at stop */
    rt_must(ibp_replica_start(&o, &r, &err), &err);
    return r;
}

/* A dns node's official subscriber on a connection of its own. */
typedef struct dns_node {
    natsConnection *nc;
    ibp_store *store;
    ibp_official_subscriber *sub;
} dns_node;

static void dns_start(dns_node *d)
{
    ibp_err err;
    rt_must(ibp_bus_connect_url(servers.env.nats_auth_url, "dns", &d->nc, &err), &err);
    assert_int_equal(ibp_store_new(NULL, &d->store), IBP_OK);
    ibp_official_subscriber_opts so;
    ibp_official_subscriber_opts_init(&so);
    so.nc = d->nc;
    so.roster = roster;
    so.store = d->store;
    so.retry_ms = 200;
    rt_must(ibp_official_subscriber_start(&so, &d->sub, &err), &err);
}

static void dns_stop(dns_node *d)
{
    ibp_official_subscriber_stop(d->sub);
    ibp_store_free(d->store);
    natsConnection_Destroy(d->nc);
}

static void dns_wait_epoch(dns_node *d, uint64_t epoch, const char *what)
{
    if (ibp_official_subscriber_wait_epoch(d->sub, epoch, WAIT_MS) != IBP_OK)
        fail_msg("%s: the subscriber holds epoch %" PRIu64 ", waited for %" PRIu64, what,
                 ibp_store_official_epoch(d->store), epoch);
}

/* The valid snapshots on OFFICIAL, in stream order (at most cap). */
static size_t official_snapshots(ibp_chain_msg *out, size_t cap)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    size_t n = 0;
    if (js_GetStreamInfo(&si, js, IBP_STREAM_OFFICIAL, NULL, &jerr) != NATS_OK)
        return 0;
    uint64_t first = si->State.FirstSeq, last = si->State.Msgs ? si->State.LastSeq : 0;
    jsStreamInfo_Destroy(si);
    ibp_verifier *v;
    assert_int_equal(ibp_verifier_new(roster, NULL, &v), IBP_OK);
    for (uint64_t seq = first; seq && seq <= last && n < cap; seq++) {
        natsMsg *m = NULL;
        if (js_GetMsg(&m, js, IBP_STREAM_OFFICIAL, seq, NULL, &jerr) != NATS_OK)
            continue;
        ibp_official_chain_classify(v, (const uint8_t *)natsMsg_GetData(m),
                                    (size_t)natsMsg_GetDataLength(m), seq, &out[n]);
        if (out[n].valid)
            n++;
        natsMsg_Destroy(m);
    }
    ibp_verifier_free(v);
    return n;
}

static void print_snapshots(const char *when, const ibp_chain_msg *s, size_t n)
{
    printf("OFFICIAL %s:", when);
    for (size_t i = 0; i < n; i++)
        printf(" epoch %" PRIu64 " (seq %" PRIu64 ", %s)", s[i].epoch, s[i].stream_seq,
               s[i].signer);
    printf("\n");
}

/* Waits until OFFICIAL holds at least n valid snapshots; returns how many it holds. */
static size_t wait_snapshots(ibp_chain_msg *out, size_t cap, size_t n)
{
    size_t have = 0;
    for (int waited = 0; waited < WAIT_MS; waited += 50) {
        if ((have = official_snapshots(out, cap)) >= n)
            break;
        rt_sleep_ms(50);
    }
    return have;
}

static uint64_t sum_republished(ibp_replica **reps, uint64_t *mismatches)
{
    uint64_t n = 0;
    *mismatches = 0;
    for (int i = 0; i < REPLICAS; i++) {
        ibp_replica_stats s;
        ibp_replica_stats_get(reps[i], &s);
        printf("replica %d: epoch=%" PRIu64 " published=%" PRIu64 " republished=%" PRIu64
               " lost_race=%" PRIu64 " mismatches=%" PRIu64 "\n",
               i, s.epoch, s.snapshots_published, s.snapshots_republished, s.snapshots_lost_race,
               s.digest_mismatches);
        n += s.snapshots_republished;
        *mismatches += s.digest_mismatches;
    }
    return n;
}

/* The one key's status in d's store: 1 up, 0 down, -1 none. */
static int dns_key_up(dns_node *d)
{
    ibp_result_list all;
    memset(&all, 0, sizeof all);
    assert_int_equal(ibp_store_official_all(d->store, &all), IBP_OK);
    int up = all.count == 1 ? (int)all.items[0]->up : -1;
    ibp_result_list_free(&all);
    return up;
}

static void test_republish(void **state)
{
    (void)state;
    ibp_err err;
    ibp_log_set_level(IBP_LOG_WARN);
    assert_int_equal(ibp_testenv_private_start(&servers), 0);
    assert_int_equal(ibp_testenv_mkdtemp(dir, sizeof dir), 0);
    ibp_roster_new(&roster);
    rt_add_nodes(roster, dir, "mon", IBP_ROLE_MONITOR, MONITORS, mon_key, mon);
    rt_add_nodes(roster, dir, "rep", IBP_ROLE_CONSENSUS, REPLICAS, rep_key, rep_signer);
    rt_must(ibp_bus_connect_url(servers.env.nats_auth_url, "test", &pub_nc, &err), &err);
    assert_int_equal(natsConnection_JetStream(&js, pub_nc, NULL), NATS_OK);
    rt_must(ibp_bus_ensure_streams(js, NULL, &err), &err);
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetStreamInfo(&si, js, IBP_STREAM_OFFICIAL, NULL, &jerr), NATS_OK);
    assert_int_equal(si->Config->Storage, js_MemoryStorage);
    jsStreamInfo_Destroy(si);
    for (int i = 0; i < REPLICAS; i++)
        rt_must(ibp_bus_connect_url(servers.env.nats_auth_url, "replica", &rep_nc[i], &err), &err);
    ibp_replica *reps[REPLICAS];
    for (int i = 0; i < REPLICAS; i++)
        reps[i] = start_replica(i);

    /* 1. Epoch 1 (all up), epoch 2 (three of five down). */
    uint64_t seq = 0;
    for (int i = 0; i < MONITORS; i++)
        seq = rt_observe(js, mon[i], true, ++batch_seq, CHECK_TIME, NULL, NULL);
    rt_wait_applied(reps, REPLICAS, seq);
    for (int i = 0; i < 3; i++)
        seq = rt_observe(js, mon[i], false, ++batch_seq, CHECK_TIME, NULL, NULL);
    rt_wait_applied(reps, REPLICAS, seq);
    ibp_chain_msg snaps[16];
    size_t n = wait_snapshots(snaps, 16, 2);
    print_snapshots("before", snaps, n);
    assert_int_equal(n, 2);
    assert_int_equal(snaps[1].epoch, 2);
    ibp_chain_msg epoch2 = snaps[1];
    dns_node running;
    dns_start(&running);
    dns_wait_epoch(&running, 2, "running subscriber");
    assert_int_equal(dns_key_up(&running), 0);

    /* 2. OFFICIAL lost while the replicas are stopped; they start from their state. */
    for (int i = 0; i < REPLICAS; i++)
        ibp_replica_stop(reps[i]);
    assert_int_equal(js_DeleteStream(js, IBP_STREAM_OFFICIAL, NULL, &jerr), NATS_OK);
    for (int i = 0; i < REPLICAS; i++)
        reps[i] = start_replica(i);
    n = wait_snapshots(snaps, 16, 1);
    rt_sleep_ms(1000); /* time for a second copy, which must not come */
    n = official_snapshots(snaps, 16);
    print_snapshots("after the replicas restarted", snaps, n);
    assert_int_equal(n, 1);
    assert_int_equal(snaps[0].epoch, 2);
    assert_int_equal(snaps[0].digest_len, epoch2.digest_len);
    assert_memory_equal(snaps[0].digest, epoch2.digest, epoch2.digest_len);
    uint64_t mismatches = 0;
    assert_int_equal(sum_republished(reps, &mismatches), 1);
    assert_int_equal(mismatches, 0);
    dns_node fresh;
    dns_start(&fresh);
    dns_wait_epoch(&fresh, 2, "new subscriber after the replicas restarted");
    assert_int_equal(dns_key_up(&fresh), 0);
    ibp_official_subscriber_stats ss;
    ibp_official_subscriber_stats_get(running.sub, &ss);
    assert_int_equal(ss.epoch, 2);
    assert_int_equal(ss.applied, 1); /* the copy of epoch 2 was not applied again */
    /* It notices that the stream started over and subscribes again, from its
     * head (epoch 2: nothing to apply); epoch 3 below shows it follows it. */
    for (int waited = 0; ss.subscribes < 2 && waited < WAIT_MS; waited += 100) {
        rt_sleep_ms(100);
        ibp_official_subscriber_stats_get(running.sub, &ss);
    }
    printf("running subscriber: applied=%" PRIu64 " ignored=%" PRIu64 " subscribes=%" PRIu64
           "\n",
           ss.applied, ss.ignored, ss.subscribes);
    assert_true(ss.subscribes >= 2);
    assert_int_equal(ss.applied, 1);
    dns_stop(&fresh);

    /* 3. nats-server itself restarts, replicas and subscriber running. */
    assert_int_equal(ibp_testenv_private_signal(&servers, IBP_TESTENV_NATS, SIGTERM), 0);
    assert_int_equal(ibp_testenv_private_restart(&servers, IBP_TESTENV_NATS), 0);
    n = wait_snapshots(snaps, 16, 1);
    rt_sleep_ms(1500);
    n = official_snapshots(snaps, 16);
    print_snapshots("after nats-server restarted", snaps, n);
    assert_int_equal(n, 1);
    assert_int_equal(snaps[0].epoch, 2);
    assert_int_equal(snaps[0].stream_seq, 1); /* a new stream */
    assert_memory_equal(snaps[0].digest, epoch2.digest, epoch2.digest_len);
    assert_int_equal(sum_republished(reps, &mismatches), 2);
    assert_int_equal(mismatches, 0);
    assert_int_equal(js_GetStreamInfo(&si, js, IBP_STREAM_OFFICIAL, NULL, &jerr), NATS_OK);
    assert_int_equal(si->Config->Storage, js_MemoryStorage);
    jsStreamInfo_Destroy(si);
    dns_start(&fresh);
    dns_wait_epoch(&fresh, 2, "new subscriber after nats-server restarted");
    assert_int_equal(dns_key_up(&fresh), 0);

    /* The next change reaches the running subscriber and the new one. */
    for (int i = 0; i < 3; i++)
        seq = rt_observe(js, mon[i], true, ++batch_seq, CHECK_TIME, NULL, NULL);
    rt_wait_applied(reps, REPLICAS, seq);
    dns_wait_epoch(&fresh, 3, "new subscriber, next epoch");
    dns_wait_epoch(&running, 3, "running subscriber, next epoch");
    assert_int_equal(dns_key_up(&fresh), 1);
    assert_int_equal(dns_key_up(&running), 1);
    n = official_snapshots(snaps, 16);
    print_snapshots("at the end", snaps, n);
    assert_int_equal(n, 2);
    assert_int_equal(snaps[1].epoch, 3);
    ibp_official_subscriber_stats_get(running.sub, &ss);
    printf("running subscriber: applied=%" PRIu64 " ignored=%" PRIu64 " subscribes=%" PRIu64
           "\n",
           ss.applied, ss.ignored, ss.subscribes);
    assert_int_equal(ss.applied, 2); /* epochs 2 and 3, nothing twice */

    dns_stop(&fresh);
    dns_stop(&running);
    for (int i = 0; i < REPLICAS; i++) {
        ibp_replica_stop(reps[i]);
        natsConnection_Destroy(rep_nc[i]);
        ibp_signer_free(rep_signer[i]);
    }
    for (int i = 0; i < MONITORS; i++)
        ibp_signer_free(mon[i]);
    jsCtx_Destroy(js);
    natsConnection_Destroy(pub_nc);
    ibp_roster_free(roster);
    ibp_testenv_rmtree(dir);
    ibp_testenv_private_stop(&servers);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_republish)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (servers.started)
        ibp_testenv_private_stop(&servers);
    return rc;
}
