/* The keys a config wants voted (see ibp/check_keyset.h). */
#include "ibp/check_keyset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *key_text(ibp_check_type type, const char *check, const char *member,
                      const char *domain, const char *endpoint, bool ipv6)
{
    size_t n = strlen(check) + strlen(member) + strlen(domain) + strlen(endpoint) + 16;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%d\x1f%s\x1f%s\x1f%s\x1f%s\x1f%d", (int)type, check, member, domain,
                 endpoint, ipv6);
    return s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void ibp_check_keyset_free(ibp_check_keyset *s)
{
    if (!s)
        return;
    free_strs(s->keys, s->key_count);
    free_strs(s->checks, s->check_count);
    memset(s, 0, sizeof *s);
}

ibp_status ibp_check_keyset_build(const ibp_check_plan *plan, const ibp_network *net,
                                  ibp_check_keyset *out)
{
    ibp_check_keyset s = {0};
    size_t nc = ibp_network_check_count(net);
    s.keys = calloc(plan->count + 1, sizeof *s.keys);
    s.checks = calloc(nc + 1, sizeof *s.checks);
    if (!s.keys || !s.checks)
        goto nomem;
    for (; s.key_count < plan->count; s.key_count++) {
        const ibp_check_target *t = plan->targets[s.key_count];
        if (!(s.keys[s.key_count] =
                  key_text(t->type, t->check, t->member, t->domain, t->endpoint, t->ipv6)))
            goto nomem;
    }
    qsort(s.keys, s.key_count, sizeof *s.keys, cmp_str);
    for (size_t i = 0; i < nc; i++) {
        const ibp_network_check *chk = ibp_network_check_at(net, i);
        if (!chk->enabled)
            continue;
        if (!(s.checks[s.check_count] = strdup(chk->name)))
            goto nomem;
        s.check_count++;
    }
    qsort(s.checks, s.check_count, sizeof *s.checks, cmp_str);
    *out = s;
    return IBP_OK;
nomem:
    ibp_check_keyset_free(&s);
    return IBP_E_NOMEM;
}

bool ibp_check_keyset_wants(const ibp_check_keyset *s, const ibp_result *r)
{
    const char *name = r->check_name;
    if (!bsearch(&name, s->checks, s->check_count, sizeof *s->checks, cmp_str))
        return true;
    char *k = key_text(r->type, r->check_name, r->member, r->domain, r->endpoint, r->ipv6);
    if (!k)
        return true;
    bool want = bsearch(&k, s->keys, s->key_count, sizeof *s->keys, cmp_str) != NULL;
    free(k);
    return want;
}
