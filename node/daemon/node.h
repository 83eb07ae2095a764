/*
 * Private to the files of the ibp-node program: the struct that holds every
 * part of a running node, and the calls between its files.
 *
 *   ibp-node.c     command line, signals, the main loop
 *   node_parts.c   starting the parts in order and taking them down in reverse
 *   node_reload.c  reading the network files again (SIGHUP, control "reload")
 *   node_stats.c   the figures of $SRV.STATS and of the control socket's status
 */
#ifndef IBP_NODE_DAEMON_H
#define IBP_NODE_DAEMON_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <nats/nats.h>

#include "ibp/checker.h"
#include "ibp/control.h"
#include "ibp/data.h"
#include "ibp/dns_service.h"
#include "ibp/envelope.h"
#include "ibp/geo.h"
#include "ibp/key.h"
#include "ibp/micro.h"
#include "ibp/monitor_publisher.h"
#include "ibp/network.h"
#include "ibp/node_config.h"
#include "ibp/official_subscriber.h"
#include "ibp/replica.h"
#include "ibp/roster.h"
#include "ibp/usage_nats_sink.h"

#define NODE_COMPONENT "ibp-node" /* of log lines */
#define NODE_EXIT_RUNTIME 1
#define NODE_EXIT_CONFIG 2
#define NODE_PATH_CAP 4096

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
    ibp_dns_service *dns;           /* dns role: the PowerDNS remote backend */
    char dns_socket[NODE_PATH_CAP]; /* its unix socket path */
    ibp_micro *micro;
    char roles_text[96];
    _Atomic uint64_t local_last_seq; /* LOCAL's last sequence (main loop), 0: unknown */
    _Atomic int64_t local_last_seq_ms;
} node;

/* ---- ibp-node.c ---------------------------------------------------------- */

/* Waits up to ms for one of the signals of set (blocked); returns it, or 0. */
int node_wait_signal(const sigset_t *set, int64_t ms);

/* ---- node_parts.c -------------------------------------------------------- */

/*
 * Starts every part of the node's roles. Returns 0, an exit code
 * (NODE_EXIT_CONFIG, NODE_EXIT_RUNTIME: the reason was logged), or -1 when a
 * stop signal of sigs came while it waited for NATS. Whatever started stays
 * in n for node_stop, also after a failure.
 */
int node_start(node *n, const sigset_t *sigs);

/* Takes down whatever started, in reverse order. Returns false when closing the data failed. */
bool node_stop(node *n);

/* ---- node_reload.c ------------------------------------------------------- */

/*
 * Reads the members, services and checks files again and hands them to the
 * checker (see node_reload.c). Logs the outcome either way. Serialised by
 * n->reload_lock.
 */
ibp_status node_reload_network(node *n, ibp_err *err);

/* The control socket's "reload" (ibp_control_reload_fn); user is the node. */
ibp_status node_reload_control(void *user, ibp_err *err);

/* Whether the checker still wants result r (the publisher's keep_fn); user is the checker. */
bool node_reload_checker_wants(const ibp_result *r, void *user);

/* ---- node_stats.c -------------------------------------------------------- */

/* $SRV.STATS "data" of ibp-node (ibp_micro_stats_fn); user is the node. */
void node_stats_micro(json_t *data, void *user);

/* What ibp-node adds to the control socket's status (ibp_control_status_fn). */
void node_stats_status(json_t *obj, void *user);

/* Main loop: reads LOCAL's last sequence for the replica's consumer lag now and then. */
void node_stats_refresh_local(node *n);

#endif
