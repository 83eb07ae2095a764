/* The tcp module: one TCP connect to the target's address within its deadline. */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <ctype.h>

#include "check_modules.h"
#include "ibp/checker.h"
#include "ibp/clock.h"

/* Lower-cases the first letter of strerror's text ("Connection refused"). */
static void errtext(char *buf, size_t cap, const char *where, int e)
{
    char msg[128];
    snprintf(msg, sizeof msg, "%s", strerror(e));
    msg[0] = (char)tolower((unsigned char)msg[0]);
    snprintf(buf, cap, "connect %s: %s", where, msg);
}

bool ibp_checker_connect(const char *addr, unsigned port, bool ipv6, int64_t timeout_ms,
                         int64_t *connect_ms, char *errbuf, size_t errcap)
{
    char where[300];
    ibp_check_format_addr(where, sizeof where, addr, port);
    struct addrinfo hints = {.ai_family = ipv6 ? AF_INET6 : AF_INET,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char service[8];
    snprintf(service, sizeof service, "%u", port);
    int64_t t0 = ibp_clock_mono_ms();
    int g = getaddrinfo(addr, service, &hints, &ai);
    if (g != 0 || !ai) {
        snprintf(errbuf, errcap, "connect %s: not an %s address (%s)", where,
                 ipv6 ? "IPv6" : "IPv4", g ? gai_strerror(g) : "none");
        if (ai)
            freeaddrinfo(ai);
        return false;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        errtext(errbuf, errcap, where, errno);
        freeaddrinfo(ai);
        return false;
    }
    bool ok = false;
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (rc == 0) {
        ok = true;
    } else if (errno != EINPROGRESS) {
        errtext(errbuf, errcap, where, errno);
    } else {
        int64_t deadline = t0 + timeout_ms;
        for (;;) {
            int64_t left = deadline - ibp_clock_mono_ms();
            if (left <= 0) {
                snprintf(errbuf, errcap, "connect %s: timed out after %" PRId64 " ms", where,
                         timeout_ms);
                break;
            }
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int pr = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr < 0) {
                errtext(errbuf, errcap, where, errno);
                break;
            }
            if (pr == 0)
                continue;
            int soerr = 0;
            socklen_t len = sizeof soerr;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
                soerr = errno;
            if (soerr)
                errtext(errbuf, errcap, where, soerr);
            else
                ok = true;
            break;
        }
    }
    close(fd);
    if (ok) {
        *connect_ms = ibp_clock_mono_ms() - t0;
        if (errcap)
            errbuf[0] = '\0';
    }
    return ok;
}

void ibp_check_run_tcp(const ibp_check_target *t, const ibp_check_env *env, int64_t deadline_ms,
                       ibp_check_outcome *out)
{
    (void)env;
    int64_t ms = 0;
    int64_t left = deadline_ms - ibp_clock_mono_ms();
    out->up = ibp_checker_connect(t->addr, t->port, t->ipv6, left > 0 ? left : 1, &ms, out->error,
                                  sizeof out->error);
    char data[64];
    if (out->up) {
        snprintf(data, sizeof data, "{\"connect_ms\": %" PRId64 "}", ms);
        out->data_json = strdup(data);
    }
}
