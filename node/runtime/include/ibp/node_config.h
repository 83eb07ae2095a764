/*
 * Configuration of ibp-node (monitor, consensus, dns, admin roles): one
 * settings table (see ibp/settings.h) from which loading, validation,
 * `--help` and the example config all come. The keys every daemon shares
 * (node identity, NATS, MariaDB, events, log) live in sub-structs described
 * by shared groups of settings, exported below, so that ibp-persist's table
 * (persist/include/ibp/persist_config.h) uses the same entries.
 *
 * Ownership: a loaded config owns its strings and lists; free it with the
 * matching _free(). Unset optional strings are NULL. A loaded config is not
 * changed by any function here, so threads may read it concurrently.
 *
 * Errors (all calls that take an ibp_err): IBP_E_IO (file cannot be read),
 * IBP_E_CONFIG (content: unknown key, wrong type, out of bounds, missing
 * required key, bad node id or role, ...; the message names the file and the
 * key), IBP_E_NOMEM, IBP_E_INVAL (NULL arguments).
 */
#ifndef IBP_NODE_CONFIG_H
#define IBP_NODE_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "ibp/bus.h"
#include "ibp/settings.h"
#include "ibp/status.h"

/* "node.*" keys shared by every daemon. */
typedef struct ibp_config_identity {
    char *id;          /* node.id: required, a valid node id (ibp_node_id_valid) */
    char *key_file;    /* node.key_file: Ed25519 secret key file (secret) */
    char *roster_file; /* node.roster_file */
    char *work_dir;    /* node.work_dir: sequence files, caches, pending batches */
} ibp_config_identity;

/* "nats.*" keys. */
typedef struct ibp_config_nats {
    ibp_strlist servers; /* never empty */
    char *user;
    char *password_file;  /* secret */
    char *creds_file;     /* secret */
    char *nkey_seed_file; /* secret */
    char *tls_ca_file;
    char *tls_cert_file;
    char *tls_key_file;      /* secret */
    int64_t stream_replicas; /* replicas of the streams this node checks (1, or 3 for a cluster) */
    int64_t local_max_age_ms;  /* nats.local_max_age_ms: LOCAL's age limit */
    int64_t events_max_age_ms; /* nats.events_max_age_ms: EVENTS' age limit */
    int64_t hits_max_age_ms;   /* nats.hits_max_age_ms: HITS' age limit */
    int64_t official_keep;     /* nats.official_keep: snapshots OFFICIAL keeps */
    bool official_memory;      /* nats.official_memory: OFFICIAL on memory storage */
    int64_t official_max_bytes; /* nats.official_max_bytes: OFFICIAL's byte limit, 0: none */
} ibp_config_nats;

/*
 * The stream limits of the "nats.*" keys, for a daemon at start: opts is
 * initialised (ibp_bus_stream_opts_init, so the process's stream set) and
 * then given the configured replicas, ages and OFFICIAL's depth and storage,
 * with update_existing set so existing streams are brought to them.
 */
void ibp_config_nats_stream_opts(const ibp_config_nats *cfg, ibp_bus_stream_opts *opts);

/*
 * Connects to NATS as the "nats.*" keys say (ibp_bus_connect with the
 * options taken from cfg; node/runtime/config_connect.c). Errors as
 * ibp_bus_connect's.
 */
ibp_status ibp_config_nats_connect(const ibp_config_nats *cfg, const char *name,
                                   bool retry_at_start, natsConnection **out, ibp_err *err);

/* "mysql.*" keys (MariaDB or MySQL). */
typedef struct ibp_config_mysql {
    char *host;
    int64_t port;
    char *socket; /* when set, used instead of host and port */
    char *user;
    char *password_file; /* secret */
    char *database;
} ibp_config_mysql;

typedef struct ibp_config_events {
    int64_t min_offline_ms; /* events.min_offline_ms: shorter outages are dropped */
} ibp_config_events;

typedef struct ibp_config_log {
    char *level; /* log.level: debug, info, warn, error, off (ibp_log_level_parse) */
} ibp_config_log;

typedef struct ibp_node_config {
    ibp_config_identity node;
    unsigned roles; /* node.roles: bits of ibp_role, never 0 */
    ibp_config_nats nats;
    ibp_config_mysql mysql;
    struct {
        char *city_db;
        char *country_db;
        char *asn_db;
    } maxmind;
    struct {
        char *members_file;
        char *services_file;
        char *checks_file;
    } network;
    struct {
        char *unix_socket;          /* the PowerDNS remote backend's socket (default in work dir) */
        char *http_address;         /* HTTP connector address */
        int64_t http_port;          /* 0: no HTTP connector */
        int64_t http_threads;
        char *static_records_file;  /* upstream geodns-static.json format */
        ibp_strlist zones;          /* explicit zones (others are derived) */
        int64_t ttl_s;              /* TTL of dynamic answers */
        int64_t last_resort_ttl_s;  /* TTL of last-resort answers */
        int64_t negative_ttl_s;     /* SOA minimum */
        ibp_strlist country_overrides; /* "CC=member" or "CC=address" */
        int64_t max_request_bytes;  /* one remote backend request */
    } dns;
    struct {
        int64_t publish_ms;
        int64_t refresh_ms;
        int64_t heartbeat_ms;
        int64_t usage_flush_ms;
        int64_t cache_save_ms;
    } intervals;
    struct {
        int64_t active_window_ms;
        int64_t staleness_ms; /* 0: 3 x intervals.refresh_ms (ibp_node_config_staleness_ms) */
        int64_t quorum_min;
        int64_t expiry_ms;
        int64_t max_batch_obs;     /* observations per batch (ibp_vote_config) */
        int64_t max_keys_per_node; /* keys with a live observation per monitor */
        int64_t max_keys;          /* keys held in total */
        int64_t side_cover_ms;     /* ibp_replica_opts.side_cover_ms */
        int64_t checkpoint_ms;     /* ibp_replica_opts.checkpoint_ms */
        int64_t certificate_quorum; /* ibp_official_subscriber_opts.quorum (0: majority) */
    } consensus;
    struct {
        int64_t max_keys; /* distinct usage counters in memory (ibp_usage_opts) */
    } usage;
    struct {
        int64_t max_in_flight;      /* checks running at once (ibp_checker_opts) */
        int64_t retries;            /* tries after a failure before it is recorded */
        int64_t retry_delay_ms;     /* between those tries */
        int64_t max_response_bytes; /* one response of a member's endpoint */
        char *ca_file;              /* CAs the TLS checks trust; unset: the system's */
    } checks;
    ibp_config_events events;
    ibp_config_log log;
} ibp_node_config;

/*
 * The shared groups of keys, each described relative to its sub-struct
 * (ibp_config_identity, ibp_config_nats, ibp_config_mysql, ibp_config_events,
 * ibp_config_log): a daemon's table adds one as an ibp_settings_group whose
 * base is the offset of that sub-struct in its own config struct. Each
 * returns a constant array and writes its length to *count. Thread-safe.
 */
const ibp_setting *ibp_config_identity_settings(size_t *count);
const ibp_setting *ibp_config_nats_settings(size_t *count);
const ibp_setting *ibp_config_mysql_settings(size_t *count);
const ibp_setting *ibp_config_events_settings(size_t *count);
const ibp_setting *ibp_config_log_settings(size_t *count);

/*
 * The checks across the "nats.*" keys that every daemon's validate runs
 * (one way to authenticate, TLS certificate and key together). source names
 * the file in the message. Errors: IBP_E_CONFIG.
 */
ibp_status ibp_config_nats_validate(const ibp_config_nats *nats, const char *source, ibp_err *err);

/* The settings table, for ibp_settings_*() calls (overrides, reload checks, secrets). */
const ibp_settings_table *ibp_node_config_table(void);

/*
 * Loads an ibp-node config file (defaults, then the file, then validation).
 * *out is written only on success and then owns its strings; free it with
 * ibp_node_config_free(). path is borrowed. Errors: see the top of this file.
 * Thread-safe (touches nothing shared).
 */
ibp_status ibp_node_config_load(const char *path, ibp_node_config *out, ibp_err *err);

/* As ibp_node_config_load() for JSON text in memory; source names it in messages. */
ibp_status ibp_node_config_load_buffer(const char *text, size_t len, const char *source,
                                       ibp_node_config *out, ibp_err *err);

/* Frees what the config owns and resets those fields. Accepts NULL; a second call is harmless. */
void ibp_node_config_free(ibp_node_config *cfg);

/* The staleness limit in effect: consensus.staleness_ms, or 3 x intervals.refresh_ms when 0. */
int64_t ibp_node_config_staleness_ms(const ibp_node_config *cfg);

/* Writes the `--help` text of every key to out. IBP_E_IO when writing fails. */
ibp_status ibp_node_config_help(FILE *out);

/* Writes an example config (every default, example values for required keys); it loads as is. */
ibp_status ibp_node_config_example(FILE *out, ibp_err *err);

#endif
