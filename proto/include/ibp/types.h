/*
 * The values every part of the project agrees on: check types, statuses and
 * the caps on names, domains, URLs and texts. Header only; the vote engine,
 * the data library, the drivers and persist all include it, so a value
 * changes in one place.
 *
 * The enum values are the wire's (proto/ibp.proto CheckType and Status), so
 * code converts between them and the protobuf-c enums by value; the files
 * that do so check it with _Static_assert (node/data/result.c).
 * Plain values only: no functions, so the pure cores may include it.
 */
#ifndef IBP_TYPES_H
#define IBP_TYPES_H

/* Observations one monitor batch may carry at most (the publisher's default). */
#define IBP_MONITOR_MAX_BATCH_OBS_DEFAULT 5000

/*
 * The caps on strings, in bytes of UTF-8 without the NUL (a character takes
 * 1 to 4 bytes, so a value at a cap has at most that many characters). One
 * set for the whole project: results and the wire codecs refuse a longer
 * value, the vote engine refuses to vote on one, the network config refuses
 * one, and every MariaDB column that stores one is VARCHAR(cap) characters
 * or wider, so persist stores every value up to the cap
 * (deploy/sql/003_caps.sql, persist/include/ibp/persist_parse.h).
 */
#define IBP_DOMAIN_MAX 253   /* longest domain (RFC 1035) */
#define IBP_NAME_MAX 255     /* member and check names */
#define IBP_NODE_ID_MAX 64   /* node ids: 1-64 of [A-Za-z0-9_-] (ibp/roster.h) */
#define IBP_URL_MAX 2048     /* endpoint URLs */
#define IBP_ERROR_MAX 4096   /* error texts, override reasons (longer error texts are cut) */
#define IBP_DATA_MAX 65536   /* extra data (a JSON object as text) */
#define IBP_EVENT_ID_MAX 128 /* Event ids (the engine's "<epoch>-<32 hex>" take at most 53) */

/* What a result key names (wire: CheckType; 0 there is "unspecified"). */
typedef enum ibp_check_type {
    IBP_CHECK_SITE = 1,
    IBP_CHECK_DOMAIN = 2,
    IBP_CHECK_ENDPOINT = 3,
} ibp_check_type;

/* A result's status (wire: Status; NONE is "unspecified": no status, absent). */
typedef enum ibp_result_status {
    IBP_RESULT_NONE = 0,
    IBP_RESULT_UP = 1,
    IBP_RESULT_DOWN = 2,
} ibp_result_status;

#endif
