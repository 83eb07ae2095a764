/*
 * Unit tests: ibp-persist's settings table (ibp/persist_config.h): the keys
 * its command-line flags set, their defaults and checks, and the groups it
 * shares with ibp-node. No files, no servers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/node_config.h"
#include "ibp/persist_config.h"

#define MIN_JSON "{\"node\": {\"id\": \"persist1\"}}"

static ibp_status load(const char *json, ibp_persist_config *cfg, ibp_err *err)
{
    ibp_err_clear(err);
    return ibp_persist_config_load_buffer(json, strlen(json), "persist.json", cfg, err);
}

static void expect_error(const char *json, const char *needle)
{
    ibp_persist_config cfg;
    ibp_err err;
    ibp_status st = load(json, &cfg, &err);
    if (st != IBP_E_CONFIG)
        fail_msg("status %s, want IBP_E_CONFIG (%s)", ibp_status_name(st), err.msg);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("message \"%s\" does not contain \"%s\"", err.msg, needle);
}

static void test_flag_keys_defaults(void **state)
{
    (void)state;
    ibp_persist_config cfg;
    ibp_err err;
    assert_int_equal(load(MIN_JSON, &cfg, &err), IBP_OK);
    assert_null(cfg.persist.sql_dir);
    assert_string_equal(cfg.persist.hits_stream, "HITS");
    assert_string_equal(cfg.persist.events_stream, "EVENTS");
    assert_string_equal(cfg.persist.hits_durable, "ibp-persist-hits");
    assert_string_equal(cfg.persist.events_durable, "ibp-persist-events");
    assert_string_equal(cfg.persist.service_prefix, "ibp.persist");
    assert_null(cfg.replay.database);
    assert_int_equal(cfg.replay.from_seq, 0);
    assert_null(cfg.replay.from_time);
    assert_string_equal(cfg.replay.stream, "all");
    ibp_persist_config_free(&cfg);
}

/* What a flag does: ibp_settings_set_text on its key, then validation. */
static void test_flag_keys_set(void **state)
{
    (void)state;
    const ibp_settings_table *t = ibp_persist_config_table();
    ibp_persist_config cfg;
    ibp_err err;
    assert_int_equal(load(MIN_JSON, &cfg, &err), IBP_OK);
    assert_int_equal(
        ibp_settings_set_text(t, &cfg, "persist.hits_stream", "", "--hits-stream", &err), IBP_OK);
    assert_null(cfg.persist.hits_stream); /* "" skips the stream */
    assert_int_equal(ibp_settings_set_text(t, &cfg, "replay.from_seq", "812", "--from-seq", &err),
                     IBP_OK);
    assert_int_equal(cfg.replay.from_seq, 812);
    assert_int_equal(
        ibp_settings_set_text(t, &cfg, "replay.from_time", "2025-01-31", "--from-time", &err),
        IBP_OK);
    /* Both set: validation refuses them together. */
    assert_int_equal(ibp_settings_validate(t, &cfg, "persist.json", &err), IBP_E_CONFIG);
    assert_non_null(strstr(err.msg, "'replay.from_seq' and 'replay.from_time' exclude each other"));

    assert_int_equal(
        ibp_settings_set_text(t, &cfg, "replay.from_time", "yesterday", "--from-time", &err),
        IBP_E_CONFIG);
    assert_non_null(strstr(err.msg, "--from-time: key 'replay.from_time'"));
    assert_non_null(strstr(err.msg, "is not an RFC 3339 time or a date"));
    assert_int_equal(ibp_settings_set_text(t, &cfg, "replay.stream", "BOTH", "--stream", &err),
                     IBP_E_CONFIG);
    assert_non_null(strstr(err.msg, "is not HITS, EVENTS or all"));
    assert_int_equal(ibp_settings_set_text(t, &cfg, "replay.from_seq", "-1", "--from-seq", &err),
                     IBP_E_CONFIG);
    ibp_persist_config_free(&cfg);
}

static void test_file_keys(void **state)
{
    (void)state;
    ibp_persist_config cfg;
    ibp_err err;
    assert_int_equal(load("{\"node\": {\"id\": \"p1\"}, \"persist\": {\"sql_dir\": \"/srv/sql\", "
                          "\"events_stream\": \"\"}, \"replay\": {\"database\": \"ibp_rebuilt\", "
                          "\"stream\": \"HITS\", \"from_time\": \"2025-01-31T12:00:00Z\"}}",
                          &cfg, &err),
                     IBP_OK);
    assert_string_equal(cfg.persist.sql_dir, "/srv/sql");
    assert_null(cfg.persist.events_stream);
    assert_string_equal(cfg.replay.database, "ibp_rebuilt");
    assert_string_equal(cfg.replay.stream, "HITS");
    assert_string_equal(cfg.replay.from_time, "2025-01-31T12:00:00Z");
    ibp_persist_config_free(&cfg);
    ibp_persist_config_free(&cfg);
    ibp_persist_config_free(NULL);

    expect_error("{\"node\": {\"id\": \"p1\"}, \"replay\": {\"stream\": \"hits\"}}",
                 "key 'replay.stream': \"hits\" is not HITS, EVENTS or all");
    expect_error("{\"node\": {\"id\": \"p1\"}, \"replay\": {\"from_seq\": 5, \"from_time\": "
                 "\"2025-01-31\"}}",
                 "persist.json: keys 'replay.from_seq' and 'replay.from_time' exclude each other");
    expect_error("{\"node\": {\"id\": \"p1\"}, \"nats\": {\"password_file\": \"/p\"}}",
                 "key 'nats.password_file' needs 'nats.user'");
}

/* The groups shared with ibp-node are node_config's entries, not copies. */
static void test_shared_groups(void **state)
{
    (void)state;
    const ibp_settings_table *t = ibp_persist_config_table();
    ibp_err err;
    ibp_err_clear(&err);
    assert_int_equal(ibp_settings_table_check(t, &err), IBP_OK);
    assert_ptr_equal(ibp_persist_config_table(), t);
    size_t n = 0;
    const ibp_setting *nats = ibp_config_nats_settings(&n);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(ibp_settings_find(t, nats[i].name), &nats[i]);
    const ibp_setting *mysql = ibp_config_mysql_settings(&n);
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(ibp_settings_find(t, mysql[i].name), &mysql[i]);
    assert_ptr_equal(ibp_settings_find(t, "mysql.port"),
                     ibp_settings_find(ibp_node_config_table(), "mysql.port"));
    assert_null(ibp_settings_find(t, "node.roles"));
    assert_non_null(ibp_settings_find(t, "replay.database"));
    assert_non_null(ibp_settings_find(t, "persist.service_prefix"));
}

static void test_help_and_example(void **state)
{
    (void)state;
    char *help = NULL, *example = NULL;
    size_t help_len = 0, example_len = 0;
    FILE *f = open_memstream(&help, &help_len);
    assert_non_null(f);
    assert_int_equal(ibp_persist_config_help(f), IBP_OK);
    fclose(f);
    assert_non_null(strstr(help, "replay.from_time"));
    assert_non_null(strstr(help, "--hits-stream"));
    ibp_err err;
    ibp_err_clear(&err);
    f = open_memstream(&example, &example_len);
    assert_non_null(f);
    assert_int_equal(ibp_persist_config_example(f, &err), IBP_OK);
    fclose(f);
    ibp_persist_config cfg;
    assert_int_equal(ibp_persist_config_load_buffer(example, example_len, "example", &cfg, &err),
                     IBP_OK);
    assert_string_equal(cfg.persist.hits_stream, "HITS");
    assert_string_equal(cfg.replay.stream, "all");
    ibp_persist_config_free(&cfg);
    free(help);
    free(example);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flag_keys_defaults), cmocka_unit_test(test_flag_keys_set),
        cmocka_unit_test(test_file_keys),          cmocka_unit_test(test_shared_groups),
        cmocka_unit_test(test_help_and_example),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
