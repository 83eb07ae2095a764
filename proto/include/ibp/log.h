/*
 * Logging hook shared by the ibp libraries.
 *
 * Libraries never print. They call IBP_LOG(), which checks the level before
 * formatting anything and hands one finished line to the hook the program set.
 * Messages follow the house format: a short sentence, then key=value pairs
 * ("rejected envelope reason=IBP_E_REPLAY signer=mon1 seq=12").
 *
 * The default hook writes "<UTC time> <LEVEL> <component> <message>" to stderr.
 * Setting the hook and level is meant for program start-up; logging itself is
 * thread-safe (the hook must be too).
 */
#ifndef IBP_LOG_H
#define IBP_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum ibp_log_level {
    IBP_LOG_DEBUG = 0,
    IBP_LOG_INFO = 1,
    IBP_LOG_WARN = 2,
    IBP_LOG_ERROR = 3,
    IBP_LOG_OFF = 4,
} ibp_log_level;

/* Receives one formatted message (no trailing newline). */
typedef void (*ibp_log_fn)(ibp_log_level level, const char *component, const char *msg, void *user);

/* Replaces the hook; NULL restores the default stderr writer. */
void ibp_log_set_hook(ibp_log_fn fn, void *user);

/* Messages below level are dropped before formatting. Default: IBP_LOG_INFO. */
void ibp_log_set_level(ibp_log_level level);
ibp_log_level ibp_log_get_level(void);

/* Parses "debug", "info", "warn", "error", "off"; returns -1 on anything else. */
int ibp_log_level_parse(const char *name);
const char *ibp_log_level_name(ibp_log_level level);

/* Formats and emits one message. Prefer the IBP_LOG macro, which checks the level first. */
void ibp_log_emit(ibp_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Rate limit for lines that a hostile peer can cause at will (a rejected
 * message, say): at most `burst` lines per window; the rest are counted and
 * reported with the next line allowed. One limiter per thread or per object
 * used by one thread at a time; not thread-safe.
 */
typedef struct ibp_log_limit {
    int64_t window_start_ms;
    unsigned lines;      /* lines allowed in the current window */
    uint64_t suppressed; /* lines dropped since the last allowed one */
} ibp_log_limit;

#define IBP_LOG_LIMIT_BURST 10
#define IBP_LOG_LIMIT_WINDOW_MS 10000

/*
 * True when a line may be written at now_ms (monotonic); *suppressed (may be
 * NULL) receives how many lines were dropped since the last allowed one, and
 * the count restarts. False: the line is counted as dropped.
 */
bool ibp_log_limit_allow(ibp_log_limit *l, int64_t now_ms, uint64_t *suppressed);

/* The same at the monotonic clock's now (ibp/clock.h). */
bool ibp_log_limit_allow_now(ibp_log_limit *l, uint64_t *suppressed);

/*
 * IBP_LOG under a limiter: lines over the limit are counted, and the next
 * line allowed is preceded by how many were dropped. For lines that hostile
 * input can cause.
 */
#define IBP_LOG_LIMITED(limit, level, component, ...)                                              \
    do {                                                                                           \
        uint64_t ibp_suppressed_ = 0;                                                              \
        if ((level) >= ibp_log_get_level() &&                                                      \
            ibp_log_limit_allow_now((limit), &ibp_suppressed_)) {                                  \
            if (ibp_suppressed_)                                                                   \
                ibp_log_emit((level), (component), "%llu similar lines suppressed",                \
                             (unsigned long long)ibp_suppressed_);                                 \
            ibp_log_emit((level), (component), __VA_ARGS__);                                       \
        }                                                                                          \
    } while (0)

#define IBP_LOG(level, component, ...)                                                             \
    do {                                                                                           \
        if ((level) >= ibp_log_get_level())                                                        \
            ibp_log_emit((level), (component), __VA_ARGS__);                                       \
    } while (0)

#endif
