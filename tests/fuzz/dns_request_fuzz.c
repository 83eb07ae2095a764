/*
 * Fuzz: the PowerDNS remote backend's requests. The input is one request as
 * PowerDNS would send it; it is parsed (ibp_dns_request_parse) and answered
 * by a backend over a small network with static records and an empty
 * official store (ibp_dns_backend_handle). Every answer must be
 * a JSON object with a "result" member, and a request the parser refuses
 * must be answered {"result":false}.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "ibp/dns_backend.h"

static const char members_json[] =
    "{\"A\": {\"Details\": {\"Name\": \"A\"}, \"Membership\": {\"MemberLevel\": 5},"
    " \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"10.0.0.1\", \"ServiceIPv6\": \"fd00::1\"},"
    " \"ServiceAssignments\": {\"P\": [\"P\"]}, \"Location\": {\"Latitude\": 1, \"Longitude\": 2}},"
    "\"B\": {\"Details\": {\"Name\": \"B\"}, \"Membership\": {\"MemberLevel\": 5},"
    " \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"10.0.0.2\"},"
    " \"ServiceAssignments\": {\"P\": [\"P\"]}}}";
static const char services_json[] =
    "{\"P\": {\"Configuration\": {\"Name\": \"P\", \"ServiceType\": \"RPC\", \"Active\": 1,"
    " \"LevelRequired\": 1}, \"Providers\": {\"I\": {\"RpcUrls\": [\"wss://rpc.fuzz.test/p\"]}}}}";
static const char static_json[] =
    "[{\"qname\": \"fuzz.test\", \"qtype\": \"NS\", \"content\": \"ns1.fuzz.test.\"},"
    " {\"qname\": \"www.fuzz.test\", \"qtype\": \"TXT\", \"content\": \"\\\"a\\\\\\\"b\\\"\"}]";

static ibp_dns_backend *backend;

static void init(void)
{
    static ibp_network *net;
    static ibp_store *store;
    static ibp_dns_zones *zones;
    static ibp_dns_selector *sel;
    ibp_err err = {0};
    ibp_log_set_hook(ibp_fuzz_quiet_log, NULL);
    ibp_dns_answer_opts ao;
    ibp_dns_answer_opts_init(&ao);
    ibp_dns_zones_opts zo;
    ibp_dns_zones_opts_init(&zo);
    zo.static_json = static_json;
    zo.static_len = strlen(static_json);
    if (ibp_network_load_buffers(members_json, strlen(members_json), services_json,
                                 strlen(services_json), NULL, 0, &net, &err) != IBP_OK ||
        ibp_store_new(NULL, &store) != IBP_OK)
        abort();
    zo.network = net;
    ibp_dns_backend_opts bo;
    ibp_dns_backend_opts_init(&bo);
    if (ibp_dns_zones_build(&zo, &zones, &err) != IBP_OK ||
        ibp_dns_selector_new(net, &ao, &sel, &err) != IBP_OK)
        abort();
    bo.zones = zones;
    bo.selector = sel;
    bo.store = store;
    bo.max_request_bytes = 8192;
    if (ibp_dns_backend_new(&bo, &backend, &err) != IBP_OK)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ibp_dns_buf out;
    if (!backend)
        init();
    ibp_dns_request r;
    ibp_dns_reject why = ibp_dns_request_parse((const char *)data, size, 8192, &r);
    ibp_dns_backend_handle(backend, (const char *)data, size, &out);
    json_error_t je;
    json_t *j = json_loadb(out.data, out.len, 0, &je);
    if (!j || !json_is_object(j) || !json_object_get(j, "result"))
        abort();
    if (why != IBP_DNS_REJECT_NONE && !json_is_false(json_object_get(j, "result")))
        abort();
    json_decref(j);

    /* jansson refuses numbers it cannot hold (long integers, huge exponents): skip those. */
    bool ascii = true, big_numbers = false, nul = false;
    size_t opens = 0, digits = 0;
    for (size_t i = 0; i < size; i++) {
        ascii = ascii && data[i] < 0x80 && data[i] != 0; /* jansson lets raw NULs pass */
        opens += data[i] == '{' || data[i] == '[';
        digits = data[i] >= '0' && data[i] <= '9' ? digits + 1 : 0;
        big_numbers = big_numbers || digits >= 16 ||
                      ((data[i] == 'e' || data[i] == 'E') && i > 0 &&
                       ((data[i - 1] >= '0' && data[i - 1] <= '9') || data[i - 1] == '.'));
        nul = nul || (i + 6 <= size && memcmp(data + i, "\\u0000", 6) == 0);
    }
    if (!ascii || big_numbers || size > 8192)
        return 0;
    /* Duplicate keys the parser does not read are no concern of it: plain JSON here. */
    json_t *ref = json_loadb((const char *)data, size, 0, &je);
    if (why != IBP_DNS_REJECT_MALFORMED && !ref)
        abort(); /* accepted what is not JSON */
    json_decref(ref);
    ref = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
    if (why == IBP_DNS_REJECT_MALFORMED && ref && json_is_object(ref) &&
        json_is_string(json_object_get(ref, "method")) && opens < 30 && !nul)
        abort(); /* refused good JSON */
    json_decref(ref);
    return 0;
}
