/* test_parser.c: the .tir frontend (frontend/lexer.c, frontend/parser.c): every example and golden
 * program parses or fails exactly as its golden says; diagnostics point at the right line and
 * column; 50,000-deep expressions parse without recursion; every op name of ops.def is known;
 * literals get the dtype of their neighbours; forward references resolve; hostile bytes and
 * mutated programs give diagnostics, never crashes or leaks (the suite runs under ASan+LSan). */
#include <check.h>
#include <dirent.h>
#include <stdio.h>

#include "frontend.h"
#include "ir.h"
#include "testutil.h"

static tir_context *ctx;

static void setup(void) { ctx = tir_context_create(); }
static void teardown(void) { tir_context_destroy(ctx); }

static tir_module *parse_ok(const char *src) {
    tir_module *m = NULL;
    tir_diag d;
    tir_status st = tir_module_parse(ctx, src, "t.tir", &m, &d);
    if (st != TIR_OK) {
        tir_diag_print(&d, stderr);
        ck_abort_msg("parse failed: %s", d.msg);
    }
    ck_assert_ptr_nonnull(m);
    return m;
}

/* parse must fail at line:col with msg containing sub */
static void parse_err_n(const char *src, size_t len, int line, int col, const char *sub) {
    tir_module *m = (tir_module *)1;
    tir_diag d;
    tir_status st = tir_frontend_parse(ctx, src, len, "t.tir", &m, &d);
    ck_assert_msg(st != TIR_OK, "expected an error containing '%s'", sub);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(d.status, st);
    ck_assert_msg(strstr(d.msg, sub) != NULL, "message '%s' lacks '%s'", d.msg, sub);
    ck_assert_msg(d.line == line && d.col == col, "'%s' at %d:%d, expected %d:%d", d.msg, d.line, d.col, line, col);
    ck_assert_str_eq(d.file, "t.tir");
}
static void parse_err(const char *src, int line, int col, const char *sub) { parse_err_n(src, strlen(src), line, col, sub); }


static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

/* the .tir files of dir (under TIR_SOURCE_DIR), sorted; returns count */
static int list_tir(const char *sub, char paths[][1024], int max) {
    const char *root = getenv("TIR_SOURCE_DIR");
    if (!root) root = ".";
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", root, sub);
    DIR *dp = opendir(dir);
    ck_assert_msg(dp != NULL, "cannot open %s (set TIR_SOURCE_DIR)", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) && n < max) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".tir") == 0) snprintf(paths[n++], 1024, "%s/%s", dir, e->d_name);
    }
    closedir(dp);
    qsort(paths, (size_t)n, 1024, cmp_str);
    return n;
}

/* ---------------------------------------------------------------- examples and goldens */

START_TEST(examples_parse) {
    static char paths[64][1024];
    int n = list_tir("examples", paths, 64);
    ck_assert_int_gt(n, 0);
    for (int i = 0; i < n; i++) {
        tir_module *m = NULL;
        tir_diag d;
        tir_status st = tir_module_parse_file(ctx, paths[i], &m, &d);
        if (st != TIR_OK) tir_diag_print(&d, stderr);
        ck_assert_msg(st == TIR_OK, "%s: %s", paths[i], d.msg);
        ck_assert_int_gt(tir_module_num_funcs(m), 0);
        ck_assert_str_eq(m->filename, paths[i]);
        ck_assert_ptr_nonnull(m->source);
        tir_module_free(m);
    }
}
END_TEST

/* Each golden: parse through the library; an EXPECT-ERROR golden must fail with its text in the
 * formatted first line, any other must parse. (run.sh checks the same through tirc.) */
START_TEST(goldens_parse_as_expected) {
    static char paths[256][1024];
    int n = list_tir("tests/golden", paths, 256);
    ck_assert_int_ge(n, 30);
    int nerr = 0;
    for (int i = 0; i < n; i++) {
        char *src = tu_read_file_len(paths[i], NULL);
        ck_assert_ptr_nonnull(src);
        char expect[1024] = "";
        const char *e = strstr(src, "\n# EXPECT-ERROR: ");
        if (e) {
            e += strlen("\n# EXPECT-ERROR: ");
            size_t l = strcspn(e, "\r\n");
            snprintf(expect, sizeof expect, "%.*s", (int)l, e);
        }
        free(src);
        tir_module *m = NULL;
        tir_diag d;
        tir_status st = tir_module_parse_file(ctx, paths[i], &m, &d);
        if (expect[0]) {
            nerr++;
            ck_assert_msg(st != TIR_OK, "%s parsed, expected %s", paths[i], expect);
            char line[2048];
            snprintf(line, sizeof line, "%s:%d:%d: error: %s", d.file, d.line, d.col, d.msg);
            ck_assert_msg(strstr(line, expect) != NULL, "%s: got '%s', expected '%s'", paths[i], line, expect);
        } else {
            if (st != TIR_OK) tir_diag_print(&d, stderr);
            ck_assert_msg(st == TIR_OK, "%s: %s", paths[i], d.msg);
            tir_module_free(m);
        }
    }
    ck_assert_int_ge(nerr, 30);
}
END_TEST

/* ---------------------------------------------------------------- structure */

START_TEST(builds_expected_ir) {
    tir_module *m = parse_ok("# comment\n"
                             "func @f(%x: f32[N, H], %w: f32[H]) -> (f32[N, H], f32[]) {\n"
                             "  %y = mul(add(%x, 1.0), %w)   # nested\n"
                             "  %s: f32[] = sum(%y)\n"
                             "  return %y, %s\n"
                             "}\n");
    ck_assert_int_eq(m->nfuncs, 1);
    tir_func *f = m->funcs[0];
    ck_assert_str_eq(f->name, "f");
    ck_assert_int_eq(f->nparams, 2);
    ck_assert_str_eq(f->params[0]->name, "x");
    ck_assert_int_eq(f->nret, 2);
    ck_assert_int_eq(f->nres, 2);
    /* full (the literal), add, mul, sum */
    ck_assert_int_eq(f->nops, 4);
    ck_assert_int_eq(f->ops[0]->code, TIR_OP_FULL);
    ck_assert_int_eq(f->ops[1]->code, TIR_OP_ADD);
    ck_assert_ptr_null(f->ops[1]->out[0]->name);
    ck_assert_int_eq(f->ops[2]->code, TIR_OP_MUL);
    ck_assert_str_eq(f->ops[2]->out[0]->name, "y");
    ck_assert_int_eq(f->ops[1]->loc.line, 3);
    ck_assert_int_eq(f->ops[1]->loc.col, 12);
    ck_assert_int_eq(f->ops[0]->loc.col, 20);
    ck_assert_ptr_eq(f->results[1], f->ops[3]->out[0]);
    ck_assert_str_eq(m->filename, "t.tir");
    ck_assert_ptr_nonnull(strstr(m->source, "# nested"));
    tir_module_free(m);
}
END_TEST

START_TEST(forward_references_and_order) {
    tir_module *m = parse_ok("func @a(%x: f32[4]) -> (f32[], f32[4]) {\n"
                             "  %l, %g = call @g(%x)\n"
                             "  return %l, %g\n"
                             "}\n"
                             "func @g = value_and_grad(@loss, wrt=[%w])\n"
                             "func @loss(%w: f32[4]) -> f32[] {\n"
                             "  %l = sum(call @sq(%w))\n"
                             "  return %l\n"
                             "}\n"
                             "func @sq(%v: f32[4]) -> f32[4] {\n"
                             "  %r = mul(%v, %v)\n"
                             "  return %r\n"
                             "}\n");
    ck_assert_int_eq(tir_module_num_funcs(m), 4);
    ck_assert_str_eq(tir_module_func_name(m, 0), "a");
    ck_assert_str_eq(tir_module_func_name(m, 1), "g");
    ck_assert_str_eq(tir_module_func_name(m, 2), "loss");
    ck_assert_str_eq(tir_module_func_name(m, 3), "sq");
    tir_func *g = tir_module_find(m, "g");
    ck_assert_ptr_eq(g->grad_of, tir_module_find(m, "loss"));
    ck_assert_int_eq(g->nwrt, 1);
    ck_assert_int_eq(tir_func_num_results(m, "g"), 2);
    ck_assert_ptr_eq(m->funcs[0]->ops[0]->callee, g);
    tir_module_free(m);
}
END_TEST

START_TEST(attribute_kinds) {
    tir_module *m = parse_ok("func @f(%x: f32[B, T, H]) -> (f32[B*T, H], f32[B, 1, H], f32[B, T, H], f32[B, T, H]) {\n"
                             "  %r = reshape(%x, shape=[B*T, H])\n"
                             "  %s = sum(%x, axes=[-2], keepdim=true)\n"
                             "  %g = gelu(%x, approximate=\"tanh\")\n"
                             "  %n = rmsnorm(%x, full(1, shape=[H], dtype=f32), eps=1)\n"
                             "  return %r, %s, %g, %n\n"
                             "}\n");
    tir_func *f = m->funcs[0];
    const tir_op *r = f->ops[0], *s = f->ops[1], *g = f->ops[2], *full = f->ops[3], *n = f->ops[4];
    ck_assert_int_eq(r->attrs[0].kind, TIR_ATTR_SHAPE);
    ck_assert_int_eq(r->attrs[0].u.shape.n, 2);
    ck_assert_int_eq(s->attrs[0].kind, TIR_ATTR_INTS);
    ck_assert_int_eq(s->attrs[0].u.ints.v[0], -2);
    ck_assert_int_eq(s->attrs[1].kind, TIR_ATTR_BOOL);
    ck_assert(s->attrs[1].u.b);
    ck_assert_int_eq(g->attrs[0].kind, TIR_ATTR_STR);
    ck_assert_str_eq(g->attrs[0].u.s, "tanh");
    /* full's positional value becomes the first attribute, a float; shape=[H] a SHAPE */
    ck_assert_int_eq(full->code, TIR_OP_FULL);
    ck_assert_str_eq(full->attrs[0].name, "value");
    ck_assert_int_eq(full->attrs[0].kind, TIR_ATTR_FLOAT);
    ck_assert(full->attrs[0].u.f == 1.0);
    ck_assert_int_eq(full->attrs[1].kind, TIR_ATTR_SHAPE);
    ck_assert_int_eq(full->attrs[2].kind, TIR_ATTR_DTYPE);
    /* eps is a float in the schema: the integer literal is taken as one */
    ck_assert_int_eq(n->attrs[0].kind, TIR_ATTR_FLOAT);
    ck_assert(n->attrs[0].u.f == 1.0);
    tir_module_free(m);
}
END_TEST

START_TEST(big_integer_attributes_are_exact) {
    tir_module *m = parse_ok("func @f(%x: f32[N, 8]) -> f32[N, 8] {\n"
                             "  %s = slice(%x, axis=1, start=-9223372036854775808, end=9223372036854775807)\n"
                             "  return %s\n"
                             "}\n");
    const tir_op *s = m->funcs[0]->ops[0];
    ck_assert(tir_attr_int(s, "start", 0) == INT64_MIN);
    ck_assert(tir_attr_int(s, "end", 0) == INT64_MAX);
    tir_module_free(m);
}
END_TEST

/* dtype of the const that literal number k (0-based, in op order) became */
static tir_dtype const_dtype(const tir_func *f, int k) {
    for (int i = 0; i < f->nops; i++)
        if (f->ops[i]->code == TIR_OP_FULL && f->ops[i]->out[0]->type.rank == 0 && k-- == 0)
            return f->ops[i]->out[0]->type.dtype;
    ck_abort_msg("no literal %d", k);
    return TIR_F32;
}

START_TEST(literal_dtypes) {
    tir_module *m = parse_ok("func @f(%h: bf16[N], %i: i64[N], %m: bool[N], %t: f16[V, D], %x: f32[N]) -> f32[] {\n"
                             "  %a = add(%h, 1.5)\n"                 /* 0: bf16 from %h */
                             "  %b = mul(3, %i)\n"                   /* 1: i64 from %i */
                             "  %c = where(%m, 2, %i)\n"             /* 2: i64 from operand 2 */
                             "  %d = where(1, %h, %h)\n"             /* 3: bool: the condition */
                             "  %e = take(%t, 0)\n"                  /* 4: i32: an index */
                             "  %f = add(1, 2)\n"                    /* 5, 6: i32 */
                             "  %g = add(1.0, 2.5)\n"                /* 7, 8: f32 */
                             "  %k = neg(0.5)\n"                     /* 9: f32 */
                             "  return 7\n"                          /* 10: f32, the declared result */
                             "}\n");
    const tir_func *f = m->funcs[0];
    ck_assert_int_eq(const_dtype(f, 0), TIR_BF16);
    ck_assert_int_eq(const_dtype(f, 1), TIR_I64);
    ck_assert_int_eq(const_dtype(f, 2), TIR_I64);
    ck_assert_int_eq(const_dtype(f, 3), TIR_BOOL);
    ck_assert_int_eq(const_dtype(f, 4), TIR_I32);
    ck_assert_int_eq(const_dtype(f, 5), TIR_I32);
    ck_assert_int_eq(const_dtype(f, 6), TIR_I32);
    ck_assert_int_eq(const_dtype(f, 7), TIR_F32);
    ck_assert_int_eq(const_dtype(f, 8), TIR_F32);
    ck_assert_int_eq(const_dtype(f, 9), TIR_F32);
    ck_assert_int_eq(const_dtype(f, 10), TIR_F32);
    tir_module_free(m);
    /* each literal decides alone: 1.0 is f32, 2 is i32 (docs/tir.md §4) */
    parse_err("func @f(%x: f32[]) -> f32[] {\n  %y = add(1.0, 2)\n  return %y\n}\n", 2, 8, "dtypes differ");
}
END_TEST

START_TEST(literal_dtype_rule) {
    tir_type t = {.dtype = TIR_BF16, .rank = 0};
    tir_value v;
    memset(&v, 0, sizeof v);
    v.type = t;
    const tir_value *in2[2] = {NULL, &v};
    const tir_value *none[3] = {NULL, NULL, NULL};
    const tir_value *w3[3] = {&v, NULL, NULL};
    ck_assert_int_eq(tir_literal_dtype(TIR_OP_ADD, 2, in2, 0, false), TIR_BF16);
    ck_assert_int_eq(tir_literal_dtype(TIR_OP_ADD, 2, none, 0, true), TIR_I32);
    ck_assert_int_eq(tir_literal_dtype(TIR_OP_ADD, 2, none, 0, false), TIR_F32);
    /* where's condition is not a data operand: a bool condition decides nothing */
    ck_assert_int_eq(tir_literal_dtype(TIR_OP_WHERE, 3, w3, 1, false), TIR_F32);
    ck_assert_int_eq(tir_literal_dtype(TIR_OP_WHERE, 3, w3, 0, true), TIR_BOOL);
    ck_assert_int_eq(tir_literal_dtype(TIR_OP_TAKE, 2, w3, 1, true), TIR_I32);
}
END_TEST

START_TEST(call_literal_takes_param_dtype) {
    tir_module *m = parse_ok("func @g(%a: f32[N], %s: bf16[]) -> f32[N] {\n"
                             "  return %a\n"
                             "}\n"
                             "func @f(%x: f32[N]) -> f32[N] {\n"
                             "  %y = call @g(%x, 2)\n"
                             "  return %y\n"
                             "}\n");
    ck_assert_int_eq(const_dtype(m->funcs[1], 0), TIR_BF16);
    tir_module_free(m);
}
END_TEST

/* ---------------------------------------------------------------- every op name */

START_TEST(every_op_name_is_known) {
    char src[1024];
    for (int i = 0; i < TIR_OP_COUNT; i++) {
        if (i == TIR_OP_CALL) continue;
        snprintf(src, sizeof src, "func @f(%%x: f32[4]) -> f32[4] {\n  %%y = %s(%%x)\n  return %%y\n}\n",
                 tir_ops[i].name);
        tir_module *m = NULL;
        tir_diag d;
        tir_status st = tir_module_parse(ctx, src, "t.tir", &m, &d);
        if (st == TIR_OK) tir_module_free(m);
        else ck_assert_msg(strstr(d.msg, "unknown op") == NULL, "%s: %s", tir_ops[i].name, d.msg);
    }
}
END_TEST

/* a valid use of each v0 op */
static const struct { const char *op, *body; } uses[] = {
    {"neg", "neg(%x)"}, {"abs", "abs(%x)"}, {"exp", "exp(%x)"}, {"log", "log(%x)"}, {"sqrt", "sqrt(%x)"},
    {"rsqrt", "rsqrt(%x)"}, {"recip", "recip(%x)"}, {"tanh", "tanh(%x)"}, {"sigmoid", "sigmoid(%x)"},
    {"relu", "relu(%x)"}, {"silu", "silu(%x)"}, {"gelu", "gelu(%x, approximate=\"tanh\")"}, {"sin", "sin(%x)"},
    {"cos", "cos(%x)"}, {"not", "cast(not(gt(%x, 0.0)), dtype=f32)"}, {"add", "add(%x, %x)"}, {"sub", "sub(%x, 1.0)"},
    {"mul", "mul(2.0, %x)"}, {"div", "div(%x, %x)"}, {"pow", "pow(%x, 2.0)"}, {"maximum", "maximum(%x, 0.0)"},
    {"minimum", "minimum(%x, %x)"}, {"eq", "cast(eq(%x, %x), dtype=f32)"}, {"ne", "cast(ne(%x, %x), dtype=f32)"},
    {"lt", "cast(lt(%x, %x), dtype=f32)"}, {"le", "cast(le(%x, %x), dtype=f32)"},
    {"gt", "cast(gt(%x, %x), dtype=f32)"}, {"ge", "cast(ge(%x, %x), dtype=f32)"},
    {"and", "cast(and(gt(%x, 0.0), lt(%x, 1.0)), dtype=f32)"}, {"or", "cast(or(gt(%x, 0.0), lt(%x, 1.0)), dtype=f32)"},
    {"where", "where(gt(%x, 0.0), %x, 0.0)"}, {"cast", "cast(cast(%x, dtype=bf16), dtype=f32)"},
    {"sum", "broadcast(sum(%x, axes=[1], keepdim=true), shape=[N, 4])"},
    {"max", "broadcast(max(%x, axes=[1], keepdim=true), shape=[N, 4])"},
    {"min", "broadcast(min(%x, axes=[-1], keepdim=true), shape=[N, 4])"},
    {"mean", "broadcast(mean(%x, axes=[1], keepdim=true), shape=[N, 4])"},
    {"argmax", "broadcast(cast(argmax(%x, axes=[1], keepdim=true), dtype=f32), shape=[N, 4])"},
    {"reshape", "reshape(reshape(%x, shape=[N*4]), shape=[N, 4])"}, {"transpose", "transpose(transpose(%x, perm=[1, 0]), perm=[1, 0])"},
    {"broadcast", "broadcast(%x, shape=[N, 4])"}, {"slice", "concat(slice(%x, axis=1, start=0, end=2), slice(%x, axis=1, start=2), axis=1)"},
    {"concat", "slice(concat(%x, %x, axis=1), axis=1, end=4)"}, {"split", "split(%x, axis=1, sizes=[2, 2])"},
    {"take", "take(%x, iota(shape=[N], axis=0, dtype=i32), axis=0)"},
    {"scatter_add", "scatter_add(%x, iota(shape=[N], axis=0, dtype=i64), %x, axis=0)"},
    {"iota", "iota(shape=[N, 4], axis=1, dtype=f32)"}, {"full", "full(0.5, shape=[N, 4], dtype=f32)"},
    {"matmul", "matmul(%x, full(1.0, shape=[4, 4], dtype=f32), transpose_a=false, transpose_b=true)"},
    {"linear", "linear(%x, full(1.0, shape=[4, 4], dtype=f32), full(0.0, shape=[4], dtype=f32))"},
    {"softmax", "softmax(%x, axis=-1)"}, {"log_softmax", "log_softmax(%x)"},
    {"rmsnorm", "rmsnorm(%x, full(1.0, shape=[4], dtype=f32), eps=1e-5)"},
    {"layernorm", "layernorm(%x, full(1.0, shape=[4], dtype=f32), full(0.0, shape=[4], dtype=f32), eps=1e-5)"},
    {"cross_entropy", "broadcast(cross_entropy(%x, iota(shape=[N], axis=0, dtype=i32), reduction=\"mean\", ignore_index=-100), shape=[N, 4])"},
    {"rope", "rope(%x, full(1.0, shape=[N, 4], dtype=f32), full(0.0, shape=[N, 4], dtype=f32))"},
    {"attention", "reshape(attention(reshape(%x, shape=[1, 1, N, 4]), reshape(%x, shape=[1, 1, N, 4]), "
                  "reshape(%x, shape=[1, 1, N, 4]), causal=true, scale=0.5), shape=[N, 4])"},
};

START_TEST(every_v0_op_parses) {
    char src[1024];
    for (size_t i = 0; i < sizeof uses / sizeof uses[0]; i++) {
        tir_opcode code;
        ck_assert_msg(tir_op_lookup(uses[i].op, strlen(uses[i].op), &code), "%s not in ops.def", uses[i].op);
        if (code == TIR_OP_SPLIT)
            snprintf(src, sizeof src,
                     "func @f(%%x: f32[N, 4]) -> (f32[N, 2], f32[N, 2]) {\n  %%a, %%b = %s\n  return %%a, %%b\n}\n",
                     uses[i].body);
        else
            snprintf(src, sizeof src, "func @f(%%x: f32[N, 4]) -> f32[N, 4] {\n  %%y = %s\n  return %%y\n}\n",
                     uses[i].body);
        tir_module *m = NULL;
        tir_diag d;
        tir_status st = tir_module_parse(ctx, src, "t.tir", &m, &d);
        if (st != TIR_OK) tir_diag_print(&d, stderr);
        ck_assert_msg(st == TIR_OK, "%s: %s", uses[i].op, d.msg);
        bool found = false;
        for (int k = 0; k < m->funcs[0]->nops; k++) found |= m->funcs[0]->ops[k]->code == code;
        ck_assert_msg(found, "%s: no such op built", uses[i].op);
        tir_module_free(m);
    }
}
END_TEST

/* ---------------------------------------------------------------- deep nesting */

static char *nested(const char *op, int depth, const char *inner, const char *extra) {
    size_t n = strlen(op) + strlen(extra) + 2;
    size_t len = 200 + (size_t)depth * n + strlen(inner);
    char *s = malloc(len);
    ck_assert_ptr_nonnull(s);
    char *p = s;
    p += sprintf(p, "func @f(%%x: f32[N]) -> f32[N] {\n  %%y = ");
    for (int i = 0; i < depth; i++) p += sprintf(p, "%s(", op);
    p += sprintf(p, "%s", inner);
    for (int i = 0; i < depth; i++) p += sprintf(p, "%s)", extra);
    sprintf(p, "\n  return %%y\n}\n");
    return s;
}

START_TEST(deep_nesting_parses) {
    char *s = nested("neg", 50000, "%x", "");
    tir_module *m = parse_ok(s);
    ck_assert_int_eq(m->funcs[0]->nops, 50000);
    ck_assert_str_eq(m->funcs[0]->ops[49999]->out[0]->name, "y");
    tir_module_free(m);
    free(s);
    /* with a literal at every level */
    s = nested("add", 50000, "%x", ", 1.0");
    m = parse_ok(s);
    ck_assert_int_eq(m->funcs[0]->nops, 100000);
    tir_module_free(m);
    free(s);
}
END_TEST

START_TEST(deep_nesting_errors_cleanly) {
    /* an undefined value at the bottom */
    char *s = nested("neg", 50000, "%nope", "");
    parse_err(s, 2, 8 + 4 * 50000, "undefined value %nope");
    free(s);
    /* a type error at the bottom: exp of an integer */
    s = nested("neg", 50000, "exp(iota(shape=[N], axis=0, dtype=i32))", "");
    parse_err(s, 2, 8 + 4 * 50000, "exp");
    free(s);
    /* never closed */
    size_t n = 50000;
    char *t = malloc(64 + 4 * n);
    ck_assert_ptr_nonnull(t);
    char *p = t + sprintf(t, "func @f(%%x: f32[N]) -> f32[N] {\n  %%y = ");
    for (size_t i = 0; i < n; i++) p += sprintf(p, "neg(");
    sprintf(p, "%%x");
    parse_err(t, 1, 31, "unterminated body");
    sprintf(p, "%%x\n}\n");
    parse_err(t, 3, 1, "expected ',' or ')' in the arguments of 'neg', found '}'");
    free(t);
}
END_TEST

/* ---------------------------------------------------------------- diagnostics */

START_TEST(error_locations) {
    const char *hdr = "func @f(%x: f32[N]) -> f32[N] {\n";
    char src[1024];
#define E(body, line, col, sub)                                  \
    do {                                                         \
        snprintf(src, sizeof src, "%s%s\n}\n", hdr, body);       \
        parse_err(src, line, col, sub);                          \
    } while (0)
    E("  %y = frob(%x)\n  return %y", 2, 8, "unknown op 'frob'");
    E("  %y = add(%x, %z)\n  return %y", 2, 16, "undefined value %z");
    E("  %y = neg(%x)\n  %y = neg(%x)\n  return %y", 3, 3, "redefinition of %y");
    E("  %y = neg(%x\n  return %y", 3, 3, "expected ',' or ')'");
    E("  %y = neg(%x,)\n  return %y", 2, 15, "expected an operand or attribute of 'neg', found ')'");
    E("  %y = neg %x\n  return %y", 2, 12, "expected '(' after 'neg'");
    E("  %y: f16[N] = neg(%x)\n  return %y", 2, 7, "%y is annotated f16[N], but its type is f32[N]");
    E("  %y = neg(%x)\n  return %y, %y", 3, 3, "@f returns 2 values");
    E("  %y = cast(%x, dtype=bf16)\n  return %y", 3, 10, "return value 1 has type bf16[N]");
    E("  %y = call @g(%x)\n  return %y", 2, 13, "call of unknown function @g");
    E("  %y = gelu(%x, approximate=\"tan\n  return %y", 2, 29, "unterminated string");
    E("  %y = neg(%x) \xc3\xa9 \n  return %y", 2, 16, "unexpected character U+00E9");
    /* columns count characters, not bytes */
    E("  %y = gelu(%x, approximate=\"\xc3\xa9\xc3\xa9\", bad=1)\n  return %y", 2, 8, "gelu");
    E("  %y = gelu(%x, approximate=\"\xc3\xa9\xc3\xa9\") $\n  return %y", 2, 35, "unexpected character '$'");
    E("  %y = neg(%x)\n  return", 4, 1, "expected a value, found '}'");
    E("  %y = neg(%x)", 3, 1, "@f has no return statement");
    E("  %y = mul(%x, 1.5e)\n  return %y", 2, 16, "malformed number");
    E("  %y = mul(%x, 12abc)\n  return %y", 2, 16, "malformed number");
    E("  %y = mul(%x, 1e400)\n  return %y", 2, 16, "out of range");
    E("  %y = mul(%x, -9223372036854775809)\n  return %y", 2, 17, "overflows int64");
    E("  %y = sum(%x, axes=[0], axes=[0])\n  return %y", 2, 26, "duplicate attribute 'axes'");
    E("  %y = sum(%x, axes=[0) \n  return %y", 2, 23, "expected ',' or ']'");
    E("  %y = reshape(%x, shape=[N, M*(N+2]) \n  return %y", 2, 36, "expected ')' in dim expression");
    E("  % = neg(%x)\n  return %y", 2, 3, "expected a name after '%'");
    E("  %y = neg(x)\n  return %y", 2, 12, "expected an operand or attribute of 'neg', found 'x'");
    E("  %y = where(true, %x, %x)\n  return %y", 2, 14, "found 'true'");
    E("  %y = gelu(%x, approximate=tanh)\n  return %y", 2, 29, "takes a string: write \"tanh\"");
    E("  %y = neg(%x) + 1\n  return %y", 2, 16, "expected a statement");
    E("  %y = neg(%x)\n  return %y\n  %z = neg(%x)", 4, 3, "statement after return");
#undef E
    parse_err("func @f(%x: f32[N]) -> f32[N] {\n  return %x\n}\nfunc @f(%x: f32[N]) -> f32[N] {\n  return %x\n}\n", 4, 6,
              "redefinition of function @f");
    parse_err("func @f(%x: f32[N]) -> f32[N] {\n  return %x\n", 1, 31, "unterminated body of @f");
    parse_err("func @f(%x: f32[N]) -> f32[N]\n", 2, 1, "expected '{'");
    parse_err("func @f(%x: f32[N, 0-5]) -> f32[N] {\n  return %x\n}\n", 1, 20, "negative dim -5");
    parse_err("func @f(%x: f32[N*9223372036854775807*2]) -> f32[N] {\n  return %x\n}\n", 1, 38, "overflows int64");
    parse_err("func @f(%x: f32[9223372036854775808]) -> f32[N] {\n  return %x\n}\n", 1, 17, "overflows int64");
    parse_err("func @f(%x: f32[N]) -> f32[N] {\n  return %x\n}\nfunc @g = value_and_grad(@f, wrt=[%x])\n", 4, 6,
              "value_and_grad");
    parse_err("func @f(%x: f32[N]) -> f32[N] {\n  return %x\n}\nfunc @g = value_and_grad(@f)\n", 4, 28, "expected ','");
    parse_err("func @f(%x: f32[N], %y: f32[", 1, 29, "found end of file");
}
END_TEST

START_TEST(empty_and_comment_only_modules) {
    tir_module *m = parse_ok("");
    ck_assert_int_eq(tir_module_num_funcs(m), 0);
    tir_module_free(m);
    m = parse_ok("# nothing\n\n   \t# at all\r\n");
    ck_assert_int_eq(tir_module_num_funcs(m), 0);
    tir_module_free(m);
}
END_TEST

START_TEST(bytes_that_are_not_text) {
    static const char nul[] = "func @f(%x: f32[N]) -> f32[N] {\n  return\0 %x\n}\n";
    parse_err_n(nul, sizeof nul - 1, 2, 9, "NUL byte");
    static const char nul_comment[] = "# hi \0 there\nfunc";
    parse_err_n(nul_comment, sizeof nul_comment - 1, 1, 6, "NUL byte in comment");
    static const char nul_string[] = "func @f(%x: f32[N]) -> f32[N] {\n  %y = gelu(%x, approximate=\"a\0\")\n";
    parse_err_n(nul_string, sizeof nul_string - 1, 2, 31, "NUL byte in string");
    parse_err("func @f(%x: f32[N]) -> f32[N] {\n  return\x01 %x\n}\n", 2, 9, "control character 0x01");
    parse_err("func @f(%x: f32[N]) -> f32[N] {\n  return\x7f %x\n}\n", 2, 9, "control character 0x7f");
    parse_err("func @f(%x: f32[N]) -> f32[N] {\n  return \x80 %x\n}\n", 2, 10, "invalid UTF-8 byte 0x80");
    parse_err("func @f(%x: f32[N]) -> f32[N] {\n  return \xc3\x28 %x\n}\n", 2, 10, "invalid UTF-8 byte 0xc3");
    parse_err("func @f(%x: f32[N]) -> f32[N] {\n  return \xed\xa0\x80 %x\n}\n", 2, 10, "invalid UTF-8");
    parse_err("func @f(%x: f32[N]) -> f32[N] {\n  %y = gelu(%x, approximate=\"a\x02\")\n", 2, 31, "control character 0x02 in string");
    parse_err("func @f(%x: f32[N]) -> f32[N] {\n  %y = gelu(%x, approximate=\"\\x00\")\n", 2, 30, "\\x00");
    parse_err("func @f(%x: f32[N]) -> f32[N] {\n  %y = gelu(%x, approximate=\"\\x4\")\n", 2, 30, "two hex digits");
    /* anything but NUL inside comments; UTF-8 inside strings (the schema rejects é later) */
    tir_module *m = parse_ok("# \xff\xfe\x01\x1b\nfunc @f(%x: f32[N]) -> f32[N] { # \x80\n  return %x\n}\n");
    tir_module_free(m);
    parse_err("func @f(%x: f32[N]) -> f32[N] {\n  %y = gelu(%x, approximate=\"\xc3\xa9\")\n  return %y\n}\n", 2, 8, "gelu");
    parse_err("func @f(%x: f32[N]) -> f32[N] {\n  %y = gelu(%x, approximate=\"a\xff\")\n  return %y\n}\n", 2, 31,
              "invalid UTF-8 byte 0xff in string");
}
END_TEST

START_TEST(api_edges) {
    tir_module *m = (tir_module *)1;
    tir_diag d;
    ck_assert_int_eq(tir_module_parse(ctx, NULL, "x", &m, &d), TIR_ERR_INVALID);
    ck_assert_ptr_null(m);
    /* NULL diag is allowed */
    ck_assert_int_eq(tir_module_parse(ctx, "func", "x", &m, NULL), TIR_ERR_PARSE);
    ck_assert_ptr_null(m);
    /* no file name: diagnostics still carry a location */
    ck_assert_int_ne(tir_module_parse(ctx, "func @f(", NULL, &m, &d), TIR_OK);
    ck_assert_str_eq(d.file, "<input>");
    ck_assert_int_eq(d.line, 1);
    ck_assert_int_eq(tir_module_parse_file(ctx, "/nonexistent/dir/x.tir", &m, &d), TIR_ERR_IO);
    ck_assert_str_eq(d.file, "/nonexistent/dir/x.tir");
    ck_assert_ptr_nonnull(strstr(d.msg, "cannot open"));
    ck_assert_int_eq(tir_module_parse_file(ctx, "/", &m, &d), TIR_ERR_IO);
    ck_assert_ptr_null(m);
    /* an error from the verifier after parsing shows the source line too */
    ck_assert_int_ne(tir_module_parse(ctx, "func @f(%x: f32[N]) -> f32[N] {\n  %y = call @f(%x)\n  return %y\n}\n",
                                      "r.tir", &m, &d), TIR_OK);
    ck_assert_str_eq(d.file, "r.tir");
    ck_assert_int_eq(d.line, 2);
    ck_assert_str_eq(d.source_line, "  %y = call @f(%x)");
}
END_TEST

START_TEST(lexer_tokens) {
    const char *s = "func @f_1(%a.b: bf16[B*T]) -> (f32[], i8[2]) { x=-1.5e-3 \"q\\\"\\\\\\n\\t\\x41\" 0 } # c";
    tir_tokens t;
    tir_diag d;
    ck_assert_int_eq(tir_lex(s, strlen(s), "t", &t, &d), TIR_OK);
    static const tir_tok_kind want[] = {
        TIR_TOK_IDENT, TIR_TOK_FUNC, TIR_TOK_LPAREN, TIR_TOK_VALUE, TIR_TOK_COLON, TIR_TOK_IDENT, TIR_TOK_LBRACK,
        TIR_TOK_IDENT, TIR_TOK_STAR, TIR_TOK_IDENT, TIR_TOK_RBRACK, TIR_TOK_RPAREN, TIR_TOK_ARROW, TIR_TOK_LPAREN,
        TIR_TOK_IDENT, TIR_TOK_LBRACK, TIR_TOK_RBRACK, TIR_TOK_COMMA, TIR_TOK_IDENT, TIR_TOK_LBRACK, TIR_TOK_INT,
        TIR_TOK_RBRACK, TIR_TOK_RPAREN, TIR_TOK_LBRACE, TIR_TOK_IDENT, TIR_TOK_EQ, TIR_TOK_MINUS, TIR_TOK_FLOAT,
        TIR_TOK_STRING, TIR_TOK_INT, TIR_TOK_RBRACE, TIR_TOK_EOF};
    ck_assert_int_eq(t.n, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < t.n; i++) ck_assert_msg(t.v[i].kind == want[i], "token %d", i);
    ck_assert_int_eq((int)t.v[1].len, 3); /* f_1 */
    ck_assert_int_eq((int)t.v[3].len, 3); /* a.b */
    ck_assert(t.v[27].f == 1.5e-3);
    ck_assert_int_eq(t.v[20].u, 2);
    tir_arena *a = tir_arena_new();
    ck_assert_str_eq(tir_lex_string(&t.v[28], a), "q\"\\\n\tA");
    tir_arena_free(a);
    ck_assert_int_eq(t.v[26].loc.col, 50);
    tir_tokens_free(&t);
}
END_TEST

/* Mutations of the examples (byte flips, truncations, splices) must give OK or a diagnostic,
 * never a crash or a leak. */
START_TEST(ops_without_operands) {
    /* iota and full take no operands (the value of full is an attribute): no operand array at
     * all, which the parser must not offset (UB that clang's UBSan reports) */
    tir_module *m = parse_ok("func @f() -> (i32[4], f32[2, 3], f32[2]) {\n"
                             "  %i = iota(shape=[4])\n"
                             "  %z = full(0.5, shape=[2, 3])\n"
                             "  %w = full(value=1.5, shape=[2])\n"
                             "  return %i, %z, %w\n}\n");
    tir_func *f = m->funcs[0];
    ck_assert_int_eq(f->nops, 3);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(f->ops[i]->nin, 0);
    ck_assert_int_eq(f->ops[0]->code, TIR_OP_IOTA);
    ck_assert_int_eq(f->ops[1]->code, TIR_OP_FULL);
    ck_assert(tir_attr_float(f->ops[1], "value", 0) == 0.5);
    ck_assert(tir_attr_float(f->ops[2], "value", 0) == 1.5);
    tir_module_free(m);
}
END_TEST

START_TEST(dim_product_too_large) {
    /* a product of two 40-term sums would expand to 1600 terms: refused at the '*' at once */
    char sum[512] = "s0", src[1400];
    for (int i = 1; i < 40; i++) snprintf(sum + strlen(sum), sizeof sum - strlen(sum), " - s%d", i);
    int n = snprintf(src, sizeof src, "func @f(%%x: f32[(%s)*(%s)]) -> f32[] {\n", sum, sum);
    snprintf(src + n, sizeof src - (size_t)n, "  %%y = sum(%%x)\n  return %%y\n}\n");
    int col = (int)(strstr(src, ")*(") - src) + 2;
    parse_err(src, 1, col, "dim expression too large");
}
END_TEST

START_TEST(mutations_never_crash) {
    static char paths[64][1024];
    int n = list_tir("examples", paths, 64);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    static const char *splice[] = {"(", ")", "[", "]", ",", "%x", "@f", "1e", "\"", "#", "\n", "-", "*",
                                   "/0", "neg(", "= ", ": f32[", "\xff", "func", "return", "99999999999999999999"};
    int failures = 0;
    for (int i = 0; i < n; i++) {
        size_t len;
        char *src = tu_read_file_len(paths[i], &len);
        ck_assert_ptr_nonnull(src);
        char *buf = malloc(len + 64);
        ck_assert_ptr_nonnull(buf);
        for (int k = 0; k < 300; k++) {
            memcpy(buf, src, len);
            size_t blen = len;
            for (int e = 0; e < 1 + k % 3; e++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                size_t pos = (size_t)(seed >> 33) % (blen ? blen : 1);
                switch ((seed >> 20) % 4) {
                case 0: buf[pos] = (char)(seed >> 40); break;
                case 1: blen = pos; break;
                case 2: memmove(buf + pos, buf + pos + 1, blen - pos - 1), blen--; break;
                default: {
                    const char *sp = splice[(seed >> 45) % (sizeof splice / sizeof splice[0])];
                    size_t sl = strlen(sp);
                    if (blen + sl < len + 64) {
                        memmove(buf + pos + sl, buf + pos, blen - pos);
                        memcpy(buf + pos, sp, sl);
                        blen += sl;
                    }
                }
                }
            }
            tir_module *m = NULL;
            tir_diag d;
            tir_status st = tir_frontend_parse(ctx, buf, blen, "mut.tir", &m, &d);
            if (st == TIR_OK) {
                ck_assert_ptr_nonnull(m);
                char *p = tir_module_print(m);
                ck_assert_ptr_nonnull(p);
                tir_free(p);
                tir_module_free(m);
            } else {
                ck_assert_ptr_null(m);
                ck_assert_int_ne(d.status, TIR_OK);
                ck_assert(d.msg[0] != 0);
                failures++;
            }
        }
        free(buf);
        free(src);
    }
    ck_assert_int_gt(failures, 0);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("parser");
    TCase *tc = tcase_create("parser");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, examples_parse);
    tcase_add_test(tc, goldens_parse_as_expected);
    tcase_add_test(tc, builds_expected_ir);
    tcase_add_test(tc, forward_references_and_order);
    tcase_add_test(tc, attribute_kinds);
    tcase_add_test(tc, big_integer_attributes_are_exact);
    tcase_add_test(tc, literal_dtypes);
    tcase_add_test(tc, literal_dtype_rule);
    tcase_add_test(tc, call_literal_takes_param_dtype);
    tcase_add_test(tc, every_op_name_is_known);
    tcase_add_test(tc, every_v0_op_parses);
    tcase_add_test(tc, deep_nesting_parses);
    tcase_add_test(tc, deep_nesting_errors_cleanly);
    tcase_add_test(tc, error_locations);
    tcase_add_test(tc, empty_and_comment_only_modules);
    tcase_add_test(tc, bytes_that_are_not_text);
    tcase_add_test(tc, api_edges);
    tcase_add_test(tc, lexer_tokens);
    tcase_add_test(tc, mutations_never_crash);
    tcase_add_test(tc, ops_without_operands);
    tcase_add_test(tc, dim_product_too_large);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed != 0;
}
