/* decompose.c: replaces every composite op (TIR_F_COMPOSITE: linear, softmax, rmsnorm,
 * attention, ...) by its decomposition into core ops (tir_decompose, ir/composite.c), so codegen
 * only meets core ops. Runs after grad: gradients of composites use their own rules, built from
 * the composite before it is decomposed.
 * requires: a verified module.
 * maintains: signatures, results, the names of composite results (moved to their replacement).
 * breaks: composite ops (none remain); their hand-tuned kernel templates no longer apply. */
#include "passes.h"
#include "rewrite.h"

static bool has_composite(const tir_func *f) {
    for (int k = 0; k < f->nops; k++)
        if (tir_ops[f->ops[k]->code].flags & TIR_F_COMPOSITE) return true;
    return false;
}

static tir_status decompose_func(tir_func *f, tir_diag *d) {
    tir_rw rw;
    tir_status st = tir_rw_begin(&rw, f, d);
    if (st != TIR_OK) return st;
    for (int k = 0; k < rw.nold && st == TIR_OK; k++) {
        const tir_op *op = rw.old[k];
        if (!(tir_ops[op->code].flags & TIR_F_COMPOSITE)) {
            if (!tir_rw_copy(&rw, op)) st = tir_rw_fail(d);
            continue;
        }
        /* tir_decompose reads operands from the op: hand it a copy whose operands are the
         * rebuilt function's values */
        tir_op tmp = *op;
        tir_value **in = tir_rw_operands(&rw, op);
        tir_value **outs = calloc((size_t)(op->nout ? op->nout : 1), sizeof *outs);
        if (!in || !outs) {
            st = tir_diag_set(d, TIR_ERR_OOM, f->module, op->loc, "out of memory");
        } else {
            tmp.in = in;
            tir_ib b = {f, op->loc, d, false};
            st = tir_decompose(&b, &tmp, outs);
            if (st == TIR_OK && b.failed) st = tir_rw_fail(d);
        }
        for (int i = 0; st == TIR_OK && i < op->nout; i++)
            if (!outs[i] || !tir_type_equal(&outs[i]->type, &op->out[i]->type))
                st = tir_diag_set(d, TIR_ERR_INTERNAL, f->module, op->loc,
                                  "decomposition of %s changed its result type",
                                  tir_ops[op->code].name);
        if (st == TIR_OK) st = tir_rw_replace(&rw, op, outs);
        free(in);
        free(outs);
    }
    return tir_rw_end(&rw, st);
}

tir_status tir_pass_decompose(tir_module *m, tir_diag *d) {
    return tir_rw_each_func(m, has_composite, decompose_func, d);
}
