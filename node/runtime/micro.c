/* The NATS micro-service responder (ADR-32); see ibp/micro.h. */
#include "ibp/micro.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ibp/clock.h"
#include "ibp/date.h"
#include "ibp/log.h"

#define COMPONENT "micro"
#define STR_MAX 256
#define LAST_ERROR_MAX 256

typedef struct ep_state {
    char name[STR_MAX];
    char subject[STR_MAX];
    char queue[STR_MAX]; /* "" when none */
    uint64_t requests, errors;
    int64_t processing_ns;
    char last_error[LAST_ERROR_MAX];
} ep_state;

struct ibp_micro {
    natsConnection *nc;
    char name[STR_MAX];
    char version[64];
    char description[STR_MAX];
    char meta[IBP_MICRO_MAX_METADATA][2][STR_MAX];
    size_t nmeta;
    char id[IBP_MICRO_ID_LEN + 1];
    char started[128];
    void (*stats_fn)(json_t *data, void *user);
    void *stats_user;
    pthread_mutex_t mu; /* guards the endpoint counters */
    ep_state eps[IBP_MICRO_MAX_ENDPOINTS];
    size_t neps;
    natsSubscription *subs[3];
    size_t nsubs;
};

void ibp_micro_opts_init(ibp_micro_opts *opts)
{
    memset(opts, 0, sizeof *opts);
}

const char *ibp_micro_id(const ibp_micro *m)
{
    return m ? m->id : "";
}

static bool name_ok(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) >= STR_MAX)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool subject_ok(const char *s)
{
    return s && *s && strlen(s) < STR_MAX && !strpbrk(s, " \t\r\n");
}

/* 22 base62 characters from the kernel's random bytes, mixed with time and
 * pid so that ids differ even if /dev/urandom cannot be read. */
static void make_id(char out[IBP_MICRO_ID_LEN + 1])
{
    static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char raw[IBP_MICRO_ID_LEN] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, raw, sizeof raw) != (ssize_t)sizeof raw)
            memset(raw, 0, sizeof raw);
        close(fd);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t t = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
                 ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)out;
    for (size_t i = 0; i < sizeof raw; i++) {
        raw[i] ^= (unsigned char)(t >> (8 * (i % 8)));
        out[i] = digits[raw[i] % 62];
    }
    out[IBP_MICRO_ID_LEN] = '\0';
}

static void format_now(char *buf, size_t cap)
{
    ibp_rfc3339_format_ms(ibp_clock_wall_ms(), buf, cap);
}

int ibp_micro_endpoint_index(const ibp_micro *m, const char *name)
{
    for (size_t i = 0; m && name && i < m->neps; i++)
        if (strcmp(m->eps[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Keeps printable ASCII only (a JSON string and a header value either way). */
static void copy_error(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (; src && *src && n + 1 < cap; src++)
        dst[n++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
    dst[n] = '\0';
}

void ibp_micro_record(ibp_micro *m, size_t ep, int64_t processing_ns, const char *error)
{
    if (m == NULL || ep >= m->neps)
        return;
    pthread_mutex_lock(&m->mu);
    ep_state *e = &m->eps[ep];
    e->requests++;
    e->processing_ns += processing_ns > 0 ? processing_ns : 0;
    if (error) {
        e->errors++;
        copy_error(e->last_error, sizeof e->last_error, *error ? error : "error");
    }
    pthread_mutex_unlock(&m->mu);
}

static json_t *metadata_json(const ibp_micro *m)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < m->nmeta; i++)
        json_object_set_new(o, m->meta[i][0], json_string(m->meta[i][1]));
    return o;
}

static const char *verb_type(const char *verb)
{
    if (strcmp(verb, "PING") == 0)
        return "io.nats.micro.v1.ping_response";
    if (strcmp(verb, "INFO") == 0)
        return "io.nats.micro.v1.info_response";
    if (strcmp(verb, "STATS") == 0)
        return "io.nats.micro.v1.stats_response";
    return NULL;
}

char *ibp_micro_response_json(ibp_micro *m, const char *verb)
{
    const char *type = m && verb ? verb_type(verb) : NULL;
    if (type == NULL)
        return NULL;
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "type", json_string(type));
    json_object_set_new(o, "name", json_string(m->name));
    json_object_set_new(o, "id", json_string(m->id));
    json_object_set_new(o, "version", json_string(m->version));
    json_object_set_new(o, "metadata", metadata_json(m));
    if (strcmp(verb, "INFO") == 0) {
        json_object_set_new(o, "description", json_string(m->description));
        json_t *eps = json_array();
        for (size_t i = 0; eps && i < m->neps; i++) {
            const ep_state *e = &m->eps[i];
            json_t *j =
                json_pack("{s:s,s:s,s:{}}", "name", e->name, "subject", e->subject, "metadata");
            if (j && e->queue[0])
                json_object_set_new(j, "queue_group", json_string(e->queue));
            json_array_append_new(eps, j);
        }
        json_object_set_new(o, "endpoints", eps);
    } else if (strcmp(verb, "STATS") == 0) {
        json_object_set_new(o, "started", json_string(m->started));
        json_t *eps = json_array();
        pthread_mutex_lock(&m->mu);
        for (size_t i = 0; eps && i < m->neps; i++) {
            const ep_state *e = &m->eps[i];
            json_t *j =
                json_pack("{s:s,s:s,s:I,s:I,s:s,s:I,s:I}", "name", e->name, "subject", e->subject,
                          "num_requests", (json_int_t)e->requests, "num_errors",
                          (json_int_t)e->errors, "last_error", e->last_error, "processing_time",
                          (json_int_t)e->processing_ns, "average_processing_time",
                          (json_int_t)(e->requests ? e->processing_ns / (int64_t)e->requests : 0));
            if (j && e->queue[0])
                json_object_set_new(j, "queue_group", json_string(e->queue));
            json_array_append_new(eps, j);
        }
        pthread_mutex_unlock(&m->mu);
        json_object_set_new(o, "endpoints", eps);
        if (m->stats_fn) {
            json_t *data = json_object();
            if (data) {
                m->stats_fn(data, m->stats_user);
                json_object_set_new(o, "data", data);
            }
        }
    }
    char *body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return body;
}

bool ibp_micro_match(const ibp_micro *m, const char *subject, char *verb, size_t cap)
{
    if (m == NULL || subject == NULL || cap < 8 || strncmp(subject, "$SRV.", 5) != 0)
        return false;
    const char *p = subject + 5;
    size_t n = strcspn(p, ".");
    if (n == 0 || n >= cap)
        return false;
    memcpy(verb, p, n);
    verb[n] = '\0';
    if (verb_type(verb) == NULL)
        return false;
    p += n;
    if (*p == '\0')
        return true;
    p++; /* the dot */
    size_t nl = strlen(m->name);
    if (strncmp(p, m->name, nl) != 0 || (p[nl] != '\0' && p[nl] != '.'))
        return false;
    p += nl;
    if (*p == '\0')
        return true;
    return strcmp(p + 1, m->id) == 0;
}

/* nats.c thread: build the small answer from memory and publish it. */
static void on_srv(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)sub;
    ibp_micro *m = closure;
    char verb[16];
    const char *reply = natsMsg_GetReply(msg);
    if (reply && *reply && ibp_micro_match(m, natsMsg_GetSubject(msg), verb, sizeof verb)) {
        char *body = ibp_micro_response_json(m, verb);
        if (body) {
            natsStatus ns = natsConnection_PublishString(nc, reply, body);
            if (ns != NATS_OK)
                IBP_LOG(IBP_LOG_WARN, COMPONENT, "cannot answer service=%s subject=%s error=%s",
                        m->name, natsMsg_GetSubject(msg), natsStatus_GetText(ns));
            free(body);
        }
    }
    natsMsg_Destroy(msg);
}

ibp_status ibp_micro_start(const ibp_micro_opts *opts, ibp_micro **out, ibp_err *err)
{
    if (opts == NULL || out == NULL || !name_ok(opts->name))
        return ibp_err_set(err, IBP_E_INVAL, "micro: a service name [A-Za-z0-9_-]+ is required");
    if (opts->version == NULL || strlen(opts->version) < 5 || strlen(opts->version) >= 64)
        return ibp_err_set(err, IBP_E_INVAL, "micro: a semantic version is required");
    if (opts->nendpoints > IBP_MICRO_MAX_ENDPOINTS)
        return ibp_err_set(err, IBP_E_INVAL, "micro: too many endpoints");
    for (size_t i = 0; i < opts->nendpoints; i++) {
        const ibp_micro_endpoint *e = &opts->endpoints[i];
        if (!name_ok(e->name) || !subject_ok(e->subject) ||
            (e->queue_group && e->queue_group[0] && !subject_ok(e->queue_group)))
            return ibp_err_set(err, IBP_E_INVAL, "micro: endpoint %zu: bad name or subject", i);
    }
    ibp_micro *m = calloc(1, sizeof *m);
    if (m == NULL)
        return ibp_err_set(err, IBP_E_NOMEM, "micro: out of memory");
    m->nc = opts->nc;
    snprintf(m->name, sizeof m->name, "%s", opts->name);
    snprintf(m->version, sizeof m->version, "%s", opts->version);
    snprintf(m->description, sizeof m->description, "%s",
             opts->description ? opts->description : "");
    for (size_t i = 0; i < IBP_MICRO_MAX_METADATA && opts->metadata[i][0]; i++) {
        snprintf(m->meta[i][0], STR_MAX, "%s", opts->metadata[i][0]);
        snprintf(m->meta[i][1], STR_MAX, "%s", opts->metadata[i][1] ? opts->metadata[i][1] : "");
        m->nmeta++;
    }
    for (size_t i = 0; i < opts->nendpoints; i++) {
        const ibp_micro_endpoint *e = &opts->endpoints[i];
        snprintf(m->eps[i].name, STR_MAX, "%s", e->name);
        snprintf(m->eps[i].subject, STR_MAX, "%s", e->subject);
        snprintf(m->eps[i].queue, STR_MAX, "%s", e->queue_group ? e->queue_group : "");
    }
    m->neps = opts->nendpoints;
    m->stats_fn = opts->stats_fn;
    m->stats_user = opts->stats_user;
    make_id(m->id);
    format_now(m->started, sizeof m->started);
    pthread_mutex_init(&m->mu, NULL);
    if (m->nc) {
        char subj[3][STR_MAX + IBP_MICRO_ID_LEN + 16];
        snprintf(subj[0], sizeof subj[0], "$SRV.*");
        snprintf(subj[1], sizeof subj[1], "$SRV.*.%s", m->name);
        snprintf(subj[2], sizeof subj[2], "$SRV.*.%s.%s", m->name, m->id);
        for (int i = 0; i < 3; i++) {
            natsSubscription *sub = NULL;
            natsStatus ns = natsConnection_Subscribe(&sub, m->nc, subj[i], on_srv, m);
            if (ns != NATS_OK) {
                ibp_err_set(err, IBP_E_NATS, "micro: subscribe %s: %s", subj[i],
                            natsStatus_GetText(ns));
                ibp_micro_stop(m);
                return IBP_E_NATS;
            }
            m->subs[m->nsubs++] = sub;
        }
        natsConnection_Flush(m->nc);
    }
    IBP_LOG(IBP_LOG_INFO, COMPONENT, "service name=%s id=%s version=%s endpoints=%zu", m->name,
            m->id, m->version, m->neps);
    *out = m;
    return IBP_OK;
}

void ibp_micro_stop(ibp_micro *m)
{
    if (m == NULL)
        return;
    /* Drain, then wait: no callback runs (or will run) once it completes, so
     * m can be freed. Unsubscribe is the fallback on a closed connection. */
    for (size_t i = 0; i < m->nsubs; i++)
        if (natsSubscription_Drain(m->subs[i]) != NATS_OK)
            natsSubscription_Unsubscribe(m->subs[i]);
    for (size_t i = 0; i < m->nsubs; i++) {
        natsSubscription_WaitForDrainCompletion(m->subs[i], 5000);
        natsSubscription_Destroy(m->subs[i]);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}
