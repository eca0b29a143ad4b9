/* passes.h: every IR-to-IR pass. Each lives in its own file under passes/, opening with its
 * contract (requires / maintains / breaks). Every pass leaves a module that verifies and prints
 * as valid .tir, and the interpreter gives the same results before and after it. */
#ifndef TIR_PASSES_H
#define TIR_PASSES_H

#include "ir.h"

/* passes/grad.c: gives every value_and_grad definition its body (reverse mode). */
tir_status tir_pass_grad(tir_module *m, tir_diag *d);
/* passes/inline.c: replaces every call by the callee's body. */
tir_status tir_pass_inline(tir_module *m, tir_diag *d);
/* passes/simplify.c: constant folding, algebraic identities, CSE, DCE. */
tir_status tir_pass_simplify(tir_module *m, tir_diag *d);
/* the same, counting what each rule did (over every function and sweep) */
typedef struct tir_simplify_stats {
    int folded;     /* ops replaced by a full() constant */
    int identities; /* ops replaced by an operand (x+0, reshape to its own shape, ...) */
    int cse;        /* ops replaced by an equal earlier op */
    int dce;        /* ops removed as unused */
    int sweeps;     /* passes over a function until nothing changed */
} tir_simplify_stats;
tir_status tir_pass_simplify_stats(tir_module *m, tir_simplify_stats *stats, tir_diag *d);
/* passes/decompose.c: composite ops into core ops (ir/composite.c). */
tir_status tir_pass_decompose(tir_module *m, tir_diag *d);
/* passes/fuse.c: groups elementwise ops, reductions and the movement ops feeding them into fused
 * regions, one per kernel, each with its schedule (docs/tir.md §11). Runs after decompose. */
tir_status tir_pass_fuse(tir_module *m, tir_diag *d);
/* What tir_pass_fuse would make of m, without changing it: every kernel with its ops, schedule,
 * reads and writes, and every kernel boundary with its reason (for `tirc explain`). */
tir_status tir_fuse_explain(tir_module *m, FILE *out, tir_diag *d);

#endif
