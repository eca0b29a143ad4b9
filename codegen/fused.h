/* fused.h: codegen of fused regions (docs/tir.md §11): one `fused` op, its member ops and the
 * schedule the fusion pass recorded, lowered to ONE kernel. The kernel's buffers follow
 * codegen.h's convention (the fused op's operands, then its results), so the runtime launches
 * it like any other op's kernel. */
#ifndef TIR_FUSED_H
#define TIR_FUSED_H

#include "codegen.h"

/* Lowers a TIR_OP_FUSED op into one kernel. TIR_ERR_UNSUPPORTED when a member or a region
 * shape has no fused lowering yet: the caller then runs the members as kernels of their own
 * (compiler/compile.c does). TIR_ERR_LLVM when LLVM's verifier or emitter fails. */
tir_status tir_codegen_fused(tir_context *ctx, const tir_op *op, int id,
                             const tir_codegen_options *opts, tir_kernel *out, tir_diag *d);

#endif
