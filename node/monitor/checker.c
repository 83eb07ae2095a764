/* The built-in TCP-connect checker (see ibp/checker.h). */
#include "ibp/checker.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ibp/log.h"
#include "ibp/result.h"

#define COMPONENT "checker"

typedef struct target {
    ibp_check_type type;
    const char *check;  /* borrowed from the network */
    const char *member; /* borrowed */
    char *domain;       /* owned, "" for site */
    char *endpoint;     /* owned, "" unless endpoint */
    char *addr;         /* owned: what to connect to */
    unsigned port;
    bool ipv6;
    int64_t timeout_ms;
    int64_t interval_ms;
    int64_t next_ms;
} target;

typedef struct target_list {
    target *items;
    size_t count, cap;
} target_list;

struct ibp_checker {
    ibp_store *store;
    target_list targets;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stopping;
    uint64_t runs;
};

static int64_t now_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ibp_checker_opts_init(ibp_checker_opts *opts)
{
    memset(opts, 0, sizeof *opts);
}

static void targets_free(target_list *l)
{
    for (size_t i = 0; i < l->count; i++) {
        free(l->items[i].domain);
        free(l->items[i].endpoint);
        free(l->items[i].addr);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

static bool is_ip(const char *s, bool *v6)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, s, buf) == 1) {
        *v6 = false;
        return true;
    }
    if (inet_pton(AF_INET6, s, buf) == 1) {
        *v6 = true;
        return true;
    }
    return false;
}

/* Parsed ExtraOptions of one check. */
typedef struct check_opts {
    json_t *root;        /* owned */
    unsigned port;       /* 0: none */
    json_t *ports;       /* borrowed from root, object or NULL */
    const char *connect; /* borrowed from root or NULL */
    bool connect_v6;
} check_opts;

static ibp_status port_value(json_t *v, const char *check, const char *what, unsigned *out,
                             ibp_err *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
        return ibp_err_set(err, IBP_E_CONFIG, "check %s: ExtraOptions.%s: expected a port 1..65535",
                           check, what);
    *out = (unsigned)json_integer_value(v);
    return IBP_OK;
}

static ibp_status check_opts_parse(const ibp_network_check *chk, check_opts *o, ibp_err *err)
{
    memset(o, 0, sizeof *o);
    json_error_t jerr;
    o->root = json_loads(chk->extra_options, 0, &jerr);
    if (!json_is_object(o->root)) {
        json_decref(o->root);
        o->root = NULL;
        return ibp_err_set(err, IBP_E_CONFIG, "check %s: ExtraOptions is not a JSON object",
                           chk->name);
    }
    json_t *v = json_object_get(o->root, "port");
    if (v && port_value(v, chk->name, "port", &o->port, err) != IBP_OK)
        return IBP_E_CONFIG;
    v = json_object_get(o->root, "ports");
    if (v) {
        if (!json_is_object(v))
            return ibp_err_set(err, IBP_E_CONFIG,
                               "check %s: ExtraOptions.ports: expected an object of ports",
                               chk->name);
        const char *k;
        json_t *pv;
        json_object_foreach(v, k, pv)
        {
            unsigned p;
            if (port_value(pv, chk->name, "ports", &p, err) != IBP_OK)
                return IBP_E_CONFIG;
        }
        o->ports = v;
    }
    v = json_object_get(o->root, "connect");
    if (v) {
        if (!json_is_string(v) || !is_ip(json_string_value(v), &o->connect_v6))
            return ibp_err_set(err, IBP_E_CONFIG,
                               "check %s: ExtraOptions.connect: expected an IP address", chk->name);
        o->connect = json_string_value(v);
    }
    return IBP_OK;
}

/* The port the options give for member, 0 when none. */
static unsigned opts_port(const check_opts *o, const char *member)
{
    json_t *v = o->ports ? json_object_get(o->ports, member) : NULL;
    if (v)
        return (unsigned)json_integer_value(v);
    return o->port;
}

static unsigned scheme_port(const char *scheme)
{
    if (strcmp(scheme, "wss") == 0 || strcmp(scheme, "https") == 0)
        return 443;
    if (strcmp(scheme, "ws") == 0 || strcmp(scheme, "http") == 0)
        return 80;
    return 0;
}

static ibp_status push(target_list *l, const target *t)
{
    for (size_t i = 0; i < l->count; i++) { /* the same key twice: keep the first */
        const target *o = &l->items[i];
        if (o->type == t->type && o->ipv6 == t->ipv6 && strcmp(o->check, t->check) == 0 &&
            strcmp(o->member, t->member) == 0 && strcmp(o->domain, t->domain) == 0 &&
            strcmp(o->endpoint, t->endpoint) == 0)
            return IBP_OK;
    }
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        target *items = realloc(l->items, cap * sizeof *items);
        if (!items)
            return IBP_E_NOMEM;
        l->items = items;
        l->cap = cap;
    }
    target *n = &l->items[l->count];
    *n = *t;
    n->domain = strdup(t->domain);
    n->endpoint = strdup(t->endpoint);
    n->addr = strdup(t->addr);
    if (!n->domain || !n->endpoint || !n->addr) {
        free(n->domain);
        free(n->endpoint);
        free(n->addr);
        return IBP_E_NOMEM;
    }
    l->count++;
    return IBP_OK;
}

/* Adds the target in each family that applies. addr4/addr6 NULL or "" means none. */
static ibp_status push_families(target_list *l, target *t, const check_opts *o,
                                const ibp_network_member *m, const char *addr4, const char *addr6)
{
    ibp_status st = IBP_OK;
    if (o->connect) {
        t->ipv6 = o->connect_v6;
        t->addr = (char *)o->connect;
        return push(l, t);
    }
    if (addr4 && addr4[0]) {
        t->ipv6 = false;
        t->addr = (char *)addr4;
        if ((st = push(l, t)) != IBP_OK)
            return st;
    }
    if (m->ipv6[0] && addr6 && addr6[0]) {
        t->ipv6 = true;
        t->addr = (char *)addr6;
        st = push(l, t);
    }
    return st;
}

static ibp_status build_targets(const ibp_network *net, target_list *l, ibp_err *err)
{
    ibp_status st = IBP_OK;
    for (size_t ci = 0; ci < ibp_network_check_count(net); ci++) {
        const ibp_network_check *chk = ibp_network_check_at(net, ci);
        if (!chk->enabled)
            continue;
        check_opts o;
        if ((st = check_opts_parse(chk, &o, err)) != IBP_OK) {
            json_decref(o.root);
            return st;
        }
        for (size_t mi = 0; mi < ibp_network_member_count(net) && st == IBP_OK; mi++) {
            const ibp_network_member *m = ibp_network_member_at(net, mi);
            if (!m->active)
                continue;
            target t = {.check = chk->name,
                        .member = m->name,
                        .domain = "",
                        .endpoint = "",
                        .timeout_ms = chk->timeout_s * 1000,
                        .interval_ms = chk->min_interval_s * 1000};
            unsigned mport = opts_port(&o, m->name);
            if (chk->type == IBP_NETWORK_CHECK_SITE) {
                if (!mport)
                    continue;
                t.type = IBP_CHECK_SITE;
                t.port = mport;
                st = push_families(l, &t, &o, m, m->ipv4, m->ipv6);
                continue;
            }
            for (size_t si = 0; si < m->service_count && st == IBP_OK; si++) {
                const ibp_network_service *svc = ibp_network_service_find(net, m->services[si]);
                if (!svc || !svc->active)
                    continue;
                if (chk->type == IBP_NETWORK_CHECK_DOMAIN) {
                    for (size_t di = 0; di < svc->domain_count && st == IBP_OK; di++) {
                        const ibp_network_domain *d =
                            ibp_network_domain_find(net, svc->domains[di]);
                        unsigned port = mport;
                        for (size_t ui = 0; d && !port && ui < d->url_count; ui++) {
                            ibp_network_url u;
                            ibp_err perr = {0};
                            if (ibp_network_url_parse(d->urls[ui], &u, &perr) == IBP_OK)
                                port = u.port;
                        }
                        if (!port && d && d->url_count) {
                            ibp_network_url u;
                            ibp_err perr = {0};
                            if (ibp_network_url_parse(d->urls[0], &u, &perr) == IBP_OK)
                                port = scheme_port(u.scheme);
                        }
                        if (!port)
                            continue;
                        t.type = IBP_CHECK_DOMAIN;
                        t.domain = svc->domains[di];
                        t.port = port;
                        st = push_families(l, &t, &o, m, svc->domains[di], svc->domains[di]);
                    }
                    continue;
                }
                for (size_t pi = 0; pi < svc->provider_count && st == IBP_OK; pi++) {
                    const ibp_network_provider *p = &svc->providers[pi];
                    for (size_t ui = 0; ui < p->rpc_url_count && st == IBP_OK; ui++) {
                        ibp_network_url u;
                        ibp_err perr = {0};
                        if (ibp_network_url_parse(p->rpc_urls[ui], &u, &perr) != IBP_OK)
                            continue;
                        unsigned port = mport ? mport : u.port ? u.port : scheme_port(u.scheme);
                        if (!port)
                            continue;
                        t.type = IBP_CHECK_ENDPOINT;
                        t.domain = u.host;
                        t.endpoint = p->rpc_urls[ui];
                        t.port = port;
                        st = push_families(l, &t, &o, m, u.host, u.host);
                    }
                }
            }
        }
        json_decref(o.root);
        if (st != IBP_OK)
            return ibp_err_set(err, st, "checker: building the targets: %s", ibp_strerror(st));
    }
    return IBP_OK;
}

static void format_addr(char *buf, size_t cap, const char *addr, unsigned port)
{
    if (strchr(addr, ':'))
        snprintf(buf, cap, "[%s]:%u", addr, port);
    else
        snprintf(buf, cap, "%s:%u", addr, port);
}

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
    format_addr(where, sizeof where, addr, port);
    struct addrinfo hints = {.ai_family = ipv6 ? AF_INET6 : AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    char service[8];
    snprintf(service, sizeof service, "%u", port);
    int64_t t0 = now_ms(CLOCK_MONOTONIC);
    int g = getaddrinfo(addr, service, &hints, &ai);
    if (g != 0 || !ai) {
        snprintf(errbuf, errcap, "resolve %s (%s): %s", addr, ipv6 ? "IPv6" : "IPv4",
                 g ? gai_strerror(g) : "no address");
        if (ai)
            freeaddrinfo(ai);
        return false;
    }
    if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) { /* the address actually used */
        char ip[INET6_ADDRSTRLEN];
        const void *a = ai->ai_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        if (inet_ntop(ai->ai_family, a, ip, sizeof ip))
            format_addr(where, sizeof where, ip, port);
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
            int64_t left = deadline - now_ms(CLOCK_MONOTONIC);
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
        *connect_ms = now_ms(CLOCK_MONOTONIC) - t0;
        if (errcap)
            errbuf[0] = '\0';
    }
    return ok;
}

static void run_target(ibp_store *store, const target *t)
{
    char error[512] = "";
    int64_t ms = 0;
    bool up =
        ibp_checker_connect(t->addr, t->port, t->ipv6, t->timeout_ms, &ms, error, sizeof error);
    char data[64] = "";
    if (up)
        snprintf(data, sizeof data, "{\"connect_ms\": %" PRId64 "}", ms);
    ibp_result_key key = {.type = t->type,
                          .check_name = t->check,
                          .member = t->member,
                          .domain = t->domain,
                          .endpoint = t->endpoint,
                          .ipv6 = t->ipv6};
    ibp_result *r = NULL;
    ibp_err err = {0};
    if (ibp_result_new(&key, up, now_ms(CLOCK_REALTIME), error, data, &r, &err) != IBP_OK ||
        ibp_store_update_local(store, r, &err) != IBP_OK)
        IBP_LOG(IBP_LOG_WARN, COMPONENT, "cannot store check=%s member=%s error=%s", t->check,
                t->member, err.msg);
    else
        IBP_LOG(IBP_LOG_DEBUG, COMPONENT, "check=%s type=%s member=%s domain=%s ipv6=%d up=%d %s",
                t->check, ibp_check_type_name(t->type), t->member, t->domain, t->ipv6, up, error);
    ibp_result_free(r);
}

static void *checker_main(void *arg)
{
    ibp_checker *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        int64_t now = now_ms(CLOCK_MONOTONIC);
        int64_t next = now + 60000;
        target *due = NULL;
        for (size_t i = 0; i < c->targets.count; i++) {
            target *t = &c->targets.items[i];
            if (t->next_ms <= now && (!due || t->next_ms < due->next_ms))
                due = t;
            if (t->next_ms < next)
                next = t->next_ms;
        }
        if (due) {
            pthread_mutex_unlock(&c->mu);
            run_target(c->store, due);
            pthread_mutex_lock(&c->mu);
            due->next_ms = (due->next_ms + due->interval_ms > now_ms(CLOCK_MONOTONIC))
                               ? due->next_ms + due->interval_ms
                               : now_ms(CLOCK_MONOTONIC) + due->interval_ms;
            c->runs++;
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t wait = next - now;
        ts.tv_sec += (time_t)(wait / 1000);
        ts.tv_nsec += (long)(wait % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&c->cond, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

ibp_status ibp_checker_start(const ibp_checker_opts *opts, ibp_checker **out, ibp_err *err)
{
    if (!opts || !opts->network || !opts->store || !out)
        return ibp_err_set(err, IBP_E_INVAL, "checker: network and store are required");
    ibp_checker *c = calloc(1, sizeof *c);
    if (!c)
        return ibp_err_set(err, IBP_E_NOMEM, "checker: out of memory");
    c->store = opts->store;
    ibp_status st = build_targets(opts->network, &c->targets, err);
    if (st != IBP_OK) {
        targets_free(&c->targets);
        free(c);
        return st;
    }
    int64_t start = now_ms(CLOCK_MONOTONIC) + opts->first_delay_ms;
    for (size_t i = 0; i < c->targets.count; i++)
        c->targets.items[i].next_ms = start;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&c->thread, NULL, checker_main, c) != 0) {
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->mu);
        targets_free(&c->targets);
        free(c);
        return ibp_err_set(err, IBP_E_NOMEM, "checker: cannot start the thread");
    }
    IBP_LOG(IBP_LOG_INFO, COMPONENT, "started targets=%zu", c->targets.count);
    *out = c;
    return IBP_OK;
}

ibp_status ibp_checker_validate(const ibp_network *net, ibp_err *err)
{
    if (!net)
        return ibp_err_set(err, IBP_E_INVAL, "checker: network is required");
    target_list l = {0};
    ibp_status st = build_targets(net, &l, err);
    targets_free(&l);
    return st;
}

size_t ibp_checker_target_count(const ibp_checker *c)
{
    return c ? c->targets.count : 0;
}

uint64_t ibp_checker_runs(ibp_checker *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t n = c->runs;
    pthread_mutex_unlock(&c->mu);
    return n;
}

void ibp_checker_stop(ibp_checker *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    targets_free(&c->targets);
    free(c);
}

ibp_status ibp_checker_run_once(const ibp_checker_opts *opts, size_t *targets, ibp_err *err)
{
    if (!opts || !opts->network || !opts->store)
        return ibp_err_set(err, IBP_E_INVAL, "checker: network and store are required");
    target_list l = {0};
    ibp_status st = build_targets(opts->network, &l, err);
    if (st == IBP_OK) {
        for (size_t i = 0; i < l.count; i++)
            run_target(opts->store, &l.items[i]);
        if (targets)
            *targets = l.count;
    }
    targets_free(&l);
    return st;
}
