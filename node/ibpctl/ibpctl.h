/* Shared declarations of the ibpctl subcommands. */
#ifndef IBPCTL_H
#define IBPCTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

#include "ibp/key.h"
#include "ibp/roster.h"
#include "ibp/status.h"

#define IBPCTL_DEFAULT_NATS "nats://127.0.0.1:4222"

/* Adds node with roles and public key pk to the roster at path (created if missing). */
ibp_status ibpctl_roster_add_key(const char *path, const char *node, unsigned roles,
                                 const uint8_t pk[IBP_PUBKEY_BYTES], ibp_err *err);

/* Sets the public NATS user nkey of node in the roster at path (which must exist). */
ibp_status ibpctl_roster_set_nkey(const char *path, const char *node, const char *nkey,
                                  ibp_err *err);

/* `ibpctl nats-auth`: see nats_auth.c. */
int ibpctl_cmd_nats_auth(int argc, char **argv);

/* `ibpctl smoke`: see smoke.c. */
int ibpctl_cmd_smoke(int argc, char **argv);

/* `ibpctl observe`: see observe.c. */
int ibpctl_cmd_observe(int argc, char **argv);

/* `ibpctl reload`: see reload.c. */
int ibpctl_cmd_reload(int argc, char **argv);

/*
 * One request line to a running ibp-node's control socket at path (with a
 * 30 s timeout each way): *text receives the answer line (free it), *answer
 * its JSON (NULL if it does not parse; json_decref it). Errors are printed
 * with prog first. Returns 0, 1 (unreachable, no answer) or 2 (bad path).
 */
int ibpctl_control_call(const char *prog, const char *path, const char *request, char **text,
                        json_t **answer);

/* `ibpctl events` and `ibpctl usage` (and `usage flush`): see query.c. */
int ibpctl_cmd_events(int argc, char **argv);
int ibpctl_cmd_usage(int argc, char **argv);

/*
 * A request to ibp-persist (query.c): request (consumed) goes to subject.
 * ibpctl_query_ask prints the JSON answer and returns the exit code (1 on no
 * answer or an error answer); ibpctl_query_request gives the answer in *doc
 * (NULL on failure, after printing why) and returns 0 or 1.
 */
int ibpctl_query_ask(const char *url, const char *subject, json_t *request);
int ibpctl_query_request(const char *url, const char *subject, json_t *request, json_t **doc);

/* `ibpctl replay`: runs `ibp-persist replay` (replay.c). */
int ibpctl_cmd_replay(int argc, char **argv);

/* `ibpctl decode`: see decode.c. */
int ibpctl_cmd_decode(int argc, char **argv);

/* `ibpctl override`: see override.c. */
int ibpctl_cmd_override(int argc, char **argv);

/* `ibpctl snapshot` and `ibpctl audit`: see snapshot.c. */
int ibpctl_cmd_snapshot(int argc, char **argv);
int ibpctl_cmd_audit(int argc, char **argv);

/* `ibpctl status`: see status.c; `ibpctl watch`: see watch.c. */
int ibpctl_cmd_status(int argc, char **argv);
int ibpctl_cmd_watch(int argc, char **argv);

/*
 * A status message (ibp.status.<...>) as JSON, or NULL when it does not pass
 * the filters member and domain (NULL: any). It is verified against roster
 * (ibp/status_sig.h): a verified message is its status document with
 * "verified": true and "signed_by" (the replica); any other is {"verified":
 * false, "reason": ..., "unverified": <document or null>}, so nothing
 * unverified reads as an official status. *verified says which.
 */
json_t *ibpctl_status_msg_json(const char *member, const char *domain, const ibp_roster *roster,
                               natsMsg *msg, const char *subject, bool *verified);

/* `ibpctl services`: see services.c. `ibpctl sla`: see sla.c. */
int ibpctl_cmd_services(int argc, char **argv);
int ibpctl_cmd_sla(int argc, char **argv);
int ibpctl_cmd_check(int argc, char **argv); /* `ibpctl check`: see check.c */

/* ---- the NATS connection of every command (nats_opts.c) ---------------------
 *
 * A command adds IBPCTL_NATS_LONG_OPTIONS to its getopt_long table, passes
 * every option its switch does not know to ibpctl_nats_opt, prints
 * IBPCTL_NATS_HELP in its --help, and connects with ibpctl_nats_connect or
 * ibpctl_js_connect. Defaults come from the environment (NATS_URL,
 * IBP_NATS_NKEY_FILE, IBP_NATS_CREDS, IBP_NATS_USER, IBP_NATS_PASSWORD_FILE,
 * IBP_NATS_CA, IBP_NATS_CERT, IBP_NATS_KEY); see nats_opts.c.
 */
enum {
    IBPCTL_OPT_NATS_NKEY = 0x4e00, /* beyond every short option character */
    IBPCTL_OPT_NATS_CREDS,
    IBPCTL_OPT_NATS_USER,
    IBPCTL_OPT_NATS_PASSWORD_FILE,
    IBPCTL_OPT_NATS_CA,
    IBPCTL_OPT_NATS_CERT,
    IBPCTL_OPT_NATS_KEY,
};

#define IBPCTL_NATS_LONG_OPTIONS                                                                   \
    {"nats-nkey", required_argument, 0, IBPCTL_OPT_NATS_NKEY},                                     \
        {"nats-creds", required_argument, 0, IBPCTL_OPT_NATS_CREDS},                               \
        {"nats-user", required_argument, 0, IBPCTL_OPT_NATS_USER},                                 \
        {"nats-password-file", required_argument, 0, IBPCTL_OPT_NATS_PASSWORD_FILE},               \
        {"nats-ca", required_argument, 0, IBPCTL_OPT_NATS_CA},                                     \
        {"nats-cert", required_argument, 0, IBPCTL_OPT_NATS_CERT},                                 \
    {                                                                                              \
        "nats-key", required_argument, 0, IBPCTL_OPT_NATS_KEY                                      \
    }

#define IBPCTL_NATS_HELP                                                                           \
    "NATS (an option wins over its environment variable):\n"                                       \
    "  --nats URL                 server ($NATS_URL, else " IBPCTL_DEFAULT_NATS ")\n"              \
    "  --nats-nkey FILE           user nkey seed file, mode 0600 ($IBP_NATS_NKEY_FILE)\n"          \
    "  --nats-creds FILE          credentials file ($IBP_NATS_CREDS)\n"                            \
    "  --nats-user U              user name ($IBP_NATS_USER) with\n"                               \
    "  --nats-password-file F     its password file ($IBP_NATS_PASSWORD_FILE)\n"                   \
    "  --nats-ca FILE             CA certificates verifying the server ($IBP_NATS_CA)\n"           \
    "  --nats-cert F --nats-key F client certificate and key ($IBP_NATS_CERT, $IBP_NATS_KEY)\n"

/* Notes whether --nats was given (else $NATS_URL wins over a command's default). */
void ibpctl_nats_scan_argv(int argc, char **argv);

/* Takes one getopt_long result; 1 when it was a NATS credential option (stored), else 0. */
int ibpctl_nats_opt(int c, const char *arg);

/*
 * Connects to url (or $NATS_URL when --nats was not given) with the
 * credentials of the options and environment, through ibp_bus_connect.
 * Errors: IBP_E_CONFIG (two ways to authenticate, half a client
 * certificate), and those of ibp_bus_connect.
 */
ibp_status ibpctl_nats_connect(const char *url, const char *name, natsConnection **nc,
                               ibp_err *err);

/* ibpctl_nats_connect, then a JetStream context. */
ibp_status ibpctl_js_connect(const char *url, natsConnection **nc, jsCtx **js, ibp_err *err);

#endif
