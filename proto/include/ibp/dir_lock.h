/*
 * One process per work directory.
 *
 * A daemon's work directory holds its durable sequence numbers (signer.seq,
 * usage.seq) and journals. Two processes on one directory would each hand
 * out numbers from their own reservation and reuse each other's, which
 * receivers then drop as replays. The lock is an flock(2) on a file in the
 * directory, held for the life of the process (released by the kernel when
 * it dies, so a crash never leaves a stale lock); the file holds the pid of
 * the holder so that the refusal can name it.
 */
#ifndef IBP_DIR_LOCK_H
#define IBP_DIR_LOCK_H

#include "ibp/status.h"

/*
 * Takes the lock file `name` in dir. *fd_out receives the descriptor to keep
 * open (ibp_dir_unlock to release). Errors: IBP_E_EXISTS when another process
 * holds it (the message names the directory and its pid), IBP_E_IO.
 */
ibp_status ibp_dir_lock(const char *dir, const char *name, int *fd_out, ibp_err *err);

/* Releases a lock taken by ibp_dir_lock; accepts -1. */
void ibp_dir_unlock(int fd);

#endif
