/* test_fused_codegen.c: every fused region lowers to one kernel (codegen/fused.c) that LLVM
 * verifies and NVIDIA's ptxas accepts for sm_90a, with no GPU: the regions of the examples and
 * of decomposed rmsnorm, layernorm, softmax, log_softmax, cross_entropy and SwiGLU programs at
 * symbolic and constant row lengths (which pick the streaming, vector and row-in-registers
 * paths), plus regions holding index maps. Also: the rmsnorm program compiles to exactly one
 * kernel, and a region codegen cannot lower still compiles, its members run one by one; and the
 * in-place masks (cross-entropy's logits, SwiGLU's inputs, RMSNorm's x; not operands read through
 * an index map or broadcast).
 * ptxas is found on PATH or in /usr/local/cuda/bin; without it the ptxas step is skipped only
 * when TIR_ALLOW_NO_PTXAS=1. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <unistd.h>

#include "compile.h"
#include "fused.h"
#include "fused_horizontal.h"
#include "passes.h"
#include "pipeline.h"
#include "testutil.h"

static char ptxas[4096];
static bool have_ptxas;


/* ptxas -arch=sm_90a on one kernel's PTX (when ptxas is there); its report in msg */
static bool assemble(const tir_kernel *k, char *msg, size_t n) {
    msg[0] = 0;
    return !have_ptxas || tu_ptxas(ptxas, "sm_90a", k->ptx, msg, n) == 0;
}

static int nregions;

/* Lowers every fused op of every function of src (after the pipeline) with tir_codegen_fused. */
static void check_module(tir_context *ctx, const char *label, const char *src) {
    tir_diag d;
    tir_module *m = NULL;
    ck_assert_msg(tir_module_parse(ctx, src, label, &m, &d) == TIR_OK, "%s: parse: %s", label, d.msg);
    ck_assert_msg(tir_pipeline_run(m, TIR_COMPILE_LAST_STAGE, NULL, NULL, &d) == TIR_OK,
                  "%s: pipeline: %s", label, d.msg);
    tir_codegen_options o = {"sm_90a", 2};
    for (int fi = 0; fi < m->nfuncs; fi++) {
        const tir_func *f = m->funcs[fi];
        for (int i = 0; i < f->nops; i++) {
            const tir_op *op = f->ops[i];
            if (op->code != TIR_OP_FUSED) continue;
            /* multi-tensor kernels of the horizontal pass have their own lowering */
            const tir_attr_value *kind = tir_dict_get(tir_op_attr(op, "schedule"), "kind");
            if (kind && kind->kind == TIR_ATTR_STR && strcmp(kind->u.s, "horizontal") == 0) continue;
            tir_kernel k;
            tir_status s = tir_codegen_fused(ctx, op, i, &o, &k, &d);
            ck_assert_msg(s == TIR_OK, "%s @%s region %s: %s: %s", label, f->name,
                          tir_attr_str(op, "kernel", "?"), tir_status_name(s), d.msg);
            ck_assert(k.ptx && k.nparams >= op->nin + op->nout && k.block[0] >= 32);
            char msg[2048];
            ck_assert_msg(assemble(&k, msg, sizeof msg), "%s @%s %s: ptxas: %s", label, f->name,
                          k.name, msg);
            tir_kernel_release(&k);
            nregions++;
        }
    }
    tir_module_free(m);
}


static const char *srcdir(void) {
    const char *s = getenv("TIR_SOURCE_DIR");
    return s && *s ? s : ".";
}

START_TEST(examples) {
    tir_context *ctx = tir_context_create();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/examples", srcdir());
    DIR *dd = opendir(dir);
    ck_assert_msg(dd != NULL, "no %s", dir);
    struct dirent *e;
    int nfiles = 0;
    while ((e = readdir(dd))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".tir") != 0) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *src = tu_read_file(path);
        ck_assert(src != NULL);
        check_module(ctx, e->d_name, src);
        free(src);
        nfiles++;
    }
    closedir(dd);
    ck_assert_int_gt(nfiles, 0);
    tir_context_destroy(ctx);
}
END_TEST

/* the layers: %1$s dtype, %2$s rows, %3$s row length */
static const char *const layers =
    "func @rms(%%x: %1$s[%2$s, %3$s], %%w: %1$s[%3$s]) -> %1$s[%2$s, %3$s] {\n"
    "  %%o = rmsnorm(%%x, %%w, eps=1e-6)\n  return %%o\n}\n"
    "func @ln(%%x: %1$s[%2$s, %3$s], %%w: %1$s[%3$s], %%b: %1$s[%3$s]) -> %1$s[%2$s, %3$s] {\n"
    "  %%o = layernorm(%%x, %%w, %%b, eps=1e-5)\n  return %%o\n}\n"
    "func @sm(%%x: %1$s[%2$s, %3$s]) -> %1$s[%2$s, %3$s] {\n"
    "  %%o = softmax(%%x, axis=-1)\n  return %%o\n}\n"
    "func @lsm(%%x: %1$s[%2$s, %3$s]) -> %1$s[%2$s, %3$s] {\n"
    "  %%o = log_softmax(%%x, axis=-1)\n  return %%o\n}\n"
    "func @ce(%%x: %1$s[%2$s, %3$s], %%t: i64[%2$s]) -> (%1$s[], %1$s[%2$s]) {\n"
    "  %%l = cross_entropy(%%x, %%t, reduction=\"mean\")\n"
    "  %%r = cross_entropy(%%x, %%t, reduction=\"none\")\n  return %%l, %%r\n}\n"
    "func @swiglu(%%a: %1$s[%2$s, %3$s], %%b: %1$s[%2$s, %3$s]) -> %1$s[%2$s, %3$s] {\n"
    "  %%o = mul(silu(%%a), %%b)\n  return %%o\n}\n"
    "func @mv(%%x: %1$s[%2$s, %3$s], %%y: %1$s[%3$s, %2$s], %%w: %1$s[%3$s]) -> (%1$s[%2$s, %3$s], %1$s[%2$s, %3$s]) {\n"
    "  %%a = add(mul(%%x, transpose(%%y, perm=[1, 0])), %%w)\n"
    "  %%r = reshape(reshape(%%x, shape=[%3$s, %2$s]), shape=[%2$s, %3$s])\n"
    "  %%b = sub(tanh(%%r), broadcast(reshape(%%w, shape=[1, %3$s]), shape=[%2$s, %3$s]))\n"
    "  return %%a, %%b\n}\n"
    "func @sl(%%x: %1$s[%2$s, %3$s]) -> %1$s[%2$s, 2] {\n"
    "  %%o = exp(slice(%%x, axis=1, start=1, end=5, step=2))\n  return %%o\n}\n"
    "func @col(%%x: %1$s[%2$s, %3$s]) -> (%1$s[%3$s], %1$s[%2$s]) {\n"
    "  %%c = sum(mul(%%x, %%x), axes=[0])\n"
    "  %%m = max(transpose(%%x, perm=[1, 0]), axes=[0])\n  return %%c, %%m\n}\n"
    /* forward and backward with their losses: reductions across rows (a column sum, totals) */
    "func @rloss(%%x: %1$s[%2$s, %3$s], %%w: %1$s[%3$s], %%g: %1$s[%2$s, %3$s]) -> f32[] {\n"
    "  %%o = rmsnorm(%%x, %%w, eps=1e-6)\n"
    "  %%l = sum(mul(cast(%%o, dtype=f32), cast(%%g, dtype=f32)), axes=[0, 1])\n  return %%l\n}\n"
    "func @rvg = value_and_grad(@rloss, wrt=[%%x, %%w])\n"
    "func @sloss(%%a: %1$s[%2$s, %3$s], %%b: %1$s[%2$s, %3$s], %%g: %1$s[%2$s, %3$s]) -> f32[] {\n"
    "  %%l = sum(mul(cast(mul(silu(%%a), %%b), dtype=f32), cast(%%g, dtype=f32)), axes=[0, 1])\n  return %%l\n}\n"
    "func @svg = value_and_grad(@sloss, wrt=[%%a, %%b])\n"
    "func @closs(%%x: %1$s[%2$s, %3$s], %%t: i64[%2$s]) -> f32[] {\n"
    "  %%l = cross_entropy(cast(%%x, dtype=f32), %%t, reduction=\"mean\")\n  return %%l\n}\n"
    "func @cvg = value_and_grad(@closs, wrt=[%%x])\n";

START_TEST(layer_programs) {
    tir_context *ctx = tir_context_create();
    static const char *const dts[] = {"bf16", "f32"};
    static const char *const lens[] = {"D", "64", "1000", "4096", "4097", "32768", "8*D"};
    for (int t = 0; t < 2; t++)
        for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
            char src[16384], label[64];
            snprintf(src, sizeof src, layers, dts[t], "N", lens[k]);
            snprintf(label, sizeof label, "layers %s D=%s", dts[t], lens[k]);
            check_module(ctx, label, src);
        }
    tir_context_destroy(ctx);
}
END_TEST

/* the rmsnorm program is one kernel, and reads x and w and writes y through it */
START_TEST(rmsnorm_one_kernel) {
    tir_context *ctx = tir_context_create();
    char path[1024];
    snprintf(path, sizeof path, "%s/examples/rmsnorm.tir", srcdir());
    char *src = tu_read_file(path);
    ck_assert(src != NULL);
    static const char *const funcs[] = {"rmsnorm", "rmsnorm_op"};
    for (int i = 0; i < 2; i++) {
        tir_module *m = NULL;
        tir_program *p = NULL;
        tir_diag d;
        ck_assert(tir_module_parse(ctx, src, "rmsnorm.tir", &m, &d) == TIR_OK);
        ck_assert_msg(tir_compile(m, funcs[i], NULL, &p, &d) == TIR_OK, "%s", d.msg);
        ck_assert_int_eq(tir_program_num_kernels(p), 1);
        ck_assert_str_eq(tir_program_kernel_op(p, 0), "fused");
        tir_kernel_info ki;
        tir_program_kernel_info(p, 0, &ki);
        ck_assert_int_eq(ki.k->nparams >= 3, 1);
        tir_program_free(p);
        tir_module_free(m);
    }
    free(src);
    tir_context_destroy(ctx);
}
END_TEST

/* constant rows of 4096 bf16: 16-byte loads and stores, x loaded once per element */
START_TEST(rmsnorm_vectorised) {
    tir_context *ctx = tir_context_create();
    const char *src = "func @r(%x: bf16[N, 4096], %w: bf16[4096]) -> bf16[N, 4096] {\n"
                      "  %o = rmsnorm(%x, %w, eps=1e-6)\n  return %o\n}\n";
    tir_module *m = NULL;
    tir_program *p = NULL;
    tir_diag d;
    ck_assert(tir_module_parse(ctx, src, "r", &m, &d) == TIR_OK);
    ck_assert_msg(tir_compile(m, "r", NULL, &p, &d) == TIR_OK, "%s", d.msg);
    ck_assert_int_eq(tir_program_num_kernels(p), 1);
    const char *ptx = tir_program_kernel_ptx(p, 0);
    int lds = 0, sts = 0;
    /* x may be overwritten in place (a plain, coherent load); w is read-only: .nc */
    for (const char *q = ptx; (q = strstr(q, "ld.global.nc.v4")); q++) lds++;
    for (const char *q = ptx; (q = strstr(q, "ld.global.v4")); q++) lds++;
    for (const char *q = ptx; (q = strstr(q, "st.global.v4")); q++) sts++;
    /* 256 threads x 8 lanes cover 2048 of the 4096: two chunks of x, two of w, two stores */
    ck_assert_int_eq(lds, 4);
    ck_assert_int_eq(sts, 2);
    ck_assert_ptr_null(strstr(ptx, "ld.global.u16"));
    tir_program_free(p);
    tir_module_free(m);
    tir_context_destroy(ctx);
}
END_TEST

/* the vector loads of x in the one kernel of @func that holds a region, and that kernel's schedule */
static int row_loads(tir_context *c, const char *src, const char *func, int64_t *sweeps) {
    tir_module *m = NULL;
    tir_diag d;
    ck_assert_msg(tir_module_parse(c, src, func, &m, &d) == TIR_OK, "%s", d.msg);
    ck_assert_msg(tir_pipeline_run(m, TIR_COMPILE_LAST_STAGE, NULL, NULL, &d) == TIR_OK, "%s", d.msg);
    const tir_func *f = tir_module_find(m, func);
    const tir_op *rop = NULL;
    for (int i = 0; i < f->nops; i++)
        if (f->ops[i]->code == TIR_OP_FUSED && tir_dict_get(tir_op_attr(f->ops[i], "schedule"), "sweeps") &&
            (!rop || f->ops[i]->nin > rop->nin))
            rop = f->ops[i];
    ck_assert_ptr_nonnull(rop);
    *sweeps = tir_dict_get(tir_op_attr(rop, "schedule"), "sweeps")->u.i;
    tir_codegen_options o = {"sm_90a", 2};
    tir_kernel k;
    ck_assert_msg(tir_codegen_fused(c, rop, 0, &o, &k, &d) == TIR_OK, "%s", d.msg);
    char msg[2048];
    ck_assert_msg(assemble(&k, msg, sizeof msg), "%s: ptxas: %s", func, msg);
    int n = 0;
    for (const char *q = k.ptx; (q = strstr(q, "ld.global.nc.v4")); q++) n++;
    for (const char *q = k.ptx; (q = strstr(q, "ld.global.v4")); q++) n++; /* x may be written over */
    tir_kernel_release(&k);
    tir_module_free(m);
    return n;
}

/* the PTX of the one fused kernel of @func */
static char *fused_ptx(tir_context *c, const char *src, const char *func) {
    tir_module *m = NULL;
    tir_diag d;
    ck_assert_msg(tir_module_parse(c, src, func, &m, &d) == TIR_OK, "%s", d.msg);
    ck_assert_msg(tir_pipeline_run(m, TIR_COMPILE_LAST_STAGE, NULL, NULL, &d) == TIR_OK, "%s", d.msg);
    const tir_func *f = tir_module_find(m, func);
    const tir_op *rop = NULL;
    for (int i = 0; i < f->nops && !rop; i++)
        if (f->ops[i]->code == TIR_OP_FUSED) rop = f->ops[i];
    ck_assert_ptr_nonnull(rop);
    tir_codegen_options o = {"sm_90a", 2};
    tir_kernel k;
    ck_assert_msg(tir_codegen_fused(c, rop, 0, &o, &k, &d) == TIR_OK, "%s", d.msg);
    char *ptx = strdup(k.ptx);
    tir_kernel_release(&k);
    tir_module_free(m);
    return ptx;
}

static int count_of(const char *ptx, const char *what) {
    int n = 0;
    for (const char *q = ptx; (q = strstr(q, what)) != NULL; q++) n++;
    return n;
}

/* MUFU forms only where every use rounds to 16 bits or sums (codegen/fused_eval.h): softmax's
 * division by the row sum is one reciprocal a row (div.full) and a multiply an element, its
 * exp (only divided, then rounded to bf16) the bare ex2; an f32 result keeps the IEEE division
 * and the exact exp (no ex2 at all) */
START_TEST(approx_forms) {
    tir_context *ctx = tir_context_create();
    char *sm = fused_ptx(ctx, "func @sm(%x: bf16[N, 32768]) -> bf16[N, 32768] {\n"
                              "  %o = softmax(%x, axis=-1)\n  return %o\n}\n", "sm");
    ck_assert_int_eq(count_of(sm, "div.full.f32"), 1);
    ck_assert_int_eq(count_of(sm, "div.rn.f32"), 0);
    free(sm);
    char *f32 = fused_ptx(ctx, "func @q(%x: f32[N, 64], %y: f32[N, 64]) -> f32[N, 64] {\n"
                               "  %o = div(exp(%x), %y)\n  return %o\n}\n", "q");
    ck_assert_int_eq(count_of(f32, "div.full.f32"), 0);
    ck_assert_int_gt(count_of(f32, "div.rn.f32"), 0);
    ck_assert_int_eq(count_of(f32, "ex2.approx"), 0);
    free(f32);
    char *b16 = fused_ptx(ctx, "func @h(%x: f32[N, 64], %y: f32[N, 64]) -> bf16[N, 64] {\n"
                               "  %o = cast(div(exp(%x), %y), dtype=bf16)\n  return %o\n}\n", "h");
    ck_assert_int_gt(count_of(b16, "div.full.f32"), 0);
    ck_assert_int_eq(count_of(b16, "div.rn.f32"), 0);
    ck_assert_int_gt(count_of(b16, "ex2.approx"), 0);
    free(b16);
    tir_context_destroy(ctx);
}
END_TEST

/* long rows are streamed: softmax reads its row twice (max and the online sum of e^(x - max) in
 * one sweep, then the write), cross-entropy forward and backward twice too (the target logit is
 * one scalar load, the duplicate sum(keepdim) folds into the other); before, 3 and 5 sweeps.
 * Each sweep loads `unroll` vectors a thread at once; softmax's 64 KB row is kept in shared memory
 * (stage_row, unroll=8), so only its first sweep reads global memory: 8 loads (32768 is a multiple
 * of 8 x 512 threads x 8 lanes, so the one-vector rest loop folds away), the second sweep reads
 * the stage; cross-entropy's 128256 is too long to stage: 2 sweeps of 4 + 1 loads (unroll=4 and
 * the rest loop) */
START_TEST(row_sweeps) {
    tir_context *ctx = tir_context_create();
    const char *sm = "func @sm(%x: bf16[N, 32768]) -> bf16[N, 32768] {\n"
                     "  %o = softmax(%x, axis=-1)\n  return %o\n}\n";
    const char *ce = "func @loss(%x: bf16[N, 128256], %t: i64[N]) -> f32[] {\n"
                     "  %l = cross_entropy(cast(%x, dtype=f32), %t, reduction=\"mean\")\n  return %l\n}\n"
                     "func @ce = value_and_grad(@loss, wrt=[%x])\n";
    int64_t sw;
    ck_assert_int_eq(row_loads(ctx, sm, "sm", &sw), 8); /* the write sweep reads the stage */
    ck_assert_int_eq(sw, 2);
    ck_assert_int_eq(row_loads(ctx, ce, "ce", &sw), 2 * (4 + 1));
    ck_assert_int_eq(sw, 2);
    tir_context_destroy(ctx);
}
END_TEST

/* RMSNorm forward and backward (y, dx, dw) is one kernel: dw is summed over the rows in it, into
 * per-block partials in a workspace the launch allocates, on a persistent grid */
START_TEST(rms_fwdbwd_one_kernel) {
    tir_context *ctx = tir_context_create();
    const char *src = "func @loss(%x: bf16[N, 4096], %w: bf16[4096], %g: bf16[N, 4096]) -> f32[] {\n"
                      "  %o = rmsnorm(%x, %w, eps=1e-6)\n"
                      "  %l = sum(mul(cast(%o, dtype=f32), cast(%g, dtype=f32)), axes=[0, 1])\n  return %l\n}\n"
                      "func @vg = value_and_grad(@loss, wrt=[%x, %w])\n"
                      "func @fb(%x: bf16[N, 4096], %w: bf16[4096], %g: bf16[N, 4096]) -> "
                      "(bf16[N, 4096], bf16[N, 4096], bf16[4096]) {\n"
                      "  %y = rmsnorm(%x, %w, eps=1e-6)\n  %l, %dx, %dw = call @vg(%x, %w, %g)\n"
                      "  return %y, %dx, %dw\n}\n";
    static const char *const funcs[] = {"fb", "vg"};
    for (int i = 0; i < 2; i++) {
        tir_module *m = NULL;
        tir_program *p = NULL;
        tir_diag d;
        ck_assert(tir_module_parse(ctx, src, "fb", &m, &d) == TIR_OK);
        ck_assert_msg(tir_compile(m, funcs[i], NULL, &p, &d) == TIR_OK, "%s", d.msg);
        ck_assert_int_eq(tir_program_num_kernels(p), 1);
        tir_kernel_info ki;
        tir_program_kernel_info(p, 0, &ki);
        ck_assert_ptr_nonnull(ki.k->workspace);
        ck_assert_int_gt(ki.k->persistent, 0);
        int nws = 0;
        for (int j = 0; j < ki.k->nparams; j++) nws += ki.k->params[j].kind == TIR_KP_WORKSPACE;
        ck_assert_int_eq(nws, 1);
        const char *ptx = tir_program_kernel_ptx(p, 0);
        ck_assert_ptr_nonnull(strstr(ptx, "atom.global.add")); /* the ticket */
        tir_program_free(p);
        tir_module_free(m);
    }
    tir_context_destroy(ctx);
}
END_TEST

/* a region with a member fused codegen does not lower (argmax) runs its members one by one */
START_TEST(fallback) {
    tir_context *ctx = tir_context_create();
    const char *src = "func @g(%x: f32[N, D]) -> (i64[N], i64[N]) {\n"
                      "  %u, %t = fused(%x) kernel=\"k\" schedule={kind=\"row\", warps=8} {\n"
                      "    %t0 = argmax(%x, axes=[1])\n    %u0 = add(%t0, 1)\n    yield %u0, %t0\n  }\n"
                      "  return %u, %t\n}\n";
    tir_module *m = NULL;
    tir_program *p = NULL;
    tir_diag d;
    ck_assert_msg(tir_module_parse(ctx, src, "fb", &m, &d) == TIR_OK, "%s", d.msg);
    const tir_func *f = tir_module_find(m, "g");
    tir_kernel k;
    tir_codegen_options o = {"sm_90a", 2};
    ck_assert_int_eq(tir_codegen_fused(ctx, f->ops[0], 0, &o, &k, &d), TIR_ERR_UNSUPPORTED);
    ck_assert_msg(tir_compile(m, "g", NULL, &p, &d) == TIR_OK, "%s", d.msg);
    ck_assert_int_eq(tir_program_num_kernels(p), 3); /* argmax, the literal 1 (a full), add */
    tir_program_free(p);
    tir_module_free(m);
    tir_context_destroy(ctx);
}
END_TEST

/* The in-place masks (tir_kernel.inplace_ok) of the fused regions of function fn of src, in
 * region order (at most 8; returns how many), as the names of the operands whose bit is set
 * ("x,z"; "" none); each kernel also assembled by ptxas (the operands' noalias/readonly marks
 * change with the mask). Horizontal regions go to their own lowering. */
static int region_masks(tir_context *ctx, const char *src, const char *fn, char names[8][64]) {
    tir_diag d;
    tir_module *m = NULL;
    ck_assert_msg(tir_module_parse(ctx, src, fn, &m, &d) == TIR_OK, "%s: parse: %s", fn, d.msg);
    ck_assert_msg(tir_pipeline_run(m, TIR_COMPILE_LAST_STAGE, NULL, NULL, &d) == TIR_OK, "%s: %s", fn, d.msg);
    tir_codegen_options o = {"sm_90a", 2};
    int n = 0;
    const tir_func *f = tir_module_find(m, fn);
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < f->nops && n < 8; i++) {
        const tir_op *op = f->ops[i];
        if (op->code != TIR_OP_FUSED) continue;
        tir_kernel k;
        tir_status s = tir_fused_is_horizontal(op) ? tir_codegen_fused_horizontal(ctx, op, i, &o, &k, &d)
                                                   : tir_codegen_fused(ctx, op, i, &o, &k, &d);
        ck_assert_msg(s == TIR_OK, "%s: %s", fn, d.msg);
        char msg[2048];
        ck_assert_msg(assemble(&k, msg, sizeof msg), "%s %s: ptxas: %s", fn, k.name, msg);
        names[n][0] = 0;
        for (int j = 0; j < op->nin && j < 32; j++)
            if (k.inplace_ok >> j & 1) {
                size_t l = strlen(names[n]);
                snprintf(names[n] + l, 64 - l, "%s%s", l ? "," : "", op->in[j]->name ? op->in[j]->name : "?");
            }
        if (op->nin < 32) ck_assert_uint_eq(k.inplace_ok >> op->nin, 0u); /* operands only */
        n++;
        tir_kernel_release(&k);
    }
    tir_module_free(m);
    return n;
}

START_TEST(inplace_masks) {
    tir_context *ctx = tir_context_create();
    char nm[8][64];
    /* cross-entropy forward and backward over bf16 logits: the row kernel may write dlogits over
     * the logits: they are read by the sweeps, each element by the thread that writes its
     * gradient, and by the target pick (a barrier keeps every pick before the writes); its
     * other operands are per row. The first kernel (targets -> weights) writes only the f32
     * weights (the not-ignored mask and the clamped targets are recomputed in the row kernel,
     * passes/fuse.c), which cannot take the 8-byte targets' buffer. */
    static const char *const lens[] = {"32000", "512"}; /* streamed; held in registers */
    for (int i = 0; i < 2; i++) {
        char ce[1024];
        snprintf(ce, sizeof ce,
                 "func @ce(%%x: bf16[N, %1$s], %%t: i64[N]) -> f32[] {\n"
                 "  %%l = cross_entropy(cast(%%x, dtype=f32), %%t, reduction=\"mean\")\n  return %%l\n}\n"
                 "func @ce_vg = value_and_grad(@ce, wrt=[%%x])\n"
                 "func @fb(%%x: bf16[N, %1$s], %%t: i64[N]) -> (f32[], bf16[N, %1$s]) {\n"
                 "  %%l, %%dl = call @ce_vg(%%x, %%t)\n  return %%l, %%dl\n}\n", lens[i]);
        ck_assert_int_eq(region_masks(ctx, ce, "fb", nm), 2);
        ck_assert_str_eq(nm[0], "");
        ck_assert_str_eq(nm[1], "x");
    }
    /* elementwise: SwiGLU reads a and b at the index it writes */
    const char *sw = "func @sw(%a: bf16[N, D], %b: bf16[N, D]) -> bf16[N, D] {\n"
                     "  %o = mul(silu(%a), %b)\n  return %o\n}\n";
    ck_assert_int_eq(region_masks(ctx, sw, "sw", nm), 1);
    ck_assert_str_eq(nm[0], "a,b");
    /* rmsnorm: x (summed over its row, then scaled per element) yes; w (broadcast over the
     * rows: every row reads it) no */
    const char *rms = "func @rms(%x: bf16[N, D], %w: bf16[D]) -> bf16[N, D] {\n"
                      "  %o = rmsnorm(%x, %w, eps=1e-6)\n  return %o\n}\n";
    ck_assert_int_eq(region_masks(ctx, rms, "rms", nm), 1);
    ck_assert_str_eq(nm[0], "x");
    /* no: x read through an index map (transposed: element (i, j) is read while (j, i) is
     * computed), y through a transpose, w broadcast; z read at its own index: yes */
    const char *mv = "func @mv(%x: bf16[D, D], %y: bf16[D, D], %w: bf16[D], %z: bf16[D, D]) -> (bf16[D, D], bf16[D, D]) {\n"
                     "  %a = add(mul(%x, transpose(%y, perm=[1, 0])), %w)\n"
                     "  %c = add(sub(tanh(transpose(%x, perm=[1, 0])), %z), %a)\n"
                     "  return %c, %a\n}\n";
    ck_assert_int_eq(region_masks(ctx, mv, "mv", nm), 1);
    ck_assert_str_eq(nm[0], "z");
    /* a result of another element size never takes an operand (f32 from bf16) */
    const char *wide = "func @w(%x: bf16[N, D], %z: bf16[N, D]) -> f32[N, D] {\n"
                       "  %b = cast(sub(tanh(%x), %z), dtype=f32)\n  return %b\n}\n";
    ck_assert_int_eq(region_masks(ctx, wide, "w", nm), 1);
    ck_assert_str_eq(nm[0], "");
    /* x is read at its own index, but the region also reads its memory through a view (a
     * reshape outside, no kernel of its own) at other indices: never */
    const char *view = "func @v(%x: f32[4, 8]) -> f32[4, 8] {\n"
                       "  %xr = reshape(%x, shape=[8, 4])\n"
                       "  %y = fused(%x, %xr) kernel=\"k\" schedule={kind=\"elementwise\"} {\n"
                       "    %a = add(%x, transpose(%xr, perm=[1, 0]))\n    yield %a\n  }\n"
                       "  return %y\n}\n";
    ck_assert_int_eq(region_masks(ctx, view, "v", nm), 1);
    ck_assert_str_eq(nm[0], "");
    tir_context_destroy(ctx);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("fused_codegen");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, examples);
    tcase_add_test(tc, layer_programs);
    tcase_add_test(tc, rmsnorm_one_kernel);
    tcase_add_test(tc, rmsnorm_vectorised);
    tcase_add_test(tc, fallback);
    tcase_add_test(tc, row_sweeps);
    tcase_add_test(tc, approx_forms);
    tcase_add_test(tc, rms_fwdbwd_one_kernel);
    tcase_add_test(tc, inplace_masks);
    suite_add_tcase(s, tc);
    return s;
}


int main(void) {
    have_ptxas = tu_find_ptxas(ptxas, sizeof ptxas);
    if (!have_ptxas) {
        const char *allow = getenv("TIR_ALLOW_NO_PTXAS");
        if (!allow || strcmp(allow, "1") != 0) {
            fprintf(stderr, "test_fused_codegen: no ptxas (set TIR_ALLOW_NO_PTXAS=1 to skip it)\n");
            return 1;
        }
    }
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int nf = srunner_ntests_failed(r);
    srunner_free(r);
    printf("%d fused regions lowered and assembled\n", nregions);
    return nf ? 1 : 0;
}
