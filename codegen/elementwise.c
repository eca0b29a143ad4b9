/* elementwise.c: unary, binary, where and cast as one grid-stride kernel each.
 *
 *   out is (D0, ..., Dr-1), flat index i; operand k is any shape that broadcasts to out
 *   (NumPy: aligned right, its constant-1 dims repeat). out[i] = f(x0[off0(i)], x1[off1(i)], ...)
 *   where offk(i) unravels i over out's dims and re-ravels over operand k's dims; an operand of
 *   out's exact shape is read at i, a scalar at 0.
 *
 * Semantics follow the interpreter (ops.def's scalar column, rounded by tir_dtype_round):
 *   floats: f32/f16/bf16/f8 compute in f32 and round once to the result dtype (for + - * / sqrt
 *           this equals the interpreter's f64-then-round exactly), f64 in f64; transcendental
 *           functions come from math.c;
 *   ints:   computed in i64 with saturating arithmetic, then saturated to the dtype, so
 *           i8 100 + 100 = 127 and u8 3 - 5 = 0 as in the interpreter; x / 0 = 0, division
 *           truncates; INT64_MIN / -1 saturates;
 *   bool:   i1 in registers, a 0/1 byte in memory;
 *   maximum/minimum propagate NaN; relu(NaN) = NaN; comparisons with NaN are false but ne. */
#include "cg.h"

/* ---------------------------------------------------------------- floats */

static LLVMValueRef fconst(LLVMValueRef like, double v) { return LLVMConstReal(LLVMTypeOf(like), v); }

static LLVMValueRef gelu(cg *g, const tir_op *op, LLVMValueRef x) {
    LLVMBuilderRef B = g->B;
    if (strcmp(tir_attr_str(op, "approximate", "none"), "tanh") == 0) {
        /* 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), as x / (1 + e^{-2u}): the
         * same function without 1 + tanh's cancellation for x < 0 */
        LLVMValueRef x3 = LLVMBuildFMul(B, LLVMBuildFMul(B, x, x, ""), x, "");
        LLVMValueRef u = LLVMBuildFAdd(B, x, LLVMBuildFMul(B, fconst(x, 0.044715), x3, ""), "");
        u = LLVMBuildFMul(B, fconst(x, -2 * 0.7978845608028654), u, "");
        return LLVMBuildFDiv(B, x, LLVMBuildFAdd(B, fconst(x, 1.0), cgm_exp(g, u), ""), "");
    }
    /* 0.5 x (1 + erf(x / sqrt 2)), with 1 + erf accurate where it is tiny */
    LLVMValueRef z = LLVMBuildFMul(B, x, fconst(x, 0.7071067811865476), "");
    return LLVMBuildFMul(B, LLVMBuildFMul(B, fconst(x, 0.5), x, ""), cgm_erf1p(g, z), "");
}

LLVMValueRef cg_float_op(cg *g, const tir_op *op, LLVMValueRef a, LLVMValueRef b) {
    tir_opcode code = op->code;
    LLVMBuilderRef B = g->B;
    switch (code) {
    case TIR_OP_NEG: return LLVMBuildFNeg(B, a, "");
    case TIR_OP_ABS: return cg_intr1(g, "llvm.fabs", a);
    case TIR_OP_EXP: return cgm_exp(g, a);
    case TIR_OP_LOG: return cgm_log(g, a);
    case TIR_OP_SQRT: return cg_intr1(g, "llvm.sqrt", a);
    case TIR_OP_RSQRT: return LLVMBuildFDiv(B, fconst(a, 1.0), cg_intr1(g, "llvm.sqrt", a), "");
    case TIR_OP_RECIP: return LLVMBuildFDiv(B, fconst(a, 1.0), a, "");
    case TIR_OP_TANH: return cgm_tanh(g, a);
    case TIR_OP_SIGMOID:
        return LLVMBuildFDiv(B, fconst(a, 1.0),
                             LLVMBuildFAdd(B, fconst(a, 1.0), cgm_exp(g, LLVMBuildFNeg(B, a, "")), ""), "");
    case TIR_OP_SILU:
        return LLVMBuildFDiv(B, a, LLVMBuildFAdd(B, fconst(a, 1.0), cgm_exp(g, LLVMBuildFNeg(B, a, "")), ""), "");
    case TIR_OP_RELU: {
        LLVMValueRef keep = LLVMBuildOr(B, LLVMBuildFCmp(B, LLVMRealOGT, a, fconst(a, 0), ""),
                                        cg_is_nan(g, a), "");
        return LLVMBuildSelect(B, keep, a, fconst(a, 0), "");
    }
    case TIR_OP_GELU: return gelu(g, op, a);
    case TIR_OP_SIN: return cgm_sin(g, a);
    case TIR_OP_COS: return cgm_cos(g, a);
    case TIR_OP_ADD: return LLVMBuildFAdd(B, a, b, "");
    case TIR_OP_SUB: return LLVMBuildFSub(B, a, b, "");
    case TIR_OP_MUL: return LLVMBuildFMul(B, a, b, "");
    case TIR_OP_DIV: return LLVMBuildFDiv(B, a, b, "");
    case TIR_OP_POW: return cgm_pow(g, a, b);
    case TIR_OP_MAXIMUM:
    case TIR_OP_MINIMUM: {
        LLVMValueRef pick = LLVMBuildFCmp(B, code == TIR_OP_MAXIMUM ? LLVMRealOGT : LLVMRealOLT, a, b, "");
        LLVMValueRef r = LLVMBuildSelect(B, pick, a, b, "");
        LLVMValueRef nan = LLVMBuildFCmp(B, LLVMRealUNO, a, b, "");
        return LLVMBuildSelect(B, nan, fconst(a, NAN), r, "");
    }
    default: return NULL;
    }
}

/* ---------------------------------------------------------------- ints (as i64) */

LLVMValueRef cg_int_op(cg *g, tir_opcode code, LLVMValueRef a, LLVMValueRef b) {
    LLVMBuilderRef B = g->B;
    LLVMValueRef zero = cg_i64(g, 0);
    switch (code) {
    case TIR_OP_NEG: return cg_intr2(g, "llvm.ssub.sat", zero, a);
    case TIR_OP_ABS:
        return LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSLT, a, zero, ""),
                               cg_intr2(g, "llvm.ssub.sat", zero, a), a, "");
    case TIR_OP_RELU: return cg_smax(g, a, zero);
    case TIR_OP_ADD: return cg_intr2(g, "llvm.sadd.sat", a, b);
    case TIR_OP_SUB: return cg_intr2(g, "llvm.ssub.sat", a, b);
    case TIR_OP_MUL: {
        LLVMTypeRef t = g->t_i64;
        LLVMValueRef args[2] = {a, b};
        LLVMTypeRef rt = LLVMStructTypeInContext(g->C, (LLVMTypeRef[]){t, g->t_i1}, 2, 0);
        LLVMValueRef r = cg_intr(g, "llvm.smul.with.overflow", rt, 1, &t, 2, args);
        LLVMValueRef neg = LLVMBuildICmp(B, LLVMIntSLT, LLVMBuildXor(B, a, b, ""), zero, "");
        LLVMValueRef sat = LLVMBuildSelect(B, neg, cg_i64(g, INT64_MIN), cg_i64(g, INT64_MAX), "");
        return LLVMBuildSelect(B, LLVMBuildExtractValue(B, r, 1, ""), sat,
                               LLVMBuildExtractValue(B, r, 0, ""), "");
    }
    case TIR_OP_DIV: {
        LLVMValueRef bz = LLVMBuildICmp(B, LLVMIntEQ, b, zero, "");
        LLVMValueRef ovf = LLVMBuildAnd(B, LLVMBuildICmp(B, LLVMIntEQ, a, cg_i64(g, INT64_MIN), ""),
                                        LLVMBuildICmp(B, LLVMIntEQ, b, cg_i64(g, -1), ""), "");
        LLVMValueRef safe = LLVMBuildSelect(B, LLVMBuildOr(B, bz, ovf, ""), cg_i64(g, 1), b, "");
        LLVMValueRef q = LLVMBuildSDiv(B, a, safe, ""); /* truncates, as C does */
        q = LLVMBuildSelect(B, ovf, cg_i64(g, INT64_MAX), q, "");
        return LLVMBuildSelect(B, bz, zero, q, "");
    }
    case TIR_OP_MAXIMUM: return cg_smax(g, a, b);
    case TIR_OP_MINIMUM: return cg_smin(g, a, b);
    default: return NULL;
    }
}

LLVMValueRef cg_to_i64(cg *g, tir_dtype t, LLVMValueRef cv) {
    if (t == TIR_I64) return cv;
    return t == TIR_U8 ? LLVMBuildZExt(g->B, cv, g->t_i64, "") : LLVMBuildSExt(g->B, cv, g->t_i64, "");
}

LLVMValueRef cg_compare(cg *g, tir_opcode code, tir_dtype t, LLVMValueRef a, LLVMValueRef b) {
    if (tir_dtype_is_float(t)) {
        LLVMRealPredicate p = code == TIR_OP_EQ ? LLVMRealOEQ : code == TIR_OP_NE ? LLVMRealUNE
                              : code == TIR_OP_LT ? LLVMRealOLT : code == TIR_OP_LE ? LLVMRealOLE
                              : code == TIR_OP_GT ? LLVMRealOGT : LLVMRealOGE;
        return LLVMBuildFCmp(g->B, p, a, b, "");
    }
    bool u = t == TIR_U8 || t == TIR_BOOL;
    LLVMIntPredicate p = code == TIR_OP_EQ ? LLVMIntEQ : code == TIR_OP_NE ? LLVMIntNE
                         : code == TIR_OP_LT ? (u ? LLVMIntULT : LLVMIntSLT)
                         : code == TIR_OP_LE ? (u ? LLVMIntULE : LLVMIntSLE)
                         : code == TIR_OP_GT ? (u ? LLVMIntUGT : LLVMIntSGT)
                                             : (u ? LLVMIntUGE : LLVMIntSGE);
    return LLVMBuildICmp(g->B, p, a, b, "");
}

/* The storage value of out from the operands' storage values. */
static LLVMValueRef apply(cg *g, LLVMValueRef *sv) {
    const tir_op *op = g->op;
    tir_opcode code = op->code;
    tir_dtype dt = op->in[0]->type.dtype, odt = op->out[0]->type.dtype;
    LLVMBuilderRef B = g->B;
    if (code == TIR_OP_WHERE) /* bits move unchanged */
        return LLVMBuildSelect(B, cg_widen(g, TIR_BOOL, sv[0]), sv[1], sv[2], "");
    if (code == TIR_OP_CAST) return cg_cast(g, dt, cg_widen(g, dt, sv[0]), odt);
    LLVMValueRef a = cg_widen(g, dt, sv[0]);
    LLVMValueRef b = op->nin > 1 ? cg_widen(g, dt, sv[1]) : NULL;
    unsigned fl = tir_ops[code].flags;
    if (fl & TIR_F_LOGIC) {
        LLVMValueRef r = code == TIR_OP_NOT ? LLVMBuildNot(B, a, "")
                         : code == TIR_OP_AND ? LLVMBuildAnd(B, a, b, "")
                                              : LLVMBuildOr(B, a, b, "");
        return cg_narrow(g, TIR_BOOL, r);
    }
    if (fl & TIR_F_COMPARE) return cg_narrow(g, TIR_BOOL, cg_compare(g, code, dt, a, b));
    if (tir_dtype_is_float(dt)) {
        LLVMValueRef r = cg_float_op(g, op, a, b);
        if (!r) {
            cg_fail(g, TIR_ERR_UNSUPPORTED, "codegen: %s has no float lowering", tir_ops[code].name);
            return LLVMGetPoison(cg_stype(g, odt));
        }
        return cg_narrow(g, odt, r);
    }
    if (tir_dtype_is_int(dt)) {
        LLVMValueRef r = cg_int_op(g, code, cg_to_i64(g, dt, a), b ? cg_to_i64(g, dt, b) : NULL);
        if (!r) {
            cg_fail(g, TIR_ERR_UNSUPPORTED, "codegen: %s is not defined on %s", tir_ops[code].name,
                    tir_dtype_name(dt));
            return LLVMGetPoison(cg_stype(g, odt));
        }
        return cg_cast(g, TIR_I64, r, odt);
    }
    cg_fail(g, TIR_ERR_UNSUPPORTED, "codegen: %s on %s", tir_ops[code].name, tir_dtype_name(dt));
    return LLVMGetPoison(cg_stype(g, odt));
}

tir_status cg_lower_elementwise(cg *g, const char *name) {
    const tir_op *op = g->op;
    const tir_type *ot = &op->out[0]->type;
    if (op->nin < 1 || op->nin > 3 || op->nout != 1)
        return cg_fail(g, TIR_ERR_UNSUPPORTED, "codegen: %s with %d operands", tir_ops[op->code].name,
                       op->nin);
    for (int k = 0; k < op->nin; k++) cg_use_type(g, &op->in[k]->type);
    cg_use_type(g, ot);
    cg_begin_kernel(g, name, op->nin + 1, CG_BLOCK);

    // out is (D0, ..., Dr-1); each operand broadcasts to it
    cg_loop l;
    LLVMValueRef i = cg_grid_loop_begin(g, &l, cg_numel(g, ot));
    bool need_coords = false;
    for (int k = 0; k < op->nin; k++) {
        const tir_type *t = &op->in[k]->type;
        if (t->rank > 0 && !tir_type_same_dims(t, ot)) need_coords = true;
    }
    LLVMValueRef coords[TIR_MAX_RANK];
    if (need_coords) cg_unravel(g, i, ot, coords);
    LLVMValueRef sv[3];
    for (int k = 0; k < op->nin; k++) {
        const tir_type *t = &op->in[k]->type;
        LLVMValueRef off = tir_type_same_dims(t, ot) ? i
                           : t->rank == 0  ? cg_i64(g, 0)
                                           : cg_bcast_offset(g, t, ot->rank, coords);
        sv[k] = cg_load(g, t->dtype, g->buf[k], off);
    }
    cg_store(g, ot->dtype, g->buf[op->nin], i, apply(g, sv));
    cg_for_end(g, &l);
    LLVMBuildRetVoid(g->B);
    cg_launch_1d(g, cg_numel_dim(g, ot));
    return g->st;
}
