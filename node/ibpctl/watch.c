/*
 * `ibpctl watch [SUBJECT]`: prints the bus as it goes by, each message
 * decoded and verified, one JSON object per line (or one human line with
 * --compact). Core NATS by default; with --stream, a JetStream stream read by
 * an ordered consumer from a sequence (--from-seq) or a time (--since), so
 * history can be read back.
 *
 *   - A status message (a JSON body on ibp.status.<...>) is checked with its
 *     signature headers (ibp/status_sig.h) and printed as `ibpctl status`
 *     prints it: the document with "verified": true and "signed_by", or
 *     {"verified": false, "reason", "unverified": {...}}.
 *   - Any other message must be a signed Envelope: decoded with its payload
 *     (ibp/decode_json.h) and verified statelessly against the roster
 *     (signature, signer, role; an Ibp-Type header that disagrees fails).
 *   - A body that decodes as neither is printed as {"verified": false,
 *     "reason": "IBP_E_DECODE: ...", "bytes": N}.
 * Every line also has "subject" and, from a stream, "stream_seq" and
 * "stream_time".
 */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ibp/bus.h"
#include "ibp/clock.h"
#include "ibp/decode_json.h"
#include "ibp/log.h"
#include "ibp/persist_query.h"
#include "ibp/roster.h"
#include "ibp/settings.h"
#include "ibp/subject.h"
#include "ibpctl.h"

#define EXIT_USAGE 2
#define POLL_MS 200
#define NS_PER_MS 1000000LL

struct watch_opts {
    const char *url, *subject, *member, *domain, *roster_path, *stream, *since;
    unsigned long long from_seq;
    long count, timeout_ms;
    bool compact;
};

static const char help[] =
    "usage: ibpctl watch [SUBJECT] --roster FILE [--nats URL] [--member M] [--domain D]\n"
    "                    [--stream NAME [--from-seq N | --since TIME|DURATION]]\n"
    "                    [--count N] [--timeout MS] [--compact]\n"
    "Prints each message on SUBJECT (default ibp.status.>, or ibp.status.<M>.> with\n"
    "--member; with --stream, the stream's subject) decoded and verified, one JSON\n"
    "object per line, until interrupted, after --count verified messages, or after\n"
    "--timeout ms without a message (exit 1).\n"
    "  status messages   the status document with \"verified\": true and \"signed_by\",\n"
    "                    or {\"verified\": false, \"reason\", \"unverified\": {...}}\n"
    "  envelopes         as `ibpctl decode`: signer, seq, type, \"verified\", \"reason\",\n"
    "                    \"payload\"\n"
    "Each line adds \"subject\" and, from a stream, \"stream_seq\" and \"stream_time\".\n"
    "--member/--domain keep the messages of that member/domain (status documents,\n"
    "and envelopes whose payload names one). --compact prints one human line per\n"
    "message: time, subject, type, signer, ok or UNVERIFIED (why), fields.\n"
    "--stream NAME reads the stream with an ordered consumer: from --from-seq N,\n"
    "from --since (RFC 3339 time, date, or a duration back from now: 10m, 2h, 1d),\n"
    "else only new messages.\n"
    "--roster FILE (or $IBP_ROSTER) is required: nothing is shown as verified\n"
    "without it. Default --nats " IBPCTL_DEFAULT_NATS ".\n";

static int parse_opts(int argc, char **argv, struct watch_opts *o)
{
    static const struct option opts[] = {
        {"nats", required_argument, 0, 'N'},
        {"member", required_argument, 0, 'm'},
        {"domain", required_argument, 0, 'd'},
        {"count", required_argument, 0, 'c'},
        {"timeout", required_argument, 0, 't'},
        {"roster", required_argument, 0, 'R'},
        {"stream", required_argument, 0, 's'},
        {"from-seq", required_argument, 0, 'F'},
        {"since", required_argument, 0, 'S'},
        {"compact", no_argument, 0, 'C'},
        {"help", no_argument, 0, 'h'},
        IBPCTL_NATS_LONG_OPTIONS,
        {0, 0, 0, 0},
    };
    int c;
    char *end;
    o->url = IBPCTL_DEFAULT_NATS;
    o->roster_path = getenv("IBP_ROSTER"); /* deploy/local-cluster.sh's cluster.env */
    while ((c = getopt_long(argc, argv, "N:m:d:c:t:R:s:F:S:Ch", opts, NULL)) != -1) {
        switch (c) {
        case 'N':
            o->url = optarg;
            break;
        case 'm':
            o->member = optarg;
            break;
        case 'd':
            o->domain = optarg;
            break;
        case 'c':
        case 't': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || end == optarg) {
                fprintf(stderr, "ibpctl watch: --%s wants a number\n",
                        c == 'c' ? "count" : "timeout");
                return EXIT_USAGE;
            }
            if (c == 'c')
                o->count = v;
            else
                o->timeout_ms = v;
            break;
        }
        case 'F':
            o->from_seq = strtoull(optarg, &end, 10);
            if (*end || end == optarg || o->from_seq == 0) {
                fprintf(stderr, "ibpctl watch: --from-seq wants a sequence number >= 1\n");
                return EXIT_USAGE;
            }
            break;
        case 'R':
            o->roster_path = optarg;
            break;
        case 's':
            o->stream = optarg;
            break;
        case 'S':
            o->since = optarg;
            break;
        case 'C':
            o->compact = true;
            break;
        case 'h':
            fputs(help, stdout);
            fputs(IBPCTL_NATS_HELP, stdout);
            return -1;
        default:
            if (ibpctl_nats_opt(c, optarg))
                break;
            return EXIT_USAGE;
        }
    }
    if (optind < argc)
        o->subject = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "ibpctl watch: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!o->roster_path || !*o->roster_path) {
        fprintf(stderr, "ibpctl watch: --roster FILE is required: messages are verified "
                        "against the roster\n");
        return EXIT_USAGE;
    }
    if ((o->from_seq || o->since) && !o->stream) {
        fprintf(stderr, "ibpctl watch: --from-seq and --since read a stream: give --stream\n");
        return EXIT_USAGE;
    }
    if (o->from_seq && o->since) {
        fprintf(stderr, "ibpctl watch: give --from-seq or --since, not both\n");
        return EXIT_USAGE;
    }
    return 0;
}

/* --since: an RFC 3339 time or date, or a duration back from now. */
static int since_ms(const char *text, int64_t *ms)
{
    int64_t d;
    if (ibp_persist_time_parse_ms(text, ms) == 0 && strchr(text, '-'))
        return 0;
    if (ibp_settings_parse_duration_ms(text, &d) == IBP_OK) {
        *ms = ibp_clock_wall_ms() - d;
        return 0;
    }
    return -1;
}

static bool names(const json_t *doc, const char *key, const char *want)
{
    const char *v = json_string_value(json_object_get(doc, key));
    return !want || !v || strcmp(v, want) == 0;
}

/*
 * One message as JSON (a new reference), or NULL when the filters drop it.
 * *verified says whether it verified.
 */
static json_t *message_json(const struct watch_opts *o, const ibp_roster *roster, natsMsg *m,
                            bool *verified)
{
    const char *subject = natsMsg_GetSubject(m);
    const uint8_t *data = (const uint8_t *)natsMsg_GetData(m);
    size_t len = (size_t)natsMsg_GetDataLength(m);
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\n' || data[i] == '\t' || data[i] == '\r'))
        i++;
    *verified = false;
    if (i < len && data[i] == '{') /* a status message: signed in its headers */
        return ibpctl_status_msg_json(o->member, o->domain, roster, m, subject, verified);
    const char *type = NULL;
    natsMsgHeader_Get(m, IBP_HDR_TYPE, &type);
    ibp_payload_type hint =
        type ? ibp_payload_type_parse(type) : IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_UNSPECIFIED;
    json_t *j = NULL;
    ibp_err err = {0};
    ibp_status st = ibp_decode_json(data, len, roster, hint, &j, &err);
    if (st != IBP_OK) {
        char reason[sizeof err.msg + 64];
        snprintf(reason, sizeof reason, "%s: %s", ibp_status_name(st), err.msg);
        return json_pack("{s:b, s:s, s:I}", "verified", 0, "reason", reason, "bytes",
                         (json_int_t)len);
    }
    const json_t *p = json_object_get(j, "payload");
    if (!names(p, "member", o->member) || !names(p, "domain", o->domain)) {
        json_decref(j);
        return NULL;
    }
    *verified = ibp_decode_json_verified(j, NULL);
    return j;
}

static void format_time(int64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, cap, "%02d:%02d:%02d.%03dZ", tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* The --compact line of doc (as message_json made it). */
static void print_compact(const json_t *doc, bool verified, int64_t ms)
{
    static const char *const skip_env[] = {"signer",     "seq",         "created_ms", "type",
                                           "signature",  "verified",    "reason",     "subject",
                                           "stream_seq", "stream_time", NULL};
    static const char *const skip_status[] = {"verified",   "signed_by",   "subject",
                                              "stream_seq", "stream_time", NULL};
    char when[32], fields[1024], who[160];
    format_time(ms, when, sizeof when);
    const char *subject = json_string_value(json_object_get(doc, "subject"));
    const char *type = json_string_value(json_object_get(doc, "type"));
    const json_t *payload = json_object_get(doc, "payload");
    const json_t *unverified = json_object_get(doc, "unverified");
    const char *reason = json_string_value(json_object_get(doc, "reason"));
    if (json_is_object(payload)) { /* an envelope */
        snprintf(who, sizeof who, "%s#%lld",
                 json_string_value(json_object_get(doc, "signer"))
                     ? json_string_value(json_object_get(doc, "signer"))
                     : "?",
                 (long long)json_integer_value(json_object_get(doc, "seq")));
        ibp_decode_json_fields(payload, skip_env, fields, sizeof fields);
    } else if (json_is_object(unverified) || (!verified && !type)) { /* status, or undecodable */
        snprintf(who, sizeof who, "?");
        type = unverified ? "Status" : "?";
        ibp_decode_json_fields(unverified, skip_status, fields, sizeof fields);
    } else { /* a verified status document */
        snprintf(who, sizeof who, "%s",
                 json_string_value(json_object_get(doc, "signed_by"))
                     ? json_string_value(json_object_get(doc, "signed_by"))
                     : "?");
        type = "Status";
        ibp_decode_json_fields(doc, skip_status, fields, sizeof fields);
    }
    if (!verified && !reason)
        ibp_decode_json_verified(doc, &reason);
    printf("%s %s %s %s %s%s%s %s\n", when, subject ? subject : "?", type ? type : "?", who,
           verified ? "ok" : "UNVERIFIED(", verified ? "" : (reason ? reason : "?"),
           verified ? "" : ")", fields);
}

/* The filter subject when none is given. */
static int default_subject(const struct watch_opts *o, jsCtx *js, char *buf, size_t cap,
                           ibp_err *err)
{
    if (o->stream) {
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_GetStreamInfo(&si, js, o->stream, NULL, &jerr);
        if (s != NATS_OK) {
            ibp_err_set(err, IBP_E_NATS, "stream %s: %s (%d)", o->stream, natsStatus_GetText(s),
                        (int)jerr);
            return -1;
        }
        int rc = 0;
        if (si->Config && si->Config->SubjectsLen == 1)
            snprintf(buf, cap, "%s", si->Config->Subjects[0]);
        else {
            ibp_err_set(err, IBP_E_INVAL, "stream %s has %d subjects: name one (SUBJECT)",
                        o->stream, si->Config ? si->Config->SubjectsLen : 0);
            rc = -1;
        }
        jsStreamInfo_Destroy(si);
        return rc;
    }
    if (!o->member) {
        snprintf(buf, cap, "ibp.status.>");
        return 0;
    }
    char tok[IBP_TOKEN_MAX_LEN(256) + 1];
    if (strlen(o->member) > 256 ||
        ibp_token_encode(o->member, strlen(o->member), tok, sizeof tok, NULL) != IBP_OK) {
        ibp_err_set(err, IBP_E_INVAL, "member name too long");
        return -1;
    }
    snprintf(buf, cap, "ibp.status.%s.>", tok);
    return 0;
}

static ibp_status subscribe(const struct watch_opts *o, natsConnection *nc, jsCtx *js,
                            const char *subject, natsSubscription **sub, ibp_err *err)
{
    natsStatus s;
    jsErrCode jerr = 0;
    if (!o->stream) {
        s = natsConnection_SubscribeSync(sub, nc, subject);
    } else {
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = o->stream;
        so.Ordered = true;
        if (o->from_seq) {
            so.Config.DeliverPolicy = js_DeliverByStartSequence;
            so.Config.OptStartSeq = o->from_seq;
        } else if (o->since) {
            int64_t ms = 0;
            if (since_ms(o->since, &ms) != 0)
                return ibp_err_set(err, IBP_E_INVAL,
                                   "--since %s: not an RFC 3339 time, a date or a duration",
                                   o->since);
            so.Config.DeliverPolicy = js_DeliverByStartTime;
            so.Config.OptStartTime = ms * NS_PER_MS;
        } else {
            so.Config.DeliverPolicy = js_DeliverNew;
        }
        s = js_SubscribeSync(sub, js, subject, NULL, &so, &jerr);
    }
    if (s == NATS_OK)
        s = natsConnection_Flush(nc);
    if (s != NATS_OK)
        return ibp_err_set(err, IBP_E_NATS, "subscribe %s%s%s: %s (%d)", subject,
                           o->stream ? " in " : "", o->stream ? o->stream : "",
                           natsStatus_GetText(s), (int)jerr);
    return IBP_OK;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int ibpctl_cmd_watch(int argc, char **argv)
{
    struct watch_opts o = {0};
    int rc = parse_opts(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    /* Each line says what failed; the verifier's WARN lines would repeat it. */
    if (!getenv("IBP_LOG_LEVEL"))
        ibp_log_set_level(IBP_LOG_ERROR);
    ibp_err err = {0};
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    ibp_roster *roster = NULL;
    char filter[1024];
    rc = 1;
    if (ibp_roster_load(o.roster_path, &roster, &err) != IBP_OK)
        goto out;
    if (ibpctl_js_connect(o.url, &nc, &js, &err) != IBP_OK)
        goto out;
    if (o.subject)
        snprintf(filter, sizeof filter, "%s", o.subject);
    else if (default_subject(&o, js, filter, sizeof filter, &err) != 0)
        goto out;
    if (subscribe(&o, nc, js, filter, &sub, &err) != IBP_OK)
        goto out;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* Ready: tests and scripts wait for this line on stderr. */
    fprintf(stderr, "ibpctl watch: watching %s%s%s\n", filter, o.stream ? " in stream " : "",
            o.stream ? o.stream : "");
    long seen = 0, idle_ms = 0;
    rc = 0;
    while (!stop && (o.count == 0 || seen < o.count)) {
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, sub, POLL_MS);
        if (s == NATS_TIMEOUT) {
            idle_ms += POLL_MS;
            if (o.timeout_ms && idle_ms >= o.timeout_ms) {
                ibp_err_set(&err, IBP_E_NATS, "no message within %ld ms", o.timeout_ms);
                rc = 1;
                break;
            }
            continue;
        }
        if (s != NATS_OK) {
            ibp_err_set(&err, IBP_E_NATS, "%s", natsStatus_GetText(s));
            rc = 1;
            break;
        }
        idle_ms = 0;
        bool verified = false;
        json_t *j = message_json(&o, roster, m, &verified);
        if (j) {
            int64_t when_ms = ibp_clock_wall_ms();
            json_object_set_new(j, "subject", json_string(natsMsg_GetSubject(m)));
            jsMsgMetaData *meta = NULL;
            if (o.stream && natsMsg_GetMetaData(&meta, m) == NATS_OK) {
                char t[40];
                when_ms = meta->Timestamp / NS_PER_MS;
                ibp_persist_time_format_ms(when_ms, t, sizeof t);
                json_object_set_new(j, "stream_seq",
                                    json_integer((json_int_t)meta->Sequence.Stream));
                json_object_set_new(j, "stream_time", json_string(t));
                jsMsgMetaData_Destroy(meta);
            }
            if (o.compact)
                print_compact(j, verified, when_ms);
            else {
                json_dumpf(j, stdout, JSON_COMPACT);
                putchar('\n');
            }
            fflush(stdout);
            json_decref(j);
            seen += verified; /* only what verifies counts */
        }
        natsMsg_Destroy(m);
    }
out:
    if (rc)
        fprintf(stderr, "ibpctl watch: %s\n", err.msg[0] ? err.msg : "failed");
    ibp_roster_free(roster);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}
