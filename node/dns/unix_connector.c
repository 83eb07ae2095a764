/*
 * The unix-socket connector; see ibp/dns_connector.h. One thread accepts;
 * each connection has a thread, a read buffer and an output buffer of its
 * own, kept for the connection's life, so answering a request allocates
 * nothing once they have grown to size.
 */
#include "ibp/dns_connector.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ibp/log.h"

#define COMPONENT "dns-unix"

typedef struct conn {
    struct ibp_dns_unix *u;
    int fd;
    pthread_t thread;
    _Atomic int state; /* 0 free, 1 running, 2 finished (to be joined) */
} conn;

struct ibp_dns_unix {
    ibp_dns_connector_opts opts;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int listen_fd;
    int stop_pipe[2];
    pthread_t acceptor;
    conn *conns;
    _Atomic uint64_t connections, requests, refused, too_large;
};

void ibp_dns_connector_opts_init(ibp_dns_connector_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->max_request_bytes = IBP_DNS_REQUEST_MAX_DEFAULT;
    opts->unix_mode = 0660;
    opts->max_connections = 256;
    opts->http_address = "127.0.0.1";
    opts->http_path = "/dns";
    opts->http_threads = 4;
    opts->io_timeout_ms = 10000;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void *conn_main(void *arg)
{
    conn *c = arg;
    ibp_dns_unix *u = c->u;
    size_t max = u->opts.max_request_bytes;
    size_t cap = 8192, len = 0;
    char *in = malloc(cap);
    ibp_dns_buf out = {0};
    while (in) {
        if (len == cap) {
            size_t ncap = cap * 2 > max + 2 ? max + 2 : cap * 2;
            char *n = ncap > cap ? realloc(in, ncap) : NULL;
            if (!n)
                break;
            in = n;
            cap = ncap;
        }
        ssize_t r = read(c->fd, in + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
        /* Answer every whole line; keep the rest. */
        size_t start = 0;
        char *nl;
        bool fail = false;
        while ((nl = memchr(in + start, '\n', len - start))) {
            size_t line = (size_t)(nl - (in + start));
            atomic_fetch_add_explicit(&u->requests, 1, memory_order_relaxed);
            u->opts.handler(u->opts.user, in + start, line, &out);
            if (out.len == 0)
                ibp_dns_buf_puts(&out, "{\"result\":false}");
            ibp_dns_buf_add(&out, "\n", 1);
            if (out.failed || write_all(c->fd, out.data, out.len) != 0) {
                fail = true;
                break;
            }
            start += line + 1;
        }
        if (fail)
            break;
        memmove(in, in + start, len - start);
        len -= start;
        if (len > max) {
            atomic_fetch_add_explicit(&u->too_large, 1, memory_order_relaxed);
            if (u->opts.on_reject)
                u->opts.on_reject(u->opts.user, IBP_DNS_REJECT_TOO_LARGE, "connector=unix");
            break;
        }
    }
    free(in);
    ibp_dns_buf_free(&out);
    close(c->fd);
    atomic_store(&c->state, 2);
    return NULL;
}

/* Joins finished connection threads; returns a free slot or NULL. */
static conn *free_slot(ibp_dns_unix *u)
{
    conn *slot = NULL;
    for (size_t i = 0; i < u->opts.max_connections; i++) {
        conn *c = &u->conns[i];
        if (atomic_load(&c->state) == 2) {
            pthread_join(c->thread, NULL);
            atomic_store(&c->state, 0);
        }
        if (!slot && atomic_load(&c->state) == 0)
            slot = c;
    }
    return slot;
}

static void *accept_main(void *arg)
{
    ibp_dns_unix *u = arg;
    struct pollfd p[2] = {{.fd = u->listen_fd, .events = POLLIN},
                          {.fd = u->stop_pipe[0], .events = POLLIN}};
    for (;;) {
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept(u->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        conn *c = free_slot(u);
        if (!c) {
            atomic_fetch_add_explicit(&u->refused, 1, memory_order_relaxed);
            close(fd);
            continue;
        }
        c->u = u;
        c->fd = fd;
        atomic_store(&c->state, 1);
        if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
            atomic_store(&c->state, 0);
            close(fd);
            continue;
        }
        atomic_fetch_add_explicit(&u->connections, 1, memory_order_relaxed);
    }
    return NULL;
}

ibp_status ibp_dns_unix_start(const ibp_dns_connector_opts *opts, ibp_dns_unix **out, ibp_err *err)
{
    if (!opts || !opts->handler || !opts->unix_path || !out)
        return ibp_err_set(err, IBP_E_INVAL, "dns unix connector needs a handler and a path");
    ibp_dns_unix *u = calloc(1, sizeof *u);
    if (!u)
        return ibp_err_set(err, IBP_E_NOMEM, "dns unix connector: out of memory");
    u->opts = *opts;
    u->listen_fd = -1;
    u->stop_pipe[0] = u->stop_pipe[1] = -1;
    if (!u->opts.max_request_bytes)
        u->opts.max_request_bytes = IBP_DNS_REQUEST_MAX_DEFAULT;
    if (!u->opts.max_connections)
        u->opts.max_connections = 256;
    if (!u->opts.unix_mode)
        u->opts.unix_mode = 0660;
    ibp_status st = IBP_OK;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(opts->unix_path) >= sizeof sa.sun_path) {
        st = ibp_err_set(err, IBP_E_CONFIG, "dns unix socket path too long: %s", opts->unix_path);
        goto fail;
    }
    snprintf(u->path, sizeof u->path, "%s", opts->unix_path);
    memcpy(sa.sun_path, u->path, strlen(u->path) + 1);
    u->conns = calloc(u->opts.max_connections, sizeof *u->conns);
    if (!u->conns || pipe(u->stop_pipe) != 0) {
        st = ibp_err_set(err, IBP_E_NOMEM, "dns unix connector: out of resources");
        goto fail;
    }
    struct stat sb;
    if (lstat(u->path, &sb) == 0 && S_ISSOCK(sb.st_mode))
        unlink(u->path); /* left by a crash: PowerDNS reconnects to the new one */
    u->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (u->listen_fd < 0 || bind(u->listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        chmod(u->path, u->opts.unix_mode) != 0 || listen(u->listen_fd, 128) != 0) {
        st = ibp_err_set(err, IBP_E_IO, "dns unix socket %s: %s", u->path, strerror(errno));
        goto fail;
    }
    if (pthread_create(&u->acceptor, NULL, accept_main, u) != 0) {
        st = ibp_err_set(err, IBP_E_IO, "dns unix connector: cannot start a thread");
        unlink(u->path);
        goto fail;
    }
    IBP_LOG(IBP_LOG_INFO, COMPONENT, "listening path=%s", u->path);
    *out = u;
    return IBP_OK;
fail:
    if (u->listen_fd >= 0)
        close(u->listen_fd);
    if (u->stop_pipe[0] >= 0) {
        close(u->stop_pipe[0]);
        close(u->stop_pipe[1]);
    }
    free(u->conns);
    free(u);
    return st;
}

void ibp_dns_unix_stop(ibp_dns_unix *u)
{
    if (!u)
        return;
    (void)!write(u->stop_pipe[1], "x", 1);
    pthread_join(u->acceptor, NULL);
    close(u->listen_fd);
    unlink(u->path);
    for (size_t i = 0; i < u->opts.max_connections; i++) {
        conn *c = &u->conns[i];
        if (atomic_load(&c->state) == 1)
            shutdown(c->fd, SHUT_RDWR); /* wakes its read */
        if (atomic_load(&c->state) != 0)
            pthread_join(c->thread, NULL);
    }
    close(u->stop_pipe[0]);
    close(u->stop_pipe[1]);
    free(u->conns);
    free(u);
}

void ibp_dns_unix_stats_get(ibp_dns_unix *u, ibp_dns_connector_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!u)
        return;
    out->connections = atomic_load(&u->connections);
    out->requests = atomic_load(&u->requests);
    out->refused = atomic_load(&u->refused);
    out->too_large = atomic_load(&u->too_large);
}
