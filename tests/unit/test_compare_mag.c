/* test_compare_mag.c: the cancellation-aware comparison (compiler/compare_mag.c). A sum that
 * cancels, summed the way a GPU kernel sums it (f32, per-thread partials, then the partials),
 * fails DESIGN §6's ‖out − ref‖/‖ref‖ at its tolerance and passes when the error is measured
 * against the magnitude program's scale; results that are genuinely wrong (a term dropped, an
 * element 1% off, a non-cancelling sum 1% off) still fail it. The magnitude program tracks only
 * reductions its results are linear in (exp(Σx), (Σx)·(Σy) stay strict), and computes Σ|t| for
 * sums, |A|·|B| for matmuls, M_a + M_b for a difference. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare_mag.h"
#include "compile.h"
#include "testutil.h"

static tir_context *ctx;
static void setup(void) { ctx = tir_context_create(); }
static void teardown(void) { tir_context_destroy(ctx); }

static tir_tensor *tensor1(tir_dtype dt, int64_t n) {
    tir_tensor *t = tir_tensor_new(dt, 1, &n);
    ck_assert_ptr_nonnull(t);
    return t;
}

static tir_tensor *copy(const tir_tensor *x) {
    int64_t dims[TIR_MAX_RANK];
    for (int i = 0; i < tir_tensor_rank(x); i++) dims[i] = tir_tensor_dim(x, i);
    tir_tensor *t = tir_tensor_new(tir_tensor_dtype(x), tir_tensor_rank(x), dims);
    ck_assert_ptr_nonnull(t);
    memcpy(tir_tensor_data(t), tir_tensor_data((tir_tensor *)x), tir_tensor_nbytes(x));
    return t;
}

/* ---------------------------------------------------------------- a cancelling dot product */

enum { N = 4096, THREADS = 256 };
static const char *dot_src = "func @f(%x: f32[4096], %y: f32[4096]) -> (f32[], f32[4096]) {\n"
                             "  %p = mul(%x, %y)\n  %l = sum(%p)\n  return %l, %p\n}\n";

typedef struct dot_case {
    tir_module *m;
    tir_tensor *args[2], *ref[2], *mag[2];
    float p[N]; /* the f32 products, as a kernel computes them */
} dot_case;

/* x, y in [-1, 1] arranged so that the products cancel to about 1e-4 of a term (pairs p, -p,
 * one pair off by a little), shuffled: Σp is tiny, Σ|p| about 1000 */
static void dot_setup(dot_case *c) {
    uint64_t rng = 0x5DEECE66Dull;
    static float x[N], y[N];
    for (int i = 0; i < N / 2; i++) {
        x[i] = (float)(2 * tu_urand(&rng) - 1);
        y[i] = (float)(2 * tu_urand(&rng) - 1);
        x[i + N / 2] = -x[i];
        y[i + N / 2] = y[i];
    }
    x[N / 2] = -x[0] + 0.001f;
    for (int i = N - 1; i > 0; i--) { /* Fisher-Yates */
        int j = (int)(tu_urand(&rng) * (i + 1));
        float tx = x[i], ty = y[i];
        x[i] = x[j], y[i] = y[j];
        x[j] = tx, y[j] = ty;
    }
    c->m = tu_parse(ctx, dot_src);
    c->args[0] = tensor1(TIR_F32, N);
    c->args[1] = tensor1(TIR_F32, N);
    for (int i = 0; i < N; i++) {
        tir_tensor_set(c->args[0], i, x[i]);
        tir_tensor_set(c->args[1], i, y[i]);
        c->p[i] = x[i] * y[i];
    }
    tir_diag d;
    ck_assert_int_eq(tir_interpret(c->m, "f", 2, c->args, 2, c->ref, &d), TIR_OK);
    ck_assert_msg(tir_interpret_magnitudes_of(c->m, "f", 2, c->args, 2, c->mag, &d) == TIR_OK, "%s", d.msg);
}

static void dot_free(dot_case *c) {
    for (int i = 0; i < 2; i++) {
        tir_tensor_free(c->args[i]);
        tir_tensor_free(c->ref[i]);
        tir_tensor_free(c->mag[i]);
    }
    tir_module_free(c->m);
}

/* the sum as a GPU kernel computes it: f32 partials per thread (strided), then the partials in
 * f32; skip >= 0 leaves that term out */
static float gpu_sum(const float *p, int skip) {
    float part[THREADS] = {0};
    for (int i = 0; i < N; i++)
        if (i != skip) part[i % THREADS] += p[i];
    float s = 0;
    for (int t = THREADS - 1; t >= 0; t--) s += part[t];
    return s;
}

START_TEST(test_cancelling_sum_passes) {
    dot_case c;
    dot_setup(&c);
    double tol = tir_tolerance(TIR_F32, true);
    double l = tir_tensor_get(c.ref[0], 0), ml = tir_tensor_get(c.mag[0], 0), sabs = 0;
    for (int i = 0; i < N; i++) sabs += fabs((double)c.p[i]);
    /* the magnitude program's loss is Σ|p| (the interpreter sums in f64, rounds to f32) */
    ck_assert_msg(fabs(ml - sabs) <= 1e-6 * sabs, "mag %.9g, Σ|p| %.9g", ml, sabs);
    ck_assert_msg(fabs(l) < 1e-2 && sabs > 500, "the sum does not cancel: %g of %g", l, sabs);
    /* the elementwise result depends on no reduction: its magnitude is the reference itself */
    for (int i = 0; i < N; i++)
        ck_assert(tir_tensor_get(c.mag[1], i) == tir_tensor_get(c.ref[1], i));
    int64_t z = 0;
    tir_tensor *out = tir_tensor_new(TIR_F32, 0, &z);
    ck_assert_ptr_nonnull(out);
    tir_tensor_set(out, 0, gpu_sum(c.p, -1));
    double strict = tir_rel_error(out, c.ref[0]), mag = tir_rel_error_mag(out, c.ref[0], c.mag[0]);
    printf("cancelling sum: ref %.9g, GPU order %.9g, Σ|p| %.6g: plain rel err %.3g, magnitude-aware %.3g (tol %g)\n", l,
           tir_tensor_get(out, 0), sabs, strict, mag, tol);
    ck_assert_msg(strict > tol, "the GPU-order sum %.9g vs %.9g passes the plain check (%g): the test shows nothing",
                  tir_tensor_get(out, 0), l, strict);
    ck_assert_msg(mag <= tol, "the GPU-order sum fails the magnitude-aware check: %g > %g", mag, tol);
    ck_assert(mag < strict);
    /* one run's check (tir_mag_check): the same two errors, the magnitude program built from the
     * module on first need; an exact result never needs it */
    tir_mag_check mc = {.ctx = ctx, .m = c.m, .func = "f", .nargs = 2, .args = c.args, .nres = 2};
    tir_tensor *outp = copy(c.ref[1]); /* the products: exact in f32 */
    double plain;
    ck_assert(tir_mag_check_error(&mc, 1, outp, c.ref[1], tol, &plain) == 0 && plain == 0);
    ck_assert(!mc.tried);
    ck_assert(tir_mag_check_error(&mc, 0, out, c.ref[0], tol, &plain) == mag);
    ck_assert(plain == strict && mc.tried);
    tir_mag_check_free(&mc);
    ck_assert(tir_rel_error_mag(outp, c.ref[1], c.mag[1]) == 0);
    tir_tensor_free(outp);
    tir_tensor_free(out);
    dot_free(&c);
}
END_TEST

START_TEST(test_wrong_results_fail) {
    dot_case c;
    dot_setup(&c);
    double tol = tir_tolerance(TIR_F32, true);
    int64_t z = 0;
    tir_tensor *out = tir_tensor_new(TIR_F32, 0, &z);
    ck_assert_ptr_nonnull(out);
    /* (1) a term dropped: the largest one */
    int big = 0;
    for (int i = 1; i < N; i++)
        if (fabsf(c.p[i]) > fabsf(c.p[big])) big = i;
    tir_tensor_set(out, 0, gpu_sum(c.p, big));
    double e = tir_rel_error_mag(out, c.ref[0], c.mag[0]);
    printf("largest term dropped: magnitude-aware rel err %.3g (tol %g)\n", e, tol);
    ck_assert_msg(e > tol, "a sum missing its largest term (%g) passes: %g <= %g", (double)c.p[big], e, tol);
    /* (2) one product 1% off: the elementwise result keeps the strict scale */
    tir_tensor *outp = copy(c.ref[1]);
    tir_tensor_set(outp, big, tir_tensor_get(outp, big) * 1.01);
    e = tir_rel_error_mag(outp, c.ref[1], c.mag[1]);
    ck_assert_msg(e > tol, "a product 1%% off passes: %g <= %g", e, tol);
    ck_assert(e == tir_rel_error(outp, c.ref[1]));
    /* (3) NaN where the reference is finite, and the poison, fail whatever the scale */
    tir_tensor_set(out, 0, NAN);
    ck_assert(isnan(tir_rel_error_mag(out, c.ref[0], c.mag[0])));
    tir_tensor_free(outp);
    tir_tensor_free(out);
    dot_free(&c);
}
END_TEST

/* a sum that does not cancel (Σx², the magnitude program changes nothing) 1% off fails */
START_TEST(test_noncancelling_sum_off_fails) {
    tir_module *m = tu_parse(ctx, "func @f(%x: f32[1000]) -> f32[] {\n  return sum(mul(%x, %x))\n}\n");
    uint64_t rng = 7;
    tir_tensor *x = tensor1(TIR_F32, 1000), *ref = NULL, *mag = NULL;
    for (int i = 0; i < 1000; i++) tir_tensor_set(x, i, 2 * tu_urand(&rng) - 1);
    tir_diag d;
    ck_assert_int_eq(tir_interpret(m, "f", 1, &x, 1, &ref, &d), TIR_OK);
    ck_assert_int_eq(tir_interpret_magnitudes_of(m, "f", 1, &x, 1, &mag, &d), TIR_OK);
    ck_assert(tir_tensor_get(mag, 0) == tir_tensor_get(ref, 0));
    tir_tensor *out = copy(ref);
    tir_tensor_set(out, 0, tir_tensor_get(ref, 0) * 1.01);
    double e = tir_rel_error_mag(out, ref, mag);
    ck_assert_msg(fabs(e - 0.01) < 1e-4, "rel err %g", e);
    ck_assert(e > tir_tolerance(TIR_F32, true));
    tir_tensor_free(out);
    tir_tensor_free(x);
    tir_tensor_free(ref);
    tir_tensor_free(mag);
    tir_module_free(m);
}
END_TEST

/* ---------------------------------------------------------------- which reductions are tracked */

static int transformed(const char *src, char **text) {
    tir_module *m = NULL;
    tir_diag d;
    int n = -1;
    ck_assert_msg(tir_magnitude_module(ctx, src, "f", &m, &n, &d) == TIR_OK, "%s", d.msg);
    if (text) *text = tir_module_print(m);
    tir_module_free(m);
    return n;
}

START_TEST(test_nonlinear_uses_stay_strict) {
    char *t = NULL;
    /* exp(Σx): exp(Σ|x|) would be no bound on the error at all */
    ck_assert_int_eq(transformed("func @f(%x: f32[8]) -> f32[] {\n  return exp(sum(%x))\n}\n", &t), 0);
    ck_assert_ptr_null(strstr(t, "abs("));
    tir_free(t);
    /* (Σx)·(Σy): Σ|x|·Σ|y| overstates the error by the factor both sums cancel by */
    ck_assert_int_eq(transformed("func @f(%x: f32[8], %y: f32[8]) -> f32[] {\n  return mul(sum(%x), sum(%y))\n}\n",
                                 NULL),
                     0);
    /* a divisor, a max over it, a cast to int */
    ck_assert_int_eq(transformed("func @f(%x: f32[8], %y: f32[8]) -> f32[8] {\n  return div(%y, sum(%x))\n}\n", NULL), 0);
    ck_assert_int_eq(transformed("func @f(%x: f32[4, 8]) -> f32[] {\n  return max(sum(%x, axes=[1]))\n}\n", NULL), 0);
    /* rmsnorm's Σx² feeds rsqrt: untracked (its terms are >= 0 anyway) */
    ck_assert_int_eq(transformed("func @f(%x: f32[4, 8], %w: f32[8]) -> f32[4, 8] {\n"
                                 "  return rmsnorm(%x, %w, eps=1e-6)\n}\n",
                                 NULL),
                     0);
    /* one linear use and one non-linear use of the same sum: untracked */
    ck_assert_int_eq(transformed("func @f(%x: f32[8]) -> (f32[], f32[]) {\n"
                                 "  %s = sum(%x)\n  return %s, exp(%s)\n}\n",
                                 NULL),
                     0);
    /* a product of a tracked sum and an untracked value is linear: tracked */
    ck_assert_int_eq(transformed("func @f(%x: f32[8], %y: f32[]) -> f32[] {\n  return mul(sum(%x), exp(%y))\n}\n",
                                 &t),
                     1);
    ck_assert_ptr_nonnull(strstr(t, "abs("));
    tir_free(t);
}
END_TEST

/* sub(Σx, mean y) -> Σ|x| + mean|y|; mean(matmul(a, b)) -> mean(|a|·|b|) */
START_TEST(test_magnitude_values) {
    tir_module *m = tu_parse(ctx, "func @f(%x: f32[3], %y: f32[2], %a: f32[2, 3], %b: f32[3, 2]) -> (f32[], f32[]) {\n"
                                  "  %s = sub(sum(%x), mean(%y))\n  %t = mean(matmul(%a, %b))\n  return %s, %t\n}\n");
    static const double xv[] = {1, -2, 3}, yv[] = {-4, 6}, av[] = {1, -1, 2, -3, 0.5, 1}, bv[] = {2, -1, 1, 3, -2, 1};
    int64_t d3 = 3, d2 = 2, dab[2] = {2, 3}, dba[2] = {3, 2};
    tir_tensor *args[4] = {tir_tensor_new(TIR_F32, 1, &d3), tir_tensor_new(TIR_F32, 1, &d2),
                           tir_tensor_new(TIR_F32, 2, dab), tir_tensor_new(TIR_F32, 2, dba)};
    for (int i = 0; i < 3; i++) tir_tensor_set(args[0], i, xv[i]);
    for (int i = 0; i < 2; i++) tir_tensor_set(args[1], i, yv[i]);
    for (int i = 0; i < 6; i++) tir_tensor_set(args[2], i, av[i]), tir_tensor_set(args[3], i, bv[i]);
    tir_tensor *mag[2] = {0};
    tir_diag d;
    ck_assert_msg(tir_interpret_magnitudes_of(m, "f", 4, args, 2, mag, &d) == TIR_OK, "%s", d.msg);
    ck_assert_double_eq_tol(tir_tensor_get(mag[0], 0), 6 + 5, 1e-6);
    double want = 0; /* mean over the 2x2 of Σ_k |a_ik|·|b_kj| */
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 3; k++) want += fabs(av[i * 3 + k]) * fabs(bv[k * 2 + j]);
    ck_assert_double_eq_tol(tir_tensor_get(mag[1], 0), want / 4, 1e-6);
    for (int i = 0; i < 4; i++) tir_tensor_free(args[i]);
    for (int i = 0; i < 2; i++) tir_tensor_free(mag[i]);
    tir_module_free(m);
}
END_TEST

/* gpu_fused's sw_fwdbwd: the loss's sum is tracked; the gradients depend on no reduction */
START_TEST(test_value_and_grad_program) {
    const char *src =
        "func @loss(%a: f32[1, 64], %b: f32[1, 64], %g: f32[1, 64]) -> f32[] {\n"
        "  %l = sum(mul(cast(mul(silu(%a), %b), dtype=f32), cast(%g, dtype=f32)), axes=[0, 1])\n"
        "  return %l\n}\n"
        "func @vg = value_and_grad(@loss, wrt=[%a, %b])\n"
        "func @f(%a: f32[1, 64], %b: f32[1, 64], %g: f32[1, 64]) -> (f32[], f32[1, 64], f32[1, 64]) {\n"
        "  %l, %da, %db = call @vg(%a, %b, %g)\n  return %l, %da, %db\n}\n";
    ck_assert_int_ge(transformed(src, NULL), 1);
    tir_module *m = tu_parse(ctx, src);
    tir_diag d;
    ck_assert_int_eq(tir_pass_grad(m, &d), TIR_OK);
    int64_t dims[2] = {1, 64};
    tir_tensor *args[3], *ref[3], *mag[3];
    uint64_t rng = 11;
    double sabs = 0;
    for (int i = 0; i < 3; i++) {
        args[i] = tir_tensor_new(TIR_F32, 2, dims);
        for (int k = 0; k < 64; k++) tir_tensor_set(args[i], k, 4 * tu_urand(&rng) - 2);
    }
    for (int k = 0; k < 64; k++) {
        double a = tir_tensor_get(args[0], k);
        sabs += fabs(a / (1 + exp(-a)) * tir_tensor_get(args[1], k) * tir_tensor_get(args[2], k));
    }
    ck_assert_int_eq(tir_interpret(m, "f", 3, args, 3, ref, &d), TIR_OK);
    ck_assert_msg(tir_interpret_magnitudes_of(m, "f", 3, args, 3, mag, &d) == TIR_OK, "%s", d.msg);
    ck_assert_double_eq_tol(tir_tensor_get(mag[0], 0), sabs, 1e-4 * sabs);
    ck_assert(tir_tensor_get(mag[0], 0) >= fabs(tir_tensor_get(ref[0], 0)));
    for (int r = 1; r < 3; r++)
        for (int k = 0; k < 64; k++) ck_assert(tir_tensor_get(mag[r], k) == tir_tensor_get(ref[r], k));
    for (int i = 0; i < 3; i++) {
        tir_tensor_free(args[i]);
        tir_tensor_free(ref[i]);
        tir_tensor_free(mag[i]);
    }
    tir_module_free(m);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("compare_mag");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_cancelling_sum_passes);
    tcase_add_test(tc, test_wrong_results_fail);
    tcase_add_test(tc, test_noncancelling_sum_off_fails);
    tcase_add_test(tc, test_nonlinear_uses_stay_strict);
    tcase_add_test(tc, test_magnitude_values);
    tcase_add_test(tc, test_value_and_grad_program);
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
