/*
 * ibp-persist, the program, against the shared servers with streams,
 * databases and request subjects of its own (DESIGN.md §8):
 *   - the daemon builds a database live from HITS and EVENTS (dead letters
 *     and a re-published batch included) and stops cleanly on SIGTERM;
 *   - `ibp-persist replay` rebuilds another database from the streams, with a
 *     progress line, and every table compares equal row by row (except the
 *     AUTO_INCREMENT id and the wall-clock columns);
 *   - replay refuses a database that is not empty; replays from a sequence;
 *   - the daemon refuses a database whose schema is newer than it knows;
 *   - --help prints the settings.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "persist_testlib.h"

typedef struct fx {
    ibp_testenv env;
    pt_keys k;
    char unique[64], hits[96], events[96], hsubj[160], esubj[160];
    char live[96], replay[96], part[96], newer[96], prefix[160];
    natsConnection *nc;
    jsCtx *js;
    MYSQL *db;
    const char *bin;
    char config[1200];
    char sql_dir[1200];
} fx;

static fx F;

static int setup(void **state)
{
    (void)state;
    F.bin = getenv("IBP_PERSIST_BIN");
    if (F.bin == NULL || ibp_testenv_load(&F.env) != 0)
        return -1;
    ibp_testenv_unique_name("pr", F.unique, sizeof F.unique);
    snprintf(F.hits, sizeof F.hits, "IT_HITS_%s", F.unique);
    snprintf(F.events, sizeof F.events, "IT_EVENTS_%s", F.unique);
    snprintf(F.hsubj, sizeof F.hsubj, "it.%s.hits", F.unique);
    snprintf(F.esubj, sizeof F.esubj, "it.%s.events", F.unique);
    snprintf(F.live, sizeof F.live, "%s_live", F.unique);
    snprintf(F.replay, sizeof F.replay, "%s_replay", F.unique);
    snprintf(F.part, sizeof F.part, "%s_part", F.unique);
    snprintf(F.newer, sizeof F.newer, "%s_newer", F.unique);
    snprintf(F.prefix, sizeof F.prefix, "it.%s.persist", F.unique);
    snprintf(F.sql_dir, sizeof F.sql_dir, "%s/deploy/sql", IBP_SOURCE_DIR);
    pt_keys_init(&F.k);
    if (ibp_testenv_nats_connect(&F.env, &F.nc) != NATS_OK)
        return -1;
    natsConnection_JetStream(&F.js, F.nc, NULL);
    char s[200];
    snprintf(s, sizeof s, "%s.>", F.hsubj);
    pt_stream_create(F.js, F.hits, s);
    snprintf(s, sizeof s, "%s.>", F.esubj);
    pt_stream_create(F.js, F.events, s);
    snprintf(F.config, sizeof F.config, "%s",
             pt_write_config(&F.k, &F.env, IBP_TESTENV_NATS_TEST, F.live,
                             "\"persist\": {\"batch_size\": 10, \"fetch_wait_ms\": 50}"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (F.js) {
        pt_stream_delete(F.js, F.hits);
        pt_stream_delete(F.js, F.events);
    }
    if (F.db)
        mysql_close(F.db);
    pt_db_drop(&F.env, F.live);
    pt_db_drop(&F.env, F.replay);
    pt_db_drop(&F.env, F.part);
    pt_db_drop(&F.env, F.newer);
    jsCtx_Destroy(F.js);
    natsConnection_Destroy(F.nc);
    pt_keys_free(&F.k);
    nats_Close();
    return 0;
}

/* Runs the program to completion; returns its exit status; output in log. */
static int run(char *const argv[], const char *log, int timeout_ms)
{
    pid_t pid = ibp_testenv_spawn(argv, log, NULL);
    assert_true(pid > 0);
    int status = 0;
    if (ibp_testenv_kill_wait(pid, 0, timeout_ms, &status) != 0)
        fail_msg("%s did not finish in %d ms", argv[0], timeout_ms);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    bool found = false;
    if (f == NULL)
        return false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static void show(const char *path)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "tail -n 30 '%s' >&2", path);
    if (system(cmd) != 0)
        fprintf(stderr, "(cannot show %s)\n", path);
}

static void publish_all(uint64_t *hits_last, uint64_t *events_last)
{
    static const char *const doms[] = {"rpc.ibp.network", "a.example", "b.example"};
    char subj[200];
    uint64_t r = 12345;
    for (int i = 1; i <= 30; i++) {
        const char *node = i % 3 ? PT_DNS : PT_DNS2;
        ibp_signer *s = i % 3 ? F.k.s_dns : F.k.s_dns2;
        pt_row rows[8];
        for (int j = 0; j < 8; j++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            rows[j] = (pt_row){.date = (r >> 33) % 2 ? "2026-07-01" : "2026-07-02",
                               .domain = doms[(r >> 40) % 3],
                               .member = (r >> 45) % 2 ? "Stake Plus" : "Amforc",
                               .cc = (r >> 50) % 2 ? "DE" : "NL",
                               .country = (r >> 50) % 2 ? "Germany" : "Netherlands",
                               .ipv6 = (r >> 55) % 2,
                               .hits = 1 + (r >> 20) % 500};
        }
        snprintf(subj, sizeof subj, "%s.%s", F.hsubj, node);
        *hits_last = pt_publish_hits(F.js, s, subj, node, (uint64_t)(i / 3 + 1) * 10 + (uint64_t)i,
                                     rows, 8, NULL);
        if (i == 10) {
            pt_publish_raw(F.js, subj, "junk", 4);
            pt_publish_hits(F.js, s, subj, node, (uint64_t)(i / 3 + 1) * 10 + (uint64_t)i, rows, 8,
                            "again");
        }
    }
    const int64_t t0 = INT64_C(1767225600000);
    snprintf(subj, sizeof subj, "%s.m", F.esubj);
    for (int i = 0; i < 12; i++) {
        char id[32], member[32];
        snprintf(member, sizeof member, "member-%d", i % 4);
        pt_event e = {.kind = IBP__V1__EVENT_KIND__EVENT_KIND_STATUS,
                      .check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_DOMAIN,
                      .check_name = "dns",
                      .member = member,
                      .domain = "rpc.ibp.network",
                      .time_ms = t0 + i * 100000,
                      .epoch = (uint64_t)(2 * i + 1),
                      .data_json = "{\"rtt\":3}",
                      .nvoters = 3};
        snprintf(id, sizeof id, "%d-down", i);
        e.id = id;
        *events_last = pt_publish_event(F.js, F.k.s_cons, subj, &e, NULL);
        if (i % 4 == 3)
            continue; /* left open */
        snprintf(id, sizeof id, "%d-up", i);
        e.up = true;
        e.epoch++;
        e.time_ms += i % 2 ? 10000 : 90000; /* flap or outage */
        *events_last = pt_publish_event(F.js, F.k.s_cons, subj, &e, NULL);
    }
    pt_event o = {.id = "o-1",
                  .kind = IBP__V1__EVENT_KIND__EVENT_KIND_OVERRIDE,
                  .check_name = "override",
                  .member = "member-1",
                  .time_ms = t0 + 5000000,
                  .epoch = 100};
    pt_publish_event(F.js, F.k.s_cons, subj, &o, NULL);
    pt_publish_event(F.js, F.k.s_evil_cons, subj, &o, "forged");
    o.id = "o-2";
    o.up = true;
    o.time_ms += 600000;
    *events_last = pt_publish_event(F.js, F.k.s_cons, subj, &o, NULL);
}

static const char *const COMPARE[] = {
    "SELECT date, node_id, domain_name, member_name, network_asn, network_name, country_code, "
    "country_name, is_ipv6, hits FROM requests ORDER BY date, node_id, domain_name, member_name, "
    "network_asn, network_name, country_code, country_name, is_ipv6",
    "SELECT check_type, check_name, endpoint, member_name, domain_name, status, is_ipv6, "
    "start_time, end_time, error, vote_data, additional_data, event_id, end_event_id, "
    "HEX(open_key) FROM member_events ORDER BY start_time, event_id",
    "SELECT stream, consumer, last_seq FROM persist_offsets ORDER BY stream, consumer",
    "SELECT stream, seq, reason, detail, subject, HEX(payload) FROM dead_letters ORDER BY stream, "
    "seq",
    "SELECT node_id, last_flush_seq, last_stream_seq FROM persist_hit_flushes ORDER BY node_id",
    "SELECT event_id, stream_seq FROM persist_event_ids ORDER BY event_id",
};

static void test_live_then_replay(void **state)
{
    (void)state;
    uint64_t hits_last = 0, events_last = 0;
    publish_all(&hits_last, &events_last);
    char log[1300];

    /* --help */
    snprintf(log, sizeof log, "%s/help.log", F.k.dir);
    char *help[] = {(char *)F.bin, "--help", NULL};
    assert_int_equal(run(help, log, 10000), 0);
    assert_true(file_has(log, "persist.batch_size"));

    /* The daemon, live. */
    MYSQL *root = ibp_testenv_mysql_connect(&F.env, NULL);
    assert_non_null(root);
    assert_int_equal(ibp_testenv_mysql_exec(root, "CREATE DATABASE `%s`", F.live), 0);
    mysql_close(root);
    snprintf(log, sizeof log, "%s/live.log", F.k.dir);
    char *live[] = {(char *)F.bin, "--config",         F.config, "--sql-dir",
                    F.sql_dir,     "--hits-stream",    F.hits,   "--events-stream",
                    F.events,      "--service-prefix", F.prefix, NULL};
    pid_t pid = ibp_testenv_spawn(live, log, NULL);
    assert_true(pid > 0);
    F.db = ibp_testenv_mysql_connect(&F.env, F.live);
    assert_non_null(F.db);
    long long end = pt_now_ms() + 30000;
    while (pt_db_int(F.db,
                     "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "
                     "'%s' AND table_name = 'persist_offsets'",
                     F.live) == 0) {
        if (pt_now_ms() > end) {
            show(log);
            fail_msg("ibp-persist did not migrate %s", F.live);
        }
        pt_sleep_ms(50);
    }
    pt_wait_offset(F.db, F.hits, hits_last, 30000);
    pt_wait_offset(F.db, F.events, events_last, 30000);
    int status = 0;
    if (ibp_testenv_kill_wait(pid, SIGTERM, 15000, &status) != 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        show(log);
        fail_msg("the daemon did not stop cleanly (status %d)", status);
    }
    assert_true(file_has(log, "stopped"));
    assert_int_equal(pt_db_int(F.db, "SELECT COUNT(*) FROM dead_letters"), 3);
    assert_true(pt_db_int(F.db, "SELECT COUNT(*) FROM member_events") > 4);

    /* Replay into another database. */
    snprintf(log, sizeof log, "%s/replay.log", F.k.dir);
    char *rep[] = {(char *)F.bin,     "replay",    "--config", F.config,        "--database",
                   F.replay,          "--sql-dir", F.sql_dir,  "--hits-stream", F.hits,
                   "--events-stream", F.events,    NULL};
    int rc = run(rep, log, 60000);
    if (rc != 0) {
        show(log);
        fail_msg("replay exited %d", rc);
    }
    char progress[300];
    snprintf(progress, sizeof progress, "replay %s: seq %" PRIu64 "/%" PRIu64 " (100.0%%)", F.hits,
             hits_last, hits_last);
    if (!file_has(log, progress) || !file_has(log, "msg/s ETA")) {
        show(log);
        fail_msg("no progress line \"%s\" in the replay output", progress);
    }
    MYSQL *rdb = ibp_testenv_mysql_connect(&F.env, F.replay);
    assert_non_null(rdb);
    for (size_t i = 0; i < sizeof COMPARE / sizeof COMPARE[0]; i++) {
        char *a = pt_db_dump(F.db, COMPARE[i]);
        char *b = pt_db_dump(rdb, COMPARE[i]);
        if (strcmp(a, b) != 0)
            fail_msg("live and replayed differ:\n%s\n--- live ---\n%.4000s--- replay "
                     "---\n%.4000s",
                     COMPARE[i], a, b);
        printf("equal (%zu bytes): %.60s...\n", strlen(a), COMPARE[i]);
        free(a);
        free(b);
    }
    mysql_close(rdb);

    /* Not into a database with rows. */
    snprintf(log, sizeof log, "%s/replay2.log", F.k.dir);
    assert_int_equal(run(rep, log, 30000), 2);
    assert_true(file_has(log, "is not empty"));

    /* From a sequence, HITS only. */
    snprintf(log, sizeof log, "%s/replay3.log", F.k.dir);
    char from[32];
    snprintf(from, sizeof from, "%" PRIu64, hits_last - 4);
    char *part[] = {(char *)F.bin,   "replay", "--config",  F.config,
                    "--database",    F.part,   "--sql-dir", F.sql_dir,
                    "--hits-stream", F.hits,   "--stream",  "HITS",
                    "--from-seq",    from,     NULL};
    rc = run(part, log, 60000);
    if (rc != 0) {
        show(log);
        fail_msg("partial replay exited %d", rc);
    }
    MYSQL *pdb = ibp_testenv_mysql_connect(&F.env, F.part);
    assert_non_null(pdb);
    assert_int_equal(pt_db_int(pdb, "SELECT COUNT(*) FROM persist_offsets"), 1);
    assert_int_equal(pt_db_int(pdb, "SELECT last_seq FROM persist_offsets"), (long long)hits_last);
    assert_int_equal(
        pt_db_int(pdb, "SELECT SUM(last_stream_seq >= %" PRIu64 ") FROM persist_hit_flushes",
                  hits_last - 4),
        2);
    mysql_close(pdb);
}

static void test_refuses_newer_schema(void **state)
{
    (void)state;
    MYSQL *db = pt_db_create(&F.env, F.newer);
    assert_int_equal(ibp_testenv_mysql_exec(db, "INSERT INTO schema_version (version, name) "
                                                "VALUES (999, '999_future.sql')"),
                     0);
    mysql_close(db);
    char set[200], log[1300];
    snprintf(set, sizeof set, "mysql.database=%s", F.newer);
    snprintf(log, sizeof log, "%s/newer.log", F.k.dir);
    char *argv[] = {(char *)F.bin, "--config",      F.config, "--sql-dir",       F.sql_dir, "--set",
                    set,           "--hits-stream", F.hits,   "--events-stream", F.events,  NULL};
    int rc = run(argv, log, 30000);
    if (rc != 2 || !file_has(log, "newer than the newest migration")) {
        show(log);
        fail_msg("ibp-persist exited %d on a newer schema; want 2 and a message", rc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_then_replay),
        cmocka_unit_test(test_refuses_newer_schema),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
