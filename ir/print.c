/* print.c: IR -> canonical .tir text (tir_print_module, tir_print_func, tir_module_print), and
 * tir_literal_dtype, the rule that decides the dtype of a literal operand, shared with the parser
 * so that literals round-trip.
 *
 * Canonical means print(parse(print(m))) == print(m) for every module:
 *   - one statement per op, temporaries named %0, %1, ... in order of definition, skipping
 *     numbers that are some value's own name;
 *   - an unnamed rank-0 full() used as an operand prints as a literal wherever the parser would
 *     give that literal the same dtype; it prints as a statement only when some use cannot take
 *     a literal or it is returned;
 *   - floats print in the shortest form that reads back to the same double, always as a float
 *     token (with '.', an exponent, inf or nan), so an attribute's kind survives re-parsing;
 *   - a fused op prints its attributes after the operand list and its region as an indented
 *     block ending in yield; names are unique across a function and its regions, and a region's
 *     parameters print as the fused op's operands (docs/tir.md §11). */
#include <stdio.h>

#include "ir.h"

/* ------------------------------------------------------------------ literal dtype rule */

/* Operands whose dtype a literal elsewhere in the op takes. where's condition and the index
 * operands of take, scatter_add and cross_entropy have their own dtype. */
static bool is_data_operand(tir_opcode code, int j) {
    switch (code) {
    case TIR_OP_WHERE: return j != 0;
    case TIR_OP_TAKE:
    case TIR_OP_CROSS_ENTROPY: return j == 0;
    case TIR_OP_SCATTER_ADD: return j != 1;
    default: return true;
    }
}

tir_dtype tir_literal_dtype(tir_opcode code, int nin, const tir_value *const *in, int i,
                            bool literal_is_int) {
    if (code == TIR_OP_WHERE && i == 0) return TIR_BOOL;
    if (i == 1 && (code == TIR_OP_TAKE || code == TIR_OP_SCATTER_ADD || code == TIR_OP_CROSS_ENTROPY))
        return TIR_I32;
    for (int j = 0; j < nin; j++)
        if (in[j] && is_data_operand(code, j)) return in[j]->type.dtype;
    return literal_is_int ? TIR_I32 : TIR_F32;
}

/* calls take the callee's parameter dtype (the parser's rule too) */
static tir_dtype lit_dtype(const tir_op *op, const tir_value *const *in, int i, bool is_int) {
    if (op->code == TIR_OP_CALL && op->callee && i < op->callee->nparams)
        return op->callee->params[i]->type.dtype;
    return tir_literal_dtype(op->code, op->nin, in, i, is_int);
}

/* ------------------------------------------------------------------ text buffer */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 1024;
        while (ncap < b->n + n + 1) ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        sb_putn(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_putn(b, big, (size_t)n);
    free(big);
}

static char *sb_take(sbuf *b) {
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    if (!b->p) return calloc(1, 1);
    return b->p;
}

/* ------------------------------------------------------------------ scalars */

/* shortest %.{6..17}g that reads back exactly; "1e-06" is tidied to "1e-6"; as_float makes sure
 * the text lexes as a float (1 -> 1.0) */
static void fmt_double(char *buf, size_t n, double v, bool as_float) {
    if (isnan(v)) {
        snprintf(buf, n, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, n, v < 0 ? "-inf" : "inf");
        return;
    }
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    char *e = strchr(buf, 'e');
    if (e) {
        char *s = e + 1, *w = e + 1;
        if (*s == '+') s++;
        else if (*s == '-') *w++ = *s++;
        while (*s == '0' && s[1]) s++;
        memmove(w, s, strlen(s) + 1);
    } else if (as_float && !strchr(buf, '.')) {
        size_t l = strlen(buf);
        if (l + 3 <= n) memcpy(buf + l, ".0", 3);
    }
}

/* can v be written as a literal of dtype dt that the parser reads back exactly? */
static bool literal_ok(double v, tir_dtype dt) {
    if (dt == TIR_BOOL) return v == 0 || v == 1;
    if (!tir_dtype_is_int(dt)) return true;
    if (!isfinite(v) || v != trunc(v)) return false;
    switch (dt) {
    case TIR_I8: return v >= -128 && v <= 127;
    case TIR_U8: return v >= 0 && v <= 255;
    case TIR_I32: return v >= -2147483648.0 && v <= 2147483647.0;
    default: return v >= -9223372036854775808.0 && v < 9223372036854775808.0;
    }
}

/* a literal in dtype dt: integers for int and bool dtypes, float tokens otherwise */
static void fmt_literal(char *buf, size_t n, double v, tir_dtype dt) {
    if ((tir_dtype_is_int(dt) || dt == TIR_BOOL) && literal_ok(v, dt)) {
        snprintf(buf, n, "%lld", (long long)v);
        return;
    }
    fmt_double(buf, n, v, true);
}

/* what a snprintf-like printer makes of x: through a small stack buffer, or a heap one when the
 * text is longer (dims may be long expressions) */
typedef int (*printer_fn)(const void *x, char *buf, size_t n);
static int type_printer(const void *x, char *buf, size_t n) { return tir_type_print(x, buf, n); }
static int dim_printer(const void *x, char *buf, size_t n) { return tir_dim_print(x, buf, n); }

static void put_printed(sbuf *b, printer_fn print, const void *x) {
    char small[256];
    int n = print(x, small, sizeof small);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        sb_putn(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = true;
        return;
    }
    print(x, big, (size_t)n + 1);
    sb_putn(b, big, (size_t)n);
    free(big);
}

static void put_type(sbuf *b, const tir_type *t) { put_printed(b, type_printer, t); }
static void put_dim(sbuf *b, const tir_dim *d) { put_printed(b, dim_printer, d); }

/* length of the valid UTF-8 sequence at p, 0 if there is none (the lexer's rule) */
static int utf8_len(const unsigned char *p) {
    unsigned char c = p[0];
    int n;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) { n = 2; v = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 3; v = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    for (int k = 1; k < n; k++) {
        if ((p[k] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (p[k] & 0x3F);
    }
    return v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) ? 0 : n;
}

/* control characters and bytes that are not UTF-8 print as \xHH, which the lexer reads back */
static void put_string(sbuf *b, const char *s) {
    sb_putn(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; c && *c; c++) {
        switch (*c) {
        case '"': sb_puts(b, "\\\""); break;
        case '\\': sb_puts(b, "\\\\"); break;
        case '\n': sb_puts(b, "\\n"); break;
        case '\t': sb_puts(b, "\\t"); break;
        default:
            if (*c < 32 || *c == 127) {
                sb_printf(b, "\\x%02x", *c);
            } else if (*c >= 0x80) {
                int n = utf8_len(c);
                if (n) {
                    sb_putn(b, (const char *)c, (size_t)n);
                    c += n - 1;
                } else {
                    sb_printf(b, "\\x%02x", *c);
                }
            } else {
                sb_putn(b, (const char *)c, 1);
            }
        }
    }
    sb_putn(b, "\"", 1);
}

static void put_attr_value(sbuf *b, const tir_attr_value *a) {
    char num[64];
    if (a->kind == TIR_ATTR_DICT) { /* {key=value, ...} in the order given */
        sb_putn(b, "{", 1);
        for (int i = 0; i < a->u.dict.n; i++) {
            sb_printf(b, "%s%s=", i ? ", " : "", a->u.dict.v[i].name);
            put_attr_value(b, &a->u.dict.v[i]);
        }
        sb_putn(b, "}", 1);
        return;
    }
    switch (a->kind) {
    case TIR_ATTR_INT: sb_printf(b, "%lld", (long long)a->u.i); break;
    case TIR_ATTR_FLOAT:
        fmt_double(num, sizeof num, a->u.f, true);
        sb_puts(b, num);
        break;
    case TIR_ATTR_BOOL: sb_puts(b, a->u.b ? "true" : "false"); break;
    case TIR_ATTR_STR: put_string(b, a->u.s); break;
    case TIR_ATTR_DTYPE: sb_puts(b, tir_dtype_name(a->u.dtype)); break;
    case TIR_ATTR_INTS:
        sb_putn(b, "[", 1);
        for (int i = 0; i < a->u.ints.n; i++) sb_printf(b, "%s%lld", i ? ", " : "", (long long)a->u.ints.v[i]);
        sb_putn(b, "]", 1);
        break;
    case TIR_ATTR_SHAPE:
        sb_putn(b, "[", 1);
        for (int i = 0; i < a->u.shape.n; i++) {
            if (i) sb_puts(b, ", ");
            put_dim(b, a->u.shape.v[i]);
        }
        sb_putn(b, "]", 1);
        break;
    }
}

/* ------------------------------------------------------------------ naming */

/* names the lexer reads back as %name */
static bool valid_name(const char *s) {
    if (!s || !*s) return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* a set of strings (the user names of one function), open addressing */
typedef struct strset {
    const char **e;
    size_t cap, n;
} strset;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool set_has(const strset *s, const char *k) {
    if (!s->cap) return false;
    for (size_t i = hash_str(k) & (s->cap - 1); s->e[i]; i = (i + 1) & (s->cap - 1))
        if (strcmp(s->e[i], k) == 0) return true;
    return false;
}

/* false on OOM */
static bool set_add(strset *s, const char *k) {
    if ((s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        const char **ne = calloc(ncap, sizeof *ne);
        if (!ne) return false;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->e[i]) continue;
            size_t j = hash_str(s->e[i]) & (ncap - 1);
            while (ne[j]) j = (j + 1) & (ncap - 1);
            ne[j] = s->e[i];
        }
        free(s->e);
        s->e = ne;
        s->cap = ncap;
    }
    size_t i = hash_str(k) & (s->cap - 1);
    while (s->e[i]) i = (i + 1) & (s->cap - 1);
    s->e[i] = k;
    s->n++;
    return true;
}

/* How one function prints: each value's name, and which operands print as literals. A fused
 * op's region has its own fnames (sub[k] for op k): its values are numbered in one sequence
 * with the enclosing function's and named from one set, so every name in a printed function
 * means one value; the region's parameters print as the fused op's operands. */
typedef struct fnames {
    int nids;
    const char **user; /* by value id: the value's own name, when it keeps it */
    long *num;         /* by value id: its temporary number, -1 if none */
    bool *cand;        /* by value id: an unnamed rank-0 full() that can print as a literal */
    bool *stmt;        /* by value id (cand only): its full() still needs a statement */
    int *lit_off;      /* by op index: offset into lit */
    bool *lit;         /* per operand: prints as a literal */
    struct fnames **sub;        /* by op index: the region's names, for fused ops */
    int nsub;
    const struct fnames *outer; /* for a region: the enclosing function's names */
    const tir_op *owner;        /* for a region: its fused op */
} fnames;

/* the names and the temporary counter shared by a function and its regions */
typedef struct namectx {
    strset names;
    long next;
} namectx;

static void fnames_free(fnames *fn) {
    if (fn->sub)
        for (int k = 0; k < fn->nsub; k++)
            if (fn->sub[k]) {
                fnames_free(fn->sub[k]);
                free(fn->sub[k]);
            }
    free(fn->sub);
    free(fn->user);
    free(fn->num);
    free(fn->cand);
    free(fn->stmt);
    free(fn->lit_off);
    free(fn->lit);
    memset(fn, 0, sizeof *fn);
}
static bool id_ok(const fnames *fn, const tir_value *v) { return v && v->id >= 0 && v->id < fn->nids; }

/* the value of a full() that prints as a literal of its dtype, if it is one */
static bool const_value(const tir_value *v, double *val) {
    const tir_op *op = v->def;
    if (!op || op->code != TIR_OP_FULL || op->nin != 0 || op->nout != 1 || v->type.rank != 0) return false;
    bool have = false;
    for (int i = 0; i < op->nattrs; i++) {
        const tir_attr_value *a = &op->attrs[i];
        if (strcmp(a->name, "value") == 0) {
            if (a->kind == TIR_ATTR_FLOAT) *val = a->u.f;
            else if (a->kind == TIR_ATTR_INT) *val = (double)a->u.i;
            else return false;
            have = true;
        } else if (strcmp(a->name, "shape") == 0) {
            if (a->kind != TIR_ATTR_SHAPE || a->u.shape.n != 0) return false;
        } else if (strcmp(a->name, "dtype") == 0) {
            if (a->kind != TIR_ATTR_DTYPE || a->u.dtype != v->type.dtype) return false;
        } else {
            return false; /* an attribute a literal could not carry */
        }
    }
    return have && literal_ok(*val, v->type.dtype);
}

/* Decide an op's literal operands: start with every candidate, and while one of them would
 * read back as another dtype, make the first such one a statement and look again. A module
 * printed this way re-parses to candidates exactly at the literal positions, which pass at once,
 * so the choice is stable. */
static bool choose_literals(const fnames *fn, const tir_op *op, bool *lit) {
    int nin = op->nin;
    if (op->code == TIR_OP_FUSED) { /* the operands of a region are names, never literals */
        for (int i = 0; i < nin; i++) lit[i] = false;
        return true;
    }
    bool many = nin > 64 && op->code != TIR_OP_CALL; /* keep the search cheap on huge concats */
    for (int i = 0; i < nin; i++) lit[i] = !many && id_ok(fn, op->in[i]) && fn->cand[op->in[i]->id];
    const tir_value **tmp = malloc((size_t)(nin ? nin : 1) * sizeof *tmp);
    if (!tmp) return false;
    for (bool changed = true; changed;) {
        changed = false;
        for (int i = 0; i < nin; i++) tmp[i] = lit[i] ? NULL : op->in[i];
        for (int i = 0; i < nin && !changed; i++) {
            if (!lit[i]) continue;
            tir_dtype dt = op->in[i]->type.dtype;
            bool is_int = tir_dtype_is_int(dt) || dt == TIR_BOOL; /* how fmt_literal writes it */
            if (lit_dtype(op, (const tir_value *const *)tmp, i, is_int) != dt) {
                lit[i] = false;
                changed = true;
            }
        }
    }
    free(tmp);
    return true;
}

static void collect_values(const tir_func *f, int *maxid) {
    int m = f->nvalues;
    for (int i = 0; i < f->nparams; i++)
        if (f->params[i] && f->params[i]->id >= m) m = f->params[i]->id + 1;
    for (int k = 0; k < f->nops; k++)
        for (int j = 0; j < f->ops[k]->nout; j++)
            if (f->ops[k]->out[j] && f->ops[k]->out[j]->id >= m) m = f->ops[k]->out[j]->id + 1;
    *maxid = m;
}

static bool fnames_alloc(const tir_func *f, fnames *fn) {
    memset(fn, 0, sizeof *fn);
    collect_values(f, &fn->nids);
    size_t nid = (size_t)(fn->nids ? fn->nids : 1);
    size_t total_in = 0;
    for (int k = 0; k < f->nops; k++) total_in += (size_t)f->ops[k]->nin;
    fn->user = calloc(nid, sizeof *fn->user);
    fn->num = malloc(nid * sizeof *fn->num);
    fn->cand = calloc(nid, sizeof *fn->cand);
    fn->stmt = calloc(nid, sizeof *fn->stmt);
    fn->lit_off = calloc((size_t)(f->nops ? f->nops : 1), sizeof *fn->lit_off);
    fn->lit = calloc(total_in ? total_in : 1, sizeof *fn->lit);
    fn->sub = calloc((size_t)(f->nops ? f->nops : 1), sizeof *fn->sub);
    fn->nsub = f->nops;
    if (!fn->user || !fn->num || !fn->cand || !fn->stmt || !fn->lit_off || !fn->lit || !fn->sub) return false;
    for (size_t i = 0; i < nid; i++) fn->num[i] = -1;
    return true;
}

/* own names: valid and first come (in text order: a fused op's results before its region);
 * later duplicates become temporaries. A region's parameters have no names of their own. */
static bool own_names(const tir_func *f, fnames *fn, namectx *nc) {
    bool ok = true;
    for (int i = 0; !fn->owner && i < f->nparams && ok; i++) {
        const tir_value *v = f->params[i];
        if (id_ok(fn, v) && valid_name(v->name) && !set_has(&nc->names, v->name)) {
            fn->user[v->id] = v->name;
            ok = set_add(&nc->names, v->name);
        }
    }
    for (int k = 0; k < f->nops && ok; k++) {
        const tir_op *op = f->ops[k];
        for (int j = 0; j < op->nout && ok; j++) {
            const tir_value *v = op->out[j];
            double val;
            if (!id_ok(fn, v)) continue;
            if (valid_name(v->name) && !set_has(&nc->names, v->name)) {
                fn->user[v->id] = v->name;
                ok = set_add(&nc->names, v->name);
            } else if (const_value(v, &val)) {
                fn->cand[v->id] = true;
            }
        }
        const tir_func *r = tir_op_region(op);
        if (ok && r && !fn->owner) {
            fnames *sub = malloc(sizeof *sub);
            if (!sub) return false;
            fn->sub[k] = sub;
            if (!fnames_alloc(r, sub)) return false;
            sub->outer = fn;
            sub->owner = op;
            ok = own_names(r, sub, nc);
        }
    }
    return ok;
}

/* literal positions, and which candidates still need their statement */
static bool literals(const tir_func *f, fnames *fn) {
    size_t off = 0;
    for (int k = 0; k < f->nops; k++) {
        const tir_op *op = f->ops[k];
        fn->lit_off[k] = (int)off;
        if (!choose_literals(fn, op, fn->lit + off)) return false;
        for (int i = 0; i < op->nin; i++)
            if (!fn->lit[off + (size_t)i] && id_ok(fn, op->in[i]) && fn->cand[op->in[i]->id])
                fn->stmt[op->in[i]->id] = true;
        off += (size_t)op->nin;
        if (fn->sub[k] && !literals(op->callee, fn->sub[k])) return false;
    }
    for (int i = 0; i < f->nres; i++)
        if (id_ok(fn, f->results[i])) fn->stmt[f->results[i]->id] = true;
    return true;
}

static void temp_name(fnames *fn, namectx *nc, const tir_value *v) {
    char buf[32];
    for (;; nc->next++) {
        snprintf(buf, sizeof buf, "%ld", nc->next);
        if (!set_has(&nc->names, buf)) break;
    }
    fn->num[v->id] = nc->next++;
}

/* temporaries in order of definition, in text order */
static void temps(const tir_func *f, fnames *fn, namectx *nc) {
    for (int i = 0; !fn->owner && i < f->nparams; i++) {
        const tir_value *v = f->params[i];
        if (id_ok(fn, v) && !fn->user[v->id]) temp_name(fn, nc, v);
    }
    for (int k = 0; k < f->nops; k++) {
        const tir_op *op = f->ops[k];
        for (int j = 0; j < op->nout; j++) {
            const tir_value *v = op->out[j];
            if (!id_ok(fn, v) || fn->user[v->id] || (fn->cand[v->id] && !fn->stmt[v->id])) continue;
            temp_name(fn, nc, v);
        }
        if (fn->sub[k]) temps(op->callee, fn->sub[k], nc);
    }
}

static bool assign_names(const tir_func *f, fnames *fn) {
    namectx nc = {{0}, 0};
    bool ok = fnames_alloc(f, fn) && own_names(f, fn, &nc) && literals(f, fn);
    if (ok) temps(f, fn, &nc);
    free(nc.names.e);
    if (!ok) fnames_free(fn);
    return ok;
}

static void put_value(sbuf *b, const fnames *fn, const tir_value *v) {
    /* a region's parameter is its fused op's operand of the same position */
    if (fn->owner && v && !v->def && v->index >= 0 && v->index < fn->owner->nin) {
        put_value(b, fn->outer, fn->owner->in[v->index]);
        return;
    }
    if (!id_ok(fn, v)) {
        sb_puts(b, "%?");
        return;
    }
    if (fn->user[v->id]) sb_printf(b, "%%%s", fn->user[v->id]);
    else sb_printf(b, "%%%ld", fn->num[v->id]);
}

/* ------------------------------------------------------------------ functions */

static void put_grad_def(sbuf *b, const tir_func *f) {
    const tir_func *of = f->grad_of;
    sb_printf(b, "func @%s = value_and_grad(@%s, wrt=[", f->name, of->name);
    fnames ofn;
    bool have = assign_names(of, &ofn);
    for (int i = 0; i < f->nwrt; i++) {
        if (i) sb_puts(b, ", ");
        int pi = f->wrt[i];
        if (pi >= 0 && pi < of->nparams && have) put_value(b, &ofn, of->params[pi]);
        else if (pi >= 0 && pi < of->nparams) sb_printf(b, "%%%s", of->params[pi]->name ? of->params[pi]->name : "?");
        else sb_puts(b, "%?");
    }
    if (have) fnames_free(&ofn);
    sb_puts(b, "])\n");
}

static void put_body(sbuf *b, const fnames *fn, const tir_func *f, int indent);

/* sub: the names of op's region when op is a fused op */
static void put_op(sbuf *b, const fnames *fn, const tir_op *op, const bool *lit, int indent,
                   const fnames *sub) {
    sb_printf(b, "%*s", indent, "");
    for (int j = 0; j < op->nout; j++) {
        if (j) sb_puts(b, ", ");
        put_value(b, fn, op->out[j]);
    }
    sb_puts(b, " = ");
    if (op->code == TIR_OP_CALL) sb_printf(b, "call @%s(", op->callee ? op->callee->name : "?");
    else sb_printf(b, "%s(", tir_ops[op->code].name);
    bool first = true;
    const tir_attr_value *value_attr = NULL;
    if (tir_ops[op->code].flags & TIR_F_VALUE_ATTR) {
        for (int i = 0; i < op->nattrs; i++)
            if (strcmp(op->attrs[i].name, "value") == 0 &&
                (op->attrs[i].kind == TIR_ATTR_FLOAT || op->attrs[i].kind == TIR_ATTR_INT))
                value_attr = &op->attrs[i];
        if (value_attr) {
            char num[64];
            double v = value_attr->kind == TIR_ATTR_FLOAT ? value_attr->u.f : (double)value_attr->u.i;
            tir_dtype dt = op->nout > 0 && op->out[0] ? op->out[0]->type.dtype : TIR_F32;
            fmt_literal(num, sizeof num, v, dt);
            sb_puts(b, num);
            first = false;
        }
    }
    for (int i = 0; i < op->nin; i++) {
        if (!first) sb_puts(b, ", ");
        first = false;
        double v = 0;
        if (lit[i] && const_value(op->in[i], &v)) {
            char num[64];
            fmt_literal(num, sizeof num, v, op->in[i]->type.dtype);
            sb_puts(b, num);
        } else {
            put_value(b, fn, op->in[i]);
        }
    }
    /* a region's attributes follow the operand list, space-separated, then its body */
    const tir_func *r = tir_op_region(op);
    if (r) sb_puts(b, ")");
    for (int i = 0; i < op->nattrs; i++) {
        const tir_attr_value *a = &op->attrs[i];
        if (a == value_attr) continue;
        if (r) sb_puts(b, " ");
        else if (!first) sb_puts(b, ", ");
        first = false;
        sb_printf(b, "%s=", a->name);
        put_attr_value(b, a);
    }
    if (!r) {
        sb_puts(b, ")\n");
        return;
    }
    sb_puts(b, " {\n");
    if (sub) put_body(b, sub, r, indent + 2);
    sb_printf(b, "%*s}\n", indent, "");
}

/* the ops of f, then (for a region) its yield */
static void put_body(sbuf *b, const fnames *fn, const tir_func *f, int indent) {
    for (int k = 0; k < f->nops; k++) {
        const tir_op *op = f->ops[k];
        if (op->nout == 1 && id_ok(fn, op->out[0]) && fn->cand[op->out[0]->id] && !fn->stmt[op->out[0]->id])
            continue; /* printed at its uses */
        put_op(b, fn, op, fn->lit + fn->lit_off[k], indent, fn->sub[k]);
    }
    sb_printf(b, "%*s%s", indent, "", fn->owner ? "yield" : "return");
    for (int i = 0; i < f->nres; i++) {
        sb_puts(b, i ? ", " : " ");
        put_value(b, fn, f->results[i]);
    }
    sb_puts(b, "\n");
}

static void put_func(sbuf *b, const tir_func *f) {
    if (f->grad_of && f->nres == 0) {
        put_grad_def(b, f);
        return;
    }
    fnames fn;
    if (!assign_names(f, &fn)) {
        b->oom = true;
        return;
    }
    sb_printf(b, "func @%s(", f->name);
    for (int i = 0; i < f->nparams; i++) {
        if (i) sb_puts(b, ", ");
        put_value(b, &fn, f->params[i]);
        sb_puts(b, ": ");
        put_type(b, &f->params[i]->type);
    }
    sb_puts(b, ") -> ");
    /* the declared signature; a function built without one shows its results' types */
    int nret = f->nret ? f->nret : f->nres;
    if (nret != 1) sb_puts(b, "(");
    for (int i = 0; i < nret; i++) {
        if (i) sb_puts(b, ", ");
        put_type(b, f->nret ? &f->ret[i] : &f->results[i]->type);
    }
    if (nret != 1) sb_puts(b, ")");
    sb_puts(b, " {\n");
    put_body(b, &fn, f, 2);
    sb_puts(b, "}\n");
    fnames_free(&fn);
}

char *tir_print_func(const tir_func *f) {
    sbuf b = {0};
    if (f) put_func(&b, f);
    return sb_take(&b);
}

char *tir_print_module(const tir_module *m) {
    sbuf b = {0};
    for (int i = 0; m && i < m->nfuncs; i++) {
        if (i) sb_puts(&b, "\n");
        put_func(&b, m->funcs[i]);
    }
    return sb_take(&b);
}

char *tir_module_print(const tir_module *m) { return tir_print_module(m); }
