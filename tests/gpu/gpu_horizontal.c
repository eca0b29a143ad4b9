/* gpu_horizontal.c: horizontal kernels (passes/fuse_horizontal.c + codegen/fused_horizontal.c)
 * on the GPU against the interpreter, outputs poisoned first. AdamW steps over tensors of odd
 * sizes (1, 7, 1000, 4097, symbolic [N, 3] at N = 5 and 1000, [64, 48]), over 100 tensors (two
 * launches: the 4 KB parameter bound), over a few large tensors (many blocks per part), and a
 * region of bf16, f32 and i32 parts with broadcast, transpose and slice inside; AdamW on device
 * tensors with donated arguments (new p, m, v written in place, tensors of one shape too, as a
 * model's layers: every result over its own tensor's buffer, codegen's per-result pairing; the
 * reference ran on host copies of the arguments; a second run on the taken arguments must be
 * refused). Results are compared by DESIGN §6's rule, scaled for cancellation (gpu_harness.h,
 * compiler/compare_mag.h). One line per case, `N passed, M failed` last. Links libtir only.
 *
 * With --bench FILE (benchmarks/adamw.tir): also times @adamw_step on device tensors (random
 * values, v >= 0), median of --reps runs of the kernels' own time (CUDA events), and prints
 * `adamw.tir.ms`, `adamw.tir.GBps` (28 bytes a parameter) and the kernel count.
 *
 * usage: gpu_horizontal [--filter TEXT] [--bench benchmarks/adamw.tir] [--reps N]
 * exit 0 all passed, 1 a failure, 77 no CUDA driver (ctest counts that as skipped). */
#include "gpu_harness.h"
#include "../adamw_src.h"

/* every 4th parameter (AdamW's v) in [0.01, 1.01), the rest in [-1, 1) away from zero; integers
 * in [-50, 50] away from zero */
static void fill(tir_tensor *t, int param, void *user) {
    (void)user;
    bool positive = param % 4 == 3, isint = tir_dtype_is_int(tir_tensor_dtype(t));
    for (int64_t e = 0; e < tir_tensor_numel(t); e++) {
        double v = positive ? 0.01 + gh_urand() : -1.0 + 2.0 * gh_urand();
        if (fabs(v) < 0.01) v = 0.01;
        if (isint) v = floor(v * 50.0) + (v < 0 ? 0 : 1);
        tir_tensor_set(t, e, v);
    }
}

/* Compiles @f of src, runs it on the GPU (outputs poisoned) and on the interpreter with the
 * same random inputs, compares by DESIGN §6's rule (scaled for cancellation: gpu_harness.h).
 * want_inplace >= 0: a device run with donate_args (the arguments uploaded after the reference
 * ran on the host copies, which stay intact), with at least want_inplace results written in
 * place of a dead argument, whose buffers the results took (running again on them is an error);
 * < 0: a host run */
static void run_case_as(const char *label, const char *src, int64_t N, int64_t D, int want_kernels,
                        int want_inplace) {
    if (!gh_selected(label)) return;
    tir_bindings b = {0};
    tir_bindings_set(&b, "N", N);
    tir_bindings_set(&b, "D", D);
    gh_case c = {.label = label, .src = src, .bind = &b, .fill = fill, .reduces = false,
                 .donate = want_inplace >= 0, .check_refused = true};
    gh_result r;
    gh_run(&c, &r);
    if (!r.ran) {
        gh_report(false, label, "%s", r.msg);
        return;
    }
    int nk = r.kernels;
    bool ok = r.ok;
    if (want_kernels > 0 && nk != want_kernels) ok = false;
    if (want_inplace >= 0 && r.ninplace < want_inplace) ok = false;
    char et[160];
    if (want_inplace >= 0)
        gh_report(ok, label, "%d kernels (want %d)  %d in place (want %d)  %s", nk, want_kernels, r.ninplace,
                  want_inplace, gh_err_text(&r, et, sizeof et));
    else
        gh_report(ok, label, "%d kernels (want %d)  %s", nk, want_kernels, gh_err_text(&r, et, sizeof et));
}

static void run_case(const char *label, const char *src, int64_t N, int64_t D, int want_kernels) {
    run_case_as(label, src, N, D, want_kernels, -1);
}

static void adamw_case(const char *label, int n, const char *const *shapes, int64_t N, int want) {
    char *src = adamw_src("f", n, shapes);
    if (!src) {
        gh_report(false, label, "out of memory");
        return;
    }
    run_case(label, src, N, 1, want);
    free(src);
}

/* ---------------------------------------------------------------- the benchmark */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* a fast fill for large tensors: a hash of the index, in [lo, lo + 1) or [-1, 1) */
static void fill_fast(tir_tensor *t, uint64_t seed, bool positive) {
    int64_t n = tir_tensor_numel(t);
    float *x = tir_tensor_data(t);
    for (int64_t i = 0; i < n; i++) {
        uint64_t h = ((uint64_t)i + seed) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
        float u = (float)(h >> 40) / 16777216.0f;
        x[i] = positive ? 0.01f + u : (u < 0.5f ? -1.0f + 2.0f * u : 2.0f * u - 1.0f + 1e-3f);
    }
}

static void bench(const char *path, int reps) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        gh_report(false, "bench", "cannot open %s", path);
        return;
    }
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *src = malloc((size_t)len + 1);
    if (!src || fread(src, 1, (size_t)len, fp) != (size_t)len) {
        fclose(fp);
        free(src);
        gh_report(false, "bench", "cannot read %s", path);
        return;
    }
    src[len] = 0;
    fclose(fp);
    tir_diag d;
    tir_module *m = NULL;
    tir_program *p = NULL;
    tir_device_tensor **args = NULL, **res = NULL;
    int nargs = 0, nres = 0;
    double *ms = calloc((size_t)(reps > 0 ? reps : 1), sizeof *ms);
    if (!ms || tir_module_parse(gh_ctx, src, path, &m, &d) != TIR_OK || tir_compile(m, "adamw_step", NULL, &p, &d) != TIR_OK) {
        gh_report(false, "bench", "parse/compile: %s", d.msg);
        goto out;
    }
    const char *kl = strstr(src, "# KERNELS @adamw_step ");
    int want = kl ? atoi(kl + strlen("# KERNELS @adamw_step ")) : -1;
    nargs = tir_program_num_params(p);
    nres = tir_program_num_results(p);
    args = calloc((size_t)nargs, sizeof *args);
    res = calloc((size_t)nres, sizeof *res);
    const tir_func *f = tir_module_find(m, "adamw_step");
    int64_t nparam = 0;
    for (int i = 0; args && i < nargs; i++) {
        int64_t dims[TIR_MAX_RANK];
        const tir_type *t = &f->params[i]->type;
        tir_bindings b = {0};
        tir_tensor *h = NULL;
        if (tir_type_eval(t, &b, dims) != TIR_OK || !(h = tir_tensor_new(t->dtype, t->rank, dims))) {
            gh_report(false, "bench", "cannot make parameter %d", i);
            goto out;
        }
        fill_fast(h, (uint64_t)i * 7919u, i % 4 == 3);
        if (i % 4 == 0) nparam += tir_tensor_numel(h);
        tir_status s = tir_device_tensor_from_host(gh_ctx, h, &args[i], &d);
        tir_tensor_free(h);
        if (s != TIR_OK) {
            gh_report(false, "bench", "upload: %s", d.msg);
            goto out;
        }
    }
    if (!args || !res) goto out;
    tir_program_set_timing(p, true);
    for (int r = -1; r < reps; r++) { /* one warm-up run */
        if (tir_program_run_device(p, nargs, args, nres, res, NULL, &d) != TIR_OK) {
            gh_report(false, "bench", "run: %s: %s", tir_status_name(d.status), d.msg);
            goto out;
        }
        double t = 0;
        for (int k = 0; k < tir_program_num_kernels(p); k++) {
            tir_kernel_info ki;
            tir_program_kernel_info(p, k, &ki);
            if (ki.last_ms > 0) t += ki.last_ms;
        }
        if (r >= 0) ms[r] = t;
        for (int i = 0; i < nres; i++) {
            tir_device_tensor_free(res[i]);
            res[i] = NULL;
        }
    }
    qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
    double med = ms[reps / 2];
    int nk = tir_program_num_kernels(p);
    printf("adamw.tir.params: %lld\nadamw.tir.kernels: %d\nadamw.tir.ms: %.3f\nadamw.tir.GBps: %.1f\n",
           (long long)nparam, nk, med, 28.0 * (double)nparam / (med * 1e6));
    gh_report(want < 0 || nk == want, "bench adamw.tir", "%d kernels (header says %d), %.3f ms", nk, want, med);
out:
    for (int i = 0; args && i < nargs; i++) tir_device_tensor_free(args[i]);
    for (int i = 0; res && i < nres; i++) tir_device_tensor_free(res[i]);
    free(args);
    free(res);
    free(ms);
    free(src);
    tir_program_free(p);
    tir_module_free(m);
}

int main(int argc, char **argv) {
    const char *bench_path = NULL;
    int reps = 20;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) gh_filter = argv[++i];
        else if (strcmp(argv[i], "--bench") == 0 && i + 1 < argc) bench_path = argv[++i];
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--examples") == 0 && i + 1 < argc) i++; /* ctest passes it to every GPU test */
    }
    if (reps < 1) reps = 1;
    gh_rng = 0x243F6A8885A308D3ull;
    gh_label_width = 44;
    int rc = gh_start("gpu_horizontal");
    if (rc) return rc;

    static const char *const odd[] = {"1", "7", "1000", "4097", "N, 3", "64, 48"};
    adamw_case("adamw odd sizes N=5", 6, odd, 5, 1);
    adamw_case("adamw odd sizes N=1000", 6, odd, 1000, 1);
    adamw_case("adamw odd sizes N=0", 6, odd, 0, 1);
    /* 100 tensors: 73 in the first launch, 27 in the second */
    static const char *const cyc[] = {"1", "3", "64", "1000", "4097", "8192", "33", "N", "16, 5", "N, 8"};
    const char *many[100];
    for (int i = 0; i < 100; i++) many[i] = cyc[i % 10];
    adamw_case("adamw 100 tensors", 100, many, 777, 2);
    /* many blocks per part, and parts far apart in the grid */
    static const char *const big[] = {"2048, 2048", "4000037", "7", "N, 64"};
    adamw_case("adamw large", 4, big, 65536, 1);
    const char *mixed =
        "func @f(%a: bf16[N, 64], %w: bf16[64], %t: f32[7, D], %s: f32[1000], %i: i32[9]) -> (bf16[N, 64], f32[D, 7], f32[499], i32[9]) {\n"
        "  %x = mul(silu(%a), %w)\n"
        "  %y = exp(mul(transpose(%t, perm=[1, 0]), 0.5))\n"
        "  %z = tanh(slice(%s, axis=0, start=1, end=999, step=2))\n"
        "  %k = add(mul(%i, 3), 1)\n"
        "  return %x, %y, %z, %k\n}\n";
    run_case("mixed dtypes and index maps N=3 D=5", mixed, 3, 5, 1);
    run_case("mixed dtypes and index maps N=1000 D=333", mixed, 1000, 333, 1);
    /* donated arguments: every part's p, m, v written over its own operands */
    char *dsrc = adamw_src("f", 6, odd);
    if (dsrc) {
        run_case_as("adamw odd sizes N=1000 donated", dsrc, 1000, 1, 1, 18);
        run_case_as("adamw odd sizes N=5 donated", dsrc, 5, 1, 1, 18);
    }
    free(dsrc);
    char *bsrc = adamw_src("f", 4, big);
    if (bsrc) run_case_as("adamw large donated", bsrc, 65536, 1, 1, 12);
    free(bsrc);
    /* tensors of one shape (a mask of "any result of this layout" kept none of these in place):
     * 12 tensors, 48 operands, past inplace_ok's 32 */
    const char *twelve[12];
    for (int i = 0; i < 12; i++) twelve[i] = i % 4 == 1 ? "N, 48" : "64, 48";
    char *tsrc = adamw_src("f", 12, twelve);
    if (tsrc) {
        run_case_as("adamw 12 of one shape N=64 donated", tsrc, 64, 1, 1, 36);
        run_case_as("adamw 12 of shapes N=1000 donated", tsrc, 1000, 1, 1, 36);
    }
    free(tsrc);
    /* a small Llama's parameters (an embedding, 2 layers: norms, q/k/v/o, gate/up/down, a final
     * norm): 20 tensors, shapes shared across the layers, many blocks in the big parts */
    static const char *const layer[] = {"256", "256, 256", "64, 256", "64, 256", "256, 256",
                                        "256", "704, 256", "704, 256", "256, 704"};
    const char *llama[20];
    llama[0] = "N, 256";
    for (int i = 0; i < 18; i++) llama[1 + i] = layer[i % 9];
    llama[19] = "256";
    char *lsrc = adamw_src("f", 20, llama);
    if (lsrc) run_case_as("adamw small llama donated", lsrc, 1000, 1, 1, 60);
    free(lsrc);
    if (bench_path) bench(bench_path, reps);
    return gh_finish();
}
