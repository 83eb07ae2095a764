/*
 * Fuzz: the payload decoders. The first byte picks an ibp.v1 message type
 * (modulo the number of types, see ibp_fuzz_messages), the rest is its
 * encoding: protobuf-c unpack, pack again, the JSON form of
 * the six payload types (ibp_payload_to_json), and for OfficialSnapshot the
 * checks of ibp_official_snapshot_from_proto.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "fuzz_messages.h"
#include "ibp/decode_json.h"
#include "ibp/envelope.h"
#include "ibp/official_snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialised;
    if (!initialised) {
        ibp_log_set_hook(ibp_fuzz_quiet_log, NULL);
        initialised = 1;
    }
    if (size < 1)
        return 0;
    const ProtobufCMessageDescriptor *desc = ibp_fuzz_messages[data[0] % IBP_FUZZ_MESSAGE_COUNT];
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, size - 1, data + 1);
    if (!m)
        return 0;

    /* Packing what was unpacked writes exactly get_packed_size bytes. (Reading
     * them back is tried but not required: protobuf-c keeps malformed unknown
     * fields, such as field number 0, and re-encodes them unreadably.) */
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        abort();
    if (protobuf_c_message_pack(m, buf) != n)
        abort();
    ProtobufCMessage *m2 = protobuf_c_message_unpack(desc, NULL, n, buf);
    if (m2)
        protobuf_c_message_free_unpacked(m2, NULL);
    free(buf);

    for (int t = 1; t <= 6; t++) {
        if (ibp_payload_descriptor((ibp_payload_type)t) != desc)
            continue;
        json_t *j = ibp_payload_to_json((ibp_payload_type)t, m);
        if (j) {
            char *s = json_dumps(j, JSON_COMPACT);
            free(s);
            json_decref(j);
        }
    }
    if (desc == &ibp__v1__official_snapshot__descriptor) {
        ibp_official_snapshot snap;
        ibp_err err;
        if (ibp_official_snapshot_from_proto((const Ibp__V1__OfficialSnapshot *)m, &snap, &err) ==
            IBP_OK)
            ibp_official_snapshot_clear(&snap);
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}
