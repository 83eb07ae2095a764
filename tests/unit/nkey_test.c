/*
 * Unit tests: NATS user nkeys (seed decoding, public key derivation, seed
 * files and their permission checks).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>
#include <sys/stat.h>

#include "ibp/key.h"
#include "ibp/nkey.h"
#include "test_util.h"

/* The example of the NATS documentation (nkeys, "nk -gen user -pubout"). */
#define DOC_SEED "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY"
#define DOC_PUBLIC "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"

/*
 * An encoder written apart from the module's, so that seeds of other kinds
 * and seeds with a wrong CRC can be built: base32 (no padding) of raw, with
 * CRC-16/XMODEM appended little-endian (xor'ed with crc_xor to corrupt it).
 */
static void encode_raw(const uint8_t *raw, size_t n, uint16_t crc_xor, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    uint8_t buf[64];
    uint16_t crc = 0;
    memcpy(buf, raw, n);
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    crc ^= crc_xor;
    buf[n] = (uint8_t)(crc & 0xff);
    buf[n + 1] = (uint8_t)(crc >> 8);
    n += 2;
    size_t o = 0, bits = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | buf[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = abc[(acc >> bits) & 31];
        }
    }
    if (bits)
        out[o++] = abc[(acc << (5 - bits)) & 31];
    out[o] = '\0';
}

/* A seed of kind `prefix` (nkeys.go: user 20<<3, account 0, operator 14<<3). */
static void encode_seed_of_kind(unsigned prefix, const uint8_t seed[32], uint16_t crc_xor,
                                char *out)
{
    uint8_t raw[34];
    raw[0] = (uint8_t)((18u << 3) | (prefix >> 5));
    raw[1] = (uint8_t)((prefix & 31u) << 3);
    memcpy(raw + 2, seed, 32);
    encode_raw(raw, sizeof raw, crc_xor, out);
}

static ibp_status derive(const char *text, char pub[IBP_NKEY_PUBLIC_SIZE], ibp_err *err)
{
    ibp_err_clear(err);
    return ibp_nkey_user_public_from_seed(text, strlen(text), pub, err);
}

static void expect_format_error(const char *text, const char *words)
{
    char pub[IBP_NKEY_PUBLIC_SIZE] = "untouched";
    ibp_err err;
    ibp_status st = derive(text, pub, &err);
    print_message("seed '%s' -> %s: %s\n", text, ibp_status_name(st), err.msg);
    assert_int_equal(st, IBP_E_KEY_FORMAT);
    assert_non_null(strstr(err.msg, words));
    assert_string_equal(pub, "untouched"); /* out-parameter only set on success */
}

static void test_documented_vector(void **state)
{
    (void)state;
    char pub[IBP_NKEY_PUBLIC_SIZE];
    ibp_err err;
    assert_int_equal(strlen(DOC_SEED), IBP_NKEY_SEED_LEN);
    assert_int_equal(derive(DOC_SEED, pub, &err), IBP_OK);
    assert_string_equal(pub, DOC_PUBLIC);
}

static void test_whitespace_around_is_accepted(void **state)
{
    (void)state;
    const char *texts[] = {DOC_SEED "\n", DOC_SEED "\r\n", DOC_SEED "  \n\n",
                           "\n " DOC_SEED "\t\n"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char pub[IBP_NKEY_PUBLIC_SIZE];
        ibp_err err;
        assert_int_equal(derive(texts[i], pub, &err), IBP_OK);
        assert_string_equal(pub, DOC_PUBLIC);
    }
    /* len bounds the text: what follows it is not read. */
    char pub[IBP_NKEY_PUBLIC_SIZE];
    ibp_err err;
    assert_int_equal(ibp_nkey_user_public_from_seed(DOC_SEED "JUNK", IBP_NKEY_SEED_LEN, pub, &err),
                     IBP_OK);
    assert_string_equal(pub, DOC_PUBLIC);
}

static void test_encode_round_trip(void **state)
{
    (void)state;
    assert_int_equal(ibp_crypto_init(), IBP_OK);
    for (int i = 0; i < 64; i++) {
        uint8_t seed[32], pk[32], sk[64];
        char text[IBP_NKEY_SEED_SIZE], pub[IBP_NKEY_PUBLIC_SIZE], want[IBP_NKEY_PUBLIC_SIZE];
        char indep[IBP_NKEY_SEED_SIZE];
        ibp_err err;
        randombytes_buf(seed, sizeof seed);
        ibp_nkey_encode_user_seed(seed, text);
        encode_seed_of_kind(20u << 3, seed, 0, indep);
        assert_string_equal(text, indep);
        assert_int_equal(strlen(text), IBP_NKEY_SEED_LEN);
        assert_memory_equal(text, "SU", 2);
        assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
        ibp_nkey_encode_user_public(pk, want);
        assert_int_equal(want[0], 'U');
        assert_int_equal(derive(text, pub, &err), IBP_OK);
        assert_string_equal(pub, want);
        sodium_memzero(sk, sizeof sk);
    }
}

static void test_corrupted_crc(void **state)
{
    (void)state;
    /* One data character changed: the CRC no longer matches. */
    char text[] = DOC_SEED;
    text[20] = text[20] == 'A' ? 'B' : 'A';
    expect_format_error(text, "bad checksum");
    /* Right data, wrong CRC. */
    uint8_t seed[32];
    char built[IBP_NKEY_SEED_SIZE];
    memset(seed, 7, sizeof seed);
    encode_seed_of_kind(20u << 3, seed, 0x0001, built);
    expect_format_error(built, "bad checksum");
    encode_seed_of_kind(20u << 3, seed, 0x8000, built);
    expect_format_error(built, "bad checksum");
}

static void test_wrong_prefix(void **state)
{
    (void)state;
    uint8_t seed[32];
    char built[IBP_NKEY_SEED_SIZE];
    memset(seed, 9, sizeof seed);
    encode_seed_of_kind(0u << 3, seed, 0, built); /* account: "SA..." */
    assert_memory_equal(built, "SA", 2);
    expect_format_error(built, "an account nkey seed, not a user seed");
    encode_seed_of_kind(14u << 3, seed, 0, built); /* operator: "SO..." */
    assert_memory_equal(built, "SO", 2);
    expect_format_error(built, "an operator nkey seed, not a user seed");
    /* 36 bytes whose first is not the seed prefix (a valid CRC all the same). */
    uint8_t raw[34];
    raw[0] = 20u << 3;
    raw[1] = 0;
    memcpy(raw + 2, seed, 32);
    encode_raw(raw, sizeof raw, 0, built);
    expect_format_error(built, "not a NATS nkey seed");
    /* The public key where the seed belongs. */
    expect_format_error(DOC_PUBLIC, "public user nkey");
}

static void test_bad_base32_and_truncated(void **state)
{
    (void)state;
    char text[] = DOC_SEED;
    text[10] = '1'; /* not in the alphabet */
    expect_format_error(text, "not base32");
    char lower[] = DOC_SEED;
    lower[5] = (char)(lower[5] - 'A' + 'a');
    expect_format_error(lower, "not base32");
    char padded[] = DOC_SEED;
    padded[57] = '=';
    expect_format_error(padded, "not base32");
    /* Non-zero bits after the last byte: a second spelling of one key. */
    char tail[] = DOC_SEED;
    tail[57] = 'Z';
    expect_format_error(tail, "not base32");
    char inner_space[] = DOC_SEED;
    inner_space[30] = ' ';
    expect_format_error(inner_space, "not base32");

    char cut[] = DOC_SEED;
    cut[57] = '\0';
    expect_format_error(cut, "57 characters");
    cut[30] = '\0';
    expect_format_error(cut, "30 characters");
    expect_format_error("", "0 characters");
    expect_format_error(" \n", "0 characters");
    expect_format_error(DOC_SEED "A", "59 characters");
}

static void test_seed_file(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    char pub[IBP_NKEY_PUBLIC_SIZE];
    ibp_err err;
    test_path(path, sizeof path, dir, "user.nk");

    test_write(path, DOC_SEED "\n", 0600);
    assert_int_equal(ibp_nkey_load_user_public(path, pub, &err), IBP_OK);
    assert_string_equal(pub, DOC_PUBLIC);
    chmod(path, 0400);
    assert_int_equal(ibp_nkey_load_user_public(path, pub, &err), IBP_OK);

    /* Readable or writable by group or others: refused, naming the file. */
    const mode_t bad_modes[] = {0644, 0640, 0604, 0660, 0602, 0610};
    for (size_t i = 0; i < sizeof bad_modes / sizeof bad_modes[0]; i++) {
        chmod(path, bad_modes[i]);
        ibp_err_clear(&err);
        assert_int_equal(ibp_nkey_load_user_public(path, pub, &err), IBP_E_KEY_PERMS);
        print_message("mode %04o: %s\n", (unsigned)bad_modes[i], err.msg);
        assert_non_null(strstr(err.msg, path));
        assert_non_null(strstr(err.msg, "chmod 600"));
    }

    /* Not a seed: the message names the file and says why. */
    unlink(path);
    test_write(path, "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3V\n", 0600);
    ibp_err_clear(&err);
    assert_int_equal(ibp_nkey_load_user_public(path, pub, &err), IBP_E_KEY_FORMAT);
    print_message("truncated file: %s\n", err.msg);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "57 characters"));

    /* Far too long to be a seed file. */
    unlink(path);
    char big[1000];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    test_write(path, big, 0600);
    assert_int_equal(ibp_nkey_load_user_public(path, pub, &err), IBP_E_KEY_FORMAT);
    assert_non_null(strstr(err.msg, path));

    /* Missing file and a directory. */
    unlink(path);
    ibp_err_clear(&err);
    assert_int_equal(ibp_nkey_load_user_public(path, pub, &err), IBP_E_IO);
    print_message("missing file: %s\n", err.msg);
    assert_non_null(strstr(err.msg, path));
    chmod(dir, 0700);
    assert_int_equal(ibp_nkey_load_user_public(dir, pub, &err), IBP_E_KEY_FORMAT);
    assert_non_null(strstr(err.msg, "not a regular file"));
    test_rmdir(dir);
}

/* New keys: the seed derives the public key printed with it; each is new. */
static void test_generate(void **state)
{
    (void)state;
    char seed[IBP_NKEY_SEED_SIZE], pub[IBP_NKEY_PUBLIC_SIZE], derived[IBP_NKEY_PUBLIC_SIZE];
    char seed2[IBP_NKEY_SEED_SIZE], pub2[IBP_NKEY_PUBLIC_SIZE];
    ibp_err err;
    assert_int_equal(ibp_nkey_generate_user(seed, pub), IBP_OK);
    assert_int_equal(ibp_nkey_generate_user(seed2, pub2), IBP_OK);
    assert_int_equal(strlen(seed), IBP_NKEY_SEED_LEN);
    assert_int_equal(strlen(pub), IBP_NKEY_PUBLIC_LEN);
    assert_memory_equal(seed, "SU", 2);
    assert_int_equal(pub[0], 'U');
    assert_int_equal(ibp_nkey_user_public_from_seed(seed, strlen(seed), derived, &err), IBP_OK);
    assert_string_equal(derived, pub);
    assert_string_not_equal(seed, seed2);
    assert_string_not_equal(pub, pub2);
    assert_int_equal(ibp_nkey_decode_user_public(pub, NULL, &err), IBP_OK);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(seed2, sizeof seed2);
}

/* Public keys: the documented one decodes to the key of its seed; others are refused. */
static void test_decode_public(void **state)
{
    (void)state;
    uint8_t raw[32], pk[32], sk[64];
    ibp_err err;
    assert_int_equal(ibp_nkey_decode_user_public(DOC_PUBLIC, pk, &err), IBP_OK);
    /* The seed's Ed25519 key pair has that public key. */
    char seed_raw_text[IBP_NKEY_PUBLIC_SIZE];
    assert_int_equal(
        ibp_nkey_user_public_from_seed(DOC_SEED, strlen(DOC_SEED), seed_raw_text, &err), IBP_OK);
    assert_string_equal(seed_raw_text, DOC_PUBLIC);
    randombytes_buf(raw, sizeof raw);
    crypto_sign_seed_keypair(pk, sk, raw);
    char enc[IBP_NKEY_PUBLIC_SIZE];
    uint8_t back[32];
    ibp_nkey_encode_user_public(pk, enc);
    assert_int_equal(ibp_nkey_decode_user_public(enc, back, &err), IBP_OK);
    assert_memory_equal(back, pk, 32);

    struct {
        const char *text, *expect;
    } bad[] = {
        {DOC_SEED, "seed"},
        {"UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF", "55 characters"},
        {"UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF5", "checksum"},
        {"UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF1", "base32"},
        {"udxu4rcsjnzoiqhznwxhxordprtgnjahahfrgzneejcpqtt2m7nlcnf4", "base32"},
        {"", "0 characters"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ibp_err_clear(&err);
        assert_int_equal(ibp_nkey_decode_user_public(bad[i].text, NULL, &err), IBP_E_KEY_FORMAT);
        print_message("'%s': %s\n", bad[i].text, err.msg);
        if (!strstr(err.msg, bad[i].expect))
            fail_msg("'%s': error '%s' lacks '%s'", bad[i].text, err.msg, bad[i].expect);
    }
    /* An account's public key ('A...'): valid nkey, wrong kind. */
    uint8_t acct[1 + 32 + 2];
    acct[0] = 0;
    memcpy(acct + 1, pk, 32);
    char acct_text[80];
    encode_raw(acct, 33, 0, acct_text);
    assert_int_equal(acct_text[0], 'A');
    assert_int_equal(ibp_nkey_decode_user_public(acct_text, NULL, &err), IBP_E_KEY_FORMAT);
    print_message("account key: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "an account"));
    assert_int_equal(ibp_nkey_decode_user_public(NULL, NULL, &err), IBP_E_INVAL);
    sodium_memzero(sk, sizeof sk);
}

/* Seed files: written 0600, never over an existing file, and read back by the loader. */
static void test_save_seed(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200], seed[IBP_NKEY_SEED_SIZE], pub[IBP_NKEY_PUBLIC_SIZE],
        loaded[IBP_NKEY_PUBLIC_SIZE];
    ibp_err err;
    struct stat sb;
    test_path(path, sizeof path, dir, "node.nk");
    assert_int_equal(ibp_nkey_generate_user(seed, pub), IBP_OK);
    assert_int_equal(ibp_nkey_save_user_seed(path, seed, &err), IBP_OK);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(sb.st_size, IBP_NKEY_SEED_LEN + 1);
    assert_int_equal(ibp_nkey_load_user_public(path, loaded, &err), IBP_OK);
    assert_string_equal(loaded, pub);
    char seed2[IBP_NKEY_SEED_SIZE], pub2[IBP_NKEY_PUBLIC_SIZE];
    assert_int_equal(ibp_nkey_generate_user(seed2, pub2), IBP_OK);
    assert_int_equal(ibp_nkey_save_user_seed(path, seed2, &err), IBP_E_EXISTS);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(ibp_nkey_load_user_public(path, loaded, &err), IBP_OK);
    assert_string_equal(loaded, pub); /* unchanged */
    char shortseed[IBP_NKEY_SEED_SIZE] = "SUshort";
    assert_int_equal(ibp_nkey_save_user_seed(path, shortseed, &err), IBP_E_INVAL);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(seed2, sizeof seed2);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documented_vector),
        cmocka_unit_test(test_whitespace_around_is_accepted),
        cmocka_unit_test(test_encode_round_trip),
        cmocka_unit_test(test_corrupted_crc),
        cmocka_unit_test(test_wrong_prefix),
        cmocka_unit_test(test_bad_base32_and_truncated),
        cmocka_unit_test(test_seed_file),
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_decode_public),
        cmocka_unit_test(test_save_seed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
