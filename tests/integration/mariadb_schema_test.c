/*
 * The schema (deploy/sql) and its migrations (persist/schema.c) against a
 * real MariaDB: a fresh database migrates to the newest version with the
 * tables and keys persist relies on; the requests upsert adds hits; the
 * open-event key allows one open event per key; migrating again is a no-op;
 * a database newer than the files, or one holding another schema, is refused;
 * the statement splitter copes with comments and quotes; broken migration
 * directories and failing statements give errors that say where; a database
 * at 002 upgrades to 003 (the caps of ibp/types.h) keeping its rows and keys.
 *
 * Every test works in a database of its own (it_schema_<pid>_<random>),
 * dropped afterwards, so the test can run beside others on the same server.
 */
#include <ctype.h>
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <mysqld_error.h>

#include "ibp/schema.h"
#include "ibp/status.h"
#include "testenv.h"

#define SQL_DIR IBP_SOURCE_DIR "/deploy/sql"

typedef struct group {
    ibp_testenv env;
    MYSQL *db;
    int newest; /* highest NNN_ in deploy/sql */
} group;

typedef struct test_ctx {
    group *g;
    char dbname[64];
    char tmpdir[1024];
} test_ctx;

static group the_group;

/* Runs SQL that must succeed; fails the test with the statement and error. */
#define EXEC(db, ...)                                                                              \
    do {                                                                                           \
        if (ibp_testenv_mysql_exec((db), __VA_ARGS__) != 0)                                        \
            fail_msg("SQL failed (see above)");                                                    \
    } while (0)

static long long query_int(MYSQL *db, const char *sql)
{
    long long v = 0;
    if (ibp_testenv_mysql_query_int(db, &v, "%s", sql) != 0)
        fail_msg("query failed (see above): %s", sql);
    return v;
}

/* First column of the first row as a string ("" for NULL or no row). */
static void query_string(MYSQL *db, char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void query_string(MYSQL *db, char *buf, size_t cap, const char *fmt, ...)
{
    char sql[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    if (mysql_query(db, sql) != 0)
        fail_msg("SQL failed: %s\n  MariaDB %u: %s", sql, mysql_errno(db), mysql_error(db));
    MYSQL_RES *res = mysql_store_result(db);
    if (res == NULL)
        fail_msg("no result set: %s", sql);
    MYSQL_ROW row = mysql_fetch_row(res);
    snprintf(buf, cap, "%s", row && row[0] ? row[0] : "");
    mysql_free_result(res);
}

static int newest_migration(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int newest = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".sql") == 0 &&
            isdigit((unsigned char)e->d_name[0])) {
            int v = atoi(e->d_name);
            if (v > newest)
                newest = v;
        }
    }
    closedir(d);
    return newest;
}

static int group_setup(void **state)
{
    group *g = &the_group;
    char version[128];
    if (ibp_testenv_load(&g->env) != 0)
        return -1;
    ibp_testenv_print(&g->env);
    g->db = ibp_testenv_mysql_connect(&g->env, NULL);
    if (g->db == NULL)
        return -1;
    if (mysql_query(g->db, "SELECT VERSION()") != 0) {
        fprintf(stderr, "SELECT VERSION(): %s\n", mysql_error(g->db));
        return -1;
    }
    MYSQL_RES *res = mysql_store_result(g->db);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    snprintf(version, sizeof version, "%s", row && row[0] ? row[0] : "?");
    mysql_free_result(res);
    printf("SELECT VERSION() = %s (client libmariadb %s)\n", version, mysql_get_client_info());
    g->newest = newest_migration(SQL_DIR);
    printf("migrations in %s: newest %d\n", SQL_DIR, g->newest);
    fflush(stdout);
    if (g->newest < 1) {
        fprintf(stderr, "no migrations found in %s\n", SQL_DIR);
        return -1;
    }
    *state = g;
    return 0;
}

static int group_teardown(void **state)
{
    mysql_close(the_group.db);
    return 0;
}

static int test_setup(void **state)
{
    test_ctx *t = calloc(1, sizeof *t);
    if (t == NULL)
        return -1;
    t->g = &the_group;
    *state = t;
    if (ibp_testenv_unique_name("it_schema", t->dbname, sizeof t->dbname) != 0)
        return -1;
    if (ibp_testenv_mysql_exec(t->g->db,
                               "CREATE DATABASE `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                               t->dbname) != 0)
        return -1;
    if (mysql_select_db(t->g->db, t->dbname) != 0) {
        fprintf(stderr, "USE %s: %s\n", t->dbname, mysql_error(t->g->db));
        return -1;
    }
    return 0;
}

static int test_teardown(void **state)
{
    test_ctx *t = *state;
    int rc = 0;
    if (t == NULL)
        return 0;
    if (t->dbname[0] != '\0' &&
        ibp_testenv_mysql_exec(t->g->db, "DROP DATABASE IF EXISTS `%s`", t->dbname) != 0)
        rc = -1;
    if (t->tmpdir[0] != '\0' && ibp_testenv_rmtree(t->tmpdir) != 0)
        rc = -1;
    free(t);
    return rc;
}

static void migrate_ok(MYSQL *db, const char *dir, int want_version)
{
    ibp_err err;
    int version = -1;
    ibp_err_clear(&err);
    ibp_status st = ibp_schema_migrate(db, dir, &version, &err);
    if (st != IBP_OK)
        fail_msg("ibp_schema_migrate(%s): %s: %s", dir, ibp_status_name(st), err.msg);
    assert_int_equal(version, want_version);
}

/* Columns of an index in order, comma-separated. */
static void index_columns(MYSQL *db, const char *table, const char *index, char *buf, size_t cap)
{
    query_string(db, buf, cap,
                 "SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX SEPARATOR ',') "
                 "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
                 "AND TABLE_NAME = '%s' AND INDEX_NAME = '%s'",
                 table, index);
}

static void assert_index(MYSQL *db, const char *table, const char *index, const char *want,
                         bool unique)
{
    char got[1024];
    index_columns(db, table, index, got, sizeof got);
    if (strcmp(got, want) != 0)
        fail_msg("%s index %s: columns '%s', want '%s'", table, index, got, want);
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT MAX(NON_UNIQUE) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = "
             "DATABASE() AND TABLE_NAME = '%s' AND INDEX_NAME = '%s'",
             table, index);
    long long non_unique = query_int(db, sql);
    if (non_unique != (unique ? 0 : 1))
        fail_msg("%s index %s: NON_UNIQUE = %lld, want %d", table, index, non_unique,
                 unique ? 0 : 1);
}

static void test_fresh_database(void **state)
{
    test_ctx *t = *state;
    MYSQL *db = t->g->db;
    ibp_err err;
    int version = -1;

    ibp_err_clear(&err);
    assert_int_equal(ibp_schema_version(db, &version, &err), IBP_OK);
    assert_int_equal(version, 0);

    migrate_ok(db, SQL_DIR, t->g->newest);
    assert_int_equal(ibp_schema_version(db, &version, &err), IBP_OK);
    assert_int_equal(version, t->g->newest);

    static const char *const tables[] = {"requests", "member_events", "persist_offsets",
                                         "dead_letters", "schema_version"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                 "AND TABLE_NAME = '%s' AND ENGINE = 'InnoDB'",
                 tables[i]);
        if (query_int(db, sql) != 1)
            fail_msg("table %s: not found (or not InnoDB) after migrating", tables[i]);
    }

    assert_index(db, "requests", "PRIMARY", "date,row_key", true);
    /* The PRIMARY KEY columns are NOT NULL by definition; check none slipped to NULL-able. */
    assert_int_equal(query_int(db, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE "
                                   "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'requests' AND "
                                   "IS_NULLABLE = 'YES'"),
                     0);
    assert_index(db, "member_events", "PRIMARY", "id", true);
    assert_index(db, "member_events", "uniq_open_event", "open_key", true);
    assert_index(db, "member_events", "uniq_event_id", "event_id", true);
    assert_index(db, "persist_offsets", "PRIMARY", "stream,consumer", true);
    assert_index(db, "dead_letters", "PRIMARY", "stream,seq", true);
    assert_index(db, "schema_version", "PRIMARY", "version", true);

    /* Recorded: one row per applied migration. */
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM schema_version");
    assert_int_equal(query_int(db, sql), t->g->newest);
    char name[256];
    query_string(db, name, sizeof name, "SELECT name FROM schema_version WHERE version = 1");
    assert_string_equal(name, "001_initial.sql");
}

/* The key columns of a requests row but the date: node_id, domain_name,
 * member_name, network_asn, network_name, country_code, country_name. */
typedef struct req_key {
    const char *v[7];
} req_key;

static const req_key KEY_SP = {
    {"dns1", "rpc.ibp.network", "Stake Plus", "AS13335", "Cloudflare, Inc.", "DE", "Germany"}};

/*
 * row_key of a row (deploy/sql/003_caps.sql) as SQL: over the literals of k,
 * or over the row's own columns when k is NULL. Values hold no quotes.
 */
static void row_key_sql(char *buf, size_t cap, const req_key *k, int ipv6)
{
    static const char *const cols[7] = {"node_id",     "domain_name",  "member_name",
                                        "network_asn", "network_name", "country_code",
                                        "country_name"};
    size_t n = (size_t)snprintf(buf, cap, "UNHEX(SHA2(CONCAT(");
    for (int i = 0; i < 7; i++) {
        char v[1100];
        if (k)
            snprintf(v, sizeof v, "'%s'", k->v[i]);
        else
            snprintf(v, sizeof v, "%s", cols[i]);
        n += (size_t)snprintf(buf + n, cap - n, "LENGTH(RTRIM(%s)), ':', RTRIM(%s), ", v, v);
    }
    if (k)
        snprintf(buf + n, cap - n, "':', %d), 256))", ipv6);
    else
        snprintf(buf + n, cap - n, "':', is_ipv6), 256))");
}

/* Adds hits to the row of (2025-01-31, k, ipv6) as persist does. */
static void upsert_row(MYSQL *db, const req_key *k, int ipv6, long long hits)
{
    char rk[8192];
    row_key_sql(rk, sizeof rk, k, ipv6);
    EXEC(db,
         "INSERT INTO requests (date, node_id, domain_name, member_name, network_asn, "
         "network_name, country_code, country_name, is_ipv6, row_key, hits) VALUES "
         "('2025-01-31', '%s', '%s', '%s', '%s', '%s', '%s', '%s', %d, %s, %lld) "
         "ON DUPLICATE KEY UPDATE hits = hits + VALUES(hits)",
         k->v[0], k->v[1], k->v[2], k->v[3], k->v[4], k->v[5], k->v[6], ipv6, rk, hits);
}

static void upsert_hits(MYSQL *db, int ipv6, int hits)
{
    upsert_row(db, &KEY_SP, ipv6, hits);
}

static void test_requests_upsert(void **state)
{
    test_ctx *t = *state;
    MYSQL *db = t->g->db;
    migrate_ok(db, SQL_DIR, t->g->newest);

    upsert_hits(db, 0, 3);
    upsert_hits(db, 0, 4);
    upsert_hits(db, 1, 5); /* another key: IPv6 */
    assert_int_equal(query_int(db, "SELECT COUNT(*) FROM requests"), 2);
    assert_int_equal(query_int(db, "SELECT hits FROM requests WHERE is_ipv6 = 0"), 7);
    assert_int_equal(query_int(db, "SELECT hits FROM requests WHERE is_ipv6 = 1"), 5);
    /* Case and accents are different keys (binary collation). */
    req_key lower = KEY_SP;
    lower.v[2] = "stake plus";
    upsert_row(db, &lower, 0, 1);
    assert_int_equal(query_int(db, "SELECT COUNT(*) FROM requests"), 3);
    /* Trailing spaces compare equal, as utf8mb4_bin (PAD SPACE) compared the old key. */
    req_key spaced = KEY_SP;
    spaced.v[2] = "Stake Plus  ";
    upsert_row(db, &spaced, 0, 1);
    assert_int_equal(query_int(db, "SELECT COUNT(*) FROM requests"), 3);
    assert_int_equal(query_int(db, "SELECT hits FROM requests WHERE is_ipv6 = 0 AND "
                                   "member_name = 'Stake Plus'"),
                     8);
    /* A writer that does not give row_key is refused (no key that never matches). */
    assert_int_not_equal(ibp_testenv_mysql_exec(db, "INSERT INTO requests (date, hits) VALUES "
                                                    "('2025-02-01', 1)"),
                         0);
    /* Hits beyond 32 bits fit. */
    EXEC(db, "UPDATE requests SET hits = hits + 5000000000 WHERE is_ipv6 = 1");
    assert_int_equal(query_int(db, "SELECT hits FROM requests WHERE is_ipv6 = 1"), 5000000005LL);
}

static int insert_open_event(MYSQL *db, const char *event_id)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO member_events (check_type, check_name, member_name, domain_name, "
             "endpoint, status, is_ipv6, start_time, error, event_id) VALUES ('endpoint', 'wss', "
             "'Stake Plus', 'rpc.ibp.network', 'wss://rpc.ibp.network/polkadot', 0, 1, "
             "'2025-01-31 10:00:00.123', 'timeout', '%s')",
             event_id);
    return mysql_query(db, sql) == 0 ? 0 : (int)mysql_errno(db);
}

static void test_member_events_open_key(void **state)
{
    test_ctx *t = *state;
    MYSQL *db = t->g->db;
    migrate_ok(db, SQL_DIR, t->g->newest);

    assert_int_equal(insert_open_event(db, "ev-1"), 0);
    /* A second open event for the same key is refused by the unique open_key. */
    int e = insert_open_event(db, "ev-2");
    if (e != ER_DUP_ENTRY)
        fail_msg("second open event for one key: MariaDB error %d, want %d (ER_DUP_ENTRY)", e,
                 ER_DUP_ENTRY);
    /* Closing it (found through open_key) allows the next one. */
    EXEC(db, "UPDATE member_events SET end_time = '2025-01-31 10:05:00', end_event_id = 'ev-3' "
             "WHERE open_key = UNHEX(SHA2(CONCAT(LENGTH('endpoint'), ':', 'endpoint', "
             "LENGTH('wss'), ':', 'wss', LENGTH('Stake Plus'), ':', 'Stake Plus', "
             "LENGTH('rpc.ibp.network'), ':', 'rpc.ibp.network', "
             "LENGTH('wss://rpc.ibp.network/polkadot'), ':', 'wss://rpc.ibp.network/polkadot', "
             "':', 1), 256))");
    assert_int_equal(mysql_affected_rows(db), 1);
    assert_int_equal(insert_open_event(db, "ev-4"), 0);
    assert_int_equal(query_int(db, "SELECT COUNT(*) FROM member_events"), 2);
    assert_int_equal(query_int(db, "SELECT COUNT(*) FROM member_events WHERE end_time IS NULL"), 1);
    /* The IPv4 twin of the key is another key. */
    EXEC(db, "INSERT INTO member_events (check_type, check_name, member_name, domain_name, "
             "endpoint, is_ipv6, start_time) VALUES ('endpoint', 'wss', 'Stake Plus', "
             "'rpc.ibp.network', 'wss://rpc.ibp.network/polkadot', 0, '2025-01-31 10:00:00')");
    /* An event id is recorded once. */
    EXEC(db, "UPDATE member_events SET end_time = NOW(3) WHERE event_id = 'ev-4'");
    e = insert_open_event(db, "ev-4");
    if (e != ER_DUP_ENTRY)
        fail_msg("reusing event_id ev-4: MariaDB error %d, want %d (ER_DUP_ENTRY)", e,
                 ER_DUP_ENTRY);
}

static void test_migrate_twice_is_noop(void **state)
{
    test_ctx *t = *state;
    MYSQL *db = t->g->db;
    migrate_ok(db, SQL_DIR, t->g->newest);
    upsert_hits(db, 0, 9);
    char applied[64];
    query_string(db, applied, sizeof applied,
                 "SELECT applied_at FROM schema_version WHERE version = 1");
    migrate_ok(db, SQL_DIR, t->g->newest);
    char again[64];
    query_string(db, again, sizeof again,
                 "SELECT applied_at FROM schema_version WHERE version = 1");
    assert_string_equal(again, applied);
    assert_int_equal(query_int(db, "SELECT COUNT(*) FROM schema_version"), t->g->newest);
    assert_int_equal(query_int(db, "SELECT hits FROM requests"), 9);
}

static void test_refuses_newer_database(void **state)
{
    test_ctx *t = *state;
    MYSQL *db = t->g->db;
    ibp_err err;
    int version = -1;
    migrate_ok(db, SQL_DIR, t->g->newest);
    int future = t->g->newest + 1;
    EXEC(db, "INSERT INTO schema_version (version, name) VALUES (%d, 'from_the_future.sql')",
         future);

    ibp_err_clear(&err);
    ibp_status st = ibp_schema_migrate(db, SQL_DIR, &version, &err);
    printf("migrate against version %d: %s: %s\n", future, ibp_status_name(st), err.msg);
    if (st != IBP_E_DB)
        fail_msg("migrate against a newer database: got %s, want IBP_E_DB", ibp_status_name(st));
    assert_int_equal(version, -1); /* out-parameter untouched on failure */
    char want[64];
    snprintf(want, sizeof want, "schema version %d, newer", future);
    if (strstr(err.msg, want) == NULL)
        fail_msg("error message '%s' does not say '%s'", err.msg, want);
    assert_int_equal(ibp_schema_version(db, &version, &err), IBP_OK);
    assert_int_equal(version, future);
}

static void test_refuses_foreign_schema(void **state)
{
    test_ctx *t = *state;
    MYSQL *db = t->g->db;
    ibp_err err;
    int version = -1;
    /* The Go seed's requests table, without our schema_version. */
    EXEC(db, "CREATE TABLE requests (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, "
             "date DATE NULL, domain_name VARCHAR(128) NULL, hits INT UNSIGNED NULL)");
    ibp_err_clear(&err);
    ibp_status st = ibp_schema_migrate(db, SQL_DIR, &version, &err);
    printf("migrate over a foreign schema: %s: %s\n", ibp_status_name(st), err.msg);
    assert_int_equal(st, IBP_E_DB);
    if (strstr(err.msg, "requests") == NULL || strstr(err.msg, "no schema_version") == NULL)
        fail_msg("error message '%s' does not name the table and the missing schema_version",
                 err.msg);
    assert_int_equal(query_int(db, "SELECT COUNT(*) FROM information_schema.TABLES WHERE "
                                   "TABLE_SCHEMA = DATABASE()"),
                     1); /* nothing was created */
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        fail_msg("cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* Reads a migration of deploy/sql into dir (copies, so the test never touches the originals). */
static void copy_migration(const char *dir, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", SQL_DIR, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot read %s", path);
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    write_file(dir, name, text);
}

/* CHARACTER_MAXIMUM_LENGTH of a column. */
static long long column_chars(MYSQL *db, const char *table, const char *column)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS WHERE "
             "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '%s' AND COLUMN_NAME = '%s'",
             table, column);
    return query_int(db, sql);
}

/* A database at 002 with rows in it upgrades to 003: the rows keep their keys. */
static void test_upgrade_from_002(void **state)
{
    test_ctx *t = *state;
    MYSQL *db = t->g->db;
    assert_int_equal(ibp_testenv_mkdtemp(t->tmpdir, sizeof t->tmpdir), 0);
    copy_migration(t->tmpdir, "001_initial.sql");
    copy_migration(t->tmpdir, "002_persist_dedup.sql");
    migrate_ok(db, t->tmpdir, 2);
    /* Rows as a 002 writer wrote them (no row_key). */
    for (int v6 = 0; v6 < 2; v6++)
        EXEC(db,
             "INSERT INTO requests (date, node_id, domain_name, member_name, network_asn, "
             "network_name, country_code, country_name, is_ipv6, hits) VALUES ('2025-01-31', "
             "'%s', '%s', '%s', '%s', '%s', '%s', '%s', %d, %d)",
             KEY_SP.v[0], KEY_SP.v[1], KEY_SP.v[2], KEY_SP.v[3], KEY_SP.v[4], KEY_SP.v[5],
             KEY_SP.v[6], v6, 7 + v6);
    assert_int_equal(insert_open_event(db, "ev-open"), 0);
    EXEC(db, "INSERT INTO member_events (check_type, check_name, member_name, start_time, "
             "end_time, event_id) VALUES ('site', 'ping', 'Amforc', '2025-01-30 10:00:00', "
             "'2025-01-30 11:00:00', 'ev-closed')");

    for (int round = 0; round < 2; round++) {
        /* The second round runs 003 again, as after a crash before its version row. */
        if (round == 1)
            EXEC(db, "DELETE FROM schema_version WHERE version = 3");
        migrate_ok(db, SQL_DIR, t->g->newest);
        assert_index(db, "requests", "PRIMARY", "date,row_key", true);
        char rk[8192], sql[8400];
        row_key_sql(rk, sizeof rk, NULL, 0);
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM requests WHERE row_key = %s", rk);
        assert_int_equal(query_int(db, sql), 2);
        assert_int_equal(query_int(db, "SELECT SUM(hits) FROM requests"), 15);
        assert_int_equal(query_int(db, "SELECT COUNT(*) FROM member_events"), 2);
    }
    /* The old rows take new hits (persist's key equals the migration's). */
    upsert_hits(db, 0, 3);
    upsert_hits(db, 1, 3);
    assert_int_equal(query_int(db, "SELECT COUNT(*) FROM requests"), 2);
    assert_int_equal(query_int(db, "SELECT SUM(hits) FROM requests"), 21);
    /* The open event is still the one open event of its key. */
    int e = insert_open_event(db, "ev-new");
    if (e != ER_DUP_ENTRY)
        fail_msg("second open event after the upgrade: MariaDB error %d, want %d", e, ER_DUP_ENTRY);

    /* Every column of a capped value holds the cap (ibp/types.h, in characters >= bytes). */
    assert_int_equal(column_chars(db, "member_events", "check_name"), 255);
    assert_int_equal(column_chars(db, "member_events", "member_name"), 255);
    assert_int_equal(column_chars(db, "member_events", "domain_name"), 253);
    assert_int_equal(column_chars(db, "member_events", "endpoint"), 2048);
    assert_int_equal(column_chars(db, "member_events", "event_id"), 128);
    assert_int_equal(column_chars(db, "requests", "member_name"), 255);
    assert_int_equal(column_chars(db, "requests", "domain_name"), 253);
    assert_int_equal(column_chars(db, "requests", "node_id"), 64);
    assert_int_equal(column_chars(db, "persist_hit_flushes", "node_id"), 64);
    assert_int_equal(column_chars(db, "persist_event_ids", "event_id"), 128);
    /* 255 characters of 4 bytes fit too (utf8mb4), in a row and in idx_member_time. */
    char member[255 * 4 + 1];
    for (int i = 0; i < 255; i++)
        memcpy(member + 4 * i, "\xf0\x9f\x98\x80", 4);
    member[255 * 4] = '\0';
    req_key wide = KEY_SP;
    wide.v[2] = member;
    upsert_row(db, &wide, 0, 1);
    EXEC(db,
         "INSERT INTO member_events (check_type, check_name, member_name, endpoint, start_time) "
         "VALUES ('endpoint', '%s', '%s', REPEAT('u', 2048), '2025-01-31 12:00:00')",
         member, member);
    assert_int_equal(query_int(db, "SELECT MAX(CHAR_LENGTH(member_name)) FROM member_events"), 255);
}

static void test_statement_splitting(void **state)
{
    test_ctx *t = *state;
    MYSQL *db = t->g->db;
    assert_int_equal(ibp_testenv_mkdtemp(t->tmpdir, sizeof t->tmpdir), 0);
    write_file(t->tmpdir, "001_base.sql",
               "-- a comment; with a semicolon and an apostrophe's quote\n"
               "CREATE TABLE IF NOT EXISTS schema_version (version INT UNSIGNED NOT NULL PRIMARY "
               "KEY, name VARCHAR(255) NOT NULL DEFAULT '', applied_at DATETIME(3) NOT NULL "
               "DEFAULT CURRENT_TIMESTAMP(3));\n"
               "# hash comment ; 'not a string\n"
               "CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY, s VARCHAR(64) NOT NULL);\n"
               "/* block ; comment\n spanning lines */\n"
               "INSERT INTO t VALUES (1, 'semi;colon'), (2, 'it''s'), (3, 'back\\\\slash\\'q'),\n"
               "  (4, \"dq;\"), (5, '--not a comment');\n"
               "INSERT INTO `t` VALUES (6, /*!40101 'exec' */ 'x');\n"
               "-- trailing comment without newline");
    write_file(t->tmpdir, "002_more.sql",
               "ALTER TABLE t ADD COLUMN IF NOT EXISTS n INT NOT NULL DEFAULT 7;\n"
               "UPDATE t SET n = id * 10 WHERE id > 4\n"); /* no final ';' */
    write_file(t->tmpdir, "README.md", "not a migration\n");
    migrate_ok(db, t->tmpdir, 2);

    char s[128];
    assert_int_equal(query_int(db, "SELECT COUNT(*) FROM t"), 5 + 1);
    query_string(db, s, sizeof s, "SELECT s FROM t WHERE id = 1");
    assert_string_equal(s, "semi;colon");
    query_string(db, s, sizeof s, "SELECT s FROM t WHERE id = 2");
    assert_string_equal(s, "it's");
    query_string(db, s, sizeof s, "SELECT s FROM t WHERE id = 3");
    assert_string_equal(s, "back\\slash'q");
    query_string(db, s, sizeof s, "SELECT s FROM t WHERE id = 4");
    assert_string_equal(s, "dq;");
    query_string(db, s, sizeof s, "SELECT s FROM t WHERE id = 5");
    assert_string_equal(s, "--not a comment");
    assert_int_equal(query_int(db, "SELECT SUM(n) FROM t"), 7 * 4 + 50 + 60);
}

static void test_broken_migrations(void **state)
{
    test_ctx *t = *state;
    MYSQL *db = t->g->db;
    ibp_err err;
    int version = -1;
    ibp_status st;
    assert_int_equal(ibp_testenv_mkdtemp(t->tmpdir, sizeof t->tmpdir), 0);

    /* Empty directory. */
    ibp_err_clear(&err);
    st = ibp_schema_migrate(db, t->tmpdir, &version, &err);
    printf("empty dir: %s: %s\n", ibp_status_name(st), err.msg);
    assert_int_equal(st, IBP_E_CONFIG);

    /* Missing directory. */
    char missing[1100];
    snprintf(missing, sizeof missing, "%s/nope", t->tmpdir);
    ibp_err_clear(&err);
    st = ibp_schema_migrate(db, missing, &version, &err);
    printf("missing dir: %s: %s\n", ibp_status_name(st), err.msg);
    assert_int_equal(st, IBP_E_IO);

    /* A failing statement: IBP_E_DB naming file and line; not recorded. */
    write_file(t->tmpdir, "001_base.sql",
               "CREATE TABLE IF NOT EXISTS schema_version (version INT UNSIGNED NOT NULL PRIMARY "
               "KEY, name VARCHAR(255) NOT NULL DEFAULT '', applied_at DATETIME(3) NOT NULL "
               "DEFAULT CURRENT_TIMESTAMP(3));\n");
    write_file(t->tmpdir, "002_bad.sql",
               "CREATE TABLE IF NOT EXISTS a (id INT);\n\n"
               "SELEKT nonsense;\n");
    ibp_err_clear(&err);
    st = ibp_schema_migrate(db, t->tmpdir, &version, &err);
    printf("failing statement: %s: %s\n", ibp_status_name(st), err.msg);
    assert_int_equal(st, IBP_E_DB);
    if (strstr(err.msg, "002_bad.sql line 3") == NULL || strstr(err.msg, "1064") == NULL)
        fail_msg("error message '%s' does not name '002_bad.sql line 3' and error 1064", err.msg);
    int v = -1;
    assert_int_equal(ibp_schema_version(db, &v, &err), IBP_OK);
    assert_int_equal(v, 1); /* 001 recorded, 002 not */

    /* Fixing the file and running again completes (re-runnable files). */
    write_file(t->tmpdir, "002_bad.sql", "CREATE TABLE IF NOT EXISTS a (id INT);\n");
    migrate_ok(db, t->tmpdir, 2);

    /* A gap in the versions. */
    write_file(t->tmpdir, "004_gap.sql", "SELECT 1;\n");
    ibp_err_clear(&err);
    st = ibp_schema_migrate(db, t->tmpdir, &version, &err);
    printf("gap: %s: %s\n", ibp_status_name(st), err.msg);
    assert_int_equal(st, IBP_E_CONFIG);
    assert_non_null(strstr(err.msg, "migration 3 is missing"));

    /* A malformed name. */
    write_file(t->tmpdir, "003-dash.sql", "SELECT 1;\n");
    ibp_err_clear(&err);
    st = ibp_schema_migrate(db, t->tmpdir, &version, &err);
    printf("bad name: %s: %s\n", ibp_status_name(st), err.msg);
    assert_int_equal(st, IBP_E_CONFIG);
    assert_non_null(strstr(err.msg, "003-dash.sql"));
}

typedef struct racer {
    MYSQL *db;
    ibp_status st;
    int version;
    ibp_err err;
} racer;

static void *race_migrate(void *arg)
{
    racer *r = arg;
    ibp_err_clear(&r->err);
    r->st = ibp_schema_migrate(r->db, SQL_DIR, &r->version, &r->err);
    return NULL;
}

static void test_concurrent_migrations(void **state)
{
    test_ctx *t = *state;
    enum { N = 4 };
    racer r[N];
    pthread_t th[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        r[i].db = ibp_testenv_mysql_connect(&t->g->env, t->dbname);
        assert_non_null(r[i].db);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race_migrate, &r[i]), 0);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) {
        mysql_close(r[i].db);
        if (r[i].st != IBP_OK)
            fail_msg("racer %d: %s: %s", i, ibp_status_name(r[i].st), r[i].err.msg);
        assert_int_equal(r[i].version, t->g->newest);
    }
    /* Each file applied (and recorded) once. */
    assert_int_equal(query_int(t->g->db, "SELECT COUNT(*) FROM schema_version"), t->g->newest);
}

static void test_connection_killed(void **state)
{
    test_ctx *t = *state;
    ibp_err err;
    int version = -1;
    /* A second connection, killed by the server before it migrates. */
    MYSQL *victim = ibp_testenv_mysql_connect(&t->g->env, t->dbname);
    assert_non_null(victim);
    long long id = query_int(victim, "SELECT CONNECTION_ID()");
    EXEC(t->g->db, "KILL CONNECTION %lld", id);

    ibp_err_clear(&err);
    ibp_status st = ibp_schema_migrate(victim, SQL_DIR, &version, &err);
    printf("migrate on a killed connection: %s: %s\n", ibp_status_name(st), err.msg);
    mysql_close(victim);
    if (st != IBP_E_DB)
        fail_msg("migrate on a killed connection: got %s, want IBP_E_DB", ibp_status_name(st));
    assert_int_equal(version, -1);
    if (strstr(err.msg, "MariaDB 20") == NULL && strstr(err.msg, "MariaDB 1927") == NULL)
        fail_msg("error message '%s' does not carry the connection error code", err.msg);
    /* Nothing was created. */
    assert_int_equal(query_int(t->g->db, "SELECT COUNT(*) FROM information_schema.TABLES WHERE "
                                         "TABLE_SCHEMA = DATABASE()"),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_database, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_requests_upsert, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_member_events_open_key, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_migrate_twice_is_noop, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_from_002, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_refuses_newer_database, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_refuses_foreign_schema, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_statement_splitting, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_broken_migrations, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_migrations, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_connection_killed, test_setup, test_teardown),
    };
    return cmocka_run_group_tests_name("mariadb_schema", tests, group_setup, group_teardown);
}
