/*
 * Geo lookup of DNS clients in MaxMind databases (DESIGN.md §7), via libmaxminddb.
 *
 * Up to three databases: a City DB and/or a Country DB give the country
 * (`country.iso_code`, `country.names.en`), an ASN DB the network
 * (`autonomous_system_number`, `autonomous_system_organization`). The City DB
 * is asked first; the Country DB answers for addresses the City DB does not
 * know (or alone, when no City DB is configured). With no database at all the
 * geo is "disabled": every lookup answers "??" and the node keeps counting.
 *
 * A lookup is split in two so the usage counters can key on something cheap:
 * ibp_geo_lookup_ref() parses the address and walks the search trees only,
 * giving an ibp_geo_ref (the data-section offsets of the records found, equal
 * refs mean equal answers); ibp_geo_resolve() reads the strings of a ref.
 * ibp_geo_lookup() does both.
 *
 * The answer rules:
 *   country_code  the record's country.iso_code upper-cased when it is two
 *                 ASCII letters, otherwise (absent, "XYZ", no record, bad
 *                 address, database error) "??"
 *   country_name  country.names.en, "" when the record has no English name,
 *                 "Unknown" whenever country_code is "??"
 *   asn           "AS<autonomous_system_number>", "" when unknown
 *   network_name  autonomous_system_organization, "" when absent
 * Strings longer than IBP_GEO_TEXT_MAX bytes are cut at a UTF-8 character
 * boundary; bytes that are not valid UTF-8 become '?', so every answer can go
 * into a protobuf string.
 *
 * Thread safety: an open ibp_geo is immutable; any number of threads may look
 * up concurrently. Open and close are not concurrent with lookups.
 * Nothing here allocates or does I/O after ibp_geo_open() (the databases are
 * memory-mapped; the first touch of a page may fault it in).
 */
#ifndef IBP_GEO_H
#define IBP_GEO_H

#include <stdbool.h>
#include <stdint.h>

#include "ibp/status.h"

#define IBP_GEO_UNKNOWN_CODE "??"
#define IBP_GEO_UNKNOWN_NAME "Unknown"
#define IBP_GEO_TEXT_MAX 255 /* longest country or network name kept, in bytes */
#define IBP_GEO_IP_MAX 64    /* longer client address strings are bad addresses */

typedef struct ibp_geo ibp_geo;

/* Database paths; NULL or "" means "not configured". Borrowed for ibp_geo_open(). */
typedef struct ibp_geo_opts {
    const char *city_db;
    const char *country_db;
    const char *asn_db;
} ibp_geo_opts;

/* What a lookup found: opaque record references, 0 = nothing found. */
typedef struct ibp_geo_ref {
    uint64_t country; /* City or Country DB record */
    uint64_t asn;     /* ASN DB record */
} ibp_geo_ref;

/* The strings of an answer (see the rules above). Always NUL-terminated. */
typedef struct ibp_geo_info {
    char country_code[3];
    char country_name[IBP_GEO_TEXT_MAX + 1];
    char asn[24];
    char network_name[IBP_GEO_TEXT_MAX + 1];
} ibp_geo_info;

/* Sets every path to NULL (geo disabled). */
void ibp_geo_opts_init(ibp_geo_opts *opts);

/*
 * Opens the configured databases and checks each one before accepting it:
 * the metadata must decode, the whole search tree is walked (every record must
 * point at a node, nothing, or inside the data section; no cycles) and the data
 * records of the first few hundred networks and of a few well-known addresses
 * must decode. A database that is missing or unreadable gives IBP_E_IO; one
 * that is not a valid MaxMind DB or fails a check gives IBP_E_CONFIG. Both
 * messages name the file and carry libmaxminddb's reason (MMDB_strerror).
 * With every path unset, returns a disabled geo (IBP_OK). *out is set only on
 * success and is owned by the caller (ibp_geo_close). IBP_E_NOMEM, IBP_E_INVAL
 * (NULL opts or out) otherwise. Logs one INFO line per database opened.
 */
ibp_status ibp_geo_open(const ibp_geo_opts *opts, ibp_geo **out, ibp_err *err);

/* Unmaps the databases and frees geo; accepts NULL. No lookup may be running. */
void ibp_geo_close(ibp_geo *geo);

/* True when at least one database is open. geo may be NULL (false). */
bool ibp_geo_enabled(const ibp_geo *geo);

/*
 * Parses ip (dotted IPv4 or IPv6 text; an IPv4-mapped IPv6 address is looked
 * up as IPv4) and finds its records. Always sets *out (zeros when nothing was
 * found). Returns IBP_OK (also when nothing is found or geo is NULL or
 * disabled), IBP_E_INVAL when ip is NULL or not an address, IBP_E_IO when a
 * database reported an error for this address (corrupt search tree).
 * Thread-safe; no allocation.
 */
ibp_status ibp_geo_lookup_ref(const ibp_geo *geo, const char *ip, ibp_geo_ref *out);

/*
 * Reads the strings of ref (from ibp_geo_lookup_ref on the same geo) into *out,
 * which is always fully set. Returns IBP_OK, or IBP_E_IO when a database could
 * not decode a record (the affected fields then read "??"/"Unknown" or "").
 * Thread-safe; no allocation.
 */
ibp_status ibp_geo_resolve(const ibp_geo *geo, const ibp_geo_ref *ref, ibp_geo_info *out);

/* ibp_geo_lookup_ref + ibp_geo_resolve; *out always set; returns the first error. */
ibp_status ibp_geo_lookup(const ibp_geo *geo, const char *ip, ibp_geo_info *out);

#endif
