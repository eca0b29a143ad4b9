/* convert.c: dtypes inside kernels: storage and compute types, loads and stores, and every
 * conversion with the interpreter's rounding (ir/dtype.c's tir_dtype_round), so that a cast on
 * the GPU gives the interpreter's bits:
 *   floats round to nearest even; f8 saturate to the largest finite value; NaN stays NaN;
 *   float -> int truncates toward zero and saturates, NaN -> 0 (llvm.fpto[su]i.sat);
 *   int -> int saturates; anything -> bool is v != 0.
 * Narrowing an f64 to bf16 or f8 goes through f32 rounded to odd, which makes the second
 * rounding exact (f32 has more than twice their precision + 2 bits), so it equals one rounding. */
#include "cg.h"

LLVMTypeRef cg_stype(cg *g, tir_dtype t) {
    switch (t) {
    case TIR_F64: return g->t_f64;
    case TIR_F32: return g->t_f32;
    case TIR_F16: return g->t_f16;
    case TIR_BF16: return g->t_i16;
    case TIR_I64: return g->t_i64;
    case TIR_I32: return g->t_i32;
    default: return g->t_i8; /* f8, i8, u8, bool */
    }
}

LLVMTypeRef cg_ctype(cg *g, tir_dtype t) {
    switch (t) {
    case TIR_F64: return g->t_f64;
    case TIR_F32: case TIR_F16: case TIR_BF16: case TIR_F8E4M3: case TIR_F8E5M2: return g->t_f32;
    case TIR_I64: return g->t_i64;
    case TIR_I32: return g->t_i32;
    case TIR_BOOL: return g->t_i1;
    default: return g->t_i8;
    }
}

LLVMValueRef cg_load(cg *g, tir_dtype t, LLVMValueRef base, LLVMValueRef idx) {
    LLVMTypeRef st = cg_stype(g, t);
    return LLVMBuildLoad2(g->B, st, cg_gep(g, st, base, idx), "");
}

void cg_store(cg *g, tir_dtype t, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef sv) {
    LLVMTypeRef st = cg_stype(g, t);
    LLVMBuildStore(g->B, sv, cg_gep(g, st, base, idx));
}

LLVMValueRef cg_is_nan(cg *g, LLVMValueRef x) {
    return LLVMBuildFCmp(g->B, LLVMRealUNO, x, x, "");
}

static LLVMValueRef bits32(cg *g, LLVMValueRef f) { return LLVMBuildBitCast(g->B, f, g->t_i32, ""); }
static LLVMValueRef float_of(cg *g, LLVMValueRef i) { return LLVMBuildBitCast(g->B, i, g->t_f32, ""); }
static LLVMValueRef u32(cg *g, uint32_t v) { return LLVMConstInt(g->t_i32, v, 0); }

LLVMValueRef cg_f32_to_bf16(cg *g, LLVMValueRef f) {
    LLVMBuilderRef B = g->B;
    LLVMValueRef u = bits32(g, f);
    LLVMValueRef hi = LLVMBuildLShr(B, u, u32(g, 16), "");
    /* round to nearest even: add 0x7fff plus the lowest kept bit, then drop 16 bits */
    LLVMValueRef r = LLVMBuildAdd(B, u, LLVMBuildAdd(B, u32(g, 0x7fff), LLVMBuildAnd(B, hi, u32(g, 1), ""), ""), "");
    r = LLVMBuildLShr(B, r, u32(g, 16), "");
    /* NaN becomes the signed quiet NaN, as ir/dtype.c encodes it */
    LLVMValueRef qnan = LLVMBuildOr(B, LLVMBuildAnd(B, hi, u32(g, 0x8000), ""), u32(g, 0x7fc0), "");
    r = LLVMBuildSelect(B, cg_is_nan(g, f), qnan, r, "");
    return LLVMBuildTrunc(B, r, g->t_i16, "");
}

static LLVMValueRef bf16_to_f32(cg *g, LLVMValueRef h) {
    LLVMValueRef u = LLVMBuildShl(g->B, LLVMBuildZExt(g->B, h, g->t_i32, ""), u32(g, 16), "");
    return float_of(g, u);
}

LLVMValueRef cg_f64_to_f32_odd(cg *g, LLVMValueRef d) {
    LLVMBuilderRef B = g->B;
    LLVMValueRef r = LLVMBuildFPTrunc(B, d, g->t_f32, "");
    LLVMValueRef back = LLVMBuildFPExt(B, r, g->t_f64, "");
    LLVMValueRef inexact = LLVMBuildFCmp(B, LLVMRealONE, back, d, "");
    LLVMValueRef rb = bits32(g, r);
    LLVMValueRef even = LLVMBuildICmp(B, LLVMIntEQ, LLVMBuildAnd(B, rb, u32(g, 1), ""), u32(g, 0), "");
    /* an inexact result with an even last bit moves one ulp toward d (bits are sign-magnitude:
     * +1 moves away from zero) */
    LLVMValueRef up = LLVMBuildFCmp(B, LLVMRealOLT, cg_intr1(g, "llvm.fabs", back),
                                    cg_intr1(g, "llvm.fabs", d), "");
    LLVMValueRef adj = LLVMBuildSelect(B, up, LLVMBuildAdd(B, rb, u32(g, 1), ""),
                                       LLVMBuildSub(B, rb, u32(g, 1), ""), "");
    LLVMValueRef fix = LLVMBuildAnd(B, inexact, even, "");
    return float_of(g, LLVMBuildSelect(B, fix, adj, rb, ""));
}

/* f8 formats: mantissa bits, smallest normal exponent, bias, largest exponent, largest value */
typedef struct f8fmt {
    int m, emin, bias, emax;
    double maxv;
    uint32_t nan;
} f8fmt;

/* ir/dtype.c's policies: e4m3fn has no inf (inf saturates to 448, NaN is 0x7f); e5m2 saturates
 * finite overflow to 57344 but keeps inf, and its NaN is 0x7e */
static f8fmt f8_format(tir_dtype t) {
    if (t == TIR_F8E4M3) return (f8fmt){3, -6, 7, 8, 448.0, 0x7f};
    return (f8fmt){2, -14, 15, 15, 57344.0, 0x7e};
}

static LLVMValueRef pow2f(cg *g, LLVMValueRef e /* i32, in normal range */) {
    return float_of(g, LLVMBuildShl(g->B, LLVMBuildAdd(g->B, e, u32(g, 127), ""), u32(g, 23), ""));
}

LLVMValueRef cg_f32_to_f8(cg *g, tir_dtype t, LLVMValueRef f) {
    LLVMBuilderRef B = g->B;
    f8fmt F = f8_format(t);
    LLVMValueRef a = cg_intr1(g, "llvm.fabs", f);
    LLVMValueRef sign = LLVMBuildAnd(B, LLVMBuildLShr(B, bits32(g, f), u32(g, 24), ""), u32(g, 0x80), "");
    /* the exponent of a, held to the format's range: the quantum there is 2^(e - m) */
    LLVMValueRef e = LLVMBuildSub(B, LLVMBuildLShr(B, bits32(g, a), u32(g, 23), ""), u32(g, 127), "");
    e = cg_smax(g, e, cg_i32(g, F.emin));
    e = cg_smin(g, e, cg_i32(g, F.emax));
    LLVMValueRef scaled = LLVMBuildFMul(B, a, pow2f(g, LLVMBuildSub(B, cg_i32(g, F.m), e, "")), "");
    LLVMValueRef r = LLVMBuildFMul(B, cg_intr1(g, "llvm.rint", scaled),
                                   pow2f(g, LLVMBuildSub(B, e, cg_i32(g, F.m), "")), "");
    r = cg_intr2(g, "llvm.minnum", r, cg_real(g->t_f32, F.maxv)); /* saturate (inf too) */
    /* encode the now exactly representable r */
    LLVMValueRef rb = bits32(g, r);
    LLVMValueRef enorm = LLVMBuildSub(B, LLVMBuildLShr(B, rb, u32(g, 23), ""), u32(g, (uint32_t)(127 - F.bias)), "");
    LLVMValueRef norm = LLVMBuildOr(B, LLVMBuildShl(B, enorm, u32(g, (uint32_t)F.m), ""),
                                    LLVMBuildAnd(B, LLVMBuildLShr(B, rb, u32(g, (uint32_t)(23 - F.m)), ""),
                                                 u32(g, (1u << F.m) - 1), ""), "");
    LLVMValueRef sub = LLVMBuildFPToUI(B, LLVMBuildFMul(B, r, cg_real(g->t_f32, ldexp(1.0, F.m - F.emin)), ""),
                                       g->t_i32, "");
    LLVMValueRef is_sub = LLVMBuildFCmp(B, LLVMRealOLT, r, cg_real(g->t_f32, ldexp(1.0, F.emin)), "");
    LLVMValueRef code = LLVMBuildSelect(B, is_sub, sub, norm, "");
    if (t == TIR_F8E5M2)
        code = LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealOEQ, a, cg_real(g->t_f32, INFINITY), ""),
                               u32(g, 0x7c), code, "");
    code = LLVMBuildSelect(B, cg_is_nan(g, f), u32(g, F.nan), code, "");
    return LLVMBuildTrunc(B, LLVMBuildOr(B, code, sign, ""), g->t_i8, "");
}

LLVMValueRef cg_f8_to_f32(cg *g, tir_dtype t, LLVMValueRef b) {
    LLVMBuilderRef B = g->B;
    LLVMValueRef u = LLVMBuildZExt(B, b, g->t_i32, "");
    if (t == TIR_F8E5M2) {
        /* e5m2 is the top byte of an f16 */
        LLVMValueRef h = LLVMBuildTrunc(B, LLVMBuildShl(B, u, u32(g, 8), ""), g->t_i16, "");
        return LLVMBuildFPExt(B, LLVMBuildBitCast(B, h, g->t_f16, ""), g->t_f32, "");
    }
    LLVMValueRef sign = LLVMBuildShl(B, LLVMBuildAnd(B, u, u32(g, 0x80), ""), u32(g, 24), "");
    LLVMValueRef e = LLVMBuildAnd(B, LLVMBuildLShr(B, u, u32(g, 3), ""), u32(g, 15), "");
    LLVMValueRef m = LLVMBuildAnd(B, u, u32(g, 7), "");
    LLVMValueRef norm = LLVMBuildOr(B, LLVMBuildShl(B, LLVMBuildAdd(B, e, u32(g, 120), ""), u32(g, 23), ""),
                                    LLVMBuildShl(B, m, u32(g, 20), ""), "");
    LLVMValueRef sub = bits32(g, LLVMBuildFMul(B, LLVMBuildUIToFP(B, m, g->t_f32, ""),
                                               cg_real(g->t_f32, ldexp(1.0, -9)), ""));
    LLVMValueRef mag = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntEQ, e, u32(g, 0), ""), sub, norm, "");
    LLVMValueRef isnan = LLVMBuildICmp(B, LLVMIntEQ, LLVMBuildAnd(B, u, u32(g, 0x7f), ""), u32(g, 0x7f), "");
    mag = LLVMBuildSelect(B, isnan, u32(g, 0x7fc00000), mag, "");
    return float_of(g, LLVMBuildOr(B, mag, sign, ""));
}

LLVMValueRef cg_widen(cg *g, tir_dtype t, LLVMValueRef sv) {
    switch (t) {
    case TIR_F16: return LLVMBuildFPExt(g->B, sv, g->t_f32, "");
    case TIR_BF16: return bf16_to_f32(g, sv);
    case TIR_F8E4M3: case TIR_F8E5M2: return cg_f8_to_f32(g, t, sv);
    case TIR_BOOL: return LLVMBuildICmp(g->B, LLVMIntNE, sv, LLVMConstInt(g->t_i8, 0, 0), "");
    default: return sv;
    }
}

LLVMValueRef cg_load_c(cg *g, tir_dtype t, LLVMValueRef base, LLVMValueRef idx) {
    return cg_widen(g, t, cg_load(g, t, base, idx));
}

LLVMValueRef cg_narrow(cg *g, tir_dtype t, LLVMValueRef cv) {
    switch (t) {
    case TIR_F16: return LLVMBuildFPTrunc(g->B, cv, g->t_f16, "");
    case TIR_BF16: return cg_f32_to_bf16(g, cv);
    case TIR_F8E4M3: case TIR_F8E5M2: return cg_f32_to_f8(g, t, cv);
    case TIR_BOOL: return LLVMBuildZExt(g->B, cv, g->t_i8, "");
    default: return cv;
    }
}

static void int_range(tir_dtype t, int64_t *lo, int64_t *hi) {
    switch (t) {
    case TIR_I32: *lo = INT32_MIN; *hi = INT32_MAX; break;
    case TIR_I8: *lo = INT8_MIN; *hi = INT8_MAX; break;
    case TIR_U8: *lo = 0; *hi = UINT8_MAX; break;
    default: *lo = INT64_MIN; *hi = INT64_MAX; break;
    }
}

/* f64 -> storage of a float dtype, one rounding */
static LLVMValueRef from_f64(cg *g, LLVMValueRef d, tir_dtype to) {
    switch (to) {
    case TIR_F64: return d;
    case TIR_F32: return LLVMBuildFPTrunc(g->B, d, g->t_f32, "");
    case TIR_F16: return LLVMBuildFPTrunc(g->B, d, g->t_f16, ""); /* cvt.rn.f16.f64 */
    default: return cg_narrow(g, to, cg_f64_to_f32_odd(g, d));
    }
}

/* f32 holding a value of an f32-computed dtype -> storage of a float dtype */
static LLVMValueRef from_f32(cg *g, LLVMValueRef f, tir_dtype to) {
    if (to == TIR_F64) return LLVMBuildFPExt(g->B, f, g->t_f64, "");
    return cg_narrow(g, to, f);
}

LLVMValueRef cg_cast(cg *g, tir_dtype from, LLVMValueRef cv, tir_dtype to) {
    LLVMBuilderRef B = g->B;
    bool ffloat = tir_dtype_is_float(from);
    if (to == TIR_BOOL) {
        LLVMValueRef nz;
        if (from == TIR_BOOL) nz = cv;
        else if (ffloat) nz = LLVMBuildFCmp(B, LLVMRealUNE, cv, cg_real(LLVMTypeOf(cv), 0), "");
        else nz = LLVMBuildICmp(B, LLVMIntNE, cv, LLVMConstInt(LLVMTypeOf(cv), 0, 0), "");
        return LLVMBuildZExt(B, nz, g->t_i8, "");
    }
    if (tir_dtype_is_int(to)) {
        LLVMTypeRef st = cg_stype(g, to);
        if (from == TIR_BOOL) return LLVMBuildZExt(B, cv, st, "");
        if (ffloat) {
            LLVMTypeRef tys[2] = {st, LLVMTypeOf(cv)};
            return cg_intr(g, to == TIR_U8 ? "llvm.fptoui.sat" : "llvm.fptosi.sat", st, 2, tys, 1, &cv);
        }
        if (from == to) return cv;
        LLVMValueRef w = from == TIR_U8 ? LLVMBuildZExt(B, cv, g->t_i64, "")
                                        : LLVMBuildSExt(B, cv, g->t_i64, "");
        int64_t lo, hi;
        int_range(to, &lo, &hi);
        if (to != TIR_I64) {
            w = cg_smax(g, w, cg_i64(g, lo));
            w = cg_smin(g, w, cg_i64(g, hi));
        }
        return LLVMBuildTrunc(B, w, st, "");
    }
    /* to a float dtype */
    if (from == TIR_F64) return from_f64(g, cv, to);
    if (ffloat) return from_f32(g, cv, to);
    if (from == TIR_BOOL) return from_f32(g, LLVMBuildUIToFP(B, cv, g->t_f32, ""), to);
    if (from == TIR_U8) return from_f32(g, LLVMBuildUIToFP(B, cv, g->t_f32, ""), to);
    if (from == TIR_I8) return from_f32(g, LLVMBuildSIToFP(B, cv, g->t_f32, ""), to);
    /* i32 exactly, i64 rounded once, as the interpreter's (double) conversion does */
    return from_f64(g, LLVMBuildSIToFP(B, cv, g->t_f64, ""), to);
}
