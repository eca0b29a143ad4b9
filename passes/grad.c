/* grad.c: reverse-mode autodiff. Gives every value_and_grad definition
 * (`func @g = value_and_grad(@f, wrt=[...])`) its body: a copy of @f's body (calls inlined
 * locally), then the adjoint program, returning (loss, d loss/d wrt...).
 *
 * The driver is generic (tinygrad's shape): walk the forward ops in reverse; for an op whose
 * results have adjoints and whose operands need gradients, call the op's rule
 * (tir_grad_rules[code], grad_rules.c); sum each contribution back over broadcast axes once,
 * cast it to the operand's dtype, and accumulate it with add. Only values that depend on a wrt
 * parameter and have a float dtype take part; integer and bool values get no gradient.
 *
 * requires: a verified module (no recursion).
 * maintains: every other function untouched; the definition's declared signature.
 * breaks: nothing; the built function becomes an ordinary function (grad_of cleared) whose
 *         forward copy may hold ops the loss does not need (simplify's DCE removes them). */
#include <stdio.h>

#include "passes.h"
#include "rewrite.h"

typedef struct gctx {
    tir_ib b;
    tir_func *g;
    int nfwd;         /* values with id < nfwd are the forward copy's */
    bool *active;     /* by value id: depends on a wrt parameter and is float */
    tir_value **adj;  /* by value id: the adjoint so far */
} gctx;

static bool is_float(const tir_value *v) { return tir_dtype_is_float(v->type.dtype); }


static bool dim_is(const tir_dim *d, int64_t v) {
    int64_t x;
    return tir_dim_is_const(d, &x) && x == v;
}

/* g has the shape a broadcast gave it; sum it back to t's shape: over leading axes t lacks and
 * over axes where t has 1 (one sum without keepdim, then a reshape puts the 1s back). The rare
 * case of g having 1 where t has more (a rule whose gradient is constant along an axis)
 * broadcasts. */
static tir_value *unbroadcast(tir_ib *b, tir_value *g, const tir_type *t) {
    if (!g || tir_type_same_dims(&g->type, t)) return g;
    const tir_type *gt = &g->type;
    if (gt->rank < t->rank) return tir_ib_broadcast(b, g, t->rank, t->dims);
    int lead = gt->rank - t->rank, n = 0;
    int64_t axes[TIR_MAX_RANK];
    const tir_dim *kept[TIR_MAX_RANK]; /* t's dims, with 1 where g is narrower */
    bool widen = false;
    tir_context *ctx = b->f->module->ctx;
    for (int k = 0; k < lead; k++) axes[n++] = k;
    for (int k = 0; k < t->rank; k++) {
        const tir_dim *gd = gt->dims[lead + k], *td = t->dims[k];
        kept[k] = td;
        if (gd == td) continue;
        if (dim_is(td, 1)) {
            axes[n++] = lead + k;
        } else if (dim_is(gd, 1)) {
            widen = true;
            kept[k] = tir_dim_const(ctx, 1);
        } else {
            tir_diag_set(b->d, TIR_ERR_INTERNAL, b->f->module, b->loc,
                         "gradient shape does not broadcast to its operand's");
            b->failed = true;
            return NULL;
        }
    }
    tir_value *s = n ? tir_ib_reduce(b, TIR_OP_SUM, g, n, axes, false) : g;
    tir_type want = *t;
    for (int k = 0; k < t->rank; k++) want.dims[k] = kept[k];
    if (s && !tir_type_same_dims(&s->type, &want)) s = tir_ib_reshape(b, s, t->rank, want.dims);
    if (s && widen) s = tir_ib_broadcast(b, s, t->rank, t->dims);
    return s;
}

static void accumulate(gctx *c, tir_value *v, tir_value *gi) {
    if (!gi || v->id >= c->nfwd || !c->active[v->id]) return;
    gi = tir_ib_cast(&c->b, unbroadcast(&c->b, gi, &v->type), v->type.dtype);
    if (!gi) return;
    c->adj[v->id] = c->adj[v->id] ? tir_ib_bin(&c->b, TIR_OP_ADD, c->adj[v->id], gi) : gi;
}

static tir_status fail(gctx *c) {
    c->b.failed = true;
    return tir_rw_fail(c->b.d);
}

static void mark_active(gctx *c, int nops) {
    tir_func *g = c->g;
    for (int k = 0; k < nops; k++) {
        const tir_op *op = g->ops[k];
        if (!(tir_ops[op->code].flags & TIR_F_DIFF)) continue;
        bool any = false;
        for (int i = 0; i < op->nin; i++) any |= c->active[op->in[i]->id] && is_float(op->in[i]);
        for (int i = 0; any && i < op->nout; i++) c->active[op->out[i]->id] = is_float(op->out[i]);
    }
}

/* the reverse walk over the forward ops [0, nops) */
static tir_status backward(gctx *c, int nops) {
    tir_func *g = c->g;
    for (int k = nops - 1; k >= 0; k--) {
        const tir_op *op = g->ops[k]; /* re-read: appending may move the op list */
        bool any_out = false, any_in = false;
        for (int i = 0; i < op->nout; i++) any_out |= c->adj[op->out[i]->id] != NULL;
        if (!any_out) continue;
        tir_value **gout = calloc((size_t)op->nout, sizeof *gout);
        tir_value **gin = calloc((size_t)(op->nin ? op->nin : 1), sizeof *gin);
        bool *need = calloc((size_t)(op->nin ? op->nin : 1), sizeof *need);
        tir_status st = TIR_OK;
        if (!gout || !gin || !need) {
            st = tir_diag_set(c->b.d, TIR_ERR_OOM, g->module, op->loc, "out of memory");
            goto next;
        }
        for (int i = 0; i < op->nout; i++) gout[i] = c->adj[op->out[i]->id];
        for (int i = 0; i < op->nin; i++) {
            need[i] = c->active[op->in[i]->id] && is_float(op->in[i]);
            any_in |= need[i];
        }
        if (!any_in) goto next;
        tir_grad_rule rule = tir_grad_rules[op->code];
        if (!rule) {
            st = tir_diag_set(c->b.d, TIR_ERR_UNSUPPORTED, g->module, op->loc,
                              "no gradient rule for %s", tir_ops[op->code].name);
            goto next;
        }
        c->b.loc = op->loc;
        st = rule(&c->b, op, gout, need, gin);
        if (st == TIR_OK && c->b.failed) st = fail(c);
        for (int i = 0; st == TIR_OK && i < op->nin; i++)
            if (need[i]) accumulate(c, op->in[i], gin[i]);
        if (st == TIR_OK && c->b.failed) st = fail(c);
    next:
        free(gout);
        free(gin);
        free(need);
        if (st != TIR_OK) return st;
    }
    return TIR_OK;
}

static tir_status build(tir_func *g, tir_diag *d) {
    tir_func *f = g->grad_of;
    tir_module *m = g->module;
    if (g->nops != 0 || f->nres != 1 || g->nparams != f->nparams)
        return tir_diag_set(d, TIR_ERR_INTERNAL, m, g->loc, "malformed value_and_grad @%s",
                            g->name);
    tir_value *loss = NULL;
    tir_status st = tir_rw_inline(g, f, g->params, &loss, true, d);
    if (st != TIR_OK) {
        g->nops = 0;
        tir_rw_renumber(g);
        return st;
    }

    gctx c = {.b = {g, g->loc, d, false}, .g = g, .nfwd = g->nvalues};
    int nops = g->nops;
    c.active = calloc((size_t)c.nfwd + 1, sizeof *c.active);
    c.adj = calloc((size_t)c.nfwd + 1, sizeof *c.adj);
    tir_value **res = calloc((size_t)g->nwrt + 1, sizeof *res);
    if (!c.active || !c.adj || !res) {
        st = tir_diag_set(d, TIR_ERR_OOM, m, g->loc, "out of memory");
        goto done;
    }
    for (int j = 0; j < g->nwrt; j++) {
        tir_value *p = g->params[g->wrt[j]];
        c.active[p->id] = is_float(p);
    }
    mark_active(&c, nops);
    if (loss->id < c.nfwd && c.active[loss->id])
        c.adj[loss->id] = tir_ib_const(&c.b, 1.0, loss->type.dtype);
    st = backward(&c, nops);
    if (st != TIR_OK) goto done;

    res[0] = loss;
    for (int j = 0; j < g->nwrt && st == TIR_OK; j++) {
        tir_value *p = g->params[g->wrt[j]];
        tir_value *a = c.adj[p->id];
        c.b.loc = g->loc;
        if (!a) a = tir_ib_full(&c.b, 0.0, &p->type);
        if (!a) {
            st = fail(&c);
            break;
        }
        if (!a->name && a->def && p->name) {
            char buf[256];
            snprintf(buf, sizeof buf, "d_%.200s", p->name);
            a->name = tir_rw_unique_name(g, buf);
        }
        res[j + 1] = a;
    }
    if (st == TIR_OK) {
        tir_func_set_results(g, g->nwrt + 1, res);
        g->grad_of = NULL; /* an ordinary function from here on: prints and runs as one */
        tir_rw_renumber(g);
    }
done:
    if (st != TIR_OK) { /* leave a clean, bodiless definition behind */
        g->nops = 0;
        tir_rw_renumber(g);
    }
    free(c.active);
    free(c.adj);
    free(res);
    return st;
}

static tir_status ensure_built(tir_func *g, int depth, tir_diag *d);

/* builds the value_and_grad bodies that f's calls reach, so f can be inlined */
static tir_status ensure_callees(const tir_func *f, int depth, tir_diag *d) {
    if (depth > 64)
        return tir_diag_set(d, TIR_ERR_INVALID, f->module, f->loc, "calls nested too deeply at @%s",
                            f->name);
    for (int k = 0; k < f->nops; k++) {
        const tir_op *op = f->ops[k];
        if (op->code != TIR_OP_CALL) continue;
        tir_status st = ensure_built(op->callee, depth + 1, d);
        if (st == TIR_OK) st = ensure_callees(op->callee, depth + 1, d);
        if (st != TIR_OK) return st;
    }
    return TIR_OK;
}

static tir_status ensure_built(tir_func *g, int depth, tir_diag *d) {
    if (!tir_func_bodiless(g)) return TIR_OK;
    if (depth > 64)
        return tir_diag_set(d, TIR_ERR_INVALID, g->module, g->loc,
                            "value_and_grad definitions nested too deeply at @%s", g->name);
    tir_status st = ensure_built(g->grad_of, depth + 1, d);
    if (st == TIR_OK) st = ensure_callees(g->grad_of, depth + 1, d);
    if (st == TIR_OK && tir_func_bodiless(g)) st = build(g, d);
    return st;
}

tir_status tir_pass_grad(tir_module *m, tir_diag *d) {
    tir_diag local;
    if (!d) d = &local;
    memset(d, 0, sizeof *d);
    for (int i = 0; i < m->nfuncs; i++) {
        tir_status st = ensure_built(m->funcs[i], 0, d);
        if (st != TIR_OK) return st;
    }
    return TIR_OK;
}

tir_status tir_value_and_grad(tir_module *m, const char *name, const char *of, int nwrt,
                              const char *const *wrt, tir_diag *d) {
    tir_diag local;
    if (!d) d = &local;
    memset(d, 0, sizeof *d);
    tir_status st = tir_define_value_and_grad(m, name, of, nwrt, wrt, d);
    if (st != TIR_OK) return st;
    tir_func *g = tir_module_find(m, name);
    if (!g) return tir_diag_set(d, TIR_ERR_INTERNAL, m, (tir_loc){0, 0}, "@%s vanished", name);
    return ensure_built(g, 0, d);
}
