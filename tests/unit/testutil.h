/* testutil.h: what every unit suite needs besides `check`: reading a whole file, finding files of
 * the source tree (ctest sets TIR_SOURCE_DIR), a seeded uniform generator, parsing a module
 * that must parse, and finding and running ptxas. Header-only, so each suite stays one file; include it after check.h. */
#ifndef TIR_TESTUTIL_H
#define TIR_TESTUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

/* random arguments for @func under bindings b from *rng: floats in ±[0.1, 1) (away from zero, of
 * both signs), integers in [0, 2) (valid indices of any dim >= 2); the test fails when @func is
 * missing or a shape does not evaluate */
static inline void tu_make_args(const tir_module *m, const char *func, const tir_bindings *b, tir_tensor **args,
                                uint64_t *rng) {
    const tir_func *f = tir_module_find(m, func);
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < f->nparams; i++) {
        const tir_type *t = &f->params[i]->type;
        int64_t dims[TIR_MAX_RANK];
        ck_assert_int_eq(tir_type_eval(t, b, dims), TIR_OK);
        args[i] = tir_tensor_new(t->dtype, t->rank, dims);
        ck_assert_ptr_nonnull(args[i]);
        for (int64_t e = 0; e < tir_tensor_numel(args[i]); e++) {
            double u = tu_urand(rng);
            double v = tir_dtype_is_float(t->dtype) ? (u < 0.5 ? -1 : 1) * (0.1 + 0.9 * tu_urand(rng)) : (double)(u < 0.5);
            tir_tensor_set(args[i], e, v);
        }
    }
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

/* ptxas -v -arch=arch on ptx, through a temporary file: 0 when it assembles, else its exit
 * status (-1 when it could not be run); its report (register counts, spills, complaints) in log */
static inline int tu_ptxas(const char *ptxas, const char *arch, const char *ptx, char *log, size_t n) {
    char path[] = "/tmp/tir_ptx_XXXXXX.ptx";
    log[0] = 0;
    int fd = mkstemps(path, 4);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        snprintf(log, n, "cannot write a temporary .ptx");
        if (fd >= 0) close(fd);
        return -1;
    }
    fputs(ptx, f);
    fclose(f);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' -arch=%s -v -o /dev/null '%s' 2>&1", ptxas, arch, path);
    FILE *p = popen(cmd, "r");
    if (!p) {
        unlink(path);
        snprintf(log, n, "cannot run ptxas");
        return -1;
    }
    size_t got = fread(log, 1, n - 1, p);
    log[got] = 0;
    int st = pclose(p);
    unlink(path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
