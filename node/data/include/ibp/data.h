/*
 * The data library of a node, assembled: the dual store, its cache files and
 * (optionally) usage statistics, with the start-up and shut-down behaviour of
 * the Go seed's `data` package.
 *
 * ibp_data_open() creates the store, loads official.cache.json and
 * local.cache.json from <work dir>/tmp/ when caches are enabled (a missing
 * file starts empty; a corrupt one is moved aside and the node starts empty:
 * see ibp/cache.h), and opens usage statistics when asked.
 * ibp_data_tick() saves the caches every cache_save_ms and lets usage flush
 * and deliver when due; call it about once a second. ibp_data_close() saves
 * the caches and closes usage (a last flush).
 *
 * Thread safety: the store and usage objects are thread-safe (see their
 * headers); ibp_data_tick and ibp_data_save_caches may be called from any one
 * thread at a time; ibp_data_close must be the last call.
 */
#ifndef IBP_DATA_H
#define IBP_DATA_H

#include <stdbool.h>
#include <stdint.h>

#include "ibp/cache.h"
#include "ibp/event.h"
#include "ibp/network.h"
#include "ibp/status.h"
#include "ibp/store.h"
#include "ibp/usage.h"

#define IBP_DATA_CACHE_SAVE_MS_DEFAULT 90000

typedef struct ibp_data_opts {
    const char *work_dir; /* required with caches or usage; must exist */
    bool use_official_cache;
    bool use_local_cache;
    int64_t cache_save_ms;      /* default IBP_DATA_CACHE_SAVE_MS_DEFAULT */
    const ibp_network *network; /* borrowed, optional (see ibp_store_opts) */
    ibp_event_sink_fn event_sink;
    void *event_user;
    /* Usage statistics: NULL for none. Copied; its work_dir defaults to ours.
     * Everything it points to (geo, sink) is borrowed and must outlive the data. */
    const ibp_usage_opts *usage;
    int64_t (*now_ms)(void *user); /* NULL: CLOCK_REALTIME */
    void *clock_user;
    /* Certification of the official cache: with a roster and a quorum (>= 1,
     * ibp_certificate_quorum), an official cache of an epoch above 0 is loaded
     * only when its certificate (ibp_cache_certificate_check) certifies it;
     * otherwise it is refused with a WARN naming the reason, counted, and the
     * node starts empty. NULL roster: caches are loaded without a check. */
    const ibp_roster *certificate_roster; /* borrowed, must outlive the data */
    size_t certificate_quorum;
} ibp_data_opts;

typedef struct ibp_data ibp_data;

void ibp_data_opts_init(ibp_data_opts *opts);

/*
 * Opens the data library as described above. Errors: IBP_E_INVAL (work_dir
 * missing where needed), cache files that exist but cannot be read (IBP_E_IO),
 * and the errors of ibp_usage_open; each message says which part failed.
 */
ibp_status ibp_data_open(const ibp_data_opts *opts, ibp_data **out, ibp_err *err);

/* The store (owned by data; valid until ibp_data_close). */
ibp_store *ibp_data_store(ibp_data *d);

/* Usage statistics, or NULL when not enabled (owned by data). */
ibp_usage *ibp_data_usage(ibp_data *d);

/*
 * Keeps a copy of the certificate of official epoch `epoch` and of the
 * snapshot bytes it certifies (cert borrowed), saved with the official cache
 * while the store holds that epoch. The caller sets it after the store has
 * applied the epoch. Thread-safe. IBP_E_NOMEM.
 */
ibp_status ibp_data_set_official_certificate(ibp_data *d, uint64_t epoch,
                                             const ibp_cache_certificate *cert);

/*
 * Official cache files refused at open (0 or 1): their certificate did not
 * certify them, or their contents did not load (moved aside, see ibp/cache.h).
 * Set by ibp_data_open only; thread-safe to read after it.
 */
uint64_t ibp_data_official_cache_refused(const ibp_data *d);

/* Writes both enabled cache files now. The first error is returned; both are tried. */
ibp_status ibp_data_save_caches(ibp_data *d, ibp_err *err);

/* Saves caches when cache_save_ms has passed, then ibp_usage_tick. */
ibp_status ibp_data_tick(ibp_data *d, ibp_err *err);

/* Saves the caches, closes usage (final flush) and frees everything. Accepts NULL. */
ibp_status ibp_data_close(ibp_data *d, ibp_err *err);

#endif
