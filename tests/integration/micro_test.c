/*
 * The NATS micro-service responder (ibp/micro.h, ADR-32):
 *
 *   - the documents without a connection: PING, INFO and STATS carry every
 *     required field, the endpoint counters follow ibp_micro_record, STATS
 *     "data" comes from stats_fn, and the subject matching takes the three
 *     forms ($SRV.V, $SRV.V.<name>, $SRV.V.<name>.<id>) and nothing else;
 *   - a real ibp-node (monitor and consensus) on a private nats-server answers
 *     $SRV.PING, $SRV.INFO and $SRV.STATS in all three subject forms, with the
 *     required fields and its own figures in STATS "data".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ibp/clock.h"
#include "ibp/bus.h"
#include "ibp/key.h"
#include "ibp/micro.h"
#include "ibp/roster.h"
#include "testenv.h"

#define WAIT_MS 15000

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

static json_t *parse(const char *body)
{
    json_error_t jerr;
    json_t *j = json_loads(body, 0, &jerr);
    if (j == NULL)
        fail_msg("not JSON: %s (%s)", body, jerr.text);
    return j;
}

static void want_string(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail_msg("field %s missing or not a string", key);
}

static void want_integer(json_t *o, const char *key)
{
    if (!json_is_integer(json_object_get(o, key)))
        fail_msg("field %s missing or not an integer", key);
}

/* Every ADR-32 required field of a response of verb, for service name. */
static void check_doc(json_t *d, const char *verb, const char *name)
{
    char type[64];
    snprintf(type, sizeof type, "io.nats.micro.v1.%s_response",
             strcmp(verb, "PING") == 0   ? "ping"
             : strcmp(verb, "INFO") == 0 ? "info"
                                         : "stats");
    assert_string_equal(json_string_value(json_object_get(d, "type")), type);
    assert_string_equal(json_string_value(json_object_get(d, "name")), name);
    want_string(d, "id");
    assert_true(strlen(json_string_value(json_object_get(d, "id"))) >= 1);
    want_string(d, "version");
    assert_true(strlen(json_string_value(json_object_get(d, "version"))) >= 5);
    assert_true(json_is_object(json_object_get(d, "metadata")));
    if (strcmp(verb, "INFO") == 0) {
        want_string(d, "description");
        json_t *eps = json_object_get(d, "endpoints");
        assert_true(json_is_array(eps));
        size_t i;
        json_t *e;
        json_array_foreach(eps, i, e)
        {
            want_string(e, "name");
            want_string(e, "subject");
        }
    } else if (strcmp(verb, "STATS") == 0) {
        const char *started = json_string_value(json_object_get(d, "started"));
        assert_non_null(started);
        /* RFC 3339 UTC: 2026-01-02T03:04:05.678Z */
        assert_true(strlen(started) >= 20);
        assert_int_equal(started[4], '-');
        assert_int_equal(started[10], 'T');
        assert_int_equal(started[strlen(started) - 1], 'Z');
        json_t *eps = json_object_get(d, "endpoints");
        assert_true(json_is_array(eps));
        size_t i;
        json_t *e;
        json_array_foreach(eps, i, e)
        {
            want_string(e, "name");
            want_string(e, "subject");
            want_integer(e, "num_requests");
            want_integer(e, "num_errors");
            want_string(e, "last_error");
            want_integer(e, "processing_time");
            want_integer(e, "average_processing_time");
        }
    }
}

/* ---- the documents, no connection ---------------------------------------- */

static void fill_stats(json_t *data, void *user)
{
    json_object_set_new(data, "answer", json_integer(*(int *)user));
}

static void test_documents(void **state)
{
    (void)state;
    int answer = 42;
    ibp_micro_opts o;
    ibp_micro_opts_init(&o);
    o.name = "svc-1";
    o.version = "1.2.3";
    o.description = "a test service";
    o.metadata[0][0] = "k";
    o.metadata[0][1] = "v";
    o.endpoints[0] = (ibp_micro_endpoint){"ask", "test.ask", "q"};
    o.endpoints[1] = (ibp_micro_endpoint){"tell", "test.tell", NULL};
    o.nendpoints = 2;
    o.stats_fn = fill_stats;
    o.stats_user = &answer;
    ibp_micro *m = NULL;
    ibp_err err = {0};
    must(ibp_micro_start(&o, &m, &err), &err);
    const char *id = ibp_micro_id(m);
    assert_int_equal(strlen(id), IBP_MICRO_ID_LEN);
    assert_int_equal(ibp_micro_endpoint_index(m, "tell"), 1);
    assert_int_equal(ibp_micro_endpoint_index(m, "nope"), -1);

    ibp_micro_record(m, 0, 1000, NULL);
    ibp_micro_record(m, 0, 3000, "bad \"request\"\n");
    ibp_micro_record(m, 7, 3000, "ignored");

    static const char *const verbs[] = {"PING", "INFO", "STATS"};
    for (int v = 0; v < 3; v++) {
        char *body = ibp_micro_response_json(m, verbs[v]);
        assert_non_null(body);
        json_t *d = parse(body);
        free(body);
        check_doc(d, verbs[v], "svc-1");
        assert_string_equal(json_string_value(json_object_get(d, "id")), id);
        assert_string_equal(json_string_value(json_object_get(d, "version")), "1.2.3");
        assert_string_equal(json_string_value(json_object_get(json_object_get(d, "metadata"), "k")),
                            "v");
        if (v == 1) {
            assert_string_equal(json_string_value(json_object_get(d, "description")),
                                "a test service");
            json_t *e0 = json_array_get(json_object_get(d, "endpoints"), 0);
            assert_string_equal(json_string_value(json_object_get(e0, "queue_group")), "q");
            json_t *e1 = json_array_get(json_object_get(d, "endpoints"), 1);
            assert_null(json_object_get(e1, "queue_group"));
        }
        if (v == 2) {
            json_t *e0 = json_array_get(json_object_get(d, "endpoints"), 0);
            assert_int_equal(json_integer_value(json_object_get(e0, "num_requests")), 2);
            assert_int_equal(json_integer_value(json_object_get(e0, "num_errors")), 1);
            assert_int_equal(json_integer_value(json_object_get(e0, "processing_time")), 4000);
            assert_int_equal(json_integer_value(json_object_get(e0, "average_processing_time")),
                             2000);
            assert_string_equal(json_string_value(json_object_get(e0, "last_error")),
                                "bad \"request\"?");
            json_t *e1 = json_array_get(json_object_get(d, "endpoints"), 1);
            assert_int_equal(json_integer_value(json_object_get(e1, "num_requests")), 0);
            assert_int_equal(
                json_integer_value(json_object_get(json_object_get(d, "data"), "answer")), 42);
        }
        json_decref(d);
    }
    assert_null(ibp_micro_response_json(m, "KILL"));

    char verb[16], subj[128];
    assert_true(ibp_micro_match(m, "$SRV.PING", verb, sizeof verb));
    assert_string_equal(verb, "PING");
    assert_true(ibp_micro_match(m, "$SRV.STATS.svc-1", verb, sizeof verb));
    assert_string_equal(verb, "STATS");
    snprintf(subj, sizeof subj, "$SRV.INFO.svc-1.%s", id);
    assert_true(ibp_micro_match(m, subj, verb, sizeof verb));
    assert_string_equal(verb, "INFO");
    assert_false(ibp_micro_match(m, "$SRV.INFO.svc-10", verb, sizeof verb));
    assert_false(ibp_micro_match(m, "$SRV.INFO.svc", verb, sizeof verb));
    assert_false(ibp_micro_match(m, "$SRV.INFO.svc-1.other", verb, sizeof verb));
    assert_false(ibp_micro_match(m, "$SRV.KILL", verb, sizeof verb));
    assert_false(ibp_micro_match(m, "test.ask", verb, sizeof verb));
    ibp_micro_stop(m);

    /* A second instance gets another id; bad options are refused. */
    ibp_micro *m2 = NULL;
    must(ibp_micro_start(&o, &m2, &err), &err);
    ibp_micro_opts bad = o;
    bad.name = "has space";
    ibp_micro *m3 = NULL;
    assert_int_equal(ibp_micro_start(&bad, &m3, &err), IBP_E_INVAL);
    bad = o;
    bad.version = "1";
    assert_int_equal(ibp_micro_start(&bad, &m3, &err), IBP_E_INVAL);
    assert_null(m3);
    ibp_micro_stop(m2);
}

/* ---- a real ibp-node ------------------------------------------------------ */

static ibp_testenv_private servers;
static char dir[1024];
static char logpath[1200];
static pid_t pid;

static void dump_log(void)
{
    char cmd[2600];
    snprintf(cmd, sizeof cmd, "echo '---- tail of %s'; tail -n 25 '%s'", logpath, logpath);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot show %s\n", logpath);
}

static json_t *request(natsConnection *nc, const char *subject)
{
    natsMsg *reply = NULL;
    natsStatus ns = NATS_TIMEOUT;
    /* The service subscribes once it has started: retry for a while. */
    for (int64_t end = ibp_clock_mono_ms() + WAIT_MS; ibp_clock_mono_ms() < end;) {
        ns = natsConnection_RequestString(&reply, nc, subject, "", 2000);
        if (ns == NATS_OK)
            break;
        sleep_ms(100);
    }
    if (ns != NATS_OK) {
        dump_log();
        fail_msg("no answer on %s: %s", subject, natsStatus_GetText(ns));
    }
    json_t *d = parse(natsMsg_GetData(reply));
    natsMsg_Destroy(reply);
    return d;
}

static void test_ibp_node(void **state)
{
    (void)state;
    ibp_err err = {0};
    assert_int_equal(ibp_crypto_init(), IBP_OK);
    assert_int_equal(ibp_testenv_mkdtemp(dir, sizeof dir), 0);
    assert_int_equal(ibp_testenv_private_start(&servers), 0);

    char path[1300];
    ibp_roster *roster = NULL;
    ibp_key k;
    must(ibp_roster_new(&roster), NULL);
    must(ibp_key_generate(&k), NULL);
    snprintf(path, sizeof path, "%s/key", dir);
    must(ibp_key_save(&k, path, &err), &err);
    must(ibp_roster_add(roster, "mon1", k.pk, IBP_ROLE_MONITOR | IBP_ROLE_CONSENSUS, &err), &err);
    ibp_key_wipe(&k);
    snprintf(path, sizeof path, "%s/roster.json", dir);
    must(ibp_roster_save(roster, path, &err), &err);
    ibp_roster_free(roster);

    /* A monitor and consensus node: its NATS user has the union of both roles. */
    char nats[2048];
    assert_int_equal(
        ibp_testenv_nats_json(&servers.env, IBP_TESTENV_NATS_MONITOR_CONSENSUS, nats, sizeof nats),
        0);
    snprintf(path, sizeof path, "%s/node.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"node\": {\"id\": \"mon1\", \"key_file\": \"%s/key\", \"roster_file\": "
            "\"%s/roster.json\", \"work_dir\": \"%s/work\", \"roles\": \"monitor,consensus\"},\n"
            " %s,\n"
            " \"network\": {\"members_file\": \"%s/tests/data/network/members.json\",\n"
            "             \"services_file\": \"%s/tests/data/network/services.json\"},\n"
            " \"intervals\": {\"publish_ms\": 150, \"refresh_ms\": 2000, \"heartbeat_ms\": 500},\n"
            " \"consensus\": {\"active_window_ms\": 20000, \"staleness_ms\": 6000,\n"
            "               \"quorum_min\": 2, \"expiry_ms\": 600000},\n"
            " \"log\": {\"level\": \"info\"}}\n",
            dir, dir, dir, nats, IBP_SOURCE_DIR, IBP_SOURCE_DIR);
    assert_int_equal(fclose(f), 0);
    snprintf(logpath, sizeof logpath, "%s/log", dir);
    char *argv[] = {(char *)IBP_NODE_BIN, "--config", path, NULL};
    pid = ibp_testenv_spawn(argv, logpath, NULL);
    assert_true(pid > 0);

    natsConnection *nc = NULL;
    must(ibp_bus_connect_url(servers.env.nats_auth_url, "micro-test", &nc, &err), &err);

    static const char *const verbs[] = {"PING", "INFO", "STATS"};
    char id[64] = "";
    for (int v = 0; v < 3; v++) {
        char subj[3][160];
        snprintf(subj[0], sizeof subj[0], "$SRV.%s", verbs[v]);
        snprintf(subj[1], sizeof subj[1], "$SRV.%s.ibp-node", verbs[v]);
        for (int form = 0; form < 3; form++) {
            if (form == 2)
                snprintf(subj[2], sizeof subj[2], "$SRV.%s.ibp-node.%s", verbs[v], id);
            json_t *d = request(nc, subj[form]);
            check_doc(d, verbs[v], "ibp-node");
            const char *got = json_string_value(json_object_get(d, "id"));
            if (id[0] == '\0')
                snprintf(id, sizeof id, "%s", got);
            assert_string_equal(got, id);
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(d, "metadata"), "node")), "mon1");
            if (strcmp(verbs[v], "STATS") == 0) {
                json_t *data = json_object_get(d, "data");
                assert_true(json_is_object(data));
                assert_string_equal(json_string_value(json_object_get(data, "node")), "mon1");
                json_t *pub = json_object_get(data, "publisher");
                assert_true(json_is_object(pub));
                want_integer(pub, "batches_published");
                json_t *rep = json_object_get(data, "replica");
                assert_true(json_is_object(rep));
                want_integer(rep, "epoch");
                assert_true(json_is_object(json_object_get(rep, "rejected")));
                json_t *cp = json_object_get(rep, "checkpoints");
                assert_true(json_is_object(cp));
                want_integer(cp, "published");
                want_integer(cp, "refused");
                assert_true(json_is_false(json_object_get(cp, "waiting")));
                json_t *sub = json_object_get(data, "subscriber");
                assert_true(json_is_object(sub));
                want_integer(sub, "applied");
                want_integer(sub, "ignored");
                want_integer(sub, "official_cache_refused");
                assert_true(json_is_object(json_object_get(sub, "certificates")));
                want_integer(data, "official_epoch");
            }
            json_decref(d);
        }
    }
    /* Another service's name, or another instance's id, gets no answer. */
    natsMsg *reply = NULL;
    assert_int_not_equal(
        natsConnection_RequestString(&reply, nc, "$SRV.PING.ibp-node.nobody", "", 300), NATS_OK);
    assert_null(reply);

    int status = 0;
    assert_int_equal(ibp_testenv_kill_wait(pid, SIGTERM, 10000, &status), 0);
    pid = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        dump_log();
        fail_msg("ibp-node did not stop cleanly (status %d)", status);
    }
    natsConnection_Destroy(nc);
}

static int teardown(void **state)
{
    (void)state;
    if (pid > 0)
        ibp_testenv_kill_wait(pid, SIGKILL, 5000, NULL);
    if (servers.started)
        ibp_testenv_private_stop(&servers);
    if (dir[0] && !getenv("IBP_TEST_KEEP"))
        ibp_testenv_rmtree(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documents),
        cmocka_unit_test(test_ibp_node),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
