/* Crash-safe file writes; see ibp/atomic_file.h. */
#include "ibp/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ibp/vec.h"

ibp_status ibp_file_sync_dir(const char *path, ibp_err *err)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir)
            return ibp_err_set(err, IBP_E_RANGE, "%s: path too long", path);
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ibp_err_set(err, IBP_E_IO, "%s: open directory: %s", dir, strerror(errno));
    ibp_status st = IBP_OK;
    if (fsync(fd) != 0 && errno != EINVAL)
        st = ibp_err_set(err, IBP_E_IO, "%s: fsync directory: %s", dir, strerror(errno));
    close(fd);
    return st;
}

ibp_status ibp_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                 ibp_err *err)
{
    char tmp[4200];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp)
        return ibp_err_set(err, IBP_E_RANGE, "%s: path too long", path);

    ibp_status st = IBP_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return ibp_err_set(err, IBP_E_IO, "%s: create: %s", tmp, strerror(errno));
    /* O_CREAT honours the umask; the caller's mode is what we promise. */
    if (fchmod(fd, mode) != 0) {
        st = ibp_err_set(err, IBP_E_IO, "%s: chmod: %s", tmp, strerror(errno));
        goto fail_fd;
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            st = ibp_err_set(err, IBP_E_IO, "%s: write: %s", tmp, strerror(errno));
            goto fail_fd;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        st = ibp_err_set(err, IBP_E_IO, "%s: fsync: %s", tmp, strerror(errno));
        goto fail_fd;
    }
    if (close(fd) != 0) {
        fd = -1;
        st = ibp_err_set(err, IBP_E_IO, "%s: close: %s", tmp, strerror(errno));
        goto fail_unlink;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        st = ibp_err_set(err, IBP_E_IO, "%s: rename to %s: %s", tmp, path, strerror(errno));
        goto fail_unlink;
    }
    return ibp_file_sync_dir(path, err);

fail_fd:
    close(fd);
fail_unlink:
    unlink(tmp);
    return st;
}

ibp_status ibp_file_read_all(const char *path, size_t max_len, char **out, size_t *out_len,
                             ibp_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return ibp_err_set(err, IBP_E_NOT_FOUND, "%s: no such file", path);
        return ibp_err_set(err, IBP_E_IO, "%s: open: %s", path, strerror(errno));
    }
    ibp_status st = IBP_OK;
    char *buf = NULL;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = ibp_err_set(err, IBP_E_IO, "%s: stat: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = ibp_err_set(err, IBP_E_IO, "%s: not a regular file", path);
        goto done;
    }
    if ((size_t)sb.st_size > max_len) {
        st = ibp_err_set(err, IBP_E_TOO_LARGE, "%s: %lld bytes is over the limit of %zu", path,
                         (long long)sb.st_size, max_len);
        goto done;
    }
    size_t cap = (size_t)sb.st_size + 1, used = 0;
    buf = malloc(cap);
    if (!buf) {
        st = ibp_err_set(err, IBP_E_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (;;) {
        if (used + 1 == cap) {
            /* The file grew since fstat; read on up to the limit. */
            if (cap > max_len) {
                st = ibp_err_set(err, IBP_E_TOO_LARGE, "%s: over the limit of %zu bytes", path,
                                 max_len);
                goto done;
            }
            char *nb = ibp_grow(buf, &cap, cap + 1, 1); /* doubles */
            if (!nb) {
                st = ibp_err_set(err, IBP_E_NOMEM, "%s: out of memory", path);
                goto done;
            }
            buf = nb;
        }
        ssize_t r = read(fd, buf + used, cap - 1 - used);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            st = ibp_err_set(err, IBP_E_IO, "%s: read: %s", path, strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        used += (size_t)r;
    }
    if (used > max_len) {
        st = ibp_err_set(err, IBP_E_TOO_LARGE, "%s: over the limit of %zu bytes", path, max_len);
        goto done;
    }
    buf[used] = '\0';
    *out = buf;
    buf = NULL;
    if (out_len)
        *out_len = used;
done:
    free(buf);
    close(fd);
    return st;
}

/* XSI strerror_r: thread-safe, unlike strerror(). */
static void errtext(int errnum, char *buf, size_t cap)
{
    if (strerror_r(errnum, buf, cap) != 0)
        snprintf(buf, cap, "error %d", errnum);
}

ibp_status ibp_file_read_config(const char *path, size_t max_len, char **out, size_t *out_len,
                                ibp_err *err)
{
    char etext[128];
    ibp_status st = IBP_OK;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        errtext(errno, etext, sizeof etext);
        return ibp_err_set(err, IBP_E_IO, "%s: cannot open: %s", path, etext);
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        errtext(errno, etext, sizeof etext);
        st = ibp_err_set(err, IBP_E_IO, "%s: cannot stat: %s", path, etext);
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = ibp_err_set(err, IBP_E_IO, "%s: not a regular file", path);
        goto out;
    }
    if ((uintmax_t)sb.st_size > max_len) {
        st = ibp_err_set(err, IBP_E_CONFIG, "%s: file is larger than %zu bytes", path, max_len);
        goto out;
    }
    if (!(buf = malloc((size_t)sb.st_size + 1))) {
        st = ibp_err_set(err, IBP_E_NOMEM, "%s: out of memory", path);
        goto out;
    }
    size_t len = fread(buf, 1, (size_t)sb.st_size, f);
    if (ferror(f)) {
        errtext(errno, etext, sizeof etext);
        st = ibp_err_set(err, IBP_E_IO, "%s: cannot read: %s", path, etext);
        goto out;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    buf = NULL;
out:
    free(buf);
    fclose(f);
    return st;
}
