/* layers.c: the fused LLM layers of ANCHORS.md compiled from the .tir files of benchmarks/ with tir_compile and
 * timed on device tensors, bf16 with f32 compute: RMSNorm 16384x4096 forward and forward+backward
 * (y, dx, dw), SwiGLU 16384x14336 forward and forward+backward (y, da, db), softmax 8192x32768,
 * RoPE on q 8x32x2048x128 and k 8x8x2048x128 in one program, cross-entropy over 8192x128256
 * forward and forward+backward (loss, dlogits). Each program is first checked against the
 * interpreter on a small binding of its symbols (DESIGN §6 tolerances), then run on two input
 * sets larger than L2 in turn (warm-up, median of --reps runs). Time is the sum of the program's
 * kernel times (CUDA events around each launch). Bytes are the minimal traffic: every input read
 * once and every output written once; GB/s and the share of the 3000 GB/s copy ceiling follow
 * from them. (scripts/gpu-bench.sh times the same programs with `tirc bench`, beside the peers.)
 *
 * usage: bench_layers [--dir benchmarks] [--reps N] [--only NAME]
 * exit 0; 1 when a check fails; 77 when there is no CUDA driver. */
#include <stdio.h>
#include <stdlib.h>

#include "compile.h"
#include "device.h"
#include "ir.h"
#include "passes.h"

typedef struct layer {
    const char *file, *func;
    const char *small; /* bindings for the interpreter check */
    const char *big;   /* bindings for the timing */
    double peer_ms;    /* torch.compile in ANCHORS.md, 0 unknown */
} layer;

static const layer layers[] = {
    {"rmsnorm.tir", "rmsnorm", "N=7", "N=16384", 0.0957},
    {"rmsnorm.tir", "rmsnorm_fwdbwd", "N=7", "N=16384", 0},
    {"swiglu.tir", "swiglu", "N=5", "N=16384", 0.465},
    {"swiglu.tir", "swiglu_fwdbwd", "N=5", "N=16384", 0},
    {"softmax.tir", "softmax", "N=3", "N=8192", 0},
    {"rope.tir", "rope", "B=1,T=5", "B=8,T=2048", 0},
    {"cross_entropy.tir", "cross_entropy", "N=9", "N=8192", 0},
    {"cross_entropy.tir", "cross_entropy_fwdbwd", "N=9", "N=8192", 0},
};
#define NLAYERS (int)(sizeof layers / sizeof *layers)

static tir_context *ctx;
static int reps = 20;
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static double urand(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (double)((rng * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

/* random values; integer tensors (targets) in [0, ihi). Big tensors repeat a random block of
 * 1M elements, which is as good as fresh data for a memory-bound kernel and quick to make. */
static void fill(tir_tensor *t, int64_t ihi) {
    int64_t n = tir_tensor_numel(t);
    bool isint = tir_dtype_is_int(tir_tensor_dtype(t));
    int64_t blk = n < (1 << 20) ? n : (1 << 20);
    for (int64_t i = 0; i < blk; i++)
        tir_tensor_set(t, i, isint ? floor(urand() * (double)ihi) : urand() * 4.0 - 2.0);
    size_t es = tir_dtype_size(tir_tensor_dtype(t));
    char *p = tir_tensor_data(t);
    for (int64_t i = blk; i < n; i += blk) {
        int64_t m = n - i < blk ? n - i : blk;
        memcpy(p + (size_t)i * es, p, (size_t)m * es);
    }
}

static bool parse_binds(const char *s, tir_bindings *b) {
    memset(b, 0, sizeof *b);
    static char keep[8][64];
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    int k = 0;
    for (char *p = strtok(buf, ","); p && k < 8; p = strtok(NULL, ","), k++) {
        char *eq = strchr(p, '=');
        if (!eq) return false;
        *eq = 0;
        snprintf(keep[k], sizeof keep[k], "%s", p);
        if (tir_bindings_set(b, keep[k], atoll(eq + 1)) != TIR_OK) return false;
    }
    return true;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

typedef struct row {
    const char *name;
    int kernels;
    double ms, bytes, err, tol;
    bool ok;
} row;

/* host tensors for the params of f under bindings b */
static bool make_args(const tir_func *f, const tir_bindings *b, tir_tensor **args, double *bytes) {
    *bytes = 0;
    for (int i = 0; i < f->nparams; i++) {
        int64_t dims[TIR_MAX_RANK];
        const tir_type *t = &f->params[i]->type;
        if (tir_type_eval(t, b, dims) != TIR_OK) return false;
        if (!(args[i] = tir_tensor_new(t->dtype, t->rank, dims))) return false;
        /* integer parameters are targets: they index the last dim of the first (the logits) */
        int64_t ihi = i > 0 && tir_tensor_rank(args[0]) > 0 ? tir_tensor_dim(args[0], tir_tensor_rank(args[0]) - 1) : 2;
        fill(args[i], ihi);
        *bytes += (double)tir_tensor_nbytes(args[i]);
    }
    return true;
}

static void run_layer(const char *dir, const layer *L, row *r) {
    memset(r, 0, sizeof *r);
    r->name = L->func;
    char path[1200];
    snprintf(path, sizeof path, "%.1000s/%s", dir, L->file);
    char *src = read_text(path);
    tir_module *mref = NULL, *m = NULL;
    tir_program *p = NULL;
    tir_diag d;
    tir_tensor *args[8] = {0}, *ref[4] = {0}, *out[4] = {0};
    tir_device_tensor *dargs[2][8] = {{0}}, *dres[4] = {0};
    const tir_func *f = NULL;
    int nargs = 0, nres = 0;
    if (!src) {
        printf("%-22s cannot read %s\n", L->func, path);
        return;
    }
    if (tir_module_parse(ctx, src, L->file, &mref, &d) != TIR_OK ||
        tir_module_parse(ctx, src, L->file, &m, &d) != TIR_OK ||
        tir_pass_grad(mref, &d) != TIR_OK) { /* the interpreter runs value_and_grad bodies only once built */
        printf("%-22s parse: %s\n", L->func, d.msg);
        goto out;
    }
    tir_options o;
    tir_options_init(&o);
    if (tir_compile(m, L->func, &o, &p, &d) != TIR_OK) {
        printf("%-22s compile: %s\n", L->func, d.msg);
        goto out;
    }
    r->kernels = tir_program_num_kernels(p);
    f = tir_module_find(mref, L->func);
    nargs = f->nparams;
    nres = f->nres;

    // the check: small shape, GPU against the interpreter
    tir_bindings b;
    double bytes;
    parse_binds(L->small, &b);
    if (!make_args(f, &b, args, &bytes) || tir_interpret(mref, L->func, nargs, args, nres, ref, &d) != TIR_OK ||
        tir_program_run(p, nargs, args, nres, out, &d) != TIR_OK) {
        printf("%-22s check run failed: %s\n", L->func, d.msg);
        goto out;
    }
    r->ok = true;
    for (int i = 0; i < nres; i++) {
        double e = tir_rel_error(out[i], ref[i]), t = tir_tolerance(tir_tensor_dtype(ref[i]), true);
        if (isnan(e) || e > t) r->ok = false;
        if (!(e <= r->err)) r->err = e, r->tol = t;
    }
    for (int i = 0; i < nargs; i++) tir_tensor_free(args[i]), args[i] = NULL;
    for (int i = 0; i < nres; i++) {
        tir_tensor_free(ref[i]), ref[i] = NULL;
        tir_tensor_free(out[i]), out[i] = NULL;
    }

    // the timing: two input sets on the device, used in turn
    parse_binds(L->big, &b);
    for (int s = 0; s < 2; s++) {
        if (!make_args(f, &b, args, &bytes)) goto out;
        for (int i = 0; i < nargs; i++) {
            if (tir_device_tensor_from_host(ctx, args[i], &dargs[s][i], &d) != TIR_OK) {
                printf("%-22s upload: %s\n", L->func, d.msg);
                goto out;
            }
            tir_tensor_free(args[i]);
            args[i] = NULL;
        }
    }
    r->bytes = bytes;
    for (int i = 0; i < nres; i++) {
        int64_t dims[TIR_MAX_RANK];
        const tir_type *t = &f->ret[i];
        if (tir_type_eval(t, &b, dims) == TIR_OK) {
            size_t nb;
            if (tir_shape_nbytes(t->dtype, t->rank, dims, &nb)) r->bytes += (double)nb;
        }
    }
    tir_program_set_timing(p, true);
    float *ms = calloc((size_t)reps, sizeof *ms);
    for (int it = -3; it < reps; it++) {
        if (tir_program_run_device(p, nargs, dargs[(it + 4) % 2], nres, dres, NULL, &d) != TIR_OK) {
            printf("%-22s run: %s\n", L->func, d.msg);
            free(ms);
            goto out;
        }
        for (int i = 0; i < nres; i++) tir_device_tensor_free(dres[i]), dres[i] = NULL;
        float t = 0;
        for (int k = 0; k < r->kernels; k++) {
            tir_kernel_info ki;
            tir_program_kernel_info(p, k, &ki);
            if (ki.last_ms > 0) t += ki.last_ms;
        }
        if (it >= 0) ms[it] = t;
    }
    qsort(ms, (size_t)reps, sizeof *ms, cmp_float);
    r->ms = ms[reps / 2];
    free(ms);
    printf("%-22s kernels:", L->func);
    for (int k = 0; k < r->kernels; k++) {
        tir_kernel_info ki;
        tir_program_kernel_info(p, k, &ki);
        printf(" %s(%d regs)", ki.name, ki.regs);
    }
    printf("\n");
out:
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < nargs; i++) tir_device_tensor_free(dargs[s][i]);
    for (int i = 0; i < 8; i++) tir_tensor_free(args[i]);
    for (int i = 0; i < nres; i++) {
        tir_tensor_free(ref[i]);
        tir_tensor_free(out[i]);
    }
    tir_program_free(p);
    tir_module_free(mref);
    tir_module_free(m);
    free(src);
}

int main(int argc, char **argv) {
    const char *dir = getenv("TIR_SOURCE_DIR") ? NULL : "benchmarks";
    char dbuf[1024];
    if (!dir) {
        snprintf(dbuf, sizeof dbuf, "%s/benchmarks", getenv("TIR_SOURCE_DIR"));
        dir = dbuf;
    }
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) dir = argv[++i];
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[++i];
    }
    if (reps < 1) reps = 1;
    ctx = tir_context_create();
    char desc[256];
    tir_diag d;
    if (tir_device_probe(ctx, desc, sizeof desc, &d) != TIR_OK) {
        printf("bench_layers: no GPU: %s\n", d.msg);
        tir_context_destroy(ctx);
        return 77;
    }
    printf("bench_layers on %s, median of %d runs\n", desc, reps);
    row rows[NLAYERS];
    int n = 0;
    bool allok = true;
    for (int i = 0; i < NLAYERS; i++) {
        if (only && !strstr(layers[i].func, only)) continue;
        run_layer(dir, &layers[i], &rows[n]);
        allok &= rows[n].ok;
        n++;
    }
    printf("\n%-22s %7s %9s %10s %8s %7s %9s %s\n", "layer", "kernels", "ms", "MB moved", "GB/s",
           "% 3TB/s", "check", "torch.compile (ANCHORS)");
    for (int i = 0; i < n; i++) {
        const row *r = &rows[i];
        double gbs = r->ms > 0 ? r->bytes / (r->ms * 1e6) : 0;
        char peer[32] = "-";
        for (int k = 0; k < NLAYERS; k++)
            if (layers[k].func == r->name && layers[k].peer_ms > 0)
                snprintf(peer, sizeof peer, "%.4f ms", layers[k].peer_ms);
        printf("%-22s %7d %9.4f %10.1f %8.0f %6.1f%% %4s %.0e %s\n", r->name, r->kernels, r->ms,
               r->bytes / 1e6, gbs, gbs / 30.0, r->ok ? "ok" : "FAIL", r->err, peer);
    }
    tir_context_destroy(ctx);
    return allok ? 0 : 1;
}
