/*
 * Answer selection of the dns role (DESIGN.md §12): which member's address a
 * service host name gets, per address family, for one client. Pure: it reads
 * the network config and the official store (lock-free, no allocation) and
 * the client's location as given; no clock, no I/O, no threads.
 *
 * Candidates of a host name (precomputed by ibp_dns_selector_new, per
 * family): members that are assigned a service with an RPC URL on that host,
 * where the service is Active, the member is Active, MemberLevel >= the
 * service's LevelRequired, and the member has an address of the family
 * (ServiceIPv4 / ServiceIPv6).
 *
 * Selection for (host, family, client):
 *   1. Country override: when the client's country has an override of this
 *      family, an address override answers that address; a member override
 *      answers that member when it is eligible (below), otherwise selection
 *      goes on as if there were no override.
 *   2. Eligible: the candidates online per the official store for that
 *      host and family (ibp_store_online_members: not overridden, no site
 *      result of the family down, no domain or endpoint result of the family
 *      on that host down). The nearest eligible member is answered with ttl_s.
 *   3. Last resort: when no candidate is eligible, the nearest candidate that
 *      is not overridden is answered anyway with last_resort_ttl_s (fail open:
 *      an empty answer would be cached by resolvers for the SOA minimum).
 *   4. Otherwise nothing (no candidate, or every candidate overridden).
 *
 * Nearest: great-circle distance (haversine, mean Earth radius 6371 km) from
 * the client to the member's Location. Members without a Location come after
 * every member with one. Equal distances go to the member whose name sorts
 * first (bytewise). A client without a location has no distances: the member
 * with the highest rendezvous hash of (client key, member name) wins, so
 * unlocated clients spread over the members, each client always to the same
 * one while the set does not change.
 *
 * Thread safety: a selector is immutable after ibp_dns_selector_new; any
 * number of threads may call ibp_dns_select concurrently. It borrows the
 * network, which must outlive it.
 */
#ifndef IBP_DNS_ANSWER_H
#define IBP_DNS_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/network.h"
#include "ibp/status.h"
#include "ibp/store.h"

#define IBP_DNS_TTL_DEFAULT 30
#define IBP_DNS_LAST_RESORT_TTL_DEFAULT 5
#define IBP_DNS_MAX_CANDIDATES 1024 /* candidates of one host name and family */
#define IBP_DNS_EARTH_RADIUS_KM 6371.0

/* A per-country override; address overrides name one family's address. */
typedef struct ibp_dns_country_override {
    char country[3];    /* ISO 3166 alpha-2, upper case */
    const char *member; /* a member name, or NULL */
    const char *ipv4;   /* an IPv4 address for A answers, or NULL */
    const char *ipv6;   /* an IPv6 address for AAAA answers, or NULL */
} ibp_dns_country_override;

typedef struct ibp_dns_answer_opts {
    uint32_t ttl_s;                            /* default IBP_DNS_TTL_DEFAULT */
    uint32_t last_resort_ttl_s;                /* default IBP_DNS_LAST_RESORT_TTL_DEFAULT */
    const ibp_dns_country_override *overrides; /* copied by ibp_dns_selector_new */
    size_t override_count;
} ibp_dns_answer_opts;

/* Who asks: the ECS subnet PowerDNS passes, else the resolver. */
typedef struct ibp_dns_client {
    char country[3]; /* upper case, "??" or "" when unknown */
    bool has_location;
    double latitude, longitude; /* degrees */
    uint64_t key;               /* stable per client network (ibp_dns_client_key) */
} ibp_dns_client;

typedef enum ibp_dns_pick_kind {
    IBP_DNS_PICK_NONE = 0,    /* nothing to answer */
    IBP_DNS_PICK_NEAREST,     /* nearest eligible member */
    IBP_DNS_PICK_COUNTRY,     /* a country override (member or address) */
    IBP_DNS_PICK_LAST_RESORT, /* nobody eligible: nearest not overridden candidate */
} ibp_dns_pick_kind;

typedef struct ibp_dns_pick {
    ibp_dns_pick_kind kind;
    const char *member;  /* the member's name (network's string); NULL for an address override */
    const char *address; /* the address answered (network's or override's string) */
    uint32_t ttl_s;
    double distance_km; /* -1 when unknown */
} ibp_dns_pick;

typedef struct ibp_dns_selector ibp_dns_selector;

void ibp_dns_answer_opts_init(ibp_dns_answer_opts *opts);

/*
 * Precomputes the candidates of every host name of net (the order of
 * ibp_network_domain_at) and copies the overrides. Errors: IBP_E_INVAL (NULL
 * net or out), IBP_E_CONFIG (an override with a bad country code, an unknown
 * member, a bad address; a host with more than IBP_DNS_MAX_CANDIDATES
 * candidates), IBP_E_NOMEM. *out is set only on success.
 */
ibp_status ibp_dns_selector_new(const ibp_network *net, const ibp_dns_answer_opts *opts,
                                ibp_dns_selector **out, ibp_err *err);
void ibp_dns_selector_free(ibp_dns_selector *sel);

/* The TTL of eligible answers (opts.ttl_s). */
uint32_t ibp_dns_selector_ttl(const ibp_dns_selector *sel);

/* Number of host names (== ibp_network_domain_count of the network). */
size_t ibp_dns_selector_host_count(const ibp_dns_selector *sel);

/* Candidates of host i and family (for AXFR listings and tests). */
size_t ibp_dns_selector_candidates(const ibp_dns_selector *sel, size_t host, bool ipv6,
                                   const ibp_network_member *const **out);

/*
 * Selects the answer of host (index into the network's domains) and family
 * for client, judged against one snapshot of store. Always sets *out. No
 * allocation, no lock (store reads are RCU).
 */
void ibp_dns_select(const ibp_dns_selector *sel, ibp_store *store, size_t host, bool ipv6,
                    const ibp_dns_client *client, ibp_dns_pick *out);

/* Great-circle distance in km between two points given in degrees. */
double ibp_dns_distance_km(double lat1, double lon1, double lat2, double lon2);

/* A stable 64-bit key of a client address text (FNV-1a), for the rendezvous hash. */
uint64_t ibp_dns_client_key(const char *address);

/* Parses "CC=member" or "CC=address" into *out (pointers into text). IBP_E_CONFIG when bad. */
ibp_status ibp_dns_country_override_parse(const char *text, ibp_dns_country_override *out,
                                          ibp_err *err);

#endif
