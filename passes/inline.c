/* inline.c: replaces every call by a copy of the callee's body, so later passes (decompose,
 * fuse, codegen) see one flat function. Callees' symbols are bound to the caller's dims at each
 * call site (rewrite.c), and every copied op re-runs inference in the caller.
 * requires: a verified module; value_and_grad bodies built (the grad pass ran).
 * maintains: every function's signature and results; functions themselves (other callers and
 *            the API may still name them); value names of the caller.
 * breaks: call structure (no call ops remain); inlined values are unnamed temporaries. */
#include "passes.h"
#include "rewrite.h"

static bool has_call(const tir_func *f) {
    for (int k = 0; k < f->nops; k++)
        if (f->ops[k]->code == TIR_OP_CALL) return true;
    return false;
}

static tir_status inline_func(tir_func *f, tir_diag *d) {
    tir_rw rw;
    tir_status st = tir_rw_begin(&rw, f, d);
    if (st != TIR_OK) return st;
    for (int k = 0; k < rw.nold && st == TIR_OK; k++) {
        const tir_op *op = rw.old[k];
        if (op->code != TIR_OP_CALL) {
            if (!tir_rw_copy(&rw, op)) st = tir_rw_fail(d);
            continue;
        }
        tir_value **in = tir_rw_operands(&rw, op);
        tir_value **outs = malloc(sizeof *outs * (size_t)(op->nout ? op->nout : 1));
        if (!in || !outs) st = tir_diag_set(d, TIR_ERR_OOM, f->module, op->loc, "out of memory");
        else st = tir_rw_inline(f, op->callee, in, outs, false, d);
        if (st == TIR_OK) st = tir_rw_replace(&rw, op, outs);
        free(in);
        free(outs);
    }
    return tir_rw_end(&rw, st);
}

tir_status tir_pass_inline(tir_module *m, tir_diag *d) {
    return tir_rw_each_func(m, has_call, inline_func, d);
}
