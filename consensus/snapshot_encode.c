/* The official state as an OfficialSnapshot; see ibp/snapshot_encode.h. */
#include "ibp/snapshot_encode.h"

#include <stdlib.h>
#include <string.h>

#include "ibp/codec_snapshot.h"

static ibp_codec_key key_of(const ibp_vote_key *k)
{
    return (ibp_codec_key){
        (ibp_check_type)k->type, k->check_name, k->member, k->domain, k->endpoint, k->ipv6};
}

ibp_status ibp_snapshot_encode(const ibp_vote *e, const ibp_vote_update *update, uint8_t **out,
                               size_t *out_len, ibp_err *err)
{
    ibp_status st = IBP_E_NOMEM;
    ibp_vote_info info;
    ibp_codec_snapshot_entry *entries = NULL;
    ibp_codec_snapshot_override *overrides = NULL;
    ibp_codec_snapshot_evidence *evidence = NULL;
    ibp_codec_snapshot_vote *votes = NULL;
    const ibp_vote_override *ovr = NULL;
    size_t n_ovr = ibp_vote_overrides(e, &ovr);
    size_t nchanges = update ? update->nchanges : 0, nvotes = 0;

    ibp_vote_get_info(e, &info);
    for (size_t c = 0; c < nchanges; c++)
        nvotes += update->changes[c].nvotes;
    entries = calloc(info.official_keys ? info.official_keys : 1, sizeof *entries);
    overrides = calloc(n_ovr ? n_ovr : 1, sizeof *overrides);
    evidence = calloc(nchanges ? nchanges : 1, sizeof *evidence);
    votes = calloc(nvotes ? nvotes : 1, sizeof *votes);
    if (!entries || !overrides || !evidence || !votes) {
        ibp_err_set(err, IBP_E_NOMEM, "snapshot: out of memory");
        goto out;
    }
    /* The codec puts the entries in the wire's canonical order. */
    size_t n = 0, cursor = 0;
    ibp_vote_entry ent;
    while (n < info.official_keys && ibp_vote_official_next(e, &cursor, &ent)) {
        entries[n++] = (ibp_codec_snapshot_entry){key_of(&ent.key), (ibp_result_status)ent.status,
                                                  ent.check_time_ms, ent.error, ent.data_json};
    }
    for (size_t i = 0; i < n_ovr; i++)
        overrides[i] = (ibp_codec_snapshot_override){ovr[i].member, ovr[i].disabled, ovr[i].reason};
    size_t vi = 0;
    for (size_t c = 0; c < nchanges; c++) {
        const ibp_vote_change *ch = &update->changes[c];
        evidence[c].removed = ch->kind == IBP_VOTE_REMOVED;
        evidence[c].key = key_of(&ch->key);
        evidence[c].votes = &votes[vi];
        evidence[c].nvotes = ch->nvotes;
        for (size_t k = 0; k < ch->nvotes; k++, vi++)
            votes[vi] = (ibp_codec_snapshot_vote){ch->votes[k].node, ch->votes[k].local_seq,
                                                  ch->votes[k].batch_seq,
                                                  (ibp_result_status)ch->votes[k].status};
    }
    ibp_codec_snapshot s = {
        .epoch = info.epoch,
        .local_seq = info.local_seq,
        .applied_ms = info.now_ms,
        .digest = info.digest,
        .digest_len = sizeof info.digest,
        .entries = entries,
        .nentries = n,
        .overrides = overrides,
        .noverrides = n_ovr,
        .evidence = evidence,
        .nevidence = nchanges,
    };
    st = ibp_codec_snapshot_encode(&s, out, out_len, err);
out:
    free(votes);
    free(evidence);
    free(overrides);
    free(entries);
    return st;
}
