/* Unit tests: the dual store, member status, overrides and event emission. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/store.h"

/* ---- helpers ------------------------------------------------------------ */

#define MAX_EVENTS 32
struct sink {
    size_t n;
    ibp_event_record ev[MAX_EVENTS];
    char member[MAX_EVENTS][64];
    char check[MAX_EVENTS][64];
};

static void record_event(const ibp_event_record *ev, void *user)
{
    struct sink *s = user;
    assert_true(s->n < MAX_EVENTS);
    s->ev[s->n] = *ev;
    snprintf(s->member[s->n], sizeof s->member[0], "%s", ev->member);
    snprintf(s->check[s->n], sizeof s->check[0], "%s", ev->check_name);
    s->ev[s->n].member = s->member[s->n];
    s->ev[s->n].check_name = s->check[s->n];
    s->ev[s->n].domain = s->ev[s->n].endpoint = s->ev[s->n].error = s->ev[s->n].data_json = NULL;
    s->n++;
}

static int64_t fixed_clock(void *user)
{
    return *(int64_t *)user;
}

static ibp_result *site(const char *check, const char *member, bool ipv6, bool up, int64_t t)
{
    ibp_result_key k = {IBP_CHECK_SITE, check, member, NULL, NULL, ipv6};
    ibp_result *r;
    ibp_err err;
    assert_int_equal(ibp_result_new(&k, up, t, up ? "" : "timeout", "{\"ms\":12}", &r, &err),
                     IBP_OK);
    return r;
}

static ibp_result *dom(const char *check, const char *member, const char *domain, bool ipv6,
                       bool up, int64_t t)
{
    ibp_result_key k = {IBP_CHECK_DOMAIN, check, member, domain, NULL, ipv6};
    ibp_result *r;
    ibp_err err;
    assert_int_equal(ibp_result_new(&k, up, t, NULL, NULL, &r, &err), IBP_OK);
    return r;
}

static ibp_result *ep(const char *check, const char *member, const char *domain, const char *url,
                      bool ipv6, bool up, int64_t t)
{
    ibp_result_key k = {IBP_CHECK_ENDPOINT, check, member, domain, url, ipv6};
    ibp_result *r;
    ibp_err err;
    assert_int_equal(ibp_result_new(&k, up, t, NULL, NULL, &r, &err), IBP_OK);
    return r;
}

/* Updates the official store with r and frees r. */
static void official(ibp_store *s, ibp_result *r)
{
    ibp_err err;
    assert_int_equal(ibp_store_update_official(s, r, &err), IBP_OK);
    ibp_result_free(r);
}

static void local(ibp_store *s, ibp_result *r)
{
    ibp_err err;
    assert_int_equal(ibp_store_update_local(s, r, &err), IBP_OK);
    ibp_result_free(r);
}

static ibp_store *new_store(struct sink *sink, int64_t *clock)
{
    ibp_store_opts opts;
    ibp_store *s;
    ibp_store_opts_init(&opts);
    opts.event_sink = sink ? record_event : NULL;
    opts.event_user = sink;
    if (clock) {
        opts.now_ms = fixed_clock;
        opts.clock_user = clock;
    }
    assert_int_equal(ibp_store_new(&opts, &s), IBP_OK);
    return s;
}

/* ---- tests -------------------------------------------------------------- */

static void test_empty_store(void **state)
{
    (void)state;
    ibp_store *s = new_store(NULL, NULL);
    bool found = true, up = false;
    ibp_result_key k = {IBP_CHECK_SITE, "ping", "Alpha", NULL, NULL, false};
    ibp_store_official_status(s, &k, &found, &up);
    assert_false(found);
    ibp_result *r = NULL;
    assert_int_equal(ibp_store_official_get(s, &k, &r), IBP_E_NOT_FOUND);
    assert_true(ibp_store_member_online(s, "rpc.ibp.network", "Alpha", false));
    assert_true(ibp_store_member_online(s, "rpc.ibp.network", "Alpha", true));
    assert_int_equal(ibp_store_official_epoch(s), 0);
    assert_int_equal(ibp_store_official_count(s), 0);
    ibp_store_free(s);
    ibp_store_free(NULL);
}

static void test_site_down_is_per_family(void **state)
{
    (void)state;
    ibp_store *s = new_store(NULL, NULL);
    official(s, site("ping", "Alpha", false, false, 100));
    assert_false(ibp_store_member_online(s, "rpc.ibp.network", "Alpha", false));
    assert_true(ibp_store_member_online(s, "rpc.ibp.network", "Alpha", true));
    assert_true(ibp_store_member_online(s, "rpc.ibp.network", "Beta", false));
    /* A site result of another member or an up site result changes nothing. */
    official(s, site("ping", "Beta", true, true, 100));
    assert_true(ibp_store_member_online(s, "rpc.ibp.network", "Beta", true));
    /* IPv6 site down: offline for IPv6 only. */
    official(s, site("ping", "Gamma", true, false, 100));
    assert_true(ibp_store_member_online(s, "x.example", "Gamma", false));
    assert_false(ibp_store_member_online(s, "x.example", "Gamma", true));
    /* Recovery. */
    official(s, site("ping", "Alpha", false, true, 200));
    assert_true(ibp_store_member_online(s, "rpc.ibp.network", "Alpha", false));
    ibp_store_free(s);
}

static void test_domain_and_endpoint_down(void **state)
{
    (void)state;
    ibp_store *s = new_store(NULL, NULL);
    official(s, dom("ssl", "Alpha", "rpc.ibp.network", false, false, 1));
    assert_false(ibp_store_member_online(s, "rpc.ibp.network", "Alpha", false));
    /* Case-insensitive, trailing dot ignored. */
    assert_false(ibp_store_member_online(s, "RPC.IBP.Network.", "Alpha", false));
    /* Other domain, other family, other member: online. */
    assert_true(ibp_store_member_online(s, "sys.ibp.network", "Alpha", false));
    assert_true(ibp_store_member_online(s, "rpc.ibp.network", "Alpha", true));
    assert_true(ibp_store_member_online(s, "rpc.ibp.network", "Beta", false));

    /* A result stored with odd case matches a lower-case query. */
    official(s, ep("wss", "Beta", "Sys.IBP.network.", "wss://sys.ibp.network/statemint", true,
                   false, 1));
    assert_false(ibp_store_member_online(s, "sys.ibp.network", "Beta", true));
    assert_true(ibp_store_member_online(s, "sys.ibp.network", "Beta", false));

    /* Two down results for one domain: offline until both are up. */
    official(s, ep("wss", "Alpha", "rpc.ibp.network", "wss://rpc.ibp.network/polkadot", false,
                   false, 2));
    official(s, dom("ssl", "Alpha", "rpc.ibp.network", false, true, 3));
    assert_false(ibp_store_member_online(s, "rpc.ibp.network", "Alpha", false));
    official(
        s, ep("wss", "Alpha", "rpc.ibp.network", "wss://rpc.ibp.network/polkadot", false, true, 4));
    assert_true(ibp_store_member_online(s, "rpc.ibp.network", "Alpha", false));
    /* Nonsense domains never crash and never match. */
    char longd[600];
    memset(longd, 'a', sizeof longd - 1);
    longd[sizeof longd - 1] = '\0';
    assert_true(ibp_store_member_online(s, longd, "Alpha", false));
    assert_true(ibp_store_member_online(s, NULL, NULL, false));
    ibp_store_free(s);
}

static void test_group_replaces_member_result(void **state)
{
    (void)state;
    ibp_store *s = new_store(NULL, NULL);
    official(s, site("ping", "Alpha", false, false, 100));
    official(s, site("ping", "Alpha", false, true, 200));
    official(s, site("ping", "Beta", false, true, 150));
    assert_int_equal(ibp_store_official_count(s), 2);
    ibp_result_key k = {IBP_CHECK_SITE, "ping", "Alpha", NULL, NULL, false};
    ibp_result *r;
    assert_int_equal(ibp_store_official_get(s, &k, &r), IBP_OK);
    assert_true(r->up);
    assert_int_equal(r->check_time_ms, 200);
    assert_string_equal(r->data_json, "{\"ms\":12}");
    ibp_result_free(r);
    ibp_store_free(s);
}

static void test_deep_copies_are_independent(void **state)
{
    (void)state;
    ibp_store *s = new_store(NULL, NULL);
    official(s, dom("ssl", "Alpha", "rpc.ibp.network", false, false, 1));
    local(s, dom("ssl", "Alpha", "rpc.ibp.network", false, false, 1));
    ibp_result_list a = {0}, b = {0};
    assert_int_equal(ibp_store_official_all(s, &a), IBP_OK);
    assert_int_equal(a.count, 1);
    a.items[0]->up = true;
    a.items[0]->member[0] = 'X';
    assert_int_equal(ibp_store_official_all(s, &b), IBP_OK);
    assert_false(b.items[0]->up);
    assert_string_equal(b.items[0]->member, "Alpha");
    ibp_result_list_free(&a);
    ibp_result_list_free(&b);
    assert_int_equal(ibp_store_local_all(s, &a), IBP_OK);
    a.items[0]->member[0] = 'X';
    ibp_result_list_free(&a);
    assert_int_equal(ibp_store_local_all(s, &b), IBP_OK);
    assert_string_equal(b.items[0]->member, "Alpha");
    ibp_result_list_free(&b);
    ibp_result_list_free(NULL);
    ibp_store_free(s);
}

static void test_events_on_official_changes(void **state)
{
    (void)state;
    struct sink sink = {0};
    ibp_store *s = new_store(&sink, NULL);
    official(s, site("ping", "Alpha", false, true, 1)); /* new and up: nothing */
    assert_int_equal(sink.n, 0);
    official(s, site("ping", "Alpha", false, true, 2)); /* same status: nothing */
    assert_int_equal(sink.n, 0);
    official(s, site("ping", "Alpha", false, false, 3)); /* flip to down */
    assert_int_equal(sink.n, 1);
    assert_int_equal(sink.ev[0].kind, IBP_EVENT_STATUS);
    assert_false(sink.ev[0].up);
    assert_int_equal(sink.ev[0].time_ms, 3);
    assert_string_equal(sink.member[0], "Alpha");
    official(s, dom("ssl", "Beta", "rpc.ibp.network", true, false, 4)); /* new and down */
    assert_int_equal(sink.n, 2);
    assert_true(sink.ev[1].ipv6);
    assert_int_equal(sink.ev[1].type, IBP_CHECK_DOMAIN);
    official(s, site("ping", "Alpha", false, true, 5)); /* back up */
    assert_int_equal(sink.n, 3);
    assert_true(sink.ev[2].up);
    /* Local updates produce no events. */
    local(s, site("ping", "Alpha", false, false, 6));
    local(s, site("ping", "Gamma", false, false, 6));
    assert_int_equal(sink.n, 3);
    ibp_store_free(s);
}

static void test_set_official_snapshot(void **state)
{
    (void)state;
    struct sink sink = {0};
    ibp_store *s = new_store(&sink, NULL);
    ibp_err err;
    ibp_result *first[] = {
        site("ping", "Alpha", false, true, 1),
        site("ping", "Beta", false, false, 1),
        dom("ssl", "Gamma", "rpc.ibp.network", false, true, 1),
    };
    assert_int_equal(ibp_store_set_official(s, (const ibp_result *const *)first, 3, 7, true, &err),
                     IBP_OK);
    assert_int_equal(ibp_store_official_epoch(s), 7);
    assert_int_equal(ibp_store_official_count(s), 3);
    assert_int_equal(sink.n, 1); /* Beta arrived down */
    /* The next snapshot: Alpha flips down, Beta's key disappears, a duplicate
     * key appears twice (the later wins), without events when asked not to. */
    ibp_result *second[] = {
        site("ping", "Alpha", false, false, 2),
        dom("ssl", "Gamma", "rpc.ibp.network", false, true, 2),
        dom("ssl", "Gamma", "rpc.ibp.network", false, false, 3),
    };
    assert_int_equal(
        ibp_store_set_official(s, (const ibp_result *const *)second, 3, 8, false, &err), IBP_OK);
    assert_int_equal(sink.n, 1);
    assert_int_equal(ibp_store_official_count(s), 2);
    assert_false(ibp_store_member_online(s, "rpc.ibp.network", "Gamma", false));
    assert_true(ibp_store_member_online(s, "rpc.ibp.network", "Beta", false));
    /* Same snapshot again with events: no change, no events. */
    assert_int_equal(ibp_store_set_official(s, (const ibp_result *const *)second, 3, 9, true, &err),
                     IBP_OK);
    assert_int_equal(sink.n, 1);
    const ibp_result *bad[] = {first[0], NULL};
    assert_int_equal(ibp_store_set_official(s, bad, 2, 10, true, &err), IBP_E_INVAL);
    assert_int_equal(ibp_store_official_epoch(s), 9);
    for (int i = 0; i < 3; i++) {
        ibp_result_free(first[i]);
        ibp_result_free(second[i]);
    }
    ibp_store_free(s);
}

static void test_overrides(void **state)
{
    (void)state;
    struct sink sink = {0};
    int64_t now = 5000;
    ibp_store *s = new_store(&sink, &now);
    ibp_err err;
    assert_true(ibp_store_member_online(s, "rpc.ibp.network", "Alpha", false));
    assert_int_equal(ibp_store_member_disable(s, "Alpha", "maintenance", &err), IBP_OK);
    assert_true(ibp_store_member_overridden(s, "Alpha"));
    assert_false(ibp_store_member_online(s, "rpc.ibp.network", "Alpha", false));
    assert_false(ibp_store_member_online(s, "rpc.ibp.network", "Alpha", true));
    assert_int_equal(sink.n, 1);
    assert_int_equal(sink.ev[0].kind, IBP_EVENT_OVERRIDE);
    assert_false(sink.ev[0].up);
    assert_string_equal(sink.check[0], IBP_OVERRIDE_CHECK_NAME);
    assert_int_equal(sink.ev[0].time_ms, 5000);
    /* Disabling again: no change, no event. */
    assert_int_equal(ibp_store_member_disable(s, "Alpha", "again", &err), IBP_OK);
    assert_int_equal(sink.n, 1);
    /* Results keep flowing while disabled; overrides survive snapshots. */
    official(s, site("ping", "Alpha", false, true, 1));
    ibp_result *snap[] = {site("ping", "Beta", false, true, 1)};
    assert_int_equal(ibp_store_set_official(s, (const ibp_result *const *)snap, 1, 3, false, &err),
                     IBP_OK);
    ibp_result_free(snap[0]);
    assert_true(ibp_store_member_overridden(s, "Alpha"));
    ibp_override *ovr;
    size_t n;
    assert_int_equal(ibp_store_overrides(s, &ovr, &n), IBP_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ovr[0].member, "Alpha");
    assert_string_equal(ovr[0].reason, "maintenance");
    ibp_store_overrides_free(ovr, n);
    now = 9000;
    assert_int_equal(ibp_store_member_enable(s, "Alpha", &err), IBP_OK);
    assert_false(ibp_store_member_overridden(s, "Alpha"));
    assert_true(ibp_store_member_online(s, "rpc.ibp.network", "Alpha", false));
    assert_int_equal(sink.n, 2);
    assert_true(sink.ev[1].up);
    assert_string_equal(sink.check[1], sink.check[0]);
    assert_int_equal(sink.ev[1].time_ms, 9000);
    assert_int_equal(ibp_store_member_enable(s, "Alpha", &err), IBP_OK);
    assert_int_equal(sink.n, 2);
    assert_int_equal(ibp_store_member_disable(s, "", NULL, &err), IBP_E_INVAL);
    /* set_overrides replaces the set and emits nothing. */
    ibp_override set[] = {{"Beta", "r1", 1}, {"Gamma", "r2", 2}, {"Beta", "dup", 3}};
    assert_int_equal(ibp_store_set_overrides(s, set, 3, &err), IBP_OK);
    assert_true(ibp_store_member_overridden(s, "Beta"));
    assert_true(ibp_store_member_overridden(s, "Gamma"));
    assert_int_equal(sink.n, 2);
    assert_int_equal(ibp_store_overrides(s, &ovr, &n), IBP_OK);
    assert_int_equal(n, 2);
    assert_string_equal(ovr[0].member, "Beta");
    assert_string_equal(ovr[0].reason, "dup"); /* the later duplicate wins */
    ibp_store_overrides_free(ovr, n);
    /* A whole snapshot: results and overrides in one swap. */
    ibp_result *res[] = {site("ping", "Delta", false, false, 9)};
    ibp_override only[] = {{"Gamma", "kept", 4}};
    assert_int_equal(
        ibp_store_set_snapshot(s, (const ibp_result *const *)res, 1, only, 1, 11, false, &err),
        IBP_OK);
    assert_false(ibp_store_member_overridden(s, "Beta"));
    assert_true(ibp_store_member_overridden(s, "Gamma"));
    assert_false(ibp_store_member_online(s, "x.example", "Delta", false));
    assert_int_equal(ibp_store_official_epoch(s), 11);
    assert_int_equal(ibp_store_official_count(s), 1);
    assert_int_equal(
        ibp_store_set_snapshot(s, (const ibp_result *const *)res, 1, NULL, 0, 12, false, &err),
        IBP_OK);
    assert_false(ibp_store_member_overridden(s, "Gamma"));
    ibp_result_free(res[0]);
    ibp_store_free(s);
}

static ibp_network *load_test_network(void)
{
    ibp_network *net = NULL;
    ibp_err err;
    ibp_status st =
        ibp_network_load(IBP_SOURCE_DIR "/tests/data/network/members.json",
                         IBP_SOURCE_DIR "/tests/data/network/services.json", NULL, &net, &err);
    if (st != IBP_OK)
        fail_msg("load network: %s", err.msg);
    return net;
}

static void test_network_members(void **state)
{
    (void)state;
    ibp_network *net = load_test_network();
    ibp_store_opts opts;
    ibp_store *s;
    ibp_err err;
    ibp_store_opts_init(&opts);
    opts.network = net;
    assert_int_equal(ibp_store_new(&opts, &s), IBP_OK);
    assert_int_equal(ibp_store_member_disable(s, "Nobody", NULL, &err), IBP_E_NOT_FOUND);
    assert_non_null(strstr(err.msg, "Nobody"));
    assert_int_equal(ibp_store_member_enable(s, "Nobody", &err), IBP_E_NOT_FOUND);

    /* rpc.ibp.example carries Polkadot (Alpha Nodes, Beta Infra) and Kusama (Alpha, Gamma). */
    const char *online[8];
    size_t n = 0;
    bool last = true;
    assert_int_equal(
        ibp_store_online_members_for_domain(s, "RPC.ibp.example.", false, online, 8, &n, &last),
        IBP_OK);
    assert_int_equal(n, 3);
    assert_false(last);
    official(s, site("ping", "Alpha Nodes", false, false, 1));
    assert_int_equal(ibp_store_member_disable(s, "Beta Infra", "test", &err), IBP_OK);
    assert_int_equal(
        ibp_store_online_members_for_domain(s, "rpc.ibp.example", false, online, 8, &n, &last),
        IBP_OK);
    assert_int_equal(n, 1);
    assert_string_equal(online[0], "Gamma");
    official(s, dom("ssl", "Gamma", "rpc.ibp.example", false, false, 1));
    assert_int_equal(
        ibp_store_online_members_for_domain(s, "rpc.ibp.example", false, online, 8, &n, &last),
        IBP_OK);
    assert_true(last); /* none online: all candidates, flagged */
    assert_int_equal(n, 3);
    /* IPv6 is unaffected by the IPv4 failures, not by the override. */
    assert_int_equal(
        ibp_store_online_members_for_domain(s, "rpc.ibp.example", true, online, 8, &n, &last),
        IBP_OK);
    assert_int_equal(n, 2);
    assert_false(last);
    assert_int_equal(
        ibp_store_online_members_for_domain(s, "rpc.ibp.example", true, online, 1, &n, &last),
        IBP_E_RANGE);
    assert_int_equal(
        ibp_store_online_members_for_domain(s, "unknown.example", true, online, 8, &n, &last),
        IBP_E_NOT_FOUND);
    ibp_store_free(s);

    /* Without a network: candidates from the caller. */
    s = new_store(NULL, NULL);
    const char *cands[] = {"A", "B"};
    official(s, site("ping", "A", false, false, 1));
    ibp_store_online_members(s, "d.example", false, cands, 2, online, &n, &last);
    assert_int_equal(n, 1);
    assert_string_equal(online[0], "B");
    ibp_store_online_members(s, "d.example", false, cands, 0, online, &n, &last);
    assert_int_equal(n, 0);
    assert_false(last);
    assert_int_equal(
        ibp_store_online_members_for_domain(s, "d.example", false, online, 8, &n, &last),
        IBP_E_INVAL);
    ibp_store_free(s);
    ibp_network_free(net);
}

static void test_local_store(void **state)
{
    (void)state;
    ibp_store *s = new_store(NULL, NULL);
    bool found = true, up = true;
    ibp_result_key k4 = {IBP_CHECK_DOMAIN, "ssl", "Alpha", "rpc.ibp.network", NULL, false};
    ibp_result_key k6 = k4;
    k6.ipv6 = true;
    ibp_store_local_status(s, &k4, &found, &up);
    assert_false(found);
    local(s, dom("ssl", "Alpha", "rpc.ibp.network", false, false, 1));
    ibp_store_local_status(s, &k4, &found, &up);
    assert_true(found);
    assert_false(up);
    ibp_store_local_status(s, &k6, &found, &up);
    assert_false(found);
    /* Local results never affect member status. */
    assert_true(ibp_store_member_online(s, "rpc.ibp.network", "Alpha", false));

    ibp_result_list list = {0};
    uint64_t v1 = 0, v2 = 0;
    assert_int_equal(ibp_store_local_changed_since(s, 0, &list, &v1), IBP_OK);
    assert_int_equal(list.count, 1);
    ibp_result_list_free(&list);
    /* Many keys (growth), then only what changed after v1. */
    for (int i = 0; i < 200; i++) {
        char member[32];
        snprintf(member, sizeof member, "M%03d", i);
        local(s, site("ping", member, i % 2, true, i));
    }
    local(s, dom("ssl", "Alpha", "rpc.ibp.network", false, true, 2));
    assert_int_equal(ibp_store_local_changed_since(s, v1, &list, &v2), IBP_OK);
    assert_int_equal(list.count, 201);
    assert_true(v2 > v1);
    /* Sorted by key: domain results after site results. */
    assert_int_equal(list.items[200]->type, IBP_CHECK_DOMAIN);
    ibp_result_list_free(&list);
    assert_int_equal(ibp_store_local_changed_since(s, v2, &list, &v1), IBP_OK);
    assert_int_equal(list.count, 0);
    assert_int_equal(v1, v2);
    ibp_result_list_free(&list);
    ibp_result *r;
    assert_int_equal(ibp_store_local_get(s, &k4, &r), IBP_OK);
    assert_true(r->up);
    ibp_result_free(r);
    assert_int_equal(ibp_store_local_get(s, &k6, &r), IBP_E_NOT_FOUND);
    ibp_store_free(s);
}

/* Keeps the results of even-numbered members only. */
static bool keep_even(const ibp_result *r, void *user)
{
    int *calls = user;
    (*calls)++;
    return (atoi(r->member + 1) % 2) == 0;
}

static void test_local_retain(void **state)
{
    (void)state;
    ibp_store *s = new_store(NULL, NULL);
    for (int i = 0; i < 100; i++) {
        char member[32];
        snprintf(member, sizeof member, "M%03d", i);
        local(s, site("ping", member, true, true, i));
    }
    ibp_result_list list = {0};
    uint64_t v1 = 0, v2 = 0;
    assert_int_equal(ibp_store_local_changed_since(s, 0, &list, &v1), IBP_OK);
    ibp_result_list_free(&list);
    int calls = 0;
    size_t removed = 0;
    assert_int_equal(ibp_store_local_retain(s, keep_even, &calls, &removed), IBP_OK);
    assert_int_equal(calls, 100);
    assert_int_equal(removed, 50);
    assert_int_equal(ibp_store_local_all(s, &list), IBP_OK);
    assert_int_equal(list.count, 50);
    for (size_t i = 0; i < list.count; i++)
        assert_int_equal(atoi(list.items[i]->member + 1) % 2, 0);
    ibp_result_list_free(&list);
    /* What stays is still found by key, and the table takes new keys. */
    bool found = false, up = false;
    ibp_result_key k = {IBP_CHECK_SITE, "ping", "M042", NULL, NULL, true};
    ibp_store_local_status(s, &k, &found, &up);
    assert_true(found);
    k.member = "M043";
    ibp_store_local_status(s, &k, &found, &up);
    assert_false(found);
    local(s, site("ping", "M043", true, true, 7));
    ibp_store_local_status(s, &k, &found, &up);
    assert_true(found);
    assert_int_equal(ibp_store_local_changed_since(s, v1, &list, &v2), IBP_OK);
    assert_int_equal(list.count, 1); /* only the new one changed since */
    ibp_result_list_free(&list);
    assert_int_equal(ibp_store_local_retain(s, NULL, NULL, &removed), IBP_E_INVAL);
    ibp_store_free(s);
}

static void test_many_official_keys(void **state)
{
    (void)state;
    ibp_store *s = new_store(NULL, NULL);
    enum { N = 5000 };
    ibp_result **rs = calloc(N, sizeof *rs);
    char url[128], member[32];
    ibp_err err;
    for (int i = 0; i < N; i++) {
        snprintf(member, sizeof member, "member-%d", i % 50);
        snprintf(url, sizeof url, "wss://d%d.example/x%d", i % 97, i);
        char domain[64];
        snprintf(domain, sizeof domain, "d%d.example", i % 97);
        rs[i] = ep("wss", member, domain, url, i % 2, i % 7 != 0, i);
    }
    assert_int_equal(ibp_store_set_official(s, (const ibp_result *const *)rs, N, 1, false, &err),
                     IBP_OK);
    assert_int_equal(ibp_store_official_count(s), N);
    for (int i = 0; i < N; i++) {
        bool found, up;
        ibp_result_key k = ibp_result_key_of(rs[i]);
        ibp_store_official_status(s, &k, &found, &up);
        assert_true(found);
        assert_int_equal(up, rs[i]->up);
        /* Member status agrees with a brute-force answer. */
        bool expect = true;
        for (int j = i % 97; j < N; j += 97)
            if (strcmp(rs[j]->member, rs[i]->member) == 0 && rs[j]->ipv6 == rs[i]->ipv6 &&
                !rs[j]->up)
                expect = false;
        assert_int_equal(ibp_store_member_online(s, rs[i]->domain, rs[i]->member, rs[i]->ipv6),
                         expect);
    }
    for (int i = 0; i < N; i++)
        ibp_result_free(rs[i]);
    free(rs);
    ibp_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_store),
        cmocka_unit_test(test_site_down_is_per_family),
        cmocka_unit_test(test_domain_and_endpoint_down),
        cmocka_unit_test(test_group_replaces_member_result),
        cmocka_unit_test(test_deep_copies_are_independent),
        cmocka_unit_test(test_events_on_official_changes),
        cmocka_unit_test(test_set_official_snapshot),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_network_members),
        cmocka_unit_test(test_local_store),
        cmocka_unit_test(test_local_retain),
        cmocka_unit_test(test_many_official_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
