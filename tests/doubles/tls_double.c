/* The TLS server under every double: a listener, a thread per connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "double_conn.h"

struct ibp_double {
    ibp_double_kind kind;
    SSL_CTX *ctx;
    int lfd;
    pthread_t acceptor;
    atomic_bool stopping;
    pthread_mutex_t mu;
    pthread_cond_t idle;
    int active; /* connection threads running */
    ibp_double_behaviour b;
    uint64_t requests;
    char last_host[256], last_path[256];
};

void ibp_double_behaviour_init(ibp_double_behaviour *b)
{
    memset(b, 0, sizeof *b);
    snprintf(b->chain, sizeof b->chain, "Paseo Testnet");
    b->peers = 12;
    b->archive = true;
    b->chain_id = 420420420;
    b->block_number = 436;
}

bool ibp_double_stopping(ibp_double *d)
{
    return atomic_load(&d->stopping);
}

void ibp_double_behaviour_get(ibp_double *d, ibp_double_behaviour *out)
{
    pthread_mutex_lock(&d->mu);
    *out = d->b;
    pthread_mutex_unlock(&d->mu);
}

void ibp_double_set(ibp_double *d, const ibp_double_behaviour *b)
{
    pthread_mutex_lock(&d->mu);
    d->b = *b;
    pthread_mutex_unlock(&d->mu);
}

void ibp_double_count(ibp_double *d)
{
    pthread_mutex_lock(&d->mu);
    d->requests++;
    pthread_mutex_unlock(&d->mu);
}

uint64_t ibp_double_requests(ibp_double *d)
{
    pthread_mutex_lock(&d->mu);
    uint64_t n = d->requests;
    pthread_mutex_unlock(&d->mu);
    return n;
}

void ibp_double_note(ibp_double *d, const char *host, const char *path)
{
    pthread_mutex_lock(&d->mu);
    if (host)
        snprintf(d->last_host, sizeof d->last_host, "%s", host);
    if (path)
        snprintf(d->last_path, sizeof d->last_path, "%s", path);
    pthread_mutex_unlock(&d->mu);
}

void ibp_double_last_host(ibp_double *d, char *buf, size_t cap)
{
    pthread_mutex_lock(&d->mu);
    snprintf(buf, cap, "%s", d->last_host);
    pthread_mutex_unlock(&d->mu);
}

void ibp_double_last_path(ibp_double *d, char *buf, size_t cap)
{
    pthread_mutex_lock(&d->mu);
    snprintf(buf, cap, "%s", d->last_path);
    pthread_mutex_unlock(&d->mu);
}

void ibp_double_sleep(ibp_double *d, int64_t ms)
{
    while (ms > 0 && !ibp_double_stopping(d)) {
        int64_t step = ms > 50 ? 50 : ms;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

/* Waits until fd is readable (or SSL has bytes), in steps, while the double runs. */
static int wait_readable(dconn *c)
{
    while (!ibp_double_stopping(c->d)) {
        if (c->ssl && SSL_pending(c->ssl) > 0)
            return 1;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int r = poll(&p, 1, 100);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
    return -1;
}

long ibp_test_dconn_read(dconn *c, void *buf, size_t len)
{
    for (;;) {
        if (wait_readable(c) < 0)
            return -1;
        int n = SSL_read(c->ssl, buf, (int)len);
        if (n > 0)
            return n;
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            continue;
        return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
}

int ibp_test_dconn_write(dconn *c, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        int n = SSL_write(c->ssl, p, (int)(len > (1 << 20) ? (1 << 20) : len));
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                struct pollfd pf = {.fd = c->fd, .events = POLLOUT | POLLIN};
                poll(&pf, 1, 100);
                if (ibp_double_stopping(c->d))
                    return -1;
                continue;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

long ibp_test_dconn_read_head(dconn *c, char *buf, size_t cap, size_t *have)
{
    for (;;) {
        for (size_t i = 3; i < *have; i++)
            if (memcmp(buf + i - 3, "\r\n\r\n", 4) == 0)
                return (long)(i + 1);
        if (*have + 1 >= cap)
            return -1;
        long n = ibp_test_dconn_read(c, buf + *have, cap - 1 - *have);
        if (n <= 0)
            return -1;
        *have += (size_t)n;
        buf[*have] = '\0';
    }
}

void ibp_test_dconn_header(const char *head, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
        const char *s = l + 2;
        if (strncasecmp(s, name, nl) == 0 && s[nl] == ':') {
            s += nl + 1;
            while (*s == ' ')
                s++;
            size_t vl = strcspn(s, "\r\n");
            snprintf(out, cap, "%.*s", (int)vl, s);
            return;
        }
    }
}

typedef struct conn_arg {
    ibp_double *d;
    int fd;
} conn_arg;

static void *conn_main(void *arg)
{
    conn_arg *a = arg;
    ibp_double *d = a->d;
    dconn c = {.d = d, .fd = a->fd, .ssl = SSL_new(d->ctx)};
    free(a);
    if (c.ssl) {
        SSL_set_fd(c.ssl, c.fd);
        int rc;
        while ((rc = SSL_accept(c.ssl)) <= 0) {
            int e = SSL_get_error(c.ssl, rc);
            if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || wait_readable(&c) < 0)
                break;
        }
        if (rc == 1) {
            if (d->kind == IBP_DOUBLE_TLS) {
                const char *sni = SSL_get_servername(c.ssl, TLSEXT_NAMETYPE_host_name);
                ibp_double_note(d, sni ? sni : "", NULL);
                ibp_double_count(d);
                char b[256];
                while (ibp_test_dconn_read(&c, b, sizeof b) > 0)
                    ;
            } else if (d->kind == IBP_DOUBLE_SUBSTRATE) {
                ibp_double_serve_substrate(&c);
            } else {
                ibp_double_serve_eth(&c);
            }
            SSL_shutdown(c.ssl);
        }
        SSL_free(c.ssl);
    }
    ERR_clear_error();
    close(c.fd);
    pthread_mutex_lock(&d->mu);
    d->active--;
    pthread_cond_broadcast(&d->idle);
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static void *accept_main(void *arg)
{
    ibp_double *d = arg;
    while (!ibp_double_stopping(d)) {
        struct pollfd p = {.fd = d->lfd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int fd = accept(d->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        int one = 1; /* as real nodes do: no Nagle delay behind the session tickets */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn_arg *a = malloc(sizeof *a);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_mutex_lock(&d->mu);
        d->active++;
        pthread_mutex_unlock(&d->mu);
        if (a) {
            a->d = d;
            a->fd = fd;
        }
        if (!a || pthread_create(&t, &attr, conn_main, a) != 0) {
            free(a);
            close(fd);
            pthread_mutex_lock(&d->mu);
            d->active--;
            pthread_mutex_unlock(&d->mu);
        }
        pthread_attr_destroy(&attr);
    }
    return NULL;
}

ibp_double *ibp_double_start(ibp_double_kind kind, const char *addr, unsigned port,
                             const char *cert_file, const char *key_file, unsigned *port_out)
{
    /* A client that goes away mid-answer must not kill the test with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    ibp_double *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->kind = kind;
    d->lfd = -1;
    ibp_double_behaviour_init(&d->b);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->idle, NULL);
    d->ctx = SSL_CTX_new(TLS_server_method());
    if (!d->ctx || SSL_CTX_use_certificate_chain_file(d->ctx, cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(d->ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "double: cannot load %s / %s\n", cert_file, key_file);
        goto fail;
    }
    bool v6 = strchr(addr, ':') != NULL;
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    if (v6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, addr, &a6->sin6_addr);
        sl = sizeof *a6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, addr, &a4->sin_addr);
        sl = sizeof *a4;
    }
    d->lfd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1, zero = 0;
    setsockopt(d->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (v6 && strcmp(addr, "::") == 0) /* both families on one port: 127.0.0.1 and ::1 */
        setsockopt(d->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (d->lfd < 0 || bind(d->lfd, (struct sockaddr *)&ss, sl) != 0 || listen(d->lfd, 512) != 0) {
        fprintf(stderr, "double: cannot listen on %s:%u: %s\n", addr, port, strerror(errno));
        goto fail;
    }
    getsockname(d->lfd, (struct sockaddr *)&ss, &sl);
    *port_out =
        ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    if (pthread_create(&d->acceptor, NULL, accept_main, d) != 0)
        goto fail;
    return d;
fail:
    if (d->lfd >= 0)
        close(d->lfd);
    SSL_CTX_free(d->ctx);
    pthread_cond_destroy(&d->idle);
    pthread_mutex_destroy(&d->mu);
    free(d);
    return NULL;
}

void ibp_double_stop(ibp_double *d)
{
    if (!d)
        return;
    atomic_store(&d->stopping, true);
    pthread_join(d->acceptor, NULL);
    close(d->lfd);
    pthread_mutex_lock(&d->mu);
    while (d->active > 0)
        pthread_cond_wait(&d->idle, &d->mu);
    pthread_mutex_unlock(&d->mu);
    SSL_CTX_free(d->ctx);
    pthread_cond_destroy(&d->idle);
    pthread_mutex_destroy(&d->mu);
    free(d);
}
