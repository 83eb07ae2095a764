/*
 * How much memory a protobuf message would take once decoded, measured on
 * its wire bytes before protobuf-c decodes it.
 *
 * Decoding multiplies size: an empty sub-message is two bytes on the wire
 * and a whole C struct (plus a pointer, plus protobuf-c's scan record) in
 * memory, so 8 MiB of empty Observations decode to about 500 MB. A signed
 * message from a roster member is decoded before any count limit of the
 * consumers applies, so the verifier asks this first and refuses a payload
 * whose decoded form would pass its limit (ibp_verifier_opts).
 *
 * The figure is an upper bound of what protobuf_c_message_unpack allocates
 * (structs, repeated arrays, strings, unknown fields and its temporary scan
 * records, each counted with allocator overhead), following the message's
 * descriptor into sub-messages. Pure: no allocation, no I/O; thread-safe.
 */
#ifndef IBP_PB_BOUND_H
#define IBP_PB_BOUND_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "ibp/status.h"

/*
 * Walks buf[0..len) as a message of type desc and stores the bound in *out,
 * stopping early (IBP_E_TOO_LARGE, *out > limit) once it passes limit.
 * IBP_E_DECODE (with the offset in err) when the bytes are not well-formed
 * protobuf: a truncated varint or field, wire types 3, 4, 6 or 7, field
 * number 0, or nesting deeper than 64.
 */
ibp_status ibp_pb_decoded_bound(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                                size_t len, size_t limit, size_t *out, ibp_err *err);

#endif
