/*
 * Unit tests: the checker against loopback listeners (127.0.0.1 only): the
 * tcp module, the ping module to 127.0.0.1, retries, reload keeping the
 * schedule, the keys it wants voted, and the bound on checks in flight with
 * targets that hang.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ibp/clock.h"
#include "ibp/cache.h"
#include "ibp/checker.h"
#include "ibp/network.h"
#include "ibp/store.h"
#include "test_util.h"

#define assert_ok(st, err)                                                                         \
    do {                                                                                           \
        ibp_status st_ = (st);                                                                     \
        if (st_ != IBP_OK)                                                                         \
            fail_msg("got %s \"%s\", want IBP_OK", ibp_status_name(st_), (err).msg);               \
    } while (0)

/* A listener on 127.0.0.1 at an ephemeral port (or the given one). */
static int listen_on(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 64), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* A port nobody listens on: bound, then closed. */
static unsigned closed_port(void)
{
    unsigned p = 0;
    int fd = listen_on(&p);
    close(fd);
    return p;
}

/* asprintf without _GNU_SOURCE. */
static char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert_true(n > 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static const char MEMBERS[] =
    "{\"Alpha\": {\"Details\": {\"Name\": \"Alpha\"}, \"Membership\": {\"MemberLevel\": 5},"
    "  \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"127.0.0.1\", \"ServiceIPv6\": \"\"},"
    "  \"ServiceAssignments\": {\"Demo\": [\"Relay\"]}},"
    " \"Beta\": {\"Details\": {\"Name\": \"Beta\"}, \"Membership\": {\"MemberLevel\": 5},"
    "  \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"127.0.0.1\", \"ServiceIPv6\": \"\"},"
    "  \"ServiceAssignments\": {\"Demo\": [\"Relay\", \"Other\"]}},"
    " \"Sleepy\": {\"Details\": {\"Name\": \"Sleepy\"}, \"Membership\": {\"MemberLevel\": 5},"
    "  \"Service\": {\"Active\": 0, \"ServiceIPv4\": \"127.0.0.1\"},"
    "  \"ServiceAssignments\": {\"Demo\": [\"Relay\"]}}}";

static char *services_json(unsigned relay_port)
{
    char *s = xprintf("{\"Relay\": {\"Configuration\": {\"Name\": \"Relay\", \"ServiceType\": "
                      "\"RPC\", \"Active\": 1, \"LevelRequired\": 1},"
                      "  \"Providers\": {\"Demo\": {\"RpcUrls\": [\"ws://Relay.Demo.Test:%u/a\","
                      " \"wss://relay.demo.test/b\"]}}},"
                      " \"Other\": {\"Configuration\": {\"Name\": \"Other\", \"ServiceType\": "
                      "\"RPC\", \"Active\": 0, \"LevelRequired\": 1},"
                      "  \"Providers\": {\"Demo\": {\"RpcUrls\": [\"wss://other.demo.test\"]}}}}",
                      relay_port);
    return s;
}

static ibp_network *load(const char *services, const char *checks)
{
    ibp_network *net = NULL;
    ibp_err err = {0};
    assert_ok(ibp_network_load_buffers(MEMBERS, strlen(MEMBERS), services, strlen(services), checks,
                                       strlen(checks), &net, &err),
              err);
    return net;
}

static ibp_result *local(ibp_store *s, ibp_check_type type, const char *check, const char *member,
                         const char *domain, const char *endpoint)
{
    ibp_result_key k = {.type = type,
                        .check_name = check,
                        .member = member,
                        .domain = domain,
                        .endpoint = endpoint,
                        .ipv6 = false};
    ibp_result *r = NULL;
    if (ibp_store_local_get(s, &k, &r) != IBP_OK)
        return NULL;
    return r;
}

static void test_connect(void **state)
{
    (void)state;
    unsigned open_p = 0;
    int fd = listen_on(&open_p);
    char error[256];
    int64_t ms = -1;
    assert_true(ibp_checker_connect("127.0.0.1", open_p, false, 2000, &ms, error, sizeof error));
    assert_true(ms >= 0 && ms < 2000);
    assert_string_equal(error, "");
    close(fd);
    unsigned p = closed_port();
    assert_false(ibp_checker_connect("127.0.0.1", p, false, 2000, &ms, error, sizeof error));
    char want[128];
    snprintf(want, sizeof want, "connect 127.0.0.1:%u: connection refused", p);
    assert_string_equal(error, want);
}

static void test_bad_options(void **state)
{
    (void)state;
    char *svc = services_json(1);
    const char *bad[] = {
        "{\"c\": {\"CheckType\": \"site\", \"ExtraOptions\": {\"port\": 0}}}",
        "{\"c\": {\"CheckType\": \"site\", \"ExtraOptions\": {\"port\": \"80\"}}}",
        "{\"c\": {\"CheckType\": \"site\", \"ExtraOptions\": {\"ports\": {\"Alpha\": 70000}}}}",
        "{\"c\": {\"CheckType\": \"site\", \"ExtraOptions\": {\"connect\": \"localhost\"}}}",
    };
    ibp_store *store = NULL;
    assert_int_equal(ibp_store_new(NULL, &store), IBP_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ibp_network *net = load(svc, bad[i]);
        ibp_checker_opts o;
        ibp_checker_opts_init(&o);
        o.network = net;
        o.store = store;
        ibp_checker *c = NULL;
        ibp_err err = {0};
        assert_int_equal(ibp_checker_validate(net, &err), IBP_E_CONFIG);
        assert_non_null(strstr(err.msg, "check c: ExtraOptions."));
        err = (ibp_err){0};
        assert_int_equal(ibp_checker_start(&o, &c, &err), IBP_E_CONFIG);
        assert_null(c);
        assert_non_null(strstr(err.msg, "check c: ExtraOptions."));
        ibp_network_free(net);
    }
    /* A CA file that cannot be read is a config error, at start. */
    ibp_network *net = load(svc, "{}");
    ibp_checker_opts o;
    ibp_checker_opts_init(&o);
    o.network = net;
    o.store = store;
    o.ca_file = "/nonexistent/ca.pem";
    ibp_checker *c = NULL;
    ibp_err err = {0};
    assert_int_equal(ibp_checker_start(&o, &c, &err), IBP_E_CONFIG);
    assert_non_null(strstr(err.msg, "CA file /nonexistent/ca.pem"));
    assert_null(c);
    ibp_network_free(net);
    ibp_store_free(store);
    free(svc);
}

static void test_run_once(void **state)
{
    (void)state;
    unsigned site_a = 0, relay = 0, dom = 0;
    int fa = listen_on(&site_a), fr = listen_on(&relay), fd = listen_on(&dom);
    unsigned site_b = closed_port();
    char *svc = services_json(relay);
    char *checks = xprintf(
        "{\"site\": {\"CheckType\": \"site\", \"Timeout\": 2,"
        "   \"ExtraOptions\": {\"module\": \"tcp\", \"ports\": {\"Alpha\": %u, \"Beta\": %u}}},"
        " \"ping\": {\"CheckType\": \"site\"},"
        " \"off\": {\"CheckType\": \"endpoint\", \"Enabled\": 0},"
        " \"dom\": {\"CheckType\": \"domain\", \"Timeout\": 2,"
        "   \"ExtraOptions\": {\"module\": \"tcp\", \"connect\": \"127.0.0.1\", \"port\": %u}},"
        " \"ep\": {\"CheckType\": \"endpoint\", \"Timeout\": 2,"
        "   \"ExtraOptions\": {\"module\": \"tcp\", \"connect\": \"127.0.0.1\"}}}",
        site_a, site_b, dom);
    ibp_network *net = load(svc, checks);
    ibp_store *store = NULL;
    assert_int_equal(ibp_store_new(NULL, &store), IBP_OK);
    ibp_checker_opts o;
    ibp_checker_opts_init(&o);
    o.network = net;
    o.store = store;
    size_t n = 0;
    ibp_err err = {0};
    assert_ok(ibp_checker_run_once(&o, &n, &err), err);
    /* site: Alpha, Beta (Sleepy is inactive); ping: the same two, at their ServiceIPv4; dom:
     * 2 members x 1 domain (Other is inactive); ep: 2 members x 2 URLs. IPv4 only (no
     * ServiceIPv6). */
    assert_int_equal(n, 2 + 2 + 2 + 4);

    ibp_result *r = local(store, IBP_CHECK_SITE, "site", "Alpha", "", "");
    assert_non_null(r);
    assert_true(r->up);
    assert_false(r->ipv6);
    assert_non_null(strstr(r->data_json, "\"connect_ms\""));
    ibp_result_free(r);
    r = local(store, IBP_CHECK_SITE, "site", "Beta", "", "");
    assert_non_null(r);
    assert_false(r->up);
    char want[128];
    snprintf(want, sizeof want, "connect 127.0.0.1:%u: connection refused", site_b);
    assert_string_equal(r->error, want);
    ibp_result_free(r);
    assert_null(local(store, IBP_CHECK_SITE, "site", "Sleepy", "", ""));
    /* ping to 127.0.0.1: up where ICMP sockets are allowed, else down saying why. */
    r = local(store, IBP_CHECK_SITE, "ping", "Alpha", "", "");
    assert_non_null(r);
    if (r->up)
        assert_non_null(strstr(r->data_json, "\"received\":3"));
    else
        assert_non_null(strstr(r->error, "ICMP socket"));
    ibp_result_free(r);

    r = local(store, IBP_CHECK_DOMAIN, "dom", "Beta", "relay.demo.test", "");
    assert_non_null(r);
    assert_true(r->up);
    ibp_result_free(r);

    char url[128];
    snprintf(url, sizeof url, "ws://Relay.Demo.Test:%u/a", relay);
    r = local(store, IBP_CHECK_ENDPOINT, "ep", "Alpha", "relay.demo.test", url);
    assert_non_null(r);
    assert_true(r->up);
    ibp_result_free(r);
    /* wss without a port: 443 on loopback, where nothing listens in a test. */
    r = local(store, IBP_CHECK_ENDPOINT, "ep", "Alpha", "relay.demo.test",
              "wss://relay.demo.test/b");
    assert_non_null(r);
    if (!r->up) /* unless something on this host listens on 443 */
        assert_non_null(strstr(r->error, "connect 127.0.0.1:443: "));
    ibp_result_free(r);

    /* The endpoint goes away: the next round reports it down. */
    close(fr);
    assert_ok(ibp_checker_run_once(&o, &n, &err), err);
    r = local(store, IBP_CHECK_ENDPOINT, "ep", "Beta", "relay.demo.test", url);
    assert_non_null(r);
    assert_false(r->up);
    snprintf(want, sizeof want, "connect 127.0.0.1:%u: connection refused", relay);
    assert_string_equal(r->error, want);
    ibp_result_free(r);

    close(fa);
    close(fd);
    ibp_store_free(store);
    ibp_network_free(net);
    free(svc);
    free(checks);
}

static bool local_up(ibp_store *s, unsigned port, bool *found)
{
    char url[128];
    snprintf(url, sizeof url, "ws://Relay.Demo.Test:%u/a", port);
    ibp_result_key k = {.type = IBP_CHECK_ENDPOINT,
                        .check_name = "ep",
                        .member = "Alpha",
                        .domain = "relay.demo.test",
                        .endpoint = url};
    bool up = false;
    ibp_store_local_status(s, &k, found, &up);
    return up;
}

/* Runs are counted after a result is stored, so poll rather than read once. */
static bool runs_reach(ibp_checker *c, uint64_t want)
{
    int64_t deadline = ibp_clock_mono_ms() + 5000;
    while (ibp_checker_runs(c) < want && ibp_clock_mono_ms() < deadline)
        usleep(20000);
    return ibp_checker_runs(c) >= want;
}

static void test_thread(void **state)
{
    (void)state;
    unsigned relay = 0;
    int fr = listen_on(&relay);
    char *svc = services_json(relay);
    const char *checks = "{\"ep\": {\"CheckType\": \"endpoint\", \"Timeout\": 1, "
                         "\"MinimumInterval\": 1, \"ExtraOptions\": {\"module\": \"tcp\", "
                         "\"connect\": \"127.0.0.1\", "
                         "\"ports\": {\"Beta\": 1}}}}";
    ibp_network *net = load(svc, checks);
    ibp_store *store = NULL;
    assert_int_equal(ibp_store_new(NULL, &store), IBP_OK);
    ibp_checker_opts o;
    ibp_checker_opts_init(&o);
    o.network = net;
    o.store = store;
    o.retry_delay_ms = 100;
    ibp_checker *c = NULL;
    ibp_err err = {0};
    assert_ok(ibp_checker_start(&o, &c, &err), err);
    assert_int_equal(ibp_checker_target_count(c), 4);

    bool found = false;
    int64_t deadline = ibp_clock_mono_ms() + 5000;
    while (!(local_up(store, relay, &found) && found) && ibp_clock_mono_ms() < deadline)
        usleep(20000);
    assert_true(found);
    assert_true(local_up(store, relay, &found));
    assert_true(runs_reach(c, 4));
    uint64_t runs = ibp_checker_runs(c);

    close(fr); /* down within the next interval */
    deadline = ibp_clock_mono_ms() + 5000;
    while (local_up(store, relay, &found) && ibp_clock_mono_ms() < deadline)
        usleep(20000);
    assert_false(local_up(store, relay, &found));
    assert_true(runs_reach(c, runs + 4));

    int64_t t0 = ibp_clock_mono_ms();
    ibp_checker_stop(c);
    assert_true(ibp_clock_mono_ms() - t0 < 1500);
    ibp_checker_stop(NULL);
    ibp_store_free(store);
    ibp_network_free(net);
    free(svc);
}

static ibp_network *load_members(const char *members, const char *services, const char *checks)
{
    ibp_network *net = NULL;
    ibp_err err = {0};
    assert_ok(ibp_network_load_buffers(members, strlen(members), services, strlen(services), checks,
                                       strlen(checks), &net, &err),
              err);
    return net;
}

static void test_retry_and_stats(void **state)
{
    (void)state;
    unsigned p = closed_port();
    char *svc = services_json(1);
    char *checks =
        xprintf("{\"tcp-site\": {\"CheckType\": \"site\", \"Timeout\": 1,"
                " \"MinimumInterval\": 60, \"ExtraOptions\": {\"ports\": {\"Alpha\": %u}}}}",
                p);
    ibp_network *net = load(svc, checks);
    ibp_store *store = NULL;
    assert_int_equal(ibp_store_new(NULL, &store), IBP_OK);
    ibp_checker_opts o;
    ibp_checker_opts_init(&o);
    o.network = net;
    o.store = store;
    o.retries = 2;
    o.retry_delay_ms = 100;
    ibp_checker *c = NULL;
    ibp_err err = {0};
    int64_t t0 = ibp_clock_mono_ms();
    assert_ok(ibp_checker_start(&o, &c, &err), err);
    assert_true(runs_reach(c, 1));
    /* Two retries 100 ms apart before the failure counts. */
    assert_true(ibp_clock_mono_ms() - t0 >= 200);
    ibp_checker_stats st;
    ibp_checker_stats_get(c, &st);
    assert_int_equal(st.targets, 1);
    assert_int_equal(st.runs, 1);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.retried, 2);
    /* Beta has no port: reported, not silently skipped. */
    assert_int_equal(st.cannot_run, 1);
    ibp_result *r = local(store, IBP_CHECK_SITE, "tcp-site", "Alpha", "", "");
    assert_non_null(r);
    assert_false(r->up);
    assert_non_null(strstr(r->error, "connection refused"));
    ibp_result_free(r);
    ibp_checker_stop(c);
    ibp_store_free(store);
    ibp_network_free(net);
    free(svc);
    free(checks);
}

static const char MEMBERS_NO_BETA[] =
    "{\"Alpha\": {\"Details\": {\"Name\": \"Alpha\"}, \"Membership\": {\"MemberLevel\": 5},"
    "  \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"127.0.0.1\", \"ServiceIPv6\": \"\"},"
    "  \"ServiceAssignments\": {\"Demo\": [\"Relay\"]}}}";

static void test_reload(void **state)
{
    (void)state;
    unsigned relay = 0;
    int fr = listen_on(&relay);
    char *svc = services_json(relay);
    const char *checks = "{\"ep\": {\"CheckType\": \"endpoint\", \"Timeout\": 1, "
                         "\"MinimumInterval\": 60, \"ExtraOptions\": {\"module\": \"tcp\", "
                         "\"connect\": \"127.0.0.1\"}}}";
    ibp_network *net = load(svc, checks);
    ibp_store *store = NULL;
    assert_int_equal(ibp_store_new(NULL, &store), IBP_OK);
    ibp_checker_opts o;
    ibp_checker_opts_init(&o);
    o.network = net;
    o.store = store;
    o.retries = 0;
    ibp_checker *c = NULL;
    ibp_err err = {0};
    assert_ok(ibp_checker_start(&o, &c, &err), err);
    assert_int_equal(ibp_checker_target_count(c), 4);
    assert_true(runs_reach(c, 4));

    ibp_result *beta = local(store, IBP_CHECK_ENDPOINT, "ep", "Beta", "relay.demo.test",
                             "wss://relay.demo.test/b");
    assert_non_null(beta);
    assert_true(ibp_checker_wants(c, beta));

    /* A bad file is refused; the old targets stay. */
    ibp_network *bad = load(svc, "{\"ep\": {\"CheckType\": \"endpoint\", "
                                 "\"ExtraOptions\": {\"module\": \"tcp\", \"port\": 0}}}");
    assert_int_equal(ibp_checker_reload(c, bad, &err), IBP_E_CONFIG);
    assert_non_null(strstr(err.msg, "check ep: ExtraOptions.port"));
    ibp_network_free(bad);
    assert_int_equal(ibp_checker_target_count(c), 4);

    /* Beta leaves; a new check arrives. Alpha's targets keep their schedule (next run in 60 s),
     * the new check's run at once, Beta's results are no longer wanted. */
    char *checks2 = xprintf("%.*s, \"ep2\": {\"CheckType\": \"endpoint\", \"Timeout\": 1,"
                            " \"MinimumInterval\": 60, \"ExtraOptions\": {\"module\": \"tcp\", "
                            "\"connect\": \"127.0.0.1\"}}}",
                            (int)strlen(checks) - 1, checks);
    ibp_network *net2 = load_members(MEMBERS_NO_BETA, svc, checks2);
    uint64_t runs = ibp_checker_runs(c);
    assert_ok(ibp_checker_reload(c, net2, &err), err);
    ibp_network_free(net2); /* the checker keeps copies */
    assert_int_equal(ibp_checker_target_count(c), 4);
    assert_true(runs_reach(c, runs + 2));
    usleep(300000);
    assert_int_equal(ibp_checker_runs(c), runs + 2); /* only ep2's two ran */
    assert_false(ibp_checker_wants(c, beta));
    ibp_result *alpha = local(store, IBP_CHECK_ENDPOINT, "ep", "Alpha", "relay.demo.test",
                              "wss://relay.demo.test/b");
    assert_non_null(alpha);
    assert_true(ibp_checker_wants(c, alpha));
    ibp_result_key k = {IBP_CHECK_SITE, "by-hand", "Beta", "", "", false};
    ibp_result *manual = NULL;
    assert_int_equal(ibp_result_new(&k, true, 1, "", "", &manual, &err), IBP_OK);
    assert_true(ibp_checker_wants(c, manual)); /* not a configured check */
    ibp_checker_stats st;
    ibp_checker_stats_get(c, &st);
    assert_int_equal(st.reloads, 1);

    ibp_result_free(manual);
    ibp_result_free(alpha);
    ibp_result_free(beta);
    ibp_checker_stop(c);
    close(fr);
    ibp_store_free(store);
    ibp_network_free(net);
    free(svc);
    free(checks2);
}

/* Four ws targets on a listener that never answers the upgrade: two in flight at most, each
 * holding its worker until its 1 s Timeout. */
static void test_in_flight_bound(void **state)
{
    (void)state;
    unsigned hang = 0;
    int fh = listen_on(&hang);
    char *svc = services_json(hang);
    char *checks = xprintf("{\"wss\": {\"CheckType\": \"endpoint\", \"Timeout\": 1,"
                           " \"MinimumInterval\": 60, \"ExtraOptions\": {\"connect\": "
                           "\"127.0.0.1\", \"port\": %u}}}",
                           hang);
    ibp_network *net = load(svc, checks);
    ibp_store *store = NULL;
    assert_int_equal(ibp_store_new(NULL, &store), IBP_OK);
    ibp_checker_opts o;
    ibp_checker_opts_init(&o);
    o.network = net;
    o.store = store;
    o.retries = 0;
    o.max_in_flight = 2;
    ibp_checker *c = NULL;
    ibp_err err = {0};
    int64_t t0 = ibp_clock_mono_ms();
    assert_ok(ibp_checker_start(&o, &c, &err), err);
    uint64_t max_seen = 0;
    while (ibp_checker_runs(c) < 4 && ibp_clock_mono_ms() - t0 < 6000) {
        ibp_checker_stats st;
        ibp_checker_stats_get(c, &st);
        if (st.in_flight > max_seen)
            max_seen = st.in_flight;
        usleep(10000);
    }
    int64_t took = ibp_clock_mono_ms() - t0;
    assert_int_equal(ibp_checker_runs(c), 4);
    assert_int_equal(max_seen, 2);
    /* Two rounds of two 1 s timeouts (plus the first round's spread of up to 1 s; a slow
     * host, valgrind, may add to it but can never make it shorter). */
    assert_true(took >= 1900 && took < 10000);
    ibp_result *r = local(store, IBP_CHECK_ENDPOINT, "wss", "Alpha", "relay.demo.test",
                          "wss://relay.demo.test/b");
    assert_non_null(r);
    assert_false(r->up);
    assert_non_null(strstr(r->error, "wss: "));
    ibp_result_free(r);
    ibp_checker_stop(c);
    close(fh);
    ibp_store_free(store);
    ibp_network_free(net);
    free(svc);
    free(checks);
}

/* At start: cached results of targets that left the config are dropped from the cache. */
static void test_prune_local_cache(void **state)
{
    (void)state;
    char *wd = test_tmpdir();
    char *svc = services_json(9000);
    const char *checks = "{\"ep\": {\"CheckType\": \"endpoint\", \"ExtraOptions\": "
                         "{\"module\": \"tcp\", \"connect\": \"127.0.0.1\"}}}";
    ibp_network *net = load_members(MEMBERS_NO_BETA, svc, checks);
    char url[64];
    snprintf(url, sizeof url, "ws://Relay.Demo.Test:9000/a");
    ibp_result_key keys[3] = {
        {IBP_CHECK_ENDPOINT, "ep", "Alpha", "relay.demo.test", url, false}, /* a target */
        {IBP_CHECK_ENDPOINT, "ep", "Beta", "relay.demo.test", url, false},  /* Beta left */
        {IBP_CHECK_SITE, "by-hand", "Beta", "", "", false}, /* not a configured check */
    };
    ibp_result *rs[3];
    ibp_err err = {0};
    for (int i = 0; i < 3; i++)
        assert_ok(ibp_result_new(&keys[i], true, 1700000000000, "", "", &rs[i], &err), err);
    char path[4200];
    assert_ok(ibp_cache_path(wd, IBP_CACHE_LOCAL, path, sizeof path, &err), err);
    ibp_cache_contents c = {
        .kind = IBP_CACHE_LOCAL, .results = (const ibp_result *const *)rs, .result_count = 3};
    assert_ok(ibp_cache_save(path, &c, &err), err);
    size_t dropped = 0;
    assert_ok(ibp_checker_prune_local_cache(net, wd, &dropped, &err), err);
    assert_int_equal(dropped, 1);
    ibp_cache_loaded l;
    assert_ok(ibp_cache_load(path, IBP_CACHE_LOCAL, &l, &err), err);
    assert_int_equal(l.results.count, 2);
    for (size_t i = 0; i < l.results.count; i++)
        assert_false(strcmp(l.results.items[i]->member, "Beta") == 0 &&
                     strcmp(l.results.items[i]->check_name, "ep") == 0);
    ibp_cache_loaded_free(&l);
    /* Nothing more to drop; no file is nothing to do. */
    assert_ok(ibp_checker_prune_local_cache(net, wd, &dropped, &err), err);
    assert_int_equal(dropped, 0);
    remove(path);
    assert_ok(ibp_checker_prune_local_cache(net, wd, &dropped, &err), err);
    assert_int_equal(dropped, 0);
    for (int i = 0; i < 3; i++)
        ibp_result_free(rs[i]);
    ibp_network_free(net);
    free(svc);
    test_rmdir(wd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect),         cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_run_once),        cmocka_unit_test(test_thread),
        cmocka_unit_test(test_retry_and_stats), cmocka_unit_test(test_reload),
        cmocka_unit_test(test_in_flight_bound), cmocka_unit_test(test_prune_local_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
