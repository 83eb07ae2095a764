/*
 * The NATS request-reply endpoints of ibp-persist (DESIGN.md §8, §9).
 *
 * Subjects (with the default prefix "ibp.persist"), queue group "ibp-persist"
 * so that several persist processes share the requests:
 *
 *   ibp.persist.events   get_member_events, JSON in and out
 *   ibp.persist.usage    usage by domain, member or country, JSON in and out
 *   ibp.persist.sla      a member's availability over a window
 *   ibp.persist.hit_flushes  the last usage flush of a dns node applied
 *
 * The request and response documents are those of ibp/persist_query.h
 * (ibp_persist_query_events_json, _usage_json, _sla_json, _hit_flushes_json). A failed
 * request is answered with {"error": {"code", "message"}} and the ADR-32
 * headers Nats-Service-Error (the message) and Nats-Service-Error-Code (400
 * for a bad request, 500 otherwise).
 *
 * NATS micro-service discovery (ADR-32, written by hand: nats.c 3.4.1 has no
 * micro API): $SRV.PING, $SRV.INFO and $SRV.STATS, each also with
 * ".ibp-persist" and ".ibp-persist.<id>" appended, answer with the
 * io.nats.micro.v1 ping, info and stats documents; STATS adds "data" with the
 * consumers' counters (ibp/persist.h) when a persist is attached.
 *
 * nats.c delivers requests on its own threads; the callbacks only queue them
 * (at most 1024 waiting; more are dropped and counted). One worker thread
 * answers them in order with a MariaDB connection of its own, opened on first
 * use and re-opened after an error.
 *
 * Thread safety: start and stop from one thread.
 */
#ifndef IBP_PERSIST_SERVICE_H
#define IBP_PERSIST_SERVICE_H

#include <nats/nats.h>

#include "ibp/persist.h"
#include "ibp/persist_db.h"
#include "ibp/status.h"

#define IBP_PERSIST_SERVICE_NAME "ibp-persist"
#define IBP_PERSIST_SERVICE_PREFIX "ibp.persist"

typedef struct ibp_persist_service_opts {
    natsConnection *nc;            /* required, borrowed */
    const ibp_persist_db_opts *db; /* required, borrowed */
    const char *subject_prefix;    /* default IBP_PERSIST_SERVICE_PREFIX */
    const char *queue_group;       /* default IBP_PERSIST_SERVICE_NAME */
    const char *version;           /* default the project version */
    ibp_persist *persist;          /* optional, borrowed: its stats in $SRV.STATS */
} ibp_persist_service_opts;

void ibp_persist_service_opts_init(ibp_persist_service_opts *opts);

typedef struct ibp_persist_service ibp_persist_service;

/*
 * Subscribes and starts the worker. *out is set only on success. Errors:
 * IBP_E_INVAL (options), IBP_E_NATS (subscribing), IBP_E_NOMEM, IBP_E_IO
 * (thread).
 */
ibp_status ibp_persist_service_start(const ibp_persist_service_opts *opts,
                                     ibp_persist_service **out, ibp_err *err);

/* The instance id used in $SRV subjects and answers (owned by s). */
const char *ibp_persist_service_id(const ibp_persist_service *s);

/* Unsubscribes, answers nothing more, joins the worker, frees s. Accepts NULL. */
void ibp_persist_service_stop(ibp_persist_service *s);

#endif
