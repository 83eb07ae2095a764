/*
 * NATS NKeys for user authentication (nats.nkey_seed_file, the roster's
 * "nats_nkey").
 *
 * nats.c signs the server's nonce with the seed file itself, but it must be
 * told the user's public key too; this module derives that public key from
 * the seed, so the configuration names one file only. It also makes new user
 * nkeys (ibpctl keygen --nkey-out) and checks the public keys a roster lists.
 *
 * A node's NATS nkey is a key pair of its own, never its Ed25519 signing key
 * (ibp/key.h): at each connect the server picks a nonce and the client signs
 * it with the nkey. Were the two the same key, a server (or anyone posing as
 * one) could choose "nonces" that are valid envelope signing inputs and have
 * the node sign them: a cross-protocol signing oracle.
 *
 * Encoding (as the NATS tools write it): base32 (RFC 4648 alphabet, upper
 * case, no padding) of
 *
 *   seed:    [0x95 0x00][32-byte Ed25519 seed][CRC-16]     58 characters "SU..."
 *   public:  [0xA0][32-byte Ed25519 public key][CRC-16]    56 characters "U..."
 *
 * where 0xA0 is the user prefix (20 << 3); a seed's first two bytes are the
 * seed prefix (18 << 3) with the user prefix spread over them. The CRC is
 * CRC-16/XMODEM (polynomial 0x1021, initial value 0) of the bytes before it,
 * stored little-endian.
 *
 * A seed file holds one seed; whitespace and line ends around it are
 * ignored. Like ibp key files (ibp/key.h) it must be readable by its owner
 * only.
 *
 * Secrets (decoded seeds, the Ed25519 secret key, the file's bytes) are
 * wiped from memory before these functions return. All functions are
 * thread-safe (libsodium is initialised through ibp_crypto_init).
 */
#ifndef IBP_NKEY_H
#define IBP_NKEY_H

#include <stddef.h>
#include <stdint.h>

#include "ibp/status.h"

/* Characters of an encoded user seed and public key, and buffer sizes with NUL. */
#define IBP_NKEY_SEED_LEN 58
#define IBP_NKEY_PUBLIC_LEN 56
#define IBP_NKEY_SEED_SIZE (IBP_NKEY_SEED_LEN + 1)
#define IBP_NKEY_PUBLIC_SIZE (IBP_NKEY_PUBLIC_LEN + 1)

/* Raw Ed25519 seed and public key lengths. */
#define IBP_NKEY_RAW_BYTES 32

/*
 * Derives the public user nkey ("U...", NUL-terminated, into pub) from an
 * encoded user seed of len characters (text; leading and trailing
 * whitespace allowed, no NUL needed). pub is written only on success.
 * Errors (err->msg says which):
 *   IBP_E_KEY_FORMAT  not base32 of the right length, bad CRC, not a seed,
 *                     or a seed of another kind than a user (account,
 *                     operator, server...)
 *   IBP_E_CRYPTO      libsodium failed
 *   IBP_E_INVAL       seed or pub is NULL
 */
ibp_status ibp_nkey_user_public_from_seed(const char *seed, size_t len,
                                          char pub[IBP_NKEY_PUBLIC_SIZE], ibp_err *err);

/*
 * Reads the user seed file at path and derives its public key into pub (as
 * above). Errors name the file:
 *   IBP_E_IO          cannot open or read it
 *   IBP_E_KEY_PERMS   group or other may access it (it must be mode 0600 or
 *                     stricter); checked on the open file before reading
 *   IBP_E_KEY_FORMAT  not a regular file, too large, or not a user seed
 *   IBP_E_CRYPTO, IBP_E_INVAL as above
 */
ibp_status ibp_nkey_load_user_public(const char *path, char pub[IBP_NKEY_PUBLIC_SIZE],
                                     ibp_err *err);

/*
 * Encodes a raw 32-byte Ed25519 seed as a user seed ("SU...", NUL-terminated)
 * into out. The caller owns out and should wipe it when done. Cannot fail.
 */
void ibp_nkey_encode_user_seed(const uint8_t seed[IBP_NKEY_RAW_BYTES],
                               char out[IBP_NKEY_SEED_SIZE]);

/* Encodes a raw 32-byte Ed25519 public key as a public user nkey ("U...") into out. */
void ibp_nkey_encode_user_public(const uint8_t pk[IBP_NKEY_RAW_BYTES],
                                 char out[IBP_NKEY_PUBLIC_SIZE]);

/*
 * Decodes a public user nkey ("U...", exactly IBP_NKEY_PUBLIC_LEN characters,
 * NUL-terminated, no whitespace) into its raw Ed25519 public key; pk may be
 * NULL to only check it. pk is written only on success.
 * Errors: IBP_E_KEY_FORMAT (err->msg says why: length, base32, checksum, a
 * seed, or a public key of another kind than a user), IBP_E_INVAL (NULL text).
 */
ibp_status ibp_nkey_decode_user_public(const char *text, uint8_t pk[IBP_NKEY_RAW_BYTES],
                                       ibp_err *err);

/*
 * Makes a new user nkey from the system's random source: its seed ("SU...")
 * into seed and its public key ("U...") into pub, both NUL-terminated. The
 * caller wipes seed when done (sodium_memzero). Errors: IBP_E_CRYPTO.
 */
ibp_status ibp_nkey_generate_user(char seed[IBP_NKEY_SEED_SIZE], char pub[IBP_NKEY_PUBLIC_SIZE]);

/*
 * Writes a user seed file: the seed and a line end, mode 0600, created
 * exclusively (an existing file is never overwritten) and synced with its
 * directory. Errors: IBP_E_EXISTS (the file exists), IBP_E_IO (naming the
 * file), IBP_E_INVAL.
 */
ibp_status ibp_nkey_save_user_seed(const char *path, const char seed[IBP_NKEY_SEED_SIZE],
                                   ibp_err *err);

#endif
