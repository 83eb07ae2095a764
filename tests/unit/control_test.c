/*
 * Unit tests: the local control socket (no NATS): the socket file and its
 * mode, every command, bad input answered with an error on a connection that
 * stays usable, over-long lines, stale and live sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "ibp/control.h"
#include "ibp/log.h"
#include "ibp/roster.h"
#include "test_util.h"

typedef struct fx {
    char *dir;
    char path[512];
    ibp_store *store;
    ibp_control *ctl;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    ibp_err err = {0};
    ibp_log_set_level(IBP_LOG_ERROR);
    f->dir = test_tmpdir();
    test_path(f->path, sizeof f->path, f->dir, IBP_CONTROL_SOCKET_NAME);
    assert_int_equal(ibp_store_new(NULL, &f->store), IBP_OK);
    ibp_control_opts o;
    ibp_control_opts_init(&o);
    o.socket_path = f->path;
    o.node_id = "mon1";
    o.roles = IBP_ROLE_MONITOR | IBP_ROLE_CONSENSUS;
    o.store = f->store;
    o.accept_observations = true;
    o.max_line_bytes = 4096;
    if (ibp_control_start(&o, &f->ctl, &err) != IBP_OK)
        fail_msg("start: %s", err.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    ibp_control_stop(f->ctl);
    ibp_store_free(f->store);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        fail_msg("connect %s: %s", path, strerror(errno));
    return fd;
}

/* Sends text (one or more lines) and reads one answer line into buf. */
static void ask(int fd, const char *text, char *buf, size_t cap)
{
    size_t n = strlen(text);
    assert_int_equal(send(fd, text, n, MSG_NOSIGNAL), (ssize_t)n);
    size_t used = 0;
    while (used + 1 < cap) {
        ssize_t r = recv(fd, buf + used, 1, 0); /* byte by byte: keep the next answer */
        if (r <= 0)
            fail_msg("no answer to %s", text);
        if (buf[used] == '\n')
            break;
        used++;
    }
    buf[used] = '\0';
}

static json_t *ask_json(int fd, const char *text)
{
    char buf[8192];
    ask(fd, text, buf, sizeof buf);
    json_t *j = json_loads(buf, 0, NULL);
    if (!j)
        fail_msg("answer is not JSON: %s", buf);
    return j;
}

static void expect_error(int fd, const char *text, const char *fragment)
{
    json_t *j = ask_json(fd, text);
    assert_false(json_is_true(json_object_get(j, "ok")));
    const char *msg = json_string_value(json_object_get(j, "error"));
    assert_non_null(msg);
    if (!strstr(msg, fragment))
        fail_msg("error '%s' does not mention '%s' (request %s)", msg, fragment, text);
    json_decref(j);
}

static void test_socket_mode(void **state)
{
    fx *f = *state;
    struct stat st;
    assert_int_equal(lstat(f->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_status(void **state)
{
    fx *f = *state;
    int fd = connect_to(f->path);
    json_t *j = ask_json(fd, "{\"cmd\":\"status\"}\n");
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_string_equal(json_string_value(json_object_get(j, "node")), "mon1");
    json_t *roles = json_object_get(j, "roles");
    assert_int_equal(json_array_size(roles), 2);
    assert_string_equal(json_string_value(json_array_get(roles, 0)), "monitor");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "official"), "epoch")),
                     0);
    json_decref(j);
    close(fd);
}

static void test_observe(void **state)
{
    fx *f = *state;
    int fd = connect_to(f->path);
    json_t *j = ask_json(fd, "{\"cmd\":\"observe\",\"type\":\"endpoint\",\"check\":\"wss\","
                             "\"member\":\"Stake Plus\",\"domain\":\"RPC.Example.NET.\","
                             "\"endpoint\":\"wss://rpc.example.net/polkadot\",\"ipv6\":true,"
                             "\"up\":false,\"error\":\"timeout\",\"data\":{\"b\":1,\"a\":2},"
                             "\"check_time_ms\":1700000000123}\n");
    assert_true(json_is_true(json_object_get(j, "ok")));
    json_decref(j);
    ibp_result_key k = {IBP_CHECK_ENDPOINT,
                        "wss",
                        "Stake Plus",
                        "rpc.example.net",
                        "wss://rpc.example.net/polkadot",
                        true};
    ibp_result *r = NULL;
    assert_int_equal(ibp_store_local_get(f->store, &k, &r), IBP_OK);
    assert_false(r->up);
    assert_int_equal(r->check_time_ms, 1700000000123);
    assert_string_equal(r->error, "timeout");
    assert_string_equal(r->data_json, "{\"a\":2,\"b\":1}");
    ibp_result_free(r);

    /* "status" stands for "up"; check_time_ms defaults to now. */
    j = ask_json(fd, "{\"cmd\":\"observe\",\"type\":\"site\",\"check\":\"ping\","
                     "\"member\":\"Stake Plus\",\"status\":\"up\"}\n");
    assert_true(json_is_true(json_object_get(j, "ok")));
    json_decref(j);
    ibp_result_key ks = {IBP_CHECK_SITE, "ping", "Stake Plus", NULL, NULL, false};
    assert_int_equal(ibp_store_local_get(f->store, &ks, &r), IBP_OK);
    assert_true(r->up);
    assert_true(r->check_time_ms > 1700000000000);
    ibp_result_free(r);
    close(fd);
}

static void test_bad_input_keeps_connection(void **state)
{
    fx *f = *state;
    int fd = connect_to(f->path);
    expect_error(fd, "not json\n", "not JSON");
    expect_error(fd, "[1,2]\n", "JSON object");
    expect_error(fd, "{\"x\":1}\n", "\"cmd\" is missing");
    expect_error(fd, "{\"cmd\":\"reboot\"}\n", "unknown cmd");
    expect_error(fd,
                 "{\"cmd\":\"observe\",\"type\":\"host\",\"check\":\"c\",\"member\":\"m\","
                 "\"up\":true}\n",
                 "\"type\"");
    expect_error(fd, "{\"cmd\":\"observe\",\"type\":\"site\",\"check\":\"c\",\"member\":\"m\"}\n",
                 "\"up\"");
    expect_error(fd,
                 "{\"cmd\":\"observe\",\"type\":\"site\",\"check\":\"c\",\"member\":\"m\","
                 "\"domain\":\"d.example\",\"up\":true}\n",
                 "domain");
    expect_error(fd,
                 "{\"cmd\":\"observe\",\"type\":\"site\",\"check\":\"c\",\"member\":\"m\","
                 "\"up\":true,\"data\":[1]}\n",
                 "\"data\"");
    expect_error(fd,
                 "{\"cmd\":\"observe\",\"type\":\"site\",\"check\":\"c\",\"member\":\"m\","
                 "\"up\":true,\"ipv6\":\"yes\"}\n",
                 "\"ipv6\"");
    expect_error(fd, "{\"cmd\":\"member_online\",\"member\":\"m\"}\n", "\"domain\"");
    expect_error(fd, "{\"cmd\":\"flush\"}\n", "does not publish");
    expect_error(fd, "{\"cmd\":\"dns_hit\",\"domain\":\"d\"}\n", "usage");
    /* Two requests in one write, a blank line and CRLF in between. */
    char buf[8192];
    ask(fd, "{\"cmd\":\"status\"}\r\n\n{\"cmd\":\"status\"}\n", buf, sizeof buf);
    assert_non_null(strstr(buf, "\"ok\":true"));
    ask(fd, "", buf, sizeof buf);
    assert_non_null(strstr(buf, "\"ok\":true"));
    /* An over-long line (limit 4096 here) is refused once, then skipped. */
    char *big = malloc(20000);
    memset(big, 'x', 19998);
    big[19998] = '\n';
    big[19999] = '\0';
    expect_error(fd, big, "longer than 4096");
    free(big);
    /* The same line arriving in pieces: refused as soon as it is too long,
     * its rest skipped up to the newline. */
    big = malloc(5001);
    memset(big, 'x', 5000);
    big[5000] = '\0';
    expect_error(fd, big, "longer than 4096");
    free(big);
    json_t *j = ask_json(fd, "xxxx\n{\"cmd\":\"status\"}\n");
    assert_true(json_is_true(json_object_get(j, "ok")));
    json_decref(j);
    j = ask_json(fd, "{\"cmd\":\"status\"}\n");
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_true(json_integer_value(json_object_get(json_object_get(j, "control"), "errors")) >= 14);
    json_decref(j);
    close(fd);
}

static void test_member_online_and_official(void **state)
{
    fx *f = *state;
    ibp_result_key k = {IBP_CHECK_DOMAIN, "ssl", "Stake Plus", "rpc.example.net", NULL, false};
    ibp_result *r = NULL;
    ibp_err err;
    assert_int_equal(ibp_result_new(&k, false, 1700000000000, "expired", "", &r, &err), IBP_OK);
    const ibp_result *list[] = {r};
    assert_int_equal(ibp_store_set_official(f->store, list, 1, 7, false, &err), IBP_OK);
    ibp_result_free(r);

    int fd = connect_to(f->path);
    json_t *j = ask_json(fd, "{\"cmd\":\"member_online\",\"domain\":\"RPC.example.net.\","
                             "\"member\":\"Stake Plus\"}\n");
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_true(json_is_false(json_object_get(j, "online")));
    assert_int_equal(json_integer_value(json_object_get(j, "epoch")), 7);
    json_decref(j);
    j = ask_json(fd, "{\"cmd\":\"member_online\",\"domain\":\"rpc.example.net\","
                     "\"member\":\"Stake Plus\",\"ipv6\":true}\n");
    assert_true(json_is_true(json_object_get(j, "online")));
    json_decref(j);
    j = ask_json(fd, "{\"cmd\":\"official\",\"type\":\"domain\",\"check\":\"ssl\","
                     "\"member\":\"Stake Plus\",\"domain\":\"rpc.example.net\"}\n");
    assert_true(json_is_true(json_object_get(j, "found")));
    assert_true(json_is_false(json_object_get(j, "up")));
    assert_string_equal(json_string_value(json_object_get(j, "error")), "expired");
    json_decref(j);
    j = ask_json(fd, "{\"cmd\":\"official\",\"type\":\"site\",\"check\":\"ping\","
                     "\"member\":\"Nobody\"}\n");
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_true(json_is_false(json_object_get(j, "found")));
    json_decref(j);
    close(fd);
}

static void test_execute(void **state)
{
    fx *f = *state;
    const char req[] = "{\"cmd\":\"status\"} trailing";
    char *a = ibp_control_execute(f->ctl, req, 16); /* only the object */
    assert_non_null(a);
    assert_non_null(strstr(a, "\"node\":\"mon1\""));
    assert_null(strchr(a, '\n'));
    free(a);
}

static int reloads;
static ibp_status fake_reload(void *user, ibp_err *err)
{
    bool *refuse = user;
    reloads++;
    if (*refuse)
        return ibp_err_set(err, IBP_E_CONFIG, "checks.json: not JSON");
    return IBP_OK;
}

static void test_reload(void **state)
{
    fx *f = *state;
    /* A node without a reload function (no monitor role) says so. */
    int fd = connect_to(f->path);
    expect_error(fd, "{\"cmd\":\"reload\"}\n", "nothing to reload");
    close(fd);

    char path[600];
    test_path(path, sizeof path, f->dir, "reload.sock");
    bool refuse = false;
    ibp_control_opts o;
    ibp_control_opts_init(&o);
    o.socket_path = path;
    o.node_id = "mon1";
    o.store = f->store;
    o.reload_fn = fake_reload;
    o.reload_user = &refuse;
    ibp_control *ctl = NULL;
    ibp_err err = {0};
    assert_int_equal(ibp_control_start(&o, &ctl, &err), IBP_OK);
    fd = connect_to(path);
    reloads = 0;
    json_t *j = ask_json(fd, "{\"cmd\":\"reload\"}\n");
    assert_true(json_is_true(json_object_get(j, "ok")));
    json_decref(j);
    refuse = true;
    expect_error(fd, "{\"cmd\":\"reload\"}\n", "old config stays: checks.json: not JSON");
    assert_int_equal(reloads, 2);
    close(fd);
    ibp_control_stop(ctl);
}

static void test_live_and_stale_sockets(void **state)
{
    fx *f = *state;
    ibp_err err = {0};
    ibp_control *other = NULL;
    ibp_control_opts o;
    ibp_control_opts_init(&o);
    o.socket_path = f->path;
    o.node_id = "mon2";
    o.store = f->store;
    /* The running one answers: refused. */
    assert_int_equal(ibp_control_start(&o, &other, &err), IBP_E_EXISTS);
    assert_non_null(strstr(err.msg, "in use"));

    /* A stale socket (bound, nobody listening) is replaced. */
    char stale[600];
    test_path(stale, sizeof stale, f->dir, "stale.sock");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, stale, strlen(stale) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
    o.socket_path = stale;
    assert_int_equal(ibp_control_start(&o, &other, &err), IBP_OK);
    fd = connect_to(stale);
    json_t *j = ask_json(fd, "{\"cmd\":\"observe\",\"type\":\"site\",\"check\":\"c\","
                             "\"member\":\"m\",\"up\":true}\n");
    assert_string_equal(json_string_value(json_object_get(j, "error")),
                        "this node does not publish observations (role monitor is not set)");
    json_decref(j);
    close(fd);
    ibp_control_stop(other);
    struct stat st;
    assert_int_equal(lstat(stale, &st), -1); /* removed at stop */

    /* A regular file is never replaced. */
    test_write(stale, "x", 0600);
    assert_int_equal(ibp_control_start(&o, &other, &err), IBP_E_EXISTS);
    /* Too long for a unix socket. */
    char longp[300];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = '\0';
    o.socket_path = longp;
    assert_int_equal(ibp_control_start(&o, &other, &err), IBP_E_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_socket_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_observe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_keeps_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_online_and_official, setup, teardown),
        cmocka_unit_test_setup_teardown(test_execute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_and_stale_sockets, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
