/*
 * Private to network.c (the model and its queries), network_load.c (the JSON
 * loading) of ibp/network.h: the layout of an ibp_network and the helpers
 * both use to build one. Not thread-safe while building; a built network is
 * immutable.
 */
#ifndef IBP_NETWORK_INTERNAL_H
#define IBP_NETWORK_INTERNAL_H

#include <stddef.h>

#include "ibp/network.h"
#include "ibp/status.h"

struct ibp_network {
    ibp_network_member *members;
    size_t member_count, member_cap;
    ibp_network_service *services;
    size_t service_count, service_cap;
    ibp_network_check *checks;
    size_t check_count, check_cap;
    ibp_network_domain *domains;
    size_t domain_count;
    size_t rpc_url_count;
    /* Sorted by name for bsearch; built once everything is loaded (arrays no longer move). */
    const ibp_network_member **member_index;
    const ibp_network_service **service_index;
    const ibp_network_check **check_index;
};

/* A copy of s (malloc), NULL when out of memory. */
char *ibp__network_strdup(const char *s);

/* Frees the n strings of v and v; accepts NULL. */
void ibp__network_strv_free(char **v, size_t n);

/* Appends a copy of s to (*v, *n); IBP_E_NOMEM. */
ibp_status ibp__network_strv_push(char ***v, size_t *n, const char *s);

/* Removes repeated strings, keeping each first occurrence in place; IBP_E_NOMEM. */
ibp_status ibp__network_strv_distinct(char **v, size_t *n);

/* qsort comparator of char * elements. */
int ibp__network_cmp_str_ptr(const void *a, const void *b);

/* Makes room for one more zeroed element of size elem in *arr (count used of *cap); IBP_E_NOMEM. */
ibp_status ibp__network_grow(void **arr, size_t *cap, size_t count, size_t elem);

/*
 * Groups every RPC URL of the services by host into net->domains (one per
 * distinct host, sorted). Every URL must parse (loading checked them).
 * IBP_E_NOMEM.
 */
ibp_status ibp__network_build_domains(ibp_network *net);

/*
 * Builds the name indexes (members, services, checks) once the arrays no
 * longer move. IBP_E_NOMEM; IBP_E_CONFIG with *dup_check = the name of a
 * check defined twice (borrowed from net).
 */
ibp_status ibp__network_build_indexes(ibp_network *net, const char **dup_check);

#endif
