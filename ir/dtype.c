/* dtype.c: element types: names, sizes, classes, and the exact value semantics of each storage
 * format (rounding a double to what the dtype holds, and loading/storing elements). The
 * interpreter rounds every op's output through tir_dtype_round, so these rules define what a
 * bf16 or f8 program computes.
 *
 * Float formats are handled by one generic routine: round to nearest even with a given number of
 * fraction bits and smallest normal exponent (which gives subnormals for free), then apply the
 * format's overflow policy:
 *   f16, bf16  IEEE: overflow to +-inf, NaN stays NaN.
 *   f8e4m3     the "fn" variant (OCP E4M3FN): no inf, max 448, NaN is 0x7f/0xff. Overflow and
 *              +-inf saturate to +-448; NaN stays NaN.
 *   f8e5m2     IEEE-like (has inf, max 57344). Finite overflow saturates to +-57344 ("satfinite",
 *              what NVIDIA's cvt.satfinite does and what training recipes expect: an f8 overflow
 *              becoming inf poisons a whole step); an inf input stays inf, NaN stays NaN.
 * Rounding goes straight from the double (one rounding), so round(t, v) == load(store(v)). */
#include "ir.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[TIR_DTYPE_COUNT] = {
    [TIR_F64] = {"f64", 8},       [TIR_F32] = {"f32", 4},       [TIR_F16] = {"f16", 2},
    [TIR_BF16] = {"bf16", 2},     [TIR_F8E4M3] = {"f8e4m3", 1}, [TIR_F8E5M2] = {"f8e5m2", 1},
    [TIR_I64] = {"i64", 8},       [TIR_I32] = {"i32", 4},       [TIR_I8] = {"i8", 1},
    [TIR_U8] = {"u8", 1},         [TIR_BOOL] = {"bool", 1},
};

const char *tir_dtype_name(tir_dtype t) {
    return (unsigned)t < TIR_DTYPE_COUNT ? dtypes[t].name : "?";
}

size_t tir_dtype_size(tir_dtype t) { return (unsigned)t < TIR_DTYPE_COUNT ? dtypes[t].size : 0; }

bool tir_dtype_is_float(tir_dtype t) {
    return t == TIR_F64 || t == TIR_F32 || t == TIR_F16 || t == TIR_BF16 || t == TIR_F8E4M3 ||
           t == TIR_F8E5M2;
}

bool tir_dtype_is_int(tir_dtype t) {
    return t == TIR_I64 || t == TIR_I32 || t == TIR_I8 || t == TIR_U8;
}

bool tir_dtype_from_name(const char *s, size_t n, tir_dtype *out) {
    if (!s) return false;
    for (int i = 0; i < TIR_DTYPE_COUNT; i++)
        if (strlen(dtypes[i].name) == n && memcmp(dtypes[i].name, s, n) == 0) {
            if (out) *out = (tir_dtype)i;
            return true;
        }
    return false;
}

/* ---------------------------------------------------------------- float formats */

typedef struct fmt {
    int mbits;  /* fraction bits */
    int bias;   /* exponent bias; the smallest normal exponent is 1 - bias */
    int ebits;
    double max; /* largest finite */
} fmt;

static const fmt F16 = {10, 15, 5, 65504.0};
static const fmt BF16 = {7, 127, 8, 3.3895313892515355e38}; /* (2 - 2^-7) * 2^127 */
static const fmt E4M3 = {3, 7, 4, 448.0};
static const fmt E5M2 = {2, 15, 5, 57344.0};

/* Round to nearest even with mbits fraction bits and a smallest normal exponent emin; no
 * overflow handling. Scaling by powers of two is exact, so one rint does the rounding. */
static double round_bits(double v, const fmt *f) {
    if (v == 0 || !isfinite(v)) return v;
    int e;
    frexp(fabs(v), &e); /* |v| in [2^(e-1), 2^e) */
    int E = e - 1, emin = 1 - f->bias;
    if (E < emin) E = emin;
    return ldexp(nearbyint(ldexp(v, f->mbits - E)), E - f->mbits);
}

static double round_f16(double v) {
    double r = round_bits(v, &F16);
    return fabs(r) > F16.max && !isinf(r) ? copysign(INFINITY, r) : r;
}

static double round_bf16(double v) {
    double r = round_bits(v, &BF16);
    return fabs(r) > BF16.max && !isinf(r) ? copysign(INFINITY, r) : r;
}

static double round_e4m3(double v) {
    if (isnan(v)) return v;
    double r = round_bits(v, &E4M3);
    return fabs(r) > E4M3.max ? copysign(E4M3.max, r) : r; /* inf saturates too: no inf in fn */
}

static double round_e5m2(double v) {
    if (isnan(v) || isinf(v)) return v;
    double r = round_bits(v, &E5M2);
    return fabs(r) > E5M2.max ? copysign(E5M2.max, r) : r;
}

/* Encode a value already rounded to f (finite, representable) as sign|exponent|fraction. */
static uint32_t encode_exact(double r, const fmt *f) {
    uint32_t sign = signbit(r) ? 1u << (f->ebits + f->mbits) : 0;
    double a = fabs(r);
    if (a == 0) return sign;
    int emin = 1 - f->bias;
    if (a < ldexp(1.0, emin)) /* subnormal */
        return sign | (uint32_t)ldexp(a, f->mbits - emin);
    int e;
    frexp(a, &e);
    int E = e - 1;
    uint32_t mant = (uint32_t)(ldexp(a, f->mbits - E) - ldexp(1.0, f->mbits));
    return sign | (uint32_t)(E + f->bias) << f->mbits | mant;
}

/* Decode bits; specials of the all-ones exponent are the caller's business. */
static double decode_finite(uint32_t bits, const fmt *f) {
    uint32_t mant = bits & ((1u << f->mbits) - 1);
    uint32_t ex = (bits >> f->mbits) & ((1u << f->ebits) - 1);
    bool neg = (bits >> (f->ebits + f->mbits)) & 1;
    double a = ex == 0 ? ldexp((double)mant, 1 - f->bias - f->mbits)
                       : ldexp((double)(mant | 1u << f->mbits), (int)ex - f->bias - f->mbits);
    return neg ? -a : a;
}

/* IEEE-style formats (f16, bf16, e5m2): all-ones exponent is inf (fraction 0) or NaN. */
static uint32_t encode_ieee(double r, const fmt *f) {
    uint32_t sign = signbit(r) ? 1u << (f->ebits + f->mbits) : 0;
    uint32_t exp_ones = ((1u << f->ebits) - 1) << f->mbits;
    if (isnan(r)) return sign | exp_ones | 1u << (f->mbits - 1); /* quiet NaN */
    if (isinf(r)) return sign | exp_ones;
    return encode_exact(r, f);
}

static double decode_ieee(uint32_t bits, const fmt *f) {
    uint32_t ex = (bits >> f->mbits) & ((1u << f->ebits) - 1);
    if (ex == (1u << f->ebits) - 1) {
        bool neg = (bits >> (f->ebits + f->mbits)) & 1;
        if (bits & ((1u << f->mbits) - 1)) return neg ? -NAN : NAN;
        return neg ? -INFINITY : INFINITY;
    }
    return decode_finite(bits, f);
}

static uint8_t encode_e4m3(double r) {
    if (isnan(r)) return signbit(r) ? 0xff : 0x7f;
    return (uint8_t)encode_exact(r, &E4M3);
}

static double decode_e4m3(uint8_t bits) {
    if ((bits & 0x7f) == 0x7f) return NAN;
    return decode_finite(bits, &E4M3);
}

uint16_t tir_f32_to_bf16_bits(float f) { return (uint16_t)encode_ieee(round_bf16(f), &BF16); }
float tir_bf16_bits_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
uint16_t tir_f32_to_f16_bits(float f) { return (uint16_t)encode_ieee(round_f16(f), &F16); }
float tir_f16_bits_to_f32(uint16_t h) { return (float)decode_ieee(h, &F16); }

/* ---------------------------------------------------------------- rounding, load, store */

static double round_int(double v, double lo, double hi) {
    if (isnan(v)) return 0;
    v = trunc(v) + 0.0; /* an integer has no -0: trunc(-0.5) and -5 * 0 are +0 */
    return v < lo ? lo : v > hi ? hi : v;
}

double tir_dtype_round(tir_dtype t, double v) {
    switch (t) {
    case TIR_F64: return v;
    case TIR_F32: return (double)(float)v;
    case TIR_F16: return round_f16(v);
    case TIR_BF16: return round_bf16(v);
    case TIR_F8E4M3: return round_e4m3(v);
    case TIR_F8E5M2: return round_e5m2(v);
    /* (double)INT64_MAX is 2^63, which is also what loading the saturated INT64_MAX gives */
    case TIR_I64: return round_int(v, (double)INT64_MIN, (double)INT64_MAX);
    case TIR_I32: return round_int(v, INT32_MIN, INT32_MAX);
    case TIR_I8: return round_int(v, INT8_MIN, INT8_MAX);
    case TIR_U8: return round_int(v, 0, UINT8_MAX);
    case TIR_BOOL: return v != 0 ? 1.0 : 0.0;
    default: return NAN;
    }
}

double tir_dtype_load(tir_dtype t, const void *p) {
    switch (t) {
    case TIR_F64: { double x; memcpy(&x, p, 8); return x; }
    case TIR_F32: { float x; memcpy(&x, p, 4); return x; }
    case TIR_F16: { uint16_t x; memcpy(&x, p, 2); return decode_ieee(x, &F16); }
    case TIR_BF16: { uint16_t x; memcpy(&x, p, 2); return tir_bf16_bits_to_f32(x); }
    case TIR_F8E4M3: return decode_e4m3(*(const uint8_t *)p);
    case TIR_F8E5M2: return decode_ieee(*(const uint8_t *)p, &E5M2);
    case TIR_I64: { int64_t x; memcpy(&x, p, 8); return (double)x; }
    case TIR_I32: { int32_t x; memcpy(&x, p, 4); return x; }
    case TIR_I8: return *(const int8_t *)p;
    case TIR_U8: return *(const uint8_t *)p;
    case TIR_BOOL: return *(const uint8_t *)p != 0;
    default: return NAN;
    }
}

void tir_dtype_store(tir_dtype t, void *p, double v) {
    double r = tir_dtype_round(t, v);
    switch (t) {
    case TIR_F64: memcpy(p, &r, 8); break;
    case TIR_F32: { float x = (float)r; memcpy(p, &x, 4); break; }
    case TIR_F16: { uint16_t x = (uint16_t)encode_ieee(r, &F16); memcpy(p, &x, 2); break; }
    case TIR_BF16: { uint16_t x = (uint16_t)encode_ieee(r, &BF16); memcpy(p, &x, 2); break; }
    case TIR_F8E4M3: *(uint8_t *)p = encode_e4m3(r); break;
    case TIR_F8E5M2: *(uint8_t *)p = (uint8_t)encode_ieee(r, &E5M2); break;
    case TIR_I64: {
        /* 2^63 is out of range: the saturated maximum */
        int64_t x = r >= 9223372036854775808.0 ? INT64_MAX : (int64_t)r;
        memcpy(p, &x, 8);
        break;
    }
    case TIR_I32: { int32_t x = (int32_t)r; memcpy(p, &x, 4); break; }
    case TIR_I8: *(int8_t *)p = (int8_t)r; break;
    case TIR_U8: *(uint8_t *)p = (uint8_t)r; break;
    case TIR_BOOL: *(uint8_t *)p = r != 0; break;
    default: break;
    }
}
