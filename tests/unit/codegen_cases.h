/* codegen_cases.h: the programs that test_codegen.c and test_ptxas.c lower: every core op of
 * ops.def over its dtypes (f32 f16 bf16 f64 f8 ints bool where the op allows them) and over shapes
 * with symbolic dims, broadcasting, scalars, ragged constant sizes, keepdim, negative axes.
 * One function per case, named after it (unary_exp_bf16), built through tir_func_append_op so
 * result types come from shape inference. Header-only; each test includes it once. */
#ifndef TIR_CODEGEN_CASES_H
#define TIR_CODEGEN_CASES_H

#include <stdio.h>

#include "ir.h"

typedef struct cgc {
    tir_context *ctx;
    tir_module *m;
    tir_func *f;
    tir_diag d;
    int np;
    int failed;   /* builder errors (the test reports them) */
    char err[1024];
} cgc;

static const tir_dtype cgc_floats[] = {TIR_F32, TIR_F16, TIR_BF16, TIR_F64, TIR_F8E4M3, TIR_F8E5M2};
static const tir_dtype cgc_ints[] = {TIR_I64, TIR_I32, TIR_I8, TIR_U8};

static tir_type cgc_type(cgc *c, tir_dtype dt, const char *dims) {
    tir_type t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    const char *p = dims, *end = dims + strlen(dims);
    while (p < end) {
        const char *e = p;
        while (e < end && *e != ',') e++;
        const char *err = NULL;
        const tir_dim *dm = tir_dim_parse(c->ctx, p, (size_t)(e - p), &err);
        if (!dm) {
            c->failed++;
            snprintf(c->err, sizeof c->err, "bad dim %.900s", dims);
            return t;
        }
        t.dims[t.rank++] = dm;
        p = e < end ? e + 1 : e;
    }
    return t;
}

static void cgc_func(cgc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cgc_func(cgc *c, const char *fmt, ...) {
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    c->f = tir_func_new(c->m, name, (tir_loc){0, 0}, &c->d);
    c->np = 0;
    if (!c->f) {
        c->failed++;
        snprintf(c->err, sizeof c->err, "func %.100s: %.900s", name, c->d.msg);
    }
}

/* a parameter of dtype dt and dims "N, 4" ("" for a scalar) */
static tir_value *cgc_param(cgc *c, tir_dtype dt, const char *dims) {
    if (!c->f) return NULL;
    tir_type t = cgc_type(c, dt, dims);
    char name[16];
    snprintf(name, sizeof name, "p%d", c->np++);
    return tir_func_add_param(c->f, name, &t, (tir_loc){0, 0});
}

static tir_op *cgc_op(cgc *c, tir_opcode code, int nin, tir_value *const *in, int na,
                      const tir_attr_value *attrs) {
    if (!c->f) return NULL;
    for (int i = 0; i < nin; i++)
        if (!in[i]) return NULL;
    tir_op *op = tir_func_append_op(c->f, code, nin, in, na, attrs, NULL, (tir_loc){0, 0}, &c->d);
    if (!op) {
        c->failed++;
        snprintf(c->err, sizeof c->err, "%.100s: %.900s", c->f->name, c->d.msg);
    }
    return op;
}

static tir_value *cgc_1(cgc *c, tir_opcode code, tir_value *a, int na, const tir_attr_value *at) {
    tir_op *op = cgc_op(c, code, 1, &a, na, at);
    return op ? op->out[0] : NULL;
}

static tir_value *cgc_2(cgc *c, tir_opcode code, tir_value *a, tir_value *b, int na,
                        const tir_attr_value *at) {
    tir_value *in[2] = {a, b};
    tir_op *op = cgc_op(c, code, 2, in, na, at);
    return op ? op->out[0] : NULL;
}

static tir_attr_value cgc_shape(cgc *c, const char *name, const char *dims) {
    tir_type t = cgc_type(c, TIR_F32, dims);
    return tir_a_shape(c->m, name, t.rank, t.dims);
}

static bool cgc_ok(tir_opcode code, tir_dtype dt) {
    unsigned fl = tir_ops[code].flags;
    if (fl & TIR_F_LOGIC) return dt == TIR_BOOL;
    if (fl & TIR_F_FLOAT) return tir_dtype_is_float(dt);
    if (fl & (TIR_F_NUMERIC | TIR_F_COMPARE)) return dt != TIR_BOOL;
    return true;
}

static void cgc_unary(cgc *c) {
    for (int code = 0; code < TIR_OP_COUNT; code++) {
        if (!(tir_ops[code].flags & TIR_F_UNARY)) continue;
        for (int dt = 0; dt < TIR_DTYPE_COUNT; dt++) {
            if (!cgc_ok((tir_opcode)code, (tir_dtype)dt)) continue;
            cgc_func(c, "unary_%s_%s", tir_ops[code].name, tir_dtype_name((tir_dtype)dt));
            tir_value *x = cgc_param(c, (tir_dtype)dt, "N, 7");
            cgc_1(c, (tir_opcode)code, x, 0, NULL);
            if (code == TIR_OP_GELU) {
                tir_attr_value a = tir_a_str("approximate", "tanh");
                cgc_1(c, TIR_OP_GELU, x, 1, &a);
            }
        }
    }
}

static void cgc_binary(cgc *c) {
    for (int code = 0; code < TIR_OP_COUNT; code++) {
        if (!(tir_ops[code].flags & TIR_F_BINARY)) continue;
        for (int dt = 0; dt < TIR_DTYPE_COUNT; dt++) {
            if (!cgc_ok((tir_opcode)code, (tir_dtype)dt)) continue;
            // (B, 1, 5) with (S, 5) -> (B, S, 5); and a scalar operand
            cgc_func(c, "binary_%s_%s", tir_ops[code].name, tir_dtype_name((tir_dtype)dt));
            tir_value *a = cgc_param(c, (tir_dtype)dt, "B, 1, 5");
            tir_value *b = cgc_param(c, (tir_dtype)dt, "S, 5");
            tir_value *s = cgc_param(c, (tir_dtype)dt, "");
            cgc_2(c, (tir_opcode)code, a, b, 0, NULL);
            cgc_2(c, (tir_opcode)code, s, b, 0, NULL);
        }
    }
    /* same shapes (no index math), constant shapes */
    cgc_func(c, "binary_same_shape");
    tir_value *x = cgc_param(c, TIR_F32, "N, 3"), *y = cgc_param(c, TIR_F32, "N, 3");
    cgc_2(c, TIR_OP_ADD, x, y, 0, NULL);
    cgc_func(c, "binary_const_shape");
    x = cgc_param(c, TIR_BF16, "4, 1, 3");
    y = cgc_param(c, TIR_BF16, "2, 3");
    cgc_2(c, TIR_OP_MUL, x, y, 0, NULL);
}

static void cgc_where_cast(cgc *c) {
    for (int dt = 0; dt < TIR_DTYPE_COUNT; dt++) {
        // c (N, 1), a (1, M), b () -> (N, M)
        cgc_func(c, "where_%s", tir_dtype_name((tir_dtype)dt));
        tir_value *in[3] = {cgc_param(c, TIR_BOOL, "N, 1"), cgc_param(c, (tir_dtype)dt, "1, M"),
                            cgc_param(c, (tir_dtype)dt, "")};
        cgc_op(c, TIR_OP_WHERE, 3, in, 0, NULL);
    }
    for (int from = 0; from < TIR_DTYPE_COUNT; from++)
        for (int to = 0; to < TIR_DTYPE_COUNT; to++) {
            cgc_func(c, "cast_%s_to_%s", tir_dtype_name((tir_dtype)from), tir_dtype_name((tir_dtype)to));
            tir_value *x = cgc_param(c, (tir_dtype)from, "N, 3");
            tir_attr_value a = tir_a_dtype("dtype", (tir_dtype)to);
            cgc_1(c, TIR_OP_CAST, x, 1, &a);
        }
}

static void cgc_reduce(cgc *c) {
    static const tir_opcode ops[] = {TIR_OP_SUM, TIR_OP_MAX, TIR_OP_MIN, TIR_OP_MEAN, TIR_OP_ARGMAX};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        for (int dt = 0; dt < TIR_DTYPE_COUNT; dt++) {
            tir_opcode code = ops[k];
            if (!cgc_ok(code, (tir_dtype)dt)) continue;
            cgc_func(c, "reduce_%s_%s", tir_ops[code].name, tir_dtype_name((tir_dtype)dt));
            tir_value *x = cgc_param(c, (tir_dtype)dt, "A, B, 6");
            int64_t ax1[] = {1}, ax02[] = {0, 2}, axm1[] = {-1};
            tir_attr_value a1 = tir_a_ints(c->m, "axes", 1, ax1);
            tir_attr_value a02[2] = {tir_a_ints(c->m, "axes", 2, ax02), tir_a_bool("keepdim", true)};
            tir_attr_value am1 = tir_a_ints(c->m, "axes", 1, axm1);
            tir_attr_value a1k[2] = {a1, tir_a_bool("keepdim", true)};
            if (code == TIR_OP_ARGMAX) {
                cgc_1(c, code, x, 1, &am1);
                cgc_1(c, code, x, 2, a1k);
                cgc_1(c, code, cgc_param(c, (tir_dtype)dt, "N"), 0, NULL);
            } else {
                cgc_1(c, code, x, 1, &a1);
                cgc_1(c, code, x, 2, a02);
                cgc_1(c, code, x, 0, NULL);
            }
        }
}

static void cgc_movement(cgc *c) {
    static const tir_dtype dts[] = {TIR_F32, TIR_BF16, TIR_F64, TIR_I8, TIR_BOOL, TIR_F8E4M3, TIR_I64};
    for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++) {
        tir_dtype dt = dts[k];
        const char *dn = tir_dtype_name(dt);
        cgc_func(c, "reshape_%s", dn);
        tir_attr_value sh = cgc_shape(c, "shape", "4, N");
        cgc_1(c, TIR_OP_RESHAPE, cgc_param(c, dt, "N, 4"), 1, &sh);

        cgc_func(c, "transpose_%s", dn);
        int64_t perm[] = {2, 0, 1};
        tir_attr_value pa = tir_a_ints(c->m, "perm", 3, perm);
        cgc_1(c, TIR_OP_TRANSPOSE, cgc_param(c, dt, "A, B, 3"), 1, &pa);

        cgc_func(c, "broadcast_%s", dn);
        tir_attr_value bs = cgc_shape(c, "shape", "3, 2, N");
        cgc_1(c, TIR_OP_BROADCAST, cgc_param(c, dt, "1, N"), 1, &bs);

        cgc_func(c, "slice_%s", dn);
        tir_value *x = cgc_param(c, dt, "N, 9");
        tir_attr_value s1[4] = {tir_a_int("axis", 1), tir_a_int("start", -7), tir_a_int("end", 8),
                                tir_a_int("step", 2)};
        cgc_1(c, TIR_OP_SLICE, x, 4, s1);
        tir_attr_value s0[2] = {tir_a_int("axis", 0), tir_a_int("start", 1)};
        cgc_1(c, TIR_OP_SLICE, x, 2, s0);

        cgc_func(c, "concat_%s", dn);
        tir_value *in[3] = {cgc_param(c, dt, "A, 2"), cgc_param(c, dt, "A, B"), cgc_param(c, dt, "A, 1")};
        tir_attr_value ca = tir_a_int("axis", -1);
        cgc_op(c, TIR_OP_CONCAT, 3, in, 1, &ca);

        cgc_func(c, "split_%s", dn);
        tir_attr_value sa[2] = {tir_a_int("axis", 0), cgc_shape(c, "sizes", "N, 3, 1")};
        tir_value *y = cgc_param(c, dt, "N + 4, 5");
        cgc_op(c, TIR_OP_SPLIT, 1, &y, 2, sa);
    }
}

static void cgc_index(cgc *c) {
    for (int dt = 0; dt < TIR_DTYPE_COUNT; dt++) {
        const char *dn = tir_dtype_name((tir_dtype)dt);
        // take: table (V, D), idx (B, S) -> (B, S, D); table (A, V, 4), idx (K) on axis 1
        cgc_func(c, "take_%s", dn);
        cgc_2(c, TIR_OP_TAKE, cgc_param(c, (tir_dtype)dt, "V, D"), cgc_param(c, TIR_I32, "B, S"), 0, NULL);
        tir_attr_value ax = tir_a_int("axis", 1);
        cgc_2(c, TIR_OP_TAKE, cgc_param(c, (tir_dtype)dt, "A, V, 4"), cgc_param(c, TIR_I64, "K"), 1, &ax);
        if (dt != TIR_BOOL) {
            // scatter_add: target (V, D), idx (N), src (N, D); and on axis 1
            cgc_func(c, "scatter_add_%s", dn);
            tir_value *in[3] = {cgc_param(c, (tir_dtype)dt, "V, D"), cgc_param(c, TIR_I32, "N"),
                                cgc_param(c, (tir_dtype)dt, "N, D")};
            cgc_op(c, TIR_OP_SCATTER_ADD, 3, in, 0, NULL);
            tir_value *in1[3] = {cgc_param(c, (tir_dtype)dt, "A, V"), cgc_param(c, TIR_I64, "K"),
                                 cgc_param(c, (tir_dtype)dt, "A, K")};
            cgc_op(c, TIR_OP_SCATTER_ADD, 3, in1, 1, &ax);
            cgc_func(c, "iota_%s", dn);
            tir_attr_value ia[3] = {cgc_shape(c, "shape", "N, 4"), tir_a_int("axis", 1),
                                    tir_a_dtype("dtype", (tir_dtype)dt)};
            cgc_op(c, TIR_OP_IOTA, 0, NULL, 3, ia);
        }
        cgc_func(c, "full_%s", dn);
        tir_attr_value fa[3] = {tir_a_float("value", 1.5), cgc_shape(c, "shape", "N, 3"),
                                tir_a_dtype("dtype", (tir_dtype)dt)};
        cgc_op(c, TIR_OP_FULL, 0, NULL, 3, fa);
        tir_attr_value fs[2] = {tir_a_float("value", -2.0), tir_a_dtype("dtype", (tir_dtype)dt)};
        tir_attr_value sh0 = cgc_shape(c, "shape", "");
        tir_attr_value fs3[3] = {fs[0], sh0, fs[1]};
        cgc_op(c, TIR_OP_FULL, 0, NULL, 3, fs3);
    }
}

static void cgc_matmul(cgc *c) {
    for (size_t k = 0; k < sizeof cgc_floats / sizeof cgc_floats[0]; k++) {
        tir_dtype dt = cgc_floats[k];
        cgc_func(c, "matmul_%s", tir_dtype_name(dt));
        // (B, M, K) x (K, N); transposed both; batch broadcast (2, 1, M, K) x (3, K, 24); ragged
        cgc_2(c, TIR_OP_MATMUL, cgc_param(c, dt, "B, M, K"), cgc_param(c, dt, "K, N"), 0, NULL);
        tir_attr_value t2[2] = {tir_a_bool("transpose_a", true), tir_a_bool("transpose_b", true)};
        cgc_2(c, TIR_OP_MATMUL, cgc_param(c, dt, "K, M"), cgc_param(c, dt, "N, K"), 2, t2);
        cgc_2(c, TIR_OP_MATMUL, cgc_param(c, dt, "2, 1, M, K"), cgc_param(c, dt, "3, K, 24"), 0, NULL);
        cgc_2(c, TIR_OP_MATMUL, cgc_param(c, dt, "37, 19"), cgc_param(c, dt, "19, 70"), 0, NULL);
    }
}

/* Builds every case into c->m (a new module of a new context). */
static void cgc_build(cgc *c) {
    memset(c, 0, sizeof *c);
    c->ctx = tir_context_create();
    c->m = tir_module_new(c->ctx);
    cgc_unary(c);
    cgc_binary(c);
    cgc_where_cast(c);
    cgc_reduce(c);
    cgc_movement(c);
    cgc_index(c);
    cgc_matmul(c);
}

static void cgc_free(cgc *c) {
    tir_module_free(c->m);
    tir_context_destroy(c->ctx);
}

#endif
