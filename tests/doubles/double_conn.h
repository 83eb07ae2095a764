/* What the doubles' protocol handlers share (private to tests/doubles). */
#ifndef IBP_DOUBLE_CONN_H
#define IBP_DOUBLE_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "member_double.h"

typedef struct dconn {
    ibp_double *d;
    SSL *ssl;
    int fd;
} dconn;

/* Reads up to len bytes: > 0 bytes, 0 closed, -1 error or the double stopping. */
long ibp_test_dconn_read(dconn *c, void *buf, size_t len);

/* Writes all of buf: 0, or -1. */
int ibp_test_dconn_write(dconn *c, const void *buf, size_t len);

/* Reads an HTTP head (up to "\r\n\r\n") into buf; returns its length or -1. Extra bytes
 * read after it stay in buf[head..*have). */
long ibp_test_dconn_read_head(dconn *c, char *buf, size_t cap, size_t *have);

/* The value of an HTTP header in head (case-insensitive name), "" when absent. */
void ibp_test_dconn_header(const char *head, const char *name, char *out, size_t cap);

bool ibp_double_stopping(ibp_double *d);
void ibp_double_behaviour_get(ibp_double *d, ibp_double_behaviour *out);
void ibp_double_count(ibp_double *d);
void ibp_double_note(ibp_double *d, const char *host, const char *path);

/* Sleeps ms, in steps, returning early when the double stops. */
void ibp_double_sleep(ibp_double *d, int64_t ms);

/* The handlers, one per kind. */
void ibp_double_serve_substrate(dconn *c);
void ibp_double_serve_eth(dconn *c);

#endif
