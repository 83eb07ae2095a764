/*
 * ICMP and ICMPv6 echo packets for the ping check: building a request and
 * recognising the reply to it. Pure and thread-safe.
 */
#ifndef IBP_ICMP_ECHO_H
#define IBP_ICMP_ECHO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The Internet checksum (RFC 1071) of data[0..n). */
uint16_t ibp_icmp_checksum(const uint8_t *data, size_t n);

/*
 * Writes an echo request (ICMP type 8, or ICMPv6 type 128) with id, seq and
 * payload bytes of pattern into out (cap at least 8 + payload). The ICMP
 * checksum is filled in; an ICMPv6 one is left 0 (the kernel computes it).
 * Returns the packet's length, 0 when cap is too small.
 */
size_t ibp_icmp_echo_build(bool v6, uint16_t id, uint16_t seq, size_t payload, uint8_t *out,
                           size_t cap);

/*
 * Recognises an echo reply in buf[0..n) (after an IPv4 header when
 * ip_header: what a raw IPv4 socket receives). check_id false skips the id
 * (a datagram ICMP socket rewrites it to its own). True with *seq set when
 * it is an echo reply (type 0, or 129) with that id; false for anything
 * else (other types, short or truncated packets).
 */
bool ibp_icmp_echo_reply(bool v6, bool ip_header, const uint8_t *buf, size_t n, bool check_id,
                         uint16_t id, uint16_t *seq);

#endif
