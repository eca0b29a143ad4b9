/* fused_horizontal.h: codegen of horizontal regions (fused ops with schedule kind="horizontal",
 * made by passes/fuse_horizontal.c, docs/tir.md §11.1): several independent elementwise parts,
 * each over its own shape, lowered to ONE kernel. Buffers follow codegen.h's convention (the
 * fused op's operands, then its results), so the runtime launches it like any other kernel. */
#ifndef TIR_FUSED_HORIZONTAL_H
#define TIR_FUSED_HORIZONTAL_H

#include "codegen.h"

/* a fused op whose schedule says kind="horizontal" */
static inline bool tir_fused_is_horizontal(const tir_op *op) {
    const tir_attr_value *k = tir_dict_get(tir_op_attr(op, "schedule"), "kind");
    return op->code == TIR_OP_FUSED && k && k->kind == TIR_ATTR_STR && k->u.s && strcmp(k->u.s, "horizontal") == 0;
}

/* Lowers a horizontal fused op into one kernel. TIR_ERR_UNSUPPORTED when a part holds an op
 * with no lowering here (a reduction, an op with no scalar form): the caller then runs the
 * members as kernels of their own (compiler/compile.c does). TIR_ERR_LLVM when LLVM's verifier
 * or emitter fails. */
tir_status tir_codegen_fused_horizontal(tir_context *ctx, const tir_op *op, int id,
                                        const tir_codegen_options *opts, tir_kernel *out, tir_diag *d);

#endif
