/*
 * Integration: `ibpctl audit` and `ibpctl snapshot` check the quorum
 * certificate of an epoch (README, "Quorum certificates"), run as child
 * processes against a private nats-server with three consensus replicas in
 * this process and monitors publishing signed batches from the test.
 *   - epochs the three replicas co-signed audit with "certified": true, all
 *     three signers, quorum 2 (a majority), the previous digest checked;
 *   - rep2's key, stolen, signs a second snapshot of a certified epoch with
 *     its own statement: audit reports on the certified one and lists the
 *     other (one signer), and the forged statement among the refused ones;
 *   - the stolen key signs a snapshot of a future epoch and its statement:
 *     audit exits 1 with "epoch E is NOT certified: 1 of 3 consensus nodes
 *     signed, quorum 2", its JSON says one signer and quorum 2; snapshot
 *     --roster on it exits 1 too; --quorum 1 lets it pass with a warning;
 *     --quorum 4 is bad usage.
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

#include "ibp/atomic_file.h"
#include "ibp/bus.h"
#include "ibp/certificate.h"
#include "ibp/log.h"
#include "ibp/replica.h"
#include "ibp/subject.h"
#include "testenv.h"

#define MONITORS 3
#define REPLICAS 3
#define MEMBER "Stake Plus"
#define ENDPOINT "wss://rpc.example.net/polkadot"

static ibp_testenv_private servers;
static char dir[1024], roster_path[1200], url[512];
static ibp_roster *roster;
static ibp_key mon_key[MONITORS], rep_key[REPLICAS];
static ibp_signer *mon[MONITORS], *rep_signer[REPLICAS], *rogue;
static natsConnection *pub_nc, *rep_nc[REPLICAS], *evil_nc;
static jsCtx *js, *evil_js;
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

static ibp_signer *make_signer(const char *id, const char *seqname, const ibp_key *key)
{
    char path[1200];
    ibp_signer *s;
    ibp_err err;
    snprintf(path, sizeof path, "%s/%s.seq", dir, seqname);
    must(ibp_signer_new(id, key, path, &s, &err), &err);
    return s;
}

/*
 * Runs `ibpctl <args> --roster R --nats URL`; stdout parsed as JSON into
 * *out (NULL when it is not JSON), stderr into *err_text (malloc'd, may be
 * NULL). Returns the exit code.
 */
static int ctl(json_t **out, char **err_text, const char *fmt, ...)
{
    char args[2048], cmd[8192], err_path[1300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s' %s --roster '%s' --nats '%s' 2>'%s'", IBP_CTL_BIN, args,
             roster_path, url, err_path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    json_error_t jerr;
    json_t *j = json_loadf(p, JSON_DISABLE_EOF_CHECK, &jerr);
    char rest[256];
    while (fread(rest, 1, sizeof rest, p) > 0) {
    }
    int st = pclose(p);
    char *text = NULL;
    size_t n = 0;
    ibp_err err;
    if (ibp_file_read_all(err_path, 1 << 20, &text, &n, &err) != IBP_OK)
        text = strdup("");
    printf("ibpctl %s: exit %d; stderr: %s", args, WIFEXITED(st) ? WEXITSTATUS(st) : -1, text);
    if (!n || text[n - 1] != '\n')
        putchar('\n');
    if (out)
        *out = j;
    else
        json_decref(j);
    if (err_text)
        *err_text = text;
    else
        free(text);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
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

/* The epoch of the last statement on rep's subject of COSIGN (0: none). */
static uint64_t last_statement_epoch(const char *rep)
{
    char subject[128];
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    ibp_subject_cosign(rep, subject, sizeof subject);
    if (js_GetLastMsg(&m, js, IBP_STREAM_COSIGN, subject, NULL, &jerr) != NATS_OK)
        return 0;
    uint64_t epoch = 0;
    Ibp__V1__Envelope *env = ibp__v1__envelope__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                                       (const uint8_t *)natsMsg_GetData(m));
    ibp_epoch_statement s;
    if (env && ibp_certificate_statement_decode(env->payload.data, env->payload.len, &s) == IBP_OK)
        epoch = s.epoch;
    ibp__v1__envelope__free_unpacked(env, NULL);
    natsMsg_Destroy(m);
    return epoch;
}

/* Waits until every replica computed epoch and published its statement of it (30 s). */
static void wait_cosigned(ibp_replica **reps, uint64_t epoch)
{
    for (int t = 0; t < 1500; t++) {
        bool all = true;
        for (int i = 0; i < REPLICAS && all; i++) {
            ibp_replica_stats st;
            ibp_replica_stats_get(reps[i], &st);
            all = st.epoch >= epoch && last_statement_epoch(ibp_signer_id(rep_signer[i])) >= epoch;
        }
        if (all)
            return;
        sleep_ms(20);
    }
    fail_msg("the replicas did not all co-sign epoch %" PRIu64, epoch);
}

static ibp_replica *start_replica(int i)
{
    ibp_replica_opts o;
    ibp_replica *r;
    ibp_err err;
    char wd[1200];
    snprintf(wd, sizeof wd, "%s/rep%d", dir, i + 1);
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

/* The state digest of the snapshot at stream sequence seq of OFFICIAL. */
static void stored_digest(uint64_t seq, uint8_t out[32])
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetMsg(&m, js, IBP_STREAM_OFFICIAL, seq, NULL, &jerr), NATS_OK);
    Ibp__V1__Envelope *env = ibp__v1__envelope__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                                       (const uint8_t *)natsMsg_GetData(m));
    assert_non_null(env);
    Ibp__V1__OfficialSnapshot *s =
        ibp__v1__official_snapshot__unpack(NULL, env->payload.len, env->payload.data);
    assert_non_null(s);
    assert_int_equal(s->state_digest.len, 32);
    memcpy(out, s->state_digest.data, 32);
    ibp__v1__official_snapshot__free_unpacked(s, NULL);
    ibp__v1__envelope__free_unpacked(env, NULL);
    natsMsg_Destroy(m);
}

/*
 * What a stolen key does: a snapshot of epoch with another state, signed by
 * the rogue, on the snapshot subject, and the rogue's own statement vouching
 * for it (after prev, the digest of epoch - 1) on its subject of COSIGN.
 * Returns the snapshot's stream sequence.
 */
static uint64_t forge(uint64_t epoch, const uint8_t prev[32])
{
    uint8_t digest[32];
    memset(digest, 0xEE, sizeof digest);
    Ibp__V1__OfficialSnapshot snap = IBP__V1__OFFICIAL_SNAPSHOT__INIT;
    snap.epoch = epoch;
    snap.local_seq = 1;
    snap.state_digest.data = digest;
    snap.state_digest.len = sizeof digest;
    uint8_t *msg = NULL, *sealed = NULL;
    size_t len = 0, slen = 0;
    uint64_t seq = 0, sseq = 0, stream_seq = 0;
    ibp_err err;
    must(ibp_signer_seal(rogue, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT, &snap.base,
                         1, &msg, &len, &seq, &err),
         &err);
    Ibp__V1__Envelope *env = ibp__v1__envelope__unpack(NULL, len, msg);
    assert_non_null(env);
    ibp_epoch_statement st;
    memset(&st, 0, sizeof st);
    st.epoch = epoch;
    st.local_seq = 1;
    memcpy(st.state_digest, digest, sizeof digest);
    memcpy(st.prev_digest, prev, sizeof st.prev_digest);
    ibp_certificate_snapshot_hash(env->payload.data, env->payload.len, st.snapshot_hash);
    ibp__v1__envelope__free_unpacked(env, NULL);
    must(ibp_certificate_statement_seal(rogue, &st, 1, &sealed, &slen, &sseq, &err), &err);
    /* Message ids of their own: the default (signer and sequence) may be one
     * the real rep2 used, and the streams would drop the forgery as a copy. */
    char subject[128], id[64];
    bool dup = true;
    snprintf(id, sizeof id, "forged-snapshot-%" PRIu64, epoch);
    must(ibp_bus_publish_envelope(evil_js, IBP_SUBJECT_OFFICIAL_SNAPSHOT,
                                  IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT,
                                  ibp_signer_id(rogue), seq, msg, len, id, 0, &stream_seq, &dup,
                                  &err),
         &err);
    assert_false(dup);
    ibp_subject_cosign(ibp_signer_id(rogue), subject, sizeof subject);
    snprintf(id, sizeof id, "forged-statement-%" PRIu64, epoch);
    dup = true;
    must(ibp_bus_publish_envelope(
             evil_js, subject, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EPOCH_STATEMENT,
             ibp_signer_id(rogue), sseq, sealed, slen, id, 0, NULL, &dup, &err),
         &err);
    assert_false(dup);
    free(msg);
    free(sealed);
    return stream_seq;
}

static json_t *cert_of(json_t *j)
{
    json_t *c = json_object_get(j, "certificate");
    assert_non_null(c);
    return c;
}

static json_int_t int_at(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("\"%s\" is not an integer", key);
    return json_integer_value(v);
}

/* A certified epoch as audit reports it: all three signed, nothing refused. */
static void check_certified(json_t *j, uint64_t epoch)
{
    assert_int_equal(int_at(j, "epoch"), (json_int_t)epoch);
    assert_true(json_is_true(json_object_get(j, "pass")));
    assert_true(json_is_true(json_object_get(j, "verified")));
    json_t *c = cert_of(j);
    assert_true(json_is_true(json_object_get(c, "certified")));
    assert_int_equal(int_at(c, "quorum"), 2);
    assert_int_equal(int_at(c, "signers"), 3);
    assert_int_equal(int_at(c, "consensus_nodes"), 3);
    assert_int_equal(json_array_size(json_object_get(c, "signed_by")), 3);
    assert_int_equal(json_array_size(json_object_get(c, "not_signed_by")), 0);
    assert_true(json_is_true(json_object_get(c, "prev_checked")));
}

static void test_audit_certificates(void **state)
{
    (void)state;
    ibp_err err;
    ibp_log_set_level(IBP_LOG_ERROR);
    assert_int_equal(ibp_testenv_private_start(&servers), 0);
    assert_int_equal(ibp_testenv_mkdtemp(dir, sizeof dir), 0);
    /* ibpctl runs as the operator (the admin role's NATS user). */
    assert_int_equal(ibp_testenv_nats_url(&servers.env, IBP_TESTENV_NATS_ADMIN, url, sizeof url),
                     0);

    ibp_roster_new(&roster);
    for (int i = 0; i < MONITORS; i++) {
        char id[16];
        snprintf(id, sizeof id, "mon%d", i + 1);
        ibp_key_generate(&mon_key[i]);
        must(ibp_roster_add(roster, id, mon_key[i].pk, IBP_ROLE_MONITOR, &err), &err);
        mon[i] = make_signer(id, id, &mon_key[i]);
    }
    for (int i = 0; i < REPLICAS; i++) {
        char id[16];
        snprintf(id, sizeof id, "rep%d", i + 1);
        ibp_key_generate(&rep_key[i]);
        must(ibp_roster_add(roster, id, rep_key[i].pk, IBP_ROLE_CONSENSUS, &err), &err);
        rep_signer[i] = make_signer(id, id, &rep_key[i]);
    }
    rogue = make_signer("rep2", "rogue", &rep_key[1]); /* rep2's real key, stolen */
    snprintf(roster_path, sizeof roster_path, "%s/roster.json", dir);
    must(ibp_roster_save(roster, roster_path, &err), &err);

    char curl[600];
    must(ibp_bus_connect_url(servers.env.nats_auth_url, "test", &pub_nc, &err), &err);
    assert_int_equal(natsConnection_JetStream(&js, pub_nc, NULL), NATS_OK);
    must(ibp_bus_ensure_streams(js, NULL, &err), &err);
    ibp_bus_streams_set_default(ibp_bus_streams_for_roles(IBP_ROLE_CONSENSUS));
    assert_int_equal(
        ibp_testenv_nats_url(&servers.env, IBP_TESTENV_NATS_CONSENSUS, curl, sizeof curl), 0);
    for (int i = 0; i < REPLICAS; i++)
        must(ibp_bus_connect_url(curl, "replica", &rep_nc[i], &err), &err);
    /* The thief logs in as a consensus node too: its key is one. */
    must(ibp_bus_connect_url(curl, "attacker", &evil_nc, &err), &err);
    assert_int_equal(natsConnection_JetStream(&evil_js, evil_nc, NULL), NATS_OK);
    ibp_replica *reps[REPLICAS];
    for (int i = 0; i < REPLICAS; i++)
        reps[i] = start_replica(i);

    /* Epoch 1 (all up) and epoch 2 (down), co-signed by the three replicas. */
    for (int i = 0; i < MONITORS; i++)
        observe(mon[i], true);
    wait_cosigned(reps, 1);
    observe(mon[0], false);
    observe(mon[1], false);
    wait_cosigned(reps, 2);

    json_t *j = NULL;
    char *errs = NULL;
    assert_int_equal(ctl(&j, NULL, "audit 1"), 0);
    check_certified(j, 1);
    /* Epoch 1 follows the empty state. */
    assert_string_equal(json_string_value(json_object_get(cert_of(j), "prev_digest")),
                        "0000000000000000000000000000000000000000000000000000000000000000");
    json_decref(j);
    assert_int_equal(ctl(&j, NULL, "audit 2"), 0);
    check_certified(j, 2);
    json_t *k0 = json_array_get(json_object_get(j, "keys"), 0);
    assert_string_equal(json_string_value(json_object_get(k0, "official")), "down");
    json_decref(j);
    assert_int_equal(ctl(&j, NULL, "snapshot --quorum 3"), 0);
    assert_int_equal(int_at(j, "epoch"), 2);
    assert_true(json_is_true(json_object_get(cert_of(j), "certified")));
    assert_int_equal(int_at(cert_of(j), "quorum"), 3);
    json_decref(j);

    /* The stolen key signs a second snapshot of epoch 2 after the real epoch 1,
     * and vouches for it. */
    uint64_t real2 = 0;
    {
        natsMsg *m = NULL;
        jsErrCode jerr = 0;
        assert_int_equal(
            js_GetLastMsg(&m, js, IBP_STREAM_OFFICIAL, IBP_SUBJECT_OFFICIAL_SNAPSHOT, NULL, &jerr),
            NATS_OK);
        real2 = natsMsg_GetSequence(m);
        natsMsg_Destroy(m);
    }
    uint8_t digest1[32], none[32] = {0};
    stored_digest(real2 - 1, digest1);
    uint64_t forged2 = forge(2, digest1);
    assert_int_equal(ctl(&j, &errs, "audit 2"), 0);
    check_certified(j, 2);
    json_t *c = cert_of(j);
    assert_int_equal(int_at(c, "stream_seq"), (json_int_t)real2);
    json_t *other = json_array_get(json_object_get(c, "other_snapshots"), 0);
    assert_non_null(other);
    assert_int_equal(int_at(other, "stream_seq"), (json_int_t)forged2);
    assert_true(json_is_false(json_object_get(other, "certified")));
    assert_int_equal(int_at(other, "signers"), 1);
    /* rep2's forged statement does not vouch for the real snapshot. */
    json_t *refused = json_object_get(c, "refused");
    assert_int_equal(json_array_size(refused), 1);
    json_t *r0 = json_array_get(refused, 0);
    assert_string_equal(json_string_value(json_object_get(r0, "signer")), "rep2");
    assert_true(json_is_true(json_object_get(r0, "signer_verified")));
    assert_string_equal(json_string_value(json_object_get(r0, "verdict")), "other_digest");
    assert_string_equal(json_string_value(json_object_get(r0, "subject")),
                        "ibp.official.cosign.rep2");
    assert_non_null(strstr(errs, "1 other snapshot of epoch 2 on OFFICIAL (0 certified)"));
    json_decref(j);
    free(errs);

    /* The stolen key signs a future epoch: one statement, below the quorum of 2. */
    uint64_t future = 12;
    forge(future, none);
    assert_int_equal(ctl(&j, &errs, "audit %" PRIu64, future), 1);
    assert_non_null(strstr(errs, "ibpctl audit: epoch 12 is NOT certified: 1 of 3 consensus "
                                 "nodes signed, quorum 2\n"));
    assert_true(json_is_false(json_object_get(j, "pass")));
    assert_true(json_is_true(json_object_get(j, "verified"))); /* a real key signed it */
    c = cert_of(j);
    char *shown = json_dumps(c, JSON_COMPACT);
    printf("certificate of the forged epoch: %s\n", shown);
    free(shown);
    assert_true(json_is_false(json_object_get(c, "certified")));
    assert_int_equal(int_at(c, "signers"), 1);
    assert_int_equal(int_at(c, "quorum"), 2);
    assert_int_equal(json_array_size(json_object_get(c, "signed_by")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(c, "signed_by"), 0)),
                        "rep2");
    assert_int_equal(json_array_size(json_object_get(c, "not_signed_by")), 2);
    assert_true(json_is_false(json_object_get(c, "prev_checked"))); /* no epoch 11 */
    json_decref(j);
    free(errs);
    /* snapshot --roster on the last message (the forgery) fails the same way. */
    assert_int_equal(ctl(&j, &errs, "snapshot"), 1);
    assert_int_equal(int_at(j, "epoch"), (json_int_t)future);
    assert_true(json_is_false(json_object_get(cert_of(j), "certified")));
    assert_non_null(strstr(errs, "ibpctl snapshot: epoch 12 is NOT certified: 1 of 3"));
    json_decref(j);
    free(errs);
    /* One key is what --quorum 1 asks for: it passes, with a warning. */
    assert_int_equal(ctl(&j, &errs, "audit %" PRIu64 " --quorum 1", future), 0);
    assert_non_null(strstr(errs, "warning: quorum 1"));
    assert_int_equal(int_at(cert_of(j), "quorum"), 1);
    json_decref(j);
    free(errs);
    /* More than the roster's consensus nodes is bad usage. */
    assert_int_equal(ctl(NULL, &errs, "audit 1 --quorum 4"), 2);
    assert_non_null(strstr(errs, "quorum 4 is more than the roster's 3 consensus nodes"));
    free(errs);

    /* The replicas go on after the forgeries: their next epoch is certified. */
    observe(mon[0], true);
    observe(mon[1], true);
    wait_cosigned(reps, 3);
    assert_int_equal(ctl(&j, NULL, "audit 3"), 0);
    check_certified(j, 3);
    json_decref(j);

    for (int i = 0; i < REPLICAS; i++) {
        ibp_replica_stop(reps[i]);
        natsConnection_Destroy(rep_nc[i]);
        ibp_signer_free(rep_signer[i]);
    }
    for (int i = 0; i < MONITORS; i++)
        ibp_signer_free(mon[i]);
    ibp_signer_free(rogue);
    jsCtx_Destroy(evil_js);
    natsConnection_Destroy(evil_nc);
    jsCtx_Destroy(js);
    natsConnection_Destroy(pub_nc);
    ibp_roster_free(roster);
    ibp_testenv_rmtree(dir);
    ibp_testenv_private_stop(&servers);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_audit_certificates)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (servers.started)
        ibp_testenv_private_stop(&servers);
    return rc;
}
