/*
 * `ibpctl sla --member M [--domain D] --from T --to T`: a member's
 * availability over a window, from its outages in member_events, answered by
 * ibp-persist (ibp.persist.sla; ibp_persist_query_sla_json in
 * persist/include/ibp/persist_query.h: overlapping outages count once, open
 * ones run to the end of the window, the window ends at the latest now).
 * Prints the JSON answer, or with --compact a table: the member, each family,
 * each domain and each check with its availability, downtime and outages.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibpctl.h"

#define EXIT_USAGE 2

static void format_duration(json_int_t ms, char *buf, size_t cap)
{
    long long s = (long long)(ms / 1000);
    if (s >= 86400)
        snprintf(buf, cap, "%lldd%02lldh%02lldm", s / 86400, s % 86400 / 3600, s % 3600 / 60);
    else if (s >= 3600)
        snprintf(buf, cap, "%lldh%02lldm%02llds", s / 3600, s % 3600 / 60, s % 60);
    else
        snprintf(buf, cap, "%lldm%02lld.%03llds", s / 60, s % 60, (long long)(ms % 1000));
}

static void row(const char *what, const char *name, const json_t *f)
{
    char down[48];
    format_duration(json_integer_value(json_object_get(f, "downtime_ms")), down, sizeof down);
    printf("%-8s %-40s %10.4f %% %14s %7lld %5lld\n", what, name,
           json_real_value(json_object_get(f, "availability_percent")), down,
           (long long)json_integer_value(json_object_get(f, "outages")),
           (long long)json_integer_value(json_object_get(f, "open")));
}

static void print_table(const json_t *doc)
{
    const char *member = json_string_value(json_object_get(doc, "member"));
    const char *domain = json_string_value(json_object_get(doc, "domain"));
    printf("%s%s%s from %s to %s\n", member ? member : "?", domain ? " on " : "",
           domain ? domain : "", json_string_value(json_object_get(doc, "from")),
           json_string_value(json_object_get(doc, "to")));
    printf("%-8s %-40s %12s %14s %7s %5s\n", "", "", "AVAILABLE", "DOWNTIME", "OUTAGES", "OPEN");
    row("member", member ? member : "?", doc);
    row("family", "ipv4", json_object_get(doc, "ipv4"));
    row("family", "ipv6", json_object_get(doc, "ipv6"));
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(doc, "domains"), i, it)
        row("domain", json_string_value(json_object_get(it, "domain")), it);
    json_array_foreach(json_object_get(doc, "checks"), i, it)
    {
        char name[160];
        snprintf(name, sizeof name, "%s %s", json_string_value(json_object_get(it, "check_type")),
                 json_string_value(json_object_get(it, "check_name")));
        row("check", name, it);
    }
}

int ibpctl_cmd_sla(int argc, char **argv)
{
    const char *url = IBPCTL_DEFAULT_NATS, *member = NULL, *domain = NULL, *from = NULL, *to = NULL;
    bool compact = false;
    static const struct option opts[] = {
        {"nats", required_argument, 0, 'n'},
        {"member", required_argument, 0, 'm'},
        {"domain", required_argument, 0, 'd'},
        {"from", required_argument, 0, 'f'},
        {"to", required_argument, 0, 't'},
        {"compact", no_argument, 0, 'C'},
        {"help", no_argument, 0, 'h'},
        IBPCTL_NATS_LONG_OPTIONS,
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "n:m:d:f:t:Ch", opts, NULL)) != -1) {
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
        case 'f':
            from = optarg;
            break;
        case 't':
            to = optarg;
            break;
        case 'C':
            compact = true;
            break;
        case 'h':
            printf("usage: ibpctl sla --member NAME [--domain D] --from T --to T [--compact] "
                   "[--nats URL]\n"
                   "Availability of a member over [from, to) from its outages in member_events,\n"
                   "answered by ibp-persist (ibp.persist.sla): overlapping outages count once,\n"
                   "an outage still open runs to the end of the window, and the window ends\n"
                   "at the latest now. With --domain: that domain's outages and the\n"
                   "member-wide ones (site checks). Figures for the member, IPv4 and IPv6,\n"
                   "each domain with an outage and each check: availability (0..1 and\n"
                   "percent), downtime_ms, outages, open. Overrides are not outages.\n"
                   "Times: RFC 3339, dates (midnight UTC) or Unix ms. --compact: a table.\n%s",
                   IBPCTL_NATS_HELP);
            return 0;
        default:
            if (ibpctl_nats_opt(c, optarg))
                break;
            return EXIT_USAGE;
        }
    }
    if (!member || !from || !to || optind < argc) {
        fprintf(stderr, "ibpctl sla: --member, --from and --to are required\n");
        return EXIT_USAGE;
    }
    json_t *req = json_pack("{s:s,s:s,s:s}", "member", member, "from", from, "to", to);
    if (domain)
        json_object_set_new(req, "domain", json_string(domain));
    if (!compact)
        return ibpctl_query_ask(url, "ibp.persist.sla", req);
    json_t *doc = NULL;
    int rc = ibpctl_query_request(url, "ibp.persist.sla", req, &doc);
    if (rc == 0) {
        const json_t *e = json_object_get(doc, "error");
        if (e) {
            fprintf(stderr, "ibpctl sla: %s\n", json_string_value(json_object_get(e, "message")));
            rc = 1;
        } else {
            print_table(doc);
        }
    }
    json_decref(doc);
    return rc;
}
