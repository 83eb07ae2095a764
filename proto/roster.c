/* The roster of nodes, keys and roles; see ibp/roster.h. */
#include "ibp/roster.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/atomic_file.h"
#include "ibp/vec.h"

#define ROSTER_FILE_MAX (4u * 1024u * 1024u)
#define ROSTER_VERSION 1

struct ibp_roster {
    ibp_roster_node *nodes; /* sorted by id, for bsearch */
    size_t count;
    size_t cap;
};

static const struct {
    unsigned bit;
    const char *name;
} role_names[] = {
    {IBP_ROLE_MONITOR, "monitor"}, {IBP_ROLE_CONSENSUS, "consensus"}, {IBP_ROLE_DNS, "dns"},
    {IBP_ROLE_PERSIST, "persist"}, {IBP_ROLE_ADMIN, "admin"},
};
#define ROLE_COUNT (sizeof role_names / sizeof role_names[0])

int ibp_node_id_valid(const char *id)
{
    if (!id || !*id)
        return 0;
    size_t n = 0;
    for (const char *p = id; *p; p++, n++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-';
        if (!ok || n >= IBP_NODE_ID_MAX)
            return 0;
    }
    return 1;
}

unsigned ibp_role_parse(const char *name)
{
    for (size_t i = 0; name && i < ROLE_COUNT; i++)
        if (strcmp(name, role_names[i].name) == 0)
            return role_names[i].bit;
    return 0;
}

const char *ibp_role_name(unsigned role)
{
    for (size_t i = 0; i < ROLE_COUNT; i++)
        if (role_names[i].bit == role)
            return role_names[i].name;
    return "?";
}

ibp_status ibp_roles_parse_list(const char *list, unsigned *roles_out, ibp_err *err)
{
    unsigned roles = 0;
    const char *p = list ? list : "";
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char word[32];
        if (n == 0 || n >= sizeof word)
            return ibp_err_set(err, IBP_E_CONFIG, "role list '%s': empty or overlong role", list);
        memcpy(word, p, n);
        word[n] = '\0';
        unsigned bit = ibp_role_parse(word);
        if (!bit)
            return ibp_err_set(err, IBP_E_CONFIG,
                               "unknown role '%s' (expected monitor, consensus, dns, persist or "
                               "admin)",
                               word);
        roles |= bit;
        p += n;
        if (*p == ',')
            p++;
    }
    if (!roles)
        return ibp_err_set(err, IBP_E_CONFIG, "role list is empty");
    *roles_out = roles;
    return IBP_OK;
}

void ibp_roles_format(unsigned roles, char *buf, size_t cap)
{
    size_t used = 0;
    if (cap == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < ROLE_COUNT; i++) {
        if (!(roles & role_names[i].bit))
            continue;
        int n = snprintf(buf + used, cap - used, "%s%s", used ? "," : "", role_names[i].name);
        if (n < 0 || (size_t)n >= cap - used)
            return;
        used += (size_t)n;
    }
}

ibp_status ibp_roster_new(ibp_roster **out)
{
    ibp_roster *r = calloc(1, sizeof *r);
    if (!r)
        return IBP_E_NOMEM;
    *out = r;
    return IBP_OK;
}

static int cmp_node(const void *key, const void *elem)
{
    return strcmp(key, ((const ibp_roster_node *)elem)->id);
}

const ibp_roster_node *ibp_roster_find(const ibp_roster *r, const char *id)
{
    if (!r || !id || r->count == 0)
        return NULL;
    return bsearch(id, r->nodes, r->count, sizeof r->nodes[0], cmp_node);
}

ibp_status ibp_roster_add(ibp_roster *r, const char *id, const uint8_t pk[IBP_PUBKEY_BYTES],
                          unsigned roles, ibp_err *err)
{
    if (!r || !pk)
        return ibp_err_set(err, IBP_E_INVAL, "roster add: no roster or key");
    if (!ibp_node_id_valid(id))
        return ibp_err_set(err, IBP_E_INVAL, "node id '%s' is not 1-%d characters of [A-Za-z0-9_-]",
                           id ? id : "(null)", IBP_NODE_ID_MAX);
    if ((roles & IBP_ROLE_ALL) == 0 || (roles & ~IBP_ROLE_ALL))
        return ibp_err_set(err, IBP_E_INVAL, "node '%s': no valid roles", id);
    if (ibp_roster_find(r, id))
        return ibp_err_set(err, IBP_E_EXISTS, "node '%s' is already in the roster", id);
    ibp_roster_node *nn = ibp_grow(r->nodes, &r->cap, r->count + 1, sizeof *nn);
    if (!nn)
        return ibp_err_set(err, IBP_E_NOMEM, "roster add: out of memory");
    r->nodes = nn;
    size_t pos = 0;
    while (pos < r->count && strcmp(r->nodes[pos].id, id) < 0)
        pos++;
    memmove(&r->nodes[pos + 1], &r->nodes[pos], (r->count - pos) * sizeof r->nodes[0]);
    ibp_roster_node *n = &r->nodes[pos];
    memset(n, 0, sizeof *n);
    strcpy(n->id, id);
    memcpy(n->pk, pk, IBP_PUBKEY_BYTES);
    n->roles = roles;
    r->count++;
    return IBP_OK;
}

size_t ibp_roster_count(const ibp_roster *r)
{
    return r ? r->count : 0;
}

const ibp_roster_node *ibp_roster_at(const ibp_roster *r, size_t i)
{
    return (r && i < r->count) ? &r->nodes[i] : NULL;
}

void ibp_roster_free(ibp_roster *r)
{
    if (!r)
        return;
    free(r->nodes);
    free(r);
}

ibp_status ibp_roster_set_nats_nkey(ibp_roster *r, const char *id, const char *nkey, ibp_err *err)
{
    ibp_roster_node *n = r ? (ibp_roster_node *)ibp_roster_find(r, id) : NULL;
    if (!n)
        return ibp_err_set(err, IBP_E_NOT_FOUND, "node '%s' is not in the roster",
                           id ? id : "(null)");
    if (!nkey || !*nkey) {
        n->nats_nkey[0] = '\0';
        return IBP_OK;
    }
    ibp_status st = ibp_nkey_decode_user_public(nkey, NULL, err);
    if (st != IBP_OK)
        return ibp_err_wrap(err, "node '%s'.nats_nkey", id);
    for (size_t i = 0; i < r->count; i++)
        if (&r->nodes[i] != n && strcmp(r->nodes[i].nats_nkey, nkey) == 0)
            return ibp_err_set(err, IBP_E_EXISTS,
                               "node '%s'.nats_nkey: node '%s' has the same one; each node needs "
                               "a NATS identity of its own",
                               id, r->nodes[i].id);
    memcpy(n->nats_nkey, nkey, IBP_NKEY_PUBLIC_SIZE);
    return IBP_OK;
}

static ibp_status load_node(ibp_roster *r, const char *path, size_t idx, json_t *jn, ibp_err *err)
{
    if (!json_is_object(jn))
        return ibp_err_set(err, IBP_E_CONFIG, "%s: nodes[%zu]: expected an object", path, idx);
    json_t *jid = json_object_get(jn, "id");
    json_t *jpk = json_object_get(jn, "public_key");
    json_t *jroles = json_object_get(jn, "roles");
    json_t *jnkey = json_object_get(jn, "nats_nkey");
    const char *key;
    json_t *val;
    json_object_foreach(jn, key, val)
    {
        if (strcmp(key, "id") && strcmp(key, "public_key") && strcmp(key, "roles") &&
            strcmp(key, "nats_nkey"))
            return ibp_err_set(err, IBP_E_CONFIG, "%s: nodes[%zu]: unknown key '%s'", path, idx,
                               key);
    }
    if (!json_is_string(jid))
        return ibp_err_set(err, IBP_E_CONFIG, "%s: nodes[%zu].id: expected a string", path, idx);
    const char *id = json_string_value(jid);
    if (!ibp_node_id_valid(id))
        return ibp_err_set(err, IBP_E_CONFIG,
                           "%s: nodes[%zu].id: '%s' is not 1-%d characters of [A-Za-z0-9_-]", path,
                           idx, id, IBP_NODE_ID_MAX);
    uint8_t pk[IBP_PUBKEY_BYTES];
    if (!json_is_string(jpk) || ibp_key_public_parse(json_string_value(jpk), pk) != IBP_OK)
        return ibp_err_set(err, IBP_E_CONFIG,
                           "%s: node '%s'.public_key: expected base64 of a 32-byte Ed25519 key",
                           path, id);
    if (!json_is_array(jroles) || json_array_size(jroles) == 0)
        return ibp_err_set(err, IBP_E_CONFIG,
                           "%s: node '%s'.roles: expected a non-empty array of role names", path,
                           id);
    unsigned roles = 0;
    size_t i;
    json_t *jr;
    json_array_foreach(jroles, i, jr)
    {
        unsigned bit = json_is_string(jr) ? ibp_role_parse(json_string_value(jr)) : 0;
        if (!bit)
            return ibp_err_set(err, IBP_E_CONFIG,
                               "%s: node '%s'.roles[%zu]: expected one of monitor, consensus, "
                               "dns, persist, admin",
                               path, id, i);
        roles |= bit;
    }
    if (jnkey && !json_is_string(jnkey))
        return ibp_err_set(err, IBP_E_CONFIG,
                           "%s: node '%s'.nats_nkey: expected a string (a public user nkey "
                           "'U...')",
                           path, id);
    ibp_status st = ibp_roster_add(r, id, pk, roles, err);
    if (st == IBP_E_EXISTS)
        return ibp_err_set(err, IBP_E_CONFIG, "%s: node '%s' is listed twice", path, id);
    if (st != IBP_OK)
        return ibp_err_wrap(err, "%s", path);
    if (jnkey && ibp_roster_set_nats_nkey(r, id, json_string_value(jnkey), err) != IBP_OK) {
        ibp_err_wrap(err, "%s", path);
        if (err)
            err->code = IBP_E_CONFIG;
        return IBP_E_CONFIG;
    }
    return IBP_OK;
}

ibp_status ibp_roster_load(const char *path, ibp_roster **out, ibp_err *err)
{
    char *text = NULL;
    size_t len = 0;
    json_t *root = NULL;
    ibp_roster *r = NULL;
    ibp_status st = ibp_file_read_all(path, ROSTER_FILE_MAX, &text, &len, err);
    if (st != IBP_OK)
        return st == IBP_E_NOT_FOUND
                   ? ibp_err_set(err, IBP_E_CONFIG, "%s: roster file not found", path)
                   : st;
    json_error_t jerr;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        st =
            ibp_err_set(err, IBP_E_CONFIG, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        goto done;
    }
    if (!json_is_object(root)) {
        st = ibp_err_set(err, IBP_E_CONFIG, "%s: expected a JSON object at the top", path);
        goto done;
    }
    json_t *jver = json_object_get(root, "version");
    if (!json_is_integer(jver) || json_integer_value(jver) != ROSTER_VERSION) {
        st = ibp_err_set(err, IBP_E_CONFIG, "%s: version: expected %d", path, ROSTER_VERSION);
        goto done;
    }
    json_t *jnodes = json_object_get(root, "nodes");
    if (!json_is_array(jnodes)) {
        st = ibp_err_set(err, IBP_E_CONFIG, "%s: nodes: expected an array", path);
        goto done;
    }
    if ((st = ibp_roster_new(&r)) != IBP_OK) {
        ibp_err_set(err, st, "%s: out of memory", path);
        goto done;
    }
    size_t i;
    json_t *jn;
    json_array_foreach(jnodes, i, jn)
    {
        if ((st = load_node(r, path, i, jn, err)) != IBP_OK)
            goto done;
    }
    *out = r;
    r = NULL;
done:
    ibp_roster_free(r);
    json_decref(root);
    free(text);
    return st;
}

ibp_status ibp_roster_save(const ibp_roster *r, const char *path, ibp_err *err)
{
    ibp_status st = IBP_E_NOMEM;
    char *text = NULL;
    json_t *root = json_pack("{s:i,s:[]}", "version", ROSTER_VERSION, "nodes");
    if (!root)
        goto nomem;
    json_t *jnodes = json_object_get(root, "nodes");
    for (size_t i = 0; i < r->count; i++) {
        const ibp_roster_node *n = &r->nodes[i];
        char b64[IBP_PUBKEY_B64_SIZE];
        ibp_key_public_b64(n->pk, b64);
        json_t *jroles = json_array();
        if (!jroles)
            goto nomem;
        for (size_t k = 0; k < ROLE_COUNT; k++)
            if (n->roles & role_names[k].bit)
                json_array_append_new(jroles, json_string(role_names[k].name));
        json_t *jn = json_pack("{s:s,s:s,s:o}", "id", n->id, "public_key", b64, "roles", jroles);
        if (!jn || json_array_append_new(jnodes, jn) != 0)
            goto nomem;
        if (n->nats_nkey[0] && json_object_set_new(jn, "nats_nkey", json_string(n->nats_nkey)))
            goto nomem;
    }
    text = json_dumps(root, JSON_INDENT(2));
    if (!text)
        goto nomem;
    size_t len = strlen(text);
    text[len] = '\0';
    st = ibp_file_write_atomic(path, text, len, 0644, err);
    goto done;
nomem:
    ibp_err_set(err, IBP_E_NOMEM, "%s: out of memory", path);
done:
    free(text);
    json_decref(root);
    return st;
}
