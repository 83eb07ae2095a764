/* One process per work directory (ibp/dir_lock.h). flock locks belong to an
 * open file description, so a second open in this process conflicts just as
 * another process would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ibp/dir_lock.h"

static void test_second_holder_refused(void **state)
{
    (void)state;
    char dir[] = "/tmp/ibp-dirlock.XXXXXX";
    assert_non_null(mkdtemp(dir));
    int a = -1, b = -1;
    ibp_err err = {0};
    assert_int_equal(ibp_dir_lock(dir, "x.lock", &a, &err), IBP_OK);
    assert_true(a >= 0);
    assert_int_equal(ibp_dir_lock(dir, "x.lock", &b, &err), IBP_E_EXISTS);
    assert_int_equal(b, -1);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    assert_non_null(strstr(err.msg, pid));
    assert_non_null(strstr(err.msg, dir));
    /* Released: the next holder gets it. */
    ibp_dir_unlock(a);
    assert_int_equal(ibp_dir_lock(dir, "x.lock", &b, &err), IBP_OK);
    ibp_dir_unlock(b);
    ibp_dir_unlock(-1);
    char path[64];
    snprintf(path, sizeof path, "%s/x.lock", dir);
    unlink(path);
    rmdir(dir);
}

static void test_missing_directory(void **state)
{
    (void)state;
    int fd = -1;
    ibp_err err = {0};
    assert_int_equal(ibp_dir_lock("/nonexistent/ibp-dirlock", "x.lock", &fd, &err), IBP_E_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/ibp-dirlock/x.lock"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_holder_refused),
        cmocka_unit_test(test_missing_directory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
