/*
 * Benchmark: member-status queries against the official store.
 *
 *   BENCH member_online_per_s_small          ~IBP network size (7 members, 83 endpoint keys)
 *   BENCH member_online_per_s_100k           100k official keys (200 members, 500 domains)
 *   BENCH member_online_per_s_100k_writer    the same while another thread swaps in a
 *                                            new snapshot as fast as it can
 *   RATIO member_online_writer_vs_idle       the two above: a writer must not slow readers
 *   BENCH snapshot_swaps_per_s_100k          what that writer achieved
 * One reader thread; target >= 5M queries/s/thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ibp/store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct world {
    size_t members, domains, keys;
    char **member;
    char **domain;
    ibp_result **results;
};

static void world_make(struct world *w, size_t members, size_t domains, size_t keys)
{
    w->members = members;
    w->domains = domains;
    w->keys = keys;
    w->member = calloc(members, sizeof *w->member);
    w->domain = calloc(domains, sizeof *w->domain);
    w->results = calloc(keys, sizeof *w->results);
    char buf[128];
    for (size_t i = 0; i < members; i++) {
        snprintf(buf, sizeof buf, "Member %zu", i);
        w->member[i] = strdup(buf);
    }
    for (size_t i = 0; i < domains; i++) {
        snprintf(buf, sizeof buf, "rpc%zu.ibp.network", i);
        w->domain[i] = strdup(buf);
    }
    unsigned seed = 42;
    for (size_t i = 0; i < keys; i++) {
        char url[160];
        size_t d = i % domains;
        snprintf(url, sizeof url, "wss://%s/chain-%zu", w->domain[d], i);
        ibp_result_key k = {IBP_CHECK_ENDPOINT, "wss", w->member[(i / domains) % members],
                            w->domain[d],       url,   (i & 1) != 0};
        ibp_err err;
        bool up = rand_r(&seed) % 50 != 0; /* 2% down */
        if (ibp_result_new(&k, up, 1, NULL, NULL, &w->results[i], &err) != IBP_OK) {
            fprintf(stderr, "result: %s\n", err.msg);
            exit(1);
        }
    }
}

static void world_free(struct world *w)
{
    for (size_t i = 0; i < w->members; i++)
        free(w->member[i]);
    for (size_t i = 0; i < w->domains; i++)
        free(w->domain[i]);
    for (size_t i = 0; i < w->keys; i++)
        ibp_result_free(w->results[i]);
    free(w->member);
    free(w->domain);
    free(w->results);
}

static double query_rate(ibp_store *s, const struct world *w, size_t queries)
{
    volatile size_t online = 0;
    double t0 = now_s();
    for (size_t i = 0; i < queries; i++)
        online += ibp_store_member_online(s, w->domain[(i * 7) % w->domains],
                                          w->member[(i * 13) % w->members], i & 1);
    return (double)queries / (now_s() - t0);
}

struct writer_arg {
    ibp_store *s;
    const struct world *w;
    atomic_int stop;
    long swaps;
};

static void *writer(void *p)
{
    struct writer_arg *a = p;
    ibp_err err;
    for (uint64_t e = 2; !atomic_load(&a->stop); e++) {
        if (ibp_store_set_official(a->s, (const ibp_result *const *)a->w->results, a->w->keys, e,
                                   false, &err) != IBP_OK)
            exit(1);
        a->swaps++;
    }
    return NULL;
}

int main(void)
{
    ibp_err err;
    struct world small, big;
    world_make(&small, 7, 48, 83);
    world_make(&big, 200, 500, 100000);

    ibp_store *s;
    ibp_store_new(NULL, &s);
    ibp_store_set_official(s, (const ibp_result *const *)small.results, small.keys, 1, false, &err);
    double small_rate = query_rate(s, &small, 20000000);
    ibp_store_free(s);

    ibp_store_new(NULL, &s);
    ibp_store_set_official(s, (const ibp_result *const *)big.results, big.keys, 1, false, &err);
    double idle_rate = query_rate(s, &big, 20000000);

    struct writer_arg a = {.s = s, .w = &big};
    pthread_t t;
    pthread_create(&t, NULL, writer, &a);
    double t0 = now_s();
    double busy_rate = query_rate(s, &big, 20000000);
    atomic_store(&a.stop, 1);
    pthread_join(t, NULL);
    double swaps_per_s = (double)a.swaps / (now_s() - t0);
    ibp_store_free(s);

    printf("BENCH member_online_per_s_small %.0f queries/s\n", small_rate);
    printf("BENCH member_online_per_s_100k %.0f queries/s\n", idle_rate);
    printf("BENCH member_online_per_s_100k_writer %.0f queries/s\n", busy_rate);
    printf("RATIO member_online_writer_vs_idle %.2f\n", busy_rate / idle_rate);
    printf("BENCH snapshot_swaps_per_s_100k %.1f swaps/s\n", swaps_per_s);
    world_free(&small);
    world_free(&big);
    return 0;
}
