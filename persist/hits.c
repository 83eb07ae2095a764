/*
 * Writing the `requests` rows of HitBatches (DESIGN.md §7, §8); see
 * apply_internal.h. The rows of all batches of one transaction are summed
 * per key in a hash table first, so a key is written once per transaction,
 * then upserted in key order with the bulk API (array binding,
 * STMT_ATTR_ARRAY_SIZE): the fastest way MariaDB takes many rows
 * (DESIGN.md §8). The last applied flush_seq of each node lives in
 * persist_hit_flushes, read FOR UPDATE, so a HitBatch is counted once even
 * when a dns node publishes it again under a new stream sequence.
 *
 * The primary key of `requests` is (date, row_key): row_key is the SHA-256
 * of the other key columns (deploy/sql/003_caps.sql says why), computed here
 * for every row written, exactly as 003 computed it for the rows it found.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "apply_internal.h"
#include "ibp/hash_index.h"
#include "ibp/persist_db.h"
#include "ibp/vec.h"

/* Hit row columns in the order of the INSERT (the key columns of `requests`). */
enum { C_DATE, C_NODE, C_DOMAIN, C_MEMBER, C_ASN, C_NETWORK, C_CC, C_COUNTRY, C_STRS };

#define ROW_KEY_BYTES crypto_hash_sha256_BYTES

/* A summed hit row; strings borrow from the decoded messages. */
typedef struct agg_row {
    const char *s[C_STRS];
    unsigned long len[C_STRS];
    signed char ipv6;
    uint64_t hits;
    uint64_t hash;
    unsigned char row_key[ROW_KEY_BYTES];
} agg_row;

typedef struct flush_state {
    char node[IBP_NODE_ID_MAX + 1];
    uint64_t flush_seq; /* last applied, as of now in the transaction */
    uint64_t stream_seq;
    bool dirty;
} flush_state;

struct ibp__hits {
    size_t bulk_rows;
    agg_row *rows;
    size_t nrows, caprows;
    ibp_hash_index index; /* rows by key hash */
    bool index_ready;
    flush_state *flush;
    size_t nflush, capflush;
    /* bulk binding arrays, bulk_rows long */
    char **col_ptr[C_STRS];
    unsigned long *col_len[C_STRS];
    char *indicator;
    signed char *col_v6;
    char **col_key_ptr;
    unsigned long *col_key_len;
    unsigned long long *col_hits;
};

ibp__hits *ibp__hits_new(size_t bulk_rows)
{
    ibp__hits *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->bulk_rows = bulk_rows;
    bool ok = true;
    for (int c = 0; c < C_STRS; c++) {
        h->col_ptr[c] = calloc(bulk_rows, sizeof *h->col_ptr[c]);
        h->col_len[c] = calloc(bulk_rows, sizeof *h->col_len[c]);
        ok = ok && h->col_ptr[c] && h->col_len[c];
    }
    h->indicator = calloc(bulk_rows, 1); /* all STMT_INDICATOR_NONE: every value is given */
    h->col_v6 = calloc(bulk_rows, sizeof *h->col_v6);
    h->col_key_ptr = calloc(bulk_rows, sizeof *h->col_key_ptr);
    h->col_key_len = calloc(bulk_rows, sizeof *h->col_key_len);
    h->col_hits = calloc(bulk_rows, sizeof *h->col_hits);
    if (!ok || !h->indicator || !h->col_v6 || !h->col_key_ptr || !h->col_key_len || !h->col_hits) {
        ibp__hits_free(h);
        return NULL;
    }
    return h;
}

void ibp__hits_free(ibp__hits *h)
{
    if (h == NULL)
        return;
    free(h->rows);
    if (h->index_ready)
        ibp_hash_index_destroy(&h->index);
    free(h->flush);
    for (int c = 0; c < C_STRS; c++) {
        free(h->col_ptr[c]);
        free(h->col_len[c]);
    }
    free(h->indicator);
    free(h->col_v6);
    free(h->col_key_ptr);
    free(h->col_key_len);
    free(h->col_hits);
    free(h);
}

/* ---- summing rows per key --------------------------------------------------- */

static bool row_key_equal(const agg_row *x, const agg_row *y)
{
    if (x->hash != y->hash || x->ipv6 != y->ipv6)
        return false;
    for (int c = 0; c < C_STRS; c++)
        if (x->len[c] != y->len[c] || memcmp(x->s[c], y->s[c], x->len[c]) != 0)
            return false;
    return true;
}

/*
 * row_key: SHA-256 of each key column but the date as "<bytes>:<value>"
 * without trailing spaces, then ":0" or ":1" for is_ipv6 -- what
 * deploy/sql/003_caps.sql computes in SQL as
 *   UNHEX(SHA2(CONCAT(LENGTH(RTRIM(node_id)), ':', RTRIM(node_id), ...,
 *                     ':', is_ipv6), 256))
 * The old key compared its columns without trailing spaces (PAD SPACE), so
 * the hash leaves them out too; the length prefixes keep ("ab", "c") and
 * ("a", "bc") apart.
 */
static void row_key_compute(agg_row *k)
{
    crypto_hash_sha256_state sh;
    crypto_hash_sha256_init(&sh);
    for (int c = C_NODE; c < C_STRS; c++) {
        size_t n = k->len[c];
        while (n > 0 && k->s[c][n - 1] == ' ')
            n--;
        char prefix[24];
        int plen = snprintf(prefix, sizeof prefix, "%zu:", n);
        crypto_hash_sha256_update(&sh, (const unsigned char *)prefix, (unsigned long long)plen);
        crypto_hash_sha256_update(&sh, (const unsigned char *)k->s[c], n);
    }
    crypto_hash_sha256_update(&sh, (const unsigned char *)(k->ipv6 ? ":1" : ":0"), 2);
    crypto_hash_sha256_final(&sh, k->row_key);
}

/* Primary key order of `requests` (date, row_key), then every byte, so the order is total. */
static int row_cmp(const void *pa, const void *pb)
{
    const agg_row *x = pa, *y = pb;
    int r = strcmp(x->s[C_DATE], y->s[C_DATE]);
    if (r != 0)
        return r;
    r = memcmp(x->row_key, y->row_key, ROW_KEY_BYTES);
    if (r != 0)
        return r;
    for (int c = 0; c < C_STRS; c++) {
        size_t n = x->len[c] < y->len[c] ? x->len[c] : y->len[c];
        r = memcmp(x->s[c], y->s[c], n);
        if (r != 0)
            return r;
        if (x->len[c] != y->len[c])
            return x->len[c] < y->len[c] ? -1 : 1;
    }
    return (int)x->ipv6 - (int)y->ipv6;
}

static bool agg_grow(ibp__hits *h)
{
    /* Doubles from 1024; the index keeps its load at most 1/2. */
    agg_row *nr = ibp_grow(h->rows, &h->caprows, h->caprows ? h->caprows * 2 : 1024, sizeof *nr);
    if (nr == NULL)
        return false;
    h->rows = nr;
    if (!h->index_ready) {
        if (!ibp_hash_index_init(&h->index, h->caprows * 2))
            return false;
        h->index_ready = true;
    }
    return ibp_hash_index_reserve(&h->index, h->caprows - h->index.count);
}

static void agg_reset(ibp__hits *h)
{
    h->nrows = 0;
    if (h->index_ready)
        ibp_hash_index_clear(&h->index);
}

struct row_probe {
    const ibp__hits *h;
    const agg_row *k;
};

static bool row_is(const void *ctx, uint32_t id)
{
    const struct row_probe *p = ctx;
    return row_key_equal(&p->h->rows[id], p->k);
}

static bool agg_add(ibp__hits *h, const char *node, const ibp_persist_hit_row *r)
{
    agg_row k;
    const char *vals[C_STRS] = {r->date,         node,           r->domain,
                                r->member,       r->asn,         r->network_name,
                                r->country_code, r->country_name};
    uint64_t hash = 0;
    for (int c = 0; c < C_STRS; c++) {
        k.s[c] = vals[c];
        k.len[c] = (unsigned long)strlen(k.s[c]);
        /* Length-prefixed: ("ab", "c") and ("a", "bc") hash apart. */
        hash = ibp_hash_bytes(k.s[c], k.len[c], hash);
    }
    k.ipv6 = r->ipv6 ? 1 : 0;
    k.hash = ibp_hash_mix64(hash ^ (uint64_t)k.ipv6);
    k.hits = r->hits;
    if (h->nrows == h->caprows && !agg_grow(h))
        return false;
    struct row_probe p = {h, &k};
    uint32_t id = ibp_hash_index_find(&h->index, k.hash, row_is, &p);
    if (id != IBP_HASH_INDEX_NONE) {
        h->rows[id].hits += k.hits;
        return true;
    }
    row_key_compute(&k);
    h->rows[h->nrows] = k;
    ibp_hash_index_insert(&h->index, k.hash, (uint32_t)h->nrows);
    h->nrows++;
    return true;
}

/* ---- writing ------------------------------------------------------------------ */

/* Binds rows[off..off+n) column-wise (MariaDB's array binding). */
static void bind_columns(ibp__hits *h, size_t off, size_t n, MYSQL_BIND b[11])
{
    /* Strings are arrays of pointers. */
    for (size_t i = 0; i < n; i++) {
        const agg_row *r = &h->rows[off + i];
        for (int c = 0; c < C_STRS; c++) {
            h->col_ptr[c][i] = (char *)r->s[c];
            h->col_len[c][i] = r->len[c];
        }
        h->col_v6[i] = r->ipv6;
        h->col_key_ptr[i] = (char *)r->row_key;
        h->col_key_len[i] = ROW_KEY_BYTES;
        h->col_hits[i] = r->hits;
    }
    for (int c = 0; c < C_STRS; c++) {
        b[c].buffer_type = MYSQL_TYPE_STRING;
        b[c].buffer = h->col_ptr[c];
        b[c].length = h->col_len[c];
        b[c].u.indicator = h->indicator;
    }
    b[8].buffer_type = MYSQL_TYPE_TINY;
    b[8].buffer = h->col_v6;
    b[8].u.indicator = h->indicator;
    b[9].buffer_type = MYSQL_TYPE_BLOB; /* bytes, not text of the connection's charset */
    b[9].buffer = h->col_key_ptr;
    b[9].length = h->col_key_len;
    b[9].u.indicator = h->indicator;
    b[10].buffer_type = MYSQL_TYPE_LONGLONG;
    b[10].is_unsigned = 1;
    b[10].buffer = h->col_hits;
    b[10].u.indicator = h->indicator;
}

static ibp_status upsert_rows(ibp_persist_applier *a, ibp_err *err)
{
    static const char sql[] =
        "INSERT INTO requests (date, node_id, domain_name, member_name, network_asn, "
        "network_name, country_code, country_name, is_ipv6, row_key, hits) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE hits = hits + VALUES(hits)";
    ibp__hits *h = a->hits;
    ibp_status st = ibp__apply_prepare(a, &a->st_hits, sql, err);
    if (st != IBP_OK)
        return st;
    /* Key order keeps the B-tree inserts local and lock order stable. */
    qsort(h->rows, h->nrows, sizeof *h->rows, row_cmp);
    size_t chunk = a->is_mariadb ? h->bulk_rows : 1;
    for (size_t off = 0; off < h->nrows; off += chunk) {
        size_t n = h->nrows - off < chunk ? h->nrows - off : chunk;
        MYSQL_BIND b[11];
        memset(b, 0, sizeof b);
        if (a->is_mariadb) {
            bind_columns(h, off, n, b);
            unsigned int array_size = (unsigned int)n;
            if (mysql_stmt_attr_set(a->st_hits, STMT_ATTR_ARRAY_SIZE, &array_size) != 0) {
                a->last_errno = mysql_stmt_errno(a->st_hits);
                return ibp_persist_db_stmt_error(err, a->st_hits, "set array size");
            }
        } else {
            /* Not MariaDB (no bulk protocol): one row per execute. */
            const agg_row *r = &h->rows[off];
            for (int c = 0; c < C_STRS; c++)
                ibp__bind_str(&b[c], r->s[c], r->len[c]);
            ibp__bind_tiny(&b[8], &r->ipv6);
            ibp__bind_str(&b[9], (const char *)r->row_key, ROW_KEY_BYTES);
            b[9].buffer_type = MYSQL_TYPE_BLOB;
            ibp__bind_u64(&b[10], &r->hits);
        }
        char what[96];
        snprintf(what, sizeof what, "upsert %zu rows into requests", n);
        if ((st = ibp__apply_exec(a, a->st_hits, b, what, err)) != IBP_OK)
            return st;
    }
    return IBP_OK;
}

/* ---- flush sequences per node --------------------------------------------------- */

static flush_state *flush_push(ibp__hits *h)
{
    flush_state *nf = ibp_grow(h->flush, &h->capflush, h->nflush + 1, sizeof *nf);
    if (nf == NULL)
        return NULL;
    h->flush = nf;
    flush_state *f = &h->flush[h->nflush++];
    memset(f, 0, sizeof *f);
    return f;
}

static ibp_status flush_load(ibp_persist_applier *a, ibp_err *err)
{
    ibp__hits *h = a->hits;
    h->nflush = 0;
    if (mysql_query(a->db, "SELECT node_id, last_flush_seq FROM persist_hit_flushes FOR UPDATE") !=
        0) {
        a->last_errno = mysql_errno(a->db);
        return ibp_persist_db_error(err, a->db, "read persist_hit_flushes");
    }
    MYSQL_RES *res = mysql_store_result(a->db);
    if (res == NULL) {
        a->last_errno = mysql_errno(a->db);
        return ibp_persist_db_error(err, a->db, "read persist_hit_flushes");
    }
    MYSQL_ROW row;
    ibp_status st = IBP_OK;
    while ((row = mysql_fetch_row(res)) != NULL) {
        flush_state *f = flush_push(h);
        if (f == NULL) {
            st = ibp_err_set(err, IBP_E_NOMEM, "persist: out of memory");
            break;
        }
        snprintf(f->node, sizeof f->node, "%s", row[0] ? row[0] : "");
        f->flush_seq = row[1] ? strtoull(row[1], NULL, 10) : 0;
    }
    mysql_free_result(res);
    return st;
}

static flush_state *flush_find(ibp__hits *h, const char *node)
{
    for (size_t i = 0; i < h->nflush; i++)
        if (strcmp(h->flush[i].node, node) == 0)
            return &h->flush[i];
    flush_state *f = flush_push(h);
    if (f != NULL)
        snprintf(f->node, sizeof f->node, "%s", node);
    return f;
}

static ibp_status flush_save(ibp_persist_applier *a, ibp_err *err)
{
    ibp__hits *h = a->hits;
    ibp_status st = ibp__apply_prepare(a, &a->st_flush_set,
                                       "INSERT INTO persist_hit_flushes (node_id, last_flush_seq, "
                                       "last_stream_seq) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE "
                                       "last_flush_seq = VALUES(last_flush_seq), "
                                       "last_stream_seq = VALUES(last_stream_seq)",
                                       err);
    if (st != IBP_OK)
        return st;
    for (size_t i = 0; i < h->nflush; i++) {
        flush_state *f = &h->flush[i];
        if (!f->dirty)
            continue;
        MYSQL_BIND p[3];
        memset(p, 0, sizeof p);
        ibp__bind_cstr(&p[0], f->node);
        ibp__bind_u64(&p[1], &f->flush_seq);
        ibp__bind_u64(&p[2], &f->stream_seq);
        if ((st = ibp__apply_exec(a, a->st_flush_set, p, "write persist_hit_flushes", err)) !=
            IBP_OK)
            return st;
    }
    return IBP_OK;
}

ibp_status ibp__hits_apply(ibp_persist_applier *a, ibp__apply_item **list, size_t n,
                           ibp_persist_apply_result *r, ibp_err *err)
{
    ibp__hits *h = a->hits;
    ibp_status st = flush_load(a, err);
    if (st != IBP_OK)
        return st;
    agg_reset(h);
    uint64_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        ibp__apply_item *it = list[i];
        if (it->reason != IBP_OK || it->forced)
            continue;
        const ibp_persist_hit_batch *hb = &it->hb;
        flush_state *f = flush_find(h, hb->node);
        if (f == NULL)
            return ibp_err_set(err, IBP_E_NOMEM, "persist: out of memory");
        if (hb->flush_seq <= f->flush_seq) {
            it->tx_reason = IBP_E_REPLAY;
            snprintf(it->tx_detail, sizeof it->tx_detail,
                     "HitBatch %s flush_seq %" PRIu64 " is at or below the last applied %" PRIu64
                     ": already counted, not counted again",
                     hb->node, hb->flush_seq, f->flush_seq);
            r->stale++;
            continue;
        }
        f->flush_seq = hb->flush_seq;
        f->stream_seq = it->m->seq;
        f->dirty = true;
        for (size_t k = 0; k < hb->n_rows; k++) {
            if (hb->rows[k].hits == 0)
                continue;
            if (!agg_add(h, hb->node, &hb->rows[k]))
                return ibp_err_set(err, IBP_E_NOMEM, "out of memory aggregating rows");
            hits += hb->rows[k].hits;
        }
        r->applied++;
    }
    if (h->nrows > 0 && (st = upsert_rows(a, err)) != IBP_OK)
        return st;
    if ((st = flush_save(a, err)) != IBP_OK)
        return st;
    r->rows += h->nrows;
    r->hits += hits;
    return IBP_OK;
}
