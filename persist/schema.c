/*
 * Schema migrations: see ibp/schema.h for the contract and
 * deploy/sql/README.md for the files.
 */
#include "ibp/schema.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ibp/atomic_file.h"
#include "ibp/vec.h"

/* The configured install directory of the migration files (the last resort). */
#ifndef IBP_SQL_DIR
#define IBP_SQL_DIR "/usr/local/share/ibp/sql"
#endif
/* The same directory relative to the install's bin directory. */
#ifndef IBP_SQL_REL_FROM_BIN
#define IBP_SQL_REL_FROM_BIN "../share/ibp/sql"
#endif

/* Upper bounds that keep a broken directory from exhausting memory. */
#define MAX_MIGRATIONS 10000
#define MAX_FILE_BYTES (16L * 1024 * 1024)

typedef struct migration {
    int version;
    char name[256]; /* file name, e.g. "001_initial.sql" */
    char path[4096];
} migration;

typedef struct statement {
    char *sql;
    int line; /* line of the file where the statement starts */
} statement;

typedef struct statement_list {
    statement *items;
    size_t count, cap;
} statement_list;

static char default_dir[PATH_MAX] = IBP_SQL_DIR;
static pthread_once_t default_dir_once = PTHREAD_ONCE_INIT;

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * A program running from the build tree (IBP_BUILD_DIR) reads the source
 * tree's files (IBP_SQL_SOURCE_DIR); an installed one those of its own
 * prefix, found from /proc/self/exe (<prefix>/bin/X -> <prefix>/share/ibp/sql),
 * so an install moved with `cmake --install --prefix` still finds them;
 * otherwise the configured IBP_SQL_DIR.
 */
static void find_default_dir(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return;
    self[n] = '\0';
#if defined(IBP_BUILD_DIR) && defined(IBP_SQL_SOURCE_DIR)
    size_t blen = strlen(IBP_BUILD_DIR);
    if (strncmp(self, IBP_BUILD_DIR, blen) == 0 && self[blen] == '/' &&
        is_dir(IBP_SQL_SOURCE_DIR)) {
        snprintf(default_dir, sizeof default_dir, "%s", IBP_SQL_SOURCE_DIR);
        return;
    }
#endif
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return;
    *slash = '\0';
    char candidate[PATH_MAX + sizeof IBP_SQL_REL_FROM_BIN + 1], real[PATH_MAX];
    snprintf(candidate, sizeof candidate, "%s/%s", self, IBP_SQL_REL_FROM_BIN);
    if (is_dir(candidate) && realpath(candidate, real) != NULL)
        snprintf(default_dir, sizeof default_dir, "%s", real);
}

const char *ibp_schema_default_dir(void)
{
    pthread_once(&default_dir_once, find_default_dir);
    return default_dir;
}

/* ---- database helpers ------------------------------------------------- */

static ibp_status db_fail(MYSQL *db, ibp_err *err, const char *what)
{
    unsigned code = mysql_errno(db);
    /* Client-side codes (2000-2999) mean the connection, not the SQL. */
    bool client = code >= 2000 && code < 3000;
    return ibp_err_set(err, IBP_E_DB, "%s: MariaDB %u (%s): %s%s", what, code, mysql_sqlstate(db),
                       mysql_error(db),
                       client ? " (no working connection to the database server)" : "");
}

/* Runs a statement and discards any result set. */
static ibp_status db_exec(MYSQL *db, const char *sql, size_t len, ibp_err *err, const char *what)
{
    if (mysql_real_query(db, sql, (unsigned long)len) != 0)
        return db_fail(db, err, what);
    MYSQL_RES *res = mysql_store_result(db);
    if (res == NULL && mysql_field_count(db) != 0)
        return db_fail(db, err, what);
    mysql_free_result(res);
    return IBP_OK;
}

/*
 * Runs a query returning one row of one column into buf (NUL-terminated).
 * *is_null tells a NULL value apart from "".
 */
static ibp_status db_query_value(MYSQL *db, const char *sql, char *buf, size_t cap, bool *is_null,
                                 ibp_err *err, const char *what)
{
    ibp_status st = IBP_OK;
    if (mysql_real_query(db, sql, (unsigned long)strlen(sql)) != 0)
        return db_fail(db, err, what);
    MYSQL_RES *res = mysql_store_result(db);
    if (res == NULL)
        return db_fail(db, err, what);
    MYSQL_ROW row = mysql_fetch_row(res);
    if (row == NULL || mysql_num_fields(res) < 1) {
        st = ibp_err_set(err, IBP_E_DB, "%s: the query returned no row", what);
        goto out;
    }
    *is_null = row[0] == NULL;
    unsigned long *lens = mysql_fetch_lengths(res);
    size_t n = row[0] ? lens[0] : 0;
    if (n >= cap) {
        st = ibp_err_set(err, IBP_E_DB, "%s: value of %zu bytes is longer than expected", what, n);
        goto out;
    }
    if (n > 0)
        memcpy(buf, row[0], n);
    buf[n] = '\0';
out:
    mysql_free_result(res);
    return st;
}

static ibp_status db_query_int(MYSQL *db, const char *sql, long long *out, ibp_err *err,
                               const char *what)
{
    char buf[64];
    bool is_null = false;
    ibp_status st = db_query_value(db, sql, buf, sizeof buf, &is_null, err, what);
    if (st != IBP_OK)
        return st;
    char *end = NULL;
    errno = 0;
    long long v = is_null ? 0 : strtoll(buf, &end, 10);
    if (is_null || errno != 0 || *buf == '\0' || *end != '\0')
        return ibp_err_set(err, IBP_E_DB, "%s: expected an integer, got %s", what,
                           is_null ? "NULL" : buf);
    *out = v;
    return IBP_OK;
}

static ibp_status require_database(MYSQL *db, ibp_err *err)
{
    char name[256];
    bool is_null = false;
    ibp_status st = db_query_value(db, "SELECT DATABASE()", name, sizeof name, &is_null, err,
                                   "schema: find the selected database");
    if (st != IBP_OK)
        return st;
    if (is_null)
        return ibp_err_set(err, IBP_E_DB,
                           "schema: the connection has no database selected (connect with a "
                           "database name or run USE first)");
    return IBP_OK;
}

static ibp_status table_exists(MYSQL *db, const char *table, bool *out, ibp_err *err)
{
    char sql[256];
    long long n = 0;
    /* table is one of our own constant names, never user input. */
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM information_schema.TABLES "
             "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '%s'",
             table);
    ibp_status st = db_query_int(db, sql, &n, err, "schema: look up tables");
    if (st == IBP_OK)
        *out = n > 0;
    return st;
}

ibp_status ibp_schema_version(MYSQL *db, int *version_out, ibp_err *err)
{
    bool exists = false;
    long long v = 0;
    ibp_status st;

    if (db == NULL || version_out == NULL)
        return ibp_err_set(err, IBP_E_INVAL, "schema: version: NULL argument");
    st = require_database(db, err);
    if (st != IBP_OK)
        return st;
    st = table_exists(db, "schema_version", &exists, err);
    if (st != IBP_OK)
        return st;
    if (exists) {
        st = db_query_int(db, "SELECT COALESCE(MAX(version), 0) FROM schema_version", &v, err,
                          "schema: read schema_version");
        if (st != IBP_OK)
            return st;
        if (v < 0 || v > MAX_MIGRATIONS)
            return ibp_err_set(err, IBP_E_DB, "schema: schema_version holds %lld, out of range", v);
    }
    *version_out = (int)v;
    return IBP_OK;
}

/* ---- migration files -------------------------------------------------- */

static int compare_migrations(const void *a, const void *b)
{
    const migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/*
 * "<digits>_<anything>.sql" -> version. Returns 1 for a migration name,
 * 0 for a file that is not one (README.md), -1 for a malformed one that looks
 * like it was meant to be ("1.sql", "002-x.sql", "0_x.sql").
 */
static int parse_migration_name(const char *name, int *version)
{
    size_t len = strlen(name);
    if (len < 4 || strcmp(name + len - 4, ".sql") != 0)
        return 0;
    if (!isdigit((unsigned char)name[0]))
        return 0;
    long v = 0;
    size_t i = 0;
    for (; isdigit((unsigned char)name[i]); i++) {
        v = v * 10 + (name[i] - '0');
        if (v > MAX_MIGRATIONS)
            return -1;
    }
    if (name[i] != '_' || v < 1)
        return -1;
    *version = (int)v;
    return 1;
}

static ibp_status scan_dir(const char *dir, migration **out, size_t *count, ibp_err *err)
{
    DIR *d = opendir(dir);
    migration *list = NULL;
    size_t n = 0, cap = 0;
    ibp_status st = IBP_OK;
    struct dirent *e;

    if (d == NULL)
        return ibp_err_set(err, IBP_E_IO, "schema: open migration directory %s: %s", dir,
                           strerror(errno));
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        int version = 0;
        int r = parse_migration_name(e->d_name, &version);
        if (r == 0)
            continue;
        if (r < 0) {
            st = ibp_err_set(err, IBP_E_CONFIG,
                             "schema: %s/%s: not a migration name (want <version>_<name>.sql, "
                             "version 1..%d)",
                             dir, e->d_name, MAX_MIGRATIONS);
            goto fail;
        }
        migration *nl = ibp_grow(list, &cap, n + 1, sizeof *nl);
        if (nl == NULL) {
            st = ibp_err_set(err, IBP_E_NOMEM, "schema: out of memory listing %s", dir);
            goto fail;
        }
        list = nl;
        migration *m = &list[n];
        m->version = version;
        if (snprintf(m->name, sizeof m->name, "%s", e->d_name) >= (int)sizeof m->name ||
            snprintf(m->path, sizeof m->path, "%s/%s", dir, e->d_name) >= (int)sizeof m->path) {
            st = ibp_err_set(err, IBP_E_CONFIG, "schema: %s/%s: path too long", dir, e->d_name);
            goto fail;
        }
        n++;
        errno = 0;
    }
    if (errno != 0) {
        st = ibp_err_set(err, IBP_E_IO, "schema: read migration directory %s: %s", dir,
                         strerror(errno));
        goto fail;
    }
    if (n == 0) {
        st = ibp_err_set(err, IBP_E_CONFIG, "schema: no migrations (<version>_<name>.sql) in %s",
                         dir);
        goto fail;
    }
    qsort(list, n, sizeof *list, compare_migrations);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && list[i].version == list[i - 1].version) {
            st = ibp_err_set(err, IBP_E_CONFIG, "schema: %s: %s and %s have the same version %d",
                             dir, list[i - 1].name, list[i].name, list[i].version);
            goto fail;
        }
        if (list[i].version != (int)i + 1) {
            st = ibp_err_set(err, IBP_E_CONFIG,
                             "schema: %s: migration %d is missing (next file is %s)", dir,
                             (int)i + 1, list[i].name);
            goto fail;
        }
    }
    closedir(d);
    *out = list;
    *count = n;
    return IBP_OK;
fail:
    closedir(d);
    free(list);
    return st;
}

static ibp_status read_file(const char *path, char **out, ibp_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    ibp_err e;
    ibp_err_clear(&e);
    ibp_status st = ibp_file_read_all(path, (size_t)MAX_FILE_BYTES, &buf, &len, &e);
    if (st == IBP_E_TOO_LARGE)
        return ibp_err_set(err, IBP_E_CONFIG, "schema: %s is larger than %ld bytes", path,
                           MAX_FILE_BYTES);
    if (st != IBP_OK)
        return ibp_err_set(err, st == IBP_E_NOMEM ? st : IBP_E_IO, "schema: %s", e.msg);
    if (strlen(buf) != len) {
        free(buf);
        return ibp_err_set(err, IBP_E_CONFIG, "schema: %s contains a NUL byte", path);
    }
    *out = buf;
    return IBP_OK;
}

/* ---- splitting a file into statements --------------------------------- */

static void statements_free(statement_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i].sql);
    free(l->items);
    l->items = NULL;
    l->count = l->cap = 0;
}

static bool starts_with_word(const char *s, const char *word)
{
    size_t n = strlen(word);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0' || toupper((unsigned char)s[i]) != word[i])
            return false;
    }
    return s[n] == '\0' || isspace((unsigned char)s[n]);
}

/* Appends the statement text in buf[0..len) (trimmed) unless it is empty. */
static ibp_status push_statement(statement_list *l, const char *buf, size_t len, int line,
                                 const char *name, ibp_err *err)
{
    while (len > 0 && isspace((unsigned char)buf[len - 1]))
        len--;
    size_t start = 0;
    while (start < len && isspace((unsigned char)buf[start]))
        start++;
    if (start == len)
        return IBP_OK;
    statement *ni = ibp_grow(l->items, &l->cap, l->count + 1, sizeof *ni);
    if (ni == NULL)
        return ibp_err_set(err, IBP_E_NOMEM, "schema: out of memory parsing %s", name);
    l->items = ni;
    char *sql = malloc(len - start + 1);
    if (sql == NULL)
        return ibp_err_set(err, IBP_E_NOMEM, "schema: out of memory parsing %s", name);
    memcpy(sql, buf + start, len - start);
    sql[len - start] = '\0';
    if (starts_with_word(sql, "DELIMITER")) {
        free(sql);
        return ibp_err_set(err, IBP_E_CONFIG,
                           "schema: %s line %d: DELIMITER is not supported (migrations are plain "
                           "statements ended by ';', without stored routines)",
                           name, line);
    }
    l->items[l->count].sql = sql;
    l->items[l->count].line = line;
    l->count++;
    return IBP_OK;
}

/*
 * Splits SQL text at the semicolons that end statements. Comments ("-- ",
 * "#", and C-style block comments) are dropped, so a file may end in one;
 * quoted strings and identifiers ('...', "...", `...`, with backslash escapes
 * and doubled quotes) and executable comments (block comments opened by a
 * slash, a star and '!') are kept verbatim.
 * Executing statements one by one, instead of sending the file as a
 * multi-statement query, lets an error name the statement and its line.
 */
static ibp_status split_statements(const char *text, const char *name, statement_list *out,
                                   ibp_err *err)
{
    size_t n = strlen(text);
    char *buf = malloc(n + 1); /* a statement is never longer than the file */
    size_t len = 0;
    int line = 1, stmt_line = 0;
    ibp_status st = IBP_OK;
    statement_list l = {0};

    if (buf == NULL)
        return ibp_err_set(err, IBP_E_NOMEM, "schema: out of memory parsing %s", name);
    for (size_t i = 0; i < n;) {
        char c = text[i];
        if (c == '\n')
            line++;
        /* Line comments: "-- " (MariaDB wants a space or control after --) and "#". */
        if ((c == '-' && text[i + 1] == '-' &&
             (text[i + 2] == '\0' || isspace((unsigned char)text[i + 2]) ||
              iscntrl((unsigned char)text[i + 2]))) ||
            c == '#') {
            while (i < n && text[i] != '\n')
                i++;
            continue; /* the newline is handled (and counted) as normal text */
        }
        if (c == '/' && text[i + 1] == '*') {
            bool executable = text[i + 2] == '!' || (text[i + 2] == 'M' && text[i + 3] == '!');
            int start_line = line;
            size_t j = i + 2;
            while (j < n && !(text[j] == '*' && text[j + 1] == '/')) {
                if (text[j] == '\n')
                    line++;
                j++;
            }
            if (j >= n) {
                st = ibp_err_set(err, IBP_E_CONFIG, "schema: %s line %d: unterminated comment",
                                 name, start_line);
                goto fail;
            }
            j += 2;
            if (executable) {
                if (stmt_line == 0)
                    stmt_line = start_line;
                memcpy(buf + len, text + i, j - i);
                len += j - i;
            } else {
                buf[len++] = ' ';
            }
            i = j;
            continue;
        }
        if (c == '\'' || c == '"' || c == '`') {
            int start_line = line;
            size_t j = i + 1;
            for (;;) {
                if (j >= n) {
                    st = ibp_err_set(err, IBP_E_CONFIG, "schema: %s line %d: unterminated %c quote",
                                     name, start_line, c);
                    goto fail;
                }
                if (text[j] == '\n')
                    line++;
                if (c != '`' && text[j] == '\\' && j + 1 < n) {
                    if (text[j + 1] == '\n')
                        line++;
                    j += 2;
                    continue;
                }
                if (text[j] == c) {
                    if (text[j + 1] == c) { /* doubled quote inside the string */
                        j += 2;
                        continue;
                    }
                    j++;
                    break;
                }
                j++;
            }
            if (stmt_line == 0)
                stmt_line = start_line;
            memcpy(buf + len, text + i, j - i);
            len += j - i;
            i = j;
            continue;
        }
        if (c == ';') {
            st = push_statement(&l, buf, len, stmt_line, name, err);
            if (st != IBP_OK)
                goto fail;
            len = 0;
            stmt_line = 0;
            i++;
            continue;
        }
        if (stmt_line == 0 && !isspace((unsigned char)c))
            stmt_line = line;
        buf[len++] = c;
        i++;
    }
    st = push_statement(&l, buf, len, stmt_line, name, err);
    if (st != IBP_OK)
        goto fail;
    free(buf);
    *out = l;
    return IBP_OK;
fail:
    free(buf);
    statements_free(&l);
    return st;
}

/* ---- applying ----------------------------------------------------------- */

/* Shortens a statement for an error message: first line, at most 80 bytes. */
static void statement_excerpt(const char *sql, char *buf, size_t cap)
{
    size_t n = 0;
    while (sql[n] != '\0' && sql[n] != '\n' && n + 1 < cap && n < 80)
        n++;
    memcpy(buf, sql, n);
    buf[n] = '\0';
    if (sql[n] != '\0' && cap > n + 4)
        strcat(buf, "...");
}

static ibp_status apply_migration(MYSQL *db, const migration *m, ibp_err *err)
{
    char *text = NULL;
    statement_list stmts = {0};
    ibp_status st = read_file(m->path, &text, err);
    if (st != IBP_OK)
        return st;
    st = split_statements(text, m->name, &stmts, err);
    if (st != IBP_OK)
        goto out;
    if (stmts.count == 0) {
        st = ibp_err_set(err, IBP_E_CONFIG, "schema: %s holds no statement", m->path);
        goto out;
    }

    st = db_exec(db, "START TRANSACTION", strlen("START TRANSACTION"), err,
                 "schema: START TRANSACTION");
    if (st != IBP_OK)
        goto out;
    for (size_t i = 0; i < stmts.count; i++) {
        const statement *s = &stmts.items[i];
        if (mysql_real_query(db, s->sql, (unsigned long)strlen(s->sql)) != 0) {
            char excerpt[96];
            statement_excerpt(s->sql, excerpt, sizeof excerpt);
            st = ibp_err_set(
                err, IBP_E_DB, "schema: migration %s line %d: MariaDB %u (%s): %s [%s]", m->name,
                s->line, mysql_errno(db), mysql_sqlstate(db), mysql_error(db), excerpt);
            goto rollback;
        }
        MYSQL_RES *res = mysql_store_result(db);
        if (res == NULL && mysql_field_count(db) != 0) {
            st = ibp_err_set(err, IBP_E_DB, "schema: migration %s line %d: reading result: %s",
                             m->name, s->line, mysql_error(db));
            goto rollback;
        }
        mysql_free_result(res);
    }

    /* The version row goes with whatever the file's last implicit commit left open. */
    {
        char escaped[2 * sizeof m->name + 1];
        char sql[sizeof escaped + 128];
        mysql_real_escape_string(db, escaped, m->name, (unsigned long)strlen(m->name));
        int len = snprintf(sql, sizeof sql,
                           "INSERT INTO schema_version (version, name) VALUES (%d, '%s')",
                           m->version, escaped);
        if (mysql_real_query(db, sql, (unsigned long)len) != 0) {
            st = ibp_err_set(err, IBP_E_DB,
                             "schema: record version %d (%s) in schema_version: MariaDB %u (%s): "
                             "%s",
                             m->version, m->name, mysql_errno(db), mysql_sqlstate(db),
                             mysql_error(db));
            goto rollback;
        }
    }
    if (mysql_real_query(db, "COMMIT", 6) != 0) {
        st = ibp_err_set(err, IBP_E_DB, "schema: commit migration %s: MariaDB %u (%s): %s", m->name,
                         mysql_errno(db), mysql_sqlstate(db), mysql_error(db));
        goto rollback;
    }
    goto out;

rollback:
    /* Best effort: the connection may be gone, and DDL cannot be rolled back. */
    mysql_real_query(db, "ROLLBACK", 8);
out:
    statements_free(&stmts);
    free(text);
    return st;
}

/* Takes the per-database migration lock; name receives its name for release. */
static ibp_status take_lock(MYSQL *db, char *name, size_t cap, ibp_err *err)
{
    char hash[64];
    bool is_null = false;
    char sql[256];
    long long got = 0;
    /* Named locks are server-wide and MySQL limits their names to 64 bytes:
     * hash the database name so different databases do not serialise. */
    ibp_status st = db_query_value(db, "SELECT LEFT(SHA2(DATABASE(), 256), 40)", hash, sizeof hash,
                                   &is_null, err, "schema: lock name");
    if (st != IBP_OK)
        return st;
    if (is_null)
        return ibp_err_set(err, IBP_E_DB, "schema: the connection has no database selected");
    snprintf(name, cap, "ibp_mig_%s", hash);
    snprintf(sql, sizeof sql, "SELECT COALESCE(GET_LOCK('%s', %d), -1)", name,
             IBP_SCHEMA_LOCK_TIMEOUT_S);
    st = db_query_int(db, sql, &got, err, "schema: GET_LOCK");
    if (st != IBP_OK)
        return st;
    if (got == 0)
        return ibp_err_set(err, IBP_E_DB,
                           "schema: another process is migrating this database: lock %s not "
                           "free after %d s",
                           name, IBP_SCHEMA_LOCK_TIMEOUT_S);
    if (got != 1)
        return ibp_err_set(err, IBP_E_DB, "schema: GET_LOCK('%s') failed (returned NULL)", name);
    return IBP_OK;
}

static void release_lock(MYSQL *db, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT RELEASE_LOCK('%s')", name);
    if (mysql_real_query(db, sql, (unsigned long)strlen(sql)) == 0) {
        MYSQL_RES *res = mysql_store_result(db);
        mysql_free_result(res);
    }
}

/* Refuses a database that has our tables but no schema_version (the Go seed's). */
static ibp_status check_foreign_schema(MYSQL *db, ibp_err *err)
{
    static const char *const ours[] = {"requests", "member_events", "persist_offsets",
                                       "dead_letters"};
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++) {
        bool exists = false;
        ibp_status st = table_exists(db, ours[i], &exists, err);
        if (st != IBP_OK)
            return st;
        if (exists)
            return ibp_err_set(err, IBP_E_DB,
                               "schema: the database has a table %s but no schema_version: "
                               "not a schema this program made (the Go seed's?); migrate it "
                               "by hand as deploy/sql/README.md describes, or use an empty "
                               "database",
                               ours[i]);
    }
    return IBP_OK;
}

ibp_status ibp_schema_migrate(MYSQL *db, const char *sql_dir, int *version_out, ibp_err *err)
{
    migration *files = NULL;
    size_t count = 0;
    char lock[128] = "";
    int current = 0;
    bool locked = false, has_table = false;
    ibp_status st;

    if (db == NULL)
        return ibp_err_set(err, IBP_E_INVAL, "schema: migrate: NULL connection");
    if (sql_dir == NULL)
        sql_dir = ibp_schema_default_dir();

    /* Read and check every file name before touching the database. */
    st = scan_dir(sql_dir, &files, &count, err);
    if (st != IBP_OK)
        return st;
    int newest = files[count - 1].version;

    st = require_database(db, err);
    if (st != IBP_OK)
        goto out;
    st = take_lock(db, lock, sizeof lock, err);
    if (st != IBP_OK)
        goto out;
    locked = true;

    st = table_exists(db, "schema_version", &has_table, err);
    if (st != IBP_OK)
        goto out;
    if (!has_table) {
        st = check_foreign_schema(db, err);
        if (st != IBP_OK)
            goto out;
    }
    st = ibp_schema_version(db, &current, err);
    if (st != IBP_OK)
        goto out;
    if (current > newest) {
        st = ibp_err_set(err, IBP_E_DB,
                         "schema: the database is at schema version %d, newer than the newest "
                         "migration this program knows (%d, in %s): refusing to use it; run a "
                         "newer ibp build",
                         current, newest, sql_dir);
        goto out;
    }
    for (size_t i = (size_t)current; i < count; i++) {
        st = apply_migration(db, &files[i], err);
        if (st != IBP_OK)
            goto out;
    }
    st = ibp_schema_version(db, &current, err);
    if (st != IBP_OK)
        goto out;
    if (current != newest) {
        st = ibp_err_set(err, IBP_E_DB,
                         "schema: after migrating, schema_version says %d, expected %d", current,
                         newest);
        goto out;
    }
    if (version_out != NULL)
        *version_out = current;
out:
    if (locked)
        release_lock(db, lock);
    free(files);
    return st;
}
