/* pipeline.h: the compiler's flat list of named stages, from parsed text to kernels. tirc's
 * `print --after STAGE` and TIR_DUMP read the same list. */
#ifndef TIR_PIPELINE_H
#define TIR_PIPELINE_H

#include "ir.h"

typedef tir_status (*tir_stage_fn)(tir_module *m, tir_diag *d);

typedef struct tir_stage {
    const char *name;  /* as written after --after and in TIR_DUMP */
    tir_stage_fn run;  /* NULL for "parse" (the module as parsed) */
    const char *what;  /* one line for --help */
} tir_stage;

/* the last stage tir_compile runs before lowering: NULL, every stage (each one after fuse
 * rewrites kernels, so lowering needs them all) */
#define TIR_COMPILE_LAST_STAGE NULL

int tir_pipeline_count(void);
const tir_stage *tir_pipeline_stage(int i);
const tir_stage *tir_pipeline_find(const char *name);

/* Called after each stage with the module as it stands (for dumps and `print --after`). */
typedef void (*tir_stage_cb)(const tir_stage *st, const tir_module *m, void *ud);

/* Runs the stages in order up to and including `until` (NULL: all IR stages). In debug builds
 * (TIR_DEBUG) the verifier runs after every stage. Honors TIR_DUMP / TIR_DUMP_DIR. */
tir_status tir_pipeline_run(tir_module *m, const char *until, tir_stage_cb cb, void *ud,
                            tir_diag *d);

#endif
