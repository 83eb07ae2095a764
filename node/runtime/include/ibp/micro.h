/*
 * A NATS micro-service responder (ADR-32, DESIGN.md §9), written by hand:
 * nats.c 3.4.1 has no micro API (it came in 3.7).
 *
 * A service has a name ([A-Za-z0-9_-]+), a random instance id (22 base62
 * characters, like a NUID), a semantic version, a description, optional
 * metadata (string pairs) and endpoints (name, subject, queue group). It
 * answers, with JSON documents of type io.nats.micro.v1.*:
 *
 *   $SRV.PING, $SRV.PING.<name>, $SRV.PING.<name>.<id>     ping_response
 *   $SRV.INFO, $SRV.INFO.<name>, $SRV.INFO.<name>.<id>     info_response
 *   $SRV.STATS, $SRV.STATS.<name>, $SRV.STATS.<name>.<id>  stats_response
 *
 * Every response carries type, name, id, version and metadata; INFO adds
 * description and endpoints (name, subject, queue_group, metadata); STATS
 * adds started (RFC 3339, UTC) and endpoints (name, subject, queue_group,
 * num_requests, num_errors, last_error, processing_time and
 * average_processing_time in nanoseconds). When the owner gives a stats_fn,
 * STATS also carries a top-level "data" object that stats_fn fills with the
 * owner's own figures.
 *
 * The module does not subscribe to the endpoints' subjects: the owner serves
 * them its own way and reports each request with ibp_micro_record, which
 * feeds the counters.
 *
 * Threads: the $SRV requests are answered on nats.c's delivery threads; the
 * answer is built from counters in memory (and stats_fn, which must be quick
 * and must not block on I/O). ibp_micro_record may be called from any thread.
 * Start and stop from one thread.
 */
#ifndef IBP_MICRO_H
#define IBP_MICRO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <nats/nats.h>

#include "ibp/status.h"

#define IBP_MICRO_ID_LEN 22
#define IBP_MICRO_MAX_ENDPOINTS 16
#define IBP_MICRO_MAX_METADATA 16

typedef struct ibp_micro_endpoint {
    const char *name;        /* required */
    const char *subject;     /* required */
    const char *queue_group; /* NULL: none */
} ibp_micro_endpoint;

typedef struct ibp_micro_opts {
    natsConnection *nc;      /* required, borrowed; must outlive the service */
    const char *name;        /* required, [A-Za-z0-9_-]+ */
    const char *version;     /* required, semantic version ("0.1.0") */
    const char *description; /* default "" */
    const char *metadata[IBP_MICRO_MAX_METADATA][2]; /* key, value pairs; stops at a NULL key */
    ibp_micro_endpoint endpoints[IBP_MICRO_MAX_ENDPOINTS];
    size_t nendpoints;
    /* Optional: fills STATS "data" (an empty object given to it). Runs on a
     * nats.c thread: quick, no blocking I/O. */
    void (*stats_fn)(json_t *data, void *user);
    void *stats_user;
} ibp_micro_opts;

typedef struct ibp_micro ibp_micro;

void ibp_micro_opts_init(ibp_micro_opts *opts);

/*
 * Makes the service (copies the options), then subscribes to its $SRV
 * subjects unless nc is NULL (ibp_micro_new: for building the documents
 * without a connection, as the unit tests do). *out is set only on success.
 * Errors: IBP_E_INVAL (a bad name, version, endpoint or too many of them),
 * IBP_E_NATS, IBP_E_NOMEM.
 */
ibp_status ibp_micro_start(const ibp_micro_opts *opts, ibp_micro **out, ibp_err *err);

/* The instance id (owned by m). */
const char *ibp_micro_id(const ibp_micro *m);

/* The index of the endpoint named name, or -1. */
int ibp_micro_endpoint_index(const ibp_micro *m, const char *name);

/*
 * Counts one request of endpoint ep (an index into opts.endpoints) that took
 * processing_ns; error non-NULL marks it failed and becomes last_error.
 * Out-of-range ep is ignored.
 */
void ibp_micro_record(ibp_micro *m, size_t ep, int64_t processing_ns, const char *error);

/*
 * The response documents (verb "PING", "INFO" or "STATS"), compact JSON,
 * malloc'd (the caller frees); NULL for another verb or out of memory.
 */
char *ibp_micro_response_json(ibp_micro *m, const char *verb);

/*
 * Which verb a $SRV subject asks m, if it is addressed to m:
 * "$SRV.<VERB>", "$SRV.<VERB>.<name>" or "$SRV.<VERB>.<name>.<id>" with VERB
 * PING, INFO or STATS. Writes the verb into verb (cap >= 8) and returns true.
 */
bool ibp_micro_match(const ibp_micro *m, const char *subject, char *verb, size_t cap);

/* Unsubscribes (waiting for running callbacks to finish) and frees m. Accepts NULL. */
void ibp_micro_stop(ibp_micro *m);

#endif
