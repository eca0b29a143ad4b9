/* test_fuse.c: fused regions in the IR (parse, print, verify, interpret) and the fuse pass
 * (passes/fuse.c). The pass must leave a module that verifies, prints as text that re-parses to
 * the same printout, and computes exactly what it computed before (the same ops run in the same
 * order, so the interpreter's results agree to the bit; checked at 1e-6 relative). Decomposed
 * normalisations, softmaxes and cross-entropy must become one kernel per row computation,
 * matmuls must stay outside. The tests/golden/fuse_*.tir goldens are also checked here, through
 * the pipeline's stages ("fuse", or "schedule" for the goldens that show schedules); the
 * schedule pass's decisions (passes/schedule.c) are checked on the same regions. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"
#include "pipeline.h"
#include "testutil.h"

static tir_context *ctx;
static void setup(void) { ctx = tir_context_create(); }
static void teardown(void) { tir_context_destroy(ctx); }

static uint64_t rng = 7;

static char *read_example(const char *name) {
    char *s = tu_read_source("examples", name);
    ck_assert_msg(s != NULL, "cannot read examples/%s", name);
    return s;
}

static tir_module *parse(const char *src) { return tu_parse(ctx, src); }

/* Where two printouts first differ, as a short text for a failure message: the line number and
 * that line of each (cut at 300 bytes). libcheck refuses a message over its buffer ("Message
 * string too long", which hides the failure), so a failed comparison of whole modules reports
 * this rather than both texts. Returns buf. */
static const char *first_diff(const char *a, const char *b, char *buf, size_t cap) {
    int line = 1;
    const char *la = a, *lb = b;
    for (; *a && *a == *b; a++, b++)
        if (*a == '\n') {
            line++;
            la = a + 1;
            lb = b + 1;
        }
    int na = (int)strcspn(la, "\n"), nb = (int)strcspn(lb, "\n");
    snprintf(buf, cap, "first difference at line %d:\n  want: %.*s%s\n  got:  %.*s%s", line,
             na > 300 ? 300 : na, la, na > 300 ? "..." : "", nb > 300 ? 300 : nb, lb,
             nb > 300 ? "..." : "");
    return buf;
}

/* the module as the compiler has it when fuse runs: after decompose and its cleanup */
static void lower(tir_module *m) {
    tir_diag d;
    tir_status st = tir_pipeline_run(m, "cleanup", NULL, NULL, &d);
    ck_assert_msg(st == TIR_OK, "pipeline: %s", d.msg);
}

/* fuse, then the schedule stage that fills in the regions' schedules */
static void fuse(tir_module *m) {
    tir_diag d;
    tir_status st = tir_pass_fuse(m, &d);
    ck_assert_msg(st == TIR_OK, "fuse: %s: %s", tir_status_name(st), d.msg);
    st = tir_pass_schedule(m, &d);
    ck_assert_msg(st == TIR_OK, "schedule: %s: %s", tir_status_name(st), d.msg);
    st = tir_verify(m, &d);
    ck_assert_msg(st == TIR_OK, "after fuse the module does not verify: %d:%d: %s", d.line, d.col, d.msg);
}

/* the printout re-parses, and printing that gives the same text */
static void reparses(const tir_module *m) {
    char *text = tir_module_print(m);
    ck_assert_ptr_nonnull(text);
    tir_module *again = parse(text);
    char *text2 = tir_module_print(again);
    char diff[1024];
    ck_assert_msg(strcmp(text, text2) == 0, "print(parse(print)) differs: %s",
                  first_diff(text, text2, diff, sizeof diff));
    tir_free(text);
    tir_free(text2);
    tir_module_free(again);
}

static int count_code(const tir_func *f, tir_opcode code) {
    int n = 0;
    for (int k = 0; k < f->nops; k++) n += f->ops[k]->code == code;
    return n;
}

static int regions(const tir_module *m, const char *func) {
    const tir_func *f = tir_module_find(m, func);
    ck_assert_ptr_nonnull(f);
    return count_code(f, TIR_OP_FUSED);
}

/* ops of the function outside regions, by code */
static int outside(const tir_module *m, const char *func, tir_opcode code) {
    return count_code(tir_module_find(m, func), code);
}

/* ops inside the function's regions, by code */
static int inside(const tir_module *m, const char *func, tir_opcode code) {
    const tir_func *f = tir_module_find(m, func);
    int n = 0;
    for (int k = 0; k < f->nops; k++)
        if (tir_op_region(f->ops[k])) n += count_code(f->ops[k]->callee, code);
    return n;
}

static const tir_op *first_region(const tir_module *m, const char *func) {
    const tir_func *f = tir_module_find(m, func);
    for (int k = 0; k < f->nops; k++)
        if (tir_op_region(f->ops[k])) return f->ops[k];
    ck_abort_msg("@%s has no region", func);
    return NULL;
}

/* interp(ref) == interp(m) for @func, within 1e-6 of each result's scale */
static void same_results(tir_module *ref, tir_module *m, const char *func, const tir_bindings *b) {
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
            ck_assert_msg(fabs(x - y) <= 1e-6 * scale, "@%s result %d elem %lld: %.17g before, %.17g after", func,
                          j, (long long)e, x, y);
        }
        tir_tensor_free(r0[j]);
        tir_tensor_free(r1[j]);
    }
    for (int i = 0; i < np; i++) tir_tensor_free(args[i]);
}

/* lowers src, fuses a copy, checks the copy against the unfused module on @func; returns the
 * fused module (the caller frees it) */
static tir_module *fused_and_checked(const char *src, const char *func, const tir_bindings *b) {
    tir_module *ref = parse(src), *m = parse(src);
    lower(ref);
    lower(m);
    fuse(m);
    reparses(m);
    same_results(ref, m, func, b);
    tir_module_free(ref);
    return m;
}

static tir_bindings bind2(const char *a, int64_t va, const char *b, int64_t vb) {
    tir_bindings r = {0};
    if (a) tir_bindings_set(&r, a, va);
    if (b) tir_bindings_set(&r, b, vb);
    return r;
}

static const tir_attr_value *sched(const tir_op *op, const char *key) {
    const tir_attr_value *e = tir_dict_get(tir_op_attr(op, "schedule"), key);
    ck_assert_msg(e != NULL, "schedule has no %s", key);
    return e;
}

/* ---------------------------------------------------------------- the region in the IR */

static const char *rms_fused =
    "func @rmsnorm(%x: bf16[N, H], %w: bf16[H]) -> bf16[N, H] {\n"
    "  %o = fused(%x, %w) kernel=\"rmsnorm_0\" schedule={kind=\"row\", rows_per_block=1, warps=4, row_in_registers=true} {\n"
    "    %xf = cast(%x, dtype=f32)\n"
    "    %ms = mean(mul(%xf, %xf), axes=[-1], keepdim=true)\n"
    "    %y = mul(mul(%xf, rsqrt(add(%ms, 1e-6))), cast(%w, dtype=f32))\n"
    "    %r = cast(%y, dtype=bf16)\n"
    "    yield %r\n"
    "  }\n"
    "  return %o\n"
    "}\n";

START_TEST(test_region_parse_print_run) {
    tir_module *m = parse(rms_fused);
    reparses(m);
    char *text = tir_module_print(m);
    ck_assert_ptr_nonnull(strstr(text, "  %o = fused(%x, %w) kernel=\"rmsnorm_0\" schedule={kind=\"row\", "
                                       "rows_per_block=1, warps=4, row_in_registers=true} {\n"
                                       "    %xf = cast(%x, dtype=f32)\n"));
    ck_assert_ptr_nonnull(strstr(text, "    yield %r\n  }\n  return %o\n"));
    tir_free(text);
    const tir_op *op = first_region(m, "rmsnorm");
    ck_assert_int_eq(op->nout, 1);
    ck_assert_int_eq(op->callee->nparams, 2);
    ck_assert_str_eq(tir_attr_str(op, "kernel", ""), "rmsnorm_0");
    ck_assert_int_eq(sched(op, "warps")->u.i, 4);
    ck_assert(sched(op, "row_in_registers")->u.b);
    /* the region runs like the ops it holds */
    char *src = read_example("rmsnorm.tir");
    tir_module *ref = parse(src);
    tir_bindings b = bind2("N", 3, "H", 16);
    same_results(ref, m, "rmsnorm", &b);
    tir_module_free(ref);
    tir_module_free(m);
    free(src);
}
END_TEST

START_TEST(test_region_forms) {
    /* several results, a yielded operand, no operands, literals and a dict of every kind; names
     * in a region are unique across the function, temporaries numbered in one sequence */
    const char *src =
        "func @f(%x: f32[N], %s: f32[]) -> (f32[N], f32[], f32[N], f32[2]) {\n"
        "  %a, %b, %c = fused(%x, %s) kernel=\"k_0\" schedule={note=\"a \\\"b\\\"\", n=-3, on=false} {\n"
        "    %e = exp(%x)\n"
        "    %t = sum(mul(%e, %s))\n"
        "    yield %e, %t, %x\n"
        "  }\n"
        "  %z = fused() kernel=\"k_1\" {\n"
        "    %one = full(1.0, shape=[2])\n"
        "    %two = add(%one, 1.0)\n"
        "    yield %two\n"
        "  }\n"
        "  %d = add(%a, %c)\n"
        "  return %d, %b, %a, %z\n"
        "}\n";
    tir_module *m = parse(src);
    reparses(m);
    char *text = tir_module_print(m);
    ck_assert_ptr_nonnull(strstr(text, "schedule={note=\"a \\\"b\\\"\", n=-3, on=false} {\n"));
    ck_assert_ptr_nonnull(strstr(text, "    %0 = mul(%e, %s)\n    %t = sum(%0)\n    yield %e, %t, %x\n"));
    tir_free(text);
    tir_bindings b = bind2("N", 5, NULL, 0);
    tir_tensor *args[2], *res[4];
    tu_make_args(m, "f", &b, args, &rng);
    tir_diag d;
    ck_assert_msg(tir_interpret(m, "f", 2, args, 4, res, &d) == TIR_OK, "%s", d.msg);
    double sum = 0, sv = tir_tensor_get(args[1], 0);
    for (int i = 0; i < 5; i++) {
        double e = tir_dtype_round(TIR_F32, exp(tir_tensor_get(args[0], i)));
        ck_assert_double_eq(tir_tensor_get(res[2], i), e);
        ck_assert_double_eq(tir_tensor_get(res[0], i), tir_dtype_round(TIR_F32, e + tir_tensor_get(args[0], i)));
        sum += tir_dtype_round(TIR_F32, e * sv);
    }
    ck_assert_double_eq_tol(tir_tensor_get(res[1], 0), sum, 1e-5 * fabs(sum) + 1e-12);
    ck_assert_double_eq(tir_tensor_get(res[3], 1), 2.0);
    for (int i = 0; i < 4; i++) tir_tensor_free(res[i]);
    for (int i = 0; i < 2; i++) tir_tensor_free(args[i]);
    tir_module_free(m);
}
END_TEST

static void parse_fails(const char *src, const char *want) {
    tir_module *m = NULL;
    tir_diag d;
    tir_status st = tir_module_parse(ctx, src, "bad.tir", &m, &d);
    ck_assert_msg(st != TIR_OK, "parsed, expected \"%s\":\n%s", want, src);
    ck_assert_msg(strstr(d.msg, want) != NULL, "message \"%s\" lacks \"%s\"", d.msg, want);
    ck_assert_int_gt(d.line, 0);
}

#define HEAD "func @f(%x: f32[N], %z: f32[N]) -> f32[N] {\n"
START_TEST(test_region_errors) {
    parse_fails(HEAD "  %o = fused(%x) kernel=\"k\" {\n    %a = add(%x, %z)\n    yield %a\n  }\n  return %o\n}\n",
                "%z is not visible inside the fused region");
    parse_fails(HEAD "  %o = fused(%x) kernel=\"k\" {\n    %a = neg(%x)\n    yield %a\n  }\n  %b = add(%a, %o)\n"
                     "  return %b\n}\n",
                "%a is defined inside a fused region");
    parse_fails(HEAD "  %o = fused(%x) kernel=\"k\" {\n    %p = fused(%x) kernel=\"j\" {\n      yield %x\n    }\n"
                     "    yield %p\n  }\n  return %o\n}\n",
                "fused regions do not nest");
    parse_fails("func @g(%x: f32[N]) -> f32[N] {\n  return %x\n}\n" HEAD
                "  %o = fused(%x) kernel=\"k\" {\n    %a = call @g(%x)\n    yield %a\n  }\n  return %o\n}\n",
                "cannot call a function");
    parse_fails(HEAD "  %o = fused(%x) kernel=\"k\" {\n    %a = neg(%x)\n    return %a\n  }\n  return %o\n}\n",
                "ends with yield, not return");
    parse_fails(HEAD "  %o = fused(%x) kernel=\"k\" {\n    %a = neg(%x)\n  }\n  return %o\n}\n", "has no yield");
    parse_fails(HEAD "  %o = fused(%x, 1.0) kernel=\"k\" {\n    yield %x\n  }\n  return %o\n}\n",
                "the operands of fused are names");
    parse_fails(HEAD "  %o = fused(%x, %x) kernel=\"k\" {\n    yield %x\n  }\n  return %o\n}\n",
                "passed to fused twice");
    parse_fails(HEAD "  %o = fused(%x) {\n    yield %x\n  }\n  return %o\n}\n", "missing required attribute 'kernel'");
    parse_fails(HEAD "  %o = fused(%x) kernel=\"k\" schedule={a=1, a=2} {\n    yield %x\n  }\n  return %o\n}\n",
                "duplicate key 'a'");
    parse_fails(HEAD "  %o = fused(%x) kernel=\"k\" schedule={a=1.5} {\n    yield %x\n  }\n  return %o\n}\n",
                "must be an integer, true/false or a string");
    parse_fails(HEAD "  %o = fused(%x) kernel=\"k\" schedule=[1] {\n    yield %x\n  }\n  return %o\n}\n",
                "attribute 'schedule' must be a dict");
    parse_fails(HEAD "  %o = fused(%x) kernel=\"k\", schedule={} {\n    yield %x\n  }\n  return %o\n}\n",
                "expected an attribute 'name=value' or '{'");
    parse_fails(HEAD "  %o = fused(%x) kernel=\"k\" {\n    %o = neg(%x)\n    yield %o\n  }\n  return %o\n}\n",
                "redefinition of %o");
    parse_fails(HEAD "  %o = fused(%x) kernel=\"k\" {\n    yield 1.0\n  }\n  return %o\n}\n", "not a literal");
    parse_fails(HEAD "  %o = add(fused(%x) kernel=\"k\" {\n    yield %x\n  }, %x)\n  return %o\n}\n",
                "a fused region is a statement of its own");
    parse_fails(HEAD "  yield %x\n}\n", "yield outside a fused region");
    parse_fails(HEAD "  %o = neg(%x, schedule={a=1})\n  return %o\n}\n", "unknown attribute 'schedule'");
    parse_fails(HEAD "  %o: f32[N] = fused(%x) kernel=\"k\" {\n    %s = sum(%x)\n    yield %s\n  }\n  return %o\n}\n",
                "annotated");
}
END_TEST

/* regions built through the API that break the rules are caught by the verifier */
START_TEST(test_region_verify) {
    tir_diag d;
    tir_module *m = parse("func @g(%x: f32[N]) -> f32[N] {\n  return %x\n}\n" HEAD
                          "  %o = fused(%x) kernel=\"k\" {\n    %a = neg(%x)\n    yield %a\n  }\n  return %o\n}\n");
    tir_func *f = tir_module_find(m, "f");
    tir_func *g = tir_module_find(m, "g");
    tir_op *op = f->ops[0];
    tir_func *r = op->callee;
    ck_assert_int_eq(tir_verify(m, &d), TIR_OK);
    /* a region op reading the enclosing function's value */
    tir_value *saved = r->ops[0]->in[0];
    r->ops[0]->in[0] = f->params[1];
    ck_assert_int_ne(tir_verify(m, &d), TIR_OK);
    ck_assert_ptr_nonnull(strstr(d.msg, "not visible in the fused region"));
    r->ops[0]->in[0] = saved;
    /* a nested fused op, and a call, inside a region */
    tir_func *inner = tir_region_new(r, "inner", op->loc);
    tir_value *p = tir_func_add_param(inner, "y", &r->params[0]->type, op->loc);
    tir_func_set_results(inner, 1, &p);
    tir_func_set_ret(inner, 1, &p->type);
    tir_attr_value ka = tir_a_str("kernel", "inner");
    tir_op *nested = tir_func_append_op(r, TIR_OP_FUSED, 1, &r->params[0], 1, &ka, inner, op->loc, &d);
    ck_assert_msg(nested != NULL, "%s", d.msg);
    ck_assert_int_ne(tir_verify(m, &d), TIR_OK);
    ck_assert_ptr_nonnull(strstr(d.msg, "do not nest"));
    r->nops--;
    tir_op *call = tir_func_append_op(r, TIR_OP_CALL, 1, &r->params[0], 0, NULL, g, op->loc, &d);
    ck_assert_msg(call != NULL, "%s", d.msg);
    ck_assert_int_ne(tir_verify(m, &d), TIR_OK);
    ck_assert_ptr_nonnull(strstr(d.msg, "cannot call"));
    r->nops--;
    /* a module function used as a region */
    op->callee = f;
    ck_assert_int_ne(tir_verify(m, &d), TIR_OK);
    op->callee = r;
    ck_assert_int_eq(tir_verify(m, &d), TIR_OK);
    /* the public builder cannot make a fused op (it has no region), and says so */
    tir_builder *b = tir_builder_begin(m, "h");
    const char *dims[1] = {"N"};
    tir_value *x = tir_build_param(b, "x", TIR_F32, 1, dims);
    tir_value *y = tir_build_op(b, "fused", 1, &x, 0, NULL);
    ck_assert_ptr_null(y);
    ck_assert_int_ne(tir_builder_finish(b, 1, &x, &d), TIR_OK);
    ck_assert_int_eq(tir_verify(m, &d), TIR_OK);
    tir_module_free(m);
}
END_TEST
#undef HEAD

/* ---------------------------------------------------------------- the pass */

START_TEST(test_fuse_rmsnorm_example) {
    char *src = read_example("rmsnorm.tir");
    tir_bindings b = bind2("N", 3, "H", 16);
    tir_module *m = fused_and_checked(src, "rmsnorm", &b);
    tir_module *ref = parse(src), *m2 = parse(src);
    lower(ref);
    lower(m2);
    fuse(m2);
    same_results(ref, m2, "rmsnorm_op", &b);
    ck_assert_int_eq(regions(m, "rmsnorm"), 1);
    ck_assert_int_eq(regions(m, "rmsnorm_op"), 1);
    ck_assert_int_eq(tir_module_find(m, "rmsnorm")->nops, 1);
    ck_assert_int_eq(tir_module_find(m, "rmsnorm_op")->nops, 1);
    ck_assert_str_eq(tir_attr_str(first_region(m, "rmsnorm"), "kernel", ""), "rmsnorm_0");
    ck_assert_str_eq(tir_attr_str(first_region(m, "rmsnorm_op"), "kernel", ""), "rmsnorm_1");
    /* a symbolic row length: nothing is known to divide it, nor to fit in registers */
    const tir_op *op = first_region(m, "rmsnorm");
    ck_assert_str_eq(sched(op, "kind")->u.s, "row");
    ck_assert_int_eq(sched(op, "vector")->u.i, 1);
    ck_assert(!sched(op, "row_in_registers")->u.b);
    tir_module_free(ref);
    tir_module_free(m2);
    tir_module_free(m);
    free(src);
}
END_TEST

START_TEST(test_fuse_row_kernels) {
    const char *src =
        "func @sm(%x: bf16[N, C]) -> bf16[N, C] {\n  %y = softmax(%x)\n  return %y\n}\n"
        "func @lsm(%x: f32[N, 128]) -> f32[N, 128] {\n  %y = log_softmax(%x, axis=-1)\n  return %y\n}\n"
        "func @ln(%x: bf16[B, T, 768], %w: bf16[768], %b: bf16[768]) -> bf16[B, T, 768] {\n"
        "  %y = layernorm(%x, %w, %b, eps=1e-5)\n  return %y\n}\n"
        "func @rms(%x: bf16[N, 4096], %w: bf16[4096]) -> bf16[N, 4096] {\n"
        "  %y = rmsnorm(%x, %w, eps=1e-6)\n  return %y\n}\n"
        "func @ce(%x: f32[N, C], %t: i32[N]) -> f32[] {\n  %l = cross_entropy(%x, %t)\n  return %l\n}\n"
        "func @cen(%x: bf16[N, C], %t: i64[N]) -> bf16[N] {\n"
        "  %l = cross_entropy(%x, %t, reduction=\"none\")\n  return %l\n}\n";
    tir_bindings b = {0};
    tir_bindings_set(&b, "N", 3);
    tir_bindings_set(&b, "C", 7);
    tir_bindings_set(&b, "B", 2);
    tir_bindings_set(&b, "T", 2);
    const char *funcs[] = {"sm", "lsm", "ln", "rms", "ce", "cen"};
    const char *names[] = {"softmax_0", "log_softmax_1", "layernorm_2", "rmsnorm_3", NULL, "cross_entropy_5"};
    tir_module *m = NULL;
    for (int i = 0; i < 6; i++) {
        tir_module_free(m);
        m = fused_and_checked(src, funcs[i], &b);
    }
    for (int i = 0; i < 6; i++) {
        /* every reduction over the class/row axis of a function sits in one region, and so does
         * cross_entropy's mean over the batch (a total of per-row values: partials) */
        ck_assert_int_eq(regions(m, funcs[i]), 1);
        ck_assert_int_eq(outside(m, funcs[i], TIR_OP_MAX) + outside(m, funcs[i], TIR_OP_SUM) +
                             outside(m, funcs[i], TIR_OP_MEAN),
                         0);
        if (names[i]) ck_assert_str_eq(tir_attr_str(first_region(m, funcs[i]), "kernel", ""), names[i]);
    }
    const tir_op *ce_rows = NULL;
    const tir_func *ce = tir_module_find(m, "ce");
    for (int k = 0; k < ce->nops; k++)
        if (tir_op_region(ce->ops[k]) && count_code(ce->ops[k]->callee, TIR_OP_MAX)) ce_rows = ce->ops[k];
    ck_assert_ptr_nonnull(ce_rows);
    /* log-sum-exp, the picked logit, and the mean's two totals (losses, targets not ignored) */
    ck_assert_int_eq(count_code(ce_rows->callee, TIR_OP_SUM), 4);
    ck_assert_int_eq(sched(ce_rows, "partials")->u.i, 2);
    ck_assert_str_eq(tir_attr_str(ce_rows, "kernel", ""), "cross_entropy_4");
    /* schedules follow the row: 128 f32 = 4 rows of 32 threads of float4 in 4 warps; 768 and
     * 4096 bf16 in vectors of 8, one row per block; all short enough for registers */
    const tir_op *op = first_region(m, "lsm");
    ck_assert_int_eq(sched(op, "rows_per_block")->u.i, 4);
    ck_assert_int_eq(sched(op, "warps")->u.i, 4);
    ck_assert_int_eq(sched(op, "vector")->u.i, 4);
    ck_assert(sched(op, "row_in_registers")->u.b);
    op = first_region(m, "ln");
    ck_assert_int_eq(sched(op, "rows_per_block")->u.i, 1);
    ck_assert_int_eq(sched(op, "warps")->u.i, 4);
    ck_assert_int_eq(sched(op, "vector")->u.i, 8);
    op = first_region(m, "rms");
    ck_assert_int_eq(sched(op, "warps")->u.i, 8);
    ck_assert_int_eq(sched(op, "vector")->u.i, 8);
    ck_assert(sched(op, "row_in_registers")->u.b);
    tir_module_free(m);
}
END_TEST

START_TEST(test_fuse_elementwise) {
    const char *src =
        "func @swiglu(%a: bf16[N, 4096], %b: bf16[N, 4096]) -> bf16[N, 4096] {\n"
        "  %y = mul(silu(%a), %b)\n  return %y\n}\n"
        "func @chain(%x: f32[N, H], %b: f32[H]) -> f32[N, H] {\n"
        "  %y = tanh(add(mul(exp(%x), 0.5), %b))\n  return %y\n}\n"
        "func @gelu(%x: f16[N, 64], %s: f16[1, 64]) -> (f16[N, 64], f32[N, 64]) {\n"
        "  %g = gelu(mul(%x, %s), approximate=\"tanh\")\n"
        "  %h = where(gt(%g, 0.0), cast(%g, dtype=f32), -1.0)\n"
        "  return %g, %h\n}\n"
        "func @moves(%x: f32[N, H], %y: f32[H, N]) -> f32[N, H] {\n"
        "  %z = add(exp(%x), transpose(neg(%y), perm=[1, 0]))\n  return %z\n}\n";
    tir_bindings b = bind2("N", 3, "H", 5);
    const char *funcs[] = {"swiglu", "chain", "gelu", "moves"};
    tir_module *m = NULL;
    for (int i = 0; i < 4; i++) {
        tir_module_free(m);
        m = fused_and_checked(src, funcs[i], &b);
        ck_assert_int_eq(regions(m, funcs[i]), 1);
        ck_assert_int_eq(tir_module_find(m, funcs[i])->nops, 1);
    }
    ck_assert_str_eq(tir_attr_str(first_region(m, "swiglu"), "kernel", ""), "swiglu_0");
    const tir_op *op = first_region(m, "swiglu");
    ck_assert_str_eq(sched(op, "kind")->u.s, "elementwise");
    ck_assert_int_eq(sched(op, "vector")->u.i, 8);
    ck_assert_int_eq(sched(op, "block")->u.i, 256);
    ck_assert_int_eq(first_region(m, "gelu")->nout, 2); /* %g is returned: an extra result */
    ck_assert_int_eq(inside(m, "moves", TIR_OP_TRANSPOSE), 1);
    tir_module_free(m);
}
END_TEST

/* A kernel may be entered at a late member and left from an early one, so the cycle check must
 * not stop at groups whose members all come after the merge (the gradient of softmax then rope,
 * found by tirc fuzz: two row kernels each fed the other through split/neg/concat). */
START_TEST(test_fuse_no_cycle_through_late_groups) {
    const char *src = "func @loss(%x0: f16[1, 2], %x4: f16[1, 2], %x5: f16[1, 2]) -> f16[] {\n"
                      "  %l = sum(rope(softmax(%x0), %x4, %x5))\n  return %l\n}\n"
                      "func @g = value_and_grad(@loss, wrt=[%x0, %x5])\n";
    tir_bindings b = {0};
    tir_module *m = fused_and_checked(src, "g", &b);
    ck_assert_int_ge(regions(m, "g"), 2);
    tir_module_free(m);
}
END_TEST

/* reductions across rows (a loss summed over every axis, a weight gradient summed over the rows)
 * join the row kernel that produces their operand; the schedule records the partials, the
 * sweeps and the online max-sum; what cannot be folded in registers stays a kernel of its own */
START_TEST(test_fuse_across_rows) {
    const char *src =
        "func @loss(%x: bf16[N, 64], %w: bf16[64], %g: bf16[N, 64]) -> f32[] {\n"
        "  %o = rmsnorm(%x, %w, eps=1e-6)\n"
        "  %l = sum(mul(cast(%o, dtype=f32), cast(%g, dtype=f32)), axes=[0, 1])\n  return %l\n}\n"
        "func @vg = value_and_grad(@loss, wrt=[%x, %w])\n"
        "func @fb(%x: bf16[N, 64], %w: bf16[64], %g: bf16[N, 64]) -> (bf16[N, 64], bf16[N, 64], bf16[64]) {\n"
        "  %y = rmsnorm(%x, %w, eps=1e-6)\n  %l, %dx, %dw = call @vg(%x, %w, %g)\n  return %y, %dx, %dw\n}\n"
        "func @sw_loss(%a: bf16[N, 96], %b: bf16[N, 96], %g: bf16[N, 96]) -> f32[] {\n"
        "  %l = sum(mul(cast(mul(silu(%a), %b), dtype=f32), cast(%g, dtype=f32)), axes=[0, 1])\n  return %l\n}\n"
        "func @sw = value_and_grad(@sw_loss, wrt=[%a, %b])\n"
        "func @ce_loss(%x: bf16[N, 40], %t: i64[N]) -> f32[] {\n"
        "  %l = cross_entropy(cast(%x, dtype=f32), %t, reduction=\"mean\")\n  return %l\n}\n"
        "func @ce = value_and_grad(@ce_loss, wrt=[%x])\n"
        "func @colsym(%x: f32[N, D]) -> (f32[N, D], f32[D]) {\n"
        "  %y = div(%x, sum(%x, axes=[1], keepdim=true))\n  %c = sum(%y, axes=[0])\n  return %y, %c\n}\n";
    tir_bindings b = bind2("N", 5, "D", 3);
    tir_module *m = fused_and_checked(src, "fb", &b);
    /* y, dx and dw from one kernel: dw (a column sum) in it, nothing N x D in memory but y, dx */
    ck_assert_int_eq(regions(m, "fb"), 1);
    const tir_op *op = first_region(m, "fb");
    ck_assert_int_eq(op->nout, 3);
    ck_assert_int_eq(sched(op, "partials")->u.i, 1);
    ck_assert(sched(op, "blocks_per_sm")->u.i >= 1);
    ck_assert_int_eq(sched(op, "sweeps")->u.i, 2); /* both row reductions in one sweep, then the writes */
    tir_module_free(m);
    /* value_and_grad itself: the loss and dw both join the row kernel */
    m = fused_and_checked(src, "vg", &b);
    ck_assert_int_eq(regions(m, "vg"), 1);
    ck_assert_int_eq(sched(first_region(m, "vg"), "partials")->u.i, 2);
    tir_module_free(m);
    /* SwiGLU forward and backward with its loss: one kernel, rows along the last axis */
    m = fused_and_checked(src, "sw", &b);
    ck_assert_int_eq(regions(m, "sw"), 1);
    op = first_region(m, "sw");
    ck_assert_str_eq(sched(op, "kind")->u.s, "row");
    ck_assert_int_eq(sched(op, "partials")->u.i, 1);
    tir_module_free(m);
    /* cross-entropy forward and backward: one stats sweep (max, the online sum, the picked
     * target logit), one write sweep */
    m = fused_and_checked(src, "ce", &b);
    const tir_func *f = tir_module_find(m, "ce");
    int rows_k = 0;
    for (int k = 0; k < f->nops; k++) {
        const tir_attr_value *sw = tir_dict_get(tir_op_attr(f->ops[k], "schedule"), "online");
        if (!sw || !sw->u.b) continue;
        rows_k++;
        ck_assert_int_eq(sched(f->ops[k], "sweeps")->u.i, 2);
    }
    ck_assert_int_eq(rows_k, 1);
    /* the plan of that row kernel: max with the online sum riding on it, the keepdim duplicate
     * of the sum, the target logit picked; the batch mean's two totals across rows */
    for (int k = 0; k < f->nops; k++) {
        const tir_attr_value *sw = tir_dict_get(tir_op_attr(f->ops[k], "schedule"), "online");
        if (!sw || !sw->u.b) continue;
        tir_row_plan plan;
        ck_assert(tir_fused_row_plan(f->ops[k]->callee, true, &plan));
        ck_assert_int_eq(plan.nsweeps, 1);
        ck_assert_int_eq(plan.nonline, 1);
        ck_assert_int_eq(plan.npick, 1);
        ck_assert_int_eq(plan.ndup, 1);
        ck_assert_int_eq(plan.ngrid, 2); /* the loss: sum of the row losses / targets not ignored */
        ck_assert_int_eq(plan.nrowval, 2);
        tir_fused_row_plan_free(&plan);
        /* without the online sum, max and sum need two sweeps */
        ck_assert(tir_fused_row_plan(f->ops[k]->callee, false, &plan));
        ck_assert_int_eq(plan.nsweeps, 2);
        ck_assert_int_eq(plan.nonline, 0);
        tir_fused_row_plan_free(&plan);
    }
    tir_module_free(m);
    /* a column sum over rows of a symbolic length cannot keep its partials in registers */
    m = fused_and_checked(src, "colsym", &b);
    ck_assert_int_eq(regions(m, "colsym"), 2);
    tir_module *e = parse(src);
    lower(e);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    tir_diag d;
    ck_assert_int_eq(tir_fuse_explain(e, out, &d), TIR_OK);
    fclose(out);
    ck_assert_msg(strstr(buf, "which needs rows of a constant length of at most 8192"), "%.900s", buf);
    free(buf);
    tir_module_free(e);
    tir_module_free(m);
}
END_TEST

START_TEST(test_fuse_boundaries) {
    /* exp feeds a matmul and, with the matmul's result, an add: the add cannot take it in
     * (a cycle through the matmul), so exp is a kernel of its own and the add another */
    const char *src =
        "func @cyc(%x: f32[N, N], %w: f32[N, N]) -> f32[N, N] {\n"
        "  %a = exp(%x)\n  %m = matmul(%a, %w)\n  %s = add(%a, %m)\n  return %s\n}\n"
        /* a reduced value moved across rows cannot stay in the row kernel */
        "func @across(%x: f32[N, N]) -> f32[N, N] {\n"
        "  %s = sum(%x, axes=[1], keepdim=true)\n  %t = transpose(%s, perm=[1, 0])\n"
        "  %y = mul(%x, %t)\n  return %y\n}\n";
    tir_bindings b = bind2("N", 4, NULL, 0);
    tir_module *m = fused_and_checked(src, "cyc", &b);
    ck_assert_int_eq(regions(m, "cyc"), 2);
    ck_assert_int_eq(outside(m, "cyc", TIR_OP_MATMUL), 1);
    tir_module_free(m);
    m = fused_and_checked(src, "across", &b);
    ck_assert_int_eq(regions(m, "across"), 2);
    /* the explanation names the kernels and says why each boundary is there */
    tir_module *e = parse(src);
    lower(e);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    tir_diag d;
    ck_assert_int_eq(tir_fuse_explain(e, out, &d), TIR_OK);
    fclose(out);
    ck_assert_msg(strstr(buf, "kernel exp_0") && strstr(buf, "kernel add_1"), "%.2000s", buf);
    ck_assert_msg(strstr(buf, "matmul: not fusible (tensor-core kernel)"), "%.2000s", buf);
    ck_assert_msg(strstr(buf, "it would make a cycle through matmul"), "%.2000s", buf);
    ck_assert_msg(strstr(buf, "the consumer needs the full reduction"), "%.2000s", buf);
    free(buf);
    tir_module_free(e);
    tir_module_free(m);
}
END_TEST

/* A cheap pure function of the parameters that several kernels read is recomputed in each of
 * them: no kernel of its own, no result read across kernels, the same values. RoPE on q and k
 * shares the f32 cos, sin and half mask (5 kernels before: those 3, then q and k). The bound
 * holds: a chain of TIR_FUSE_RECOMPUTE_OPS (4) cheap ops is recomputed, one of 5 is not; an exp
 * is not cheap; a reduction and what reads it are never recomputed. */
static bool yields_dtype(const tir_module *m, const char *func, tir_dtype dt) {
    const tir_func *f = tir_module_find(m, func);
    for (int k = 0; k < f->nops; k++)
        for (int j = 0; tir_op_region(f->ops[k]) && j < f->ops[k]->nout; j++)
            if (f->ops[k]->out[j]->type.dtype == dt) return true;
    return false;
}

START_TEST(test_fuse_recompute) {
    const char *src =
        "func @rope(%q: bf16[B, 4, T, 8], %k: bf16[B, 2, T, 8], %cos: bf16[T, 8], %sin: bf16[T, 8]) "
        "-> (bf16[B, 4, T, 8], bf16[B, 2, T, 8]) {\n"
        "  %qo = rope(%q, %cos, %sin)\n  %ko = rope(%k, %cos, %sin)\n  return %qo, %ko\n}\n"
        "func @four(%a: f32[N, H], %b: f32[M, H], %t: bf16[H]) -> (f32[N, H], f32[M, H]) {\n"
        "  %u = add(mul(neg(cast(%t, dtype=f32)), 2.0), 1.0)\n"
        "  %ya = mul(%a, %u)\n  %yb = add(%b, %u)\n  return %ya, %yb\n}\n"
        "func @five(%a: f32[N, H], %b: f32[M, H], %t: bf16[H]) -> (f32[N, H], f32[M, H]) {\n"
        "  %u = abs(add(mul(neg(cast(%t, dtype=f32)), 2.0), 1.0))\n"
        "  %ya = mul(%a, %u)\n  %yb = add(%b, %u)\n  return %ya, %yb\n}\n"
        "func @costly(%a: f32[N, H], %b: f32[M, H], %t: f32[H]) -> (f32[N, H], f32[M, H]) {\n"
        "  %u = cast(exp(%t), dtype=f32)\n  %ya = mul(%a, %u)\n  %yb = add(%b, %u)\n  return %ya, %yb\n}\n"
        "func @reduced(%a: f32[N, H], %b: f32[M, H], %t: f32[N, H]) -> (f32[N, H], f32[M, H]) {\n"
        "  %u = neg(sum(%t, axes=[0]))\n  %ya = mul(%a, %u)\n  %yb = add(%b, %u)\n  return %ya, %yb\n}\n";
    tir_bindings b = bind2("B", 2, "T", 3);
    tir_bindings_set(&b, "N", 3);
    tir_bindings_set(&b, "M", 2);
    tir_bindings_set(&b, "H", 5);
    tir_module *m = fused_and_checked(src, "rope", &b);
    ck_assert_int_eq(regions(m, "rope"), 2);            /* q and k; cos, sin and the mask recomputed */
    ck_assert_int_eq(inside(m, "rope", TIR_OP_IOTA), 2); /* the mask's iota in each */
    ck_assert(!yields_dtype(m, "rope", TIR_F32) && !yields_dtype(m, "rope", TIR_BOOL));
    reparses(m);
    tir_module_free(m);
    m = fused_and_checked(src, "four", &b);
    ck_assert_int_eq(regions(m, "four"), 2);
    ck_assert_int_eq(inside(m, "four", TIR_OP_NEG), 2);
    tir_module_free(m);
    m = fused_and_checked(src, "five", &b); /* 5 ops: a kernel of its own, read by both */
    ck_assert_int_eq(regions(m, "five"), 3);
    ck_assert_int_eq(inside(m, "five", TIR_OP_ABS), 1);
    tir_module_free(m);
    m = fused_and_checked(src, "costly", &b);
    ck_assert_int_eq(regions(m, "costly"), 3);
    ck_assert_int_eq(inside(m, "costly", TIR_OP_EXP), 1);
    tir_module_free(m);
    m = fused_and_checked(src, "reduced", &b); /* the column sum's kernel (with mul) writes %u */
    ck_assert_int_eq(regions(m, "reduced"), 2);
    ck_assert_int_eq(inside(m, "reduced", TIR_OP_NEG), 1);
    ck_assert_int_eq(first_region(m, "reduced")->nout, 2);
    tir_module_free(m);
    /* the explanation lists the copies with their kernel and no boundary for them */
    tir_module *e = parse(src);
    lower(e);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    tir_diag d;
    ck_assert_int_eq(tir_fuse_explain(e, out, &d), TIR_OK);
    fclose(out);
    char *four = strstr(buf, "@four: 2 kernels, 0 ops outside kernels"), *five = strstr(buf, "@five: 3 kernels");
    ck_assert_msg(strstr(buf, "@rope: 2 kernels") && four && five, "%.2000s", buf);
    ck_assert_msg(strstr(four, "recomputes: cast") < five, "%.2000s", buf);
    ck_assert_msg(!strstr(four, "boundaries") || strstr(four, "boundaries") > five, "%.2000s", buf);
    free(buf);
    tir_module_free(e);
}
END_TEST

START_TEST(test_fuse_llama_block) {
    char *src = read_example("llama_block.tir");
    tir_bindings l = {0};
    const char *ln[] = {"B", "T", "D", "Hq", "Hk", "I"};
    int64_t lv[] = {1, 3, 8, 2, 1, 5};
    for (int i = 0; i < 6; i++) tir_bindings_set(&l, ln[i], lv[i]);
    tir_module *m = fused_and_checked(src, "block", &l);
    /* matmuls stay outside; every reduction, elementwise op is inside a kernel */
    ck_assert_int_eq(outside(m, "block", TIR_OP_MATMUL), 9); /* 7 linears, q·kᵀ and p·v */
    ck_assert_int_eq(inside(m, "block", TIR_OP_MATMUL), 0);
    const tir_func *f = tir_module_find(m, "block");
    for (int k = 0; k < f->nops; k++) {
        tir_opcode c = f->ops[k]->code;
        ck_assert_msg(!tir_op_is_elementwise(c) && !(tir_ops[c].flags & TIR_F_REDUCE), "%s left outside",
                      tir_ops[c].name);
    }
    /* two RMSNorms (the second with the residual add), the attention softmax with its scale and
     * causal mask, SwiGLU, rope (one kernel each for q and k: the f32 cos and sin and the half
     * mask they share are recomputed in both from the parameters, not 3 kernels of their own),
     * the casts around every matmul */
    ck_assert_int_eq(regions(m, "block"), 18);
    int rms = 0, softmax = 0, swiglu = 0;
    for (int k = 0; k < f->nops; k++) {
        const char *name = tir_attr_str(f->ops[k], "kernel", "");
        rms += strncmp(name, "rmsnorm_", 8) == 0;
        softmax += strncmp(name, "softmax_", 8) == 0;
        swiglu += strncmp(name, "swiglu_", 7) == 0;
        if (strncmp(name, "rmsnorm_", 8) == 0 && f->ops[k]->nout == 2)
            ck_assert_str_eq(f->ops[k]->out[0]->name, "x2"); /* the residual stream, written once */
    }
    ck_assert_int_eq(rms, 2);
    ck_assert_int_eq(softmax, 1);
    ck_assert_int_eq(swiglu, 1);
    /* fusing again finds nothing more to do */
    char *once = tir_module_print(m);
    fuse(m);
    char *twice = tir_module_print(m);
    ck_assert_str_eq(once, twice);
    tir_free(once);
    tir_free(twice);
    tir_module_free(m);
    free(src);
}
END_TEST

START_TEST(test_fuse_training_step) {
    /* gradients bring column reductions (bias grads), reshapes and one-hot cross-entropy rules */
    char *src = read_example("train_mlp.tir");
    tir_bindings t = bind2("B", 4, NULL, 0);
    tir_module *ref = parse(src), *m = parse(src);
    lower(ref);
    lower(m);
    fuse(m);
    reparses(m);
    same_results(ref, m, "loss_grad", &t);
    same_results(ref, m, "sgd_step", &t);
    ck_assert_int_gt(regions(m, "sgd_step"), 0);
    ck_assert_int_eq(inside(m, "sgd_step", TIR_OP_MATMUL), 0);
    tir_module_free(ref);
    tir_module_free(m);
    free(src);
}
END_TEST

/* ---------------------------------------------------------------- the goldens */

/* tests/golden/fuse_*.tir with `# RUN: print --after fuse`: the expected printout, produced here
 * by the pass (or the pipeline's own stage, once it has one) */
START_TEST(test_fuse_goldens) {
    const char *root = getenv("TIR_SOURCE_DIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/golden", root ? root : ".");
    DIR *dp = opendir(dir);
    ck_assert_ptr_nonnull(dp);
    int n = 0;
    for (struct dirent *e; (e = readdir(dp));) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "fuse_", 5) != 0 || len < 4 || strcmp(e->d_name + len - 4, ".tir") != 0) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *src = tu_read_file(path);
        ck_assert_msg(src != NULL, "cannot read %s", path);
        const char *stage = strstr(src, "# RUN: print --after fuse\n")       ? "fuse"
                            : strstr(src, "# RUN: print --after schedule\n") ? "schedule"
                                                                               : NULL;
        if (!stage) {
            free(src);
            continue;
        }
        size_t cap = strlen(src) + 1, w = 0;
        char *want = malloc(cap);
        ck_assert_ptr_nonnull(want);
        for (const char *l = src; *l;) {
            const char *end = strchr(l, '\n');
            size_t ll = end ? (size_t)(end - l) : strlen(l);
            if (ll >= 3 && strncmp(l, "# |", 3) == 0) {
                size_t skip = ll > 3 ? 4 : 3;
                memcpy(want + w, l + skip, ll - skip);
                w += ll - skip;
                want[w++] = '\n';
            }
            l += ll + (end ? 1 : 0);
        }
        want[w] = 0;
        tir_module *m = NULL;
        tir_diag d;
        ck_assert_msg(tir_module_parse(ctx, src, path, &m, &d) == TIR_OK, "%s: %s", path, d.msg);
        ck_assert_msg(tir_pipeline_run(m, stage, NULL, NULL, &d) == TIR_OK, "%s: %s", path, d.msg);
        char *got = tir_module_print(m);
        char diff[1024];
        ck_assert_msg(strcmp(got, want) == 0, "%s: printout differs: %s", path,
                      first_diff(want, got, diff, sizeof diff));
        /* run.sh prints the printout again through the whole pipeline: fusing fused code is a
         * no-op */
        tir_module *again = parse(got);
        ck_assert_msg(tir_pipeline_run(again, stage, NULL, NULL, &d) == TIR_OK, "%s again: %s", path, d.msg);
        char *got2 = tir_module_print(again);
        ck_assert_msg(strcmp(got, got2) == 0, "%s: the pipeline changes the printout: %s", path,
                      first_diff(got, got2, diff, sizeof diff));
        tir_free(got2);
        tir_module_free(again);
        tir_free(got);
        tir_module_free(m);
        free(want);
        free(src);
        n++;
    }
    closedir(dp);
    ck_assert_int_ge(n, 3);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("fuse");
    TCase *tc = tcase_create("fuse");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_region_parse_print_run);
    tcase_add_test(tc, test_region_forms);
    tcase_add_test(tc, test_region_errors);
    tcase_add_test(tc, test_region_verify);
    tcase_add_test(tc, test_fuse_rmsnorm_example);
    tcase_add_test(tc, test_fuse_row_kernels);
    tcase_add_test(tc, test_fuse_elementwise);
    tcase_add_test(tc, test_fuse_boundaries);
    tcase_add_test(tc, test_fuse_across_rows);
    tcase_add_test(tc, test_fuse_no_cycle_through_late_groups);
    tcase_add_test(tc, test_fuse_recompute);
    tcase_add_test(tc, test_fuse_llama_block);
    tcase_add_test(tc, test_fuse_training_step);
    tcase_add_test(tc, test_fuse_goldens);
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
