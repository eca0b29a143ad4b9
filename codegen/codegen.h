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
    TIR_KP_DIM,    /* an i64 by value: `dim` evaluated under the call's bindings */
    TIR_KP_TMAP,   /* a 128-byte CUtensorMap by value (`.param .align 64 .b8 [128]`, read in
                      place by cp.async.bulk.tensor): a tiled view of buffer `index`, encoded at
                      launch from `tmap`'s dims under the call's bindings */
    TIR_KP_WORKSPACE /* a device pointer to the kernel's scratch (tir_kernel.workspace) */
} tir_kparam_kind;

/* The view a TIR_KP_TMAP describes. Dims are innermost first (dims[0] is contiguous); strides
 * are in elements (strides[0] is 1 and not stored); the launch checks what the driver needs
 * (16-byte aligned strides and base) and fails with a diagnostic otherwise. */
typedef struct tir_kparam_tmap {
    tir_dtype dtype;
    int rank;                  /* 1..5 */
    const tir_dim *dims[5];
    const tir_dim *strides[5]; /* strides[1..rank) */
    int box[5];                /* the tile one copy brings, elements per dim */
    int swizzle;               /* shared-memory swizzle in bytes: 0, 32, 64 or 128 */
} tir_kparam_tmap;

typedef struct tir_kparam {
    tir_kparam_kind kind;
    int index;             /* TIR_KP_BUFFER, TIR_KP_TMAP */
    const tir_dim *dim;    /* TIR_KP_DIM */
    tir_kparam_tmap tmap;  /* TIR_KP_TMAP */
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
    /* Bit j: a result with operand j's dims and element size may be written over operand j's
     * buffer (passes/plan_memory.c does so when operand j dies here). Codegen sets it only
     * where that is safe: every element of operand j is read only by the thread that writes
     * that same element of the result, before it writes it (a row kernel's write sweep is its
     * last read of each element), and operand j is not declared noalias/readonly (so it is not
     * read through the non-coherent cache, and LLVM keeps its loads before the stores). 0: never. */
    unsigned inplace_ok;
    /* Optional, per result (nout entries, malloc'd, freed by tir_kernel_release): result r may be
     * written over operand inplace_of[r] and over no other (-1: none); the planner then ignores
     * inplace_ok for this kernel, whose bits are left only for display. A kernel whose operands
     * a result of matching layout could take only one at a time needs it: a horizontal kernel
     * (codegen/fused_horizontal.c), where another part's result of the same layout writing
     * over this part's operand could land before this part's blocks read it; the pairing also
     * reaches past inplace_ok's 32 operands. NULL: inplace_ok alone. */
    int *inplace_of;
    /* A persistent kernel walks its work grid-stride from blockIdx.x: the launch clamps grid[0]
     * to `persistent` blocks per multiprocessor (0: an ordinary kernel). */
    int persistent;
    /* Scratch for reductions across blocks (codegen/fused.c's partials): when non-NULL the
     * launch allocates TIR_WORKSPACE_HEADER + grid[0] * workspace bytes (workspace: bytes per
     * block of the grid actually launched), zeroes the header (a ticket counter the blocks
     * count off, so the last one to finish combines the partials) and passes it as the
     * TIR_KP_WORKSPACE parameter. Nothing in it outlives the launch. */
    const tir_dim *workspace;
} tir_kernel;
#define TIR_WORKSPACE_HEADER 16

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
