/*
 * Small helpers shared by the persist sources (private header): UTF-8
 * checks, UTC time conversions, sleeping that a stop flag interrupts.
 * All pure and thread-safe unless said otherwise.
 */
#ifndef IBP_PERSIST_UTIL_H
#define IBP_PERSIST_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

/* Earliest and latest instants a DATETIME(3) holds (1000-01-01 .. 9999-12-31), in Unix ms. */
#define IBP_PERSIST_TIME_MIN_MS INT64_C(-30610224000000)
#define IBP_PERSIST_TIME_MAX_MS INT64_C(253402300799999)

/*
 * True when s[0..len) is valid UTF-8 that MariaDB's utf8mb4 accepts (no
 * overlong forms, no surrogates, nothing above U+10FFFF); *chars (may be
 * NULL) receives the number of characters.
 */
bool ibp_persist_utf8_valid(const char *s, size_t len, size_t *chars);

/*
 * Length in bytes of the longest prefix of the valid UTF-8 string s[0..len)
 * holding at most max_bytes bytes and max_chars characters, never cutting a
 * character.
 */
size_t ibp_persist_utf8_prefix(const char *s, size_t len, size_t max_bytes, size_t max_chars);

/*
 * Copies s into buf (cap bytes, NUL-terminated) as valid UTF-8 of at most
 * max_chars characters: invalid bytes become '?'. For error details that go
 * into VARCHAR columns.
 */
void ibp_persist_utf8_sanitize(const char *s, char *buf, size_t cap, size_t max_chars);

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
