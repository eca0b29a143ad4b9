/* module.c: the context, modules, functions, values and ops, and every way of building IR:
 * the internal tir_func_* / tir_ib_* builders used by the frontend and passes, and the public
 * tir_builder API of tir.h. All IR is allocated in the module arena; growable arrays move to a
 * bigger arena block when full (the old block is simply abandoned until the module dies). */
#include <stdio.h>

#include "ir.h"

/* ---------------------------------------------------------------- context and module */

tir_context *tir_context_create(void) {
    tir_context *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (!(c->arena = tir_arena_new())) {
        free(c);
        return NULL;
    }
    return c; /* the dim table is created in c->arena on first use (ir/dim.c) */
}

void tir_context_destroy(tir_context *c) {
    if (!c) return;
    if (c->runtime && c->runtime_free) c->runtime_free(c->runtime);
    if (c->kernel_cache && c->kernel_cache_free) c->kernel_cache_free(c->kernel_cache);
    tir_arena_free(c->arena);
    free(c);
}

tir_module *tir_module_new(tir_context *c) {
    if (!c) return NULL;
    tir_module *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->ctx = c;
    if (!(m->arena = tir_arena_new())) {
        free(m);
        return NULL;
    }
    return m;
}

void tir_module_free(tir_module *m) {
    if (!m) return;
    tir_arena_free(m->arena);
    free(m);
}

tir_func *tir_module_find(const tir_module *m, const char *name) {
    if (!m || !name) return NULL;
    for (int i = 0; i < m->nfuncs; i++)
        if (strcmp(m->funcs[i]->name, name) == 0) return m->funcs[i];
    return NULL;
}

int tir_module_num_funcs(const tir_module *m) { return m ? m->nfuncs : 0; }

const char *tir_module_func_name(const tir_module *m, int i) {
    return m && i >= 0 && i < m->nfuncs ? m->funcs[i]->name : NULL;
}

int tir_func_num_params(const tir_module *m, const char *func) {
    tir_func *f = tir_module_find(m, func);
    return f ? f->nparams : -1;
}

int tir_func_num_results(const tir_module *m, const char *func) {
    tir_func *f = tir_module_find(m, func);
    if (!f) return -1;
    return f->nret || f->grad_of ? f->nret : f->nres;
}

/* ---------------------------------------------------------------- functions, values, ops */

/* a copy of the n pointers of arr with room for one more */
static void **grow_ptrs(tir_arena *a, void **arr, int n) {
    void **p = tir_arena_alloc(a, (size_t)(n + 1) * sizeof *p);
    if (p && n) memcpy(p, arr, (size_t)n * sizeof *p);
    return p;
}

tir_func *tir_func_new(tir_module *m, const char *name, tir_loc loc, tir_diag *d) {
    if (!m || !name || !*name) {
        tir_diag_set(d, TIR_ERR_INVALID, m, loc, "a function needs a name");
        return NULL;
    }
    if (tir_module_find(m, name)) {
        tir_diag_set(d, TIR_ERR_TYPE, m, loc, "function @%s is already defined", name);
        return NULL;
    }
    tir_func *f = tir_arena_alloc(m->arena, sizeof *f);
    if (!f || !(f->name = tir_arena_strdup(m->arena, name))) goto oom;
    f->module = m;
    f->loc = loc;
    if (m->nfuncs == m->cap_funcs) {
        int cap = m->cap_funcs ? m->cap_funcs * 2 : 8;
        tir_func **fs = tir_arena_alloc(m->arena, (size_t)cap * sizeof *fs);
        if (!fs) goto oom;
        if (m->nfuncs) memcpy(fs, m->funcs, (size_t)m->nfuncs * sizeof *fs);
        m->funcs = fs;
        m->cap_funcs = cap;
    }
    m->funcs[m->nfuncs++] = f;
    return f;
oom:
    tir_diag_set(d, TIR_ERR_OOM, m, loc, "out of memory");
    return NULL;
}

/* takes f out of its module (a failed builder); its memory stays in the arena */
static void func_remove(tir_func *f) {
    tir_module *m = f->module;
    for (int i = 0; i < m->nfuncs; i++)
        if (m->funcs[i] == f) {
            memmove(&m->funcs[i], &m->funcs[i + 1], (size_t)(m->nfuncs - i - 1) * sizeof *m->funcs);
            m->nfuncs--;
            return;
        }
}

tir_value *tir_value_new(tir_func *f, const tir_type *t) {
    if (!f || !t) return NULL;
    tir_value *v = tir_arena_alloc(f->module->arena, sizeof *v);
    if (!v) return NULL;
    v->id = f->nvalues++;
    v->type = *t;
    v->func = f;
    return v;
}

tir_value *tir_func_add_param(tir_func *f, const char *name, const tir_type *t, tir_loc loc) {
    if (!f || !t) return NULL;
    tir_value *v = tir_value_new(f, t);
    tir_value **ps = (tir_value **)grow_ptrs(f->module->arena, (void **)f->params, f->nparams);
    if (!v || !ps) return NULL;
    if (name && !(v->name = tir_arena_strdup(f->module->arena, name))) return NULL;
    v->index = f->nparams;
    ps[f->nparams++] = v;
    f->params = ps;
    return v;
}

/* deep copy into the module arena, so callers may pass stack data */
static bool copy_attr(tir_arena *a, tir_attr_value *dst, const tir_attr_value *src) {
    *dst = *src;
    if (src->name && !(dst->name = tir_arena_strdup(a, src->name))) return false;
    switch (src->kind) {
    case TIR_ATTR_STR:
        return !src->u.s || (dst->u.s = tir_arena_strdup(a, src->u.s));
    case TIR_ATTR_INTS:
        if (src->u.ints.n <= 0) return true;
        return (dst->u.ints.v = tir_arena_memdup(a, src->u.ints.v,
                                                 (size_t)src->u.ints.n * sizeof(int64_t)));
    case TIR_ATTR_SHAPE:
        if (src->u.shape.n <= 0) return true;
        return (dst->u.shape.v = tir_arena_memdup(a, src->u.shape.v,
                                                  (size_t)src->u.shape.n * sizeof(tir_dim *)));
    default: return true;
    }
}

/* an upper bound on the results, for the inference buffer */
static int max_results(tir_opcode code, int nattrs, const tir_attr_value *attrs,
                       const tir_func *callee) {
    if (tir_ops[code].nout >= 0) return tir_ops[code].nout;
    int n = 1;
    if (callee) n = callee->nret > callee->nres ? callee->nret : callee->nres;
    for (int i = 0; i < nattrs; i++)
        if (attrs[i].kind == TIR_ATTR_SHAPE && attrs[i].u.shape.n > n) n = attrs[i].u.shape.n;
        else if (attrs[i].kind == TIR_ATTR_INTS && attrs[i].u.ints.n > n) n = attrs[i].u.ints.n;
    return n;
}

tir_op *tir_func_append_op(tir_func *f, tir_opcode code, int nin, tir_value *const *in,
                           int nattrs, const tir_attr_value *attrs, tir_func *callee,
                           tir_loc loc, tir_diag *d) {
    tir_module *m = f ? f->module : NULL;
    if (!f || (unsigned)code >= TIR_OP_COUNT || nin < 0 || nattrs < 0 || (nin && !in) ||
        (nattrs && !attrs)) {
        tir_diag_set(d, TIR_ERR_INVALID, m, loc, "bad arguments to append an op");
        return NULL;
    }
    for (int i = 0; i < nin; i++)
        if (!in[i]) {
            tir_diag_set(d, TIR_ERR_INVALID, m, loc, "operand %d of %s is missing", i,
                         tir_ops[code].name);
            return NULL;
        } else if (in[i]->func != f) {
            tir_diag_set(d, TIR_ERR_TYPE, m, loc, "operand %d of %s belongs to another function",
                         i, tir_ops[code].name);
            return NULL;
        }
    if (code == TIR_OP_CALL && !callee) {
        tir_diag_set(d, TIR_ERR_INVALID, m, loc, "call without a callee");
        return NULL;
    }
    int max_out = max_results(code, nattrs, attrs, callee), nout = 0;
    tir_type *types = malloc((size_t)(max_out > 0 ? max_out : 1) * sizeof *types);
    if (!types) {
        tir_diag_set(d, TIR_ERR_OOM, m, loc, "out of memory");
        return NULL;
    }
    tir_op *op = NULL;
    if (tir_infer(m, code, nin, in, nattrs, attrs, callee, loc, max_out, types, &nout, d) !=
        TIR_OK)
        goto done;
    if (nout < 0 || nout > max_out) {
        tir_diag_set(d, TIR_ERR_INTERNAL, m, loc, "%s: inference gave %d results", tir_ops[code].name,
                     nout);
        goto done;
    }
    tir_arena *a = m->arena;
    tir_op *o = tir_arena_alloc(a, sizeof *o);
    if (!o) goto oom;
    o->code = code;
    o->nin = nin;
    o->nout = nout;
    o->callee = callee;
    o->loc = loc;
    o->nattrs = nattrs;
    if (nin && !(o->in = tir_arena_memdup(a, in, (size_t)nin * sizeof *in))) goto oom;
    if (nout && !(o->out = tir_arena_alloc(a, (size_t)nout * sizeof *o->out))) goto oom;
    if (nattrs && !(o->attrs = tir_arena_alloc(a, (size_t)nattrs * sizeof *o->attrs))) goto oom;
    for (int i = 0; i < nattrs; i++)
        if (!copy_attr(a, &o->attrs[i], &attrs[i])) goto oom;
    for (int i = 0; i < nout; i++) {
        if (!(o->out[i] = tir_value_new(f, &types[i]))) goto oom;
        o->out[i]->def = o;
        o->out[i]->index = i;
    }
    if (f->nops == f->cap_ops) {
        int cap = f->cap_ops ? f->cap_ops * 2 : 16;
        tir_op **ops = tir_arena_alloc(a, (size_t)cap * sizeof *ops);
        if (!ops) goto oom;
        if (f->nops) memcpy(ops, f->ops, (size_t)f->nops * sizeof *ops);
        f->ops = ops;
        f->cap_ops = cap;
    }
    f->ops[f->nops++] = o;
    op = o;
    goto done;
oom:
    tir_diag_set(d, TIR_ERR_OOM, m, loc, "out of memory");
done:
    free(types);
    return op;
}

void tir_func_set_results(tir_func *f, int n, tir_value *const *res) {
    if (!f || n < 0) return;
    f->results = n ? tir_arena_memdup(f->module->arena, res, (size_t)n * sizeof *res) : NULL;
    f->nres = f->results || !n ? n : 0;
}

void tir_func_set_ret(tir_func *f, int n, const tir_type *ret) {
    if (!f || n < 0) return;
    f->ret = n ? tir_arena_memdup(f->module->arena, ret, (size_t)n * sizeof *ret) : NULL;
    f->nret = f->ret || !n ? n : 0;
}

static bool is_float_scalar(const tir_type *t) { return t->rank == 0 && tir_dtype_is_float(t->dtype); }

tir_func *tir_func_new_grad_def(tir_module *m, const char *name, const char *of, int nwrt,
                                const char *const *wrt, tir_loc loc, tir_diag *d) {
    if (!m || !of) {
        tir_diag_set(d, TIR_ERR_INVALID, m, loc, "value_and_grad needs a function");
        return NULL;
    }
    tir_func *g = tir_module_find(m, of);
    if (!g) {
        tir_diag_set(d, TIR_ERR_TYPE, m, loc, "value_and_grad of unknown function @%s", of);
        return NULL;
    }
    int nr = g->nret || g->grad_of ? g->nret : g->nres;
    const tir_type *rt = g->nret ? &g->ret[0] : nr == 1 ? &g->results[0]->type : NULL;
    if (nr != 1 || !rt || !is_float_scalar(rt)) {
        char buf[128] = "";
        if (nr == 1 && rt) tir_type_print(rt, buf, sizeof buf);
        if (nr != 1)
            tir_diag_set(d, TIR_ERR_TYPE, m, loc,
                         "value_and_grad needs @%s to return one float scalar; it returns %d results",
                         of, nr);
        else
            tir_diag_set(d, TIR_ERR_TYPE, m, loc,
                         "value_and_grad needs @%s to return one float scalar; it returns %s", of,
                         buf);
        return NULL;
    }
    if (nwrt < 1 || !wrt) {
        tir_diag_set(d, TIR_ERR_TYPE, m, loc, "value_and_grad needs at least one wrt parameter");
        return NULL;
    }
    int *idx = tir_arena_alloc(m->arena, (size_t)nwrt * sizeof *idx);
    tir_type *ret = tir_arena_alloc(m->arena, (size_t)(nwrt + 1) * sizeof *ret);
    if (!idx || !ret) {
        tir_diag_set(d, TIR_ERR_OOM, m, loc, "out of memory");
        return NULL;
    }
    ret[0] = *rt;
    for (int i = 0; i < nwrt; i++) {
        const char *w = wrt[i] && wrt[i][0] == '%' ? wrt[i] + 1 : wrt[i];
        int k = -1;
        for (int j = 0; w && j < g->nparams; j++)
            if (g->params[j]->name && strcmp(g->params[j]->name, w) == 0) k = j;
        if (k < 0) {
            tir_diag_set(d, TIR_ERR_TYPE, m, loc, "@%s has no parameter %%%s", of, w ? w : "?");
            return NULL;
        }
        for (int j = 0; j < i; j++)
            if (idx[j] == k) {
                tir_diag_set(d, TIR_ERR_TYPE, m, loc, "wrt parameter %%%s is repeated", w);
                return NULL;
            }
        if (!tir_dtype_is_float(g->params[k]->type.dtype)) {
            tir_diag_set(d, TIR_ERR_TYPE, m, loc,
                         "cannot differentiate with respect to %%%s of dtype %s", w,
                         tir_dtype_name(g->params[k]->type.dtype));
            return NULL;
        }
        idx[i] = k;
        ret[i + 1] = g->params[k]->type;
    }
    tir_func *f = tir_func_new(m, name, loc, d);
    if (!f) return NULL;
    for (int j = 0; j < g->nparams; j++)
        if (!tir_func_add_param(f, g->params[j]->name, &g->params[j]->type, loc)) {
            func_remove(f);
            tir_diag_set(d, TIR_ERR_OOM, m, loc, "out of memory");
            return NULL;
        }
    f->grad_of = g;
    f->nwrt = nwrt;
    f->wrt = idx;
    f->ret = ret;
    f->nret = nwrt + 1;
    return f;
}

/* ---------------------------------------------------------------- attributes */

const tir_attr_value *tir_op_attr(const tir_op *op, const char *name) {
    if (!op || !name) return NULL;
    for (int i = 0; i < op->nattrs; i++)
        if (op->attrs[i].name && strcmp(op->attrs[i].name, name) == 0) return &op->attrs[i];
    return NULL;
}

int64_t tir_attr_int(const tir_op *op, const char *name, int64_t dflt) {
    const tir_attr_value *a = tir_op_attr(op, name);
    return a && a->kind == TIR_ATTR_INT ? a->u.i : dflt;
}

double tir_attr_float(const tir_op *op, const char *name, double dflt) {
    const tir_attr_value *a = tir_op_attr(op, name);
    if (!a) return dflt;
    return a->kind == TIR_ATTR_FLOAT ? a->u.f : a->kind == TIR_ATTR_INT ? (double)a->u.i : dflt;
}

bool tir_attr_bool(const tir_op *op, const char *name, bool dflt) {
    const tir_attr_value *a = tir_op_attr(op, name);
    return a && a->kind == TIR_ATTR_BOOL ? a->u.b : dflt;
}

const char *tir_attr_str(const tir_op *op, const char *name, const char *dflt) {
    const tir_attr_value *a = tir_op_attr(op, name);
    return a && a->kind == TIR_ATTR_STR ? a->u.s : dflt;
}

tir_attr_value tir_a_int(const char *name, int64_t v) {
    return (tir_attr_value){.name = name, .kind = TIR_ATTR_INT, .u.i = v};
}
tir_attr_value tir_a_float(const char *name, double v) {
    return (tir_attr_value){.name = name, .kind = TIR_ATTR_FLOAT, .u.f = v};
}
tir_attr_value tir_a_bool(const char *name, bool v) {
    return (tir_attr_value){.name = name, .kind = TIR_ATTR_BOOL, .u.b = v};
}
tir_attr_value tir_a_str(const char *name, const char *s) {
    return (tir_attr_value){.name = name, .kind = TIR_ATTR_STR, .u.s = s};
}
tir_attr_value tir_a_dtype(const char *name, tir_dtype t) {
    return (tir_attr_value){.name = name, .kind = TIR_ATTR_DTYPE, .u.dtype = t};
}
tir_attr_value tir_a_ints(tir_module *m, const char *name, int n, const int64_t *v) {
    tir_attr_value a = {.name = name, .kind = TIR_ATTR_INTS};
    a.u.ints.n = n > 0 ? n : 0;
    if (n > 0) a.u.ints.v = tir_arena_memdup(m->arena, v, (size_t)n * sizeof *v);
    if (n > 0 && !a.u.ints.v) a.u.ints.n = 0;
    return a;
}
tir_attr_value tir_a_shape(tir_module *m, const char *name, int n, const tir_dim *const *v) {
    tir_attr_value a = {.name = name, .kind = TIR_ATTR_SHAPE};
    a.u.shape.n = n > 0 ? n : 0;
    if (n > 0) a.u.shape.v = tir_arena_memdup(m->arena, v, (size_t)n * sizeof *v);
    if (n > 0 && !a.u.shape.v) a.u.shape.n = 0;
    return a;
}

/* ---------------------------------------------------------------- tir_ib: C code writing IR */

tir_value *tir_ib_op(tir_ib *b, tir_opcode code, int nin, tir_value *const *in, int nattrs,
                     const tir_attr_value *attrs) {
    if (!b || b->failed) return NULL;
    tir_op *op = tir_func_append_op(b->f, code, nin, in, nattrs, attrs, NULL, b->loc, b->d);
    if (!op) {
        b->failed = true;
        return NULL;
    }
    return op->nout > 0 ? op->out[0] : NULL;
}

tir_value *tir_ib_un(tir_ib *b, tir_opcode code, tir_value *x) {
    return tir_ib_op(b, code, 1, &x, 0, NULL);
}

tir_value *tir_ib_bin(tir_ib *b, tir_opcode code, tir_value *x, tir_value *y) {
    tir_value *in[2] = {x, y};
    return tir_ib_op(b, code, 2, in, 0, NULL);
}

tir_value *tir_ib_full(tir_ib *b, double v, const tir_type *t) {
    if (!b || b->failed || !t) return NULL;
    tir_attr_value a[3] = {tir_a_float("value", v),
                           tir_a_shape(b->f->module, "shape", t->rank, t->dims),
                           tir_a_dtype("dtype", t->dtype)};
    return tir_ib_op(b, TIR_OP_FULL, 0, NULL, 3, a);
}

tir_value *tir_ib_const(tir_ib *b, double v, tir_dtype dt) {
    tir_type t = {.dtype = dt, .rank = 0};
    return tir_ib_full(b, v, &t);
}

tir_value *tir_ib_cast(tir_ib *b, tir_value *x, tir_dtype dt) {
    if (!b || b->failed) return NULL;
    if (x && x->type.dtype == dt) return x;
    tir_attr_value a = tir_a_dtype("dtype", dt);
    return tir_ib_op(b, TIR_OP_CAST, 1, &x, 1, &a);
}

/* axes == NULL reduces every axis (no axes= attribute); keepdim= is written only when true */
tir_value *tir_ib_reduce(tir_ib *b, tir_opcode code, tir_value *x, int naxes, const int64_t *axes,
                         bool keepdim) {
    if (!b || b->failed) return NULL;
    tir_attr_value a[2];
    int n = 0;
    if (axes) a[n++] = tir_a_ints(b->f->module, "axes", naxes, axes);
    if (keepdim) a[n++] = tir_a_bool("keepdim", true);
    return tir_ib_op(b, code, 1, &x, n, a);
}

tir_value *tir_ib_reshape(tir_ib *b, tir_value *x, int rank, const tir_dim *const *dims) {
    if (!b || b->failed) return NULL;
    tir_attr_value a = tir_a_shape(b->f->module, "shape", rank, dims);
    return tir_ib_op(b, TIR_OP_RESHAPE, 1, &x, 1, &a);
}

tir_value *tir_ib_transpose(tir_ib *b, tir_value *x, const int64_t *perm) {
    if (!b || b->failed || !x) return tir_ib_op(b, TIR_OP_TRANSPOSE, 1, &x, 0, NULL);
    tir_attr_value a = tir_a_ints(b->f->module, "perm", x->type.rank, perm);
    return tir_ib_op(b, TIR_OP_TRANSPOSE, 1, &x, 1, &a);
}

tir_value *tir_ib_broadcast(tir_ib *b, tir_value *x, int rank, const tir_dim *const *dims) {
    if (!b || b->failed) return NULL;
    tir_attr_value a = tir_a_shape(b->f->module, "shape", rank, dims);
    return tir_ib_op(b, TIR_OP_BROADCAST, 1, &x, 1, &a);
}

tir_value *tir_ib_matmul(tir_ib *b, tir_value *x, tir_value *y, bool ta, bool tb) {
    tir_value *in[2] = {x, y};
    tir_attr_value a[2];
    int n = 0;
    if (ta) a[n++] = tir_a_bool("transpose_a", true);
    if (tb) a[n++] = tir_a_bool("transpose_b", true);
    return tir_ib_op(b, TIR_OP_MATMUL, 2, in, n, a);
}

/* ---------------------------------------------------------------- types */

bool tir_type_same_dims(const tir_type *a, const tir_type *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

bool tir_type_equal(const tir_type *a, const tir_type *b) { return a->dtype == b->dtype && tir_type_same_dims(a, b); }

int tir_type_print(const tir_type *t, char *buf, size_t n) {
    size_t len = 0;
    char tmp[256];
    int k = snprintf(buf, n, "%s[", tir_dtype_name(t->dtype));
    len += k > 0 ? (size_t)k : 0;
    for (int i = 0; i < t->rank && i < TIR_MAX_RANK; i++) {
        int w = tir_dim_print(t->dims[i], tmp, sizeof tmp);
        const char *s = tmp;
        char *big = NULL;
        if (w >= (int)sizeof tmp && (big = malloc((size_t)w + 1))) {
            tir_dim_print(t->dims[i], big, (size_t)w + 1);
            s = big;
        }
        k = snprintf(len < n ? buf + len : NULL, len < n ? n - len : 0, "%s%s", i ? ", " : "", s);
        len += k > 0 ? (size_t)k : 0;
        free(big);
    }
    k = snprintf(len < n ? buf + len : NULL, len < n ? n - len : 0, "]");
    len += k > 0 ? (size_t)k : 0;
    return (int)len;
}

tir_status tir_type_eval(const tir_type *t, const tir_bindings *b, int64_t *dims) {
    for (int i = 0; i < t->rank; i++)
        if (tir_dim_eval(t->dims[i], b, &dims[i]) != TIR_OK) return TIR_ERR_INVALID;
    return TIR_OK;
}

/* ---------------------------------------------------------------- public builder (tir.h) */

struct tir_builder {
    tir_module *m;
    tir_func *f;   /* NULL when begin failed */
    tir_ib ib;     /* its failed flag is the builder's sticky error */
    tir_diag diag; /* the first error */
};

tir_builder *tir_builder_begin(tir_module *m, const char *func_name) {
    if (!m) return NULL;
    tir_builder *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->m = m;
    b->ib.d = &b->diag;
    b->f = tir_func_new(m, func_name, (tir_loc){0, 0}, &b->diag);
    b->ib.f = b->f;
    b->ib.failed = !b->f;
    return b;
}

static void bfail(tir_builder *b, tir_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void bfail(tir_builder *b, tir_status s, const char *fmt, ...) {
    if (b->ib.failed) return;
    va_list ap;
    va_start(ap, fmt);
    tir_diag_vset(&b->diag, s, b->m, (tir_loc){0, 0}, fmt, ap);
    va_end(ap);
    b->ib.failed = true;
}

static const tir_dim *parse_dim(tir_builder *b, const char *text, const char *what) {
    const char *err = NULL;
    const tir_dim *d = text ? tir_dim_parse(b->m->ctx, text, strlen(text), &err) : NULL;
    if (!d)
        bfail(b, TIR_ERR_INVALID, "%s: bad dim \"%s\": %s", what, text ? text : "(null)",
              err ? err : "missing");
    return d;
}

tir_value *tir_build_param(tir_builder *b, const char *name, tir_dtype dtype, int rank,
                           const char *const *dims) {
    if (!b || b->ib.failed) return NULL;
    char auto_name[32];
    if (!name || !*name) {
        snprintf(auto_name, sizeof auto_name, "arg%d", b->f->nparams);
        name = auto_name;
    }
    if ((unsigned)dtype >= TIR_DTYPE_COUNT || rank < 0 || rank > TIR_MAX_RANK || (rank && !dims)) {
        bfail(b, TIR_ERR_INVALID, "parameter %%%s: bad dtype or rank %d", name, rank);
        return NULL;
    }
    for (int i = 0; i < b->f->nparams; i++)
        if (b->f->params[i]->name && strcmp(b->f->params[i]->name, name) == 0) {
            bfail(b, TIR_ERR_INVALID, "parameter %%%s is declared twice", name);
            return NULL;
        }
    tir_type t = {.dtype = dtype, .rank = rank};
    char what[160];
    snprintf(what, sizeof what, "parameter %%%s", name);
    for (int i = 0; i < rank; i++)
        if (!(t.dims[i] = parse_dim(b, dims[i], what))) return NULL;
    tir_value *v = tir_func_add_param(b->f, name, &t, (tir_loc){0, 0});
    if (!v) bfail(b, TIR_ERR_OOM, "out of memory");
    return v;
}

/* converts the public attributes into the module arena (dims parsed from text) */
static tir_attr_value *convert_attrs(tir_builder *b, const char *op, int n, const tir_attr *attrs) {
    tir_attr_value *av = tir_arena_alloc(b->m->arena, (size_t)(n > 0 ? n : 1) * sizeof *av);
    if (!av) {
        bfail(b, TIR_ERR_OOM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const tir_attr *a = &attrs[i];
        av[i].name = a->name;
        av[i].kind = a->kind;
        switch (a->kind) {
        case TIR_ATTR_INT: av[i].u.i = a->u.i; break;
        case TIR_ATTR_FLOAT: av[i].u.f = a->u.f; break;
        case TIR_ATTR_BOOL: av[i].u.b = a->u.b; break;
        case TIR_ATTR_STR: av[i].u.s = a->u.s; break;
        case TIR_ATTR_DTYPE: av[i].u.dtype = a->u.dtype; break;
        case TIR_ATTR_INTS:
            if (a->u.ints.n < 0 || (a->u.ints.n && !a->u.ints.v)) goto bad;
            av[i].u.ints.n = a->u.ints.n;
            av[i].u.ints.v = a->u.ints.v;
            break;
        case TIR_ATTR_SHAPE: {
            if (a->u.shape.n < 0 || (a->u.shape.n && !a->u.shape.v)) goto bad;
            const tir_dim **dims =
                tir_arena_alloc(b->m->arena, (size_t)(a->u.shape.n + 1) * sizeof *dims);
            if (!dims) {
                bfail(b, TIR_ERR_OOM, "out of memory");
                return NULL;
            }
            char what[160];
            snprintf(what, sizeof what, "%s: attribute %s", op, a->name ? a->name : "?");
            for (int k = 0; k < a->u.shape.n; k++)
                if (!(dims[k] = parse_dim(b, a->u.shape.v[k], what))) return NULL;
            av[i].u.shape.n = a->u.shape.n;
            av[i].u.shape.v = dims;
            break;
        }
        default: goto bad;
        }
        continue;
    bad:
        bfail(b, TIR_ERR_INVALID, "%s: malformed attribute %s", op, a->name ? a->name : "?");
        return NULL;
    }
    return av;
}

static bool check_operands(tir_builder *b, const char *what, int nin, tir_value *const *in) {
    if (b->ib.failed) return false;
    if (nin < 0 || (nin && !in)) {
        bfail(b, TIR_ERR_INVALID, "%s: bad operand list", what);
        return false;
    }
    for (int i = 0; i < nin; i++)
        if (!in[i]) {
            bfail(b, TIR_ERR_INVALID, "%s: operand %d is NULL", what, i);
            return false;
        }
    return true;
}

/* appends the op; returns it or NULL with the builder failed */
static tir_op *build(tir_builder *b, const char *opname, int nin, tir_value *const *in,
                     int nattrs, const tir_attr *attrs) {
    if (!b || b->ib.failed) return NULL;
    tir_opcode code;
    if (!opname || !tir_op_lookup(opname, strlen(opname), &code)) {
        bfail(b, TIR_ERR_INVALID, "unknown op \"%s\"", opname ? opname : "(null)");
        return NULL;
    }
    if (code == TIR_OP_CALL) {
        bfail(b, TIR_ERR_INVALID, "use tir_build_call to call a function");
        return NULL;
    }
    if (!check_operands(b, opname, nin, in)) return NULL;
    if (nattrs < 0 || (nattrs && !attrs)) {
        bfail(b, TIR_ERR_INVALID, "%s: bad attribute list", opname);
        return NULL;
    }
    tir_attr_value *av = convert_attrs(b, opname, nattrs, attrs);
    if (!av) return NULL;
    tir_op *op = tir_func_append_op(b->f, code, nin, in, nattrs, av, NULL, b->ib.loc, &b->diag);
    if (!op) b->ib.failed = true;
    return op;
}

tir_value *tir_build_op(tir_builder *b, const char *op, int nin, tir_value *const *in, int nattrs,
                        const tir_attr *attrs) {
    tir_op *o = build(b, op, nin, in, nattrs, attrs);
    return o && o->nout > 0 ? o->out[0] : NULL;
}

/* returns the number of results written to out (at most max_out), -1 on error */
int tir_build_op_n(tir_builder *b, const char *op, int nin, tir_value *const *in, int nattrs,
                   const tir_attr *attrs, int max_out, tir_value **out) {
    tir_op *o = build(b, op, nin, in, nattrs, attrs);
    if (!o) return -1;
    int n = 0;
    for (; out && n < o->nout && n < max_out; n++) out[n] = o->out[n];
    return n;
}

tir_value *tir_build_call(tir_builder *b, const char *callee, int nin, tir_value *const *in) {
    if (!b || b->ib.failed) return NULL;
    tir_func *g = tir_module_find(b->m, callee);
    if (!g) {
        bfail(b, TIR_ERR_INVALID, "call of unknown function @%s", callee ? callee : "(null)");
        return NULL;
    }
    if (!check_operands(b, "call", nin, in)) return NULL;
    tir_op *op = tir_func_append_op(b->f, TIR_OP_CALL, nin, in, 0, NULL, g, b->ib.loc, &b->diag);
    if (!op) b->ib.failed = true;
    return op && op->nout > 0 ? op->out[0] : NULL;
}

tir_value *tir_build_const(tir_builder *b, double v, tir_dtype dtype) {
    if (!b) return NULL;
    if ((unsigned)dtype >= TIR_DTYPE_COUNT) {
        bfail(b, TIR_ERR_INVALID, "constant of bad dtype %d", (int)dtype);
        return NULL;
    }
    return tir_ib_const(&b->ib, v, dtype);
}

void tir_value_set_name(tir_value *v, const char *name) {
    if (!v || !v->func) return;
    v->name = name && *name ? tir_arena_strdup(v->func->module->arena, name) : NULL;
}

tir_status tir_builder_finish(tir_builder *b, int nres, tir_value *const *res, tir_diag *d) {
    if (!b) return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "no builder");
    tir_status s = TIR_OK;
    if (!b->ib.failed && check_operands(b, "result", nres, res)) {
        tir_type *ret = malloc((size_t)(nres > 0 ? nres : 1) * sizeof *ret);
        if (!ret) bfail(b, TIR_ERR_OOM, "out of memory");
        for (int i = 0; ret && i < nres; i++) {
            if (res[i]->func != b->f) bfail(b, TIR_ERR_INVALID, "result %d is not a value of @%s", i, b->f->name);
            ret[i] = res[i]->type;
        }
        if (!b->ib.failed) {
            tir_func_set_results(b->f, nres, res);
            tir_func_set_ret(b->f, nres, ret);
            if (b->f->nres != nres || b->f->nret != nres) bfail(b, TIR_ERR_OOM, "out of memory");
        }
        free(ret);
        if (!b->ib.failed && (s = tir_verify(b->m, &b->diag)) != TIR_OK) b->ib.failed = true;
    }
    if (b->ib.failed) {
        s = b->diag.status != TIR_OK ? b->diag.status : TIR_ERR_INTERNAL;
        if (d) *d = b->diag;
        /* a half-built function would make the module fail to verify from now on */
        if (b->f) func_remove(b->f);
    } else if (d) {
        memset(d, 0, sizeof *d);
    }
    free(b);
    return s;
}

tir_status tir_define_value_and_grad(tir_module *m, const char *name, const char *of, int nwrt,
                                     const char *const *wrt, tir_diag *d) {
    if (!m) return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "no module");
    tir_diag tmp = {0};
    tir_func *f = tir_func_new_grad_def(m, name, of, nwrt, wrt, (tir_loc){0, 0}, &tmp);
    if (d) *d = tmp;
    return f ? TIR_OK : tmp.status != TIR_OK ? tmp.status : TIR_ERR_INTERNAL;
}
