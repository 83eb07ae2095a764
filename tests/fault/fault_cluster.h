/*
 * The cluster under test of the fault suite (tests/fault): real nats-server
 * (one, or three clustered with streams at R3), a private MariaDB, and the
 * real daemons, each its own process:
 *
 *   mon1..mon3   ibp-node, role monitor (built-in TCP checks of the network)
 *   con1..con3   ibp-node, role consensus (quorum 2)
 *   dns1         ibp-node, role dns (usage counted, flushed to HITS)
 *   persist1     ibp-persist (HITS and EVENTS into MariaDB)
 *
 * nats-server requires authentication: every node has a NATS nkey of its own
 * in the roster, and the servers' users and permissions are those that
 * `ibpctl nats-auth` renders from it (DESIGN.md §13); the suite reads the
 * streams as the roster's admin node "witness".
 *
 * The network is the local cluster's demo network (deploy/local) with a
 * checks file whose TCP ports are the fault suite's own listeners
 * (fault_load.h). Everything lives in one private temporary directory and
 * listens on 127.0.0.1 (or, for the netns scenario, on the host side of a
 * veth pair the test made); everything the cluster started dies with the
 * test (PR_SET_PDEATHSIG) and fc_stop removes the directory.
 *
 * Every function prints why it failed to stderr. Not thread-safe: call from
 * the test's main thread, except fc_ctl, which any thread may call.
 */
#ifndef IBP_FAULT_CLUSTER_H
#define IBP_FAULT_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <nats/nats.h>

#include "ibp/nkey.h"
#include "ibp/roster.h"
#include "testenv.h"

enum { FC_MON1, FC_MON2, FC_MON3, FC_CON1, FC_CON2, FC_CON3, FC_DNS1, FC_PERSIST1, FC_NODES };

#define FC_PORTS 12     /* TCP ports of the demo network's checks */
#define FC_FLAP_INDEX 9 /* the port that flaps: Beta Infra's endpoint check */
#define FC_FLAP_MEMBER "Beta Infra"
#define FC_FLAP_CHECK "tcp-endpoint"
#define FC_MAX_NATS 3

typedef struct fc_node {
    char name[16];
    char roles[32];
    char dir[1100];    /* its directory (config, key, work dir, log) */
    char work[1200];   /* work dir (may be elsewhere: fc_opts.dns_work_dir) */
    char config[1200]; /* config file */
    char log[1200];
    char sock[1300];   /* control socket (ibp-node) */
    pid_t pid;         /* 0 when not running */
    const char *netns; /* run inside this network namespace (NULL: none) */
} fc_node;

typedef struct fc_opts {
    int nats_servers;         /* 1 (default) or 3 (a cluster, streams at R3) */
    const char *nats_host;    /* address the nats-servers listen on (default 127.0.0.1) */
    const char *mon3_netns;   /* run mon3 in this network namespace */
    const char *dns_work_dir; /* dns1's work dir (a small file system), default in dir */
} fc_opts;

typedef struct fault_cluster {
    char dir[1024];
    fc_opts opts;
    ibp_testenv_private servers; /* MariaDB (its nats-server is not used) */
    int nats_n;
    unsigned nats_port[FC_MAX_NATS];
    unsigned nats_route_port[FC_MAX_NATS];
    char nats_conf[FC_MAX_NATS][1200];
    pid_t nats_pid[FC_MAX_NATS];
    char nats_urls[FC_MAX_NATS * 64]; /* "nats://h:p,nats://h:p" for nats.c */
    unsigned ports[FC_PORTS];         /* the listeners' ports */
    char database[64];
    fc_node node[FC_NODES];
    ibp_roster *roster; /* every node's public key (for the witness) */
    /* The suite's own NATS identity (the roster's admin node "witness"):
     * reads every stream; fc_nats_options signs in with it. */
    char witness_nkey[1100];
    char witness_pub[IBP_NKEY_PUBLIC_SIZE];
} fault_cluster;

/* Starts servers and daemons and waits until each is ready. 0 or -1. */
int fc_start(fault_cluster *fc, const fc_opts *opts, const unsigned ports[FC_PORTS]);

/* Stops everything (SIGTERM, then SIGKILL) and removes the directory. */
void fc_stop(fault_cluster *fc);

/*
 * Starts node i (again) with extra_env (NULL-terminated "K=V" list or NULL)
 * and waits until it is ready (control socket answers / persist running).
 */
int fc_node_start(fault_cluster *fc, int i, char *const extra_env[]);

/* Sends sig to node i and waits up to 30 s for it to exit; 0 or -1. */
int fc_node_signal(fault_cluster *fc, int i, int sig);

/* nats-server k: kill -9 / start again with the same config. */
int fc_nats_kill(fault_cluster *fc, int k);
int fc_nats_restart(fault_cluster *fc, int k);

/*
 * Sends one request (stolen) to node i's control socket; returns the answer
 * (caller decrefs) or NULL after printing why. Thread-safe (a connection per
 * call).
 */
json_t *fc_ctl(const fault_cluster *fc, int i, json_t *req);

/* The number at obj.a.b of node i's status answer (-1 when unavailable). */
long long fc_status_num(const fault_cluster *fc, int i, const char *a, const char *b);

/*
 * Sets fc's nats-server URLs on o (natsOptions_SetServers) and the suite's
 * NATS identity (the witness's nkey): nats-server requires one.
 */
natsStatus fc_nats_options(const fault_cluster *fc, natsOptions *o);

/* Prints the last lines of node i's log to stderr. */
void fc_dump_log(const fault_cluster *fc, int i);

int64_t fc_mono_ms(void);
void fc_sleep_ms(int ms);

#endif
