/* gpu_harness.h: the run-and-compare core the GPU suites share (gpu_fused, gpu_tile,
 * gpu_horizontal): parse a program twice (the interpreter's copy gets its value_and_grad bodies
 * built; the GPU's copy is what tir_compile rewrites), compile @f with outputs poisoned, make the
 * inputs with the suite's fill (after compiling, in parameter order, so each suite's seeded
 * draws are what they were), run the reference interpreter, run on the GPU (host tensors, or
 * device tensors with donated arguments), and compare every result by DESIGN §6's rule, scaled
 * for cancellation (compiler/compare_mag.h: where a plain ‖out − ref‖/‖ref‖ exceeds the
 * tolerance, the error is measured again against the magnitude program's scale; the tolerances
 * are the same numbers). One PASS/FAIL line per case and the counts, through gh_report.
 * Header-only static functions; each suite is one file linking libtir only. */
#ifndef TIR_GPU_HARNESS_H
#define TIR_GPU_HARNESS_H

#include <stdarg.h>
#include <stdio.h>

#include "compare_mag.h"
#include "compile.h"
#include "ir.h"
#include "passes.h"

static tir_context *gh_ctx;
static const char *gh_filter;
static int gh_npass, gh_nfail;
static int gh_label_width = 48; /* the label column of the suite's lines */
static uint64_t gh_rng;          /* the suite's seed */

static inline double gh_urand(void) { /* xorshift64*, uniform in [0, 1) */
    gh_rng ^= gh_rng >> 12;
    gh_rng ^= gh_rng << 25;
    gh_rng ^= gh_rng >> 27;
    return (double)((gh_rng * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

static inline void gh_report(bool ok, const char *label, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline void gh_report(bool ok, const char *label, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s  %-*s ", ok ? "PASS" : "FAIL", gh_label_width, label);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    if (ok) gh_npass++;
    else gh_nfail++;
}

/* the label passes --filter */
static inline bool gh_selected(const char *label) { return !gh_filter || strstr(label, gh_filter); }

/* ---------------------------------------------------------------- one case */

typedef struct gh_case {
    const char *label, *src;      /* the program; its @f runs */
    const tir_bindings *bind;     /* sizes of the symbols in @f's parameter types */
    /* fills parameter i (a new tensor of its type) */
    void (*fill)(tir_tensor *t, int param, void *user);
    void *user;
    bool reduces;                 /* tir_tolerance's reduces */
    bool tol_from_args;           /* the tolerance is at least that of each float argument's dtype */
    bool set_matmul;              /* tir_options.matmul = matmul */
    tir_matmul_exec matmul;
    bool donate;                  /* device tensors with donate_args */
    bool check_refused;           /* donated: a second run on the taken arguments must be refused */
} gh_case;

typedef struct gh_result {
    bool ran;          /* compiled, ran and compared; else msg says what failed */
    char msg[640];
    bool ok;           /* every result within its tolerance */
    int kernels;       /* -1 until compiled */
    int ninplace;      /* donated: results written in place of an argument */
    double err, tol;   /* the first failing result's (else the worst) error, as compared, and tolerance */
    double plain;      /* that result's ‖out − ref‖/‖ref‖ */
    bool scaled;       /* some result passed only at the magnitude scale */
} gh_result;

static inline void gh_fail(gh_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void gh_fail(gh_result *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    r->ran = false;
}

/* uploads args, runs p on device tensors with donated arguments, downloads the results */
static inline tir_status gh_run_donated(tir_program *p, int nargs, tir_tensor **args, int nres, tir_tensor **out,
                                 bool check_refused, int *ninplace, tir_diag *d) {
    tir_device_tensor **da = calloc((size_t)nargs + 1, sizeof *da), **dr = calloc((size_t)nres + 1, sizeof *dr);
    tir_status st = da && dr ? TIR_OK : TIR_ERR_OOM;
    if (st != TIR_OK) snprintf(d->msg, sizeof d->msg, "out of memory");
    for (int i = 0; st == TIR_OK && i < nargs; i++) st = tir_device_tensor_from_host(gh_ctx, args[i], &da[i], d);
    if (st == TIR_OK) st = tir_program_run_device(p, nargs, da, nres, dr, NULL, d);
    for (int i = 0; st == TIR_OK && i < nres; i++) st = tir_device_tensor_to_host(dr[i], &out[i], d);
    const tir_mem_plan *pl = st == TIR_OK ? tir_program_last_plan(p, NULL) : NULL;
    *ninplace = pl ? pl->n_inplace : 0;
    if (check_refused && st == TIR_OK && *ninplace > 0) { /* the results took over donated buffers */
        tir_device_tensor **dr2 = calloc((size_t)nres + 1, sizeof *dr2);
        tir_diag d2;
        tir_status again = dr2 ? tir_program_run_device(p, nargs, da, nres, dr2, NULL, &d2) : TIR_ERR_OOM;
        for (int i = 0; dr2 && i < nres; i++) tir_device_tensor_free(dr2[i]);
        free(dr2);
        if (again != TIR_ERR_INVALID) {
            st = again == TIR_OK ? TIR_ERR_INTERNAL : again;
            snprintf(d->msg, sizeof d->msg, "a second run on donated arguments was not refused (%s)",
                     tir_status_name(again));
        }
    }
    for (int i = 0; da && i < nargs; i++) tir_device_tensor_free(da[i]);
    for (int i = 0; dr && i < nres; i++) tir_device_tensor_free(dr[i]);
    free(da);
    free(dr);
    return st;
}

/* Runs one case; r says how it went (the caller prints the line). */
static inline void gh_run(const gh_case *c, gh_result *r) {
    memset(r, 0, sizeof *r);
    r->kernels = -1;
    tir_diag d;
    tir_module *mref = NULL, *mgpu = NULL;
    tir_program *p = NULL;
    tir_tensor **args = NULL, **ref = NULL, **out = NULL;
    int nargs = 0, nres = 0;
    if (tir_module_parse(gh_ctx, c->src, c->label, &mref, &d) != TIR_OK ||
        tir_module_parse(gh_ctx, c->src, c->label, &mgpu, &d) != TIR_OK ||
        tir_pass_grad(mref, &d) != TIR_OK) { /* the interpreter runs value_and_grad bodies only once built */
        gh_fail(r, "parse: %s (line %d)", d.msg, d.line);
        goto out;
    }
    tir_options o;
    tir_options_init(&o);
    o.poison = true; /* unwritten outputs read as the poison, which never matches */
    o.donate_args = c->donate;
    if (c->set_matmul) o.matmul = c->matmul;
    if (tir_compile(mgpu, "f", &o, &p, &d) != TIR_OK) {
        gh_fail(r, "compile: %s: %s", tir_status_name(d.status), d.msg);
        goto out;
    }
    r->kernels = tir_program_num_kernels(p);
    const tir_func *f = tir_module_find(mref, "f");
    nargs = f->nparams;
    nres = f->nres;
    args = calloc((size_t)nargs + 1, sizeof *args);
    ref = calloc((size_t)nres + 1, sizeof *ref);
    out = calloc((size_t)nres + 1, sizeof *out);
    if (!args || !ref || !out) {
        gh_fail(r, "out of memory");
        goto out;
    }
    for (int i = 0; i < nargs; i++) {
        int64_t dims[TIR_MAX_RANK];
        const tir_type *t = &f->params[i]->type;
        if (tir_type_eval(t, c->bind, dims) != TIR_OK || !(args[i] = tir_tensor_new(t->dtype, t->rank, dims))) {
            gh_fail(r, "cannot make parameter %d", i);
            goto out;
        }
        c->fill(args[i], i, c->user);
    }
    if (tir_interpret(mref, "f", nargs, args, nres, ref, &d) != TIR_OK) {
        gh_fail(r, "interpreter: %s", d.msg);
        goto out;
    }
    if (c->donate) {
        tir_status st = gh_run_donated(p, nargs, args, nres, out, c->check_refused, &r->ninplace, &d);
        if (st != TIR_OK) {
            gh_fail(r, "gpu (donated): %s: %s", tir_status_name(st), d.msg);
            goto out;
        }
    } else if (tir_program_run(p, nargs, args, nres, out, &d) != TIR_OK) {
        gh_fail(r, "gpu: %s: %s", tir_status_name(d.status), d.msg);
        goto out;
    }
    r->ran = r->ok = true;
    /* a cancelling reduction? where the plain scale misses, the magnitudes' (compare_mag.h) */
    tir_mag_check mc = {.ctx = gh_ctx, .m = mref, .func = "f", .nargs = nargs, .args = args, .nres = nres};
    for (int i = 0; i < nres; i++) {
        double t = tir_tolerance(tir_tensor_dtype(ref[i]), c->reduces);
        /* a result cast up from a 16-bit value carries that value's rounding: the tolerance is
         * that of the narrowest float dtype the program computes in */
        for (int a = 0; c->tol_from_args && a < nargs; a++) {
            tir_dtype adt = tir_tensor_dtype(args[a]);
            if (tir_dtype_is_float(adt) && tir_tolerance(adt, c->reduces) > t) t = tir_tolerance(adt, c->reduces);
        }
        double plain, e = tir_mag_check_error(&mc, i, out[i], ref[i], t, &plain);
        if (e != plain && e <= t) r->scaled = true;
        bool bad = isnan(e) || e > t;
        if (bad ? r->ok : (r->ok && e >= r->err)) {
            r->err = e;
            r->tol = t;
            r->plain = plain;
        }
        if (bad) r->ok = false;
    }
    tir_mag_check_free(&mc);
out:
    for (int i = 0; args && i < nargs; i++) tir_tensor_free(args[i]);
    for (int i = 0; i < nres; i++) {
        if (ref) tir_tensor_free(ref[i]);
        if (out) tir_tensor_free(out[i]);
    }
    free(args);
    free(ref);
    free(out);
    tir_program_free(p);
    tir_module_free(mref);
    tir_module_free(mgpu);
}

/* "rel err 1.2e-05 (tol 1e-04)", with the plain error beside it where the scale applied */
static inline const char *gh_err_text(const gh_result *r, char *buf, size_t n) {
    if (r->plain != r->err && isfinite(r->plain))
        snprintf(buf, n, "rel err %.2e (tol %.0e; %.2e against |ref|, scaled for cancellation)", r->err, r->tol,
                 r->plain);
    else snprintf(buf, n, "rel err %.2e (tol %.0e)", r->err, r->tol);
    return buf;
}

/* the probe every suite starts with: 77 (skipped) without a CUDA driver, 1 when the context or
 * the driver fails */
static inline int gh_start(const char *suite) {
    gh_ctx = tir_context_create();
    if (!gh_ctx) return 1;
    char desc[256];
    tir_diag d;
    if (tir_device_probe(gh_ctx, desc, sizeof desc, &d) != TIR_OK) {
        printf("%s: no GPU: %s\n", suite, d.msg);
        tir_context_destroy(gh_ctx);
        gh_ctx = NULL;
        return d.status == TIR_ERR_NO_DRIVER ? 77 : 1; /* a driver that fails is no skip */
    }
    printf("%s on %s\n", suite, desc);
    return 0;
}

/* `N passed, M failed`, the context freed; the exit status */
static inline int gh_finish(void) {
    printf("%d passed, %d failed\n", gh_npass, gh_nfail);
    tir_context_destroy(gh_ctx);
    return gh_nfail ? 1 : 0;
}

#endif
