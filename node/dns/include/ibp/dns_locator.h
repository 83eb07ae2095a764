/*
 * Where a DNS client is: country and coordinates from a MaxMind City
 * database (`country.iso_code`, `location.latitude`, `location.longitude`),
 * via libmaxminddb. The database is memory-mapped: a lookup allocates
 * nothing and does no I/O (the first touch of a page may fault it in).
 *
 * Thread safety: an open locator is immutable; any number of threads may
 * locate concurrently. Open and close are not concurrent with lookups.
 */
#ifndef IBP_DNS_LOCATOR_H
#define IBP_DNS_LOCATOR_H

#include <stdbool.h>

#include "ibp/dns_answer.h"
#include "ibp/status.h"

typedef struct ibp_dns_locator ibp_dns_locator;

/*
 * Opens city_db (NULL or "": a locator that knows nobody). IBP_E_IO when the
 * file cannot be opened, IBP_E_CONFIG when it is not a MaxMind DB; the
 * message names the file. *out is set only on success.
 */
ibp_status ibp_dns_locator_open(const char *city_db, ibp_dns_locator **out, ibp_err *err);
void ibp_dns_locator_close(ibp_dns_locator *l);

/*
 * Fills *out for address (IPv4 or IPv6 text): country "??" and no location
 * when the address does not parse or the database has no record with them;
 * key = ibp_dns_client_key(address). l may be NULL. Thread-safe, no allocation.
 */
void ibp_dns_locator_locate(const ibp_dns_locator *l, const char *address, ibp_dns_client *out);

#endif
