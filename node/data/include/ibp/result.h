/*
 * Check results: the values the official and local stores hold (DESIGN.md §3).
 *
 * A result key is (check type, check name, member, domain, endpoint URL, ipv6).
 * Site keys have empty domain and endpoint; domain keys an empty endpoint.
 * Domains are kept as given; comparisons for member status fold case and
 * ignore a trailing dot (ibp_domain_normalize).
 *
 * ibp_result owns its strings; none is ever NULL ("" when absent). A result is
 * immutable once made; the functions here are thread-safe on distinct objects.
 */
#ifndef IBP_RESULT_H
#define IBP_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/status.h"
#include "ibp/types.h" /* ibp_check_type and the caps IBP_DOMAIN_MAX .. IBP_DATA_MAX */

/* "site", "domain", "endpoint"; "?" for anything else. */
const char *ibp_check_type_name(ibp_check_type type);
/* Parses the names above. IBP_E_INVAL otherwise. */
ibp_status ibp_check_type_parse(const char *name, ibp_check_type *out);

/* A key passed into the API; strings are borrowed for the call, NULL means "". */
typedef struct ibp_result_key {
    ibp_check_type type;
    const char *check_name;
    const char *member;
    const char *domain;
    const char *endpoint;
    bool ipv6;
} ibp_result_key;

typedef struct ibp_result {
    ibp_check_type type;
    char *check_name;
    char *member;
    char *domain;   /* "" for site results */
    char *endpoint; /* "" unless an endpoint result */
    bool ipv6;
    bool up;               /* the status: true up, false down */
    int64_t check_time_ms; /* Unix ms, UTC */
    char *error;           /* "" when none */
    char *data_json;       /* a JSON object as text, "" when none */
} ibp_result;

/*
 * Makes a result (all strings copied). Errors (message in err):
 * IBP_E_INVAL: unknown type; empty check name or member; a site key with a
 * domain or endpoint; a domain key without a domain or with an endpoint; an
 * endpoint key without domain or endpoint; data_json that is not a JSON
 * object. IBP_E_TOO_LARGE: a key string or data_json over its cap above (the
 * message names the field, its length and the limit). An error text over
 * IBP_ERROR_MAX is cut, not refused (see docs/limits.md).
 */
ibp_status ibp_result_new(const ibp_result_key *key, bool up, int64_t check_time_ms,
                          const char *error, const char *data_json, ibp_result **out, ibp_err *err);

/* Deep copy; NULL when out of memory. */
ibp_result *ibp_result_dup(const ibp_result *r);

/* Frees a result; accepts NULL. */
void ibp_result_free(ibp_result *r);

/* The key of a result, borrowing its strings. */
ibp_result_key ibp_result_key_of(const ibp_result *r);

/*
 * Orders keys: type, check name, domain, endpoint, ipv6, member (so a group's
 * members sit together). Exact byte comparison; returns <0, 0, >0.
 */
int ibp_result_key_cmp(const ibp_result_key *a, const ibp_result_key *b);

/*
 * Lower-cases domain and drops one trailing dot into buf (NUL-terminated).
 * IBP_E_RANGE when it does not fit (or is longer than IBP_DOMAIN_MAX).
 */
ibp_status ibp_domain_normalize(const char *domain, char *buf, size_t cap);

/* A list of results owned by the caller (deep copies). */
typedef struct ibp_result_list {
    ibp_result **items;
    size_t count;
} ibp_result_list;

/* Frees every result and the array; leaves the list empty. Accepts NULL. */
void ibp_result_list_free(ibp_result_list *list);

#endif
