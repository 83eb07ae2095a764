/*
 * The dual store: official and local check results, member overrides and
 * member status (DESIGN.md §3).
 *
 * Official store: an immutable snapshot (results, overrides, epoch and the
 * indexes that answer member-status questions) published by one atomic
 * pointer swap with read-copy-update. Readers never take a lock and never wait
 * for a writer; a reader sees one whole snapshot, never half an update. Every
 * official change (setting the whole snapshot, updating one result, enabling
 * or disabling a member) builds a new snapshot and swaps it in, so a single
 * update costs O(number of official results): batch them with
 * ibp_store_set_official() when there are many.
 *
 * Local store: this node's own latest observations, one per key, behind a
 * mutex (local writers are the node's own checkers). Every local update bumps a
 * version so a publisher can ask for what changed since its last batch.
 *
 * Grouping (as the seed's data package): site results by (check, ipv6),
 * domain results by (check, domain, ipv6), endpoint results by (check,
 * domain, endpoint, ipv6); within a group one result per member, replaced on
 * update. Keys compare exactly; member status compares domains without case
 * and without a trailing dot.
 *
 * Events: official updates that change a key's status, or add a key that is
 * already down, hand an ibp_event_record to the event sink (after the new
 * snapshot is visible, outside any store lock, on the updating thread).
 * Overrides emit override events. Local updates emit none.
 *
 * Thread safety: every function may be called from any thread. Official
 * writers are serialised internally; readers run in parallel with them.
 */
#ifndef IBP_STORE_H
#define IBP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/event.h"
#include "ibp/network.h"
#include "ibp/result.h"
#include "ibp/status.h"

typedef struct ibp_store ibp_store;

typedef struct ibp_store_opts {
    /* Optional, borrowed (must outlive the store): the IBP network. With it,
     * overrides of unknown members are refused and online-member queries can
     * take the candidates from the members that serve a domain. */
    const ibp_network *network;
    ibp_event_sink_fn event_sink; /* optional */
    void *event_user;
    /* Clock for override event times; NULL means CLOCK_REALTIME. */
    int64_t (*now_ms)(void *user);
    void *clock_user;
} ibp_store_opts;

void ibp_store_opts_init(ibp_store_opts *opts);

/* Creates an empty store (epoch 0, no results, no overrides). opts may be NULL. */
ibp_status ibp_store_new(const ibp_store_opts *opts, ibp_store **out);

/* Frees the store; no other call may be running. Accepts NULL. */
void ibp_store_free(ibp_store *s);

/* ---- official ----------------------------------------------------------- */

/* An override as the snapshot holds it. */
typedef struct ibp_override {
    const char *member;
    const char *reason;
    int64_t time_ms;
} ibp_override;

/*
 * Replaces every official result with results[0..n) (copied; order does not
 * matter; a later duplicate key replaces an earlier one) and sets the epoch.
 * Overrides are kept. With emit_events, status changes against the previous
 * snapshot (and new keys that are down) go to the event sink; a node that
 * receives snapshots from consensus passes false, since consensus emits them.
 * Errors: IBP_E_INVAL (a NULL result), IBP_E_NOMEM. On error nothing changes.
 */
ibp_status ibp_store_set_official(ibp_store *s, const ibp_result *const *results, size_t n,
                                  uint64_t epoch, bool emit_events, ibp_err *err);

/*
 * Replaces the whole official state in one swap: results (as
 * ibp_store_set_official), the overrides (ovr[0..n_ovr), copied; a later
 * duplicate member replaces an earlier one) and the epoch. This is what a node
 * does with each OfficialSnapshot, so a reader sees epoch E or E+1, never
 * E's results with E+1's overrides. Override changes emit no events here.
 */
ibp_status ibp_store_set_snapshot(ibp_store *s, const ibp_result *const *results, size_t n,
                                  const ibp_override *ovr, size_t n_ovr, uint64_t epoch,
                                  bool emit_events, ibp_err *err);

/* Replaces the set of overrides (for snapshots and caches; emits no events). */
ibp_status ibp_store_set_overrides(ibp_store *s, const ibp_override *ovr, size_t n, ibp_err *err);

/*
 * Updates one official result (site, domain or endpoint by r->type), replacing
 * the member's result in its group. Emits an event when the status changed,
 * or when the key is new and down.
 */
ibp_status ibp_store_update_official(ibp_store *s, const ibp_result *r, ibp_err *err);

/*
 * Copy of the official result for key (*out, caller frees with
 * ibp_result_free). IBP_E_NOT_FOUND when there is none: unknown is not down.
 */
ibp_status ibp_store_official_get(ibp_store *s, const ibp_result_key *key, ibp_result **out);

/* Status of key: *found false when there is no result (then *up is untouched). */
void ibp_store_official_status(ibp_store *s, const ibp_result_key *key, bool *found, bool *up);

/* Deep copies of every official result, sorted by key. */
ibp_status ibp_store_official_all(ibp_store *s, ibp_result_list *out);

/* Deep copies of the overrides; free with ibp_store_overrides_free. */
ibp_status ibp_store_overrides(ibp_store *s, ibp_override **out, size_t *n);
void ibp_store_overrides_free(ibp_override *ovr, size_t n);

uint64_t ibp_store_official_epoch(ibp_store *s);
size_t ibp_store_official_count(ibp_store *s);

/* ---- member status ------------------------------------------------------ */

/*
 * True when member may serve domain over IPv4 (ipv6 false) or IPv6: false if
 * the member is overridden; false if any official site result of the member in
 * that family is down; false if any official domain or endpoint result of the
 * member for that domain (no case, no trailing dot) in that family is down;
 * otherwise true, also for a member with no results. Lock-free, no allocation.
 */
bool ibp_store_member_online(ibp_store *s, const char *domain, const char *member, bool ipv6);

/*
 * Online members of domain among candidates[0..n), judged against one
 * snapshot. online[] (capacity n) receives the online candidates' pointers in
 * candidate order and *n_online their number. When none is online and n > 0,
 * *last_resort is set and online[] holds every candidate, so a DNS server can
 * fall back to all of them (Route 53's "last resort" behaviour).
 */
void ibp_store_online_members(ibp_store *s, const char *domain, bool ipv6,
                              const char *const *candidates, size_t n, const char **online,
                              size_t *n_online, bool *last_resort);

/*
 * As ibp_store_online_members, with the candidates taken from the network
 * (members that serve a service with an RPC URL on domain). online[] has room
 * for cap names (pointers into the network). IBP_E_INVAL without a network;
 * IBP_E_NOT_FOUND for a domain the network does not have; IBP_E_RANGE when
 * cap is too small.
 */
ibp_status ibp_store_online_members_for_domain(ibp_store *s, const char *domain, bool ipv6,
                                               const char **online, size_t cap, size_t *n_online,
                                               bool *last_resort);

/*
 * Disables (overrides) or re-enables a member, records an override event (one
 * check name, IBP_OVERRIDE_CHECK_NAME, for both: a disable opens the outage,
 * the enable closes it) and makes the change visible at once. Disabling a
 * disabled member or enabling an enabled one changes nothing and emits
 * nothing. IBP_E_NOT_FOUND for a member the network (when set) does not know.
 */
ibp_status ibp_store_member_disable(ibp_store *s, const char *member, const char *reason,
                                    ibp_err *err);
ibp_status ibp_store_member_enable(ibp_store *s, const char *member, ibp_err *err);
bool ibp_store_member_overridden(ibp_store *s, const char *member);

/* ---- local -------------------------------------------------------------- */

/* Stores r (copied) as this node's latest observation of its key. */
ibp_status ibp_store_update_local(ibp_store *s, const ibp_result *r, ibp_err *err);

/* Local status of key (IPv4 or IPv6 by key->ipv6); *found false when unknown. */
void ibp_store_local_status(ibp_store *s, const ibp_result_key *key, bool *found, bool *up);

/* Copy of the local result for key; IBP_E_NOT_FOUND when none. */
ibp_status ibp_store_local_get(ibp_store *s, const ibp_result_key *key, ibp_result **out);

/* Decides whether a local result stays (ibp_store_local_retain). */
typedef bool (*ibp_store_keep_fn)(const ibp_result *r, void *user);

/*
 * Drops every local result for which keep returns false (the targets that
 * left the config, say); *removed (may be NULL) receives how many. keep runs
 * under the local store's lock: it must not call the store. IBP_E_NOMEM
 * leaves the store as it was.
 */
ibp_status ibp_store_local_retain(ibp_store *s, ibp_store_keep_fn keep, void *user,
                                  size_t *removed);

/* Deep copies of every local result, sorted by key. */
ibp_status ibp_store_local_all(ibp_store *s, ibp_result_list *out);

/*
 * Local results updated after version `since` (0: all), sorted by key, and
 * the version to pass next time in *version_out.
 */
ibp_status ibp_store_local_changed_since(ibp_store *s, uint64_t since, ibp_result_list *out,
                                         uint64_t *version_out);

#endif
