/*
 * Settings tables: one table describes every key of a daemon's configuration,
 * and loading, validation, `--help` text and the example config are all
 * derived from it (the idea of redis' static_configs[]).
 *
 * A setting has a dotted name ("nats.servers"), a type, a default given as
 * text, bounds for numbers, flags (required, reloadable, secret), a help line
 * and the offset of its field in the caller's struct. Settings are grouped;
 * each group adds a base offset, so one group (say the NATS keys, whose
 * fields live in a sub-struct) can be shared by several daemons' tables.
 *
 * Config file format: one JSON object. Nested objects map to dotted names,
 * so {"nats": {"servers": [...]}} sets "nats.servers"; a dotted key
 * ({"nats.servers": [...]}) means the same. Unknown keys are errors, and so
 * is setting one key twice. JSON null means "not set" (the default applies).
 *
 * Types and their C fields:
 *   IBP_SETTING_STRING, IBP_SETTING_PATH   char *        JSON string; "" or
 *                                                        unset is NULL
 *   IBP_SETTING_INT64                      int64_t       JSON integer
 *   IBP_SETTING_BOOL                       bool          JSON true/false
 *   IBP_SETTING_DURATION_MS                int64_t (ms)  JSON integer (ms) or a
 *                                                        string "100ms", "5s",
 *                                                        "10m", "1h", "1d", "1m30s"
 *   IBP_SETTING_STRING_LIST                ibp_strlist   JSON array of strings
 *   IBP_SETTING_ROLES                      unsigned      JSON array of role names
 *                                                        or "monitor,consensus"
 *                                                        (bits of ibp_role)
 * Defaults and text values (ibp_settings_set_text) use the same words as the
 * JSON: numbers in decimal, durations as bare milliseconds ("5000") or with
 * units as above, lists and roles separated by commas, booleans true/false
 * (also yes/no, on/off, 1/0). In a JSON file a duration string needs a unit:
 * "5000" is rejected, 5000 is not.
 *
 * Secret settings hold the *path* of a file with the secret (a password, a
 * seed), never the secret itself, so the engine never reads or prints a
 * secret. Error messages do not echo the values of secret settings.
 *
 * Errors: every message names the source (file name), the key and what is
 * wrong, e.g. "node.json: key 'intervals.publish_ms': 50 is below the minimum
 * 100"; malformed JSON gives "node.json:3:14: <jansson's message>". Codes:
 * IBP_E_CONFIG (content), IBP_E_IO (file cannot be read or written),
 * IBP_E_NOMEM, IBP_E_INVAL (a bad argument or a broken table).
 *
 * Thread safety: tables are constant and may be shared freely. A config
 * struct is owned by its caller; functions that write it must not run
 * concurrently with anything else using the same struct. Functions that only
 * read a struct may run concurrently.
 */
#ifndef IBP_SETTINGS_H
#define IBP_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ibp/status.h"

/* A list of owned strings. An empty list is {NULL, 0}. */
typedef struct ibp_strlist {
    char **items;
    size_t count;
} ibp_strlist;

/* Frees every item and the array, and resets the list to empty. Accepts NULL. */
void ibp_strlist_free(ibp_strlist *list);

typedef enum ibp_setting_type {
    IBP_SETTING_STRING,
    IBP_SETTING_PATH,
    IBP_SETTING_INT64,
    IBP_SETTING_BOOL,
    IBP_SETTING_DURATION_MS,
    IBP_SETTING_STRING_LIST,
    IBP_SETTING_ROLES,
} ibp_setting_type;

/* Must be set and not empty. Only for strings, paths, lists and role sets. */
#define IBP_SETTING_REQUIRED (1u << 0)
/* May change when the daemon reloads its config (see ibp_settings_check_reload). */
#define IBP_SETTING_RELOADABLE (1u << 1)
/* The value is the path of a file holding a secret; never echoed in errors. */
#define IBP_SETTING_SECRET (1u << 2)

/*
 * Optional extra check of a parsed value, run after the bounds. field points
 * at a value of the setting's C type (char **, int64_t *, ...); an unset
 * string is NULL and is checked too. Returns 0 when the value is good;
 * otherwise returns -1 and writes into why (cap bytes, NUL-terminated) the
 * end of the sentence that the engine starts with the value:
 * "is not a valid node id" gives "key 'node.id': \"a b\" is not a valid node id".
 * Must be pure and thread-safe.
 */
typedef int (*ibp_setting_check_fn)(const void *field, char *why, size_t cap);

typedef struct ibp_setting {
    const char *name; /* dotted: [a-z0-9_] words joined by '.' */
    ibp_setting_type type;
    unsigned flags;           /* IBP_SETTING_REQUIRED | _RELOADABLE | _SECRET */
    const char *default_text; /* NULL: no default (unset / 0 / false / empty) */
    const char *example_text; /* for the example config when there is no default */
    int64_t min, max;         /* numbers; min == max == 0 means unbounded */
    size_t offset;            /* of the field, relative to the group's base */
    ibp_setting_check_fn check;
    const char *help;
} ibp_setting;

typedef struct ibp_settings_group {
    const ibp_setting *settings;
    size_t count;
    size_t base; /* offset of the group's fields inside the target struct */
} ibp_settings_group;

typedef struct ibp_settings_table {
    const char *program; /* for help text: "ibp-node" */
    const ibp_settings_group *groups;
    size_t group_count;
    size_t struct_size; /* sizeof the target struct */
    /*
     * Optional check across keys, run after every key is valid. base is the
     * whole struct, source the file name for messages. Returns IBP_OK or an
     * error set with ibp_err_set() (IBP_E_CONFIG).
     */
    ibp_status (*validate)(const void *base, const char *source, ibp_err *err);
} ibp_settings_table;

/*
 * Type-checked offsetof for table entries: fails to compile when the field's
 * type does not match the setting type. Use IBP_SETTING_AT_STR for strings and
 * paths, _I64 for int64 and durations, _BOOL, _LIST and _ROLES.
 */
#define IBP_SETTING_AT_(st, field, ctype) _Generic(((st *)0)->field, ctype : offsetof(st, field))
#define IBP_SETTING_AT_STR(st, field) IBP_SETTING_AT_(st, field, char *)
#define IBP_SETTING_AT_I64(st, field) IBP_SETTING_AT_(st, field, int64_t)
#define IBP_SETTING_AT_BOOL(st, field) IBP_SETTING_AT_(st, field, bool)
#define IBP_SETTING_AT_LIST(st, field) IBP_SETTING_AT_(st, field, ibp_strlist)
#define IBP_SETTING_AT_ROLES(st, field) IBP_SETTING_AT_(st, field, unsigned)

/*
 * Checks a table for mistakes: names well formed and unique, flags allowed for
 * the type, every default and example parses and is within bounds. Meant for
 * unit tests and start-up asserts. IBP_E_INVAL naming the setting.
 */
ibp_status ibp_settings_table_check(const ibp_settings_table *t, ibp_err *err);

/* The setting with this name, or NULL. The pointer is the table's. */
const ibp_setting *ibp_settings_find(const ibp_settings_table *t, const char *name);

/*
 * Fills *out (t->struct_size bytes, overwritten without being freed) with
 * every default. The struct then owns its strings: free with
 * ibp_settings_free(). Errors: IBP_E_NOMEM, IBP_E_INVAL for a broken table.
 */
ibp_status ibp_settings_defaults(const ibp_settings_table *t, void *out, ibp_err *err);

/*
 * Loads a JSON config file: defaults, then the file's values, then
 * validation (types, bounds, required keys, per-key checks, t->validate).
 * *out (t->struct_size bytes) is written only on success, without freeing
 * what it held; the caller frees it with ibp_settings_free(). path is
 * borrowed. Errors: IBP_E_IO (cannot open or read; names the file and
 * errno's text), IBP_E_CONFIG (content), IBP_E_NOMEM.
 */
ibp_status ibp_settings_load_file(const ibp_settings_table *t, const char *path, void *out,
                                  ibp_err *err);

/*
 * As ibp_settings_load_file() for JSON text already in memory (len bytes, need
 * not be NUL-terminated). source names it in error messages.
 */
ibp_status ibp_settings_load_buffer(const ibp_settings_table *t, const char *text, size_t len,
                                    const char *source, void *out, ibp_err *err);

/*
 * Sets one key from text (a command-line override, say), with the same type
 * and bound checks as the file. Does not run the required-key or cross-key
 * checks: call ibp_settings_validate() after the last override. On error the
 * field keeps its old value. Errors: IBP_E_CONFIG (unknown key, bad value,
 * naming source), IBP_E_NOMEM.
 */
ibp_status ibp_settings_set_text(const ibp_settings_table *t, void *base, const char *name,
                                 const char *text, const char *source, ibp_err *err);

/*
 * Checks a filled struct: bounds, required keys, per-key checks and
 * t->validate. IBP_E_CONFIG naming source and key.
 */
ibp_status ibp_settings_validate(const ibp_settings_table *t, const void *base, const char *source,
                                 ibp_err *err);

/*
 * Compares two loaded structs and fails with IBP_E_CONFIG naming the first key
 * that differs but is not reloadable ("key 'nats.servers' cannot change
 * without a restart"). IBP_OK when the new config may be applied live.
 */
ibp_status ibp_settings_check_reload(const ibp_settings_table *t, const void *old_base,
                                     const void *new_base, ibp_err *err);

/*
 * Checks every secret setting that is set: the file must exist, be a regular
 * file and have no group or other permission bits. IBP_E_IO (naming key and
 * errno text) or IBP_E_KEY_PERMS (naming key and mode). Reads no secret.
 */
ibp_status ibp_settings_check_secrets(const ibp_settings_table *t, const void *base, ibp_err *err);

/*
 * Frees every string and list the struct owns and resets those fields, so a
 * second call is harmless. Other fields are left as they are. Accepts NULL.
 */
void ibp_settings_free(const ibp_settings_table *t, void *base);

/*
 * Writes the help text (every key with its type, default, bounds, flags and
 * help) to out. IBP_E_IO when writing fails.
 */
ibp_status ibp_settings_help(const ibp_settings_table *t, FILE *out);

/*
 * Writes an example config file (JSON) to out: every key with its default, or
 * its example value when it has no default, so that the output loads as it
 * is. Errors: IBP_E_IO, IBP_E_NOMEM, IBP_E_INVAL (broken table).
 */
ibp_status ibp_settings_example(const ibp_settings_table *t, FILE *out, ibp_err *err);

/*
 * Writes the values of a filled struct as a nested JSON config (unset strings
 * as ""). Secret settings are written as their paths; no secret is read.
 * Errors: IBP_E_IO, IBP_E_NOMEM.
 */
ibp_status ibp_settings_write_json(const ibp_settings_table *t, const void *base, FILE *out,
                                   ibp_err *err);

/*
 * Parses a duration: "0", or one or more <integer><unit> with units ms, s, m,
 * h, d ("1m30s"). No sign, no spaces, no fractions. IBP_E_INVAL on bad text,
 * IBP_E_RANGE on overflow. *out_ms is set only on success. Thread-safe.
 */
ibp_status ibp_settings_parse_duration_ms(const char *text, int64_t *out_ms);

/*
 * Formats ms in the largest unit that divides it exactly ("5s", "10m",
 * "100ms", "1m30s" is not produced: 90000 is "90s"). Always NUL-terminates.
 */
void ibp_settings_format_duration_ms(int64_t ms, char *buf, size_t cap);

#endif
