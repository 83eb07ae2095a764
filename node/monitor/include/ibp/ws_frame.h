/*
 * WebSocket (RFC 6455) framing and the opening handshake's checks, for the
 * wss check and the test doubles. Pure: no I/O, no clock, no allocation
 * (the caller brings the buffers); thread-safe.
 *
 * Why our own framing rather than a library: Debian 12's libcurl (7.88) is
 * built without WebSocket support, and libwebsockets would bring a second
 * event loop, TLS contexts of its own and whole-second timeouts; the check
 * needs a few text frames over a TLS stream that libcurl already opens
 * (CURLOPT_CONNECT_ONLY), with every phase under our own deadline.
 */
#ifndef IBP_WS_FRAME_H
#define IBP_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    IBP_WS_CONT = 0x0,
    IBP_WS_TEXT = 0x1,
    IBP_WS_BINARY = 0x2,
    IBP_WS_CLOSE = 0x8,
    IBP_WS_PING = 0x9,
    IBP_WS_PONG = 0xA,
};

#define IBP_WS_HEADER_MAX 14

typedef struct ibp_ws_header {
    bool fin;
    uint8_t opcode;
    bool masked;
    uint8_t mask[4];
    uint64_t length;   /* payload bytes */
    size_t header_len; /* bytes of the header */
} ibp_ws_header;

/*
 * Writes the header of a frame (fin set) carrying len payload bytes into
 * out (room for IBP_WS_HEADER_MAX); with mask (a client's frame) the mask
 * key follows and the caller masks the payload with ibp_ws_mask. Returns the
 * header's length.
 */
size_t ibp_ws_header_write(uint8_t opcode, uint64_t len, const uint8_t *mask, uint8_t *out);

/*
 * Reads a frame header from buf[0..n): returns its length (> 0) with *h
 * filled, 0 when more bytes are needed, -1 on a protocol error (reserved
 * bits, unknown opcode, a control frame over 125 bytes or fragmented, a
 * 64-bit length with the top bit set, a non-minimal length encoding), with
 * the reason in why.
 */
int ibp_ws_header_read(const uint8_t *buf, size_t n, ibp_ws_header *h, char *why, size_t cap);

/* XORs data[0..n) with the mask, the first byte at mask offset `offset`. */
void ibp_ws_mask(uint8_t *data, size_t n, const uint8_t mask[4], size_t offset);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)), 28 chars + NUL. */
void ibp_ws_accept_key(const char *key, char out[29]);

/*
 * Checks a server's response head (up to and including the blank line) to
 * an upgrade with key: status 101, "Upgrade: websocket", "Connection"
 * containing "upgrade", and the right Sec-WebSocket-Accept (header names
 * and the tokens without case). True, or false with the reason in why.
 */
bool ibp_ws_upgrade_ok(const char *head, size_t len, const char *key, char *why, size_t cap);

/* Offset just past the "\r\n\r\n" ending an HTTP head in buf[0..n), 0 when not there yet. */
size_t ibp_ws_head_end(const char *buf, size_t n);

#endif
