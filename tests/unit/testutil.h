/* testutil.h: what every unit suite needs besides `check`: reading a whole file, finding files of
 * the source tree (ctest sets TIR_SOURCE_DIR), a seeded uniform generator, and parsing a module
 * that must parse. Header-only, so each suite stays one file; include it after check.h. */
#ifndef TIR_TESTUTIL_H
#define TIR_TESTUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ir.h"

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

/* uniform in (0, 1) from *state (splitmix64): each suite keeps its own state and seed */
static inline double tu_urand(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

/* src parsed in ctx as "test.tir"; the test fails (with the diagnostic and the source) if it
 * does not parse */
static inline tir_module *tu_parse(tir_context *ctx, const char *src) {
    tir_module *m = NULL;
    tir_diag d;
    tir_status st = tir_module_parse(ctx, src, "test.tir", &m, &d);
    ck_assert_msg(st == TIR_OK, "parse failed: %s:%d:%d: %s\n%s", d.file, d.line, d.col, d.msg, src);
    return m;
}

/* ptxas on PATH, else /usr/local/cuda/bin/ptxas, written to out (n bytes); false when neither runs */
static inline bool tu_find_ptxas(char *out, size_t n) {
    const char *path = getenv("PATH");
    for (const char *p = path; p && *p;) {
        const char *e = strchr(p, ':');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > 0 && len + 8 < n) {
            snprintf(out, n, "%.*s/ptxas", (int)len, p);
            if (access(out, X_OK) == 0) return true;
        }
        if (!e) break;
        p = e + 1;
    }
    snprintf(out, n, "/usr/local/cuda/bin/ptxas");
    return access(out, X_OK) == 0;
}

#endif
