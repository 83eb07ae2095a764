/* Unit tests: the settings-table engine and the ibp-node / ibp-persist configs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ibp/node_config.h"
#include "ibp/persist_config.h"
#include "ibp/roster.h"
#include "ibp/settings.h"
#include "test_util.h"

/* Fails with both sides printed unless st == code and the message contains needle. */
#define assert_err(st, err, code, needle)                                                          \
    do {                                                                                           \
        ibp_status st_ = (st);                                                                     \
        if (st_ != (code) || !strstr((err).msg, (needle)))                                         \
            fail_msg("got %s \"%s\"\nwant %s containing \"%s\"", ibp_status_name(st_), (err).msg,  \
                     ibp_status_name(code), (needle));                                             \
    } while (0)

#define assert_ok(st, err)                                                                         \
    do {                                                                                           \
        ibp_status st_ = (st);                                                                     \
        if (st_ != IBP_OK)                                                                         \
            fail_msg("got %s \"%s\", want IBP_OK", ibp_status_name(st_), (err).msg);               \
    } while (0)

/* ---- a table of every type, for the engine ----------------------------------------------- */

typedef struct test_cfg {
    char *name;
    char *path;
    char *secret_file;
    int64_t count;
    bool flag;
    int64_t wait_ms;
    ibp_strlist list;
    unsigned roles;
    int64_t even;
    struct {
        int64_t value;
    } deep;
} test_cfg;

static int check_even(const void *field, char *why, size_t cap)
{
    if (*(const int64_t *)field % 2 == 0)
        return 0;
    snprintf(why, cap, "is not even");
    return -1;
}

static const ibp_setting test_settings[] = {
    {.name = "svc.name",
     .type = IBP_SETTING_STRING,
     .flags = IBP_SETTING_REQUIRED,
     .example_text = "example",
     .offset = IBP_SETTING_AT_STR(test_cfg, name),
     .help = "A required name."},
    {.name = "svc.path",
     .type = IBP_SETTING_PATH,
     .flags = IBP_SETTING_RELOADABLE,
     .default_text = "/tmp/x",
     .offset = IBP_SETTING_AT_STR(test_cfg, path),
     .help = "A path."},
    {.name = "svc.secret_file",
     .type = IBP_SETTING_PATH,
     .flags = IBP_SETTING_SECRET,
     .offset = IBP_SETTING_AT_STR(test_cfg, secret_file),
     .help = "A secret."},
    {.name = "svc.count",
     .type = IBP_SETTING_INT64,
     .default_text = "10",
     .min = 1,
     .max = 100,
     .offset = IBP_SETTING_AT_I64(test_cfg, count),
     .help = "A bounded count."},
    {.name = "svc.flag",
     .type = IBP_SETTING_BOOL,
     .default_text = "true",
     .offset = IBP_SETTING_AT_BOOL(test_cfg, flag),
     .help = "A flag."},
    {.name = "svc.wait_ms",
     .type = IBP_SETTING_DURATION_MS,
     .default_text = "5s",
     .min = 100,
     .max = 3600000,
     .offset = IBP_SETTING_AT_I64(test_cfg, wait_ms),
     .help = "A duration."},
    {.name = "svc.list",
     .type = IBP_SETTING_STRING_LIST,
     .default_text = "a, b",
     .offset = IBP_SETTING_AT_LIST(test_cfg, list),
     .help = "A list."},
    {.name = "svc.roles",
     .type = IBP_SETTING_ROLES,
     .default_text = "monitor",
     .offset = IBP_SETTING_AT_ROLES(test_cfg, roles),
     .help = "Roles."},
    {.name = "svc.even",
     .type = IBP_SETTING_INT64,
     .default_text = "2",
     .offset = IBP_SETTING_AT_I64(test_cfg, even),
     .check = check_even,
     .help = "An even number."},
    {.name = "deep.er.value",
     .type = IBP_SETTING_INT64,
     .default_text = "-5",
     .offset = IBP_SETTING_AT_I64(test_cfg, deep.value),
     .help = "Three levels down, unbounded."},
};

static const ibp_settings_group test_groups[] = {
    {test_settings, sizeof test_settings / sizeof test_settings[0], 0},
};

static const ibp_settings_table test_table = {
    .program = "test",
    .groups = test_groups,
    .group_count = 1,
    .struct_size = sizeof(test_cfg),
};

static ibp_status load(const char *json, test_cfg *cfg, ibp_err *err)
{
    ibp_err_clear(err);
    return ibp_settings_load_buffer(&test_table, json, strlen(json), "test.json", cfg, err);
}

/* Loads json, which must fail with code and a message containing needle. */
static void expect_load_error(const char *json, ibp_status code, const char *needle)
{
    test_cfg cfg;
    ibp_err err;
    memset(&cfg, 0xA5, sizeof cfg);
    ibp_status st = load(json, &cfg, &err);
    assert_err(st, err, code, needle);
    /* *out is written only on success. */
    test_cfg untouched;
    memset(&untouched, 0xA5, sizeof untouched);
    assert_memory_equal(&cfg, &untouched, sizeof cfg);
}

/* ---- engine: tables ---------------------------------------------------------------------- */

static void test_tables_are_sound(void **state)
{
    (void)state;
    ibp_err err;
    ibp_err_clear(&err);
    assert_ok(ibp_settings_table_check(&test_table, &err), err);
    assert_ok(ibp_settings_table_check(ibp_node_config_table(), &err), err);
    assert_ok(ibp_settings_table_check(ibp_persist_config_table(), &err), err);
    assert_non_null(ibp_settings_find(ibp_node_config_table(), "nats.servers"));
    assert_non_null(ibp_settings_find(ibp_persist_config_table(), "nats.servers"));
    assert_non_null(ibp_settings_find(ibp_persist_config_table(), "persist.batch_size"));
    assert_null(ibp_settings_find(ibp_persist_config_table(), "node.roles"));
    assert_null(ibp_settings_find(&test_table, "svc"));
    /* The shared groups are the same entries, not copies. */
    assert_ptr_equal(ibp_settings_find(ibp_node_config_table(), "mysql.port"),
                     ibp_settings_find(ibp_persist_config_table(), "mysql.port"));
}

static void check_broken(const ibp_setting *s, const char *needle)
{
    ibp_settings_group g = {s, 1, 0};
    ibp_settings_table t = {
        .program = "x", .groups = &g, .group_count = 1, .struct_size = sizeof(test_cfg)};
    ibp_err err;
    ibp_err_clear(&err);
    assert_err(ibp_settings_table_check(&t, &err), err, IBP_E_INVAL, needle);
}

static void test_broken_tables_are_caught(void **state)
{
    (void)state;
    ibp_setting s = test_settings[3]; /* svc.count */
    s.default_text = "1000";
    check_broken(&s, "above the maximum 100");
    s.default_text = "ten";
    check_broken(&s, "expected an integer");
    s = test_settings[3];
    s.flags = IBP_SETTING_REQUIRED;
    check_broken(&s, "cannot be required");
    s = test_settings[0];
    s.default_text = "x";
    check_broken(&s, "required keys have no default");
    s = test_settings[0];
    s.flags = IBP_SETTING_SECRET;
    check_broken(&s, "secrets are paths");
    s = test_settings[3];
    s.min = 5;
    s.max = 1;
    check_broken(&s, "min above max");
    s = test_settings[3];
    s.name = "Svc.Count";
    check_broken(&s, "bad name");
    s.name = "svc..count";
    check_broken(&s, "bad name");
    s = test_settings[3];
    s.help = NULL;
    check_broken(&s, "no help");
    s = test_settings[5];
    s.default_text = "5 s";
    check_broken(&s, "bad duration");
    s = test_settings[7];
    s.default_text = "monitor,boss";
    check_broken(&s, "boss");

    /* Duplicates and a key that is also a section. */
    ibp_setting two[2] = {test_settings[3], test_settings[3]};
    ibp_settings_group g = {two, 2, 0};
    ibp_settings_table t = {
        .program = "x", .groups = &g, .group_count = 1, .struct_size = sizeof(test_cfg)};
    ibp_err err;
    assert_err(ibp_settings_table_check(&t, &err), err, IBP_E_INVAL, "appears twice");
    two[1].name = "svc.count.more";
    assert_err(ibp_settings_table_check(&t, &err), err, IBP_E_INVAL,
               "also a section of other keys");
}

/* ---- engine: defaults and loading -------------------------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    test_cfg cfg;
    ibp_err err;
    assert_ok(ibp_settings_defaults(&test_table, &cfg, &err), err);
    assert_null(cfg.name);
    assert_string_equal(cfg.path, "/tmp/x");
    assert_null(cfg.secret_file);
    assert_int_equal(cfg.count, 10);
    assert_true(cfg.flag);
    assert_int_equal(cfg.wait_ms, 5000);
    assert_int_equal(cfg.list.count, 2);
    assert_string_equal(cfg.list.items[0], "a");
    assert_string_equal(cfg.list.items[1], "b");
    assert_int_equal(cfg.roles, IBP_ROLE_MONITOR);
    assert_int_equal(cfg.even, 2);
    assert_int_equal(cfg.deep.value, -5);
    /* Defaults alone miss the required key. */
    assert_err(ibp_settings_validate(&test_table, &cfg, "test.json", &err), err, IBP_E_CONFIG,
               "test.json: missing required key 'svc.name'");
    ibp_settings_free(&test_table, &cfg);
    ibp_settings_free(&test_table, &cfg); /* harmless twice */
    ibp_settings_free(&test_table, NULL);
    ibp_settings_free(NULL, &cfg);
    assert_null(cfg.path);
    assert_null(cfg.list.items);
}

static void test_load_values(void **state)
{
    (void)state;
    test_cfg cfg;
    ibp_err err;
    assert_ok(load("{\"svc\": {\"name\": \"n1\", \"path\": \"/p\", \"secret_file\": \"/s\","
                   " \"count\": 100, \"flag\": false, \"wait_ms\": \"1m30s\","
                   " \"list\": [\"x\", \"y\", \"z\"], \"roles\": [\"dns\", \"admin\"],"
                   " \"even\": -4},"
                   " \"deep\": {\"er\": {\"value\": 9223372036854775807}}}",
                   &cfg, &err),
              err);
    assert_string_equal(cfg.name, "n1");
    assert_string_equal(cfg.path, "/p");
    assert_string_equal(cfg.secret_file, "/s");
    assert_int_equal(cfg.count, 100);
    assert_false(cfg.flag);
    assert_int_equal(cfg.wait_ms, 90000);
    assert_int_equal(cfg.list.count, 3);
    assert_string_equal(cfg.list.items[2], "z");
    assert_int_equal(cfg.roles, IBP_ROLE_DNS | IBP_ROLE_ADMIN);
    assert_int_equal(cfg.even, -4);
    assert_true(cfg.deep.value == INT64_MAX);
    ibp_settings_free(&test_table, &cfg);

    /* Dotted keys at any level mean the same as nesting; "" and null mean unset. */
    assert_ok(load("{\"svc.name\": \"n2\", \"deep\": {\"er.value\": 3}, \"svc\": {\"path\": \"\","
                   " \"wait_ms\": 250, \"roles\": \"consensus,persist\", \"list\": [],"
                   " \"count\": null}}",
                   &cfg, &err),
              err);
    assert_string_equal(cfg.name, "n2");
    assert_int_equal(cfg.deep.value, 3);
    assert_null(cfg.path);
    assert_int_equal(cfg.wait_ms, 250);
    assert_int_equal(cfg.roles, IBP_ROLE_CONSENSUS | IBP_ROLE_PERSIST);
    assert_int_equal(cfg.list.count, 0);
    assert_int_equal(cfg.count, 10);
    ibp_settings_free(&test_table, &cfg);
}

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_load_error("{\"svc\": {\"name\": \"n\", \"nmae\": \"x\"}}", IBP_E_CONFIG,
                      "test.json: unknown key 'svc.nmae' (did you mean 'svc.name'?)");
    expect_load_error("{\"svc\": {\"name\": \"n\"}, \"bogus\": {\"deeper\": 1}}", IBP_E_CONFIG,
                      "test.json: unknown key 'bogus'");
    expect_load_error("{\"svc\": {\"name\": \"n\"}, \"deep\": {\"er\": {\"valu\": 1}}}",
                      IBP_E_CONFIG, "unknown key 'deep.er.valu' (did you mean 'deep.er.value'?)");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"\": 1}}", IBP_E_CONFIG, "unknown key 'svc.'");
    /* A key name with control bytes is escaped in the message, not printed raw. */
    expect_load_error("{\"svc\": {\"name\": \"n\", \"x\\nFAKE LOG LINE\": 1}}", IBP_E_CONFIG,
                      "unknown key 'svc.x\\nFAKE LOG LINE'");
    /* A section given as a scalar. */
    expect_load_error("{\"svc\": 5}", IBP_E_CONFIG,
                      "test.json: key 'svc': expected an object (a section of keys), got an "
                      "integer 5");
    /* The same key twice, nested and dotted. */
    expect_load_error("{\"svc\": {\"name\": \"n\"}, \"svc.name\": \"m\"}", IBP_E_CONFIG,
                      "test.json: key 'svc.name' is set twice");
    /* Literally duplicated keys are caught by the parser, with a position. */
    expect_load_error("{\"svc\": {\"name\": \"n\", \"name\": \"m\"}}", IBP_E_CONFIG,
                      "duplicate object key");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_load_error("{\"svc\": {\"name\": 5}}", IBP_E_CONFIG,
                      "test.json: key 'svc.name': expected a string, got an integer 5");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"count\": \"5\"}}", IBP_E_CONFIG,
                      "key 'svc.count': expected an integer, got a string \"5\"");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"count\": 5.5}}", IBP_E_CONFIG,
                      "key 'svc.count': expected an integer, got a real number 5.5");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"flag\": 1}}", IBP_E_CONFIG,
                      "key 'svc.flag': expected true or false, got an integer 1");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"wait_ms\": true}}", IBP_E_CONFIG,
                      "key 'svc.wait_ms': expected a duration");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"list\": \"a,b\"}}", IBP_E_CONFIG,
                      "key 'svc.list': expected an array of strings, got a string");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"list\": [\"a\", 2]}}", IBP_E_CONFIG,
                      "key 'svc.list': element [1]: expected a string, got an integer 2");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"list\": [\"a\", \"\"]}}", IBP_E_CONFIG,
                      "key 'svc.list': element [1] is empty");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"roles\": 3}}", IBP_E_CONFIG,
                      "key 'svc.roles': expected an array of role names, got an integer 3");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"roles\": [\"monitor\", \"boss\"]}}",
                      IBP_E_CONFIG, "key 'svc.roles': element [1]: unknown role \"boss\"");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"roles\": [{}]}}", IBP_E_CONFIG,
                      "element [0]: expected a role name, got an object");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"roles\": \"monitor,boss\"}}", IBP_E_CONFIG,
                      "key 'svc.roles': unknown role 'boss'");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"path\": [\"/a\"]}}", IBP_E_CONFIG,
                      "key 'svc.path': expected a string, got an array");
    /* Secrets: the message says what is wrong without echoing the value. */
    test_cfg cfg;
    ibp_err err;
    assert_err(load("{\"svc\": {\"name\": \"n\", \"secret_file\": 123456}}", &cfg, &err), err,
               IBP_E_CONFIG, "key 'svc.secret_file': expected a string, got an integer");
    assert_null(strstr(err.msg, "123456"));
}

static void test_bounds_and_checks(void **state)
{
    (void)state;
    expect_load_error("{\"svc\": {\"name\": \"n\", \"count\": 0}}", IBP_E_CONFIG,
                      "test.json: key 'svc.count': 0 is below the minimum 1");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"count\": 101}}", IBP_E_CONFIG,
                      "test.json: key 'svc.count': 101 is above the maximum 100");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"wait_ms\": 99}}", IBP_E_CONFIG,
                      "key 'svc.wait_ms': 99 is below the minimum 100");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"wait_ms\": \"2h\"}}", IBP_E_CONFIG,
                      "key 'svc.wait_ms': 7200000 is above the maximum 3600000");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"wait_ms\": -1}}", IBP_E_CONFIG,
                      "key 'svc.wait_ms': -1 is below the minimum 100");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"even\": 3}}", IBP_E_CONFIG,
                      "test.json: key 'svc.even': 3 is not even");
    expect_load_error("{\"svc\": {\"name\": \"n\"}, \"deep\": {\"er\": {\"value\": "
                      "9223372036854775808}}}",
                      IBP_E_CONFIG, "test.json:1:");
}

static void test_required(void **state)
{
    (void)state;
    expect_load_error("{}", IBP_E_CONFIG, "test.json: missing required key 'svc.name'");
    expect_load_error("{\"svc\": {\"name\": \"\"}}", IBP_E_CONFIG,
                      "missing required key 'svc.name'");
    expect_load_error("{\"svc\": {\"name\": null}}", IBP_E_CONFIG,
                      "missing required key 'svc.name'");
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {{"0", 0},        {"100ms", 100},   {"5s", 5000},     {"10m", 600000},
                {"1h", 3600000}, {"1d", 86400000}, {"1m30s", 90000}, {"2h5ms", 7200005},
                {"007s", 7000},  {"0s", 0}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ms = -1;
        if (ibp_settings_parse_duration_ms(good[i].text, &ms) != IBP_OK || ms != good[i].ms)
            fail_msg("duration \"%s\": got %lld, want %lld", good[i].text, (long long)ms,
                     (long long)good[i].ms);
    }
    static const char *const bad[] = {"",  "5",   "5x",   "-5s", "5 s", " 5s", "1.5s",
                                      "s", "ms5", "5sec", "5S",  "5s ", "+5s", "1h-5m"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = -1;
        if (ibp_settings_parse_duration_ms(bad[i], &ms) != IBP_E_INVAL || ms != -1)
            fail_msg("duration \"%s\" should be rejected", bad[i]);
    }
    int64_t ms = -1;
    assert_int_equal(ibp_settings_parse_duration_ms("99999999999999999999ms", &ms), IBP_E_RANGE);
    assert_int_equal(ibp_settings_parse_duration_ms("9223372036854775807d", &ms), IBP_E_RANGE);
    assert_int_equal(ibp_settings_parse_duration_ms("9223372036854775807ms1ms", &ms), IBP_E_RANGE);
    assert_int_equal(ibp_settings_parse_duration_ms(NULL, &ms), IBP_E_INVAL);
    assert_int_equal(ms, -1);

    expect_load_error("{\"svc\": {\"name\": \"n\", \"wait_ms\": \"5\"}}", IBP_E_CONFIG,
                      "test.json: key 'svc.wait_ms': bad duration \"5\": expected milliseconds");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"wait_ms\": \"5 s\"}}", IBP_E_CONFIG,
                      "bad duration \"5 s\"");
    expect_load_error("{\"svc\": {\"name\": \"n\", \"wait_ms\": \"99999999999999999999d\"}}",
                      IBP_E_CONFIG, "duration \"99999999999999999999d\" is too large");

    char buf[32];
    ibp_settings_format_duration_ms(0, buf, sizeof buf);
    assert_string_equal(buf, "0");
    ibp_settings_format_duration_ms(100, buf, sizeof buf);
    assert_string_equal(buf, "100ms");
    ibp_settings_format_duration_ms(5000, buf, sizeof buf);
    assert_string_equal(buf, "5s");
    ibp_settings_format_duration_ms(90000, buf, sizeof buf);
    assert_string_equal(buf, "90s");
    ibp_settings_format_duration_ms(600000, buf, sizeof buf);
    assert_string_equal(buf, "10m");
    ibp_settings_format_duration_ms(3600000, buf, sizeof buf);
    assert_string_equal(buf, "1h");
    ibp_settings_format_duration_ms(2 * 86400000LL, buf, sizeof buf);
    assert_string_equal(buf, "2d");
    ibp_settings_format_duration_ms(-5, buf, sizeof buf);
    assert_string_equal(buf, "-5ms");
}

static void test_malformed_json(void **state)
{
    (void)state;
    /* Trailing comma on line 3: jansson reports line 4, column 1 ("}" where a key was due). */
    expect_load_error("{\n  \"svc\": {\n    \"name\": \"x\",\n  }\n}", IBP_E_CONFIG,
                      "test.json:4:");
    expect_load_error("", IBP_E_CONFIG, "test.json:");
    expect_load_error("{\"svc\": {\"name\": \"x\"}", IBP_E_CONFIG, "test.json:1:");
    expect_load_error("[]", IBP_E_CONFIG,
                      "test.json: expected a JSON object at the top level, got an array");
    expect_load_error("\"just a string\"", IBP_E_CONFIG, "test.json:1:");
    expect_load_error("{\"svc\": {\"name\": \"x\"}} trailing", IBP_E_CONFIG, "test.json:1:");
    expect_load_error("{\"svc\": {\"name\": \"\\ud800\"}}", IBP_E_CONFIG, "test.json:1:");

    /* Junk never crashes: binary bytes, NULs, deep nesting, huge numbers. */
    static const char junk[] = "{\"svc\":\x00\xff\xfe{{{{";
    test_cfg cfg;
    ibp_err err;
    assert_int_equal(ibp_settings_load_buffer(&test_table, junk, sizeof junk, "junk", &cfg, &err),
                     IBP_E_CONFIG);
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 1);
    assert_non_null(deep);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    assert_int_equal(load(deep, &cfg, &err), IBP_E_CONFIG);
    memset(deep, '{', 2 * depth);
    assert_int_equal(load(deep, &cfg, &err), IBP_E_CONFIG);
    free(deep);
    assert_int_equal(load("{\"svc\": {\"name\": \"n\", \"count\": 1e999}}", &cfg, &err),
                     IBP_E_CONFIG);
    assert_int_equal(ibp_settings_load_buffer(&test_table, NULL, 0, NULL, &cfg, &err),
                     IBP_E_CONFIG);
    assert_int_equal(ibp_settings_load_buffer(&test_table, NULL, 5, NULL, &cfg, &err), IBP_E_INVAL);
}

static void test_files(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4096];
    test_cfg cfg;
    ibp_err err;

    test_path(path, sizeof path, dir, "missing.json");
    assert_err(ibp_settings_load_file(&test_table, path, &cfg, &err), err, IBP_E_IO,
               "missing.json: cannot open: No such file or directory");
    assert_err(ibp_settings_load_file(&test_table, dir, &cfg, &err), err, IBP_E_IO,
               "not a regular file");

    test_path(path, sizeof path, dir, "bad.json");
    test_write(path, "{\n  \"svc\": {\"name\": \"n\", \"count\": 500}\n}\n", 0644);
    char want[4200];
    snprintf(want, sizeof want, "%s: key 'svc.count': 500 is above the maximum 100", path);
    assert_err(ibp_settings_load_file(&test_table, path, &cfg, &err), err, IBP_E_CONFIG, want);

    test_write(path, "{\n  \"svc\": {\"name\": \"n\",, }\n}\n", 0644);
    snprintf(want, sizeof want, "%s:2:", path);
    assert_err(ibp_settings_load_file(&test_table, path, &cfg, &err), err, IBP_E_CONFIG, want);

    test_path(path, sizeof path, dir, "good.json");
    test_write(path, "{\"svc\": {\"name\": \"from-file\", \"wait_ms\": \"10m\"}}", 0644);
    assert_ok(ibp_settings_load_file(&test_table, path, &cfg, &err), err);
    assert_string_equal(cfg.name, "from-file");
    assert_int_equal(cfg.wait_ms, 600000);
    ibp_settings_free(&test_table, &cfg);
    test_rmdir(dir);
}

static void test_set_text(void **state)
{
    (void)state;
    test_cfg cfg;
    ibp_err err;
    assert_ok(load("{\"svc.name\": \"n\"}", &cfg, &err), err);
    assert_ok(ibp_settings_set_text(&test_table, &cfg, "svc.count", "42", NULL, &err), err);
    assert_int_equal(cfg.count, 42);
    assert_ok(ibp_settings_set_text(&test_table, &cfg, "svc.flag", "off", NULL, &err), err);
    assert_false(cfg.flag);
    assert_ok(ibp_settings_set_text(&test_table, &cfg, "svc.list", "p, q ,r", NULL, &err), err);
    assert_int_equal(cfg.list.count, 3);
    assert_string_equal(cfg.list.items[1], "q");
    assert_ok(ibp_settings_set_text(&test_table, &cfg, "svc.name", "other", NULL, &err), err);
    assert_string_equal(cfg.name, "other");

    assert_err(ibp_settings_set_text(&test_table, &cfg, "svc.count", "0x10", "-o", &err), err,
               IBP_E_CONFIG, "-o: key 'svc.count': expected an integer, got \"0x10\"");
    assert_err(
        ibp_settings_set_text(&test_table, &cfg, "svc.count", "99999999999999999999", NULL, &err),
        err, IBP_E_CONFIG, "expected an integer");
    assert_err(ibp_settings_set_text(&test_table, &cfg, "svc.count", "1000", NULL, &err), err,
               IBP_E_CONFIG, "command line: key 'svc.count': 1000 is above the maximum 100");
    assert_err(ibp_settings_set_text(&test_table, &cfg, "svc.flag", "maybe", NULL, &err), err,
               IBP_E_CONFIG, "expected true or false");
    assert_err(ibp_settings_set_text(&test_table, &cfg, "svc.list", "a,,b", NULL, &err), err,
               IBP_E_CONFIG, "empty item in list");
    assert_err(ibp_settings_set_text(&test_table, &cfg, "svc.cuont", "1", NULL, &err), err,
               IBP_E_CONFIG, "unknown key 'svc.cuont' (did you mean 'svc.count'?)");
    /* Failed sets keep the old values. */
    assert_int_equal(cfg.count, 42);
    assert_false(cfg.flag);
    assert_int_equal(cfg.list.count, 3);

    assert_ok(ibp_settings_set_text(&test_table, &cfg, "svc.name", "", NULL, &err), err);
    assert_err(ibp_settings_validate(&test_table, &cfg, NULL, &err), err, IBP_E_CONFIG,
               "config: missing required key 'svc.name'");
    ibp_settings_free(&test_table, &cfg);
}

static void test_reload_check(void **state)
{
    (void)state;
    test_cfg a, b;
    ibp_err err;
    assert_ok(load("{\"svc.name\": \"n\", \"svc.path\": \"/one\"}", &a, &err), err);
    assert_ok(load("{\"svc.name\": \"n\", \"svc.path\": \"/two\"}", &b, &err), err);
    assert_ok(ibp_settings_check_reload(&test_table, &a, &b, &err), err); /* path reloadable */
    ibp_settings_free(&test_table, &b);
    assert_ok(load("{\"svc.name\": \"n\", \"svc.list\": [\"a\", \"c\"]}", &b, &err), err);
    assert_err(ibp_settings_check_reload(&test_table, &a, &b, &err), err, IBP_E_CONFIG,
               "key 'svc.list' cannot change without a restart");
    ibp_settings_free(&test_table, &b);
    assert_ok(load("{\"svc.name\": \"n2\"}", &b, &err), err);
    assert_err(ibp_settings_check_reload(&test_table, &a, &b, &err), err, IBP_E_CONFIG,
               "key 'svc.name' cannot change");
    ibp_settings_free(&test_table, &a);
    ibp_settings_free(&test_table, &b);
}

static void test_secret_files(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4096], json[4300];
    test_cfg cfg;
    ibp_err err;
    test_path(path, sizeof path, dir, "secret");

    snprintf(json, sizeof json, "{\"svc.name\": \"n\", \"svc.secret_file\": \"%s\"}", path);
    assert_ok(load(json, &cfg, &err), err);
    assert_err(ibp_settings_check_secrets(&test_table, &cfg, &err), err, IBP_E_IO,
               "key 'svc.secret_file': cannot stat the secret file");
    test_write(path, "hunter2\n", 0644);
    assert_err(ibp_settings_check_secrets(&test_table, &cfg, &err), err, IBP_E_KEY_PERMS,
               "key 'svc.secret_file': the secret file has mode 0644");
    assert_null(strstr(err.msg, path)); /* secrets' paths are not echoed either */
    chmod(path, 0600);
    assert_ok(ibp_settings_check_secrets(&test_table, &cfg, &err), err);
    ibp_settings_free(&test_table, &cfg);

    assert_ok(load("{\"svc.name\": \"n\"}", &cfg, &err), err); /* unset secrets are fine */
    assert_ok(ibp_settings_check_secrets(&test_table, &cfg, &err), err);
    ibp_settings_free(&test_table, &cfg);
    test_rmdir(dir);
}

/* Runs fn(out) into memory and returns the text (caller frees). */
static char *capture(ibp_status (*fn)(FILE *, void *), void *arg, ibp_status *st_out)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    *st_out = fn(f, arg);
    fclose(f);
    return buf;
}

static ibp_status help_of(FILE *f, void *arg)
{
    return ibp_settings_help(arg, f);
}

static ibp_status example_of(FILE *f, void *arg)
{
    ibp_err err;
    return ibp_settings_example(arg, f, &err);
}

static void test_help_and_example_engine(void **state)
{
    (void)state;
    ibp_status st;
    char *help = capture(help_of, (void *)&test_table, &st);
    assert_int_equal(st, IBP_OK);
    assert_non_null(strstr(help, "Configuration keys of test."));
    assert_non_null(strstr(help, "  svc.name\n      string, required\n      A required name."));
    assert_non_null(strstr(help, "  svc.wait_ms\n      duration (ms), default 5000 (5s), min 100 "
                                 "(100ms), max 3600000 (1h)\n"));
    assert_non_null(strstr(help, "  svc.count\n      integer, default 10, min 1, max 100\n"));
    assert_non_null(strstr(help, "  svc.list\n      list of strings, default [\"a\",\"b\"]\n"));
    assert_non_null(strstr(help, "  svc.roles\n      role set, default [\"monitor\"]\n"));
    assert_non_null(strstr(help, "  svc.secret_file\n      path, secret (path of a file)\n"));
    assert_non_null(strstr(help, "  svc.path\n      path, default \"/tmp/x\", reloadable\n"));
    free(help);

    char *example = capture(example_of, (void *)&test_table, &st);
    assert_int_equal(st, IBP_OK);
    test_cfg cfg;
    ibp_err err;
    assert_ok(load(example, &cfg, &err), err);
    assert_string_equal(cfg.name, "example");
    assert_int_equal(cfg.wait_ms, 5000);
    assert_int_equal(cfg.deep.value, -5);
    free(example);
    ibp_settings_free(&test_table, &cfg);
}

static void test_write_json_round_trip(void **state)
{
    (void)state;
    test_cfg a, b;
    ibp_err err;
    assert_ok(load("{\"svc\": {\"name\": \"n\\\"q\", \"roles\": [\"admin\", \"monitor\"],"
                   " \"list\": [\"\\u00e9\", \"x\"], \"wait_ms\": \"1h\", \"flag\": false}}",
                   &a, &err),
              err);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_ok(ibp_settings_write_json(&test_table, &a, f, &err), err);
    fclose(f);
    assert_ok(load(buf, &b, &err), err);
    /* With every key treated as non-reloadable, equality is what check_reload tests. */
    ibp_setting all[sizeof test_settings / sizeof test_settings[0]];
    memcpy(all, test_settings, sizeof all);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        all[i].flags &= ~IBP_SETTING_RELOADABLE;
    ibp_settings_group g = {all, sizeof all / sizeof all[0], 0};
    ibp_settings_table strict = test_table;
    strict.groups = &g;
    assert_ok(ibp_settings_check_reload(&strict, &a, &b, &err), err);
    free(buf);
    ibp_settings_free(&test_table, &a);
    ibp_settings_free(&test_table, &b);
}

/* ---- ibp-node ---------------------------------------------------------------------------- */

#define NODE_MIN                                                                                   \
    "\"node\": {\"id\": \"mon1\", \"roles\": [\"monitor\", \"consensus\"],"                        \
    " \"key_file\": \"/etc/ibp/mon1.key\"},"                                                       \
    " \"network\": {\"members_file\": \"m.json\", \"services_file\": \"s.json\"}"

static ibp_status node_load(const char *json, ibp_node_config *cfg, ibp_err *err)
{
    ibp_err_clear(err);
    return ibp_node_config_load_buffer(json, strlen(json), "node.json", cfg, err);
}

static void expect_node_error(const char *json, ibp_status code, const char *needle)
{
    ibp_node_config cfg;
    ibp_err err;
    assert_err(node_load(json, &cfg, &err), err, code, needle);
}

static void test_node_defaults(void **state)
{
    (void)state;
    ibp_node_config cfg;
    ibp_err err;
    assert_ok(node_load("{" NODE_MIN "}", &cfg, &err), err);
    assert_string_equal(cfg.node.id, "mon1");
    assert_int_equal(cfg.roles, IBP_ROLE_MONITOR | IBP_ROLE_CONSENSUS);
    assert_string_equal(cfg.node.key_file, "/etc/ibp/mon1.key");
    assert_string_equal(cfg.node.roster_file, "/etc/ibp/roster.json");
    assert_string_equal(cfg.node.work_dir, "/var/lib/ibp");
    assert_int_equal(cfg.nats.servers.count, 1);
    assert_string_equal(cfg.nats.servers.items[0], "nats://127.0.0.1:4222");
    assert_null(cfg.nats.user);
    assert_null(cfg.nats.password_file);
    assert_null(cfg.nats.creds_file);
    assert_string_equal(cfg.mysql.host, "127.0.0.1");
    assert_int_equal(cfg.mysql.port, 3306);
    assert_null(cfg.mysql.socket);
    assert_string_equal(cfg.mysql.user, "ibp");
    assert_string_equal(cfg.mysql.database, "ibp");
    assert_null(cfg.maxmind.city_db);
    assert_string_equal(cfg.network.members_file, "m.json");
    assert_null(cfg.network.checks_file);
    assert_int_equal(cfg.intervals.publish_ms, 5000);
    assert_int_equal(cfg.intervals.refresh_ms, 60000);
    assert_int_equal(cfg.intervals.heartbeat_ms, 5000);
    assert_int_equal(cfg.intervals.usage_flush_ms, 300000);
    assert_int_equal(cfg.intervals.cache_save_ms, 90000);
    assert_int_equal(cfg.consensus.active_window_ms, 600000);
    assert_int_equal(cfg.consensus.staleness_ms, 0);
    assert_int_equal(ibp_node_config_staleness_ms(&cfg), 180000);
    assert_int_equal(cfg.consensus.quorum_min, 2);
    assert_int_equal(cfg.consensus.expiry_ms, 3600000);
    assert_int_equal(cfg.events.min_offline_ms, 30000);
    assert_string_equal(cfg.log.level, "info");
    ibp_node_config_free(&cfg);
    ibp_node_config_free(&cfg);
    ibp_node_config_free(NULL);
}

static void test_node_full_file(void **state)
{
    (void)state;
    ibp_node_config cfg;
    ibp_err err;
    ibp_err_clear(&err);
    assert_ok(ibp_node_config_load(IBP_SOURCE_DIR "/tests/data/config/node.json", &cfg, &err), err);
    assert_string_equal(cfg.node.id, "dns-eu_2");
    assert_int_equal(cfg.roles, IBP_ROLE_DNS | IBP_ROLE_MONITOR);
    assert_int_equal(cfg.nats.servers.count, 3);
    assert_string_equal(cfg.nats.servers.items[2], "tls://nats3.example.net:4222");
    assert_string_equal(cfg.nats.creds_file, "/etc/ibp/nats.creds");
    assert_string_equal(cfg.mysql.socket, "/run/mysqld/mysqld.sock");
    assert_int_equal(cfg.mysql.port, 3307);
    assert_string_equal(cfg.maxmind.asn_db, "/var/lib/GeoIP/GeoLite2-ASN.mmdb");
    assert_int_equal(cfg.intervals.publish_ms, 2000);
    assert_int_equal(cfg.intervals.refresh_ms, 30000);
    assert_int_equal(cfg.intervals.usage_flush_ms, 600000);
    assert_int_equal(cfg.consensus.staleness_ms, 120000);
    assert_int_equal(ibp_node_config_staleness_ms(&cfg), 120000);
    assert_int_equal(cfg.consensus.quorum_min, 3);
    assert_int_equal(cfg.events.min_offline_ms, 45000);
    assert_string_equal(cfg.log.level, "debug");
    ibp_node_config_free(&cfg);

    assert_err(
        ibp_node_config_load(IBP_SOURCE_DIR "/tests/data/config/no-such-node.json", &cfg, &err),
        err, IBP_E_IO, "no-such-node.json: cannot open: No such file or directory");
}

static void test_node_errors(void **state)
{
    (void)state;
    expect_node_error("{" NODE_MIN ", \"intervals\": {\"publish_ms\": 50}}", IBP_E_CONFIG,
                      "node.json: key 'intervals.publish_ms': 50 is below the minimum 100");
    expect_node_error("{" NODE_MIN ", \"intervals\": {\"publish_ms\": \"2h\"}}", IBP_E_CONFIG,
                      "node.json: key 'intervals.publish_ms': 7200000 is above the maximum "
                      "3600000");
    expect_node_error("{" NODE_MIN ", \"intervals\": {\"publish_ms\": \"fast\"}}", IBP_E_CONFIG,
                      "node.json: key 'intervals.publish_ms': bad duration \"fast\"");
    expect_node_error("{\"node\": {\"id\": \"mon1\", \"roles\": [\"monitr\"]}}", IBP_E_CONFIG,
                      "node.json: key 'node.roles': element [0]: unknown role \"monitr\"");
    expect_node_error("{\"node\": {\"id\": \"mon1\", \"roles\": \"monitor,dsn\"}}", IBP_E_CONFIG,
                      "node.json: key 'node.roles': unknown role 'dsn'");
    expect_node_error("{\"node\": {\"id\": \"mon 1\", \"roles\": [\"monitor\"]}}", IBP_E_CONFIG,
                      "node.json: key 'node.id': \"mon 1\" is not a valid node id");
    expect_node_error("{\"node\": {\"id\": \"a.b\", \"roles\": [\"dns\"]}}", IBP_E_CONFIG,
                      "is not a valid node id");
    expect_node_error("{\"node\": {\"roles\": [\"monitor\"]}}", IBP_E_CONFIG,
                      "node.json: missing required key 'node.id'");
    expect_node_error("{\"node\": {\"id\": \"mon1\"}}", IBP_E_CONFIG,
                      "node.json: missing required key 'node.roles'");
    expect_node_error("{\"node\": {\"id\": \"mon1\", \"roles\": []}}", IBP_E_CONFIG,
                      "node.json: missing required key 'node.roles'");
    expect_node_error("{\"node\": {\"id\": \"mon1\", \"roles\": [\"consensus\"]}}", IBP_E_CONFIG,
                      "node.json: missing required key 'node.key_file'");
    expect_node_error("{\"node\": {\"id\": \"mon1\", \"roles\": [\"dns\"], \"key_file\": \"k\"}}",
                      IBP_E_CONFIG, "node.json: missing required key 'network.members_file'");
    expect_node_error("{" NODE_MIN ", \"nats\": {\"servers\": []}}", IBP_E_CONFIG,
                      "node.json: key 'nats.servers': [] names no server");
    expect_node_error("{" NODE_MIN ", \"nats\": {\"server\": [\"nats://x\"]}}", IBP_E_CONFIG,
                      "node.json: unknown key 'nats.server' (did you mean 'nats.servers'?)");
    expect_node_error("{" NODE_MIN ", \"nats\": {\"password_file\": \"/p\"}}", IBP_E_CONFIG,
                      "node.json: key 'nats.password_file' needs 'nats.user'");
    expect_node_error("{" NODE_MIN ", \"nats\": {\"creds_file\": \"/c\", \"user\": \"u\"}}",
                      IBP_E_CONFIG, "key 'nats.creds_file' excludes");
    expect_node_error("{" NODE_MIN ", \"nats\": {\"tls_cert_file\": \"/c\"}}", IBP_E_CONFIG,
                      "keys 'nats.tls_cert_file' and 'nats.tls_key_file' go together");
    expect_node_error("{" NODE_MIN ", \"mysql\": {\"port\": 70000}}", IBP_E_CONFIG,
                      "node.json: key 'mysql.port': 70000 is above the maximum 65535");
    expect_node_error("{" NODE_MIN ", \"mysql\": {\"port\": \"3306\"}}", IBP_E_CONFIG,
                      "node.json: key 'mysql.port': expected an integer, got a string \"3306\"");
    expect_node_error("{" NODE_MIN ", \"consensus\": {\"quorum_min\": 1}}", IBP_E_CONFIG,
                      "key 'consensus.quorum_min': 1 is below the minimum 2");
    expect_node_error("{" NODE_MIN ", \"consensus\": {\"staleness_ms\": 1000}}", IBP_E_CONFIG,
                      "key 'consensus.staleness_ms': 1000 is below intervals.publish_ms (5000)");
    expect_node_error("{" NODE_MIN ", \"intervals\": {\"heartbeat_ms\": \"20m\"}}", IBP_E_CONFIG,
                      "key 'intervals.heartbeat_ms': 1200000 must be below "
                      "consensus.active_window_ms (600000)");
    expect_node_error("{" NODE_MIN ", \"log\": {\"level\": \"loud\"}}", IBP_E_CONFIG,
                      "node.json: key 'log.level': \"loud\" is not a log level");
    expect_node_error("{" NODE_MIN ", \"log\": {\"level\": \"\"}}", IBP_E_CONFIG,
                      "node.json: key 'log.level': \"\" is not a log level");
    expect_node_error("{" NODE_MIN ", \"persist\": {\"batch_size\": 5}}", IBP_E_CONFIG,
                      "node.json: unknown key 'persist'");
    expect_node_error("{" NODE_MIN ",}", IBP_E_CONFIG, "node.json:1:");
    /* A secret's bad value is not echoed. */
    ibp_node_config cfg;
    ibp_err err;
    assert_err(
        node_load("{" NODE_MIN ", \"mysql\": {\"password_file\": [\"hunter2\"]}}", &cfg, &err), err,
        IBP_E_CONFIG, "key 'mysql.password_file': expected a string, got an array");
    assert_null(strstr(err.msg, "hunter2"));
}

static void test_node_durations_as_strings(void **state)
{
    (void)state;
    ibp_node_config cfg;
    ibp_err err;
    assert_ok(node_load("{" NODE_MIN ", \"intervals\": {\"publish_ms\": \"5s\", \"refresh_ms\":"
                        " \"2m\", \"usage_flush_ms\": \"10m\"}, \"events\": {\"min_offline_ms\":"
                        " \"1m30s\"}}",
                        &cfg, &err),
              err);
    assert_int_equal(cfg.intervals.publish_ms, 5000);
    assert_int_equal(cfg.intervals.refresh_ms, 120000);
    assert_int_equal(ibp_node_config_staleness_ms(&cfg), 360000);
    assert_int_equal(cfg.intervals.usage_flush_ms, 600000);
    assert_int_equal(cfg.events.min_offline_ms, 90000);
    ibp_node_config_free(&cfg);
}

static ibp_status node_help(FILE *f, void *arg)
{
    (void)arg;
    return ibp_node_config_help(f);
}

static ibp_status node_example(FILE *f, void *arg)
{
    (void)arg;
    ibp_err err;
    return ibp_node_config_example(f, &err);
}

static ibp_status persist_help(FILE *f, void *arg)
{
    (void)arg;
    return ibp_persist_config_help(f);
}

static ibp_status persist_example(FILE *f, void *arg)
{
    (void)arg;
    ibp_err err;
    return ibp_persist_config_example(f, &err);
}

/* Every key of the table appears in the help text, and no other "  <name>" line. */
static void assert_help_lists_table(const char *help, const ibp_settings_table *t)
{
    size_t n = 0;
    for (size_t g = 0; g < t->group_count; g++) {
        for (size_t i = 0; i < t->groups[g].count; i++) {
            char line[128];
            snprintf(line, sizeof line, "\n  %s\n", t->groups[g].settings[i].name);
            if (!strstr(help, line))
                fail_msg("help lacks key %s", t->groups[g].settings[i].name);
            n++;
        }
    }
    size_t lines = 0;
    for (const char *p = help; (p = strstr(p, "\n  ")) != NULL; p += 3)
        if (p[3] != ' ')
            lines++;
    assert_int_equal(lines, n);
}

static void test_node_help_and_example(void **state)
{
    (void)state;
    ibp_status st;
    char *help = capture(node_help, NULL, &st);
    assert_int_equal(st, IBP_OK);
    assert_help_lists_table(help, ibp_node_config_table());
    assert_non_null(strstr(help, "Configuration keys of ibp-node."));
    assert_non_null(strstr(help, "  intervals.publish_ms\n      duration (ms), default 5000 (5s), "
                                 "min 100 (100ms), max 3600000 (1h), reloadable\n"));
    assert_non_null(strstr(help, "  nats.servers\n      list of strings, default "
                                 "[\"nats://127.0.0.1:4222\"]\n"));
    assert_non_null(strstr(help, "  node.id\n      string, required\n"));
    assert_non_null(strstr(help, "  mysql.password_file\n      path, secret (path of a file)\n"));
    free(help);

    char *example = capture(node_example, NULL, &st);
    assert_int_equal(st, IBP_OK);
    ibp_node_config cfg;
    ibp_err err;
    assert_ok(node_load(example, &cfg, &err), err);
    assert_string_equal(cfg.node.id, "node1");
    assert_int_equal(cfg.roles, IBP_ROLE_MONITOR | IBP_ROLE_CONSENSUS);
    assert_int_equal(cfg.intervals.publish_ms, 5000);
    assert_null(cfg.nats.password_file); /* written as "", read back as unset */
    /* Nested by section, as an operator would write it. */
    assert_non_null(strstr(example, "\"intervals\": {"));
    assert_non_null(strstr(example, "\"publish_ms\": 5000"));
    ibp_node_config_free(&cfg);
    free(example);
}

static void test_persist_config(void **state)
{
    (void)state;
    ibp_persist_config cfg;
    ibp_err err;
    const char *json = "{\"node\": {\"id\": \"persist1\"}, \"persist\": {\"fetch_wait_ms\": "
                       "\"2s\"}, \"mysql\": {\"password_file\": \"/etc/ibp/db.pw\"}}";
    ibp_err_clear(&err);
    assert_ok(ibp_persist_config_load_buffer(json, strlen(json), "persist.json", &cfg, &err), err);
    assert_string_equal(cfg.node.id, "persist1");
    assert_int_equal(cfg.persist.batch_size, 1000);
    assert_int_equal(cfg.persist.fetch_wait_ms, 2000);
    assert_int_equal(cfg.mysql.port, 3306);
    assert_string_equal(cfg.mysql.password_file, "/etc/ibp/db.pw");
    assert_string_equal(cfg.nats.servers.items[0], "nats://127.0.0.1:4222");
    assert_int_equal(cfg.events.min_offline_ms, 30000);
    assert_string_equal(cfg.log.level, "info");
    ibp_persist_config_free(&cfg);
    ibp_persist_config_free(NULL);

    json = "{\"node\": {\"id\": \"p1\", \"roles\": [\"persist\"]}}";
    assert_err(ibp_persist_config_load_buffer(json, strlen(json), "persist.json", &cfg, &err), err,
               IBP_E_CONFIG, "persist.json: unknown key 'node.roles'");
    json = "{\"node\": {\"id\": \"p1\"}, \"persist\": {\"batch_size\": 0}}";
    assert_err(ibp_persist_config_load_buffer(json, strlen(json), "persist.json", &cfg, &err), err,
               IBP_E_CONFIG, "persist.json: key 'persist.batch_size': 0 is below the minimum 1");
    json = "{\"node\": {\"id\": \"p1\"}, \"nats\": {\"tls_key_file\": \"/k\"}}";
    assert_err(ibp_persist_config_load_buffer(json, strlen(json), "persist.json", &cfg, &err), err,
               IBP_E_CONFIG, "go together");
    assert_err(ibp_persist_config_load("/nonexistent/persist.json", &cfg, &err), err, IBP_E_IO,
               "/nonexistent/persist.json: cannot open");

    ibp_status st;
    char *help = capture(persist_help, NULL, &st);
    assert_int_equal(st, IBP_OK);
    assert_help_lists_table(help, ibp_persist_config_table());
    assert_non_null(strstr(help, "Configuration keys of ibp-persist."));
    free(help);
    char *example = capture(persist_example, NULL, &st);
    assert_int_equal(st, IBP_OK);
    assert_ok(ibp_persist_config_load_buffer(example, strlen(example), "example", &cfg, &err), err);
    assert_int_equal(cfg.persist.batch_size, 1000);
    ibp_persist_config_free(&cfg);
    free(example);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    ibp_node_config cfg;
    ibp_err err;
    assert_int_equal(ibp_node_config_load(NULL, &cfg, &err), IBP_E_INVAL);
    assert_int_equal(ibp_node_config_load("x", NULL, &err), IBP_E_INVAL);
    assert_int_equal(ibp_settings_defaults(NULL, &cfg, NULL), IBP_E_INVAL);
    assert_int_equal(ibp_settings_help(NULL, stdout), IBP_E_INVAL);
    assert_int_equal(ibp_settings_example(&test_table, NULL, NULL), IBP_E_INVAL);
    assert_int_equal(ibp_settings_set_text(&test_table, NULL, "svc.count", "1", NULL, NULL),
                     IBP_E_INVAL);
    assert_null(ibp_settings_find(NULL, "x"));
    assert_int_equal(ibp_node_config_staleness_ms(NULL), 0);
    /* A NULL err is always allowed. */
    assert_int_equal(ibp_node_config_load_buffer("{}", 2, NULL, &cfg, NULL), IBP_E_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_are_sound),
        cmocka_unit_test(test_broken_tables_are_caught),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_load_values),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_bounds_and_checks),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_set_text),
        cmocka_unit_test(test_reload_check),
        cmocka_unit_test(test_secret_files),
        cmocka_unit_test(test_help_and_example_engine),
        cmocka_unit_test(test_write_json_round_trip),
        cmocka_unit_test(test_node_defaults),
        cmocka_unit_test(test_node_full_file),
        cmocka_unit_test(test_node_errors),
        cmocka_unit_test(test_node_durations_as_strings),
        cmocka_unit_test(test_node_help_and_example),
        cmocka_unit_test(test_persist_config),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
