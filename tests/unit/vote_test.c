/*
 * Unit tests: the vote engine (consensus/, DESIGN.md §6), each rule alone,
 * the digest, export/import, limits, and a check that the engine stays pure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/vote.h"

#define MIN_MS 60000
#define T0 1700000000000LL /* an arbitrary stream epoch */

/* ---- helpers --------------------------------------------------------------- */

struct fx {
    ibp_vote *e;
    uint64_t seq; /* next LOCAL sequence */
    ibp_vote_update up;
};

static ibp_vote_config test_cfg(void)
{
    ibp_vote_config c;
    ibp_vote_config_init(&c);
    return c;
}

static void fx_open(struct fx *f, const ibp_vote_config *cfg)
{
    memset(f, 0, sizeof *f);
    f->seq = 1;
    ibp_vote_config c = cfg ? *cfg : test_cfg();
    assert_int_equal(ibp_vote_new(&c, &f->e), IBP_VOTE_OK);
}

static ibp_vote_obs site_obs(const char *member, ibp_vote_status st, int64_t check_ms)
{
    ibp_vote_obs o;
    memset(&o, 0, sizeof o);
    o.key.type = IBP_VOTE_SITE;
    o.key.check_name = "ping";
    o.key.member = member;
    o.status = st;
    o.check_time_ms = check_ms;
    o.error = st == IBP_VOTE_DOWN ? "timeout" : "";
    o.data_json = "";
    return o;
}

static ibp_vote_key site_key(const char *member)
{
    ibp_vote_key k = {IBP_VOTE_SITE, "ping", member, "", "", false};
    return k;
}

/* Applies a batch from signer at stream time t; returns the result code. */
static ibp_vote_rc batch(struct fx *f, const char *signer, int64_t t, const ibp_vote_obs *obs,
                         size_t n)
{
    ibp_vote_msg m;
    memset(&m, 0, sizeof m);
    m.kind = IBP_VOTE_MSG_OBSERVATION_BATCH;
    m.signer = signer;
    m.local_seq = f->seq++;
    m.stream_ms = t;
    m.batch_seq = m.local_seq * 10;
    m.obs = obs;
    m.nobs = n;
    return ibp_vote_apply(f->e, &m, &f->up);
}

static ibp_vote_rc one(struct fx *f, const char *signer, int64_t t, const char *member,
                       ibp_vote_status st)
{
    ibp_vote_obs o = site_obs(member, st, t);
    return batch(f, signer, t, &o, 1);
}

static ibp_vote_rc heartbeat(struct fx *f, const char *signer, int64_t t)
{
    ibp_vote_msg m;
    memset(&m, 0, sizeof m);
    m.kind = IBP_VOTE_MSG_HEARTBEAT;
    m.signer = signer;
    m.local_seq = f->seq++;
    m.stream_ms = t;
    return ibp_vote_apply(f->e, &m, &f->up);
}

static ibp_vote_rc override(struct fx *f, const char *admin, int64_t t, const char *member,
                            bool disabled, const char *reason)
{
    ibp_vote_msg m;
    memset(&m, 0, sizeof m);
    m.kind = IBP_VOTE_MSG_MEMBER_OVERRIDE;
    m.signer = admin;
    m.local_seq = f->seq++;
    m.stream_ms = t;
    m.override.member = member;
    m.override.disabled = disabled;
    m.override.reason = reason;
    return ibp_vote_apply(f->e, &m, &f->up);
}

static ibp_vote_status official(struct fx *f, const char *member)
{
    ibp_vote_key k = site_key(member);
    ibp_vote_entry en;
    return ibp_vote_official_get(f->e, &k, &en) ? en.status : IBP_VOTE_NONE;
}

static const char *const MON[] = {"mon1", "mon2", "mon3", "mon4", "mon5", "mon6", "mon7"};

/* Makes n monitors active at t with heartbeats. */
static void all_alive(struct fx *f, int n, int64_t t)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(heartbeat(f, MON[i], t), IBP_VOTE_OK);
}

static void digest_of(ibp_vote *e, uint8_t d[IBP_VOTE_DIGEST_SIZE])
{
    ibp_vote_digest(e, d);
}

/* ---- configuration ----------------------------------------------------------- */

static void test_config(void **state)
{
    (void)state;
    ibp_vote_config c = test_cfg();
    assert_int_equal(c.active_window_ms, 600000);
    assert_int_equal(c.staleness_ms, 180000);
    assert_int_equal(c.expiry_ms, 3600000);
    assert_int_equal(c.quorum_min, 2);
    assert_int_equal(ibp_vote_config_check(&c), IBP_VOTE_OK);
    ibp_vote_config b = c;
    b.staleness_ms = c.active_window_ms + 1; /* a returning monitor would revive votes */
    assert_int_equal(ibp_vote_config_check(&b), IBP_VOTE_E_CONFIG);
    b = c;
    b.expiry_ms = c.active_window_ms - 1;
    assert_int_equal(ibp_vote_config_check(&b), IBP_VOTE_E_CONFIG);
    b = c;
    b.quorum_min = 0;
    assert_int_equal(ibp_vote_config_check(&b), IBP_VOTE_E_CONFIG);
    b = c;
    b.max_monitors = 70000;
    assert_int_equal(ibp_vote_config_check(&b), IBP_VOTE_E_CONFIG);
    b = c;
    b.staleness_ms = 0;
    ibp_vote *e = NULL;
    assert_int_equal(ibp_vote_new(&b, &e), IBP_VOTE_E_CONFIG);
    assert_null(e);
    ibp_vote_free(NULL);
    assert_string_equal(ibp_vote_rc_name(IBP_VOTE_E_LIMIT), "IBP_VOTE_E_LIMIT");
    assert_string_equal(ibp_vote_strerror(IBP_VOTE_OK), "ok");
    assert_non_null(ibp_vote_strerror((ibp_vote_rc)999));
}

/* ---- quorum rules ------------------------------------------------------------ */

static void test_first_official_needs_quorum(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    all_alive(&f, 5, T0); /* 5 active: quorum 3 */
    assert_int_equal(one(&f, "mon1", T0 + 1000, "A", IBP_VOTE_DOWN), IBP_VOTE_OK);
    assert_int_equal(one(&f, "mon2", T0 + 2000, "A", IBP_VOTE_DOWN), IBP_VOTE_OK);
    assert_false(f.up.epoch_advanced);
    assert_int_equal(f.up.quorum, 3);
    assert_int_equal(f.up.active_monitors, 5);
    assert_int_equal(official(&f, "A"), IBP_VOTE_NONE);
    assert_int_equal(one(&f, "mon3", T0 + 3000, "A", IBP_VOTE_DOWN), IBP_VOTE_OK);
    assert_true(f.up.epoch_advanced);
    assert_int_equal(f.up.epoch, 1);
    assert_int_equal(f.up.nchanges, 1);
    const ibp_vote_change *c = &f.up.changes[0];
    assert_int_equal(c->kind, IBP_VOTE_ADDED);
    assert_int_equal(c->status, IBP_VOTE_DOWN);
    assert_int_equal(c->previous, IBP_VOTE_NONE);
    assert_string_equal(c->key.member, "A");
    assert_int_equal(c->nvotes, 3);
    assert_string_equal(c->votes[0].node, "mon1");
    assert_string_equal(c->votes[2].node, "mon3");
    assert_int_equal(c->votes[2].local_seq, f.seq - 1);
    assert_int_equal(c->votes[2].batch_seq, (f.seq - 1) * 10);
    assert_int_equal(f.up.nevents, 1);
    assert_int_equal(f.up.events[0].kind, IBP_VOTE_EVENT_STATUS);
    assert_int_equal(f.up.events[0].epoch, 1);
    assert_int_equal(f.up.events[0].time_ms, T0 + 3000);
    assert_int_equal(official(&f, "A"), IBP_VOTE_DOWN);
    ibp_vote_free(f.e);
}

static void test_flip_needs_quorum_of_other_status(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    int64_t t = T0;
    for (int i = 0; i < 5; i++)
        assert_int_equal(one(&f, MON[i], t, "A", IBP_VOTE_UP), IBP_VOTE_OK);
    assert_int_equal(official(&f, "A"), IBP_VOTE_UP);
    uint64_t epoch = f.up.epoch;
    /* 2 of 5 say down: stays up. */
    assert_int_equal(one(&f, "mon1", t + 10000, "A", IBP_VOTE_DOWN), IBP_VOTE_OK);
    assert_int_equal(one(&f, "mon2", t + 11000, "A", IBP_VOTE_DOWN), IBP_VOTE_OK);
    assert_false(f.up.epoch_advanced);
    assert_int_equal(official(&f, "A"), IBP_VOTE_UP);
    /* The third completes the quorum: flips at exactly that message. */
    assert_int_equal(one(&f, "mon3", t + 12000, "A", IBP_VOTE_DOWN), IBP_VOTE_OK);
    assert_true(f.up.epoch_advanced);
    assert_int_equal(f.up.epoch, epoch + 1);
    assert_int_equal(f.up.changes[0].kind, IBP_VOTE_FLIPPED);
    assert_int_equal(f.up.changes[0].previous, IBP_VOTE_UP);
    assert_int_equal(f.up.changes[0].status, IBP_VOTE_DOWN);
    /* Evidence: all 5 voters, both statuses, sorted by node id. */
    assert_int_equal(f.up.changes[0].nvotes, 5);
    int down = 0;
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(f.up.changes[0].votes[i].node, MON[i]);
        down += f.up.changes[0].votes[i].status == IBP_VOTE_DOWN;
    }
    assert_int_equal(down, 3);
    /* Back up when 3 say up: mon4 and mon5 still do, mon1 makes 3. */
    assert_int_equal(one(&f, "mon1", t + 20000, "A", IBP_VOTE_UP), IBP_VOTE_OK);
    assert_true(f.up.epoch_advanced);
    assert_int_equal(official(&f, "A"), IBP_VOTE_UP);
    ibp_vote_free(f.e);
}

static void test_one_liar_flips_nothing(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    /* With a single active monitor the quorum is still 2 (quorum_min). */
    assert_int_equal(one(&f, "liar", T0, "A", IBP_VOTE_DOWN), IBP_VOTE_OK);
    assert_int_equal(f.up.quorum, 2);
    assert_int_equal(official(&f, "A"), IBP_VOTE_NONE);
    /* Two honest make it official up; the liar alone never flips it. */
    assert_int_equal(one(&f, "mon1", T0 + 1, "A", IBP_VOTE_UP), IBP_VOTE_OK);
    assert_int_equal(official(&f, "A"), IBP_VOTE_NONE); /* 2 active: quorum 2, 1 up */
    assert_int_equal(one(&f, "mon2", T0 + 2, "A", IBP_VOTE_UP), IBP_VOTE_OK);
    assert_int_equal(official(&f, "A"), IBP_VOTE_UP);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(one(&f, "liar", T0 + 1000 * (i + 1), "A", IBP_VOTE_DOWN), IBP_VOTE_OK);
        assert_false(f.up.epoch_advanced);
    }
    assert_int_equal(official(&f, "A"), IBP_VOTE_UP);
    ibp_vote_free(f.e);
}

static void test_staleness(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    const int64_t stale = 180000;
    /* 3 active monitors: quorum 2. mon1's vote is exactly at the limit. */
    all_alive(&f, 3, T0);
    assert_int_equal(one(&f, "mon1", T0, "A", IBP_VOTE_DOWN), IBP_VOTE_OK);
    assert_int_equal(heartbeat(&f, "mon3", T0 + stale), IBP_VOTE_OK);
    assert_int_equal(one(&f, "mon2", T0 + stale, "A", IBP_VOTE_DOWN), IBP_VOTE_OK);
    assert_int_equal(official(&f, "A"), IBP_VOTE_NONE); /* age == limit: no longer counts */
    /* One millisecond younger and it counts. */
    assert_int_equal(one(&f, "mon1", T0 + stale + 10, "A", IBP_VOTE_DOWN), IBP_VOTE_OK);
    assert_int_equal(official(&f, "A"), IBP_VOTE_DOWN);
    ibp_vote_free(f.e);

    fx_open(&f, NULL);
    all_alive(&f, 3, T0);
    assert_int_equal(one(&f, "mon1", T0, "A", IBP_VOTE_DOWN), IBP_VOTE_OK);
    assert_int_equal(one(&f, "mon2", T0 + stale - 1, "A", IBP_VOTE_DOWN), IBP_VOTE_OK);
    assert_int_equal(official(&f, "A"), IBP_VOTE_DOWN);
    ibp_vote_free(f.e);
}

static void test_check_time_is_not_a_clock(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    all_alive(&f, 3, T0);
    /* check_time_ms hours off either way changes nothing: ages use stream time. */
    ibp_vote_obs o = site_obs("A", IBP_VOTE_DOWN, T0 - 5 * 3600000LL);
    assert_int_equal(batch(&f, "mon1", T0 + 1000, &o, 1), IBP_VOTE_OK);
    o = site_obs("A", IBP_VOTE_DOWN, T0 + 9 * 3600000LL);
    assert_int_equal(batch(&f, "mon2", T0 + 2000, &o, 1), IBP_VOTE_OK);
    assert_int_equal(official(&f, "A"), IBP_VOTE_DOWN);
    /* The official result takes the newest check time (the skewed one). */
    assert_int_equal(f.up.changes[0].check_time_ms, T0 + 9 * 3600000LL);
    ibp_vote_free(f.e);
}

static void test_active_window_shrinks_quorum(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    const int64_t win = 600000;
    for (int i = 0; i < 5; i++)
        assert_int_equal(one(&f, MON[i], T0, "A", IBP_VOTE_UP), IBP_VOTE_OK);
    assert_int_equal(official(&f, "A"), IBP_VOTE_UP);
    /* mon4 and mon5 fall silent; mon1..3 keep going. mon1, mon2 say down. */
    int64_t t = T0;
    for (int r = 1; r <= 10; r++) {
        t = T0 + r * MIN_MS;
        assert_int_equal(one(&f, "mon1", t, "A", IBP_VOTE_DOWN), IBP_VOTE_OK);
        if (t - T0 < win) {
            /* 5 active, quorum 3: 2 down is not enough. */
            assert_int_equal(f.up.active_monitors, 5);
            assert_int_equal(official(&f, "A"), IBP_VOTE_UP);
        }
        assert_int_equal(one(&f, "mon2", t + 1, "A", IBP_VOTE_DOWN), IBP_VOTE_OK);
        assert_int_equal(one(&f, "mon3", t + 2, "A", IBP_VOTE_UP), IBP_VOTE_OK);
        if (t - T0 < win)
            assert_int_equal(official(&f, "A"), IBP_VOTE_UP);
    }
    /* At T0 + 10 min mon4 and mon5 left: 3 active, quorum 2, mon1 + mon2 down.
     * The flip happened at the first observation of A at or after that time. */
    assert_int_equal(official(&f, "A"), IBP_VOTE_DOWN);
    ibp_vote_free(f.e);

    /* Precisely: the message at T0 + window is the first with 3 active. */
    fx_open(&f, NULL);
    for (int i = 0; i < 5; i++)
        assert_int_equal(one(&f, MON[i], T0, "A", IBP_VOTE_UP), IBP_VOTE_OK);
    assert_int_equal(heartbeat(&f, "mon3", T0 + win - 2), IBP_VOTE_OK);
    assert_int_equal(one(&f, "mon1", T0 + win - 2, "A", IBP_VOTE_DOWN), IBP_VOTE_OK);
    assert_int_equal(one(&f, "mon2", T0 + win - 1, "A", IBP_VOTE_DOWN), IBP_VOTE_OK);
    assert_int_equal(f.up.active_monitors, 5);
    assert_int_equal(official(&f, "A"), IBP_VOTE_UP);
    /* Time alone (a heartbeat) flips nothing, though the quorum is now 2. */
    assert_int_equal(heartbeat(&f, "mon3", T0 + win), IBP_VOTE_OK);
    assert_int_equal(f.up.active_monitors, 3);
    assert_int_equal(f.up.quorum, 2);
    assert_false(f.up.epoch_advanced);
    assert_int_equal(official(&f, "A"), IBP_VOTE_UP);
    /* The next observation of A decides with the smaller quorum. */
    assert_int_equal(one(&f, "mon3", T0 + win + 1, "A", IBP_VOTE_UP), IBP_VOTE_OK);
    assert_true(f.up.epoch_advanced);
    assert_int_equal(official(&f, "A"), IBP_VOTE_DOWN);
    ibp_vote_free(f.e);
}

static void test_returning_monitor_revives_nothing(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    all_alive(&f, 3, T0);
    assert_int_equal(one(&f, "mon1", T0, "A", IBP_VOTE_DOWN), IBP_VOTE_OK);
    /* mon1 silent for 20 min, then only heartbeats; its old vote stays stale. */
    int64_t t = T0 + 20 * MIN_MS;
    assert_int_equal(heartbeat(&f, "mon1", t), IBP_VOTE_OK);
    assert_int_equal(one(&f, "mon2", t + 1, "A", IBP_VOTE_DOWN), IBP_VOTE_OK);
    assert_int_equal(official(&f, "A"), IBP_VOTE_NONE);
    ibp_vote_free(f.e);
}

static void test_newest_observation_decides_result(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    all_alive(&f, 4, T0); /* quorum 3 */
    ibp_vote_obs o = site_obs("A", IBP_VOTE_DOWN, 5000);
    o.error = "old";
    assert_int_equal(batch(&f, "mon2", T0 + 1, &o, 1), IBP_VOTE_OK);
    o.check_time_ms = 9000;
    o.error = "newest-b";
    o.data_json = "{\"ms\":2}";
    assert_int_equal(batch(&f, "mon4", T0 + 2, &o, 1), IBP_VOTE_OK);
    /* Same check time from mon3: tie, the smaller node id (mon3) wins. */
    o.error = "newest-a";
    o.data_json = "{\"ms\":1}";
    /* An up observation with an even newer time does not decide a down. */
    ibp_vote_obs u = site_obs("A", IBP_VOTE_UP, 99999);
    assert_int_equal(batch(&f, "mon1", T0 + 3, &u, 1), IBP_VOTE_OK);
    assert_int_equal(batch(&f, "mon3", T0 + 4, &o, 1), IBP_VOTE_OK);
    assert_int_equal(f.up.nchanges, 1);
    assert_int_equal(f.up.changes[0].status, IBP_VOTE_DOWN);
    assert_int_equal(f.up.changes[0].check_time_ms, 9000);
    assert_string_equal(f.up.changes[0].error, "newest-a");
    assert_string_equal(f.up.changes[0].data_json, "{\"ms\":1}");
    ibp_vote_free(f.e);
}

static void test_official_result_frozen_until_change(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    all_alive(&f, 3, T0);
    assert_int_equal(one(&f, "mon1", T0 + 1, "A", IBP_VOTE_UP), IBP_VOTE_OK);
    assert_int_equal(one(&f, "mon2", T0 + 2, "A", IBP_VOTE_UP), IBP_VOTE_OK);
    assert_int_equal(f.up.epoch, 1);
    uint8_t d1[IBP_VOTE_DIGEST_SIZE], d2[IBP_VOTE_DIGEST_SIZE];
    digest_of(f.e, d1);
    ibp_vote_entry en;
    ibp_vote_key k = site_key("A");
    assert_true(ibp_vote_official_get(f.e, &k, &en));
    int64_t ct = en.check_time_ms;
    /* Newer check times and other data: no epoch, same digest, same entry. */
    for (int i = 0; i < 5; i++) {
        ibp_vote_obs o = site_obs("A", IBP_VOTE_UP, T0 + 100000 + i);
        o.data_json = "{\"ms\":7}";
        assert_int_equal(batch(&f, MON[i % 3], T0 + 10000 + i, &o, 1), IBP_VOTE_OK);
        assert_false(f.up.epoch_advanced);
        assert_int_equal(f.up.epoch, 1);
    }
    digest_of(f.e, d2);
    assert_memory_equal(d1, d2, sizeof d1);
    assert_true(ibp_vote_official_get(f.e, &k, &en));
    assert_int_equal(en.check_time_ms, ct);
    assert_string_equal(en.data_json, "");
    ibp_vote_free(f.e);
}

static void test_expiry(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    const int64_t exp = 3600000;
    assert_int_equal(one(&f, "mon1", T0, "A", IBP_VOTE_UP), IBP_VOTE_OK);
    assert_int_equal(one(&f, "mon2", T0 + 1, "A", IBP_VOTE_UP), IBP_VOTE_OK);
    assert_int_equal(one(&f, "mon1", T0 + 2, "B", IBP_VOTE_UP), IBP_VOTE_OK); /* never official */
    ibp_vote_info info;
    ibp_vote_get_info(f.e, &info);
    assert_int_equal(info.keys, 2);
    assert_int_equal(info.official_keys, 1);
    /* Monitors keep heartbeating; nobody observes A or B. */
    int64_t t = T0;
    while (t + 5 * MIN_MS < T0 + exp) {
        t += 5 * MIN_MS;
        assert_int_equal(heartbeat(&f, "mon1", t), IBP_VOTE_OK);
        assert_false(f.up.epoch_advanced);
    }
    assert_int_equal(heartbeat(&f, "mon1", T0 + exp), IBP_VOTE_OK); /* A: age expiry - 1 */
    assert_false(f.up.epoch_advanced);
    assert_int_equal(heartbeat(&f, "mon1", T0 + exp + 1), IBP_VOTE_OK); /* A: age == expiry */
    assert_true(f.up.epoch_advanced);
    assert_int_equal(f.up.nchanges, 1);
    assert_int_equal(f.up.changes[0].kind, IBP_VOTE_REMOVED);
    assert_int_equal(f.up.changes[0].previous, IBP_VOTE_UP);
    assert_int_equal(f.up.changes[0].status, IBP_VOTE_NONE);
    assert_string_equal(f.up.changes[0].key.member, "A");
    assert_int_equal(f.up.nevents, 1); /* a removed event, for persist to end outages */
    assert_int_equal(f.up.events[0].kind, IBP_VOTE_EVENT_REMOVED);
    assert_int_equal(f.up.events[0].status, IBP_VOTE_UP); /* the status that left */
    assert_string_equal(f.up.events[0].key.member, "A");
    assert_int_equal(f.up.events[0].nvotes, 0);
    assert_int_equal(f.up.events[0].epoch, f.up.epoch);
    assert_memory_equal(f.up.digest, ibp_vote_empty_digest, IBP_VOTE_DIGEST_SIZE);
    ibp_vote_get_info(f.e, &info);
    assert_int_equal(info.keys, 1); /* B goes 2 ms later, silently */
    assert_int_equal(heartbeat(&f, "mon1", T0 + exp + 2), IBP_VOTE_OK);
    assert_false(f.up.epoch_advanced);
    ibp_vote_get_info(f.e, &info);
    assert_int_equal(info.keys, 0);
    assert_int_equal(info.observations, 0);
    ibp_vote_free(f.e);
}

static void test_override(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    const ibp_vote_override *ov;
    assert_int_equal(override(&f, "admin", T0, "Stake Plus", true, "maintenance"), IBP_VOTE_OK);
    assert_true(f.up.epoch_advanced);
    assert_int_equal(f.up.epoch, 1);
    assert_int_equal(f.up.nevents, 1);
    const ibp_vote_event *ev = &f.up.events[0];
    assert_int_equal(ev->kind, IBP_VOTE_EVENT_OVERRIDE);
    assert_string_equal(ev->key.member, "Stake Plus");
    assert_string_equal(ev->key.check_name, "override");
    assert_int_equal(ev->status, IBP_VOTE_DOWN);
    assert_string_equal(ev->error, "maintenance");
    assert_string_equal(ev->signer, "admin");
    assert_int_equal(strncmp(ev->id, "1-", 2), 0);
    assert_int_equal(strlen(ev->id), 2 + 32);
    uint8_t d1[IBP_VOTE_DIGEST_SIZE];
    memcpy(d1, f.up.digest, sizeof d1);
    assert_memory_not_equal(d1, ibp_vote_empty_digest, sizeof d1);
    assert_int_equal(ibp_vote_overrides(f.e, &ov), 1);
    assert_string_equal(ov[0].member, "Stake Plus");
    assert_true(ov[0].disabled);
    /* The override signer is no monitor. */
    assert_int_equal(f.up.active_monitors, 0);
    /* Same again: no-op. */
    assert_int_equal(override(&f, "admin", T0 + 1, "Stake Plus", true, "maintenance"), IBP_VOTE_OK);
    assert_false(f.up.epoch_advanced);
    assert_int_equal(f.up.nevents, 0);
    /* New reason: a change. */
    assert_int_equal(override(&f, "admin", T0 + 2, "Stake Plus", true, "upgrade"), IBP_VOTE_OK);
    assert_int_equal(f.up.epoch, 2);
    assert_memory_not_equal(f.up.digest, d1, sizeof d1);
    /* Enable: removed, event up. */
    assert_int_equal(override(&f, "admin", T0 + 3, "Stake Plus", false, "done"), IBP_VOTE_OK);
    assert_int_equal(f.up.epoch, 3);
    assert_int_equal(f.up.nevents, 1);
    assert_int_equal(f.up.events[0].status, IBP_VOTE_UP);
    assert_string_equal(f.up.events[0].key.member, "Stake Plus");
    assert_string_equal(f.up.events[0].error, "done");
    assert_memory_equal(f.up.digest, ibp_vote_empty_digest, IBP_VOTE_DIGEST_SIZE);
    assert_int_equal(ibp_vote_overrides(f.e, &ov), 0);
    /* Enabling a member that is not disabled: no-op. */
    assert_int_equal(override(&f, "admin", T0 + 4, "Other", false, ""), IBP_VOTE_OK);
    assert_false(f.up.epoch_advanced);
    ibp_vote_free(f.e);
}

static void test_time_is_clamped(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    assert_int_equal(one(&f, "mon1", T0 + 5000, "A", IBP_VOTE_UP), IBP_VOTE_OK);
    /* A stream timestamp that steps back counts as the current time. */
    assert_int_equal(one(&f, "mon2", T0 + 3000, "A", IBP_VOTE_UP), IBP_VOTE_OK);
    assert_int_equal(f.up.now_ms, T0 + 5000);
    ibp_vote_state st;
    assert_int_equal(ibp_vote_export(f.e, &st), IBP_VOTE_OK);
    for (size_t i = 0; i < st.nkeys; i++)
        for (size_t j = 0; j < st.keys[i].nobs; j++)
            assert_int_equal(st.keys[i].obs[j].stream_ms, T0 + 5000);
    ibp_vote_free(f.e);
}

static void test_duplicate_key_in_batch(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    ibp_vote_obs o[2] = {site_obs("A", IBP_VOTE_DOWN, 1), site_obs("A", IBP_VOTE_UP, 2)};
    assert_int_equal(batch(&f, "mon1", T0, o, 2), IBP_VOTE_OK);
    assert_int_equal(batch(&f, "mon2", T0, o, 2), IBP_VOTE_OK);
    /* The later observation of a key in one batch wins. */
    assert_int_equal(official(&f, "A"), IBP_VOTE_UP);
    ibp_vote_info info;
    ibp_vote_get_info(f.e, &info);
    assert_int_equal(info.observations, 2);
    ibp_vote_free(f.e);
}

/* ---- digest -------------------------------------------------------------------- */

#define NK 60

static void key_name(char *buf, size_t cap, int i)
{
    snprintf(buf, cap, "member-%02d", i);
}

/* Makes NK keys official up in f, sending them in the given order, split into
 * batches of size chunk, from two monitors. */
static void make_official(struct fx *f, const int *order, size_t chunk)
{
    static char names[NK][32];
    ibp_vote_obs obs[NK];
    for (int i = 0; i < NK; i++) {
        key_name(names[order[i]], sizeof names[0], order[i]);
        obs[i] = site_obs(names[order[i]], (order[i] % 3) ? IBP_VOTE_UP : IBP_VOTE_DOWN,
                          1000 + order[i]);
        obs[i].data_json = (order[i] % 2) ? "{\"x\":1}" : "";
    }
    for (int m = 0; m < 2; m++)
        for (size_t s = 0; s < NK; s += chunk)
            assert_int_equal(batch(f, MON[m], T0 + 10, &obs[s], s + chunk > NK ? NK - s : chunk),
                             IBP_VOTE_OK);
}

static void test_digest_independent_of_order(void **state)
{
    (void)state;
    int fwd[NK], rev[NK], mix[NK];
    for (int i = 0; i < NK; i++) {
        fwd[i] = i;
        rev[i] = NK - 1 - i;
        mix[i] = (i * 37) % NK; /* 37 is coprime with 60 */
    }
    struct fx a, b, c;
    fx_open(&a, NULL);
    fx_open(&b, NULL);
    fx_open(&c, NULL);
    make_official(&a, fwd, NK);
    make_official(&b, rev, 7);
    make_official(&c, mix, 1);
    uint8_t da[IBP_VOTE_DIGEST_SIZE], db[IBP_VOTE_DIGEST_SIZE], dc[IBP_VOTE_DIGEST_SIZE];
    digest_of(a.e, da);
    digest_of(b.e, db);
    digest_of(c.e, dc);
    assert_memory_equal(da, db, sizeof da);
    assert_memory_equal(da, dc, sizeof da);
    assert_memory_not_equal(da, ibp_vote_empty_digest, sizeof da);
    /* Epochs differ (one per message with changes), digests do not. */
    ibp_vote_info ia, ib;
    ibp_vote_get_info(a.e, &ia);
    ibp_vote_get_info(b.e, &ib);
    assert_int_equal(ia.official_keys, NK);
    assert_int_equal(ib.official_keys, NK);
    assert_true(ia.epoch != ib.epoch);
    /* Any difference in content shows: one more key, or one flipped status. */
    assert_int_equal(one(&c, "mon1", T0 + 20, "extra", IBP_VOTE_UP), IBP_VOTE_OK);
    assert_int_equal(one(&c, "mon2", T0 + 20, "extra", IBP_VOTE_UP), IBP_VOTE_OK);
    digest_of(c.e, dc);
    assert_memory_not_equal(da, dc, sizeof da);
    /* Event ids are the same for the same change on different engines. */
    assert_int_equal(one(&a, "mon1", T0 + 20, "extra", IBP_VOTE_UP), IBP_VOTE_OK);
    assert_int_equal(one(&a, "mon2", T0 + 20, "extra", IBP_VOTE_UP), IBP_VOTE_OK);
    assert_int_equal(a.up.nevents, 1);
    assert_int_equal(c.up.nevents, 1);
    const char *ida = strchr(a.up.events[0].id, '-'), *idc = strchr(c.up.events[0].id, '-');
    assert_string_equal(ida, idc); /* same key: same hash part; epochs differ */
    ibp_vote_free(a.e);
    ibp_vote_free(b.e);
    ibp_vote_free(c.e);
}

/* The digest of a state with one official key, decided from the observation o. */
static void digest_one(const ibp_vote_obs *o, uint8_t d[IBP_VOTE_DIGEST_SIZE])
{
    struct fx f;
    fx_open(&f, NULL);
    assert_int_equal(batch(&f, "mon1", T0, o, 1), IBP_VOTE_OK);
    assert_int_equal(batch(&f, "mon2", T0, o, 1), IBP_VOTE_OK);
    assert_int_equal(f.up.nchanges, 1);
    digest_of(f.e, d);
    ibp_vote_free(f.e);
}

static void test_digest_covers_every_field(void **state)
{
    (void)state;
    ibp_vote_obs base = site_obs("A", IBP_VOTE_DOWN, 1234);
    base.key.type = IBP_VOTE_ENDPOINT;
    base.key.domain = "rpc.ibp.network";
    base.key.endpoint = "wss://rpc.ibp.network/polkadot";
    base.data_json = "{\"ms\":5}";
    ibp_vote_obs v[9];
    for (int i = 0; i < 9; i++)
        v[i] = base;
    v[1].key.check_name = "pong";
    v[2].key.member = "B";
    v[3].key.domain = "rpc2.ibp.network";
    v[4].key.endpoint = "wss://rpc.ibp.network/kusama";
    v[5].key.ipv6 = true;
    v[6].status = IBP_VOTE_UP;
    v[7].check_time_ms = 1235;
    v[8].error = "timeout2";
    uint8_t d[10][IBP_VOTE_DIGEST_SIZE];
    for (int i = 0; i < 9; i++)
        digest_one(&v[i], d[i]);
    ibp_vote_obs w = base;
    w.data_json = "{\"ms\":6}";
    digest_one(&w, d[9]);
    /* Field boundaries are unambiguous: moving bytes between fields shows. */
    ibp_vote_obs x = base, y = base;
    x.key.check_name = "ab";
    x.key.member = "c";
    y.key.check_name = "a";
    y.key.member = "bc";
    uint8_t dx[IBP_VOTE_DIGEST_SIZE], dy[IBP_VOTE_DIGEST_SIZE];
    digest_one(&x, dx);
    digest_one(&y, dy);
    assert_memory_not_equal(dx, dy, sizeof dx);
    for (int i = 0; i < 10; i++)
        for (int j = i + 1; j < 10; j++)
            if (memcmp(d[i], d[j], IBP_VOTE_DIGEST_SIZE) == 0)
                fail_msg("digest does not cover field %d vs %d", i, j);
}

/* ---- export / import ------------------------------------------------------------ */

/* A deterministic message stream exercising every rule (PRNG: splitmix64). */
static uint64_t sm64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

struct stream_gen {
    uint64_t rng;
    int64_t t;
    char members[12][16];
    char errs[4][16];
};

/* Applies message number i of the stream to f. */
static void gen_apply(struct stream_gen *g, struct fx *f, int i)
{
    g->t += (int64_t)(sm64(&g->rng) % 20000);
    unsigned r = (unsigned)(sm64(&g->rng) % 100);
    const char *mon = MON[sm64(&g->rng) % 6];
    if (r < 3) {
        assert_int_equal(override(f, "admin", g->t, g->members[sm64(&g->rng) % 12],
                                  sm64(&g->rng) % 2, g->errs[sm64(&g->rng) % 4]),
                         IBP_VOTE_OK);
        return;
    }
    if (r < 10) {
        assert_int_equal(heartbeat(f, mon, g->t), IBP_VOTE_OK);
        return;
    }
    if (r < 12)
        g->t += 20 * MIN_MS; /* a quiet spell: monitors leave, keys expire */
    ibp_vote_obs obs[8];
    size_t n = 1 + sm64(&g->rng) % 8;
    for (size_t j = 0; j < n; j++) {
        int m = (int)(sm64(&g->rng) % 12);
        obs[j] = site_obs(g->members[m], (sm64(&g->rng) % 3) ? IBP_VOTE_UP : IBP_VOTE_DOWN,
                          g->t - (int64_t)(sm64(&g->rng) % 100000));
        obs[j].error = g->errs[sm64(&g->rng) % 4];
        if (m % 3 == 1) {
            obs[j].key.type = IBP_VOTE_DOMAIN;
            obs[j].key.domain = "rpc.ibp.network";
            obs[j].key.ipv6 = (i & 1) != 0;
        }
    }
    assert_int_equal(batch(f, mon, g->t, obs, n), IBP_VOTE_OK);
}

static void gen_init(struct stream_gen *g, uint64_t seed)
{
    memset(g, 0, sizeof *g);
    g->rng = seed;
    g->t = T0;
    for (int i = 0; i < 12; i++)
        snprintf(g->members[i], sizeof g->members[i], "m%d", i);
    snprintf(g->errs[0], sizeof g->errs[0], "%s", "");
    snprintf(g->errs[1], sizeof g->errs[1], "%s", "timeout");
    snprintf(g->errs[2], sizeof g->errs[2], "%s", "tls");
    snprintf(g->errs[3], sizeof g->errs[3], "%s", "");
}

/* Deep copy of an exported state (what the driver's encode/decode would give). */
struct state_copy {
    ibp_vote_state st;
    ibp_vote_state_monitor *mons;
    ibp_vote_state_key *keys;
    ibp_vote_state_obs *obs;
    ibp_vote_override *ovs;
    char **strs;
    size_t nstrs;
};

static const char *keep(struct state_copy *c, const char *s)
{
    c->strs = realloc(c->strs, (c->nstrs + 1) * sizeof *c->strs);
    c->strs[c->nstrs] = strdup(s);
    return c->strs[c->nstrs++];
}

static void state_copy(struct state_copy *c, const ibp_vote_state *st)
{
    memset(c, 0, sizeof *c);
    c->st = *st;
    size_t nobs = 0;
    for (size_t i = 0; i < st->nkeys; i++)
        nobs += st->keys[i].nobs;
    c->mons = calloc(st->nmonitors + 1, sizeof *c->mons);
    c->keys = calloc(st->nkeys + 1, sizeof *c->keys);
    c->obs = calloc(nobs + 1, sizeof *c->obs);
    c->ovs = calloc(st->noverrides + 1, sizeof *c->ovs);
    for (size_t i = 0; i < st->nmonitors; i++) {
        c->mons[i] = st->monitors[i];
        c->mons[i].node = keep(c, st->monitors[i].node);
    }
    size_t o = 0;
    for (size_t i = 0; i < st->nkeys; i++) {
        ibp_vote_state_key *k = &c->keys[i];
        *k = st->keys[i];
        k->key.check_name = keep(c, k->key.check_name);
        k->key.member = keep(c, k->key.member);
        k->key.domain = keep(c, k->key.domain);
        k->key.endpoint = keep(c, k->key.endpoint);
        k->error = keep(c, k->error);
        k->data_json = keep(c, k->data_json);
        k->obs = &c->obs[o];
        for (size_t j = 0; j < st->keys[i].nobs; j++) {
            c->obs[o] = st->keys[i].obs[j];
            c->obs[o].error = keep(c, c->obs[o].error);
            c->obs[o].data_json = keep(c, c->obs[o].data_json);
            o++;
        }
    }
    for (size_t i = 0; i < st->noverrides; i++) {
        c->ovs[i] = st->overrides[i];
        c->ovs[i].member = keep(c, c->ovs[i].member);
        c->ovs[i].reason = keep(c, c->ovs[i].reason);
    }
    c->st.monitors = c->mons;
    c->st.keys = c->keys;
    c->st.overrides = c->ovs;
}

static void state_copy_free(struct state_copy *c)
{
    for (size_t i = 0; i < c->nstrs; i++)
        free(c->strs[i]);
    free(c->strs);
    free(c->mons);
    free(c->keys);
    free(c->obs);
    free(c->ovs);
}

static void assert_same_update(const ibp_vote_update *a, const ibp_vote_update *b)
{
    assert_int_equal(a->epoch_advanced, b->epoch_advanced);
    assert_int_equal(a->epoch, b->epoch);
    assert_int_equal(a->local_seq, b->local_seq);
    assert_int_equal(a->now_ms, b->now_ms);
    assert_memory_equal(a->digest, b->digest, IBP_VOTE_DIGEST_SIZE);
    assert_int_equal(a->nchanges, b->nchanges);
    for (size_t i = 0; i < a->nchanges; i++) {
        const ibp_vote_change *x = &a->changes[i], *y = &b->changes[i];
        assert_int_equal(x->kind, y->kind);
        assert_string_equal(x->key.member, y->key.member);
        assert_int_equal(x->key.type, y->key.type);
        assert_int_equal(x->status, y->status);
        assert_int_equal(x->check_time_ms, y->check_time_ms);
        assert_string_equal(x->error, y->error);
        assert_int_equal(x->nvotes, y->nvotes);
        for (size_t j = 0; j < x->nvotes; j++) {
            assert_string_equal(x->votes[j].node, y->votes[j].node);
            assert_int_equal(x->votes[j].local_seq, y->votes[j].local_seq);
        }
    }
    assert_int_equal(a->nevents, b->nevents);
    for (size_t i = 0; i < a->nevents; i++)
        assert_string_equal(a->events[i].id, b->events[i].id);
}

static void test_export_import_round_trip(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        struct stream_gen ga, gb;
        gen_init(&ga, seed);
        struct fx a, b;
        fx_open(&a, NULL);
        const int half = 400, total = 900;
        for (int i = 0; i < half; i++)
            gen_apply(&ga, &a, i);
        ibp_vote_state st;
        assert_int_equal(ibp_vote_export(a.e, &st), IBP_VOTE_OK);
        struct state_copy copy;
        state_copy(&copy, &st);
        memset(&b, 0, sizeof b);
        ibp_vote_config cfg = test_cfg();
        char why[200];
        assert_int_equal(ibp_vote_import(&cfg, &copy.st, &b.e, why, sizeof why), IBP_VOTE_OK);
        state_copy_free(&copy);
        b.seq = a.seq;
        gb = ga;
        ibp_vote_info ia, ib;
        ibp_vote_get_info(a.e, &ia);
        ibp_vote_get_info(b.e, &ib);
        assert_memory_equal(ia.digest, ib.digest, IBP_VOTE_DIGEST_SIZE);
        assert_int_equal(ia.epoch, ib.epoch);
        assert_int_equal(ia.keys, ib.keys);
        assert_int_equal(ia.observations, ib.observations);
        assert_int_equal(ia.active_monitors, ib.active_monitors);
        bool any_change = false;
        for (int i = half; i < total; i++) {
            gen_apply(&ga, &a, i);
            gen_apply(&gb, &b, i);
            assert_same_update(&a.up, &b.up);
            any_change |= a.up.epoch_advanced;
        }
        assert_true(any_change);
        /* And their exports are identical, field by field. */
        ibp_vote_state sa, sb;
        assert_int_equal(ibp_vote_export(a.e, &sa), IBP_VOTE_OK);
        assert_int_equal(ibp_vote_export(b.e, &sb), IBP_VOTE_OK);
        assert_int_equal(sa.nkeys, sb.nkeys);
        assert_int_equal(sa.nmonitors, sb.nmonitors);
        for (size_t i = 0; i < sa.nmonitors; i++)
            assert_string_equal(sa.monitors[i].node, sb.monitors[i].node);
        for (size_t i = 0; i < sa.nkeys; i++) {
            assert_string_equal(sa.keys[i].key.member, sb.keys[i].key.member);
            assert_int_equal(sa.keys[i].last_seen_ms, sb.keys[i].last_seen_ms);
            assert_int_equal(sa.keys[i].nobs, sb.keys[i].nobs);
        }
        ibp_vote_free(a.e);
        ibp_vote_free(b.e);
    }
}

static void test_import_rejects_bad_state(void **state)
{
    (void)state;
    struct stream_gen g;
    gen_init(&g, 99);
    struct fx a;
    fx_open(&a, NULL);
    for (int i = 0; i < 200; i++)
        gen_apply(&g, &a, i);
    ibp_vote_state st;
    assert_int_equal(ibp_vote_export(a.e, &st), IBP_VOTE_OK);
    assert_true(st.nkeys > 2 && st.nmonitors > 1);
    struct state_copy c;
    ibp_vote_config cfg = test_cfg();
    ibp_vote *b = NULL;
    char why[200];

    state_copy(&c, &st);
    c.st.digest[3] ^= 1;
    assert_int_equal(ibp_vote_import(&cfg, &c.st, &b, why, sizeof why), IBP_VOTE_E_DIGEST);
    assert_null(b);
    state_copy_free(&c);

    state_copy(&c, &st);
    c.keys[1] = c.keys[0]; /* duplicate key (and out of order) */
    assert_int_equal(ibp_vote_import(&cfg, &c.st, &b, why, sizeof why), IBP_VOTE_E_STATE);
    state_copy_free(&c);

    state_copy(&c, &st);
    c.mons[0].node = c.mons[1].node;
    assert_int_equal(ibp_vote_import(&cfg, &c.st, &b, why, sizeof why), IBP_VOTE_E_STATE);
    state_copy_free(&c);

    state_copy(&c, &st);
    size_t ki = 0;
    while (c.keys[ki].nobs == 0)
        ki++;
    c.obs[c.keys[ki].obs - c.obs].monitor = (uint32_t)st.nmonitors;
    assert_int_equal(ibp_vote_import(&cfg, &c.st, &b, why, sizeof why), IBP_VOTE_E_STATE);
    assert_non_null(strstr(why, "out of range"));
    state_copy_free(&c);

    state_copy(&c, &st);
    c.st.now_ms = c.keys[c.st.nkeys - 1].last_seen_ms - 1;
    assert_int_equal(ibp_vote_import(&cfg, &c.st, &b, why, sizeof why), IBP_VOTE_E_STATE);
    state_copy_free(&c);

    ibp_vote_config small = cfg;
    small.max_keys = 1;
    state_copy(&c, &st);
    assert_int_equal(ibp_vote_import(&small, &c.st, &b, why, sizeof why), IBP_VOTE_E_LIMIT);
    state_copy_free(&c);
    ibp_vote_free(a.e);
}

/* ---- limits and malformed input ------------------------------------------------- */

static void assert_rejected(struct fx *f, ibp_vote_rc got, ibp_vote_rc want, const char *needle,
                            const ibp_vote_info *before)
{
    assert_int_equal(got, want);
    assert_non_null(strstr(ibp_vote_last_error(f->e), needle));
    ibp_vote_info after;
    ibp_vote_get_info(f->e, &after);
    /* Nothing changed but the consumed LOCAL sequence. */
    assert_int_equal(after.local_seq, f->seq - 1);
    assert_int_equal(after.epoch, before->epoch);
    assert_int_equal(after.keys, before->keys);
    assert_int_equal(after.observations, before->observations);
    assert_int_equal(after.monitors, before->monitors);
    assert_int_equal(after.now_ms, before->now_ms);
    assert_memory_equal(after.digest, before->digest, IBP_VOTE_DIGEST_SIZE);
}

static void test_limits_and_malformed(void **state)
{
    (void)state;
    ibp_vote_config cfg = test_cfg();
    cfg.max_batch_obs = 4;
    cfg.max_keys_per_node = 5;
    cfg.max_keys = 8;
    cfg.max_monitors = 3;
    cfg.max_overrides = 1;
    struct fx f;
    fx_open(&f, &cfg);
    ibp_vote_info before;
    ibp_vote_obs o[6];
    char names[6][8];
    for (int i = 0; i < 6; i++) {
        snprintf(names[i], sizeof names[i], "k%d", i);
        o[i] = site_obs(names[i], IBP_VOTE_UP, 1);
    }
    assert_int_equal(batch(&f, "mon1", T0, o, 3), IBP_VOTE_OK);
    ibp_vote_get_info(f.e, &before);

    assert_rejected(&f, batch(&f, "mon1", T0 + 1, o, 5), IBP_VOTE_E_LIMIT, "limit 4", &before);
    /* mon1 holds 3 keys; 3 new ones would make 6 > 5. The new keys are rolled back. */
    assert_rejected(&f, batch(&f, "mon1", T0 + 1, &o[2], 4), IBP_VOTE_E_LIMIT, "would hold 6",
                    &before);
    assert_int_equal(batch(&f, "mon1", T0 + 2, &o[1], 4), IBP_VOTE_OK); /* exactly 5 */
    ibp_vote_get_info(f.e, &before);
    assert_int_equal(before.keys, 5);
    /* Total keys: 8. */
    ibp_vote_obs more[4];
    char mn[4][8];
    for (int i = 0; i < 4; i++) {
        snprintf(mn[i], sizeof mn[i], "x%d", i);
        more[i] = site_obs(mn[i], IBP_VOTE_UP, 1);
    }
    assert_rejected(&f, batch(&f, "mon2", T0 + 3, more, 4), IBP_VOTE_E_LIMIT, "more than 8 keys",
                    &before);
    /* Monitors: 3. */
    assert_int_equal(heartbeat(&f, "mon2", T0 + 4), IBP_VOTE_OK);
    assert_int_equal(heartbeat(&f, "mon3", T0 + 4), IBP_VOTE_OK);
    ibp_vote_get_info(f.e, &before);
    assert_rejected(&f, heartbeat(&f, "mon4", T0 + 5), IBP_VOTE_E_LIMIT, "more than 3 monitors",
                    &before);
    /* Overrides: 1. */
    assert_int_equal(override(&f, "admin", T0 + 6, "A", true, ""), IBP_VOTE_OK);
    ibp_vote_get_info(f.e, &before);
    assert_rejected(&f, override(&f, "admin", T0 + 7, "B", true, ""), IBP_VOTE_E_LIMIT,
                    "more than 1 overrides", &before);

    /* Malformed observations: the whole batch is refused, even valid parts. */
    ibp_vote_obs bad[2];
    bad[0] = site_obs("k1", IBP_VOTE_UP, 1);
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    bad[1] = site_obs("k2", IBP_VOTE_UP, 1);
    bad[1].key.member = longname;
    assert_rejected(&f, batch(&f, "mon1", T0 + 8, bad, 2), IBP_VOTE_E_INVAL,
                    "member of 299 bytes is over the limit of 255 (IBP_NAME_MAX)", &before);
    bad[1] = site_obs("k2", IBP_VOTE_UP, 1);
    bad[1].key.domain = "rpc.ibp.network"; /* a site key with a domain */
    assert_rejected(&f, batch(&f, "mon1", T0 + 8, bad, 2), IBP_VOTE_E_INVAL,
                    "site key takes no domain", &before);
    bad[1].key.type = IBP_VOTE_ENDPOINT; /* an endpoint key without endpoint */
    assert_rejected(&f, batch(&f, "mon1", T0 + 8, bad, 2), IBP_VOTE_E_INVAL,
                    "takes a domain and an endpoint", &before);
    bad[1].key.type = IBP_VOTE_DOMAIN;
    bad[1].key.domain = "RPC.ibp.network";
    assert_rejected(&f, batch(&f, "mon1", T0 + 8, bad, 2), IBP_VOTE_E_INVAL, "lower-case", &before);
    bad[1].key.domain = "rpc.ibp.network.";
    assert_rejected(&f, batch(&f, "mon1", T0 + 8, bad, 2), IBP_VOTE_E_INVAL, "trailing dot",
                    &before);
    bad[1] = site_obs("k2", IBP_VOTE_NONE, 1);
    assert_rejected(&f, batch(&f, "mon1", T0 + 8, bad, 2), IBP_VOTE_E_INVAL, "neither up", &before);
    bad[1] = site_obs("k2", IBP_VOTE_UP, 1);
    bad[1].key.type = (ibp_vote_check)7;
    assert_rejected(&f, batch(&f, "mon1", T0 + 8, bad, 2), IBP_VOTE_E_INVAL, "unknown check type",
                    &before);
    bad[1] = site_obs("k2", IBP_VOTE_UP, 1);
    bad[1].key.check_name = "";
    assert_rejected(&f, batch(&f, "mon1", T0 + 8, bad, 2), IBP_VOTE_E_INVAL, "empty check name",
                    &before);
    char *big = malloc(IBP_VOTE_DATA_MAX + 2);
    memset(big, '{', IBP_VOTE_DATA_MAX + 1);
    big[IBP_VOTE_DATA_MAX + 1] = '\0';
    bad[1] = site_obs("k2", IBP_VOTE_UP, 1);
    bad[1].data_json = big;
    assert_rejected(&f, batch(&f, "mon1", T0 + 8, bad, 2), IBP_VOTE_E_INVAL,
                    "data of 65537 bytes is over the limit of 65536 (IBP_DATA_MAX)", &before);
    big[IBP_VOTE_ERROR_MAX + 1] = '\0';
    bad[1].data_json = "";
    bad[1].error = big;
    assert_rejected(&f, batch(&f, "mon1", T0 + 8, bad, 2), IBP_VOTE_E_INVAL,
                    "error text of 4097 bytes is over the limit of 4096 (IBP_ERROR_MAX)", &before);
    free(big);
    assert_rejected(&f, batch(&f, "", T0 + 8, bad, 1), IBP_VOTE_E_INVAL, "empty signer", &before);
    assert_rejected(&f, batch(&f, "mon1", T0 + 8, NULL, 1), IBP_VOTE_E_INVAL, "missing", &before);
    ibp_vote_msg m;
    memset(&m, 0, sizeof m);
    m.kind = (ibp_vote_kind)9;
    m.signer = "mon1";
    m.local_seq = f.seq++;
    assert_rejected(&f, ibp_vote_apply(f.e, &m, &f.up), IBP_VOTE_E_INVAL, "unknown message kind",
                    &before);
    assert_rejected(&f, override(&f, "admin", T0 + 9, "", true, ""), IBP_VOTE_E_INVAL,
                    "member empty", &before);

    /* LOCAL sequence must grow; nothing at all changes otherwise. */
    f.seq -= 1;
    assert_int_equal(heartbeat(&f, "mon1", T0 + 10), IBP_VOTE_E_SEQ);
    assert_non_null(strstr(ibp_vote_last_error(f.e), "after"));
    ibp_vote_info after;
    ibp_vote_get_info(f.e, &after);
    assert_int_equal(after.local_seq, f.seq - 1);
    ibp_vote_free(f.e);
}

/* ---- purity ------------------------------------------------------------------ */

/*
 * The modules of ibp_base (proto/CMakeLists.txt), the one library of ours
 * the engine may use: memory-only helpers whose sources are held to the same
 * rules and scanned with the engine's.
 */
static char base_modules[16][64];
static int nbase;

/* The .c names of `add_library(<target> STATIC ...)` in a CMakeLists.txt, without ".c". */
static int target_sources(const char *cmake, const char *target, char names[][64], int max)
{
    FILE *fp = fopen(cmake, "r");
    assert_non_null(fp);
    static char text[16384];
    size_t n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = '\0';
    char head[128];
    snprintf(head, sizeof head, "add_library(%s STATIC", target);
    char *p = strstr(text, head);
    assert_non_null(p);
    char *end = strchr(p, ')');
    assert_non_null(end);
    *end = '\0';
    p += strlen(head);
    int count = 0;
    for (char *tok = strtok(p, " \t\r\n"); tok; tok = strtok(NULL, " \t\r\n")) {
        size_t len = strlen(tok);
        if (len < 3 || strcmp(tok + len - 2, ".c") != 0)
            continue;
        assert_true(count < max && len - 2 < 64);
        snprintf(names[count++], 64, "%.*s", (int)(len - 2), tok);
    }
    return count;
}

static bool allowed_include(const char *inc)
{
    if (strncmp(inc, "#include \"ibp/vote.h\"", 21) == 0 ||
        strncmp(inc, "#include \"ibp/types.h\"", 22) == 0) /* plain values, header only */
        return true;
    for (int i = 0; i < nbase; i++) {
        char want[96];
        snprintf(want, sizeof want, "#include \"ibp/%.63s.h\"", base_modules[i]);
        if (strncmp(inc, want, strlen(want)) == 0)
            return true;
    }
    return false;
}

static void scan_file(const char *path, int *bad)
{
    static const char *const banned[] = {"time(",    "clock_gettime", "pthread", "nats.h",
                                         "sodium.h", "rand(",         "getenv",  "fopen"};
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char line[1024];
    int lineno = 0;
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++)
            if (strstr(line, banned[i])) {
                fprintf(stderr, "%s:%d: uses %s\n", path, lineno, banned[i]);
                (*bad)++;
            }
        const char *inc = strstr(line, "#include \"ibp/");
        if (inc && !allowed_include(inc)) {
            fprintf(stderr, "%s:%d: includes another ibp header\n", path, lineno);
            (*bad)++;
        }
        if (strstr(line, "#include <ibp/")) {
            fprintf(stderr, "%s:%d: includes an ibp header\n", path, lineno);
            (*bad)++;
        }
    }
    fclose(fp);
}

/* Names already scanned (a tiny set). */
struct scanned {
    char names[32][256];
    int n;
};

static bool seen_before(struct scanned *sc, const char *path)
{
    for (int i = 0; i < sc->n; i++)
        if (strcmp(sc->names[i], path) == 0)
            return true;
    assert_true(sc->n < 32);
    snprintf(sc->names[sc->n++], sizeof sc->names[0], "%s", path);
    return false;
}

/* Scans path, then the local headers it includes ("x.h" beside it, under
 * consensus/include, or an ibp_base header under proto/include). */
static void scan_tree(const char *path, struct scanned *sc, int *bad, int *files)
{
    if (seen_before(sc, path))
        return;
    scan_file(path, bad);
    (*files)++;
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char line[1024];
    while (fgets(line, sizeof line, fp)) {
        char name[200];
        if (sscanf(line, " #include \"%199[^\"]\"", name) != 1)
            continue;
        static const char *const dirs[] = {IBP_SOURCE_DIR "/consensus",
                                           IBP_SOURCE_DIR "/consensus/include",
                                           IBP_SOURCE_DIR "/proto/include"};
        for (size_t d = 0; d < 3; d++) {
            char inc[512];
            snprintf(inc, sizeof inc, "%s/%s", dirs[d], name);
            FILE *t = fopen(inc, "r");
            if (t) {
                fclose(t);
                scan_tree(inc, sc, bad, files);
                break;
            }
        }
    }
    fclose(fp);
}

/*
 * The engine is exactly the sources of the ibp_vote target (its NATS driver
 * shares the directory and may use everything banned here): read them from
 * consensus/CMakeLists.txt, so a new engine file is checked without edits here.
 * Likewise the sources of ibp_base, the only library of ours it links.
 */
static void test_engine_is_pure(void **state)
{
    (void)state;
    nbase = target_sources(IBP_SOURCE_DIR "/proto/CMakeLists.txt", "ibp_base", base_modules, 16);
    char engine[32][64];
    int sources =
        target_sources(IBP_SOURCE_DIR "/consensus/CMakeLists.txt", "ibp_vote", engine, 32);
    struct scanned sc;
    sc.n = 0;
    int bad = 0, files = 0;
    for (int i = 0; i < sources; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/consensus/%.63s.c", IBP_SOURCE_DIR, engine[i]);
        scan_tree(path, &sc, &bad, &files);
    }
    assert_true(sources >= 5);
    assert_true(files >= sources + 2); /* vote_internal.h and ibp/vote.h too */
    /* The base the engine links is held to the same rules. */
    for (int i = 0; i < nbase; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/proto/%.63s.c", IBP_SOURCE_DIR, base_modules[i]);
        scan_tree(path, &sc, &bad, &files);
    }
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_first_official_needs_quorum),
        cmocka_unit_test(test_flip_needs_quorum_of_other_status),
        cmocka_unit_test(test_one_liar_flips_nothing),
        cmocka_unit_test(test_staleness),
        cmocka_unit_test(test_check_time_is_not_a_clock),
        cmocka_unit_test(test_active_window_shrinks_quorum),
        cmocka_unit_test(test_returning_monitor_revives_nothing),
        cmocka_unit_test(test_newest_observation_decides_result),
        cmocka_unit_test(test_official_result_frozen_until_change),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_override),
        cmocka_unit_test(test_time_is_clamped),
        cmocka_unit_test(test_duplicate_key_in_batch),
        cmocka_unit_test(test_digest_independent_of_order),
        cmocka_unit_test(test_digest_covers_every_field),
        cmocka_unit_test(test_export_import_round_trip),
        cmocka_unit_test(test_import_rejects_bad_state),
        cmocka_unit_test(test_limits_and_malformed),
        cmocka_unit_test(test_engine_is_pure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
