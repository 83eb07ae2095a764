/*
 * Crash-safe whole-file writes and bounded whole-file reads.
 *
 * ibp_file_write_atomic() writes to "<path>.tmp.<pid>", fsyncs it, renames it
 * over path and fsyncs the directory, so after a crash path holds either the
 * old or the new content, never a mix. Thread-safe for distinct paths.
 */
#ifndef IBP_ATOMIC_FILE_H
#define IBP_ATOMIC_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "ibp/status.h"

/* Writes data[0..len) to path with the given mode (e.g. 0600). IBP_E_IO naming the path and errno.
 */
ibp_status ibp_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                 ibp_err *err);

/*
 * Reads the whole file into a malloc'd, NUL-terminated buffer (*out, caller
 * frees) and its length. IBP_E_NOT_FOUND when it does not exist, IBP_E_TOO_LARGE
 * over max_len, IBP_E_IO otherwise; every message names the path.
 */
ibp_status ibp_file_read_all(const char *path, size_t max_len, char **out, size_t *out_len,
                             ibp_err *err);

/*
 * Reads a configuration file (settings, network config) whole into a
 * malloc'd, NUL-terminated buffer (*out, caller frees) and its length, with
 * the messages operators see: IBP_E_IO "<path>: cannot open: <errno text>"
 * (a missing file included), "<path>: cannot stat: ...", "<path>: not a
 * regular file", "<path>: cannot read: ..."; IBP_E_CONFIG "<path>: file is
 * larger than <max_len> bytes"; IBP_E_NOMEM. Thread-safe.
 */
ibp_status ibp_file_read_config(const char *path, size_t max_len, char **out, size_t *out_len,
                                ibp_err *err);

/* fsyncs the directory that holds path (after a rename or create). */
ibp_status ibp_file_sync_dir(const char *path, ibp_err *err);

#endif
