/*
 * ibp-persist: writes the HITS and EVENTS streams to MariaDB exactly once,
 * answers queries over NATS, and rebuilds a database from the streams.
 *
 *   ibp-persist --config FILE [--sql-dir DIR] [--set KEY=VALUE]...
 *   ibp-persist replay --config FILE --database NAME
 *               [--from-seq N | --from-time RFC3339] [--stream HITS|EVENTS|all]
 *   ibp-persist --help | --example-config
 *
 * Only wiring: the work is in the ibp_persist library (ibp/persist*.h).
 * Exit status: 0 after a clean stop, 1 on a runtime error, 2 on bad usage
 * or configuration.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include "ibp/bus.h"
#include "ibp/log.h"
#include "ibp/node_config.h"
#include "ibp/persist.h"
#include "ibp/persist_db.h"
#include "ibp/persist_replay.h"
#include "ibp/persist_service.h"
#include "ibp/roster.h"
#include "ibp/schema.h"
#include "persist_util.h"

#define PROG "ibp-persist"
#define COMPONENT "ibp-persist"
#define MAX_SETS 64

static atomic_bool stop_flag;
static atomic_bool hup_flag;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        atomic_store(&hup_flag, true);
    else
        atomic_store(&stop_flag, true);
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: " PROG " --config FILE [--sql-dir DIR] [--set KEY=VALUE]... [names]\n"
            "       " PROG " replay --config FILE --database NAME [--from-seq N | --from-time "
            "RFC3339]\n"
            "                   [--stream HITS|EVENTS|all] [--sql-dir DIR] [names]\n"
            "       " PROG " --help | --example-config\n"
            "\n"
            "Runs durable JetStream pull consumers on HITS and EVENTS and applies each batch\n"
            "to MariaDB in one transaction with its stream sequence, acknowledging after the\n"
            "commit (exactly once). Answers ibp.persist.events and ibp.persist.usage (JSON\n"
            "request-reply) and $SRV.PING|INFO|STATS. Pending schema migrations are applied\n"
            "at start; a database newer than this program is refused. SIGTERM/SIGINT stop it\n"
            "cleanly.\n"
            "\n"
            "replay rebuilds the tables from the streams into NAME, which must be empty (it\n"
            "is created when missing), from the start, a stream sequence or a time, printing\n"
            "progress to stderr at most once a second.\n"
            "\n"
            "  --set KEY=VALUE         override one config key (same words as the file)\n"
            "  --sql-dir DIR           migration files (default $IBP_SQL_DIR or %s)\n"
            "  --hits-stream NAME      stream of HitBatches (default HITS; \"\" skips it)\n"
            "  --events-stream NAME    stream of Events (default EVENTS; \"\" skips it)\n"
            "  --hits-durable NAME     durable consumer / offsets name "
            "(default " IBP_PERSIST_HITS_DURABLE_DEFAULT ")\n"
            "  --events-durable NAME   (default " IBP_PERSIST_EVENTS_DURABLE_DEFAULT ")\n"
            "  --service-prefix P      request subjects P.events, P.usage "
            "(default " IBP_PERSIST_SERVICE_PREFIX ")\n"
            "\n"
            "Configuration keys (JSON file; nested objects or dotted keys):\n\n",
            ibp_schema_default_dir());
    ibp_persist_config_help(out);
}

typedef struct args {
    const char *config;
    const char *sql_dir;
    const char *sets[MAX_SETS];
    int nsets;
    bool replay;
    const char *database;
    uint64_t from_seq;
    const char *from_time;
    const char *stream;
    const char *hits_stream, *events_stream, *hits_durable, *events_durable, *service_prefix;
} args;

static int parse_args(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    int i = 1;
    if (i < argc && strcmp(argv[i], "replay") == 0) {
        a->replay = true;
        i++;
    }
    for (; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(arg, "--example-config") == 0) {
            ibp_err e;
            ibp_err_clear(&e);
            if (ibp_persist_config_example(stdout, &e) != IBP_OK) {
                fprintf(stderr, PROG ": %s\n", e.msg);
                exit(1);
            }
            exit(0);
        }
        if (val == NULL) {
            fprintf(stderr, PROG ": %s needs a value (or is unknown); see --help\n", arg);
            return -1;
        }
        if (strcmp(arg, "--config") == 0)
            a->config = val;
        else if (strcmp(arg, "--sql-dir") == 0)
            a->sql_dir = val;
        else if (strcmp(arg, "--set") == 0) {
            if (a->nsets == MAX_SETS) {
                fprintf(stderr, PROG ": too many --set\n");
                return -1;
            }
            a->sets[a->nsets++] = val;
        } else if (strcmp(arg, "--hits-stream") == 0)
            a->hits_stream = val;
        else if (strcmp(arg, "--events-stream") == 0)
            a->events_stream = val;
        else if (strcmp(arg, "--hits-durable") == 0)
            a->hits_durable = val;
        else if (strcmp(arg, "--events-durable") == 0)
            a->events_durable = val;
        else if (!a->replay && strcmp(arg, "--service-prefix") == 0)
            a->service_prefix = val;
        else if (a->replay && strcmp(arg, "--database") == 0)
            a->database = val;
        else if (a->replay && strcmp(arg, "--from-seq") == 0) {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(val, &end, 10);
            if (errno || end == val || *end || v == 0) {
                fprintf(stderr, PROG ": --from-seq %s is not a sequence number (>= 1)\n", val);
                return -1;
            }
            a->from_seq = v;
        } else if (a->replay && strcmp(arg, "--from-time") == 0)
            a->from_time = val;
        else if (a->replay && strcmp(arg, "--stream") == 0)
            a->stream = val;
        else {
            fprintf(stderr, PROG ": unknown option %s; see --help\n", arg);
            return -1;
        }
        i++;
    }
    if (a->config == NULL) {
        fprintf(stderr, PROG ": --config FILE is required; see --help\n");
        return -1;
    }
    if (a->replay && a->database == NULL) {
        fprintf(stderr, PROG ": replay needs --database NAME\n");
        return -1;
    }
    if (a->from_seq && a->from_time) {
        fprintf(stderr, PROG ": --from-seq and --from-time exclude each other\n");
        return -1;
    }
    return 0;
}

static int load_config(const args *a, ibp_persist_config *cfg)
{
    ibp_err e;
    ibp_err_clear(&e);
    const ibp_settings_table *t = ibp_persist_config_table();
    if (ibp_persist_config_load(a->config, cfg, &e) != IBP_OK) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        return -1;
    }
    for (int i = 0; i < a->nsets; i++) {
        char key[128];
        const char *eq = strchr(a->sets[i], '=');
        if (eq == NULL || (size_t)(eq - a->sets[i]) >= sizeof key) {
            fprintf(stderr, PROG ": --set %s: expected KEY=VALUE\n", a->sets[i]);
            goto fail;
        }
        memcpy(key, a->sets[i], (size_t)(eq - a->sets[i]));
        key[eq - a->sets[i]] = '\0';
        if (ibp_settings_set_text(t, cfg, key, eq + 1, "--set", &e) != IBP_OK) {
            fprintf(stderr, PROG ": %s\n", e.msg);
            goto fail;
        }
    }
    if (ibp_settings_validate(t, cfg, a->config, &e) != IBP_OK ||
        ibp_settings_check_secrets(t, cfg, &e) != IBP_OK) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        goto fail;
    }
    ibp_log_set_level((ibp_log_level)ibp_log_level_parse(cfg->log.level));
    return 0;
fail:
    ibp_persist_config_free(cfg);
    return -1;
}

static void print_progress(void *user, const ibp_persist_replay_progress *p)
{
    (void)user;
    uint64_t span = p->last >= p->first ? p->last - p->first + 1 : 0;
    uint64_t done = p->position >= p->first ? p->position - p->first + 1 : 0;
    double pct = span ? 100.0 * (double)done / (double)span : 100.0;
    char eta[32];
    if (p->eta_s < 0)
        snprintf(eta, sizeof eta, "?");
    else
        snprintf(eta, sizeof eta, "%.0fs", p->eta_s);
    fprintf(stderr,
            "replay %s: seq %" PRIu64 "/%" PRIu64 " (%.1f%%) %" PRIu64
            " messages %.0f msg/s ETA %s%s\n",
            p->stream, p->position, p->last, pct > 100.0 ? 100.0 : pct, p->messages, p->msgs_per_s,
            eta, p->done ? " done" : "");
    fflush(stderr);
}

/* Applies pending migrations (refusing a newer schema). */
static int migrate(const ibp_persist_db_opts *dbo, const char *sql_dir)
{
    MYSQL *db = NULL;
    ibp_err e;
    ibp_err_clear(&e);
    int version = 0;
    if (ibp_persist_db_connect(dbo, NULL, false, &db, &e) != IBP_OK ||
        ibp_schema_migrate(db, sql_dir, &version, &e) != IBP_OK) {
        IBP_LOG(IBP_LOG_ERROR, COMPONENT, "schema: %s", e.msg);
        if (db)
            mysql_close(db);
        return -1;
    }
    mysql_close(db);
    IBP_LOG(IBP_LOG_INFO, COMPONENT, "schema ready database=%s version=%d", dbo->database, version);
    return 0;
}

static void log_stats(ibp_persist *p)
{
    ibp_persist_stats s;
    ibp_persist_stats_get(p, &s);
    IBP_LOG(IBP_LOG_INFO, COMPONENT,
            "stats hits_last_seq=%" PRIu64 " hits_pending=%" PRIu64 " hits_applied=%" PRIu64
            " hits_rows=%" PRIu64 " hits_db_ok=%d events_last_seq=%" PRIu64
            " events_pending=%" PRIu64 " events_applied=%" PRIu64 " dead_letters=%" PRIu64,
            s.hits.last_seq, s.hits.pending, s.hits.applied, s.hits.rows, s.hits.db_ok,
            s.events.last_seq, s.events.pending, s.events.applied,
            s.hits.dead_lettered + s.events.dead_lettered);
}

int main(int argc, char **argv)
{
    args a;
    ibp_persist_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (parse_args(argc, argv, &a) != 0)
        return 2;
    if (load_config(&a, &cfg) != 0)
        return 2;
    install_signals();
    const char *sql_dir = a.sql_dir ? a.sql_dir : getenv("IBP_SQL_DIR");
    int rc = 1;
    ibp_err e;
    ibp_err_clear(&e);
    char *password = NULL;
    ibp_roster *roster = NULL;
    natsConnection *nc = NULL;
    ibp_persist *persist = NULL;
    ibp_persist_service *service = NULL;
    ibp_persist_db_opts dbo;

    if (ibp_crypto_init() != IBP_OK) {
        IBP_LOG(IBP_LOG_ERROR, COMPONENT, "libsodium initialisation failed");
        goto out;
    }
    if (ibp_persist_db_opts_from_config(&cfg.mysql, &dbo, &password, &e) != IBP_OK ||
        ibp_roster_load(cfg.node.roster_file, &roster, &e) != IBP_OK) {
        IBP_LOG(IBP_LOG_ERROR, COMPONENT, "%s", e.msg);
        rc = 2;
        goto out;
    }
    ibp_persist_db_library_init();

    if (a.replay) {
        if (ibp_config_nats_connect(&cfg.nats, PROG "-replay", false, &nc, &e) != IBP_OK) {
            IBP_LOG(IBP_LOG_ERROR, COMPONENT, "%s", e.msg);
            goto out;
        }
        ibp_persist_replay_opts ro;
        ibp_persist_replay_opts_init(&ro);
        ro.nc = nc;
        ro.roster = roster;
        ro.db = &dbo;
        ro.database = a.database;
        ro.sql_dir = sql_dir;
        ro.batch_size = (size_t)cfg.persist.batch_size;
        ro.min_offline_ms = cfg.events.min_offline_ms;
        ro.from_seq = a.from_seq;
        ro.progress = print_progress;
        if (a.hits_stream)
            ro.hits_stream = a.hits_stream;
        if (a.events_stream)
            ro.events_stream = a.events_stream;
        if (a.hits_durable)
            ro.hits_consumer = a.hits_durable;
        if (a.events_durable)
            ro.events_consumer = a.events_durable;
        ro.stop = &stop_flag;
        if (a.from_time) {
            if (ibp_persist_parse_time_ms(a.from_time, &ro.from_time_ms) != 0) {
                fprintf(stderr, PROG ": --from-time %s is not an RFC 3339 time\n", a.from_time);
                rc = 2;
                goto out;
            }
            if (ro.from_time_ms == 0)
                ro.from_time_ms = 1; /* 0 means "not by time" */
        }
        if (a.stream && strcmp(a.stream, "all") != 0) {
            if (strcmp(a.stream, "HITS") == 0)
                ro.events_stream = "";
            else if (strcmp(a.stream, "EVENTS") == 0)
                ro.hits_stream = "";
            else {
                fprintf(stderr, PROG ": --stream must be HITS, EVENTS or all\n");
                rc = 2;
                goto out;
            }
        }
        ibp_persist_replay_result res;
        if (ibp_persist_replay(&ro, &res, &e) != IBP_OK) {
            IBP_LOG(IBP_LOG_ERROR, COMPONENT, "%s", e.msg);
            rc = e.code == IBP_E_EXISTS || e.code == IBP_E_INVAL ? 2 : 1;
            goto out;
        }
        fprintf(stderr,
                "replay done: HITS %" PRIu64 " messages (last seq %" PRIu64 "), EVENTS %" PRIu64
                " messages (last seq %" PRIu64 "), dead letters %" PRIu64 "\n",
                res.hits.messages, res.hits.last_seq, res.events.messages, res.events.last_seq,
                res.hits.dead_lettered + res.events.dead_lettered);
        rc = 0;
        goto out;
    }

    /* The database first: refuse a newer schema before touching the streams. */
    while (migrate(&dbo, sql_dir) != 0) {
        if (atomic_load(&stop_flag))
            goto out;
        /* A database that is down at start is waited for; a refusal is final. */
        MYSQL *probe = NULL;
        ibp_err pe;
        ibp_err_clear(&pe);
        if (ibp_persist_db_connect(&dbo, NULL, false, &probe, &pe) == IBP_OK) {
            mysql_close(probe);
            rc = 2;
            goto out;
        }
        struct timespec ts = {.tv_sec = 2, .tv_nsec = 0};
        nanosleep(&ts, NULL);
    }
    if (ibp_config_nats_connect(&cfg.nats, PROG, true, &nc, &e) != IBP_OK) {
        IBP_LOG(IBP_LOG_ERROR, COMPONENT, "%s", e.msg);
        goto out;
    }
    if (a.hits_stream == NULL && a.events_stream == NULL) {
        /* The standard streams (DESIGN.md §5) when missing; named ones are the operator's. */
        jsCtx *js = NULL;
        if (natsConnection_JetStream(&js, nc, NULL) == NATS_OK) {
            ibp_err se;
            ibp_err_clear(&se);
            ibp_bus_stream_opts so;
            ibp_bus_stream_opts_init(&so);
            so.streams = ibp_bus_streams_for_roles(IBP_ROLE_PERSIST); /* HITS, EVENTS */
            so.replicas = (int)cfg.nats.stream_replicas;
            if (ibp_bus_ensure_streams(js, &so, &se) != IBP_OK)
                IBP_LOG(IBP_LOG_WARN, COMPONENT,
                        "streams not checked (retried by the consumers): %s", se.msg);
        }
        jsCtx_Destroy(js);
    }
    ibp_persist_opts po;
    ibp_persist_opts_init(&po);
    po.nc = nc;
    po.db = &dbo;
    po.roster = roster;
    po.batch_size = (size_t)cfg.persist.batch_size;
    po.fetch_wait_ms = cfg.persist.fetch_wait_ms;
    po.min_offline_ms = cfg.events.min_offline_ms;
    if (a.hits_stream)
        po.hits_stream = a.hits_stream;
    if (a.events_stream)
        po.events_stream = a.events_stream;
    if (a.hits_durable)
        po.hits_durable = a.hits_durable;
    if (a.events_durable)
        po.events_durable = a.events_durable;
    if (ibp_persist_start(&po, &persist, &e) != IBP_OK) {
        IBP_LOG(IBP_LOG_ERROR, COMPONENT, "%s", e.msg);
        goto out;
    }
    ibp_persist_service_opts so;
    ibp_persist_service_opts_init(&so);
    so.nc = nc;
    so.db = &dbo;
    so.persist = persist;
    if (a.service_prefix)
        so.subject_prefix = a.service_prefix;
    if (ibp_persist_service_start(&so, &service, &e) != IBP_OK)
        IBP_LOG(IBP_LOG_WARN, COMPONENT, "queries over NATS not available: %s", e.msg);
    IBP_LOG(IBP_LOG_INFO, COMPONENT, "running node=%s database=%s", cfg.node.id, dbo.database);
    int ticks = 0;
    while (!atomic_load(&stop_flag)) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (++ticks % 600 == 0)
            log_stats(persist);
        if (atomic_exchange(&hup_flag, false))
            IBP_LOG(IBP_LOG_WARN, COMPONENT,
                    "SIGHUP: reloading the configuration is not supported; restart ibp-persist "
                    "to apply a new one (a restart loses nothing)");
    }
    IBP_LOG(IBP_LOG_INFO, COMPONENT, "stopping");
    rc = 0;
out:
    ibp_persist_service_stop(service);
    if (persist) {
        ibp_persist_stop(persist);
    }
    natsConnection_Destroy(nc);
    nats_Close();
    ibp_roster_free(roster);
    ibp_persist_db_password_free(password);
    ibp_persist_config_free(&cfg);
    if (rc == 0)
        IBP_LOG(IBP_LOG_INFO, COMPONENT, "stopped");
    mysql_library_end();
    return rc;
}
