/* test_print.c: the printer (ir/print.c). The contract is print(parse(print(m))) == print(m): it is
 * checked on every example and golden program (found through TIR_SOURCE_DIR), on deep nesting, and
 * on IR built from C the way passes build it (unnamed constants of every dtype, duplicate and
 * unprintable names, value_and_grad definitions with and without a body, random doubles, strings
 * with escapes and bytes that are not UTF-8). */
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
    if (tir_module_parse(ctx, src, "t.tir", &m, &d) != TIR_OK) {
        tir_diag_print(&d, stderr);
        fprintf(stderr, "--- source:\n%s\n", src);
        ck_abort_msg("parse failed: %s", d.msg);
    }
    return m;
}

/* print(parse(src)), which must succeed */
static char *reprint(const char *src) {
    tir_module *m = parse_ok(src);
    char *p = tir_module_print(m);
    ck_assert_ptr_nonnull(p);
    tir_module_free(m);
    return p;
}

/* print(m), and check that printing the parse of it gives it back */
static char *print_stable(const tir_module *m) {
    char *p1 = tir_module_print(m);
    ck_assert_ptr_nonnull(p1);
    char *p2 = reprint(p1);
    if (strcmp(p1, p2) != 0) fprintf(stderr, "--- first:\n%s--- second:\n%s", p1, p2);
    ck_assert_str_eq(p1, p2);
    tir_free(p2);
    return p1;
}


static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

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

/* ---------------------------------------------------------------- round trips of files */

static int round_trip_dir(const char *sub) {
    static char paths[256][1024];
    int n = list_tir(sub, paths, 256), done = 0;
    for (int i = 0; i < n; i++) {
        char *src = tu_read_file(paths[i]);
        ck_assert_ptr_nonnull(src);
        bool expect_error = strstr(src, "\n# EXPECT-ERROR:") != NULL;
        free(src);
        if (expect_error) continue;
        tir_module *m = NULL;
        tir_diag d;
        tir_status st = tir_module_parse_file(ctx, paths[i], &m, &d);
        if (st != TIR_OK) tir_diag_print(&d, stderr);
        ck_assert_msg(st == TIR_OK, "%s: %s", paths[i], d.msg);
        char *p = print_stable(m);
        /* and print(m) means the same module: same functions, same signatures */
        tir_module *m2 = parse_ok(p);
        ck_assert_int_eq(m2->nfuncs, m->nfuncs);
        for (int k = 0; k < m->nfuncs; k++) {
            ck_assert_str_eq(m2->funcs[k]->name, m->funcs[k]->name);
            ck_assert_int_eq(m2->funcs[k]->nparams, m->funcs[k]->nparams);
            ck_assert_int_eq(m2->funcs[k]->nret, m->funcs[k]->nret);
            for (int r = 0; r < m->funcs[k]->nret; r++)
                ck_assert(tir_type_equal(&m2->funcs[k]->ret[r], &m->funcs[k]->ret[r]));
        }
        tir_module_free(m2);
        tir_free(p);
        tir_module_free(m);
        done++;
    }
    return done;
}

START_TEST(examples_round_trip) { ck_assert_int_gt(round_trip_dir("examples"), 0); }
END_TEST

START_TEST(goldens_round_trip) { ck_assert_int_ge(round_trip_dir("tests/golden"), 10); }
END_TEST

START_TEST(deep_nesting_round_trips) {
    int depth = 20000;
    char *s = malloc(128 + (size_t)depth * 12);
    ck_assert_ptr_nonnull(s);
    char *p = s + sprintf(s, "func @f(%%x: f32[N]) -> f32[N] {\n  %%y = ");
    for (int i = 0; i < depth; i++) p += sprintf(p, "add(");
    p += sprintf(p, "%%x");
    for (int i = 0; i < depth; i++) p += sprintf(p, ", 0.5)");
    sprintf(p, "\n  return %%y\n}\n");
    tir_module *m = parse_ok(s);
    char *out = print_stable(m);
    ck_assert_ptr_nonnull(strstr(out, "  %0 = add(%x, 0.5)\n  %1 = add(%0, 0.5)\n"));
    ck_assert_ptr_nonnull(strstr(out, "  %y = add(%19998, 0.5)\n  return %y\n}\n"));
    tir_free(out);
    tir_module_free(m);
    free(s);
}
END_TEST

/* ---------------------------------------------------------------- exact text */

START_TEST(canonical_text) {
    char *p = reprint("func @f(%x: f32[N, H], %w: bf16[H]) -> (f32[N, H], f32[]) {\n"
                      "  %y = mul(add(%x, 1), cast(%w, dtype=f32))\n"
                      "  %s = sum(%y, axes=[0, -1], keepdim=false)\n"
                      "  return %y, %s\n"
                      "}\n"
                      "func @g = value_and_grad(@h, wrt=[%a])\n"
                      "func @h(%a: f32[4]) -> f32[] {\n"
                      "  %r = sum(%a)\n"
                      "  return %r\n"
                      "}\n");
    ck_assert_str_eq(p, "func @f(%x: f32[N, H], %w: bf16[H]) -> (f32[N, H], f32[]) {\n"
                        "  %0 = add(%x, 1.0)\n"
                        "  %1 = cast(%w, dtype=f32)\n"
                        "  %y = mul(%0, %1)\n"
                        "  %s = sum(%y, axes=[0, -1], keepdim=false)\n"
                        "  return %y, %s\n"
                        "}\n"
                        "\n"
                        "func @g = value_and_grad(@h, wrt=[%a])\n"
                        "\n"
                        "func @h(%a: f32[4]) -> f32[] {\n"
                        "  %r = sum(%a)\n"
                        "  return %r\n"
                        "}\n");
    tir_free(p);
}
END_TEST

START_TEST(print_func_alone) {
    tir_module *m = parse_ok("func @f(%x: i32[N]) -> i32[N] {\n  %y = add(%x, 3)\n  return %y\n}\n");
    char *p = tir_print_func(m->funcs[0]);
    ck_assert_str_eq(p, "func @f(%x: i32[N]) -> i32[N] {\n  %y = add(%x, 3)\n  return %y\n}\n");
    tir_free(p);
    tir_module_free(m);
    tir_module *e = tir_module_new(ctx);
    p = tir_module_print(e);
    ck_assert_str_eq(p, "");
    tir_free(p);
    tir_module_free(e);
}
END_TEST

/* ---------------------------------------------------------------- IR built from C */

static tir_type ty(tir_dtype dt, const char *dim) {
    tir_type t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    if (dim) {
        t.rank = 1;
        t.dims[0] = tir_dim_sym(ctx, dim);
    }
    return t;
}

static tir_ib ib_for(tir_func *f, tir_diag *d) {
    tir_ib b;
    memset(&b, 0, sizeof b);
    b.f = f;
    b.d = d;
    return b;
}

/* Constants as passes make them: unnamed full() of each dtype, some usable as literals, some not. */
START_TEST(constants_from_passes) {
    tir_module *m = tir_module_new(ctx);
    tir_diag d;
    tir_func *f = tir_func_new(m, "k", (tir_loc){0, 0}, &d);
    tir_type tf = ty(TIR_F32, "N"), th = ty(TIR_BF16, "N"), ti = ty(TIR_I8, "N");
    tir_value *x = tir_func_add_param(f, "x", &tf, (tir_loc){0, 0});
    tir_value *h = tir_func_add_param(f, "h", &th, (tir_loc){0, 0});
    tir_value *i = tir_func_add_param(f, "i", &ti, (tir_loc){0, 0});
    tir_ib b = ib_for(f, &d);
    tir_value *c1 = tir_ib_const(&b, 0.1, TIR_F32);
    tir_value *a = tir_ib_bin(&b, TIR_OP_MUL, x, c1);          /* mul(%x, 0.1) */
    tir_value *a2 = tir_ib_bin(&b, TIR_OP_ADD, c1, a);         /* the same const used twice */
    tir_value *hb = tir_ib_bin(&b, TIR_OP_ADD, h, tir_ib_const(&b, 2, TIR_BF16));
    tir_value *ib = tir_ib_bin(&b, TIR_OP_SUB, tir_ib_const(&b, -128, TIR_I8), i);
    tir_value *big = tir_ib_bin(&b, TIR_OP_ADD, i, tir_ib_const(&b, 0.5, TIR_I8)); /* no i8 literal */
    tir_value *k1 = tir_ib_const(&b, 1.5, TIR_BF16), *k2 = tir_ib_const(&b, 3, TIR_BF16);
    tir_value *kk = tir_ib_bin(&b, TIR_OP_MUL, k1, k2);        /* both literal would read as f32 */
    tir_value *hk = tir_ib_bin(&b, TIR_OP_MUL, h, kk);
    tir_value *ret = tir_ib_const(&b, 7, TIR_F32);             /* returned: a statement */
    ck_assert(!b.failed);
    tir_value *res[] = {a2, hb, ib, big, hk, ret};
    tir_type rt[6];
    for (int k = 0; k < 6; k++) rt[k] = res[k]->type;
    tir_func_set_results(f, 6, res);
    tir_func_set_ret(f, 6, rt);
    ck_assert_int_eq(tir_verify(m, &d), TIR_OK);
    char *p = print_stable(m);
    ck_assert_str_eq(p, "func @k(%x: f32[N], %h: bf16[N], %i: i8[N]) -> (f32[N], bf16[N], i8[N], i8[N], bf16[N], f32[]) {\n"
                        "  %0 = mul(%x, 0.1)\n"
                        "  %1 = add(0.1, %0)\n"
                        "  %2 = add(%h, 2.0)\n"
                        "  %3 = sub(-128, %i)\n"
                        "  %4 = full(0.5, shape=[], dtype=i8)\n"
                        "  %5 = add(%i, %4)\n"
                        "  %6 = full(1.5, shape=[], dtype=bf16)\n"
                        "  %7 = mul(%6, 3.0)\n"
                        "  %8 = mul(%h, %7)\n"
                        "  %9 = full(7.0, shape=[], dtype=f32)\n"
                        "  return %1, %2, %3, %5, %8, %9\n"
                        "}\n");
    tir_free(p);
    tir_module_free(m);
}
END_TEST

START_TEST(names_from_c) {
    tir_module *m = tir_module_new(ctx);
    tir_diag d;
    tir_func *f = tir_func_new(m, "n", (tir_loc){0, 0}, &d);
    tir_type tf = ty(TIR_F32, "N");
    tir_value *x = tir_func_add_param(f, "x", &tf, (tir_loc){0, 0});
    tir_value *y = tir_func_add_param(f, "has space", &tf, (tir_loc){0, 0});
    tir_ib b = ib_for(f, &d);
    tir_value *a = tir_ib_un(&b, TIR_OP_NEG, x);
    tir_value *c = tir_ib_un(&b, TIR_OP_EXP, a);
    tir_value *e = tir_ib_bin(&b, TIR_OP_ADD, c, y);
    tir_value *g = tir_ib_un(&b, TIR_OP_ABS, e);
    tir_value_set_name(a, "t");
    tir_value_set_name(c, "t");  /* a duplicate: the second becomes a temporary */
    tir_value_set_name(e, "1");  /* a number: temporaries skip it */
    ck_assert(!b.failed);
    tir_value *res[] = {g};
    tir_func_set_results(f, 1, res);
    tir_func_set_ret(f, 1, &g->type);
    ck_assert_int_eq(tir_verify(m, &d), TIR_OK);
    char *p = print_stable(m);
    ck_assert_str_eq(p, "func @n(%x: f32[N], %0: f32[N]) -> f32[N] {\n"
                        "  %t = neg(%x)\n"
                        "  %2 = exp(%t)\n"
                        "  %1 = add(%2, %0)\n"
                        "  %3 = abs(%1)\n"
                        "  return %3\n"
                        "}\n");
    tir_free(p);
    tir_module_free(m);
}
END_TEST

/* A value_and_grad definition prints as a definition until it has a body, then as a function. */
START_TEST(grad_def_with_body) {
    tir_module *m = parse_ok("func @loss(%w: f32[4], %x: f32[4]) -> f32[] {\n"
                             "  %l = sum(mul(%w, %x))\n"
                             "  return %l\n"
                             "}\n"
                             "func @g = value_and_grad(@loss, wrt=[%w])\n");
    char *p = print_stable(m);
    ck_assert_ptr_nonnull(strstr(p, "\n\nfunc @g = value_and_grad(@loss, wrt=[%w])\n"));
    tir_free(p);
    /* fill the body the way the grad pass would: l = loss(w, x); dl/dw = x */
    tir_func *g = tir_module_find(m, "g");
    tir_diag d;
    tir_value *in[] = {g->params[0], g->params[1]};
    tir_op *call = tir_func_append_op(g, TIR_OP_CALL, 2, in, 0, NULL, tir_module_find(m, "loss"), (tir_loc){0, 0}, &d);
    ck_assert_ptr_nonnull(call);
    tir_value *res[] = {call->out[0], g->params[1]};
    tir_func_set_results(g, 2, res);
    ck_assert_int_eq(tir_verify(m, &d), TIR_OK);
    p = print_stable(m);
    ck_assert_ptr_nonnull(strstr(p, "\n\nfunc @g(%w: f32[4], %x: f32[4]) -> (f32[], f32[4]) {\n"
                                    "  %0 = call @loss(%w, %x)\n"
                                    "  return %0, %x\n"
                                    "}\n"));
    tir_free(p);
    tir_module_free(m);
}
END_TEST

/* every double prints in text that reads back to the same bits */
START_TEST(floats_round_trip_exactly) {
    tir_module *m = tir_module_new(ctx);
    tir_diag d;
    tir_func *f = tir_func_new(m, "r", (tir_loc){0, 0}, &d);
    tir_type tf = ty(TIR_F64, "N");
    tir_value *acc = tir_func_add_param(f, "x", &tf, (tir_loc){0, 0});
    tir_ib b = ib_for(f, &d);
    enum { K = 3000 };
    static double vals[K];
    uint64_t s = 12345;
    for (int k = 0; k < K; k++) {
        double v;
        do {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            uint64_t bits = s ^ (s >> 29);
            memcpy(&v, &bits, sizeof v);
        } while (!isfinite(v));
        if (k < 8) {
            static const double special[] = {0.0, -0.0, 1.0, 0.1, 5e-324, 1.7976931348623157e308, -2.5e-308, 1e21};
            v = special[k];
        }
        vals[k] = v;
        acc = tir_ib_bin(&b, TIR_OP_ADD, acc, tir_ib_const(&b, v, TIR_F64));
    }
    ck_assert(!b.failed);
    tir_func_set_results(f, 1, &acc);
    tir_func_set_ret(f, 1, &acc->type);
    char *p = print_stable(m);
    tir_module *m2 = parse_ok(p);
    const tir_func *f2 = m2->funcs[0];
    int k = 0;
    for (int i = 0; i < f2->nops; i++) {
        const tir_op *op = f2->ops[i];
        if (op->code != TIR_OP_FULL) continue;
        double got = tir_attr_float(op, "value", NAN);
        ck_assert_msg(memcmp(&got, &vals[k], sizeof got) == 0, "constant %d: %.17g read back as %.17g", k, vals[k], got);
        k++;
    }
    ck_assert_int_eq(k, K);
    tir_module_free(m2);
    tir_free(p);
    tir_module_free(m);
}
END_TEST

/* strings print with the escapes the lexer reads back */
START_TEST(string_escapes) {
    tir_module *m = parse_ok("func @f(%x: f32[N]) -> f32[N] {\n  %y = gelu(%x, approximate=\"tanh\")\n  return %y\n}\n");
    static const char weird[] = "a\"b\\c\nd\te\x01\x7f\xc3\xa9\xff\xc3";
    m->funcs[0]->ops[0]->attrs[0].u.s = weird;
    char *p = tir_module_print(m);
    const char *q = strstr(p, "approximate=\"");
    ck_assert_ptr_nonnull(q);
    q += strlen("approximate=");
    static const char want[] = "\"a\\\"b\\\\c\\nd\\te\\x01\\x7f\xc3\xa9\\xff\\xc3\")";
    ck_assert_msg(strncmp(q, want, strlen(want)) == 0, "got %s", q);
    tir_tokens t;
    tir_diag d;
    ck_assert_int_eq(tir_lex(q, strlen(q), "s", &t, &d), TIR_OK);
    ck_assert_int_eq(t.v[0].kind, TIR_TOK_STRING);
    tir_arena *a = tir_arena_new();
    ck_assert_str_eq(tir_lex_string(&t.v[0], a), weird);
    tir_arena_free(a);
    tir_tokens_free(&t);
    tir_free(p);
    tir_module_free(m);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("print");
    TCase *tc = tcase_create("print");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, examples_round_trip);
    tcase_add_test(tc, goldens_round_trip);
    tcase_add_test(tc, deep_nesting_round_trips);
    tcase_add_test(tc, canonical_text);
    tcase_add_test(tc, print_func_alone);
    tcase_add_test(tc, constants_from_passes);
    tcase_add_test(tc, names_from_c);
    tcase_add_test(tc, grad_def_with_body);
    tcase_add_test(tc, floats_round_trip_exactly);
    tcase_add_test(tc, string_escapes);
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
