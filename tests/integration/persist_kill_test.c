/*
 * kill -9 of ibp-persist at random points, many times, while a publisher
 * sends signed HitBatches and Events (DESIGN.md §8): at the end the sum of
 * hits in MariaDB equals the sum published, exactly, and every outage is
 * there once.
 *
 * Private nats-server and MariaDB (the standard stream names HITS and
 * EVENTS, created with ibp_bus_ensure_streams); the real program
 * (IBP_PERSIST_BIN) with small batches and a short fetch wait, so a kill
 * lands in a fetch, a transaction, a commit or the acks. The last run is
 * stopped with SIGTERM and must exit 0.
 *
 * IBP_KILL_ROUNDS (default 20) sets the number of kills.
 */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "ibp/bus.h"
#include "persist_testlib.h"

typedef struct fx {
    ibp_testenv_private srv;
    pt_keys k;
    natsConnection *nc;
    jsCtx *js;
    MYSQL *db;
    const char *bin;
    char config[1200];
    char log[1200];
} fx;

static fx F;

typedef struct publisher {
    pthread_t thread;
    atomic_bool stop;
    uint64_t hits_sum;        /* confirmed by PubAck */
    _Atomic uint64_t batches; /* also read by the main thread while publishing */
    uint64_t events;          /* Event messages */
    uint64_t outages;         /* closed outages expected in member_events */
    uint64_t flaps;
    uint64_t seed;
} publisher;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *publisher_main(void *arg)
{
    publisher *p = arg;
    static const char *const doms[] = {"rpc.ibp.network", "sys.ibp.network", "a.example"};
    static const char *const mems[] = {"Stake Plus", "Amforc", "(none)"};
    static const char *const ccs[] = {"DE", "FR", "JP", "??"};
    uint64_t flush[2] = {0, 0};
    const int64_t t0 = INT64_C(1767225600000);
    while (!atomic_load(&p->stop)) {
        int n = (int)(rnd(&p->seed) % 2);
        const char *node = n ? PT_DNS2 : PT_DNS;
        ibp_signer *s = n ? F.k.s_dns2 : F.k.s_dns;
        pt_row rows[30];
        size_t nrows = 1 + rnd(&p->seed) % 30;
        uint64_t sum = 0;
        for (size_t i = 0; i < nrows; i++) {
            rows[i] = (pt_row){.date = rnd(&p->seed) % 2 ? "2026-05-01" : "2026-05-02",
                               .domain = doms[rnd(&p->seed) % 3],
                               .member = mems[rnd(&p->seed) % 3],
                               .cc = ccs[rnd(&p->seed) % 4],
                               .country = "x",
                               .ipv6 = rnd(&p->seed) % 2,
                               .hits = 1 + rnd(&p->seed) % 100};
            sum += rows[i].hits;
        }
        char subject[64];
        snprintf(subject, sizeof subject, "ibp.hits.%s", node);
        pt_publish_hits(F.js, s, subject, node, ++flush[n], rows, nrows, NULL);
        p->hits_sum += sum;
        p->batches++;
        if (p->batches % 8 == 0) {
            /* An outage of a key of its own: 60 s (kept) or 5 s (a flap, deleted). */
            uint64_t i = p->batches / 8;
            bool flap = i % 3 == 0;
            char id_down[32], id_up[32], member[32];
            snprintf(id_down, sizeof id_down, "%" PRIu64 "-down", i);
            snprintf(id_up, sizeof id_up, "%" PRIu64 "-up", i);
            snprintf(member, sizeof member, "member-%" PRIu64, i);
            pt_event e = {.id = id_down,
                          .kind = IBP__V1__EVENT_KIND__EVENT_KIND_STATUS,
                          .check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE,
                          .check_name = "ping",
                          .member = member,
                          .time_ms = t0 + (int64_t)i * 1000,
                          .epoch = 2 * i,
                          .nvoters = 2};
            pt_publish_event(F.js, F.k.s_cons, "ibp.events.m", &e, NULL);
            e.id = id_up;
            e.up = true;
            e.time_ms += flap ? 5000 : 60000;
            e.epoch++;
            pt_publish_event(F.js, F.k.s_cons, "ibp.events.m", &e, NULL);
            p->events += 2;
            if (flap)
                p->flaps++;
            else
                p->outages++;
        }
        pt_sleep_ms(2);
    }
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof F);
    F.bin = getenv("IBP_PERSIST_BIN");
    if (F.bin == NULL) {
        fprintf(stderr, "IBP_PERSIST_BIN is not set\n");
        return -1;
    }
    if (ibp_testenv_private_start(&F.srv) != 0)
        return -1;
    pt_keys_init(&F.k);
    if (ibp_testenv_nats_connect(&F.srv.env, &F.nc) != NATS_OK)
        return -1;
    natsConnection_JetStream(&F.js, F.nc, NULL);
    ibp_err e;
    ibp_err_clear(&e);
    if (ibp_bus_ensure_streams(F.js, NULL, &e) != IBP_OK) {
        fprintf(stderr, "streams: %s\n", e.msg);
        return -1;
    }
    F.db = pt_db_create(&F.srv.env, "ibp");
    snprintf(F.config, sizeof F.config, "%s",
             pt_write_config(&F.k, &F.srv.env, IBP_TESTENV_NATS_PERSIST, "ibp",
                             "\"persist\": {\"batch_size\": 16, \"fetch_wait_ms\": 50},\n"
                             " \"log\": {\"level\": \"info\"}"));
    snprintf(F.log, sizeof F.log, "%s/ibp-persist.log", F.k.dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (F.db)
        mysql_close(F.db);
    jsCtx_Destroy(F.js);
    natsConnection_Destroy(F.nc);
    pt_keys_free(&F.k);
    ibp_testenv_private_stop(&F.srv);
    nats_Close();
    return 0;
}

static pid_t spawn_persist(void)
{
    char sql_dir[1200];
    snprintf(sql_dir, sizeof sql_dir, "%s/deploy/sql", IBP_SOURCE_DIR);
    char *argv[] = {(char *)F.bin, "--config", F.config, "--sql-dir", sql_dir, NULL};
    pid_t pid = ibp_testenv_spawn(argv, F.log, NULL);
    assert_true(pid > 0);
    return pid;
}

static void print_log_tail(void)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "tail -n 40 '%s' >&2", F.log);
    if (system(cmd) != 0)
        fprintf(stderr, "(no log)\n");
}

static int count_in_log(const char *needle)
{
    FILE *f = fopen(F.log, "r");
    char line[4096];
    int n = 0;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

static void test_kill9_many_times(void **state)
{
    (void)state;
    int rounds = getenv("IBP_KILL_ROUNDS") ? atoi(getenv("IBP_KILL_ROUNDS")) : 20;
    publisher pub;
    memset(&pub, 0, sizeof pub);
    pub.seed = 0x2545F4914F6CDD1Dull ^ (uint64_t)pt_now_ms();
    uint64_t rs = pub.seed * 31 + 7;
    atomic_init(&pub.stop, false);
    assert_int_equal(pthread_create(&pub.thread, NULL, publisher_main, &pub), 0);

    long long t0 = pt_now_ms();
    for (int i = 0; i < rounds; i++) {
        pid_t pid = spawn_persist();
        int wait_ms = 100 + (int)(rnd(&rs) % 600);
        pt_sleep_ms(wait_ms);
        int status = 0;
        if (ibp_testenv_kill_wait(pid, SIGKILL, 5000, &status) != 0)
            fail_msg("round %d: ibp-persist did not die", i);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
            print_log_tail();
            fail_msg("round %d: ibp-persist exited by itself (status %d) before the kill", i,
                     status);
        }
        long long applied = pt_db_int(F.db, "SELECT COALESCE(MAX(last_seq), 0) FROM "
                                            "persist_offsets WHERE stream = 'HITS'");
        printf("round %2d: killed after %3d ms; HITS applied up to %lld, published %" PRIu64
               " batches\n",
               i + 1, wait_ms, applied, atomic_load(&pub.batches));
        fflush(stdout);
    }
    atomic_store(&pub.stop, true);
    pthread_join(pub.thread, NULL);
    printf("kill phase: %d kills in %lld ms; published %" PRIu64 " HitBatches (%" PRIu64
           " hits), %" PRIu64 " Events\n",
           rounds, pt_now_ms() - t0, pub.batches, pub.hits_sum, pub.events);

    /* The last run catches up and stops cleanly. */
    pid_t pid = spawn_persist();
    uint64_t hits_last = pt_stream_last_seq(F.js, "HITS");
    uint64_t events_last = pt_stream_last_seq(F.js, "EVENTS");
    pt_wait_offset(F.db, "HITS", hits_last, 60000);
    pt_wait_offset(F.db, "EVENTS", events_last, 60000);
    int status = 0;
    if (ibp_testenv_kill_wait(pid, SIGTERM, 15000, &status) != 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        print_log_tail();
        fail_msg("ibp-persist did not stop cleanly on SIGTERM (status %d)", status);
    }
    long long sum = pt_db_int(F.db, "SELECT CAST(COALESCE(SUM(hits), 0) AS UNSIGNED) FROM "
                                    "requests");
    printf("MariaDB SUM(hits) = %lld, published %" PRIu64 "; consumer re-creations %d\n", sum,
           pub.hits_sum, count_in_log("re-creating durable consumer"));
    assert_int_equal(sum, (long long)pub.hits_sum);
    assert_int_equal(pt_db_int(F.db, "SELECT COUNT(*) FROM dead_letters"), 0);
    assert_int_equal(pt_db_int(F.db, "SELECT COUNT(*) FROM member_events"), (long long)pub.outages);
    assert_int_equal(pt_db_int(F.db, "SELECT COUNT(*) FROM member_events WHERE end_time IS NULL"),
                     0);
    assert_int_equal(pt_db_int(F.db, "SELECT COUNT(*) FROM persist_event_ids"),
                     (long long)pub.events);
    assert_int_equal(pt_db_int(F.db, "SELECT SUM(last_flush_seq) FROM persist_hit_flushes"),
                     (long long)pub.batches);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_many_times),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
