/* cmd_gpu.c: tirc's GPU verbs (see cmd_gpu.h): `ptx` with its kernel report from ptxas, running a
 * function on the GPU, and comparing the GPU against the interpreter by DESIGN §6's rule. */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd_gpu.h"
#include "compare_mag.h"
#include "compile.h"
#include "exec_matmul.h"

/* ---------------------------------------------------------------- ptxas */

/* $TIR_PTXAS, then ptxas on PATH, then the toolkit's usual place; NULL when there is none */
static const char *find_ptxas(char *buf, size_t n) {
    const char *env = getenv("TIR_PTXAS");
    if (env && *env) return access(env, X_OK) == 0 ? env : NULL;
    const char *path = getenv("PATH");
    for (const char *p = path; p && *p;) {
        const char *e = strchr(p, ':');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len) {
            snprintf(buf, n, "%.*s/ptxas", (int)len, p);
            if (access(buf, X_OK) == 0) return buf;
        }
        if (!e) break;
        p = e + 1;
    }
    snprintf(buf, n, "/usr/local/cuda/bin/ptxas");
    return access(buf, X_OK) == 0 ? buf : NULL;
}

/* 'text' for the shell, inner single quotes escaped */
static void shell_quote(char *out, size_t n, const char *s) {
    size_t k = 0;
    if (k + 1 < n) out[k++] = '\'';
    for (; *s && k + 5 < n; s++) {
        if (*s == '\'') {
            memcpy(out + k, "'\\''", 4);
            k += 4;
        } else {
            out[k++] = *s;
        }
    }
    if (k + 1 < n) out[k++] = '\'';
    out[k] = 0;
}

typedef struct ptxas_info {
    bool ran, ok;
    int regs, smem, spill_stores, spill_loads, stack;
    char error[512];
} ptxas_info;

static int num_before(const char *text, const char *suffix) {
    const char *p = strstr(text, suffix);
    if (!p) return 0;
    while (p > text && p[-1] == ' ') p--;
    const char *q = p;
    while (q > text && q[-1] >= '0' && q[-1] <= '9') q--;
    return q < p ? atoi(q) : 0;
}

/* ptxas -v on one PTX file: its resource usage, or its error */
static void run_ptxas(const char *ptxas, const char *arch, const char *file, ptxas_info *pi) {
    memset(pi, 0, sizeof *pi);
    char qexe[1100], qfile[4200], cmd[6000];
    shell_quote(qexe, sizeof qexe, ptxas);
    shell_quote(qfile, sizeof qfile, file);
    snprintf(cmd, sizeof cmd, "%s -arch=%s -v -o /dev/null %s 2>&1", qexe, arch, qfile);
    FILE *f = popen(cmd, "r");
    if (!f) {
        if (snprintf(pi->error, sizeof pi->error, "cannot run ptxas: %s", strerror(errno)) < 0)
            pi->error[0] = 0;
        return;
    }
    pi->ran = true;
    char line[1024];
    size_t elen = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "Used ") && strstr(line, "registers")) {
            pi->regs = num_before(line, " registers");
            pi->smem = num_before(line, " bytes smem");
        }
        if (strstr(line, "spill stores")) {
            pi->spill_stores = num_before(line, " bytes spill stores");
            pi->spill_loads = num_before(line, " bytes spill loads");
            pi->stack = num_before(line, " bytes stack frame");
        }
        if (strstr(line, "error") && elen + 1 < sizeof pi->error) {
            if (snprintf(pi->error + elen, sizeof pi->error - elen, "%s", line) < 0) break;
            elen = strlen(pi->error);
        }
    }
    int rc = pclose(f);
    pi->ok = rc == 0;
    if (!pi->ok && !pi->error[0]) snprintf(pi->error, sizeof pi->error, "ptxas exited with %d", rc);
}

/* ---------------------------------------------------------------- tirc ptx */

static int ptx_usage(void) {
    fprintf(stderr, "usage: tirc ptx F.tir [--func F] [--arch sm_90a] [-o DIR] "
                    "[--matmul=tir|cublas|auto] [--tf32]\n");
    return 1;
}

static bool make_dir(const char *dir) {
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) return true;
    fprintf(stderr, "tirc ptx: cannot create %s: %s\n", dir, strerror(errno));
    return false;
}

/* one function: its kernels' PTX out, and the report's rows */
static int ptx_func(tir_module *m, const char *func, const tir_options *base, const char *dir,
                    const char *ptxas, FILE *rep) {
    tir_options o = *base;
    const char *arch = o.arch;
    tir_program *p = NULL;
    tir_diag d;
    if (tir_compile(m, func, &o, &p, &d) != TIR_OK) {
        fprintf(stderr, "tirc ptx: @%s: ", func);
        tir_diag_print(&d, stderr);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < tir_program_num_kernels(p); i++) {
        tir_kernel_info ki;
        tir_program_kernel_info(p, i, &ki);
        char file[4096] = "";
        if (ki.executor) fprintf(rep, "# %s: %s\n", ki.name, ki.executor);
        if (ki.cublas) { /* a cuBLASLt call: no PTX of its own (tir's fallback kernel stays unused) */
            fprintf(rep, "%-28s %-12s %5s %8s %8s %7s  %-10s %s\n", ki.name, ki.op, "-", "-", "-",
                    "-", "cublasLt", "-");
            continue;
        }
        if (ki.ptx) {
            FILE *f = NULL;
            if (dir) {
                if (snprintf(file, sizeof file, "%s/%s.ptx", dir, ki.name) < (int)sizeof file)
                    f = fopen(file, "w");
            } else {
                int fd;
                const char *tmp = getenv("TMPDIR");
                snprintf(file, sizeof file, "%s/tir-XXXXXX.ptx", tmp && *tmp ? tmp : "/tmp");
                if ((fd = mkstemps(file, 4)) >= 0) f = fdopen(fd, "w");
                printf("// ---- @%s: kernel %s (%s)\n%s", func, ki.name, ki.op, ki.ptx);
            }
            if (!f) {
                fprintf(stderr, "tirc ptx: cannot write %s: %s\n", file, strerror(errno));
                rc = 1;
                file[0] = 0;
            } else {
                fputs(ki.ptx, f);
                if (fclose(f) != 0) rc = 1;
            }
        }
        char grid[160] = "", g[48];
        for (int a = 0; a < 3; a++) {
            if (ki.k->grid[a]) tir_dim_print(ki.k->grid[a], g, sizeof g);
            else snprintf(g, sizeof g, "1");
            size_t len = strlen(grid);
            snprintf(grid + len, sizeof grid - len, "%s%s", a ? " x " : "", g);
        }
        char block[48];
        snprintf(block, sizeof block, "%dx%dx%d", ki.k->block[0], ki.k->block[1], ki.k->block[2]);
        if (!ki.ptx) {
            fprintf(rep, "%-28s %-12s %5s %8s %8s %7s  %-10s %s\n", ki.name, ki.op, "-", "-", "-",
                    "-", "alias", "-");
            continue;
        }
        ptxas_info pi = {0};
        if (ptxas && file[0]) run_ptxas(ptxas, arch, file, &pi);
        if (!dir && file[0]) remove(file);
        if (!ptxas || !pi.ran) {
            fprintf(rep, "%-28s %-12s %5s %8s %8s %7s  %-10s %s\n", ki.name, ki.op, "n/a", "n/a",
                    "n/a", "n/a", block, grid);
        } else if (!pi.ok) {
            fprintf(rep, "%-28s %-12s %5s %8s %8s %7s  %-10s %s\n", ki.name, ki.op, "FAIL", "-",
                    "-", "-", block, grid);
            fprintf(stderr, "tirc ptx: ptxas rejects %s:\n%s", ki.name, pi.error);
            rc = 1;
        } else {
            fprintf(rep, "%-28s %-12s %5d %8d %8d %7d  %-10s %s\n", ki.name, ki.op, pi.regs,
                    pi.smem + ki.k->shared_bytes, pi.stack, pi.spill_stores + pi.spill_loads,
                    block, grid);
        }
    }
    tir_program_free(p);
    return rc;
}

int tir_cmd_ptx(int argc, char **argv) {
    const char *file = NULL, *func = NULL, *arch = "sm_90a", *dir = NULL;
    tir_options opts;
    tir_options_init(&opts);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char merr[128];
        int mr = tir_mm_parse_option(argc, argv, &i, &opts, merr, sizeof merr);
        if (mr < 0) {
            fprintf(stderr, "tirc ptx: %s\n", merr);
            return ptx_usage();
        }
        if (mr > 0) continue;
        if ((strcmp(a, "--func") == 0 || strcmp(a, "-f") == 0) && i + 1 < argc) func = argv[++i];
        else if (strcmp(a, "--arch") == 0 && i + 1 < argc) arch = argv[++i];
        else if (strcmp(a, "-o") == 0 && i + 1 < argc) dir = argv[++i];
        else if (strncmp(a, "--func=", 7) == 0) func = a + 7;
        else if (strncmp(a, "--arch=", 7) == 0) arch = a + 7;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) return ptx_usage(), 0;
        else if (a[0] == '-' || file) {
            fprintf(stderr, "tirc ptx: unexpected argument '%s'\n", a);
            return ptx_usage();
        } else file = a;
    }
    if (!file) return ptx_usage();
    for (const char *c = arch; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_')) {
            fprintf(stderr, "tirc ptx: bad --arch '%s'\n", arch);
            return 1;
        }
    if (dir && !make_dir(dir)) return 1;

    tir_context *ctx = tir_context_create();
    if (!ctx) {
        fprintf(stderr, "tirc ptx: out of memory\n");
        return 1;
    }
    tir_module *m = NULL;
    tir_diag d;
    int rc = 0;
    if (tir_module_parse_file(ctx, file, &m, &d) != TIR_OK) {
        tir_diag_print(&d, stderr);
        tir_context_destroy(ctx);
        return 1;
    }
    char pbuf[4096];
    const char *ptxas = find_ptxas(pbuf, sizeof pbuf);
    FILE *rep = dir ? stdout : stderr; /* without -o, stdout carries the PTX itself */
    if (func && !tir_module_find(m, func)) {
        fprintf(stderr, "tirc ptx: %s has no function @%s\n", file, func);
        rc = 1;
    } else {
        /* the names of the functions first: compiling rewrites the module */
        int nf = func ? 1 : tir_module_num_funcs(m);
        char **names = calloc((size_t)(nf ? nf : 1), sizeof *names);
        for (int i = 0; names && i < nf; i++)
            names[i] = strdup(func ? func : tir_module_func_name(m, i));
        fprintf(rep, "%-28s %-12s %5s %8s %8s %7s  %-10s %s\n", "kernel", "op", "regs", "shared",
                "stack", "spills", "block", "grid");
        for (int i = 0; names && i < nf; i++) {
            if (!names[i]) {
                rc = 1;
                continue;
            }
            char sub[4096];
            const char *fdir = dir;
            if (dir && nf > 1) {
                snprintf(sub, sizeof sub, "%s/%s", dir, names[i]);
                if (!make_dir(sub)) {
                    rc = 1;
                    continue;
                }
                fdir = sub;
            }
            if (nf > 1) fprintf(rep, "# @%s\n", names[i]);
            opts.arch = arch;
            rc |= ptx_func(m, names[i], &opts, fdir, ptxas, rep);
        }
        if (!names) rc = 1;
        for (int i = 0; names && i < nf; i++) free(names[i]);
        free(names);
        if (!ptxas)
            fprintf(rep, "(no ptxas on PATH or in /usr/local/cuda/bin: resource usage n/a)\n");
    }
    tir_module_free(m);
    tir_context_destroy(ctx);
    return rc;
}

/* ---------------------------------------------------------------- run and compare */

static tir_status compile_bound(tir_module *m, const char *func, const tir_options *opts,
                                const tir_bindings *dims, tir_program **p, tir_diag *d) {
    tir_status s = tir_compile(m, func, opts, p, d);
    for (int i = 0; s == TIR_OK && dims && i < dims->n; i++)
        s = tir_program_set_dim(*p, dims->names[i], dims->values[i], d);
    if (s != TIR_OK) {
        tir_program_free(*p);
        *p = NULL;
    }
    return s;
}

tir_status tir_cmd_run_gpu(tir_module *m, const char *func, const tir_options *opts,
                           const tir_bindings *dims, int nargs, tir_tensor *const *args, int nres,
                           tir_tensor **results, tir_diag *d) {
    tir_program *p = NULL;
    tir_status s = compile_bound(m, func, opts, dims, &p, d);
    if (s != TIR_OK) return s;
    s = tir_program_run(p, nargs, args, nres, results, d);
    const tir_mem_plan *pl = s == TIR_OK ? tir_program_last_plan(p, NULL) : NULL;
    if (pl) /* stderr: stdout carries the results' summaries */
        fprintf(stderr, "gpu memory: peak %.2f MiB in one arena of %d slots (%d values reuse a dead "
                        "value's slot, %d written in place; a buffer per value: %.2f MiB)\n",
                (double)pl->peak_bytes / (1 << 20), pl->nslots, pl->n_reused, pl->n_inplace,
                (double)pl->naive_bytes / (1 << 20));
    for (int i = 0; s == TIR_OK && i < tir_program_num_kernels(p); i++) { /* who ran each matmul */
        tir_kernel_info ki;
        tir_program_kernel_info(p, i, &ki);
        if (ki.executor) fprintf(stderr, "matmul %s: %s\n", ki.name, ki.executor);
    }
    tir_program_free(p);
    return s;
}

static void type_text(const tir_tensor *t, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "%s[", tir_dtype_name(tir_tensor_dtype(t)));
    for (int i = 0; i < tir_tensor_rank(t) && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "",
                              (long long)tir_tensor_dim(t, i));
    if (k < n) snprintf(buf + k, n - k, "]");
}

int tir_cmd_compare(tir_module *m, const char *func, const tir_options *opts,
                    const tir_bindings *dims, int nargs, tir_tensor *const *args, FILE *report,
                    tir_tensor **gpu_results) {
    int nres = tir_func_num_results(m, func);
    if (nres < 0) {
        fprintf(stderr, "error: no function @%s\n", func);
        return 1;
    }
    if (!report) report = stdout;
    tir_tensor **ref = calloc((size_t)(2 * nres + 1), sizeof *ref), **out = ref + nres;
    if (!ref) return 1;
    if (gpu_results)
        for (int i = 0; i < nres; i++) gpu_results[i] = NULL;
    tir_diag d;
    int rc = 1;
    bool ran = false;
    tir_program *p = NULL;
    /* the oracle first, on the module as written: compiling rewrites it */
    tir_diag dref;
    tir_status sref = tir_interpret(m, func, nargs, args, nres, ref, &dref);
    /* the program as written, for the magnitude program (compare_mag.h) should a result need it */
    char *text = tir_module_print(m);
    tir_mag_check mc = {.ctx = m->ctx, .src = text, .func = func, .nargs = nargs, .args = args, .nres = nres};
    if (compile_bound(m, func, opts, dims, &p, &d) != TIR_OK) {
        fprintf(stderr, "gpu: ");
        tir_diag_print(&d, stderr);
        goto done;
    }
    if (sref != TIR_OK) /* perhaps it needed the pipeline (value_and_grad): try once more */
        sref = tir_interpret(m, func, nargs, args, nres, ref, &dref);
    if (sref != TIR_OK) {
        fprintf(stderr, "interpreter: ");
        tir_diag_print(&dref, stderr);
        goto done;
    }
    if (tir_program_run(p, nargs, args, nres, out, &d) != TIR_OK) {
        fprintf(stderr, "gpu: ");
        tir_diag_print(&d, stderr);
        goto done;
    }
    bool reduces = tir_program_has_reduction(p);
    ran = true;
    rc = 0;
    for (int i = 0; i < nres; i++) {
        double tol = tir_tolerance(tir_tensor_dtype(ref[i]), reduces), plain;
        double e = tir_mag_check_error(&mc, i, out[i], ref[i], tol, &plain); /* compare_mag.h */
        bool ok = !isnan(e) && e <= tol;
        char ty[160];
        type_text(ref[i], ty, sizeof ty);
        fprintf(report, "@%s out%d %-24s rel_err %-10.3g tol %-8.0e %s", func, i, ty, e, tol, ok ? "ok" : "FAIL");
        if (e != plain)
            fprintf(report, " (%.3g against |ref|; measured against the sums of magnitudes)", plain);
        fprintf(report, "\n");
        if (!ok) rc = 1;
    }
done:
    for (int i = 0; i < nres; i++) {
        tir_tensor_free(ref[i]);
        if (gpu_results && ran) gpu_results[i] = out[i];
        else tir_tensor_free(out[i]);
    }
    free(ref);
    tir_mag_check_free(&mc);
    tir_free(text);
    tir_program_free(p);
    return rc;
}
