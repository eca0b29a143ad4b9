/* gradcheck.h: checks reverse-mode gradients (passes/grad.c) against central finite
 * differences, both on the reference interpreter, in f64: the program is retyped (every float
 * dtype becomes f64) before either side runs, so the comparison measures the gradient rules, not
 * rounding. Drives `tirc gradcheck` and the gradient unit tests. */
#ifndef TIR_GRADCHECK_H
#define TIR_GRADCHECK_H

#include <stdio.h>

#include "ir.h"

typedef struct tir_gradcheck_opts {
    uint64_t seed;        /* random inputs (0 is a valid seed) */
    double eps;           /* finite-difference step; <= 0: 1e-6 */
    double tol;           /* pass when |analytic - numeric| <= tol * max(1, |numeric|); <= 0: 1e-6 */
    double lo, hi;        /* float inputs uniform in [lo, hi], never near 0; lo == hi: [-1, 1] */
    int max_elems;        /* elements differenced per parameter (a random sample when more);
                           * <= 0: 64 */
    tir_bindings dims;    /* sizes of symbols nothing else binds */
    FILE *log;            /* PASS/FAIL lines per parameter; NULL: quiet */
} tir_gradcheck_opts;

typedef struct tir_gradcheck_result {
    int nparams;          /* parameters checked */
    int nfailed;          /* parameters with an element out of tolerance (or NaN) */
    bool loss_failed;     /* the value of value_and_grad differs from the loss function's */
    double max_abs_err;   /* over every element checked */
    double max_rel_err;   /* max of |analytic - numeric| / max(1, |numeric|): what tol bounds */
    double loss;          /* the loss at the random point */
} tir_gradcheck_result;

/* func: a function returning one float scalar (checked with respect to all its float
 * parameters), or a value_and_grad definition whose body is not built yet (checked against its
 * grad_of, with respect to its wrt list). m is left untouched (the check runs on a retyped copy
 * in m's context). TIR_OK means the check ran: look at r->nfailed and r->loss_failed. */
tir_status tir_gradcheck(const tir_module *m, const char *func, const tir_gradcheck_opts *o,
                         tir_gradcheck_result *r, tir_diag *d);

/* `tirc gradcheck F.tir --func F [--seed S] [--dim N=..] [--eps E] [--tol T] [--range LO,HI]
 *  [--max-elems N]`: argv[0] is the verb. Exit 0 when every parameter passes, 1 when one fails
 * or the program is wrong, 2 for a bad command line. */
int tir_cmd_gradcheck(int argc, char **argv);

#endif
