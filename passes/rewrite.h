/* rewrite.h: the small toolkit every IR-to-IR pass uses to rebuild a function, plus the
 * interface between the gradient driver (grad.c) and its per-op rules (grad_rules.c).
 *
 * A pass never edits ops in place: it saves the function's op list (tir_rw_begin), walks the old
 * ops and appends new ones through tir_func_append_op (so inference recomputes every type), and
 * records which new value stands for each old one (the value map). tir_rw_end points the
 * function's results through the map and renumbers value ids densely. Old ops stay in the arena
 * unreferenced; they die with the module.
 *
 * Dims: inlining binds a callee's symbols to the caller's dims, so shape attributes of cloned ops
 * (reshape, broadcast, full, iota, split) are rewritten through a symbol substitution (tir_dsub).
 */
#ifndef TIR_REWRITE_H
#define TIR_REWRITE_H

#include "ir.h"

/* ---- pointer -> pointer map (open addressing; keys are never NULL) */
typedef struct tir_vmap {
    size_t cap, n;
    const void **keys;
    void **vals;
} tir_vmap;
bool tir_vmap_put(tir_vmap *m, const void *key, void *val); /* false on OOM */
void *tir_vmap_get(const tir_vmap *m, const void *key);     /* NULL when absent */
void tir_vmap_free(tir_vmap *m);

/* ---- symbol substitution on dims */
#define TIR_DSUB_MAX 64
typedef struct tir_dsub {
    int n;
    const char *names[TIR_DSUB_MAX];
    const tir_dim *dims[TIR_DSUB_MAX];
} tir_dsub;
/* d with every mapped symbol replaced; d itself when none occurs; NULL on overflow/OOM */
const tir_dim *tir_dsub_apply(tir_context *c, const tir_dim *d, const tir_dsub *s);
/* Binds the symbols of `formal` (a callee's parameter dim) so that it equals `actual`: a bare
 * symbol binds directly; a linear dim with one unbound symbol (Hq*64, 2*N+1) binds when the
 * quotient is exact. Returns false when nothing could be bound (not an error by itself). */
bool tir_dsub_unify(tir_context *c, tir_dsub *s, const tir_dim *formal, const tir_dim *actual);

/* ---- cloning ops */
/* Appends to dst a copy of op with operands `in` (values of dst), attributes copied (shape
 * attributes through s when s is non-NULL). NULL with d filled on error. */
tir_op *tir_rw_clone(tir_func *dst, const tir_op *op, tir_value *const *in, const tir_dsub *s,
                     tir_diag *d);
/* Appends callee's body to dst with its parameters bound to args (values of dst): symbols are
 * unified from the parameter types, calls inside are inlined too. outs (callee->nres slots) gets
 * the values standing for callee's results. keep_names copies value names (only safe when dst
 * has no other ops, as in the grad pass); otherwise the copies are unnamed temporaries. */
tir_status tir_rw_inline(tir_func *dst, const tir_func *callee, tir_value *const *args,
                         tir_value **outs, bool keep_names, tir_diag *d);
/* a function whose value_and_grad body has not been built yet */
static inline bool tir_func_bodiless(const tir_func *f) { return f->grad_of != NULL; }

/* the status a failed builder call left in d (TIR_ERR_INTERNAL if it left none) */
static inline tir_status tir_rw_fail(const tir_diag *d) {
    return d && d->status != TIR_OK ? d->status : TIR_ERR_INTERNAL;
}

/* ---- rebuilding a function */
typedef struct tir_rw {
    tir_func *f;
    tir_op **old; /* the op list being replaced (malloc'd copy) */
    int nold;
    tir_vmap map; /* old value -> new value */
    tir_diag *d;
} tir_rw;
tir_status tir_rw_begin(tir_rw *rw, tir_func *f, tir_diag *d);
tir_value *tir_rw_get(const tir_rw *rw, tir_value *v); /* mapped, or v itself */
tir_status tir_rw_set(tir_rw *rw, tir_value *old, tir_value *nw);
/* op's results now stand for outs[0..op->nout): later uses read them, and a new temporary
 * takes the result's name, so a rewrite keeps the user's names */
tir_status tir_rw_replace(tir_rw *rw, const tir_op *op, tir_value *const *outs);
/* op's operands through the map; returns a malloc'd array (NULL on OOM) the caller frees */
tir_value **tir_rw_operands(const tir_rw *rw, const tir_op *op);
/* copy op with mapped operands, map its results (keeping names); NULL with rw->d on error */
tir_op *tir_rw_copy(tir_rw *rw, const tir_op *op);
/* When st is TIR_OK: results through the map, value ids renumbered. Otherwise the old op list
 * is put back, so a failed pass leaves the function as it was. Frees the state always; returns
 * st (or an OOM status). */
tir_status tir_rw_end(tir_rw *rw, tir_status st);
/* Runs rewrite on every function of m that has a body and that wants accepts (NULL: all), in
 * order, stopping at the first error: the per-function driver of a rewriting pass. d may be NULL. */
tir_status tir_rw_each_func(tir_module *m, bool (*wants)(const tir_func *f),
                            tir_status (*rewrite)(tir_func *f, tir_diag *d), tir_diag *d);
/* Renumbers value ids densely: parameters first, then op results in program order. */
void tir_rw_renumber(tir_func *f);
/* name unless another value of f already has it (then name_2, name_3, ...); NULL on OOM */
const char *tir_rw_unique_name(tir_func *f, const char *name);

/* The kernel names a module's regions carry, so that passes naming new regions (tile, fuse)
 * never collide with hand-written or earlier ones. Names are borrowed, not copied. */
typedef struct tir_kernel_names {
    const char **v;
    int n;
    int next; /* the number the next generated name tries */
} tir_kernel_names;
/* false on OOM (then nothing to free) */
bool tir_kernel_names_init(tir_kernel_names *nm, const tir_module *m);
bool tir_kernel_names_has(const tir_kernel_names *nm, const char *s);
bool tir_kernel_names_add(tir_kernel_names *nm, const char *s); /* false on OOM */
void tir_kernel_names_free(tir_kernel_names *nm);

/* ---- gradient rules (grad_rules.c), driven by grad.c
 * A rule gets the op (a forward op in b->f), the adjoints of its results (gout[i] NULL when a
 * result got none) and which operands need a gradient; it writes gin[i] for those, built with b.
 * A gradient may have the op's result shape where the operand was broadcast: the driver sums it
 * back to the operand's shape once, and casts it to the operand's dtype. */
typedef tir_status (*tir_grad_rule)(tir_ib *b, const tir_op *op, tir_value *const *gout,
                                    const bool *need, tir_value **gin);
extern const tir_grad_rule tir_grad_rules[TIR_OP_COUNT];

#endif
