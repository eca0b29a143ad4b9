/* compare_mag.h: a cancellation-aware scale for comparing a kernel's result with the reference
 * interpreter's (DESIGN §6's ‖out − ref‖/‖ref‖ <= tol, with the same tolerances).
 *
 * The rounding error of a floating-point sum, in any order, is bounded by about n·u·Σ|terms|, not
 * by n·u·|Σ terms|: where a sum cancels (a loss that sums 4096 products of random signs, a
 * mean of matmul products) ‖ref‖ understates the scale the kernel's rounding is proportional to,
 * and an honest kernel that sums in another order fails. The magnitude program (compare_mag.c
 * says how it is built and why it bounds that scale) computes, for each result element, the
 * quantity M that the a-priori error bound of its reductions is proportional to; the comparison
 * then measures the error against max(|ref|, M) elementwise. Where no reduction can cancel into
 * a result (or where the result is not linear in the reductions that feed it), M = ref and the
 * comparison is DESIGN §6's exactly. The tolerance numbers never change.
 *
 * Used by tests/gpu (gpu_harness.h), `tirc run --compare` (cmd_gpu.c) and `tirc fuzz --gpu`. */
#ifndef TIR_COMPARE_MAG_H
#define TIR_COMPARE_MAG_H

#include "ir.h"

/* The magnitude module of the module in src: src parsed, value_and_grad bodies built, calls
 * inlined, composites decomposed, then @func rewritten into its magnitude program (same name,
 * parameters and result types). *ntransformed (may be NULL) gets how many reductions (sum, mean,
 * matmul, scatter_add of floats) were turned into sums of magnitudes. Free *out with
 * tir_module_free. */
tir_status tir_magnitude_module(tir_context *ctx, const char *src, const char *func, tir_module **out,
                                int *ntransformed, tir_diag *d);

/* @func's magnitude program on the interpreter: mag[0..nres) get new tensors, of the results'
 * types (mag[k] equal to the reference result where result k depends on no transformed
 * reduction). src is the program as text (tir_module_print of the module the reference ran on,
 * before any compile rewrote it). */
tir_status tir_interpret_magnitudes(tir_context *ctx, const char *src, const char *func, int nargs,
                                    tir_tensor *const *args, int nres, tir_tensor **mag, tir_diag *d);
/* the same from a module (printed, so m is left as it is) */
tir_status tir_interpret_magnitudes_of(tir_module *m, const char *func, int nargs, tir_tensor *const *args,
                                       int nres, tir_tensor **mag, tir_diag *d);

/* tir_rel_error with the scale sqrt(Σ max(ref_i², mag_i²)) in place of ‖ref‖ (mag NULL, of
 * another shape or dtype: tir_rel_error itself). NaN, infinity and poison are judged exactly as
 * tir_rel_error judges them; a non-finite magnitude element counts as ref_i. Never more than
 * tir_rel_error(out, ref). */
double tir_rel_error_mag(const tir_tensor *out, const tir_tensor *ref, const tir_tensor *mag);

/* One run's comparison by this rule: each result's error at the plain scale, and where that is
 * finite and above tol, at the magnitude scale. The magnitude program runs at most once, on the
 * first result that needs it, from src (the program as the reference ran it) or, when src is
 * NULL, from m printed then (a module no compile has rewritten). A magnitude program that cannot
 * be built is reported on stderr and leaves the plain error. */
typedef struct tir_mag_check {
    tir_context *ctx;
    const char *src;
    const tir_module *m;
    const char *func;
    int nargs;
    tir_tensor *const *args;
    int nres;
    tir_tensor **mag; /* filled on first need */
    char *text;       /* m printed, when src was NULL */
    bool tried;
} tir_mag_check;

/* result k's error (out against ref) by the rule above; *plain (may be NULL) gets the plain one */
double tir_mag_check_error(tir_mag_check *c, int k, const tir_tensor *out, const tir_tensor *ref, double tol,
                           double *plain);
void tir_mag_check_free(tir_mag_check *c);

#endif
