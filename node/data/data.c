/* The data library assembled: store, caches, usage; see ibp/data.h. */
#include "ibp/data.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/cache.h"
#include "ibp/clock.h"
#include "ibp/log.h"

struct ibp_data {
    ibp_data_opts opts;
    char *work_dir;
    ibp_store *store;
    ibp_usage *usage;
    int64_t last_save_ms;
    uint64_t cache_refused;
    /* The certificate of cert_epoch (0: none), saved with the official cache. */
    pthread_mutex_t cert_mu;
    uint64_t cert_epoch;
    ibp_cache_certificate cert; /* cert.bytes and cert.snapshot owned */
};

void ibp_data_opts_init(ibp_data_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->cache_save_ms = IBP_DATA_CACHE_SAVE_MS_DEFAULT;
}

static int64_t data_now_ms(const ibp_data *d)
{
    if (d->opts.now_ms)
        return d->opts.now_ms(d->opts.clock_user);
    return ibp_clock_wall_ms();
}

static ibp_status load_official(ibp_data *d, ibp_err *err)
{
    char path[IBP_CACHE_PATH_MAX];
    ibp_cache_loaded c;
    ibp_status st = ibp_cache_path(d->work_dir, IBP_CACHE_OFFICIAL, path, sizeof path, err);
    if (st == IBP_OK)
        st = ibp_cache_load(path, IBP_CACHE_OFFICIAL, &c, err);
    if (st != IBP_OK)
        return ibp_err_wrap(err, "load official cache");
    if (c.outcome == IBP_CACHE_DISCARDED)
        d->cache_refused++; /* its contents do not verify; ibp_cache_load said why and where */
    if (c.outcome == IBP_CACHE_LOADED && d->opts.certificate_roster && c.has_epoch && c.epoch > 0) {
        char why[320];
        if (ibp_cache_certificate_check(&c, d->opts.certificate_roster,
                                        d->opts.certificate_quorum, NULL, why,
                                        sizeof why) != IBP_OK) {
            d->cache_refused++;
            /* Moved aside, or the next save would replace the evidence. */
            char moved[IBP_CACHE_PATH_MAX];
            int e = 0;
            if (!ibp_cache_move_aside(path, "refused", moved, sizeof moved, &e))
                snprintf(moved, sizeof moved, "(not moved: %s)", strerror(e));
            IBP_LOG(IBP_LOG_WARN, "data",
                    "official cache refused, starting empty until a certified epoch arrives: "
                    "%s path=%s epoch=%" PRIu64 " quorum=%zu moved_to=%s",
                    why, path, c.epoch, d->opts.certificate_quorum, moved);
            ibp_cache_loaded_free(&c);
            return IBP_OK;
        }
        /* Saved again with the cache until the next epoch replaces it. */
        if (ibp_data_set_official_certificate(d, c.epoch, &c.certificate) != IBP_OK) {
            ibp_cache_loaded_free(&c);
            return ibp_err_set(err, IBP_E_NOMEM, "load official cache: out of memory");
        }
    }
    if (c.outcome == IBP_CACHE_LOADED) {
        size_t n_ovr = 0;
        ibp_override *ovr = calloc(c.override_count ? c.override_count : 1, sizeof *ovr);
        if (!ovr) {
            ibp_cache_loaded_free(&c);
            return ibp_err_set(err, IBP_E_NOMEM, "load official cache: out of memory");
        }
        for (size_t i = 0; i < c.override_count; i++)
            if (c.overrides[i].disabled)
                ovr[n_ovr++] = (ibp_override){c.overrides[i].member, c.overrides[i].reason,
                                              c.overrides[i].time_ms};
        st = ibp_store_set_snapshot(d->store, (const ibp_result *const *)c.results.items,
                                    c.results.count, ovr, n_ovr, c.has_epoch ? c.epoch : 0, false,
                                    err);
        free(ovr);
        if (st == IBP_OK)
            IBP_LOG(IBP_LOG_INFO, "data",
                    "loaded official cache path=%s results=%zu overrides=%zu epoch=%llu", path,
                    c.results.count, n_ovr, (unsigned long long)(c.has_epoch ? c.epoch : 0));
    }
    ibp_cache_loaded_free(&c);
    return st;
}

static ibp_status load_local(ibp_data *d, ibp_err *err)
{
    char path[IBP_CACHE_PATH_MAX];
    ibp_cache_loaded c;
    ibp_status st = ibp_cache_path(d->work_dir, IBP_CACHE_LOCAL, path, sizeof path, err);
    if (st == IBP_OK)
        st = ibp_cache_load(path, IBP_CACHE_LOCAL, &c, err);
    if (st != IBP_OK)
        return ibp_err_wrap(err, "load local cache");
    for (size_t i = 0; st == IBP_OK && i < c.results.count; i++)
        st = ibp_store_update_local(d->store, c.results.items[i], err);
    if (st == IBP_OK && c.outcome == IBP_CACHE_LOADED)
        IBP_LOG(IBP_LOG_INFO, "data", "loaded local cache path=%s results=%zu", path,
                c.results.count);
    ibp_cache_loaded_free(&c);
    return st;
}

ibp_status ibp_data_open(const ibp_data_opts *opts, ibp_data **out, ibp_err *err)
{
    ibp_status st;
    bool needs_dir = opts->use_official_cache || opts->use_local_cache || opts->usage;
    if (needs_dir && (!opts->work_dir || !*opts->work_dir))
        return ibp_err_set(err, IBP_E_INVAL, "data: caches and usage need a work dir");
    ibp_data *d = calloc(1, sizeof *d);
    if (!d)
        return ibp_err_set(err, IBP_E_NOMEM, "data: out of memory");
    d->opts = *opts;
    pthread_mutex_init(&d->cert_mu, NULL);
    if (d->opts.certificate_roster && d->opts.certificate_quorum == 0)
        d->opts.certificate_quorum = 1; /* a roster without a quorum: at least one signer */
    if (d->opts.cache_save_ms <= 0)
        d->opts.cache_save_ms = IBP_DATA_CACHE_SAVE_MS_DEFAULT;
    if (opts->work_dir && !(d->work_dir = strdup(opts->work_dir))) {
        free(d);
        return ibp_err_set(err, IBP_E_NOMEM, "data: out of memory");
    }
    d->opts.work_dir = d->work_dir;
    d->opts.usage = NULL; /* not kept: copied into ibp_usage_open below */

    ibp_store_opts so;
    ibp_store_opts_init(&so);
    so.network = opts->network;
    so.event_sink = opts->event_sink;
    so.event_user = opts->event_user;
    so.now_ms = opts->now_ms;
    so.clock_user = opts->clock_user;
    if ((st = ibp_store_new(&so, &d->store)) != IBP_OK) {
        ibp_err_set(err, st, "data: store: %s", ibp_strerror(st));
        goto fail;
    }
    if (opts->use_official_cache && (st = load_official(d, err)) != IBP_OK)
        goto fail;
    if (opts->use_local_cache && (st = load_local(d, err)) != IBP_OK)
        goto fail;
    if (opts->usage) {
        ibp_usage_opts uo = *opts->usage;
        if (!uo.work_dir)
            uo.work_dir = d->work_dir;
        if ((st = ibp_usage_open(&uo, &d->usage, err)) != IBP_OK) {
            ibp_err_wrap(err, "data: usage");
            goto fail;
        }
    }
    d->last_save_ms = data_now_ms(d);
    *out = d;
    return IBP_OK;
fail:
    ibp_store_free(d->store);
    free((void *)d->cert.bytes);
    free((void *)d->cert.snapshot);
    pthread_mutex_destroy(&d->cert_mu);
    free(d->work_dir);
    free(d);
    return st;
}

ibp_status ibp_data_set_official_certificate(ibp_data *d, uint64_t epoch,
                                             const ibp_cache_certificate *cert)
{
    uint8_t *copy = malloc(cert->len ? cert->len : 1);
    uint8_t *snap = malloc(cert->snapshot_len ? cert->snapshot_len : 1);
    if (!copy || !snap) {
        free(copy);
        free(snap);
        return IBP_E_NOMEM;
    }
    memcpy(copy, cert->bytes, cert->len);
    if (cert->snapshot_len)
        memcpy(snap, cert->snapshot, cert->snapshot_len);
    pthread_mutex_lock(&d->cert_mu);
    free((void *)d->cert.bytes);
    free((void *)d->cert.snapshot);
    d->cert = *cert;
    d->cert.bytes = copy;
    d->cert.snapshot = snap;
    d->cert_epoch = epoch;
    pthread_mutex_unlock(&d->cert_mu);
    return IBP_OK;
}

uint64_t ibp_data_official_cache_refused(const ibp_data *d)
{
    return d->cache_refused;
}

ibp_store *ibp_data_store(ibp_data *d)
{
    return d->store;
}

ibp_usage *ibp_data_usage(ibp_data *d)
{
    return d->usage;
}

static ibp_status save_official(ibp_data *d, ibp_err *err)
{
    char path[IBP_CACHE_PATH_MAX];
    ibp_result_list list = {0};
    ibp_override *ovr = NULL;
    ibp_cache_override *covr = NULL;
    size_t n_ovr = 0;
    /* The epoch is read before the results: a snapshot swapped in between makes
     * the cache claim an older epoch than its contents, never a newer one. */
    uint64_t epoch = ibp_store_official_epoch(d->store);
    ibp_status st = ibp_cache_path(d->work_dir, IBP_CACHE_OFFICIAL, path, sizeof path, err);
    if (st != IBP_OK)
        return st;
    if ((st = ibp_store_official_all(d->store, &list)) != IBP_OK ||
        (st = ibp_store_overrides(d->store, &ovr, &n_ovr)) != IBP_OK) {
        ibp_err_set(err, st, "save official cache %s: %s", path, ibp_strerror(st));
        goto out;
    }
    covr = calloc(n_ovr ? n_ovr : 1, sizeof *covr);
    if (!covr) {
        st = ibp_err_set(err, IBP_E_NOMEM, "save official cache %s: out of memory", path);
        goto out;
    }
    for (size_t i = 0; i < n_ovr; i++)
        covr[i] = (ibp_cache_override){ovr[i].member, true, ovr[i].reason, ovr[i].time_ms};
    ibp_cache_contents c = {
        .kind = IBP_CACHE_OFFICIAL,
        .saved_at_ms = data_now_ms(d),
        .has_epoch = true,
        .epoch = epoch,
        .results = (const ibp_result *const *)list.items,
        .result_count = list.count,
        .overrides = covr,
        .override_count = n_ovr,
    };
    /* The certificate goes with the cache only when it is of the epoch the
     * cache claims; a copy, since the subscriber may replace it meanwhile. */
    ibp_cache_certificate cert = {0};
    uint8_t *cert_bytes = NULL, *snap_bytes = NULL;
    pthread_mutex_lock(&d->cert_mu);
    if (d->cert_epoch == epoch && epoch > 0 && d->cert.snapshot_len &&
        (cert_bytes = malloc(d->cert.len)) != NULL &&
        (snap_bytes = malloc(d->cert.snapshot_len)) != NULL) {
        cert = d->cert;
        memcpy(cert_bytes, d->cert.bytes, d->cert.len);
        memcpy(snap_bytes, d->cert.snapshot, d->cert.snapshot_len);
        cert.bytes = cert_bytes;
        cert.snapshot = snap_bytes;
        c.certificate = &cert;
    }
    pthread_mutex_unlock(&d->cert_mu);
    st = ibp_cache_save(path, &c, err);
    free(cert_bytes);
    free(snap_bytes);
out:
    free(covr);
    ibp_store_overrides_free(ovr, n_ovr);
    ibp_result_list_free(&list);
    return st;
}

static ibp_status save_local(ibp_data *d, ibp_err *err)
{
    char path[IBP_CACHE_PATH_MAX];
    ibp_result_list list = {0};
    ibp_status st = ibp_cache_path(d->work_dir, IBP_CACHE_LOCAL, path, sizeof path, err);
    if (st != IBP_OK)
        return st;
    if ((st = ibp_store_local_all(d->store, &list)) != IBP_OK)
        return ibp_err_set(err, st, "save local cache %s: %s", path, ibp_strerror(st));
    ibp_cache_contents c = {
        .kind = IBP_CACHE_LOCAL,
        .saved_at_ms = data_now_ms(d),
        .results = (const ibp_result *const *)list.items,
        .result_count = list.count,
    };
    st = ibp_cache_save(path, &c, err);
    ibp_result_list_free(&list);
    return st;
}

ibp_status ibp_data_save_caches(ibp_data *d, ibp_err *err)
{
    ibp_status first = IBP_OK, st;
    ibp_err e2;
    if (d->opts.use_official_cache && (st = save_official(d, err)) != IBP_OK) {
        IBP_LOG(IBP_LOG_ERROR, "data", "%s", err ? err->msg : ibp_strerror(st));
        first = st;
    }
    if (d->opts.use_local_cache && (st = save_local(d, first == IBP_OK ? err : &e2)) != IBP_OK) {
        IBP_LOG(IBP_LOG_ERROR, "data", "%s", first == IBP_OK && err ? err->msg : e2.msg);
        if (first == IBP_OK)
            first = st;
    }
    d->last_save_ms = data_now_ms(d);
    return first;
}

ibp_status ibp_data_tick(ibp_data *d, ibp_err *err)
{
    ibp_status st = IBP_OK;
    if ((d->opts.use_official_cache || d->opts.use_local_cache) &&
        data_now_ms(d) - d->last_save_ms >= d->opts.cache_save_ms)
        st = ibp_data_save_caches(d, err);
    if (d->usage) {
        ibp_err e2;
        ibp_status ust = ibp_usage_tick(d->usage, st == IBP_OK ? err : &e2);
        if (st == IBP_OK)
            st = ust;
    }
    return st;
}

ibp_status ibp_data_close(ibp_data *d, ibp_err *err)
{
    if (!d)
        return IBP_OK;
    ibp_err e2;
    ibp_status st = ibp_data_save_caches(d, err);
    ibp_status ust = ibp_usage_close(d->usage, st == IBP_OK ? err : &e2);
    if (st == IBP_OK)
        st = ust;
    ibp_store_free(d->store);
    free((void *)d->cert.bytes);
    free((void *)d->cert.snapshot);
    pthread_mutex_destroy(&d->cert_mu);
    free(d->work_dir);
    free(d);
    return st;
}
