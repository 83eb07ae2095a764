/*
 * Ed25519 signing keys (libsodium).
 *
 * Secret key file format (one line, text):
 *     ibp-ed25519-secret:<base64 of the 32-byte seed>
 * Public keys travel in the roster as standard base64 of the 32 raw bytes.
 *
 * A secret key file must be readable by its owner only: ibp_key_load() refuses
 * a file with any group or other permission bit (IBP_E_KEY_PERMS, naming the
 * file and its mode), and ibp_key_save() creates files with mode 0600.
 */
#ifndef IBP_KEY_H
#define IBP_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "ibp/status.h"

#define IBP_PUBKEY_BYTES 32
#define IBP_SECKEY_BYTES 64
#define IBP_SIGNATURE_BYTES 64
/* base64 of 32 bytes with padding is 44 characters, plus NUL. */
#define IBP_PUBKEY_B64_SIZE 45

typedef struct ibp_key {
    uint8_t pk[IBP_PUBKEY_BYTES];
    uint8_t sk[IBP_SECKEY_BYTES];
} ibp_key;

/* Initialises libsodium once; safe to call from many threads. IBP_E_CRYPTO on failure. */
ibp_status ibp_crypto_init(void);

/* Fills *out with a fresh key pair. Thread-safe. */
ibp_status ibp_key_generate(ibp_key *out);

/*
 * Writes the secret key to path, creating it with mode 0600. Refuses to
 * overwrite an existing file (IBP_E_EXISTS). IBP_E_IO with the path on error.
 */
ibp_status ibp_key_save(const ibp_key *key, const char *path, ibp_err *err);

/*
 * Reads a secret key file into *out. Errors: IBP_E_KEY_PERMS (group/other may
 * read it), IBP_E_KEY_FORMAT (not the format above), IBP_E_IO (cannot open).
 * Every message names the file.
 */
ibp_status ibp_key_load(const char *path, ibp_key *out, ibp_err *err);

/* Writes the public key as base64 (IBP_PUBKEY_B64_SIZE bytes with NUL) into out. */
void ibp_key_public_b64(const uint8_t pk[IBP_PUBKEY_BYTES], char out[IBP_PUBKEY_B64_SIZE]);

/* Parses a base64 public key. IBP_E_KEY_FORMAT unless it is exactly 32 bytes. */
ibp_status ibp_key_public_parse(const char *b64, uint8_t pk[IBP_PUBKEY_BYTES]);

/* Overwrites the secret half with zeros. Accepts NULL. */
void ibp_key_wipe(ibp_key *key);

#endif
