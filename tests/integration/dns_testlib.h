/*
 * A dns node behind a real pdns_server, for the dns integration tests and
 * the dns benchmark: a private nats-server and MariaDB (tests/harness), two
 * consensus replicas and three monitor signers in the test process, one
 * ibp-node with the dns role (its remote backend on a unix socket and HTTP),
 * and pdns_server on a free loopback port with deploy/pdns/pdns.conf rendered
 * by deploy/local/pdns.sh. Everything is stopped by ibp_test_dns_env_stop, and the
 * children die with the test (PR_SET_PDEATHSIG).
 *
 * The network (members with known locations):
 *   "Berlin Ops"    52.52, 13.40   10.0.0.1  fd00::1
 *   "Paris Ops"     48.86,  2.35   10.0.0.2  fd00::2
 *   "Tokyo Ops"     35.68,139.69   10.0.0.3  fd00::3
 *   "Virginia Ops"  38.90,-77.04   10.0.0.4  (no IPv6)
 * all serving host rpc.ibp.test (zone ibp.test, static records of its own);
 * client networks in tests/integration/dns_test_mmdb.pl.
 */
#ifndef IBP_DNS_TESTLIB_H
#define IBP_DNS_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "testenv.h"

#define DNS_HOST "rpc.ibp.test"
#define DNS_ZONE "ibp.test"

typedef struct dns_env_opts {
    const char *country_overrides_json; /* e.g. "[\"US=Paris Ops\"]"; NULL: none */
    int usage_flush_ms;                 /* 0: the default */
    const char *pdns_extra;             /* lines appended to pdns.conf, or NULL */
    bool http_pdns;                     /* also a pdns_server on the HTTP connector */
} dns_env_opts;

typedef struct dns_env {
    ibp_testenv_private servers;
    char dir[1024];
    char work[1200];        /* the dns node's work dir */
    char control[1300];     /* its control socket */
    char socket[1300];      /* its remote backend socket */
    unsigned http_port;     /* its HTTP connector */
    unsigned dns_port;      /* pdns_server on the unix connector */
    unsigned dns_port_http; /* pdns_server on the HTTP connector (http_pdns) */
    pid_t node_pid, pdns_pid, pdns_http_pid;
} dns_env;

/* The roster and the test's own NATS connection (test administrator) of the running env. */
const struct ibp_roster *ibp_test_dns_env_roster(void);
natsConnection *ibp_test_dns_env_nc(void);

/* Starts everything; fails the test (cmocka) on error. */
void ibp_test_dns_env_start(dns_env *e, const dns_env_opts *o);
void ibp_test_dns_env_stop(dns_env *e);

/* Runs a shell command; *out (may be NULL) gets its stdout (caller frees). Returns the exit code.
 */
int ibp_test_dns_sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* dig +short on the unix-connector pdns: the answer lines (caller frees). subnet may be NULL. */
char *ibp_test_dns_dig_short(const dns_env *e, const char *name, const char *type,
                             const char *subnet);

/* One signed observation from every monitor: key (type, check, member, domain or NULL, ipv6). */
void ibp_test_dns_observe_all(dns_env *e, const char *type, const char *check, const char *member,
                              const char *domain, bool ipv6, bool up);
/* A signed override (admin) of member. */
void ibp_test_dns_override(dns_env *e, const char *member, bool disabled);

/* Polls the dns node until member_online(domain, member, ipv6) == want (20 s). */
void ibp_test_dns_wait_online(dns_env *e, const char *member, bool ipv6, bool want);

/* POSTs body to the node's HTTP connector; returns the HTTP status, *resp (may be NULL) the body.
 */
int ibp_test_dns_http_post(const dns_env *e, const char *path, const char *method, const char *body,
                           size_t len, char **resp);

#endif
