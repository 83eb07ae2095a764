/*
 * Integration: signed status messages against a private nats-server. A
 * consensus replica (in this process) publishes the official status of an
 * endpoint; forged status messages are published next to it on other status
 * subjects of the same member:
 *   - an unsigned "member disabled" on its override subject;
 *   - a "site down" signed by a monitor's key (in the roster, not consensus);
 *   - the replica's own signed message replayed onto another subject;
 *   - one signed by a key that is not in the roster.
 * `ibpctl status --roster` lists the real one as verified and each forged one
 * as {"verified": false, "reason": ..., "unverified": {...}} with its reason,
 * never as an official status; `ibpctl decode` exits 0 on the real one and 1
 * on a forged one; `ibpctl watch` prints a forged message as unverified and
 * counts only the real change that follows it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "ibp/bus.h"
#include "ibp/log.h"
#include "ibp/replica.h"
#include "ibp/status_sig.h"
#include "ibp/subject.h"
#include "testenv.h"

#define MONITORS 3
#define MEMBER "Alpha Nodes"
#define DOMAIN "rpc.example.net"
#define ENDPOINT "wss://rpc.example.net/polkadot"

static ibp_testenv_private servers;
static char dir[1024], roster_path[1200], url[512];
static ibp_roster *roster;
static ibp_signer *mon[MONITORS], *rep_signer;
static ibp_key mon_key[MONITORS], rep_key, intruder_key;
static natsConnection *nc, *rep_nc;
static jsCtx *js;
static uint64_t batch_seq;

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

static ibp_signer *make_signer(const char *id, ibp_key *key, unsigned roles)
{
    char path[1200];
    ibp_signer *s;
    ibp_err err;
    must(ibp_key_generate(key), NULL);
    must(ibp_roster_add(roster, id, key->pk, roles, &err), &err);
    snprintf(path, sizeof path, "%s/%s.seq", dir, id);
    must(ibp_signer_new(id, key, path, &s, &err), &err);
    return s;
}

/* Runs `ibpctl <args>` through the shell; stdout into *out (malloc'd); returns the exit code. */
static int run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(char **out, const char *fmt, ...)
{
    char args[6000], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s", IBP_CTL_BIN, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, len = 0, n;
    char *buf = malloc(cap);
    assert_non_null(buf);
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (len + 1 == cap) {
            buf = realloc(buf, cap *= 2);
            assert_non_null(buf);
        }
    }
    buf[len] = '\0';
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static json_t *run_json(int want_rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *run_json(int want_rc, const char *fmt, ...)
{
    char args[6000], *out;
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

static uint64_t observe(ibp_signer *s, bool up)
{
    Ibp__V1__ResultKey k = IBP__V1__RESULT_KEY__INIT;
    k.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
    k.check_name = "wss";
    k.member = MEMBER;
    k.domain = DOMAIN;
    k.endpoint = ENDPOINT;
    Ibp__V1__Observation o = IBP__V1__OBSERVATION__INIT;
    o.key = &k;
    o.status = up ? IBP__V1__STATUS__STATUS_UP : IBP__V1__STATUS__STATUS_DOWN;
    o.check_time_ms = 1700000000000 + (int64_t)batch_seq;
    o.error = up ? "" : "connect timeout";
    Ibp__V1__Observation *list[] = {&o};
    Ibp__V1__ObservationBatch b = IBP__V1__OBSERVATION_BATCH__INIT;
    b.batch_seq = ++batch_seq;
    b.n_observations = 1;
    b.observations = list;
    char subject[128];
    uint8_t *msg;
    size_t len;
    uint64_t seq, stream_seq = 0;
    ibp_err err;
    ibp_subject_local(ibp_signer_id(s), subject, sizeof subject);
    must(ibp_signer_seal(s, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH, &b.base, 1, &msg,
                         &len, &seq, &err),
         &err);
    must(
        ibp_bus_publish_envelope(js, subject, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH,
                                 ibp_signer_id(s), seq, msg, len, NULL, 0, &stream_seq, NULL, &err),
        &err);
    free(msg);
    return stream_seq;
}

static void endpoint_key(Ibp__V1__ResultKey *k)
{
    ibp__v1__result_key__init(k);
    k->check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
    k->check_name = "wss";
    k->member = MEMBER;
    k->domain = DOMAIN;
    k->endpoint = ENDPOINT;
}

/* Waits until the replica has applied LOCAL up to seq and reached epoch. */
static void wait_epoch(ibp_replica *r, uint64_t seq, uint64_t epoch)
{
    for (int i = 0; i < 500; i++) {
        ibp_replica_stats st;
        ibp_replica_stats_get(r, &st);
        if (st.local_seq >= seq && st.epoch >= epoch) {
            sleep_ms(300); /* the status messages of that epoch */
            return;
        }
        sleep_ms(20);
    }
    fail_msg("the replica did not reach LOCAL seq %" PRIu64 " epoch %" PRIu64, seq, epoch);
}

/* Publishes a status message to STATUS with the given headers (NULL: left out). */
static void publish_status(const char *subject, const char *body, const char *signer,
                           const char *sig, const char *msg_id)
{
    natsMsg *m = NULL;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(natsMsg_Create(&m, subject, NULL, body, (int)strlen(body)), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(m, IBP_HDR_TYPE, "Status"), NATS_OK);
    if (signer)
        assert_int_equal(natsMsgHeader_Set(m, IBP_HDR_SIGNER, signer), NATS_OK);
    if (sig)
        assert_int_equal(natsMsgHeader_Set(m, IBP_HDR_SIGNATURE, sig), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(m, IBP_HDR_MSG_ID, msg_id), NATS_OK);
    if (js_PublishMsg(&pa, js, m, NULL, &jerr) != NATS_OK)
        fail_msg("publish %s: jetstream error %d", subject, (int)jerr);
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
}

/* The item of an `ibpctl status` array with this subject (fails when missing). */
static json_t *item(json_t *arr, const char *subject)
{
    size_t i;
    json_t *it;
    json_array_foreach(arr, i, it)
    {
        if (strcmp(json_string_value(json_object_get(it, "subject")), subject) == 0)
            return it;
    }
    char *t = json_dumps(arr, JSON_INDENT(2));
    fail_msg("no item for %s in %s", subject, t);
    return NULL;
}

static void assert_unverified(json_t *arr, const char *subject, const char *reason)
{
    json_t *it = item(arr, subject);
    assert_true(json_is_false(json_object_get(it, "verified")));
    const char *why = json_string_value(json_object_get(it, "reason"));
    assert_non_null(why);
    if (strncmp(why, reason, strlen(reason)) != 0)
        fail_msg("%s: reason '%s', want '%s...'", subject, why, reason);
    /* Nothing of the forged document at the top level: it is not official. */
    assert_null(json_object_get(it, "status"));
    assert_null(json_object_get(it, "disabled"));
    assert_true(json_is_object(json_object_get(it, "unverified")));
    printf("unverified as expected: %s (%s)\n", subject, why);
}

/* Writes a message's body to a file and decodes it with its subject and headers. */
static int decode_msg(natsMsg *m, json_t **out)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/msg.json", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(natsMsg_GetData(m), 1, (size_t)natsMsg_GetDataLength(m), f);
    fclose(f);
    const char *signer = NULL, *sig = NULL;
    natsMsgHeader_Get(m, IBP_HDR_SIGNER, &signer);
    natsMsgHeader_Get(m, IBP_HDR_SIGNATURE, &sig);
    char *text = NULL;
    int rc = run(&text,
                 "decode --roster '%s' --subject '%s' --signer '%s' --signature '%s' < '%s' "
                 "2>/dev/null",
                 roster_path, natsMsg_GetSubject(m), signer ? signer : "", sig ? sig : "", path);
    *out = json_loads(text, 0, NULL);
    if (!*out)
        fail_msg("decode printed no JSON: %s", text);
    free(text);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < MONITORS; i++)
        ibp_signer_free(mon[i]);
    ibp_signer_free(rep_signer);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsConnection_Destroy(rep_nc);
    ibp_roster_free(roster);
    if (servers.started)
        ibp_testenv_private_stop(&servers);
    if (dir[0] && !getenv("IBP_TEST_KEEP"))
        ibp_testenv_rmtree(dir);
    return 0;
}

static void test_status_signatures(void **state)
{
    (void)state;
    ibp_err err = {0};
    ibp_log_set_level(IBP_LOG_ERROR);
    assert_int_equal(ibp_testenv_private_start(&servers), 0);
    assert_int_equal(ibp_testenv_mkdtemp(dir, sizeof dir), 0);
    /* ibpctl runs as the operator; the test and its replica as the test administrator. */
    assert_int_equal(ibp_testenv_nats_url(&servers.env, IBP_TESTENV_NATS_ADMIN, url, sizeof url),
                     0);

    must(ibp_roster_new(&roster), NULL);
    for (int i = 0; i < MONITORS; i++) {
        char id[16];
        snprintf(id, sizeof id, "mon%d", i + 1);
        mon[i] = make_signer(id, &mon_key[i], IBP_ROLE_MONITOR);
    }
    rep_signer = make_signer("rep1", &rep_key, IBP_ROLE_CONSENSUS);
    must(ibp_key_generate(&intruder_key), NULL); /* never in the roster */
    snprintf(roster_path, sizeof roster_path, "%s/roster.json", dir);
    must(ibp_roster_save(roster, roster_path, &err), &err);

    assert_int_equal(ibp_testenv_nats_connect(&servers.env, &nc), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    must(ibp_bus_ensure_streams(js, NULL, &err), &err);
    assert_int_equal(ibp_testenv_nats_connect(&servers.env, &rep_nc), NATS_OK);
    ibp_replica_opts o;
    ibp_replica_opts_init(&o);
    char wd[1200];
    snprintf(wd, sizeof wd, "%s/rep1", dir);
    assert_int_equal(mkdir(wd, 0700), 0);
    o.nc = rep_nc;
    o.roster = roster;
    o.signer = rep_signer;
    o.work_dir = wd;
    o.heartbeat_ms = 500;
    ibp_replica *rep = NULL;
    must(ibp_replica_start(&o, &rep, &err), &err);

    /* The real one: the endpoint becomes officially up at epoch 1. */
    uint64_t seq = 0;
    for (int i = 0; i < MONITORS; i++)
        seq = observe(mon[i], true);
    wait_epoch(rep, seq, 1);
    Ibp__V1__ResultKey k;
    endpoint_key(&k);
    char s_endpoint[2048], s_override[1024], s_site[2048], s_domain[2048], s_intruder[2048];
    must(ibp_subject_status(&k, s_endpoint, sizeof s_endpoint), NULL);
    must(ibp_subject_status_override(MEMBER, s_override, sizeof s_override), NULL);
    Ibp__V1__ResultKey site = IBP__V1__RESULT_KEY__INIT;
    site.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE;
    site.check_name = "ping";
    site.member = MEMBER;
    site.domain = "";
    site.endpoint = "";
    must(ibp_subject_status(&site, s_site, sizeof s_site), NULL);
    Ibp__V1__ResultKey dom = IBP__V1__RESULT_KEY__INIT;
    dom.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_DOMAIN;
    dom.check_name = "ssl";
    dom.member = MEMBER;
    dom.domain = DOMAIN;
    dom.endpoint = "";
    must(ibp_subject_status(&dom, s_domain, sizeof s_domain), NULL);
    site.check_name = "dns";
    must(ibp_subject_status(&site, s_intruder, sizeof s_intruder), NULL);

    natsMsg *real = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetLastMsg(&real, js, IBP_STREAM_STATUS, s_endpoint, NULL, &jerr), NATS_OK);
    const char *real_sig = NULL;
    assert_int_equal(natsMsgHeader_Get(real, IBP_HDR_SIGNATURE, &real_sig), NATS_OK);
    printf("real status on %s signed %s\n", s_endpoint, real_sig);

    /* Forged: an unsigned "member disabled", claiming the replica. */
    char body[1024];
    snprintf(body, sizeof body,
             "{\"member\":\"%s\",\"disabled\":true,\"reason\":\"forged\",\"epoch\":99,"
             "\"time_ms\":1,\"signer\":\"admin\"}",
             MEMBER);
    publish_status(s_override, body, "rep1", NULL, "forged-unsigned");
    /* Forged: a site down, correctly signed, but by a monitor's key. */
    char sig[IBP_STATUS_SIG_B64_SIZE];
    snprintf(body, sizeof body,
             "{\"member\":\"%s\",\"check_type\":\"site\",\"check_name\":\"ping\",\"domain\":\"\","
             "\"endpoint\":\"\",\"ipv6\":false,\"status\":\"down\",\"epoch\":99}",
             MEMBER);
    must(ibp_status_sig_sign(mon[0], s_site, (const uint8_t *)body, strlen(body), sig, &err), &err);
    publish_status(s_site, body, "mon1", sig, "forged-role");
    /* Replayed: the replica's own signed message onto another subject. */
    char *real_body = strndup(natsMsg_GetData(real), (size_t)natsMsg_GetDataLength(real));
    assert_non_null(real_body);
    publish_status(s_domain, real_body, "rep1", real_sig, "forged-moved");
    free(real_body);
    /* Forged: a key that is not in the roster. */
    snprintf(body, sizeof body,
             "{\"member\":\"%s\",\"check_type\":\"site\",\"check_name\":\"dns\",\"domain\":\"\","
             "\"endpoint\":\"\",\"ipv6\":false,\"status\":\"down\",\"epoch\":99}",
             MEMBER);
    must(ibp_status_sig_sign_key(&intruder_key, "intruder", s_intruder, (const uint8_t *)body,
                                 strlen(body), sig, &err),
         &err);
    publish_status(s_intruder, body, "intruder", sig, "forged-unknown");

    /* ibpctl status: the real one verified, each forged one unverified with its reason. */
    assert_int_equal(run(NULL, "status --nats '%s' --member '%s' 2>/dev/null", url, MEMBER), 2);
    json_t *j =
        run_json(0, "status --nats '%s' --roster '%s' --member '%s'", url, roster_path, MEMBER);
    assert_int_equal(json_array_size(j), 5);
    json_t *it = item(j, s_endpoint);
    assert_true(json_is_true(json_object_get(it, "verified")));
    assert_string_equal(json_string_value(json_object_get(it, "signed_by")), "rep1");
    assert_string_equal(json_string_value(json_object_get(it, "status")), "up");
    assert_int_equal(json_integer_value(json_object_get(it, "epoch")), 1);
    assert_unverified(j, s_override, "IBP_E_NOT_FOUND");
    assert_unverified(j, s_site, "IBP_E_ROLE_DENIED");
    assert_unverified(j, s_domain, "IBP_E_BAD_SIGNATURE");
    assert_unverified(j, s_intruder, "IBP_E_UNKNOWN_SIGNER");
    json_decref(j);
    /* The domain filter applies to what the documents say, verified or not. */
    j = run_json(0, "status --nats '%s' --roster '%s' --domain '%s'", url, roster_path, DOMAIN);
    assert_int_equal(json_array_size(j), 2);
    json_decref(j);

    /* ibpctl decode: 0 for the real one, 1 (and the JSON) for a forged one. */
    assert_int_equal(decode_msg(real, &j), 0);
    assert_true(json_is_true(json_object_get(j, "verified")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "payload"), "status")),
                        "up");
    json_decref(j);
    natsMsg_Destroy(real);
    natsMsg *forged = NULL;
    assert_int_equal(js_GetLastMsg(&forged, js, IBP_STREAM_STATUS, s_override, NULL, &jerr),
                     NATS_OK);
    assert_int_equal(decode_msg(forged, &j), 1);
    assert_true(json_is_false(json_object_get(j, "verified")));
    assert_null(json_object_get(j, "disabled"));
    json_decref(j);
    natsMsg_Destroy(forged);

    /* ibpctl watch: a forged change is printed as unverified and not counted;
     * the real change after it ends the watch (--count 1). */
    char watch_out[1300], cmd[8192];
    snprintf(watch_out, sizeof watch_out, "%s/watch.out", dir);
    snprintf(cmd, sizeof cmd,
             "('%s' watch --nats '%s' --roster '%s' --member '%s' --count 1 --timeout 15000 "
             "> '%s' 2>&1; echo \"exit $?\" >> '%s') &",
             IBP_CTL_BIN, url, roster_path, MEMBER, watch_out, watch_out);
    assert_int_equal(system(cmd), 0);
    for (int t = 0; t < 100; t++) { /* until it watches */
        struct stat st;
        if (stat(watch_out, &st) == 0 && st.st_size > 0)
            break;
        sleep_ms(50);
    }
    snprintf(body, sizeof body, "{\"member\":\"%s\",\"disabled\":true,\"epoch\":100}", MEMBER);
    publish_status(s_override, body, NULL, NULL, "forged-unsigned-2");
    sleep_ms(300);
    for (int i = 0; i < MONITORS; i++)
        seq = observe(mon[i], false);
    wait_epoch(rep, seq, 2);
    int lines = 0, unverified = 0, verified = 0;
    bool exited = false;
    for (int t = 0; t < 100 && !exited; t++) {
        sleep_ms(100);
        FILE *f = fopen(watch_out, "r");
        char line[8192];
        lines = unverified = verified = 0;
        while (f && fgets(line, sizeof line, f)) {
            if (strncmp(line, "exit ", 5) == 0) {
                exited = true;
                if (strcmp(line, "exit 0\n") != 0) {
                    char show[1400];
                    snprintf(show, sizeof show, "cat '%s'", watch_out);
                    if (system(show) != 0)
                        fprintf(stderr, "cannot show %s\n", watch_out);
                    fail_msg("ibpctl watch: %s", line);
                }
            }
            if (line[0] != '{')
                continue;
            json_t *w = json_loads(line, 0, NULL);
            assert_non_null(w);
            lines++;
            if (json_is_true(json_object_get(w, "verified"))) {
                verified++;
                assert_string_equal(json_string_value(json_object_get(w, "status")), "down");
            } else {
                unverified++;
                assert_null(json_object_get(w, "disabled"));
                assert_non_null(json_object_get(w, "reason"));
            }
            json_decref(w);
        }
        if (f)
            fclose(f);
    }
    assert_true(exited);
    assert_int_equal(unverified, 1);
    assert_int_equal(verified, 1);
    printf("watch: %d line(s), the forged one unverified, the real change verified\n", lines);
    ibp_replica_stop(rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_status_signatures)};
    return cmocka_run_group_tests(tests, NULL, teardown);
}
