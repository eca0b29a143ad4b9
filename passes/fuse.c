/* fuse.c: groups the ops of every function into fused regions, one region per kernel, and
 * records on each its kind (schedule={kind=...}); passes/schedule.c, the next stage, decides
 * the rest of the schedule the code generator follows (docs/tir.md §11).
 *
 * requires: a verified module, normally after decompose and cleanup (composites, calls and
 *           fused ops already there are left alone, as opaque ops).
 * maintains: signatures and results; the meaning of every value, bit for bit: the same ops run
 *           in the same order, only grouped (a recomputed value, below, runs in every kernel
 *           that reads it: a pure function gives the same bits each time); the names of values
 *           that stay visible outside a region (a region result takes its member's name).
 * breaks:  the flat op list: elementwise ops, reductions and the movement ops feeding them now
 *           live in regions, so passes that match patterns across ops (simplify's rules) no
 *           longer see through a region boundary.
 *
 * What goes together (a group is legal when all of this holds; groups grow greedily along
 * producer -> consumer edges in program order, first only edges that touch a reduction so row
 * kernels claim the cheap ops they share with chains, then every edge, and refused edges are
 * tried again once the groups around them have grown):
 *   - elementwise ops (unary, binary, where, cast) chain into one kernel whose outputs all have
 *     one shape, the kernel's iteration space;
 *   - a reduction joins with its elementwise producers and with consumers that broadcast the
 *     reduced value back over the same rows: every reduction of a group reduces the same input
 *     shape F over the same axes R, and every value that depends on a reduction has shape F,
 *     F with R kept as 1 (keepdim) or F without R. So a decomposed RMSNorm, LayerNorm, softmax,
 *     log-softmax or cross-entropy row computation is one kernel;
 *   - a reduction across those rows joins too (across_rows: it reduces F over every axis, a
 *     loss, or over every kept axis, a column sum like a weight gradient; the code generator
 *     folds it into per-block partials): what depends on it is one value or one per row
 *     element (grid_shape) and feeds no row computation, and a column sum needs rows of a
 *     constant length of at most 8192 (its partials stay in registers). So RMSNorm's forward
 *     and backward, dw included, is one kernel;
 *   - reshape, transpose, broadcast and slice (pure index maps) join only as producers of
 *     members, never as a kernel's output, and after a reduction only to move between the row
 *     shapes (F, keepdim, squeezed);
 *   - full() constants and iota() index tensors are copied into every region that reads them
 *     (free to recompute: no operand, the value is a function of the index);
 *   - so is a cheap pure function of the parameters (recomputed): a value computed from
 *     function parameters, full() and iota() only, through cheap elementwise ops (cast, neg,
 *     abs, relu, add, sub, mul, minimum, maximum, compares, logic, where) and single-operand
 *     index maps, at most TIR_FUSE_RECOMPUTE_OPS ops in all (full and iota not counted). A
 *     kernel that reads it from another kernel (or from a lone index map) recomputes it from
 *     the parameters instead, so it is never a kernel result read by kernels: RoPE's f32
 *     cos/sin and its half mask, which CSE shares between q and k, cost no launch and no f32
 *     round trip. Grouping is unchanged; the copies are made when the kernels are built, the
 *     kernel that owned such ops keeps them while it reads them itself or something outside
 *     kernels needs them (an opaque op, the return), and a kernel left with no result
 *     disappears. The bound: the copies read nothing a kernel writes (no reduction, no
 *     non-parameter value, so no ordering edge and no cycle can appear), are cheap (one or two
 *     instructions per element, no transcendental, no division) and few, so a copy costs less
 *     than the load of a materialised value it replaces. Recomputing a pure function gives
 *     the same bits, so the values do not change;
 *   - matmul, take, scatter_add, concat, split, calls, composites and fused ops stay
 *     outside (matmul epilogues are separate work);
 *   - a member whose result is needed outside (by the return, an op outside kernels, or another
 *     kernel that cannot recompute it) stays a member and becomes an extra result of its region;
 *   - no group may make the graph of kernels cyclic.
 * Every kernel is then a region, even a single op; a lone movement op stays a plain op.
 *
 * Kernels are named <pattern>_<n>, n counting regions in the module in printed order (a region
 * is emitted where its first op was, or as soon after as its operands allow): the pattern is recognised
 * from the ops (rmsnorm, layernorm, softmax, log_softmax, cross_entropy, swiglu, geglu), else
 * the composite whose source location the ops carry (decompose stamps its loc on them), else
 * the first reduction or elementwise op. tir_fuse_explain prints the same analysis with the
 * reason for every kernel boundary; a kernel's recomputed values are listed with it
 * ("recomputes:") and an edge into such a copy is no boundary. */
#include <stdio.h>

#include "passes.h"
#include "rewrite.h"

enum { CL_OPAQUE, CL_EW, CL_RED, CL_MOV, CL_CONST };

/* the most ops (besides full and iota) a recomputed value may take: RoPE's cos/sin are a cast
 * and a reshape, its mask an iota compare; a few more leave room for a scaled or sliced table
 * without letting a long chain be recomputed per element of every kernel that reads it */
#define TIR_FUSE_RECOMPUTE_OPS 4

static int classify(const tir_op *op) {
    unsigned fl = tir_ops[op->code].flags;
    /* creation ops (full, iota) read nothing: pure functions of the element's index, so a
     * region recomputes them in registers instead of reading a materialised tensor (for iota,
     * cross-entropy's one-hot over [N, C] becomes an index compare) */
    if ((fl & TIR_F_CREATION) && tir_ops[op->code].max_in == 0) return CL_CONST;
    if (tir_op_is_elementwise(op->code)) return CL_EW;
    if (fl & TIR_F_REDUCE) return CL_RED;
    /* single-operand, single-result index maps; concat and split change which buffer an index
     * reads, so they stay kernels of their own */
    if ((fl & TIR_F_MOVEMENT) && tir_ops[op->code].max_in == 1 && tir_ops[op->code].nout == 1) return CL_MOV;
    return CL_OPAQUE;
}

/* elementwise ops of one or two instructions per element, cheap enough to recompute in every
 * kernel that reads them (no transcendental, no division) */
static bool cheap_op(const tir_op *op) {
    switch (op->code) {
    case TIR_OP_NEG: case TIR_OP_ABS: case TIR_OP_RELU: case TIR_OP_NOT: case TIR_OP_ADD: case TIR_OP_SUB:
    case TIR_OP_MUL: case TIR_OP_MAXIMUM: case TIR_OP_MINIMUM: case TIR_OP_EQ: case TIR_OP_NE: case TIR_OP_LT:
    case TIR_OP_LE: case TIR_OP_GT: case TIR_OP_GE: case TIR_OP_AND: case TIR_OP_OR: case TIR_OP_WHERE:
    case TIR_OP_CAST:
        return true;
    default:
        return false;
    }
}

/* why an op that is not fusible stays outside */
static const char *opaque_reason(const tir_op *op) {
    unsigned fl = tir_ops[op->code].flags;
    if (op->code == TIR_OP_CALL) return "not fusible (a call: inline it first)";
    if (fl & TIR_F_REGION) return "already a fused kernel";
    if (fl & TIR_F_COMPOSITE) return "not fusible (a composite: decompose it first)";
    if (fl & TIR_F_LINALG) return "not fusible (tensor-core kernel)";
    if (fl & TIR_F_INDEX) return "not fusible (indexed gather/scatter kernel)";
    if (fl & TIR_F_MOVEMENT) return "not fusible (joins or splits buffers)";
    if (fl & TIR_F_CREATION) return "not fusible (creation op, kept as its own kernel)";
    return "not fusible";
}

/* ------------------------------------------------------------------ the analysis of a function */

typedef struct boundary {
    int from, to;   /* producer and consumer op */
    char why[200];
} boundary;

typedef struct space {
    bool red;       /* has a reduction: F and R below; else an elementwise group */
    tir_type F;     /* the reductions' input shape, or the elementwise outputs' shape */
    unsigned R;     /* reduced axes of F */
} space;

typedef struct fa {
    tir_module *m;
    tir_func *f;
    int n;
    int *cls;
    int *def;          /* by value id: defining op, -1 for a parameter */
    int *uoff, *users; /* consumers of op k's results: users[uoff[k] .. uoff[k+1]) */
    bool *ret;         /* op k has a result the function returns */
    int *parent;       /* union-find */
    int **mem;         /* by root: members */
    int *nmem, *capmem;
    int *gmin;         /* by root: first member */
    bool *hasred;      /* by root: has a reduction */
    int *mark, *seen, *dep, *stack; /* scratch, by op, with stamps */
    unsigned char *gd;  /* scratch, by op: depends on a reduction across rows (1 a total, 2 a column sum) */
    bool *cand;        /* by op: a cheap pure function of the parameters, recomputed where read */
    bool *kern;        /* by op: a member of a group that has compute (a kernel) */
    bool *need;        /* by op: its value exists outside regions (a kernel result, an op left
                        * outside); valid once has_need */
    bool *keep;        /* by op: a member its kernel still computes (not only recomputed elsewhere) */
    bool has_need;
    int stamp;
    boundary *bd;
    int nbd, capbd;
    bool oom;
} fa;

static int find(fa *a, int k) {
    while (a->parent[k] != k) k = a->parent[k] = a->parent[a->parent[k]];
    return k;
}

static void fa_free(fa *a) {
    if (a->mem)
        for (int k = 0; k < a->n; k++) free(a->mem[k]);
    free(a->mem);
    free(a->cls);
    free(a->def);
    free(a->uoff);
    free(a->users);
    free(a->ret);
    free(a->parent);
    free(a->nmem);
    free(a->capmem);
    free(a->gmin);
    free(a->hasred);
    free(a->mark);
    free(a->seen);
    free(a->dep);
    free(a->gd);
    free(a->cand);
    free(a->kern);
    free(a->need);
    free(a->keep);
    free(a->stack);
    free(a->bd);
    memset(a, 0, sizeof *a);
}

static int def_of(const fa *a, const tir_value *v) {
    return v && v->func == a->f && v->id >= 0 && v->id < a->f->nvalues ? a->def[v->id] : -1;
}

static bool fa_init(fa *a, tir_module *m, tir_func *f) {
    memset(a, 0, sizeof *a);
    a->m = m;
    a->f = f;
    int n = a->n = f->nops;
    size_t nn = (size_t)(n ? n : 1), nv = (size_t)(f->nvalues > 0 ? f->nvalues : 1);
    a->cls = calloc(nn, sizeof *a->cls);
    a->def = malloc(nv * sizeof *a->def);
    a->uoff = calloc(nn + 1, sizeof *a->uoff);
    a->ret = calloc(nn, sizeof *a->ret);
    a->parent = malloc(nn * sizeof *a->parent);
    a->mem = calloc(nn, sizeof *a->mem);
    a->nmem = calloc(nn, sizeof *a->nmem);
    a->capmem = calloc(nn, sizeof *a->capmem);
    a->gmin = malloc(nn * sizeof *a->gmin);
    a->hasred = calloc(nn, sizeof *a->hasred);
    a->mark = calloc(nn, sizeof *a->mark);
    a->seen = calloc(nn, sizeof *a->seen);
    a->dep = calloc(nn, sizeof *a->dep);
    a->gd = calloc(nn, sizeof *a->gd);
    a->cand = calloc(nn, sizeof *a->cand);
    a->kern = calloc(nn, sizeof *a->kern);
    a->need = calloc(nn, sizeof *a->need);
    a->keep = calloc(nn, sizeof *a->keep);
    a->stack = malloc(nn * sizeof *a->stack);
    if (!a->cls || !a->def || !a->uoff || !a->ret || !a->parent || !a->mem || !a->nmem || !a->capmem ||
        !a->gmin || !a->hasred || !a->mark || !a->seen || !a->dep || !a->gd || !a->cand || !a->kern || !a->need ||
        !a->keep || !a->stack)
        return false;
    for (size_t i = 0; i < nv; i++) a->def[i] = -1;
    size_t nuse = 0;
    for (int k = 0; k < n; k++) {
        const tir_op *op = f->ops[k];
        a->cls[k] = classify(op);
        a->hasred[k] = a->cls[k] == CL_RED;
        a->parent[k] = k;
        a->gmin[k] = k;
        if (!(a->mem[k] = malloc(sizeof *a->mem[k]))) return false;
        a->mem[k][0] = k;
        a->nmem[k] = a->capmem[k] = 1;
        for (int j = 0; j < op->nout; j++)
            if (op->out[j]->id >= 0 && op->out[j]->id < f->nvalues) a->def[op->out[j]->id] = k;
        nuse += (size_t)op->nin;
    }
    /* consumers, as a compressed list per producer */
    for (int k = 0; k < n; k++)
        for (int i = 0; i < f->ops[k]->nin; i++) {
            int p = def_of(a, f->ops[k]->in[i]);
            if (p >= 0) a->uoff[p + 1]++;
        }
    for (int k = 0; k < n; k++) a->uoff[k + 1] += a->uoff[k];
    a->users = malloc((nuse ? nuse : 1) * sizeof *a->users);
    int *fill = calloc(nn, sizeof *fill);
    if (!a->users || !fill) {
        free(fill);
        return false;
    }
    for (int k = 0; k < n; k++)
        for (int i = 0; i < f->ops[k]->nin; i++) {
            int p = def_of(a, f->ops[k]->in[i]);
            if (p >= 0) a->users[a->uoff[p] + fill[p]++] = k;
        }
    free(fill);
    for (int i = 0; i < f->nres; i++) {
        int p = def_of(a, f->results[i]);
        if (p >= 0) a->ret[p] = true;
    }
    return true;
}

static void add_boundary(fa *a, int from, int to, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void add_boundary(fa *a, int from, int to, const char *fmt, ...) {
    for (int i = 0; i < a->nbd; i++)
        if (a->bd[i].from == from && a->bd[i].to == to) return;
    if (a->nbd == a->capbd) {
        int cap = a->capbd ? 2 * a->capbd : 16;
        boundary *nb = realloc(a->bd, (size_t)cap * sizeof *nb);
        if (!nb) {
            a->oom = true;
            return;
        }
        a->bd = nb;
        a->capbd = cap;
    }
    boundary *b = &a->bd[a->nbd++];
    b->from = from;
    b->to = to;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->why, sizeof b->why, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ shapes */


static unsigned red_mask(const tir_op *op) {
    int rank = op->in[0]->type.rank;
    const tir_attr_value *ax = tir_op_attr(op, "axes");
    unsigned m = 0;
    if (!ax || ax->kind != TIR_ATTR_INTS) return rank ? (1u << rank) - 1 : 0;
    for (int i = 0; i < ax->u.ints.n; i++) {
        int k;
        if (tir_norm_axis(ax->u.ints.v[i], rank, &k)) m |= 1u << k;
    }
    return m;
}

enum { SH_OTHER, SH_FULL, SH_ROWK, SH_ROWS };

static unsigned full_mask(int rank) { return rank ? (1u << rank) - 1 : 0; }

static bool suffix_mask(unsigned m, int rank) {
    int nr = 0;
    for (int i = 0; i < rank; i++) nr += m >> i & 1;
    return nr > 0 && m == (((1u << nr) - 1) << (rank - nr));
}

/* a reduction over axes R of s's F that reduces across rows: over every axis (a total) or over
 * every kept axis (a column sum), when the rows are innermost axes short of all of them. The
 * code generator folds it into per-block partials that the last block combines. */
static bool across_rows(const space *s, unsigned R) {
    unsigned full = full_mask(s->F.rank);
    return s->R != full && suffix_mask(s->R, s->F.rank) && R != s->R && (R == full || R == (full & ~s->R));
}

/* a total over the rows of a per-row value (a row shape of s, reduced over all its axes: the
 * sum of the per-row losses), folded once per row into the same partials */
static int row_shape(tir_context *c, const space *s, const tir_type *t);
static bool row_total(tir_context *c, const space *s, const tir_op *op) {
    const tir_type *t = &op->in[0]->type;
    if (s->R == full_mask(s->F.rank) || !suffix_mask(s->R, s->F.rank) || red_mask(op) != full_mask(t->rank))
        return false;
    int sh = row_shape(c, s, t);
    return sh == SH_ROWS || sh == SH_ROWK;
}

/* t as a result of a reduction across rows: one value (gd 1), or (gd & 2) one per element of a
 * row: F's row dims, with the kept axes as 1 or without them */
static bool grid_shape(tir_context *c, const space *s, const tir_type *t, unsigned char gd) {
    const tir_dim *one = tir_dim_const(c, 1);
    if (!(gd & 2)) {
        for (int i = 0; i < t->rank; i++)
            if (t->dims[i] != one) return false;
        return true;
    }
    if (t->rank == s->F.rank) {
        bool ok = true;
        for (int i = 0; ok && i < t->rank; i++) ok = t->dims[i] == ((s->R >> i & 1) ? s->F.dims[i] : one);
        if (ok) return true;
    }
    int j = 0;
    for (int i = 0; i < s->F.rank; i++) {
        if (!(s->R >> i & 1)) continue;
        if (j >= t->rank || t->dims[j] != s->F.dims[i]) return false;
        j++;
    }
    return j == t->rank;
}



/* t against a reduction space: F itself, F with R kept as 1, F without R */
static int row_shape(tir_context *c, const space *s, const tir_type *t) {
    if (tir_type_same_dims(t, &s->F)) return SH_FULL;
    const tir_dim *one = tir_dim_const(c, 1);
    if (t->rank == s->F.rank) {
        bool ok = true;
        for (int i = 0; ok && i < t->rank; i++) ok = t->dims[i] == ((s->R >> i & 1) ? one : s->F.dims[i]);
        if (ok) return SH_ROWK;
    }
    int j = 0;
    for (int i = 0; i < s->F.rank; i++) {
        if (s->R >> i & 1) continue;
        if (j >= t->rank || t->dims[j] != s->F.dims[i]) return SH_OTHER;
        j++;
    }
    return j == t->rank ? SH_ROWS : SH_OTHER;
}

typedef struct tstr { char s[200]; } tstr;

static tstr shp(const tir_type *t) {
    tstr r;
    tir_type tt = *t;
    tir_type_print(&tt, r.s, sizeof r.s);
    char *b = strchr(r.s, '[');
    if (b) memmove(r.s, b, strlen(b) + 1); /* the dims alone: [N, H] */
    return r;
}

static tstr axes_str(unsigned R, int rank) {
    tstr r;
    size_t k = 0;
    r.s[k++] = '[';
    for (int i = 0; i < rank; i++)
        if (R >> i & 1) k += (size_t)snprintf(r.s + k, sizeof r.s - k, "%s%d", k > 1 ? ", " : "", i);
    snprintf(r.s + k, sizeof r.s - k, "]");
    return r;
}

static tstr opname(const tir_op *op) {
    tstr r;
    snprintf(r.s, sizeof r.s, "%s (%d:%d)", tir_ops[op->code].name, op->loc.line, op->loc.col);
    return r;
}

/* ------------------------------------------------------------------ legality of a group */

/* a reason, cut to fit (messages hold shapes of any length) */
static void say(char *why, size_t wn, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t wn, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, wn, fmt, ap);
    va_end(ap);
}

static bool has_outside_user(fa *a, int m) {
    if (a->has_need) return a->need[m]; /* the kernels are built: copies read no result */
    if (a->ret[m]) return true;
    for (int u = a->uoff[m]; u < a->uoff[m + 1]; u++)
        if (a->mark[a->users[u]] != a->stamp) return true;
    return false;
}

static int cmp_int(const void *x, const void *y) {
    int a = *(const int *)x, b = *(const int *)y;
    return (a > b) - (a < b);
}

/* The space of the members in list (marked with the current stamp), or false with the reason. */
static bool group_space(fa *a, const int *list, int n, space *s, char *why, size_t wn) {
    const tir_func *f = a->f;
    memset(s, 0, sizeof *s);
    /* the rows: the first reduction over innermost axes short of all of them, if any */
    unsigned rowm = 0;
    const tir_type *F0 = NULL;
    for (int i = 0; i < n && !rowm; i++) {
        const tir_op *op = f->ops[list[i]];
        if (a->cls[list[i]] != CL_RED) continue;
        unsigned R = red_mask(op);
        const tir_type *t = &op->in[0]->type;
        if (R != full_mask(t->rank) && suffix_mask(R, t->rank)) {
            rowm = R;
            F0 = t;
        }
    }
    for (int i = 0; i < n; i++) {
        const tir_op *op = f->ops[list[i]];
        if (a->cls[list[i]] != CL_RED) continue;
        unsigned R = red_mask(op);
        if (!s->red) {
            s->red = true;
            s->F = F0 ? *F0 : op->in[0]->type;
            s->R = rowm ? rowm : R;
        }
        if (row_total(a->m->ctx, s, op)) continue;
        if (tir_type_same_dims(&s->F, &op->in[0]->type) && across_rows(s, R)) {
            /* a column sum keeps its partials in registers: rows of a constant length that fit */
            int64_t len = 1, d;
            for (int k = 0; k < s->F.rank; k++)
                if (s->R >> k & 1) len = tir_dim_is_const(s->F.dims[k], &d) && len <= 8192 ? len * d : 1 << 30;
            if (R != full_mask(s->F.rank) && len > 8192) {
                say(why, wn, "%s sums %s over its rows, which needs rows of a constant length of at most 8192",
                    tir_ops[op->code].name, shp(&op->in[0]->type).s);
                return false;
            }
            continue;
        }
        if (!tir_type_same_dims(&s->F, &op->in[0]->type) || s->R != R) {
            say(why, wn, "%s reduces %s over axes %s, the kernel's rows are %s over axes %s",
                     tir_ops[op->code].name, shp(&op->in[0]->type).s, axes_str(R, op->in[0]->type.rank).s,
                     shp(&s->F).s, axes_str(s->R, s->F.rank).s);
            return false;
        }
    }
    if (s->red) return true;
    /* elementwise: the outputs' one shape; a group whose results are all dead takes its last op's */
    bool have = false;
    for (int i = 0; i < n; i++) {
        int m = list[i];
        if (a->cls[m] == CL_MOV || !has_outside_user(a, m)) continue;
        const tir_type *t = &f->ops[m]->out[0]->type;
        if (!have) {
            s->F = *t;
            have = true;
        } else if (!tir_type_same_dims(&s->F, t)) {
            say(why, wn, "its results would have two shapes, %s and %s (one iteration space per kernel)",
                     shp(&s->F).s, shp(t).s);
            return false;
        }
    }
    if (!have) {
        int last = list[0];
        for (int i = 1; i < n; i++)
            if (list[i] > last) last = list[i];
        s->F = f->ops[last]->out[0]->type;
    }
    return true;
}

/* Would the kernel graph stay acyclic with the marked ops as one node? A search over groups from
 * the group's outside users, every group visited once. Program order does not bound it: a path
 * may enter a kernel at a late member and leave from an early one (x -> ... -> a late member of
 * K, then from K's first member -> ... -> y), so a group whose members all come after the marked
 * ops can still lead back to them. */
static bool acyclic(fa *a, const int *list, int n, char *why, size_t wn) {
    int top = 0;
    int seen_stamp = ++a->stamp; /* mark keeps the group's stamp - 1 */
    int gstamp = seen_stamp - 1;
    for (int i = 0; i < n; i++)
        for (int u = a->uoff[list[i]]; u < a->uoff[list[i] + 1]; u++) {
            int c = a->users[u];
            if (a->mark[c] == gstamp) continue;
            int g = find(a, c);
            if (a->seen[g] != seen_stamp) {
                a->seen[g] = seen_stamp;
                a->stack[top++] = g;
            }
        }
    bool ok = true;
    while (top > 0 && ok) {
        int g = a->stack[--top];
        for (int i = 0; i < a->nmem[g] && ok; i++) {
            int x = a->mem[g][i];
            for (int u = a->uoff[x]; u < a->uoff[x + 1]; u++) {
                int c = a->users[u];
                if (a->mark[c] == gstamp) {
                    say(why, wn, "it would make a cycle through %s", opname(a->f->ops[x]).s);
                    ok = false;
                    break;
                }
                int h = find(a, c);
                if (a->seen[h] != seen_stamp) {
                    a->seen[h] = seen_stamp;
                    a->stack[top++] = h;
                }
            }
        }
    }
    a->stamp++; /* the group's marks are stale from here */
    return ok;
}

/* Can groups ga and gb be one kernel? */
static bool legal(fa *a, int ga, int gb, char *why, size_t wn) {
    const tir_func *f = a->f;
    tir_context *c = a->m->ctx;
    int n = a->nmem[ga] + a->nmem[gb];
    int *list = malloc((size_t)n * sizeof *list);
    if (!list) {
        a->oom = true;
        say(why, wn, "out of memory");
        return false;
    }
    memcpy(list, a->mem[ga], (size_t)a->nmem[ga] * sizeof *list);
    memcpy(list + a->nmem[ga], a->mem[gb], (size_t)a->nmem[gb] * sizeof *list);
    qsort(list, (size_t)n, sizeof *list, cmp_int);
    a->stamp += 2;
    for (int i = 0; i < n; i++) a->mark[list[i]] = a->stamp;
    bool ok = true;
    space s;
    if (!group_space(a, list, n, &s, why, wn)) ok = false;
    /* what depends on a reduction across rows (gd) is computed once every row is in: it may
     * only be one value or one per row element, and no row computation may read it */
    for (int i = 0; ok && s.red && i < n; i++) {
        int m = list[i];
        const tir_op *op = f->ops[m];
        unsigned char gd = 0;
        for (int j = 0; j < op->nin; j++) {
            int p = def_of(a, op->in[j]);
            if (p >= 0 && a->mark[p] == a->stamp) gd |= a->gd[p];
        }
        if (a->cls[m] == CL_RED) {
            unsigned R = red_mask(op);
            if (gd) {
                say(why, wn, "%s reduces a value of a reduction across rows (the consumer needs every row)",
                    tir_ops[op->code].name);
                ok = false;
            }
            if (row_total(c, &s, op)) gd |= 1;
            else if (across_rows(&s, R)) gd |= R == full_mask(s.F.rank) ? 1 : 2;
        } else if (gd && !grid_shape(c, &s, &op->out[0]->type, gd)) {
            say(why, wn, "%s gives %s from a reduction across rows of %s (one value or one per row element only)",
                tir_ops[op->code].name, shp(&op->out[0]->type).s, shp(&s.F).s);
            ok = false;
        } else if (gd && a->cls[m] == CL_MOV && op->code != TIR_OP_RESHAPE && op->code != TIR_OP_BROADCAST) {
            say(why, wn, "%s moves a value of a reduction across rows", tir_ops[op->code].name);
            ok = false;
        }
        a->gd[m] = gd;
    }
    for (int i = 0; ok && i < n; i++) {
        int m = list[i];
        const tir_op *op = f->ops[m];
        bool out = has_outside_user(a, m);
        if (s.red && a->gd[m]) continue; /* its shape is checked above */
        if (a->cls[m] == CL_MOV && out) {
            say(why, wn, "%s is used outside: a movement op folds only into the kernels of its consumers",
                     tir_ops[op->code].name);
            ok = false;
        } else if (out && !s.red && !tir_type_same_dims(&op->out[0]->type, &s.F)) {
            say(why, wn, "%s's result %s is needed outside, but the kernel iterates over %s",
                     tir_ops[op->code].name, shp(&op->out[0]->type).s, shp(&s.F).s);
            ok = false;
        } else if (out && s.red && row_shape(c, &s, &op->out[0]->type) == SH_OTHER) {
            say(why, wn, "%s's result %s is needed outside, but it is not a row shape of %s over axes %s",
                     tir_ops[op->code].name, shp(&op->out[0]->type).s, shp(&s.F).s, axes_str(s.R, s.F.rank).s);
            ok = false;
        }
    }
    /* values that depend on a reduction are per row: they may only be indexed by row */
    for (int i = 0; ok && s.red && i < n; i++) {
        int m = list[i];
        const tir_op *op = f->ops[m];
        bool dep = a->cls[m] == CL_RED && !across_rows(&s, red_mask(op)) && !row_total(c, &s, op);
        for (int j = 0; !dep && j < op->nin; j++) {
            int p = def_of(a, op->in[j]);
            dep = p >= 0 && a->mark[p] == a->stamp && a->dep[p] == a->stamp;
        }
        a->dep[m] = dep ? a->stamp : 0;
        if (!dep || a->cls[m] == CL_RED || a->gd[m]) continue;
        int out = row_shape(c, &s, &op->out[0]->type);
        if (a->cls[m] == CL_EW && out == SH_OTHER) {
            say(why, wn, "%s gives %s from a reduced value, but the kernel's rows are %s over axes %s "
                              "(the consumer needs the full reduction)",
                     tir_ops[op->code].name, shp(&op->out[0]->type).s, shp(&s.F).s, axes_str(s.R, s.F.rank).s);
            ok = false;
        } else if (a->cls[m] == CL_MOV) {
            int in = row_shape(c, &s, &op->in[0]->type);
            bool rowmap = (op->code == TIR_OP_RESHAPE || op->code == TIR_OP_BROADCAST) &&
                          (in == SH_ROWK || in == SH_ROWS) && out != SH_OTHER;
            if (!rowmap) {
                say(why, wn, "%s moves a reduced value %s across rows (the consumer needs the full reduction)",
                         tir_ops[op->code].name, shp(&op->in[0]->type).s);
                ok = false;
            }
        }
    }
    if (ok) ok = acyclic(a, list, n, why, wn);
    free(list);
    return ok;
}

static bool unite(fa *a, int ga, int gb) {
    if (a->nmem[ga] < a->nmem[gb]) {
        int t = ga;
        ga = gb;
        gb = t;
    }
    int need = a->nmem[ga] + a->nmem[gb];
    if (need > a->capmem[ga]) {
        int cap = a->capmem[ga] * 2 > need ? a->capmem[ga] * 2 : need;
        int *nm = realloc(a->mem[ga], (size_t)cap * sizeof *nm);
        if (!nm) return false;
        a->mem[ga] = nm;
        a->capmem[ga] = cap;
    }
    memcpy(a->mem[ga] + a->nmem[ga], a->mem[gb], (size_t)a->nmem[gb] * sizeof(int));
    a->nmem[ga] = need;
    free(a->mem[gb]);
    a->mem[gb] = NULL;
    a->nmem[gb] = a->capmem[gb] = 0;
    if (a->gmin[gb] < a->gmin[ga]) a->gmin[ga] = a->gmin[gb];
    a->hasred[ga] |= a->hasred[gb];
    a->parent[gb] = ga;
    return true;
}

typedef struct edge { int p, c; } edge;
typedef struct worklist {
    edge *v;
    int n, cap;
} worklist;

static bool push_edge(worklist *w, int p, int c) {
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        edge *ne = realloc(w->v, (size_t)cap * sizeof *ne);
        if (!ne) return false;
        w->v = ne;
        w->cap = cap;
    }
    w->v[w->n++] = (edge){p, c};
    return true;
}

static bool push_producers(fa *a, worklist *w, int c) {
    const tir_op *op = a->f->ops[c];
    for (int i = op->nin - 1; i >= 0; i--)
        if (!push_edge(w, def_of(a, op->in[i]), c)) return false;
    return true;
}

/* Takes the producers on the worklist into the group of op k where that is legal; a movement
 * producer taken in brings its own producers along. With rows_only, only where one of the two
 * groups has a reduction (the others wait, unrecorded). */
static bool absorb(fa *a, int k, worklist *w, bool rows_only) {
    const tir_func *f = a->f;
    char why[200];
    while (w->n > 0) {
        edge e = w->v[--w->n];
        if (e.p < 0 || a->cls[e.p] == CL_CONST) continue;
        const tir_op *pop = f->ops[e.p], *cop = f->ops[e.c];
        if (a->cls[e.p] == CL_OPAQUE) {
            add_boundary(a, e.p, e.c, "%s: %s", tir_ops[pop->code].name, opaque_reason(pop));
            continue;
        }
        int gp = find(a, e.p), gc = find(a, k);
        if (gp == gc || (rows_only && !a->hasred[gp] && !a->hasred[gc])) continue;
        if (!legal(a, gp, gc, why, sizeof why)) {
            add_boundary(a, e.p, e.c, "%s -> %s: %s", tir_ops[pop->code].name, tir_ops[cop->code].name, why);
            continue;
        }
        if (!unite(a, gp, gc)) return false;
        if (a->cls[e.p] == CL_MOV && !push_producers(a, w, e.p)) return false;
    }
    return !a->oom;
}

/* Grow groups greedily: each elementwise op or reduction, in program order, tries to take in the
 * groups of its producers; first only along edges that touch a reduction, so row kernels form
 * before cheap elementwise ops they share with other kernels are claimed by a chain, then along
 * every edge. Then a movement op left alone whose users all ended in one kernel joins it (it was
 * refused while some of them were still outside). */
static bool group_ops(fa *a) {
    worklist w = {0};
    bool ok = true;
    for (int phase = 0; phase < 2; phase++)
        for (int k = 0; k < a->n && ok; k++) {
            if (a->cls[k] != CL_EW && a->cls[k] != CL_RED) continue;
            w.n = 0;
            ok = push_producers(a, &w, k) && absorb(a, k, &w, phase == 0);
        }
    /* A refusal can depend on the order groups grew in (x joining y's group before y joined z's
     * closes a cycle that x joining y+z would not): retry the refused edges until nothing moves. */
    for (int sweep = 0, moved = 1; moved && sweep < 8 && ok; sweep++) {
        moved = 0;
        for (int i = 0; i < a->nbd && ok; i++) {
            int p = a->bd[i].from, c = a->bd[i].to;
            if (a->cls[p] == CL_OPAQUE || a->cls[c] == CL_OPAQUE || find(a, p) == find(a, c)) continue;
            w.n = 0;
            ok = push_edge(&w, p, c) && absorb(a, c, &w, false);
            moved += ok && find(a, p) == find(a, c);
        }
    }
    for (int k = a->n - 1; k >= 0 && ok; k--) {
        if (a->cls[k] != CL_MOV || a->nmem[find(a, k)] != 1 || a->ret[k] || a->uoff[k] == a->uoff[k + 1]) continue;
        int g = find(a, a->users[a->uoff[k]]);
        bool one = a->cls[a->users[a->uoff[k]]] != CL_OPAQUE;
        for (int e = a->uoff[k]; one && e < a->uoff[k + 1]; e++) one = find(a, a->users[e]) == g;
        if (!one) continue;
        w.n = 0;
        ok = push_edge(&w, k, a->users[a->uoff[k]]) && absorb(a, a->users[a->uoff[k]], &w, false);
    }
    free(w.v);
    if (!ok) a->oom = true;
    return ok;
}

/* results of members consumed by opaque ops: boundaries on the other side */
static void consumer_boundaries(fa *a) {
    for (int k = 0; k < a->n; k++) {
        if (a->cls[k] != CL_OPAQUE) continue;
        const tir_op *op = a->f->ops[k];
        for (int i = 0; i < op->nin; i++) {
            int p = def_of(a, op->in[i]);
            if (p >= 0 && (a->cls[p] == CL_EW || a->cls[p] == CL_RED))
                add_boundary(a, p, k, "%s: %s", tir_ops[op->code].name, opaque_reason(op));
        }
    }
}

/* ------------------------------------------------------------------ kernels */

typedef struct kernel {
    int *ops;          /* members in program order */
    int nops;
    tir_value **in;    /* operands (values of the function before fusion) */
    int nin;
    tir_value **out;   /* results */
    int nout;
    space s;
    char name[64];
    tir_attr_value sched[5];
    int nsched;
    tir_loc loc;
    int *copy;         /* ops recomputed in the kernel (full, iota and cand), in first-use order */
    int ncopy;
} kernel;

static void kernel_free(kernel *k) {
    free(k->copy);
    free(k->ops);
    free(k->in);
    free(k->out);
}

static bool push_val(tir_value ***v, int *n, tir_value *x) {
    for (int i = 0; i < *n; i++)
        if ((*v)[i] == x) return true;
    tir_value **nv = realloc(*v, (size_t)(*n + 1) * sizeof *nv);
    if (!nv) return false;
    nv[(*n)++] = x;
    *v = nv;
    return true;
}

/* the identifier at loc in the module's source, if the source is there */
static bool source_ident(const tir_module *m, tir_loc loc, char *buf, size_t n) {
    const char *s = m->source;
    if (!s || loc.line < 1 || loc.col < 1 || n < 2) return false;
    for (int line = 1; line < loc.line; s++) {
        if (!*s) return false;
        if (*s == '\n') line++;
    }
    for (int col = 1; col < loc.col; col++) { /* columns count code points */
        if (!*s || *s == '\n') return false;
        s++;
        while ((*s & 0xC0) == 0x80) s++;
    }
    size_t k = 0;
    while (k + 1 < n && ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
                         (k > 0 && *s >= '0' && *s <= '9')))
        buf[k++] = *s++;
    buf[k] = 0;
    return k > 0;
}

/* the composite most members were decomposed from (linear's casts and bias adds do not count:
 * they are not what a kernel computes) */
static const char *composite_of(const fa *a, const kernel *k, bool reductions_only) {
    int votes[TIR_OP_COUNT] = {0};
    int best = -1;
    for (int i = 0; i < k->nops; i++) {
        const tir_op *op = a->f->ops[k->ops[i]];
        if (reductions_only && a->cls[k->ops[i]] != CL_RED) continue;
        char id[32];
        tir_opcode code;
        if (!source_ident(a->m, op->loc, id, sizeof id) || !tir_op_lookup(id, strlen(id), &code)) continue;
        if (!(tir_ops[code].flags & TIR_F_COMPOSITE) || code == TIR_OP_LINEAR) continue;
        if (++votes[code] > (best < 0 ? 0 : votes[best])) best = code;
    }
    return best < 0 ? NULL : tir_ops[best].name;
}

static const char *pattern(const fa *a, const kernel *k) {
    int cnt[TIR_OP_COUNT] = {0}, nred = 0;
    const char *first_red = NULL, *first_ew = NULL;
    for (int i = 0; i < k->nops; i++) {
        const tir_op *op = a->f->ops[k->ops[i]];
        cnt[op->code]++;
        if (a->cls[k->ops[i]] == CL_RED) {
            nred++;
            if (!first_red) first_red = tir_ops[op->code].name;
        }
        if (a->cls[k->ops[i]] == CL_EW && op->code != TIR_OP_CAST && !first_ew) first_ew = tir_ops[op->code].name;
    }
    if (nred) {
        if (nred == 1 && cnt[TIR_OP_MEAN] == 1 && cnt[TIR_OP_RSQRT]) return "rmsnorm";
        if (nred == 2 && cnt[TIR_OP_MEAN] == 2 && cnt[TIR_OP_RSQRT]) return "layernorm";
        if (nred == 2 && cnt[TIR_OP_MAX] == 1 && cnt[TIR_OP_SUM] == 1 && cnt[TIR_OP_EXP])
            return cnt[TIR_OP_LOG] ? "log_softmax" : "softmax";
        if (nred == 3 && cnt[TIR_OP_MAX] == 1 && cnt[TIR_OP_SUM] == 2 && cnt[TIR_OP_EXP] && cnt[TIR_OP_LOG] &&
            cnt[TIR_OP_EQ])
            return "cross_entropy";
        const char *c = composite_of(a, k, true);
        return c ? c : first_red;
    }
    if (cnt[TIR_OP_SILU] && cnt[TIR_OP_MUL]) return "swiglu";
    if (cnt[TIR_OP_GELU] && cnt[TIR_OP_MUL]) return "geglu";
    const char *c = composite_of(a, k, false);
    if (c) return c;
    return first_ew ? first_ew : tir_ops[a->f->ops[k->ops[0]]->code].name;
}

/* The kind of kernel the group is (elementwise, row: reductions over the innermost axes, reduce:
 * other axes); every other decision is passes/schedule.c's, the next stage. */
static void schedule(kernel *k) {
    const space *s = &k->s;
    const char *kind = "elementwise";
    if (s->red) {
        int nr = 0;
        for (int i = 0; i < s->F.rank; i++) nr += s->R >> i & 1;
        bool suffix = nr > 0 && s->R == (((1u << nr) - 1) << (s->F.rank - nr));
        kind = suffix ? "row" : "reduce";
    }
    k->sched[0] = tir_a_str("kind", kind);
    k->nsched = 1;
}


static bool order_kernels(fa *a, kernel *ks, int nk);

/* The ops of a's cone (op k and what it is computed from, full and iota aside): at most limit+1
 * counted, so a long chain stops the walk early. */
static int cone_size(fa *a, int k, int limit) {
    const tir_func *f = a->f;
    int seen = ++a->stamp, top = 0, n = 0;
    a->seen[k] = seen;
    a->stack[top++] = k;
    while (top > 0 && n <= limit) {
        int x = a->stack[--top];
        n++;
        for (int i = 0; i < f->ops[x]->nin; i++) {
            int p = def_of(a, f->ops[x]->in[i]);
            if (p < 0 || a->cls[p] == CL_CONST || a->seen[p] == seen) continue;
            a->seen[p] = seen;
            a->stack[top++] = p;
        }
    }
    return n;
}

/* Which values are recomputed where they are read (cand), which ops are kernel members (kern),
 * which values must exist outside regions (need): a member's when the return, an op left
 * outside that is emitted, or a kernel that cannot recompute it reads it; an op left outside is
 * emitted unless it is free to recompute (full, iota, cand) and only kernels read it; and which
 * members their kernel still computes (keep): all but recomputed values that neither it nor
 * anything outside reads any more. Users come after their producers in a function, so one
 * backward sweep settles need and keep. */
static void plan_recompute(fa *a) {
    const tir_func *f = a->f;
    for (int k = 0; k < a->n; k++) {
        const tir_op *op = f->ops[k];
        bool ok = (a->cls[k] == CL_EW && cheap_op(op)) || a->cls[k] == CL_MOV;
        for (int i = 0; ok && i < op->nin; i++) {
            int p = def_of(a, op->in[i]);
            ok = p >= 0 ? a->cls[p] == CL_CONST || a->cand[p] : op->in[i]->def == NULL && op->in[i]->func == f;
        }
        a->cand[k] = ok && cone_size(a, k, TIR_FUSE_RECOMPUTE_OPS) <= TIR_FUSE_RECOMPUTE_OPS;
    }
    for (int k = 0; k < a->n; k++) a->kern[k] = false;
    for (int k = 0; k < a->n; k++)
        if (a->cls[k] == CL_EW || a->cls[k] == CL_RED) a->kern[find(a, k)] = true;
    for (int k = 0; k < a->n; k++) a->kern[k] = a->kern[find(a, k)];
    for (int k = a->n - 1; k >= 0; k--) {
        bool copyable = a->cls[k] == CL_CONST || a->cand[k];
        bool need = a->ret[k] || (!a->kern[k] && !copyable);
        for (int e = a->uoff[k]; !need && e < a->uoff[k + 1]; e++) {
            int u = a->users[e];
            if (a->kern[u]) need = !copyable && !(a->kern[k] && find(a, u) == find(a, k));
            else need = a->need[u];
        }
        a->need[k] = need;
        bool keep = a->kern[k] && (need || !a->cand[k]);
        for (int e = a->uoff[k]; !keep && a->kern[k] && e < a->uoff[k + 1]; e++)
            keep = find(a, a->users[e]) == find(a, k) && a->keep[a->users[e]];
        a->keep[k] = keep;
    }
    a->has_need = true;
}

/* Appends op p to k's copies (first what it reads), unless it is a member or already there;
 * params it reads become operands. */
static bool add_copy(fa *a, kernel *k, int p) {
    const tir_op *op = a->f->ops[p];
    if (a->mark[p] == a->stamp || a->mark[p] == a->stamp - 1) return true; /* a member, or copied */
    for (int j = 0; j < op->nin; j++) {
        int q = def_of(a, op->in[j]);
        if (q < 0 ? !push_val(&k->in, &k->nin, op->in[j]) : !add_copy(a, k, q)) return false;
    }
    a->mark[p] = a->stamp - 1;
    int *nc = realloc(k->copy, (size_t)(k->ncopy + 1) * sizeof *nc);
    if (!nc) return false;
    nc[k->ncopy++] = p;
    k->copy = nc;
    return true;
}

/* The kernels of an analysed function, in order of their first op. */
static bool build_kernels(fa *a, tir_kernel_names *nm, kernel **out, int *nout) {
    const tir_func *f = a->f;
    kernel *ks = NULL;
    int nk = 0;
    *out = NULL;
    *nout = 0;
    plan_recompute(a);
    for (int r = 0; r < a->n; r++) {
        if (find(a, r) != r || !a->kern[r]) continue;
        /* a kernel of recomputed values that nothing needs from it any more is gone (its
         * readers recompute it) */
        int nkeep = 0;
        for (int i = 0; i < a->nmem[r]; i++) nkeep += a->keep[a->mem[r][i]];
        if (!nkeep) continue;
        kernel *nks = realloc(ks, (size_t)(nk + 1) * sizeof *nks);
        if (!nks) goto oom;
        ks = nks;
        kernel *k = &ks[nk++];
        memset(k, 0, sizeof *k);
        if (!(k->ops = malloc((size_t)nkeep * sizeof *k->ops))) goto oom;
        for (int i = 0; i < a->nmem[r]; i++)
            if (a->keep[a->mem[r][i]]) k->ops[k->nops++] = a->mem[r][i];
        qsort(k->ops, (size_t)k->nops, sizeof *k->ops, cmp_int);
        a->stamp += 2;
        for (int i = 0; i < k->nops; i++) a->mark[k->ops[i]] = a->stamp;
        for (int i = 0; i < k->nops; i++) {
            const tir_op *op = f->ops[k->ops[i]];
            for (int j = 0; j < op->nin; j++) {
                int p = def_of(a, op->in[j]);
                /* members are not operands; constants and recomputed values are copied in,
                 * what they read becoming operands */
                if (p >= 0 && a->mark[p] == a->stamp) continue;
                if (p >= 0 && (a->cls[p] == CL_CONST || a->cand[p])) {
                    if (!add_copy(a, k, p)) goto oom;
                    continue;
                }
                if (!push_val(&k->in, &k->nin, op->in[j])) goto oom;
            }
        }
        for (int i = 0; i < k->nops; i++) {
            int mm = k->ops[i];
            if (has_outside_user(a, mm))
                for (int j = 0; j < f->ops[mm]->nout; j++)
                    if (!push_val(&k->out, &k->nout, f->ops[mm]->out[j])) goto oom;
        }
    }
    /* in the order they will be emitted, so names count down the printed function */
    if (nk > 1 && !order_kernels(a, ks, nk)) goto oom;
    for (int i = 0; i < nk; i++) {
        kernel *k = &ks[i];
        a->stamp += 2;
        for (int j = 0; j < k->nops; j++) a->mark[k->ops[j]] = a->stamp;
        char why[200];
        group_space(a, k->ops, k->nops, &k->s, why, sizeof why);
        k->loc = f->ops[k->ops[0]]->loc;
        for (int j = 0; j < k->nops; j++)
            if (a->cls[k->ops[j]] == CL_RED) {
                k->loc = f->ops[k->ops[j]]->loc;
                break;
            }
        schedule(k);
        const char *pat = pattern(a, k);
        for (;;) {
            snprintf(k->name, sizeof k->name, "%s_%d", pat, nm->next++);
            if (!tir_kernel_names_has(nm, k->name)) break;
        }
    }
    *out = ks;
    *nout = nk;
    return true;
oom:
    for (int i = 0; i < nk; i++) kernel_free(&ks[i]);
    free(ks);
    return false;
}

static void kernels_free(kernel *ks, int nk) {
    for (int i = 0; i < nk; i++) kernel_free(&ks[i]);
    free(ks);
}

static bool analyse(fa *a, tir_module *m, tir_func *f) {
    if (!fa_init(a, m, f) || !group_ops(a)) return false;
    consumer_boundaries(a);
    return !a->oom;
}

/* ------------------------------------------------------------------ rewriting */

typedef struct unit {
    int kernel;  /* index into the kernels, or -1 for a plain op */
    int op;      /* the plain op */
    int key;     /* first op: the emission order among ready units */
    int nsucc, *succ;
    int indeg;
} unit;

/* a min-heap of unit indices by key */
typedef struct heap {
    int *v, n;
    const unit *u;
} heap;

static void heap_push(heap *h, int x) {
    int i = h->n++;
    h->v[i] = x;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (h->u[h->v[p]].key <= h->u[h->v[i]].key) break;
        int t = h->v[p];
        h->v[p] = h->v[i];
        h->v[i] = t;
        i = p;
    }
}

static int heap_pop(heap *h) {
    int top = h->v[0];
    h->v[0] = h->v[--h->n];
    for (int i = 0;;) {
        int l = 2 * i + 1, r = l + 1, s = i;
        if (l < h->n && h->u[h->v[l]].key < h->u[h->v[s]].key) s = l;
        if (r < h->n && h->u[h->v[r]].key < h->u[h->v[s]].key) s = r;
        if (s == i) break;
        int t = h->v[s];
        h->v[s] = h->v[i];
        h->v[i] = t;
        i = s;
    }
    return top;
}

/* The region's copy of op p, a constant or recomputed value (and first of what it reads), made
 * in r unless it is there: NULL when out of memory or when p reads something no region can
 * (a bug, reported). */
static tir_value *copy_in(tir_rw *rw, fa *a, tir_func *r, tir_vmap *map, int p, tir_diag *d, tir_status *st) {
    const tir_op *op = rw->old[p];
    tir_value *tmp[3];
    if (op->nin > 3 || (a->cls[p] != CL_CONST && !a->cand[p])) {
        *st = tir_diag_set(d, TIR_ERR_INTERNAL, a->m, op->loc, "fuse: %s reads a value outside its kernel",
                           tir_ops[op->code].name);
        return NULL;
    }
    for (int j = 0; j < op->nin; j++) {
        tir_value *v = tir_vmap_get(map, op->in[j]);
        if (!v) {
            int q = def_of(a, op->in[j]);
            if (q < 0) {
                *st = tir_diag_set(d, TIR_ERR_INTERNAL, a->m, op->loc, "fuse: a recomputed %s reads a missing operand",
                                   tir_ops[op->code].name);
                return NULL;
            }
            if (!(v = copy_in(rw, a, r, map, q, d, st))) return NULL;
        }
        tmp[j] = v;
    }
    tir_op *c = tir_rw_clone(r, op, op->nin ? tmp : NULL, NULL, d);
    if (!c) {
        *st = tir_rw_fail(d);
        return NULL;
    }
    c->out[0]->name = op->out[0]->name;
    if (!tir_vmap_put(map, op->out[0], c->out[0])) {
        *st = tir_diag_set(d, TIR_ERR_OOM, a->m, op->loc, "out of memory");
        return NULL;
    }
    return c->out[0];
}

/* Appends kernel k to f as a fused op: its region holds copies of the members in program order,
 * each constant and recomputed value they read copied just before its first reader. */
static tir_status emit_kernel(tir_rw *rw, fa *a, const kernel *k, tir_diag *d) {
    tir_func *f = rw->f;
    tir_module *m = f->module;
    tir_status st = TIR_OK;
    tir_vmap map = {0};
    tir_value **tmp = NULL, **outer = NULL, **res = NULL;
    tir_type *types = NULL;
    tir_func *r = tir_region_new(f, k->name, k->loc);
    int maxin = 1;
    for (int i = 0; i < k->nops; i++)
        if (rw->old[k->ops[i]]->nin > maxin) maxin = rw->old[k->ops[i]]->nin;
    tmp = malloc((size_t)maxin * sizeof *tmp);
    outer = malloc((size_t)(k->nin ? k->nin : 1) * sizeof *outer);
    res = malloc((size_t)(k->nout ? k->nout : 1) * sizeof *res);
    types = malloc((size_t)(k->nout ? k->nout : 1) * sizeof *types);
    if (!r || !tmp || !outer || !res || !types) goto oom;
    for (int i = 0; i < k->nin; i++) {
        tir_value *p = tir_func_add_param(r, k->in[i]->name, &k->in[i]->type, k->loc);
        if (!p || !tir_vmap_put(&map, k->in[i], p)) goto oom;
        outer[i] = tir_rw_get(rw, k->in[i]);
    }
    for (int i = 0; i < k->nops && st == TIR_OK; i++) {
        const tir_op *op = rw->old[k->ops[i]];
        for (int j = 0; j < op->nin; j++) {
            tir_value *v = tir_vmap_get(&map, op->in[j]);
            if (!v) { /* a constant or recomputed value, copied in before its first use */
                int p = def_of(a, op->in[j]);
                if (p < 0) {
                    st = tir_diag_set(d, TIR_ERR_INTERNAL, m, op->loc, "fuse: %s reads a value outside its kernel",
                                      tir_ops[op->code].name);
                    break;
                }
                if (!(v = copy_in(rw, a, r, &map, p, d, &st))) break;
            }
            tmp[j] = v;
        }
        if (st != TIR_OK) break;
        tir_op *no = tir_rw_clone(r, op, tmp, NULL, d);
        if (!no) {
            st = tir_rw_fail(d);
            break;
        }
        for (int j = 0; j < op->nout; j++) {
            no->out[j]->name = op->out[j]->name;
            if (!tir_vmap_put(&map, op->out[j], no->out[j])) goto oom;
        }
    }
    if (st != TIR_OK) goto out;
    for (int i = 0; i < k->nout; i++) {
        res[i] = tir_vmap_get(&map, k->out[i]);
        res[i]->name = NULL; /* the name moves to the fused op's result */
        types[i] = res[i]->type;
    }
    tir_func_set_results(r, k->nout, res);
    tir_func_set_ret(r, k->nout, types);
    if (r->nres != k->nout || r->nret != k->nout) goto oom;
    tir_attr_value attrs[2] = {tir_a_str("kernel", k->name), tir_a_dict(m, "schedule", k->nsched, k->sched)};
    tir_op *fo = tir_func_append_op(f, TIR_OP_FUSED, k->nin, outer, 2, attrs, r, k->loc, d);
    if (!fo) {
        st = tir_rw_fail(d);
        goto out;
    }
    for (int i = 0; i < k->nout && st == TIR_OK; i++) {
        fo->out[i]->name = k->out[i]->name;
        st = tir_rw_set(rw, k->out[i], fo->out[i]);
    }
    goto out;
oom:
    st = tir_diag_set(d, TIR_ERR_OOM, m, k->loc, "out of memory");
out:
    tir_vmap_free(&map);
    free(tmp);
    free(outer);
    free(res);
    free(types);
    return st;
}

/* The order kernels and the ops left outside are emitted in: every value defined before its
 * uses, ready units taken in the order of their first op (so the function reads as before, with
 * each kernel where its first op was or as soon after as its operands allow). */
typedef struct plan {
    unit *u;
    int nu;
    int *order; /* unit indices; fewer than nu when the units form a cycle (a bug) */
    int norder;
} plan;

static void plan_free(plan *pl) {
    if (pl->u)
        for (int x = 0; x < pl->nu; x++) free(pl->u[x].succ);
    free(pl->u);
    free(pl->order);
    memset(pl, 0, sizeof *pl);
}

static bool make_plan(fa *a, const kernel *ks, int nk, plan *pl) {
    const tir_func *f = a->f;
    int n = a->n;
    memset(pl, 0, sizeof *pl);
    int *unit_of = malloc((size_t)(n ? n : 1) * sizeof *unit_of);
    unit *u = pl->u = calloc((size_t)(n ? n : 1), sizeof *u);
    heap h = {malloc((size_t)(n ? n : 1) * sizeof(int)), 0, u};
    pl->order = malloc((size_t)(n ? n : 1) * sizeof *pl->order);
    bool ok = unit_of && u && h.v && pl->order;
    if (!ok) goto done;
    int nu = 0;
    for (int i = 0; i < n; i++) unit_of[i] = -1;
    for (int i = 0; i < nk; i++) {
        u[nu] = (unit){.kernel = i, .op = -1, .key = ks[i].ops[0]};
        for (int j = 0; j < ks[i].nops; j++) unit_of[ks[i].ops[j]] = nu;
        nu++;
    }
    /* a constant or a recomputed value stays outside only while an op outside every kernel, or
     * the return, reads it (need) */
    for (int k = 0; k < n; k++) {
        if (unit_of[k] >= 0 || !a->need[k]) continue;
        u[nu] = (unit){.kernel = -1, .op = k, .key = k};
        unit_of[k] = nu++;
    }
    pl->nu = nu;
    /* edges between units (a constant or recomputed value read by a kernel is copied in: no
     * edge); counted, then filled */
    for (int pass = 0; pass < 2 && ok; pass++) {
        for (int c = 0; c < n; c++) {
            int uc = unit_of[c];
            if (uc < 0) continue;
            for (int i = 0; i < f->ops[c]->nin; i++) {
                int p = def_of(a, f->ops[c]->in[i]);
                if (p < 0 || unit_of[p] < 0 || unit_of[p] == uc) continue;
                if ((a->cls[p] == CL_CONST || a->cand[p]) && u[uc].kernel >= 0) continue;
                unit *up = &u[unit_of[p]];
                if (pass == 1) {
                    up->succ[up->nsucc] = uc;
                    u[uc].indeg++;
                }
                up->nsucc++;
            }
        }
        for (int x = 0; pass == 0 && x < nu && ok; x++) {
            ok = (u[x].succ = malloc((size_t)(u[x].nsucc ? u[x].nsucc : 1) * sizeof(int))) != NULL;
            u[x].nsucc = 0;
        }
    }
    if (!ok) goto done;
    for (int x = 0; x < nu; x++)
        if (u[x].indeg == 0) heap_push(&h, x);
    while (h.n > 0) {
        int x = heap_pop(&h);
        pl->order[pl->norder++] = x;
        for (int s = 0; s < u[x].nsucc; s++)
            if (--u[u[x].succ[s]].indeg == 0) heap_push(&h, u[x].succ[s]);
    }
done:
    free(unit_of);
    free(h.v);
    if (!ok) plan_free(pl);
    return ok;
}

static bool order_kernels(fa *a, kernel *ks, int nk) {
    plan pl;
    kernel *tmp = malloc((size_t)nk * sizeof *tmp);
    if (!tmp || !make_plan(a, ks, nk, &pl)) {
        free(tmp);
        return false;
    }
    int j = 0;
    for (int i = 0; i < pl.norder; i++)
        if (pl.u[pl.order[i]].kernel >= 0) tmp[j++] = ks[pl.u[pl.order[i]].kernel];
    /* a cycle (a bug) leaves some out: keep the order as it is, rewrite() reports it */
    if (j == nk) memcpy(ks, tmp, (size_t)nk * sizeof *ks);
    free(tmp);
    plan_free(&pl);
    return true;
}

/* Rebuilds f: kernels become fused ops, the rest is copied, in the plan's order. */
static tir_status rewrite(fa *a, kernel *ks, int nk, tir_diag *d) {
    tir_func *f = a->f;
    plan pl;
    if (!make_plan(a, ks, nk, &pl)) return tir_diag_set(d, TIR_ERR_OOM, f->module, f->loc, "out of memory");
    tir_status st = TIR_OK;
    if (pl.norder != pl.nu) {
        st = tir_diag_set(d, TIR_ERR_INTERNAL, f->module, f->loc, "fuse: @%s: the kernels of the function form a cycle",
                          f->name);
        plan_free(&pl);
        return st;
    }
    tir_rw rw;
    if ((st = tir_rw_begin(&rw, f, d)) != TIR_OK) {
        plan_free(&pl);
        return st;
    }
    for (int i = 0; i < pl.norder && st == TIR_OK; i++) {
        const unit *x = &pl.u[pl.order[i]];
        if (x->kernel >= 0) st = emit_kernel(&rw, a, &ks[x->kernel], d);
        else if (!tir_rw_copy(&rw, rw.old[x->op])) st = tir_rw_fail(d);
    }
    plan_free(&pl);
    return tir_rw_end(&rw, st);
}

/* ------------------------------------------------------------------ entry points */

/* a value_and_grad definition before the grad pass has no ops, and nothing to fuse */
static bool fusible_func(const tir_func *f) { return f->nops > 0; }

tir_status tir_pass_fuse(tir_module *m, tir_diag *d) {
    tir_diag local;
    if (!d) d = &local;
    memset(d, 0, sizeof *d);
    if (!m) return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "fuse: no module");
    tir_kernel_names nm;
    if (!tir_kernel_names_init(&nm, m)) {
        tir_kernel_names_free(&nm);
        return tir_diag_set(d, TIR_ERR_OOM, m, (tir_loc){0, 0}, "out of memory");
    }
    tir_status st = TIR_OK;
    for (int i = 0; i < m->nfuncs && st == TIR_OK; i++) {
        tir_func *f = m->funcs[i];
        if (!fusible_func(f)) continue;
        fa a;
        kernel *ks = NULL;
        int nk = 0;
        if (!analyse(&a, m, f) || !build_kernels(&a, &nm, &ks, &nk)) {
            st = tir_diag_set(d, TIR_ERR_OOM, m, f->loc, "out of memory");
        } else {
            for (int k = 0; k < nk && st == TIR_OK; k++) {
                const char *s = tir_arena_strdup(m->arena, ks[k].name);
                if (!s || !tir_kernel_names_add(&nm, s)) st = tir_diag_set(d, TIR_ERR_OOM, m, f->loc, "out of memory");
            }
            if (st == TIR_OK && nk > 0) st = rewrite(&a, ks, nk, d);
        }
        kernels_free(ks, nk);
        fa_free(&a);
    }
    tir_kernel_names_free(&nm);
    return st;
}

static void put_value_ref(FILE *out, const fa *a, const tir_value *v) {
    int p = def_of(a, v);
    if (v->name) fprintf(out, "%%%s", v->name);
    else if (p >= 0) fprintf(out, "%s", opname(a->f->ops[p]).s);
    else fprintf(out, "parameter %d", v->index);
}

static bool explain_func(FILE *out, fa *a, kernel *ks, int nk) {
    const tir_func *f = a->f;
    int outside = 0;
    for (int k = 0; k < a->n; k++) {
        bool in = false;
        for (int i = 0; i < nk && !in; i++)
            for (int j = 0; j < ks[i].nops && !in; j++) in = ks[i].ops[j] == k;
        outside += !in && a->cls[k] != CL_CONST && a->need[k]; /* recomputed ops are inside */
    }
    fprintf(out, "@%s: %d kernel%s, %d op%s outside kernels\n", f->name, nk, nk == 1 ? "" : "s", outside,
            outside == 1 ? "" : "s");
    for (int i = 0; i < nk; i++) {
        const kernel *k = &ks[i];
        fprintf(out, "  kernel %s: ", k->name);
        if (k->s.red)
            fprintf(out, "reduction of %s over axes %s with its elementwise producers and consumers\n",
                    shp(&k->s.F).s, axes_str(k->s.R, k->s.F.rank).s);
        else
            fprintf(out, "elementwise over %s\n", shp(&k->s.F).s);
        fprintf(out, "    schedule:");
        for (int j = 0; j < k->nsched; j++) {
            const tir_attr_value *e = &k->sched[j];
            if (e->kind == TIR_ATTR_STR) fprintf(out, " %s=\"%s\"", e->name, e->u.s);
            else if (e->kind == TIR_ATTR_BOOL) fprintf(out, " %s=%s", e->name, e->u.b ? "true" : "false");
            else fprintf(out, " %s=%lld", e->name, (long long)e->u.i);
        }
        fprintf(out, "\n    ops:");
        for (int j = 0; j < k->nops; j++) fprintf(out, "%s %s", j ? "," : "", opname(f->ops[k->ops[j]]).s);
        int nrec = 0;
        for (int j = 0; j < k->ncopy; j++) {
            if (a->cls[k->copy[j]] == CL_CONST) continue;
            fprintf(out, "%s %s", nrec++ ? "," : "\n    recomputes:", opname(f->ops[k->copy[j]]).s);
        }
        fprintf(out, "\n    reads:");
        for (int j = 0; j < k->nin; j++) {
            fputs(j ? ", " : " ", out);
            put_value_ref(out, a, k->in[j]);
        }
        fprintf(out, "\n    writes:");
        for (int j = 0; j < k->nout; j++) {
            fputs(j ? ", " : " ", out);
            put_value_ref(out, a, k->out[j]);
        }
        fputs("\n", out);
    }
    /* an edge into a kernel that recomputes its producer is no boundary: the copy is inside */
    int nb = 0;
    bool *cut = calloc((size_t)(a->nbd ? a->nbd : 1), sizeof *cut);
    if (!cut) return false;
    for (int i = 0; i < a->nbd; i++) {
        int p = a->bd[i].from, c = a->bd[i].to;
        cut[i] = find(a, p) != find(a, c) && !(a->cand[p] && (a->kern[c] || !a->need[c]));
        nb += cut[i];
    }
    if (nb) fprintf(out, "  boundaries:\n");
    for (int i = 0; i < a->nbd; i++)
        if (cut[i])
            fprintf(out, "    %s -> %s: %s\n", opname(f->ops[a->bd[i].from]).s, opname(f->ops[a->bd[i].to]).s,
                a->bd[i].why);
    free(cut);
    return true;
}

tir_status tir_fuse_explain(tir_module *m, FILE *out, tir_diag *d) {
    tir_diag local;
    if (!d) d = &local;
    memset(d, 0, sizeof *d);
    if (!m || !out) return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "fuse explain: no module or stream");
    tir_kernel_names nm;
    if (!tir_kernel_names_init(&nm, m)) {
        tir_kernel_names_free(&nm);
        return tir_diag_set(d, TIR_ERR_OOM, m, (tir_loc){0, 0}, "out of memory");
    }
    tir_status st = TIR_OK;
    for (int i = 0; i < m->nfuncs && st == TIR_OK; i++) {
        tir_func *f = m->funcs[i];
        if (!fusible_func(f)) continue;
        fa a;
        kernel *ks = NULL;
        int nk = 0;
        if (!analyse(&a, m, f) || !build_kernels(&a, &nm, &ks, &nk) || !explain_func(out, &a, ks, nk))
            st = tir_diag_set(d, TIR_ERR_OOM, m, f->loc, "out of memory");
        kernels_free(ks, nk);
        fa_free(&a);
    }
    tir_kernel_names_free(&nm);
    return st;
}
