/*
 * Client location from a MaxMind City database; see ibp/dns_locator.h.
 */
#include "ibp/dns_locator.h"

#include <ctype.h>
#include <errno.h>
#include <maxminddb.h>
#include <stdlib.h>
#include <string.h>

struct ibp_dns_locator {
    bool open;
    MMDB_s db;
};

ibp_status ibp_dns_locator_open(const char *city_db, ibp_dns_locator **out, ibp_err *err)
{
    ibp_dns_locator *l = calloc(1, sizeof *l);
    if (!l)
        return ibp_err_set(err, IBP_E_NOMEM, "dns locator: out of memory");
    if (city_db && *city_db) {
        int rc = MMDB_open(city_db, MMDB_MODE_MMAP, &l->db);
        if (rc != MMDB_SUCCESS) {
            ibp_status st =
                rc == MMDB_FILE_OPEN_ERROR || rc == MMDB_IO_ERROR ? IBP_E_IO : IBP_E_CONFIG;
            free(l);
            return ibp_err_set(err, st, "dns locator: %s: %s", city_db, MMDB_strerror(rc));
        }
        l->open = true;
    }
    *out = l;
    return IBP_OK;
}

void ibp_dns_locator_close(ibp_dns_locator *l)
{
    if (!l)
        return;
    if (l->open)
        MMDB_close(&l->db);
    free(l);
}

static bool get_double(MMDB_entry_s *e, const char *key, double *out)
{
    MMDB_entry_data_s d;
    if (MMDB_get_value(e, &d, "location", key, NULL) != MMDB_SUCCESS || !d.has_data)
        return false;
    if (d.type == MMDB_DATA_TYPE_DOUBLE)
        *out = d.double_value;
    else if (d.type == MMDB_DATA_TYPE_FLOAT)
        *out = d.float_value;
    else
        return false;
    return true;
}

void ibp_dns_locator_locate(const ibp_dns_locator *l, const char *address, ibp_dns_client *out)
{
    memset(out, 0, sizeof *out);
    memcpy(out->country, "??", 3);
    out->key = ibp_dns_client_key(address);
    if (!l || !l->open || !address)
        return;
    int gai = 0, mmdb = 0;
    MMDB_lookup_result_s r = MMDB_lookup_string((MMDB_s *)&l->db, address, &gai, &mmdb);
    if (gai != 0 || mmdb != MMDB_SUCCESS || !r.found_entry)
        return;
    MMDB_entry_data_s d;
    if (MMDB_get_value(&r.entry, &d, "country", "iso_code", NULL) == MMDB_SUCCESS && d.has_data &&
        d.type == MMDB_DATA_TYPE_UTF8_STRING && d.data_size == 2 &&
        isalpha((unsigned char)d.utf8_string[0]) && isalpha((unsigned char)d.utf8_string[1])) {
        out->country[0] = (char)toupper((unsigned char)d.utf8_string[0]);
        out->country[1] = (char)toupper((unsigned char)d.utf8_string[1]);
    }
    double lat, lon;
    if (get_double(&r.entry, "latitude", &lat) && get_double(&r.entry, "longitude", &lon) &&
        lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180) {
        out->has_location = true;
        out->latitude = lat;
        out->longitude = lon;
    }
}
