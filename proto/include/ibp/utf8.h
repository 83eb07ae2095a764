/*
 * Strict UTF-8 checks, the rules of MariaDB's utf8mb4, jansson and protobuf
 * `string` fields alike: no overlong forms, no UTF-16 surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequences.
 *
 * A NUL byte is U+0000 and valid here: callers that take C strings stop at
 * it themselves. Pure and thread-safe.
 */
#ifndef IBP_UTF8_H
#define IBP_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Length (1..4) of the valid UTF-8 sequence that starts at s[0], reading at
 * most avail bytes; 0 when it is not valid there or avail is 0.
 */
size_t ibp_utf8_seq_len(const char *s, size_t avail);

/* True when s[0..len) is valid UTF-8 (len 0 is valid; s may be NULL then). */
bool ibp_utf8_valid(const char *s, size_t len);

/*
 * As ibp_utf8_valid, and on success *chars (may be NULL) receives the number
 * of characters (code points).
 */
bool ibp_utf8_count(const char *s, size_t len, size_t *chars);

#endif
