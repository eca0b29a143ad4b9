/* schedule.c: decides how each fused region becomes a kernel and records it in the region's
 * `schedule` attribute (docs/tir.md §11.1), so that `tirc print --after schedule` shows every
 * decision codegen/fused.c will follow.
 *
 * requires: a verified module after fuse (fused regions; a region's reductions all reduce one
 *           shape F over one set of axes R, as fuse groups them).
 * maintains: everything but the `schedule` of fused ops: ops, values, names, meaning (a schedule
 *           never changes a result beyond the reordered sums docs/tir.md §11.1 allows).
 *           Regions whose schedule kind is "matmul" or "horizontal" (made by the tile and
 *           horizontal passes) are left as they are.
 * breaks:  nothing; running it twice gives the same schedules (decisions depend only on the
 *           region's body and types).
 *
 * Decisions, by kind:
 *   elementwise  vector (16-byte accesses of the widest full-size dtype), block;
 *   row          (R the innermost axes: a row is contiguous) vector; warps by the padded row
 *                length; rows_per_block for short rows; row_in_registers; the sweeps over the
 *                row: reductions that do not depend on each other fold in one sweep, a
 *                sum(exp(x - max)) rides on its max's sweep with the online rescaling
 *                (online=true), a one-hot pick sum(where(eq(iota, t), a, 0)) is one load; so
 *                `sweeps` counts the stats sweeps plus the write sweep; grid_max bounds the
 *                blocks (they stride over the rows);
 *   reduce       (R not innermost) warps, vector = 1. */
#include "passes.h"

static int64_t next_pow2(int64_t x) {
    int64_t p = 1;
    while (p < x && p < ((int64_t)1 << 40)) p <<= 1;
    return p;
}

/* 16-byte vectors of the widest element the kernel streams at full size (a parameter or a
 * result of shape F), halved until the contiguous length divides (statically: a symbolic
 * length must be a structural multiple) */
static int vector_width(tir_context *c, const tir_func *R, const tir_type *F, const tir_dim *len) {
    size_t e = 0;
    for (int i = 0; i < R->nparams; i++)
        if (tir_type_same_dims(&R->params[i]->type, F) && tir_dtype_size(R->params[i]->type.dtype) > e)
            e = tir_dtype_size(R->params[i]->type.dtype);
    for (int i = 0; i < R->nres; i++)
        if (tir_type_same_dims(&R->results[i]->type, F) && tir_dtype_size(R->results[i]->type.dtype) > e)
            e = tir_dtype_size(R->results[i]->type.dtype);
    if (!e) e = 4;
    int v = (int)(16 / e);
    if (!len) return 1;
    while (v > 1 && !tir_dim_multiple_of(c, len, v)) v /= 2;
    return v < 1 ? 1 : v;
}

/* an axis of the iteration space F (not the innermost) of at most 4 that a slice takes apart:
 * each thread walks it whole, so the parts are loaded once for all of its elements (RoPE's
 * rotate-half reads both halves of x for each half of the result); -1 when there is none */
static int thread_axis(const tir_func *R, const tir_type *F) {
    for (int i = 0; i < R->nops; i++) {
        const tir_op *op = R->ops[i];
        int ax;
        int64_t d;
        if (op->code != TIR_OP_SLICE || !tir_type_same_dims(&op->in[0]->type, F) ||
            !tir_norm_axis(tir_attr_int(op, "axis", 0), F->rank, &ax) || ax >= F->rank - 1 ||
            !tir_dim_is_const(F->dims[ax], &d) || d < 2 || d > 4)
            continue;
        return ax;
    }
    return -1;
}

/* ------------------------------------------------------------------ the row plan (passes.h) */

/* the reduced axes of a reduction, as a mask */
static unsigned axes_mask(const tir_op *op) {
    int rank = op->in[0]->type.rank;
    const tir_attr_value *ax = tir_op_attr(op, "axes");
    if (!ax || ax->kind != TIR_ATTR_INTS) return rank ? (1u << rank) - 1 : 0;
    unsigned m = 0;
    for (int i = 0; i < ax->u.ints.n; i++) {
        int k;
        if (tir_norm_axis(ax->u.ints.v[i], rank, &k)) m |= 1u << k;
    }
    return m;
}

static bool is_zero_const(const tir_value *v) {
    return v->def && v->def->code == TIR_OP_FULL && v->type.rank == 0 && tir_attr_float(v->def, "value", 1.0) == 0.0;
}

static bool index_dtype(tir_dtype t) { return t == TIR_I32 || t == TIR_I64; }

/* sum(where(eq(iota, t), A, 0)) over one axis, iota counting along it and t constant along it:
 * at most one element is A, so the sum is A at t (0 when t is outside the row) */
static bool pick_of(const tir_op *op, const tir_value **A, const tir_value **t) {
    const tir_type *F = &op->in[0]->type;
    unsigned m = axes_mask(op);
    if (op->code != TIR_OP_SUM || !tir_dtype_is_float(F->dtype) || !m || (m & (m - 1))) return false;
    int ax = 0;
    while (!(m >> ax & 1)) ax++;
    const tir_op *w = op->in[0]->def;
    if (!w || w->code != TIR_OP_WHERE || !is_zero_const(w->in[2])) return false;
    const tir_op *e = w->in[0]->def;
    if (!e || e->code != TIR_OP_EQ) return false;
    for (int k = 0; k < 2; k++) {
        const tir_value *io = e->in[k], *o = e->in[1 - k];
        const tir_op *iop = io->def;
        int iax;
        if (!iop || iop->code != TIR_OP_IOTA || !index_dtype(io->type.dtype) || !index_dtype(o->type.dtype) ||
            io->type.rank != F->rank || io->type.dims[ax] != F->dims[ax] ||
            !tir_norm_axis(tir_attr_int(iop, "axis", 0), io->type.rank, &iax) || iax != ax)
            continue;
        int j = ax - (F->rank - o->type.rank);
        int64_t one;
        if (j >= 0 && !(tir_dim_is_const(o->type.dims[j], &one) && one == 1)) continue;
        *A = w->in[1];
        *t = o;
        return true;
    }
    return false;
}

static const tir_value *unwrap_rowmap(const tir_value *v) {
    while (v->def && (v->def->code == TIR_OP_RESHAPE || v->def->code == TIR_OP_BROADCAST)) v = v->def->in[0];
    return v;
}

/* sum(exp(sub(X, m))) in f32/f64 with m = max(X) a FOLD slot of p: that slot, else -1 */
static int online_of(const tir_op *op, const tir_row_plan *p) {
    const tir_type *F = &op->in[0]->type;
    if (op->code != TIR_OP_SUM || (F->dtype != TIR_F32 && F->dtype != TIR_F64)) return -1;
    const tir_op *ex = op->in[0]->def;
    if (!ex || ex->code != TIR_OP_EXP) return -1;
    const tir_op *sb = ex->in[0]->def;
    if (!sb || sb->code != TIR_OP_SUB || !tir_type_same_dims(&sb->in[0]->type, F)) return -1;
    const tir_value *mv = unwrap_rowmap(sb->in[1]);
    for (int j = 0; j < p->nred; j++) {
        const tir_op *mo = p->r[j].op;
        if (mo != mv->def || mo->code != TIR_OP_MAX || p->r[j].kind != TIR_RR_FOLD || mo->in[0] != sb->in[0] ||
            axes_mask(mo) != axes_mask(op))
            continue;
        int riders = 0;
        for (int k = 0; k < p->nred; k++) riders += p->r[k].kind == TIR_RR_ONLINE && p->r[k].of == j;
        return riders < TIR_ROW_MAX_ONLINE ? j : -1;
    }
    return -1;
}

void tir_fused_row_plan_free(tir_row_plan *p) {
    free(p->r);
    memset(p, 0, sizeof *p);
}

/* t a value per row of F over the row axes rm: F's kept dims, with the row axes as 1 or without */
static bool is_row_value(const tir_type *F, unsigned rm, const tir_type *t) {
    if (t->rank == F->rank) {
        bool ok = true;
        for (int i = 0; ok && i < t->rank; i++) {
            int64_t one;
            ok = (rm >> i & 1) ? tir_dim_is_const(t->dims[i], &one) && one == 1 : t->dims[i] == F->dims[i];
        }
        if (ok) return true;
    }
    int j = 0;
    for (int i = 0; i < F->rank; i++) {
        if (rm >> i & 1) continue;
        if (j >= t->rank || t->dims[j] != F->dims[i]) return false;
        j++;
    }
    return j == t->rank && t->rank < F->rank;
}

bool tir_fused_row_plan(const tir_func *R, bool online, tir_row_plan *p) {
    memset(p, 0, sizeof *p);
    int n = 0;
    for (int i = 0; i < R->nops; i++) n += (tir_ops[R->ops[i]->code].flags & TIR_F_REDUCE) != 0;
    int *dl = calloc((size_t)(R->nvalues > 0 ? R->nvalues : 1), sizeof *dl);
    p->r = calloc((size_t)(n ? n : 1), sizeof *p->r);
    if (!dl || !p->r) {
        free(dl);
        tir_fused_row_plan_free(p);
        return false;
    }
    /* the rows: the first reduction over innermost axes short of all of them; a region whose
     * reductions all reduce every axis of a rank >= 2 shape has rows along its last axis. The
     * others, over every axis or over every row (kept) axis, are reduced across rows: GRID */
    const tir_type *F = NULL;
    p->rowmask = 0;
    for (int i = 0; i < R->nops && !p->rowmask; i++) {
        const tir_op *op = R->ops[i];
        if (!(tir_ops[op->code].flags & TIR_F_REDUCE)) continue;
        const tir_type *t = &op->in[0]->type;
        unsigned mk = axes_mask(op), tf = t->rank ? (1u << t->rank) - 1 : 0;
        int nr = 0;
        for (int k = 0; k < t->rank; k++) nr += mk >> k & 1;
        if (mk != tf && nr > 0 && mk == (((1u << nr) - 1) << (t->rank - nr))) {
            p->rowmask = mk;
            F = t;
        }
    }
    bool have = false;
    for (int i = 0; i < R->nops && !have && !F; i++)
        if (tir_ops[R->ops[i]->code].flags & TIR_F_REDUCE) F = &R->ops[i]->in[0]->type;
    have = F != NULL;
    p->F = F;
    int rank = F ? F->rank : 0;
    unsigned full = rank ? (1u << rank) - 1 : 0;
    bool all_full = have;
    for (int i = 0; i < R->nops; i++)
        if (tir_ops[R->ops[i]->code].flags & TIR_F_REDUCE) all_full &= axes_mask(R->ops[i]) == full;
    if (!p->rowmask && all_full && rank >= 2) {
        /* only when no reduction reads another's value: such a chain needs the first one whole
         * before the second starts, and stays a single row */
        bool chained = false;
        for (int i = 0; i < R->nops; i++) {
            const tir_op *op = R->ops[i];
            bool red = (tir_ops[op->code].flags & TIR_F_REDUCE) != 0, dep = false;
            for (int k = 0; k < op->nin; k++)
                dep |= op->in[k]->id >= 0 && op->in[k]->id < R->nvalues && dl[op->in[k]->id];
            chained |= red && dep;
            for (int k = 0; k < op->nout; k++)
                if (op->out[k]->id >= 0 && op->out[k]->id < R->nvalues) dl[op->out[k]->id] = red || dep;
        }
        memset(dl, 0, (size_t)(R->nvalues > 0 ? R->nvalues : 1) * sizeof *dl);
        if (!chained) p->rowmask = 1u << (rank - 1);
    }
    bool rows_split = p->rowmask != 0;
    if (!p->rowmask) /* no rows to split the space into: every reduction its own rows, as before */
        for (int i = 0; i < R->nops && !p->rowmask; i++)
            if (tir_ops[R->ops[i]->code].flags & TIR_F_REDUCE) p->rowmask = axes_mask(R->ops[i]);
#define DL(v) ((v)->id >= 0 && (v)->id < R->nvalues ? dl[(v)->id] : 0)
    for (int i = 0; i < R->nops; i++) {
        const tir_op *op = R->ops[i];
        int lv = 0;
        if (!(tir_ops[op->code].flags & TIR_F_REDUCE)) {
            for (int k = 0; k < op->nin; k++)
                if (DL(op->in[k]) > lv) lv = DL(op->in[k]);
        } else {
            tir_row_red *s = &p->r[p->nred];
            s->op = op;
            s->kind = TIR_RR_FOLD;
            s->level = 1 + DL(op->in[0]);
            const tir_value *A, *t;
            int j;
            for (j = 0; j < p->nred; j++)
                if (p->r[j].op->code == op->code && p->r[j].op->in[0] == op->in[0] && axes_mask(p->r[j].op) == axes_mask(op))
                    break;
            unsigned mk = axes_mask(op);
            bool rowval = rows_split && p->rowmask != full && is_row_value(F, p->rowmask, &op->in[0]->type) &&
                          mk == (op->in[0]->type.rank ? (1u << op->in[0]->type.rank) - 1 : 0);
            if (rows_split && DL(op->in[0]) < TIR_ROW_GRID_LEVEL &&
                (rowval || (mk != p->rowmask && (mk == full || mk == (full & ~p->rowmask)) &&
                            tir_type_same_dims(&op->in[0]->type, F)))) {
                /* folded in the write sweep (a row value: once per row) into partials; what
                 * depends on it waits for every row */
                s->kind = TIR_RR_GRID;
                s->column = !rowval && mk != full;
                s->rowval = rowval;
                s->level = TIR_ROW_GRID_LEVEL;
                p->ngrid++;
                p->nrowval += rowval;
            } else if (j < p->nred) {
                s->kind = TIR_RR_DUP;
                s->of = p->r[j].kind == TIR_RR_DUP ? p->r[j].of : j;
                s->level = p->r[j].level;
                p->ndup++;
            } else if (pick_of(op, &A, &t)) {
                s->kind = TIR_RR_PICK;
                s->pick = A;
                s->pick_idx = t;
                s->level = 1 + (DL(A) > DL(t) ? DL(A) : DL(t));
                p->npick++;
            } else if (online && (j = online_of(op, p)) >= 0) {
                s->kind = TIR_RR_ONLINE;
                s->of = j;
                s->level = p->r[j].level;
                p->nonline++;
            }
            lv = s->level;
            p->nred++;
        }
        for (int k = 0; k < op->nout; k++)
            if (op->out[k]->id >= 0 && op->out[k]->id < R->nvalues) dl[op->out[k]->id] = lv;
    }
#undef DL
    free(dl);
    for (int i = 0; i < p->nred; i++) {
        if (p->r[i].kind != TIR_RR_FOLD || p->r[i].level >= TIR_ROW_GRID_LEVEL) continue;
        bool first = true;
        for (int j = 0; j < i && first; j++) first = !(p->r[j].kind == TIR_RR_FOLD && p->r[j].level == p->r[i].level);
        p->nsweeps += first;
    }
    return true;
}

#define MAXKEYS 14
#define GRID_MAX (1 << 20) /* blocks: beyond it they stride over rows */

static bool has_column(const tir_row_plan *p) {
    for (int i = 0; i < p->nred; i++)
        if (p->r[i].kind == TIR_RR_GRID && p->r[i].column) return true;
    return false;
}

/* the schedule of region R into s; the number of entries, or -1 when out of memory */
static int decide(tir_module *m, const tir_func *R, tir_attr_value *s) {
    tir_context *c = m->ctx;
    int n = 0;
    const tir_op *red = NULL;
    for (int i = 0; i < R->nops && !red; i++)
        if (tir_ops[R->ops[i]->code].flags & TIR_F_REDUCE) red = R->ops[i];
    if (!red) {
        const tir_type *F = R->nres ? &R->results[0]->type : NULL;
        const tir_dim *last = F && F->rank ? F->dims[F->rank - 1] : NULL;
        s[n++] = tir_a_str("kind", "elementwise");
        s[n++] = tir_a_int("vector", F ? vector_width(c, R, F, last) : 1);
        s[n++] = tir_a_int("block", 256);
        int ta = F ? thread_axis(R, F) : -1;
        if (ta >= 0) s[n++] = tir_a_int("thread_axis", ta);
        return n;
    }
    tir_row_plan plan;
    if (!tir_fused_row_plan(R, true, &plan)) return -1;
    const tir_type *F = &red->in[0]->type;
    unsigned Rm = plan.rowmask;
    int nr = 0;
    for (int i = 0; i < F->rank; i++) nr += Rm >> i & 1;
    bool suffix = nr > 0 && Rm == (((1u << nr) - 1) << (F->rank - nr));
    if (!suffix) {
        tir_fused_row_plan_free(&plan);
        s[n++] = tir_a_str("kind", "reduce");
        s[n++] = tir_a_int("warps", 8);
        s[n++] = tir_a_int("vector", 1);
        return n;
    }
    const tir_dim *len = tir_dim_const(c, 1);
    for (int i = F->rank - nr; i < F->rank && len; i++) len = tir_dim_mul(c, len, F->dims[i]);
    int vec = vector_width(c, R, F, len);
    int64_t L, warps = 8, rows = 1;
    bool regs = false;
    if (len && tir_dim_is_const(len, &L)) {
        /* Liger's choice of warps by the padded row; short rows share a block */
        int64_t P = next_pow2(L > 0 ? L : 1);
        warps = P >= 32768 ? 32 : P >= 8192 ? 16 : P >= 2048 ? 8 : 4;
        int64_t per_row = P / vec > 0 ? P / vec : 1;
        rows = per_row < warps * 32 ? warps * 32 / per_row : 1;
        regs = L <= 8192;
        /* a streamed row with nothing to combine across rows: 16 warps, so that two or three
         * blocks share an SM and one block's reduction overlaps another's loads (softmax over
         * 32768: 0.573 ms at 16 warps, 0.673 at 32, H100 2026-11-23) */
        if (!regs && !plan.ngrid && warps > 16) {
            warps = 16;
            rows = per_row < warps * 32 ? warps * 32 / per_row : 1;
        }
    }
    bool full = plan.ngrid > plan.nrowval; /* a result per element, or partials: the write sweep */
    for (int i = 0; i < R->nres; i++) full |= tir_type_same_dims(&R->results[i]->type, F);
    s[n++] = tir_a_str("kind", "row");
    s[n++] = tir_a_int("rows_per_block", rows);
    s[n++] = tir_a_int("warps", warps);
    s[n++] = tir_a_int("vector", vec);
    s[n++] = tir_a_bool("row_in_registers", regs);
    /* a streamed row that is read in two sweeps or more, combines nothing across rows and
     * whose full-size operands fit 64 KB stays in shared memory between sweeps: the later
     * sweeps do not read it from L2 or DRAM again (softmax at 32768: about 55% of the second
     * sweep's reads missed L2, ncu 2026-11-23; staged 0.384 ms, 0.494 not) */
    int64_t stage = 0, Lk = 0;
    if (!regs && len && tir_dim_is_const(len, &Lk) && Lk > 0 && rows == 1 && !plan.ngrid &&
        plan.nsweeps + full >= 2) {
        for (int i = 0; i < R->nparams; i++)
            if (tir_type_same_dims(&R->params[i]->type, F)) stage += Lk * (int64_t)tir_dtype_size(R->params[i]->type.dtype);
        if (stage > 65536) stage = 0;
    }
    /* each thread loads `unroll` vectors before it uses one, so that enough bytes are in flight
     * per SM to cover DRAM latency: 4 (64 bytes), 8 for a staged row, whose later sweeps need no
     * registers for it (softmax: 0.370 ms at 8, 0.384 at 4; cross-entropy, streamed twice:
     * 2.72 ms at 8, 2.37 at 4) */
    if (!regs) s[n++] = tir_a_int("unroll", stage ? 8 : 4);
    if (stage) s[n++] = tir_a_bool("stage_row", true);
    s[n++] = tir_a_int("sweeps", plan.nsweeps + full);
    s[n++] = tir_a_bool("online", plan.nonline > 0);
    if (plan.ngrid) {
        /* reductions across rows: a persistent grid (a few blocks per SM striding over the
         * rows) keeps the partials few; the last block to finish combines them */
        s[n++] = tir_a_int("partials", plan.ngrid);
        /* fewer with column sums: every block's partial row is read back by the combiners */
        int64_t per = plan.ngrid > plan.nrowval && has_column(&plan) ? 512 : 1024;
        s[n++] = tir_a_int("blocks_per_sm", warps * 32 >= per ? 1 : per / (warps * 32));
    } else {
        s[n++] = tir_a_int("grid_max", GRID_MAX);
    }
    tir_fused_row_plan_free(&plan);
    return n;
}

static bool leave_alone(const tir_op *op) {
    const tir_attr_value *k = tir_dict_get(tir_op_attr(op, "schedule"), "kind");
    return k && k->kind == TIR_ATTR_STR && (strcmp(k->u.s, "matmul") == 0 || strcmp(k->u.s, "horizontal") == 0);
}

/* sets op's schedule attribute to the dict (replacing one it has, else appending it) */
static bool set_schedule(tir_module *m, tir_op *op, int n, const tir_attr_value *s) {
    tir_attr_value d = tir_a_dict(m, "schedule", n, s);
    if (d.u.dict.n != n) return false;
    for (int i = 0; i < op->nattrs; i++)
        if (op->attrs[i].name && strcmp(op->attrs[i].name, "schedule") == 0) {
            op->attrs[i] = d;
            return true;
        }
    tir_attr_value *na = tir_arena_alloc(m->arena, (size_t)(op->nattrs + 1) * sizeof *na);
    if (!na) return false;
    if (op->nattrs) memcpy(na, op->attrs, (size_t)op->nattrs * sizeof *na);
    na[op->nattrs] = d;
    op->attrs = na;
    op->nattrs++;
    return true;
}

/* TIR_SCHEDULE="key=value,..." (a tuning aid, e.g. "warps=16,unroll=8") replaces the integer
 * or boolean entries of those names in every schedule this pass (and the horizontal pass)
 * decides; unknown keys and malformed entries are ignored: the decision stands (passes.h) */
void tir_schedule_overrides(int n, tir_attr_value *s) {
    const char *env = getenv("TIR_SCHEDULE");
    while (env && *env) {
        const char *end = strchr(env, ',');
        size_t len = end ? (size_t)(end - env) : strlen(env);
        const char *eq = memchr(env, '=', len);
        if (eq) {
            size_t klen = (size_t)(eq - env);
            char val[32];
            size_t vlen = len - klen - 1 < sizeof val - 1 ? len - klen - 1 : sizeof val - 1;
            memcpy(val, eq + 1, vlen);
            val[vlen] = 0;
            char *rest;
            long long v = strtoll(val, &rest, 10);
            for (int i = 0; i < n; i++) {
                if (!s[i].name || strlen(s[i].name) != klen || strncmp(s[i].name, env, klen) != 0) continue;
                if (s[i].kind == TIR_ATTR_INT && rest != val && !*rest) s[i].u.i = v;
                if (s[i].kind == TIR_ATTR_BOOL && (!strcmp(val, "true") || !strcmp(val, "false")))
                    s[i].u.b = !strcmp(val, "true");
            }
        }
        env = end ? end + 1 : NULL;
    }
}

tir_status tir_pass_schedule(tir_module *m, tir_diag *d) {
    tir_diag local;
    if (!d) d = &local;
    memset(d, 0, sizeof *d);
    if (!m) return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "schedule: no module");
    for (int i = 0; i < m->nfuncs; i++) {
        tir_func *f = m->funcs[i];
        for (int k = 0; k < f->nops; k++) {
            tir_op *op = f->ops[k];
            const tir_func *R = tir_op_region(op);
            if (!R || leave_alone(op)) continue;
            tir_attr_value s[MAXKEYS];
            int n = decide(m, R, s);
            if (n > 0) tir_schedule_overrides(n, s);
            if (n < 0 || !set_schedule(m, op, n, s))
                return tir_diag_set(d, TIR_ERR_OOM, m, op->loc, "out of memory");
        }
    }
    return TIR_OK;
}
