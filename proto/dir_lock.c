/* One process per work directory; see ibp/dir_lock.h. */
#include "ibp/dir_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

ibp_status ibp_dir_lock(const char *dir, const char *name, int *fd_out, ibp_err *err)
{
    char path[4200];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path)
        return ibp_err_set(err, IBP_E_INVAL, "lock file: path too long in %s", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return ibp_err_set(err, IBP_E_IO, "lock file %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "?";
        ssize_t r = pread(fd, pid, sizeof pid - 1, 0);
        if (r > 0) {
            pid[r] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
        }
        close(fd);
        if (e == EWOULDBLOCK)
            return ibp_err_set(err, IBP_E_EXISTS,
                               "work directory %s is in use by another process (pid %s, lock "
                               "file %s): two daemons on one directory would reuse sequence "
                               "numbers",
                               dir, pid, path);
        return ibp_err_set(err, IBP_E_IO, "lock file %s: %s", path, strerror(e));
    }
    char line[32];
    int len = snprintf(line, sizeof line, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len) {
        /* The pid is only for the message of a later refusal; the lock holds. */
    }
    *fd_out = fd;
    return IBP_OK;
}

void ibp_dir_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}
