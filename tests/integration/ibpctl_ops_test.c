/*
 * Integration: the operator commands of ibpctl (decode, override, snapshot,
 * status, watch, audit) run as child processes against a private nats-server
 * with two consensus replicas in this process and monitors publishing signed
 * batches from the test.
 *   - decode turns every message type read back from the streams (LOCAL batch
 *     and override, OFFICIAL snapshot, EVENTS event, HITS batch, STATUS JSON)
 *     into JSON, verified against the roster;
 *   - override disable makes the replicas publish a new epoch with the member
 *     disabled; snapshot and status show it; watch sees the enable;
 *   - audit traces a real epoch back to the signed batches and passes;
 *   - decode exits 1 whenever the message does not decode or does not verify
 *     (no roster, a bad signature, a header that disagrees, a truncated
 *     payload, an unsigned status message), 0 with --no-verify;
 *   - watch prints envelopes on a core subject decoded and verified (garbage
 *     as unverified, not counted), and reads streams from a sequence or a
 *     time, also as compact lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ibp/atomic_file.h"
#include "ibp/bus.h"
#include "ibp/log.h"
#include "ibp/replica.h"
#include "ibp/status_sig.h"
#include "ibp/subject.h"
#include "testenv.h"

#define MONITORS 3
#define MEMBER "Stake Plus"
#define ENDPOINT "wss://rpc.example.net/polkadot"

static ibp_testenv_private servers;
static char dir[1024], roster_path[1200], admin_key_path[1200];
static ibp_roster *roster;
static ibp_key mon_key[MONITORS], rep_key[2], admin_key, dns_key;
static ibp_signer *mon[MONITORS], *rep_signer[2], *dns;
static natsConnection *pub_nc, *rep_nc[2];
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
    ibp_key_generate(key);
    must(ibp_roster_add(roster, id, key->pk, roles, &err), &err);
    snprintf(path, sizeof path, "%s/%s.seq", dir, id);
    must(ibp_signer_new(id, key, path, &s, &err), &err);
    return s;
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

/* Writes dst: a copy of src with its last byte's bits inverted. */
static void flip_last_byte(const char *src, const char *dst)
{
    char *data = NULL;
    size_t n = 0;
    ibp_err err;
    assert_int_equal(ibp_file_read_all(src, 1 << 20, &data, &n, &err), IBP_OK);
    assert_true(n > 0);
    data[n - 1] ^= (char)0xff;
    FILE *out = fopen(dst, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(data, 1, n, out), n);
    assert_int_equal(fclose(out), 0);
    free(data);
}

/* Runs ibpctl and parses its stdout as JSON (fails the test on an unexpected code). */
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

/* Writes the body of a stored message to a file and decodes it with the roster. */
static json_t *decode_stored(const char *stream, uint64_t seq, const char *want_type)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetMsg(&m, js, stream, seq, NULL, &jerr), NATS_OK);
    char path[1300];
    snprintf(path, sizeof path, "%s/msg.bin", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(natsMsg_GetData(m), 1, (size_t)natsMsg_GetDataLength(m), f);
    fclose(f);
    const char *hdr = NULL;
    natsMsgHeader_Get(m, IBP_HDR_TYPE, &hdr);
    char type[64];
    snprintf(type, sizeof type, "%s", hdr ? hdr : "");
    /* A status message is signed over its subject and body in its headers. */
    const char *signer = NULL, *sig = NULL;
    natsMsgHeader_Get(m, IBP_HDR_SIGNER, &signer);
    natsMsgHeader_Get(m, IBP_HDR_SIGNATURE, &sig);
    char status_args[2048] = "";
    if (strcmp(type, "Status") == 0)
        snprintf(status_args, sizeof status_args, "--subject '%s' --signer '%s' --signature '%s'",
                 natsMsg_GetSubject(m), signer ? signer : "", sig ? sig : "");
    natsMsg_Destroy(m);
    json_t *j = run_json(0, "decode --roster '%s' %s < '%s'", roster_path, status_args, path);
    (void)type;
    if (want_type) {
        /* The header agrees with the envelope, and the envelope verifies. */
        assert_string_equal(type, want_type);
        assert_string_equal(json_string_value(json_object_get(j, "type")), want_type);
        assert_true(json_is_true(json_object_get(j, "verified")));
        assert_null(json_object_get(j, "header_type"));
    }
    return j;
}

static uint64_t publish(ibp_signer *s, ibp_payload_type type, const ProtobufCMessage *payload,
                        const char *subject)
{
    uint8_t *msg;
    size_t len;
    uint64_t seq, stream_seq = 0;
    ibp_err err;
    must(ibp_signer_seal(s, type, payload, 1, &msg, &len, &seq, &err), &err);
    must(ibp_bus_publish_envelope(js, subject, type, ibp_signer_id(s), seq, msg, len, NULL, 0,
                                  &stream_seq, NULL, &err),
         &err);
    free(msg);
    return stream_seq;
}

static uint64_t observe(ibp_signer *s, bool up)
{
    Ibp__V1__ResultKey k = IBP__V1__RESULT_KEY__INIT;
    k.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
    k.check_name = "wss";
    k.member = MEMBER;
    k.domain = "rpc.example.net";
    k.endpoint = ENDPOINT;
    Ibp__V1__Observation o = IBP__V1__OBSERVATION__INIT;
    o.key = &k;
    o.status = up ? IBP__V1__STATUS__STATUS_UP : IBP__V1__STATUS__STATUS_DOWN;
    o.check_time_ms = 1700000000000;
    o.error = up ? "" : "connect timeout";
    Ibp__V1__Observation *list[] = {&o};
    Ibp__V1__ObservationBatch b = IBP__V1__OBSERVATION_BATCH__INIT;
    b.batch_seq = ++batch_seq;
    b.n_observations = 1;
    b.observations = list;
    char subject[128];
    ibp_subject_local(ibp_signer_id(s), subject, sizeof subject);
    return publish(s, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH, &b.base, subject);
}

static void wait_applied(ibp_replica **reps, uint64_t seq, uint64_t epoch)
{
    for (int i = 0; i < 500; i++) {
        bool all = true;
        for (int r = 0; r < 2; r++) {
            ibp_replica_stats st;
            ibp_replica_stats_get(reps[r], &st);
            if (st.local_seq < seq || st.epoch < epoch)
                all = false;
        }
        if (all) {
            sleep_ms(300); /* the publications of that epoch */
            return;
        }
        sleep_ms(20);
    }
    fail_msg("replicas did not reach LOCAL seq %" PRIu64 " epoch %" PRIu64, seq, epoch);
}

static ibp_replica *start_replica(int i)
{
    ibp_replica_opts o;
    ibp_replica *r;
    ibp_err err;
    char wd[1200];
    snprintf(wd, sizeof wd, "%s/rep%d", dir, i);
    mkdir(wd, 0700);
    ibp_replica_opts_init(&o);
    o.nc = rep_nc[i];
    o.roster = roster;
    o.signer = rep_signer[i];
    o.work_dir = wd;
    o.heartbeat_ms = 200;
    o.state_save_ms = 100000;
    must(ibp_replica_start(&o, &r, &err), &err);
    return r;
}

static uint64_t last_seq(const char *stream)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetStreamInfo(&si, js, stream, NULL, &jerr), NATS_OK);
    uint64_t s = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return s;
}

/* Writes the body of a stored message to dir/<name>; returns the path (static). */
static const char *save_body(const char *stream, uint64_t seq, const char *name)
{
    static char path[1400];
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetMsg(&m, js, stream, seq, NULL, &jerr), NATS_OK);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(natsMsg_GetData(m), 1, (size_t)natsMsg_GetDataLength(m), f);
    fclose(f);
    natsMsg_Destroy(m);
    return path;
}

/* Starts `ibpctl <args>` in the background, stdout and stderr to out, then "exit N". */
static void start_bg(const char *out, const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "('%s' %s > '%s' 2>&1; echo \"exit $?\" >> '%s') &", IBP_CTL_BIN,
             args, out, out);
    assert_int_equal(system(cmd), 0);
}

/* Waits up to ms for text in the file at path. */
static bool file_has(const char *path, const char *text, int ms)
{
    for (int t = 0; t <= ms; t += 50) {
        FILE *f = fopen(path, "r");
        if (f) {
            char buf[1 << 16];
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = '\0';
            if (strstr(buf, text))
                return true;
        }
        sleep_ms(50);
    }
    return false;
}

/* The JSON lines of a watch's output file (an array), and its exit code in *rc. */
static json_t *watch_lines(const char *path, int *rc)
{
    json_t *a = json_array();
    FILE *f = fopen(path, "r");
    char line[1 << 16];
    *rc = -1;
    while (f && fgets(line, sizeof line, f)) {
        if (line[0] == '{')
            json_array_append_new(a, json_loads(line, 0, NULL));
        else if (strncmp(line, "exit ", 5) == 0)
            *rc = atoi(line + 5);
    }
    if (f)
        fclose(f);
    return a;
}

static void test_decode_exit_and_watch(const char *url)
{
    /* decode: every way a message fails to verify exits 1, the JSON printed all the same. */
    char cp[4096];
    const char *batch = save_body(IBP_STREAM_LOCAL, 1, "batch.bin");
    char *out = NULL;
    assert_int_equal(run(&out, "decode < '%s' 2>/dev/null", batch), 1);
    assert_non_null(strstr(out, "\"ObservationBatch\""));
    free(out);
    assert_int_equal(run(NULL, "decode --no-verify < '%s'", batch), 0);
    assert_int_equal(run(NULL, "decode --roster '%s' < '%s'", roster_path, batch), 0);
    /* The roster from the environment, as the local cluster's cluster.env sets it. */
    snprintf(cp, sizeof cp, "env IBP_ROSTER='%s' '%s' decode < '%s' > /dev/null", roster_path,
             IBP_CTL_BIN, batch);
    assert_int_equal(WEXITSTATUS(system(cp)), 0);
    assert_int_equal(
        run(NULL, "decode --roster '%s' --type Heartbeat < '%s' 2>/dev/null", roster_path, batch),
        1);
    /* A flipped signature byte (every bit of the last one); a truncated payload. */
    snprintf(cp, sizeof cp, "%s/bad.bin", dir);
    flip_last_byte(batch, cp);
    snprintf(cp, sizeof cp, "head -c 60 '%s' > '%s/short.bin'", batch, dir);
    assert_int_equal(system(cp), 0);
    json_t *j = run_json(1, "decode --roster '%s' < '%s/bad.bin' 2>/dev/null", roster_path, dir);
    assert_true(json_is_false(json_object_get(j, "verified")));
    json_decref(j);
    assert_int_equal(
        run(NULL, "decode --roster '%s' < '%s/short.bin' 2>/dev/null", roster_path, dir), 1);
    /* A status message without its subject and headers cannot verify. */
    const char *status = save_body(IBP_STREAM_STATUS, last_seq(IBP_STREAM_STATUS), "status.bin");
    assert_int_equal(run(NULL, "decode --roster '%s' < '%s' 2>/dev/null", roster_path, status), 1);

    /* watch a stream from a sequence: LOCAL 1..3, decoded and verified. */
    j = NULL;
    char wout[1300];
    snprintf(wout, sizeof wout, "%s/watch-local.out", dir);
    start_bg(wout,
             "watch --stream LOCAL --from-seq 1 --count 3 --timeout 10000 --nats '%s' "
             "--roster '%s'",
             url, roster_path);
    assert_true(file_has(wout, "exit ", 15000));
    int rc;
    json_t *lines = watch_lines(wout, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(json_array_size(lines), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *l = json_array_get(lines, i);
        assert_int_equal(json_integer_value(json_object_get(l, "stream_seq")), (json_int_t)i + 1);
        assert_true(json_is_true(json_object_get(l, "verified")));
        assert_string_equal(json_string_value(json_object_get(l, "type")), "ObservationBatch");
        assert_non_null(strstr(json_string_value(json_object_get(l, "subject")), "ibp.local.mon"));
        assert_non_null(json_object_get(l, "stream_time"));
    }
    json_decref(lines);
    /* ... and from a time, as compact lines: the events and a snapshot. */
    snprintf(wout, sizeof wout, "%s/watch-events.out", dir);
    start_bg(wout,
             "watch --stream EVENTS --since 1h --count 2 --timeout 10000 --compact "
             "--nats '%s' --roster '%s'",
             url, roster_path);
    assert_true(file_has(wout, "exit 0", 15000));
    assert_true(file_has(wout, " Event rep", 0));
    assert_true(file_has(wout, " ok ", 0));
    snprintf(wout, sizeof wout, "%s/watch-official.out", dir);
    start_bg(wout,
             "watch --stream OFFICIAL --since 2000-01-01T00:00:00Z --count 1 "
             "--timeout 10000 --compact --nats '%s' --roster '%s'",
             url, roster_path);
    assert_true(file_has(wout, "exit 0", 15000));
    assert_true(file_has(wout, " OfficialSnapshot rep", 0));
    assert_true(file_has(wout, "entries=#1", 0));
    /* --from-seq reads a stream: without --stream it is bad usage. */
    assert_int_equal(run(NULL, "watch --from-seq 1 --roster '%s' 2>/dev/null", roster_path), 2);
    assert_int_equal(run(NULL, "watch --nats '%s' 2>/dev/null", url), 2); /* no roster */

    /* watch a core subject: garbage shows as unverified and does not count;
     * the next real batch ends the watch (--count 1). */
    snprintf(wout, sizeof wout, "%s/watch-core.out", dir);
    start_bg(wout, "watch 'ibp.local.>' --count 1 --timeout 15000 --nats '%s' --roster '%s'", url,
             roster_path);
    assert_true(file_has(wout, "watching ibp.local.>", 10000));
    assert_int_equal(natsConnection_PublishString(pub_nc, "ibp.local.mon3", "not a message"),
                     NATS_OK);
    natsConnection_Flush(pub_nc);
    sleep_ms(200);
    observe(mon[2], false);
    assert_true(file_has(wout, "exit ", 15000));
    lines = watch_lines(wout, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(json_array_size(lines), 2);
    json_t *bad = json_array_get(lines, 0), *good = json_array_get(lines, 1);
    assert_true(json_is_false(json_object_get(bad, "verified")));
    assert_non_null(strstr(json_string_value(json_object_get(bad, "reason")), "IBP_E_DECODE"));
    assert_true(json_is_true(json_object_get(good, "verified")));
    assert_string_equal(json_string_value(json_object_get(good, "signer")), "mon3");
    assert_string_equal(json_string_value(json_object_get(good, "subject")), "ibp.local.mon3");
    json_decref(lines);
}

static void test_ops(void **state)
{
    (void)state;
    ibp_err err;
    const char *url;
    ibp_log_set_level(IBP_LOG_ERROR);
    assert_int_equal(ibp_testenv_private_start(&servers), 0);
    assert_int_equal(ibp_testenv_mkdtemp(dir, sizeof dir), 0);
    /* ibpctl runs as the operator (the admin role's NATS user); the test's
     * own connections and its replicas as the test administrator. */
    static char admin_url[512];
    assert_int_equal(
        ibp_testenv_nats_url(&servers.env, IBP_TESTENV_NATS_ADMIN, admin_url, sizeof admin_url), 0);
    url = admin_url;

    ibp_roster_new(&roster);
    for (int i = 0; i < MONITORS; i++) {
        char id[16];
        snprintf(id, sizeof id, "mon%d", i + 1);
        mon[i] = make_signer(id, &mon_key[i], IBP_ROLE_MONITOR);
    }
    rep_signer[0] = make_signer("rep1", &rep_key[0], IBP_ROLE_CONSENSUS);
    rep_signer[1] = make_signer("rep2", &rep_key[1], IBP_ROLE_CONSENSUS);
    dns = make_signer("dns1", &dns_key, IBP_ROLE_DNS);
    ibp_key_generate(&admin_key);
    must(ibp_roster_add(roster, "ops", admin_key.pk, IBP_ROLE_ADMIN, &err), &err);
    snprintf(roster_path, sizeof roster_path, "%s/roster.json", dir);
    snprintf(admin_key_path, sizeof admin_key_path, "%s/ops.key", dir);
    must(ibp_roster_save(roster, roster_path, &err), &err);
    must(ibp_key_save(&admin_key, admin_key_path, &err), &err);

    must(ibp_bus_connect_url(servers.env.nats_auth_url, "test", &pub_nc, &err), &err);
    assert_int_equal(natsConnection_JetStream(&js, pub_nc, NULL), NATS_OK);
    must(ibp_bus_ensure_streams(js, NULL, &err), &err);
    for (int i = 0; i < 2; i++)
        must(ibp_bus_connect_url(servers.env.nats_auth_url, "replica", &rep_nc[i], &err), &err);
    ibp_replica *reps[2] = {start_replica(0), start_replica(1)};

    /* Before any snapshot: snapshot fails cleanly. */
    assert_int_equal(run(NULL, "snapshot --nats '%s' 2>/dev/null", url), 1);

    /* All monitors up: epoch 1. */
    uint64_t seq = 0;
    for (int i = 0; i < MONITORS; i++)
        seq = observe(mon[i], true);
    wait_applied(reps, seq, 1);

    /* decode: LOCAL batch. */
    json_t *j = decode_stored(IBP_STREAM_LOCAL, 1, "ObservationBatch");
    json_t *o0 = json_array_get(json_object_get(json_object_get(j, "payload"), "observations"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o0, "key"), "member")),
                        MEMBER);
    assert_string_equal(json_string_value(json_object_get(o0, "status")), "up");
    assert_string_equal(json_string_value(json_object_get(j, "signer")), "mon1");
    json_decref(j);
    /* decode: OFFICIAL snapshot, string table resolved. */
    j = decode_stored(IBP_STREAM_OFFICIAL, last_seq(IBP_STREAM_OFFICIAL), "OfficialSnapshot");
    json_t *p = json_object_get(j, "payload");
    assert_int_equal(json_integer_value(json_object_get(p, "epoch")), 1);
    json_t *e0 = json_array_get(json_object_get(p, "entries"), 0);
    assert_string_equal(json_string_value(json_object_get(e0, "endpoint")), ENDPOINT);
    assert_string_equal(json_string_value(json_object_get(e0, "member")), MEMBER);
    assert_int_equal(json_array_size(json_object_get(
                         json_array_get(json_object_get(p, "evidence"), 0), "votes")),
                     2); /* the quorum of 3 is reached with 2 */
    json_decref(j);
    /* decode: EVENTS event with its voters. */
    j = decode_stored(IBP_STREAM_EVENTS, 1, "Event");
    p = json_object_get(j, "payload");
    assert_string_equal(json_string_value(json_object_get(p, "kind")), "status");
    assert_int_equal(json_array_size(json_object_get(p, "voters")), 2);
    json_decref(j);
    /* decode: a HitBatch published to HITS. */
    Ibp__V1__HitRow r = IBP__V1__HIT_ROW__INIT;
    r.date = "2026-11-27";
    r.domain = "rpc.example.net";
    r.member = MEMBER;
    r.country_code = "DE";
    r.hits = 77;
    Ibp__V1__HitRow *rows[] = {&r};
    Ibp__V1__HitBatch hb = IBP__V1__HIT_BATCH__INIT;
    hb.node = "dns1";
    hb.flush_seq = 1;
    hb.n_rows = 1;
    hb.rows = rows;
    char subject[256];
    ibp_subject_hits("dns1", subject, sizeof subject);
    uint64_t hseq = publish(dns, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH, &hb.base, subject);
    j = decode_stored(IBP_STREAM_HITS, hseq, "HitBatch");
    json_t *r0 = json_array_get(json_object_get(json_object_get(j, "payload"), "rows"), 0);
    assert_int_equal(json_integer_value(json_object_get(r0, "hits")), 77);
    json_decref(j);
    /* decode: a STATUS message passes through. */
    j = decode_stored(IBP_STREAM_STATUS, last_seq(IBP_STREAM_STATUS), NULL);
    assert_true(json_is_true(json_object_get(j, "verified")));
    json_t *sp = json_object_get(j, "payload");
    assert_string_equal(json_string_value(json_object_get(sp, "status")), "up");
    assert_string_equal(json_string_value(json_object_get(sp, "endpoint")), ENDPOINT);
    json_decref(j);
    /* decode: garbage is refused with exit 1. */
    assert_int_equal(run(NULL, "decode < /dev/null 2>/dev/null"), 1);

    /* audit of epoch 1: every vote traced back to its signed batch. */
    j = run_json(0, "audit 1 --roster '%s' --nats '%s'", roster_path, url);
    assert_true(json_is_true(json_object_get(j, "pass")));
    json_t *k0 = json_array_get(json_object_get(j, "keys"), 0);
    assert_int_equal(json_integer_value(json_object_get(k0, "agreeing")), 2);
    assert_string_equal(json_string_value(json_object_get(k0, "official")), "up");
    json_decref(j);

    /* override disable through ibpctl: epoch 2 has the member disabled. */
    j = run_json(0, "override disable '%s' --key '%s' --node ops --reason maint --nats '%s'",
                 MEMBER, admin_key_path, url);
    assert_string_equal(json_string_value(json_object_get(j, "stream")), "LOCAL");
    uint64_t oseq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
    assert_true(oseq > seq);
    json_decref(j);
    wait_applied(reps, oseq, 2);
    j = decode_stored(IBP_STREAM_LOCAL, oseq, "MemberOverride");
    p = json_object_get(j, "payload");
    assert_string_equal(json_string_value(json_object_get(p, "member")), MEMBER);
    assert_true(json_is_true(json_object_get(p, "disabled")));
    assert_string_equal(json_string_value(json_object_get(p, "reason")), "maint");
    json_decref(j);

    /* snapshot: the last one (epoch 2) shows the override, verified. */
    j = run_json(0, "snapshot --nats '%s' --roster '%s'", url, roster_path);
    assert_int_equal(json_integer_value(json_object_get(j, "epoch")), 2);
    assert_true(json_integer_value(json_object_get(j, "local_seq")) >= (json_int_t)oseq);
    assert_true(json_is_true(json_object_get(j, "verified")));
    json_t *counts = json_object_get(j, "counts");
    assert_int_equal(json_integer_value(json_object_get(counts, "entries")), 1);
    assert_int_equal(json_integer_value(json_object_get(counts, "down")), 0);
    assert_int_equal(json_integer_value(json_object_get(counts, "overrides")), 1);
    assert_int_equal(json_integer_value(json_object_get(counts, "disabled")), 1);
    json_t *ov = json_array_get(json_object_get(j, "overrides"), 0);
    assert_string_equal(json_string_value(json_object_get(ov, "member")), MEMBER);
    assert_string_equal(json_string_value(json_object_get(ov, "reason")), "maint");
    json_decref(j);
    /* snapshot --epoch 1: found by walking OFFICIAL; its change and voters. */
    j = run_json(0, "snapshot --nats '%s' --epoch 1 --full", url);
    assert_int_equal(json_integer_value(json_object_get(j, "epoch")), 1);
    assert_int_equal(json_array_size(json_object_get(j, "overrides")), 0);
    json_t *ch = json_array_get(json_object_get(j, "changed"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ch, "key"), "endpoint")),
                        ENDPOINT);
    assert_int_equal(json_array_size(json_object_get(ch, "votes")), 2);
    assert_int_equal(json_array_size(json_object_get(j, "entries")), 1);
    json_decref(j);
    assert_int_equal(run(NULL, "snapshot --nats '%s' --epoch 9 2>/dev/null", url), 1);
    /* A roster without the replicas: the snapshot does not verify, exit 1. */
    {
        ibp_roster *other;
        char other_path[1300];
        ibp_roster_new(&other);
        must(ibp_roster_add(other, "mon1", mon_key[0].pk, IBP_ROLE_MONITOR, &err), &err);
        snprintf(other_path, sizeof other_path, "%s/other.json", dir);
        must(ibp_roster_save(other, other_path, &err), &err);
        ibp_roster_free(other);
        j = run_json(1, "snapshot --nats '%s' --roster '%s' 2>/dev/null", url, other_path);
        assert_true(json_is_false(json_object_get(j, "verified")));
        json_decref(j);
    }

    /* status: the member's endpoint (up) and its override (disabled). */
    j = run_json(0, "status --nats '%s' --roster '%s' --member '%s'", url, roster_path, MEMBER);
    assert_int_equal(json_array_size(j), 2);
    bool saw_endpoint = false, saw_override = false;
    size_t i;
    json_t *it;
    json_array_foreach(j, i, it)
    {
        if (json_object_get(it, "disabled")) {
            saw_override = json_is_true(json_object_get(it, "disabled"));
        } else {
            assert_string_equal(json_string_value(json_object_get(it, "status")), "up");
            assert_string_equal(json_string_value(json_object_get(it, "endpoint")), ENDPOINT);
            saw_endpoint = true;
        }
    }
    assert_true(saw_endpoint && saw_override);
    json_decref(j);
    j = run_json(0, "status --nats '%s' --roster '%s' --domain rpc.example.net", url, roster_path);
    assert_int_equal(json_array_size(j), 1);
    json_decref(j);
    j = run_json(0, "status --nats '%s' --roster '%s' --member Nobody", url, roster_path);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);

    /* watch sees the enable; then epoch 3 says enabled. */
    char watch_out[1300], cmd[4096];
    snprintf(watch_out, sizeof watch_out, "%s/watch.out", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' watch --nats '%s' --roster '%s' --member '%s' --count 1 --timeout 15000 "
             "> '%s' 2>&1 &",
             IBP_CTL_BIN, url, roster_path, MEMBER, watch_out);
    assert_int_equal(system(cmd), 0);
    sleep_ms(1000);
    j = run_json(0, "override enable '%s' --key '%s' --node ops --nats '%s'", MEMBER,
                 admin_key_path, url);
    oseq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
    json_decref(j);
    wait_applied(reps, oseq, 3);
    json_t *w = NULL;
    for (int t = 0; t < 100 && !w; t++) {
        sleep_ms(100);
        FILE *f = fopen(watch_out, "r");
        char line[4096];
        while (f && fgets(line, sizeof line, f))
            if (line[0] == '{')
                w = json_loads(line, 0, NULL);
        if (f)
            fclose(f);
    }
    assert_non_null(w);
    assert_true(json_is_false(json_object_get(w, "disabled")));
    assert_string_equal(json_string_value(json_object_get(w, "member")), MEMBER);
    json_decref(w);
    j = run_json(0, "snapshot --nats '%s' --roster '%s'", url, roster_path);
    assert_int_equal(json_integer_value(json_object_get(j, "epoch")), 3);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "counts"), "disabled")),
                     0);
    json_decref(j);

    /* A down flip (epoch 4) audits too: the two down votes are the quorum. */
    observe(mon[0], false);
    seq = observe(mon[1], false);
    wait_applied(reps, seq, 4);
    j = run_json(0, "audit 4 --roster '%s' --nats '%s'", roster_path, url);
    k0 = json_array_get(json_object_get(j, "keys"), 0);
    assert_string_equal(json_string_value(json_object_get(k0, "official")), "down");
    assert_int_equal(json_integer_value(json_object_get(k0, "agreeing")), 2);
    assert_true(json_is_true(json_object_get(k0, "pass")));
    json_decref(j);
    /* Audit without a roster is bad usage. */
    assert_int_equal(run(NULL, "audit 1 --nats '%s' 2>/dev/null", url), 2);

    test_decode_exit_and_watch(url);

    for (int n = 0; n < 2; n++) {
        ibp_replica_stop(reps[n]);
        natsConnection_Destroy(rep_nc[n]);
        ibp_signer_free(rep_signer[n]);
    }
    for (int n = 0; n < MONITORS; n++)
        ibp_signer_free(mon[n]);
    ibp_signer_free(dns);
    jsCtx_Destroy(js);
    natsConnection_Destroy(pub_nc);
    ibp_roster_free(roster);
    ibp_testenv_rmtree(dir);
    ibp_testenv_private_stop(&servers);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_ops)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (servers.started)
        ibp_testenv_private_stop(&servers);
    return rc;
}
