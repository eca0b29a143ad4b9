/* test_matmul_mma.c: the tensor-core matmul template (codegen/matmul_mma.c) on any machine: its
 * kernels for several tilings, dtypes, transposes and batch shapes, on sm_80 and sm_90a, must
 * assemble with ptxas and hold the instructions they are built around (mma.sync m16n8k16 with
 * ldmatrix, or wgmma; cp.async); the default tilings must not spill; bad tilings and ops the
 * template does not take are refused with a diagnostic. ptxas is looked up on PATH, then as
 * /usr/local/cuda/bin/ptxas; without it the ptxas checks fail unless TIR_ALLOW_NO_PTXAS=1. */
#include <check.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cublas.h"
#include "cuda.h"
#include "ir.h"
#include "matmul_mma.h"

static char ptxas[4096];
static bool have_ptxas;

static bool find_ptxas(void) {
    const char *path = getenv("PATH");
    for (const char *p = path; p && *p;) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > 0 && n < sizeof ptxas - 8) {
            snprintf(ptxas, sizeof ptxas, "%.*s/ptxas", (int)n, p);
            if (access(ptxas, X_OK) == 0) return true;
        }
        if (!e) break;
        p = e + 1;
    }
    snprintf(ptxas, sizeof ptxas, "/usr/local/cuda/bin/ptxas");
    return access(ptxas, X_OK) == 0;
}

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

/* Runs ptxas -v on ptx for arch; returns its exit status and its output in log. */
static int run_ptxas(const char *ptx, const char *arch, char *log, size_t logn) {
    char path[] = "/tmp/tir_mma_XXXXXX.ptx";
    int fd = mkstemps(path, 4);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    fputs(ptx, f);
    fclose(f);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' -arch=%s -v -o /dev/null '%s' 2>&1", ptxas, arch, path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(log, 1, logn - 1, p);
    log[n] = 0;
    int st = pclose(p);
    unlink(path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
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
    ck_assert_msg(strstr(k.ptx, "cp.async.cg.shared.global") != NULL, "%s: no cp.async", what);
    bool wg = cfg ? cfg->wgmma : strstr(k.ptx, "wgmma.mma_async") != NULL;
    if (wg) {
        ck_assert_msg(strstr(k.ptx, "wgmma.mma_async.sync.aligned.m64n") != NULL, "%s", what);
        ck_assert_msg(strstr(k.ptx, "fence.proxy.async") != NULL, "%s", what);
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
    for (int i = 3; i < k.nparams; i++) ck_assert_int_eq(k.params[i].kind, TIR_KP_DIM);
    ck_assert_int_gt(k.shared_bytes, 0);
    ck_assert_int_le(k.shared_bytes, 227 * 1024);
    ck_assert(k.block[0] == 128 || k.block[0] == 256 || k.block[0] == 64 || k.block[0] == 512);
    for (int i = 0; i < 3; i++) ck_assert_ptr_nonnull(k.grid[i]);
    if (have_ptxas) {
        int rc = run_ptxas(k.ptx, arch, log, logn);
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
    have_ptxas = find_ptxas();
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
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
