/*
 * The unix-socket connector of the dns role (ibp/dns_connector.h): line
 * framing (several requests in one write, one request over several writes),
 * answers in order, an oversized line refused and its connection closed
 * while other connections go on, and a stop with clients still connected.
 * A unix socket in a private directory; no network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ibp/dns_connector.h"

static _Atomic int rejects;

/* Answers {"result":"<the request>"} (requests here are plain words). */
static void echo(void *user, const char *req, size_t len, ibp_dns_buf *out)
{
    (void)user;
    ibp_dns_buf_reset(out);
    ibp_dns_buf_puts(out, "{\"result\":\"");
    ibp_dns_buf_add(out, req, len);
    ibp_dns_buf_puts(out, "\"}");
}

static void on_reject(void *user, ibp_dns_reject why, const char *detail)
{
    (void)user;
    (void)detail;
    if (why == IBP_DNS_REJECT_TOO_LARGE)
        rejects++;
}

static int dial(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(fd >= 0 && strlen(path) < sizeof sa.sun_path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Reads until want lines arrived (5 s at most) into buf. */
static void read_lines(int fd, char *buf, size_t cap, int want)
{
    size_t len = 0;
    int lines = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (lines < want && len < cap - 1 && poll(&p, 1, 5000) > 0) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            lines += buf[len + (size_t)i] == '\n';
        len += (size_t)r;
    }
    buf[len] = '\0';
    if (lines < want)
        fail_msg("got %d lines, want %d: %s", lines, want, buf);
}

static void test_unix_connector(void **state)
{
    (void)state;
    char dir[] = "/tmp/ibp-dns-conn.XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/b.sock", dir);
    ibp_dns_connector_opts o;
    ibp_dns_connector_opts_init(&o);
    o.handler = echo;
    o.on_reject = on_reject;
    o.unix_path = path;
    o.max_request_bytes = 1024;
    ibp_dns_unix *u = NULL;
    ibp_err err = {0};
    assert_int_equal(ibp_dns_unix_start(&o, &u, &err), IBP_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0660);

    char buf[8192];
    int a = dial(path), b = dial(path);
    /* Two requests in one write, answered in order. */
    assert_int_equal(write(a, "one\ntwo\n", 8), 8);
    read_lines(a, buf, sizeof buf, 2);
    assert_string_equal(buf, "{\"result\":\"one\"}\n{\"result\":\"two\"}\n");
    /* One request over three writes. */
    assert_int_equal(write(a, "thr", 3), 3);
    usleep(20000);
    assert_int_equal(write(a, "ee", 2), 2);
    usleep(20000);
    assert_int_equal(write(a, "\n", 1), 1);
    read_lines(a, buf, sizeof buf, 1);
    assert_string_equal(buf, "{\"result\":\"three\"}\n");

    /* A line over the limit: that connection is closed, the other goes on. */
    char big[3000];
    memset(big, 'x', sizeof big);
    assert_int_equal(write(b, big, sizeof big), (ssize_t)sizeof big);
    struct pollfd p = {.fd = b, .events = POLLIN};
    assert_true(poll(&p, 1, 5000) > 0);
    assert_true(read(b, buf, sizeof buf) <= 0);
    close(b);
    assert_int_equal(rejects, 1);
    assert_int_equal(write(a, "four\n", 5), 5);
    read_lines(a, buf, sizeof buf, 1);
    assert_string_equal(buf, "{\"result\":\"four\"}\n");

    ibp_dns_connector_stats s;
    ibp_dns_unix_stats_get(u, &s);
    assert_int_equal(s.connections, 2);
    assert_int_equal(s.requests, 4);
    assert_int_equal(s.too_large, 1);

    /* Stop with a client connected and idle: its thread is woken and joined. */
    ibp_dns_unix_stop(u);
    assert_true(read(a, buf, sizeof buf) <= 0);
    close(a);
    assert_int_not_equal(access(path, F_OK), 0); /* the socket file is gone */
    rmdir(dir);
}

static void test_unix_connector_errors(void **state)
{
    (void)state;
    ibp_dns_connector_opts o;
    ibp_dns_connector_opts_init(&o);
    ibp_dns_unix *u = NULL;
    ibp_err err = {0};
    assert_int_equal(ibp_dns_unix_start(&o, &u, &err), IBP_E_INVAL); /* no handler, no path */
    o.handler = echo;
    o.unix_path = "/nonexistent-dir/b.sock";
    assert_int_equal(ibp_dns_unix_start(&o, &u, &err), IBP_E_IO);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/b.sock"));
    char longpath[200];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    o.unix_path = longpath;
    assert_int_equal(ibp_dns_unix_start(&o, &u, &err), IBP_E_CONFIG);
    assert_null(u);
    ibp_dns_unix_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unix_connector),
        cmocka_unit_test(test_unix_connector_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
