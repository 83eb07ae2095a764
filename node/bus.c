/* The bus: NATS connection, streams, signed publishing; see ibp/bus.h. */
#include "ibp/bus.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/atomic_file.h"
#include "ibp/log.h"
#include "ibp/nkey.h"
#include "ibp/subject.h"

#define NS_PER_MS INT64_C(1000000)
#define DAY_MS INT64_C(86400000)

void ibp_bus_stream_opts_init(ibp_bus_stream_opts *opts)
{
    opts->replicas = 1;
    opts->local_max_age_ms = 7 * DAY_MS;
    opts->official_max_age_ms = 7 * DAY_MS;
    opts->history_max_age_ms = 400 * DAY_MS;
    opts->duplicate_window_ms = 120000;
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

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
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
static const char *connect_hint(const ibp_config_nats *cfg, natsStatus s)
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

ibp_status ibp_bus_connect(const ibp_config_nats *cfg, const char *name, bool retry_at_start,
                           natsConnection **out, ibp_err *err)
{
    natsOptions *o = NULL;
    char *password = NULL;
    natsStatus s;
    ibp_status st = IBP_OK;
    if ((s = natsOptions_Create(&o)) != NATS_OK)
        return nats_error(err, s, "options");
    s = natsOptions_SetServers(o, (const char **)cfg->servers.items, (int)cfg->servers.count);
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
                        cfg->servers.count ? cfg->servers.items[0] : "?",
                        cfg->servers.count > 1 ? " (and others)" : "", connect_hint(cfg, s));
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
    char *servers[1] = {(char *)url};
    ibp_config_nats cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.servers.items = servers;
    cfg.servers.count = 1;
    return ibp_bus_connect(&cfg, name, false, out, err);
}

struct stream_spec {
    const char *name;
    const char *subject;
    int64_t max_age_ms;
    int64_t max_msgs_per_subject;
};

static ibp_status ensure_stream(jsCtx *js, const struct stream_spec *sp,
                                const ibp_bus_stream_opts *o, ibp_err *err)
{
    jsStreamConfig cfg;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    const char *subjects[1] = {sp->subject};
    jsStreamConfig_Init(&cfg);
    cfg.Name = sp->name;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Retention = js_LimitsPolicy;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = o->replicas > 0 ? o->replicas : 1;
    cfg.MaxAge = sp->max_age_ms * NS_PER_MS;
    cfg.MaxMsgsPerSubject = sp->max_msgs_per_subject;
    cfg.Duplicates = o->duplicate_window_ms * NS_PER_MS;
    cfg.MaxMsgSize = (int32_t)IBP_MESSAGE_MAX_DEFAULT;
    cfg.AllowDirect = true;
    natsStatus s = js_AddStream(&si, js, &cfg, NULL, &jerr);
    if (s == NATS_OK) {
        IBP_LOG(IBP_LOG_INFO, "bus", "created stream name=%s subjects=%s replicas=%d", sp->name,
                sp->subject, (int)cfg.Replicas);
        jsStreamInfo_Destroy(si);
        return IBP_OK;
    }
    if (jerr != JSStreamNameExistErr)
        return nats_error(err, s, "create stream %s (jetstream error %d)", sp->name, (int)jerr);
    /* It exists: check it still takes our subjects. */
    s = js_GetStreamInfo(&si, js, sp->name, NULL, &jerr);
    if (s != NATS_OK)
        return nats_error(err, s, "stream info %s", sp->name);
    bool ours = si->Config->SubjectsLen == 1 && strcmp(si->Config->Subjects[0], sp->subject) == 0;
    if (!ours)
        IBP_LOG(IBP_LOG_WARN, "bus", "stream exists with other subjects name=%s expected=%s",
                sp->name, sp->subject);
    jsStreamInfo_Destroy(si);
    return IBP_OK;
}

ibp_status ibp_bus_ensure_streams(jsCtx *js, const ibp_bus_stream_opts *opts, ibp_err *err)
{
    ibp_bus_stream_opts o;
    if (opts)
        o = *opts;
    else
        ibp_bus_stream_opts_init(&o);
    const struct stream_spec specs[] = {
        {IBP_STREAM_LOCAL, "ibp.local.>", o.local_max_age_ms, 0},
        {IBP_STREAM_OFFICIAL, IBP_SUBJECT_OFFICIAL_SNAPSHOT, o.official_max_age_ms, 0},
        {IBP_STREAM_STATUS, "ibp.status.>", 0, 1},
        {IBP_STREAM_EVENTS, "ibp.events.>", o.history_max_age_ms, 0},
        {IBP_STREAM_HITS, "ibp.hits.>", o.history_max_age_ms, 0},
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
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
    s = js_PublishMsg(&pa, js, msg, &po, &jerr);
    natsMsg_Destroy(msg);
    if (s != NATS_OK) {
        /* 10071: wrong last sequence for the subject. */
        if (jerr == JSStreamWrongLastSequenceErr)
            return ibp_err_set(err, IBP_E_EXISTS,
                               "publish %s to %s: another publisher was first (msg id %s)", tname,
                               subject, msg_id);
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
