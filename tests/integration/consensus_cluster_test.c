/*
 * Integration: a whole cluster of ibp-node processes on a private
 * nats-server (the daemons use the real stream and subject names, so they get
 * a server of their own). Five monitors, three of them also consensus
 * replicas, driven through their control sockets:
 *
 *   - an endpoint reported down by 2 of 5 monitors stays officially up;
 *   - down on 3 of 5 makes it officially down (seen by a node that is not a
 *     replica, through its official subscriber: member_online and the key);
 *   - it comes back up when 3 report up;
 *   - forged batches (monitor ids, but a key not in the roster; and an unknown
 *     signer) and replayed batches (an old LOCAL message's bytes under a new
 *     Nats-Msg-Id) change nothing and are counted by every replica;
 *   - kill -9 of one replica changes nothing for subscribers: the others keep
 *     publishing epochs;
 *   - OFFICIAL holds epochs 1..N, no gap and no duplicate, read with a consumer;
 *   - STATUS gives a late subscriber the current value (js_GetLastMsg);
 *   - the surviving daemons stop cleanly (exit 0) on SIGTERM.
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

#define NODES 5
#define REPLICAS 3 /* mon1..mon3 are also consensus replicas */
#define OBSERVER 4 /* mon5: a monitor only, used as "a subscriber" */
#define MEMBER "Alpha Nodes"
#define DOMAIN "polkadot.ibp.example"
#define ENDPOINT "wss://polkadot.ibp.example"
#define CHECK "wss"
#define WAIT_MS 15000

static ibp_testenv_private servers;
static char dir[1024];
static char sock[NODES][1200];
static char logs[NODES][1200];
static pid_t pids[NODES];
static bool alive[NODES];
static ibp_roster *roster;
static ibp_key evil_key;
static natsConnection *nc;
static jsCtx *js;

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

/* Prints the last lines of a node's log (on failure). */
static void dump_log(int i)
{
    char cmd[2600];
    int n = snprintf(cmd, sizeof cmd, "echo '---- tail of %s'; tail -n 25 '%s'", logs[i], logs[i]);
    if (n < 0 || (size_t)n >= sizeof cmd || system(cmd) != 0)
        fprintf(stderr, "cannot show %s\n", logs[i]);
}

/* ---- control socket ------------------------------------------------------ */

/* Sends one request to node i and returns the decoded answer (never NULL). */
static json_t *ctl(int i, json_t *req)
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
        dump_log(i);
        fail_msg("mon%d: cannot connect to %s: %s", i + 1, sock[i], strerror(e));
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
    json_error_t jerr;
    json_t *ans = json_loads(buf, JSON_DISABLE_EOF_CHECK, &jerr);
    if (!ans)
        fail_msg("mon%d: answer is not JSON: '%s'", i + 1, buf);
    return ans;
}

/* Like ctl, and fails the test unless the answer says ok. */
static json_t *ctl_ok(int i, json_t *req)
{
    json_t *ans = ctl(i, req);
    if (!json_is_true(json_object_get(ans, "ok"))) {
        char *t = json_dumps(ans, JSON_COMPACT);
        dump_log(i);
        fail_msg("mon%d refused a request: %s", i + 1, t);
    }
    return ans;
}

static void observe(int i, bool up)
{
    json_decref(ctl_ok(i, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:s}", "cmd",
                                    "observe", "type", "endpoint", "check", CHECK, "member", MEMBER,
                                    "domain", DOMAIN, "endpoint", ENDPOINT, "ipv6", 0, "up", up,
                                    "error", up ? "" : "connect timeout")));
}

static void flush(int i)
{
    json_decref(ctl_ok(i, json_pack("{s:s, s:i}", "cmd", "flush", "timeout_ms", 10000)));
}

/* Observes on every node of list (then flushes each). */
static void report(const int *list, size_t n, bool up)
{
    for (size_t k = 0; k < n; k++)
        observe(list[k], up);
    for (size_t k = 0; k < n; k++)
        flush(list[k]);
}

/* The official result of the test key at node i: found, up, epoch. */
static void official(int i, bool *found, bool *up, uint64_t *epoch)
{
    json_t *a = ctl_ok(i, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "cmd", "official",
                                    "type", "endpoint", "check", CHECK, "member", MEMBER, "domain",
                                    DOMAIN, "endpoint", ENDPOINT, "ipv6", 0));
    *found = json_is_true(json_object_get(a, "found"));
    *up = json_is_true(json_object_get(a, "up"));
    *epoch = (uint64_t)json_integer_value(json_object_get(a, "epoch"));
    json_decref(a);
}

static bool member_online(int i)
{
    json_t *a = ctl_ok(i, json_pack("{s:s, s:s, s:s, s:b}", "cmd", "member_online", "domain",
                                    DOMAIN, "member", MEMBER, "ipv6", 0));
    bool on = json_is_true(json_object_get(a, "online"));
    json_decref(a);
    return on;
}

/* Waits until node i holds the key officially with status up; returns the epoch. */
static uint64_t wait_official(int i, bool want_up)
{
    bool found = false, up = false;
    uint64_t epoch = 0;
    int64_t end = ibp_clock_mono_ms() + WAIT_MS;
    while (ibp_clock_mono_ms() < end) {
        official(i, &found, &up, &epoch);
        if (found && up == want_up)
            return epoch;
        sleep_ms(50);
    }
    for (int k = 0; k < NODES; k++)
        if (alive[k])
            dump_log(k);
    fail_msg("mon%d: the key did not become officially %s (found=%d up=%d epoch=%" PRIu64 ")",
             i + 1, want_up ? "up" : "down", found, up, epoch);
    return 0;
}

/* A number at path a.b in node i's status (0 when missing). */
static uint64_t status_num(int i, const char *section, const char *key, const char *sub)
{
    json_t *a = ctl_ok(i, json_pack("{s:s}", "cmd", "status"));
    json_t *v = json_object_get(json_object_get(a, section), key);
    if (sub)
        v = json_object_get(v, sub);
    uint64_t n = json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
    json_decref(a);
    return n;
}

/* Waits until every live replica consumed LOCAL up to seq. */
static void wait_replicas(uint64_t seq)
{
    int64_t end = ibp_clock_mono_ms() + WAIT_MS;
    for (int r = 0; r < REPLICAS; r++) {
        while (alive[r] && status_num(r, "replica", "local_seq", NULL) < seq) {
            if (ibp_clock_mono_ms() > end) {
                dump_log(r);
                fail_msg("replica mon%d did not reach LOCAL seq %" PRIu64, r + 1, seq);
            }
            sleep_ms(20);
        }
    }
}

/* ---- setup: keys, roster, configs, servers, daemons ---------------------- */

static void write_config(int i, const ibp_testenv *env)
{
    char path[1300], wd[1200], nats[2048];
    /* A replica is monitor and consensus: its NATS user has the union of both. */
    assert_int_equal(ibp_testenv_nats_json(env,
                                           i < REPLICAS ? IBP_TESTENV_NATS_MONITOR_CONSENSUS
                                                        : IBP_TESTENV_NATS_MONITOR,
                                           nats, sizeof nats),
                     0);
    snprintf(wd, sizeof wd, "%s/mon%d", dir, i + 1);
    snprintf(path, sizeof path, "%s/node.json", wd);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"node\": {\"id\": \"mon%d\", \"key_file\": \"%s/key\", \"roster_file\": "
            "\"%s/roster.json\", \"work_dir\": \"%s/work\", \"roles\": \"%s\"},\n"
            " %s,\n"
            " \"network\": {\"members_file\": \"%s/tests/data/network/members.json\",\n"
            "             \"services_file\": \"%s/tests/data/network/services.json\"},\n"
            " \"intervals\": {\"publish_ms\": 150, \"refresh_ms\": 2000, \"heartbeat_ms\": 500},\n"
            " \"consensus\": {\"active_window_ms\": 20000, \"staleness_ms\": 6000,\n"
            "               \"quorum_min\": 2, \"expiry_ms\": 600000},\n"
            " \"log\": {\"level\": \"info\"}}\n",
            i + 1, wd, dir, wd, i < REPLICAS ? "monitor,consensus" : "monitor", nats,
            IBP_SOURCE_DIR, IBP_SOURCE_DIR);
    assert_int_equal(fclose(f), 0);
}

static void start_node(int i)
{
    char cfg[1300];
    snprintf(cfg, sizeof cfg, "%s/mon%d/node.json", dir, i + 1);
    char *argv[] = {(char *)IBP_NODE_BIN, "--config", cfg, NULL};
    pids[i] = ibp_testenv_spawn(argv, logs[i], NULL);
    assert_true(pids[i] > 0);
    alive[i] = true;
}

/* Waits until node i answers on its control socket. */
static void wait_node(int i)
{
    int64_t end = ibp_clock_mono_ms() + WAIT_MS;
    struct stat st;
    while (stat(sock[i], &st) != 0) {
        int status;
        if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
            alive[i] = false;
            dump_log(i);
            fail_msg("mon%d exited during start (status %d)", i + 1, status);
        }
        if (ibp_clock_mono_ms() > end) {
            dump_log(i);
            fail_msg("mon%d did not open its control socket", i + 1);
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
        snprintf(id, sizeof id, "mon%d", i + 1);
        snprintf(path, sizeof path, "%s/mon%d", dir, i + 1);
        assert_int_equal(mkdir(path, 0700), 0);
        snprintf(path, sizeof path, "%s/mon%d/key", dir, i + 1);
        must(ibp_key_generate(&k), NULL);
        must(ibp_key_save(&k, path, &err), &err);
        must(ibp_roster_add(roster, id, k.pk,
                            IBP_ROLE_MONITOR | (i < REPLICAS ? IBP_ROLE_CONSENSUS : 0u), &err),
             &err);
        ibp_key_wipe(&k);
        snprintf(sock[i], sizeof sock[i], "%s/mon%d/work/control.sock", dir, i + 1);
        snprintf(logs[i], sizeof logs[i], "%s/mon%d/log", dir, i + 1);
    }
    ibp_key admin;
    must(ibp_key_generate(&admin), NULL);
    must(ibp_roster_add(roster, "admin", admin.pk, IBP_ROLE_ADMIN, &err), &err);
    must(ibp_key_generate(&evil_key), NULL); /* never in the roster */
    snprintf(path, sizeof path, "%s/roster.json", dir);
    must(ibp_roster_save(roster, path, &err), &err);

    for (int i = 0; i < NODES; i++)
        write_config(i, &servers.env);
    for (int i = 0; i < NODES; i++)
        start_node(i);
    for (int i = 0; i < NODES; i++)
        wait_node(i);
    must(ibp_bus_connect_url(servers.env.nats_auth_url, "cluster-test", &nc, &err), &err);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NODES; i++)
        if (alive[i])
            ibp_testenv_kill_wait(pids[i], SIGKILL, 5000, NULL);
    jsCtx_Destroy(js);
    if (nc)
        natsConnection_Destroy(nc);
    ibp_roster_free(roster);
    if (servers.started)
        ibp_testenv_private_stop(&servers);
    if (dir[0] && !getenv("IBP_TEST_KEEP"))
        ibp_testenv_rmtree(dir);
    return 0;
}

/* ---- bus helpers ----------------------------------------------------------- */

static uint64_t stream_last_seq(const char *stream)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetStreamInfo(&si, js, stream, NULL, &jerr), NATS_OK);
    uint64_t last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return last;
}

/*
 * Reads every message of subject on stream with an ordered consumer from the
 * start and calls fn on each (data, len, stream seq). Stops at the end.
 */
static void read_all(const char *stream, const char *subject,
                     void (*fn)(const uint8_t *, size_t, uint64_t, void *), void *user)
{
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    assert_int_equal(js_SubscribeSync(&sub, js, subject, NULL, &so, &jerr), NATS_OK);
    for (;;) {
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, sub, 3000);
        if (s == NATS_TIMEOUT)
            break; /* nothing more */
        assert_int_equal(s, NATS_OK);
        jsMsgMetaData *meta = NULL;
        assert_int_equal(natsMsg_GetMetaData(&meta, m), NATS_OK);
        fn((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
           meta->Sequence.Stream, user);
        uint64_t pending = meta->NumPending;
        jsMsgMetaData_Destroy(meta);
        natsMsg_Destroy(m);
        if (pending == 0)
            break;
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
}

/* The newest ObservationBatch of a monitor that reports the test key down. */
typedef struct down_batch {
    ibp_verifier *v;
    uint8_t *data;
    size_t len;
    uint64_t seq;
} down_batch;

static void find_down(const uint8_t *data, size_t len, uint64_t seq, void *user)
{
    down_batch *d = user;
    ibp_verified vm = {0};
    if (ibp_verifier_check_stateless(d->v, data, len, &vm, NULL) != IBP_OK)
        return;
    if (vm.envelope->type == IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH) {
        const Ibp__V1__ObservationBatch *b = (const Ibp__V1__ObservationBatch *)vm.payload;
        for (size_t k = 0; k < b->n_observations; k++) {
            const Ibp__V1__Observation *o = b->observations[k];
            if (strcmp(o->key->endpoint, ENDPOINT) == 0 &&
                o->status == IBP__V1__STATUS__STATUS_DOWN) {
                free(d->data);
                d->data = malloc(len);
                assert_non_null(d->data);
                memcpy(d->data, data, len);
                d->len = len;
                d->seq = seq;
            }
        }
    }
    ibp_verified_clear(&vm);
}

/* Publishes envelope bytes to ibp.local.<subject_node>; returns the stream seq. */
static uint64_t inject(const char *subject_node, const char *signer, const uint8_t *data,
                       size_t len, const char *msg_id)
{
    char subject[128];
    uint64_t seq = 0;
    bool dup = true;
    ibp_err err = {0};
    must(ibp_subject_local(subject_node, subject, sizeof subject), NULL);
    must(ibp_bus_publish_envelope(js, subject,
                                  IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH, signer, 1,
                                  data, len, msg_id, 0, &seq, &dup, &err),
         &err);
    assert_false(dup);
    return seq;
}

/* An ObservationBatch saying the test key is down, signed by evil_key as signer. */
static uint64_t inject_forged(const char *signer)
{
    Ibp__V1__ResultKey k = IBP__V1__RESULT_KEY__INIT;
    k.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
    k.check_name = CHECK;
    k.member = MEMBER;
    k.domain = DOMAIN;
    k.endpoint = ENDPOINT;
    Ibp__V1__Observation o = IBP__V1__OBSERVATION__INIT;
    o.key = &k;
    o.status = IBP__V1__STATUS__STATUS_DOWN;
    o.check_time_ms = 1700000000000;
    o.error = "forged";
    Ibp__V1__Observation *list[] = {&o};
    Ibp__V1__ObservationBatch b = IBP__V1__OBSERVATION_BATCH__INIT;
    b.batch_seq = 999999;
    b.n_observations = 1;
    b.observations = list;
    uint8_t payload[1024], sig[IBP_SIGNATURE_BYTES];
    size_t plen = protobuf_c_message_pack(&b.base, payload);
    Ibp__V1__Envelope env = IBP__V1__ENVELOPE__INIT;
    env.signer = (char *)signer;
    env.seq = UINT64_C(1) << 40; /* would make the real monitor's messages replays */
    env.created_ms = 1700000000000;
    env.type = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH;
    env.payload.data = payload;
    env.payload.len = plen;
    must(ibp_envelope_sign_fields(&env, &evil_key, sig), NULL);
    env.signature.data = sig;
    env.signature.len = sizeof sig;
    uint8_t out[2048];
    size_t len = protobuf_c_message_pack(&env.base, out);
    char id[64];
    snprintf(id, sizeof id, "forged-%s", signer);
    return inject(signer, signer, out, len, id);
}

/* An OfficialSnapshot for epoch, signed with key as signer, on ibp.official.snapshot. */
static void inject_snapshot(const char *signer, const ibp_key *key, uint64_t epoch,
                            const char *msg_id)
{
    char *strings[] = {""};
    Ibp__V1__OfficialSnapshot snap = IBP__V1__OFFICIAL_SNAPSHOT__INIT;
    snap.epoch = epoch;
    snap.n_strings = 1;
    snap.strings = strings;
    uint8_t payload[256], sig[IBP_SIGNATURE_BYTES], out[1024];
    size_t plen = protobuf_c_message_pack(&snap.base, payload);
    Ibp__V1__Envelope env = IBP__V1__ENVELOPE__INIT;
    env.signer = (char *)signer;
    env.seq = UINT64_C(1) << 41;
    env.created_ms = 1700000000000;
    env.type = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT;
    env.payload.data = payload;
    env.payload.len = plen;
    must(ibp_envelope_sign_fields(&env, key, sig), NULL);
    env.signature.data = sig;
    env.signature.len = sizeof sig;
    size_t len = protobuf_c_message_pack(&env.base, out);
    ibp_err err = {0};
    must(ibp_bus_publish_envelope(js, IBP_SUBJECT_OFFICIAL_SNAPSHOT,
                                  IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT, signer, 1,
                                  out, len, msg_id, 0, NULL, NULL, &err),
         &err);
}

/* Republishes OFFICIAL's first message (epoch 1), byte for byte. */
static void replay_first_snapshot(void)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    ibp_err err = {0};
    assert_int_equal(js_GetMsg(&m, js, IBP_STREAM_OFFICIAL, 1, NULL, &jerr), NATS_OK);
    must(ibp_bus_publish_envelope(js, IBP_SUBJECT_OFFICIAL_SNAPSHOT,
                                  IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT, "mon2", 1,
                                  (const uint8_t *)natsMsg_GetData(m),
                                  (size_t)natsMsg_GetDataLength(m), "replayed-epoch-1", 0, NULL,
                                  NULL, &err),
         &err);
    natsMsg_Destroy(m);
}

/* Reads OFFICIAL: the epochs of every snapshot in stream order. */
typedef struct epochs {
    ibp_verifier *v;
    uint64_t list[4096];
    size_t n;
    size_t bad;
} epochs;

static void collect_epoch(const uint8_t *data, size_t len, uint64_t seq, void *user)
{
    epochs *e = user;
    ibp_verified vm = {0};
    ibp_err err = {0};
    if (ibp_verifier_check_stateless(e->v, data, len, &vm, &err) != IBP_OK ||
        vm.envelope->type != IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT) {
        printf("OFFICIAL seq %" PRIu64 " does not verify: %s\n", seq, err.msg);
        e->bad++;
    } else if (e->n < sizeof e->list / sizeof e->list[0]) {
        e->list[e->n++] = ((const Ibp__V1__OfficialSnapshot *)vm.payload)->epoch;
    }
    ibp_verified_clear(&vm);
}

/* ---- the scenario ---------------------------------------------------------- */

static uint64_t rejected(int r, const char *reason)
{
    return status_num(r, "replica", "rejected", reason);
}

static void test_cluster(void **state)
{
    (void)state;
    const int all[] = {0, 1, 2, 3, 4};
    bool found, up;
    uint64_t epoch;

    /* Everyone reports up: the key becomes official, up, on the observer. */
    report(all, NODES, true);
    uint64_t e_up = wait_official(OBSERVER, true);
    assert_true(member_online(OBSERVER));
    printf("all up: official up at epoch %" PRIu64 "\n", e_up);

    /* Down on 2 of 5 stays up: wait until every replica has consumed the two
     * down batches and a full refresh round after them. */
    const int two[] = {0, 1};
    report(two, 2, false);
    sleep_ms(2500);
    wait_replicas(stream_last_seq(IBP_STREAM_LOCAL));
    official(OBSERVER, &found, &up, &epoch);
    assert_true(found && up);
    assert_int_equal(epoch, e_up);
    assert_true(member_online(OBSERVER));
    printf("down on 2 of 5: still up at epoch %" PRIu64 "\n", epoch);

    /* The third one (through ibpctl observe, as an operator would). */
    char cmd[2600];
    snprintf(cmd, sizeof cmd,
             "'%s' observe --socket '%s' --type endpoint --check %s --member '%s' --domain "
             "'%s' --endpoint '%s' --down --error 'connect timeout' --flush >/dev/null",
             IBP_CTL_BIN, sock[2], CHECK, MEMBER, DOMAIN, ENDPOINT);
    assert_int_equal(system(cmd), 0);
    uint64_t e_down = wait_official(OBSERVER, false);
    assert_true(e_down > e_up);
    assert_false(member_online(OBSERVER));
    wait_official(3, false); /* another subscriber agrees */
    printf("down on 3 of 5: officially down at epoch %" PRIu64 "\n", e_down);

    /* Keep the down batches of mon1..mon3 for the replay below. */
    down_batch downs[3];
    for (int i = 0; i < 3; i++) {
        char subject[64];
        memset(&downs[i], 0, sizeof downs[i]);
        must(ibp_verifier_new(roster, NULL, &downs[i].v), NULL);
        snprintf(subject, sizeof subject, "ibp.local.mon%d", i + 1);
        read_all(IBP_STREAM_LOCAL, subject, find_down, &downs[i]);
        ibp_verifier_free(downs[i].v);
        assert_non_null(downs[i].data);
    }

    /* Back up when 3 report up (mon1 joins mon4 and mon5). */
    const int one[] = {0};
    report(one, 1, true);
    uint64_t e_back = wait_official(OBSERVER, true);
    assert_true(e_back > e_down);
    assert_true(member_online(OBSERVER));
    printf("3 of 5 up again: officially up at epoch %" PRIu64 "\n", e_back);

    /* Forged: three monitors' ids signed with a key not in the roster (a
     * quorum, were they believed), and an unknown signer. */
    uint64_t bad_sig[REPLICAS], unknown[REPLICAS], replays[REPLICAS];
    for (int r = 0; r < REPLICAS; r++) {
        bad_sig[r] = rejected(r, "IBP_E_BAD_SIGNATURE");
        unknown[r] = rejected(r, "IBP_E_UNKNOWN_SIGNER");
        replays[r] = rejected(r, "IBP_E_REPLAY");
    }
    inject_forged("mon2");
    inject_forged("mon3");
    inject_forged("mon4");
    uint64_t last = inject_forged("intruder");
    wait_replicas(last);
    for (int r = 0; r < REPLICAS; r++) {
        assert_int_equal(rejected(r, "IBP_E_BAD_SIGNATURE"), bad_sig[r] + 3);
        assert_int_equal(rejected(r, "IBP_E_UNKNOWN_SIGNER"), unknown[r] + 1);
    }
    /* Replayed: old down batches, byte for byte, under new message ids. */
    for (int i = 0; i < 3; i++) {
        char id[64], signer[16];
        snprintf(id, sizeof id, "replay-mon%d", i + 1);
        snprintf(signer, sizeof signer, "mon%d", i + 1);
        last = inject(signer, signer, downs[i].data, downs[i].len, id);
        free(downs[i].data);
    }
    wait_replicas(last);
    for (int r = 0; r < REPLICAS; r++)
        assert_int_equal(rejected(r, "IBP_E_REPLAY"), replays[r] + 3);
    sleep_ms(500);
    official(OBSERVER, &found, &up, &epoch);
    assert_true(found && up);
    assert_int_equal(epoch, e_back);
    printf("forged and replayed batches refused and counted; epoch still %" PRIu64 "\n", epoch);

    /* kill -9 of replica mon1: the other two keep the epochs coming. mon2..mon4
     * report down; had a forged sequence number (2^40) been taken, their
     * batches would now be refused as replays and nothing would flip. */
    assert_int_equal(ibp_testenv_kill_wait(pids[0], SIGKILL, 5000, NULL), 0);
    alive[0] = false;
    const int three[] = {1, 2, 3};
    report(three, 3, false);
    uint64_t e_down2 = wait_official(OBSERVER, false);
    assert_true(e_down2 > e_back);
    assert_false(member_online(OBSERVER));
    const int back[] = {1, 2};
    report(back, 2, true); /* up: mon2, mon3, mon5 */
    uint64_t e_up2 = wait_official(OBSERVER, true);
    assert_true(e_up2 > e_down2);
    printf("after kill -9 of mon1: down at epoch %" PRIu64 ", up at %" PRIu64 "\n", e_down2, e_up2);

    /* OFFICIAL: epochs 1..N, no gap, no duplicate. */
    sleep_ms(300);
    epochs *ep = calloc(1, sizeof *ep);
    assert_non_null(ep);
    must(ibp_verifier_new(roster, NULL, &ep->v), NULL);
    read_all(IBP_STREAM_OFFICIAL, IBP_SUBJECT_OFFICIAL_SNAPSHOT, collect_epoch, ep);
    ibp_verifier_free(ep->v);
    assert_int_equal(ep->bad, 0);
    assert_true(ep->n >= 4);
    for (size_t k = 0; k < ep->n; k++)
        if (ep->list[k] != k + 1)
            fail_msg("OFFICIAL message %zu holds epoch %" PRIu64 ", expected %zu", k + 1,
                     ep->list[k], k + 1);
    official(OBSERVER, &found, &up, &epoch);
    assert_int_equal(epoch, ep->list[ep->n - 1]);
    printf("OFFICIAL holds epochs 1..%zu\n", ep->n);
    free(ep);

    /* STATUS: a late subscriber gets the current value at once. */
    natsConnection *late = NULL;
    jsCtx *ljs = NULL;
    ibp_err err = {0};
    must(ibp_bus_connect_url(servers.env.nats_auth_url, "late", &late, &err), &err);
    assert_int_equal(natsConnection_JetStream(&ljs, late, NULL), NATS_OK);
    Ibp__V1__ResultKey k = IBP__V1__RESULT_KEY__INIT;
    k.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
    k.check_name = CHECK;
    k.member = MEMBER;
    k.domain = DOMAIN;
    k.endpoint = ENDPOINT;
    char ssubj[1024];
    must(ibp_subject_status(&k, ssubj, sizeof ssubj), NULL);
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetLastMsg(&m, ljs, IBP_STREAM_STATUS, ssubj, NULL, &jerr), NATS_OK);
    json_t *sj = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL);
    assert_non_null(sj);
    assert_string_equal(json_string_value(json_object_get(sj, "status")), "up");
    assert_int_equal((uint64_t)json_integer_value(json_object_get(sj, "epoch")), e_up2);
    printf("STATUS %s: %.*s\n", ssubj, natsMsg_GetDataLength(m), natsMsg_GetData(m));
    json_decref(sj);
    natsMsg_Destroy(m);
    jsCtx_Destroy(ljs);
    natsConnection_Destroy(late);

    /* Subscribers: a snapshot from a monitor's key (role), one with a forged
     * signature, and an old one replayed change nothing and are counted.
     * (Last, since they break the chain of OFFICIAL that replicas extend.) */
    uint64_t received = status_num(OBSERVER, "subscriber", "received", NULL);
    uint64_t role0 = status_num(OBSERVER, "subscriber", "rejected_by", "IBP_E_ROLE_DENIED");
    uint64_t sig0 = status_num(OBSERVER, "subscriber", "rejected_by", "IBP_E_BAD_SIGNATURE");
    uint64_t ign0 = status_num(OBSERVER, "subscriber", "ignored", NULL);
    ibp_key mon4;
    char kpath[1300];
    snprintf(kpath, sizeof kpath, "%s/mon4/key", dir);
    must(ibp_key_load(kpath, &mon4, &err), &err);
    inject_snapshot("mon4", &mon4, e_up2 + 100, "forged-snapshot-role");
    ibp_key_wipe(&mon4);
    inject_snapshot("mon2", &evil_key, e_up2 + 101, "forged-snapshot-sig");
    replay_first_snapshot();
    int64_t end = ibp_clock_mono_ms() + WAIT_MS;
    while (status_num(OBSERVER, "subscriber", "received", NULL) < received + 3) {
        if (ibp_clock_mono_ms() > end)
            fail_msg("mon5 did not read the three injected snapshots");
        sleep_ms(20);
    }
    /* "received" counts a message before it is judged: wait for the verdicts too. */
    while (status_num(OBSERVER, "subscriber", "ignored", NULL) < ign0 + 1 ||
           status_num(OBSERVER, "subscriber", "rejected_by", "IBP_E_BAD_SIGNATURE") < sig0 + 1 ||
           status_num(OBSERVER, "subscriber", "rejected_by", "IBP_E_ROLE_DENIED") < role0 + 1) {
        if (ibp_clock_mono_ms() > end)
            break; /* the assertions below say which */
        sleep_ms(20);
    }
    assert_int_equal(status_num(OBSERVER, "subscriber", "rejected_by", "IBP_E_ROLE_DENIED"),
                     role0 + 1);
    assert_int_equal(status_num(OBSERVER, "subscriber", "rejected_by", "IBP_E_BAD_SIGNATURE"),
                     sig0 + 1);
    assert_int_equal(status_num(OBSERVER, "subscriber", "ignored", NULL), ign0 + 1);
    official(OBSERVER, &found, &up, &epoch);
    assert_true(found && up);
    assert_int_equal(epoch, e_up2);
    printf("forged and replayed snapshots refused or ignored by the subscriber\n");

    /* The survivors stop cleanly. */
    for (int i = 1; i < NODES; i++) {
        int status = 0;
        assert_int_equal(ibp_testenv_kill_wait(pids[i], SIGTERM, 10000, &status), 0);
        alive[i] = false;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            dump_log(i);
            fail_msg("mon%d did not exit 0 after SIGTERM (status %d)", i + 1, status);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_cluster)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
