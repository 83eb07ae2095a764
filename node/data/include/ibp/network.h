/*
 * The IBP network configuration: members, services and the checks monitors
 * run, loaded from the upstream JSON files of the IBP network config
 * repository (ibp-network/config) and from our own checks file.
 *
 * Members file (upstream): an object keyed by member name.
 *     "Stake Plus": {
 *       "Details":    {"Name": "Stake Plus", "Website": "https://stake.plus", ...},  Name required
 *       "Membership": {"MemberLevel": 6, "Joined": 1672549200, "LastRankup": 1721209485},
 *                                                       MemberLevel required, 0..100
 *       "Service":    {"Active": 1, "ServiceIPv4": "192.96.202.175", "ServiceIPv6": "",
 *                      "MonitorUrl": "https://...", ...}                  Active required
 *       "ServiceAssignments": {"Polkadot": ["Polkadot", "Asset-Hub-Polkadot"], ...},
 *       "Location":   {"Region": "North America", "Latitude": 38.7777, "Longitude": -77.5474}
 *     }
 * Services file (upstream): an object keyed by service name.
 *     "Paseo": {
 *       "Configuration": {"Name": "Paseo", "ServiceType": "RPC", "Active": 1,
 *                         "LevelRequired": 3, "NetworkName": "Paseo Testnet", ...},
 *                         Name, ServiceType, Active and LevelRequired required
 *       "Resources": {...},
 *       "Providers": {"Ibp": {"RpcUrls": ["wss://paseo.ibp.network", ...]}, ...}
 *     }
 * In both upstream files, keys this loader does not use are ignored (the
 * upstream format grows), but every key it uses is type-checked. "Active"
 * flags are 0, 1, true or false. Optional strings may be absent or null.
 *
 * Checks file (ours): an object keyed by check name, or an array of check
 * objects each with a "Name". A check:
 *     {"Name": "wss",              string; optional in the keyed form, where it
 *                                  must equal the key; required in an array
 *      "Enabled": 1,               0, 1, true or false; default true
 *      "CheckType": "endpoint",    "site", "domain" or "endpoint" (any case); required
 *      "Timeout": 10,              seconds, 1..3600; default 10
 *      "MinimumInterval": 60,      seconds, 1..86400; default 60 ("minimumInterval" too)
 *      "ExtraOptions": {...}}      object, handed to the check as JSON text; default {}
 * Other keys in a check are errors (the file is ours, so a typo must not pass).
 *
 * Derived data: a member's services are the names in all its
 * ServiceAssignments lists, flattened (first occurrence kept). A service's
 * domains are the lower-case host names of its RPC URLs, distinct and sorted.
 * The network's domains are all of those, each with the RPC URLs on it and
 * the services that use it.
 *
 * Errors name the file, the key path and what is wrong, e.g.
 *     members.json: "Stake Plus".Service.Active: expected 0, 1, true or false, got string "1"
 * malformed JSON gives "members.json:3:14: <jansson's message>". Codes:
 * IBP_E_IO (cannot read), IBP_E_CONFIG (content), IBP_E_NOMEM, IBP_E_INVAL
 * (bad arguments).
 *
 * Thread safety: a loaded network is immutable; any number of threads may
 * read it and call the lookups concurrently. Every pointer returned by a
 * lookup lives as long as the network.
 */
#ifndef IBP_NETWORK_H
#define IBP_NETWORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/status.h"
#include "ibp/url.h" /* ibp_network_url, ibp_network_url_parse */

typedef enum ibp_network_check_type {
    IBP_NETWORK_CHECK_SITE,     /* about the member as a whole (its service IP) */
    IBP_NETWORK_CHECK_DOMAIN,   /* about one domain of the member */
    IBP_NETWORK_CHECK_ENDPOINT, /* about one RPC URL of the member */
} ibp_network_check_type;

/* Strings below are never NULL ("" when absent in the file). */

typedef struct ibp_network_member {
    char *name;         /* key in the members file */
    char *display_name; /* Details.Name */
    char *website;      /* Details.Website */
    int64_t level;      /* Membership.MemberLevel */
    int64_t joined;     /* Membership.Joined, unix seconds, 0 when absent */
    int64_t last_rankup;
    bool active;       /* Service.Active */
    char *ipv4;        /* Service.ServiceIPv4, a valid IPv4 address or "" */
    char *ipv6;        /* Service.ServiceIPv6, a valid IPv6 address or "" */
    char *monitor_url; /* Service.MonitorUrl */
    char *region;      /* Location.Region */
    bool has_location; /* Location.Latitude and Longitude both given */
    double latitude, longitude;
    char **services; /* flattened ServiceAssignments, distinct, in file order */
    size_t service_count;
} ibp_network_member;

typedef struct ibp_network_provider {
    char *name;      /* key in Providers */
    char **rpc_urls; /* as written in the file */
    size_t rpc_url_count;
} ibp_network_provider;

typedef struct ibp_network_service {
    char *name;  /* key in the services file */
    char *type;  /* Configuration.ServiceType: "RPC", "ETHRPC", ... */
    bool active; /* Configuration.Active */
    int64_t level_required;
    char *network_name; /* Configuration.NetworkName */
    ibp_network_provider *providers;
    size_t provider_count;
    char **domains; /* lower-case hosts of the RPC URLs, distinct, sorted */
    size_t domain_count;
} ibp_network_service;

typedef struct ibp_network_check {
    char *name;
    bool enabled;
    ibp_network_check_type type;
    int64_t timeout_s;
    int64_t min_interval_s;
    char *extra_options; /* compact JSON object text, "{}" when absent */
} ibp_network_check;

typedef struct ibp_network_domain {
    char *name;  /* lower-case host name (an IPv6 literal without brackets) */
    char **urls; /* RPC URLs on this host, distinct, in file order */
    size_t url_count;
    char **services; /* services with an RPC URL on this host, distinct, in file order */
    size_t service_count;
} ibp_network_domain;

typedef struct ibp_network ibp_network;

/*
 * Loads the three files. checks_path may be NULL (no checks). The paths are
 * borrowed and name the files in error messages. *out is set only on
 * success; the caller frees it with ibp_network_free(). Thread-safe.
 */
ibp_status ibp_network_load(const char *members_path, const char *services_path,
                            const char *checks_path, ibp_network **out, ibp_err *err);

/*
 * As ibp_network_load() for JSON text in memory (need not be NUL-terminated);
 * checks_json may be NULL. Messages name the sources "members", "services"
 * and "checks".
 */
ibp_status ibp_network_load_buffers(const char *members_json, size_t members_len,
                                    const char *services_json, size_t services_len,
                                    const char *checks_json, size_t checks_len, ibp_network **out,
                                    ibp_err *err);

/* Frees the network and everything it owns; accepts NULL. */
void ibp_network_free(ibp_network *net);

/* Members, services and checks in file order; _at returns NULL when i is out of range. */
size_t ibp_network_member_count(const ibp_network *net);
const ibp_network_member *ibp_network_member_at(const ibp_network *net, size_t i);
size_t ibp_network_service_count(const ibp_network *net);
const ibp_network_service *ibp_network_service_at(const ibp_network *net, size_t i);
size_t ibp_network_check_count(const ibp_network *net);
const ibp_network_check *ibp_network_check_at(const ibp_network *net, size_t i);

/* Lookups by exact (case-sensitive) name; NULL when absent. O(log n). */
const ibp_network_member *ibp_network_member_find(const ibp_network *net, const char *name);
const ibp_network_service *ibp_network_service_find(const ibp_network *net, const char *name);
const ibp_network_check *ibp_network_check_find(const ibp_network *net, const char *name);

/* Total number of RPC URLs over all services and providers (as written, not deduplicated). */
size_t ibp_network_rpc_url_count(const ibp_network *net);

/* True when the service name is in any of the member's ServiceAssignments lists. */
bool ibp_network_member_serves(const ibp_network_member *member, const char *service);

/* All distinct domains, sorted; _at returns NULL when i is out of range. */
size_t ibp_network_domain_count(const ibp_network *net);
const ibp_network_domain *ibp_network_domain_at(const ibp_network *net, size_t i);

/*
 * The domain with this host name (compared case-insensitively, one trailing
 * dot ignored), with its endpoint URLs and services; NULL when absent.
 */
const ibp_network_domain *ibp_network_domain_find(const ibp_network *net, const char *domain);

/* True when the member serves any service that has an RPC URL on domain. */
bool ibp_network_member_serves_domain(const ibp_network *net, const ibp_network_member *member,
                                      const char *domain);

/* "site", "domain", "endpoint" ("?" for anything else). */
const char *ibp_network_check_type_name(ibp_network_check_type type);

#endif
