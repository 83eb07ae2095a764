/*
 * The settings table of ibp-persist; see ibp/persist_config.h.
 *
 * The groups it shares with ibp-node come from ibp/node_config.h as
 * functions, so the group list is filled once at first use (pthread_once)
 * instead of being a constant initialiser.
 */
#include "ibp/persist_config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "ibp/date.h"
#include "ibp/persist.h"
#include "ibp/persist_service.h"

#define SECOND_MS INT64_C(1000)

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int check_from_time(const void *field, char *why, size_t cap)
{
    const char *text = *(char *const *)field;
    int64_t ms;
    if (text == NULL || ibp_rfc3339_parse_ms(text, &ms))
        return 0;
    snprintf(why, cap, "is not an RFC 3339 time or a date (2025-01-31T12:00:00Z, 2025-01-31)");
    return -1;
}

static int check_replay_stream(const void *field, char *why, size_t cap)
{
    const char *s = *(char *const *)field;
    /* NULL only when set to "": the default is "all". */
    if (s != NULL && (strcmp(s, "all") == 0 || strcmp(s, "HITS") == 0 || strcmp(s, "EVENTS") == 0))
        return 0;
    snprintf(why, cap, "is not HITS, EVENTS or all");
    return -1;
}

static const ibp_setting persist_settings[] = {
    {.name = "persist.batch_size",
     .type = IBP_SETTING_INT64,
     .flags = IBP_SETTING_RELOADABLE,
     .default_text = "1000",
     .min = 1,
     .max = 100000,
     .offset = IBP_SETTING_AT_I64(ibp_persist_config, persist.batch_size),
     .help = "Messages fetched and applied to the database per transaction."},
    {.name = "persist.fetch_wait_ms",
     .type = IBP_SETTING_DURATION_MS,
     .flags = IBP_SETTING_RELOADABLE,
     .default_text = "1000",
     .min = 10,
     .max = 60 * SECOND_MS,
     .offset = IBP_SETTING_AT_I64(ibp_persist_config, persist.fetch_wait_ms),
     .help = "How long one fetch from a stream waits for messages."},
    {.name = "persist.sql_dir",
     .type = IBP_SETTING_PATH,
     .offset = IBP_SETTING_AT_STR(ibp_persist_config, persist.sql_dir),
     .help = "Directory of the schema migration files (--sql-dir); unset: $IBP_SQL_DIR, else "
             "the installed ones."},
    {.name = "persist.hits_stream",
     .type = IBP_SETTING_STRING,
     .default_text = "HITS",
     .offset = IBP_SETTING_AT_STR(ibp_persist_config, persist.hits_stream),
     .help = "Stream of HitBatches (--hits-stream); \"\" skips it. With both standard names "
             "the streams are created when missing; other names are the operator's."},
    {.name = "persist.events_stream",
     .type = IBP_SETTING_STRING,
     .default_text = "EVENTS",
     .offset = IBP_SETTING_AT_STR(ibp_persist_config, persist.events_stream),
     .help = "Stream of Events (--events-stream); \"\" skips it."},
    {.name = "persist.hits_durable",
     .type = IBP_SETTING_STRING,
     .default_text = IBP_PERSIST_HITS_DURABLE_DEFAULT,
     .offset = IBP_SETTING_AT_STR(ibp_persist_config, persist.hits_durable),
     .help = "Durable consumer of the HITS stream and its name in persist_offsets "
             "(--hits-durable)."},
    {.name = "persist.events_durable",
     .type = IBP_SETTING_STRING,
     .default_text = IBP_PERSIST_EVENTS_DURABLE_DEFAULT,
     .offset = IBP_SETTING_AT_STR(ibp_persist_config, persist.events_durable),
     .help = "Durable consumer of the EVENTS stream and its name in persist_offsets "
             "(--events-durable)."},
    {.name = "persist.service_prefix",
     .type = IBP_SETTING_STRING,
     .default_text = IBP_PERSIST_SERVICE_PREFIX,
     .offset = IBP_SETTING_AT_STR(ibp_persist_config, persist.service_prefix),
     .help = "Request subjects of the queries: <prefix>.events, <prefix>.usage "
             "(--service-prefix)."},
};

static const ibp_setting replay_settings[] = {
    {.name = "replay.database",
     .type = IBP_SETTING_STRING,
     .offset = IBP_SETTING_AT_STR(ibp_persist_config, replay.database),
     .help = "replay: the database to rebuild, empty or missing (--database); required by "
             "replay."},
    {.name = "replay.from_seq",
     .type = IBP_SETTING_INT64,
     .min = 0,
     .max = INT64_MAX,
     .offset = IBP_SETTING_AT_I64(ibp_persist_config, replay.from_seq),
     .help = "replay: first stream sequence read (--from-seq); 0: from the first message."},
    {.name = "replay.from_time",
     .type = IBP_SETTING_STRING,
     .offset = IBP_SETTING_AT_STR(ibp_persist_config, replay.from_time),
     .check = check_from_time,
     .help = "replay: read from the first message at or after this RFC 3339 time or date "
             "(--from-time); excludes replay.from_seq."},
    {.name = "replay.stream",
     .type = IBP_SETTING_STRING,
     .default_text = "all",
     .offset = IBP_SETTING_AT_STR(ibp_persist_config, replay.stream),
     .check = check_replay_stream,
     .help = "replay: the streams rebuilt: HITS, EVENTS or all (--stream)."},
};

static ibp_status validate_persist(const void *base, const char *source, ibp_err *err)
{
    const ibp_persist_config *cfg = base;
    if (cfg->replay.from_seq != 0 && cfg->replay.from_time != NULL)
        return ibp_err_set(err, IBP_E_CONFIG,
                           "%s: keys 'replay.from_seq' and 'replay.from_time' exclude each other",
                           source);
    return ibp_config_nats_validate(&cfg->nats, source, err);
}

/* The groups in the order of --help and the example config. */
#define GROUP_COUNT 7
static ibp_settings_group persist_groups[GROUP_COUNT];
static ibp_settings_table persist_table;
static pthread_once_t persist_table_once = PTHREAD_ONCE_INIT;

static ibp_settings_group shared(const ibp_setting *(*group)(size_t *count), size_t base)
{
    ibp_settings_group g = {.base = base};
    g.settings = group(&g.count);
    return g;
}

static void persist_table_init(void)
{
    const ibp_settings_group groups[GROUP_COUNT] = {
        shared(ibp_config_identity_settings, offsetof(ibp_persist_config, node)),
        shared(ibp_config_nats_settings, offsetof(ibp_persist_config, nats)),
        shared(ibp_config_mysql_settings, offsetof(ibp_persist_config, mysql)),
        {persist_settings, COUNT(persist_settings), 0},
        {replay_settings, COUNT(replay_settings), 0},
        shared(ibp_config_events_settings, offsetof(ibp_persist_config, events)),
        shared(ibp_config_log_settings, offsetof(ibp_persist_config, log)),
    };
    memcpy(persist_groups, groups, sizeof groups);
    persist_table = (ibp_settings_table){
        .program = "ibp-persist",
        .groups = persist_groups,
        .group_count = GROUP_COUNT,
        .struct_size = sizeof(ibp_persist_config),
        .validate = validate_persist,
    };
}

const ibp_settings_table *ibp_persist_config_table(void)
{
    pthread_once(&persist_table_once, persist_table_init);
    return &persist_table;
}

ibp_status ibp_persist_config_load(const char *path, ibp_persist_config *out, ibp_err *err)
{
    return ibp_settings_load_file(ibp_persist_config_table(), path, out, err);
}

ibp_status ibp_persist_config_load_buffer(const char *text, size_t len, const char *source,
                                          ibp_persist_config *out, ibp_err *err)
{
    return ibp_settings_load_buffer(ibp_persist_config_table(), text, len, source, out, err);
}

void ibp_persist_config_free(ibp_persist_config *cfg)
{
    ibp_settings_free(ibp_persist_config_table(), cfg);
}

ibp_status ibp_persist_config_help(FILE *out)
{
    return ibp_settings_help(ibp_persist_config_table(), out);
}

ibp_status ibp_persist_config_example(FILE *out, ibp_err *err)
{
    return ibp_settings_example(ibp_persist_config_table(), out, err);
}
