/* Durable per-signer sequence numbers; see ibp/seqfile.h. */
#include "ibp/seqfile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/atomic_file.h"

#define SEQFILE_MAGIC "ibp-seq v1 reserved="

struct ibp_seqfile {
    char *path;
    uint64_t last;     /* last number handed out */
    uint64_t reserved; /* numbers up to this one are durably reserved */
};

static ibp_status reserve(ibp_seqfile *sf, uint64_t upto, ibp_err *err)
{
    char line[64];
    int n = snprintf(line, sizeof line, SEQFILE_MAGIC "%" PRIu64 "\n", upto);
    ibp_status st = ibp_file_write_atomic(sf->path, line, (size_t)n, 0600, err);
    if (st != IBP_OK)
        return ibp_err_wrap(err, "reserve sequence numbers");
    sf->reserved = upto;
    return IBP_OK;
}

ibp_status ibp_seqfile_open(const char *path, ibp_seqfile **out, ibp_err *err)
{
    char *text = NULL;
    size_t len = 0;
    if (!path || !*path)
        return ibp_err_set(err, IBP_E_INVAL, "sequence file: no path");
    ibp_seqfile *sf = calloc(1, sizeof *sf);
    if (!sf || !(sf->path = strdup(path))) {
        free(sf);
        return ibp_err_set(err, IBP_E_NOMEM, "%s: out of memory", path);
    }
    ibp_status st = ibp_file_read_all(path, 4096, &text, &len, err);
    if (st == IBP_E_NOT_FOUND) {
        st = IBP_OK; /* a new signer starts at 1 */
    } else if (st == IBP_OK) {
        size_t mlen = strlen(SEQFILE_MAGIC);
        char *end = NULL;
        if (strncmp(text, SEQFILE_MAGIC, mlen) != 0 || text[mlen] < '0' || text[mlen] > '9') {
            st = ibp_err_set(err, IBP_E_CONFIG,
                             "%s: not a sequence file; refusing to restart the sequence at 1 "
                             "(receivers would drop every message as a replay)",
                             path);
        } else {
            errno = 0;
            unsigned long long v = strtoull(text + mlen, &end, 10);
            if (errno == ERANGE)
                st = ibp_err_set(err, IBP_E_CONFIG, "%s: number out of range", path);
            else if (*end != '\n' && *end != '\0')
                st = ibp_err_set(err, IBP_E_CONFIG, "%s: trailing garbage after the number", path);
            sf->last = sf->reserved = (uint64_t)v;
        }
    }
    free(text);
    if (st != IBP_OK) {
        ibp_seqfile_close(sf);
        return st;
    }
    *out = sf;
    return IBP_OK;
}

ibp_status ibp_seqfile_next(ibp_seqfile *sf, uint64_t *seq_out, ibp_err *err)
{
    if (sf->last == UINT64_MAX)
        return ibp_err_set(err, IBP_E_RANGE, "%s: sequence numbers exhausted", sf->path);
    if (sf->last + 1 > sf->reserved) {
        uint64_t upto = sf->last + IBP_SEQFILE_BLOCK;
        if (upto < sf->last)
            upto = UINT64_MAX;
        ibp_status st = reserve(sf, upto, err);
        if (st != IBP_OK)
            return st;
    }
    *seq_out = ++sf->last;
    return IBP_OK;
}

ibp_status ibp_seqfile_raise(ibp_seqfile *sf, uint64_t floor, bool *raised, ibp_err *err)
{
    if (raised)
        *raised = false;
    if (floor <= sf->last)
        return IBP_OK;
    if (floor > sf->reserved) {
        ibp_status st = reserve(sf, floor, err);
        if (st != IBP_OK)
            return st;
    }
    sf->last = floor;
    if (raised)
        *raised = true;
    return IBP_OK;
}

uint64_t ibp_seqfile_last(const ibp_seqfile *sf)
{
    return sf ? sf->last : 0;
}

void ibp_seqfile_close(ibp_seqfile *sf)
{
    if (!sf)
        return;
    free(sf->path);
    free(sf);
}
