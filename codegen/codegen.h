/* codegen.h: the boundary between codegen/ (IR op -> PTX kernel through the LLVM C API) and
 * runtime/ + compiler/ (which load, plan and launch kernels). Nothing else crosses it.
 *
 * A kernel is described symbolically: its parameters and launch geometry are tir_dim expressions
 * over the function's symbols, evaluated at launch under the bindings of that call, so one PTX
 * serves every binding (DESIGN §3: "One compiled program serves every binding of its symbols").
 */
#ifndef TIR_CODEGEN_H
#define TIR_CODEGEN_H

#include "ir.h"

typedef enum tir_kparam_kind {
    TIR_KP_BUFFER, /* a device pointer: operand `index` of the op (0..nin-1), then results (nin..) */
    TIR_KP_DIM     /* an i64 by value: `dim` evaluated under the call's bindings */
} tir_kparam_kind;

typedef struct tir_kparam {
    tir_kparam_kind kind;
    int index;          /* TIR_KP_BUFFER */
    const tir_dim *dim; /* TIR_KP_DIM */
} tir_kparam;

typedef struct tir_kernel {
    char name[64];        /* entry symbol in ptx */
    char *ptx;            /* malloc'd PTX text of a module holding this one entry */
    int nparams;
    tir_kparam *params;   /* malloc'd, in the entry's parameter order */
    const tir_dim *grid[3];  /* blocks per grid axis, evaluated at launch (clamped >= 1);
                                tir_codegen_op's kernels loop grid- or block-stride, so any grid
                                of at least one block is correct for them and clamping grid[0]
                                to the device's limit is safe */
    int block[3];            /* threads per block */
    int shared_bytes;        /* dynamic shared memory */
    /* When the op needs no kernel (a reshape of a contiguous buffer), alias_of >= 0 names the
     * operand whose buffer the result reuses, and ptx is NULL. */
    int alias_of;
    /* Some kernels accumulate (scatter_add, atomics): the runtime zeroes or copies into the
     * output first: init_from >= 0 copies operand init_from into result 0 before launch;
     * init_zero zeroes result 0. */
    int init_from;
    bool init_zero;
} tir_kernel;

typedef struct tir_codegen_options {
    const char *arch;     /* "sm_90a" (default), "sm_80", ... */
    int opt_level;        /* 0..3, default 2 */
} tir_codegen_options;

/* Lower one core op (no composites: passes/decompose.c runs first; no calls: passes/inline.c)
 * to one kernel. Kernel names are made unique by `id`. TIR_ERR_UNSUPPORTED for ops it can't
 * lower, TIR_ERR_LLVM when LLVM's verifier or emitter fails (with LLVM's message). */
tir_status tir_codegen_op(tir_context *ctx, const tir_op *op, int id,
                          const tir_codegen_options *opts, tir_kernel *out, tir_diag *d);
void tir_kernel_release(tir_kernel *k);

/* The PTX ISA version and target features used for an arch ("sm_90a" -> ptx 8.x). */
bool tir_codegen_arch_ok(const char *arch);

#endif
