/* passes.h: every IR-to-IR pass. Each lives in its own file under passes/, opening with its
 * contract (requires / maintains / breaks). Every pass leaves a module that verifies and prints
 * as valid .tir, and the interpreter gives the same results before and after it. */
#ifndef TIR_PASSES_H
#define TIR_PASSES_H

#include "ir.h"

/* (passes add their entry points here, and one line to compiler/pipeline.c's stage table) */

#endif
