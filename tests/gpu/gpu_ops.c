/* gpu_ops.c: the GPU suite. For every op of ops.def over dtypes and shapes (odd sizes 1, 7, 1000,
 * 4097; broadcasting; symbolic dims bound to several sizes, all served by one compiled program) it
 * builds a tiny .tir program, runs it on the GPU with output buffers poisoned and on the
 * interpreter with the same random non-zero inputs, and compares them by DESIGN §6's rule; then
 * every function of the examples (examples/NAME.tir) with every symbol bound to a small size. One line per case,
 * `N passed, M failed` last. Links libtir only (the GPU machine has no libcheck).
 *
 * usage: gpu_ops [--filter TEXT] [--examples DIR] [--no-examples] [--list]
 * exit 0 all passed, 1 a failure, 77 no CUDA driver (ctest counts that as skipped). */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>

#include "compile.h"
#include "device.h"
#include "ir.h"
#include "passes.h"
#include "gpu_harness.h"

static tir_context *ctx;
static const char *filter;
static bool list_only;
static int npass, nfail, nskip;

/* snprintf that may truncate (labels and messages) */
static void fmt(char *buf, size_t n, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *buf, size_t n, const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, n, f, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- one case */


/* per-parameter input ranges: "name=lo:hi;name=lo:hi" (ints are inclusive) */
typedef struct range {
    double lo, hi;
    const char *over;
} range;

static void param_range(const range *r, const char *name, double *lo, double *hi) {
    *lo = r->lo;
    *hi = r->hi;
    if (!r->over || !name) return;
    size_t n = strlen(name);
    for (const char *p = r->over; *p;) {
        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            sscanf(p + n + 1, "%lf:%lf", lo, hi);
            return;
        }
        const char *e = strchr(p, ';');
        if (!e) break;
        p = e + 1;
    }
}

static void fill(tir_tensor *t, double lo, double hi) {
    tir_dtype dt = tir_tensor_dtype(t);
    int64_t n = tir_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double v;
        if (dt == TIR_BOOL) {
            v = gh_urand() < 0.5;
        } else if (tir_dtype_is_int(dt)) {
            do v = floor(lo + gh_urand() * (hi - lo + 1));
            while (v == 0 && lo < 0 && hi > 0); /* non-zero where zero is not forced */
            if (v > hi) v = hi;
        } else {
            v = lo + gh_urand() * (hi - lo);
            if (fabs(v) < 0.05 * (hi - lo)) v = v < 0 ? -0.05 * (hi - lo) : 0.05 * (hi - lo);
            if (v < lo) v = lo;
            if (v > hi) v = hi;
        }
        tir_tensor_set(t, i, v);
    }
}

/* "N=7,M=3" -> bindings; names point into keep */
static bool parse_binds(const char *s, char *keep, size_t n, tir_bindings *b) {
    memset(b, 0, sizeof *b);
    snprintf(keep, n, "%s", s);
    for (char *p = keep; p && *p;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = 0;
        char *eq = strchr(p, '=');
        if (!eq) return false;
        *eq = 0;
        if (tir_bindings_set(b, p, atoll(eq + 1)) != TIR_OK) return false;
        p = comma ? comma + 1 : NULL;
    }
    return true;
}

static void report(bool ok, const char *label, const char *binds, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report(bool ok, const char *label, const char *binds, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s  %-44s %-22s ", ok ? "PASS" : "FAIL", label, binds && *binds ? binds : "-");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    if (ok) npass++;
    else nfail++;
}

/* Compiles @func of src once, then for each binding set (';'-separated) runs it on random inputs
 * on the GPU (host and device-resident) and the interpreter and compares. */
static void run_case(const char *label, const char *src, const char *func, const char *bindsets,
                     range r) {
    if (filter && !strstr(label, filter)) return;
    if (list_only) {
        printf("%s\n", label);
        return;
    }
    tir_diag d;
    tir_module *mref = NULL, *mgpu = NULL;
    tir_program *p = NULL;
    if (tir_module_parse(ctx, src, label, &mref, &d) != TIR_OK ||
        tir_module_parse(ctx, src, label, &mgpu, &d) != TIR_OK) {
        report(false, label, NULL, "parse: %s (line %d)", d.msg, d.line);
        goto out;
    }
    for (int i = 0; i < mref->nfuncs; i++) /* the oracle interprets value_and_grad's body */
        if (mref->funcs[i]->grad_of && mref->funcs[i]->nres == 0) {
            if (tir_pass_grad(mref, &d) != TIR_OK) {
                report(false, label, NULL, "grad pass: %s", d.msg);
                goto out;
            }
            break;
        }
    tir_options o;
    tir_options_init(&o);
    o.poison = true;
    if (tir_compile(mgpu, func, &o, &p, &d) != TIR_OK) {
        report(false, label, NULL, "compile: %s: %s (line %d)", tir_status_name(d.status), d.msg,
               d.line);
        goto out;
    }
    const tir_func *f = tir_module_find(mref, func);
    int nres = tir_func_num_results(mref, func);
    char sets[512];
    snprintf(sets, sizeof sets, "%s", bindsets ? bindsets : "");
    char *save = NULL;
    bool first = true;
    for (char *bs = strtok_r(sets, ";", &save); first || bs; bs = strtok_r(NULL, ";", &save)) {
        const char *binds = bs ? bs : "";
        first = false;
        char keep[256];
        tir_bindings b;
        if (!parse_binds(binds, keep, sizeof keep, &b)) {
            report(false, label, binds, "bad bindings");
            continue;
        }
        for (int i = 0; i < b.n; i++) tir_program_set_dim(p, b.names[i], b.values[i], NULL);
        tir_tensor *args[32] = {0}, *ref[16] = {0}, *out[16] = {0};
        int nargs = f->nparams;
        bool ok = nargs <= 32 && nres <= 16;
        for (int i = 0; ok && i < nargs; i++) {
            int64_t dims[TIR_MAX_RANK];
            const tir_type *t = &f->params[i]->type;
            if (tir_type_eval(t, &b, dims) != TIR_OK) {
                report(false, label, binds, "cannot size parameter %d", i);
                ok = false;
                break;
            }
            args[i] = tir_tensor_new(t->dtype, t->rank, dims);
            double lo, hi;
            param_range(&r, f->params[i]->name, &lo, &hi);
            fill(args[i], lo, hi);
        }
        if (ok && tir_interpret(mref, func, nargs, args, nres, ref, &d) != TIR_OK) {
            report(false, label, binds, "interpreter: %s", d.msg);
            ok = false;
        }
        if (ok && tir_program_run(p, nargs, args, nres, out, &d) != TIR_OK) {
            report(false, label, binds, "gpu: %s: %s", tir_status_name(d.status), d.msg);
            ok = false;
        }
        if (ok) {
            bool reduces = tir_program_has_reduction(p);
            double worst = 0, worst_tol = 0;
            int bad = -1;
            for (int i = 0; i < nres; i++) {
                double e = tir_rel_error(out[i], ref[i]);
                double tol = tir_tolerance(tir_tensor_dtype(ref[i]), reduces);
                if (isnan(e) || e > tol) {
                    if (bad < 0) bad = i, worst = e, worst_tol = tol;
                } else if (bad < 0 && e >= worst) {
                    worst = e;
                    worst_tol = tol;
                }
            }
            /* the device-resident path gives the very same bits */
            bool same = true;
            char why[256] = "";
            tir_device_tensor *dargs[32] = {0}, *dout[16] = {0};
            bool dev_ok = true;
            for (int i = 0; dev_ok && i < nargs; i++)
                dev_ok = tir_device_tensor_from_host(ctx, args[i], &dargs[i], &d) == TIR_OK;
            if (dev_ok) dev_ok = tir_program_run_device(p, nargs, dargs, nres, dout, NULL, &d) == TIR_OK;
            for (int i = 0; dev_ok && i < nres; i++) {
                tir_tensor *h = NULL;
                dev_ok = tir_device_tensor_to_host(dout[i], &h, &d) == TIR_OK;
                /* float atomics (scatter_add) add in whatever order the blocks run: there the
                 * two runs agree to rounding, not to the bit */
                bool atomics = false;
                for (int k = 0; k < tir_program_num_kernels(p); k++)
                    atomics |= strcmp(tir_program_kernel_op(p, k), "scatter_add") == 0;
                bool differs = dev_ok && memcmp(tir_tensor_data(h), tir_tensor_data(out[i]),
                                                tir_tensor_nbytes(h)) != 0;
                if (differs && atomics) {
                    double e2 = tir_rel_error(h, out[i]);
                    differs = isnan(e2) || e2 > tir_tolerance(tir_tensor_dtype(h), true);
                }
                if (differs) {
                    same = false;
                    snprintf(why, sizeof why, "device-resident run differs in out%d", i);
                }
                tir_tensor_free(h);
            }
            if (!dev_ok) fmt(why, sizeof why, "device-resident run: %s", d.msg);
            for (int i = 0; i < nargs; i++) tir_device_tensor_free(dargs[i]);
            for (int i = 0; i < nres; i++) tir_device_tensor_free(dout[i]);
            if (bad >= 0)
                report(false, label, binds, "out%d %s rel %.3g > tol %.0e", bad,
                       tir_dtype_name(tir_tensor_dtype(ref[bad])), worst, worst_tol);
            else if (!dev_ok || !same)
                report(false, label, binds, "%s", why);
            else
                report(true, label, binds, "rel %.2g (tol %.0e)", worst, worst_tol);
        }
        for (int i = 0; i < nargs && i < 32; i++) tir_tensor_free(args[i]);
        for (int i = 0; i < nres && i < 16; i++) {
            tir_tensor_free(ref[i]);
            tir_tensor_free(out[i]);
        }
        if (!bs) break;
    }
out:
    tir_program_free(p);
    tir_module_free(mref);
    tir_module_free(mgpu);
}

/* a case from a printf-built source */
static void T(const char *label, const char *binds, range r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void T(const char *label, const char *binds, range r, const char *fmt, ...) {
    char src[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(src, sizeof src, fmt, ap);
    va_end(ap);
    run_case(label, src, "t", binds, r);
}

/* ---------------------------------------------------------------- the op table, case by case */

static const char *SIZES = "N=1;N=7;N=1000;N=4097";
static const char *FLOATS[] = {"f32", "bf16", "f16"};
#define NFLOATS 3
static const range STD = {-2, 2, NULL};
static const range POS = {0.1, 4, NULL};

static void unary_cases(void) {
    static const struct {
        const char *op, *attrs;
        bool pos, ints;
    } ops[] = {
        {"neg", "", false, true},    {"abs", "", false, true},     {"exp", "", false, false},
        {"log", "", true, false},    {"sqrt", "", true, false},    {"rsqrt", "", true, false},
        {"recip", "", true, false},  {"tanh", "", false, false},   {"sigmoid", "", false, false},
        {"relu", "", false, true},   {"silu", "", false, false},   {"gelu", "", false, false},
        {"gelu", ", approximate=\"tanh\"", false, false},          {"sin", "", false, false},
        {"cos", "", false, false},
    };
    char label[128];
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        int ndt = ops[i].ints ? NFLOATS + 1 : NFLOATS;
        for (int k = 0; k < ndt; k++) {
            const char *dt = k < NFLOATS ? FLOATS[k] : "i32";
            range r = ops[i].pos ? POS : STD;
            if (k == NFLOATS) r = (range){-50, 50, NULL};
            snprintf(label, sizeof label, "unary/%s%s %s [N]", ops[i].op,
                     ops[i].attrs[0] ? "(tanh)" : "", dt);
            T(label, SIZES, r,
              "func @t(%%x: %s[N]) -> %s[N] {\n  %%y = %s(%%x%s)\n  return %%y\n}\n", dt, dt,
              ops[i].op, ops[i].attrs);
        }
        snprintf(label, sizeof label, "unary/%s%s f32 [R, C]", ops[i].op,
                 ops[i].attrs[0] ? "(tanh)" : "");
        T(label, "R=3,C=5;R=33,C=129", ops[i].pos ? POS : STD,
          "func @t(%%x: f32[R, C]) -> f32[R, C] {\n  %%y = %s(%%x%s)\n  return %%y\n}\n",
          ops[i].op, ops[i].attrs);
    }
    T("unary/not bool [N]", SIZES, STD,
      "func @t(%%x: bool[N]) -> bool[N] {\n  %%y = not(%%x)\n  return %%y\n}\n");
}

static void binary_cases(void) {
    static const struct {
        const char *op;
        bool pos, ints, cmp;
    } ops[] = {
        {"add", false, true, false},     {"sub", false, true, false},
        {"mul", false, true, false},     {"div", false, true, false},
        {"pow", true, false, false},     {"maximum", false, true, false},
        {"minimum", false, true, false}, {"eq", false, true, true},
        {"ne", false, true, true},       {"lt", false, true, true},
        {"le", false, true, true},       {"gt", false, true, true},
        {"ge", false, true, true},
    };
    /* shapes: same, row broadcast, outer broadcast, scalar */
    static const struct {
        const char *a, *b, *o, *binds;
    } shapes[] = {
        {"[N]", "[N]", "[N]", "N=1;N=7;N=1000;N=4097"},
        {"[R, C]", "[C]", "[R, C]", "R=7,C=13;R=1,C=1000;R=65,C=1"},
        {"[R, 1]", "[1, C]", "[R, C]", "R=7,C=13;R=1,C=4097"},
        {"[]", "[B, N]", "[B, N]", "B=3,N=1000"},
    };
    char label[160];
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        for (int k = 0; k < NFLOATS + 2; k++) {
            if (k >= NFLOATS && !ops[i].ints) continue;
            const char *dt = k < NFLOATS ? FLOATS[k] : k == NFLOATS ? "i32" : "i64";
            range r = ops[i].pos ? POS : STD;
            if (k >= NFLOATS) r = (range){-9, 9, NULL};
            if (ops[i].cmp && k < NFLOATS) r = (range){-2, 2, NULL};
            const char *odt = ops[i].cmp ? "bool" : dt;
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
                if (k > 0 && s > 1) continue; /* broadcasting variants in f32 only */
                snprintf(label, sizeof label, "binary/%s %s %s x %s", ops[i].op, dt, shapes[s].a,
                         shapes[s].b);
                T(label, shapes[s].binds, r,
                  "func @t(%%a: %s%s, %%b: %s%s) -> %s%s {\n  %%y = %s(%%a, %%b)\n"
                  "  return %%y\n}\n",
                  dt, shapes[s].a, dt, shapes[s].b, odt, shapes[s].o, ops[i].op);
            }
        }
    /* equality on floats drawn from few values, so both outcomes occur */
    T("binary/eq f32 few values", SIZES, (range){-2, 2, NULL},
      "func @t(%%a: i32[N], %%b: i32[N]) -> bool[N] {\n"
      "  %%y = eq(cast(%%a, dtype=f32), cast(%%b, dtype=f32))\n  return %%y\n}\n");
    T("binary/mul f32 literal", SIZES, STD,
      "func @t(%%a: f32[N]) -> f32[N] {\n  %%y = mul(add(%%a, 1.5), 3)\n  return %%y\n}\n");
    for (int k = 0; k < 2; k++) {
        const char *op = k ? "or" : "and";
        snprintf(label, sizeof label, "binary/%s bool [N]", op);
        T(label, SIZES, STD,
          "func @t(%%a: bool[N], %%b: bool[N]) -> bool[N] {\n  %%y = %s(%%a, %%b)\n"
          "  return %%y\n}\n",
          op);
        snprintf(label, sizeof label, "binary/%s bool [R, 1] x [C]", op);
        T(label, "R=7,C=9", STD,
          "func @t(%%a: bool[R, 1], %%b: bool[C]) -> bool[R, C] {\n  %%y = %s(%%a, %%b)\n"
          "  return %%y\n}\n",
          op);
    }
}

static void where_cast_cases(void) {
    char label[160];
    for (int k = 0; k < NFLOATS; k++) {
        snprintf(label, sizeof label, "where %s [N]", FLOATS[k]);
        T(label, SIZES, STD,
          "func @t(%%c: bool[N], %%a: %s[N], %%b: %s[N]) -> %s[N] {\n  %%y = where(%%c, %%a, %%b)\n"
          "  return %%y\n}\n",
          FLOATS[k], FLOATS[k], FLOATS[k]);
    }
    T("where f32 [R, 1] x [C] x [R, C]", "R=7,C=13;R=1,C=4097", STD,
      "func @t(%%c: bool[R, 1], %%a: f32[C], %%b: f32[R, C]) -> f32[R, C] {\n"
      "  %%y = where(%%c, %%a, %%b)\n  return %%y\n}\n");
    T("where i32 scalar", "N=1000", (range){-9, 9, NULL},
      "func @t(%%c: bool[N], %%a: i32[], %%b: i32[N]) -> i32[N] {\n  %%y = where(%%c, %%a, %%b)\n"
      "  return %%y\n}\n");
    static const char *dts[] = {"f64", "f32", "f16", "bf16", "f8e4m3", "f8e5m2",
                                "i64", "i32", "i8",  "u8",   "bool"};
    for (int a = 0; a < 11; a++)
        for (int b = 0; b < 11; b++) {
            if (a == b) continue;
            /* ints in a range every int type holds; floats beyond it to test saturation */
            bool fa = a < 6;
            range r = fa ? (range){-300, 300, NULL} : (range){-100, 100, NULL};
            if (a >= 4 && a <= 5) r = (range){-200, 200, NULL};
            snprintf(label, sizeof label, "cast %s -> %s", dts[a], dts[b]);
            T(label, "N=7;N=1000", r,
              "func @t(%%x: %s[N]) -> %s[N] {\n  %%y = cast(%%x, dtype=%s)\n  return %%y\n}\n",
              dts[a], dts[b], dts[b]);
        }
}

static void reduce_cases(void) {
    static const char *ops[] = {"sum", "max", "min", "mean", "argmax"};
    static const char *axes[] = {"axes=[1]", "axes=[0]", "axes=[-1], keepdim=true",
                                 "axes=[0, 1]", ""};
    static const char *outs[] = {"[R]", "[C]", "[R, 1]", "[]", "[]"};
    static const char *RC = "R=1,C=7;R=7,C=1000;R=3,C=4097;R=33,C=5;R=1000,C=1";
    char label[160];
    for (int o = 0; o < 5; o++)
        for (int k = 0; k < NFLOATS + 1; k++) {
            const char *dt = k < NFLOATS ? FLOATS[k] : "i32";
            if (k == NFLOATS && strcmp(ops[o], "mean") == 0) continue;
            for (int a = 0; a < 5; a++) {
                bool am = strcmp(ops[o], "argmax") == 0;
                if (am && (a == 3 || a == 4)) continue; /* argmax takes one axis */
                if (k > 0 && a > 2) continue;
                const char *odt = am ? "i64" : dt;
                snprintf(label, sizeof label, "reduce/%s %s [R, C] %s", ops[o], dt,
                         axes[a][0] ? axes[a] : "all");
                T(label, RC, k == NFLOATS ? (range){-20, 20, NULL} : STD,
                  "func @t(%%x: %s[R, C]) -> %s%s {\n  %%y = %s(%%x%s%s)\n  return %%y\n}\n", dt,
                  odt, outs[a], ops[o], axes[a][0] ? ", " : "", axes[a]);
            }
        }
    for (int o = 0; o < 4; o++) {
        snprintf(label, sizeof label, "reduce/%s f32 [A, B, C] axes=[1]", ops[o]);
        T(label, "A=3,B=7,C=5;A=2,B=1000,C=3;A=1,B=4097,C=1", STD,
          "func @t(%%x: f32[A, B, C]) -> f32[A, C] {\n  %%y = %s(%%x, axes=[1])\n"
          "  return %%y\n}\n",
          ops[o]);
        snprintf(label, sizeof label, "reduce/%s f32 [A, B, C] axes=[0, 2]", ops[o]);
        T(label, "A=3,B=7,C=5;A=9,B=2,C=300", STD,
          "func @t(%%x: f32[A, B, C]) -> f32[B] {\n  %%y = %s(%%x, axes=[0, 2])\n"
          "  return %%y\n}\n",
          ops[o]);
    }
    T("reduce/argmax f32 [N] rank 1", SIZES, STD,
      "func @t(%%x: f32[N]) -> i64[] {\n  %%y = argmax(%%x)\n  return %%y\n}\n");
    /* reductions over zero elements write the identity, as the interpreter does: sum 0,
     * max -inf, min +inf (ints: the dtype's extremes), mean NaN (0/0), argmax 0; with R = 0
     * nothing is written. Symbolic sizes (the generic kernels at runtime sizes) and constant
     * ones (the fuzzer's f32[1, 0] over both axes, keepdim) */
    for (int o = 0; o < 5; o++)
        for (int k = 0; k < 3; k++) {
            static const char *edts[] = {"f32", "bf16", "i32"};
            bool am = strcmp(ops[o], "argmax") == 0;
            if (k == 2 && strcmp(ops[o], "mean") == 0) continue;
            const char *odt = am ? "i64" : edts[k];
            snprintf(label, sizeof label, "reduce/%s %s empty [R, C] axes=[1]", ops[o], edts[k]);
            T(label, "R=1,C=0;R=7,C=0;R=1000,C=0;R=0,C=5", STD,
              "func @t(%%x: %s[R, C]) -> %s[R] {\n  %%y = %s(%%x, axes=[1])\n  return %%y\n}\n",
              edts[k], odt, ops[o]);
            snprintf(label, sizeof label, "reduce/%s %s empty [A, B, C] axes=[1]", ops[o], edts[k]);
            T(label, "A=3,B=0,C=5;A=1,B=0,C=1", STD,
              "func @t(%%x: %s[A, B, C]) -> %s[A, C] {\n  %%y = %s(%%x, axes=[1])\n  return %%y\n}\n",
              edts[k], odt, ops[o]);
            if (am) continue;
            snprintf(label, sizeof label, "reduce/%s %s empty [1, 0] axes=[1, 0] keepdim", ops[o], edts[k]);
            T(label, NULL, STD,
              "func @t(%%x: %s[1, 0]) -> %s[1, 1] {\n  %%y = %s(%%x, axes=[1, 0], keepdim=true)\n"
              "  return %%y\n}\n",
              edts[k], odt, ops[o]);
            snprintf(label, sizeof label, "reduce/%s %s empty [1, 0] axes=[-2, 1]", ops[o], edts[k]);
            T(label, NULL, STD,
              "func @t(%%x: %s[1, 0]) -> %s[] {\n  %%y = %s(%%x, axes=[-2, 1])\n  return %%y\n}\n",
              edts[k], odt, ops[o]);
            snprintf(label, sizeof label, "reduce/%s %s empty [4, 0, 3] axes=[1] keepdim", ops[o], edts[k]);
            T(label, NULL, STD,
              "func @t(%%x: %s[4, 0, 3]) -> %s[4, 1, 3] {\n  %%y = %s(%%x, axes=[1], keepdim=true)\n"
              "  return %%y\n}\n",
              edts[k], odt, ops[o]);
        }
}

static void movement_cases(void) {
    const char *RC = "R=1,C=7;R=7,C=13;R=3,C=4097";
    for (int k = 0; k < NFLOATS; k++) {
        const char *dt = FLOATS[k];
        char label[160];
        snprintf(label, sizeof label, "reshape %s [R, C] -> [C, R]", dt);
        T(label, RC, STD,
          "func @t(%%x: %s[R, C]) -> %s[C, R] {\n  %%y = reshape(%%x, shape=[C, R])\n"
          "  return %%y\n}\n",
          dt, dt);
        snprintf(label, sizeof label, "transpose %s [R, C] perm=[1, 0]", dt);
        T(label, RC, STD,
          "func @t(%%x: %s[R, C]) -> %s[C, R] {\n  %%y = transpose(%%x, perm=[1, 0])\n"
          "  return %%y\n}\n",
          dt, dt);
    }
    T("reshape f32 [R, C] -> [R*C] then exp", RC, STD,
      "func @t(%%x: f32[R, C]) -> f32[R*C] {\n  %%y = exp(reshape(%%x, shape=[R*C]))\n"
      "  return %%y\n}\n");
    T("reshape f32 returned as-is (alias)", RC, STD,
      "func @t(%%x: f32[R, C]) -> (f32[C, R], f32[R, C]) {\n  %%y = reshape(%%x, shape=[C, R])\n"
      "  return %%y, %%x\n}\n");
    T("transpose f32 [A, B, C] perm=[2, 0, 1]", "A=3,B=7,C=5;A=2,B=1000,C=3;A=33,B=1,C=65", STD,
      "func @t(%%x: f32[A, B, C]) -> f32[C, A, B] {\n  %%y = transpose(%%x, perm=[2, 0, 1])\n"
      "  return %%y\n}\n");
    T("transpose i64 [A, B, C, D] perm=[0, 2, 1, 3]", "A=2,B=3,C=5,D=7", (range){-99, 99, NULL},
      "func @t(%%x: i64[A, B, C, D]) -> i64[A, C, B, D] {\n"
      "  %%y = transpose(%%x, perm=[0, 2, 1, 3])\n  return %%y\n}\n");
    T("broadcast f32 [C] -> [R, C]", RC, STD,
      "func @t(%%x: f32[C], %%z: f32[R, C]) -> f32[R, C] {\n"
      "  %%y = sub(broadcast(%%x, shape=[R, C]), %%z)\n  return %%y\n}\n");
    T("broadcast bf16 [R, 1] -> [R, C]", RC, STD,
      "func @t(%%x: bf16[R, 1], %%z: bf16[C]) -> bf16[R, C] {\n"
      "  %%y = add(broadcast(%%x, shape=[R, C]), %%z)\n  return %%y\n}\n");
    T("broadcast f32 [] -> [R, C]", RC, STD,
      "func @t(%%x: f32[], %%z: f32[R, C]) -> f32[R, C] {\n"
      "  %%y = mul(broadcast(%%x, shape=[R, C]), %%z)\n  return %%y\n}\n");
    T("slice f32 axis=1 1:-1:2", "R=3,C=7;R=7,C=1000;R=1,C=4097", STD,
      "func @t(%%x: f32[R, C]) -> f32[R, (C - 1)/2] {\n"
      "  %%y = slice(%%x, axis=1, start=1, end=-1, step=2)\n  return %%y\n}\n");
    T("slice f32 axis=0 2:5", "R=7,C=13;R=5,C=4097", STD,
      "func @t(%%x: f32[R, C]) -> f32[3, C] {\n  %%y = slice(%%x, axis=0, start=2, end=5)\n"
      "  return %%y\n}\n");
    T("slice bf16 axis=-1 0:4", "R=7,C=13", STD,
      "func @t(%%x: bf16[R, C]) -> bf16[R, 4] {\n  %%y = slice(%%x, axis=-1, start=0, end=4)\n"
      "  return %%y\n}\n");
    T("concat f32 axis=0", RC, STD,
      "func @t(%%a: f32[R, C], %%b: f32[2, C]) -> f32[R + 2, C] {\n"
      "  %%y = concat(%%a, %%b, axis=0)\n  return %%y\n}\n");
    T("concat f32 axis=1 three", RC, STD,
      "func @t(%%a: f32[R, C], %%b: f32[R, 3], %%c: f32[R, 1]) -> f32[R, C + 4] {\n"
      "  %%y = concat(%%a, %%b, %%c, axis=1)\n  return %%y\n}\n");
    T("concat i32 axis=1", "R=5,C=9", (range){-9, 9, NULL},
      "func @t(%%a: i32[R, C], %%b: i32[R, C]) -> i32[R, 2*C] {\n"
      "  %%y = concat(%%a, %%b, axis=1)\n  return %%y\n}\n");
    T("split f32 axis=1 sizes=[3, 7]", "R=1;R=9;R=1000", STD,
      "func @t(%%x: f32[R, 10]) -> (f32[R, 3], f32[R, 7]) {\n"
      "  %%a, %%b = split(%%x, axis=1, sizes=[3, 7])\n  return %%a, %%b\n}\n");
    T("split bf16 axis=0 sizes=[N, 2]", "N=1;N=7;N=1000", STD,
      "func @t(%%x: bf16[N + 2, 5]) -> (bf16[N, 5], bf16[2, 5]) {\n"
      "  %%a, %%b = split(%%x, axis=0, sizes=[N, 2])\n  return %%a, %%b\n}\n");
}

static void index_cases(void) {
    const range IDX = {-2, 2, "idx=0:49"};
    T("take f32 axis=0 i32 idx", SIZES, IDX,
      "func @t(%%tab: f32[50, 7], %%idx: i32[N]) -> f32[N, 7] {\n"
      "  %%y = take(%%tab, %%idx, axis=0)\n  return %%y\n}\n");
    T("take bf16 axis=0 i64 idx [B, T]", "B=2,T=9;B=1,T=1000", IDX,
      "func @t(%%tab: bf16[50, 64], %%idx: i64[B, T]) -> bf16[B, T, 64] {\n"
      "  %%y = take(%%tab, %%idx)\n  return %%y\n}\n");
    T("take f32 axis=1", "N=5;N=300", IDX,
      "func @t(%%tab: f32[3, 50], %%idx: i32[N]) -> f32[3, N] {\n"
      "  %%y = take(%%tab, %%idx, axis=1)\n  return %%y\n}\n");
    T("scatter_add f32 axis=0", "N=1;N=7;N=1000", IDX,
      "func @t(%%tgt: f32[50, 7], %%idx: i32[N], %%src: f32[N, 7]) -> f32[50, 7] {\n"
      "  %%y = scatter_add(%%tgt, %%idx, %%src, axis=0)\n  return %%y\n}\n");
    T("scatter_add f32 axis=1 i64", "N=3;N=200", IDX,
      "func @t(%%tgt: f32[4, 50], %%idx: i64[N], %%src: f32[4, N]) -> f32[4, 50] {\n"
      "  %%y = scatter_add(%%tgt, %%idx, %%src, axis=1)\n  return %%y\n}\n");
    T("iota i32 [7, 13] axis=1", NULL, STD,
      "func @t() -> i32[7, 13] {\n  %%y = iota(shape=[7, 13], axis=1, dtype=i32)\n"
      "  return %%y\n}\n");
    T("iota f32 [N] plus x", SIZES, STD,
      "func @t(%%x: f32[N]) -> f32[N] {\n  %%y = add(%%x, iota(shape=[N], axis=0, dtype=f32))\n"
      "  return %%y\n}\n");
    T("iota i64 [R, C] axis=0", "R=7,C=5;R=1000,C=3", STD,
      "func @t(%%x: i64[R, C]) -> i64[R, C] {\n"
      "  %%y = add(%%x, iota(shape=[R, C], axis=0, dtype=i64))\n  return %%y\n}\n");
    T("full f32 [7, 13]", NULL, STD,
      "func @t() -> f32[7, 13] {\n  %%y = full(2.5, shape=[7, 13], dtype=f32)\n  return %%y\n}\n");
    T("full bf16 [N] times x", SIZES, STD,
      "func @t(%%x: bf16[N]) -> bf16[N] {\n  %%y = mul(%%x, full(-1.25, shape=[N], dtype=bf16))\n"
      "  return %%y\n}\n");
}

static void linalg_cases(void) {
    const char *MKN = "M=1,K=7,N=5;M=64,K=64,N=64;M=33,K=100,N=17;M=128,K=256,N=96;M=7,K=1000,N=3";
    char label[160];
    for (int k = 0; k < NFLOATS; k++) {
        const char *dt = FLOATS[k];
        snprintf(label, sizeof label, "matmul %s [M, K] x [K, N]", dt);
        T(label, MKN, STD,
          "func @t(%%a: %s[M, K], %%b: %s[K, N]) -> %s[M, N] {\n  %%y = matmul(%%a, %%b)\n"
          "  return %%y\n}\n",
          dt, dt, dt);
        snprintf(label, sizeof label, "matmul %s transpose_a", dt);
        T(label, MKN, STD,
          "func @t(%%a: %s[K, M], %%b: %s[K, N]) -> %s[M, N] {\n"
          "  %%y = matmul(%%a, %%b, transpose_a=true)\n  return %%y\n}\n",
          dt, dt, dt);
        snprintf(label, sizeof label, "matmul %s transpose_b", dt);
        T(label, MKN, STD,
          "func @t(%%a: %s[M, K], %%b: %s[N, K]) -> %s[M, N] {\n"
          "  %%y = matmul(%%a, %%b, transpose_b=true)\n  return %%y\n}\n",
          dt, dt, dt);
        snprintf(label, sizeof label, "matmul %s batched [B, M, K] x [B, K, N]", dt);
        T(label, "B=1,M=5,K=7,N=3;B=3,M=64,K=32,N=48;B=2,M=33,K=65,N=17", STD,
          "func @t(%%a: %s[B, M, K], %%b: %s[B, K, N]) -> %s[B, M, N] {\n"
          "  %%y = matmul(%%a, %%b)\n  return %%y\n}\n",
          dt, dt, dt);
    }
    T("matmul f32 broadcast [B, M, K] x [K, N]", "B=3,M=7,K=9,N=5;B=2,M=64,K=128,N=32", STD,
      "func @t(%%a: f32[B, M, K], %%b: f32[K, N]) -> f32[B, M, N] {\n  %%y = matmul(%%a, %%b)\n"
      "  return %%y\n}\n");
    T("matmul f32 both transposed [2, B, K, M]", "B=3,M=7,K=9,N=5", STD,
      "func @t(%%a: f32[2, B, K, M], %%b: f32[B, N, K]) -> f32[2, B, M, N] {\n"
      "  %%y = matmul(%%a, %%b, transpose_a=true, transpose_b=true)\n  return %%y\n}\n");
    for (int k = 0; k < 2; k++) {
        const char *dt = FLOATS[k];
        snprintf(label, sizeof label, "linear %s with bias", dt);
        T(label, "B=1,K=7,N=5;B=33,K=128,N=96", STD,
          "func @t(%%x: %s[B, K], %%w: %s[N, K], %%b: %s[N]) -> %s[B, N] {\n"
          "  %%y = linear(%%x, %%w, %%b)\n  return %%y\n}\n",
          dt, dt, dt, dt);
        snprintf(label, sizeof label, "linear %s [B, T, K] no bias", dt);
        T(label, "B=2,T=5,K=64,N=32", STD,
          "func @t(%%x: %s[B, T, K], %%w: %s[N, K]) -> %s[B, T, N] {\n"
          "  %%y = linear(%%x, %%w)\n  return %%y\n}\n",
          dt, dt, dt);
    }
}

static void composite_cases(void) {
    char label[160];
    for (int k = 0; k < NFLOATS; k++) {
        const char *dt = FLOATS[k];
        snprintf(label, sizeof label, "softmax %s axis=-1", dt);
        T(label, "R=1,C=7;R=7,C=1000;R=3,C=4097", STD,
          "func @t(%%x: %s[R, C]) -> %s[R, C] {\n  %%y = softmax(%%x)\n  return %%y\n}\n", dt,
          dt);
        snprintf(label, sizeof label, "log_softmax %s axis=-1", dt);
        T(label, "R=1,C=7;R=7,C=1000", STD,
          "func @t(%%x: %s[R, C]) -> %s[R, C] {\n  %%y = log_softmax(%%x, axis=-1)\n"
          "  return %%y\n}\n",
          dt, dt);
        snprintf(label, sizeof label, "rmsnorm %s", dt);
        T(label, "N=1,H=7;N=7,H=1000;N=3,H=4097", STD,
          "func @t(%%x: %s[N, H], %%w: %s[H]) -> %s[N, H] {\n  %%y = rmsnorm(%%x, %%w, eps=1e-5)\n"
          "  return %%y\n}\n",
          dt, dt, dt);
        snprintf(label, sizeof label, "layernorm %s", dt);
        T(label, "N=1,H=7;N=7,H=1000", STD,
          "func @t(%%x: %s[N, H], %%w: %s[H], %%b: %s[H]) -> %s[N, H] {\n"
          "  %%y = layernorm(%%x, %%w, %%b, eps=1e-5)\n  return %%y\n}\n",
          dt, dt, dt, dt);
    }
    T("softmax f32 axis=0", "R=7,C=13;R=1000,C=3", STD,
      "func @t(%%x: f32[R, C]) -> f32[R, C] {\n  %%y = softmax(%%x, axis=0)\n  return %%y\n}\n");
    static const char *reds[] = {"mean", "sum", "none"};
    for (int r = 0; r < 3; r++) {
        snprintf(label, sizeof label, "cross_entropy f32 reduction=%s", reds[r]);
        T(label, "N=1,C=7;N=7,C=1000;N=64,C=50", (range){-2, 2, "y=0:6"},
          "func @t(%%x: f32[N, C], %%y: i32[N]) -> f32%s {\n"
          "  %%l = cross_entropy(%%x, %%y, reduction=\"%s\")\n  return %%l\n}\n",
          strcmp(reds[r], "none") == 0 ? "[N]" : "[]", reds[r]);
    }
    T("cross_entropy bf16 i64 ignore_index=-1", "N=9,C=7;N=100,C=30", (range){-2, 2, "y=-1:6"},
      "func @t(%%x: bf16[N, C], %%y: i64[N]) -> bf16[] {\n"
      "  %%l = cross_entropy(%%x, %%y, ignore_index=-1)\n  return %%l\n}\n");
    T("rope f32 [B, T, D]", "B=1,T=1,D=8;B=2,T=7,D=64;B=3,T=33,D=128", STD,
      "func @t(%%x: f32[B, T, D], %%c: f32[T, D], %%s: f32[T, D]) -> f32[B, T, D] {\n"
      "  %%y = rope(%%x, %%c, %%s)\n  return %%y\n}\n");
    T("rope bf16 [B, H, T, D]", "B=1,H=2,T=7,D=64", STD,
      "func @t(%%x: bf16[B, H, T, D], %%c: bf16[T, D], %%s: bf16[T, D]) -> bf16[B, H, T, D] {\n"
      "  %%y = rope(%%x, %%c, %%s)\n  return %%y\n}\n");
    for (int causal = 0; causal < 2; causal++)
        for (int k = 0; k < 2; k++) {
            const char *dt = FLOATS[k];
            snprintf(label, sizeof label, "attention %s causal=%s", dt, causal ? "true" : "false");
            T(label, "B=1,H=1,T=1,S=1,D=8;B=2,H=3,T=7,S=7,D=64;B=1,H=2,T=5,S=33,D=32", STD,
              "func @t(%%q: %s[B, H, T, D], %%k: %s[B, H, S, D], %%v: %s[B, H, S, D])"
              " -> %s[B, H, T, D] {\n"
              "  %%y = attention(%%q, %%k, %%v, causal=%s, scale=0.125)\n  return %%y\n}\n",
              dt, dt, dt, dt, causal ? "true" : "false");
        }
    T("attention f32 grouped-query Hq=4 Hk=2 causal", "B=1,T=9,S=9,D=16;B=2,T=4,S=17,D=64", STD,
      "func @t(%%q: f32[B, 4, T, D], %%k: f32[B, 2, S, D], %%v: f32[B, 2, S, D])"
      " -> f32[B, 4, T, D] {\n"
      "  %%y = attention(%%q, %%k, %%v, causal=true, scale=0.125)\n  return %%y\n}\n");
}

static void program_cases(void) {
    T("program: call + value_and_grad", "N=7,H=5", STD,
      "func @sq(%%x: f32[N, H]) -> f32[N, H] {\n  %%y = mul(%%x, %%x)\n  return %%y\n}\n"
      "func @loss(%%x: f32[N, H], %%w: f32[H]) -> f32[] {\n"
      "  %%l = mean(call @sq(mul(%%x, %%w)))\n  return %%l\n}\n"
      "func @t = value_and_grad(@loss, wrt=[%%w])\n");
    T("program: mlp", "B=3;B=64", STD,
      "func @t(%%x: f32[B, 32], %%w1: f32[64, 32], %%b1: f32[64], %%w2: f32[10, 64])"
      " -> f32[B, 10] {\n  %%y = linear(relu(linear(%%x, %%w1, %%b1)), %%w2)\n  return %%y\n}\n");
    T("program: unused parameter, duplicate result", "N=7", STD,
      "func @t(%%x: f32[N], %%unused: f32[N]) -> (f32[N], f32[N], f32[N]) {\n"
      "  %%y = exp(%%x)\n  return %%y, %%y, %%x\n}\n");
}

/* ---------------------------------------------------------------- donated arguments */

/* @t of src on device tensors with tir_options.donate_args (outputs poisoned) against the
 * interpreter, for each binding set. twice: the same device tensor is passed as both of @t's two
 * parameters. taken: the argument whose buffer a result must take over (its tensor is left empty
 * and a second run with it is refused), -1 for none; -2: report it, whichever happens. kept: an
 * argument that must still hold its input afterwards (returned, or passed twice), -1 none. */
static void donate_case(const char *label, const char *src, const char *bindsets, range r,
                        bool twice, int taken, int kept) {
    if (filter && !strstr(label, filter)) return;
    if (list_only) {
        printf("%s\n", label);
        return;
    }
    tir_diag d;
    tir_module *mref = NULL, *mgpu = NULL;
    tir_program *p = NULL;
    if (tir_module_parse(ctx, src, label, &mref, &d) != TIR_OK ||
        tir_module_parse(ctx, src, label, &mgpu, &d) != TIR_OK) {
        report(false, label, NULL, "parse: %s (line %d)", d.msg, d.line);
        goto out;
    }
    if (tir_pass_grad(mref, &d) != TIR_OK) { /* the oracle interprets value_and_grad's body */
        report(false, label, NULL, "grad pass: %s", d.msg);
        goto out;
    }
    tir_options o;
    tir_options_init(&o);
    o.poison = true;
    o.donate_args = true;
    if (tir_compile(mgpu, "t", &o, &p, &d) != TIR_OK) {
        report(false, label, NULL, "compile: %s", d.msg);
        goto out;
    }
    const tir_func *f = tir_module_find(mref, "t");
    int nres = tir_func_num_results(mref, "t"), nargs = f->nparams;
    char sets[256];
    snprintf(sets, sizeof sets, "%s", bindsets);
    char *save = NULL;
    for (char *bs = strtok_r(sets, ";", &save); bs; bs = strtok_r(NULL, ";", &save)) {
        char keep[256], why[256] = "";
        tir_bindings b;
        tir_tensor *args[8] = {0}, *ref[8] = {0}, *host = NULL;
        tir_device_tensor *dargs[8] = {0}, *dout[8] = {0}, *again[8] = {0};
        bool ok = parse_binds(bs, keep, sizeof keep, &b) && nargs <= 8 && nres <= 8;
        for (int i = 0; ok && i < b.n; i++) tir_program_set_dim(p, b.names[i], b.values[i], NULL);
        for (int i = 0; ok && i < nargs; i++) {
            int64_t dims[TIR_MAX_RANK];
            const tir_type *t = &f->params[i]->type;
            if (twice && i == 1) { /* the same tensor again */
                args[1] = args[0];
                break;
            }
            ok = tir_type_eval(t, &b, dims) == TIR_OK && (args[i] = tir_tensor_new(t->dtype, t->rank, dims));
            double lo, hi;
            param_range(&r, f->params[i]->name, &lo, &hi);
            if (ok) fill(args[i], lo, hi);
        }
        if (!ok) fmt(why, sizeof why, "cannot make the inputs");
        if (ok && !(ok = tir_interpret(mref, "t", nargs, args, nres, ref, &d) == TIR_OK))
            fmt(why, sizeof why, "interpreter: %s", d.msg);
        for (int i = 0; ok && i < nargs; i++) {
            if (twice && i == 1) dargs[1] = dargs[0];
            else ok = tir_device_tensor_from_host(ctx, args[i], &dargs[i], &d) == TIR_OK;
        }
        tir_dptr before = ok && taken >= 0 ? dargs[taken]->ptr : 0;
        if (ok && !(ok = tir_program_run_device(p, nargs, dargs, nres, dout, NULL, &d) == TIR_OK))
            fmt(why, sizeof why, "gpu: %s", d.msg);
        bool reduces = tir_program_has_reduction(p);
        double worst = 0;
        for (int i = 0; ok && i < nres; i++) {
            ok = tir_device_tensor_to_host(dout[i], &host, &d) == TIR_OK;
            double e = ok ? tir_rel_error(host, ref[i]) : NAN;
            double tol = tir_tolerance(tir_tensor_dtype(ref[i]), reduces);
            if (!ok || isnan(e) || e > tol) {
                ok = false;
                fmt(why, sizeof why, "out%d rel %.3g > tol %.0e", i, e, tol);
            }
            if (e > worst) worst = e;
            tir_tensor_free(host);
            host = NULL;
        }
        const tir_mem_plan *pl = tir_program_last_plan(p, NULL);
        char note[96] = "";
        /* where the plan put a result in argument `taken`'s buffer, the result now owns that
         * buffer and the argument is left empty (argmax having no fused lowering today, the
         * first case's plan does; should it get one, the case says so instead of failing) */
        bool planned = false;
        for (int i = 0; pl && taken >= 0 && i < nres; i++) {
            int v = tir_program_result_value(p, i), sl = pl->slot[v];
            planned |= sl >= 0 && pl->inplace_of[v] >= 0 && pl->slots[sl].where == TIR_MEM_PARAM &&
                       pl->slots[sl].param == taken;
        }
        if (ok && taken >= 0 && !planned)
            fmt(note, sizeof note, "; no result planned in argument %d's buffer", taken);
        if (ok && planned) {
            bool moved = false;
            for (int i = 0; i < nres; i++) moved |= dout[i]->ptr == before;
            if (!moved || dargs[taken]->ptr != 0) {
                ok = false;
                fmt(why, sizeof why, "argument %d's buffer was not taken over (%d in place)", taken,
                    pl ? pl->n_inplace : -1);
            } else if (tir_program_run_device(p, nargs, dargs, nres, again, NULL, &d) == TIR_OK) {
                ok = false;
                fmt(why, sizeof why, "a donated (empty) argument was accepted again");
                for (int i = 0; i < nres; i++) tir_device_tensor_free(again[i]);
            } else if (!strstr(d.msg, "donated")) {
                ok = false;
                fmt(why, sizeof why, "the refusal does not say why: %s", d.msg);
            }
        }
        if (ok && taken == -2 && pl)
            fmt(note, sizeof note, "; %d written in place, peak %zu B", pl->n_inplace, pl->peak_bytes);
        if (ok && kept >= 0) { /* a returned or twice-passed argument is never overwritten */
            ok = tir_device_tensor_to_host(dargs[kept], &host, &d) == TIR_OK &&
                 memcmp(tir_tensor_data(host), tir_tensor_data(args[kept]), tir_tensor_nbytes(host)) == 0;
            if (!ok) fmt(why, sizeof why, "argument %d was overwritten", kept);
            tir_tensor_free(host);
        }
        if (ok) report(true, label, bs, "rel %.2g%s", worst, note);
        else report(false, label, bs, "%s", why);
        for (int i = 0; i < nargs; i++)
            if (!(twice && i == 1)) {
                tir_device_tensor_free(dargs[i]);
                tir_tensor_free(args[i]);
            }
        for (int i = 0; i < nres; i++) {
            tir_device_tensor_free(dout[i]);
            tir_tensor_free(ref[i]);
        }
    }
out:
    tir_program_free(p);
    tir_module_free(mref);
    tir_module_free(mgpu);
}

static void donation_cases(void) {
    /* argmax has no fused lowering, so its region runs op by op and exp (a plain elementwise
     * kernel, which may write over its operand) is written in place of the dead, donated %x,
     * and the result %e takes %x's buffer over */
    donate_case("donate: in place over an argument", "func @t(%x: f32[N, 8]) -> (i64[N], f32[N, 8]) {\n"
                "  %e = exp(%x)\n  %i = argmax(neg(%e), axes=[-1])\n  return %i, %e\n}\n",
                "N=7;N=1000", STD, false, 0, -1);
    /* cross-entropy forward and backward: the logits gradient may take the logits' buffer
     * (Liger's trick) where the kernel allows it; correct either way */
    donate_case("donate: cross_entropy fwd+bwd",
                "func @l(%x: f32[N, C], %y: i32[N]) -> f32[] {\n  %l = cross_entropy(%x, %y)\n"
                "  return %l\n}\nfunc @t = value_and_grad(@l, wrt=[%x])\n",
                "N=9,C=37;N=1000,C=37", (range){-2, 2, "y=0:36"}, false, -2, -1);
    donate_case("donate: bf16 cross_entropy fwd+bwd",
                "func @l(%x: bf16[N, C], %y: i64[N]) -> f32[] {\n"
                "  %l = cross_entropy(%x, %y)\n  return cast(%l, dtype=f32)\n}\n"
                "func @t = value_and_grad(@l, wrt=[%x])\n",
                "N=64,C=1000", (range){-2, 2, "y=0:999"}, false, -2, -1);
    /* an argument that is also a result is never overwritten, and keeps its input */
    donate_case("donate: argument returned", "func @t(%x: f32[N, 8]) -> (f32[N, 8], f32[N, 8]) {\n"
                "  %e = exp(%x)\n  %i = argmax(neg(%e), axes=[-1])\n"
                "  return add(%e, cast(broadcast(reshape(%i, shape=[N, 1]), shape=[N, 8]), dtype=f32)), %x\n}\n",
                "N=7;N=300", STD, false, -1, 0);
    /* the same buffer passed twice is read through both parameters: never overwritten */
    donate_case("donate: argument passed twice", "func @t(%a: f32[N, 8], %b: f32[N, 8]) -> (i64[N], f32[N, 8]) {\n"
                "  %e = exp(%a)\n  %i = argmax(neg(%e), axes=[-1])\n  return %i, mul(%e, %b)\n}\n",
                "N=7;N=300", STD, true, -1, 0);
    /* an argument a later kernel reads (after a matmul) stays intact until then */
    donate_case("donate: argument read by a later kernel",
                "func @t(%x: f32[N, 8], %m: f32[8, 8]) -> f32[N, 8] {\n"
                "  %h = matmul(exp(%x), %m)\n  return add(%h, %x)\n}\n",
                "N=7;N=1000", STD, false, -2, -1);
}

/* ---------------------------------------------------------------- the examples' .tir files */

static int by_name(const void *a, const void *b) { return strcmp(a, b); }

static void example_cases(const char *dir) {
    DIR *dp = opendir(dir);
    if (!dp) {
        printf("SKIP  examples: cannot open %s\n", dir);
        nskip++;
        return;
    }
    char names[64][256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) && n < 64) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".tir") == 0)
            snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    }
    closedir(dp);
    qsort(names, (size_t)n, sizeof names[0], by_name);
    for (int i = 0; i < n; i++) {
        char path[600];
        fmt(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        static char src[1 << 16];
        size_t len = fread(src, 1, sizeof src - 1, f);
        fclose(f);
        src[len] = 0;
        tir_module *m = NULL;
        tir_diag d;
        if (tir_module_parse(ctx, src, path, &m, &d) != TIR_OK) {
            char label[300];
            fmt(label, sizeof label, "example %s", names[i]);
            report(false, label, NULL, "parse: %s", d.msg);
            continue;
        }
        for (int fi = 0; fi < tir_module_num_funcs(m); fi++) {
            const tir_func *fn = m->funcs[fi];
            /* every symbol of the signature, bound to 4 and then 3 */
            const char *syms[64];
            int ns = 0;
            const tir_func *sig = fn->grad_of ? fn->grad_of : fn;
            for (int p = 0; p < sig->nparams; p++)
                for (int j = 0; j < sig->params[p]->type.rank; j++) {
                    const char *s[8];
                    int k = tir_dim_symbols(sig->params[p]->type.dims[j], s, 8);
                    for (int q = 0; q < k; q++) {
                        bool seen = false;
                        for (int z = 0; z < ns; z++) seen |= strcmp(syms[z], s[q]) == 0;
                        if (!seen && ns < 64) syms[ns++] = s[q];
                    }
                }
            char binds[512] = "";
            for (int v = 4; v >= 3; v--) {
                size_t bl = strlen(binds);
                if (bl) binds[bl++] = ';';
                for (int z = 0; z < ns; z++) {
                    snprintf(binds + bl, sizeof binds - bl, "%s%s=%d", z ? "," : "", syms[z], v);
                    bl = strlen(binds);
                }
            }
            /* integer parameters are labels or indices: keep them small and >= 0 */
            char over[512] = "";
            for (int p = 0; p < sig->nparams; p++)
                if (tir_dtype_is_int(sig->params[p]->type.dtype) && sig->params[p]->name) {
                    size_t ol = strlen(over);
                    fmt(over + ol, sizeof over - ol, "%s%s=0:3", ol ? ";" : "",
                        sig->params[p]->name);
                }
            char label[300];
            fmt(label, sizeof label, "example %s @%s", names[i], fn->name);
            run_case(label, src, fn->name, binds, (range){-1, 1, over});
        }
        tir_module_free(m);
    }
}

int main(int argc, char **argv) {
    gh_rng = 0x9E3779B97F4A7C15ull;
    const char *examples = "examples";
    bool do_examples = true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) filter = argv[++i];
        else if (strcmp(argv[i], "--examples") == 0 && i + 1 < argc) examples = argv[++i];
        else if (strcmp(argv[i], "--no-examples") == 0) do_examples = false;
        else if (strcmp(argv[i], "--list") == 0) list_only = true;
        else {
            fprintf(stderr, "usage: gpu_ops [--filter TEXT] [--examples DIR] [--no-examples] [--list]\n");
            return 2;
        }
    }
    const char *srcdir = getenv("TIR_SOURCE_DIR");
    char exdir[600];
    if (srcdir && strcmp(examples, "examples") == 0) {
        snprintf(exdir, sizeof exdir, "%s/examples", srcdir);
        examples = exdir;
    }
    ctx = tir_context_create();
    tir_diag d;
    char desc[256];
    if (!list_only && tir_device_probe(ctx, desc, sizeof desc, &d) != TIR_OK) {
        printf("gpu_ops: skipped: %s\n", d.msg);
        tir_context_destroy(ctx);
        return d.status == TIR_ERR_NO_DRIVER ? 77 : 1;
    }
    if (!list_only) printf("gpu_ops on %s\n", desc);
    unary_cases();
    binary_cases();
    where_cast_cases();
    reduce_cases();
    movement_cases();
    index_cases();
    linalg_cases();
    composite_cases();
    program_cases();
    donation_cases();
    if (do_examples) example_cases(examples);
    tir_context_destroy(ctx);
    if (list_only) return 0;
    printf("%d passed, %d failed%s\n", npass, nfail, nskip ? " (some skipped)" : "");
    return nfail ? 1 : 0;
}
