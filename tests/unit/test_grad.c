/* test_grad.c: reverse-mode autodiff (passes/grad.c, grad_rules.c). Every differentiable op is
 * checked against central finite differences in f64 on the interpreter (compiler/gradcheck.c),
 * on random inputs with odd shapes and broadcasting; the documented conventions at
 * non-differentiable points (ties, relu/abs at 0) are checked by value; each composite's own rule
 * is checked against the gradient of its decomposition; and the MLP of examples/train_mlp.tir
 * trains on the interpreter with its loss falling. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "passes.h"
#include "testutil.h"

static tir_context *ctx;
static void setup(void) { ctx = tir_context_create(); }
static void teardown(void) { tir_context_destroy(ctx); }

static uint64_t rng = 1;
static double urand(void) { return tu_urand(&rng); }
static double rnd(double lo, double hi) { /* magnitude in [lo, hi), random sign */
    double v = lo + (hi - lo) * urand();
    return urand() < 0.5 ? -v : v;
}

static tir_module *parse(const char *src) { return tu_parse(ctx, src); }

/* gradcheck of @func in src: every parameter must pass; returns the parameter count */
typedef struct dimb { const char *name; int64_t v; } dimb;
static int gradcheck_dims(const char *src, const char *func, double lo, double hi, const dimb *dims,
                          int ndims) {
    tir_module *m = parse(src);
    tir_gradcheck_opts o = {.seed = 7, .lo = lo, .hi = hi, .tol = 1e-6, .max_elems = 48};
    for (int i = 0; i < ndims; i++) ck_assert_int_eq(tir_bindings_set(&o.dims, dims[i].name, dims[i].v), TIR_OK);
    tir_gradcheck_result r;
    tir_diag d;
    tir_status st = tir_gradcheck(m, func, &o, &r, &d);
    ck_assert_msg(st == TIR_OK, "gradcheck @%s: %s: %s\n%s", func, tir_status_name(st), d.msg, src);
    ck_assert_msg(!r.loss_failed, "gradcheck @%s: the loss value differs\n%s", func, src);
    ck_assert_msg(r.nfailed == 0, "gradcheck @%s: %d of %d failed (max abs err %g)\n%s", func,
                  r.nfailed, r.nparams, r.max_abs_err, src);
    ck_assert_msg(isfinite(r.loss) && r.loss != 0, "degenerate loss %g\n%s", r.loss, src);
    tir_module_free(m);
    return r.nparams;
}
static int gradcheck(const char *src, const char *func, double lo, double hi) {
    return gradcheck_dims(src, func, lo, hi, NULL, 0);
}

/* a loss that weights every element of %y differently, so no gradient is uniform */
#define LOSS_OF(sig, body, rtype)                                                                 \
    "func @f(" sig ", %r: f32" rtype ") -> f32[] {\n" body "  %l = sum(mul(%y, %r))\n  return %l\n}\n"
static char loss_buf[2048];
static const char *loss_of(const char *sig, const char *body, const char *rtype) {
    snprintf(loss_buf, sizeof loss_buf,
             "func @f(%s, %%r: f32%s) -> f32[] {\n%s  %%l = sum(mul(%%y, %%r))\n  return %%l\n}\n", sig,
             rtype, body);
    return loss_buf;
}

static void run(tir_module *m, const char *fn, int nargs, tir_tensor *const *args, int nres,
                tir_tensor **res) {
    tir_diag d;
    tir_status st = tir_interpret(m, fn, nargs, args, nres, res, &d);
    ck_assert_msg(st == TIR_OK, "interpret @%s: %s: %s", fn, tir_status_name(st), d.msg);
}

static void grad_pass(tir_module *m) {
    tir_diag d;
    tir_status st = tir_pass_grad(m, &d);
    ck_assert_msg(st == TIR_OK, "grad pass: %s: %s", tir_status_name(st), d.msg);
    ck_assert_int_eq(tir_verify(m, &d), TIR_OK);
}

static tir_tensor *tensor(tir_dtype dt, int rank, const int64_t *dims, const double *v) {
    tir_tensor *t = tir_tensor_new(dt, rank, dims);
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < tir_tensor_numel(t); i++) tir_tensor_set(t, i, v ? v[i] : rnd(0.1, 1.0));
    return t;
}

/* ---------------------------------------------------------------- elementwise */

START_TEST(test_unary) {
    static const struct { const char *op; double lo, hi; } ops[] = {
        {"neg", -1, 1},   {"abs", -1, 1},     {"exp", -1, 1},     {"log", 0.3, 2},
        {"sqrt", 0.3, 2}, {"rsqrt", 0.3, 2},  {"recip", 0.3, 2},  {"tanh", -1, 1},
        {"sigmoid", -2, 2}, {"relu", -1, 1},  {"silu", -2, 2},    {"gelu", -2, 2},
        {"sin", -2, 2},   {"cos", -2, 2},
    };
    char body[256];
    const char *src;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        snprintf(body, sizeof body, "  %%y = %s(%%x)\n", ops[i].op);
        src = loss_of("%x: f32[3, 5]", body, "[3, 5]");
        ck_assert_int_eq(gradcheck(src, "f", ops[i].lo, ops[i].hi), 2);
    }
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[7]", "  %y = gelu(%x, approximate=\"tanh\")\n", "[7]"),
                               "f", -3, 3), 2);
    /* f64 and a chain through a cast to a narrower float and back */
    ck_assert_int_eq(gradcheck("func @f(%x: f64[4]) -> f64[] {\n  %l = sum(exp(mul(%x, %x)))\n  return %l\n}\n",
                               "f", -1, 1), 1);
}
END_TEST

START_TEST(test_binary_broadcast) {
    static const struct { const char *op; double lo, hi; } ops[] = {
        {"add", -1, 1}, {"sub", -1, 1}, {"mul", -1, 1}, {"div", 0.3, 2},
        {"pow", 0.3, 2}, {"maximum", -1, 1}, {"minimum", -1, 1},
    };
    char body[256];
    const char *src;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        /* [3, 1, 5] with [4, 1] -> [3, 4, 5]; and a scalar operand */
        snprintf(body, sizeof body, "  %%y = %s(%%x, %%z)\n", ops[i].op);
        src = loss_of("%x: f32[3, 1, 5], %z: f32[4, 1]", body, "[3, 4, 5]");
        ck_assert_int_eq(gradcheck(src, "f", ops[i].lo, ops[i].hi), 3);
        snprintf(body, sizeof body, "  %%y = %s(%%z, %%x)\n", ops[i].op);
        src = loss_of("%x: f32[], %z: f32[2, 3]", body, "[2, 3]");
        ck_assert_int_eq(gradcheck(src, "f", ops[i].lo, ops[i].hi), 3);
    }
    /* the same value used twice accumulates: d/dx sum(x * x * r) = 2 x r */
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[5]", "  %y = mul(%x, %x)\n", "[5]"), "f", -1, 1), 2);
}
END_TEST

START_TEST(test_where_cast) {
    ck_assert_int_eq(gradcheck(LOSS_OF("%c: f32[3, 1], %a: f32[3, 4], %b: f32[4]",
                                       "  %y = where(gt(%c, 0.0), %a, %b)\n", "[3, 4]"),
                               "f", -1, 1), 4);
    /* through bf16 and f64 casts (the check retypes every float, so this checks the plumbing);
     * the integer cast carries no gradient, which finite differences agree with */
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[6]",
                                       "  %h = cast(cast(%x, dtype=bf16), dtype=f32)\n"
                                       "  %i = cast(cast(mul(%x, 3.0), dtype=i32), dtype=f32)\n"
                                       "  %y = add(mul(%h, %h), %i)\n",
                                       "[6]"),
                               "f", -1, 1), 2);
}
END_TEST

/* the documented values where the derivative does not exist */
START_TEST(test_conventions_at_kinks) {
    tir_module *m = parse(
        "func @f(%x: f32[6], %z: f32[6], %r: f32[6]) -> f32[] {\n"
        "  %a = add(add(maximum(%x, %z), minimum(%x, %z)), add(relu(%x), abs(%x)))\n"
        "  %l = sum(mul(%a, %r))\n  return %l\n}\n"
        "func @g = value_and_grad(@f, wrt=[%x, %z])\n"
        "func @h(%x: f32[2, 3], %r: f32[2]) -> f32[] {\n"
        "  %l = sum(mul(max(%x, axes=[1]), %r))\n  return %l\n}\n"
        "func @hg = value_and_grad(@h, wrt=[%x])\n");
    grad_pass(m);
    int64_t n = 6;
    double x[6] = {0, 0.5, -0.5, 2, -1, 0.25}, z[6] = {0, 0.5, 1, -2, -1, 0.75}, r[6] = {1, 2, 3, 4, 5, 6};
    tir_tensor *in[3] = {tensor(TIR_F32, 1, &n, x), tensor(TIR_F32, 1, &n, z), tensor(TIR_F32, 1, &n, r)};
    tir_tensor *out[3];
    run(m, "g", 3, in, 3, out);
    for (int i = 0; i < 6; i++) {
        /* maximum + minimum: on ties half of each to either side, so x and z get 1 * r each */
        double tie = x[i] == z[i];
        double gx = (x[i] > z[i]) + (x[i] < z[i]) + tie + (x[i] > 0) + (x[i] > 0 ? 1 : x[i] < 0 ? -1 : 0);
        double gz = (z[i] > x[i]) + (z[i] < x[i]) + tie;
        ck_assert_double_eq_tol(tir_tensor_get(out[1], i), gx * r[i], 1e-6);
        ck_assert_double_eq_tol(tir_tensor_get(out[2], i), gz * r[i], 1e-6);
    }
    /* max over a row with a tie splits evenly: [1, 3, 3] -> 0, r/2, r/2 */
    int64_t d2[2] = {2, 3}, n2 = 2;
    double hx[6] = {1, 3, 3, 2, 0.5, -1}, hr[2] = {2, 5};
    tir_tensor *hin[2] = {tensor(TIR_F32, 2, d2, hx), tensor(TIR_F32, 1, &n2, hr)}, *hout[2];
    run(m, "hg", 2, hin, 2, hout);
    double want[6] = {0, 1, 1, 5, 0, 0};
    for (int i = 0; i < 6; i++) ck_assert_double_eq_tol(tir_tensor_get(hout[1], i), want[i], 1e-6);
    for (int i = 0; i < 3; i++) tir_tensor_free(in[i]), tir_tensor_free(out[i]);
    for (int i = 0; i < 2; i++) tir_tensor_free(hin[i]), tir_tensor_free(hout[i]);
    tir_module_free(m);
}
END_TEST

/* ---------------------------------------------------------------- reductions */

START_TEST(test_reductions) {
    static const char *ops[] = {"sum", "mean", "max", "min"};
    char body[256];
    const char *src;
    for (int i = 0; i < 4; i++) {
        snprintf(body, sizeof body, "  %%y = %s(%%x, axes=[0, 2])\n", ops[i]);
        src = loss_of("%x: f32[3, 4, 5]", body, "[4]");
        ck_assert_int_eq(gradcheck(src, "f", -1, 1), 2);
        snprintf(body, sizeof body, "  %%y = %s(%%x, axes=[-1], keepdim=true)\n", ops[i]);
        src = loss_of("%x: f32[3, 4, 5]", body, "[3, 4, 1]");
        ck_assert_int_eq(gradcheck(src, "f", -1, 1), 2);
        snprintf(body, sizeof body, "  %%y = %s(%%x)\n", ops[i]);
        src = loss_of("%x: f32[2, 3]", body, "[]");
        ck_assert_int_eq(gradcheck(src, "f", -1, 1), 2);
    }
    /* mean over a symbolic extent: the count is computed at run time */
    dimb n[2] = {{"N", 5}, {"M", 3}};
    ck_assert_int_eq(gradcheck_dims(LOSS_OF("%x: f32[M, N]", "  %y = mean(%x, axes=[1])\n", "[M]"),
                                    "f", -1, 1, n, 2), 2);
}
END_TEST

/* ---------------------------------------------------------------- movement */

START_TEST(test_movement) {
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[2, 6]", "  %y = reshape(%x, shape=[3, 2, 2])\n", "[3, 2, 2]"),
                               "f", -1, 1), 2);
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[2, 3, 4]", "  %y = transpose(%x, perm=[2, 0, 1])\n", "[4, 2, 3]"),
                               "f", -1, 1), 2);
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[3, 1]", "  %y = broadcast(%x, shape=[2, 3, 4])\n", "[2, 3, 4]"),
                               "f", -1, 1), 2);
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[3, 7]", "  %y = slice(%x, axis=1, start=2, end=5)\n", "[3, 3]"),
                               "f", -1, 1), 2);
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[7, 2]", "  %y = slice(%x, axis=0, start=-4)\n", "[4, 2]"),
                               "f", -1, 1), 2);
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[2, 9]", "  %y = slice(%x, axis=-1, start=1, end=8, step=3)\n", "[2, 3]"),
                               "f", -1, 1), 2);
    dimb n[1] = {{"N", 6}};
    ck_assert_int_eq(gradcheck_dims(LOSS_OF("%x: f32[N]", "  %y = slice(%x, axis=0, start=1, end=-1)\n", "[N - 2]"),
                                    "f", -1, 1, n, 1), 2);
    /* strided, from a negative start or to a negative end on a symbolic dim: the adjoint is
     * scattered at the positions of the same slice of iota(N) */
    dimb n9[1] = {{"N", 9}};
    ck_assert_int_eq(gradcheck_dims(LOSS_OF("%x: f32[N]", "  %y = slice(%x, axis=0, start=-5, step=2)\n", "[3]"),
                                    "f", -1, 1, n9, 1), 2);
    ck_assert_int_eq(gradcheck_dims(LOSS_OF("%x: f32[2, N]", "  %y = slice(%x, axis=1, start=-7, end=-1, step=4)\n",
                                            "[2, 2]"),
                                    "f", -1, 1, n9, 1), 2);
    ck_assert_int_eq(gradcheck(LOSS_OF("%a: f32[2, 3], %b: f32[2, 1], %c: f32[2, 2]",
                                       "  %y = concat(%a, %b, %c, axis=1)\n", "[2, 6]"),
                               "f", -1, 1), 4);
    /* split with one piece unused: its adjoint is zeros */
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[5, 3]",
                                       "  %p, %q, %s = split(%x, axis=0, sizes=[2, 1, 2])\n"
                                       "  %y = add(%p, mul(%s, %s))\n",
                                       "[2, 3]"),
                               "f", -1, 1), 2);
}
END_TEST

/* ---------------------------------------------------------------- indexing, linear algebra */

START_TEST(test_take_scatter) {
    /* repeated indices add up in take's adjoint; idx is drawn inside [0, 4) */
    ck_assert_int_eq(gradcheck(LOSS_OF("%t: f32[4, 3], %i: i32[2, 5]", "  %y = take(%t, %i)\n", "[2, 5, 3]"),
                               "f", -1, 1), 2);
    ck_assert_int_eq(gradcheck(LOSS_OF("%t: f32[3, 4], %i: i64[6]", "  %y = take(%t, %i, axis=1)\n", "[3, 6]"),
                               "f", -1, 1), 2);
    ck_assert_int_eq(gradcheck(LOSS_OF("%t: f32[4, 3], %i: i32[5], %s: f32[5, 3]",
                                       "  %y = scatter_add(%t, %i, %s)\n", "[4, 3]"),
                               "f", -1, 1), 3);
}
END_TEST

START_TEST(test_matmul) {
    static const char *attrs[] = {"", ", transpose_a=true", ", transpose_b=true",
                                  ", transpose_a=true, transpose_b=true"};
    static const char *shapes[][2] = {{"[3, 4]", "[4, 5]"}, {"[4, 3]", "[4, 5]"}, {"[3, 4]", "[5, 4]"}, {"[4, 3]", "[5, 4]"}};
    char src[512];
    for (int i = 0; i < 4; i++) {
        /* a carries a broadcast batch dim [2, 1, ...], b one of its own [3, ...] */
        snprintf(src, sizeof src,
                 "func @f(%%a: f32[2, 1, %s, %%b: f32[3, %s, %%r: f32[2, 3, 3, 5]) -> f32[] {\n"
                 "  %%l = sum(mul(matmul(%%a, %%b%s), %%r))\n  return %%l\n}\n",
                 shapes[i][0] + 1, shapes[i][1] + 1, attrs[i]);
        ck_assert_int_eq(gradcheck(src, "f", -1, 1), 3);
    }
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[3, 4], %w: f32[5, 4], %b: f32[5]", "  %y = linear(%x, %w, %b)\n", "[3, 5]"),
                               "f", -1, 1), 4);
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[4], %w: f32[5, 4]", "  %y = linear(%x, %w)\n", "[5]"),
                               "f", -1, 1), 3);
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[2, 3, 4], %w: f32[5, 4], %b: f32[5]", "  %y = linear(%x, %w, %b)\n", "[2, 3, 5]"),
                               "f", -1, 1), 4);
}
END_TEST

/* ---------------------------------------------------------------- composites */

START_TEST(test_composites_gradcheck) {
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[3, 5]", "  %y = softmax(%x)\n", "[3, 5]"), "f", -2, 2), 2);
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[3, 5]", "  %y = softmax(%x, axis=0)\n", "[3, 5]"), "f", -2, 2), 2);
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[2, 3, 4]", "  %y = log_softmax(%x, axis=1)\n", "[2, 3, 4]"), "f", -2, 2), 2);
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[2, 3, 6], %w: f32[6]", "  %y = rmsnorm(%x, %w, eps=1e-5)\n", "[2, 3, 6]"),
                               "f", -2, 2), 3);
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[4, 6], %w: f32[6], %b: f32[6]", "  %y = layernorm(%x, %w, %b)\n", "[4, 6]"),
                               "f", -2, 2), 4);
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[2, 3, 8], %c: f32[3, 8], %s: f32[3, 8]", "  %y = rope(%x, %c, %s)\n", "[2, 3, 8]"),
                               "f", -1, 1), 4);
    /* a symbolic last dim: the halves are [D/2, D - D/2], which inference can sum to D */
    dimb d4[1] = {{"D", 4}};
    ck_assert_int_eq(gradcheck_dims(LOSS_OF("%x: f32[2, D], %c: f32[2, D], %s: f32[2, D]",
                                            "  %y = rope(%x, %c, %s)\n", "[2, D]"),
                                    "f", -2, 2, d4, 1), 4);
    /* values f32 only by default (full without dtype=, an op of literals) become f64 in
     * gradcheck's copy too */
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[3]", "  %y = mul(mul(%x, full(2.0, shape=[3])), abs(-0.25))\n", "[3]"),
                               "f", -1, 1), 2);
    static const char *reds[] = {"mean", "sum"};
    char src[512];
    for (int i = 0; i < 2; i++) {
        snprintf(src, sizeof src,
                 "func @f(%%x: f32[5, 7], %%t: i32[5]) -> f32[] {\n"
                 "  %%l = mul(cross_entropy(%%x, %%t, reduction=\"%s\"), 1.5)\n  return %%l\n}\n", reds[i]);
        ck_assert_int_eq(gradcheck(src, "f", -2, 2), 1);
    }
    ck_assert_int_eq(gradcheck(LOSS_OF("%x: f32[5, 7], %t: i64[5]", "  %y = cross_entropy(%x, %t, reduction=\"none\")\n", "[5]"),
                               "f", -2, 2), 2);
}
END_TEST

START_TEST(test_attention_gradcheck) {
    /* plain, causal with S > T, grouped (Hq = 2 Hk, structural), and a ratio of symbols */
    ck_assert_int_eq(gradcheck(LOSS_OF("%q: f32[2, 2, 3, 4], %k: f32[2, 2, 3, 4], %v: f32[2, 2, 3, 5]",
                                       "  %y = attention(%q, %k, %v)\n", "[2, 2, 3, 5]"),
                               "f", -1, 1), 4);
    ck_assert_int_eq(gradcheck(LOSS_OF("%q: f32[1, 4, 3, 4], %k: f32[1, 2, 5, 4], %v: f32[1, 2, 5, 4]",
                                       "  %y = attention(%q, %k, %v, causal=true, scale=0.3)\n", "[1, 4, 3, 4]"),
                               "f", -1, 1), 4);
    dimb d[2] = {{"Hq", 4}, {"Hk", 2}};
    ck_assert_int_eq(gradcheck_dims(LOSS_OF("%q: f32[1, Hq, 3, 4], %k: f32[1, Hk, 3, 4], %v: f32[1, Hk, 3, 4]",
                                            "  %y = attention(%q, %k, %v, causal=true)\n", "[1, Hq, 3, 4]"),
                                    "f", -1, 1, d, 2), 4);
}
END_TEST

/* The composite's own rule against the gradient of its decomposition (the generic rules), on
 * the same f32 inputs. */
static void rule_vs_decomposition(const char *src, int nint, int64_t bound) {
    tir_module *a = parse(src), *b = parse(src);
    tir_diag d;
    ck_assert_int_eq(tir_pass_decompose(b, &d), TIR_OK);
    grad_pass(a);
    grad_pass(b);
    tir_func *g = tir_module_find(a, "g");
    ck_assert_ptr_nonnull(g);
    int np = g->nparams, nr = g->nres;
    tir_tensor *args[8], *ra[8], *rb[8];
    for (int i = 0; i < np; i++) {
        const tir_type *t = &g->params[i]->type;
        int64_t dims[TIR_MAX_RANK];
        for (int k = 0; k < t->rank; k++) ck_assert(tir_dim_is_const(t->dims[k], &dims[k]));
        args[i] = tensor(t->dtype, t->rank, dims, NULL);
        if (i >= np - nint)
            for (int64_t e = 0; e < tir_tensor_numel(args[i]); e++)
                tir_tensor_set(args[i], e, (double)((uint64_t)(urand() * 1e9) % (uint64_t)bound));
    }
    run(a, "g", np, args, nr, ra);
    run(b, "g", np, args, nr, rb);
    for (int j = 0; j < nr; j++) {
        double scale = 0;
        for (int64_t e = 0; e < tir_tensor_numel(rb[j]); e++) scale = fmax(scale, fabs(tir_tensor_get(rb[j], e)));
        ck_assert_msg(scale > 0, "all-zero gradient %d\n%s", j, src);
        for (int64_t e = 0; e < tir_tensor_numel(rb[j]); e++) {
            double x = tir_tensor_get(ra[j], e), y = tir_tensor_get(rb[j], e);
            ck_assert_msg(fabs(x - y) <= 1e-4 * fmax(1.0, scale), "result %d elem %lld: rule %g, decomposition %g\n%s",
                          j, (long long)e, x, y, src);
        }
        tir_tensor_free(ra[j]);
        tir_tensor_free(rb[j]);
    }
    for (int i = 0; i < np; i++) tir_tensor_free(args[i]);
    tir_module_free(a);
    tir_module_free(b);
}

START_TEST(test_composite_rules_vs_decomposition) {
    rule_vs_decomposition("func @f(%x: f32[3, 5], %r: f32[3, 5]) -> f32[] {\n  %l = sum(mul(softmax(%x), %r))\n  return %l\n}\n"
                          "func @g = value_and_grad(@f, wrt=[%x])\n", 0, 0);
    rule_vs_decomposition("func @f(%x: f32[3, 5], %r: f32[3, 5]) -> f32[] {\n  %l = sum(mul(log_softmax(%x), %r))\n  return %l\n}\n"
                          "func @g = value_and_grad(@f, wrt=[%x])\n", 0, 0);
    rule_vs_decomposition("func @f(%x: f32[4, 6], %w: f32[6], %r: f32[4, 6]) -> f32[] {\n  %l = sum(mul(rmsnorm(%x, %w), %r))\n  return %l\n}\n"
                          "func @g = value_and_grad(@f, wrt=[%x, %w])\n", 0, 0);
    rule_vs_decomposition("func @f(%x: f32[4, 6], %w: f32[6], %b: f32[6], %r: f32[4, 6]) -> f32[] {\n"
                          "  %l = sum(mul(layernorm(%x, %w, %b, eps=1e-3), %r))\n  return %l\n}\n"
                          "func @g = value_and_grad(@f, wrt=[%x, %w, %b])\n", 0, 0);
    rule_vs_decomposition("func @f(%x: f32[6, 5], %t: i32[6]) -> f32[] {\n  %l = cross_entropy(%x, %t, ignore_index=2)\n  return %l\n}\n"
                          "func @g = value_and_grad(@f, wrt=[%x])\n", 1, 5);
    rule_vs_decomposition("func @f(%x: f32[2, 3, 6], %c: f32[3, 6], %s: f32[3, 6], %r: f32[2, 3, 6]) -> f32[] {\n"
                          "  %l = sum(mul(rope(%x, %c, %s), %r))\n  return %l\n}\n"
                          "func @g = value_and_grad(@f, wrt=[%x, %c, %s])\n", 0, 0);
    rule_vs_decomposition("func @f(%q: f32[1, 4, 3, 4], %k: f32[1, 2, 5, 4], %v: f32[1, 2, 5, 3], %r: f32[1, 4, 3, 3]) -> f32[] {\n"
                          "  %l = sum(mul(attention(%q, %k, %v, causal=true), %r))\n  return %l\n}\n"
                          "func @g = value_and_grad(@f, wrt=[%q, %k, %v])\n", 0, 0);
    rule_vs_decomposition("func @f(%x: f32[2, 3, 4], %w: f32[5, 4], %b: f32[5], %r: f32[2, 3, 5]) -> f32[] {\n"
                          "  %l = sum(mul(linear(%x, %w, %b), %r))\n  return %l\n}\n"
                          "func @g = value_and_grad(@f, wrt=[%x, %w, %b])\n", 0, 0);
}
END_TEST

/* bf16 programs differentiate in bf16 (composite rules in f32 inside): close to the gradient
 * of the same program in f32 on the same (bf16-representable) inputs */
START_TEST(test_bf16_close_to_f32) {
    static const char *fmt = "func @f(%%x: %s[4, 8], %%w: %s[8], %%r: f32[4, 8]) -> f32[] {\n"
                             "  %%y = cast(softmax(mul(rmsnorm(%%x, %%w), 3.0)), dtype=f32)\n"
                             "  %%l = sum(mul(%%y, %%r))\n  return %%l\n}\n"
                             "func @g = value_and_grad(@f, wrt=[%%x, %%w])\n";
    char s16[512], s32[512];
    snprintf(s16, sizeof s16, fmt, "bf16", "bf16");
    snprintf(s32, sizeof s32, fmt, "f32", "f32");
    tir_module *m16 = parse(s16), *m32 = parse(s32);
    grad_pass(m16);
    grad_pass(m32);
    int64_t dx[2] = {4, 8}, dw = 8;
    tir_tensor *a16[3] = {tensor(TIR_BF16, 2, dx, NULL), tensor(TIR_BF16, 1, &dw, NULL), tensor(TIR_F32, 2, dx, NULL)};
    tir_tensor *a32[3] = {tir_tensor_new(TIR_F32, 2, dx), tir_tensor_new(TIR_F32, 1, &dw), a16[2]};
    for (int j = 0; j < 2; j++)
        for (int64_t i = 0; i < tir_tensor_numel(a16[j]); i++) tir_tensor_set(a32[j], i, tir_tensor_get(a16[j], i));
    tir_tensor *r16[3], *r32[3];
    run(m16, "g", 3, a16, 3, r16);
    run(m32, "g", 3, a32, 3, r32);
    for (int j = 1; j < 3; j++) {
        double scale = 0;
        for (int64_t i = 0; i < tir_tensor_numel(r32[j]); i++) scale = fmax(scale, fabs(tir_tensor_get(r32[j], i)));
        ck_assert_double_gt(scale, 0);
        for (int64_t i = 0; i < tir_tensor_numel(r32[j]); i++)
            ck_assert_double_le(fabs(tir_tensor_get(r16[j], i) - tir_tensor_get(r32[j], i)), 2e-2 * scale);
    }
    for (int j = 0; j < 3; j++) {
        tir_tensor_free(a16[j]);
        if (j < 2) tir_tensor_free(a32[j]);
        tir_tensor_free(r16[j]);
        tir_tensor_free(r32[j]);
    }
    tir_module_free(m16);
    tir_module_free(m32);
}
END_TEST

/* ---------------------------------------------------------------- calls and the C API */

START_TEST(test_calls) {
    /* the callee binds its own symbols (N <- 3*2, H <- 5) and reshapes with them */
    ck_assert_int_eq(gradcheck("func @inner(%a: f32[N, H], %w: f32[H]) -> f32[N] {\n"
                               "  %s = sum(mul(tanh(%a), %w), axes=[1])\n  return %s\n}\n"
                               "func @f(%x: f32[3, 2, 5], %w: f32[5]) -> f32[] {\n"
                               "  %y = call @inner(reshape(%x, shape=[6, 5]), %w)\n"
                               "  %l = sum(mul(%y, %y))\n  return %l\n}\n",
                               "f", -1, 1), 2);
    /* a value_and_grad definition checked against its grad_of; the wrt list is a subset */
    ck_assert_int_eq(gradcheck("func @f(%x: f32[4], %w: f32[4]) -> f32[] {\n"
                               "  %l = sum(mul(exp(%x), %w))\n  return %l\n}\n"
                               "func @g = value_and_grad(@f, wrt=[%w])\n",
                               "g", -1, 1), 1);
    /* second order: differentiate through a gradient program (d/dw of |d/dx f|^2) */
    ck_assert_int_eq(gradcheck("func @f(%x: f32[3], %w: f32[3]) -> f32[] {\n"
                               "  %l = sum(mul(sin(mul(%x, %w)), %w))\n  return %l\n}\n"
                               "func @fg = value_and_grad(@f, wrt=[%x])\n"
                               "func @h(%x: f32[3], %w: f32[3]) -> f32[] {\n"
                               "  %l, %gx = call @fg(%x, %w)\n"
                               "  %n = sum(mul(%gx, %gx))\n  return %n\n}\n",
                               "h", -1, 1), 2);
}
END_TEST

START_TEST(test_c_api) {
    tir_module *m = parse("func @f(%x: f32[3], %k: i32[3]) -> f32[] {\n"
                          "  %l = sum(mul(mul(%x, %x), cast(%k, dtype=f32)))\n  return %l\n}\n");
    tir_diag d;
    const char *wrt[1] = {"x"}, *bad[1] = {"k"};
    ck_assert_int_eq(tir_value_and_grad(m, "g", "f", 1, wrt, &d), TIR_OK);
    ck_assert_int_ne(tir_value_and_grad(m, "g2", "f", 1, bad, &d), TIR_OK); /* integer wrt */
    ck_assert_int_eq(tir_verify(m, &d), TIR_OK);
    ck_assert_int_eq(tir_func_num_results(m, "g"), 2);
    int64_t n = 3;
    double x[3] = {0.5, -2, 3}, k[3] = {1, 2, 3};
    tir_tensor *args[2] = {tensor(TIR_F32, 1, &n, x), tensor(TIR_I32, 1, &n, k)}, *res[2];
    run(m, "g", 2, args, 2, res);
    ck_assert_double_eq_tol(tir_tensor_get(res[0], 0), 0.25 + 8 + 27, 1e-5);
    for (int i = 0; i < 3; i++) ck_assert_double_eq_tol(tir_tensor_get(res[1], i), 2 * x[i] * k[i], 1e-5);
    for (int i = 0; i < 2; i++) tir_tensor_free(args[i]), tir_tensor_free(res[i]);
    /* the built function prints as an ordinary function and re-parses */
    char *text = tir_module_print(m);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_null(strstr(text, "value_and_grad"));
    tir_module *again = parse(text);
    tir_free(text);
    tir_module_free(again);
    tir_module_free(m);
}
END_TEST

START_TEST(test_unsupported_is_a_diagnostic) {
    /* the mean of 2^64 elements: its element count is no dim */
    tir_module *m = parse("func @f(%x: f32[4294967296, 4294967296]) -> f32[] {\n"
                          "  %l = mean(%x)\n  return %l\n}\n"
                          "func @g = value_and_grad(@f, wrt=[%x])\n");
    tir_diag d;
    ck_assert_int_eq(tir_pass_grad(m, &d), TIR_ERR_UNSUPPORTED);
    ck_assert_int_gt(d.line, 0);
    /* the definition is left as it was: bodiless, verifying, printing */
    const tir_func *g = tir_module_find(m, "g");
    ck_assert_ptr_nonnull(g->grad_of);
    ck_assert_int_eq(g->nops, 0);
    ck_assert_int_eq(tir_verify(m, &d), TIR_OK);
    char *text = tir_module_print(m);
    ck_assert_ptr_nonnull(strstr(text, "value_and_grad(@f"));
    tir_free(text);
    tir_module_free(m);
}
END_TEST

/* ---------------------------------------------------------------- training */


START_TEST(test_train_mlp) {
    const char *dir = getenv("TIR_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/examples/train_mlp.tir", dir ? dir : ".");
    char *src = tu_read_file(path);
    ck_assert_msg(src != NULL, "cannot read %s", path);
    tir_module *m = parse(src);
    free(src);
    grad_pass(m);
    /* synthetic data: 10 class prototypes, each sample its label's prototype plus noise */
    enum { B = 16, IN = 784, H = 256, C = 10 };
    int64_t dx[2] = {B, IN}, dl = B, dw1[2] = {H, IN}, db1 = H, dw2[2] = {C, H}, db2 = C;
    tir_tensor *x = tir_tensor_new(TIR_F32, 2, dx), *lab = tir_tensor_new(TIR_I32, 1, &dl);
    double *proto = malloc(sizeof(double) * C * IN);
    for (int i = 0; i < C * IN; i++) proto[i] = rnd(0.0, 1.0);
    for (int b = 0; b < B; b++) {
        int c = (int)(urand() * C) % C;
        tir_tensor_set(lab, b, c);
        for (int i = 0; i < IN; i++) tir_tensor_set(x, b * IN + i, proto[c * IN + i] + rnd(0, 0.3));
    }
    free(proto);
    tir_tensor *w[4] = {tir_tensor_new(TIR_F32, 2, dw1), tir_tensor_new(TIR_F32, 1, &db1),
                        tir_tensor_new(TIR_F32, 2, dw2), tir_tensor_new(TIR_F32, 1, &db2)};
    double scale[4] = {1 / sqrt(IN), 0.01, 1 / sqrt(H), 0.01};
    for (int j = 0; j < 4; j++)
        for (int64_t i = 0; i < tir_tensor_numel(w[j]); i++) tir_tensor_set(w[j], i, rnd(0.1, 1) * scale[j]);
    tir_tensor *lr = tir_tensor_new(TIR_F32, 0, NULL);
    tir_tensor_set(lr, 0, 0.05);
    double first = 0, last = 0;
    for (int step = 0; step < 8; step++) {
        tir_tensor *args[7] = {x, lab, w[0], w[1], w[2], w[3], lr}, *res[5];
        run(m, "sgd_step", 7, args, 5, res);
        double l = tir_tensor_get(res[0], 0);
        ck_assert(isfinite(l));
        if (getenv("TIR_TEST_VERBOSE")) fprintf(stderr, "step %d loss %g\n", step, l);
        if (step == 0) first = l;
        else ck_assert_msg(l < last, "loss rose at step %d: %g -> %g", step, last, l);
        last = l;
        tir_tensor_free(res[0]);
        for (int j = 0; j < 4; j++) {
            tir_tensor_free(w[j]);
            w[j] = res[j + 1];
        }
    }
    ck_assert_msg(last < 0.5 * first, "loss fell too little: %g -> %g", first, last);
    for (int j = 0; j < 4; j++) tir_tensor_free(w[j]);
    tir_tensor_free(x);
    tir_tensor_free(lab);
    tir_tensor_free(lr);
    tir_module_free(m);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("grad");
    TCase *tc = tcase_create("grad");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_unary);
    tcase_add_test(tc, test_binary_broadcast);
    tcase_add_test(tc, test_where_cast);
    tcase_add_test(tc, test_conventions_at_kinks);
    tcase_add_test(tc, test_reductions);
    tcase_add_test(tc, test_movement);
    tcase_add_test(tc, test_take_scatter);
    tcase_add_test(tc, test_matmul);
    tcase_add_test(tc, test_composites_gradcheck);
    tcase_add_test(tc, test_attention_gradcheck);
    tcase_add_test(tc, test_composite_rules_vs_decomposition);
    tcase_add_test(tc, test_bf16_close_to_f32);
    tcase_add_test(tc, test_calls);
    tcase_add_test(tc, test_c_api);
    tcase_add_test(tc, test_unsupported_is_a_diagnostic);
    tcase_add_test(tc, test_train_mlp);
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
