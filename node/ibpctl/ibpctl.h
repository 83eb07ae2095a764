/* Shared declarations of the ibpctl subcommands. */
#ifndef IBPCTL_H
#define IBPCTL_H

#include <stdint.h>

#include "ibp/key.h"
#include "ibp/status.h"

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

#endif
