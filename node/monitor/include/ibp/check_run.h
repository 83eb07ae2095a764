/*
 * Running one check against one target (ibp/check_plan.h), once, on the
 * calling thread: the drivers of the modules (sockets, TLS through libcurl,
 * ICMP). Every phase (connect and TLS, the upgrade, each call, each read)
 * ends by the target's Timeout counted from the start, so a target that
 * hangs or trickles bytes costs its caller at most that long. Responses are
 * cut off at env->max_response_bytes (the check is then down).
 *
 * Thread-safe: any number of threads may run checks at once (call
 * ibp_check_global_init once first; it is idempotent).
 */
#ifndef IBP_CHECK_RUN_H
#define IBP_CHECK_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/check_plan.h"
#include "ibp/status.h"

#define IBP_CHECK_MAX_RESPONSE_DEFAULT (1024 * 1024)

/*
 * The CAs the TLS checks trust, loaded once and shared by every check (an
 * OpenSSL X509_STORE handed to each connection's SSL_CTX): loading the
 * system's bundle costs some 40 ms of CPU, which libcurl would otherwise
 * spend on every connection. Immutable once loaded; thread-safe.
 */
typedef struct ibp_check_trust ibp_check_trust;

/*
 * Loads ca_file (PEM), or with NULL the system's default CAs. IBP_E_CONFIG
 * naming the file when it cannot be read or holds no certificate;
 * IBP_E_NOMEM. *out is set only on success.
 */
ibp_status ibp_check_trust_load(const char *ca_file, ibp_check_trust **out, ibp_err *err);

/* Frees it (connections still open keep their own reference); accepts NULL. */
void ibp_check_trust_free(ibp_check_trust *t);

typedef struct ibp_check_env {
    const ibp_check_trust *trust; /* the CAs TLS trusts; NULL: libcurl loads ca_file itself */
    const char *ca_file;          /* without trust: PEM bundle; NULL: the system's */
    size_t max_response_bytes;    /* one response (HTTP body, WebSocket message); 0: default */
} ibp_check_env;

typedef struct ibp_check_outcome {
    bool up;
    char error[512]; /* why it is down; "" when up */
    char *data_json; /* the Data object (malloc'd), never NULL after a run */
    int64_t duration_ms;
} ibp_check_outcome;

/* Initialises libcurl once for the process (thread-safe, idempotent). */
ibp_status ibp_check_global_init(void);

/* Runs t once and fills *out (free its data with ibp_check_outcome_clear). */
void ibp_check_run(const ibp_check_target *t, const ibp_check_env *env, ibp_check_outcome *out);

/* Frees out's data; accepts NULL. */
void ibp_check_outcome_clear(ibp_check_outcome *out);

#endif
