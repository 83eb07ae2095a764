/* The module drivers behind ibp_check_run (private to the monitor library). */
#ifndef IBP_CHECK_MODULES_H
#define IBP_CHECK_MODULES_H

#include <stdarg.h>

#include "ibp/check_run.h"

/* Each fills out->up, out->error and out->data_json; deadline_ms is monotonic. */
void ibp_check_run_tcp(const ibp_check_target *t, const ibp_check_env *env, int64_t deadline_ms,
                       ibp_check_outcome *out);
void ibp_check_run_ping(const ibp_check_target *t, const ibp_check_env *env, int64_t deadline_ms,
                        ibp_check_outcome *out);
void ibp_check_run_ssl(const ibp_check_target *t, const ibp_check_env *env, int64_t deadline_ms,
                       ibp_check_outcome *out);
void ibp_check_run_wss(const ibp_check_target *t, const ibp_check_env *env, int64_t deadline_ms,
                       ibp_check_outcome *out);
void ibp_check_run_ethrpc(const ibp_check_target *t, const ibp_check_env *env, int64_t deadline_ms,
                          ibp_check_outcome *out);

/* Sets out down with a formatted error. */
void ibp_check_fail(ibp_check_outcome *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "addr:port" or "[addr]:port". */
void ibp_check_format_addr(char *buf, size_t cap, const char *addr, unsigned port);

#endif
