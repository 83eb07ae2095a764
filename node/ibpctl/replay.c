/*
 * `ibpctl replay ...`: runs `ibp-persist replay ...` with the same arguments,
 * so operators find every operation under ibpctl. Replay needs the persist
 * configuration and MariaDB; it lives in ibp-persist, which prints the
 * progress line (messages/s, position, ETA). ibp-persist is looked for next
 * to ibpctl (<prefix>/bin of an install), then, when ibpctl runs from the
 * build tree (IBP_BUILD_DIR), where the build tree put it, then on PATH.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ibpctl.h"

#define PERSIST "ibp-persist"

static void try_exec(const char *path, char **argv)
{
    if (access(path, X_OK) == 0)
        execv(path, argv);
}

int ibpctl_cmd_replay(int argc, char **argv)
{
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args) {
        fprintf(stderr, "ibpctl replay: out of memory\n");
        return 1;
    }
    args[0] = PERSIST;
    args[1] = "replay";
    for (int i = 1; i < argc; i++)
        args[i + 1] = argv[i];

    char self[PATH_MAX], next_to_us[PATH_MAX + 32];
    bool in_build_tree = false;
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
#ifdef IBP_BUILD_DIR
        size_t blen = strlen(IBP_BUILD_DIR);
        in_build_tree = strncmp(self, IBP_BUILD_DIR, blen) == 0 && self[blen] == '/';
#endif
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            if (snprintf(next_to_us, sizeof next_to_us, "%s/" PERSIST, self) <
                (int)sizeof next_to_us)
                try_exec(next_to_us, args);
        }
    }
#ifdef IBP_PERSIST_BUILD_PATH
    if (in_build_tree)
        try_exec(IBP_PERSIST_BUILD_PATH, args);
#else
    (void)in_build_tree;
#endif
    execvp(PERSIST, args);
    fprintf(stderr, "ibpctl replay: cannot run %s: %s (install it next to ibpctl or on PATH)\n",
            PERSIST, strerror(errno));
    free(args);
    return 1;
}
