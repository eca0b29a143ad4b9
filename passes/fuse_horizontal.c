/* fuse_horizontal.c: horizontal fusion. Merges independent elementwise kernels (fused regions
 * with schedule kind="elementwise") of a function into one fused region with schedule
 * kind="horizontal", so that, e.g., an optimizer step over a model's parameter tensors is a few
 * launches instead of one per tensor (docs/tir.md §11.1).
 *
 * requires: a verified module after fuse (regions carry their schedules); other fused kinds,
 *           plain ops and calls are left alone.
 * maintains: signatures and results; the meaning of every value bit for bit (the same ops run,
 *           only grouped: a horizontal region's body is its parts' bodies one after the other);
 *           the names of the merged regions' results and of their members.
 * breaks:  program order: the function is re-sorted topologically (a merged kernel must follow
 *           the operands of all its parts and precede the users of all their results), ties
 *           kept in the original order; the names of the merged kernels (horizontal_<n>).
 *
 * Which regions go together. Two regions can be one kernel only if neither depends on the
 * other's results, directly or through any chain of ops. Regions are grouped by their height:
 * the longest chain of elementwise regions from a region to the function's results (a region
 * whose results only the return, or non-elementwise kernels, read has height 0). Regions of one
 * height never depend on each other, and a path between two kernels always goes from a greater
 * height to a smaller one, so however each height is cut into groups, the graph of kernels
 * stays acyclic. Counting from the results (as late as possible) rather than from the inputs is
 * what puts every parameter's optimizer update of a training step at height 0 together, however
 * deep in the backward pass its gradient was made.
 *
 * The bound on a group: kernel parameter space. Each part needs its buffers (8 bytes each: its
 * distinct operands and its results) and the kernel one i64 per distinct symbolic size. CUDA
 * drivers before 12.1 (and PTX before ISA 8.1) allow 4 KB of parameters per launch; 12.1+ allow
 * 32 KB on Volta and later. tir emits for sm_75 up and loads with whatever driver is there, so a
 * group stays within 4 KB (73 AdamW tensors of 7 buffers each): a few launches of many tensors
 * each, as PyTorch's multi_tensor_apply does, and launch overhead is already negligible at that
 * count. A group also stays within 64 symbolic sizes (codegen's limit per kernel, cg.h).
 *
 * The schedule of a horizontal region records its layout: parts (how many), part_results (how
 * many results each part yields, in order: the results of part 0 first), part_vectors (each
 * part's vector width, from its elementwise schedule), part_thread_axes (each part's thread_axis,
 * -1 for none; present only when some part has one), block (threads per block) and per_thread
 * (vectors each thread handles per block: a block covers block*per_thread vectors of one part,
 * and part p gets ceil(numel_p / (vector_p * D_p * block * per_thread)) blocks, D_p the size of
 * its thread axis, 1 without one). */
#include <stdio.h>

#include "passes.h"
#include "rewrite.h"

#define HZ_PARAM_BYTES 4096 /* kernel parameter space every driver accepts */
#define HZ_MAX_DIMS 64      /* symbolic sizes per kernel (codegen/cg.h's CG_MAX_DIMS) */
#define HZ_BLOCK 256
/* vectors a thread handles in turn, one vector's loads in flight at a time: 8 for many small
 * parts (AdamW's); 1 where a part walks a thread axis (each unit already D vectors, loaded
 * together): RoPE q+k 116.7 us at 1, 124.2 at 8 (H100, 2026-11-23) */
#define HZ_PER_THREAD 8

static const char *sched_kind(const tir_op *op) {
    const tir_attr_value *e = tir_dict_get(tir_op_attr(op, "schedule"), "kind");
    return e && e->kind == TIR_ATTR_STR ? e->u.s : NULL;
}

static bool is_part(const tir_op *op) {
    const tir_func *R = tir_op_region(op);
    const char *k = sched_kind(op);
    return R && R->nres > 0 && k && strcmp(k, "elementwise") == 0;
}

static int64_t part_vector(const tir_op *op) {
    const tir_attr_value *e = tir_dict_get(tir_op_attr(op, "schedule"), "vector");
    return e && e->kind == TIR_ATTR_INT && e->u.i >= 1 ? e->u.i : 1;
}

/* the part's thread axis (its elementwise schedule's thread_axis), -1 none */
static int64_t part_thread_axis(const tir_op *op) {
    const tir_attr_value *e = tir_dict_get(tir_op_attr(op, "schedule"), "thread_axis");
    return e && e->kind == TIR_ATTR_INT && e->u.i >= 0 ? e->u.i : -1;
}

/* a growing set of pointers (operands, dims) of the group being built */
typedef struct pset {
    const void **v;
    int n, cap;
} pset;

static bool pset_has(const pset *s, const void *p) {
    for (int i = 0; i < s->n; i++)
        if (s->v[i] == p) return true;
    return false;
}

static bool pset_add(pset *s, const void *p) {
    if (pset_has(s, p)) return true;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 32;
        const void **nv = realloc(s->v, (size_t)cap * sizeof *nv);
        if (!nv) return false;
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = p;
    return true;
}

/* the symbolic sizes of t not yet in dims, added to extra (a scratch set) */
static bool new_dims(const pset *dims, pset *extra, const tir_type *t) {
    for (int i = 0; i < t->rank; i++)
        if (!tir_dim_is_const(t->dims[i], NULL) && !pset_has(dims, t->dims[i]) && !pset_add(extra, t->dims[i]))
            return false;
    return true;
}

/* A group being built: its parts (op indices of the function), the operands and symbolic sizes
 * it has so far, and the parameter bytes they take. */
typedef struct group {
    int *parts;
    int nparts;
    pset ops, dims;
    int64_t bytes;
} group;

static void group_free(group *g) {
    free(g->parts);
    free(g->ops.v);
    free(g->dims.v);
    memset(g, 0, sizeof *g);
}

/* Adds part op to g when the parameter space allows (*fits false otherwise); false on OOM. */
static bool group_try(group *g, const tir_op *op, int k, bool *fits) {
    const tir_func *R = tir_op_region(op);
    pset extra = {0};
    bool ok = true;
    int64_t nin = 0;
    for (int i = 0; i < op->nin; i++) nin += !pset_has(&g->ops, op->in[i]);
    for (int i = 0; ok && i < R->nparams; i++) ok = new_dims(&g->dims, &extra, &R->params[i]->type);
    for (int i = 0; ok && i < R->nops; i++)
        for (int j = 0; ok && j < R->ops[i]->nout; j++) ok = new_dims(&g->dims, &extra, &R->ops[i]->out[j]->type);
    if (!ok) {
        free(extra.v);
        return false;
    }
    int64_t bytes = g->bytes + 8 * (nin + op->nout + extra.n);
    *fits = bytes <= HZ_PARAM_BYTES && g->dims.n + extra.n <= HZ_MAX_DIMS;
    if (*fits) {
        int *np = realloc(g->parts, (size_t)(g->nparts + 1) * sizeof *np);
        ok = np != NULL;
        if (ok) {
            g->parts = np;
            g->parts[g->nparts++] = k;
        }
        for (int i = 0; ok && i < op->nin; i++) ok = pset_add(&g->ops, op->in[i]);
        for (int i = 0; ok && i < extra.n; i++) ok = pset_add(&g->dims, extra.v[i]);
        g->bytes = bytes;
    }
    free(extra.v);
    return ok;
}

/* ------------------------------------------------------------------ the analysis */

typedef struct hz {
    tir_func *f;
    int n;
    int *def;     /* by value id: defining op index, -1 for a parameter */
    int *height;  /* by op: longest chain of parts from the op's results to the return */
    int *group;   /* by op: the group it joins, -1 none */
    group *gs;
    int ngs;
} hz;

static void hz_free(hz *h) {
    for (int i = 0; i < h->ngs; i++) group_free(&h->gs[i]);
    free(h->gs);
    free(h->def);
    free(h->height);
    free(h->group);
}

static int def_of(const hz *h, const tir_value *v) {
    return v && v->func == h->f && v->id >= 0 && v->id < h->f->nvalues ? h->def[v->id] : -1;
}

/* heights, in reverse program order: an op's is the largest over its consumers, plus one
 * where the consumer is a part */
static bool heights(hz *h) {
    tir_func *f = h->f;
    for (int k = 0; k < h->n; k++) h->height[k] = 0;
    for (int k = h->n - 1; k >= 0; k--) {
        const tir_op *op = f->ops[k];
        int up = h->height[k] + (is_part(op) ? 1 : 0);
        for (int i = 0; i < op->nin; i++) {
            int p = def_of(h, op->in[i]);
            if (p >= 0 && h->height[p] < up) h->height[p] = up;
        }
    }
    return true;
}

static bool new_group(hz *h) {
    group *ng = realloc(h->gs, (size_t)(h->ngs + 1) * sizeof *ng);
    if (!ng) return false;
    h->gs = ng;
    memset(&h->gs[h->ngs++], 0, sizeof *ng);
    return true;
}

/* Parts of each height, in program order, fill groups up to the parameter bound. */
static bool make_groups(hz *h) {
    int maxh = -1;
    for (int k = 0; k < h->n; k++)
        if (is_part(h->f->ops[k]) && h->height[k] > maxh) maxh = h->height[k];
    for (int lv = 0; lv <= maxh; lv++) {
        int open = -1;
        for (int k = 0; k < h->n; k++) {
            const tir_op *op = h->f->ops[k];
            if (!is_part(op) || h->height[k] != lv) continue;
            bool fits = false;
            if (open >= 0 && !group_try(&h->gs[open], op, k, &fits)) return false;
            if (open < 0 || !fits) {
                if (!new_group(h)) return false;
                open = h->ngs - 1;
                if (!group_try(&h->gs[open], op, k, &fits)) return false;
                /* a part alone over the bound is not added: it stays an elementwise kernel */
            }
        }
    }
    /* a group of one part is no horizontal kernel */
    for (int i = 0; i < h->ngs; i++)
        if (h->gs[i].nparts >= 2)
            for (int j = 0; j < h->gs[i].nparts; j++) h->group[h->gs[i].parts[j]] = i;
    return true;
}

static bool analyse(hz *h, tir_func *f) {
    memset(h, 0, sizeof *h);
    h->f = f;
    h->n = f->nops;
    size_t nn = (size_t)(h->n ? h->n : 1), nv = (size_t)(f->nvalues > 0 ? f->nvalues : 1);
    h->def = malloc(nv * sizeof *h->def);
    h->height = malloc(nn * sizeof *h->height);
    h->group = malloc(nn * sizeof *h->group);
    if (!h->def || !h->height || !h->group) return false;
    for (size_t i = 0; i < nv; i++) h->def[i] = -1;
    for (int k = 0; k < h->n; k++) {
        h->group[k] = -1;
        for (int j = 0; j < f->ops[k]->nout; j++) {
            int id = f->ops[k]->out[j]->id;
            if (id >= 0 && id < f->nvalues) h->def[id] = k;
        }
    }
    return heights(h) && make_groups(h);
}

/* ------------------------------------------------------------------ rewriting */

/* every kernel name of the module, so that new ones never collide */
static bool name_used(const tir_module *m, const char *s) {
    for (int i = 0; i < m->nfuncs; i++)
        for (int k = 0; k < m->funcs[i]->nops; k++) {
            const tir_op *op = m->funcs[i]->ops[k];
            const char *kn = tir_attr_str(op, "kernel", NULL);
            if (tir_op_region(op) && kn && strcmp(kn, s) == 0) return true;
        }
    return false;
}

/* "a,b,c" of n ints, in the module arena (NULL on OOM) */
static const char *int_list(tir_module *m, const int64_t *v, int n) {
    size_t cap = (size_t)n * 21 + 1, k = 0;
    char *s = tir_arena_alloc(m->arena, cap);
    if (!s) return NULL;
    for (int i = 0; i < n; i++) k += (size_t)snprintf(s + k, cap - k, "%s%lld", i ? "," : "", (long long)v[i]);
    return s;
}

/* Appends group g of the old ops to f as one fused op: its region holds a copy of every part's
 * body, parts in program order. */
static tir_status emit_group(tir_rw *rw, const group *g, int *counter, tir_diag *d) {
    tir_func *f = rw->f;
    tir_module *m = f->module;
    tir_status st = TIR_OK;
    tir_vmap map = {0};
    pset outer = {0};
    tir_value **res = NULL, **tmp = NULL;
    tir_type *types = NULL;
    int64_t *nres = NULL, *vecs = NULL, *axes = NULL;
    int total = 0, maxin = 1;
    bool any_axis = false;
    const tir_op *first = rw->old[g->parts[0]];
    for (int p = 0; p < g->nparts; p++) {
        const tir_op *op = rw->old[g->parts[p]];
        total += op->nout;
        const tir_func *R = tir_op_region(op);
        for (int i = 0; i < R->nops; i++)
            if (R->ops[i]->nin > maxin) maxin = R->ops[i]->nin;
    }
    char name[64];
    do snprintf(name, sizeof name, "horizontal_%d", (*counter)++);
    while (name_used(m, name));
    tir_func *r = tir_region_new(f, name, first->loc);
    res = malloc((size_t)total * sizeof *res);
    types = malloc((size_t)total * sizeof *types);
    tmp = malloc((size_t)maxin * sizeof *tmp);
    nres = malloc((size_t)g->nparts * sizeof *nres);
    vecs = malloc((size_t)g->nparts * sizeof *vecs);
    axes = malloc((size_t)g->nparts * sizeof *axes);
    if (!r || !res || !types || !tmp || !nres || !vecs || !axes) goto oom;
    /* the operands, each once: parts may share one (a scalar, a common input) */
    for (int p = 0; p < g->nparts; p++) {
        const tir_op *op = rw->old[g->parts[p]];
        for (int i = 0; i < op->nin; i++) {
            if (pset_has(&outer, op->in[i])) continue;
            if (!pset_add(&outer, op->in[i])) goto oom;
            tir_value *pv = tir_func_add_param(r, op->in[i]->name, &op->in[i]->type, op->loc);
            if (!pv || !tir_vmap_put(&map, op->in[i], pv)) goto oom;
        }
    }
    int nr = 0;
    for (int p = 0; p < g->nparts && st == TIR_OK; p++) {
        const tir_op *op = rw->old[g->parts[p]];
        const tir_func *R = tir_op_region(op);
        tir_vmap local = {0};
        for (int i = 0; i < R->nparams && i < op->nin; i++)
            if (!tir_vmap_put(&local, R->params[i], tir_vmap_get(&map, op->in[i]))) {
                tir_vmap_free(&local);
                goto oom;
            }
        for (int i = 0; i < R->nops && st == TIR_OK; i++) {
            const tir_op *mop = R->ops[i];
            for (int j = 0; j < mop->nin; j++) tmp[j] = tir_vmap_get(&local, mop->in[j]);
            tir_op *no = tir_rw_clone(r, mop, tmp, NULL, d);
            if (!no) {
                st = tir_rw_fail(d);
                break;
            }
            for (int j = 0; j < mop->nout; j++) {
                no->out[j]->name = mop->out[j]->name;
                if (!tir_vmap_put(&local, mop->out[j], no->out[j])) st = TIR_ERR_OOM;
            }
        }
        for (int j = 0; j < R->nres && st == TIR_OK; j++) {
            res[nr] = tir_vmap_get(&local, R->results[j]);
            if (!res[nr]) st = tir_diag_set(d, TIR_ERR_INTERNAL, m, op->loc, "horizontal: a part yields an unknown value");
            else {
                types[nr] = res[nr]->type;
                nr++;
            }
        }
        nres[p] = R->nres;
        vecs[p] = part_vector(op);
        axes[p] = part_thread_axis(op);
        any_axis |= axes[p] >= 0;
        tir_vmap_free(&local);
        if (st == TIR_ERR_OOM) goto oom;
    }
    if (st != TIR_OK) goto out;
    tir_func_set_results(r, nr, res);
    tir_func_set_ret(r, nr, types);
    if (r->nres != nr || r->nret != nr) goto oom;
    const char *pr = int_list(m, nres, g->nparts), *pvs = int_list(m, vecs, g->nparts);
    const char *pta = any_axis ? int_list(m, axes, g->nparts) : "";
    if (!pr || !pvs || !pta) goto oom;
    /* part_thread_axes only where some part has one: other schedules print as they did */
    tir_attr_value sched[7] = {
        tir_a_str("kind", "horizontal"), tir_a_int("parts", g->nparts), tir_a_str("part_results", pr),
        tir_a_str("part_vectors", pvs),  tir_a_int("block", HZ_BLOCK),  tir_a_int("per_thread", any_axis ? 1 : HZ_PER_THREAD),
        tir_a_str("part_thread_axes", pta),
    };
    tir_schedule_overrides(any_axis ? 7 : 6, sched);
    tir_attr_value attrs[2] = {tir_a_str("kernel", name), tir_a_dict(m, "schedule", any_axis ? 7 : 6, sched)};
    if (!attrs[1].u.dict.v) goto oom;
    tir_value **ov = malloc((size_t)(outer.n ? outer.n : 1) * sizeof *ov);
    if (!ov) goto oom;
    for (int i = 0; i < outer.n; i++) ov[i] = tir_rw_get(rw, (tir_value *)outer.v[i]);
    tir_op *fo = tir_func_append_op(f, TIR_OP_FUSED, outer.n, ov, 2, attrs, r, first->loc, d);
    free(ov);
    if (!fo) {
        st = tir_rw_fail(d);
        goto out;
    }
    nr = 0;
    for (int p = 0; p < g->nparts && st == TIR_OK; p++) {
        const tir_op *op = rw->old[g->parts[p]];
        for (int j = 0; j < op->nout && st == TIR_OK; j++, nr++) {
            fo->out[nr]->name = op->out[j]->name;
            st = tir_rw_set(rw, op->out[j], fo->out[nr]);
        }
    }
    goto out;
oom:
    st = tir_diag_set(d, TIR_ERR_OOM, m, first->loc, "out of memory");
out:
    tir_vmap_free(&map);
    free(outer.v);
    free(res);
    free(types);
    free(tmp);
    free(nres);
    free(vecs);
    free(axes);
    return st;
}

/* A unit of the new order: a group (one fused op) or an op kept as it is. */
typedef struct unit {
    int key;   /* its last op in the old order: ties go back to the old order */
    int nsucc, capsucc, *succ;
    int indeg;
    int group; /* -1: the op `op` */
    int op;
} unit;

static bool add_succ(unit *u, int s) {
    for (int i = 0; i < u->nsucc; i++)
        if (u->succ[i] == s) return true;
    if (u->nsucc == u->capsucc) {
        int cap = u->capsucc ? 2 * u->capsucc : 4;
        int *ns = realloc(u->succ, (size_t)cap * sizeof *ns);
        if (!ns) return false;
        u->succ = ns;
        u->capsucc = cap;
    }
    u->succ[u->nsucc++] = s;
    return true;
}

/* Rebuilds f in a topological order of the units: each time the ready unit whose last op came
 * first (a linear scan: functions have thousands of ops at most, and this runs once per pass). */
static tir_status rewrite(hz *h, tir_diag *d) {
    tir_func *f = h->f;
    tir_module *m = f->module;
    int n = h->n;
    unit *u = calloc((size_t)(n ? n : 1), sizeof *u);
    int *unit_of = malloc((size_t)(n ? n : 1) * sizeof *unit_of);
    int *gunit = malloc((size_t)(h->ngs ? h->ngs : 1) * sizeof *gunit);
    tir_status st = TIR_OK;
    int nu = 0;
    if (!u || !unit_of || !gunit) {
        st = tir_diag_set(d, TIR_ERR_OOM, m, f->loc, "out of memory");
        goto out;
    }
    for (int i = 0; i < h->ngs; i++) gunit[i] = -1;
    for (int k = 0; k < n; k++) {
        int gi = h->group[k];
        if (gi >= 0 && gunit[gi] >= 0) {
            unit_of[k] = gunit[gi];
            u[gunit[gi]].key = k;
            continue;
        }
        u[nu] = (unit){.key = k, .group = gi, .op = k};
        if (gi >= 0) gunit[gi] = nu;
        unit_of[k] = nu++;
    }
    for (int k = 0; k < n && st == TIR_OK; k++)
        for (int i = 0; i < f->ops[k]->nin; i++) {
            int p = def_of(h, f->ops[k]->in[i]);
            if (p < 0 || unit_of[p] == unit_of[k]) continue;
            int before = u[unit_of[p]].nsucc;
            if (!add_succ(&u[unit_of[p]], unit_of[k])) {
                st = tir_diag_set(d, TIR_ERR_OOM, m, f->loc, "out of memory");
                break;
            }
            if (u[unit_of[p]].nsucc > before) u[unit_of[k]].indeg++;
        }
    if (st != TIR_OK) goto out;
    tir_rw rw;
    if ((st = tir_rw_begin(&rw, f, d)) != TIR_OK) goto out;
    int counter = 0, emitted = 0;
    bool *taken = calloc((size_t)(nu ? nu : 1), sizeof *taken);
    if (!taken) st = tir_diag_set(d, TIR_ERR_OOM, m, f->loc, "out of memory");
    while (st == TIR_OK && emitted < nu) {
        int best = -1;
        for (int x = 0; x < nu; x++)
            if (!taken[x] && u[x].indeg == 0 && (best < 0 || u[x].key < u[best].key)) best = x;
        if (best < 0) {
            st = tir_diag_set(d, TIR_ERR_INTERNAL, m, f->loc, "horizontal: @%s: the merged kernels form a cycle", f->name);
            break;
        }
        taken[best] = true;
        emitted++;
        if (u[best].group >= 0) st = emit_group(&rw, &h->gs[u[best].group], &counter, d);
        else if (!tir_rw_copy(&rw, rw.old[u[best].op])) st = tir_rw_fail(d);
        for (int s = 0; s < u[best].nsucc; s++) u[u[best].succ[s]].indeg--;
    }
    free(taken);
    st = tir_rw_end(&rw, st);
out:
    if (u)
        for (int x = 0; x < nu; x++) free(u[x].succ);
    free(u);
    free(unit_of);
    free(gunit);
    return st;
}

static tir_status horizontal_func(tir_func *f, tir_diag *d) {
    hz h;
    tir_status st = TIR_OK;
    if (!analyse(&h, f)) st = tir_diag_set(d, TIR_ERR_OOM, f->module, f->loc, "out of memory");
    else {
        bool any = false;
        for (int i = 0; i < h.ngs; i++) any |= h.gs[i].nparts >= 2;
        if (any) st = rewrite(&h, d);
    }
    hz_free(&h);
    return st;
}

tir_status tir_pass_fuse_horizontal(tir_module *m, tir_diag *d) {
    tir_diag local;
    if (!d) d = &local;
    memset(d, 0, sizeof *d);
    if (!m) return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "horizontal: no module");
    return tir_rw_each_func(m, NULL, horizontal_func, d);
}
