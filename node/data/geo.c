/* Geo lookup in MaxMind databases; see ibp/geo.h. */
#include "ibp/geo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "geo_text.h"
#include "ibp/log.h"

#define COMPONENT "geo"

/* How many distinct data records of the search tree ibp_geo_open() decodes. */
#define VALIDATE_RECORDS 256
#define RECORD_SET 1024 /* open-addressing set of them: at most a quarter full */

/*
 * Which database a country ref points into, kept above the offset (which is a
 * uint32_t in libmaxminddb, so offset + 1 needs 33 bits).
 */
#define REF_SRC_SHIFT 40
#define REF_OFFSET_MASK ((UINT64_C(1) << REF_SRC_SHIFT) - 1)
enum { SRC_CITY = 1, SRC_COUNTRY = 2, SRC_ASN = 3 };

struct ibp_geo {
    MMDB_s db[4]; /* indexed by SRC_*; [0] unused */
    bool open[4];
};

/* Addresses every check looks up: common resolvers and the MaxMind test ones. */
static const char *const probe_ips[] = {"1.1.1.1",    "8.8.8.8",     "81.2.69.142", "1.128.0.0",
                                        "2001:218::", "2a02:cf40::", "::1",         "0.0.0.0",
                                        "192.0.2.1",  "2001:db8::1"};

static const char *const src_names[] = {"", "City", "Country", "ASN"};

void ibp_geo_opts_init(ibp_geo_opts *opts)
{
    memset(opts, 0, sizeof *opts);
}

bool ibp_geo_enabled(const ibp_geo *geo)
{
    return geo && (geo->open[SRC_CITY] || geo->open[SRC_COUNTRY] || geo->open[SRC_ASN]);
}

/* ---- parsing addresses --------------------------------------------------------------------- */

typedef union addr {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
} addr;

/* inet_pton into a sockaddr; IPv4-mapped IPv6 becomes IPv4 (works with IPv4-only DBs). */
static int parse_ip(const char *ip, addr *a)
{
    if (!ip || strnlen(ip, IBP_GEO_IP_MAX + 1) > IBP_GEO_IP_MAX)
        return -1;
    memset(a, 0, sizeof *a);
    if (!strchr(ip, ':')) {
        a->in4.sin_family = AF_INET;
        return inet_pton(AF_INET, ip, &a->in4.sin_addr) == 1 ? 0 : -1;
    }
    struct in6_addr v6;
    if (inet_pton(AF_INET6, ip, &v6) != 1)
        return -1;
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
        a->in4.sin_family = AF_INET;
        memcpy(&a->in4.sin_addr, &v6.s6_addr[12], 4);
        return 0;
    }
    a->in6.sin6_family = AF_INET6;
    a->in6.sin6_addr = v6;
    return 0;
}

/*
 * Looks sa up in one database. Returns MMDB_SUCCESS with *ref = offset + 1 (0
 * when not found). An IPv6 address in an IPv4-only database is "not found".
 */
static int lookup_one(const MMDB_s *db, const struct sockaddr *sa, uint64_t *ref)
{
    int mmdb_err = MMDB_SUCCESS;
    MMDB_lookup_result_s r = MMDB_lookup_sockaddr(db, sa, &mmdb_err);
    *ref = 0;
    if (mmdb_err == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR)
        return MMDB_SUCCESS;
    if (mmdb_err != MMDB_SUCCESS)
        return mmdb_err;
    if (r.found_entry)
        *ref = (uint64_t)r.entry.offset + 1;
    return MMDB_SUCCESS;
}

/* ---- opening and checking ------------------------------------------------------------------ */

static ibp_status corrupt(ibp_err *err, const char *role, const char *path, const char *what,
                          int mmdb_err)
{
    return ibp_err_set(err, IBP_E_CONFIG, "%s DB %s: %s: %s", role, path, what,
                       MMDB_strerror(mmdb_err));
}

/* Decodes the whole data record at offset; MMDB error code. */
static int decode_record(const MMDB_s *db, uint32_t offset)
{
    MMDB_entry_s entry = {.mmdb = db, .offset = offset};
    MMDB_entry_data_list_s *list = NULL;
    int rc = MMDB_get_entry_data_list(&entry, &list);
    MMDB_free_entry_data_list(list);
    return rc;
}

/*
 * Walks every node of the search tree once (a bitmap of visited nodes, so a
 * corrupt tree with shared or cyclic links ends), checking that each record
 * is a node, empty or inside the data section, and that no path is longer than
 * the address has bits. Decodes the first VALIDATE_RECORDS distinct data
 * records met. libmaxminddb checks none of this at open time, and a bad
 * pointer otherwise surfaces only when some client happens to hit it.
 */
static ibp_status walk_tree(const MMDB_s *db, const char *role, const char *path, ibp_err *err)
{
    uint32_t nodes = db->metadata.node_count;
    unsigned max_depth = db->metadata.ip_version == 4 ? 32 : 128;
    ibp_status st = IBP_OK;
    uint8_t *seen = calloc((size_t)nodes / 8 + 1, 1);
    /* Depth-first with both children pushed: at most one pending sibling per level. */
    struct {
        uint32_t node;
        unsigned depth;
    } stack[2 * 129 + 2];
    size_t top = 0;
    uint32_t records[RECORD_SET] = {0}; /* offset + 1 of each decoded record; 0: free */
    size_t nrecords = 0;
    if (!seen)
        return ibp_err_set(err, IBP_E_NOMEM, "%s DB %s: out of memory", role, path);
    if (nodes == 0) {
        st = ibp_err_set(err, IBP_E_CONFIG, "%s DB %s: empty search tree", role, path);
        goto done;
    }
    stack[top].node = 0;
    stack[top++].depth = 0;
    seen[0] |= 1;
    while (top > 0) {
        uint32_t n = stack[--top].node;
        unsigned depth = stack[top].depth;
        MMDB_search_node_s node;
        int rc = MMDB_read_node(db, n, &node);
        if (rc != MMDB_SUCCESS) {
            st = corrupt(err, role, path, "search tree", rc);
            goto done;
        }
        uint8_t types[2] = {node.left_record_type, node.right_record_type};
        uint64_t recs[2] = {node.left_record, node.right_record};
        uint32_t offsets[2] = {node.left_record_entry.offset, node.right_record_entry.offset};
        for (int side = 0; side < 2; side++) {
            switch (types[side]) {
            case MMDB_RECORD_TYPE_SEARCH_NODE: {
                uint32_t child = (uint32_t)recs[side];
                if (depth + 1 >= max_depth) {
                    st = corrupt(err, role, path, "search tree deeper than the address",
                                 MMDB_CORRUPT_SEARCH_TREE_ERROR);
                    goto done;
                }
                if (seen[child / 8] & (1u << (child % 8)))
                    break;
                seen[child / 8] |= (uint8_t)(1u << (child % 8));
                stack[top].node = child;
                stack[top++].depth = depth + 1;
                break;
            }
            case MMDB_RECORD_TYPE_EMPTY:
                break;
            case MMDB_RECORD_TYPE_DATA: {
                if (nrecords == VALIDATE_RECORDS)
                    break;
                /* A small set of the offsets already decoded (many networks share one). */
                uint32_t key = offsets[side] + 1, i = (key * 2654435761u) % RECORD_SET;
                while (records[i] && records[i] != key)
                    i = (i + 1) % RECORD_SET;
                if (records[i])
                    break;
                records[i] = key;
                nrecords++;
                rc = decode_record(db, offsets[side]);
                if (rc != MMDB_SUCCESS) {
                    st = corrupt(err, role, path, "data record", rc);
                    goto done;
                }
                break;
            }
            default:
                st = corrupt(err, role, path, "search tree record points outside the file",
                             MMDB_CORRUPT_SEARCH_TREE_ERROR);
                goto done;
            }
        }
    }
done:
    free(seen);
    return st;
}

static ibp_status check_db(const MMDB_s *db, const char *role, const char *path, ibp_err *err)
{
    MMDB_entry_data_list_s *meta = NULL;
    int rc = MMDB_get_metadata_as_entry_data_list(db, &meta);
    MMDB_free_entry_data_list(meta);
    if (rc != MMDB_SUCCESS)
        return corrupt(err, role, path, "metadata", rc);
    /* libmaxminddb 1.7.1 reads search-tree nodes without checking them against
     * the file size: a node_count that claims more tree than the file holds
     * makes MMDB_read_node read past the mapping (found by tests/fuzz). Each
     * node is two records of record_size bits; a 16-byte separator follows. */
    uint64_t tree_bytes = (uint64_t)db->metadata.node_count * db->metadata.record_size / 4;
    if (db->file_size < 0 || tree_bytes + 16 > (uint64_t)db->file_size)
        return corrupt(err, role, path, "search tree larger than the file",
                       MMDB_CORRUPT_SEARCH_TREE_ERROR);
    ibp_status st = walk_tree(db, role, path, err);
    if (st != IBP_OK)
        return st;
    for (size_t i = 0; i < sizeof probe_ips / sizeof probe_ips[0]; i++) {
        addr a;
        uint64_t ref;
        if (parse_ip(probe_ips[i], &a) != 0)
            continue;
        rc = lookup_one(db, &a.sa, &ref);
        if (rc == MMDB_SUCCESS && ref != 0)
            rc = decode_record(db, (uint32_t)(ref - 1));
        if (rc != MMDB_SUCCESS)
            return ibp_err_set(err, IBP_E_CONFIG, "%s DB %s: lookup of %s: %s", role, path,
                               probe_ips[i], MMDB_strerror(rc));
    }
    return IBP_OK;
}

static ibp_status open_db(ibp_geo *geo, int src, const char *path, ibp_err *err)
{
    const char *role = src_names[src];
    struct stat sb;
    if (stat(path, &sb) != 0)
        return ibp_err_set(err, IBP_E_IO, "%s DB %s: %s: %s", role, path,
                           MMDB_strerror(MMDB_FILE_OPEN_ERROR), strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return ibp_err_set(err, IBP_E_IO, "%s DB %s: not a regular file", role, path);
    if (sb.st_size == 0) /* libmaxminddb would say "I/O error" (mmap of nothing) */
        return ibp_err_set(err, IBP_E_CONFIG, "%s DB %s: not a valid MaxMind DB: empty file", role,
                           path);
    errno = 0;
    int rc = MMDB_open(path, MMDB_MODE_MMAP, &geo->db[src]);
    if (rc == MMDB_FILE_OPEN_ERROR || rc == MMDB_IO_ERROR) {
        int e = errno;
        return ibp_err_set(err, IBP_E_IO, "%s DB %s: %s%s%s", role, path, MMDB_strerror(rc),
                           e ? ": " : "", e ? strerror(e) : "");
    }
    if (rc == MMDB_OUT_OF_MEMORY_ERROR)
        return ibp_err_set(err, IBP_E_NOMEM, "%s DB %s: %s", role, path, MMDB_strerror(rc));
    if (rc != MMDB_SUCCESS)
        return ibp_err_set(err, IBP_E_CONFIG, "%s DB %s: not a valid MaxMind DB: %s", role, path,
                           MMDB_strerror(rc));
    /* From here the database is mapped: close it on every error. */
    geo->open[src] = true;
    ibp_status st = check_db(&geo->db[src], role, path, err);
    if (st != IBP_OK)
        return st;
    const char *type = geo->db[src].metadata.database_type;
    type = type ? type : "";
    bool country_like =
        strstr(type, "City") || strstr(type, "Country") || strstr(type, "Enterprise");
    bool asn_like = strstr(type, "ASN") || strstr(type, "ISP") || strstr(type, "Enterprise");
    if ((src == SRC_ASN && !asn_like) || (src != SRC_ASN && !country_like))
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "database type does not look like a %s DB; lookups may find nothing role=%s "
                "path=%s type=%s",
                role, role, path, type);
    IBP_LOG(IBP_LOG_INFO, COMPONENT,
            "opened MaxMind DB role=%s path=%s type=%s build_epoch=%" PRIu64 " nodes=%" PRIu32,
            role, path, type, geo->db[src].metadata.build_epoch, geo->db[src].metadata.node_count);
    return IBP_OK;
}

static bool set(const char *path)
{
    return path && *path;
}

ibp_status ibp_geo_open(const ibp_geo_opts *opts, ibp_geo **out, ibp_err *err)
{
    if (!opts || !out)
        return ibp_err_set(err, IBP_E_INVAL, "geo: no options or no result pointer");
    ibp_geo *geo = calloc(1, sizeof *geo);
    if (!geo)
        return ibp_err_set(err, IBP_E_NOMEM, "geo: out of memory");
    const char *paths[4] = {NULL, opts->city_db, opts->country_db, opts->asn_db};
    for (int src = SRC_CITY; src <= SRC_ASN; src++) {
        if (!set(paths[src]))
            continue;
        ibp_status st = open_db(geo, src, paths[src], err);
        if (st != IBP_OK) {
            ibp_geo_close(geo);
            return st;
        }
    }
    if (!ibp_geo_enabled(geo))
        IBP_LOG(IBP_LOG_INFO, COMPONENT, "no MaxMind DB configured; every client counts as ??");
    *out = geo;
    return IBP_OK;
}

void ibp_geo_close(ibp_geo *geo)
{
    if (!geo)
        return;
    for (int src = SRC_CITY; src <= SRC_ASN; src++)
        if (geo->open[src])
            MMDB_close(&geo->db[src]);
    free(geo);
}

/* ---- lookups ------------------------------------------------------------------------------- */

ibp_status ibp_geo_lookup_ref(const ibp_geo *geo, const char *ip, ibp_geo_ref *out)
{
    addr a;
    uint64_t ref;
    ibp_status st = IBP_OK;
    out->country = out->asn = 0;
    if (parse_ip(ip, &a) != 0)
        return IBP_E_INVAL;
    if (!geo)
        return IBP_OK;
    if (geo->open[SRC_CITY]) {
        if (lookup_one(&geo->db[SRC_CITY], &a.sa, &ref) != MMDB_SUCCESS)
            st = IBP_E_IO;
        else if (ref)
            out->country = ((uint64_t)SRC_CITY << REF_SRC_SHIFT) | ref;
    }
    if (!out->country && geo->open[SRC_COUNTRY]) {
        if (lookup_one(&geo->db[SRC_COUNTRY], &a.sa, &ref) != MMDB_SUCCESS)
            st = IBP_E_IO;
        else if (ref)
            out->country = ((uint64_t)SRC_COUNTRY << REF_SRC_SHIFT) | ref;
    }
    if (geo->open[SRC_ASN]) {
        if (lookup_one(&geo->db[SRC_ASN], &a.sa, &ref) != MMDB_SUCCESS)
            st = IBP_E_IO;
        else if (ref)
            out->asn = ((uint64_t)SRC_ASN << REF_SRC_SHIFT) | ref;
    }
    return st;
}

/*
 * MMDB_get_value on the record of ref. Returns 1 with *data when the path holds
 * a value, 0 when it does not, -1 on a database error.
 */
static int get_value(const ibp_geo *geo, uint64_t ref, MMDB_entry_data_s *data, const char *k1,
                     const char *k2, const char *k3)
{
    int src = (int)(ref >> REF_SRC_SHIFT);
    uint64_t off = ref & REF_OFFSET_MASK;
    if (src < SRC_CITY || src > SRC_ASN || !geo->open[src] || off == 0 || off - 1 > UINT32_MAX)
        return -1;
    MMDB_entry_s entry = {.mmdb = &geo->db[src], .offset = (uint32_t)(off - 1)};
    int rc = MMDB_get_value(&entry, data, k1, k2, k3, NULL);
    if (rc == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR)
        return 0;
    if (rc != MMDB_SUCCESS)
        return -1;
    return data->has_data ? 1 : 0;
}

static void set_unknown_country(ibp_geo_info *out)
{
    memcpy(out->country_code, IBP_GEO_UNKNOWN_CODE, 3);
    strcpy(out->country_name, IBP_GEO_UNKNOWN_NAME);
}

static bool is_letter(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static ibp_status resolve_country(const ibp_geo *geo, uint64_t ref, ibp_geo_info *out)
{
    MMDB_entry_data_s data;
    set_unknown_country(out);
    if (ref == 0)
        return IBP_OK;
    /* The third key is NULL: MMDB_get_value stops at the first NULL. */
    int rc = get_value(geo, ref, &data, "country", "iso_code", NULL);
    if (rc < 0)
        return IBP_E_IO;
    if (rc == 0 || data.type != MMDB_DATA_TYPE_UTF8_STRING || data.data_size != 2 ||
        !is_letter(data.utf8_string[0]) || !is_letter(data.utf8_string[1]))
        return IBP_OK;
    out->country_code[0] = (char)(data.utf8_string[0] & ~0x20); /* ASCII upper case */
    out->country_code[1] = (char)(data.utf8_string[1] & ~0x20);
    out->country_name[0] = '\0';
    rc = get_value(geo, ref, &data, "country", "names", "en");
    if (rc < 0) {
        set_unknown_country(out);
        return IBP_E_IO;
    }
    if (rc > 0 && data.type == MMDB_DATA_TYPE_UTF8_STRING)
        geo_text_copy(out->country_name, IBP_GEO_TEXT_MAX, data.utf8_string, data.data_size);
    return IBP_OK;
}

static ibp_status resolve_asn(const ibp_geo *geo, uint64_t ref, ibp_geo_info *out)
{
    MMDB_entry_data_s data;
    out->asn[0] = out->network_name[0] = '\0';
    if (ref == 0)
        return IBP_OK;
    int rc = get_value(geo, ref, &data, "autonomous_system_number", NULL, NULL);
    if (rc < 0)
        return IBP_E_IO;
    uint64_t number = 0;
    bool have = rc > 0;
    if (have) {
        switch (data.type) {
        case MMDB_DATA_TYPE_UINT16:
            number = data.uint16;
            break;
        case MMDB_DATA_TYPE_UINT32:
            number = data.uint32;
            break;
        case MMDB_DATA_TYPE_INT32:
            have = data.int32 >= 0;
            number = have ? (uint64_t)data.int32 : 0;
            break;
        case MMDB_DATA_TYPE_UINT64:
            number = data.uint64;
            break;
        default:
            have = false;
        }
    }
    rc = get_value(geo, ref, &data, "autonomous_system_organization", NULL, NULL);
    if (rc < 0)
        return IBP_E_IO;
    if (have)
        snprintf(out->asn, sizeof out->asn, "AS%" PRIu64, number);
    if (rc > 0 && data.type == MMDB_DATA_TYPE_UTF8_STRING)
        geo_text_copy(out->network_name, IBP_GEO_TEXT_MAX, data.utf8_string, data.data_size);
    return IBP_OK;
}

ibp_status ibp_geo_resolve(const ibp_geo *geo, const ibp_geo_ref *ref, ibp_geo_info *out)
{
    if (!geo) {
        set_unknown_country(out);
        out->asn[0] = out->network_name[0] = '\0';
        return IBP_OK;
    }
    ibp_status st = resolve_country(geo, ref->country, out);
    ibp_status st2 = resolve_asn(geo, ref->asn, out);
    return st != IBP_OK ? st : st2;
}

ibp_status ibp_geo_lookup(const ibp_geo *geo, const char *ip, ibp_geo_info *out)
{
    ibp_geo_ref ref;
    ibp_status st = ibp_geo_lookup_ref(geo, ip, &ref);
    ibp_status st2 = ibp_geo_resolve(geo, &ref, out);
    return st != IBP_OK ? st : st2;
}
