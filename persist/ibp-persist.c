/*
 * ibp-persist: writes the HITS and EVENTS streams to MariaDB exactly once,
 * answers queries over NATS, and rebuilds a database from the streams.
 *
 *   ibp-persist --config FILE [--set KEY=VALUE]... [--FLAG VALUE]...
 *   ibp-persist replay --config FILE --database NAME
 *               [--from-seq N | --from-time RFC3339] [--stream HITS|EVENTS|all]
 *   ibp-persist --help | --example-config
 *
 * Every --FLAG VALUE sets a key of the settings table (ibp/persist_config.h),
 * the same field the config file sets: flags and --set apply in command-line
 * order over the file. Only wiring: the work is in the ibp_persist library
 * (ibp/persist*.h). Exit status: 0 after a clean stop, 1 on a runtime error,
 * 2 on bad usage or configuration.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include "ibp/bus.h"
#include "ibp/date.h"
#include "ibp/log.h"
#include "ibp/persist.h"
#include "ibp/persist_config.h"
#include "ibp/persist_db.h"
#include "ibp/persist_replay.h"
#include "ibp/persist_service.h"
#include "ibp/roster.h"
#include "ibp/schema.h"

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

/* ---- command line -------------------------------------------------------- */

enum { MODE_LIVE = 1, MODE_REPLAY = 2 };

/* A flag that sets a key of the settings table, and the modes that take it. */
typedef struct flag_key {
    const char *flag; /* long option name */
    const char *key;  /* settings key */
    unsigned modes;
    const char *arg; /* its value in --help */
} flag_key;

static const flag_key flag_keys[] = {
    {"sql-dir", "persist.sql_dir", MODE_LIVE | MODE_REPLAY, "DIR"},
    {"hits-stream", "persist.hits_stream", MODE_LIVE | MODE_REPLAY, "NAME"},
    {"events-stream", "persist.events_stream", MODE_LIVE | MODE_REPLAY, "NAME"},
    {"hits-durable", "persist.hits_durable", MODE_LIVE | MODE_REPLAY, "NAME"},
    {"events-durable", "persist.events_durable", MODE_LIVE | MODE_REPLAY, "NAME"},
    {"service-prefix", "persist.service_prefix", MODE_LIVE, "P"},
    {"database", "replay.database", MODE_REPLAY, "NAME"},
    {"from-seq", "replay.from_seq", MODE_REPLAY, "N"},
    {"from-time", "replay.from_time", MODE_REPLAY, "RFC3339"},
    {"stream", "replay.stream", MODE_REPLAY, "HITS|EVENTS|all"},
};
#define FLAG_KEYS (sizeof flag_keys / sizeof flag_keys[0])

/* getopt_long values of the options that are not keys; flag_keys[i] is OPT_KEY + i. */
enum { OPT_EXAMPLE = 256, OPT_CONFIG, OPT_SET, OPT_KEY };

static void usage(FILE *out)
{
    fprintf(out, "usage: " PROG " --config FILE [--set KEY=VALUE]... [--FLAG VALUE]...\n"
                 "       " PROG " replay --config FILE --database NAME [--from-seq N | --from-time "
                 "RFC3339]\n"
                 "                   [--stream HITS|EVENTS|all] [--FLAG VALUE]...\n"
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
                 "  --config FILE           the configuration (JSON; keys below)\n"
                 "  --set KEY=VALUE         override one config key (same words as the file)\n"
                 "  --example-config        print an example configuration\n"
                 "\n"
                 "Each flag below sets one config key (as --set KEY=VALUE does); flags and --set\n"
                 "apply in order over the file:\n");
    for (size_t i = 0; i < FLAG_KEYS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s %s", flag_keys[i].flag, flag_keys[i].arg);
        fprintf(out, "  %-34s %s%s\n", left, flag_keys[i].key,
                flag_keys[i].modes == MODE_REPLAY ? " (replay only)"
                : flag_keys[i].modes == MODE_LIVE ? " (not replay)"
                                                  : "");
    }
    fprintf(out,
            "\nWithout persist.sql_dir the migrations are read from $IBP_SQL_DIR, else %s.\n"
            "\n"
            "Configuration keys (JSON file; nested objects or dotted keys):\n\n",
            ibp_schema_default_dir());
    ibp_persist_config_help(out);
}

/* One override of the config, in command-line order: --set or a flag. */
typedef struct override {
    const flag_key *flag; /* NULL: --set, text is "KEY=VALUE" */
    const char *text;     /* the value, or KEY=VALUE */
} override;

typedef struct args {
    const char *config;
    bool replay;
    override overrides[MAX_SETS];
    int n;
} args;

static int add_override(args *a, const flag_key *flag, const char *text)
{
    if (a->n == MAX_SETS) {
        fprintf(stderr, PROG ": too many --set and flags (at most %d)\n", MAX_SETS);
        return -1;
    }
    a->overrides[a->n++] = (override){flag, text};
    return 0;
}

/* A flag's value: from-seq keeps its own rule (a sequence is >= 1). */
static int check_flag_value(const flag_key *f, const char *val)
{
    if (strcmp(f->flag, "from-seq") == 0) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(val, &end, 10);
        if (errno || end == val || *end || v == 0 || v > INT64_MAX) {
            fprintf(stderr, PROG ": --from-seq %s is not a sequence number (>= 1)\n", val);
            return -1;
        }
    }
    return 0;
}

static int parse_args(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    struct option opts[FLAG_KEYS + 5];
    size_t n = 0;
    opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    opts[n++] = (struct option){"example-config", no_argument, NULL, OPT_EXAMPLE};
    opts[n++] = (struct option){"config", required_argument, NULL, OPT_CONFIG};
    opts[n++] = (struct option){"set", required_argument, NULL, OPT_SET};
    for (size_t i = 0; i < FLAG_KEYS; i++)
        opts[n++] = (struct option){flag_keys[i].flag, required_argument, NULL, OPT_KEY + (int)i};
    opts[n] = (struct option){NULL, 0, NULL, 0};

    int first = 1;
    if (argc > 1 && strcmp(argv[1], "replay") == 0) {
        a->replay = true;
        first = 2;
    }
    unsigned mode = a->replay ? MODE_REPLAY : MODE_LIVE;
    bool from_seq = false, from_time = false;
    optind = first;
    opterr = 0; /* our own messages, naming the option as given */
    int c;
    while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        const char *given = argv[optind - 1];
        if (c == 'h') {
            usage(stdout);
            exit(0);
        } else if (c == OPT_EXAMPLE) {
            ibp_err e;
            ibp_err_clear(&e);
            if (ibp_persist_config_example(stdout, &e) != IBP_OK) {
                fprintf(stderr, PROG ": %s\n", e.msg);
                exit(1);
            }
            exit(0);
        } else if (c == OPT_CONFIG) {
            a->config = optarg;
        } else if (c == OPT_SET) {
            if (add_override(a, NULL, optarg) != 0)
                return -1;
        } else if (c >= OPT_KEY && c < OPT_KEY + (int)FLAG_KEYS) {
            const flag_key *f = &flag_keys[c - OPT_KEY];
            if (!(f->modes & mode)) {
                fprintf(stderr, PROG ": unknown option --%s%s; see --help\n", f->flag,
                        a->replay ? " for replay" : " (it belongs to replay)");
                return -1;
            }
            if (check_flag_value(f, optarg) != 0 || add_override(a, f, optarg) != 0)
                return -1;
            from_seq = from_seq || strcmp(f->flag, "from-seq") == 0;
            from_time = from_time || strcmp(f->flag, "from-time") == 0;
        } else if (c == ':') {
            fprintf(stderr, PROG ": %s needs a value; see --help\n", given);
            return -1;
        } else {
            fprintf(stderr, PROG ": unknown option %s; see --help\n", given);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument %s; see --help\n", argv[optind]);
        return -1;
    }
    if (a->config == NULL) {
        fprintf(stderr, PROG ": --config FILE is required; see --help\n");
        return -1;
    }
    if (from_seq && from_time) {
        fprintf(stderr, PROG ": --from-seq and --from-time exclude each other\n");
        return -1;
    }
    return 0;
}

/* Loads the file, applies the overrides in order, validates. */
static int load_config(const args *a, ibp_persist_config *cfg)
{
    ibp_err e;
    ibp_err_clear(&e);
    const ibp_settings_table *t = ibp_persist_config_table();
    if (ibp_persist_config_load(a->config, cfg, &e) != IBP_OK) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        return -1;
    }
    for (int i = 0; i < a->n; i++) {
        const override *o = &a->overrides[i];
        char key[128], source[48] = "--set";
        const char *k, *v = o->text;
        if (o->flag != NULL) {
            k = o->flag->key;
            snprintf(source, sizeof source, "--%s", o->flag->flag);
        } else {
            const char *eq = strchr(o->text, '=');
            if (eq == NULL || (size_t)(eq - o->text) >= sizeof key) {
                fprintf(stderr, PROG ": --set %s: expected KEY=VALUE\n", o->text);
                goto fail;
            }
            memcpy(key, o->text, (size_t)(eq - o->text));
            key[eq - o->text] = '\0';
            k = key;
            v = eq + 1;
        }
        if (ibp_settings_set_text(t, cfg, k, v, source, &e) != IBP_OK) {
            fprintf(stderr, PROG ": %s\n", e.msg);
            goto fail;
        }
    }
    if (ibp_settings_validate(t, cfg, a->config, &e) != IBP_OK ||
        ibp_settings_check_secrets(t, cfg, &e) != IBP_OK) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        goto fail;
    }
    if (a->replay && cfg->replay.database == NULL) {
        fprintf(stderr, PROG ": replay needs --database NAME\n");
        goto fail;
    }
    ibp_log_set_level((ibp_log_level)ibp_log_level_parse(cfg->log.level));
    return 0;
fail:
    ibp_persist_config_free(cfg);
    return -1;
}

/* A stream name of the config: NULL (set to "") skips the stream. */
static const char *stream_name(const char *name)
{
    return name ? name : "";
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

/* `replay`: rebuilds replay.database from the streams. Returns the exit status. */
static int run_replay(const ibp_persist_config *cfg, const ibp_roster *roster,
                      const ibp_persist_db_opts *dbo, const char *sql_dir)
{
    ibp_err e;
    ibp_err_clear(&e);
    natsConnection *nc = NULL;
    int rc = 1;
    ibp_persist_replay_opts ro;
    ibp_persist_replay_opts_init(&ro);
    ro.roster = roster;
    ro.db = dbo;
    ro.database = cfg->replay.database;
    ro.sql_dir = sql_dir;
    ro.batch_size = (size_t)cfg->persist.batch_size;
    ro.min_offline_ms = cfg->events.min_offline_ms;
    ro.from_seq = (uint64_t)cfg->replay.from_seq;
    ro.progress = print_progress;
    ro.hits_stream = stream_name(cfg->persist.hits_stream);
    ro.events_stream = stream_name(cfg->persist.events_stream);
    ro.hits_consumer = cfg->persist.hits_durable;
    ro.events_consumer = cfg->persist.events_durable;
    ro.stop = &stop_flag;
    /* Checked when the key was set (replay.from_time's check). */
    if (cfg->replay.from_time && ibp_rfc3339_parse_ms(cfg->replay.from_time, &ro.from_time_ms) &&
        ro.from_time_ms == 0)
        ro.from_time_ms = 1; /* 0 means "not by time" */
    if (strcmp(cfg->replay.stream, "HITS") == 0)
        ro.events_stream = "";
    else if (strcmp(cfg->replay.stream, "EVENTS") == 0)
        ro.hits_stream = "";
    if (ibp_config_nats_connect(&cfg->nats, PROG "-replay", false, &nc, &e) != IBP_OK) {
        IBP_LOG(IBP_LOG_ERROR, COMPONENT, "%s", e.msg);
        return 1;
    }
    ro.nc = nc;
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
out:
    natsConnection_Destroy(nc);
    return rc;
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
    const char *sql_dir = cfg.persist.sql_dir ? cfg.persist.sql_dir : getenv("IBP_SQL_DIR");
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
        rc = run_replay(&cfg, roster, &dbo, sql_dir);
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
    if (cfg.persist.hits_stream && strcmp(cfg.persist.hits_stream, "HITS") == 0 &&
        cfg.persist.events_stream && strcmp(cfg.persist.events_stream, "EVENTS") == 0) {
        /* The standard streams (DESIGN.md §5) when missing; other names are the operator's. */
        jsCtx *js = NULL;
        if (natsConnection_JetStream(&js, nc, NULL) == NATS_OK) {
            ibp_err se;
            ibp_err_clear(&se);
            ibp_bus_stream_opts so;
            ibp_config_nats_stream_opts(&cfg.nats, &so);
            so.streams = ibp_bus_streams_for_roles(IBP_ROLE_PERSIST); /* HITS, EVENTS */
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
    po.hits_stream = stream_name(cfg.persist.hits_stream);
    po.events_stream = stream_name(cfg.persist.events_stream);
    po.hits_durable = cfg.persist.hits_durable;
    po.events_durable = cfg.persist.events_durable;
    if (ibp_persist_start(&po, &persist, &e) != IBP_OK) {
        IBP_LOG(IBP_LOG_ERROR, COMPONENT, "%s", e.msg);
        goto out;
    }
    ibp_persist_service_opts so;
    ibp_persist_service_opts_init(&so);
    so.nc = nc;
    so.db = &dbo;
    so.persist = persist;
    so.subject_prefix = cfg.persist.service_prefix;
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
