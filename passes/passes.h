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
/* passes/tile.c: every 16-bit matmul becomes a fused region with its elementwise epilogue and a
 * schedule {kind="matmul", ...} holding its tiling (docs/tir.md §11). Runs before fuse. */
tir_status tir_pass_tile(tir_module *m, tir_diag *d);
/* The tiling tile records for a matmul of `batch` x [M, K] x [K, N] (a size < 0 is symbolic) on
 * sm_90a: block tile, warp grid, pipeline depth, rasterisation group, wgmma, split-K. */
typedef struct tir_tile_config {
    int bm, bn, bk, warps_m, warps_n, stages, group_m, split_k;
    bool wgmma;
} tir_tile_config;
void tir_tile_pick(int64_t batch, int64_t M, int64_t N, int64_t K, tir_tile_config *cfg);
/* passes/fuse.c: groups elementwise ops, reductions and the movement ops feeding them into fused
 * regions, one per kernel, each with its schedule (docs/tir.md §11). Runs after decompose. */
tir_status tir_pass_fuse(tir_module *m, tir_diag *d);
/* passes/fuse_horizontal.c: merges independent elementwise kernels into kind="horizontal"
 * regions (several tensors per launch, docs/tir.md §11.1). Runs after fuse. */
tir_status tir_pass_fuse_horizontal(tir_module *m, tir_diag *d);
/* What tir_pass_fuse would make of m, without changing it: every kernel with its ops, schedule,
 * reads and writes, and every kernel boundary with its reason (for `tirc explain`). */
tir_status tir_fuse_explain(tir_module *m, FILE *out, tir_diag *d);

/* passes/plan_memory.c: where each value of a compiled program lives during a run, for one
 * binding (liveness reuse, in place, donated arguments); the executor allocates one arena from
 * it. Value ids index nbytes/types; steps are in launch order. */
typedef struct tir_mem_step {
    int nin, nout;
    const int *in, *out;  /* value ids */
    int alias_of;         /* out[0] is a view of operand alias_of (no kernel); -1 none */
    unsigned inplace_ok;  /* bit j: a result may be written over operand j (tir_kernel.inplace_ok) */
    const int *inplace_of; /* per result: the one operand it may be written over, -1 none
                              (tir_kernel.inplace_of); when set, inplace_ok is not read */
} tir_mem_step;
typedef struct tir_mem_problem {
    int nvalues;
    const size_t *nbytes;      /* per value, under the binding */
    const tir_type *types;     /* per value (in place needs equal dims); NULL: bytes alone */
    int nparams, nres, nsteps;
    const int *params, *res;   /* value ids */
    const tir_mem_step *steps;
    bool params_external;      /* parameters stay in the caller's buffers (else: in the arena) */
    const bool *donatable;     /* per parameter, external ones: its buffer may be overwritten */
    bool results_external;     /* results get allocations of their own (handed to the caller) */
} tir_mem_problem;
typedef enum tir_mem_where { TIR_MEM_ARENA, TIR_MEM_PARAM, TIR_MEM_OWN } tir_mem_where;
typedef struct tir_mem_slot {
    tir_mem_where where;
    int param;        /* TIR_MEM_PARAM: whose buffer; TIR_MEM_ARENA: the parameter copied in, or -1 */
    size_t offset;    /* TIR_MEM_ARENA: in the arena */
    size_t size;      /* bytes: the biggest value it holds */
    int nvalues;      /* values (not views) that live in it, one after another */
} tir_mem_slot;
typedef struct tir_mem_plan {
    int nvalues;
    int *slot;        /* per value: its slot; -1 none (never materialised) */
    int *inplace_of;  /* per value: the operand it was written over in place; -1 */
    int nslots;
    tir_mem_slot *slots;
    size_t arena_bytes, own_bytes, param_bytes;
    size_t peak_bytes;  /* arena + own + external parameters: all that is held during the run */
    size_t naive_bytes; /* every value (and parameter) a buffer of its own, 256-byte aligned */
    size_t live_bytes;  /* the most bytes live at once, aligned: the least any placement needs */
    int n_inplace, n_reused;
} tir_mem_plan;
tir_status tir_plan_memory(const tir_mem_problem *pb, tir_mem_plan *out, tir_diag *d);
void tir_mem_plan_free(tir_mem_plan *p);

/* passes/schedule.c: records on every fused region (but "matmul" and "horizontal" ones) the
 * schedule codegen/fused.c follows: kind, vector width, warps, rows per block, rows in registers,
 * sweeps over a row, online max-sum, grid bound (docs/tir.md §11.1). Runs after fuse. */
tir_status tir_pass_schedule(tir_module *m, tir_diag *d);
/* TIR_SCHEDULE="key=value,..." from the environment (a tuning aid): replaces the integer and
 * boolean entries of those names among the n entries of a schedule being decided */
void tir_schedule_overrides(int n, tir_attr_value *s);
/* How a row region's reductions are computed (passes/schedule.c counts the sweeps into the
 * schedule; codegen/fused.c follows the same plan). Reductions in region program order:
 *   FOLD    folded element by element in stats sweep `level` (1, 2, ...): reductions whose
 *           operands depend on no reduction share sweep 1, those that need sweep-1 values sweep 2...
 *   DUP     the same reduction as slot `of` (same op, operand and axes; keepdim aside): no work
 *   ONLINE  sum(exp(sub(X, m))) in f32/f64 with m = max(X) in slot `of`: folded in m's sweep
 *           with the online rescaling (Milakov & Gimelshein), only when `online` is asked for
 *   PICK    sum(where(eq(iota along the row, t), A, 0)) with t constant along the row: A at
 *           t, one load per row once the sweeps it depends on are done (no sweep of its own)
 * `level` is the sweep a FOLD or ONLINE slot is folded in, and for a PICK the sweep before which
 * it is computed. nsweeps counts the stats sweeps (levels holding a FOLD).
 *   GRID    a reduction across rows: over every axis (a total) or over every row axis (a
 *           column sum, `column`) of F, or over every axis of a value per row (`rowval`: the
 *           per-row losses), folded into per-thread partials in the write sweep, combined
 *           over the blocks by the last block to finish; level TIR_ROW_GRID_LEVEL, and so is
 *           the level of whatever depends on it (such a row reduction cannot be lowered)
 * rowmask: the axes a row spans (the first innermost-suffix reduction short of all axes; the
 * last axis when every reduction reduces all of a rank >= 2 shape). */
#define TIR_ROW_GRID_LEVEL 1000000
#define TIR_ROW_MAX_ONLINE 4 /* online sums riding on one max */
typedef enum { TIR_RR_FOLD, TIR_RR_DUP, TIR_RR_ONLINE, TIR_RR_PICK, TIR_RR_GRID } tir_rr_kind;
typedef struct tir_row_red {
    const tir_op *op;
    tir_rr_kind kind;
    int of;                           /* DUP, ONLINE: the slot it follows */
    int level;
    const tir_value *pick, *pick_idx; /* PICK: A and t */
    bool column;                      /* GRID: over the row axes only (a column sum) */
    bool rowval;                      /* GRID: a total of a value per row (folded once a row) */
} tir_row_red;
typedef struct tir_row_plan {
    tir_row_red *r;                   /* malloc'd, nred entries */
    int nred, nsweeps, nonline, npick, ndup, ngrid, nrowval;
    unsigned rowmask;
    const tir_type *F;                /* the rows' shape (rowmask's reduction's operand) */
} tir_row_plan;
/* the plan of region R's reductions (all over one F and one set of axes, as fuse makes them);
 * false when out of memory */
bool tir_fused_row_plan(const tir_func *R, bool online, tir_row_plan *out);
void tir_fused_row_plan_free(tir_row_plan *p);

#endif
