/* The pure rules of replica checkpoints; see ibp/checkpoint.h. */
#include "ibp/checkpoint.h"

#include <string.h>

#include "ibp/replica_state.h"
#include "ibp/subject.h"
#include "ibp/vote.h"

static const char *const verdict_texts[] = {
#define IBP_CHECKPOINT_VERDICT_TEXT(name, text) text,
    IBP_CHECKPOINT_VERDICT_LIST(IBP_CHECKPOINT_VERDICT_TEXT)
#undef IBP_CHECKPOINT_VERDICT_TEXT
};

const char *ibp_checkpoint_verdict_text(ibp_checkpoint_verdict v)
{
    return (unsigned)v < IBP_CHECKPOINT_VERDICT_COUNT ? verdict_texts[v] : "?";
}

ibp_checkpoint_verdict ibp_checkpoint_check_envelope(const ibp_verified *vm, const char *subject)
{
    if (!vm || !vm->envelope || !vm->signer || !vm->payload)
        return IBP_CHECKPOINT_BAD_ENVELOPE;
    if (vm->envelope->type != IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_CHECKPOINT ||
        !(vm->signer->roles & IBP_ROLE_CONSENSUS))
        return IBP_CHECKPOINT_NOT_CONSENSUS;
    /* Permissions keep a node on its own subject; a stored message that is not
     * (another account, an operator's copy) still does not count. */
    char want[160];
    if (!subject || ibp_subject_checkpoint(vm->envelope->signer, want, sizeof want) != IBP_OK ||
        strcmp(subject, want) != 0)
        return IBP_CHECKPOINT_WRONG_SUBJECT;
    const Ibp__V1__ReplicaState *rs = (const Ibp__V1__ReplicaState *)vm->payload;
    if (ibp_replica_state_check(rs, NULL) != IBP_OK)
        return IBP_CHECKPOINT_BAD_STATE;
    if (rs->local_seq == 0)
        return IBP_CHECKPOINT_EMPTY;
    return IBP_CHECKPOINT_OK;
}

ibp_checkpoint_verdict ibp_checkpoint_check_local(uint64_t local_seq, uint64_t first_seq,
                                                  uint64_t last_seq)
{
    /* A first sequence of 0 is a stream that never held a message. */
    if (first_seq > local_seq + 1 || local_seq > last_seq)
        return IBP_CHECKPOINT_LOCAL_GONE;
    return IBP_CHECKPOINT_OK;
}

ibp_checkpoint_verdict ibp_checkpoint_check_digest(uint64_t epoch, const uint8_t *digest,
                                                   size_t digest_len, const ibp_chain_msg *snap)
{
    if (!digest || digest_len != IBP_VOTE_DIGEST_SIZE)
        return IBP_CHECKPOINT_BAD_STATE;
    if (epoch == 0)
        return memcmp(digest, ibp_vote_empty_digest, IBP_VOTE_DIGEST_SIZE) == 0
                   ? IBP_CHECKPOINT_OK
                   : IBP_CHECKPOINT_DIGEST_MISMATCH;
    if (!snap || !snap->valid || snap->epoch != epoch)
        return IBP_CHECKPOINT_NO_SNAPSHOT;
    if (snap->digest_len != digest_len || memcmp(snap->digest, digest, digest_len) != 0)
        return IBP_CHECKPOINT_DIGEST_MISMATCH;
    return IBP_CHECKPOINT_OK;
}

bool ibp_checkpoint_newer(uint64_t epoch_a, uint64_t local_seq_a, uint64_t epoch_b,
                          uint64_t local_seq_b)
{
    return epoch_a != epoch_b ? epoch_a > epoch_b : local_seq_a > local_seq_b;
}

bool ibp_checkpoint_may_replay_all(uint64_t local_first_seq)
{
    return local_first_seq <= 1;
}
