/*
 * demo-listeners: the "members' servers" of the local cluster's demo network.
 * Listens on 127.0.0.1 at every --port, accepts connections and closes them at
 * once (the monitors' TCP-connect checks only need the handshake), and takes
 * the --flap ports down on a schedule so monitors see outages:
 *
 *   demo-listeners --port 47101 --port 47102,47103 --flap 47122
 *                  [--period 120] [--down 40] [--offset S] [--name LABEL]
 *
 * A flapping port is closed (connections are refused) for --down seconds
 * every --period seconds, the first time --offset seconds after the start
 * (default: period - down). Every change is printed to stdout with the time.
 * --name is only a label (it shows in ps, so scripts can tell their instance).
 * SIGTERM or SIGINT stop it. Exit codes: 0 stopped, 1 a port cannot be
 * bound, 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 64

typedef struct port {
    unsigned port;
    bool flap;
    int fd; /* -1 while down */
} port;

static port ports[MAX_PORTS];
static size_t nports;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void say(unsigned p, const char *what)
{
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%s demo-listeners: port %u %s\n", ts, p, what);
    fflush(stdout);
}

static int open_port(unsigned p)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 128) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static port *find(unsigned p)
{
    for (size_t i = 0; i < nports; i++)
        if (ports[i].port == p)
            return &ports[i];
    return NULL;
}

/* Adds the ports of a comma-separated list; flap marks them flapping. */
static bool add_ports(const char *list, bool flap)
{
    char *copy = strdup(list), *save = NULL;
    bool ok = copy != NULL;
    for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; ok && tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *end;
        long v = strtol(tok, &end, 10);
        if (*end || v < 1 || v > 65535) {
            fprintf(stderr, "demo-listeners: bad port %s\n", tok);
            ok = false;
            break;
        }
        port *p = find((unsigned)v);
        if (!p) {
            if (nports == MAX_PORTS) {
                fprintf(stderr, "demo-listeners: more than %d ports\n", MAX_PORTS);
                ok = false;
                break;
            }
            p = &ports[nports++];
            p->port = (unsigned)v;
            p->fd = -1;
        }
        p->flap = p->flap || flap;
    }
    free(copy);
    return ok;
}

static long num_arg(const char *s, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 0 || v > 86400) {
        fprintf(stderr, "demo-listeners: bad %s %s\n", what, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    long period = 120, down = 40, offset = -1;
    static const struct option opts[] = {
        {"port", required_argument, 0, 'p'},   {"flap", required_argument, 0, 'f'},
        {"period", required_argument, 0, 'P'}, {"down", required_argument, 0, 'd'},
        {"offset", required_argument, 0, 'o'}, {"name", required_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
        case 'f':
            if (!add_ports(optarg, c == 'f'))
                return 2;
            break;
        case 'P':
            period = num_arg(optarg, "period");
            break;
        case 'd':
            down = num_arg(optarg, "down");
            break;
        case 'o':
            offset = num_arg(optarg, "offset");
            break;
        case 'n':
            break;
        case 'h':
            printf("usage: demo-listeners --port P[,P...]... [--flap P[,P...]] [--period S] "
                   "[--down S] [--offset S] [--name LABEL]\n");
            return 0;
        default:
            return 2;
        }
    }
    if (nports == 0 || optind != argc || period < 1 || down >= period) {
        fprintf(stderr, "demo-listeners: need --port, and --down below --period\n");
        return 2;
    }
    if (offset < 0)
        offset = period - down;

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    for (size_t i = 0; i < nports; i++) {
        if ((ports[i].fd = open_port(ports[i].port)) < 0) {
            fprintf(stderr, "demo-listeners: cannot listen on 127.0.0.1:%u: %s\n", ports[i].port,
                    strerror(errno));
            return 1;
        }
    }
    printf("demo-listeners: listening on %zu ports; flapping ports are down %lds every %lds, "
           "first at +%lds\n",
           nports, down, period, offset);
    fflush(stdout);

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!stop) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long el = (long)(now.tv_sec - t0.tv_sec);
        bool want_down = el >= offset && (el - offset) % period < down;
        struct pollfd pfd[MAX_PORTS];
        size_t n = 0;
        for (size_t i = 0; i < nports; i++) {
            port *p = &ports[i];
            if (p->flap && want_down && p->fd >= 0) {
                close(p->fd);
                p->fd = -1;
                say(p->port, "down (connections refused)");
            } else if (p->flap && !want_down && p->fd < 0) {
                if ((p->fd = open_port(p->port)) >= 0)
                    say(p->port, "up again");
            }
            if (p->fd >= 0)
                pfd[n++] = (struct pollfd){.fd = p->fd, .events = POLLIN};
        }
        int pr = poll(pfd, n, 200);
        for (size_t i = 0; pr > 0 && i < n; i++) {
            if (!(pfd[i].revents & POLLIN))
                continue;
            int cfd;
            while ((cfd = accept(pfd[i].fd, NULL, NULL)) >= 0)
                close(cfd);
        }
    }
    for (size_t i = 0; i < nports; i++)
        if (ports[i].fd >= 0)
            close(ports[i].fd);
    printf("demo-listeners: stopped\n");
    return 0;
}
