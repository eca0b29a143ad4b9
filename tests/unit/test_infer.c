/* test_infer.c: shape and dtype inference of every op (ir/infer.c), through tir_func_append_op
 * as the frontend and passes use it: result types of each op class, including symbolic dims,
 * and that each class of error is a TIR_ERR_TYPE diagnostic naming the op and the problem.
 * Expected types are written out by hand as .tir type text and parsed, so the comparison is
 * against an independent statement of the rule, not against the code under test. */
#include <check.h>
#include <stdio.h>

#include "ir.h"

static tir_context *ctx;
static tir_module *mod;
static tir_func *fn;
static int nparam;
static const tir_loc L0 = {0, 0};

static void setup(void) {
    ctx = tir_context_create();
    mod = tir_module_new(ctx);
    tir_diag d;
    fn = tir_func_new(mod, "f", L0, &d);
    nparam = 0;
    ck_assert_ptr_nonnull(fn);
}

static void teardown(void) {
    tir_module_free(mod);
    tir_context_destroy(ctx);
}

/* "f32[B*T, 4]" -> a type */
static tir_type T(const char *s) {
    tir_type t;
    memset(&t, 0, sizeof t);
    const char *lb = strchr(s, '[');
    ck_assert_ptr_nonnull(lb);
    ck_assert_msg(tir_dtype_from_name(s, (size_t)(lb - s), &t.dtype), "bad dtype in %s", s);
    const char *p = lb + 1;
    const char *rb = strrchr(s, ']');
    while (p < rb) {
        const char *e = p;
        while (e < rb && *e != ',') e++;
        const char *err = NULL;
        const tir_dim *dm = tir_dim_parse(ctx, p, (size_t)(e - p), &err);
        ck_assert_msg(dm != NULL, "bad dim in %s: %s", s, err ? err : "?");
        t.dims[t.rank++] = dm;
        p = e < rb ? e + 1 : e;
    }
    return t;
}

static const tir_dim *D(const char *s) {
    const char *err = NULL;
    const tir_dim *d = tir_dim_parse(ctx, s, strlen(s), &err);
    ck_assert_msg(d != NULL, "bad dim %s", s);
    return d;
}

static tir_value *P(const char *type) {
    char name[16];
    snprintf(name, sizeof name, "p%d", nparam++);
    tir_type t = T(type);
    tir_value *v = tir_func_add_param(fn, name, &t, L0);
    ck_assert_ptr_nonnull(v);
    return v;
}

static char *tstr(const tir_type *t) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    tir_type_print(t, buf[k], sizeof buf[k]);
    return buf[k];
}

/* builds an op that must type-check; returns its op */
static tir_op *ok_op(int line, tir_opcode code, int nin, tir_value **in, int na, const tir_attr_value *a,
                     tir_func *callee) {
    tir_diag d;
    memset(&d, 0, sizeof d);
    tir_op *o = tir_func_append_op(fn, code, nin, in, na, a, callee, L0, &d);
    ck_assert_msg(o != NULL, "line %d: %s failed: %s", line, tir_ops[code].name, d.msg);
    return o;
}

static void expect_type(int line, const tir_value *v, const char *want) {
    tir_type w = T(want);
    ck_assert_msg(tir_type_equal(&v->type, &w), "line %d: got %s, want %s", line, tstr(&v->type),
                  tstr(&w));
}

/* the op must fail with TIR_ERR_TYPE and a message holding both key phrases */
static void expect_err(int line, tir_opcode code, int nin, tir_value **in, int na, const tir_attr_value *a,
                       tir_func *callee, const char *k1, const char *k2) {
    tir_diag d;
    memset(&d, 0, sizeof d);
    int before = fn->nops;
    tir_op *o = tir_func_append_op(fn, code, nin, in, na, a, callee, L0, &d);
    ck_assert_msg(o == NULL, "line %d: %s should have failed, gave %s", line, tir_ops[code].name,
                  o && o->nout ? tstr(&o->out[0]->type) : "no result");
    ck_assert_msg(d.status == TIR_ERR_TYPE, "line %d: status %d (%s)", line, d.status, d.msg);
    ck_assert_msg(strstr(d.msg, tir_ops[code].name) != NULL, "line %d: '%s' does not name the op", line, d.msg);
    ck_assert_msg(!k1 || strstr(d.msg, k1), "line %d: '%s' lacks '%s'", line, d.msg, k1);
    ck_assert_msg(!k2 || strstr(d.msg, k2), "line %d: '%s' lacks '%s'", line, d.msg, k2);
    ck_assert_int_eq(fn->nops, before);
}

/* one-result op with these operands/attrs must give `want` */
#define OK(want, code, nin, in, na, a) \
    expect_type(__LINE__, ok_op(__LINE__, code, nin, in, na, a, NULL)->out[0], want)
#define ERR(code, nin, in, na, a, k1, k2) expect_err(__LINE__, code, nin, in, na, a, NULL, k1, k2)
#define V(...) ((tir_value *[]){__VA_ARGS__})
#define A(...) ((tir_attr_value[]){__VA_ARGS__})
#define INTS(name, ...) \
    tir_a_ints(mod, name, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})

/* ------------------------------------------------------------------ helpers */

START_TEST(test_norm_axis) {
    int ax = -7;
    ck_assert(tir_norm_axis(-1, 3, &ax));
    ck_assert_int_eq(ax, 2);
    ck_assert(tir_norm_axis(0, 3, &ax));
    ck_assert_int_eq(ax, 0);
    ck_assert(tir_norm_axis(-3, 3, &ax));
    ck_assert_int_eq(ax, 0);
    ck_assert(!tir_norm_axis(3, 3, &ax));
    ck_assert(!tir_norm_axis(-4, 3, &ax));
    ck_assert(!tir_norm_axis(0, 0, &ax));
    ck_assert(!tir_norm_axis(INT64_MIN, 3, &ax));
}
END_TEST

START_TEST(test_broadcast_shapes) {
    tir_type a = T("f32[4, 1, 3]"), b = T("f32[5, 1]"), r, w = T("f32[4, 5, 3]");
    ck_assert(tir_broadcast_shapes(ctx, &a, &b, &r));
    ck_assert(tir_type_equal(&r, &w));
    a = T("f32[B, 1]"), b = T("f32[T]"), w = T("f32[B, T]");
    ck_assert(tir_broadcast_shapes(ctx, &a, &b, &r));
    ck_assert(tir_type_equal(&r, &w));
    a = T("f32[4, 3]"), b = T("f32[5]");
    ck_assert(!tir_broadcast_shapes(ctx, &a, &b, &r));
    a = T("f32[N]"), b = T("f32[M]");
    ck_assert(!tir_broadcast_shapes(ctx, &a, &b, &r));
    /* the output may alias an input */
    a = T("f32[1, 3]"), b = T("f32[2, 1]"), w = T("f32[2, 3]");
    ck_assert(tir_broadcast_shapes(ctx, &a, &b, &a));
    ck_assert(tir_type_equal(&a, &w));
}
END_TEST

/* ------------------------------------------------------------------ elementwise */

START_TEST(test_unary) {
    tir_value *x = P("bf16[N, 4]"), *i = P("i32[3]"), *b = P("bool[2]");
    OK("bf16[N, 4]", TIR_OP_EXP, 1, V(x), 0, NULL);
    OK("i32[3]", TIR_OP_NEG, 1, V(i), 0, NULL);
    OK("i32[3]", TIR_OP_RELU, 1, V(i), 0, NULL);
    OK("bool[2]", TIR_OP_NOT, 1, V(b), 0, NULL);
    ERR(TIR_OP_EXP, 1, V(i), 0, NULL, "float", "i32[3]");
    ERR(TIR_OP_NEG, 1, V(b), 0, NULL, "numeric", "bool[2]");
    ERR(TIR_OP_NOT, 1, V(x), 0, NULL, "bool", "bf16[N, 4]");
    ERR(TIR_OP_EXP, 2, V(x, x), 0, NULL, "expects 1 operand", "found 2");
    OK("bf16[N, 4]", TIR_OP_GELU, 1, V(x), 1, A(tir_a_str("approximate", "tanh")));
    ERR(TIR_OP_GELU, 1, V(x), 1, A(tir_a_str("approximate", "fast")), "approximate", "\"fast\"");
    ERR(TIR_OP_GELU, 1, V(x), 1, A(tir_a_int("approximate", 1)), "'approximate' must be a string",
        "found an int");
    ERR(TIR_OP_EXP, 1, V(x), 1, A(tir_a_int("axis", 1)), "unknown attribute 'axis'", "no attributes");
}
END_TEST

START_TEST(test_binary) {
    tir_value *a = P("f32[4, 1, 3]"), *b = P("f32[5, 1]"), *c = P("f32[4, 3]"), *d = P("f32[5]");
    tir_value *s1 = P("f32[B, 1]"), *s2 = P("f32[T]"), *n = P("f32[N]"), *m = P("f32[M]");
    tir_value *h = P("bf16[4, 3]"), *i = P("i32[4, 3]"), *bo = P("bool[4, 3]"), *sc = P("f32[]");
    OK("f32[4, 5, 3]", TIR_OP_ADD, 2, V(a, b), 0, NULL);
    OK("f32[B, T]", TIR_OP_MUL, 2, V(s1, s2), 0, NULL);
    OK("f32[N]", TIR_OP_SUB, 2, V(n, n), 0, NULL);
    OK("f32[4, 3]", TIR_OP_DIV, 2, V(c, sc), 0, NULL);
    OK("i32[4, 3]", TIR_OP_MAXIMUM, 2, V(i, i), 0, NULL);
    OK("bool[4, 3]", TIR_OP_LT, 2, V(c, c), 0, NULL);
    OK("bool[4, 3]", TIR_OP_EQ, 2, V(i, i), 0, NULL);
    OK("bool[4, 3]", TIR_OP_AND, 2, V(bo, bo), 0, NULL);
    ERR(TIR_OP_ADD, 2, V(c, d), 0, NULL, "cannot broadcast f32[4, 3] with f32[5]", NULL);
    ERR(TIR_OP_ADD, 2, V(n, m), 0, NULL, "cannot broadcast", "f32[M]");
    ERR(TIR_OP_ADD, 2, V(c, h), 0, NULL, "dtypes differ", "bf16[4, 3]");
    ERR(TIR_OP_ADD, 2, V(i, c), 0, NULL, "dtypes differ", "no implicit promotion");
    ERR(TIR_OP_POW, 2, V(i, i), 0, NULL, "float", "i32[4, 3]");
    ERR(TIR_OP_AND, 2, V(c, c), 0, NULL, "bool", NULL);
    ERR(TIR_OP_LT, 2, V(bo, bo), 0, NULL, "numeric", NULL);
    ERR(TIR_OP_ADD, 1, V(c), 0, NULL, "expects 2 operands", "found 1");
}
END_TEST

START_TEST(test_where_cast) {
    tir_value *c = P("bool[4, 1]"), *a = P("f32[1, 3]"), *b = P("f32[4, 3]"), *fc = P("f32[4, 1]");
    tir_value *h = P("bf16[4, 3]"), *x = P("bf16[N, H]");
    OK("f32[4, 3]", TIR_OP_WHERE, 3, V(c, a, b), 0, NULL);
    OK("f32[4, 3]", TIR_OP_WHERE, 3, V(c, a, a), 0, NULL);
    ERR(TIR_OP_WHERE, 3, V(fc, a, b), 0, NULL, "condition must be bool", "f32[4, 1]");
    ERR(TIR_OP_WHERE, 3, V(c, a, h), 0, NULL, "dtypes differ", NULL);
    OK("f32[N, H]", TIR_OP_CAST, 1, V(x), 1, A(tir_a_dtype("dtype", TIR_F32)));
    OK("i8[N, H]", TIR_OP_CAST, 1, V(x), 1, A(tir_a_dtype("dtype", TIR_I8)));
    ERR(TIR_OP_CAST, 1, V(x), 0, NULL, "missing required attribute 'dtype'", NULL);
    ERR(TIR_OP_CAST, 1, V(x), 1, A(tir_a_int("dtype", 1)), "'dtype' must be a dtype", "found an int");
    ERR(TIR_OP_CAST, 1, V(x), 2, A(tir_a_dtype("dtype", TIR_F32), tir_a_dtype("dtype", TIR_F16)),
        "'dtype' given twice", NULL);
}
END_TEST

/* ------------------------------------------------------------------ reductions */

START_TEST(test_reduce) {
    tir_value *x = P("f32[2, 3, 4]"), *i = P("i32[B, T]"), *v = P("f32[7]"), *s = P("f32[]");
    OK("f32[]", TIR_OP_SUM, 1, V(x), 0, NULL);
    OK("f32[2, 3]", TIR_OP_SUM, 1, V(x), 1, A(INTS("axes", -1)));
    OK("f32[2, 3, 1]", TIR_OP_MEAN, 1, V(x), 2, A(INTS("axes", -1), tir_a_bool("keepdim", true)));
    OK("f32[1, 3, 1]", TIR_OP_MAX, 1, V(x), 2, A(INTS("axes", 0, 2), tir_a_bool("keepdim", true)));
    OK("f32[3]", TIR_OP_MIN, 1, V(x), 1, A(INTS("axes", 2, 0)));
    OK("f32[1, 1, 1]", TIR_OP_SUM, 1, V(x), 1, A(tir_a_bool("keepdim", true)));
    OK("i32[T]", TIR_OP_SUM, 1, V(i), 1, A(INTS("axes", -2)));
    OK("f32[]", TIR_OP_SUM, 1, V(s), 0, NULL);
    ERR(TIR_OP_SUM, 1, V(x), 1, A(INTS("axes", 3)), "axis 3 out of range", "f32[2, 3, 4]");
    ERR(TIR_OP_SUM, 1, V(x), 1, A(INTS("axes", -4)), "axis -4 out of range", NULL);
    ERR(TIR_OP_SUM, 1, V(x), 1, A(INTS("axes", 1, -2)), "repeated", NULL);
    ERR(TIR_OP_MEAN, 1, V(i), 0, NULL, "float", "i32[B, T]");
    ERR(TIR_OP_SUM, 1, V(x), 1, A(tir_a_int("axis", 1)), "unknown attribute 'axis'", "axes, keepdim");
    ERR(TIR_OP_SUM, 1, V(x), 1, A(tir_a_int("axes", 1)), "'axes' must be a list of ints", NULL);
    /* argmax: one axis, i64 */
    OK("i64[2, 4]", TIR_OP_ARGMAX, 1, V(x), 1, A(INTS("axes", 1)));
    OK("i64[2, 1, 4]", TIR_OP_ARGMAX, 1, V(x), 2, A(INTS("axes", -2), tir_a_bool("keepdim", true)));
    OK("i64[]", TIR_OP_ARGMAX, 1, V(v), 0, NULL);
    OK("i64[B]", TIR_OP_ARGMAX, 1, V(i), 1, A(INTS("axes", 1)));
    ERR(TIR_OP_ARGMAX, 1, V(x), 0, NULL, "exactly one axis", NULL);
    ERR(TIR_OP_ARGMAX, 1, V(x), 1, A(INTS("axes", 0, 1)), "exactly one axis", "found 2");
}
END_TEST

/* ------------------------------------------------------------------ movement */

START_TEST(test_reshape) {
    tir_value *x = P("f32[3, 4]"), *s = P("f32[B*T, 64]"), *s3 = P("f32[B, T, 64]"), *n = P("f32[N]");
    tir_value *bt = P("f32[B, T]");
    OK("f32[2, 6]", TIR_OP_RESHAPE, 1, V(x), 1, A(INTS("shape", 2, 6)));
    OK("f32[6, 2]", TIR_OP_RESHAPE, 1, V(x), 1, A(INTS("shape", -1, 2)));
    OK("f32[12]", TIR_OP_RESHAPE, 1, V(x), 1, A(INTS("shape", -1)));
    OK("f32[1, 12, 1]", TIR_OP_RESHAPE, 1, V(x), 1, A(INTS("shape", 1, 12, 1)));
    ERR(TIR_OP_RESHAPE, 1, V(x), 1, A(INTS("shape", 5, 2)), "12 elements cannot become [5, 2]", NULL);
    ERR(TIR_OP_RESHAPE, 1, V(x), 1, A(INTS("shape", -1, 5)), "cannot become [-1, 5]", NULL);
    ERR(TIR_OP_RESHAPE, 1, V(x), 1, A(INTS("shape", -1, -1)), "at most one -1", NULL);
    ERR(TIR_OP_RESHAPE, 1, V(x), 1, A(INTS("shape", -2, 6)), "negative", NULL);
    const tir_dim *sh1[] = {D("B"), D("T"), D("4"), D("16")};
    OK("f32[B, T, 4, 16]", TIR_OP_RESHAPE, 1, V(s), 1, A(tir_a_shape(mod, "shape", 4, sh1)));
    const tir_dim *sh2[] = {D("B*T"), D("-1")};
    OK("f32[B*T, 64]", TIR_OP_RESHAPE, 1, V(s3), 1, A(tir_a_shape(mod, "shape", 2, sh2)));
    const tir_dim *sh3[] = {D("-1"), D("T"), D("32")};
    OK("f32[2*B, T, 32]", TIR_OP_RESHAPE, 1, V(s3), 1, A(tir_a_shape(mod, "shape", 3, sh3)));
    const tir_dim *sh4[] = {D("T"), D("B")};
    OK("f32[T, B]", TIR_OP_RESHAPE, 1, V(bt), 1, A(tir_a_shape(mod, "shape", 2, sh4)));
    const tir_dim *sh5[] = {D("M")};
    ERR(TIR_OP_RESHAPE, 1, V(n), 1, A(tir_a_shape(mod, "shape", 1, sh5)), "N elements cannot become [M]",
        NULL);
    const tir_dim *sh6[] = {D("B"), D("-1"), D("7")};
    ERR(TIR_OP_RESHAPE, 1, V(s3), 1, A(tir_a_shape(mod, "shape", 3, sh6)), "cannot become [B, -1, 7]",
        NULL);
    const tir_dim *sh7[] = {D("B"), D("T"), D("32")};
    ERR(TIR_OP_RESHAPE, 1, V(s), 1, A(tir_a_shape(mod, "shape", 3, sh7)), "64*B*T elements", NULL);
    ERR(TIR_OP_RESHAPE, 1, V(x), 0, NULL, "missing required attribute 'shape'", NULL);
}
END_TEST

START_TEST(test_transpose_broadcast) {
    tir_value *x = P("f32[2, 3, 4]"), *s = P("f32[B, T, H, 64]"), *c = P("f32[3, 1]"), *v = P("f32[3]");
    OK("f32[4, 2, 3]", TIR_OP_TRANSPOSE, 1, V(x), 1, A(INTS("perm", 2, 0, 1)));
    OK("f32[B, H, T, 64]", TIR_OP_TRANSPOSE, 1, V(s), 1, A(INTS("perm", 0, 2, 1, 3)));
    ERR(TIR_OP_TRANSPOSE, 1, V(x), 1, A(INTS("perm", 0, 0, 1)), "[0, 0, 1] is not a permutation of 0..2",
        NULL);
    ERR(TIR_OP_TRANSPOSE, 1, V(x), 1, A(INTS("perm", 1, 0)), "not a permutation", NULL);
    ERR(TIR_OP_TRANSPOSE, 1, V(x), 1, A(INTS("perm", 0, 1, 3)), "not a permutation", NULL);
    OK("f32[2, 3, 4]", TIR_OP_BROADCAST, 1, V(c), 1, A(INTS("shape", 2, 3, 4)));
    const tir_dim *sh[] = {D("N"), D("3")};
    OK("f32[N, 3]", TIR_OP_BROADCAST, 1, V(v), 1, A(tir_a_shape(mod, "shape", 2, sh)));
    ERR(TIR_OP_BROADCAST, 1, V(v), 1, A(INTS("shape", 4)), "cannot broadcast f32[3] to [4]", NULL);
    ERR(TIR_OP_BROADCAST, 1, V(c), 1, A(INTS("shape", 3)), "cannot broadcast", NULL);
    ERR(TIR_OP_BROADCAST, 1, V(c), 1, A(INTS("shape", -1, 3, 1)), "negative", NULL);
}
END_TEST

START_TEST(test_slice) {
    tir_value *x = P("f32[10, 5]"), *n = P("f32[N, 3]");
    OK("f32[2, 5]", TIR_OP_SLICE, 1, V(x), 4,
       A(tir_a_int("axis", 0), tir_a_int("start", 2), tir_a_int("end", 8), tir_a_int("step", 3)));
    OK("f32[3, 5]", TIR_OP_SLICE, 1, V(x), 2, A(tir_a_int("axis", 0), tir_a_int("start", -3)));
    OK("f32[8, 5]", TIR_OP_SLICE, 1, V(x), 3, A(tir_a_int("axis", 0), tir_a_int("start", 2), tir_a_int("end", 100)));
    OK("f32[0, 5]", TIR_OP_SLICE, 1, V(x), 3, A(tir_a_int("axis", 0), tir_a_int("start", 8), tir_a_int("end", 2)));
    OK("f32[10, 4]", TIR_OP_SLICE, 1, V(x), 2, A(tir_a_int("axis", -1), tir_a_int("end", -1)));
    OK("f32[5, 5]", TIR_OP_SLICE, 1, V(x), 2, A(tir_a_int("axis", 0), tir_a_int("step", 2)));
    OK("f32[10, 5]", TIR_OP_SLICE, 1, V(x), 2, A(tir_a_int("axis", 0), tir_a_int("start", -100)));
    OK("f32[N - 1, 3]", TIR_OP_SLICE, 1, V(n), 2, A(tir_a_int("axis", 0), tir_a_int("start", 1)));
    OK("f32[2, 3]", TIR_OP_SLICE, 1, V(n), 2, A(tir_a_int("axis", 0), tir_a_int("start", -2)));
    OK("f32[4, 3]", TIR_OP_SLICE, 1, V(n), 2, A(tir_a_int("axis", 0), tir_a_int("end", 4)));
    OK("f32[(N + 1)/2, 3]", TIR_OP_SLICE, 1, V(n), 2, A(tir_a_int("axis", 0), tir_a_int("step", 2)));
    OK("f32[N - 3, 3]", TIR_OP_SLICE, 1, V(n), 3, A(tir_a_int("axis", 0), tir_a_int("start", 1), tir_a_int("end", -2)));
    ERR(TIR_OP_SLICE, 1, V(x), 2, A(tir_a_int("axis", 0), tir_a_int("step", 0)), "step must be >= 1", "found 0");
    ERR(TIR_OP_SLICE, 1, V(x), 1, A(tir_a_int("axis", 2)), "axis 2 out of range", NULL);
    ERR(TIR_OP_SLICE, 1, V(x), 0, NULL, "missing required attribute 'axis'", NULL);
}
END_TEST

START_TEST(test_concat_split) {
    tir_value *a = P("f32[2, 3]"), *b = P("f32[4, 3]"), *c = P("f32[2, 5]"), *n = P("f32[N, 3]"),
              *m = P("f32[M, 3]"), *h = P("bf16[2, 3]"), *x = P("f32[10, 4]"), *s = P("f32[B, 2*H]");
    OK("f32[6, 3]", TIR_OP_CONCAT, 2, V(a, b), 1, A(tir_a_int("axis", 0)));
    OK("f32[8, 3]", TIR_OP_CONCAT, 3, V(a, b, a), 1, A(tir_a_int("axis", 0)));
    OK("f32[2, 8]", TIR_OP_CONCAT, 2, V(a, c), 1, A(tir_a_int("axis", -1)));
    OK("f32[M + N, 3]", TIR_OP_CONCAT, 2, V(n, m), 1, A(tir_a_int("axis", 0)));
    OK("f32[2, 3]", TIR_OP_CONCAT, 1, V(a), 1, A(tir_a_int("axis", 0)));
    ERR(TIR_OP_CONCAT, 2, V(a, c), 1, A(tir_a_int("axis", 0)), "equal except on axis 0", "f32[2, 5]");
    ERR(TIR_OP_CONCAT, 2, V(a, h), 1, A(tir_a_int("axis", 0)), "dtypes differ", NULL);
    ERR(TIR_OP_CONCAT, 0, NULL, 1, A(tir_a_int("axis", 0)), "at least 1 operand", "found 0");

    tir_op *o = ok_op(__LINE__, TIR_OP_SPLIT, 1, V(x), 2, A(tir_a_int("axis", 0), INTS("sizes", 3, 7)), NULL);
    ck_assert_int_eq(o->nout, 2);
    expect_type(__LINE__, o->out[0], "f32[3, 4]");
    expect_type(__LINE__, o->out[1], "f32[7, 4]");
    const tir_dim *hs[] = {D("H"), D("H")};
    o = ok_op(__LINE__, TIR_OP_SPLIT, 1, V(s), 2, A(tir_a_int("axis", -1), tir_a_shape(mod, "sizes", 2, hs)), NULL);
    ck_assert_int_eq(o->nout, 2);
    expect_type(__LINE__, o->out[1], "f32[B, H]");
    o = ok_op(__LINE__, TIR_OP_SPLIT, 1, V(x), 2, A(tir_a_int("axis", 1), INTS("sizes", 1, 1, 2)), NULL);
    ck_assert_int_eq(o->nout, 3);
    expect_type(__LINE__, o->out[2], "f32[10, 2]");
    ERR(TIR_OP_SPLIT, 1, V(x), 2, A(tir_a_int("axis", 0), INTS("sizes", 3, 6)), "sum to 9", "is 10");
    ERR(TIR_OP_SPLIT, 1, V(x), 2, A(tir_a_int("axis", 0), INTS("sizes", 12, -2)), "negative", NULL);
    ERR(TIR_OP_SPLIT, 1, V(x), 1, A(tir_a_int("axis", 0)), "missing required attribute 'sizes'", NULL);
}
END_TEST

/* ------------------------------------------------------------------ indexing and creation */

START_TEST(test_take_scatter) {
    tir_value *tab = P("bf16[V, D]"), *idx = P("i32[B, T]"), *t3 = P("f32[A, V, D]"), *i64 = P("i64[K]");
    tir_value *fi = P("f32[4]"), *tg = P("f32[V, D]"), *i1 = P("i32[N]"), *src = P("f32[N, D]");
    tir_value *bad = P("f32[N, 3]"), *bsrc = P("bf16[N, D]");
    OK("bf16[B, T, D]", TIR_OP_TAKE, 2, V(tab, idx), 0, NULL);
    OK("f32[A, K, D]", TIR_OP_TAKE, 2, V(t3, i64), 1, A(tir_a_int("axis", 1)));
    OK("f32[A, V, K]", TIR_OP_TAKE, 2, V(t3, i64), 1, A(tir_a_int("axis", -1)));
    ERR(TIR_OP_TAKE, 2, V(tab, fi), 0, NULL, "indices must be i32 or i64", "f32[4]");
    ERR(TIR_OP_TAKE, 2, V(tab, idx), 1, A(tir_a_int("axis", 2)), "axis 2 out of range", NULL);
    OK("f32[V, D]", TIR_OP_SCATTER_ADD, 3, V(tg, i1, src), 0, NULL);
    ERR(TIR_OP_SCATTER_ADD, 3, V(tg, i1, bad), 0, NULL, "src must be f32[N, D]", "f32[N, 3]");
    ERR(TIR_OP_SCATTER_ADD, 3, V(tg, fi, src), 0, NULL, "indices must be i32 or i64", NULL);
    ERR(TIR_OP_SCATTER_ADD, 3, V(tg, i1, bsrc), 0, NULL, "dtypes differ", NULL);
    /* rank overflow: 8 - 1 + 2 */
    tir_value *big = P("f32[1, 1, 1, 1, 1, 1, 1, 2]"), *i2 = P("i32[2, 2]");
    ERR(TIR_OP_TAKE, 2, V(big, i2), 0, NULL, "rank 9 exceeds", NULL);
}
END_TEST

START_TEST(test_creation) {
    OK("i32[4, 5]", TIR_OP_IOTA, 0, NULL, 2, A(INTS("shape", 4, 5), tir_a_int("axis", 1)));
    OK("f32[4]", TIR_OP_IOTA, 0, NULL, 2, A(INTS("shape", 4), tir_a_dtype("dtype", TIR_F32)));
    ERR(TIR_OP_IOTA, 0, NULL, 2, A(INTS("shape", 4), tir_a_int("axis", 1)), "axis 1 out of range", NULL);
    ERR(TIR_OP_IOTA, 0, NULL, 2, A(INTS("shape", 4), tir_a_dtype("dtype", TIR_BOOL)), "numeric", NULL);
    const tir_dim *sh[] = {D("N"), D("3")};
    OK("f32[N, 3]", TIR_OP_FULL, 0, NULL, 2, A(tir_a_float("value", 1.5), tir_a_shape(mod, "shape", 2, sh)));
    OK("bf16[]", TIR_OP_FULL, 0, NULL, 3,
       A(tir_a_int("value", 2), tir_a_ints(mod, "shape", 0, NULL), tir_a_dtype("dtype", TIR_BF16)));
    ERR(TIR_OP_FULL, 0, NULL, 1, A(tir_a_float("value", 1)), "missing required attribute 'shape'", NULL);
    ERR(TIR_OP_FULL, 0, NULL, 2, A(tir_a_float("value", 1), INTS("shape", 2, -1)), "negative", NULL);
    ERR(TIR_OP_FULL, 0, NULL, 2, A(tir_a_str("value", "x"), INTS("shape", 2)), "'value' must be a float",
        "found a string");
    tir_value *x = P("f32[2]");
    ERR(TIR_OP_FULL, 1, V(x), 2, A(tir_a_float("value", 1), INTS("shape", 2)), "expects 0 operands", NULL);
}
END_TEST

/* ------------------------------------------------------------------ linear algebra */

START_TEST(test_matmul_linear) {
    tir_value *a = P("f32[2, 3, 4]"), *b = P("f32[4, 5]"), *a4 = P("f32[2, 1, 3, 4]"), *b3 = P("f32[5, 4, 6]");
    tir_value *at = P("f32[4, 3]"), *bt = P("f32[5, 4]"), *k64 = P("f32[M, 64]"), *k32 = P("f32[32, N]");
    tir_value *v = P("f32[4]"), *i = P("i32[4, 4]"), *sa = P("bf16[B, H, T, D]"), *sb = P("bf16[B, H, S, D]");
    OK("f32[2, 3, 5]", TIR_OP_MATMUL, 2, V(a, b), 0, NULL);
    OK("f32[2, 5, 3, 6]", TIR_OP_MATMUL, 2, V(a4, b3), 0, NULL);
    OK("f32[3, 5]", TIR_OP_MATMUL, 2, V(at, b), 1, A(tir_a_bool("transpose_a", true)));
    OK("f32[2, 3, 5]", TIR_OP_MATMUL, 2, V(a, bt), 1, A(tir_a_bool("transpose_b", true)));
    OK("f32[3, 5]", TIR_OP_MATMUL, 2, V(at, bt), 2, A(tir_a_bool("transpose_a", true), tir_a_bool("transpose_b", true)));
    OK("bf16[B, H, T, S]", TIR_OP_MATMUL, 2, V(sa, sb), 1, A(tir_a_bool("transpose_b", true)));
    ERR(TIR_OP_MATMUL, 2, V(k64, k32), 0, NULL, "inner dims differ (K=64 vs 32)", NULL);
    ERR(TIR_OP_MATMUL, 2, V(a, b3), 0, NULL, "batch dims cannot broadcast", NULL);
    ERR(TIR_OP_MATMUL, 2, V(v, b), 0, NULL, "rank >= 2", "f32[4]");
    ERR(TIR_OP_MATMUL, 2, V(i, i), 0, NULL, "float", NULL);

    tir_value *x = P("f32[B, T, 8]"), *w = P("f32[16, 8]"), *bias = P("f32[16]"), *w2 = P("f32[16, 9]");
    tir_value *x2 = P("bf16[N, K]"), *w3 = P("bf16[O, K]");
    OK("f32[B, T, 16]", TIR_OP_LINEAR, 3, V(x, w, bias), 0, NULL);
    OK("f32[B, T, 16]", TIR_OP_LINEAR, 2, V(x, w), 0, NULL);
    OK("bf16[N, O]", TIR_OP_LINEAR, 2, V(x2, w3), 0, NULL);
    ERR(TIR_OP_LINEAR, 2, V(x, w2), 0, NULL, "K=8", "K=9");
    ERR(TIR_OP_LINEAR, 3, V(x, w, v), 0, NULL, "bias must be [N] with N=16", "f32[4]");
    ERR(TIR_OP_LINEAR, 2, V(x, v), 0, NULL, "weight must be [N, K]", NULL);
    ERR(TIR_OP_LINEAR, 1, V(x), 0, NULL, "expects 2 to 3 operands", NULL);
}
END_TEST

/* ------------------------------------------------------------------ composites */

START_TEST(test_composites) {
    tir_value *x = P("f32[2, 3]"), *i = P("i32[2, 3]");
    OK("f32[2, 3]", TIR_OP_SOFTMAX, 1, V(x), 0, NULL);
    OK("f32[2, 3]", TIR_OP_LOG_SOFTMAX, 1, V(x), 1, A(tir_a_int("axis", 0)));
    ERR(TIR_OP_SOFTMAX, 1, V(x), 1, A(tir_a_int("axis", 2)), "axis 2 out of range", NULL);
    ERR(TIR_OP_SOFTMAX, 1, V(i), 0, NULL, "float", NULL);

    tir_value *h = P("bf16[N, H]"), *w = P("bf16[H]"), *wb = P("bf16[N]"), *wf = P("f32[H]");
    OK("bf16[N, H]", TIR_OP_RMSNORM, 2, V(h, w), 1, A(tir_a_float("eps", 1e-6)));
    OK("bf16[N, H]", TIR_OP_RMSNORM, 2, V(h, w), 1, A(tir_a_int("eps", 0)));
    OK("bf16[N, H]", TIR_OP_LAYERNORM, 3, V(h, w, w), 0, NULL);
    ERR(TIR_OP_RMSNORM, 2, V(h, wb), 0, NULL, "weight must be [D] with D=H", "bf16[N]");
    ERR(TIR_OP_LAYERNORM, 3, V(h, w, wb), 0, NULL, "bias must be [D]", NULL);
    ERR(TIR_OP_RMSNORM, 2, V(h, wf), 0, NULL, "dtypes differ", NULL);
    ERR(TIR_OP_RMSNORM, 2, V(h, w), 1, A(tir_a_float("eps", -1)), "eps", ">= 0");

    tir_value *lg = P("f32[N, C]"), *tg = P("i32[N]"), *t64 = P("i64[N]"), *tf = P("f32[N]"), *tm = P("i32[M]");
    OK("f32[]", TIR_OP_CROSS_ENTROPY, 2, V(lg, tg), 0, NULL);
    OK("f32[]", TIR_OP_CROSS_ENTROPY, 2, V(lg, t64), 2, A(tir_a_str("reduction", "sum"), tir_a_int("ignore_index", 0)));
    OK("f32[N]", TIR_OP_CROSS_ENTROPY, 2, V(lg, tg), 1, A(tir_a_str("reduction", "none")));
    ERR(TIR_OP_CROSS_ENTROPY, 2, V(lg, tg), 1, A(tir_a_str("reduction", "avg")), "reduction must be", "\"avg\"");
    ERR(TIR_OP_CROSS_ENTROPY, 2, V(lg, tf), 0, NULL, "targets must be i32 or i64", "f32[N]");
    ERR(TIR_OP_CROSS_ENTROPY, 2, V(lg, tm), 0, NULL, "targets", "i32[M]");
    ERR(TIR_OP_CROSS_ENTROPY, 2, V(tf, tg), 0, NULL, "logits must be [N, C]", NULL);

    tir_value *q = P("bf16[B, Hq, T, 64]"), *cs = P("bf16[T, 64]"), *odd = P("f32[T, 7]"),
              *sym = P("f32[T, 2*K]"), *bc = P("bf16[S, 64]");
    OK("bf16[B, Hq, T, 64]", TIR_OP_ROPE, 3, V(q, cs, cs), 0, NULL);
    OK("f32[T, 2*K]", TIR_OP_ROPE, 3, V(sym, sym, sym), 0, NULL);
    ERR(TIR_OP_ROPE, 3, V(odd, odd, odd), 0, NULL, "D=7", "even");
    ERR(TIR_OP_ROPE, 3, V(q, bc, cs), 0, NULL, "cos must be [T, D] = [T, 64]", "bf16[S, 64]");
    /* a bare symbol is checked when bound; a structurally odd dim is refused now */
    tir_value *kd = P("f32[T, K]"), *ko = P("f32[T, 2*K + 1]");
    OK("f32[T, K]", TIR_OP_ROPE, 3, V(kd, kd, kd), 0, NULL);
    ERR(TIR_OP_ROPE, 3, V(ko, ko, ko), 0, NULL, "D=2*K + 1", "even");

    tir_value *aq = P("f32[B, 8, T, 64]"), *ak = P("f32[B, 2, S, 64]"), *av = P("f32[B, 2, S, 32]");
    tir_value *aq6 = P("f32[B, 6, T, 64]"), *ak4 = P("f32[B, 4, S, 64]"), *av4 = P("f32[B, 4, S, 64]");
    tir_value *gq = P("f32[B, 4*G, T, D]"), *gk = P("f32[B, G, S, D]");
    tir_value *hq = P("f32[B, H, T, D]"), *hk = P("f32[B, J, S, D]");
    tir_value *ak2 = P("f32[B, 2, S, 32]");
    OK("f32[B, 8, T, 32]", TIR_OP_ATTENTION, 3, V(aq, ak, av), 2, A(tir_a_bool("causal", true), tir_a_float("scale", 0.125)));
    OK("f32[B, 4*G, T, D]", TIR_OP_ATTENTION, 3, V(gq, gk, gk), 0, NULL);
    OK("f32[B, H, T, D]", TIR_OP_ATTENTION, 3, V(hq, hq, hq), 0, NULL);
    ERR(TIR_OP_ATTENTION, 3, V(aq6, ak4, av4), 0, NULL, "Hq=6 must be a multiple of", "Hk=4");
    /* independent head symbols are checked when bound (examples/llama_block.tir's Hq, Hk) */
    OK("f32[B, H, T, D]", TIR_OP_ATTENTION, 3, V(hq, hk, hk), 0, NULL);
    tir_value *fq = P("f32[B, G, T, D]"), *fk = P("f32[B, 4*G, S, D]");
    ERR(TIR_OP_ATTENTION, 3, V(fq, fk, fk), 0, NULL, "Hq=G must be a multiple", "Hk=4*G");
    ERR(TIR_OP_ATTENTION, 3, V(aq, ak2, av), 0, NULL, "head dims of q and k differ", "64 vs 32");
    ERR(TIR_OP_ATTENTION, 3, V(aq, ak, aq), 0, NULL, "v", "Hk=2");
    ERR(TIR_OP_ATTENTION, 3, V(x, x, x), 0, NULL, "rank 4", NULL);
    ERR(TIR_OP_ATTENTION, 3, V(aq, ak, av), 1, A(tir_a_int("causal", 1)), "'causal' must be a bool", NULL);
}
END_TEST

/* ------------------------------------------------------------------ calls */

static tir_func *callee(const char *name, int np, const char *const *ptypes, int nr, const char *const *rtypes) {
    tir_diag d;
    tir_func *g = tir_func_new(mod, name, L0, &d);
    ck_assert_ptr_nonnull(g);
    for (int i = 0; i < np; i++) {
        char pn[16];
        snprintf(pn, sizeof pn, "x%d", i);
        tir_type t = T(ptypes[i]);
        ck_assert_ptr_nonnull(tir_func_add_param(g, pn, &t, L0));
    }
    tir_type r[8];
    for (int i = 0; i < nr; i++) r[i] = T(rtypes[i]);
    tir_func_set_ret(g, nr, r);
    return g;
}

#define CALL_OK(want, g, nin, in) \
    expect_type(__LINE__, ok_op(__LINE__, TIR_OP_CALL, nin, in, 0, NULL, g)->out[0], want)
#define CALL_ERR(g, nin, in, k1, k2) expect_err(__LINE__, TIR_OP_CALL, nin, in, 0, NULL, g, k1, k2)

START_TEST(test_call) {
    tir_func *g = callee("g", 2, (const char *[]){"f32[N]", "f32[N, 4]"}, 2, (const char *[]){"f32[4]", "f32[2*N]"});
    tir_value *x = P("f32[B*T]"), *w = P("f32[B*T, 4]"), *w5 = P("f32[B*T, 5]"), *c = P("f32[6]"),
              *cw = P("f32[6, 4]"), *i = P("i32[6]"), *cw7 = P("f32[7, 4]");
    tir_op *o = ok_op(__LINE__, TIR_OP_CALL, 2, V(x, w), 0, NULL, g);
    ck_assert_int_eq(o->nout, 2);
    expect_type(__LINE__, o->out[0], "f32[4]");
    expect_type(__LINE__, o->out[1], "f32[2*B*T]");
    o = ok_op(__LINE__, TIR_OP_CALL, 2, V(c, cw), 0, NULL, g);
    expect_type(__LINE__, o->out[1], "f32[12]");
    CALL_ERR(g, 2, V(x, w5), "argument 1 of @g is f32[B*T, 5]", "f32[N, 4]");
    CALL_ERR(g, 2, V(c, cw7), "argument", "f32[7, 4]");
    CALL_ERR(g, 1, V(x), "@g takes 2 arguments, given 1", NULL);
    CALL_ERR(g, 2, V(i, cw), "argument 0 of @g is i32[6]", NULL);

    /* a parameter dim Hq*64 binds Hq when the size divides */
    tir_func *h = callee("h", 1, (const char *[]){"f32[Hq*64, D]"}, 1, (const char *[]){"f32[Hq, 64, D]"});
    tir_value *a = P("f32[256, 8]"), *b = P("f32[100, 8]"), *s = P("f32[H*64, E]"), *s2 = P("f32[128*H, E]");
    CALL_OK("f32[4, 64, 8]", h, 1, V(a));
    CALL_OK("f32[H, 64, E]", h, 1, V(s));
    CALL_OK("f32[2*H, 64, E]", h, 1, V(s2));
    CALL_ERR(h, 1, V(b), "f32[100, 8]", "f32[64*Hq, D]");

    /* binding order does not matter: the second parameter binds N for the first */
    tir_func *k = callee("k", 2, (const char *[]){"f32[2*N + 1]", "f32[N]"}, 1, (const char *[]){"f32[N + 1]"});
    tir_value *k9 = P("f32[9]"), *k4 = P("f32[4]"), *k3 = P("f32[3]");
    CALL_OK("f32[5]", k, 2, V(k9, k4));
    CALL_ERR(k, 2, V(k9, k3), "argument", NULL);

    /* several unknowns in one dim bind only against the same expression */
    tir_func *p = callee("p", 1, (const char *[]){"f32[B*T]"}, 1, (const char *[]){"f32[T]"});
    tir_value *bt = P("f32[B*T]"), *mm = P("f32[M]");
    CALL_OK("f32[T]", p, 1, V(bt));
    CALL_ERR(p, 1, V(mm), "argument 0 of @p is f32[M]", NULL);

    /* a result symbol no argument binds */
    tir_func *u = callee("u", 1, (const char *[]){"f32[N]"}, 1, (const char *[]){"f32[M]"});
    CALL_ERR(u, 1, V(c), "do not bind M", NULL);

    /* a callee with no body yet (a value_and_grad definition) works from its signature */
    tir_func *loss = callee("loss", 2, (const char *[]){"f32[N, 4]", "i32[N]"}, 1, (const char *[]){"f32[]"});
    (void)loss;
    tir_diag d;
    tir_func *gd = tir_func_new_grad_def(mod, "loss_grad", "loss", 1, (const char *[]){"x0"}, L0, &d);
    ck_assert_msg(gd != NULL, "%s", d.msg);
    tir_value *li = P("i32[6]");
    o = ok_op(__LINE__, TIR_OP_CALL, 2, V(cw, li), 0, NULL, gd);
    ck_assert_int_eq(o->nout, 2);
    expect_type(__LINE__, o->out[0], "f32[]");
    expect_type(__LINE__, o->out[1], "f32[6, 4]");
}
END_TEST

/* ------------------------------------------------------------------ diagnostics carry locations */

START_TEST(test_diag_location) {
    tir_value *a = P("f32[4]"), *b = P("f32[5]");
    tir_diag d;
    tir_op *o = tir_func_append_op(fn, TIR_OP_ADD, 2, V(a, b), 0, NULL, NULL, (tir_loc){3, 7}, &d);
    ck_assert_ptr_null(o);
    ck_assert_int_eq(d.status, TIR_ERR_TYPE);
    ck_assert_int_eq(d.line, 3);
    ck_assert_int_eq(d.col, 7);
    ck_assert_str_eq(d.msg, "add: cannot broadcast f32[4] with f32[5]");
    /* tir_infer itself, with room for no result */
    tir_type out[1];
    int n = -1;
    ck_assert_int_eq(tir_infer(mod, TIR_OP_ADD, 2, V(a, a), 0, NULL, NULL, L0, 1, out, &n, &d), TIR_OK);
    ck_assert_int_eq(n, 1);
    expect_type(__LINE__, &(tir_value){.type = out[0]}, "f32[4]");
    ck_assert_int_ne(tir_infer(mod, TIR_OP_ADD, 2, V(a, a), 0, NULL, NULL, L0, 0, out, &n, &d), TIR_OK);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("infer");
    TCase *tc = tcase_create("infer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_norm_axis);
    tcase_add_test(tc, test_broadcast_shapes);
    tcase_add_test(tc, test_unary);
    tcase_add_test(tc, test_binary);
    tcase_add_test(tc, test_where_cast);
    tcase_add_test(tc, test_reduce);
    tcase_add_test(tc, test_reshape);
    tcase_add_test(tc, test_transpose_broadcast);
    tcase_add_test(tc, test_slice);
    tcase_add_test(tc, test_concat_split);
    tcase_add_test(tc, test_take_scatter);
    tcase_add_test(tc, test_creation);
    tcase_add_test(tc, test_matmul_linear);
    tcase_add_test(tc, test_composites);
    tcase_add_test(tc, test_call);
    tcase_add_test(tc, test_diag_location);
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
