/*
 * Writes the seed corpora of the fuzz harnesses:
 *     ibp_fuzz_make_corpus OUT_DIR SOURCE_DIR
 * creates OUT_DIR/<harness>/ files (sealed envelopes of every payload type
 * signed with the fixed fuzz roster, encoded payloads, example configs, the
 * demo network, cache files, tokens, tiny MaxMind DB fragments). Deterministic
 * except for the cache files' saved_at (fixed here too). Run by hand when the
 * formats change:
 *     cmake --build build --target ibp_fuzz_make_corpus &&
 *     build/tests/fuzz/ibp_fuzz_make_corpus tests/fuzz/corpus .
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "fuzz_messages.h"
#include "ibp/cache.h"
#include "ibp/envelope.h"
#include "ibp/node_config.h"
#include "ibp/persist_config.h"
#include "ibp/result.h"

static const char *out_dir;

static void put(const char *harness, const char *name, const void *prefix, size_t prefix_len,
                const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, harness);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        ibp_fuzz_abort(path);
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, harness, name);
    FILE *f = fopen(path, "wb");
    if (!f || (prefix_len && fwrite(prefix, 1, prefix_len, f) != prefix_len) ||
        (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
        ibp_fuzz_abort(path);
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        ibp_fuzz_abort(path);
    uint8_t *buf = malloc(1 << 20);
    if (!buf)
        abort();
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

/* Encodes m with the selector byte of its type in front (see fuzz_messages.h). */
static void put_payload(const char *name, const ProtobufCMessage *m)
{
    uint8_t sel = 0;
    for (size_t i = 0; i < IBP_FUZZ_MESSAGE_COUNT; i++)
        if (ibp_fuzz_messages[i] == m->descriptor)
            sel = (uint8_t)i;
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n + 1);
    if (!buf)
        abort();
    protobuf_c_message_pack(m, buf);
    put("payload", name, &sel, 1, buf, n);
    free(buf);
}

static ibp_signer *signers[IBP_FUZZ_NODE_COUNT];

static void seal(size_t signer, ibp_payload_type type, const ProtobufCMessage *m, const char *name)
{
    uint8_t *out = NULL;
    size_t len = 0;
    ibp_err err;
    if (ibp_signer_seal(signers[signer], type, m, 1700000000000LL, &out, &len, NULL, &err) !=
        IBP_OK)
        ibp_fuzz_abort(err.msg);
    put("envelope", name, NULL, 0, out, len);
    free(out);
    put_payload(name, m);
}

static void envelopes_and_payloads(void)
{
    char seqdir[4096];
    ibp_err err;
    for (size_t i = 0; i < IBP_FUZZ_NODE_COUNT; i++) {
        ibp_key k;
        ibp_fuzz_key(i, &k);
        snprintf(seqdir, sizeof seqdir, "%s/%s.seq", ibp_fuzz_tmpdir(), ibp_fuzz_nodes[i].id);
        if (ibp_signer_new(ibp_fuzz_nodes[i].id, &k, seqdir, &signers[i], &err) != IBP_OK)
            ibp_fuzz_abort(err.msg);
    }

    /* ObservationBatch from mon1: a site, a domain and an endpoint observation. */
    Ibp__V1__ResultKey keys[3];
    Ibp__V1__Observation obs[3];
    Ibp__V1__Observation *obsp[3];
    for (int i = 0; i < 3; i++) {
        ibp__v1__result_key__init(&keys[i]);
        ibp__v1__observation__init(&obs[i]);
        keys[i].check_type = (Ibp__V1__CheckType)(i + 1);
        keys[i].check_name = i == 0 ? "ping" : i == 1 ? "dns" : "wss";
        keys[i].member = "Stake Plus";
        keys[i].domain = i == 0 ? "" : "rpc.example.org";
        keys[i].endpoint = i == 2 ? "wss://rpc.example.org/polkadot" : "";
        keys[i].ipv6 = i == 2;
        obs[i].key = &keys[i];
        obs[i].status = i == 1 ? IBP__V1__STATUS__STATUS_DOWN : IBP__V1__STATUS__STATUS_UP;
        obs[i].check_time_ms = 1700000000000LL + i;
        obs[i].error = i == 1 ? "connect: timeout" : "";
        obs[i].data_json = i == 2 ? "{\"latency_ms\":12}" : "";
        obsp[i] = &obs[i];
    }
    Ibp__V1__ObservationBatch batch;
    ibp__v1__observation_batch__init(&batch);
    batch.batch_seq = 7;
    batch.full = 1;
    batch.n_observations = 3;
    batch.observations = obsp;
    seal(0, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH, &batch.base,
         "observation_batch");
    batch.full = 0;
    batch.n_observations = 0;
    seal(0, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH, &batch.base,
         "observation_batch_empty");

    /* Heartbeats from a monitor and a replica. */
    Ibp__V1__Heartbeat hb;
    ibp__v1__heartbeat__init(&hb);
    char *roles[] = {"monitor", "consensus"};
    hb.n_roles = 1;
    hb.roles = roles;
    seal(0, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT, &hb.base, "heartbeat_monitor");
    hb.epoch = 42;
    hb.local_seq = 1234;
    hb.n_roles = 2;
    seal(1, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT, &hb.base, "heartbeat_replica");

    /* MemberOverride from the admin. */
    Ibp__V1__MemberOverride mo;
    ibp__v1__member_override__init(&mo);
    mo.member = "Stake Plus";
    mo.disabled = 1;
    mo.reason = "maintenance";
    seal(3, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_MEMBER_OVERRIDE, &mo.base, "member_override");

    /* OfficialSnapshot from the replica: interned strings, three entries, an override, evidence. */
    char *strings[] = {"",          "ping",      "Stake Plus", "rpc.example.org",
                       "wss://",    "/polkadot", "dns",        "timeout",
                       "{\"a\":1}", "mon1",      "wss",        "maint"};
    Ibp__V1__SnapshotEntry ent[3];
    Ibp__V1__SnapshotEntry *entp[3];
    for (int i = 0; i < 3; i++) {
        ibp__v1__snapshot_entry__init(&ent[i]);
        ent[i].check_type = (Ibp__V1__CheckType)(i + 1);
        ent[i].member = 2;
        ent[i].status = IBP__V1__STATUS__STATUS_UP;
        ent[i].check_time_ms = 1700000000000LL;
        entp[i] = &ent[i];
    }
    ent[0].check_name = 1;
    ent[1].check_name = 6;
    ent[1].domain = 3;
    ent[1].status = IBP__V1__STATUS__STATUS_DOWN;
    ent[1].error = 7;
    ent[2].check_name = 10;
    ent[2].domain = 3;
    ent[2].endpoint_scheme = 4;
    ent[2].endpoint_path = 5;
    ent[2].ipv6 = 1;
    ent[2].data_json = 8;
    Ibp__V1__SnapshotOverride so;
    ibp__v1__snapshot_override__init(&so);
    so.member = 2;
    so.disabled = 1;
    so.reason = 11;
    Ibp__V1__SnapshotOverride *sop[] = {&so};
    Ibp__V1__SnapshotVote vote;
    ibp__v1__snapshot_vote__init(&vote);
    vote.node = 9;
    vote.local_seq = 99;
    vote.batch_seq = 7;
    vote.status = IBP__V1__STATUS__STATUS_DOWN;
    Ibp__V1__SnapshotVote *votep[] = {&vote};
    Ibp__V1__SnapshotEvidence ev[2];
    ibp__v1__snapshot_evidence__init(&ev[0]);
    ibp__v1__snapshot_evidence__init(&ev[1]);
    ev[0].entry = 1;
    ev[0].n_votes = 1;
    ev[0].votes = votep;
    ev[1].removed = &keys[0];
    Ibp__V1__SnapshotEvidence *evp[] = {&ev[0], &ev[1]};
    uint8_t digest[32];
    memset(digest, 0xab, sizeof digest);
    Ibp__V1__OfficialSnapshot snap;
    ibp__v1__official_snapshot__init(&snap);
    snap.epoch = 42;
    snap.local_seq = 99;
    snap.applied_ms = 1700000000000LL;
    snap.state_digest.data = digest;
    snap.state_digest.len = sizeof digest;
    snap.n_strings = sizeof strings / sizeof strings[0];
    snap.strings = strings;
    snap.n_entries = 3;
    snap.entries = entp;
    snap.n_overrides = 1;
    snap.overrides = sop;
    snap.n_evidence = 2;
    snap.evidence = evp;
    seal(1, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT, &snap.base, "official_snapshot");
    char *empty_strings[] = {""};
    Ibp__V1__OfficialSnapshot snap0;
    ibp__v1__official_snapshot__init(&snap0);
    snap0.epoch = 1;
    snap0.n_strings = 1;
    snap0.strings = empty_strings;
    seal(1, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT, &snap0.base,
         "official_snapshot_empty");

    /* Events from the replica: a status change and an override. */
    Ibp__V1__Voter voter;
    ibp__v1__voter__init(&voter);
    voter.node = "mon1";
    voter.local_seq = 99;
    voter.batch_seq = 7;
    voter.status = IBP__V1__STATUS__STATUS_DOWN;
    Ibp__V1__Voter *voterp[] = {&voter};
    Ibp__V1__Event evt;
    ibp__v1__event__init(&evt);
    evt.id = "e-42-1";
    evt.kind = IBP__V1__EVENT_KIND__EVENT_KIND_STATUS;
    evt.key = &keys[1];
    evt.status = IBP__V1__STATUS__STATUS_DOWN;
    evt.error = "timeout";
    evt.data_json = "{}";
    evt.time_ms = 1700000000000LL;
    evt.epoch = 42;
    evt.n_voters = 1;
    evt.voters = voterp;
    seal(1, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT, &evt.base, "event_status");
    Ibp__V1__ResultKey okey;
    ibp__v1__result_key__init(&okey);
    okey.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE;
    okey.check_name = "override";
    okey.member = "Stake Plus";
    okey.domain = "";
    okey.endpoint = "";
    evt.id = "e-43-1";
    evt.kind = IBP__V1__EVENT_KIND__EVENT_KIND_OVERRIDE;
    evt.key = &okey;
    evt.n_voters = 0;
    evt.error = "maintenance";
    evt.data_json = "";
    seal(1, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT, &evt.base, "event_override");

    /* HitBatch from dns1. */
    Ibp__V1__HitRow rows[2];
    Ibp__V1__HitRow *rowp[2];
    for (int i = 0; i < 2; i++) {
        ibp__v1__hit_row__init(&rows[i]);
        rows[i].date = "2026-11-27";
        rows[i].domain = "rpc.example.org";
        rows[i].member = i ? "(none)" : "Stake Plus";
        rows[i].country_code = i ? "??" : "DE";
        rows[i].asn = i ? "" : "AS3320";
        rows[i].network_name = i ? "" : "Deutsche Telekom AG";
        rows[i].country_name = i ? "Unknown" : "Germany";
        rows[i].ipv6 = i;
        rows[i].hits = 17 + (uint64_t)i;
        rowp[i] = &rows[i];
    }
    Ibp__V1__HitBatch hits;
    ibp__v1__hit_batch__init(&hits);
    hits.node = "dns1";
    hits.flush_seq = 3;
    hits.n_rows = 2;
    hits.rows = rowp;
    seal(2, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH, &hits.base, "hit_batch");

    /* Payload-only seeds for the other message types. */
    put_payload("result_key", &keys[2].base);
    put_payload("observation", &obs[2].base);
    put_payload("snapshot_entry", &ent[2].base);
    put_payload("snapshot_override", &so.base);
    put_payload("snapshot_vote", &vote.base);
    put_payload("snapshot_evidence", &ev[0].base);
    put_payload("voter", &voter.base);
    put_payload("hit_row", &rows[0].base);
    Ibp__V1__ReplicaMonitor rmon;
    ibp__v1__replica_monitor__init(&rmon);
    rmon.node = "mon1";
    rmon.last_msg_ms = 1700000000000LL;
    Ibp__V1__ReplicaMonitor *rmonp[] = {&rmon};
    Ibp__V1__ReplicaObservation robs;
    ibp__v1__replica_observation__init(&robs);
    robs.monitor = 0;
    robs.status = IBP__V1__STATUS__STATUS_UP;
    robs.check_time_ms = 1700000000000LL;
    robs.stream_ms = 1700000000001LL;
    robs.local_seq = 5;
    robs.batch_seq = 2;
    robs.error = "";
    robs.data_json = "";
    Ibp__V1__ReplicaObservation *robsp[] = {&robs};
    Ibp__V1__ReplicaKey rkey;
    ibp__v1__replica_key__init(&rkey);
    rkey.key = &keys[0];
    rkey.last_seen_ms = 1700000000000LL;
    rkey.official = IBP__V1__STATUS__STATUS_UP;
    rkey.n_obs = 1;
    rkey.obs = robsp;
    Ibp__V1__ReplicaKey *rkeyp[] = {&rkey};
    Ibp__V1__ReplicaSignerSeq rss;
    ibp__v1__replica_signer_seq__init(&rss);
    rss.signer = "mon1";
    rss.seq = 5;
    Ibp__V1__ReplicaSignerSeq *rssp[] = {&rss};
    Ibp__V1__MemberOverride *mop[] = {&mo};
    Ibp__V1__ReplicaState rs;
    ibp__v1__replica_state__init(&rs);
    rs.version = 1;
    rs.epoch = 42;
    rs.local_seq = 99;
    rs.now_ms = 1700000000000LL;
    rs.digest.data = digest;
    rs.digest.len = sizeof digest;
    rs.n_monitors = 1;
    rs.monitors = rmonp;
    rs.n_keys = 1;
    rs.keys = rkeyp;
    rs.n_overrides = 1;
    rs.overrides = mop;
    rs.n_signer_seqs = 1;
    rs.signer_seqs = rssp;
    put_payload("replica_monitor", &rmon.base);
    put_payload("replica_observation", &robs.base);
    put_payload("replica_key", &rkey.base);
    put_payload("replica_signer_seq", &rss.base);
    put_payload("replica_state", &rs.base);

    /* An Envelope as a payload seed too. */
    size_t len;
    char path[4096];
    snprintf(path, sizeof path, "%s/envelope/hit_batch", out_dir);
    uint8_t *env = read_all(path, &len);
    uint8_t sel = 0;
    put("payload", "envelope", &sel, 1, env, len);
    free(env);

    for (size_t i = 0; i < IBP_FUZZ_NODE_COUNT; i++)
        ibp_signer_free(signers[i]);
}

static void configs(void)
{
    char *text = NULL;
    size_t len = 0;
    ibp_err err;
    FILE *f = open_memstream(&text, &len);
    if (!f || ibp_node_config_example(f, &err) != IBP_OK || fclose(f) != 0)
        ibp_fuzz_abort("node example");
    put("config", "node_example", "0", 1, text, len);
    free(text);
    f = open_memstream(&text, &len);
    if (!f || ibp_persist_config_example(f, &err) != IBP_OK || fclose(f) != 0)
        ibp_fuzz_abort("persist example");
    put("config", "persist_example", "1", 1, text, len);
    free(text);
    put("config", "node_empty", "0{}", 3, NULL, 0);
    put("config", "persist_empty", "1{}", 3, NULL, 0);
}

static void network(const char *src)
{
    char path[4096];
    size_t lm, ls, lc;
    snprintf(path, sizeof path, "%s/deploy/local/members.json", src);
    uint8_t *m = read_all(path, &lm);
    snprintf(path, sizeof path, "%s/deploy/local/services.json", src);
    uint8_t *s = read_all(path, &ls);
    snprintf(path, sizeof path, "%s/deploy/local/checks.json", src);
    uint8_t *c = read_all(path, &lc);
    size_t n = lm + 1 + ls + 1 + lc;
    uint8_t *all = malloc(n);
    if (!all)
        abort();
    memcpy(all, m, lm);
    all[lm] = 0;
    memcpy(all + lm + 1, s, ls);
    all[lm + 1 + ls] = 0;
    memcpy(all + lm + 2 + ls, c, lc);
    put("network", "demo", NULL, 0, all, n);
    put("network", "demo_no_checks", NULL, 0, all, lm + 1 + ls);
    put("network", "empty", "{}\0{}\0{}", 8, NULL, 0);
    free(all);
    free(m);
    free(s);
    free(c);
}

static void caches(void)
{
    ibp_err err;
    ibp_result *r[3] = {0};
    ibp_result_key k[3] = {
        {IBP_CHECK_SITE, "ping", "Stake Plus", "", "", false},
        {IBP_CHECK_DOMAIN, "dns", "Stake Plus", "rpc.example.org", "", false},
        {IBP_CHECK_ENDPOINT, "wss", "Stake Plus", "rpc.example.org",
         "wss://rpc.example.org/polkadot", true},
    };
    for (int i = 0; i < 3; i++)
        if (ibp_result_new(&k[i], i != 1, 1700000000000LL, i == 1 ? "timeout" : "",
                           i == 2 ? "{\"ms\":3}" : "", &r[i], &err) != IBP_OK)
            ibp_fuzz_abort(err.msg);
    ibp_cache_override ov = {"Stake Plus", true, "maintenance", 1700000000000LL};
    char path[4096];
    snprintf(path, sizeof path, "%s/cache.json", ibp_fuzz_tmpdir());
    for (int kind = 0; kind < 2; kind++) {
        ibp_cache_contents cc = {
            .kind = kind ? IBP_CACHE_LOCAL : IBP_CACHE_OFFICIAL,
            .saved_at_ms = 1700000000000LL,
            .has_epoch = !kind,
            .epoch = kind ? 0 : 42,
            .results = (const ibp_result *const *)r,
            .result_count = 3,
            .overrides = &ov,
            .override_count = 1,
        };
        if (ibp_cache_save(path, &cc, &err) != IBP_OK)
            ibp_fuzz_abort(err.msg);
        size_t len;
        uint8_t *text = read_all(path, &len);
        put("cache", kind ? "local" : "official", kind ? "1" : "0", 1, text, len);
        free(text);
        cc.result_count = 0;
        cc.override_count = 0;
        if (ibp_cache_save(path, &cc, &err) != IBP_OK)
            ibp_fuzz_abort(err.msg);
        text = read_all(path, &len);
        put("cache", kind ? "local_empty" : "official_empty", kind ? "1" : "0", 1, text, len);
        free(text);
    }
    for (int i = 0; i < 3; i++)
        ibp_result_free(r[i]);
}

static void tokens(void)
{
    static const char *const t[] = {
        "Stake~20Plus",
        "rpc~2Eibp~2Enetwork",
        "wss~3A~2F~2Frpc~2Eibp~2Enetwork~2Fpolkadot",
        "~",
        "plain_Token-1",
        "~00~FF~7E",
        "~2e",
        "~41",
    };
    char name[32];
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        snprintf(name, sizeof name, "token%zu", i);
        put("token", name, NULL, 0, t[i], strlen(t[i]));
    }
}

static void geo(void)
{
    /* Fragments only: real DBs come from tests/data and ../shared at build time. */
    static const uint8_t marker[] = "\xab\xcd\xefMaxMind.com";
    put("geo", "empty", NULL, 0, NULL, 0);
    put("geo", "metadata_marker_only", NULL, 0, marker, sizeof marker - 1);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s OUT_DIR SOURCE_DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        ibp_fuzz_abort(out_dir);
    ibp_log_set_hook(ibp_fuzz_quiet_log, NULL);
    if (ibp_crypto_init() != IBP_OK)
        ibp_fuzz_abort("crypto");
    envelopes_and_payloads();
    configs();
    network(argv[2]);
    caches();
    tokens();
    geo();
    return 0;
}
