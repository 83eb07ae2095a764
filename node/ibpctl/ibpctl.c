/*
 * ibpctl: the operator's command-line tool.
 *
 *   ibpctl keygen [--out FILE] [--nkey-out FILE] [--node ID] [--roles LIST] [--roster FILE]
 *   ibpctl roster add --roster FILE --node ID --roles LIST (--key FILE | --public-key B64)
 *                     [--nats-nkey U...]
 *   ibpctl nats-auth --roster FILE [--account NAME] [--admin-id ID] | --role-users DIR
 *   ibpctl roster list --roster FILE
 *   ibpctl smoke --nats URL --mysql-host H --mysql-port P --mysql-user U ...
 *   ibpctl observe --socket PATH --type T --check C --member M ... --up|--down
 *   ibpctl decode [--roster FILE] [--type NAME] < MESSAGE
 *   ibpctl override enable|disable MEMBER --key FILE --node ADMIN_ID [--reason TEXT]
 *   ibpctl snapshot [--nats URL] [--roster FILE] [--epoch N]
 *   ibpctl audit EPOCH --roster FILE [--nats URL]
 *   ibpctl status [--nats URL] [--member M] [--domain D]
 *   ibpctl watch [SUBJECT] [--stream NAME --from-seq N | --since T] [--compact]
 *   ibpctl services [NAME] [--compact]
 *   ibpctl events | usage [flush] | sla --member M --from T --to T
 *
 * Every command that talks to NATS takes --nats URL and the credentials of
 * nats_opts.c (--nats-nkey, --nats-creds, --nats-user ..., --nats-ca ...),
 * with defaults from the environment (NATS_URL, IBP_NATS_NKEY_FILE, ...).
 *
 * Exit codes: 0 success, 1 the operation failed, 2 bad usage.
 * Machine-readable output (roster list, smoke) is JSON on stdout; progress
 * and errors go to stderr.
 */
#include <getopt.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/key.h"
#include "ibp/log.h"
#include "ibp/nkey.h"
#include "ibp/roster.h"
#include "ibpctl.h"

#define EXIT_USAGE 2

static void usage_main(FILE *out)
{
    fprintf(out, "usage: ibpctl <command> [options]\n"
                 "\n"
                 "commands:\n"
                 "  keygen       generate an Ed25519 key file and/or a NATS nkey seed (mode 0600) "
                 "and optionally record them in a roster\n"
                 "  roster add   add a node and its public key to a roster file\n"
                 "  nats-auth    render the nats-server users and permissions of a roster\n"
                 "  roster list  print a roster as JSON\n"
                 "  events       outage and override events of a member (from ibp-persist)\n"
                 "  usage        DNS hits by domain, member or country (from ibp-persist);\n"
                 "               `usage flush`: a dns node flushes now, persist stores it\n"
                 "  sla          availability of a member over a window (from ibp-persist)\n"
                 "  replay       rebuild the database from HITS and EVENTS (runs ibp-persist "
                 "replay)\n"
                 "  smoke        end-to-end check of NATS JetStream and MariaDB with a signed "
                 "message\n"
                 "  observe      send one observation to a running ibp-node (control socket)\n"
                 "  reload       make a running monitor read its network files again\n"
                 "  decode       print one bus message (stdin) as JSON, optionally verified\n"
                 "  override     sign and send an admin override (disable/enable a member)\n"
                 "  snapshot     the last (or a given) official snapshot from OFFICIAL\n"
                 "  audit        re-verify an epoch's changes against the signed batches\n"
                 "  status       current official status of members and domains (STATUS)\n"
                 "  watch        print bus messages (default: status changes) decoded and "
                 "verified,\n"
                 "               live or from a stream\n"
                 "  services     the daemons answering $SRV (NATS micro services) with their "
                 "stats\n"
                 "\n"
                 "Each command takes --help. Exit codes: 0 ok, 1 failed, 2 bad usage.\n"
                 "Commands that talk to NATS authenticate with --nats-nkey/--nats-creds/\n"
                 "--nats-user or IBP_NATS_NKEY_FILE, IBP_NATS_CREDS, ... (see their --help).\n");
}

static int fail(const ibp_err *err)
{
    fprintf(stderr, "ibpctl: %s\n", err->msg[0] ? err->msg : ibp_strerror(err->code));
    return 1;
}

/* ---- keygen ------------------------------------------------------------- */

static int cmd_keygen(int argc, char **argv)
{
    const char *out = NULL, *nkey_out = NULL, *node = NULL, *roles_text = NULL, *roster_path = NULL;
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'},
        {"nkey-out", required_argument, 0, 'k'},
        {"node", required_argument, 0, 'n'},
        {"roles", required_argument, 0, 'r'},
        {"roster", required_argument, 0, 'R'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "o:k:n:r:R:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'k':
            nkey_out = optarg;
            break;
        case 'n':
            node = optarg;
            break;
        case 'r':
            roles_text = optarg;
            break;
        case 'R':
            roster_path = optarg;
            break;
        case 'h':
            printf("usage: ibpctl keygen [--out FILE] [--nkey-out FILE]\n"
                   "                     [--node ID [--roles LIST] --roster FILE]\n"
                   "--out writes a new Ed25519 signing key to FILE and prints its public key\n"
                   "(base64). --nkey-out writes a new NATS user nkey seed ('SU...') to FILE and\n"
                   "prints its public key ('U...'): the node's NATS identity, a key of its own\n"
                   "(never the signing key). Files get mode 0600 and are never overwritten.\n"
                   "With --roster: --out adds ID with LIST (e.g. monitor,consensus) to the roster\n"
                   "(created if needed); --nkey-out records the nkey as the node's nats_nkey\n"
                   "(alone, for a node already in the roster). Render the nats-server\n"
                   "permissions from the roster with `ibpctl nats-auth`.\n");
            return 0;
        default:
            return EXIT_USAGE;
        }
    }
    if ((!out && !nkey_out) || (roster_path && (!node || (out && !roles_text)))) {
        fprintf(stderr, "ibpctl keygen: --out and/or --nkey-out is required; --roster needs "
                        "--node, and --roles with --out\n");
        return EXIT_USAGE;
    }
    ibp_err err = {0};
    unsigned roles = 0;
    if (roles_text && ibp_roles_parse_list(roles_text, &roles, &err) != IBP_OK)
        return fail(&err);
    if (roster_path && !out) {
        /* Only an nkey: the node must be in the roster already (checked before writing). */
        ibp_roster *r = NULL;
        if (ibp_roster_load(roster_path, &r, &err) != IBP_OK)
            return fail(&err);
        bool known = ibp_roster_find(r, node) != NULL;
        ibp_roster_free(r);
        if (!known) {
            fprintf(stderr,
                    "ibpctl keygen: node '%s' is not in %s (add it with --out or "
                    "`ibpctl roster add`)\n",
                    node, roster_path);
            return 1;
        }
    }
    uint8_t pk[IBP_PUBKEY_BYTES];
    if (out) {
        ibp_key key;
        if (ibp_key_generate(&key) != IBP_OK || ibp_key_save(&key, out, &err) != IBP_OK) {
            ibp_key_wipe(&key);
            return err.msg[0] ? fail(&err) : 1;
        }
        memcpy(pk, key.pk, sizeof pk);
        ibp_key_wipe(&key);
        char b64[IBP_PUBKEY_B64_SIZE];
        ibp_key_public_b64(pk, b64);
        printf("%s\n", b64);
    }
    char nkey_pub[IBP_NKEY_PUBLIC_SIZE] = "";
    if (nkey_out) {
        char seed[IBP_NKEY_SEED_SIZE];
        ibp_status st = ibp_nkey_generate_user(seed, nkey_pub);
        if (st == IBP_OK)
            st = ibp_nkey_save_user_seed(nkey_out, seed, &err);
        sodium_memzero(seed, sizeof seed);
        if (st != IBP_OK)
            return err.msg[0] ? fail(&err) : 1;
        printf("%s\n", nkey_pub);
    }
    if (!roster_path)
        return 0;
    if (out && ibpctl_roster_add_key(roster_path, node, roles, pk, &err) != IBP_OK)
        return fail(&err);
    if (nkey_out && ibpctl_roster_set_nkey(roster_path, node, nkey_pub, &err) != IBP_OK)
        return fail(&err);
    return 0;
}

/* ---- roster ------------------------------------------------------------- */

ibp_status ibpctl_roster_set_nkey(const char *path, const char *node, const char *nkey,
                                  ibp_err *err)
{
    ibp_roster *r = NULL;
    ibp_status st = ibp_roster_load(path, &r, err);
    if (st != IBP_OK)
        return st;
    st = ibp_roster_set_nats_nkey(r, node, nkey, err);
    if (st == IBP_OK)
        st = ibp_roster_save(r, path, err);
    ibp_roster_free(r);
    return st;
}

ibp_status ibpctl_roster_add_key(const char *path, const char *node, unsigned roles,
                                 const uint8_t pk[IBP_PUBKEY_BYTES], ibp_err *err)
{
    ibp_roster *r = NULL;
    ibp_status st = ibp_roster_load(path, &r, err);
    if (st != IBP_OK) {
        FILE *f = fopen(path, "r");
        if (f) { /* exists but is broken: never overwrite it */
            fclose(f);
            return st;
        }
        if ((st = ibp_roster_new(&r)) != IBP_OK)
            return ibp_err_set(err, st, "roster: out of memory");
    }
    st = ibp_roster_add(r, node, pk, roles, err);
    if (st == IBP_OK)
        st = ibp_roster_save(r, path, err);
    ibp_roster_free(r);
    return st;
}

static int cmd_roster_add(int argc, char **argv)
{
    const char *path = NULL, *node = NULL, *roles_text = NULL, *key_file = NULL, *pub = NULL,
               *nkey = NULL;
    static const struct option opts[] = {
        {"roster", required_argument, 0, 'R'},
        {"node", required_argument, 0, 'n'},
        {"roles", required_argument, 0, 'r'},
        {"key", required_argument, 0, 'k'},
        {"public-key", required_argument, 0, 'p'},
        {"nats-nkey", required_argument, 0, 'N'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "R:n:r:k:p:N:h", opts, NULL)) != -1) {
        switch (c) {
        case 'R':
            path = optarg;
            break;
        case 'n':
            node = optarg;
            break;
        case 'r':
            roles_text = optarg;
            break;
        case 'k':
            key_file = optarg;
            break;
        case 'p':
            pub = optarg;
            break;
        case 'N':
            nkey = optarg;
            break;
        case 'h':
            printf("usage: ibpctl roster add --roster FILE --node ID --roles LIST\n"
                   "                         (--key SECRET_FILE | --public-key BASE64)\n"
                   "                         [--nats-nkey U...]\n"
                   "Adds a node to the roster file (created if missing). Roles: monitor,\n"
                   "consensus, dns, persist, admin (comma-separated). --nats-nkey records the\n"
                   "node's public NATS user nkey (its NATS identity, see `ibpctl nats-auth`).\n");
            return 0;
        default:
            return EXIT_USAGE;
        }
    }
    if (!path || !node || !roles_text || (!key_file == !pub)) {
        fprintf(stderr, "ibpctl roster add: needs --roster, --node, --roles and one of --key "
                        "or --public-key\n");
        return EXIT_USAGE;
    }
    ibp_err err = {0};
    unsigned roles;
    uint8_t pk[IBP_PUBKEY_BYTES];
    if (ibp_roles_parse_list(roles_text, &roles, &err) != IBP_OK)
        return fail(&err);
    if (key_file) {
        ibp_key key;
        if (ibp_key_load(key_file, &key, &err) != IBP_OK)
            return fail(&err);
        memcpy(pk, key.pk, sizeof pk);
        ibp_key_wipe(&key);
    } else if (ibp_key_public_parse(pub, pk) != IBP_OK) {
        fprintf(stderr, "ibpctl roster add: --public-key is not base64 of 32 bytes\n");
        return EXIT_USAGE;
    }
    if (nkey && ibp_nkey_decode_user_public(nkey, NULL, &err) != IBP_OK) {
        fprintf(stderr, "ibpctl roster add: --nats-nkey: %s\n", err.msg);
        return EXIT_USAGE;
    }
    if (ibpctl_roster_add_key(path, node, roles, pk, &err) != IBP_OK)
        return fail(&err);
    if (nkey && ibpctl_roster_set_nkey(path, node, nkey, &err) != IBP_OK)
        return fail(&err);
    return 0;
}

static int cmd_roster_list(int argc, char **argv)
{
    const char *path = NULL;
    static const struct option opts[] = {
        {"roster", required_argument, 0, 'R'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "R:h", opts, NULL)) != -1) {
        switch (c) {
        case 'R':
            path = optarg;
            break;
        case 'h':
            printf("usage: ibpctl roster list --roster FILE\nPrints the roster as JSON.\n");
            return 0;
        default:
            return EXIT_USAGE;
        }
    }
    if (!path) {
        fprintf(stderr, "ibpctl roster list: --roster is required\n");
        return EXIT_USAGE;
    }
    ibp_roster *r;
    ibp_err err = {0};
    if (ibp_roster_load(path, &r, &err) != IBP_OK)
        return fail(&err);
    printf("[");
    for (size_t i = 0; i < ibp_roster_count(r); i++) {
        const ibp_roster_node *n = ibp_roster_at(r, i);
        char b64[IBP_PUBKEY_B64_SIZE], roles[64];
        ibp_key_public_b64(n->pk, b64);
        ibp_roles_format(n->roles, roles, sizeof roles);
        printf("%s\n  {\"id\": \"%s\", \"public_key\": \"%s\", \"roles\": \"%s\"", i ? "," : "",
               n->id, b64, roles);
        if (n->nats_nkey[0])
            printf(", \"nats_nkey\": \"%s\"", n->nats_nkey);
        printf("}");
    }
    printf("\n]\n");
    ibp_roster_free(r);
    return 0;
}

static int cmd_roster(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "add") == 0)
        return cmd_roster_add(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "list") == 0)
        return cmd_roster_list(argc - 1, argv + 1);
    fprintf(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr,
            "usage: ibpctl roster add|list [--help]\n");
    return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : EXIT_USAGE;
}

/* ---- dispatch ----------------------------------------------------------- */

static const struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
} commands[] = {
    {"keygen", cmd_keygen},
    {"roster", cmd_roster},
    {"nats-auth", ibpctl_cmd_nats_auth},
    {"smoke", ibpctl_cmd_smoke},
    {"observe", ibpctl_cmd_observe},
    {"reload", ibpctl_cmd_reload},
    {"events", ibpctl_cmd_events},
    {"usage", ibpctl_cmd_usage},
    {"replay", ibpctl_cmd_replay},
    {"decode", ibpctl_cmd_decode},
    {"override", ibpctl_cmd_override},
    {"snapshot", ibpctl_cmd_snapshot},
    {"audit", ibpctl_cmd_audit},
    {"status", ibpctl_cmd_status},
    {"watch", ibpctl_cmd_watch},
    {"services", ibpctl_cmd_services},
    {"sla", ibpctl_cmd_sla},
    {"check", ibpctl_cmd_check},
};

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage_main(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *lvl = getenv("IBP_LOG_LEVEL");
    if (lvl && ibp_log_level_parse(lvl) >= 0)
        ibp_log_set_level((ibp_log_level)ibp_log_level_parse(lvl));
    if (ibp_crypto_init() != IBP_OK) {
        fprintf(stderr, "ibpctl: libsodium failed to initialise\n");
        return 1;
    }
    ibpctl_nats_scan_argv(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "ibpctl: unknown command '%s'\n", argv[1]);
    usage_main(stderr);
    return EXIT_USAGE;
}
