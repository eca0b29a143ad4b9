/* fused.c: one fused region (docs/tir.md §11) -> one kernel, following the region's schedule.
 *
 * Every member is computed in registers by the evaluator of codegen/fused_eval.c (shared with
 * the horizontal kernels of fused_horizontal.c): a value is evaluated at a coordinate vector of
 * its own shape by walking back through its producers (elementwise ops, full constants, the
 * index maps broadcast/reshape/transpose/slice) to the region's parameters, which are loaded
 * from global memory, and to the row's reductions once they are folded (fx.red). Evaluations
 * are memoised on (value, coordinates), so a value read by several members, or by several
 * passes over a row, is computed and loaded once. Each op rounds to its result dtype exactly as
 * the interpreter does (bf16 ops compute in f32 and round at their output), so grouping never
 * changes a result.
 *
 * Lanes: with a schedule vector v > 1 a thread evaluates v consecutive elements along the
 * innermost axis at once. Coordinates carry the axis whose coordinate is `c + j` in lane j;
 * a parameter read along its innermost axis becomes one vector load (16 bytes when the offset
 * is provably a multiple of v), outputs are written with one vector store. The vector path is
 * taken only when the innermost dim is structurally a multiple of v, so symbolic sizes that
 * are not keep v = 1 and stay correct for every binding.
 *
 * kind="elementwise"   out is (D0, ..., Dr-1) (all results share it); a grid-stride loop over
 *                      vectors of v elements; block = 256. With a thread_axis a (a short axis,
 *                      2..4, not the innermost) each thread walks a whole, at constant
 *                      coordinates 0..Da-1: the loop runs over the space with a collapsed, and
 *                      slices along a (RoPE's rotate-half reads both halves of x for each half
 *                      of the output) are loaded once for all of a's elements.
 * kind="row"/"reduce"  the row reductions reduce F over axes R (the plan's rowmask,
 *                      passes.h: tir_fused_row_plan); K are the kept axes. rows = prod K,
 *                      L = prod R. A group of T threads handles one row (block = warps*32 =
 *                      rows_per_block * T); blocks stride over groups of rows. The reductions
 *                      fold sweep by sweep as the plan orders them: every reduction of a sweep
 *                      in one pass over the row, in f32 (f64 for f64), a max carrying its online
 *                      sums of e^(x - max); then one combine for all of them (shuffles
 *                      interleaved, one round through shared memory when T > 32) so that every
 *                      thread holds the row's values; a one-hot pick is one load once its inputs
 *                      are known. Then F-shaped results are written per element and row-shaped
 *                      results (numel == rows) once per row.
 *                      When L is a constant small enough (<= 64 values per thread at 256 threads,
 *                      fewer for bigger blocks), the element loop is unrolled and straight-line,
 *                      so the memo keeps the row in registers between passes: x is read once.
 *                      Otherwise each sweep streams the row again (reads hit L2 for rows of a
 *                      few hundred KB: 2 sweeps for softmax and cross-entropy).
 *                      kind="reduce" (R not innermost) uses the same kernel with v = 1 and one
 *                      row per block: correct, not fast.
 * partials (GRID)      reductions across rows (over every axis, or every kept axis: a column
 *                      sum) fold into per-thread partials in the write sweep (a column sum needs
 *                      the row in registers: each thread owns fixed columns), each block writes
 *                      its partials to the workspace (codegen.h), takes a ticket, and the last
 *                      blocks combine them in block order and write what depends on them
 *                      (grid_combine). The grid is persistent (schedule blocks_per_sm).
 *
 * Not lowered (TIR_ERR_UNSUPPORTED, the caller runs the members one by one): argmax, mean of
 * ints, results of other shapes than the iteration space, the rows, or (after a reduction
 * across rows) one value or one per column, regions whose row reductions disagree on F or R,
 * a row reduction of a value reduced across rows. Rows of length 0 reduce to the identity (sum 0,
 * max -inf, min +inf, mean NaN), as in the interpreter, and their row-shaped results are written.
 * Buffers are assumed 16-byte aligned (the runtime's allocations are).
 *
 * In place: the kernel sets tir_kernel.inplace_ok for each operand read only at the element
 * being written, by its writer, before the write (inplace_mask), and leaves those operands and
 * the results that may take them plain pointers (mark_buffers); a one-hot pick of such an operand
 * gets a barrier before the write sweep. */
#include <stdio.h>

#include "cg.h"
#include "fused.h"
#include "fused_eval.h"
#include "matmul_mma.h"
#include "passes.h"

#define MAXV FE_MAXV
#define STAGE_MAX_BYTES 65536 /* a row stage: three blocks an SM still fit in 227 KB */
#define MAX_REG_VALS 64 /* values per thread a row may keep in registers (256 threads) */
/* fewer for bigger blocks: 64K registers per SM are shared by the block's threads, and every
 * member evaluated per element keeps a register or two beside the loaded value */
#define REG_VALS(threads) ((threads) <= 256 ? MAX_REG_VALS : 8192 / (threads) < 8 ? 8 : 8192 / (threads))

/* the shared evaluator (fused_eval.h): coordinates, the evaluation context */
typedef fe_crd crd;
typedef fe_ctx fx;

/* ---------------------------------------------------------------- small helpers */

static LLVMValueRef entry_alloca(cg *g, LLVMTypeRef t) {
    LLVMBasicBlockRef cur = LLVMGetInsertBlock(g->B);
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(g->fn);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first) LLVMPositionBuilderBefore(g->B, first);
    else LLVMPositionBuilderAtEnd(g->B, entry);
    LLVMValueRef a = LLVMBuildAlloca(g->B, t, "");
    LLVMPositionBuilderAtEnd(g->B, cur);
    return a;
}

/* ---------------------------------------------------------------- scalar ops
 * Values are compute values (cg_ctype) of their dtype, already rounded to it. */

static LLVMValueRef fconst(LLVMValueRef like, double v) { return LLVMConstReal(LLVMTypeOf(like), v); }

/* every dim of every value of the region becomes a kernel parameter (constants are baked in) */
static void use_region_types(cg *g, const tir_func *R) {
    for (int i = 0; i < R->nparams; i++) cg_use_type(g, &R->params[i]->type);
    for (int i = 0; i < R->nops; i++)
        for (int j = 0; j < R->ops[i]->nout; j++) cg_use_type(g, &R->ops[i]->out[j]->type);
}

/* In place (codegen.h, tir_kernel.inplace_ok): bit j when a result of operand j's dims and
 * element size may be written over operand j. That needs every element of j read only by the
 * thread that writes the same element, before it writes it. Element c of a value over the
 * iteration space `space` (the elementwise shape, or a row kernel's F) is computed only by the
 * thread that owns c, in the sweep that writes c (row kernels: the stats sweeps read the same
 * elements in the same thread, earlier; the write sweep evaluates every result of an element
 * before its stores). So j qualifies when every value computed from it (forward, through
 * members) is an elementwise op over `space` (no broadcast of it: that would read one element
 * for many; no index map: that reads another element), a row reduction folded in a stats sweep,
 * or a reduction across rows folded in the write sweep; and none of those values is a result
 * written elsewhere than per element (excl: per-row results, or those written after every row
 * by the last blocks). A reduction's value cuts the chain: it is known before the write sweep.
 * The one exception is a one-hot pick, which reads A at the row's target from every thread of
 * the row: allowed (its bit also set in *picks) when the caller puts a barrier between the picks
 * and the write sweep. Clamped lanes and rows (past the row's end or the last row) read
 * elements they do not own, but their values are masked out of everything stored. */
static unsigned inplace_mask(const tir_op *fop, const tir_func *R, const tir_type *space,
                             const tir_row_plan *plan, const bool *excl, unsigned *picks) {
    unsigned mask = 0;
    *picks = 0;
    bool *t = calloc((size_t)(R->nvalues > 0 ? R->nvalues : 1), sizeof *t);
    if (!t) return 0; /* never in place: always correct */
#define TAINT(v) ((v)->id >= 0 && (v)->id < R->nvalues && t[(v)->id])
    for (int j = 0; j < fop->nin && j < R->nparams && j < 32; j++) {
        const tir_value *p = R->params[j];
        if (p->id < 0 || p->id >= R->nvalues || !tir_type_same_dims(&p->type, space) || fe_shares_storage(fop, j)) continue;
        /* some result written per element may take it, and none written otherwise could */
        bool fits = false, other = false;
        for (int r = 0; r < R->nres; r++) {
            bool same = fe_same_layout(&R->results[r]->type, &p->type);
            if (excl && excl[r]) other |= same;
            else fits |= same;
        }
        if (!fits || other) continue;
        memset(t, 0, (size_t)R->nvalues * sizeof *t);
        t[p->id] = true;
        bool ok = true, pick = false;
        for (int i = 0; i < R->nops && ok; i++) {
            const tir_op *op = R->ops[i];
            bool any = false;
            for (int k = 0; k < op->nin; k++) any |= TAINT(op->in[k]);
            if (!any) continue;
            if (tir_op_is_elementwise(op->code)) {
                ok = op->nout == 1 && tir_type_same_dims(&op->out[0]->type, space) && op->out[0]->id >= 0 &&
                     op->out[0]->id < R->nvalues;
                if (ok) t[op->out[0]->id] = true;
                continue;
            }
            const tir_row_red *s = NULL;
            for (int k = 0; plan && k < plan->nred && !s; k++)
                if (plan->r[k].op == op) s = &plan->r[k];
            if (!(tir_ops[op->code].flags & TIR_F_REDUCE) || !s) ok = false;
            else if (s->kind == TIR_RR_GRID) ok = !s->rowval;
            else if (s->kind == TIR_RR_PICK) {
                ok = !(s->pick_idx && TAINT(s->pick_idx));
                pick |= s->pick && TAINT(s->pick);
            }
        }
        for (int r = 0; r < R->nres && ok; r++)
            if (excl && excl[r] && TAINT(R->results[r])) ok = false;
        if (!ok) continue;
        mask |= 1u << j;
        if (pick) *picks |= 1u << j;
    }
#undef TAINT
    free(t);
    return mask;
}

/* Buffers are noalias, operands also readonly: a region names each operand once, and a result
 * has storage of its own (two operands may share memory, which noalias allows for memory that is
 * only read). LLVM then reads operands with ld.global.nc and may move loads past stores. Not so
 * for the operands that may be overwritten in place (inplace) and the results that may take
 * them (those of an in-place operand's dims and element size): they stay plain pointers, so
 * their loads are coherent and stay before the stores that may hit them. */
static void mark_buffers(cg *g, const tir_op *fop, unsigned inplace) {
    int nin = fop->nin;
    bool *plain = calloc((size_t)(g->nbuf > 0 ? g->nbuf : 1), sizeof *plain);
    if (!plain) {
        cg_fail(g, TIR_ERR_OOM, "out of memory");
        return;
    }
    for (int i = 0; i < g->nbuf; i++) {
        plain[i] = i < nin && i < 32 && (inplace >> i & 1);
        for (int j = 0; i >= nin && i < nin + fop->nout && j < nin && j < 32 && !plain[i]; j++)
            plain[i] = (inplace >> j & 1) && fe_same_layout(&fop->out[i - nin]->type, &fop->in[j]->type);
    }
    fe_mark_buffers(g, nin, plain);
    free(plain);
    g->k->inplace_ok = inplace;
}

/* ---------------------------------------------------------------- kind="elementwise" */

static tir_status lower_elementwise(fx *f, const tir_op *fop, const char *name, const tir_attr_value *sched) {
    int64_t vreq = fe_sched_int(sched, "vector", 1);
    cg *g = f->g;
    const tir_func *R = f->R;
    const tir_type *ot = &R->results[0]->type;
    for (int r = 1; r < R->nres; r++)
        if (!tir_type_same_dims(&R->results[r]->type, ot))
            return cg_fail(g, TIR_ERR_UNSUPPORTED, "fused codegen: elementwise results of different shapes");
    int vec = fe_clamp_vec(vreq);
    if (ot->rank == 0 || !tir_dim_multiple_of(g->ctx, ot->dims[ot->rank - 1], vec)) vec = 1;
    f->vec = vec;
    use_region_types(g, R);
    cg_use_type(g, ot);
    unsigned picks;
    unsigned inplace = inplace_mask(fop, R, ot, NULL, NULL, &picks);
    cg_begin_kernel(g, name, fop->nin + fop->nout, CG_BLOCK);
    mark_buffers(g, fop, inplace);
    LLVMBuilderRef B = g->B;

    /* thread_axis (schedule): a short axis the thread walks whole, with constant coordinates,
     * so that slices along it (RoPE's two halves) are loaded once for all of its elements */
    int ta = (int)fe_sched_int(sched, "thread_axis", -1);
    tir_type it; /* the threads' space: out with the thread axis collapsed */
    int64_t D = fe_thread_space(g->ctx, ot, &ta, &it);

    // out is (D0, ..., Dr-1); thread i computes elements i*vec .. i*vec + vec-1 of every result
    // (of `it`, at each coordinate 0..D-1 along ta); every operand's load issued before the math
    // that uses the first (SwiGLU: b's 16 bytes are in flight while silu(a) is computed)
    LLVMValueRef n = cg_numel(g, &it);
    LLVMValueRef nv = vec > 1 ? LLVMBuildUDiv(B, n, cg_i64(g, vec), "") : n;
    cg_loop l;
    LLVMValueRef i = cg_grid_loop_begin(g, &l, nv);
    LLVMValueRef base = vec > 1 ? LLVMBuildMul(B, i, cg_i64(g, vec), "") : i;
    crd co[4];
    fe_thread_crds(f, ot, &it, base, ta, D, co);
    fe_write_results(f, R, 0, R->nres, co, (int)D, g->buf + fop->nin, true);
    f->nm = 0;
    cg_for_end(g, &l);
    LLVMBuildRetVoid(B);
    const tir_dim *nd = cg_numel_dim(g, &it);
    cg_launch_1d(g, vec > 1 ? cg_ceil_div(g, nd, vec) : nd);
    return g->st;
}

/* ---------------------------------------------------------------- kind="row" / "reduce" */

typedef struct rowk {
    const tir_type *F;
    tir_type Kt, Rt;              /* kept and reduced dims, as types to unravel over */
    int kax[TIR_MAX_RANK], rax[TIR_MAX_RANK];
    bool suffix;                  /* R are the innermost axes: a row is contiguous */
    int T;                        /* threads per row (a power of two) */
    LLVMValueRef tid, t, sub;     /* thread, its index in the row group, the group in the block */
    LLVMValueRef row, L, rowL;    /* row (clamped), row length, row * L */
    LLVMValueRef kc[TIR_MAX_RANK];
    int threads;
} rowk;

/* f32 for 16- and 32-bit floats, f64 for f64, i64 for ints (i128 for sums of i64, so that no
 * partial sum wraps; saturated once at the end as the interpreter rounds once) */
static LLVMTypeRef acc_type(cg *g, tir_opcode code, tir_dtype dt) {
    if (dt == TIR_F64) return g->t_f64;
    if (tir_dtype_is_float(dt)) return g->t_f32;
    if (code == TIR_OP_SUM && dt == TIR_I64) return LLVMInt128TypeInContext(g->C);
    return g->t_i64;
}

static bool is_fp(LLVMTypeRef t) {
    LLVMTypeKind k = LLVMGetTypeKind(t);
    return k == LLVMFloatTypeKind || k == LLVMDoubleTypeKind;
}

static LLVMValueRef red_identity(LLVMTypeRef at, tir_opcode code) {
    if (is_fp(at))
        return LLVMConstReal(at, code == TIR_OP_MAX ? -INFINITY : code == TIR_OP_MIN ? INFINITY : 0.0);
    if (code == TIR_OP_MAX) return LLVMConstInt(at, (unsigned long long)INT64_MIN, 1);
    if (code == TIR_OP_MIN) return LLVMConstInt(at, (unsigned long long)INT64_MAX, 1);
    return LLVMConstInt(at, 0, 0);
}

/* max/min keep a NaN, as the interpreter does */
static LLVMValueRef red_combine(cg *g, tir_opcode code, LLVMValueRef a, LLVMValueRef b) {
    LLVMBuilderRef B = g->B;
    bool sum = code == TIR_OP_SUM || code == TIR_OP_MEAN;
    if (!is_fp(LLVMTypeOf(a))) {
        if (sum) return LLVMBuildAdd(B, a, b, "");
        LLVMValueRef gt = LLVMBuildICmp(B, code == TIR_OP_MAX ? LLVMIntSGT : LLVMIntSLT, b, a, "");
        return LLVMBuildSelect(B, gt, b, a, "");
    }
    if (sum) return LLVMBuildFAdd(B, a, b, "");
    /* f32: one max.NaN / min.NaN (sm_80+) instead of six instructions; it orders -0 below +0
     * where the interpreter keeps the first of two zeros, a difference no tolerance sees */
    if (LLVMTypeOf(a) == g->t_f32) return cg_intr2(g, code == TIR_OP_MAX ? "llvm.maximum" : "llvm.minimum", a, b);
    LLVMValueRef pick_b = LLVMBuildFCmp(B, code == TIR_OP_MAX ? LLVMRealOGT : LLVMRealOLT, b, a, "");
    pick_b = LLVMBuildOr(B, pick_b, cg_is_nan(g, b), "");
    pick_b = LLVMBuildAnd(B, pick_b, LLVMBuildNot(B, cg_is_nan(g, a), ""), "");
    return LLVMBuildSelect(B, pick_b, b, a, "");
}

/* an element's compute value of dt in the accumulator's type */
static LLVMValueRef to_acc(cg *g, tir_dtype dt, LLVMValueRef x, LLVMTypeRef at) {
    if (is_fp(at) || LLVMTypeOf(x) == at) return x;
    return dt == TIR_U8 || dt == TIR_BOOL ? LLVMBuildZExt(g->B, x, at, "") : LLVMBuildSExt(g->B, x, at, "");
}

/* the accumulated row -> the reduction's compute value of odt */
static LLVMValueRef from_acc(cg *g, tir_opcode code, LLVMValueRef acc, LLVMValueRef L, tir_dtype odt) {
    LLVMBuilderRef B = g->B;
    LLVMTypeRef at = LLVMTypeOf(acc);
    if (is_fp(at)) {
        if (code == TIR_OP_MEAN) acc = LLVMBuildFDiv(B, acc, LLVMBuildUIToFP(B, L, at, ""), "");
        return cg_widen(g, odt, cg_cast(g, at == g->t_f64 ? TIR_F64 : TIR_F32, acc, odt));
    }
    if (at != g->t_i64) { /* i128 -> i64, saturating */
        LLVMValueRef lo = LLVMConstInt(at, (unsigned long long)INT64_MIN, 1);
        LLVMValueRef hi = LLVMConstInt(at, (unsigned long long)INT64_MAX, 1);
        acc = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSLT, acc, lo, ""), lo, acc, "");
        acc = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSGT, acc, hi, ""), hi, acc, "");
        acc = LLVMBuildTrunc(B, acc, g->t_i64, "");
    }
    return cg_widen(g, odt, cg_cast(g, TIR_I64, acc, odt));
}

/* F coordinates of element e of the current row */
static crd row_crd(fx *f, rowk *rk, LLVMValueRef e) {
    cg *g = f->g;
    crd co = {.rank = rk->F->rank, .lane = f->vec > 1 ? rk->F->rank - 1 : -1, .aligned = true};
    LLVMValueRef rc[TIR_MAX_RANK];
    cg_unravel(g, e, &rk->Rt, rc);
    for (int j = 0; j < rk->Kt.rank; j++) co.c[rk->kax[j]] = rk->kc[j];
    for (int j = 0; j < rk->Rt.rank; j++) co.c[rk->rax[j]] = rc[j];
    if (rk->suffix) {
        co.flat = LLVMBuildAdd(g->B, rk->rowL, e, "");
        co.flat_t = rk->F;
    }
    return co;
}

/* ---------------------------------------------------------------- folding a row */

/* one FOLD slot's running state: its accumulator, and for a max the sums that ride on it
 * online (each rescaled by e^(m_old - m_new) as the max grows) */
typedef struct rst {
    int slot;
    tir_opcode code;
    LLVMTypeRef at;
    LLVMValueRef acc, accp;
    int ns;
    int sum[TIR_ROW_MAX_ONLINE];
    LLVMValueRef s[TIR_ROW_MAX_ONLINE], sp[TIR_ROW_MAX_ONLINE];
} rst;

/* e^x for the online sums: the MUFU path in f32 (its 2^-21 relative error stays far below the
 * tolerance of an f32 sum; the values are only summed, never written) */
static LLVMValueRef online_exp(cg *g, LLVMValueRef x) {
    return LLVMTypeOf(x) == g->t_f32 ? cg_fast_exp(g, x) : cgm_exp(g, x);
}

/* the factor a sum taken against max mo is rescaled by to be against m >= mo: 1 when they
 * are equal (both -inf included, where e^(mo - m) would be NaN) */
static LLVMValueRef online_scale(cg *g, LLVMValueRef mo, LLVMValueRef m) {
    LLVMValueRef eq = LLVMBuildFCmp(g->B, LLVMRealOEQ, mo, m, "");
    return LLVMBuildSelect(g->B, eq, fconst(m, 1.0), online_exp(g, LLVMBuildFSub(g->B, mo, m, "")), "");
}

/* folds one element vector (compute values of dt) into st; ok (or NULL) masks the vector */
static void fold_lanes(fx *f, rst *st, tir_dtype dt, LLVMValueRef *vals, LLVMValueRef ok) {
    cg *g = f->g;
    LLVMBuilderRef B = g->B;
    LLVMValueRef id = red_identity(st->at, st->code), x[MAXV] = {NULL};
    for (int j = 0; j < f->vec; j++) {
        x[j] = to_acc(g, dt, vals[j], st->at);
        if (ok) x[j] = LLVMBuildSelect(B, ok, x[j], id, "");
    }
    if (!st->ns) {
        for (int j = 0; j < f->vec; j++) st->acc = red_combine(g, st->code, st->acc, x[j]);
        return;
    }
    /* online: the vector's max first, then one rescale a vector and one e^ an element; while
     * the max is -inf every element so far is -inf and adds nothing (a row that stays -inf is
     * made NaN at the end, as e^(-inf - -inf) makes it in the reference) */
    LLVMValueRef mv = x[0];
    for (int j = 1; j < f->vec; j++) mv = red_combine(g, TIR_OP_MAX, mv, x[j]);
    LLVMValueRef mn = red_combine(g, TIR_OP_MAX, st->acc, mv);
    LLVMValueRef sc = online_scale(g, st->acc, mn);
    LLVMValueRef ninf = LLVMBuildFCmp(B, LLVMRealOEQ, mn, fconst(mn, -INFINITY), "");
    LLVMValueRef t[MAXV];
    for (int j = 0; j < f->vec; j++) t[j] = online_exp(g, LLVMBuildFSub(B, x[j], mn, ""));
    for (int w = 1; w < f->vec; w *= 2) /* a tree: short dependency chains */
        for (int j = 0; j + w < f->vec; j += 2 * w) t[j] = LLVMBuildFAdd(B, t[j], t[j + w], "");
    for (int k = 0; k < st->ns; k++) {
        LLVMValueRef ns = LLVMBuildFAdd(B, LLVMBuildFMul(B, st->s[k], sc, ""), t[0], "");
        st->s[k] = LLVMBuildSelect(B, ninf, st->s[k], ns, "");
    }
    st->acc = mn;
}

/* st combined with another thread's state (acc o, sums os) */
static void combine_state(fx *f, rst *st, LLVMValueRef o, LLVMValueRef *os) {
    cg *g = f->g;
    if (!st->ns) {
        st->acc = red_combine(g, st->code, st->acc, o);
        return;
    }
    LLVMValueRef m = red_combine(g, TIR_OP_MAX, st->acc, o);
    LLVMValueRef a = online_scale(g, st->acc, m), b = online_scale(g, o, m);
    for (int k = 0; k < st->ns; k++)
        st->s[k] = LLVMBuildFAdd(g->B, LLVMBuildFMul(g->B, st->s[k], a, ""), LLVMBuildFMul(g->B, os[k], b, ""), "");
    st->acc = m;
}

/* the fold of every thread's states over its row group, all of a sweep's reductions together
 * (shuffles interleaved, one round through shared memory); every thread of the group gets it */
static void group_reduce(fx *f, rowk *rk, rst *sts, int n, int sweep) {
    cg *g = f->g;
    LLVMBuilderRef B = g->B;
    LLVMValueRef os[TIR_ROW_MAX_ONLINE];
    for (int m = (rk->T < 32 ? rk->T : 32) / 2; m >= 1; m /= 2)
        for (int i = 0; i < n; i++) {
            LLVMValueRef o = cg_shfl_xor(g, sts[i].acc, m);
            for (int k = 0; k < sts[i].ns; k++) os[k] = cg_shfl_xor(g, sts[i].s[k], m);
            combine_state(f, &sts[i], o, os);
        }
    if (rk->T <= 32) return;
    int nw = rk->T / 32, nwb = rk->threads / 32;
    LLVMValueRef warp = LLVMBuildLShr(B, rk->tid, cg_i64(g, 5), "");
    LLVMValueRef first = LLVMBuildMul(B, rk->sub, cg_i64(g, nw), "");
    LLVMValueRef (*sm)[1 + TIR_ROW_MAX_ONLINE] = malloc((size_t)n * sizeof *sm);
    if (!sm) {
        cg_fail(g, TIR_ERR_OOM, "out of memory");
        return;
    }
    cg_if c;
    cg_if_begin(g, &c, LLVMBuildICmp(B, LLVMIntEQ, LLVMBuildAnd(B, rk->tid, cg_i64(g, 31), ""), cg_i64(g, 0), ""));
    for (int i = 0; i < n; i++)
        for (int k = 0; k <= sts[i].ns; k++) {
            char name[48];
            snprintf(name, sizeof name, "red%d_%d_%d", sweep, i, k);
            LLVMValueRef v = k ? sts[i].s[k - 1] : sts[i].acc;
            sm[i][k] = cg_shared_array(g, name, LLVMTypeOf(v), nwb);
            LLVMBuildStore(B, v, cg_gep(g, LLVMTypeOf(v), sm[i][k], warp));
        }
    cg_if_end(g, &c);
    cg_barrier(g);
    /* every warp folds its group's nw warp values the same way: lane l takes warp (l mod nw)'s
     * value, then an xor tree over aligned groups of nw lanes (a fixed order; nw loads would keep
     * nw values live at once, which spilled at 1024 threads). Every group of nw lanes holds the
     * same nw values in the same places, and the butterfly combines each pair commutatively, so
     * every lane ends with the same bits: the row's value is in every thread. (Lanes past nw
     * must not start from the identity: they would end with it.) */
    LLVMValueRef lane = LLVMBuildAnd(B, rk->tid, cg_i64(g, 31), "");
    LLVMValueRef idx = LLVMBuildAdd(B, first, LLVMBuildAnd(B, lane, cg_i64(g, nw - 1), ""), "");
    for (int i = 0; i < n; i++) {
        LLVMTypeRef at = LLVMTypeOf(sts[i].acc);
        LLVMTypeRef stt = sts[i].ns ? LLVMTypeOf(sts[i].s[0]) : at;
        sts[i].acc = LLVMBuildLoad2(B, at, cg_gep(g, at, sm[i][0], idx), "");
        for (int k = 0; k < sts[i].ns; k++)
            sts[i].s[k] = LLVMBuildLoad2(B, stt, cg_gep(g, stt, sm[i][k + 1], idx), "");
    }
    for (int m = nw / 2; m >= 1; m /= 2)
        for (int i = 0; i < n; i++) {
            LLVMValueRef o = cg_shfl_xor(g, sts[i].acc, m);
            for (int k = 0; k < sts[i].ns; k++) os[k] = cg_shfl_xor(g, sts[i].s[k], m);
            combine_state(f, &sts[i], o, os);
        }
    free(sm);
    /* the slots are written again for the next row */
    cg_barrier(g);
}

/* a PICK slot: A at the row's t, 0 when t is outside the row */
static LLVMValueRef pick_value(fx *f, rowk *rk, const tir_row_red *s) {
    cg *g = f->g;
    LLVMBuilderRef B = g->B;
    const tir_type *F = rk->F;
    crd co = {.rank = F->rank, .lane = -1, .aligned = false};
    for (int j = 0; j < rk->Kt.rank; j++) co.c[rk->kax[j]] = rk->kc[j];
    co.c[rk->rax[0]] = cg_i64(g, 0);
    LLVMValueRef vals[MAXV];
    crd tc;
    fe_bcast_crd(g, &co, F, &s->pick_idx->type, &tc);
    fe_eval(f, s->pick_idx, &tc, vals);
    LLVMValueRef idx = cg_to_i64(g, s->pick_idx->type.dtype, vals[0]);
    LLVMValueRef in = LLVMBuildICmp(B, LLVMIntULT, idx, rk->L, "");
    co.c[rk->rax[0]] = LLVMBuildSelect(B, in, idx, cg_i64(g, 0), "");
    crd ac;
    fe_bcast_crd(g, &co, F, &s->pick->type, &ac);
    fe_eval(f, s->pick, &ac, vals);
    tir_dtype idt = s->op->in[0]->type.dtype;
    LLVMTypeRef at = acc_type(g, TIR_OP_SUM, idt);
    LLVMValueRef zero = red_identity(at, TIR_OP_SUM);
    /* 0 + A as the reference's sum of zeros and A gives it (-0 becomes +0) */
    LLVMValueRef acc = LLVMBuildFAdd(B, zero, to_acc(g, idt, vals[0], at), "");
    acc = LLVMBuildSelect(B, in, acc, zero, "");
    return from_acc(g, TIR_OP_SUM, acc, rk->L, s->op->out[0]->type.dtype);
}

/* ---------------------------------------------------------------- reductions across rows */

static int64_t acc_bytes(cg *g, LLVMTypeRef at) {
    return at == g->t_f32 ? 4 : at == g->t_f64 || at == g->t_i64 ? 8 : 16;
}

/* the workspace at byte offset off, as a pointer to at */
static LLVMValueRef ws_at(cg *g, LLVMValueRef off) {
    return cg_gep(g, g->t_i8, g->buf[g->nbuf - 1], off);
}

/* a load of another block's partial: volatile, so it is read from L2 after the fence and never
 * from a stale L1 line or the read-only path */
static LLVMValueRef ws_load(cg *g, LLVMTypeRef at, LLVMValueRef off) {
    LLVMValueRef ld = LLVMBuildLoad2(g->B, at, ws_at(g, off), "");
    LLVMSetVolatile(ld, 1);
    return ld;
}

static void fence_gpu(cg *g) {
    LLVMBuildFenceSyncScope(g->B, LLVMAtomicOrderingAcquireRelease, LLVMGetSyncScopeID(g->C, "device", 6), "");
}

/* After the rows: every block writes its partials of the grid reductions to the workspace
 * (16 + block * gbytes + goff[slot]), takes a ticket, and the last block to finish sums the
 * partials in block order (a fixed order for a given grid: the result does not depend on which
 * block finishes last), then computes and writes the results that use them (gres: 1 one value,
 * 2 one per column of the row). */
static void grid_combine(fx *f, const tir_op *fop, rowk *rk, const tir_row_plan *plan,
                         LLVMValueRef (*gacc)[MAX_REG_VALS * MAXV], const int64_t *goff, int64_t gbytes,
                         const int *gres, int chunks, int64_t rpb, int64_t Lc, LLVMValueRef rows) {
    cg *g = f->g;
    LLVMBuilderRef B = g->B;
    const tir_func *R = f->R;
    int vec = f->vec;
    LLVMValueRef blk = cg_sreg(g, "ctaid.x"), nblk = cg_sreg(g, "nctaid.x");
    LLVMValueRef base = LLVMBuildAdd(B, cg_i64(g, TIR_WORKSPACE_HEADER), LLVMBuildMul(B, blk, cg_i64(g, gbytes), ""), "");
    rowk whole = *rk; /* the block as one group */
    whole.T = rk->threads;
    whole.sub = cg_i64(g, 0);
    whole.t = rk->tid;
    LLVMValueRef tid0 = LLVMBuildICmp(B, LLVMIntEQ, rk->tid, cg_i64(g, 0), "");
    rst *sts = calloc((size_t)(plan->nred ? plan->nred : 1), sizeof *sts);
    if (!sts) {
        cg_fail(g, TIR_ERR_OOM, "out of memory");
        return;
    }
    /* totals: the block's threads folded (a fixed tree), one partial per block */
    int n = 0;
    for (int i = 0; i < plan->nred; i++) {
        if (plan->r[i].kind != TIR_RR_GRID || plan->r[i].column) continue;
        const tir_op *op = plan->r[i].op;
        rst *st = &sts[n++];
        st->slot = i;
        st->code = op->code;
        st->at = acc_type(g, op->code, op->in[0]->type.dtype);
        st->acc = LLVMBuildLoad2(B, st->at, gacc[i][0], "");
    }
    if (n) group_reduce(f, &whole, sts, n, 900);
    cg_if c0;
    cg_if_begin(g, &c0, tid0);
    for (int j = 0; j < n; j++)
        LLVMBuildStore(B, sts[j].acc, ws_at(g, LLVMBuildAdd(B, base, cg_i64(g, goff[sts[j].slot]), "")));
    cg_if_end(g, &c0);
    /* column sums: each group of threads owns its columns of its partial row */
    LLVMValueRef t = rk->t;
    for (int i = 0; i < plan->nred; i++) {
        if (plan->r[i].kind != TIR_RR_GRID || !plan->r[i].column) continue;
        const tir_op *op = plan->r[i].op;
        LLVMTypeRef at = acc_type(g, op->code, op->in[0]->type.dtype);
        int64_t asz = acc_bytes(g, at);
        LLVMValueRef row0 = LLVMBuildAdd(B, LLVMBuildAdd(B, base, cg_i64(g, goff[i]), ""),
                                         LLVMBuildMul(B, rk->sub, cg_i64(g, Lc * asz), ""), "");
        for (int c = 0; c < chunks; c++) {
            LLVMValueRef e = LLVMBuildAdd(B, LLVMBuildMul(B, t, cg_i64(g, vec), ""), cg_i64(g, (int64_t)c * rk->T * vec), "");
            cg_if ce;
            cg_if_begin(g, &ce, LLVMBuildICmp(B, LLVMIntULT, e, cg_i64(g, Lc), ""));
            for (int j = 0; j < vec; j++) {
                LLVMValueRef off = LLVMBuildAdd(B, row0, LLVMBuildMul(B, LLVMBuildAdd(B, e, cg_i64(g, j), ""), cg_i64(g, asz), ""), "");
                LLVMBuildStore(B, LLVMBuildLoad2(B, at, gacc[i][c * vec + j], ""), ws_at(g, off));
            }
            cg_if_end(g, &ce);
        }
    }
    /* the tickets: the last C blocks to take one (C = min(blocks, SMs / 2, 64)) combine, block j
     * of them the j-th slice of the columns once every block is in (the last one does the
     * totals); a combiner waits for the blocks still running, which always find an SM: fewer
     * than C < SMs blocks ever wait. A column is summed over the partials in block order, so
     * the result does not depend on which blocks combine. */
    bool cols = false;
    for (int r = 0; r < R->nres; r++) cols |= gres[r] == 2;
    for (int i = 0; i < plan->nred; i++) cols |= plan->r[i].kind == TIR_RR_GRID && plan->r[i].column;
    fence_gpu(g);
    cg_barrier(g);
    LLVMValueRef flag = cg_shared_array(g, "grid_ticket", g->t_i64, 1);
    LLVMValueRef flagp = cg_gep(g, g->t_i64, flag, cg_i64(g, 0));
    LLVMValueRef C = cg_i64(g, 1);
    if (cols) {
        C = cg_umin(g, cg_umin(g, nblk, cg_i64(g, 64)), LLVMBuildUDiv(B, cg_sreg(g, "nsmid"), cg_i64(g, 2), ""));
        C = cg_smax(g, C, cg_i64(g, 1));
    }
    LLVMValueRef first_c = LLVMBuildSub(B, nblk, C, "");
    cg_if ct;
    cg_if_begin(g, &ct, tid0);
    LLVMValueRef old = LLVMBuildAtomicRMWSyncScope(B, LLVMAtomicRMWBinOpAdd, g->buf[g->nbuf - 1], cg_i32(g, 1),
                                                   LLVMAtomicOrderingAcquireRelease, LLVMGetSyncScopeID(g->C, "device", 6));
    LLVMValueRef tk = LLVMBuildZExt(B, old, g->t_i64, "");
    LLVMBuildStore(B, tk, flagp);
    if (cols) { /* a combiner waits for the blocks still running */
        LLVMBasicBlockRef spin = LLVMAppendBasicBlockInContext(g->C, g->fn, "spin");
        LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(g->C, g->fn, "spun");
        LLVMBuildCondBr(B, LLVMBuildICmp(B, LLVMIntUGE, tk, first_c, ""), spin, done);
        LLVMPositionBuilderAtEnd(B, spin);
        LLVMValueRef cnt = ws_load(g, g->t_i32, cg_i64(g, 0));
        LLVMBuildCondBr(B, LLVMBuildICmp(B, LLVMIntULT, LLVMBuildZExt(B, cnt, g->t_i64, ""), nblk, ""), spin, done);
        LLVMPositionBuilderAtEnd(B, done);
    }
    cg_if_end(g, &ct);
    cg_barrier(g);
    LLVMValueRef tkt = LLVMBuildLoad2(B, g->t_i64, flagp, "");
    LLVMValueRef is_comb = LLVMBuildICmp(B, LLVMIntUGE, tkt, first_c, "");
    LLVMValueRef jc = LLVMBuildSub(B, tkt, first_c, "");
    LLVMValueRef is_last = LLVMBuildICmp(B, LLVMIntEQ, tkt, LLVMBuildSub(B, nblk, cg_i64(g, 1), ""), "");
    cg_if cc;
    cg_if_begin(g, &cc, is_comb);
    fence_gpu(g);
    LLVMValueRef count_all = LLVMBuildMul(B, rows, rk->L, "");
    /* totals: thread t folds partials t, t + threads, ..., then the block's fixed tree */
    for (int j = 0; j < n; j++) {
        LLVMValueRef accp = entry_alloca(g, sts[j].at);
        LLVMBuildStore(B, red_identity(sts[j].at, sts[j].code), accp);
        cg_loop lp;
        LLVMValueRef p = cg_for_begin(g, &lp, rk->tid, nblk, cg_i64(g, rk->threads));
        LLVMValueRef off = LLVMBuildAdd(B, cg_i64(g, TIR_WORKSPACE_HEADER + goff[sts[j].slot]),
                                        LLVMBuildMul(B, p, cg_i64(g, gbytes), ""), "");
        LLVMValueRef a = red_combine(g, sts[j].code, LLVMBuildLoad2(B, sts[j].at, accp, ""), ws_load(g, sts[j].at, off));
        LLVMBuildStore(B, a, accp);
        cg_for_end(g, &lp);
        sts[j].acc = LLVMBuildLoad2(B, sts[j].at, accp, "");
    }
    if (n) group_reduce(f, &whole, sts, n, 901);
    for (int j = 0; j < n; j++) {
        const tir_op *op = plan->r[sts[j].slot].op;
        f->red[op->out[0]->id] =
            from_acc(g, op->code, sts[j].acc, plan->r[sts[j].slot].rowval ? rows : count_all, op->out[0]->type.dtype);
    }
    /* one value each, by thread 0 of the last block (every combiner has the totals: a column's
     * results may use them too) */
    LLVMValueRef lanes[MAXV];
    cg_if c1;
    cg_if_begin(g, &c1, LLVMBuildAnd(B, is_last, tid0, ""));
    int mark = f->nm;
    for (int r = 0; r < R->nres; r++) {
        if (gres[r] != 1) continue;
        const tir_type *tt = &R->results[r]->type;
        crd co = {.rank = tt->rank, .lane = -1};
        for (int k = 0; k < tt->rank; k++) co.c[k] = cg_i64(g, 0);
        fe_eval(f, R->results[r], &co, lanes);
        fe_store_lanes(f, tt->dtype, g->buf[fop->nin + r], cg_i64(g, 0), lanes, 1);
    }
    f->nm = mark;
    cg_if_end(g, &c1);
    /* columns: combiner j's slice [j*Lc/C, (j+1)*Lc/C), 64 columns a pass. The block's threads
     * are S = threads/64 slices of 64: slice s sums partial rows s, s + S, ... of its column in
     * 4 accumulators (loads in flight: the partials are megabytes, read by few blocks), the
     * slices then add up in order through shared memory; a fixed order throughout */
    if (cols) {
        enum { CW = 64, U = 4 };
        int S = rk->threads / CW > 0 ? rk->threads / CW : 1;
        LLVMValueRef lo = LLVMBuildUDiv(B, LLVMBuildMul(B, jc, cg_i64(g, Lc), ""), C, "");
        LLVMValueRef hi = LLVMBuildUDiv(B, LLVMBuildMul(B, LLVMBuildAdd(B, jc, cg_i64(g, 1), ""), cg_i64(g, Lc), ""), C, "");
        LLVMValueRef npass = LLVMBuildUDiv(B, LLVMBuildAdd(B, LLVMBuildSub(B, hi, lo, ""), cg_i64(g, CW - 1), ""), cg_i64(g, CW), "");
        LLVMValueRef sl = LLVMBuildUDiv(B, rk->tid, cg_i64(g, CW), ""), cw = LLVMBuildURem(B, rk->tid, cg_i64(g, CW), "");
        LLVMValueRef nq = LLVMBuildMul(B, nblk, cg_i64(g, rpb), "");
        cg_loop lk;
        LLVMValueRef k = cg_for_begin(g, &lk, cg_i64(g, 0), npass, cg_i64(g, 1));
        LLVMValueRef e = LLVMBuildAdd(B, LLVMBuildAdd(B, lo, LLVMBuildMul(B, k, cg_i64(g, CW), ""), ""), cw, "");
        LLVMValueRef in = LLVMBuildICmp(B, LLVMIntULT, e, hi, "");
        LLVMValueRef ee = LLVMBuildSelect(B, in, e, lo, "");
        LLVMValueRef *tot = calloc((size_t)plan->nred, sizeof *tot); /* each column sum's slices */
        if (!tot) {
            cg_fail(g, TIR_ERR_OOM, "out of memory");
            free(sts);
            return;
        }
        int ncol = 0;
        for (int i = 0; i < plan->nred; i++) {
            if (plan->r[i].kind != TIR_RR_GRID || !plan->r[i].column) continue;
            const tir_op *op = plan->r[i].op;
            LLVMTypeRef at = acc_type(g, op->code, op->in[0]->type.dtype);
            int64_t asz = acc_bytes(g, at);
            LLVMValueRef id = red_identity(at, op->code), accp[U];
            for (int u = 0; u < U; u++) {
                accp[u] = entry_alloca(g, at);
                LLVMBuildStore(B, id, accp[u]);
            }
            cg_loop lq;
            LLVMValueRef r0 = cg_for_begin(g, &lq, cg_i64(g, 0), nq, cg_i64(g, (int64_t)S * U));
            for (int u = 0; u < U; u++) {
                LLVMValueRef q = LLVMBuildAdd(B, LLVMBuildAdd(B, r0, sl, ""), cg_i64(g, (int64_t)u * S), "");
                LLVMValueRef qok = LLVMBuildICmp(B, LLVMIntULT, q, nq, "");
                q = LLVMBuildSelect(B, qok, q, cg_i64(g, 0), "");
                LLVMValueRef pb = LLVMBuildUDiv(B, q, cg_i64(g, rpb), ""), ps = LLVMBuildURem(B, q, cg_i64(g, rpb), "");
                LLVMValueRef off = LLVMBuildAdd(B, cg_i64(g, TIR_WORKSPACE_HEADER + goff[i]),
                                                LLVMBuildMul(B, pb, cg_i64(g, gbytes), ""), "");
                off = LLVMBuildAdd(B, off, LLVMBuildMul(B, LLVMBuildAdd(B, LLVMBuildMul(B, ps, cg_i64(g, Lc), ""), ee, ""),
                                                       cg_i64(g, asz), ""), "");
                LLVMValueRef a = LLVMBuildLoad2(B, at, accp[u], "");
                LLVMValueRef v = LLVMBuildSelect(B, qok, ws_load(g, at, off), id, "");
                LLVMBuildStore(B, red_combine(g, op->code, a, v), accp[u]);
            }
            cg_for_end(g, &lq);
            LLVMValueRef part = LLVMBuildLoad2(B, at, accp[0], "");
            for (int u = 1; u < U; u++) part = red_combine(g, op->code, part, LLVMBuildLoad2(B, at, accp[u], ""));
            char nm[32];
            snprintf(nm, sizeof nm, "grid_cols%d", i);
            LLVMValueRef sm = cg_shared_array(g, nm, at, S * CW);
            LLVMBuildStore(B, part, cg_gep(g, at, sm, rk->tid));
            tot[ncol++] = sm;
        }
        cg_barrier(g);
        cg_if cs;
        cg_if_begin(g, &cs, LLVMBuildAnd(B, in, LLVMBuildICmp(B, LLVMIntEQ, sl, cg_i64(g, 0), ""), ""));
        mark = f->nm;
        ncol = 0;
        for (int i = 0; i < plan->nred; i++) {
            if (plan->r[i].kind != TIR_RR_GRID || !plan->r[i].column) continue;
            const tir_op *op = plan->r[i].op;
            LLVMTypeRef at = acc_type(g, op->code, op->in[0]->type.dtype);
            LLVMValueRef sm = tot[ncol++], acc = LLVMBuildLoad2(B, at, cg_gep(g, at, sm, cw), "");
            for (int q = 1; q < S; q++)
                acc = red_combine(g, op->code, acc,
                                  LLVMBuildLoad2(B, at, cg_gep(g, at, sm, LLVMBuildAdd(B, cw, cg_i64(g, (int64_t)q * CW), "")), ""));
            f->red[op->out[0]->id] = from_acc(g, op->code, acc, rows, op->out[0]->type.dtype);
        }
        for (int r = 0; r < R->nres; r++) {
            if (gres[r] != 2) continue;
            const tir_type *tt = &R->results[r]->type;
            crd co = {.rank = tt->rank, .lane = -1, .flat = e, .flat_t = tt};
            cg_unravel(g, e, tt, co.c);
            fe_eval(f, R->results[r], &co, lanes);
            fe_store_lanes(f, tt->dtype, g->buf[fop->nin + r], e, lanes, 1);
        }
        f->nm = mark;
        cg_if_end(g, &cs);
        cg_barrier(g); /* the slices' slots are written again by the next pass */
        cg_for_end(g, &lk);
        free(tot);
    }
    cg_if_end(g, &cc);
    free(sts);
}

/* ---------------------------------------------------------------- streaming a row */

/* the body of a streamed sweep over n element vectors (coordinates co[0..n-1]) */
typedef void (*stream_body)(fx *f, rowk *rk, void *ctx, const crd *co, int n);

#define MAX_UNROLL 8

/* this thread's element vectors of the row, e0, e0 + step, ... < L, in order: U at a time while
 * U fit (the body issues all their loads before it uses any: one load in flight a thread is far
 * from enough to cover DRAM latency), then one at a time. Folds keep their order. */
static void stream_row(fx *f, rowk *rk, LLVMValueRef e0, int64_t step, int U, stream_body body, void *ctx) {
    cg *g = f->g;
    LLVMBuilderRef B = g->B;
    LLVMValueRef L = rk->L, start = e0;
    crd co[MAX_UNROLL];
    if (U > MAX_UNROLL) U = MAX_UNROLL;
    if (U > 1) {
        /* U vectors from e while e + (U-1)*step < L, i.e. e < lim (no iteration when L <= span) */
        LLVMValueRef span = cg_i64(g, (U - 1) * step), ustep = cg_i64(g, U * step);
        LLVMValueRef lim = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntUGT, L, span, ""),
                                           LLVMBuildSub(B, L, span, ""), cg_i64(g, 0), "");
        cg_loop lu;
        LLVMValueRef e = cg_for_begin(g, &lu, e0, lim, ustep);
        int mark = f->nm;
        for (int u = 0; u < U; u++) co[u] = row_crd(f, rk, LLVMBuildAdd(B, e, cg_i64(g, u * step), ""));
        body(f, rk, ctx, co, U);
        f->nm = mark;
        cg_for_end(g, &lu);
        /* the rest starts after the unrolled iterations: ceil((lim - e0) / ustep) of them */
        LLVMValueRef its = LLVMBuildUDiv(B, LLVMBuildAdd(B, LLVMBuildSub(B, lim, e0, ""), cg_i64(g, U * step - 1), ""),
                                         ustep, "");
        its = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntUGT, lim, e0, ""), its, cg_i64(g, 0), "");
        start = LLVMBuildAdd(B, e0, LLVMBuildMul(B, its, ustep, ""), "");
    }
    cg_loop le;
    LLVMValueRef e = cg_for_begin(g, &le, start, L, cg_i64(g, step));
    int mark = f->nm;
    co[0] = row_crd(f, rk, e);
    body(f, rk, ctx, co, 1);
    f->nm = mark;
    cg_for_end(g, &le);
}

/* a stats sweep's folds (accumulators in allocas across the loop) */
typedef struct stats_ctx {
    rst *sts;
    int n;
    const tir_row_plan *plan;
} stats_ctx;

static void stats_body(fx *f, rowk *rk, void *ctx, const crd *co, int nco) {
    (void)rk;
    stats_ctx *c = ctx;
    cg *g = f->g;
    LLVMValueRef vals[MAXV];
    for (int u = 0; u < nco; u++)
        for (int j = 0; j < c->n; j++) fe_prefetch(f, c->plan->r[c->sts[j].slot].op->in[0], &co[u]);
    for (int j = 0; j < c->n; j++) {
        rst *st = &c->sts[j];
        st->acc = LLVMBuildLoad2(g->B, st->at, st->accp, "");
        for (int k = 0; k < st->ns; k++) st->s[k] = LLVMBuildLoad2(g->B, st->at, st->sp[k], "");
    }
    for (int u = 0; u < nco; u++)
        for (int j = 0; j < c->n; j++) {
            const tir_op *op = c->plan->r[c->sts[j].slot].op;
            fe_eval(f, op->in[0], &co[u], vals);
            fold_lanes(f, &c->sts[j], op->in[0]->type.dtype, vals, NULL);
        }
    for (int j = 0; j < c->n; j++) {
        rst *st = &c->sts[j];
        LLVMBuildStore(g->B, st->acc, st->accp);
        for (int k = 0; k < st->ns; k++) LLVMBuildStore(g->B, st->s[k], st->sp[k]);
    }
    fe_stage_flush(f); /* the row's vectors into the stage, after the math that needed them */
}

/* the write sweep: the F-shaped results of an element vector and the grid partials it feeds */
typedef struct write_ctx {
    const tir_op *fop;
    const tir_row_plan *plan;
    const bool *per_row;
    const int *gres;
    LLVMValueRef (*gacc)[MAX_REG_VALS * MAXV];
    LLVMValueRef (*lanes)[MAXV];
    LLVMValueRef valid; /* the row is real (not the clamped copy of the last) */
} write_ctx;

/* element vector co (chunk c in registers mode, whose lanes are real when cok, NULL: all) */
static void write_elem(fx *f, rowk *rk, write_ctx *w, const crd *co, int c, LLVMValueRef cok) {
    cg *g = f->g;
    LLVMBuilderRef B = g->B;
    const tir_func *R = f->R;
    const tir_row_plan *plan = w->plan;
    int vec = f->vec;
    for (int r = 0; r < R->nres; r++)
        if (!w->per_row[r] && !w->gres[r]) fe_eval(f, R->results[r], co, w->lanes[r]);
    LLVMValueRef ok = cok ? LLVMBuildAnd(B, w->valid, cok, "") : w->valid;
    /* the grid reductions fold their elements of this row into the thread's partials */
    for (int i = 0; w->gacc && i < plan->nred; i++) {
        if (plan->r[i].kind != TIR_RR_GRID || plan->r[i].rowval) continue;
        const tir_op *op = plan->r[i].op;
        tir_dtype idt = op->in[0]->type.dtype;
        LLVMTypeRef at = acc_type(g, op->code, idt);
        LLVMValueRef vals[MAXV], id = red_identity(at, op->code);
        fe_eval(f, op->in[0], co, vals);
        LLVMValueRef acc = plan->r[i].column ? NULL : LLVMBuildLoad2(B, at, w->gacc[i][0], "");
        for (int j = 0; j < vec; j++) {
            LLVMValueRef x = LLVMBuildSelect(B, ok, to_acc(g, idt, vals[j], at), id, "");
            if (!plan->r[i].column) {
                acc = red_combine(g, op->code, acc, x);
                continue;
            }
            LLVMValueRef p = w->gacc[i][c * vec + j];
            LLVMBuildStore(B, red_combine(g, op->code, LLVMBuildLoad2(B, at, p, ""), x), p);
        }
        if (acc) LLVMBuildStore(B, acc, w->gacc[i][0]);
    }
    cg_if st;
    cg_if_begin(g, &st, ok);
    for (int r = 0; r < R->nres; r++) {
        if (w->per_row[r] || w->gres[r]) continue;
        LLVMValueRef off = co->flat ? co->flat : cg_offset(g, rk->F, (LLVMValueRef *)co->c);
        fe_store_lanes(f, R->results[r]->type.dtype, g->buf[w->fop->nin + r], off, w->lanes[r], vec);
    }
    cg_if_end(g, &st);
}

static void write_body(fx *f, rowk *rk, void *ctx, const crd *co, int n) {
    write_ctx *w = ctx;
    const tir_func *R = f->R;
    for (int u = 0; n > 1 && u < n; u++) {
        for (int r = 0; r < R->nres; r++)
            if (!w->per_row[r] && !w->gres[r]) fe_prefetch(f, R->results[r], &co[u]);
        for (int i = 0; i < w->plan->nred; i++)
            if (w->plan->r[i].kind == TIR_RR_GRID && !w->plan->r[i].rowval) fe_prefetch(f, w->plan->r[i].op->in[0], &co[u]);
    }
    for (int u = 0; u < n; u++) write_elem(f, rk, w, &co[u], 0, NULL);
}

static tir_status lower_rows(fx *f, const tir_op *fop, const char *name, const tir_attr_value *sched) {
    cg *g = f->g;
    const tir_func *R = f->R;
    LLVMBuilderRef B;
    rowk rk;
    memset(&rk, 0, sizeof rk);
    /* the reductions: one F; the row reductions over one set of axes (the plan's rowmask), the
     * grid ones (GRID) over every axis or every row axis */
    tir_row_plan plan;
    if (!tir_fused_row_plan(R, fe_sched_int(sched, "online", 1) != 0, &plan))
        return cg_fail(g, TIR_ERR_OOM, "out of memory");
    /* which values may take the MUFU forms (fused_eval.h): an online sum computes its own terms
     * (fold_lanes), so its use of them does not count */
    const tir_op **online = malloc((size_t)(plan.nred ? plan.nred : 1) * sizeof *online);
    int nonline = 0;
    for (int i = 0; online && i < plan.nred; i++)
        if (plan.r[i].kind == TIR_RR_ONLINE) online[nonline++] = plan.r[i].op;
    if (online && !f->approx_done) {
        f->approx = fe_approx_set(R, online, nonline);
        f->approx_done = true;
    }
    free(online);
    const tir_op *first = NULL;
    bool isred[TIR_MAX_RANK] = {false};
    for (int i = 0; i < plan.nred; i++) {
        const tir_op *op = plan.r[i].op;
        const tir_type *xt = &op->in[0]->type;
        const char *why = NULL;
        if (op->code == TIR_OP_ARGMAX || (op->code == TIR_OP_MEAN && !tir_dtype_is_float(xt->dtype)))
            why = "argmax or an integer mean";
        else if (!plan.r[i].rowval && !tir_type_same_dims(xt, plan.F)) why = "reductions of different shapes";
        else if (plan.r[i].level >= TIR_ROW_GRID_LEVEL && plan.r[i].kind != TIR_RR_GRID)
            why = "a row reduction of a value reduced across rows";
        if (why) {
            tir_fused_row_plan_free(&plan);
            return cg_fail(g, TIR_ERR_UNSUPPORTED, "fused codegen: %s", why);
        }
        if (!first) {
            first = op;
            rk.F = plan.F;
            for (int k = 0; k < plan.F->rank; k++) isred[k] = plan.rowmask >> k & 1;
        }
        if (plan.r[i].kind == TIR_RR_GRID) continue;
        const tir_attr_value *axes = tir_op_attr(op, "axes");
        for (int k = 0; k < xt->rank; k++) {
            bool in = axes == NULL;
            for (int j = 0; axes && j < axes->u.ints.n; j++) {
                int ax;
                if (tir_norm_axis(axes->u.ints.v[j], xt->rank, &ax) && ax == k) in = true;
            }
            if (in != isred[k]) {
                tir_fused_row_plan_free(&plan);
                return cg_fail(g, TIR_ERR_UNSUPPORTED, "fused codegen: reductions over different rows");
            }
        }
    }
    bool gmode = plan.ngrid > 0, fgrid = plan.ngrid > plan.nrowval; /* fgrid: partials of F's elements */
    if (!first) {
        tir_fused_row_plan_free(&plan);
        return lower_elementwise(f, fop, name, sched);
    }
    const tir_type *F = rk.F;
    rk.Kt.dtype = rk.Rt.dtype = F->dtype;
    for (int i = 0; i < F->rank; i++) {
        if (isred[i]) {
            rk.rax[rk.Rt.rank] = i;
            rk.Rt.dims[rk.Rt.rank++] = F->dims[i];
        } else {
            rk.kax[rk.Kt.rank] = i;
            rk.Kt.dims[rk.Kt.rank++] = F->dims[i];
        }
    }
    rk.suffix = true;
    for (int i = 0; i < rk.Rt.rank; i++) rk.suffix &= rk.rax[i] == F->rank - rk.Rt.rank + i;
    const tir_dim *rows_d = cg_numel_dim(g, &rk.Kt), *L_d = cg_numel_dim(g, &rk.Rt);
    /* results: F-shaped (per element), one per row, or (gmode) computed from the grid
     * reductions once every row is in: one value (gres 1) or one per column (gres 2) */
    bool *per_row = calloc((size_t)R->nres, sizeof *per_row);
    int *gres = calloc((size_t)R->nres, sizeof *gres);
    unsigned char *gdep = calloc((size_t)(R->nvalues > 0 ? R->nvalues : 1), 1);
    if (!per_row || !gres || !gdep) {
        free(per_row);
        free(gres);
        free(gdep);
        tir_fused_row_plan_free(&plan);
        return cg_fail(g, TIR_ERR_OOM, "out of memory");
    }
    /* which grid reductions each value depends on: bit 1 a total, bit 2 a column sum */
    for (int i = 0; i < R->nops; i++) {
        const tir_op *op = R->ops[i];
        unsigned char d = 0;
        for (int k = 0; k < op->nin; k++)
            if (op->in[k]->id >= 0 && op->in[k]->id < R->nvalues) d |= gdep[op->in[k]->id];
        for (int j = 0; j < plan.nred; j++)
            if (plan.r[j].op == op && plan.r[j].kind == TIR_RR_GRID) d |= plan.r[j].column ? 2 : 1;
        for (int k = 0; k < op->nout; k++)
            if (op->out[k]->id >= 0 && op->out[k]->id < R->nvalues) gdep[op->out[k]->id] = d;
    }
    const char *bad = NULL;
    for (int r = 0; r < R->nres && !bad; r++) {
        const tir_type *t = &R->results[r]->type;
        const tir_value *v = R->results[r];
        unsigned char d = v->id >= 0 && v->id < R->nvalues ? gdep[v->id] : 0;
        int64_t one;
        if (d) {
            if (tir_dim_is_const(cg_numel_dim(g, t), &one) && one == 1 && !(d & 2)) gres[r] = 1;
            else if (cg_numel_dim(g, t) == L_d) gres[r] = 2;
            else bad = "a result of a reduction across rows that is neither one value nor a column";
            continue;
        }
        if (tir_type_same_dims(t, F)) continue;
        if (cg_numel_dim(g, t) == rows_d) {
            per_row[r] = true;
            continue;
        }
        bad = "a result that is neither the rows nor their elements";
    }
    free(gdep);
    if (bad) {
        free(per_row);
        free(gres);
        tir_fused_row_plan_free(&plan);
        return cg_fail(g, TIR_ERR_UNSUPPORTED, "fused codegen: %s", bad);
    }

    int vec = fe_clamp_vec(fe_sched_int(sched, "vector", 1));
    if (!rk.suffix || !tir_dim_multiple_of(g->ctx, F->dims[F->rank - 1], vec)) vec = 1;
    f->vec = vec;
    int64_t warps = fe_sched_int(sched, "warps", 8), rpb = fe_sched_int(sched, "rows_per_block", 1);
    if (warps < 1) warps = 1;
    if (warps > 32) warps = 32;
    int threads = (int)warps * 32;
    if (!rk.suffix || rpb < 1 || threads % rpb) rpb = 1;
    rk.T = threads / (int)rpb;
    if (rk.T & (rk.T - 1)) { /* threads per row must be a power of two for the shuffles */
        rpb = 1;
        rk.T = threads;
    }
    int64_t Lc = 0;
    int chunks = 0;
    if (tir_dim_is_const(L_d, &Lc) && Lc > 0) {
        int64_t per = (int64_t)rk.T * vec;
        int64_t c = (Lc + per - 1) / per;
        /* the schedule's row_in_registers decides (capped at what a thread can hold); without
         * one, the block size's share of the registers */
        int64_t want = fe_sched_int(sched, "row_in_registers", -1);
        if (want < 0 ? c * vec <= REG_VALS(threads) : want && c <= MAX_REG_VALS && c * vec <= 2 * MAX_REG_VALS)
            chunks = (int)c;
    }

    /* the partials of the grid reductions, per block: a total takes 16 bytes, a column sum
     * rows_per_block rows of L accumulators (each group of threads owns its columns: no atomics) */
    int64_t gbytes = 0;
    int64_t *goff = calloc((size_t)(plan.nred ? plan.nred : 1), sizeof *goff);
    if (!goff) bad = "out of memory";
    for (int i = 0; i < plan.nred && !bad; i++) {
        if (plan.r[i].kind != TIR_RR_GRID) continue;
        goff[i] = gbytes;
        if (!plan.r[i].column) {
            gbytes += 16;
        } else if (!chunks || !rk.suffix) {
            bad = "a column sum across rows needs its rows held in registers";
        } else {
            LLVMTypeRef at = acc_type(g, plan.r[i].op->code, plan.r[i].op->in[0]->type.dtype);
            int64_t asz = at == g->t_f32 ? 4 : at == g->t_f64 || at == g->t_i64 ? 8 : 16;
            gbytes += (rpb * Lc * asz + 15) / 16 * 16;
        }
    }
    if (bad) {
        free(per_row);
        free(gres);
        free(goff);
        tir_fused_row_plan_free(&plan);
        return cg_fail(g, TIR_ERR_UNSUPPORTED, "fused codegen: %s", bad);
    }

    use_region_types(g, R);
    int nbuf = fop->nin + fop->nout + (gmode ? 1 : 0);
    /* results not written per element by the element's owner: per row, or after every row */
    bool *excl = calloc((size_t)R->nres, sizeof *excl);
    for (int r = 0; excl && r < R->nres; r++) excl[r] = per_row[r] || gres[r];
    unsigned picks = 0, inplace = excl ? inplace_mask(fop, R, F, &plan, excl, &picks) : 0;
    free(excl);
    cg_begin_kernel(g, name, nbuf, threads);
    mark_buffers(g, fop, inplace);
    if (gmode && g->k->params) g->k->params[nbuf - 1] = (tir_kparam){.kind = TIR_KP_WORKSPACE, .index = -1};
    B = g->B;
    rk.threads = threads;
    LLVMValueRef rows = cg_numel(g, &rk.Kt);
    rk.L = cg_numel(g, &rk.Rt);
    // nothing to do for no rows: return before anything indexes row - 1. Empty rows (L == 0)
    // are not skipped: their element loops run zero times (registers mode needs a constant
    // L > 0), so each reduction is its identity (mean 0/0 = NaN) as in the interpreter, and the
    // row-shaped results, consumers of the reductions included, are computed and written.
    LLVMBasicBlockRef work = LLVMAppendBasicBlockInContext(g->C, g->fn, "work");
    LLVMBasicBlockRef none = LLVMAppendBasicBlockInContext(g->C, g->fn, "none");
    LLVMValueRef empty = LLVMBuildICmp(B, LLVMIntEQ, rows, cg_i64(g, 0), "");
    /* with grid reductions there is always a result to write (the identity, for no rows) */
    if (gmode) empty = LLVMConstInt(g->t_i1, 0, 0);
    LLVMBuildCondBr(B, empty, none, work);
    LLVMPositionBuilderAtEnd(B, none);
    LLVMBuildRetVoid(B);
    LLVMPositionBuilderAtEnd(B, work);

    int lg = 0;
    while ((1 << lg) < rk.T) lg++;
    rk.tid = cg_sreg(g, "tid.x");
    rk.t = LLVMBuildAnd(B, rk.tid, cg_i64(g, rk.T - 1), "");
    rk.sub = LLVMBuildLShr(B, rk.tid, cg_i64(g, lg), "");
    LLVMValueRef ngroups = LLVMBuildUDiv(B, LLVMBuildAdd(B, rows, cg_i64(g, rpb - 1), ""), cg_i64(g, rpb), "");
    LLVMValueRef L = rk.L;
    /* streamed sweeps: element vectors a thread loads before it uses them (schedule unroll) */
    int64_t unroll = chunks ? 1 : fe_sched_int(sched, "unroll", 1);
    if (unroll < 1) unroll = 1;
    /* a streamed row kept in shared memory between its sweeps (schedule stage_row): the later
     * sweeps read it there instead of from L2 or DRAM again (fused_eval.h) */
    for (int i = 0; i < FE_MAX_STAGED; i++) f->stage_off[i] = -1;
    if (!chunks && rpb == 1 && Lc > 0 && rk.suffix && fe_sched_int(sched, "stage_row", 0)) {
        char sname[96];
        snprintf(sname, sizeof sname, "%s_stage", name);
        f->stage_smem = LLVMAddGlobalInAddressSpace(g->M, LLVMArrayType2(g->t_i8, 0), sname, 3);
        LLVMSetLinkage(f->stage_smem, LLVMExternalLinkage);
        LLVMSetAlignment(f->stage_smem, 16);
        f->stage_L = Lc;
        f->stage_cap = STAGE_MAX_BYTES;
        f->stage_F = F;
    }
    bool staged = false; /* a sweep has stored the stage */

    /* the grid reductions' per-thread partials, carried across the rows the thread sees: a
     * total one accumulator, a column sum one per element of the row the thread owns */
    LLVMValueRef (*gacc)[MAX_REG_VALS * MAXV] = calloc((size_t)(plan.nred ? plan.nred : 1), sizeof *gacc);
    if (!gacc) cg_fail(g, TIR_ERR_OOM, "out of memory");
    for (int i = 0; gacc && i < plan.nred; i++) {
        if (plan.r[i].kind != TIR_RR_GRID) continue;
        const tir_op *op = plan.r[i].op;
        LLVMTypeRef at = acc_type(g, op->code, op->in[0]->type.dtype);
        int nacc = plan.r[i].column ? chunks * vec : 1;
        for (int a = 0; a < nacc; a++) {
            gacc[i][a] = entry_alloca(g, at);
            LLVMBuildStore(B, red_identity(at, op->code), gacc[i][a]);
        }
    }

    // F is (K.., R..): block b handles row groups b, b + grid, ...; group sub of the block row
    // gi*rpb + sub (clamped to the last row so that barriers stay uniform; stores are guarded)
    cg_loop lr;
    LLVMValueRef gi = cg_for_begin(g, &lr, cg_sreg(g, "ctaid.x"), ngroups, cg_sreg(g, "nctaid.x"));
    LLVMValueRef row_raw = LLVMBuildAdd(B, LLVMBuildMul(B, gi, cg_i64(g, rpb), ""), rk.sub, "");
    LLVMValueRef valid = LLVMBuildICmp(B, LLVMIntULT, row_raw, rows, "");
    rk.row = cg_umin(g, row_raw, LLVMBuildSub(B, rows, cg_i64(g, 1), ""));
    rk.rowL = LLVMBuildMul(B, rk.row, L, "");
    f->stage_row = rk.rowL;
    cg_unravel(g, rk.row, &rk.Kt, rk.kc);
    LLVMValueRef e0 = LLVMBuildMul(B, rk.t, cg_i64(g, vec), "");
    bool exact = chunks > 0 && Lc % ((int64_t)rk.T * vec) == 0;

    /* element e of chunk c (registers mode): the clamped element and whether it is real */
    LLVMValueRef ce[MAX_REG_VALS], cok[MAX_REG_VALS];
    for (int c = 0; c < chunks; c++) {
        LLVMValueRef e = LLVMBuildAdd(B, e0, cg_i64(g, (int64_t)c * rk.T * vec), "");
        if (exact) {
            ce[c] = e;
            cok[c] = NULL;
        } else {
            cok[c] = LLVMBuildICmp(B, LLVMIntULT, e, L, "");
            ce[c] = cg_umin(g, e, cg_i64(g, Lc - vec));
        }
    }

    // registers mode: every load of the row (the reductions' and the results') issued up front
    for (int c = 0; c < chunks; c++) {
        crd co = row_crd(f, &rk, ce[c]);
        for (int r = 0; r < R->nres; r++)
            if (!per_row[r] && !gres[r]) fe_prefetch(f, R->results[r], &co);
    }
    // the reductions, sweep by sweep (the plan: fused.h): picks once their inputs are known,
    // then every reduction of the sweep folded in one pass over the row
    int maxlv = 0;
    for (int i = 0; i < plan.nred; i++)
        if (plan.r[i].level > maxlv) maxlv = plan.r[i].level;
    rst *sts = malloc((size_t)(plan.nred ? plan.nred : 1) * sizeof *sts);
    if (!sts) cg_fail(g, TIR_ERR_OOM, "out of memory");
    for (int lv = 1; lv <= maxlv && g->st == TIR_OK; lv++) {
        for (int i = 0; i < plan.nred; i++)
            if (plan.r[i].kind == TIR_RR_PICK && plan.r[i].level == lv)
                f->red[plan.r[i].op->out[0]->id] = pick_value(f, &rk, &plan.r[i]);
        int n = 0;
        for (int i = 0; i < plan.nred; i++) {
            const tir_row_red *s = &plan.r[i];
            if (s->level != lv || (s->kind != TIR_RR_FOLD && s->kind != TIR_RR_ONLINE)) continue;
            if (s->kind == TIR_RR_ONLINE) {
                for (int j = 0; j < n; j++)
                    if (sts[j].slot == s->of) sts[j].sum[sts[j].ns++] = i;
                continue;
            }
            rst *st = &sts[n++];
            memset(st, 0, sizeof *st);
            st->slot = i;
            st->code = s->op->code;
            st->at = acc_type(g, s->op->code, s->op->in[0]->type.dtype);
        }
        for (int j = 0; j < n; j++) {
            sts[j].acc = red_identity(sts[j].at, sts[j].code);
            for (int k = 0; k < sts[j].ns; k++) sts[j].s[k] = fconst(sts[j].acc, 0.0);
        }
        LLVMValueRef vals[MAXV];
        if (!n) {
            /* picks only at this level */
        } else if (chunks) {
            for (int c = 0; c < chunks; c++) {
                crd co = row_crd(f, &rk, ce[c]);
                for (int j = 0; j < n; j++) {
                    const tir_op *op = plan.r[sts[j].slot].op;
                    fe_eval(f, op->in[0], &co, vals);
                    fold_lanes(f, &sts[j], op->in[0]->type.dtype, vals, cok[c]);
                }
            }
        } else {
            for (int j = 0; j < n; j++) {
                sts[j].accp = entry_alloca(g, sts[j].at);
                LLVMBuildStore(B, sts[j].acc, sts[j].accp);
                for (int k = 0; k < sts[j].ns; k++) {
                    sts[j].sp[k] = entry_alloca(g, sts[j].at);
                    LLVMBuildStore(B, sts[j].s[k], sts[j].sp[k]);
                }
            }
            stats_ctx sc = {.sts = sts, .n = n, .plan = &plan};
            f->stage_mode = !f->stage_smem ? 0 : staged ? 2 : 1;
            staged |= f->stage_smem != NULL;
            stream_row(f, &rk, e0, (int64_t)rk.T * vec, (int)unroll, stats_body, &sc);
            f->stage_mode = 0;
            for (int j = 0; j < n; j++) {
                sts[j].acc = LLVMBuildLoad2(B, sts[j].at, sts[j].accp, "");
                for (int k = 0; k < sts[j].ns; k++) sts[j].s[k] = LLVMBuildLoad2(B, sts[j].at, sts[j].sp[k], "");
            }
        }
        if (n) group_reduce(f, &rk, sts, n, lv);
        for (int j = 0; j < n; j++) {
            const tir_op *op = plan.r[sts[j].slot].op;
            f->red[op->out[0]->id] = from_acc(g, op->code, sts[j].acc, L, op->out[0]->type.dtype);
            /* a row whose max is -inf: every e^(x - m) of the reference is NaN (a row of
             * length 0 keeps the empty sum, 0) */
            LLVMValueRef allinf = !sts[j].ns ? NULL : LLVMBuildAnd(
                B, LLVMBuildFCmp(B, LLVMRealOEQ, sts[j].acc, fconst(sts[j].acc, -INFINITY), ""),
                LLVMBuildICmp(B, LLVMIntNE, L, cg_i64(g, 0), ""), "");
            for (int k = 0; k < sts[j].ns && allinf; k++) {
                const tir_op *so = plan.r[sts[j].sum[k]].op;
                LLVMValueRef sv = LLVMBuildSelect(B, allinf, fconst(sts[j].s[k], NAN), sts[j].s[k], "");
                f->red[so->out[0]->id] = from_acc(g, so->code, sv, L, so->out[0]->type.dtype);
            }
        }
        /* duplicates as soon as what they repeat is known: a later sweep may read them */
        for (int i = 0; i < plan.nred; i++)
            if (plan.r[i].kind == TIR_RR_DUP && plan.r[i].level == lv)
                f->red[plan.r[i].op->out[0]->id] = f->red[plan.r[plan.r[i].of].op->out[0]->id];
    }
    free(sts);
    /* a pick read an element of an operand the results may overwrite, from every thread of the
     * row: every thread's pick is in before any thread's store */
    if (picks & inplace) cg_barrier(g);

    // per-element results of the row: evaluated first, then stored under one guard
    LLVMValueRef (*lanes)[MAXV] = malloc((size_t)(R->nres ? R->nres : 1) * sizeof *lanes);
    if (!lanes) {
        free(per_row);
        free(gres);
        free(goff);
        free(gacc);
        tir_fused_row_plan_free(&plan);
        return cg_fail(g, TIR_ERR_OOM, "out of memory");
    }
    bool any_full = false;
    for (int r = 0; r < R->nres; r++) any_full |= !per_row[r] && !gres[r];
    write_ctx wc = {.fop = fop, .plan = &plan, .per_row = per_row, .gres = gres, .gacc = gacc,
                    .lanes = lanes, .valid = valid};
    if ((any_full || fgrid) && chunks) {
        for (int c = 0; c < chunks && g->st == TIR_OK; c++) {
            crd co = row_crd(f, &rk, ce[c]);
            write_elem(f, &rk, &wc, &co, c, cok[c]);
        }
    } else if (any_full || fgrid) {
        f->stage_mode = staged ? 2 : 0;
        stream_row(f, &rk, e0, (int64_t)rk.T * vec, (int)unroll, write_body, &wc);
        f->stage_mode = 0;
    }
    // per-row results: one store per row, by the group's first thread
    bool any_row = false;
    for (int r = 0; r < R->nres; r++) {
        if (!per_row[r]) continue;
        any_row = true;
        const tir_type *t = &R->results[r]->type;
        crd co = {.rank = t->rank, .lane = -1, .flat = rk.row, .flat_t = t};
        cg_unravel(g, rk.row, t, co.c);
        fe_eval(f, R->results[r], &co, lanes[r]);
    }
    /* totals of values per row: the group's first thread folds its row's value */
    for (int i = 0; gacc && i < plan.nred; i++) {
        if (plan.r[i].kind != TIR_RR_GRID || !plan.r[i].rowval) continue;
        const tir_op *op = plan.r[i].op;
        const tir_type *t = &op->in[0]->type;
        LLVMTypeRef at = acc_type(g, op->code, t->dtype);
        crd co = {.rank = t->rank, .lane = -1, .flat = rk.row, .flat_t = t};
        cg_unravel(g, rk.row, t, co.c);
        LLVMValueRef vals[MAXV];
        fe_eval(f, op->in[0], &co, vals);
        LLVMValueRef ok = LLVMBuildAnd(B, valid, LLVMBuildICmp(B, LLVMIntEQ, rk.t, cg_i64(g, 0), ""), "");
        LLVMValueRef x = LLVMBuildSelect(B, ok, to_acc(g, t->dtype, vals[0], at), red_identity(at, op->code), "");
        LLVMBuildStore(B, red_combine(g, op->code, LLVMBuildLoad2(B, at, gacc[i][0], ""), x), gacc[i][0]);
    }
    if (any_row) {
        cg_if st;
        cg_if_begin(g, &st, LLVMBuildAnd(B, valid, LLVMBuildICmp(B, LLVMIntEQ, rk.t, cg_i64(g, 0), ""), ""));
        for (int r = 0; r < R->nres; r++)
            if (per_row[r]) fe_store_lanes(f, R->results[r]->type.dtype, g->buf[fop->nin + r], rk.row, lanes[r], 1);
        cg_if_end(g, &st);
    }
    f->nm = 0;
    cg_for_end(g, &lr);
    if (gmode && gacc && g->st == TIR_OK) grid_combine(f, fop, &rk, &plan, gacc, goff, gbytes, gres, chunks, rpb, Lc, rows);
    free(lanes);
    free(per_row);
    free(gres);
    free(goff);
    free(gacc);
    tir_fused_row_plan_free(&plan);
    LLVMBuildRetVoid(B);

    const tir_dim *gx = cg_ceil_div(g, rows_d, rpb);
    int64_t v64;
    if (tir_dim_is_const(gx, &v64) && v64 > (1 << 20)) gx = tir_dim_const(g->ctx, 1 << 20);
    g->k->grid[0] = gx;
    if (gmode) {
        /* a persistent grid: the launch keeps blocks_per_sm blocks per SM, so the partials
         * (and the last block's combine) stay small whatever the number of rows */
        int64_t bps = fe_sched_int(sched, "blocks_per_sm", threads >= 1024 ? 1 : 1024 / threads);
        g->k->persistent = (int)(bps < 1 ? 1 : bps > 32 ? 32 : bps);
        g->k->workspace = tir_dim_const(g->ctx, gbytes);
    }
    g->k->grid[1] = tir_dim_const(g->ctx, 1);
    g->k->grid[2] = tir_dim_const(g->ctx, 1);
    if (f->stage_smem) g->k->shared_bytes = (int)f->stage_used;
    return g->st;
}

/* ---------------------------------------------------------------- entry */

tir_status tir_codegen_fused(tir_context *ctx, const tir_op *op, int id,
                             const tir_codegen_options *opts, tir_kernel *out, tir_diag *d) {
    /* a matmul with its epilogue (passes/tile.c) is codegen/matmul_mma.c's; a body it declines
     * (TIR_ERR_UNSUPPORTED) runs member by member (compiler/compile.c) */
    const tir_attr_value *mk = tir_dict_get(tir_op_attr(op, "schedule"), "kind");
    if (mk && mk->kind == TIR_ATTR_STR && strcmp(mk->u.s, "matmul") == 0)
        return tir_codegen_matmul_region(ctx, op, id, opts, out, d);
    memset(out, 0, sizeof *out);
    out->alias_of = -1;
    out->init_from = -1;
    const tir_module *m = op->nout > 0 && op->out[0]->func ? op->out[0]->func->module : NULL;
    const char *arch = opts && opts->arch ? opts->arch : "sm_90a";
    int opt = opts ? opts->opt_level : 2;
    const tir_func *R = tir_op_region(op);
    if (!R || R->nres < 1 || R->nres != op->nout || R->nparams != op->nin)
        return tir_diag_set(d, TIR_ERR_INTERNAL, m, op->loc, "codegen: malformed fused op");
    if (!tir_codegen_arch_ok(arch))
        return tir_diag_set(d, TIR_ERR_UNSUPPORTED, m, op->loc, "codegen: unsupported arch '%s'", arch);
    const tir_attr_value *sched = tir_op_attr(op, "schedule");
    const char *kind = NULL;
    const tir_attr_value *ke = tir_dict_get(sched, "kind");
    if (ke && ke->kind == TIR_ATTR_STR) kind = ke->u.s;
    const char *kname = tir_attr_str(op, "kernel", "fused");
    snprintf(out->name, sizeof out->name, "tir_%.40s_%d", kname, id);
    for (char *p = out->name; *p; p++) /* an identifier for PTX whatever the region was called */
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            *p = '_';

    cg g;
    cg_init(&g, ctx, op, arch, opt, out, d);
    fx f = {.g = &g, .R = R, .vec = 1};
    f.red = calloc((size_t)(R->nvalues > 0 ? R->nvalues : 1), sizeof *f.red);
    tir_status s = g.st;
    if (!f.red) s = cg_fail(&g, TIR_ERR_OOM, "out of memory");
    bool rows = false;
    for (int i = 0; i < R->nops; i++) rows |= (tir_ops[R->ops[i]->code].flags & TIR_F_REDUCE) != 0;
    if (s == TIR_OK) {
        if (rows) s = lower_rows(&f, op, out->name, sched);
        else if (!kind || strcmp(kind, "elementwise") == 0 || strcmp(kind, "row") == 0)
            s = lower_elementwise(&f, op, out->name, sched);
        else s = cg_fail(&g, TIR_ERR_UNSUPPORTED, "fused codegen: schedule kind \"%s\"", kind);
    }
    if (s == TIR_OK) s = cg_emit(&g, opt);
    cg_dispose(&g);
    free(f.red);
    free(f.m);
    free(f.approx);
    if (s != TIR_OK) {
        tir_kernel_release(out);
        out->alias_of = -1;
    }
    return s;
}
