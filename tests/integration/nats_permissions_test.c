/*
 * Per-role NATS identities and permissions (DESIGN.md §13) against a real
 * nats-server: a roster made with `ibpctl keygen --nkey-out`, the server's
 * users rendered by `ibpctl nats-auth`, and each role connecting with its own
 * nkey through the daemons' connect call (ibp_bus_connect):
 *
 *   - a client without an identity is refused;
 *   - each role can do what its code does: publish its own subjects through
 *     JetStream and get an acknowledgement, check and create its streams, read
 *     OFFICIAL / LOCAL with ordered consumers, persist's durable pull
 *     consumers with acknowledgements, the admin's override and stream info;
 *   - and no more: a dns node cannot publish ibp.official.snapshot or
 *     ibp.local.*, a monitor cannot publish on another monitor's subject
 *     nor a checkpoint, a consensus node cannot publish another replica's
 *     checkpoint, only consensus nodes publish epoch statements (COSIGN),
 *     which monitor, dns and consensus nodes read,
 *     persist cannot read LOCAL, the admin cannot delete a stream; each
 *     refusal is reported naming the subject (not as a bare timeout).
 *
 * One nats-server on a free 127.0.0.1 port in a private directory, started
 * and stopped by the test (also after a failure).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ibp/bus.h"
#include "ibp/clock.h"
#include "ibp/key.h"
#include "ibp/node_config.h"
#include "ibp/roster.h"
#include "ibp/subject.h"
#include "testenv.h"

#define JS_WAIT_MS 1500 /* a refused JetStream call times out after this */

enum { MON1, MON2, CON1, DNS1, PERSIST1, ADMIN, NODES };
static const struct {
    const char *id, *roles;
} NODE[NODES] = {
    {"mon1", "monitor"}, {"mon2", "monitor"},     {"con1", "consensus"},
    {"dns1", "dns"},     {"persist1", "persist"}, {"admin", "admin"},
};

static struct {
    char dir[1024];
    char url[64];
    pid_t nats;
    natsConnection *nc[NODES];
    jsCtx *js[NODES];
    uint64_t seq;
} g;

static char *path_of(const char *name)
{
    static char buf[8][1200];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", g.dir, name);
    return p;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

static int free_port(unsigned *port)
{
    FILE *p = popen(IBP_FREEPORT_BIN, "r");
    if (!p)
        return -1;
    int n = fscanf(p, "%u", port);
    return pclose(p) == 0 && n == 1 ? 0 : -1;
}

static bool tcp_accepts(unsigned port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Connects as node i (its nkey seed file) and makes a JetStream context. */
static ibp_status connect_as(int i, natsConnection **nc, jsCtx **js, ibp_err *err)
{
    char *servers[1] = {g.url};
    ibp_config_nats cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.servers.items = servers;
    cfg.servers.count = 1;
    char seed[1200];
    snprintf(seed, sizeof seed, "%s/%s.nk", g.dir, NODE[i].id);
    cfg.nkey_seed_file = seed;
    ibp_status st = ibp_config_nats_connect(&cfg, NODE[i].id, false, nc, err);
    if (st != IBP_OK || !js)
        return st;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = JS_WAIT_MS;
    if (natsConnection_JetStream(js, *nc, &jo) != NATS_OK) {
        natsConnection_Destroy(*nc);
        *nc = NULL;
        return ibp_err_set(err, IBP_E_NATS, "JetStream context");
    }
    return IBP_OK;
}

static int suite_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    if (ibp_crypto_init() != IBP_OK || ibp_testenv_mkdtemp(g.dir, sizeof g.dir) != 0)
        return -1;
    printf("private directory %s\n", g.dir);
    /* Identities as an operator makes them: ibpctl keygen, then nats-auth. */
    for (int i = 0; i < NODES; i++)
        if (run("'%s' keygen --out '%s/%s.key' --nkey-out '%s/%s.nk' --node %s --roles %s "
                "--roster '%s/roster.json' >/dev/null",
                IBP_CTL_BIN, g.dir, NODE[i].id, g.dir, NODE[i].id, NODE[i].id, NODE[i].roles,
                g.dir) != 0)
            return -1;
    if (run("'%s' nats-auth --roster '%s/roster.json' --admin-id admin --out '%s/auth.conf'",
            IBP_CTL_BIN, g.dir, g.dir) != 0)
        return -1;
    unsigned port;
    if (free_port(&port) != 0)
        return -1;
    snprintf(g.url, sizeof g.url, "nats://127.0.0.1:%u", port);
    FILE *f = fopen(path_of("nats.conf"), "w");
    if (!f)
        return -1;
    fprintf(f,
            "listen: 127.0.0.1:%u\nmax_payload: 8MB\nmax_control_line: 16KB\n"
            "jetstream { store_dir: \"%s/js\" }\ninclude ./auth.conf\n",
            port, g.dir);
    fclose(f);
    char *argv[] = {"nats-server", "-c", path_of("nats.conf"), NULL};
    g.nats = ibp_testenv_spawn(argv, path_of("nats.log"), NULL);
    if (g.nats <= 0)
        return -1;
    int64_t end = ibp_clock_mono_ms() + 15000;
    while (!tcp_accepts(port)) {
        if (ibp_clock_mono_ms() > end) {
            fprintf(stderr, "nats-server did not start (see %s)\n", path_of("nats.log"));
            return -1;
        }
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    /* Every role connects with its own identity and checks its own streams. */
    for (int i = 0; i < NODES; i++) {
        ibp_err err = {0};
        if (connect_as(i, &g.nc[i], &g.js[i], &err) != IBP_OK) {
            fprintf(stderr, "%s: %s\n", NODE[i].id, err.msg);
            return -1;
        }
    }
    fflush(stdout);
    return 0;
}

static int suite_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NODES; i++) {
        jsCtx_Destroy(g.js[i]);
        natsConnection_Destroy(g.nc[i]);
    }
    if (g.nats > 0)
        ibp_testenv_kill_wait(g.nats, SIGTERM, 10000, NULL);
    if (g.dir[0])
        ibp_testenv_rmtree(g.dir);
    return 0;
}

/* Publishes a dummy envelope as node i to subject through JetStream. */
static ibp_status publish(int i, const char *subject, uint64_t *stream_seq, ibp_err *err)
{
    static const uint8_t body[] = "not a real envelope";
    char msg_id[64];
    snprintf(msg_id, sizeof msg_id, "%s-%" PRIu64, NODE[i].id, ++g.seq);
    ibp_err_clear(err);
    return ibp_bus_publish_envelope(g.js[i], subject, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT,
                                    NODE[i].id, g.seq, body, sizeof body, msg_id, 0, stream_seq,
                                    NULL, err);
}

static void expect_published(int i, const char *subject)
{
    ibp_err err;
    uint64_t seq = 0;
    ibp_status st = publish(i, subject, &seq, &err);
    if (st != IBP_OK)
        fail_msg("%s could not publish to %s: %s", NODE[i].id, subject, err.msg);
    assert_true(seq > 0);
    printf("%s publishes %s: acknowledged at stream seq %" PRIu64 "\n", NODE[i].id, subject, seq);
}

static void expect_refused(int i, const char *subject)
{
    ibp_err err;
    ibp_status st = publish(i, subject, NULL, &err);
    if (st == IBP_OK)
        fail_msg("%s was allowed to publish to %s", NODE[i].id, subject);
    printf("%s refused on %s: %s\n", NODE[i].id, subject, err.msg);
    if (!strstr(err.msg, "refused") || !strstr(err.msg, subject))
        fail_msg("the error does not say the server refused %s: %s", subject, err.msg);
}

/* Ensures the streams of node i's roles (as its daemon does at start). */
static void ensure_own_streams(int i, unsigned roles)
{
    ibp_bus_stream_opts so;
    ibp_bus_stream_opts_init(&so);
    so.streams = ibp_bus_streams_for_roles(roles);
    ibp_err err = {0};
    if (ibp_bus_ensure_streams(g.js[i], &so, &err) != IBP_OK)
        fail_msg("%s: ensure its streams: %s", NODE[i].id, err.msg);
}

static void test_unauthenticated_refused(void **state)
{
    (void)state;
    natsConnection *nc = NULL;
    ibp_err err = {0};
    ibp_status st = ibp_bus_connect_url(g.url, "nobody", &nc, &err);
    natsConnection_Destroy(nc);
    assert_int_equal(st, IBP_E_NATS);
    printf("no identity: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "authorization failed"));

    /* A seed the server does not know (not in the roster). */
    assert_int_equal(run("'%s' keygen --nkey-out '%s/stranger.nk' >/dev/null", IBP_CTL_BIN, g.dir),
                     0);
    char *servers[1] = {g.url};
    ibp_config_nats cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.servers.items = servers;
    cfg.servers.count = 1;
    cfg.nkey_seed_file = path_of("stranger.nk");
    ibp_err_clear(&err);
    assert_int_equal(ibp_config_nats_connect(&cfg, "stranger", false, &nc, &err), IBP_E_NATS);
    natsConnection_Destroy(nc);
    assert_non_null(strstr(err.msg, "authorization failed"));
}

/* Runs first among the role cases: every role creates/checks its own streams. */
static void test_roles_ensure_their_streams(void **state)
{
    (void)state;
    ensure_own_streams(CON1, IBP_ROLE_CONSENSUS); /* LOCAL OFFICIAL STATUS EVENTS */
    ensure_own_streams(DNS1, IBP_ROLE_DNS);       /* OFFICIAL HITS */
    ensure_own_streams(MON1, IBP_ROLE_MONITOR);
    ensure_own_streams(PERSIST1, IBP_ROLE_PERSIST);
    ensure_own_streams(ADMIN, IBP_ROLE_ADMIN);

    /* A stream outside its roles: the dns node may not create STATUS. */
    ibp_bus_stream_opts so;
    ibp_bus_stream_opts_init(&so);
    so.streams = IBP_BUS_STREAM_STATUS;
    ibp_err err = {0};
    assert_int_equal(ibp_bus_ensure_streams(g.js[DNS1], &so, &err), IBP_E_NATS);
    printf("dns1 checks STATUS: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "refused"));
    assert_non_null(strstr(err.msg, "$JS.API.STREAM.INFO.STATUS"));
}

static void test_monitor(void **state)
{
    (void)state;
    expect_published(MON1, "ibp.local.mon1");
    expect_published(MON2, "ibp.local.mon2");
    expect_refused(MON1, "ibp.local.mon2");
    expect_refused(MON1, "ibp.official.snapshot");
    expect_refused(MON2, "ibp.hits.mon2");
    expect_refused(MON1, "ibp.consensus.checkpoint.mon1");
    expect_refused(MON1, "ibp.consensus.checkpoint.con1");
}

static void test_dns(void **state)
{
    (void)state;
    expect_published(DNS1, "ibp.hits.dns1");
    expect_refused(DNS1, "ibp.hits.dns2");
    expect_refused(DNS1, "ibp.official.snapshot");
    expect_refused(DNS1, "ibp.local.mon1");
    expect_refused(DNS1, "ibp.local.dns1");
    expect_refused(DNS1, "ibp.events.Alpha~20Nodes");
}

/* Reads the next message of an ordered consumer on stream as node i. */
static void read_ordered(int i, const char *stream, const char *filter)
{
    natsSubscription *sub = NULL;
    natsMsg *m = NULL;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    jsErrCode jerr = 0;
    natsStatus s = js_SubscribeSync(&sub, g.js[i], filter, NULL, &so, &jerr);
    if (s != NATS_OK)
        fail_msg("%s: ordered consumer on %s: %s (%d)", NODE[i].id, stream, natsStatus_GetText(s),
                 (int)jerr);
    s = natsSubscription_NextMsg(&m, sub, 5000);
    if (s != NATS_OK)
        fail_msg("%s: no message from %s: %s", NODE[i].id, stream, natsStatus_GetText(s));
    printf("%s reads %s: %s\n", NODE[i].id, stream, natsMsg_GetSubject(m));
    natsMsg_Destroy(m);
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
}

static void test_consensus(void **state)
{
    (void)state;
    expect_published(CON1, "ibp.official.snapshot");
    expect_published(CON1, "ibp.status.Alpha~20Nodes.site.ping.v4");
    expect_published(CON1, "ibp.events.Alpha~20Nodes");
    expect_refused(CON1, "ibp.local.con1");
    expect_refused(CON1, "ibp.hits.con1");
    /* Its own checkpoint, not another replica's; it reads every one. */
    expect_published(CON1, "ibp.consensus.checkpoint.con1");
    expect_refused(CON1, "ibp.consensus.checkpoint.con2");
    expect_refused(DNS1, "ibp.consensus.checkpoint.dns1");
    /* Its epoch statements (stream COSIGN); no other role may make one. */
    expect_published(CON1, "ibp.official.cosign.con1");
    expect_refused(DNS1, "ibp.official.cosign.dns1");
    expect_refused(MON1, "ibp.official.cosign.mon1");
    /* Reads LOCAL in order and the last snapshot and status (the replica). */
    read_ordered(CON1, IBP_STREAM_LOCAL, "ibp.local.>");
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetLastMsg(&m, g.js[CON1], IBP_STREAM_OFFICIAL,
                                   IBP_SUBJECT_OFFICIAL_SNAPSHOT, NULL, &jerr),
                     NATS_OK);
    natsMsg_Destroy(m);
    m = NULL;
    assert_int_equal(js_GetLastMsg(&m, g.js[CON1], IBP_STREAM_STATUS,
                                   "ibp.status.Alpha~20Nodes.site.ping.v4", NULL, &jerr),
                     NATS_OK);
    natsMsg_Destroy(m);
    m = NULL;
    assert_int_equal(js_GetLastMsg(&m, g.js[CON1], IBP_STREAM_CHECKPOINT,
                                   "ibp.consensus.checkpoint.con1", NULL, &jerr),
                     NATS_OK);
    natsMsg_Destroy(m);
    /* Heartbeats are plain messages: allowed under ibp.official.>. */
    assert_int_equal(natsConnection_PublishString(g.nc[CON1], "ibp.official.heartbeat.con1", "x"),
                     NATS_OK);
}

static void test_everyone_reads_official(void **state)
{
    (void)state;
    const int readers[] = {MON1, DNS1, CON1};
    for (size_t k = 0; k < sizeof readers / sizeof readers[0]; k++) {
        read_ordered(readers[k], IBP_STREAM_OFFICIAL, IBP_SUBJECT_OFFICIAL_SNAPSHOT);
        /* And the statements that certify its epochs. */
        read_ordered(readers[k], IBP_STREAM_COSIGN, IBP_SUBJECT_COSIGN_ALL);
        natsMsg *m = NULL;
        jsErrCode jerr = 0;
        assert_int_equal(js_GetLastMsg(&m, g.js[readers[k]], IBP_STREAM_COSIGN,
                                       "ibp.official.cosign.con1", NULL, &jerr),
                         NATS_OK);
        natsMsg_Destroy(m);
        m = NULL;
        assert_int_equal(js_GetMsg(&m, g.js[readers[k]], IBP_STREAM_OFFICIAL, 1, NULL, &jerr),
                         NATS_OK);
        natsMsg_Destroy(m);
    }
}

/* A durable pull consumer as persist uses one: create, fetch, ack. */
static void pull_one(const char *stream, const char *subject)
{
    natsSubscription *sub = NULL;
    natsMsgList list = {0};
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Config.AckPolicy = js_AckExplicit;
    jsErrCode jerr = 0;
    char durable[64];
    snprintf(durable, sizeof durable, "perm-test-%s", stream);
    natsStatus s = js_PullSubscribe(&sub, g.js[PERSIST1], subject, durable, NULL, &so, &jerr);
    if (s != NATS_OK)
        fail_msg("persist1: pull consumer on %s: %s (%d)", stream, natsStatus_GetText(s),
                 (int)jerr);
    s = natsSubscription_Fetch(&list, sub, 10, 5000, &jerr);
    if (s != NATS_OK || list.Count < 1)
        fail_msg("persist1: fetch from %s: %s", stream, natsStatus_GetText(s));
    s = natsMsg_AckSync(list.Msgs[list.Count - 1], NULL, &jerr);
    if (s != NATS_OK)
        fail_msg("persist1: ack on %s: %s (%d)", stream, natsStatus_GetText(s), (int)jerr);
    printf("persist1 pulls %d from %s and acknowledges\n", list.Count, stream);
    natsMsgList_Destroy(&list);
    jsConsumerInfo *ci = NULL;
    assert_int_equal(js_GetConsumerInfo(&ci, g.js[PERSIST1], stream, durable, NULL, &jerr),
                     NATS_OK);
    assert_true(ci->AckFloor.Stream >= 1);
    jsConsumerInfo_Destroy(ci);
    assert_int_equal(natsSubscription_Unsubscribe(sub), NATS_OK); /* deletes the durable */
    natsSubscription_Destroy(sub);
}

static void test_persist(void **state)
{
    (void)state;
    pull_one(IBP_STREAM_HITS, "ibp.hits.>");
    pull_one(IBP_STREAM_EVENTS, "ibp.events.>");
    expect_refused(PERSIST1, "ibp.hits.persist1");
    expect_refused(PERSIST1, "ibp.events.Alpha~20Nodes");
    /* It does not read LOCAL. */
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = IBP_STREAM_LOCAL;
    so.Ordered = true;
    jsErrCode jerr = 0;
    int64_t t0 = ibp_clock_mono_ms();
    natsStatus s = js_SubscribeSync(&sub, g.js[PERSIST1], "ibp.local.>", NULL, &so, &jerr);
    natsSubscription_Destroy(sub);
    assert_int_not_equal(s, NATS_OK);
    assert_true(ibp_bus_refused("$JS.API.CONSUMER.CREATE.LOCAL", t0));
    /* It answers ibp.persist.> requests (a responder of its own, here). */
    natsSubscription *svc = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&svc, g.nc[PERSIST1], "ibp.persist.events"),
                     NATS_OK);
    assert_int_equal(natsConnection_Flush(g.nc[PERSIST1]), NATS_OK);
    natsInbox *inbox = NULL;
    natsSubscription *rsub = NULL;
    assert_int_equal(natsInbox_Create(&inbox), NATS_OK);
    assert_int_equal(natsConnection_SubscribeSync(&rsub, g.nc[ADMIN], inbox), NATS_OK);
    assert_int_equal(
        natsConnection_PublishRequestString(g.nc[ADMIN], "ibp.persist.events", inbox, "{}"),
        NATS_OK);
    natsMsg *req = NULL, *rep = NULL;
    assert_int_equal(natsSubscription_NextMsg(&req, svc, 5000), NATS_OK);
    assert_int_equal(
        natsConnection_PublishString(g.nc[PERSIST1], natsMsg_GetReply(req), "{\"events\":[]}"),
        NATS_OK);
    assert_int_equal(natsSubscription_NextMsg(&rep, rsub, 5000), NATS_OK);
    natsMsg_Destroy(req);
    natsMsg_Destroy(rep);
    natsSubscription_Destroy(rsub);
    natsSubscription_Destroy(svc);
    natsInbox_Destroy(inbox);
}

static void test_admin(void **state)
{
    (void)state;
    expect_published(ADMIN, "ibp.local.admin");
    expect_refused(ADMIN, "ibp.official.snapshot");
    expect_refused(ADMIN, "ibp.hits.dns1");
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetStreamInfo(&si, g.js[ADMIN], IBP_STREAM_HITS, NULL, &jerr), NATS_OK);
    jsStreamInfo_Destroy(si);
    /* History cannot be destroyed with this identity. */
    int64_t t0 = ibp_clock_mono_ms();
    assert_int_not_equal(js_PurgeStream(g.js[ADMIN], IBP_STREAM_HITS, NULL, &jerr), NATS_OK);
    assert_true(ibp_bus_refused("$JS.API.STREAM.PURGE.HITS", t0));
    t0 = ibp_clock_mono_ms();
    assert_int_not_equal(js_DeleteStream(g.js[ADMIN], IBP_STREAM_STATUS, NULL, &jerr), NATS_OK);
    assert_true(ibp_bus_refused("$JS.API.STREAM.DELETE.STATUS", t0));
    printf("admin: purge and delete of the streams refused\n");
}

/* The harness mode, in a named account, renders users that nats-server accepts. */
static void test_role_users_render(void **state)
{
    (void)state;
    assert_int_equal(
        run("mkdir -p '%s/roles' && '%s' nats-auth --role-users '%s/roles' --account IBP "
            "--out '%s/roles.conf' && printf 'listen: 127.0.0.1:1\\njetstream: enabled\\n"
            "include ./roles.conf\\n' > '%s/roles-server.conf' && "
            "nats-server -c '%s/roles-server.conf' -t >/dev/null 2>&1 && "
            "grep -q '\"ibp.local.\\*\"' '%s/roles.conf'",
            g.dir, IBP_CTL_BIN, g.dir, g.dir, g.dir, g.dir, g.dir),
        0);
    struct stat sb;
    assert_int_equal(stat(path_of("roles/monitor.password"), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(stat(path_of("roles.conf"), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unauthenticated_refused),
        cmocka_unit_test(test_roles_ensure_their_streams),
        cmocka_unit_test(test_monitor),
        cmocka_unit_test(test_dns),
        cmocka_unit_test(test_consensus),
        cmocka_unit_test(test_everyone_reads_official),
        cmocka_unit_test(test_persist),
        cmocka_unit_test(test_admin),
        cmocka_unit_test(test_role_users_render),
    };
    return cmocka_run_group_tests(tests, suite_setup, suite_teardown);
}
