/* The checker: the scheduler and its workers (see ibp/checker.h). */
#include "ibp/checker.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ibp/cache.h"
#include "ibp/check_keyset.h"
#include "ibp/check_plan.h"
#include "ibp/check_run.h"
#include "ibp/check_sched.h"
#include "ibp/clock.h"
#include "ibp/log.h"

#define COMPONENT "checker"
#define OVERDUE_GRACE_MS 1000
#define FIRST_ROUND_SPREAD_MS 1000

/* One target and its place in the schedule. */
typedef struct slot {
    ibp_check_target *t; /* owned */
    int64_t due_ms;      /* when its current round is due */
    int64_t attempt;     /* failures tried again in this round */
    bool running;
    bool removed; /* left the config while running: freed by its worker */
} slot;

struct ibp_checker {
    ibp_store *store;
    ibp_check_env env;
    ibp_check_trust *trust; /* the CAs, loaded once */
    int64_t retries, retry_delay_ms;
    size_t workers;
    pthread_t *threads;
    size_t started;

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cond;
    bool stopping;
    slot **slots; /* the current targets */
    size_t count;
    ibp_check_keyset keys; /* what ibp_checker_wants answers from */
    ibp_check_sched sched;
    ibp_checker_stats stats;
};

void ibp_checker_opts_init(ibp_checker_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->max_in_flight = IBP_CHECKER_MAX_IN_FLIGHT_DEFAULT;
    opts->retries = 1;
    opts->retry_delay_ms = 2000;
    opts->max_response_bytes = IBP_CHECK_MAX_RESPONSE_DEFAULT;
}

bool ibp_checker_wants(ibp_checker *c, const ibp_result *r)
{
    if (!c || !r)
        return true;
    pthread_mutex_lock(&c->mu);
    bool want = ibp_check_keyset_wants(&c->keys, r);
    pthread_mutex_unlock(&c->mu);
    return want;
}

/* ---- running ------------------------------------------------------------ */

static void store_outcome(ibp_checker *c, const ibp_check_target *t, const ibp_check_outcome *o)
{
    ibp_result_key key = ibp_check_target_key(t);
    ibp_result *r = NULL;
    ibp_err err = {0};
    if (ibp_result_new(&key, o->up, ibp_clock_wall_ms(), o->error, o->data_json, &r, &err) !=
            IBP_OK ||
        ibp_store_update_local(c->store, r, &err) != IBP_OK)
        IBP_LOG(IBP_LOG_WARN, COMPONENT, "cannot store check=%s member=%s error=%s", t->check,
                t->member, err.msg);
    else
        IBP_LOG(IBP_LOG_DEBUG, COMPONENT,
                "check=%s module=%s type=%s member=%s domain=%s addr=%s ipv6=%d up=%d ms=%" PRId64
                " %s",
                t->check, ibp_check_module_name(t->module), ibp_check_type_name(t->type), t->member,
                t->domain, t->addr, t->ipv6, o->up, o->duration_ms, o->error);
    ibp_result_free(r);
}

static void cond_wait_until(ibp_checker *c, int64_t until_mono_ms)
{
    int64_t wait = until_mono_ms - ibp_clock_mono_ms();
    if (wait <= 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = (int64_t)ts.tv_nsec + (wait % 1000) * 1000000;
    ts.tv_sec += (time_t)(wait / 1000 + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    pthread_cond_timedwait(&c->cond, &c->mu, &ts);
}

static void *worker_main(void *arg)
{
    ibp_checker *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        const ibp_check_sched_entry *top = ibp_check_sched_peek(&c->sched);
        if (!top) {
            pthread_cond_wait(&c->cond, &c->mu);
            continue;
        }
        if (top->due_ms > ibp_clock_mono_ms()) {
            cond_wait_until(c, top->due_ms);
            continue;
        }
        ibp_check_sched_entry e;
        ibp_check_sched_pop(&c->sched, &e);
        slot *s = e.item;
        s->running = true;
        c->stats.in_flight++;
        pthread_mutex_unlock(&c->mu);

        ibp_check_outcome o;
        ibp_check_run(s->t, &c->env, &o);

        pthread_mutex_lock(&c->mu);
        bool retry = !o.up && s->attempt < c->retries && !s->removed && !c->stopping;
        bool store = !retry && !s->removed && !c->stopping;
        pthread_mutex_unlock(&c->mu);
        if (store)
            store_outcome(c, s->t, &o);
        ibp_check_outcome_clear(&o);
        pthread_mutex_lock(&c->mu);
        c->stats.in_flight--;
        s->running = false;
        int64_t now = ibp_clock_mono_ms();
        if (s->removed) {
            ibp_check_target_free(s->t);
            free(s);
            continue;
        }
        if (retry) {
            s->attempt++;
            c->stats.retried++;
            ibp_check_sched_push(&c->sched, now + c->retry_delay_ms, s);
            continue;
        }
        if (store) {
            c->stats.runs++;
            c->stats.failed += !o.up;
        }
        s->attempt = 0;
        int64_t next = s->due_ms + s->t->interval_ms;
        s->due_ms = next > now ? next : now + s->t->interval_ms;
        if (!c->stopping)
            ibp_check_sched_push(&c->sched, s->due_ms, s);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- targets ------------------------------------------------------------ */

static void report_plan(const ibp_checker *c, const ibp_check_plan *plan, int64_t stale_ms)
{
    for (size_t i = 0; i < plan->skip_count; i++) {
        const ibp_check_skip *s = &plan->skips[i];
        IBP_LOG(IBP_LOG_WARN, COMPONENT, "cannot run check=%s%s%s: %s", s->check,
                s->member[0] ? " member=" : "", s->member, s->reason);
    }
    for (size_t i = 0; stale_ms > 0 && i < plan->count; i++) {
        const ibp_check_target *t = plan->targets[i];
        int64_t worst =
            t->interval_ms + (c->retries + 1) * t->timeout_ms + c->retries * c->retry_delay_ms;
        if (worst > stale_ms) {
            IBP_LOG(IBP_LOG_WARN, COMPONENT,
                    "check=%s: interval %" PRId64 " ms plus timeouts and retries can pass the "
                    "staleness limit %" PRId64 " ms: its votes will go stale between runs",
                    t->check, t->interval_ms, stale_ms);
            break;
        }
    }
}

/* Installs plan's targets (taken from it) in place of the current ones. Lock held. */
static ibp_status install(ibp_checker *c, ibp_check_plan *plan, int64_t first_due)
{
    slot **slots = calloc(plan->count + 1, sizeof *slots);
    bool *is_new = calloc(plan->count + 1, sizeof *is_new);
    if (!slots || !is_new)
        goto nomem;
    for (size_t i = 0; i < plan->count; i++) {
        for (size_t j = 0; j < c->count && !slots[i]; j++)
            if (c->slots[j] && !c->slots[j]->removed &&
                ibp_check_target_same(c->slots[j]->t, plan->targets[i]))
                slots[i] = c->slots[j];
        if (slots[i])
            continue;
        if (!(slots[i] = calloc(1, sizeof *slots[i])))
            goto nomem;
        is_new[i] = true;
        int64_t spread =
            plan->count > 1 ? (int64_t)i * FIRST_ROUND_SPREAD_MS / (int64_t)plan->count : 0;
        slots[i]->due_ms = first_due + spread;
    }
    /* No failure past this point. Kept slots leave the old list; the rest of it goes. */
    size_t kept = 0;
    for (size_t i = 0; i < plan->count; i++) {
        if (is_new[i]) {
            slots[i]->t = plan->targets[i];
        } else {
            ibp_check_target_free(plan->targets[i]);
            for (size_t j = 0; j < c->count; j++)
                if (c->slots[j] == slots[i])
                    c->slots[j] = NULL;
            kept++;
        }
        plan->targets[i] = NULL;
    }
    size_t n = plan->count;
    plan->count = 0;
    for (size_t j = 0; j < c->count; j++) {
        slot *s = c->slots[j];
        if (!s)
            continue;
        if (s->running) {
            s->removed = true; /* its worker frees it */
        } else {
            ibp_check_target_free(s->t);
            free(s);
        }
    }
    free(c->slots);
    free(is_new);
    c->slots = slots;
    c->count = n;
    ibp_check_sched_clear(&c->sched);
    for (size_t i = 0; i < n; i++) {
        slot *s = c->slots[i];
        if (!s->running && ibp_check_sched_push(&c->sched, s->due_ms, s) != IBP_OK)
            IBP_LOG(IBP_LOG_ERROR, COMPONENT, "out of memory scheduling check=%s", s->t->check);
    }
    c->stats.targets = n;
    IBP_LOG(IBP_LOG_INFO, COMPONENT, "targets=%zu kept=%zu cannot_run=%" PRIu64, n, kept,
            c->stats.cannot_run);
    return IBP_OK;
nomem:
    for (size_t i = 0; slots && is_new && i < plan->count; i++)
        if (is_new[i])
            free(slots[i]);
    free(slots);
    free(is_new);
    return IBP_E_NOMEM;
}

static ibp_status load(ibp_checker *c, const ibp_network *net, int64_t first_due, int64_t stale_ms,
                       ibp_err *err)
{
    ibp_check_plan plan;
    ibp_status st = ibp_check_plan_build(net, &plan, err);
    if (st != IBP_OK)
        return st;
    ibp_check_keyset keys;
    if ((st = ibp_check_keyset_build(&plan, net, &keys)) != IBP_OK) {
        ibp_check_plan_free(&plan);
        return ibp_err_set(err, st, "checker: out of memory");
    }
    report_plan(c, &plan, stale_ms);
    pthread_mutex_lock(&c->mu);
    c->stats.cannot_run = plan.skip_count;
    st = install(c, &plan, first_due);
    if (st == IBP_OK) {
        ibp_check_keyset_free(&c->keys);
        c->keys = keys;
        memset(&keys, 0, sizeof keys);
        pthread_cond_broadcast(&c->cond);
    }
    pthread_mutex_unlock(&c->mu);
    ibp_check_keyset_free(&keys);
    ibp_check_plan_free(&plan);
    if (st != IBP_OK)
        return ibp_err_set(err, st, "checker: out of memory");
    return IBP_OK;
}

/* ---- lifecycle ---------------------------------------------------------- */

static void checker_free(ibp_checker *c)
{
    for (size_t i = 0; i < c->count; i++) {
        ibp_check_target_free(c->slots[i]->t);
        free(c->slots[i]);
    }
    free(c->slots);
    ibp_check_keyset_free(&c->keys);
    ibp_check_sched_free(&c->sched);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    free(c->threads);
    ibp_check_trust_free(c->trust);
    free(c);
}

static void stop_workers(ibp_checker *c)
{
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < c->started; i++)
        pthread_join(c->threads[i], NULL);
    c->started = 0;
}

ibp_status ibp_checker_start(const ibp_checker_opts *opts, ibp_checker **out, ibp_err *err)
{
    if (!opts || !opts->network || !opts->store || !out)
        return ibp_err_set(err, IBP_E_INVAL, "checker: network and store are required");
    if (opts->max_in_flight < 1 || opts->max_in_flight > IBP_CHECKER_MAX_IN_FLIGHT_MAX ||
        opts->retries < 0 || opts->retry_delay_ms < 0)
        return ibp_err_set(err, IBP_E_INVAL,
                           "checker: max_in_flight must be 1..%d, retries and retry delay >= 0",
                           IBP_CHECKER_MAX_IN_FLIGHT_MAX);
    if (ibp_check_global_init() != IBP_OK)
        return ibp_err_set(err, IBP_E_NOMEM, "checker: libcurl failed to initialise");
    ibp_check_trust *trust = NULL;
    ibp_status tst = ibp_check_trust_load(opts->ca_file, &trust, err);
    if (tst != IBP_OK)
        return tst;
    ibp_checker *c = calloc(1, sizeof *c);
    if (!c) {
        ibp_check_trust_free(trust);
        return ibp_err_set(err, IBP_E_NOMEM, "checker: out of memory");
    }
    c->trust = trust;
    c->env.trust = trust;
    c->store = opts->store;
    c->retries = opts->retries;
    c->retry_delay_ms = opts->retry_delay_ms;
    c->workers = opts->max_in_flight;
    c->env.max_response_bytes = opts->max_response_bytes;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    ibp_status st =
        load(c, opts->network, ibp_clock_deadline(opts->first_delay_ms), opts->stale_ms, err);
    if (st == IBP_OK && !(c->threads = calloc(c->workers, sizeof *c->threads)))
        st = ibp_err_set(err, IBP_E_NOMEM, "checker: out of memory");
    for (size_t i = 0; st == IBP_OK && i < c->workers; i++) {
        if (pthread_create(&c->threads[i], NULL, worker_main, c) != 0)
            st = ibp_err_set(err, IBP_E_NOMEM, "checker: cannot start worker %zu", i);
        else
            c->started++;
    }
    if (st != IBP_OK) {
        stop_workers(c);
        checker_free(c);
        return st;
    }
    IBP_LOG(IBP_LOG_INFO, COMPONENT,
            "started targets=%zu max_in_flight=%zu retries=%" PRId64 " retry_delay_ms=%" PRId64,
            c->count, c->workers, c->retries, c->retry_delay_ms);
    *out = c;
    return IBP_OK;
}

ibp_status ibp_checker_reload(ibp_checker *c, const ibp_network *net, ibp_err *err)
{
    if (!c || !net)
        return ibp_err_set(err, IBP_E_INVAL, "checker: reload needs a network");
    ibp_status st = load(c, net, ibp_clock_mono_ms(), 0, err);
    if (st == IBP_OK) {
        pthread_mutex_lock(&c->mu);
        c->stats.reloads++;
        pthread_mutex_unlock(&c->mu);
    }
    return st;
}

ibp_status ibp_checker_validate(const ibp_network *net, ibp_err *err)
{
    if (!net)
        return ibp_err_set(err, IBP_E_INVAL, "checker: network is required");
    ibp_check_plan plan;
    ibp_status st = ibp_check_plan_build(net, &plan, err);
    if (st == IBP_OK)
        ibp_check_plan_free(&plan);
    return st;
}

size_t ibp_checker_target_count(ibp_checker *c)
{
    if (!c)
        return 0;
    pthread_mutex_lock(&c->mu);
    size_t n = c->count;
    pthread_mutex_unlock(&c->mu);
    return n;
}

uint64_t ibp_checker_runs(ibp_checker *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t n = c->stats.runs;
    pthread_mutex_unlock(&c->mu);
    return n;
}

void ibp_checker_stats_get(ibp_checker *c, ibp_checker_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    out->overdue = ibp_check_sched_due(&c->sched, ibp_clock_mono_ms() - OVERDUE_GRACE_MS);
    pthread_mutex_unlock(&c->mu);
}

void ibp_checker_stop(ibp_checker *c)
{
    if (!c)
        return;
    stop_workers(c);
    IBP_LOG(IBP_LOG_INFO, COMPONENT, "stopped runs=%" PRIu64 " failed=%" PRIu64 " retried=%" PRIu64,
            c->stats.runs, c->stats.failed, c->stats.retried);
    checker_free(c);
}

ibp_status ibp_checker_run_once(const ibp_checker_opts *opts, size_t *targets, ibp_err *err)
{
    if (!opts || !opts->network || !opts->store)
        return ibp_err_set(err, IBP_E_INVAL, "checker: network and store are required");
    if (ibp_check_global_init() != IBP_OK)
        return ibp_err_set(err, IBP_E_NOMEM, "checker: libcurl failed to initialise");
    ibp_check_plan plan;
    ibp_status st = ibp_check_plan_build(opts->network, &plan, err);
    if (st != IBP_OK)
        return st;
    ibp_checker tmp = {.store = opts->store};
    if ((st = ibp_check_trust_load(opts->ca_file, &tmp.trust, err)) != IBP_OK) {
        ibp_check_plan_free(&plan);
        return st;
    }
    tmp.env.trust = tmp.trust;
    tmp.env.max_response_bytes = opts->max_response_bytes;
    for (size_t i = 0; i < plan.count; i++) {
        ibp_check_outcome o;
        ibp_check_run(plan.targets[i], &tmp.env, &o);
        store_outcome(&tmp, plan.targets[i], &o);
        ibp_check_outcome_clear(&o);
    }
    if (targets)
        *targets = plan.count;
    ibp_check_trust_free(tmp.trust);
    ibp_check_plan_free(&plan);
    return IBP_OK;
}

/* Drops the results s does not want from the local cache at path, rewriting it when any was. */
static ibp_status prune_cache(const ibp_check_keyset *s, const char *path, size_t *dropped,
                              ibp_err *err)
{
    *dropped = 0;
    ibp_cache_loaded c;
    ibp_status st = ibp_cache_load(path, IBP_CACHE_LOCAL, &c, err);
    if (st != IBP_OK || c.outcome != IBP_CACHE_LOADED) {
        if (st == IBP_OK)
            ibp_cache_loaded_free(&c);
        return st;
    }
    const ibp_result **keep = calloc(c.results.count + 1, sizeof *keep);
    if (!keep) {
        ibp_cache_loaded_free(&c);
        return ibp_err_set(err, IBP_E_NOMEM, "local cache: out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; i < c.results.count; i++) {
        const ibp_result *r = c.results.items[i];
        if (ibp_check_keyset_wants(s, r))
            keep[n++] = r;
        else
            (*dropped)++;
    }
    if (*dropped) {
        ibp_cache_contents out = {.kind = IBP_CACHE_LOCAL,
                                  .saved_at_ms = c.saved_at_ms,
                                  .results = keep,
                                  .result_count = n};
        st = ibp_cache_save(path, &out, err);
    }
    free(keep);
    ibp_cache_loaded_free(&c);
    return st;
}

ibp_status ibp_checker_prune_local_cache(const ibp_network *net, const char *work_dir,
                                         size_t *dropped, ibp_err *err)
{
    char path[IBP_CACHE_PATH_MAX];
    ibp_check_plan plan;
    ibp_check_keyset keys;
    *dropped = 0;
    ibp_status st = ibp_cache_path(work_dir, IBP_CACHE_LOCAL, path, sizeof path, err);
    if (st != IBP_OK || (st = ibp_check_plan_build(net, &plan, err)) != IBP_OK)
        return st;
    if ((st = ibp_check_keyset_build(&plan, net, &keys)) != IBP_OK) {
        ibp_check_plan_free(&plan);
        return ibp_err_set(err, st, "checker: out of memory");
    }
    st = prune_cache(&keys, path, dropped, err);
    ibp_check_keyset_free(&keys);
    ibp_check_plan_free(&plan);
    return st;
}
