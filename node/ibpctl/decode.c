/*
 * `ibpctl decode`: one bus message body on stdin to JSON on stdout (see
 * ibp/decode_json.h), so `nats sub 'ibp.>' --translate 'ibpctl decode'` shows
 * the bus readable. Exit 0 decoded and verified against the roster (--roster
 * or $IBP_ROSTER; with --no-verify: decoded), 1 not a bus message, not
 * verified, or no roster to verify with, 2 bad usage.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/decode_json.h"
#include "ibp/log.h"
#include "ibp/vec.h"
#include "ibpctl.h"

#define EXIT_USAGE 2

int ibpctl_cmd_decode(int argc, char **argv)
{
    const char *roster_path = getenv("IBP_ROSTER"), *type_name = getenv("IBP_TYPE");
    const char *subject = getenv("IBP_SUBJECT"), *signer = getenv("IBP_SIGNER");
    const char *signature = getenv("IBP_SIGNATURE");
    int pretty = 0, no_verify = 0;
    static const struct option opts[] = {
        {"no-verify", no_argument, 0, 'V'},
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
    while ((c = getopt_long(argc, argv, "R:t:S:I:G:pVh", opts, NULL)) != -1) {
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
        case 'V':
            no_verify = 1;
            break;
        case 'h':
            printf(
                "usage: ibpctl decode [--roster FILE | --no-verify] [--type NAME] [--subject S]\n"
                "                     [--signer ID] [--signature B64] [--pretty] < MESSAGE\n"
                "Reads one bus message body on stdin and prints it as JSON (one line;\n"
                "--pretty indents). Envelopes show signer, seq, created_ms, type and the\n"
                "decoded payload (snapshots with their string table resolved), and whether\n"
                "the signature and the signer's role verify against the roster (--roster,\n"
                "else $IBP_ROSTER): \"verified\", \"reason\".\n"
                "Status messages (plain JSON) are signed in their headers over their\n"
                "subject and body: give --subject, --signer (Ibp-Signer) and --signature\n"
                "(Ibp-Signature), or $IBP_SUBJECT, $IBP_SIGNER, $IBP_SIGNATURE; they show\n"
                "as {\"type\": \"Status\", \"verified\", \"reason\", \"payload\": {...}}.\n"
                "--type (or $IBP_TYPE) is the Ibp-Type header, compared with the envelope's\n"
                "type (\"header_type\" on a mismatch, which fails verification).\n"
                "Exit 0 decoded and verified; 1 not a bus message, or not verified (a bad\n"
                "signature, an unknown signer, a role that may not send it, a header that\n"
                "disagrees, no roster): the JSON is printed all the same, the reason goes\n"
                "to stderr; 2 bad usage. --no-verify: exit 0 once decoded, no roster read.\n"
                "Watch the bus with `ibpctl watch`; with the nats CLI:\n"
                "  nats sub 'ibp.>' --translate 'ibpctl decode --roster roster.json'\n");
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
    if (no_verify)
        roster_path = NULL;
    if (roster_path && !*roster_path)
        roster_path = NULL;
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
            uint8_t *nb = ibp_grow(buf, &cap, cap + 1, 1); /* doubles */
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
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
        /* A message that does not verify fails, after printing it: also one
         * without a roster to check it against, unless --no-verify says so. */
        const char *why = NULL;
        bool verified = no_verify || ibp_decode_json_verified(j, &why);
        json_dumpf(j, stdout, pretty ? JSON_INDENT(2) : JSON_COMPACT);
        putchar('\n');
        rc = fflush(stdout) == 0 && verified ? 0 : 1;
        if (!verified)
            fprintf(stderr, "ibpctl decode: the message does not verify: %s\n", why);
        json_decref(j);
    }
    free(buf);
    ibp_roster_free(roster);
    return rc;
}
