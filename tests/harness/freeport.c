/*
 * ibp-test-freeport: prints free TCP ports on 127.0.0.1, one per line.
 *
 *     ibp-test-freeport [count]      (count 1..16, default 1)
 *
 * Each port comes from binding 127.0.0.1:0 and asking the kernel which port
 * it chose. All sockets stay bound until every port is printed, so the ports
 * of one call are distinct. A port is only free at that moment: the caller
 * must still handle a server failing to bind it (servers.sh retries).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PORTS 16

int main(int argc, char **argv)
{
    int fds[MAX_PORTS];
    unsigned ports[MAX_PORTS];
    long count = 1;
    int n = 0;
    int rc = 1;

    if (argc > 2) {
        fprintf(stderr, "usage: %s [count]\n", argv[0]);
        return 2;
    }
    if (argc == 2) {
        char *end = NULL;
        count = strtol(argv[1], &end, 10);
        if (*argv[1] == '\0' || *end != '\0' || count < 1 || count > MAX_PORTS) {
            fprintf(stderr, "%s: count must be 1..%d, got '%s'\n", argv[0], MAX_PORTS, argv[1]);
            return 2;
        }
    }

    for (n = 0; n < count; n++) {
        struct sockaddr_in addr;
        socklen_t len = sizeof addr;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) {
            fprintf(stderr, "freeport: socket: %s\n", strerror(errno));
            goto out;
        }
        fds[n] = fd;
        memset(&addr, 0, sizeof addr);
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
            fprintf(stderr, "freeport: bind 127.0.0.1:0: %s\n", strerror(errno));
            close(fd);
            goto out;
        }
        if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
            fprintf(stderr, "freeport: getsockname: %s\n", strerror(errno));
            close(fd);
            goto out;
        }
        ports[n] = ntohs(addr.sin_port);
    }
    for (int i = 0; i < n; i++)
        printf("%u\n", ports[i]);
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    for (int i = 0; i < n; i++)
        close(fds[i]);
    return rc;
}
