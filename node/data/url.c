/* URL parsing; see ibp/url.h. */
#include "ibp/url.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>

static bool host_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '-' || ch == '_' || ch == '.';
}

ibp_status ibp_network_url_parse(const char *url, ibp_network_url *out, ibp_err *err)
{
    if (!url || !out)
        return ibp_err_set(err, IBP_E_INVAL, "no URL");
    for (const char *q = url; *q; q++)
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q == 0x7f)
            return ibp_err_set(err, IBP_E_INVAL, "contains a space or control character");
    ibp_network_url u;
    memset(&u, 0, sizeof u);

    const char *p = url;
    if (!isalpha((unsigned char)*p))
        return ibp_err_set(err, IBP_E_INVAL, "missing scheme (expected scheme://host)");
    while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
        p++;
    if (strncmp(p, "://", 3) != 0)
        return ibp_err_set(err, IBP_E_INVAL, "missing \"://\" after the scheme");
    size_t slen = (size_t)(p - url);
    if (slen >= sizeof u.scheme)
        return ibp_err_set(err, IBP_E_INVAL, "scheme is too long");
    for (size_t i = 0; i < slen; i++)
        u.scheme[i] = (char)tolower((unsigned char)url[i]);

    const char *auth = p + 3;
    const char *auth_end = auth + strcspn(auth, "/?#");
    const char *host = auth;
    for (const char *q = auth; q < auth_end; q++)
        if (*q == '@')
            host = q + 1; /* the last '@' ends the userinfo */
    if (host == auth_end)
        return ibp_err_set(err, IBP_E_INVAL, "missing host");

    const char *port = NULL; /* text after ':' up to auth_end */
    if (*host == '[') {
        const char *close = memchr(host, ']', (size_t)(auth_end - host));
        if (!close)
            return ibp_err_set(err, IBP_E_INVAL, "unterminated IPv6 literal");
        size_t n = (size_t)(close - host - 1);
        char addr[64];
        unsigned char bin[16];
        if (n == 0 || n >= sizeof addr)
            return ibp_err_set(err, IBP_E_INVAL, "bad IPv6 literal");
        memcpy(addr, host + 1, n);
        addr[n] = '\0';
        if (inet_pton(AF_INET6, addr, bin) != 1)
            return ibp_err_set(err, IBP_E_INVAL, "bad IPv6 literal");
        for (size_t i = 0; i <= n; i++)
            u.host[i] = (char)tolower((unsigned char)addr[i]);
        u.host_is_ipv6 = true;
        if (close + 1 < auth_end) {
            if (close[1] != ':')
                return ibp_err_set(err, IBP_E_INVAL, "unexpected text after the IPv6 literal");
            port = close + 2;
        }
    } else {
        const char *colon = memchr(host, ':', (size_t)(auth_end - host));
        const char *hend = colon ? colon : auth_end;
        if (colon && memchr(colon + 1, ':', (size_t)(auth_end - colon - 1)))
            return ibp_err_set(err, IBP_E_INVAL, "an IPv6 address must be in brackets");
        size_t n = (size_t)(hend - host);
        if (n > 0 && host[n - 1] == '.')
            n--; /* the root label: "example.org." is "example.org" */
        if (n == 0)
            return ibp_err_set(err, IBP_E_INVAL, "missing host");
        if (n >= sizeof u.host)
            return ibp_err_set(err, IBP_E_INVAL, "host name is longer than 253 bytes");
        size_t label = 0;
        for (size_t i = 0; i < n; i++) {
            char ch = host[i];
            if (!host_char(ch))
                return ibp_err_set(err, IBP_E_INVAL, "bad character in the host name");
            if (ch == '.') {
                if (label == 0)
                    return ibp_err_set(err, IBP_E_INVAL, "empty label in the host name");
                label = 0;
            } else if (++label > 63) {
                return ibp_err_set(err, IBP_E_INVAL, "host name label longer than 63 bytes");
            }
            u.host[i] = (char)tolower((unsigned char)ch);
        }
        u.host[n] = '\0';
        if (colon)
            port = colon + 1;
    }
    if (port) {
        unsigned long v = 0;
        if (port == auth_end)
            return ibp_err_set(err, IBP_E_INVAL, "empty port");
        for (const char *q = port; q < auth_end; q++) {
            if (!isdigit((unsigned char)*q))
                return ibp_err_set(err, IBP_E_INVAL, "bad port");
            v = v * 10 + (unsigned long)(*q - '0');
            if (v > 65535)
                return ibp_err_set(err, IBP_E_INVAL, "port out of range 1..65535");
        }
        if (v == 0)
            return ibp_err_set(err, IBP_E_INVAL, "port out of range 1..65535");
        u.port = (unsigned)v;
    }
    u.path_offset = (size_t)(auth_end - url);
    *out = u;
    return IBP_OK;
}
