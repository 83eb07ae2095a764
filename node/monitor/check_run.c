/* One check run: dispatch to the module's driver (see ibp/check_run.h). */
#include "ibp/check_run.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "check_modules.h"
#include "ibp/clock.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static CURLcode init_rc = CURLE_OK;

static void global_init(void)
{
    init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

ibp_status ibp_check_global_init(void)
{
    pthread_once(&init_once, global_init);
    return init_rc == CURLE_OK ? IBP_OK : IBP_E_NOMEM;
}

void ibp_check_fail(ibp_check_outcome *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->error, sizeof out->error, fmt, ap);
    va_end(ap);
    out->up = false;
}

void ibp_check_format_addr(char *buf, size_t cap, const char *addr, unsigned port)
{
    if (strchr(addr, ':'))
        snprintf(buf, cap, "[%s]:%u", addr, port);
    else
        snprintf(buf, cap, "%s:%u", addr, port);
}

void ibp_check_outcome_clear(ibp_check_outcome *out)
{
    if (!out)
        return;
    free(out->data_json);
    out->data_json = NULL;
}

void ibp_check_run(const ibp_check_target *t, const ibp_check_env *env, ibp_check_outcome *out)
{
    memset(out, 0, sizeof *out);
    ibp_check_env e = env ? *env : (ibp_check_env){0};
    if (!e.max_response_bytes)
        e.max_response_bytes = IBP_CHECK_MAX_RESPONSE_DEFAULT;
    ibp_check_global_init();
    int64_t t0 = ibp_clock_mono_ms();
    int64_t deadline = t0 + (t->timeout_ms > 0 ? t->timeout_ms : 10000);
    switch (t->module) {
    case IBP_CHECK_MODULE_TCP:
        ibp_check_run_tcp(t, &e, deadline, out);
        break;
    case IBP_CHECK_MODULE_PING:
        ibp_check_run_ping(t, &e, deadline, out);
        break;
    case IBP_CHECK_MODULE_SSL:
        ibp_check_run_ssl(t, &e, deadline, out);
        break;
    case IBP_CHECK_MODULE_WSS:
        ibp_check_run_wss(t, &e, deadline, out);
        break;
    case IBP_CHECK_MODULE_ETHRPC:
        ibp_check_run_ethrpc(t, &e, deadline, out);
        break;
    default:
        ibp_check_fail(out, "unknown check module %d", (int)t->module);
        break;
    }
    out->duration_ms = ibp_clock_mono_ms() - t0;
    if (out->up)
        out->error[0] = '\0';
    if (!out->data_json)
        out->data_json = strdup("{}");
}
