/*
 * A TCP or TLS stream to a target's address through libcurl's
 * CURLOPT_CONNECT_ONLY: curl connects to the member's IP (CURLOPT_CONNECT_TO)
 * while the URL, hence SNI and certificate name verification, carries the
 * domain; reads and writes then go through curl_easy_recv/send, each waiting
 * on the socket no later than the deadline. Private to the monitor library.
 */
#ifndef IBP_TLS_CONN_H
#define IBP_TLS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "ibp/check_run.h"

typedef struct ibp__tls_conn {
    CURL *curl;
    struct curl_slist *connect_to;
    curl_socket_t fd;
    char errbuf[CURL_ERROR_SIZE];
} ibp__tls_conn;

/* Connects (and with tls, handshakes with full verification; with certinfo, keeps the
 * peer's certificates for ibp__tls_conn_leaf_pem). 0, or -1 with why. */
int ibp__tls_conn_open(ibp__tls_conn *c, const ibp_check_target *t, const ibp_check_env *env,
                       bool tls, bool certinfo, int64_t deadline_ms, char *why, size_t cap);

/* The peer's leaf certificate as PEM text (borrowed from curl), NULL when unknown. */
const char *ibp__tls_conn_leaf_pem(ibp__tls_conn *c);

/* Sends all of buf. 0, or -1 with why (timeout, error). */
int ibp__tls_conn_send(ibp__tls_conn *c, const void *buf, size_t len, int64_t deadline_ms,
                       char *why, size_t cap);

/* Receives some bytes: > 0 their number, 0 the peer closed, -1 timeout or error (why). */
long ibp__tls_conn_recv(ibp__tls_conn *c, void *buf, size_t len, int64_t deadline_ms, char *why,
                        size_t cap);

/* Closes; accepts a connection that never opened. */
void ibp__tls_conn_close(ibp__tls_conn *c);

/* Sets the options every curl handle of the checks shares (CONNECT_TO, CA, no signals). */
int ibp__tls_conn_setup(CURL *curl, struct curl_slist **connect_to, const ibp_check_target *t,
                        const ibp_check_env *env, const char *scheme, char *url, size_t url_cap);

#endif
