/* cmd_bench.c: `tirc bench`, the GPU time of a compiled function per kernel and in total,
 * against the device's ceilings, and the device memory its run holds.
 *
 * Method: inputs as `tirc run` makes them (never all zeros; integer indices inside the dims they
 * index; or .npy files), uploaded as several input sets whose total exceeds the L2 cache, used in
 * rotation, so no kernel reads its inputs from a cache the previous iteration warmed. Warm-up runs
 * first (kernel loading, the allocator's cache, cuBLASLt's heuristics), then K timed runs on
 * device tensors with CUDA events around every launch (tir_program_set_timing). Each kernel's
 * figure is the median over the runs; the total is the median of the runs' sums. Bytes moved are
 * what a kernel must move at least: each distinct buffer it takes read or written once (from the
 * kernel's parameters and the binding); GB/s against the device-to-device copy ceiling (bytes
 * read + written per second, 3.0 TB/s measured on the H100: --copy-gbps). Matmuls also get
 * FLOPs (2·M·N·K) and TFLOP/s. Peak memory is the memory plan's (passes/plan_memory.c):
 * arguments + arena + results. */
#include <errno.h>
#include <math.h>
#include <stdio.h>

#include "cmd_gpu.h"
#include "compare_mag.h"
#include "compile.h"
#include "exec_matmul.h"

enum { MAX_SETS = 64 };

/* the check's binding: each symbol at most CHECK_DIM; fixed shapes up to CHECK_ELEMS elements */
#define CHECK_DIM 8
#define CHECK_DIM_TEXT "8"
#define CHECK_ELEMS ((int64_t)1 << 24)
#define CHECK_ELEMS_TEXT "2^24"

typedef struct bench_opts {
    const char *file, *func, *arch, *json;
    int iters, warmup;
    double copy_gbps, l2_mb;
    bool donate, check;
    tir_input_spec in;
    tir_options o;
} bench_opts;

static int bench_usage(FILE *out, int rc) {
    fputs("usage: tirc bench F.tir --func F [--dim SYM=SIZE ...] [--in NAME=x.npy ...] [--seed S]\n"
          "                  [--iters K] [--warmup W] [--donate] [--copy-gbps X] [--l2-mb M]\n"
          "                  [--json FILE] [--arch sm_90a] [--matmul=tir|cublas|auto] [--tf32] [--no-check]\n"
          "\n"
          "First checks @F: the same compiled kernels run at a small binding (every --dim symbol\n"
          "bound to at most " CHECK_DIM_TEXT ") and their results are compared with the interpreter's, as\n"
          "`tirc run --compare` does; a function whose shapes are all fixed is checked at its own\n"
          "size when the interpreter can take it (at most " CHECK_ELEMS_TEXT " input elements), else the\n"
          "check is skipped and says so. A failed check is reported, the timing still runs, and\n"
          "the exit status is 1. (A matmul's executor is chosen per binding, so at the small\n"
          "binding it may differ from the timed run's.)\n"
          "\n"
          "Times @F on the GPU: W warm-up runs (default 3), then K timed runs (default 20) with\n"
          "CUDA events around every kernel, on input sets rotated so that their total exceeds the\n"
          "L2 cache (M MB, default 50). Prints one row per kernel: median time, the bytes it must\n"
          "move (each buffer read or written once), GB/s and %% of the copy ceiling (X GB/s, default\n"
          "3000), FLOPs and TFLOP/s for matmuls; then the total (median of the runs' sums) and the\n"
          "peak device memory of the run (arguments + arena + results, from the memory plan).\n"
          "  --in, --seed, --dim  inputs as tirc run makes them (integers as valid indices)\n"
          "  --donate         runs with donate_args: results may be written over dead arguments\n"
          "                   (fresh inputs are uploaded before every run)\n"
          "  --json FILE      also writes the figures as JSON\n"
          "  --no-check       skips the check against the interpreter\n"
          TIR_MM_OPTIONS_HELP
          "Needs a CUDA driver: without one, exits 3.\n",
          out);
    return rc;
}

static int usage_error(const char *fmt, const char *arg) {
    fputs("tirc bench: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n(see tirc bench --help)\n", stderr);
    return 2;
}

static bool parse_num(const char *s, double lo, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !(v >= lo)) return false;
    *out = v;
    return true;
}

static int parse(int argc, char **argv, bench_opts *b) {
    memset(b, 0, sizeof *b);
    tir_options_init(&b->o);
    b->arch = "sm_90a";
    b->iters = 20;
    b->warmup = 3;
    b->copy_gbps = 3000;
    b->l2_mb = 50;
    b->in.seed = 1;
    b->check = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        char merr[128];
        int mr = tir_mm_parse_option(argc, argv, &i, &b->o, merr, sizeof merr);
        if (mr < 0) return usage_error("%s", merr);
        if (mr > 0) continue;
        /* --name VALUE or --name=VALUE */
#define OPT(name) ((strcmp(a, name) == 0 && i + 1 < argc && (v = argv[++i])) || \
                   (strncmp(a, name "=", sizeof name) == 0 && (v = a + sizeof name)))
        double x;
        if (OPT("--func")) b->func = v[0] == '@' ? v + 1 : v;
        else if (OPT("--arch")) b->arch = v;
        else if (OPT("--json")) b->json = v;
        else if (OPT("--iters")) {
            if (!parse_num(v, 1, &x) || x > 100000) return usage_error("bad --iters '%s'", v);
            b->iters = (int)x;
        } else if (OPT("--warmup")) {
            if (!parse_num(v, 0, &x) || x > 1000) return usage_error("bad --warmup '%s'", v);
            b->warmup = (int)x;
        } else if (OPT("--copy-gbps")) {
            if (!parse_num(v, 1e-3, &x)) return usage_error("bad --copy-gbps '%s'", v);
            b->copy_gbps = x;
        } else if (OPT("--l2-mb")) {
            if (!parse_num(v, 0, &x)) return usage_error("bad --l2-mb '%s'", v);
            b->l2_mb = x;
        } else if (OPT("--seed")) {
            char *end;
            errno = 0;
            b->in.seed = strtoull(v, &end, 0);
            if (!*v || *end || errno || v[0] == '-') return usage_error("bad --seed '%s'", v);
        } else if (OPT("--in")) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1]) return usage_error("--in wants name=file.npy, got '%s'", v);
            if (b->in.nin == 64) return usage_error("too many --in%s", "");
            b->in.in[b->in.nin++] = v;
        } else if (OPT("--dim")) {
            const char *eq = strchr(v, '=');
            char *end = NULL;
            long long n = eq ? strtoll(eq + 1, &end, 10) : -1;
            if (!eq || eq == v || !eq[1] || *end || n < 0 || eq - v >= 64)
                return usage_error("--dim wants SYMBOL=size (a size >= 0), got '%s'", v);
            if (b->in.ndim == 64) return usage_error("too many --dim%s", "");
            char *nm = strndup(v, (size_t)(eq - v));
            if (!nm) return usage_error("out of memory%s", "");
            b->in.dim_names[b->in.ndim] = nm;
            b->in.dim_values[b->in.ndim++] = n;
        } else if (strcmp(a, "--donate") == 0) {
            b->donate = true;
        } else if (strcmp(a, "--no-check") == 0) {
            b->check = false;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            return -1;
        } else if (a[0] == '-' || b->file) {
            return usage_error("unexpected argument '%s'", a);
        } else {
            b->file = a;
        }
#undef OPT
    }
    if (!b->file) return usage_error("no input file%s", "");
    b->o.arch = b->arch;
    b->o.donate_args = b->donate;
    return 0;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static float median(float *v, int n) {
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_float);
    return n % 2 ? v[n / 2] : 0.5f * (v[n / 2 - 1] + v[n / 2]);
}

static void human(double n, char *buf, size_t len) {
    if (n >= 1e9) snprintf(buf, len, "%.2f GB", n / 1e9);
    else if (n >= 1e6) snprintf(buf, len, "%.2f MB", n / 1e6);
    else if (n >= 1e3) snprintf(buf, len, "%.2f KB", n / 1e3);
    else snprintf(buf, len, "%.0f B", n);
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

typedef struct sets {
    int n, nargs;
    tir_device_tensor **t; /* n * nargs */
} sets;

static void sets_free(sets *s) {
    for (int i = 0; s->t && i < s->n * s->nargs; i++) tir_device_tensor_free(s->t[i]);
    free(s->t);
    s->t = NULL;
}

/* (re)uploads set k: every argument, or (after a donating run) those whose buffer was taken */
static tir_status upload_set(tir_context *ctx, sets *s, int k, tir_tensor **host, bool all,
                             tir_diag *d) {
    for (int i = 0; i < s->nargs; i++) {
        tir_device_tensor **slot = &s->t[k * s->nargs + i];
        if (*slot && !all) continue;
        tir_device_tensor_free(*slot);
        *slot = NULL;
        tir_status st = tir_device_tensor_from_host(ctx, host[i], slot, d);
        if (st != TIR_OK) return st;
    }
    return TIR_OK;
}

/* ---------------------------------------------------------------- the check */

typedef struct check {
    bool on;              /* inputs and the interpreter's results are ready */
    bool ran, ok;
    tir_input_spec spec;  /* the small binding */
    tir_tensor **in, **ref, **out;
    char *text;           /* the program as written, for the magnitude program (compare_mag.h) */
    int nin, nres;
    char why[160];        /* why it was skipped */
} check;

static void check_free(check *c) {
    for (int i = 0; c->in && i < c->nin; i++) tir_tensor_free(c->in[i]);
    for (int i = 0; c->ref && i < c->nres; i++) tir_tensor_free(c->ref[i]);
    for (int i = 0; c->out && i < c->nres; i++) tir_tensor_free(c->out[i]);
    tir_free(c->text);
    free(c->in);
    free(c->ref);
    free(c->out);
    memset(c, 0, sizeof *c);
}

/* the small inputs, and the interpreter's results on the module as written (compiling rewrites
 * it); an interpreter that fails here (a function the pipeline must expand first) is retried
 * after compiling by check_run. 0, or 1 when out of memory */
static int check_prepare(tir_module *m, const tir_func *f, const bench_opts *b, tir_make_inputs_fn make,
                         tir_tensor *const *host, int nres, check *c) {
    c->nin = f->nparams;
    c->nres = nres;
    c->in = calloc((size_t)c->nin + 1, sizeof *c->in);
    c->ref = calloc((size_t)nres + 1, sizeof *c->ref);
    c->out = calloc((size_t)nres + 1, sizeof *c->out);
    if (!c->in || !c->ref || !c->out) return 1;
    c->spec = b->in;
    bool smaller = false;
    for (int i = 0; i < c->spec.ndim; i++)
        if (c->spec.dim_values[i] > CHECK_DIM) {
            c->spec.dim_values[i] = CHECK_DIM;
            smaller = true;
        }
    int64_t elems = 0;
    for (int i = 0; i < c->nin; i++) elems += tir_tensor_numel(host[i]);
    if (!smaller && elems > CHECK_ELEMS) {
        snprintf(c->why, sizeof c->why, "%lld input elements at the benchmark's size and no symbol to shrink",
                 (long long)elems);
        return 0;
    }
    if (make(f, &c->spec, c->in) != 0) {
        snprintf(c->why, sizeof c->why, "no inputs at the small binding");
        return 0;
    }
    elems = 0;
    for (int i = 0; i < c->nin; i++) elems += tir_tensor_numel(c->in[i]);
    if (elems > CHECK_ELEMS) {
        snprintf(c->why, sizeof c->why, "%lld input elements even at the small binding", (long long)elems);
        return 0;
    }
    tir_diag d;
    c->on = true;
    c->text = tir_module_print(m);
    if (tir_interpret(m, b->func, c->nin, c->in, nres, c->ref, &d) != TIR_OK)
        for (int i = 0; i < nres; i++) {
            tir_tensor_free(c->ref[i]);
            c->ref[i] = NULL;
        }
    return 0;
}

/* runs the compiled program at the small binding, compares, prints one line per result */
static void check_run(tir_module *m, tir_program *p, const bench_opts *b, check *c) {
    tir_diag d;
    if (!c->on) {
        printf("check: skipped (%s)\n", c->why);
        return;
    }
    c->ran = true;
    c->ok = false;
    if (c->nres > 0 && !c->ref[0] && tir_interpret(m, b->func, c->nin, c->in, c->nres, c->ref, &d) != TIR_OK) {
        printf("check: FAIL: the interpreter: ");
        fflush(stdout);
        tir_diag_print(&d, stdout);
        return;
    }
    for (int i = 0; i < c->spec.ndim; i++)
        if (tir_program_set_dim(p, c->spec.dim_names[i], c->spec.dim_values[i], &d) != TIR_OK) {
            printf("check: FAIL: ");
            fflush(stdout);
            tir_diag_print(&d, stdout);
            return;
        }
    if (tir_program_run(p, c->nin, c->in, c->nres, c->out, &d) != TIR_OK) {
        printf("check: FAIL: the GPU run: ");
        fflush(stdout);
        tir_diag_print(&d, stdout);
        return;
    }
    bool reduces = tir_program_has_reduction(p);
    tir_mag_check mc = {.ctx = m->ctx, .src = c->text, .func = b->func, .nargs = c->nin, .args = c->in, .nres = c->nres};
    c->ok = true;
    printf("check: @%s at", b->func);
    for (int i = 0; i < c->spec.ndim; i++) printf(" %s=%lld", c->spec.dim_names[i], (long long)c->spec.dim_values[i]);
    printf("%s against the interpreter:", c->spec.ndim ? "" : " its own size");
    for (int i = 0; i < c->nres; i++) {
        double tol = tir_tolerance(tir_tensor_dtype(c->ref[i]), reduces), plain;
        double e = tir_mag_check_error(&mc, i, c->out[i], c->ref[i], tol, &plain); /* compare_mag.h */
        bool ok = !isnan(e) && e <= tol;
        c->ok &= ok;
        printf(" out%d %.3g (tol %.0e", i, e, tol);
        if (e != plain) printf("; %.3g against |ref|, scaled for cancellation", plain);
        printf(") %s%s", ok ? "ok" : "FAIL", i + 1 < c->nres ? ";" : "\n");
    }
    tir_mag_check_free(&mc);
}

int tir_cmd_bench(int argc, char **argv, tir_make_inputs_fn make) {
    bench_opts *b = malloc(sizeof *b);
    if (!b) return 1;
    int rc = parse(argc, argv, b);
    if (rc) {
        for (int i = 0; i < b->in.ndim; i++) free((char *)b->in.dim_names[i]);
        free(b);
        return rc < 0 ? bench_usage(stdout, 0) : rc;
    }
    rc = 1;
    tir_context *ctx = tir_context_create();
    tir_module *m = NULL;
    tir_program *p = NULL;
    tir_tensor **host = NULL;
    tir_device_tensor **dres = NULL;
    float *ms = NULL, *tot = NULL;
    sets S = {0};
    check C = {0};
    tir_diag d;
    char dev[256] = "";
    int nparams = 0, nres = 0, nk = 0, K = b->iters;
    if (!ctx) goto out;
    if (tir_module_parse_file(ctx, b->file, &m, &d) != TIR_OK) {
        tir_diag_print(&d, stderr);
        goto out;
    }
    if (!b->func) {
        if (tir_module_num_funcs(m) != 1) {
            fprintf(stderr, "tirc bench: which function? pass --func\n");
            rc = 2;
            goto out;
        }
        b->func = tir_module_func_name(m, 0);
    }
    const tir_func *f = tir_module_find(m, b->func);
    if (!f) {
        fprintf(stderr, "error: no function @%s in %s\n", b->func, b->file);
        goto out;
    }
    tir_status st = tir_device_probe(ctx, dev, sizeof dev, &d);
    if (st == TIR_ERR_NO_DRIVER) {
        fprintf(stderr, "tirc bench: %s: bench times kernels on a GPU; `tirc explain` shows the "
                        "kernels and the memory plan without one\n", d.msg);
        rc = 3;
        goto out;
    }
    if (st != TIR_OK) {
        tir_diag_print(&d, stderr);
        goto out;
    }
    nparams = f->nparams;
    nres = tir_func_num_results(m, b->func);
    host = calloc((size_t)nparams + 1, sizeof *host);
    dres = calloc((size_t)nres + 1, sizeof *dres);
    if (!host || !dres) goto out;
    /* the inputs from the function as written, where an index is visibly an index */
    if ((rc = make(f, &b->in, host)) != 0) goto out;
    rc = 1;
    if (b->check && check_prepare(m, f, b, make, host, nres, &C) != 0) goto out;
    f = NULL; /* compiling rewrites the module */
    if (tir_compile(m, b->func, &b->o, &p, &d) != TIR_OK) {
        tir_diag_print(&d, stderr);
        goto out;
    }
    if (b->check) check_run(m, p, b, &C);
    for (int i = 0; i < b->in.ndim; i++)
        if (tir_program_set_dim(p, b->in.dim_names[i], b->in.dim_values[i], &d) != TIR_OK) {
            tir_diag_print(&d, stderr);
            goto out;
        }
    nk = tir_program_num_kernels(p);

    /* input sets, rotated past the L2 */
    double set_bytes = 0;
    for (int i = 0; i < nparams; i++) set_bytes += (double)tir_tensor_nbytes(host[i]);
    double l2 = b->l2_mb * 1e6;
    S.n = set_bytes > 0 ? (int)(l2 / set_bytes) + 1 : 1;
    if (S.n < 2 && set_bytes > 0) S.n = 2;
    if (S.n > MAX_SETS) S.n = MAX_SETS;
    while (S.n > 1 && set_bytes * S.n > 16e9) S.n--; /* leave the device room for the run */
    S.nargs = nparams;
    S.t = calloc((size_t)(S.n * nparams) + 1, sizeof *S.t);
    ms = calloc((size_t)(nk + 1) * (size_t)K, sizeof *ms);
    tot = calloc((size_t)K + 1, sizeof *tot);
    if (!S.t || !ms || !tot) goto out;
    for (int k = 0; k < S.n; k++)
        if (upload_set(ctx, &S, k, host, true, &d) != TIR_OK) {
            tir_diag_print(&d, stderr);
            goto out;
        }
    tir_program_set_timing(p, true);
    for (int it = 0; it < b->warmup + K; it++) {
        int k = it % S.n;
        /* a donating run may overwrite any dead argument: every run gets fresh inputs */
        if (b->donate && it >= S.n && upload_set(ctx, &S, k, host, true, &d) != TIR_OK) {
            tir_diag_print(&d, stderr);
            goto out;
        }
        if (tir_program_run_device(p, nparams, &S.t[k * nparams], nres, dres, NULL, &d) != TIR_OK) {
            fprintf(stderr, "tirc bench: @%s: ", b->func);
            tir_diag_print(&d, stderr);
            goto out;
        }
        for (int r = 0; r < nres; r++) {
            tir_device_tensor_free(dres[r]);
            dres[r] = NULL;
        }
        if (it < b->warmup) continue;
        int t = it - b->warmup;
        for (int i = 0; i < nk; i++) {
            tir_kernel_info ki;
            tir_program_kernel_info(p, i, &ki);
            float x = ki.last_ms > 0 ? ki.last_ms : 0;
            ms[(size_t)i * (size_t)K + (size_t)t] = x;
            tot[t] += x;
        }
    }

    /* the table */
    const tir_mem_plan *pl = tir_program_last_plan(p, NULL);
    char sb[32];
    human(set_bytes * S.n, sb, sizeof sb);
    printf("@%s on %s: median of %d runs after %d warm-up, %d input set%s (%s) in rotation past a "
           "%.0f MB L2%s\n",
           b->func, dev, K, b->warmup, S.n, S.n == 1 ? "" : "s", sb, b->l2_mb,
           b->donate ? ", arguments donated" : "");
    printf("%-32s %-10s %10s %11s %9s %6s %9s  %s\n", "kernel", "op", "time_us", "bytes", "GB/s",
           "%copy", "TFLOP/s", "executor");
    FILE *js = NULL;
    if (b->json && !(js = fopen(b->json, "w")))
        fprintf(stderr, "tirc bench: cannot write %s: %s\n", b->json, strerror(errno));
    if (js) {
        fputs("{\"func\": ", js);
        json_str(js, b->func);
        fputs(", \"device\": ", js);
        json_str(js, dev);
        fprintf(js, ", \"iters\": %d, \"warmup\": %d, \"input_sets\": %d, \"donate\": %s, "
                    "\"copy_gbps\": %g, \"kernels\": [",
                K, b->warmup, S.n, b->donate ? "true" : "false", b->copy_gbps);
    }
    double sum_bytes = 0, sum_flops = 0;
    int nj = 0;
    for (int i = 0; i < nk; i++) {
        tir_kernel_info ki;
        tir_program_kernel_info(p, i, &ki);
        if (!ki.ptx && !ki.cublas) continue; /* a view: no kernel */
        float t = median(&ms[(size_t)i * (size_t)K], K);
        double bytes = 0, flops = 0;
        tir_program_kernel_traffic(p, i, &bytes, &flops);
        sum_bytes += bytes;
        sum_flops += flops;
        double gbps = t > 0 ? bytes / (t * 1e-3) / 1e9 : 0;
        double tf = t > 0 ? flops / (t * 1e-3) / 1e12 : 0;
        char bh[32], tfs[16] = "-";
        human(bytes, bh, sizeof bh);
        if (flops > 0) snprintf(tfs, sizeof tfs, "%.1f", tf);
        printf("%-32s %-10s %10.2f %11s %9.1f %5.1f%% %9s  %s\n", ki.name, ki.op, t * 1e3, bh, gbps,
               100 * gbps / b->copy_gbps, tfs, ki.executor ? ki.executor : ki.cublas ? "cublasLt" : "tir");
        if (js) {
            fprintf(js, "%s{\"name\": ", nj++ ? ", " : "");
            json_str(js, ki.name);
            fputs(", \"op\": ", js);
            json_str(js, ki.op);
            fprintf(js, ", \"us\": %.3f, \"bytes\": %.0f, \"gbps\": %.2f, \"pct_copy\": %.2f, "
                        "\"flops\": %.0f, \"tflops\": %.3f, \"executor\": ",
                    t * 1e3, bytes, gbps, 100 * gbps / b->copy_gbps, flops, tf);
            json_str(js, ki.executor ? ki.executor : ki.cublas ? "cublasLt" : "tir");
            fputc('}', js);
        }
    }
    float total = median(tot, K);
    double tg = total > 0 ? sum_bytes / (total * 1e-3) / 1e9 : 0;
    char bh[32];
    human(sum_bytes, bh, sizeof bh);
    char tfs[16] = "-";
    if (sum_flops > 0 && total > 0) snprintf(tfs, sizeof tfs, "%.1f", sum_flops / (total * 1e-3) / 1e12);
    printf("%-32s %-10s %10.2f %11s %9.1f %5.1f%% %9s\n", "total", "", total * 1e3, bh, tg,
           100 * tg / b->copy_gbps, tfs);
    if (pl) {
        char pk[32], ar[32], re[32], ag[32], nv[32];
        human((double)pl->peak_bytes, pk, sizeof pk);
        human((double)pl->arena_bytes, ar, sizeof ar);
        human((double)pl->own_bytes, re, sizeof re);
        human((double)pl->param_bytes, ag, sizeof ag);
        human((double)pl->naive_bytes, nv, sizeof nv);
        char lv[32];
        human((double)pl->live_bytes, lv, sizeof lv);
        printf("peak device memory %s = arguments %s + arena %s + results %s (%d in place, %d "
               "reused; a buffer per value: %s; live at once at most: %s)\n",
               pk, ag, ar, re, pl->n_inplace, pl->n_reused, nv, lv);
    }
    if (js) {
        fprintf(js, "], \"check\": \"%s\", \"total_us\": %.3f, \"total_bytes\": %.0f, \"total_flops\": %.0f",
                !C.ran ? "skipped" : C.ok ? "ok" : "fail", total * 1e3, sum_bytes, sum_flops);
        if (pl)
            fprintf(js, ", \"peak_bytes\": %zu, \"arena_bytes\": %zu, \"result_bytes\": %zu, "
                        "\"argument_bytes\": %zu, \"naive_bytes\": %zu, \"live_bytes\": %zu",
                    pl->peak_bytes, pl->arena_bytes, pl->own_bytes, pl->param_bytes, pl->naive_bytes,
                    pl->live_bytes);
        fputs("}\n", js);
        if (fclose(js) != 0) fprintf(stderr, "tirc bench: error writing %s\n", b->json);
    }
    rc = C.ran && !C.ok ? 1 : 0;
    if (rc) fprintf(stderr, "tirc bench: @%s: the check against the interpreter FAILED (see above)\n", b->func);
out:
    check_free(&C);
    sets_free(&S);
    for (int i = 0; host && i < nparams; i++) tir_tensor_free(host[i]);
    free(host);
    free(dres);
    free(ms);
    free(tot);
    tir_program_free(p);
    if (m) tir_module_free(m);
    if (ctx) tir_context_destroy(ctx);
    for (int i = 0; i < b->in.ndim; i++) free((char *)b->in.dim_names[i]);
    free(b);
    return rc;
}
