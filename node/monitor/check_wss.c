/*
 * The wss module: WebSocket over TLS to the member's address (Host and SNI
 * = the URL's host, path = the URL's), then Substrate JSON-RPC calls, one at
 * a time, each answered before the next is sent. Framing: ibp/ws_frame.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "check_modules.h"
#include "ibp/check_rules.h"
#include "ibp/clock.h"
#include "ibp/vec.h"
#include "ibp/ws_frame.h"
#include "tls_conn.h"

#define HEAD_MAX 16384

typedef struct ws {
    ibp__tls_conn c;
    uint8_t *buf; /* received, not yet consumed */
    size_t len, cap;
    size_t max; /* one message */
    char why[400];
} ws;

/* Reads more bytes into w->buf. 0, or -1 with w->why. */
static int fill(ws *w, int64_t deadline)
{
    if (w->len >= w->max + HEAD_MAX + 64) {
        snprintf(w->why, sizeof w->why, "response over %zu bytes", w->max);
        return -1;
    }
    if (w->cap - w->len < 4096) {
        size_t need = w->cap ? w->cap + 1 : 16384; /* doubles; 16 KiB at first */
        uint8_t *b = ibp_grow(w->buf, &w->cap, need, 1);
        if (!b) {
            snprintf(w->why, sizeof w->why, "out of memory");
            return -1;
        }
        w->buf = b;
    }
    long n = ibp__tls_conn_recv(&w->c, w->buf + w->len, w->cap - w->len, deadline, w->why,
                                sizeof w->why);
    if (n == 0) {
        snprintf(w->why, sizeof w->why, "connection closed by the server");
        return -1;
    }
    if (n < 0)
        return -1;
    w->len += (size_t)n;
    return 0;
}

static void consume(ws *w, size_t n)
{
    memmove(w->buf, w->buf + n, w->len - n);
    w->len -= n;
}

static int send_frame(ws *w, uint8_t op, const void *payload, size_t len, int64_t deadline)
{
    uint8_t mask[4], head[IBP_WS_HEADER_MAX];
    if (getrandom(mask, sizeof mask, 0) != (ssize_t)sizeof mask)
        memset(mask, 0x5a, sizeof mask);
    size_t hl = ibp_ws_header_write(op, len, mask, head);
    uint8_t *frame = malloc(hl + len + 1);
    if (!frame) {
        snprintf(w->why, sizeof w->why, "out of memory");
        return -1;
    }
    memcpy(frame, head, hl);
    if (len)
        memcpy(frame + hl, payload, len);
    ibp_ws_mask(frame + hl, len, mask, 0);
    int rc = ibp__tls_conn_send(&w->c, frame, hl + len, deadline, w->why, sizeof w->why);
    free(frame);
    return rc;
}

static int upgrade(ws *w, const ibp_check_target *t, int64_t deadline)
{
    uint8_t raw[16];
    char key[32], req[3000], host[400];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        memset(raw, 0x42, sizeof raw);
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
    bool dflt = t->port == (t->tls ? 443u : 80u);
    bool v6 = strchr(t->host, ':') != NULL;
    int hl = snprintf(host, sizeof host, v6 ? "[%s]" : "%s", t->host);
    if (!dflt && hl > 0 && (size_t)hl < sizeof host)
        snprintf(host + hl, sizeof host - (size_t)hl, ":%u", t->port);
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                     "User-Agent: ibp-monitor\r\n\r\n",
                     t->path, host, key);
    if (n < 0 || (size_t)n >= sizeof req) {
        snprintf(w->why, sizeof w->why, "upgrade: path too long");
        return -1;
    }
    if (ibp__tls_conn_send(&w->c, req, (size_t)n, deadline, w->why, sizeof w->why) != 0)
        return -1;
    size_t end = 0;
    while (!(end = ibp_ws_head_end((const char *)w->buf, w->len))) {
        if (w->len > HEAD_MAX) {
            snprintf(w->why, sizeof w->why, "upgrade: response head over %d bytes", HEAD_MAX);
            return -1;
        }
        if (fill(w, deadline) != 0)
            return -1;
    }
    if (!ibp_ws_upgrade_ok((const char *)w->buf, end, key, w->why, sizeof w->why))
        return -1;
    consume(w, end);
    return 0;
}

/* Reads frames until a whole text message: *msg (malloc'd) and *len. */
static int read_message(ws *w, char **msg, size_t *msg_len, int64_t deadline)
{
    char *m = NULL;
    size_t ml = 0;
    bool in_message = false;
    for (;;) {
        ibp_ws_header h;
        int hl;
        while ((hl = ibp_ws_header_read(w->buf, w->len, &h, w->why, sizeof w->why)) == 0)
            if (fill(w, deadline) != 0)
                goto fail;
        if (hl < 0)
            goto fail;
        if (h.length > w->max || ml + h.length > w->max) {
            snprintf(w->why, sizeof w->why, "message over %zu bytes", w->max);
            goto fail;
        }
        while (w->len < (size_t)hl + h.length)
            if (fill(w, deadline) != 0)
                goto fail;
        uint8_t *payload = w->buf + hl;
        if (h.masked)
            ibp_ws_mask(payload, (size_t)h.length, h.mask, 0);
        if (h.opcode == IBP_WS_PING) {
            size_t pl = (size_t)h.length;
            uint8_t copy[125];
            memcpy(copy, payload, pl);
            consume(w, (size_t)hl + pl);
            if (send_frame(w, IBP_WS_PONG, copy, pl, deadline) != 0)
                goto fail;
            continue;
        }
        if (h.opcode == IBP_WS_PONG) {
            consume(w, (size_t)hl + (size_t)h.length);
            continue;
        }
        if (h.opcode == IBP_WS_CLOSE) {
            snprintf(w->why, sizeof w->why, "closed by the server (WebSocket close)");
            goto fail;
        }
        if ((h.opcode == IBP_WS_CONT) != in_message) {
            snprintf(w->why, sizeof w->why, "websocket: unexpected %s frame",
                     in_message ? "new" : "continuation");
            goto fail;
        }
        char *nm = realloc(m, ml + (size_t)h.length + 1);
        if (!nm) {
            snprintf(w->why, sizeof w->why, "out of memory");
            goto fail;
        }
        m = nm;
        memcpy(m + ml, payload, (size_t)h.length);
        ml += (size_t)h.length;
        m[ml] = '\0';
        consume(w, (size_t)hl + (size_t)h.length);
        in_message = true;
        if (h.fin) {
            *msg = m;
            *msg_len = ml;
            return 0;
        }
    }
fail:
    free(m);
    return -1;
}

/* One call: sends it, reads messages until the response to id. */
static int call(ws *w, int64_t id, const char *method, const char *params, json_t **result,
                int64_t deadline)
{
    char req[512];
    int n = ibp_jsonrpc_request(req, sizeof req, id, method, params);
    if (n < 0 || (size_t)n >= sizeof req) {
        snprintf(w->why, sizeof w->why, "request too long");
        return -1;
    }
    if (send_frame(w, IBP_WS_TEXT, req, (size_t)n, deadline) != 0)
        return -1;
    for (;;) {
        char *msg = NULL;
        size_t len = 0;
        if (read_message(w, &msg, &len, deadline) != 0)
            return -1;
        /* Skip notifications (no id); anything else must answer this call. */
        json_t *probe = json_loadb(msg, len, 0, NULL);
        bool notification = json_is_object(probe) && !json_object_get(probe, "id");
        json_decref(probe);
        if (notification) {
            free(msg);
            continue;
        }
        bool ok = ibp_jsonrpc_read(msg, len, id, result, w->why, sizeof w->why);
        free(msg);
        return ok ? 0 : -1;
    }
}

void ibp_check_run_wss(const ibp_check_target *t, const ibp_check_env *env, int64_t deadline_ms,
                       ibp_check_outcome *out)
{
    ws w = {.max = env->max_response_bytes};
    ibp_substrate_facts f = {0};
    const char *phase = "connect";
    if (ibp__tls_conn_open(&w.c, t, env, t->tls, false, deadline_ms, w.why, sizeof w.why) != 0)
        goto fail;
    phase = "upgrade";
    if (upgrade(&w, t, deadline_ms) != 0)
        goto fail;
    struct {
        const char *method;
        bool genesis;
        bool wanted;
    } calls[] = {
        {"chain_getBlockHash", false, true},
        {"chain_getBlockHash", true,
         t->params.check_archive || t->params.genesis_state_root[0] != '\0'},
        {"chain_getHeader", true, t->params.genesis_state_root[0] != '\0'},
        {"system_chain", false, true},
        {"system_health", false, true},
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        if (!calls[i].wanted)
            continue;
        char params[IBP_CHECK_TEXT_MAX + 8] = "[]";
        if (i == 1)
            snprintf(params, sizeof params, "[0]");
        if (i == 2)
            snprintf(params, sizeof params, "[\"%s\"]", f.genesis_hash);
        phase = calls[i].method;
        json_t *result = NULL;
        int64_t t0 = ibp_clock_mono_ms();
        int rc = call(&w, (int64_t)i + 1, calls[i].method, params, &result, deadline_ms);
        if (rc == 0 &&
            !ibp_substrate_take(&f, calls[i].method, calls[i].genesis, result, w.why, sizeof w.why))
            rc = -1;
        json_decref(result);
        if (rc != 0) {
            if (i == 1 && t->params.check_archive && !t->params.genesis_state_root[0]) {
                /* An answer without a hash means "not an archive": judged below. */
                if (strstr(w.why, "no block hash"))
                    continue;
            }
            goto fail;
        }
        if (i == 0)
            f.latency_ms = ibp_clock_mono_ms() - t0;
    }
    send_frame(&w, IBP_WS_CLOSE, "\x03\xe8", 2, deadline_ms);
    out->up = ibp_substrate_judge(&t->params, t->network_name, &f, out->error, sizeof out->error);
    goto done;
fail:
    ibp_check_fail(out, "wss: %s: %s", phase, w.why);
done:
    out->data_json = ibp_substrate_data(&f);
    ibp__tls_conn_close(&w.c);
    free(w.buf);
}
