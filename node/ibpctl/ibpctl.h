/* Shared declarations of the ibpctl subcommands. */
#ifndef IBPCTL_H
#define IBPCTL_H

#include <stdint.h>

#include <nats/nats.h>

#include "ibp/key.h"
#include "ibp/status.h"

#define IBPCTL_DEFAULT_NATS "nats://127.0.0.1:4222"

/* Adds node with roles and public key pk to the roster at path (created if missing). */
ibp_status ibpctl_roster_add_key(const char *path, const char *node, unsigned roles,
                                 const uint8_t pk[IBP_PUBKEY_BYTES], ibp_err *err);

/* `ibpctl smoke`: see smoke.c. */
int ibpctl_cmd_smoke(int argc, char **argv);

/* `ibpctl observe`: see observe.c. */
int ibpctl_cmd_observe(int argc, char **argv);

/* `ibpctl events` and `ibpctl usage`: see query.c. */
int ibpctl_cmd_events(int argc, char **argv);
int ibpctl_cmd_usage(int argc, char **argv);

/* `ibpctl replay`: runs `ibp-persist replay` (replay.c). */
int ibpctl_cmd_replay(int argc, char **argv);

/* `ibpctl decode`: see decode.c. */
int ibpctl_cmd_decode(int argc, char **argv);

/* `ibpctl override`: see override.c. */
int ibpctl_cmd_override(int argc, char **argv);

/* `ibpctl snapshot` and `ibpctl audit`: see snapshot.c. */
int ibpctl_cmd_snapshot(int argc, char **argv);
int ibpctl_cmd_audit(int argc, char **argv);

/* `ibpctl status` and `ibpctl watch`: see status.c. */
int ibpctl_cmd_status(int argc, char **argv);
int ibpctl_cmd_watch(int argc, char **argv);

/* Connects to url and makes a JetStream context (see snapshot.c). */
ibp_status ibpctl_js_connect(const char *url, natsConnection **nc, jsCtx **js, ibp_err *err);

#endif
