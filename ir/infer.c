/* infer.c: the static semantics of every op: operand count, operand dtypes, attributes checked
 * against the op's schema in ops.def, and the result types (shape inference).
 *
 * Table-driven: the op's flags choose the generic checks (dtype classes, equal dtypes of the data
 * operands) and the rule of its class (unary, binary, reduce); a switch handles the ops with a
 * shape rule of their own. docs/tir.md states the same rules in prose; change them together.
 *
 * Dims are interned symbolic expressions, so "equal" below always means pointer-equal: two dims
 * are the same size for every binding of the symbols exactly when their normal forms are one
 * node. Where a rule needs a size to be something (D even, Hq a multiple of Hk) it decides when
 * the dims are constants or structurally related (tir_dim_exact_div); for independent symbols
 * the check is left to when they are bound (the interpreter and the runtime do it). */
#include <stdio.h>

#include "ir.h"

/* ------------------------------------------------------------------ context and messages */

typedef struct ictx {
    tir_module *m;
    tir_context *c;
    tir_opcode code;
    const char *op; /* the op's name, first word of every message */
    int nin;
    tir_value *const *in;
    int nattrs;
    const tir_attr_value *attrs;
    tir_loc loc;
    tir_diag *d;
} ictx;

static tir_status fail(ictx *ic, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static tir_status fail(ictx *ic, const char *fmt, ...) {
    char buf[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return tir_diag_set(ic->d, TIR_ERR_TYPE, ic->m, ic->loc, "%s: %s", ic->op, buf);
}

/* Printed forms for messages, returned by value so several fit in one printf call (the
 * temporaries live until the end of the full expression). */
typedef struct tstr { char s[240]; } tstr;

static tstr ty(const tir_type *t) {
    tstr r;
    tir_type_print(t, r.s, sizeof r.s);
    return r;
}

static tstr dm(const tir_dim *x) {
    tstr r;
    if (x)
        tir_dim_print(x, r.s, sizeof r.s);
    else
        snprintf(r.s, sizeof r.s, "?");
    return r;
}

/* "[a, b, c]"; NULL entries print as the value in neg[] (reshape's -1) */
static tstr dims_str(const tir_dim *const *dims, const int64_t *neg, int n) {
    tstr r;
    size_t k = 0;
    r.s[k++] = '[';
    r.s[k] = 0;
    for (int i = 0; i < n && k < sizeof r.s - 1; i++) {
        char one[120];
        if (dims[i])
            tir_dim_print(dims[i], one, sizeof one);
        else
            snprintf(one, sizeof one, "%lld", (long long)(neg ? neg[i] : -1));
        int w = snprintf(r.s + k, sizeof r.s - k, "%s%s", i ? ", " : "", one);
        if (w < 0) break;
        k += (size_t)w;
        if (k >= sizeof r.s) k = sizeof r.s - 1;
    }
    if (k < sizeof r.s - 1) {
        r.s[k++] = ']';
        r.s[k] = 0;
    }
    return r;
}

static bool is_const(const tir_dim *x, int64_t v) {
    int64_t k;
    return x && tir_dim_is_const(x, &k) && k == v;
}

/* ------------------------------------------------------------------ public helpers */

bool tir_norm_axis(int64_t axis, int rank, int *out) {
    if (rank <= 0 || axis < -(int64_t)rank || axis >= rank) return false;
    if (out) *out = (int)(axis < 0 ? axis + rank : axis);
    return true;
}

bool tir_broadcast_shapes(tir_context *c, const tir_type *a, const tir_type *b, tir_type *out) {
    (void)c;
    tir_type r;
    memset(&r, 0, sizeof r);
    r.dtype = a->dtype;
    r.rank = a->rank > b->rank ? a->rank : b->rank;
    if (r.rank > TIR_MAX_RANK) return false;
    for (int i = 0; i < r.rank; i++) {
        const tir_dim *da = i < a->rank ? a->dims[a->rank - 1 - i] : NULL;
        const tir_dim *db = i < b->rank ? b->dims[b->rank - 1 - i] : NULL;
        const tir_dim *x;
        if (!da)
            x = db;
        else if (!db || da == db || is_const(db, 1))
            x = da;
        else if (is_const(da, 1))
            x = db;
        else
            return false;
        r.dims[r.rank - 1 - i] = x;
    }
    *out = r;
    return true;
}

/* ------------------------------------------------------------------ attributes */

typedef struct sattr {
    char name[40];
    tir_attr_kind kind;
    bool optional;
} sattr;

static const char *kind_name(tir_attr_kind k) {
    if (k == TIR_ATTR_DICT) return "a dict";
    switch (k) {
    case TIR_ATTR_INT: return "an int";
    case TIR_ATTR_FLOAT: return "a float";
    case TIR_ATTR_BOOL: return "a bool";
    case TIR_ATTR_STR: return "a string";
    case TIR_ATTR_DTYPE: return "a dtype";
    case TIR_ATTR_INTS: return "a list of ints";
    case TIR_ATTR_SHAPE: return "a shape";
    }
    return "an unknown kind";
}

/* Parses the attrs column of ops.def ("axes:ints?,keepdim:bool?"). The table is ours, so a
 * malformed schema is a bug in tir, reported as -1. */
static int parse_schema(const char *s, sattr *out, int max) {
    static const struct { const char *n; tir_attr_kind k; } kinds[] = {
        {"int", TIR_ATTR_INT},   {"float", TIR_ATTR_FLOAT}, {"bool", TIR_ATTR_BOOL},
        {"str", TIR_ATTR_STR},   {"dtype", TIR_ATTR_DTYPE}, {"ints", TIR_ATTR_INTS},
        {"shape", TIR_ATTR_SHAPE}, {"dict", TIR_ATTR_DICT},
    };
    int n = 0;
    while (s && *s) {
        const char *colon = strchr(s, ':');
        const char *end = strchr(s, ',');
        if (!end) end = s + strlen(s);
        if (!colon || colon > end || n >= max || (size_t)(colon - s) >= sizeof out[n].name) return -1;
        memcpy(out[n].name, s, (size_t)(colon - s));
        out[n].name[colon - s] = 0;
        const char *k = colon + 1;
        size_t kn = (size_t)(end - k);
        out[n].optional = kn > 0 && k[kn - 1] == '?';
        if (out[n].optional) kn--;
        bool found = false;
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
            if (strlen(kinds[i].n) == kn && memcmp(kinds[i].n, k, kn) == 0) {
                out[n].kind = kinds[i].k;
                found = true;
            }
        if (!found) return -1;
        n++;
        s = *end ? end + 1 : end;
    }
    return n;
}

static bool is_ident(const char *s) {
    if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_')) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

/* a dict holds scalar entries only (ints, bools, strings), each key an identifier, once */
static tir_status check_dict(ictx *ic, const tir_attr_value *a) {
    if (a->u.dict.n < 0 || (a->u.dict.n > 0 && !a->u.dict.v)) return fail(ic, "attribute '%s' has no value", a->name);
    for (int i = 0; i < a->u.dict.n; i++) {
        const tir_attr_value *e = &a->u.dict.v[i];
        if (!is_ident(e->name)) return fail(ic, "attribute '%s': entry %d needs an identifier as its key", a->name, i);
        if (e->kind != TIR_ATTR_INT && e->kind != TIR_ATTR_BOOL && e->kind != TIR_ATTR_STR)
            return fail(ic, "attribute '%s': entry '%s' must be an int, a bool or a string, found %s", a->name,
                        e->name, kind_name(e->kind));
        if (e->kind == TIR_ATTR_STR && !e->u.s) return fail(ic, "attribute '%s': entry '%s' has no value", a->name, e->name);
        for (int j = 0; j < i; j++)
            if (strcmp(a->u.dict.v[j].name, e->name) == 0)
                return fail(ic, "attribute '%s': key '%s' given twice", a->name, e->name);
    }
    return TIR_OK;
}

/* The kind given may differ from the schema's where the text cannot tell them apart: an
 * integer literal for a float, an all-integer list for a shape. */
static bool kind_ok(tir_attr_kind want, tir_attr_kind got) {
    return want == got || (want == TIR_ATTR_FLOAT && got == TIR_ATTR_INT) ||
           (want == TIR_ATTR_SHAPE && got == TIR_ATTR_INTS);
}

static tir_status check_attrs(ictx *ic) {
    sattr schema[16];
    int ns = parse_schema(tir_ops[ic->code].attrs, schema, 16);
    if (ns < 0)
        return tir_diag_set(ic->d, TIR_ERR_INTERNAL, ic->m, ic->loc,
                            "%s: malformed attribute schema in ops.def", ic->op);
    if (ic->nattrs > 0 && !ic->attrs) return fail(ic, "attributes missing");
    for (int i = 0; i < ic->nattrs; i++) {
        const tir_attr_value *a = &ic->attrs[i];
        if (!a->name) return fail(ic, "attribute %d has no name", i);
        int k = -1;
        for (int j = 0; j < ns; j++)
            if (strcmp(schema[j].name, a->name) == 0) k = j;
        if (k < 0) {
            char list[400] = "";
            size_t len = 0;
            for (int j = 0; j < ns && len < sizeof list; j++) {
                int w = snprintf(list + len, sizeof list - len, "%s%s", j ? ", " : "", schema[j].name);
                if (w < 0) break;
                len += (size_t)w;
            }
            if (ns == 0) return fail(ic, "unknown attribute '%s' (%s takes no attributes)", a->name, ic->op);
            return fail(ic, "unknown attribute '%s' (expected one of: %s)", a->name, list);
        }
        for (int j = 0; j < i; j++)
            if (strcmp(ic->attrs[j].name, a->name) == 0)
                return fail(ic, "attribute '%s' given twice", a->name);
        if (!kind_ok(schema[k].kind, a->kind))
            return fail(ic, "attribute '%s' must be %s, found %s", a->name, kind_name(schema[k].kind),
                        kind_name(a->kind));
        if ((a->kind == TIR_ATTR_INTS && a->u.ints.n > 0 && !a->u.ints.v) ||
            (a->kind == TIR_ATTR_SHAPE && a->u.shape.n > 0 && !a->u.shape.v) ||
            (a->kind == TIR_ATTR_INTS && a->u.ints.n < 0) ||
            (a->kind == TIR_ATTR_SHAPE && a->u.shape.n < 0) || (a->kind == TIR_ATTR_STR && !a->u.s))
            return fail(ic, "attribute '%s' has no value", a->name);
        if (a->kind == TIR_ATTR_DTYPE && (unsigned)a->u.dtype >= TIR_DTYPE_COUNT)
            return fail(ic, "attribute '%s' is not a valid dtype", a->name);
        if (a->kind == TIR_ATTR_SHAPE)
            for (int j = 0; j < a->u.shape.n; j++)
                if (!a->u.shape.v[j]) return fail(ic, "attribute '%s' has a missing dim", a->name);
        if (a->kind == TIR_ATTR_DICT) {
            tir_status s = check_dict(ic, a);
            if (s != TIR_OK) return s;
        }
    }
    for (int j = 0; j < ns; j++) {
        if (schema[j].optional) continue;
        bool given = false;
        for (int i = 0; i < ic->nattrs; i++) given |= strcmp(ic->attrs[i].name, schema[j].name) == 0;
        if (!given) return fail(ic, "missing required attribute '%s'", schema[j].name);
    }
    return TIR_OK;
}

static const tir_attr_value *attr(ictx *ic, const char *name) {
    for (int i = 0; i < ic->nattrs; i++)
        if (strcmp(ic->attrs[i].name, name) == 0) return &ic->attrs[i];
    return NULL;
}

static int64_t aint(ictx *ic, const char *name, int64_t dflt) {
    const tir_attr_value *a = attr(ic, name);
    return a ? a->u.i : dflt;
}

static double afloat(ictx *ic, const char *name, double dflt) {
    const tir_attr_value *a = attr(ic, name);
    if (!a) return dflt;
    return a->kind == TIR_ATTR_INT ? (double)a->u.i : a->u.f;
}

static const char *astr(ictx *ic, const char *name, const char *dflt) {
    const tir_attr_value *a = attr(ic, name);
    return a ? a->u.s : dflt;
}

/* A shape attribute (SHAPE or INTS kind) as dims. A negative constant entry becomes a NULL dim
 * with its value in neg[] (reshape's -1), so the caller decides what negatives mean.
 * Returns the count, -1 when absent, -2 after a diagnostic. */
static int ashape(ictx *ic, const char *name, const tir_dim **dims, int64_t *neg) {
    const tir_attr_value *a = attr(ic, name);
    if (!a) return -1;
    int n = a->kind == TIR_ATTR_INTS ? a->u.ints.n : a->u.shape.n;
    if (n > TIR_MAX_RANK) {
        fail(ic, "'%s' has %d dims, more than the maximum rank %d", name, n, TIR_MAX_RANK);
        return -2;
    }
    for (int i = 0; i < n; i++) {
        int64_t v;
        neg[i] = 0;
        if (a->kind == TIR_ATTR_INTS) {
            v = a->u.ints.v[i];
            dims[i] = v < 0 ? NULL : tir_dim_const(ic->c, v);
        } else {
            dims[i] = a->u.shape.v[i];
            if (tir_dim_is_const(dims[i], &v) && v < 0) dims[i] = NULL;
            else v = 0;
        }
        if (!dims[i]) neg[i] = v;
        if (!dims[i] && v >= 0) {
            tir_diag_set(ic->d, TIR_ERR_OOM, ic->m, ic->loc, "%s: out of memory", ic->op);
            return -2;
        }
    }
    return n;
}

/* a shape attribute where every dim must be a size (no -1) */
static int asizes(ictx *ic, const char *name, const tir_dim **dims) {
    int64_t neg[TIR_MAX_RANK];
    int n = ashape(ic, name, dims, neg);
    for (int i = 0; i < n; i++)
        if (!dims[i]) {
            fail(ic, "'%s' dim %d is negative (%lld)", name, i, (long long)neg[i]);
            return -2;
        }
    return n;
}

/* ------------------------------------------------------------------ dim arithmetic with errors */

static const tir_dim *checked(ictx *ic, const tir_dim *r, bool *bad) {
    if (!r && !*bad) {
        *bad = true;
        fail(ic, "a dim overflows int64");
    }
    return r;
}

static const tir_dim *checked_mul(ictx *ic, const tir_dim *a, const tir_dim *b, bool *bad) {
    if (a && b && tir_dim_mul_too_large(a, b) && !*bad) {
        *bad = true;
        fail(ic, "dim expression too large: a product of sums with more than %d terms",
             (int)TIR_DIM_MAX_TERMS);
        return NULL;
    }
    return checked(ic, tir_dim_mul(ic->c, a, b), bad);
}

static const tir_dim *product(ictx *ic, const tir_dim *const *dims, int n, bool *bad) {
    const tir_dim *p = checked(ic, tir_dim_const(ic->c, 1), bad);
    for (int i = 0; i < n && p; i++) p = checked_mul(ic, p, dims[i], bad);
    return p;
}

/* ------------------------------------------------------------------ operand checks */

/* Which operands are "data": their dtype is the op's dtype, they must agree, and the dtype
 * class of the op's flags applies to them. Conditions, indices and targets are not data. */
static bool is_data(tir_opcode code, int i) {
    switch (code) {
    case TIR_OP_WHERE: return i != 0;
    case TIR_OP_TAKE: return i == 0;
    case TIR_OP_SCATTER_ADD: return i != 1;
    case TIR_OP_CROSS_ENTROPY: return i == 0;
    case TIR_OP_CALL:
    case TIR_OP_FUSED: return false;
    default: return true;
    }
}

static bool is_numeric(tir_dtype t) { return tir_dtype_is_float(t) || tir_dtype_is_int(t); }
static bool is_index(tir_dtype t) { return t == TIR_I32 || t == TIR_I64; }

static tir_status check_operands(ictx *ic) {
    const tir_opinfo *info = &tir_ops[ic->code];
    int first = -1;
    for (int i = 0; i < ic->nin; i++) {
        const tir_value *v = ic->in[i];
        if (!v) return fail(ic, "operand %d is missing", i);
        const tir_type *t = &v->type;
        if ((unsigned)t->dtype >= TIR_DTYPE_COUNT || t->rank < 0 || t->rank > TIR_MAX_RANK)
            return fail(ic, "operand %d has a malformed type", i);
        for (int j = 0; j < t->rank; j++)
            if (!t->dims[j]) return fail(ic, "operand %d has a malformed type", i);
        if (!is_data(ic->code, i)) continue;
        if ((info->flags & TIR_F_FLOAT) && !tir_dtype_is_float(t->dtype))
            return fail(ic, "operand %d must be a float tensor, found %s", i, ty(t).s);
        if ((info->flags & (TIR_F_NUMERIC | TIR_F_COMPARE)) && !is_numeric(t->dtype))
            return fail(ic, "operand %d must be a numeric tensor (float or int), found %s", i, ty(t).s);
        if ((info->flags & TIR_F_LOGIC) && t->dtype != TIR_BOOL)
            return fail(ic, "operand %d must be a bool tensor, found %s", i, ty(t).s);
        if (first < 0)
            first = i;
        else if (t->dtype != ic->in[first]->type.dtype)
            return fail(ic, "operand dtypes differ: %s vs %s (no implicit promotion; use cast)",
                        ty(&ic->in[first]->type).s, ty(t).s);
    }
    return TIR_OK;
}

/* ------------------------------------------------------------------ class rules */

static tir_status infer_reduce(ictx *ic, tir_type *out) {
    const tir_type *x = &ic->in[0]->type;
    bool red[TIR_MAX_RANK] = {false};
    const tir_attr_value *axes = attr(ic, "axes");
    if (!axes) {
        if (ic->code == TIR_OP_ARGMAX) {
            if (x->rank != 1)
                return fail(ic, "needs axes=[k] with exactly one axis for %s (the default axis is only "
                                "for rank 1)", ty(x).s);
            red[0] = true;
        } else {
            for (int i = 0; i < x->rank; i++) red[i] = true;
        }
    } else {
        if (ic->code == TIR_OP_ARGMAX && axes->u.ints.n != 1)
            return fail(ic, "needs exactly one axis, found %d", axes->u.ints.n);
        for (int i = 0; i < axes->u.ints.n; i++) {
            int ax;
            if (!tir_norm_axis(axes->u.ints.v[i], x->rank, &ax))
                return fail(ic, "axis %lld out of range for %s", (long long)axes->u.ints.v[i], ty(x).s);
            if (red[ax]) return fail(ic, "axis %lld repeated in axes", (long long)axes->u.ints.v[i]);
            red[ax] = true;
        }
    }
    const tir_attr_value *kd = attr(ic, "keepdim");
    bool keep = kd ? kd->u.b : false;
    *out = *x;
    out->rank = 0;
    for (int i = 0; i < x->rank; i++) {
        if (!red[i])
            out->dims[out->rank++] = x->dims[i];
        else if (keep)
            out->dims[out->rank++] = tir_dim_const(ic->c, 1);
    }
    if (ic->code == TIR_OP_ARGMAX) out->dtype = TIR_I64;
    return TIR_OK;
}

static tir_status infer_reshape(ictx *ic, tir_type *out) {
    const tir_type *x = &ic->in[0]->type;
    const tir_dim *dims[TIR_MAX_RANK];
    int64_t neg[TIR_MAX_RANK];
    int n = ashape(ic, "shape", dims, neg);
    if (n < 0) return ic->d ? ic->d->status : TIR_ERR_TYPE;
    int hole = -1;
    for (int i = 0; i < n; i++) {
        if (dims[i]) continue;
        if (neg[i] != -1)
            return fail(ic, "dim %d of the shape is negative (%lld); only one -1 is allowed", i,
                        (long long)neg[i]);
        if (hole >= 0) return fail(ic, "at most one -1 in the shape %s", dims_str(dims, neg, n).s);
        hole = i;
    }
    bool bad = false;
    const tir_dim *pin = product(ic, x->dims, x->rank, &bad);
    const tir_dim *known[TIR_MAX_RANK] = {NULL};
    int nk = 0;
    for (int i = 0; i < n; i++)
        if (dims[i]) known[nk++] = dims[i];
    const tir_dim *pout = product(ic, known, nk, &bad);
    if (bad) return TIR_ERR_TYPE;
    if (hole >= 0) {
        const tir_dim *q = is_const(pout, 0) ? NULL : tir_dim_exact_div(ic->c, pin, pout);
        if (!q)
            return fail(ic, "%s elements cannot become %s: no whole size for -1", dm(pin).s,
                        dims_str(dims, neg, n).s);
        dims[hole] = q;
    } else if (pin != pout) {
        return fail(ic, "%s elements cannot become %s", dm(pin).s, dims_str(dims, neg, n).s);
    }
    out->dtype = x->dtype;
    out->rank = n;
    for (int i = 0; i < n; i++) out->dims[i] = dims[i];
    return TIR_OK;
}

static tir_status infer_transpose(ictx *ic, tir_type *out) {
    const tir_type *x = &ic->in[0]->type;
    const tir_attr_value *p = attr(ic, "perm");
    bool seen[TIR_MAX_RANK] = {false};
    bool ok = p->u.ints.n == x->rank;
    for (int i = 0; ok && i < x->rank; i++) {
        int64_t k = p->u.ints.v[i];
        ok = k >= 0 && k < x->rank && !seen[k];
        if (ok) seen[k] = true;
    }
    if (!ok) {
        char buf[200] = "[";
        size_t len = 1;
        for (int i = 0; i < p->u.ints.n && len < sizeof buf; i++) {
            int w = snprintf(buf + len, sizeof buf - len, "%s%lld", i ? ", " : "",
                             (long long)p->u.ints.v[i]);
            if (w < 0) break;
            len += (size_t)w;
        }
        if (len < sizeof buf - 1) {
            buf[len++] = ']';
            buf[len] = 0;
        }
        return fail(ic, "perm %s is not a permutation of 0..%d for %s", buf, x->rank - 1, ty(x).s);
    }
    *out = *x;
    for (int i = 0; i < x->rank; i++) out->dims[i] = x->dims[p->u.ints.v[i]];
    return TIR_OK;
}

static tir_status infer_broadcast(ictx *ic, tir_type *out) {
    const tir_type *x = &ic->in[0]->type;
    const tir_dim *dims[TIR_MAX_RANK];
    int n = asizes(ic, "shape", dims);
    if (n < 0) return TIR_ERR_TYPE;
    bool ok = n >= x->rank;
    for (int i = 0; ok && i < x->rank; i++) {
        const tir_dim *a = x->dims[x->rank - 1 - i], *b = dims[n - 1 - i];
        ok = a == b || is_const(a, 1);
    }
    if (!ok) return fail(ic, "cannot broadcast %s to %s", ty(x).s, dims_str(dims, NULL, n).s);
    out->dtype = x->dtype;
    out->rank = n;
    for (int i = 0; i < n; i++) out->dims[i] = dims[i];
    return TIR_OK;
}

/* Python's slice.indices for a constant length */
static int64_t clamp_index(int64_t i, int64_t n) {
    if (i < 0) i = i < -n ? 0 : i + n;
    return i > n ? n : i;
}

/* a slice bound on a symbolic dim n: i itself, or n + i counting from the end */
static const tir_dim *from_end(ictx *ic, const tir_dim *n, int64_t i, bool *bad) {
    if (i >= 0) return checked(ic, tir_dim_const(ic->c, i), bad);
    return checked(ic, tir_dim_sub(ic->c, n, tir_dim_const(ic->c, -i)), bad);
}

static tir_status infer_slice(ictx *ic, tir_type *out) {
    const tir_type *x = &ic->in[0]->type;
    int ax;
    int64_t axis = aint(ic, "axis", 0);
    if (!tir_norm_axis(axis, x->rank, &ax))
        return fail(ic, "axis %lld out of range for %s", (long long)axis, ty(x).s);
    int64_t step = aint(ic, "step", 1);
    if (step < 1) return fail(ic, "step must be >= 1, found %lld", (long long)step);
    const tir_dim *n = x->dims[ax];
    const tir_attr_value *sa = attr(ic, "start"), *ea = attr(ic, "end");
    int64_t nv;
    bool bad = false;
    const tir_dim *len;
    if (tir_dim_is_const(n, &nv)) {
        int64_t s = sa ? clamp_index(sa->u.i, nv) : 0;
        int64_t e = ea ? clamp_index(ea->u.i, nv) : nv;
        len = tir_dim_const(ic->c, e > s ? (e - s - 1) / step + 1 : 0);
    } else {
        /* A symbolic length cannot be clamped: the bounds are taken as in range (documented);
         * negative ones count from the end, N + start. */
        const tir_dim *s = tir_dim_const(ic->c, 0), *e = n;
        if ((sa && sa->u.i == INT64_MIN) || (ea && ea->u.i == INT64_MIN))
            return fail(ic, "start/end out of range");
        if (sa) s = from_end(ic, n, sa->u.i, &bad);
        if (ea && !bad) e = from_end(ic, n, ea->u.i, &bad);
        if (bad) return TIR_ERR_TYPE;
        len = checked(ic, tir_dim_sub(ic->c, e, s), &bad);
        if (len && step > 1) {
            len = checked(ic, tir_dim_add(ic->c, len, tir_dim_const(ic->c, step - 1)), &bad);
            if (len) len = checked(ic, tir_dim_div(ic->c, len, tir_dim_const(ic->c, step)), &bad);
        }
        if (bad) return TIR_ERR_TYPE;
        int64_t lv;
        if (tir_dim_is_const(len, &lv) && lv < 0) len = tir_dim_const(ic->c, 0);
    }
    *out = *x;
    out->dims[ax] = len;
    return TIR_OK;
}

static tir_status infer_concat(ictx *ic, tir_type *out) {
    const tir_type *x = &ic->in[0]->type;
    int ax;
    int64_t axis = aint(ic, "axis", 0);
    if (!tir_norm_axis(axis, x->rank, &ax))
        return fail(ic, "axis %lld out of range for %s", (long long)axis, ty(x).s);
    bool bad = false;
    const tir_dim *sum = x->dims[ax];
    for (int i = 1; i < ic->nin; i++) {
        const tir_type *t = &ic->in[i]->type;
        bool ok = t->rank == x->rank;
        for (int j = 0; ok && j < x->rank; j++) ok = j == ax || t->dims[j] == x->dims[j];
        if (!ok)
            return fail(ic, "operand %d is %s, but operand 0 is %s: dims must be equal except on axis %d",
                        i, ty(t).s, ty(x).s, ax);
        sum = checked(ic, tir_dim_add(ic->c, sum, t->dims[ax]), &bad);
        if (bad) return TIR_ERR_TYPE;
    }
    *out = *x;
    out->dims[ax] = sum;
    return TIR_OK;
}

static tir_status infer_split(ictx *ic, int max_out, tir_type *out, int *nout) {
    const tir_type *x = &ic->in[0]->type;
    int ax;
    int64_t axis = aint(ic, "axis", 0);
    if (!tir_norm_axis(axis, x->rank, &ax))
        return fail(ic, "axis %lld out of range for %s", (long long)axis, ty(x).s);
    const tir_attr_value *a = attr(ic, "sizes");
    int n = a->kind == TIR_ATTR_INTS ? a->u.ints.n : a->u.shape.n;
    if (n < 1) return fail(ic, "sizes must not be empty");
    bool bad = false;
    const tir_dim *sum = tir_dim_const(ic->c, 0);
    *nout = n;
    if (n > max_out) return fail(ic, "gives %d results, but there is room for %d", n, max_out);
    for (int i = 0; i < n; i++) {
        const tir_dim *s;
        if (a->kind == TIR_ATTR_INTS) {
            if (a->u.ints.v[i] < 0)
                return fail(ic, "size %d is negative (%lld)", i, (long long)a->u.ints.v[i]);
            s = tir_dim_const(ic->c, a->u.ints.v[i]);
        } else {
            s = a->u.shape.v[i];
            int64_t v;
            if (tir_dim_is_const(s, &v) && v < 0) return fail(ic, "size %d is negative (%lld)", i, (long long)v);
        }
        sum = checked(ic, tir_dim_add(ic->c, sum, s), &bad);
        if (bad) return TIR_ERR_TYPE;
        out[i] = *x;
        out[i].dims[ax] = s;
    }
    if (sum != x->dims[ax])
        return fail(ic, "sizes sum to %s, but dim %d of %s is %s", dm(sum).s, ax, ty(x).s,
                    dm(x->dims[ax]).s);
    return TIR_OK;
}

/* table.shape[:axis] + idx.shape + table.shape[axis+1:] */
static tir_status gather_shape(ictx *ic, const tir_type *table, const tir_type *idx, int *axp,
                               tir_type *out) {
    int64_t axis = aint(ic, "axis", 0);
    if (!tir_norm_axis(axis, table->rank, axp))
        return fail(ic, "axis %lld out of range for %s", (long long)axis, ty(table).s);
    if (!is_index(idx->dtype)) return fail(ic, "indices must be i32 or i64, found %s", ty(idx).s);
    int ax = *axp;
    int rank = table->rank - 1 + idx->rank;
    if (rank > TIR_MAX_RANK)
        return fail(ic, "result rank %d exceeds the maximum %d", rank, TIR_MAX_RANK);
    out->dtype = table->dtype;
    out->rank = 0;
    for (int i = 0; i < ax; i++) out->dims[out->rank++] = table->dims[i];
    for (int i = 0; i < idx->rank; i++) out->dims[out->rank++] = idx->dims[i];
    for (int i = ax + 1; i < table->rank; i++) out->dims[out->rank++] = table->dims[i];
    return TIR_OK;
}

static tir_status infer_take(ictx *ic, tir_type *out) {
    int ax;
    return gather_shape(ic, &ic->in[0]->type, &ic->in[1]->type, &ax, out);
}

static tir_status infer_scatter_add(ictx *ic, tir_type *out) {
    const tir_type *tg = &ic->in[0]->type, *src = &ic->in[2]->type;
    if (!is_numeric(tg->dtype)) return fail(ic, "target must be numeric, found %s", ty(tg).s);
    tir_type want;
    int ax;
    tir_status s = gather_shape(ic, tg, &ic->in[1]->type, &ax, &want);
    if (s != TIR_OK) return s;
    bool ok = src->rank == want.rank;
    for (int i = 0; ok && i < want.rank; i++) ok = src->dims[i] == want.dims[i];
    if (!ok)
        return fail(ic, "src must be %s (target[:axis] + idx.shape + target[axis+1:]), found %s",
                    ty(&want).s, ty(src).s);
    *out = *tg;
    return TIR_OK;
}

static tir_status infer_creation(ictx *ic, tir_type *out) {
    const tir_dim *dims[TIR_MAX_RANK];
    int n = asizes(ic, "shape", dims);
    if (n < 0) return TIR_ERR_TYPE;
    const tir_attr_value *dt = attr(ic, "dtype");
    out->dtype = dt ? dt->u.dtype : ic->code == TIR_OP_IOTA ? TIR_I32 : TIR_F32;
    out->rank = n;
    for (int i = 0; i < n; i++) out->dims[i] = dims[i];
    if (ic->code == TIR_OP_IOTA) {
        if (out->dtype == TIR_BOOL) return fail(ic, "dtype must be numeric, found bool");
        int64_t axis = aint(ic, "axis", 0);
        if (!tir_norm_axis(axis, n, NULL))
            return fail(ic, "axis %lld out of range for shape %s", (long long)axis,
                        dims_str(dims, NULL, n).s);
    }
    return TIR_OK;
}

static tir_status infer_matmul(ictx *ic, tir_type *out) {
    const tir_type *a = &ic->in[0]->type, *b = &ic->in[1]->type;
    if (a->rank < 2 || b->rank < 2)
        return fail(ic, "operands must have rank >= 2, found %s and %s", ty(a).s, ty(b).s);
    const tir_attr_value *ta = attr(ic, "transpose_a"), *tb = attr(ic, "transpose_b");
    bool tra = ta && ta->u.b, trb = tb && tb->u.b;
    const tir_dim *M = a->dims[a->rank - (tra ? 1 : 2)], *K = a->dims[a->rank - (tra ? 2 : 1)];
    const tir_dim *K2 = b->dims[b->rank - (trb ? 1 : 2)], *N = b->dims[b->rank - (trb ? 2 : 1)];
    if (K != K2)
        return fail(ic, "inner dims differ (K=%s vs %s) in %s x %s%s%s", dm(K).s, dm(K2).s, ty(a).s,
                    ty(b).s, tra ? " (transpose_a)" : "", trb ? " (transpose_b)" : "");
    tir_type ba = *a, bb = *b, batch;
    ba.rank -= 2;
    bb.rank -= 2;
    if (!tir_broadcast_shapes(ic->c, &ba, &bb, &batch))
        return fail(ic, "batch dims cannot broadcast: %s vs %s", ty(a).s, ty(b).s);
    *out = batch;
    out->dtype = a->dtype;
    if (out->rank + 2 > TIR_MAX_RANK)
        return fail(ic, "result rank %d exceeds the maximum %d", out->rank + 2, TIR_MAX_RANK);
    out->dims[out->rank++] = M;
    out->dims[out->rank++] = N;
    return TIR_OK;
}

static tir_status infer_linear(ictx *ic, tir_type *out) {
    const tir_type *x = &ic->in[0]->type, *w = &ic->in[1]->type;
    if (x->rank < 1) return fail(ic, "x must have rank >= 1 ([..., K]), found %s", ty(x).s);
    if (w->rank != 2) return fail(ic, "weight must be [N, K], found %s", ty(w).s);
    const tir_dim *K = x->dims[x->rank - 1];
    if (w->dims[1] != K)
        return fail(ic, "x %s has K=%s but weight [N, K] %s has K=%s", ty(x).s, dm(K).s, ty(w).s,
                    dm(w->dims[1]).s);
    if (ic->nin == 3) {
        const tir_type *b = &ic->in[2]->type;
        if (b->rank != 1 || b->dims[0] != w->dims[0])
            return fail(ic, "bias must be [N] with N=%s, found %s", dm(w->dims[0]).s, ty(b).s);
    }
    *out = *x;
    out->dims[x->rank - 1] = w->dims[0];
    return TIR_OK;
}

static tir_status infer_softmax(ictx *ic, tir_type *out) {
    const tir_type *x = &ic->in[0]->type;
    int64_t axis = aint(ic, "axis", -1);
    if (!tir_norm_axis(axis, x->rank, NULL))
        return fail(ic, "axis %lld out of range for %s", (long long)axis, ty(x).s);
    *out = *x;
    return TIR_OK;
}

static tir_status infer_norm(ictx *ic, tir_type *out) {
    const tir_type *x = &ic->in[0]->type;
    if (x->rank < 1) return fail(ic, "x must have rank >= 1 ([..., D]), found %s", ty(x).s);
    const tir_dim *D = x->dims[x->rank - 1];
    static const char *const what[] = {"", "weight", "bias"};
    for (int i = 1; i < ic->nin; i++) {
        const tir_type *w = &ic->in[i]->type;
        if (w->rank != 1 || w->dims[0] != D)
            return fail(ic, "%s must be [D] with D=%s (the last dim of x %s), found %s", what[i], dm(D).s,
                        ty(x).s, ty(w).s);
    }
    double eps = afloat(ic, "eps", 1e-5);
    if (!(eps >= 0) || isinf(eps)) return fail(ic, "eps must be finite and >= 0, found %g", eps);
    *out = *x;
    return TIR_OK;
}

static tir_status infer_cross_entropy(ictx *ic, tir_type *out) {
    const tir_type *lg = &ic->in[0]->type, *tg = &ic->in[1]->type;
    if (lg->rank != 2) return fail(ic, "logits must be [N, C], found %s", ty(lg).s);
    if (!is_index(tg->dtype) || tg->rank != 1 || tg->dims[0] != lg->dims[0])
        return fail(ic, "targets must be i32 or i64 [N] with N=%s, found %s", dm(lg->dims[0]).s, ty(tg).s);
    const char *red = astr(ic, "reduction", "mean");
    out->dtype = lg->dtype;
    if (strcmp(red, "none") == 0) {
        out->rank = 1;
        out->dims[0] = lg->dims[0];
    } else if (strcmp(red, "mean") == 0 || strcmp(red, "sum") == 0) {
        out->rank = 0;
    } else {
        return fail(ic, "reduction must be \"mean\", \"sum\" or \"none\", found \"%s\"", red);
    }
    return TIR_OK;
}

/* Whether D can be even: a constant must be; an expression is refused only when it is
 * structurally odd (2*K + 1). A bare symbol passes and the interpreter and runtime check its
 * bound value, as they must anyway (examples bind head dims at run time). */
static bool maybe_even(ictx *ic, const tir_dim *D) {
    int64_t v;
    if (tir_dim_is_const(D, &v)) return v % 2 == 0;
    const tir_dim *two = tir_dim_const(ic->c, 2);
    if (tir_dim_exact_div(ic->c, D, two)) return true;
    const tir_dim *dm1 = tir_dim_sub(ic->c, D, tir_dim_const(ic->c, 1));
    return !(dm1 && tir_dim_exact_div(ic->c, dm1, two));
}

static tir_status infer_rope(ictx *ic, tir_type *out) {
    const tir_type *x = &ic->in[0]->type;
    if (x->rank < 2) return fail(ic, "x must have rank >= 2 ([..., T, D]), found %s", ty(x).s);
    const tir_dim *T = x->dims[x->rank - 2], *D = x->dims[x->rank - 1];
    static const char *const what[] = {"", "cos", "sin"};
    for (int i = 1; i < 3; i++) {
        const tir_type *t = &ic->in[i]->type;
        if (t->rank != 2 || t->dims[0] != T || t->dims[1] != D)
            return fail(ic, "%s must be [T, D] = [%s, %s] (the last two dims of x), found %s", what[i],
                        dm(T).s, dm(D).s, ty(t).s);
    }
    if (!maybe_even(ic, D)) return fail(ic, "the head dim D=%s must be even", dm(D).s);
    *out = *x;
    return TIR_OK;
}

static tir_status infer_attention(ictx *ic, tir_type *out) {
    const tir_type *q = &ic->in[0]->type, *k = &ic->in[1]->type, *v = &ic->in[2]->type;
    if (q->rank != 4 || k->rank != 4 || v->rank != 4)
        return fail(ic, "q, k, v must be [B, H, T, D] (rank 4), found %s, %s, %s", ty(q).s, ty(k).s, ty(v).s);
    if (k->dims[0] != q->dims[0] || v->dims[0] != q->dims[0])
        return fail(ic, "batch dims differ: q %s, k %s, v %s", ty(q).s, ty(k).s, ty(v).s);
    if (k->dims[3] != q->dims[3])
        return fail(ic, "head dims of q and k differ (D=%s vs %s)", dm(q->dims[3]).s, dm(k->dims[3]).s);
    if (v->dims[1] != k->dims[1] || v->dims[2] != k->dims[2])
        return fail(ic, "v %s must be [B, Hk, S, Dv] with k's Hk=%s and S=%s (k is %s)", ty(v).s,
                    dm(k->dims[1]).s, dm(k->dims[2]).s, ty(k).s);
    /* Hq a multiple of Hk: decided here when both are constants or one is structurally a
     * fraction of the other (G vs 4*G); independent symbols (Hq, Hk) are checked when bound,
     * by the interpreter and the runtime, since a model is written for any head counts. */
    const tir_dim *Hq = q->dims[1], *Hk = k->dims[1];
    int64_t hq, hk, r;
    bool ok = true;
    if (tir_dim_is_const(Hq, &hq) && tir_dim_is_const(Hk, &hk)) {
        ok = hk > 0 ? hq % hk == 0 : hq == 0;
    } else if (Hq != Hk && !tir_dim_exact_div(ic->c, Hq, Hk)) {
        const tir_dim *inv = tir_dim_exact_div(ic->c, Hk, Hq);
        ok = !(inv && tir_dim_is_const(inv, &r) && r > 1);
    }
    if (!ok)
        return fail(ic, "query heads Hq=%s must be a multiple of key/value heads Hk=%s", dm(Hq).s, dm(Hk).s);
    const tir_attr_value *sc = attr(ic, "scale");
    if (sc) {
        double s = afloat(ic, "scale", 1.0);
        if (!isfinite(s)) return fail(ic, "scale must be finite, found %g", s);
    }
    out->dtype = q->dtype;
    out->rank = 4;
    out->dims[0] = q->dims[0];
    out->dims[1] = Hq;
    out->dims[2] = q->dims[2];
    out->dims[3] = v->dims[3];
    return TIR_OK;
}

/* ------------------------------------------------------------------ calls: symbol binding
 * A callee's signature is over its own symbols. At a call they bind to the caller's dims by
 * solving each parameter dim against the argument dim; the callee's declared result types with
 * the symbols substituted are the call's results. Substitution re-reads a dim's canonical text
 * (tir_dim_print is re-parsable) building the expression anew with the bound dims, so it needs
 * nothing of dim.c's internals. */

#define MAX_SYMS 64

typedef struct sbind {
    int n;
    const char *names[MAX_SYMS];
    const tir_dim *vals[MAX_SYMS];
} sbind;

static const tir_dim *sb_get(const sbind *b, const char *name) {
    for (int i = 0; i < b->n; i++)
        if (strcmp(b->names[i], name) == 0) return b->vals[i];
    return NULL;
}

typedef struct dparse {
    tir_context *c;
    const char *p;
    const sbind *b;
    bool ok;
} dparse;

static const tir_dim *dp_expr(dparse *s);

static void dp_space(dparse *s) {
    while (*s->p == ' ') s->p++;
}

static const tir_dim *dp_atom(dparse *s) {
    dp_space(s);
    char ch = *s->p;
    if (ch == '(') {
        s->p++;
        const tir_dim *e = dp_expr(s);
        dp_space(s);
        if (*s->p != ')') s->ok = false;
        else s->p++;
        return e;
    }
    if (ch == '-') {
        s->p++;
        const tir_dim *e = dp_atom(s);
        return e ? tir_dim_sub(s->c, tir_dim_const(s->c, 0), e) : NULL;
    }
    if (ch >= '0' && ch <= '9') {
        int64_t v = 0;
        while (*s->p >= '0' && *s->p <= '9') {
            int dgt = *s->p++ - '0';
            if (v > (INT64_MAX - dgt) / 10) {
                s->ok = false;
                return NULL;
            }
            v = v * 10 + dgt;
        }
        return tir_dim_const(s->c, v);
    }
    if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_') {
        char name[128];
        size_t n = 0;
        while (((*s->p >= 'A' && *s->p <= 'Z') || (*s->p >= 'a' && *s->p <= 'z') ||
                (*s->p >= '0' && *s->p <= '9') || *s->p == '_')) {
            if (n + 1 >= sizeof name) {
                s->ok = false;
                return NULL;
            }
            name[n++] = *s->p++;
        }
        name[n] = 0;
        const tir_dim *v = sb_get(s->b, name);
        return v ? v : tir_dim_sym(s->c, name);
    }
    s->ok = false;
    return NULL;
}

static const tir_dim *dp_power(dparse *s) {
    const tir_dim *a = dp_atom(s);
    dp_space(s);
    if (s->ok && a && *s->p == '^') {
        s->p++;
        dp_space(s);
        int64_t e = 0;
        if (!(*s->p >= '0' && *s->p <= '9')) s->ok = false;
        while (*s->p >= '0' && *s->p <= '9' && e < 64) e = e * 10 + (*s->p++ - '0');
        const tir_dim *r = tir_dim_const(s->c, 1);
        for (int64_t i = 0; i < e && r; i++) r = tir_dim_mul(s->c, r, a);
        return r;
    }
    return a;
}

static const tir_dim *dp_term(dparse *s) {
    const tir_dim *a = dp_power(s);
    for (;;) {
        dp_space(s);
        char op = *s->p;
        if (!s->ok || !a || (op != '*' && op != '/')) return a;
        s->p++;
        const tir_dim *b = dp_power(s);
        if (!b) return NULL;
        a = op == '*' ? tir_dim_mul(s->c, a, b) : tir_dim_div(s->c, a, b);
    }
}

static const tir_dim *dp_expr(dparse *s) {
    const tir_dim *a = dp_term(s);
    for (;;) {
        dp_space(s);
        char op = *s->p;
        if (!s->ok || !a || (op != '+' && op != '-')) return a;
        s->p++;
        const tir_dim *b = dp_term(s);
        if (!b) return NULL;
        a = op == '+' ? tir_dim_add(s->c, a, b) : tir_dim_sub(s->c, a, b);
    }
}

/* d with the bound symbols of b replaced; NULL when the text cannot be re-read or overflows */
static const tir_dim *subst(tir_context *c, const tir_dim *d, const sbind *b) {
    char buf[1024];
    int n = tir_dim_print(d, buf, sizeof buf);
    if (n < 0 || (size_t)n >= sizeof buf) return NULL;
    dparse s = {c, buf, b, true};
    const tir_dim *r = dp_expr(&s);
    dp_space(&s);
    return s.ok && *s.p == 0 ? r : NULL;
}

static int unbound_syms(const tir_dim *d, const sbind *b, const char **out, int max) {
    const char *syms[MAX_SYMS];
    int n = tir_dim_symbols(d, syms, MAX_SYMS), k = 0;
    for (int i = 0; i < n; i++)
        if (!sb_get(b, syms[i]) && k < max) out[k++] = syms[i];
    return k;
}

static bool sb_add(sbind *b, const char *name, const tir_dim *v) {
    if (b->n >= MAX_SYMS) return false;
    b->names[b->n] = name;
    b->vals[b->n] = v;
    b->n++;
    return true;
}

/* Solves p(S) = arg for the one unbound symbol S of p, taking p linear in S: p = a*S + p(0).
 * The solution is checked by substituting it back, so a non-linear p simply does not bind. */
static const tir_dim *solve(tir_context *c, const tir_dim *p, const char *S, const tir_dim *arg,
                            sbind *b) {
    sbind t = *b;
    if (!sb_add(&t, S, tir_dim_const(c, 0))) return NULL;
    const tir_dim *p0 = subst(c, p, &t);
    t.vals[t.n - 1] = tir_dim_const(c, 1);
    const tir_dim *p1 = subst(c, p, &t);
    if (!p0 || !p1) return NULL;
    const tir_dim *a = tir_dim_sub(c, p1, p0), *r = tir_dim_sub(c, arg, p0);
    if (!a || !r || is_const(a, 0)) return NULL;
    const tir_dim *sol = tir_dim_exact_div(c, r, a);
    int64_t v;
    if (!sol || (tir_dim_is_const(sol, &v) && v < 0)) return NULL;
    t.vals[t.n - 1] = sol;
    return subst(c, p, &t) == arg ? sol : NULL;
}

static tir_status infer_call(ictx *ic, const tir_func *f, int max_out, tir_type *out, int *nout) {
    if (!f) return fail(ic, "no callee");
    if (ic->nin != f->nparams)
        return fail(ic, "@%s takes %d argument%s, given %d", f->name, f->nparams,
                    f->nparams == 1 ? "" : "s", ic->nin);
    for (int i = 0; i < f->nparams; i++) {
        const tir_type *p = &f->params[i]->type, *a = &ic->in[i]->type;
        if (p->dtype != a->dtype || p->rank != a->rank)
            return fail(ic, "argument %d of @%s is %s, but parameter %%%s is %s", i, f->name, ty(a).s,
                        f->params[i]->name ? f->params[i]->name : "?", ty(p).s);
    }
    sbind b = {0};
    const char *u[MAX_SYMS];
    /* Bind from dims with one unknown first, repeatedly, so an order of parameters never
     * matters; a dim with several unknowns binds them identically only when it is the very
     * same expression as the argument's. */
    for (bool progress = true; progress;) {
        progress = false;
        for (int i = 0; i < f->nparams; i++)
            for (int j = 0; j < f->params[i]->type.rank; j++) {
                const tir_dim *pd = f->params[i]->type.dims[j];
                if (unbound_syms(pd, &b, u, MAX_SYMS) != 1) continue;
                const tir_dim *sol = solve(ic->c, pd, u[0], ic->in[i]->type.dims[j], &b);
                if (sol && sb_add(&b, u[0], sol)) progress = true;
            }
    }
    for (int i = 0; i < f->nparams; i++)
        for (int j = 0; j < f->params[i]->type.rank; j++) {
            const tir_dim *pd = f->params[i]->type.dims[j];
            int nu = unbound_syms(pd, &b, u, MAX_SYMS);
            if (nu > 1 && pd == ic->in[i]->type.dims[j])
                for (int k = 0; k < nu; k++) sb_add(&b, u[k], tir_dim_sym(ic->c, u[k]));
        }
    for (int i = 0; i < f->nparams; i++) {
        tir_type want = f->params[i]->type;
        const tir_type *a = &ic->in[i]->type;
        bool ok = true;
        for (int j = 0; j < want.rank; j++) {
            const tir_dim *pd = f->params[i]->type.dims[j];
            if (unbound_syms(pd, &b, u, MAX_SYMS) > 0) {
                ok = false;
                break;
            }
            want.dims[j] = subst(ic->c, pd, &b);
            if (!want.dims[j]) return fail(ic, "cannot substitute dim %s of @%s", dm(pd).s, f->name);
            ok &= want.dims[j] == a->dims[j];
        }
        if (!ok)
            return fail(ic, "argument %d of @%s is %s, but parameter %%%s is %s", i, f->name, ty(a).s,
                        f->params[i]->name ? f->params[i]->name : "?", ty(&f->params[i]->type).s);
    }
    *nout = f->nret;
    if (f->nret > max_out)
        return fail(ic, "@%s gives %d results, but there is room for %d", f->name, f->nret, max_out);
    for (int r = 0; r < f->nret; r++) {
        out[r] = f->ret[r];
        for (int j = 0; j < out[r].rank; j++) {
            const tir_dim *rd = f->ret[r].dims[j];
            int nu = unbound_syms(rd, &b, u, MAX_SYMS);
            if (nu > 0)
                return fail(ic, "result %d of @%s has dim %s, but its arguments do not bind %s", r,
                            f->name, dm(rd).s, u[0]);
            out[r].dims[j] = subst(ic->c, rd, &b);
            if (!out[r].dims[j]) return fail(ic, "cannot substitute dim %s of @%s", dm(rd).s, f->name);
        }
    }
    return TIR_OK;
}

/* ------------------------------------------------------------------ fused regions */

/* The region runs in the enclosing function's symbols, so there is nothing to bind: each
 * operand has exactly its parameter's type, and the results are the region's yielded types. */
static tir_status infer_fused(ictx *ic, const tir_func *r, int max_out, tir_type *out, int *nout) {
    if (!r) return fail(ic, "has no region");
    if (ic->nin != r->nparams || (r->nparams > 0 && !r->params))
        return fail(ic, "%d operand%s, but the region has %d parameter%s", ic->nin, ic->nin == 1 ? "" : "s",
                    r->nparams, r->nparams == 1 ? "" : "s");
    for (int i = 0; i < ic->nin; i++) {
        const tir_value *p = r->params[i];
        if (!p || !tir_type_equal(&p->type, &ic->in[i]->type))
            return fail(ic, "operand %d is %s, but the region's parameter %d is %s", i, ty(&ic->in[i]->type).s, i,
                        p ? ty(&p->type).s : "missing");
    }
    if (r->nres < 1 || !r->results) return fail(ic, "the region yields no value");
    if (r->nres > max_out) return fail(ic, "the region yields %d values, but there is room for %d", r->nres, max_out);
    for (int i = 0; i < r->nres; i++) {
        if (!r->results[i]) return fail(ic, "the region's result %d is missing", i);
        out[i] = r->results[i]->type;
    }
    *nout = r->nres;
    return TIR_OK;
}

/* ------------------------------------------------------------------ the entry point */

static tir_status check_results(ictx *ic, const tir_type *out, int n) {
    for (int r = 0; r < n; r++) {
        if (out[r].rank > TIR_MAX_RANK)
            return fail(ic, "result rank %d exceeds the maximum %d", out[r].rank, TIR_MAX_RANK);
        for (int j = 0; j < out[r].rank; j++) {
            int64_t v;
            if (!out[r].dims[j]) return fail(ic, "a result dim overflows int64");
            if (tir_dim_is_const(out[r].dims[j], &v) && v < 0)
                return fail(ic, "result dim %d is negative (%lld)", j, (long long)v);
        }
    }
    return TIR_OK;
}

tir_status tir_infer(tir_module *m, tir_opcode code, int nin, tir_value *const *in, int nattrs,
                     const tir_attr_value *attrs, const tir_func *callee, tir_loc loc,
                     int max_out, tir_type *out, int *nout, tir_diag *d) {
    if (nout) *nout = 0;
    if ((unsigned)code >= TIR_OP_COUNT)
        return tir_diag_set(d, TIR_ERR_INTERNAL, m, loc, "unknown opcode %d", (int)code);
    ictx ic = {m, m ? m->ctx : NULL, code, tir_ops[code].name, nin, in, nattrs, attrs, loc, d};
    const tir_opinfo *info = &tir_ops[code];
    if (!m || !m->ctx || !out || !nout)
        return tir_diag_set(d, TIR_ERR_INTERNAL, m, loc, "%s: tir_infer called without a module or output",
                            ic.op);
    if (nin > 0 && !in) return fail(&ic, "operands missing");
    if (nin < info->min_in || (info->max_in >= 0 && nin > info->max_in)) {
        if (info->max_in < 0)
            return fail(&ic, "expects at least %d operand%s, found %d", info->min_in,
                        info->min_in == 1 ? "" : "s", nin);
        if (info->min_in == info->max_in)
            return fail(&ic, "expects %d operand%s, found %d", info->min_in, info->min_in == 1 ? "" : "s", nin);
        return fail(&ic, "expects %d to %d operands, found %d", info->min_in, info->max_in, nin);
    }
    if (nattrs < 0) return fail(&ic, "negative attribute count");
    tir_status s = check_attrs(&ic);
    if (s == TIR_OK) s = check_operands(&ic);
    if (s != TIR_OK) return s;
    if (code == TIR_OP_CALL) {
        if (nattrs > 0) return fail(&ic, "takes no attributes");
        s = infer_call(&ic, callee, max_out, out, nout);
        return s == TIR_OK ? check_results(&ic, out, *nout) : s;
    }
    if (code == TIR_OP_FUSED) {
        s = infer_fused(&ic, callee, max_out, out, nout);
        return s == TIR_OK ? check_results(&ic, out, *nout) : s;
    }
    if (code == TIR_OP_SPLIT) {
        s = infer_split(&ic, max_out, out, nout);
        return s == TIR_OK ? check_results(&ic, out, *nout) : s;
    }
    if (max_out < 1) return fail(&ic, "gives 1 result, but there is room for %d", max_out);
    tir_type r;
    memset(&r, 0, sizeof r);
    if (info->flags & TIR_F_UNARY) {
        r = in[0]->type;
        if (code == TIR_OP_GELU) {
            const char *ap = astr(&ic, "approximate", "none");
            if (strcmp(ap, "none") != 0 && strcmp(ap, "tanh") != 0)
                return fail(&ic, "approximate must be \"none\" or \"tanh\", found \"%s\"", ap);
        }
    } else if (info->flags & TIR_F_BINARY) {
        if (!tir_broadcast_shapes(ic.c, &in[0]->type, &in[1]->type, &r))
            return fail(&ic, "cannot broadcast %s with %s", ty(&in[0]->type).s, ty(&in[1]->type).s);
        if (info->flags & TIR_F_COMPARE) r.dtype = TIR_BOOL;
    } else if (info->flags & TIR_F_REDUCE) {
        s = infer_reduce(&ic, &r);
    } else {
        switch (code) {
        case TIR_OP_WHERE:
            if (in[0]->type.dtype != TIR_BOOL)
                return fail(&ic, "condition must be bool, found %s", ty(&in[0]->type).s);
            if (!tir_broadcast_shapes(ic.c, &in[1]->type, &in[2]->type, &r) ||
                !tir_broadcast_shapes(ic.c, &r, &in[0]->type, &r))
                return fail(&ic, "cannot broadcast %s, %s and %s", ty(&in[0]->type).s,
                            ty(&in[1]->type).s, ty(&in[2]->type).s);
            r.dtype = in[1]->type.dtype;
            break;
        case TIR_OP_CAST:
            r = in[0]->type;
            r.dtype = attr(&ic, "dtype")->u.dtype;
            break;
        case TIR_OP_RESHAPE: s = infer_reshape(&ic, &r); break;
        case TIR_OP_TRANSPOSE: s = infer_transpose(&ic, &r); break;
        case TIR_OP_BROADCAST: s = infer_broadcast(&ic, &r); break;
        case TIR_OP_SLICE: s = infer_slice(&ic, &r); break;
        case TIR_OP_CONCAT: s = infer_concat(&ic, &r); break;
        case TIR_OP_TAKE: s = infer_take(&ic, &r); break;
        case TIR_OP_SCATTER_ADD: s = infer_scatter_add(&ic, &r); break;
        case TIR_OP_IOTA:
        case TIR_OP_FULL: s = infer_creation(&ic, &r); break;
        case TIR_OP_MATMUL: s = infer_matmul(&ic, &r); break;
        case TIR_OP_LINEAR: s = infer_linear(&ic, &r); break;
        case TIR_OP_SOFTMAX:
        case TIR_OP_LOG_SOFTMAX: s = infer_softmax(&ic, &r); break;
        case TIR_OP_RMSNORM:
        case TIR_OP_LAYERNORM: s = infer_norm(&ic, &r); break;
        case TIR_OP_CROSS_ENTROPY: s = infer_cross_entropy(&ic, &r); break;
        case TIR_OP_ROPE: s = infer_rope(&ic, &r); break;
        case TIR_OP_ATTENTION: s = infer_attention(&ic, &r); break;
        default:
            return tir_diag_set(d, TIR_ERR_INTERNAL, m, loc, "%s: no shape rule", ic.op);
        }
    }
    if (s != TIR_OK) return s;
    s = check_results(&ic, &r, 1);
    if (s != TIR_OK) return s;
    out[0] = r;
    *nout = 1;
    return TIR_OK;
}
