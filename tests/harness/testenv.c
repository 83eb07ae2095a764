/* See testenv.h. */
#include "testenv.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

static int copy_value(const char *path, const char *key, const char *value, char *dst, size_t cap)
{
    size_t n = strlen(value);
    if (n >= cap) {
        fprintf(stderr, "testenv: %s: value of %s is too long (%zu bytes, at most %zu)\n", path,
                key, n, cap - 1);
        return -1;
    }
    memcpy(dst, value, n + 1);
    return 0;
}

static int parse_port(const char *path, const char *key, const char *value, unsigned *out)
{
    char *end = NULL;
    long v = strtol(value, &end, 10);
    if (*value == '\0' || *end != '\0' || v < 1 || v > 65535) {
        fprintf(stderr, "testenv: %s: %s=%s is not a TCP port\n", path, key, value);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* The users' names and the state-file key prefixes, by ibp_testenv_nats_role. */
static const char *const role_name[IBP_TESTENV_NATS_ROLES] = {
    "test", "monitor", "consensus", "dns", "persist", "admin", "monitor_consensus"};
static const char *const role_key[IBP_TESTENV_NATS_ROLES] = {
    "NATS",         "NATS_MONITOR", "NATS_CONSENSUS",        "NATS_DNS",
    "NATS_PERSIST", "NATS_ADMIN",   "NATS_MONITOR_CONSENSUS"};

const char *ibp_testenv_nats_role_name(ibp_testenv_nats_role role)
{
    return (unsigned)role < IBP_TESTENV_NATS_ROLES ? role_name[role] : "?";
}

/* Stores k=v when k is NATS_<ROLE>_USER or NATS_<ROLE>_PASSWORD_FILE: 1 stored, 0 not
 * such a key, -1 error. */
static int nats_user_key(const char *path, const char *k, const char *v, ibp_testenv *env)
{
    for (int r = 0; r < IBP_TESTENV_NATS_ROLES; r++) {
        size_t n = strlen(role_key[r]);
        if (strncmp(k, role_key[r], n) != 0 || k[n] != '_')
            continue;
        ibp_testenv_nats_user *u = &env->nats_users[r];
        if (strcmp(k + n + 1, "USER") == 0)
            return copy_value(path, k, v, u->user, sizeof u->user) == 0 ? 1 : -1;
        if (strcmp(k + n + 1, "PASSWORD_FILE") == 0)
            return copy_value(path, k, v, u->password_file, sizeof u->password_file) == 0 ? 1 : -1;
    }
    return 0;
}

/* Reads a one-line password file (without its line end) into buf. */
static int read_password(const char *state, const char *file, char *buf, size_t cap)
{
    FILE *f = fopen(file, "r");
    if (f == NULL) {
        fprintf(stderr, "testenv: %s: NATS password file %s: %s\n", state, file, strerror(errno));
        return -1;
    }
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n == 0 || n >= cap) {
        fprintf(stderr, "testenv: %s: NATS password file %s is empty or too long\n", state, file);
        return -1;
    }
    buf[n] = '\0';
    return 0;
}

int ibp_testenv_load_file(const char *path, ibp_testenv *env)
{
    char line[2048];
    int rc = -1;
    FILE *f = NULL;

    memset(env, 0, sizeof *env);
    if (copy_value("state file path", "path", path, env->path, sizeof env->path) != 0)
        return -1;
    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr,
                "testenv: cannot open the servers' state file %s: %s\n"
                "testenv: the CTest fixture harness.servers_start writes it; run the tests "
                "through ctest (ctest -L integration), or start the servers by hand with "
                "tests/harness/servers.sh start %s\n",
                path, strerror(errno), path);
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        size_t len = strlen(line);
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        char *eq = strchr(line, '=');
        if (eq == NULL) {
            fprintf(stderr, "testenv: %s: line without '=': %s\n", path, line);
            goto out;
        }
        *eq = '\0';
        const char *k = line, *v = eq + 1;
        int r = 0;
        if (strcmp(k, "IBP_TEST_DIR") == 0)
            r = copy_value(path, k, v, env->dir, sizeof env->dir);
        else if (strcmp(k, "NATS_URL") == 0)
            r = copy_value(path, k, v, env->nats_url, sizeof env->nats_url);
        else if (strcmp(k, "NATS_PORT") == 0)
            r = parse_port(path, k, v, &env->nats_port);
        else if (strcmp(k, "NATS_SERVER_VERSION") == 0)
            r = copy_value(path, k, v, env->nats_version, sizeof env->nats_version);
        else if (strcmp(k, "MYSQL_HOST") == 0)
            r = copy_value(path, k, v, env->mysql_host, sizeof env->mysql_host);
        else if (strcmp(k, "MYSQL_PORT") == 0)
            r = parse_port(path, k, v, &env->mysql_port);
        else if (strcmp(k, "MYSQL_SOCKET") == 0)
            r = copy_value(path, k, v, env->mysql_socket, sizeof env->mysql_socket);
        else if (strcmp(k, "MYSQL_USER") == 0)
            r = copy_value(path, k, v, env->mysql_user, sizeof env->mysql_user);
        else if (strcmp(k, "MYSQL_PASSWORD") == 0)
            r = copy_value(path, k, v, env->mysql_password, sizeof env->mysql_password);
        else if (strcmp(k, "MARIADB_VERSION") == 0)
            r = copy_value(path, k, v, env->mariadb_version, sizeof env->mariadb_version);
        else if ((r = nats_user_key(path, k, v, env)) > 0)
            r = 0;
        /* Other keys (pids, timings) are the script's business. */
        if (r != 0)
            goto out;
    }
    if (ferror(f)) {
        fprintf(stderr, "testenv: %s: read error\n", path);
        goto out;
    }

    const struct {
        const char *key;
        int present;
    } required[] = {
        {"IBP_TEST_DIR", env->dir[0] != '\0'},
        {"NATS_URL", env->nats_url[0] != '\0'},
        {"NATS_PORT", env->nats_port != 0},
        {"MYSQL_HOST", env->mysql_host[0] != '\0'},
        {"MYSQL_PORT", env->mysql_port != 0},
        {"MYSQL_USER", env->mysql_user[0] != '\0'},
        {"MYSQL_PASSWORD", env->mysql_password[0] != '\0'},
    };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (!required[i].present) {
            fprintf(stderr, "testenv: %s: required key %s is missing\n", path, required[i].key);
            goto out;
        }
    }
    for (int i = 0; i < IBP_TESTENV_NATS_ROLES; i++) {
        ibp_testenv_nats_user *u = &env->nats_users[i];
        if (u->user[0] == '\0' || u->password_file[0] == '\0') {
            fprintf(stderr,
                    "testenv: %s: required key %s_USER or %s_PASSWORD_FILE is missing (a state "
                    "file of an older servers.sh? run the fixture again)\n",
                    path, role_key[i], role_key[i]);
            goto out;
        }
        if (read_password(path, u->password_file, u->password, sizeof u->password) != 0)
            goto out;
    }
    if (ibp_testenv_nats_url(env, IBP_TESTENV_NATS_TEST, env->nats_auth_url,
                             sizeof env->nats_auth_url) != 0)
        goto out;
    rc = 0;
out:
    fclose(f);
    return rc;
}

int ibp_testenv_load(ibp_testenv *env)
{
    const char *path = getenv(IBP_TESTENV_VAR);
    if (path == NULL || *path == '\0') {
        fprintf(stderr,
                "testenv: %s is not set. Integration tests need the servers of the CTest "
                "fixture `servers`: run them with ctest (ctest -L integration), which sets it, "
                "or start the servers with tests/harness/servers.sh start <file> and export "
                "%s=<file>.\n",
                IBP_TESTENV_VAR, IBP_TESTENV_VAR);
        memset(env, 0, sizeof *env);
        return -1;
    }
    return ibp_testenv_load_file(path, env);
}

void ibp_testenv_print(const ibp_testenv *env)
{
    printf("testenv: state file %s\n", env->path);
    printf("testenv: nats-server %s at %s (login required; tests log in as %s)\n",
           env->nats_version[0] ? env->nats_version : "(version unknown)", env->nats_url,
           env->nats_users[IBP_TESTENV_NATS_TEST].user);
    printf("testenv: mariadb %s at %s:%u (user %s)\n",
           env->mariadb_version[0] ? env->mariadb_version : "(version unknown)", env->mysql_host,
           env->mysql_port, env->mysql_user);
    fflush(stdout);
}

/* Random bits without libsodium: tests must not depend on the code under test. */
static uint32_t random32(void)
{
    uint32_t v = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, &v, sizeof v);
        close(fd);
        if (n == (ssize_t)sizeof v)
            return v;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint32_t)ts.tv_nsec ^ ((uint32_t)getpid() << 16) ^ (uint32_t)ts.tv_sec;
}

int ibp_testenv_unique_name(const char *prefix, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s_%ld_%08x", prefix, (long)getpid(), (unsigned)random32());
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "testenv: unique name for prefix '%s' does not fit %zu bytes\n", prefix,
                cap);
        if (cap > 0)
            buf[0] = '\0';
        return -1;
    }
    return 0;
}

/* Connects to url as user (NULL: anonymously) with a timeout of timeout_ms. */
static natsStatus nats_login(const char *url, const ibp_testenv_nats_user *user, int timeout_ms,
                             natsConnection **out)
{
    natsOptions *opts = NULL;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(opts, url);
    if (s == NATS_OK && user != NULL)
        s = natsOptions_SetUserInfo(opts, user->user, user->password);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(opts, timeout_ms);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, 0);
    if (s == NATS_OK)
        s = natsConnection_Connect(out, opts);
    natsOptions_Destroy(opts);
    return s;
}

natsStatus ibp_testenv_nats_connect_as(const ibp_testenv *env, ibp_testenv_nats_role role,
                                       natsConnection **out)
{
    if ((unsigned)role >= IBP_TESTENV_NATS_ROLES) {
        fprintf(stderr, "testenv: no NATS user for role %d\n", (int)role);
        return NATS_INVALID_ARG;
    }
    natsStatus s = nats_login(env->nats_url, &env->nats_users[role], 2000, out);
    if (s != NATS_OK) {
        fprintf(stderr, "testenv: cannot connect to nats-server at %s as %s: %s (%s)\n",
                env->nats_url, env->nats_users[role].user, natsStatus_GetText(s),
                nats_GetLastError(NULL));
    }
    return s;
}

natsStatus ibp_testenv_nats_connect(const ibp_testenv *env, natsConnection **out)
{
    return ibp_testenv_nats_connect_as(env, IBP_TESTENV_NATS_TEST, out);
}

int ibp_testenv_nats_url(const ibp_testenv *env, ibp_testenv_nats_role role, char *buf, size_t cap)
{
    if ((unsigned)role >= IBP_TESTENV_NATS_ROLES) {
        fprintf(stderr, "testenv: no NATS user for role %d\n", (int)role);
        return -1;
    }
    const ibp_testenv_nats_user *u = &env->nats_users[role];
    /* The user names and the passwords (hex) need no escaping in a URL. */
    int n = snprintf(buf, cap, "nats://%s:%s@127.0.0.1:%u", u->user, u->password, env->nats_port);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "testenv: NATS URL of user %s does not fit %zu bytes\n", u->user, cap);
        return -1;
    }
    return 0;
}

int ibp_testenv_nats_json(const ibp_testenv *env, ibp_testenv_nats_role role, char *buf, size_t cap)
{
    if ((unsigned)role >= IBP_TESTENV_NATS_ROLES) {
        fprintf(stderr, "testenv: no NATS user for role %d\n", (int)role);
        return -1;
    }
    const ibp_testenv_nats_user *u = &env->nats_users[role];
    int n = snprintf(
        buf, cap, "\"nats\": {\"servers\": [\"%s\"], \"user\": \"%s\", \"password_file\": \"%s\"}",
        env->nats_url, u->user, u->password_file);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "testenv: nats config of user %s does not fit %zu bytes\n", u->user, cap);
        return -1;
    }
    return 0;
}

int ibp_testenv_nats_server_version(const ibp_testenv *env, char *buf, size_t cap)
{
    char info[8192];
    size_t len = 0;
    int rc = -1;
    struct sockaddr_in addr;
    struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        fprintf(stderr, "testenv: socket: %s\n", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)env->nats_port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        fprintf(stderr, "testenv: connect 127.0.0.1:%u: %s\n", env->nats_port, strerror(errno));
        goto out;
    }
    while (len + 1 < sizeof info && memchr(info, '\n', len) == NULL) {
        ssize_t n = read(fd, info + len, sizeof info - 1 - len);
        if (n <= 0) {
            fprintf(stderr, "testenv: reading INFO from 127.0.0.1:%u: %s\n", env->nats_port,
                    n == 0 ? "connection closed" : strerror(errno));
            goto out;
        }
        len += (size_t)n;
    }
    info[len] = '\0';
    const char *v = strstr(info, "\"version\":\"");
    if (strncmp(info, "INFO ", 5) != 0 || v == NULL) {
        fprintf(stderr, "testenv: no version in the server's first line: %.200s\n", info);
        goto out;
    }
    v += strlen("\"version\":\"");
    const char *end = strchr(v, '"');
    if (end == NULL || (size_t)(end - v) >= cap) {
        fprintf(stderr, "testenv: malformed version in INFO: %.200s\n", info);
        goto out;
    }
    memcpy(buf, v, (size_t)(end - v));
    buf[end - v] = '\0';
    rc = 0;
out:
    close(fd);
    return rc;
}

MYSQL *ibp_testenv_mysql_connect(const ibp_testenv *env, const char *db)
{
    MYSQL *m = mysql_init(NULL);
    unsigned timeout_s = 5;
    if (m == NULL) {
        fprintf(stderr, "testenv: mysql_init failed (out of memory)\n");
        return NULL;
    }
    mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_s);
    mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (mysql_real_connect(m, env->mysql_host, env->mysql_user, env->mysql_password, db,
                           env->mysql_port, NULL, 0) == NULL) {
        fprintf(stderr, "testenv: cannot connect to MariaDB at %s:%u as %s%s%s: %u %s\n",
                env->mysql_host, env->mysql_port, env->mysql_user, db ? ", database " : "",
                db ? db : "", mysql_errno(m), mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    return m;
}

static int vformat(char *buf, size_t cap, const char *fmt, va_list ap)
{
    int n = vsnprintf(buf, cap, fmt, ap);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "testenv: statement longer than %zu bytes\n", cap);
        return -1;
    }
    return 0;
}

int ibp_testenv_mysql_exec(MYSQL *db, const char *fmt, ...)
{
    char sql[8192];
    va_list ap;
    va_start(ap, fmt);
    int r = vformat(sql, sizeof sql, fmt, ap);
    va_end(ap);
    if (r != 0)
        return -1;
    if (mysql_query(db, sql) != 0) {
        fprintf(stderr, "testenv: SQL failed: %s\n  MariaDB %u (%s): %s\n", sql, mysql_errno(db),
                mysql_sqlstate(db), mysql_error(db));
        return -1;
    }
    /* Drain a result a caller did not expect, so the connection stays usable. */
    MYSQL_RES *res = mysql_store_result(db);
    mysql_free_result(res);
    return 0;
}

int ibp_testenv_mysql_query_int(MYSQL *db, long long *out, const char *fmt, ...)
{
    char sql[8192];
    int rc = -1;
    va_list ap;
    va_start(ap, fmt);
    int r = vformat(sql, sizeof sql, fmt, ap);
    va_end(ap);
    if (r != 0)
        return -1;
    if (mysql_query(db, sql) != 0) {
        fprintf(stderr, "testenv: SQL failed: %s\n  MariaDB %u (%s): %s\n", sql, mysql_errno(db),
                mysql_sqlstate(db), mysql_error(db));
        return -1;
    }
    MYSQL_RES *res = mysql_store_result(db);
    if (res == NULL) {
        fprintf(stderr, "testenv: SQL returned no result set: %s\n", sql);
        return -1;
    }
    MYSQL_ROW row = mysql_fetch_row(res);
    if (row == NULL) {
        fprintf(stderr, "testenv: SQL returned no row: %s\n", sql);
    } else if (row[0] == NULL) {
        fprintf(stderr, "testenv: SQL returned NULL: %s\n", sql);
    } else {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(row[0], &end, 10);
        if (errno != 0 || *row[0] == '\0' || *end != '\0') {
            fprintf(stderr, "testenv: SQL returned '%s', not an integer: %s\n", row[0], sql);
        } else {
            *out = v;
            rc = 0;
        }
    }
    mysql_free_result(res);
    return rc;
}

int ibp_testenv_mkdtemp(char *buf, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    int n = snprintf(buf, cap, "%s/ibp-it.XXXXXX", tmp);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "testenv: temporary directory path too long\n");
        return -1;
    }
    if (mkdtemp(buf) == NULL) {
        fprintf(stderr, "testenv: mkdtemp %s: %s\n", buf, strerror(errno));
        return -1;
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0) {
        fprintf(stderr, "testenv: remove %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int ibp_testenv_rmtree(const char *path)
{
    if (path == NULL || *path == '\0')
        return 0;
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

/* ---- private servers and child processes ------------------------------------------------- */

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs argv to completion; returns its exit status (or -1). */
static int run_wait(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "testenv: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "testenv: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *servers_sh(void)
{
    const char *p = getenv("IBP_TEST_SERVERS_SH");
    if (p == NULL || *p == '\0') {
        fprintf(stderr, "testenv: IBP_TEST_SERVERS_SH is not set (the path of "
                        "tests/harness/servers.sh; tests/integration/CMakeLists.txt sets it)\n");
        return NULL;
    }
    return p;
}

static int read_state_pid(const char *path, const char *key, pid_t *out)
{
    char line[2048];
    size_t klen = strlen(key);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    int rc = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
            *out = (pid_t)strtol(line + klen + 1, NULL, 10);
            rc = *out > 0 ? 0 : -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

/* Rewrites KEY=<pid> in the state file (atomically). */
static int write_state_pid(const char *path, const char *key, pid_t pid)
{
    char tmp[1200], line[2048];
    size_t klen = strlen(key);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *in = fopen(path, "r"), *out = fopen(tmp, "w");
    if (in == NULL || out == NULL) {
        if (in)
            fclose(in);
        if (out)
            fclose(out);
        fprintf(stderr, "testenv: rewrite %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, in) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == '=')
            fprintf(out, "%s=%ld\n", key, (long)pid);
        else
            fputs(line, out);
    }
    fclose(in);
    if (fclose(out) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "testenv: rewrite %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int read_cmdline(pid_t pid, char **out, size_t *len)
{
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "testenv: %s: %s\n", path, strerror(errno));
        return -1;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n <= 0 || (size_t)n >= sizeof buf) {
        fprintf(stderr, "testenv: %s: unreadable or too long\n", path);
        return -1;
    }
    *out = malloc((size_t)n);
    if (*out == NULL)
        return -1;
    memcpy(*out, buf, (size_t)n);
    *len = (size_t)n;
    return 0;
}

static const char *const state_pid_key[2] = {"NATS_PID", "MYSQL_PID"};
static const char *const server_name[2] = {"nats-server", "mariadbd"};

int ibp_testenv_private_start(ibp_testenv_private *p)
{
    memset(p, 0, sizeof *p);
    const char *sh = servers_sh();
    if (sh == NULL)
        return -1;
    if (ibp_testenv_mkdtemp(p->dir, sizeof p->dir) != 0)
        return -1;
    snprintf(p->state, sizeof p->state, "%s/servers.env", p->dir);
    char *argv[] = {"bash", (char *)sh, "start", p->state, "--watch-parent", NULL};
    long long t0 = mono_ms();
    if (run_wait(argv) != 0) {
        fprintf(stderr, "testenv: servers.sh start %s failed\n", p->state);
        return -1;
    }
    p->started = true;
    if (ibp_testenv_load_file(p->state, &p->env) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        if (read_state_pid(p->state, state_pid_key[i], &p->pid[i]) != 0) {
            fprintf(stderr, "testenv: %s has no %s\n", p->state, state_pid_key[i]);
            return -1;
        }
        if (read_cmdline(p->pid[i], &p->cmdline[i], &p->cmdline_len[i]) != 0)
            return -1;
    }
    printf("testenv: private servers in %s (nats %s, mariadb port %u) started in %lld ms\n",
           p->env.dir, p->env.nats_url, p->env.mysql_port, mono_ms() - t0);
    fflush(stdout);
    return 0;
}

/* True when pid no longer runs (gone or a zombie). */
static bool pid_gone(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return true;
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && (rp[2] == 'Z' || rp[2] == 'X');
}

int ibp_testenv_private_signal(ibp_testenv_private *p, ibp_testenv_server which, int sig)
{
    pid_t pid = p->pid[which];
    if (pid <= 0 || kill(pid, sig) != 0) {
        fprintf(stderr, "testenv: signal %d to %s (pid %ld): %s\n", sig, server_name[which],
                (long)pid, strerror(errno));
        return -1;
    }
    if (sig == SIGSTOP || sig == SIGCONT)
        return 0;
    long long end = mono_ms() + 30000;
    while (mono_ms() < end) {
        if (p->child[which]) {
            int status;
            if (waitpid(pid, &status, WNOHANG) == pid) {
                p->child[which] = false;
                p->pid[which] = 0;
                return 0;
            }
        } else if (pid_gone(pid)) {
            p->pid[which] = 0;
            return 0;
        }
        sleep_ms(10);
    }
    fprintf(stderr, "testenv: %s (pid %ld) did not exit within 30 s of signal %d\n",
            server_name[which], (long)pid, sig);
    return -1;
}

static int wait_ready(ibp_testenv_private *p, ibp_testenv_server which)
{
    long long end = mono_ms() + 60000;
    while (mono_ms() < end) {
        if (p->child[which]) {
            int status;
            if (waitpid(p->pid[which], &status, WNOHANG) == p->pid[which]) {
                p->child[which] = false;
                fprintf(stderr, "testenv: restarted %s exited (status %d)\n", server_name[which],
                        status);
                return -1;
            }
        }
        if (which == IBP_TESTENV_MYSQL) {
            MYSQL *m = mysql_init(NULL);
            unsigned t = 1;
            mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &t);
            bool ok =
                mysql_real_connect(m, p->env.mysql_host, p->env.mysql_user, p->env.mysql_password,
                                   NULL, p->env.mysql_port, NULL, 0) != NULL;
            mysql_close(m);
            if (ok)
                return 0;
        } else {
            natsConnection *nc = NULL;
            bool ok = false;
            if (nats_login(p->env.nats_url, &p->env.nats_users[IBP_TESTENV_NATS_TEST], 1000, &nc) ==
                NATS_OK) {
                jsCtx *js = NULL;
                jsAccountInfo *ai = NULL;
                if (natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
                    js_GetAccountInfo(&ai, js, NULL, NULL) == NATS_OK)
                    ok = true;
                jsAccountInfo_Destroy(ai);
                jsCtx_Destroy(js);
                natsConnection_Destroy(nc);
            }
            if (ok)
                return 0;
        }
        sleep_ms(50);
    }
    fprintf(stderr, "testenv: restarted %s not ready within 60 s\n", server_name[which]);
    return -1;
}

int ibp_testenv_private_restart(ibp_testenv_private *p, ibp_testenv_server which)
{
    char *argv[128];
    int argc = 0;
    for (size_t off = 0; off < p->cmdline_len[which] && argc < 127;) {
        argv[argc++] = p->cmdline[which] + off;
        off += strlen(p->cmdline[which] + off) + 1;
    }
    argv[argc] = NULL;
    char log[1200];
    snprintf(log, sizeof log, "%s/%s", p->env.dir,
             which == IBP_TESTENV_NATS ? "nats.out" : "mysqld.out");
    pid_t pid = ibp_testenv_spawn(argv, log, NULL);
    if (pid < 0)
        return -1;
    p->pid[which] = pid;
    p->child[which] = true;
    if (write_state_pid(p->state, state_pid_key[which], pid) != 0)
        return -1;
    long long t0 = mono_ms();
    if (wait_ready(p, which) != 0)
        return -1;
    printf("testenv: restarted %s (pid %ld), ready after %lld ms\n", server_name[which], (long)pid,
           mono_ms() - t0);
    fflush(stdout);
    return 0;
}

int ibp_testenv_private_stop(ibp_testenv_private *p)
{
    int rc = 0;
    if (p->started) {
        const char *sh = servers_sh();
        char *argv[] = {"bash", (char *)(sh ? sh : "servers.sh"), "stop", p->state, NULL};
        /* A frozen server would not stop. */
        for (int i = 0; i < 2; i++)
            if (p->pid[i] > 0)
                kill(p->pid[i], SIGCONT);
        if (sh == NULL || run_wait(argv) != 0)
            rc = -1;
        p->started = false;
    }
    for (int i = 0; i < 2; i++) {
        if (p->child[i] && ibp_testenv_kill_wait(p->pid[i], 0, 15000, NULL) != 0)
            rc = -1;
        p->child[i] = false;
        free(p->cmdline[i]);
        p->cmdline[i] = NULL;
    }
    if (p->dir[0] != '\0' && ibp_testenv_rmtree(p->dir) != 0)
        rc = -1;
    p->dir[0] = '\0';
    return rc;
}

pid_t ibp_testenv_spawn(char *const argv[], const char *log_path, char *const extra_env[])
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "testenv: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126); /* the test died before the line above */
        int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (in >= 0)
            dup2(in, 0);
        if (log_path) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
        }
        for (size_t i = 0; extra_env && extra_env[i]; i++)
            putenv(extra_env[i]);
        /* Default dispositions and an empty mask for the child. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(argv[0], argv);
        fprintf(stderr, "testenv: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

int ibp_testenv_kill_wait(pid_t pid, int sig, int timeout_ms, int *status)
{
    int st = 0;
    if (sig != 0 && kill(pid, sig) != 0 && errno != ESRCH) {
        fprintf(stderr, "testenv: kill %ld: %s\n", (long)pid, strerror(errno));
        return -1;
    }
    long long end = mono_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (status)
                *status = st;
            return 0;
        }
        if (r < 0) {
            fprintf(stderr, "testenv: waitpid %ld: %s\n", (long)pid, strerror(errno));
            return -1;
        }
        if (mono_ms() >= end)
            break;
        sleep_ms(5);
    }
    fprintf(stderr, "testenv: pid %ld did not exit within %d ms: SIGKILL\n", (long)pid, timeout_ms);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    if (status)
        *status = st;
    return -1;
}
