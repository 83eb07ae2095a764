/* MariaDB connections of persist; see ibp/persist_db.h. */
#include "ibp/persist_db.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/atomic_file.h"

void ibp_persist_db_opts_init(ibp_persist_db_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->host = "127.0.0.1";
    opts->port = 3306;
    opts->user = "ibp";
    opts->connect_timeout_s = 5;
    opts->rw_timeout_s = 60;
    opts->lock_wait_timeout_s = 20;
}

void ibp_persist_db_password_free(char *password)
{
    if (password == NULL)
        return;
    /* volatile so the wipe is not optimised away as a dead store */
    volatile char *p = password;
    while (*p)
        *p++ = '\0';
    free(password);
}

ibp_status ibp_persist_db_opts_from_config(const ibp_config_mysql *cfg, ibp_persist_db_opts *opts,
                                           char **password_out, ibp_err *err)
{
    if (cfg == NULL || opts == NULL || password_out == NULL)
        return ibp_err_set(err, IBP_E_INVAL, "persist: db options: NULL argument");
    ibp_persist_db_opts_init(opts);
    *password_out = NULL;
    if (cfg->host && *cfg->host)
        opts->host = cfg->host;
    if (cfg->port > 0)
        opts->port = (unsigned)cfg->port;
    if (cfg->socket && *cfg->socket)
        opts->socket = cfg->socket;
    if (cfg->user && *cfg->user)
        opts->user = cfg->user;
    opts->database = cfg->database;
    if (cfg->password_file && *cfg->password_file) {
        char *pw = NULL;
        size_t len = 0;
        ibp_err inner;
        ibp_err_clear(&inner);
        ibp_status st = ibp_file_read_all(cfg->password_file, 4096, &pw, &len, &inner);
        if (st != IBP_OK)
            return ibp_err_set(err, IBP_E_IO, "persist: mysql.password_file %s: %s",
                               cfg->password_file, ibp_strerror(st));
        /* One line: the password without its line end. */
        while (len > 0 && (pw[len - 1] == '\n' || pw[len - 1] == '\r'))
            pw[--len] = '\0';
        *password_out = pw;
        opts->password = pw;
    }
    return IBP_OK;
}

static pthread_once_t library_once = PTHREAD_ONCE_INIT;

static void library_init_once(void)
{
    /* nats.c before libmariadb: nats.c's exit handler frees OpenSSL's
     * compression list, which OpenSSL's own exit handler frees again unless it
     * runs first (exit handlers run last registered first, and OpenSSL
     * registers its handler when it is first initialised, then by nats.c). A
     * failure here only loses that order; nats.c reports it when next used. */
    (void)nats_Open(-1);
    mysql_library_init(0, NULL, NULL);
}

void ibp_persist_db_library_init(void)
{
    pthread_once(&library_once, library_init_once);
}

static ibp_status vdb_error(ibp_err *err, unsigned code, const char *state, const char *msg,
                            const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static ibp_status vdb_error(ibp_err *err, unsigned code, const char *state, const char *msg,
                            const char *fmt, va_list ap)
{
    char what[256];
    int n = vsnprintf(what, sizeof what, fmt, ap);
    if (n < 0)
        what[0] = '\0';
    return ibp_err_set(err, IBP_E_DB, "%s: MariaDB %u (%s): %s", what, code, state ? state : "",
                       msg ? msg : "");
}

ibp_status ibp_persist_db_error(ibp_err *err, MYSQL *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ibp_status st = vdb_error(err, mysql_errno(db), mysql_sqlstate(db), mysql_error(db), fmt, ap);
    va_end(ap);
    return st;
}

ibp_status ibp_persist_db_stmt_error(ibp_err *err, MYSQL_STMT *stmt, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ibp_status st = vdb_error(err, mysql_stmt_errno(stmt), mysql_stmt_sqlstate(stmt),
                              mysql_stmt_error(stmt), fmt, ap);
    va_end(ap);
    return st;
}

bool ibp_persist_db_error_is_data(unsigned code)
{
    switch (code) {
    case 1048: /* ER_BAD_NULL_ERROR: column cannot be null */
    case 1062: /* ER_DUP_ENTRY: a unique key says it is there already */
    case 1264: /* ER_WARN_DATA_OUT_OF_RANGE */
    case 1265: /* WARN_DATA_TRUNCATED */
    case 1292: /* ER_TRUNCATED_WRONG_VALUE: incorrect date/datetime */
    case 1300: /* ER_INVALID_CHARACTER_STRING */
    case 1366: /* ER_TRUNCATED_WRONG_VALUE_FOR_FIELD: incorrect string value */
    case 1367: /* ER_ILLEGAL_VALUE_FOR_TYPE */
    case 1406: /* ER_DATA_TOO_LONG */
    case 1411: /* ER_WRONG_VALUE_FOR_TYPE */
    case 1690: /* ER_DATA_OUT_OF_RANGE: BIGINT UNSIGNED overflow */
    case 3140: /* ER_INVALID_JSON_TEXT (MySQL) */
    case 4025: /* ER_CONSTRAINT_FAILED: CHECK (JSON_VALID) of a JSON column */
        return true;
    default:
        return false;
    }
}

ibp_status ibp_persist_db_exec(MYSQL *db, const char *sql, const char *what, ibp_err *err)
{
    if (mysql_real_query(db, sql, (unsigned long)strlen(sql)) != 0)
        return ibp_persist_db_error(err, db, "%s", what);
    /* Drain whatever the statement returned so the connection stays usable. */
    do {
        MYSQL_RES *res = mysql_store_result(db);
        if (res == NULL && mysql_field_count(db) != 0)
            return ibp_persist_db_error(err, db, "%s: reading result", what);
        mysql_free_result(res);
    } while (mysql_next_result(db) == 0);
    return IBP_OK;
}

ibp_status ibp_persist_db_query_u64(MYSQL *db, const char *sql, uint64_t *out, bool *found,
                                    const char *what, ibp_err *err)
{
    if (mysql_real_query(db, sql, (unsigned long)strlen(sql)) != 0)
        return ibp_persist_db_error(err, db, "%s", what);
    MYSQL_RES *res = mysql_store_result(db);
    if (res == NULL)
        return ibp_persist_db_error(err, db, "%s: no result", what);
    MYSQL_ROW row = mysql_fetch_row(res);
    uint64_t v = 0;
    bool got = false;
    if (row != NULL && row[0] != NULL) {
        char *end = NULL;
        v = strtoull(row[0], &end, 10);
        if (end == row[0] || *end != '\0') {
            ibp_status st =
                ibp_err_set(err, IBP_E_DB, "%s: '%.40s' is not an unsigned integer", what, row[0]);
            mysql_free_result(res);
            return st;
        }
        got = true;
    }
    mysql_free_result(res);
    *out = v;
    if (found)
        *found = got;
    return IBP_OK;
}

static bool database_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '$'))
            return false;
    }
    return true;
}

ibp_status ibp_persist_db_connect(const ibp_persist_db_opts *opts, const char *database,
                                  bool create_database, MYSQL **out, ibp_err *err)
{
    char sql[256];
    ibp_status st = IBP_OK;
    const char *dbname = database ? database : opts->database;
    if (!database_name_ok(dbname))
        return ibp_err_set(err, IBP_E_INVAL,
                           "persist: database name '%.80s' is not 1-64 characters of "
                           "A-Z, a-z, 0-9, '_' and '$'",
                           dbname ? dbname : "(none)");
    ibp_persist_db_library_init();
    MYSQL *db = mysql_init(NULL);
    if (db == NULL)
        return ibp_err_set(err, IBP_E_NOMEM, "persist: mysql_init: out of memory");
    unsigned ct = opts->connect_timeout_s ? opts->connect_timeout_s : 5;
    unsigned rw = opts->rw_timeout_s ? opts->rw_timeout_s : 60;
    my_bool reconnect = 0;
    mysql_optionsv(db, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
    mysql_optionsv(db, MYSQL_OPT_READ_TIMEOUT, &rw);
    mysql_optionsv(db, MYSQL_OPT_WRITE_TIMEOUT, &rw);
    mysql_optionsv(db, MYSQL_OPT_RECONNECT, &reconnect);
    mysql_optionsv(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    const char *host = opts->socket ? "localhost" : (opts->host ? opts->host : "127.0.0.1");
    if (mysql_real_connect(db, host, opts->user, opts->password, NULL, opts->port, opts->socket,
                           0) == NULL) {
        st = ibp_persist_db_error(err, db, "persist: connect to MariaDB %s%s%u as %s",
                                  opts->socket ? opts->socket : host, opts->socket ? "" : ":",
                                  opts->socket ? 0u : opts->port, opts->user ? opts->user : "");
        goto fail;
    }
    if (create_database) {
        snprintf(sql, sizeof sql,
                 "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                 dbname);
        if ((st = ibp_persist_db_exec(db, sql, "persist: create database", err)) != IBP_OK)
            goto fail;
    }
    if (mysql_select_db(db, dbname) != 0) {
        st = ibp_persist_db_error(err, db, "persist: select database %s", dbname);
        goto fail;
    }
    unsigned lw = opts->lock_wait_timeout_s ? opts->lock_wait_timeout_s : 20;
    snprintf(sql, sizeof sql,
             "SET SESSION time_zone = '+00:00', "
             "SESSION sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,"
             "NO_ENGINE_SUBSTITUTION', "
             "SESSION innodb_lock_wait_timeout = %u",
             lw);
    if ((st = ibp_persist_db_exec(db, sql, "persist: session settings", err)) != IBP_OK)
        goto fail;
    /* The statement form works on MariaDB and MySQL alike (the variable's
     * name differs between versions). */
    if ((st = ibp_persist_db_exec(db, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
                                  "persist: isolation level", err)) != IBP_OK)
        goto fail;
    if (mysql_autocommit(db, 0) != 0) {
        st = ibp_persist_db_error(err, db, "persist: autocommit off");
        goto fail;
    }
    *out = db;
    return IBP_OK;
fail:
    mysql_close(db);
    return st;
}
