/*
 * The parts of a running ibp-node, started in the order they depend on each
 * other (identity, NATS and its streams, sequence recovery, signer, data and
 * its caches, official subscriber, the roles, control socket, dns backend,
 * micro service) and taken down in reverse.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <nats/nats.h>

#include "ibp/bus.h"
#include "ibp/certificate.h"
#include "ibp/dir_lock.h"
#include "ibp/log.h"
#include "ibp/seq_recovery.h"
#include "ibp/subject.h"
#include "node.h"

#define MICRO_NAME "ibp-node"

#ifndef IBP_VERSION
#define IBP_VERSION "0.1.0"
#endif

/* Exit code for an error while starting: configuration problems are 2. */
static int start_failure(const ibp_err *err, int code)
{
    IBP_LOG(IBP_LOG_ERROR, NODE_COMPONENT, "cannot start: %s",
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
    char path[NODE_PATH_CAP];
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
            IBP_LOG(IBP_LOG_WARN, NODE_COMPONENT, "streams not ready, retrying attempt=%u error=%s",
                    attempt + 1, err.msg);
        int sig = node_wait_signal(sigs, 1000);
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
        return st == IBP_E_IO || st == IBP_E_CONFIG ? NODE_EXIT_CONFIG : NODE_EXIT_RUNTIME;
    ibp_usage_nats_sink_opts sko;
    ibp_usage_nats_sink_opts_init(&sko);
    sko.nc = n->nc;
    sko.signer = n->signer;
    if (ibp_usage_nats_sink_open(&sko, &n->sink, err) != IBP_OK)
        return NODE_EXIT_RUNTIME;
    n->sink_open = true;
    ibp_usage_opts_init(uo);
    uo->node_id = n->cfg.node.id;
    uo->geo = n->geo;
    uo->sink = &n->sink;
    uo->flush_interval_ms = n->cfg.intervals.usage_flush_ms;
    uo->max_keys = (size_t)n->cfg.usage.max_keys;
    return 0;
}

int node_start(node *n, const sigset_t *sigs)
{
    ibp_node_config *cfg = &n->cfg;
    ibp_err err = {0};
    ibp_status st;
    char path[NODE_PATH_CAP];

    if (ibp_crypto_init() != IBP_OK) {
        IBP_LOG(IBP_LOG_ERROR, NODE_COMPONENT, "libsodium failed to initialise");
        return NODE_EXIT_RUNTIME;
    }
    if (ibp_settings_check_secrets(ibp_node_config_table(), cfg, &err) != IBP_OK)
        return start_failure(&err, NODE_EXIT_CONFIG);
    if (load_identity(n, &err) != IBP_OK)
        return start_failure(&err, NODE_EXIT_CONFIG);
    if (cfg->roles & (IBP_ROLE_MONITOR | IBP_ROLE_DNS)) {
        if (ibp_network_load(cfg->network.members_file, cfg->network.services_file,
                             cfg->network.checks_file, &n->network, &err) != IBP_OK)
            return start_failure(&err, NODE_EXIT_CONFIG);
        if ((cfg->roles & IBP_ROLE_MONITOR) && ibp_checker_validate(n->network, &err) != IBP_OK)
            return start_failure(&err, NODE_EXIT_CONFIG);
    }
    if (make_dirs(cfg->node.work_dir, &err) != IBP_OK)
        return start_failure(&err, NODE_EXIT_RUNTIME);
    /* Held until the process ends: the kernel releases it, however it ends. */
    int lock_fd = -1;
    if (ibp_dir_lock(cfg->node.work_dir, "ibp-node.lock", &lock_fd, &err) != IBP_OK)
        return start_failure(&err, NODE_EXIT_RUNTIME);
    snprintf(n->conn_name, sizeof n->conn_name, "ibp-node %s", cfg->node.id);
    st = ibp_config_nats_connect(&cfg->nats, n->conn_name, true, &n->nc, &err);
    if (st != IBP_OK)
        return start_failure(&err, st == IBP_E_NATS ? NODE_EXIT_RUNTIME : NODE_EXIT_CONFIG);
    if (natsConnection_JetStream(&n->js, n->nc, NULL) != NATS_OK) {
        ibp_err_set(&err, IBP_E_NATS, "JetStream context");
        return start_failure(&err, NODE_EXIT_RUNTIME);
    }
    /* Only the streams of this node's roles: its NATS identity may touch no others. */
    ibp_bus_streams_set_default(ibp_bus_streams_for_roles(cfg->roles));
    if (ensure_streams(n, sigs) != 0)
        return -1; /* asked to stop while waiting: a clean stop */
    /* Before anything signs or flushes: continue above the numbers the bus
     * shows this node used (a lost or restored work dir). A server that
     * cannot answer (or refuses: an older permission set) costs only this
     * check, said at WARN; a sequence file that cannot be written stops. */
    st =
        ibp_seq_recover(n->js, n->roster, cfg->node.id, cfg->roles, cfg->node.work_dir, NULL, &err);
    if (st == IBP_E_NATS)
        IBP_LOG(IBP_LOG_WARN, NODE_COMPONENT,
                "sequence recovery skipped, continuing with the work dir's numbers: %s", err.msg);
    else if (st != IBP_OK)
        return start_failure(&err, NODE_EXIT_RUNTIME);
    if (path_join(path, sizeof path, cfg->node.work_dir, "signer.seq") != 0) {
        ibp_err_set(&err, IBP_E_CONFIG, "node.work_dir is too long");
        return start_failure(&err, NODE_EXIT_CONFIG);
    }
    if (ibp_signer_new(cfg->node.id, &n->key, path, &n->signer, &err) != IBP_OK)
        return start_failure(&err, NODE_EXIT_RUNTIME);

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
            IBP_LOG(IBP_LOG_WARN, NODE_COMPONENT, "local cache not pruned: %s", err.msg);
        else if (dropped)
            IBP_LOG(IBP_LOG_INFO, NODE_COMPONENT,
                    "dropped cached results of targets that left the config results=%zu", dropped);
    }
    /* The official cache is trusted as far as the certificate kept with it. */
    size_t cache_quorum = 0;
    if (ibp_certificate_quorum(n->roster, (size_t)cfg->consensus.certificate_quorum, &cache_quorum,
                               NULL, &err) != IBP_OK)
        return start_failure(&err, NODE_EXIT_CONFIG);
    dopts.certificate_roster = n->roster;
    dopts.certificate_quorum = cache_quorum;
    if (ibp_data_open(&dopts, &n->data, &err) != IBP_OK)
        return start_failure(&err, NODE_EXIT_RUNTIME);
    ibp_store *store = ibp_data_store(n->data);

    ibp_official_subscriber_opts so;
    ibp_official_subscriber_opts_init(&so);
    so.nc = n->nc;
    so.roster = n->roster;
    so.store = store;
    so.quorum = (size_t)cfg->consensus.certificate_quorum;
    so.data = n->data;
    if (ibp_official_subscriber_start(&so, &n->subscriber, &err) != IBP_OK)
        return start_failure(&err, NODE_EXIT_RUNTIME);

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
            return start_failure(&err,
                                 err.code == IBP_E_CONFIG ? NODE_EXIT_CONFIG : NODE_EXIT_RUNTIME);
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
        po.keep_fn = node_reload_checker_wants;
        po.keep_user = n->checker;
        if (ibp_monitor_publisher_start(&po, &n->publisher, &err) != IBP_OK)
            return start_failure(&err,
                                 err.code == IBP_E_INVAL ? NODE_EXIT_CONFIG : NODE_EXIT_RUNTIME);
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
            return start_failure(&err, NODE_EXIT_CONFIG);
        }
        st = ibp_replica_start(&ro, &n->replica, &err);
        if (st != IBP_OK)
            return start_failure(&err, st == IBP_E_CONFIG ? NODE_EXIT_CONFIG : NODE_EXIT_RUNTIME);
    }

    if (path_join(path, sizeof path, cfg->node.work_dir, IBP_CONTROL_SOCKET_NAME) != 0) {
        ibp_err_set(&err, IBP_E_CONFIG, "node.work_dir is too long");
        return start_failure(&err, NODE_EXIT_CONFIG);
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
    co.status_fn = node_stats_status;
    co.status_user = n;
    if (n->checker) {
        co.reload_fn = node_reload_control;
        co.reload_user = n;
    }
    if (ibp_control_start(&co, &n->control, &err) != IBP_OK)
        return start_failure(&err, err.code == IBP_E_INVAL ? NODE_EXIT_CONFIG : NODE_EXIT_RUNTIME);
    if (cfg->roles & IBP_ROLE_DNS) {
        ibp_dns_service_opts dso;
        ibp_dns_service_opts_from_config(&dso, cfg, n->dns_socket, sizeof n->dns_socket);
        dso.network = n->network;
        dso.store = store;
        dso.usage = ibp_data_usage(n->data);
        st = ibp_dns_service_start(&dso, &n->dns, &err);
        if (st != IBP_OK)
            return start_failure(&err, st == IBP_E_NOMEM || st == IBP_E_INVAL ? NODE_EXIT_RUNTIME
                                                                              : NODE_EXIT_CONFIG);
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
    mo.stats_fn = node_stats_micro;
    mo.stats_user = n;
    if (ibp_micro_start(&mo, &n->micro, &err) != IBP_OK)
        return start_failure(&err, NODE_EXIT_RUNTIME);

    IBP_LOG(IBP_LOG_INFO, NODE_COMPONENT,
            "started node=%s roles=%s work_dir=%s official_epoch=%" PRIu64 " nats=%s", cfg->node.id,
            n->roles_text, cfg->node.work_dir, ibp_store_official_epoch(store),
            cfg->nats.servers.items[0]);
    return 0;
}

bool node_stop(node *n)
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
        IBP_LOG(IBP_LOG_ERROR, NODE_COMPONENT, "closing the data library failed: %s", err.msg);
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
