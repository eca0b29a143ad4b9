/* test_horizontal.c: horizontal fusion (passes/fuse_horizontal.c) and its codegen
 * (codegen/fused_horizontal.c), with no GPU. An AdamW step over tensors of odd sizes (1, 7,
 * 1000, 4097, a symbolic [N, 3], [64, 48]) becomes one kind="horizontal" region that prints as
 * re-parsable .tir and interprets to exactly the results of the unfused program; its kernel
 * passes LLVM's verifier and NVIDIA's ptxas (sm_90a) with 16-byte accesses where sizes allow,
 * no spills, and stays within 4 KB of parameters. Many tensors split into ceil(n / 73) kernels
 * (benchmarks/adamw.tir: its `# KERNELS` line); regions that depend on each other (through an op
 * outside any region) are never merged; a horizontal region codegen cannot lower still
 * compiles, its members run one by one; the horizontal kernels of the examples (llama_block's
 * casts, train_mlp's updates) lower, and those programs compute bit for bit what they computed
 * before the pass; each result is paired with the operand of its own part it may be written over
 * (new p over p, m over m, v over v, tensors of one shape too; with donation no result is
 * allocated). A part keeps its elementwise schedule's thread_axis (part_thread_axes, printed only
 * when some part has one): benchmarks/rope.tir's @rope loads 6 vectors per 2 written in each
 * part, as @rope_q does alone. ptxas is found on PATH or in /usr/local/cuda/bin; without it the
 * ptxas step is skipped only when TIR_ALLOW_NO_PTXAS=1. */
#include <check.h>
#include <stdio.h>
#include <unistd.h>

#include "compile.h"
#include "fused.h"
#include "fused_horizontal.h"
#include "passes.h"
#include "pipeline.h"
#include "testutil.h"
#include "../adamw_src.h"

static char ptxas[4096];
static bool have_ptxas;


/* ptxas -arch=sm_90a on one kernel's PTX (when ptxas is there); its report in msg */
static bool assemble(const tir_kernel *k, char *msg, size_t n) {
    msg[0] = 0;
    return !have_ptxas || tu_ptxas(ptxas, "sm_90a", k->ptx, msg, n) == 0;
}

/* ---------------------------------------------------------------- programs */

static uint64_t rng = 0x9E3779B97F4A7C15ull;

/* the stage just before "horizontal" */
static const char *stage_before(void) {
    for (int i = 1; i < tir_pipeline_count(); i++)
        if (strcmp(tir_pipeline_stage(i)->name, "horizontal") == 0) return tir_pipeline_stage(i - 1)->name;
    ck_abort_msg("no horizontal stage in the pipeline");
    return NULL;
}

/* Interprets @fn of two parses of src, the first as written (or, with before, after the stages
 * before "horizontal") and the second after the whole pipeline, on the same random non-zero
 * inputs (every 4th one, AdamW's v, positive: sqrt), and requires bit-identical results.
 * Returns the second module (the caller frees it). */
static tir_module *same_results_at(tir_context *ctx, const char *src, const char *fn, const tir_bindings *b,
                                   bool before) {
    tir_diag d;
    tir_module *m0 = NULL, *m1 = NULL;
    ck_assert_msg(tir_module_parse(ctx, src, "t.tir", &m0, &d) == TIR_OK, "%s", d.msg);
    ck_assert_msg(tir_module_parse(ctx, src, "t.tir", &m1, &d) == TIR_OK, "%s", d.msg);
    if (before) ck_assert_msg(tir_pipeline_run(m0, stage_before(), NULL, NULL, &d) == TIR_OK, "pipeline: %s", d.msg);
    ck_assert_msg(tir_pipeline_run(m1, NULL, NULL, NULL, &d) == TIR_OK, "pipeline: %s", d.msg);
    ck_assert_msg(tir_verify(m1, &d) == TIR_OK, "verify after horizontal: %s", d.msg);
    const tir_func *f = tir_module_find(m0, fn);
    int na = f->nparams, nr = f->nres;
    tir_tensor **args = calloc((size_t)na, sizeof *args), **r0 = calloc((size_t)nr, sizeof *r0),
               **r1 = calloc((size_t)nr, sizeof *r1);
    ck_assert(args && r0 && r1);
    for (int i = 0; i < na; i++) {
        int64_t dims[TIR_MAX_RANK];
        const tir_type *t = &f->params[i]->type;
        ck_assert(tir_type_eval(t, b, dims) == TIR_OK);
        args[i] = tir_tensor_new(t->dtype, t->rank, dims);
        for (int64_t e = 0; e < tir_tensor_numel(args[i]); e++)
            tir_tensor_set(args[i], e, 0.05 + tu_urand(&rng) * (i % 4 == 3 ? 1.0 : 2.0) - (i % 4 == 3 ? 0.0 : 1.05));
    }
    ck_assert_msg(tir_interpret(m0, fn, na, args, nr, r0, &d) == TIR_OK, "%s", d.msg);
    ck_assert_msg(tir_interpret(m1, fn, na, args, nr, r1, &d) == TIR_OK, "%s", d.msg);
    for (int i = 0; i < nr; i++) {
        ck_assert_int_eq(tir_tensor_nbytes(r0[i]), tir_tensor_nbytes(r1[i]));
        ck_assert_msg(memcmp(tir_tensor_data(r0[i]), tir_tensor_data(r1[i]), tir_tensor_nbytes(r0[i])) == 0,
                      "result %d differs after horizontal fusion", i);
    }
    for (int i = 0; i < na; i++) tir_tensor_free(args[i]);
    for (int i = 0; i < nr; i++) {
        tir_tensor_free(r0[i]);
        tir_tensor_free(r1[i]);
    }
    free(args);
    free(r0);
    free(r1);
    tir_module_free(m0);
    return m1;
}

static tir_module *same_results(tir_context *ctx, const char *src, const char *fn, const tir_bindings *b) {
    return same_results_at(ctx, src, fn, b, false);
}

static int count_fused(const tir_func *f, const char *kind) {
    int n = 0;
    for (int i = 0; i < f->nops; i++) {
        const tir_attr_value *k = tir_dict_get(tir_op_attr(f->ops[i], "schedule"), "kind");
        n += f->ops[i]->code == TIR_OP_FUSED && k && k->kind == TIR_ATTR_STR && strcmp(k->u.s, kind) == 0;
    }
    return n;
}

static const tir_op *first_horizontal(const tir_func *f) {
    for (int i = 0; i < f->nops; i++)
        if (tir_fused_is_horizontal(f->ops[i])) return f->ops[i];
    return NULL;
}

/* printed text parses back and prints the same */
static void round_trip(tir_context *ctx, const tir_module *m) {
    char *t1 = tir_module_print(m);
    ck_assert(t1 != NULL);
    tir_module *m2 = NULL;
    tir_diag d;
    ck_assert_msg(tir_module_parse(ctx, t1, "printed.tir", &m2, &d) == TIR_OK, "%s\n%s", d.msg, t1);
    char *t2 = tir_module_print(m2);
    ck_assert_str_eq(t1, t2);
    tir_free(t1);
    tir_free(t2);
    tir_module_free(m2);
}

/* lowers op; checks ptxas, the parameter bound; returns the PTX (malloc'd) */
static char *lower_ok(tir_context *ctx, const tir_op *op) {
    tir_kernel k;
    tir_diag d;
    tir_codegen_options o = {"sm_90a", 2};
    tir_status s = tir_codegen_fused_horizontal(ctx, op, 0, &o, &k, &d);
    ck_assert_msg(s == TIR_OK, "%s: %s", tir_status_name(s), d.msg);
    ck_assert(k.ptx && k.nparams >= op->nin + op->nout);
    ck_assert_int_le(k.nparams * 8, 4096);
    char msg[4096];
    ck_assert_msg(assemble(&k, msg, sizeof msg), "ptxas: %s", msg);
    /* no values live across the dispatch tree: a grid-stride loop around it made 73 AdamW
     * tensors spill 14 KB (codegen/fused_horizontal.c's header) */
    ck_assert_msg(!have_ptxas || strstr(msg, " 0 bytes spill stores"), "%s spills: %s", k.name, msg);
    char *ptx = strdup(k.ptx);
    tir_kernel_release(&k);
    return ptx;
}

/* global loads (ld.global...) in ptx, and those of 16 bytes (.v4 of 32-bit, .v2 of 64-bit) */
static int count_loads(const char *ptx, bool wide_only) {
    int n = 0;
    for (const char *l = ptx; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        while (*l == ' ' || *l == '\t') l++;
        if (strncmp(l, "ld.global", 9) != 0) continue;
        const char *e = strchr(l, ' ');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        char ins[64];
        snprintf(ins, sizeof ins, "%.*s", (int)(len < 63 ? len : 63), l);
        bool wide = (strstr(ins, ".v4.") && (strstr(ins, "32") != NULL)) || (strstr(ins, ".v2.") && strstr(ins, "64"));
        n += !wide_only || wide;
    }
    return n;
}

/* ---------------------------------------------------------------- tests */

START_TEST(adamw_odd_sizes) {
    tir_context *ctx = tir_context_create();
    static const char *const shapes[] = {"1", "7", "1000", "4097", "N, 3", "64, 48"};
    char *src = adamw_src("adamw_step", 6, shapes);
    ck_assert_ptr_nonnull(src);
    tir_bindings b = {0};
    tir_bindings_set(&b, "N", 5);
    tir_module *m = same_results(ctx, src, "adamw_step", &b);
    const tir_func *f = tir_module_find(m, "adamw_step");
    /* one kernel for the six tensors, nothing else left */
    ck_assert_int_eq(count_fused(f, "horizontal"), 1);
    ck_assert_int_eq(count_fused(f, "elementwise"), 0);
    const tir_op *h = first_horizontal(f);
    ck_assert(h != NULL);
    ck_assert_int_eq(h->nout, 18);
    ck_assert_int_eq(h->nin, 24);
    const tir_attr_value *sc = tir_op_attr(h, "schedule");
    ck_assert_int_eq(tir_dict_get(sc, "parts")->u.i, 6);
    ck_assert_str_eq(tir_dict_get(sc, "part_results")->u.s, "3,3,3,3,3,3");
    /* f32 vectors of 4 where the last dim is a multiple of 4 (1000 and 48), else 1 */
    ck_assert_str_eq(tir_dict_get(sc, "part_vectors")->u.s, "1,1,4,1,1,4");
    /* no part has a thread axis: the schedule does not mention them */
    ck_assert_ptr_null(tir_dict_get(sc, "part_thread_axes"));
    char *text = tir_module_print(m);
    ck_assert_ptr_null(strstr(text, "part_thread_axes"));
    tir_free(text);
    round_trip(ctx, m);
    char *ptx = lower_ok(ctx, h);
    ck_assert_msg(strstr(ptx, ".v4.b32") || strstr(ptx, ".v4.f32"), "no 16-byte accesses");
    free(ptx);
    /* the whole program is one kernel, whose grid counts every part's blocks of 256 threads x 8
     * vectors: [1], [7], [1000] one each, [4097] 3, [N, 3] ceil(3N / 2048), [64, 48] one */
    tir_module *m2 = NULL;
    tir_program *p = NULL;
    tir_diag d;
    ck_assert(tir_module_parse(ctx, src, "t.tir", &m2, &d) == TIR_OK);
    ck_assert_msg(tir_compile(m2, "adamw_step", NULL, &p, &d) == TIR_OK, "%s", d.msg);
    ck_assert_int_eq(tir_program_num_kernels(p), 1);
    tir_kernel_info ki;
    tir_program_kernel_info(p, 0, &ki);
    int64_t grid;
    tir_bindings b2 = {0};
    tir_bindings_set(&b2, "N", 1000);
    ck_assert(tir_dim_eval(ki.k->grid[0], &b2, &grid) == TIR_OK);
    ck_assert_int_eq(grid, 1 + 1 + 1 + 3 + 2 + 1);
    tir_program_free(p);
    tir_module_free(m2);
    tir_module_free(m);
    free(src);
    tir_context_destroy(ctx);
}
END_TEST

/* In place (tir_kernel.inplace_of): a part reads its p, g, m, v at the index it writes, so each
 * of its results is paired with one of them: new p with p, new m with m, new v with v (g, read
 * by all three, is left over), whatever the other parts' shapes. Tensors of one shape share a
 * layout, but the pairing says which buffer each result may take, so another part's result
 * never lands on this part's operand before its blocks read it; and it reaches past 32
 * operands (12 tensors of one shape: 48). A device run with donated arguments writes every new
 * p, m, v over its own old buffer (no result allocated: the step's peak is its arguments, as
 * PyTorch's fused AdamW). Only the paired operands and results are plain pointers: g is still
 * read through the non-coherent cache. */
START_TEST(adamw_in_place) {
    tir_context *ctx = tir_context_create();
    static const char *const diff[] = {"1000", "64, 48"};
    static const char *const same[] = {"64, 48", "1000", "64, 48"};
    const char *twelve[12];
    for (int i = 0; i < 12; i++) twelve[i] = i % 4 == 1 ? "N, 48" : "64, 48";
    const char *const *shapes[3] = {diff, same, twelve};
    const int ntens[3] = {2, 3, 12};
    for (int c = 0; c < 3; c++) {
        int n = ntens[c];
        char *src = adamw_src("adamw_step", n, shapes[c]);
        ck_assert_ptr_nonnull(src);
        tir_module *m = NULL;
        tir_diag d;
        ck_assert(tir_module_parse(ctx, src, "t.tir", &m, &d) == TIR_OK);
        ck_assert_msg(tir_pipeline_run(m, NULL, NULL, NULL, &d) == TIR_OK, "%s", d.msg);
        const tir_func *f = tir_module_find(m, "adamw_step");
        ck_assert_int_eq(count_fused(f, "horizontal"), 1);
        const tir_op *h = first_horizontal(f);
        ck_assert(h != NULL);
        ck_assert_int_eq(h->nin, 4 * n);
        ck_assert_int_eq(h->nout, 3 * n);
        tir_kernel k;
        tir_codegen_options o = {"sm_90a", 2};
        ck_assert(tir_codegen_fused_horizontal(ctx, h, 0, &o, &k, &d) == TIR_OK);
        char msg[4096];
        ck_assert_msg(assemble(&k, msg, sizeof msg), "ptxas: %s", msg);
        ck_assert(k.inplace_of != NULL);
        int taken[64] = {0};
        unsigned shown = 0;
        for (int r = 0; r < h->nout; r++) {
            /* result %p3_1 over operand %p3, %m3_1 over %m3, %v3_1 over %v3 */
            int j = k.inplace_of[r];
            const char *rn = h->out[r]->name;
            ck_assert_msg(j >= 0 && j < h->nin, "case %d result %s not paired", c, rn ? rn : "?");
            const char *on = h->in[j]->name;
            ck_assert(rn && on);
            ck_assert_msg(strlen(rn) == strlen(on) + 2 && strncmp(rn, on, strlen(on)) == 0 && strcmp(rn + strlen(on), "_1") == 0,
                          "case %d: result %s paired with operand %s", c, rn, on);
            ck_assert_int_eq(taken[j]++, 0); /* one result per operand */
            if (j < 32) shown |= 1u << j;
        }
        for (int j = 0; j < h->nin; j++) /* the leftover operand of each part is its g */
            ck_assert_int_eq(taken[j] == 0, h->in[j]->name[0] == 'g');
        ck_assert_uint_eq(k.inplace_ok, shown); /* for display: the paired operands */
        /* the gradients alone are read through the non-coherent cache: one 16-byte load each
         * for the parts of 4-wide vectors ([64, 48]: every case has one) */
        ck_assert_ptr_nonnull(strstr(k.ptx, "ld.global.nc"));
        tir_kernel_release(&k);
        ck_assert_ptr_null(k.inplace_of);
        tir_kernel_release(&k); /* twice is harmless */
        tir_module_free(m);

        tir_options opt;
        tir_options_init(&opt);
        opt.donate_args = true;
        tir_program *p = NULL;
        ck_assert(tir_module_parse(ctx, src, "t.tir", &m, &d) == TIR_OK);
        ck_assert_msg(tir_compile(m, "adamw_step", &opt, &p, &d) == TIR_OK, "%s", d.msg);
        ck_assert_int_eq(tir_program_num_kernels(p), 1);
        tir_bindings b = {0};
        tir_bindings_set(&b, "N", 33);
        tir_mem_plan pl;
        ck_assert_msg(tir_program_plan_memory(p, &b, true, &pl, NULL, &d) == TIR_OK, "%s", d.msg);
        ck_assert_int_eq(pl.n_inplace, 3 * n);
        ck_assert_uint_eq(pl.own_bytes, 0);
        ck_assert_uint_eq(pl.arena_bytes, 0);
        for (int r = 0; r < 3 * n; r++) { /* result 3t + k over parameter 4t + (0, 2, 3)[k] */
            int t = r / 3, kk = r % 3;
            ck_assert_int_eq(pl.inplace_of[tir_program_result_value(p, r)],
                             tir_program_param_value(p, 4 * t + (kk ? kk + 1 : 0)));
        }
        size_t args = 0;
        for (int i = 0; i < 4 * n; i++) {
            const tir_type *t = &tir_module_find(m, "adamw_step")->params[i]->type;
            int64_t dims[TIR_MAX_RANK];
            ck_assert(tir_type_eval(t, &b, dims) == TIR_OK);
            int64_t e = 1;
            for (int q = 0; q < t->rank; q++) e *= dims[q];
            args += (size_t)e * 4;
        }
        ck_assert_uint_eq(pl.peak_bytes, args);
        if (c == 0) ck_assert_uint_eq(pl.peak_bytes, 4 * 4 * (1000 + 64 * 48));
        tir_mem_plan_free(&pl);
        tir_program_free(p);
        tir_module_free(m);
        free(src);
    }
    tir_context_destroy(ctx);
}
END_TEST

/* 100 tensors: 7 buffers each, at most 73 in 4 KB of parameters, so two kernels */
START_TEST(parameter_bound) {
    tir_context *ctx = tir_context_create();
    const char *shapes[100];
    for (int i = 0; i < 100; i++) shapes[i] = i % 3 ? "8" : "5, 16";
    char *src = adamw_src("adamw_step", 100, shapes);
    ck_assert_ptr_nonnull(src);
    tir_module *m = NULL;
    tir_program *p = NULL;
    tir_diag d;
    ck_assert(tir_module_parse(ctx, src, "t.tir", &m, &d) == TIR_OK);
    ck_assert_msg(tir_compile(m, "adamw_step", NULL, &p, &d) == TIR_OK, "%s", d.msg);
    ck_assert_int_eq(tir_program_num_kernels(p), 2);
    int bufs = 0;
    for (int i = 0; i < 2; i++) {
        tir_kernel_info ki;
        tir_program_kernel_info(p, i, &ki);
        ck_assert_int_le(ki.k->nparams * 8, 4096);
        bufs += ki.k->nparams;
    }
    ck_assert_int_eq(bufs, 700);
    const tir_func *f = tir_module_find(m, "adamw_step");
    ck_assert_int_eq(count_fused(f, "horizontal"), 2);
    ck_assert_int_eq(first_horizontal(f)->nout, 73 * 3);
    tir_program_free(p);
    tir_module_free(m);
    free(src);
    tir_context_destroy(ctx);
}
END_TEST

/* %b depends on %a through concat (a kernel of its own): a and b never share a kernel; c, which
 * depends on nothing, joins b (both feed only the return) */
START_TEST(dependent_regions_stay_apart) {
    tir_context *ctx = tir_context_create();
    const char *src = "func @f(%x: f32[7], %y: f32[1000]) -> (f32[14], f32[1000], f32[7]) {\n"
                      "  %a = exp(neg(%x))\n"
                      "  %j = concat(%a, %a, axis=0)\n"
                      "  %b = mul(add(%j, 1.0), %j)\n"
                      "  %c = sqrt(abs(%y))\n"
                      "  return %b, %c, %a\n}\n";
    tir_bindings b = {0};
    tir_module *m = same_results(ctx, src, "f", &b);
    const tir_func *f = tir_module_find(m, "f");
    ck_assert_int_eq(count_fused(f, "horizontal"), 1);
    ck_assert_int_eq(count_fused(f, "elementwise"), 1);
    const tir_op *h = first_horizontal(f);
    const tir_value *rb = f->results[0], *rc = f->results[1], *ra = f->results[2];
    ck_assert(rb->def == h && rc->def == h);
    ck_assert(ra->def != h);
    round_trip(ctx, m);
    free(lower_ok(ctx, h));
    tir_module_free(m);
    tir_context_destroy(ctx);
}
END_TEST

/* bf16 and f32 parts with broadcast, transpose and slice inside, symbolic and constant sizes */
START_TEST(mixed_parts) {
    tir_context *ctx = tir_context_create();
    const char *src =
        "func @f(%a: bf16[N, 64], %w: bf16[64], %t: f32[7, D], %s: f32[1000], %i: i32[9]) -> (bf16[N, 64], f32[D, 7], f32[499], i32[9]) {\n"
        "  %x = mul(silu(%a), %w)\n"
        "  %y = exp(mul(transpose(%t, perm=[1, 0]), 0.5))\n"
        "  %z = tanh(slice(%s, axis=0, start=1, end=999, step=2))\n"
        "  %k = add(mul(%i, 3), 1)\n"
        "  return %x, %y, %z, %k\n}\n";
    tir_bindings b = {0};
    tir_bindings_set(&b, "N", 3);
    tir_bindings_set(&b, "D", 5);
    tir_module *m = same_results(ctx, src, "f", &b);
    const tir_func *f = tir_module_find(m, "f");
    ck_assert_int_eq(count_fused(f, "horizontal"), 1);
    const tir_op *h = first_horizontal(f);
    ck_assert_int_eq(h->nout, 4);
    ck_assert_str_eq(tir_dict_get(tir_op_attr(h, "schedule"), "part_vectors")->u.s, "8,1,1,1");
    round_trip(ctx, m);
    char *ptx = lower_ok(ctx, h);
    ck_assert_msg(strstr(ptx, ".v4.b32") != NULL, "bf16 part: no 16-byte accesses"); /* 8 bf16 */
    free(ptx);
    tir_module_free(m);
    tir_context_destroy(ctx);
}
END_TEST

/* benchmarks/rope.tir: each rotation is an elementwise region over (B, H, T, 2, 64) whose
 * thread_axis is the halves' axis 3 (passes/schedule.c); merged into one horizontal kernel, each
 * part keeps it (part_thread_axes="3,3"), so a thread loads both halves of x, cos and sin once
 * and writes both halves: 6 16-byte loads and 2 stores per part, 12 and 4 in all (without the
 * axis: 5 loads per vector written, 10 for 2), as @rope_q alone; each part's vectors count the
 * collapsed space, and a thread takes one unit (per_thread=1: a unit is already 2 vectors), so
 * the grid at B=8, T=2048 is q 8*32*2048*64 / 8 / 256 = 16384 blocks, k 4096. */
START_TEST(rope_thread_axes) {
    tir_context *ctx = tir_context_create();
    char *src = tu_read_source("benchmarks", "rope.tir");
    ck_assert_msg(src != NULL, "no benchmarks/rope.tir");
    tir_module *m = NULL;
    tir_diag d;
    ck_assert(tir_module_parse(ctx, src, "rope.tir", &m, &d) == TIR_OK);
    ck_assert_msg(tir_pipeline_run(m, NULL, NULL, NULL, &d) == TIR_OK, "%s", d.msg);
    const tir_func *f = tir_module_find(m, "rope");
    ck_assert_int_eq(count_fused(f, "horizontal"), 1);
    const tir_op *h = first_horizontal(f);
    ck_assert(h != NULL);
    const tir_attr_value *sc = tir_op_attr(h, "schedule");
    ck_assert_str_eq(tir_dict_get(sc, "part_results")->u.s, "1,1");
    ck_assert_str_eq(tir_dict_get(sc, "part_vectors")->u.s, "8,8");
    ck_assert_ptr_nonnull(tir_dict_get(sc, "part_thread_axes"));
    ck_assert_str_eq(tir_dict_get(sc, "part_thread_axes")->u.s, "3,3");
    ck_assert_int_eq(tir_dict_get(sc, "per_thread")->u.i, 1);
    char *text = tir_module_print(m);
    ck_assert_ptr_nonnull(strstr(text, "part_thread_axes=\"3,3\""));
    tir_free(text);
    round_trip(ctx, m);
    char *ptx = lower_ok(ctx, h);
    ck_assert_int_eq(count_loads(ptx, true), 12);
    ck_assert_int_eq(count_loads(ptx, false), 12);
    int st = 0;
    for (const char *q = ptx; (q = strstr(q, "st.global.v4.b32")) != NULL; q++) st++;
    ck_assert_int_eq(st, 4);
    free(ptx);
    tir_kernel k;
    tir_codegen_options o = {"sm_90a", 2};
    ck_assert(tir_codegen_fused_horizontal(ctx, h, 0, &o, &k, &d) == TIR_OK);
    tir_bindings b = {0};
    tir_bindings_set(&b, "B", 8);
    tir_bindings_set(&b, "T", 2048);
    int64_t grid;
    ck_assert(tir_dim_eval(k.grid[0], &b, &grid) == TIR_OK);
    ck_assert_int_eq(grid, 16384 + 4096);
    tir_kernel_release(&k);
    /* @rope_q, the same rotation alone (codegen/fused.c): as many loads per part */
    const tir_func *fq = tir_module_find(m, "rope_q");
    ck_assert_int_eq(count_fused(fq, "horizontal"), 0);
    for (int i = 0; i < fq->nops; i++) {
        if (fq->ops[i]->code != TIR_OP_FUSED) continue;
        ck_assert_int_eq(tir_dict_get(tir_op_attr(fq->ops[i], "schedule"), "thread_axis")->u.i, 3);
        ck_assert(tir_codegen_fused(ctx, fq->ops[i], 0, &o, &k, &d) == TIR_OK);
        ck_assert_int_eq(count_loads(k.ptx, true), 6);
        tir_kernel_release(&k);
    }
    tir_module_free(m);
    free(src);
    tir_context_destroy(ctx);
}
END_TEST

/* a part with a thread axis beside parts without: part_thread_axes="-1,3,-1", the interpreted
 * results are those of the unfused program, and the kernel assembles: the rotation's part loads
 * 6 vectors (x's halves, cos's, sin's), the others one each */
START_TEST(mixed_thread_axes) {
    tir_context *ctx = tir_context_create();
    const char *src = "func @f(%a: f32[N, 64], %q: f32[N, 2, T, 32], %c: f32[T, 32], %s: f32[T, 32], %w: f32[T, 64])\n"
                      "    -> (f32[N, 64], f32[N, 2, T, 32], f32[T, 64]) {\n"
                      "  %x = silu(%a)\n"
                      "  %r = rope(%q, %c, %s)\n"
                      "  %y = exp(%w)\n"
                      "  return %x, %r, %y\n}\n";
    tir_bindings b = {0};
    tir_bindings_set(&b, "N", 3);
    tir_bindings_set(&b, "T", 5);
    tir_module *m = same_results(ctx, src, "f", &b);
    const tir_func *f = tir_module_find(m, "f");
    ck_assert_int_eq(count_fused(f, "horizontal"), 1);
    const tir_op *h = first_horizontal(f);
    const tir_attr_value *sc = tir_op_attr(h, "schedule");
    ck_assert_int_eq(tir_dict_get(sc, "parts")->u.i, 3);
    ck_assert_ptr_nonnull(tir_dict_get(sc, "part_thread_axes"));
    const char *pta = tir_dict_get(sc, "part_thread_axes")->u.s;
    /* the rotation is the part whose axis is set; the others have none */
    int set = 0, none = 0;
    for (const char *q = pta; *q; q++) {
        if (*q == '-') none++, q++;
        else if (*q >= '0' && *q <= '9') set++;
    }
    ck_assert_msg(set == 1 && none == 2, "part_thread_axes=\"%s\"", pta);
    round_trip(ctx, m);
    char *ptx = lower_ok(ctx, h);
    ck_assert_int_eq(count_loads(ptx, true), 6 + 1 + 1);
    free(ptx);
    tir_module_free(m);
    tir_context_destroy(ctx);
}
END_TEST

/* a hand-written horizontal region holding a reduction has no horizontal lowering: codegen says
 * unsupported and the program still compiles, one kernel per member */
START_TEST(unsupported_falls_back) {
    tir_context *ctx = tir_context_create();
    const char *src =
        "func @f(%x: f32[7], %y: f32[1000]) -> (f32[], f32[1000]) {\n"
        "  %a, %b = fused(%x, %y) kernel=\"h\" schedule={kind=\"horizontal\", parts=2, part_results=\"1,1\"} {\n"
        "    %s = sum(exp(%x), axes=[0])\n"
        "    %t = add(%y, 1.0)\n"
        "    yield %s, %t\n"
        "  }\n"
        "  return %a, %b\n}\n";
    tir_module *m = NULL;
    tir_diag d;
    ck_assert_msg(tir_module_parse(ctx, src, "t.tir", &m, &d) == TIR_OK, "%s", d.msg);
    const tir_func *f = tir_module_find(m, "f");
    tir_kernel k;
    tir_codegen_options o = {"sm_90a", 2};
    ck_assert_int_eq(tir_codegen_fused_horizontal(ctx, f->ops[0], 0, &o, &k, &d), TIR_ERR_UNSUPPORTED);
    ck_assert(k.ptx == NULL);
    tir_program *p = NULL;
    ck_assert_msg(tir_compile(m, "f", NULL, &p, &d) == TIR_OK, "%s", d.msg);
    ck_assert_int_eq(tir_program_num_kernels(p), tir_op_region(f->ops[0])->nops); /* exp, sum, 1.0, add */
    ck_assert_int_eq(tir_program_num_kernels(p), 4);
    tir_program_free(p);
    tir_module_free(m);
    tir_context_destroy(ctx);
}
END_TEST

/* benchmarks/adamw.tir: 147 tensors, the number of kernels its header says */
START_TEST(adamw_benchmark_kernels) {
    tir_context *ctx = tir_context_create();
    char *src = tu_read_source("benchmarks", "adamw.tir");
    ck_assert_msg(src != NULL, "no benchmarks/adamw.tir");
    const char *line = strstr(src, "# KERNELS @adamw_step ");
    ck_assert(line != NULL);
    int want = atoi(line + strlen("# KERNELS @adamw_step "));
    tir_module *m = NULL;
    tir_diag d;
    ck_assert(tir_module_parse(ctx, src, "adamw.tir", &m, &d) == TIR_OK);
    ck_assert_msg(tir_pipeline_run(m, NULL, NULL, NULL, &d) == TIR_OK, "%s", d.msg);
    const tir_func *f = tir_module_find(m, "adamw_step");
    ck_assert_int_eq(f->nops, want);
    ck_assert_int_eq(want, (147 + 72) / 73);
    ck_assert_int_eq(count_fused(f, "horizontal"), 2);
    tir_module_free(m);
    free(src);
    tir_context_destroy(ctx);
}
END_TEST

/* the horizontal kernels the examples and benchmarks make lower and assemble */
START_TEST(examples_lower) {
    tir_context *ctx = tir_context_create();
    static const char *const files[][2] = {
        {"examples", "llama_block.tir"}, {"examples", "train_mlp.tir"}, {"examples", "mlp.tir"},
        {"benchmarks", "rope.tir"},      {"benchmarks", "swiglu.tir"},  {"benchmarks", "adamw.tir"},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char *src = tu_read_source(files[i][0], files[i][1]);
        ck_assert_msg(src != NULL, "no %s/%s", files[i][0], files[i][1]);
        tir_module *m = NULL;
        tir_diag d;
        ck_assert(tir_module_parse(ctx, src, files[i][1], &m, &d) == TIR_OK);
        ck_assert_msg(tir_pipeline_run(m, NULL, NULL, NULL, &d) == TIR_OK, "%s: %s", files[i][1], d.msg);
        for (int fi = 0; fi < m->nfuncs; fi++)
            for (int k = 0; k < m->funcs[fi]->nops; k++)
                if (tir_fused_is_horizontal(m->funcs[fi]->ops[k])) {
                    free(lower_ok(ctx, m->funcs[fi]->ops[k]));
                    n++;
                }
        tir_module_free(m);
        free(src);
    }
    ck_assert_int_ge(n, 4); /* llama_block's casts around its matmuls, adamw's two */
    tir_context_destroy(ctx);
}
END_TEST

/* the examples whose kernels the pass merges compute what they computed before it, bit for bit */
START_TEST(examples_same_results) {
    tir_context *ctx = tir_context_create();
    char *src = tu_read_source("examples", "llama_block.tir");
    ck_assert(src != NULL);
    tir_bindings b = {0};
    const char *ln[] = {"B", "T", "D", "Hq", "Hk", "I"};
    int64_t lv[] = {1, 3, 8, 2, 1, 5};
    for (int i = 0; i < 6; i++) tir_bindings_set(&b, ln[i], lv[i]);
    tir_module *m = same_results_at(ctx, src, "block", &b, true);
    ck_assert_int_ge(count_fused(tir_module_find(m, "block"), "horizontal"), 1);
    tir_module_free(m);
    free(src);
    src = tu_read_source("examples", "train_mlp.tir");
    ck_assert(src != NULL);
    tir_bindings b2 = {0};
    tir_bindings_set(&b2, "B", 4);
    m = same_results_at(ctx, src, "sgd_step", &b2, true);
    ck_assert_int_ge(count_fused(tir_module_find(m, "sgd_step"), "horizontal"), 1);
    tir_module_free(m);
    free(src);
    tir_context_destroy(ctx);
}
END_TEST

int main(void) {
    have_ptxas = tu_find_ptxas(ptxas, sizeof ptxas);
    if (!have_ptxas) {
        const char *allow = getenv("TIR_ALLOW_NO_PTXAS");
        if (!allow || strcmp(allow, "1") != 0) {
            fprintf(stderr, "test_horizontal: ptxas not found (set TIR_ALLOW_NO_PTXAS=1 to skip it)\n");
            return 1;
        }
    }
    Suite *s = suite_create("horizontal");
    TCase *tc = tcase_create("horizontal");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, adamw_odd_sizes);
    tcase_add_test(tc, adamw_in_place);
    tcase_add_test(tc, parameter_bound);
    tcase_add_test(tc, dependent_regions_stay_apart);
    tcase_add_test(tc, mixed_parts);
    tcase_add_test(tc, rope_thread_axes);
    tcase_add_test(tc, mixed_thread_axes);
    tcase_add_test(tc, unsupported_falls_back);
    tcase_add_test(tc, adamw_benchmark_kernels);
    tcase_add_test(tc, examples_lower);
    tcase_add_test(tc, examples_same_results);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
