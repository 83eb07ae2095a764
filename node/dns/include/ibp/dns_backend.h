/*
 * The PowerDNS remote backend of the dns role (DESIGN.md §12): answers one
 * JSON request with one JSON answer, from the zones, the answer selector and
 * the official store. Connectors (ibp/dns_connector.h) carry the bytes.
 *
 * Methods (everything PowerDNS 4.7 calls for an authoritative, non-DNSSEC
 * setup with the zone cache):
 *   initialize              {"result": true}
 *   lookup                  the records of qname for qtype (ANY: all of them):
 *                           at a zone apex the SOA and the static records;
 *                           static records as they are; at a service host name
 *                           A and AAAA from answer selection, TTL from the
 *                           selector, "scopeMask" = the prefix length of
 *                           real-remote (the ECS subnet, else the resolver's
 *                           /32 or /128) so PowerDNS caches none of them;
 *                           [] for a name the zones do not have; for an
 *                           empty non-terminal (ANY) one record of PowerDNS's
 *                           type ENT, so it answers NODATA, not NXDOMAIN
 *   getAllDomains           every zone: id, zone, serial, kind "native"
 *   getDomainInfo           one zone, or false
 *   getAllDomainMetadata    {} ; getDomainMetadata []; getDomainKeys []
 *   list                    (AXFR) SOA, static records, and at each host name
 *                           the addresses of every eligible member (or of the
 *                           last-resort candidates)
 *   anything else           {"result": false}, counted; so are malformed,
 *                           oversized and ill-typed requests, with a log line
 *                           (at most IBP_LOG_LIMIT_BURST per window per thread)
 *
 * Hits: PowerDNS asks a backend for qtype ANY at the query name whatever the
 * client asked, so the backend cannot tell an A query from an AAAA one. With
 * consistent-backends=no (deploy/pdns/pdns.conf) each query for a host name
 * makes exactly one such lookup (the NS lookup PowerDNS also makes is answered
 * [] without selection and then comes from its negative cache), and that
 * lookup counts one hit (ibp_usage_record_dns_hit): family = the qtype's for A
 * and AAAA, else the client address's family; member = that family's pick
 * (the other family's when that one has none); client = the real-remote
 * address; host name = qname. No hit for lookups without a client (PowerDNS's
 * own, remote 0.0.0.0).
 *
 * Thread safety: ibp_dns_backend_handle may run on any number of threads at
 * once; it takes no lock shared across threads (usage shards are per thread,
 * counters are relaxed atomics) and allocates nothing once the thread's
 * output buffer and usage keys exist. Everything in the options is borrowed.
 */
#ifndef IBP_DNS_BACKEND_H
#define IBP_DNS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "ibp/dns_answer.h"
#include "ibp/dns_locator.h"
#include "ibp/dns_request.h"
#include "ibp/dns_zones.h"
#include "ibp/status.h"
#include "ibp/store.h"
#include "ibp/usage.h"

typedef struct ibp_dns_backend_opts {
    const ibp_dns_zones *zones;       /* required */
    const ibp_dns_selector *selector; /* required */
    ibp_store *store;                 /* required: the official store */
    const ibp_dns_locator *locator;   /* may be NULL: every client unlocated */
    ibp_usage *usage;                 /* may be NULL: no hits counted */
    size_t max_request_bytes;         /* default IBP_DNS_REQUEST_MAX_DEFAULT */
} ibp_dns_backend_opts;

typedef struct ibp_dns_backend_stats {
    uint64_t requests;
    uint64_t lookups;
    uint64_t dynamic_answers;     /* lookups that answered a host name */
    uint64_t last_resort_answers; /* ... with a last-resort record */
    uint64_t country_answers;     /* ... with a country override */
    uint64_t no_member_answers;   /* ... with no record at all */
    uint64_t hits;                /* hits recorded */
    uint64_t hit_errors;          /* hits the usage refused */
    uint64_t rejected[IBP_DNS_REJECT_COUNT];
} ibp_dns_backend_stats;

typedef struct ibp_dns_backend ibp_dns_backend;

void ibp_dns_backend_opts_init(ibp_dns_backend_opts *opts);
/* IBP_E_INVAL without zones, selector or store; IBP_E_NOMEM. */
ibp_status ibp_dns_backend_new(const ibp_dns_backend_opts *opts, ibp_dns_backend **out,
                               ibp_err *err);
void ibp_dns_backend_free(ibp_dns_backend *b);

/* Answers len bytes of req into out (reset first). Always a well-formed JSON answer. */
void ibp_dns_backend_handle(ibp_dns_backend *b, const char *req, size_t len, ibp_dns_buf *out);

/* For connectors: counts (and logs, rate-limited) a request refused before parsing. */
void ibp_dns_backend_count_reject(ibp_dns_backend *b, ibp_dns_reject why, const char *detail);

void ibp_dns_backend_stats_get(const ibp_dns_backend *b, ibp_dns_backend_stats *out);

/* Handler shape of the connectors: user is the backend. */
void ibp_dns_backend_handler(void *user, const char *req, size_t len, ibp_dns_buf *out);

#endif
