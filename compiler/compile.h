/* compile.h: internal extras of compiler/compile.c beyond the public tir_compile / tir_program_*
 * API: what the kernel report, `tirc bench` and the GPU tests need to see of a compiled program,
 * and the comparison rule of DESIGN §6 shared by `tirc run --compare` and tests/gpu. */
#ifndef TIR_COMPILE_H
#define TIR_COMPILE_H

#include "codegen.h"
#include "ir.h"
#include "passes.h"

typedef struct tir_kernel_info {
    const char *name;
    const char *op;          /* op name: "add" */
    const char *ptx;         /* NULL for an alias (no code) */
    const tir_kernel *k;     /* codegen's description: params, grid expressions, block */
    bool loaded;             /* the driver's numbers below are valid */
    int regs, local_bytes, static_shared, max_threads;
    float last_ms;           /* GPU time of the last timed run, < 0 when not timed */
    /* matmul steps (compiler/exec_matmul.c): who runs it and why, "cublasLt+bias (auto: aligned
     * bf16 ...)" or "tir wgmma 128x256x64 s4 (matmul=tir)"; the last run's choice, or the
     * compile-time one before a run. NULL for other steps (tir's kernel, always). */
    const char *executor;
    bool cublas;             /* it runs on cuBLASLt (then ptx is only tir's fallback kernel) */
} tir_kernel_info;

void tir_program_kernel_info(const tir_program *p, int i, tir_kernel_info *out);
const char *tir_program_func(const tir_program *p);
int tir_program_num_params(const tir_program *p);
int tir_program_num_results(const tir_program *p);
/* dtype and declared type of result i (dims are symbolic) */
const tir_type *tir_program_result_type(const tir_program *p, int i);
/* true when the program reduces or multiplies matrices (looser f32 tolerance) */
bool tir_program_has_reduction(const tir_program *p);
/* Loads every kernel onto the device now (otherwise the first run does). */
tir_status tir_program_load(tir_program *p, tir_diag *d);
/* With timing on, each run records events around every launch and fills last_ms. */
void tir_program_set_timing(tir_program *p, bool on);

/* ---- memory (passes/plan_memory.c) and traffic */

/* The memory plan a run would use under bindings b (added to tir_program_set_dim's; NULL: none),
 * without a GPU: device_args as tir_program_run_device plans (arguments in the caller's
 * buffers, donated per tir_options.donate_args; results allocated on their own), else as
 * tir_program_run (one arena holding arguments, intermediates and results). *nbytes (when
 * nbytes is non-NULL) gets a malloc'd array of every value's size. Free out with
 * tir_mem_plan_free. */
tir_status tir_program_plan_memory(const tir_program *p, const tir_bindings *b, bool device_args,
                                   tir_mem_plan *out, size_t **nbytes, tir_diag *d);
/* The last successful run's plan and value sizes; NULL before one. */
const tir_mem_plan *tir_program_last_plan(const tir_program *p, const size_t **nbytes);
/* Value ids (as in tir_mem_plan): step i's operands and results, parameter i, result i. */
void tir_program_step_values(const tir_program *p, int i, int *nin, const int **in, int *nout,
                             const int **out);
int tir_program_param_value(const tir_program *p, int i);
int tir_program_result_value(const tir_program *p, int i);
const char *tir_program_param_name(const tir_program *p, int i);
/* Under the last run's sizes: the bytes kernel i must move (each distinct buffer parameter read
 * or written once) and its FLOPs (2·M·N·K for a matmul step, else 0). false before a run. */
bool tir_program_kernel_traffic(const tir_program *p, int i, double *bytes, double *flops);
/* the same under given sizes (tir_program_plan_memory's) and bindings (all of the symbols) */
bool tir_program_kernel_traffic_for(const tir_program *p, const size_t *nbytes,
                                    const tir_bindings *b, int i, double *bytes, double *flops);

/* ---- comparing a result against the interpreter's (DESIGN §6) */

/* ‖out − ref‖₂ / ‖ref‖₂ over elements read as double (‖out − ref‖₂ when ref is all zeros);
 * an element where both are NaN matches (and is left out) unless out's NaN is the poison (every
 * byte 0xFF: never written). NAN when the shapes or dtypes differ, only one of them holds a NaN
 * at some element, out holds the poison there, or a bool of out is neither 0 nor 1 (poison);
 * INFINITY when only one of them has an infinity at some element. */
double tir_rel_error(const tir_tensor *out, const tir_tensor *ref);
/* 1e-5 f32/f64 elementwise, 1e-4 f32/f64 with reductions or matmul, 1e-2 bf16/f16, 1.25e-1 for
 * the f8 types, 0 (exact) for integers and bool */
double tir_tolerance(tir_dtype dt, bool reduces);

#endif
