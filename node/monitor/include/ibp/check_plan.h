/*
 * What a monitor checks: the targets derived from the IBP network config
 * (members, services, checks), one per result key, each with the address it
 * dials. Pure (no I/O); a plan is immutable once built and may be read from
 * any thread.
 *
 * For every enabled check and every active member (DESIGN.md §11):
 *   site      the member itself; modules ping and tcp (tcp needs a port
 *             from "port" or "ports");
 *   domain    every domain of every active service the member serves;
 *             modules ssl (port: options, else 443), tcp (options, else the
 *             port of an RPC URL on the domain, else its scheme's), ping;
 *   endpoint  every RPC URL of those services; modules wss (services whose
 *             ServiceType is not ETHRPC), ethrpc (ServiceType ETHRPC), ssl
 *             and tcp; the port is the options', else the URL's, else the
 *             scheme's (wss/https 443, ws/http 80).
 * The address is always the member's own: ServiceIPv4 (ipv6 false) and
 * ServiceIPv6 (ipv6 true), one target per family that has one; never the
 * host name (that would measure whichever member GeoDNS handed out). TLS SNI
 * and the HTTP Host are the domain (the URL's host); the URL's path is kept.
 * With the "connect" option the target dials that address instead, in its
 * family only (the local demo). The same key twice keeps the first.
 *
 * What cannot run is not dropped silently: a check with an unknown module, a
 * member with no address, a tcp site check without a port, a module that
 * does not apply to the check's type each leave one "skip" (check, member,
 * reason) that the checker logs once and counts.
 */
#ifndef IBP_CHECK_PLAN_H
#define IBP_CHECK_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/check.h"
#include "ibp/network.h"
#include "ibp/result.h"
#include "ibp/status.h"

typedef struct ibp_check_target {
    ibp_check_type type;
    ibp_check_module module;
    char *check; /* owned strings, never NULL */
    char *member;
    char *domain;       /* "" for site keys */
    char *endpoint;     /* "" unless an endpoint key */
    char *host;         /* SNI and Host: the domain, "" for site keys */
    char *path;         /* the URL's path and query, "/" when none */
    char *addr;         /* the IP literal dialled */
    char *network_name; /* the service's NetworkName, "" when none */
    bool tls;           /* wss/https URL (or an ssl check) */
    unsigned port;
    bool ipv6;
    int64_t timeout_ms;
    int64_t interval_ms;
    char *options;           /* the check's ExtraOptions text, to compare on reload */
    ibp_check_params params; /* the check's options (ports map dropped) */
} ibp_check_target;

typedef struct ibp_check_skip {
    char *check;
    char *member; /* "" for the whole check */
    char *reason;
} ibp_check_skip;

typedef struct ibp_check_plan {
    ibp_check_target **targets; /* each owned */
    size_t count;
    ibp_check_skip *skips;
    size_t skip_count;
} ibp_check_plan;

/*
 * Builds the plan of net's enabled checks. IBP_E_CONFIG (a check's
 * ExtraOptions, named) or IBP_E_NOMEM. *out is set only on success; free
 * it with ibp_check_plan_free.
 */
ibp_status ibp_check_plan_build(const ibp_network *net, ibp_check_plan *out, ibp_err *err);

/* Frees the plan and its targets; accepts NULL. */
void ibp_check_plan_free(ibp_check_plan *plan);

/* Frees one target (one taken out of a plan); accepts NULL. */
void ibp_check_target_free(ibp_check_target *t);

/* The result key of a target (borrowing its strings). */
ibp_result_key ibp_check_target_key(const ibp_check_target *t);

/* True when a and b have the same key and dial the same way (module, address, port,
 * host, path, timeout, interval, options): a reload keeps such a target's schedule. */
bool ibp_check_target_same(const ibp_check_target *a, const ibp_check_target *b);

#endif
