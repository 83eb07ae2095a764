/*
 * The bus: connecting to NATS from the configuration, the JetStream streams
 * of DESIGN.md §5, and publishing signed envelopes with their headers.
 *
 * Streams (created by ibp_bus_ensure_streams when missing; with
 * update_existing an existing stream is brought to the limits of the options,
 * one log line per change; each daemon checks only the streams its roles use,
 * see ibp_bus_streams_for_roles):
 *
 *   name      subjects                    keeps                               why
 *   LOCAL     ibp.local.>                 limits, max age (7 d)               replay, audit,
 *                                                                             replica restart
 *   OFFICIAL  ibp.official.snapshot       the last N messages (256), no age   audit, chain head;
 *                                                                             late subscribers read
 *                                                                             the last message
 *   STATUS    ibp.status.>                last message per subject, no age    current value at once
 *   EVENTS    ibp.events.>                limits, max age (400 d)             persist, replay
 *   HITS      ibp.hits.>                  limits, max age (400 d)             persist, replay
 *   CHECKPOINT ibp.consensus.checkpoint.*  last message per subject, no age    a replica added or
 *                                                                             rebuilt starts from
 *                                                                             the others' state
 *   COSIGN    ibp.official.cosign.*       the last N per subject (N as        epoch certificates
 *                                         OFFICIAL), no age, same storage    (ibp/certificate.h)
 *
 * The ages, OFFICIAL's depth, size and storage and the replica count are
 * options (ibp_bus_stream_opts; the daemons take them from their "nats.*"
 * settings). OFFICIAL is in memory by default (a file store stalls the
 * delivery of large snapshots now and then, docs/operations.md), the others
 * on file; all have a duplicate window (2 min) within which JetStream drops a
 * second message with the same Nats-Msg-Id. OFFICIAL has no age limit so that
 * a quiet network never loses its last snapshot; in memory it loses them all
 * when every server restarts, and the consensus replicas publish their
 * current epoch again (ibp/replica.h). Its byte limit (default 128 MiB) is
 * also what a memory stream reserves of the server's max_memory_store.
 * Replica heartbeats (ibp.official.heartbeat.<node>) are plain NATS messages,
 * kept by no stream: they say "alive" now and are worthless later.
 *
 * Refusals: a connection made here has an error handler that logs one line
 * when nats-server refuses a publish or subscribe for permissions (naming the
 * subject and the permission; at most once a minute per subject), and
 * JetStream calls that the server refused fail naming the subject instead of
 * only timing out.
 *
 * Thread safety: nats.c connections and contexts are thread-safe; the
 * refusal record and the process's default stream set are guarded.
 */
#ifndef IBP_BUS_H
#define IBP_BUS_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/envelope.h"
#include "ibp/roster.h"
#include "ibp/status.h"

/* Stream bits of ibp_bus_stream_opts.streams. */
#define IBP_BUS_STREAM_LOCAL 0x01u
#define IBP_BUS_STREAM_OFFICIAL 0x02u
#define IBP_BUS_STREAM_STATUS 0x04u
#define IBP_BUS_STREAM_EVENTS 0x08u
#define IBP_BUS_STREAM_HITS 0x10u
#define IBP_BUS_STREAM_CHECKPOINT 0x20u
#define IBP_BUS_STREAM_COSIGN 0x40u
#define IBP_BUS_STREAMS_ALL 0x7fu

/* Snapshots OFFICIAL keeps by default (the chain's recent past, for late
 * subscribers, audits and the chain-head walk). */
#define IBP_BUS_OFFICIAL_KEEP_DEFAULT 256

/* OFFICIAL's byte limit by default: 256 snapshots of 512 kB (about 5,000
 * keys), and what a memory stream reserves of the server's
 * max_memory_store. */
#define IBP_BUS_OFFICIAL_MAX_BYTES_DEFAULT (INT64_C(128) * 1024 * 1024)

typedef struct ibp_bus_stream_opts {
    unsigned streams;             /* which to check/create; default: the process's (see below) */
    int replicas;                 /* default 1; 3 for a three-server cluster */
    int64_t local_max_age_ms;     /* LOCAL, default 7 days */
    int64_t events_max_age_ms;    /* EVENTS, default 400 days */
    int64_t hits_max_age_ms;      /* HITS, default 400 days */
    int64_t official_keep;        /* OFFICIAL: the last N snapshots, no age limit; default 256 */
    bool official_memory;         /* OFFICIAL on memory storage (creation only); default true */
    int64_t official_max_bytes;   /* OFFICIAL: at most this many bytes (the oldest snapshots go
                                     first), 0: no limit; default IBP_BUS_OFFICIAL_MAX_BYTES_DEFAULT */
    int64_t duplicate_window_ms;  /* default 120000 */
    bool update_existing;         /* bring existing streams to these limits (a daemon at start),
                                     one log line per change; otherwise only create */
} ibp_bus_stream_opts;

/* Fills the defaults; streams is the process default (all seven unless set below). */
void ibp_bus_stream_opts_init(ibp_bus_stream_opts *opts);

/*
 * The streams a node with these roles (ibp/roster.h bits) reads or writes,
 * and so checks and creates when missing:
 *   monitor    LOCAL (writes), OFFICIAL and COSIGN (reads)
 *   consensus  LOCAL (reads), OFFICIAL, STATUS, EVENTS, CHECKPOINT, COSIGN (writes)
 *   dns        OFFICIAL and COSIGN (reads), HITS (writes)
 *   persist    HITS, EVENTS (reads)
 *   admin      all seven
 * Its nats-server permissions (`ibpctl nats-auth`) allow exactly these.
 */
unsigned ibp_bus_streams_for_roles(unsigned roles);

/*
 * Sets the streams that ibp_bus_stream_opts_init fills in from now on, for
 * the whole process: a daemon calls it once at start with its roles' set,
 * so every part of it that ensures streams asks only for those.
 */
void ibp_bus_streams_set_default(unsigned streams);

/*
 * How to reach NATS: the bus's own options (node and persist settings fill
 * them from their "nats.*" keys, see ibp_config_nats_connect in
 * ibp/node_config.h). Every pointer is borrowed for the connect call only;
 * NULL or "" means unset.
 */
typedef struct ibp_bus_conn_opts {
    const char *const *servers; /* required, server_count > 0 */
    size_t server_count;
    const char *name;           /* the connection's name (monitoring), may be NULL */
    bool retry_at_start;        /* the first connect also retries in the background */
    const char *user;           /* with password_file: user + password login */
    const char *password_file;
    const char *creds_file;     /* NATS credentials file (JWT + nkey) */
    const char *nkey_seed_file; /* NATS user nkey seed (mode 0600) */
    const char *tls_ca_file;    /* verify the servers with this CA (turns TLS on) */
    const char *tls_cert_file;  /* client certificate (turns TLS on), with tls_key_file */
    const char *tls_key_file;
} ibp_bus_conn_opts;

/*
 * Connects to the servers of opts with its credentials (user + password
 * file, creds file, or nkey seed file) and TLS files. The connection
 * reconnects for ever (the publisher keeps what it could not send, see its
 * journal). With retry_at_start the first connect also retries in the
 * background instead of failing (for daemons started before NATS).
 * *out is set on success (natsConnection_Destroy it).
 * With nkey_seed_file, the public nkey is derived from the seed
 * (ibp/nkey.h) before connecting.
 * Errors: IBP_E_IO (a credential file cannot be read; the message names it),
 * IBP_E_KEY_PERMS (the nkey seed file is readable by others),
 * IBP_E_KEY_FORMAT (the nkey seed file holds no user seed), IBP_E_NATS (with
 * nats.c's text and the servers tried; an "authorization failed" or "TLS"
 * hint when the server refused the credentials or the TLS handshake failed).
 */
ibp_status ibp_bus_connect(const ibp_bus_conn_opts *opts, natsConnection **out, ibp_err *err);

/* Connects to one URL with defaults (tools and tests). */
ibp_status ibp_bus_connect_url(const char *url, const char *name, natsConnection **out,
                               ibp_err *err);

/*
 * Checks the streams of opts->streams (stream info) and creates the missing
 * ones. IBP_E_NATS naming the stream on error, and saying "refused" when the
 * server refused this identity the check or the creation, or, for a memory
 * stream the server has no room for, naming max_memory_store and the
 * settings that lower the need. With update_existing, an existing stream
 * whose storage differs from the options is left as it is (JetStream cannot
 * change it) with one WARN naming both and how to switch.
 */
ibp_status ibp_bus_ensure_streams(jsCtx *js, const ibp_bus_stream_opts *opts, ibp_err *err);

/*
 * Publishes one sealed envelope to subject and waits for the PubAck, with the
 * headers Ibp-Type (name of type), Ibp-Signer and Nats-Msg-Id (msg_id, or
 * "<signer>-<seq>" when NULL). expect_last_subject_seq, when not 0, makes
 * JetStream refuse the message unless the subject's last sequence is that
 * one (UINT64_MAX means "the subject must be empty").
 * *stream_seq (may be NULL) receives the sequence the stream stored it at;
 * *duplicate (may be NULL) whether JetStream dropped it as a duplicate.
 * Errors: IBP_E_NATS (naming the subject, and saying "refused" when the
 * server refused this identity the subject); IBP_E_EXISTS when the
 * expectation failed (someone else published first: the caller compares
 * what is there).
 */
ibp_status ibp_bus_publish_envelope(jsCtx *js, const char *subject, ibp_payload_type type,
                                    const char *signer, uint64_t seq, const uint8_t *data,
                                    size_t len, const char *msg_id,
                                    uint64_t expect_last_subject_seq, uint64_t *stream_seq,
                                    bool *duplicate, ibp_err *err);

/*
 * True when nats-server refused a publish to subject, on any connection made
 * by ibp_bus_connect, at or after since_ms (ibp_clock_mono_ms). For callers
 * that publish with nats.c directly and want to tell a refusal from a
 * timeout. Thread-safe.
 */
bool ibp_bus_refused(const char *subject, int64_t since_ms);

#endif
