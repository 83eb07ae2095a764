/*
 * `ibpctl observe`: sends one observation to a running ibp-node through its
 * control socket (see node/daemon/include/ibp/control.h) and prints the answer.
 *
 *   ibpctl observe --socket PATH --type endpoint --check wss --member M
 *                  --domain D --endpoint URL [--ipv6] --up|--down
 *                  [--error TEXT] [--data JSON] [--check-time-ms N] [--flush]
 *
 * Exit codes: 0 the node stored it, 1 the node refused it or cannot be
 * reached, 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ibpctl.h"

#define EXIT_USAGE 2

static void observe_usage(FILE *out)
{
    fprintf(out,
            "usage: ibpctl observe --socket PATH --type site|domain|endpoint --check NAME\n"
            "                      --member NAME [--domain DOMAIN] [--endpoint URL] [--ipv6]\n"
            "                      --up|--down [--error TEXT] [--data JSON_OBJECT]\n"
            "                      [--check-time-ms N] [--flush]\n"
            "\n"
            "Sends one local observation to a running ibp-node (role monitor) through its\n"
            "control socket (<node.work_dir>/control.sock) and prints the node's JSON answer.\n"
            "Site checks take no domain or endpoint; domain checks no endpoint. --flush\n"
            "then asks the node to publish at once and to wait for JetStream's\n"
            "acknowledgement. Exit codes: 0 stored, 1 refused or unreachable, 2 bad usage.\n");
}

/* Runs one request; prints the answer; returns the exit code. */
static int send_request(const char *path, const char *request, bool *ok_out)
{
    json_t *a = NULL;
    char *answer = NULL;
    *ok_out = false;
    int rc = ibpctl_control_call("ibpctl observe", path, request, &answer, &a);
    if (rc != 0)
        return rc;
    printf("%s\n", answer);
    *ok_out = a && json_is_true(json_object_get(a, "ok"));
    if (!*ok_out) {
        const char *msg = json_string_value(json_object_get(a, "error"));
        fprintf(stderr, "ibpctl observe: refused: %s\n", msg ? msg : answer);
    }
    json_decref(a);
    free(answer);
    return *ok_out ? 0 : 1;
}

int ibpctl_cmd_observe(int argc, char **argv)
{
    const char *sock = NULL, *type = NULL, *check = NULL, *member = NULL, *domain = NULL,
               *endpoint = NULL, *error = NULL, *data = NULL, *ctime = NULL;
    int up = -1;
    bool ipv6 = false, flush = false;
    static const struct option opts[] = {
        {"socket", required_argument, 0, 's'},
        {"type", required_argument, 0, 't'},
        {"check", required_argument, 0, 'c'},
        {"member", required_argument, 0, 'm'},
        {"domain", required_argument, 0, 'd'},
        {"endpoint", required_argument, 0, 'e'},
        {"ipv6", no_argument, 0, '6'},
        {"up", no_argument, 0, 'u'},
        {"down", no_argument, 0, 'D'},
        {"error", required_argument, 0, 'E'},
        {"data", required_argument, 0, 'j'},
        {"check-time-ms", required_argument, 0, 'T'},
        {"flush", no_argument, 0, 'f'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            sock = optarg;
            break;
        case 't':
            type = optarg;
            break;
        case 'c':
            check = optarg;
            break;
        case 'm':
            member = optarg;
            break;
        case 'd':
            domain = optarg;
            break;
        case 'e':
            endpoint = optarg;
            break;
        case '6':
            ipv6 = true;
            break;
        case 'u':
        case 'D':
            if (up >= 0 && up != (c == 'u')) {
                fprintf(stderr, "ibpctl observe: give one of --up and --down\n");
                return EXIT_USAGE;
            }
            up = c == 'u';
            break;
        case 'E':
            error = optarg;
            break;
        case 'j':
            data = optarg;
            break;
        case 'T':
            ctime = optarg;
            break;
        case 'f':
            flush = true;
            break;
        case 'h':
            observe_usage(stdout);
            return 0;
        default:
            observe_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc || !sock || !type || !check || !member || up < 0) {
        fprintf(stderr, "ibpctl observe: --socket, --type, --check, --member and one of "
                        "--up/--down are required (see --help)\n");
        return EXIT_USAGE;
    }
    if (strcmp(type, "site") != 0 && strcmp(type, "domain") != 0 && strcmp(type, "endpoint") != 0) {
        fprintf(stderr, "ibpctl observe: --type must be site, domain or endpoint\n");
        return EXIT_USAGE;
    }
    json_t *req = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "cmd", "observe", "type", type,
                            "check", check, "member", member, "ipv6", ipv6, "up", up);
    if (!req) {
        fprintf(stderr, "ibpctl observe: arguments are not valid UTF-8\n");
        return EXIT_USAGE;
    }
    int rc = EXIT_USAGE;
    if ((domain && json_object_set_new(req, "domain", json_string(domain)) != 0) ||
        (endpoint && json_object_set_new(req, "endpoint", json_string(endpoint)) != 0) ||
        (error && json_object_set_new(req, "error", json_string(error)) != 0)) {
        fprintf(stderr, "ibpctl observe: arguments are not valid UTF-8\n");
        goto out;
    }
    if (data) {
        json_error_t jerr;
        json_t *d = json_loads(data, 0, &jerr);
        if (!d || !json_is_object(d)) {
            fprintf(stderr, "ibpctl observe: --data must be a JSON object%s%s\n", d ? "" : ": ",
                    d ? "" : jerr.text);
            json_decref(d);
            goto out;
        }
        json_object_set_new(req, "data", d);
    }
    if (ctime) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(ctime, &end, 10);
        if (errno || !*ctime || *end || v < 0) {
            fprintf(stderr, "ibpctl observe: --check-time-ms must be a non-negative integer\n");
            goto out;
        }
        json_object_set_new(req, "check_time_ms", json_integer(v));
    }
    char *line = json_dumps(req, JSON_COMPACT);
    size_t n = line ? strlen(line) : 0;
    char *framed = line ? malloc(n + 2) : NULL;
    if (!framed) {
        free(line);
        fprintf(stderr, "ibpctl observe: out of memory\n");
        rc = 1;
        goto out;
    }
    memcpy(framed, line, n);
    framed[n] = '\n';
    framed[n + 1] = '\0';
    free(line);
    bool ok = false;
    rc = send_request(sock, framed, &ok);
    free(framed);
    if (rc == 0 && flush)
        rc = send_request(sock, "{\"cmd\":\"flush\"}\n", &ok);
out:
    json_decref(req);
    return rc;
}
