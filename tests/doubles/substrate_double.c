/* The Substrate-like double: JSON-RPC over WebSocket (after the TLS of tls_double.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "double_conn.h"
#include "ibp/ws_frame.h"

#define BUF_CAP 65536
#define OVERSIZED (4u << 20)

static int send_text(dconn *c, const char *text, size_t len)
{
    /* Header and payload in one write: two small writes would wait for a delayed ACK. */
    char *frame = malloc(len + IBP_WS_HEADER_MAX);
    if (!frame)
        return -1;
    size_t hl = ibp_ws_header_write(IBP_WS_TEXT, len, NULL, (uint8_t *)frame);
    memcpy(frame + hl, text, len);
    int rc = ibp_test_dconn_write(c, frame, hl + len);
    free(frame);
    return rc;
}

/* The answer to one call as JSON text (malloc'd). */
static char *answer(const ibp_double_behaviour *b, json_t *id, const char *method, json_t *params)
{
    json_t *result = NULL;
    if (strcmp(method, "chain_getBlockHash") == 0) {
        json_t *p0 = json_array_get(params, 0);
        bool genesis = json_is_integer(p0) && json_integer_value(p0) == 0;
        if (genesis && !b->archive)
            result = json_null();
        else
            result = json_string(genesis ? "0x91b171bb158e2d3848fa23a9f1c25182fb8e20313b2c1eb49219"
                                           "da7a70ce90c3"
                                         : "0xaa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55"
                                           "aa55aa55aa55");
    } else if (strcmp(method, "chain_getHeader") == 0) {
        result = json_pack("{s:s,s:s}", "number", "0x0", "stateRoot",
                           "0x29d0d972cd27cbc511e9589fcb7a4506d5eb6a9e8df205f00472e5ab354a4e17");
    } else if (strcmp(method, "system_chain") == 0) {
        result = json_string(b->chain);
    } else if (strcmp(method, "system_health") == 0) {
        result = json_pack("{s:I,s:b,s:b}", "peers", (json_int_t)b->peers, "isSyncing", b->syncing,
                           "shouldHavePeers", 1);
    }
    json_t *resp;
    if (result)
        resp = json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id, "result", result);
    else
        resp = json_pack("{s:s,s:O,s:{s:i,s:s}}", "jsonrpc", "2.0", "id", id, "error", "code",
                         -32601, "message", "Method not found");
    char *s = json_dumps(resp, JSON_COMPACT);
    json_decref(resp);
    return s;
}

/* One call in a text message. Returns -1 to close the connection. */
static int serve_call(dconn *c, const char *msg, size_t len)
{
    ibp_double_behaviour b;
    ibp_double_behaviour_get(c->d, &b);
    ibp_double_count(c->d);
    if (b.close_mid_call)
        return -1;
    if (b.delay_ms)
        ibp_double_sleep(c->d, b.delay_ms);
    if (b.garbage) {
        static const uint8_t junk[] = {0xF3, 0x7E, 0x00, 0x01, 'n', 'o', 't', ' ', 'w', 's'};
        return ibp_test_dconn_write(c, junk, sizeof junk);
    }
    if (b.oversized) {
        char *big = malloc(OVERSIZED);
        if (!big)
            return -1;
        memset(big, 'x', OVERSIZED);
        int rc = send_text(c, big, OVERSIZED);
        free(big);
        return rc;
    }
    json_t *req = json_loadb(msg, len, 0, NULL);
    json_t *id = json_object_get(req, "id");
    json_t *method = json_object_get(req, "method");
    int rc = 0;
    if (json_is_string(method)) {
        char *s = answer(&b, id ? id : json_null(), json_string_value(method),
                         json_object_get(req, "params"));
        rc = s ? send_text(c, s, strlen(s)) : -1;
        free(s);
    }
    json_decref(req);
    return rc;
}

void ibp_double_serve_substrate(dconn *c)
{
    char *buf = malloc(BUF_CAP + 1);
    if (!buf)
        return;
    size_t have = 0;
    long hl = ibp_test_dconn_read_head(c, buf, BUF_CAP, &have);
    if (hl < 0)
        goto out;
    char key[128], host[256], path[256] = "";
    ibp_test_dconn_header(buf, "Sec-WebSocket-Key", key, sizeof key);
    ibp_test_dconn_header(buf, "Host", host, sizeof host);
    sscanf(buf, "GET %255s", path);
    ibp_double_note(c->d, host, path);
    char accept[29], resp[256];
    ibp_ws_accept_key(key, accept);
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    if (ibp_test_dconn_write(c, resp, (size_t)n) != 0)
        goto out;
    memmove(buf, buf + hl, have - (size_t)hl);
    have -= (size_t)hl;
    ibp_double_behaviour b;
    ibp_double_behaviour_get(c->d, &b);
    if (b.hang_after_upgrade) {
        while (!ibp_double_stopping(c->d))
            ibp_double_sleep(c->d, 100);
        goto out;
    }
    for (;;) {
        ibp_ws_header h;
        char why[128];
        int r;
        while ((r = ibp_ws_header_read((uint8_t *)buf, have, &h, why, sizeof why)) == 0) {
            long got = ibp_test_dconn_read(c, buf + have, BUF_CAP - have);
            if (got <= 0)
                goto out;
            have += (size_t)got;
        }
        if (r < 0 || h.length > BUF_CAP - 16)
            goto out;
        while (have < (size_t)r + h.length) {
            long got = ibp_test_dconn_read(c, buf + have, BUF_CAP - have);
            if (got <= 0)
                goto out;
            have += (size_t)got;
        }
        char *payload = buf + r;
        if (h.masked)
            ibp_ws_mask((uint8_t *)payload, (size_t)h.length, h.mask, 0);
        if (h.opcode == IBP_WS_CLOSE) {
            uint8_t close_frame[2] = {0x88, 0x00};
            ibp_test_dconn_write(c, close_frame, 2);
            goto out;
        }
        if (h.opcode == IBP_WS_TEXT && serve_call(c, payload, (size_t)h.length) != 0)
            goto out;
        size_t used = (size_t)r + (size_t)h.length;
        memmove(buf, buf + used, have - used);
        have -= used;
    }
out:
    free(buf);
}
