/* fuzz.h: compile-time fuzzing (DESIGN §6.6), as library code so that tirc, tests and other
 * drivers share one generator: `tirc fuzz` generates random well-typed programs, checks that the
 * printer round-trips them, pushes them through every pipeline stage with the verifier after
 * each, compares the interpreter's results after each stage with the original's, and (with
 * LLVM) compiles them, checks the PTX with ptxas and with --gpu runs them on the GPU. A failing
 * program is reduced by delta debugging to a small .tir that still fails the same way. */
#ifndef TIR_FUZZ_H
#define TIR_FUZZ_H

#include "ir.h"

/* `tirc fuzz --seed S --count N [--gpu] [--keep DIR] [--verbose] ...` (see its --help);
 * argv[0] is the verb. Prints one line per failure with its reduced program and ends with
 * `N passed, M failed`. Returns 0 when every program passed, 1 when one failed, 2 for a bad
 * command line. */
int tir_cmd_fuzz(int argc, char **argv);

/* One random well-typed module: program `index` of the run with `seed` (the same pair always
 * gives the same module). *dims receives the sizes chosen for its symbols (bind them to run it).
 * The module verifies; TIR_ERR_INTERNAL when the generator could not build one (a bug). */
tir_status tir_fuzz_generate(tir_context *ctx, uint64_t seed, uint64_t index, tir_module **out,
                             tir_bindings *dims, tir_diag *d);

#endif
