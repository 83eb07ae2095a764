/*
 * `ibpctl status`: the official status of members and domains from stream
 * STATUS (the last message of each ibp.status.<...> subject); `ibpctl watch`
 * (watch.c) shows its changes as they happen. Every message is verified
 * against the roster (ibp/status_sig.h); one that does not verify is shown
 * as such and never as an official status.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/bus.h"
#include "ibp/roster.h"
#include "ibp/status_sig.h"
#include "ibp/subject.h"
#include "ibpctl.h"

#define EXIT_USAGE 2

struct status_opts {
    const char *url, *member, *domain;
    const char *roster_path; /* status messages are verified against it */
    long count;
    long timeout_ms;
};

static int parse_opts(int argc, char **argv, struct status_opts *o, const char *help)
{
    static const struct option opts[] = {
        {"nats", required_argument, 0, 'N'},
        {"member", required_argument, 0, 'm'},
        {"domain", required_argument, 0, 'd'},
        {"count", required_argument, 0, 'c'},
        {"timeout", required_argument, 0, 't'},
        {"roster", required_argument, 0, 'R'},
        {"help", no_argument, 0, 'h'},
        IBPCTL_NATS_LONG_OPTIONS,
        {0, 0, 0, 0},
    };
    int c;
    char *end;
    o->url = IBPCTL_DEFAULT_NATS;
    o->roster_path = getenv("IBP_ROSTER"); /* deploy/local-cluster.sh's cluster.env */
    while ((c = getopt_long(argc, argv, "N:m:d:c:t:R:h", opts, NULL)) != -1) {
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
            if (*end || v < 0) {
                fprintf(stderr, "ibpctl: --%s wants a number\n", c == 'c' ? "count" : "timeout");
                return EXIT_USAGE;
            }
            if (c == 'c')
                o->count = v;
            else
                o->timeout_ms = v;
            break;
        }
        case 'R':
            o->roster_path = optarg;
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
    if (optind < argc) {
        fprintf(stderr, "ibpctl: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!o->roster_path) {
        fprintf(stderr, "ibpctl: --roster FILE is required: status messages are verified "
                        "against the roster\n");
        return EXIT_USAGE;
    }
    return 0;
}

/* The filter subject: ibp.status.<member token>.> or ibp.status.> */
static int filter_subject(const struct status_opts *o, char *buf, size_t cap)
{
    if (!o->member) {
        snprintf(buf, cap, "ibp.status.>");
        return 0;
    }
    char tok[IBP_TOKEN_MAX_LEN(256) + 1];
    if (strlen(o->member) > 256 ||
        ibp_token_encode(o->member, strlen(o->member), tok, sizeof tok, NULL) != IBP_OK)
        return -1;
    snprintf(buf, cap, "ibp.status.%s.>", tok);
    return 0;
}

json_t *ibpctl_status_msg_json(const char *member, const char *domain, const ibp_roster *roster,
                               natsMsg *msg, const char *subject, bool *verified)
{
    const char *data = natsMsg_GetData(msg);
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    json_error_t jerr;
    json_t *j = json_loadb(data, len, 0, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    const char *m = json_string_value(json_object_get(j, "member"));
    const char *d = json_string_value(json_object_get(j, "domain"));
    if ((member && (!m || strcmp(m, member) != 0)) || (domain && (!d || strcmp(d, domain) != 0))) {
        json_decref(j);
        return NULL;
    }
    const char *signer = NULL, *sig = NULL;
    natsMsgHeader_Get(msg, IBP_HDR_SIGNER, &signer);
    natsMsgHeader_Get(msg, IBP_HDR_SIGNATURE, &sig);
    ibp_err verr = {0};
    const ibp_roster_node *node = NULL;
    ibp_status st = ibp_status_sig_verify(roster, subject, signer, sig, (const uint8_t *)data, len,
                                          &node, &verr);
    if (st == IBP_OK && !j)
        st = ibp_err_set(&verr, IBP_E_DECODE, "signed, but not a JSON status document");
    *verified = st == IBP_OK;
    if (st == IBP_OK) {
        json_object_set_new(j, "verified", json_true());
        json_object_set_new(j, "signed_by", json_string(node->id));
        return j;
    }
    char reason[sizeof verr.msg + 64];
    snprintf(reason, sizeof reason, "%s: %s", ibp_status_name(st), verr.msg);
    json_t *u = json_pack("{s:b, s:s, s:o}", "verified", 0, "reason", reason, "unverified",
                          j ? j : json_null());
    if (!u)
        json_decref(j);
    return u;
}

int ibpctl_cmd_status(int argc, char **argv)
{
    struct status_opts o = {0};
    int rc = parse_opts(
        argc, argv, &o,
        "usage: ibpctl status --roster FILE [--nats URL] [--member M] [--domain D]\n"
        "Prints the current official status (stream STATUS, the last message of every\n"
        "status subject) as a JSON array: sites, domains, endpoints and the override of\n"
        "each member, filtered by member and/or domain. Default --nats " IBPCTL_DEFAULT_NATS ".\n"
        "--roster FILE (required): each message's signature (Ibp-Signer, Ibp-Signature)\n"
        "is checked; one that does not verify is listed as {\"verified\": false,\n"
        "\"reason\": ..., \"unverified\": {...}} and is not official.\n");
    if (rc)
        return rc < 0 ? 0 : rc;
    char filter[1024];
    if (filter_subject(&o, filter, sizeof filter) != 0) {
        fprintf(stderr, "ibpctl status: member name too long\n");
        return EXIT_USAGE;
    }
    ibp_err err = {0};
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    json_t *out = json_array();
    ibp_roster *roster = NULL;
    rc = 1;
    if (ibp_roster_load(o.roster_path, &roster, &err) != IBP_OK)
        goto out;
    if (ibpctl_js_connect(o.url, &nc, &js, &err) != IBP_OK)
        goto out;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Stream.Info.SubjectsFilter = filter;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, js, IBP_STREAM_STATUS, &jo, &jerr);
    if (s != NATS_OK) {
        ibp_err_set(&err, IBP_E_NATS, "stream %s: %s (%d)", IBP_STREAM_STATUS,
                    natsStatus_GetText(s), (int)jerr);
        goto out;
    }
    jsStreamStateSubjects *subs = si->State.Subjects;
    for (int i = 0; subs && i < subs->Count; i++) {
        natsMsg *m = NULL;
        if (js_GetLastMsg(&m, js, IBP_STREAM_STATUS, subs->List[i].Subject, NULL, &jerr) != NATS_OK)
            continue; /* gone meanwhile */
        bool verified = false;
        json_t *j =
            ibpctl_status_msg_json(o.member, o.domain, roster, m, subs->List[i].Subject, &verified);
        if (j) {
            json_object_set_new(j, "subject", json_string(subs->List[i].Subject));
            json_object_set_new(j, "stream_seq", json_integer((json_int_t)natsMsg_GetSequence(m)));
            json_array_append_new(out, j);
        }
        natsMsg_Destroy(m);
    }
    json_dumpf(out, stdout, JSON_INDENT(2));
    putchar('\n');
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "ibpctl status: %s\n", err.msg[0] ? err.msg : "failed");
    json_decref(out);
    ibp_roster_free(roster);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}
