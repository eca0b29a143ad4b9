/* gpu_fused.c: the fused kernels (codegen/fused.c) on the GPU against the interpreter. Each
 * LLM layer program (rmsnorm, layernorm, softmax, log_softmax, cross_entropy, SwiGLU) and a few
 * programs whose regions hold index maps (transpose, slice, reshape, broadcast) runs at odd and
 * large shapes (rows 1, 7, 1000, 16384; D 64, 1000, 4096, 4097; and empty rows, D = 0), bf16
 * and f32, with constant sizes (the vector and row-in-registers paths) and symbolic ones (the
 * streaming path), long rows (softmax at 32768, cross-entropy at 128256: one stats sweep with
 * the online max-sum, one write sweep), forward+backward programs whose losses and weight
 * gradients are reduced across rows inside the row kernel (RMSNorm y/dx/dw, SwiGLU, CE), with
 * outputs poisoned, and device runs with donated arguments (results written in place of them:
 * cross-entropy's dlogits over the logits); results are compared by DESIGN §6's rule, scaled for
 * cancellation (gpu_harness.h, compiler/compare_mag.h). One line per case, a table of kernel
 * counts and `N passed, M failed` last. Links libtir only.
 *
 * usage: gpu_fused [--filter TEXT] [--quick]
 * exit 0 all passed, 1 a failure, 77 no CUDA driver (ctest counts that as skipped). */
#include "gpu_harness.h"

static bool quick;

/* random non-zero values in [lo, hi]; integer tensors (targets) in [0, ihi) with some ignored */
static void fill(tir_tensor *t, double lo, double hi, int64_t ihi) {
    int64_t n = tir_tensor_numel(t);
    bool isint = tir_dtype_is_int(tir_tensor_dtype(t));
    for (int64_t i = 0; i < n; i++) {
        double v;
        if (isint) {
            v = floor(gh_urand() * (double)ihi);
            if (gh_urand() < 0.1) v = -100; /* cross_entropy's ignore_index */
        } else {
            v = lo + gh_urand() * (hi - lo);
            if (fabs(v) < 0.02 * (hi - lo)) v = 0.02 * (hi - lo);
        }
        tir_tensor_set(t, i, v);
    }
}

/* ---------------------------------------------------------------- programs */

typedef struct prog {
    const char *name;
    /* printf format: %1$s the dtype, %2$s the rows dim, %3$s the row-length dim */
    const char *src;
    bool reduces;
} prog;

static const prog progs[] = {
    {"rmsnorm",
     "func @f(%%x: %1$s[%2$s, %3$s], %%w: %1$s[%3$s]) -> %1$s[%2$s, %3$s] {\n"
     "  %%o = rmsnorm(%%x, %%w, eps=1e-6)\n  return %%o\n}\n", true},
    {"layernorm",
     "func @f(%%x: %1$s[%2$s, %3$s], %%w: %1$s[%3$s], %%b: %1$s[%3$s]) -> %1$s[%2$s, %3$s] {\n"
     "  %%o = layernorm(%%x, %%w, %%b, eps=1e-5)\n  return %%o\n}\n", true},
    {"softmax",
     "func @f(%%x: %1$s[%2$s, %3$s]) -> %1$s[%2$s, %3$s] {\n"
     "  %%o = softmax(%%x, axis=-1)\n  return %%o\n}\n", true},
    {"log_softmax",
     "func @f(%%x: %1$s[%2$s, %3$s]) -> %1$s[%2$s, %3$s] {\n"
     "  %%o = log_softmax(%%x, axis=-1)\n  return %%o\n}\n", true},
    {"cross_entropy",
     "func @f(%%x: %1$s[%2$s, %3$s], %%t: i64[%2$s]) -> (%1$s[], %1$s[%2$s]) {\n"
     "  %%l = cross_entropy(%%x, %%t, reduction=\"mean\")\n"
     "  %%r = cross_entropy(%%x, %%t, reduction=\"none\")\n  return %%l, %%r\n}\n", true},
    {"swiglu",
     "func @f(%%a: %1$s[%2$s, %3$s], %%b: %1$s[%2$s, %3$s]) -> %1$s[%2$s, %3$s] {\n"
     "  %%o = mul(silu(%%a), %%b)\n  return %%o\n}\n", false},
    /* index maps inside regions: a transposed operand, a broadcast row, a sliced and a
     * reshaped one, and a reduction whose rows are read through a transpose */
    {"movement",
     "func @f(%%x: %1$s[%2$s, %3$s], %%y: %1$s[%3$s, %2$s], %%w: %1$s[%3$s]) -> (%1$s[%2$s, %3$s], %1$s[%2$s, %3$s]) {\n"
     "  %%a = add(mul(%%x, transpose(%%y, perm=[1, 0])), %%w)\n"
     "  %%r = reshape(reshape(%%x, shape=[%3$s, %2$s]), shape=[%2$s, %3$s])\n"
     "  %%b = sub(tanh(%%r), broadcast(reshape(%%w, shape=[1, %3$s]), shape=[%2$s, %3$s]))\n"
     "  return %%a, %%b\n}\n", false},
    /* exp, sigmoid and silu whose results round to 16 bits take the MUFU paths (fast_exp,
     * rcp.approx) in bf16: inputs scaled to +-40 and +-80 reach exp's large results and the
     * tiny silu(-80) */
    {"activations",
     "func @f(%%x: %1$s[%2$s, %3$s], %%y: %1$s[%2$s, %3$s]) -> (%1$s[%2$s, %3$s], %1$s[%2$s, %3$s], %1$s[%2$s, %3$s]) {\n"
     "  %%e = exp(mul(%%x, 20))\n  %%s = sigmoid(mul(%%y, 40))\n  %%u = mul(silu(mul(%%x, 40)), %%y)\n"
     "  return %%e, %%s, %%u\n}\n", false},
    /* iota inside a region, along the lane axis and across rows */
    {"iota",
     "func @f(%%x: %1$s[%2$s, %3$s]) -> %1$s[%2$s, %3$s] {\n"
     "  %%i = iota(shape=[%2$s, %3$s], axis=1, dtype=f32)\n  %%j = iota(shape=[%2$s, %3$s], axis=0, dtype=f32)\n"
     "  %%o = add(%%x, cast(sub(mul(%%i, 0.01), %%j), dtype=%1$s))\n  return %%o\n}\n", false},
    {"colsum",
     "func @f(%%x: %1$s[%2$s, %3$s]) -> (%1$s[%3$s], %1$s[%2$s]) {\n"
     "  %%c = sum(mul(%%x, %%x), axes=[0])\n"
     "  %%m = max(transpose(%%x, perm=[1, 0]), axes=[0])\n  return %%c, %%m\n}\n", true},
    /* reductions and their consumers in one region, run at D = 0 too: an empty row reduces to
     * the identity (sum 0, max -inf, min +inf, mean NaN), which the row's results use */
    {"rowstats",
     "func @f(%%x: %1$s[%2$s, %3$s], %%b: %1$s[%2$s]) -> (%1$s[%2$s], %1$s[%2$s], %1$s[%2$s], %1$s[%2$s], %1$s[%2$s, %3$s]) {\n"
     "  %%s = add(sum(%%x, axes=[1]), %%b)\n  %%m = max(%%x, axes=[1])\n"
     "  %%n = sub(min(%%x, axes=[1]), %%b)\n  %%a = mul(mean(%%x, axes=[1]), %%b)\n"
     "  %%y = sub(%%x, broadcast(reshape(%%m, shape=[%2$s, 1]), shape=[%2$s, %3$s]))\n"
     "  return %%s, %%m, %%n, %%a, %%y\n}\n", true},
    /* cross-entropy forward and backward: the row kernel folds max and the online sum of
     * e^(x - max) in one sweep, picks the target logit with one load (ignored targets pick
     * nothing), then writes the gradient in a second sweep */
    {"ce_fwdbwd",
     "func @loss(%%x: %1$s[%2$s, %3$s], %%t: i64[%2$s]) -> f32[] {\n"
     "  %%l = cross_entropy(cast(%%x, dtype=f32), %%t, reduction=\"mean\")\n  return %%l\n}\n"
     "func @g = value_and_grad(@loss, wrt=[%%x])\n"
     "func @f(%%x: %1$s[%2$s, %3$s], %%t: i64[%2$s]) -> (f32[], %1$s[%2$s, %3$s]) {\n"
     "  %%l, %%dx = call @g(%%x, %%t)\n  return %%l, %%dx\n}\n", true},
    /* RMSNorm forward and backward as the benchmark writes it: its two row reductions (x.x and
     * dy.w.x) fold in one sweep */
    {"rms_fwdbwd",
     "func @loss(%%x: %1$s[%2$s, %3$s], %%w: %1$s[%3$s], %%g: %1$s[%2$s, %3$s]) -> f32[] {\n"
     "  %%o = rmsnorm(%%x, %%w, eps=1e-6)\n"
     "  %%l = sum(mul(cast(%%o, dtype=f32), cast(%%g, dtype=f32)), axes=[0, 1])\n  return %%l\n}\n"
     "func @vg = value_and_grad(@loss, wrt=[%%x, %%w])\n"
     "func @f(%%x: %1$s[%2$s, %3$s], %%w: %1$s[%3$s], %%g: %1$s[%2$s, %3$s]) -> (%1$s[%2$s, %3$s], %1$s[%2$s, %3$s], %1$s[%3$s]) {\n"
     "  %%y = rmsnorm(%%x, %%w, eps=1e-6)\n  %%l, %%dx, %%dw = call @vg(%%x, %%w, %%g)\n"
     "  return %%y, %%dx, %%dw\n}\n", true},
    /* the online max-sum where the running max is -inf for a while (elements above 0.3 are
     * -inf) and rows that stay -inf (b > 0.5): those rows are NaN, as in the reference */
    {"softmax_inf",
     "func @f(%%x: %1$s[%2$s, %3$s], %%b: %1$s[%2$s]) -> %1$s[%2$s, %3$s] {\n"
     "  %%m = where(gt(%%x, 0.3), -inf, %%x)\n"
     "  %%r = where(gt(reshape(%%b, shape=[%2$s, 1]), 0.5), -inf, %%m)\n"
     "  %%o = softmax(%%r, axis=-1)\n  return %%o\n}\n", true},
    /* SwiGLU forward and backward with its loss: one kernel; the loss (a sum over every axis)
     * folds into per-thread partials while the gradients are written, and the last block to
     * finish adds the blocks' partials */
    {"sw_fwdbwd",
     "func @loss(%%a: %1$s[%2$s, %3$s], %%b: %1$s[%2$s, %3$s], %%g: %1$s[%2$s, %3$s]) -> f32[] {\n"
     "  %%l = sum(mul(cast(mul(silu(%%a), %%b), dtype=f32), cast(%%g, dtype=f32)), axes=[0, 1])\n"
     "  return %%l\n}\n"
     "func @vg = value_and_grad(@loss, wrt=[%%a, %%b])\n"
     "func @f(%%a: %1$s[%2$s, %3$s], %%b: %1$s[%2$s, %3$s], %%g: %1$s[%2$s, %3$s]) -> (f32[], %1$s[%2$s, %3$s], %1$s[%2$s, %3$s]) {\n"
     "  %%l, %%da, %%db = call @vg(%%a, %%b, %%g)\n  return %%l, %%da, %%db\n}\n", true},
    /* reductions over every axis beside an elementwise result: sum, mean, max, min across rows */
    {"grid_totals",
     "func @f(%%x: %1$s[%2$s, %3$s]) -> (%1$s[], %1$s[], %1$s[], %1$s[], %1$s[%2$s, %3$s]) {\n"
     "  %%s = sum(mul(%%x, %%x))\n  %%m = mean(%%x)\n  %%hi = max(%%x)\n  %%lo = min(neg(%%x))\n"
     "  %%y = tanh(%%x)\n  return %%s, %%m, %%hi, %%lo, %%y\n}\n", true},
};
#define NPROGS (int)(sizeof progs / sizeof *progs)

/* ---------------------------------------------------------------- one case */

/* kernel counts per program (constant shapes), for the table at the end */
static int nkernels[NPROGS];

/* every parameter: values in [-2, 2] away from zero, targets in [0, D) with some ignored */
static void fill_param(tir_tensor *t, int param, void *user) {
    (void)param;
    fill(t, -2.0, 2.0, *(const int64_t *)user);
}

/* With donate: the program runs through tir_program_run_device with donate_args: results written
 * in place of dead arguments (codegen/fused.c's inplace_ok: cross-entropy's dlogits over the
 * logits) take their buffers. The reference was computed from the host arguments first; the
 * device copies are what gets overwritten. Requires at least one result in place. */
static void run_case_as(int pi, const char *dt, int64_t rows, int64_t D, bool symbolic, bool donate) {
    const prog *pr = &progs[pi];
    char label[160];
    snprintf(label, sizeof label, "%s %s %lldx%lld%s%s", pr->name, dt, (long long)rows, (long long)D,
             symbolic ? " sym" : "", donate ? " donated" : "");
    if (!gh_selected(label)) return;
    char rs[32], ds[32], src[2048];
    snprintf(rs, sizeof rs, "%lld", (long long)rows);
    snprintf(ds, sizeof ds, "%lld", (long long)D);
    snprintf(src, sizeof src, pr->src, dt, symbolic ? "N" : rs, symbolic ? "D" : ds);
    tir_bindings b = {0};
    tir_bindings_set(&b, "N", rows);
    tir_bindings_set(&b, "D", D);
    gh_case c = {.label = label, .src = src, .bind = &b, .fill = fill_param, .user = &D, .reduces = pr->reduces,
                 .donate = donate};
    gh_result r;
    gh_run(&c, &r);
    if (!symbolic && r.kernels >= 0) nkernels[pi] = r.kernels;
    char et[160];
    if (!r.ran) gh_report(false, label, "%s", r.msg);
    else if (donate && r.ninplace < 1) gh_report(false, label, "no result was written in place");
    else gh_report(r.ok, label, "%d kernels  %s", r.kernels, gh_err_text(&r, et, sizeof et));
}

static void run_case(int pi, const char *dt, int64_t rows, int64_t D, bool symbolic) {
    run_case_as(pi, dt, rows, D, symbolic, false);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) gh_filter = argv[++i];
        else if (strcmp(argv[i], "--quick") == 0) quick = true;
        else if (strcmp(argv[i], "--examples") == 0 && i + 1 < argc) i++; /* ctest passes it to every GPU test */
    }
    gh_rng = 0x243F6A8885A308D3ull;
    gh_label_width = 52;
    int rc = gh_start("gpu_fused");
    if (rc) return rc;
    static const int64_t rows[] = {1, 7, 1000};
    static const int64_t Ds[] = {64, 1000, 4096, 4097};
    static const char *const dts[] = {"bf16", "f32"};
    for (int pi = 0; pi < NPROGS; pi++)
        for (int t = 0; t < 2; t++) {
            for (int r = 0; r < 3; r++)
                for (int k = 0; k < 4; k++) {
                    if (quick && (r != 1 || k == 2)) continue;
                    run_case(pi, dts[t], rows[r], Ds[k], false);
                }
            /* one compiled program for every binding: the streaming path */
            run_case(pi, dts[t], 7, 4097, true);
            run_case(pi, dts[t], 1000, 64, true);
            if (!quick) run_case(pi, dts[t], 16384, 64, false);
        }
    /* empty rows (D = 0; colsum: the reduced axis N = 0), constant and symbolic: reductions
     * write their identity and the results that use them are written */
    for (int pi = 0; pi < NPROGS; pi++) {
        const char *nm = progs[pi].name;
        bool colsum = strcmp(nm, "colsum") == 0;
        if (!colsum && strcmp(nm, "rowstats") != 0 && strcmp(nm, "softmax") != 0) continue;
        for (int t = 0; t < 2; t++) {
            for (int r = 0; r < 3; r++) run_case(pi, dts[t], rows[r], 0, false);
            run_case(pi, dts[t], 7, 0, true);
            if (colsum) {
                run_case(pi, dts[t], 0, 64, false);
                run_case(pi, dts[t], 0, 4097, true);
            }
        }
    }
    /* the anchor shapes' rows, at full size where the interpreter keeps up */
    if (!quick) {
        run_case(0, "bf16", 16384, 4096, false);
        run_case(2, "bf16", 16384, 4096, false);
        run_case(5, "bf16", 16384, 4097, false);
    }
    /* reductions across rows with no rows at all (their identity is still written: a loss of 0,
     * dw of zeros), with one row, and with more rows than the persistent grid has blocks */
    for (int pi = 0; pi < NPROGS; pi++) {
        const char *nm = progs[pi].name;
        if (strcmp(nm, "rms_fwdbwd") != 0 && strcmp(nm, "sw_fwdbwd") != 0 && strcmp(nm, "grid_totals") != 0)
            continue;
        for (int t = 0; t < 2; t++) {
            run_case(pi, dts[t], 0, 4096, false);
            run_case(pi, dts[t], 0, 64, true);
            run_case(pi, dts[t], 1, 4096, false);
            if (!quick) run_case(pi, dts[t], 5000, 1000, false);
        }
    }
    /* long rows (block per row, streamed, two sweeps): softmax at 32768, cross-entropy at a
     * vocabulary of 128256 and a ragged 50257 */
    for (int pi = 0; pi < NPROGS; pi++) {
        const char *nm = progs[pi].name;
        if (strcmp(nm, "softmax") == 0 || strcmp(nm, "softmax_inf") == 0) {
            run_case(pi, "bf16", 7, 32768, false);
            run_case(pi, "f32", 3, 32768, true);
        }
        /* rows kept in shared memory between sweeps (schedule stage_row: constant rows of at
         * most 64 KB that are not held in registers), layernorm with three sweeps */
        if (strcmp(nm, "softmax") == 0 || strcmp(nm, "layernorm") == 0 || strcmp(nm, "log_softmax") == 0 ||
            strcmp(nm, "rowstats") == 0) {
            run_case(pi, "bf16", 5, 16384, false);
            run_case(pi, "f32", 3, 16000, false);
            run_case(pi, "bf16", 300, 20000, false);
        }
        if (strcmp(nm, "ce_fwdbwd") == 0 || strcmp(nm, "cross_entropy") == 0) {
            run_case(pi, "bf16", 5, 128256, false);
            run_case(pi, "bf16", 3, 50257, true);
            if (!quick) run_case(pi, "bf16", 64, 128256, false);
        }
    }
    /* device runs with donated arguments: results written over the arguments they replace
     * (cross-entropy's dlogits over the logits, as Liger; SwiGLU's and RMSNorm's gradients
     * over their inputs), short rows in registers and long ones streamed */
    for (int pi = 0; pi < NPROGS; pi++) {
        const char *nm = progs[pi].name;
        if (strcmp(nm, "ce_fwdbwd") == 0) {
            run_case_as(pi, "bf16", 7, 1000, false, true);
            run_case_as(pi, "bf16", 5, 128256, false, true);
            run_case_as(pi, "bf16", 3, 50257, true, true);
            run_case_as(pi, "f32", 64, 4097, true, true);
            if (!quick) run_case_as(pi, "bf16", 64, 128256, false, true);
        }
        if (strcmp(nm, "swiglu") == 0 || strcmp(nm, "sw_fwdbwd") == 0 || strcmp(nm, "rms_fwdbwd") == 0 ||
            strcmp(nm, "softmax") == 0 || strcmp(nm, "rmsnorm") == 0) {
            run_case_as(pi, "bf16", 1000, 4096, false, true);
            run_case_as(pi, "f32", 7, 4097, true, true);
        }
    }
    printf("\n%-16s %s\n", "program", "kernels (constant shapes)");
    for (int pi = 0; pi < NPROGS; pi++) printf("%-16s %d\n", progs[pi].name, nkernels[pi]);
    return gh_finish();
}
