/*
 * `ibpctl check`: runs one check once, now, from the command line, and
 * prints each result as JSON with its Data, so an operator can see why a
 * member is down. Two ways to name what to check:
 *
 *   ibpctl check --members F --services F --checks F --check NAME --member M
 *                [--domain D | --endpoint URL] [--ipv4 | --ipv6]
 *       the targets of that check for that member, as a monitor builds them
 *       (the member's own ServiceIPv4/IPv6, SNI/Host = the domain); what
 *       cannot run is printed too, with the reason.
 *   ibpctl check --module tcp|ping|ssl|wss|ethrpc --addr IP --host NAME
 *                [--port N] [--path P] [--network-name NAME] [--options JSON]
 *       one target given by hand (an explicit address and host name).
 *
 * Common: --timeout-ms N (default 10000), --ca-file F, --max-response-bytes N.
 * Output: one JSON object per line: check, module, type, member, domain,
 * endpoint, ipv6, addr, port, up, error, duration_ms, data. Exit code 0 when
 * every result is up, 1 when one is down (or cannot run), 2 on bad usage or
 * config.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "ibp/check_plan.h"
#include "ibp/check_run.h"
#include "ibp/network.h"
#include "ibpctl.h"

#define EXIT_DOWN 1
#define EXIT_USAGE 2

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ibpctl check --members F --services F --checks F --check NAME --member M\n"
            "                    [--domain D | --endpoint URL] [--ipv4 | --ipv6]\n"
            "       ibpctl check --module tcp|ping|ssl|wss|ethrpc --addr IP --host NAME\n"
            "                    [--port N] [--path P] [--network-name NAME] [--options JSON]\n"
            "  common: [--timeout-ms N] [--ca-file F] [--max-response-bytes N]\n"
            "Runs the check once and prints each result as JSON (with its Data).\n"
            "Exit code 0 all up, 1 one down or cannot run, 2 bad usage or config.\n");
}

typedef struct args {
    const char *members, *services, *checks, *check, *member, *domain, *endpoint;
    const char *module, *addr, *host, *path, *network_name, *options, *ca_file;
    unsigned port;
    long timeout_ms;
    long max_response;
    int family; /* 0 both, 4, 6 */
} args;

static void print_result(const ibp_check_target *t, const ibp_check_outcome *o)
{
    json_error_t jerr;
    json_t *data = json_loads(o->data_json ? o->data_json : "{}", 0, &jerr);
    json_t *obj =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:s,s:i,s:b,s:s,s:I,s:o}", "check", t->check,
                  "module", ibp_check_module_name(t->module), "type", ibp_check_type_name(t->type),
                  "member", t->member, "domain", t->domain, "endpoint", t->endpoint, "ipv6",
                  t->ipv6, "addr", t->addr, "port", (int)t->port, "up", o->up, "error", o->error,
                  "duration_ms", (json_int_t)o->duration_ms, "data", data ? data : json_object());
    char *s =
        obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    printf("%s\n", s ? s : "{}");
    free(s);
    json_decref(obj);
}

static bool selected(const args *a, const ibp_check_target *t)
{
    if (strcmp(t->check, a->check) != 0 || strcmp(t->member, a->member) != 0)
        return false;
    if (a->family == 4 && t->ipv6)
        return false;
    if (a->family == 6 && !t->ipv6)
        return false;
    if (a->domain && strcasecmp(t->domain, a->domain) != 0)
        return false;
    return !a->endpoint || strcmp(t->endpoint, a->endpoint) == 0;
}

static int run_from_config(const args *a, const ibp_check_env *env)
{
    ibp_network *net = NULL;
    ibp_err err = {0};
    ibp_check_plan plan = {0};
    if (ibp_network_load(a->members, a->services, a->checks, &net, &err) != IBP_OK ||
        ibp_check_plan_build(net, &plan, &err) != IBP_OK) {
        fprintf(stderr, "ibpctl check: %s\n", err.msg);
        ibp_network_free(net);
        return EXIT_USAGE;
    }
    int rc = 0;
    size_t ran = 0;
    for (size_t i = 0; i < plan.count; i++) {
        ibp_check_target *t = plan.targets[i];
        if (!selected(a, t))
            continue;
        if (a->timeout_ms > 0)
            t->timeout_ms = a->timeout_ms;
        ibp_check_outcome o;
        ibp_check_run(t, env, &o);
        print_result(t, &o);
        if (!o.up)
            rc = EXIT_DOWN;
        ibp_check_outcome_clear(&o);
        ran++;
    }
    for (size_t i = 0; i < plan.skip_count; i++) {
        const ibp_check_skip *s = &plan.skips[i];
        if (strcmp(s->check, a->check) != 0 || (s->member[0] && strcmp(s->member, a->member)))
            continue;
        json_t *obj = json_pack("{s:s,s:s,s:s}", "check", s->check, "member", s->member,
                                "cannot_run", s->reason);
        char *txt = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("%s\n", txt ? txt : "{}");
        free(txt);
        json_decref(obj);
        rc = EXIT_DOWN;
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "ibpctl check: no target of check '%s' for member '%s'%s%s%s%s\n", a->check,
                a->member, a->domain ? " domain " : "", a->domain ? a->domain : "",
                a->endpoint ? " endpoint " : "", a->endpoint ? a->endpoint : "");
        rc = EXIT_USAGE;
    }
    ibp_check_plan_free(&plan);
    ibp_network_free(net);
    return rc;
}

static int run_by_hand(const args *a, const ibp_check_env *env)
{
    ibp_check_target t = {0};
    ibp_err err = {0};
    if (ibp_check_params_parse(a->module, a->options ? a->options : "{}", &t.params, &err) !=
        IBP_OK) {
        fprintf(stderr, "ibpctl check: %s\n", err.msg);
        return EXIT_USAGE;
    }
    bool v6 = false;
    if (!t.params.module_known || !ibp_check_ip_literal(a->addr, &v6)) {
        fprintf(stderr, "ibpctl check: --module must be tcp, ping, ssl, wss or ethrpc and "
                        "--addr an IP address\n");
        ibp_check_params_free(&t.params);
        return EXIT_USAGE;
    }
    t.module = t.params.module;
    t.type = t.module == IBP_CHECK_MODULE_PING  ? IBP_CHECK_SITE
             : t.module == IBP_CHECK_MODULE_SSL ? IBP_CHECK_DOMAIN
                                                : IBP_CHECK_ENDPOINT;
    t.check = (char *)a->module;
    t.member = "";
    t.host = (char *)(a->host ? a->host : "");
    t.domain = t.type == IBP_CHECK_SITE ? "" : t.host;
    t.endpoint = "";
    t.path = (char *)(a->path ? a->path : "/");
    t.addr = (char *)a->addr;
    t.network_name = (char *)(a->network_name ? a->network_name : "");
    t.options = "";
    t.ipv6 = v6;
    t.tls = t.module != IBP_CHECK_MODULE_TCP;
    t.port = a->port                                                                 ? a->port
             : t.module == IBP_CHECK_MODULE_TCP || t.module == IBP_CHECK_MODULE_PING ? 0
                                                                                     : 443;
    t.timeout_ms = a->timeout_ms > 0 ? a->timeout_ms : 10000;
    if (t.module == IBP_CHECK_MODULE_TCP && !t.port) {
        fprintf(stderr, "ibpctl check: the tcp module needs --port\n");
        ibp_check_params_free(&t.params);
        return EXIT_USAGE;
    }
    ibp_check_outcome o;
    ibp_check_run(&t, env, &o);
    print_result(&t, &o);
    int rc = o.up ? 0 : EXIT_DOWN;
    ibp_check_outcome_clear(&o);
    ibp_check_params_free(&t.params);
    return rc;
}

int ibpctl_cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"members", required_argument, 0, 'm'},
        {"services", required_argument, 0, 's'},
        {"checks", required_argument, 0, 'c'},
        {"check", required_argument, 0, 'C'},
        {"member", required_argument, 0, 'M'},
        {"domain", required_argument, 0, 'd'},
        {"endpoint", required_argument, 0, 'e'},
        {"ipv4", no_argument, 0, '4'},
        {"ipv6", no_argument, 0, '6'},
        {"module", required_argument, 0, 'o'},
        {"addr", required_argument, 0, 'a'},
        {"host", required_argument, 0, 'H'},
        {"port", required_argument, 0, 'p'},
        {"path", required_argument, 0, 'P'},
        {"network-name", required_argument, 0, 'n'},
        {"options", required_argument, 0, 'O'},
        {"timeout-ms", required_argument, 0, 't'},
        {"ca-file", required_argument, 0, 'A'},
        {"max-response-bytes", required_argument, 0, 'R'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    args a = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            a.members = optarg;
            break;
        case 's':
            a.services = optarg;
            break;
        case 'c':
            a.checks = optarg;
            break;
        case 'C':
            a.check = optarg;
            break;
        case 'M':
            a.member = optarg;
            break;
        case 'd':
            a.domain = optarg;
            break;
        case 'e':
            a.endpoint = optarg;
            break;
        case '4':
            a.family = 4;
            break;
        case '6':
            a.family = 6;
            break;
        case 'o':
            a.module = optarg;
            break;
        case 'a':
            a.addr = optarg;
            break;
        case 'H':
            a.host = optarg;
            break;
        case 'p':
            a.port = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'P':
            a.path = optarg;
            break;
        case 'n':
            a.network_name = optarg;
            break;
        case 'O':
            a.options = optarg;
            break;
        case 't':
            a.timeout_ms = strtol(optarg, NULL, 10);
            break;
        case 'A':
            a.ca_file = optarg;
            break;
        case 'R':
            a.max_response = strtol(optarg, NULL, 10);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc || (a.port > 65535)) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (ibp_check_global_init() != IBP_OK) {
        fprintf(stderr, "ibpctl check: libcurl failed to initialise\n");
        return 1;
    }
    ibp_check_trust *trust = NULL;
    ibp_err err = {0};
    if (ibp_check_trust_load(a.ca_file, &trust, &err) != IBP_OK) {
        fprintf(stderr, "ibpctl check: %s\n", err.msg);
        return EXIT_USAGE;
    }
    ibp_check_env env = {.trust = trust,
                         .max_response_bytes = a.max_response > 0 ? (size_t)a.max_response : 0};
    int rc;
    if (a.module && a.addr) {
        rc = run_by_hand(&a, &env);
    } else if (!a.module && a.members && a.services && a.checks && a.check && a.member) {
        rc = run_from_config(&a, &env);
    } else {
        usage(stderr);
        rc = EXIT_USAGE;
    }
    ibp_check_trust_free(trust);
    return rc;
}
