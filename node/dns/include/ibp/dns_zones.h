/*
 * Zones and static records of the dns role (DESIGN.md §12). Pure: built from
 * the text of a static records file and the network config; no I/O.
 *
 * Static records file (the upstream IBP GeoDNS geodns-static.json format): a
 * JSON array of records
 *     {"qname": "dotters.network", "qtype": "NS", "content": "dns-01.dotters.network.",
 *      "ttl": 3600, "auth": true, "domain_id": 0}
 * qname, qtype and content are required strings; ttl an integer 0..2147483647
 * (default 3600); auth a boolean (default true); other keys (domain_id) are
 * ignored. Names are compared without case and without a trailing dot;
 * qtype is upper-cased letters and digits (A, AAAA, NS, CNAME, TXT, MX...).
 *
 * Zones: the explicit zones given, every name that has NS records in the
 * static file, and for any other name (static or a service host name) not
 * inside one of those, its last two labels ("rpc.ibp.network" -> zone
 * "ibp.network"). Every zone gets a synthesised SOA
 *     "<mname> hostmaster.<zone>. <serial> 10800 3600 604800 <negative_ttl_s>"
 * where mname is the zone's first NS record (file order), else "ns1.<zone>.".
 * Zone ids are 1..n in name order.
 *
 * Host names of the network (every RPC URL host) are "dynamic": their A and
 * AAAA records come from answer selection. A static A or AAAA record at a
 * dynamic name is dropped (counted in ibp_dns_zones_stats.shadowed).
 *
 * Empty non-terminals (a name with nothing of its own between a name and its
 * zone's apex, "deep.example.net" of "_acme-challenge.deep.example.net") are
 * names too (ibp_dns_name.ent), so they answer NODATA rather than NXDOMAIN.
 *
 * Thread safety: immutable after ibp_dns_zones_build; share freely.
 */
#ifndef IBP_DNS_ZONES_H
#define IBP_DNS_ZONES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/network.h"
#include "ibp/status.h"

#define IBP_DNS_NAME_MAX 253         /* a name without the trailing dot */
#define IBP_DNS_CONTENT_MAX 4096     /* longest record content kept */
#define IBP_DNS_STATIC_MAX 100000    /* records in a static file */
#define IBP_DNS_SOA_TTL_DEFAULT 3600 /* TTL of the SOA and NS-less answers */
#define IBP_DNS_NEGATIVE_TTL_DEFAULT 60

typedef struct ibp_dns_record {
    const char *qname; /* normalised: lower case, no trailing dot */
    char qtype[12];
    const char *content;
    uint32_t ttl_s;
    bool auth;
} ibp_dns_record;

typedef struct ibp_dns_zone {
    const char *name; /* normalised */
    int id;           /* 1..n */
    uint32_t serial;
    const char *soa; /* SOA content */
    uint32_t soa_ttl_s;
} ibp_dns_zone;

/* What the zones know of one name. */
typedef struct ibp_dns_name {
    const ibp_dns_zone *zone;      /* the zone the name is in */
    bool apex;                     /* the name is the zone's apex */
    const ibp_dns_record *records; /* static records at the name (file order) */
    size_t record_count;
    long host; /* index of the network host (dynamic), or -1 */
    bool ent;  /* an empty non-terminal: nothing here, names below it */
} ibp_dns_name;

typedef struct ibp_dns_zones_opts {
    const char *static_json; /* the static records file's text, or NULL */
    size_t static_len;
    const char *static_source;  /* names it in messages */
    const ibp_network *network; /* may be NULL */
    const char *const *zones;   /* explicit zones, may be NULL */
    size_t zone_count;
    uint32_t serial;         /* SOA serial of every zone */
    uint32_t soa_ttl_s;      /* default IBP_DNS_SOA_TTL_DEFAULT */
    uint32_t negative_ttl_s; /* SOA minimum; default IBP_DNS_NEGATIVE_TTL_DEFAULT */
} ibp_dns_zones_opts;

typedef struct ibp_dns_zones_stats {
    size_t zones, names, static_records, dynamic_hosts, shadowed, ents;
} ibp_dns_zones_stats;

typedef struct ibp_dns_zones ibp_dns_zones;

void ibp_dns_zones_opts_init(ibp_dns_zones_opts *opts);

/*
 * Builds the zones. Errors: IBP_E_CONFIG (malformed JSON "source:line:col:
 * message", a record that is not an object or misses a field, a bad name,
 * qtype or ttl: "source: record 3: ..."), IBP_E_TOO_LARGE (over
 * IBP_DNS_STATIC_MAX records), IBP_E_NOMEM, IBP_E_INVAL (NULL out).
 */
ibp_status ibp_dns_zones_build(const ibp_dns_zones_opts *opts, ibp_dns_zones **out, ibp_err *err);
void ibp_dns_zones_free(ibp_dns_zones *z);

size_t ibp_dns_zones_count(const ibp_dns_zones *z);
const ibp_dns_zone *ibp_dns_zones_at(const ibp_dns_zones *z, size_t i);
/* The zone whose apex is name (normalised), or NULL. */
const ibp_dns_zone *ibp_dns_zones_find_zone(const ibp_dns_zones *z, const char *name);

/* Looks a normalised name up: true and *out filled when the zones have it. No allocation. */
bool ibp_dns_zones_lookup(const ibp_dns_zones *z, const char *name, ibp_dns_name *out);

/* Every name of zone (sorted), for AXFR: calls fn for each; stops when fn returns false. */
void ibp_dns_zones_each_name(const ibp_dns_zones *z, const ibp_dns_zone *zone,
                             bool (*fn)(const ibp_dns_name *n, const char *name, void *user),
                             void *user);

void ibp_dns_zones_stats_get(const ibp_dns_zones *z, ibp_dns_zones_stats *out);

/*
 * Normalises a DNS name into buf (cap >= IBP_DNS_NAME_MAX + 1): lower case,
 * one trailing dot dropped. False for an empty name, a name over
 * IBP_DNS_NAME_MAX, an empty label, or a byte outside [A-Za-z0-9_*-.].
 */
bool ibp_dns_name_normalize(const char *name, size_t len, char *buf, size_t cap);

#endif
