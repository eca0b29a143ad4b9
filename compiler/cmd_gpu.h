/* cmd_gpu.h: the bodies of tirc's GPU verbs, as plain functions that compiler/tirc.c calls after
 * parsing its own options: `tirc ptx`, `tirc run --backend gpu` and `tirc run --compare`.
 * Messages go to stderr; each returns what tirc should return (0 ok, 1 failure), except
 * tir_cmd_run_gpu, which returns a status so tirc can write the results itself. */
#ifndef TIR_CMD_GPU_H
#define TIR_CMD_GPU_H

#include <stdio.h>

#include "ir.h"

/* tirc ptx F.tir [--func F] [--arch sm_90a] [-o DIR]
 * argv[0] is the verb ("ptx"), the rest its arguments. Writes every kernel's PTX (to DIR/<kernel>.ptx,
 * or DIR/<func>/<kernel>.ptx when several functions are compiled; to stdout without -o) and a
 * kernel report: kernel, op, registers, shared and local memory, spills from `ptxas -v` ($TIR_PTXAS,
 * ptxas on PATH, or /usr/local/cuda/bin/ptxas; "n/a" without one). Without --func every function
 * is compiled. Exit 1 when a function fails to compile or ptxas rejects a kernel. */
int tir_cmd_ptx(int argc, char **argv);

/* tirc run --backend gpu: compiles func (opts may be NULL) and runs it on the GPU. dims binds
 * symbols that no argument determines (--dim N=128), may be NULL. results[0..nres) get new host
 * tensors, as from tir_interpret. */
tir_status tir_cmd_run_gpu(tir_module *m, const char *func, const tir_options *opts,
                           const tir_bindings *dims, int nargs, tir_tensor *const *args, int nres,
                           tir_tensor **results, tir_diag *d);

/* tirc run --compare: runs func on the interpreter (the oracle) and on the GPU and writes one line
 * per output to report: ‖gpu − ref‖/‖ref‖ against DESIGN §6's tolerance for its dtype (looser when
 * the program reduces or multiplies matrices; NaN never passes). When gpu_results is non-NULL it
 * receives the GPU's results (nres of them, caller frees; NULLs on failure).
 * Returns 0 when every output is within tolerance, 1 otherwise or on any error. */
int tir_cmd_compare(tir_module *m, const char *func, const tir_options *opts,
                    const tir_bindings *dims, int nargs, tir_tensor *const *args, FILE *report,
                    tir_tensor **gpu_results);

#endif
