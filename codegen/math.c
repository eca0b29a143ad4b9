/* math.c: elementary functions for kernels, in f32 and f64, built from LLVM IR alone: no
 * libdevice is linked, and LLVM 22's NVPTX backend cannot select llvm.exp/log/sin/tanh at all
 * (it stops with a fatal "Cannot select"), while llvm.exp2 becomes ex2.approx.
 * Branch-free: special cases are selects, so each function can be used anywhere in a kernel.
 *
 * Method and accuracy (max relative error in ulps, measured on millions of points against long
 * double libm by running this same IR on the host through LLVM's JIT; CI cannot run PTX, so the
 * GPU tests against the interpreter keep it honest there):
 *   exp    x = n ln2 + r, |r| <= ln2/2 (Cody-Waite with fma), e^r = 1 + r + r^2 Q(r),
 *          2^n by exponent bits in two steps (so that denormal results round once). 0.7 ulp.
 *   log    x = 2^e m, m in [sqrt(1/2), sqrt(2)), s = (m-1)/(m+1), log m = 2s + s^3 Q(s^2).
 *          1.4 ulp.
 *   tanh   |x| < 0.55: x + x^3 P(x^2); else 1 - 2/(e^{2|x|} + 1); the sign of x. 1.4 ulp.
 *   sin/cos  in f64 for both widths: k = rint(x 2/pi), r = x - k pi/2 with pi/2 in three parts
 *          (fma), then the quadrant's polynomial on |r| <= pi/4. 1.1 ulp of f64 (0.5 ulp of
 *          f32) up to |x| = 1e9; far beyond that the reduction loses bits (no Payne-Hanek).
 *   erf    1 + erf(x) (what gelu needs): |x| < 0.75: x + x P(x^2); else erfc(|x|) =
 *          e^{-x^2} erfcx(|x|) with e^{-x^2} corrected by the fma residual of x^2 and erfcx as
 *          piecewise Chebyshev polynomials (in 1/x^2 beyond 4), so 1 + erf(x) keeps its relative
 *          accuracy for x < 0 where it is tiny. 2.4 ulp.
 *   pow    in f64 for both widths: e^{y log|x|} with C99's special cases (sign for odd integer
 *          y, NaN for x < 0 and non-integer y, pow(x, 0) = pow(1, y) = 1). f32: correctly
 *          rounded nearly always; f64: relative error about |y log x| 2^-53 (110 ulp at
 *          |y log x| = 46).
 * The polynomials are Chebyshev interpolants (mpmath.chebyfit, close to minimax) of the stated
 * functions on the stated intervals; tables hold the highest degree first. */
#include "cg.h"

/* ---------------------------------------------------------------- tables */

static const double exp_q32[6] = {
    0.00019890980869750327,
    0.0013933641031986701,
    0.008333310934448869,
    0.04166646500604005,
    0.16666666681614256,
    0.5000000013457727
};
static const double exp_q64[12] = {
    1.6086622436215554e-10,
    2.0918129454967065e-09,
    2.5052071109214447e-08,
    2.755726330147475e-07,
    2.755731924720479e-06,
    2.480158733642132e-05,
    0.00019841269841263304,
    0.0013888888888879082,
    0.008333333333333333,
    0.04166666666666668,
    0.16666666666666666,
    0.5
};
static const double log_q32[4] = {
    0.23330581938241893,
    0.2855081659971155,
    0.40000121876972,
    0.6666666655445165
};
static const double log_q64[9] = {
    0.1188214271262732,
    0.11688107586595922,
    0.1333563938635947,
    0.1538457511576662,
    0.181818185938676,
    0.22222222219857288,
    0.28571428571435364,
    0.3999999999999999,
    0.6666666666666666
};
static const double tanh_p32[6] = {
    0.0025263907105745136,
    -0.00852633305780133,
    0.021818449128639904,
    -0.0539647004451583,
    0.13333324200007313,
    -0.3333333329502591
};
static const double tanh_p64[12] = {
    7.874274345344419e-06,
    -3.372080112046316e-05,
    9.455133052924858e-05,
    -0.0002384727248015252,
    0.0005899052969492733,
    -0.001455819097151351,
    0.0035921267699626346,
    -0.0088632354631468,
    0.021869488534073906,
    -0.05396825396822037,
    0.1333333333333331,
    -0.3333333333333333
};
static const double sin_p64[7] = {
    -7.586691094197958e-13,
    1.6058531516797758e-10,
    -2.5052106231802837e-08,
    2.7557319219337312e-06,
    -0.00019841269841265063,
    0.008333333333333331,
    -0.16666666666666666
};
static const double cos_p64[7] = {
    4.7458685530816656e-14,
    -1.1470460830795304e-11,
    2.0876755790721963e-09,
    -2.755731922140179e-07,
    2.4801587301584645e-05,
    -0.0013888888888888887,
    0.041666666666666664
};
static const double erf_p32[6] = {
    -0.0006756479568680047,
    0.005115332112532226,
    -0.026835114568609705,
    0.11283386538414544,
    -0.37612619469437675,
    0.12837916557875168
};
static const double erf_p64[12] = {
    -9.502840894774706e-10,
    1.4413879289095029e-08,
    -1.63332293434337e-07,
    1.646038320985815e-06,
    -1.4925589383821143e-05,
    0.00012055331545294116,
    -0.0008548327001135946,
    0.005223977625222192,
    -0.026866170645118446,
    0.11283791670955087,
    -0.37612638903183754,
    0.1283791670955126
};
static const double erfcx32_0[10] = {
    -1.739725278671013e-06,
    8.380743312368085e-06,
    -3.457617937988373e-05,
    0.0001528009255564219,
    -0.0006489903443988228,
    0.0026072343567354996,
    -0.009888511738079957,
    0.035102356024308674,
    -0.11519716886679957,
    0.34329589054406956
};
static const double erfcx32_1[10] = {
    -1.413881005399575e-06,
    5.934612205748783e-06,
    -2.0827394379013817e-05,
    8.284579233847358e-05,
    -0.0003241840967862877,
    0.001223295075017112,
    -0.004479423661171639,
    0.015884338983778577,
    -0.05437226015446244,
    0.1790011518255726
};
static const double erfcx32_2[7] = {
    2.7197624128162715e-08,
    -2.1322476321560683e-07,
    1.914158121693424e-06,
    -2.1857635562755434e-05,
    0.00033359708267836593,
    -0.008073805599966576,
    0.5557581685752836
};
static const double erfcx64_0[18] = {
    -1.1603801088471038e-15,
    1.1106397196262315e-14,
    -9.861818265315964e-14,
    8.971934990553376e-13,
    -7.959574698879273e-12,
    6.858903063100213e-11,
    -5.736685957871303e-10,
    4.647427771359486e-09,
    -3.637910363160048e-08,
    2.7437920847467545e-07,
    -1.987268940354289e-06,
    1.3766370967345838e-05,
    -9.076002875107578e-05,
    0.0005659626668907963,
    -0.0033113996229137176,
    0.017983445686743534,
    -0.08927193303797692,
    0.3956980795529959
};
static const double erfcx64_1[18] = {
    -2.8445636509789905e-15,
    2.3583523320789093e-14,
    -1.7896057904552839e-13,
    1.4217143897000473e-12,
    -1.1077007043308343e-11,
    8.419605676931871e-11,
    -6.24766189343854e-10,
    4.519700801785735e-09,
    -3.182367049456223e-08,
    2.1768873203282024e-07,
    -1.4435809934581565e-06,
    9.257343676944008e-06,
    -5.723950861683207e-05,
    0.000340046158592028,
    -0.0019325797205363754,
    0.010450688150881637,
    -0.0533982309267448,
    0.25539567631050575
};
static const double erfcx64_2[18] = {
    -2.2501970380435168e-14,
    1.5097136751153333e-13,
    -8.968734999574514e-13,
    5.819888713808294e-12,
    -3.735309642847633e-11,
    2.3463906011051353e-10,
    -1.4482351987155056e-09,
    8.778199113732748e-09,
    -5.219948051641917e-08,
    3.0422633431083685e-07,
    -1.7359099278349668e-06,
    9.685663578991724e-06,
    -5.277242617691007e-05,
    0.00028033738586056206,
    -0.0014493394550703822,
    0.0072772261216977096,
    -0.035399551740877784,
    0.16633534842682188
};
static const double erfcx64_3[18] = {
    -1.1679235255541014e-15,
    4.2475922618130844e-15,
    -1.0767355802796814e-14,
    4.3787243994158384e-14,
    -1.9571964613670144e-13,
    8.63060426516199e-13,
    -4.0062019084292596e-12,
    1.981165796402094e-11,
    -1.048552852969214e-10,
    5.996535945133905e-10,
    -3.751930062113734e-09,
    2.610269607263622e-08,
    -2.0641935809901446e-07,
    1.914712564892638e-06,
    -2.1861074882065853e-05,
    0.0003335970130800048,
    -0.008073805168515994,
    0.5557581685752836
};

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---------------------------------------------------------------- helpers */

typedef struct fty {
    LLVMTypeRef t, it; /* float type and same-width int type */
    bool d;            /* f64 */
    int mbits, bias;
} fty;

static fty fty_of(cg *g, LLVMValueRef x) {
    bool d = LLVMTypeOf(x) == g->t_f64;
    return (fty){d ? g->t_f64 : g->t_f32, d ? g->t_i64 : g->t_i32, d, d ? 52 : 23, d ? 1023 : 127};
}

static LLVMValueRef K(fty f, double v) { return LLVMConstReal(f.t, v); }
static LLVMValueRef KI(fty f, long long v) { return LLVMConstInt(f.it, (unsigned long long)v, 1); }

static LLVMValueRef fma3(cg *g, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
    LLVMTypeRef t = LLVMTypeOf(a);
    LLVMValueRef args[3] = {a, b, c};
    return cg_intr(g, "llvm.fma", t, 1, &t, 3, args);
}

static LLVMValueRef horner(cg *g, fty f, LLVMValueRef x, const double *c, int n) {
    LLVMValueRef r = K(f, c[0]);
    for (int i = 1; i < n; i++) r = fma3(g, r, x, K(f, c[i]));
    return r;
}

#define FMUL(a, b) LLVMBuildFMul(g->B, a, b, "")
#define FADD(a, b) LLVMBuildFAdd(g->B, a, b, "")
#define FSUB(a, b) LLVMBuildFSub(g->B, a, b, "")
#define FDIV(a, b) LLVMBuildFDiv(g->B, a, b, "")
#define SEL(c, a, b) LLVMBuildSelect(g->B, c, a, b, "")
#define FCMP(p, a, b) LLVMBuildFCmp(g->B, p, a, b, "")

/* 2^n for n in the normal exponent range, as a float of type f */
static LLVMValueRef pow2i(cg *g, fty f, LLVMValueRef n) {
    LLVMValueRef e = LLVMBuildAdd(g->B, n, KI(f, f.bias), "");
    return LLVMBuildBitCast(g->B, LLVMBuildShl(g->B, e, KI(f, f.mbits), ""), f.t, "");
}

/* ---------------------------------------------------------------- exp */

LLVMValueRef cgm_exp(cg *g, LLVMValueRef x) {
    fty f = fty_of(g, x);
    /* past these e^x is inf or 0 in the type; holding x there keeps n in range */
    double lo = f.d ? -746.0 : -104.0, hi = f.d ? 710.0 : 89.0;
    double ln2hi = f.d ? 0.6931471805599453 : 0.693147182464599609375;
    double ln2lo = f.d ? 2.3190468138462996e-17 : -1.9046542999577797e-09;
    LLVMValueRef xc = cg_intr2(g, "llvm.minnum", cg_intr2(g, "llvm.maxnum", x, K(f, lo)), K(f, hi));
    LLVMValueRef n = cg_intr1(g, "llvm.rint", FMUL(xc, K(f, 1.4426950408889634)));
    LLVMValueRef nn = LLVMBuildFNeg(g->B, n, "");
    LLVMValueRef r = fma3(g, nn, K(f, ln2hi), xc);
    r = fma3(g, nn, K(f, ln2lo), r);
    LLVMValueRef q = f.d ? horner(g, f, r, exp_q64, N(exp_q64)) : horner(g, f, r, exp_q32, N(exp_q32));
    LLVMValueRef p = FADD(K(f, 1.0), fma3(g, FMUL(r, r), q, r));
    LLVMValueRef ni = LLVMBuildFPToSI(g->B, n, f.it, "");
    LLVMValueRef n1 = LLVMBuildAShr(g->B, ni, KI(f, 1), "");
    LLVMValueRef n2 = LLVMBuildSub(g->B, ni, n1, "");
    LLVMValueRef res = FMUL(FMUL(p, pow2i(g, f, n1)), pow2i(g, f, n2));
    return SEL(cg_is_nan(g, x), x, res);
}

/* ---------------------------------------------------------------- log */

LLVMValueRef cgm_log(cg *g, LLVMValueRef x) {
    fty f = fty_of(g, x);
    double minnorm = f.d ? 2.2250738585072014e-308 : 1.1754943508222875e-38;
    int k = f.mbits + 1;
    LLVMValueRef tiny = FCMP(LLVMRealOLT, x, K(f, minnorm));
    LLVMValueRef xs = SEL(tiny, FMUL(x, K(f, ldexp(1.0, k))), x);
    LLVMValueRef bits = LLVMBuildBitCast(g->B, xs, f.it, "");
    LLVMValueRef e = LLVMBuildSub(g->B, LLVMBuildLShr(g->B, bits, KI(f, f.mbits), ""), KI(f, f.bias), "");
    e = SEL(tiny, LLVMBuildSub(g->B, e, KI(f, k), ""), e);
    long long mmask = (1LL << f.mbits) - 1;
    LLVMValueRef mb = LLVMBuildOr(g->B, LLVMBuildAnd(g->B, bits, KI(f, mmask), ""),
                                  KI(f, (long long)f.bias << f.mbits), "");
    LLVMValueRef m = LLVMBuildBitCast(g->B, mb, f.t, ""); /* [1, 2) */
    LLVMValueRef big = FCMP(LLVMRealOGT, m, K(f, 1.4142135623730951));
    m = SEL(big, FMUL(m, K(f, 0.5)), m);
    e = SEL(big, LLVMBuildAdd(g->B, e, KI(f, 1), ""), e);
    LLVMValueRef s = FDIV(FSUB(m, K(f, 1.0)), FADD(m, K(f, 1.0)));
    LLVMValueRef z = FMUL(s, s);
    LLVMValueRef R = f.d ? horner(g, f, z, log_q64, N(log_q64)) : horner(g, f, z, log_q32, N(log_q32));
    LLVMValueRef lm = fma3(g, FMUL(s, z), R, FADD(s, s));
    LLVMValueRef ef = LLVMBuildSIToFP(g->B, e, f.t, "");
    double ln2hi = f.d ? 0.6931471805599453 : 0.693147182464599609375;
    double ln2lo = f.d ? 2.3190468138462996e-17 : -1.9046542999577797e-09;
    LLVMValueRef res = fma3(g, ef, K(f, ln2hi), fma3(g, ef, K(f, ln2lo), lm));
    res = SEL(FCMP(LLVMRealOEQ, x, K(f, INFINITY)), x, res);
    res = SEL(FCMP(LLVMRealOEQ, x, K(f, 0.0)), K(f, -INFINITY), res);
    res = SEL(FCMP(LLVMRealULT, x, K(f, 0.0)), K(f, NAN), res); /* x < 0 or NaN */
    return res;
}

/* ---------------------------------------------------------------- tanh */

LLVMValueRef cgm_tanh(cg *g, LLVMValueRef x) {
    fty f = fty_of(g, x);
    LLVMValueRef a = cg_intr1(g, "llvm.fabs", x);
    LLVMValueRef z = FMUL(x, x);
    LLVMValueRef P = f.d ? horner(g, f, z, tanh_p64, N(tanh_p64)) : horner(g, f, z, tanh_p32, N(tanh_p32));
    LLVMValueRef small = fma3(g, FMUL(a, z), P, a);
    LLVMValueRef e = cgm_exp(g, FADD(a, a));
    LLVMValueRef large = FSUB(K(f, 1.0), FDIV(K(f, 2.0), FADD(e, K(f, 1.0))));
    /* tanh is odd: work on |x|, then take x's sign (keeps tanh(-0) = -0) */
    return cg_intr2(g, "llvm.copysign", SEL(FCMP(LLVMRealOLT, a, K(f, 0.55)), small, large), x);
}

/* ---------------------------------------------------------------- sin, cos */

static LLVMValueRef sin_or_cos(cg *g, LLVMValueRef x, bool want_cos) {
    fty f = fty_of(g, x);
    fty d = {g->t_f64, g->t_i64, true, 52, 1023};
    LLVMValueRef xd = f.d ? x : LLVMBuildFPExt(g->B, x, g->t_f64, "");
    LLVMValueRef k = cg_intr1(g, "llvm.rint", FMUL(xd, K(d, 0.6366197723675814)));
    LLVMValueRef nk = LLVMBuildFNeg(g->B, k, "");
    LLVMValueRef r = fma3(g, nk, K(d, 1.5707963267948966), xd);
    r = fma3(g, nk, K(d, 6.123233995736766e-17), r);
    r = fma3(g, nk, K(d, -1.4973849048591698e-33), r);
    LLVMTypeRef tys[2] = {g->t_i64, g->t_f64};
    LLVMValueRef q = cg_intr(g, "llvm.fptosi.sat", g->t_i64, 2, tys, 1, &k);
    if (want_cos) q = LLVMBuildAdd(g->B, q, cg_i64(g, 1), ""); /* cos x = sin(x + pi/2) */
    q = LLVMBuildAnd(g->B, q, cg_i64(g, 3), "");
    LLVMValueRef z = FMUL(r, r);
    LLVMValueRef s = fma3(g, FMUL(r, z), horner(g, d, z, sin_p64, N(sin_p64)), r);
    LLVMValueRef c = fma3(g, FMUL(z, z), horner(g, d, z, cos_p64, N(cos_p64)),
                          fma3(g, z, K(d, -0.5), K(d, 1.0)));
    LLVMValueRef odd = LLVMBuildTrunc(g->B, q, g->t_i1, "");
    LLVMValueRef neg = LLVMBuildICmp(g->B, LLVMIntUGE, q, cg_i64(g, 2), "");
    LLVMValueRef v = SEL(odd, c, s);
    v = SEL(neg, LLVMBuildFNeg(g->B, v, ""), v);
    if (!want_cos) v = SEL(FCMP(LLVMRealOEQ, xd, K(d, 0.0)), xd, v); /* sin(-0) = -0 */
    return f.d ? v : LLVMBuildFPTrunc(g->B, v, g->t_f32, "");
}

LLVMValueRef cgm_sin(cg *g, LLVMValueRef x) { return sin_or_cos(g, x, false); }
LLVMValueRef cgm_cos(cg *g, LLVMValueRef x) { return sin_or_cos(g, x, true); }

/* ---------------------------------------------------------------- erf */

typedef struct piece {
    double lo, hi; /* x interval; hi < 0 marks the last piece, in u = 1/x^2 on [0, 1/16] */
    const double *c;
    int n;
} piece;

/* erfcx(a) = e^{a^2} erfc(a) for a >= 0.75 */
static LLVMValueRef erfcx(cg *g, fty f, LLVMValueRef a) {
    static const piece p32[] = {{0.75, 2, erfcx32_0, N(erfcx32_0)},
                                {2, 4, erfcx32_1, N(erfcx32_1)},
                                {4, -1, erfcx32_2, N(erfcx32_2)}};
    static const piece p64[] = {{0.75, 1.5, erfcx64_0, N(erfcx64_0)},
                                {1.5, 2.5, erfcx64_1, N(erfcx64_1)},
                                {2.5, 4, erfcx64_2, N(erfcx64_2)},
                                {4, -1, erfcx64_3, N(erfcx64_3)}};
    const piece *P = f.d ? p64 : p32;
    int np = f.d ? N(p64) : N(p32);
    int deg = 0;
    for (int i = 0; i < np; i++)
        if (P[i].n > deg) deg = P[i].n;
    /* which piece: sel[i] true for a >= P[i].lo; the last true one wins */
    LLVMValueRef sel[8];
    for (int i = 0; i < np; i++) sel[i] = FCMP(LLVMRealOGE, a, K(f, P[i].lo));
    LLVMValueRef u = FDIV(K(f, 1.0), FMUL(a, a));
    LLVMValueRef t = NULL;
    for (int i = 0; i < np; i++) {
        LLVMValueRef ti;
        if (P[i].hi < 0) ti = fma3(g, u, K(f, 32.0), K(f, -1.0));
        else ti = FMUL(FSUB(a, K(f, (P[i].lo + P[i].hi) / 2)), K(f, 2.0 / (P[i].hi - P[i].lo)));
        t = t ? SEL(sel[i], ti, t) : ti;
    }
    LLVMValueRef r = NULL;
    for (int j = 0; j < deg; j++) {
        LLVMValueRef c = NULL;
        for (int i = 0; i < np; i++) {
            int off = deg - P[i].n; /* pad shorter polynomials with leading zeros */
            LLVMValueRef ci = K(f, j < off ? 0.0 : P[i].c[j - off]);
            c = c ? SEL(sel[i], ci, c) : ci;
        }
        r = r ? fma3(g, r, t, c) : c;
    }
    /* the last piece fits a * erfcx(a) */
    return SEL(sel[np - 1], FDIV(r, a), r);
}

LLVMValueRef cgm_erf1p(cg *g, LLVMValueRef x) {
    fty f = fty_of(g, x);
    LLVMValueRef a = cg_intr1(g, "llvm.fabs", x);
    LLVMValueRef z = FMUL(x, x);
    LLVMValueRef P = f.d ? horner(g, f, z, erf_p64, N(erf_p64)) : horner(g, f, z, erf_p32, N(erf_p32));
    LLVMValueRef small = FADD(K(f, 1.0), fma3(g, x, P, x));
    /* erfc(a) = e^{-a^2} erfcx(a); a^2 = hi + lo exactly, e^{-lo} ~ 1 - lo */
    /* past 20 (f32) / 40 (f64) erfc is 0 in the type; holding a there keeps a^2 finite, and
     * at least 0.75 keeps the unused lane finite */
    LLVMValueRef ac = cg_intr2(g, "llvm.minnum", cg_intr2(g, "llvm.maxnum", a, K(f, 0.75)),
                               K(f, f.d ? 40.0 : 20.0));
    LLVMValueRef hi = FMUL(ac, ac);
    LLVMValueRef lo = fma3(g, ac, ac, LLVMBuildFNeg(g->B, hi, ""));
    LLVMValueRef ex = FMUL(cgm_exp(g, LLVMBuildFNeg(g->B, hi, "")), FSUB(K(f, 1.0), lo));
    LLVMValueRef erfc = FMUL(ex, erfcx(g, f, ac));
    LLVMValueRef large = SEL(FCMP(LLVMRealOGT, x, K(f, 0.0)), FSUB(K(f, 2.0), erfc), erfc);
    LLVMValueRef r = SEL(FCMP(LLVMRealOLT, a, K(f, 0.75)), small, large);
    return SEL(cg_is_nan(g, x), x, r);
}

/* ---------------------------------------------------------------- pow */

LLVMValueRef cgm_pow(cg *g, LLVMValueRef x, LLVMValueRef y) {
    fty f = fty_of(g, x);
    fty d = {g->t_f64, g->t_i64, true, 52, 1023};
    LLVMValueRef xd = f.d ? x : LLVMBuildFPExt(g->B, x, g->t_f64, "");
    LLVMValueRef yd = f.d ? y : LLVMBuildFPExt(g->B, y, g->t_f64, "");
    LLVMValueRef ax = cg_intr1(g, "llvm.fabs", xd);
    LLVMValueRef r = cgm_exp(g, FMUL(yd, cgm_log(g, ax)));
    LLVMValueRef fl = cg_intr1(g, "llvm.floor", yd);
    LLVMValueRef yint = FCMP(LLVMRealOEQ, fl, yd); /* inf counts as an (even) integer */
    LLVMValueRef half = cg_intr1(g, "llvm.floor", FMUL(yd, K(d, 0.5)));
    LLVMValueRef yodd = LLVMBuildAnd(g->B, yint, FCMP(LLVMRealONE, FMUL(half, K(d, 2.0)), yd), "");
    LLVMValueRef xneg = LLVMBuildICmp(g->B, LLVMIntSLT, LLVMBuildBitCast(g->B, xd, g->t_i64, ""),
                                      cg_i64(g, 0), ""); /* sign bit, so -0 and -inf too */
    r = SEL(LLVMBuildAnd(g->B, xneg, yodd, ""), LLVMBuildFNeg(g->B, r, ""), r);
    /* a finite x < 0 with a non-integer y has no real power (-inf has: +0 or +inf) */
    LLVMValueRef xnegfin = LLVMBuildAnd(g->B, FCMP(LLVMRealOLT, xd, K(d, 0.0)),
                                        FCMP(LLVMRealOGT, xd, K(d, -INFINITY)), "");
    LLVMValueRef bad = LLVMBuildAnd(g->B, xnegfin, LLVMBuildNot(g->B, yint, ""), "");
    bad = LLVMBuildAnd(g->B, bad, FCMP(LLVMRealOEQ, yd, yd), ""); /* y NaN stays NaN via r */
    r = SEL(bad, K(d, NAN), r);
    /* exact where cheap: y = 1 and y = 2 */
    r = SEL(FCMP(LLVMRealOEQ, yd, K(d, 1.0)), xd, r);
    r = SEL(FCMP(LLVMRealOEQ, yd, K(d, 2.0)), FMUL(xd, xd), r);
    LLVMValueRef one = LLVMBuildOr(g->B, FCMP(LLVMRealOEQ, yd, K(d, 0.0)),
                                   FCMP(LLVMRealOEQ, xd, K(d, 1.0)), "");
    LLVMValueRef yinf = FCMP(LLVMRealOEQ, cg_intr1(g, "llvm.fabs", yd), K(d, INFINITY));
    one = LLVMBuildOr(g->B, one, LLVMBuildAnd(g->B, yinf, FCMP(LLVMRealOEQ, ax, K(d, 1.0)), ""), "");
    r = SEL(one, K(d, 1.0), r);
    return f.d ? r : LLVMBuildFPTrunc(g->B, r, g->t_f32, "");
}
