/* The bus: NATS connection, streams, signed publishing; see ibp/bus.h. */
#include "ibp/bus.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ibp/atomic_file.h"
#include "ibp/clock.h"
#include "ibp/log.h"
#include "ibp/nkey.h"
#include "ibp/subject.h"

#define NS_PER_MS INT64_C(1000000)
#define DAY_MS INT64_C(86400000)

/* The streams ibp_bus_stream_opts_init names: the process's roles' (see bus.h). */
static _Atomic unsigned process_streams = IBP_BUS_STREAMS_ALL;

unsigned ibp_bus_streams_for_roles(unsigned roles)
{
    unsigned s = 0;
    if (roles & IBP_ROLE_MONITOR)
        s |= IBP_BUS_STREAM_LOCAL | IBP_BUS_STREAM_OFFICIAL | IBP_BUS_STREAM_COSIGN;
    if (roles & IBP_ROLE_CONSENSUS)
        s |= IBP_BUS_STREAM_LOCAL | IBP_BUS_STREAM_OFFICIAL | IBP_BUS_STREAM_STATUS |
             IBP_BUS_STREAM_EVENTS | IBP_BUS_STREAM_CHECKPOINT | IBP_BUS_STREAM_COSIGN;
    if (roles & IBP_ROLE_DNS)
        s |= IBP_BUS_STREAM_OFFICIAL | IBP_BUS_STREAM_HITS | IBP_BUS_STREAM_COSIGN;
    if (roles & IBP_ROLE_PERSIST)
        s |= IBP_BUS_STREAM_HITS | IBP_BUS_STREAM_EVENTS;
    if (roles & IBP_ROLE_ADMIN)
        s |= IBP_BUS_STREAMS_ALL;
    return s;
}

void ibp_bus_streams_set_default(unsigned streams)
{
    process_streams = streams & IBP_BUS_STREAMS_ALL;
}

void ibp_bus_stream_opts_init(ibp_bus_stream_opts *opts)
{
    opts->streams = process_streams;
    opts->replicas = 1;
    opts->local_max_age_ms = 7 * DAY_MS;
    opts->events_max_age_ms = 400 * DAY_MS;
    opts->hits_max_age_ms = 400 * DAY_MS;
    opts->official_keep = IBP_BUS_OFFICIAL_KEEP_DEFAULT;
    opts->official_memory = true;
    opts->official_max_bytes = IBP_BUS_OFFICIAL_MAX_BYTES_DEFAULT;
    opts->duplicate_window_ms = 120000;
    opts->update_existing = false;
}

static ibp_status nats_error(ibp_err *err, natsStatus s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static ibp_status nats_error(ibp_err *err, natsStatus s, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *last = nats_GetLastError(NULL);
    return ibp_err_set(err, IBP_E_NATS, "nats: %s: %s%s%s", what, natsStatus_GetText(s),
                       last && *last ? ": " : "", last ? last : "");
}

/* Reads a one-line secret (password) from path, without the line end. */
static ibp_status read_secret(const char *path, char **out, ibp_err *err)
{
    size_t len = 0;
    ibp_status st = ibp_file_read_all(path, 4096, out, &len, err);
    if (st != IBP_OK)
        return ibp_err_set(err, IBP_E_IO, "nats password file %s: %s", path, ibp_strerror(st));
    while (len > 0 && ((*out)[len - 1] == '\n' || (*out)[len - 1] == '\r'))
        (*out)[--len] = '\0';
    return IBP_OK;
}

/* ---- refusals by the server ------------------------------------------------
 *
 * nats-server answers a publish or subscribe that the identity's permissions
 * do not allow with "-ERR 'Permissions Violation for Publish to "<subject>"'"
 * and keeps the connection: nats.c records it as the connection's last error
 * and calls the error handler; the publish itself (a JetStream publish or API
 * request) just never gets an answer and times out. So the handler logs one
 * clear line per refused subject (at most once a minute each: a daemon
 * retries), and remembers the refusal so that a timed-out JetStream call can
 * say "refused" instead of "timeout" (refused_since).
 */

#define REFUSALS 32
#define REFUSAL_LOG_EVERY_MS 60000

struct refusal {
    char subject[256];
    char perm[16]; /* "publish", "subscribe" */
    int64_t last_ms;
    int64_t logged_ms;
    uint64_t count;
    uint64_t unlogged;
};

static pthread_mutex_t refusals_lock = PTHREAD_MUTEX_INITIALIZER;
static struct refusal refusals[REFUSALS];
static unsigned refusals_next;

/*
 * Parses nats.c's "Permissions Violation for Publish to "x"" (quotes may be
 * gone, nats_NormalizeErr strips some) into perm and subject. False when
 * text is not one.
 */
static bool parse_violation(const char *text, char *perm, size_t perm_cap, char *subject,
                            size_t subject_cap)
{
    static const struct {
        const char *needle, *perm;
    } kinds[] = {{"for publish to ", "publish"}, {"for subscription to ", "subscribe"}};
    if (!text || !strstr(text, "ermissions Violation"))
        return false;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        const char *p = NULL;
        size_t n = strlen(kinds[k].needle);
        for (const char *q = text; *q && !p; q++)
            if (strncasecmp(q, kinds[k].needle, n) == 0)
                p = q + n;
        if (!p)
            continue;
        while (*p == '"' || *p == '\'' || *p == ' ')
            p++;
        size_t len = strcspn(p, "\"' \t\r\n");
        if (len == 0 || len >= subject_cap)
            return false;
        memcpy(subject, p, len);
        subject[len] = '\0';
        snprintf(perm, perm_cap, "%s", kinds[k].perm);
        return true;
    }
    return false;
}

static void note_refusal(const char *conn_name, const char *perm, const char *subject)
{
    int64_t now = ibp_clock_mono_ms();
    bool log = false;
    uint64_t unlogged = 0, count = 0;
    pthread_mutex_lock(&refusals_lock);
    struct refusal *r = NULL;
    for (unsigned i = 0; i < REFUSALS && !r; i++)
        if (refusals[i].count && strcmp(refusals[i].subject, subject) == 0 &&
            strcmp(refusals[i].perm, perm) == 0)
            r = &refusals[i];
    if (!r) {
        r = &refusals[refusals_next++ % REFUSALS];
        memset(r, 0, sizeof *r);
        snprintf(r->subject, sizeof r->subject, "%s", subject);
        snprintf(r->perm, sizeof r->perm, "%s", perm);
    }
    r->count++;
    r->last_ms = now;
    if (r->logged_ms == 0 || now - r->logged_ms >= REFUSAL_LOG_EVERY_MS) {
        log = true;
        unlogged = r->unlogged;
        count = r->count;
        r->unlogged = 0;
        r->logged_ms = now;
    } else {
        r->unlogged++;
    }
    pthread_mutex_unlock(&refusals_lock);
    if (log)
        IBP_LOG(IBP_LOG_ERROR, "bus",
                "NATS refused a %s: this identity may not %s on %s (nats-server permissions; "
                "see `ibpctl nats-auth`) name=%s permission=%s subject=%s refusals=%" PRIu64
                " not_logged=%" PRIu64,
                perm, perm, subject, conn_name ? conn_name : "?", perm, subject, count, unlogged);
}

/* True when the server refused perm on subject at or after since_ms (monotonic). */
static bool refused_since(const char *perm, const char *subject, int64_t since_ms)
{
    bool found = false;
    pthread_mutex_lock(&refusals_lock);
    for (unsigned i = 0; i < REFUSALS && !found; i++)
        found = refusals[i].count && refusals[i].last_ms >= since_ms &&
                strcmp(refusals[i].perm, perm) == 0 && strcmp(refusals[i].subject, subject) == 0;
    pthread_mutex_unlock(&refusals_lock);
    return found;
}

/* Other asynchronous errors (slow consumer...): one line per kind per minute. */
static void note_async_error(const char *conn_name, natsStatus err, const char *text)
{
    static _Atomic int64_t last_ms[4];
    unsigned slot = err == NATS_SLOW_CONSUMER ? 0 : err == NATS_MISMATCH ? 1 : 2;
    int64_t now = ibp_clock_mono_ms();
    int64_t prev = last_ms[slot];
    if (prev && now - prev < REFUSAL_LOG_EVERY_MS)
        return;
    last_ms[slot] = now;
    IBP_LOG(IBP_LOG_WARN, "bus", "NATS error name=%s status=%s error=%s",
            conn_name ? conn_name : "?", natsStatus_GetText(err), text && *text ? text : "-");
}

/* nats.c's error handler (its own thread): logs and records, nothing more. */
static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)sub;
    const char *text = NULL;
    natsStatus last = natsConnection_GetLastError(nc, &text);
    char perm[16], subject[256];
    if ((err == NATS_NOT_PERMITTED || last == NATS_NOT_PERMITTED) &&
        parse_violation(text, perm, sizeof perm, subject, sizeof subject))
        note_refusal((const char *)closure, perm, subject);
    else
        note_async_error((const char *)closure, err, text);
}

bool ibp_bus_refused(const char *subject, int64_t since_ms)
{
    return subject && refused_since("publish", subject, since_ms);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    if (natsConnection_IsClosed(nc))
        return; /* closed by its owner: not news */
    IBP_LOG(IBP_LOG_WARN, "bus", "disconnected from NATS name=%s", (const char *)closure);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    IBP_LOG(IBP_LOG_INFO, "bus", "reconnected to NATS name=%s url=%s", (const char *)closure, url);
}

static bool set(const char *s)
{
    return s && *s;
}

/*
 * nats.c's texts for a refused login or TLS handshake ("Authentication
 * Violation", "SSL Error", or "Expected 'PONG'" when a TLS 1.3 server drops a
 * client without a certificate after the handshake) do not say which setting
 * to look at; this says it, worded as what most likely happened.
 */
static const char *connect_hint(const ibp_bus_conn_opts *cfg, natsStatus s)
{
    bool tls = set(cfg->tls_ca_file) || set(cfg->tls_cert_file);
    switch (s) {
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:
        return ": authorization failed: the server refused the credentials (nats.user and "
               "nats.password_file, nats.creds_file or nats.nkey_seed_file)";
    case NATS_SSL_ERROR:
        return ": TLS handshake failed: is the server's certificate signed by a CA in "
               "nats.tls_ca_file, and valid for its address?";
    case NATS_PROTOCOL_ERROR:
    case NATS_CONNECTION_CLOSED:
    case NATS_IO_ERROR:
        if (!tls)
            return "";
        return set(cfg->tls_cert_file)
                   ? ": the server closed the TLS connection: it may not accept the client "
                     "certificate nats.tls_cert_file"
                   : ": the server closed the TLS connection: it may require a client "
                     "certificate (nats.tls_cert_file and nats.tls_key_file)";
    default:
        return "";
    }
}

ibp_status ibp_bus_connect(const ibp_bus_conn_opts *cfg, natsConnection **out, ibp_err *err)
{
    const char *name = cfg->name;
    bool retry_at_start = cfg->retry_at_start;
    natsOptions *o = NULL;
    char *password = NULL;
    natsStatus s;
    ibp_status st = IBP_OK;
    if ((s = natsOptions_Create(&o)) != NATS_OK)
        return nats_error(err, s, "options");
    s = natsOptions_SetServers(o, (const char **)cfg->servers, (int)cfg->server_count);
    if (s == NATS_OK && name)
        s = natsOptions_SetName(o, name);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 250);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(o, 16 * 1024 * 1024);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, (void *)name);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_reconnected, (void *)name);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_async_error, (void *)name);
    if (s == NATS_OK && retry_at_start)
        s = natsOptions_SetRetryOnFailedConnect(o, true, NULL, NULL);
    if (s != NATS_OK) {
        st = nats_error(err, s, "options");
        goto out;
    }
    if (cfg->user && *cfg->user) {
        if (cfg->password_file && *cfg->password_file &&
            (st = read_secret(cfg->password_file, &password, err)) != IBP_OK)
            goto out;
        if ((s = natsOptions_SetUserInfo(o, cfg->user, password ? password : "")) != NATS_OK) {
            st = nats_error(err, s, "user credentials");
            goto out;
        }
    }
    if (cfg->creds_file && *cfg->creds_file &&
        (s = natsOptions_SetUserCredentialsFromFiles(o, cfg->creds_file, NULL)) != NATS_OK) {
        st = nats_error(err, s, "credentials file %s", cfg->creds_file);
        goto out;
    }
    if (cfg->nkey_seed_file && *cfg->nkey_seed_file) {
        /* nats.c signs the server's nonce from the seed file at each connect
         * but must be given the public key; derive it here, which also
         * refuses a seed file others can read before anything is sent. */
        char pub[IBP_NKEY_PUBLIC_SIZE];
        if ((st = ibp_nkey_load_user_public(cfg->nkey_seed_file, pub, err)) != IBP_OK) {
            ibp_err_wrap(err, "nats.nkey_seed_file");
            goto out;
        }
        if ((s = natsOptions_SetNKeyFromSeed(o, pub, cfg->nkey_seed_file)) != NATS_OK) {
            st = nats_error(err, s, "nkey seed file %s", cfg->nkey_seed_file);
            goto out;
        }
    }
    if (cfg->tls_ca_file && *cfg->tls_ca_file) {
        if ((s = natsOptions_SetSecure(o, true)) != NATS_OK ||
            (s = natsOptions_LoadCATrustedCertificates(o, cfg->tls_ca_file)) != NATS_OK) {
            st = nats_error(err, s, "TLS CA file %s", cfg->tls_ca_file);
            goto out;
        }
    }
    if (cfg->tls_cert_file && *cfg->tls_cert_file) {
        if ((s = natsOptions_SetSecure(o, true)) != NATS_OK ||
            (s = natsOptions_LoadCertificatesChain(o, cfg->tls_cert_file, cfg->tls_key_file)) !=
                NATS_OK) {
            st = nats_error(err, s, "TLS certificate %s", cfg->tls_cert_file);
            goto out;
        }
    }
    s = natsConnection_Connect(out, o);
    if (s == NATS_NOT_YET_CONNECTED && retry_at_start)
        s = NATS_OK; /* connects in the background */
    if (s != NATS_OK)
        st = nats_error(err, s, "connect to %s%s%s",
                        cfg->server_count ? cfg->servers[0] : "?",
                        cfg->server_count > 1 ? " (and others)" : "", connect_hint(cfg, s));
out:
    if (password) {
        memset(password, 0, strlen(password));
        free(password);
    }
    natsOptions_Destroy(o);
    return st;
}

ibp_status ibp_bus_connect_url(const char *url, const char *name, natsConnection **out,
                               ibp_err *err)
{
    const char *servers[1] = {url};
    ibp_bus_conn_opts opts = {.servers = servers, .server_count = 1, .name = name};
    return ibp_bus_connect(&opts, out, err);
}

struct stream_spec {
    unsigned bit;
    const char *name;
    const char *subject;
    int64_t max_age_ms;           /* 0: no age limit */
    int64_t max_msgs_per_subject; /* 0: no limit */
    bool memory;
    int64_t max_bytes; /* 0: no limit; -1: no limit at creation, an existing one left alone */
    const char *memory_setting; /* the setting that chooses the storage, or NULL */
};

/* A JetStream API call failed: say "refused" when the server refused its subject. */
static ibp_status js_api_error(ibp_err *err, natsStatus s, jsErrCode jerr, const char *api,
                               const char *stream, int64_t since_ms, const char *what)
{
    char subject[200];
    snprintf(subject, sizeof subject, "$JS.API.%s.%s", api, stream);
    if (refused_since("publish", subject, since_ms))
        return ibp_err_set(err, IBP_E_NATS,
                           "nats: %s stream %s: refused by the server: this identity may not "
                           "publish to %s (nats-server permissions; see `ibpctl nats-auth`)",
                           what, stream, subject);
    return nats_error(err, s, "%s stream %s (jetstream error %d)", what, stream, (int)jerr);
}

/*
 * Checks the stream first and creates it only when it is missing: a daemon
 * whose identity may read a stream but not create it (streams created by the
 * operator beforehand) never asks for what it may not do. Two daemons that
 * both find it missing both create it; JetStream accepts the second identical
 * create, and a different one fails as "exists", which is fine here too.
 */
/* "7d", "36h", "90s" or "none": a stream limit in a log line. */
static const char *age_text(int64_t ns, char *buf, size_t cap)
{
    int64_t s = ns / (NS_PER_MS * 1000);
    if (ns <= 0)
        snprintf(buf, cap, "none");
    else if (s % 86400 == 0)
        snprintf(buf, cap, "%" PRId64 "d", s / 86400);
    else if (s % 3600 == 0)
        snprintf(buf, cap, "%" PRId64 "h", s / 3600);
    else
        snprintf(buf, cap, "%" PRId64 "s", s);
    return buf;
}

/*
 * Brings an existing stream to the spec's limits (age, messages per subject,
 * replicas), logging each change; a storage type that differs cannot be
 * changed in place and is only reported, as is an update the server refuses
 * (the stream keeps working as it is).
 */
static ibp_status update_stream(jsCtx *js, const struct stream_spec *sp, const jsStreamInfo *si,
                                const ibp_bus_stream_opts *o)
{
    jsStreamConfig cfg = *si->Config;
    int64_t want_age = sp->max_age_ms * NS_PER_MS;
    int64_t want_per_subject = sp->max_msgs_per_subject > 0 ? sp->max_msgs_per_subject : -1;
    int64_t have_per_subject = cfg.MaxMsgsPerSubject > 0 ? cfg.MaxMsgsPerSubject : -1;
    int want_replicas = o->replicas > 0 ? o->replicas : 1;
    int64_t want_bytes = sp->max_bytes > 0 ? sp->max_bytes : -1;
    int64_t have_bytes = cfg.MaxBytes > 0 ? cfg.MaxBytes : -1;
    bool changed = false;
    char a[32], b[32];
    if (cfg.MaxAge != want_age) {
        IBP_LOG(IBP_LOG_INFO, "bus", "stream %s: max age %s -> %s", sp->name,
                age_text(cfg.MaxAge, a, sizeof a), age_text(want_age, b, sizeof b));
        cfg.MaxAge = want_age;
        changed = true;
    }
    if (have_per_subject != want_per_subject) {
        IBP_LOG(IBP_LOG_INFO, "bus", "stream %s: messages kept per subject %" PRId64 " -> %" PRId64
                " (-1: no limit)", sp->name, have_per_subject, want_per_subject);
        cfg.MaxMsgsPerSubject = want_per_subject;
        changed = true;
    }
    if (sp->max_bytes >= 0 && have_bytes != want_bytes) {
        IBP_LOG(IBP_LOG_INFO, "bus", "stream %s: max bytes %" PRId64 " -> %" PRId64
                " (-1: no limit)", sp->name, have_bytes, want_bytes);
        cfg.MaxBytes = want_bytes;
        changed = true;
    }
    if (cfg.Replicas != want_replicas) {
        IBP_LOG(IBP_LOG_INFO, "bus", "stream %s: replicas %" PRId64 " -> %d", sp->name,
                (int64_t)cfg.Replicas, want_replicas);
        cfg.Replicas = want_replicas;
        changed = true;
    }
    jsStorageType want_storage = sp->memory ? js_MemoryStorage : js_FileStorage;
    if (cfg.Storage != want_storage) {
        const char *have_s = cfg.Storage == js_MemoryStorage ? "memory" : "file";
        const char *want_s = want_storage == js_MemoryStorage ? "memory" : "file";
        const char *setting = sp->memory_setting ? sp->memory_setting : "the settings";
        IBP_LOG(IBP_LOG_WARN, "bus",
                "stream %s is on %s storage but %s=%s asks for %s storage: JetStream cannot "
                "change the storage of an existing stream, so it stays on %s. To switch, stop "
                "the consensus replicas, delete the stream as a NATS user allowed to (`nats "
                "stream rm %s`) and start them again: they create it on %s storage and publish "
                "their current epoch into it. To keep it as it is, set %s=%s. stream=%s "
                "storage=%s wanted=%s",
                sp->name, have_s, setting, sp->memory ? "true" : "false", want_s, have_s,
                sp->name, want_s, setting, cfg.Storage == js_MemoryStorage ? "true" : "false",
                sp->name, have_s, want_s);
    }
    if (!changed)
        return IBP_OK;
    jsStreamInfo *out = NULL;
    jsErrCode jerr = 0;
    int64_t t0 = ibp_clock_mono_ms();
    natsStatus s = js_UpdateStream(&out, js, &cfg, NULL, &jerr);
    jsStreamInfo_Destroy(out);
    if (s != NATS_OK) {
        /* The stream works as it is: say why the settings were not applied. */
        ibp_err why = {0};
        js_api_error(&why, s, jerr, "STREAM.UPDATE", sp->name, t0, "update");
        IBP_LOG(IBP_LOG_WARN, "bus", "stream %s keeps its limits: %s", sp->name, why.msg);
        return IBP_OK;
    }
    IBP_LOG(IBP_LOG_INFO, "bus", "stream %s updated", sp->name);
    return IBP_OK;
}

/*
 * Checks the stream first and creates it only when it is missing: a daemon
 * whose identity may read a stream but not create it (streams created by the
 * operator beforehand) never asks for what it may not do. Two daemons that
 * both find it missing both create it; JetStream accepts the second identical
 * create, and a different one fails as "exists", which is fine here too.
 * With o->update_existing an existing stream is brought to the limits.
 */
static ibp_status ensure_stream(jsCtx *js, const struct stream_spec *sp,
                                const ibp_bus_stream_opts *o, ibp_err *err)
{
    jsStreamConfig cfg;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    int64_t t0 = ibp_clock_mono_ms();
    natsStatus s = js_GetStreamInfo(&si, js, sp->name, NULL, &jerr);
    if (s == NATS_OK) {
        bool ours =
            si->Config->SubjectsLen == 1 && strcmp(si->Config->Subjects[0], sp->subject) == 0;
        ibp_status st = IBP_OK;
        if (!ours)
            IBP_LOG(IBP_LOG_WARN, "bus", "stream exists with other subjects name=%s expected=%s",
                    sp->name, sp->subject);
        else if (o->update_existing)
            st = update_stream(js, sp, si, o);
        jsStreamInfo_Destroy(si);
        return st;
    }
    if (!(s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr))
        return js_api_error(err, s, jerr, "STREAM.INFO", sp->name, t0, "check");

    const char *subjects[1] = {sp->subject};
    jsStreamConfig_Init(&cfg);
    cfg.Name = sp->name;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Retention = js_LimitsPolicy;
    cfg.Storage = sp->memory ? js_MemoryStorage : js_FileStorage;
    cfg.Replicas = o->replicas > 0 ? o->replicas : 1;
    cfg.MaxAge = sp->max_age_ms * NS_PER_MS;
    cfg.MaxMsgsPerSubject = sp->max_msgs_per_subject > 0 ? sp->max_msgs_per_subject : -1;
    cfg.MaxBytes = sp->max_bytes > 0 ? sp->max_bytes : -1;
    cfg.Duplicates = o->duplicate_window_ms * NS_PER_MS;
    cfg.MaxMsgSize = (int32_t)IBP_MESSAGE_MAX_DEFAULT;
    cfg.AllowDirect = true;
    t0 = ibp_clock_mono_ms();
    jerr = 0;
    s = js_AddStream(&si, js, &cfg, NULL, &jerr);
    if (s == NATS_OK) {
        char a[32];
        IBP_LOG(IBP_LOG_INFO, "bus",
                "created stream name=%s subjects=%s replicas=%d storage=%s max_age=%s "
                "per_subject=%" PRId64 " max_bytes=%" PRId64,
                sp->name, sp->subject, (int)cfg.Replicas, sp->memory ? "memory" : "file",
                age_text(cfg.MaxAge, a, sizeof a), (int64_t)cfg.MaxMsgsPerSubject,
                (int64_t)cfg.MaxBytes);
        jsStreamInfo_Destroy(si);
        return IBP_OK;
    }
    if (jerr == JSStreamNameExistErr)
        return IBP_OK; /* created meanwhile by another daemon */
    if (sp->memory && (jerr == JSMemoryResourcesExceededErr ||
                       jerr == JSStorageResourcesExceededErr ||
                       jerr == JSInsufficientResourcesErr ||
                       jerr == JSAccountResourcesExceededErr))
        /* A memory stream reserves its byte limit of the server's (or the
         * account's) JetStream memory when it is created. */
        return ibp_err_set(err, IBP_E_NATS,
                           "nats: create stream %s on memory storage with max_bytes %" PRId64
                           ": the server has not that much JetStream memory left (jetstream "
                           "error %d: %s): raise max_memory_store in the jetstream block of "
                           "nats-server (or the account's limit), lower nats.official_max_bytes,"
                           " or set %s=false",
                           sp->name, (int64_t)cfg.MaxBytes, (int)jerr,
                           nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "",
                           sp->memory_setting ? sp->memory_setting : "its storage setting");
    return js_api_error(err, s, jerr, "STREAM.CREATE", sp->name, t0, "create");
}

ibp_status ibp_bus_ensure_streams(jsCtx *js, const ibp_bus_stream_opts *opts, ibp_err *err)
{
    ibp_bus_stream_opts o;
    if (opts)
        o = *opts;
    else
        ibp_bus_stream_opts_init(&o);
    const struct stream_spec specs[] = {
        {IBP_BUS_STREAM_LOCAL, IBP_STREAM_LOCAL, "ibp.local.>", o.local_max_age_ms, 0, false, -1,
         NULL},
        {IBP_BUS_STREAM_OFFICIAL, IBP_STREAM_OFFICIAL, IBP_SUBJECT_OFFICIAL_SNAPSHOT, 0,
         o.official_keep > 0 ? o.official_keep : IBP_BUS_OFFICIAL_KEEP_DEFAULT, o.official_memory,
         o.official_max_bytes > 0 ? o.official_max_bytes : 0, "nats.official_memory"},
        {IBP_BUS_STREAM_STATUS, IBP_STREAM_STATUS, "ibp.status.>", 0, 1, false, -1, NULL},
        {IBP_BUS_STREAM_EVENTS, IBP_STREAM_EVENTS, "ibp.events.>", o.events_max_age_ms, 0, false,
         -1, NULL},
        {IBP_BUS_STREAM_HITS, IBP_STREAM_HITS, "ibp.hits.>", o.hits_max_age_ms, 0, false, -1,
         NULL},
        /* A replica's latest checkpoint, however old: a replica added after a
         * quiet month still finds one. */
        {IBP_BUS_STREAM_CHECKPOINT, IBP_STREAM_CHECKPOINT, IBP_SUBJECT_CHECKPOINT_ALL, 0, 1,
         false, -1, NULL},
        /* Each replica's statements of as many epochs as OFFICIAL keeps
         * snapshots, on OFFICIAL's storage: the certificate of any snapshot
         * still there. A few hundred bytes each: no byte limit. */
        {IBP_BUS_STREAM_COSIGN, IBP_STREAM_COSIGN, IBP_SUBJECT_COSIGN_ALL, 0,
         o.official_keep > 0 ? o.official_keep : IBP_BUS_OFFICIAL_KEEP_DEFAULT, o.official_memory,
         -1, "nats.official_memory"},
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        if (!(o.streams & specs[i].bit))
            continue;
        ibp_status st = ensure_stream(js, &specs[i], &o, err);
        if (st != IBP_OK)
            return st;
    }
    return IBP_OK;
}

ibp_status ibp_bus_publish_envelope(jsCtx *js, const char *subject, ibp_payload_type type,
                                    const char *signer, uint64_t seq, const uint8_t *data,
                                    size_t len, const char *msg_id,
                                    uint64_t expect_last_subject_seq, uint64_t *stream_seq,
                                    bool *duplicate, ibp_err *err)
{
    natsMsg *msg = NULL;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    char id[IBP_NODE_ID_MAX + 32];
    const char *tname = ibp_payload_type_name(type);
    if (!tname)
        return ibp_err_set(err, IBP_E_INVAL, "publish: unknown payload type %d", (int)type);
    if (!msg_id) {
        snprintf(id, sizeof id, "%s-%" PRIu64, signer, seq);
        msg_id = id;
    }
    natsStatus s = natsMsg_Create(&msg, subject, NULL, (const char *)data, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, IBP_HDR_TYPE, tname);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, IBP_HDR_SIGNER, signer);
    if (s != NATS_OK) {
        natsMsg_Destroy(msg);
        return nats_error(err, s, "publish %s to %s: build message", tname, subject);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    if (expect_last_subject_seq == UINT64_MAX)
        po.ExpectNoMessage = true;
    else
        po.ExpectLastSubjectSeq = expect_last_subject_seq;
    int64_t t0 = ibp_clock_mono_ms();
    s = js_PublishMsg(&pa, js, msg, &po, &jerr);
    natsMsg_Destroy(msg);
    if (s != NATS_OK) {
        /* 10071: wrong last sequence for the subject. */
        if (jerr == JSStreamWrongLastSequenceErr)
            return ibp_err_set(err, IBP_E_EXISTS,
                               "publish %s to %s: another publisher was first (msg id %s)", tname,
                               subject, msg_id);
        if (refused_since("publish", subject, t0))
            return ibp_err_set(err, IBP_E_NATS,
                               "nats: publish %s to %s: refused by the server: this identity may "
                               "not publish to %s (nats-server permissions; see `ibpctl "
                               "nats-auth`)",
                               tname, subject, subject);
        return nats_error(err, s, "publish %s to %s (jetstream error %d)", tname, subject,
                          (int)jerr);
    }
    if (stream_seq)
        *stream_seq = pa->Sequence;
    if (duplicate)
        *duplicate = pa->Duplicate;
    jsPubAck_Destroy(pa);
    return IBP_OK;
}
