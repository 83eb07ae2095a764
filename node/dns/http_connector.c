/*
 * The HTTP connector (libmicrohttpd); see ibp/dns_connector.h. PowerDNS's
 * HTTP connector with post=1,post_json=1 POSTs the whole request
 * {"method":..,"parameters":..} to the URL and keeps the connection alive.
 *
 * libmicrohttpd runs a pool of threads, each polling its connections
 * (epoll); a connection stays on one thread. The body is collected into a
 * per-request buffer bounded by max_request_bytes; answers are written into a
 * per-thread buffer kept for the thread's life.
 */
#include "ibp/dns_connector.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/log.h"
#include "ibp/vec.h"

#define COMPONENT "dns-http"

struct ibp_dns_http {
    ibp_dns_connector_opts opts;
    char path[256];
    struct MHD_Daemon *d;
    unsigned port;
    pthread_key_t buf_key;
    _Atomic uint64_t connections, requests, refused, too_large, http_errors;
};

typedef struct request {
    char *body;
    size_t len, cap;
    bool too_large;
} request;

static void buf_destroy(void *p)
{
    ibp_dns_buf_free(p);
    free(p);
}

/* The calling thread's output buffer. */
static ibp_dns_buf *thread_buf(ibp_dns_http *h)
{
    ibp_dns_buf *b = pthread_getspecific(h->buf_key);
    if (!b && (b = calloc(1, sizeof *b)) != NULL && pthread_setspecific(h->buf_key, b) != 0) {
        free(b);
        b = NULL;
    }
    return b;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *body,
                             size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static const char false_answer[] = "{\"result\":false}";

static enum MHD_Result refuse(ibp_dns_http *h, struct MHD_Connection *conn, unsigned code,
                              ibp_dns_reject why, const char *detail)
{
    if (why == IBP_DNS_REJECT_TOO_LARGE)
        atomic_fetch_add_explicit(&h->too_large, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&h->http_errors, 1, memory_order_relaxed);
    if (h->opts.on_reject && why != IBP_DNS_REJECT_NONE)
        h->opts.on_reject(h->opts.user, why, detail);
    return reply(conn, code, false_answer, sizeof false_answer - 1);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    ibp_dns_http *h = cls;
    request *rq = *con_cls;
    (void)version;
    if (!rq) {
        if (strcmp(url, h->path) != 0)
            return refuse(h, conn, MHD_HTTP_NOT_FOUND, IBP_DNS_REJECT_NONE, NULL);
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
            return refuse(h, conn, MHD_HTTP_METHOD_NOT_ALLOWED, IBP_DNS_REJECT_NONE, NULL);
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > h->opts.max_request_bytes) /* say so before reading */
            return refuse(h, conn, MHD_HTTP_CONTENT_TOO_LARGE, IBP_DNS_REJECT_TOO_LARGE,
                          "connector=http content-length");
        if (!(rq = calloc(1, sizeof *rq)))
            return MHD_NO;
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (rq->too_large || rq->len + n > h->opts.max_request_bytes) {
            rq->too_large = true;
            return MHD_YES; /* discard the rest; answer 413 at the end */
        }
        if (rq->len + n + 1 > rq->cap) {
            size_t need = rq->len + n + 1;
            char *b = ibp_grow(rq->body, &rq->cap, need < 1024 ? 1024 : need, 1);
            if (!b)
                return MHD_NO;
            rq->body = b;
        }
        memcpy(rq->body + rq->len, upload_data, n);
        rq->len += n;
        return MHD_YES;
    }
    if (rq->too_large)
        return refuse(h, conn, MHD_HTTP_CONTENT_TOO_LARGE, IBP_DNS_REJECT_TOO_LARGE,
                      "connector=http body");
    atomic_fetch_add_explicit(&h->requests, 1, memory_order_relaxed);
    ibp_dns_buf *out = thread_buf(h);
    if (!out)
        return reply(conn, MHD_HTTP_OK, false_answer, sizeof false_answer - 1);
    h->opts.handler(h->opts.user, rq->body ? rq->body : "", rq->len, out);
    if (out->failed || out->len == 0)
        return reply(conn, MHD_HTTP_OK, false_answer, sizeof false_answer - 1);
    return reply(conn, MHD_HTTP_OK, out->data, out->len);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    request *rq = *con_cls;
    if (rq) {
        free(rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    ibp_dns_http *h = cls;
    (void)conn;
    (void)socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add_explicit(&h->connections, 1, memory_order_relaxed);
}

ibp_status ibp_dns_http_start(const ibp_dns_connector_opts *opts, ibp_dns_http **out, ibp_err *err)
{
    if (!opts || !opts->handler || !out)
        return ibp_err_set(err, IBP_E_INVAL, "dns http connector needs a handler");
    ibp_dns_http *h = calloc(1, sizeof *h);
    if (!h)
        return ibp_err_set(err, IBP_E_NOMEM, "dns http connector: out of memory");
    h->opts = *opts;
    if (!h->opts.max_request_bytes)
        h->opts.max_request_bytes = IBP_DNS_REQUEST_MAX_DEFAULT;
    if (!h->opts.max_connections)
        h->opts.max_connections = 256;
    if (!h->opts.http_threads)
        h->opts.http_threads = 4;
    if (h->opts.io_timeout_ms <= 0)
        h->opts.io_timeout_ms = 10000;
    snprintf(h->path, sizeof h->path, "%s", opts->http_path ? opts->http_path : "/dns");
    const char *addr = opts->http_address ? opts->http_address : "127.0.0.1";
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO;
    if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)opts->http_port);
    } else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)opts->http_port);
        flags |= MHD_USE_IPv6;
    } else {
        free(h);
        return ibp_err_set(err, IBP_E_CONFIG, "dns http address \"%s\" is not an IP address", addr);
    }
    if (pthread_key_create(&h->buf_key, buf_destroy) != 0) {
        free(h);
        return ibp_err_set(err, IBP_E_NOMEM, "dns http connector: no thread key left");
    }
    unsigned timeout_s = (unsigned)((h->opts.io_timeout_ms + 999) / 1000);
    h->d = MHD_start_daemon(
        flags, (uint16_t)opts->http_port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_THREAD_POOL_SIZE, h->opts.http_threads, MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)h->opts.max_connections, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    if (!h->d) {
        pthread_key_delete(h->buf_key);
        free(h);
        return ibp_err_set(err, IBP_E_IO, "dns http connector: cannot listen on %s port %u", addr,
                           opts->http_port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : opts->http_port;
    IBP_LOG(IBP_LOG_INFO, COMPONENT, "listening address=%s port=%u path=%s threads=%u", addr,
            h->port, h->path, h->opts.http_threads);
    *out = h;
    return IBP_OK;
}

unsigned ibp_dns_http_port(const ibp_dns_http *h)
{
    return h ? h->port : 0;
}

void ibp_dns_http_stop(ibp_dns_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    pthread_key_delete(h->buf_key);
    free(h);
}

void ibp_dns_http_stats_get(ibp_dns_http *h, ibp_dns_connector_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!h)
        return;
    out->connections = atomic_load(&h->connections);
    out->requests = atomic_load(&h->requests);
    out->refused = atomic_load(&h->refused);
    out->too_large = atomic_load(&h->too_large);
    out->http_errors = atomic_load(&h->http_errors);
}
