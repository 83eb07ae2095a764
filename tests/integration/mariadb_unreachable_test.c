/*
 * Migrating without a reachable database fails cleanly: IBP_E_DB with a
 * message that says what went wrong, no crash, no hang.
 *
 * The "server" is a TCP socket bound to 127.0.0.1 (a free port the kernel
 * chose) that never listens: connecting to it is refused at once, and the
 * port cannot be taken by anything else while the test holds it. Needs no
 * running server.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <errmsg.h>
#include <mysql.h>

#include "ibp/schema.h"
#include "ibp/status.h"

#define SQL_DIR IBP_SOURCE_DIR "/deploy/sql"

typedef struct ctx {
    int fd;
    unsigned port;
    MYSQL *db;
} ctx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    if (c == NULL)
        return -1;
    *state = c;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -1;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(c->fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockname(c->fd, (struct sockaddr *)&addr, &len) != 0) {
        fprintf(stderr, "bind 127.0.0.1:0: %s\n", strerror(errno));
        return -1;
    }
    c->port = ntohs(addr.sin_port);
    printf("nothing listens on 127.0.0.1:%u (bound, not listening)\n", c->port);
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    if (c != NULL) {
        mysql_close(c->db);
        if (c->fd >= 0)
            close(c->fd);
        free(c);
    }
    return 0;
}

static void test_connect_refused_then_migrate(void **state)
{
    ctx *c = *state;
    unsigned timeout_s = 2;
    ibp_err err;
    int version = -1;

    c->db = mysql_init(NULL);
    assert_non_null(c->db);
    mysql_optionsv(c->db, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_s);
    double t0 = now_s();
    MYSQL *r = mysql_real_connect(c->db, "127.0.0.1", "ibp", "x", "ibp", c->port, NULL, 0);
    double took = now_s() - t0;
    assert_null(r);
    printf("mysql_real_connect: %u %s (%.3f s)\n", mysql_errno(c->db), mysql_error(c->db), took);
    /* 2002 or 2003, depending on how the connector saw the refusal. */
    if (mysql_errno(c->db) != CR_CONNECTION_ERROR && mysql_errno(c->db) != CR_CONN_HOST_ERROR)
        fail_msg("connect to a closed port: MariaDB client error %u, want %d or %d",
                 mysql_errno(c->db), CR_CONNECTION_ERROR, CR_CONN_HOST_ERROR);
    assert_true(took < 1.5); /* refused at once, not a timeout */

    /* The caller ignores the failed connect: migrate must still fail cleanly. */
    ibp_err_clear(&err);
    t0 = now_s();
    ibp_status st = ibp_schema_migrate(c->db, SQL_DIR, &version, &err);
    took = now_s() - t0;
    printf("ibp_schema_migrate on it: %s: %s (%.3f s)\n", ibp_status_name(st), err.msg, took);
    if (st != IBP_E_DB)
        fail_msg("migrate without a server: got %s (%s), want IBP_E_DB", ibp_status_name(st),
                 err.msg);
    assert_int_equal(version, -1);
    assert_true(strlen(err.msg) > 0);
    if (strstr(err.msg, "MariaDB 20") == NULL)
        fail_msg("error message '%s' does not carry the client error code (20xx)", err.msg);
    assert_true(took < 2.0);

    ibp_err_clear(&err);
    st = ibp_schema_version(c->db, &version, &err);
    printf("ibp_schema_version on it: %s: %s\n", ibp_status_name(st), err.msg);
    assert_int_equal(st, IBP_E_DB);
    assert_int_equal(version, -1);
}

static void test_null_arguments(void **state)
{
    ibp_err err;
    int version = -1;
    ibp_err_clear(&err);
    assert_int_equal(ibp_schema_migrate(NULL, SQL_DIR, &version, &err), IBP_E_INVAL);
    assert_int_equal(ibp_schema_version(NULL, &version, &err), IBP_E_INVAL);
    assert_int_equal(version, -1);
    assert_non_null(ibp_schema_default_dir());
    printf("default migration dir: %s\n", ibp_schema_default_dir());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_connect_refused_then_migrate, setup, teardown),
        cmocka_unit_test(test_null_arguments),
    };
    return cmocka_run_group_tests_name("mariadb_unreachable", tests, NULL, NULL);
}
