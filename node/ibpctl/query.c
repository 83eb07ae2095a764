/*
 * `ibpctl events` and `ibpctl usage`: queries answered by ibp-persist over
 * NATS request-reply (ibp.persist.events, ibp.persist.usage; the documents are
 * those of persist/include/ibp/persist_query.h). Prints the JSON answer on
 * stdout; exit 0 on an answer, 1 on an error answer or no answer, 2 on usage.
 */
#include <getopt.h>
#include <jansson.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/bus.h"
#include "ibp/clock.h"
#include "ibpctl.h"

#define DEFAULT_TIMEOUT_MS 10000

/* Sends request to subject and prints the answer; returns the exit code. */
static int ask(const char *url, const char *subject, json_t *request, int64_t timeout_ms)
{
    natsConnection *nc = NULL;
    natsMsg *reply = NULL;
    char *text = json_dumps(request, JSON_COMPACT);
    json_decref(request);
    if (!text) {
        fprintf(stderr, "ibpctl: out of memory\n");
        return 1;
    }
    ibp_err err = {0};
    if (ibpctl_nats_connect(url, "ibpctl", &nc, &err) != IBP_OK) {
        fprintf(stderr, "ibpctl: %s\n", err.msg);
        free(text);
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
        json_t *doc =
            json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, &jerr);
        if (!doc) {
            fprintf(stderr, "ibpctl: the answer is not JSON: %s\n", jerr.text);
        } else {
            json_dumpf(doc, stdout, JSON_INDENT(2));
            putchar('\n');
            json_t *e = json_object_get(doc, "error");
            if (e)
                fprintf(stderr, "ibpctl: %s\n",
                        json_string_value(json_object_get(e, "message"))
                            ? json_string_value(json_object_get(e, "message"))
                            : "error");
            else
                rc = 0;
            json_decref(doc);
        }
    }
    natsMsg_Destroy(reply);
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
                   "[start, end], from ibp-persist (ibp.persist.events). Times are RFC 3339\n"
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

int ibpctl_cmd_usage(int argc, char **argv)
{
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
                   "domain, member or country, from ibp-persist (ibp.persist.usage).\n%s",
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
