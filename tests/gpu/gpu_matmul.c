/* gpu_matmul.c: the tensor-core matmul kernel (codegen/matmul_mma.c) and the cuBLASLt executor
 * (runtime/cublas.c) on the GPU, against a CPU reference accumulating in f64 from the same
 * rounded inputs. Shapes put partial tiles on every edge (1x1x1, 7x13x5, 300x264x136,
 * 4095x1000x333), a long K (256x256x4096), every transpose combination, batch dims that
 * broadcast, symbolic sizes (one kernel run at several sizes) and constant ones; several tilings
 * (mma.sync, and wgmma on sm_90); bf16 and f16. Inputs are random and non-zero, outputs are
 * poisoned (NaN) before every run. The TMA kernel (sm_90a) on every size whose operand rows are
 * 16-byte multiples. Fused matmul regions (tir_codegen_matmul_region: bias + SiLU, residual +
 * scale + cast to f32, GELU, on the TMA, cp.async-wgmma and mma.sync kernels) against the
 * reference interpreter running the same region. An element passes when |out - ref| <= 1e-2 |ref| +
 * 2e-3 rms(ref) (bf16 output rounding is 2^-9 relative), and a case when every element passes
 * and ‖out - ref‖/‖ref‖ <= 1e-2; NaN never passes. One line per case, `N passed, M failed` last.
 * Links libtir only.
 *
 * usage: gpu_matmul [--filter TEXT] [--quick]   (other arguments are ignored)
 * exit 0 all passed, 1 a failure, 77 no CUDA driver or no tensor cores (ctest: skipped). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "cublas.h"
#include "cuda.h"
#include "gpu_harness.h"
#include "ir.h"
#include "matmul_mma.h"

static tir_context *ctx;
static tir_rt *rt;
/* every copy, launch and cuBLAS call goes on this stream: cuBLAS needs a real CUstream, and the
 * runtime's own stream (NULL in tir_rt_*) is not one we can hand it */
static tir_rt_stream stream;
static tir_cublas *cublas;
static const char *filter;
static bool quick;
static char arch[16];
static bool has_wgmma;



/* ---------------------------------------------------------------- problems */

#define MAXB 3

/* out[batch.., M, N] = a[abatch.., M, K] · b[bbatch.., K, N] (with transposes), batch dims
 * broadcast NumPy-style */
typedef struct problem {
    tir_dtype dt;
    int64_t M, N, K;
    bool ta, tb;
    int na, nb, no;                     /* batch ranks */
    int64_t ab[MAXB], bb[MAXB], ob[MAXB];
    int64_t nbatch;                     /* product of ob */
    uint16_t *a, *b;                    /* host inputs (storage bits) */
    double *ref;                        /* [nbatch, M, N] */
    double ref_rms;
    tir_dptr da, db, dout;
    size_t a_bytes, b_bytes, out_bytes;
} problem;

static double load16(tir_dtype dt, uint16_t h) {
    return dt == TIR_BF16 ? (double)tir_bf16_bits_to_f32(h) : (double)tir_f16_bits_to_f32(h);
}
static uint16_t store16(tir_dtype dt, double v) {
    return dt == TIR_BF16 ? tir_f32_to_bf16_bits((float)v) : tir_f32_to_f16_bits((float)v);
}

static int64_t prod(const int64_t *v, int n) {
    int64_t p = 1;
    for (int i = 0; i < n; i++) p *= v[i];
    return p;
}

/* flat batch index of an operand with batch dims xb (rank nx) for output batch index z */
static int64_t bcast_index(const problem *p, const int64_t *xb, int nx, int64_t z) {
    int64_t coords[MAXB], idx = 0, stride = 1;
    for (int i = p->no - 1; i >= 0; i--) {
        coords[i] = z % p->ob[i];
        z /= p->ob[i];
    }
    for (int j = nx - 1; j >= 0; j--) {
        int axis = j + p->no - nx;
        if (xb[j] != 1) idx += coords[axis] * stride;
        stride *= xb[j];
    }
    return idx;
}

static void reference(problem *p) {
    int64_t M = p->M, N = p->N, K = p->K;
    double *arow = malloc(sizeof *arow * (size_t)(K ? K : 1));
    double *bm = malloc(sizeof *bm * (size_t)(K * N > 0 ? K * N : 1));
    double ss = 0;
    for (int64_t z = 0; z < p->nbatch; z++) {
        const uint16_t *A = p->a + bcast_index(p, p->ab, p->na, z) * M * K;
        const uint16_t *B = p->b + bcast_index(p, p->bb, p->nb, z) * K * N;
        for (int64_t k = 0; k < K; k++)
            for (int64_t j = 0; j < N; j++)
                bm[k * N + j] = load16(p->dt, p->tb ? B[j * K + k] : B[k * N + j]);
        for (int64_t i = 0; i < M; i++) {
            double *o = p->ref + (z * M + i) * N;
            for (int64_t j = 0; j < N; j++) o[j] = 0;
            for (int64_t k = 0; k < K; k++) arow[k] = load16(p->dt, p->ta ? A[k * M + i] : A[i * K + k]);
            for (int64_t k = 0; k < K; k++) {
                double av = arow[k];
                const double *br = bm + k * N;
                for (int64_t j = 0; j < N; j++) o[j] += av * br[j];
            }
            for (int64_t j = 0; j < N; j++) ss += o[j] * o[j];
        }
    }
    p->ref_rms = sqrt(ss / (double)(p->nbatch * M * N > 0 ? p->nbatch * M * N : 1));
    free(arow);
    free(bm);
}

static bool problem_init(problem *p, tir_diag *d) {
    p->no = p->na > p->nb ? p->na : p->nb;
    for (int i = 0; i < p->no; i++) {
        int ia = i - (p->no - p->na), ib = i - (p->no - p->nb);
        int64_t x = ia >= 0 ? p->ab[ia] : 1, y = ib >= 0 ? p->bb[ib] : 1;
        p->ob[i] = x == 1 ? y : x;
    }
    p->nbatch = prod(p->ob, p->no);
    int64_t na = prod(p->ab, p->na) * p->M * p->K, nb = prod(p->bb, p->nb) * p->K * p->N;
    int64_t no = p->nbatch * p->M * p->N;
    p->a = malloc(sizeof *p->a * (size_t)(na ? na : 1));
    p->b = malloc(sizeof *p->b * (size_t)(nb ? nb : 1));
    p->ref = malloc(sizeof *p->ref * (size_t)(no ? no : 1));
    if (!p->a || !p->b || !p->ref) return false;
    for (int64_t i = 0; i < na; i++) {
        double v = 0.05 + 0.95 * gh_urand();
        p->a[i] = store16(p->dt, gh_urand() < 0.5 ? -v : v);
    }
    for (int64_t i = 0; i < nb; i++) {
        double v = 0.05 + 0.95 * gh_urand();
        p->b[i] = store16(p->dt, gh_urand() < 0.5 ? -v : v);
    }
    reference(p);
    p->a_bytes = (size_t)(na ? na : 1) * 2;
    p->b_bytes = (size_t)(nb ? nb : 1) * 2;
    p->out_bytes = (size_t)(no ? no : 1) * 2;
    if (tir_rt_alloc(rt, p->a_bytes, &p->da, d) != TIR_OK) return false;
    if (tir_rt_alloc(rt, p->b_bytes, &p->db, d) != TIR_OK) return false;
    if (tir_rt_alloc(rt, p->out_bytes, &p->dout, d) != TIR_OK) return false;
    if (tir_rt_htod(rt, p->da, p->a, (size_t)na * 2, stream, d) != TIR_OK) return false;
    if (tir_rt_htod(rt, p->db, p->b, (size_t)nb * 2, stream, d) != TIR_OK) return false;
    return tir_rt_sync(rt, stream, d) == TIR_OK;
}

static void problem_free(problem *p) {
    if (p->da) tir_rt_free(rt, p->da, p->a_bytes);
    if (p->db) tir_rt_free(rt, p->db, p->b_bytes);
    if (p->dout) tir_rt_free(rt, p->dout, p->out_bytes);
    free(p->a);
    free(p->b);
    free(p->ref);
}

/* compares the device output with ref (after `extra` is applied to ref: bias, relu, gelu) */
static bool check_output(problem *p, const char *what, double (*extra)(double, int64_t, const void *),
                         const void *ex) {
    int64_t n = p->nbatch * p->M * p->N;
    uint16_t *out = malloc(p->out_bytes);
    tir_diag d;
    if (!out || tir_rt_dtoh(rt, out, p->dout, p->out_bytes, stream, &d) != TIR_OK ||
        tir_rt_sync(rt, stream, &d) != TIR_OK) {
        gh_report(false, "", "%s: download: %s", what, out ? d.msg : "out of memory");
        free(out);
        return false;
    }
    double num = 0, den = 0, worst = 0;
    int64_t bad = 0, nan = 0, first = -1;
    for (int64_t i = 0; i < n; i++) {
        double r = p->ref[i];
        if (extra) r = extra(r, i % p->N, ex);
        double o = load16(p->dt, out[i]);
        if (isnan(o) || isinf(o)) {
            nan++;
            if (first < 0) first = i;
            continue;
        }
        double e = fabs(o - r);
        num += e * e;
        den += r * r;
        double tol = 1e-2 * fabs(r) + 2e-3 * p->ref_rms + 1e-6;
        if (e > tol) {
            bad++;
            if (first < 0) first = i;
        }
        if (e / (p->ref_rms + 1e-30) > worst) worst = e / (p->ref_rms + 1e-30);
    }
    double rel = den > 0 ? sqrt(num / den) : sqrt(num);
    bool ok = bad == 0 && nan == 0 && rel <= 1e-2;
    char where[128] = "";
    if (first >= 0) {
        int64_t z = first / (p->M * p->N), i = first / p->N % p->M, j = first % p->N;
        double r = p->ref[first];
        if (extra) r = extra(r, j, ex);
        snprintf(where, sizeof where, "; first bad at batch %lld row %lld col %lld: %g vs %g",
                 (long long)z, (long long)i, (long long)j, load16(p->dt, out[first]), r);
    }
    gh_report(ok, "", "%s: rel %.2e, max err %.2e rms, %lld bad, %lld nan%s", what, rel, worst,
           (long long)bad, (long long)nan, where);
    free(out);
    return ok;
}

/* ---------------------------------------------------------------- the mma kernel */

static void dims_text(char *buf, size_t n, const int64_t *batch, int nbat, const char *r,
                      const char *c) {
    int len = snprintf(buf, n, "[");
    for (int i = 0; i < nbat; i++) len += snprintf(buf + len, n - (size_t)len, "%lld, ", (long long)batch[i]);
    snprintf(buf + len, n - (size_t)len, "%s, %s]", r, c);
}

/* the matmul op of a one-op module for p's dtype, transposes and batch dims, with M, N, K as
 * symbols or as p's constants */
static tir_module *build_module(const problem *p, bool symbolic, tir_op **op) {
    char m[32] = "M", nn[32] = "N", k[32] = "K";
    if (!symbolic) {
        snprintf(m, sizeof m, "%lld", (long long)p->M);
        snprintf(nn, sizeof nn, "%lld", (long long)p->N);
        snprintf(k, sizeof k, "%lld", (long long)p->K);
    }
    char sa[128], sb[128], so[128], src[1024];
    dims_text(sa, sizeof sa, p->ab, p->na, p->ta ? k : m, p->ta ? m : k);
    dims_text(sb, sizeof sb, p->bb, p->nb, p->tb ? nn : k, p->tb ? k : nn);
    dims_text(so, sizeof so, p->ob, p->no, m, nn);
    const char *t = tir_dtype_name(p->dt);
    snprintf(src, sizeof src,
             "func @f(%%a: %s%s, %%b: %s%s) -> %s%s {\n"
             "  %%c = matmul(%%a, %%b, transpose_a=%s, transpose_b=%s)\n"
             "  return %%c\n}\n",
             t, sa, t, sb, t, so, p->ta ? "true" : "false", p->tb ? "true" : "false");
    tir_module *mod = NULL;
    tir_diag d;
    if (tir_module_parse(ctx, src, "gpu_matmul.tir", &mod, &d) != TIR_OK) {
        fprintf(stderr, "gpu_matmul: %s\n%s", d.msg, src);
        return NULL;
    }
    *op = mod->funcs[0]->ops[0];
    return mod;
}

typedef struct named_cfg {
    const char *name;
    tir_mma_config c;
    bool use_default; /* tir_mma_pick_config_for */
} named_cfg;

static const named_cfg configs[] = {
    {"default", {0}, true},
    {"sync128x128x32", {128, 128, 32, 2, 4, 4, 8, false, false}, false},
    {"sync64x64x32", {64, 64, 32, 2, 2, 3, 8, false, false}, false},
    {"sync128x256x32", {128, 256, 32, 2, 4, 3, 8, false, false}, false},
    {"sync64x128x16", {64, 128, 16, 1, 4, 2, 1, false, false}, false},
    {"wg128x256x64", {128, 256, 64, 2, 1, 4, 8, true, false}, false},
    {"wg128x128x64", {128, 128, 64, 2, 1, 4, 8, true, false}, false},
    {"wg128x128x64_1x2", {128, 128, 64, 1, 2, 3, 8, true, false}, false},
    {"wg64x128x128", {64, 128, 128, 1, 1, 3, 8, true, false}, false},
    /* the TMA kernels need rows of 16-byte multiples: built with constant sizes, on the sizes
     * that qualify */
    {"tma128x256x64", {128, 256, 64, 2, 1, 4, 8, true, true}, false},
    {"tma128x128x64", {128, 128, 64, 2, 1, 5, 8, true, true}, false},
    {"tma64x256x64", {64, 256, 64, 1, 1, 4, 8, true, true}, false},
    {"tma128x256x64_1x2", {128, 256, 64, 1, 2, 4, 4, true, true}, false},
};
#define NCFG (int)(sizeof configs / sizeof *configs)

/* Generates and loads the kernel for p's op (symbolic sizes or p's constants) with cfg. */
typedef struct loaded {
    tir_module *mod;
    tir_kernel k;
    tir_rt_kernel rk;
    bool ok;
} loaded;

static void load_kernel(const problem *p, bool symbolic, const named_cfg *nc, loaded *l,
                        const char *what) {
    memset(l, 0, sizeof *l);
    tir_op *op;
    l->mod = build_module(p, symbolic, &op);
    if (!l->mod) {
        gh_report(false, "", "%s: module", what);
        return;
    }
    tir_codegen_options o = {arch, 2};
    tir_diag d;
    static int id;
    if (tir_codegen_matmul_mma(ctx, op, id++, &o, nc->use_default ? NULL : &nc->c, &l->k, &d) != TIR_OK) {
        gh_report(false, "", "%s: codegen: %s", what, d.msg);
        return;
    }
    if (tir_rt_load(rt, l->k.ptx, l->k.name, l->k.shared_bytes, &l->rk, &d) != TIR_OK) {
        gh_report(false, "", "%s: load: %s", what, d.msg);
        return;
    }
    l->ok = true;
}

static void unload_kernel(loaded *l) {
    if (l->rk.module) tir_rt_unload(rt, &l->rk);
    tir_kernel_release(&l->k);
    if (l->mod) tir_module_free(l->mod);
}

static bool run_kernel(problem *p, loaded *l, const char *what) {
    tir_bindings b;
    memset(&b, 0, sizeof b);
    tir_bindings_set(&b, "M", p->M);
    tir_bindings_set(&b, "N", p->N);
    tir_bindings_set(&b, "K", p->K);
    tir_diag d;
    uint64_t bufs[3] = {p->da, p->db, p->dout};
    int64_t vals[16];
    void *params[16];
    _Alignas(64) unsigned char maps[2][128]; /* TIR_KP_TMAP parameters */
    int nmaps = 0;
    if (l->k.nparams > 16) {
        gh_report(false, "", "%s: %d parameters", what, l->k.nparams);
        return false;
    }
    for (int i = 0; i < l->k.nparams; i++) {
        const tir_kparam *kp = &l->k.params[i];
        if (kp->kind == TIR_KP_BUFFER) {
            params[i] = &bufs[kp->index];
        } else if (kp->kind == TIR_KP_TMAP) {
            const tir_kparam_tmap *t = &kp->tmap;
            int64_t dims[5], strides[5] = {1, 1, 1, 1, 1};
            bool ok = nmaps < 2;
            for (int q = 0; ok && q < t->rank; q++)
                ok = tir_dim_eval(t->dims[q], &b, &dims[q]) == TIR_OK &&
                     (q == 0 || tir_dim_eval(t->strides[q], &b, &strides[q]) == TIR_OK);
            if (!ok || tir_rt_tensor_map(rt, maps[nmaps], t->dtype, t->rank, bufs[kp->index], dims,
                                         strides, t->box, t->swizzle, &d) != TIR_OK) {
                gh_report(false, "", "%s: tensor map %d: %s", what, i, ok ? d.msg : "does not evaluate");
                return false;
            }
            params[i] = maps[nmaps++];
        } else {
            if (tir_dim_eval(kp->dim, &b, &vals[i]) != TIR_OK) {
                gh_report(false, "", "%s: parameter %d does not evaluate", what, i);
                return false;
            }
            params[i] = &vals[i];
        }
    }
    unsigned grid[3];
    for (int i = 0; i < 3; i++) {
        int64_t v;
        if (tir_dim_eval(l->k.grid[i], &b, &v) != TIR_OK) {
            gh_report(false, "", "%s: grid does not evaluate", what);
            return false;
        }
        if (i == 0 && l->k.persistent > 0 && v > (int64_t)l->k.persistent * tir_rt_sms(rt))
            v = (int64_t)l->k.persistent * tir_rt_sms(rt);
        grid[i] = v < 1 ? 1 : (unsigned)v;
    }
    if (tir_rt_memset8(rt, p->dout, 0xFF, p->out_bytes, stream, &d) != TIR_OK ||
        tir_rt_launch(rt, &l->rk, l->k.name, grid, l->k.block, l->k.shared_bytes, params, stream, &d) != TIR_OK ||
        tir_rt_sync(rt, stream, &d) != TIR_OK) {
        gh_report(false, "", "%s: %s", what, d.msg);
        return false;
    }
    return check_output(p, what, NULL, NULL);
}

static bool selected(const char *what) { return !filter || strstr(what, filter); }

static void describe(const problem *p, const char *cfg, bool symbolic, char *buf, size_t n) {
    char ab[64] = "", bb[64] = "";
    int la = 0, lb = 0;
    for (int i = 0; i < p->na; i++) la += snprintf(ab + la, sizeof ab - (size_t)la, "%lldx", (long long)p->ab[i]);
    for (int i = 0; i < p->nb; i++) lb += snprintf(bb + lb, sizeof bb - (size_t)lb, "%lldx", (long long)p->bb[i]);
    snprintf(buf, n, "mma %s %s[%s%lldx%lld]%s x [%s%lldx%lld]%s %s", cfg, tir_dtype_name(p->dt), ab,
             (long long)p->M, (long long)p->K, p->ta ? "T" : "", bb, (long long)p->K,
             (long long)p->N, p->tb ? "T" : "", symbolic ? "symbolic" : "constant");
}

/* ---------------------------------------------------------------- cuBLAS */

static tir_dptr workspace;

static void cublas_case(problem *p, tir_dptr bias, tir_cublas_epilogue epi,
                        double (*extra)(double, int64_t, const void *), const void *ex,
                        const char *tag) {
    char what[256];
    snprintf(what, sizeof what, "cublas %s %s %lldx%lldx%lld ta=%d tb=%d batch=%lld", tag,
             tir_dtype_name(p->dt), (long long)p->M, (long long)p->N, (long long)p->K, p->ta, p->tb,
             (long long)p->nbatch);
    if (!selected(what)) return;
    if (!cublas) {
        gh_report(false, "", "%s: %s", what, tir_cublas_describe(NULL));
        return;
    }
    /* strided batches: one operand may repeat (stride 0); deeper broadcasts are not cuBLAS's */
    tir_cublas_gemm g = {.dtype = p->dt, .m = p->M, .n = p->N, .k = p->K, .batch = p->nbatch,
                         .trans_a = p->ta, .trans_b = p->tb, .a = p->da, .b = p->db, .c = p->dout,
                         .stride_a = prod(p->ab, p->na) > 1 ? p->M * p->K : 0,
                         .stride_b = prod(p->bb, p->nb) > 1 ? p->K * p->N : 0,
                         .bias = bias, .epilogue = epi, .workspace = workspace,
                         .workspace_bytes = TIR_CUBLAS_WORKSPACE};
    tir_diag d;
    if (tir_rt_memset8(rt, p->dout, 0xFF, p->out_bytes, stream, &d) != TIR_OK ||
        tir_cublas_matmul(cublas, stream, &g, &d) != TIR_OK || tir_rt_sync(rt, stream, &d) != TIR_OK) {
        gh_report(false, "", "%s: %s", what, d.msg);
        return;
    }
    check_output(p, what, extra, ex);
}

typedef struct bias_ex {
    const double *bias;
    int act; /* 0 none, 1 relu, 2 gelu (tanh) */
} bias_ex;

static double apply_bias(double r, int64_t col, const void *ex) {
    const bias_ex *b = ex;
    r += b->bias ? b->bias[col] : 0;
    if (b->act == 1) r = r > 0 ? r : 0;
    if (b->act == 2) r = 0.5 * r * (1 + tanh(0.7978845608028654 * (r + 0.044715 * r * r * r)));
    return r;
}

/* ---------------------------------------------------------------- the suite */

typedef struct shape {
    int64_t M, N, K;
} shape;

/* every config on every size of `sizes` (one symbolic kernel per config, run at each size) for
 * one dtype / transpose / batch layout; plus cuBLAS on each */
static void suite(tir_dtype dt, bool ta, bool tb, int na, const int64_t *ab, int nb,
                  const int64_t *bb, const shape *sizes, int nsizes, const char *const *cfgs,
                  bool constant_too, bool with_cublas) {
    problem *ps = calloc((size_t)nsizes, sizeof *ps);
    tir_diag d;
    for (int s = 0; s < nsizes; s++) {
        problem *p = &ps[s];
        p->dt = dt;
        p->M = sizes[s].M, p->N = sizes[s].N, p->K = sizes[s].K;
        p->ta = ta, p->tb = tb, p->na = na, p->nb = nb;
        memcpy(p->ab, ab, sizeof *ab * (size_t)na);
        memcpy(p->bb, bb, sizeof *bb * (size_t)nb);
        if (!problem_init(p, &d)) {
            gh_report(false, "", "setup %lldx%lldx%lld: %s", (long long)p->M, (long long)p->N,
                   (long long)p->K, d.msg);
            goto out;
        }
    }
    for (int c = 0; cfgs[c]; c++) {
        const named_cfg *nc = NULL;
        for (int i = 0; i < NCFG; i++)
            if (strcmp(configs[i].name, cfgs[c]) == 0) nc = &configs[i];
        if (!nc || (nc->c.wgmma && !has_wgmma)) continue;
        char what[256];
        describe(&ps[0], nc->name, true, what, sizeof what);
        bool any = false;
        for (int s = 0; s < nsizes; s++) {
            describe(&ps[s], nc->name, true, what, sizeof what);
            any |= selected(what);
        }
        if (!any) continue;
        loaded l;
        if (nc->c.tma) {
            for (int s = 0; s < nsizes; s++) {
                describe(&ps[s], nc->name, false, what, sizeof what);
                tir_op *op;
                tir_module *mod = build_module(&ps[s], false, &op);
                bool ok = mod && tir_matmul_tma_ok(op, arch);
                if (mod) tir_module_free(mod);
                if (!ok || !selected(what)) continue;
                load_kernel(&ps[s], false, nc, &l, what);
                if (l.ok) run_kernel(&ps[s], &l, what);
                unload_kernel(&l);
            }
            continue;
        }
        load_kernel(&ps[0], true, nc, &l, what);
        if (l.ok)
            for (int s = 0; s < nsizes; s++) {
                describe(&ps[s], nc->name, true, what, sizeof what);
                if (selected(what)) run_kernel(&ps[s], &l, what);
            }
        unload_kernel(&l);
    }
    if (constant_too)
        for (int s = 0; s < nsizes; s++) {
            char what[256];
            describe(&ps[s], "default", false, what, sizeof what);
            if (!selected(what)) continue;
            loaded l;
            load_kernel(&ps[s], false, &configs[0], &l, what);
            if (l.ok) run_kernel(&ps[s], &l, what);
            unload_kernel(&l);
        }
    if (with_cublas)
        for (int s = 0; s < nsizes; s++) cublas_case(&ps[s], 0, TIR_CUBLAS_EPI_NONE, NULL, NULL, "plain");
out:
    for (int s = 0; s < nsizes; s++) problem_free(&ps[s]);
    free(ps);
}

static void cublas_epilogues(void) {
    problem p = {.dt = TIR_BF16, .M = 300, .N = 264, .K = 136};
    tir_diag d;
    if (!problem_init(&p, &d)) {
        gh_report(false, "", "cublas epilogue setup: %s", d.msg);
        problem_free(&p);
        return;
    }
    uint16_t hb[264];
    double bias[264];
    for (int i = 0; i < 264; i++) {
        hb[i] = store16(p.dt, (gh_urand() - 0.5) * 8);
        bias[i] = load16(p.dt, hb[i]);
    }
    tir_dptr db = 0;
    if (tir_rt_alloc(rt, sizeof hb, &db, &d) != TIR_OK ||
        tir_rt_htod(rt, db, hb, sizeof hb, stream, &d) != TIR_OK || tir_rt_sync(rt, stream, &d) != TIR_OK) {
        gh_report(false, "", "cublas epilogue bias upload: %s", d.msg);
    } else {
        bias_ex e0 = {bias, 0}, e1 = {bias, 1}, e2 = {bias, 2}, e3 = {NULL, 1};
        cublas_case(&p, db, TIR_CUBLAS_EPI_NONE, apply_bias, &e0, "bias");
        cublas_case(&p, db, TIR_CUBLAS_EPI_RELU, apply_bias, &e1, "bias+relu");
        cublas_case(&p, db, TIR_CUBLAS_EPI_GELU, apply_bias, &e2, "bias+gelu");
        cublas_case(&p, 0, TIR_CUBLAS_EPI_RELU, apply_bias, &e3, "relu");
    }
    if (db) tir_rt_free(rt, db, sizeof hb);
    problem_free(&p);
}

/* ---------------------------------------------------------------- fused regions */

/* The region of src's @f (its first op) on the GPU against tir_interpret, inputs uniform in
 * [-1, 1) (rounded to their dtypes), the output poisoned first. bind: "M=300,N=264,..." for
 * symbolic sizes (the arguments' shapes are given by dims). */
typedef struct region_case {
    const char *name, *src;
    int nargs;
    int rank[4];
    int64_t dims[4][4];
    const char *syms; /* name=value pairs for the kernel's symbols, or NULL */
} region_case;

static void run_region(const region_case *rc) {
    char what[256];
    snprintf(what, sizeof what, "region %s (%s)", rc->name, arch);
    if (!selected(what)) return;
    tir_module *m = NULL;
    tir_diag d;
    tir_tensor *args[4] = {0}, *ref = NULL;
    tir_dptr dev[5] = {0};
    size_t bytes[5] = {0};
    tir_kernel k;
    tir_rt_kernel rk = {0};
    memset(&k, 0, sizeof k);
    void *host = NULL;
    if (tir_module_parse(ctx, rc->src, "region.tir", &m, &d) != TIR_OK) {
        gh_report(false, "", "%s: parse: %s", what, d.msg);
        return;
    }
    const tir_op *fop = m->funcs[0]->ops[0];
    bool ok = true;
    for (int i = 0; ok && i < rc->nargs; i++) {
        tir_dtype dt = m->funcs[0]->params[i]->type.dtype;
        args[i] = tir_tensor_new(dt, rc->rank[i], rc->dims[i]);
        ok = args[i] != NULL;
        for (int64_t j = 0; ok && j < tir_tensor_numel(args[i]); j++) tir_tensor_set(args[i], j, gh_urand() * 2 - 1);
    }
    if (!ok || tir_interpret(m, "f", rc->nargs, args, 1, &ref, &d) != TIR_OK) {
        gh_report(false, "", "%s: interpreter: %s", what, ok ? d.msg : "out of memory");
        goto out;
    }
    tir_codegen_options o = {arch, 2};
    static int id = 1000;
    if (tir_codegen_matmul_region(ctx, fop, id++, &o, &k, &d) != TIR_OK ||
        tir_rt_load(rt, k.ptx, k.name, k.shared_bytes, &rk, &d) != TIR_OK) {
        gh_report(false, "", "%s: %s", what, d.msg);
        goto out;
    }
    int nb = rc->nargs + 1;
    for (int i = 0; i < nb; i++) {
        tir_tensor *t = i < rc->nargs ? args[i] : ref;
        bytes[i] = tir_tensor_nbytes(t);
        if (tir_rt_alloc(rt, bytes[i] ? bytes[i] : 1, &dev[i], &d) != TIR_OK ||
            (i < rc->nargs && tir_rt_htod(rt, dev[i], tir_tensor_data(t), bytes[i], stream, &d) != TIR_OK)) {
            gh_report(false, "", "%s: upload: %s", what, d.msg);
            goto out;
        }
    }
    tir_bindings b;
    memset(&b, 0, sizeof b);
    char names[8][16]; /* the bindings keep the names' pointers */
    int nnames = 0;
    for (const char *p = rc->syms; p && *p && nnames < 8;) {
        char *name = names[nnames++];
        long long v;
        int used = 0;
        if (sscanf(p, "%15[A-Za-z_]=%lld%n", name, &v, &used) != 2) break;
        tir_bindings_set(&b, name, v);
        p += used;
        if (*p == ',') p++;
    }
    _Alignas(64) unsigned char maps[2][128];
    int64_t vals[32];
    void *params[32];
    int nmaps = 0;
    if (k.nparams > 32) {
        gh_report(false, "", "%s: %d parameters", what, k.nparams);
        goto out;
    }
    for (int i = 0; i < k.nparams; i++) {
        const tir_kparam *kp = &k.params[i];
        if (kp->kind == TIR_KP_BUFFER) {
            params[i] = &dev[kp->index];
        } else if (kp->kind == TIR_KP_TMAP) {
            const tir_kparam_tmap *t = &kp->tmap;
            int64_t dims[5], strides[5] = {1, 1, 1, 1, 1};
            for (int q = 0; ok && q < t->rank; q++)
                ok = tir_dim_eval(t->dims[q], &b, &dims[q]) == TIR_OK &&
                     (q == 0 || tir_dim_eval(t->strides[q], &b, &strides[q]) == TIR_OK);
            if (!ok || nmaps == 2 ||
                tir_rt_tensor_map(rt, maps[nmaps], t->dtype, t->rank, dev[kp->index], dims, strides,
                                  t->box, t->swizzle, &d) != TIR_OK) {
                gh_report(false, "", "%s: tensor map: %s", what, ok ? d.msg : "does not evaluate");
                goto out;
            }
            params[i] = maps[nmaps++];
        } else if (tir_dim_eval(kp->dim, &b, &vals[i]) == TIR_OK) {
            params[i] = &vals[i];
        } else {
            gh_report(false, "", "%s: parameter %d does not evaluate", what, i);
            goto out;
        }
    }
    unsigned grid[3];
    for (int i = 0; i < 3; i++) {
        int64_t v = 1;
        if (tir_dim_eval(k.grid[i], &b, &v) != TIR_OK) {
            gh_report(false, "", "%s: grid does not evaluate", what);
            goto out;
        }
        if (i == 0 && k.persistent > 0 && v > (int64_t)k.persistent * tir_rt_sms(rt))
            v = (int64_t)k.persistent * tir_rt_sms(rt);
        grid[i] = v < 1 ? 1 : (unsigned)v;
    }
    host = malloc(bytes[nb - 1]);
    if (!host || tir_rt_memset8(rt, dev[nb - 1], 0xFF, bytes[nb - 1], stream, &d) != TIR_OK ||
        tir_rt_launch(rt, &rk, k.name, grid, k.block, k.shared_bytes, params, stream, &d) != TIR_OK ||
        tir_rt_dtoh(rt, host, dev[nb - 1], bytes[nb - 1], stream, &d) != TIR_OK ||
        tir_rt_sync(rt, stream, &d) != TIR_OK) {
        gh_report(false, "", "%s: run: %s", what, host ? d.msg : "out of memory");
        goto out;
    }
    {
        /* the GPU sums in another order than the interpreter's f64: the matmul's result may
         * round to the neighbouring bf16 before the epilogue, so elements are compared with
         * the bf16 tolerance of the suite (relative, plus a little of the output's rms) */
        int64_t n = tir_tensor_numel(ref), bad = 0, nan = 0, first = -1;
        double ss = 0, num = 0;
        for (int64_t i = 0; i < n; i++) ss += tir_tensor_get(ref, i) * tir_tensor_get(ref, i);
        double rms = sqrt(ss / (double)(n ? n : 1));
        tir_dtype odt = tir_tensor_dtype(ref);
        for (int64_t i = 0; i < n; i++) {
            double r = tir_tensor_get(ref, i), x;
            if (odt == TIR_F32) x = ((float *)host)[i];
            else x = load16(odt, ((uint16_t *)host)[i]);
            if (isnan(x)) {
                nan++;
                if (first < 0) first = i;
                continue;
            }
            double e = fabs(x - r);
            num += e * e;
            if (e > 1e-2 * fabs(r) + 4e-3 * rms) {
                if (first < 0) first = i;
                bad++;
            }
        }
        double rel = ss > 0 ? sqrt(num / ss) : sqrt(num);
        gh_report(bad == 0 && nan == 0 && rel <= 1e-2 && rms > 0, "", "%s: rel %.2e, %lld bad, %lld nan (first %lld), %s kernel",
               what, rel, (long long)bad, (long long)nan, (long long)first,
               strstr(k.ptx, "cp.async.bulk.tensor") ? "TMA" : strstr(k.ptx, "wgmma") ? "wgmma" : "mma.sync");
    }
out:
    free(host);
    if (rk.module) tir_rt_unload(rt, &rk);
    tir_kernel_release(&k);
    for (int i = 0; i < 5; i++)
        if (dev[i]) tir_rt_free(rt, dev[i], bytes[i] ? bytes[i] : 1);
    for (int i = 0; i < 4; i++) tir_tensor_free(args[i]);
    tir_tensor_free(ref);
    tir_module_free(m);
}

static void region_cases(void) {
    static const region_case cases[] = {
        {"linear+bias+silu 300x264x136", /* ragged M, N, K edges; small: mma.sync by default */
         "func @f(%x: bf16[300, 136], %w: bf16[264, 136], %b: bf16[264]) -> bf16[300, 264] {\n"
         "  %y = fused(%x, %w, %b) kernel=\"k\" schedule={kind=\"matmul\"} {\n"
         "    %c = matmul(%x, %w, transpose_b=true)\n"
         "    yield silu(add(%c, %b))\n  }\n  return %y\n}\n",
         3, {2, 2, 1}, {{300, 136}, {264, 136}, {264}}, NULL},
        {"linear+bias+silu TMA",
         "func @f(%x: bf16[300, 136], %w: bf16[264, 136], %b: bf16[264]) -> bf16[300, 264] {\n"
         "  %y = fused(%x, %w, %b) kernel=\"k\" schedule={kind=\"matmul\", bm=128, bn=256, "
         "bk=64, warps_m=2, warps_n=1, stages=4, wgmma=true} {\n"
         "    %c = matmul(%x, %w, transpose_b=true)\n"
         "    yield silu(add(%c, %b))\n  }\n  return %y\n}\n",
         3, {2, 2, 1}, {{300, 136}, {264, 136}, {264}}, NULL},
        {"linear+bias+silu cp.async wgmma",
         "func @f(%x: bf16[300, 136], %w: bf16[264, 136], %b: bf16[264]) -> bf16[300, 264] {\n"
         "  %y = fused(%x, %w, %b) kernel=\"k\" schedule={kind=\"matmul\", tma=false, bm=128, "
         "bn=128, bk=64, warps_m=2, warps_n=1, stages=4, wgmma=true} {\n"
         "    %c = matmul(%x, %w, transpose_b=true)\n"
         "    yield silu(add(%c, %b))\n  }\n  return %y\n}\n",
         3, {2, 2, 1}, {{300, 136}, {264, 136}, {264}}, NULL},
        {"residual*0.5 cast f32 batched symbolic",
         "func @f(%r: bf16[B, M, N], %a: bf16[B, M, K], %w: bf16[K, N]) -> f32[B, M, N] {\n"
         "  %y = fused(%r, %a, %w) kernel=\"k\" schedule={kind=\"matmul\"} {\n"
         "    %c = matmul(%a, %w)\n"
         "    %s = full(0.5, shape=[], dtype=bf16)\n"
         "    yield cast(add(mul(%c, %s), %r), dtype=f32)\n  }\n  return %y\n}\n",
         3, {3, 3, 2}, {{2, 77, 130}, {2, 77, 72}, {72, 130}}, "B=2,M=77,N=130,K=72"},
        {"residual cast f32 TMA 2x256x384x512",
         "func @f(%r: bf16[2, 256, 384], %a: bf16[2, 256, 512], %w: bf16[512, 384]) -> f32[2, 256, 384] {\n"
         "  %y = fused(%r, %a, %w) kernel=\"k\" schedule={kind=\"matmul\", bm=128, bn=256, bk=64, "
         "warps_m=2, warps_n=1, stages=4, wgmma=true} {\n"
         "    %c = matmul(%a, %w)\n"
         "    yield cast(add(%c, %r), dtype=f32)\n  }\n  return %y\n}\n",
         3, {3, 3, 2}, {{2, 256, 384}, {2, 256, 512}, {512, 384}}, NULL},
        {"gelu(tanh)*t f16 mma.sync",
         "func @f(%a: f16[M, K], %w: f16[K, N], %t: f16[]) -> f16[M, N] {\n"
         "  %y = fused(%a, %w, %t) kernel=\"k\" schedule={kind=\"matmul\", bm=64, bn=64, bk=32, "
         "warps_m=2, warps_n=2, stages=3, group_m=8, wgmma=false} {\n"
         "    %c = matmul(%a, %w)\n"
         "    yield gelu(mul(%c, %t), approximate=\"tanh\")\n  }\n  return %y\n}\n",
         3, {2, 2, 0}, {{129, 200}, {200, 70}, {0}}, "M=129,N=70,K=200"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_region(&cases[i]);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) filter = argv[++i];
        else if (strcmp(argv[i], "--quick") == 0) quick = true;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    gh_rng = 0x2545F4914F6CDD1Dull;
    gh_label_width = 0;
    ctx = tir_context_create();
    tir_diag d;
    if (tir_rt_get(ctx, &rt, &d) != TIR_OK) {
        printf("gpu_matmul: skipped: %s\n", d.status == TIR_ERR_NO_DRIVER ? "no driver" : d.msg);
        tir_context_destroy(ctx);
        return d.status == TIR_ERR_NO_DRIVER ? 77 : 1;
    }
    if (tir_rt_stream_new(rt, &stream, &d) != TIR_OK) {
        printf("gpu_matmul: stream: %s\n", d.msg);
        tir_context_destroy(ctx);
        return 1;
    }
    int cc = tir_rt_cc(rt);
    char desc[256];
    tir_rt_describe(rt, desc, sizeof desc);
    if (cc < 80) {
        printf("gpu_matmul: skipped: %s has no bf16 tensor cores (sm_80+)\n", desc);
        tir_rt_stream_free(rt, stream);
        tir_context_destroy(ctx);
        return 77;
    }
    has_wgmma = cc == 90;
    snprintf(arch, sizeof arch, "%s", cc == 90 ? "sm_90a" : cc >= 90 ? "sm_90" : "sm_80");
    if (tir_cublas_create(rt, &cublas, &d) != TIR_OK) printf("note: cuBLASLt: %s\n", d.msg);
    if (cublas && tir_rt_alloc(rt, TIR_CUBLAS_WORKSPACE, &workspace, &d) != TIR_OK) workspace = 0;
    printf("gpu_matmul: %s, kernels for %s, %s\n", desc, arch, tir_cublas_describe(cublas));
    clock_t t0 = clock();

    static const char *all[] = {"default", "sync128x128x32", "sync64x64x32", "sync128x256x32",
                                "sync64x128x16", "wg128x256x64", "wg128x128x64",
                                "wg128x128x64_1x2", "wg64x128x128", "tma128x256x64",
                                "tma128x128x64", "tma64x256x64", "tma128x256x64_1x2", NULL};
    static const char *few[] = {"default", "sync128x128x32", "sync64x64x32", "wg128x256x64",
                                "wg128x128x64", "tma128x256x64", NULL};
    static const char *two[] = {"default", "sync64x64x32", "wg128x128x64", "tma128x256x64", NULL};
    const char *const *main_cfgs = quick ? two : all;
    const shape odd[] = {{1, 1, 1}, {7, 13, 5}, {128, 128, 128}, {300, 264, 136}, {4095, 1000, 333}};
    const int nodd = quick ? 4 : 5;
    int64_t none[1] = {0};
    for (int t = 0; t < 4; t++)
        suite(TIR_BF16, t & 1, t >> 1, 0, none, 0, none, odd, nodd, main_cfgs, t == 0, true);
    const shape f16s[] = {{7, 13, 5}, {300, 264, 136}, {1000, 1000, 1000}};
    suite(TIR_F16, false, false, 0, none, 0, none, f16s, 3, few, false, true);
    suite(TIR_F16, true, true, 0, none, 0, none, f16s, 2, two, false, false);
    /* long K: the pipeline wraps around its stages many times */
    const shape longk[] = {{256, 256, 4096}, {1024, 2048, 512}, {1000, 2000, 1000}};
    suite(TIR_BF16, false, false, 0, none, 0, none, longk, 3, quick ? two : all, false, true);
    suite(TIR_BF16, false, true, 0, none, 0, none, longk, 3, two, false, true);
    suite(TIR_BF16, true, false, 0, none, 0, none, longk, 3, two, false, false);
    suite(TIR_F16, true, true, 0, none, 0, none, longk, 3, two, false, false);
    /* batches: a[2, 1] with b[3] broadcast to [2, 3]; b shared by a batch of a; a shared */
    const shape bsz[] = {{77, 130, 72}, {64, 128, 64}};
    int64_t a21[2] = {2, 1}, b3[1] = {3}, a4[1] = {4}, b4[1] = {4};
    for (int t = 0; t < 4; t += 3) {
        suite(TIR_BF16, t & 1, t >> 1, 2, a21, 1, b3, bsz, 2, few, false, false);
        suite(TIR_BF16, t & 1, t >> 1, 1, a4, 0, none, bsz, 2, two, false, true);
        suite(TIR_BF16, t & 1, t >> 1, 0, none, 1, b4, bsz, 2, two, false, true);
    }
    if (cublas) cublas_epilogues();
    region_cases();

    printf("(%.1f s of CPU)\n", (double)(clock() - t0) / CLOCKS_PER_SEC);
    if (workspace) tir_rt_free(rt, workspace, TIR_CUBLAS_WORKSPACE);
    tir_cublas_destroy(cublas);
    tir_rt_stream_free(rt, stream);
    tir_context_destroy(ctx);
    printf("%d passed, %d failed\n", gh_npass, gh_nfail);
    return gh_nfail ? 1 : 0;
}
