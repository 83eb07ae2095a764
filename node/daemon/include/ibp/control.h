/*
 * The local control socket of ibp-node: a unix stream socket (mode 0600, in
 * the node's work dir) that speaks one JSON object per line in and one JSON
 * object per line out. `ibpctl observe` and the tests use it to inject
 * observations and to read a node's state.
 *
 * Requests ("cmd" selects one; unknown keys are ignored):
 *   {"cmd":"observe","type":"site|domain|endpoint","check":C,"member":M,
 *    "domain":D,"endpoint":URL,"ipv6":bool,"up":bool,"error":TEXT,
 *    "data":{...},"check_time_ms":N}
 *       stores one local observation (domain lower-cased, no trailing dot;
 *       check_time_ms defaults to now; "status":"up|down" may stand for "up");
 *       only when accept_observations is set (role monitor). -> {"ok":true}
 *   {"cmd":"status"}
 *       -> {"ok":true,"node":..,"roles":[..],"official":{"epoch":..,
 *          "results":..,"overrides":..},"local":{"results":..},
 *          "publisher":{..},"subscriber":{.., "certificates":{..},
 *          "official_cache_refused":N},"usage":{..}, ...}
 *       plus whatever the program's status hook adds (ibp-node: "replica").
 *   {"cmd":"member_online","domain":D,"member":M,"ipv6":bool}
 *       -> {"ok":true,"online":bool,"epoch":E}
 *   {"cmd":"official","type":..,"check":..,"member":..,"domain":..,
 *    "endpoint":..,"ipv6":bool}
 *       -> {"ok":true,"found":bool,"up":bool,"check_time_ms":..,"error":..,
 *          "epoch":E}: the official result of one key
 *   {"cmd":"flush","timeout_ms":N}
 *       publishes the changes now and waits for the acknowledgements
 *       (default 5000 ms) -> {"ok":true} or {"ok":false,"error":..}
 *   {"cmd":"dns_hit","ipv6":bool,"client_ip":IP,"domain":D,"member":M}
 *       counts one DNS answer in the usage statistics (dns role).
 * Any failure answers {"ok":false,"error":"..."} and the connection stays
 * usable; a line longer than max_line_bytes is answered with an error and
 * skipped.
 *
 * Access: the socket file is created in a private directory and renamed into
 * place, so it never exists with a wider mode than 0600; peers must also run
 * as the same user (or root: SO_PEERCRED). A stale socket left by a crash is
 * replaced; a live one (another daemon answers on it) is an error.
 *
 * Threads: one thread of its own serves every client in turn (poll), so a
 * command runs to its end before the next; a "flush" holds the others for at
 * most its timeout. Everything the options point to is borrowed and must
 * outlive the control socket.
 */
#ifndef IBP_CONTROL_H
#define IBP_CONTROL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/monitor_publisher.h"
#include "ibp/official_subscriber.h"
#include "ibp/status.h"
#include "ibp/store.h"
#include "ibp/usage.h"

#define IBP_CONTROL_SOCKET_NAME "control.sock"

/*
 * Adds fields to a status answer (obj is the answer object, owned by the
 * caller: add with json_object_set_new). Called on the control thread.
 */
typedef void (*ibp_control_status_fn)(json_t *obj, void *user);

/*
 * The official subscriber's certificate counters (ibp/official_subscriber.h)
 * as a new JSON object, for `status` and $SRV.STATS: quorum, certified,
 * uncertified_pending, forged_refused, statements, signers.
 */
json_t *ibp_control_certificates_json(const ibp_official_subscriber_stats *s);

/*
 * Reloads the node's configuration files ("reload"); returns IBP_OK or an
 * error with err->msg saying why the old configuration stays. Called on the
 * control thread: the callee serialises with its other reloads (SIGHUP).
 */
typedef ibp_status (*ibp_control_reload_fn)(void *user, ibp_err *err);

typedef struct ibp_control_opts {
    const char *socket_path;          /* required: e.g. "<work dir>/control.sock" (< 108 bytes) */
    const char *node_id;              /* required: reported by status */
    unsigned roles;                   /* bits of ibp_role, reported by status */
    ibp_store *store;                 /* required */
    bool accept_observations;         /* "observe" allowed (role monitor) */
    ibp_monitor_publisher *publisher; /* optional: "flush" needs it */
    ibp_official_subscriber *subscriber; /* optional: status */
    ibp_usage *usage;                    /* optional: dns_hit and status */
    ibp_control_status_fn status_fn;     /* optional */
    void *status_user;
    ibp_control_reload_fn reload_fn;     /* optional: "reload" needs it */
    void *reload_user;
    size_t max_line_bytes;    /* default 1 MiB */
    size_t max_clients;       /* default 16; more wait in the listen backlog */
    int64_t flush_timeout_ms; /* default for "flush"; 5000 */
    int64_t write_timeout_ms; /* a client that does not read its answer is dropped; 2000 */
} ibp_control_opts;

typedef struct ibp_control ibp_control;

/* Fills opts with the defaults (pointers NULL). */
void ibp_control_opts_init(ibp_control_opts *opts);

/*
 * Creates the socket (see Access above) and starts the serving thread. *out is
 * set only on success. Errors: IBP_E_INVAL (missing option, path too long for
 * a unix socket), IBP_E_EXISTS (another process answers on the path),
 * IBP_E_IO (socket, bind, rename; the message has errno's text), IBP_E_NOMEM.
 */
ibp_status ibp_control_start(const ibp_control_opts *opts, ibp_control **out, ibp_err *err);

/*
 * Runs one request line (len bytes, no newline needed) as the socket would
 * and returns the answer as a NUL-terminated JSON line without the newline
 * (malloc'd; the caller frees it), or NULL when out of memory. Thread-safe
 * only in the sense of the calls it makes (store, publisher, usage are).
 */
char *ibp_control_execute(ibp_control *c, const char *line, size_t len);

/* Stops the thread, closes every client, removes the socket file, frees. Accepts NULL. */
void ibp_control_stop(ibp_control *c);

#endif
