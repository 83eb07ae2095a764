/*
 * Test environment of the integration tests: the servers that the CTest
 * fixture `servers` started (tests/harness/servers.sh), and helpers to reach
 * them.
 *
 * The fixture writes a state file of KEY=VALUE lines; each test finds it
 * through the environment variable IBP_TEST_SERVERS_ENV (set by
 * tests/integration/CMakeLists.txt). A missing variable, file or key is a
 * test failure with a message saying what to do, never a skip: integration
 * tests exist to run against real servers.
 *
 * Not thread-safe where noted; tests call these from their main thread.
 */
#ifndef IBP_TESTENV_H
#define IBP_TESTENV_H

#include <stdbool.h>
#include <stddef.h>

#include <mysql.h>
#include <nats/nats.h>

#define IBP_TESTENV_VAR "IBP_TEST_SERVERS_ENV"

/*
 * The NATS users of the test servers (servers.sh, "NATS users"). The server
 * requires a login. TEST is the test administrator (every subject), the
 * identity of the tests' own connections; the others carry the permissions
 * of their role (DESIGN.md §13) with node-id wildcards, for the daemons a
 * test starts. MONITOR_CONSENSUS is the union of the two, for a node with
 * both roles.
 */
typedef enum ibp_testenv_nats_role {
    IBP_TESTENV_NATS_TEST = 0,          /* NATS_USER, NATS_PASSWORD_FILE */
    IBP_TESTENV_NATS_MONITOR,           /* NATS_MONITOR_USER, NATS_MONITOR_PASSWORD_FILE */
    IBP_TESTENV_NATS_CONSENSUS,         /* NATS_CONSENSUS_... */
    IBP_TESTENV_NATS_DNS,               /* NATS_DNS_... */
    IBP_TESTENV_NATS_PERSIST,           /* NATS_PERSIST_... */
    IBP_TESTENV_NATS_ADMIN,             /* NATS_ADMIN_... (operator: overrides, queries) */
    IBP_TESTENV_NATS_MONITOR_CONSENSUS, /* NATS_MONITOR_CONSENSUS_... */
    IBP_TESTENV_NATS_ROLES              /* how many */
} ibp_testenv_nats_role;

typedef struct ibp_testenv_nats_user {
    char user[64];            /* NATS_<ROLE>_USER */
    char password_file[1024]; /* NATS_<ROLE>_PASSWORD_FILE (mode 0600) */
    char password[128];       /* its contents, read by ibp_testenv_load */
} ibp_testenv_nats_user;

typedef struct ibp_testenv {
    char path[1024];       /* the state file read */
    char dir[1024];        /* IBP_TEST_DIR: the servers' private directory */
    char nats_url[256];    /* NATS_URL, "nats://127.0.0.1:<port>" */
    unsigned nats_port;    /* NATS_PORT */
    char nats_version[64]; /* NATS_SERVER_VERSION, e.g. "v2.9.10" */
    /* The NATS users, indexed by ibp_testenv_nats_role. */
    ibp_testenv_nats_user nats_users[IBP_TESTENV_NATS_ROLES];
    /* nats_url with the test administrator's credentials,
     * "nats://<user>:<password>@127.0.0.1:<port>": for ibp_bus_connect_url and
     * the --nats option of ibpctl. */
    char nats_auth_url[512];
    char mysql_host[64];       /* MYSQL_HOST, always "127.0.0.1" */
    unsigned mysql_port;       /* MYSQL_PORT */
    char mysql_socket[1024];   /* MYSQL_SOCKET */
    char mysql_user[64];       /* MYSQL_USER */
    char mysql_password[128];  /* MYSQL_PASSWORD */
    char mariadb_version[128]; /* MARIADB_VERSION, SELECT VERSION() of the server */
} ibp_testenv;

/*
 * Reads the state file named by $IBP_TEST_SERVERS_ENV into *env.
 * Returns 0, or -1 after printing to stderr why (variable unset, file
 * missing, a required key missing or malformed).
 */
int ibp_testenv_load(ibp_testenv *env);

/* As ibp_testenv_load, for an explicit path. */
int ibp_testenv_load_file(const char *path, ibp_testenv *env);

/* Prints the servers and their versions to stdout, one line each. */
void ibp_testenv_print(const ibp_testenv *env);

/*
 * Writes "<prefix>_<pid>_<8 random hex digits>" into buf (NUL-terminated),
 * unique across parallel test processes and repeated runs. The result is a
 * valid JetStream stream name, NATS subject token and MariaDB identifier
 * when prefix is made of [A-Za-z0-9_]. Returns 0, or -1 if cap is too small.
 */
int ibp_testenv_unique_name(const char *prefix, char *buf, size_t cap);

/*
 * Connects to the test nats-server as the test administrator (2 s timeout,
 * no reconnect wait beyond the test's life). The caller destroys *out with
 * natsConnection_Destroy. Returns the nats.c status; on failure prints it
 * with the URL and the user.
 */
natsStatus ibp_testenv_nats_connect(const ibp_testenv *env, natsConnection **out);

/* As ibp_testenv_nats_connect, as the user of role. */
natsStatus ibp_testenv_nats_connect_as(const ibp_testenv *env, ibp_testenv_nats_role role,
                                       natsConnection **out);

/* The user's name of role in the state file's keys ("test", "monitor", ...). */
const char *ibp_testenv_nats_role_name(ibp_testenv_nats_role role);

/*
 * Writes the URL of the test nats-server with the credentials of role
 * ("nats://<user>:<password>@127.0.0.1:<port>") into buf. Returns 0, or -1
 * after printing why (cap too small).
 */
int ibp_testenv_nats_url(const ibp_testenv *env, ibp_testenv_nats_role role, char *buf, size_t cap);

/*
 * Writes the "nats" member of a daemon's JSON config (ibp-node, ibp-persist)
 * that logs in as the user of role, with no leading or trailing comma:
 *   "nats": {"servers": ["nats://127.0.0.1:<port>"], "user": "<user>",
 *            "password_file": "<file>"}
 * Returns 0, or -1 after printing why (cap too small).
 */
int ibp_testenv_nats_json(const ibp_testenv *env, ibp_testenv_nats_role role, char *buf,
                          size_t cap);

/*
 * Asks the test nats-server for its version: connects over TCP and reads the
 * "version" of the INFO line every NATS server sends first (nats.c 3.4.1 has
 * no call for it). Writes it into buf ("2.9.10"). Returns 0, or -1 after
 * printing why.
 */
int ibp_testenv_nats_server_version(const ibp_testenv *env, char *buf, size_t cap);

/*
 * Connects to the test MariaDB over TCP (127.0.0.1:port) as the test user,
 * with utf8mb4 and a 5 s connect timeout, selecting database db (NULL for
 * none). Returns the handle (close with mysql_close), or NULL after printing
 * the client error.
 */
MYSQL *ibp_testenv_mysql_connect(const ibp_testenv *env, const char *db);

/*
 * Runs one statement that returns no rows (printf-style). Returns 0, or -1
 * after printing the statement and the server's error.
 */
int ibp_testenv_mysql_exec(MYSQL *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Runs a query whose first row's first column is an integer and stores it in
 * *out. Returns 0, or -1 after printing why (error, no row, NULL, not a number).
 */
int ibp_testenv_mysql_query_int(MYSQL *db, long long *out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Makes a private temporary directory "${TMPDIR:-/tmp}/ibp-it.XXXXXX" and
 * writes its path into buf. Returns 0 or -1. ibp_testenv_rmtree removes it.
 */
int ibp_testenv_mkdtemp(char *buf, size_t cap);
int ibp_testenv_rmtree(const char *path);

/* ---- private servers and child processes --------------------------------
 *
 * Tests that stop, kill or restart a server must not touch the shared
 * fixture: they start a private pair with servers.sh (its own state file in
 * a private directory; --watch-parent, so the servers go when the test dies)
 * and may stop and restart each server. A restarted server runs with the
 * exact command line it had (read from /proc before it was stopped), as a
 * child of the test with PR_SET_PDEATHSIG = SIGKILL, and its pid is written
 * back into the state file so that `servers.sh stop` stops it.
 *
 * Environment (set by tests/integration/CMakeLists.txt):
 *   IBP_TEST_SERVERS_SH   path of tests/harness/servers.sh (required)
 *   IBP_TEST_FREEPORT     path of ibp-test-freeport (read by servers.sh)
 *   IBP_TEST_CACHE_DIR    where servers.sh keeps its MariaDB template
 *
 * Not thread-safe: call from the test's main thread.
 */

#include <sys/types.h>

typedef enum ibp_testenv_server {
    IBP_TESTENV_NATS = 0,
    IBP_TESTENV_MYSQL = 1,
} ibp_testenv_server;

typedef struct ibp_testenv_private {
    ibp_testenv env;  /* the private servers, as ibp_testenv_load reads them */
    char dir[1024];   /* private directory holding the state file */
    char state[1100]; /* the state file */
    pid_t pid[2];     /* current pids (NATS, MySQL) */
    char *cmdline[2]; /* NUL-separated argv of each server, for restarts */
    size_t cmdline_len[2];
    bool child[2]; /* the current process is our child (restarted) */
    bool started;
} ibp_testenv_private;

/*
 * Starts a private nats-server and MariaDB (servers.sh start, typically
 * 0.3-2 s), with the same users as the fixture's (p->env.nats_users, each
 * with a fresh password). Returns 0, or -1 after printing why. Always call
 * ibp_testenv_private_stop afterwards, also after a failure.
 */
int ibp_testenv_private_start(ibp_testenv_private *p);

/* Stops both servers and removes every file (servers.sh stop). Returns 0 or -1. */
int ibp_testenv_private_stop(ibp_testenv_private *p);

/*
 * Sends sig (SIGTERM: clean stop, SIGKILL: crash, SIGSTOP: freeze) to one
 * server and, unless sig is SIGSTOP or SIGCONT, waits up to 30 s until it is
 * gone. Returns 0, or -1 after printing why.
 */
int ibp_testenv_private_signal(ibp_testenv_private *p, ibp_testenv_server which, int sig);

/*
 * Starts a stopped server again with its original command line (same port,
 * same data directory) and waits until it accepts connections (MariaDB: a
 * login works; NATS: JetStream answers). Returns 0, or -1 after printing why.
 */
int ibp_testenv_private_restart(ibp_testenv_private *p, ibp_testenv_server which);

/*
 * Starts argv[0] (a path) with argv as a child of the test, stdout and
 * stderr appended to log_path (NULL: inherited), dying with the test
 * (PR_SET_PDEATHSIG = SIGKILL). extra_env (NULL-terminated "K=V" list, may
 * be NULL) is added to the environment. Returns the pid, or -1.
 */
pid_t ibp_testenv_spawn(char *const argv[], const char *log_path, char *const extra_env[]);

/*
 * Sends sig to pid (if sig != 0) and waits up to timeout_ms for it to exit;
 * *status (may be NULL) gets its waitpid status. Returns 0 when it exited,
 * -1 on timeout (it is then killed with SIGKILL and reaped) or error.
 */
int ibp_testenv_kill_wait(pid_t pid, int sig, int timeout_ms, int *status);

#endif
