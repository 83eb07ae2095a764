/*
 * ResultKey (proto/ibp.proto) as a plain C struct, its checks and the
 * canonical key order.
 *
 * The canonical order is the one order of keys on the wire: an
 * OfficialSnapshot lists its entries in it (ibp/codec_snapshot.h), so every
 * replica packs the same bytes. It is defined here once; consensus and the
 * data library both use ibp_codec_key_cmp().
 *
 * Check types, statuses and string caps are the project's (ibp/types.h),
 * whose values are the wire's enum numbers (CheckType, Status) and the vote
 * engine's, so callers convert by value.
 *
 * Pure: no allocation, no I/O; thread-safe.
 */
#ifndef IBP_CODEC_RESULT_KEY_H
#define IBP_CODEC_RESULT_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include "ibp/status.h"
#include "ibp/types.h"

/*
 * A result key. Strings are borrowed; NULL means "". Site keys have empty
 * domain and endpoint; domain keys an empty endpoint.
 */
typedef struct ibp_codec_key {
    ibp_check_type type;
    const char *check_name;
    const char *member;
    const char *domain;
    const char *endpoint;
    bool ipv6;
} ibp_codec_key;

/*
 * The canonical order: type, check name, domain, endpoint, ipv6 (false
 * first), member, strings compared byte for byte (so a group's members sit
 * together). Returns <0, 0, >0.
 */
int ibp_codec_key_cmp(const ibp_codec_key *a, const ibp_codec_key *b);

/*
 * Checks a key the way a received one is checked: IBP_E_INVAL for an unknown
 * type, an empty check name or member, a site key with a domain or endpoint,
 * a domain key without a domain or with an endpoint, an endpoint key without
 * both; IBP_E_TOO_LARGE for a string over its cap in ibp/types.h (the message names
 * the field, its length and the cap, never the text).
 */
ibp_status ibp_codec_key_check(const ibp_codec_key *k, ibp_err *err);

/* "site", "domain", "endpoint"; "?" for anything else. */
const char *ibp_codec_check_name(ibp_check_type type);

#endif
