/*
 * ibp-member-double: one member double as a program, for the local cluster's
 * demo and for tests that want it in a process of its own. Prints
 * "PORT <n>" once it listens; runs until SIGTERM or SIGINT.
 *
 *   ibp-member-double --kind tls|substrate|eth --cert FILE --key FILE
 *                     [--listen ADDR] [--port N] [--chain NAME] [--peers N]
 *                     [--syncing] [--no-archive] [--delay-ms N] [--hang]
 *                     [--garbage] [--oversized] [--close-mid-call]
 *                     [--chain-id N]
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "member_double.h"

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"kind", required_argument, 0, 'k'},     {"cert", required_argument, 0, 'c'},
        {"key", required_argument, 0, 'K'},      {"listen", required_argument, 0, 'l'},
        {"port", required_argument, 0, 'p'},     {"chain", required_argument, 0, 'C'},
        {"peers", required_argument, 0, 'P'},    {"syncing", no_argument, 0, 's'},
        {"no-archive", no_argument, 0, 'A'},     {"delay-ms", required_argument, 0, 'd'},
        {"hang", no_argument, 0, 'h'},           {"garbage", no_argument, 0, 'g'},
        {"oversized", no_argument, 0, 'o'},      {"close-mid-call", no_argument, 0, 'x'},
        {"chain-id", required_argument, 0, 'i'}, {0, 0, 0, 0}};
    ibp_double_kind kind = IBP_DOUBLE_SUBSTRATE;
    const char *cert = NULL, *key = NULL, *listen_addr = "127.0.0.1";
    unsigned port = 0;
    ibp_double_behaviour b;
    ibp_double_behaviour_init(&b);
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            kind = strcmp(optarg, "tls") == 0   ? IBP_DOUBLE_TLS
                   : strcmp(optarg, "eth") == 0 ? IBP_DOUBLE_ETH
                                                : IBP_DOUBLE_SUBSTRATE;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'K':
            key = optarg;
            break;
        case 'l':
            listen_addr = optarg;
            break;
        case 'p':
            port = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'C':
            snprintf(b.chain, sizeof b.chain, "%s", optarg);
            break;
        case 'P':
            b.peers = strtoll(optarg, NULL, 10);
            break;
        case 's':
            b.syncing = true;
            break;
        case 'A':
            b.archive = false;
            break;
        case 'd':
            b.delay_ms = strtoll(optarg, NULL, 10);
            break;
        case 'h':
            b.hang_after_upgrade = true;
            break;
        case 'g':
            b.garbage = true;
            break;
        case 'o':
            b.oversized = true;
            break;
        case 'x':
            b.close_mid_call = true;
            break;
        case 'i':
            b.chain_id = strtoull(optarg, NULL, 10);
            break;
        default:
            fprintf(stderr, "ibp-member-double: see the comment at the top of its source\n");
            return 2;
        }
    }
    if (!cert || !key) {
        fprintf(stderr, "ibp-member-double: --cert and --key are required\n");
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    unsigned got = 0;
    ibp_double *d = ibp_double_start(kind, listen_addr, port, cert, key, &got);
    if (!d)
        return 1;
    ibp_double_set(d, &b);
    printf("PORT %u\n", got);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    ibp_double_stop(d);
    return 0;
}
