/*
 * Small helpers shared by the persist sources (private header): MariaDB's
 * DATETIME to and from Unix ms, sleeping that a stop flag interrupts. Dates,
 * RFC 3339 times and clocks are proto's (ibp/date.h, ibp/clock.h); UTF-8 for
 * the columns is column_text.h.
 * Thread-safe.
 */
#ifndef IBP_PERSIST_UTIL_H
#define IBP_PERSIST_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#include "ibp/persist_parse.h" /* IBP_PERSIST_TIME_MIN_MS, IBP_PERSIST_TIME_MAX_MS */

/* Unix ms (UTC) to a MYSQL_TIME DATETIME, and back. */
void ibp_persist_ms_to_mysql_time(int64_t ms, MYSQL_TIME *t);
int64_t ibp_persist_mysql_time_to_ms(const MYSQL_TIME *t);

/* Sleeps up to ms, returning early (true) once *stop is set. */
bool ibp_persist_sleep_ms(int64_t ms, const atomic_bool *stop);

#endif
