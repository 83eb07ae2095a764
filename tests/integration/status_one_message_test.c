/*
 * Integration: one message per change. Three ibp-node processes, each a
 * monitor and a consensus replica, on a private nats-server; a plain NATS
 * subscriber of ibp.status.> and ibp.events.> counts what it receives.
 *
 *   - Several official changes of one endpoint, driven through the monitors'
 *     control sockets: the subscriber gets exactly one status message and one
 *     event per change (only the replica that won the epoch's snapshot
 *     publishes them; the others check after consensus.side_cover_ms and find
 *     them there). EVENTS holds exactly those events, STATUS the last status,
 *     OFFICIAL epochs 1..N.
 *   - The replicas restarted with IBP_TEST_REPLICA_DIE_AFTER_SNAPSHOT=1 (a
 *     test-only switch: a replica that wins a snapshot kills itself before
 *     its side messages) and one more change: the winner dies, a survivor
 *     publishes the status message and event within the bound, and the
 *     subscriber still gets each once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ibp/clock.h"
#include "ibp/bus.h"
#include "ibp/envelope.h"
#include "ibp/key.h"
#include "ibp/roster.h"
#include "ibp/subject.h"
#include "testenv.h"

#define NODES 3
#define MEMBER "Alpha Nodes"
#define DOMAIN "polkadot.ibp.example"
#define ENDPOINT "wss://polkadot.ibp.example"
#define CHECK "wss"
#define WAIT_MS 15000
#define SIDE_COVER_MS 1500
#define CHANGES 5

static ibp_testenv_private servers;
static char dir[1024];
static char sock[NODES][1200];
static char logs[NODES][1200];
static pid_t pids[NODES];
static bool alive[NODES];
static ibp_roster *roster;
static ibp_verifier *verifier;
static natsConnection *nc;
static jsCtx *js;
static natsSubscription *sub_status, *sub_events;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void must(ibp_status st, const ibp_err *err)
{
    if (st != IBP_OK)
        fail_msg("%s: %s", ibp_status_name(st), err ? err->msg : "");
}

static void dump_log(int i)
{
    char cmd[2600];
    int n = snprintf(cmd, sizeof cmd, "echo '---- tail of %s'; tail -n 25 '%s'", logs[i], logs[i]);
    if (n < 0 || (size_t)n >= sizeof cmd || system(cmd) != 0)
        fprintf(stderr, "cannot show %s\n", logs[i]);
}

/* ---- control socket ------------------------------------------------------ */

/* Sends one request to node i; NULL when may_fail and the node is gone. */
static json_t *ctl_req(int i, json_t *req, bool may_fail)
{
    char *line = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    assert_non_null(line);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sock[i]) >= sizeof sa.sun_path)
        fail_msg("socket path too long: %s", sock[i]);
    memcpy(sa.sun_path, sock[i], strlen(sock[i]) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        free(line);
        if (may_fail)
            return NULL;
        dump_log(i);
        fail_msg("rep%d: cannot connect to %s: %s", i + 1, sock[i], strerror(e));
    }
    size_t n = strlen(line);
    line[n] = '\n';
    ssize_t w = send(fd, line, n + 1, MSG_NOSIGNAL);
    free(line);
    assert_int_equal(w, (ssize_t)(n + 1));
    char buf[65536];
    size_t used = 0;
    while (used < sizeof buf - 1) {
        ssize_t r = recv(fd, buf + used, sizeof buf - 1 - used, 0);
        if (r <= 0)
            break;
        used += (size_t)r;
        if (memchr(buf, '\n', used))
            break;
    }
    close(fd);
    buf[used] = '\0';
    json_t *ans = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
    if (!ans && may_fail)
        return NULL;
    if (!ans)
        fail_msg("rep%d: answer is not JSON: '%s'", i + 1, buf);
    return ans;
}

static json_t *ctl_ok(int i, json_t *req)
{
    json_t *ans = ctl_req(i, req, false);
    if (!json_is_true(json_object_get(ans, "ok"))) {
        char *t = json_dumps(ans, JSON_COMPACT);
        dump_log(i);
        fail_msg("rep%d refused a request: %s", i + 1, t);
    }
    return ans;
}

/* Every live node reports the endpoint up or down, then flushes. A node that
 * dies meanwhile (the test switch) is skipped when may_die. */
static void report(bool up, bool may_die)
{
    for (int i = 0; i < NODES; i++)
        if (alive[i])
            json_decref(ctl_req(i,
                                json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:s}", "cmd",
                                          "observe", "type", "endpoint", "check", CHECK, "member",
                                          MEMBER, "domain", DOMAIN, "endpoint", ENDPOINT, "ipv6", 0,
                                          "up", up, "error", up ? "" : "connect timeout"),
                                may_die));
    for (int i = 0; i < NODES; i++)
        if (alive[i])
            json_decref(
                ctl_req(i, json_pack("{s:s, s:i}", "cmd", "flush", "timeout_ms", 10000), may_die));
}

/* Waits until node i holds the key officially with status want_up; returns the epoch. */
static uint64_t wait_official(int i, bool want_up)
{
    int64_t end = ibp_clock_mono_ms() + WAIT_MS;
    bool found = false, up = false;
    uint64_t epoch = 0;
    while (ibp_clock_mono_ms() < end) {
        json_t *a = ctl_ok(i, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "cmd", "official",
                                        "type", "endpoint", "check", CHECK, "member", MEMBER,
                                        "domain", DOMAIN, "endpoint", ENDPOINT, "ipv6", 0));
        found = json_is_true(json_object_get(a, "found"));
        up = json_is_true(json_object_get(a, "up"));
        epoch = (uint64_t)json_integer_value(json_object_get(a, "epoch"));
        json_decref(a);
        if (found && up == want_up)
            return epoch;
        sleep_ms(50);
    }
    for (int k = 0; k < NODES; k++)
        if (alive[k])
            dump_log(k);
    fail_msg("rep%d: the key did not become officially %s (found=%d up=%d epoch=%" PRIu64 ")",
             i + 1, want_up ? "up" : "down", found, up, epoch);
    return 0;
}

/* A replica figure from node i's status (0 when missing). */
static uint64_t replica_num(int i, const char *key)
{
    json_t *a = ctl_ok(i, json_pack("{s:s}", "cmd", "status"));
    json_t *v = json_object_get(json_object_get(a, "replica"), key);
    uint64_t n = json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
    json_decref(a);
    return n;
}

static uint64_t replica_sum(const char *key)
{
    uint64_t n = 0;
    for (int i = 0; i < NODES; i++)
        if (alive[i])
            n += replica_num(i, key);
    return n;
}

/* ---- the core subscriber ------------------------------------------------- */

typedef struct rec {
    bool status; /* else an event */
    uint64_t epoch;
    char id[160]; /* Nats-Msg-Id */
} rec;

static rec recs[4096];
static size_t nrecs;

static void take(natsMsg *m, bool status)
{
    assert_true(nrecs < sizeof recs / sizeof recs[0]);
    rec *r = &recs[nrecs++];
    memset(r, 0, sizeof *r);
    r->status = status;
    const char *id = NULL;
    natsMsgHeader_Get(m, IBP_HDR_MSG_ID, &id);
    snprintf(r->id, sizeof r->id, "%s", id ? id : "?");
    const char *data = natsMsg_GetData(m);
    size_t len = (size_t)natsMsg_GetDataLength(m);
    if (status) {
        json_t *j = json_loadb(data, len, 0, NULL);
        r->epoch = (uint64_t)json_integer_value(json_object_get(j, "epoch"));
        json_decref(j);
    } else {
        ibp_verified vm = {0};
        ibp_err err = {0};
        must(ibp_verifier_check_stateless(verifier, (const uint8_t *)data, len, &vm, &err), &err);
        assert_int_equal(vm.envelope->type, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT);
        r->epoch = ((const Ibp__V1__Event *)vm.payload)->epoch;
        ibp_verified_clear(&vm);
    }
}

/* Takes everything the subscriptions hold now. */
static void drain(void)
{
    for (;;) {
        natsMsg *m = NULL;
        bool any = false;
        if (natsSubscription_NextMsg(&m, sub_status, 20) == NATS_OK) {
            take(m, true);
            natsMsg_Destroy(m);
            any = true;
        }
        if (natsSubscription_NextMsg(&m, sub_events, 20) == NATS_OK) {
            take(m, false);
            natsMsg_Destroy(m);
            any = true;
        }
        if (!any)
            return;
    }
}

static size_t count(bool status, uint64_t epoch)
{
    size_t n = 0;
    for (size_t i = 0; i < nrecs; i++)
        n += recs[i].status == status && recs[i].epoch == epoch;
    return n;
}

/* Waits until the subscriber got the status message of epoch; returns the wait. */
static int64_t wait_status(uint64_t epoch, int64_t limit_ms)
{
    int64_t start = ibp_clock_mono_ms();
    while (ibp_clock_mono_ms() - start < limit_ms) {
        drain();
        if (count(true, epoch) > 0)
            return ibp_clock_mono_ms() - start;
        sleep_ms(20);
    }
    fail_msg("no status message of epoch %" PRIu64 " within %lld ms", epoch, (long long)limit_ms);
    return 0;
}

/* Every id the subscriber got, once; printed and failed otherwise. */
static void assert_ids_unique(void)
{
    for (size_t i = 0; i < nrecs; i++)
        for (size_t k = i + 1; k < nrecs; k++)
            if (strcmp(recs[i].id, recs[k].id) == 0)
                fail_msg("the subscriber got %s twice (epoch %" PRIu64 ")", recs[i].id,
                         recs[i].epoch);
}

/* ---- the streams ------------------------------------------------------------ */

/* Every Nats-Msg-Id in EVENTS, with each event's epoch. */
static size_t read_events(rec *out, size_t cap)
{
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    jsSubOptions_Init(&so);
    so.Stream = IBP_STREAM_EVENTS;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    size_t n = 0;
    assert_int_equal(js_SubscribeSync(&sub, js, "ibp.events.>", NULL, &so, &jerr), NATS_OK);
    for (;;) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, sub, 2000) != NATS_OK)
            break;
        jsMsgMetaData *meta = NULL;
        assert_int_equal(natsMsg_GetMetaData(&meta, m), NATS_OK);
        uint64_t pending = meta->NumPending;
        jsMsgMetaData_Destroy(meta);
        size_t before = nrecs;
        take(m, false);
        nrecs = before; /* borrowed the decoder; not a core record */
        assert_true(n < cap);
        out[n++] = recs[before];
        natsMsg_Destroy(m);
        if (pending == 0)
            break;
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return n;
}

/* The streams hold each event the subscriber got, once, and nothing else. */
static void assert_events_stream(void)
{
    static rec ev[4096];
    size_t n = read_events(ev, sizeof ev / sizeof ev[0]);
    size_t core = 0;
    for (size_t i = 0; i < nrecs; i++) {
        if (recs[i].status)
            continue;
        core++;
        size_t seen = 0;
        for (size_t k = 0; k < n; k++)
            seen += strcmp(ev[k].id, recs[i].id) == 0;
        if (seen != 1)
            fail_msg("EVENTS holds event %s %zu times", recs[i].id, seen);
    }
    assert_int_equal(n, core);
    printf("EVENTS holds exactly the %zu events the subscriber got\n", n);
}

/* The stored snapshot of the newest epoch and the stored status of the endpoint. */
static void stream_times(uint64_t epoch, int64_t *snap_ms, int64_t *status_ms)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    ibp_verified vm = {0};
    ibp_err err = {0};
    assert_int_equal(
        js_GetLastMsg(&m, js, IBP_STREAM_OFFICIAL, IBP_SUBJECT_OFFICIAL_SNAPSHOT, NULL, &jerr),
        NATS_OK);
    must(ibp_verifier_check_stateless(verifier, (const uint8_t *)natsMsg_GetData(m),
                                      (size_t)natsMsg_GetDataLength(m), &vm, &err),
         &err);
    assert_int_equal(((const Ibp__V1__OfficialSnapshot *)vm.payload)->epoch, epoch);
    ibp_verified_clear(&vm);
    *snap_ms = natsMsg_GetTime(m) / 1000000;
    natsMsg_Destroy(m);
    Ibp__V1__ResultKey k = IBP__V1__RESULT_KEY__INIT;
    k.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
    k.check_name = CHECK;
    k.member = MEMBER;
    k.domain = DOMAIN;
    k.endpoint = ENDPOINT;
    char subject[1024];
    must(ibp_subject_status(&k, subject, sizeof subject), NULL);
    assert_int_equal(js_GetLastMsg(&m, js, IBP_STREAM_STATUS, subject, NULL, &jerr), NATS_OK);
    json_t *j = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL);
    assert_int_equal((uint64_t)json_integer_value(json_object_get(j, "epoch")), epoch);
    json_decref(j);
    *status_ms = natsMsg_GetTime(m) / 1000000;
    natsMsg_Destroy(m);
}

/* ---- daemons ----------------------------------------------------------------- */

static void write_config(int i)
{
    char path[1300], wd[1200], nats[2048];
    assert_int_equal(
        ibp_testenv_nats_json(&servers.env, IBP_TESTENV_NATS_MONITOR_CONSENSUS, nats, sizeof nats),
        0);
    snprintf(wd, sizeof wd, "%s/rep%d", dir, i + 1);
    snprintf(path, sizeof path, "%s/node.json", wd);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"node\": {\"id\": \"rep%d\", \"key_file\": \"%s/key\", \"roster_file\": "
            "\"%s/roster.json\", \"work_dir\": \"%s/work\", \"roles\": \"monitor,consensus\"},\n"
            " %s,\n"
            " \"network\": {\"members_file\": \"%s/tests/data/network/members.json\",\n"
            "             \"services_file\": \"%s/tests/data/network/services.json\"},\n"
            " \"intervals\": {\"publish_ms\": 150, \"refresh_ms\": 2000, \"heartbeat_ms\": 500},\n"
            " \"consensus\": {\"active_window_ms\": 20000, \"staleness_ms\": 6000,\n"
            "               \"quorum_min\": 2, \"expiry_ms\": 600000, \"side_cover_ms\": %d},\n"
            " \"log\": {\"level\": \"info\"}}\n",
            i + 1, wd, dir, wd, nats, IBP_SOURCE_DIR, IBP_SOURCE_DIR, SIDE_COVER_MS);
    assert_int_equal(fclose(f), 0);
}

static void start_node(int i, bool die_after_snapshot)
{
    char cfg[1300];
    snprintf(cfg, sizeof cfg, "%s/rep%d/node.json", dir, i + 1);
    char *argv[] = {(char *)IBP_NODE_BIN, "--config", cfg, NULL};
    char *env[] = {"IBP_TEST_REPLICA_DIE_AFTER_SNAPSHOT=1", NULL};
    pids[i] = ibp_testenv_spawn(argv, logs[i], die_after_snapshot ? env : NULL);
    assert_true(pids[i] > 0);
    alive[i] = true;
}

static void wait_node(int i)
{
    int64_t end = ibp_clock_mono_ms() + WAIT_MS;
    struct stat st;
    while (stat(sock[i], &st) != 0) {
        int status;
        if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
            alive[i] = false;
            dump_log(i);
            fail_msg("rep%d exited during start (status %d)", i + 1, status);
        }
        if (ibp_clock_mono_ms() > end) {
            dump_log(i);
            fail_msg("rep%d did not open its control socket", i + 1);
        }
        sleep_ms(20);
    }
    json_decref(ctl_ok(i, json_pack("{s:s}", "cmd", "status")));
}

static int setup(void **state)
{
    (void)state;
    ibp_err err = {0};
    if (ibp_crypto_init() != IBP_OK || ibp_testenv_mkdtemp(dir, sizeof dir) != 0)
        return -1;
    if (ibp_testenv_private_start(&servers) != 0)
        return -1;
    printf("nats-server at %s, test directory %s\n", servers.env.nats_url, dir);
    fflush(stdout);
    char path[1300];
    must(ibp_roster_new(&roster), NULL);
    for (int i = 0; i < NODES; i++) {
        ibp_key k;
        char id[16];
        snprintf(id, sizeof id, "rep%d", i + 1);
        snprintf(path, sizeof path, "%s/rep%d", dir, i + 1);
        assert_int_equal(mkdir(path, 0700), 0);
        snprintf(path, sizeof path, "%s/rep%d/key", dir, i + 1);
        must(ibp_key_generate(&k), NULL);
        must(ibp_key_save(&k, path, &err), &err);
        must(ibp_roster_add(roster, id, k.pk, IBP_ROLE_MONITOR | IBP_ROLE_CONSENSUS, &err), &err);
        ibp_key_wipe(&k);
        snprintf(sock[i], sizeof sock[i], "%s/rep%d/work/control.sock", dir, i + 1);
        snprintf(logs[i], sizeof logs[i], "%s/rep%d/log", dir, i + 1);
    }
    snprintf(path, sizeof path, "%s/roster.json", dir);
    must(ibp_roster_save(roster, path, &err), &err);
    must(ibp_verifier_new(roster, NULL, &verifier), NULL);

    /* The subscriber first, so it misses nothing. */
    assert_int_equal(ibp_testenv_nats_connect(&servers.env, &nc), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    assert_int_equal(natsConnection_SubscribeSync(&sub_status, nc, "ibp.status.>"), NATS_OK);
    assert_int_equal(natsConnection_SubscribeSync(&sub_events, nc, "ibp.events.>"), NATS_OK);
    assert_int_equal(natsConnection_Flush(nc), NATS_OK);
    for (int i = 0; i < NODES; i++)
        write_config(i);
    for (int i = 0; i < NODES; i++)
        start_node(i, false);
    for (int i = 0; i < NODES; i++)
        wait_node(i);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NODES; i++)
        if (alive[i])
            ibp_testenv_kill_wait(pids[i], SIGKILL, 5000, NULL);
    natsSubscription_Destroy(sub_status);
    natsSubscription_Destroy(sub_events);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    ibp_verifier_free(verifier);
    ibp_roster_free(roster);
    if (servers.started)
        ibp_testenv_private_stop(&servers);
    if (dir[0] && !getenv("IBP_TEST_KEEP"))
        ibp_testenv_rmtree(dir);
    return 0;
}

/* ---- the scenario -------------------------------------------------------------- */

static void test_one_message_per_change(void **state)
{
    (void)state;
    uint64_t epoch = 0;
    bool up = true;
    for (int c = 0; c < CHANGES; c++, up = !up) {
        report(up, false);
        epoch = wait_official(0, up);
        assert_int_equal(epoch, (uint64_t)c + 1);
        int64_t waited = wait_status(epoch, 5000);
        printf("change %d: officially %s at epoch %" PRIu64 ", status message after %lld ms\n",
               c + 1, up ? "up" : "down", epoch, (long long)waited);
    }
    /* Past every replica's check time: nothing more arrives. */
    sleep_ms(SIDE_COVER_MS + 1000);
    drain();
    assert_ids_unique();
    for (uint64_t e = 1; e <= epoch; e++) {
        if (count(true, e) != 1 || count(false, e) != 1)
            fail_msg("epoch %" PRIu64 ": %zu status message(s) and %zu event(s), want 1 and 1", e,
                     count(true, e), count(false, e));
    }
    assert_int_equal(nrecs, 2 * epoch);
    assert_events_stream();
    assert_int_equal(replica_sum("side_published"), epoch);
    assert_int_equal(replica_sum("side_covered"), 0);
    assert_int_equal(replica_sum("side_pending"), 0);
    printf("%" PRIu64 " changes: one status message and one event each; the replicas that did "
           "not win checked %" PRIu64 " epochs and covered none\n",
           epoch, replica_sum("side_checked"));

    /* The winner dies right after its snapshot: restart the replicas with the
     * test switch, so whichever wins the next epoch dies before its side
     * messages. */
    for (int i = 0; i < NODES; i++) {
        int status = 0;
        assert_int_equal(ibp_testenv_kill_wait(pids[i], SIGTERM, 10000, &status), 0);
        alive[i] = false;
    }
    for (int i = 0; i < NODES; i++)
        start_node(i, true);
    for (int i = 0; i < NODES; i++)
        wait_node(i);
    sleep_ms(1000);
    drain();
    assert_int_equal(nrecs, 2 * epoch); /* the restarts changed nothing */
    report(up, true);
    int dead = -1;
    for (int64_t end = ibp_clock_mono_ms() + WAIT_MS; dead < 0 && ibp_clock_mono_ms() < end;) {
        for (int i = 0; i < NODES; i++) {
            int status = 0;
            if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
                alive[i] = false;
                dead = i;
                assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
            }
        }
        sleep_ms(10);
    }
    if (dead < 0)
        fail_msg("no replica won the snapshot and died");
    uint64_t e = epoch + 1;
    int survivor = (dead + 1) % NODES;
    assert_int_equal(wait_official(survivor, up), e);
    int64_t waited = wait_status(e, SIDE_COVER_MS + 3000);
    int64_t snap_ms = 0, status_ms = 0;
    stream_times(e, &snap_ms, &status_ms);
    printf("rep%d won epoch %" PRIu64 " and died after its snapshot; the status message was "
           "stored %lld ms after the snapshot (bound %d ms), seen after %lld ms\n",
           dead + 1, e, (long long)(status_ms - snap_ms), SIDE_COVER_MS, (long long)waited);
    /* Covered by a survivor, not published by the winner, within the bound. */
    assert_true(status_ms - snap_ms >= SIDE_COVER_MS / 2 - 100);
    assert_true(status_ms - snap_ms <= SIDE_COVER_MS + 1000);
    sleep_ms(SIDE_COVER_MS + 1000);
    drain();
    assert_ids_unique();
    assert_int_equal(count(true, e), 1);
    assert_int_equal(count(false, e), 1);
    assert_int_equal(nrecs, 2 * e);
    assert_events_stream();
    assert_int_equal(replica_sum("side_covered"), 1);
    assert_int_equal(replica_sum("side_pending"), 0);
    char cmd[2600];
    snprintf(cmd, sizeof cmd, "grep -q IBP_TEST_REPLICA_DIE_AFTER_SNAPSHOT '%s'", logs[dead]);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_one_message_per_change)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
