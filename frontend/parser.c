/* parser.c: tokens -> IR, for the whole v0 language (docs/tir.md, DESIGN §3). Implements
 * tir_module_parse and tir_module_parse_file.
 *
 * Two phases, so functions may be called before they are defined: phase 1 reads every function
 * header (creating the function with its params and declared results) and skips bodies; phase 2
 * parses the bodies. IR is built only through ir.h (tir_func_append_op runs shape inference, so
 * type errors come back as diagnostics at the op). The module ends verified.
 *
 * Expressions nest without bound (neg(neg(...)) 50,000 deep is a valid program), so they are
 * parsed with an explicit stack of frames on the heap, never by recursion. Dim expressions do
 * recurse, with a small depth limit and a clean diagnostic past it. */
#include <errno.h>
#include <stdio.h>

#include "frontend.h"

/* ------------------------------------------------------------------ name tables */

/* name -> pointer, open addressing; keys point at arena or source text, which outlive it */
typedef struct name_ent {
    const char *name;
    size_t len;
    void *v;
} name_ent;

typedef struct name_map {
    name_ent *e;
    size_t cap, n;
} name_map;

static uint64_t hash_name(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static void *map_get(const name_map *m, const char *s, size_t n) {
    if (!m->cap) return NULL;
    for (size_t i = hash_name(s, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const name_ent *e = &m->e[i];
        if (!e->name) return NULL;
        if (e->len == n && memcmp(e->name, s, n) == 0) return e->v;
    }
}

static bool map_put(name_map *m, const char *s, size_t n, void *v) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        name_ent *ne = calloc(ncap, sizeof *ne);
        if (!ne) return false;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->e[i].name) continue;
            size_t j = hash_name(m->e[i].name, m->e[i].len) & (ncap - 1);
            while (ne[j].name) j = (j + 1) & (ncap - 1);
            ne[j] = m->e[i];
        }
        free(m->e);
        m->e = ne;
        m->cap = ncap;
    }
    size_t i = hash_name(s, n) & (m->cap - 1);
    while (m->e[i].name) {
        if (m->e[i].len == n && memcmp(m->e[i].name, s, n) == 0) {
            m->e[i].v = v;
            return true;
        }
        i = (i + 1) & (m->cap - 1);
    }
    m->e[i] = (name_ent){s, n, v};
    m->n++;
    return true;
}

static void map_clear(name_map *m) {
    if (m->e) memset(m->e, 0, m->cap * sizeof *m->e);
    m->n = 0;
}

/* ------------------------------------------------------------------ parser state */

typedef struct operand {
    tir_value *v;  /* NULL for a literal */
    tir_loc loc;
    bool is_int;   /* literal written as an integer */
    double val;
} operand;

/* One open call in an expression: `name(` has been read, arguments accumulate. */
typedef struct frame {
    tir_opcode code;
    tir_func *callee;
    tir_loc loc;
    const char *name; /* op name for messages */
    operand *a;
    int na, capa;
    tir_attr_value *at;
    int nat, capat;
    bool need_sep;    /* an argument was just read: ',' or ')' must follow */
    bool after_comma;
} frame;

typedef struct fdecl {
    tir_func *f;
    const tir_token *name;
    bool is_grad;
    int body, body_end; /* token indices: first after '{', the closing '}' */
    const tir_token *of;
    int wrt0, nwrt;     /* token index of the first wrt %name; they sit at wrt0, wrt0+2, ... */
} fdecl;

typedef struct parser {
    tir_context *ctx;
    tir_module *m;
    tir_diag *d;
    tir_token *t;
    int ntok, pos;
    tir_func *f;     /* where ops go: the function, or the fused region being parsed */
    name_map values; /* every %name of the current function, its regions' included (names are
                        unique across both) */
    tir_func *region;  /* the fused region being parsed, NULL outside one */
    name_map rvalues;  /* inside a region: the names it sees (its operands and its own values) */
    name_map funcs;  /* @names seen in phase 1 -> fdecl index + 1 */
    frame *fs;
    int nfs, capfs;
    fdecl *decls;
    int ndecls, capdecls;
} parser;

static tir_status perr(parser *p, tir_status st, tir_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static tir_status perr(parser *p, tir_status st, tir_loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    tir_diag_vset(p->d, st, p->m, loc, fmt, ap);
    va_end(ap);
    return st;
}

static tir_status oom(parser *p) { return perr(p, TIR_ERR_OOM, (tir_loc){0, 0}, "out of memory"); }

/* grow *v (elements of size sz) to hold at least need */
static bool grow(void **v, int *cap, int need, size_t sz) {
    if (need <= *cap) return true;
    int ncap = *cap ? *cap : 8;
    while (ncap < need) {
        if (ncap > INT32_MAX / 2) return false;
        ncap *= 2;
    }
    void *nv = realloc(*v, (size_t)ncap * sz);
    if (!nv) return false;
    *v = nv;
    *cap = ncap;
    return true;
}

static const tir_token *cur(const parser *p) { return &p->t[p->pos]; }
static const tir_token *peek(const parser *p, int k) {
    int i = p->pos + k;
    return &p->t[i < p->ntok ? i : p->ntok - 1];
}
static bool is_kw(const tir_token *t, const char *kw) {
    return t->kind == TIR_TOK_IDENT && t->len == strlen(kw) && memcmp(t->text, kw, t->len) == 0;
}
static void advance_tok(parser *p) {
    if (p->pos < p->ntok - 1) p->pos++;
}

static tir_status unexpected(parser *p, const char *what) {
    char buf[80];
    tir_tok_describe(cur(p), buf, sizeof buf);
    return perr(p, TIR_ERR_PARSE, cur(p)->loc, "expected %s, found %s", what, buf);
}

static tir_status expect(parser *p, tir_tok_kind k, const char *what) {
    if (cur(p)->kind != k) return unexpected(p, what);
    advance_tok(p);
    return TIR_OK;
}

static char *tok_str(parser *p, const tir_token *t) { return tir_arena_strndup(p->m->arena, t->text, t->len); }

/* ------------------------------------------------------------------ value names */

static int clip(size_t n) { return (int)(n > 60 ? 60 : n); }

/* The value %name refers to here. A fused region sees its operands (as its parameters) and
 * its own values, nothing else; outside, a region's values are not visible either. */
static tir_value *lookup(parser *p, const tir_token *t) {
    tir_value *v;
    if (p->region) {
        if ((v = map_get(&p->rvalues, t->text, t->len))) return v;
        if (map_get(&p->values, t->text, t->len))
            perr(p, TIR_ERR_TYPE, t->loc, "%%%.*s is not visible inside the fused region: pass it as an operand of fused",
                 clip(t->len), t->text);
        else
            perr(p, TIR_ERR_TYPE, t->loc, "undefined value %%%.*s", clip(t->len), t->text);
        return NULL;
    }
    if (!(v = map_get(&p->values, t->text, t->len))) {
        perr(p, TIR_ERR_TYPE, t->loc, "undefined value %%%.*s", clip(t->len), t->text);
        return NULL;
    }
    if (v->func != p->f) {
        perr(p, TIR_ERR_TYPE, t->loc, "%%%.*s is defined inside a fused region: use the region's results",
             clip(t->len), t->text);
        return NULL;
    }
    return v;
}

static bool name_taken(const parser *p, const tir_token *t) {
    return map_get(&p->values, t->text, t->len) || (p->region && map_get(&p->rvalues, t->text, t->len));
}

/* ------------------------------------------------------------------ dims and types */

#define MAX_DIM_DEPTH 64

static const tir_dim *dim_expr(parser *p, int depth);

static const tir_dim *dim_atom(parser *p, int depth) {
    const tir_token *t = cur(p);
    if (depth > MAX_DIM_DEPTH) {
        perr(p, TIR_ERR_PARSE, t->loc, "dim expression nested too deeply (more than %d levels)", MAX_DIM_DEPTH);
        return NULL;
    }
    const tir_dim *r = NULL;
    if (t->kind == TIR_TOK_MINUS) {
        advance_tok(p);
        if (cur(p)->kind == TIR_TOK_INT && cur(p)->u == (uint64_t)INT64_MAX + 1) {
            advance_tok(p); /* INT64_MIN, which has no positive counterpart to negate */
            const tir_dim *m = tir_dim_const(p->ctx, INT64_MIN);
            if (!m) oom(p);
            return m;
        }
        const tir_dim *x = dim_atom(p, depth + 1);
        if (!x) return NULL;
        const tir_dim *z = tir_dim_const(p->ctx, 0);
        if (!z) return oom(p), NULL;
        r = tir_dim_sub(p->ctx, z, x);
        if (!r) perr(p, TIR_ERR_PARSE, t->loc, "dim expression overflows int64");
        return r;
    }
    if (t->kind == TIR_TOK_INT) {
        if (t->u > (uint64_t)INT64_MAX) {
            perr(p, TIR_ERR_PARSE, t->loc, "dim %.*s overflows int64", (int)t->len, t->text);
            return NULL;
        }
        r = tir_dim_const(p->ctx, (int64_t)t->u);
    } else if (t->kind == TIR_TOK_IDENT) {
        char *s = tok_str(p, t);
        r = s ? tir_dim_sym(p->ctx, s) : NULL;
    } else if (t->kind == TIR_TOK_LPAREN) {
        advance_tok(p);
        r = dim_expr(p, depth + 1);
        if (!r) return NULL;
        if (cur(p)->kind != TIR_TOK_RPAREN) {
            unexpected(p, "')' in dim expression");
            return NULL;
        }
        advance_tok(p);
        return r;
    } else {
        unexpected(p, "a dim (an integer, a symbol or '(')");
        return NULL;
    }
    if (!r) return oom(p), NULL;
    advance_tok(p);
    return r;
}

static const tir_dim *dim_term(parser *p, int depth) {
    const tir_dim *l = dim_atom(p, depth);
    while (l && (cur(p)->kind == TIR_TOK_STAR || cur(p)->kind == TIR_TOK_SLASH)) {
        const tir_token *op = cur(p);
        advance_tok(p);
        const tir_dim *r = dim_atom(p, depth);
        if (!r) return NULL;
        if (op->kind == TIR_TOK_SLASH) {
            int64_t v;
            if (tir_dim_is_const(r, &v) && v == 0) {
                perr(p, TIR_ERR_PARSE, op->loc, "division by zero in dim expression");
                return NULL;
            }
            l = tir_dim_div(p->ctx, l, r);
        } else if (tir_dim_mul_too_large(l, r)) {
            perr(p, TIR_ERR_PARSE, op->loc,
                 "dim expression too large: a product of sums with more than %d terms",
                 (int)TIR_DIM_MAX_TERMS);
            return NULL;
        } else {
            l = tir_dim_mul(p->ctx, l, r);
        }
        if (!l) perr(p, TIR_ERR_PARSE, op->loc, "dim expression overflows int64");
    }
    return l;
}

static const tir_dim *dim_expr(parser *p, int depth) {
    const tir_dim *l = dim_term(p, depth);
    while (l && (cur(p)->kind == TIR_TOK_PLUS || cur(p)->kind == TIR_TOK_MINUS)) {
        const tir_token *op = cur(p);
        advance_tok(p);
        const tir_dim *r = dim_term(p, depth);
        if (!r) return NULL;
        l = op->kind == TIR_TOK_PLUS ? tir_dim_add(p->ctx, l, r) : tir_dim_sub(p->ctx, l, r);
        if (!l) perr(p, TIR_ERR_PARSE, op->loc, "dim expression overflows int64");
    }
    return l;
}

/* a whole dim, which must not be a negative constant */
static const tir_dim *parse_dim(parser *p) {
    tir_loc loc = cur(p)->loc;
    const tir_dim *d = dim_expr(p, 0);
    int64_t v;
    if (d && tir_dim_is_const(d, &v) && v < 0) {
        perr(p, TIR_ERR_TYPE, loc, "negative dim %lld", (long long)v);
        return NULL;
    }
    return d;
}

static tir_status parse_type(parser *p, tir_type *ty) {
    const tir_token *t = cur(p);
    memset(ty, 0, sizeof *ty);
    if (t->kind != TIR_TOK_IDENT) return unexpected(p, "a type like f32[N, H]");
    if (!tir_dtype_from_name(t->text, t->len, &ty->dtype))
        return perr(p, TIR_ERR_PARSE, t->loc, "unknown dtype '%.*s'", (int)(t->len > 40 ? 40 : t->len), t->text);
    advance_tok(p);
    tir_status st = expect(p, TIR_TOK_LBRACK, "'[' after the dtype (a scalar is f32[])");
    if (st) return st;
    if (cur(p)->kind == TIR_TOK_RBRACK) {
        advance_tok(p);
        return TIR_OK;
    }
    for (;;) {
        if (ty->rank == TIR_MAX_RANK)
            return perr(p, TIR_ERR_TYPE, cur(p)->loc, "rank exceeds the maximum of %d", TIR_MAX_RANK);
        const tir_dim *d = parse_dim(p);
        if (!d) return p->d->status;
        ty->dims[ty->rank++] = d;
        if (cur(p)->kind == TIR_TOK_RBRACK) break;
        if ((st = expect(p, TIR_TOK_COMMA, "',' or ']' in the shape"))) return st;
    }
    advance_tok(p);
    return TIR_OK;
}

static void type_str(const tir_type *t, char *buf, size_t n) {
    if (tir_type_print(t, buf, n) >= (int)n && n > 4) strcpy(buf + n - 4, "...");
}

/* ------------------------------------------------------------------ literals */

static bool is_literal_start(const parser *p) {
    const tir_token *t = cur(p);
    if (t->kind == TIR_TOK_MINUS) t = peek(p, 1);
    return t->kind == TIR_TOK_INT || t->kind == TIR_TOK_FLOAT || is_kw(t, "inf") || is_kw(t, "nan");
}

static tir_status parse_literal(parser *p, operand *o) {
    memset(o, 0, sizeof *o);
    o->loc = cur(p)->loc;
    bool neg = false;
    if (cur(p)->kind == TIR_TOK_MINUS) {
        neg = true;
        advance_tok(p);
    }
    const tir_token *t = cur(p);
    if (t->kind == TIR_TOK_INT) {
        if (!neg && t->u > (uint64_t)INT64_MAX)
            return perr(p, TIR_ERR_PARSE, o->loc, "integer literal %.*s overflows int64", (int)t->len, t->text);
        o->is_int = true;
        o->val = (double)t->u;
    } else if (t->kind == TIR_TOK_FLOAT) {
        o->val = t->f;
    } else if (is_kw(t, "inf")) {
        o->val = INFINITY;
    } else if (is_kw(t, "nan")) {
        o->val = NAN;
    } else {
        return unexpected(p, "a number");
    }
    if (neg) o->val = -o->val;
    advance_tok(p);
    return TIR_OK;
}

/* The dtype a literal at position i takes. Calls take the callee's parameter dtype, which
 * tir_literal_dtype cannot see; the printer makes the same choice. */
static tir_dtype lit_dtype(tir_opcode code, const tir_func *callee, int nin, const tir_value *const *in,
                           int i, bool is_int) {
    if (code == TIR_OP_CALL && callee && i < callee->nparams) return callee->params[i]->type.dtype;
    return tir_literal_dtype(code, nin, in, i, is_int);
}

/* the literal must mean the same number in its dtype, or it is an error, not a silent rounding */
static tir_status check_literal(parser *p, const operand *o, tir_dtype dt) {
    double v = o->val;
    if (dt == TIR_BOOL) {
        if (v != 0 && v != 1) return perr(p, TIR_ERR_TYPE, o->loc, "literal %g is not a bool (0 or 1)", v);
        return TIR_OK;
    }
    if (!tir_dtype_is_int(dt)) return TIR_OK;
    if (!isfinite(v) || v != trunc(v))
        return perr(p, TIR_ERR_TYPE, o->loc, "literal %g is not an integer, but the operand's dtype is %s", v,
                    tir_dtype_name(dt));
    double lo, hi;
    switch (dt) {
    case TIR_I8: lo = -128; hi = 127; break;
    case TIR_U8: lo = 0; hi = 255; break;
    case TIR_I32: lo = -2147483648.0; hi = 2147483647.0; break;
    default: lo = -9223372036854775808.0; hi = 9223372036854775807.0; break;
    }
    if (v < lo || v > hi)
        return perr(p, TIR_ERR_TYPE, o->loc, "literal %.17g is out of range for %s", v, tir_dtype_name(dt));
    return TIR_OK;
}

/* a literal operand becomes full(value=v, shape=[], dtype=dt) */
static tir_value *make_const(parser *p, const operand *o, tir_dtype dt) {
    if (check_literal(p, o, dt)) return NULL;
    tir_attr_value at[3];
    memset(at, 0, sizeof at);
    at[0].name = "value";
    at[0].kind = TIR_ATTR_FLOAT;
    at[0].u.f = o->val;
    at[1].name = "shape";
    at[1].kind = TIR_ATTR_SHAPE;
    at[2].name = "dtype";
    at[2].kind = TIR_ATTR_DTYPE;
    at[2].u.dtype = dt;
    p->d->status = TIR_OK;
    tir_op *op = tir_func_append_op(p->f, TIR_OP_FULL, 0, NULL, 3, at, NULL, o->loc, p->d);
    if (!op || op->nout != 1) {
        if (p->d->status == TIR_OK) perr(p, TIR_ERR_INTERNAL, o->loc, "could not build a constant");
        return NULL;
    }
    return op->out[0];
}

/* ------------------------------------------------------------------ attributes */

/* the kind ops.def's schema gives attribute name of op code, if it names it */
static bool schema_kind(tir_opcode code, const char *name, size_t n, tir_attr_kind *kind) {
    static const struct { const char *s; tir_attr_kind k; } kinds[] = {
        {"int", TIR_ATTR_INT},     {"float", TIR_ATTR_FLOAT}, {"bool", TIR_ATTR_BOOL},
        {"str", TIR_ATTR_STR},     {"dtype", TIR_ATTR_DTYPE}, {"ints", TIR_ATTR_INTS},
        {"shape", TIR_ATTR_SHAPE}, {"dict", TIR_ATTR_DICT},
    };
    const char *s = tir_ops[code].attrs;
    while (s && *s) {
        const char *colon = strchr(s, ':');
        if (!colon) return false;
        const char *end = colon + 1;
        while (*end && *end != ',' && *end != '?') end++;
        if ((size_t)(colon - s) == n && memcmp(s, name, n) == 0) {
            for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
                if (strlen(kinds[i].s) == (size_t)(end - colon - 1) && memcmp(kinds[i].s, colon + 1, (size_t)(end - colon - 1)) == 0) {
                    *kind = kinds[i].k;
                    return true;
                }
            return false;
        }
        while (*end && *end != ',') end++;
        s = *end ? end + 1 : end;
    }
    return false;
}

/* [a, b, ...]: integers (INTS) or dim expressions (SHAPE); the op's schema decides when it
 * names the attribute, else INTS when every element is an integer literal. */
static tir_status parse_list_attr(parser *p, tir_attr_value *a, bool have_kind, tir_attr_kind kind) {
    tir_status st = TIR_OK;
    int64_t *iv = NULL;
    const tir_dim **dv = NULL;
    int n = 0, capi = 0, capd = 0;
    bool all_int = true;
    tir_loc first_dim = {0, 0};
    advance_tok(p); /* '[' */
    if (cur(p)->kind != TIR_TOK_RBRACK) {
        for (;;) {
            if (!grow((void **)&iv, &capi, n + 1, sizeof *iv) || !grow((void **)&dv, &capd, n + 1, sizeof *dv)) {
                st = oom(p);
                goto out;
            }
            const tir_token *t = cur(p);
            bool neg = t->kind == TIR_TOK_MINUS;
            const tir_token *num = neg ? peek(p, 1) : t;
            tir_tok_kind after = peek(p, neg ? 2 : 1)->kind;
            if (num->kind == TIR_TOK_INT && (after == TIR_TOK_COMMA || after == TIR_TOK_RBRACK)) {
                if (num->u > (uint64_t)INT64_MAX + (neg ? 1u : 0u)) {
                    st = perr(p, TIR_ERR_PARSE, t->loc, "integer %.*s overflows int64", (int)num->len, num->text);
                    goto out;
                }
                iv[n] = neg ? (int64_t)(0 - num->u) : (int64_t)num->u;
                dv[n] = NULL;
                p->pos += neg ? 2 : 1;
            } else {
                if (all_int) first_dim = t->loc;
                all_int = false;
                dv[n] = dim_expr(p, 0);
                if (!dv[n]) {
                    st = p->d->status;
                    goto out;
                }
            }
            n++;
            if (cur(p)->kind == TIR_TOK_RBRACK) break;
            if ((st = expect(p, TIR_TOK_COMMA, "',' or ']' in the list"))) goto out;
        }
    }
    advance_tok(p); /* ']' */
    if (!have_kind || (kind != TIR_ATTR_INTS && kind != TIR_ATTR_SHAPE)) kind = all_int ? TIR_ATTR_INTS : TIR_ATTR_SHAPE;
    a->kind = kind;
    if (kind == TIR_ATTR_INTS) {
        if (!all_int) {
            st = perr(p, TIR_ERR_TYPE, first_dim, "attribute '%s' takes a list of integers", a->name);
            goto out;
        }
        int64_t *v = tir_arena_memdup(p->m->arena, iv, (size_t)n * sizeof *iv);
        if (!v) {
            st = oom(p);
            goto out;
        }
        a->u.ints.n = n;
        a->u.ints.v = v;
    } else {
        const tir_dim **v = tir_arena_alloc(p->m->arena, (size_t)(n ? n : 1) * sizeof *v);
        if (!v) {
            st = oom(p);
            goto out;
        }
        /* negative constants stay: reshape's shape may hold one -1; inference judges them */
        for (int i = 0; i < n; i++) {
            if (!dv[i] && !(dv[i] = tir_dim_const(p->ctx, iv[i]))) {
                st = oom(p);
                goto out;
            }
            v[i] = dv[i];
        }
        a->u.shape.n = n;
        a->u.shape.v = v;
    }
out:
    free(iv);
    free(dv);
    return st;
}

/* {key=value, ...} with int, bool and string values (a fused region's schedule=) */
static tir_status parse_dict_attr(parser *p, tir_attr_value *a) {
    tir_attr_value *e = NULL;
    int n = 0, cap = 0;
    tir_status st = TIR_OK;
    advance_tok(p); /* '{' */
    while (cur(p)->kind != TIR_TOK_RBRACE) {
        const tir_token *kt = cur(p);
        if (kt->kind != TIR_TOK_IDENT || peek(p, 1)->kind != TIR_TOK_EQ) {
            st = unexpected(p, "a dict entry 'key=value'");
            goto out;
        }
        for (int i = 0; i < n; i++)
            if (strlen(e[i].name) == kt->len && memcmp(e[i].name, kt->text, kt->len) == 0) {
                st = perr(p, TIR_ERR_PARSE, kt->loc, "attribute '%s': duplicate key '%.*s'", a->name, clip(kt->len),
                          kt->text);
                goto out;
            }
        if (!grow((void **)&e, &cap, n + 1, sizeof *e)) {
            st = oom(p);
            goto out;
        }
        tir_attr_value *x = &e[n];
        memset(x, 0, sizeof *x);
        if (!(x->name = tok_str(p, kt))) {
            st = oom(p);
            goto out;
        }
        p->pos += 2; /* key '=' */
        const tir_token *t = cur(p);
        bool neg = t->kind == TIR_TOK_MINUS;
        const tir_token *num = neg ? peek(p, 1) : t;
        if (num->kind == TIR_TOK_INT) {
            if (num->u > (uint64_t)INT64_MAX + (neg ? 1u : 0u)) {
                st = perr(p, TIR_ERR_PARSE, t->loc, "integer %.*s overflows int64", clip(num->len), num->text);
                goto out;
            }
            x->kind = TIR_ATTR_INT;
            x->u.i = neg ? (int64_t)(0 - num->u) : (int64_t)num->u;
            p->pos += neg ? 2 : 1;
        } else if (is_kw(t, "true") || is_kw(t, "false")) {
            x->kind = TIR_ATTR_BOOL;
            x->u.b = is_kw(t, "true");
            advance_tok(p);
        } else if (t->kind == TIR_TOK_STRING) {
            x->kind = TIR_ATTR_STR;
            if (!(x->u.s = tir_lex_string(t, p->m->arena))) {
                st = oom(p);
                goto out;
            }
            advance_tok(p);
        } else {
            st = perr(p, TIR_ERR_PARSE, t->loc, "attribute '%s': the value of '%s' must be an integer, true/false or a string",
                      a->name, x->name);
            goto out;
        }
        n++;
        if (cur(p)->kind == TIR_TOK_RBRACE) break;
        if ((st = expect(p, TIR_TOK_COMMA, "',' or '}' in the dict"))) goto out;
    }
    advance_tok(p); /* '}' */
    a->kind = TIR_ATTR_DICT;
    a->u.dict.n = n;
    a->u.dict.v = n ? tir_arena_memdup(p->m->arena, e, (size_t)n * sizeof *e) : NULL;
    if (n && !a->u.dict.v) st = oom(p);
out:
    free(e);
    return st;
}

/* name=value, at the name; appended to fr's attributes */
static tir_status parse_attr(parser *p, frame *fr) {
    const tir_token *nt = cur(p);
    for (int i = 0; i < fr->nat; i++)
        if (strlen(fr->at[i].name) == nt->len && memcmp(fr->at[i].name, nt->text, nt->len) == 0)
            return perr(p, TIR_ERR_PARSE, nt->loc, "%s: duplicate attribute '%.*s'", fr->name, (int)nt->len, nt->text);
    if (!grow((void **)&fr->at, &fr->capat, fr->nat + 1, sizeof *fr->at)) return oom(p);
    tir_attr_value a;
    memset(&a, 0, sizeof a);
    if (!(a.name = tok_str(p, nt))) return oom(p);
    tir_attr_kind kind = TIR_ATTR_INT;
    bool have_kind = schema_kind(fr->code, nt->text, nt->len, &kind);
    p->pos += 2; /* name '=' */
    const tir_token *t = cur(p);
    tir_status st;
    if (t->kind == TIR_TOK_LBRACK) {
        if ((st = parse_list_attr(p, &a, have_kind, kind))) return st;
    } else if (t->kind == TIR_TOK_LBRACE) {
        if ((st = parse_dict_attr(p, &a))) return st;
    } else if (is_literal_start(p)) {
        operand o;
        if ((st = parse_literal(p, &o))) return st;
        if (o.is_int && !(have_kind && kind == TIR_ATTR_FLOAT)) {
            a.kind = TIR_ATTR_INT;
            /* exact even past 2^53: the magnitude comes from the token, not the double */
            const tir_token *num = t->kind == TIR_TOK_MINUS ? t + 1 : t;
            a.u.i = t->kind == TIR_TOK_MINUS ? (int64_t)(0 - num->u) : (int64_t)num->u;
        } else {
            a.kind = TIR_ATTR_FLOAT;
            a.u.f = o.val;
        }
    } else if (is_kw(t, "true") || is_kw(t, "false")) {
        a.kind = TIR_ATTR_BOOL;
        a.u.b = is_kw(t, "true");
        advance_tok(p);
    } else if (t->kind == TIR_TOK_STRING) {
        a.kind = TIR_ATTR_STR;
        if (!(a.u.s = tir_lex_string(t, p->m->arena))) return oom(p);
        advance_tok(p);
    } else if (t->kind == TIR_TOK_IDENT) {
        if (!tir_dtype_from_name(t->text, t->len, &a.u.dtype)) {
            if (have_kind && kind == TIR_ATTR_DTYPE)
                return perr(p, TIR_ERR_PARSE, t->loc, "unknown dtype '%.*s'", (int)(t->len > 40 ? 40 : t->len), t->text);
            if (have_kind && kind == TIR_ATTR_STR)
                return perr(p, TIR_ERR_PARSE, t->loc, "attribute '%s' takes a string: write \"%.*s\"", a.name,
                            (int)(t->len > 40 ? 40 : t->len), t->text);
            return perr(p, TIR_ERR_PARSE, t->loc, "bad value for attribute '%s': '%.*s'", a.name,
                        (int)(t->len > 40 ? 40 : t->len), t->text);
        }
        a.kind = TIR_ATTR_DTYPE;
        advance_tok(p);
    } else {
        char what[160];
        snprintf(what, sizeof what, "a value for attribute '%s'", a.name);
        return unexpected(p, what);
    }
    fr->at[fr->nat++] = a;
    return TIR_OK;
}

/* ------------------------------------------------------------------ expressions */

static void frames_free(parser *p) {
    for (int i = 0; i < p->nfs; i++) {
        free(p->fs[i].a);
        free(p->fs[i].at);
    }
    p->nfs = 0;
}

static void pop_frame(parser *p) {
    frame *fr = &p->fs[--p->nfs];
    free(fr->a);
    free(fr->at);
}

/* at `name(` or `call @f(`: open a frame */
static tir_status push_frame(parser *p) {
    const tir_token *t = cur(p);
    if (!grow((void **)&p->fs, &p->capfs, p->nfs + 1, sizeof *p->fs)) return oom(p);
    frame fr;
    memset(&fr, 0, sizeof fr);
    fr.loc = t->loc;
    if (is_kw(t, "call")) {
        advance_tok(p);
        const tir_token *ft = cur(p);
        if (ft->kind != TIR_TOK_FUNC) return unexpected(p, "a function name '@name' after 'call'");
        if (p->region)
            return perr(p, TIR_ERR_TYPE, t->loc, "a fused region cannot call a function (inline it first)");
        intptr_t idx = (intptr_t)map_get(&p->funcs, ft->text, ft->len);
        if (!idx)
            return perr(p, TIR_ERR_TYPE, ft->loc, "call of unknown function @%.*s", (int)ft->len, ft->text);
        fr.code = TIR_OP_CALL;
        fr.callee = p->decls[idx - 1].f;
        fr.name = "call";
        if (!fr.callee)
            return perr(p, TIR_ERR_INTERNAL, ft->loc, "function @%.*s was not created", (int)ft->len, ft->text);
    } else {
        if (t->kind != TIR_TOK_IDENT) return unexpected(p, "an op name");
        if (!tir_op_lookup(t->text, t->len, &fr.code) || fr.code == TIR_OP_CALL)
            return perr(p, TIR_ERR_PARSE, t->loc, "unknown op '%.*s'", (int)(t->len > 40 ? 40 : t->len), t->text);
        if (fr.code == TIR_OP_FUSED)
            return perr(p, TIR_ERR_PARSE, t->loc, "%s",
                        p->region ? "fused regions do not nest"
                                  : "a fused region is a statement of its own: %r = fused(%a, ...) kernel=\"...\" { ... }");
        fr.name = tir_ops[fr.code].name;
    }
    advance_tok(p);
    if (cur(p)->kind != TIR_TOK_LPAREN) {
        char what[96];
        snprintf(what, sizeof what, "'(' after '%s'", fr.name);
        return unexpected(p, what);
    }
    advance_tok(p);
    p->fs[p->nfs++] = fr;
    return TIR_OK;
}

/* ')' read: turn the top frame into an op (constants for its literals first) */
static tir_op *build_frame(parser *p, frame *fr) {
    int first = 0;
    if ((tir_ops[fr->code].flags & TIR_F_VALUE_ATTR) && fr->na > 0) {
        if (fr->a[0].v) {
            perr(p, TIR_ERR_TYPE, fr->a[0].loc, "%s: the value must be a numeric literal", fr->name);
            return NULL;
        }
        for (int i = 0; i < fr->nat; i++)
            if (strcmp(fr->at[i].name, "value") == 0) {
                perr(p, TIR_ERR_PARSE, fr->a[0].loc, "%s: value given both as operand and as attribute", fr->name);
                return NULL;
            }
        if (!grow((void **)&fr->at, &fr->capat, fr->nat + 1, sizeof *fr->at)) return oom(p), NULL;
        memmove(fr->at + 1, fr->at, (size_t)fr->nat * sizeof *fr->at);
        memset(&fr->at[0], 0, sizeof fr->at[0]);
        fr->at[0].name = "value";
        fr->at[0].kind = TIR_ATTR_FLOAT;
        fr->at[0].u.f = fr->a[0].val;
        fr->nat++;
        first = 1;
    }
    int nin = fr->na - first;
    /* fr->a is NULL for ops without operands (iota, full): no pointer arithmetic on it */
    operand *a = nin > 0 ? fr->a + first : NULL;
    size_t nalloc = nin > 0 ? (size_t)nin : 1;
    tir_value **in = malloc(nalloc * sizeof *in);
    tir_dtype *dts = malloc(nalloc * sizeof *dts);
    if (!in || !dts) {
        free(in);
        free(dts);
        return oom(p), NULL;
    }
    for (int i = 0; i < nin; i++) in[i] = a[i].v;
    for (int i = 0; i < nin; i++)
        if (!a[i].v) dts[i] = lit_dtype(fr->code, fr->callee, nin, (const tir_value *const *)in, i, a[i].is_int);
    for (int i = 0; i < nin; i++)
        if (!a[i].v && !(in[i] = make_const(p, &a[i], dts[i]))) {
            free(in);
            free(dts);
            return NULL;
        }
    free(dts);
    p->d->status = TIR_OK;
    tir_op *op = tir_func_append_op(p->f, fr->code, nin, in, fr->nat, fr->at, fr->callee, fr->loc, p->d);
    free(in);
    if (!op && p->d->status == TIR_OK) perr(p, TIR_ERR_INTERNAL, fr->loc, "%s: could not build the op", fr->name);
    return op;
}

/* Parse `op(args)` or `call @f(args)` at the current token, nested calls included, without
 * recursion. Returns the outermost op. */
static tir_op *parse_expr(parser *p) {
    int base = p->nfs;
    if (push_frame(p)) goto fail;
    for (;;) {
        frame *fr = &p->fs[p->nfs - 1];
        const tir_token *t = cur(p);
        bool close = false;
        if (fr->need_sep) {
            if (t->kind == TIR_TOK_COMMA) {
                advance_tok(p);
                fr->need_sep = false;
                fr->after_comma = true;
                continue;
            }
            if (t->kind != TIR_TOK_RPAREN) {
                char what[96];
                snprintf(what, sizeof what, "',' or ')' in the arguments of '%s'", fr->name);
                unexpected(p, what);
                goto fail;
            }
            close = true;
        } else if (t->kind == TIR_TOK_RPAREN && !fr->after_comma) {
            close = true;
        }
        if (close) {
            advance_tok(p);
            tir_op *op = build_frame(p, fr);
            if (!op) goto fail;
            pop_frame(p);
            if (p->nfs == base) return op;
            if (op->nout != 1) {
                perr(p, TIR_ERR_TYPE, op->loc, "%s returns %d values and cannot be nested in an expression",
                     tir_ops[op->code].name, op->nout);
                goto fail;
            }
            fr = &p->fs[p->nfs - 1];
            if (!grow((void **)&fr->a, &fr->capa, fr->na + 1, sizeof *fr->a)) {
                oom(p);
                goto fail;
            }
            fr->a[fr->na++] = (operand){.v = op->out[0], .loc = op->loc};
            fr->need_sep = true;
            continue;
        }
        /* an argument */
        bool is_attr = t->kind == TIR_TOK_IDENT && peek(p, 1)->kind == TIR_TOK_EQ;
        if (is_attr) {
            if (parse_attr(p, fr)) goto fail;
            fr->need_sep = true;
            continue;
        }
        if (fr->nat > 0 &&
            (t->kind == TIR_TOK_VALUE || t->kind == TIR_TOK_IDENT || is_literal_start(p))) {
            perr(p, TIR_ERR_PARSE, t->loc, "%s: operands must come before attributes", fr->name);
            goto fail;
        }
        if (t->kind == TIR_TOK_VALUE) {
            tir_value *v = lookup(p, t);
            if (!v) goto fail;
            if (!grow((void **)&fr->a, &fr->capa, fr->na + 1, sizeof *fr->a)) {
                oom(p);
                goto fail;
            }
            fr->a[fr->na++] = (operand){.v = v, .loc = t->loc};
            advance_tok(p);
            fr->need_sep = true;
        } else if (is_literal_start(p)) {
            operand o;
            if (parse_literal(p, &o)) goto fail;
            if (!grow((void **)&fr->a, &fr->capa, fr->na + 1, sizeof *fr->a)) {
                oom(p);
                goto fail;
            }
            fr->a[fr->na++] = o;
            fr->need_sep = true;
        } else if (t->kind == TIR_TOK_IDENT && (peek(p, 1)->kind == TIR_TOK_LPAREN || is_kw(t, "call"))) {
            fr->need_sep = true; /* the nested op becomes this argument when it closes */
            if (push_frame(p)) goto fail;
            p->fs[p->nfs - 1].need_sep = false;
        } else {
            char what[96];
            snprintf(what, sizeof what, "an operand or attribute of '%s'", fr->name);
            unexpected(p, what);
            goto fail;
        }
    }
fail:
    while (p->nfs > base) pop_frame(p);
    return NULL;
}

/* a single value: %name, a literal (of dtype lit_dt), or an expression with one result */
static tir_value *parse_operand(parser *p, tir_dtype lit_dt, tir_loc *loc) {
    const tir_token *t = cur(p);
    *loc = t->loc;
    if (t->kind == TIR_TOK_VALUE) {
        tir_value *v = lookup(p, t);
        if (v) advance_tok(p);
        return v;
    }
    if (is_literal_start(p)) {
        operand o;
        if (parse_literal(p, &o)) return NULL;
        return make_const(p, &o, lit_dt);
    }
    if (t->kind == TIR_TOK_IDENT && !is_kw(t, "return") && !is_kw(t, "yield")) {
        tir_op *op = parse_expr(p);
        if (!op) return NULL;
        if (op->nout != 1) {
            perr(p, TIR_ERR_TYPE, op->loc, "%s returns %d values; bind them with %%a, %%b = ...",
                 tir_ops[op->code].name, op->nout);
            return NULL;
        }
        return op->out[0];
    }
    unexpected(p, "a value");
    return NULL;
}

/* ------------------------------------------------------------------ statements */

typedef struct lhs_item {
    const tir_token *name;
    bool annotated;
    tir_type type;
    tir_loc type_loc;
} lhs_item;

static tir_status bind(parser *p, const tir_token *nt, tir_value *v) {
    /* a fused region's own values were bound while its statement's names waited for it */
    if (name_taken(p, nt))
        return perr(p, TIR_ERR_TYPE, nt->loc, "redefinition of %%%.*s", clip(nt->len), nt->text);
    char *s = tok_str(p, nt);
    if (!s) return oom(p);
    v->name = s;
    if (!map_put(&p->values, s, nt->len, v)) return oom(p);
    if (p->region && !map_put(&p->rvalues, s, nt->len, v)) return oom(p);
    return TIR_OK;
}

static tir_op *parse_fused(parser *p);

static tir_status parse_assign(parser *p) {
    lhs_item *lhs = NULL;
    int n = 0, cap = 0;
    tir_status st = TIR_OK;
    for (;;) {
        const tir_token *t = cur(p);
        if (t->kind != TIR_TOK_VALUE) {
            st = unexpected(p, "a value name '%name'");
            goto out;
        }
        bool dup = name_taken(p, t);
        for (int i = 0; i < n && !dup; i++)
            dup = lhs[i].name->len == t->len && memcmp(lhs[i].name->text, t->text, t->len) == 0;
        if (dup) {
            st = perr(p, TIR_ERR_TYPE, t->loc, "redefinition of %%%.*s", (int)(t->len > 60 ? 60 : t->len), t->text);
            goto out;
        }
        if (!grow((void **)&lhs, &cap, n + 1, sizeof *lhs)) {
            st = oom(p);
            goto out;
        }
        lhs_item *it = &lhs[n++];
        memset(it, 0, sizeof *it);
        it->name = t;
        advance_tok(p);
        if (cur(p)->kind == TIR_TOK_COLON) {
            advance_tok(p);
            it->annotated = true;
            it->type_loc = cur(p)->loc;
            if ((st = parse_type(p, &it->type))) goto out;
        }
        if (cur(p)->kind == TIR_TOK_EQ) break;
        if ((st = expect(p, TIR_TOK_COMMA, "',' or '=' after the value name"))) goto out;
    }
    advance_tok(p); /* '=' */
    if (cur(p)->kind != TIR_TOK_IDENT || is_kw(cur(p), "return") || is_kw(cur(p), "yield")) {
        st = unexpected(p, "an op after '='");
        goto out;
    }
    tir_op *op = is_kw(cur(p), "fused") && peek(p, 1)->kind == TIR_TOK_LPAREN && !p->region ? parse_fused(p)
                                                                                               : parse_expr(p);
    if (!op) {
        st = p->d->status;
        goto out;
    }
    if (op->nout != n) {
        st = perr(p, TIR_ERR_TYPE, lhs[0].name->loc, "%s returns %d value%s, but %d name%s bound",
                  tir_ops[op->code].name, op->nout, op->nout == 1 ? "" : "s", n, n == 1 ? " is" : "s are");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        tir_value *v = op->out[i];
        if (lhs[i].annotated && !tir_type_equal(&lhs[i].type, &v->type)) {
            char want[256], got[256];
            type_str(&lhs[i].type, want, sizeof want);
            type_str(&v->type, got, sizeof got);
            st = perr(p, TIR_ERR_TYPE, lhs[i].type_loc, "%%%.*s is annotated %s, but its type is %s",
                      (int)(lhs[i].name->len > 60 ? 60 : lhs[i].name->len), lhs[i].name->text, want, got);
            goto out;
        }
        if ((st = bind(p, lhs[i].name, v))) goto out;
    }
out:
    free(lhs);
    return st;
}

static tir_status parse_return(parser *p) {
    tir_func *f = p->f;
    const tir_token *rt = cur(p);
    advance_tok(p);
    tir_value **res = NULL;
    tir_loc *locs = NULL;
    int n = 0, cap = 0, capl = 0;
    tir_status st = TIR_OK;
    for (;;) {
        if (!grow((void **)&res, &cap, n + 1, sizeof *res) || !grow((void **)&locs, &capl, n + 1, sizeof *locs)) {
            st = oom(p);
            goto out;
        }
        tir_dtype dt = n < f->nret ? f->ret[n].dtype : TIR_F32;
        if (!(res[n] = parse_operand(p, dt, &locs[n]))) {
            st = p->d->status;
            goto out;
        }
        n++;
        if (cur(p)->kind != TIR_TOK_COMMA) break;
        advance_tok(p);
    }
    if (n != f->nret) {
        st = perr(p, TIR_ERR_TYPE, rt->loc, "@%s returns %d value%s, but its signature declares %d", f->name, n,
                  n == 1 ? "" : "s", f->nret);
        goto out;
    }
    for (int i = 0; i < n; i++)
        if (!tir_type_equal(&res[i]->type, &f->ret[i])) {
            char want[256], got[256];
            type_str(&f->ret[i], want, sizeof want);
            type_str(&res[i]->type, got, sizeof got);
            st = perr(p, TIR_ERR_TYPE, locs[i], "return value %d has type %s, but @%s declares %s", i + 1, got,
                      f->name, want);
            goto out;
        }
    tir_func_set_results(f, n, res);
    if (f->nres != n) st = oom(p);
out:
    free(res);
    free(locs);
    return st;
}

/* yield %a, ... at 'yield': the region's results, whose types are the fused op's */
static tir_status parse_yield(parser *p) {
    tir_func *r = p->region;
    advance_tok(p);
    tir_value **res = NULL;
    tir_type *types = NULL;
    int n = 0, cap = 0, capt = 0;
    tir_status st = TIR_OK;
    for (;;) {
        if (is_literal_start(p)) {
            st = perr(p, TIR_ERR_PARSE, cur(p)->loc, "yield a value, not a literal (bind it first: %%c = full(...))");
            goto out;
        }
        if (!grow((void **)&res, &cap, n + 1, sizeof *res) || !grow((void **)&types, &capt, n + 1, sizeof *types)) {
            st = oom(p);
            goto out;
        }
        tir_loc loc;
        if (!(res[n] = parse_operand(p, TIR_F32, &loc))) {
            st = p->d->status;
            goto out;
        }
        types[n] = res[n]->type;
        n++;
        if (cur(p)->kind != TIR_TOK_COMMA) break;
        advance_tok(p);
    }
    tir_func_set_results(r, n, res);
    tir_func_set_ret(r, n, types);
    if (r->nres != n || r->nret != n) st = oom(p);
out:
    free(res);
    free(types);
    return st;
}

/* `fused(%a, ...) attr=value ... { statements yield %r, ... }` at 'fused'. The operands are
 * value names, each once; inside, they name the region's parameters. */
static tir_op *parse_fused(parser *p) {
    const tir_token *ft = cur(p);
    tir_func *outer = p->f;
    tir_value **in = NULL;
    const tir_token **names = NULL;
    int nin = 0, capin = 0, capn = 0;
    frame fr;
    memset(&fr, 0, sizeof fr);
    fr.code = TIR_OP_FUSED;
    fr.name = "fused";
    fr.loc = ft->loc;
    tir_op *op = NULL;
    p->pos += 2; /* 'fused' '(' */
    while (cur(p)->kind != TIR_TOK_RPAREN) {
        const tir_token *t = cur(p);
        if (t->kind != TIR_TOK_VALUE) {
            unexpected(p, "a value name '%name' (the operands of fused are names, not literals or expressions)");
            goto out;
        }
        for (int i = 0; i < nin; i++)
            if (names[i]->len == t->len && memcmp(names[i]->text, t->text, t->len) == 0) {
                perr(p, TIR_ERR_PARSE, t->loc, "%%%.*s is passed to fused twice", clip(t->len), t->text);
                goto out;
            }
        if (!grow((void **)&in, &capin, nin + 1, sizeof *in) || !grow((void **)&names, &capn, nin + 1, sizeof *names)) {
            oom(p);
            goto out;
        }
        if (!(in[nin] = lookup(p, t))) goto out;
        names[nin++] = t;
        advance_tok(p);
        if (cur(p)->kind == TIR_TOK_RPAREN) break;
        if (expect(p, TIR_TOK_COMMA, "',' or ')' in the operands of fused")) goto out;
    }
    advance_tok(p); /* ')' */
    while (cur(p)->kind == TIR_TOK_IDENT && peek(p, 1)->kind == TIR_TOK_EQ)
        if (parse_attr(p, &fr)) goto out;
    if (cur(p)->kind != TIR_TOK_LBRACE) {
        unexpected(p, "an attribute 'name=value' or '{' to open the fused region");
        goto out;
    }
    advance_tok(p);
    const char *kernel = NULL;
    for (int i = 0; i < fr.nat; i++)
        if (strcmp(fr.at[i].name, "kernel") == 0 && fr.at[i].kind == TIR_ATTR_STR) kernel = fr.at[i].u.s;
    tir_func *r = tir_region_new(outer, kernel, ft->loc);
    if (!r) {
        oom(p);
        goto out;
    }
    map_clear(&p->rvalues);
    for (int i = 0; i < nin; i++) {
        char *nm = tok_str(p, names[i]);
        tir_value *v = nm ? tir_func_add_param(r, nm, &in[i]->type, names[i]->loc) : NULL;
        if (!v || !map_put(&p->rvalues, nm, names[i]->len, v)) {
            oom(p);
            goto out;
        }
    }
    p->f = r;
    p->region = r;
    for (;;) {
        const tir_token *t = cur(p);
        if (is_kw(t, "yield")) {
            if (parse_yield(p)) goto out;
            if (cur(p)->kind != TIR_TOK_RBRACE) {
                unexpected(p, "'}' after yield (yield ends the fused region)");
                goto out;
            }
            advance_tok(p);
            break;
        }
        if (t->kind == TIR_TOK_VALUE) {
            if (parse_assign(p)) goto out;
        } else if (is_kw(t, "return")) {
            perr(p, TIR_ERR_PARSE, t->loc, "a fused region ends with yield, not return");
            goto out;
        } else if (t->kind == TIR_TOK_RBRACE) {
            perr(p, TIR_ERR_PARSE, t->loc, "the fused region has no yield");
            goto out;
        } else {
            unexpected(p, "a statement ('%name = ...' or 'yield') in the fused region");
            goto out;
        }
    }
    p->f = outer;
    p->region = NULL;
    p->d->status = TIR_OK;
    op = tir_func_append_op(outer, TIR_OP_FUSED, nin, in, fr.nat, fr.at, r, ft->loc, p->d);
    if (!op && p->d->status == TIR_OK) perr(p, TIR_ERR_INTERNAL, ft->loc, "fused: could not build the op");
out:
    p->f = outer;
    p->region = NULL;
    free(in);
    free(names);
    free(fr.a);
    free(fr.at);
    return op;
}

static tir_status parse_body(parser *p, const fdecl *fd) {
    tir_func *f = fd->f;
    p->f = f;
    map_clear(&p->values);
    for (int i = 0; i < f->nparams; i++) {
        tir_value *v = f->params[i];
        if (v->name && !map_put(&p->values, v->name, strlen(v->name), v)) return oom(p);
    }
    p->pos = fd->body;
    bool returned = false;
    tir_status st;
    for (;;) {
        const tir_token *t = cur(p);
        if (t->kind == TIR_TOK_RBRACE) {
            if (!returned) return perr(p, TIR_ERR_PARSE, t->loc, "@%s has no return statement", f->name);
            break;
        }
        if (returned) return perr(p, TIR_ERR_PARSE, t->loc, "statement after return (return must end the body)");
        if (is_kw(t, "yield")) return perr(p, TIR_ERR_PARSE, t->loc, "yield outside a fused region");
        if (is_kw(t, "return")) {
            if ((st = parse_return(p))) return st;
            returned = true;
        } else if (t->kind == TIR_TOK_VALUE) {
            if ((st = parse_assign(p))) return st;
        } else {
            return unexpected(p, "a statement ('%name = ...' or 'return') or '}'");
        }
    }
    return TIR_OK;
}

/* ------------------------------------------------------------------ headers (phase 1) */

static tir_status parse_params(parser *p, tir_func *f) {
    tir_status st = expect(p, TIR_TOK_LPAREN, "'(' to open the parameter list");
    if (st) return st;
    map_clear(&p->values);
    if (cur(p)->kind == TIR_TOK_RPAREN) {
        advance_tok(p);
        return TIR_OK;
    }
    for (;;) {
        const tir_token *nt = cur(p);
        if (nt->kind != TIR_TOK_VALUE) return unexpected(p, "a parameter '%name: type'");
        if (map_get(&p->values, nt->text, nt->len))
            return perr(p, TIR_ERR_TYPE, nt->loc, "duplicate parameter %%%.*s", (int)(nt->len > 60 ? 60 : nt->len), nt->text);
        advance_tok(p);
        if ((st = expect(p, TIR_TOK_COLON, "':' and the parameter's type"))) return st;
        tir_type ty;
        if ((st = parse_type(p, &ty))) return st;
        char *name = tok_str(p, nt);
        if (!name) return oom(p);
        tir_value *v = tir_func_add_param(f, name, &ty, nt->loc);
        if (!v) return oom(p);
        if (!v->name) v->name = name;
        if (!map_put(&p->values, name, nt->len, v)) return oom(p);
        if (cur(p)->kind == TIR_TOK_RPAREN) break;
        if ((st = expect(p, TIR_TOK_COMMA, "',' or ')' in the parameter list"))) return st;
    }
    advance_tok(p);
    return TIR_OK;
}

static tir_status parse_rets(parser *p, tir_func *f) {
    tir_status st = expect(p, TIR_TOK_ARROW, "'->' and the result type");
    if (st) return st;
    tir_type *ret = NULL;
    int n = 0, cap = 0;
    if (cur(p)->kind == TIR_TOK_LPAREN) {
        advance_tok(p);
        if (cur(p)->kind == TIR_TOK_RPAREN)
            return perr(p, TIR_ERR_PARSE, cur(p)->loc, "a function returns at least one value");
        for (;;) {
            if (!grow((void **)&ret, &cap, n + 1, sizeof *ret)) {
                st = oom(p);
                goto out;
            }
            if ((st = parse_type(p, &ret[n]))) goto out;
            n++;
            if (cur(p)->kind == TIR_TOK_RPAREN) break;
            if ((st = expect(p, TIR_TOK_COMMA, "',' or ')' in the result types"))) goto out;
        }
        advance_tok(p);
    } else {
        if (!grow((void **)&ret, &cap, 1, sizeof *ret)) return oom(p);
        if ((st = parse_type(p, &ret[0]))) goto out;
        n = 1;
    }
    tir_func_set_ret(f, n, ret);
    if (f->nret != n) st = oom(p);
out:
    free(ret);
    return st;
}

/* `= value_and_grad(@of, wrt=[%a, %b])`, recorded; built once every header is known */
static tir_status parse_grad_header(parser *p, fdecl *fd) {
    advance_tok(p); /* '=' */
    if (!is_kw(cur(p), "value_and_grad")) return unexpected(p, "'value_and_grad'");
    advance_tok(p);
    tir_status st = expect(p, TIR_TOK_LPAREN, "'(' after value_and_grad");
    if (st) return st;
    if (cur(p)->kind != TIR_TOK_FUNC) return unexpected(p, "the function to differentiate '@name'");
    fd->of = cur(p);
    advance_tok(p);
    if ((st = expect(p, TIR_TOK_COMMA, "',' and wrt=[...]"))) return st;
    if (!is_kw(cur(p), "wrt")) return unexpected(p, "wrt=[...]");
    advance_tok(p);
    if ((st = expect(p, TIR_TOK_EQ, "'=' after wrt"))) return st;
    if ((st = expect(p, TIR_TOK_LBRACK, "'[' to open the wrt list"))) return st;
    fd->wrt0 = p->pos;
    if (cur(p)->kind != TIR_TOK_RBRACK) {
        for (;;) {
            if (cur(p)->kind != TIR_TOK_VALUE) return unexpected(p, "a parameter name '%name'");
            fd->nwrt++;
            advance_tok(p);
            if (cur(p)->kind == TIR_TOK_RBRACK) break;
            if ((st = expect(p, TIR_TOK_COMMA, "',' or ']' in the wrt list"))) return st;
        }
    }
    advance_tok(p);
    return expect(p, TIR_TOK_RPAREN, "')' to close value_and_grad");
}

/* skip a body to its '}'; a body left open runs into the next `func @` or the end */
static tir_status skip_body(parser *p, fdecl *fd, const tir_token *open) {
    fd->body = p->pos;
    int depth = 1;
    for (;;) {
        const tir_token *t = cur(p);
        if (t->kind == TIR_TOK_EOF || (is_kw(t, "func") && peek(p, 1)->kind == TIR_TOK_FUNC))
            return perr(p, TIR_ERR_PARSE, open->loc, "unterminated body of @%s: missing '}'", fd->f->name);
        if (t->kind == TIR_TOK_LBRACE) depth++;
        if (t->kind == TIR_TOK_RBRACE && --depth == 0) break;
        advance_tok(p);
    }
    fd->body_end = p->pos;
    advance_tok(p);
    return TIR_OK;
}

static tir_status parse_headers(parser *p) {
    tir_status st;
    while (cur(p)->kind != TIR_TOK_EOF) {
        if (!is_kw(cur(p), "func")) return unexpected(p, "'func'");
        advance_tok(p);
        const tir_token *nt = cur(p);
        if (nt->kind != TIR_TOK_FUNC) return unexpected(p, "a function name '@name'");
        if (map_get(&p->funcs, nt->text, nt->len))
            return perr(p, TIR_ERR_TYPE, nt->loc, "redefinition of function @%.*s", (int)(nt->len > 60 ? 60 : nt->len), nt->text);
        if (!grow((void **)&p->decls, &p->capdecls, p->ndecls + 1, sizeof *p->decls)) return oom(p);
        fdecl *fd = &p->decls[p->ndecls++];
        memset(fd, 0, sizeof *fd);
        fd->name = nt;
        if (!map_put(&p->funcs, nt->text, nt->len, (void *)(intptr_t)p->ndecls)) return oom(p);
        advance_tok(p);
        if (cur(p)->kind == TIR_TOK_EQ) {
            fd->is_grad = true;
            if ((st = parse_grad_header(p, fd))) return st;
            continue;
        }
        char *name = tok_str(p, nt);
        if (!name) return oom(p);
        p->d->status = TIR_OK;
        fd->f = tir_func_new(p->m, name, nt->loc, p->d);
        if (!fd->f) return p->d->status ? p->d->status : oom(p);
        if ((st = parse_params(p, fd->f))) return st;
        if ((st = parse_rets(p, fd->f))) return st;
        const tir_token *open = cur(p);
        if ((st = expect(p, TIR_TOK_LBRACE, "'{' to open the function body"))) return st;
        if ((st = skip_body(p, fd, open))) return st;
    }
    return TIR_OK;
}

static tir_status build_grad_defs(parser *p) {
    for (int k = 0; k < p->ndecls; k++) {
        fdecl *fd = &p->decls[k];
        if (!fd->is_grad) continue;
        const tir_token *ot = fd->of;
        intptr_t oi = (intptr_t)map_get(&p->funcs, ot->text, ot->len);
        if (!oi)
            return perr(p, TIR_ERR_TYPE, ot->loc, "value_and_grad of unknown function @%.*s", (int)(ot->len > 60 ? 60 : ot->len), ot->text);
        tir_func *of = p->decls[oi - 1].f;
        if (!of || p->decls[oi - 1].is_grad)
            return perr(p, TIR_ERR_TYPE, ot->loc, "value_and_grad of @%.*s, which is itself a value_and_grad definition",
                        (int)(ot->len > 60 ? 60 : ot->len), ot->text);
        const char **wrt = tir_arena_alloc(p->m->arena, (size_t)(fd->nwrt ? fd->nwrt : 1) * sizeof *wrt);
        if (!wrt) return oom(p);
        for (int i = 0; i < fd->nwrt; i++) {
            const tir_token *wt = &p->t[fd->wrt0 + 2 * i];
            int pi = -1;
            for (int j = 0; j < of->nparams && pi < 0; j++)
                if (of->params[j]->name && strlen(of->params[j]->name) == wt->len &&
                    memcmp(of->params[j]->name, wt->text, wt->len) == 0)
                    pi = j;
            if (pi < 0)
                return perr(p, TIR_ERR_TYPE, wt->loc, "@%s has no parameter %%%.*s", of->name,
                            (int)(wt->len > 60 ? 60 : wt->len), wt->text);
            for (int j = 0; j < i; j++)
                if (strcmp(wrt[j], of->params[pi]->name) == 0)
                    return perr(p, TIR_ERR_TYPE, wt->loc, "%%%s appears twice in wrt", wrt[j]);
            if (!tir_dtype_is_float(of->params[pi]->type.dtype))
                return perr(p, TIR_ERR_TYPE, wt->loc, "cannot differentiate with respect to %%%s: %s is not a float dtype",
                            of->params[pi]->name, tir_dtype_name(of->params[pi]->type.dtype));
            wrt[i] = of->params[pi]->name;
        }
        char *name = tok_str(p, fd->name);
        if (!name) return oom(p);
        p->d->status = TIR_OK;
        fd->f = tir_func_new_grad_def(p->m, name, of->name, fd->nwrt, wrt, fd->name->loc, p->d);
        if (!fd->f) return p->d->status ? p->d->status : oom(p);
    }
    /* functions were created headers first, value_and_grad definitions after; restore the
     * source order so the module prints as written */
    if (p->m->nfuncs == p->ndecls)
        for (int k = 0; k < p->ndecls; k++) p->m->funcs[k] = p->decls[k].f;
    return TIR_OK;
}

/* ------------------------------------------------------------------ entry points */

tir_status tir_frontend_parse(tir_context *ctx, const char *src, size_t len, const char *filename,
                              tir_module **out, tir_diag *user_d) {
    tir_diag local;
    tir_diag *d = user_d ? user_d : &local;
    memset(d, 0, sizeof *d);
    if (out) *out = NULL;
    if (!ctx || !src || !out)
        return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "tir_module_parse: NULL argument");
    tir_module *m = tir_module_new(ctx);
    if (!m) return tir_diag_set(d, TIR_ERR_OOM, NULL, (tir_loc){0, 0}, "out of memory");
    parser P;
    memset(&P, 0, sizeof P);
    P.ctx = ctx;
    P.m = m;
    P.d = d;
    tir_tokens toks = {0};
    tir_status st = TIR_OK;
    m->filename = tir_arena_strdup(m->arena, filename ? filename : "<input>");
    char *copy = tir_arena_alloc(m->arena, len + 1);
    if (!m->filename || !copy) {
        st = oom(&P);
        goto done;
    }
    memcpy(copy, src, len);
    m->source = copy;
    if ((st = tir_lex(copy, len, m->filename, &toks, d))) goto done;
    P.t = toks.v;
    P.ntok = toks.n;
    if ((st = parse_headers(&P))) goto done;
    if ((st = build_grad_defs(&P))) goto done;
    for (int k = 0; k < P.ndecls; k++)
        if (!P.decls[k].is_grad && (st = parse_body(&P, &P.decls[k]))) goto done;
    memset(d, 0, sizeof *d);
    st = tir_verify(m, d);
done:
    frames_free(&P);
    free(P.fs);
    free(P.decls);
    free(P.values.e);
    free(P.rvalues.e);
    free(P.funcs.e);
    tir_tokens_free(&toks);
    if (st != TIR_OK) {
        if (d->status == TIR_OK) tir_diag_set(d, st, NULL, (tir_loc){0, 0}, "%s", tir_status_name(st));
        tir_module_free(m);
        return st;
    }
    *out = m;
    return TIR_OK;
}

tir_status tir_module_parse(tir_context *ctx, const char *src, const char *filename, tir_module **out,
                            tir_diag *d) {
    if (!src) {
        if (out) *out = NULL;
        return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "tir_module_parse: NULL source");
    }
    return tir_frontend_parse(ctx, src, strlen(src), filename, out, d);
}

tir_status tir_module_parse_file(tir_context *ctx, const char *path, tir_module **out, tir_diag *d) {
    if (out) *out = NULL;
    if (!path) return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "tir_module_parse_file: NULL path");
    FILE *fp = fopen(path, "rb");
    if (!fp) return tir_diag_set_src(d, TIR_ERR_IO, path, NULL, (tir_loc){0, 0}, "cannot open file: %s", strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536) {
            size_t ncap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                fclose(fp);
                return tir_diag_set_src(d, TIR_ERR_OOM, path, NULL, (tir_loc){0, 0}, "out of memory reading the file");
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(fp) ? errno : 0;
    fclose(fp);
    if (err) {
        free(buf);
        return tir_diag_set_src(d, TIR_ERR_IO, path, NULL, (tir_loc){0, 0}, "cannot read file: %s", strerror(err));
    }
    tir_status st = tir_frontend_parse(ctx, buf, n, path, out, d);
    free(buf);
    return st;
}
