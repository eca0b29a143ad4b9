/* member.c: one elementwise member of a kernel in registers — the scalar semantics that every
 * kernel computing tir ops elementwise shares (fused regions, matmul epilogues): operands'
 * compute values (cg_ctype of their dtype, already rounded to it) -> the result's, rounded as the
 * interpreter rounds, with the MUFU fast paths for exp/sigmoid/silu whose result is rounded to a
 * 16-bit float (their error, about 2^-21 relative, is far inside bf16's half ulp of 2^-9). */
#include "cg.h"

static LLVMValueRef fconst(LLVMValueRef like, double v) { return LLVMConstReal(LLVMTypeOf(like), v); }

/* f32 compute value -> bf16 storage bits with the hardware's cvt.rn.bf16.f32 (sm_80+): round to
 * nearest even like cg_narrow's integer sequence, in one instruction instead of eight. The one
 * difference: a NaN becomes the canonical NaN 0x7fff rather than keeping its sign (still a NaN,
 * which is all tir promises of a NaN's bits). Other dtypes go through cg_narrow. */
LLVMValueRef cg_narrow_hw(cg *g, tir_dtype dt, LLVMValueRef cv) {
    if (dt == TIR_BF16 && LLVMTypeOf(cv) == g->t_f32)
        return LLVMBuildBitCast(g->B, LLVMBuildFPTrunc(g->B, cv, g->t_bf16, ""), g->t_i16, "");
    return cg_narrow(g, dt, cv);
}

/* the compute value of dtype dt for an f32/f64 result r, rounded as the interpreter rounds */
LLVMValueRef cg_round_to(cg *g, tir_dtype dt, LLVMValueRef r) {
    if (dt == TIR_F32 || dt == TIR_F64) return r;
    /* fpext (exact), so that LLVM folds a store's fptrunc(fpext(y)) back to y: a value
     * rounded to bf16 and then stored is converted once */
    if (dt == TIR_BF16 && LLVMTypeOf(r) == g->t_f32)
        return LLVMBuildFPExt(g->B, LLVMBuildFPTrunc(g->B, r, g->t_bf16, ""), g->t_f32, "");
    return cg_widen(g, dt, cg_narrow_hw(g, dt, r));
}

LLVMValueRef cg_const_of(cg *g, tir_dtype dt, double v) {
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
LLVMValueRef cg_fast_exp(cg *g, LLVMValueRef x) {
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
    if (code == TIR_OP_EXP) return cg_fast_exp(g, a);
    if (code != TIR_OP_SIGMOID && code != TIR_OP_SILU) return NULL;
    LLVMValueRef t = cg_fast_exp(g, LLVMBuildFNeg(B, cg_intr1(g, "llvm.fabs", a), ""));
    LLVMValueRef one_t = LLVMBuildFAdd(B, fconst(a, 1.0), t, "");
    LLVMValueRef s = cg_intr(g, "llvm.nvvm.rcp.approx.ftz.f", g->t_f32, 0, NULL, 1, &one_t);
    LLVMValueRef neg = LLVMBuildFCmp(B, LLVMRealOLT, a, fconst(a, 0.0), "");
    LLVMValueRef sig = LLVMBuildSelect(B, neg, LLVMBuildFMul(B, t, s, ""), s, "");
    return code == TIR_OP_SILU ? LLVMBuildFMul(B, a, sig, "") : sig;
}

/* a / b in f32 as a * (1/b), 1/b by div.full.f32 (full range, 2 ulp: PTX ISA 9.7.3.8), so 2.5
 * ulp in all. The reciprocal is a call without memory effects: where b is the same for many
 * elements (softmax's row sum) LLVM computes it once and each element costs one multiply, in
 * place of the IEEE division's Newton steps and slow path */
static LLVMValueRef fast_div(cg *g, LLVMValueRef a, LLVMValueRef b) {
    LLVMTypeRef ps[2] = {g->t_f32, g->t_f32};
    LLVMTypeRef ft = LLVMFunctionType(g->t_f32, ps, 2, 0);
    static const char asm_text[] = "div.full.f32 $0, $1, $2;";
    static const char cons[] = "=f,f,f";
    LLVMValueRef fn = LLVMGetInlineAsm(ft, (char *)asm_text, sizeof asm_text - 1, (char *)cons, sizeof cons - 1, 0, 0,
                                       LLVMInlineAsmDialectATT, 0);
    LLVMValueRef args[2] = {LLVMConstReal(g->t_f32, 1.0), b};
    LLVMValueRef r = LLVMBuildCall2(g->B, ft, fn, args, 2, "");
    unsigned mem = LLVMGetEnumAttributeKindForName("memory", 6);
    if (mem) LLVMAddCallSiteAttribute(r, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(g->C, mem, 0));
    unsigned nu = LLVMGetEnumAttributeKindForName("nounwind", 8);
    if (nu) LLVMAddCallSiteAttribute(r, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(g->C, nu, 0));
    return LLVMBuildFMul(g->B, a, r, "");
}

/* an f32 result that may take the MUFU forms (codegen/fused_eval.h, fe_approx_set): exp,
 * sigmoid, silu and division; NULL: no fast form */
static LLVMValueRef approx_op(cg *g, tir_opcode code, LLVMValueRef *a, int level) {
    if (LLVMTypeOf(a[0]) != g->t_f32) return NULL;
    if (code == TIR_OP_DIV) return LLVMTypeOf(a[1]) == g->t_f32 ? fast_div(g, a[0], a[1]) : NULL;
    if (code == TIR_OP_EXP && level >= 2) {
        /* 2^(x log2 e) with the product's rounding left in: 2^-22 + |x| 2^-23.5 relative */
        LLVMValueRef p = LLVMBuildFMul(g->B, a[0], fconst(a[0], (float)1.4426950408889634), "");
        return cg_intr1(g, "llvm.nvvm.ex2.approx", p);
    }
    return fast16_op(g, code, a[0]);
}

LLVMValueRef cg_member(cg *g, const tir_op *op, LLVMValueRef *a) { return cg_member_approx(g, op, a, 0); }

/* one lane of an elementwise member: operands' compute values -> the result's; approx: the
 * result may take the MUFU forms (its uses tolerate 2^-21 relative error: fe_approx_set) */
LLVMValueRef cg_member_approx(cg *g, const tir_op *op, LLVMValueRef *a, int approx) {
    tir_opcode code = op->code;
    tir_dtype dt = op->in[0]->type.dtype, odt = op->out[0]->type.dtype;
    unsigned fl = tir_ops[code].flags;
    if (code == TIR_OP_WHERE) return LLVMBuildSelect(g->B, a[0], a[1], a[2], "");
    if (code == TIR_OP_CAST) {
        if (odt == TIR_BF16 && (dt == TIR_F32 || dt == TIR_F16 || dt == TIR_BF16)) return cg_round_to(g, odt, a[0]);
        return cg_widen(g, odt, cg_cast(g, dt, a[0], odt));
    }
    if (fl & TIR_F_LOGIC)
        return code == TIR_OP_NOT ? LLVMBuildNot(g->B, a[0], "")
               : code == TIR_OP_AND ? LLVMBuildAnd(g->B, a[0], a[1], "")
                                    : LLVMBuildOr(g->B, a[0], a[1], "");
    if (fl & TIR_F_COMPARE) return cg_compare(g, code, dt, a[0], a[1]);
    LLVMValueRef r = NULL;
    if (tir_dtype_is_float(dt)) {
        if (is16(odt) && (r = fast16_op(g, code, a[0]))) return cg_round_to(g, odt, r);
        if (approx && odt == TIR_F32 && (r = approx_op(g, code, a, approx))) return r;
        if ((r = cg_float_op(g, op, a[0], op->nin > 1 ? a[1] : NULL))) return cg_round_to(g, odt, r);
    } else if (tir_dtype_is_int(dt)) {
        r = cg_int_op(g, code, cg_to_i64(g, dt, a[0]), op->nin > 1 ? cg_to_i64(g, dt, a[1]) : NULL);
        if (r) return cg_cast(g, TIR_I64, r, odt);
    }
    cg_fail(g, TIR_ERR_UNSUPPORTED, "elementwise member: %s on %s", tir_ops[code].name, tir_dtype_name(dt));
    return LLVMGetPoison(cg_ctype(g, odt));
}

