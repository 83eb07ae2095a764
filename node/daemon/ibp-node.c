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
 *
 * This file holds the command line, the signals and the main loop; node.h
 * says where the rest of the program is.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <nats/nats.h>

#include "ibp/log.h"
#include "ibp/node_config.h"
#include "node.h"

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

int node_wait_signal(const sigset_t *set, int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
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
            return ibp_node_config_help(stdout) == IBP_OK ? 0 : NODE_EXIT_RUNTIME;
        case 'e': {
            ibp_err err = {0};
            if (ibp_node_config_example(stdout, &err) != IBP_OK) {
                fprintf(stderr, "ibp-node: %s\n", err.msg);
                return NODE_EXIT_RUNTIME;
            }
            return 0;
        }
        default:
            fprintf(stderr, "ibp-node: see ibp-node --help\n");
            return NODE_EXIT_CONFIG;
        }
    }
    if (!config || optind != argc) {
        fprintf(stderr, "ibp-node: --config FILE is required (see ibp-node --help)\n");
        return NODE_EXIT_CONFIG;
    }

    sigset_t sigs;
    signals_setup(&sigs);
    static node n; /* zeroed; static keeps it off the stack for valgrind's sake */
    pthread_mutex_init(&n.reload_lock, NULL);
    ibp_err err = {0};
    if (ibp_node_config_load(config, &n.cfg, &err) != IBP_OK) {
        fprintf(stderr, "ibp-node: %s\n", err.msg);
        return NODE_EXIT_CONFIG;
    }
    n.cfg_loaded = true;
    int lvl = ibp_log_level_parse(n.cfg.log.level ? n.cfg.log.level : "info");
    ibp_log_set_level(lvl >= 0 ? (ibp_log_level)lvl : IBP_LOG_INFO);

    int rc = node_start(&n, &sigs);
    if (rc == 0) {
        for (;;) {
            int sig = node_wait_signal(&sigs, 1000);
            if (sig == SIGTERM || sig == SIGINT) {
                IBP_LOG(IBP_LOG_INFO, NODE_COMPONENT, "stopping signal=%s",
                        sig == SIGTERM ? "SIGTERM" : "SIGINT");
                break;
            }
            if (sig == SIGHUP) {
                ibp_err rerr = {0};
                if (!n.checker)
                    IBP_LOG(IBP_LOG_INFO, NODE_COMPONENT,
                            "SIGHUP: nothing to reload (not a monitor)");
                else
                    node_reload_network(&n, &rerr); /* logs either way */
            }
            node_stats_refresh_local(&n);
            ibp_err terr = {0};
            if (ibp_data_tick(n.data, &terr) != IBP_OK)
                IBP_LOG(IBP_LOG_WARN, NODE_COMPONENT, "data tick: %s", terr.msg);
        }
    } else if (rc < 0) {
        IBP_LOG(IBP_LOG_INFO, NODE_COMPONENT, "stopped while waiting for NATS");
        rc = 0;
    }
    bool closed = node_stop(&n);
    nats_Close();
    if (rc == 0 && !closed)
        rc = NODE_EXIT_RUNTIME;
    if (rc == 0)
        IBP_LOG(IBP_LOG_INFO, NODE_COMPONENT, "stopped cleanly");
    return rc;
}
