/* pipeline.c: the stages of tir, in order. Reads as a flat list; each stage is a pass from
 * passes/ (or the verifier). The IR after any stage prints as valid .tir. */
#include <stdio.h>

#include "passes.h"
#include "pipeline.h"

static tir_status stage_verify(tir_module *m, tir_diag *d) { return tir_verify(m, d); }

static const tir_stage stages[] = {
    {"parse", NULL, "the module as parsed"},
    {"verify", stage_verify, "types, SSA, calls and signatures checked"},
    {"grad", tir_pass_grad, "value_and_grad definitions get their bodies (reverse mode)"},
    {"inline", tir_pass_inline, "every call replaced by the callee's body"},
    {"simplify", tir_pass_simplify, "constant folding, algebraic identities, CSE, DCE"},
    {"decompose", tir_pass_decompose, "composite ops into core ops"},
    {"cleanup", tir_pass_simplify, "simplify again after decomposition"},
    {"tile", tir_pass_tile, "matmuls with their epilogues into regions, each with its tiling"},
    {"fuse", tir_pass_fuse, "ops grouped into fused kernels (regions)"},
    {"schedule", tir_pass_schedule, "each fused kernel's schedule: vector, warps, rows, sweeps, grid"},
    {"horizontal", tir_pass_fuse_horizontal, "independent elementwise kernels merged into multi-tensor kernels"},
};

int tir_pipeline_count(void) { return (int)(sizeof stages / sizeof stages[0]); }

const tir_stage *tir_pipeline_stage(int i) {
    return i >= 0 && i < tir_pipeline_count() ? &stages[i] : NULL;
}

const tir_stage *tir_pipeline_find(const char *name) {
    for (int i = 0; i < tir_pipeline_count(); i++)
        if (strcmp(stages[i].name, name) == 0) return &stages[i];
    return NULL;
}

/* TIR_DUMP=stage,stage|all writes the module after those stages to TIR_DUMP_DIR (default
 * stderr) as NN-stage.tir */
static bool dump_wanted(const char *name) {
    const char *want = getenv("TIR_DUMP");
    if (!want || !*want) return false;
    if (strcmp(want, "all") == 0) return true;
    size_t n = strlen(name);
    for (const char *p = want; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

static void dump(int idx, const tir_stage *st, const tir_module *m) {
    if (!dump_wanted(st->name)) return;
    char *text = tir_module_print(m);
    if (!text) return;
    const char *dir = getenv("TIR_DUMP_DIR");
    if (dir && *dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%02d-%s.tir", dir, idx, st->name);
        FILE *f = fopen(path, "w");
        if (f) {
            fputs(text, f);
            fclose(f);
        }
    } else {
        fprintf(stderr, "# ---- after %s\n%s", st->name, text);
    }
    tir_free(text);
}

tir_status tir_pipeline_run(tir_module *m, const char *until, tir_stage_cb cb, void *ud,
                            tir_diag *d) {
    if (until && !tir_pipeline_find(until))
        return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "unknown stage '%s'", until);
    for (int i = 0; i < tir_pipeline_count(); i++) {
        const tir_stage *st = &stages[i];
        if (st->run) {
            tir_status s = st->run(m, d);
            if (s != TIR_OK) return s;
#ifdef TIR_DEBUG
            if (st->run != stage_verify) {
                s = tir_verify(m, d);
                if (s != TIR_OK) return s;
            }
#endif
        }
        dump(i, st, m);
        if (cb) cb(st, m, ud);
        if (until && strcmp(until, st->name) == 0) break;
    }
    return TIR_OK;
}
