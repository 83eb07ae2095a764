/*
 * Fuzz: the network config (ibp_network_load_buffers). The input is
 * members.json, services.json and, optionally, checks.json separated by NUL
 * bytes; without a second NUL there are no checks (checks_json NULL).
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "ibp/network.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialised;
    if (!initialised) {
        ibp_log_set_hook(ibp_fuzz_quiet_log, NULL);
        initialised = 1;
    }
    const char *text = (const char *)data;
    const char *end = text + size;
    const char *nul1 = memchr(text, '\0', size);
    const char *members = text, *services = "", *checks = NULL;
    size_t members_len = size, services_len = 0, checks_len = 0;
    if (nul1) {
        members_len = (size_t)(nul1 - text);
        services = nul1 + 1;
        services_len = (size_t)(end - services);
        const char *nul2 = memchr(services, '\0', services_len);
        if (nul2) {
            services_len = (size_t)(nul2 - services);
            checks = nul2 + 1;
            checks_len = (size_t)(end - checks);
        }
    }
    ibp_network *net = NULL;
    ibp_err err;
    if (ibp_network_load_buffers(members, members_len, services, services_len, checks, checks_len,
                                 &net, &err) != IBP_OK)
        return 0;
    /* Walk what was loaded: every lookup finds what the listing holds. */
    for (size_t i = 0; i < ibp_network_member_count(net); i++) {
        const ibp_network_member *m = ibp_network_member_at(net, i);
        if (!m || ibp_network_member_find(net, m->name) == NULL)
            abort();
    }
    for (size_t i = 0; i < ibp_network_service_count(net); i++) {
        const ibp_network_service *s = ibp_network_service_at(net, i);
        if (!s || ibp_network_service_find(net, s->name) == NULL)
            abort();
    }
    for (size_t i = 0; i < ibp_network_check_count(net); i++) {
        const ibp_network_check *c = ibp_network_check_at(net, i);
        if (!c || ibp_network_check_find(net, c->name) == NULL)
            abort();
    }
    (void)ibp_network_rpc_url_count(net);
    for (size_t i = 0; i < ibp_network_domain_count(net); i++)
        if (!ibp_network_domain_at(net, i))
            abort();
    ibp_network_free(net);
    return 0;
}
