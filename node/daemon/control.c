/* The local control socket; see ibp/control.h. */
#define _GNU_SOURCE /* accept4, pipe2, struct ucred (SO_PEERCRED) */
#include "ibp/clock.h"
#include "ibp/control.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ibp/log.h"
#include "ibp/result.h"
#include "ibp/roster.h"

#define COMPONENT "control"
#define READ_CHUNK 65536

typedef struct client {
    int fd;
    char *buf;
    size_t len, cap;
    bool discarding; /* skipping the rest of an over-long line */
} client;

struct ibp_control {
    ibp_control_opts opts;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char node[IBP_NODE_ID_MAX + 1];
    int listen_fd;
    int wake[2]; /* self-pipe: stop wakes the poll */
    client *clients;
    size_t nclients;
    pthread_t thread;
    uint64_t requests, errors;
};

void ibp_control_opts_init(ibp_control_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->max_line_bytes = 1024 * 1024;
    opts->max_clients = 16;
    opts->flush_timeout_ms = 5000;
    opts->write_timeout_ms = 2000;
}

/* ---- requests ----------------------------------------------------------- */

/* An answer {"ok":false,"error":msg}. */
static json_t *fail_answer(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *fail_answer(const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

/* Reads an optional string member: *out NULL when absent or null; -1 when another type. */
static int get_str(const json_t *req, const char *key, const char **out)
{
    const json_t *v = json_object_get(req, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    *out = json_string_value(v);
    return 0;
}

/* Optional bool member: *out keeps its default when absent; -1 when another type. */
static int get_bool(const json_t *req, const char *key, bool *out)
{
    const json_t *v = json_object_get(req, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return -1;
    *out = json_is_true(v);
    return 0;
}

/* The key fields shared by observe and official. domain_buf receives the normalised domain. */
static json_t *parse_key(const json_t *req, ibp_result_key *key, char *domain_buf, size_t cap)
{
    const char *type = NULL, *domain = NULL;
    memset(key, 0, sizeof *key);
    if (get_str(req, "type", &type) || !type)
        return fail_answer("\"type\" must be \"site\", \"domain\" or \"endpoint\"");
    if (ibp_check_type_parse(type, &key->type) != IBP_OK)
        return fail_answer("\"type\" must be \"site\", \"domain\" or \"endpoint\", not \"%.64s\"",
                           type);
    if (get_str(req, "check", &key->check_name) || !key->check_name)
        return fail_answer("\"check\" (the check name) must be a string");
    if (get_str(req, "member", &key->member) || !key->member)
        return fail_answer("\"member\" must be a string");
    if (get_str(req, "domain", &domain))
        return fail_answer("\"domain\" must be a string");
    if (get_str(req, "endpoint", &key->endpoint))
        return fail_answer("\"endpoint\" must be a string");
    if (get_bool(req, "ipv6", &key->ipv6))
        return fail_answer("\"ipv6\" must be true or false");
    if (ibp_domain_normalize(domain ? domain : "", domain_buf, cap) != IBP_OK)
        return fail_answer("\"domain\" of %zu bytes is over the limit of %d (IBP_DOMAIN_MAX)",
                           domain ? strlen(domain) : 0, IBP_DOMAIN_MAX);
    key->domain = domain_buf;
    return NULL;
}

static json_t *cmd_observe(ibp_control *c, const json_t *req)
{
    ibp_result_key key;
    char domain[IBP_DOMAIN_MAX + 1];
    const char *error = NULL, *status = NULL;
    bool up = false;
    char *data = NULL;
    json_t *ans;

    if (!c->opts.accept_observations)
        return fail_answer("this node does not publish observations (role monitor is not set)");
    if ((ans = parse_key(req, &key, domain, sizeof domain)) != NULL)
        return ans;
    const json_t *upv = json_object_get(req, "up");
    if (get_str(req, "status", &status))
        return fail_answer("\"status\" must be \"up\" or \"down\"");
    if (upv && json_is_boolean(upv)) {
        up = json_is_true(upv);
    } else if (!upv && status && (strcmp(status, "up") == 0 || strcmp(status, "down") == 0)) {
        up = strcmp(status, "up") == 0;
    } else {
        return fail_answer("\"up\" must be true or false");
    }
    if (get_str(req, "error", &error))
        return fail_answer("\"error\" must be a string");
    const json_t *dv = json_object_get(req, "data");
    if (dv && !json_is_null(dv)) {
        if (!json_is_object(dv))
            return fail_answer("\"data\" must be a JSON object");
        if (!(data = json_dumps(dv, JSON_COMPACT | JSON_SORT_KEYS)))
            return fail_answer("out of memory");
    }
    int64_t check_time_ms = ibp_clock_wall_ms();
    const json_t *tv = json_object_get(req, "check_time_ms");
    if (tv && !json_is_null(tv)) {
        if (!json_is_integer(tv) || json_integer_value(tv) < 0) {
            free(data);
            return fail_answer("\"check_time_ms\" must be a non-negative integer");
        }
        check_time_ms = (int64_t)json_integer_value(tv);
    }
    ibp_result *r = NULL;
    ibp_err err = {0};
    ibp_status st =
        ibp_result_new(&key, up, check_time_ms, error ? error : "", data ? data : "", &r, &err);
    free(data);
    if (st == IBP_OK)
        st = ibp_store_update_local(c->opts.store, r, &err);
    ibp_result_free(r);
    if (st != IBP_OK)
        return fail_answer("%s", err.msg[0] ? err.msg : ibp_strerror(st));
    IBP_LOG(IBP_LOG_DEBUG, COMPONENT,
            "observation type=%s check=%s member=%s domain=%s endpoint=%s ipv6=%d up=%d",
            ibp_check_type_name(key.type), key.check_name, key.member, key.domain,
            key.endpoint ? key.endpoint : "", key.ipv6, up);
    return json_pack("{s:b}", "ok", 1);
}

static json_t *roles_array(unsigned roles)
{
    json_t *a = json_array();
    for (unsigned bit = 1; a && bit <= IBP_ROLE_ADMIN; bit <<= 1)
        if (roles & bit)
            json_array_append_new(a, json_string(ibp_role_name(bit)));
    return a;
}

static json_t *publisher_json(ibp_monitor_publisher *p)
{
    ibp_monitor_publisher_stats s;
    ibp_monitor_publisher_stats_get(p, &s);
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                     "batches_sealed", (json_int_t)s.batches_sealed, "batches_published",
                     (json_int_t)s.batches_published, "full_batches", (json_int_t)s.full_batches,
                     "observations_published", (json_int_t)s.observations_published,
                     "heartbeats_published", (json_int_t)s.heartbeats_published, "duplicates",
                     (json_int_t)s.duplicates, "publish_failures", (json_int_t)s.publish_failures,
                     "dropped", (json_int_t)s.dropped, "queued", (json_int_t)s.queued, "last_seq",
                     (json_int_t)s.last_seq, "last_stream_seq", (json_int_t)s.last_stream_seq,
                     "last_ack_ms", (json_int_t)s.last_ack_ms, "last_failure_ms",
                     (json_int_t)s.last_failure_ms);
}

json_t *ibp_control_certificates_json(const ibp_official_subscriber_stats *s)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "quorum", (json_int_t)s->quorum, "certified",
                     (json_int_t)s->certified, "uncertified_pending",
                     (json_int_t)s->uncertified_pending, "forged_refused",
                     (json_int_t)s->forged_refused, "statements", (json_int_t)s->statements,
                     "signers", (json_int_t)s->cert_signers);
}

static json_t *subscriber_json(ibp_official_subscriber *sub)
{
    ibp_official_subscriber_stats s;
    ibp_official_subscriber_stats_get(sub, &s);
    json_t *by = json_object();
    for (int i = 0; by && i < IBP_STATUS_COUNT; i++)
        if (s.rejected_by[i])
            json_object_set_new(by, ibp_status_name((ibp_status)i),
                                json_integer((json_int_t)s.rejected_by[i]));
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I}", "received",
        (json_int_t)s.received, "applied", (json_int_t)s.applied, "ignored", (json_int_t)s.ignored,
        "rejected", (json_int_t)s.rejected, "rejected_by", by ? by : json_null(), "epoch",
        (json_int_t)s.epoch, "local_seq", (json_int_t)s.local_seq, "last_applied_ms",
        (json_int_t)s.last_applied_ms, "heartbeats", (json_int_t)s.heartbeats, "heartbeat_epoch",
        (json_int_t)s.heartbeat_epoch, "last_heartbeat_ms", (json_int_t)s.last_heartbeat_ms,
        "subscribes", (json_int_t)s.subscribes, "certificates", ibp_control_certificates_json(&s),
        "official_cache_refused", (json_int_t)s.official_cache_refused);
}

static json_t *usage_json(ibp_usage *u)
{
    ibp_usage_stats s;
    ibp_usage_stats_get(u, &s);
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "hits", (json_int_t)s.hits, "keys",
                     (json_int_t)s.keys, "flushes", (json_int_t)s.flushes, "flush_errors",
                     (json_int_t)s.flush_errors, "journal_pending", (json_int_t)s.journal.pending,
                     "journal_delivered", (json_int_t)s.journal.delivered);
}

static json_t *cmd_status(ibp_control *c)
{
    ibp_override *ovr = NULL;
    size_t n_ovr = 0;
    if (ibp_store_overrides(c->opts.store, &ovr, &n_ovr) == IBP_OK)
        ibp_store_overrides_free(ovr, n_ovr);
    ibp_result_list local = {0};
    size_t n_local = 0;
    if (ibp_store_local_all(c->opts.store, &local) == IBP_OK)
        n_local = local.count;
    ibp_result_list_free(&local);
    json_t *ans = json_pack("{s:b, s:s, s:o, s:{s:I, s:I, s:I}, s:{s:I}, s:{s:I, s:I}}", "ok", 1,
                            "node", c->node, "roles", roles_array(c->opts.roles), "official",
                            "epoch", (json_int_t)ibp_store_official_epoch(c->opts.store), "results",
                            (json_int_t)ibp_store_official_count(c->opts.store), "overrides",
                            (json_int_t)n_ovr, "local", "results", (json_int_t)n_local, "control",
                            "requests", (json_int_t)c->requests, "errors", (json_int_t)c->errors);
    if (!ans)
        return NULL;
    if (c->opts.publisher)
        json_object_set_new(ans, "publisher", publisher_json(c->opts.publisher));
    if (c->opts.subscriber)
        json_object_set_new(ans, "subscriber", subscriber_json(c->opts.subscriber));
    if (c->opts.usage)
        json_object_set_new(ans, "usage", usage_json(c->opts.usage));
    if (c->opts.status_fn)
        c->opts.status_fn(ans, c->opts.status_user);
    return ans;
}

static json_t *cmd_member_online(ibp_control *c, const json_t *req)
{
    const char *domain = NULL, *member = NULL;
    bool ipv6 = false;
    if (get_str(req, "domain", &domain) || !domain)
        return fail_answer("\"domain\" must be a string");
    if (get_str(req, "member", &member) || !member)
        return fail_answer("\"member\" must be a string");
    if (get_bool(req, "ipv6", &ipv6))
        return fail_answer("\"ipv6\" must be true or false");
    /* The epoch first: the answer is at least as new as the epoch it names. */
    uint64_t epoch = ibp_store_official_epoch(c->opts.store);
    bool online = ibp_store_member_online(c->opts.store, domain, member, ipv6);
    return json_pack("{s:b, s:b, s:I}", "ok", 1, "online", online, "epoch", (json_int_t)epoch);
}

static json_t *cmd_official(ibp_control *c, const json_t *req)
{
    ibp_result_key key;
    char domain[IBP_DOMAIN_MAX + 1];
    json_t *ans = parse_key(req, &key, domain, sizeof domain);
    if (ans)
        return ans;
    uint64_t epoch = ibp_store_official_epoch(c->opts.store);
    ibp_result *r = NULL;
    ibp_status st = ibp_store_official_get(c->opts.store, &key, &r);
    if (st == IBP_E_NOT_FOUND)
        return json_pack("{s:b, s:b, s:I}", "ok", 1, "found", 0, "epoch", (json_int_t)epoch);
    if (st != IBP_OK)
        return fail_answer("%s", ibp_strerror(st));
    ans = json_pack("{s:b, s:b, s:b, s:I, s:s, s:s, s:I}", "ok", 1, "found", 1, "up", r->up,
                    "check_time_ms", (json_int_t)r->check_time_ms, "error", r->error, "data",
                    r->data_json, "epoch", (json_int_t)epoch);
    ibp_result_free(r);
    return ans;
}

static json_t *cmd_flush(ibp_control *c, const json_t *req)
{
    if (!c->opts.publisher)
        return fail_answer("this node does not publish observations (role monitor is not set)");
    int64_t timeout_ms = c->opts.flush_timeout_ms;
    const json_t *tv = json_object_get(req, "timeout_ms");
    if (tv && !json_is_null(tv)) {
        if (!json_is_integer(tv) || json_integer_value(tv) < 0 || json_integer_value(tv) > 600000)
            return fail_answer("\"timeout_ms\" must be an integer from 0 to 600000");
        timeout_ms = (int64_t)json_integer_value(tv);
    }
    ibp_err err = {0};
    if (ibp_monitor_publisher_flush(c->opts.publisher, timeout_ms, &err) != IBP_OK)
        return fail_answer("%s", err.msg);
    return json_pack("{s:b}", "ok", 1);
}

static json_t *cmd_dns_hit(ibp_control *c, const json_t *req)
{
    const char *ip = NULL, *domain = NULL, *member = NULL;
    bool ipv6 = false;
    if (!c->opts.usage)
        return fail_answer("this node keeps no usage statistics (role dns is not set)");
    if (get_str(req, "client_ip", &ip) || get_str(req, "domain", &domain) || !domain ||
        get_str(req, "member", &member) || get_bool(req, "ipv6", &ipv6))
        return fail_answer("dns_hit needs \"domain\" and takes \"client_ip\", \"member\" "
                           "(strings) and \"ipv6\" (bool)");
    ibp_status st = ibp_usage_record_dns_hit(c->opts.usage, ipv6, ip, domain, member);
    if (st != IBP_OK)
        return fail_answer("%s", ibp_strerror(st));
    return json_pack("{s:b}", "ok", 1);
}

/*
 * {"cmd":"usage_flush","date":"YYYY-MM-DD" (optional)}: flushes the usage
 * counters now (every date, or one) and offers the journal to the sink ->
 * {"ok":true,"node":..,"flush_seq":N,"pending":N}: flush_seq is the last
 * HitBatch flush_seq handed out, pending the entries not yet published
 * (retried by the usage thread). `ibpctl usage flush` then waits until
 * persist has applied flush_seq.
 */
static json_t *cmd_usage_flush(ibp_control *c, const json_t *req)
{
    const char *date = NULL;
    if (!c->opts.usage)
        return fail_answer("this node keeps no usage statistics (role dns is not set)");
    if (get_str(req, "date", &date))
        return fail_answer("\"date\" must be a string YYYY-MM-DD");
    ibp_err err = {0};
    ibp_status st = date ? ibp_usage_flush_date(c->opts.usage, date, &err)
                         : ibp_usage_flush(c->opts.usage, &err);
    if (st != IBP_OK)
        return fail_answer("%s", err.msg[0] ? err.msg : ibp_strerror(st));
    ibp_usage_stats us;
    ibp_usage_stats_get(c->opts.usage, &us);
    return json_pack("{s:b, s:s, s:I, s:I}", "ok", 1, "node", c->node, "flush_seq",
                     (json_int_t)us.journal.last_seq, "pending", (json_int_t)us.journal.pending);
}

/*
 * {"cmd":"reload"}: reads the node's network files again, as SIGHUP does ->
 * {"ok":true} or {"ok":false,"error":...} with the reason the old
 * configuration stays.
 */
static json_t *cmd_reload(ibp_control *c)
{
    if (!c->opts.reload_fn)
        return fail_answer("this node has nothing to reload (role monitor is not set)");
    ibp_err err = {0};
    ibp_status st = c->opts.reload_fn(c->opts.reload_user, &err);
    if (st != IBP_OK)
        return fail_answer("reload refused, the old config stays: %s",
                           err.msg[0] ? err.msg : ibp_strerror(st));
    return json_pack("{s:b, s:s}", "ok", 1, "node", c->node);
}

char *ibp_control_execute(ibp_control *c, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *ans = NULL;
    json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *cmd = NULL;
    c->requests++;
    if (!req) {
        ans = fail_answer("not JSON: %s (column %d)", jerr.text, jerr.column);
    } else if (!json_is_object(req)) {
        ans = fail_answer("a request is a JSON object with \"cmd\"");
    } else if (get_str(req, "cmd", &cmd) || !cmd) {
        ans = fail_answer("\"cmd\" is missing (observe, status, member_online, official, flush, "
                          "dns_hit)");
    } else if (strcmp(cmd, "observe") == 0) {
        ans = cmd_observe(c, req);
    } else if (strcmp(cmd, "status") == 0) {
        ans = cmd_status(c);
    } else if (strcmp(cmd, "member_online") == 0) {
        ans = cmd_member_online(c, req);
    } else if (strcmp(cmd, "official") == 0) {
        ans = cmd_official(c, req);
    } else if (strcmp(cmd, "flush") == 0) {
        ans = cmd_flush(c, req);
    } else if (strcmp(cmd, "dns_hit") == 0) {
        ans = cmd_dns_hit(c, req);
    } else if (strcmp(cmd, "usage_flush") == 0) {
        ans = cmd_usage_flush(c, req);
    } else if (strcmp(cmd, "reload") == 0) {
        ans = cmd_reload(c);
    } else {
        ans = fail_answer("unknown cmd \"%.64s\" (observe, status, member_online, official, "
                          "flush, dns_hit, usage_flush, reload)",
                          cmd);
    }
    json_decref(req);
    if (!ans)
        return NULL;
    if (!json_is_true(json_object_get(ans, "ok")))
        c->errors++;
    char *out = json_dumps(ans, JSON_COMPACT);
    json_decref(ans);
    return out;
}

/* ---- socket ------------------------------------------------------------- */

/* Writes all of buf; false when the client is gone or too slow (SO_SNDTIMEO). */
static bool send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static bool answer(int fd, char *json)
{
    static const char oom[] = "{\"ok\":false,\"error\":\"out of memory\"}\n";
    if (!json)
        return send_all(fd, oom, sizeof oom - 1);
    size_t n = strlen(json);
    json[n] = '\n'; /* replaces the NUL: the buffer is sent by length */
    bool ok = send_all(fd, json, n + 1);
    free(json);
    return ok;
}

static void client_close(ibp_control *c, size_t i)
{
    close(c->clients[i].fd);
    free(c->clients[i].buf);
    c->clients[i] = c->clients[--c->nclients];
}

static bool answer_too_long(ibp_control *c, int fd)
{
    char *msg = NULL;
    c->requests++;
    c->errors++;
    json_t *a = fail_answer("request line longer than %zu bytes: skipped", c->opts.max_line_bytes);
    if (a) {
        msg = json_dumps(a, JSON_COMPACT);
        json_decref(a);
    }
    return answer(fd, msg);
}

/* Reads what is there and answers every complete line; false to drop the client. */
static bool client_read(ibp_control *c, client *cl)
{
    if (cl->cap - cl->len < READ_CHUNK) {
        size_t cap = cl->len + READ_CHUNK;
        char *b = realloc(cl->buf, cap);
        if (!b)
            return false;
        cl->buf = b;
        cl->cap = cap;
    }
    ssize_t n = recv(cl->fd, cl->buf + cl->len, cl->cap - cl->len, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n <= 0)
        return false;
    size_t start = cl->len;
    cl->len += (size_t)n;
    size_t pos = 0; /* start of the current line */
    for (size_t i = start; i < cl->len; i++) {
        if (cl->buf[i] != '\n')
            continue;
        if (cl->discarding) {
            cl->discarding = false;
        } else {
            size_t l = i - pos;
            if (l > 0 && cl->buf[pos + l - 1] == '\r')
                l--;
            if (l > c->opts.max_line_bytes) {
                if (!answer_too_long(c, cl->fd))
                    return false;
            } else if (l > 0 && !answer(cl->fd, ibp_control_execute(c, cl->buf + pos, l))) {
                return false;
            }
        }
        pos = i + 1;
    }
    memmove(cl->buf, cl->buf + pos, cl->len - pos);
    cl->len -= pos;
    if (cl->len > c->opts.max_line_bytes) {
        cl->len = 0;
        if (!cl->discarding) {
            cl->discarding = true;
            if (!answer_too_long(c, cl->fd))
                return false;
        }
    }
    /* Do not keep a large buffer for an idle client. */
    if (cl->len == 0 && cl->cap > 4 * READ_CHUNK) {
        free(cl->buf);
        cl->buf = NULL;
        cl->cap = 0;
    }
    return true;
}

static void accept_client(ibp_control *c)
{
    int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    struct ucred cred;
    socklen_t clen = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 ||
        (cred.uid != getuid() && cred.uid != 0)) {
        IBP_LOG(IBP_LOG_WARN, COMPONENT, "refused a client of another user uid=%ld",
                (long)cred.uid);
        close(fd);
        return;
    }
    if (c->nclients >= c->opts.max_clients) {
        static const char busy[] = "{\"ok\":false,\"error\":\"too many clients\"}\n";
        send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        close(fd);
        return;
    }
    struct timeval tv = {.tv_sec = (time_t)(c->opts.write_timeout_ms / 1000),
                         .tv_usec = (suseconds_t)(c->opts.write_timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    c->clients[c->nclients++] = (client){.fd = fd};
}

static void *control_main(void *arg)
{
    ibp_control *c = arg;
    struct pollfd *pfd = calloc(c->opts.max_clients + 2, sizeof *pfd);
    if (!pfd) {
        IBP_LOG(IBP_LOG_ERROR, COMPONENT, "out of memory: control socket not served");
        return NULL;
    }
    for (;;) {
        pfd[0] = (struct pollfd){.fd = c->wake[0], .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = c->listen_fd, .events = POLLIN};
        for (size_t i = 0; i < c->nclients; i++)
            pfd[2 + i] = (struct pollfd){.fd = c->clients[i].fd, .events = POLLIN};
        size_t n = c->nclients;
        if (poll(pfd, (nfds_t)(2 + n), -1) < 0) {
            if (errno == EINTR)
                continue;
            IBP_LOG(IBP_LOG_ERROR, COMPONENT, "poll failed error=%s", strerror(errno));
            break;
        }
        if (pfd[0].revents)
            break;
        /* Clients first (from the end: closing one moves the last into its slot). */
        for (size_t i = n; i-- > 0;) {
            if (!pfd[2 + i].revents)
                continue;
            if (!client_read(c, &c->clients[i]))
                client_close(c, i);
        }
        if (pfd[1].revents & POLLIN)
            accept_client(c);
    }
    free(pfd);
    return NULL;
}

/* Is something listening at path? */
static bool socket_alive(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool alive = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return alive;
}

/* Binds a listening socket at c->path with mode 0600 (see the header). */
static ibp_status make_socket(ibp_control *c, ibp_err *err)
{
    struct stat st;
    if (lstat(c->path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return ibp_err_set(err, IBP_E_EXISTS, "control socket %s exists and is not a socket",
                               c->path);
        if (socket_alive(c->path))
            return ibp_err_set(err, IBP_E_EXISTS,
                               "control socket %s is in use (is another ibp-node running with "
                               "this work dir?)",
                               c->path);
        unlink(c->path); /* stale, left by a crash */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ibp_err_set(err, IBP_E_IO, "control socket: socket: %s", strerror(errno));

    /* Bind in a private directory (mode 0700), set 0600, listen, then rename
     * into place: the socket is never reachable with a wider mode, and never
     * refuses a client that finds it at its path. */
    char dir[sizeof c->path], tmp[sizeof c->path];
    const char *slash = strrchr(c->path, '/');
    int dn = slash ? (int)(slash - c->path) : 1;
    int n1 = snprintf(dir, sizeof dir, "%.*s/.control.XXXXXX", dn, slash ? c->path : ".");
    bool private_dir = n1 > 0 && (size_t)n1 < sizeof dir && mkdtemp(dir) != NULL;
    int n2 = private_dir ? snprintf(tmp, sizeof tmp, "%s/s", dir) : -1;
    if (private_dir && (n2 < 0 || (size_t)n2 >= sizeof tmp)) {
        rmdir(dir);
        private_dir = false;
    }
    const char *bind_path = private_dir ? tmp : c->path;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, bind_path, strlen(bind_path) + 1);
    ibp_status rc = IBP_OK;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        rc = ibp_err_set(err, IBP_E_IO, "control socket %s: bind: %s", bind_path, strerror(errno));
    } else if (chmod(bind_path, 0600) != 0) {
        rc = ibp_err_set(err, IBP_E_IO, "control socket %s: chmod: %s", bind_path, strerror(errno));
    } else if (listen(fd, 16) != 0) {
        rc =
            ibp_err_set(err, IBP_E_IO, "control socket %s: listen: %s", bind_path, strerror(errno));
    } else if (private_dir && rename(tmp, c->path) != 0) {
        rc = ibp_err_set(err, IBP_E_IO, "control socket %s: rename: %s", c->path, strerror(errno));
    }
    if (private_dir) {
        unlink(tmp); /* gone after a successful rename */
        rmdir(dir);
    }
    if (rc != IBP_OK) {
        close(fd);
        return rc;
    }
    c->listen_fd = fd;
    return IBP_OK;
}

ibp_status ibp_control_start(const ibp_control_opts *opts, ibp_control **out, ibp_err *err)
{
    if (!opts || !out || !opts->socket_path || !opts->node_id || !opts->store)
        return ibp_err_set(err, IBP_E_INVAL,
                           "control socket: socket_path, node_id and store are required");
    ibp_control *c = calloc(1, sizeof *c);
    if (!c)
        return ibp_err_set(err, IBP_E_NOMEM, "control socket: out of memory");
    c->listen_fd = -1;
    c->wake[0] = c->wake[1] = -1;
    c->opts = *opts;
    if (!c->opts.max_line_bytes)
        c->opts.max_line_bytes = 1024 * 1024;
    if (!c->opts.max_clients)
        c->opts.max_clients = 16;
    if (c->opts.write_timeout_ms <= 0)
        c->opts.write_timeout_ms = 2000;
    if (c->opts.flush_timeout_ms < 0)
        c->opts.flush_timeout_ms = 5000;
    ibp_status st = IBP_OK;
    size_t plen = strlen(opts->socket_path);
    if (plen == 0 || plen >= sizeof c->path) {
        st = ibp_err_set(err, IBP_E_INVAL,
                         "control socket path %s is %zu bytes; a unix socket path has at most "
                         "%zu (use a shorter node.work_dir)",
                         opts->socket_path, plen, sizeof c->path - 1);
        goto fail;
    }
    memcpy(c->path, opts->socket_path, plen + 1);
    c->opts.socket_path = c->path;
    if (strlen(opts->node_id) > IBP_NODE_ID_MAX) {
        st = ibp_err_set(err, IBP_E_INVAL, "control socket: node id too long");
        goto fail;
    }
    memcpy(c->node, opts->node_id, strlen(opts->node_id) + 1);
    c->opts.node_id = c->node;
    if (!(c->clients = calloc(c->opts.max_clients, sizeof *c->clients))) {
        st = ibp_err_set(err, IBP_E_NOMEM, "control socket: out of memory");
        goto fail;
    }
    if (pipe2(c->wake, O_CLOEXEC) != 0) {
        st = ibp_err_set(err, IBP_E_IO, "control socket: pipe: %s", strerror(errno));
        goto fail;
    }
    if ((st = make_socket(c, err)) != IBP_OK)
        goto fail;
    if (pthread_create(&c->thread, NULL, control_main, c) != 0) {
        st = ibp_err_set(err, IBP_E_NOMEM, "control socket: cannot start its thread");
        unlink(c->path);
        goto fail;
    }
    IBP_LOG(IBP_LOG_INFO, COMPONENT, "listening path=%s", c->path);
    *out = c;
    return IBP_OK;
fail:
    if (c->listen_fd >= 0)
        close(c->listen_fd);
    if (c->wake[0] >= 0) {
        close(c->wake[0]);
        close(c->wake[1]);
    }
    free(c->clients);
    free(c);
    return st;
}

void ibp_control_stop(ibp_control *c)
{
    if (!c)
        return;
    char b = 1;
    while (write(c->wake[1], &b, 1) < 0 && errno == EINTR) {
    }
    pthread_join(c->thread, NULL);
    while (c->nclients > 0)
        client_close(c, c->nclients - 1);
    close(c->listen_fd);
    close(c->wake[0]);
    close(c->wake[1]);
    unlink(c->path);
    IBP_LOG(IBP_LOG_INFO, COMPONENT, "stopped requests=%" PRIu64 " errors=%" PRIu64, c->requests,
            c->errors);
    free(c->clients);
    free(c);
}
