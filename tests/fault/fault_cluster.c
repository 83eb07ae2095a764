/*
 * The cluster under test of the fault suite: see fault_cluster.h.
 */
#include "fault_cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ibp/key.h"

#define READY_MS 30000

static const struct {
    const char *name;
    const char *roles;
    ibp_role role;
} NODES[FC_NODES] = {
    {"mon1", "monitor", IBP_ROLE_MONITOR},
    {"mon2", "monitor", IBP_ROLE_MONITOR},
    {"mon3", "monitor", IBP_ROLE_MONITOR},
    {"con1", "consensus", IBP_ROLE_CONSENSUS},
    {"con2", "consensus", IBP_ROLE_CONSENSUS},
    {"con3", "consensus", IBP_ROLE_CONSENSUS},
    {"dns1", "dns", IBP_ROLE_DNS},
    {"persist1", "persist", IBP_ROLE_PERSIST},
};

/* The demo network's check ports (deploy/local/checks.json), in FC order. */
static const char *const CHECK_NAMES[3] = {"tcp-site", "tcp-domain", "tcp-endpoint"};
static const char *const CHECK_TYPES[3] = {"site", "domain", "endpoint"};
static const char *const MEMBERS[4] = {"Alpha Nodes", "Beta Infra", "Gamma Stake", "Delta Hosting"};

int64_t fc_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fc_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int write_file(const char *path, mode_t mode, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int write_file(const char *path, mode_t mode, const char *fmt, ...)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "fault: cannot write %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    if (fclose(f) != 0) {
        fprintf(stderr, "fault: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* n distinct free TCP ports on host (bound together, then released). */
static int free_ports(const char *host, unsigned *out, int n)
{
    int fds[8];
    int rc = 0;
    for (int i = 0; i < n; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t len = sizeof a;
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 || inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
            bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&a, &len) != 0) {
            fprintf(stderr, "fault: no free port on %s: %s\n", host, strerror(errno));
            rc = -1;
            out[i] = 0;
        } else {
            out[i] = ntohs(a.sin_port);
        }
    }
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return rc;
}

void fc_dump_log(const fault_cluster *fc, int i)
{
    FILE *f = fopen(fc->node[i].log, "r");
    if (!f)
        return;
    char *lines[30] = {0};
    size_t n = 0;
    char buf[2048];
    while (fgets(buf, sizeof buf, f)) {
        free(lines[n % 30]);
        lines[n % 30] = strdup(buf);
        n++;
    }
    fclose(f);
    fprintf(stderr, "---- the end of %s\n", fc->node[i].log);
    for (size_t k = n > 30 ? n - 30 : 0; k < n; k++)
        fputs(lines[k % 30] ? lines[k % 30] : "", stderr);
    for (int k = 0; k < 30; k++)
        free(lines[k]);
}

/* ---- nats-server ---------------------------------------------------------- */

static int nats_write_conf(fault_cluster *fc, int k)
{
    const char *host = fc->opts.nats_host;
    char js[1200], routes[512] = "";
    snprintf(js, sizeof js, "%s/nats%d", fc->dir, k + 1);
    if (fc->nats_n > 1) {
        size_t used = 0;
        for (int j = 0; j < fc->nats_n; j++)
            if (j != k)
                used +=
                    (size_t)snprintf(routes + used, sizeof routes - used, "%snats-route://%s:%u",
                                     used ? ", " : "", host, fc->nats_route_port[j]);
    }
    char conf[1200];
    snprintf(conf, sizeof conf, "%s/nats%d.conf", fc->dir, k + 1);
    memcpy(fc->nats_conf[k], conf, sizeof conf);
    /* auth.conf: the users of `ibpctl nats-auth` (make_keys). */
    if (fc->nats_n == 1)
        return write_file(
            fc->nats_conf[k], 0600,
            "server_name: fault1\nlisten: %s:%u\nmax_payload: 8MB\nmax_control_line: 16KB\n"
            "jetstream { store_dir: \"%s\" }\ninclude ./auth.conf\n",
            host, fc->nats_port[k], js);
    return write_file(
        fc->nats_conf[k], 0600,
        "server_name: fault%d\nlisten: %s:%u\nmax_payload: 8MB\nmax_control_line: 16KB\n"
        "jetstream { store_dir: \"%s\" }\n"
        "cluster { name: ibpfault, listen: %s:%u, routes: [%s] }\n"
        "include ./auth.conf\n",
        k + 1, host, fc->nats_port[k], js, host, fc->nats_route_port[k], routes);
}

static bool tcp_accepts(const char *host, unsigned port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int nats_spawn(fault_cluster *fc, int k)
{
    char log[1200];
    snprintf(log, sizeof log, "%s/nats%d.log", fc->dir, k + 1);
    char *argv[] = {"nats-server", "-c", fc->nats_conf[k], NULL};
    fc->nats_pid[k] = ibp_testenv_spawn(argv, log, NULL);
    if (fc->nats_pid[k] <= 0)
        return -1;
    int64_t end = fc_mono_ms() + READY_MS;
    while (!tcp_accepts(fc->opts.nats_host, fc->nats_port[k])) {
        if (fc_mono_ms() > end || waitpid(fc->nats_pid[k], NULL, WNOHANG) == fc->nats_pid[k]) {
            fprintf(stderr, "fault: nats-server %d did not start (see %s)\n", k + 1, log);
            fc->nats_pid[k] = 0;
            return -1;
        }
        fc_sleep_ms(20);
    }
    return 0;
}

int fc_nats_kill(fault_cluster *fc, int k)
{
    if (fc->nats_pid[k] <= 0)
        return 0;
    int rc = ibp_testenv_kill_wait(fc->nats_pid[k], SIGKILL, 10000, NULL);
    fc->nats_pid[k] = 0;
    return rc;
}

int fc_nats_restart(fault_cluster *fc, int k)
{
    return nats_spawn(fc, k);
}

natsStatus fc_nats_options(const fault_cluster *fc, natsOptions *o)
{
    char urls[FC_MAX_NATS][80];
    const char *list[FC_MAX_NATS];
    for (int k = 0; k < fc->nats_n; k++) {
        snprintf(urls[k], sizeof urls[k], "nats://%s:%u", fc->opts.nats_host, fc->nats_port[k]);
        list[k] = urls[k];
    }
    natsStatus s = natsOptions_SetServers(o, list, fc->nats_n);
    if (s == NATS_OK)
        s = natsOptions_SetNKeyFromSeed(o, fc->witness_pub, fc->witness_nkey);
    return s;
}

/* Waits until JetStream answers on every server (a cluster elects its meta leader). */
static int nats_wait_jetstream(fault_cluster *fc)
{
    int64_t end = fc_mono_ms() + 60000;
    for (;;) {
        natsOptions *o = NULL;
        natsConnection *nc = NULL;
        jsCtx *js = NULL;
        jsAccountInfo *ai = NULL;
        jsErrCode jerr = 0;
        natsStatus s = natsOptions_Create(&o);
        if (s == NATS_OK)
            s = fc_nats_options(fc, o);
        if (s == NATS_OK)
            s = natsOptions_SetTimeout(o, 2000);
        if (s == NATS_OK)
            s = natsConnection_Connect(&nc, o);
        if (s == NATS_OK)
            s = natsConnection_JetStream(&js, nc, NULL);
        if (s == NATS_OK)
            s = js_GetAccountInfo(&ai, js, NULL, &jerr);
        jsAccountInfo_Destroy(ai);
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        natsOptions_Destroy(o);
        if (s == NATS_OK)
            return 0;
        if (fc_mono_ms() > end) {
            fprintf(stderr, "fault: JetStream did not answer at %s: %s\n", fc->nats_urls,
                    natsStatus_GetText(s));
            return -1;
        }
        fc_sleep_ms(200);
    }
}

/* ---- files: keys, roster, network, configs -------------------------------- */

/*
 * A signing key and a NATS nkey (a key pair of its own) for name, added to
 * the roster; the nkey seed goes to nkey_path.
 */
static int make_identity(fault_cluster *fc, const char *name, ibp_role role, const char *key_path,
                         const char *nkey_path, char pub[IBP_NKEY_PUBLIC_SIZE])
{
    ibp_err err = {0};
    ibp_key k;
    char seed[IBP_NKEY_SEED_SIZE];
    int rc = -1;
    if (ibp_key_generate(&k) != IBP_OK || ibp_key_save(&k, key_path, &err) != IBP_OK ||
        ibp_roster_add(fc->roster, name, k.pk, role, &err) != IBP_OK ||
        ibp_nkey_generate_user(seed, pub) != IBP_OK ||
        ibp_nkey_save_user_seed(nkey_path, seed, &err) != IBP_OK ||
        ibp_roster_set_nats_nkey(fc->roster, name, pub, &err) != IBP_OK)
        fprintf(stderr, "fault: identity of %s: %s\n", name, err.msg);
    else
        rc = 0;
    ibp_key_wipe(&k);
    memset(seed, 0, sizeof seed);
    return rc;
}

static int make_keys(fault_cluster *fc)
{
    ibp_err err = {0};
    char pub[IBP_NKEY_PUBLIC_SIZE];
    if (ibp_roster_new(&fc->roster) != IBP_OK)
        return -1;
    for (int i = 0; i < FC_NODES; i++) {
        fc_node *n = &fc->node[i];
        char path[1300], nkey[1300];
        snprintf(path, sizeof path, "%s/key", n->dir);
        snprintf(nkey, sizeof nkey, "%s/nkey", n->dir);
        if (make_identity(fc, n->name, NODES[i].role, path, nkey, pub) != 0)
            return -1;
    }
    char path[1100];
    snprintf(path, sizeof path, "%s/witness.key", fc->dir);
    snprintf(fc->witness_nkey, sizeof fc->witness_nkey, "%s/witness.nk", fc->dir);
    if (make_identity(fc, "witness", IBP_ROLE_ADMIN, path, fc->witness_nkey, fc->witness_pub) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/roster.json", fc->dir);
    if (ibp_roster_save(fc->roster, path, &err) != IBP_OK) {
        fprintf(stderr, "fault: roster: %s\n", err.msg);
        return -1;
    }
    /* The servers' users and permissions, as an operator renders them. */
    char cmd[4000];
    snprintf(cmd, sizeof cmd,
             "'%s' nats-auth --roster '%s/roster.json' --admin-id witness --out '%s/auth.conf'",
             IBP_CTL_BIN, fc->dir, fc->dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "fault: %s failed\n", cmd);
        return -1;
    }
    return 0;
}

/* The demo checks with our ports (on the NATS host): 1 s interval, 1 s timeout. */
static int write_checks(fault_cluster *fc)
{
    char path[1100], body[4096];
    size_t used = 0;
    used += (size_t)snprintf(body + used, sizeof body - used, "{");
    for (int c = 0; c < 3; c++) {
        used +=
            (size_t)snprintf(body + used, sizeof body - used,
                             "%s\"%s\": {\"Enabled\": 1, \"CheckType\": \"%s\", \"Timeout\": 1,"
                             " \"MinimumInterval\": 1, \"ExtraOptions\": {\"connect\": "
                             "\"%s\", \"ports\": {",
                             c ? ",\n" : "", CHECK_NAMES[c], CHECK_TYPES[c], fc->opts.nats_host);
        for (int m = 0; m < 4; m++)
            used += (size_t)snprintf(body + used, sizeof body - used, "%s\"%s\": %u", m ? ", " : "",
                                     MEMBERS[m], fc->ports[c * 4 + m]);
        used += (size_t)snprintf(body + used, sizeof body - used, "}}}");
    }
    snprintf(body + used, sizeof body - used, "}\n");
    snprintf(path, sizeof path, "%s/checks.json", fc->dir);
    return write_file(path, 0644, "%s", body);
}

static int write_node_config(fault_cluster *fc, int i)
{
    fc_node *n = &fc->node[i];
    char urls[FC_MAX_NATS * 80] = "";
    size_t used = 0;
    for (int k = 0; k < fc->nats_n; k++)
        used += (size_t)snprintf(urls + used, sizeof urls - used, "%s\"nats://%s:%u\"",
                                 k ? ", " : "", fc->opts.nats_host, fc->nats_port[k]);
    if (i == FC_PERSIST1)
        return write_file(
            n->config, 0600,
            "{\"node\": {\"id\": \"%s\", \"key_file\": \"%s/key\", \"roster_file\": "
            "\"%s/roster.json\", \"work_dir\": \"%s\"},\n"
            " \"nats\": {\"servers\": [%s], \"stream_replicas\": %d,\n"
            "          \"nkey_seed_file\": \"%s/nkey\"},\n"
            " \"mysql\": {\"host\": \"127.0.0.1\", \"port\": %u, \"user\": \"%s\",\n"
            "           \"password_file\": \"%s/mysql.password\", \"database\": \"%s\"},\n"
            " \"events\": {\"min_offline_ms\": 0},\n"
            " \"log\": {\"level\": \"info\"}}\n",
            n->name, n->dir, fc->dir, n->work, urls, fc->nats_n, n->dir, fc->servers.env.mysql_port,
            fc->servers.env.mysql_user, fc->dir, fc->database);
    return write_file(
        n->config, 0600,
        "{\"node\": {\"id\": \"%s\", \"key_file\": \"%s/key\", \"roster_file\": "
        "\"%s/roster.json\", \"work_dir\": \"%s\", \"roles\": \"%s\"},\n"
        " \"nats\": {\"servers\": [%s], \"stream_replicas\": %d,\n"
        "          \"nkey_seed_file\": \"%s/nkey\"},\n"
        " \"network\": {\"members_file\": \"%s/deploy/local/members.json\",\n"
        "             \"services_file\": \"%s/deploy/local/services.json\",\n"
        "             \"checks_file\": \"%s/checks.json\"},\n"
        " \"intervals\": {\"publish_ms\": 500, \"refresh_ms\": 3000, \"heartbeat_ms\": 1000,\n"
        "               \"usage_flush_ms\": 2000, \"cache_save_ms\": 2000},\n"
        " \"consensus\": {\"active_window_ms\": 20000, \"staleness_ms\": 8000,\n"
        "               \"quorum_min\": 2, \"expiry_ms\": 3600000},\n"
        " \"events\": {\"min_offline_ms\": 0},\n"
        " \"log\": {\"level\": \"info\"}}\n",
        n->name, n->dir, fc->dir, n->work, n->roles, urls, fc->nats_n, n->dir, IBP_SOURCE_DIR,
        IBP_SOURCE_DIR, fc->dir);
}

/* ---- daemons ---------------------------------------------------------------- */

json_t *fc_ctl(const fault_cluster *fc, int i, json_t *req)
{
    const char *path = fc->node[i].sock;
    char *line = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!line)
        return NULL;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    json_t *ans = NULL;
    int fd = -1;
    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "fault: socket path too long: %s\n", path);
        goto out;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 15};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        goto out;
    size_t n = strlen(line);
    line[n] = '\n';
    if (send(fd, line, n + 1, MSG_NOSIGNAL) != (ssize_t)(n + 1))
        goto out;
    char buf[1 << 16];
    size_t used = 0;
    while (used < sizeof buf - 1) {
        ssize_t r = recv(fd, buf + used, sizeof buf - 1 - used, 0);
        if (r <= 0)
            break;
        used += (size_t)r;
        if (memchr(buf, '\n', used))
            break;
    }
    buf[used] = '\0';
    json_error_t jerr;
    ans = json_loads(buf, JSON_DISABLE_EOF_CHECK, &jerr);
out:
    if (fd >= 0)
        close(fd);
    free(line);
    return ans;
}

long long fc_status_num(const fault_cluster *fc, int i, const char *a, const char *b)
{
    json_t *ans = fc_ctl(fc, i, json_pack("{s:s}", "cmd", "status"));
    json_t *v = json_object_get(json_object_get(ans, a), b);
    long long n = json_is_integer(v) ? (long long)json_integer_value(v) : -1;
    json_decref(ans);
    return n;
}

/* True when the log, from byte offset `from` on, has a line containing needle. */
static bool log_contains(const char *path, long from, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    if (fseek(f, from, SEEK_SET) != 0) {
        fclose(f);
        return false;
    }
    char buf[4096];
    bool found = false;
    while (!found && fgets(buf, sizeof buf, f))
        found = strstr(buf, needle) != NULL;
    fclose(f);
    return found;
}

int fc_node_start(fault_cluster *fc, int i, char *const extra_env[])
{
    fc_node *n = &fc->node[i];
    char *argv[12];
    int a = 0;
    if (n->netns) {
        argv[a++] = "ip";
        argv[a++] = "netns";
        argv[a++] = "exec";
        argv[a++] = (char *)n->netns;
    }
    if (i == FC_PERSIST1) {
        argv[a++] = IBP_PERSIST_BIN;
        argv[a++] = "--config";
        argv[a++] = n->config;
        argv[a++] = "--sql-dir";
        argv[a++] = IBP_SOURCE_DIR "/deploy/sql";
    } else {
        argv[a++] = IBP_NODE_BIN;
        argv[a++] = "--config";
        argv[a++] = n->config;
    }
    argv[a] = NULL;
    /* Mark where this run's log starts, so readiness reads this run only. */
    FILE *lf = fopen(n->log, "a");
    long start_off = 0;
    if (lf) {
        fseek(lf, 0, SEEK_END);
        start_off = ftell(lf);
        fclose(lf);
    }
    unlink(n->sock);
    n->pid = ibp_testenv_spawn(argv, n->log, extra_env);
    if (n->pid <= 0) {
        n->pid = 0;
        return -1;
    }
    int64_t end = fc_mono_ms() + READY_MS;
    for (;;) {
        int status;
        if (waitpid(n->pid, &status, WNOHANG) == n->pid) {
            n->pid = 0;
            fc_dump_log(fc, i);
            fprintf(stderr, "fault: %s exited while starting (status %d)\n", n->name, status);
            return -1;
        }
        if (i == FC_PERSIST1) {
            if (log_contains(n->log, start_off, "running node=persist1"))
                return 0;
        } else {
            json_t *ans = fc_ctl(fc, i, json_pack("{s:s}", "cmd", "status"));
            bool ok = ans && json_is_true(json_object_get(ans, "ok"));
            json_decref(ans);
            if (ok)
                return 0;
        }
        if (fc_mono_ms() > end) {
            fc_dump_log(fc, i);
            fprintf(stderr, "fault: %s was not ready within %d ms\n", n->name, READY_MS);
            return -1;
        }
        fc_sleep_ms(50);
    }
}

int fc_node_signal(fault_cluster *fc, int i, int sig)
{
    fc_node *n = &fc->node[i];
    if (n->pid <= 0)
        return 0;
    int status = 0;
    int rc = ibp_testenv_kill_wait(n->pid, sig, 30000, &status);
    n->pid = 0;
    if (rc != 0)
        fprintf(stderr, "fault: %s did not exit within 30 s of signal %d\n", n->name, sig);
    else if (sig == SIGTERM && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        fc_dump_log(fc, i);
        fprintf(stderr, "fault: %s did not stop cleanly on SIGTERM (status %d)\n", n->name, status);
        return -1;
    }
    return rc;
}

/*
 * dst = dir "/" name (or dir alone when name is NULL). Through a buffer of its
 * own: dst and dir are often members of the same fault_cluster, which GCC's
 * -Wrestrict cannot tell apart from an overlap.
 */
static void join(char *dst, size_t cap, const char *dir, const char *name)
{
    char tmp[1400];
    snprintf(tmp, sizeof tmp, "%s%s%s", dir, name ? "/" : "", name ? name : "");
    size_t n = strlen(tmp);
    if (n >= cap)
        n = cap - 1; /* not with the suite's mkdtemp paths */
    memcpy(dst, tmp, n);
    dst[n] = '\0';
}

/* ---- whole cluster ------------------------------------------------------------ */

static int create_database(fault_cluster *fc)
{
    if (ibp_testenv_unique_name("ibp_fault", fc->database, sizeof fc->database) != 0)
        return -1;
    MYSQL *db = ibp_testenv_mysql_connect(&fc->servers.env, NULL);
    if (!db)
        return -1;
    int rc = ibp_testenv_mysql_exec(db, "CREATE DATABASE %s", fc->database);
    mysql_close(db);
    char pw[1100];
    snprintf(pw, sizeof pw, "%s/mysql.password", fc->dir);
    if (rc == 0)
        rc = write_file(pw, 0600, "%s", fc->servers.env.mysql_password);
    return rc;
}

int fc_start(fault_cluster *fc, const fc_opts *opts, const unsigned ports[FC_PORTS])
{
    memset(fc, 0, sizeof *fc);
    fc->opts = *opts;
    if (!fc->opts.nats_host)
        fc->opts.nats_host = "127.0.0.1";
    fc->nats_n = opts->nats_servers > 1 ? FC_MAX_NATS : 1;
    memcpy(fc->ports, ports, sizeof fc->ports);
    if (ibp_crypto_init() != IBP_OK || ibp_testenv_mkdtemp(fc->dir, sizeof fc->dir) != 0)
        return -1;
    printf("fault: test directory %s\n", fc->dir);
    if (ibp_testenv_private_start(&fc->servers) != 0 || create_database(fc) != 0)
        return -1;

    unsigned p[2 * FC_MAX_NATS];
    if (free_ports(fc->opts.nats_host, p, 2 * fc->nats_n) != 0)
        return -1;
    size_t used = 0;
    for (int k = 0; k < fc->nats_n; k++) {
        fc->nats_port[k] = p[2 * k];
        fc->nats_route_port[k] = p[2 * k + 1];
        used +=
            (size_t)snprintf(fc->nats_urls + used, sizeof fc->nats_urls - used, "%snats://%s:%u",
                             k ? "," : "", fc->opts.nats_host, fc->nats_port[k]);
    }
    for (int i = 0; i < FC_NODES; i++) {
        fc_node *n = &fc->node[i];
        snprintf(n->name, sizeof n->name, "%s", NODES[i].name);
        snprintf(n->roles, sizeof n->roles, "%s", NODES[i].roles);
        join(n->dir, sizeof n->dir, fc->dir, n->name);
        if (i == FC_DNS1 && opts->dns_work_dir)
            join(n->work, sizeof n->work, opts->dns_work_dir, NULL);
        else
            join(n->work, sizeof n->work, n->dir, "work");
        join(n->config, sizeof n->config, n->dir, "config.json");
        join(n->log, sizeof n->log, n->dir, "log");
        join(n->sock, sizeof n->sock, n->work, "control.sock");
        n->netns = i == FC_MON3 ? opts->mon3_netns : NULL;
        if (mkdir(n->dir, 0700) != 0) {
            fprintf(stderr, "fault: mkdir %s: %s\n", n->dir, strerror(errno));
            return -1;
        }
    }
    if (make_keys(fc) != 0 || write_checks(fc) != 0)
        return -1;
    for (int k = 0; k < fc->nats_n; k++)
        if (nats_write_conf(fc, k) != 0 || nats_spawn(fc, k) != 0)
            return -1;
    if (nats_wait_jetstream(fc) != 0)
        return -1;
    printf("fault: nats-server x%d at %s, MariaDB at 127.0.0.1:%u database %s\n", fc->nats_n,
           fc->nats_urls, fc->servers.env.mysql_port, fc->database);

    for (int i = 0; i < FC_NODES; i++)
        if (write_node_config(fc, i) != 0)
            return -1;
    /* persist first (schema), then consensus, monitors, dns. */
    static const int order[FC_NODES] = {FC_PERSIST1, FC_CON1, FC_CON2, FC_CON3,
                                        FC_MON1,     FC_MON2, FC_MON3, FC_DNS1};
    for (int k = 0; k < FC_NODES; k++)
        if (fc_node_start(fc, order[k], NULL) != 0)
            return -1;
    return 0;
}

void fc_stop(fault_cluster *fc)
{
    for (int i = FC_NODES - 1; i >= 0; i--)
        if (fc->node[i].pid > 0)
            ibp_testenv_kill_wait(fc->node[i].pid, SIGTERM, 15000, NULL);
    for (int k = 0; k < fc->nats_n; k++)
        if (fc->nats_pid[k] > 0)
            ibp_testenv_kill_wait(fc->nats_pid[k], SIGTERM, 15000, NULL);
    if (fc->servers.started)
        ibp_testenv_private_stop(&fc->servers);
    ibp_roster_free(fc->roster);
    fc->roster = NULL;
    if (fc->dir[0] && !getenv("IBP_FAULT_KEEP"))
        ibp_testenv_rmtree(fc->dir);
    else if (fc->dir[0])
        printf("fault: kept %s (IBP_FAULT_KEEP)\n", fc->dir);
}
