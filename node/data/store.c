/*
 * The dual store of ibp/store.h: the store object itself (options, creation,
 * freeing, its clock). The official side is official_store.c, the seed's
 * single updates and member overrides member_admin.c, the local side
 * local_store.c; store_internal.h has the layout they share.
 */
#include "ibp/store.h"

#include <stdlib.h>
#include <string.h>

#include "ibp/clock.h"
#include "store_internal.h"

void ibp_store_opts_init(ibp_store_opts *opts)
{
    memset(opts, 0, sizeof *opts);
}

int64_t ibp__store_now_ms(const ibp_store *s)
{
    if (s->opts.now_ms)
        return s->opts.now_ms(s->opts.clock_user);
    return ibp_clock_wall_ms();
}

ibp_status ibp_store_new(const ibp_store_opts *opts, ibp_store **out)
{
    ibp_store *s = calloc(1, sizeof *s);
    struct snap *sn = calloc(1, sizeof *sn);
    if (!s || !sn || ibp__store_snap_index(sn) != IBP_OK) {
        free(s);
        ibp__store_snap_free(sn);
        return IBP_E_NOMEM;
    }
    if (opts)
        s->opts = *opts;
    s->lmask = 15;
    s->local = calloc(s->lmask + 1, sizeof *s->local);
    if (!s->local) {
        free(s);
        ibp__store_snap_free(sn);
        return IBP_E_NOMEM;
    }
    ibp_rcu_init(&s->rcu);
    atomic_init(&s->cur, sn);
    pthread_mutex_init(&s->wlock, NULL);
    pthread_mutex_init(&s->llock, NULL);
    *out = s;
    return IBP_OK;
}

void ibp_store_free(ibp_store *s)
{
    if (!s)
        return;
    ibp__store_snap_free(atomic_load(&s->cur));
    for (size_t i = 0; i <= s->lmask; i++)
        ibp_result_free(s->local[i].r);
    free(s->local);
    pthread_mutex_destroy(&s->wlock);
    pthread_mutex_destroy(&s->llock);
    free(s);
}
