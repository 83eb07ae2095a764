/*
 * MariaDB/MySQL connections of persist: connecting with the session settings
 * persist relies on, reading the password file, and turning MariaDB errors
 * into ibp statuses with context.
 *
 * Session settings of every connection made here (why: deploy/sql/README.md):
 *   character set utf8mb4       strings are UTF-8, 4-byte characters included
 *   time_zone '+00:00'          every DATETIME is UTC; the stream time written
 *                               is never shifted by the server's zone
 *   sql_mode STRICT_ALL_TABLES  a value that does not fit fails the statement
 *                               instead of being truncated (persist validates
 *                               first and dead-letters what cannot fit)
 *   READ COMMITTED              fewer gap locks between the writer and queries
 *   autocommit off              every write is inside an explicit transaction
 *   auto-reconnect off          a silent reconnect would lose the transaction
 *                               state; persist reconnects itself, re-reading
 *                               its offsets from the database
 *
 * Thread safety: a MYSQL handle must be used by one thread at a time (no
 * libmariadb call is thread-safe on one handle). Call
 * ibp_persist_db_library_init() once before threads use libmariadb (it is
 * idempotent and thread-safe itself).
 */
#ifndef IBP_PERSIST_DB_H
#define IBP_PERSIST_DB_H

#include <stdbool.h>

#include <mysql.h>

#include "ibp/node_config.h"
#include "ibp/status.h"

typedef struct ibp_persist_db_opts {
    const char *host;             /* default "127.0.0.1"; ignored when socket is set */
    unsigned port;                /* default 3306 */
    const char *socket;           /* unix socket; NULL: TCP to host:port */
    const char *user;             /* default "ibp" */
    const char *password;         /* NULL: none */
    const char *database;         /* required for ibp_persist_db_connect (may be overridden) */
    unsigned connect_timeout_s;   /* default 5 */
    unsigned rw_timeout_s;        /* read and write timeout of one network wait; default 60 */
    unsigned lock_wait_timeout_s; /* innodb_lock_wait_timeout of the session; default 20 */
} ibp_persist_db_opts;

/* Fills *opts with the defaults above (strings point to static storage). */
void ibp_persist_db_opts_init(ibp_persist_db_opts *opts);

/*
 * Fills *opts from the "mysql.*" keys of a loaded config. The strings of
 * *opts borrow from cfg (keep it alive), except the password, which is read
 * from cfg->password_file (when set) into *password_out (malloc'd; release
 * it with ibp_persist_db_password_free, which wipes it) and pointed to by
 * opts->password. *password_out is NULL when there is no password file.
 * Errors: IBP_E_IO naming the password file (never its content), IBP_E_INVAL.
 */
ibp_status ibp_persist_db_opts_from_config(const ibp_config_mysql *cfg, ibp_persist_db_opts *opts,
                                           char **password_out, ibp_err *err);

/* Wipes and frees a password read by ibp_persist_db_opts_from_config; accepts NULL. */
void ibp_persist_db_password_free(char *password);

/* Initialises libmariadb once (mysql_library_init), after nats.c so that the
 * libraries' OpenSSL exit handlers run in a safe order; safe from any thread. */
void ibp_persist_db_library_init(void);

/*
 * Connects with opts and applies the session settings above. database, when
 * not NULL, replaces opts->database; with create_database the database is
 * created first when missing (CREATE DATABASE IF NOT EXISTS, utf8mb4_bin).
 * *out is set only on success (mysql_close it). Errors: IBP_E_DB with the
 * server, user and MariaDB error (never the password), IBP_E_INVAL (no
 * database, or a database name that is not [A-Za-z0-9_$]{1,64}), IBP_E_NOMEM.
 */
ibp_status ibp_persist_db_connect(const ibp_persist_db_opts *opts, const char *database,
                                  bool create_database, MYSQL **out, ibp_err *err);

/*
 * Runs one statement that returns no rows, draining any result. what names
 * the step in the error ("persist: COMMIT: MariaDB 1205 (HY000): ...").
 * IBP_E_DB on failure (mysql_errno(db) still holds the code).
 */
ibp_status ibp_persist_db_exec(MYSQL *db, const char *sql, const char *what, ibp_err *err);

/*
 * Runs a query returning one row of one integer column into *out (0 for
 * SQL NULL or no row, with *found set to false when found is not NULL).
 */
ibp_status ibp_persist_db_query_u64(MYSQL *db, const char *sql, uint64_t *out, bool *found,
                                    const char *what, ibp_err *err);

/*
 * Sets err to IBP_E_DB with "<what>: MariaDB <errno> (<sqlstate>): <message>"
 * from the connection, and returns IBP_E_DB. what is printf-style.
 */
ibp_status ibp_persist_db_error(ibp_err *err, MYSQL *db, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The same for a prepared statement's error. */
ibp_status ibp_persist_db_stmt_error(ibp_err *err, MYSQL_STMT *stmt, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * True when a MariaDB error number means "this data can never be written"
 * (a value too long, out of range, not valid for its column, not valid
 * JSON, ...): retrying the same rows fails the same way, so persist isolates
 * the message and dead-letters it. Every other error (connection lost, lock
 * wait timeout, deadlock, read-only server, disk full, missing table, ...)
 * is treated as transient: roll back, wait, retry; nothing is dropped.
 */
bool ibp_persist_db_error_is_data(unsigned mysql_errno);

#endif
