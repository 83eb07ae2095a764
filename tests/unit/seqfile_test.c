/* Unit tests: durable sequence numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "ibp/seqfile.h"
#include "test_util.h"

static void test_starts_at_one_and_survives_restarts(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    ibp_seqfile *sf;
    ibp_err err;
    uint64_t seq = 0, last = 0;
    test_path(path, sizeof path, dir, "node.seq");
    assert_int_equal(ibp_seqfile_open(path, &sf, &err), IBP_OK);
    assert_int_equal(ibp_seqfile_last(sf), 0);
    for (uint64_t i = 1; i <= 2 * IBP_SEQFILE_BLOCK + 5; i++) {
        assert_int_equal(ibp_seqfile_next(sf, &seq, &err), IBP_OK);
        assert_int_equal(seq, i);
    }
    last = seq;
    ibp_seqfile_close(sf);
    /* Reopening (as after a crash) continues strictly above everything handed out. */
    for (int round = 0; round < 3; round++) {
        assert_int_equal(ibp_seqfile_open(path, &sf, &err), IBP_OK);
        assert_int_equal(ibp_seqfile_next(sf, &seq, &err), IBP_OK);
        assert_true(seq > last);
        assert_true(seq <= last + IBP_SEQFILE_BLOCK + 1);
        last = seq;
        ibp_seqfile_close(sf);
    }
    test_rmdir(dir);
}

static void test_corrupt_file_is_refused(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    ibp_seqfile *sf = NULL;
    ibp_err err;
    const char *bad[] = {"", "garbage\n", "ibp-seq v1 reserved=\n", "ibp-seq v1 reserved=12x\n",
                         "ibp-seq v1 reserved=-3\n"};
    test_path(path, sizeof path, dir, "node.seq");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        test_write(path, bad[i], 0600);
        assert_int_equal(ibp_seqfile_open(path, &sf, &err), IBP_E_CONFIG);
        assert_non_null(strstr(err.msg, path));
    }
    assert_int_equal(ibp_seqfile_open("", &sf, &err), IBP_E_INVAL);
    test_rmdir(dir);
}

static void test_unwritable_directory(void **state)
{
    (void)state;
    ibp_seqfile *sf = NULL;
    ibp_err err;
    uint64_t seq;
    assert_int_equal(ibp_seqfile_open("/nonexistent-ibp-dir/node.seq", &sf, &err), IBP_OK);
    assert_int_equal(ibp_seqfile_next(sf, &seq, &err), IBP_E_IO);
    assert_non_null(strstr(err.msg, "/nonexistent-ibp-dir/node.seq"));
    ibp_seqfile_close(sf);
}

/* Raising to a floor learned elsewhere: durable, never lowers, idempotent. */
static void test_raise_to_floor(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    ibp_seqfile *sf;
    ibp_err err;
    uint64_t seq = 0;
    bool raised = true;
    test_path(path, sizeof path, dir, "node.seq");
    assert_int_equal(ibp_seqfile_open(path, &sf, &err), IBP_OK);
    assert_int_equal(ibp_seqfile_raise(sf, 0, &raised, &err), IBP_OK);
    assert_false(raised);
    assert_int_equal(ibp_seqfile_raise(sf, 5000, &raised, &err), IBP_OK);
    assert_true(raised);
    assert_int_equal(ibp_seqfile_last(sf), 5000);
    assert_int_equal(ibp_seqfile_next(sf, &seq, &err), IBP_OK);
    assert_int_equal(seq, 5001);
    assert_int_equal(ibp_seqfile_raise(sf, 4000, &raised, &err), IBP_OK); /* never lowers */
    assert_false(raised);
    assert_int_equal(ibp_seqfile_last(sf), 5001);
    ibp_seqfile_close(sf);
    /* The floor was made durable before raise returned: a crash right after it
     * (no next() since) still continues above it. */
    assert_int_equal(ibp_seqfile_open(path, &sf, &err), IBP_OK);
    assert_int_equal(ibp_seqfile_raise(sf, 9000, &raised, &err), IBP_OK);
    ibp_seqfile_close(sf);
    assert_int_equal(ibp_seqfile_open(path, &sf, &err), IBP_OK);
    assert_int_equal(ibp_seqfile_next(sf, &seq, &err), IBP_OK);
    assert_true(seq > 9000);
    ibp_seqfile_close(sf);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starts_at_one_and_survives_restarts),
        cmocka_unit_test(test_corrupt_file_is_refused),
        cmocka_unit_test(test_unwritable_directory),
        cmocka_unit_test(test_raise_to_floor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
