/* Every ibp.v1 message type, in a fixed order: the first byte of a payload_fuzz
 * input (modulo the count) picks one. Never reorder; append only. */
#ifndef IBP_FUZZ_MESSAGES_H
#define IBP_FUZZ_MESSAGES_H

#include "ibp/ibp.pb-c.h"

static const ProtobufCMessageDescriptor *const ibp_fuzz_messages[] = {
    &ibp__v1__envelope__descriptor,
    &ibp__v1__result_key__descriptor,
    &ibp__v1__observation__descriptor,
    &ibp__v1__observation_batch__descriptor,
    &ibp__v1__heartbeat__descriptor,
    &ibp__v1__member_override__descriptor,
    &ibp__v1__snapshot_entry__descriptor,
    &ibp__v1__snapshot_override__descriptor,
    &ibp__v1__snapshot_vote__descriptor,
    &ibp__v1__snapshot_evidence__descriptor,
    &ibp__v1__official_snapshot__descriptor,
    &ibp__v1__voter__descriptor,
    &ibp__v1__event__descriptor,
    &ibp__v1__hit_row__descriptor,
    &ibp__v1__hit_batch__descriptor,
    &ibp__v1__replica_monitor__descriptor,
    &ibp__v1__replica_observation__descriptor,
    &ibp__v1__replica_key__descriptor,
    &ibp__v1__replica_signer_seq__descriptor,
    &ibp__v1__replica_state__descriptor,
};
#define IBP_FUZZ_MESSAGE_COUNT (sizeof ibp_fuzz_messages / sizeof ibp_fuzz_messages[0])

#endif
