/* Helpers shared by the unit tests: private temporary directories. */
#ifndef IBP_TEST_UTIL_H
#define IBP_TEST_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int test_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Creates a fresh directory under $TMPDIR (or /tmp); returns a malloc'd path. */
static inline char *test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/ibp-unit.XXXXXX", base && *base ? base : "/tmp");
    char *dir = mkdtemp(tmpl);
    if (!dir) {
        perror("mkdtemp");
        abort();
    }
    return strdup(dir);
}

/* Removes a directory tree made by test_tmpdir() and frees the path. */
static inline void test_rmdir(char *dir)
{
    if (!dir)
        return;
    nftw(dir, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* Joins dir and name into a static-per-call buffer owned by the caller. */
static inline void test_path(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* Writes text to path with mode. */
static inline void test_write(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        abort();
    }
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

#endif
