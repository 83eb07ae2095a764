/*
 * Integration: a dns node restarted from an official cache whose certificate
 * does not verify refuses the cache and waits for a certified epoch
 * (README "Quorum certificates"; ibp/data.h, ibp/cache.h).
 *
 * Three consensus replicas in this process (quorum: 2) on private servers,
 * and a real ibp-node with the dns role, so the cache goes through the
 * daemon's own start-up. Five monitors flip one key, one epoch per flip.
 *   1. The node applies certified epoch 1 and, stopped, saves its official
 *      cache with the certificate.
 *   2. Restarted with that cache untouched, it loads it: epoch 1 at once,
 *      nothing refused.
 *   3. Two replicas stopped; the last one publishes epoch 2, which no quorum
 *      certifies. The cache's certificate cut to one statement (below the
 *      quorum): the node, restarted, refuses the cache with a WARN naming the
 *      file and the reason, counts it in subscriber.official_cache_refused
 *      (control socket and $SRV.STATS), holds epoch 2 and answers nothing.
 *      A replica back certifies epoch 2, which the node applies.
 *   4. The same with a flipped byte in the signature of every statement but
 *      one, and epoch 3; then epoch 4 with every replica back.
 *   5. The certificate intact but the results edited (the member marked
 *      up): refused, counted; the certified epoch applies.
 *   6. A cache file that is not JSON: moved aside, counted the same.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "certify_testlib.h"
#include "ibp/cache.h"
#include "ibp/certificate.h"
#include "ibp/clock.h"
#include "ibp/envelope.h"
#include "ibp/log.h"
#include "ibpctl.h"
#include "replica_testlib.h"

#define REPLICAS 3
#define QUORUM 2
#define WAIT_MS 30000 /* sanitizer builds are slow */

static ct_cluster cluster;
static char work[1200];  /* the dns node's work dir */
static char sock[1300];  /* its control socket */
static char cache[1300]; /* its official cache file */
static char config[1300];
static char logpath[1300];
static long log_from; /* where the current run's lines start in logpath */
static pid_t pid;

static void dump_log(void)
{
    char cmd[2800];
    int n = snprintf(cmd, sizeof cmd, "echo '---- tail of %s'; tail -n 30 '%s'", logpath, logpath);
    if (n < 0 || (size_t)n >= sizeof cmd || system(cmd) != 0)
        fprintf(stderr, "cannot show %s\n", logpath);
}

/* The lines the current run of the node wrote (malloc'd). */
static char *run_log(void)
{
    FILE *f = fopen(logpath, "r");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long end = ftell(f);
    assert_true(end >= log_from);
    char *text = malloc((size_t)(end - log_from) + 1);
    assert_non_null(text);
    assert_int_equal(fseek(f, log_from, SEEK_SET), 0);
    size_t got = fread(text, 1, (size_t)(end - log_from), f);
    text[got] = '\0';
    fclose(f);
    return text;
}

/* The current run's log line holding every one of the needles (NULL-terminated), or fails. */
static void want_log_line(const char *const *needles)
{
    char *text = run_log();
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        bool all = true;
        for (size_t i = 0; needles[i] && all; i++)
            all = strstr(line, needles[i]) != NULL;
        if (all) {
            printf("log: %s\n", line);
            free(text);
            return;
        }
    }
    free(text);
    dump_log();
    fail_msg("no log line with \"%s\" and \"%s\"", needles[0], needles[1] ? needles[1] : "");
}

static bool log_has(const char *needle)
{
    char *text = run_log();
    bool has = strstr(text, needle) != NULL;
    free(text);
    return has;
}

/* ---- the node's control socket --------------------------------------------------------- */

/* Sends one request (ibpctl's client) and returns the decoded answer; fails unless it says ok. */
static json_t *ctl(json_t *req)
{
    char *dumped = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    assert_non_null(dumped);
    char line[4096];
    assert_true((size_t)snprintf(line, sizeof line, "%s\n", dumped) < sizeof line);
    free(dumped);
    char *text = NULL;
    json_t *ans = NULL;
    int rc = ibpctl_control_call("official_cache_refused_test", sock, line, &text, &ans);
    if (rc != 0 || !ans || !json_is_true(json_object_get(ans, "ok"))) {
        dump_log();
        fail_msg("the node answered '%s' (rc %d)", text ? text : "", rc);
    }
    free(text);
    return ans;
}

/* A number of the status answer at a.b[.c] (-1 when missing). */
static int64_t status_num(const char *a, const char *b, const char *c)
{
    json_t *ans = ctl(json_pack("{s:s}", "cmd", "status"));
    json_t *v = json_object_get(json_object_get(ans, a), b);
    if (c)
        v = json_object_get(v, c);
    int64_t n = json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
    json_decref(ans);
    return n;
}

/* The node's official result of the test key. */
static void official(bool *found, bool *up, uint64_t *epoch)
{
    json_t *a = ctl(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "cmd", "official", "type",
                              "endpoint", "check", "wss", "member", "Stake Plus", "domain",
                              "rpc.example.net", "endpoint", RT_ENDPOINT, "ipv6", 0));
    *found = json_is_true(json_object_get(a, "found"));
    *up = json_is_true(json_object_get(a, "up"));
    *epoch = (uint64_t)json_integer_value(json_object_get(a, "epoch"));
    json_decref(a);
}

/* Waits until the node answers the test key from epoch, with status up. */
static void wait_official(uint64_t epoch, bool want_up)
{
    bool found = false, up = false;
    uint64_t have = 0;
    for (int64_t end = ibp_clock_mono_ms() + WAIT_MS; ibp_clock_mono_ms() < end;) {
        official(&found, &up, &have);
        if (found && up == want_up && have == epoch)
            return;
        rt_sleep_ms(20);
    }
    dump_log();
    fail_msg("the node did not answer from epoch %" PRIu64 " (found=%d up=%d epoch=%" PRIu64 ")",
             epoch, found, up, have);
}

/* The node answers nothing: no official epoch, no result of the test key. */
static void want_nothing(void)
{
    bool found = true, up = false;
    uint64_t epoch = 1;
    official(&found, &up, &epoch);
    assert_false(found);
    assert_int_equal(epoch, 0);
    assert_int_equal(status_num("official", "epoch", NULL), 0);
    assert_int_equal(status_num("official", "results", NULL), 0);
}

/* subscriber.official_cache_refused of $SRV.STATS (the service may come up
 * after the control socket: no responders yet is asked again). */
static int64_t srv_cache_refused(void)
{
    natsMsg *reply = NULL;
    natsStatus ns;
    for (int64_t end = ibp_clock_mono_ms() + WAIT_MS;;) {
        ns = natsConnection_RequestString(&reply, cluster.nc, "$SRV.STATS.ibp-node", "", 5000);
        if (ns != NATS_NO_RESPONDERS || ibp_clock_mono_ms() > end)
            break;
        rt_sleep_ms(20);
    }
    if (ns != NATS_OK)
        fail_msg("no answer on $SRV.STATS.ibp-node: %s", natsStatus_GetText(ns));
    json_error_t jerr;
    json_t *d = json_loads(natsMsg_GetData(reply), 0, &jerr);
    natsMsg_Destroy(reply);
    assert_non_null(d);
    json_t *v = json_object_get(json_object_get(json_object_get(d, "data"), "subscriber"),
                                "official_cache_refused");
    int64_t n = json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
    json_decref(d);
    return n;
}

/* ---- the node -------------------------------------------------------------------------- */

static void write_config(void)
{
    char nats[2048];
    assert_int_equal(
        ibp_testenv_nats_json(&cluster.servers.env, IBP_TESTENV_NATS_DNS, nats, sizeof nats), 0);
    snprintf(config, sizeof config, "%s/dns1.json", cluster.dir);
    FILE *f = fopen(config, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"node\": {\"id\": \"dns1\", \"key_file\": \"%s/dns1.key\", \"roster_file\": "
            "\"%s/roster.json\", \"work_dir\": \"%s\", \"roles\": \"dns\"},\n"
            " %s,\n"
            " \"maxmind\": {\"city_db\": \"%s/dns-city.mmdb\"},\n"
            " \"network\": {\"members_file\": \"%s/tests/data/network/members.json\",\n"
            "             \"services_file\": \"%s/tests/data/network/services.json\"},\n"
            " \"intervals\": {\"heartbeat_ms\": 500},\n"
            " \"log\": {\"level\": \"info\"}}\n",
            cluster.dir, cluster.dir, work, nats, IBP_DNS_MMDB_DIR, IBP_SOURCE_DIR, IBP_SOURCE_DIR);
    assert_int_equal(fclose(f), 0);
}

/* Starts the node and waits until its control socket answers. */
static void start_node(void)
{
    struct stat st;
    log_from = stat(logpath, &st) == 0 ? (long)st.st_size : 0;
    char *argv[] = {(char *)IBP_NODE_BIN, "--config", config, NULL};
    pid = ibp_testenv_spawn(argv, logpath, NULL);
    assert_true(pid > 0);
    for (int64_t end = ibp_clock_mono_ms() + WAIT_MS; stat(sock, &st) != 0;) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            pid = 0;
            dump_log();
            fail_msg("the dns node exited during start (status %d)", status);
        }
        if (ibp_clock_mono_ms() > end) {
            dump_log();
            fail_msg("the dns node did not open its control socket");
        }
        rt_sleep_ms(10);
    }
}

/* Stops the node cleanly: it saves its official cache. */
static void stop_node(void)
{
    int status = 0;
    assert_int_equal(ibp_testenv_kill_wait(pid, SIGTERM, 20000, &status), 0);
    pid = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        dump_log();
        fail_msg("the dns node did not stop cleanly (status %d)", status);
    }
}

/* ---- the cache file -------------------------------------------------------------------- */

/* Loads the node's cache, which must hold epoch with a certificate that verifies. */
static void load_certified(uint64_t epoch, ibp_cache_loaded *c)
{
    ibp_err err;
    rt_must(ibp_cache_load(cache, IBP_CACHE_OFFICIAL, c, &err), &err);
    assert_int_equal(c->outcome, IBP_CACHE_LOADED);
    assert_true(c->has_epoch);
    assert_int_equal(c->epoch, epoch);
    assert_true(c->has_certificate);
    char why[320];
    if (ibp_cache_certificate_check(c, cluster.roster, QUORUM, NULL, why, sizeof why) != IBP_OK)
        fail_msg("the saved certificate of epoch %" PRIu64 " does not verify: %s", epoch, why);
}

/* Saves c again with its certificate made of statements (n of them). */
static void save_with(ibp_cache_loaded *c, uint8_t *const *statements, const size_t *lens, size_t n)
{
    ibp_err err;
    uint8_t *bytes = NULL;
    size_t len = 0;
    rt_must(
        ibp_certificate_encode(c->epoch, (const uint8_t *const *)statements, lens, n, &bytes, &len),
        NULL);
    ibp_cache_certificate cert = c->certificate;
    cert.bytes = bytes;
    cert.len = len;
    ibp_cache_override *ovr = calloc(c->override_count + 1, sizeof *ovr);
    assert_non_null(ovr);
    for (size_t i = 0; i < c->override_count; i++)
        ovr[i] = c->overrides[i];
    ibp_cache_contents contents = {
        .kind = IBP_CACHE_OFFICIAL,
        .saved_at_ms = c->saved_at_ms,
        .has_epoch = true,
        .epoch = c->epoch,
        .results = (const ibp_result *const *)c->results.items,
        .result_count = c->results.count,
        .overrides = ovr,
        .override_count = c->override_count,
        .certificate = &cert,
    };
    rt_must(ibp_cache_save(cache, &contents, &err), &err);
    free(ovr);
    free(bytes);
}

/* The cache of epoch with its certificate cut to its first `keep` statements. */
static void tamper_drop(uint64_t epoch, size_t keep)
{
    ibp_cache_loaded c;
    load_certified(epoch, &c);
    ibp_certificate_blob blob = {0};
    rt_must(ibp_certificate_decode(c.certificate.bytes, c.certificate.len, &blob), NULL);
    printf("cache of epoch %" PRIu64 ": certificate of %zu statements, keeping %zu\n", epoch,
           blob.n, keep);
    assert_true(blob.n > keep);
    save_with(&c, blob.statements, blob.lens, keep);
    ibp_certificate_blob_free(&blob);
    ibp_cache_loaded_free(&c);
}

/* The cache of epoch with one byte of the signature flipped in every statement after the
 * first `keep`. */
static void tamper_signatures(uint64_t epoch, size_t keep)
{
    ibp_cache_loaded c;
    load_certified(epoch, &c);
    ibp_certificate_blob blob = {0};
    rt_must(ibp_certificate_decode(c.certificate.bytes, c.certificate.len, &blob), NULL);
    printf("cache of epoch %" PRIu64 ": certificate of %zu statements, %zu left intact\n", epoch,
           blob.n, keep);
    assert_true(blob.n > keep);
    uint8_t **stmts = calloc(blob.n, sizeof *stmts);
    assert_non_null(stmts);
    for (size_t i = 0; i < blob.n; i++) {
        stmts[i] = malloc(blob.lens[i]);
        assert_non_null(stmts[i]);
        memcpy(stmts[i], blob.statements[i], blob.lens[i]);
        if (i < keep)
            continue;
        Ibp__V1__Envelope *env = ibp__v1__envelope__unpack(NULL, blob.lens[i], stmts[i]);
        assert_non_null(env);
        assert_int_equal(env->signature.len, 64);
        env->signature.data[17] ^= 0x01;
        assert_int_equal(ibp__v1__envelope__get_packed_size(env), blob.lens[i]);
        ibp__v1__envelope__pack(env, stmts[i]);
        ibp__v1__envelope__free_unpacked(env, NULL);
    }
    save_with(&c, stmts, blob.lens, blob.n);
    for (size_t i = 0; i < blob.n; i++)
        free(stmts[i]);
    free(stmts);
    ibp_certificate_blob_free(&blob);
    ibp_cache_loaded_free(&c);
}

/* The cache of epoch with every result's status flipped, its certificate as it was. */
static void tamper_results(uint64_t epoch)
{
    ibp_cache_loaded c;
    load_certified(epoch, &c);
    assert_true(c.results.count > 0);
    for (size_t i = 0; i < c.results.count; i++)
        c.results.items[i]->up = !c.results.items[i]->up;
    ibp_certificate_blob blob = {0};
    rt_must(ibp_certificate_decode(c.certificate.bytes, c.certificate.len, &blob), NULL);
    save_with(&c, blob.statements, blob.lens, blob.n);
    ibp_certificate_blob_free(&blob);
    ibp_cache_loaded_free(&c);
}

/*
 * The node started from a cache that must be refused for reason: the WARN
 * names the file and the reason, the refusal is counted, nothing is answered,
 * and the epoch on OFFICIAL, which no quorum certified yet, is held.
 */
static void want_refused(const char *reason)
{
    const char *needles[] = {"official cache refused", cache, reason, "moved_to=", ".refused-",
                             NULL};
    want_log_line(needles);
    assert_false(log_has("loaded official cache"));
    assert_int_equal(status_num("subscriber", "official_cache_refused", NULL), 1);
    assert_int_equal(srv_cache_refused(), 1);
    want_nothing();
    for (int64_t end = ibp_clock_mono_ms() + WAIT_MS;
         status_num("subscriber", "certificates", "uncertified_pending") != 1;) {
        if (ibp_clock_mono_ms() > end) {
            dump_log();
            fail_msg("the node does not hold the uncertified epoch");
        }
        rt_sleep_ms(20);
    }
    rt_sleep_ms(300); /* time enough to apply it, had it been certified */
    want_nothing();
}

static void test_cache_refused(void **state)
{
    (void)state;
    ibp_log_set_level(IBP_LOG_ERROR);
    ct_cluster_start(&cluster, REPLICAS);
    snprintf(work, sizeof work, "%s/dns1", cluster.dir);
    snprintf(sock, sizeof sock, "%s/control.sock", work);
    snprintf(cache, sizeof cache, "%s/tmp/official.cache.json", work);
    snprintf(logpath, sizeof logpath, "%s/dns1.log", cluster.dir);
    write_config();

    /* 1. Certified epoch 1 applied, then saved with its certificate. */
    ct_flip(&cluster);
    ct_wait_published(&cluster, 1);
    start_node();
    wait_official(1, true);
    assert_int_equal(status_num("subscriber", "official_cache_refused", NULL), 0);
    stop_node();
    ibp_cache_loaded c;
    load_certified(1, &c);
    ibp_cache_loaded_free(&c);

    /* 2. A good cache loads: epoch 1 from the file, nothing refused or applied. */
    start_node();
    const char *loaded[] = {"loaded official cache", cache, "epoch=1", NULL};
    want_log_line(loaded);
    assert_int_equal(status_num("official", "epoch", NULL), 1);
    assert_int_equal(status_num("subscriber", "official_cache_refused", NULL), 0);
    assert_int_equal(srv_cache_refused(), 0);
    wait_official(1, true);
    rt_sleep_ms(300);
    assert_int_equal(status_num("subscriber", "applied", NULL), 0);
    stop_node();

    /* 3. Statements dropped below the quorum; epoch 2 waits for its certificate. */
    ct_replica_stop(&cluster, 1);
    ct_replica_stop(&cluster, 2);
    ct_flip(&cluster);
    ct_wait_published(&cluster, 2);
    tamper_drop(1, QUORUM - 1);
    start_node();
    want_refused("1 of quorum 2 signers counted");
    ct_replica_start(&cluster, 1);
    wait_official(2, false);
    assert_int_equal(status_num("subscriber", "certificates", "certified"), 1);
    assert_int_equal(status_num("subscriber", "official_cache_refused", NULL), 1);
    stop_node();

    /* 4. A signature byte flipped; epoch 3 waits, then every replica is back. */
    ct_replica_stop(&cluster, 1);
    ct_flip(&cluster);
    ct_wait_published(&cluster, 3);
    tamper_signatures(2, QUORUM - 1);
    start_node();
    want_refused("signature does not match the roster key");
    ct_replica_start(&cluster, 1);
    ct_replica_start(&cluster, 2);
    wait_official(3, true);
    ct_flip(&cluster);
    ct_wait_published(&cluster, 4);
    wait_official(4, false);
    stop_node();
    load_certified(4, &c);
    ibp_cache_loaded_free(&c);

    /* 5. The certificate untouched, a results line edited by hand (the member
     *    marked up): refused, counted; the certified epoch 4 (down) follows. */
    tamper_results(4);
    start_node();
    const char *edited[] = {"official cache refused", cache,
                            "results differ from the certified snapshot", ".refused-", NULL};
    want_log_line(edited);
    assert_false(log_has("loaded official cache"));
    assert_int_equal(status_num("subscriber", "official_cache_refused", NULL), 1);
    assert_int_equal(srv_cache_refused(), 1);
    wait_official(4, false);
    stop_node();

    /* 6. Contents that do not load: moved aside, counted; the certified epoch 4 follows. */
    FILE *f = fopen(cache, "w");
    assert_non_null(f);
    fputs("{\"format\":\"ibp-results-cache\",\"version\":1,\"kind\":\"official\",\"resu", f);
    assert_int_equal(fclose(f), 0);
    start_node();
    const char *discarded[] = {"discarded cache file", cache, "moved_to=", NULL};
    want_log_line(discarded);
    assert_int_equal(status_num("subscriber", "official_cache_refused", NULL), 1);
    wait_official(4, false);
    stop_node();

    ct_cluster_stop(&cluster);
}

static int teardown(void **state)
{
    (void)state;
    if (pid > 0)
        ibp_testenv_kill_wait(pid, SIGKILL, 5000, NULL);
    pid = 0;
    ct_cluster_stop(&cluster);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_cache_refused)};
    return cmocka_run_group_tests(tests, NULL, teardown);
}
