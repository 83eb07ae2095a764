/*
 * The vote engine: the pure, deterministic core of consensus (DESIGN.md §6).
 *
 * A replica reads the LOCAL stream in order and hands every verified message to
 * ibp_vote_apply(). The engine keeps each monitor's latest observation of each
 * key, votes, and returns what changed in the official state. It reads no clock,
 * does no I/O, uses no threads and no randomness: time inside the engine is the
 * stream timestamp of the message being applied. Two engines created with the
 * same configuration that apply the same messages in the same order hold the
 * same state and report the same updates and the same digest, on any machine.
 *
 * This header depends on nothing but the C library; the driver converts between
 * these plain structs and the wire format (proto/ibp.proto).
 *
 * Rules (all ages measured in stream time, "younger than X" means age < X):
 *  - A monitor is any signer of an OBSERVATION_BATCH or HEARTBEAT. It is active
 *    while its last such message is younger than active_window_ms.
 *  - Quorum = max(quorum_min, floor(active monitors / 2) + 1), counted at the
 *    message being applied (its sender included).
 *  - The voters of a key are the monitors whose latest observation of it is
 *    younger than staleness_ms, the age taken from the stream time of the batch
 *    that carried it (check_time_ms is data, never a clock). Because
 *    staleness_ms <= active_window_ms (enforced), a fresh voter is always active.
 *  - A key is decided only when an applied message carries an observation of it:
 *    it first becomes official when a quorum of voters agrees, and an official
 *    status flips only when a quorum of voters reports the other status. Time
 *    alone never flips anything: a monitor leaving the active window lowers the
 *    quorum, and that takes effect at the key's next observation (monitors
 *    re-observe every refresh interval, well inside staleness_ms). This is the
 *    conservative reading of §6: every flip is triggered by, and its evidence
 *    includes, an observation of that very key in the message that flipped it.
 *  - The official result takes check time, error and data from the newest
 *    observation (largest check_time_ms, ties: smallest node id in byte order)
 *    among the voters reporting the decided status. It is frozen until the
 *    status changes again: later observations with newer check times do not
 *    refresh it. So the official state changes only when the epoch advances,
 *    and the digest is a function of the state at that epoch.
 *  - A key that no monitor has observed for expiry_ms leaves the engine (and
 *    the official state, if it was official) at the first message applied at
 *    or after that time, whichever message it is.
 *  - A MEMBER_OVERRIDE disables a member (kept in the state with its reason)
 *    or enables it (removed from the state). One that changes nothing (same
 *    flag and reason) is a no-op. The override signer does not count as a
 *    monitor.
 *  - A message that changes an official status, adds or removes an official
 *    key, or changes an override advances the epoch by exactly one.
 *  - Batches flagged full are treated like any other: a key a monitor stops
 *    reporting stops counting its vote once the observation is stale, which
 *    holds equally for chunked full refreshes. The memory of an observation is
 *    freed when its key expires, or when it is older than expiry_ms at the
 *    key's next evaluation (it can never vote again by then); until then it
 *    counts toward its monitor's max_keys_per_node.
 *
 * Memory: the engine owns everything it returns; pointers in an update, an
 * export or an iteration stay valid until the next call that takes a
 * non-const engine (apply, export, import, free). Strings passed in are
 * borrowed for the call; the engine copies what it keeps. NULL string
 * pointers in inputs mean "".
 *
 * Thread safety: none. One thread steps one engine; distinct engines are
 * independent.
 */
#ifndef IBP_VOTE_H
#define IBP_VOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/types.h"

/* Result codes of the engine (the driver maps them to ibp_status). */
#define IBP_VOTE_RC_LIST(X)                                                                        \
    X(IBP_VOTE_OK, "ok")                                                                           \
    X(IBP_VOTE_E_INVAL, "malformed message or argument")                                           \
    X(IBP_VOTE_E_LIMIT, "message exceeds a configured limit")                                      \
    X(IBP_VOTE_E_SEQ, "LOCAL sequence not above the last one applied")                             \
    X(IBP_VOTE_E_CONFIG, "invalid configuration")                                                  \
    X(IBP_VOTE_E_STATE, "inconsistent engine state")                                               \
    X(IBP_VOTE_E_DIGEST, "state digest mismatch")                                                  \
    X(IBP_VOTE_E_NOMEM, "out of memory")                                                           \
    X(IBP_VOTE_E_POISONED, "engine unusable after an earlier out-of-memory failure")

typedef enum ibp_vote_rc {
#define IBP_VOTE_RC_ENUM(name, msg) name,
    IBP_VOTE_RC_LIST(IBP_VOTE_RC_ENUM)
#undef IBP_VOTE_RC_ENUM
        IBP_VOTE_RC_COUNT
} ibp_vote_rc;

/* Message for a result code; never NULL. Thread-safe. */
const char *ibp_vote_strerror(ibp_vote_rc rc);
/* Stable name of a result code ("IBP_VOTE_E_LIMIT"); never NULL. Thread-safe. */
const char *ibp_vote_rc_name(ibp_vote_rc rc);

/* Values match proto/ibp.proto (CheckType, Status, PayloadType) through ibp/types.h. */
typedef enum ibp_vote_check {
    IBP_VOTE_SITE = IBP_CHECK_SITE,
    IBP_VOTE_DOMAIN = IBP_CHECK_DOMAIN,
    IBP_VOTE_ENDPOINT = IBP_CHECK_ENDPOINT,
} ibp_vote_check;

typedef enum ibp_vote_status {
    IBP_VOTE_NONE = IBP_RESULT_NONE, /* no official status (absent, removed) */
    IBP_VOTE_UP = IBP_RESULT_UP,
    IBP_VOTE_DOWN = IBP_RESULT_DOWN,
} ibp_vote_status;

typedef enum ibp_vote_kind {
    IBP_VOTE_MSG_OBSERVATION_BATCH = 1,
    IBP_VOTE_MSG_HEARTBEAT = 2,
    IBP_VOTE_MSG_MEMBER_OVERRIDE = 3,
} ibp_vote_kind;

/* Caps on input strings, in bytes without the NUL (ibp/types.h). */
#define IBP_VOTE_NAME_MAX IBP_NAME_MAX     /* check names, members; bounds signers too */
#define IBP_VOTE_DOMAIN_MAX IBP_DOMAIN_MAX /* lower-case, no trailing dot */
#define IBP_VOTE_URL_MAX IBP_URL_MAX       /* endpoint URLs */
#define IBP_VOTE_ERROR_MAX IBP_ERROR_MAX   /* error texts, override reasons */
#define IBP_VOTE_DATA_MAX IBP_DATA_MAX     /* extra data (a JSON object as text) */
#define IBP_VOTE_DIGEST_SIZE 32            /* bytes */
#define IBP_VOTE_EVENT_ID_SIZE 56          /* bytes, NUL included: "<epoch>-<32 hex>" */
_Static_assert(IBP_VOTE_EVENT_ID_SIZE - 1 <= IBP_EVENT_ID_MAX,
               "an Event id fits the cap persist stores (IBP_EVENT_ID_MAX)");

/*
 * Identity of a result. A site key has empty domain and endpoint; a domain key
 * an empty endpoint; an endpoint key both. Strings are compared byte for byte;
 * domains must already be lower-case without a trailing dot (the engine
 * rejects them otherwise rather than folding silently).
 */
typedef struct ibp_vote_key {
    ibp_vote_check type;
    const char *check_name;
    const char *member;
    const char *domain;
    const char *endpoint;
    bool ipv6;
} ibp_vote_key;

/* One monitor's observation of one key. */
typedef struct ibp_vote_obs {
    ibp_vote_key key;
    ibp_vote_status status; /* UP or DOWN */
    int64_t check_time_ms;  /* the monitor's clock: data only, never compared with stream time */
    const char *error;      /* "" when none */
    const char *data_json;  /* a JSON object as text, "" when none; not parsed */
} ibp_vote_obs;

/* A member override (disabled) or its removal (enabled). */
typedef struct ibp_vote_override {
    const char *member;
    bool disabled;
    const char *reason;
} ibp_vote_override;

/*
 * One LOCAL stream message, already verified by the driver (signature, roster
 * role, replay): the engine trusts signer and kind. The driver hands it
 * heartbeats only from monitor-role signers (a heartbeat counts its signer as
 * an active monitor) and overrides only from admins.
 */
typedef struct ibp_vote_msg {
    ibp_vote_kind kind;
    const char *signer; /* node id from the roster, 1..IBP_VOTE_NAME_MAX bytes */
    uint64_t local_seq; /* LOCAL stream sequence; strictly increasing across applies */
    int64_t stream_ms;  /* LOCAL stream timestamp (Unix ms): the engine's "now" */
    /* OBSERVATION_BATCH */
    uint64_t batch_seq; /* the monitor's batch counter; kept as evidence only */
    bool full;          /* informative: the engine treats full and delta batches alike */
    const ibp_vote_obs *obs;
    size_t nobs;
    /* MEMBER_OVERRIDE */
    ibp_vote_override override;
} ibp_vote_msg;

/*
 * Configuration. Every replica of a cluster must use the same values: they are
 * part of the deterministic function. Fill with ibp_vote_config_init().
 */
typedef struct ibp_vote_config {
    int64_t active_window_ms; /* 600000 */
    int64_t staleness_ms;     /* 180000 (3 x the monitors' 60 s refresh) */
    int64_t expiry_ms;        /* 3600000 */
    uint32_t quorum_min;      /* 2; at least 1, and 1 lets one liar flip keys */
    size_t max_batch_obs;     /* 65536 observations per batch */
    size_t max_keys_per_node; /* 250000 keys with a live observation per monitor */
    size_t max_keys;          /* 250000 keys held in total (an official snapshot of that many
                                 keys, about 27 bytes each, stays under the 8 MiB message limit) */
    size_t max_monitors;      /* 4096 distinct monitor ids ever seen */
    size_t max_overrides;     /* 65536 disabled members */
} ibp_vote_config;

/* Fills cfg with the defaults above. */
void ibp_vote_config_init(ibp_vote_config *cfg);

/*
 * Checks cfg: all durations > 0, staleness_ms <= active_window_ms <= expiry_ms
 * (so a fresh vote always comes from an active monitor, and a returning
 * monitor never revives old votes), quorum_min >= 1, limits >= 1 and
 * max_keys <= 2^31. IBP_VOTE_E_CONFIG otherwise.
 */
ibp_vote_rc ibp_vote_config_check(const ibp_vote_config *cfg);

typedef struct ibp_vote ibp_vote;

/*
 * Creates an empty engine (epoch 0, LOCAL seq 0, empty state). cfg is copied.
 * Errors: IBP_VOTE_E_CONFIG, IBP_VOTE_E_NOMEM. *out is set only on success.
 */
ibp_vote_rc ibp_vote_new(const ibp_vote_config *cfg, ibp_vote **out);

/* Frees an engine and everything it returned. Accepts NULL. */
void ibp_vote_free(ibp_vote *e);

/* A vote: one voter's latest observation of a key when the key was decided. */
typedef struct ibp_vote_vote {
    const char *node;       /* monitor node id */
    uint64_t local_seq;     /* LOCAL sequence of the batch that carried it */
    uint64_t batch_seq;     /* that batch's batch_seq */
    ibp_vote_status status; /* what it reported */
    int64_t check_time_ms;
} ibp_vote_vote;

typedef enum ibp_vote_change_kind {
    IBP_VOTE_ADDED = 1,   /* a key became official */
    IBP_VOTE_FLIPPED = 2, /* an official status changed */
    IBP_VOTE_REMOVED = 3, /* an official key expired */
} ibp_vote_change_kind;

/* One official key changed by the message. */
typedef struct ibp_vote_change {
    ibp_vote_change_kind kind;
    ibp_vote_key key;
    ibp_vote_status status;   /* new status; NONE when removed */
    ibp_vote_status previous; /* NONE when added */
    /* The official result after the change (removed: the one that left). */
    int64_t check_time_ms;
    const char *error;
    const char *data_json;
    /* Evidence: every voter of the key at the decision (both statuses), sorted
     * by node id in byte order. Empty for REMOVED. */
    const ibp_vote_vote *votes;
    size_t nvotes;
} ibp_vote_change;

typedef enum ibp_vote_event_kind {
    IBP_VOTE_EVENT_STATUS = 1, /* matches proto EventKind */
    IBP_VOTE_EVENT_OVERRIDE = 2,
    IBP_VOTE_EVENT_REMOVED = 3,
} ibp_vote_event_kind;

/*
 * An event to publish on EVENTS. STATUS events come from ADDED and FLIPPED
 * changes; REMOVED events from REMOVED changes, with the status, error, data
 * and check time the key had when it left (no votes: expiry has none), so
 * that a consumer ends an outage open for the key. OVERRIDE events have key.type 0,
 * check_name "override", the member, status DOWN for disabled and UP for
 * enabled, and the message's reason in error (an enable's reason too).
 * The id is the same on every replica: "<epoch>-<32 hex digits>", the hex a
 * 128-bit hash of (kind, key or member), unique within an epoch.
 */
typedef struct ibp_vote_event {
    char id[IBP_VOTE_EVENT_ID_SIZE];
    ibp_vote_event_kind kind;
    ibp_vote_key key;
    ibp_vote_status status;
    const char *error;
    const char *data_json;
    int64_t check_time_ms; /* STATUS: the official check time; OVERRIDE: 0 */
    int64_t time_ms;       /* engine time of the change */
    uint64_t epoch;        /* the epoch the change created */
    const char *signer;    /* OVERRIDE: the admin; STATUS: NULL */
    const ibp_vote_vote *votes;
    size_t nvotes;
} ibp_vote_event;

/* What one apply did. */
typedef struct ibp_vote_update {
    bool epoch_advanced; /* true iff the official state changed */
    uint64_t epoch;      /* current epoch (after the message) */
    uint64_t local_seq;  /* the message's LOCAL sequence */
    int64_t now_ms;      /* engine time after the message */
    /* Changes, in a deterministic order: keys decided by the message in the
     * order they first appear in it, then expired keys oldest first. */
    const ibp_vote_change *changes;
    size_t nchanges;
    const ibp_vote_event *events; /* status and removed events in change order, or one
                                     override event */
    size_t nevents;
    uint8_t digest[IBP_VOTE_DIGEST_SIZE]; /* digest of the official state after the message */
    uint32_t active_monitors;             /* informative: active monitors at the message */
    uint32_t quorum;                      /* informative: quorum at the message */
} ibp_vote_update;

/*
 * Applies one LOCAL message (DESIGN.md §6, rules above).
 *
 * Engine time becomes max(previous time, msg->stream_ms): stream timestamps
 * may step back a little (JetStream leader change), and every replica clamps
 * the same way. Validation is done before anything changes, so a message is
 * applied whole or not at all.
 *
 * On IBP_VOTE_OK, *update describes the message (valid until the next
 * non-const call). Errors:
 *  - IBP_VOTE_E_SEQ: local_seq not above the last one given; nothing changes
 *    (a driver bug: it must hand messages in stream order, once).
 *  - IBP_VOTE_E_INVAL (malformed: unknown kind, empty signer, bad key shape,
 *    bad status, over-long string, upper-case domain) and IBP_VOTE_E_LIMIT
 *    (batch size, keys per node, total keys, monitors, overrides): the
 *    message is skipped as a whole; the only state change is that its
 *    local_seq counts as consumed. Every replica skips it the same way. Details
 *    in ibp_vote_last_error().
 *  - IBP_VOTE_E_NOMEM: the engine is left unusable (every later call returns
 *    IBP_VOTE_E_POISONED); free it and restore from a saved state.
 * *update is set only on IBP_VOTE_OK.
 */
ibp_vote_rc ibp_vote_apply(ibp_vote *e, const ibp_vote_msg *msg, ibp_vote_update *update);

/* One line saying why the last call failed ("" after a success); owned by e. */
const char *ibp_vote_last_error(const ibp_vote *e);

/* A summary of the engine. */
typedef struct ibp_vote_info {
    uint64_t epoch;
    uint64_t local_seq; /* last LOCAL sequence consumed (0 before any) */
    int64_t now_ms;     /* engine time (stream time of the newest message applied) */
    uint8_t digest[IBP_VOTE_DIGEST_SIZE];
    size_t official_keys;   /* keys in the official state */
    size_t keys;            /* keys held (official or not) */
    size_t observations;    /* latest observations held */
    size_t monitors;        /* monitors ever seen */
    size_t active_monitors; /* active as of now_ms, as of the last apply */
    size_t overrides;       /* disabled members */
} ibp_vote_info;

/* Fills *info. Never fails; const, so safe to call between applies. */
void ibp_vote_get_info(const ibp_vote *e, ibp_vote_info *info);

/* An official entry, strings borrowed from the engine. */
typedef struct ibp_vote_entry {
    ibp_vote_key key;
    ibp_vote_status status;
    int64_t check_time_ms;
    const char *error;
    const char *data_json;
} ibp_vote_entry;

/*
 * Iterates the official entries, for building a snapshot: set *cursor = 0,
 * then call until it returns false. The order is unspecified (replicas that
 * applied the same prefix may still differ in order, e.g. after a restore);
 * the digest does not depend on it. O(keys held) for a whole pass. The engine
 * must not change during the pass.
 */
bool ibp_vote_official_next(const ibp_vote *e, size_t *cursor, ibp_vote_entry *out);

/* Looks one key up in the official state. false when it is not official. */
bool ibp_vote_official_get(const ibp_vote *e, const ibp_vote_key *key, ibp_vote_entry *out);

/*
 * The disabled members, in the order they were disabled (deterministic).
 * Returns the count; *out points into the engine.
 */
size_t ibp_vote_overrides(const ibp_vote *e, const ibp_vote_override **out);

/*
 * The digest of the official state (entries and overrides): a 256-bit
 * additive multiset hash over one element per official entry (key, status,
 * check time, error, data) and one per disabled member (member, reason), each
 * element hashed with a 64-bit mix function in four independently seeded
 * lanes. It is independent of insertion order and updated in O(changes) per
 * message. It detects replica divergence caused by bugs; it is not a
 * cryptographic commitment (sign the snapshot for that).
 */
void ibp_vote_digest(const ibp_vote *e, uint8_t out[IBP_VOTE_DIGEST_SIZE]);

/* The digest of an empty state (all zero), for comparisons. */
extern const uint8_t ibp_vote_empty_digest[IBP_VOTE_DIGEST_SIZE];

/*
 * Full engine state, for restarting a replica without replaying LOCAL from the
 * start. A restored engine that then applies messages local_seq+1, ... computes
 * exactly what an engine that never stopped computes (same updates, digests,
 * epochs, event ids), because the state carries everything the rules read:
 * every monitor's last-message time, every monitor's latest observation of
 * every key with the stream time and LOCAL/batch sequence that carried it, each
 * key's last-observed time, the official results and the overrides. The
 * OfficialSnapshot on the bus is not enough on its own (it lacks the
 * observations); the driver saves this export (e.g. every N epochs and at
 * shutdown) and restores it, or else replays LOCAL from the start.
 */
typedef struct ibp_vote_state_monitor {
    const char *node;
    int64_t last_msg_ms; /* engine time of its last batch or heartbeat */
} ibp_vote_state_monitor;

typedef struct ibp_vote_state_obs {
    uint32_t monitor; /* index into ibp_vote_state.monitors */
    ibp_vote_status status;
    int64_t check_time_ms;
    int64_t stream_ms; /* engine time of the batch that carried it */
    uint64_t local_seq;
    uint64_t batch_seq;
    const char *error;
    const char *data_json;
} ibp_vote_state_obs;

typedef struct ibp_vote_state_key {
    ibp_vote_key key;
    int64_t last_seen_ms;     /* engine time of the newest observation by any monitor */
    ibp_vote_status official; /* NONE: held but not official */
    int64_t check_time_ms;    /* official result, when official */
    const char *error;
    const char *data_json;
    const ibp_vote_state_obs *obs;
    size_t nobs;
} ibp_vote_state_key;

typedef struct ibp_vote_state {
    uint64_t epoch;
    uint64_t local_seq;
    int64_t now_ms;
    uint8_t digest[IBP_VOTE_DIGEST_SIZE];
    /* Ordered by last_msg_ms, oldest first (ties: the engine's order). */
    const ibp_vote_state_monitor *monitors;
    size_t nmonitors;
    /* Ordered by last_seen_ms, oldest first (ties: the engine's order, which
     * decides the order of expiry changes in one update). */
    const ibp_vote_state_key *keys;
    size_t nkeys;
    /* Disabled members in the order they were disabled. */
    const ibp_vote_override *overrides;
    size_t noverrides;
} ibp_vote_state;

/*
 * Exports the whole state into *out. Arrays and strings are owned by the
 * engine and valid until the next non-const call. Memory: about 56 bytes per
 * observation plus one struct per key, allocated for the call.
 * Errors: IBP_VOTE_E_NOMEM, IBP_VOTE_E_POISONED. *out set only on success.
 */
ibp_vote_rc ibp_vote_export(ibp_vote *e, ibp_vote_state *out);

/*
 * Creates an engine holding *state (deep-copied), as if it had applied the
 * stream up to state->local_seq. Checks everything it loads: key shapes and
 * string caps, no duplicate key, monitor or member, indices in range, at most
 * one observation per monitor and key, times not after now_ms, no observation
 * newer than its key's last_seen_ms or its monitor's last_msg_ms, the orders
 * above, the limits, and that the digest recomputed from the entries and
 * overrides equals state->digest. cfg must equal the configuration of the engine that
 * exported the state. Errors: IBP_VOTE_E_CONFIG, IBP_VOTE_E_STATE,
 * IBP_VOTE_E_DIGEST, IBP_VOTE_E_LIMIT, IBP_VOTE_E_NOMEM; on error *err_out
 * (optional, may be NULL) receives a one-line reason.
 */
ibp_vote_rc ibp_vote_import(const ibp_vote_config *cfg, const ibp_vote_state *state, ibp_vote **out,
                            char *err_out, size_t err_cap);

#endif
