/* fused_eval.h: the elementwise evaluator that the fused-region kernels share (codegen/fused.c
 * for one region, codegen/fused_horizontal.c for the parts of a horizontal one; docs/tir.md §11).
 *
 * A value of a region is evaluated at a coordinate vector of its own shape by walking back
 * through its producers (elementwise ops, full and iota, the index maps broadcast, reshape,
 * transpose and slice) to the region's parameters, which are loaded from global memory, and,
 * when the caller gives a reduction-values array, to reductions already folded for the current
 * row. Evaluations are memoised on (value, coordinates): a value read by several members, or at
 * one coordinate by several results, is computed and loaded once. Each op is lowered by
 * cg_member (codegen/member.c), the lowering every elementwise kernel uses (16-bit floats
 * compute in f32 and round at each op's output, as the interpreter does), so grouping never
 * changes a result.
 *
 * Lanes: with vec > 1 a thread evaluates vec consecutive elements along one axis at once (the
 * crd's `lane` axis holds c + j in lane j). A parameter read along its innermost axis is one
 * vector load (16 bytes when its offset is provably a multiple of vec; aligned bf16 pairs come
 * as 32-bit words), results are written with one vector store. Buffers are assumed 16-byte
 * aligned (the runtime's allocations are): no access promises more. */
#ifndef TIR_FUSED_EVAL_H
#define TIR_FUSED_EVAL_H

#include "cg.h"

#define FE_MAXV 8 /* lanes per thread: 16 bytes of bf16 */
#define FE_MAX_STAGED 8   /* parameters a row stage holds at most */
#define FE_MAX_PENDING 64 /* stage stores held back at once */

/* a coordinate vector of some shape, for all lanes */
typedef struct fe_crd {
    int rank;
    LLVMValueRef c[TIR_MAX_RANK];
    int lane;              /* the axis holding c[lane] + j in lane j; -1: every lane alike */
    bool aligned;          /* c[lane] is a multiple of the lane count */
    LLVMValueRef flat;     /* row-major flat index of c in flat_t, or NULL */
    const tir_type *flat_t;
} fe_crd;

typedef struct fe_memo {
    const tir_value *v;
    fe_crd co;
    LLVMValueRef lane[FE_MAXV];
} fe_memo;

/* The evaluation context: the kernel being built, the region, the lane count, the memo (the
 * caller resets nm to forget what is no longer in scope: a loop iteration's values; it frees m)
 * and, optionally, by region value id, the value of each reduction for the current row
 * (fused.c's rows; NULL: a reduction is unsupported). */
typedef struct fe_ctx {
    cg *g;
    const tir_func *R;
    int vec;
    fe_memo *m;
    int nm, cap;
    LLVMValueRef *red;
    /* by value id: an f32 value whose every use only rounds it to a 16-bit float, sums it, or
     * passes it on (scaled) to such uses: its exp and division may take the MUFU forms
     * (fe_approx_set); computed at the first evaluation, freed by the kernel's builder */
    unsigned char *approx;
    bool approx_done;
    /* A streamed row staged in shared memory (codegen/fused.c, schedule stage_row): in mode 1
     * (the first stats sweep) each 16-byte load of an operand of the row space at a row
     * coordinate is also stored to the stage, in mode 2 (later sweeps) such loads read the stage.
     * A thread reads back only what it stored itself (every sweep gives a thread the same
     * elements), so no barrier is needed. */
    int stage_mode;
    LLVMValueRef stage_smem;        /* the dynamic shared memory, i8 addrspace(3) */
    LLVMValueRef stage_row;         /* the row's first flat index */
    const tir_type *stage_F;        /* the row space */
    int64_t stage_L, stage_cap, stage_used;
    int64_t stage_off[FE_MAX_STAGED]; /* by parameter index: its row's byte offset, -1 none */
    /* mode 1's stores, held back until fe_stage_flush: a store right behind its load would make
     * the thread wait for that load before it issues the next */
    LLVMValueRef pend_v[FE_MAX_PENDING], pend_p[FE_MAX_PENDING];
    unsigned pend_a[FE_MAX_PENDING];
    int npend;
} fe_ctx;

/* emits the stage stores held back (fused_eval.h: stage mode 1) */
void fe_stage_flush(fe_ctx *f);

/* The values of R whose MUFU forms (exp, division) cannot change a result beyond the
 * comparison's tolerance, by value id: FE_APPROX for f32 values (not results of R) used only by
 * casts to bf16/f16, by float sums and means, and by neg, mul, div, where (as a branch) and
 * index maps whose results are such values: along such a chain relative errors only add (k fast
 * ops of 2^-21: k * 2^-21), so a 16-bit rounding flips only where the exact value lies within
 * that of a tie (by one 16-bit ulp), and a sum's terms move by less than its own f32 rounding
 * bound. FE_APPROX_16 where no sum is among the uses: every path ends in a 16-bit rounding, so
 * exp may drop its correction term too (2^-22 + |x| * 2^-23.5 relative: below 2^-15 for any
 * finite e^x, far inside bf16's and f16's half ulp of 2^-9 and 2^-12). NULL when out of memory
 * (then nothing is approximated). The ops in ignore (reductions that never evaluate their input:
 * an online sum computes its own terms) do not count as uses. */
enum { FE_APPROX = 1, FE_APPROX_16 = 2 };
unsigned char *fe_approx_set(const tir_func *R, const tir_op *const *ignore, int nignore);

/* the same dims and element size: one may be written over the other */
bool fe_same_layout(const tir_type *a, const tir_type *b);
/* another operand of the fused op is a view of operand j's storage (or j of its): its reads of
 * that memory go by its own indices, so j may not be written over in place */
bool fe_shares_storage(const tir_op *fop, int j);
/* noalias on every buffer of the kernel and readonly on its nin operands, but for those marked
 * plain (written over in place, or holding an operand written over): operands are then read
 * with ld.global.nc and LLVM may move loads past stores, plain ones keep their order */
void fe_mark_buffers(cg *g, int nin, const bool *plain);

/* A thread axis (schedule thread_axis, part_thread_axes; docs/tir.md §11.1): axis *ta of t, not
 * the innermost, of constant size 1..4, that one thread walks whole with constant coordinates.
 * Returns its size D and sets *it to t with the axis collapsed (the threads' space); a request
 * that is not such an axis gives *ta = -1, D = 1 and *it = t. */
int64_t fe_thread_space(tir_context *c, const tir_type *t, int *ta, tir_type *it);
/* the coordinates of the D elements of t a thread owns: base (a flat index of it, a multiple of
 * f->vec, the lanes along the innermost axis) at each coordinate 0..D-1 along ta (co[0] alone
 * when ta < 0) */
void fe_thread_crds(fe_ctx *f, const tir_type *t, const tir_type *it, LLVMValueRef base, int ta, int64_t D, fe_crd *co);
/* results r0 .. r0+nr-1 of region R at co[0..n): when prefetch, every load issued before the
 * math that uses the first; every result evaluated before the first store; vector stores into
 * bufs[0..nr) */
void fe_write_results(fe_ctx *f, const tir_func *R, int r0, int nr, const fe_crd *co, int n, LLVMValueRef *bufs, bool prefetch);

/* a schedule's integer (or bool) entry, or dflt */
int64_t fe_sched_int(const tir_attr_value *s, const char *key, int64_t dflt);
/* a schedule's vector request as a lane count: the largest power of two <= v and FE_MAXV */
int fe_clamp_vec(int64_t v);

/* coordinates of x, which broadcasts (NumPy-aligned) to the shape ot that co indexes */
void fe_bcast_crd(cg *g, const fe_crd *co, const tir_type *ot, const tir_type *xt, fe_crd *xc);

/* v at co: f->vec compute values (cg_ctype of v's dtype) into out; failures are recorded in
 * f->g (cg_fail: TIR_ERR_UNSUPPORTED for an op with no lowering here) and yield poison */
void fe_eval(fe_ctx *f, const tir_value *v, const fe_crd *co, LLVMValueRef *out);

/* Issues, at coordinates co of v, the loads of the parameters v reads through elementwise ops
 * and broadcasts (the maps whose coordinates are the same LLVM values, so the memo finds them
 * again), stopping at reductions and other index maps: every load in flight before the math
 * that uses the first. */
void fe_prefetch(fe_ctx *f, const tir_value *v, const fe_crd *co);

/* stores n lanes (compute values of dt) at buf[off ..]: one vector store when there are several */
void fe_store_lanes(fe_ctx *f, tir_dtype dt, LLVMValueRef buf, LLVMValueRef off, LLVMValueRef *lanes, int n);

#endif
