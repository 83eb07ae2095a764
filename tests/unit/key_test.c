/* Unit tests: key generation, key files and their permission checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/stat.h>

#include "ibp/key.h"
#include "test_util.h"

static void test_save_load_round_trip(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    ibp_key k, loaded;
    ibp_err err;
    struct stat sb;
    test_path(path, sizeof path, dir, "node.key");
    assert_int_equal(ibp_key_generate(&k), IBP_OK);
    assert_int_equal(ibp_key_save(&k, path, &err), IBP_OK);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(ibp_key_load(path, &loaded, &err), IBP_OK);
    assert_memory_equal(k.pk, loaded.pk, sizeof k.pk);
    assert_memory_equal(k.sk, loaded.sk, sizeof k.sk);
    /* Never overwrites an existing key. */
    assert_int_equal(ibp_key_save(&k, path, &err), IBP_E_EXISTS);
    assert_non_null(strstr(err.msg, path));
    /* 0400 is fine too: owner only. */
    chmod(path, 0400);
    assert_int_equal(ibp_key_load(path, &loaded, &err), IBP_OK);
    ibp_key_wipe(&k);
    ibp_key_wipe(&loaded);
    test_rmdir(dir);
}

static void test_refuses_readable_by_others(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    ibp_key k, loaded;
    ibp_err err;
    test_path(path, sizeof path, dir, "node.key");
    assert_int_equal(ibp_key_generate(&k), IBP_OK);
    assert_int_equal(ibp_key_save(&k, path, &err), IBP_OK);
    const mode_t bad_modes[] = {0644, 0640, 0604, 0660, 0602, 0610};
    for (size_t i = 0; i < sizeof bad_modes / sizeof bad_modes[0]; i++) {
        chmod(path, bad_modes[i]);
        ibp_err_clear(&err);
        assert_int_equal(ibp_key_load(path, &loaded, &err), IBP_E_KEY_PERMS);
        assert_non_null(strstr(err.msg, path));
        assert_non_null(strstr(err.msg, "chmod 600"));
    }
    test_rmdir(dir);
}

static void test_refuses_malformed(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    ibp_key loaded;
    ibp_err err;
    const char *bad[] = {
        "",
        "hello\n",
        "ibp-ed25519-secret:\n",
        "ibp-ed25519-secret:AAAA\n",
        "ibp-ed25519-secret:!!!!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "ibp-ed25519-secret:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=junk\n",
    };
    test_path(path, sizeof path, dir, "bad.key");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unlink(path);
        test_write(path, bad[i], 0600);
        assert_int_equal(ibp_key_load(path, &loaded, &err), IBP_E_KEY_FORMAT);
        assert_non_null(strstr(err.msg, path));
    }
    /* A well-formed seed of zeros is a valid key. */
    unlink(path);
    test_write(path, "ibp-ed25519-secret:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", 0600);
    assert_int_equal(ibp_key_load(path, &loaded, &err), IBP_OK);
    /* Missing file and directories. */
    test_path(path, sizeof path, dir, "missing.key");
    assert_int_equal(ibp_key_load(path, &loaded, &err), IBP_E_IO);
    assert_non_null(strstr(err.msg, "missing.key"));
    assert_int_equal(ibp_key_load(dir, &loaded, &err), IBP_E_KEY_FORMAT);
    test_rmdir(dir);
}

static void test_public_key_text(void **state)
{
    (void)state;
    ibp_key k;
    char b64[IBP_PUBKEY_B64_SIZE];
    uint8_t pk[IBP_PUBKEY_BYTES];
    assert_int_equal(ibp_key_generate(&k), IBP_OK);
    ibp_key_public_b64(k.pk, b64);
    assert_int_equal(strlen(b64), IBP_PUBKEY_B64_SIZE - 1);
    assert_int_equal(ibp_key_public_parse(b64, pk), IBP_OK);
    assert_memory_equal(pk, k.pk, sizeof pk);
    assert_int_equal(ibp_key_public_parse("AAAA", pk), IBP_E_KEY_FORMAT);
    assert_int_equal(ibp_key_public_parse(NULL, pk), IBP_E_KEY_FORMAT);
    b64[3] = '*';
    assert_int_equal(ibp_key_public_parse(b64, pk), IBP_E_KEY_FORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_load_round_trip),
        cmocka_unit_test(test_refuses_readable_by_others),
        cmocka_unit_test(test_refuses_malformed),
        cmocka_unit_test(test_public_key_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
