/*
 * Connectors of the PowerDNS remote backend: they carry request bytes to a
 * handler and its answer back (DESIGN.md §12).
 *
 *   unix   remote-connection-string=unix:path=<socket>
 *          One JSON request per line in, one JSON answer per line out, on a
 *          stream socket. PowerDNS opens one connection per backend instance
 *          (one per distributor thread) and keeps it; each connection gets a
 *          thread of its own here, so threads never share a connection, a
 *          buffer or a lock. A request line longer than max_request_bytes is
 *          refused (counted, logged) and the connection closed.
 *   http   remote-connection-string=http:url=http://127.0.0.1:PORT/dns,post=1,post_json=1
 *          libmicrohttpd with a pool of threads (epoll); POST of the JSON
 *          request to the path, answer 200 application/json. Other paths 404,
 *          other methods 405, bodies over max_request_bytes 413 (read no
 *          further), a client that stalls longer than io_timeout_ms is dropped.
 *          Each request's body buffer and response are allocated (libmicrohttpd
 *          copies the answer); the unix connector allocates nothing per request.
 *
 * The handler is called on the connector's threads, concurrently; it must
 * write a whole answer into out (reset by the handler). Start fails when the
 * socket cannot be made (IBP_E_IO, the message says why); *out is set only on
 * success; stop waits for every thread and accepts NULL.
 */
#ifndef IBP_DNS_CONNECTOR_H
#define IBP_DNS_CONNECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "ibp/dns_request.h"
#include "ibp/status.h"

typedef void (*ibp_dns_handler_fn)(void *user, const char *req, size_t len, ibp_dns_buf *out);
/* Called for requests a connector refuses before the handler sees them. */
typedef void (*ibp_dns_reject_fn)(void *user, ibp_dns_reject why, const char *detail);

typedef struct ibp_dns_connector_opts {
    ibp_dns_handler_fn handler;  /* required */
    ibp_dns_reject_fn on_reject; /* optional */
    void *user;
    size_t max_request_bytes; /* default IBP_DNS_REQUEST_MAX_DEFAULT */
    const char *unix_path;    /* unix: the socket path (< 108 bytes) */
    unsigned unix_mode;       /* unix: file mode of the socket; default 0660 */
    size_t max_connections;   /* default 256 */
    const char *http_address; /* http: IPv4 or IPv6 literal; default "127.0.0.1" */
    unsigned http_port;       /* http: 0 picks a free port (ibp_dns_http_port) */
    const char *http_path;    /* http: default "/dns" */
    unsigned http_threads;    /* http: default 4 */
    int64_t io_timeout_ms;    /* http: default 10000 */
} ibp_dns_connector_opts;

typedef struct ibp_dns_unix ibp_dns_unix;
typedef struct ibp_dns_http ibp_dns_http;

typedef struct ibp_dns_connector_stats {
    uint64_t connections; /* accepted since start */
    uint64_t requests;
    uint64_t refused; /* connections refused (over max_connections) */
    uint64_t too_large;
    uint64_t http_errors; /* 404, 405 answers */
} ibp_dns_connector_stats;

void ibp_dns_connector_opts_init(ibp_dns_connector_opts *opts);

ibp_status ibp_dns_unix_start(const ibp_dns_connector_opts *opts, ibp_dns_unix **out, ibp_err *err);
void ibp_dns_unix_stop(ibp_dns_unix *u);
void ibp_dns_unix_stats_get(ibp_dns_unix *u, ibp_dns_connector_stats *out);

ibp_status ibp_dns_http_start(const ibp_dns_connector_opts *opts, ibp_dns_http **out, ibp_err *err);
/* The port it listens on. */
unsigned ibp_dns_http_port(const ibp_dns_http *h);
void ibp_dns_http_stop(ibp_dns_http *h);
void ibp_dns_http_stats_get(ibp_dns_http *h, ibp_dns_connector_stats *out);

#endif
