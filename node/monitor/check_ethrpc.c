/* The ethrpc module: JSON-RPC over HTTPS POST (libcurl) to the member's
 * address with SNI and Host = the URL's host (wss -> https, ws -> http). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "check_modules.h"
#include "ibp/check_rules.h"
#include "ibp/clock.h"
#include "ibp/vec.h"
#include "tls_conn.h"

typedef struct body {
    char *data;
    size_t len, cap, max;
    bool over;
} body;

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
    body *b = user;
    size_t len = size * n;
    if (b->len + len > b->max) {
        b->over = true;
        return 0; /* aborts the transfer */
    }
    char *d = ibp_grow(b->data, &b->cap, b->len + len + 1, 1);
    if (!d)
        return 0;
    memcpy(d + b->len, p, len);
    b->data = d;
    b->len += len;
    d[b->len] = '\0';
    return len;
}

static const char *const CALLS[] = {"eth_chainId", "eth_blockNumber", "net_version", "eth_syncing"};

void ibp_check_run_ethrpc(const ibp_check_target *t, const ibp_check_env *env, int64_t deadline_ms,
                          ibp_check_outcome *out)
{
    ibp_eth_facts f = {0};
    char url[2400];
    struct curl_slist *connect_to = NULL, *headers = NULL;
    CURL *curl = curl_easy_init();
    body b = {.max = env->max_response_bytes};
    char errbuf[CURL_ERROR_SIZE] = "";
    if (!curl || ibp__tls_conn_setup(curl, &connect_to, t, env, t->tls ? "https" : "http", url,
                                     sizeof url) != 0) {
        ibp_check_fail(out, "ethrpc: out of memory");
        goto done;
    }
    headers = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    for (size_t i = 0; i < sizeof CALLS / sizeof CALLS[0]; i++) {
        char req[256], why[300];
        ibp_jsonrpc_request(req, sizeof req, (int64_t)i + 1, CALLS[i], "[]");
        int64_t t0 = ibp_clock_mono_ms();
        int64_t left = deadline_ms - t0;
        if (left <= 0) {
            ibp_check_fail(out, "ethrpc: %s: timed out", CALLS[i]);
            goto done;
        }
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)left);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)left);
        b.len = 0;
        errbuf[0] = '\0';
        CURLcode rc = curl_easy_perform(curl);
        if (b.over) {
            ibp_check_fail(out, "ethrpc: %s: response over %zu bytes", CALLS[i], b.max);
            goto done;
        }
        if (rc != CURLE_OK) {
            ibp_check_fail(out, "ethrpc: %s: %s", CALLS[i],
                           errbuf[0] ? errbuf : curl_easy_strerror(rc));
            goto done;
        }
        long code = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
        if (code != 200) {
            ibp_check_fail(out, "ethrpc: %s: HTTP %ld", CALLS[i], code);
            goto done;
        }
        json_t *result = NULL;
        bool ok = ibp_jsonrpc_read(b.data ? b.data : "", b.len, (int64_t)i + 1, &result, why,
                                   sizeof why) &&
                  ibp_eth_take(&f, CALLS[i], result, why, sizeof why);
        json_decref(result);
        if (!ok) {
            ibp_check_fail(out, "ethrpc: %s: %s", CALLS[i], why);
            goto done;
        }
        if (i == 0)
            f.latency_ms = ibp_clock_mono_ms() - t0;
    }
    out->up = ibp_eth_judge(&t->params, t->network_name, &f, out->error, sizeof out->error);
done:
    out->data_json = ibp_eth_data(&f);
    free(b.data);
    curl_slist_free_all(headers);
    if (curl)
        curl_easy_cleanup(curl);
    curl_slist_free_all(connect_to);
}
