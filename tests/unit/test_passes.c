/* test_passes.c: the IR-to-IR passes (inline, decompose, simplify, and grad as a stage). Each
 * must keep the interpreter's results (interp(before) == interp(after) on random inputs), leave
 * a module that verifies, and print text that re-parses to the same printout. Simplify's rules
 * are checked one by one with the counts of what it did. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"
#include "testutil.h"

static tir_context *ctx;
static void setup(void) { ctx = tir_context_create(); }
static void teardown(void) { tir_context_destroy(ctx); }

static uint64_t rng = 3;

static tir_module *parse(const char *src) { return tu_parse(ctx, src); }

static char *read_example(const char *name) {
    char *s = tu_read_source("examples", name);
    ck_assert_msg(s != NULL, "cannot read examples/%s", name);
    return s;
}


typedef tir_status (*pass_fn)(tir_module *, tir_diag *);

static void apply(tir_module *m, pass_fn p, const char *name) {
    tir_diag d;
    tir_status st = p(m, &d);
    ck_assert_msg(st == TIR_OK, "%s: %s: %s", name, tir_status_name(st), d.msg);
    st = tir_verify(m, &d);
    ck_assert_msg(st == TIR_OK, "after %s the module does not verify: %s", name, d.msg);
}

/* the printout re-parses, and printing that gives the same text */
static void reparses(const tir_module *m) {
    char *text = tir_module_print(m);
    ck_assert_ptr_nonnull(text);
    tir_module *again = parse(text);
    char *text2 = tir_module_print(again);
    ck_assert_msg(strcmp(text, text2) == 0, "print(parse(print)) differs:\n%s\n---\n%s", text, text2);
    tir_free(text);
    tir_free(text2);
    tir_module_free(again);
}

static int count_ops(const tir_module *m, const char *func, unsigned flags, int code) {
    const tir_func *f = tir_module_find(m, func);
    ck_assert_ptr_nonnull(f);
    int n = 0;
    for (int k = 0; k < f->nops; k++)
        if ((flags && (tir_ops[f->ops[k]->code].flags & flags)) || (int)f->ops[k]->code == code) n++;
    return n;
}

/* interp(before) vs interp(after `passes`) for @func: equal within rtol of each result's scale */
static void preserves(const char *src, const char *func, const tir_bindings *b, bool grad_first,
                      const pass_fn *passes, const char *const *names, int npasses, double rtol) {
    tir_module *ref = parse(src), *m = parse(src);
    if (grad_first) {
        apply(ref, tir_pass_grad, "grad");
        apply(m, tir_pass_grad, "grad");
    }
    for (int i = 0; i < npasses; i++) {
        apply(m, passes[i], names[i]);
        reparses(m);
    }
    const tir_func *f = tir_module_find(ref, func);
    int np = f->nparams, nr = f->nres;
    tir_tensor *args[32], *r0[16], *r1[16];
    ck_assert_int_le(np, 32);
    ck_assert_int_le(nr, 16);
    tu_make_args(ref, func, b, args, &rng);
    tir_diag d;
    ck_assert_msg(tir_interpret(ref, func, np, args, nr, r0, &d) == TIR_OK, "before: %s", d.msg);
    ck_assert_msg(tir_interpret(m, func, np, args, nr, r1, &d) == TIR_OK, "after: %s", d.msg);
    for (int j = 0; j < nr; j++) {
        int64_t n = tir_tensor_numel(r0[j]);
        ck_assert_int_eq(n, tir_tensor_numel(r1[j]));
        double scale = 0;
        for (int64_t e = 0; e < n; e++) scale = fmax(scale, fabs(tir_tensor_get(r0[j], e)));
        ck_assert_msg(scale > 0 && isfinite(scale), "@%s result %d: degenerate scale %g", func, j, scale);
        for (int64_t e = 0; e < n; e++) {
            double x = tir_tensor_get(r0[j], e), y = tir_tensor_get(r1[j], e);
            ck_assert_msg(fabs(x - y) <= rtol * scale, "@%s result %d elem %lld: %g before, %g after",
                          func, j, (long long)e, x, y);
        }
        tir_tensor_free(r0[j]);
        tir_tensor_free(r1[j]);
    }
    for (int i = 0; i < np; i++) tir_tensor_free(args[i]);
    tir_module_free(ref);
    tir_module_free(m);
}

/* the stages the compiler runs after verify */
static const pass_fn pipeline[] = {tir_pass_inline, tir_pass_simplify, tir_pass_decompose, tir_pass_simplify};
static const char *const pipeline_names[] = {"inline", "simplify", "decompose", "simplify"};

/* ---------------------------------------------------------------- the examples */

START_TEST(test_examples_preserved) {
    tir_bindings b = {0};
    char *src;
    tir_bindings_set(&b, "B", 3);
    src = read_example("mlp.tir");
    preserves(src, "mlp", &b, false, pipeline, pipeline_names, 4, 1e-5);
    free(src);

    tir_bindings r = {0};
    tir_bindings_set(&r, "N", 3);
    tir_bindings_set(&r, "H", 16);
    src = read_example("rmsnorm.tir");
    preserves(src, "rmsnorm", &r, false, pipeline, pipeline_names, 4, 1e-2);
    preserves(src, "rmsnorm_op", &r, false, pipeline, pipeline_names, 4, 1e-2);
    free(src);

    tir_bindings l = {0};
    const char *ln[] = {"B", "T", "D", "Hq", "Hk", "I"};
    int64_t lv[] = {1, 3, 8, 2, 1, 5};
    for (int i = 0; i < 6; i++) tir_bindings_set(&l, ln[i], lv[i]);
    src = read_example("llama_block.tir");
    preserves(src, "block", &l, false, pipeline, pipeline_names, 4, 2e-2);
    free(src);

    tir_bindings t = {0};
    tir_bindings_set(&t, "B", 4);
    src = read_example("train_mlp.tir");
    preserves(src, "sgd_step", &t, true, pipeline, pipeline_names, 4, 1e-5);
    preserves(src, "loss_grad", &t, true, pipeline, pipeline_names, 4, 1e-5);
    free(src);
}
END_TEST

START_TEST(test_each_pass_alone) {
    char *src = read_example("train_mlp.tir");
    tir_bindings t = {0};
    tir_bindings_set(&t, "B", 2);
    for (int i = 0; i < 3; i++)
        preserves(src, "sgd_step", &t, true, &pipeline[i], &pipeline_names[i], 1, 1e-5);
    /* after the full pipeline nothing composite or call is left, and no grad definition */
    tir_module *m = parse(src);
    apply(m, tir_pass_grad, "grad");
    for (int i = 0; i < 4; i++) apply(m, pipeline[i], pipeline_names[i]);
    ck_assert_int_eq(count_ops(m, "sgd_step", TIR_F_COMPOSITE, TIR_OP_CALL), 0);
    ck_assert_int_eq(count_ops(m, "loss_grad", TIR_F_COMPOSITE, TIR_OP_CALL), 0);
    ck_assert_int_gt(count_ops(m, "sgd_step", 0, TIR_OP_MATMUL), 0);
    ck_assert_int_eq(tir_module_num_funcs(m), 3); /* functions stay after inlining */
    tir_module_free(m);
    free(src);
}
END_TEST

/* ---------------------------------------------------------------- inline */

START_TEST(test_inline_symbols) {
    /* the callee's N and H bind to the caller's B*T and 4; its reshape uses them */
    const char *src =
        "func @inner(%a: f32[N, H], %w: f32[H]) -> (f32[N*H], f32[N]) {\n"
        "  %f = reshape(mul(%a, %w), shape=[N*H])\n"
        "  %s = call @leaf(%a)\n"
        "  return %f, %s\n}\n"
        "func @leaf(%a: f32[M, K]) -> f32[M] {\n  %s = sum(exp(%a), axes=[1])\n  return %s\n}\n"
        "func @outer(%x: f32[B, T, 4], %w: f32[4]) -> (f32[B*T*4], f32[B*T]) {\n"
        "  %p, %q = call @inner(reshape(%x, shape=[B*T, 4]), %w)\n"
        "  %r = call @leaf(reshape(%x, shape=[B*T, 4]))\n"
        "  return %p, add(%q, %r)\n}\n";
    tir_bindings b = {0};
    tir_bindings_set(&b, "B", 2);
    tir_bindings_set(&b, "T", 3);
    const pass_fn p[1] = {tir_pass_inline};
    const char *const n[1] = {"inline"};
    preserves(src, "outer", &b, false, p, n, 1, 0);
    tir_module *m = parse(src);
    apply(m, tir_pass_inline, "inline");
    ck_assert_int_eq(count_ops(m, "outer", 0, TIR_OP_CALL), 0);
    ck_assert_int_eq(count_ops(m, "inner", 0, TIR_OP_CALL), 0);
    ck_assert_int_eq(count_ops(m, "outer", 0, TIR_OP_EXP), 2);
    ck_assert_ptr_nonnull(tir_module_find(m, "leaf"));
    tir_module_free(m);
}
END_TEST

START_TEST(test_inline_needs_grad_body) {
    tir_module *m = parse("func @f(%x: f32[3]) -> f32[] {\n  %l = sum(%x)\n  return %l\n}\n"
                          "func @g = value_and_grad(@f, wrt=[%x])\n"
                          "func @h(%x: f32[3]) -> f32[3] {\n  %l, %d = call @g(%x)\n  return %d\n}\n");
    tir_diag d;
    ck_assert_int_ne(tir_pass_inline(m, &d), TIR_OK);
    ck_assert_ptr_nonnull(strstr(d.msg, "@g"));
    /* a failed pass leaves the function as it was */
    ck_assert_int_eq(count_ops(m, "h", 0, TIR_OP_CALL), 1);
    ck_assert_int_eq(tir_verify(m, &d), TIR_OK);
    reparses(m);
    tir_module_free(m);
}
END_TEST

/* ---------------------------------------------------------------- simplify */

/* the sign of a zero is kept, as the interpreter computes it: for floats x + 0 is not x (for
 * x = -0 it is +0) but x + (-0) and x - 0 are; a sum of -0s accumulates from +0 */
START_TEST(test_simplify_signed_zero) {
    const char *src = "func @f(%x: f32[4], %i: i32[4]) -> (f32[4], f32[4], f32[4], f32[4], i32[4], f32[], f32[]) {\n"
                      "  %z = mul(%x, 0.0)\n"
                      "  %a = add(%z, 0.0)\n"   /* kept */
                      "  %b = add(-0.0, %z)\n"  /* identity */
                      "  %c = sub(%z, 0.0)\n"   /* identity */
                      "  %e = sub(%z, -0.0)\n"  /* kept: x - (-0) is x + 0 */
                      "  %j = add(%i, 0)\n"     /* identity for integers */
                      "  %s = sum(full(-0.0, shape=[3]))\n"
                      "  %m = mean(full(-0.0, shape=[3]))\n"
                      "  return recip(%a), recip(%b), recip(%c), recip(%e), %j, recip(%s), recip(%m)\n}\n";
    tir_module *m = parse(src);
    tir_simplify_stats st;
    tir_diag d;
    ck_assert_int_eq(tir_pass_simplify_stats(m, &st, &d), TIR_OK);
    ck_assert_int_eq(st.identities, 3);
    ck_assert_int_eq(count_ops(m, "f", 0, TIR_OP_ADD), 1);
    ck_assert_int_eq(count_ops(m, "f", 0, TIR_OP_SUB), 1);
    /* with x < 0: z = -0, and every result is exactly what the interpreter gives unsimplified */
    tir_module *ref = parse(src);
    int64_t four = 4;
    tir_tensor *args[2] = {tir_tensor_new(TIR_F32, 1, &four), tir_tensor_new(TIR_I32, 1, &four)};
    for (int i = 0; i < 4; i++) {
        tir_tensor_set(args[0], i, -1.0 - i);
        tir_tensor_set(args[1], i, i);
    }
    tir_tensor *want[7] = {0}, *got[7] = {0};
    ck_assert_int_eq(tir_interpret(ref, "f", 2, args, 7, want, &d), TIR_OK);
    ck_assert_int_eq(tir_interpret(m, "f", 2, args, 7, got, &d), TIR_OK);
    for (int r = 0; r < 7; r++) {
        for (int64_t i = 0; i < tir_tensor_numel(want[r]); i++) {
            double w = tir_tensor_get(want[r], i), g = tir_tensor_get(got[r], i);
            ck_assert_msg(w == g && signbit(w) == signbit(g), "result %d[%lld]: %g, simplified %g", r,
                          (long long)i, w, g);
        }
        tir_tensor_free(want[r]);
        tir_tensor_free(got[r]);
    }
    tir_tensor_free(args[0]);
    tir_tensor_free(args[1]);
    tir_module_free(ref);
    tir_module_free(m);
}
END_TEST

START_TEST(test_simplify_counts) {
    const char *src =
        "func @f(%x: f32[4], %y: f32[4]) -> f32[4] {\n"
        "  %a = add(%x, %y)\n"
        "  %b = add(%y, %x)\n"                 /* CSE: commutative */
        "  %c = mul(%a, %b)\n"
        "  %dead = exp(%x)\n"                  /* DCE */
        "  %e = sub(%c, 0.0)\n"                /* identity (x + 0 is not one for floats: -0 + 0 = +0) */
        "  %f = mul(1.0, %e)\n"                /* identity, constant on the left */
        "  %g = neg(neg(%f))\n"                /* identity */
        "  %h = add(full(2.0, shape=[4]), full(3.0, shape=[4]))\n" /* fold */
        "  %i = mul(%g, reshape(reshape(%h, shape=[2, 2]), shape=[4]))\n"
        "  return %i\n}\n";
    tir_module *m = parse(src);
    tir_simplify_stats st;
    tir_diag d;
    ck_assert_int_eq(tir_pass_simplify_stats(m, &st, &d), TIR_OK);
    ck_assert_int_eq(tir_verify(m, &d), TIR_OK);
    ck_assert_int_eq(st.cse, 1);
    ck_assert_int_ge(st.dce, 1);
    ck_assert_int_eq(st.identities, 3); /* x-0, 1*x, neg(neg(x)) */
    ck_assert_int_eq(st.folded, 3);     /* 2+3, and the two reshapes of the constant */
    /* left: add, mul, the constant 5, the final mul */
    ck_assert_int_eq(tir_module_find(m, "f")->nops, 4);
    ck_assert_int_eq(count_ops(m, "f", 0, TIR_OP_FULL), 1);
    const tir_func *f = tir_module_find(m, "f");
    double five = 0;
    for (int k = 0; k < f->nops; k++)
        if (f->ops[k]->code == TIR_OP_FULL) five = tir_attr_float(f->ops[k], "value", 0);
    ck_assert_double_eq(five, 5.0);
    reparses(m);
    /* a fixed point: a second run changes nothing */
    ck_assert_int_eq(tir_pass_simplify_stats(m, &st, &d), TIR_OK);
    ck_assert_int_eq(st.cse + st.dce + st.identities + st.folded, 0);
    tir_module_free(m);
    const pass_fn p[1] = {tir_pass_simplify};
    const char *const n[1] = {"simplify"};
    tir_bindings b = {0};
    preserves(src, "f", &b, false, p, n, 1, 0);
}
END_TEST

START_TEST(test_simplify_float_zero_kept) {
    /* x*0 is not 0 for inf/NaN floats; for integers it folds, and so does x - x */
    tir_module *m = parse("func @f(%x: f32[3], %k: i32[3]) -> (f32[3], i32[3], i32[3]) {\n"
                          "  %a = mul(%x, 0.0)\n  %b = mul(%k, 0)\n  %c = sub(%k, %k)\n"
                          "  return %a, %b, %c\n}\n");
    tir_diag d;
    ck_assert_int_eq(tir_pass_simplify(m, &d), TIR_OK);
    ck_assert_int_eq(count_ops(m, "f", 0, TIR_OP_MUL), 1);
    ck_assert_int_eq(count_ops(m, "f", 0, TIR_OP_SUB), 0);
    int64_t n = 3;
    tir_tensor *x = tir_tensor_new(TIR_F32, 1, &n), *k = tir_tensor_new(TIR_I32, 1, &n);
    tir_tensor_set(x, 0, INFINITY);
    tir_tensor_set(x, 1, NAN);
    tir_tensor_set(x, 2, 2);
    for (int i = 0; i < 3; i++) tir_tensor_set(k, i, 7 + i);
    tir_tensor *args[2] = {x, k}, *res[3];
    ck_assert_int_eq(tir_interpret(m, "f", 2, args, 3, res, &d), TIR_OK);
    ck_assert(isnan(tir_tensor_get(res[0], 0)) && isnan(tir_tensor_get(res[0], 1)));
    ck_assert_double_eq(tir_tensor_get(res[0], 2), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq(tir_tensor_get(res[1], i), 0);
        ck_assert_double_eq(tir_tensor_get(res[2], i), 0);
    }
    for (int i = 0; i < 3; i++) tir_tensor_free(res[i]);
    tir_tensor_free(x);
    tir_tensor_free(k);
    tir_module_free(m);
}
END_TEST

START_TEST(test_simplify_folds_like_interpreter) {
    /* folded constants round like the interpreter: bf16 per op, integer division truncating,
     * comparisons to bool, casts saturating */
    const char *src =
        "func @f(%x: bf16[2]) -> (bf16[2], i32[2], bool[2], i8[2]) {\n"
        "  %a = mul(add(%x, div(full(1.0, shape=[2], dtype=bf16), full(3.0, shape=[2], dtype=bf16))), 1.0)\n"
        "  %b = div(full(-7, shape=[2], dtype=i32), full(2, shape=[2], dtype=i32))\n"
        "  %c = lt(full(1.5, shape=[2]), full(2.5, shape=[2]))\n"
        "  %e = cast(full(300.0, shape=[2]), dtype=i8)\n"
        "  return %a, %b, %c, %e\n}\n";
    tir_module *m = parse(src);
    tir_simplify_stats st;
    tir_diag d;
    ck_assert_int_eq(tir_pass_simplify_stats(m, &st, &d), TIR_OK);
    ck_assert_int_ge(st.folded, 4);
    ck_assert_int_eq(count_ops(m, "f", 0, TIR_OP_DIV), 0);
    ck_assert_int_eq(count_ops(m, "f", 0, TIR_OP_CAST), 0);
    tir_module_free(m);
    const pass_fn p[1] = {tir_pass_simplify};
    const char *const n[1] = {"simplify"};
    tir_bindings b = {0};
    preserves(src, "f", &b, false, p, n, 1, 0);
}
END_TEST

START_TEST(test_simplify_keeps_shapes) {
    /* x + zeros of a bigger shape broadcasts: not an identity; a dead call goes */
    const char *src = "func @g(%x: f32[3]) -> f32[] {\n  %s = sum(%x)\n  return %s\n}\n"
                      "func @f(%x: f32[3]) -> f32[2, 3] {\n"
                      "  %unused = call @g(%x)\n"
                      "  %y = add(%x, full(0.0, shape=[2, 3]))\n  return %y\n}\n";
    tir_module *m = parse(src);
    tir_diag d;
    ck_assert_int_eq(tir_pass_simplify(m, &d), TIR_OK);
    ck_assert_int_eq(count_ops(m, "f", 0, TIR_OP_ADD), 1);
    ck_assert_int_eq(count_ops(m, "f", 0, TIR_OP_CALL), 0);
    tir_module_free(m);
    const pass_fn p[1] = {tir_pass_simplify};
    const char *const n[1] = {"simplify"};
    tir_bindings b = {0};
    preserves(src, "f", &b, false, p, n, 1, 0);
}
END_TEST

/* ---------------------------------------------------------------- decompose */

START_TEST(test_decompose_all_composites) {
    const char *src =
        "func @f(%x: f32[2, 3, 8], %w: f32[8], %bb: f32[8], %lw: f32[5, 8], %c: f32[3, 8], %s: f32[3, 8],\n"
        "        %t: i32[6]) -> (f32[2, 3, 8], f32[], f32[2, 3, 5], f32[2, 3, 8]) {\n"
        "  %n = layernorm(rmsnorm(%x, %w), %w, %bb)\n"
        "  %r = rope(softmax(%n), %c, %s)\n"
        "  %lg = linear(%r, %lw, full(0.5, shape=[5]))\n"
        "  %ce = cross_entropy(reshape(log_softmax(%lg), shape=[6, 5]), %t)\n"
        "  %q = reshape(%r, shape=[2, 1, 3, 8])\n"
        "  %a = reshape(attention(%q, %q, %q, causal=true), shape=[2, 3, 8])\n"
        "  return %n, %ce, %lg, %a\n}\n";
    tir_bindings b = {0};
    const pass_fn p[2] = {tir_pass_decompose, tir_pass_simplify};
    const char *const n[2] = {"decompose", "simplify"};
    preserves(src, "f", &b, false, p, n, 2, 1e-5);
    tir_module *m = parse(src);
    apply(m, tir_pass_decompose, "decompose");
    ck_assert_int_eq(count_ops(m, "f", TIR_F_COMPOSITE, -1), 0);
    tir_module_free(m);
}
END_TEST

/* ---------------------------------------------------------------- grad as a stage */

START_TEST(test_grad_stage_prints) {
    tir_module *m = parse("func @loss(%w: f32[4, 4], %x: f32[8, 4]) -> f32[] {\n"
                          "  %l = mean(mul(linear(%x, %w), 0.5))\n  return %l\n}\n"
                          "func @loss_grad = value_and_grad(@loss, wrt=[%w])\n");
    apply(m, tir_pass_grad, "grad");
    reparses(m);
    const tir_func *g = tir_module_find(m, "loss_grad");
    ck_assert_ptr_null(g->grad_of);
    ck_assert_int_eq(g->nres, 2);
    apply(m, tir_pass_simplify, "simplify");
    reparses(m);
    tir_module_free(m);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("passes");
    TCase *tc = tcase_create("passes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_examples_preserved);
    tcase_add_test(tc, test_each_pass_alone);
    tcase_add_test(tc, test_inline_symbols);
    tcase_add_test(tc, test_inline_needs_grad_body);
    tcase_add_test(tc, test_simplify_counts);
    tcase_add_test(tc, test_simplify_signed_zero);
    tcase_add_test(tc, test_simplify_float_zero_kept);
    tcase_add_test(tc, test_simplify_folds_like_interpreter);
    tcase_add_test(tc, test_simplify_keeps_shapes);
    tcase_add_test(tc, test_decompose_all_composites);
    tcase_add_test(tc, test_grad_stage_prints);
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
