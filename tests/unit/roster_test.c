/* Unit tests: roster building, files, roles and node ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <sodium.h>
#include <stdlib.h>

#include "ibp/atomic_file.h"
#include "ibp/nkey.h"
#include "ibp/roster.h"
#include "test_util.h"

static void test_node_ids(void **state)
{
    (void)state;
    assert_true(ibp_node_id_valid("mon1"));
    assert_true(ibp_node_id_valid("dns-eu_2"));
    assert_false(ibp_node_id_valid(""));
    assert_false(ibp_node_id_valid(NULL));
    assert_false(ibp_node_id_valid("a.b"));
    assert_false(ibp_node_id_valid("a b"));
    assert_false(ibp_node_id_valid("a*"));
    assert_false(ibp_node_id_valid(">"));
    char longid[IBP_NODE_ID_MAX + 2];
    memset(longid, 'x', sizeof longid - 1);
    longid[IBP_NODE_ID_MAX] = '\0';
    assert_true(ibp_node_id_valid(longid));
    longid[IBP_NODE_ID_MAX] = 'x';
    longid[IBP_NODE_ID_MAX + 1] = '\0';
    assert_false(ibp_node_id_valid(longid));
}

static void test_roles(void **state)
{
    (void)state;
    unsigned roles = 0;
    char buf[64];
    ibp_err err;
    assert_int_equal(ibp_roles_parse_list("monitor,consensus", &roles, &err), IBP_OK);
    assert_int_equal(roles, IBP_ROLE_MONITOR | IBP_ROLE_CONSENSUS);
    ibp_roles_format(roles, buf, sizeof buf);
    assert_string_equal(buf, "monitor,consensus");
    assert_int_equal(ibp_roles_parse_list("monitor,boss", &roles, &err), IBP_E_CONFIG);
    assert_non_null(strstr(err.msg, "boss"));
    assert_int_equal(ibp_roles_parse_list("", &roles, &err), IBP_E_CONFIG);
    assert_int_equal(ibp_roles_parse_list("dns,,admin", &roles, &err), IBP_E_CONFIG);
    assert_string_equal(ibp_role_name(IBP_ROLE_PERSIST), "persist");
    assert_string_equal(ibp_role_name(0), "?");
}

static void test_add_find_save_load(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    ibp_roster *r, *loaded;
    ibp_key k1, k2;
    ibp_err err;
    ibp_key_generate(&k1);
    ibp_key_generate(&k2);
    assert_int_equal(ibp_roster_new(&r), IBP_OK);
    assert_int_equal(ibp_roster_add(r, "zeta", k1.pk, IBP_ROLE_DNS, &err), IBP_OK);
    assert_int_equal(ibp_roster_add(r, "alpha", k2.pk, IBP_ROLE_MONITOR | IBP_ROLE_CONSENSUS, &err),
                     IBP_OK);
    assert_int_equal(ibp_roster_add(r, "alpha", k2.pk, IBP_ROLE_DNS, &err), IBP_E_EXISTS);
    assert_int_equal(ibp_roster_add(r, "bad id", k2.pk, IBP_ROLE_DNS, &err), IBP_E_INVAL);
    assert_int_equal(ibp_roster_add(r, "noroles", k2.pk, 0, &err), IBP_E_INVAL);
    assert_int_equal(ibp_roster_count(r), 2);
    assert_string_equal(ibp_roster_at(r, 0)->id, "alpha");
    assert_null(ibp_roster_find(r, "beta"));
    const ibp_roster_node *z = ibp_roster_find(r, "zeta");
    assert_non_null(z);
    assert_memory_equal(z->pk, k1.pk, sizeof k1.pk);
    test_path(path, sizeof path, dir, "roster.json");
    assert_int_equal(ibp_roster_save(r, path, &err), IBP_OK);
    assert_int_equal(ibp_roster_load(path, &loaded, &err), IBP_OK);
    assert_int_equal(ibp_roster_count(loaded), 2);
    const ibp_roster_node *a = ibp_roster_find(loaded, "alpha");
    assert_non_null(a);
    assert_int_equal(a->roles, IBP_ROLE_MONITOR | IBP_ROLE_CONSENSUS);
    assert_memory_equal(a->pk, k2.pk, sizeof k2.pk);
    ibp_roster_free(loaded);
    ibp_roster_free(r);
    ibp_roster_free(NULL);
    test_rmdir(dir);
}

static void test_load_errors(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    ibp_roster *r = NULL;
    ibp_err err;
    const char *good_pk = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    char doc[1024];
    struct {
        const char *text;
        const char *expect; /* substring of the error */
    } cases[] = {
        {"{", "roster.json:"},
        {"[]", "expected a JSON object"},
        {"{\"version\":2,\"nodes\":[]}", "version"},
        {"{\"version\":1}", "nodes: expected an array"},
        {"{\"version\":1,\"nodes\":[1]}", "nodes[0]: expected an object"},
        {"{\"version\":1,\"nodes\":[{\"id\":\"a.b\",\"public_key\":\"%s\",\"roles\":[\"dns\"]}]}",
         "nodes[0].id"},
        {"{\"version\":1,\"nodes\":[{\"id\":\"a\",\"public_key\":\"xyz\",\"roles\":[\"dns\"]}]}",
         "'a'.public_key"},
        {"{\"version\":1,\"nodes\":[{\"id\":\"a\",\"public_key\":\"%s\",\"roles\":[]}]}",
         "'a'.roles"},
        {"{\"version\":1,\"nodes\":[{\"id\":\"a\",\"public_key\":\"%s\",\"roles\":[\"king\"]}]}",
         "'a'.roles[0]"},
        {"{\"version\":1,\"nodes\":[{\"id\":\"a\",\"public_key\":\"%s\",\"roles\":[\"dns\"],"
         "\"extra\":1}]}",
         "unknown key 'extra'"},
        {"{\"version\":1,\"nodes\":[{\"id\":\"a\",\"public_key\":\"%s\",\"roles\":[\"dns\"]},"
         "{\"id\":\"a\",\"public_key\":\"%s\",\"roles\":[\"dns\"]}]}",
         "listed twice"},
    };
    test_path(path, sizeof path, dir, "roster.json");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(doc, sizeof doc, cases[i].text, good_pk, good_pk);
#pragma GCC diagnostic pop
        unlink(path);
        test_write(path, doc, 0644);
        ibp_err_clear(&err);
        assert_int_equal(ibp_roster_load(path, &r, &err), IBP_E_CONFIG);
        if (!strstr(err.msg, cases[i].expect))
            fail_msg("case %zu: error '%s' lacks '%s'", i, err.msg, cases[i].expect);
        assert_null(r);
    }
    test_path(path, sizeof path, dir, "missing.json");
    assert_int_equal(ibp_roster_load(path, &r, &err), IBP_E_CONFIG);
    assert_non_null(strstr(err.msg, "missing.json"));
    test_rmdir(dir);
}

/* The optional nats_nkey: kept through save and load, checked, unique; old rosters load. */
static void test_nats_nkey(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200], doc[1024];
    ibp_roster *r, *loaded = NULL;
    ibp_key k1, k2;
    ibp_err err;
    char seed[IBP_NKEY_SEED_SIZE], pub1[IBP_NKEY_PUBLIC_SIZE], pub2[IBP_NKEY_PUBLIC_SIZE];
    ibp_key_generate(&k1);
    ibp_key_generate(&k2);
    assert_int_equal(ibp_nkey_generate_user(seed, pub1), IBP_OK);
    assert_int_equal(ibp_nkey_generate_user(seed, pub2), IBP_OK);
    assert_int_equal(ibp_roster_new(&r), IBP_OK);
    assert_int_equal(ibp_roster_add(r, "mon1", k1.pk, IBP_ROLE_MONITOR, &err), IBP_OK);
    assert_int_equal(ibp_roster_add(r, "dns1", k2.pk, IBP_ROLE_DNS, &err), IBP_OK);
    assert_string_equal(ibp_roster_find(r, "mon1")->nats_nkey, "");
    assert_int_equal(ibp_roster_set_nats_nkey(r, "mon1", pub1, &err), IBP_OK);
    assert_int_equal(ibp_roster_set_nats_nkey(r, "nobody", pub2, &err), IBP_E_NOT_FOUND);
    assert_int_equal(ibp_roster_set_nats_nkey(r, "dns1", pub1, &err), IBP_E_EXISTS);
    print_message("shared nkey: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "mon1"));
    assert_int_equal(ibp_roster_set_nats_nkey(r, "dns1", seed, &err), IBP_E_KEY_FORMAT);
    print_message("seed as nkey: %s\n", err.msg);
    assert_int_equal(ibp_roster_set_nats_nkey(r, "dns1", "UABC", &err), IBP_E_KEY_FORMAT);
    test_path(path, sizeof path, dir, "roster.json");
    assert_int_equal(ibp_roster_save(r, path, &err), IBP_OK);
    assert_int_equal(ibp_roster_load(path, &loaded, &err), IBP_OK);
    assert_string_equal(ibp_roster_find(loaded, "mon1")->nats_nkey, pub1);
    assert_string_equal(ibp_roster_find(loaded, "dns1")->nats_nkey, "");
    ibp_roster_free(loaded);
    loaded = NULL;
    /* Removing it again writes no key at all. */
    assert_int_equal(ibp_roster_set_nats_nkey(r, "mon1", NULL, &err), IBP_OK);
    assert_int_equal(ibp_roster_save(r, path, &err), IBP_OK);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(ibp_file_read_all(path, 1 << 20, &text, &len, &err), IBP_OK);
    assert_null(strstr(text, "nats_nkey"));
    free(text);
    ibp_roster_free(r);

    /* Errors name the node and the key; the same nkey twice is refused. */
    char b64[IBP_PUBKEY_B64_SIZE];
    ibp_key_public_b64(k1.pk, b64);
    struct {
        const char *nkey1, *nkey2, *expect;
    } cases[] = {
        {"\"UABC\"", "\"\"", "'a'.nats_nkey"},
        {"17", "\"\"", "expected a string"},
        {"\"SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY\"", "\"\"", "seed"},
        {"\"ADXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4\"", "\"\"", "checksum"},
        {NULL, NULL, "same one"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char q1[80], q2[80];
        snprintf(q1, sizeof q1, "\"%s\"", pub1);
        snprintf(q2, sizeof q2, "\"%s\"", pub1);
        snprintf(doc, sizeof doc,
                 "{\"version\":1,\"nodes\":[{\"id\":\"a\",\"public_key\":\"%s\","
                 "\"roles\":[\"dns\"],\"nats_nkey\":%s},{\"id\":\"b\",\"public_key\":\"%s\","
                 "\"roles\":[\"dns\"],\"nats_nkey\":%s}]}",
                 b64, cases[i].nkey1 ? cases[i].nkey1 : q1, b64,
                 cases[i].nkey2 ? cases[i].nkey2 : q2);
        unlink(path);
        test_write(path, doc, 0644);
        ibp_err_clear(&err);
        assert_int_equal(ibp_roster_load(path, &loaded, &err), IBP_E_CONFIG);
        print_message("case %zu: %s\n", i, err.msg);
        if (!strstr(err.msg, cases[i].expect))
            fail_msg("case %zu: error '%s' lacks '%s'", i, err.msg, cases[i].expect);
        assert_null(loaded);
    }
    /* An older roster without the key loads as before. */
    snprintf(doc, sizeof doc,
             "{\"version\":1,\"nodes\":[{\"id\":\"a\",\"public_key\":\"%s\","
             "\"roles\":[\"dns\"]}]}",
             b64);
    unlink(path);
    test_write(path, doc, 0644);
    assert_int_equal(ibp_roster_load(path, &loaded, &err), IBP_OK);
    assert_string_equal(ibp_roster_find(loaded, "a")->nats_nkey, "");
    ibp_roster_free(loaded);
    sodium_memzero(seed, sizeof seed);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_ids),           cmocka_unit_test(test_roles),
        cmocka_unit_test(test_add_find_save_load), cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_nats_nkey),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
