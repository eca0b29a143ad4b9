/* adamw_src.h: the text of one AdamW step over tensors of the given shapes, as
 * scripts/gen_adamw.py writes it: the program the horizontal tests (tests/unit/test_horizontal.c,
 * tests/gpu/gpu_horizontal.c) merge into one launch. Header-only. */
#ifndef TIR_TESTS_ADAMW_SRC_H
#define TIR_TESTS_ADAMW_SRC_H

#include <stdio.h>
#include <stdlib.h>

/* func @name over n tensors of shapes ("7", "N, 3"): malloc'd text, NULL when out of memory */
static inline char *adamw_src(const char *name, int n, const char *const *shapes) {
    size_t cap = 4096 + (size_t)n * 1024, k = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    k += (size_t)snprintf(s + k, cap - k, "func @%s(", name);
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(s + k, cap - k, "%s%%p%d: f32[%s], %%g%d: f32[%s], %%m%d: f32[%s], %%v%d: f32[%s]",
                              i ? ", " : "", i, shapes[i], i, shapes[i], i, shapes[i], i, shapes[i]);
    k += (size_t)snprintf(s + k, cap - k, ") -> (");
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(s + k, cap - k, "%sf32[%s], f32[%s], f32[%s]", i ? ", " : "", shapes[i], shapes[i],
                              shapes[i]);
    k += (size_t)snprintf(s + k, cap - k, ") {\n");
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(s + k, cap - k,
                              "  %%m%d_1 = add(mul(%%m%d, 0.9), mul(%%g%d, 0.1))\n"
                              "  %%v%d_1 = add(mul(%%v%d, 0.999), mul(mul(%%g%d, %%g%d), 0.001))\n"
                              "  %%d%d = add(mul(sqrt(%%v%d_1), 10.022515922231536), 1e-08)\n"
                              "  %%p%d_1 = sub(mul(%%p%d, 0.99999), mul(div(%%m%d_1, %%d%d), 0.0015353399327969))\n",
                              i, i, i, i, i, i, i, i, i, i, i, i, i);
    k += (size_t)snprintf(s + k, cap - k, "  return ");
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(s + k, cap - k, "%s%%p%d_1, %%m%d_1, %%v%d_1", i ? ", " : "", i, i, i);
    snprintf(s + k, cap - k, "\n}\n");
    return s;
}

#endif
