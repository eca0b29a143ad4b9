/* fused.c: one fused region (docs/tir.md §11) -> one kernel, following the region's schedule.
 *
 * Every member is computed in registers: a value is evaluated at a coordinate vector of its
 * own shape by walking back through its producers (elementwise ops, full constants, the index
 * maps broadcast/reshape/transpose/slice) to the region's parameters, which are loaded from
 * global memory. Evaluations are memoised on (value, coordinates), so a value read by several
 * members, or by several passes over a row, is computed and loaded once. Each op rounds to its
 * result dtype exactly as the interpreter does (bf16 ops compute in f32 and round at their
 * output), so grouping never changes a result.
 *
 * Lanes: with a schedule vector v > 1 a thread evaluates v consecutive elements along the
 * innermost axis at once. Coordinates carry the axis whose coordinate is `c + j` in lane j;
 * a parameter read along its innermost axis becomes one vector load (16 bytes when the offset
 * is provably a multiple of v), outputs are written with one vector store. The vector path is
 * taken only when the innermost dim is structurally a multiple of v, so symbolic sizes that
 * are not keep v = 1 and stay correct for every binding.
 *
 * kind="elementwise"   out is (D0, ..., Dr-1) (all results share it); a grid-stride loop over
 *                      vectors of v elements; block = 256.
 * kind="row"/"reduce"  the reductions reduce F over axes R (all the same F and R); K are the
 *                      kept axes. rows = prod K, L = prod R. A group of T threads handles one
 *                      row (block = warps*32 = rows_per_block * T); blocks stride over groups of
 *                      rows. For each reduction in program order the group folds its row in
 *                      f32 (f64 for f64), combines with shuffles (and shared memory when T > 32)
 *                      so that every thread holds the row's value; then F-shaped results are
 *                      written per element and row-shaped results (numel == rows) once per row.
 *                      When L is a constant small enough (<= 64 values per thread at 256 threads, fewer
 *                      for bigger blocks), the element
 *                      loop is unrolled and straight-line, so the memo keeps the row in
 *                      registers between passes: x is read once. Otherwise each pass streams the
 *                      row again (reads hit L2 for rows of a few hundred KB).
 *                      kind="reduce" (R not innermost) uses the same kernel with v = 1 and one
 *                      row per block: correct, not fast.
 *
 * Not lowered (TIR_ERR_UNSUPPORTED, the caller runs the members one by one): argmax, mean of
 * ints, results of other shapes than the iteration space or the rows,
 * regions whose reductions disagree on F or R. Rows of length 0 reduce to the identity (sum 0,
 * max -inf, min +inf, mean NaN), as in the interpreter, and their row-shaped results are written.
 * Buffers are assumed 16-byte aligned (the runtime's allocations are). */
#include <stdio.h>

#include "cg.h"
#include "fused.h"

#define MAXV 8          /* lanes per thread: 16 bytes of bf16 */
#define MAX_REG_VALS 64 /* values per thread a row may keep in registers (256 threads) */
/* fewer for bigger blocks: 64K registers per SM are shared by the block's threads, and every
 * member evaluated per element keeps a register or two beside the loaded value */
#define REG_VALS(threads) ((threads) <= 256 ? MAX_REG_VALS : 8192 / (threads) < 8 ? 8 : 8192 / (threads))

/* a coordinate vector of some shape, for all lanes */
typedef struct crd {
    int rank;
    LLVMValueRef c[TIR_MAX_RANK];
    int lane;              /* the axis holding c[lane] + j in lane j; -1: every lane alike */
    bool aligned;          /* c[lane] is a multiple of the lane count */
    LLVMValueRef flat;     /* row-major flat index of c in flat_t, or NULL */
    const tir_type *flat_t;
} crd;

typedef struct memo {
    const tir_value *v;
    crd co;
    LLVMValueRef lane[MAXV];
} memo;

typedef struct fx {
    cg *g;
    const tir_func *R;
    int vec;               /* lanes */
    memo *m;
    int nm, cap;
    LLVMValueRef *red;     /* by region value id: a reduction's value for the current row */
} fx;

/* ---------------------------------------------------------------- small helpers */

static bool multiple_of(tir_context *c, const tir_dim *d, int64_t v) {
    int64_t x;
    if (v <= 1) return true;
    if (tir_dim_is_const(d, &x)) return x % v == 0;
    const tir_dim *q = tir_dim_exact_div(c, d, tir_dim_const(c, v));
    return q && tir_dim_mul(c, q, tir_dim_const(c, v)) == d;
}

static int64_t sched_int(const tir_attr_value *s, const char *key, int64_t dflt) {
    const tir_attr_value *e = tir_dict_get(s, key);
    if (!e) return dflt;
    if (e->kind == TIR_ATTR_INT) return e->u.i;
    if (e->kind == TIR_ATTR_BOOL) return e->u.b;
    return dflt;
}

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

static void splat(fx *f, LLVMValueRef *out, LLVMValueRef x) {
    for (int j = 0; j < f->vec; j++) out[j] = x;
}

static bool same_crd(const crd *a, const crd *b) {
    if (a->rank != b->rank || a->lane != b->lane || a->aligned != b->aligned) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->c[i] != b->c[i]) return false;
    return true;
}

static memo *memo_find(fx *f, const tir_value *v, const crd *co) {
    for (int i = f->nm - 1; i >= 0; i--)
        if (f->m[i].v == v && same_crd(&f->m[i].co, co)) return &f->m[i];
    return NULL;
}

static void memo_add(fx *f, const tir_value *v, const crd *co, LLVMValueRef *lanes) {
    if (f->nm == f->cap) {
        int nc = f->cap ? 2 * f->cap : 64;
        memo *nm = realloc(f->m, (size_t)nc * sizeof *nm);
        if (!nm) {
            cg_fail(f->g, TIR_ERR_OOM, "out of memory");
            return;
        }
        f->m = nm;
        f->cap = nc;
    }
    memo *e = &f->m[f->nm++];
    e->v = v;
    e->co = *co;
    memcpy(e->lane, lanes, sizeof e->lane);
}

/* ---------------------------------------------------------------- scalar ops
 * Values are compute values (cg_ctype) of their dtype, already rounded to it. */

static LLVMValueRef fconst(LLVMValueRef like, double v) { return LLVMConstReal(LLVMTypeOf(like), v); }

/* f32 compute value -> bf16 storage bits with the hardware's cvt.rn.bf16.f32 (sm_80+): round to
 * nearest even like cg_narrow's integer sequence, in one instruction instead of eight. The one
 * difference: a NaN becomes the canonical NaN 0x7fff rather than keeping its sign (still a NaN,
 * which is all tir promises of a NaN's bits). Other dtypes go through cg_narrow. */
static LLVMValueRef narrow(cg *g, tir_dtype dt, LLVMValueRef cv) {
    if (dt == TIR_BF16 && LLVMTypeOf(cv) == g->t_f32)
        return LLVMBuildBitCast(g->B, LLVMBuildFPTrunc(g->B, cv, g->t_bf16, ""), g->t_i16, "");
    return cg_narrow(g, dt, cv);
}

/* the compute value of dtype dt for an f32/f64 result r, rounded as the interpreter rounds */
static LLVMValueRef round_to(cg *g, tir_dtype dt, LLVMValueRef r) {
    if (dt == TIR_F32 || dt == TIR_F64) return r;
    /* fpext (exact), so that LLVM folds a store's fptrunc(fpext(y)) back to y: a value
     * rounded to bf16 and then stored is converted once */
    if (dt == TIR_BF16 && LLVMTypeOf(r) == g->t_f32)
        return LLVMBuildFPExt(g->B, LLVMBuildFPTrunc(g->B, r, g->t_bf16, ""), g->t_f32, "");
    return cg_widen(g, dt, narrow(g, dt, r));
}

static LLVMValueRef const_of(cg *g, tir_dtype dt, double v) {
    v = tir_dtype_round(dt, v);
    if (tir_dtype_is_float(dt)) return LLVMConstReal(cg_ctype(g, dt), v);
    if (dt == TIR_BOOL) return LLVMConstInt(g->t_i1, v != 0, 0);
    return LLVMConstInt(cg_ctype(g, dt), (unsigned long long)(long long)v, 1);
}

static bool is16(tir_dtype t) { return t == TIR_BF16 || t == TIR_F16; }

/* e^x in f32 through the MUFU's ex2.approx (non-ftz: subnormal results kept): x*log2(e) split
 * into hi + lo by an FMA (lo is the product's rounding error plus log2(e)'s own), and
 * e^x = 2^hi * (1 + lo*ln2). Relative error about 2^-21, against 2^-9 for a half ulp of
 * bf16, so it serves ops whose result is rounded to a 16-bit float (flipping such a rounding
 * needs the exact value within 2^-21 of a tie). lo is dropped where |x| >= 128, where 2^hi is 0
 * or inf already and lo would be NaN; a NaN x gives NaN. */
static LLVMValueRef fast_exp(cg *g, LLVMValueRef x) {
    LLVMBuilderRef B = g->B;
    const double L = 1.4426950408889634;
    float Lf = (float)L;
    LLVMValueRef hi = LLVMBuildFMul(B, x, fconst(x, Lf), "");
    LLVMValueRef fma3[3] = {x, fconst(x, Lf), LLVMBuildFNeg(B, hi, "")};
    LLVMTypeRef t = g->t_f32;
    LLVMValueRef lo = cg_intr(g, "llvm.fma", t, 1, &t, 3, fma3);
    LLVMValueRef fb[3] = {x, fconst(x, (float)(L - (double)Lf)), lo};
    lo = cg_intr(g, "llvm.fma", t, 1, &t, 3, fb);
    LLVMValueRef small = LLVMBuildFCmp(B, LLVMRealOLT, cg_intr1(g, "llvm.fabs", x), fconst(x, 128.0), "");
    lo = LLVMBuildSelect(B, small, lo, fconst(x, 0.0), "");
    LLVMValueRef fc[3] = {lo, fconst(x, 0.6931471805599453), fconst(x, 1.0)};
    LLVMValueRef c = cg_intr(g, "llvm.fma", t, 1, &t, 3, fc);
    return LLVMBuildFMul(B, cg_intr1(g, "llvm.nvvm.ex2.approx", hi), c, "");
}

/* exp, sigmoid and silu of an f32 compute value whose result is rounded to bf16/f16: the MUFU
 * paths (fast_exp, rcp.approx with 1 ulp) instead of the f32-exact polynomial and IEEE
 * division, which made SwiGLU issue-bound (about 60 instructions an element). sigmoid uses
 * t = e^-|a| in (0, 1], so 1 + t is in [1, 2] (the reciprocal never sees an overflowed
 * e^-a) and sigmoid(a) = a >= 0 ? 1/(1+t) : t/(1+t). NULL: no fast form, use cg_float_op. */
static LLVMValueRef fast16_op(cg *g, tir_opcode code, LLVMValueRef a) {
    LLVMBuilderRef B = g->B;
    if (LLVMTypeOf(a) != g->t_f32) return NULL;
    if (code == TIR_OP_EXP) return fast_exp(g, a);
    if (code != TIR_OP_SIGMOID && code != TIR_OP_SILU) return NULL;
    LLVMValueRef t = fast_exp(g, LLVMBuildFNeg(B, cg_intr1(g, "llvm.fabs", a), ""));
    LLVMValueRef one_t = LLVMBuildFAdd(B, fconst(a, 1.0), t, "");
    LLVMValueRef s = cg_intr(g, "llvm.nvvm.rcp.approx.ftz.f", g->t_f32, 0, NULL, 1, &one_t);
    LLVMValueRef neg = LLVMBuildFCmp(B, LLVMRealOLT, a, fconst(a, 0.0), "");
    LLVMValueRef sig = LLVMBuildSelect(B, neg, LLVMBuildFMul(B, t, s, ""), s, "");
    return code == TIR_OP_SILU ? LLVMBuildFMul(B, a, sig, "") : sig;
}

/* one lane of an elementwise member: operands' compute values -> the result's */
static LLVMValueRef scalar(cg *g, const tir_op *op, LLVMValueRef *a) {
    tir_opcode code = op->code;
    tir_dtype dt = op->in[0]->type.dtype, odt = op->out[0]->type.dtype;
    unsigned fl = tir_ops[code].flags;
    if (code == TIR_OP_WHERE) return LLVMBuildSelect(g->B, a[0], a[1], a[2], "");
    if (code == TIR_OP_CAST) {
        if (odt == TIR_BF16 && (dt == TIR_F32 || dt == TIR_F16 || dt == TIR_BF16)) return round_to(g, odt, a[0]);
        return cg_widen(g, odt, cg_cast(g, dt, a[0], odt));
    }
    if (fl & TIR_F_LOGIC)
        return code == TIR_OP_NOT ? LLVMBuildNot(g->B, a[0], "")
               : code == TIR_OP_AND ? LLVMBuildAnd(g->B, a[0], a[1], "")
                                    : LLVMBuildOr(g->B, a[0], a[1], "");
    if (fl & TIR_F_COMPARE) return cg_compare(g, code, dt, a[0], a[1]);
    LLVMValueRef r = NULL;
    if (tir_dtype_is_float(dt)) {
        if (is16(odt) && (r = fast16_op(g, code, a[0]))) return round_to(g, odt, r);
        if ((r = cg_float_op(g, op, a[0], op->nin > 1 ? a[1] : NULL))) return round_to(g, odt, r);
    } else if (tir_dtype_is_int(dt)) {
        r = cg_int_op(g, code, cg_to_i64(g, dt, a[0]), op->nin > 1 ? cg_to_i64(g, dt, a[1]) : NULL);
        if (r) return cg_cast(g, TIR_I64, r, odt);
    }
    cg_fail(g, TIR_ERR_UNSUPPORTED, "fused codegen: %s on %s", tir_ops[code].name, tir_dtype_name(dt));
    return LLVMGetPoison(cg_ctype(g, odt));
}

/* ---------------------------------------------------------------- evaluation */

static void eval(fx *f, const tir_value *v, const crd *co, LLVMValueRef *out);

/* coordinates of x (which broadcasts to the shape co indexes, NumPy-aligned) */
static void bcast_crd(const crd *co, const tir_type *ot, const tir_type *xt, crd *xc, cg *g) {
    int off = ot->rank - xt->rank;
    xc->rank = xt->rank;
    xc->lane = -1;
    xc->aligned = co->aligned;
    for (int j = 0; j < xt->rank; j++) {
        int64_t c;
        bool one = tir_dim_is_const(xt->dims[j], &c) && c == 1;
        xc->c[j] = one ? cg_i64(g, 0) : co->c[j + off];
        if (!one && co->lane == j + off) xc->lane = j;
    }
    bool same = cg_same_dims(xt, ot);
    xc->flat = same ? co->flat : NULL;
    xc->flat_t = same ? co->flat_t : NULL;
}

/* v evaluated one lane at a time (lanes whose coordinates an index map cannot keep together) */
static void scalarize(fx *f, const tir_value *v, const crd *co, LLVMValueRef *out) {
    int vec = f->vec;
    LLVMValueRef tmp[MAXV];
    for (int j = 0; j < vec; j++) {
        crd cj = *co;
        cj.c[co->lane] = LLVMBuildAdd(f->g->B, co->c[co->lane], cg_i64(f->g, j), "");
        cj.lane = -1;
        cj.aligned = false;
        cj.flat = NULL;
        eval(f, v, &cj, tmp); /* lane-free: every lane of tmp holds the one value */
        out[j] = tmp[0];
    }
}

static void load_param(fx *f, const tir_value *v, const crd *co, LLVMValueRef *out) {
    cg *g = f->g;
    const tir_type *t = &v->type;
    tir_dtype dt = t->dtype;
    LLVMValueRef buf = g->buf[v->index];
    LLVMTypeRef st = cg_stype(g, dt);
    LLVMValueRef off = co->flat && co->flat_t && cg_same_dims(t, co->flat_t) ? co->flat
                                                                             : cg_offset(g, t, (LLVMValueRef *)co->c);
    if (co->lane < 0 || f->vec == 1) {
        splat(f, out, cg_widen(g, dt, cg_load(g, dt, buf, off)));
        return;
    }
    if (co->lane == t->rank - 1) {
        size_t es = tir_dtype_size(dt);
        bool al = co->aligned && multiple_of(g->ctx, t->dims[t->rank - 1], f->vec);
        if (dt == TIR_BF16 && al) {
            /* aligned bf16 pairs as 32-bit words: the low lane is w << 16, the high lane
             * w & 0xffff0000, one instruction a lane (exact: bf16 is f32's top half) */
            LLVMTypeRef wt = LLVMVectorType(g->t_i32, (unsigned)f->vec / 2);
            LLVMValueRef ld = LLVMBuildLoad2(g->B, wt, cg_gep(g, st, buf, off), "");
            LLVMSetAlignment(ld, (unsigned)(es * (size_t)f->vec));
            for (int j = 0; j < f->vec; j += 2) {
                LLVMValueRef w = LLVMBuildExtractElement(g->B, ld, cg_i32(g, j / 2), "");
                out[j] = LLVMBuildBitCast(g->B, LLVMBuildShl(g->B, w, cg_i32(g, 16), ""), g->t_f32, "");
                out[j + 1] = LLVMBuildBitCast(g->B, LLVMBuildAnd(g->B, w, LLVMConstInt(g->t_i32, 0xffff0000u, 0), ""),
                                              g->t_f32, "");
            }
            return;
        }
        LLVMTypeRef vt = LLVMVectorType(st, (unsigned)f->vec);
        LLVMValueRef ld = LLVMBuildLoad2(g->B, vt, cg_gep(g, st, buf, off), "");
        LLVMSetAlignment(ld, (unsigned)(al ? es * (size_t)f->vec : es));
        for (int j = 0; j < f->vec; j++)
            out[j] = cg_widen(g, dt, LLVMBuildExtractElement(g->B, ld, cg_i32(g, j), ""));
        return;
    }
    LLVMValueRef stride = cg_i64(g, 1);
    for (int k = co->lane + 1; k < t->rank; k++) stride = LLVMBuildMul(g->B, stride, cg_dimv(g, t->dims[k]), "");
    for (int j = 0; j < f->vec; j++) {
        LLVMValueRef o = LLVMBuildAdd(g->B, off, LLVMBuildMul(g->B, stride, cg_i64(g, j), ""), "");
        out[j] = cg_widen(g, dt, cg_load(g, dt, buf, o));
    }
}

/* the coordinates of a movement op's operand: 1; 0 when the lanes must be evaluated one by
 * one; -1 on error (recorded in g) */
static int move_crd(fx *f, const tir_op *op, const crd *co, crd *xc) {
    cg *g = f->g;
    const tir_type *xt = &op->in[0]->type, *vt = &op->out[0]->type;
    switch (op->code) {
    case TIR_OP_BROADCAST: bcast_crd(co, vt, xt, xc, g); return 1;
    case TIR_OP_TRANSPOSE: {
        const tir_attr_value *p = tir_op_attr(op, "perm");
        if (!p || p->u.ints.n != xt->rank) {
            cg_fail(g, TIR_ERR_TYPE, "fused codegen: bad perm");
            return -1;
        }
        *xc = *co;
        xc->lane = -1;
        xc->flat = NULL;
        for (int j = 0; j < vt->rank; j++) {
            int64_t pj = p->u.ints.v[j];
            if (pj < 0 || pj >= xt->rank) {
                cg_fail(g, TIR_ERR_TYPE, "fused codegen: bad perm");
                return -1;
            }
            xc->c[pj] = co->c[j];
            if (co->lane == j) xc->lane = (int)pj;
        }
        return 1;
    }
    case TIR_OP_SLICE: {
        int ax;
        if (!tir_norm_axis(tir_attr_int(op, "axis", 0), xt->rank, &ax)) {
            cg_fail(g, TIR_ERR_TYPE, "fused codegen: slice axis out of range");
            return -1;
        }
        int64_t step = tir_attr_int(op, "step", 1), start = tir_attr_int(op, "start", 0);
        if (co->lane == ax && step != 1) return 0;
        *xc = *co;
        xc->flat = NULL;
        // start follows Python: negative counts from the end; clamped to [0, dim]
        LLVMValueRef dim = cg_dimv(g, xt->dims[ax]), s;
        if (start < 0) s = cg_smax(g, LLVMBuildAdd(g->B, dim, cg_i64(g, start), ""), cg_i64(g, 0));
        else s = cg_smin(g, cg_i64(g, start), dim);
        xc->c[ax] = LLVMBuildAdd(g->B, s, LLVMBuildMul(g->B, co->c[ax], cg_i64(g, step), ""), "");
        if (co->lane == ax && start != 0) xc->aligned = false;
        return 1;
    }
    case TIR_OP_RESHAPE: {
        if (co->lane >= 0 &&
            !(co->lane == vt->rank - 1 && co->aligned && xt->rank > 0 &&
              multiple_of(g->ctx, vt->dims[vt->rank - 1], f->vec) &&
              multiple_of(g->ctx, xt->dims[xt->rank - 1], f->vec)))
            return 0;
        // the same flat index in both shapes
        LLVMValueRef lin = co->flat && co->flat_t && cg_same_dims(vt, co->flat_t) ? co->flat
                                                                                  : cg_offset(g, vt, (LLVMValueRef *)co->c);
        xc->rank = xt->rank;
        cg_unravel(g, lin, xt, xc->c);
        xc->lane = co->lane >= 0 ? xt->rank - 1 : -1;
        xc->aligned = co->aligned;
        xc->flat = lin;
        xc->flat_t = xt;
        return 1;
    }
    default:
        cg_fail(g, TIR_ERR_UNSUPPORTED, "fused codegen: %s in a region", tir_ops[op->code].name);
        return -1;
    }
}

static void eval(fx *f, const tir_value *v, const crd *co, LLVMValueRef *out) {
    cg *g = f->g;
    memo *hit = memo_find(f, v, co);
    if (hit) {
        memcpy(out, hit->lane, sizeof hit->lane);
        return;
    }
    const tir_op *op = v->def;
    if (!op) {
        load_param(f, v, co, out);
    } else if (op->code == TIR_OP_FULL) {
        splat(f, out, const_of(g, v->type.dtype, tir_attr_float(op, "value", 0.0)));
    } else if (op->code == TIR_OP_IOTA) {
        /* the coordinate along axis, in registers (fuse copies iota in like a constant) */
        int ax = 0;
        tir_dtype dt = v->type.dtype;
        if (v->type.rank > 0 && !tir_norm_axis(tir_attr_int(op, "axis", 0), v->type.rank, &ax)) {
            cg_fail(g, TIR_ERR_TYPE, "fused codegen: iota axis out of range");
            splat(f, out, LLVMGetPoison(cg_ctype(g, dt)));
            return;
        }
        LLVMValueRef c = v->type.rank > 0 ? co->c[ax] : cg_i64(g, 0);
        for (int j = 0; j < f->vec; j++) {
            if (j > 0 && co->lane != ax) {
                out[j] = out[0];
                continue;
            }
            LLVMValueRef k = j ? LLVMBuildAdd(g->B, c, cg_i64(g, j), "") : c;
            out[j] = cg_widen(g, dt, cg_cast(g, TIR_I64, k, dt));
        }
    } else if (tir_ops[op->code].flags & TIR_F_REDUCE) {
        LLVMValueRef r = v->id >= 0 && v->id < f->R->nvalues ? f->red[v->id] : NULL;
        if (!r) {
            cg_fail(g, TIR_ERR_INTERNAL, "fused codegen: %s used before its row is reduced",
                    tir_ops[op->code].name);
            r = LLVMGetPoison(cg_ctype(g, v->type.dtype));
        }
        splat(f, out, r);
    } else if (tir_op_is_elementwise(op->code)) {
        LLVMValueRef in[3][MAXV];
        if (op->nin > 3) {
            cg_fail(g, TIR_ERR_UNSUPPORTED, "fused codegen: %s with %d operands", tir_ops[op->code].name, op->nin);
            splat(f, out, LLVMGetPoison(cg_ctype(g, v->type.dtype)));
            return;
        }
        for (int k = 0; k < op->nin; k++) {
            crd xc;
            bcast_crd(co, &v->type, &op->in[k]->type, &xc, g);
            eval(f, op->in[k], &xc, in[k]);
        }
        /* lanes that read the same operands compute once */
        for (int j = 0; j < f->vec; j++) {
            bool same = j > 0;
            for (int k = 0; k < op->nin && same; k++) same = in[k][j] == in[k][j - 1];
            if (same) {
                out[j] = out[j - 1];
                continue;
            }
            LLVMValueRef a[3] = {NULL, NULL, NULL};
            for (int k = 0; k < op->nin; k++) a[k] = in[k][j];
            out[j] = scalar(g, op, a);
        }
    } else if (tir_ops[op->code].flags & TIR_F_MOVEMENT) {
        crd xc;
        int how = move_crd(f, op, co, &xc);
        if (how > 0) eval(f, op->in[0], &xc, out);
        else if (how == 0) scalarize(f, v, co, out);
        else {
            splat(f, out, LLVMGetPoison(cg_ctype(g, v->type.dtype)));
            return;
        }
    } else {
        cg_fail(g, TIR_ERR_UNSUPPORTED, "fused codegen: %s in a region", tir_ops[op->code].name);
        splat(f, out, LLVMGetPoison(cg_ctype(g, v->type.dtype)));
        return;
    }
    memo_add(f, v, co, out);
}

/* Issues, at coordinates co of v, the loads of the parameters v reads through elementwise ops
 * and broadcasts (the maps whose coordinates are the same LLVM values, so the memo finds them
 * again), stopping at reductions and other index maps. lower_rows calls it before the row's
 * reductions so that, e.g., RMSNorm's weight is in flight with x instead of being requested
 * after the reduction's barriers, where its latency is exposed on every row. */
static void prefetch(fx *f, const tir_value *v, const crd *co) {
    const tir_op *op = v->def;
    if (memo_find(f, v, co)) return;
    if (!op) {
        LLVMValueRef tmp[MAXV];
        eval(f, v, co, tmp);
        return;
    }
    if (!tir_op_is_elementwise(op->code) && op->code != TIR_OP_BROADCAST) return;
    for (int k = 0; k < op->nin; k++) {
        crd xc;
        bcast_crd(co, &v->type, &op->in[k]->type, &xc, f->g);
        prefetch(f, op->in[k], &xc);
    }
}

/* stores lanes (compute values of dt) at buf[off ..]: one vector store when there are several */
static void store_lanes(fx *f, tir_dtype dt, LLVMValueRef buf, LLVMValueRef off, LLVMValueRef *lanes,
                        int n) {
    cg *g = f->g;
    if (n == 1) {
        cg_store(g, dt, buf, off, narrow(g, dt, lanes[0]));
        return;
    }
    LLVMTypeRef st = cg_stype(g, dt);
    LLVMValueRef vv;
    if (dt == TIR_BF16 && LLVMTypeOf(lanes[0]) == g->t_f32) {
        /* one vector fptrunc: pairs become cvt.rn.bf16x2.f32, half an instruction a lane */
        LLVMValueRef fv = LLVMGetUndef(LLVMVectorType(g->t_f32, (unsigned)n));
        for (int j = 0; j < n; j++) fv = LLVMBuildInsertElement(g->B, fv, lanes[j], cg_i32(g, j), "");
        vv = LLVMBuildBitCast(g->B, LLVMBuildFPTrunc(g->B, fv, LLVMVectorType(g->t_bf16, (unsigned)n), ""),
                              LLVMVectorType(st, (unsigned)n), "");
    } else {
        vv = LLVMGetUndef(LLVMVectorType(st, (unsigned)n));
        for (int j = 0; j < n; j++)
            vv = LLVMBuildInsertElement(g->B, vv, narrow(g, dt, lanes[j]), cg_i32(g, j), "");
    }
    LLVMValueRef s = LLVMBuildStore(g->B, vv, cg_gep(g, st, buf, off));
    LLVMSetAlignment(s, (unsigned)(tir_dtype_size(dt) * (size_t)n));
}

/* every dim of every value of the region becomes a kernel parameter (constants are baked in) */
static void use_region_types(cg *g, const tir_func *R) {
    for (int i = 0; i < R->nparams; i++) cg_use_type(g, &R->params[i]->type);
    for (int i = 0; i < R->nops; i++)
        for (int j = 0; j < R->ops[i]->nout; j++) cg_use_type(g, &R->ops[i]->out[j]->type);
}

/* Every buffer parameter is noalias, operands also readonly: the runtime allocates each result
 * afresh for its launch and a region names each operand once, so no result overlaps anything
 * the kernel reads (two operands may share memory, which noalias allows for memory that is
 * only read). LLVM then reads operands with ld.global.nc and may move loads past stores. */
static void mark_buffers(cg *g, int nin) {
    unsigned na = LLVMGetEnumAttributeKindForName("noalias", 7);
    unsigned ro = LLVMGetEnumAttributeKindForName("readonly", 8);
    for (int i = 0; i < g->nbuf; i++) {
        LLVMAddAttributeAtIndex(g->fn, (unsigned)i + 1, LLVMCreateEnumAttribute(g->C, na, 0));
        if (i < nin) LLVMAddAttributeAtIndex(g->fn, (unsigned)i + 1, LLVMCreateEnumAttribute(g->C, ro, 0));
    }
}

static int clamp_vec(int64_t v) {
    int r = 1;
    while (r * 2 <= v && r * 2 <= MAXV) r *= 2;
    return r;
}

/* ---------------------------------------------------------------- kind="elementwise" */

static tir_status lower_elementwise(fx *f, const tir_op *fop, const char *name, int64_t vreq) {
    cg *g = f->g;
    const tir_func *R = f->R;
    const tir_type *ot = &R->results[0]->type;
    for (int r = 1; r < R->nres; r++)
        if (!cg_same_dims(&R->results[r]->type, ot))
            return cg_fail(g, TIR_ERR_UNSUPPORTED, "fused codegen: elementwise results of different shapes");
    int vec = clamp_vec(vreq);
    if (ot->rank == 0 || !multiple_of(g->ctx, ot->dims[ot->rank - 1], vec)) vec = 1;
    f->vec = vec;
    use_region_types(g, R);
    cg_use_type(g, ot);
    cg_begin_kernel(g, name, fop->nin + fop->nout, CG_BLOCK);
    mark_buffers(g, fop->nin);
    LLVMBuilderRef B = g->B;

    // out is (D0, ..., Dr-1); thread i computes elements i*vec .. i*vec + vec-1 of every result
    LLVMValueRef n = cg_numel(g, ot);
    LLVMValueRef nv = vec > 1 ? LLVMBuildUDiv(B, n, cg_i64(g, vec), "") : n;
    cg_loop l;
    LLVMValueRef i = cg_grid_loop_begin(g, &l, nv);
    LLVMValueRef base = vec > 1 ? LLVMBuildMul(B, i, cg_i64(g, vec), "") : i;
    crd co = {.rank = ot->rank, .lane = vec > 1 ? ot->rank - 1 : -1, .aligned = true,
              .flat = base, .flat_t = ot};
    cg_unravel(g, base, ot, co.c);
    LLVMValueRef vals[8][MAXV];
    LLVMValueRef (*lanes)[MAXV] = R->nres <= 8 ? vals : malloc((size_t)R->nres * sizeof *lanes);
    if (!lanes) return cg_fail(g, TIR_ERR_OOM, "out of memory");
    // every operand's load issued before the math that uses the first (SwiGLU: b's 16 bytes are
    // in flight while silu(a) is computed)
    for (int r = 0; r < R->nres; r++) prefetch(f, R->results[r], &co);
    for (int r = 0; r < R->nres; r++) eval(f, R->results[r], &co, lanes[r]);
    for (int r = 0; r < R->nres; r++)
        store_lanes(f, R->results[r]->type.dtype, g->buf[fop->nin + r], base, lanes[r], vec);
    if (lanes != vals) free(lanes);
    f->nm = 0;
    cg_for_end(g, &l);
    LLVMBuildRetVoid(B);
    const tir_dim *nd = cg_numel_dim(g, ot);
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
    LLVMValueRef smem[4];         /* partials of the warps when T > 32, by accumulator type */
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

/* the fold of every thread's acc over its row group; every thread of the group gets it */
static LLVMValueRef group_reduce(fx *f, rowk *rk, tir_opcode code, LLVMValueRef acc) {
    cg *g = f->g;
    LLVMBuilderRef B = g->B;
    for (int m = (rk->T < 32 ? rk->T : 32) / 2; m >= 1; m /= 2)
        acc = red_combine(g, code, acc, cg_shfl_xor(g, acc, m));
    if (rk->T <= 32) return acc;
    LLVMTypeRef at = LLVMTypeOf(acc);
    int slot = at == g->t_f32 ? 0 : at == g->t_f64 ? 1 : at == g->t_i64 ? 2 : 3;
    static const char *const names[4] = {"red_f32", "red_f64", "red_i64", "red_i128"};
    if (!rk->smem[slot]) rk->smem[slot] = cg_shared_array(g, names[slot], at, rk->threads / 32);
    LLVMValueRef sm = rk->smem[slot];
    LLVMValueRef warp = LLVMBuildLShr(B, rk->tid, cg_i64(g, 5), "");
    cg_if c;
    cg_if_begin(g, &c, LLVMBuildICmp(B, LLVMIntEQ, LLVMBuildAnd(B, rk->tid, cg_i64(g, 31), ""), cg_i64(g, 0), ""));
    LLVMBuildStore(B, acc, cg_gep(g, at, sm, warp));
    cg_if_end(g, &c);
    cg_barrier(g);
    int nw = rk->T / 32;
    LLVMValueRef first = LLVMBuildMul(B, rk->sub, cg_i64(g, nw), "");
    LLVMValueRef r = LLVMBuildLoad2(B, at, cg_gep(g, at, sm, first), "");
    for (int k = 1; k < nw; k++)
        r = red_combine(g, code, r, LLVMBuildLoad2(B, at, cg_gep(g, at, sm, LLVMBuildAdd(B, first, cg_i64(g, k), "")), ""));
    /* the slots are reused by the next reduction */
    cg_barrier(g);
    return r;
}

static tir_status lower_rows(fx *f, const tir_op *fop, const char *name, const tir_attr_value *sched) {
    cg *g = f->g;
    const tir_func *R = f->R;
    LLVMBuilderRef B;
    rowk rk;
    memset(&rk, 0, sizeof rk);
    /* the reductions: one F, one set of axes */
    const tir_op *first = NULL;
    bool isred[TIR_MAX_RANK] = {false};
    for (int i = 0; i < R->nops; i++) {
        const tir_op *op = R->ops[i];
        if (!(tir_ops[op->code].flags & TIR_F_REDUCE)) continue;
        if (op->code == TIR_OP_ARGMAX || (op->code == TIR_OP_MEAN && !tir_dtype_is_float(op->in[0]->type.dtype)))
            return cg_fail(g, TIR_ERR_UNSUPPORTED, "fused codegen: %s of %s", tir_ops[op->code].name,
                           tir_dtype_name(op->in[0]->type.dtype));
        const tir_type *xt = &op->in[0]->type;
        bool ax[TIR_MAX_RANK];
        const tir_attr_value *axes = tir_op_attr(op, "axes");
        for (int k = 0; k < xt->rank; k++) ax[k] = axes == NULL;
        for (int j = 0; axes && j < axes->u.ints.n; j++) {
            int a;
            if (!tir_norm_axis(axes->u.ints.v[j], xt->rank, &a))
                return cg_fail(g, TIR_ERR_TYPE, "fused codegen: reduction axis out of range");
            ax[a] = true;
        }
        if (!first) {
            first = op;
            rk.F = xt;
            memcpy(isred, ax, sizeof ax);
        } else {
            if (!cg_same_dims(xt, rk.F) || memcmp(ax, isred, sizeof(bool) * (size_t)xt->rank) != 0)
                return cg_fail(g, TIR_ERR_UNSUPPORTED, "fused codegen: reductions over different rows");
        }
    }
    if (!first) return lower_elementwise(f, fop, name, sched_int(sched, "vector", 1));
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
    /* results: F-shaped (per element) or one per row */
    bool *per_row = calloc((size_t)R->nres, sizeof *per_row);
    if (!per_row) return cg_fail(g, TIR_ERR_OOM, "out of memory");
    for (int r = 0; r < R->nres; r++) {
        const tir_type *t = &R->results[r]->type;
        if (cg_same_dims(t, F)) continue;
        if (cg_numel_dim(g, t) == rows_d) {
            per_row[r] = true;
            continue;
        }
        free(per_row);
        return cg_fail(g, TIR_ERR_UNSUPPORTED, "fused codegen: a result that is neither the rows nor their elements");
    }

    int vec = clamp_vec(sched_int(sched, "vector", 1));
    if (!rk.suffix || !multiple_of(g->ctx, F->dims[F->rank - 1], vec)) vec = 1;
    f->vec = vec;
    int64_t warps = sched_int(sched, "warps", 8), rpb = sched_int(sched, "rows_per_block", 1);
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
        if (c * vec <= REG_VALS(threads)) chunks = (int)c;
    }

    use_region_types(g, R);
    cg_begin_kernel(g, name, fop->nin + fop->nout, threads);
    mark_buffers(g, fop->nin);
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
    LLVMValueRef step = cg_i64(g, (int64_t)rk.T * vec);
    LLVMValueRef L = rk.L;

    // F is (K.., R..): block b handles row groups b, b + grid, ...; group sub of the block row
    // gi*rpb + sub (clamped to the last row so that barriers stay uniform; stores are guarded)
    cg_loop lr;
    LLVMValueRef gi = cg_for_begin(g, &lr, cg_sreg(g, "ctaid.x"), ngroups, cg_sreg(g, "nctaid.x"));
    LLVMValueRef row_raw = LLVMBuildAdd(B, LLVMBuildMul(B, gi, cg_i64(g, rpb), ""), rk.sub, "");
    LLVMValueRef valid = LLVMBuildICmp(B, LLVMIntULT, row_raw, rows, "");
    rk.row = cg_umin(g, row_raw, LLVMBuildSub(B, rows, cg_i64(g, 1), ""));
    rk.rowL = LLVMBuildMul(B, rk.row, L, "");
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
            if (!per_row[r]) prefetch(f, R->results[r], &co);
    }
    for (int i = 0; i < R->nops && g->st == TIR_OK; i++) {
        const tir_op *op = R->ops[i];
        if (!(tir_ops[op->code].flags & TIR_F_REDUCE)) continue;
        tir_dtype idt = op->in[0]->type.dtype, odt = op->out[0]->type.dtype;
        LLVMTypeRef at = acc_type(g, op->code, idt);
        LLVMValueRef id = red_identity(at, op->code), acc;
        LLVMValueRef vals[MAXV];
        if (chunks) {
            acc = id;
            for (int c = 0; c < chunks; c++) {
                crd co = row_crd(f, &rk, ce[c]);
                eval(f, op->in[0], &co, vals);
                for (int j = 0; j < vec; j++) {
                    LLVMValueRef x = to_acc(g, idt, vals[j], at);
                    if (cok[c]) x = LLVMBuildSelect(B, cok[c], x, id, "");
                    acc = red_combine(g, op->code, acc, x);
                }
            }
        } else {
            LLVMValueRef accp = entry_alloca(g, at);
            LLVMBuildStore(B, id, accp);
            cg_loop le;
            LLVMValueRef e = cg_for_begin(g, &le, e0, L, step);
            int mark = f->nm;
            crd co = row_crd(f, &rk, e);
            eval(f, op->in[0], &co, vals);
            LLVMValueRef a = LLVMBuildLoad2(B, at, accp, "");
            for (int j = 0; j < vec; j++) a = red_combine(g, op->code, a, to_acc(g, idt, vals[j], at));
            LLVMBuildStore(B, a, accp);
            f->nm = mark;
            cg_for_end(g, &le);
            acc = LLVMBuildLoad2(B, at, accp, "");
        }
        acc = group_reduce(f, &rk, op->code, acc);
        f->red[op->out[0]->id] = from_acc(g, op->code, acc, L, odt);
    }

    // per-element results of the row: evaluated first, then stored under one guard
    bool any_full = false;
    for (int r = 0; r < R->nres; r++) any_full |= !per_row[r];
    LLVMValueRef (*lanes)[MAXV] = malloc((size_t)(R->nres ? R->nres : 1) * sizeof *lanes);
    if (!lanes) {
        free(per_row);
        return cg_fail(g, TIR_ERR_OOM, "out of memory");
    }
    for (int c = 0; any_full && c < (chunks ? chunks : 1) && g->st == TIR_OK; c++) {
        cg_loop le;
        LLVMValueRef e;
        int mark = f->nm;
        if (chunks) e = ce[c];
        else e = cg_for_begin(g, &le, e0, L, step);
        crd co = row_crd(f, &rk, e);
        for (int r = 0; r < R->nres; r++)
            if (!per_row[r]) eval(f, R->results[r], &co, lanes[r]);
        LLVMValueRef ok = chunks && cok[c] ? LLVMBuildAnd(B, valid, cok[c], "") : valid;
        cg_if st;
        cg_if_begin(g, &st, ok);
        for (int r = 0; r < R->nres; r++) {
            if (per_row[r]) continue;
            LLVMValueRef off = co.flat ? co.flat : cg_offset(g, F, co.c);
            store_lanes(f, R->results[r]->type.dtype, g->buf[fop->nin + r], off, lanes[r], vec);
        }
        cg_if_end(g, &st);
        if (!chunks) {
            f->nm = mark;
            cg_for_end(g, &le);
        }
    }
    // per-row results: one store per row, by the group's first thread
    bool any_row = false;
    for (int r = 0; r < R->nres; r++) {
        if (!per_row[r]) continue;
        any_row = true;
        const tir_type *t = &R->results[r]->type;
        crd co = {.rank = t->rank, .lane = -1, .flat = rk.row, .flat_t = t};
        cg_unravel(g, rk.row, t, co.c);
        eval(f, R->results[r], &co, lanes[r]);
    }
    if (any_row) {
        cg_if st;
        cg_if_begin(g, &st, LLVMBuildAnd(B, valid, LLVMBuildICmp(B, LLVMIntEQ, rk.t, cg_i64(g, 0), ""), ""));
        for (int r = 0; r < R->nres; r++)
            if (per_row[r]) store_lanes(f, R->results[r]->type.dtype, g->buf[fop->nin + r], rk.row, lanes[r], 1);
        cg_if_end(g, &st);
    }
    free(lanes);
    free(per_row);
    f->nm = 0;
    cg_for_end(g, &lr);
    LLVMBuildRetVoid(B);

    const tir_dim *gx = cg_ceil_div(g, rows_d, rpb);
    int64_t v64;
    if (tir_dim_is_const(gx, &v64) && v64 > (1 << 20)) gx = tir_dim_const(g->ctx, 1 << 20);
    g->k->grid[0] = gx;
    g->k->grid[1] = tir_dim_const(g->ctx, 1);
    g->k->grid[2] = tir_dim_const(g->ctx, 1);
    return g->st;
}

/* ---------------------------------------------------------------- entry */

tir_status tir_codegen_fused(tir_context *ctx, const tir_op *op, int id,
                             const tir_codegen_options *opts, tir_kernel *out, tir_diag *d) {
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
            s = lower_elementwise(&f, op, out->name, sched_int(sched, "vector", 1));
        else s = cg_fail(&g, TIR_ERR_UNSUPPORTED, "fused codegen: schedule kind \"%s\"", kind);
    }
    if (s == TIR_OK) s = cg_emit(&g, opt);
    cg_dispose(&g);
    free(f.red);
    free(f.m);
    if (s != TIR_OK) {
        tir_kernel_release(out);
        out->alias_of = -1;
    }
    return s;
}
