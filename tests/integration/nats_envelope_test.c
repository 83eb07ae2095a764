/*
 * Signed envelopes through a real JetStream stream (DESIGN.md §4, §5):
 * seal an ObservationBatch, publish it with the Ibp-* and Nats-Msg-Id
 * headers, check that JetStream drops a duplicate by Nats-Msg-Id, read the
 * messages back through a durable pull consumer, verify them against the
 * roster, and check that a tampered copy and a replay are rejected.
 *
 * Uses a stream and subject of its own ("it.<unique>.local.mon1"), so it can
 * run beside other tests on the same server. First, the server refuses a
 * connection without a login.
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
#include "ibp/roster.h"
#include "ibp/status.h"
#include "ibp/subject.h"
#include "testenv.h"

#define NODE_ID "mon1"
#define FETCH_TIMEOUT_MS 5000

typedef struct fixture {
    ibp_testenv env;
    char tmpdir[1024];
    char stream[96];
    char subject[192];
    char durable[96];
    natsConnection *nc;
    jsCtx *js;
    bool stream_made;
    ibp_key key;
    ibp_roster *roster;
    ibp_signer *signer;
    ibp_verifier *verifier;
} fixture;

/* Fails the test with a message naming the NATS call and both error codes. */
#define CHECK_NATS(call, s, jerr)                                                                  \
    do {                                                                                           \
        if ((s) != NATS_OK)                                                                        \
            fail_msg("%s: %s (jsErrCode %d, last error: %s)", call, natsStatus_GetText(s),         \
                     (int)(jerr), nats_GetLastError(NULL));                                        \
    } while (0)

#define CHECK_IBP(call, st, err)                                                                   \
    do {                                                                                           \
        if ((st) != IBP_OK)                                                                        \
            fail_msg("%s: %s (%s): %s", call, ibp_status_name(st), ibp_strerror(st), (err).msg);   \
    } while (0)

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    ibp_err err;
    char unique[64];
    jsErrCode jerr = 0;

    if (f == NULL)
        return -1;
    *state = f;
    if (ibp_testenv_load(&f->env) != 0)
        return -1;
    ibp_testenv_print(&f->env);

    char version[64];
    if (ibp_testenv_nats_server_version(&f->env, version, sizeof version) != 0)
        return -1;
    printf("nats-server reports version %s (client nats.c %s)\n", version, nats_GetVersion());
    fflush(stdout);

    if (ibp_testenv_unique_name("it", unique, sizeof unique) != 0)
        return -1;
    snprintf(f->stream, sizeof f->stream, "IT_ENV_%s", unique);
    /* The unique name has no '.', so it is one subject token. */
    snprintf(f->subject, sizeof f->subject, "it.%s.local.%s", unique, NODE_ID);
    snprintf(f->durable, sizeof f->durable, "persist_%s", unique);

    if (ibp_testenv_mkdtemp(f->tmpdir, sizeof f->tmpdir) != 0)
        return -1;

    if (ibp_crypto_init() != IBP_OK || ibp_key_generate(&f->key) != IBP_OK) {
        fprintf(stderr, "setup: key generation failed\n");
        return -1;
    }
    ibp_err_clear(&err);
    if (ibp_roster_new(&f->roster) != IBP_OK ||
        ibp_roster_add(f->roster, NODE_ID, f->key.pk, IBP_ROLE_MONITOR, &err) != IBP_OK) {
        fprintf(stderr, "setup: roster: %s\n", err.msg);
        return -1;
    }
    char seq_path[1100];
    snprintf(seq_path, sizeof seq_path, "%s/%s.seq", f->tmpdir, NODE_ID);
    if (ibp_signer_new(NODE_ID, &f->key, seq_path, &f->signer, &err) != IBP_OK) {
        fprintf(stderr, "setup: signer: %s\n", err.msg);
        return -1;
    }
    ibp_verifier_opts vopts;
    ibp_verifier_opts_init(&vopts);
    vopts.log_component = "it-verify";
    if (ibp_verifier_new(f->roster, &vopts, &f->verifier) != IBP_OK) {
        fprintf(stderr, "setup: verifier\n");
        return -1;
    }

    if (ibp_testenv_nats_connect(&f->env, &f->nc) != NATS_OK)
        return -1;
    natsStatus s = natsConnection_JetStream(&f->js, f->nc, NULL);
    if (s != NATS_OK) {
        fprintf(stderr, "setup: JetStream context: %s\n", natsStatus_GetText(s));
        return -1;
    }

    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char *subjects[] = {f->subject};
    cfg.Name = f->stream;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Retention = js_LimitsPolicy;
    cfg.Duplicates = (int64_t)120 * 1000 * 1000 * 1000; /* 2 min dedup window, in ns */
    jsStreamInfo *si = NULL;
    s = js_AddStream(&si, f->js, &cfg, NULL, &jerr);
    if (s != NATS_OK) {
        fprintf(stderr, "setup: js_AddStream %s on %s: %s (jsErrCode %d): %s\n", f->stream,
                f->subject, natsStatus_GetText(s), (int)jerr, nats_GetLastError(NULL));
        return -1;
    }
    jsStreamInfo_Destroy(si);
    f->stream_made = true;
    printf("stream %s on subject %s\n", f->stream, f->subject);
    fflush(stdout);
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    int rc = 0;
    if (f == NULL)
        return 0;
    if (f->stream_made) {
        jsErrCode jerr = 0;
        natsStatus s = js_DeleteStream(f->js, f->stream, NULL, &jerr);
        if (s != NATS_OK) {
            fprintf(stderr, "teardown: js_DeleteStream %s: %s (jsErrCode %d)\n", f->stream,
                    natsStatus_GetText(s), (int)jerr);
            rc = -1;
        }
    }
    jsCtx_Destroy(f->js);
    natsConnection_Destroy(f->nc);
    ibp_verifier_free(f->verifier);
    ibp_signer_free(f->signer);
    ibp_roster_free(f->roster);
    ibp_key_wipe(&f->key);
    if (f->tmpdir[0] != '\0' && ibp_testenv_rmtree(f->tmpdir) != 0)
        rc = -1;
    free(f);
    nats_Close();
    return rc;
}

/* What the test sends in batch number n, so the reader can compare. */
static void fill_batch(int n, Ibp__V1__ObservationBatch *batch, Ibp__V1__Observation *obs,
                       Ibp__V1__Observation **obs_ptrs, Ibp__V1__ResultKey *key)
{
    ibp__v1__result_key__init(key);
    key->check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
    key->check_name = "wss";
    key->member = "Stake Plus";
    key->domain = "rpc.ibp.network";
    key->endpoint = "wss://rpc.ibp.network/polkadot";
    key->ipv6 = n % 2 == 0;

    ibp__v1__observation__init(obs);
    obs->key = key;
    obs->status = n == 1 ? IBP__V1__STATUS__STATUS_DOWN : IBP__V1__STATUS__STATUS_UP;
    obs->check_time_ms = 1700000000000LL + n;
    obs->error = n == 1 ? "connection refused" : "";
    obs->data_json = "{\"latency_ms\":42}";
    obs_ptrs[0] = obs;

    ibp__v1__observation_batch__init(batch);
    batch->batch_seq = (uint64_t)n;
    batch->full = n == 1;
    batch->n_observations = 1;
    batch->observations = obs_ptrs;
}

static void check_batch_equal(int n, const Ibp__V1__ObservationBatch *got)
{
    Ibp__V1__ObservationBatch want;
    Ibp__V1__Observation obs, *ptrs[1];
    Ibp__V1__ResultKey key;
    fill_batch(n, &want, &obs, ptrs, &key);

    assert_int_equal(got->batch_seq, want.batch_seq);
    assert_int_equal(got->full, want.full);
    assert_int_equal(got->n_observations, 1);
    const Ibp__V1__Observation *o = got->observations[0];
    assert_non_null(o->key);
    assert_int_equal(o->key->check_type, key.check_type);
    assert_string_equal(o->key->check_name, key.check_name);
    assert_string_equal(o->key->member, key.member);
    assert_string_equal(o->key->domain, key.domain);
    assert_string_equal(o->key->endpoint, key.endpoint);
    assert_int_equal(o->key->ipv6, key.ipv6);
    assert_int_equal(o->status, obs.status);
    assert_int_equal(o->check_time_ms, obs.check_time_ms);
    assert_string_equal(o->error, obs.error);
    assert_string_equal(o->data_json, obs.data_json);
}

/* Seals batch n and publishes it with the house headers; returns the envelope. */
static void seal_batch(fixture *f, int n, uint8_t **env_out, size_t *len_out, uint64_t *seq_out)
{
    Ibp__V1__ObservationBatch batch;
    Ibp__V1__Observation obs, *ptrs[1];
    Ibp__V1__ResultKey key;
    ibp_err err;
    ibp_err_clear(&err);
    fill_batch(n, &batch, &obs, ptrs, &key);
    ibp_status st =
        ibp_signer_seal(f->signer, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH,
                        &batch.base, 1700000000000LL + n, env_out, len_out, seq_out, &err);
    CHECK_IBP("ibp_signer_seal", st, err);
}

static jsPubAck *publish(fixture *f, const uint8_t *data, size_t len, uint64_t seq)
{
    natsMsg *msg = NULL;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    char msg_id[IBP_NODE_ID_MAX + 32];
    const char *type_name =
        ibp_payload_type_name(IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH);

    assert_non_null(type_name);
    snprintf(msg_id, sizeof msg_id, "%s-%llu", NODE_ID, (unsigned long long)seq);
    natsStatus s = natsMsg_Create(&msg, f->subject, NULL, (const char *)data, (int)len);
    CHECK_NATS("natsMsg_Create", s, jerr);
    s = natsMsgHeader_Set(msg, IBP_HDR_TYPE, type_name);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, IBP_HDR_SIGNER, NODE_ID);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, IBP_HDR_MSG_ID, msg_id);
    CHECK_NATS("natsMsgHeader_Set", s, jerr);
    s = js_PublishMsg(&pa, f->js, msg, NULL, &jerr);
    natsMsg_Destroy(msg);
    CHECK_NATS("js_PublishMsg", s, jerr);
    assert_non_null(pa);
    assert_string_equal(pa->Stream, f->stream);
    return pa;
}

/* Decodes env, flips one bit of its payload and encodes it again. */
static uint8_t *tamper(const uint8_t *data, size_t len, size_t *out_len)
{
    Ibp__V1__Envelope *env = ibp__v1__envelope__unpack(NULL, len, data);
    assert_non_null(env);
    assert_true(env->payload.len > 0);
    env->payload.data[env->payload.len - 1] ^= 0x01;
    size_t n = ibp__v1__envelope__get_packed_size(env);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    *out_len = ibp__v1__envelope__pack(env, buf);
    ibp__v1__envelope__free_unpacked(env, NULL);
    return buf;
}

static void test_envelope_roundtrip(void **state)
{
    fixture *f = *state;
    uint8_t *env1 = NULL, *env2 = NULL;
    size_t len1 = 0, len2 = 0;
    uint64_t seq1 = 0, seq2 = 0;
    jsErrCode jerr = 0;
    natsStatus s;
    ibp_err err;

    /* 1. Seal and publish two batches; publish the first one again. */
    seal_batch(f, 1, &env1, &len1, &seq1);
    seal_batch(f, 2, &env2, &len2, &seq2);
    assert_true(seq2 > seq1);

    jsPubAck *pa1 = publish(f, env1, len1, seq1);
    assert_false(pa1->Duplicate);
    assert_int_equal(pa1->Sequence, 1);

    jsPubAck *dup = publish(f, env1, len1, seq1);
    if (!dup->Duplicate)
        fail_msg("re-publishing Nats-Msg-Id %s-%llu: PubAck.Duplicate is false (stream seq %llu),"
                 " want true",
                 NODE_ID, (unsigned long long)seq1, (unsigned long long)dup->Sequence);
    assert_int_equal(dup->Sequence, pa1->Sequence);

    jsPubAck *pa2 = publish(f, env2, len2, seq2);
    assert_false(pa2->Duplicate);
    assert_int_equal(pa2->Sequence, 2);
    jsPubAck_Destroy(pa1);
    jsPubAck_Destroy(dup);
    jsPubAck_Destroy(pa2);

    jsStreamInfo *si = NULL;
    s = js_GetStreamInfo(&si, f->js, f->stream, NULL, &jerr);
    CHECK_NATS("js_GetStreamInfo", s, jerr);
    assert_int_equal(si->State.Msgs, 2); /* the duplicate was not stored */
    jsStreamInfo_Destroy(si);

    /* 2. Read both back through a durable pull consumer, verify, ack. */
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = f->stream;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.DeliverPolicy = js_DeliverAll;
    natsSubscription *sub = NULL;
    s = js_PullSubscribe(&sub, f->js, f->subject, f->durable, NULL, &so, &jerr);
    CHECK_NATS("js_PullSubscribe", s, jerr);

    uint64_t want_seq[2] = {seq1, seq2};
    int received = 0;
    while (received < 2) {
        natsMsgList list = {0};
        s = natsSubscription_Fetch(&list, sub, 2 - received, FETCH_TIMEOUT_MS, &jerr);
        if (s == NATS_TIMEOUT)
            fail_msg("natsSubscription_Fetch: timed out after %d ms with %d of 2 messages",
                     FETCH_TIMEOUT_MS, received);
        CHECK_NATS("natsSubscription_Fetch", s, jerr);
        for (int i = 0; i < list.Count; i++, received++) {
            natsMsg *m = list.Msgs[i];
            const char *hv = NULL;

            assert_int_equal(natsMsgHeader_Get(m, IBP_HDR_TYPE, &hv), NATS_OK);
            assert_string_equal(hv, "ObservationBatch");
            assert_int_equal(natsMsgHeader_Get(m, IBP_HDR_SIGNER, &hv), NATS_OK);
            assert_string_equal(hv, NODE_ID);
            char want_id[64];
            snprintf(want_id, sizeof want_id, "%s-%llu", NODE_ID,
                     (unsigned long long)want_seq[received]);
            assert_int_equal(natsMsgHeader_Get(m, IBP_HDR_MSG_ID, &hv), NATS_OK);
            assert_string_equal(hv, want_id);

            jsMsgMetaData *meta = NULL;
            s = natsMsg_GetMetaData(&meta, m);
            CHECK_NATS("natsMsg_GetMetaData", s, jerr);
            assert_int_equal(meta->Sequence.Stream, (uint64_t)received + 1);
            jsMsgMetaData_Destroy(meta);

            ibp_verified vm = {0};
            ibp_err_clear(&err);
            ibp_status st = ibp_verifier_check(f->verifier, (const uint8_t *)natsMsg_GetData(m),
                                               (size_t)natsMsg_GetDataLength(m), &vm, &err);
            CHECK_IBP("ibp_verifier_check", st, err);
            assert_string_equal(vm.envelope->signer, NODE_ID);
            assert_int_equal(vm.envelope->seq, want_seq[received]);
            assert_int_equal(vm.envelope->type,
                             IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH);
            assert_non_null(vm.signer);
            assert_string_equal(vm.signer->id, NODE_ID);
            check_batch_equal(received + 1, (const Ibp__V1__ObservationBatch *)vm.payload);
            ibp_verified_clear(&vm);

            s = natsMsg_AckSync(m, NULL, &jerr);
            CHECK_NATS("natsMsg_AckSync", s, jerr);
        }
        natsMsgList_Destroy(&list);
    }
    assert_int_equal(ibp_verifier_accepted(f->verifier), 2);
    assert_int_equal(ibp_verifier_last_seq(f->verifier, NODE_ID), seq2);

    /* Both acked: the consumer has nothing pending. */
    jsConsumerInfo *ci = NULL;
    s = js_GetConsumerInfo(&ci, f->js, f->stream, f->durable, NULL, &jerr);
    CHECK_NATS("js_GetConsumerInfo", s, jerr);
    assert_int_equal(ci->NumAckPending, 0);
    assert_int_equal(ci->NumPending, 0);
    assert_int_equal(ci->AckFloor.Stream, 2);
    jsConsumerInfo_Destroy(ci);
    natsSubscription_Destroy(sub);

    /* 3. A tampered copy of an accepted message: bad signature. */
    size_t tlen = 0;
    uint8_t *tampered = tamper(env2, len2, &tlen);
    ibp_verified vm = {0};
    ibp_err_clear(&err);
    ibp_status st = ibp_verifier_check(f->verifier, tampered, tlen, &vm, &err);
    if (st != IBP_E_BAD_SIGNATURE)
        fail_msg("tampered envelope: got %s (%s), want IBP_E_BAD_SIGNATURE", ibp_status_name(st),
                 err.msg);
    assert_int_equal(ibp_verifier_rejected(f->verifier, IBP_E_BAD_SIGNATURE), 1);
    free(tampered);

    /* 4. The first message again: a replay. */
    ibp_err_clear(&err);
    st = ibp_verifier_check(f->verifier, env1, len1, &vm, &err);
    if (st != IBP_E_REPLAY)
        fail_msg("replayed envelope seq %llu: got %s (%s), want IBP_E_REPLAY",
                 (unsigned long long)seq1, ibp_status_name(st), err.msg);
    assert_int_equal(ibp_verifier_rejected(f->verifier, IBP_E_REPLAY), 1);
    assert_int_equal(ibp_verifier_accepted(f->verifier), 2);

    free(env1);
    free(env2);
}

/* Connects to url with user and password (NULL: none); returns the status. */
static natsStatus try_login(const char *what, const char *url, const char *user,
                            const char *password)
{
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetURL(o, url);
    if (s == NATS_OK && user != NULL)
        s = natsOptions_SetUserInfo(o, user, password);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, 0);
    if (s == NATS_OK)
        s = natsConnection_Connect(&nc, o);
    printf("  login %s -> %s\n", what, natsStatus_GetText(s));
    fflush(stdout);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    return s;
}

/*
 * The harness server requires a login, as in production (DESIGN.md §13): an
 * anonymous connection and a wrong password are refused; the test
 * administrator's credentials, given as options or in the URL, are accepted.
 */
static void test_login_required(void **state)
{
    (void)state;
    ibp_testenv env;
    assert_int_equal(ibp_testenv_load(&env), 0);
    const ibp_testenv_nats_user *admin = &env.nats_users[IBP_TESTENV_NATS_TEST];

    assert_int_equal(try_login("anonymous", env.nats_url, NULL, NULL), NATS_CONNECTION_AUTH_FAILED);
    assert_int_equal(try_login("with a wrong password", env.nats_url, admin->user, "wrong"),
                     NATS_CONNECTION_AUTH_FAILED);
    assert_int_equal(
        try_login("as the test administrator", env.nats_url, admin->user, admin->password),
        NATS_OK);

    natsConnection *nc = NULL;
    assert_int_equal(try_login("with the credentials in the URL", env.nats_auth_url, NULL, NULL),
                     NATS_OK);
    for (int r = 0; r < IBP_TESTENV_NATS_ROLES; r++) {
        assert_int_equal(ibp_testenv_nats_connect_as(&env, (ibp_testenv_nats_role)r, &nc), NATS_OK);
        natsConnection_Destroy(nc);
        nc = NULL;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_required),
        cmocka_unit_test_setup_teardown(test_envelope_roundtrip, setup, teardown),
    };
    return cmocka_run_group_tests_name("nats_envelope", tests, NULL, NULL);
}
