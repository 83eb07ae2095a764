/*
 * `ibpctl decode`: one bus message body on stdin to JSON on stdout (see
 * ibp/decode_json.h), so `nats sub 'ibp.>' --translate 'ibpctl decode'` shows
 * the bus readable. Exit 0 decoded (and, with a roster, verified), 1 not a
 * bus message or not verified, 2 bad usage.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/decode_json.h"
#include "ibp/log.h"
#include "ibpctl.h"

#define EXIT_USAGE 2

int ibpctl_cmd_decode(int argc, char **argv)
{
    const char *roster_path = NULL, *type_name = getenv("IBP_TYPE");
    const char *subject = getenv("IBP_SUBJECT"), *signer = getenv("IBP_SIGNER");
    const char *signature = getenv("IBP_SIGNATURE");
    int pretty = 0;
    static const struct option opts[] = {
        {"roster", required_argument, 0, 'R'},
        {"type", required_argument, 0, 't'},
        {"subject", required_argument, 0, 'S'},
        {"signer", required_argument, 0, 'I'},
        {"signature", required_argument, 0, 'G'},
        {"pretty", no_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "R:t:S:I:G:ph", opts, NULL)) != -1) {
        switch (c) {
        case 'R':
            roster_path = optarg;
            break;
        case 'S':
            subject = optarg;
            break;
        case 'I':
            signer = optarg;
            break;
        case 'G':
            signature = optarg;
            break;
        case 't':
            type_name = optarg;
            break;
        case 'p':
            pretty = 1;
            break;
        case 'h':
            printf(
                "usage: ibpctl decode [--roster FILE] [--type NAME] [--subject S]\n"
                "                     [--signer ID] [--signature B64] [--pretty] < MESSAGE\n"
                "Reads one bus message body on stdin and prints it as JSON (one line;\n"
                "--pretty indents). Envelopes show signer, seq, created_ms, type and the\n"
                "decoded payload (snapshots with their string table resolved); with\n"
                "--roster the signature and role are checked (\"verified\", \"reason\").\n"
                "Status messages (plain JSON) are signed in their headers over their\n"
                "subject and body: give --subject, --signer (Ibp-Signer) and --signature\n"
                "(Ibp-Signature), or $IBP_SUBJECT, $IBP_SIGNER, $IBP_SIGNATURE; they show\n"
                "as {\"type\": \"Status\", \"verified\", \"reason\", \"payload\": {...}}, never\n"
                "verified without --roster. --type (or $IBP_TYPE) is the Ibp-Type header,\n"
                "compared with the envelope's type (\"header_type\" on a mismatch).\n"
                "Exit 0 decoded (and verified, with --roster), 1 not a bus message or, with\n"
                "--roster, not verified (the JSON is printed all the same), 2 bad usage.\n"
                "Use: nats sub 'ibp.>' --translate 'ibpctl decode'\n");
            return 0;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ibpctl decode: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    ibp_payload_type hint = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_UNSPECIFIED;
    if (type_name && *type_name && strcmp(type_name, "Status") != 0) {
        hint = ibp_payload_type_parse(type_name);
        if (hint == IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_UNSPECIFIED) {
            fprintf(stderr, "ibpctl decode: unknown type '%s'\n", type_name);
            return EXIT_USAGE;
        }
    }
    /* The verdict is in the JSON; the verifier's WARN line would only repeat it. */
    if (!getenv("IBP_LOG_LEVEL"))
        ibp_log_set_level(IBP_LOG_ERROR);
    ibp_roster *roster = NULL;
    ibp_err err = {0};
    if (roster_path && ibp_roster_load(roster_path, &roster, &err) != IBP_OK) {
        fprintf(stderr, "ibpctl decode: %s\n", err.msg);
        return 1;
    }
    size_t cap = 65536, len = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        size_t n = fread(buf + len, 1, cap - len, stdin);
        len += n;
        if (len > IBP_MESSAGE_MAX_DEFAULT)
            break;
        if (n == 0)
            break;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    int rc = 1;
    json_t *j = NULL;
    ibp_status st = IBP_E_DECODE;
    if (!buf) {
        fprintf(stderr, "ibpctl decode: out of memory\n");
    } else if (ferror(stdin)) {
        fprintf(stderr, "ibpctl decode: cannot read stdin\n");
    } else if (len > IBP_MESSAGE_MAX_DEFAULT) {
        fprintf(stderr, "ibpctl decode: message over %u bytes\n", IBP_MESSAGE_MAX_DEFAULT);
    } else if ((st = ibp_decode_status_json(buf, len, subject, signer, signature, roster, &j, NULL,
                                            &err)) != IBP_OK &&
               (st != IBP_E_DECODE ||
                (st = ibp_decode_json(buf, len, roster, hint, &j, &err)) != IBP_OK)) {
        fprintf(stderr, "ibpctl decode: %s\n", err.msg);
    } else {
        /* With a roster, a message that does not verify fails (after printing it). */
        bool verified = !roster || json_is_true(json_object_get(j, "verified"));
        json_dumpf(j, stdout, pretty ? JSON_INDENT(2) : JSON_COMPACT);
        putchar('\n');
        json_decref(j);
        rc = fflush(stdout) == 0 && verified ? 0 : 1;
        if (!verified)
            fprintf(stderr, "ibpctl decode: the message does not verify against the roster\n");
    }
    free(buf);
    ibp_roster_free(roster);
    return rc;
}
