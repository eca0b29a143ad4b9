/* codegen.c: codegen.h's entry points: one core op -> one PTX kernel. Dispatches on the op's
 * kind flags (ops.def) to the lowering files, then verifies, optimises and emits (kernel.c).
 * Every kernel made here is correct for any grid of at least one block (all loops are
 * grid-stride or block-stride), so the runtime may clamp grids to the device's limits. */
#include <stdio.h>

#include "cg.h"
#include "fused.h"
#include "matmul_mma.h"

/* archs this build emits for: LLVM 22's NVPTX knows them and CUDA 13's ptxas assembles our
 * kernels for them (it dropped sm_70/sm_72, and sm_101 became sm_110) */
static const char *const archs[] = {
    "sm_75",  "sm_80",   "sm_86",  "sm_87",   "sm_89",  "sm_90",   "sm_90a", "sm_100", "sm_100a",
    "sm_103", "sm_103a", "sm_110", "sm_110a", "sm_120", "sm_120a", "sm_121", "sm_121a",
};

bool tir_codegen_arch_ok(const char *arch) {
    if (!arch) return false;
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (strcmp(arch, archs[i]) == 0) return true;
    return false;
}

void tir_kernel_release(tir_kernel *k) {
    if (!k) return;
    free(k->ptx);
    free(k->params);
    free(k->inplace_of);
    k->ptx = NULL;
    k->params = NULL;
    k->inplace_of = NULL;
    k->nparams = 0;
}

tir_status tir_codegen_op(tir_context *ctx, const tir_op *op, int id,
                          const tir_codegen_options *opts, tir_kernel *out, tir_diag *d) {
    memset(out, 0, sizeof *out);
    out->alias_of = -1;
    out->init_from = -1;
    const tir_module *m = op->nout > 0 && op->out[0]->func ? op->out[0]->func->module : NULL;
    const char *arch = opts && opts->arch ? opts->arch : "sm_90a";
    int opt = opts ? opts->opt_level : 2;
    if (!tir_codegen_arch_ok(arch))
        return tir_diag_set(d, TIR_ERR_UNSUPPORTED, m, op->loc, "codegen: unsupported arch '%s'", arch);
    if (op->code == TIR_OP_FUSED) return tir_codegen_fused(ctx, op, id, opts, out, d);
    unsigned fl = tir_ops[op->code].flags;
    if ((fl & TIR_F_COMPOSITE) || op->code == TIR_OP_CALL)
        return tir_diag_set(d, TIR_ERR_UNSUPPORTED, m, op->loc,
                            "codegen: %s must be decomposed or inlined before codegen",
                            tir_ops[op->code].name);
    /* 16-bit float matmuls go to the tensor cores (mma.sync, or wgmma on sm_90a) */
    if (op->code == TIR_OP_MATMUL && tir_matmul_mma_ok(op, opts))
        return tir_codegen_matmul_mma(ctx, op, id, opts, NULL, out, d);
    tir_status (*lower)(cg *, const char *) = NULL;
    if (fl & (TIR_F_UNARY | TIR_F_BINARY | TIR_F_ELEMWISE)) lower = cg_lower_elementwise;
    else if (fl & TIR_F_REDUCE) lower = cg_lower_reduce;
    else if (fl & TIR_F_MOVEMENT) lower = cg_lower_movement;
    else if (fl & TIR_F_INDEX) lower = cg_lower_index;
    else if (fl & TIR_F_CREATION) lower = cg_lower_creation;
    else if (op->code == TIR_OP_MATMUL) lower = cg_lower_matmul;
    if (!lower)
        return tir_diag_set(d, TIR_ERR_UNSUPPORTED, m, op->loc, "codegen: no lowering for %s",
                            tir_ops[op->code].name);

    snprintf(out->name, sizeof out->name, "tir_%s_%d", tir_ops[op->code].name, id);
    cg g;
    cg_init(&g, ctx, op, arch, opt, out, d);
    tir_status s = g.st;
    if (s == TIR_OK) s = lower(&g, out->name);
    if (s == TIR_OK && out->alias_of < 0) s = cg_emit(&g, opt);
    cg_dispose(&g);
    if (s != TIR_OK) {
        tir_kernel_release(out);
        out->alias_of = -1;
    }
    return s;
}
