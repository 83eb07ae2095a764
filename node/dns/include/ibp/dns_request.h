/*
 * PowerDNS remote backend requests (JSON, one object per request) and the
 * growable output buffer answers are written into. Pure: no I/O.
 *
 * A request is {"method": NAME, "parameters": {...}}. The parser keeps the
 * parameters this backend uses, copied into fixed buffers (so nothing of the
 * request outlives the call), and checks their types:
 *   lookup                qname, qtype (strings, required); remote, local,
 *                         real-remote (strings, optional); zone-id (integer)
 *   list                  zonename (string) and/or domain_id (integer)
 *   getDomainInfo, getAllDomainMetadata, getDomainKeys
 *                         name (string, required)
 *   getDomainMetadata     name, kind (strings, required)
 *   initialize, getAllDomains   anything
 * Method names compare without case. Any other method parses as
 * IBP_DNS_M_OTHER (answered {"result": false}). Strings longer than their
 * buffer are errors, never cut.
 */
#ifndef IBP_DNS_REQUEST_H
#define IBP_DNS_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/status.h"

#define IBP_DNS_REQUEST_MAX_DEFAULT 65536 /* bytes of one request */

typedef enum ibp_dns_method {
    IBP_DNS_M_OTHER = 0,
    IBP_DNS_M_INITIALIZE,
    IBP_DNS_M_LOOKUP,
    IBP_DNS_M_LIST,
    IBP_DNS_M_GET_ALL_DOMAINS,
    IBP_DNS_M_GET_DOMAIN_INFO,
    IBP_DNS_M_GET_ALL_DOMAIN_METADATA,
    IBP_DNS_M_GET_DOMAIN_METADATA,
    IBP_DNS_M_GET_DOMAIN_KEYS,
} ibp_dns_method;

/* Why a request was refused (for counters). */
typedef enum ibp_dns_reject {
    IBP_DNS_REJECT_NONE = 0,
    IBP_DNS_REJECT_MALFORMED, /* not JSON, not an object, no method string */
    IBP_DNS_REJECT_PARAMS,    /* a parameter missing, of the wrong type or too long */
    IBP_DNS_REJECT_TOO_LARGE, /* over the size limit */
    IBP_DNS_REJECT_UNKNOWN,   /* a method this backend does not implement */
    IBP_DNS_REJECT_COUNT
} ibp_dns_reject;

typedef struct ibp_dns_request {
    ibp_dns_method method;
    char method_name[64]; /* as sent, cut to fit (for logs) */
    char qname[256];      /* lookup; "" when absent */
    char qtype[16];
    char remote[64];
    char local[64];
    char real_remote[72];
    int64_t zone_id; /* -1 when absent */
    char zonename[256];
    int64_t domain_id; /* -1 when absent */
    char name[256];    /* getDomainInfo, metadata, keys */
    char kind[64];
} ibp_dns_request;

/*
 * Parses len bytes of req into *out (always fully set). Returns
 * IBP_DNS_REJECT_NONE, or why it is refused; IBP_DNS_REJECT_UNKNOWN for a
 * well-formed request of another method (out->method is IBP_DNS_M_OTHER).
 * Requests over max_bytes (0: IBP_DNS_REQUEST_MAX_DEFAULT) are refused
 * unread. Thread-safe.
 */
ibp_dns_reject ibp_dns_request_parse(const char *req, size_t len, size_t max_bytes,
                                     ibp_dns_request *out);

/* "malformed", "bad_params", "too_large", "unknown_method" ("" for NONE). */
const char *ibp_dns_reject_name(ibp_dns_reject r);

/* ---- output buffer ------------------------------------------------------- */

/* A growable byte buffer, kept by a connector thread across requests so that
 * answering allocates nothing once it is large enough. */
typedef struct ibp_dns_buf {
    char *data;
    size_t len, cap;
    bool failed; /* an allocation failed: the contents are incomplete */
} ibp_dns_buf;

void ibp_dns_buf_reset(ibp_dns_buf *b);
void ibp_dns_buf_free(ibp_dns_buf *b);
void ibp_dns_buf_add(ibp_dns_buf *b, const char *s, size_t n);
void ibp_dns_buf_puts(ibp_dns_buf *b, const char *s);
void ibp_dns_buf_printf(ibp_dns_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string, quotes included. */
void ibp_dns_buf_json_str(ibp_dns_buf *b, const char *s);

#endif
