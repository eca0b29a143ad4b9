/* matmul.c: the tensor-core matmul kernel (codegen/matmul_mma.c) against cuBLASLt, bf16, on the
 * shapes of ANCHORS.md and LLM layers plus ragged ones. A lab in llm.c's dev/cuda style: numbered
 * variants (the default tiling, then alternatives), cuBLASLt as the reference, every variant
 * validated against cuBLAS's output, then timed with CUDA events (warm-up, median of --reps
 * runs). Prints one row per shape and variant, and a summary table last: TFLOP/s and the ratio
 * to cuBLAS in the same run.
 *
 * usage: bench_matmul [--reps N] [--quick] [--shape TEXT] [--variant TEXT]
 * exit 0; 77 when there is no CUDA driver. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cublas.h"
#include "cuda.h"
#include "ir.h"
#include "matmul_mma.h"

typedef struct shape {
    const char *name;
    int64_t M, N, K;
    bool tb; /* b stored [N, K] (a linear layer's weight) */
} shape;

static const shape shapes[] = {
    {"4096^3", 4096, 4096, 4096, false},
    {"8192^3", 8192, 8192, 8192, false},
    {"8192x4096.4096x14336", 8192, 14336, 4096, false},
    {"8192x2048.2048x3072", 8192, 3072, 2048, false},
    {"8192x2048.2048x2048", 8192, 2048, 2048, false},
    {"ragged 4001x4003x4096 bT", 4001, 4003, 4096, true},
    {"ragged 4095x4097x4093", 4095, 4097, 4093, false},
};
#define NSHAPES (int)(sizeof shapes / sizeof *shapes)

typedef struct variant {
    const char *name;
    tir_mma_config c;
    bool use_default;
} variant;

static const variant variants[] = {
    {"v0 default", {0}, true},
    {"v1 sync 128x128x32 2x4 s4", {128, 128, 32, 2, 4, 4, 8, false, false}, false},
    {"v2 sync 128x256x32 2x4 s3", {128, 256, 32, 2, 4, 3, 8, false, false}, false},
    {"v3 sync 128x128x64 2x2 s3", {128, 128, 64, 2, 2, 3, 8, false, false}, false},
    {"v4 wg 128x256x64 2x1 s4", {128, 256, 64, 2, 1, 4, 8, true, false}, false},
    {"v5 wg 128x128x64 2x1 s4", {128, 128, 64, 2, 1, 4, 8, true, false}, false},
    {"v6 wg 128x128x64 1x2 s3", {128, 128, 64, 1, 2, 3, 8, true, false}, false},
    {"v7 wg 256x128x64 2x1 s4", {256, 128, 64, 2, 1, 4, 8, true, false}, false},
    {"v8 wg 128x256x64 2x1 s3", {128, 256, 64, 2, 1, 3, 16, true, false}, false},
    {"v9 tma 128x256x64 2x1 s4", {128, 256, 64, 2, 1, 4, 8, true, true}, false},
    {"v10 tma 128x256x64 2x1 s4 g16", {128, 256, 64, 2, 1, 4, 16, true, true}, false},
    {"v11 tma 128x128x64 2x1 s6", {128, 128, 64, 2, 1, 6, 8, true, true}, false},
    {"v12 tma 128x256x64 1x2 s4", {128, 256, 64, 1, 2, 4, 8, true, true}, false},
};
#define NVARIANTS (int)(sizeof variants / sizeof *variants)

static tir_context *ctx;
static tir_rt *rt;
/* every copy, launch and cuBLAS call goes on this stream: cuBLAS needs a real CUstream, and the
 * runtime's own stream (NULL in tir_rt_*) is not one we can hand it */
static tir_rt_stream stream;
static int reps = 20;
static uint64_t rng = 88172645463325252ull;

static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0) * 2.0f - 1.0f;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what, const tir_diag *d) {
    fprintf(stderr, "bench_matmul: %s: %s\n", what, d->msg);
    exit(1);
}

/* median milliseconds of reps runs of fn (after 3 warm-up runs) */
typedef tir_status (*run_fn)(void *arg, tir_diag *d);

static float time_ms(run_fn fn, void *arg, tir_diag *d, bool *ok) {
    tir_rt_event e0, e1;
    float *ms = malloc(sizeof *ms * (size_t)reps), med = -1;
    *ok = false;
    if (!ms || tir_rt_event_new(rt, &e0, d) != TIR_OK) {
        free(ms);
        return -1;
    }
    if (tir_rt_event_new(rt, &e1, d) != TIR_OK) {
        tir_rt_event_free(rt, e0);
        free(ms);
        return -1;
    }
    for (int i = 0; i < 3; i++)
        if (fn(arg, d) != TIR_OK) goto out;
    for (int i = 0; i < reps; i++) {
        if (tir_rt_event_record(rt, e0, stream, d) != TIR_OK || fn(arg, d) != TIR_OK ||
            tir_rt_event_record(rt, e1, stream, d) != TIR_OK || tir_rt_event_ms(rt, e0, e1, &ms[i], d) != TIR_OK)
            goto out;
    }
    qsort(ms, (size_t)reps, sizeof *ms, cmp_float);
    med = ms[reps / 2];
    *ok = true;
out:
    tir_rt_event_free(rt, e0);
    tir_rt_event_free(rt, e1);
    free(ms);
    return med;
}

/* ---------------------------------------------------------------- the two executors */

typedef struct problem {
    const shape *s;
    tir_dptr a, b, c_ref, c;
    size_t a_bytes, b_bytes, c_bytes;
    tir_cublas *cb;
    tir_dptr ws;
} problem;

static tir_status run_cublas(void *arg, tir_diag *d) {
    problem *p = arg;
    tir_cublas_gemm g = {.dtype = TIR_BF16, .m = p->s->M, .n = p->s->N, .k = p->s->K, .batch = 1,
                         .trans_b = p->s->tb, .a = p->a, .b = p->b, .c = p->c_ref,
                         .workspace = p->ws, .workspace_bytes = TIR_CUBLAS_WORKSPACE};
    return tir_cublas_matmul(p->cb, stream, &g, d);
}

/* A generated and loaded kernel. Sizes are symbolic, so one kernel per (variant, transpose_b)
 * serves every shape; the default variant's tiling depends on the shape. */
typedef struct kern {
    bool ready, tried;
    tir_kernel k;
    tir_rt_kernel rk;
    char err[sizeof ((tir_diag *)0)->msg];
} kern;

static kern cache[NVARIANTS][2];

typedef struct mma_run {
    kern *kn;
    bool own;          /* kn is not in the cache (the default variant): release after the shape */
    unsigned grid[3];
    void *params[16];
    uint64_t bufs[3];
    int64_t vals[16];
    _Alignas(64) unsigned char maps[2][128]; /* TIR_KP_TMAP parameters */
} mma_run;

static tir_status run_mma(void *arg, tir_diag *d) {
    mma_run *r = arg;
    return tir_rt_launch(rt, &r->kn->rk, r->kn->k.name, r->grid, r->kn->k.block,
                         r->kn->k.shared_bytes, r->params, stream, d);
}

static void kern_release(kern *kn) {
    if (kn->rk.module) tir_rt_unload(rt, &kn->rk);
    tir_kernel_release(&kn->k);
    memset(kn, 0, sizeof *kn);
}

/* the tiling the compiler would pick for these sizes (constant shapes) */
static bool default_config(const shape *s, const char *arch, tir_mma_config *c, tir_diag *d) {
    char src[512];
    snprintf(src, sizeof src,
             "func @f(%%a: bf16[%lld, %lld], %%b: bf16[%lld, %lld]) -> bf16[%lld, %lld] {\n"
             "  %%c = matmul(%%a, %%b, transpose_b=%s)\n  return %%c\n}\n",
             (long long)s->M, (long long)s->K, (long long)(s->tb ? s->N : s->K),
             (long long)(s->tb ? s->K : s->N), (long long)s->M, (long long)s->N,
             s->tb ? "true" : "false");
    tir_module *m = NULL;
    if (tir_module_parse(ctx, src, "bench.tir", &m, d) != TIR_OK) return false;
    tir_mma_pick_config_for(m->funcs[0]->ops[0], arch, c);
    tir_module_free(m);
    return true;
}

static bool kern_build(kern *kn, const shape *s, const tir_mma_config *c, const char *arch, tir_diag *d) {
    kn->tried = true;
    char src[512], M[24] = "M", N[24] = "N", K[24] = "K";
    if (c->tma) { /* the TMA kernel needs sizes known to be multiples of 8: the shape's own */
        snprintf(M, sizeof M, "%lld", (long long)s->M);
        snprintf(N, sizeof N, "%lld", (long long)s->N);
        snprintf(K, sizeof K, "%lld", (long long)s->K);
    }
    snprintf(src, sizeof src,
             "func @f(%%a: bf16[%s, %s], %%b: bf16[%s, %s]) -> bf16[%s, %s] {\n"
             "  %%c = matmul(%%a, %%b, transpose_b=%s)\n  return %%c\n}\n",
             M, K, s->tb ? N : K, s->tb ? K : N, M, N, s->tb ? "true" : "false");
    tir_module *m = NULL;
    tir_status st = tir_module_parse(ctx, src, "bench.tir", &m, d);
    tir_codegen_options o = {arch, 2};
    if (st == TIR_OK) st = tir_codegen_matmul_mma(ctx, m->funcs[0]->ops[0], 0, &o, c, &kn->k, d);
    if (st == TIR_OK) st = tir_rt_load(rt, kn->k.ptx, kn->k.name, kn->k.shared_bytes, &kn->rk, d);
    tir_module_free(m);
    kn->ready = st == TIR_OK;
    if (!kn->ready) snprintf(kn->err, sizeof kn->err, "%s", d->msg);
    return kn->ready;
}

/* the kernel of variant vi for shape s, and its launch for p's buffers */
static bool mma_prepare(mma_run *r, problem *p, int vi, tir_diag *d) {
    memset(r, 0, sizeof *r);
    const variant *v = &variants[vi];
    const char *arch = tir_rt_cc(rt) == 90 ? "sm_90a" : "sm_80";
    tir_mma_config c = v->c;
    if (v->use_default && !default_config(p->s, arch, &c, d)) return false;
    if (c.wgmma && strcmp(arch, "sm_90a") != 0) {
        snprintf(d->msg, sizeof d->msg, "wgmma needs sm_90a");
        return false;
    }
    if (v->use_default || c.tma) {
        r->kn = calloc(1, sizeof *r->kn);
        r->own = true;
        if (!r->kn || !kern_build(r->kn, p->s, &c, arch, d)) return false;
    } else {
        r->kn = &cache[vi][p->s->tb];
        if (!r->kn->tried) kern_build(r->kn, p->s, &c, arch, d);
        if (!r->kn->ready) {
            snprintf(d->msg, sizeof d->msg, "%s", r->kn->err);
            return false;
        }
    }
    tir_bindings b;
    memset(&b, 0, sizeof b);
    tir_bindings_set(&b, "M", p->s->M);
    tir_bindings_set(&b, "N", p->s->N);
    tir_bindings_set(&b, "K", p->s->K);
    r->bufs[0] = p->a;
    r->bufs[1] = p->b;
    r->bufs[2] = p->c;
    const tir_kernel *k = &r->kn->k;
    tir_status st = k->nparams <= 16 ? TIR_OK : TIR_ERR_UNSUPPORTED;
    for (int i = 0; st == TIR_OK && i < k->nparams; i++) {
        if (k->params[i].kind == TIR_KP_BUFFER) {
            r->params[i] = &r->bufs[k->params[i].index];
        } else if (k->params[i].kind == TIR_KP_TMAP) {
            const tir_kparam_tmap *t = &k->params[i].tmap;
            int64_t dims[5], strides[5] = {1, 1, 1, 1, 1};
            int mi = k->params[i].index; /* a or b */
            for (int q = 0; st == TIR_OK && q < t->rank; q++) {
                st = tir_dim_eval(t->dims[q], &b, &dims[q]);
                if (st == TIR_OK && q > 0) st = tir_dim_eval(t->strides[q], &b, &strides[q]);
            }
            if (st == TIR_OK)
                st = tir_rt_tensor_map(rt, r->maps[mi], t->dtype, t->rank, r->bufs[mi], dims, strides,
                                       t->box, t->swizzle, d);
            r->params[i] = r->maps[mi];
        } else {
            st = tir_dim_eval(k->params[i].dim, &b, &r->vals[i]);
            r->params[i] = &r->vals[i];
        }
    }
    for (int i = 0; st == TIR_OK && i < 3; i++) {
        int64_t g;
        st = tir_dim_eval(k->grid[i], &b, &g);
        if (i == 0 && k->persistent > 0 && g > (int64_t)k->persistent * tir_rt_sms(rt))
            g = (int64_t)k->persistent * tir_rt_sms(rt); /* one wave of persistent blocks */
        r->grid[i] = g < 1 ? 1 : (unsigned)g;
    }
    return st == TIR_OK;
}

static void mma_release(mma_run *r) {
    if (r->own && r->kn) {
        kern_release(r->kn);
        free(r->kn);
    }
    r->kn = NULL;
}

/* max |x - ref| / (|ref| + rms(ref)) over the output (bf16 on the device): two correct results
 * differ by at most one bf16 rounding, 2^-8 |ref|; a wrong element by about rms(ref) */
static double compare(problem *p, tir_diag *d) {
    size_t n = p->c_bytes / 2;
    uint16_t *x = malloc(p->c_bytes), *y = malloc(p->c_bytes);
    double worst = NAN;
    if (x && y && tir_rt_dtoh(rt, x, p->c, p->c_bytes, stream, d) == TIR_OK &&
        tir_rt_dtoh(rt, y, p->c_ref, p->c_bytes, stream, d) == TIR_OK && tir_rt_sync(rt, stream, d) == TIR_OK) {
        double ss = 0, w = 0;
        for (size_t i = 0; i < n; i++) {
            double r = tir_bf16_bits_to_f32(y[i]);
            ss += r * r;
        }
        double rms = sqrt(ss / (double)n) + 1e-30;
        for (size_t i = 0; i < n; i++) {
            double r = tir_bf16_bits_to_f32(y[i]);
            double e = fabs((double)tir_bf16_bits_to_f32(x[i]) - r) / (fabs(r) + rms);
            if (isnan(e)) {
                w = INFINITY;
                break;
            }
            if (e > w) w = e;
        }
        worst = w;
    }
    free(x);
    free(y);
    return worst;
}

typedef struct row {
    const char *shape, *variant;
    float ms;
    double tflops, ratio, err;
    bool ok;
} row;

int main(int argc, char **argv) {
    const char *shape_filter = NULL, *variant_filter = NULL;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--quick") == 0) quick = true;
        else if (strcmp(argv[i], "--shape") == 0 && i + 1 < argc) shape_filter = argv[++i];
        else if (strcmp(argv[i], "--variant") == 0 && i + 1 < argc) variant_filter = argv[++i];
    }
    if (reps < 1) reps = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    ctx = tir_context_create();
    tir_diag d;
    if (tir_rt_get(ctx, &rt, &d) != TIR_OK) {
        printf("bench_matmul: skipped: %s\n", d.msg);
        tir_context_destroy(ctx);
        return d.status == TIR_ERR_NO_DRIVER ? 77 : 1;
    }
    if (tir_rt_stream_new(rt, &stream, &d) != TIR_OK) die("stream", &d);
    char desc[256];
    tir_rt_describe(rt, desc, sizeof desc);
    tir_cublas *cb = NULL;
    if (tir_cublas_create(rt, &cb, &d) != TIR_OK) die("cuBLASLt", &d);
    tir_dptr ws;
    if (tir_rt_alloc(rt, TIR_CUBLAS_WORKSPACE, &ws, &d) != TIR_OK) die("workspace", &d);
    printf("bench_matmul: %s; %s; bf16, f32 accumulation; median of %d runs\n", desc,
           tir_cublas_describe(cb), reps);
    printf("%-26s %-28s %9s %9s %8s %10s\n", "shape", "variant", "ms", "TFLOP/s", "vs cuBLAS",
           "max err");

    row *rows = calloc((size_t)NSHAPES * (NVARIANTS + 1), sizeof *rows);
    int nrows = 0;
    for (int si = 0; si < NSHAPES; si++) {
        const shape *s = &shapes[si];
        if (shape_filter && !strstr(s->name, shape_filter)) continue;
        if (quick && si != 0 && si != 2) continue;
        problem p = {.s = s, .cb = cb, .ws = ws};
        p.a_bytes = (size_t)(s->M * s->K) * 2;
        p.b_bytes = (size_t)(s->K * s->N) * 2;
        p.c_bytes = (size_t)(s->M * s->N) * 2;
        size_t big = p.a_bytes > p.b_bytes ? p.a_bytes : p.b_bytes;
        uint16_t *h = malloc(big);
        if (!h) {
            fprintf(stderr, "bench_matmul: out of host memory\n");
            return 1;
        }
        if (tir_rt_alloc(rt, p.a_bytes, &p.a, &d) || tir_rt_alloc(rt, p.b_bytes, &p.b, &d) ||
            tir_rt_alloc(rt, p.c_bytes, &p.c, &d) || tir_rt_alloc(rt, p.c_bytes, &p.c_ref, &d))
            die("alloc", &d);
        for (size_t i = 0; i < p.a_bytes / 2; i++) h[i] = tir_f32_to_bf16_bits(frand());
        if (tir_rt_htod(rt, p.a, h, p.a_bytes, stream, &d) || tir_rt_sync(rt, stream, &d)) die("upload", &d);
        for (size_t i = 0; i < p.b_bytes / 2; i++) h[i] = tir_f32_to_bf16_bits(frand());
        if (tir_rt_htod(rt, p.b, h, p.b_bytes, stream, &d) || tir_rt_sync(rt, stream, &d)) die("upload", &d);
        free(h);
        double flop = 2.0 * (double)s->M * (double)s->N * (double)s->K;

        bool ok;
        float ref_ms = time_ms(run_cublas, &p, &d, &ok);
        row *ref = &rows[nrows++];
        *ref = (row){s->name, "cuBLASLt", ref_ms, ok ? flop / (ref_ms * 1e-3) / 1e12 : 0, 1, 0, ok};
        if (!ok) printf("%-26s %-28s failed: %s\n", s->name, "cuBLASLt", d.msg);
        else printf("%-26s %-28s %9.3f %9.1f %8.2f %10s\n", s->name, "cuBLASLt", ref_ms, ref->tflops, 1.0, "ref");

        for (int vi = 0; vi < NVARIANTS; vi++) {
            const variant *v = &variants[vi];
            if (variant_filter && !strstr(v->name, variant_filter)) continue;
            if (quick && vi > 1 && vi != 4 && vi != 5) continue;
            mma_run r;
            row *w = &rows[nrows++];
            *w = (row){s->name, v->name, -1, 0, 0, NAN, false};
            if (!mma_prepare(&r, &p, vi, &d)) {
                printf("%-26s %-28s not run: %s\n", s->name, v->name, d.msg);
                mma_release(&r);
                continue;
            }
            /* validate once (poisoned output), then time */
            if (tir_rt_memset8(rt, p.c, 0xFF, p.c_bytes, stream, &d) || run_mma(&r, &d) ||
                tir_rt_sync(rt, stream, &d)) {
                printf("%-26s %-28s failed: %s\n", s->name, v->name, d.msg);
                mma_release(&r);
                continue;
            }
            w->err = ok ? compare(&p, &d) : NAN;
            float ms = time_ms(run_mma, &r, &d, &w->ok);
            mma_release(&r);
            if (!w->ok) {
                printf("%-26s %-28s failed: %s\n", s->name, v->name, d.msg);
                continue;
            }
            w->ms = ms;
            w->tflops = flop / (ms * 1e-3) / 1e12;
            w->ratio = ok ? ref_ms / ms : 0;
            w->ok = !(w->err > 1e-2) && !isnan(w->err);
            printf("%-26s %-28s %9.3f %9.1f %8.2f %10.2e%s\n", s->name, v->name, ms, w->tflops,
                   w->ratio, w->err, w->ok ? "" : "  WRONG");
        }
        tir_rt_free(rt, p.a, p.a_bytes);
        tir_rt_free(rt, p.b, p.b_bytes);
        tir_rt_free(rt, p.c, p.c_bytes);
        tir_rt_free(rt, p.c_ref, p.c_bytes);
    }

    /* summary: per shape, cuBLAS, the default variant and the best correct one */
    printf("\n== summary (bf16 matmul, TFLOP/s; ratio = cuBLAS time / tir time)\n");
    printf("%-26s %9s %9s %7s %9s %7s  %s\n", "shape", "cuBLAS", "default", "ratio", "best",
           "ratio", "best variant");
    for (int i = 0; i < nrows;) {
        const char *sh = rows[i].shape;
        const row *ref = &rows[i], *def = NULL, *best = NULL;
        int j = i + 1;
        for (; j < nrows && rows[j].shape == sh; j++) {
            const row *w = &rows[j];
            if (strncmp(w->variant, "v0", 2) == 0) def = w;
            if (w->ok && (!best || w->tflops > best->tflops)) best = w;
        }
        printf("%-26s %9.1f %9.1f %7.2f %9.1f %7.2f  %s\n", sh, ref->ok ? ref->tflops : 0,
               def && def->ok ? def->tflops : 0, def && def->ok ? def->ratio : 0,
               best ? best->tflops : 0, best ? best->ratio : 0, best ? best->variant : "-");
        i = j;
    }
    free(rows);
    for (int i = 0; i < NVARIANTS; i++)
        for (int j = 0; j < 2; j++) kern_release(&cache[i][j]);
    tir_rt_free(rt, ws, TIR_CUBLAS_WORKSPACE);
    tir_cublas_destroy(cb);
    tir_rt_stream_free(rt, stream);
    tir_context_destroy(ctx);
    return 0;
}
