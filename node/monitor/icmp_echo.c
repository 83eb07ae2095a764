/* ICMP echo packets (see ibp/icmp_echo.h). Pure. */
#include "ibp/icmp_echo.h"

#include <string.h>

uint16_t ibp_icmp_checksum(const uint8_t *data, size_t n)
{
    uint32_t sum = 0;
    size_t i = 0;
    for (; i + 1 < n; i += 2)
        sum += (uint32_t)(data[i] << 8 | data[i + 1]);
    if (i < n)
        sum += (uint32_t)(data[i] << 8);
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)~sum;
}

size_t ibp_icmp_echo_build(bool v6, uint16_t id, uint16_t seq, size_t payload, uint8_t *out,
                           size_t cap)
{
    size_t len = 8 + payload;
    if (cap < len)
        return 0;
    out[0] = v6 ? 128 : 8;
    out[1] = 0;
    out[2] = out[3] = 0;
    out[4] = (uint8_t)(id >> 8);
    out[5] = (uint8_t)id;
    out[6] = (uint8_t)(seq >> 8);
    out[7] = (uint8_t)seq;
    for (size_t i = 0; i < payload; i++)
        out[8 + i] = (uint8_t)('a' + i % 26);
    if (!v6) {
        uint16_t c = ibp_icmp_checksum(out, len);
        out[2] = (uint8_t)(c >> 8);
        out[3] = (uint8_t)c;
    }
    return len;
}

bool ibp_icmp_echo_reply(bool v6, bool ip_header, const uint8_t *buf, size_t n, bool check_id,
                         uint16_t id, uint16_t *seq)
{
    if (ip_header && !v6) {
        if (n < 20 || (buf[0] >> 4) != 4)
            return false;
        size_t ihl = (size_t)(buf[0] & 0x0F) * 4;
        if (ihl < 20 || n < ihl)
            return false;
        buf += ihl;
        n -= ihl;
    }
    if (n < 8 || buf[0] != (v6 ? 129 : 0) || buf[1] != 0)
        return false;
    uint16_t rid = (uint16_t)(buf[4] << 8 | buf[5]);
    if (check_id && rid != id)
        return false;
    *seq = (uint16_t)(buf[6] << 8 | buf[7]);
    return true;
}
