/*
 * Shared by the fuzz harnesses (tests/fuzz/<name>_fuzz.c) and the corpus
 * generator: a quiet log hook, a fixed roster with deterministic keys, and
 * private temporary directories.
 */
#ifndef IBP_FUZZ_COMMON_H
#define IBP_FUZZ_COMMON_H

#include <dirent.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ibp/key.h"
#include "ibp/log.h"
#include "ibp/roster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void ibp_fuzz_quiet_log(ibp_log_level level, const char *component, const char *msg,
                                      void *user)
{
    (void)level;
    (void)component;
    (void)msg;
    (void)user;
}

static inline void ibp_fuzz_abort(const char *what)
{
    fprintf(stderr, "fuzz setup failed: %s\n", what);
    abort();
}

/* The fixed roster: one node per role, key pair i from the seed filled with byte i+1. */
#define IBP_FUZZ_NODE_COUNT 5
static const struct {
    const char *id;
    unsigned roles;
} ibp_fuzz_nodes[IBP_FUZZ_NODE_COUNT] = {
    {"mon1", IBP_ROLE_MONITOR}, {"rep1", IBP_ROLE_CONSENSUS}, {"dns1", IBP_ROLE_DNS},
    {"ops", IBP_ROLE_ADMIN},    {"per1", IBP_ROLE_PERSIST},
};

static inline void ibp_fuzz_key(size_t i, ibp_key *key)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(seed, (int)(i + 1), sizeof seed);
    if (crypto_sign_seed_keypair(key->pk, key->sk, seed) != 0)
        ibp_fuzz_abort("seed keypair");
}

static inline ibp_roster *ibp_fuzz_roster(void)
{
    ibp_roster *r = NULL;
    ibp_err err;
    if (ibp_crypto_init() != IBP_OK || ibp_roster_new(&r) != IBP_OK)
        ibp_fuzz_abort("roster");
    for (size_t i = 0; i < IBP_FUZZ_NODE_COUNT; i++) {
        ibp_key k;
        ibp_fuzz_key(i, &k);
        if (ibp_roster_add(r, ibp_fuzz_nodes[i].id, k.pk, ibp_fuzz_nodes[i].roles, &err) != IBP_OK)
            ibp_fuzz_abort("roster add");
    }
    return r;
}

/* Empties dir (one level: the harnesses write only plain files there). */
static inline void ibp_fuzz_empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
            (void)unlink(path);
    }
    closedir(d);
}

/* A private directory for this process, removed at exit. */
static char ibp_fuzz_tmpdir_path[256];

static inline void ibp_fuzz_tmpdir_cleanup(void)
{
    if (ibp_fuzz_tmpdir_path[0]) {
        ibp_fuzz_empty_dir(ibp_fuzz_tmpdir_path);
        (void)rmdir(ibp_fuzz_tmpdir_path);
        ibp_fuzz_tmpdir_path[0] = '\0';
    }
}

static inline const char *ibp_fuzz_tmpdir(void)
{
    if (!ibp_fuzz_tmpdir_path[0]) {
        const char *base = getenv("TMPDIR");
        if (!base || !*base)
            base = "/tmp";
        snprintf(ibp_fuzz_tmpdir_path, sizeof ibp_fuzz_tmpdir_path, "%s/ibp-fuzz-XXXXXX", base);
        if (!mkdtemp(ibp_fuzz_tmpdir_path))
            ibp_fuzz_abort("mkdtemp");
        atexit(ibp_fuzz_tmpdir_cleanup);
    }
    return ibp_fuzz_tmpdir_path;
}

/* Writes data to path (truncating); aborts on failure. */
static inline void ibp_fuzz_write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        ibp_fuzz_abort(path);
}

#endif
