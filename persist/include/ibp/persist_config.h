/*
 * Configuration of ibp-persist: one settings table (ibp/settings.h) from
 * which loading, validation, `--help` and the example config all come. The
 * keys it shares with ibp-node (node identity, NATS, MariaDB, events, log)
 * are the shared groups of ibp/node_config.h; the "persist.*" keys are its
 * own, and the "replay.*" keys are read by `ibp-persist replay` only.
 * Every command-line flag of ibp-persist sets one of these keys (the flag
 * and the key write the same field): --sql-dir persist.sql_dir,
 * --hits-stream persist.hits_stream, --events-stream persist.events_stream,
 * --hits-durable persist.hits_durable, --events-durable
 * persist.events_durable, --service-prefix persist.service_prefix,
 * --database replay.database, --from-seq replay.from_seq, --from-time
 * replay.from_time, --stream replay.stream.
 *
 * Ownership: a loaded config owns its strings and lists; free it with
 * ibp_persist_config_free(). Unset optional strings are NULL (a string set
 * to "" reads back as unset: persist.hits_stream "" skips the HITS stream).
 * A loaded config is not changed by any function here, so threads may read
 * it concurrently.
 *
 * Errors (all calls that take an ibp_err): IBP_E_IO (file cannot be read),
 * IBP_E_CONFIG (content: unknown key, wrong type, out of bounds, missing
 * required key, keys that exclude each other, ...; the message names the
 * file and the key), IBP_E_NOMEM, IBP_E_INVAL (NULL arguments).
 */
#ifndef IBP_PERSIST_CONFIG_H
#define IBP_PERSIST_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "ibp/node_config.h"
#include "ibp/settings.h"
#include "ibp/status.h"

typedef struct ibp_persist_config {
    ibp_config_identity node;
    ibp_config_nats nats;
    ibp_config_mysql mysql;
    struct {
        int64_t batch_size;    /* messages fetched and applied per transaction */
        int64_t fetch_wait_ms; /* how long one fetch waits for messages */
        char *sql_dir;         /* migration files; NULL: $IBP_SQL_DIR or the installed ones */
        char *hits_stream;     /* default "HITS"; NULL (set to ""): not consumed */
        char *events_stream;   /* default "EVENTS"; NULL (set to ""): not consumed */
        char *hits_durable;    /* durable consumer and offsets name of HITS */
        char *events_durable;  /* the same of EVENTS */
        char *service_prefix;  /* request subjects <prefix>.events, <prefix>.usage */
    } persist;
    struct {
        char *database;   /* the database rebuilt; required by replay */
        int64_t from_seq; /* 0: from the first message (or from_time) */
        char *from_time;  /* RFC 3339 time or date; NULL: from the first message */
        char *stream;     /* "HITS", "EVENTS" or "all" */
    } replay;
    ibp_config_events events;
    ibp_config_log log;
} ibp_persist_config;

/* The settings table, for ibp_settings_*() calls (overrides, secrets). Thread-safe. */
const ibp_settings_table *ibp_persist_config_table(void);

/*
 * Loads an ibp-persist config file (defaults, then the file, then
 * validation). *out is written only on success and then owns its strings;
 * free it with ibp_persist_config_free(). path is borrowed. Errors: see the
 * top of this file. Thread-safe (touches nothing shared).
 */
ibp_status ibp_persist_config_load(const char *path, ibp_persist_config *out, ibp_err *err);

/* As ibp_persist_config_load() for JSON text in memory; source names it in messages. */
ibp_status ibp_persist_config_load_buffer(const char *text, size_t len, const char *source,
                                          ibp_persist_config *out, ibp_err *err);

/* Frees what the config owns and resets those fields. Accepts NULL; a second call is harmless. */
void ibp_persist_config_free(ibp_persist_config *cfg);

/* Writes the `--help` text of every key to out. IBP_E_IO when writing fails. */
ibp_status ibp_persist_config_help(FILE *out);

/* Writes an example config (every default, example values for required keys); it loads as is. */
ibp_status ibp_persist_config_example(FILE *out, ibp_err *err);

#endif
