/*
 * Strings for MariaDB's utf8mb4 columns (private header of persist): the
 * validity and length checks of persist_parse and the cleaning of texts that
 * go into dead_letters. Pure and thread-safe.
 */
#ifndef IBP_PERSIST_COLUMN_TEXT_H
#define IBP_PERSIST_COLUMN_TEXT_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
