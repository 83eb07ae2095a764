/*
 * Integration: consensus replicas going down and coming back, as a dns node
 * sees it (ibp/certificate.h, README "Quorum certificates").
 *
 * Three consensus replicas (quorum: a majority, 2) and an official
 * subscriber with the dns role's NATS identity, in this process, on a
 * private nats-server. Five monitors flip one key, one epoch per flip.
 *   - All three up: the epoch is certified and the subscriber applies it.
 *   - One replica stopped: the next epochs are still certified, by exactly
 *     the two left, and the subscriber follows each one.
 *   - A second replica stopped: the last one still publishes the next epoch,
 *     vouched for by itself alone; the subscriber keeps the last certified
 *     epoch and says it holds one waiting for its certificate.
 *   - One started again: it catches up and co-signs the held epoch, which the
 *     subscriber applies, and the epochs after it as well.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "certify_testlib.h"
#include "ibp/log.h"
#include "ibp/official_subscriber.h"
#include "ibp/store.h"
#include "replica_testlib.h"

#define REPLICAS 3
#define WAIT_MS 30000 /* sanitizer builds are slow */

static ct_cluster cluster;

static void stats_of(ibp_official_subscriber *sub, ibp_official_subscriber_stats *s)
{
    ibp_official_subscriber_stats_get(sub, s);
    printf("subscriber: epoch=%" PRIu64 " applied=%" PRIu64 " certified=%" PRIu64
           " signers=%" PRIu64 " uncertified_pending=%" PRIu64 " forged_refused=%" PRIu64
           " statements=%" PRIu64 "\n",
           s->epoch, s->applied, s->certified, s->cert_signers, s->uncertified_pending,
           s->forged_refused, s->statements);
}

/* Waits until the subscriber holds want snapshots for their certificate (it
 * counts them just after an apply, so a moment after wait_epoch returns). */
static void wait_pending(ibp_official_subscriber *sub, uint64_t want,
                         ibp_official_subscriber_stats *s)
{
    for (int i = 0; i < WAIT_MS / 20; i++) {
        ibp_official_subscriber_stats_get(sub, s);
        if (s->uncertified_pending == want)
            break;
        rt_sleep_ms(20);
    }
    stats_of(sub, s);
    assert_int_equal(s->uncertified_pending, want);
}

/* One flip, published and applied; checks how many replicas vouch for it. */
static uint64_t flip_and_follow(ibp_official_subscriber *sub, uint64_t epoch, size_t signers)
{
    ct_flip(&cluster);
    ct_wait_published(&cluster, epoch);
    if (ibp_official_subscriber_wait_epoch(sub, epoch, WAIT_MS) != IBP_OK)
        fail_msg("the subscriber did not apply epoch %" PRIu64, epoch);
    ibp_official_subscriber_stats s;
    wait_pending(sub, 0, &s);
    assert_int_equal(s.epoch, epoch);
    assert_int_equal(s.certified, s.applied);
    assert_true(s.cert_signers >= 2);
    assert_int_equal(ct_signers(&cluster, epoch), signers);
    return epoch;
}

static void test_replica_down(void **state)
{
    (void)state;
    ibp_err err;
    ibp_log_set_level(IBP_LOG_ERROR);
    ct_cluster_start(&cluster, REPLICAS);

    ibp_store *store = NULL;
    ibp_store_opts so;
    ibp_store_opts_init(&so);
    assert_int_equal(ibp_store_new(&so, &store), IBP_OK);
    natsConnection *dns_nc = ct_connect(&cluster, IBP_TESTENV_NATS_DNS, "dns");
    ibp_official_subscriber_opts o;
    ibp_official_subscriber_opts_init(&o);
    o.nc = dns_nc;
    o.roster = cluster.roster;
    o.store = store;
    o.retry_ms = 200;
    ibp_official_subscriber *sub = NULL;
    rt_must(ibp_official_subscriber_start(&o, &sub, &err), &err);
    ibp_official_subscriber_stats s;
    stats_of(sub, &s);
    assert_int_equal(s.quorum, 2);

    /* All three up. Each of them vouches for the epoch once it computed it. */
    uint64_t epoch = 1;
    ct_flip(&cluster);
    ct_wait_published(&cluster, epoch);
    assert_int_equal(ibp_official_subscriber_wait_epoch(sub, epoch, WAIT_MS), IBP_OK);
    for (int i = 0; i < 500 && ct_signers(&cluster, epoch) < REPLICAS; i++)
        rt_sleep_ms(20);
    assert_int_equal(ct_signers(&cluster, epoch), REPLICAS);

    /* rep3 stopped: two of three still certify, and the subscriber follows. */
    ct_replica_stop(&cluster, 2);
    epoch = flip_and_follow(sub, epoch + 1, 2);
    epoch = flip_and_follow(sub, epoch + 1, 2);
    stats_of(sub, &s);
    assert_int_equal(s.cert_signers, 2);
    uint64_t applied = s.applied;

    /* rep2 stopped too: rep1 publishes the next epoch alone, which no quorum certifies. */
    ct_replica_stop(&cluster, 1);
    ct_flip(&cluster);
    ct_wait_published(&cluster, epoch + 1);
    wait_pending(sub, 1, &s);
    rt_sleep_ms(300); /* time enough to apply it, had it been certified */
    stats_of(sub, &s);
    assert_int_equal(s.epoch, epoch);
    assert_int_equal(s.applied, applied);
    assert_int_equal(s.uncertified_pending, 1);
    assert_int_equal(ibp_store_official_epoch(store), epoch);
    assert_int_equal(ct_signers(&cluster, epoch + 1), 1);

    /* rep2 back: it catches up, co-signs the held epoch, and the subscriber applies it. */
    ct_replica_start(&cluster, 1);
    epoch++;
    if (ibp_official_subscriber_wait_epoch(sub, epoch, WAIT_MS) != IBP_OK)
        fail_msg("the held epoch %" PRIu64 " was not applied after rep2 came back", epoch);
    wait_pending(sub, 0, &s);
    assert_int_equal(s.cert_signers, 2);
    assert_int_equal(ct_signers(&cluster, epoch), 2);
    epoch = flip_and_follow(sub, epoch + 1, 2);
    stats_of(sub, &s);
    assert_int_equal(s.forged_refused, 0);
    assert_int_equal(s.rejected, 0);

    ibp_official_subscriber_stop(sub);
    ibp_store_free(store);
    natsConnection_Close(dns_nc);
    natsConnection_Destroy(dns_nc);
    ct_cluster_stop(&cluster);
}

static int teardown(void **state)
{
    (void)state;
    ct_cluster_stop(&cluster);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_replica_down)};
    return cmocka_run_group_tests(tests, NULL, teardown);
}
