/*
 * Upper bound of a protobuf message's decoded size; see ibp/pb_bound.h.
 */
#include "ibp/pb_bound.h"

#include <stdbool.h>

#define ALLOC_OVERHEAD 16u /* malloc's header and rounding, per allocation */
/* protobuf-c records each field it scans (32 bytes) in slabs that double in
 * size, the first 16 on the stack: up to twice that a field, plus overhead,
 * for each field of a message past its 16th. */
#define SCAN_RECORD 72u
#define SCAN_ON_STACK 16u
#define SLOT 8u            /* one element of a repeated array (pointer or scalar) */
#define MAX_DEPTH 64u

typedef struct walk {
    size_t total;
    size_t limit;
    const uint8_t *base; /* for offsets in errors */
    ibp_err *err;
} walk;

static bool add(walk *w, size_t n)
{
    w->total = n > SIZE_MAX - w->total ? SIZE_MAX : w->total + n;
    return w->total <= w->limit;
}

static bool varint(const uint8_t *p, size_t len, size_t *off, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && *off < len; shift += 7) {
        uint8_t b = p[(*off)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

static ibp_status bad(walk *w, const uint8_t *at, const char *what)
{
    return ibp_err_set(w->err, IBP_E_DECODE, "protobuf: %s at byte %zu", what,
                       (size_t)(at - w->base));
}

static bool packable(ProtobufCType t)
{
    return t != PROTOBUF_C_TYPE_MESSAGE && t != PROTOBUF_C_TYPE_STRING &&
           t != PROTOBUF_C_TYPE_BYTES;
}

static ibp_status walk_message(walk *w, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                               size_t len, unsigned depth)
{
    if (depth > MAX_DEPTH)
        return bad(w, p, "messages nested too deep");
    if (!add(w, d->sizeof_message + ALLOC_OVERHEAD))
        return IBP_E_TOO_LARGE;
    size_t off = 0, fields = 0;
    while (off < len) {
        const uint8_t *field_at = p + off;
        uint64_t tag = 0;
        if (!varint(p, len, &off, &tag))
            return bad(w, field_at, "truncated tag");
        uint64_t number = tag >> 3;
        unsigned wire = (unsigned)(tag & 7);
        if (number == 0 || number > UINT32_MAX)
            return bad(w, field_at, "field number out of range");
        const uint8_t *data = p + off;
        size_t dlen = 0;
        uint64_t v;
        switch (wire) {
        case 0:
            if (!varint(p, len, &off, &v))
                return bad(w, field_at, "truncated varint");
            dlen = (size_t)(p + off - data);
            break;
        case 1:
        case 5:
            dlen = wire == 1 ? 8 : 4;
            if (len - off < dlen)
                return bad(w, field_at, "truncated fixed-size field");
            off += dlen;
            break;
        case 2:
            if (!varint(p, len, &off, &v) || v > len - off)
                return bad(w, field_at, "truncated length-delimited field");
            data = p + off;
            dlen = (size_t)v;
            off += dlen;
            break;
        default:
            return bad(w, field_at, "unsupported wire type");
        }
        if (++fields > SCAN_ON_STACK && !add(w, SCAN_RECORD))
            return IBP_E_TOO_LARGE;
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(d, (unsigned)number);
        if (!f) { /* kept as an unknown field: a record and a copy of its bytes */
            if (!add(w, sizeof(ProtobufCMessageUnknownField) + dlen + 2 * ALLOC_OVERHEAD))
                return IBP_E_TOO_LARGE;
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            /* A packed run holds at most one element per byte. */
            size_t n = wire == 2 && packable(f->type) ? dlen : 1;
            if (!add(w, n > SIZE_MAX / SLOT ? SIZE_MAX : n * SLOT + ALLOC_OVERHEAD))
                return IBP_E_TOO_LARGE;
        }
        if (wire != 2)
            continue;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            ibp_status st = walk_message(w, f->descriptor, data, dlen, depth + 1);
            if (st != IBP_OK)
                return st;
        } else if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_BYTES) {
            if (!add(w, dlen + 1 + ALLOC_OVERHEAD))
                return IBP_E_TOO_LARGE;
        }
    }
    return IBP_OK;
}

ibp_status ibp_pb_decoded_bound(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                                size_t len, size_t limit, size_t *out, ibp_err *err)
{
    walk w = {.total = 0, .limit = limit, .base = buf, .err = err};
    ibp_status st = walk_message(&w, desc, buf, len, 0);
    *out = w.total;
    if (st == IBP_E_TOO_LARGE)
        ibp_err_set(err, IBP_E_TOO_LARGE, "protobuf %s would decode to more than %zu bytes",
                    desc->name, limit);
    return st;
}
