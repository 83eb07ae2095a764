/*
 * `ibpctl override enable|disable <member>`: an admin's signed MemberOverride,
 * published to ibp.local.<admin id> (stream LOCAL) so the replicas order it
 * with the observations. Prints {"stream", "seq", "signer", "signer_seq",
 * "duplicate"} as JSON. Exit 0 stored, 1 failed, 2 bad usage.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/bus.h"
#include "ibp/clock.h"
#include "ibp/envelope.h"
#include "ibp/subject.h"
#include "ibpctl.h"

#define EXIT_USAGE 2

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ibpctl override enable|disable MEMBER --key ADMIN_KEY_FILE --node ADMIN_ID\n"
            "                      [--reason TEXT] [--nats URL] [--seq-file PATH]\n"
            "Signs a MemberOverride with the admin key (the node must have the admin role\n"
            "in the replicas' roster) and publishes it to ibp.local.<ADMIN_ID> (stream\n"
            "LOCAL). disable takes MEMBER out of DNS, enable puts it back. The signer's\n"
            "sequence numbers are kept in --seq-file (default KEY_FILE.seq). Prints the\n"
            "stream sequence as JSON. The NATS identity must be the admin's (allowed to\n"
            "publish to ibp.local.<ADMIN_ID>, see `ibpctl nats-auth`).\n%s",
            IBPCTL_NATS_HELP);
}

int ibpctl_cmd_override(int argc, char **argv)
{
    const char *key_path = NULL, *node = NULL, *reason = "", *url = IBPCTL_DEFAULT_NATS,
               *seq_path = NULL;
    static const struct option opts[] = {
        {"key", required_argument, 0, 'k'},
        {"node", required_argument, 0, 'n'},
        {"reason", required_argument, 0, 'r'},
        {"nats", required_argument, 0, 'N'},
        {"seq-file", required_argument, 0, 's'},
        {"help", no_argument, 0, 'h'},
        IBPCTL_NATS_LONG_OPTIONS,
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "k:n:r:N:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            key_path = optarg;
            break;
        case 'n':
            node = optarg;
            break;
        case 'r':
            reason = optarg;
            break;
        case 'N':
            url = optarg;
            break;
        case 's':
            seq_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            if (ibpctl_nats_opt(c, optarg))
                break;
            return EXIT_USAGE;
        }
    }
    if (argc - optind != 2 ||
        (strcmp(argv[optind], "enable") != 0 && strcmp(argv[optind], "disable") != 0)) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *member = argv[optind + 1];
    if (!key_path || !node || !*member) {
        fprintf(stderr, "ibpctl override: --key and --node and a member are required\n");
        return EXIT_USAGE;
    }
    char seq_buf[4200];
    if (!seq_path) {
        snprintf(seq_buf, sizeof seq_buf, "%s.seq", key_path);
        seq_path = seq_buf;
    }
    Ibp__V1__MemberOverride mo = IBP__V1__MEMBER_OVERRIDE__INIT;
    mo.member = (char *)member;
    mo.disabled = strcmp(argv[optind], "disable") == 0;
    mo.reason = (char *)reason;

    ibp_err err = {0};
    ibp_key key;
    ibp_signer *signer = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    uint8_t *msg = NULL;
    size_t len = 0;
    uint64_t seq = 0, stream_seq = 0;
    bool dup = false;
    char subject[256];
    int rc = 1;
    if (ibp_key_load(key_path, &key, &err) != IBP_OK)
        goto out;
    ibp_status st = ibp_signer_new(node, &key, seq_path, &signer, &err);
    ibp_key_wipe(&key);
    if (st != IBP_OK)
        goto out;
    if (ibp_subject_local(node, subject, sizeof subject) != IBP_OK) {
        ibp_err_set(&err, IBP_E_INVAL, "node id '%s' does not fit a subject", node);
        goto out;
    }
    if (ibpctl_js_connect(url, &nc, &js, &err) != IBP_OK)
        goto out;
    if (ibp_signer_seal(signer, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_MEMBER_OVERRIDE, &mo.base,
                        ibp_clock_wall_ms(), &msg, &len, &seq, &err) != IBP_OK)
        goto out;
    if (ibp_bus_publish_envelope(js, subject, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_MEMBER_OVERRIDE,
                                 node, seq, msg, len, NULL, 0, &stream_seq, &dup, &err) != IBP_OK)
        goto out;
    json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:I,s:s,s:b,s:b}", "stream", IBP_STREAM_LOCAL,
                          "subject", subject, "seq", (json_int_t)stream_seq, "signer", node,
                          "signer_seq", (json_int_t)seq, "member", member, "disabled",
                          (int)mo.disabled, "duplicate", (int)dup);
    if (j) {
        json_dumpf(j, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(j);
        rc = 0;
    }
out:
    if (rc)
        fprintf(stderr, "ibpctl override: %s\n", err.msg[0] ? err.msg : "failed");
    free(msg);
    ibp_signer_free(signer);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}
