/* reduce.c: sum, max, min, mean and argmax over any set of axes, keepdim or not.
 *
 *   x is (D0, ..., Dr-1); the axes split it into kept dims K (in order) and reduced dims R.
 *   out is K (with 1s at the reduced axes under keepdim: the same flat order), one element per
 *   kept index o. One block of CG_BLOCK threads per output element (blocks stride over outputs):
 *   thread t folds the reduced indices t, t + CG_BLOCK, ... (each unravelled over R and added
 *   to o's base offset in x), then warps combine with shuffles and warp 0 combines the warps'
 *   results through shared memory.
 *
 * Accumulation: f32 for f32/f16/bf16/f8, f64 for f64, i64 for ints and i128 for sums of i64
 * (so no partial sum wraps; saturated to the dtype once at the end, as the interpreter rounds
 * once). max/min: NaN wins (the interpreter's NaN is
 * sticky). argmax: the first index of the maximum, a NaN counting as the maximum, so the first
 * NaN wins; the result is i64. mean divides the sum by the count. */
#include "cg.h"

#define WARPS (CG_BLOCK / 32)

typedef struct red {
    tir_opcode code;
    tir_dtype dt;       /* the input's dtype */
    bool isf;           /* accumulate in floating point */
    LLVMTypeRef at;     /* accumulator type */
} red;

static LLVMValueRef identity(cg *g, const red *r) {
    switch (r->code) {
    case TIR_OP_MAX:
    case TIR_OP_ARGMAX:
        return r->isf ? LLVMConstReal(r->at, -INFINITY) : cg_i64(g, INT64_MIN);
    case TIR_OP_MIN: return r->isf ? LLVMConstReal(r->at, INFINITY) : cg_i64(g, INT64_MAX);
    default: return r->isf ? LLVMConstReal(r->at, 0.0) : LLVMConstInt(r->at, 0, 0);
    }
}

/* the combined value of a and b (for argmax: whether b's pair wins, in *take_b) */
static LLVMValueRef combine(cg *g, const red *r, LLVMValueRef a, LLVMValueRef b, LLVMValueRef ia,
                            LLVMValueRef ib, LLVMValueRef *take_b) {
    LLVMBuilderRef B = g->B;
    switch (r->code) {
    case TIR_OP_SUM:
    case TIR_OP_MEAN: return r->isf ? LLVMBuildFAdd(B, a, b, "") : LLVMBuildAdd(B, a, b, "");
    case TIR_OP_MAX:
    case TIR_OP_MIN: {
        bool mx = r->code == TIR_OP_MAX;
        if (!r->isf) return mx ? cg_smax(g, a, b) : cg_smin(g, a, b);
        LLVMValueRef pick_b = LLVMBuildFCmp(B, mx ? LLVMRealOGT : LLVMRealOLT, b, a, "");
        pick_b = LLVMBuildOr(B, pick_b, cg_is_nan(g, b), ""); /* NaN is sticky either way */
        pick_b = LLVMBuildAnd(B, pick_b, LLVMBuildNot(B, cg_is_nan(g, a), ""), "");
        return LLVMBuildSelect(B, pick_b, b, a, "");
    }
    case TIR_OP_ARGMAX: {
        LLVMValueRef earlier = LLVMBuildICmp(B, LLVMIntSLT, ib, ia, "");
        LLVMValueRef t;
        if (r->isf) {
            LLVMValueRef an = cg_is_nan(g, a), bn = cg_is_nan(g, b);
            /* b wins: b NaN and (a not NaN or b earlier); or neither NaN and (b > a or b == a
             * and b earlier) */
            LLVMValueRef nanwin = LLVMBuildAnd(B, bn, LLVMBuildOr(B, LLVMBuildNot(B, an, ""), earlier, ""), "");
            LLVMValueRef gt = LLVMBuildFCmp(B, LLVMRealOGT, b, a, "");
            LLVMValueRef tie = LLVMBuildAnd(B, LLVMBuildFCmp(B, LLVMRealOEQ, b, a, ""), earlier, "");
            LLVMValueRef numwin = LLVMBuildAnd(B, LLVMBuildNot(B, an, ""), LLVMBuildOr(B, gt, tie, ""), "");
            t = LLVMBuildOr(B, nanwin, numwin, "");
        } else {
            LLVMValueRef gt = LLVMBuildICmp(B, LLVMIntSGT, b, a, "");
            LLVMValueRef tie = LLVMBuildAnd(B, LLVMBuildICmp(B, LLVMIntEQ, b, a, ""), earlier, "");
            t = LLVMBuildOr(B, gt, tie, "");
        }
        *take_b = t;
        return LLVMBuildSelect(B, t, b, a, "");
    }
    default: return a;
    }
}

/* folds (acc, idx) in the allocas with (v, iv) */
static void fold(cg *g, const red *r, LLVMValueRef accp, LLVMValueRef idxp, LLVMValueRef v,
                 LLVMValueRef iv) {
    LLVMValueRef a = LLVMBuildLoad2(g->B, r->at, accp, "");
    LLVMValueRef ia = idxp ? LLVMBuildLoad2(g->B, g->t_i64, idxp, "") : NULL;
    LLVMValueRef take = NULL;
    LLVMValueRef na = combine(g, r, a, v, ia, iv, &take);
    LLVMBuildStore(g->B, na, accp);
    if (idxp) LLVMBuildStore(g->B, LLVMBuildSelect(g->B, take, iv, ia, ""), idxp);
}

static void warp_reduce(cg *g, const red *r, LLVMValueRef accp, LLVMValueRef idxp) {
    for (int m = 16; m >= 1; m /= 2) {
        LLVMValueRef a = LLVMBuildLoad2(g->B, r->at, accp, "");
        LLVMValueRef v = cg_shfl_xor(g, a, m);
        LLVMValueRef iv = NULL;
        if (idxp) iv = cg_shfl_xor(g, LLVMBuildLoad2(g->B, g->t_i64, idxp, ""), m);
        fold(g, r, accp, idxp, v, iv);
    }
}

tir_status cg_lower_reduce(cg *g, const char *name) {
    const tir_op *op = g->op;
    const tir_type *xt = &op->in[0]->type, *ot = &op->out[0]->type;
    int rank = xt->rank;
    bool isred[TIR_MAX_RANK];
    const tir_attr_value *axes = tir_op_attr(op, "axes");
    for (int i = 0; i < rank; i++) isred[i] = axes == NULL;
    if (axes) {
        for (int j = 0; j < axes->u.ints.n; j++) {
            int ax;
            if (!tir_norm_axis(axes->u.ints.v[j], rank, &ax))
                return cg_fail(g, TIR_ERR_TYPE, "codegen: reduction axis out of range");
            isred[ax] = true;
        }
    }
    /* K and R as types, so that the index helpers can unravel over them */
    tir_type kt = {.dtype = xt->dtype}, rt = {.dtype = xt->dtype};
    int kax[TIR_MAX_RANK], rax[TIR_MAX_RANK];
    for (int i = 0; i < rank; i++) {
        if (isred[i]) {
            rax[rt.rank] = i;
            rt.dims[rt.rank++] = xt->dims[i];
        } else {
            kax[kt.rank] = i;
            kt.dims[kt.rank++] = xt->dims[i];
        }
    }
    red r = {.code = op->code, .dt = xt->dtype, .isf = tir_dtype_is_float(xt->dtype)};
    r.at = xt->dtype == TIR_F64 ? g->t_f64 : r.isf ? g->t_f32 : g->t_i64;
    if (op->code == TIR_OP_SUM && xt->dtype == TIR_I64) r.at = LLVMInt128TypeInContext(g->C);
    bool arg = op->code == TIR_OP_ARGMAX;

    cg_use_type(g, xt);
    cg_use_type(g, ot);
    cg_begin_kernel(g, name, 2, CG_BLOCK);
    LLVMBuilderRef B = g->B;
    LLVMValueRef accp = LLVMBuildAlloca(B, r.at, "acc");
    LLVMValueRef idxp = arg ? LLVMBuildAlloca(B, g->t_i64, "idx") : NULL;
    LLVMValueRef sacc = cg_shared_array(g, "red_acc", r.at, WARPS);
    LLVMValueRef sidx = arg ? cg_shared_array(g, "red_idx", g->t_i64, WARPS) : NULL;
    /* x's row-major strides */
    LLVMValueRef stride[TIR_MAX_RANK];
    LLVMValueRef s = cg_i64(g, 1);
    for (int i = rank - 1; i >= 0; i--) {
        stride[i] = s;
        s = LLVMBuildMul(B, s, cg_dimv(g, xt->dims[i]), "");
    }
    LLVMValueRef nout = cg_numel(g, &kt), count = cg_numel(g, &rt);
    LLVMValueRef tid = cg_sreg(g, "tid.x");
    LLVMValueRef lane = LLVMBuildAnd(B, tid, cg_i64(g, 31), "");
    LLVMValueRef warp = LLVMBuildLShr(B, tid, cg_i64(g, 5), "");

    // for each output o owned by this block
    cg_loop lo;
    LLVMValueRef o = cg_for_begin(g, &lo, cg_sreg(g, "ctaid.x"), nout, cg_sreg(g, "nctaid.x"));
    LLVMValueRef kc[TIR_MAX_RANK];
    cg_unravel(g, o, &kt, kc);
    LLVMValueRef base = cg_i64(g, 0);
    for (int j = 0; j < kt.rank; j++)
        base = LLVMBuildAdd(B, base, LLVMBuildMul(B, kc[j], stride[kax[j]], ""), "");
    LLVMBuildStore(B, identity(g, &r), accp);
    if (arg) LLVMBuildStore(B, cg_i64(g, INT64_MAX), idxp);

    //   thread t folds reduced indices t, t + CG_BLOCK, ...
    cg_loop lr;
    LLVMValueRef ri = cg_for_begin(g, &lr, tid, count, cg_i64(g, CG_BLOCK));
    LLVMValueRef rc[TIR_MAX_RANK];
    cg_unravel(g, ri, &rt, rc);
    LLVMValueRef off = base;
    for (int j = 0; j < rt.rank; j++)
        off = LLVMBuildAdd(B, off, LLVMBuildMul(B, rc[j], stride[rax[j]], ""), "");
    LLVMValueRef v = cg_load_c(g, xt->dtype, g->buf[0], off);
    if (!r.isf && LLVMTypeOf(v) != r.at)
        v = xt->dtype == TIR_U8 ? LLVMBuildZExt(B, v, r.at, "") : LLVMBuildSExt(B, v, r.at, "");
    fold(g, &r, accp, idxp, v, ri);
    cg_for_end(g, &lr);

    //   warps, then warp 0 over the warps' partials
    warp_reduce(g, &r, accp, idxp);
    cg_if c0;
    cg_if_begin(g, &c0, LLVMBuildICmp(B, LLVMIntEQ, lane, cg_i64(g, 0), ""));
    LLVMBuildStore(B, LLVMBuildLoad2(B, r.at, accp, ""), cg_gep(g, r.at, sacc, warp));
    if (arg) LLVMBuildStore(B, LLVMBuildLoad2(B, g->t_i64, idxp, ""), cg_gep(g, g->t_i64, sidx, warp));
    cg_if_end(g, &c0);
    cg_barrier(g);
    cg_if c1;
    cg_if_begin(g, &c1, LLVMBuildICmp(B, LLVMIntEQ, warp, cg_i64(g, 0), ""));
    LLVMValueRef has = LLVMBuildICmp(B, LLVMIntULT, lane, cg_i64(g, WARPS), "");
    LLVMValueRef slot = cg_umin(g, lane, cg_i64(g, WARPS - 1));
    LLVMValueRef pv = LLVMBuildLoad2(B, r.at, cg_gep(g, r.at, sacc, slot), "");
    LLVMBuildStore(B, LLVMBuildSelect(B, has, pv, identity(g, &r), ""), accp);
    if (arg) {
        LLVMValueRef pi = LLVMBuildLoad2(B, g->t_i64, cg_gep(g, g->t_i64, sidx, slot), "");
        LLVMBuildStore(B, LLVMBuildSelect(B, has, pi, cg_i64(g, INT64_MAX), ""), idxp);
    }
    warp_reduce(g, &r, accp, idxp);
    cg_if c2;
    cg_if_begin(g, &c2, LLVMBuildICmp(B, LLVMIntEQ, lane, cg_i64(g, 0), ""));
    LLVMValueRef res = LLVMBuildLoad2(B, r.at, accp, "");
    LLVMValueRef sv;
    if (arg) {
        LLVMValueRef ix = LLVMBuildLoad2(B, g->t_i64, idxp, "");
        /* an empty reduction leaves the sentinel; the interpreter answers 0 */
        sv = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntEQ, ix, cg_i64(g, INT64_MAX), ""),
                             cg_i64(g, 0), ix, "");
        sv = cg_cast(g, TIR_I64, sv, ot->dtype);
    } else if (r.isf) {
        if (op->code == TIR_OP_MEAN) res = LLVMBuildFDiv(B, res, LLVMBuildUIToFP(B, count, r.at, ""), "");
        sv = r.at == g->t_f64 ? cg_cast(g, TIR_F64, res, ot->dtype) : cg_cast(g, TIR_F32, res, ot->dtype);
    } else {
        if (r.at != g->t_i64) { /* i128 -> i64, saturating */
            LLVMValueRef vmin = LLVMConstInt(r.at, (unsigned long long)INT64_MIN, 1);
            LLVMValueRef vmax = LLVMConstInt(r.at, (unsigned long long)INT64_MAX, 1);
            res = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSLT, res, vmin, ""), vmin, res, "");
            res = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSGT, res, vmax, ""), vmax, res, "");
            res = LLVMBuildTrunc(B, res, g->t_i64, "");
        }
        sv = cg_cast(g, TIR_I64, res, ot->dtype);
    }
    cg_store(g, ot->dtype, g->buf[1], o, sv);
    cg_if_end(g, &c2);
    cg_if_end(g, &c1);
    /* the partials' slots are reused by the next output */
    cg_barrier(g);
    cg_for_end(g, &lo);
    LLVMBuildRetVoid(B);

    const tir_dim *gx = cg_numel_dim(g, &kt);
    int64_t v64;
    if (tir_dim_is_const(gx, &v64) && v64 > (1 << 20)) gx = tir_dim_const(g->ctx, 1 << 20);
    g->k->grid[0] = gx;
    g->k->grid[1] = tir_dim_const(g->ctx, 1);
    g->k->grid[2] = tir_dim_const(g->ctx, 1);
    return g->st;
}
