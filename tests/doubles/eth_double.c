/* The Ethereum double: JSON-RPC over HTTPS POST (after the TLS of tls_double.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "double_conn.h"

#define BUF_CAP 65536

static char *answer(const ibp_double_behaviour *b, const char *body, size_t len)
{
    json_t *req = json_loadb(body, len, 0, NULL);
    json_t *id = json_object_get(req, "id");
    const char *method = json_string_value(json_object_get(req, "method"));
    char hex[32];
    json_t *result = NULL;
    if (!method) {
        result = NULL;
    } else if (strcmp(method, "eth_chainId") == 0) {
        snprintf(hex, sizeof hex, "0x%" PRIx64, b->chain_id);
        result = json_string(hex);
    } else if (strcmp(method, "eth_blockNumber") == 0) {
        snprintf(hex, sizeof hex, "0x%" PRIx64, b->block_number);
        result = json_string(hex);
    } else if (strcmp(method, "net_version") == 0) {
        snprintf(hex, sizeof hex, "%" PRIu64, b->chain_id);
        result = json_string(hex);
    } else if (strcmp(method, "eth_syncing") == 0) {
        result = b->syncing ? json_pack("{s:s,s:s,s:s}", "startingBlock", "0x0", "currentBlock",
                                        "0x1", "highestBlock", "0x1b4")
                            : json_false();
    }
    json_t *resp =
        result ? json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id ? id : json_null(), "result",
                           result)
               : json_pack("{s:s,s:O,s:{s:i,s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null(),
                           "error", "code", -32601, "message", "Method not found");
    char *s = json_dumps(resp, JSON_COMPACT);
    json_decref(resp);
    json_decref(req);
    return s;
}

void ibp_double_serve_eth(dconn *c)
{
    char *buf = malloc(BUF_CAP + 1);
    if (!buf)
        return;
    size_t have = 0;
    for (;;) {
        long hl = ibp_test_dconn_read_head(c, buf, BUF_CAP, &have);
        if (hl < 0)
            break;
        char cl[32], host[256], path[256] = "";
        ibp_test_dconn_header(buf, "Content-Length", cl, sizeof cl);
        ibp_test_dconn_header(buf, "Host", host, sizeof host);
        sscanf(buf, "POST %255s", path);
        ibp_double_note(c->d, host, path);
        size_t body_len = (size_t)strtoul(cl, NULL, 10);
        if (body_len > BUF_CAP - (size_t)hl)
            break;
        while (have < (size_t)hl + body_len) {
            long got = ibp_test_dconn_read(c, buf + have, BUF_CAP - have);
            if (got <= 0)
                goto out;
            have += (size_t)got;
        }
        ibp_double_behaviour b;
        ibp_double_behaviour_get(c->d, &b);
        ibp_double_count(c->d);
        if (b.close_mid_call)
            break;
        if (b.delay_ms)
            ibp_double_sleep(c->d, b.delay_ms);
        char *s = answer(&b, buf + hl, body_len);
        char head[160];
        int n = snprintf(head, sizeof head,
                         "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n\r\n",
                         s ? strlen(s) : 0);
        int rc = ibp_test_dconn_write(c, head, (size_t)n);
        if (rc == 0 && s)
            rc = ibp_test_dconn_write(c, s, strlen(s));
        free(s);
        if (rc != 0)
            break;
        size_t used = (size_t)hl + body_len;
        memmove(buf, buf + used, have - used);
        have -= used;
        buf[have] = '\0';
    }
out:
    free(buf);
}
