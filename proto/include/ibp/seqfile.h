/*
 * Durable per-signer sequence numbers.
 *
 * A signer must never reuse a sequence number, even after a crash, or
 * receivers would drop its messages as replays. The file stores a reserved
 * high-water mark: numbers are handed out from memory, and every
 * IBP_SEQFILE_BLOCK numbers the next block is reserved on disk (write, fsync,
 * rename, fsync of the directory) *before* any number of it is used. After a
 * crash the signer continues above the reserved mark, skipping at most one
 * block; numbers stay strictly increasing.
 *
 * One ibp_seqfile per signer per process; not thread-safe (the signer that
 * owns it serialises calls).
 */
#ifndef IBP_SEQFILE_H
#define IBP_SEQFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "ibp/status.h"

#define IBP_SEQFILE_BLOCK 1024u

typedef struct ibp_seqfile ibp_seqfile;

/*
 * Opens (or creates) the sequence file at path. A file that exists but does
 * not parse is an error (IBP_E_CONFIG naming it), never a silent restart at 1,
 * which would make every receiver drop this signer's messages.
 */
ibp_status ibp_seqfile_open(const char *path, ibp_seqfile **out, ibp_err *err);

/* Returns the next sequence number (the first is 1). IBP_E_IO if the reservation cannot be made
 * durable. */
ibp_status ibp_seqfile_next(ibp_seqfile *sf, uint64_t *seq_out, ibp_err *err);

/* The last number handed out (0 before the first). */
uint64_t ibp_seqfile_last(const ibp_seqfile *sf);

/*
 * Makes every number handed out from now on greater than floor: when the
 * last number is below floor, floor becomes the last one, durably (for a
 * signer that learned from the bus that it used numbers this file lost).
 * *raised (may be NULL) tells whether it changed. IBP_E_IO when it cannot be
 * made durable.
 */
ibp_status ibp_seqfile_raise(ibp_seqfile *sf, uint64_t floor, bool *raised, ibp_err *err);

/* Closes; accepts NULL. */
void ibp_seqfile_close(ibp_seqfile *sf);

#endif
