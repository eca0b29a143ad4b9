/* rewrite.c: the shared machinery of passes that rebuild functions: a pointer map, symbol
 * substitution on dims, cloning ops, inlining a callee's body, and the begin/end of a rebuild.
 * requires: a verified module (types consistent, no recursion).
 * maintains: SSA order, value names within one function, the function's signature.
 * breaks: nothing by itself; old ops become unreferenced arena garbage. */
#include <stdio.h>

#include "rewrite.h"

/* ---------------------------------------------------------------- pointer map */

static size_t hash_ptr(const void *p) {
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static bool vmap_grow(tir_vmap *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    const void **k = calloc(cap, sizeof *k);
    void **v = calloc(cap, sizeof *v);
    if (!k || !v) {
        free(k);
        free(v);
        return false;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = hash_ptr(m->keys[i]) & (cap - 1);
        while (k[j]) j = (j + 1) & (cap - 1);
        k[j] = m->keys[i];
        v[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = k;
    m->vals = v;
    m->cap = cap;
    return true;
}

bool tir_vmap_put(tir_vmap *m, const void *key, void *val) {
    if ((m->n + 1) * 2 > m->cap && !vmap_grow(m)) return false;
    size_t j = hash_ptr(key) & (m->cap - 1);
    while (m->keys[j] && m->keys[j] != key) j = (j + 1) & (m->cap - 1);
    if (!m->keys[j]) m->n++;
    m->keys[j] = key;
    m->vals[j] = val;
    return true;
}

void *tir_vmap_get(const tir_vmap *m, const void *key) {
    if (!m->cap) return NULL;
    size_t j = hash_ptr(key) & (m->cap - 1);
    while (m->keys[j]) {
        if (m->keys[j] == key) return m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

void tir_vmap_free(tir_vmap *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- dims */

static int dsub_find(const tir_dsub *s, const char *name, size_t n) {
    for (int i = 0; i < s->n; i++)
        if (strlen(s->names[i]) == n && memcmp(s->names[i], name, n) == 0) return i;
    return -1;
}

static char *dim_text(const tir_dim *d) {
    char small[128];
    int n = tir_dim_print(d, small, sizeof small);
    if (n < 0) return NULL;
    char *buf = malloc((size_t)n + 1);
    if (!buf) return NULL;
    if ((size_t)n < sizeof small) memcpy(buf, small, (size_t)n + 1);
    else tir_dim_print(d, buf, (size_t)n + 1);
    return buf;
}

static bool is_id0(char ch) { return ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'); }
static bool is_id(char ch) { return is_id0(ch) || (ch >= '0' && ch <= '9'); }

/* The dim API has no structural access, so substitution goes through the canonical text:
 * each mapped symbol token becomes its replacement in parentheses, and the text re-parses into
 * the interned normal form. */
const tir_dim *tir_dsub_apply(tir_context *c, const tir_dim *d, const tir_dsub *s) {
    if (!d || !s || s->n == 0) return d;
    char *src = dim_text(d);
    if (!src) return NULL;
    size_t cap = strlen(src) * 2 + 64, len = 0;
    char *out = malloc(cap);
    bool changed = false;
    const tir_dim *res = NULL;
    if (!out) goto done;
    for (const char *p = src; *p;) {
        const char *piece = p;
        size_t plen = 1;
        char *rep = NULL;
        if (is_id0(*p)) {
            while (is_id(p[plen])) plen++;
            int k = dsub_find(s, p, plen);
            if (k >= 0) {
                rep = dim_text(s->dims[k]);
                if (!rep) goto done;
                if (strlen(rep) == plen && memcmp(rep, p, plen) == 0) {
                    free(rep);
                    rep = NULL;
                }
            }
        }
        size_t need = rep ? strlen(rep) + 2 : plen;
        if (len + need + 1 > cap) {
            cap = (len + need + 1) * 2;
            char *o2 = realloc(out, cap);
            if (!o2) {
                free(rep);
                goto done;
            }
            out = o2;
        }
        if (rep) {
            len += (size_t)sprintf(out + len, "(%s)", rep);
            free(rep);
            changed = true;
        } else {
            memcpy(out + len, piece, plen);
            len += plen;
        }
        p += plen;
    }
    out[len] = 0;
    if (!changed) {
        res = d;
    } else {
        const char *err = NULL;
        res = tir_dim_parse(c, out, len, &err);
    }
done:
    free(src);
    free(out);
    return res;
}

static bool dsub_add(tir_dsub *s, const char *name, const tir_dim *d) {
    if (s->n >= TIR_DSUB_MAX) return false;
    s->names[s->n] = name;
    s->dims[s->n] = d;
    s->n++;
    return true;
}

bool tir_dsub_unify(tir_context *c, tir_dsub *s, const tir_dim *formal, const tir_dim *actual) {
    const char *syms[16];
    int ns = tir_dim_symbols(formal, syms, 16);
    const char *unbound = NULL;
    int nunbound = 0;
    for (int i = 0; i < ns; i++) {
        if (dsub_find(s, syms[i], strlen(syms[i])) >= 0) continue;
        unbound = syms[i];
        nunbound++;
    }
    if (nunbound > 1) {
        /* several unknowns bind only against the very same expression, each to itself
         * (docs/tir.md §8); otherwise wait for another parameter to bind some */
        if (formal != actual) return false;
        for (int i = 0; i < ns; i++)
            if (dsub_find(s, syms[i], strlen(syms[i])) < 0 && !dsub_add(s, syms[i], tir_dim_sym(c, syms[i])))
                return false;
        return true;
    }
    if (!unbound) return false;
    if (formal == tir_dim_sym(c, unbound)) return dsub_add(s, unbound, actual);
    /* formal = a*S + k over the bound symbols: check linearity at S = 0, 1, 2, then solve */
    tir_dsub t = *s;
    if (!dsub_add(&t, unbound, tir_dim_const(c, 0))) return false;
    const tir_dim *f0 = tir_dsub_apply(c, formal, &t);
    t.dims[t.n - 1] = tir_dim_const(c, 1);
    const tir_dim *f1 = tir_dsub_apply(c, formal, &t);
    t.dims[t.n - 1] = tir_dim_const(c, 2);
    const tir_dim *f2 = tir_dsub_apply(c, formal, &t);
    if (!f0 || !f1 || !f2) return false;
    const tir_dim *a = tir_dim_sub(c, f1, f0);
    if (!a || tir_dim_add(c, f0, tir_dim_mul(c, tir_dim_const(c, 2), a)) != f2) return false;
    const tir_dim *num = tir_dim_sub(c, actual, f0);
    if (!num) return false;
    const tir_dim *val = tir_dim_exact_div(c, num, a);
    int64_t nv, av;
    if (!val && tir_dim_is_const(num, &nv) && tir_dim_is_const(a, &av) && av != 0 && nv % av == 0)
        val = tir_dim_const(c, nv / av);
    if (!val) return false;
    t.dims[t.n - 1] = val;
    if (tir_dsub_apply(c, formal, &t) != actual) return false;
    return dsub_add(s, unbound, val);
}

/* ---------------------------------------------------------------- cloning */

tir_op *tir_rw_clone(tir_func *dst, const tir_op *op, tir_value *const *in, const tir_dsub *s,
                     tir_diag *d) {
    tir_module *m = dst->module;
    tir_attr_value *tmp = NULL;
    const tir_attr_value *attrs = op->attrs;
    bool has_shape = false;
    for (int i = 0; i < op->nattrs; i++) has_shape |= op->attrs[i].kind == TIR_ATTR_SHAPE;
    if (s && s->n && has_shape) {
        tmp = malloc(sizeof *tmp * (size_t)op->nattrs);
        if (!tmp) {
            tir_diag_set(d, TIR_ERR_OOM, m, op->loc, "out of memory");
            return NULL;
        }
        for (int i = 0; i < op->nattrs; i++) {
            tmp[i] = op->attrs[i];
            if (op->attrs[i].kind != TIR_ATTR_SHAPE) continue;
            int n = op->attrs[i].u.shape.n;
            const tir_dim **dims = malloc(sizeof *dims * (size_t)(n ? n : 1));
            bool ok = dims != NULL;
            for (int j = 0; ok && j < n; j++) {
                dims[j] = tir_dsub_apply(m->ctx, op->attrs[i].u.shape.v[j], s);
                ok = dims[j] != NULL;
            }
            if (ok) tmp[i] = tir_a_shape(m, op->attrs[i].name, n, dims);
            free(dims);
            if (!ok) {
                free(tmp);
                tir_diag_set(d, TIR_ERR_INTERNAL, m, op->loc,
                             "could not substitute the dims of attribute '%s'", op->attrs[i].name);
                return NULL;
            }
        }
        attrs = tmp;
    }
    tir_op *no = tir_func_append_op(dst, op->code, op->nin, in, op->nattrs, attrs, op->callee,
                                    op->loc, d);
    free(tmp);
    return no;
}

static tir_status inline_rec(tir_func *dst, const tir_func *callee, tir_value *const *args,
                             tir_value **outs, bool keep_names, int depth, tir_diag *d) {
    tir_module *m = dst->module;
    if (tir_func_bodiless(callee))
        return tir_diag_set(d, TIR_ERR_INVALID, m, callee->loc,
                            "call to @%s before its value_and_grad body is built (grad pass)",
                            callee->name);
    if (depth > 64)
        return tir_diag_set(d, TIR_ERR_INVALID, m, callee->loc, "calls nested too deeply at @%s",
                            callee->name);
    /* bind the callee's symbols to the caller's dims; repeat since one parameter's binding can
     * make another's dims solvable (e.g. [N] then [N*H]) */
    tir_dsub s = {0};
    for (bool progress = true; progress;) {
        progress = false;
        for (int i = 0; i < callee->nparams; i++) {
            const tir_type *ft = &callee->params[i]->type, *at = &args[i]->type;
            if (ft->rank != at->rank)
                return tir_diag_set(d, TIR_ERR_TYPE, m, callee->loc,
                                    "argument %d of @%s has rank %d, expected %d", i,
                                    callee->name, at->rank, ft->rank);
            for (int j = 0; j < ft->rank; j++)
                progress |= tir_dsub_unify(m->ctx, &s, ft->dims[j], at->dims[j]);
        }
    }
    tir_vmap map = {0};
    tir_status st = TIR_OK;
    for (int i = 0; i < callee->nparams && st == TIR_OK; i++)
        if (!tir_vmap_put(&map, callee->params[i], args[i])) st = TIR_ERR_OOM;
    for (int k = 0; k < callee->nops && st == TIR_OK; k++) {
        const tir_op *op = callee->ops[k];
        tir_value **in = malloc(sizeof *in * (size_t)(op->nin ? op->nin : 1));
        tir_value **sub = malloc(sizeof *sub * (size_t)(op->nout ? op->nout : 1));
        if (!in || !sub) {
            st = TIR_ERR_OOM;
        } else {
            for (int i = 0; i < op->nin; i++) {
                tir_value *v = tir_vmap_get(&map, op->in[i]);
                in[i] = v ? v : op->in[i];
            }
            if (op->code == TIR_OP_CALL) {
                st = inline_rec(dst, op->callee, in, sub, false, depth + 1, d);
            } else {
                tir_op *no = tir_rw_clone(dst, op, in, &s, d);
                if (!no) st = tir_rw_fail(d);
                else if (no->nout != op->nout)
                    st = tir_diag_set(d, TIR_ERR_INTERNAL, m, op->loc, "clone changed arity");
                for (int i = 0; st == TIR_OK && i < op->nout; i++) {
                    sub[i] = no->out[i];
                    if (keep_names) sub[i]->name = op->out[i]->name;
                }
            }
            for (int i = 0; st == TIR_OK && i < op->nout; i++)
                if (!tir_vmap_put(&map, op->out[i], sub[i])) st = TIR_ERR_OOM;
        }
        free(in);
        free(sub);
    }
    for (int i = 0; i < callee->nres && st == TIR_OK; i++) {
        tir_value *v = tir_vmap_get(&map, callee->results[i]);
        outs[i] = v ? v : callee->results[i];
    }
    tir_vmap_free(&map);
    if (st == TIR_ERR_OOM && (!d || d->status != TIR_ERR_OOM))
        tir_diag_set(d, st, m, callee->loc, "out of memory inlining @%s", callee->name);
    return st;
}

tir_status tir_rw_inline(tir_func *dst, const tir_func *callee, tir_value *const *args,
                         tir_value **outs, bool keep_names, tir_diag *d) {
    return inline_rec(dst, callee, args, outs, keep_names, 0, d);
}

/* ---------------------------------------------------------------- rebuilding a function */

tir_status tir_rw_begin(tir_rw *rw, tir_func *f, tir_diag *d) {
    memset(rw, 0, sizeof *rw);
    rw->f = f;
    rw->d = d;
    rw->nold = f->nops;
    rw->old = malloc(sizeof *rw->old * (size_t)(f->nops ? f->nops : 1));
    if (!rw->old) return tir_diag_set(d, TIR_ERR_OOM, f->module, f->loc, "out of memory");
    if (f->nops) memcpy(rw->old, f->ops, sizeof *rw->old * (size_t)f->nops);
    f->nops = 0;
    return TIR_OK;
}

tir_value *tir_rw_get(const tir_rw *rw, tir_value *v) {
    tir_value *n = tir_vmap_get(&rw->map, v);
    return n ? n : v;
}

tir_status tir_rw_set(tir_rw *rw, tir_value *old, tir_value *nw) {
    if (!tir_vmap_put(&rw->map, old, nw))
        return tir_diag_set(rw->d, TIR_ERR_OOM, rw->f->module, rw->f->loc, "out of memory");
    return TIR_OK;
}

tir_status tir_rw_replace(tir_rw *rw, const tir_op *op, tir_value *const *outs) {
    for (int i = 0; i < op->nout; i++) {
        if (outs[i]->def && !outs[i]->name && outs[i]->func == rw->f) outs[i]->name = op->out[i]->name;
        tir_status st = tir_rw_set(rw, op->out[i], outs[i]);
        if (st != TIR_OK) return st;
    }
    return TIR_OK;
}

tir_status tir_rw_each_func(tir_module *m, bool (*wants)(const tir_func *f),
                            tir_status (*rewrite)(tir_func *f, tir_diag *d), tir_diag *d) {
    tir_diag local;
    if (!d) d = &local;
    memset(d, 0, sizeof *d);
    for (int i = 0; i < m->nfuncs; i++) {
        tir_func *f = m->funcs[i];
        if (tir_func_bodiless(f) || (wants && !wants(f))) continue;
        tir_status st = rewrite(f, d);
        if (st != TIR_OK) return st;
    }
    return TIR_OK;
}

tir_value **tir_rw_operands(const tir_rw *rw, const tir_op *op) {
    tir_value **in = malloc(sizeof *in * (size_t)(op->nin ? op->nin : 1));
    if (!in) return NULL;
    for (int i = 0; i < op->nin; i++) in[i] = tir_rw_get(rw, op->in[i]);
    return in;
}

tir_op *tir_rw_copy(tir_rw *rw, const tir_op *op) {
    tir_value **in = tir_rw_operands(rw, op);
    if (!in) {
        tir_diag_set(rw->d, TIR_ERR_OOM, rw->f->module, op->loc, "out of memory");
        return NULL;
    }
    tir_op *no = tir_rw_clone(rw->f, op, in, NULL, rw->d);
    free(in);
    if (!no) return NULL;
    for (int i = 0; i < no->nout && i < op->nout; i++) {
        no->out[i]->name = op->out[i]->name;
        if (tir_rw_set(rw, op->out[i], no->out[i]) != TIR_OK) return NULL;
    }
    return no;
}

void tir_rw_renumber(tir_func *f) {
    int id = 0;
    for (int i = 0; i < f->nparams; i++) f->params[i]->id = id++;
    for (int k = 0; k < f->nops; k++)
        for (int i = 0; i < f->ops[k]->nout; i++) f->ops[k]->out[i]->id = id++;
    f->nvalues = id;
}

tir_status tir_rw_end(tir_rw *rw, tir_status st) {
    tir_func *f = rw->f;
    if (st == TIR_OK && f->nres > 0) {
        tir_value **res = malloc(sizeof *res * (size_t)f->nres);
        if (!res) {
            st = tir_diag_set(rw->d, TIR_ERR_OOM, f->module, f->loc, "out of memory");
        } else {
            for (int i = 0; i < f->nres; i++) res[i] = tir_rw_get(rw, f->results[i]);
            tir_func_set_results(f, f->nres, res);
            free(res);
        }
    }
    if (st != TIR_OK && rw->old) {
        /* put the old body back: the op array only ever grows, so it still has room */
        if (rw->nold) memcpy(f->ops, rw->old, sizeof *rw->old * (size_t)rw->nold);
        f->nops = rw->nold;
    }
    if (rw->old) tir_rw_renumber(f);
    free(rw->old);
    tir_vmap_free(&rw->map);
    rw->old = NULL;
    return st;
}

static bool name_taken(const tir_func *f, const char *name) {
    for (int i = 0; i < f->nparams; i++)
        if (f->params[i]->name && strcmp(f->params[i]->name, name) == 0) return true;
    for (int k = 0; k < f->nops; k++)
        for (int i = 0; i < f->ops[k]->nout; i++)
            if (f->ops[k]->out[i]->name && strcmp(f->ops[k]->out[i]->name, name) == 0) return true;
    return false;
}

const char *tir_rw_unique_name(tir_func *f, const char *name) {
    if (!name_taken(f, name)) return tir_arena_strdup(f->module->arena, name);
    char buf[256];
    for (int k = 2; k < 100000; k++) {
        snprintf(buf, sizeof buf, "%.200s_%d", name, k);
        if (!name_taken(f, buf)) return tir_arena_strdup(f->module->arena, buf);
    }
    return NULL;
}

/* ---------------------------------------------------------------- kernel names */

bool tir_kernel_names_has(const tir_kernel_names *nm, const char *s) {
    for (int i = 0; i < nm->n; i++)
        if (strcmp(nm->v[i], s) == 0) return true;
    return false;
}

bool tir_kernel_names_add(tir_kernel_names *nm, const char *s) {
    const char **nv = realloc(nm->v, (size_t)(nm->n + 1) * sizeof *nv);
    if (!nv) return false;
    nv[nm->n++] = s;
    nm->v = nv;
    return true;
}

void tir_kernel_names_free(tir_kernel_names *nm) {
    free(nm->v);
    memset(nm, 0, sizeof *nm);
}

bool tir_kernel_names_init(tir_kernel_names *nm, const tir_module *m) {
    memset(nm, 0, sizeof *nm);
    for (int i = 0; i < m->nfuncs; i++)
        for (int k = 0; k < m->funcs[i]->nops; k++) {
            const char *s = tir_attr_str(m->funcs[i]->ops[k], "kernel", NULL);
            if (tir_op_region(m->funcs[i]->ops[k]) && s && !tir_kernel_names_add(nm, s)) {
                tir_kernel_names_free(nm);
                return false;
            }
        }
    return true;
}
