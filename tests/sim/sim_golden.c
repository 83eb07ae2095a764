/*
 * Golden traces: hand-written scenarios run through the simulated cluster
 * (stream, verification filter, three replicas, reference model and every
 * invariant check), with the exact virtual times of each epoch pinned.
 *
 * Default engine configuration: active window 10 min, staleness 3 min,
 * expiry 1 h, quorum max(2, active/2 + 1). Monitors are mon1..monN; key 0 is
 * Alpha/site/v4. Messages go out with zero latency, so stream time = script
 * time. A trace line: +<ms> #<LOCAL seq> <signer> <kind>: <key> <from>-><to>
 * by <deciding voters>; active <n> quorum <q> epoch <e>.
 *
 * IBP_SIM_VERBOSE=1 prints every scenario's trace.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define UP IBP_VOTE_UP
#define DOWN IBP_VOTE_DOWN
#define BATCH IBP_VOTE_MSG_OBSERVATION_BATCH
#define HB IBP_VOTE_MSG_HEARTBEAT
#define MIN 60000

/* One observation of key 0 by monitor m (0-based) at t. */
#define OBS(t, m, st)                                                                              \
    {                                                                                              \
        (t), (m), BATCH, 1, {{0, (st)}}, 0, false                                                  \
    }
#define BEAT(t, m)                                                                                 \
    {                                                                                              \
        (t), (m), HB, 0, {{0, UP}}, 0, false                                                       \
    }
#define ADMIN(t, member, dis)                                                                      \
    {                                                                                              \
        (t), -1, IBP_VOTE_MSG_MEMBER_OVERRIDE, 0, {{0, UP}}, (member), (dis)                       \
    }

static int failures;
static bool verbose;

static void run(const char *name, int nmon, const sim_script *s, size_t n, int64_t end_ms,
                const char *want)
{
    ibp_vote_config cfg;
    ibp_vote_config_init(&cfg);
    static char trace[1 << 16];
    int rc = ibp_test_sim_run_script(&cfg, nmon, 1, s, n, end_ms, trace, sizeof trace);
    if (verbose)
        printf("== %s\n%s", name, trace);
    if (rc != 0) {
        fprintf(stderr, "golden %s: an invariant failed (see above)\n", name);
        failures++;
    } else if (strcmp(trace, want) != 0) {
        fprintf(stderr, "golden %s: trace differs\n--- want\n%s--- got\n%s", name, want, trace);
        failures++;
    } else {
        printf("golden %s: ok\n", name);
    }
}

/* Five monitors come up, report Alpha up; key official at the 3rd report. */
#define FIVE_UP                                                                                    \
    BEAT(0, 0), BEAT(0, 1), BEAT(0, 2), BEAT(0, 3), BEAT(0, 4), OBS(1000, 0, UP),                  \
        OBS(2000, 1, UP), OBS(3000, 2, UP), OBS(4000, 3, UP), OBS(5000, 4, UP)
#define FIVE_UP_TRACE                                                                              \
    "+3000 #8 mon3 batch: Alpha/site/v4 none->up by mon1,mon2,mon3; active 5 quorum 3 epoch 1\n"

static void three_of_five_flip(void)
{
    const sim_script s[] = {FIVE_UP, OBS(60000, 0, DOWN), OBS(61000, 1, DOWN), OBS(62000, 2, DOWN),
                            OBS(63000, 3, DOWN)};
    run("3 of 5 down: flips at the message completing the quorum", 5, s, sizeof s / sizeof s[0],
        10 * MIN,
        FIVE_UP_TRACE "+62000 #13 mon3 batch: Alpha/site/v4 up->down by mon1,mon2,mon3; active 5 "
                      "quorum 3 epoch 2\n");
}

static void two_of_five_stays(void)
{
    const sim_script s[] = {FIVE_UP,           OBS(60000, 0, DOWN),  OBS(61000, 1, DOWN),
                            OBS(62000, 2, UP), OBS(120000, 0, DOWN), OBS(121000, 1, DOWN)};
    run("2 of 5 down: stays up", 5, s, sizeof s / sizeof s[0], 10 * MIN, FIVE_UP_TRACE);
}

static void comes_back_up(void)
{
    /* All five say down; then up from three of them flips it back. mon4 and
     * mon5 still say down (fresh), so it takes exactly three. */
    const sim_script s[] = {FIVE_UP,
                            OBS(60000, 0, DOWN),
                            OBS(61000, 1, DOWN),
                            OBS(62000, 2, DOWN),
                            OBS(63000, 3, DOWN),
                            OBS(64000, 4, DOWN),
                            OBS(120000, 0, UP),
                            OBS(121000, 1, UP),
                            OBS(122000, 2, UP)};
    run("down, then back up when 3 report up", 5, s, sizeof s / sizeof s[0], 10 * MIN,
        FIVE_UP_TRACE "+62000 #13 mon3 batch: Alpha/site/v4 up->down by mon1,mon2,mon3; active 5 "
                      "quorum 3 epoch 2\n"
                      "+122000 #18 mon3 batch: Alpha/site/v4 down->up by mon1,mon2,mon3; active 5 "
                      "quorum 3 epoch 3\n");
}

static void staleness(void)
{
    /* Three monitors: quorum 2. mon1's down at 1 s is exactly 3 min old when
     * mon2 agrees at 181 s: it no longer counts. mon3 at 200 s completes the
     * quorum with mon2. */
    const sim_script s[] = {BEAT(0, 0),         BEAT(0, 1),           BEAT(0, 2),
                            OBS(1000, 0, DOWN), OBS(181000, 1, DOWN), OBS(200000, 2, DOWN)};
    run("staleness: a vote as old as the limit no longer counts", 3, s, sizeof s / sizeof s[0],
        10 * MIN,
        "+200000 #6 mon3 batch: Alpha/site/v4 none->down by mon2,mon3; active 3 quorum 2 epoch "
        "1\n");
    /* One millisecond younger, and it still counts. */
    const sim_script t[] = {BEAT(0, 0), BEAT(0, 1), BEAT(0, 2), OBS(1000, 0, DOWN),
                            OBS(180999, 1, DOWN)};
    run("staleness: a vote 1 ms younger than the limit counts", 3, t, sizeof t / sizeof t[0],
        10 * MIN,
        "+180999 #5 mon2 batch: Alpha/site/v4 none->down by mon1,mon2; active 3 quorum 2 epoch "
        "1\n");
}

static void leaving_shrinks_quorum(void)
{
    /* mon4 and mon5 fall silent after 5 s. mon1 and mon2 report down, mon3 up,
     * every minute. With 5 active the quorum is 3 and the key stays up; at
     * 605 s both have left (last message 4 s and 5 s, window 10 min), 3 are
     * active, the quorum is 2, and mon1's next report (660.1 s) flips it. */
    sim_script s[64];
    size_t n = 0;
    const sim_script head[] = {FIVE_UP};
    for (size_t i = 0; i < sizeof head / sizeof head[0]; i++)
        s[n++] = head[i];
    for (int k = 1; k <= 11; k++) {
        s[n++] = (sim_script)OBS(k * MIN + 100, 0, DOWN);
        s[n++] = (sim_script)OBS(k * MIN + 200, 1, DOWN);
        s[n++] = (sim_script)OBS(k * MIN + 300, 2, UP);
    }
    run("a monitor leaving the active window shrinks the quorum", 5, s, n, 12 * MIN,
        FIVE_UP_TRACE "+660100 #41 mon1 batch: Alpha/site/v4 up->down by mon1,mon2; active 3 "
                      "quorum 2 epoch 2\n");
}

static void expiry(void)
{
    /* Two monitors make the key official at 2 s, then only heartbeat. The key
     * leaves at the first message at or after 2 s + 1 h. */
    sim_script s[32];
    size_t n = 0;
    s[n++] = (sim_script)OBS(1000, 0, UP);
    s[n++] = (sim_script)OBS(2000, 1, UP);
    for (int k = 1; k <= 12; k++) {
        s[n++] = (sim_script)BEAT(k * 5 * MIN, 0);
        s[n++] = (sim_script)BEAT(k * 5 * MIN, 1);
    }
    s[n++] = (sim_script)BEAT(3600000 + 1999, 0);
    s[n++] = (sim_script)BEAT(3600000 + 2000, 1);
    run("expiry removes a key nobody observes for an hour", 2, s, n, 70 * MIN,
        "+2000 #2 mon2 batch: Alpha/site/v4 none->up by mon1,mon2; active 2 quorum 2 epoch 1\n"
        "+3602000 #28 mon2 heartbeat: Alpha/site/v4 up->none; active 2 quorum 2 epoch 2\n");
}

static void overrides(void)
{
    const sim_script s[] = {ADMIN(5000, 0, true), ADMIN(6000, 0, true), ADMIN(7000, 0, false),
                            ADMIN(8000, 0, false)};
    run("member override: event, no-op repeat, enable", 3, s, sizeof s / sizeof s[0], MIN,
        "+5000 #1 admin override: override Alpha disabled; active 0 quorum 2 epoch 1\n"
        "+7000 #3 admin override: override Alpha enabled; active 0 quorum 2 epoch 2\n");
}

static void liar_alone(void)
{
    /* mon5 lies (down) every 10 s for 15 min; four honest monitors say up
     * every minute. The liar alone never moves the key. */
    sim_script s[256];
    size_t n = 0;
    const sim_script head[] = {FIVE_UP};
    for (size_t i = 0; i < sizeof head / sizeof head[0]; i++)
        s[n++] = head[i];
    for (int k = 1; k <= 90; k++) {
        if (k % 6 == 0)
            for (int m = 0; m < 4; m++)
                s[n++] = (sim_script)OBS(k * 10000 + m, m, UP);
        s[n++] = (sim_script)OBS(k * 10000 + 5, 4, DOWN);
    }
    run("one liar alone flips nothing", 5, s, n, 16 * MIN, FIVE_UP_TRACE);
}

/*
 * The engine is not what stops forged or replayed envelopes: it trusts the
 * signer it is given. Fed directly (no filter), a replayed batch is applied
 * again (harmlessly: it only refreshes that monitor's one vote) and an
 * unknown signer counts as a monitor, enough with one real vote to make a key
 * official. In the cluster the driver's filter drops both (sim_random counts
 * them per reason).
 */
static void engine_trusts_its_driver(void)
{
    ibp_vote_config cfg;
    ibp_vote_config_init(&cfg);
    ibp_vote *e;
    if (ibp_vote_new(&cfg, &e) != IBP_VOTE_OK)
        abort();
    ibp_vote_obs o = {{IBP_VOTE_SITE, "ping", "Alpha", "", "", false}, DOWN, 1, "timeout", ""};
    ibp_vote_msg m = {BATCH, "mon1", 1, 1000, 7, false, &o, 1, {NULL, false, NULL}};
    ibp_vote_update up;
    bool ok = ibp_vote_apply(e, &m, &up) == IBP_VOTE_OK;
    m.local_seq = 2; /* the same envelope again: a replay the filter should have dropped */
    m.stream_ms = 2000;
    ok = ok && ibp_vote_apply(e, &m, &up) == IBP_VOTE_OK && !up.epoch_advanced &&
         up.active_monitors == 1;
    m.signer = "evil"; /* not in any roster */
    m.local_seq = 3;
    m.stream_ms = 3000;
    ok = ok && ibp_vote_apply(e, &m, &up) == IBP_VOTE_OK && up.active_monitors == 2 &&
         up.nchanges == 1 && up.changes[0].status == DOWN;
    ibp_vote_free(e);
    if (!ok) {
        fprintf(stderr, "golden engine trusts its driver: unexpected result\n");
        failures++;
    } else {
        printf("golden engine trusts its driver (the filter, not the engine, stops forgeries): "
               "ok\n");
    }
}

int main(void)
{
    const char *v = getenv("IBP_SIM_VERBOSE");
    verbose = v && *v && *v != '0';
    three_of_five_flip();
    two_of_five_stays();
    comes_back_up();
    staleness();
    leaving_shrinks_quorum();
    expiry();
    overrides();
    liar_alone();
    engine_trusts_its_driver();
    if (failures) {
        fprintf(stderr, "golden: %d scenario(s) failed\n", failures);
        return 1;
    }
    return 0;
}
