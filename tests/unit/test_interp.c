/* test_interp.c: the reference interpreter, op by op, against values the test computes itself
 * (by hand or with a small loop written here, never with the library's own scalar functions):
 * every core op of ops.def on odd shapes with broadcasting and seeded random non-zero inputs,
 * per-op dtype rounding, symbols bound at run time, calls, argument errors and run-time errors. */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tir.h"
#include "testutil.h"

/* ---------------------------------------------------------------- helpers */

static tir_context *ctx;

static void setup(void) { ctx = tir_context_create(); }
static void teardown(void) { tir_context_destroy(ctx); }

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static void seed(uint64_t s) { rng = s * 0x9e3779b97f4a7c15ull + 1; }
static double urand(void) { return tu_urand(&rng); }
/* magnitude in [lo, hi), random sign when signed */
static double rnd(double lo, double hi, bool sign) {
    double v = lo + (hi - lo) * urand();
    return sign && urand() < 0.5 ? -v : v;
}

static tir_module *parse(const char *src) { return tu_parse(ctx, src); }

static tir_tensor *tensor(tir_dtype dt, int rank, const int64_t *dims) {
    tir_tensor *t = tir_tensor_new(dt, rank, dims);
    ck_assert_ptr_nonnull(t);
    return t;
}

static tir_tensor *rand_tensor(tir_dtype dt, int rank, const int64_t *dims, double lo, double hi,
                               bool sign) {
    tir_tensor *t = tensor(dt, rank, dims);
    for (int64_t i = 0; i < tir_tensor_numel(t); i++) tir_tensor_set(t, i, rnd(lo, hi, sign));
    return t;
}

static tir_tensor *vec(tir_dtype dt, int rank, const int64_t *dims, const double *v) {
    tir_tensor *t = tensor(dt, rank, dims);
    for (int64_t i = 0; i < tir_tensor_numel(t); i++) tir_tensor_set(t, i, v[i]);
    return t;
}

/* runs and asserts success; results poisoned first so a result never written shows */
static void run(tir_module *m, const char *fn, int nargs, tir_tensor *const *args, int nres,
                tir_tensor **res) {
    tir_diag d;
    for (int i = 0; i < nres; i++) res[i] = (tir_tensor *)(uintptr_t)0x1;
    tir_status st = tir_interpret(m, fn, nargs, args, nres, res, &d);
    ck_assert_msg(st == TIR_OK, "interpret @%s failed: %s: %s", fn, tir_status_name(st), d.msg);
    for (int i = 0; i < nres; i++) ck_assert_ptr_nonnull(res[i]);
}

static tir_status run_err(tir_module *m, const char *fn, int nargs, tir_tensor *const *args,
                          int nres, tir_diag *d) {
    tir_tensor *res[8];
    tir_status st = tir_interpret(m, fn, nargs, args, nres, res, d);
    ck_assert_int_ne(st, TIR_OK);
    for (int i = 0; i < nres; i++) ck_assert_ptr_null(res[i]);
    return st;
}

static void free_all(int n, tir_tensor **t) {
    for (int i = 0; i < n; i++) tir_tensor_free(t[i]);
}

static void check_shape(const tir_tensor *t, tir_dtype dt, int rank, const int64_t *dims) {
    ck_assert_int_eq(tir_tensor_dtype(t), dt);
    ck_assert_int_eq(tir_tensor_rank(t), rank);
    for (int i = 0; i < rank; i++) ck_assert_int_eq(tir_tensor_dim(t, i), dims[i]);
}

static bool close_to(double got, double want, double rtol) {
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabs(got - want) <= rtol * fmax(1.0, fabs(want));
}

/* asserts got ~ want; the message says where, from the printf-style context */
static void expect_near(double got, double want, double rtol, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void expect_near(double got, double want, double rtol, const char *fmt, ...) {
    if (close_to(got, want, rtol)) return;
    char where[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(where, sizeof where, fmt, ap);
    va_end(ap);
    ck_abort_msg("got %.17g, want %.17g: %s", got, want, where);
}
#define EXPECT_NEAR expect_near

/* bf16 round-to-nearest-even of a float, done on the bits (independent of the library) */
static double bf16(double v) {
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}

/* ---------------------------------------------------------------- unary ops */

static double ref_neg(double x) { return -x; }
static double ref_abs(double x) { return x < 0 ? -x : x; }
static double ref_rsqrt(double x) { return 1.0 / sqrt(x); }
static double ref_recip(double x) { return 1.0 / x; }
static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double ref_relu(double x) { return x > 0 ? x : 0; }
static double ref_silu(double x) { return x * ref_sigmoid(x); }
static double ref_gelu(double x) { return x * 0.5 * (1.0 + erf(x / sqrt(2.0))); }
static double ref_gelu_tanh(double x) {
    double k = sqrt(2.0 / M_PI);
    return 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x)));
}

static const struct {
    const char *call; /* the op applied to %x */
    double (*f)(double);
    double lo, hi;
    bool sign;
} unary[] = {
    {"neg(%x)", ref_neg, 0.1, 3, true},
    {"abs(%x)", ref_abs, 0.1, 3, true},
    {"exp(%x)", exp, 0.1, 3, true},
    {"log(%x)", log, 0.1, 5, false},
    {"sqrt(%x)", sqrt, 0.1, 5, false},
    {"rsqrt(%x)", ref_rsqrt, 0.1, 5, false},
    {"recip(%x)", ref_recip, 0.1, 5, true},
    {"tanh(%x)", tanh, 0.1, 3, true},
    {"sigmoid(%x)", ref_sigmoid, 0.1, 6, true},
    {"relu(%x)", ref_relu, 0.1, 3, true},
    {"silu(%x)", ref_silu, 0.1, 4, true},
    {"gelu(%x)", ref_gelu, 0.1, 4, true},
    {"gelu(%x, approximate=\"none\")", ref_gelu, 0.1, 4, true},
    {"gelu(%x, approximate=\"tanh\")", ref_gelu_tanh, 0.1, 4, true},
    {"sin(%x)", sin, 0.1, 6, true},
    {"cos(%x)", cos, 0.1, 6, true},
};
#define NUNARY ((int)(sizeof unary / sizeof unary[0]))

/* f64 runs the formula exactly; f32 is the f64 result rounded to float once (within an ulp, as
 * the test's formula may differ from the op table's in the last bit of the double) */
START_TEST(test_unary) {
    static const char *const dts[] = {"f64", "f32"};
    for (int di = 0; di < 2; di++) {
        char src[512];
        snprintf(src, sizeof src,
                 "func @f(%%x: %s[3, 5]) -> %s[3, 5] {\n  %%y = %s\n  return %%y\n}\n", dts[di],
                 dts[di], unary[_i].call);
        tir_module *m = parse(src);
        seed(100 + (uint64_t)_i);
        int64_t dims[2] = {3, 5};
        tir_dtype dt = di == 0 ? TIR_F64 : TIR_F32;
        tir_tensor *x = rand_tensor(dt, 2, dims, unary[_i].lo, unary[_i].hi, unary[_i].sign);
        tir_tensor *y;
        run(m, "f", 1, &x, 1, &y);
        check_shape(y, dt, 2, dims);
        for (int i = 0; i < 15; i++) {
            double xv = tir_tensor_get(x, i), want = unary[_i].f(xv);
            if (dt == TIR_F32) want = (double)(float)want;
            EXPECT_NEAR(tir_tensor_get(y, i), want, dt == TIR_F64 ? 1e-14 : 2.5e-7, "%s(%g) %s",
                        unary[_i].call, xv, dts[di]);
        }
        tir_tensor_free(x);
        tir_tensor_free(y);
        tir_module_free(m);
    }
}
END_TEST

START_TEST(test_not_and_or) {
    tir_module *m = parse("func @f(%a: bool[3, 1], %b: bool[4]) -> (bool[3, 1], bool[3, 4], bool[3, 4]) {\n"
                          "  %n = not(%a)\n  %x = and(%a, %b)\n  %o = or(%a, %b)\n"
                          "  return %n, %x, %o\n}\n");
    int64_t da[2] = {3, 1}, db[1] = {4};
    double av[3] = {1, 0, 1}, bv[4] = {0, 1, 1, 0};
    tir_tensor *in[2] = {vec(TIR_BOOL, 2, da, av), vec(TIR_BOOL, 1, db, bv)}, *r[3];
    run(m, "f", 2, in, 3, r);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(tir_tensor_get(r[0], i), !av[i]);
        for (int j = 0; j < 4; j++) {
            ck_assert_int_eq(tir_tensor_get(r[1], i * 4 + j), av[i] != 0 && bv[j] != 0);
            ck_assert_int_eq(tir_tensor_get(r[2], i * 4 + j), av[i] != 0 || bv[j] != 0);
        }
    }
    free_all(2, in);
    free_all(3, r);
    tir_module_free(m);
}
END_TEST

/* ---------------------------------------------------------------- binary ops */

static double b_add(double a, double b) { return a + b; }
static double b_sub(double a, double b) { return a - b; }
static double b_mul(double a, double b) { return a * b; }
static double b_div(double a, double b) { return a / b; }
static double b_max(double a, double b) { return a > b ? a : b; }
static double b_min(double a, double b) { return a < b ? a : b; }
static double b_eq(double a, double b) { return a == b; }
static double b_ne(double a, double b) { return a != b; }
static double b_lt(double a, double b) { return a < b; }
static double b_le(double a, double b) { return a <= b; }
static double b_gt(double a, double b) { return a > b; }
static double b_ge(double a, double b) { return a >= b; }

static const struct {
    const char *op;
    double (*f)(double, double);
    bool compare; /* bool result; inputs drawn from a few integers so that ties occur */
    bool pos_a;   /* pow: positive base */
} binary[] = {
    {"add", b_add, false, false}, {"sub", b_sub, false, false},    {"mul", b_mul, false, false},
    {"div", b_div, false, false}, {"pow", pow, false, true},       {"maximum", b_max, false, false},
    {"minimum", b_min, false, false}, {"eq", b_eq, true, false},   {"ne", b_ne, true, false},
    {"lt", b_lt, true, false},    {"le", b_le, true, false},       {"gt", b_gt, true, false},
    {"ge", b_ge, true, false},
};
#define NBINARY ((int)(sizeof binary / sizeof binary[0]))

/* a[3, 1, 5] op b[4, 5] -> [3, 4, 5]: both operands broadcast */
START_TEST(test_binary) {
    char src[512];
    const char *rt = binary[_i].compare ? "bool" : "f64";
    snprintf(src, sizeof src,
             "func @f(%%a: f64[3, 1, 5], %%b: f64[4, 5]) -> %s[3, 4, 5] {\n"
             "  %%y = %s(%%a, %%b)\n  return %%y\n}\n",
             rt, binary[_i].op);
    tir_module *m = parse(src);
    seed(200 + (uint64_t)_i);
    int64_t da[3] = {3, 1, 5}, db[2] = {4, 5}, dy[3] = {3, 4, 5};
    tir_tensor *in[2], *y;
    if (binary[_i].compare) {
        in[0] = tensor(TIR_F64, 3, da);
        in[1] = tensor(TIR_F64, 2, db);
        for (int i = 0; i < 15; i++) tir_tensor_set(in[0], i, floor(rnd(0, 3, false)) - 1);
        for (int i = 0; i < 20; i++) tir_tensor_set(in[1], i, floor(rnd(0, 3, false)) - 1);
    } else {
        in[0] = rand_tensor(TIR_F64, 3, da, 0.25, 2, !binary[_i].pos_a);
        in[1] = rand_tensor(TIR_F64, 2, db, 0.25, 2, true);
    }
    run(m, "f", 2, in, 1, &y);
    check_shape(y, binary[_i].compare ? TIR_BOOL : TIR_F64, 3, dy);
    int ties = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 5; k++) {
                double a = tir_tensor_get(in[0], i * 5 + k), b = tir_tensor_get(in[1], j * 5 + k);
                ties += a == b;
                EXPECT_NEAR(tir_tensor_get(y, (i * 4 + j) * 5 + k), binary[_i].f(a, b), 1e-15,
                            "%s(%g, %g)", binary[_i].op, a, b);
            }
    if (binary[_i].compare) ck_assert_int_gt(ties, 0);
    free_all(2, in);
    tir_tensor_free(y);
    tir_module_free(m);
}
END_TEST

START_TEST(test_maximum_nan_and_literal) {
    /* maximum/minimum propagate NaN (unlike C's fmax); a literal operand takes the dtype */
    tir_module *m = parse("func @f(%a: f32[4]) -> (f32[4], f32[4]) {\n"
                          "  %x = maximum(%a, 1.5)\n  %n = minimum(%a, 1.5)\n  return %x, %n\n}\n");
    int64_t d4 = 4;
    double av[4] = {NAN, 3.25, -2, 1.5};
    tir_tensor *a = vec(TIR_F32, 1, &d4, av), *r[2];
    run(m, "f", 1, &a, 2, r);
    double wx[4] = {NAN, 3.25, 1.5, 1.5}, wn[4] = {NAN, 1.5, -2, 1.5};
    for (int i = 0; i < 4; i++) {
        EXPECT_NEAR(tir_tensor_get(r[0], i), wx[i], 0, "maximum %d", i);
        EXPECT_NEAR(tir_tensor_get(r[1], i), wn[i], 0, "minimum %d", i);
    }
    tir_tensor_free(a);
    free_all(2, r);
    tir_module_free(m);
}
END_TEST

START_TEST(test_int_division) {
    /* integer division truncates toward zero; x / 0 is 0 */
    tir_module *m = parse("func @f(%a: i32[6], %b: i32[6]) -> i32[6] {\n"
                          "  %y = div(%a, %b)\n  return %y\n}\n");
    int64_t d = 6;
    double av[6] = {7, -7, 7, -7, 9, 5}, bv[6] = {2, 2, -2, -2, 0, 7};
    double want[6] = {3, -3, -3, 3, 0, 0};
    tir_tensor *in[2] = {vec(TIR_I32, 1, &d, av), vec(TIR_I32, 1, &d, bv)}, *y;
    run(m, "f", 2, in, 1, &y);
    for (int i = 0; i < 6; i++) ck_assert_int_eq((int)tir_tensor_get(y, i), (int)want[i]);
    free_all(2, in);
    tir_tensor_free(y);
    tir_module_free(m);
}
END_TEST

START_TEST(test_int_saturation) {
    /* i8 arithmetic saturates rather than wrapping */
    tir_module *m = parse("func @f(%a: i8[3], %b: i8[3]) -> i8[3] {\n"
                          "  %y = mul(%a, %b)\n  return %y\n}\n");
    int64_t d = 3;
    double av[3] = {100, -100, 7}, bv[3] = {3, 3, -5};
    tir_tensor *in[2] = {vec(TIR_I8, 1, &d, av), vec(TIR_I8, 1, &d, bv)}, *y;
    run(m, "f", 2, in, 1, &y);
    ck_assert_int_eq((int)tir_tensor_get(y, 0), 127);
    ck_assert_int_eq((int)tir_tensor_get(y, 1), -128);
    ck_assert_int_eq((int)tir_tensor_get(y, 2), -35);
    free_all(2, in);
    tir_tensor_free(y);
    tir_module_free(m);
}
END_TEST

START_TEST(test_bf16_rounds_per_op) {
    /* bf16 keeps 8 significant bits: 1 + 2^-8 is a tie that rounds to even (1.0), and
     * 1.0078125 + 2^-8 ties up to 1.015625. Each add rounds, so (a + b) + b differs from
     * a + (b + b). */
    tir_module *m = parse("func @f(%a: bf16[2], %b: bf16[2]) -> (bf16[2], bf16[2], bf16[2]) {\n"
                          "  %s = add(%a, %b)\n  %t = add(%s, %b)\n  %u = add(%a, add(%b, %b))\n"
                          "  return %s, %t, %u\n}\n");
    int64_t d = 2;
    double av[2] = {1.0, 1.0078125}, bv[2] = {0.00390625, 0.00390625};
    tir_tensor *in[2] = {vec(TIR_BF16, 1, &d, av), vec(TIR_BF16, 1, &d, bv)}, *r[3];
    run(m, "f", 2, in, 3, r);
    ck_assert_double_eq(tir_tensor_get(r[0], 0), 1.0);
    ck_assert_double_eq(tir_tensor_get(r[0], 1), 1.015625);
    ck_assert_double_eq(tir_tensor_get(r[1], 0), 1.0);       /* 1 + b -> 1, again */
    ck_assert_double_eq(tir_tensor_get(r[2], 0), 1.0078125); /* 1 + 2^-7 is exact */
    for (int i = 0; i < 2; i++)
        ck_assert_double_eq(tir_tensor_get(r[0], i), bf16(av[i] + bv[i]));
    free_all(2, in);
    free_all(3, r);
    tir_module_free(m);
}
END_TEST

/* ---------------------------------------------------------------- where, cast */

START_TEST(test_where) {
    /* where(c[3, 1], a[3, 4], b[]) broadcasts all three */
    tir_module *m = parse("func @f(%c: bool[3, 1], %a: f32[3, 4], %b: f32[]) -> f32[3, 4] {\n"
                          "  %y = where(%c, %a, %b)\n  return %y\n}\n");
    int64_t dc[2] = {3, 1}, da[2] = {3, 4};
    double cv[3] = {1, 0, 1};
    seed(300);
    tir_tensor *in[3] = {vec(TIR_BOOL, 2, dc, cv), rand_tensor(TIR_F32, 2, da, 0.5, 2, true),
                         tensor(TIR_F32, 0, NULL)},
               *y;
    tir_tensor_set(in[2], 0, -7.25);
    run(m, "f", 3, in, 1, &y);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            ck_assert_double_eq(tir_tensor_get(y, i * 4 + j),
                                cv[i] ? tir_tensor_get(in[1], i * 4 + j) : -7.25);
    free_all(3, in);
    tir_tensor_free(y);
    tir_module_free(m);
}
END_TEST

START_TEST(test_cast) {
    tir_module *m = parse(
        "func @f(%x: f32[7]) -> (i8[7], u8[7], bool[7], bf16[7], f8e4m3[7], i32[7]) {\n"
        "  %a = cast(%x, dtype=i8)\n  %b = cast(%x, dtype=u8)\n  %c = cast(%x, dtype=bool)\n"
        "  %d = cast(%x, dtype=bf16)\n  %e = cast(%x, dtype=f8e4m3)\n  %f = cast(%x, dtype=i32)\n"
        "  return %a, %b, %c, %d, %e, %f\n}\n");
    int64_t d = 7;
    double xv[7] = {1000.75, -300, 3.9, -3.9, 0, NAN, 1.00390625};
    tir_tensor *x = vec(TIR_F32, 1, &d, xv), *r[6];
    run(m, "f", 1, &x, 6, r);
    double wi8[7] = {127, -128, 3, -3, 0, 0, 1}, wu8[7] = {255, 0, 3, 0, 0, 0, 1};
    double wb[7] = {1, 1, 1, 1, 0, 1, 1};
    double wi32[7] = {1000, -300, 3, -3, 0, 0, 1};
    for (int i = 0; i < 7; i++) {
        ck_assert_double_eq(tir_tensor_get(r[0], i), wi8[i]);
        ck_assert_double_eq(tir_tensor_get(r[1], i), wu8[i]);
        ck_assert_double_eq(tir_tensor_get(r[2], i), wb[i]);
        ck_assert_double_eq(tir_tensor_get(r[5], i), wi32[i]);
    }
    /* bf16: 1000.75 -> 1000 (8 significant bits), 3.9 -> 3.90625, 1 + 2^-8 ties to 1 */
    ck_assert_double_eq(tir_tensor_get(r[3], 0), 1000);
    ck_assert_double_eq(tir_tensor_get(r[3], 2), 3.90625);
    ck_assert_double_eq(tir_tensor_get(r[3], 6), 1.0);
    ck_assert(isnan(tir_tensor_get(r[3], 5)));
    /* e4m3 saturates at 448; below that it steps by 32 near 300 */
    ck_assert_double_eq(tir_tensor_get(r[4], 0), 448);
    ck_assert_double_eq(tir_tensor_get(r[4], 1), -288);
    ck_assert_double_eq(tir_tensor_get(r[4], 2), 4);
    tir_tensor_free(x);
    free_all(6, r);
    tir_module_free(m);
}
END_TEST

/* ---------------------------------------------------------------- reductions */

START_TEST(test_reductions) {
    tir_module *m = parse(
        "func @f(%x: f64[3, 4, 5]) -> (f64[1, 4, 1], f64[3, 4], f64[4], f64[3, 1, 5], f64[]) {\n"
        "  %s = sum(%x, axes=[0, -1], keepdim=true)\n"
        "  %a = max(%x, axes=[2])\n"
        "  %b = min(%x, axes=[0, 2])\n"
        "  %c = mean(%x, axes=[1], keepdim=true)\n"
        "  %t = sum(%x)\n"
        "  return %s, %a, %b, %c, %t\n}\n");
    int64_t dx[3] = {3, 4, 5};
    seed(400);
    tir_tensor *x = rand_tensor(TIR_F64, 3, dx, 0.1, 3, true), *r[5];
    run(m, "f", 1, &x, 5, r);
    int64_t d0[3] = {1, 4, 1}, d1[2] = {3, 4}, d2[1] = {4}, d3[3] = {3, 1, 5};
    check_shape(r[0], TIR_F64, 3, d0);
    check_shape(r[1], TIR_F64, 2, d1);
    check_shape(r[2], TIR_F64, 1, d2);
    check_shape(r[3], TIR_F64, 3, d3);
    check_shape(r[4], TIR_F64, 0, NULL);
#define X3(i, j, k) tir_tensor_get(x, ((i) * 4 + (j)) * 5 + (k))
    double total = 0;
    for (int j = 0; j < 4; j++) {
        double s = 0, mn = INFINITY;
        for (int i = 0; i < 3; i++)
            for (int k = 0; k < 5; k++) {
                s += X3(i, j, k);
                mn = X3(i, j, k) < mn ? X3(i, j, k) : mn;
            }
        total += s;
        EXPECT_NEAR(tir_tensor_get(r[0], j), s, 1e-13, "sum j=%d", j);
        EXPECT_NEAR(tir_tensor_get(r[2], j), mn, 0, "min j=%d", j);
    }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            double mx = -INFINITY;
            for (int k = 0; k < 5; k++) mx = X3(i, j, k) > mx ? X3(i, j, k) : mx;
            EXPECT_NEAR(tir_tensor_get(r[1], i * 4 + j), mx, 0, "max %d %d", i, j);
        }
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 5; k++) {
            double s = 0;
            for (int j = 0; j < 4; j++) s += X3(i, j, k);
            EXPECT_NEAR(tir_tensor_get(r[3], i * 5 + k), s / 4, 1e-14, "mean %d %d", i, k);
        }
#undef X3
    EXPECT_NEAR(tir_tensor_get(r[4], 0), total, 1e-13, "total");
    tir_tensor_free(x);
    free_all(5, r);
    tir_module_free(m);
}
END_TEST

START_TEST(test_reduce_nan_int_bf16) {
    tir_module *m = parse("func @f(%x: f32[2, 3], %i: i32[2, 3], %h: bf16[3]) -> (f32[2], f32[2], i32[3], bf16[]) {\n"
                          "  %a = max(%x, axes=[1])\n  %b = min(%x, axes=[1])\n"
                          "  %c = sum(%i, axes=[0])\n  %d = sum(%h)\n"
                          "  return %a, %b, %c, %d\n}\n");
    int64_t d23[2] = {2, 3}, d3 = 3;
    double xv[6] = {1, NAN, 3, -1, -5, 2}, iv[6] = {2147483000, -3, 5, 1000, 4, -6};
    double hv[3] = {256, 1, 1}; /* bf16: 256 + 1 + 1 = 258 is exact in the f64 accumulator */
    tir_tensor *in[3] = {vec(TIR_F32, 2, d23, xv), vec(TIR_I32, 2, d23, iv), vec(TIR_BF16, 1, &d3, hv)},
               *r[4];
    run(m, "f", 3, in, 4, r);
    ck_assert(isnan(tir_tensor_get(r[0], 0)));
    ck_assert(isnan(tir_tensor_get(r[1], 0)));
    ck_assert_double_eq(tir_tensor_get(r[0], 1), 2);
    ck_assert_double_eq(tir_tensor_get(r[1], 1), -5);
    ck_assert_double_eq(tir_tensor_get(r[2], 0), 2147483647); /* saturates */
    ck_assert_double_eq(tir_tensor_get(r[2], 1), 1);
    ck_assert_double_eq(tir_tensor_get(r[2], 2), -1);
    ck_assert_double_eq(tir_tensor_get(r[3], 0), 258);        /* then rounds once: 258 is bf16 */
    free_all(3, in);
    free_all(4, r);
    tir_module_free(m);
}
END_TEST

START_TEST(test_argmax) {
    tir_module *m = parse("func @f(%x: f32[3, 4], %v: f32[5]) -> (i64[3], i64[1, 4], i64[]) {\n"
                          "  %a = argmax(%x, axes=[1])\n  %b = argmax(%x, axes=[0], keepdim=true)\n"
                          "  %c = argmax(%v)\n  return %a, %b, %c\n}\n");
    int64_t d34[2] = {3, 4}, d5 = 5;
    /* row 0: tie between 1 and 3 -> the first; row 1: the first NaN counts as the max */
    double xv[12] = {5, 7, 2, 7, 3, NAN, 9, NAN, -4, -2, 11, -9};
    double vv[5] = {-1, 0.5, 0.25, 0.5, -2};
    tir_tensor *in[2] = {vec(TIR_F32, 2, d34, xv), vec(TIR_F32, 1, &d5, vv)}, *r[3];
    run(m, "f", 2, in, 3, r);
    ck_assert_int_eq(tir_tensor_dtype(r[0]), TIR_I64);
    ck_assert_double_eq(tir_tensor_get(r[0], 0), 1);
    ck_assert_double_eq(tir_tensor_get(r[0], 1), 1);
    ck_assert_double_eq(tir_tensor_get(r[0], 2), 2);
    double wb[4] = {0, 1, 2, 1}; /* columns: 5 > 3; NaN; 11 > 9; NaN */
    for (int j = 0; j < 4; j++) ck_assert_double_eq(tir_tensor_get(r[1], j), wb[j]);
    ck_assert_double_eq(tir_tensor_get(r[2], 0), 1);
    free_all(2, in);
    free_all(3, r);
    tir_module_free(m);
}
END_TEST

/* ---------------------------------------------------------------- movement */

START_TEST(test_reshape_transpose_broadcast) {
    tir_module *m = parse(
        "func @f(%x: f32[2, 3, 4], %b: f32[3, 1]) -> (f32[4, 6], f32[4, 2, 3], f32[2, 3, 5]) {\n"
        "  %r = reshape(%x, shape=[4, 6])\n"
        "  %t = transpose(%x, perm=[2, 0, 1])\n"
        "  %c = broadcast(%b, shape=[2, 3, 5])\n"
        "  return %r, %t, %c\n}\n");
    int64_t dx[3] = {2, 3, 4}, db[2] = {3, 1};
    seed(500);
    tir_tensor *in[2] = {rand_tensor(TIR_F32, 3, dx, 0.5, 2, true), rand_tensor(TIR_F32, 2, db, 0.5, 2, true)},
               *r[3];
    run(m, "f", 2, in, 3, r);
    for (int i = 0; i < 24; i++) ck_assert_double_eq(tir_tensor_get(r[0], i), tir_tensor_get(in[0], i));
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                ck_assert_double_eq(tir_tensor_get(r[1], (k * 2 + i) * 3 + j),
                                    tir_tensor_get(in[0], (i * 3 + j) * 4 + k));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 5; k++)
                ck_assert_double_eq(tir_tensor_get(r[2], (i * 3 + j) * 5 + k), tir_tensor_get(in[1], j));
    free_all(2, in);
    free_all(3, r);
    tir_module_free(m);
}
END_TEST

START_TEST(test_slice) {
    tir_module *m = parse(
        "func @f(%x: f32[3, 7]) -> (f32[3, 3], f32[3, 2], f32[2, 7], f32[3, 7]) {\n"
        "  %a = slice(%x, axis=1, start=1, end=7, step=2)\n"  /* 1, 3, 5 */
        "  %b = slice(%x, axis=-1, start=-3, end=-1)\n"       /* 4, 5 */
        "  %c = slice(%x, axis=0, start=1)\n"                 /* rows 1, 2 */
        "  %d = slice(%x, axis=1, start=-100, end=100)\n"     /* clamped: everything */
        "  return %a, %b, %c, %d\n}\n");
    int64_t dx[2] = {3, 7};
    seed(600);
    tir_tensor *x = rand_tensor(TIR_F32, 2, dx, 0.5, 2, true), *r[4];
    run(m, "f", 1, &x, 4, r);
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++)
            ck_assert_double_eq(tir_tensor_get(r[0], i * 3 + j), tir_tensor_get(x, i * 7 + 1 + 2 * j));
        for (int j = 0; j < 2; j++)
            ck_assert_double_eq(tir_tensor_get(r[1], i * 2 + j), tir_tensor_get(x, i * 7 + 4 + j));
        for (int j = 0; j < 7; j++)
            ck_assert_double_eq(tir_tensor_get(r[3], i * 7 + j), tir_tensor_get(x, i * 7 + j));
    }
    for (int i = 0; i < 14; i++) ck_assert_double_eq(tir_tensor_get(r[2], i), tir_tensor_get(x, 7 + i));
    tir_tensor_free(x);
    free_all(4, r);
    tir_module_free(m);
}
END_TEST

START_TEST(test_concat_split) {
    tir_module *m = parse(
        "func @f(%a: f32[2, 1, 3], %b: f32[2, 4, 3], %c: f32[2, 2, 3]) -> (f32[2, 7, 3], f32[2, 1, 3], f32[2, 2, 3], f32[2, 4, 3]) {\n"
        "  %y = concat(%a, %b, %c, axis=1)\n"
        "  %p, %q, %r = split(%y, axis=-2, sizes=[1, 2, 4])\n"
        "  return %y, %p, %q, %r\n}\n");
    int64_t da[3] = {2, 1, 3}, db[3] = {2, 4, 3}, dc[3] = {2, 2, 3};
    seed(700);
    tir_tensor *in[3] = {rand_tensor(TIR_F32, 3, da, 0.5, 2, true), rand_tensor(TIR_F32, 3, db, 0.5, 2, true),
                         rand_tensor(TIR_F32, 3, dc, 0.5, 2, true)},
               *r[4];
    run(m, "f", 3, in, 4, r);
    /* independent concat: row j of the 7 comes from a (j<1), b (j<5) or c */
    double cat[2][7][3];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 7; j++)
            for (int k = 0; k < 3; k++) {
                const tir_tensor *src = j < 1 ? in[0] : j < 5 ? in[1] : in[2];
                int jj = j < 1 ? j : j < 5 ? j - 1 : j - 5, nj = j < 1 ? 1 : j < 5 ? 4 : 2;
                cat[i][j][k] = tir_tensor_get(src, (i * nj + jj) * 3 + k);
                ck_assert_double_eq(tir_tensor_get(r[0], (i * 7 + j) * 3 + k), cat[i][j][k]);
            }
    int starts[3] = {0, 1, 3}, sizes[3] = {1, 2, 4};
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < sizes[s]; j++)
                for (int k = 0; k < 3; k++)
                    ck_assert_double_eq(tir_tensor_get(r[1 + s], (i * sizes[s] + j) * 3 + k),
                                        cat[i][starts[s] + j][k]);
    free_all(3, in);
    free_all(4, r);
    tir_module_free(m);
}
END_TEST

START_TEST(test_split_many) {
    /* more results than the interpreter keeps on its stack */
    tir_module *m = parse("func @f(%x: f32[2, 10]) -> (f32[2, 1], f32[2, 2], f32[2, 3], f32[2, 1], f32[2, 3]) {\n"
                          "  %a, %b, %c, %d, %e = split(%x, axis=1, sizes=[1, 2, 3, 1, 3])\n"
                          "  return %a, %b, %c, %d, %e\n}\n");
    int64_t dx[2] = {2, 10};
    seed(750);
    tir_tensor *x = rand_tensor(TIR_F32, 2, dx, 0.5, 2, true), *r[5];
    run(m, "f", 1, &x, 5, r);
    int sizes[5] = {1, 2, 3, 1, 3}, at = 0;
    for (int p = 0; p < 5; p++) {
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < sizes[p]; j++)
                ck_assert_double_eq(tir_tensor_get(r[p], i * sizes[p] + j), tir_tensor_get(x, i * 10 + at + j));
        at += sizes[p];
    }
    tir_tensor_free(x);
    free_all(5, r);
    tir_module_free(m);
}
END_TEST

/* ---------------------------------------------------------------- indexing, creation */

START_TEST(test_take) {
    tir_module *m = parse("func @f(%t: f32[5, 3], %i: i32[2, 3], %u: f32[2, 5], %j: i64[4]) -> (f32[2, 3, 3], f32[2, 4]) {\n"
                          "  %a = take(%t, %i)\n  %b = take(%u, %j, axis=1)\n  return %a, %b\n}\n");
    int64_t dt[2] = {5, 3}, di[2] = {2, 3}, du[2] = {2, 5}, dj = 4;
    double iv[6] = {4, 0, 2, 2, 3, 4}, jv[4] = {3, 3, 0, 1};
    seed(800);
    tir_tensor *in[4] = {rand_tensor(TIR_F32, 2, dt, 0.5, 2, true), vec(TIR_I32, 2, di, iv),
                         rand_tensor(TIR_F32, 2, du, 0.5, 2, true), vec(TIR_I64, 1, &dj, jv)},
               *r[2];
    run(m, "f", 4, in, 2, r);
    for (int p = 0; p < 6; p++)
        for (int k = 0; k < 3; k++)
            ck_assert_double_eq(tir_tensor_get(r[0], p * 3 + k), tir_tensor_get(in[0], (int)iv[p] * 3 + k));
    for (int i = 0; i < 2; i++)
        for (int q = 0; q < 4; q++)
            ck_assert_double_eq(tir_tensor_get(r[1], i * 4 + q), tir_tensor_get(in[2], i * 5 + (int)jv[q]));
    free_all(4, in);
    free_all(2, r);
    tir_module_free(m);
}
END_TEST

START_TEST(test_take_out_of_range) {
    tir_module *m = parse("func @f(%t: f32[5, 3], %i: i32[3]) -> f32[3, 3] {\n"
                          "  %a = take(%t, %i)\n  return %a\n}\n");
    int64_t dt[2] = {5, 3}, di = 3;
    double bad[2][3] = {{1, 5, 0}, {1, -1, 0}};
    for (int c = 0; c < 2; c++) {
        tir_tensor *in[2] = {rand_tensor(TIR_F32, 2, dt, 0.5, 2, true), vec(TIR_I32, 1, &di, bad[c])};
        tir_diag d;
        ck_assert_int_eq(run_err(m, "f", 2, in, 1, &d), TIR_ERR_INVALID);
        ck_assert_int_eq(d.line, 2); /* the take's own line */
        ck_assert_ptr_nonnull(strstr(d.msg, "take"));
        ck_assert_ptr_nonnull(strstr(d.msg, "out of range"));
        free_all(2, in);
    }
    tir_module_free(m);
}
END_TEST

START_TEST(test_error_inside_call) {
    /* an index error two frames down (a call, after a composite) unwinds with every buffer freed
     * and points at the take's own line */
    tir_module *m = parse("func @inner(%t: f32[V, 3], %i: i32[K]) -> f32[K, 3] {\n"
                          "  %s = softmax(%t)\n"
                          "  %a = take(%s, %i)\n"
                          "  return %a\n}\n"
                          "func @outer(%t: f32[5, 3], %i: i32[3]) -> f32[3, 3] {\n"
                          "  %u = mul(%t, %t)\n  %b = call @inner(%u, %i)\n  %c = add(%b, %b)\n"
                          "  return %c\n}\n");
    int64_t dt[2] = {5, 3}, di = 3;
    double bad[3] = {0, 2, 9}, good[3] = {4, 0, 2};
    seed(850);
    tir_tensor *in[2] = {rand_tensor(TIR_F32, 2, dt, 0.5, 2, true), vec(TIR_I32, 1, &di, bad)};
    tir_diag d;
    ck_assert_int_eq(run_err(m, "outer", 2, in, 1, &d), TIR_ERR_INVALID);
    ck_assert_int_eq(d.line, 3);
    ck_assert_ptr_nonnull(strstr(d.msg, "index 9"));
    tir_tensor_free(in[1]);
    in[1] = vec(TIR_I32, 1, &di, good);
    tir_tensor *y;
    run(m, "outer", 2, in, 1, &y);
    for (int r = 0; r < 3; r++) {
        int row = (int)good[r];
        double e[3], se = 0;
        for (int k = 0; k < 3; k++) {
            double t = tir_tensor_get(in[0], row * 3 + k);
            se += e[k] = exp((double)(float)(t * t));
        }
        for (int k = 0; k < 3; k++)
            EXPECT_NEAR(tir_tensor_get(y, r * 3 + k), 2 * e[k] / se, 1e-6, "outer %d %d", r, k);
    }
    tir_tensor_free(y);
    free_all(2, in);
    tir_module_free(m);
}
END_TEST

START_TEST(test_scatter_add) {
    /* repeated indices accumulate; axis=1 too */
    tir_module *m = parse("func @f(%t: f32[4, 2], %i: i32[5], %s: f32[5, 2], %u: f32[2, 3], %j: i32[2], %v: f32[2, 2]) -> (f32[4, 2], f32[2, 3]) {\n"
                          "  %a = scatter_add(%t, %i, %s)\n  %b = scatter_add(%u, %j, %v, axis=1)\n"
                          "  return %a, %b\n}\n");
    int64_t dt[2] = {4, 2}, di = 5, ds[2] = {5, 2}, du[2] = {2, 3}, dj = 2, dv[2] = {2, 2};
    double iv[5] = {3, 0, 3, 1, 3}, jv[2] = {2, 2};
    seed(900);
    tir_tensor *in[6] = {rand_tensor(TIR_F32, 2, dt, 0.5, 2, true), vec(TIR_I32, 1, &di, iv),
                         rand_tensor(TIR_F32, 2, ds, 0.5, 2, true), rand_tensor(TIR_F32, 2, du, 0.5, 2, true),
                         vec(TIR_I32, 1, &dj, jv), rand_tensor(TIR_F32, 2, dv, 0.5, 2, true)},
               *r[2];
    run(m, "f", 6, in, 2, r);
    double want[4][2];
    for (int v = 0; v < 4; v++)
        for (int k = 0; k < 2; k++) want[v][k] = tir_tensor_get(in[0], v * 2 + k);
    for (int p = 0; p < 5; p++)
        for (int k = 0; k < 2; k++) want[(int)iv[p]][k] += tir_tensor_get(in[2], p * 2 + k);
    for (int v = 0; v < 4; v++)
        for (int k = 0; k < 2; k++)
            EXPECT_NEAR(tir_tensor_get(r[0], v * 2 + k), (float)want[v][k], 1e-7, "scatter %d %d", v, k);
    for (int i = 0; i < 2; i++)
        for (int c = 0; c < 3; c++) {
            double w = tir_tensor_get(in[3], i * 3 + c);
            if (c == 2) w += tir_tensor_get(in[5], i * 2 + 0) + tir_tensor_get(in[5], i * 2 + 1);
            EXPECT_NEAR(tir_tensor_get(r[1], i * 3 + c), (float)w, 1e-7, "scatter axis1 %d %d", i, c);
        }
    free_all(6, in);
    free_all(2, r);
    tir_module_free(m);
}
END_TEST

START_TEST(test_scatter_add_out_of_range) {
    tir_module *m = parse("func @f(%t: f32[4, 2], %i: i32[2], %s: f32[2, 2]) -> f32[4, 2] {\n"
                          "  %a = scatter_add(%t, %i, %s)\n  return %a\n}\n");
    int64_t dt[2] = {4, 2}, di = 2, ds[2] = {2, 2};
    double iv[2] = {0, 4};
    tir_tensor *in[3] = {rand_tensor(TIR_F32, 2, dt, 0.5, 2, true), vec(TIR_I32, 1, &di, iv),
                         rand_tensor(TIR_F32, 2, ds, 0.5, 2, true)};
    tir_diag d;
    ck_assert_int_eq(run_err(m, "f", 3, in, 1, &d), TIR_ERR_INVALID);
    ck_assert_int_eq(d.line, 2);
    free_all(3, in);
    tir_module_free(m);
}
END_TEST

START_TEST(test_iota_full) {
    tir_module *m = parse("func @f() -> (i32[3, 4], i64[3, 4], f32[2, 3], bf16[2], i8[]) {\n"
                          "  %a = iota(shape=[3, 4], axis=1, dtype=i32)\n"
                          "  %b = iota(shape=[3, 4], axis=0, dtype=i64)\n"
                          "  %c = full(2.5, shape=[2, 3], dtype=f32)\n"
                          "  %d = full(3.14159, shape=[2], dtype=bf16)\n"
                          "  %e = full(-1000, shape=[], dtype=i8)\n"
                          "  return %a, %b, %c, %d, %e\n}\n");
    tir_tensor *r[5];
    run(m, "f", 0, NULL, 5, r);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            ck_assert_double_eq(tir_tensor_get(r[0], i * 4 + j), j);
            ck_assert_double_eq(tir_tensor_get(r[1], i * 4 + j), i);
        }
    for (int i = 0; i < 6; i++) ck_assert_double_eq(tir_tensor_get(r[2], i), 2.5);
    ck_assert_double_eq(tir_tensor_get(r[3], 1), 3.140625); /* bf16 of pi-ish */
    ck_assert_double_eq(tir_tensor_get(r[4], 0), -128);
    free_all(5, r);
    tir_module_free(m);
}
END_TEST

/* ---------------------------------------------------------------- matmul */

/* naive reference: C[m][n] = sum_k A(m,k) B(k,n) with explicit strides */
START_TEST(test_matmul) {
    tir_module *m = parse(
        "func @f(%a: f64[2, 3, 4], %b: f64[4, 5], %c: f64[4, 3], %d: f64[2, 1, 3, 4], %e: f64[5, 6, 4]) ->"
        " (f64[2, 3, 5], f64[3, 3], f64[2, 5, 3, 6]) {\n"
        "  %x = matmul(%a, %b)\n"
        "  %y = matmul(%c, %c, transpose_a=true)\n"
        "  %z = matmul(%d, %e, transpose_b=true)\n"
        "  return %x, %y, %z\n}\n");
    int64_t da[3] = {2, 3, 4}, db[2] = {4, 5}, dc[2] = {4, 3}, dd[4] = {2, 1, 3, 4}, de[3] = {5, 6, 4};
    seed(1000);
    tir_tensor *in[5] = {rand_tensor(TIR_F64, 3, da, 0.1, 2, true), rand_tensor(TIR_F64, 2, db, 0.1, 2, true),
                         rand_tensor(TIR_F64, 2, dc, 0.1, 2, true), rand_tensor(TIR_F64, 4, dd, 0.1, 2, true),
                         rand_tensor(TIR_F64, 3, de, 0.1, 2, true)},
               *r[3];
    run(m, "f", 5, in, 3, r);
    for (int bb = 0; bb < 2; bb++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 5; j++) {
                double s = 0;
                for (int k = 0; k < 4; k++)
                    s += tir_tensor_get(in[0], (bb * 3 + i) * 4 + k) * tir_tensor_get(in[1], k * 5 + j);
                EXPECT_NEAR(tir_tensor_get(r[0], (bb * 3 + i) * 5 + j), s, 1e-14, "x");
            }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            double s = 0;
            for (int k = 0; k < 4; k++) s += tir_tensor_get(in[2], k * 3 + i) * tir_tensor_get(in[2], k * 3 + j);
            EXPECT_NEAR(tir_tensor_get(r[1], i * 3 + j), s, 1e-14, "y");
        }
    int64_t dz[4] = {2, 5, 3, 6};
    check_shape(r[2], TIR_F64, 4, dz);
    for (int p = 0; p < 2; p++)
        for (int q = 0; q < 5; q++)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 6; j++) {
                    double s = 0;
                    for (int k = 0; k < 4; k++)
                        s += tir_tensor_get(in[3], (p * 3 + i) * 4 + k) * tir_tensor_get(in[4], (q * 6 + j) * 4 + k);
                    EXPECT_NEAR(tir_tensor_get(r[2], ((p * 5 + q) * 3 + i) * 6 + j), s, 1e-14, "z");
                }
    free_all(5, in);
    free_all(3, r);
    tir_module_free(m);
}
END_TEST

START_TEST(test_matmul_bf16_rounds_once) {
    /* bf16 matmul accumulates wide and rounds the result once: 1 + 2^-9 * 4 = 1 + 2^-7 exactly,
     * which a bf16 running sum would have lost at every step */
    tir_module *m = parse("func @f(%a: bf16[1, 5], %b: bf16[5, 1]) -> bf16[1, 1] {\n"
                          "  %y = matmul(%a, %b)\n  return %y\n}\n");
    int64_t da[2] = {1, 5}, db[2] = {5, 1};
    double av[5] = {1, 0.001953125, 0.001953125, 0.001953125, 0.001953125}, bv[5] = {1, 1, 1, 1, 1};
    tir_tensor *in[2] = {vec(TIR_BF16, 2, da, av), vec(TIR_BF16, 2, db, bv)}, *y;
    run(m, "f", 2, in, 1, &y);
    ck_assert_double_eq(tir_tensor_get(y, 0), 1.0078125);
    free_all(2, in);
    tir_tensor_free(y);
    tir_module_free(m);
}
END_TEST

/* ---------------------------------------------------------------- symbols, calls, errors */

START_TEST(test_symbols_two_sizes) {
    /* one program, run at N=2 and N=5; %w's B*T waits until %z, a later argument, binds B and T */
    tir_module *m = parse("func @f(%x: f32[N, 3], %y: f32[N], %w: f32[B*T], %z: f32[B, T]) -> (f32[N, 3], f32[B*T]) {\n"
                          "  %r = mul(%x, reshape(%y, shape=[N, 1]))\n"
                          "  %s = add(reshape(%z, shape=[B*T]), %w)\n"
                          "  return %r, %s\n}\n");
    for (int64_t n = 2; n <= 5; n += 3) {
        int64_t dx[2] = {n, 3}, dz[2] = {n, 2}, dw = 2 * n;
        seed(1100 + (uint64_t)n);
        tir_tensor *in[4] = {rand_tensor(TIR_F32, 2, dx, 0.5, 2, true), rand_tensor(TIR_F32, 1, &n, 0.5, 2, true),
                             rand_tensor(TIR_F32, 1, &dw, 0.5, 2, true), rand_tensor(TIR_F32, 2, dz, 0.5, 2, true)},
                   *r[2];
        run(m, "f", 4, in, 2, r);
        check_shape(r[0], TIR_F32, 2, dx);
        check_shape(r[1], TIR_F32, 1, &dw);
        for (int64_t i = 0; i < n; i++)
            for (int j = 0; j < 3; j++)
                ck_assert_double_eq(tir_tensor_get(r[0], i * 3 + j),
                                    (float)(tir_tensor_get(in[0], i * 3 + j) * tir_tensor_get(in[1], i)));
        for (int64_t i = 0; i < dw; i++)
            ck_assert_double_eq(tir_tensor_get(r[1], i),
                                (float)(tir_tensor_get(in[3], i) + tir_tensor_get(in[2], i)));
        free_all(4, in);
        free_all(2, r);
    }
    tir_module_free(m);
}
END_TEST

START_TEST(test_call) {
    /* the callee's own symbol M binds from the caller's N at each call */
    tir_module *m = parse("func @sq(%x: f32[M]) -> f32[M] {\n  %y = mul(%x, %x)\n  return %y\n}\n"
                          "func @f(%a: f32[N], %b: f32[3]) -> (f32[N], f32[3]) {\n"
                          "  %p = call @sq(%a)\n  %q = call @sq(%b)\n  %r = add(%p, 1.0)\n"
                          "  return %r, %q\n}\n");
    int64_t n = 7, three = 3;
    seed(1200);
    tir_tensor *in[2] = {rand_tensor(TIR_F32, 1, &n, 0.5, 2, true), rand_tensor(TIR_F32, 1, &three, 0.5, 2, true)},
               *r[2];
    run(m, "f", 2, in, 2, r);
    for (int i = 0; i < 7; i++) {
        double a = tir_tensor_get(in[0], i);
        ck_assert_double_eq(tir_tensor_get(r[0], i), (float)((double)(float)(a * a) + 1.0));
    }
    for (int i = 0; i < 3; i++) {
        double b = tir_tensor_get(in[1], i);
        ck_assert_double_eq(tir_tensor_get(r[1], i), (float)(b * b));
    }
    free_all(2, in);
    free_all(2, r);
    tir_module_free(m);
}
END_TEST

START_TEST(test_argument_errors) {
    tir_module *m = parse("func @f(%x: f32[N, 64], %y: f32[N]) -> f32[N, 64] {\n"
                          "  %r = add(%x, reshape(%y, shape=[N, 1]))\n  return %r\n}\n");
    int64_t good[2] = {3, 64}, bad[2] = {3, 65}, n3 = 3, n4 = 4;
    tir_tensor *x = rand_tensor(TIR_F32, 2, good, 0.5, 2, true);
    tir_tensor *xb = rand_tensor(TIR_F32, 2, bad, 0.5, 2, true);
    tir_tensor *y3 = rand_tensor(TIR_F32, 1, &n3, 0.5, 2, true);
    tir_tensor *y4 = rand_tensor(TIR_F32, 1, &n4, 0.5, 2, true);
    tir_tensor *y3d = rand_tensor(TIR_F64, 1, &n3, 0.5, 2, true);
    tir_diag d;

    tir_tensor *a1[2] = {x, y3};
    ck_assert_int_eq(run_err(m, "f", 1, a1, 1, &d), TIR_ERR_INVALID); /* count */
    ck_assert_int_eq(run_err(m, "nope", 2, a1, 1, &d), TIR_ERR_INVALID);
    ck_assert_int_eq(run_err(m, "f", 2, a1, 2, &d), TIR_ERR_INVALID); /* result count */

    tir_tensor *a2[2] = {xb, y3};
    ck_assert_int_eq(run_err(m, "f", 2, a2, 1, &d), TIR_ERR_INVALID);
    ck_assert_msg(strstr(d.msg, "argument %x: expected f32[N, 64], got f32[3, 65]"), "%s", d.msg);

    tir_tensor *a3[2] = {x, y4}; /* N = 3 from %x, 4 from %y */
    ck_assert_int_eq(run_err(m, "f", 2, a3, 1, &d), TIR_ERR_INVALID);
    ck_assert_msg(strstr(d.msg, "argument %y: expected f32[N], got f32[4]"), "%s", d.msg);

    tir_tensor *a4[2] = {x, y3d}; /* dtype */
    ck_assert_int_eq(run_err(m, "f", 2, a4, 1, &d), TIR_ERR_INVALID);
    ck_assert_msg(strstr(d.msg, "argument %y: expected f32[N], got f64[3]"), "%s", d.msg);

    tir_tensor *a5[2] = {y3, y3}; /* rank */
    ck_assert_int_eq(run_err(m, "f", 2, a5, 1, &d), TIR_ERR_INVALID);
    ck_assert_msg(strstr(d.msg, "argument %x"), "%s", d.msg);

    tir_tensor *a6[2] = {x, NULL};
    ck_assert_int_eq(run_err(m, "f", 2, a6, 1, &d), TIR_ERR_INVALID);

    /* and a good run afterwards still works */
    tir_tensor *r;
    run(m, "f", 2, a1, 1, &r);
    tir_tensor_free(r);
    tir_tensor_free(x);
    tir_tensor_free(xb);
    tir_tensor_free(y3);
    tir_tensor_free(y4);
    tir_tensor_free(y3d);
    tir_module_free(m);
}
END_TEST

START_TEST(test_bind_multiple) {
    /* H binds from [H*4] when the size divides; 10 does not */
    tir_module *m = parse("func @f(%x: f32[H*4]) -> f32[H, 4] {\n"
                          "  %r = reshape(%x, shape=[H, 4])\n  return %r\n}\n");
    int64_t n12 = 12, n10 = 10;
    tir_tensor *x = rand_tensor(TIR_F32, 1, &n12, 0.5, 2, true), *xb = rand_tensor(TIR_F32, 1, &n10, 0.5, 2, true);
    tir_tensor *r;
    run(m, "f", 1, &x, 1, &r);
    int64_t want[2] = {3, 4};
    check_shape(r, TIR_F32, 2, want);
    for (int i = 0; i < 12; i++) ck_assert_double_eq(tir_tensor_get(r, i), tir_tensor_get(x, i));
    tir_diag d;
    ck_assert_int_eq(run_err(m, "f", 1, &xb, 1, &d), TIR_ERR_INVALID);
    ck_assert_msg(strstr(d.msg, "argument %x"), "%s", d.msg);
    tir_tensor_free(r);
    tir_tensor_free(x);
    tir_tensor_free(xb);
    tir_module_free(m);
}
END_TEST

START_TEST(test_grad_needs_pass) {
    tir_module *m = parse("func @loss(%w: f32[3]) -> f32[] {\n  %l = sum(mul(%w, %w))\n  return %l\n}\n"
                          "func @g = value_and_grad(@loss, wrt=[%w])\n");
    int64_t n = 3;
    tir_tensor *w = rand_tensor(TIR_F32, 1, &n, 0.5, 2, true);
    tir_diag d;
    ck_assert_int_eq(run_err(m, "g", 1, &w, 2, &d), TIR_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(d.msg, "grad pass"));
    tir_tensor *l;
    run(m, "loss", 1, &w, 1, &l);
    double s = 0;
    for (int i = 0; i < 3; i++) s += (double)(float)(tir_tensor_get(w, i) * tir_tensor_get(w, i));
    EXPECT_NEAR(tir_tensor_get(l, 0), (float)s, 1e-7, "loss");
    tir_tensor_free(l);
    tir_tensor_free(w);
    tir_module_free(m);
}
END_TEST

START_TEST(test_bind_nonlinear_first) {
    /* docs/tir.md §8: f32[N*N] before f32[N] binds (N from %b, then N*N checked), at the top
     * level and in a call; a size that does not fit is still refused */
    tir_module *m = parse("func @f(%a: f32[N*N], %b: f32[N]) -> f32[N*N] {\n"
                          "  %y = add(%a, 1.0)\n  return %y\n}\n"
                          "func @g(%x: f32[M], %s: f32[M*M]) -> f32[M*M] {\n"
                          "  %y = call @f(%s, %x)\n  return %y\n}\n");
    int64_t n16 = 16, n4 = 4, n5 = 5;
    tir_tensor *args[2] = {tensor(TIR_F32, 1, &n16), tensor(TIR_F32, 1, &n4)}, *res[1];
    run(m, "f", 2, args, 1, res);
    check_shape(res[0], TIR_F32, 1, &n16);
    ck_assert(tir_tensor_get(res[0], 3) == 1.0);
    tir_tensor_free(res[0]);
    tir_tensor *gargs[2] = {args[1], args[0]};
    run(m, "g", 2, gargs, 1, res);
    check_shape(res[0], TIR_F32, 1, &n16);
    tir_tensor_free(res[0]);
    tir_tensor *bad[2] = {args[0], tensor(TIR_F32, 1, &n5)};
    tir_diag d;
    ck_assert_int_eq(run_err(m, "f", 2, bad, 1, &d), TIR_ERR_INVALID);
    ck_assert_msg(strstr(d.msg, "%a") && strstr(d.msg, "25"), "message: %s", d.msg);
    tir_tensor_free(bad[1]);
    free_all(2, args);
    tir_module_free(m);
}
END_TEST

START_TEST(test_attention_zero_heads) {
    /* zero query and key/value heads: a valid empty attention, as shape inference says */
    tir_module *m = parse("func @f(%q: f32[1, H, 2, 4], %k: f32[1, K, 3, 4], %v: f32[1, K, 3, 4])"
                          " -> f32[1, H, 2, 4] {\n"
                          "  %o = attention(%q, %k, %v, causal=true)\n  return %o\n}\n");
    int64_t qd[4] = {1, 0, 2, 4}, kd[4] = {1, 0, 3, 4};
    tir_tensor *args[3] = {tensor(TIR_F32, 4, qd), tensor(TIR_F32, 4, kd), tensor(TIR_F32, 4, kd)};
    tir_tensor *res[1];
    run(m, "f", 3, args, 1, res);
    check_shape(res[0], TIR_F32, 4, qd);
    tir_tensor_free(res[0]);
    free_all(3, args);
    /* query heads without key/value heads are still refused */
    int64_t q2[4] = {1, 2, 2, 4};
    tir_tensor *bad[3] = {tensor(TIR_F32, 4, q2), tensor(TIR_F32, 4, kd), tensor(TIR_F32, 4, kd)};
    tir_diag d;
    ck_assert_int_eq(run_err(m, "f", 3, bad, 1, &d), TIR_ERR_INVALID);
    ck_assert_msg(strstr(d.msg, "heads"), "message: %s", d.msg);
    free_all(3, bad);
    tir_module_free(m);
}
END_TEST

START_TEST(test_too_large) {
    /* 2^40 * 2^30 elements overflows int64: refused as OOM, not attempted */
    tir_module *m = parse("func @f(%x: f32[]) -> f32[1099511627776, 1073741824] {\n"
                          "  %y = broadcast(%x, shape=[1099511627776, 1073741824])\n  return %y\n}\n");
    tir_tensor *x = tensor(TIR_F32, 0, NULL);
    tir_tensor_set(x, 0, 1.5);
    tir_diag d;
    ck_assert_int_eq(run_err(m, "f", 1, &x, 1, &d), TIR_ERR_OOM);
    tir_module_free(m);
    /* and one that fits int64 but not memory (2^45 bytes) */
    m = parse("func @f(%x: f32[]) -> f32[4194304, 1048576] {\n"
              "  %y = broadcast(%x, shape=[4194304, 1048576])\n  return %y\n}\n");
    ck_assert_int_eq(run_err(m, "f", 1, &x, 1, &d), TIR_ERR_OOM);
    tir_tensor_free(x);
    tir_module_free(m);
}
END_TEST


START_TEST(test_mlp_example) {
    /* examples/mlp.tir at B=8: an 8x2048 by 4096x2048 linear, checked on two rows */
    const char *dir = getenv("TIR_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/examples/mlp.tir", dir ? dir : ".");
    char *src = tu_read_file(path);
    ck_assert_msg(src != NULL, "cannot read %s", path);
    tir_module *m = parse(src);
    free(src);
    int64_t dx[2] = {8, 2048}, dw1[2] = {4096, 2048}, db1 = 4096, dw2[2] = {64, 4096}, db2 = 64;
    seed(1300);
    tir_tensor *in[5] = {rand_tensor(TIR_F32, 2, dx, 0.01, 1, true), rand_tensor(TIR_F32, 2, dw1, 0.001, 0.03, true),
                         rand_tensor(TIR_F32, 1, &db1, 0.01, 0.1, true), rand_tensor(TIR_F32, 2, dw2, 0.001, 0.03, true),
                         rand_tensor(TIR_F32, 1, &db2, 0.01, 0.1, true)},
               *y;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run(m, "mlp", 5, in, 1, &y);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    fprintf(stderr, "mlp B=8 on the interpreter: %.3f s\n", secs);
    float *x = tir_tensor_data(in[0]), *w1 = tir_tensor_data(in[1]), *b1 = tir_tensor_data(in[2]);
    float *w2 = tir_tensor_data(in[3]), *b2 = tir_tensor_data(in[4]);
    static float h[4096];
    int rows[2] = {0, 7};
    for (int ri = 0; ri < 2; ri++) {
        int r = rows[ri];
        for (int j = 0; j < 4096; j++) {
            double s = 0;
            for (int k = 0; k < 2048; k++) s += (double)x[r * 2048 + k] * w1[j * 2048 + k];
            s = (float)s + b1[j];
            h[j] = (float)(s > 0 ? s : 0);
        }
        for (int o = 0; o < 64; o++) {
            double s = 0;
            for (int j = 0; j < 4096; j++) s += (double)h[j] * w2[o * 4096 + j];
            EXPECT_NEAR(tir_tensor_get(y, r * 64 + o), (float)((float)s + b2[o]), 1e-6, "mlp row %d col %d", r, o);
        }
    }
    free_all(5, in);
    tir_tensor_free(y);
    tir_module_free(m);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("interp");
    TCase *tc = tcase_create("ops");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_unary, 0, NUNARY);
    tcase_add_test(tc, test_not_and_or);
    tcase_add_loop_test(tc, test_binary, 0, NBINARY);
    tcase_add_test(tc, test_maximum_nan_and_literal);
    tcase_add_test(tc, test_int_division);
    tcase_add_test(tc, test_int_saturation);
    tcase_add_test(tc, test_bf16_rounds_per_op);
    tcase_add_test(tc, test_where);
    tcase_add_test(tc, test_cast);
    tcase_add_test(tc, test_reductions);
    tcase_add_test(tc, test_reduce_nan_int_bf16);
    tcase_add_test(tc, test_argmax);
    tcase_add_test(tc, test_reshape_transpose_broadcast);
    tcase_add_test(tc, test_slice);
    tcase_add_test(tc, test_concat_split);
    tcase_add_test(tc, test_split_many);
    tcase_add_test(tc, test_take);
    tcase_add_test(tc, test_take_out_of_range);
    tcase_add_test(tc, test_error_inside_call);
    tcase_add_test(tc, test_scatter_add);
    tcase_add_test(tc, test_scatter_add_out_of_range);
    tcase_add_test(tc, test_iota_full);
    tcase_add_test(tc, test_matmul);
    tcase_add_test(tc, test_matmul_bf16_rounds_once);
    tcase_add_test(tc, test_symbols_two_sizes);
    tcase_add_test(tc, test_call);
    tcase_add_test(tc, test_argument_errors);
    tcase_add_test(tc, test_bind_multiple);
    tcase_add_test(tc, test_grad_needs_pass);
    tcase_add_test(tc, test_too_large);
    tcase_add_test(tc, test_bind_nonlinear_first);
    tcase_add_test(tc, test_attention_zero_heads);
    tcase_add_test(tc, test_mlp_example);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
