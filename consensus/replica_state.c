/* A replica's saved state; see ibp/replica_state.h. */
#include "ibp/replica_state.h"

#include <stdlib.h>
#include <string.h>

#include "ibp/atomic_file.h"
#include "ibp/ibp.pb-c.h"
#include "ibp/local_msg.h"

/* Check types cross between the engine and the wire by value. */
_Static_assert(IBP_VOTE_SITE == (int)IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE, "CheckType SITE");
_Static_assert(IBP_VOTE_DOMAIN == (int)IBP__V1__CHECK_TYPE__CHECK_TYPE_DOMAIN, "CheckType DOMAIN");
_Static_assert(IBP_VOTE_ENDPOINT == (int)IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT,
               "CheckType ENDPOINT");

#define STATE_VERSION 1
#define STATE_FILE_MAX ((size_t)2 * 1024 * 1024 * 1024)

static char *nzc(const char *s)
{
    return (char *)(s ? s : "");
}

ibp_status ibp_replica_state_encode(ibp_vote *e, const ibp_verifier *v, const ibp_roster *roster,
                                    const ibp_replica_prev *prev, uint8_t **out, size_t *out_len,
                                    ibp_err *err)
{
    ibp_vote_state vs;
    ibp_status st = IBP_E_NOMEM;
    Ibp__V1__ReplicaMonitor *mon = NULL, **monp = NULL;
    Ibp__V1__ReplicaKey *keys = NULL, **keysp = NULL;
    Ibp__V1__ResultKey *rkeys = NULL;
    Ibp__V1__ReplicaObservation *obs = NULL, **obsp = NULL;
    Ibp__V1__MemberOverride *ovr = NULL, **ovrp = NULL;
    Ibp__V1__ReplicaSignerSeq *seqs = NULL, **seqsp = NULL;
    uint8_t *buf = NULL;
    size_t nobs = 0, nsig = ibp_roster_count(roster);

    ibp_vote_rc rc = ibp_vote_export(e, &vs);
    if (rc != IBP_VOTE_OK)
        return ibp_err_set(err, rc == IBP_VOTE_E_NOMEM ? IBP_E_NOMEM : IBP_E_INVAL,
                           "encode replica state: export: %s", ibp_vote_strerror(rc));
    for (size_t i = 0; i < vs.nkeys; i++)
        nobs += vs.keys[i].nobs;
#define ALLOC(p, n) (p = calloc((n) ? (n) : 1, sizeof *(p)))
    if (!ALLOC(mon, vs.nmonitors) || !ALLOC(monp, vs.nmonitors) || !ALLOC(keys, vs.nkeys) ||
        !ALLOC(keysp, vs.nkeys) || !ALLOC(rkeys, vs.nkeys) || !ALLOC(obs, nobs) ||
        !ALLOC(obsp, nobs) || !ALLOC(ovr, vs.noverrides) || !ALLOC(ovrp, vs.noverrides) ||
        !ALLOC(seqs, nsig) || !ALLOC(seqsp, nsig))
        goto nomem;
#undef ALLOC
    for (size_t i = 0; i < vs.nmonitors; i++) {
        ibp__v1__replica_monitor__init(&mon[i]);
        mon[i].node = nzc(vs.monitors[i].node);
        mon[i].last_msg_ms = vs.monitors[i].last_msg_ms;
        monp[i] = &mon[i];
    }
    size_t oi = 0;
    for (size_t i = 0; i < vs.nkeys; i++) {
        const ibp_vote_state_key *k = &vs.keys[i];
        Ibp__V1__ReplicaKey *rk = &keys[i];
        ibp__v1__replica_key__init(rk);
        ibp__v1__result_key__init(&rkeys[i]);
        rkeys[i].check_type = (Ibp__V1__CheckType)k->key.type;
        rkeys[i].check_name = nzc(k->key.check_name);
        rkeys[i].member = nzc(k->key.member);
        rkeys[i].domain = nzc(k->key.domain);
        rkeys[i].endpoint = nzc(k->key.endpoint);
        rkeys[i].ipv6 = k->key.ipv6;
        rk->key = &rkeys[i];
        rk->last_seen_ms = k->last_seen_ms;
        rk->official = ibp_local_status_to_wire(k->official);
        rk->check_time_ms = k->check_time_ms;
        rk->error = nzc(k->error);
        rk->data_json = nzc(k->data_json);
        rk->obs = &obsp[oi];
        rk->n_obs = k->nobs;
        for (size_t j = 0; j < k->nobs; j++, oi++) {
            const ibp_vote_state_obs *o = &k->obs[j];
            ibp__v1__replica_observation__init(&obs[oi]);
            obs[oi].monitor = o->monitor;
            obs[oi].status = ibp_local_status_to_wire(o->status);
            obs[oi].check_time_ms = o->check_time_ms;
            obs[oi].stream_ms = o->stream_ms;
            obs[oi].local_seq = o->local_seq;
            obs[oi].batch_seq = o->batch_seq;
            obs[oi].error = nzc(o->error);
            obs[oi].data_json = nzc(o->data_json);
            obsp[oi] = &obs[oi];
        }
        keysp[i] = rk;
    }
    for (size_t i = 0; i < vs.noverrides; i++) {
        ibp__v1__member_override__init(&ovr[i]);
        ovr[i].member = nzc(vs.overrides[i].member);
        ovr[i].disabled = vs.overrides[i].disabled;
        ovr[i].reason = nzc(vs.overrides[i].reason);
        ovrp[i] = &ovr[i];
    }
    size_t ns = 0;
    for (size_t i = 0; i < nsig; i++) {
        const ibp_roster_node *n = ibp_roster_at(roster, i);
        uint64_t last = ibp_verifier_last_seq(v, n->id);
        if (!last)
            continue;
        ibp__v1__replica_signer_seq__init(&seqs[ns]);
        seqs[ns].signer = (char *)n->id;
        seqs[ns].seq = last;
        seqsp[ns] = &seqs[ns];
        ns++;
    }
    Ibp__V1__ReplicaState rs = IBP__V1__REPLICA_STATE__INIT;
    rs.version = STATE_VERSION;
    rs.epoch = vs.epoch;
    rs.local_seq = vs.local_seq;
    rs.now_ms = vs.now_ms;
    rs.digest.data = vs.digest;
    rs.digest.len = sizeof vs.digest;
    rs.n_monitors = vs.nmonitors;
    rs.monitors = monp;
    rs.n_keys = vs.nkeys;
    rs.keys = keysp;
    rs.n_overrides = vs.noverrides;
    rs.overrides = ovrp;
    rs.n_signer_seqs = ns;
    rs.signer_seqs = seqsp;
    if (prev && prev->known) {
        rs.prev_digest.data = (uint8_t *)prev->digest;
        rs.prev_digest.len = sizeof prev->digest;
    }
    size_t len = ibp__v1__replica_state__get_packed_size(&rs);
    if (!(buf = malloc(len ? len : 1)))
        goto nomem;
    ibp__v1__replica_state__pack(&rs, buf);
    *out = buf;
    *out_len = len;
    buf = NULL;
    st = IBP_OK;
    goto out;
nomem:
    ibp_err_set(err, IBP_E_NOMEM, "encode replica state: out of memory");
out:
    free(buf);
    free(seqsp);
    free(seqs);
    free(ovrp);
    free(ovr);
    free(obsp);
    free(obs);
    free(rkeys);
    free(keysp);
    free(keys);
    free(monp);
    free(mon);
    return st;
}

ibp_status ibp_replica_state_save(const char *path, ibp_vote *e, const ibp_verifier *v,
                                  const ibp_roster *roster, const ibp_replica_prev *prev,
                                  ibp_err *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    ibp_status st = ibp_replica_state_encode(e, v, roster, prev, &buf, &len, err);
    if (st == IBP_OK)
        st = ibp_file_write_atomic(path, buf, len, 0600, err);
    free(buf);
    if (st != IBP_OK)
        ibp_err_wrap(err, "save replica state %s", path);
    return st;
}

ibp_status ibp_replica_state_check(const Ibp__V1__ReplicaState *rs, ibp_err *err)
{
    if (rs->version != STATE_VERSION || rs->digest.len != IBP_VOTE_DIGEST_SIZE)
        return ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                           "version %u or digest size %zu not supported", rs->version,
                           rs->digest.len);
    return IBP_OK;
}

ibp_status ibp_replica_state_decode(const uint8_t *buf, size_t len, Ibp__V1__ReplicaState **out,
                                    ibp_err *err)
{
    Ibp__V1__ReplicaState *rs = ibp__v1__replica_state__unpack(NULL, len, buf);
    if (!rs)
        return ibp_err_set(err, IBP_E_PAYLOAD_DECODE, "does not decode");
    ibp_status st = ibp_replica_state_check(rs, err);
    if (st != IBP_OK) {
        ibp__v1__replica_state__free_unpacked(rs, NULL);
        return st;
    }
    *out = rs;
    return IBP_OK;
}

ibp_status ibp_replica_state_import(const Ibp__V1__ReplicaState *rs, const ibp_vote_config *cfg,
                                    ibp_vote **engine_out, ibp_err *err)
{
    ibp_status st = ibp_replica_state_check(rs, err);
    if (st != IBP_OK) {
        if (err)
            err->code = IBP_E_CONFIG;
        return IBP_E_CONFIG;
    }
    size_t nobs = 0;
    for (size_t i = 0; i < rs->n_keys; i++)
        nobs += rs->keys[i]->n_obs;
    ibp_vote_state_monitor *mon = calloc(rs->n_monitors ? rs->n_monitors : 1, sizeof *mon);
    ibp_vote_state_key *keys = calloc(rs->n_keys ? rs->n_keys : 1, sizeof *keys);
    ibp_vote_state_obs *obs = calloc(nobs ? nobs : 1, sizeof *obs);
    ibp_vote_override *ovr = calloc(rs->n_overrides ? rs->n_overrides : 1, sizeof *ovr);
    if (!mon || !keys || !obs || !ovr) {
        st = ibp_err_set(err, IBP_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < rs->n_monitors; i++)
        mon[i] = (ibp_vote_state_monitor){rs->monitors[i]->node, rs->monitors[i]->last_msg_ms};
    size_t oi = 0;
    for (size_t i = 0; i < rs->n_keys; i++) {
        const Ibp__V1__ReplicaKey *k = rs->keys[i];
        if (!k->key) {
            st = ibp_err_set(err, IBP_E_CONFIG, "key %zu has no key", i);
            goto out;
        }
        keys[i].key = (ibp_vote_key){(ibp_vote_check)k->key->check_type,
                                     k->key->check_name,
                                     k->key->member,
                                     k->key->domain,
                                     k->key->endpoint,
                                     k->key->ipv6};
        keys[i].last_seen_ms = k->last_seen_ms;
        keys[i].official = ibp_local_status_from_wire(k->official);
        keys[i].check_time_ms = k->check_time_ms;
        keys[i].error = k->error;
        keys[i].data_json = k->data_json;
        keys[i].obs = &obs[oi];
        keys[i].nobs = k->n_obs;
        for (size_t j = 0; j < k->n_obs; j++, oi++) {
            const Ibp__V1__ReplicaObservation *o = k->obs[j];
            obs[oi] = (ibp_vote_state_obs){o->monitor,       ibp_local_status_from_wire(o->status),
                                           o->check_time_ms, o->stream_ms,
                                           o->local_seq,     o->batch_seq,
                                           o->error,         o->data_json};
        }
    }
    for (size_t i = 0; i < rs->n_overrides; i++)
        ovr[i] = (ibp_vote_override){rs->overrides[i]->member, rs->overrides[i]->disabled,
                                     rs->overrides[i]->reason};
    ibp_vote_state vs = {
        .epoch = rs->epoch,
        .local_seq = rs->local_seq,
        .now_ms = rs->now_ms,
        .monitors = mon,
        .nmonitors = rs->n_monitors,
        .keys = keys,
        .nkeys = rs->n_keys,
        .overrides = ovr,
        .noverrides = rs->n_overrides,
    };
    memcpy(vs.digest, rs->digest.data, IBP_VOTE_DIGEST_SIZE);
    char why[256] = "";
    ibp_vote_rc rc = ibp_vote_import(cfg, &vs, engine_out, why, sizeof why);
    if (rc != IBP_VOTE_OK) {
        st = ibp_err_set(err, rc == IBP_VOTE_E_NOMEM ? IBP_E_NOMEM : IBP_E_CONFIG, "%s: %s",
                         ibp_vote_strerror(rc), why);
        goto out;
    }
    st = IBP_OK;
out:
    free(mon);
    free(keys);
    free(obs);
    free(ovr);
    return st;
}

void ibp_replica_state_set_seqs(const Ibp__V1__ReplicaState *rs, ibp_verifier *v)
{
    for (size_t i = 0; i < rs->n_signer_seqs; i++)
        ibp_verifier_set_last_seq(v, rs->signer_seqs[i]->signer, rs->signer_seqs[i]->seq);
}

ibp_status ibp_replica_state_load(const char *path, const ibp_vote_config *cfg,
                                  ibp_vote **engine_out, ibp_verifier *v, ibp_replica_prev *prev,
                                  ibp_err *err)
{
    if (prev)
        memset(prev, 0, sizeof *prev);
    char *text = NULL;
    size_t len = 0;
    Ibp__V1__ReplicaState *rs = NULL;
    ibp_status st = ibp_file_read_all(path, STATE_FILE_MAX, &text, &len, err);
    if (st == IBP_E_NOT_FOUND)
        return st;
    if (st != IBP_OK)
        return ibp_err_wrap(err, "load replica state");
    st = ibp_replica_state_decode((const uint8_t *)text, len, &rs, err);
    free(text);
    if (st == IBP_OK)
        st = ibp_replica_state_import(rs, cfg, engine_out, err);
    if (st == IBP_OK)
        ibp_replica_state_set_seqs(rs, v);
    if (st == IBP_OK && prev && rs->prev_digest.len == sizeof prev->digest) {
        prev->known = true;
        memcpy(prev->digest, rs->prev_digest.data, sizeof prev->digest);
    }
    ibp__v1__replica_state__free_unpacked(rs, NULL);
    if (st == IBP_E_PAYLOAD_DECODE)
        st = IBP_E_CONFIG; /* a file that does not load is the operator's to move away */
    if (st != IBP_OK && err) {
        err->code = st;
        ibp_err_wrap(err, "replica state %s", path);
    }
    return st;
}
