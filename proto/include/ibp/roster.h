/*
 * The roster: which node ids exist, their public keys and their roles.
 *
 * File format (JSON):
 *     {"version": 1,
 *      "nodes": [{"id": "mon1", "public_key": "<base64>", "roles": ["monitor", "consensus"],
 *                 "nats_nkey": "U..."}]}
 *
 * "nats_nkey" (optional; rosters without it load as before) is the node's
 * public NATS user nkey (ibp/nkey.h): the identity nats-server knows it by
 * (`ibpctl nats-auth` renders one user per node that has one, with the
 * permissions of its roles). It is a key of its own, never derived from the
 * Ed25519 signing key "public_key". No two nodes may share one.
 *
 * Node ids are 1-64 characters of [A-Za-z0-9_-], so they are valid NATS
 * subject tokens as they are. A roster is immutable once loaded; concurrent
 * readers are safe. Building one (ibp_roster_add) is single-threaded.
 */
#ifndef IBP_ROSTER_H
#define IBP_ROSTER_H

#include <stddef.h>
#include <stdint.h>

#include "ibp/key.h"
#include "ibp/nkey.h"
#include "ibp/status.h"
#include "ibp/types.h" /* IBP_NODE_ID_MAX */

typedef enum ibp_role {
    IBP_ROLE_MONITOR = 1u << 0,
    IBP_ROLE_CONSENSUS = 1u << 1,
    IBP_ROLE_DNS = 1u << 2,
    IBP_ROLE_PERSIST = 1u << 3,
    IBP_ROLE_ADMIN = 1u << 4,
} ibp_role;
#define IBP_ROLE_ALL 0x1fu

typedef struct ibp_roster_node {
    char id[IBP_NODE_ID_MAX + 1];
    uint8_t pk[IBP_PUBKEY_BYTES];
    unsigned roles;                       /* bit set of ibp_role */
    char nats_nkey[IBP_NKEY_PUBLIC_SIZE]; /* public user nkey "U...", or "" for none */
} ibp_roster_node;

typedef struct ibp_roster ibp_roster;

/* True when id is a valid node id (see above). */
int ibp_node_id_valid(const char *id);

/* "monitor" -> IBP_ROLE_MONITOR; 0 for an unknown name. */
unsigned ibp_role_parse(const char *name);
/* Name of one role bit; "?" for anything else. */
const char *ibp_role_name(unsigned role);
/* Parses a comma-separated list ("monitor,consensus"). IBP_E_CONFIG naming the bad word. */
ibp_status ibp_roles_parse_list(const char *list, unsigned *roles_out, ibp_err *err);
/* Writes roles as "monitor,consensus" into buf (always NUL-terminated). */
void ibp_roles_format(unsigned roles, char *buf, size_t cap);

/* Creates an empty roster. */
ibp_status ibp_roster_new(ibp_roster **out);

/*
 * Adds a node (copies everything). Errors: IBP_E_INVAL (bad id or no roles),
 * IBP_E_EXISTS (id already present).
 */
ibp_status ibp_roster_add(ibp_roster *r, const char *id, const uint8_t pk[IBP_PUBKEY_BYTES],
                          unsigned roles, ibp_err *err);

/*
 * Sets (or, with NULL or "", removes) the NATS user nkey of node id.
 * Errors: IBP_E_NOT_FOUND (no such node), IBP_E_KEY_FORMAT (not a public user
 * nkey, see ibp_nkey_decode_user_public), IBP_E_EXISTS (another node has it).
 */
ibp_status ibp_roster_set_nats_nkey(ibp_roster *r, const char *id, const char *nkey, ibp_err *err);

/* Loads a roster file. Errors name the file and the offending node/key (IBP_E_CONFIG, IBP_E_IO). */
ibp_status ibp_roster_load(const char *path, ibp_roster **out, ibp_err *err);

/* Writes the roster as JSON (atomically: temporary file, fsync, rename). */
ibp_status ibp_roster_save(const ibp_roster *r, const char *path, ibp_err *err);

/* The node with this id, or NULL. The pointer lives as long as the roster. */
const ibp_roster_node *ibp_roster_find(const ibp_roster *r, const char *id);

size_t ibp_roster_count(const ibp_roster *r);
const ibp_roster_node *ibp_roster_at(const ibp_roster *r, size_t i);

/* Frees the roster; accepts NULL. */
void ibp_roster_free(ibp_roster *r);

#endif
