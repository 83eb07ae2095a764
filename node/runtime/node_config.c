/*
 * The settings table of ibp-node and the groups of keys every daemon shares;
 * see ibp/node_config.h.
 *
 * Keys the daemons share are described once, relative to their sub-struct
 * (ibp_config_nats, ...), and each table adds those groups at the offset of
 * the sub-struct in its own config struct (ibp-persist's: persist/config.c).
 */
#include "ibp/node_config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "ibp/log.h"
#include "ibp/roster.h"
#include "ibp/types.h"

#define SECOND_MS INT64_C(1000)
#define HOUR_MS (3600 * SECOND_MS)
#define DAY_MS (24 * HOUR_MS)

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- per-key checks ---------------------------------------------------------------------- */

static int check_node_id(const void *field, char *why, size_t cap)
{
    const char *id = *(char *const *)field;
    if (ibp_node_id_valid(id))
        return 0;
    snprintf(why, cap, "is not a valid node id (1-%d characters of A-Z, a-z, 0-9, '_' and '-')",
             IBP_NODE_ID_MAX);
    return -1;
}

static int check_log_level(const void *field, char *why, size_t cap)
{
    const char *level = *(char *const *)field;
    if (level && ibp_log_level_parse(level) >= 0)
        return 0;
    snprintf(why, cap, "is not a log level (debug, info, warn, error or off)");
    return -1;
}

static int check_servers(const void *field, char *why, size_t cap)
{
    if (((const ibp_strlist *)field)->count > 0)
        return 0;
    snprintf(why, cap, "names no server (at least one NATS URL is needed)");
    return -1;
}

/* ---- shared groups ----------------------------------------------------------------------- */

static const ibp_setting identity_settings[] = {
    {.name = "node.id",
     .type = IBP_SETTING_STRING,
     .flags = IBP_SETTING_REQUIRED,
     .example_text = "node1",
     .offset = IBP_SETTING_AT_STR(ibp_config_identity, id),
     .check = check_node_id,
     .help = "This node's id in the roster: 1-64 characters of A-Z, a-z, 0-9, '_', '-'."},
    {.name = "node.key_file",
     .type = IBP_SETTING_PATH,
     .flags = IBP_SETTING_SECRET,
     .example_text = "/etc/ibp/node1.key",
     .offset = IBP_SETTING_AT_STR(ibp_config_identity, key_file),
     .help = "Ed25519 secret key of this node (ibpctl keygen), mode 0600; ibp-node needs it."},
    {.name = "node.roster_file",
     .type = IBP_SETTING_PATH,
     .default_text = "/etc/ibp/roster.json",
     .offset = IBP_SETTING_AT_STR(ibp_config_identity, roster_file),
     .help = "Roster: every node id with its public key and roles."},
    {.name = "node.work_dir",
     .type = IBP_SETTING_PATH,
     .default_text = "/var/lib/ibp",
     .offset = IBP_SETTING_AT_STR(ibp_config_identity, work_dir),
     .help = "Directory for sequence files, caches and pending batches."},
};

static const ibp_setting nats_settings[] = {
    {.name = "nats.servers",
     .type = IBP_SETTING_STRING_LIST,
     .default_text = "nats://127.0.0.1:4222",
     .offset = IBP_SETTING_AT_LIST(ibp_config_nats, servers),
     .check = check_servers,
     .help = "NATS server URLs of the cluster (tried in turn)."},
    {.name = "nats.user",
     .type = IBP_SETTING_STRING,
     .offset = IBP_SETTING_AT_STR(ibp_config_nats, user),
     .help = "NATS user name, with nats.password_file."},
    {.name = "nats.password_file",
     .type = IBP_SETTING_PATH,
     .flags = IBP_SETTING_SECRET,
     .offset = IBP_SETTING_AT_STR(ibp_config_nats, password_file),
     .help = "File holding the NATS password of nats.user."},
    {.name = "nats.creds_file",
     .type = IBP_SETTING_PATH,
     .flags = IBP_SETTING_SECRET,
     .offset = IBP_SETTING_AT_STR(ibp_config_nats, creds_file),
     .help = "NATS credentials file (JWT and NKey seed); excludes user/password and nkey."},
    {.name = "nats.nkey_seed_file",
     .type = IBP_SETTING_PATH,
     .flags = IBP_SETTING_SECRET,
     .offset = IBP_SETTING_AT_STR(ibp_config_nats, nkey_seed_file),
     .help = "File holding a NATS user NKey seed ('SU...', mode 0600); the public key is "
             "derived from it."},
    {.name = "nats.tls_ca_file",
     .type = IBP_SETTING_PATH,
     .offset = IBP_SETTING_AT_STR(ibp_config_nats, tls_ca_file),
     .help = "CA certificates (PEM) that verify the NATS servers."},
    {.name = "nats.tls_cert_file",
     .type = IBP_SETTING_PATH,
     .offset = IBP_SETTING_AT_STR(ibp_config_nats, tls_cert_file),
     .help = "Client certificate (PEM) for NATS TLS; needs nats.tls_key_file."},
    {.name = "nats.tls_key_file",
     .type = IBP_SETTING_PATH,
     .flags = IBP_SETTING_SECRET,
     .offset = IBP_SETTING_AT_STR(ibp_config_nats, tls_key_file),
     .help = "Private key (PEM) of nats.tls_cert_file."},
    {.name = "nats.stream_replicas",
     .type = IBP_SETTING_INT64,
     .default_text = "1",
     .min = 1,
     .max = 5,
     .offset = IBP_SETTING_AT_I64(ibp_config_nats, stream_replicas),
     .help = "Replicas of the JetStream streams this node uses (3 on a three-server cluster); "
             "created so when missing, and an existing stream is brought to it at start."},
    {.name = "nats.local_max_age_ms",
     .type = IBP_SETTING_DURATION_MS,
     .default_text = "7d",
     .min = HOUR_MS,
     .max = 3660 * DAY_MS,
     .offset = IBP_SETTING_AT_I64(ibp_config_nats, local_max_age_ms),
     .help = "How long the LOCAL stream keeps monitor results (replay, audit, and a replica's "
             "start from its state file); applied to the existing stream at start."},
    {.name = "nats.events_max_age_ms",
     .type = IBP_SETTING_DURATION_MS,
     .default_text = "400d",
     .min = HOUR_MS,
     .max = 3660 * DAY_MS,
     .offset = IBP_SETTING_AT_I64(ibp_config_nats, events_max_age_ms),
     .help = "How long the EVENTS stream keeps outage events (persist, replay); applied to "
             "the existing stream at start."},
    {.name = "nats.hits_max_age_ms",
     .type = IBP_SETTING_DURATION_MS,
     .default_text = "400d",
     .min = HOUR_MS,
     .max = 3660 * DAY_MS,
     .offset = IBP_SETTING_AT_I64(ibp_config_nats, hits_max_age_ms),
     .help = "How long the HITS stream keeps usage batches (persist, replay); applied to the "
             "existing stream at start."},
    {.name = "nats.official_keep",
     .type = IBP_SETTING_INT64,
     .default_text = "256",
     .min = 1,
     .max = 1000000,
     .offset = IBP_SETTING_AT_I64(ibp_config_nats, official_keep),
     .help = "Official snapshots the OFFICIAL stream keeps (the newest, with no age limit, so "
             "a quiet network never loses its last one); applied to the existing stream at "
             "start."},
    {.name = "nats.official_memory",
     .type = IBP_SETTING_BOOL,
     .default_text = "true",
     .offset = IBP_SETTING_AT_BOOL(ibp_config_nats, official_memory),
     .help = "Keep OFFICIAL in memory instead of files: a file store stalls the delivery of "
             "large snapshots now and then (docs/operations.md). A restart of every server "
             "loses OFFICIAL's history (audits of old epochs); the consensus replicas then "
             "publish their current epoch again. Used when the stream is created; an existing "
             "stream keeps its storage (a warning says how to switch)."},
    {.name = "nats.official_max_bytes",
     .type = IBP_SETTING_INT64,
     .default_text = "134217728",
     .min = 0,
     .max = INT64_C(1) << 40,
     .offset = IBP_SETTING_AT_I64(ibp_config_nats, official_max_bytes),
     .help = "Bytes OFFICIAL keeps at most (the oldest snapshots go first; 0: no limit). A "
             "memory stream reserves them of nats-server's max_memory_store when it is "
             "created, so they must fit there; applied to the existing stream at start."},
};

static const ibp_setting mysql_settings[] = {
    {.name = "mysql.host",
     .type = IBP_SETTING_STRING,
     .default_text = "127.0.0.1",
     .offset = IBP_SETTING_AT_STR(ibp_config_mysql, host),
     .help = "MariaDB/MySQL server host."},
    {.name = "mysql.port",
     .type = IBP_SETTING_INT64,
     .default_text = "3306",
     .min = 1,
     .max = 65535,
     .offset = IBP_SETTING_AT_I64(ibp_config_mysql, port),
     .help = "MariaDB/MySQL server TCP port."},
    {.name = "mysql.socket",
     .type = IBP_SETTING_PATH,
     .offset = IBP_SETTING_AT_STR(ibp_config_mysql, socket),
     .help = "Unix socket of the server; when set, used instead of host and port."},
    {.name = "mysql.user",
     .type = IBP_SETTING_STRING,
     .default_text = "ibp",
     .offset = IBP_SETTING_AT_STR(ibp_config_mysql, user),
     .help = "Database user."},
    {.name = "mysql.password_file",
     .type = IBP_SETTING_PATH,
     .flags = IBP_SETTING_SECRET,
     .offset = IBP_SETTING_AT_STR(ibp_config_mysql, password_file),
     .help = "File holding the database user's password."},
    {.name = "mysql.database",
     .type = IBP_SETTING_STRING,
     .default_text = "ibp",
     .offset = IBP_SETTING_AT_STR(ibp_config_mysql, database),
     .help = "Database (schema) name."},
};

static const ibp_setting events_settings[] = {
    {.name = "events.min_offline_ms",
     .type = IBP_SETTING_DURATION_MS,
     .flags = IBP_SETTING_RELOADABLE,
     .default_text = "30000",
     .min = 0,
     .max = DAY_MS,
     .offset = IBP_SETTING_AT_I64(ibp_config_events, min_offline_ms),
     .help = "Outages shorter than this are deleted instead of recorded."},
};

static const ibp_setting log_settings[] = {
    {.name = "log.level",
     .type = IBP_SETTING_STRING,
     .flags = IBP_SETTING_RELOADABLE,
     .default_text = "info",
     .offset = IBP_SETTING_AT_STR(ibp_config_log, level),
     .check = check_log_level,
     .help = "Lowest level logged: debug, info, warn, error or off."},
};

/* The shared groups, for the other daemons' tables (ibp/node_config.h). */

const ibp_setting *ibp_config_identity_settings(size_t *count)
{
    *count = COUNT(identity_settings);
    return identity_settings;
}

const ibp_setting *ibp_config_nats_settings(size_t *count)
{
    *count = COUNT(nats_settings);
    return nats_settings;
}

const ibp_setting *ibp_config_mysql_settings(size_t *count)
{
    *count = COUNT(mysql_settings);
    return mysql_settings;
}

const ibp_setting *ibp_config_events_settings(size_t *count)
{
    *count = COUNT(events_settings);
    return events_settings;
}

const ibp_setting *ibp_config_log_settings(size_t *count)
{
    *count = COUNT(log_settings);
    return log_settings;
}

/* ---- cross-key checks shared by the daemons ---------------------------------------------- */

static bool set(const char *s)
{
    return s && *s;
}

ibp_status ibp_config_nats_validate(const ibp_config_nats *n, const char *source, ibp_err *err)
{
    if (set(n->password_file) && !set(n->user))
        return ibp_err_set(err, IBP_E_CONFIG, "%s: key 'nats.password_file' needs 'nats.user'",
                           source);
    if (set(n->creds_file) && (set(n->user) || set(n->nkey_seed_file)))
        return ibp_err_set(err, IBP_E_CONFIG,
                           "%s: key 'nats.creds_file' excludes 'nats.user' and "
                           "'nats.nkey_seed_file' (use one way to authenticate)",
                           source);
    if (set(n->nkey_seed_file) && set(n->user))
        return ibp_err_set(err, IBP_E_CONFIG,
                           "%s: key 'nats.nkey_seed_file' excludes 'nats.user' (use one way to "
                           "authenticate)",
                           source);
    if (set(n->tls_cert_file) != set(n->tls_key_file))
        return ibp_err_set(err, IBP_E_CONFIG,
                           "%s: keys 'nats.tls_cert_file' and 'nats.tls_key_file' go together",
                           source);
    return IBP_OK;
}

/* ---- ibp-node ---------------------------------------------------------------------------- */

static const ibp_setting node_roles_settings[] = {
    {.name = "node.roles",
     .type = IBP_SETTING_ROLES,
     .flags = IBP_SETTING_REQUIRED,
     .example_text = "monitor,consensus",
     .offset = IBP_SETTING_AT_ROLES(ibp_node_config, roles),
     .help = "What this node does: monitor, consensus, dns, persist, admin (array or "
             "\"a,b\"); must match the roster."},
};

static const ibp_setting node_settings[] = {
    {.name = "maxmind.city_db",
     .type = IBP_SETTING_PATH,
     .flags = IBP_SETTING_RELOADABLE,
     .example_text = "/var/lib/GeoIP/GeoLite2-City.mmdb",
     .offset = IBP_SETTING_AT_STR(ibp_node_config, maxmind.city_db),
     .help = "MaxMind City database (country of DNS clients); used by the dns role."},
    {.name = "maxmind.country_db",
     .type = IBP_SETTING_PATH,
     .flags = IBP_SETTING_RELOADABLE,
     .offset = IBP_SETTING_AT_STR(ibp_node_config, maxmind.country_db),
     .help = "MaxMind Country database, used when maxmind.city_db is not set."},
    {.name = "maxmind.asn_db",
     .type = IBP_SETTING_PATH,
     .flags = IBP_SETTING_RELOADABLE,
     .example_text = "/var/lib/GeoIP/GeoLite2-ASN.mmdb",
     .offset = IBP_SETTING_AT_STR(ibp_node_config, maxmind.asn_db),
     .help = "MaxMind ASN database (network of DNS clients)."},
    {.name = "network.members_file",
     .type = IBP_SETTING_PATH,
     .flags = IBP_SETTING_RELOADABLE,
     .example_text = "/etc/ibp/network/members.json",
     .offset = IBP_SETTING_AT_STR(ibp_node_config, network.members_file),
     .help = "IBP members file (upstream format); needed by the monitor and dns roles."},
    {.name = "network.services_file",
     .type = IBP_SETTING_PATH,
     .flags = IBP_SETTING_RELOADABLE,
     .example_text = "/etc/ibp/network/services.json",
     .offset = IBP_SETTING_AT_STR(ibp_node_config, network.services_file),
     .help = "IBP services file (upstream format); needed by the monitor and dns roles."},
    {.name = "network.checks_file",
     .type = IBP_SETTING_PATH,
     .flags = IBP_SETTING_RELOADABLE,
     .example_text = "/etc/ibp/network/checks.json",
     .offset = IBP_SETTING_AT_STR(ibp_node_config, network.checks_file),
     .help = "Checks the monitor runs (see ibp/network.h for the format)."},
    {.name = "intervals.publish_ms",
     .type = IBP_SETTING_DURATION_MS,
     .flags = IBP_SETTING_RELOADABLE,
     .default_text = "5000",
     .min = 100,
     .max = HOUR_MS,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, intervals.publish_ms),
     .help = "How often a monitor publishes its batch of new observations."},
    {.name = "intervals.refresh_ms",
     .type = IBP_SETTING_DURATION_MS,
     .flags = IBP_SETTING_RELOADABLE,
     .default_text = "60000",
     .min = SECOND_MS,
     .max = DAY_MS,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, intervals.refresh_ms),
     .help = "How often a monitor re-observes every key (and re-reads the network files)."},
    {.name = "intervals.heartbeat_ms",
     .type = IBP_SETTING_DURATION_MS,
     .flags = IBP_SETTING_RELOADABLE,
     .default_text = "5000",
     .min = 100,
     .max = HOUR_MS,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, intervals.heartbeat_ms),
     .help = "How often a node publishes its signed heartbeat."},
    {.name = "intervals.usage_flush_ms",
     .type = IBP_SETTING_DURATION_MS,
     .flags = IBP_SETTING_RELOADABLE,
     .default_text = "300000",
     .min = SECOND_MS,
     .max = DAY_MS,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, intervals.usage_flush_ms),
     .help = "How often a dns node flushes its usage counters as a hit batch."},
    {.name = "intervals.cache_save_ms",
     .type = IBP_SETTING_DURATION_MS,
     .flags = IBP_SETTING_RELOADABLE,
     .default_text = "90000",
     .min = SECOND_MS,
     .max = DAY_MS,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, intervals.cache_save_ms),
     .help = "How often the local and official stores are saved to cache files."},
    /* The consensus rules must be the same on every replica: restart them together. */
    {.name = "consensus.active_window_ms",
     .type = IBP_SETTING_DURATION_MS,
     .default_text = "600000",
     .min = SECOND_MS,
     .max = DAY_MS,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, consensus.active_window_ms),
     .help = "A monitor counts as active while its last message is younger than this."},
    {.name = "consensus.staleness_ms",
     .type = IBP_SETTING_DURATION_MS,
     .default_text = "0",
     .min = 0,
     .max = DAY_MS,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, consensus.staleness_ms),
     .help = "Observations older than this do not vote; 0 means 3 x intervals.refresh_ms."},
    {.name = "consensus.quorum_min",
     .type = IBP_SETTING_INT64,
     .default_text = "2",
     .min = 2,
     .max = 1000,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, consensus.quorum_min),
     .help = "Smallest quorum: max(quorum_min, active monitors / 2 + 1) must agree."},
    {.name = "consensus.expiry_ms",
     .type = IBP_SETTING_DURATION_MS,
     .default_text = "3600000",
     .min = SECOND_MS,
     .max = 30 * DAY_MS,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, consensus.expiry_ms),
     .help = "A key no active monitor observed for this long leaves the official state."},
    /* Limits of the vote engine (docs/limits.md): a message over one is skipped whole, by
     * every replica alike, so they too must be the same on every replica. */
    {.name = "consensus.max_batch_obs",
     .type = IBP_SETTING_INT64,
     .default_text = "65536",
     .min = IBP_MONITOR_MAX_BATCH_OBS_DEFAULT,
     .max = INT64_C(1) << 31,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, consensus.max_batch_obs),
     .help = "Observations in one batch; a larger batch is refused whole (monitors split at "
             "5000)."},
    {.name = "consensus.max_keys_per_node",
     .type = IBP_SETTING_INT64,
     .default_text = "250000",
     .min = 1000,
     .max = INT64_C(1) << 31,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, consensus.max_keys_per_node),
     .help = "Keys one monitor may hold a live observation of; a batch that would pass it is "
             "refused whole."},
    {.name = "consensus.max_keys",
     .type = IBP_SETTING_INT64,
     .default_text = "250000",
     .min = 1000,
     .max = INT64_C(1) << 31,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, consensus.max_keys),
     .help = "Keys held by the engine in total; a batch that would pass it is refused whole."},
    /* Not a vote rule: replicas may differ, and it only bounds a recovery. */
    {.name = "consensus.side_cover_ms",
     .type = IBP_SETTING_DURATION_MS,
     .default_text = "2000",
     .min = 100,
     .max = 60 * SECOND_MS,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, consensus.side_cover_ms),
     .help = "A replica that did not win an epoch's snapshot publishes the epoch's events and "
             "status messages if they are not in the streams this long after it."},
    {.name = "consensus.checkpoint_ms",
     .type = IBP_SETTING_DURATION_MS,
     .default_text = "30000",
     .min = SECOND_MS,
     .max = DAY_MS,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, consensus.checkpoint_ms),
     .help = "How often a replica publishes its signed state (its checkpoint) to stream "
             "CHECKPOINT, from which a replica added or rebuilt without consensus.state starts."},
    {.name = "consensus.certificate_quorum",
     .type = IBP_SETTING_INT64,
     .default_text = "0",
     .min = 0,
     .max = 1024,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, consensus.certificate_quorum),
     .help = "How many of the roster's consensus nodes must sign an epoch's statement before "
             "this node applies its official snapshot; 0 is a majority of them. 1 is refused "
             "unless the roster has one consensus node (then a WARN at start)."},
    {.name = "checks.max_in_flight",
     .type = IBP_SETTING_INT64,
     .default_text = "32",
     .min = 1,
     .max = 1024,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, checks.max_in_flight),
     .help = "Member checks a monitor runs at once (one thread each); a target that hangs holds "
             "one until its Timeout."},
    {.name = "checks.retries",
     .type = IBP_SETTING_INT64,
     .default_text = "1",
     .min = 0,
     .max = 10,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, checks.retries),
     .help = "A failed check is tried again this many times before it is recorded as down."},
    {.name = "checks.retry_delay_ms",
     .type = IBP_SETTING_DURATION_MS,
     .default_text = "2000",
     .min = 0,
     .max = 60 * SECOND_MS,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, checks.retry_delay_ms),
     .help = "Delay before a failed check is tried again."},
    {.name = "checks.max_response_bytes",
     .type = IBP_SETTING_INT64,
     .default_text = "1048576",
     .min = 4096,
     .max = INT64_C(64) << 20,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, checks.max_response_bytes),
     .help = "Largest response a check reads from a member (HTTP body, WebSocket message); a "
             "larger one is a failure."},
    {.name = "checks.ca_file",
     .type = IBP_SETTING_PATH,
     .offset = IBP_SETTING_AT_STR(ibp_node_config, checks.ca_file),
     .help = "CA certificates (PEM) the ssl, wss and ethrpc checks trust; unset: the system's."},
    {.name = "usage.max_keys",
     .type = IBP_SETTING_INT64,
     .default_text = "1048576",
     .min = 1024,
     .max = INT64_C(1) << 32,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, usage.max_keys),
     .help = "Distinct usage counters a dns node holds in memory; past it hits go to overflow "
             "rows and an early flush starts."},
};

/* The dns role's PowerDNS remote backend (node/dns, ibp/dns_service.h). */
static const ibp_setting dns_settings[] = {
    {.name = "dns.unix_socket",
     .type = IBP_SETTING_PATH,
     .offset = IBP_SETTING_AT_STR(ibp_node_config, dns.unix_socket),
     .help = "Unix socket of the remote backend (pdns.conf: remote-connection-string=unix:path=); "
             "unset: <node.work_dir>/dns-backend.sock."},
    {.name = "dns.http_address",
     .type = IBP_SETTING_STRING,
     .default_text = "127.0.0.1",
     .offset = IBP_SETTING_AT_STR(ibp_node_config, dns.http_address),
     .help = "Address of the HTTP connector of the remote backend (an IP literal)."},
    {.name = "dns.http_port",
     .type = IBP_SETTING_INT64,
     .default_text = "0",
     .min = 0,
     .max = 65535,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, dns.http_port),
     .help = "Port of the HTTP connector (remote-connection-string=http:url=http://ADDR:PORT/dns,"
             "post=1,post_json=1); 0: none (the unix socket is faster)."},
    {.name = "dns.http_threads",
     .type = IBP_SETTING_INT64,
     .default_text = "4",
     .min = 1,
     .max = 64,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, dns.http_threads),
     .help = "Threads of the HTTP connector."},
    {.name = "dns.static_records_file",
     .type = IBP_SETTING_PATH,
     .offset = IBP_SETTING_AT_STR(ibp_node_config, dns.static_records_file),
     .help = "Static records (upstream geodns-static.json format: qname, qtype, content, ttl, "
             "auth), served as they are."},
    {.name = "dns.zones",
     .type = IBP_SETTING_STRING_LIST,
     .offset = IBP_SETTING_AT_LIST(ibp_node_config, dns.zones),
     .help = "Zones served besides those derived (owners of static NS records, else the last "
             "two labels of each name)."},
    {.name = "dns.ttl_s",
     .type = IBP_SETTING_INT64,
     .default_text = "30",
     .min = 1,
     .max = 86400,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, dns.ttl_s),
     .help = "TTL of the A and AAAA answers of service host names."},
    {.name = "dns.last_resort_ttl_s",
     .type = IBP_SETTING_INT64,
     .default_text = "5",
     .min = 1,
     .max = 3600,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, dns.last_resort_ttl_s),
     .help = "TTL of a last-resort answer (no member healthy: the nearest one anyway)."},
    {.name = "dns.negative_ttl_s",
     .type = IBP_SETTING_INT64,
     .default_text = "60",
     .min = 0,
     .max = 86400,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, dns.negative_ttl_s),
     .help = "SOA minimum of every zone: how long resolvers cache a name that does not exist."},
    {.name = "dns.country_overrides",
     .type = IBP_SETTING_STRING_LIST,
     .offset = IBP_SETTING_AT_LIST(ibp_node_config, dns.country_overrides),
     .help = "Per-country answers: \"CC=member name\" (that member while it is eligible) or "
             "\"CC=address\" (that address for its family)."},
    {.name = "dns.max_request_bytes",
     .type = IBP_SETTING_INT64,
     .default_text = "65536",
     .min = 1024,
     .max = INT64_C(16) << 20,
     .offset = IBP_SETTING_AT_I64(ibp_node_config, dns.max_request_bytes),
     .help = "Largest remote backend request accepted; larger ones are refused and counted."},
};

int64_t ibp_node_config_staleness_ms(const ibp_node_config *cfg)
{
    if (!cfg)
        return 0;
    return cfg->consensus.staleness_ms ? cfg->consensus.staleness_ms
                                       : 3 * cfg->intervals.refresh_ms;
}

static ibp_status validate_node(const void *base, const char *source, ibp_err *err)
{
    const ibp_node_config *cfg = base;
    /* Every role of ibp-node publishes signed messages, so each needs its key. */
    if (!set(cfg->node.key_file))
        return ibp_err_set(err, IBP_E_CONFIG,
                           "%s: missing required key 'node.key_file' (every ibp-node role signs "
                           "what it publishes)",
                           source);
    if (cfg->roles & (IBP_ROLE_MONITOR | IBP_ROLE_DNS)) {
        const char *missing = !set(cfg->network.members_file)    ? "network.members_file"
                              : !set(cfg->network.services_file) ? "network.services_file"
                                                                 : NULL;
        if (missing)
            return ibp_err_set(err, IBP_E_CONFIG,
                               "%s: missing required key '%s' (needed by the monitor and dns "
                               "roles)",
                               source, missing);
    }
    int64_t staleness = ibp_node_config_staleness_ms(cfg);
    if (staleness < cfg->intervals.publish_ms)
        return ibp_err_set(err, IBP_E_CONFIG,
                           "%s: key 'consensus.staleness_ms': %" PRId64
                           " is below intervals.publish_ms (%" PRId64
                           "): every observation would be stale before the next batch",
                           source, staleness, cfg->intervals.publish_ms);
    if (cfg->intervals.heartbeat_ms >= cfg->consensus.active_window_ms)
        return ibp_err_set(err, IBP_E_CONFIG,
                           "%s: key 'intervals.heartbeat_ms': %" PRId64
                           " must be below consensus.active_window_ms (%" PRId64 ")",
                           source, cfg->intervals.heartbeat_ms, cfg->consensus.active_window_ms);
    if (cfg->consensus.max_keys_per_node > cfg->consensus.max_keys)
        return ibp_err_set(err, IBP_E_CONFIG,
                           "%s: key 'consensus.max_keys_per_node': %" PRId64
                           " is over consensus.max_keys (%" PRId64 ")",
                           source, cfg->consensus.max_keys_per_node, cfg->consensus.max_keys);
    return ibp_config_nats_validate(&cfg->nats, source, err);
}

static const ibp_settings_group node_groups[] = {
    {identity_settings, COUNT(identity_settings), offsetof(ibp_node_config, node)},
    {node_roles_settings, COUNT(node_roles_settings), 0},
    {nats_settings, COUNT(nats_settings), offsetof(ibp_node_config, nats)},
    {mysql_settings, COUNT(mysql_settings), offsetof(ibp_node_config, mysql)},
    {node_settings, COUNT(node_settings), 0},
    {dns_settings, COUNT(dns_settings), 0},
    {events_settings, COUNT(events_settings), offsetof(ibp_node_config, events)},
    {log_settings, COUNT(log_settings), offsetof(ibp_node_config, log)},
};

static const ibp_settings_table node_table = {
    .program = "ibp-node",
    .groups = node_groups,
    .group_count = COUNT(node_groups),
    .struct_size = sizeof(ibp_node_config),
    .validate = validate_node,
};

const ibp_settings_table *ibp_node_config_table(void)
{
    return &node_table;
}

ibp_status ibp_node_config_load(const char *path, ibp_node_config *out, ibp_err *err)
{
    return ibp_settings_load_file(&node_table, path, out, err);
}

ibp_status ibp_node_config_load_buffer(const char *text, size_t len, const char *source,
                                       ibp_node_config *out, ibp_err *err)
{
    return ibp_settings_load_buffer(&node_table, text, len, source, out, err);
}

void ibp_node_config_free(ibp_node_config *cfg)
{
    ibp_settings_free(&node_table, cfg);
}

ibp_status ibp_node_config_help(FILE *out)
{
    return ibp_settings_help(&node_table, out);
}

ibp_status ibp_node_config_example(FILE *out, ibp_err *err)
{
    return ibp_settings_example(&node_table, out, err);
}
