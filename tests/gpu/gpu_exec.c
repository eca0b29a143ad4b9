/* gpu_exec.c: matmul executors on the GPU (compiler/exec_matmul.c). The same matmul programs —
 * bf16, f16 and f32; every transpose; batch dims broadcast the way cuBLASLt's strides express and
 * a way they don't; ragged sizes; a kind="matmul" fused region with an epilogue Lt has (bias +
 * gelu, bias + relu through f32) and one it hasn't (silu); plain bias + relu and scale + bias +
 * relu programs (passes/tile.c makes them regions, the scale Lt's alpha) — each
 * compiled under matmul=tir, cublas and auto, run with every output poisoned (NaN) first, host
 * and device-resident, and compared with the interpreter by DESIGN §6's rule (1e-2 bf16/f16,
 * 1e-4 f32 matmul; NaN never passes). Each run also checks that the executor reported is the one
 * asked for (cublas means cuBLASLt ran wherever it can express the step, tir means it never
 * did) and, timed, that a cuBLASLt step took GPU time.
 * TF32: an f32 product with K = 4096 meets 1e-4 on cuBLASLt without allow_tf32 (full f32); with
 * it, the error is larger than 1e-4 (TF32 did run) and within 1e-2.
 * Last, auto's choice for the shapes of benchmarks/RESULTS.md, from the model (no run), and the
 * matmul step's GPU time under each mode on four large shapes (not asserted; --no-timing skips).
 * One line per case, `N passed, M failed` last. Links libtir only.
 *
 * usage: gpu_exec [--filter TEXT] [--no-timing]   (other arguments are ignored)
 * exit 0 all passed, 1 a failure, 77 no CUDA driver (ctest: skipped). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "compile.h"
#include "cublas.h"
#include "exec_matmul.h"
#include "gpu_harness.h"
#include "ir.h"

static tir_context *ctx;
static const char *filter;
static bool no_timing;



/* uniform in [-1, 1), never near zero */
static void fill(tir_tensor *t) {
    int64_t n = tir_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double v = 2 * gh_urand() - 1;
        if (fabs(v) < 0.05) v = v < 0 ? -0.05 : 0.05;
        tir_tensor_set(t, i, v);
    }
}

/* "M=7,N=3" -> bindings; names point into keep */
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

static const char *mode_name[] = {"auto", "tir", "cublas"};

enum { MAXARGS = 8, MAXRES = 4 };

/* the outputs of one run, host or device-resident, against the interpreter's; err the largest
 * relative error */
static bool compare(tir_tensor **out, tir_tensor **ref, int nres, double tol_scale, double *err,
                    double *tol_out) {
    bool ok = true;
    *err = 0;
    for (int i = 0; i < nres; i++) {
        double e = tir_rel_error(out[i], ref[i]);
        double tol = tir_tolerance(tir_tensor_dtype(ref[i]), true) * tol_scale;
        *tol_out = tol;
        if (isnan(e) || e > tol) ok = false;
        if (isnan(e) || e > *err) *err = e;
    }
    return ok;
}

/* What a case expects of the executor: cublas mode puts every step Lt can express on it. */
typedef struct expect {
    bool lt_expressible; /* false: cublas mode must still run tir (and say why) */
} expect;

/* Compiles @f of src under one mode, runs it for one binding, checks it. Returns the largest
 * relative error (NAN on failure) in *err_out when given. */
static void run_mode(const char *label, const char *src, const char *binds, tir_matmul_exec mode,
                     bool tf32, double tol_scale, expect ex, double *err_out) {
    char keep[256], tag[320];
    snprintf(tag, sizeof tag, "%s [%s%s] %s", label, mode_name[mode], tf32 ? ",tf32" : "", binds);
    if (filter && !strstr(tag, filter)) return;
    if (err_out) *err_out = NAN;
    tir_bindings b;
    tir_diag d;
    tir_module *mref = NULL, *mgpu = NULL;
    tir_program *p = NULL;
    tir_tensor *args[MAXARGS] = {0}, *ref[MAXRES] = {0}, *out[MAXRES] = {0}, *out2[MAXRES] = {0};
    tir_device_tensor *dargs[MAXARGS] = {0}, *dout[MAXRES] = {0};
    int nargs = 0, nres = 0;
    if (!parse_binds(binds, keep, sizeof keep, &b)) {
        gh_report(false, "", "%s: bad bindings", tag);
        return;
    }
    if (tir_module_parse(ctx, src, label, &mref, &d) != TIR_OK ||
        tir_module_parse(ctx, src, label, &mgpu, &d) != TIR_OK) {
        gh_report(false, "", "%s: parse: %s (line %d)", tag, d.msg, d.line);
        goto out;
    }
    const tir_func *f = tir_module_find(mref, "f");
    nargs = f->nparams;
    nres = f->nres;
    if (nargs > MAXARGS || nres > MAXRES) {
        gh_report(false, "", "%s: too many parameters or results", tag);
        goto out;
    }
    for (int i = 0; i < nargs; i++) {
        int64_t dims[TIR_MAX_RANK];
        if (tir_type_eval(&f->params[i]->type, &b, dims) != TIR_OK) {
            gh_report(false, "", "%s: parameter %d: unbound", tag, i);
            goto out;
        }
        args[i] = tir_tensor_new(f->params[i]->type.dtype, f->params[i]->type.rank, dims);
        fill(args[i]);
    }
    if (tir_interpret(mref, "f", nargs, args, nres, ref, &d) != TIR_OK) {
        gh_report(false, "", "%s: interpreter: %s", tag, d.msg);
        goto out;
    }
    tir_options o;
    tir_options_init(&o);
    o.poison = true;
    o.matmul = mode;
    o.allow_tf32 = tf32;
    if (tir_compile(mgpu, "f", &o, &p, &d) != TIR_OK) {
        gh_report(false, "", "%s: compile: %s", tag, d.msg);
        goto out;
    }
    tir_program_set_timing(p, true);
    if (tir_program_run(p, nargs, args, nres, out, &d) != TIR_OK) {
        gh_report(false, "", "%s: run: %s", tag, d.msg);
        goto out;
    }
    /* who ran each matmul, and did it as asked */
    char who[600] = "";
    bool as_asked = true;
    for (int i = 0; i < tir_program_num_kernels(p); i++) {
        tir_kernel_info ki;
        tir_program_kernel_info(p, i, &ki);
        if (!ki.executor) continue;
        size_t len = strlen(who);
        snprintf(who + len, sizeof who - len, "%s%s", len ? "; " : "", ki.executor);
        bool lt = strncmp(ki.executor, "cublasLt", 8) == 0;
        if (lt != ki.cublas) as_asked = false;
        if (mode == TIR_MATMUL_TIR && lt) as_asked = false;
        if (mode == TIR_MATMUL_CUBLAS && lt != ex.lt_expressible) as_asked = false;
        if (lt && !(ki.last_ms > 0)) as_asked = false; /* timed like a kernel */
    }
    double err, tol = 0;
    bool ok = compare(out, ref, nres, tol_scale, &err, &tol);
    /* device-resident, on the program's own stream */
    for (int i = 0; ok && i < nargs; i++)
        if (tir_device_tensor_from_host(ctx, args[i], &dargs[i], &d) != TIR_OK) ok = false;
    if (ok && tir_program_run_device(p, nargs, dargs, nres, dout, NULL, &d) != TIR_OK) {
        gh_report(false, "", "%s: run_device: %s", tag, d.msg);
        goto out;
    }
    for (int i = 0; ok && i < nres; i++)
        if (tir_device_tensor_to_host(dout[i], &out2[i], &d) != TIR_OK) ok = false;
    double err2 = 0;
    if (ok) ok = compare(out2, ref, nres, tol_scale, &err2, &tol);
    if (err2 > err || isnan(err2)) err = err2;
    if (err_out) *err_out = err;
    gh_report(ok && as_asked, "", "%s: rel_err %.3g (tol %.0e)%s | %s", tag, err, tol,
           as_asked ? "" : " EXECUTOR NOT AS ASKED", who[0] ? who : "(no matmul step)");
out:
    for (int i = 0; i < MAXARGS; i++) {
        tir_tensor_free(args[i]);
        tir_device_tensor_free(dargs[i]);
    }
    for (int i = 0; i < MAXRES; i++) {
        tir_tensor_free(ref[i]);
        tir_tensor_free(out[i]);
        tir_tensor_free(out2[i]);
        tir_device_tensor_free(dout[i]);
    }
    tir_program_free(p);
    if (mref) tir_module_free(mref);
    if (mgpu) tir_module_free(mgpu);
}

static void run_all_modes(const char *label, const char *src, const char *binds, expect ex) {
    for (int m = 0; m < 3; m++) run_mode(label, src, binds, (tir_matmul_exec)m, false, 1, ex, NULL);
}

/* ---------------------------------------------------------------- the programs */

#define MM(dt, ashape, bshape, oshape, attrs)                                                      \
    "func @f(%a: " dt ashape ", %b: " dt bshape ") -> " dt oshape " {\n"                        \
    "  %c = matmul(%a, %b" attrs ")\n  return %c\n}\n"

static const char *REGION_GELU =
    "func @f(%x: bf16[M, K], %w: bf16[K, N], %bias: bf16[N]) -> bf16[M, N] {\n"
    "  %y = fused(%x, %w, %bias) kernel=\"mm_gelu\" schedule={kind=\"matmul\"} {\n"
    "    %c = matmul(%x, %w)\n"
    "    yield gelu(add(%c, %bias), approximate=\"tanh\")\n"
    "  }\n  return %y\n}\n";
static const char *REGION_RELU_F32 =
    "func @f(%x: bf16[M, K], %w: bf16[N, K], %bias: bf16[N]) -> bf16[M, N] {\n"
    "  %y = fused(%x, %w, %bias) kernel=\"mm_relu\" schedule={kind=\"matmul\"} {\n"
    "    %c = matmul(%x, %w, transpose_b=true)\n"
    "    %d = add(cast(%c, dtype=f32), cast(%bias, dtype=f32))\n"
    "    yield cast(relu(%d), dtype=bf16)\n"
    "  }\n  return %y\n}\n";
static const char *REGION_SILU =
    "func @f(%x: bf16[M, K], %w: bf16[K, N]) -> bf16[M, N] {\n"
    "  %y = fused(%x, %w) kernel=\"mm_silu\" schedule={kind=\"matmul\"} {\n"
    "    %c = matmul(%x, %w)\n"
    "    yield silu(%c)\n"
    "  }\n  return %y\n}\n";
static const char *SCALE_BIAS_RELU =
    "func @f(%x: bf16[M, K], %w: bf16[K, N], %bias: bf16[N]) -> bf16[M, N] {\n"
    "  %c = matmul(%x, %w)\n  %y = relu(add(mul(%c, 0.125), %bias))\n  return %y\n}\n";
static const char *BIAS_RELU =
    "func @f(%x: f16[M, K], %w: f16[K, N], %bias: f16[N]) -> f16[M, N] {\n"
    "  %c = matmul(%x, %w)\n  %y = relu(add(%c, %bias))\n  return %y\n}\n";

/* a region whose epilogue Lt has: cublas mode runs it on Lt only once the region is one step
 * (passes/tile.c and its codegen); until then its matmul member is a plain matmul step, which
 * Lt also runs. Either way cublas mode puts the matmul on Lt. */

static void auto_table(void) {
    tir_module *m = NULL;
    tir_diag d;
    static const char *src[] = {
        MM("bf16", "[M, K]", "[K, N]", "[M, N]", ""),
        MM("bf16", "[M, K]", "[N, K]", "[M, N]", ", transpose_b=true"),
        MM("f32", "[M, K]", "[K, N]", "[M, N]", ""),
    };
    static const struct {
        int prog;
        int64_t m, n, k;
        const char *what;
    } shapes[] = {
        {0, 4096, 4096, 4096, "4096^3"},
        {0, 8192, 14336, 4096, "Llama MLP"},
        {0, 8192, 3072, 2048, "QKV proj"},
        {1, 4001, 4003, 4096, "ragged, B^T"},
        {0, 4095, 4097, 4093, "ragged"},
        {0, 64, 64, 64, "small"},
        {2, 4096, 4096, 4096, "f32"},
    };
    tir_rt *rt = NULL;
    tir_cublas *lt = NULL;
    tir_diag dl;
    bool have_lt = tir_rt_get(ctx, &rt, &dl) == TIR_OK && tir_cublas_create(rt, &lt, &dl) == TIR_OK;
    printf("\nauto's choice per shape (model: %s; %s)\n", tir_mm_model_default.device,
           have_lt ? tir_cublas_describe(lt) : dl.msg);
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        if (tir_module_parse(ctx, src[shapes[i].prog], "auto", &m, &d) != TIR_OK) continue;
        tir_mm_site s;
        const tir_func *f = tir_module_find(m, "f");
        if (tir_mm_analyze(f->ops[f->nops - 1], &s)) {
            tir_mm_sizes z = {shapes[i].m, shapes[i].n, shapes[i].k, 1};
            char why[200];
            tir_mm_exec e = tir_mm_decide(NULL, &s, &z, TIR_MATMUL_AUTO, false, have_lt, dl.msg, NULL,
                                          why, sizeof why);
            printf("  %-12s %5lldx%5lldx%5lld  %-8s (%s)\n", shapes[i].what, (long long)z.m,
                   (long long)z.n, (long long)z.k, e == TIR_MM_CUBLAS ? "cublasLt" : "tir", why);
        }
        tir_module_free(m);
        m = NULL;
    }
    tir_cublas_destroy(lt);
}

/* GPU time of the matmul step under each mode on large shapes (median of 5 timed runs; no
 * comparison: the interpreter would take minutes), to check the model's table against */
static void timing_table(void) {
    static const struct {
        const char *src, *binds, *what;
    } shapes[] = {
        {MM("bf16", "[M, K]", "[K, N]", "[M, N]", ""), "M=4096,K=4096,N=4096", "bf16 4096^3"},
        {MM("bf16", "[M, K]", "[N, K]", "[M, N]", ", transpose_b=true"), "M=4001,K=4096,N=4003",
         "bf16 ragged B^T"},
        {MM("bf16", "[M, K]", "[K, N]", "[M, N]", ""), "M=4095,K=4093,N=4097", "bf16 ragged"},
        {MM("f32", "[M, K]", "[K, N]", "[M, N]", ""), "M=2048,K=2048,N=2048", "f32 2048^3"},
    };
    printf("\nmatmul step GPU time, ms (median of 5)\n");
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        if (filter && !strstr(shapes[i].what, filter)) continue;
        printf("  %-16s", shapes[i].what);
        for (int mode = 0; mode < 3; mode++) {
            char keep[128];
            tir_bindings b;
            tir_diag d;
            tir_module *m = NULL;
            tir_program *p = NULL;
            tir_tensor *args[2] = {0}, *out[1] = {0};
            float ms[5] = {0};
            char who[16] = "?";
            parse_binds(shapes[i].binds, keep, sizeof keep, &b);
            tir_options o;
            tir_options_init(&o);
            o.matmul = (tir_matmul_exec)mode;
            bool ok = tir_module_parse(ctx, shapes[i].src, "t", &m, &d) == TIR_OK &&
                      tir_compile(m, "f", &o, &p, &d) == TIR_OK;
            const tir_func *f = ok ? tir_module_find(m, "f") : NULL;
            for (int a = 0; ok && a < 2; a++) {
                int64_t dims[TIR_MAX_RANK];
                ok = tir_type_eval(&f->params[a]->type, &b, dims) == TIR_OK &&
                     (args[a] = tir_tensor_new(f->params[a]->type.dtype, 2, dims));
                if (ok) fill(args[a]);
            }
            if (ok) tir_program_set_timing(p, true);
            for (int r = 0; ok && r < 5; r++) {
                ok = tir_program_run(p, 2, args, 1, out, &d) == TIR_OK;
                tir_tensor_free(out[0]);
                out[0] = NULL;
                for (int k = 0; ok && k < tir_program_num_kernels(p); k++) {
                    tir_kernel_info ki;
                    tir_program_kernel_info(p, k, &ki);
                    if (!ki.executor) continue;
                    ms[r] = ki.last_ms;
                    snprintf(who, sizeof who, "%s", ki.cublas ? "cublasLt" : "tir");
                }
            }
            for (int x = 0; x < 5; x++) /* sort for the median */
                for (int y = x + 1; y < 5; y++)
                    if (ms[y] < ms[x]) {
                        float t = ms[x];
                        ms[x] = ms[y];
                        ms[y] = t;
                    }
            if (ok) printf("  %s: %.3f (%s)", mode_name[mode], ms[2], who);
            else printf("  %s: failed (%s)", mode_name[mode], d.msg);
            for (int a = 0; a < 2; a++) tir_tensor_free(args[a]);
            tir_program_free(p);
            if (m) tir_module_free(m);
        }
        printf("\n");
    }
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) filter = argv[++i];
        else if (strcmp(argv[i], "--no-timing") == 0) no_timing = true;
        else if (strcmp(argv[i], "--examples") == 0 && i + 1 < argc) i++; /* ctest passes it to every GPU test */
    }
    gh_rng = 0x2545F4914F6CDD1Dull;
    gh_label_width = 0;
    int rc = gh_start("gpu_exec");
    if (rc) return rc;
    ctx = gh_ctx;
    tir_diag d;
    const expect LT = {true}, NOLT = {false};

    const char *sq_bf16 = MM("bf16", "[M, K]", "[K, N]", "[M, N]", "");
    run_all_modes("bf16 plain", sq_bf16, "M=256,K=512,N=384", LT);
    run_all_modes("bf16 plain", sq_bf16, "M=7,K=13,N=5", LT);     /* ragged, tiny */
    run_all_modes("bf16 plain", sq_bf16, "M=300,K=136,N=264", LT);
    run_all_modes("bf16 B^T ragged", MM("bf16", "[M, K]", "[N, K]", "[M, N]", ", transpose_b=true"),
                  "M=401,K=256,N=203", LT);
    run_all_modes("f16 A^T", MM("f16", "[K, M]", "[K, N]", "[M, N]", ", transpose_a=true"),
                  "M=192,K=320,N=128", LT);
    run_all_modes("f16 A^T B^T", MM("f16", "[K, M]", "[N, K]", "[M, N]", ", transpose_a=true, transpose_b=true"),
                  "M=65,K=33,N=129", LT);
    run_all_modes("bf16 ragged K", sq_bf16, "M=257,K=255,N=259", LT);
    run_all_modes("f32 plain", MM("f32", "[M, K]", "[K, N]", "[M, N]", ""), "M=200,K=300,N=100", LT);
    run_all_modes("f32 B^T", MM("f32", "[M, K]", "[N, K]", "[M, N]", ", transpose_b=true"),
                  "M=33,K=65,N=17", LT);
    run_all_modes("bf16 batch, b broadcast", MM("bf16", "[B, H, M, K]", "[K, N]", "[B, H, M, N]", ""),
                  "B=2,H=3,M=64,K=32,N=48", LT);
    run_all_modes("bf16 batch, a broadcast", MM("bf16", "[1, M, K]", "[B, K, N]", "[B, M, N]", ""),
                  "B=3,M=40,K=24,N=72", LT);
    run_all_modes("f32 batch both", MM("f32", "[B, M, K]", "[B, K, N]", "[B, M, N]", ""),
                  "B=4,M=17,K=40,N=23", LT);
    run_all_modes("bf16 partial broadcast", MM("bf16", "[B, 1, M, K]", "[1, H, K, N]", "[B, H, M, N]", ""),
                  "B=2,H=3,M=32,K=16,N=24", NOLT);
    run_all_modes("region bias+gelu", REGION_GELU, "M=128,K=64,N=192", LT);
    run_all_modes("region bias+relu f32", REGION_RELU_F32, "M=100,K=64,N=72", LT);
    /* silu has no Lt epilogue: as one region, cublas mode keeps tir's fused kernel; split (no
     * kind="matmul" codegen yet), its matmul member is a plain step Lt runs */
    {
        tir_module *m = NULL;
        tir_program *p = NULL;
        tir_options o;
        tir_options_init(&o);
        bool whole = false;
        if (tir_module_parse(ctx, REGION_SILU, "silu", &m, &d) == TIR_OK &&
            tir_compile(m, "f", &o, &p, &d) == TIR_OK)
            for (int i = 0; i < tir_program_num_kernels(p); i++)
                whole |= strcmp(tir_program_kernel_op(p, i), "fused") == 0;
        tir_program_free(p);
        if (m) tir_module_free(m);
        run_all_modes("region silu", REGION_SILU, "M=96,K=64,N=80", whole ? NOLT : LT);
    }
    run_all_modes("f16 bias+relu program", BIAS_RELU, "M=130,K=96,N=88", LT);
    run_all_modes("bf16 scale+bias+relu program", SCALE_BIAS_RELU, "M=256,K=128,N=320", LT);

    /* TF32 only on request: full f32 meets 1e-4 at K = 4096, TF32 does not (and is within 1e-2) */
    const char *f32k = MM("f32", "[M, K]", "[K, N]", "[M, N]", "");
    double e32 = NAN, etf = NAN;
    run_mode("f32 K=4096", f32k, "M=256,K=4096,N=256", TIR_MATMUL_CUBLAS, false, 1, LT, &e32);
    run_mode("f32 K=4096", f32k, "M=256,K=4096,N=256", TIR_MATMUL_AUTO, false, 1, LT, NULL);
    run_mode("f32 K=4096", f32k, "M=256,K=4096,N=256", TIR_MATMUL_CUBLAS, true, 100, LT, &etf);
    if (!filter || strstr("f32 K=4096 tf32", filter))
        gh_report(!isnan(etf) && !isnan(e32) && etf > 1e-4 && e32 <= 1e-4, "", "tf32 takes effect only on request: rel_err f32 %.3g, tf32 %.3g (1e-4 apart)", e32,
               etf);

    auto_table();
    if (!no_timing) timing_table();
    return gh_finish();
}
