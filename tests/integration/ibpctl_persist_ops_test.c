/*
 * Integration: the operator commands of ibpctl that go through ibp-persist
 * and a dns node, as child processes against private servers (nats-server
 * with the role users, MariaDB), with ibp-persist and a dns ibp-node running
 * on the real streams:
 *   - events: each outage with its duration (open ones until now);
 *   - sla: availability of a member over a window from known outages,
 *     overlapping ones counted once, clipped at the window's edges, an open
 *     one running to the end; per family, domain and check; --domain;
 *     --compact; an empty window refused;
 *   - usage flush: hits counted by the dns node (control socket) are flushed
 *     on demand, stored by persist and printed; again with nothing new;
 *   - services: ibp-node and ibp-persist found through $SRV with their
 *     endpoints and counters, as JSON and as a table;
 *   - replay into a new database as a MariaDB user that may not create it:
 *     refused with the exact GRANT, which an administrator runs; then the
 *     replay builds it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ibp/bus.h"
#include "ibp/log.h"
#include "persist_testlib.h"

#define SP "Stake Plus"
#define RPC "rpc.example.net"
#define OTHER "other.example.net"
#define MIN (60 * 1000LL)
#define STATUS IBP__V1__EVENT_KIND__EVENT_KIND_STATUS
#define SITE IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE
#define DOMAIN IBP__V1__CHECK_TYPE__CHECK_TYPE_DOMAIN
#define ENDPOINT IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT

static ibp_testenv_private servers;
static pt_keys k;
static char url[512], control[100], dns_log[1300], persist_log[1300];
static pid_t persist_pid = -1, node_pid = -1;
static natsConnection *nc;
static jsCtx *js;

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs `ibpctl <args>` through the shell; stdout into *out (malloc'd); returns the exit code. */
static int run(char **out, const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s", IBP_CTL_BIN, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, len = 0, n;
    char *buf = malloc(cap);
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (len + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static json_t *run_json(int want_rc, const char *fmt, ...)
{
    char args[4096], *out;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int rc = run(&out, "%s", args);
    if (rc != want_rc)
        fail_msg("ibpctl %s: exit %d, want %d; stdout: %s", args, rc, want_rc, out);
    json_error_t jerr;
    json_t *j = json_loads(out, 0, &jerr);
    if (!j)
        fail_msg("ibpctl %s: not JSON (%s): %s", args, jerr.text, out);
    free(out);
    return j;
}

static json_int_t jint(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("\"%s\" is not an integer in %s", key, json_dumps(o, JSON_COMPACT));
    return json_integer_value(v);
}

/* The element of array a whose member key equals value. */
static json_t *find(const json_t *a, const char *key, const char *value)
{
    size_t i;
    json_t *it;
    json_array_foreach(a, i, it)
    {
        const char *v = json_string_value(json_object_get(it, key));
        if (v && strcmp(v, value) == 0)
            return it;
    }
    fail_msg("no %s = %s in %s", key, value, json_dumps(a, JSON_COMPACT));
    return NULL;
}

/* One request line to the dns node's control socket; the answer (new reference). */
static json_t *control_cmd(const char *line)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(control) < sizeof sa.sun_path);
    memcpy(sa.sun_path, control, strlen(control) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
    char buf[65536];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) {
        n += (size_t)r;
        if (memchr(buf, '\n', n))
            break;
    }
    close(fd);
    buf[n] = '\0';
    json_t *j = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(j);
    return j;
}

static void show_log(const char *path)
{
    char cmd[2800 + 64];
    snprintf(cmd, sizeof cmd, "echo '---- %s'; tail -n 30 '%s'", path, path);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot show %s\n", path);
}

/* Waits until `ibpctl services NAME` finds an instance. */
static void wait_service(const char *name, const char *log)
{
    for (int i = 0; i < 100; i++) {
        if (run(NULL, "services %s --wait 300 --nats '%s' 2>/dev/null", name, url) == 0)
            return;
        pt_sleep_ms(100);
    }
    show_log(log);
    fail_msg("%s does not answer $SRV.PING", name);
}

static uint64_t event(const char *id, int type, const char *check, const char *domain,
                      const char *endpoint, bool ipv6, bool up, int64_t t, uint64_t epoch)
{
    pt_event e = {.id = id,
                  .kind = STATUS,
                  .check_type = type,
                  .check_name = check,
                  .member = SP,
                  .domain = domain,
                  .endpoint = endpoint,
                  .ipv6 = ipv6,
                  .up = up,
                  .error = up ? "" : "connection refused",
                  .data_json = "",
                  .time_ms = t,
                  .epoch = epoch,
                  .nvoters = 3};
    return pt_publish_event(js, k.s_cons, "ibp.events.Stake_20Plus", &e, NULL);
}

static void start_daemons(void)
{
    ibp_err err;
    /* ibp-persist on the real streams, as the persist role's NATS user, into
     * a database the administrator made. */
    mysql_close(pt_db_create(&servers.env, "ibp_ops"));
    const char *pcfg = pt_write_config(&k, &servers.env, IBP_TESTENV_NATS_PERSIST, "ibp_ops", NULL);
    char pcfg_copy[1300];
    snprintf(pcfg_copy, sizeof pcfg_copy, "%s", pcfg);
    snprintf(persist_log, sizeof persist_log, "%s/persist.log", k.dir);
    char *pargv[] = {(char *)IBP_PERSIST_BIN,      "--config", pcfg_copy, "--sql-dir",
                     IBP_SOURCE_DIR "/deploy/sql", NULL};
    persist_pid = ibp_testenv_spawn(pargv, persist_log, NULL);
    assert_true(persist_pid > 0);

    /* A dns node: counts hits, flushes them to HITS only when asked (or in an hour). */
    char path[1300], nats[2048], work[1200];
    snprintf(path, sizeof path, "%s/dns1.key", k.dir);
    assert_int_equal(ibp_key_save(&k.dns, path, &err), IBP_OK);
    snprintf(work, sizeof work, "%s/dns1", k.dir);
    mkdir(work, 0700);
    assert_true(strlen(work) + sizeof "/control.sock" <= sizeof control);
    memcpy(control, work, strlen(work));
    memcpy(control + strlen(work), "/control.sock", sizeof "/control.sock");
    assert_int_equal(ibp_testenv_nats_json(&servers.env, IBP_TESTENV_NATS_DNS, nats, sizeof nats),
                     0);
    snprintf(path, sizeof path, "%s/dns1.json", k.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(
        f,
        "{\"node\": {\"id\": \"dns1\", \"key_file\": \"%s/dns1.key\", \"roster_file\": \"%s\",\n"
        "          \"work_dir\": \"%s\", \"roles\": \"dns\"},\n"
        " %s,\n"
        " \"maxmind\": {\"city_db\": \"\", \"country_db\": \"\", \"asn_db\": \"\"},\n"
        " \"network\": {\"members_file\": \"%s/tests/data/network/members.json\",\n"
        "             \"services_file\": \"%s/tests/data/network/services.json\"},\n"
        " \"intervals\": {\"usage_flush_ms\": 3600000},\n"
        " \"log\": {\"level\": \"info\"}}\n",
        k.dir, k.roster_path, work, nats, IBP_SOURCE_DIR, IBP_SOURCE_DIR);
    assert_int_equal(fclose(f), 0);
    snprintf(dns_log, sizeof dns_log, "%s/dns1.log", k.dir);
    char *nargv[] = {(char *)IBP_NODE_BIN, "--config", path, NULL};
    node_pid = ibp_testenv_spawn(nargv, dns_log, NULL);
    assert_true(node_pid > 0);
    wait_service("ibp-persist", persist_log);
    wait_service("ibp-node", dns_log);
    struct stat st;
    for (int i = 0; i < 100 && stat(control, &st) != 0; i++)
        pt_sleep_ms(100);
    if (stat(control, &st) != 0) {
        show_log(dns_log);
        fail_msg("no control socket %s", control);
    }
}

/* events with durations; sla over known outages. */
static void test_events_and_sla(void)
{
    /* T0 three hours ago, on a minute. Outages of Stake Plus:
     *   A  site ping (IPv4)          T0      .. T0+10m
     *   B  endpoint wss (IPv6), RPC  T0+5m   .. T0+15m   (overlaps A: 15 min together)
     *   C  domain ssl, OTHER         T0+60m  .. open
     *   D  a 10 s flap: deleted by persist (under min_offline), not an outage. */
    int64_t t0 = (wall_ms() - 180 * MIN) / MIN * MIN;
    event("a-down", SITE, "ping", "", "", false, false, t0, 1);
    event("b-down", ENDPOINT, "wss", RPC, "wss://" RPC "/polkadot", true, false, t0 + 5 * MIN, 2);
    event("a-up", SITE, "ping", "", "", false, true, t0 + 10 * MIN, 3);
    event("b-up", ENDPOINT, "wss", RPC, "wss://" RPC "/polkadot", true, true, t0 + 15 * MIN, 4);
    event("c-down", DOMAIN, "ssl", OTHER, "", false, false, t0 + 60 * MIN, 5);
    event("d-down", DOMAIN, "ssl", RPC, "", false, false, t0 + 90 * MIN, 6);
    uint64_t last = event("d-up", DOMAIN, "ssl", RPC, "", false, true, t0 + 90 * MIN + 10000, 7);
    MYSQL *db = ibp_testenv_mysql_connect(&servers.env, "ibp_ops");
    assert_non_null(db);
    pt_wait_offset(db, "EVENTS", last, 20000);
    mysql_close(db);

    /* events: each with its duration; the open one up to now. */
    json_t *j = run_json(0, "events --member '%s' --start %lld --end %lld --nats '%s'", SP,
                         (long long)(t0 - MIN), (long long)wall_ms(), url);
    json_t *evs = json_object_get(j, "events");
    assert_int_equal(json_array_size(evs), 3);
    json_t *a = find(evs, "check_name", "ping"), *b = find(evs, "check_name", "wss");
    json_t *c = find(evs, "check_name", "ssl");
    assert_int_equal(jint(a, "duration_ms"), 10 * MIN);
    assert_true(json_is_false(json_object_get(a, "open")));
    assert_int_equal(jint(b, "duration_ms"), 10 * MIN);
    assert_true(json_is_true(json_object_get(c, "open")));
    assert_true(json_is_null(json_object_get(c, "end_time")));
    assert_true(jint(c, "duration_ms") >= 120 * MIN && jint(c, "duration_ms") < 125 * MIN);
    json_decref(j);

    /* sla over [T0, T0+2h): A and B together 15 min, C the last hour (open). */
    j = run_json(0, "sla --member '%s' --from %lld --to %lld --nats '%s'", SP, (long long)t0,
                 (long long)(t0 + 120 * MIN), url);
    assert_int_equal(jint(j, "window_ms"), 120 * MIN);
    assert_int_equal(jint(j, "downtime_ms"), 75 * MIN);
    assert_int_equal(jint(j, "outages"), 3);
    assert_int_equal(jint(j, "open"), 1);
    assert_true(json_real_value(json_object_get(j, "availability")) == 0.375);
    assert_int_equal(jint(json_object_get(j, "ipv4"), "downtime_ms"), 70 * MIN); /* A + C */
    assert_int_equal(jint(json_object_get(j, "ipv6"), "downtime_ms"), 10 * MIN); /* B */
    json_t *domains = json_object_get(j, "domains");
    assert_int_equal(json_array_size(domains), 2);
    assert_int_equal(jint(find(domains, "domain", RPC), "downtime_ms"), 15 * MIN);   /* B + A */
    assert_int_equal(jint(find(domains, "domain", OTHER), "downtime_ms"), 70 * MIN); /* C + A */
    json_t *checks = json_object_get(j, "checks");
    assert_int_equal(json_array_size(checks), 3);
    assert_int_equal(jint(find(checks, "check_name", "ssl"), "downtime_ms"), 60 * MIN);
    assert_int_equal(jint(find(checks, "check_name", "ping"), "downtime_ms"), 10 * MIN);
    json_decref(j);
    /* One domain: its outages and the member-wide ones (the site check). */
    j = run_json(0, "sla --member '%s' --domain %s --from %lld --to %lld --nats '%s'", SP, RPC,
                 (long long)t0, (long long)(t0 + 120 * MIN), url);
    assert_int_equal(jint(j, "downtime_ms"), 15 * MIN);
    assert_int_equal(json_array_size(json_object_get(j, "domains")), 1);
    json_decref(j);
    /* A window inside A and B: all of it down, edges clipped. */
    j = run_json(0, "sla --member '%s' --from %lld --to %lld --nats '%s'", SP,
                 (long long)(t0 + 7 * MIN), (long long)(t0 + 12 * MIN), url);
    assert_int_equal(jint(j, "downtime_ms"), 5 * MIN);
    assert_true(json_real_value(json_object_get(j, "availability")) == 0.0);
    json_decref(j);
    /* A window ending in the future ends now: C runs to now. */
    j = run_json(0, "sla --member '%s' --from %lld --to %lld --nats '%s'", SP,
                 (long long)(t0 + 100 * MIN), (long long)(wall_ms() + 600 * MIN), url);
    assert_int_equal(jint(j, "downtime_ms"), jint(j, "window_ms"));
    json_decref(j);
    /* The table; an empty window is refused; dates work as times. */
    char *out = NULL;
    assert_int_equal(run(&out, "sla --member '%s' --from %lld --to %lld --compact --nats '%s'", SP,
                         (long long)t0, (long long)(t0 + 120 * MIN), url),
                     0);
    assert_non_null(strstr(out, "AVAILABLE"));
    assert_non_null(strstr(out, "37.5000 %"));
    assert_non_null(strstr(out, "domain   " OTHER));
    free(out);
    assert_int_equal(run(NULL, "sla --member '%s' --from %lld --to %lld --nats '%s' 2>/dev/null",
                         SP, (long long)t0, (long long)t0, url),
                     1);
    assert_int_equal(run(NULL,
                         "sla --member '%s' --from 2020-01-01 --to 2020-02-01 --nats '%s' "
                         "> /dev/null",
                         SP, url),
                     0);
    assert_int_equal(run(NULL, "sla --from 2020-01-01 --to 2020-02-01 2>/dev/null"), 2);
}

static void test_usage_flush(void)
{
    for (int i = 0; i < 3; i++) {
        json_t *a = control_cmd("{\"cmd\":\"dns_hit\",\"ipv6\":false,\"client_ip\":\"192.0.2.7\","
                                "\"domain\":\"" RPC "\",\"member\":\"" SP "\"}\n");
        assert_true(json_is_true(json_object_get(a, "ok")));
        json_decref(a);
    }
    json_t *a = control_cmd("{\"cmd\":\"dns_hit\",\"ipv6\":true,\"client_ip\":\"2001:db8::7\","
                            "\"domain\":\"" RPC "\",\"member\":\"" SP "\"}\n");
    json_decref(a);
    json_t *j = run_json(0, "usage flush --socket '%s' --nats '%s'", control, url);
    assert_true(json_is_true(json_object_get(j, "stored")));
    assert_string_equal(json_string_value(json_object_get(j, "node")), "dns1");
    json_int_t seq = jint(j, "flush_seq");
    assert_true(seq >= 1);
    assert_true(jint(j, "last_flush_seq") >= seq);
    json_t *row = find(json_object_get(json_object_get(j, "usage"), "rows"), "domain", RPC);
    assert_int_equal(jint(row, "ipv4"), 3);
    assert_int_equal(jint(row, "ipv6"), 1);
    assert_int_equal(jint(row, "total"), 4);
    json_decref(j);
    /* Nothing new: the same flush is stored already; by member, one date. */
    char today[16];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(today, sizeof today, "%Y-%m-%d", &tm);
    j = run_json(0, "usage flush --socket '%s' --date %s --by member --nats '%s'", control, today,
                 url);
    assert_int_equal(jint(j, "flush_seq"), seq);
    assert_int_equal(
        jint(find(json_object_get(json_object_get(j, "usage"), "rows"), "member", SP), "total"), 4);
    json_decref(j);
    /* A bad date is refused by the node; no socket is bad usage. */
    assert_int_equal(run(NULL,
                         "usage flush --socket '%s' --date 2025-13-40 --nats '%s' "
                         "2>/dev/null",
                         control, url),
                     1);
    assert_int_equal(run(NULL, "usage flush --nats '%s' 2>/dev/null", url), 2);
}

static void test_services(void)
{
    json_t *j = run_json(0, "services --nats '%s'", url);
    json_t *p = find(j, "name", "ibp-persist"), *n = find(j, "name", "ibp-node");
    assert_non_null(json_string_value(json_object_get(p, "id")));
    assert_non_null(json_string_value(json_object_get(p, "started")));
    json_t *sla = find(json_object_get(p, "endpoints"), "name", "sla");
    assert_true(jint(sla, "num_requests") >= 5);
    assert_string_equal(json_string_value(json_object_get(sla, "subject")), "ibp.persist.sla");
    find(json_object_get(p, "endpoints"), "name", "hit_flushes");
    assert_non_null(json_object_get(json_object_get(p, "data"), "events"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(n, "metadata"), "node")),
                        "dns1");
    json_decref(j);
    char *out = NULL;
    assert_int_equal(run(&out, "services ibp-persist --compact --nats '%s'", url), 0);
    assert_non_null(strstr(out, "NAME"));
    assert_non_null(strstr(out, "ibp-persist"));
    assert_non_null(strstr(out, "endpoint sla"));
    assert_null(strstr(out, "ibp-node"));
    free(out);
    assert_int_equal(run(NULL, "services nothere --wait 300 --nats '%s' 2>/dev/null", url), 1);
}

/* replay as a MariaDB user that may not create the database: the GRANT to run. */
static void test_replay_grant(void)
{
    MYSQL *admin = ibp_testenv_mysql_connect(&servers.env, NULL);
    assert_non_null(admin);
    assert_int_equal(ibp_testenv_mysql_exec(admin, "CREATE USER 'ibp_ro'@'127.0.0.1' IDENTIFIED "
                                                   "BY 'ro-secret'"),
                     0);
    assert_int_equal(ibp_testenv_mysql_exec(
                         admin, "GRANT ALL PRIVILEGES ON `ibp_ops`.* TO 'ibp_ro'@'127.0.0.1'"),
                     0);
    char pw[1300], cfg[1300], nats[2048];
    snprintf(pw, sizeof pw, "%s/ro.password", k.dir);
    FILE *f = fopen(pw, "w");
    assert_non_null(f);
    fputs("ro-secret", f);
    fclose(f);
    chmod(pw, 0600);
    assert_int_equal(ibp_testenv_nats_json(&servers.env, IBP_TESTENV_NATS_TEST, nats, sizeof nats),
                     0);
    snprintf(cfg, sizeof cfg, "%s/replay.json", k.dir);
    f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"node\": {\"id\": \"persist1\", \"roster_file\": \"%s\", \"work_dir\": \"%s\"},\n"
            " %s,\n"
            " \"mysql\": {\"host\": \"%s\", \"port\": %u, \"user\": \"ibp_ro\",\n"
            "           \"password_file\": \"%s\", \"database\": \"ibp_ops\"}}\n",
            k.roster_path, k.dir, nats, servers.env.mysql_host, servers.env.mysql_port, pw);
    fclose(f);
    char cmd[4096], *err_text = NULL;
    /* ibpctl replay runs ibp-persist replay; the error goes to stderr. */
    assert_int_equal(run(&err_text,
                         "replay --config '%s' --database ibp_rebuilt --sql-dir '%s' 2>&1 "
                         ">/dev/null",
                         cfg, IBP_SOURCE_DIR "/deploy/sql"),
                     1);
    const char *want = "GRANT ALL PRIVILEGES ON `ibp_rebuilt`.* TO 'ibp_ro'@'127.0.0.1';";
    if (!strstr(err_text, want))
        fail_msg("replay did not name the grant: %s", err_text);
    free(err_text);
    /* The administrator runs exactly that; then the replay works. */
    snprintf(cmd, sizeof cmd, "%.*s", (int)strlen(want) - 1, want);
    assert_int_equal(ibp_testenv_mysql_exec(admin, "%s", cmd), 0);
    assert_int_equal(run(NULL,
                         "replay --config '%s' --database ibp_rebuilt --sql-dir '%s' "
                         ">/dev/null 2>&1",
                         cfg, IBP_SOURCE_DIR "/deploy/sql"),
                     0);
    long long n = -1;
    assert_int_equal(
        ibp_testenv_mysql_query_int(admin, &n, "SELECT COUNT(*) FROM ibp_rebuilt.member_events"),
        0);
    assert_int_equal(n, 3);
    mysql_close(admin);
}

static void test_persist_ops(void **state)
{
    (void)state;
    ibp_err err;
    ibp_log_set_level(IBP_LOG_ERROR);
    assert_int_equal(ibp_testenv_private_start(&servers), 0);
    pt_keys_init(&k);
    /* ibpctl runs as the operator (the admin role's NATS user). */
    assert_int_equal(ibp_testenv_nats_url(&servers.env, IBP_TESTENV_NATS_ADMIN, url, sizeof url),
                     0);
    assert_int_equal(ibp_bus_connect_url(servers.env.nats_auth_url, "test", &nc, &err), IBP_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    assert_int_equal(ibp_bus_ensure_streams(js, NULL, &err), IBP_OK);
    start_daemons();
    test_events_and_sla();
    test_usage_flush();
    test_services();
    test_replay_grant();
    ibp_testenv_kill_wait(node_pid, SIGTERM, 10000, NULL);
    ibp_testenv_kill_wait(persist_pid, SIGTERM, 10000, NULL);
    node_pid = persist_pid = -1;
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    pt_keys_free(&k);
    ibp_testenv_private_stop(&servers);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_persist_ops)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (node_pid > 0)
        ibp_testenv_kill_wait(node_pid, SIGKILL, 5000, NULL);
    if (persist_pid > 0)
        ibp_testenv_kill_wait(persist_pid, SIGKILL, 5000, NULL);
    if (servers.started)
        ibp_testenv_private_stop(&servers);
    return rc;
}
