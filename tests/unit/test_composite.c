/* test_composite.c: every composite op (linear, softmax, log_softmax, rmsnorm, layernorm,
 * cross_entropy, rope, attention), run through its decomposition on the interpreter, against a
 * direct formula written here: naive loops in f64, then the dtype's rounding where the op's
 * contract fixes it (16-bit inputs computed in f32 and rounded once at the end). */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tir.h"
#include "testutil.h"

/* ---------------------------------------------------------------- helpers */

static tir_context *ctx;

static void setup(void) { ctx = tir_context_create(); }
static void teardown(void) { tir_context_destroy(ctx); }

static uint64_t rng;
static void seed(uint64_t s) { rng = s * 0x9e3779b97f4a7c15ull + 1; }
static double urand(void) { return tu_urand(&rng); }
static double rnd(double lo, double hi) { /* magnitude in [lo, hi), random sign */
    double v = lo + (hi - lo) * urand();
    return urand() < 0.5 ? -v : v;
}

static tir_module *parse(const char *src) { return tu_parse(ctx, src); }

static tir_tensor *rand_tensor(tir_dtype dt, int rank, const int64_t *dims, double lo, double hi) {
    tir_tensor *t = tir_tensor_new(dt, rank, dims);
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < tir_tensor_numel(t); i++) tir_tensor_set(t, i, rnd(lo, hi));
    return t;
}

static tir_tensor *vec(tir_dtype dt, int rank, const int64_t *dims, const double *v) {
    tir_tensor *t = tir_tensor_new(dt, rank, dims);
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < tir_tensor_numel(t); i++) tir_tensor_set(t, i, v[i]);
    return t;
}

static void run(tir_module *m, const char *fn, int nargs, tir_tensor *const *args, int nres,
                tir_tensor **res) {
    tir_diag d;
    tir_status st = tir_interpret(m, fn, nargs, args, nres, res, &d);
    ck_assert_msg(st == TIR_OK, "interpret @%s failed: %s: %s", fn, tir_status_name(st), d.msg);
    for (int i = 0; i < nres; i++) ck_assert_ptr_nonnull(res[i]);
}

static void free_all(int n, tir_tensor **t) {
    for (int i = 0; i < n; i++) tir_tensor_free(t[i]);
}

static double *values(const tir_tensor *t) { /* caller frees */
    int64_t n = tir_tensor_numel(t);
    double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
    ck_assert_ptr_nonnull(v);
    for (int64_t i = 0; i < n; i++) v[i] = tir_tensor_get(t, i);
    return v;
}

static bool close_to(double got, double want, double rtol) {
    if (isnan(want)) return isnan(got);
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

/* bf16 round-to-nearest-even of a float, done on the bits */
static double bf16(double v) {
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}

/* ---------------------------------------------------------------- linear */

START_TEST(test_linear) {
    tir_module *m = parse(
        "func @f(%x: f32[3, 5], %w: f32[4, 5], %b: f32[4], %v: f32[5], %z: f32[2, 3, 5]) -> (f32[3, 4], f32[4], f32[2, 3, 4]) {\n"
        "  %y = linear(%x, %w, %b)\n  %u = linear(%v, %w)\n  %t = linear(%z, %w, %b)\n"
        "  return %y, %u, %t\n}\n");
    int64_t dx[2] = {3, 5}, dw[2] = {4, 5}, db = 4, dv = 5, dz[3] = {2, 3, 5};
    seed(1);
    tir_tensor *in[5] = {rand_tensor(TIR_F32, 2, dx, 0.1, 2), rand_tensor(TIR_F32, 2, dw, 0.1, 2),
                         rand_tensor(TIR_F32, 1, &db, 0.1, 2), rand_tensor(TIR_F32, 1, &dv, 0.1, 2),
                         rand_tensor(TIR_F32, 3, dz, 0.1, 2)},
               *r[3];
    run(m, "f", 5, in, 3, r);
    double *x = values(in[0]), *w = values(in[1]), *b = values(in[2]), *v = values(in[3]), *z = values(in[4]);
    for (int n = 0; n < 4; n++) {
        double s = 0;
        for (int k = 0; k < 5; k++) s += v[k] * w[n * 5 + k];
        EXPECT_NEAR(tir_tensor_get(r[1], n), (float)s, 1e-7, "rank-1 linear %d", n);
        for (int i = 0; i < 3; i++) {
            s = 0;
            for (int k = 0; k < 5; k++) s += x[i * 5 + k] * w[n * 5 + k];
            /* matmul rounds to f32, then the bias add does */
            EXPECT_NEAR(tir_tensor_get(r[0], i * 4 + n), (float)((double)(float)s + b[n]), 1e-7, "linear %d %d", i, n);
            for (int p = 0; p < 2; p++) {
                s = 0;
                for (int k = 0; k < 5; k++) s += z[(p * 3 + i) * 5 + k] * w[n * 5 + k];
                EXPECT_NEAR(tir_tensor_get(r[2], (p * 3 + i) * 4 + n), (float)((double)(float)s + b[n]), 1e-7,
                            "batched linear");
            }
        }
    }
    free(x), free(w), free(b), free(v), free(z);
    free_all(5, in);
    free_all(3, r);
    tir_module_free(m);
}
END_TEST

START_TEST(test_linear_bf16) {
    /* bf16 in: computed in f32 (matmul and bias add each round to f32), rounded to bf16 once */
    tir_module *m = parse("func @f(%x: bf16[3, 7], %w: bf16[5, 7], %b: bf16[5]) -> bf16[3, 5] {\n"
                          "  %y = linear(%x, %w, %b)\n  return %y\n}\n");
    int64_t dx[2] = {3, 7}, dw[2] = {5, 7}, db = 5;
    seed(2);
    tir_tensor *in[3] = {rand_tensor(TIR_BF16, 2, dx, 0.1, 2), rand_tensor(TIR_BF16, 2, dw, 0.1, 2),
                         rand_tensor(TIR_BF16, 1, &db, 0.1, 2)},
               *y;
    run(m, "f", 3, in, 1, &y);
    ck_assert_int_eq(tir_tensor_dtype(y), TIR_BF16);
    double *x = values(in[0]), *w = values(in[1]), *b = values(in[2]);
    for (int i = 0; i < 3; i++)
        for (int n = 0; n < 5; n++) {
            double s = 0;
            for (int k = 0; k < 7; k++) s += x[i * 7 + k] * w[n * 7 + k];
            double want = bf16((float)((double)(float)s + b[n]));
            ck_assert_double_eq(tir_tensor_get(y, i * 5 + n), want);
        }
    free(x), free(w), free(b);
    free_all(3, in);
    tir_tensor_free(y);
    tir_module_free(m);
}
END_TEST

/* ---------------------------------------------------------------- softmax */

START_TEST(test_softmax) {
    tir_module *m = parse("func @f(%x: f32[3, 7], %z: f32[4, 3]) -> (f32[3, 7], f32[4, 3], f32[3, 7]) {\n"
                          "  %a = softmax(%x)\n  %b = softmax(%z, axis=0)\n  %c = log_softmax(%x, axis=-1)\n"
                          "  return %a, %b, %c\n}\n");
    int64_t dx[2] = {3, 7}, dz[2] = {4, 3};
    seed(3);
    tir_tensor *in[2] = {rand_tensor(TIR_F32, 2, dx, 0.1, 6), rand_tensor(TIR_F32, 2, dz, 0.1, 6)}, *r[3];
    run(m, "f", 2, in, 3, r);
    double *x = values(in[0]), *z = values(in[1]);
    for (int i = 0; i < 3; i++) {
        double se = 0, rowsum = 0;
        for (int j = 0; j < 7; j++) se += exp(x[i * 7 + j]);
        for (int j = 0; j < 7; j++) {
            EXPECT_NEAR(tir_tensor_get(r[0], i * 7 + j), exp(x[i * 7 + j]) / se, 1e-6, "softmax");
            EXPECT_NEAR(tir_tensor_get(r[2], i * 7 + j), x[i * 7 + j] - log(se), 1e-6, "log_softmax");
            rowsum += tir_tensor_get(r[0], i * 7 + j);
        }
        EXPECT_NEAR(rowsum, 1.0, 1e-6, "row %d sums to 1", i);
    }
    for (int j = 0; j < 3; j++) {
        double se = 0;
        for (int i = 0; i < 4; i++) se += exp(z[i * 3 + j]);
        for (int i = 0; i < 4; i++)
            EXPECT_NEAR(tir_tensor_get(r[1], i * 3 + j), exp(z[i * 3 + j]) / se, 1e-6, "softmax axis 0");
    }
    free(x), free(z);
    free_all(2, in);
    free_all(3, r);
    tir_module_free(m);
}
END_TEST

START_TEST(test_softmax_large_and_bf16) {
    /* large logits do not overflow (max subtracted); bf16 lands within bf16 rounding */
    tir_module *m = parse("func @f(%x: f32[1, 3], %h: bf16[2, 5]) -> (f32[1, 3], bf16[2, 5]) {\n"
                          "  %a = softmax(%x)\n  %b = softmax(%h)\n  return %a, %b\n}\n");
    int64_t dx[2] = {1, 3}, dh[2] = {2, 5};
    double xv[3] = {1000, 999, 998};
    seed(4);
    tir_tensor *in[2] = {vec(TIR_F32, 2, dx, xv), rand_tensor(TIR_BF16, 2, dh, 0.1, 3)}, *r[2];
    run(m, "f", 2, in, 2, r);
    double se = 1 + exp(-1) + exp(-2);
    for (int j = 0; j < 3; j++) EXPECT_NEAR(tir_tensor_get(r[0], j), exp(-j) / se, 1e-6, "large %d", j);
    double *h = values(in[1]);
    for (int i = 0; i < 2; i++) {
        double s = 0;
        for (int j = 0; j < 5; j++) s += exp(h[i * 5 + j]);
        for (int j = 0; j < 5; j++)
            EXPECT_NEAR(tir_tensor_get(r[1], i * 5 + j), exp(h[i * 5 + j]) / s, 1.0 / 128, "bf16 softmax");
    }
    free(h);
    free_all(2, in);
    free_all(2, r);
    tir_module_free(m);
}
END_TEST

/* ---------------------------------------------------------------- norms */

START_TEST(test_rmsnorm_layernorm) {
    tir_module *m = parse("func @f(%x: f32[3, 8], %w: f32[8], %b: f32[8]) -> (f32[3, 8], f32[3, 8], f32[3, 8]) {\n"
                          "  %r = rmsnorm(%x, %w)\n  %e = rmsnorm(%x, %w, eps=0.5)\n"
                          "  %l = layernorm(%x, %w, %b, eps=1e-3)\n  return %r, %e, %l\n}\n");
    int64_t dx[2] = {3, 8}, dw = 8;
    seed(5);
    tir_tensor *in[3] = {rand_tensor(TIR_F32, 2, dx, 0.1, 3), rand_tensor(TIR_F32, 1, &dw, 0.5, 2),
                         rand_tensor(TIR_F32, 1, &dw, 0.1, 1)},
               *r[3];
    run(m, "f", 3, in, 3, r);
    double *x = values(in[0]), *w = values(in[1]), *b = values(in[2]);
    for (int i = 0; i < 3; i++) {
        double ss = 0, mu = 0, var = 0;
        for (int j = 0; j < 8; j++) ss += x[i * 8 + j] * x[i * 8 + j], mu += x[i * 8 + j];
        mu /= 8;
        for (int j = 0; j < 8; j++) var += (x[i * 8 + j] - mu) * (x[i * 8 + j] - mu);
        var /= 8; /* biased */
        for (int j = 0; j < 8; j++) {
            double xv = x[i * 8 + j];
            EXPECT_NEAR(tir_tensor_get(r[0], i * 8 + j), xv / sqrt(ss / 8 + 1e-5) * w[j], 1e-6, "rmsnorm");
            EXPECT_NEAR(tir_tensor_get(r[1], i * 8 + j), xv / sqrt(ss / 8 + 0.5) * w[j], 1e-6, "rmsnorm eps");
            EXPECT_NEAR(tir_tensor_get(r[2], i * 8 + j), (xv - mu) / sqrt(var + 1e-3) * w[j] + b[j], 1e-6,
                        "layernorm");
        }
    }
    free(x), free(w), free(b);
    free_all(3, in);
    free_all(3, r);
    tir_module_free(m);
}
END_TEST


START_TEST(test_rmsnorm_matches_example) {
    /* examples/rmsnorm.tir writes rmsnorm with core ops and with the composite: the same bits */
    const char *dir = getenv("TIR_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/examples/rmsnorm.tir", dir ? dir : ".");
    char *src = tu_read_file(path);
    ck_assert_msg(src != NULL, "cannot read %s", path);
    tir_module *m = parse(src);
    free(src);
    int64_t dx[2] = {5, 16}, dw = 16;
    seed(6);
    tir_tensor *in[2] = {rand_tensor(TIR_BF16, 2, dx, 0.01, 4), rand_tensor(TIR_BF16, 1, &dw, 0.5, 2)}, *a, *b;
    run(m, "rmsnorm", 2, in, 1, &a);
    run(m, "rmsnorm_op", 2, in, 1, &b);
    ck_assert_int_eq(tir_tensor_dtype(b), TIR_BF16);
    ck_assert_mem_eq(tir_tensor_data(a), tir_tensor_data(b), tir_tensor_nbytes(a));
    double *x = values(in[0]), *w = values(in[1]);
    for (int i = 0; i < 5; i++) {
        double ss = 0;
        for (int j = 0; j < 16; j++) ss += x[i * 16 + j] * x[i * 16 + j];
        for (int j = 0; j < 16; j++)
            EXPECT_NEAR(tir_tensor_get(b, i * 16 + j), x[i * 16 + j] / sqrt(ss / 16 + 1e-6) * w[j], 1.0 / 128,
                        "bf16 rmsnorm");
    }
    free(x), free(w);
    free_all(2, in);
    tir_tensor_free(a);
    tir_tensor_free(b);
    tir_module_free(m);
}
END_TEST

/* ---------------------------------------------------------------- cross_entropy */

/* loss per row, or NAN for an ignored one */
static double ce_row(const double *x, int c, int t) {
    double mx = x[0], s = 0;
    for (int j = 1; j < c; j++) mx = x[j] > mx ? x[j] : mx;
    for (int j = 0; j < c; j++) s += exp(x[j] - mx);
    return mx + log(s) - x[t];
}

START_TEST(test_cross_entropy) {
    tir_module *m = parse(
        "func @f(%x: f32[5, 7], %t: i64[5], %u: i32[5]) -> (f32[5], f32[], f32[], f32[], f32[5]) {\n"
        "  %n = cross_entropy(%x, %t, reduction=\"none\")\n"
        "  %s = cross_entropy(%x, %t, reduction=\"sum\")\n"
        "  %a = cross_entropy(%x, %t)\n"
        "  %b = cross_entropy(%x, %u, reduction=\"mean\", ignore_index=2)\n"
        "  %c = cross_entropy(%x, %u, reduction=\"none\", ignore_index=2)\n"
        "  return %n, %s, %a, %b, %c\n}\n");
    int64_t dx[2] = {5, 7}, dt = 5;
    double tv[5] = {3, -100, 0, 6, 2}, uv[5] = {2, 1, 2, 0, 6};
    seed(7);
    tir_tensor *in[3] = {rand_tensor(TIR_F32, 2, dx, 0.1, 4), vec(TIR_I64, 1, &dt, tv), vec(TIR_I32, 1, &dt, uv)},
               *r[5];
    run(m, "f", 3, in, 5, r);
    double *x = values(in[0]), sum = 0, sum2 = 0;
    for (int i = 0; i < 5; i++) {
        double l = tv[i] == -100 ? 0 : ce_row(x + i * 7, 7, (int)tv[i]);
        double l2 = uv[i] == 2 ? 0 : ce_row(x + i * 7, 7, (int)uv[i]);
        sum += l;
        sum2 += l2;
        EXPECT_NEAR(tir_tensor_get(r[0], i), l, 1e-6, "none row %d", i);
        EXPECT_NEAR(tir_tensor_get(r[4], i), l2, 1e-6, "none ignore 2 row %d", i);
    }
    ck_assert_double_eq(tir_tensor_get(r[0], 1), 0); /* ignored row is exactly 0 */
    EXPECT_NEAR(tir_tensor_get(r[1], 0), sum, 1e-6, "sum");
    EXPECT_NEAR(tir_tensor_get(r[2], 0), sum / 4, 1e-6, "mean over the 4 rows not ignored");
    EXPECT_NEAR(tir_tensor_get(r[3], 0), sum2 / 3, 1e-6, "mean over the 3 rows not ignored");
    free(x);
    free_all(3, in);
    free_all(5, r);
    tir_module_free(m);
}
END_TEST

START_TEST(test_cross_entropy_all_ignored) {
    /* every row ignored: "mean" is 0/0 = NaN (as PyTorch), "sum" is 0 */
    tir_module *m = parse("func @f(%x: f32[3, 4], %t: i32[3]) -> (f32[], f32[]) {\n"
                          "  %a = cross_entropy(%x, %t)\n  %b = cross_entropy(%x, %t, reduction=\"sum\")\n"
                          "  return %a, %b\n}\n");
    int64_t dx[2] = {3, 4}, dt = 3;
    double tv[3] = {-100, -100, -100};
    seed(8);
    tir_tensor *in[2] = {rand_tensor(TIR_F32, 2, dx, 0.1, 4), vec(TIR_I32, 1, &dt, tv)}, *r[2];
    run(m, "f", 2, in, 2, r);
    ck_assert(isnan(tir_tensor_get(r[0], 0)));
    ck_assert_double_eq(tir_tensor_get(r[1], 0), 0);
    free_all(2, in);
    free_all(2, r);
    tir_module_free(m);
}
END_TEST

/* ---------------------------------------------------------------- rope */

static void check_rope(const tir_tensor *y, const double *x, const double *c, const double *s,
                       int lead, int t, int d) {
    int h = d / 2;
    for (int l = 0; l < lead; l++)
        for (int i = 0; i < t; i++)
            for (int j = 0; j < d; j++) {
                const double *row = x + ((int64_t)l * t + i) * d;
                double rot = j < h ? -row[j + h] : row[j - h];
                double want = row[j] * c[i * d + j] + rot * s[i * d + j];
                EXPECT_NEAR(tir_tensor_get(y, ((int64_t)l * t + i) * d + j), want, 1e-6, "rope %d %d %d", l, i, j);
            }
}

START_TEST(test_rope) {
    tir_module *m = parse(
        "func @f(%x: f32[2, 3, 4, 6], %c: f32[4, 6], %s: f32[4, 6]) -> f32[2, 3, 4, 6] {\n"
        "  %y = rope(%x, %c, %s)\n  return %y\n}\n"
        "func @g(%x: f32[B, T, 2*H], %c: f32[T, 2*H], %s: f32[T, 2*H]) -> f32[B, T, 2*H] {\n"
        "  %y = rope(%x, %c, %s)\n  return %y\n}\n");
    int64_t dx[4] = {2, 3, 4, 6}, dc[2] = {4, 6};
    seed(9);
    tir_tensor *in[3] = {rand_tensor(TIR_F32, 4, dx, 0.1, 2), rand_tensor(TIR_F32, 2, dc, 0.1, 1),
                         rand_tensor(TIR_F32, 2, dc, 0.1, 1)},
               *y;
    run(m, "f", 3, in, 1, &y);
    double *x = values(in[0]), *c = values(in[1]), *s = values(in[2]);
    check_rope(y, x, c, s, 6, 4, 6);
    free(x), free(c), free(s);
    free_all(3, in);
    tir_tensor_free(y);
    /* symbolic head dim, two sizes */
    for (int hh = 1; hh <= 4; hh += 3) {
        int64_t gx[3] = {3, 5, 2 * hh}, gc[2] = {5, 2 * hh};
        tir_tensor *g[3] = {rand_tensor(TIR_F32, 3, gx, 0.1, 2), rand_tensor(TIR_F32, 2, gc, 0.1, 1),
                            rand_tensor(TIR_F32, 2, gc, 0.1, 1)};
        run(m, "g", 3, g, 1, &y);
        x = values(g[0]), c = values(g[1]), s = values(g[2]);
        check_rope(y, x, c, s, 3, 5, 2 * hh);
        free(x), free(c), free(s);
        free_all(3, g);
        tir_tensor_free(y);
    }
    tir_module_free(m);
}
END_TEST

/* ---------------------------------------------------------------- attention */

/* out[B, Hq, T, Dv]; query head h reads kv head h / (Hq/Hk); causal hides key s from query t
 * when s > t + S - T */
static void naive_attention(const double *q, const double *k, const double *v, int B, int Hq,
                            int Hk, int T, int S, int D, int Dv, bool causal, double scale,
                            double *out) {
    double *p = malloc(sizeof(double) * (size_t)S);
    ck_assert_ptr_nonnull(p);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < Hq; h++) {
            int kh = h / (Hq / Hk);
            for (int t = 0; t < T; t++) {
                double mx = -INFINITY;
                for (int s = 0; s < S; s++) {
                    double dot = 0;
                    for (int d = 0; d < D; d++)
                        dot += q[(((size_t)b * Hq + h) * T + t) * D + d] * k[(((size_t)b * Hk + kh) * S + s) * D + d];
                    p[s] = causal && s > t + S - T ? -INFINITY : dot * scale;
                    mx = p[s] > mx ? p[s] : mx;
                }
                double den = 0;
                for (int s = 0; s < S; s++) den += p[s] = exp(p[s] - mx);
                for (int e = 0; e < Dv; e++) {
                    double acc = 0;
                    for (int s = 0; s < S; s++) acc += p[s] / den * v[(((size_t)b * Hk + kh) * S + s) * Dv + e];
                    out[(((size_t)b * Hq + h) * T + t) * Dv + e] = acc;
                }
            }
        }
    free(p);
}

static void attention_case(tir_module *m, const char *fn, tir_dtype dt, int B, int Hq, int Hk,
                           int T, int S, int D, int Dv, bool causal, double scale, double tol) {
    int64_t dq[4] = {B, Hq, T, D}, dk[4] = {B, Hk, S, D}, dv[4] = {B, Hk, S, Dv};
    tir_tensor *in[3] = {rand_tensor(dt, 4, dq, 0.1, 2), rand_tensor(dt, 4, dk, 0.1, 2), rand_tensor(dt, 4, dv, 0.1, 2)},
               *y;
    run(m, fn, 3, in, 1, &y);
    ck_assert_int_eq(tir_tensor_dtype(y), dt);
    ck_assert_int_eq(tir_tensor_rank(y), 4);
    ck_assert_int_eq(tir_tensor_dim(y, 1), Hq);
    ck_assert_int_eq(tir_tensor_dim(y, 3), Dv);
    double *q = values(in[0]), *k = values(in[1]), *v = values(in[2]);
    double *want = malloc(sizeof(double) * (size_t)(B * Hq * T * Dv));
    ck_assert_ptr_nonnull(want);
    naive_attention(q, k, v, B, Hq, Hk, T, S, D, Dv, causal, scale, want);
    for (int i = 0; i < B * Hq * T * Dv; i++)
        EXPECT_NEAR(tir_tensor_get(y, i), want[i], tol, "@%s element %d", fn, i);
    free(q), free(k), free(v), free(want);
    free_all(3, in);
    tir_tensor_free(y);
}

START_TEST(test_attention) {
    tir_module *m = parse(
        /* grouped-query (2 query heads per kv head), default scale, Dv != D */
        "func @gqa(%q: f32[2, 4, 3, 4], %k: f32[2, 2, 5, 4], %v: f32[2, 2, 5, 3]) -> f32[2, 4, 3, 3] {\n"
        "  %y = attention(%q, %k, %v)\n  return %y\n}\n"
        /* causal with fewer queries than keys: the last query sees every key */
        "func @causal(%q: f32[2, 4, 3, 4], %k: f32[2, 2, 5, 4], %v: f32[2, 2, 5, 4]) -> f32[2, 4, 3, 4] {\n"
        "  %y = attention(%q, %k, %v, causal=true, scale=0.3)\n  return %y\n}\n"
        /* plain causal self-attention */
        "func @self(%q: f32[1, 2, 4, 8], %k: f32[1, 2, 4, 8], %v: f32[1, 2, 4, 8]) -> f32[1, 2, 4, 8] {\n"
        "  %y = attention(%q, %k, %v, causal=true)\n  return %y\n}\n"
        /* everything symbolic: heads 3*Hk, causal offset S - T known only at run time */
        "func @sym(%q: f32[B, 3*Hk, T, 4], %k: f32[B, Hk, S, 4], %v: f32[B, Hk, S, 4]) -> f32[B, 3*Hk, T, 4] {\n"
        "  %y = attention(%q, %k, %v, causal=true)\n  return %y\n}\n"
        /* independent head symbols (as examples/llama_block.tir), symbolic head dim for the
         * default scale 1/sqrt(D) */
        "func @free(%q: f32[B, Hq, T, D], %k: f32[B, Hk, S, D], %v: f32[B, Hk, S, D]) -> f32[B, Hq, T, D] {\n"
        "  %y = attention(%q, %k, %v, causal=true)\n  return %y\n}\n"
        "func @half(%q: bf16[1, 2, 3, 8], %k: bf16[1, 1, 6, 8], %v: bf16[1, 1, 6, 8]) -> bf16[1, 2, 3, 8] {\n"
        "  %y = attention(%q, %k, %v, causal=true)\n  return %y\n}\n");
    seed(10);
    attention_case(m, "gqa", TIR_F32, 2, 4, 2, 3, 5, 4, 3, false, 0.5, 1e-5);
    attention_case(m, "causal", TIR_F32, 2, 4, 2, 3, 5, 4, 4, true, 0.3, 1e-5);
    attention_case(m, "self", TIR_F32, 1, 2, 2, 4, 4, 8, 8, true, 1 / sqrt(8.0), 1e-5);
    attention_case(m, "sym", TIR_F32, 2, 3, 1, 2, 5, 4, 4, true, 0.5, 1e-5);
    attention_case(m, "sym", TIR_F32, 1, 6, 2, 4, 4, 4, 4, true, 0.5, 1e-5);
    attention_case(m, "free", TIR_F32, 2, 4, 2, 3, 5, 6, 6, true, 1 / sqrt(6.0), 1e-5);
    attention_case(m, "free", TIR_F32, 1, 3, 1, 4, 4, 2, 2, true, 1 / sqrt(2.0), 1e-5);
    attention_case(m, "free", TIR_F32, 1, 2, 2, 2, 3, 4, 4, true, 0.5, 1e-5);
    attention_case(m, "half", TIR_BF16, 1, 2, 1, 3, 6, 8, 8, true, 1 / sqrt(8.0), 2e-2);
    tir_module_free(m);
}
END_TEST

START_TEST(test_attention_heads_not_multiple) {
    /* 3 query heads over 2 kv heads can only be caught at run time when the heads are symbols */
    tir_module *m = parse("func @f(%q: f32[1, Hq, 2, 4], %k: f32[1, Hk, 2, 4], %v: f32[1, Hk, 2, 4]) -> f32[1, Hq, 2, 4] {\n"
                          "  %y = attention(%q, %k, %v)\n  return %y\n}\n");
    int64_t dq[4] = {1, 3, 2, 4}, dk[4] = {1, 2, 2, 4};
    seed(12);
    tir_tensor *in[3] = {rand_tensor(TIR_F32, 4, dq, 0.1, 2), rand_tensor(TIR_F32, 4, dk, 0.1, 2),
                         rand_tensor(TIR_F32, 4, dk, 0.1, 2)},
               *y = NULL;
    tir_diag d;
    ck_assert_int_eq(tir_interpret(m, "f", 3, in, 1, &y, &d), TIR_ERR_INVALID);
    ck_assert_ptr_null(y);
    ck_assert_int_eq(d.line, 2);
    ck_assert_msg(strstr(d.msg, "multiple") != NULL, "%s", d.msg);
    free_all(3, in);
    tir_module_free(m);
}
END_TEST

START_TEST(test_attention_first_row_causal) {
    /* T == S causal: query 0 sees only key 0, so its output is exactly v[0] (f64, no rounding) */
    tir_module *m = parse("func @f(%q: f64[1, 1, 3, 2], %k: f64[1, 1, 3, 2], %v: f64[1, 1, 3, 2]) -> f64[1, 1, 3, 2] {\n"
                          "  %y = attention(%q, %k, %v, causal=true)\n  return %y\n}\n");
    int64_t d[4] = {1, 1, 3, 2};
    seed(11);
    tir_tensor *in[3] = {rand_tensor(TIR_F64, 4, d, 0.1, 2), rand_tensor(TIR_F64, 4, d, 0.1, 2),
                         rand_tensor(TIR_F64, 4, d, 0.1, 2)},
               *y;
    run(m, "f", 3, in, 1, &y);
    ck_assert_double_eq(tir_tensor_get(y, 0), tir_tensor_get(in[2], 0));
    ck_assert_double_eq(tir_tensor_get(y, 1), tir_tensor_get(in[2], 1));
    ck_assert_double_ne(tir_tensor_get(y, 2), tir_tensor_get(in[2], 2)); /* row 1 mixes two keys */
    free_all(3, in);
    tir_tensor_free(y);
    tir_module_free(m);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("composite");
    TCase *tc = tcase_create("composites");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_linear);
    tcase_add_test(tc, test_linear_bf16);
    tcase_add_test(tc, test_softmax);
    tcase_add_test(tc, test_softmax_large_and_bf16);
    tcase_add_test(tc, test_rmsnorm_layernorm);
    tcase_add_test(tc, test_rmsnorm_matches_example);
    tcase_add_test(tc, test_cross_entropy);
    tcase_add_test(tc, test_cross_entropy_all_ignored);
    tcase_add_test(tc, test_rope);
    tcase_add_test(tc, test_attention);
    tcase_add_test(tc, test_attention_heads_not_multiple);
    tcase_add_test(tc, test_attention_first_row_causal);
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
