/*
 * Replays a corpus through a harness without libFuzzer (the normal gcc build):
 *     <name>_fuzz_replay DIR_OR_FILE...
 * runs LLVMFuzzerTestOneInput once over every regular file (directories one
 * level deep, in name order). Exit 0 when every input ran; a crash aborts. At
 * least one input must exist, so a lost corpus is noticed.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf)
            abort();
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap)
            break;
        cap *= 2;
        buf = realloc(buf, cap);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "replay: %s: read error\n", path);
        free(buf);
        return -1;
    }
    /* An exact-size copy, so reads past the end are caught by sanitizers. */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact)
        abort();
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    size_t runs = 0;
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            failed = 1;
            continue;
        }
        if (!S_ISDIR(sb.st_mode)) {
            if (run_file(argv[i]) == 0)
                runs++;
            else
                failed = 1;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            failed = 1;
            continue;
        }
        size_t n = 0, cap = 0;
        char **files = NULL;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                files = realloc(files, cap * sizeof *files);
                if (!files)
                    abort();
            }
            size_t l = strlen(argv[i]) + strlen(e->d_name) + 2;
            files[n] = malloc(l);
            if (!files[n])
                abort();
            snprintf(files[n], l, "%s/%s", argv[i], e->d_name);
            n++;
        }
        closedir(d);
        if (n)
            qsort(files, n, sizeof *files, name_cmp);
        for (size_t k = 0; k < n; k++) {
            if (stat(files[k], &sb) == 0 && S_ISREG(sb.st_mode)) {
                if (run_file(files[k]) == 0)
                    runs++;
                else
                    failed = 1;
            }
            free(files[k]);
        }
        free(files);
    }
    printf("replay: %zu inputs\n", runs);
    if (runs == 0) {
        fprintf(stderr, "replay: no inputs\n");
        return 1;
    }
    return failed;
}
