/* TCP/TLS streams through libcurl's CONNECT_ONLY (see tls_conn.h). */
#include "tls_conn.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "check_modules.h"
#include "ibp/clock.h"

struct ibp_check_trust {
    X509_STORE *store;
};

ibp_status ibp_check_trust_load(const char *ca_file, ibp_check_trust **out, ibp_err *err)
{
    ibp_check_trust *t = calloc(1, sizeof *t);
    if (!t || !(t->store = X509_STORE_new())) {
        free(t);
        return ibp_err_set(err, IBP_E_NOMEM, "checks: out of memory");
    }
    int ok = ca_file && ca_file[0] ? X509_STORE_load_file(t->store, ca_file)
                                   : X509_STORE_set_default_paths(t->store);
    STACK_OF(X509_OBJECT) *objs = ok ? X509_STORE_get0_objects(t->store) : NULL;
    bool dir_only = !(ca_file && ca_file[0]); /* the default paths may be a hashed directory */
    if (!ok || (!dir_only && (!objs || sk_X509_OBJECT_num(objs) == 0))) {
        unsigned long e = ERR_get_error();
        char why[256];
        ERR_error_string_n(e, why, sizeof why);
        ERR_clear_error();
        X509_STORE_free(t->store);
        free(t);
        return ibp_err_set(err, IBP_E_CONFIG, "checks: CA file %s: %s",
                           ca_file && ca_file[0] ? ca_file : "(system default)",
                           e ? why : "no certificate in it");
    }
    /* OpenSSL fills a certificate's cached extensions (key identifiers, ...) the first time
     * it looks at them; do it now, on this thread, so that the checks' threads only read the
     * shared certificates. */
    for (int i = 0; objs && i < sk_X509_OBJECT_num(objs); i++) {
        X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
        if (x)
            X509_check_purpose(x, -1, 0);
    }
    *out = t;
    return IBP_OK;
}

void ibp_check_trust_free(ibp_check_trust *t)
{
    if (!t)
        return;
    X509_STORE_free(t->store);
    free(t);
}

/* Hands the shared store to the connection's SSL context (which takes a reference). */
static CURLcode use_trust(CURL *curl, void *ssl_ctx, void *user)
{
    (void)curl;
    const ibp_check_trust *t = user;
    SSL_CTX_set1_cert_store(ssl_ctx, t->store);
    return CURLE_OK;
}

int ibp__tls_conn_setup(CURL *curl, struct curl_slist **connect_to, const ibp_check_target *t,
                        const ibp_check_env *env, const char *scheme, char *url, size_t url_cap)
{
    char hostport[400], ct[600], addr[80];
    bool host_v6 = strchr(t->host, ':') != NULL;
    snprintf(hostport, sizeof hostport, host_v6 ? "[%s]" : "%s", t->host[0] ? t->host : t->addr);
    snprintf(addr, sizeof addr, strchr(t->addr, ':') ? "[%s]" : "%s", t->addr);
    snprintf(url, url_cap, "%s://%s:%u%s", scheme, hostport, t->port, t->path[0] ? t->path : "/");
    /* Dial the member's own address; the URL keeps the domain for SNI, Host and
     * certificate name checks. */
    snprintf(ct, sizeof ct, "%s:%u:%s:%u", hostport, t->port, addr, t->port);
    struct curl_slist *l = curl_slist_append(NULL, ct);
    if (!l)
        return -1;
    *connect_to = l;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CONNECT_TO, l);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_IPRESOLVE, t->ipv6 ? CURL_IPRESOLVE_V6 : CURL_IPRESOLVE_V4);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    if (env && env->trust) {
        /* Nothing for libcurl to load: the store is set in its SSL context. */
        curl_easy_setopt(curl, CURLOPT_CAINFO, NULL);
        curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
        curl_easy_setopt(curl, CURLOPT_SSL_CTX_FUNCTION, use_trust);
        curl_easy_setopt(curl, CURLOPT_SSL_CTX_DATA, (void *)env->trust);
    } else if (env && env->ca_file && env->ca_file[0]) {
        curl_easy_setopt(curl, CURLOPT_CAINFO, env->ca_file);
    }
    return 0;
}

int ibp__tls_conn_open(ibp__tls_conn *c, const ibp_check_target *t, const ibp_check_env *env,
                       bool tls, bool certinfo, int64_t deadline_ms, char *why, size_t cap)
{
    memset(c, 0, sizeof *c);
    c->fd = CURL_SOCKET_BAD;
    char url[2400], where[120];
    ibp_check_format_addr(where, sizeof where, t->addr, t->port);
    if (!(c->curl = curl_easy_init())) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    if (ibp__tls_conn_setup(c->curl, &c->connect_to, t, env, tls ? "https" : "http", url,
                            sizeof url)) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    int64_t left = deadline_ms - ibp_clock_mono_ms();
    if (left <= 0)
        left = 1;
    curl_easy_setopt(c->curl, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)left);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)left);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
    if (certinfo)
        curl_easy_setopt(c->curl, CURLOPT_CERTINFO, 1L);
    CURLcode rc = curl_easy_perform(c->curl);
    if (rc != CURLE_OK) {
        snprintf(why, cap, "%s %s: %s", tls ? "TLS" : "connect", where,
                 c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
        return -1;
    }
    if (curl_easy_getinfo(c->curl, CURLINFO_ACTIVESOCKET, &c->fd) != CURLE_OK ||
        c->fd == CURL_SOCKET_BAD) {
        snprintf(why, cap, "connect %s: no socket", where);
        return -1;
    }
    return 0;
}

static int wait_fd(curl_socket_t fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - ibp_clock_mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

int ibp__tls_conn_send(ibp__tls_conn *c, const void *buf, size_t len, int64_t deadline_ms,
                       char *why, size_t cap)
{
    const char *p = buf;
    while (len > 0) {
        size_t sent = 0;
        CURLcode rc = curl_easy_send(c->curl, p, len, &sent);
        if (rc == CURLE_AGAIN) {
            if (wait_fd(c->fd, POLLOUT, deadline_ms) <= 0) {
                snprintf(why, cap, "timed out sending");
                return -1;
            }
            continue;
        }
        if (rc != CURLE_OK) {
            snprintf(why, cap, "send: %s", curl_easy_strerror(rc));
            return -1;
        }
        p += sent;
        len -= sent;
    }
    return 0;
}

long ibp__tls_conn_recv(ibp__tls_conn *c, void *buf, size_t len, int64_t deadline_ms, char *why,
                        size_t cap)
{
    for (;;) {
        size_t got = 0;
        CURLcode rc = curl_easy_recv(c->curl, buf, len, &got);
        if (rc == CURLE_OK)
            return (long)got; /* 0: closed */
        if (rc != CURLE_AGAIN) {
            snprintf(why, cap, "receive: %s", curl_easy_strerror(rc));
            return -1;
        }
        int w = wait_fd(c->fd, POLLIN, deadline_ms);
        if (w == 0) {
            snprintf(why, cap, "timed out waiting for data");
            return -1;
        }
        if (w < 0) {
            snprintf(why, cap, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

const char *ibp__tls_conn_leaf_pem(ibp__tls_conn *c)
{
    struct curl_certinfo *ci = NULL;
    if (curl_easy_getinfo(c->curl, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci ||
        ci->num_of_certs < 1)
        return NULL;
    for (struct curl_slist *s = ci->certinfo[0]; s; s = s->next)
        if (strncmp(s->data, "Cert:", 5) == 0)
            return s->data + 5;
    return NULL;
}

void ibp__tls_conn_close(ibp__tls_conn *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->connect_to);
    memset(c, 0, sizeof *c);
}
