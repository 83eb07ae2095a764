/*
 * The figures of ibp-node: $SRV.STATS "data" (DESIGN.md §9) and what the
 * program adds to the control socket's status (the replica). Both read the
 * parts' counters in memory only; LOCAL's last sequence, which needs a
 * JetStream request, is read by the main loop (node_stats_refresh_local).
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <nats/nats.h>

#include "ibp/bus.h"
#include "ibp/clock.h"
#include "ibp/subject.h"
#include "node.h"

#define LOCAL_INFO_MS 5000 /* how often the main loop reads LOCAL's last sequence */

/* The replica's checkpoint counters (ibp/replica.h). */
static json_t *checkpoints_json(const ibp_replica_stats *s)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:b}", "published", (json_int_t)s->checkpoints_published,
                     "too_large", (json_int_t)s->checkpoints_too_large, "failures",
                     (json_int_t)s->checkpoint_failures, "refused",
                     (json_int_t)s->checkpoints_refused, "waiting", s->waiting_for_checkpoint != 0);
}

/* The replica's epoch statements (ibp/certificate.h). */
static json_t *statements_json(const ibp_replica_stats *s)
{
    return json_pack("{s:I,s:I,s:I}", "published", (json_int_t)s->statements_published, "failures",
                     (json_int_t)s->statement_failures, "skipped",
                     (json_int_t)s->statements_skipped);
}

/* Counts by reason (ibp_status names) as an object; *total their sum. */
static json_t *rejected_json(const uint64_t *rejected, uint64_t *total)
{
    json_t *rej = json_object();
    *total = 0;
    for (int i = 0; rej && i < IBP_STATUS_COUNT; i++) {
        if (rejected[i]) {
            json_object_set_new(rej, ibp_status_name((ibp_status)i),
                                json_integer((json_int_t)rejected[i]));
            *total += rejected[i];
        }
    }
    return rej ? rej : json_null();
}

/* The replica's counters; with_side adds those of its events and status
 * messages (the control socket shows them, $SRV.STATS does not). NULL: no memory. */
static json_t *replica_json(const ibp_replica_stats *s, bool with_side)
{
    uint64_t total;
    json_t *rej = rejected_json(s->rejected, &total);
    json_t *r = json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "epoch", (json_int_t)s->epoch, "local_seq",
        (json_int_t)s->local_seq, "messages_applied", (json_int_t)s->messages_applied,
        "snapshots_published", (json_int_t)s->snapshots_published, "snapshots_lost_race",
        (json_int_t)s->snapshots_lost_race, "digest_mismatches", (json_int_t)s->digest_mismatches,
        "events_published", (json_int_t)s->events_published, "engine_skipped",
        (json_int_t)s->engine_skipped, "rejected_total", (json_int_t)total, "rejected", rej);
    if (!r)
        return NULL;
    json_object_set_new(r, "foreign_snapshots", json_integer((json_int_t)s->foreign_snapshots));
    json_object_set_new(r, "snapshots_republished",
                        json_integer((json_int_t)s->snapshots_republished));
    if (with_side) {
        json_object_set_new(r, "side_published", json_integer((json_int_t)s->side_published));
        json_object_set_new(r, "side_checked", json_integer((json_int_t)s->side_checked));
        json_object_set_new(r, "side_covered", json_integer((json_int_t)s->side_covered));
        json_object_set_new(r, "side_pending", json_integer((json_int_t)s->side_pending));
    }
    json_object_set_new(r, "checkpoints", checkpoints_json(s));
    json_object_set_new(r, "statements", statements_json(s));
    return r;
}

void node_stats_status(json_t *obj, void *user)
{
    node *n = user;
    if (!n->replica)
        return;
    ibp_replica_stats s;
    ibp_replica_stats_get(n->replica, &s);
    json_t *r = replica_json(&s, true);
    if (r)
        json_object_set_new(obj, "replica", r);
}

/* The official subscriber's counters as $SRV.STATS shows them. */
static json_t *subscriber_json(const ibp_official_subscriber_stats *s)
{
    uint64_t total;
    json_t *rej = rejected_json(s->rejected_by, &total);
    return json_pack(
        "{s:I,s:I,s:I,s:I,s:o,s:I,s:I,s:I,s:I,s:o,s:I}", "received", (json_int_t)s->received,
        "applied", (json_int_t)s->applied, "ignored", (json_int_t)s->ignored, "rejected",
        (json_int_t)s->rejected, "rejected_by", rej, "epoch", (json_int_t)s->epoch,
        "heartbeat_epoch", (json_int_t)s->heartbeat_epoch, "epochs_behind",
        (json_int_t)(s->heartbeat_epoch > s->epoch ? s->heartbeat_epoch - s->epoch : 0),
        "last_heartbeat_ms", (json_int_t)s->last_heartbeat_ms, "certificates",
        ibp_control_certificates_json(s), "official_cache_refused",
        (json_int_t)s->official_cache_refused);
}

/* Runs on a nats.c thread (ibp/micro.h). */
void node_stats_micro(json_t *data, void *user)
{
    node *n = user;
    json_object_set_new(data, "node", json_string(n->cfg.node.id));
    json_object_set_new(data, "roles", json_string(n->roles_text));
    ibp_store *store = n->data ? ibp_data_store(n->data) : NULL;
    if (store)
        json_object_set_new(data, "official_epoch",
                            json_integer((json_int_t)ibp_store_official_epoch(store)));
    uint64_t local_last = atomic_load(&n->local_last_seq);
    if (local_last)
        json_object_set_new(data, "local_stream_last_seq", json_integer((json_int_t)local_last));
    if (n->subscriber) {
        ibp_official_subscriber_stats s;
        ibp_official_subscriber_stats_get(n->subscriber, &s);
        json_object_set_new(data, "subscriber", subscriber_json(&s));
    }
    if (n->checker) {
        ibp_checker_stats s;
        ibp_checker_stats_get(n->checker, &s);
        json_object_set_new(data, "checker",
                            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "targets",
                                      (json_int_t)s.targets, "cannot_run", (json_int_t)s.cannot_run,
                                      "runs", (json_int_t)s.runs, "failed", (json_int_t)s.failed,
                                      "retried", (json_int_t)s.retried, "in_flight",
                                      (json_int_t)s.in_flight, "overdue", (json_int_t)s.overdue,
                                      "reloads", (json_int_t)s.reloads));
    }
    if (n->publisher) {
        ibp_monitor_publisher_stats s;
        ibp_monitor_publisher_stats_get(n->publisher, &s);
        json_object_set_new(data, "publisher",
                            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "batches_sealed",
                                      (json_int_t)s.batches_sealed, "batches_published",
                                      (json_int_t)s.batches_published, "observations_published",
                                      (json_int_t)s.observations_published, "heartbeats_published",
                                      (json_int_t)s.heartbeats_published, "publish_failures",
                                      (json_int_t)s.publish_failures, "dropped",
                                      (json_int_t)s.dropped, "queued", (json_int_t)s.queued,
                                      "last_stream_seq", (json_int_t)s.last_stream_seq));
        json_t *pj = json_object_get(data, "publisher");
        if (pj) {
            json_object_set_new(pj, "stale_skipped", json_integer((json_int_t)s.stale_skipped));
            json_object_set_new(pj, "unwanted_skipped",
                                json_integer((json_int_t)s.unwanted_skipped));
        }
    }
    if (n->replica) {
        ibp_replica_stats s;
        ibp_replica_stats_get(n->replica, &s);
        json_t *r = replica_json(&s, false);
        if (r && local_last)
            json_object_set_new(
                r, "consumer_lag",
                json_integer(
                    (json_int_t)(local_last > s.local_seq ? local_last - s.local_seq : 0)));
        json_object_set_new(data, "replica", r);
    }
    ibp_dns_service_stats_json(n->dns, data);
    ibp_usage *u = n->data ? ibp_data_usage(n->data) : NULL;
    if (u) {
        ibp_usage_stats s;
        ibp_usage_stats_get(u, &s);
        json_object_set_new(data, "usage",
                            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "hits", (json_int_t)s.hits,
                                      "keys", (json_int_t)s.keys, "flush_errors",
                                      (json_int_t)s.flush_errors, "journal_pending",
                                      (json_int_t)s.journal.pending, "journal_delivered",
                                      (json_int_t)s.journal.delivered, "journal_deliver_errors",
                                      (json_int_t)s.journal.deliver_errors));
    }
}

/* A JetStream request: on the main loop, never on a nats.c thread. */
void node_stats_refresh_local(node *n)
{
    if (!n->replica || !n->js)
        return;
    int64_t now = ibp_clock_wall_ms();
    if (now - atomic_load(&n->local_last_seq_ms) < LOCAL_INFO_MS)
        return;
    atomic_store(&n->local_last_seq_ms, now);
    jsStreamInfo *si = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 1000;
    jsErrCode jerr = 0;
    if (js_GetStreamInfo(&si, n->js, IBP_STREAM_LOCAL, &jo, &jerr) == NATS_OK && si) {
        atomic_store(&n->local_last_seq, si->State.LastSeq);
        jsStreamInfo_Destroy(si);
    }
}
