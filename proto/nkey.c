/* NATS user NKeys: generation, encoding, decoding, seed files; see ibp/nkey.h. */
#include "ibp/nkey.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ibp/atomic_file.h"
#include "ibp/key.h"

/* Prefix bytes of the NKey encoding (nkeys.go). */
#define PREFIX_SEED (18u << 3)
#define PREFIX_USER (20u << 3)

/* Encoded seed: 2 prefix bytes, the raw seed, the CRC. */
#define SEED_RAW_LEN (2 + IBP_NKEY_RAW_BYTES + 2)
#define PUBLIC_RAW_LEN (1 + IBP_NKEY_RAW_BYTES + 2)

/* A seed file is one line; anything much longer is not one. */
#define SEED_FILE_MAX 256

static const char b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static uint16_t crc16_xmodem(const uint8_t *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((uint16_t)p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
    }
    return crc;
}

/* Base32 without padding; out has room for (n * 8 + 4) / 5 characters and a NUL. */
static void b32_encode(const uint8_t *in, size_t n, char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = b32_alphabet[(acc >> bits) & 31u];
        }
    }
    if (bits > 0)
        out[o++] = b32_alphabet[(acc << (5 - bits)) & 31u];
    out[o] = '\0';
    sodium_memzero(&acc, sizeof acc); /* it held bits of a seed */
}

static int b32_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= '2' && c <= '7')
        return c - '2' + 26;
    return -1;
}

/*
 * Strict base32 decoding of exactly n characters into exactly cap bytes: any
 * other character, another length, or non-zero bits left over fail (a valid
 * encoder never produces them, so accepting them would make two texts mean
 * one key). Returns false on any of those.
 */
static bool b32_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    bool ok = (n * 5) / 8 == cap;
    for (size_t i = 0; ok && i < n; i++) {
        int v = b32_value(in[i]);
        if (v < 0) {
            ok = false;
            break;
        }
        acc = (acc << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (ok && (o != cap || (acc & ((1u << bits) - 1u)) != 0))
        ok = false;
    sodium_memzero(&acc, sizeof acc);
    return ok;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static const char *prefix_name(unsigned prefix)
{
    switch (prefix) {
    case 0u << 3:
        return "an account";
    case 2u << 3:
        return "a cluster";
    case 13u << 3:
        return "a server";
    case 14u << 3:
        return "an operator";
    case 23u << 3:
        return "a curve (xkey)";
    default:
        return "an unknown kind of";
    }
}

void ibp_nkey_encode_user_public(const uint8_t pk[IBP_NKEY_RAW_BYTES],
                                 char out[IBP_NKEY_PUBLIC_SIZE])
{
    uint8_t raw[PUBLIC_RAW_LEN];
    raw[0] = PREFIX_USER;
    memcpy(raw + 1, pk, IBP_NKEY_RAW_BYTES);
    uint16_t crc = crc16_xmodem(raw, PUBLIC_RAW_LEN - 2);
    raw[PUBLIC_RAW_LEN - 2] = (uint8_t)(crc & 0xffu);
    raw[PUBLIC_RAW_LEN - 1] = (uint8_t)(crc >> 8);
    b32_encode(raw, sizeof raw, out);
}

void ibp_nkey_encode_user_seed(const uint8_t seed[IBP_NKEY_RAW_BYTES], char out[IBP_NKEY_SEED_SIZE])
{
    uint8_t raw[SEED_RAW_LEN];
    /* The kind of key (5 bits of 0xA0's top) is spread over the two prefix bytes. */
    raw[0] = (uint8_t)(PREFIX_SEED | (PREFIX_USER >> 5));
    raw[1] = (uint8_t)((PREFIX_USER & 31u) << 3);
    memcpy(raw + 2, seed, IBP_NKEY_RAW_BYTES);
    uint16_t crc = crc16_xmodem(raw, SEED_RAW_LEN - 2);
    raw[SEED_RAW_LEN - 2] = (uint8_t)(crc & 0xffu);
    raw[SEED_RAW_LEN - 1] = (uint8_t)(crc >> 8);
    b32_encode(raw, sizeof raw, out);
    sodium_memzero(raw, sizeof raw);
}

ibp_status ibp_nkey_user_public_from_seed(const char *seed, size_t len,
                                          char pub[IBP_NKEY_PUBLIC_SIZE], ibp_err *err)
{
    uint8_t raw[SEED_RAW_LEN];
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    ibp_status st = IBP_OK;

    if (!seed || !pub)
        return ibp_err_set(err, IBP_E_INVAL, "nkey: no seed or output");
    if (ibp_crypto_init() != IBP_OK)
        return ibp_err_set(err, IBP_E_CRYPTO, "nkey: libsodium failed to initialise");
    while (len > 0 && is_space(seed[0])) {
        seed++;
        len--;
    }
    while (len > 0 && is_space(seed[len - 1]))
        len--;

    if (len == IBP_NKEY_PUBLIC_LEN && seed[0] == 'U') {
        st = ibp_err_set(err, IBP_E_KEY_FORMAT,
                         "this looks like a public user nkey ('U...'), not a seed ('SU...')");
        goto out;
    }
    if (len != IBP_NKEY_SEED_LEN) {
        st = ibp_err_set(err, IBP_E_KEY_FORMAT,
                         "not a NATS user nkey seed: %zu characters, a seed has %d", len,
                         IBP_NKEY_SEED_LEN);
        goto out;
    }
    if (!b32_decode(seed, len, raw, sizeof raw)) {
        st = ibp_err_set(err, IBP_E_KEY_FORMAT,
                         "not a NATS nkey seed: not base32 (A-Z, 2-7, no padding)");
        goto out;
    }
    uint16_t want = crc16_xmodem(raw, SEED_RAW_LEN - 2);
    uint16_t got = (uint16_t)(raw[SEED_RAW_LEN - 2] | (raw[SEED_RAW_LEN - 1] << 8));
    if (want != got) {
        st = ibp_err_set(err, IBP_E_KEY_FORMAT,
                         "NATS nkey seed has a bad checksum (CRC-16 %04x, expected %04x); is "
                         "it complete and unchanged?",
                         (unsigned)got, (unsigned)want);
        goto out;
    }
    if ((raw[0] & 0xf8u) != PREFIX_SEED) {
        st = ibp_err_set(err, IBP_E_KEY_FORMAT,
                         "not a NATS nkey seed (it does not start with 'S'; a public key?)");
        goto out;
    }
    unsigned prefix = ((raw[0] & 7u) << 5) | ((raw[1] & 0xf8u) >> 3);
    if (prefix != PREFIX_USER || (raw[1] & 7u) != 0) {
        st = ibp_err_set(err, IBP_E_KEY_FORMAT,
                         "%s nkey seed, not a user seed ('SU...'); NATS clients authenticate "
                         "as users",
                         prefix_name(prefix));
        goto out;
    }
    if (crypto_sign_seed_keypair(pk, sk, raw + 2) != 0) {
        st = ibp_err_set(err, IBP_E_CRYPTO, "nkey: cannot derive the Ed25519 key pair");
        goto out;
    }
    ibp_nkey_encode_user_public(pk, pub);
out:
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(sk, sizeof sk);
    return st;
}

ibp_status ibp_nkey_load_user_public(const char *path, char pub[IBP_NKEY_PUBLIC_SIZE], ibp_err *err)
{
    char buf[SEED_FILE_MAX + 1];
    size_t len = 0;
    ibp_status st = IBP_OK;

    if (!path || !pub)
        return ibp_err_set(err, IBP_E_INVAL, "nkey seed file: no path or output");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ibp_err_set(err, IBP_E_IO, "%s: open nkey seed file: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = ibp_err_set(err, IBP_E_IO, "%s: stat nkey seed file: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = ibp_err_set(err, IBP_E_KEY_FORMAT, "%s: nkey seed file is not a regular file", path);
        goto out;
    }
    /* Checked on the open descriptor, before a byte of the secret is read. */
    if (sb.st_mode & 077) {
        st = ibp_err_set(err, IBP_E_KEY_PERMS,
                         "%s: nkey seed file has mode %04o; it must be readable by its owner "
                         "only (chmod 600 %s)",
                         path, (unsigned)(sb.st_mode & 07777), path);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            st = ibp_err_set(err, IBP_E_IO, "%s: read nkey seed file: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == sizeof buf) {
            st = ibp_err_set(err, IBP_E_KEY_FORMAT,
                             "%s: not a NATS nkey seed file (over %d bytes; it holds one line "
                             "'SU...')",
                             path, SEED_FILE_MAX);
            goto out;
        }
    }
    if ((st = ibp_nkey_user_public_from_seed(buf, len, pub, err)) != IBP_OK)
        ibp_err_wrap(err, "%s", path);
out:
    sodium_memzero(buf, sizeof buf);
    close(fd);
    return st;
}

ibp_status ibp_nkey_decode_user_public(const char *text, uint8_t pk[IBP_NKEY_RAW_BYTES],
                                       ibp_err *err)
{
    uint8_t raw[PUBLIC_RAW_LEN];
    if (!text)
        return ibp_err_set(err, IBP_E_INVAL, "nkey: no public key");
    size_t len = strlen(text);
    if (len == IBP_NKEY_SEED_LEN && text[0] == 'S')
        return ibp_err_set(err, IBP_E_KEY_FORMAT,
                           "this looks like an nkey seed ('S...'), a secret: give the public key "
                           "('U...') instead");
    if (len != IBP_NKEY_PUBLIC_LEN)
        return ibp_err_set(err, IBP_E_KEY_FORMAT,
                           "not a public NATS user nkey: %zu characters, one has %d", len,
                           IBP_NKEY_PUBLIC_LEN);
    if (!b32_decode(text, len, raw, sizeof raw))
        return ibp_err_set(err, IBP_E_KEY_FORMAT,
                           "not a public NATS nkey: not base32 (A-Z, 2-7, no padding)");
    uint16_t want = crc16_xmodem(raw, PUBLIC_RAW_LEN - 2);
    uint16_t got = (uint16_t)(raw[PUBLIC_RAW_LEN - 2] | (raw[PUBLIC_RAW_LEN - 1] << 8));
    if (want != got)
        return ibp_err_set(err, IBP_E_KEY_FORMAT,
                           "public NATS nkey has a bad checksum (CRC-16 %04x, expected %04x); is "
                           "it complete and unchanged?",
                           (unsigned)got, (unsigned)want);
    if ((raw[0] & 0xf8u) == PREFIX_SEED)
        return ibp_err_set(err, IBP_E_KEY_FORMAT, "an nkey seed, not a public key");
    if (raw[0] != PREFIX_USER)
        return ibp_err_set(err, IBP_E_KEY_FORMAT,
                           "%s public nkey, not a user's ('U...'); NATS clients authenticate as "
                           "users",
                           prefix_name(raw[0]));
    if (pk)
        memcpy(pk, raw + 1, IBP_NKEY_RAW_BYTES);
    return IBP_OK;
}

ibp_status ibp_nkey_generate_user(char seed[IBP_NKEY_SEED_SIZE], char pub[IBP_NKEY_PUBLIC_SIZE])
{
    uint8_t raw[IBP_NKEY_RAW_BYTES];
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    if (!seed || !pub || ibp_crypto_init() != IBP_OK)
        return IBP_E_CRYPTO;
    randombytes_buf(raw, sizeof raw);
    ibp_status st = IBP_OK;
    if (crypto_sign_seed_keypair(pk, sk, raw) != 0) {
        st = IBP_E_CRYPTO;
        goto out;
    }
    ibp_nkey_encode_user_seed(raw, seed);
    ibp_nkey_encode_user_public(pk, pub);
out:
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(sk, sizeof sk);
    return st;
}

ibp_status ibp_nkey_save_user_seed(const char *path, const char seed[IBP_NKEY_SEED_SIZE],
                                   ibp_err *err)
{
    char line[IBP_NKEY_SEED_SIZE + 1];
    if (!path || !seed || strlen(seed) != IBP_NKEY_SEED_LEN)
        return ibp_err_set(err, IBP_E_INVAL, "save nkey seed: no path or not a seed");
    memcpy(line, seed, IBP_NKEY_SEED_LEN);
    line[IBP_NKEY_SEED_LEN] = '\n';
    ibp_status st = IBP_OK;
    /* O_EXCL: an existing identity is never replaced by accident. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        st = ibp_err_set(err, errno == EEXIST ? IBP_E_EXISTS : IBP_E_IO,
                         "%s: create nkey seed file: %s", path, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0600) != 0 || write(fd, line, sizeof line - 1) != (ssize_t)(sizeof line - 1) ||
        fsync(fd) != 0) {
        st = ibp_err_set(err, IBP_E_IO, "%s: write nkey seed file: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        goto out;
    }
    close(fd);
    st = ibp_file_sync_dir(path, err);
out:
    sodium_memzero(line, sizeof line);
    return st;
}
