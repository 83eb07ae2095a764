/*
 * Fuzz: the payload decoders. The first byte picks an ibp.v1 message type
 * (modulo the number of types, see ibp_fuzz_messages), the rest is its
 * encoding: protobuf-c unpack, pack again, the JSON form of
 * the six payload types (ibp_payload_to_json), and for OfficialSnapshot the
 * checks of ibp_official_snapshot_from_proto. Then the same bytes through
 * the payload's codec (proto/codec_*.c): what decodes packs again, decodes
 * again, and packs to the same bytes the second time.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "fuzz_messages.h"
#include "ibp/decode_json.h"
#include "ibp/codec_event.h"
#include "ibp/codec_heartbeat.h"
#include "ibp/codec_hit_batch.h"
#include "ibp/codec_member_override.h"
#include "ibp/codec_observation_batch.h"
#include "ibp/codec_snapshot.h"
#include "ibp/envelope.h"
#include "ibp/official_snapshot.h"

/* decode -> encode -> decode -> encode: both decodes succeed, both encodings are equal. */
#define CODEC_ROUND(T, data, size)                                                                 \
    do {                                                                                           \
        T a, b;                                                                                    \
        ibp_err e;                                                                                 \
        uint8_t *p1 = NULL, *p2 = NULL;                                                            \
        size_t l1 = 0, l2 = 0;                                                                     \
        if (T##_decode(data, size, &a, &e) != IBP_OK)                                              \
            break;                                                                                 \
        if (T##_encode(&a, &p1, &l1, &e) != IBP_OK)                                                \
            abort();                                                                               \
        if (T##_decode(p1, l1, &b, &e) != IBP_OK)                                                  \
            abort();                                                                               \
        if (T##_encode(&b, &p2, &l2, &e) != IBP_OK || l1 != l2 || memcmp(p1, p2, l1) != 0)         \
            abort();                                                                               \
        free(p1);                                                                                  \
        free(p2);                                                                                  \
        T##_clear(&a);                                                                             \
        T##_clear(&b);                                                                             \
    } while (0)

static void codecs(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t size)
{
    if (desc == &ibp__v1__official_snapshot__descriptor)
        CODEC_ROUND(ibp_codec_snapshot, data, size);
    else if (desc == &ibp__v1__observation_batch__descriptor)
        CODEC_ROUND(ibp_codec_observation_batch, data, size);
    else if (desc == &ibp__v1__member_override__descriptor)
        CODEC_ROUND(ibp_codec_member_override, data, size);
    else if (desc == &ibp__v1__heartbeat__descriptor)
        CODEC_ROUND(ibp_codec_heartbeat, data, size);
    else if (desc == &ibp__v1__event__descriptor)
        CODEC_ROUND(ibp_codec_event, data, size);
    else if (desc == &ibp__v1__hit_batch__descriptor)
        CODEC_ROUND(ibp_codec_hit_batch, data, size);
}

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
    codecs(desc, data + 1, size - 1);
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
