/* testutil.h: what every unit suite needs besides `check`: reading a whole file, and finding
 * files of the source tree (ctest sets TIR_SOURCE_DIR). Header-only, so each suite stays one file. */
#ifndef TIR_TESTUTIL_H
#define TIR_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>

/* The whole file, NUL-terminated (it may hold NULs of its own: *len says how long it is; len may
 * be NULL). NULL when it cannot be opened or read, or on OOM. Free with free(). */
static inline char *tu_read_file_len(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *s = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (s = malloc((size_t)n + 1))) {
        if (fread(s, 1, (size_t)n, f) != (size_t)n) {
            free(s);
            s = NULL;
        } else {
            s[n] = 0;
            if (len) *len = (size_t)n;
        }
    }
    fclose(f);
    return s;
}

static inline char *tu_read_file(const char *path) { return tu_read_file_len(path, NULL); }

/* a file of the source tree, e.g. tu_read_source("examples", "mlp.tir") */
static inline char *tu_read_source(const char *dir, const char *name) {
    const char *root = getenv("TIR_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", root ? root : ".", dir, name);
    return tu_read_file(path);
}

#endif
