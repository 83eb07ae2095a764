/*
 * Internals of the vote engine, shared by its source files only.
 *
 *   hash.c    the key hash, the digest elements, event ids (over the
 *             portable hash of ibp/hash_index.h)
 *   keyset.c  key and monitor records, their indexes and time-ordered lists
 *   engine.c  the engine: apply (staging, validation), overrides, updates
 *   tally.c   per-key voting: who votes, the quorum decision, evidence
 *   state.c   export and import of the whole state
 */
#ifndef IBP_VOTE_INTERNAL_H
#define IBP_VOTE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/hash_index.h"
#include "ibp/vote.h"

/*
 * A broken invariant is a bug, not an input error: stop at once, in every
 * build (never compiled out like assert()), so a diverging replica dies
 * instead of publishing a wrong snapshot.
 */
#define VOTE_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ibp__vote_assert_fail(#cond, __FILE__, __LINE__);                                      \
    } while (0)

_Noreturn void ibp__vote_assert_fail(const char *what, const char *file, int line);

#define VOTE_NONE UINT32_MAX
_Static_assert(VOTE_NONE == IBP_HASH_INDEX_NONE, "a missing key or monitor is the index's NONE");

/* ---- hash.c ------------------------------------------------------------- */

/* A key as it is compared and hashed: pointers plus lengths. */
typedef struct vote_kview {
    uint8_t type;
    bool ipv6;
    const char *s[4]; /* check_name, member, domain, endpoint */
    size_t len[4];
} vote_kview;

/* Hash of a key for the index (one seed). */
uint64_t ibp__vote_key_hash(const vote_kview *k);

/* The four lanes of a digest element for an official entry. */
void ibp__vote_entry_element(const vote_kview *k, uint8_t status, int64_t check_time_ms,
                             const char *error, size_t errlen, const char *data, size_t datalen,
                             uint64_t lanes[4]);
/* The four lanes of a digest element for a disabled member. */
void ibp__vote_override_element(const char *member, const char *reason, uint64_t lanes[4]);

/* Writes "<epoch>-<32 hex>" for a status event of key k, or an override of member. */
void ibp__vote_event_id_key(uint64_t epoch, const vote_kview *k, char out[IBP_VOTE_EVENT_ID_SIZE]);
void ibp__vote_event_id_override(uint64_t epoch, const char *member,
                                 char out[IBP_VOTE_EVENT_ID_SIZE]);

void ibp__vote_digest_add(uint64_t d[4], const uint64_t el[4]);
void ibp__vote_digest_sub(uint64_t d[4], const uint64_t el[4]);
void ibp__vote_digest_bytes(const uint64_t d[4], uint8_t out[IBP_VOTE_DIGEST_SIZE]);

/* ---- engine state ------------------------------------------------------- */

/* What staging learnt about one observation of a message, so applying it
 * neither measures nor searches again. */
struct vote_stage {
    vote_kview v;
    size_t errlen, datalen;
    int slot; /* the sender's slot in the key's observations, -1: none yet */
};

/* One monitor's latest observation of one key (48 bytes). */
struct vobs {
    int64_t check_time_ms;
    int64_t stream_ms; /* engine time of the carrying batch */
    uint64_t local_seq;
    uint64_t batch_seq;
    char *extra; /* "error\0data\0", or NULL when both are empty */
    uint16_t mon;
    uint8_t status;
    uint8_t pad;
    uint16_t errlen;
};

/* A key held by the engine (official or not). */
struct vkey {
    uint64_t hash;
    char *str; /* check_name\0member\0domain\0endpoint\0 */
    struct vobs *obs;
    char *off_extra; /* official error\0data\0, NULL when both empty */
    int64_t off_check_time_ms;
    int64_t last_seen_ms; /* engine time of the newest observation */
    uint32_t prev, next;  /* expiry list (by last_seen_ms), or free list (next) */
    uint32_t stamp;       /* message stamp when last touched */
    uint16_t nobs, cap;
    uint16_t len_total, off_member, off_domain, off_endpoint;
    uint16_t off_errlen;
    uint8_t type, ipv6;
    uint8_t official; /* ibp_vote_status */
    uint8_t live;     /* in the index (0: free slot or removed this message) */
};

struct vmon {
    char *id;
    size_t idlen;
    uint64_t hash;
    int64_t last_msg_ms;
    uint32_t prev, next; /* active list (by last_msg_ms) */
    bool active;
    size_t nobs; /* live observations held from this monitor */
};

struct ibp_vote {
    ibp_vote_config cfg;
    int64_t now_ms;
    uint64_t local_seq;
    uint64_t epoch;
    uint64_t digest[4];
    bool poisoned;
    char errmsg[256];

    /* keys */
    struct vkey *keys;
    size_t keys_len, keys_cap;
    uint32_t free_head;
    size_t nkeys, nofficial, nobs;
    ibp_hash_index key_index;
    uint32_t lru_head, lru_tail;

    /* monitors */
    struct vmon *mons;
    size_t nmons, mons_cap;
    ibp_hash_index mon_index;
    uint32_t act_head, act_tail;
    uint32_t nactive;

    /* disabled members, in the order they were disabled; strings malloc'd */
    ibp_vote_override *overs;
    size_t nover, over_cap;

    /* scratch for one apply */
    uint32_t stamp;
    uint32_t *obs_kid; /* key id of each observation of the message */
    size_t obs_kid_cap;
    uint32_t *touched; /* distinct keys of the message, first appearance order */
    size_t ntouched, touched_cap;
    uint32_t *created; /* keys created by the message (rolled back on rejection) */
    size_t ncreated, created_cap;

    /* what the last apply returned; freed at the next one */
    uint32_t *grave; /* keys removed (strings still referenced by changes) */
    size_t ngrave, grave_cap;
    ibp_vote_override *dead_overs;
    size_t ndead, dead_cap;
    char over_signer[IBP_VOTE_NAME_MAX + 1]; /* signer of the last override event */
    char *ev_member, *ev_reason;             /* its member and reason (malloc'd) */
    ibp_vote_change *changes;
    size_t nchanges, changes_cap;
    size_t *change_vote_off; /* votes offset per change, fixed up into pointers at the end */
    size_t change_vote_off_cap;
    ibp_vote_vote *votes;
    size_t nvotes, votes_cap;
    ibp_vote_event *events;
    size_t nevents, events_cap;

    /* export buffers */
    ibp_vote_state_monitor *x_mons;
    ibp_vote_state_key *x_keys;
    ibp_vote_state_obs *x_obs;
    uint32_t *x_monpos;
    struct vote_stage *stage; /* per observation of the message being staged */
    size_t stage_cap;
};

/* ---- engine.c helpers used by tally.c and state.c ------------------------ */

/*
 * Grows the array whose pointer variable is at arrp (element size esz) to hold
 * at least need elements, doubling. false on ENOMEM (array unchanged).
 */
bool ibp__vote_grow(void *arrp, size_t *cap, size_t need, size_t esz);
#define VOTE_GROW(arr, cap, need) ibp__vote_grow(&(arr), &(cap), (need), sizeof *(arr))

/* Fills a public key struct borrowing the held key's strings. */
void ibp__vote_key_public(const struct vkey *k, ibp_vote_key *out);

/* Error text / data of an "error\0data\0" block (NULL block = both ""). */
const char *ibp__vote_extra_error(const char *extra);
const char *ibp__vote_extra_data(const char *extra, uint16_t errlen);
/* Allocates an extra block; *out NULL when both are empty. false on ENOMEM. */
bool ibp__vote_extra_make(const char *error, size_t errlen, const char *data, size_t datalen,
                          char **out);

/* Digest element of a key's current official entry. */
void ibp__vote_official_element(const struct vkey *k, uint64_t lanes[4]);

/* Validates a public key; fills the view. false with a reason in err. */
bool ibp__vote_key_validate(const ibp_vote_key *key, vote_kview *v, char *err, size_t errcap,
                            const char *where);
/* Length of s when it is at most max bytes, else max + 1 (never reads further). */
size_t ibp__vote_bounded_len(const char *s, size_t max);

/* Reports a failure: sets e->errmsg and returns rc. */
ibp_vote_rc ibp__vote_fail(ibp_vote *e, ibp_vote_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Key records: find by view and hash; create (caller checked max_keys; the
 * key has no observation and is not in the expiry list). */
uint32_t ibp__vote_key_find(const ibp_vote *e, const vote_kview *v, uint64_t hash);
ibp_vote_rc ibp__vote_key_create(ibp_vote *e, const vote_kview *v, uint64_t hash, uint32_t *out);
/* Undoes ibp__vote_key_create() of a key that never got an observation. */
void ibp__vote_key_uncreate(ibp_vote *e, uint32_t id);
/* The expiry list: append at the tail, unlink from anywhere. */
void ibp__vote_lru_append(ibp_vote *e, uint32_t id);
void ibp__vote_lru_unlink(ibp_vote *e, uint32_t id);
/* Slot of monitor mon's observation in key k, or -1. */
int ibp__vote_obs_slot(const struct vkey *k, uint32_t mon);
/* Monitors: find by id; create (inactive, caller checked max_monitors). */
uint32_t ibp__vote_mon_find(const ibp_vote *e, const char *s, size_t len);
ibp_vote_rc ibp__vote_mon_create(ibp_vote *e, const char *s, size_t len, int64_t last_msg_ms,
                                 uint32_t *out);
/* Appends a monitor to the tail of the active list. */
void ibp__vote_act_append(ibp_vote *e, uint32_t id);
/* Monitors whose last message is no longer younger than the window leave. */
void ibp__vote_mons_sweep(ibp_vote *e);
/* The sender of a batch or heartbeat is active as of now. */
void ibp__vote_mon_touch(ibp_vote *e, uint32_t id);

/* ---- tally.c -------------------------------------------------------------- */

/*
 * Re-evaluates key kid at engine time e->now_ms with the current quorum:
 * drops observations older than expiry, counts the fresh voters, and, when
 * the rules decide it, updates the official result and digest and appends a
 * change with its evidence. false on ENOMEM (the caller poisons the engine).
 */
bool ibp__vote_tally_key(ibp_vote *e, uint32_t kid, uint32_t quorum);

#endif
