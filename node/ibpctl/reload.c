/*
 * `ibpctl reload`: asks a running ibp-node (role monitor) to read its members,
 * services and checks files again, as SIGHUP does, and says whether it took
 * them.
 *
 *   ibpctl reload --socket PATH
 *
 * Exit codes: 0 reloaded, 1 refused (the old config stays; the reason is
 * printed) or unreachable, 2 bad usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "ibpctl.h"

static void reload_usage(FILE *out)
{
    fprintf(out, "usage: ibpctl reload --socket PATH\n"
                 "\n"
                 "Asks a running ibp-node (role monitor) to read its members, services and\n"
                 "checks files again through its control socket (<node.work_dir>/control.sock),\n"
                 "as SIGHUP does: unchanged targets keep their schedule, results of targets\n"
                 "that left the config are dropped, and a file that does not load is refused\n"
                 "with the old config kept. Prints the node's JSON answer.\n"
                 "Exit codes: 0 reloaded, 1 refused or unreachable, 2 bad usage.\n");
}

int ibpctl_cmd_reload(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            path = optarg;
            break;
        case 'h':
            reload_usage(stdout);
            return 0;
        default:
            reload_usage(stderr);
            return 2;
        }
    }
    if (!path || optind != argc) {
        reload_usage(stderr);
        return 2;
    }
    char *text = NULL;
    json_t *a = NULL;
    int rc = ibpctl_control_call("ibpctl reload", path, "{\"cmd\":\"reload\"}\n", &text, &a);
    if (rc != 0)
        return rc;
    printf("%s\n", text);
    bool ok = a && json_is_true(json_object_get(a, "ok"));
    if (!ok) {
        const char *msg = json_string_value(json_object_get(a, "error"));
        fprintf(stderr, "ibpctl reload: %s\n", msg ? msg : text);
    }
    json_decref(a);
    free(text);
    return ok ? 0 : 1;
}
