/*
 * The fault suite's load: the members' servers and DNS traffic (fault_load.h).
 */
#include "fault_load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_HOSTS 2

struct fault_load {
    char hosts[MAX_HOSTS][64];
    int nhosts;
    unsigned ports[FC_PORTS];
    int fd[MAX_HOSTS][FC_PORTS]; /* -1 while down */
    pthread_mutex_t mu;
    int flap_period_ms; /* 0: not flapping */
    bool flap_up;
    int64_t flap_next_ms;
    atomic_bool stop;
    pthread_t listener;
    bool listener_started;

    /* DNS traffic */
    const fault_cluster *fc;
    int per_second;
    atomic_bool hits_stop;
    pthread_t hits;
    bool hits_started;
    atomic_uint_fast64_t acked, failed;
};

static int listen_on(const char *host, unsigned *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
    socklen_t len = sizeof a;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        fprintf(stderr, "fault: cannot listen on %s:%u: %s\n", host, *port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* Opens or closes the flapping port on every host; caller holds mu. */
static void set_flap_locked(fault_load *l, bool up)
{
    if (up == l->flap_up)
        return;
    for (int h = 0; h < l->nhosts; h++) {
        int *fd = &l->fd[h][FC_FLAP_INDEX];
        if (!up && *fd >= 0) {
            close(*fd);
            *fd = -1;
        } else if (up && *fd < 0) {
            unsigned p = l->ports[FC_FLAP_INDEX];
            /* The port may be held briefly by nothing else; retry a few times. */
            for (int k = 0; k < 50 && (*fd = listen_on(l->hosts[h], &p)) < 0; k++)
                fc_sleep_ms(20);
        }
    }
    l->flap_up = up;
    printf("fault: flapping port %u %s\n", l->ports[FC_FLAP_INDEX], up ? "up" : "down");
    fflush(stdout);
}

static void *listener_main(void *arg)
{
    fault_load *l = arg;
    while (!atomic_load(&l->stop)) {
        struct pollfd p[MAX_HOSTS * FC_PORTS];
        int n = 0;
        pthread_mutex_lock(&l->mu);
        int64_t now = fc_mono_ms();
        if (l->flap_period_ms > 0 && now >= l->flap_next_ms) {
            set_flap_locked(l, !l->flap_up);
            l->flap_next_ms = now + l->flap_period_ms;
        }
        for (int h = 0; h < l->nhosts; h++)
            for (int i = 0; i < FC_PORTS; i++)
                if (l->fd[h][i] >= 0)
                    p[n++] = (struct pollfd){.fd = l->fd[h][i], .events = POLLIN};
        pthread_mutex_unlock(&l->mu);
        /* Short waits: a closed descriptor is never polled for long. */
        if (poll(p, (nfds_t)n, 50) <= 0)
            continue;
        pthread_mutex_lock(&l->mu);
        for (int k = 0; k < n; k++) {
            if (!(p[k].revents & POLLIN))
                continue;
            bool still_open = false;
            for (int h = 0; h < l->nhosts; h++)
                for (int i = 0; i < FC_PORTS; i++)
                    still_open |= l->fd[h][i] == p[k].fd;
            if (!still_open)
                continue;
            int c;
            while ((c = accept(p[k].fd, NULL, NULL)) >= 0)
                close(c); /* the check only needs the handshake */
        }
        pthread_mutex_unlock(&l->mu);
    }
    return NULL;
}

int fl_start(fault_load **out, const char *extra_host, unsigned ports[FC_PORTS])
{
    fault_load *l = calloc(1, sizeof *l);
    if (!l)
        return -1;
    pthread_mutex_init(&l->mu, NULL);
    snprintf(l->hosts[0], sizeof l->hosts[0], "127.0.0.1");
    l->nhosts = 1;
    if (extra_host)
        snprintf(l->hosts[l->nhosts++], sizeof l->hosts[0], "%s", extra_host);
    for (int h = 0; h < MAX_HOSTS; h++)
        for (int i = 0; i < FC_PORTS; i++)
            l->fd[h][i] = -1;
    l->flap_up = true;
    *out = l;
    for (int h = 0; h < l->nhosts; h++)
        for (int i = 0; i < FC_PORTS; i++)
            if ((l->fd[h][i] = listen_on(l->hosts[h], &l->ports[i])) < 0)
                return -1;
    if (pthread_create(&l->listener, NULL, listener_main, l) != 0)
        return -1;
    l->listener_started = true;
    memcpy(ports, l->ports, sizeof l->ports);
    return 0;
}

void fl_flap(fault_load *l, int period_ms)
{
    pthread_mutex_lock(&l->mu);
    l->flap_period_ms = period_ms;
    l->flap_next_ms = fc_mono_ms() + period_ms;
    pthread_mutex_unlock(&l->mu);
}

void fl_hold(fault_load *l, bool up)
{
    pthread_mutex_lock(&l->mu);
    l->flap_period_ms = 0;
    set_flap_locked(l, up);
    pthread_mutex_unlock(&l->mu);
}

bool fl_flap_up(fault_load *l)
{
    pthread_mutex_lock(&l->mu);
    bool up = l->flap_up;
    pthread_mutex_unlock(&l->mu);
    return up;
}

/* ---- DNS traffic ---------------------------------------------------------- */

static const char *const HIT_DOMAINS[] = {"polkadot.ibp.demo", "kusama.ibp.demo", "rpc.ibp.demo",
                                          "paseo.ibp.demo"};
static const char *const HIT_MEMBERS[] = {"Alpha Nodes", "Beta Infra", "Gamma Stake",
                                          "Delta Hosting"};
static const char *const HIT_CLIENTS[] = {"192.0.2.10", "198.51.100.7", "2001:db8::5"};

static int ctl_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return -1;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    /* Long: an answer lost to a timeout would be a hit counted but not acknowledged. */
    struct timeval tv = {.tv_sec = 30};
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends one dns_hit on fd and reads its answer line; true when it says ok. */
static bool send_hit(int fd, uint64_t n)
{
    const char *client = HIT_CLIENTS[n % 3];
    char line[256];
    int len = snprintf(line, sizeof line,
                       "{\"cmd\":\"dns_hit\",\"ipv6\":%s,\"client_ip\":\"%s\",\"domain\":\"%s\","
                       "\"member\":\"%s\"}\n",
                       strchr(client, ':') ? "true" : "false", client, HIT_DOMAINS[n % 4],
                       HIT_MEMBERS[(n / 4) % 4]);
    if (send(fd, line, (size_t)len, MSG_NOSIGNAL) != len)
        return false;
    char buf[512];
    size_t used = 0;
    while (used < sizeof buf - 1) {
        ssize_t r = recv(fd, buf + used, sizeof buf - 1 - used, 0);
        if (r <= 0)
            return false;
        used += (size_t)r;
        if (memchr(buf, '\n', used))
            break;
    }
    buf[used] = '\0';
    return strstr(buf, "\"ok\":true") || strstr(buf, "\"ok\": true");
}

static void *hits_main(void *arg)
{
    fault_load *l = arg;
    const char *sock = l->fc->node[FC_DNS1].sock;
    int fd = -1;
    uint64_t n = 0;
    int64_t start = fc_mono_ms();
    while (!atomic_load(&l->hits_stop)) {
        /* Pace: n hits by (n / per_second) seconds after the start. */
        int64_t due = start + (int64_t)(n * 1000 / (uint64_t)l->per_second);
        int64_t now = fc_mono_ms();
        if (due > now) {
            fc_sleep_ms((int)(due - now < 100 ? due - now : 100));
            continue;
        }
        if (fd < 0 && (fd = ctl_connect(sock)) < 0) {
            atomic_fetch_add(&l->failed, 1);
            fc_sleep_ms(100);
            start += 100; /* do not burst after an outage */
            continue;
        }
        if (send_hit(fd, n)) {
            atomic_fetch_add(&l->acked, 1);
        } else {
            atomic_fetch_add(&l->failed, 1);
            close(fd);
            fd = -1;
        }
        n++;
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

int fl_hits_start(fault_load *l, const fault_cluster *fc, int per_second)
{
    l->fc = fc;
    l->per_second = per_second > 0 ? per_second : 100;
    atomic_store(&l->hits_stop, false);
    if (pthread_create(&l->hits, NULL, hits_main, l) != 0)
        return -1;
    l->hits_started = true;
    return 0;
}

void fl_hits_stop(fault_load *l)
{
    if (!l || !l->hits_started)
        return;
    atomic_store(&l->hits_stop, true);
    pthread_join(l->hits, NULL);
    l->hits_started = false;
}

uint64_t fl_hits_acked(fault_load *l)
{
    return atomic_load(&l->acked);
}

uint64_t fl_hits_failed(fault_load *l)
{
    return atomic_load(&l->failed);
}

void fl_free(fault_load *l)
{
    if (!l)
        return;
    fl_hits_stop(l);
    atomic_store(&l->stop, true);
    if (l->listener_started)
        pthread_join(l->listener, NULL);
    for (int h = 0; h < MAX_HOSTS; h++)
        for (int i = 0; i < FC_PORTS; i++)
            if (l->fd[h][i] >= 0)
                close(l->fd[h][i]);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
