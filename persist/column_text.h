/*
 * Strings for MariaDB's utf8mb4 columns (private header of persist): cutting
 * a text to a column's length and cleaning texts that go into dead_letters.
 * Validity is proto's ibp_utf8_valid / ibp_utf8_count (ibp/utf8.h), whose
 * rules are utf8mb4's. Pure and thread-safe.
 */
#ifndef IBP_PERSIST_COLUMN_TEXT_H
#define IBP_PERSIST_COLUMN_TEXT_H

#include <stddef.h>

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

#endif
