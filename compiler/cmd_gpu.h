/* cmd_gpu.h: the bodies of tirc's GPU verbs, as plain functions that compiler/tirc.c calls after
 * parsing its own options: `tirc ptx`, `tirc run --backend gpu` and `tirc run --compare`, and
 * the verbs with files of their own, `tirc explain` (cmd_explain.c) and `tirc bench`
 * (cmd_bench.c). Messages go to stderr; each returns what tirc should return (0 ok, 1 failure),
 * except tir_cmd_run_gpu, which returns a status so tirc can write the results itself. */
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

/* tirc explain F.tir [--func F] [--dim SYM=SIZE ...] [--arch A] [--donate] (compiler/cmd_explain.c):
 * the fusion decisions, each kernel's schedule and matmul executor, and the memory plan, without a
 * GPU. argv[0] is the verb. 0 ok, 1 the program is wrong, 2 the command line is. */
int tir_cmd_explain(int argc, char **argv);

/* How tirc makes a function's inputs for `run` (tirc.c): "name=path" .npy files, else random
 * from the seed (floats in [-1, 1), integers valid indices of the dims they index); dims binds
 * symbols no input binds. 0 ok, else the exit code (a message was printed). */
typedef struct tir_input_spec {
    uint64_t seed;
    int nin;
    const char *in[64];
    int ndim;
    const char *dim_names[64];
    int64_t dim_values[64];
} tir_input_spec;
typedef int (*tir_make_inputs_fn)(const tir_func *f, const tir_input_spec *spec, tir_tensor **args);

/* tirc bench F.tir --func F [...] (compiler/cmd_bench.c): median GPU time per kernel and in total,
 * bytes and FLOPs against the device's ceilings, and peak memory. make builds the inputs. 0 ok,
 * 1 an error, 2 the command line, 3 no GPU (no CUDA driver). */
int tir_cmd_bench(int argc, char **argv, tir_make_inputs_fn make);

#endif
