/*
 * `ibpctl services [NAME]`: the daemons answering the NATS micro-service
 * requests (ADR-32, node/micro.c), like `nats micro ls` and `nats micro
 * stats`. $SRV.PING (or $SRV.PING.<NAME>) goes out once; every instance that
 * answers within --wait ms is then asked $SRV.INFO.<name>.<id> and
 * $SRV.STATS.<name>.<id>. Printed as a JSON array (one object per instance:
 * name, id, version, description, started, metadata, endpoints with their
 * counters, and "data", the daemon's own figures), or with --compact as a
 * table. Exit 0 when at least one instance answered, 1 when none did.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/clock.h"
#include "ibpctl.h"

#define EXIT_USAGE 2
#define MAX_INSTANCES 1024

static json_t *parse_reply(natsMsg *m)
{
    json_error_t jerr;
    json_t *j = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Every answer to $SRV.PING[.name] within wait_ms, as an array of ping documents. */
static ibp_status ping_all(natsConnection *nc, const char *name, long wait_ms, json_t *out,
                           ibp_err *err)
{
    char subject[256], inbox[128];
    natsInbox *ib = NULL;
    natsSubscription *sub = NULL;
    snprintf(subject, sizeof subject, "$SRV.PING%s%s", name ? "." : "", name ? name : "");
    natsStatus s = natsInbox_Create(&ib);
    if (s == NATS_OK) {
        snprintf(inbox, sizeof inbox, "%s", (const char *)ib);
        s = natsConnection_SubscribeSync(&sub, nc, inbox);
    }
    if (s == NATS_OK)
        s = natsConnection_PublishRequestString(nc, subject, inbox, "");
    if (s == NATS_OK)
        s = natsConnection_Flush(nc);
    int64_t deadline = ibp_clock_deadline(wait_ms);
    while (s == NATS_OK && json_array_size(out) < MAX_INSTANCES) {
        int64_t left = ibp_clock_remaining_ms(deadline);
        if (left <= 0)
            break;
        natsMsg *m = NULL;
        natsStatus ns = natsSubscription_NextMsg(&m, sub, left);
        if (ns == NATS_TIMEOUT)
            break;
        if (ns != NATS_OK) {
            s = ns;
            break;
        }
        json_t *j = parse_reply(m);
        natsMsg_Destroy(m);
        if (j && json_string_value(json_object_get(j, "id")) &&
            json_string_value(json_object_get(j, "name")))
            json_array_append_new(out, j);
        else
            json_decref(j);
    }
    natsSubscription_Destroy(sub);
    natsInbox_Destroy(ib);
    if (s != NATS_OK)
        return ibp_err_set(err, IBP_E_NATS, "%s: %s", subject, natsStatus_GetText(s));
    return IBP_OK;
}

/* One request to $SRV.<verb>.<name>.<id>; the answer or NULL. */
static json_t *ask(natsConnection *nc, const char *verb, const char *name, const char *id,
                   long timeout_ms)
{
    char subject[512];
    natsMsg *reply = NULL;
    snprintf(subject, sizeof subject, "$SRV.%s.%s.%s", verb, name, id);
    if (natsConnection_RequestString(&reply, nc, subject, "", timeout_ms) != NATS_OK)
        return NULL;
    json_t *j = parse_reply(reply);
    natsMsg_Destroy(reply);
    return j;
}

/* PING + INFO + STATS of one instance in one object. */
static json_t *instance_json(natsConnection *nc, const json_t *ping, long timeout_ms)
{
    const char *name = json_string_value(json_object_get(ping, "name"));
    const char *id = json_string_value(json_object_get(ping, "id"));
    json_t *info = ask(nc, "INFO", name, id, timeout_ms);
    json_t *stats = ask(nc, "STATS", name, id, timeout_ms);
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "id", json_string(id));
    json_object_set(o, "version", json_object_get(ping, "version"));
    json_t *desc = json_object_get(info, "description");
    json_object_set(o, "description", desc ? desc : json_null());
    json_t *started = json_object_get(stats, "started");
    json_object_set(o, "started", started ? started : json_null());
    json_t *meta = json_object_get(ping, "metadata");
    json_object_set(o, "metadata", meta ? meta : json_object());
    /* The endpoints with their counters (STATS), else as INFO lists them. */
    json_t *eps = json_object_get(stats, "endpoints");
    if (!eps)
        eps = json_object_get(info, "endpoints");
    json_object_set(o, "endpoints", eps ? eps : json_array());
    json_t *data = json_object_get(stats, "data");
    if (data)
        json_object_set(o, "data", data);
    if (!info || !stats)
        json_object_set_new(
            o, "error", json_string(!info ? "no answer to $SRV.INFO" : "no answer to $SRV.STATS"));
    json_decref(info);
    json_decref(stats);
    return o;
}

static int by_name_id(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(json_string_value(json_object_get(x, "name")),
                   json_string_value(json_object_get(y, "name")));
    return c ? c
             : strcmp(json_string_value(json_object_get(x, "id")),
                      json_string_value(json_object_get(y, "id")));
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void print_table(const json_t *list)
{
    printf("%-16s %-10s %-22s %9s %7s %-24s %s\n", "NAME", "VERSION", "ID", "REQUESTS", "ERRORS",
           "STARTED", "DESCRIPTION");
    size_t i;
    json_t *it;
    json_array_foreach(list, i, it)
    {
        json_int_t reqs = 0, errs = 0;
        size_t k;
        json_t *ep;
        json_array_foreach(json_object_get(it, "endpoints"), k, ep)
        {
            reqs += json_integer_value(json_object_get(ep, "num_requests"));
            errs += json_integer_value(json_object_get(ep, "num_errors"));
        }
        printf("%-16s %-10s %-22s %9lld %7lld %-24s %s\n", str(it, "name"), str(it, "version"),
               str(it, "id"), (long long)reqs, (long long)errs, str(it, "started"),
               str(it, "description"));
        json_array_foreach(json_object_get(it, "endpoints"), k, ep)
        {
            printf("    endpoint %-12s %-28s requests %lld errors %lld avg %.3f ms%s%s\n",
                   str(ep, "name"), str(ep, "subject"),
                   (long long)json_integer_value(json_object_get(ep, "num_requests")),
                   (long long)json_integer_value(json_object_get(ep, "num_errors")),
                   (double)json_integer_value(json_object_get(ep, "average_processing_time")) / 1e6,
                   *str(ep, "last_error") ? " last error: " : "", str(ep, "last_error"));
        }
    }
}

int ibpctl_cmd_services(int argc, char **argv)
{
    const char *url = IBPCTL_DEFAULT_NATS, *name = NULL;
    long wait_ms = 1000, timeout_ms = 2000;
    bool compact = false;
    static const struct option opts[] = {
        {"nats", required_argument, 0, 'N'},
        {"wait", required_argument, 0, 'w'},
        {"timeout", required_argument, 0, 't'},
        {"compact", no_argument, 0, 'C'},
        {"help", no_argument, 0, 'h'},
        IBPCTL_NATS_LONG_OPTIONS,
        {0, 0, 0, 0},
    };
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "N:w:t:Ch", opts, NULL)) != -1) {
        switch (c) {
        case 'N':
            url = optarg;
            break;
        case 'w':
        case 't': {
            long v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v <= 0) {
                fprintf(stderr, "ibpctl services: --%s wants milliseconds\n",
                        c == 'w' ? "wait" : "timeout");
                return EXIT_USAGE;
            }
            *(c == 'w' ? &wait_ms : &timeout_ms) = v;
            break;
        }
        case 'C':
            compact = true;
            break;
        case 'h':
            printf("usage: ibpctl services [NAME] [--nats URL] [--wait MS] [--timeout MS] "
                   "[--compact]\n"
                   "Lists the daemons that answer the NATS micro-service requests (ADR-32):\n"
                   "$SRV.PING (or $SRV.PING.NAME: ibp-node, ibp-persist) collects the instances\n"
                   "that answer within --wait ms (default 1000), then each is asked\n"
                   "$SRV.INFO and $SRV.STATS (--timeout ms each, default 2000). Prints a JSON\n"
                   "array: name, id, version, description, started, metadata, endpoints with\n"
                   "num_requests, num_errors, average_processing_time (ns), last_error, and\n"
                   "\"data\" (the daemon's own figures). --compact: a table, as `nats micro ls`.\n"
                   "Exit 0 when an instance answered, 1 when none did.\n%s",
                   IBPCTL_NATS_HELP);
            return 0;
        default:
            if (ibpctl_nats_opt(c, optarg))
                break;
            return EXIT_USAGE;
        }
    }
    if (optind < argc)
        name = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "ibpctl services: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    ibp_err err = {0};
    natsConnection *nc = NULL;
    json_t *pings = json_array(), *list = json_array();
    int rc = 1;
    if (ibpctl_nats_connect(url, "ibpctl-services", &nc, &err) != IBP_OK ||
        ping_all(nc, name, wait_ms, pings, &err) != IBP_OK) {
        fprintf(stderr, "ibpctl services: %s\n", err.msg);
        goto out;
    }
    size_t n = json_array_size(pings);
    json_t **items = calloc(n ? n : 1, sizeof *items);
    if (!items) {
        fprintf(stderr, "ibpctl services: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        items[i] = instance_json(nc, json_array_get(pings, i), timeout_ms);
    qsort(items, n, sizeof *items, by_name_id);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, items[i]);
    free(items);
    if (compact)
        print_table(list);
    else {
        json_dumpf(list, stdout, JSON_INDENT(2));
        putchar('\n');
    }
    if (n == 0)
        fprintf(stderr, "ibpctl services: no service answered $SRV.PING%s%s within %ld ms\n",
                name ? "." : "", name ? name : "", wait_ms);
    rc = fflush(stdout) == 0 && n > 0 ? 0 : 1;
out:
    json_decref(pings);
    json_decref(list);
    natsConnection_Destroy(nc);
    return rc;
}
