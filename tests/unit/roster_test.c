/* Unit tests: roster building, files, roles and node ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_ids),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_add_find_save_load),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
