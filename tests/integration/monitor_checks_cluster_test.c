/*
 * Integration: three ibp-node processes (monitor and consensus each) on a
 * private nats-server run the real checks against member doubles on
 * 127.0.0.1, with a CA this test makes, and the official status follows
 * what the doubles do:
 *
 *   - two members, Alpha and Beta, each with its own Substrate double (wss
 *     endpoint check) and TLS double (ssl domain check), dialled at their
 *     own address (127.0.0.1, a port per member; Alpha also at ::1, one
 *     result per family);
 *   - all healthy: their wss endpoints are officially up; Beta's
 *     certificate expires in 3 days, so Beta's domain is officially down
 *     and Alpha's up;
 *   - Alpha's node starts syncing: Alpha's endpoint goes officially down,
 *     Beta's stays up;
 *   - each monitor's $SRV.STATS shows its checker's counters;
 *   - as root, the test runs in a network namespace of its own and a third
 *     member, Gamma, has only a ping (site) check at 192.0.2.1, which has no
 *     route there: its site is officially down, Alpha's (127.0.0.1) up;
 *   - Beta leaves the members file, every node reloads on SIGHUP, and
 *     Beta's official keys expire (no monitor votes for them any more),
 *     while Alpha's stay.
 */
#define _GNU_SOURCE /* unshare */
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
#include <netinet/in.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
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
#include "member_double.h"
#include "testenv.h"

#define NODES 3
#define DOMAIN "rpc.test.example"
#define URL "wss://rpc.test.example/paseo"
#define WAIT_MS 30000

static ibp_testenv_private servers;
static char dir[1024];
static char sock[NODES][1200];
static char logs[NODES][1200];
static pid_t pids[NODES];
static bool alive[NODES];
static ibp_roster *roster;
static ibp_double *wss_a, *wss_b, *tls_a, *tls_b;
static unsigned p_wss_a, p_wss_b, p_tls_a, p_tls_b;
static bool have_v6;  /* ::1 can be bound here */
static bool in_netns; /* the test runs in a network namespace of its own (as root) */

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
    int n = snprintf(cmd, sizeof cmd, "echo '---- tail of %s'; tail -n 30 '%s'", logs[i], logs[i]);
    if (n < 0 || (size_t)n >= sizeof cmd || system(cmd) != 0)
        fprintf(stderr, "cannot show %s\n", logs[i]);
}

/* ---- control socket ------------------------------------------------------ */

static json_t *ctl_any(int i, json_t *req, bool must_be_ok);

/* A request to node i's control socket that must succeed. */
static json_t *ctl(int i, json_t *req)
{
    return ctl_any(i, req, true);
}

static json_t *ctl_any(int i, json_t *req, bool must_be_ok)
{
    char *line = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    assert_non_null(line);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(sock[i]) < sizeof sa.sun_path);
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
        fail_msg("node%d: cannot connect to %s: %s", i + 1, sock[i], strerror(e));
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
    if (!ans || (must_be_ok && !json_is_true(json_object_get(ans, "ok"))))
        fail_msg("node%d: bad answer '%s'", i + 1, buf);
    return ans;
}

/* The official status of a key at node i: 0 absent, 1 up, -1 down; *error gets its error. */
static int official_in(int i, bool ipv6, const char *type, const char *check, const char *member,
                       const char *endpoint, char *error, size_t cap)
{
    json_t *a = ctl(i, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "cmd", "official", "type",
                                 type, "check", check, "member", member, "domain", DOMAIN,
                                 "endpoint", endpoint, "ipv6", ipv6));
    int r = !json_is_true(json_object_get(a, "found")) ? 0
            : json_is_true(json_object_get(a, "up"))   ? 1
                                                       : -1;
    if (error) {
        json_t *res = json_object_get(a, "result");
        json_t *e = json_object_get(res ? res : a, "error");
        snprintf(error, cap, "%s", json_is_string(e) ? json_string_value(e) : "");
    }
    json_decref(a);
    return r;
}

/* The official status of member's ping (site) key, IPv4, at node i. */
static int official_site(int i, const char *member, char *error, size_t cap)
{
    json_t *a = ctl(i, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "cmd", "official", "type",
                                 "site", "check", "ping", "member", member, "domain", "",
                                 "endpoint", "", "ipv6", 0));
    int r = !json_is_true(json_object_get(a, "found")) ? 0
            : json_is_true(json_object_get(a, "up"))   ? 1
                                                       : -1;
    if (error) {
        json_t *res = json_object_get(a, "result");
        json_t *e = json_object_get(res ? res : a, "error");
        snprintf(error, cap, "%s", json_is_string(e) ? json_string_value(e) : "");
    }
    json_decref(a);
    return r;
}

static void wait_site(const char *member, int want, const char *why)
{
    int64_t end = ibp_clock_mono_ms() + WAIT_MS;
    for (int i = 0; i < NODES; i++) {
        int got = 2;
        while ((got = official_site(i, member, NULL, 0)) != want) {
            if (ibp_clock_mono_ms() > end)
                fail_msg("node%d: ping of %s is %d, want %d (%s)", i + 1, member, got, want, why);
            sleep_ms(100);
        }
    }
}

static int official(int i, const char *type, const char *check, const char *member,
                    const char *endpoint, char *error, size_t cap)
{
    return official_in(i, false, type, check, member, endpoint, error, cap);
}

/* Waits until every node sees the key (of the family ipv6 selects) in state want (0 absent,
 * 1 up, -1 down). */
static void wait_state_in(bool ipv6, const char *type, const char *check, const char *member,
                          const char *endpoint, int want, const char *why)
{
    int64_t end = ibp_clock_mono_ms() + WAIT_MS;
    for (int i = 0; i < NODES; i++) {
        int got = 2;
        while ((got = official_in(i, ipv6, type, check, member, endpoint, NULL, 0)) != want) {
            if (ibp_clock_mono_ms() > end) {
                for (int k = 0; k < NODES; k++)
                    dump_log(k);
                fail_msg("node%d: %s %s of %s (%s) is %d, want %d (%s)", i + 1, type, check, member,
                         ipv6 ? "IPv6" : "IPv4", got, want, why);
            }
            sleep_ms(100);
        }
    }
}

static void wait_state(const char *type, const char *check, const char *member,
                       const char *endpoint, int want, const char *why)
{
    wait_state_in(false, type, check, member, endpoint, want, why);
}

/* ---- setup --------------------------------------------------------------- */

static void write_file(const char *name, const char *text)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static const char MEMBER_FMT[] =
    "\"%s\": {\"Details\": {\"Name\": \"%s\"}, \"Membership\": {\"MemberLevel\": 5},"
    " \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"127.0.0.1\", \"ServiceIPv6\": \"%s\"},"
    " \"ServiceAssignments\": {\"Paseo\": [\"Paseo\"]}}";

/* Gamma: a site only (no service), at an address the test's namespace has no route to. */
static const char GAMMA[] =
    "\"Gamma\": {\"Details\": {\"Name\": \"Gamma\"}, \"Membership\": {\"MemberLevel\": 5},"
    " \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"192.0.2.1\", \"ServiceIPv6\": \"\"},"
    " \"ServiceAssignments\": {}}";

/* Alpha has both families (its doubles listen on both), Beta IPv4 only. */
static void write_members(bool with_beta)
{
    char a[512], b[512], all[1600];
    snprintf(a, sizeof a, MEMBER_FMT, "Alpha", "Alpha", have_v6 ? "::1" : "");
    snprintf(b, sizeof b, MEMBER_FMT, "Beta", "Beta", "");
    snprintf(all, sizeof all, "{%s%s%s%s%s}\n", a, with_beta ? ", " : "", with_beta ? b : "",
             in_netns ? ", " : "", in_netns ? GAMMA : "");
    write_file("members.json", all);
}

static void write_network(void)
{
    write_members(true);
    write_file("services.json",
               "{\"Paseo\": {\"Configuration\": {\"Name\": \"Paseo\", \"ServiceType\": \"RPC\","
               " \"Active\": 1, \"LevelRequired\": 1, \"NetworkName\": \"Paseo Testnet\"},"
               " \"Providers\": {\"Ibp\": {\"RpcUrls\": [\"" URL "\"]}}}}\n");
    char checks[1024];
    snprintf(checks, sizeof checks,
             "{\"wss\": {\"CheckType\": \"endpoint\", \"Timeout\": 2, \"MinimumInterval\": 1,"
             "   \"ExtraOptions\": {\"ports\": {\"Alpha\": %u, \"Beta\": %u}}},"
             " \"ssl\": {\"CheckType\": \"domain\", \"Timeout\": 2, \"MinimumInterval\": 1,"
             "   \"ExtraOptions\": {\"ports\": {\"Alpha\": %u, \"Beta\": %u}}}%s}\n",
             p_wss_a, p_wss_b, p_tls_a, p_tls_b,
             in_netns ? ", \"ping\": {\"CheckType\": \"site\", \"Timeout\": 2, "
                        "\"MinimumInterval\": 1, \"ExtraOptions\": {\"PingTimeout\": 300}}"
                      : "");
    write_file("checks.json", checks);
}

static void write_config(int i, const ibp_testenv *env)
{
    char path[1300], wd[1200], nats[2048];
    assert_int_equal(
        ibp_testenv_nats_json(env, IBP_TESTENV_NATS_MONITOR_CONSENSUS, nats, sizeof nats), 0);
    snprintf(wd, sizeof wd, "%s/node%d", dir, i + 1);
    snprintf(path, sizeof path, "%s/node.json", wd);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"node\": {\"id\": \"node%d\", \"key_file\": \"%s/key\", \"roster_file\": "
            "\"%s/roster.json\", \"work_dir\": \"%s/work\", \"roles\": \"monitor,consensus\"},\n"
            " %s,\n"
            " \"network\": {\"members_file\": \"%s/members.json\",\n"
            "             \"services_file\": \"%s/services.json\",\n"
            "             \"checks_file\": \"%s/checks.json\"},\n"
            " \"checks\": {\"ca_file\": \"%s/ca.pem\", \"retries\": 1, \"retry_delay_ms\": 200,\n"
            "            \"max_in_flight\": 8},\n"
            " \"intervals\": {\"publish_ms\": 150, \"refresh_ms\": 1000, \"heartbeat_ms\": 500},\n"
            " \"consensus\": {\"active_window_ms\": 4000, \"staleness_ms\": 3000,\n"
            "               \"quorum_min\": 2, \"expiry_ms\": 5000},\n"
            " \"log\": {\"level\": \"info\"}}\n",
            i + 1, wd, dir, wd, nats, dir, dir, dir, dir);
    assert_int_equal(fclose(f), 0);
}

static void start_node(int i)
{
    char cfg[1300];
    snprintf(cfg, sizeof cfg, "%s/node%d/node.json", dir, i + 1);
    char *argv[] = {(char *)IBP_NODE_BIN, "--config", cfg, NULL};
    pids[i] = ibp_testenv_spawn(argv, logs[i], NULL);
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
            fail_msg("node%d exited during start (status %d)", i + 1, status);
        }
        if (ibp_clock_mono_ms() > end) {
            dump_log(i);
            fail_msg("node%d did not open its control socket", i + 1);
        }
        sleep_ms(20);
    }
    json_decref(ctl(i, json_pack("{s:s}", "cmd", "status")));
}

static ibp_double *start_double(ibp_double_kind kind, const char *addr, const char *cert,
                                unsigned *port)
{
    char c[1300], k[1300];
    snprintf(c, sizeof c, "%s/%s.pem", dir, cert);
    snprintf(k, sizeof k, "%s/%s.key", dir, cert);
    ibp_double *d = ibp_double_start(kind, addr, 0, c, k, port);
    assert_non_null(d);
    return d;
}

static int lo_up(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    int rc = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 ? 0 : -1;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (rc == 0)
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    ibp_err err = {0};
    if (ibp_crypto_init() != IBP_OK || ibp_testenv_mkdtemp(dir, sizeof dir) != 0)
        return -1;
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "bash '%s/tests/doubles/make-certs.sh' '%s' %s", IBP_SOURCE_DIR, dir,
             DOMAIN);
    if (system(cmd) != 0)
        return -1;
    /* As root, the whole test (servers, doubles, daemons) runs in a network namespace of its
     * own, with only a loopback interface: a member there at 192.0.2.1 is unreachable. */
    if (geteuid() == 0 && unshare(CLONE_NEWNET) == 0) {
        in_netns = lo_up() == 0;
        if (!in_netns)
            return -1;
    } else {
        printf("no network namespace of its own (not root, or unshare refused): no ping "
               "checks\n");
    }
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    have_v6 = fd >= 0 && bind(fd, (struct sockaddr *)&a6, sizeof a6) == 0;
    if (fd >= 0)
        close(fd);
    const char *alpha = have_v6 ? "::" : "127.0.0.1"; /* both families on one port */
    wss_a = start_double(IBP_DOUBLE_SUBSTRATE, alpha, "ok", &p_wss_a);
    wss_b = start_double(IBP_DOUBLE_SUBSTRATE, "127.0.0.1", "ok", &p_wss_b);
    tls_a = start_double(IBP_DOUBLE_TLS, alpha, "ok", &p_tls_a);
    tls_b = start_double(IBP_DOUBLE_TLS, "127.0.0.1", "expiring", &p_tls_b);
    if (ibp_testenv_private_start(&servers) != 0)
        return -1;
    printf("nats-server at %s, test directory %s\n", servers.env.nats_url, dir);
    fflush(stdout);
    write_network();

    char path[1300];
    must(ibp_roster_new(&roster), NULL);
    for (int i = 0; i < NODES; i++) {
        ibp_key k;
        char id[16];
        snprintf(id, sizeof id, "node%d", i + 1);
        snprintf(path, sizeof path, "%s/node%d", dir, i + 1);
        assert_int_equal(mkdir(path, 0700), 0);
        snprintf(path, sizeof path, "%s/node%d/key", dir, i + 1);
        must(ibp_key_generate(&k), NULL);
        must(ibp_key_save(&k, path, &err), &err);
        must(ibp_roster_add(roster, id, k.pk, IBP_ROLE_MONITOR | IBP_ROLE_CONSENSUS, &err), &err);
        ibp_key_wipe(&k);
        snprintf(sock[i], sizeof sock[i], "%s/node%d/work/control.sock", dir, i + 1);
        snprintf(logs[i], sizeof logs[i], "%s/node%d/log", dir, i + 1);
    }
    snprintf(path, sizeof path, "%s/roster.json", dir);
    must(ibp_roster_save(roster, path, &err), &err);
    for (int i = 0; i < NODES; i++)
        write_config(i, &servers.env);
    for (int i = 0; i < NODES; i++)
        start_node(i);
    for (int i = 0; i < NODES; i++)
        wait_node(i);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NODES; i++)
        if (alive[i])
            ibp_testenv_kill_wait(pids[i], SIGTERM, 10000, NULL);
    ibp_roster_free(roster);
    if (servers.started)
        ibp_testenv_private_stop(&servers);
    ibp_double_stop(wss_a);
    ibp_double_stop(wss_b);
    ibp_double_stop(tls_a);
    ibp_double_stop(tls_b);
    if (dir[0] && !getenv("IBP_TEST_KEEP"))
        ibp_testenv_rmtree(dir);
    return 0;
}

/* ---- the scenario ------------------------------------------------------------ */

static void test_status_follows_the_doubles(void **state)
{
    (void)state;
    /* Healthy endpoints; Beta's certificate expires in 3 days (fewer than 5). */
    wait_state("endpoint", "wss", "Alpha", URL, 1, "healthy node");
    wait_state("endpoint", "wss", "Beta", URL, 1, "healthy node");
    wait_state("domain", "ssl", "Alpha", "", 1, "certificate for 30 days");
    wait_state("domain", "ssl", "Beta", "", -1, "certificate expiring in 3 days");
    if (have_v6) { /* Alpha has a ServiceIPv6: a result per family */
        wait_state_in(true, "endpoint", "wss", "Alpha", URL, 1, "healthy node, IPv6");
        wait_state_in(true, "domain", "ssl", "Alpha", "", 1, "certificate for 30 days, IPv6");
    }
    assert_int_equal(official_in(0, true, "endpoint", "wss", "Beta", URL, NULL, 0), 0);
    if (in_netns) { /* ping: loopback answers, Gamma's address has no route */
        wait_site("Alpha", 1, "127.0.0.1 answers");
        wait_site("Gamma", -1, "192.0.2.1 is unreachable in the test's namespace");
        char perr[512];
        official_site(0, "Gamma", perr, sizeof perr);
        printf("ping Gamma officially down: %s\n", perr);
    }
    char error[512];
    official(0, "domain", "ssl", "Beta", "", error, sizeof error);
    printf("ssl Beta officially down: %s\n", error);
    char host[256];
    ibp_double_last_host(wss_a, host, sizeof host);
    assert_non_null(strstr(host, DOMAIN)); /* Host = the domain, though 127.0.0.1 was dialled */

    /* Alpha's node syncs: only Alpha's endpoint goes down. */
    ibp_double_behaviour b;
    ibp_double_behaviour_init(&b);
    b.syncing = true;
    ibp_double_set(wss_a, &b);
    wait_state("endpoint", "wss", "Alpha", URL, -1, "Alpha's node is syncing");
    if (have_v6)
        wait_state_in(true, "endpoint", "wss", "Alpha", URL, -1, "Alpha's node is syncing");
    official(1, "endpoint", "wss", "Alpha", URL, error, sizeof error);
    printf("wss Alpha officially down: %s\n", error);
    for (int i = 0; i < NODES; i++)
        assert_int_equal(official(i, "endpoint", "wss", "Beta", URL, NULL, 0), 1);
    ibp_double_behaviour_init(&b);
    ibp_double_set(wss_a, &b);
    wait_state("endpoint", "wss", "Alpha", URL, 1, "Alpha's node synced");
}

static void test_stats(void **state)
{
    (void)state;
    natsConnection *nc = NULL;
    assert_int_equal(ibp_testenv_nats_connect(&servers.env, &nc), NATS_OK);
    natsMsg *m = NULL;
    assert_int_equal(natsConnection_RequestString(&m, nc, "$SRV.STATS.ibp-node", "", 5000),
                     NATS_OK);
    json_t *stats = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL);
    json_t *ck = json_object_get(json_object_get(stats, "data"), "checker");
    if (!ck) {
        json_t *eps = json_object_get(stats, "endpoints");
        ck = json_object_get(json_object_get(json_array_get(eps, 0), "data"), "checker");
    }
    if (!json_is_object(ck))
        fail_msg("no checker in $SRV.STATS: %.*s", natsMsg_GetDataLength(m), natsMsg_GetData(m));
    char *txt = json_dumps(ck, JSON_COMPACT);
    printf("checker stats: %s\n", txt);
    free(txt);
    /* wss and ssl: Alpha (both families) and Beta; ping: the same three plus Gamma. */
    int targets = (have_v6 ? 6 : 4) + (in_netns ? (have_v6 ? 4 : 3) : 0);
    assert_int_equal(json_integer_value(json_object_get(ck, "targets")), targets);
    assert_true(json_integer_value(json_object_get(ck, "runs")) > 4);
    assert_true(json_integer_value(json_object_get(ck, "failed")) > 0);
    assert_non_null(json_object_get(ck, "retried"));
    assert_non_null(json_object_get(ck, "in_flight"));
    assert_non_null(json_object_get(ck, "overdue"));
    json_decref(stats);
    natsMsg_Destroy(m);
    natsConnection_Destroy(nc);
}

static void test_removed_member_expires(void **state)
{
    (void)state;
    write_members(false);
    /* The first node reloads through its control socket ("reload", what
     * `ibpctl reload` sends), the others on SIGHUP. */
    json_t *a = ctl(0, json_pack("{s:s}", "cmd", "reload"));
    if (!json_is_true(json_object_get(a, "ok")))
        fail_msg("reload through the control socket failed: %s",
                 json_string_value(json_object_get(a, "error")));
    json_decref(a);
    for (int i = 1; i < NODES; i++)
        assert_int_equal(kill(pids[i], SIGHUP), 0);
    int64_t t0 = ibp_clock_mono_ms();
    wait_state("endpoint", "wss", "Beta", URL, 0, "Beta left the config");
    wait_state("domain", "ssl", "Beta", "", 0, "Beta left the config");
    printf("Beta's official keys expired %" PRId64 " ms after the reload\n", ibp_clock_mono_ms() - t0);
    for (int i = 0; i < NODES; i++) {
        assert_int_equal(official(i, "endpoint", "wss", "Alpha", URL, NULL, 0), 1);
        assert_int_equal(official(i, "domain", "ssl", "Alpha", "", NULL, 0), 1);
        if (have_v6)
            assert_int_equal(official_in(i, true, "endpoint", "wss", "Alpha", URL, NULL, 0), 1);
    }
    /* A bad file is refused; the node keeps running its checks. */
    write_file("checks.json", "{\"wss\": {\"CheckType\": \"endpoint\", \"ExtraOptions\": "
                              "{\"PingTTL\": 0}}}\n");
    a = ctl_any(1, json_pack("{s:s}", "cmd", "reload"), false);
    assert_false(json_is_true(json_object_get(a, "ok")));
    const char *why = json_string_value(json_object_get(a, "error"));
    assert_non_null(why);
    assert_non_null(strstr(why, "old config stays"));
    json_decref(a);
    assert_int_equal(kill(pids[0], SIGHUP), 0);
    sleep_ms(500);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "grep -q 'reload refused, the old config stays' '%s'", logs[0]);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(official(0, "endpoint", "wss", "Alpha", URL, NULL, 0), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_follows_the_doubles),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_removed_member_expires),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
