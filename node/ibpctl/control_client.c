/* Requests to a running ibp-node's control socket; see ibpctl.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "ibp/vec.h"
#include "ibpctl.h"

#define ANSWER_MAX (1024 * 1024)
#define TIMEOUT_S 30

/* Sends one request line and reads one answer line into *out (malloc'd). */
static int roundtrip(int fd, const char *req, char **out)
{
    size_t len = strlen(req);
    while (len > 0) {
        ssize_t n = send(fd, req, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        req += n;
        len -= (size_t)n;
    }
    size_t cap = 4096, used = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    for (;;) {
        if (used + 1 >= cap) {
            if (cap >= ANSWER_MAX) {
                free(buf);
                errno = EMSGSIZE;
                return -1;
            }
            char *b = ibp_grow(buf, &cap, cap + 1, 1); /* doubles */
            if (!b) {
                free(buf);
                return -1;
            }
            buf = b;
        }
        ssize_t n = recv(fd, buf + used, cap - used - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(buf);
            if (n == 0)
                errno = ECONNRESET;
            return -1;
        }
        char *nl = memchr(buf + used, '\n', (size_t)n);
        used += (size_t)n;
        if (nl) {
            *nl = '\0';
            *out = buf;
            return 0;
        }
    }
}

int ibpctl_control_call(const char *prog, const char *path, const char *request, char **text,
                        json_t **answer)
{
    *text = NULL;
    *answer = NULL;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "%s: socket path too long: %s\n", prog, path);
        return 2;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "%s: socket: %s\n", prog, strerror(errno));
        return 1;
    }
    struct timeval tv = {.tv_sec = TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "%s: cannot connect to %s: %s (is ibp-node running?)\n", prog, path,
                strerror(errno));
        close(fd);
        return 1;
    }
    int rc = roundtrip(fd, request, text);
    close(fd);
    if (rc != 0) {
        fprintf(stderr, "%s: %s: no answer: %s\n", prog, path, strerror(errno));
        return 1;
    }
    *answer = json_loads(*text, 0, NULL);
    return 0;
}
