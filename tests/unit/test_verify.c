/* test_verify.c: the module verifier (ir/verify.c) on IR built by hand through ir/module.c:
 * well-formed modules pass (including value_and_grad definitions without a body), and each kind
 * of breakage (recursion, use before definition, foreign values, return type mismatch, stale
 * result types, bad value_and_grad definitions, calls out of the module) is a TIR_ERR_TYPE
 * diagnostic that says what is wrong. Broken IR is made by editing valid IR the way a buggy
 * pass would. */
#include <check.h>
#include <stdio.h>

#include "ir.h"

static tir_context *ctx;
static tir_module *mod;
static const tir_loc L0 = {0, 0};

static void setup(void) {
    ctx = tir_context_create();
    mod = tir_module_new(ctx);
}

static void teardown(void) {
    tir_module_free(mod);
    tir_context_destroy(ctx);
}

static tir_type T(const char *s) {
    tir_type t;
    memset(&t, 0, sizeof t);
    const char *lb = strchr(s, '[');
    ck_assert(tir_dtype_from_name(s, (size_t)(lb - s), &t.dtype));
    const char *p = lb + 1, *rb = strrchr(s, ']');
    while (p < rb) {
        const char *e = p;
        while (e < rb && *e != ',') e++;
        const char *err = NULL;
        t.dims[t.rank] = tir_dim_parse(ctx, p, (size_t)(e - p), &err);
        ck_assert_ptr_nonnull(t.dims[t.rank]);
        t.rank++;
        p = e < rb ? e + 1 : e;
    }
    return t;
}

static tir_func *func(const char *name) {
    tir_diag d;
    tir_func *f = tir_func_new(mod, name, L0, &d);
    ck_assert_msg(f != NULL, "%s", d.msg);
    return f;
}

static tir_value *param(tir_func *f, const char *name, const char *type) {
    tir_type t = T(type);
    tir_value *v = tir_func_add_param(f, name, &t, L0);
    ck_assert_ptr_nonnull(v);
    return v;
}

static tir_value *op(tir_func *f, tir_opcode code, int nin, tir_value *const *in, int na,
                     const tir_attr_value *a, tir_func *callee) {
    tir_diag d;
    tir_op *o = tir_func_append_op(f, code, nin, in, na, a, callee, (tir_loc){f->nops + 2, 3}, &d);
    ck_assert_msg(o != NULL, "%s", d.msg);
    return o->nout ? o->out[0] : NULL;
}

static void ret(tir_func *f, int n, tir_value *const *res, const char *const *types) {
    tir_type t[8];
    for (int i = 0; i < n; i++) t[i] = T(types[i]);
    tir_func_set_ret(f, n, t);
    if (res) tir_func_set_results(f, n, res);
}

static void expect_ok(int line) {
    tir_diag d;
    memset(&d, 0, sizeof d);
    tir_status s = tir_verify(mod, &d);
    ck_assert_msg(s == TIR_OK, "line %d: verify failed: %s", line, d.msg);
}

static void expect_bad(int line, const char *k1, const char *k2) {
    tir_diag d;
    memset(&d, 0, sizeof d);
    tir_status s = tir_verify(mod, &d);
    ck_assert_msg(s == TIR_ERR_TYPE, "line %d: verify gave %d (%s)", line, s, d.msg);
    ck_assert_msg(!k1 || strstr(d.msg, k1), "line %d: '%s' lacks '%s'", line, d.msg, k1);
    ck_assert_msg(!k2 || strstr(d.msg, k2), "line %d: '%s' lacks '%s'", line, d.msg, k2);
}

#define OKV() expect_ok(__LINE__)
#define BAD(k1, k2) expect_bad(__LINE__, k1, k2)
#define V(...) ((tir_value *[]){__VA_ARGS__})
#define S(...) ((const char *[]){__VA_ARGS__})

/* @mlp(%x: f32[B, 8], %w: f32[4, 8]) -> f32[B, 4] { relu(linear(x, w)) } */
static tir_func *mlp(const char *name) {
    tir_func *f = func(name);
    tir_value *x = param(f, "x", "f32[B, 8]"), *w = param(f, "w", "f32[4, 8]");
    tir_value *h = op(f, TIR_OP_LINEAR, 2, V(x, w), 0, NULL, NULL);
    tir_value *y = op(f, TIR_OP_RELU, 1, V(h), 0, NULL, NULL);
    ret(f, 1, V(y), S("f32[B, 4]"));
    return f;
}

/* @loss(%w: f32[4, 8], %x: f32[N, 8], %t: i32[N]) -> f32[] */
static tir_func *loss(void) {
    tir_func *f = func("loss");
    tir_value *w = param(f, "w", "f32[4, 8]"), *x = param(f, "x", "f32[N, 8]"), *t = param(f, "t", "i32[N]");
    tir_value *lg = op(f, TIR_OP_LINEAR, 2, V(x, w), 0, NULL, NULL);
    tir_value *l = op(f, TIR_OP_CROSS_ENTROPY, 2, V(lg, t), 0, NULL, NULL);
    ret(f, 1, V(l), S("f32[]"));
    return f;
}

START_TEST(test_valid) {
    OKV(); /* the empty module */
    tir_func *m = mlp("mlp");
    OKV();
    /* a caller binding B to 2*M */
    tir_func *c = func("caller");
    tir_value *x = param(c, "x", "f32[2*M, 8]"), *w = param(c, "w", "f32[4, 8]");
    tir_value *y = op(c, TIR_OP_CALL, 2, V(x, w), 0, NULL, m);
    tir_value *s = op(c, TIR_OP_SUM, 1, V(y), 0, NULL, NULL);
    ret(c, 1, V(s), S("f32[]"));
    OKV();
    /* a value_and_grad definition has no body until the grad pass: valid */
    loss();
    tir_diag d;
    tir_func *g = tir_func_new_grad_def(mod, "loss_grad", "loss", 1, S("w"), L0, &d);
    ck_assert_msg(g != NULL, "%s", d.msg);
    OKV();
    /* and it can be called like any function */
    tir_func *step = func("step");
    tir_value *sw = param(step, "w", "f32[4, 8]"), *sx = param(step, "x", "f32[16, 8]"),
              *st = param(step, "t", "i32[16]");
    tir_op *o = tir_func_append_op(step, TIR_OP_CALL, 3, V(sw, sx, st), 0, NULL, g, L0, &d);
    ck_assert_msg(o != NULL, "%s", d.msg);
    ck_assert_int_eq(o->nout, 2);
    ret(step, 2, o->out, S("f32[]", "f32[4, 8]"));
    OKV();
}
END_TEST

START_TEST(test_recursion) {
    /* @a calls @b calls @a */
    tir_func *a = func("a");
    tir_value *ax = param(a, "x", "f32[4]");
    tir_type t = T("f32[4]");
    tir_func_set_ret(a, 1, &t);
    tir_func *b = func("b");
    tir_value *bx = param(b, "x", "f32[4]");
    tir_value *by = op(b, TIR_OP_CALL, 1, V(bx), 0, NULL, a);
    ret(b, 1, V(by), S("f32[4]"));
    tir_value *ay = op(a, TIR_OP_CALL, 1, V(ax), 0, NULL, b);
    tir_func_set_results(a, 1, V(ay));
    BAD("recursion", "@a -> @b -> @a");

    /* direct recursion */
    teardown();
    setup();
    tir_func *r = func("r");
    tir_value *rx = param(r, "x", "f32[N]");
    tir_func_set_ret(r, 1, (tir_type[]){T("f32[N]")});
    tir_value *ry = op(r, TIR_OP_CALL, 1, V(rx), 0, NULL, r);
    tir_func_set_results(r, 1, V(ry));
    BAD("recursion", "@r -> @r");

    /* a value_and_grad definition that its own function calls is recursion too */
    teardown();
    setup();
    tir_func *l = func("l");
    tir_value *lw = param(l, "w", "f32[]");
    tir_func_set_ret(l, 1, (tir_type[]){T("f32[]")});
    tir_diag d;
    tir_func *g = tir_func_new_grad_def(mod, "lg", "l", 1, S("w"), L0, &d);
    ck_assert_msg(g != NULL, "%s", d.msg);
    tir_diag d2;
    tir_op *o = tir_func_append_op(l, TIR_OP_CALL, 1, V(lw), 0, NULL, g, L0, &d2);
    ck_assert_msg(o != NULL, "%s", d2.msg);
    tir_func_set_results(l, 1, o->out);
    BAD("recursion", "@l -> @lg -> @l");
}
END_TEST

START_TEST(test_ssa) {
    tir_func *f = mlp("f");
    OKV();
    /* swap the two ops: relu now uses linear's result before it is defined */
    tir_op *tmp = f->ops[0];
    f->ops[0] = f->ops[1];
    f->ops[1] = tmp;
    BAD("used before it is defined", "relu");
    f->ops[1] = f->ops[0];
    f->ops[0] = tmp;
    OKV();
    /* a value no op defines */
    tir_type t = T("f32[B, 4]");
    tir_value *ghost = tir_value_new(f, &t);
    f->ops[1]->in[0] = ghost;
    BAD("used before it is defined", NULL);
    f->ops[1]->in[0] = f->ops[0]->out[0];
    OKV();
    /* an op listed twice defines its result twice */
    tir_op *ops2[3] = {f->ops[0], f->ops[0], f->ops[1]};
    tir_op **saved = f->ops;
    int n = f->nops;
    f->ops = ops2;
    f->nops = 3;
    BAD("defined twice", NULL);
    f->ops = saved;
    f->nops = n;
    /* a missing operand */
    f->ops[1]->in[0] = NULL;
    BAD("operand 0 is missing", NULL);
    f->ops[1]->in[0] = f->ops[0]->out[0];
    /* a value of another function used as a result */
    tir_func *g = mlp("g");
    tir_func_set_results(f, 1, g->results);
    BAD("belongs to another function", "@g");
    tir_func_set_results(f, 1, V(f->ops[1]->out[0]));
    OKV();
}
END_TEST

START_TEST(test_return_mismatch) {
    tir_func *f = func("f");
    tir_value *x = param(f, "x", "bf16[N, H]");
    tir_value *y = op(f, TIR_OP_CAST, 1, V(x), 1, (tir_attr_value[]){tir_a_dtype("dtype", TIR_F32)}, NULL);
    ret(f, 1, V(y), S("bf16[N, H]"));
    BAD("return type mismatch: declared bf16[N, H], returned f32[N, H]", "@f");
    ret(f, 1, V(y), S("f32[N, H]"));
    OKV();
    ret(f, 2, NULL, S("f32[N, H]", "f32[]"));
    BAD("declares 2 results, returns 1", NULL);
    /* the diagnostic points at the op that made the value */
    ret(f, 1, V(y), S("f32[H, N]"));
    tir_diag d;
    ck_assert_int_eq(tir_verify(mod, &d), TIR_ERR_TYPE);
    ck_assert_int_eq(d.line, y->def->loc.line);
}
END_TEST

START_TEST(test_stale_types) {
    tir_func *f = mlp("f");
    /* a pass that changed an op but left its result type behind */
    f->ops[0]->out[0]->type = T("f32[B, 5]");
    BAD("inference gives f32[B, 4]", "linear");
    f->ops[0]->out[0]->type = T("f32[B, 4]");
    OKV();
    /* an operand swapped for one of another shape: re-inference itself fails */
    tir_value *x = f->params[0];
    f->ops[1]->in[0] = x;
    BAD("relu", "f32[B, 4]");
}
END_TEST

START_TEST(test_calls) {
    tir_func *m = mlp("m");
    tir_func *c = func("c");
    tir_value *x = param(c, "x", "f32[3, 8]"), *w = param(c, "w", "f32[4, 8]");
    tir_value *y = op(c, TIR_OP_CALL, 2, V(x, w), 0, NULL, m);
    ret(c, 1, V(y), S("f32[3, 4]"));
    OKV();
    /* an argument that no longer fits the callee's signature */
    x->type = T("f32[3, 9]");
    BAD("argument 0 of @m is f32[3, 9]", "f32[B, 8]");
    x->type = T("f32[3, 8]");
    OKV();
    /* a callee that is not in this module */
    tir_module *other = tir_module_new(ctx);
    tir_diag d;
    tir_func *o = tir_func_new(other, "m", L0, &d);
    tir_type ot[2] = {T("f32[B, 8]"), T("f32[4, 8]")};
    ck_assert_ptr_nonnull(tir_func_add_param(o, "x", &ot[0], L0));
    ck_assert_ptr_nonnull(tir_func_add_param(o, "w", &ot[1], L0));
    tir_func_set_ret(o, 1, (tir_type[]){T("f32[B, 4]")});
    c->ops[0]->callee = o;
    BAD("no such function", "@m");
    c->ops[0]->callee = m;
    tir_module_free(other);
    OKV();
    /* two functions of one name */
    tir_func *z = func("z");
    tir_value *zx = param(z, "x", "f32[]");
    ret(z, 1, V(zx), S("f32[]"));
    OKV();
    z->name = "c";
    BAD("@c is defined twice", NULL);
}
END_TEST

START_TEST(test_grad_defs) {
    tir_func *l = loss();
    tir_diag d;
    tir_func *g = tir_func_new_grad_def(mod, "g", "loss", 2, S("w", "x"), L0, &d);
    ck_assert_msg(g != NULL, "%s", d.msg);
    OKV();
    /* wrt an int parameter */
    g->wrt[1] = 2;
    BAD("wrt %t must be a float tensor", "i32[N]");
    /* wrt out of range */
    g->wrt[1] = 3;
    BAD("wrt index 3 is not a parameter", NULL);
    /* repeated wrt */
    g->wrt[1] = 0;
    BAD("%w appears twice", NULL);
    g->wrt[1] = 1;
    OKV();
    /* a declared gradient type that is not the parameter's */
    tir_type keep = g->ret[2];
    g->ret[2] = T("f32[N, 9]");
    BAD("gradient 1 is f32[N, 9], expected f32[N, 8]", NULL);
    g->ret[2] = keep;
    OKV();
    /* grad_of that does not return one float scalar */
    tir_func *h = mlp("h");
    g->grad_of = h;
    BAD("must return one float scalar", "@h");
    g->grad_of = l;
    OKV();
    /* grad_of outside the module */
    tir_module *other = tir_module_new(ctx);
    tir_func *o = tir_func_new(other, "loss", L0, &d);
    g->grad_of = o;
    BAD("not in this module", NULL);
    g->grad_of = l;
    tir_module_free(other);
    /* parameters that no longer mirror grad_of's */
    g->params[1]->type = T("f32[N, 7]");
    BAD("parameter 1 is f32[N, 7]", "f32[N, 8]");
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("verify");
    TCase *tc = tcase_create("verify");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_valid);
    tcase_add_test(tc, test_recursion);
    tcase_add_test(tc, test_ssa);
    tcase_add_test(tc, test_return_mismatch);
    tcase_add_test(tc, test_stale_types);
    tcase_add_test(tc, test_calls);
    tcase_add_test(tc, test_grad_defs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
