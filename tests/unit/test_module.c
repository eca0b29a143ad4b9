/* test_module.c: modules, functions and ops (ir/module.c): the tir_ib builder, attribute
 * access, types, value_and_grad definitions, and the public tir_builder API with its sticky
 * errors. */
#include <check.h>
#include <stdio.h>

#include "ir.h"

static tir_context *ctx;
static tir_module *mod;

static void setup(void) {
    ctx = tir_context_create();
    mod = tir_module_new(ctx);
}
static void teardown(void) {
    tir_module_free(mod);
    tir_context_destroy(ctx);
}

static const tir_dim *D(const char *s) { return tir_dim_parse(ctx, s, strlen(s), NULL); }

static tir_type T(tir_dtype dt, int rank, const char *const *dims) {
    tir_type t = {.dtype = dt, .rank = rank};
    for (int i = 0; i < rank; i++) t.dims[i] = D(dims[i]);
    return t;
}

static const char *TS(const tir_type *t) {
    static char buf[4][256];
    static int k;
    char *b = buf[k++ % 4];
    tir_type_print(t, b, 256);
    return b;
}

START_TEST(test_funcs) {
    tir_diag d;
    tir_func *f = tir_func_new(mod, "f", (tir_loc){0, 0}, &d);
    tir_func *g = tir_func_new(mod, "g", (tir_loc){0, 0}, &d);
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(g);
    ck_assert_ptr_null(tir_func_new(mod, "f", (tir_loc){3, 5}, &d));
    ck_assert_int_eq(d.status, TIR_ERR_TYPE);
    ck_assert_msg(strstr(d.msg, "@f") && strstr(d.msg, "already"), "%s", d.msg);
    ck_assert_int_eq(d.line, 3);
    ck_assert_int_eq(tir_module_num_funcs(mod), 2);
    ck_assert_str_eq(tir_module_func_name(mod, 1), "g");
    ck_assert_ptr_null(tir_module_func_name(mod, 2));
    ck_assert_ptr_eq(tir_module_find(mod, "g"), g);
    ck_assert_ptr_null(tir_module_find(mod, "h"));
    ck_assert_int_eq(tir_func_num_params(mod, "h"), -1);
    /* many functions: the array grows */
    for (int i = 0; i < 100; i++) {
        char name[16];
        snprintf(name, sizeof name, "k%d", i);
        ck_assert_ptr_nonnull(tir_func_new(mod, name, (tir_loc){0, 0}, &d));
    }
    ck_assert_int_eq(tir_module_num_funcs(mod), 102);
    ck_assert_ptr_eq(tir_module_find(mod, "f"), f);
    ck_assert_str_eq(tir_module_func_name(mod, 101), "k99");
}
END_TEST

START_TEST(test_types) {
    tir_type a = T(TIR_BF16, 2, (const char *[]){"B*T", "4096"});
    tir_type b = T(TIR_BF16, 2, (const char *[]){"T*B", "4096"});
    tir_type c = T(TIR_F32, 2, (const char *[]){"B*T", "4096"});
    tir_type s = T(TIR_F32, 0, NULL);
    ck_assert(tir_type_equal(&a, &b));
    ck_assert(!tir_type_equal(&a, &c));
    ck_assert(!tir_type_equal(&c, &s));
    ck_assert_str_eq(TS(&a), "bf16[B*T, 4096]");
    ck_assert_str_eq(TS(&s), "f32[]");
    tir_type q = T(TIR_I64, 3, (const char *[]){"(N + 1)/2", "2*H + 1", "N - 1"});
    ck_assert_str_eq(TS(&q), "i64[(N + 1)/2, 2*H + 1, N - 1]");
    char small[6];
    ck_assert_int_eq(tir_type_print(&a, small, sizeof small), 15);
    ck_assert_str_eq(small, "bf16[");
    tir_bindings bd = {0};
    tir_bindings_set(&bd, "N", 7);
    tir_bindings_set(&bd, "H", 3);
    int64_t dims[3];
    ck_assert_int_eq(tir_type_eval(&q, &bd, dims), TIR_OK);
    ck_assert_int_eq(dims[0], 4);
    ck_assert_int_eq(dims[1], 7);
    ck_assert_int_eq(dims[2], 6);
    ck_assert_int_eq(tir_type_eval(&a, &bd, dims), TIR_ERR_INVALID); /* B, T unbound */
}
END_TEST

/* f(x: f32[N, H], w: f32[H]) built with tir_ib */
START_TEST(test_ib) {
    tir_diag d = {0};
    tir_func *f = tir_func_new(mod, "f", (tir_loc){0, 0}, &d);
    tir_type xt = T(TIR_F32, 2, (const char *[]){"N", "H"}), wt = T(TIR_F32, 1, (const char *[]){"H"});
    tir_value *x = tir_func_add_param(f, "x", &xt, (tir_loc){0, 0});
    tir_value *w = tir_func_add_param(f, "w", &wt, (tir_loc){0, 0});
    ck_assert_int_eq(x->id, 0);
    ck_assert_int_eq(w->id, 1);
    ck_assert_int_eq(w->index, 1);
    ck_assert_ptr_null(w->def);
    tir_ib b = {.f = f, .loc = {4, 2}, .d = &d};
    tir_value *y = tir_ib_bin(&b, TIR_OP_MUL, x, w);
    ck_assert_ptr_nonnull(y);
    ck_assert(tir_type_equal(&y->type, &xt));
    ck_assert_int_eq(y->id, 2);
    int64_t axes[1] = {-1};
    tir_value *s = tir_ib_reduce(&b, TIR_OP_SUM, y, 1, axes, true);
    ck_assert_ptr_nonnull(s);
    axes[0] = 0; /* the op keeps its own copy */
    ck_assert_str_eq(TS(&s->type), "f32[N, 1]");
    tir_value *two = tir_ib_const(&b, 2.5, TIR_F32);
    ck_assert_str_eq(TS(&two->type), "f32[]");
    tir_value *z = tir_ib_bin(&b, TIR_OP_ADD, s, two);
    ck_assert_ptr_eq(tir_ib_cast(&b, z, TIR_F32), z);
    tir_value *o = tir_ib_cast(&b, z, TIR_BF16);
    ck_assert_ptr_ne(o, z);
    ck_assert_str_eq(TS(&o->type), "bf16[N, 1]");
    ck_assert_int_eq(f->nops, 5);
    ck_assert_int_eq(o->id, 6);
    ck_assert_int_eq(f->nvalues, 7);
    ck_assert_int_eq(o->def->loc.line, 4);
    ck_assert_ptr_eq(o->def->in[0], z);
    ck_assert_ptr_eq(f->ops[0]->out[0], y);

    /* attributes as stored on the ops */
    const tir_op *sum = s->def, *full = two->def, *cast = o->def;
    ck_assert_int_eq(sum->code, TIR_OP_SUM);
    const tir_attr_value *ax = tir_op_attr(sum, "axes");
    ck_assert_ptr_nonnull(ax);
    ck_assert_int_eq(ax->kind, TIR_ATTR_INTS);
    ck_assert_int_eq(ax->u.ints.n, 1);
    ck_assert_int_eq(ax->u.ints.v[0], -1);
    ck_assert(tir_attr_bool(sum, "keepdim", false));
    ck_assert(tir_attr_float(full, "value", 0) == 2.5);
    ck_assert_int_eq(tir_attr_int(full, "value", 77), 77); /* wrong kind: default */
    ck_assert_int_eq(tir_op_attr(full, "dtype")->u.dtype, TIR_F32);
    ck_assert_int_eq(tir_op_attr(cast, "dtype")->u.dtype, TIR_BF16);
    ck_assert_str_eq(tir_attr_str(cast, "nope", "dflt"), "dflt");
    ck_assert_ptr_null(tir_op_attr(cast, "nope"));

    tir_func_set_results(f, 1, &o);
    tir_func_set_ret(f, 1, &o->type);
    ck_assert_int_eq(tir_verify(mod, &d), TIR_OK);
    ck_assert_int_eq(tir_func_num_results(mod, "f"), 1);
    ck_assert_int_eq(tir_func_num_params(mod, "f"), 2);

    /* an ill-typed op: NULL, diag at the builder's loc, and the error sticks */
    tir_value *bad = tir_ib_bin(&b, TIR_OP_ADD, o, x); /* bf16 + f32 */
    ck_assert_ptr_null(bad);
    ck_assert(b.failed);
    ck_assert_int_eq(d.status, TIR_ERR_TYPE);
    ck_assert_int_eq(d.line, 4);
    char first[1024];
    strcpy(first, d.msg);
    ck_assert_ptr_null(tir_ib_un(&b, TIR_OP_NEG, x));
    ck_assert_ptr_null(tir_ib_const(&b, 1, TIR_F32));
    ck_assert_str_eq(d.msg, first);
    ck_assert_int_eq(f->nops, 5);
}
END_TEST

START_TEST(test_ib_movement) {
    tir_diag d = {0};
    tir_func *f = tir_func_new(mod, "m", (tir_loc){0, 0}, &d);
    tir_type xt = T(TIR_BF16, 2, (const char *[]){"B*T", "H"});
    tir_type wt = T(TIR_BF16, 2, (const char *[]){"V", "H"});
    tir_value *x = tir_func_add_param(f, "x", &xt, (tir_loc){0, 0});
    tir_value *w = tir_func_add_param(f, "w", &wt, (tir_loc){0, 0});
    tir_ib b = {.f = f, .d = &d};
    const tir_dim *shape[3] = {D("B"), D("T"), D("H")};
    tir_value *r = tir_ib_reshape(&b, x, 3, shape);
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_eq(r->type.dims[1], D("T"));
    tir_value *t = tir_ib_transpose(&b, r, (const int64_t[]){1, 0, 2});
    ck_assert_str_eq(TS(&t->type), "bf16[T, B, H]");
    tir_value *mm = tir_ib_matmul(&b, x, w, false, true);
    ck_assert_ptr_nonnull(mm);
    ck_assert_str_eq(TS(&mm->type), "bf16[B*T, V]");
    ck_assert(tir_attr_bool(mm->def, "transpose_b", false));
    ck_assert(!tir_attr_bool(mm->def, "transpose_a", false));
    const tir_dim *bshape[3] = {D("4"), D("B*T"), D("H")};
    tir_value *bc = tir_ib_broadcast(&b, x, 3, bshape);
    ck_assert_str_eq(TS(&bc->type), "bf16[4, B*T, H]");
    tir_type ft = T(TIR_F32, 2, (const char *[]){"2", "H"});
    tir_value *fl = tir_ib_full(&b, -1.5, &ft);
    ck_assert_str_eq(TS(&fl->type), "f32[2, H]");
    const tir_attr_value *sh = tir_op_attr(fl->def, "shape");
    ck_assert_int_eq(sh->u.shape.n, 2);
    ck_assert_ptr_eq(sh->u.shape.v[1], D("H"));
    ck_assert(!b.failed);
    /* reshape to a different element count fails */
    const tir_dim *bad[2] = {D("B"), D("H")};
    ck_assert_ptr_null(tir_ib_reshape(&b, x, 2, bad));
    ck_assert_int_eq(d.status, TIR_ERR_TYPE);
}
END_TEST

START_TEST(test_append_op_direct) {
    tir_diag d = {0};
    tir_func *f = tir_func_new(mod, "s", (tir_loc){0, 0}, &d);
    tir_type xt = T(TIR_F32, 1, (const char *[]){"3*N"});
    tir_value *x = tir_func_add_param(f, "x", &xt, (tir_loc){0, 0});
    /* attributes from stack memory, clobbered after the call */
    const tir_dim *sizes[3] = {D("N"), D("N"), D("N")};
    tir_attr_value at[2] = {tir_a_int("axis", 0), tir_a_shape(mod, "sizes", 3, sizes)};
    char name[8] = "axis";
    at[0].name = name;
    tir_op *op = tir_func_append_op(f, TIR_OP_SPLIT, 1, &x, 2, at, NULL, (tir_loc){1, 1}, &d);
    ck_assert_msg(op != NULL, "%s", d.msg);
    strcpy(name, "zzzz");
    ck_assert_int_eq(op->nout, 3);
    ck_assert_int_eq(tir_attr_int(op, "axis", -5), 0);
    ck_assert(tir_attr_float(op, "axis", -5.0) == 0.0); /* int accepted as float */
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_eq(op->out[i]->def, op);
        ck_assert_int_eq(op->out[i]->index, i);
        ck_assert_str_eq(TS(&op->out[i]->type), "f32[N]");
    }
    /* a NULL operand is an error, not a crash */
    tir_value *none = NULL;
    ck_assert_ptr_null(tir_func_append_op(f, TIR_OP_NEG, 1, &none, 0, NULL, NULL, (tir_loc){0, 0}, &d));
    ck_assert_int_ne(d.status, TIR_OK);
    /* an operand of another function */
    tir_func *g = tir_func_new(mod, "g", (tir_loc){0, 0}, &d);
    ck_assert_ptr_null(tir_func_append_op(g, TIR_OP_NEG, 1, &x, 0, NULL, NULL, (tir_loc){0, 0}, &d));
    ck_assert_int_eq(d.status, TIR_ERR_TYPE);
    /* many ops: the op array grows */
    tir_ib b = {.f = f, .d = &d};
    tir_value *v = x;
    for (int i = 0; i < 200; i++) v = tir_ib_un(&b, TIR_OP_NEG, v);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(f->nops, 201);
    ck_assert_ptr_eq(f->ops[200]->out[0], v);
    ck_assert_ptr_eq(f->ops[100]->in[0], f->ops[99]->out[0]);
}
END_TEST

static void build_loss(void) {
    tir_diag d = {0};
    tir_builder *b = tir_builder_begin(mod, "loss");
    tir_value *x = tir_build_param(b, "x", TIR_F32, 1, (const char *[]){"N"});
    tir_value *w = tir_build_param(b, "w", TIR_F32, 1, (const char *[]){"N"});
    tir_build_param(b, "k", TIR_I32, 1, (const char *[]){"N"});
    tir_value *p = tir_build_op(b, "mul", 2, (tir_value *[]){x, w}, 0, NULL);
    tir_value *s = tir_build_op(b, "sum", 1, &p, 0, NULL);
    ck_assert_int_eq(tir_builder_finish(b, 1, &s, &d), TIR_OK);
}

START_TEST(test_value_and_grad) {
    build_loss();
    tir_diag d = {0};
    const char *wrt[2] = {"w", "%x"};
    ck_assert_int_eq(tir_define_value_and_grad(mod, "loss_grad", "loss", 2, wrt, &d), TIR_OK);
    tir_func *g = tir_module_find(mod, "loss_grad"), *l = tir_module_find(mod, "loss");
    ck_assert_ptr_nonnull(g);
    ck_assert_ptr_eq(g->grad_of, l);
    ck_assert_int_eq(g->nparams, 3);
    ck_assert_str_eq(g->params[2]->name, "k");
    ck_assert(tir_type_equal(&g->params[1]->type, &l->params[1]->type));
    ck_assert_int_eq(g->nwrt, 2);
    ck_assert_int_eq(g->wrt[0], 1);
    ck_assert_int_eq(g->wrt[1], 0);
    ck_assert_int_eq(tir_func_num_results(mod, "loss_grad"), 3);
    ck_assert_str_eq(TS(&g->ret[0]), "f32[]");
    ck_assert_str_eq(TS(&g->ret[1]), "f32[N]");
    ck_assert_int_eq(g->nops, 0);

    struct { const char *name, *of, *w1, *w2; int n; const char *want; } bad[] = {
        {"g1", "nope", "w", NULL, 1, "unknown"},
        {"g2", "loss", "q", NULL, 1, "%q"},
        {"g3", "loss", "w", "w", 2, "repeated"},
        {"g4", "loss", "k", NULL, 1, "i32"},
        {"g5", "loss", NULL, NULL, 0, "wrt"},
        {"g6", "loss_grad", "w", NULL, 1, "3 results"},
        {"loss_grad", "loss", "w", NULL, 1, "already"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *ws[2] = {bad[i].w1, bad[i].w2};
        tir_status st = tir_define_value_and_grad(mod, bad[i].name, bad[i].of, bad[i].n, ws, &d);
        ck_assert_int_eq(st, TIR_ERR_TYPE);
        ck_assert_int_eq(d.status, TIR_ERR_TYPE);
        ck_assert_msg(strstr(d.msg, bad[i].want), "case %zu: %s", i, d.msg);
    }
    ck_assert_int_eq(tir_module_num_funcs(mod), 2);
}
END_TEST

START_TEST(test_grad_of_non_scalar) {
    tir_diag d = {0};
    tir_builder *b = tir_builder_begin(mod, "vec");
    tir_value *x = tir_build_param(b, "x", TIR_F32, 1, (const char *[]){"N"});
    tir_value *y = tir_build_op(b, "exp", 1, &x, 0, NULL);
    ck_assert_int_eq(tir_builder_finish(b, 1, &y, &d), TIR_OK);
    const char *wrt[1] = {"x"};
    ck_assert_int_eq(tir_define_value_and_grad(mod, "vg", "vec", 1, wrt, &d), TIR_ERR_TYPE);
    ck_assert_msg(strstr(d.msg, "f32[N]") && strstr(d.msg, "scalar"), "%s", d.msg);
}
END_TEST

START_TEST(test_builder) {
    tir_diag d = {0};
    tir_builder *b = tir_builder_begin(mod, "axpy");
    tir_value *a = tir_build_param(b, "a", TIR_F32, 0, NULL);
    tir_value *x = tir_build_param(b, "x", TIR_F32, 2, (const char *[]){"B*T", "H"});
    tir_value *y = tir_build_param(b, "y", TIR_F32, 2, (const char *[]){"T*B", "H"});
    ck_assert(tir_type_equal(&x->type, &y->type));
    tir_value *ax = tir_build_op(b, "mul", 2, (tir_value *[]){a, x}, 0, NULL);
    tir_value *r = tir_build_op(b, "add", 2, (tir_value *[]){ax, y}, 0, NULL);
    tir_value *c = tir_build_const(b, 0.5, TIR_F32);
    r = tir_build_op(b, "mul", 2, (tir_value *[]){r, c}, 0, NULL);
    tir_value_set_name(r, "out");
    tir_attr sh = {.name = "shape", .kind = TIR_ATTR_SHAPE};
    sh.u.shape.n = 3;
    sh.u.shape.v = (const char *const[]){"B", "T", "H"};
    tir_value *r3 = tir_build_op(b, "reshape", 1, &r, 1, &sh);
    ck_assert_ptr_nonnull(r3);
    ck_assert_str_eq(TS(&r3->type), "f32[B, T, H]");
    tir_attr sp[2] = {{.name = "axis", .kind = TIR_ATTR_INT, .u.i = 2},
                      {.name = "sizes", .kind = TIR_ATTR_SHAPE}};
    sp[1].u.shape.n = 2;
    sp[1].u.shape.v = (const char *const[]){"H - 1", "1"};
    tir_value *parts[4] = {NULL};
    ck_assert_int_eq(tir_build_op_n(b, "split", 1, &r3, 2, sp, 4, parts), 2);
    ck_assert_str_eq(TS(&parts[0]->type), "f32[B, T, H - 1]");
    ck_assert_str_eq(TS(&parts[1]->type), "f32[B, T, 1]");
    ck_assert_ptr_null(parts[2]);
    ck_assert_int_eq(tir_builder_finish(b, 2, (tir_value *[]){r, parts[1]}, &d), TIR_OK);
    ck_assert_int_eq(d.status, TIR_OK);
    ck_assert_int_eq(tir_func_num_params(mod, "axpy"), 3);
    ck_assert_int_eq(tir_func_num_results(mod, "axpy"), 2);
    tir_func *f = tir_module_find(mod, "axpy");
    ck_assert_str_eq(f->results[0]->name, "out");
    ck_assert(tir_type_equal(&f->ret[1], &parts[1]->type));

    /* a callee with two results, and a caller that binds its N = 2*K + 1 */
    b = tir_builder_begin(mod, "twice");
    x = tir_build_param(b, "x", TIR_F32, 1, (const char *[]){"N"});
    tir_value *x2 = tir_build_op(b, "add", 2, (tir_value *[]){x, x}, 0, NULL);
    tir_value *x3 = tir_build_op(b, "neg", 1, &x2, 0, NULL);
    ck_assert_int_eq(tir_builder_finish(b, 2, (tir_value *[]){x2, x3}, &d), TIR_OK);
    b = tir_builder_begin(mod, "caller");
    tir_value *p = tir_build_param(b, "p", TIR_F32, 1, (const char *[]){"2*K + 1"});
    tir_value *cr = tir_build_call(b, "twice", 1, &p);
    ck_assert_msg(cr != NULL, "%s", d.msg);
    ck_assert_str_eq(TS(&cr->type), "f32[2*K + 1]");
    ck_assert_int_eq(cr->def->nout, 2);
    ck_assert_ptr_eq(cr->def->callee, tir_module_find(mod, "twice"));
    ck_assert_int_eq(tir_builder_finish(b, 1, &cr->def->out[1], &d), TIR_OK);
    ck_assert_int_eq(tir_module_num_funcs(mod), 3);
    ck_assert_int_eq(tir_func_num_results(mod, "caller"), 1);
}
END_TEST

/* each case: the first error sticks, later calls return NULL, finish reports it and takes the
 * half-built function out of the module */
START_TEST(test_builder_errors) {
    tir_diag d = {0};
    build_loss();
    int before = tir_module_num_funcs(mod);

    tir_builder *b = tir_builder_begin(mod, "bad_dim");
    ck_assert_ptr_null(tir_build_param(b, "x", TIR_F32, 1, (const char *[]){"N +"}));
    tir_value *y = tir_build_param(b, "y", TIR_F32, 1, (const char *[]){"N"});
    ck_assert_ptr_null(y);
    ck_assert_ptr_null(tir_build_op(b, "neg", 1, &y, 0, NULL));
    ck_assert_int_eq(tir_builder_finish(b, 1, &y, &d), TIR_ERR_INVALID);
    ck_assert_msg(strstr(d.msg, "N +") && strstr(d.msg, "%x"), "%s", d.msg);
    ck_assert_int_eq(tir_module_num_funcs(mod), before);
    ck_assert_ptr_null(tir_module_find(mod, "bad_dim"));

    b = tir_builder_begin(mod, "bad_op");
    tir_value *x = tir_build_param(b, "x", TIR_F32, 1, (const char *[]){"N"});
    ck_assert_ptr_null(tir_build_op(b, "frobnicate", 1, &x, 0, NULL));
    ck_assert_ptr_null(tir_build_op(b, "neg", 1, &x, 0, NULL)); /* sticky */
    ck_assert_int_eq(tir_builder_finish(b, 1, &x, &d), TIR_ERR_INVALID);
    ck_assert_msg(strstr(d.msg, "frobnicate"), "%s", d.msg);

    b = tir_builder_begin(mod, "bad_type");
    x = tir_build_param(b, "x", TIR_F32, 1, (const char *[]){"N"});
    tir_value *z = tir_build_param(b, "z", TIR_F32, 1, (const char *[]){"M"});
    ck_assert_ptr_null(tir_build_op(b, "add", 2, (tir_value *[]){x, z}, 0, NULL));
    ck_assert_int_eq(tir_builder_finish(b, 1, &x, &d), TIR_ERR_TYPE);
    ck_assert_msg(strstr(d.msg, "f32[N]") && strstr(d.msg, "f32[M]"), "%s", d.msg);

    b = tir_builder_begin(mod, "bad_shape_attr");
    x = tir_build_param(b, "x", TIR_F32, 1, (const char *[]){"N"});
    tir_attr sh = {.name = "shape", .kind = TIR_ATTR_SHAPE};
    sh.u.shape.n = 1;
    sh.u.shape.v = (const char *const[]){"N)"};
    ck_assert_ptr_null(tir_build_op(b, "reshape", 1, &x, 1, &sh));
    ck_assert_int_eq(tir_build_op_n(b, "neg", 1, &x, 0, NULL, 1, &z), -1);
    ck_assert_int_eq(tir_builder_finish(b, 1, &x, &d), TIR_ERR_INVALID);
    ck_assert_msg(strstr(d.msg, "N)"), "%s", d.msg);

    b = tir_builder_begin(mod, "bad_call");
    x = tir_build_param(b, "x", TIR_F32, 1, (const char *[]){"N"});
    ck_assert_ptr_null(tir_build_call(b, "missing", 1, &x));
    ck_assert_int_eq(tir_builder_finish(b, 1, &x, &d), TIR_ERR_INVALID);
    ck_assert_msg(strstr(d.msg, "@missing"), "%s", d.msg);

    b = tir_builder_begin(mod, "bad_args");
    x = tir_build_param(b, "x", TIR_F32, 1, (const char *[]){"N"});
    ck_assert_ptr_null(tir_build_call(b, "loss", 1, &x)); /* loss takes 3 */
    ck_assert_int_eq(tir_builder_finish(b, 1, &x, &d), TIR_ERR_TYPE);

    b = tir_builder_begin(mod, "dup_param");
    tir_build_param(b, "x", TIR_F32, 0, NULL);
    ck_assert_ptr_null(tir_build_param(b, "x", TIR_F32, 0, NULL));
    ck_assert_int_eq(tir_builder_finish(b, 0, NULL, &d), TIR_ERR_INVALID);

    b = tir_builder_begin(mod, "null_result");
    ck_assert_int_eq(tir_builder_finish(b, 1, (tir_value *[]){NULL}, &d), TIR_ERR_INVALID);

    /* a duplicate name fails at finish, and leaves the existing function alone */
    b = tir_builder_begin(mod, "loss");
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_null(tir_build_param(b, "x", TIR_F32, 0, NULL));
    ck_assert_int_eq(tir_builder_finish(b, 0, NULL, &d), TIR_ERR_TYPE);
    ck_assert_msg(strstr(d.msg, "@loss"), "%s", d.msg);
    ck_assert_ptr_nonnull(tir_module_find(mod, "loss"));
    ck_assert_int_eq(tir_module_num_funcs(mod), before);
    ck_assert_int_eq(tir_func_num_params(mod, "loss"), 3);

    /* a result that belongs to another function */
    b = tir_builder_begin(mod, "foreign");
    ck_assert_int_eq(tir_builder_finish(b, 1, &tir_module_find(mod, "loss")->params[0], &d),
                     TIR_ERR_INVALID);
    ck_assert_int_eq(tir_module_num_funcs(mod), before);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("module");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_funcs);
    tcase_add_test(tc, test_types);
    tcase_add_test(tc, test_ib);
    tcase_add_test(tc, test_ib_movement);
    tcase_add_test(tc, test_append_op_direct);
    tcase_add_test(tc, test_value_and_grad);
    tcase_add_test(tc, test_grad_of_non_scalar);
    tcase_add_test(tc, test_builder);
    tcase_add_test(tc, test_builder_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
