/*
 * Calendar dates and RFC 3339 times, proleptic Gregorian, UTC only.
 *
 * A day is counted as days since 1970-01-01 (negative before). Pure: no
 * clock, no locale, no allocation; every function is thread-safe.
 */
#ifndef IBP_DATE_H
#define IBP_DATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of a "YYYY-MM-DD" date with its NUL. */
#define IBP_DATE_BUF 11

/* Bytes that always hold ibp_rfc3339_format_ms's output ("YYYY-MM-DDTHH:MM:SS.mmmZ" and NUL). */
#define IBP_RFC3339_MS_BUF 32

/* Days since 1970-01-01 of the civil date y-m-d (m 1..12, d 1..31; not checked). */
int64_t ibp_days_from_civil(int64_t y, unsigned m, unsigned d);

/* The civil date of a day since 1970-01-01. All three out-parameters are required. */
void ibp_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/*
 * Parses exactly "YYYY-MM-DD" (ten characters, nothing before or after) that
 * names a real calendar day (2024-02-29 yes, 2023-02-29 no; year 0000..9999)
 * into *days. Returns false, leaving *days alone, for anything else or NULL.
 */
bool ibp_date_parse(const char *s, int64_t *days);

/*
 * Writes day `days` as "YYYY-MM-DD" and a NUL into out. Years outside
 * 0000..9999 are clamped to that range (the month and day stay), so the text
 * is always ten characters.
 */
void ibp_date_format(int64_t days, char out[IBP_DATE_BUF]);

/*
 * Parses an RFC 3339 time into Unix milliseconds (UTC):
 * "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)", where 'T' may also be 't' or
 * ' ', 'Z' may be 'z', the fraction has one or more digits (digits beyond
 * milliseconds are dropped, not rounded) and seconds may be 60 (counted as
 * the next second). A plain date "YYYY-MM-DD" is also accepted and means
 * midnight UTC. The date must be a real calendar day. Returns false, leaving
 * *unix_ms alone, for anything else or NULL.
 */
bool ibp_rfc3339_parse_ms(const char *s, int64_t *unix_ms);

/*
 * Writes unix_ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC, always three fraction
 * digits; times before 1970 floor to the millisecond) into out (cap bytes,
 * IBP_RFC3339_MS_BUF always suffices). Returns the length written without the
 * NUL, or 0 when cap is too small (out then holds "" if cap > 0). Years
 * outside 0000..9999 are not RFC 3339: they print with more digits or a sign.
 */
size_t ibp_rfc3339_format_ms(int64_t unix_ms, char *out, size_t cap);

#endif
