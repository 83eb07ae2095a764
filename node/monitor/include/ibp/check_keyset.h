/*
 * The result keys a monitor's config wants voted: the keys of the plan's
 * targets, and the names of its enabled checks. A result of an enabled
 * check whose key is not a target (its member, domain or URL left the
 * config) is not wanted; a result of a check the config does not have (an
 * observation given by an operator) is left alone. Pure; a built set is
 * immutable and may be read from any thread.
 */
#ifndef IBP_CHECK_KEYSET_H
#define IBP_CHECK_KEYSET_H

#include <stdbool.h>
#include <stddef.h>

#include "ibp/check_plan.h"
#include "ibp/network.h"
#include "ibp/result.h"
#include "ibp/status.h"

typedef struct ibp_check_keyset {
    char **keys; /* sorted key texts of the targets */
    size_t key_count;
    char **checks; /* sorted names of the enabled checks */
    size_t check_count;
} ibp_check_keyset;

/* Builds the set of plan (built from net). IBP_E_NOMEM. *out is set only on success. */
ibp_status ibp_check_keyset_build(const ibp_check_plan *plan, const ibp_network *net,
                                  ibp_check_keyset *out);

/* See the top. O(log n). */
bool ibp_check_keyset_wants(const ibp_check_keyset *s, const ibp_result *r);

/* Frees the set and leaves it empty; accepts NULL. */
void ibp_check_keyset_free(ibp_check_keyset *s);

#endif
