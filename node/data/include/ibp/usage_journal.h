/*
 * Durable pending usage deltas (DESIGN.md §7) and where they go.
 *
 * A flush of the usage counters becomes one or more HitBatch deltas. Each is
 * numbered (flush_seq, strictly increasing per node and surviving restarts:
 * an ibp_seqfile) and written to the journal, a directory with one file per
 * batch, before the counters it holds are forgotten. The journal then offers
 * its entries to a sink, oldest first; an entry is deleted only when the sink
 * confirms it (returns IBP_OK). So a crash or kill loses no flushed delta, and
 * a confirmed one is never offered again. (A crash in the instant between the
 * sink's confirmation and the unlink offers that one entry again after the
 * restart: (node, flush_seq) is the dedup id downstream, Nats-Msg-Id on HITS
 * and the applied-sequence table in persist, so it still counts once.)
 *
 * On-disk format, one file per entry, written with ibp_file_write_atomic()
 * (write, fsync, rename, fsync of the directory) with mode 0600:
 *   name     "<flush_seq as 20 decimal digits>.hits" (so names sort by number)
 *   bytes    "IBPHITS1" (8 bytes), payload length (uint32 big-endian),
 *            CRC-32/IEEE of the payload (uint32 big-endian), payload = the
 *            packed ibp.v1.HitBatch
 * An entry that fails these checks, does not decode, or whose node or
 * flush_seq disagrees with its name or the journal's node is moved aside to
 * "<name>.corrupt", logged at ERROR and skipped; it never stops the journal.
 * Leftover "*.tmp.*" files of an interrupted write are removed at open.
 *
 * Thread safety: an ibp_usage_journal is not thread-safe; its owner (the
 * usage flusher) serialises calls. Distinct journals need distinct dirs.
 */
#ifndef IBP_USAGE_JOURNAL_H
#define IBP_USAGE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ibp/ibp.pb-c.h"
#include "ibp/status.h"

/* Largest journal entry read back (a batch of rows is far smaller). */
#define IBP_USAGE_JOURNAL_ENTRY_MAX (64u * 1024u * 1024u)

/*
 * Where confirmed deltas go: the NATS publisher in the daemon, a directory in
 * tests (ibp_usage_file_sink_open). A plain struct of function pointers.
 */
typedef struct ibp_usage_sink {
    /*
     * Delivers one batch. batch is the decoded HitBatch and packed[0..len) the
     * same batch as protobuf bytes (what a publisher signs); both are borrowed
     * for the call. Return IBP_OK only when the batch is durably accepted
     * (confirmed); any other status means "not confirmed": the batch stays in
     * the journal and is offered again later (after a backoff), before any
     * newer batch. May fill err with the reason. Called from one thread at a
     * time (the usage flusher, holding the usage's flush lock: it must not
     * call back into ibp_usage_*). It may block (a publish waiting for its
     * acknowledgement); recording hits goes on meanwhile. Required.
     */
    ibp_status (*deliver)(void *ctx, const Ibp__V1__HitBatch *batch, const uint8_t *packed,
                          size_t len, ibp_err *err);
    /* Releases ctx; called by ibp_usage_sink_close(). May be NULL. */
    void (*close)(void *ctx);
    void *ctx;
} ibp_usage_sink;

/* Calls sink->close(sink->ctx) when set and clears *sink; accepts NULL. */
void ibp_usage_sink_close(ibp_usage_sink *sink);

/*
 * A sink that writes each batch to its own file in dir (created with mode 0700
 * when missing): "<node>.<flush_seq as 20 digits>.hitbatch" holding exactly
 * the packed HitBatch, written atomically (so a redelivery overwrites the same
 * file with the same bytes: the file sink is idempotent). Sets *out on success
 * (close it with ibp_usage_sink_close). IBP_E_IO naming dir when it cannot be
 * created, IBP_E_NOMEM.
 */
ibp_status ibp_usage_file_sink_open(const char *dir, ibp_usage_sink *out, ibp_err *err);

typedef struct ibp_usage_journal ibp_usage_journal;

/*
 * Opens the journal in dir (created with mode 0700 when missing; its parent
 * must exist) and the flush sequence file seq_path (ibp_seqfile; keep it
 * outside dir). Entries already in dir become pending, in flush_seq order.
 * node_id (a valid node id) goes into every batch. IBP_E_IO naming the path
 * when dir cannot be created or read; IBP_E_CONFIG when the sequence file is
 * corrupt or behind the journal (it would hand out numbers already used);
 * IBP_E_INVAL on a bad node id or NULL argument; IBP_E_NOMEM. *out is set only
 * on success.
 */
ibp_status ibp_usage_journal_open(const char *dir, const char *seq_path, const char *node_id,
                                  ibp_usage_journal **out, ibp_err *err);

/* Closes the journal (entries stay on disk); accepts NULL. */
void ibp_usage_journal_close(ibp_usage_journal *j);

/*
 * Numbers batch (sets batch->node to the journal's node id, which stays owned
 * by the journal, and batch->flush_seq to the next sequence number), packs it
 * and writes it durably as a new pending entry. *seq_out (may be NULL) gets
 * the number. On any error nothing is pending and the caller still holds the
 * counts: IBP_E_IO naming the file (the number is then skipped, never reused),
 * IBP_E_RANGE when the sequence numbers are exhausted, IBP_E_NOMEM.
 */
ibp_status ibp_usage_journal_append(ibp_usage_journal *j, Ibp__V1__HitBatch *batch,
                                    uint64_t *seq_out, ibp_err *err);

/*
 * Offers pending entries to sink, oldest first, deleting each one the sink
 * confirms; stops at the first one it does not confirm, whose status (and
 * err) it returns. Corrupt entries are moved aside and skipped (counted, not
 * an error). *delivered (may be NULL) gets the number confirmed in this call.
 * IBP_OK when nothing is left pending; the sink's status; IBP_E_IO when an
 * entry cannot be read (it stays pending); IBP_E_INVAL when sink has no
 * deliver function.
 */
ibp_status ibp_usage_journal_deliver(ibp_usage_journal *j, const ibp_usage_sink *sink,
                                     size_t *delivered, ibp_err *err);

/* Counters of a journal (since it was opened, except pending). */
typedef struct ibp_usage_journal_stats {
    uint64_t pending;        /* entries waiting for confirmation now */
    uint64_t appended;       /* entries written */
    uint64_t append_errors;  /* appends that failed */
    uint64_t delivered;      /* entries confirmed and deleted */
    uint64_t deliver_errors; /* deliveries the sink did not confirm */
    uint64_t corrupt;        /* entries moved aside */
    uint64_t last_seq;       /* last flush_seq handed out (0 before the first) */
} ibp_usage_journal_stats;

/* Fills *out. */
void ibp_usage_journal_stats_get(const ibp_usage_journal *j, ibp_usage_journal_stats *out);

#endif
