/* test_matmul_mma.c: the tensor-core matmul template (codegen/matmul_mma.c) on any machine: its
 * kernels for several tilings, dtypes, transposes and batch shapes, on sm_80 and sm_90a, must
 * assemble with ptxas and hold the instructions they are built around (mma.sync m16n8k16 with
 * ldmatrix, or wgmma; cp.async); the default tilings must not spill; bad tilings and ops the
 * template does not take are refused with a diagnostic. The TMA kernel (sm_90a, warp-specialised,
 * persistent) assembles for every transpose, batch and dtype case whose rows are 16-byte multiples,
 * takes its tensor maps as 128-byte parameters, keeps within its registers, and is picked by
 * default only where its operands qualify. Fused matmul regions (tir_codegen_matmul_region):
 * bias + SiLU, residual + scale + cast, GELU lower to one kernel that assembles, with the region's
 * operands as buffers; so do f32 matmuls of widened 16-bit operands (a linear as decomposed: the
 * MMA's type is the 16-bit one) on the TMA, cp.async (ragged K) and mma.sync paths; bodies the
 * epilogue does not take are declined (mixed 16-bit dtypes, a widened operand computed in the
 * region or also read by the epilogue). ptxas is looked up on PATH, then as
 * /usr/local/cuda/bin/ptxas; without it the ptxas checks fail unless TIR_ALLOW_NO_PTXAS=1. */
#include <check.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cublas.h"
#include "cuda.h"
#include "ir.h"
#include "matmul_mma.h"
#include "testutil.h"

static char ptxas[4096];
static bool have_ptxas;


/* A module holding `func @f(a, b) -> out { matmul }`; the op is returned through *op. */
static tir_module *matmul_module(tir_context *ctx, const char *dt, const char *ashape,
                                 const char *bshape, const char *oshape, bool ta, bool tb,
                                 tir_op **op) {
    char src[1024];
    snprintf(src, sizeof src,
             "func @f(%%a: %s[%s], %%b: %s[%s]) -> %s[%s] {\n"
             "  %%c = matmul(%%a, %%b, transpose_a=%s, transpose_b=%s)\n"
             "  return %%c\n"
             "}\n",
             dt, ashape, dt, bshape, dt, oshape, ta ? "true" : "false", tb ? "true" : "false");
    tir_module *m = NULL;
    tir_diag d;
    tir_status s = tir_module_parse(ctx, src, "mma.tir", &m, &d);
    ck_assert_msg(s == TIR_OK, "%s\n%s", d.msg, src);
    *op = m->funcs[0]->ops[0];
    ck_assert_int_eq((*op)->code, TIR_OP_MATMUL);
    return m;
}


typedef struct kcase {
    const char *dt, *a, *b, *out;
    bool ta, tb;
} kcase;

static const kcase cases[] = {
    {"bf16", "M, K", "K, N", "M, N", false, false},
    {"bf16", "M, K", "N, K", "M, N", false, true},
    {"bf16", "K, M", "K, N", "M, N", true, false},
    {"bf16", "K, M", "N, K", "M, N", true, true},
    {"f16", "M, K", "K, N", "M, N", false, false},
    {"f16", "K, M", "N, K", "M, N", true, true},
    {"bf16", "4095, 333", "333, 1000", "4095, 1000", false, false}, /* constant, ragged */
    {"bf16", "B, 1, M, K", "H, K, N", "B, H, M, N", false, false},  /* batch broadcast */
    {"f16", "2, 3, K, M", "3, N, K", "2, 3, M, N", true, true},
};

static const tir_mma_config sync_cfgs[] = {
    {.bm = 128, .bn = 128, .bk = 32, .warps_m = 2, .warps_n = 4, .stages = 4, .group_m = 8},
    {.bm = 64, .bn = 64, .bk = 32, .warps_m = 2, .warps_n = 2, .stages = 3, .group_m = 8},
    {.bm = 128, .bn = 256, .bk = 32, .warps_m = 2, .warps_n = 4, .stages = 3, .group_m = 8},
    {.bm = 128, .bn = 128, .bk = 64, .warps_m = 2, .warps_n = 2, .stages = 3, .group_m = 4},
    {.bm = 64, .bn = 128, .bk = 16, .warps_m = 1, .warps_n = 4, .stages = 2, .group_m = 1},
};

/* operands whose contiguous dims are multiples of 8 for every binding (the TMA kernel's) */
static const kcase tma_cases[] = {
    {"bf16", "M, 8*K", "8*K, 8*N", "M, 8*N", false, false},
    {"bf16", "M, 8*K", "N, 8*K", "M, N", false, true},
    {"bf16", "K, 8*M", "K, 8*N", "8*M, 8*N", true, false},
    {"f16", "8*K, 8*M", "N, 8*K", "8*M, N", true, true},
    {"bf16", "4095, 336", "336, 1000", "4095, 1000", false, false},
    {"bf16", "B, 1, M, 64*K", "H, 64*K, 64*N", "B, H, M, 64*N", false, false},
    {"f16", "2, 3, 8*K, 8*M", "3, N, 8*K", "2, 3, 8*M, N", true, true},
};

static const tir_mma_config tma_cfgs[] = {
    {.bm = 128, .bn = 256, .bk = 64, .warps_m = 2, .warps_n = 1, .stages = 4, .group_m = 8, .wgmma = true, .tma = true},
    {.bm = 128, .bn = 128, .bk = 64, .warps_m = 2, .warps_n = 1, .stages = 5, .group_m = 8, .wgmma = true, .tma = true},
    {.bm = 64, .bn = 256, .bk = 64, .warps_m = 1, .warps_n = 1, .stages = 4, .group_m = 8, .wgmma = true, .tma = true},
    {.bm = 128, .bn = 256, .bk = 64, .warps_m = 1, .warps_n = 2, .stages = 4, .group_m = 4, .wgmma = true, .tma = true},
};

static const tir_mma_config wg_cfgs[] = {
    {.bm = 128, .bn = 256, .bk = 64, .warps_m = 2, .warps_n = 1, .stages = 4, .group_m = 8, .wgmma = true},
    {.bm = 128, .bn = 128, .bk = 64, .warps_m = 2, .warps_n = 1, .stages = 4, .group_m = 8, .wgmma = true},
    {.bm = 128, .bn = 128, .bk = 64, .warps_m = 1, .warps_n = 2, .stages = 3, .group_m = 8, .wgmma = true},
    {.bm = 64, .bn = 128, .bk = 128, .warps_m = 1, .warps_n = 1, .stages = 3, .group_m = 8, .wgmma = true},
};

/* Generates, checks the text, assembles; returns ptxas's log in log (for the spill checks). */
static void check_kernel(const kcase *kc, const char *arch, const tir_mma_config *cfg,
                         char *log, size_t logn) {
    tir_context *ctx = tir_context_create();
    tir_op *op;
    tir_module *m = matmul_module(ctx, kc->dt, kc->a, kc->b, kc->out, kc->ta, kc->tb, &op);
    tir_codegen_options o = {arch, 2};
    ck_assert(tir_matmul_mma_ok(op, &o));
    tir_kernel k;
    tir_diag d;
    tir_status s = tir_codegen_matmul_mma(ctx, op, 7, &o, cfg, &k, &d);
    char what[256];
    snprintf(what, sizeof what, "%s %s[%s] x [%s] ta=%d tb=%d on %s, tile %dx%dx%d %s", kc->dt,
             kc->dt, kc->a, kc->b, kc->ta, kc->tb, arch, cfg ? cfg->bm : 0, cfg ? cfg->bn : 0,
             cfg ? cfg->bk : 0, cfg && cfg->wgmma ? "wgmma" : "");
    ck_assert_msg(s == TIR_OK, "%s: %s", what, d.msg);
    ck_assert_str_eq(k.name, "tir_matmul_mma_7");
    ck_assert_ptr_nonnull(k.ptx);
    ck_assert_msg(strstr(k.ptx, ".entry tir_matmul_mma_7") != NULL, "%s: no entry", what);
    bool tma = cfg ? cfg->tma : strstr(k.ptx, "cp.async.bulk.tensor") != NULL;
    if (tma) {
        ck_assert_msg(strstr(k.ptx, "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier") != NULL,
                      "%s: no TMA copy", what);
        ck_assert_msg(strstr(k.ptx, "mbarrier.try_wait.parity") != NULL, "%s: no mbarrier wait", what);
        ck_assert_msg(strstr(k.ptx, "setmaxnreg.inc") != NULL && strstr(k.ptx, "setmaxnreg.dec") != NULL,
                      "%s: no setmaxnreg", what);
        /* the tensor maps: 64-byte aligned 128-byte parameters, read in place */
        ck_assert_msg(strstr(k.ptx, ".param .align 64 .b8 tir_matmul_mma_7_param_3[128]") != NULL,
                      "%s: no tensor-map parameter\n", what);
        ck_assert_msg(strstr(k.ptx, ".local") == NULL, "%s: a parameter copied to local memory", what);
        ck_assert_int_eq(k.persistent, 1);
    } else {
        ck_assert_msg(strstr(k.ptx, "cp.async.cg.shared.global") != NULL, "%s: no cp.async", what);
    }
    bool wg = cfg ? cfg->wgmma : strstr(k.ptx, "wgmma.mma_async") != NULL;
    if (wg) {
        ck_assert_msg(strstr(k.ptx, "wgmma.mma_async.sync.aligned.m64n") != NULL, "%s", what);
        /* 16-byte stores of the exchanged 16-bit outputs */
        ck_assert_msg(strstr(k.ptx, "st.global.v2.b64") != NULL, "%s: no 16-byte stores", what);
        /* cp.async writes through the generic proxy; the copy engine's through the async one */
        if (!tma) ck_assert_msg(strstr(k.ptx, "fence.proxy.async") != NULL, "%s", what);
    } else {
        ck_assert_msg(strstr(k.ptx, "mma.sync.aligned.m16n8k16.row.col.f32") != NULL, "%s: no mma", what);
        ck_assert_msg(strstr(k.ptx, "ldmatrix.sync.aligned.m8n8.x4") != NULL, "%s: no ldmatrix", what);
    }
    /* parameters: a, b, out, then one i64 per distinct symbolic size */
    ck_assert_int_ge(k.nparams, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(k.params[i].kind, TIR_KP_BUFFER);
        ck_assert_int_eq(k.params[i].index, i);
    }
    int first_dim = 3;
    if (tma) {
        ck_assert_int_ge(k.nparams, 5);
        for (int i = 3; i < 5; i++) {
            const tir_kparam_tmap *t = &k.params[i].tmap;
            ck_assert_int_eq(k.params[i].kind, TIR_KP_TMAP);
            ck_assert_int_eq(k.params[i].index, i - 3);
            ck_assert_int_eq(t->rank, 3);
            ck_assert_int_eq(t->swizzle, 128);
            ck_assert_int_eq(t->box[0], 64); /* 128 bytes: one swizzled row */
            ck_assert_ptr_eq(t->dims[0], op->in[i - 3]->type.dims[op->in[i - 3]->type.rank - 1]);
            ck_assert_ptr_eq(t->strides[1], t->dims[0]);
        }
        first_dim = 5;
    }
    for (int i = first_dim; i < k.nparams; i++) ck_assert_int_eq(k.params[i].kind, TIR_KP_DIM);
    ck_assert_int_gt(k.shared_bytes, 0);
    ck_assert_int_le(k.shared_bytes, 227 * 1024);
    ck_assert(k.block[0] == 128 || k.block[0] == 256 || k.block[0] == 64 || k.block[0] == 512 ||
              k.block[0] == 384);
    for (int i = 0; i < 3; i++) ck_assert_ptr_nonnull(k.grid[i]);
    if (have_ptxas) {
        int rc = tu_ptxas(ptxas, arch, k.ptx, log, logn);
        ck_assert_msg(rc == 0, "%s: ptxas failed:\n%s", what, log);
        ck_assert_msg(strstr(log, "warning") == NULL, "%s: ptxas warns:\n%s", what, log);
    } else {
        log[0] = 0;
    }
    tir_kernel_release(&k);
    tir_module_free(m);
    tir_context_destroy(ctx);
}

static char logbuf[1 << 16];

START_TEST(test_sync_kernels) {
    const char *archs[] = {"sm_80", "sm_90a"};
    int nc = (int)(sizeof cases / sizeof *cases), ng = (int)(sizeof sync_cfgs / sizeof *sync_cfgs);
    for (int a = 0; a < 2; a++)
        for (int i = 0; i < nc; i++) {
            /* every case with the first tiling, every tiling with a rotating case */
            check_kernel(&cases[i], archs[a], &sync_cfgs[0], logbuf, sizeof logbuf);
            if (i < ng) check_kernel(&cases[(i * 3 + a) % nc], archs[a], &sync_cfgs[i], logbuf, sizeof logbuf);
        }
}
END_TEST

START_TEST(test_wgmma_kernels) {
    int nc = (int)(sizeof cases / sizeof *cases), ng = (int)(sizeof wg_cfgs / sizeof *wg_cfgs);
    for (int i = 0; i < nc; i++) check_kernel(&cases[i], "sm_90a", &wg_cfgs[0], logbuf, sizeof logbuf);
    for (int i = 1; i < ng; i++)
        for (int j = 0; j < 4; j++) check_kernel(&cases[j], "sm_90a", &wg_cfgs[i], logbuf, sizeof logbuf);
}
END_TEST

START_TEST(test_tma_kernels) {
    int nc = (int)(sizeof tma_cases / sizeof *tma_cases), ng = (int)(sizeof tma_cfgs / sizeof *tma_cfgs);
    for (int i = 0; i < nc; i++) {
        check_kernel(&tma_cases[i], "sm_90a", &tma_cfgs[0], logbuf, sizeof logbuf);
        /* the 64x256 consumers hold 128 accumulators each: none may spill */
        if (have_ptxas)
            ck_assert_msg(strstr(logbuf, "0 bytes spill stores, 0 bytes spill loads") != NULL &&
                              strstr(logbuf, "0 bytes stack frame") != NULL,
                          "case %d spills:\n%s", i, logbuf);
    }
    for (int i = 1; i < ng; i++)
        for (int j = 0; j < 3; j++) check_kernel(&tma_cases[j], "sm_90a", &tma_cfgs[i], logbuf, sizeof logbuf);
}
END_TEST

/* the TMA kernel is the default exactly where the operands' rows are 16-byte multiples */
START_TEST(test_tma_pick) {
    tir_context *ctx = tir_context_create();
    tir_op *op;
    tir_mma_config c;
    char why[128];
    tir_module *m = matmul_module(ctx, "bf16", "8192, 4096", "4096, 14336", "8192, 14336", false, false, &op);
    ck_assert(tir_matmul_tma_ok(op, "sm_90a"));
    ck_assert(!tir_matmul_tma_ok(op, "sm_90"));
    ck_assert(!tir_matmul_tma_ok(op, "sm_80"));
    tir_mma_pick_config_for(op, "sm_90a", &c);
    ck_assert(c.tma && c.wgmma);
    ck_assert_msg(tir_mma_config_valid(&c, why, sizeof why), "%s", why);
    tir_mma_pick_config_for(op, "sm_80", &c);
    ck_assert(!c.tma);
    setenv("TIR_MATMUL_TMA", "0", 1);
    tir_mma_pick_config_for(op, "sm_90a", &c);
    unsetenv("TIR_MATMUL_TMA");
    ck_assert(!c.tma && c.wgmma);
    tir_module_free(m);
    /* K = 4093: a's rows are not 16-byte multiples */
    m = matmul_module(ctx, "bf16", "4095, 4093", "4093, 4096", "4095, 4096", false, false, &op);
    ck_assert(!tir_matmul_tma_ok(op, "sm_90a"));
    tir_mma_pick_config_for(op, "sm_90a", &c);
    ck_assert(!c.tma);
    tir_kernel k;
    tir_diag d;
    tir_codegen_options o = {"sm_90a", 2};
    ck_assert_int_eq(tir_codegen_matmul_mma(ctx, op, 0, &o, &tma_cfgs[0], &k, &d), TIR_ERR_INVALID);
    ck_assert_msg(strstr(d.msg, "multiple of 8") != NULL, "%s", d.msg);
    tir_module_free(m);
    /* symbolic: N alone is not known to be a multiple of 8; 8*N is */
    m = matmul_module(ctx, "bf16", "M, K", "K, N", "M, N", false, false, &op);
    ck_assert(!tir_matmul_tma_ok(op, "sm_90a"));
    tir_module_free(m);
    m = matmul_module(ctx, "bf16", "M, 16*K", "16*K, 8*N", "M, 8*N", false, false, &op);
    ck_assert(tir_matmul_tma_ok(op, "sm_90a"));
    tir_module_free(m);
    /* a bad TMA tiling */
    m = matmul_module(ctx, "bf16", "64, 64", "64, 64", "64, 64", false, false, &op);
    tir_mma_config bad = tma_cfgs[0];
    bad.bk = 128;
    ck_assert(!tir_mma_config_valid(&bad, why, sizeof why));
    bad = tma_cfgs[0];
    bad.wgmma = false;
    ck_assert(!tir_mma_config_valid(&bad, why, sizeof why));
    tir_module_free(m);
    tir_context_destroy(ctx);
}
END_TEST

/* the TMA kernel's launch: every tile of every batch, clamped at launch to one block per SM */
START_TEST(test_tma_geometry) {
    tir_context *ctx = tir_context_create();
    tir_op *op;
    tir_module *m = matmul_module(ctx, "bf16", "B, 1, M, 64*K", "H, 64*K, 64*N", "B, H, M, 64*N", false, false, &op);
    tir_codegen_options o = {"sm_90a", 2};
    tir_kernel k;
    tir_diag d;
    ck_assert_int_eq(tir_codegen_matmul_mma(ctx, op, 3, &o, &tma_cfgs[0], &k, &d), TIR_OK);
    tir_bindings b = {0};
    tir_bindings_set(&b, "B", 2);
    tir_bindings_set(&b, "H", 3);
    tir_bindings_set(&b, "M", 300);
    tir_bindings_set(&b, "N", 5);
    tir_bindings_set(&b, "K", 1);
    int64_t gx, gy, v;
    ck_assert_int_eq(tir_dim_eval(k.grid[0], &b, &gx), TIR_OK);
    ck_assert_int_eq(tir_dim_eval(k.grid[1], &b, &gy), TIR_OK);
    ck_assert_int_eq(gx, 3 * 2 * 2 * 3); /* ceil(300/128) * ceil(320/256) * B * H */
    ck_assert_int_eq(gy, 1);
    ck_assert_int_eq(k.block[0], 384);
    ck_assert_int_eq(k.persistent, 1);
    ck_assert_int_eq(k.shared_bytes, 4 * (128 + 256) * 64 * 2 + 4 * 16);
    /* a's view: [64K, M, B*1] with strides [., 64K, 64K*M]; b's: [64N, 64K, H] */
    const tir_kparam_tmap *ta = &k.params[3].tmap, *tb = &k.params[4].tmap;
    ck_assert_int_eq(tir_dim_eval(ta->dims[1], &b, &v), TIR_OK);
    ck_assert_int_eq(v, 300);
    ck_assert_int_eq(tir_dim_eval(ta->dims[2], &b, &v), TIR_OK);
    ck_assert_int_eq(v, 2);
    ck_assert_int_eq(tir_dim_eval(ta->strides[2], &b, &v), TIR_OK);
    ck_assert_int_eq(v, 64 * 300);
    ck_assert_int_eq(ta->box[1], 128);
    ck_assert_int_eq(tir_dim_eval(tb->dims[0], &b, &v), TIR_OK);
    ck_assert_int_eq(v, 320);
    ck_assert_int_eq(tir_dim_eval(tb->dims[2], &b, &v), TIR_OK);
    ck_assert_int_eq(v, 3);
    ck_assert_int_eq(tb->box[1], 64); /* N-major b: one 64x64 box per 128-byte panel */
    tir_kernel_release(&k);
    tir_module_free(m);
    tir_context_destroy(ctx);
}
END_TEST

/* a one-region function: the region is funcs[0]->ops[0] */
static tir_module *region_module(tir_context *ctx, const char *src) {
    tir_module *m = NULL;
    tir_diag d;
    tir_status s = tir_module_parse(ctx, src, "region.tir", &m, &d);
    ck_assert_msg(s == TIR_OK, "%s\n%s", d.msg, src);
    ck_assert_int_eq(m->funcs[0]->ops[0]->code, TIR_OP_FUSED);
    return m;
}

typedef struct rcase {
    const char *src;
    const char *member; /* a PTX text the epilogue must leave (its operation) */
    bool tma;           /* the TMA kernel is expected */
} rcase;

static const rcase rcases[] = {
    /* linear + bias + SiLU (a weight [N, K], a bias [N]); constant sizes take the TMA kernel */
    {"func @f(%x: bf16[512, 256], %w: bf16[384, 256], %b: bf16[384]) -> bf16[512, 384] {\n"
     "  %y = fused(%x, %w, %b) kernel=\"k\" schedule={kind=\"matmul\", bm=128, bn=256, bk=64, "
     "warps_m=2, warps_n=1, stages=4, group_m=8, wgmma=true} {\n"
     "    %c = matmul(%x, %w, transpose_b=true)\n"
     "    %d = add(%c, %b)\n"
     "    yield silu(%d)\n  }\n  return %y\n}\n", "ld.global", true},
    /* a residual, a scale, the output cast to f32; symbolic sizes keep the cp.async kernel */
    {"func @f(%r: bf16[B, M, N], %a: bf16[B, M, K], %w: bf16[K, N]) -> f32[B, M, N] {\n"
     "  %y = fused(%r, %a, %w) kernel=\"k\" schedule={kind=\"matmul\"} {\n"
     "    %c = matmul(%a, %w)\n"
     "    %s = full(0.5, shape=[], dtype=bf16)\n"
     "    %d = add(mul(%c, %s), %r)\n"
     "    yield cast(%d, dtype=f32)\n  }\n  return %y\n}\n", "st.global.b32", false},
    /* GELU (tanh) on the mma.sync tiling, a scalar parameter */
    {"func @f(%a: f16[M, K], %w: f16[K, N], %t: f16[]) -> f16[M, N] {\n"
     "  %y = fused(%a, %w, %t) kernel=\"k\" schedule={kind=\"matmul\", bm=64, bn=64, bk=32, "
     "warps_m=2, warps_n=2, stages=3, group_m=8, wgmma=false} {\n"
     "    %c = matmul(%a, %w)\n"
     "    yield gelu(mul(%c, %t), approximate=\"tanh\")\n  }\n  return %y\n}\n", "mma.sync", false},
    /* a bf16 linear as decomposed: an f32 matmul of widened operands, the bias's cast, the cast
     * back, SiLU. The kernel multiplies the bf16 values (the MMA's type says so) on the TMA path */
    {"func @f(%x: bf16[B, 512, 256], %w: bf16[384, 256], %b: bf16[384]) -> bf16[B, 512, 384] {\n"
     "  %y = fused(%x, %w, %b) kernel=\"k\" schedule={kind=\"matmul\", bm=128, bn=256, bk=64, "
     "warps_m=2, warps_n=1, stages=4, group_m=8, wgmma=true, split_k=1} {\n"
     "    %0 = cast(%x, dtype=f32)\n    %1 = cast(%w, dtype=f32)\n"
     "    %2 = matmul(%0, %1, transpose_b=true)\n"
     "    %3 = cast(%b, dtype=f32)\n    %4 = add(%2, %3)\n"
     "    yield silu(cast(%4, dtype=bf16))\n  }\n  return %y\n}\n", "f32.bf16.bf16", true},
    /* ragged K (333: rows not 16-byte aligned, no TMA) and symbolic T, f16, the f32 result kept */
    {"func @f(%x: f16[T, 333], %w: f16[1000, 333]) -> f32[T, 1000] {\n"
     "  %y = fused(%x, %w) kernel=\"k\" schedule={kind=\"matmul\", bm=128, bn=128, bk=64, "
     "warps_m=2, warps_n=1, stages=4, group_m=8, wgmma=true, split_k=1} {\n"
     "    %0 = cast(%x, dtype=f32)\n    %1 = cast(%w, dtype=f32)\n"
     "    yield matmul(%0, %1, transpose_b=true)\n  }\n  return %y\n}\n", "f32.f16.f16", false},
    /* the same on the mma.sync tiling, with a residual after the cast back */
    {"func @f(%x: bf16[T, 64], %w: bf16[96, 64], %r: bf16[T, 96]) -> bf16[T, 96] {\n"
     "  %y = fused(%x, %w, %r) kernel=\"k\" schedule={kind=\"matmul\", bm=64, bn=64, bk=32, "
     "warps_m=2, warps_n=2, stages=3, group_m=8, wgmma=false, split_k=1} {\n"
     "    %0 = cast(%x, dtype=f32)\n    %1 = cast(%w, dtype=f32)\n"
     "    %2 = matmul(%0, %1, transpose_b=true)\n"
     "    yield add(cast(%2, dtype=bf16), %r)\n  }\n  return %y\n}\n", "mma.sync", false},
};

START_TEST(test_region_kernels) {
    for (int i = 0; i < (int)(sizeof rcases / sizeof *rcases); i++) {
        tir_context *ctx = tir_context_create();
        tir_module *m = region_module(ctx, rcases[i].src);
        const tir_op *fop = m->funcs[0]->ops[0];
        tir_codegen_options o = {"sm_90a", 2};
        tir_kernel k;
        tir_diag d;
        tir_status s = tir_codegen_matmul_region(ctx, fop, 5, &o, &k, &d);
        ck_assert_msg(s == TIR_OK, "case %d: %s", i, d.msg);
        ck_assert_str_eq(k.name, "tir_matmul_fused_5");
        ck_assert_msg(strstr(k.ptx, rcases[i].member) != NULL, "case %d: no %s", i, rcases[i].member);
        bool tma = strstr(k.ptx, "cp.async.bulk.tensor") != NULL;
        ck_assert_msg(tma == rcases[i].tma, "case %d: tma %d", i, tma);
        /* buffers: the region's operands in order, then its result */
        for (int j = 0; j <= fop->nin; j++) {
            ck_assert_int_eq(k.params[j].kind, TIR_KP_BUFFER);
            ck_assert_int_eq(k.params[j].index, j);
        }
        if (tma) {
            /* the matmul's operands are parameters 0 and 1 of the region (x and w) */
            ck_assert_int_eq(k.params[fop->nin + 1].kind, TIR_KP_TMAP);
            ck_assert_int_eq(k.params[fop->nin + 1].index, 0);
            ck_assert_int_eq(k.params[fop->nin + 2].index, 1);
        }
        if (have_ptxas) {
            int rc = tu_ptxas(ptxas, "sm_90a", k.ptx, logbuf, sizeof logbuf);
            ck_assert_msg(rc == 0, "case %d: ptxas failed:\n%s", i, logbuf);
            ck_assert_msg(strstr(logbuf, "warning") == NULL, "case %d: ptxas warns:\n%s", i, logbuf);
            ck_assert_msg(strstr(logbuf, "0 bytes spill stores") != NULL, "case %d spills:\n%s", i, logbuf);
        }
        tir_kernel_release(&k);
        /* on sm_80 the wgmma tiling gives way to an mma.sync one */
        tir_codegen_options o80 = {"sm_80", 2};
        s = tir_codegen_matmul_region(ctx, fop, 5, &o80, &k, &d);
        ck_assert_msg(s == TIR_OK, "case %d sm_80: %s", i, d.msg);
        ck_assert(strstr(k.ptx, "wgmma") == NULL);
        if (have_ptxas) {
            int rc = tu_ptxas(ptxas, "sm_80", k.ptx, logbuf, sizeof logbuf);
            ck_assert_msg(rc == 0, "case %d sm_80: ptxas failed:\n%s", i, logbuf);
        }
        tir_kernel_release(&k);
        tir_module_free(m);
        tir_context_destroy(ctx);
    }
}
END_TEST

/* bodies the epilogue does not take: the caller runs the members one by one */
START_TEST(test_region_refusals) {
    static const char *const bad[] = {
        /* a reduction after the matmul */
        "func @f(%a: bf16[M, K], %w: bf16[K, N]) -> bf16[M] {\n"
        "  %y = fused(%a, %w) kernel=\"k\" schedule={kind=\"matmul\"} {\n"
        "    %c = matmul(%a, %w)\n    yield sum(%c, axes=[-1])\n  }\n  return %y\n}\n",
        /* split_k */
        "func @f(%a: bf16[M, K], %w: bf16[K, N]) -> bf16[M, N] {\n"
        "  %y = fused(%a, %w) kernel=\"k\" schedule={kind=\"matmul\", split_k=4} {\n"
        "    %c = matmul(%a, %w)\n    yield relu(%c)\n  }\n  return %y\n}\n",
        /* an operand computed before the matmul */
        "func @f(%a: bf16[M, K], %w: bf16[K, N]) -> bf16[M, N] {\n"
        "  %y = fused(%a, %w) kernel=\"k\" schedule={kind=\"matmul\"} {\n"
        "    %e = exp(%a)\n    %c = matmul(%e, %w)\n    yield %c\n  }\n  return %y\n}\n",
        /* an f32 matmul (no tensor-core kernel) */
        "func @f(%a: f32[M, K], %w: f32[K, N]) -> f32[M, N] {\n"
        "  %y = fused(%a, %w) kernel=\"k\" schedule={kind=\"matmul\"} {\n"
        "    %c = matmul(%a, %w)\n    yield relu(%c)\n  }\n  return %y\n}\n",
        /* a parameter of another shape ([M] does not broadcast to [M, N] from the right) */
        "func @f(%a: bf16[M, K], %w: bf16[K, N], %v: bf16[M]) -> bf16[M, N] {\n"
        "  %y = fused(%a, %w, %v) kernel=\"k\" schedule={kind=\"matmul\"} {\n"
        "    %c = matmul(%a, %w)\n    %u = reshape(%v, shape=[M, 1])\n    yield add(%c, %u)\n  }\n"
        "  return %y\n}\n",
        /* widened operands of two 16-bit dtypes */
        "func @f(%a: bf16[M, K], %w: f16[K, N]) -> f32[M, N] {\n"
        "  %y = fused(%a, %w) kernel=\"k\" schedule={kind=\"matmul\"} {\n"
        "    yield matmul(cast(%a, dtype=f32), cast(%w, dtype=f32))\n  }\n  return %y\n}\n",
        /* a widened operand computed in the region (not a parameter's cast) */
        "func @f(%a: bf16[M, K], %w: bf16[K, N]) -> f32[M, N] {\n"
        "  %y = fused(%a, %w) kernel=\"k\" schedule={kind=\"matmul\"} {\n"
        "    yield matmul(cast(exp(%a), dtype=f32), cast(%w, dtype=f32))\n  }\n  return %y\n}\n",
        /* one operand widened, the other an f32 parameter */
        "func @f(%a: bf16[M, K], %w: f32[K, N]) -> f32[M, N] {\n"
        "  %y = fused(%a, %w) kernel=\"k\" schedule={kind=\"matmul\"} {\n"
        "    yield matmul(cast(%a, dtype=f32), %w)\n  }\n  return %y\n}\n",
        /* a widened operand also read by the epilogue (square: [N, N] broadcasts to the output) */
        "func @f(%a: bf16[N, N], %w: bf16[N, N]) -> f32[N, N] {\n"
        "  %y = fused(%a, %w) kernel=\"k\" schedule={kind=\"matmul\"} {\n"
        "    %c = cast(%a, dtype=f32)\n"
        "    yield add(matmul(%c, cast(%w, dtype=f32)), %c)\n  }\n  return %y\n}\n",
    };
    for (int i = 0; i < (int)(sizeof bad / sizeof *bad); i++) {
        tir_context *ctx = tir_context_create();
        tir_module *m = region_module(ctx, bad[i]);
        tir_codegen_options o = {"sm_90a", 2};
        tir_kernel k;
        tir_diag d;
        ck_assert_msg(tir_codegen_matmul_region(ctx, m->funcs[0]->ops[0], 0, &o, &k, &d) == TIR_ERR_UNSUPPORTED,
                      "case %d accepted", i);
        ck_assert_ptr_null(k.ptx);
        ck_assert_msg(strlen(d.msg) > 0, "case %d: no reason", i);
        tir_module_free(m);
        tir_context_destroy(ctx);
    }
}
END_TEST

/* the tilings picked by default assemble without spills (stack frame, spill stores, loads) */
START_TEST(test_default_no_spills) {
    if (!have_ptxas) return;
    const tir_mma_config *cfgs[] = {&sync_cfgs[0], &wg_cfgs[0], &wg_cfgs[1], NULL};
    for (int i = 0; i < 4; i++) {
        for (int c = 0; c < 4; c++) {
            check_kernel(&cases[c], "sm_90a", cfgs[i], logbuf, sizeof logbuf);
            ck_assert_msg(strstr(logbuf, "0 bytes spill stores, 0 bytes spill loads") != NULL,
                          "case %d config %d spills:\n%s", c, i, logbuf);
            ck_assert_msg(strstr(logbuf, "0 bytes stack frame") != NULL, "case %d config %d:\n%s", c,
                          i, logbuf);
        }
    }
}
END_TEST

START_TEST(test_pick_config) {
    tir_context *ctx = tir_context_create();
    tir_op *op;
    tir_module *m = matmul_module(ctx, "bf16", "4096, 4096", "4096, 4096", "4096, 4096", false, false, &op);
    tir_mma_config c;
    char why[128];
    tir_mma_pick_config(op, &c);
    ck_assert(!c.wgmma);
    ck_assert_msg(tir_mma_config_valid(&c, why, sizeof why), "%s", why);
    tir_mma_pick_config_for(op, "sm_90a", &c);
    ck_assert_msg(tir_mma_config_valid(&c, why, sizeof why), "%s", why);
    tir_mma_pick_config_for(op, "sm_80", &c);
    ck_assert(!c.wgmma);
    tir_module_free(m);
    m = matmul_module(ctx, "f16", "7, 5", "5, 13", "7, 13", false, false, &op);
    tir_mma_pick_config_for(op, "sm_90a", &c);
    ck_assert(!c.wgmma);
    ck_assert_int_eq(c.bm, 64);
    ck_assert_msg(tir_mma_config_valid(&c, why, sizeof why), "%s", why);
    tir_module_free(m);
    tir_context_destroy(ctx);
}
END_TEST

START_TEST(test_refusals) {
    tir_context *ctx = tir_context_create();
    tir_op *op;
    tir_kernel k;
    tir_diag d;
    tir_codegen_options o90 = {"sm_90a", 2}, o80 = {"sm_80", 2}, o75 = {"sm_75", 2};
    tir_module *m = matmul_module(ctx, "f32", "M, K", "K, N", "M, N", false, false, &op);
    ck_assert(!tir_matmul_mma_ok(op, &o90));
    ck_assert_int_eq(tir_codegen_matmul_mma(ctx, op, 0, &o90, NULL, &k, &d), TIR_ERR_UNSUPPORTED);
    ck_assert_ptr_null(k.ptx);
    tir_module_free(m);

    m = matmul_module(ctx, "bf16", "M, K", "K, N", "M, N", false, false, &op);
    ck_assert(!tir_matmul_mma_ok(op, &o75));
    ck_assert(tir_matmul_mma_ok(op, &o80));
    tir_mma_config bad = sync_cfgs[0];
    bad.bk = 24;
    ck_assert_int_eq(tir_codegen_matmul_mma(ctx, op, 0, &o90, &bad, &k, &d), TIR_ERR_INVALID);
    ck_assert_msg(strstr(d.msg, "power") != NULL, "%s", d.msg);
    bad = sync_cfgs[0];
    bad.warps_n = 3;
    ck_assert_int_eq(tir_codegen_matmul_mma(ctx, op, 0, &o90, &bad, &k, &d), TIR_ERR_INVALID);
    bad = sync_cfgs[0];
    bad.stages = 8;
    bad.bk = 128;
    bad.bn = 256;
    ck_assert_int_eq(tir_codegen_matmul_mma(ctx, op, 0, &o90, &bad, &k, &d), TIR_ERR_INVALID);
    ck_assert_msg(strstr(d.msg, "shared memory") != NULL, "%s", d.msg);
    /* wgmma only on sm_90a */
    ck_assert_int_eq(tir_codegen_matmul_mma(ctx, op, 0, &o80, &wg_cfgs[0], &k, &d), TIR_ERR_INVALID);
    bad = wg_cfgs[0];
    bad.bk = 32;
    ck_assert_int_eq(tir_codegen_matmul_mma(ctx, op, 0, &o90, &bad, &k, &d), TIR_ERR_INVALID);
    tir_module_free(m);
    tir_context_destroy(ctx);
}
END_TEST

/* the launch geometry is symbolic: ceil(M/bm) * ceil(N/bn) blocks by the batch */
START_TEST(test_geometry) {
    tir_context *ctx = tir_context_create();
    tir_op *op;
    tir_module *m = matmul_module(ctx, "bf16", "B, 1, M, K", "H, K, N", "B, H, M, N", false, false, &op);
    tir_codegen_options o = {"sm_90a", 2};
    tir_kernel k;
    tir_diag d;
    ck_assert_int_eq(tir_codegen_matmul_mma(ctx, op, 3, &o, &sync_cfgs[0], &k, &d), TIR_OK);
    tir_bindings b = {0};
    tir_bindings_set(&b, "B", 2);
    tir_bindings_set(&b, "H", 3);
    tir_bindings_set(&b, "M", 300);
    tir_bindings_set(&b, "N", 129);
    tir_bindings_set(&b, "K", 64);
    int64_t gx, gy, gz;
    ck_assert_int_eq(tir_dim_eval(k.grid[0], &b, &gx), TIR_OK);
    ck_assert_int_eq(tir_dim_eval(k.grid[1], &b, &gy), TIR_OK);
    ck_assert_int_eq(tir_dim_eval(k.grid[2], &b, &gz), TIR_OK);
    ck_assert_int_eq(gx, 3 * 2);
    ck_assert_int_eq(gy, 2 * 3);
    ck_assert_int_eq(gz, 1);
    ck_assert_int_eq(k.block[0], 256);
    ck_assert_int_eq(k.shared_bytes, 4 * (128 + 128) * 32 * 2);
    ck_assert_int_eq(k.nparams, 3 + 5);
    tir_kernel_release(&k);
    tir_module_free(m);
    tir_context_destroy(ctx);
}
END_TEST

/* cuBLASLt: a library that is not there is a clean TIR_ERR_UNSUPPORTED; without a device, a clean
 * TIR_ERR_NO_DRIVER (cuBLASLt is not even asked); with one, bad arguments are refused before
 * cuBLAS is called */
START_TEST(test_cublas_load) {
    const char *old = getenv("TIR_CUBLASLT_LIB");
    char *saved = old ? strdup(old) : NULL;
    setenv("TIR_CUBLASLT_LIB", "/nonexistent/libcublasLt.so.13", 1);
    tir_cublas *cb = (tir_cublas *)1;
    tir_diag d;
    ck_assert_int_eq(tir_cublas_create(NULL, &cb, &d), TIR_ERR_UNSUPPORTED);
    ck_assert_ptr_null(cb);
    ck_assert_msg(strstr(d.msg, "cuBLASLt not found") != NULL, "%s", d.msg);
    ck_assert_msg(strstr(tir_cublas_describe(NULL), "not found") != NULL, "%s", tir_cublas_describe(NULL));
    if (saved) setenv("TIR_CUBLASLT_LIB", saved, 1);
    else unsetenv("TIR_CUBLASLT_LIB");
    free(saved);
    ck_assert_int_eq(tir_cublas_matmul(NULL, NULL, NULL, &d), TIR_ERR_INVALID);

    tir_context *ctx = tir_context_create();
    tir_rt *rt = NULL;
    if (tir_rt_get(ctx, &rt, &d) != TIR_OK) rt = NULL;
    tir_status s = tir_cublas_create(rt, &cb, &d);
    if (!rt) {
        /* no library here is fine too; with one, no device is the answer */
        ck_assert_msg(s == TIR_ERR_NO_DRIVER || s == TIR_ERR_UNSUPPORTED, "%d %s", s, d.msg);
        ck_assert_ptr_null(cb);
    } else if (s == TIR_OK) {
        tir_cublas_gemm g = {.dtype = TIR_I32, .m = 4, .n = 4, .k = 4, .batch = 1};
        ck_assert_int_eq(tir_cublas_matmul(cb, NULL, &g, &d), TIR_ERR_UNSUPPORTED);
        g.dtype = TIR_BF16;
        g.batch = 0;
        ck_assert_int_eq(tir_cublas_matmul(cb, NULL, &g, &d), TIR_ERR_INVALID);
        g.batch = 1;
        g.lda = 2; /* < k */
        g.a = g.b = g.c = 256;
        ck_assert_int_eq(tir_cublas_matmul(cb, NULL, &g, &d), TIR_ERR_INVALID);
        ck_assert_ptr_nonnull(strstr(tir_cublas_describe(cb), "cuBLASLt"));
        tir_cublas_destroy(cb);
    }
    tir_context_destroy(ctx);
}
END_TEST

int main(void) {
    have_ptxas = tu_find_ptxas(ptxas, sizeof ptxas);
    if (!have_ptxas) {
        const char *allow = getenv("TIR_ALLOW_NO_PTXAS");
        if (!allow || strcmp(allow, "1") != 0) {
            fprintf(stderr, "test_matmul_mma: no ptxas on PATH or in /usr/local/cuda/bin "
                            "(TIR_ALLOW_NO_PTXAS=1 to skip those checks)\n");
            return 1;
        }
    }
    Suite *s = suite_create("matmul_mma");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_pick_config);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_geometry);
    tcase_add_test(tc, test_cublas_load);
    tcase_add_test(tc, test_sync_kernels);
    tcase_add_test(tc, test_wgmma_kernels);
    tcase_add_test(tc, test_default_no_spills);
    tcase_add_test(tc, test_tma_kernels);
    tcase_add_test(tc, test_tma_pick);
    tcase_add_test(tc, test_tma_geometry);
    tcase_add_test(tc, test_region_kernels);
    tcase_add_test(tc, test_region_refusals);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
