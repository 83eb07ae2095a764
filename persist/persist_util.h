/*
 * Small helpers shared by the persist sources (private header): UTC time
 * conversions, sleeping that a stop flag interrupts (UTF-8 for the columns:
 * column_text.h).
 * All pure and thread-safe unless said otherwise.
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

/* Days since 1970-01-01 of a civil date, and back (proleptic Gregorian). */
int64_t ibp_persist_days_from_civil(int64_t y, unsigned m, unsigned d);
void ibp_persist_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/* Formats Unix ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (>= 32 bytes). */
void ibp_persist_format_rfc3339_ms(int64_t ms, char *buf, size_t cap);

/*
 * Parses an RFC 3339 time ("2025-01-31T12:00:00Z", fractions and numeric
 * offsets allowed, "T" or " ") or a plain date "YYYY-MM-DD" (midnight UTC)
 * into Unix ms. Returns 0, or -1 when the text is not such a time.
 */
int ibp_persist_parse_time_ms(const char *text, int64_t *ms);

/* CLOCK_REALTIME and CLOCK_MONOTONIC in ms. */
int64_t ibp_persist_now_ms(void);
int64_t ibp_persist_mono_ms(void);

/* Sleeps up to ms, returning early (true) once *stop is set. */
bool ibp_persist_sleep_ms(int64_t ms, const atomic_bool *stop);

#endif
