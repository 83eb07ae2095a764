/*
 * NATS authentication and TLS through the daemons' own connect call
 * (ibp_config_nats_connect with an ibp_config_nats as the config loader fills it),
 * against private nats-servers that require them:
 *
 *   user/password   right password connects and a message goes round;
 *                   a wrong one and none are refused as authorization failures
 *   nkey            a seed file written by the test connects; another seed is
 *                   refused; a seed file others can read is refused before
 *                   anything is sent
 *   TLS             the server's CA verifies it; an unrelated CA does not
 *   TLS + verify    a client certificate signed by the CA is required
 *
 * Certificates are made at test time with the openssl command line. Each
 * case starts its own nats-server on a free 127.0.0.1 port (ibp-test-freeport)
 * in a private directory, and stops it in its teardown, also after a failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <ctype.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ibp/clock.h"
#include "ibp/bus.h"
#include "ibp/key.h"
#include "ibp/nkey.h"
#include "ibp/node_config.h"
#include "ibp/status.h"
#include "testenv.h"

#define READY_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 10000
#define START_ATTEMPTS 3
#define PASSWORD "s3cret-pass word"

/* Shared by all cases: the private directory with the certificates and secrets. */
typedef struct suite {
    char dir[1024];
} suite;

static suite g_suite;

/* One case: its nats-server. */
typedef struct server {
    pid_t pid;
    unsigned port;
    char url[64];
    char conf[1200];
    char log[1200];
} server;

/* The path of name in the private directory, in one of 8 buffers used in turn. */
static char *path_of(const char *name)
{
    static char buf[8][1200];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", g_suite.dir, name);
    return p;
}

static int write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fputs(text, f);
    if (fclose(f) != 0 || chmod(path, mode) != 0) {
        fprintf(stderr, "write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Runs a shell command in the suite directory; on failure prints its output. */
static int run(const char *cmd)
{
    char full[4096];
    const char *log = path_of("cmd.log");
    snprintf(full, sizeof full, "cd '%s' && { %s ; } >'%s' 2>&1", g_suite.dir, cmd, log);
    int rc = system(full);
    if (rc != 0) {
        fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
        char show[1400];
        snprintf(show, sizeof show, "cat '%s' >&2", log);
        if (system(show) != 0)
            fprintf(stderr, "(no output)\n");
        return -1;
    }
    return 0;
}

/*
 * A CA (ca.pem), a server certificate for IP 127.0.0.1 signed by it
 * (server.pem), a client certificate signed by it (client.pem), and an
 * unrelated CA (other-ca.pem). P-256 keys: quick to make.
 */
static int make_certificates(void)
{
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    char cmd[2048];
    const char *cas[] = {"ca", "other-ca"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd,
                 "openssl req -x509 %s -keyout %s.key -out %s.pem -days 2 -subj '/CN=ibp test %s' "
                 "-addext basicConstraints=critical,CA:TRUE "
                 "-addext keyUsage=critical,keyCertSign,cRLSign",
                 ec, cas[i], cas[i], cas[i]);
        if (run(cmd) != 0)
            return -1;
    }
    if (write_file(path_of("server.ext"),
                   "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
                   0600) != 0 ||
        write_file(path_of("client.ext"),
                   "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=clientAuth\n",
                   0600) != 0)
        return -1;
    const char *leaves[] = {"server", "client"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd,
                 "openssl req %s -keyout %s.key -out %s.csr -subj '/CN=ibp test %s' && "
                 "openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -set_serial %zu "
                 "-days 2 -extfile %s.ext -out %s.pem && chmod 600 %s.key",
                 ec, leaves[i], leaves[i], leaves[i], leaves[i], i + 2, leaves[i], leaves[i],
                 leaves[i]);
        if (run(cmd) != 0)
            return -1;
    }
    return run("openssl verify -CAfile ca.pem server.pem client.pem");
}

static int suite_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    if (ibp_crypto_init() != IBP_OK)
        return -1;
    if (ibp_testenv_mkdtemp(g_suite.dir, sizeof g_suite.dir) != 0)
        return -1;
    printf("private directory %s\n", g_suite.dir);
    if (make_certificates() != 0)
        return -1;
    if (write_file(path_of("password"), PASSWORD "\n", 0600) != 0 ||
        write_file(path_of("wrong-password"), "not the password\n", 0600) != 0)
        return -1;
    fflush(stdout);
    return 0;
}

static int suite_teardown(void **state)
{
    (void)state;
    if (g_suite.dir[0])
        ibp_testenv_rmtree(g_suite.dir);
    return 0;
}

static int free_port(unsigned *port)
{
    FILE *p = popen(IBP_FREEPORT_BIN, "r");
    if (!p) {
        fprintf(stderr, "run %s: %s\n", IBP_FREEPORT_BIN, strerror(errno));
        return -1;
    }
    int n = fscanf(p, "%u", port);
    int rc = pclose(p);
    if (n != 1 || rc != 0) {
        fprintf(stderr, "%s printed no port\n", IBP_FREEPORT_BIN);
        return -1;
    }
    return 0;
}

static bool port_accepts(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void print_log(const server *sv)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "tail -n 20 '%s' >&2", sv->log);
    if (system(cmd) != 0)
        fprintf(stderr, "(no server log)\n");
}

/*
 * Starts nats-server with `body` (its config without the listen line) on a
 * free port and waits until it accepts TCP connections. A port taken
 * between the look-up and the bind makes the server exit: then it tries
 * another one.
 */
static int server_start(server *sv, const char *name, const char *body)
{
    memset(sv, 0, sizeof *sv);
    sv->pid = -1;
    snprintf(sv->conf, sizeof sv->conf, "%s/%s.conf", g_suite.dir, name);
    snprintf(sv->log, sizeof sv->log, "%s/%s.log", g_suite.dir, name);
    for (int attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
        if (free_port(&sv->port) != 0)
            return -1;
        snprintf(sv->url, sizeof sv->url, "nats://127.0.0.1:%u", sv->port);
        char conf[8192];
        snprintf(conf, sizeof conf, "listen: \"127.0.0.1:%u\"\nserver_name: ibp_auth_%s\n%s\n",
                 sv->port, name, body);
        if (write_file(sv->conf, conf, 0600) != 0)
            return -1;
        char *argv[] = {"nats-server", "-c", sv->conf, NULL};
        sv->pid = ibp_testenv_spawn(argv, sv->log, NULL);
        if (sv->pid < 0)
            return -1;
        int64_t deadline = ibp_clock_mono_ms() + READY_TIMEOUT_MS;
        bool exited = false;
        while (ibp_clock_mono_ms() < deadline) {
            int status = 0;
            if (waitpid(sv->pid, &status, WNOHANG) == sv->pid) {
                exited = true;
                sv->pid = -1;
                break;
            }
            if (port_accepts(sv->port)) {
                printf("nats-server %s: pid %d on %s\n", name, (int)sv->pid, sv->url);
                fflush(stdout);
                return 0;
            }
            usleep(20000);
        }
        fprintf(stderr, "nats-server %s on port %u %s (attempt %d)\n", name, sv->port,
                exited ? "exited at start" : "did not accept connections", attempt);
        print_log(sv);
        if (!exited) {
            ibp_testenv_kill_wait(sv->pid, SIGKILL, STOP_TIMEOUT_MS, NULL);
            sv->pid = -1;
            return -1;
        }
    }
    return -1;
}

static void server_stop(server *sv)
{
    if (sv->pid > 0) {
        if (ibp_testenv_kill_wait(sv->pid, SIGTERM, STOP_TIMEOUT_MS, NULL) != 0)
            fprintf(stderr, "nats-server pid %d did not stop on SIGTERM (killed)\n", (int)sv->pid);
        sv->pid = -1;
    }
}

static int case_teardown(void **state)
{
    server *sv = *state;
    if (sv) {
        server_stop(sv);
        free(sv);
    }
    return 0;
}

/* A config as the loader fills it: one server, every other key unset. */
typedef struct client_cfg {
    ibp_config_nats nats;
    char *servers[1];
} client_cfg;

static void client_cfg_init(client_cfg *c, const server *sv)
{
    memset(c, 0, sizeof *c);
    c->servers[0] = (char *)sv->url;
    c->nats.servers.items = c->servers;
    c->nats.servers.count = 1;
    c->nats.stream_replicas = 1;
}

/* Connects with cfg; prints and returns the status, leaving err set. */
static ibp_status try_connect(const char *what, const ibp_config_nats *cfg, natsConnection **nc,
                              ibp_err *err)
{
    ibp_err_clear(err);
    *nc = NULL;
    int64_t t0 = ibp_clock_mono_ms();
    ibp_status st = ibp_config_nats_connect(cfg, "ibp-auth-test", false, nc, err);
    printf("  %-44s -> %s (%lld ms)%s%s\n", what, ibp_status_name(st), (long long)(ibp_clock_mono_ms() - t0),
           st == IBP_OK ? "" : ": ", st == IBP_OK ? "" : err->msg);
    fflush(stdout);
    return st;
}

/* Publishes one message to a fresh subject and reads it back on the same connection. */
static void round_trip(natsConnection *nc, const char *what)
{
    natsSubscription *sub = NULL;
    natsMsg *msg = NULL;
    char subject[64];
    char body[64];
    snprintf(subject, sizeof subject, "ibp.auth.%08x", randombytes_random());
    snprintf(body, sizeof body, "hello over %s", what);
    assert_int_equal(natsConnection_SubscribeSync(&sub, nc, subject), NATS_OK);
    assert_int_equal(natsConnection_Flush(nc), NATS_OK);
    assert_int_equal(natsConnection_PublishString(nc, subject, body), NATS_OK);
    natsStatus s = natsSubscription_NextMsg(&msg, sub, 5000);
    if (s != NATS_OK)
        fail_msg("round trip over %s: %s", what, natsStatus_GetText(s));
    assert_int_equal(natsMsg_GetDataLength(msg), (int)strlen(body));
    assert_memory_equal(natsMsg_GetData(msg), body, strlen(body));
    printf("  round trip over %s: got '%.*s' on %s\n", what, natsMsg_GetDataLength(msg),
           natsMsg_GetData(msg), subject);
    fflush(stdout);
    natsMsg_Destroy(msg);
    natsSubscription_Destroy(sub);
}

static void expect_connects(const char *what, const ibp_config_nats *cfg)
{
    natsConnection *nc = NULL;
    ibp_err err;
    ibp_status st = try_connect(what, cfg, &nc, &err);
    if (st != IBP_OK)
        fail_msg("%s: expected to connect, got %s: %s", what, ibp_status_name(st), err.msg);
    round_trip(nc, what);
    natsConnection_Destroy(nc);
}

/* Whether text contains word, ignoring case. */
static bool contains_ci(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (; *text; text++) {
        size_t i = 0;
        while (i < n && text[i] &&
               tolower((unsigned char)text[i]) == tolower((unsigned char)word[i]))
            i++;
        if (i == n)
            return true;
    }
    return false;
}

/* Expects a refusal with code `code` whose message contains one of the words (any case). */
static void expect_refused(const char *what, const ibp_config_nats *cfg, ibp_status code,
                           const char *word1, const char *word2)
{
    natsConnection *nc = NULL;
    ibp_err err;
    ibp_status st = try_connect(what, cfg, &nc, &err);
    if (st == IBP_OK) {
        natsConnection_Destroy(nc);
        fail_msg("%s: expected a refusal, but it connected", what);
    }
    assert_null(nc);
    if (st != code)
        fail_msg("%s: expected %s, got %s: %s", what, ibp_status_name(code), ibp_status_name(st),
                 err.msg);
    if (!contains_ci(err.msg, word1) && !(word2 && contains_ci(err.msg, word2)))
        fail_msg("%s: message does not say '%s'%s%s%s: %s", what, word1, word2 ? " or '" : "",
                 word2 ? word2 : "", word2 ? "'" : "", err.msg);
}

/* ---- user and password ------------------------------------------------ */

static int setup_userpass(void **state)
{
    server *sv = calloc(1, sizeof *sv);
    *state = sv;
    if (!sv)
        return -1;
    return server_start(sv, "userpass",
                        "authorization {\n  user: ibp\n  password: \"" PASSWORD "\"\n}\n");
}

static void test_user_password(void **state)
{
    server *sv = *state;
    client_cfg c;
    client_cfg_init(&c, sv);
    c.nats.user = "ibp";
    c.nats.password_file = path_of("password");
    expect_connects("user ibp, right password", &c.nats);

    c.nats.password_file = path_of("wrong-password");
    expect_refused("user ibp, wrong password", &c.nats, IBP_E_NATS, "authorization failed", NULL);

    client_cfg_init(&c, sv);
    expect_refused("no credentials", &c.nats, IBP_E_NATS, "authorization failed", NULL);

    c.nats.user = "ibp";
    c.nats.password_file = path_of("no-such-password-file");
    expect_refused("missing password file", &c.nats, IBP_E_IO, "no-such-password-file", NULL);
}

/* ---- nkey ----------------------------------------------------------------- */

typedef struct nkey_state {
    server sv; /* first: case_teardown frees it as a server */
    char seed_file[1200];
    char other_seed_file[1200];
    char loose_seed_file[1200];
} nkey_state;

/* Writes a fresh random user seed to path (mode); its public key into pub. */
static int make_seed_file(const char *path, mode_t mode, char pub[IBP_NKEY_PUBLIC_SIZE])
{
    uint8_t seed[IBP_NKEY_RAW_BYTES], pk[crypto_sign_PUBLICKEYBYTES],
        sk[crypto_sign_SECRETKEYBYTES];
    char text[IBP_NKEY_SEED_SIZE + 1];
    randombytes_buf(seed, sizeof seed);
    ibp_nkey_encode_user_seed(seed, text);
    strcat(text, "\n");
    int rc = crypto_sign_seed_keypair(pk, sk, seed) == 0 ? 0 : -1;
    if (rc == 0) {
        ibp_nkey_encode_user_public(pk, pub);
        rc = write_file(path, text, mode);
    }
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(text, sizeof text);
    return rc;
}

static int setup_nkey(void **state)
{
    nkey_state *n = calloc(1, sizeof *n);
    char pub[IBP_NKEY_PUBLIC_SIZE], other_pub[IBP_NKEY_PUBLIC_SIZE],
        loose_pub[IBP_NKEY_PUBLIC_SIZE];
    *state = n;
    if (!n)
        return -1;
    n->sv.pid = -1;
    snprintf(n->seed_file, sizeof n->seed_file, "%s", path_of("user.nk"));
    snprintf(n->other_seed_file, sizeof n->other_seed_file, "%s", path_of("other-user.nk"));
    snprintf(n->loose_seed_file, sizeof n->loose_seed_file, "%s", path_of("loose-user.nk"));
    if (make_seed_file(n->seed_file, 0600, pub) != 0 ||
        make_seed_file(n->other_seed_file, 0600, other_pub) != 0 ||
        make_seed_file(n->loose_seed_file, 0644, loose_pub) != 0)
        return -1;
    printf("user nkey %s (seed in %s)\n", pub, n->seed_file);
    /* The loose file's key is allowed too: only its mode may refuse it. */
    char body[512];
    snprintf(body, sizeof body,
             "authorization {\n  users = [\n    {nkey: %s}\n    {nkey: %s}\n  ]\n}\n", pub,
             loose_pub);
    return server_start(&n->sv, "nkey", body);
}

static void test_nkey(void **state)
{
    nkey_state *n = *state;
    client_cfg c;
    client_cfg_init(&c, &n->sv);
    c.nats.nkey_seed_file = n->seed_file;
    expect_connects("nkey seed of an allowed user", &c.nats);

    c.nats.nkey_seed_file = n->other_seed_file;
    expect_refused("nkey seed of another user", &c.nats, IBP_E_NATS, "authorization failed", NULL);

    /* Refused by the mode check, before any connection: a key error, not a NATS one. */
    c.nats.nkey_seed_file = n->loose_seed_file;
    expect_refused("nkey seed file with mode 0644", &c.nats, IBP_E_KEY_PERMS, n->loose_seed_file,
                   NULL);

    client_cfg_init(&c, &n->sv);
    expect_refused("no credentials", &c.nats, IBP_E_NATS, "authorization failed", NULL);
}

/* ---- TLS ---------------------------------------------------------------- */

static int setup_tls_server(void **state, const char *name, bool verify)
{
    server *sv = calloc(1, sizeof *sv);
    *state = sv;
    if (!sv)
        return -1;
    char body[4096];
    snprintf(body, sizeof body,
             "tls {\n  cert_file: \"%s\"\n  key_file: \"%s\"\n  ca_file: \"%s\"\n"
             "  verify: %s\n  timeout: 2\n}\n",
             path_of("server.pem"), path_of("server.key"), path_of("ca.pem"),
             verify ? "true" : "false");
    return server_start(sv, name, body);
}

static int setup_tls(void **state)
{
    return setup_tls_server(state, "tls", false);
}

static int setup_tls_verify(void **state)
{
    return setup_tls_server(state, "tls_verify", true);
}

static void test_tls(void **state)
{
    server *sv = *state;
    client_cfg c;
    client_cfg_init(&c, sv);
    c.nats.tls_ca_file = path_of("ca.pem");
    expect_connects("TLS, the server's CA", &c.nats);

    c.nats.tls_ca_file = path_of("other-ca.pem");
    expect_refused("TLS, an unrelated CA", &c.nats, IBP_E_NATS, "TLS", "certificate");

    client_cfg_init(&c, sv);
    expect_refused("no TLS settings", &c.nats, IBP_E_NATS, "TLS", "secure");
}

static void test_tls_client_certificate(void **state)
{
    server *sv = *state;
    client_cfg c;
    client_cfg_init(&c, sv);
    c.nats.tls_ca_file = path_of("ca.pem");
    c.nats.tls_cert_file = path_of("client.pem");
    c.nats.tls_key_file = path_of("client.key");
    expect_connects("TLS verify, client certificate", &c.nats);

    c.nats.tls_cert_file = NULL;
    c.nats.tls_key_file = NULL;
    expect_refused("TLS verify, no client certificate", &c.nats, IBP_E_NATS, "TLS", "certificate");

    /* A certificate the server's CA did not sign: the other CA's own. */
    c.nats.tls_cert_file = path_of("other-ca.pem");
    c.nats.tls_key_file = path_of("other-ca.key");
    expect_refused("TLS verify, certificate of another CA", &c.nats, IBP_E_NATS, "TLS",
                   "certificate");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_user_password, setup_userpass, case_teardown),
        cmocka_unit_test_setup_teardown(test_nkey, setup_nkey, case_teardown),
        cmocka_unit_test_setup_teardown(test_tls, setup_tls, case_teardown),
        cmocka_unit_test_setup_teardown(test_tls_client_certificate, setup_tls_verify,
                                        case_teardown),
    };
    int rc = cmocka_run_group_tests(tests, suite_setup, suite_teardown);
    nats_Close();
    return rc;
}
