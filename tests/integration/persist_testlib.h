/*
 * Helpers shared by the persist integration tests (tests/integration/persist_*):
 * keys and a roster, signed HitBatch and Event publishing, streams with unique
 * names, databases, and waiting for persist to catch up.
 *
 * Every helper fails the test (cmocka fail_msg) with context on error.
 */
#ifndef IBP_PERSIST_TESTLIB_H
#define IBP_PERSIST_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mysql.h>
#include <nats/nats.h>

#include "ibp/envelope.h"
#include "ibp/key.h"
#include "ibp/persist.h"
#include "ibp/roster.h"
#include "ibp/types.h"
#include "testenv.h"

#define PT_DNS "dns1"
#define PT_DNS2 "dns2"
#define PT_CONS "cons1"
#define PT_MON "mon1"

typedef struct pt_keys {
    char dir[1024]; /* temporary directory: seq files, roster, config */
    ibp_key dns, dns2, cons, mon, evil;
    ibp_roster *roster; /* dns1, dns2 (dns), cons1 (consensus), mon1 (monitor) */
    ibp_signer *s_dns, *s_dns2, *s_cons, *s_mon;
    ibp_signer *s_evil_cons; /* claims to be cons1, signs with another key */
    ibp_signer *s_unknown;   /* "ghost", not in the roster, role-less */
    char roster_path[1100];
} pt_keys;

/* Makes the keys, the roster (also saved to roster_path) and the signers. */
void pt_keys_init(pt_keys *k);
void pt_keys_free(pt_keys *k);

/* Creates a stream (file storage, 2 min duplicate window) on subject. */
void pt_stream_create(jsCtx *js, const char *name, const char *subject);
void pt_stream_delete(jsCtx *js, const char *name);
/* Last sequence of a stream. */
uint64_t pt_stream_last_seq(jsCtx *js, const char *name);

/* Publishes an envelope with the house headers; returns the stream sequence. */
uint64_t pt_publish(jsCtx *js, const char *subject, ibp_payload_type type, const char *signer,
                    uint64_t seq, const uint8_t *data, size_t len, const char *msg_id);
/* Publishes raw bytes (not an envelope) with an Ibp-Type header. */
uint64_t pt_publish_raw(jsCtx *js, const char *subject, const void *data, size_t len);

/* One hit row. */
typedef struct pt_row {
    const char *date, *domain, *member, *cc, *asn, *net, *country;
    bool ipv6;
    uint64_t hits;
} pt_row;

/*
 * Seals a HitBatch (node, flush_seq, rows) with signer and publishes it to
 * subject with Nats-Msg-Id "<node>-<flush_seq>" (or msg_id when not NULL).
 * Returns the stream sequence.
 */
uint64_t pt_publish_hits(jsCtx *js, ibp_signer *signer, const char *subject, const char *node,
                         uint64_t flush_seq, const pt_row *rows, size_t n, const char *msg_id);

/*
 * Seals a HitBatch without publishing: *env (malloc'd) and *len, *seq the
 * signer sequence. For publishers that retry the same envelope.
 */
void pt_seal_hits(ibp_signer *signer, const char *node, uint64_t flush_seq, const pt_row *rows,
                  size_t n, uint8_t **env, size_t *len, uint64_t *seq);

/* One Event. */
typedef struct pt_event {
    const char *id;
    int kind; /* Ibp__V1__EventKind */
    int check_type;
    const char *check_name, *member, *domain, *endpoint;
    bool ipv6;
    bool up;
    const char *error, *data_json;
    int64_t time_ms;
    uint64_t epoch;
    size_t nvoters; /* voters mon1..monN */
} pt_event;

/* Seals an Event with signer and publishes it (Nats-Msg-Id = id or msg_id). */
uint64_t pt_publish_event(jsCtx *js, ibp_signer *signer, const char *subject, const pt_event *e,
                          const char *msg_id);

/* Connects to MariaDB (env) and creates + migrates database name. */
MYSQL *pt_db_create(const ibp_testenv *env, const char *name);
void pt_db_drop(const ibp_testenv *env, const char *name);
/* First column of the first row as an integer (0 for NULL / no row). */
long long pt_db_int(MYSQL *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* All rows of a query as one text (columns tab-separated, rows newline-separated). */
char *pt_db_dump(MYSQL *db, const char *sql);

/* Database options for env's MariaDB (password borrowed from env). */
void pt_db_opts(const ibp_testenv *env, const char *database, ibp_persist_db_opts *o);

/*
 * Waits until persist (stats) has committed up to last_seq of kind, or
 * timeout_ms passed (then fails the test with the stats).
 */
void pt_wait_applied(ibp_persist *p, ibp_persist_kind kind, uint64_t last_seq, int timeout_ms);

/* Waits until SELECT last_seq FROM persist_offsets of stream reaches seq. */
void pt_wait_offset(MYSQL *db, const char *stream, uint64_t seq, int timeout_ms);

/*
 * Writes an ibp-persist config file for env into k->dir, logging in to NATS as
 * the user of role: IBP_TESTENV_NATS_PERSIST on the real streams and subjects,
 * IBP_TESTENV_NATS_TEST when the test gives the daemon streams and a service
 * prefix of its own (the persist role may only read HITS and EVENTS and
 * answer on ibp.persist.>). Returns its path (static buffer).
 */
const char *pt_write_config(const pt_keys *k, const ibp_testenv *env, ibp_testenv_nats_role role,
                            const char *database, const char *extra_json);

/*
 * Strings at the caps of ibp/types.h (bytes of UTF-8), each with multi-byte
 * characters, the last one ending exactly at the cap; tag (one ASCII
 * letter) starts the names and the domain, so several keys can be made.
 * The domain is lower-case labels of at most 63 bytes; the endpoint is
 * "wss://<domain>/..." of IBP_URL_MAX bytes.
 */
typedef struct pt_caps {
    char check_name[IBP_NAME_MAX + 1];
    char member[IBP_NAME_MAX + 1];
    char domain[IBP_DOMAIN_MAX + 1];
    char endpoint[IBP_URL_MAX + 1];
    char error[IBP_ERROR_MAX + 1];
} pt_caps;
void pt_caps_fill(pt_caps *c, char tag);

long long pt_now_ms(void);
void pt_sleep_ms(int ms);

#endif
