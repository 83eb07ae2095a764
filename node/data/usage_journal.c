/* Durable pending usage deltas and sinks; see ibp/usage_journal.h. */
#include "ibp/usage_journal.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ibp/atomic_file.h"
#include "ibp/log.h"
#include "ibp/roster.h"
#include "ibp/seqfile.h"

#define COMPONENT "usage-journal"
#define MAGIC "IBPHITS1"
#define MAGIC_LEN 8
#define HEADER_LEN (MAGIC_LEN + 8)
#define SEQ_DIGITS 20
#define SUFFIX ".hits"
#define PATH_CAP 4200

struct ibp_usage_journal {
    char *dir;
    char node[IBP_NODE_ID_MAX + 1];
    ibp_seqfile *seq;
    uint64_t *pending; /* flush_seq of each pending entry, ascending */
    size_t npending;
    size_t cap;
    ibp_usage_journal_stats stats;
};

/* ---- helpers --------------------------------------------------------------------------------- */

/* CRC-32/IEEE (reflected, polynomial 0xEDB88320), four bits at a time. */
static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
    static const uint32_t t[16] = {0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC,
                                   0x76DC4190, 0x6B6B51F4, 0x4DB26158, 0x5005713C,
                                   0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
                                   0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C};
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ t[crc & 15];
        crc = (crc >> 4) ^ t[crc & 15];
    }
    return ~crc;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static ibp_status entry_path(const ibp_usage_journal *j, uint64_t seq, const char *suffix,
                             char *out, size_t cap, ibp_err *err)
{
    int n = snprintf(out, cap, "%s/%0*" PRIu64 SUFFIX "%s", j->dir, SEQ_DIGITS, seq, suffix);
    if (n < 0 || (size_t)n >= cap)
        return ibp_err_set(err, IBP_E_RANGE, "usage journal %s: path too long", j->dir);
    return IBP_OK;
}

/* Creates dir (mode 0700) unless it already is a directory. */
static ibp_status ensure_dir(const char *what, const char *dir, ibp_err *err)
{
    struct stat sb;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return ibp_err_set(err, IBP_E_IO, "%s %s: create directory: %s", what, dir,
                           strerror(errno));
    if (stat(dir, &sb) != 0)
        return ibp_err_set(err, IBP_E_IO, "%s %s: %s", what, dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return ibp_err_set(err, IBP_E_IO, "%s %s: not a directory", what, dir);
    return IBP_OK;
}

/* Parses "<20 digits>.hits" into *seq; 0 when the name is something else. */
static int parse_entry_name(const char *name, uint64_t *seq)
{
    if (strlen(name) != SEQ_DIGITS + strlen(SUFFIX) || strcmp(name + SEQ_DIGITS, SUFFIX) != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < SEQ_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        unsigned d = (unsigned)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *seq = v;
    return v > 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static ibp_status push_pending(ibp_usage_journal *j, uint64_t seq, ibp_err *err)
{
    if (j->npending == j->cap) {
        size_t ncap = j->cap ? 2 * j->cap : 16;
        uint64_t *p = realloc(j->pending, ncap * sizeof *p);
        if (!p)
            return ibp_err_set(err, IBP_E_NOMEM, "usage journal %s: out of memory", j->dir);
        j->pending = p;
        j->cap = ncap;
    }
    j->pending[j->npending++] = seq;
    return IBP_OK;
}

static void pop_pending(ibp_usage_journal *j)
{
    memmove(j->pending, j->pending + 1, (j->npending - 1) * sizeof *j->pending);
    j->npending--;
}

/* ---- open / close ---------------------------------------------------------------------------- */

static ibp_status scan(ibp_usage_journal *j, ibp_err *err)
{
    DIR *d = opendir(j->dir);
    if (!d)
        return ibp_err_set(err, IBP_E_IO, "usage journal %s: open directory: %s", j->dir,
                           strerror(errno));
    ibp_status st = IBP_OK;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        uint64_t seq;
        if (parse_entry_name(de->d_name, &seq)) {
            if ((st = push_pending(j, seq, err)) != IBP_OK)
                break;
        } else if (strstr(de->d_name, SUFFIX ".tmp.")) {
            /* An atomic write that never reached its rename: never confirmed to
             * anyone, its counts were put back (or died with the process). */
            char path[PATH_CAP];
            int n = snprintf(path, sizeof path, "%s/%s", j->dir, de->d_name);
            if (n > 0 && (size_t)n < sizeof path && unlink(path) == 0)
                IBP_LOG(IBP_LOG_INFO, COMPONENT, "removed an interrupted write path=%s", path);
        }
        errno = 0;
    }
    if (st == IBP_OK && errno != 0)
        st = ibp_err_set(err, IBP_E_IO, "usage journal %s: read directory: %s", j->dir,
                         strerror(errno));
    closedir(d);
    if (st == IBP_OK && j->npending > 1)
        qsort(j->pending, j->npending, sizeof *j->pending, cmp_u64);
    return st;
}

ibp_status ibp_usage_journal_open(const char *dir, const char *seq_path, const char *node_id,
                                  ibp_usage_journal **out, ibp_err *err)
{
    if (!dir || !*dir || !seq_path || !*seq_path || !out)
        return ibp_err_set(err, IBP_E_INVAL, "usage journal: no directory or sequence file");
    if (!node_id || !ibp_node_id_valid(node_id))
        return ibp_err_set(err, IBP_E_INVAL, "usage journal %s: invalid node id", dir);
    ibp_usage_journal *j = calloc(1, sizeof *j);
    if (!j || !(j->dir = strdup(dir))) {
        free(j);
        return ibp_err_set(err, IBP_E_NOMEM, "usage journal %s: out of memory", dir);
    }
    snprintf(j->node, sizeof j->node, "%s", node_id);
    ibp_status st = ensure_dir("usage journal", dir, err);
    if (st == IBP_OK)
        st = ibp_seqfile_open(seq_path, &j->seq, err);
    if (st == IBP_OK)
        st = scan(j, err);
    if (st == IBP_OK && j->npending > 0 && j->pending[j->npending - 1] > ibp_seqfile_last(j->seq)) {
        st = ibp_err_set(err, IBP_E_CONFIG,
                         "usage journal %s: holds flush_seq %" PRIu64
                         " but the sequence file %s is at %" PRIu64
                         "; refusing to hand out numbers already used",
                         dir, j->pending[j->npending - 1], seq_path, ibp_seqfile_last(j->seq));
    }
    if (st != IBP_OK) {
        ibp_usage_journal_close(j);
        return st;
    }
    j->stats.last_seq = ibp_seqfile_last(j->seq);
    if (j->npending > 0)
        IBP_LOG(IBP_LOG_INFO, COMPONENT,
                "unconfirmed batches will be resent dir=%s pending=%zu first_seq=%" PRIu64, dir,
                j->npending, j->pending[0]);
    *out = j;
    return IBP_OK;
}

void ibp_usage_journal_close(ibp_usage_journal *j)
{
    if (!j)
        return;
    ibp_seqfile_close(j->seq);
    free(j->pending);
    free(j->dir);
    free(j);
}

void ibp_usage_journal_stats_get(const ibp_usage_journal *j, ibp_usage_journal_stats *out)
{
    *out = j->stats;
    out->pending = j->npending;
}

/* ---- append ---------------------------------------------------------------------------------- */

ibp_status ibp_usage_journal_append(ibp_usage_journal *j, Ibp__V1__HitBatch *batch,
                                    uint64_t *seq_out, ibp_err *err)
{
    uint64_t seq;
    char path[PATH_CAP];
    uint8_t *buf = NULL;
    /* Room in the pending list first, so nothing can fail once the file exists. */
    ibp_status st = push_pending(j, 0, err);
    if (st != IBP_OK)
        goto fail;
    j->npending--;
    if ((st = ibp_seqfile_next(j->seq, &seq, err)) != IBP_OK)
        goto fail;
    j->stats.last_seq = seq;
    if ((st = entry_path(j, seq, "", path, sizeof path, err)) != IBP_OK)
        goto fail;
    batch->node = j->node;
    batch->flush_seq = seq;
    size_t len = ibp__v1__hit_batch__get_packed_size(batch);
    if (len > IBP_USAGE_JOURNAL_ENTRY_MAX - HEADER_LEN) {
        st = ibp_err_set(err, IBP_E_TOO_LARGE, "usage journal %s: batch of %zu bytes is too large",
                         j->dir, len);
        goto fail;
    }
    if (!(buf = malloc(HEADER_LEN + len))) {
        st = ibp_err_set(err, IBP_E_NOMEM, "usage journal %s: out of memory", j->dir);
        goto fail;
    }
    ibp__v1__hit_batch__pack(batch, buf + HEADER_LEN);
    memcpy(buf, MAGIC, MAGIC_LEN);
    put_be32(buf + MAGIC_LEN, (uint32_t)len);
    put_be32(buf + MAGIC_LEN + 4, crc32_ieee(buf + HEADER_LEN, len));
    st = ibp_file_write_atomic(path, buf, HEADER_LEN + len, 0600, err);
    free(buf);
    /*
     * A failure after the rename (the directory fsync) leaves the entry in
     * place. The caller keeps the counts on failure, so the entry must go; if
     * it cannot be removed it is as good as written: report success instead,
     * or the same hits would be counted twice.
     */
    if (st != IBP_OK && access(path, F_OK) == 0 && unlink(path) != 0) {
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "journal entry written but not synced; keeping it error=\"%s\"",
                err ? err->msg : "");
        st = IBP_OK;
    }
    if (st != IBP_OK)
        goto fail;
    j->pending[j->npending++] = seq;
    j->stats.appended++;
    if (seq_out)
        *seq_out = seq;
    return IBP_OK;
fail:
    j->stats.append_errors++;
    ibp_err_wrap(err, "journal usage batch");
    return st;
}

/* ---- deliver --------------------------------------------------------------------------------- */

/* Moves a bad entry out of the way so it never blocks the journal again. */
static void move_aside(ibp_usage_journal *j, uint64_t seq, const char *why)
{
    char path[PATH_CAP], aside[PATH_CAP];
    j->stats.corrupt++;
    if (entry_path(j, seq, "", path, sizeof path, NULL) != IBP_OK ||
        entry_path(j, seq, ".corrupt", aside, sizeof aside, NULL) != IBP_OK)
        return;
    if (rename(path, aside) == 0) {
        ibp_file_sync_dir(aside, NULL);
        IBP_LOG(IBP_LOG_ERROR, COMPONENT, "corrupt journal entry moved aside reason=\"%s\" path=%s",
                why, aside);
    } else {
        IBP_LOG(IBP_LOG_ERROR, COMPONENT,
                "corrupt journal entry could not be moved aside; skipping it reason=\"%s\" "
                "path=%s error=\"%s\"",
                why, path, strerror(errno));
    }
}

/*
 * Reads and checks entry seq. Returns IBP_OK with *batch (caller frees with
 * ibp__v1__hit_batch__free_unpacked) and *data (the file, payload at
 * HEADER_LEN); IBP_E_DECODE with why set when the entry is corrupt;
 * IBP_E_NOT_FOUND; IBP_E_IO.
 */
static ibp_status read_entry(ibp_usage_journal *j, uint64_t seq, Ibp__V1__HitBatch **batch,
                             char **data, size_t *len, const char **why, ibp_err *err)
{
    char path[PATH_CAP];
    ibp_status st = entry_path(j, seq, "", path, sizeof path, err);
    if (st != IBP_OK)
        return st;
    st = ibp_file_read_all(path, IBP_USAGE_JOURNAL_ENTRY_MAX, data, len, err);
    if (st == IBP_E_TOO_LARGE) {
        *why = "larger than any batch";
        return IBP_E_DECODE;
    }
    if (st != IBP_OK)
        return st;
    const uint8_t *p = (const uint8_t *)*data;
    *why = NULL;
    if (*len < HEADER_LEN || memcmp(p, MAGIC, MAGIC_LEN) != 0)
        *why = "no journal header";
    else if (get_be32(p + MAGIC_LEN) != *len - HEADER_LEN)
        *why = "length does not match the file";
    else if (get_be32(p + MAGIC_LEN + 4) != crc32_ieee(p + HEADER_LEN, *len - HEADER_LEN))
        *why = "checksum mismatch";
    else if (!(*batch = ibp__v1__hit_batch__unpack(NULL, *len - HEADER_LEN, p + HEADER_LEN)))
        *why = "HitBatch does not decode";
    else if ((*batch)->flush_seq != seq)
        *why = "flush_seq differs from the file name";
    else if (!(*batch)->node || strcmp((*batch)->node, j->node) != 0)
        *why = "batch of another node";
    if (*why) {
        if (*batch)
            ibp__v1__hit_batch__free_unpacked(*batch, NULL);
        *batch = NULL;
        free(*data);
        *data = NULL;
        return IBP_E_DECODE;
    }
    return IBP_OK;
}

ibp_status ibp_usage_journal_deliver(ibp_usage_journal *j, const ibp_usage_sink *sink,
                                     size_t *delivered, ibp_err *err)
{
    size_t done = 0;
    ibp_status st = IBP_OK;
    if (!sink || !sink->deliver) {
        st = ibp_err_set(err, IBP_E_INVAL, "usage journal %s: no sink", j->dir);
        goto out;
    }
    while (j->npending > 0) {
        uint64_t seq = j->pending[0];
        Ibp__V1__HitBatch *batch = NULL;
        char *data = NULL;
        size_t len = 0;
        const char *why = NULL;
        st = read_entry(j, seq, &batch, &data, &len, &why, err);
        if (st == IBP_E_DECODE) {
            move_aside(j, seq, why);
            pop_pending(j);
            st = IBP_OK;
            continue;
        }
        if (st == IBP_E_NOT_FOUND) {
            IBP_LOG(IBP_LOG_WARN, COMPONENT, "pending journal entry vanished dir=%s seq=%" PRIu64,
                    j->dir, seq);
            pop_pending(j);
            st = IBP_OK;
            continue;
        }
        if (st != IBP_OK) {
            ibp_err_wrap(err, "deliver usage batch %" PRIu64, seq);
            break;
        }
        ibp_err serr;
        ibp_err_clear(&serr);
        st = sink->deliver(sink->ctx, batch, (const uint8_t *)data + HEADER_LEN, len - HEADER_LEN,
                           &serr);
        ibp__v1__hit_batch__free_unpacked(batch, NULL);
        free(data);
        if (st != IBP_OK) {
            j->stats.deliver_errors++;
            ibp_err_set(err, st, "deliver usage batch %" PRIu64 ": %s", seq,
                        serr.msg[0] ? serr.msg : ibp_strerror(st));
            break;
        }
        /* Confirmed: it must never be offered again. */
        char path[PATH_CAP];
        if (entry_path(j, seq, "", path, sizeof path, NULL) == IBP_OK) {
            if (unlink(path) != 0 || ibp_file_sync_dir(path, NULL) != IBP_OK)
                IBP_LOG(IBP_LOG_ERROR, COMPONENT,
                        "confirmed journal entry not removed; it will be offered again after a "
                        "restart (downstream drops it by flush_seq) path=%s error=\"%s\"",
                        path, strerror(errno));
        }
        pop_pending(j);
        j->stats.delivered++;
        done++;
    }
out:
    if (delivered)
        *delivered = done;
    return st;
}

/* ---- sinks ----------------------------------------------------------------------------------- */

void ibp_usage_sink_close(ibp_usage_sink *sink)
{
    if (!sink)
        return;
    if (sink->close)
        sink->close(sink->ctx);
    memset(sink, 0, sizeof *sink);
}

static ibp_status file_sink_deliver(void *ctx, const Ibp__V1__HitBatch *batch,
                                    const uint8_t *packed, size_t len, ibp_err *err)
{
    const char *dir = ctx;
    char path[PATH_CAP];
    int n = snprintf(path, sizeof path, "%s/%s.%0*" PRIu64 ".hitbatch", dir,
                     batch->node ? batch->node : "", SEQ_DIGITS, batch->flush_seq);
    if (n < 0 || (size_t)n >= sizeof path)
        return ibp_err_set(err, IBP_E_RANGE, "file sink %s: path too long", dir);
    return ibp_file_write_atomic(path, packed, len, 0600, err);
}

static void file_sink_close(void *ctx)
{
    free(ctx);
}

ibp_status ibp_usage_file_sink_open(const char *dir, ibp_usage_sink *out, ibp_err *err)
{
    if (!dir || !*dir || !out)
        return ibp_err_set(err, IBP_E_INVAL, "file sink: no directory");
    ibp_status st = ensure_dir("file sink", dir, err);
    if (st != IBP_OK)
        return st;
    char *ctx = strdup(dir);
    if (!ctx)
        return ibp_err_set(err, IBP_E_NOMEM, "file sink %s: out of memory", dir);
    out->deliver = file_sink_deliver;
    out->close = file_sink_close;
    out->ctx = ctx;
    return IBP_OK;
}
