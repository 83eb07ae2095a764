/* Ed25519 keys and key files; see ibp/key.h. */
#include "ibp/key.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ibp/atomic_file.h"

#define KEY_PREFIX "ibp-ed25519-secret:"
#define KEY_FILE_MAX 256

ibp_status ibp_crypto_init(void)
{
    /* sodium_init() is itself thread-safe and idempotent (returns 1 when done before). */
    return sodium_init() < 0 ? IBP_E_CRYPTO : IBP_OK;
}

ibp_status ibp_key_generate(ibp_key *out)
{
    if (!out)
        return IBP_E_INVAL;
    if (ibp_crypto_init() != IBP_OK)
        return IBP_E_CRYPTO;
    if (crypto_sign_keypair(out->pk, out->sk) != 0)
        return IBP_E_CRYPTO;
    return IBP_OK;
}

void ibp_key_public_b64(const uint8_t pk[IBP_PUBKEY_BYTES], char out[IBP_PUBKEY_B64_SIZE])
{
    sodium_bin2base64(out, IBP_PUBKEY_B64_SIZE, pk, IBP_PUBKEY_BYTES,
                      sodium_base64_VARIANT_ORIGINAL);
}

ibp_status ibp_key_public_parse(const char *b64, uint8_t pk[IBP_PUBKEY_BYTES])
{
    size_t n = 0;
    const char *end = NULL;
    if (!b64)
        return IBP_E_KEY_FORMAT;
    size_t len = strlen(b64);
    if (len != IBP_PUBKEY_B64_SIZE - 1)
        return IBP_E_KEY_FORMAT;
    if (sodium_base642bin(pk, IBP_PUBKEY_BYTES, b64, len, NULL, &n, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        n != IBP_PUBKEY_BYTES || *end != '\0')
        return IBP_E_KEY_FORMAT;
    return IBP_OK;
}

ibp_status ibp_key_save(const ibp_key *key, const char *path, ibp_err *err)
{
    char line[KEY_FILE_MAX];
    char b64[sodium_base64_ENCODED_LEN(crypto_sign_SEEDBYTES, sodium_base64_VARIANT_ORIGINAL)];
    uint8_t seed[crypto_sign_SEEDBYTES];
    ibp_status st = IBP_OK;

    if (!key || !path)
        return ibp_err_set(err, IBP_E_INVAL, "save key: no key or path");
    if (crypto_sign_ed25519_sk_to_seed(seed, key->sk) != 0)
        return ibp_err_set(err, IBP_E_CRYPTO, "%s: cannot derive seed", path);
    sodium_bin2base64(b64, sizeof b64, seed, sizeof seed, sodium_base64_VARIANT_ORIGINAL);
    int n = snprintf(line, sizeof line, KEY_PREFIX "%s\n", b64);

    /* O_EXCL: an existing key is never overwritten by accident. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        st = ibp_err_set(err, errno == EEXIST ? IBP_E_EXISTS : IBP_E_IO, "%s: create key file: %s",
                         path, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0600) != 0 || write(fd, line, (size_t)n) != n || fsync(fd) != 0) {
        st = ibp_err_set(err, IBP_E_IO, "%s: write key file: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        goto out;
    }
    close(fd);
    st = ibp_file_sync_dir(path, err);
out:
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(b64, sizeof b64);
    sodium_memzero(line, sizeof line);
    return st;
}

ibp_status ibp_key_load(const char *path, ibp_key *out, ibp_err *err)
{
    char buf[KEY_FILE_MAX];
    uint8_t seed[crypto_sign_SEEDBYTES];
    ibp_status st = IBP_OK;
    ssize_t n = 0;

    if (!path || !out)
        return ibp_err_set(err, IBP_E_INVAL, "load key: no path");
    if (ibp_crypto_init() != IBP_OK)
        return ibp_err_set(err, IBP_E_CRYPTO, "%s: libsodium failed to initialise", path);

    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return ibp_err_set(err, IBP_E_IO, "%s: open key file: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = ibp_err_set(err, IBP_E_IO, "%s: stat key file: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = ibp_err_set(err, IBP_E_KEY_FORMAT, "%s: key file is not a regular file", path);
        goto out;
    }
    /* Checked on the open descriptor, so the file cannot be swapped in between. */
    if (sb.st_mode & 077) {
        st = ibp_err_set(err, IBP_E_KEY_PERMS,
                         "%s: key file has mode %04o; it must be readable by its owner only "
                         "(chmod 600 %s)",
                         path, (unsigned)(sb.st_mode & 07777), path);
        goto out;
    }
    n = read(fd, buf, sizeof buf - 1);
    if (n < 0) {
        st = ibp_err_set(err, IBP_E_IO, "%s: read key file: %s", path, strerror(errno));
        goto out;
    }
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    size_t plen = strlen(KEY_PREFIX);
    size_t seedlen = 0;
    const char *end = NULL;
    if (strncmp(buf, KEY_PREFIX, plen) != 0 ||
        sodium_base642bin(seed, sizeof seed, buf + plen, (size_t)n - plen, NULL, &seedlen, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        seedlen != sizeof seed || *end != '\0') {
        st = ibp_err_set(err, IBP_E_KEY_FORMAT,
                         "%s: not an ibp secret key (expected one line '" KEY_PREFIX
                         "<base64 of 32 bytes>')",
                         path);
        goto out;
    }
    if (crypto_sign_seed_keypair(out->pk, out->sk, seed) != 0)
        st = ibp_err_set(err, IBP_E_CRYPTO, "%s: cannot derive key pair", path);
out:
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(buf, sizeof buf);
    close(fd);
    return st;
}

void ibp_key_wipe(ibp_key *key)
{
    if (key)
        sodium_memzero(key->sk, sizeof key->sk);
}
