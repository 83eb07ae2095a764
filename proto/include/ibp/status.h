/*
 * Status codes shared by every ibp library.
 *
 * Every fallible call returns an ibp_status; results come back through
 * out-parameters that are set only on IBP_OK. The list below is the single
 * source of the codes, their stable names and their messages.
 *
 * Where a caller wants to know *why* (which file, which key, which signer),
 * the call also takes an optional ibp_err that receives a one-line message
 * with that context. Passing NULL is always allowed.
 */
#ifndef IBP_STATUS_H
#define IBP_STATUS_H

#include <stddef.h>

#define IBP_STATUS_LIST(X)                                                                         \
    X(IBP_OK, "ok")                                                                                \
    X(IBP_E_NOMEM, "out of memory")                                                                \
    X(IBP_E_INVAL, "invalid argument")                                                             \
    X(IBP_E_IO, "input/output error")                                                              \
    X(IBP_E_NOT_FOUND, "not found")                                                                \
    X(IBP_E_EXISTS, "already exists")                                                              \
    X(IBP_E_RANGE, "value out of range")                                                           \
    X(IBP_E_CONFIG, "invalid configuration")                                                       \
    X(IBP_E_KEY_PERMS, "key file is readable by others")                                           \
    X(IBP_E_KEY_FORMAT, "malformed key file")                                                      \
    X(IBP_E_CRYPTO, "cryptographic operation failed")                                              \
    X(IBP_E_TOO_LARGE, "over a size or count limit")                                               \
    X(IBP_E_DECODE, "envelope does not decode")                                                    \
    X(IBP_E_UNKNOWN_SIGNER, "unknown signer")                                                      \
    X(IBP_E_BAD_SIGNATURE, "bad signature")                                                        \
    X(IBP_E_ROLE_DENIED, "signer's role may not send this payload type")                           \
    X(IBP_E_REPLAY, "sequence number replayed or older than the last accepted")                    \
    X(IBP_E_PAYLOAD_DECODE, "payload does not decode")                                             \
    X(IBP_E_NATS, "NATS error")                                                                    \
    X(IBP_E_DB, "database error")

typedef enum ibp_status {
#define IBP_STATUS_ENUM(name, msg) name,
    IBP_STATUS_LIST(IBP_STATUS_ENUM)
#undef IBP_STATUS_ENUM
        IBP_STATUS_COUNT
} ibp_status;

/* Human-readable message for a status; never NULL, thread-safe. */
const char *ibp_strerror(ibp_status st);

/* Stable identifier of a status ("IBP_E_REPLAY"), for logs and stats; never NULL. */
const char *ibp_status_name(ibp_status st);

/* Context for an error as it rises: the code and one line saying what failed. */
typedef struct ibp_err {
    ibp_status code;
    char msg[512];
} ibp_err;

/*
 * Sets err (if not NULL) to code and a printf-style message, and returns code
 * so that callers can write `return ibp_err_set(err, IBP_E_IO, "...")`.
 */
ibp_status ibp_err_set(ibp_err *err, ibp_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Prefixes err->msg with more context ("load roster: " + old message).
 * Returns err->code (IBP_E_INVAL when err is NULL).
 */
ibp_status ibp_err_wrap(ibp_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears err (if not NULL) to IBP_OK and an empty message. */
void ibp_err_clear(ibp_err *err);

#endif
