/*
 * Database schema migrations (deploy/sql/NNN_name.sql, see its README.md).
 *
 * A migration directory holds files named "<version>_<name>.sql": version a
 * positive decimal number (leading zeros allowed, "001_initial.sql"),
 * versions contiguous from 1. The database records each applied version in
 * the table schema_version; the current version is the largest recorded
 * (0 for an empty database).
 *
 * Transactions: each pending file runs as START TRANSACTION, its statements
 * in order, INSERT INTO schema_version, COMMIT. MariaDB and MySQL commit
 * implicitly before and after every DDL statement, so a file of DDL is not
 * atomic: if the process dies between a statement and the COMMIT, the
 * version is not recorded and the whole file runs again on the next
 * migrate. Migration files must therefore be re-runnable (CREATE TABLE IF
 * NOT EXISTS, ADD COLUMN IF NOT EXISTS, ...). A file of DML only is atomic
 * together with its version row.
 *
 * Concurrency: a migrate holds the named lock GET_LOCK('ibp_mig_<hash of
 * the database name>') for its whole run, so two processes starting at once
 * apply each file once. (Galera does not replicate named locks: run
 * migrations against one node; see deploy/sql/README.md.)
 *
 * The connection must have a default database selected. Calls are not
 * thread-safe on one MYSQL handle (no libmariadb call is).
 */
#ifndef IBP_SCHEMA_H
#define IBP_SCHEMA_H

#include <mysql.h>

#include "ibp/status.h"

/* Seconds ibp_schema_migrate waits for another process's migration. */
#define IBP_SCHEMA_LOCK_TIMEOUT_S 60

/*
 * The directory of migration files this build installs
 * (<prefix>/share/ibp/sql), for programs that are not told another one.
 * Never NULL; static storage.
 */
const char *ibp_schema_default_dir(void);

/*
 * Reads the current schema version of the selected database into *version_out
 * (0 when it has no schema_version table or no rows). Errors: IBP_E_INVAL
 * (NULL db or out), IBP_E_DB (no database selected, query failed; err names
 * the MariaDB error).
 */
ibp_status ibp_schema_version(MYSQL *db, int *version_out, ibp_err *err);

/*
 * Brings the selected database up to the newest migration in sql_dir (NULL:
 * ibp_schema_default_dir()) and stores the resulting version in *version_out
 * (may be NULL). Applying nothing is success.
 *
 * Errors (err says which file, line and MariaDB error where there is one):
 *   IBP_E_CONFIG  the directory holds no migrations, a file name's version is
 *                 malformed or repeated, versions have a gap, or a file uses
 *                 DELIMITER;
 *   IBP_E_IO      the directory or a file cannot be read;
 *   IBP_E_DB      a statement failed (the failed file is rolled back as far
 *                 as MariaDB can, see above, and not recorded), the lock
 *                 could not be had, the database's schema_version is newer
 *                 than the newest file here (this program is older than the
 *                 schema: refuse rather than write to a schema it does not
 *                 know), or the database holds tables of ours but no
 *                 schema_version (e.g. the Go seed's schema: see the README);
 *   IBP_E_NOMEM.
 */
ibp_status ibp_schema_migrate(MYSQL *db, const char *sql_dir, int *version_out, ibp_err *err);

#endif
