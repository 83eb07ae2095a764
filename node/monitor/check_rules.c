/* Pass/fail rules and response reading of the check modules (see ibp/check_rules.h). Pure. */
#include "ibp/check_rules.h"

#include <ctype.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

static bool down(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool down(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (cap)
        vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return false;
}

static bool up(char *why, size_t cap)
{
    if (cap)
        why[0] = '\0';
    return true;
}

static char *dump(json_t *obj)
{
    char *s =
        obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(obj);
    return s;
}

/* ---- ping ---------------------------------------------------------------- */

void ibp_ping_stats_make(const double *rtt_ms, size_t received, size_t sent, ibp_ping_stats *out)
{
    memset(out, 0, sizeof *out);
    out->sent = (int64_t)sent;
    out->received = (int64_t)(received > sent ? sent : received);
    out->loss_pct = sent ? 100.0 * (double)(out->sent - out->received) / (double)sent : 100.0;
    double sum = 0;
    for (size_t i = 0; i < (size_t)out->received; i++) {
        if (i == 0 || rtt_ms[i] < out->min_ms)
            out->min_ms = rtt_ms[i];
        if (rtt_ms[i] > out->max_ms)
            out->max_ms = rtt_ms[i];
        sum += rtt_ms[i];
    }
    out->avg_ms = out->received ? sum / (double)out->received : 0;
}

bool ibp_ping_judge(const ibp_check_params *p, const ibp_ping_stats *s, char *why, size_t cap)
{
    if (s->received == 0)
        return down(why, cap, "ping: no reply to %" PRId64 " echo requests", s->sent);
    if (s->loss_pct > p->max_packet_loss_pct)
        return down(why, cap,
                    "ping: packet loss %.1f%% over %.1f%% (%" PRId64 " of %" PRId64 " replies)",
                    s->loss_pct, p->max_packet_loss_pct, s->received, s->sent);
    if (s->avg_ms > (double)p->max_latency_ms)
        return down(why, cap, "ping: average round trip %.1f ms over %" PRId64 " ms", s->avg_ms,
                    p->max_latency_ms);
    return up(why, cap);
}

char *ibp_ping_data(const ibp_ping_stats *s)
{
    return dump(json_pack("{s:I,s:I,s:f,s:f,s:f,s:f}", "sent", (json_int_t)s->sent, "received",
                          (json_int_t)s->received, "loss", s->loss_pct, "min_rtt_ms", s->min_ms,
                          "avg_rtt_ms", s->avg_ms, "max_rtt_ms", s->max_ms));
}

/* ---- ssl ----------------------------------------------------------------- */

int64_t ibp_ssl_days_until(int64_t not_after_s, int64_t now_s)
{
    int64_t d = not_after_s - now_s;
    return d >= 0 ? d / 86400 : -((-d + 86399) / 86400);
}

bool ibp_ssl_judge(const ibp_check_params *p, const ibp_ssl_facts *f, int64_t now_s, char *why,
                   size_t cap)
{
    int64_t days = ibp_ssl_days_until(f->not_after_s, now_s);
    if (days < 0)
        return down(why, cap, "ssl: certificate expired %" PRId64 " days ago", -days);
    if (days < p->min_days_until_expiry)
        return down(why, cap,
                    "ssl: certificate expires in %" PRId64 " days (fewer than %" PRId64 ")", days,
                    p->min_days_until_expiry);
    return up(why, cap);
}

char *ibp_ssl_data(const ibp_ssl_facts *f, int64_t now_s)
{
    return dump(json_pack("{s:I,s:I,s:I,s:s,s:s}", "ExpiryTimestamp", (json_int_t)f->not_after_s,
                          "DaysUntilExpiry", (json_int_t)ibp_ssl_days_until(f->not_after_s, now_s),
                          "Port", (json_int_t)f->port, "Issuer", f->issuer, "Subject", f->subject));
}

/* ---- JSON-RPC ------------------------------------------------------------ */

bool ibp_jsonrpc_read(const char *body, size_t len, int64_t id, json_t **result, char *why,
                      size_t cap)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    bool ok = false;
    if (!root) {
        down(why, cap, "not JSON: %s", jerr.text);
    } else if (!json_is_object(root)) {
        down(why, cap, "not a JSON-RPC response (not an object)");
    } else {
        json_t *jid = json_object_get(root, "id");
        json_t *e = json_object_get(root, "error");
        json_t *r = json_object_get(root, "result");
        if (!json_is_integer(jid) || json_integer_value(jid) != id) {
            down(why, cap, "response to another request (id %s, want %" PRId64 ")",
                 json_is_integer(jid) ? "other" : "missing", id);
        } else if (e) {
            json_t *m = json_object_get(e, "message");
            down(why, cap, "error %" JSON_INTEGER_FORMAT ": %.200s",
                 json_integer_value(json_object_get(e, "code")),
                 json_is_string(m) ? json_string_value(m) : "(no message)");
        } else if (!r) {
            down(why, cap, "response without a result");
        } else {
            *result = json_incref(r);
            ok = up(why, cap);
        }
    }
    json_decref(root);
    return ok;
}

int ibp_jsonrpc_request(char *buf, size_t cap, int64_t id, const char *method,
                        const char *params_json)
{
    return snprintf(buf, cap,
                    "{\"jsonrpc\":\"2.0\",\"id\":%" PRId64 ",\"method\":\"%s\",\"params\":%s}", id,
                    method, params_json ? params_json : "[]");
}

/* ---- wss (Substrate) ----------------------------------------------------- */

static bool hex_hash(const json_t *v)
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (!s || strncmp(s, "0x", 2) != 0 || !s[2])
        return false;
    for (s += 2; *s; s++)
        if (!isxdigit((unsigned char)*s))
            return false;
    return true;
}

bool ibp_substrate_take(ibp_substrate_facts *f, const char *method, bool genesis,
                        const json_t *result, char *why, size_t cap)
{
    if (strcmp(method, "chain_getBlockHash") == 0) {
        if (!hex_hash(result))
            return down(why, cap, "chain_getBlockHash(%s): no block hash", genesis ? "0" : "");
        char *dst = genesis ? f->genesis_hash : f->latest_hash;
        snprintf(dst, IBP_CHECK_TEXT_MAX, "%s", json_string_value(result));
        *(genesis ? &f->have_genesis : &f->have_latest) = true;
        return up(why, cap);
    }
    if (strcmp(method, "chain_getHeader") == 0) {
        json_t *sr = json_is_object(result) ? json_object_get(result, "stateRoot") : NULL;
        if (!hex_hash(sr))
            return down(why, cap, "chain_getHeader: no stateRoot");
        snprintf(f->state_root, sizeof f->state_root, "%s", json_string_value(sr));
        f->have_state_root = true;
        return up(why, cap);
    }
    if (strcmp(method, "system_chain") == 0) {
        if (!json_is_string(result))
            return down(why, cap, "system_chain: not a string");
        snprintf(f->chain, sizeof f->chain, "%s", json_string_value(result));
        f->have_chain = true;
        return up(why, cap);
    }
    if (strcmp(method, "system_health") == 0) {
        json_t *peers = json_is_object(result) ? json_object_get(result, "peers") : NULL;
        json_t *sync = json_is_object(result) ? json_object_get(result, "isSyncing") : NULL;
        if (!json_is_integer(peers) || !json_is_boolean(sync))
            return down(why, cap, "system_health: expected peers and isSyncing");
        f->peers = json_integer_value(peers);
        f->syncing = json_is_true(sync);
        f->have_health = true;
        return up(why, cap);
    }
    return down(why, cap, "%s: not a call of this check", method);
}

static const char *want_network(const ibp_check_params *p, const char *network_name)
{
    if (p->network_name[0])
        return p->network_name;
    return network_name ? network_name : "";
}

bool ibp_substrate_judge(const ibp_check_params *p, const char *network_name,
                         const ibp_substrate_facts *f, char *why, size_t cap)
{
    const char *want = want_network(p, network_name);
    if (!f->have_latest || !f->latest_hash[0])
        return down(why, cap, "wss: no latest block hash");
    if (p->check_archive && (!f->have_genesis || !f->genesis_hash[0]))
        return down(why, cap, "wss: not an archive node (no hash of block 0)");
    if (p->genesis_state_root[0] &&
        (!f->have_state_root || strcasecmp(f->state_root, p->genesis_state_root) != 0))
        return down(why, cap, "wss: genesis state root %s, want %s",
                    f->have_state_root ? f->state_root : "(none)", p->genesis_state_root);
    if (!f->have_chain)
        return down(why, cap, "wss: no answer to system_chain");
    if (want[0] && strcasecmp(f->chain, want) != 0)
        return down(why, cap, "wss: wrong chain \"%.100s\", want \"%.100s\"", f->chain, want);
    if (!f->have_health)
        return down(why, cap, "wss: no answer to system_health");
    if (f->syncing)
        return down(why, cap, "wss: node is syncing");
    if (f->peers < p->minimum_peers)
        return down(why, cap, "wss: %" PRId64 " peers, fewer than %" PRId64, f->peers,
                    p->minimum_peers);
    return up(why, cap);
}

char *ibp_substrate_data(const ibp_substrate_facts *f)
{
    return dump(json_pack("{s:b,s:I,s:s,s:b,s:s,s:I}", "Syncing", f->syncing, "Peers",
                          (json_int_t)f->peers, "Network", f->chain, "Archive", f->have_genesis,
                          "BlockHash", f->latest_hash, "LatencyMs", (json_int_t)f->latency_ms));
}

/* ---- ethrpc -------------------------------------------------------------- */

static bool hex_quantity(const json_t *v, uint64_t *out)
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (!s || strncmp(s, "0x", 2) != 0 || !s[2] || strlen(s) > 18)
        return false;
    uint64_t n = 0;
    for (s += 2; *s; s++) {
        int c = tolower((unsigned char)*s);
        if (!isxdigit(c))
            return false;
        n = n * 16 + (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    *out = n;
    return true;
}

bool ibp_eth_take(ibp_eth_facts *f, const char *method, const json_t *result, char *why, size_t cap)
{
    if (strcmp(method, "eth_chainId") == 0) {
        if (!hex_quantity(result, &f->chain_id))
            return down(why, cap, "eth_chainId: not a hex quantity");
        f->have_chain_id = true;
    } else if (strcmp(method, "eth_blockNumber") == 0) {
        if (!hex_quantity(result, &f->block_number))
            return down(why, cap, "eth_blockNumber: not a hex quantity");
        f->have_block = true;
    } else if (strcmp(method, "net_version") == 0) {
        const char *s = json_is_string(result) ? json_string_value(result) : NULL;
        if (!s || !*s || strlen(s) >= sizeof f->net_version || strspn(s, "0123456789") != strlen(s))
            return down(why, cap, "net_version: not a decimal string");
        snprintf(f->net_version, sizeof f->net_version, "%s", s);
        f->have_net_version = true;
    } else if (strcmp(method, "eth_syncing") == 0) {
        if (!json_is_false(result) && !json_is_object(result) && !json_is_true(result))
            return down(why, cap, "eth_syncing: expected false or an object");
        f->syncing = !json_is_false(result);
        f->have_syncing = true;
    } else {
        return down(why, cap, "%s: not a call of this check", method);
    }
    return up(why, cap);
}

bool ibp_eth_judge(const ibp_check_params *p, const char *network_name, const ibp_eth_facts *f,
                   char *why, size_t cap)
{
    const char *want = want_network(p, network_name);
    if (!f->have_chain_id || !f->have_block || !f->have_net_version || !f->have_syncing)
        return down(why, cap,
                    "ethrpc: missing answers (chainId %d, blockNumber %d, net_version "
                    "%d, syncing %d)",
                    f->have_chain_id, f->have_block, f->have_net_version, f->have_syncing);
    if (f->syncing)
        return down(why, cap, "ethrpc: node is syncing");
    if (want[0]) {
        char dec[32], hex[32];
        snprintf(dec, sizeof dec, "%" PRIu64, f->chain_id);
        snprintf(hex, sizeof hex, "0x%" PRIx64, f->chain_id);
        if (strcasecmp(want, f->net_version) != 0 && strcasecmp(want, dec) != 0 &&
            strcasecmp(want, hex) != 0)
            return down(why, cap,
                        "ethrpc: wrong network: net_version %s, chain id %s, want \"%.100s\"",
                        f->net_version, dec, want);
    }
    return up(why, cap);
}

char *ibp_eth_data(const ibp_eth_facts *f)
{
    return dump(json_pack("{s:I,s:I,s:s,s:b,s:I}", "ChainId", (json_int_t)f->chain_id,
                          "BlockNumber", (json_int_t)f->block_number, "NetVersion", f->net_version,
                          "Syncing", f->syncing, "LatencyMs", (json_int_t)f->latency_ms));
}
