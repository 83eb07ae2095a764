/*
 * The NATS connection of every ibpctl command: the server URL and the
 * credentials, from options or the environment, through the daemons' own
 * connect call (ibp_bus_connect), so ibpctl authenticates and verifies TLS
 * exactly as they do.
 *
 *   option                 environment              what
 *   --nats URL             NATS_URL                 server (default nats://127.0.0.1:4222)
 *   --nats-nkey FILE       IBP_NATS_NKEY_FILE       user nkey seed file ("SU...", mode 0600)
 *   --nats-creds FILE      IBP_NATS_CREDS           credentials file (JWT + seed)
 *   --nats-user U          IBP_NATS_USER            user name ...
 *   --nats-password-file F IBP_NATS_PASSWORD_FILE   ... and its password file
 *   --nats-ca FILE         IBP_NATS_CA              CA certificates verifying the server
 *   --nats-cert FILE       IBP_NATS_CERT            client certificate ...
 *   --nats-key FILE        IBP_NATS_KEY             ... and its key
 *
 * An option wins over its variable. One way to authenticate: when any of
 * --nats-nkey, --nats-creds, --nats-user is given, the three credential
 * variables are ignored; two ways at once is a usage error.
 *
 * State: one process-wide set (ibpctl runs one command per process).
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/bus.h"
#include "ibpctl.h"

static struct {
    bool url_given; /* --nats on the command line (set by ibpctl_nats_scan_argv) */
    const char *nkey, *creds, *user, *password_file, *ca, *cert, *key;
    bool cred_option; /* a credential came from an option */
} g;

void ibpctl_nats_scan_argv(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--nats") == 0 || strncmp(argv[i], "--nats=", 7) == 0)
            g.url_given = true;
    }
}

int ibpctl_nats_opt(int c, const char *arg)
{
    switch (c) {
    case IBPCTL_OPT_NATS_NKEY:
        g.nkey = arg;
        g.cred_option = true;
        return 1;
    case IBPCTL_OPT_NATS_CREDS:
        g.creds = arg;
        g.cred_option = true;
        return 1;
    case IBPCTL_OPT_NATS_USER:
        g.user = arg;
        g.cred_option = true;
        return 1;
    case IBPCTL_OPT_NATS_PASSWORD_FILE:
        g.password_file = arg;
        return 1;
    case IBPCTL_OPT_NATS_CA:
        g.ca = arg;
        return 1;
    case IBPCTL_OPT_NATS_CERT:
        g.cert = arg;
        return 1;
    case IBPCTL_OPT_NATS_KEY:
        g.key = arg;
        return 1;
    default:
        return 0;
    }
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static const char *pick(const char *opt, const char *var)
{
    return opt ? opt : env(var);
}

/* Fills cfg's credential and TLS fields from options and environment. */
static ibp_status fill_credentials(ibp_bus_conn_opts *cfg, ibp_err *err)
{
    const char *nkey = g.nkey, *creds = g.creds, *user = g.user;
    const char *password_file = g.password_file;
    if (!g.cred_option) {
        nkey = env("IBP_NATS_NKEY_FILE");
        creds = env("IBP_NATS_CREDS");
        user = env("IBP_NATS_USER");
    }
    if (!password_file && user)
        password_file = env("IBP_NATS_PASSWORD_FILE");
    int ways = (nkey != NULL) + (creds != NULL) + (user != NULL);
    if (ways > 1)
        return ibp_err_set(err, IBP_E_CONFIG,
                           "NATS credentials: use one of an nkey seed file, a creds file or a "
                           "user and password (%s%s%s given%s)",
                           nkey ? "nkey " : "", creds ? "creds " : "", user ? "user " : "",
                           g.cred_option ? "" : ", from IBP_NATS_* variables");
    if (password_file && !user)
        return ibp_err_set(err, IBP_E_CONFIG, "--nats-password-file needs --nats-user");
    const char *cert = pick(g.cert, "IBP_NATS_CERT"), *key = pick(g.key, "IBP_NATS_KEY");
    if (!cert != !key)
        return ibp_err_set(err, IBP_E_CONFIG,
                           "a NATS client certificate needs both --nats-cert and --nats-key "
                           "(IBP_NATS_CERT, IBP_NATS_KEY)");
    cfg->nkey_seed_file = nkey;
    cfg->creds_file = creds;
    cfg->user = user;
    cfg->password_file = password_file;
    cfg->tls_ca_file = pick(g.ca, "IBP_NATS_CA");
    cfg->tls_cert_file = cert;
    cfg->tls_key_file = key;
    return IBP_OK;
}

ibp_status ibpctl_nats_connect(const char *url, const char *name, natsConnection **nc, ibp_err *err)
{
    if (!g.url_given || !url)
        url = env("NATS_URL") ? env("NATS_URL") : (url ? url : IBPCTL_DEFAULT_NATS);
    const char *servers[1] = {url};
    ibp_bus_conn_opts cfg = {.servers = servers, .server_count = 1,
                             .name = name ? name : "ibpctl"};
    ibp_status st = fill_credentials(&cfg, err);
    if (st != IBP_OK)
        return st;
    return ibp_bus_connect(&cfg, nc, err);
}

ibp_status ibpctl_js_connect(const char *url, natsConnection **nc, jsCtx **js, ibp_err *err)
{
    *js = NULL;
    ibp_status st = ibpctl_nats_connect(url, "ibpctl", nc, err);
    if (st != IBP_OK)
        return st;
    natsStatus s = natsConnection_JetStream(js, *nc, NULL);
    if (s != NATS_OK) {
        natsConnection_Destroy(*nc);
        *nc = NULL;
        return ibp_err_set(err, IBP_E_NATS, "JetStream context: %s", natsStatus_GetText(s));
    }
    return IBP_OK;
}
