/* verify.c: the whole-module checks that make a module well-formed, run after parsing and
 * between passes (in debug builds): SSA (each value defined once, before its uses, in its own
 * function), every op's result types equal to what inference gives now, results matching the
 * declared signature, calls resolving inside the module, no recursion, and value_and_grad
 * definitions that make sense. Passes may assume all of this and need re-check none of it. */
#include <stdio.h>

#include "ir.h"

typedef struct vctx {
    tir_module *m;
    tir_diag *d;
    const tir_func *outer; /* while checking a fused region: the function that holds it */
} vctx;

static tir_status fail(vctx *v, tir_loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static tir_status fail(vctx *v, tir_loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    tir_diag_vset(v->d, TIR_ERR_TYPE, v->m, loc, fmt, ap);
    va_end(ap);
    return TIR_ERR_TYPE;
}

typedef struct tstr { char s[240]; } tstr;

static tstr ty(const tir_type *t) {
    tstr r;
    tir_type_print(t, r.s, sizeof r.s);
    return r;
}

static tstr vname(const tir_value *x) {
    tstr r;
    if (x->name)
        snprintf(r.s, sizeof r.s, "%%%s", x->name);
    else
        snprintf(r.s, sizeof r.s, "%%%d", x->id);
    return r;
}

static bool type_ok(const tir_type *t) {
    if ((unsigned)t->dtype >= TIR_DTYPE_COUNT || t->rank < 0 || t->rank > TIR_MAX_RANK) return false;
    for (int i = 0; i < t->rank; i++) {
        int64_t v;
        if (!t->dims[i] || (tir_dim_is_const(t->dims[i], &v) && v < 0)) return false;
    }
    return true;
}

static bool in_module(const tir_module *m, const tir_func *f) {
    for (int i = 0; i < m->nfuncs; i++)
        if (m->funcs[i] == f) return true;
    return false;
}

static int func_index(const tir_module *m, const tir_func *f) {
    for (int i = 0; i < m->nfuncs; i++)
        if (m->funcs[i] == f) return i;
    return -1;
}

/* ------------------------------------------------------------------ signatures */

static tir_status verify_signature(vctx *v, tir_func *f) {
    if (!f->name) return fail(v, f->loc, "a function has no name");
    if (f->nparams < 0 || (f->nparams > 0 && !f->params) || f->nret < 0 || (f->nret > 0 && !f->ret))
        return fail(v, f->loc, "@%s: malformed signature", f->name);
    for (int i = 0; i < f->nparams; i++) {
        tir_value *p = f->params[i];
        if (!p) return fail(v, f->loc, "@%s: parameter %d is missing", f->name, i);
        if (p->def || p->func != f || p->index != i)
            return fail(v, f->loc, "@%s: parameter %d (%s) is not a parameter of this function", f->name,
                        i, vname(p).s);
        if (!type_ok(&p->type))
            return fail(v, f->loc, "@%s: parameter %s has a malformed type", f->name, vname(p).s);
        if (p->name)
            for (int j = 0; j < i; j++)
                if (f->params[j]->name && strcmp(f->params[j]->name, p->name) == 0)
                    return fail(v, f->loc, "@%s: parameter %%%s declared twice", f->name, p->name);
    }
    for (int i = 0; i < f->nret; i++)
        if (!type_ok(&f->ret[i]))
            return fail(v, f->loc, "@%s: declared result %d has a malformed type", f->name, i);
    return TIR_OK;
}

/* func @g = value_and_grad(@f, wrt=[...]): the shape of g's signature follows from f's */
static tir_status verify_grad_def(vctx *v, tir_func *g) {
    tir_func *f = g->grad_of;
    if (!in_module(v->m, f))
        return fail(v, g->loc, "@%s = value_and_grad: the differentiated function is not in this module",
                    g->name);
    if (f->grad_of && f->nops == 0)
        return fail(v, g->loc, "@%s = value_and_grad(@%s): @%s is itself a value_and_grad definition",
                    g->name, f->name, f->name);
    if (f->nret != 1 || !tir_dtype_is_float(f->ret[0].dtype) || f->ret[0].rank != 0)
        return fail(v, g->loc,
                    "@%s = value_and_grad(@%s): @%s must return one float scalar, it returns %d result%s%s%s",
                    g->name, f->name, f->name, f->nret, f->nret == 1 ? "" : "s",
                    f->nret == 1 ? ": " : "", f->nret == 1 ? ty(&f->ret[0]).s : "");
    if (g->nwrt < 1 || !g->wrt)
        return fail(v, g->loc, "@%s = value_and_grad(@%s): wrt must name at least one parameter", g->name,
                    f->name);
    for (int i = 0; i < g->nwrt; i++) {
        int k = g->wrt[i];
        if (k < 0 || k >= f->nparams)
            return fail(v, g->loc, "@%s = value_and_grad(@%s): wrt index %d is not a parameter of @%s",
                        g->name, f->name, k, f->name);
        for (int j = 0; j < i; j++)
            if (g->wrt[j] == k)
                return fail(v, g->loc, "@%s = value_and_grad(@%s): %s appears twice in wrt", g->name,
                            f->name, vname(f->params[k]).s);
        if (!tir_dtype_is_float(f->params[k]->type.dtype))
            return fail(v, g->loc, "@%s = value_and_grad(@%s): wrt %s must be a float tensor, found %s",
                        g->name, f->name, vname(f->params[k]).s, ty(&f->params[k]->type).s);
    }
    if (g->nparams != f->nparams)
        return fail(v, g->loc, "@%s = value_and_grad(@%s): has %d parameters, @%s has %d", g->name,
                    f->name, g->nparams, f->name, f->nparams);
    for (int i = 0; i < f->nparams; i++)
        if (!tir_type_equal(&g->params[i]->type, &f->params[i]->type))
            return fail(v, g->loc, "@%s = value_and_grad(@%s): parameter %d is %s, but in @%s it is %s",
                        g->name, f->name, i, ty(&g->params[i]->type).s, f->name,
                        ty(&f->params[i]->type).s);
    if (g->nret != 1 + g->nwrt)
        return fail(v, g->loc, "@%s = value_and_grad(@%s): declares %d results, expected %d (the value "
                               "and one gradient per wrt)", g->name, f->name, g->nret, 1 + g->nwrt);
    if (!tir_type_equal(&g->ret[0], &f->ret[0]))
        return fail(v, g->loc, "@%s = value_and_grad(@%s): result 0 is %s, expected the value's type %s",
                    g->name, f->name, ty(&g->ret[0]).s, ty(&f->ret[0]).s);
    for (int i = 0; i < g->nwrt; i++)
        if (!tir_type_equal(&g->ret[1 + i], &f->params[g->wrt[i]]->type))
            return fail(v, g->loc, "@%s = value_and_grad(@%s): gradient %d is %s, expected %s (the type of %s)",
                        g->name, f->name, i, ty(&g->ret[1 + i]).s, ty(&f->params[g->wrt[i]]->type).s,
                        vname(f->params[g->wrt[i]]).s);
    return TIR_OK;
}

/* ------------------------------------------------------------------ bodies */

static tir_status check_use(vctx *v, tir_func *f, const tir_op *op, const char *what, int i,
                            const tir_value *x, const bool *defined) {
    tir_loc loc = op ? op->loc : f->loc;
    const char *opname = op ? tir_ops[op->code].name : "return";
    if (!x) return fail(v, loc, "@%s: %s: %s %d is missing", f->name, opname, what, i);
    if (x->func != f && v->outer)
        return fail(v, loc, "@%s: %s: %s %d (%s) is not visible in the fused region: a region sees only its "
                            "parameters and its own values", f->name, opname, what, i, vname(x).s);
    if (x->func != f)
        return fail(v, loc, "@%s: %s: %s %d (%s) belongs to another function%s%s", f->name, opname, what,
                    i, vname(x).s, x->func && x->func->name ? " @" : "",
                    x->func && x->func->name ? x->func->name : "");
    if (x->id < 0 || x->id >= f->nvalues || !defined[x->id])
        return fail(v, loc, "@%s: %s: %s %d (%s) is used before it is defined", f->name, opname, what, i,
                    vname(x).s);
    return TIR_OK;
}

static tir_status define(vctx *v, tir_func *f, tir_loc loc, tir_value *x, bool *defined) {
    if (x->id < 0 || x->id >= f->nvalues)
        return fail(v, loc, "@%s: value %s has an id outside the function", f->name, vname(x).s);
    if (defined[x->id]) return fail(v, loc, "@%s: value %s is defined twice", f->name, vname(x).s);
    defined[x->id] = true;
    return TIR_OK;
}

static tir_status verify_body(vctx *v, tir_func *f);

/* A fused op's region: owned by the op (not a module function), made of core ops that refer
 * only to the region's own parameters and values, ending in the values it yields. */
static tir_status verify_region(vctx *v, tir_func *f, const tir_op *op) {
    tir_func *r = op->callee;
    if (v->outer) return fail(v, op->loc, "@%s: fused regions do not nest", f->name);
    if (!r) return fail(v, op->loc, "@%s: fused op without a region", f->name);
    if (in_module(v->m, r))
        return fail(v, op->loc, "@%s: the region of a fused op is a function of the module (@%s)", f->name,
                    r->name ? r->name : "?");
    if (r->module != v->m || r->grad_of || !r->name)
        return fail(v, op->loc, "@%s: fused op with a malformed region", f->name);
    for (int k = 0; k < r->nops; k++) {
        const tir_op *o = r->ops[k];
        if (!o) continue; /* reported by verify_body */
        if (o->code == TIR_OP_FUSED) return fail(v, o->loc, "@%s: fused regions do not nest", r->name);
        if (o->code == TIR_OP_CALL)
            return fail(v, o->loc, "@%s: a fused region cannot call a function (inline it first)", r->name);
    }
    tir_status s = verify_signature(v, r);
    if (s != TIR_OK) return s;
    if (r->nres < 1) return fail(v, op->loc, "@%s: a fused region yields at least one value", r->name);
    v->outer = f;
    s = verify_body(v, r);
    v->outer = NULL;
    return s;
}

static tir_status verify_op(vctx *v, tir_func *f, tir_op *op, bool *defined) {
    const char *name = (unsigned)op->code < TIR_OP_COUNT ? tir_ops[op->code].name : "?";
    if ((unsigned)op->code >= TIR_OP_COUNT)
        return fail(v, op->loc, "@%s: unknown opcode %d", f->name, (int)op->code);
    if (op->nin < 0 || (op->nin > 0 && !op->in) || op->nout < 0 || (op->nout > 0 && !op->out))
        return fail(v, op->loc, "@%s: %s: malformed operand or result list", f->name, name);
    for (int i = 0; i < op->nin; i++) {
        tir_status s = check_use(v, f, op, "operand", i, op->in[i], defined);
        if (s != TIR_OK) return s;
    }
    if (op->code == TIR_OP_CALL) {
        if (!op->callee) return fail(v, op->loc, "@%s: call without a callee", f->name);
        if (!in_module(v->m, op->callee))
            return fail(v, op->loc, "@%s: call @%s: no such function in this module", f->name,
                        op->callee->name ? op->callee->name : "?");
    } else if (op->code == TIR_OP_FUSED) {
        tir_status s = verify_region(v, f, op);
        if (s != TIR_OK) return s;
    } else if (op->callee) {
        return fail(v, op->loc, "@%s: %s has a callee", f->name, name);
    }
    tir_type *types = malloc(sizeof(tir_type) * (size_t)(op->nout > 0 ? op->nout : 1));
    if (!types) return tir_diag_set(v->d, TIR_ERR_OOM, v->m, op->loc, "out of memory");
    int n = 0;
    tir_status s = tir_infer(v->m, op->code, op->nin, op->in, op->nattrs, op->attrs, op->callee, op->loc,
                             op->nout, types, &n, v->d);
    if (s == TIR_OK && n != op->nout)
        s = fail(v, op->loc, "@%s: %s has %d results, but its operands give %d", f->name, name, op->nout, n);
    for (int j = 0; s == TIR_OK && j < op->nout; j++) {
        tir_value *r = op->out[j];
        if (!r) {
            s = fail(v, op->loc, "@%s: %s: result %d is missing", f->name, name, j);
        } else if (r->def != op || r->index != j || r->func != f) {
            s = fail(v, op->loc, "@%s: %s: result %d (%s) does not belong to this op", f->name, name, j,
                     vname(r).s);
        } else if (!tir_type_equal(&r->type, &types[j])) {
            s = fail(v, op->loc, "@%s: %s: result %s has type %s, but inference gives %s", f->name, name,
                     vname(r).s, ty(&r->type).s, ty(&types[j]).s);
        } else {
            s = define(v, f, op->loc, r, defined);
        }
    }
    free(types);
    return s;
}

static tir_status verify_body(vctx *v, tir_func *f) {
    if (f->nops < 0 || (f->nops > 0 && !f->ops) || f->nres < 0 || (f->nres > 0 && !f->results) ||
        f->nvalues < 0)
        return fail(v, f->loc, "@%s: malformed body", f->name);
    bool *defined = calloc((size_t)f->nvalues + 1, sizeof *defined);
    if (!defined) return tir_diag_set(v->d, TIR_ERR_OOM, v->m, f->loc, "out of memory");
    tir_status s = TIR_OK;
    for (int i = 0; s == TIR_OK && i < f->nparams; i++) s = define(v, f, f->loc, f->params[i], defined);
    for (int i = 0; s == TIR_OK && i < f->nops; i++) {
        if (!f->ops[i]) s = fail(v, f->loc, "@%s: op %d is missing", f->name, i);
        else s = verify_op(v, f, f->ops[i], defined);
    }
    if (s == TIR_OK && f->nres != f->nret)
        s = fail(v, f->loc, "@%s: declares %d result%s, returns %d", f->name, f->nret,
                 f->nret == 1 ? "" : "s", f->nres);
    for (int i = 0; s == TIR_OK && i < f->nres; i++) {
        s = check_use(v, f, NULL, "result", i, f->results[i], defined);
        if (s == TIR_OK && !tir_type_equal(&f->results[i]->type, &f->ret[i])) {
            tir_loc loc = f->results[i]->def ? f->results[i]->def->loc : f->loc;
            s = fail(v, loc, "@%s: return type mismatch%s: declared %s, returned %s (%s)", f->name,
                     f->nres > 1 ? " in a result" : "", ty(&f->ret[i]).s, ty(&f->results[i]->type).s,
                     vname(f->results[i]).s);
        }
    }
    free(defined);
    return s;
}

/* ------------------------------------------------------------------ recursion
 * Depth-first search over the call graph, where a value_and_grad definition also depends on the
 * function it differentiates; a back edge is a cycle, reported along the DFS stack. */

typedef struct cg {
    vctx *v;
    int n;
    int *color;  /* 0 white, 1 on the stack, 2 done */
    int *stack, depth;
} cg;

static tir_status report_cycle(cg *g, int to, tir_loc loc) {
    char buf[700];
    size_t len = 0;
    int from = 0;
    while (from < g->depth && g->stack[from] != to) from++;
    for (int i = from; i < g->depth && len < sizeof buf; i++) {
        int w = snprintf(buf + len, sizeof buf - len, "@%s -> ", g->v->m->funcs[g->stack[i]]->name);
        if (w < 0) break;
        len += (size_t)w;
    }
    if (len < sizeof buf) snprintf(buf + len, sizeof buf - len, "@%s", g->v->m->funcs[to]->name);
    return fail(g->v, loc, "recursion is not allowed: %s", buf);
}

static tir_status visit(cg *g, int i) {
    tir_func *f = g->v->m->funcs[i];
    g->color[i] = 1;
    g->stack[g->depth++] = i;
    int nedges = f->nops + (f->grad_of ? 1 : 0);
    for (int e = 0; e < nedges; e++) {
        const tir_func *callee;
        tir_loc loc;
        if (e < f->nops) {
            if (f->ops[e]->code != TIR_OP_CALL) continue;
            callee = f->ops[e]->callee;
            loc = f->ops[e]->loc;
        } else {
            callee = f->grad_of;
            loc = f->loc;
        }
        int k = func_index(g->v->m, callee);
        if (k < 0) continue; /* reported by the body checks */
        if (g->color[k] == 1) return report_cycle(g, k, loc);
        if (g->color[k] == 0) {
            tir_status s = visit(g, k);
            if (s != TIR_OK) return s;
        }
    }
    g->depth--;
    g->color[i] = 2;
    return TIR_OK;
}

static tir_status verify_no_recursion(vctx *v) {
    cg g = {v, v->m->nfuncs, NULL, NULL, 0};
    g.color = calloc((size_t)g.n + 1, sizeof *g.color);
    g.stack = calloc((size_t)g.n + 1, sizeof *g.stack);
    tir_status s = TIR_OK;
    if (!g.color || !g.stack) s = tir_diag_set(v->d, TIR_ERR_OOM, v->m, (tir_loc){0, 0}, "out of memory");
    for (int i = 0; s == TIR_OK && i < g.n; i++)
        if (g.color[i] == 0) s = visit(&g, i);
    free(g.color);
    free(g.stack);
    return s;
}

/* ------------------------------------------------------------------ the entry point */

tir_status tir_verify(tir_module *m, tir_diag *d) {
    if (!m || !m->ctx)
        return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "verify: no module");
    vctx v = {m, d, NULL};
    if (m->nfuncs < 0 || (m->nfuncs > 0 && !m->funcs))
        return fail(&v, (tir_loc){0, 0}, "malformed module: function list");
    for (int i = 0; i < m->nfuncs; i++) {
        tir_func *f = m->funcs[i];
        if (!f) return fail(&v, (tir_loc){0, 0}, "malformed module: function %d is missing", i);
        if (f->module != m)
            return fail(&v, f->loc, "@%s belongs to another module", f->name ? f->name : "?");
        tir_status s = verify_signature(&v, f);
        if (s != TIR_OK) return s;
        for (int j = 0; j < i; j++)
            if (strcmp(m->funcs[j]->name, f->name) == 0)
                return fail(&v, f->loc, "function @%s is defined twice", f->name);
    }
    for (int i = 0; i < m->nfuncs; i++) {
        tir_func *f = m->funcs[i];
        tir_status s;
        if (f->grad_of) {
            s = verify_grad_def(&v, f);
            if (s != TIR_OK) return s;
            /* until the grad pass fills it, a definition has no body to check */
            if (f->nops == 0 && f->nres == 0) continue;
        }
        s = verify_body(&v, f);
        if (s != TIR_OK) return s;
    }
    return verify_no_recursion(&v);
}
