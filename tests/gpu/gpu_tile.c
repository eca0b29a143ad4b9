/* gpu_tile.c: matmul regions (passes/tile.c: a 16-bit matmul with its elementwise epilogue, one
 * kernel, or one kernel per member where the code generator declines the region) and the
 * one-kernel RoPE (ir/composite.c) on the GPU against the interpreter, with outputs poisoned and
 * DESIGN §6's tolerances. Matmul programs: bias + SiLU, scale + residual + a cast to f32, an f16
 * output cast, an activation read twice (the region ends there), attention scores (batched,
 * transposed, a broadcast mask), a transposed A with a relu, a long K over a small output (one
 * kernel: the pass records no split-K), and a hand-written kind="matmul" region the generator
 * must decline (a reduction in its body); each at aligned, ragged and symbolic sizes. Linear
 * layers (bf16 and f16, batched [2, T, D], with a bias, with SiLU after it, two stacked): f32
 * matmuls of widened operands, each one tensor-core kernel (the count is checked), compared at
 * the 16-bit tolerance (the result is cast back to 16 bits), at aligned sizes (the TMA kernel),
 * ragged ones (T=1000, D=333: no TMA, guarded copies; N=333: ragged stores) and with T
 * symbolic. RoPE: q and k in one program, forward, and the gradient of x. Results are compared
 * scaled for cancellation (gpu_harness.h, compiler/compare_mag.h). One line per case,
 * tables of kernel counts, and `N passed, M failed` last. Links libtir only.
 *
 * usage: gpu_tile [--filter TEXT]   (other arguments are ignored)
 * exit 0 all passed, 1 a failure, 77 no CUDA driver (ctest counts that as skipped). */
#include "gpu_harness.h"

/* random values in [-1, 1], away from zero */
static void fill(tir_tensor *t, int param, void *user) {
    (void)param;
    (void)user;
    int64_t n = tir_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double v = 2 * gh_urand() - 1;
        if (fabs(v) < 0.02) v = 0.02;
        tir_tensor_set(t, i, v);
    }
}

typedef struct prog {
    const char *name;
    /* printf format: %1$s M, %2$s N, %3$s K (sizes or symbols) */
    const char *src;
} prog;

static const prog progs[] = {
    {"bias_silu",
     "func @f(%%x: bf16[%1$s, %3$s], %%w: bf16[%2$s, %3$s], %%b: bf16[%2$s]) -> bf16[%1$s, %2$s] {\n"
     "  %%y = silu(add(matmul(%%x, %%w, transpose_b=true), %%b))\n  return %%y\n}\n"},
    {"scale_residual_f32",
     "func @f(%%x: bf16[2, %1$s, %3$s], %%w: bf16[%3$s, %2$s], %%r: bf16[2, %1$s, %2$s]) -> f32[2, %1$s, %2$s] {\n"
     "  %%y = cast(add(mul(matmul(%%x, %%w), 0.5), %%r), dtype=f32)\n  return %%y\n}\n"},
    {"f16_cast",
     "func @f(%%x: f16[%1$s, %3$s], %%w: f16[%3$s, %2$s]) -> f32[%1$s, %2$s] {\n"
     "  %%y = cast(matmul(%%x, %%w), dtype=f32)\n  return %%y\n}\n"},
    {"read_twice",
     "func @f(%%x: bf16[%1$s, %3$s], %%w: bf16[%3$s, %2$s]) -> (bf16[%1$s, %2$s], bf16[%1$s, %2$s]) {\n"
     "  %%a = gelu(matmul(%%x, %%w))\n  return tanh(%%a), neg(%%a)\n}\n"},
    {"scores",
     "func @f(%%q: bf16[2, 3, %1$s, %3$s], %%k: bf16[2, 3, %2$s, %3$s], %%m: bf16[%1$s, %2$s]) -> bf16[2, 3, %1$s, %2$s] {\n"
     "  %%s = add(mul(matmul(%%q, %%k, transpose_b=true), 0.125), %%m)\n  return %%s\n}\n"},
    {"transposed_a",
     "func @f(%%a: bf16[%3$s, %1$s], %%b: bf16[%3$s, %2$s]) -> bf16[%1$s, %2$s] {\n"
     "  %%c = relu(matmul(%%a, %%b, transpose_a=true))\n  return %%c\n}\n"},
    {"declined",
     "func @f(%%x: bf16[%1$s, %3$s], %%w: bf16[%3$s, %2$s]) -> bf16[%1$s] {\n"
     "  %%s = fused(%%x, %%w) kernel=\"mm_red\" schedule={kind=\"matmul\"} {\n"
     "    %%y = matmul(%%x, %%w)\n    %%r = sum(%%y, axes=[-1])\n    yield %%r\n  }\n  return %%s\n}\n"},
};
#define NPROGS (int)(sizeof progs / sizeof *progs)

/* linear layers on x [2, T, D]: %1$s T, %2$s N (the output width), %3$s D; dtype %4$s. Each
 * linear is one kernel (`kernels`), so a region the code generator declined, or a linear left
 * on the f32 SIMT kernel with its casts, fails the case */
typedef struct lprog {
    const char *name, *src;
    int kernels;
} lprog;

static const lprog lprogs[] = {
    {"linear_bias",
     "func @f(%%x: %4$s[2, %1$s, %3$s], %%w: %4$s[%2$s, %3$s], %%b: %4$s[%2$s]) -> %4$s[2, %1$s, %2$s] {\n"
     "  %%y = linear(%%x, %%w, %%b)\n  return %%y\n}\n", 1},
    {"linear_bias_silu",
     "func @f(%%x: %4$s[2, %1$s, %3$s], %%w: %4$s[%2$s, %3$s], %%b: %4$s[%2$s]) -> %4$s[2, %1$s, %2$s] {\n"
     "  %%y = silu(linear(%%x, %%w, %%b))\n  return %%y\n}\n", 1},
    {"linear_nobias",
     "func @f(%%x: %4$s[2, %1$s, %3$s], %%w: %4$s[%2$s, %3$s]) -> %4$s[2, %1$s, %2$s] {\n"
     "  %%y = linear(%%x, %%w)\n  return %%y\n}\n", 1},
    {"linear_stack",
     "func @f(%%x: %4$s[2, %1$s, %3$s], %%w1: %4$s[%2$s, %3$s], %%b1: %4$s[%2$s], %%w2: %4$s[%3$s, %2$s])\n"
     "    -> %4$s[2, %1$s, %3$s] {\n"
     "  %%y = linear(relu(linear(%%x, %%w1, %%b1)), %%w2)\n  return %%y\n}\n", 2},
};
#define NLPROGS (int)(sizeof lprogs / sizeof *lprogs)

/* compiles @f of src, runs it on the GPU (outputs poisoned) and on the interpreter under b;
 * want_kernels > 0: the program must compile to exactly that many kernels */
static void check(const char *label, const char *src, const tir_bindings *b, bool reduces, int *kernels,
                  int want_kernels) {
    if (!gh_selected(label)) return;
    /* tir's kernels are under test here, wherever cuBLASLt would win; a result cast up from a
     * 16-bit value is compared at that value's tolerance (tol_from_args) */
    gh_case c = {.label = label, .src = src, .bind = b, .fill = fill, .reduces = reduces, .tol_from_args = true,
                 .set_matmul = true, .matmul = TIR_MATMUL_TIR};
    gh_result r;
    gh_run(&c, &r);
    if (kernels && r.kernels >= 0) *kernels = r.kernels;
    if (!r.ran) {
        gh_report(false, label, "%s", r.msg);
        return;
    }
    int nk = r.kernels;
    bool ok = r.ok && !(want_kernels > 0 && nk != want_kernels);
    char et[160];
    gh_report(ok, label, "%s, %d kernel%s%s", gh_err_text(&r, et, sizeof et), nk, nk == 1 ? "" : "s",
              want_kernels > 0 && nk != want_kernels ? " (want one per linear)" : "");
}

static const char *rope_src =
    "func @f(%%q: %1$s[2, 4, T, %2$s], %%k: %1$s[2, 2, T, %2$s], %%c: %1$s[T, %2$s], %%s: %1$s[T, %2$s])\n"
    "    -> (%1$s[2, 4, T, %2$s], %1$s[2, 2, T, %2$s]) {\n"
    "  return rope(%%q, %%c, %%s), rope(%%k, %%c, %%s)\n}\n";
static const char *rope_bwd_src =
    "func @loss(%%x: %1$s[2, 4, T, %2$s], %%c: %1$s[T, %2$s], %%s: %1$s[T, %2$s], %%g: %1$s[2, 4, T, %2$s]) -> f32[] {\n"
    "  return sum(mul(cast(rope(%%x, %%c, %%s), dtype=f32), cast(%%g, dtype=f32)))\n}\n"
    "func @vg = value_and_grad(@loss, wrt=[%%x])\n"
    "func @f(%%x: %1$s[2, 4, T, %2$s], %%c: %1$s[T, %2$s], %%s: %1$s[T, %2$s], %%g: %1$s[2, 4, T, %2$s]) -> %1$s[2, 4, T, %2$s] {\n"
    "  %%l, %%dx = call @vg(%%x, %%c, %%s, %%g)\n  return %%dx\n}\n";

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) gh_filter = argv[++i];
    gh_rng = 0x13198A2E03707344ull;
    gh_label_width = 48;
    int rc = gh_start("gpu_tile");
    if (rc) return rc;
    /* M, N, K: aligned (tensor-core tiles, 16-byte rows), ragged (guarded edges), and a long K
     * over a small output (the tiling's split-K) */
    static const int64_t shapes[][3] = {{256, 384, 512}, {77, 131, 200}, {128, 128, 8192}};
    int counts[NPROGS][3] = {{0}};
    char src[2048], label[128];
    for (int pi = 0; pi < NPROGS; pi++)
        for (int si = 0; si < 3; si++)
            for (int sym = 0; sym < 2; sym++) {
                char ms[24], ns[24], ks[24];
                snprintf(ms, sizeof ms, "%lld", (long long)shapes[si][0]);
                snprintf(ns, sizeof ns, "%lld", (long long)shapes[si][1]);
                snprintf(ks, sizeof ks, "%lld", (long long)shapes[si][2]);
                snprintf(src, sizeof src, progs[pi].src, sym ? "M" : ms, sym ? "N" : ns, sym ? "K" : ks);
                snprintf(label, sizeof label, "%s %sx%sx%s%s", progs[pi].name, ms, ns, ks, sym ? " sym" : "");
                tir_bindings b = {0};
                tir_bindings_set(&b, "M", shapes[si][0]);
                tir_bindings_set(&b, "N", shapes[si][1]);
                tir_bindings_set(&b, "K", shapes[si][2]);
                check(label, src, &b, true, sym ? NULL : &counts[pi][si], 0);
            }
    /* linears: T, N, D aligned (TMA); ragged D (no TMA); ragged N over an aligned D; all small
     * and ragged. Constant sizes, then T symbolic */
    static const int64_t lshapes[][3] = {{256, 1152, 512}, {1000, 520, 333}, {1000, 333, 256}, {77, 131, 200}};
    static const char *const ldts[] = {"bf16", "f16"};
    int lcounts[NLPROGS][4] = {{0}};
    for (int pi = 0; pi < NLPROGS; pi++)
        for (int di = 0; di < 2; di++)
            for (int si = 0; si < 4; si++)
                for (int sym = 0; sym < 2; sym++) {
                    char ts[24], ns[24], ds[24];
                    snprintf(ts, sizeof ts, "%lld", (long long)lshapes[si][0]);
                    snprintf(ns, sizeof ns, "%lld", (long long)lshapes[si][1]);
                    snprintf(ds, sizeof ds, "%lld", (long long)lshapes[si][2]);
                    snprintf(src, sizeof src, lprogs[pi].src, sym ? "T" : ts, ns, ds, ldts[di]);
                    snprintf(label, sizeof label, "%s %s T=%s N=%s D=%s%s", lprogs[pi].name, ldts[di], ts,
                             ns, ds, sym ? " symT" : "");
                    tir_bindings b = {0};
                    tir_bindings_set(&b, "T", lshapes[si][0]);
                    check(label, src, &b, true, sym || di ? NULL : &lcounts[pi][si], lprogs[pi].kernels);
                }
    static const char *const rdts[] = {"bf16", "f32"};
    static const char *const rds[] = {"128", "64"};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            tir_bindings b = {0};
            tir_bindings_set(&b, "T", 37);
            snprintf(src, sizeof src, rope_src, rdts[i], rds[j]);
            snprintf(label, sizeof label, "rope q+k %s D=%s", rdts[i], rds[j]);
            check(label, src, &b, false, NULL, 0);
            snprintf(src, sizeof src, rope_bwd_src, rdts[i], rds[j]);
            snprintf(label, sizeof label, "rope dx %s D=%s", rdts[i], rds[j]);
            check(label, src, &b, true, NULL, 0);
        }
    printf("\nkernels (constant sizes): %-20s", "program");
    for (int si = 0; si < 3; si++)
        printf(" %lldx%lldx%lld", (long long)shapes[si][0], (long long)shapes[si][1], (long long)shapes[si][2]);
    printf("\n");
    for (int pi = 0; pi < NPROGS; pi++) {
        printf("                          %-20s", progs[pi].name);
        for (int si = 0; si < 3; si++) printf(" %11d", counts[pi][si]);
        printf("\n");
    }
    printf("\nkernels (bf16 linears, constant sizes): %-16s", "program");
    for (int si = 0; si < 4; si++)
        printf(" %lldx%lldx%lld", (long long)lshapes[si][0], (long long)lshapes[si][1], (long long)lshapes[si][2]);
    printf("\n");
    for (int pi = 0; pi < NLPROGS; pi++) {
        printf("                                        %-16s", lprogs[pi].name);
        for (int si = 0; si < 4; si++) printf(" %13d", lcounts[pi][si]);
        printf("\n");
    }
    return gh_finish();
}
