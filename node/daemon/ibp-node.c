/*
 * ibp-node: the node daemon (DESIGN.md §1, §6, §7). It only wires the
 * libraries together:
 *
 *   every role   the data library (stores, cache files), the NATS connection
 *                and streams, the official subscriber (OFFICIAL -> store),
 *                the local control socket (<work dir>/control.sock)
 *   monitor      the checker (member checks of the network config -> local
 *                store, ibp_monitor) and the monitor publisher (local store ->
 *                LOCAL); SIGHUP reloads the members, services and checks files
 *   consensus    a consensus replica (LOCAL -> vote -> OFFICIAL, STATUS, EVENTS)
 *   dns          the PowerDNS remote backend (node/dns: answers from the official
 *                store) and usage statistics delivered to HITS (MaxMind lookups)
 *
 *   ibp-node --config FILE
 *   ibp-node --help                   usage and every config key
 *   ibp-node --print-example-config   a config that loads as it is
 *
 * Exit codes: 0 clean stop (SIGTERM, SIGINT), 1 runtime failure, 2 bad
 * configuration or usage. Log lines go to stderr: time level component
 * message key=value.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <nats/nats.h>

#include "ibp/bus.h"
#include "ibp/dir_lock.h"
#include "ibp/checker.h"
#include "ibp/clock.h"
#include "ibp/control.h"
#include "ibp/certificate.h"
#include "ibp/data.h"
#include "ibp/dns_service.h"
#include "ibp/envelope.h"
#include "ibp/geo.h"
#include "ibp/key.h"
#include "ibp/log.h"
#include "ibp/micro.h"
#include "ibp/monitor_publisher.h"
#include "ibp/network.h"
#include "ibp/node_config.h"
#include "ibp/official_subscriber.h"
#include "ibp/replica.h"
#include "ibp/roster.h"
#include "ibp/seq_recovery.h"
#include "ibp/subject.h"
#include "ibp/usage_nats_sink.h"

#define COMPONENT "ibp-node"
#define EXIT_RUNTIME 1
#define EXIT_CONFIG 2
#define PATH_CAP 4096
#define MICRO_NAME "ibp-node"
#define LOCAL_INFO_MS 5000 /* how often the main loop reads LOCAL's last sequence */

#ifndef IBP_VERSION
#define IBP_VERSION "0.1.0"
#endif

/* Everything the daemon holds, so one function can take it down in order. */
typedef struct node {
    ibp_node_config cfg;
    bool cfg_loaded;
    ibp_key key;
    ibp_roster *roster;
    ibp_network *network;
    ibp_signer *signer;
    char conn_name[IBP_NODE_ID_MAX + 16]; /* nats.c keeps the pointer: lives as long as nc */
    natsConnection *nc;
    jsCtx *js;
    ibp_geo *geo;
    ibp_usage_sink sink;
    bool sink_open;
    ibp_data *data;
    ibp_official_subscriber *subscriber;
    ibp_monitor_publisher *publisher;
    ibp_checker *checker;
    ibp_network *checks_network; /* the network of the last reload (the store keeps the first) */
    pthread_mutex_t reload_lock; /* SIGHUP (main thread) and "reload" (control thread) */
    ibp_replica *replica;
    ibp_control *control;
    ibp_dns_service *dns;      /* dns role: the PowerDNS remote backend */
    char dns_socket[PATH_CAP]; /* its unix socket path */
    ibp_micro *micro;
    char roles_text[96];
    _Atomic uint64_t local_last_seq; /* LOCAL's last sequence (main loop), 0: unknown */
    _Atomic int64_t local_last_seq_ms;
} node;

static void usage(FILE *out)
{
    fprintf(out, "usage: ibp-node --config FILE\n"
                 "       ibp-node --print-example-config\n"
                 "       ibp-node --help\n"
                 "\n"
                 "Runs an IBP status node with the roles of its config (monitor, consensus, dns).\n"
                 "SIGTERM or SIGINT stop it cleanly. Exit codes: 0 clean stop, 1 runtime failure,\n"
                 "2 bad configuration or usage.\n"
                 "\n"
                 "Config file (JSON; nested objects or dotted keys):\n");
}

/* Exit code for an error while starting: configuration problems are 2. */
static int start_failure(const ibp_err *err, int code)
{
    IBP_LOG(IBP_LOG_ERROR, COMPONENT, "cannot start: %s",
            err->msg[0] ? err->msg : ibp_strerror(err->code));
    return code;
}

static int path_join(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* Creates dir (mode 0700) and its missing parents. */
static ibp_status make_dirs(const char *dir, ibp_err *err)
{
    char path[PATH_CAP];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path)
        return ibp_err_set(err, IBP_E_CONFIG, "node.work_dir: bad path");
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return ibp_err_set(err, IBP_E_IO, "node.work_dir: mkdir %s: %s", path, strerror(errno));
        path[i] = c;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ibp_err_set(err, IBP_E_IO, "node.work_dir %s is not a directory", dir);
    return IBP_OK;
}

/* Key, roster and the node's place in it. Every failure is a configuration error. */
static ibp_status load_identity(node *n, ibp_err *err)
{
    const ibp_node_config *cfg = &n->cfg;
    ibp_status st = ibp_key_load(cfg->node.key_file, &n->key, err);
    if (st != IBP_OK)
        return st;
    if ((st = ibp_roster_load(cfg->node.roster_file, &n->roster, err)) != IBP_OK)
        return st;
    const ibp_roster_node *me = ibp_roster_find(n->roster, cfg->node.id);
    if (!me)
        return ibp_err_set(err, IBP_E_CONFIG, "node %s is not in the roster %s", cfg->node.id,
                           cfg->node.roster_file);
    if (memcmp(me->pk, n->key.pk, IBP_PUBKEY_BYTES) != 0)
        return ibp_err_set(err, IBP_E_CONFIG,
                           "the key %s is not the key of node %s in the roster %s (receivers "
                           "would reject every message)",
                           cfg->node.key_file, cfg->node.id, cfg->node.roster_file);
    if ((cfg->roles & ~me->roles) != 0) {
        char want[96], have[96];
        ibp_roles_format(cfg->roles, want, sizeof want);
        ibp_roles_format(me->roles, have, sizeof have);
        return ibp_err_set(err, IBP_E_CONFIG,
                           "node.roles is %s but the roster gives node %s only %s (receivers "
                           "would reject what the other roles send)",
                           want, cfg->node.id, have);
    }
    return IBP_OK;
}

/* Blocks the stop signals in every thread (nats.c's included: they are made
 * after this), so the main loop takes them with sigtimedwait. */
static void signals_setup(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Waits up to ms for a signal; returns the signal or 0. */
static int wait_signal(const sigset_t *set, int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

/* The replica's checkpoint counters (ibp/replica.h), for `status` and $SRV.STATS. */
static json_t *checkpoints_json(const ibp_replica_stats *s)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:b}", "published", (json_int_t)s->checkpoints_published,
                     "too_large", (json_int_t)s->checkpoints_too_large, "failures",
                     (json_int_t)s->checkpoint_failures, "refused",
                     (json_int_t)s->checkpoints_refused, "waiting",
                     s->waiting_for_checkpoint != 0);
}

/* The replica's epoch statements (ibp/certificate.h), for `status` and $SRV.STATS. */
static json_t *statements_json(const ibp_replica_stats *s)
{
    return json_pack("{s:I,s:I,s:I}", "published", (json_int_t)s->statements_published,
                     "failures", (json_int_t)s->statement_failures, "skipped",
                     (json_int_t)s->statements_skipped);
}

static void replica_status(json_t *obj, void *user)
{
    node *n = user;
    if (!n->replica)
        return;
    ibp_replica_stats s;
    ibp_replica_stats_get(n->replica, &s);
    json_t *rej = json_object();
    uint64_t total = 0;
    for (int i = 0; rej && i < IBP_STATUS_COUNT; i++) {
        if (s.rejected[i]) {
            json_object_set_new(rej, ibp_status_name((ibp_status)i),
                                json_integer((json_int_t)s.rejected[i]));
            total += s.rejected[i];
        }
    }
    json_t *r = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "epoch", (json_int_t)s.epoch,
        "local_seq", (json_int_t)s.local_seq, "messages_applied", (json_int_t)s.messages_applied,
        "snapshots_published", (json_int_t)s.snapshots_published, "snapshots_lost_race",
        (json_int_t)s.snapshots_lost_race, "digest_mismatches", (json_int_t)s.digest_mismatches,
        "events_published", (json_int_t)s.events_published, "engine_skipped",
        (json_int_t)s.engine_skipped, "rejected_total", (json_int_t)total, "rejected",
        rej ? rej : json_null());
    if (r) {
        json_object_set_new(r, "foreign_snapshots", json_integer((json_int_t)s.foreign_snapshots));
        json_object_set_new(r, "snapshots_republished",
                            json_integer((json_int_t)s.snapshots_republished));
        json_object_set_new(r, "side_published", json_integer((json_int_t)s.side_published));
        json_object_set_new(r, "side_checked", json_integer((json_int_t)s.side_checked));
        json_object_set_new(r, "side_covered", json_integer((json_int_t)s.side_covered));
        json_object_set_new(r, "side_pending", json_integer((json_int_t)s.side_pending));
        json_object_set_new(r, "checkpoints", checkpoints_json(&s));
        json_object_set_new(r, "statements", statements_json(&s));
        json_object_set_new(obj, "replica", r);
    }
}

static json_t *rejected_json(const uint64_t *rejected, uint64_t *total)
{
    json_t *rej = json_object();
    *total = 0;
    for (int i = 0; rej && i < IBP_STATUS_COUNT; i++) {
        if (rejected[i]) {
            json_object_set_new(rej, ibp_status_name((ibp_status)i),
                                json_integer((json_int_t)rejected[i]));
            *total += rejected[i];
        }
    }
    return rej ? rej : json_null();
}

/*
 * $SRV.STATS "data" of ibp-node (DESIGN.md §9). Runs on a nats.c thread:
 * the parts' counters in memory only, no I/O (LOCAL's last sequence comes
 * from the main loop).
 */
static void micro_stats(json_t *data, void *user)
{
    node *n = user;
    json_object_set_new(data, "node", json_string(n->cfg.node.id));
    json_object_set_new(data, "roles", json_string(n->roles_text));
    ibp_store *store = n->data ? ibp_data_store(n->data) : NULL;
    if (store)
        json_object_set_new(data, "official_epoch",
                            json_integer((json_int_t)ibp_store_official_epoch(store)));
    uint64_t local_last = atomic_load(&n->local_last_seq);
    if (local_last)
        json_object_set_new(data, "local_stream_last_seq", json_integer((json_int_t)local_last));
    if (n->subscriber) {
        ibp_official_subscriber_stats s;
        ibp_official_subscriber_stats_get(n->subscriber, &s);
        uint64_t total;
        json_t *rej = rejected_json(s.rejected_by, &total);
        json_object_set_new(
            data, "subscriber",
            json_pack("{s:I,s:I,s:I,s:I,s:o,s:I,s:I,s:I,s:I,s:o}", "received", (json_int_t)s.received,
                      "applied", (json_int_t)s.applied, "ignored", (json_int_t)s.ignored,
                      "rejected", (json_int_t)s.rejected, "rejected_by", rej, "epoch",
                      (json_int_t)s.epoch, "heartbeat_epoch", (json_int_t)s.heartbeat_epoch,
                      "epochs_behind",
                      (json_int_t)(s.heartbeat_epoch > s.epoch ? s.heartbeat_epoch - s.epoch : 0),
                      "last_heartbeat_ms", (json_int_t)s.last_heartbeat_ms, "certificates",
                      ibp_control_certificates_json(&s)));
    }
    if (n->checker) {
        ibp_checker_stats s;
        ibp_checker_stats_get(n->checker, &s);
        json_object_set_new(data, "checker",
                            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "targets",
                                      (json_int_t)s.targets, "cannot_run", (json_int_t)s.cannot_run,
                                      "runs", (json_int_t)s.runs, "failed", (json_int_t)s.failed,
                                      "retried", (json_int_t)s.retried, "in_flight",
                                      (json_int_t)s.in_flight, "overdue", (json_int_t)s.overdue,
                                      "reloads", (json_int_t)s.reloads));
    }
    if (n->publisher) {
        ibp_monitor_publisher_stats s;
        ibp_monitor_publisher_stats_get(n->publisher, &s);
        json_object_set_new(data, "publisher",
                            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "batches_sealed",
                                      (json_int_t)s.batches_sealed, "batches_published",
                                      (json_int_t)s.batches_published, "observations_published",
                                      (json_int_t)s.observations_published, "heartbeats_published",
                                      (json_int_t)s.heartbeats_published, "publish_failures",
                                      (json_int_t)s.publish_failures, "dropped",
                                      (json_int_t)s.dropped, "queued", (json_int_t)s.queued,
                                      "last_stream_seq", (json_int_t)s.last_stream_seq));
        json_t *pj = json_object_get(data, "publisher");
        if (pj) {
            json_object_set_new(pj, "stale_skipped", json_integer((json_int_t)s.stale_skipped));
            json_object_set_new(pj, "unwanted_skipped",
                                json_integer((json_int_t)s.unwanted_skipped));
        }
    }
    if (n->replica) {
        ibp_replica_stats s;
        ibp_replica_stats_get(n->replica, &s);
        uint64_t total;
        json_t *rej = rejected_json(s.rejected, &total);
        json_t *r = json_pack(
            "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "epoch", (json_int_t)s.epoch, "local_seq",
            (json_int_t)s.local_seq, "messages_applied", (json_int_t)s.messages_applied,
            "snapshots_published", (json_int_t)s.snapshots_published, "snapshots_lost_race",
            (json_int_t)s.snapshots_lost_race, "digest_mismatches", (json_int_t)s.digest_mismatches,
            "events_published", (json_int_t)s.events_published, "engine_skipped",
            (json_int_t)s.engine_skipped, "rejected_total", (json_int_t)total, "rejected", rej);
        if (r) {
            json_object_set_new(r, "foreign_snapshots",
                                json_integer((json_int_t)s.foreign_snapshots));
            json_object_set_new(r, "snapshots_republished",
                                json_integer((json_int_t)s.snapshots_republished));
            json_object_set_new(r, "checkpoints", checkpoints_json(&s));
            json_object_set_new(r, "statements", statements_json(&s));
        }
        if (r && local_last)
            json_object_set_new(
                r, "consumer_lag",
                json_integer(
                    (json_int_t)(local_last > s.local_seq ? local_last - s.local_seq : 0)));
        json_object_set_new(data, "replica", r);
    }
    ibp_dns_service_stats_json(n->dns, data);
    ibp_usage *u = n->data ? ibp_data_usage(n->data) : NULL;
    if (u) {
        ibp_usage_stats s;
        ibp_usage_stats_get(u, &s);
        json_object_set_new(data, "usage",
                            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "hits", (json_int_t)s.hits,
                                      "keys", (json_int_t)s.keys, "flush_errors",
                                      (json_int_t)s.flush_errors, "journal_pending",
                                      (json_int_t)s.journal.pending, "journal_delivered",
                                      (json_int_t)s.journal.delivered, "journal_deliver_errors",
                                      (json_int_t)s.journal.deliver_errors));
    }
}

/* Main loop: LOCAL's last sequence for the replica's consumer lag (a
 * JetStream request: not on a nats.c thread). */
static void refresh_local_info(node *n)
{
    if (!n->replica || !n->js)
        return;
    int64_t now = ibp_clock_wall_ms();
    if (now - atomic_load(&n->local_last_seq_ms) < LOCAL_INFO_MS)
        return;
    atomic_store(&n->local_last_seq_ms, now);
    jsStreamInfo *si = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 1000;
    jsErrCode jerr = 0;
    if (js_GetStreamInfo(&si, n->js, IBP_STREAM_LOCAL, &jo, &jerr) == NATS_OK && si) {
        atomic_store(&n->local_last_seq, si->State.LastSeq);
        jsStreamInfo_Destroy(si);
    }
}

/* Makes sure the streams exist with the configured limits, retrying while NATS is not
 * reachable yet. 0 ok, 1 stop. */
static int ensure_streams(node *n, const sigset_t *sigs)
{
    ibp_bus_stream_opts so;
    ibp_config_nats_stream_opts(&n->cfg.nats, &so);
    for (unsigned attempt = 0;; attempt++) {
        ibp_err err = {0};
        if (ibp_bus_ensure_streams(n->js, &so, &err) == IBP_OK)
            return 0;
        if (attempt % 10 == 0)
            IBP_LOG(IBP_LOG_WARN, COMPONENT, "streams not ready, retrying attempt=%u error=%s",
                    attempt + 1, err.msg);
        int sig = wait_signal(sigs, 1000);
        if (sig == SIGTERM || sig == SIGINT)
            return 1;
    }
}

static int start_dns_usage(node *n, ibp_usage_opts *uo, ibp_err *err)
{
    ibp_geo_opts go;
    ibp_geo_opts_init(&go);
    go.city_db = n->cfg.maxmind.city_db;
    go.country_db = n->cfg.maxmind.country_db;
    go.asn_db = n->cfg.maxmind.asn_db;
    ibp_status st = ibp_geo_open(&go, &n->geo, err);
    if (st != IBP_OK)
        return st == IBP_E_IO || st == IBP_E_CONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
    ibp_usage_nats_sink_opts sko;
    ibp_usage_nats_sink_opts_init(&sko);
    sko.nc = n->nc;
    sko.signer = n->signer;
    if (ibp_usage_nats_sink_open(&sko, &n->sink, err) != IBP_OK)
        return EXIT_RUNTIME;
    n->sink_open = true;
    ibp_usage_opts_init(uo);
    uo->node_id = n->cfg.node.id;
    uo->geo = n->geo;
    uo->sink = &n->sink;
    uo->flush_interval_ms = n->cfg.intervals.usage_flush_ms;
    uo->max_keys = (size_t)n->cfg.usage.max_keys;
    return 0;
}

static bool checker_wants(const ibp_result *r, void *user)
{
    return ibp_checker_wants(user, r);
}

/*
 * SIGHUP or the control command "reload": reads the members, services and
 * checks files again and hands them to the checker, which keeps the schedule
 * of unchanged targets; the local results of targets that left the config
 * are dropped (the publisher would not send them anyway). A file that does
 * not load (or bad ExtraOptions) is refused and the old config stays. Only
 * the checks follow: the rest of the node (the store's member list, the dns
 * role) keeps the network it started with until a restart.
 */
static ibp_status reload_network(node *n, ibp_err *err)
{
    const ibp_node_config *cfg = &n->cfg;
    if (!n->checker)
        return ibp_err_set(err, IBP_E_INVAL, "nothing to reload (not a monitor)");
    ibp_network *net = NULL;
    pthread_mutex_lock(&n->reload_lock);
    ibp_status st = ibp_network_load(cfg->network.members_file, cfg->network.services_file,
                                     cfg->network.checks_file, &net, err);
    if (st == IBP_OK)
        st = ibp_checker_reload(n->checker, net, err);
    if (st != IBP_OK) {
        pthread_mutex_unlock(&n->reload_lock);
        IBP_LOG(IBP_LOG_ERROR, COMPONENT, "reload refused, the old config stays: %s", err->msg);
        ibp_network_free(net);
        return st;
    }
    ibp_network_free(n->checks_network);
    n->checks_network = net;
    size_t dropped = 0;
    ibp_store_local_retain(ibp_data_store(n->data), checker_wants, n->checker, &dropped);
    pthread_mutex_unlock(&n->reload_lock);
    IBP_LOG(IBP_LOG_INFO, COMPONENT,
            "reloaded the network config members=%zu checks=%zu targets=%zu "
            "local_results_dropped=%zu",
            ibp_network_member_count(net), ibp_network_check_count(net),
            ibp_checker_target_count(n->checker), dropped);
    return IBP_OK;
}

static ibp_status control_reload(void *user, ibp_err *err)
{
    return reload_network(user, err);
}

/* Starts every part; returns 0 or an exit code (the caller takes down what started). */
static int node_start(node *n, const sigset_t *sigs)
{
    ibp_node_config *cfg = &n->cfg;
    ibp_err err = {0};
    ibp_status st;
    char path[PATH_CAP];

    if (ibp_crypto_init() != IBP_OK) {
        IBP_LOG(IBP_LOG_ERROR, COMPONENT, "libsodium failed to initialise");
        return EXIT_RUNTIME;
    }
    if (ibp_settings_check_secrets(ibp_node_config_table(), cfg, &err) != IBP_OK)
        return start_failure(&err, EXIT_CONFIG);
    if (load_identity(n, &err) != IBP_OK)
        return start_failure(&err, EXIT_CONFIG);
    if (cfg->roles & (IBP_ROLE_MONITOR | IBP_ROLE_DNS)) {
        if (ibp_network_load(cfg->network.members_file, cfg->network.services_file,
                             cfg->network.checks_file, &n->network, &err) != IBP_OK)
            return start_failure(&err, EXIT_CONFIG);
        if ((cfg->roles & IBP_ROLE_MONITOR) && ibp_checker_validate(n->network, &err) != IBP_OK)
            return start_failure(&err, EXIT_CONFIG);
    }
    if (make_dirs(cfg->node.work_dir, &err) != IBP_OK)
        return start_failure(&err, EXIT_RUNTIME);
    /* Held until the process ends: the kernel releases it, however it ends. */
    int lock_fd = -1;
    if (ibp_dir_lock(cfg->node.work_dir, "ibp-node.lock", &lock_fd, &err) != IBP_OK)
        return start_failure(&err, EXIT_RUNTIME);
    snprintf(n->conn_name, sizeof n->conn_name, "ibp-node %s", cfg->node.id);
    st = ibp_config_nats_connect(&cfg->nats, n->conn_name, true, &n->nc, &err);
    if (st != IBP_OK)
        return start_failure(&err, st == IBP_E_NATS ? EXIT_RUNTIME : EXIT_CONFIG);
    if (natsConnection_JetStream(&n->js, n->nc, NULL) != NATS_OK) {
        ibp_err_set(&err, IBP_E_NATS, "JetStream context");
        return start_failure(&err, EXIT_RUNTIME);
    }
    /* Only the streams of this node's roles: its NATS identity may touch no others. */
    ibp_bus_streams_set_default(ibp_bus_streams_for_roles(cfg->roles));
    if (ensure_streams(n, sigs) != 0)
        return -1; /* asked to stop while waiting: a clean stop */
    /* Before anything signs or flushes: continue above the numbers the bus
     * shows this node used (a lost or restored work dir). A server that
     * cannot answer (or refuses: an older permission set) costs only this
     * check, said at WARN; a sequence file that cannot be written stops. */
    st = ibp_seq_recover(n->js, n->roster, cfg->node.id, cfg->roles, cfg->node.work_dir, NULL,
                         &err);
    if (st == IBP_E_NATS)
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "sequence recovery skipped, continuing with the work dir's numbers: %s", err.msg);
    else if (st != IBP_OK)
        return start_failure(&err, EXIT_RUNTIME);
    if (path_join(path, sizeof path, cfg->node.work_dir, "signer.seq") != 0) {
        ibp_err_set(&err, IBP_E_CONFIG, "node.work_dir is too long");
        return start_failure(&err, EXIT_CONFIG);
    }
    if (ibp_signer_new(cfg->node.id, &n->key, path, &n->signer, &err) != IBP_OK)
        return start_failure(&err, EXIT_RUNTIME);

    ibp_usage_opts uo;
    ibp_data_opts dopts;
    ibp_data_opts_init(&dopts);
    dopts.work_dir = cfg->node.work_dir;
    dopts.use_official_cache = true;
    dopts.use_local_cache = (cfg->roles & IBP_ROLE_MONITOR) != 0;
    dopts.cache_save_ms = cfg->intervals.cache_save_ms;
    dopts.network = n->network;
    if (cfg->roles & IBP_ROLE_DNS) {
        int rc = start_dns_usage(n, &uo, &err);
        if (rc)
            return start_failure(&err, rc);
        dopts.usage = &uo;
    }
    if (cfg->roles & IBP_ROLE_MONITOR) { /* no vote for a target that left the config */
        size_t dropped = 0;
        if (ibp_checker_prune_local_cache(n->network, cfg->node.work_dir, &dropped, &err) != IBP_OK)
            IBP_LOG(IBP_LOG_WARN, COMPONENT, "local cache not pruned: %s", err.msg);
        else if (dropped)
            IBP_LOG(IBP_LOG_INFO, COMPONENT,
                    "dropped cached results of targets that left the config results=%zu", dropped);
    }
    /* The official cache is trusted as far as the certificate kept with it. */
    size_t cache_quorum = 0;
    if (ibp_certificate_quorum(n->roster, (size_t)cfg->consensus.certificate_quorum, &cache_quorum,
                               NULL, &err) != IBP_OK)
        return start_failure(&err, EXIT_CONFIG);
    dopts.certificate_roster = n->roster;
    dopts.certificate_quorum = cache_quorum;
    if (ibp_data_open(&dopts, &n->data, &err) != IBP_OK)
        return start_failure(&err, EXIT_RUNTIME);
    ibp_store *store = ibp_data_store(n->data);

    ibp_official_subscriber_opts so;
    ibp_official_subscriber_opts_init(&so);
    so.nc = n->nc;
    so.roster = n->roster;
    so.store = store;
    so.quorum = (size_t)cfg->consensus.certificate_quorum;
    so.data = n->data;
    if (ibp_official_subscriber_start(&so, &n->subscriber, &err) != IBP_OK)
        return start_failure(&err, EXIT_RUNTIME);

    if (cfg->roles & IBP_ROLE_MONITOR) {
        /* The member checks of the network config (none without a checks file). */
        ibp_checker_opts ko;
        ibp_checker_opts_init(&ko);
        ko.network = n->network;
        ko.store = store;
        ko.max_in_flight = (size_t)cfg->checks.max_in_flight;
        ko.retries = cfg->checks.retries;
        ko.retry_delay_ms = cfg->checks.retry_delay_ms;
        ko.max_response_bytes = (size_t)cfg->checks.max_response_bytes;
        ko.ca_file = cfg->checks.ca_file;
        ko.stale_ms = ibp_node_config_staleness_ms(cfg);
        if (ibp_checker_start(&ko, &n->checker, &err) != IBP_OK)
            return start_failure(&err, err.code == IBP_E_CONFIG ? EXIT_CONFIG : EXIT_RUNTIME);
        ibp_monitor_publisher_opts po;
        ibp_monitor_publisher_opts_init(&po);
        po.nc = n->nc;
        po.signer = n->signer;
        po.store = store;
        po.work_dir = cfg->node.work_dir;
        po.roles = cfg->roles;
        po.publish_ms = cfg->intervals.publish_ms;
        po.refresh_ms = cfg->intervals.refresh_ms;
        po.heartbeat_ms = cfg->intervals.heartbeat_ms;
        /* Fresh votes only: nothing older than the staleness limit, nothing of a
         * target that left the config (cached results included). */
        po.max_age_ms = ibp_node_config_staleness_ms(cfg);
        po.keep_fn = checker_wants;
        po.keep_user = n->checker;
        if (ibp_monitor_publisher_start(&po, &n->publisher, &err) != IBP_OK)
            return start_failure(&err, err.code == IBP_E_INVAL ? EXIT_CONFIG : EXIT_RUNTIME);
    }
    if (cfg->roles & IBP_ROLE_CONSENSUS) {
        ibp_replica_opts ro;
        ibp_replica_opts_init(&ro);
        ro.nc = n->nc;
        ro.roster = n->roster;
        ro.signer = n->signer;
        ro.work_dir = cfg->node.work_dir;
        ro.vote.active_window_ms = cfg->consensus.active_window_ms;
        ro.vote.staleness_ms = ibp_node_config_staleness_ms(cfg);
        ro.vote.expiry_ms = cfg->consensus.expiry_ms;
        ro.vote.quorum_min = (uint32_t)cfg->consensus.quorum_min;
        ro.vote.max_batch_obs = (size_t)cfg->consensus.max_batch_obs;
        ro.vote.max_keys_per_node = (size_t)cfg->consensus.max_keys_per_node;
        ro.vote.max_keys = (size_t)cfg->consensus.max_keys;
        ro.heartbeat_ms = cfg->intervals.heartbeat_ms;
        ro.stream_replicas = (int)cfg->nats.stream_replicas;
        ibp_config_nats_stream_opts(&cfg->nats, &ro.streams);
        ro.side_cover_ms = cfg->consensus.side_cover_ms;
        ro.checkpoint_ms = cfg->consensus.checkpoint_ms;
        if (ibp_vote_config_check(&ro.vote) != IBP_VOTE_OK) {
            ibp_err_set(&err, IBP_E_CONFIG,
                        "consensus settings are inconsistent (staleness %" PRId64
                        " ms must not exceed active_window_ms %" PRId64 " ms, ...)",
                        ro.vote.staleness_ms, ro.vote.active_window_ms);
            return start_failure(&err, EXIT_CONFIG);
        }
        st = ibp_replica_start(&ro, &n->replica, &err);
        if (st != IBP_OK)
            return start_failure(&err, st == IBP_E_CONFIG ? EXIT_CONFIG : EXIT_RUNTIME);
    }

    if (path_join(path, sizeof path, cfg->node.work_dir, IBP_CONTROL_SOCKET_NAME) != 0) {
        ibp_err_set(&err, IBP_E_CONFIG, "node.work_dir is too long");
        return start_failure(&err, EXIT_CONFIG);
    }
    ibp_control_opts co;
    ibp_control_opts_init(&co);
    co.socket_path = path;
    co.node_id = cfg->node.id;
    co.roles = cfg->roles;
    co.store = store;
    co.accept_observations = n->publisher != NULL;
    co.publisher = n->publisher;
    co.subscriber = n->subscriber;
    co.usage = ibp_data_usage(n->data);
    co.status_fn = replica_status;
    co.status_user = n;
    if (n->checker) {
        co.reload_fn = control_reload;
        co.reload_user = n;
    }
    if (ibp_control_start(&co, &n->control, &err) != IBP_OK)
        return start_failure(&err, err.code == IBP_E_INVAL ? EXIT_CONFIG : EXIT_RUNTIME);
    if (cfg->roles & IBP_ROLE_DNS) {
        ibp_dns_service_opts dso;
        ibp_dns_service_opts_from_config(&dso, cfg, n->dns_socket, sizeof n->dns_socket);
        dso.network = n->network;
        dso.store = store;
        dso.usage = ibp_data_usage(n->data);
        st = ibp_dns_service_start(&dso, &n->dns, &err);
        if (st != IBP_OK)
            return start_failure(&err, st == IBP_E_NOMEM || st == IBP_E_INVAL ? EXIT_RUNTIME
                                                                              : EXIT_CONFIG);
    }

    ibp_roles_format(cfg->roles, n->roles_text, sizeof n->roles_text);
    ibp_micro_opts mo;
    ibp_micro_opts_init(&mo);
    mo.nc = n->nc;
    mo.name = MICRO_NAME;
    mo.version = IBP_VERSION;
    mo.description = "IBP status node (monitor, consensus, dns roles)";
    mo.metadata[0][0] = "node";
    mo.metadata[0][1] = cfg->node.id;
    mo.metadata[1][0] = "roles";
    mo.metadata[1][1] = n->roles_text;
    mo.stats_fn = micro_stats;
    mo.stats_user = n;
    if (ibp_micro_start(&mo, &n->micro, &err) != IBP_OK)
        return start_failure(&err, EXIT_RUNTIME);

    IBP_LOG(IBP_LOG_INFO, COMPONENT,
            "started node=%s roles=%s work_dir=%s official_epoch=%" PRIu64 " nats=%s", cfg->node.id,
            n->roles_text, cfg->node.work_dir, ibp_store_official_epoch(store),
            cfg->nats.servers.items[0]);
    return 0;
}

/* Takes down whatever started, in reverse order. Returns false when closing the data failed. */
static bool node_stop(node *n)
{
    bool ok = true;
    ibp_err err = {0};
    ibp_micro_stop(n->micro); /* first: its STATS reads every part */
    n->micro = NULL;
    ibp_dns_service_stop(n->dns); /* stops recording hits into usage */
    n->dns = NULL;
    ibp_control_stop(n->control);
    n->control = NULL;
    ibp_monitor_publisher_stop(n->publisher); /* before the checker: it asks it what to keep */
    n->publisher = NULL;
    ibp_checker_stop(n->checker);
    n->checker = NULL;
    ibp_replica_stop(n->replica);
    n->replica = NULL;
    ibp_official_subscriber_stop(n->subscriber);
    n->subscriber = NULL;
    if (n->data && ibp_data_close(n->data, &err) != IBP_OK) {
        IBP_LOG(IBP_LOG_ERROR, COMPONENT, "closing the data library failed: %s", err.msg);
        ok = false;
    }
    n->data = NULL;
    if (n->sink_open)
        ibp_usage_sink_close(&n->sink);
    ibp_geo_close(n->geo);
    jsCtx_Destroy(n->js);
    if (n->nc) {
        natsConnection_Close(n->nc);
        natsConnection_Destroy(n->nc);
    }
    ibp_signer_free(n->signer);
    ibp_network_free(n->checks_network);
    ibp_network_free(n->network);
    ibp_roster_free(n->roster);
    ibp_key_wipe(&n->key);
    if (n->cfg_loaded)
        ibp_node_config_free(&n->cfg);
    return ok;
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'},
        {"print-example-config", no_argument, 0, 'e'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'h':
            usage(stdout);
            return ibp_node_config_help(stdout) == IBP_OK ? 0 : EXIT_RUNTIME;
        case 'e': {
            ibp_err err = {0};
            if (ibp_node_config_example(stdout, &err) != IBP_OK) {
                fprintf(stderr, "ibp-node: %s\n", err.msg);
                return EXIT_RUNTIME;
            }
            return 0;
        }
        default:
            fprintf(stderr, "ibp-node: see ibp-node --help\n");
            return EXIT_CONFIG;
        }
    }
    if (!config || optind != argc) {
        fprintf(stderr, "ibp-node: --config FILE is required (see ibp-node --help)\n");
        return EXIT_CONFIG;
    }

    sigset_t sigs;
    signals_setup(&sigs);
    static node n; /* zeroed; static keeps it off the stack for valgrind's sake */
    pthread_mutex_init(&n.reload_lock, NULL);
    ibp_err err = {0};
    if (ibp_node_config_load(config, &n.cfg, &err) != IBP_OK) {
        fprintf(stderr, "ibp-node: %s\n", err.msg);
        return EXIT_CONFIG;
    }
    n.cfg_loaded = true;
    int lvl = ibp_log_level_parse(n.cfg.log.level ? n.cfg.log.level : "info");
    ibp_log_set_level(lvl >= 0 ? (ibp_log_level)lvl : IBP_LOG_INFO);

    int rc = node_start(&n, &sigs);
    if (rc == 0) {
        for (;;) {
            int sig = wait_signal(&sigs, 1000);
            if (sig == SIGTERM || sig == SIGINT) {
                IBP_LOG(IBP_LOG_INFO, COMPONENT, "stopping signal=%s",
                        sig == SIGTERM ? "SIGTERM" : "SIGINT");
                break;
            }
            if (sig == SIGHUP) {
                ibp_err rerr = {0};
                if (!n.checker)
                    IBP_LOG(IBP_LOG_INFO, COMPONENT, "SIGHUP: nothing to reload (not a monitor)");
                else
                    reload_network(&n, &rerr); /* logs either way */
            }
            refresh_local_info(&n);
            ibp_err terr = {0};
            if (ibp_data_tick(n.data, &terr) != IBP_OK)
                IBP_LOG(IBP_LOG_WARN, COMPONENT, "data tick: %s", terr.msg);
        }
    } else if (rc < 0) {
        IBP_LOG(IBP_LOG_INFO, COMPONENT, "stopped while waiting for NATS");
        rc = 0;
    }
    bool closed = node_stop(&n);
    nats_Close();
    if (rc == 0 && !closed)
        rc = EXIT_RUNTIME;
    if (rc == 0)
        IBP_LOG(IBP_LOG_INFO, COMPONENT, "stopped cleanly");
    return rc;
}
