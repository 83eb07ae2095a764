/*
 * Unit tests: every limit of docs/limits.md, at the limit and one past it.
 * Message size (seal and verify), observations per batch (monitor split,
 * engine), keys per monitor and in total (engine, deterministic), string
 * caps where results enter (ibp_result_new, network config) and where they
 * arrive from the bus (LOCAL conversion + engine, official snapshot), and the
 * usage key limit (overflow rows, early flush).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ibp/envelope.h"
#include "ibp/key.h"
#include "ibp/local_msg.h"
#include "ibp/monitor_publisher.h"
#include "ibp/network.h"
#include "ibp/node_config.h"
#include "ibp/official_snapshot.h"
#include "ibp/result.h"
#include "ibp/roster.h"
#include "ibp/usage.h"
#include "ibp/vote.h"
#include "test_util.h"

#define T0 INT64_C(1714521600000) /* 2024-05-01T00:00:00Z */

/* A malloc'd string of n copies of c. */
static char *filled(size_t n, char c)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void assert_err_has(const ibp_err *err, const char *needle)
{
    if (!strstr(err->msg, needle))
        fail_msg("error \"%s\" does not contain \"%s\"", err->msg, needle);
}

/* ---- message size ---------------------------------------------------------------------------- */

/* Envelope size as seal measures it: widest sequence number, full signature. */
static size_t envelope_bound(const char *signer, size_t payload_len)
{
    static uint8_t sig[IBP_SIGNATURE_BYTES];
    Ibp__V1__Envelope env = IBP__V1__ENVELOPE__INIT;
    env.signer = (char *)signer;
    env.seq = UINT64_MAX;
    env.created_ms = T0;
    env.type = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT;
    env.payload.len = payload_len;
    env.signature.data = sig;
    env.signature.len = sizeof sig;
    return ibp__v1__envelope__get_packed_size(&env);
}

static void test_message_size_seal(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    ibp_key key;
    ibp_signer *s = NULL;
    ibp_err err;
    test_path(path, sizeof path, dir, "signer.seq");
    assert_int_equal(ibp_key_generate(&key), IBP_OK);
    assert_int_equal(ibp_signer_new("mon1", &key, path, &s, &err), IBP_OK);

    /* The largest payload whose envelope still fits. */
    size_t at = IBP_MESSAGE_MAX_DEFAULT;
    while (envelope_bound("mon1", at) > IBP_MESSAGE_MAX_DEFAULT)
        at--;
    assert_true(envelope_bound("mon1", at + 1) > IBP_MESSAGE_MAX_DEFAULT);
    uint8_t *payload = calloc(1, at + 1);
    assert_non_null(payload);
    uint8_t *out = NULL;
    size_t out_len = 0;
    uint64_t seq = 0;
    assert_int_equal(ibp_signer_seal_bytes(s, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT,
                                           payload, at, T0, &out, &out_len, &seq, &err),
                     IBP_OK);
    assert_true(out_len <= IBP_MESSAGE_MAX_DEFAULT);
    assert_int_equal(seq, 1);
    free(out);
    out = NULL;
    /* One byte more: refused with a clear error, no sequence number spent. */
    assert_int_equal(ibp_signer_seal_bytes(s, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT,
                                           payload, at + 1, T0, &out, &out_len, &seq, &err),
                     IBP_E_TOO_LARGE);
    assert_null(out);
    assert_err_has(&err, "over the message limit of 8388608 bytes");
    assert_int_equal(ibp_signer_seal_bytes(s, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT,
                                           payload, 1, T0, &out, &out_len, &seq, &err),
                     IBP_OK);
    assert_int_equal(seq, 2);
    free(out);
    free(payload);
    ibp_signer_free(s);
    test_rmdir(dir);
}

static void test_message_size_verify(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    ibp_key key;
    ibp_signer *s = NULL;
    ibp_roster *roster = NULL;
    ibp_err err;
    test_path(path, sizeof path, dir, "signer.seq");
    assert_int_equal(ibp_key_generate(&key), IBP_OK);
    assert_int_equal(ibp_roster_new(&roster), IBP_OK);
    assert_int_equal(ibp_roster_add(roster, "mon1", key.pk, IBP_ROLE_MONITOR, &err), IBP_OK);
    assert_int_equal(ibp_signer_new("mon1", &key, path, &s, &err), IBP_OK);
    Ibp__V1__Heartbeat hb = IBP__V1__HEARTBEAT__INIT;
    uint8_t *msg = NULL;
    size_t len = 0;
    assert_int_equal(ibp_signer_seal(s, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT, &hb.base, T0,
                                     &msg, &len, NULL, &err),
                     IBP_OK);
    for (int past = 0; past < 2; past++) {
        ibp_verifier_opts vo;
        ibp_verifier_opts_init(&vo);
        vo.max_message_bytes = len - (size_t)past;
        ibp_verifier *v = NULL;
        assert_int_equal(ibp_verifier_new(roster, &vo, &v), IBP_OK);
        ibp_verified vm = {0};
        ibp_status st = ibp_verifier_check(v, msg, len, &vm, &err);
        if (past) {
            assert_int_equal(st, IBP_E_TOO_LARGE);
            assert_int_equal(ibp_verifier_rejected(v, IBP_E_TOO_LARGE), 1);
            assert_err_has(&err, "over the message limit");
        } else {
            assert_int_equal(st, IBP_OK);
        }
        ibp_verified_clear(&vm);
        ibp_verifier_free(v);
    }
    free(msg);
    ibp_signer_free(s);
    ibp_roster_free(roster);
    test_rmdir(dir);
}

/* ---- observations per batch: the monitor splits ---------------------------------------------- */

static void test_monitor_split(void **state)
{
    (void)state;
    enum { MAX = 3, N = 2 * MAX + 1 };
    ibp_result *rs[N];
    ibp_err err;
    for (size_t i = 0; i < N; i++) {
        char member[16];
        snprintf(member, sizeof member, "m%zu", i);
        ibp_result_key k = {IBP_CHECK_SITE, "ping", member, NULL, NULL, false};
        assert_int_equal(ibp_result_new(&k, true, T0, "", "", &rs[i], &err), IBP_OK);
    }
    const ibp_result *const *r = (const ibp_result *const *)rs;
    /* At the limit: one batch; one past: the first batch holds the limit. */
    assert_int_equal(ibp_observation_batch_split(r, MAX, MAX, 0), MAX);
    assert_int_equal(ibp_observation_batch_split(r, MAX + 1, MAX, 0), MAX);
    /* Every result goes out, in batches of at most MAX: 3 + 3 + 1. */
    size_t done = 0, batches = 0;
    while (done < N) {
        size_t n = ibp_observation_batch_split(r + done, N - done, MAX, 0);
        assert_true(n >= 1 && n <= MAX);
        done += n;
        batches++;
    }
    assert_int_equal(done, N);
    assert_int_equal(batches, 3);
    /* The monitor's batches always fit the engine's smallest allowed limit. */
    ibp_vote_config cfg;
    ibp_vote_config_init(&cfg);
    assert_true(IBP_MONITOR_MAX_BATCH_OBS_DEFAULT <= cfg.max_batch_obs);
    for (size_t i = 0; i < N; i++)
        ibp_result_free(rs[i]);
}

/* ---- the vote engine: batch size, keys per monitor, total keys ------------------------------- */

typedef struct run {
    ibp_vote *e;
    uint64_t seq;
} run;

/* Applies a batch of n site keys "k<first>".."k<first+n-1>" from signer. */
static ibp_vote_rc batch(run *r, const char *signer, size_t first, size_t n)
{
    ibp_vote_obs *o = calloc(n, sizeof *o);
    char(*names)[16] = calloc(n, sizeof *names);
    assert_true(o && names);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "k%zu", first + i);
        o[i].key = (ibp_vote_key){IBP_VOTE_SITE, "ping", names[i], NULL, NULL, false};
        o[i].status = IBP_VOTE_UP;
        o[i].check_time_ms = T0;
    }
    r->seq++;
    ibp_vote_msg m = {.kind = IBP_VOTE_MSG_OBSERVATION_BATCH,
                      .signer = signer,
                      .local_seq = r->seq,
                      .stream_ms = T0 + (int64_t)r->seq,
                      .batch_seq = r->seq,
                      .obs = o,
                      .nobs = n};
    ibp_vote_update u;
    ibp_vote_rc rc = ibp_vote_apply(r->e, &m, &u);
    free(o);
    free(names);
    return rc;
}

static void expect_limit(run *r, ibp_vote_rc rc, const char *needle)
{
    assert_int_equal(rc, IBP_VOTE_E_LIMIT);
    if (!strstr(ibp_vote_last_error(r->e), needle))
        fail_msg("engine error \"%s\" does not contain \"%s\"", ibp_vote_last_error(r->e), needle);
}

/* One replica's run; returns the digest after it. */
static void engine_run(uint8_t digest[IBP_VOTE_DIGEST_SIZE], size_t *keys)
{
    ibp_vote_config cfg;
    ibp_vote_config_init(&cfg);
    cfg.max_batch_obs = 4;
    cfg.max_keys_per_node = 6;
    cfg.max_keys = 8;
    run r = {0};
    assert_int_equal(ibp_vote_new(&cfg, &r.e), IBP_VOTE_OK);
    /* Batch size: 4 is taken, 5 refused whole. */
    assert_int_equal(batch(&r, "m1", 0, 4), IBP_VOTE_OK);
    expect_limit(&r, batch(&r, "m1", 100, 5), "has 5 observations, limit 4");
    /* Keys per monitor: m1 holds 4; 2 more reach 6, one more is refused. */
    assert_int_equal(batch(&r, "m1", 4, 2), IBP_VOTE_OK);
    expect_limit(&r, batch(&r, "m1", 6, 1), "would hold 7 keys, limit 6");
    /* Known keys do not count again. */
    assert_int_equal(batch(&r, "m1", 0, 4), IBP_VOTE_OK);
    /* Total keys: 6 held; m2 adds 2 to reach 8; m3 adding one more is refused. */
    assert_int_equal(batch(&r, "m2", 6, 2), IBP_VOTE_OK);
    expect_limit(&r, batch(&r, "m3", 8, 1), "more than 8 keys");
    /* A refused batch changed nothing: m3's known keys still go in. */
    assert_int_equal(batch(&r, "m3", 0, 2), IBP_VOTE_OK);
    ibp_vote_info info;
    ibp_vote_get_info(r.e, &info);
    assert_int_equal(info.keys, 8);
    assert_int_equal(info.local_seq, r.seq); /* refused messages are consumed too */
    memcpy(digest, info.digest, IBP_VOTE_DIGEST_SIZE);
    *keys = info.keys;
    ibp_vote_free(r.e);
}

static void test_engine_limits(void **state)
{
    (void)state;
    uint8_t d1[IBP_VOTE_DIGEST_SIZE], d2[IBP_VOTE_DIGEST_SIZE];
    size_t k1, k2;
    engine_run(d1, &k1);
    engine_run(d2, &k2);
    /* Two replicas make the same decisions and hold the same state. */
    assert_int_equal(k1, k2);
    assert_memory_equal(d1, d2, IBP_VOTE_DIGEST_SIZE);
    assert_memory_not_equal(d1, ibp_vote_empty_digest, IBP_VOTE_DIGEST_SIZE);
}

/* ---- string caps where results enter -----------------------------------------------------------
 */

static void expect_result(ibp_result_key k, const char *error, const char *data, ibp_status want,
                          const char *needle)
{
    ibp_result *r = NULL;
    ibp_err err;
    ibp_err_clear(&err);
    ibp_status st = ibp_result_new(&k, true, T0, error, data, &r, &err);
    if (st != want)
        fail_msg("ibp_result_new: got %s, want %s (%s)", ibp_status_name(st), ibp_status_name(want),
                 err.msg);
    if (needle)
        assert_err_has(&err, needle);
    ibp_result_free(r);
}

/* A JSON object of exactly n bytes: {"x":"yyy..."} */
static char *json_of(size_t n)
{
    char *s = filled(n, 'y');
    memcpy(s, "{\"x\":\"", 6);
    memcpy(s + n - 2, "\"}", 2);
    return s;
}

static void test_result_strings(void **state)
{
    (void)state;
    char *name = filled(IBP_NAME_MAX + 1, 'n');
    char *dom = filled(IBP_DOMAIN_MAX + 1, 'd');
    char *url = filled(IBP_URL_MAX + 1, 'u');
    for (int past = 0; past < 2; past++) {
        ibp_status want = past ? IBP_E_TOO_LARGE : IBP_OK;
        name[IBP_NAME_MAX + past] = '\0';
        dom[IBP_DOMAIN_MAX + past] = '\0';
        url[IBP_URL_MAX + past] = '\0';
        expect_result((ibp_result_key){IBP_CHECK_SITE, name, "m", NULL, NULL, false}, "", "", want,
                      past ? "check name of 256 bytes is over the limit of 255" : NULL);
        expect_result((ibp_result_key){IBP_CHECK_SITE, "c", name, NULL, NULL, false}, "", "", want,
                      past ? "member of 256 bytes is over the limit of 255" : NULL);
        expect_result((ibp_result_key){IBP_CHECK_DOMAIN, "c", "m", dom, NULL, false}, "", "", want,
                      past ? "domain of 254 bytes is over the limit of 253" : NULL);
        expect_result((ibp_result_key){IBP_CHECK_ENDPOINT, "c", "m", "d", url, false}, "", "", want,
                      past ? "endpoint URL of 2049 bytes is over the limit of 2048" : NULL);
        char *data = json_of(IBP_DATA_MAX + (size_t)past);
        expect_result((ibp_result_key){IBP_CHECK_SITE, "c", "m", NULL, NULL, false}, "", data, want,
                      past ? "65537 bytes of JSON is over the limit of 65536" : NULL);
        free(data);
        name[IBP_NAME_MAX + past] = 'n';
        dom[IBP_DOMAIN_MAX + past] = 'd';
        url[IBP_URL_MAX + past] = 'u';
    }
    /* Error texts are cut at the limit, not refused. */
    for (int past = 0; past < 2; past++) {
        char *error = filled(IBP_ERROR_MAX + (size_t)past, 'e');
        ibp_result_key k = {IBP_CHECK_SITE, "c", "m", NULL, NULL, false};
        ibp_result *r = NULL;
        ibp_err err;
        assert_int_equal(ibp_result_new(&k, false, T0, error, "", &r, &err), IBP_OK);
        assert_int_equal(strlen(r->error), IBP_ERROR_MAX);
        ibp_result_free(r);
        free(error);
    }
    free(name);
    free(dom);
    free(url);
}

static ibp_status load_members(const char *member, ibp_err *err)
{
    char *text = malloc(strlen(member) + 200);
    assert_non_null(text);
    sprintf(text,
            "{\"%s\": {\"Details\": {\"Name\": \"M\"}, \"Membership\": {\"MemberLevel\": 3}, "
            "\"Service\": {\"Active\": 1}}}",
            member);
    ibp_network *net = NULL;
    ibp_err_clear(err);
    ibp_status st = ibp_network_load_buffers(text, strlen(text), "{}", 2, NULL, 0, &net, err);
    ibp_network_free(net);
    free(text);
    return st;
}

static ibp_status load_check(const char *check, ibp_err *err)
{
    char *text = malloc(strlen(check) + 100);
    assert_non_null(text);
    sprintf(text, "{\"%s\": {\"CheckType\": \"site\"}}", check);
    ibp_network *net = NULL;
    ibp_err_clear(err);
    ibp_status st = ibp_network_load_buffers("{}", 2, "{}", 2, text, strlen(text), &net, err);
    ibp_network_free(net);
    free(text);
    return st;
}

static ibp_status load_url(const char *url, ibp_err *err)
{
    char *text = malloc(strlen(url) + 300);
    assert_non_null(text);
    sprintf(text,
            "{\"S\": {\"Configuration\": {\"Name\": \"S\", \"ServiceType\": \"RPC\", \"Active\": "
            "1, \"LevelRequired\": 3}, \"Providers\": {\"P\": {\"RpcUrls\": [\"%s\"]}}}}",
            url);
    ibp_network *net = NULL;
    ibp_err_clear(err);
    ibp_status st = ibp_network_load_buffers("{}", 2, text, strlen(text), NULL, 0, &net, err);
    ibp_network_free(net);
    free(text);
    return st;
}

static void test_network_strings(void **state)
{
    (void)state;
    ibp_err err;
    char *name = filled(IBP_NAME_MAX + 1, 'n');
    assert_int_equal(load_members(name, &err), IBP_E_CONFIG);
    assert_err_has(&err, "member name of 256 bytes is over the limit of 255 (IBP_NAME_MAX)");
    assert_int_equal(load_check(name, &err), IBP_E_CONFIG);
    assert_err_has(&err, "check name of 256 bytes is over the limit of 255 (IBP_NAME_MAX)");
    name[IBP_NAME_MAX] = '\0';
    if (load_members(name, &err) != IBP_OK || load_check(name, &err) != IBP_OK)
        fail_msg("a name at the limit was refused: %s", err.msg);
    free(name);

    /* wss://host/ then a path up to the URL limit. */
    char *url = filled(IBP_URL_MAX + 1, 'p');
    memcpy(url, "wss://h.example/", 16);
    assert_int_equal(load_url(url, &err), IBP_E_CONFIG);
    assert_err_has(&err, "of 2049 bytes is over the limit of 2048 (IBP_URL_MAX)");
    url[IBP_URL_MAX] = '\0';
    if (load_url(url, &err) != IBP_OK)
        fail_msg("a URL at the limit was refused: %s", err.msg);
    free(url);
}

/* ---- string caps where results arrive from the bus ------------------------------------------- */

/* Decodes a batch of one observation of member (expecting decode_st) and applies it. */
static ibp_vote_rc apply_wire_member(ibp_vote *e, uint64_t seq, const char *member,
                                     ibp_status decode_st)
{
    Ibp__V1__ResultKey key = IBP__V1__RESULT_KEY__INIT;
    key.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE;
    key.check_name = "ping";
    key.member = (char *)member;
    Ibp__V1__Observation ob = IBP__V1__OBSERVATION__INIT;
    ob.key = &key;
    ob.status = IBP__V1__STATUS__STATUS_UP;
    ob.check_time_ms = T0;
    Ibp__V1__Observation *obs[] = {&ob};
    Ibp__V1__ObservationBatch b = IBP__V1__OBSERVATION_BATCH__INIT;
    b.batch_seq = seq;
    b.n_observations = 1;
    b.observations = obs;
    Ibp__V1__Envelope env = IBP__V1__ENVELOPE__INIT;
    env.signer = "mon1";
    env.seq = seq;
    env.type = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH;
    ibp_roster_node node = {.roles = IBP_ROLE_MONITOR};
    snprintf(node.id, sizeof node.id, "mon1");
    ibp_verified vm = {.envelope = &env, .payload = &b.base, .signer = &node};
    ibp_vote_msg m;
    ibp_vote_obs *o = NULL;
    assert_int_equal(ibp_local_msg_from_verified(&vm, seq, T0 + (int64_t)seq, &m, &o), decode_st);
    if (decode_st != IBP_OK)
        return IBP_VOTE_E_INVAL; /* refused whole before the engine, as the engine would */
    ibp_vote_update u;
    ibp_vote_rc rc = ibp_vote_apply(e, &m, &u);
    free(o);
    return rc;
}

static void test_local_strings(void **state)
{
    (void)state;
    ibp_vote_config cfg;
    ibp_vote_config_init(&cfg);
    ibp_vote *e = NULL;
    assert_int_equal(ibp_vote_new(&cfg, &e), IBP_VOTE_OK);
    char *member = filled(IBP_VOTE_NAME_MAX + 1, 'm');
    /* The ObservationBatch codec refuses it (IBP_E_TOO_LARGE)... */
    assert_int_equal(apply_wire_member(e, 1, member, IBP_E_TOO_LARGE), IBP_VOTE_E_INVAL);
    /* ...and so does the engine, given it directly. */
    ibp_vote_obs ob = {{IBP_VOTE_SITE, "ping", member, "", "", false}, IBP_VOTE_UP, T0, "", ""};
    ibp_vote_msg vmsg = {.kind = IBP_VOTE_MSG_OBSERVATION_BATCH,
                         .signer = "mon1",
                         .local_seq = 1,
                         .stream_ms = T0 + 1,
                         .obs = &ob,
                         .nobs = 1};
    ibp_vote_update u;
    assert_int_equal(ibp_vote_apply(e, &vmsg, &u), IBP_VOTE_E_INVAL);
    if (!strstr(ibp_vote_last_error(e), "LOCAL 1 observation 0: member of 256 bytes is over the "
                                        "limit of 255 (IBP_NAME_MAX)"))
        fail_msg("engine error: %s", ibp_vote_last_error(e));
    member[IBP_VOTE_NAME_MAX] = '\0';
    assert_int_equal(apply_wire_member(e, 2, member, IBP_OK), IBP_VOTE_OK);
    free(member);
    ibp_vote_free(e);
}

/* The engine votes on a key with every field at its cap and refuses one byte more in any. */
static void test_local_key_caps(void **state)
{
    (void)state;
    ibp_vote_config cfg;
    ibp_vote_config_init(&cfg);
    cfg.quorum_min = 1;
    ibp_vote *e = NULL;
    assert_int_equal(ibp_vote_new(&cfg, &e), IBP_VOTE_OK);
    char *check = filled(IBP_NAME_MAX + 1, 'c');
    char *member = filled(IBP_NAME_MAX + 1, 'm');
    char *domain = filled(IBP_DOMAIN_MAX + 1, 'd');
    for (size_t i = 63; i < IBP_DOMAIN_MAX + 1; i += 64)
        domain[i] = '.'; /* labels of 63 */
    char *url = filled(IBP_URL_MAX + 1, 'u');
    char *error = filled(IBP_ERROR_MAX + 1, 'e');
    char *fields[] = {check, member, domain, url, error};
    static const size_t caps[] = {IBP_NAME_MAX, IBP_NAME_MAX, IBP_DOMAIN_MAX, IBP_URL_MAX,
                                  IBP_ERROR_MAX};
    static const char *const want[] = {
        "check name of 256 bytes is over the limit of 255 (IBP_NAME_MAX)",
        "member of 256 bytes is over the limit of 255 (IBP_NAME_MAX)",
        "domain of 254 bytes is over the limit of 253 (IBP_DOMAIN_MAX)",
        "endpoint URL of 2049 bytes is over the limit of 2048 (IBP_URL_MAX)",
        "error text of 4097 bytes is over the limit of 4096 (IBP_ERROR_MAX)",
    };
    for (size_t f = 0; f < 5; f++)
        fields[f][caps[f]] = '\0';
    uint64_t seq = 0;
    for (size_t f = 0; f < 6; f++) {
        if (f < 5)
            fields[f][caps[f]] = f == 2 ? 'd' : 'x'; /* this one a byte over */
        ibp_vote_obs ob = {
            {IBP_VOTE_ENDPOINT, check, member, domain, url, false}, IBP_VOTE_DOWN, T0, error, ""};
        ibp_vote_msg vmsg = {.kind = IBP_VOTE_MSG_OBSERVATION_BATCH,
                             .signer = "mon1",
                             .local_seq = ++seq,
                             .stream_ms = T0 + (int64_t)seq,
                             .obs = &ob,
                             .nobs = 1};
        ibp_vote_update u;
        ibp_vote_rc rc = ibp_vote_apply(e, &vmsg, &u);
        if (f < 5) {
            assert_int_equal(rc, IBP_VOTE_E_INVAL);
            if (!strstr(ibp_vote_last_error(e), want[f]))
                fail_msg("engine error: '%s', want '%s'", ibp_vote_last_error(e), want[f]);
            fields[f][caps[f]] = '\0';
        } else {
            assert_int_equal(rc, IBP_VOTE_OK); /* all at the cap */
        }
    }
    for (size_t f = 0; f < 5; f++)
        free(fields[f]);
    ibp_vote_free(e);
}

static ibp_status decode_snapshot(const char *member, bool as_override, ibp_err *err)
{
    char *strings[] = {"", "ping", (char *)member, "maintenance"};
    Ibp__V1__SnapshotEntry en = IBP__V1__SNAPSHOT_ENTRY__INIT;
    en.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE;
    en.check_name = 1;
    en.member = 2;
    en.status = IBP__V1__STATUS__STATUS_UP;
    Ibp__V1__SnapshotEntry *entries[] = {&en};
    Ibp__V1__SnapshotOverride ov = IBP__V1__SNAPSHOT_OVERRIDE__INIT;
    ov.member = 2;
    ov.disabled = true;
    ov.reason = 3;
    Ibp__V1__SnapshotOverride *ovs[] = {&ov};
    Ibp__V1__OfficialSnapshot s = IBP__V1__OFFICIAL_SNAPSHOT__INIT;
    s.epoch = 7;
    s.n_strings = 4;
    s.strings = strings;
    if (as_override) {
        s.n_overrides = 1;
        s.overrides = ovs;
    } else {
        s.n_entries = 1;
        s.entries = entries;
    }
    ibp_official_snapshot out;
    ibp_err_clear(err);
    ibp_status st = ibp_official_snapshot_from_proto(&s, &out, err);
    if (st == IBP_OK)
        ibp_official_snapshot_clear(&out);
    return st;
}

static void test_snapshot_strings(void **state)
{
    (void)state;
    ibp_err err;
    char *member = filled(IBP_NAME_MAX + 1, 'm');
    for (int as_override = 0; as_override < 2; as_override++) {
        member[IBP_NAME_MAX] = 'm';
        assert_int_equal(decode_snapshot(member, as_override, &err), IBP_E_TOO_LARGE);
        assert_err_has(&err, "member of 256 bytes is over the limit of 255");
        member[IBP_NAME_MAX] = '\0';
        if (decode_snapshot(member, as_override, &err) != IBP_OK)
            fail_msg("a member at the limit was refused: %s", err.msg);
    }
    free(member);
}

/* ---- usage keys --------------------------------------------------------------------------------
 */

typedef struct usage_sink {
    size_t rows;
    size_t overflow_rows; /* country "??" */
    uint64_t hits;
} usage_sink;

static ibp_status sink_deliver(void *ctx, const Ibp__V1__HitBatch *b, const uint8_t *packed,
                               size_t len, ibp_err *err)
{
    usage_sink *k = ctx;
    (void)packed;
    (void)len;
    (void)err;
    for (size_t i = 0; i < b->n_rows; i++) {
        k->rows++;
        k->hits += b->rows[i]->hits;
        k->overflow_rows += strcmp(b->rows[i]->country_code, "??") == 0 &&
                            strcmp(b->rows[i]->domain, "d4.example") == 0;
    }
    return IBP_OK;
}

static int64_t fixed_clock(void *user)
{
    return *(const int64_t *)user;
}

static void test_usage_keys(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    usage_sink k = {0};
    ibp_usage_sink sink = {.deliver = sink_deliver, .ctx = &k};
    int64_t now = T0 + 1000;
    ibp_usage_opts o;
    ibp_usage_opts_init(&o);
    o.node_id = "dns1";
    o.work_dir = dir;
    o.sink = &sink;
    o.max_keys = 4;
    o.clock = fixed_clock;
    o.clock_user = &now;
    ibp_usage *u = NULL;
    ibp_err err;
    ibp_usage_stats st;
    assert_int_equal(ibp_usage_open(&o, &u, &err), IBP_OK);
    char dom[32];
    /* At the limit: four keys of their own, nothing due early. */
    for (int i = 0; i < 4; i++) {
        snprintf(dom, sizeof dom, "d%d.example", i);
        assert_int_equal(ibp_usage_record_dns_hit(u, false, "192.0.2.1", dom, "m"), IBP_OK);
    }
    ibp_usage_stats_get(u, &st);
    assert_int_equal(st.keys, 4);
    assert_int_equal(st.overflow_hits, 0);
    assert_true(ibp_usage_next_due_ms(u) > 0);
    assert_int_equal(ibp_usage_tick(u, &err), IBP_OK);
    ibp_usage_stats_get(u, &st);
    assert_int_equal(st.early_flushes, 0);
    assert_int_equal(st.flushes, 0);
    /* One past: counted in an overflow row (country ??), an early flush is due now. */
    assert_int_equal(ibp_usage_record_dns_hit(u, false, "192.0.2.1", "d4.example", "m"), IBP_OK);
    assert_int_equal(ibp_usage_record_dns_hit(u, false, "192.0.2.1", "d4.example", "m"), IBP_OK);
    ibp_usage_stats_get(u, &st);
    assert_int_equal(st.hits, 6);
    assert_int_equal(st.overflow_hits, 2);
    assert_int_equal(ibp_usage_next_due_ms(u), 0);
    assert_int_equal(ibp_usage_tick(u, &err), IBP_OK);
    ibp_usage_stats_get(u, &st);
    assert_int_equal(st.early_flushes, 1);
    assert_int_equal(st.flushes, 1);
    assert_int_equal(st.keys, 0);
    assert_int_equal(k.hits, 6); /* no count lost */
    assert_int_equal(k.rows, 5);
    assert_int_equal(k.overflow_rows, 1);
    /* With the tables empty, a new key has a row of its own again. */
    assert_int_equal(ibp_usage_record_dns_hit(u, false, "192.0.2.1", "d5.example", "m"), IBP_OK);
    ibp_usage_stats_get(u, &st);
    assert_int_equal(st.overflow_hits, 2);
    assert_true(ibp_usage_next_due_ms(u) > 0);
    assert_int_equal(ibp_usage_close(u, &err), IBP_OK);
    assert_int_equal(k.hits, 7);
    test_rmdir(dir);
}

/* ---- the settings -----------------------------------------------------------------------------
 */

/* The example config with one "key": value replaced; loads it. */
static ibp_status load_with(const char *key, const char *from, const char *to, ibp_node_config *cfg,
                            ibp_err *err)
{
    FILE *f = fopen(IBP_SOURCE_DIR "/deploy/systemd/node.example.json", "rb");
    assert_non_null(f);
    char text[8192], out[8300], pat[128];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    snprintf(pat, sizeof pat, "\"%s\": %s", key, from);
    char *at = strstr(text, pat);
    assert_non_null(at);
    snprintf(out, sizeof out, "%.*s\"%s\": %s%s", (int)(at - text), text, key, to,
             at + strlen(pat));
    ibp_err_clear(err);
    return ibp_node_config_load_buffer(out, strlen(out), "test", cfg, err);
}

static void test_settings(void **state)
{
    (void)state;
    ibp_node_config cfg;
    ibp_err err;
    assert_int_equal(load_with("max_batch_obs", "65536", "5000", &cfg, &err), IBP_OK);
    assert_int_equal(cfg.consensus.max_batch_obs, 5000);
    assert_int_equal(cfg.consensus.max_keys_per_node, 250000);
    assert_int_equal(cfg.consensus.max_keys, 250000);
    assert_int_equal(cfg.usage.max_keys, 1048576);
    ibp_node_config_free(&cfg);
    /* Below what a monitor puts in one batch. */
    assert_int_equal(load_with("max_batch_obs", "65536", "4999", &cfg, &err), IBP_E_CONFIG);
    assert_err_has(&err, "consensus.max_batch_obs");
    assert_int_equal(load_with("max_keys_per_node", "250000", "100000", &cfg, &err), IBP_OK);
    ibp_node_config_free(&cfg);
    assert_int_equal(load_with("max_keys_per_node", "250000", "250001", &cfg, &err), IBP_E_CONFIG);
    assert_err_has(&err, "is over consensus.max_keys");
    assert_int_equal(load_with("max_keys", "1048576", "1024", &cfg, &err), IBP_OK);
    assert_int_equal(cfg.usage.max_keys, 1024);
    ibp_node_config_free(&cfg);
    assert_int_equal(load_with("max_keys", "1048576", "1023", &cfg, &err), IBP_E_CONFIG);
    assert_err_has(&err, "usage.max_keys");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_size_seal), cmocka_unit_test(test_message_size_verify),
        cmocka_unit_test(test_monitor_split),     cmocka_unit_test(test_engine_limits),
        cmocka_unit_test(test_result_strings),    cmocka_unit_test(test_network_strings),
        cmocka_unit_test(test_local_strings),     cmocka_unit_test(test_local_key_caps),
        cmocka_unit_test(test_snapshot_strings),  cmocka_unit_test(test_usage_keys),
        cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
