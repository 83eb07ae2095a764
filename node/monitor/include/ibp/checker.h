/*
 * The built-in TCP-connect checker of the monitor role: it runs the enabled
 * checks of the IBP network config as TCP connects and stores each outcome as
 * a local observation (ibp_store_update_local), which the monitor publisher
 * then sends to consensus.
 *
 * Targets, for every enabled check and every active member:
 *   site      the member's Service.ServiceIPv4 (and ServiceIPv6), at the port
 *             of the check's options; key (site, check, member, ipv6)
 *   domain    every domain of every active service the member serves, at the
 *             options' port, else the port of the first RPC URL on it that has
 *             one, else the default port of its scheme; key (domain, check,
 *             member, domain, ipv6)
 *   endpoint  every RPC URL of every active service the member serves, at the
 *             URL's port (default by scheme: wss/https 443, ws/http 80) unless
 *             the options give one; key (endpoint, check, member, host, URL, ipv6)
 * ExtraOptions (all optional):
 *   "port": N               port for every target of the check (site checks
 *                           need it, or "ports"; without one they are skipped)
 *   "ports": {"Member": N}  port per member, before "port"
 *   "connect": "ADDR"       IP address to connect to instead of the member's
 *                           IP or the host name (a demo on loopback uses it)
 * Families: IPv4 always (when there is an address); IPv6 only when the member
 * has a ServiceIPv6. With "connect", only the family of that address.
 * Host names are resolved with getaddrinfo in the wanted family.
 *
 * A result is up when the connect completes within the check's Timeout;
 * its data is {"connect_ms": N}. Otherwise it is down with an error such as
 * "connect 127.0.0.1:41001: connection refused" or
 * "connect 127.0.0.1:41001: timed out after 2000 ms".
 *
 * Each target runs every MinimumInterval seconds, on a thread of its own
 * (targets one after the other; a connect takes at most its Timeout).
 * Thread safety: start and stop from one thread; the network and store are
 * borrowed and must outlive the checker.
 */
#ifndef IBP_CHECKER_H
#define IBP_CHECKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/network.h"
#include "ibp/status.h"
#include "ibp/store.h"

typedef struct ibp_checker_opts {
    const ibp_network *network; /* required */
    ibp_store *store;           /* required */
    /* The first round starts at once; 0 keeps it so (tests may delay it). */
    int64_t first_delay_ms;
} ibp_checker_opts;

typedef struct ibp_checker ibp_checker;

void ibp_checker_opts_init(ibp_checker_opts *opts);

/*
 * Builds the target list (IBP_E_CONFIG with the check's name for bad
 * ExtraOptions: "port" not 1..65535, "connect" not an IP address) and
 * starts the thread. *out is set only on success. A network with no enabled
 * checks starts a checker with nothing to do.
 */
ibp_status ibp_checker_start(const ibp_checker_opts *opts, ibp_checker **out, ibp_err *err);

/*
 * Checks the enabled checks' ExtraOptions as ibp_checker_start() does, without
 * starting anything (a daemon calls it before it connects anywhere).
 */
ibp_status ibp_checker_validate(const ibp_network *net, ibp_err *err);

/* Number of targets (check x member x key x family). */
size_t ibp_checker_target_count(const ibp_checker *c);

/* Completed connect attempts so far (up or down). Thread-safe. */
uint64_t ibp_checker_runs(ibp_checker *c);

/* Stops the thread (an attempt in progress ends within its Timeout) and frees. Accepts NULL. */
void ibp_checker_stop(ibp_checker *c);

/*
 * Runs every target once, now, on the calling thread, storing the results
 * (without starting a thread). For tests and one-shot use.
 */
ibp_status ibp_checker_run_once(const ibp_checker_opts *opts, size_t *targets, ibp_err *err);

/*
 * One TCP connect to addr (an IPv4 or IPv6 literal, or a host name resolved
 * in the family ipv6 selects) and port, within timeout_ms. Returns true when
 * it connected (*connect_ms set); otherwise false with the error text in
 * errbuf. Thread-safe.
 */
bool ibp_checker_connect(const char *addr, unsigned port, bool ipv6, int64_t timeout_ms,
                         int64_t *connect_ms, char *errbuf, size_t errcap);

#endif
