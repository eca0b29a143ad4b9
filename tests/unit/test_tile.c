/* test_tile.c: the tile pass (passes/tile.c) and the RoPE decomposition that makes rope one
 * kernel (ir/composite.c dec_rope, passes/grad_rules.c r_rope).
 *
 * Tile: the tiling heuristic by shape class (and that it is the code generator's own choice for
 * the cp.async kernels, which it mirrors), which ops join a matmul's epilogue and where the chain
 * stops, that every region prints as .tir that parses back, and that the interpreter gives the
 * same bits before and after the pass; a kind="matmul" region the code generator declines still
 * compiles, one kernel per member.
 *
 * RoPE: the index-map decomposition against the split/concat one (the form a symbolic head dim
 * still takes, and the only one before), bit for bit on bf16 and f32, forward and gradient; both
 * become one kernel after fuse. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"
#include "pipeline.h"
#include "testutil.h"
#ifdef TIR_WITH_LLVM
#include "matmul_mma.h"
#endif

static tir_context *ctx;
static void setup(void) { ctx = tir_context_create(); }
static void teardown(void) { tir_context_destroy(ctx); }

static uint64_t rng = 11;

static tir_module *parse(const char *src) { return tu_parse(ctx, src); }

static void run_until(tir_module *m, const char *stage) {
    tir_diag d;
    tir_status st = tir_pipeline_run(m, stage, NULL, NULL, &d);
    ck_assert_msg(st == TIR_OK, "pipeline to %s: %s", stage, d.msg);
    st = tir_verify(m, &d);
    ck_assert_msg(st == TIR_OK, "after %s the module does not verify: %d:%d: %s", stage, d.line, d.col, d.msg);
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

/* interp(m0, f0) and interp(m1, f1) on the same random arguments give the same bits */
static void same_bits(tir_module *m0, const char *f0, tir_module *m1, const char *f1, const tir_bindings *b) {
    const tir_func *f = tir_module_find(m0, f0);
    ck_assert_ptr_nonnull(f);
    int np = f->nparams, nr = f->nret;
    tir_tensor *args[16], *r0[8], *r1[8];
    ck_assert_int_le(np, 16);
    ck_assert_int_le(nr, 8);
    tu_make_args(m0, f0, b, args, &rng);
    tir_diag d;
    ck_assert_msg(tir_interpret(m0, f0, np, args, nr, r0, &d) == TIR_OK, "@%s: %s", f0, d.msg);
    ck_assert_msg(tir_interpret(m1, f1, np, args, nr, r1, &d) == TIR_OK, "@%s: %s", f1, d.msg);
    for (int j = 0; j < nr; j++) {
        int64_t n = tir_tensor_numel(r0[j]);
        ck_assert_int_eq(n, tir_tensor_numel(r1[j]));
        double scale = 0;
        for (int64_t e = 0; e < n; e++) {
            double x = tir_tensor_get(r0[j], e), y = tir_tensor_get(r1[j], e);
            scale = fmax(scale, fabs(x));
            ck_assert_msg(x == y || (isnan(x) && isnan(y)), "@%s/@%s result %d elem %lld: %.17g vs %.17g", f0, f1,
                          j, (long long)e, x, y);
        }
        ck_assert_msg(scale > 0 && isfinite(scale), "@%s result %d: degenerate scale %g", f0, j, scale);
        tir_tensor_free(r0[j]);
        tir_tensor_free(r1[j]);
    }
    for (int i = 0; i < np; i++) tir_tensor_free(args[i]);
}

static tir_bindings bind2(const char *a, int64_t va, const char *b, int64_t vb) {
    tir_bindings r = {0};
    if (a) tir_bindings_set(&r, a, va);
    if (b) tir_bindings_set(&r, b, vb);
    return r;
}

static int count_code(const tir_func *f, tir_opcode code) {
    int n = 0;
    for (int k = 0; k < f->nops; k++) n += f->ops[k]->code == code;
    return n;
}

static const tir_op *nth_region(const tir_func *f, int n) {
    for (int k = 0; k < f->nops; k++)
        if (tir_op_region(f->ops[k]) && n-- == 0) return f->ops[k];
    ck_abort_msg("@%s has too few regions", f->name);
    return NULL;
}

static int64_t sched_int(const tir_op *op, const char *key) {
    const tir_attr_value *e = tir_dict_get(tir_op_attr(op, "schedule"), key);
    ck_assert_msg(e != NULL, "schedule has no %s", key);
    return e->kind == TIR_ATTR_BOOL ? e->u.b : e->u.i;
}

/* the member opcodes of a region, in order, as a space-separated string */
static void region_ops(const tir_op *fop, char *buf, size_t n) {
    const tir_func *R = tir_op_region(fop);
    buf[0] = 0;
    for (int i = 0; i < R->nops; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%s", i ? " " : "", tir_ops[R->ops[i]->code].name);
    }
}

/* ---------------------------------------------------------------- the tiling heuristic */

START_TEST(test_pick_shape_classes) {
    tir_tile_config c;
    /* small outputs: 64x64 mma.sync tiles so that enough blocks run */
    tir_tile_pick(1, 512, 512, 512, &c);
    ck_assert_int_eq(c.bm, 64);
    ck_assert_int_eq(c.bn, 64);
    ck_assert(!c.wgmma);
    tir_tile_pick(1, 64, 8192, 4096, &c); /* a thin M (decode) */
    ck_assert_int_eq(c.bm, 64);
    ck_assert(!c.wgmma);
    /* medium: 128x128 wgmma */
    tir_tile_pick(1, 2048, 1024, 4096, &c);
    ck_assert_int_eq(c.bm, 128);
    ck_assert_int_eq(c.bn, 128);
    ck_assert_int_eq(c.bk, 64);
    ck_assert(c.wgmma);
    /* large with a wide N: 128x256, two warpgroups */
    tir_tile_pick(1, 8192, 14336, 4096, &c);
    ck_assert_int_eq(c.bm, 128);
    ck_assert_int_eq(c.bn, 256);
    ck_assert_int_eq(c.warps_m, 2);
    ck_assert_int_eq(c.warps_n, 1);
    ck_assert(c.wgmma);
    ck_assert_int_eq(c.split_k, 1);
    /* symbolic sizes are taken as large */
    tir_tile_pick(-1, -1, -1, -1, &c);
    ck_assert_int_eq(c.bn, 256);
    ck_assert_int_eq(c.split_k, 1);
}
END_TEST

START_TEST(test_pick_split_k) {
    /* split-K is off (TILE_SPLIT_K in passes/tile.c) until the code generator has a split-K
     * kernel: it declines split_k > 1, and a region must never run member by member because of a
     * key the pass chose. So the shapes the heuristic would split (few tiles, long K) get 1. */
    static const int64_t shapes[][4] = {
        {1, 256, 256, 8192}, {8, 256, 256, 65536}, {1, 64, 64, 1 << 20}, {1, 256, 256, 2048},
        {1, 256, 256, -1},   {64, 256, 256, 65536}, {INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        tir_tile_config c;
        c.split_k = 99;
        tir_tile_pick(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], &c);
        ck_assert_msg(c.split_k == 1, "shape %zu: split_k %d", i, c.split_k);
    }
    /* sizes past any real problem are large, not an overflow */
    tir_tile_config c;
    tir_tile_pick(INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, &c);
    ck_assert_int_eq(c.bn, 256);
}
END_TEST

#ifdef TIR_WITH_LLVM
/* The pass mirrors the code generator's choice for the cp.async kernels (it may not call it):
 * the same tiling for every shape class, and one the generator accepts. */
START_TEST(test_pick_mirrors_codegen) {
    static const int64_t sizes[][3] = {{512, 512, 512}, {64, 8192, 4096}, {2048, 1024, 4096},
                                       {8192, 14336, 4096}, {4096, 4096, 4096}, {1000, 3000, 700},
                                       {128, 128, 64}, {2049, 2048, 128}};
    setenv("TIR_MATMUL_TMA", "0", 1);
    unsetenv("TIR_MATMUL_WGMMA");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char src[256];
        snprintf(src, sizeof src,
                 "func @f(%%a: bf16[%lld, %lld], %%b: bf16[%lld, %lld]) -> bf16[%lld, %lld] {\n"
                 "  %%c = matmul(%%a, %%b)\n  return %%c\n}\n",
                 (long long)sizes[i][0], (long long)sizes[i][2], (long long)sizes[i][2],
                 (long long)sizes[i][1], (long long)sizes[i][0], (long long)sizes[i][1]);
        tir_module *m = parse(src);
        const tir_op *op = tir_module_find(m, "f")->ops[0];
        tir_mma_config want;
        tir_mma_pick_config_for(op, "sm_90a", &want);
        tir_tile_config got;
        tir_tile_pick(1, sizes[i][0], sizes[i][1], sizes[i][2], &got);
        ck_assert_msg(got.bm == want.bm && got.bn == want.bn && got.bk == want.bk &&
                          got.warps_m == want.warps_m && got.warps_n == want.warps_n &&
                          got.stages == want.stages && got.group_m == want.group_m &&
                          got.wgmma == want.wgmma,
                      "%lldx%lldx%lld: tile picks %dx%dx%d, codegen %dx%dx%d", (long long)sizes[i][0],
                      (long long)sizes[i][1], (long long)sizes[i][2], got.bm, got.bn, got.bk, want.bm,
                      want.bn, want.bk);
        tir_mma_config cfg = want; /* with the generator's other fields (the TMA switch) */
        cfg.bm = got.bm;
        cfg.bn = got.bn;
        cfg.bk = got.bk;
        cfg.warps_m = got.warps_m;
        cfg.warps_n = got.warps_n;
        cfg.stages = got.stages;
        cfg.group_m = got.group_m;
        cfg.wgmma = got.wgmma;
        char why[128];
        ck_assert_msg(tir_mma_config_valid(&cfg, why, sizeof why), "invalid tiling: %s", why);
        tir_module_free(m);
    }
    unsetenv("TIR_MATMUL_TMA");
}
END_TEST
#endif

/* ---------------------------------------------------------------- the regions */

static const char *epilogues =
    "func @bias_silu(%x: bf16[M, 64], %w: bf16[48, 64], %b: bf16[48]) -> bf16[M, 48] {\n"
    "  %y = silu(add(matmul(%x, %w, transpose_b=true), %b))\n"
    "  return %y\n"
    "}\n"
    "func @residual(%x: bf16[B, 16, 32], %w: bf16[32, 24], %r: bf16[B, 16, 24]) -> f32[B, 16, 24] {\n"
    "  %s = mul(matmul(%x, %w), 0.5)\n"
    "  %o = cast(add(%s, %r), dtype=f32)\n"
    "  return %o\n"
    "}\n"
    "func @shared(%x: f16[20, 40], %w: f16[40, 30]) -> (f16[20, 30], f16[20, 30]) {\n"
    "  %a = relu(matmul(%x, %w))\n"
    "  return exp(%a), neg(%a)\n"
    "}\n"
    "func @returned(%x: bf16[20, 40], %w: bf16[40, 30]) -> (bf16[20, 30], bf16[20, 30]) {\n"
    "  %y = matmul(%x, %w)\n"
    "  return %y, tanh(%y)\n"
    "}\n"
    "func @reshaped(%x: bf16[N, 32], %w: bf16[32, 32]) -> bf16[N, 2, 16] {\n"
    "  %y = reshape(exp(matmul(%x, %w)), shape=[N, 2, 16])\n"
    "  return %y\n"
    "}\n"
    "func @batched_t(%q: bf16[B, H, T, 16], %k: bf16[B, H, S, 16], %m: bf16[T, S]) -> bf16[B, H, T, S] {\n"
    "  %s = add(mul(matmul(%q, %k, transpose_b=true), 0.25), %m)\n"
    "  return %s\n"
    "}\n"
    "func @chain(%x: bf16[T, 32], %w1: bf16[32, 32], %w2: bf16[32, 32]) -> bf16[T, 32] {\n"
    "  %h = matmul(%x, %w1)\n"
    "  %g = matmul(%x, %w2)\n"
    "  %o = matmul(mul(silu(%h), %g), %w1)\n"
    "  return %o\n"
    "}\n"
    "func @const_operand(%x: bf16[8, 16]) -> bf16[8, 4] {\n"
    "  %w = full(0.25, shape=[16, 4], dtype=bf16)\n"
    "  %y = exp(add(matmul(%x, %w), 0.5))\n"
    "  return %y\n"
    "}\n"
    "func @wide(%x: f32[8, 8], %w: f32[8, 8]) -> f32[8, 8] {\n"
    "  %y = exp(matmul(%x, %w))\n"
    "  return %y\n"
    "}\n";

START_TEST(test_tile_epilogues) {
    tir_module *ref = parse(epilogues), *m = parse(epilogues);
    run_until(ref, "cleanup");
    run_until(m, "tile");
    reparses(m);
    char ops[512];
    struct {
        const char *func, *first;
        int regions;
    } want[] = {
        {"bias_silu", "matmul add silu", 1},
        {"residual", "matmul full mul add cast", 1},
        {"shared", "matmul relu", 1},       /* %a is read twice: it is materialised, the region ends */
        {"returned", "matmul", 1},          /* returned and read: no epilogue */
        {"reshaped", "matmul exp", 1},      /* a reshape is not elementwise */
        {"batched_t", "matmul full mul add", 1},
        {"chain", "matmul", 3},             /* %g is an operand of %h's epilogue: emitted first */
        {"const_operand", "matmul full add exp", 1}, /* a constant operand of the matmul stays a parameter */
        {"wide", NULL, 0},                  /* f32: left alone */
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const tir_func *f = tir_module_find(m, want[i].func);
        int nr = count_code(f, TIR_OP_FUSED);
        ck_assert_msg(nr == want[i].regions, "@%s: %d regions", want[i].func, nr);
        if (!want[i].regions) {
            ck_assert_int_eq(count_code(f, TIR_OP_MATMUL), 1);
            continue;
        }
        const tir_op *r = nth_region(f, 0);
        region_ops(r, ops, sizeof ops);
        ck_assert_msg(strcmp(ops, want[i].first) == 0, "@%s: region holds \"%s\"", want[i].func, ops);
        ck_assert_int_eq(r->nout, 1);
        ck_assert_int_eq(count_code(f, TIR_OP_MATMUL), 0);
        const tir_attr_value *k = tir_dict_get(tir_op_attr(r, "schedule"), "kind");
        ck_assert(k && k->kind == TIR_ATTR_STR && strcmp(k->u.s, "matmul") == 0);
        ck_assert_int_ge(sched_int(r, "bm"), 16);
        ck_assert_int_ge(sched_int(r, "split_k"), 1);
        /* the parameters are the matmul's operands and the epilogue's outside values */
        const tir_op *mm = tir_op_region(r)->ops[0];
        ck_assert_ptr_null(mm->in[0]->def);
        ck_assert_ptr_null(mm->in[1]->def);
    }
    /* @chain: %h's epilogue takes silu and the product with %g, and ends at the third matmul */
    const tir_func *ch = tir_module_find(m, "chain");
    region_ops(nth_region(ch, 1), ops, sizeof ops);
    ck_assert_str_eq(ops, "matmul silu mul");
    region_ops(nth_region(ch, 2), ops, sizeof ops);
    ck_assert_str_eq(ops, "matmul");
    /* the constant read only by the epilogue went into the region */
    ck_assert_int_eq(count_code(tir_module_find(m, "residual"), TIR_OP_FULL), 0);
    /* kernel names are unique across the module */
    ck_assert_str_eq(tir_attr_str(nth_region(tir_module_find(m, "bias_silu"), 0), "kernel", ""), "matmul_0");
    ck_assert_str_eq(tir_attr_str(nth_region(ch, 2), "kernel", ""), "matmul_8");

    tir_bindings b = bind2("M", 5, "B", 2);
    tir_bindings_set(&b, "N", 3);
    tir_bindings_set(&b, "H", 2);
    tir_bindings_set(&b, "T", 7);
    tir_bindings_set(&b, "S", 9);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) same_bits(ref, want[i].func, m, want[i].func, &b);
    tir_module_free(ref);
    tir_module_free(m);
}
END_TEST

/* bf16/f16 linears decompose to f32 matmuls of widened operands: each becomes a region with its
 * two casts copied in (the kernel reads 16 bits), the bias's cast too, and the epilogue */
static const char *linears =
    "func @lin_bias(%x: bf16[B, T, 48], %w: bf16[40, 48], %b: bf16[40]) -> bf16[B, T, 40] {\n"
    "  return linear(%x, %w, %b)\n"
    "}\n"
    "func @lin_f16(%x: f16[B, T, 48], %w: f16[40, 48]) -> f16[B, T, 40] {\n"
    "  return linear(%x, %w)\n"
    "}\n"
    "func @lin_silu(%x: bf16[T, 48], %w: bf16[40, 48], %b: bf16[40]) -> bf16[T, 40] {\n"
    "  return silu(linear(%x, %w, %b))\n"
    "}\n"
    "func @mlp(%x: bf16[T, 48], %w1: bf16[64, 48], %b1: bf16[64], %w2: bf16[40, 64]) -> bf16[T, 40] {\n"
    "  return linear(relu(linear(%x, %w1, %b1)), %w2)\n"
    "}\n"
    "func @shared_cast(%x: bf16[T, 48], %w: bf16[40, 48]) -> (f32[T, 40], f32[]) {\n"
    "  %xf = cast(%x, dtype=f32)\n"
    "  return matmul(%xf, cast(%w, dtype=f32), transpose_b=true), sum(%xf)\n"
    "}\n"
    "func @mixed(%x: bf16[T, 48], %w: f16[40, 48]) -> f32[T, 40] {\n"
    "  return matmul(cast(%x, dtype=f32), cast(%w, dtype=f32), transpose_b=true)\n"
    "}\n";

START_TEST(test_tile_linear) {
    tir_module *ref = parse(linears), *m = parse(linears);
    run_until(ref, "cleanup");
    run_until(m, "tile");
    reparses(m);
    char ops[512];
    struct {
        const char *func, *first, *second;
        int regions, casts_left; /* casts outside the regions afterwards */
    } want[] = {
        {"lin_bias", "cast cast matmul cast add cast", NULL, 1, 0},
        {"lin_f16", "cast cast matmul cast", NULL, 1, 0},
        {"lin_silu", "cast cast matmul cast add cast silu", NULL, 1, 0},
        /* the second linear's input cast is not taken into the first one's epilogue */
        {"mlp", "cast cast matmul cast add cast relu", "cast cast matmul cast", 2, 0},
        /* a cast read elsewhere too is copied in and stays outside for its other reader */
        {"shared_cast", "cast cast matmul", NULL, 1, 1},
        {"mixed", NULL, NULL, 0, 2}, /* bf16 against f16: no 16-bit kernel takes it */
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const tir_func *f = tir_module_find(m, want[i].func);
        ck_assert_msg(count_code(f, TIR_OP_FUSED) == want[i].regions, "@%s: %d regions", want[i].func,
                      count_code(f, TIR_OP_FUSED));
        ck_assert_msg(count_code(f, TIR_OP_CAST) == want[i].casts_left, "@%s: %d casts outside",
                      want[i].func, count_code(f, TIR_OP_CAST));
        for (int r = 0; r < want[i].regions; r++) {
            const tir_op *fop = nth_region(f, r);
            region_ops(fop, ops, sizeof ops);
            const char *w = r ? want[i].second : want[i].first;
            ck_assert_msg(strcmp(ops, w) == 0, "@%s region %d holds \"%s\"", want[i].func, r, ops);
            ck_assert_int_eq(sched_int(fop, "split_k"), 1);
            /* the widened operands are casts of region parameters */
            const tir_op *mm = tir_op_region(fop)->ops[2];
            ck_assert_int_eq(mm->code, TIR_OP_MATMUL);
            for (int j = 0; j < 2; j++) {
                ck_assert_int_eq(mm->in[j]->def->code, TIR_OP_CAST);
                ck_assert_ptr_null(mm->in[j]->def->in[0]->def);
            }
        }
    }
    tir_bindings b = bind2("B", 2, "T", 5);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) same_bits(ref, want[i].func, m, want[i].func, &b);
    /* tiling again changes nothing */
    char *once = tir_module_print(m);
    tir_diag d;
    ck_assert_int_eq(tir_pass_tile(m, &d), TIR_OK);
    char *twice = tir_module_print(m);
    ck_assert_str_eq(once, twice);
    tir_free(once);
    tir_free(twice);
    tir_module_free(ref);
    tir_module_free(m);
}
END_TEST

#ifdef TIR_WITH_LLVM
/* the code generator takes every widened region whole: one kernel per linear */
START_TEST(test_tile_linear_compiles) {
    static const struct {
        const char *func;
        int kernels;
    } want[] = {{"lin_bias", 1}, {"lin_f16", 1}, {"lin_silu", 1}, {"mlp", 2}};
    tir_module *m = parse(linears);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        tir_program *p = NULL;
        tir_diag d;
        ck_assert_msg(tir_compile(m, want[i].func, NULL, &p, &d) == TIR_OK, "@%s: %s", want[i].func, d.msg);
        ck_assert_msg(tir_program_num_kernels(p) == want[i].kernels, "@%s: %d kernels", want[i].func,
                      tir_program_num_kernels(p));
        tir_program_free(p);
    }
    tir_module_free(m);
}
END_TEST
#endif

/* the whole pipeline after tile: fuse leaves the regions alone, the rest still interprets */
START_TEST(test_tile_then_fuse) {
    tir_module *ref = parse(epilogues), *m = parse(epilogues);
    run_until(ref, "cleanup");
    run_until(m, NULL);
    reparses(m);
    const tir_func *f = tir_module_find(m, "bias_silu");
    ck_assert_int_eq(f->nops, 1);
    ck_assert_str_eq(tir_attr_str(f->ops[0], "kernel", ""), "matmul_0");
    tir_bindings b = bind2("M", 4, "B", 3);
    tir_bindings_set(&b, "N", 2);
    tir_bindings_set(&b, "H", 1);
    tir_bindings_set(&b, "T", 5);
    tir_bindings_set(&b, "S", 6);
    same_bits(ref, "shared", m, "shared", &b);
    same_bits(ref, "chain", m, "chain", &b);
    same_bits(ref, "batched_t", m, "batched_t", &b);
    tir_module_free(ref);
    tir_module_free(m);
}
END_TEST

/* a hand-written region names the pass's kernels can't take; tiling twice changes nothing */
START_TEST(test_tile_names_and_idempotence) {
    const char *src =
        "func @f(%x: bf16[8, 8], %w: bf16[8, 8]) -> bf16[8, 8] {\n"
        "  %a = fused(%x) kernel=\"matmul_0\" {\n"
        "    yield neg(%x)\n"
        "  }\n"
        "  %y = exp(matmul(%a, %w))\n"
        "  return %y\n"
        "}\n";
    tir_module *m = parse(src);
    tir_diag d;
    ck_assert_int_eq(tir_pass_tile(m, &d), TIR_OK);
    const tir_func *f = tir_module_find(m, "f");
    ck_assert_int_eq(f->nops, 2);
    ck_assert_str_eq(tir_attr_str(f->ops[1], "kernel", ""), "matmul_1");
    char *once = tir_module_print(m);
    ck_assert_int_eq(tir_pass_tile(m, &d), TIR_OK);
    char *twice = tir_module_print(m);
    ck_assert_str_eq(once, twice);
    tir_free(once);
    tir_free(twice);
    tir_module_free(m);
}
END_TEST

#ifdef TIR_WITH_LLVM
/* A kind="matmul" region the code generator declines (its body is not a matmul with an
 * elementwise epilogue) still compiles: its members run one by one. A region of the pass compiles
 * to one kernel with the matmul-region template, or one per member without it. */
START_TEST(test_tile_compile_fallback) {
    const char *src =
        "func @red(%x: bf16[64, 32], %w: bf16[32, 64]) -> bf16[64] {\n"
        "  %s = fused(%x, %w) kernel=\"mm_red\" schedule={kind=\"matmul\", bm=64, bn=64} {\n"
        "    %y = matmul(%x, %w)\n"
        "    %r = sum(%y, axes=[-1])\n"
        "    yield %r\n"
        "  }\n"
        "  return %s\n"
        "}\n"
        "func @epi(%x: bf16[64, 32], %w: bf16[32, 64], %b: bf16[64]) -> bf16[64, 64] {\n"
        "  %y = gelu(add(matmul(%x, %w), %b))\n"
        "  return %y\n"
        "}\n";
    tir_module *m = parse(src);
    tir_program *p = NULL;
    tir_diag d;
    ck_assert_msg(tir_compile(m, "red", NULL, &p, &d) == TIR_OK, "%s", d.msg);
    ck_assert_int_eq(tir_program_num_kernels(p), 2);
    tir_program_free(p);
    ck_assert_msg(tir_compile(m, "epi", NULL, &p, &d) == TIR_OK, "%s", d.msg);
    int n = tir_program_num_kernels(p);
    ck_assert_msg(n == 1 || n == 3, "%d kernels", n);
    tir_program_free(p);
    tir_module_free(m);
}
END_TEST
#endif

/* ---------------------------------------------------------------- rope */

/* the same rope loss with D constant (index maps) and D symbolic (split/concat: the old form) */
static const char *rope_src =
    "func @fwd_c(%x: DT[B, H, T, 16], %c: DT[T, 16], %s: DT[T, 16]) -> DT[B, H, T, 16] {\n"
    "  return rope(%x, %c, %s)\n"
    "}\n"
    "func @fwd_s(%x: DT[B, H, T, D], %c: DT[T, D], %s: DT[T, D]) -> DT[B, H, T, D] {\n"
    "  return rope(%x, %c, %s)\n"
    "}\n"
    "func @loss_c(%x: DT[B, H, T, 16], %c: DT[T, 16], %s: DT[T, 16], %g: DT[B, H, T, 16]) -> f32[] {\n"
    "  return sum(mul(cast(rope(%x, %c, %s), dtype=f32), cast(%g, dtype=f32)))\n"
    "}\n"
    "func @loss_s(%x: DT[B, H, T, D], %c: DT[T, D], %s: DT[T, D], %g: DT[B, H, T, D]) -> f32[] {\n"
    "  return sum(mul(cast(rope(%x, %c, %s), dtype=f32), cast(%g, dtype=f32)))\n"
    "}\n"
    "func @vg_c = value_and_grad(@loss_c, wrt=[%x, %c, %s])\n"
    "func @vg_s = value_and_grad(@loss_s, wrt=[%x, %c, %s])\n"
    "func @dx_c = value_and_grad(@loss_c, wrt=[%x])\n";

static char *rope_text(const char *dt) {
    size_t n = strlen(rope_src) * 2;
    char *s = malloc(n);
    ck_assert_ptr_nonnull(s);
    char *o = s;
    for (const char *p = rope_src; *p;) {
        if (p[0] == 'D' && p[1] == 'T') {
            o += sprintf(o, "%s", dt);
            p += 2;
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
    return s;
}

START_TEST(test_rope_index_maps_same_bits) {
    static const char *dts[] = {"bf16", "f32"};
    for (int i = 0; i < 2; i++) {
        char *src = rope_text(dts[i]);
        tir_module *m = parse(src), *lo = parse(src), *gr = parse(src);
        run_until(lo, "cleanup");
        run_until(gr, "grad");
        /* the constant head dim has no split or concat left; the symbolic one keeps them */
        ck_assert_int_eq(count_code(tir_module_find(lo, "fwd_c"), TIR_OP_SPLIT), 0);
        ck_assert_int_eq(count_code(tir_module_find(lo, "fwd_c"), TIR_OP_CONCAT), 0);
        ck_assert_int_eq(count_code(tir_module_find(lo, "vg_c"), TIR_OP_SPLIT), 0);
        ck_assert_int_eq(count_code(tir_module_find(lo, "vg_c"), TIR_OP_CONCAT), 0);
        ck_assert_int_eq(count_code(tir_module_find(lo, "fwd_s"), TIR_OP_CONCAT), 1);
        tir_bindings b = bind2("B", 2, "H", 3);
        tir_bindings_set(&b, "T", 5);
        tir_bindings_set(&b, "D", 16);
        /* the composite (interpreted through its decomposition) against the split/concat form */
        same_bits(m, "fwd_c", m, "fwd_s", &b);
        same_bits(lo, "fwd_c", m, "fwd_s", &b);
        same_bits(gr, "vg_c", gr, "vg_s", &b);
        same_bits(lo, "vg_c", lo, "vg_s", &b);
        same_bits(gr, "vg_c", lo, "vg_c", &b);
        tir_module_free(gr);
        tir_module_free(m);
        tir_module_free(lo);
        free(src);
    }
}
END_TEST

START_TEST(test_rope_one_kernel) {
    char *src = rope_text("bf16");
    tir_module *m = parse(src);
    run_until(m, "fuse");
    /* forward: one region, the result viewed back as [B, H, T, 16] */
    const tir_func *f = tir_module_find(m, "fwd_c");
    ck_assert_int_eq(count_code(f, TIR_OP_FUSED), 1);
    ck_assert_int_eq(f->nops, 2);
    ck_assert_int_eq(f->ops[1]->code, TIR_OP_RESHAPE);
    /* the adjoint of x is one elementwise kernel; the other is the loss with the forward */
    const tir_func *g = tir_module_find(m, "dx_c");
    int regions = count_code(g, TIR_OP_FUSED);
    ck_assert_int_eq(count_code(g, TIR_OP_SPLIT) + count_code(g, TIR_OP_CONCAT), 0);
    ck_assert_int_eq(regions, 2);
    tir_module_free(m);
    free(src);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("tile");
    TCase *tc = tcase_create("tile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_pick_shape_classes);
    tcase_add_test(tc, test_pick_split_k);
#ifdef TIR_WITH_LLVM
    tcase_add_test(tc, test_pick_mirrors_codegen);
    tcase_add_test(tc, test_tile_compile_fallback);
    tcase_add_test(tc, test_tile_linear_compiles);
#endif
    tcase_add_test(tc, test_tile_epilogues);
    tcase_add_test(tc, test_tile_linear);
    tcase_add_test(tc, test_tile_then_fuse);
    tcase_add_test(tc, test_tile_names_and_idempotence);
    tcase_add_test(tc, test_rope_index_maps_same_bits);
    tcase_add_test(tc, test_rope_one_kernel);
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
