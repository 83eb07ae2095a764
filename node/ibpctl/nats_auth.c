/*
 * `ibpctl nats-auth`: the nats-server users and permissions of a roster
 * (DESIGN.md §13), as a config file to include from every server's config.
 *
 * One nkey user per roster node that has a nats_nkey, allowed exactly what
 * the code of its roles does on the bus (permissions() below lists it, role
 * by role). By default in an `authorization` block, i.e. in the server's
 * global account, whose JetStream nats-server 2.9 enables with the server's:
 * streams created before authentication was turned on stay where they are
 * (JetStream keeps each account's streams apart, so moving the users into
 * a named account would start from empty streams, and replicas and persist
 * keep stream sequences). --account NAME puts them into
 * `accounts { NAME { jetstream: enabled, users: [...] } }` instead, for a
 * server that hosts other accounts too.
 *
 * --role-users DIR is for test harnesses: one user per role (monitor,
 * consensus, dns, persist, admin) with a random password kept in
 * DIR/<role>.password (mode 0600, reused when present), and the node id in
 * each subject replaced by a wildcard (ibp.local.* for monitor...).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ibp/atomic_file.h"
#include "ibp/bus.h"
#include "ibp/roster.h"
#include "ibp/subject.h"
#include "ibpctl.h"

#define EXIT_USAGE 2
#define MAX_SUBJECTS 96
#define SUBJECT_CAP 160

/* The seven streams (ibp/bus.h). */
static const char *const STREAMS[] = {IBP_STREAM_LOCAL,      IBP_STREAM_OFFICIAL, IBP_STREAM_STATUS,
                                      IBP_STREAM_EVENTS,     IBP_STREAM_HITS,
                                      IBP_STREAM_CHECKPOINT, IBP_STREAM_COSIGN};

typedef struct list {
    char s[MAX_SUBJECTS][SUBJECT_CAP];
    size_t n;
} list;

typedef struct perms {
    list pub, pub_deny, sub;
} perms;

static void add(list *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(list *l, const char *fmt, ...)
{
    char buf[SUBJECT_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->s[i], buf) == 0)
            return;
    if (l->n < MAX_SUBJECTS)
        memcpy(l->s[l->n++], buf, sizeof buf);
}

/* Checking a stream, creating it when missing and bringing it to the
 * node's stream settings (ibp_bus_ensure_streams). */
static void ensure(perms *p, const char *stream)
{
    add(&p->pub, "$JS.API.STREAM.INFO.%s", stream);
    add(&p->pub, "$JS.API.STREAM.CREATE.%s", stream);
    add(&p->pub, "$JS.API.STREAM.UPDATE.%s", stream);
}

/*
 * Single messages of a stream, by sequence or the last of a subject:
 * js_GetMsg and js_GetLastMsg ask $JS.API.STREAM.MSG.GET.<stream>,
 * js_DirectGetMsg $JS.API.DIRECT.GET.<stream> and (last per subject)
 * $JS.API.DIRECT.GET.<stream>.<subject>.
 */
static void read_single(perms *p, const char *stream)
{
    add(&p->pub, "$JS.API.STREAM.MSG.GET.%s", stream);
    add(&p->pub, "$JS.API.DIRECT.GET.%s", stream);
    add(&p->pub, "$JS.API.DIRECT.GET.%s.>", stream);
}

/*
 * Reading a stream through an ordered push consumer (js_SubscribeSync with
 * Ordered: the official subscriber, the consensus replica): nats.c 3.4.1
 * creates it as an ephemeral consumer on $JS.API.CONSUMER.CREATE.<stream>
 * (the 2.9 form with name and filter is allowed too, for newer clients),
 * deletes it when the subscription goes, and answers its flow-control
 * requests on $JS.FC.<stream>.>. Plus single messages and stream info (the
 * snapshot chain, the replica's lag).
 */
static void read_ordered(perms *p, const char *stream)
{
    add(&p->pub, "$JS.API.STREAM.INFO.%s", stream);
    add(&p->pub, "$JS.API.CONSUMER.CREATE.%s", stream);
    add(&p->pub, "$JS.API.CONSUMER.CREATE.%s.>", stream);
    add(&p->pub, "$JS.API.CONSUMER.DELETE.%s.*", stream);
    add(&p->pub, "$JS.FC.%s.>", stream);
    read_single(p, stream);
}

/*
 * Reading a stream through durable pull consumers (persist, and its replay
 * with temporary durables): nats.c 3.4.1 creates them on
 * $JS.API.CONSUMER.DURABLE.CREATE.<stream>.<durable> (the 2.9 form
 * CONSUMER.CREATE.<stream>.<name>[.<filter>] is allowed too), then info,
 * delete, next-message requests and acknowledgements ($JS.ACK.<stream>.>,
 * granted outright: allow_responses would refuse an acknowledgement sent
 * more than its expiry after the message, e.g. after a MariaDB outage).
 */
static void read_pull(perms *p, const char *stream)
{
    add(&p->pub, "$JS.API.STREAM.INFO.%s", stream);
    add(&p->pub, "$JS.API.CONSUMER.CREATE.%s.>", stream);
    add(&p->pub, "$JS.API.CONSUMER.DURABLE.CREATE.%s.*", stream);
    add(&p->pub, "$JS.API.CONSUMER.INFO.%s.*", stream);
    add(&p->pub, "$JS.API.CONSUMER.DELETE.%s.*", stream);
    add(&p->pub, "$JS.API.CONSUMER.MSG.NEXT.%s.*", stream);
    add(&p->pub, "$JS.ACK.%s.>", stream);
}

/*
 * The permissions of a node with roles whose own subjects use id (a node id,
 * or "*" for --role-users). admin_id: the subject token of the admin's
 * overrides.
 */
static void permissions(unsigned roles, const char *id, const char *admin_id, perms *p)
{
    memset(p, 0, sizeof *p);
    /* Every daemon: JetStream API answers and its ordered consumers' messages
     * arrive on its inboxes; it answers $SRV.PING|INFO|STATS (replies through
     * allow_responses). */
    add(&p->sub, "_INBOX.>");
    if (roles & (IBP_ROLE_MONITOR | IBP_ROLE_CONSENSUS | IBP_ROLE_DNS | IBP_ROLE_PERSIST))
        add(&p->sub, "$SRV.>");
    /* Every ibp-node role keeps its official store current from OFFICIAL,
     * the replicas' statements that certify each epoch (COSIGN, read like
     * OFFICIAL) and the replicas' heartbeats. */
    if (roles & (IBP_ROLE_MONITOR | IBP_ROLE_CONSENSUS | IBP_ROLE_DNS)) {
        ensure(p, IBP_STREAM_OFFICIAL);
        read_ordered(p, IBP_STREAM_OFFICIAL);
        ensure(p, IBP_STREAM_COSIGN);
        read_ordered(p, IBP_STREAM_COSIGN);
        add(&p->sub, "ibp.official.>");
    }
    if (roles & IBP_ROLE_MONITOR) {
        add(&p->pub, "ibp.local.%s", id);
        ensure(p, IBP_STREAM_LOCAL);
        /* Its own last message, to continue above its numbers (ibp/seq_recovery.h). */
        add(&p->pub, "$JS.API.DIRECT.GET.%s.ibp.local.%s", IBP_STREAM_LOCAL, id);
    }
    if (roles & IBP_ROLE_CONSENSUS) {
        add(&p->pub, "ibp.official.>");
        add(&p->pub, "ibp.status.>");
        add(&p->pub, "ibp.events.>");
        /* Its statements go on ibp.official.cosign.<id>, inside ibp.official.>:
         * receivers count a statement by the signer of its envelope, never by
         * its subject. Its own checkpoint only; it reads every replica's (a
         * start without a state). */
        add(&p->pub, "ibp.consensus.checkpoint.%s", id);
        ensure(p, IBP_STREAM_LOCAL);
        ensure(p, IBP_STREAM_STATUS);
        ensure(p, IBP_STREAM_EVENTS);
        ensure(p, IBP_STREAM_CHECKPOINT);
        read_single(p, IBP_STREAM_CHECKPOINT);
        read_ordered(p, IBP_STREAM_LOCAL);
        /* The last status and event of a key, before publishing a change. */
        read_single(p, IBP_STREAM_STATUS);
        read_single(p, IBP_STREAM_EVENTS);
        add(&p->sub, "ibp.local.>");
    }
    if (roles & IBP_ROLE_DNS) {
        add(&p->pub, "ibp.hits.%s", id);
        ensure(p, IBP_STREAM_HITS);
        add(&p->pub, "$JS.API.DIRECT.GET.%s.ibp.hits.%s", IBP_STREAM_HITS, id);
    }
    if (roles & IBP_ROLE_PERSIST) {
        ensure(p, IBP_STREAM_HITS);
        ensure(p, IBP_STREAM_EVENTS);
        read_pull(p, IBP_STREAM_HITS);
        read_pull(p, IBP_STREAM_EVENTS);
        add(&p->sub, "ibp.persist.>");
    }
    if (roles & IBP_ROLE_ADMIN) {
        /* The operator's tool: overrides, queries to persist, $SRV discovery,
         * the smoke check, and the whole JetStream API (stream and consumer
         * info and edits, reading any stream) except what destroys history. */
        add(&p->pub, "ibp.local.%s", admin_id ? admin_id : id);
        add(&p->pub, "ibp.persist.>");
        add(&p->pub, "ibp.smoke.>");
        add(&p->pub, "$SRV.>");
        add(&p->pub, "$JS.API.>");
        add(&p->pub, "$JS.ACK.>");
        add(&p->pub, "$JS.FC.>");
        add(&p->sub, "ibp.>");
        for (size_t i = 0; i < sizeof STREAMS / sizeof STREAMS[0]; i++) {
            add(&p->pub_deny, "$JS.API.STREAM.DELETE.%s", STREAMS[i]);
            add(&p->pub_deny, "$JS.API.STREAM.PURGE.%s", STREAMS[i]);
            add(&p->pub_deny, "$JS.API.STREAM.MSG.DELETE.%s", STREAMS[i]);
        }
    }
}

static void print_list(FILE *out, const char *indent, const char *key, const list *l)
{
    fprintf(out, "%s%s: [\n", indent, key);
    for (size_t i = 0; i < l->n; i++)
        fprintf(out, "%s  \"%s\"\n", indent, l->s[i]);
    fprintf(out, "%s]\n", indent);
}

/* One user entry: `who` is "nkey: U..." or "user: x, password: \"...\"". */
static void print_user(FILE *out, const char *comment, const char *who, const perms *p)
{
    fprintf(out, "      # %s\n      {\n        %s\n        permissions: {\n", comment, who);
    fprintf(out, "          publish: {\n");
    print_list(out, "            ", "allow", &p->pub);
    if (p->pub_deny.n)
        print_list(out, "            ", "deny", &p->pub_deny);
    fprintf(out, "          }\n          subscribe: {\n");
    print_list(out, "            ", "allow", &p->sub);
    fprintf(out, "          }\n          allow_responses: true\n        }\n      }\n");
}

static void print_head(FILE *out, const char *account, const char *source)
{
    fprintf(out,
            "# nats-server users and permissions of the IBP nodes (DESIGN.md §13), rendered\n"
            "# by `ibpctl nats-auth` from %s. Include it from every server's config\n"
            "# (`include ./ibp-auth.conf`); a client without one of these identities is\n"
            "# refused. Render it again after a change to the roster.\n",
            source);
    if (account)
        fprintf(out, "accounts {\n  %s {\n    jetstream: enabled\n    users: [\n", account);
    else
        fprintf(out, "authorization {\n  users: [\n");
}

static void print_tail(FILE *out, const char *account)
{
    fprintf(out, account ? "    ]\n  }\n}\n" : "  ]\n}\n");
}

/* The password of role in dir/<role>.password: read, or made (mode 0600) when missing. */
static int role_password(const char *dir, const char *role, char *pw, size_t cap)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.password", dir, role);
    FILE *f = fopen(path, "r");
    if (f) {
        bool ok = fgets(pw, (int)cap, f) != NULL;
        fclose(f);
        pw[strcspn(pw, "\r\n")] = '\0';
        if (ok && strlen(pw) >= 16 && strspn(pw, "0123456789abcdef") == strlen(pw))
            return 0;
        fprintf(stderr, "ibpctl nats-auth: %s does not hold a password this tool made\n", path);
        return -1;
    }
    uint8_t raw[16];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(pw, cap, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, pw, strlen(pw)) != (ssize_t)strlen(pw) || write(fd, "\n", 1) != 1) {
        fprintf(stderr, "ibpctl nats-auth: write %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: ibpctl nats-auth --roster FILE [--account NAME] [--admin-id ID] [--out FILE]\n"
        "       ibpctl nats-auth --role-users DIR [--account NAME] [--admin-id ID] [--out FILE]\n"
        "\n"
        "Prints a nats-server config include: an authorization block with one nkey\n"
        "user per roster node that has a nats_nkey (`ibpctl keygen --nkey-out`,\n"
        "`ibpctl roster add --nats-nkey`), allowed what its roles do:\n"
        "  monitor    publish ibp.local.<id>\n"
        "  consensus  publish ibp.official.>, ibp.status.>, ibp.events.>,\n"
        "             (its statements: ibp.official.cosign.<id>),\n"
        "             ibp.consensus.checkpoint.<id>; read LOCAL and CHECKPOINT\n"
        "  dns        publish ibp.hits.<id>\n"
        "  persist    durable pull consumers on HITS and EVENTS; answer ibp.persist.>\n"
        "  admin      publish ibp.local.<admin id> (overrides), ibp.persist.> (queries),\n"
        "             $SRV.>, the JetStream API except deleting or purging the streams\n"
        "and each: read OFFICIAL and COSIGN (ordered consumers) and the replicas'\n"
        "heartbeats,\n"
        "check and create the streams of its roles, answer $SRV.> requests, reply to\n"
        "requests (allow_responses), receive on _INBOX.>. Nodes without a nats_nkey\n"
        "are left out (a warning names them). Include the output from every server's\n"
        "config; unauthenticated clients are then refused.\n"
        "\n"
        "--account NAME the users go into account NAME (with JetStream enabled) instead\n"
        "               of the global account; its streams are the account's own, so\n"
        "               choose it before the first start\n"
        "--admin-id ID  only the admin-role node ID gets the admin's rights (default:\n"
        "               every admin-role node, each publishing on its own ibp.local.<id>);\n"
        "               with --role-users the admin user publishes on ibp.local.ID\n"
        "               instead of ibp.local.*\n"
        "--role-users DIR  for test harnesses: one user per role, named monitor,\n"
        "               consensus, dns, persist and admin, each with a random password\n"
        "               in DIR/<role>.password (mode 0600; kept when it exists), node ids\n"
        "               in subjects as wildcards (monitor: ibp.local.*, dns: ibp.hits.*).\n"
        "               The output then holds the passwords: keep it private.\n"
        "--out FILE     write to FILE (atomically; mode 0600 with --role-users, else\n"
        "               0644) instead of stdout\n");
}

int ibpctl_cmd_nats_auth(int argc, char **argv)
{
    const char *roster_path = NULL, *account = NULL, *admin_id = NULL, *role_dir = NULL,
               *out_path = NULL;
    static const struct option opts[] = {
        {"roster", required_argument, 0, 'R'},
        {"account", required_argument, 0, 'a'},
        {"admin-id", required_argument, 0, 'A'},
        {"role-users", required_argument, 0, 'u'},
        {"out", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "R:a:A:u:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'R':
            roster_path = optarg;
            break;
        case 'a':
            account = optarg;
            break;
        case 'A':
            admin_id = optarg;
            break;
        case 'u':
            role_dir = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            return EXIT_USAGE;
        }
    }
    if (!roster_path == !role_dir || optind < argc) {
        fprintf(stderr, "ibpctl nats-auth: give --roster FILE or --role-users DIR\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if ((account && !ibp_node_id_valid(account)) || (admin_id && !ibp_node_id_valid(admin_id))) {
        fprintf(stderr, "ibpctl nats-auth: --account and --admin-id are [A-Za-z0-9_-] names\n");
        return EXIT_USAGE;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return 1;
    int rc = 0;
    perms *p = malloc(sizeof *p);
    if (!p) {
        fclose(out);
        free(text);
        return 1;
    }
    if (role_dir) {
        static const struct {
            const char *name;
            unsigned role;
        } roles[] = {{"monitor", IBP_ROLE_MONITOR},
                     {"consensus", IBP_ROLE_CONSENSUS},
                     {"dns", IBP_ROLE_DNS},
                     {"persist", IBP_ROLE_PERSIST},
                     {"admin", IBP_ROLE_ADMIN}};
        print_head(out, account, "role users (test harness)");
        for (size_t i = 0; i < sizeof roles / sizeof roles[0] && rc == 0; i++) {
            char pw[64], who[200], comment[200];
            if (role_password(role_dir, roles[i].name, pw, sizeof pw) != 0) {
                rc = 1;
                break;
            }
            snprintf(who, sizeof who, "user: \"%s\", password: \"%s\"", roles[i].name, pw);
            snprintf(comment, sizeof comment, "role %s, every node (password in %s/%s.password)",
                     roles[i].name, role_dir, roles[i].name);
            permissions(roles[i].role, "*", roles[i].role == IBP_ROLE_ADMIN ? admin_id : NULL, p);
            print_user(out, comment, who, p);
            sodium_memzero(pw, sizeof pw);
            sodium_memzero(who, sizeof who);
        }
        print_tail(out, account);
    } else {
        ibp_roster *r = NULL;
        ibp_err err = {0};
        if (ibp_roster_load(roster_path, &r, &err) != IBP_OK) {
            fprintf(stderr, "ibpctl nats-auth: %s\n", err.msg);
            rc = 1;
        } else if (admin_id && (!ibp_roster_find(r, admin_id) ||
                                !(ibp_roster_find(r, admin_id)->roles & IBP_ROLE_ADMIN))) {
            fprintf(stderr, "ibpctl nats-auth: --admin-id %s is not an admin node of %s\n",
                    admin_id, roster_path);
            rc = 1;
        } else {
            size_t users = 0;
            print_head(out, account, roster_path);
            for (size_t i = 0; i < ibp_roster_count(r); i++) {
                const ibp_roster_node *n = ibp_roster_at(r, i);
                if (!n->nats_nkey[0]) {
                    fprintf(stderr,
                            "ibpctl nats-auth: warning: node %s has no nats_nkey: it gets no "
                            "NATS identity (ibpctl keygen --nkey-out FILE --node %s --roster "
                            "%s)\n",
                            n->id, n->id, roster_path);
                    continue;
                }
                unsigned roles = n->roles;
                if (admin_id && strcmp(n->id, admin_id) != 0)
                    roles &= ~(unsigned)IBP_ROLE_ADMIN;
                if (!roles)
                    continue;
                char who[100], comment[200], names[64];
                ibp_roles_format(roles, names, sizeof names);
                snprintf(who, sizeof who, "nkey: %s", n->nats_nkey);
                snprintf(comment, sizeof comment, "node %s: %s", n->id, names);
                permissions(roles, n->id, NULL, p);
                print_user(out, comment, who, p);
                users++;
            }
            print_tail(out, account);
            if (users == 0) {
                fprintf(stderr, "ibpctl nats-auth: no node of %s has a nats_nkey\n", roster_path);
                rc = 1;
            }
        }
        ibp_roster_free(r);
    }
    free(p);
    fclose(out);
    if (rc == 0) {
        if (out_path) {
            ibp_err err = {0};
            if (ibp_file_write_atomic(out_path, text, len, role_dir ? 0600 : 0644, &err) !=
                IBP_OK) {
                fprintf(stderr, "ibpctl nats-auth: %s\n", err.msg);
                rc = 1;
            }
        } else {
            fwrite(text, 1, len, stdout);
        }
    }
    if (text)
        sodium_memzero(text, len);
    free(text);
    return rc;
}
