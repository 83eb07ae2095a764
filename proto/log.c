/* Logging hook; see ibp/log.h. */
#include "ibp/log.h"

#include "ibp/clock.h"
#include "ibp/date.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static _Atomic int current_level = IBP_LOG_INFO;
/* The hook is set at start-up before threads run; readers see a consistent pair
 * because both are published together through one atomic pointer. */
struct hook {
    ibp_log_fn fn;
    void *user;
};
static struct hook default_hook = {NULL, NULL};
static struct hook custom_hook;
static _Atomic(struct hook *) active_hook = &default_hook;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR", "OFF"};

void ibp_log_set_hook(ibp_log_fn fn, void *user)
{
    if (!fn) {
        atomic_store(&active_hook, &default_hook);
        return;
    }
    custom_hook.fn = fn;
    custom_hook.user = user;
    atomic_store(&active_hook, &custom_hook);
}

void ibp_log_set_level(ibp_log_level level)
{
    atomic_store(&current_level, (int)level);
}

ibp_log_level ibp_log_get_level(void)
{
    return (ibp_log_level)atomic_load(&current_level);
}

int ibp_log_level_parse(const char *name)
{
    for (int i = 0; i <= IBP_LOG_OFF; i++)
        if (name && strcasecmp(name, level_names[i]) == 0)
            return i;
    if (name && strcasecmp(name, "warning") == 0)
        return IBP_LOG_WARN;
    return -1;
}

const char *ibp_log_level_name(ibp_log_level level)
{
    if ((unsigned)level > IBP_LOG_OFF)
        return "?";
    return level_names[level];
}

void ibp_log_emit(ibp_log_level level, const char *component, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct hook *h = atomic_load(&active_hook);
    if (h->fn) {
        h->fn(level, component, msg, h->user);
        return;
    }
    char when[IBP_RFC3339_MS_BUF];
    ibp_rfc3339_format_ms(ibp_clock_wall_ms(), when, sizeof when);
    /* One fprintf per line keeps lines from different threads whole. */
    fprintf(stderr, "%s %-5s %s %s\n", when, ibp_log_level_name(level),
            component ? component : "-", msg);
}

bool ibp_log_limit_allow(ibp_log_limit *l, int64_t now_ms, uint64_t *suppressed)
{
    if (l->window_start_ms == 0 || now_ms - l->window_start_ms >= IBP_LOG_LIMIT_WINDOW_MS) {
        l->window_start_ms = now_ms ? now_ms : 1;
        l->lines = 0;
    }
    if (l->lines >= IBP_LOG_LIMIT_BURST) {
        l->suppressed++;
        return false;
    }
    l->lines++;
    if (suppressed)
        *suppressed = l->suppressed;
    l->suppressed = 0;
    return true;
}

bool ibp_log_limit_allow_now(ibp_log_limit *l, uint64_t *suppressed)
{
    return ibp_log_limit_allow(l, ibp_clock_mono_ms(), suppressed);
}
