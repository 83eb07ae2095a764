/*
 * `ibpctl decode`: one bus message body on stdin to JSON on stdout (see
 * ibp/decode_json.h), so `nats sub 'ibp.>' --translate 'ibpctl decode'` shows
 * the bus readable. Exit 0 decoded, 1 not a bus message, 2 bad usage.
 */
#include <getopt.h>
#include <jansson.h>
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
    int pretty = 0;
    static const struct option opts[] = {
        {"roster", required_argument, 0, 'R'},
        {"type", required_argument, 0, 't'},
        {"pretty", no_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "R:t:ph", opts, NULL)) != -1) {
        switch (c) {
        case 'R':
            roster_path = optarg;
            break;
        case 't':
            type_name = optarg;
            break;
        case 'p':
            pretty = 1;
            break;
        case 'h':
            printf("usage: ibpctl decode [--roster FILE] [--type NAME] [--pretty] < MESSAGE\n"
                   "Reads one bus message body on stdin and prints it as JSON (one line;\n"
                   "--pretty indents). Envelopes show signer, seq, created_ms, type and the\n"
                   "decoded payload (snapshots with their string table resolved); with\n"
                   "--roster the signature and role are checked (\"verified\", \"reason\").\n"
                   "Status messages (plain JSON) pass through. --type (or $IBP_TYPE) is the\n"
                   "Ibp-Type header, compared with the envelope's type (\"header_type\" on a\n"
                   "mismatch). Use: nats sub 'ibp.>' --translate 'ibpctl decode'\n");
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
    if (!buf) {
        fprintf(stderr, "ibpctl decode: out of memory\n");
    } else if (ferror(stdin)) {
        fprintf(stderr, "ibpctl decode: cannot read stdin\n");
    } else if (len > IBP_MESSAGE_MAX_DEFAULT) {
        fprintf(stderr, "ibpctl decode: message over %u bytes\n", IBP_MESSAGE_MAX_DEFAULT);
    } else if (ibp_decode_json(buf, len, roster, hint, &j, &err) != IBP_OK) {
        fprintf(stderr, "ibpctl decode: %s\n", err.msg);
    } else {
        json_dumpf(j, stdout, pretty ? JSON_INDENT(2) : JSON_COMPACT);
        putchar('\n');
        json_decref(j);
        rc = fflush(stdout) == 0 ? 0 : 1;
    }
    free(buf);
    ibp_roster_free(roster);
    return rc;
}
