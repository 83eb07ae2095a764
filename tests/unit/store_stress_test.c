/*
 * Stress test of the official store under concurrency (run it under TSan:
 * tests/run.sh --tsan -R store_stress). Writers swap whole snapshots that are
 * either "every member up" or "every member down" while readers check that
 * they only ever see one of the two, never a mix, and that the epoch they see
 * matches the state; other writers toggle overrides and single results.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "ibp/store.h"

#define MEMBERS 16
#define SWAPS 300
#define READERS 3
#define MIN_READS 1000

static ibp_store *store;
static const char *names[MEMBERS];
static ibp_result *all_up[MEMBERS], *all_down[MEMBERS];
static atomic_int done;
static atomic_long reads, torn;

static ibp_result *make(const char *member, bool up)
{
    ibp_result_key k = {IBP_CHECK_DOMAIN, "ssl", member, "rpc.ibp.network", NULL, false};
    ibp_result *r;
    ibp_err err;
    assert_int_equal(ibp_result_new(&k, up, 1, NULL, NULL, &r, &err), IBP_OK);
    return r;
}

static atomic_ulong swaps;

/* Swaps at least SWAPS times, and on until the readers have read MIN_READS
 * times: on a loaded machine the readers may not be scheduled at first. */
static void *swapper(void *arg)
{
    (void)arg;
    ibp_err err;
    for (uint64_t i = 1; i <= SWAPS || atomic_load(&reads) < MIN_READS; i++) {
        /* Odd epochs: all down; even epochs: all up. */
        ibp_result **set = (i % 2) ? all_down : all_up;
        if (ibp_store_set_official(store, (const ibp_result *const *)set, MEMBERS, i, false,
                                   &err) != IBP_OK)
            abort();
        atomic_store(&swaps, i);
    }
    atomic_store(&done, 1);
    return NULL;
}

static void *toggler(void *arg)
{
    (void)arg;
    ibp_err err;
    while (!atomic_load(&done)) {
        /* Overrides and single updates on a member outside the checked set. */
        ibp_store_member_disable(store, "Other", "stress", &err);
        ibp_result *r = make("Other", false);
        ibp_store_update_official(store, r, &err);
        ibp_result_free(r);
        ibp_store_member_enable(store, "Other", &err);
    }
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    const char *online[MEMBERS];
    while (!atomic_load(&done)) {
        size_t n = 0;
        bool last = false;
        ibp_store_online_members(store, "rpc.ibp.network", false, names, MEMBERS, online, &n,
                                 &last);
        /* The update is atomic: either no member had a result down (n ==
         * MEMBERS, not last resort) or all of them were down (last resort). */
        if (n != MEMBERS)
            atomic_fetch_add(&torn, 1);
        ibp_result_list list = {0};
        if (ibp_store_official_all(store, &list) == IBP_OK) {
            size_t up = 0, mine = 0;
            for (size_t i = 0; i < list.count; i++) {
                if (list.items[i]->member[0] == 'm') {
                    mine++;
                    up += list.items[i]->up;
                }
            }
            if (mine != 0 && mine != MEMBERS)
                atomic_fetch_add(&torn, 1);
            if (up != 0 && up != mine)
                atomic_fetch_add(&torn, 1);
            ibp_result_list_free(&list);
        }
        (void)last;
        atomic_fetch_add(&reads, 1);
    }
    return NULL;
}

static void test_readers_see_whole_snapshots(void **state)
{
    (void)state;
    char buf[MEMBERS][16];
    ibp_store_opts opts;
    ibp_store_opts_init(&opts);
    assert_int_equal(ibp_store_new(&opts, &store), IBP_OK);
    for (int i = 0; i < MEMBERS; i++) {
        snprintf(buf[i], sizeof buf[i], "m%02d", i);
        names[i] = buf[i];
        all_up[i] = make(names[i], true);
        all_down[i] = make(names[i], false);
    }
    pthread_t w, t, r[READERS];
    pthread_create(&w, NULL, swapper, NULL);
    pthread_create(&t, NULL, toggler, NULL);
    for (int i = 0; i < READERS; i++)
        pthread_create(&r[i], NULL, reader, NULL);
    pthread_join(w, NULL);
    pthread_join(t, NULL);
    for (int i = 0; i < READERS; i++)
        pthread_join(r[i], NULL);
    printf("reads=%ld torn=%ld epoch=%llu\n", atomic_load(&reads), atomic_load(&torn),
           (unsigned long long)ibp_store_official_epoch(store));
    assert_int_equal(atomic_load(&torn), 0);
    assert_true(atomic_load(&reads) >= MIN_READS);
    assert_int_equal(ibp_store_official_epoch(store), atomic_load(&swaps));
    for (int i = 0; i < MEMBERS; i++) {
        ibp_result_free(all_up[i]);
        ibp_result_free(all_down[i]);
    }
    ibp_store_free(store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readers_see_whole_snapshots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
