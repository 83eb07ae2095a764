/*
 * Cache files of the official and local result stores.
 *
 * A node keeps `<work dir>/tmp/official.cache.json` and
 * `<work dir>/tmp/local.cache.json` so that a restart begins warm. The caller
 * saves them on its own timer (IBP_CACHE_SAVE_INTERVAL_MS) and at shutdown,
 * and loads them at start-up when caches are enabled. This module only turns
 * contents into files and back; it has no timer and holds no state.
 *
 * File format (JSON, UTF-8, version 1). One object; results and overrides one
 * per line so the file can be read, grepped and diffed:
 *
 *   {"format":"ibp-results-cache","version":1,"kind":"official",
 *    "saved_at_ms":1700000000000,"epoch":42,
 *   "results":[
 *   {"type":"site","check":"ping","member":"Stake Plus","domain":"","endpoint":"",
 *    "ipv6":false,"up":true,"check_time_ms":1700000000000,"error":""},
 *   {"type":"endpoint","check":"wss","member":"m1","domain":"rpc.example.net",
 *    "endpoint":"wss://rpc.example.net/polkadot","ipv6":true,"up":false,
 *    "check_time_ms":1700000000000,"error":"timeout","data":{"latency_ms":812}}
 *   ],
 *   "overrides":[
 *   {"member":"m2","disabled":true,"reason":"maintenance","time_ms":1700000000000}
 *   ]}
 *
 *   format        "ibp-results-cache"                                   required
 *   version       1 (IBP_CACHE_VERSION)                                 required
 *   kind          "official" | "local"; must be the kind asked for      required
 *   saved_at_ms   integer, Unix ms UTC, when it was written             required
 *   epoch         integer >= 0, the official epoch the contents are     optional,
 *                 from; never present in a local cache                  official only
 *   results       array of result objects                               required
 *     type          "site" | "domain" | "endpoint"                      required
 *     check, member non-empty strings                                   required
 *     domain, endpoint strings, "" when the type has none               optional ("")
 *     ipv6, up      booleans                                            required
 *     check_time_ms integer, Unix ms UTC                                required
 *     error         string                                              optional ("")
 *     data          JSON object                                         optional (none)
 *   overrides     array of override objects                             required
 *     member        non-empty string (<= IBP_NAME_MAX bytes)            required
 *     disabled      boolean                                             required
 *     reason        string (cut to IBP_ERROR_MAX bytes)                 optional ("")
 *     time_ms       integer, Unix ms UTC                                required
 *   certificate   object, the quorum certificate of `epoch`             optional,
 *                 (ibp/certificate.h); added without a version bump:    official only
 *                 older readers ignore it, and a file without it reads
 *                 as uncertified
 *     local_seq     integer >= 0, the snapshot's LOCAL sequence         required
 *     state_digest  64 lower-case hex digits                            required
 *     snapshot_hash 64 lower-case hex digits (BLAKE2b-256 of the        required
 *                   snapshot payload)
 *     bytes         lower-case hex of the EpochCertificate bytes        required
 *     snapshot      lower-case hex of the OfficialSnapshot payload      optional
 *                   bytes the statements vouch for (their hash is       (a file
 *                   snapshot_hash)                                      without it
 *                                                                       reads as
 *                                                                       uncertified)
 *
 * The loader only checks the certificate's shape; whether it certifies the
 * epoch is ibp_cache_certificate_check()'s judgement, which the caller asks
 * for with its roster and quorum. The statements vouch for the snapshot
 * bytes, and the snapshot for the results and overrides: a certified file's
 * results and disabled overrides must be exactly the snapshot's (key, up,
 * check_time_ms, error, data as JSON; member and reason), so a results line
 * edited by hand makes the whole certificate fail.
 *
 * Results follow the rules of ibp_result_new() (the key shape of each type,
 * length caps, data an object, error texts cut). Unknown members are ignored,
 * so a later writer may add fields without a new version; a change that an
 * old reader would misread bumps the version. Results are written sorted by
 * ibp_result_key_cmp() and overrides by member, so equal contents give equal
 * files.
 *
 * The loader rejects the whole file when anything is wrong: it does not
 * parse (truncated, garbage, invalid UTF-8, "\u0000" in a string, trailing
 * bytes), an object has the same member twice, a field is missing or of the
 * wrong type, the format, version or kind differ, an entry fails validation,
 * two results have the same key or two overrides the same member (duplicate
 * keys: the file is rejected, not "last wins": the writer never produces them,
 * so they mean the file is not what we wrote), or it is larger than
 * IBP_CACHE_MAX_BYTES. A rejected file is renamed to
 * `<name>.corrupt-YYYYmmddTHHMMSSZ` (UTC; ".1", ".2", ... appended if that name
 * is taken) and logged at WARN with the reason, and the load reports an empty
 * cache with outcome IBP_CACHE_DISCARDED, so the node starts empty and the
 * evidence is kept for a human. If the rename fails, that is logged too and
 * the file is left where it is (the next save replaces it).
 *
 * Thread safety: no shared state. Calls on different paths may run in
 * parallel; calls on the same path must be serialised by the caller (the
 * atomic write uses one temporary name per process).
 */
#ifndef IBP_CACHE_H
#define IBP_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/certificate.h"
#include "ibp/result.h"
#include "ibp/roster.h"
#include "ibp/status.h"

#define IBP_CACHE_FORMAT "ibp-results-cache"
#define IBP_CACHE_VERSION 1
/* Subdirectory of the work dir that holds the caches; created with mode 0700. */
#define IBP_CACHE_DIR "tmp"
/* Mode of the cache files. */
#define IBP_CACHE_FILE_MODE 0600
/* Files larger than this are treated as corrupt. */
#define IBP_CACHE_MAX_BYTES ((size_t)512 * 1024 * 1024)
/* How often the caller should save (its timer), besides at shutdown. */
#define IBP_CACHE_SAVE_INTERVAL_MS 90000
/* Room for any path this module builds (cache path + ".corrupt-..." suffix). */
#define IBP_CACHE_PATH_MAX 4200

typedef enum ibp_cache_kind {
    IBP_CACHE_OFFICIAL = 1, /* official.cache.json */
    IBP_CACHE_LOCAL = 2,    /* local.cache.json */
} ibp_cache_kind;

/* "official", "local"; "?" for anything else. Never NULL. */
const char *ibp_cache_kind_name(ibp_cache_kind kind);

/* A member override as cached. Strings are never NULL when loaded; NULL means "" on save. */
typedef struct ibp_cache_override {
    const char *member;
    bool disabled;
    const char *reason;
    int64_t time_ms; /* Unix ms, UTC: when the override was made */
} ibp_cache_override;

/* The certificate kept with an official cache, and what its claim needs. */
typedef struct ibp_cache_certificate {
    uint64_t local_seq; /* <= INT64_MAX */
    uint8_t state_digest[IBP_CERT_DIGEST_BYTES];
    uint8_t snapshot_hash[IBP_CERT_DIGEST_BYTES];
    const uint8_t *bytes; /* EpochCertificate bytes (ibp_certificate_encode) */
    size_t len;
    /* The OfficialSnapshot payload the certificate is about; saving needs it,
     * a loaded file may lack it (then it is not certified). */
    const uint8_t *snapshot;
    size_t snapshot_len;
} ibp_cache_certificate;

/*
 * What to save. Everything is borrowed for the duration of the call.
 * results may hold the store's own (immutable) results; their order does not
 * matter. Result keys and override members must be unique.
 */
typedef struct ibp_cache_contents {
    ibp_cache_kind kind;
    int64_t saved_at_ms; /* 0: the current time is used */
    bool has_epoch;      /* official only */
    uint64_t epoch;      /* <= INT64_MAX */
    const ibp_result *const *results;
    size_t result_count;
    const ibp_cache_override *overrides;
    size_t override_count;
    const ibp_cache_certificate *certificate; /* official with an epoch only; NULL: none */
} ibp_cache_contents;

typedef enum ibp_cache_outcome {
    IBP_CACHE_LOADED = 0,    /* the file was read and is valid */
    IBP_CACHE_MISSING = 1,   /* there was no file: empty */
    IBP_CACHE_DISCARDED = 2, /* the file was rejected (and moved aside): empty */
} ibp_cache_outcome;

/* "loaded", "missing", "discarded"; "?" for anything else. Never NULL. */
const char *ibp_cache_outcome_name(ibp_cache_outcome outcome);

/*
 * A loaded cache, owned by the caller; free with ibp_cache_loaded_free().
 * When outcome is not IBP_CACHE_LOADED, it is empty.
 */
typedef struct ibp_cache_loaded {
    ibp_cache_outcome outcome;
    ibp_cache_kind kind;
    int64_t saved_at_ms; /* 0 unless loaded */
    bool has_epoch;
    uint64_t epoch;
    /* Owned results, sorted by ibp_result_key_cmp(). A caller may take an
     * item (set items[i] to NULL); ibp_cache_loaded_free() skips NULLs. */
    ibp_result_list results;
    /* Owned array sorted by member; its strings belong to this struct and
     * stay valid until ibp_cache_loaded_free(). */
    ibp_cache_override *overrides;
    size_t override_count;
    /* IBP_CACHE_DISCARDED only: why, and where the file went ("" if it could
     * not be moved). Both "" otherwise. */
    char reason[512];
    char moved_to[IBP_CACHE_PATH_MAX];
    char *strings; /* private: the text the overrides point into */
    /* The certificate of the file, when it has one (bytes owned). */
    bool has_certificate;
    ibp_cache_certificate certificate;
} ibp_cache_loaded;

/*
 * Writes "<work_dir>/tmp/<kind>.cache.json" into buf (NUL-terminated).
 * IBP_E_INVAL for a NULL or empty work_dir or an unknown kind; IBP_E_RANGE
 * (naming the work dir) when it does not fit in cap. Thread-safe.
 */
ibp_status ibp_cache_path(const char *work_dir, ibp_cache_kind kind, char *buf, size_t cap,
                          ibp_err *err);

/*
 * Saves contents to path atomically (temporary file, fsync, rename, directory
 * fsync; see ibp_file_write_atomic) with mode 0600. If the directory of path
 * does not exist it is created with mode 0700 (one level only: its parent
 * must exist). Nothing is kept after the call.
 *
 * Result keys are written as they are; a result whose key strings are not
 * valid UTF-8 cannot be written faithfully and is skipped with a WARN log
 * (the save still succeeds). Error texts and reasons that are not valid UTF-8
 * have the bad bytes replaced by '?' (same length).
 *
 * Errors (the message names the path): IBP_E_INVAL for a NULL argument, an
 * unknown kind, an epoch on a local cache or over INT64_MAX, a NULL result,
 * an override with an empty or over-long member, or duplicate result keys or
 * override members; IBP_E_IO when the directory cannot be created or the file
 * cannot be written; IBP_E_RANGE when path is too long; IBP_E_NOMEM. On error
 * an existing file at path is left unchanged.
 */
ibp_status ibp_cache_save(const char *path, const ibp_cache_contents *contents, ibp_err *err);

/*
 * Loads the cache at path, expecting kind, into *out (set only on IBP_OK;
 * the caller frees it with ibp_cache_loaded_free()).
 *
 * IBP_OK with out->outcome:
 *   IBP_CACHE_LOADED     the contents of the file;
 *   IBP_CACHE_MISSING    no file at path: empty (the normal first start);
 *   IBP_CACHE_DISCARDED  the file was rejected (see the top of this file):
 *                        empty, reason and moved_to say why and where, and a
 *                        WARN line was logged.
 * Errors (message names the path; *out untouched): IBP_E_INVAL for NULL
 * arguments or an unknown kind; IBP_E_IO when the file exists but cannot be
 * read (permissions, not a regular file, read error): it is left alone, as
 * nothing says it is corrupt, and the caller should start empty and log;
 * IBP_E_NOMEM.
 */
ibp_status ibp_cache_load(const char *path, ibp_cache_kind kind, ibp_cache_loaded *out,
                          ibp_err *err);

/*
 * Renames the file at path to "<path>.<tag>-YYYYmmddTHHMMSSZ" (UTC; ".1",
 * ".2", ... appended if that name is taken) so that it stays for a human,
 * and syncs the directory. moved_to (cap bytes) gets the new name. false
 * when it was not moved (moved_to "", *errnum ENAMETOOLONG or the rename's
 * errno); it is then left where it is. Logs nothing. The loader moves
 * corrupt files aside with tag "corrupt"; ibp_data moves official caches
 * whose certificate it refuses with tag "refused".
 */
bool ibp_cache_move_aside(const char *path, const char *tag, char *moved_to, size_t cap,
                          int *errnum);

/* Frees everything a load returned and leaves *c empty. Accepts NULL. */
void ibp_cache_loaded_free(ibp_cache_loaded *c);

/*
 * Judges the certificate of a loaded official cache: the claim is its epoch,
 * local_seq, state_digest and snapshot_hash, and ibp_certificate_verify()
 * counts the statements with the roster's keys against quorum (>= 1); then
 * the snapshot bytes must hash to snapshot_hash, decode, carry the same
 * epoch, local_seq and state digest, and hold exactly the file's results and
 * disabled overrides. IBP_OK when all of it holds. Otherwise why (cap bytes,
 * may be NULL) says why in one line ("no certificate", "certificate does not
 * decode", "certificate of epoch 7, cache holds 8", "1 of quorum 2 signers
 * counted (2 statements); first refusal: statement differs from the snapshot
 * (signer n2)", "no snapshot bytes with the certificate", "results differ
 * from the certified snapshot: ...") and the status is IBP_E_NOT_FOUND (no
 * certificate, or no snapshot bytes), IBP_E_PAYLOAD_DECODE (does not decode,
 * other epoch, contents differ) or IBP_E_BAD_SIGNATURE (not certified, or
 * the snapshot is not the one certified). *res (may be NULL) gets the
 * verifier's result. Pure.
 */
ibp_status ibp_cache_certificate_check(const ibp_cache_loaded *c, const ibp_roster *roster,
                                       size_t quorum, ibp_certificate_result *res, char *why,
                                       size_t cap);

#endif
