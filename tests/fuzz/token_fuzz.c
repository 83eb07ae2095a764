/*
 * Fuzz: the subject token encoding. The input, as a NUL-terminated string, is
 * decoded (ibp_token_decode); a token that decodes must encode back to itself.
 * The input bytes are also encoded (ibp_token_encode) and decoded back: the
 * round trip must give them exactly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "ibp/subject.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *in = malloc(size + 1);
    size_t cap = IBP_TOKEN_MAX_LEN(size) + 1;
    char *tok = malloc(cap);
    char *back = malloc(cap);
    if (!in || !tok || !back)
        abort();
    memcpy(in, data, size);
    in[size] = '\0';

    /* decode, then encode what decoded: the same token (the encoding is canonical) */
    size_t n = 0, m = 0;
    if (ibp_token_decode(in, back, cap, &n) == IBP_OK) {
        if (n > strlen(in) || back[n] != '\0')
            abort();
        if (ibp_token_encode(back, n, tok, cap, &m) != IBP_OK)
            abort();
        if (m != strlen(in) || memcmp(tok, in, m) != 0)
            abort();
    }

    /* encode, decode: the same bytes */
    if (ibp_token_encode(in, size, tok, cap, &m) != IBP_OK)
        abort();
    if (m > IBP_TOKEN_MAX_LEN(size) || tok[m] != '\0' || strlen(tok) != m)
        abort();
    if (ibp_token_decode(tok, back, cap, &n) != IBP_OK)
        abort();
    if (n != size || memcmp(back, data, size) != 0)
        abort();

    /* too small a buffer is refused, never overrun */
    if (m > 0) {
        char *small = malloc(m);
        if (!small)
            abort();
        if (ibp_token_encode(in, size, small, m, NULL) == IBP_OK)
            abort();
        free(small);
    }
    free(back);
    free(tok);
    free(in);
    return 0;
}
