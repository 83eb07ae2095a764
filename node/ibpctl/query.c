/*
 * `ibpctl events` and `ibpctl usage`: queries answered by ibp-persist over
 * NATS request-reply (ibp.persist.events, ibp.persist.usage; the documents are
 * those of persist/include/ibp/persist_query.h). Prints the JSON answer on
 * stdout; exit 0 on an answer, 1 on an error answer or no answer, 2 on usage.
 *
 * `ibpctl usage flush`: asks a dns node (its control socket, "usage_flush")
 * to flush its usage counters now, waits until ibp-persist has applied that
 * flush (ibp.persist.hit_flushes), and prints the date's usage.
 */
#include <getopt.h>
#include <jansson.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/bus.h"
#include "ibp/clock.h"
#include "ibp/date.h"
#include "ibpctl.h"

#define DEFAULT_TIMEOUT_MS 10000

/*
 * Sends request (consumed) to subject on nc; *doc gets the JSON answer.
 * Returns 0, or 1 after printing why (no answer, refused, not JSON). An
 * error answer ({"error": ...}) is returned as it is: the caller looks.
 */
static int request_json(natsConnection *nc, const char *subject, json_t *request,
                        int64_t timeout_ms, json_t **doc)
{
    natsMsg *reply = NULL;
    char *text = json_dumps(request, JSON_COMPACT);
    json_decref(request);
    *doc = NULL;
    if (!text) {
        fprintf(stderr, "ibpctl: out of memory\n");
        return 1;
    }
    int64_t t0 = ibp_clock_mono_ms();
    natsStatus s = natsConnection_RequestString(&reply, nc, subject, text, timeout_ms);
    free(text);
    int rc = 1;
    if (s == NATS_TIMEOUT && ibp_bus_refused(subject, t0)) {
        fprintf(stderr,
                "ibpctl: request %s: refused by the server: this NATS identity may not publish "
                "to it (see `ibpctl nats-auth`)\n",
                subject);
    } else if (s == NATS_NO_RESPONDERS || s == NATS_TIMEOUT) {
        fprintf(stderr, "ibpctl: no answer on %s (%s): is ibp-persist running?\n", subject,
                natsStatus_GetText(s));
    } else if (s != NATS_OK) {
        fprintf(stderr, "ibpctl: request %s: %s\n", subject, natsStatus_GetText(s));
    } else {
        json_error_t jerr;
        *doc = json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, &jerr);
        if (!*doc)
            fprintf(stderr, "ibpctl: the answer is not JSON: %s\n", jerr.text);
        else
            rc = 0;
    }
    natsMsg_Destroy(reply);
    return rc;
}

/* The message of an error answer, or NULL. */
static const char *error_of(const json_t *doc)
{
    const json_t *e = json_object_get(doc, "error");
    if (!e)
        return NULL;
    const char *m = json_string_value(json_object_get(e, "message"));
    return m ? m : "error";
}

/* Sends request to subject and prints the answer; returns the exit code. */
static int ask(const char *url, const char *subject, json_t *request, int64_t timeout_ms)
{
    natsConnection *nc = NULL;
    ibp_err err = {0};
    if (ibpctl_nats_connect(url, "ibpctl", &nc, &err) != IBP_OK) {
        fprintf(stderr, "ibpctl: %s\n", err.msg);
        json_decref(request);
        return 1;
    }
    json_t *doc = NULL;
    int rc = request_json(nc, subject, request, timeout_ms, &doc);
    if (rc == 0) {
        json_dumpf(doc, stdout, JSON_INDENT(2));
        putchar('\n');
        if (error_of(doc)) {
            fprintf(stderr, "ibpctl: %s\n", error_of(doc));
            rc = 1;
        }
    }
    json_decref(doc);
    natsConnection_Destroy(nc);
    return rc;
}

int ibpctl_query_ask(const char *url, const char *subject, json_t *request)
{
    return ask(url, subject, request, DEFAULT_TIMEOUT_MS);
}

int ibpctl_query_request(const char *url, const char *subject, json_t *request, json_t **doc)
{
    natsConnection *nc = NULL;
    ibp_err err = {0};
    *doc = NULL;
    if (ibpctl_nats_connect(url, "ibpctl", &nc, &err) != IBP_OK) {
        fprintf(stderr, "ibpctl: %s\n", err.msg);
        json_decref(request);
        return 1;
    }
    int rc = request_json(nc, subject, request, DEFAULT_TIMEOUT_MS, doc);
    natsConnection_Destroy(nc);
    return rc;
}

/* Sets key to val in obj when val is given. */
static void set_opt(json_t *obj, const char *key, const char *val)
{
    if (val)
        json_object_set_new(obj, key, json_string(val));
}

int ibpctl_cmd_events(int argc, char **argv)
{
    const char *url = IBPCTL_DEFAULT_NATS, *member = NULL, *domain = NULL, *start = NULL,
               *end = NULL;
    static const struct option opts[] = {
        {"nats", required_argument, 0, 'n'},
        {"member", required_argument, 0, 'm'},
        {"domain", required_argument, 0, 'd'},
        {"start", required_argument, 0, 's'},
        {"end", required_argument, 0, 'e'},
        {"help", no_argument, 0, 'h'},
        IBPCTL_NATS_LONG_OPTIONS,
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "n:m:d:s:e:h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            url = optarg;
            break;
        case 'm':
            member = optarg;
            break;
        case 'd':
            domain = optarg;
            break;
        case 's':
            start = optarg;
            break;
        case 'e':
            end = optarg;
            break;
        case 'h':
            printf("usage: ibpctl events --member NAME [--domain D] --start T --end T "
                   "[--nats URL]\n"
                   "Outage and override events of a member (optionally one domain) that overlap\n"
                   "[start, end], from ibp-persist (ibp.persist.events), each with its\n"
                   "duration_ms (until now while \"open\"); `ibpctl sla` sums them up.\n"
                   "Times are RFC 3339\n"
                   "(2025-01-01T00:00:00Z), dates (2025-01-01) or Unix milliseconds.\n"
                   "%s",
                   IBPCTL_NATS_HELP);
            return 0;
        default:
            if (ibpctl_nats_opt(c, optarg))
                break;
            return 2;
        }
    }
    if (!member || !start || !end) {
        fprintf(stderr, "ibpctl events: --member, --start and --end are required\n");
        return 2;
    }
    json_t *req = json_object();
    set_opt(req, "member", member);
    set_opt(req, "domain", domain);
    set_opt(req, "start", start);
    set_opt(req, "end", end);
    return ask(url, "ibp.persist.events", req, DEFAULT_TIMEOUT_MS);
}

static int cmd_usage_flush(int argc, char **argv);

int ibpctl_cmd_usage(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "flush") == 0)
        return cmd_usage_flush(argc - 1, argv + 1);
    const char *url = IBPCTL_DEFAULT_NATS, *by = "domain", *start = NULL, *end = NULL;
    const char *domain = NULL, *member = NULL, *country = NULL;
    int per_day = 0;
    static const struct option opts[] = {
        {"nats", required_argument, 0, 'n'},
        {"by", required_argument, 0, 'b'},
        {"start", required_argument, 0, 's'},
        {"end", required_argument, 0, 'e'},
        {"domain", required_argument, 0, 'd'},
        {"member", required_argument, 0, 'm'},
        {"country", required_argument, 0, 'c'},
        {"per-day", no_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'},
        IBPCTL_NATS_LONG_OPTIONS,
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "n:b:s:e:d:m:c:ph", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            url = optarg;
            break;
        case 'b':
            by = optarg;
            break;
        case 's':
            start = optarg;
            break;
        case 'e':
            end = optarg;
            break;
        case 'd':
            domain = optarg;
            break;
        case 'm':
            member = optarg;
            break;
        case 'c':
            country = optarg;
            break;
        case 'p':
            per_day = 1;
            break;
        case 'h':
            printf("usage: ibpctl usage --start DATE --end DATE [--by domain|member|country]\n"
                   "                    [--domain D] [--member M] [--country CC] [--per-day] "
                   "[--nats URL]\n"
                   "DNS hits for a date range (inclusive), IPv4, IPv6 and together, grouped by\n"
                   "domain, member or country, from ibp-persist (ibp.persist.usage).\n"
                   "`ibpctl usage flush --help`: make a dns node flush its counters now.\n%s",
                   IBPCTL_NATS_HELP);
            return 0;
        default:
            if (ibpctl_nats_opt(c, optarg))
                break;
            return 2;
        }
    }
    if (!start || !end) {
        fprintf(stderr, "ibpctl usage: --start and --end are required\n");
        return 2;
    }
    json_t *req = json_object();
    set_opt(req, "by", by);
    set_opt(req, "start", start);
    set_opt(req, "end", end);
    set_opt(req, "domain", domain);
    set_opt(req, "member", member);
    set_opt(req, "country", country);
    json_object_set_new(req, "per_day", json_boolean(per_day));
    return ask(url, "ibp.persist.usage", req, DEFAULT_TIMEOUT_MS);
}

/* ---- usage flush ---------------------------------------------------------------- */

#define FLUSH_POLL_MS 100

static void today_utc(char buf[IBP_DATE_BUF])
{
    ibp_date_format(ibp_clock_wall_ms() / 86400000, buf);
}

static int cmd_usage_flush(int argc, char **argv)
{
    const char *url = IBPCTL_DEFAULT_NATS, *sock = getenv("IBP_CONTROL_SOCKET"), *date = NULL,
               *by = "domain";
    long timeout_ms = 30000;
    static const struct option opts[] = {
        {"nats", required_argument, 0, 'n'},
        {"socket", required_argument, 0, 's'},
        {"date", required_argument, 0, 'd'},
        {"by", required_argument, 0, 'b'},
        {"timeout", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},
        IBPCTL_NATS_LONG_OPTIONS,
        {0, 0, 0, 0},
    };
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "n:s:d:b:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            url = optarg;
            break;
        case 's':
            sock = optarg;
            break;
        case 'd':
            date = optarg;
            break;
        case 'b':
            by = optarg;
            break;
        case 't':
            timeout_ms = strtol(optarg, &end, 10);
            if (*end || end == optarg || timeout_ms <= 0) {
                fprintf(stderr, "ibpctl usage flush: --timeout wants milliseconds\n");
                return 2;
            }
            break;
        case 'h':
            printf("usage: ibpctl usage flush --socket PATH [--date YYYY-MM-DD]\n"
                   "                          [--by domain|member|country] [--timeout MS] "
                   "[--nats URL]\n"
                   "Asks a dns node, through its control socket (<work dir>/control.sock, or\n"
                   "$IBP_CONTROL_SOCKET), to flush its usage counters now (every date, or\n"
                   "--date only) and publish them to HITS; then waits (--timeout, default\n"
                   "30000 ms) until ibp-persist has stored that flush (ibp.persist.hit_flushes)\n"
                   "and prints {\"node\", \"flush_seq\", \"stored\", \"waited_ms\", \"date\",\n"
                   "\"usage\": <the date's usage by --by, as `ibpctl usage`>} (date: --date or\n"
                   "today, UTC). Exit 0 once stored, 1 otherwise.\n%s",
                   IBPCTL_NATS_HELP);
            return 0;
        default:
            if (ibpctl_nats_opt(c, optarg))
                break;
            return 2;
        }
    }
    if (!sock || optind < argc) {
        fprintf(stderr, "ibpctl usage flush: --socket PATH is required (the dns node's "
                        "control.sock)\n");
        return 2;
    }
    char today[IBP_DATE_BUF];
    today_utc(today);
    json_t *req = json_object(), *answer = NULL, *doc = NULL;
    set_opt(req, "cmd", "usage_flush");
    set_opt(req, "date", date);
    char *line = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    natsConnection *nc = NULL;
    int rc = 1;
    if (!line)
        goto out;
    size_t n = strlen(line);
    char *l2 = realloc(line, n + 2);
    if (!l2)
        goto out;
    line = l2;
    memcpy(line + n, "\n", 2);
    char *text = NULL;
    int crc = ibpctl_control_call("ibpctl usage flush", sock, line, &text, &answer);
    free(text);
    if (crc != 0) {
        rc = crc;
        goto out;
    }
    if (!json_is_true(json_object_get(answer, "ok"))) {
        const char *msg = json_string_value(json_object_get(answer, "error"));
        fprintf(stderr, "ibpctl usage flush: the node refused: %s\n", msg ? msg : "?");
        goto out;
    }
    const char *node = json_string_value(json_object_get(answer, "node"));
    json_int_t flush_seq = json_integer_value(json_object_get(answer, "flush_seq"));
    ibp_err err = {0};
    if (!node || ibpctl_nats_connect(url, "ibpctl", &nc, &err) != IBP_OK) {
        fprintf(stderr, "ibpctl usage flush: %s\n", node ? err.msg : "the node did not say who");
        goto out;
    }
    /* Until persist has applied the flush (a node that never flushed: at once). */
    int64_t t0 = ibp_clock_mono_ms();
    json_int_t stored = 0;
    for (;;) {
        if (request_json(nc, "ibp.persist.hit_flushes", json_pack("{s:s}", "node", node),
                         DEFAULT_TIMEOUT_MS, &doc) != 0)
            goto out;
        if (error_of(doc)) {
            fprintf(stderr, "ibpctl usage flush: %s\n", error_of(doc));
            goto out;
        }
        stored = json_integer_value(json_object_get(doc, "last_flush_seq"));
        json_decref(doc);
        doc = NULL;
        if (stored >= flush_seq)
            break;
        if (ibp_clock_mono_ms() - t0 >= timeout_ms) {
            fprintf(stderr,
                    "ibpctl usage flush: persist has applied flush %lld of %s, not yet %lld, "
                    "after %ld ms (%lld not yet published by the node)\n",
                    (long long)stored, node, (long long)flush_seq, timeout_ms,
                    (long long)json_integer_value(json_object_get(answer, "pending")));
            goto out;
        }
        ibp_clock_sleep_ms(FLUSH_POLL_MS);
    }
    int64_t waited = ibp_clock_mono_ms() - t0;
    const char *d = date ? date : today;
    if (request_json(nc, "ibp.persist.usage",
                     json_pack("{s:s,s:s,s:s}", "by", by, "start", d, "end", d), DEFAULT_TIMEOUT_MS,
                     &doc) != 0)
        goto out;
    json_t *out = json_pack("{s:s,s:I,s:b,s:I,s:I,s:s,s:O}", "node", node, "flush_seq", flush_seq,
                            "stored", 1, "last_flush_seq", stored, "waited_ms", (json_int_t)waited,
                            "date", d, "usage", doc);
    json_dumpf(out, stdout, JSON_INDENT(2));
    putchar('\n');
    json_decref(out);
    if (error_of(doc))
        fprintf(stderr, "ibpctl usage flush: stored, but the usage query failed: %s\n",
                error_of(doc));
    else
        rc = fflush(stdout) == 0 ? 0 : 1;
out:
    free(line);
    json_decref(answer);
    json_decref(doc);
    natsConnection_Destroy(nc);
    return rc;
}
