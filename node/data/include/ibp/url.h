/*
 * URL parsing for the network config (ibp/network.h) and the check modules:
 * scheme, host and port of an absolute URL with an authority. Pure (no I/O,
 * no allocation) and thread-safe.
 */
#ifndef IBP_URL_H
#define IBP_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "ibp/status.h"

/* A parsed URL: scheme://[userinfo@]host[:port][/path][?query][#fragment]. */
typedef struct ibp_network_url {
    char scheme[16]; /* lower-case */
    char host[254];  /* lower-case, without brackets or a trailing dot */
    bool host_is_ipv6;
    unsigned port;      /* 0 when not given */
    size_t path_offset; /* where the path (or query, fragment) starts in the input */
} ibp_network_url;

/*
 * Parses an absolute URL with an authority. Host names are letters, digits,
 * '-', '_' and '.' (no empty labels, at most 253 bytes); IPv6 literals must be
 * in brackets and valid; a port is 1..65535. Userinfo is skipped. IBP_E_INVAL
 * with the reason in err (the URL itself is not copied into the message).
 * *out is set only on success. Pure and thread-safe.
 */
ibp_status ibp_network_url_parse(const char *url, ibp_network_url *out, ibp_err *err);

#endif
