/* dim.c: symbolic dims. A dim is kept in a normal form, a polynomial with int64 coefficients
 * over "atoms" (a symbol, or a floor quotient num/den that could not be simplified), and is
 * hash-consed in the context, so equal expressions are one pointer and types compare with ==.
 *
 * Normal form: terms sorted in graded-lex order of their monomials (higher degree first,
 * constants last), equal monomials merged, zero terms dropped; each monomial's factors sorted
 * by atom. Atoms are ordered structurally (symbols by name, then quotients by num/den), never
 * by address, so printing is deterministic. Graded lex is a monomial order, which is what lets
 * exact division run as multivariate long division.
 *
 * Division by a positive constant k splits every coefficient c = k*q + r (0 <= r < k):
 * floor((k*Q + R)/k) = Q + floor(R/k) for integer-valued Q, so (2*N + 1)/2 = N and
 * (N + 3)/2 = (N + 1)/2 + 1; the remainder's common factor with k is cancelled. What is left
 * becomes a quotient atom, whose num is therefore already reduced: re-dividing it gives the
 * same atom, which is what makes print -> parse return the same pointer. */
#include <stdio.h>
#include <stdlib.h>

#include "ir.h"

enum { K_POLY, K_SYM, K_QUOT };
#define MAXF 16 /* factors per monomial; more is treated like an overflow */

typedef struct fac {
    const tir_dim *atom; /* a K_SYM or K_QUOT node */
    int pow;
} fac;

typedef struct dterm {
    int64_t c;
    int nf;
    const fac *f;
} dterm;

struct tir_dim {
    tir_dim *chain;
    uint64_t hash;
    int kind;
    const char *name;          /* K_SYM */
    const tir_dim *num, *den;  /* K_QUOT */
    int nt;                    /* K_POLY */
    const dterm *t;
};

struct tir_dim_table {
    size_t nbuckets, count;
    tir_dim **buckets;
};

/* scratch polynomials, malloc'd while an operation runs */
typedef struct sterm {
    int64_t c;
    int nf;
    fac f[MAXF];
} sterm;

typedef struct spoly {
    int n, cap;
    sterm *t;
    bool bad; /* overflow or OOM: the result is NULL */
} spoly;

/* ---------------------------------------------------------------- ordering */

static int dim_cmp(const tir_dim *a, const tir_dim *b);

static int atom_cmp(const tir_dim *a, const tir_dim *b) {
    if (a == b) return 0;
    if (a->kind != b->kind) return a->kind < b->kind ? -1 : 1;
    if (a->kind == K_SYM) return strcmp(a->name, b->name);
    int r = dim_cmp(a->num, b->num);
    return r ? r : dim_cmp(a->den, b->den);
}

static int degree(const fac *f, int nf) {
    int d = 0;
    for (int i = 0; i < nf; i++) d += f[i].pow;
    return d;
}

/* graded lex: higher degree first; then at the first atom whose exponents differ, the higher
 * exponent first */
static int mono_cmp(const fac *a, int na, const fac *b, int nb) {
    int da = degree(a, na), db = degree(b, nb);
    if (da != db) return da > db ? -1 : 1;
    int i = 0, j = 0;
    while (i < na && j < nb) {
        int r = atom_cmp(a[i].atom, b[j].atom);
        if (r < 0) return -1; /* a has an atom b lacks (exponent 0 there) */
        if (r > 0) return 1;
        if (a[i].pow != b[j].pow) return a[i].pow > b[j].pow ? -1 : 1;
        i++, j++;
    }
    return i < na ? -1 : j < nb ? 1 : 0;
}

static int dim_cmp(const tir_dim *a, const tir_dim *b) {
    if (a == b) return 0;
    if (a->nt != b->nt) return a->nt < b->nt ? -1 : 1;
    for (int i = 0; i < a->nt; i++) {
        int r = mono_cmp(a->t[i].f, a->t[i].nf, b->t[i].f, b->t[i].nf);
        if (r) return r;
        if (a->t[i].c != b->t[i].c) return a->t[i].c < b->t[i].c ? -1 : 1;
    }
    return 0;
}

static int sterm_cmp(const void *x, const void *y) {
    const sterm *a = x, *b = y;
    return mono_cmp(a->f, a->nf, b->f, b->nf);
}

/* ---------------------------------------------------------------- interning */

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static uint64_t node_hash(const tir_dim *k) {
    uint64_t h = mix(0, (uint64_t)k->kind);
    if (k->kind == K_SYM) return mix(h, hash_str(k->name));
    if (k->kind == K_QUOT) return mix(mix(h, (uint64_t)(uintptr_t)k->num), (uint64_t)(uintptr_t)k->den);
    for (int i = 0; i < k->nt; i++) {
        h = mix(h, (uint64_t)k->t[i].c);
        for (int j = 0; j < k->t[i].nf; j++)
            h = mix(mix(h, (uint64_t)(uintptr_t)k->t[i].f[j].atom), (uint64_t)k->t[i].f[j].pow);
    }
    return h;
}

static bool node_eq(const tir_dim *a, const tir_dim *b) {
    if (a->kind != b->kind) return false;
    if (a->kind == K_SYM) return strcmp(a->name, b->name) == 0;
    if (a->kind == K_QUOT) return a->num == b->num && a->den == b->den;
    if (a->nt != b->nt) return false;
    for (int i = 0; i < a->nt; i++) {
        const dterm *x = &a->t[i], *y = &b->t[i];
        if (x->c != y->c || x->nf != y->nf) return false;
        for (int j = 0; j < x->nf; j++)
            if (x->f[j].atom != y->f[j].atom || x->f[j].pow != y->f[j].pow) return false;
    }
    return true;
}

/* The table lives in the context arena; growing it abandons the old bucket array there. */
static struct tir_dim_table *table(tir_context *c) {
    if (!c->dims) c->dims = tir_arena_alloc(c->arena, sizeof *c->dims);
    return c->dims;
}

static bool grow(tir_context *c, struct tir_dim_table *tb) {
    size_t n = tb->nbuckets ? tb->nbuckets * 2 : 256;
    tir_dim **nb = tir_arena_alloc(c->arena, n * sizeof *nb);
    if (!nb) return false;
    for (size_t i = 0; i < tb->nbuckets; i++)
        for (tir_dim *d = tb->buckets[i], *next; d; d = next) {
            next = d->chain;
            d->chain = nb[d->hash & (n - 1)];
            nb[d->hash & (n - 1)] = d;
        }
    tb->buckets = nb;
    tb->nbuckets = n;
    return true;
}

/* Find or insert key; on insert, the key's strings and term arrays are copied into the arena. */
static const tir_dim *intern(tir_context *c, const tir_dim *key) {
    struct tir_dim_table *tb = table(c);
    if (!tb) return NULL;
    if (tb->count >= tb->nbuckets && !grow(c, tb)) return NULL;
    uint64_t h = node_hash(key);
    for (tir_dim *d = tb->buckets[h & (tb->nbuckets - 1)]; d; d = d->chain)
        if (d->hash == h && node_eq(d, key)) return d;
    tir_dim *d = tir_arena_alloc(c->arena, sizeof *d);
    if (!d) return NULL;
    *d = *key;
    d->hash = h;
    if (key->kind == K_SYM && !(d->name = tir_arena_strdup(c->arena, key->name))) return NULL;
    if (key->kind == K_POLY && key->nt) {
        dterm *t = tir_arena_alloc(c->arena, (size_t)key->nt * sizeof *t);
        if (!t) return NULL;
        for (int i = 0; i < key->nt; i++) {
            t[i] = key->t[i];
            if (t[i].nf && !(t[i].f = tir_arena_memdup(c->arena, key->t[i].f,
                                                       (size_t)t[i].nf * sizeof(fac))))
                return NULL;
        }
        d->t = t;
    }
    d->chain = tb->buckets[h & (tb->nbuckets - 1)];
    tb->buckets[h & (tb->nbuckets - 1)] = d;
    tb->count++;
    return d;
}

/* ---------------------------------------------------------------- scratch polynomials */

static void sp_free(spoly *p) { free(p->t); }

static sterm *sp_push(spoly *p) {
    if (p->bad) return NULL;
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 8;
        sterm *t = realloc(p->t, (size_t)cap * sizeof *t);
        if (!t) {
            p->bad = true;
            return NULL;
        }
        p->t = t;
        p->cap = cap;
    }
    sterm *t = &p->t[p->n++];
    t->c = 0;
    t->nf = 0;
    return t;
}

static void sp_add_term(spoly *p, int64_t c, const fac *f, int nf) {
    sterm *t = sp_push(p);
    if (!t) return;
    t->c = c;
    t->nf = nf;
    if (nf) memcpy(t->f, f, (size_t)nf * sizeof *f);
}

static void sp_add_dim(spoly *p, const tir_dim *d, int64_t scale) {
    for (int i = 0; i < d->nt; i++) {
        int64_t c;
        if (__builtin_mul_overflow(d->t[i].c, scale, &c)) p->bad = true;
        else sp_add_term(p, c, d->t[i].f, d->t[i].nf);
    }
}

/* sort, merge equal monomials, drop zeros, intern */
static const tir_dim *sp_finish(tir_context *c, spoly *p) {
    const tir_dim *res = NULL;
    if (p->bad) goto out;
    if (p->n > 1) qsort(p->t, (size_t)p->n, sizeof *p->t, sterm_cmp);
    int n = 0;
    for (int i = 0; i < p->n; i++) {
        if (n > 0 && sterm_cmp(&p->t[n - 1], &p->t[i]) == 0) {
            if (__builtin_add_overflow(p->t[n - 1].c, p->t[i].c, &p->t[n - 1].c)) goto out;
            continue;
        }
        if (n > 0 && p->t[n - 1].c == 0) n--; /* fully merged and cancelled */
        p->t[n++] = p->t[i];
    }
    if (n > 0 && p->t[n - 1].c == 0) n--;
    dterm *t = n ? malloc((size_t)n * sizeof *t) : NULL;
    if (n && !t) goto out;
    for (int i = 0; i < n; i++) t[i] = (dterm){p->t[i].c, p->t[i].nf, p->t[i].f};
    tir_dim key = {.kind = K_POLY, .nt = n, .t = t};
    res = intern(c, &key);
    free(t);
out:
    sp_free(p);
    return res;
}

static const tir_dim *mono(tir_context *c, int64_t coeff, const fac *f, int nf) {
    spoly p = {0};
    sp_add_term(&p, coeff, f, nf);
    return sp_finish(c, &p);
}

static const tir_dim *atom_dim(tir_context *c, const tir_dim *atom) {
    if (!atom) return NULL;
    fac f = {atom, 1};
    return mono(c, 1, &f, 1);
}

/* ---------------------------------------------------------------- arithmetic */

const tir_dim *tir_dim_const(tir_context *c, int64_t v) { return c ? mono(c, v, NULL, 0) : NULL; }

const tir_dim *tir_dim_sym(tir_context *c, const char *name) {
    if (!c || !name || !*name) return NULL;
    tir_dim key = {.kind = K_SYM, .name = name};
    return atom_dim(c, intern(c, &key));
}

bool tir_dim_is_const(const tir_dim *d, int64_t *v) {
    if (!d) return false;
    if (d->nt == 0) {
        if (v) *v = 0;
        return true;
    }
    if (d->nt == 1 && d->t[0].nf == 0) {
        if (v) *v = d->t[0].c;
        return true;
    }
    return false;
}

static const tir_dim *lin(tir_context *c, const tir_dim *a, int64_t sa, const tir_dim *b,
                          int64_t sb) {
    if (!c || !a || !b) return NULL;
    spoly p = {0};
    sp_add_dim(&p, a, sa);
    sp_add_dim(&p, b, sb);
    return sp_finish(c, &p);
}

const tir_dim *tir_dim_add(tir_context *c, const tir_dim *a, const tir_dim *b) {
    return lin(c, a, 1, b, 1);
}

const tir_dim *tir_dim_sub(tir_context *c, const tir_dim *a, const tir_dim *b) {
    return lin(c, a, 1, b, -1);
}

/* merge two sorted factor lists; false when the product has too many factors */
static bool fac_mul(const fac *a, int na, const fac *b, int nb, fac *out, int *nout) {
    int i = 0, j = 0, n = 0;
    while (i < na || j < nb) {
        if (n == MAXF) return false;
        int r = i == na ? 1 : j == nb ? -1 : atom_cmp(a[i].atom, b[j].atom);
        if (r < 0) out[n++] = a[i++];
        else if (r > 0) out[n++] = b[j++];
        else {
            if (__builtin_add_overflow(a[i].pow, b[j].pow, &out[n].pow)) return false;
            out[n++].atom = a[i].atom;
            i++, j++;
        }
    }
    *nout = n;
    return true;
}

/* A product of sums expands to na*nb terms, and a chain of them grows geometrically (6 dims of
 * 40 terms: 40^6), so a product of two sums that would expand past TIR_DIM_MAX_TERMS fails
 * instead. Scaling by a monomial is linear and always allowed. */
bool tir_dim_mul_too_large(const tir_dim *a, const tir_dim *b) {
    if (!a || !b || a->nt <= 1 || b->nt <= 1) return false;
    return (int64_t)a->nt * b->nt > TIR_DIM_MAX_TERMS;
}

const tir_dim *tir_dim_mul(tir_context *c, const tir_dim *a, const tir_dim *b) {
    if (!c || !a || !b || tir_dim_mul_too_large(a, b)) return NULL;
    spoly p = {0};
    for (int i = 0; i < a->nt && !p.bad; i++)
        for (int j = 0; j < b->nt && !p.bad; j++) {
            sterm *t = sp_push(&p);
            if (!t) break;
            if (__builtin_mul_overflow(a->t[i].c, b->t[j].c, &t->c) ||
                !fac_mul(a->t[i].f, a->t[i].nf, b->t[j].f, b->t[j].nf, t->f, &t->nf))
                p.bad = true;
        }
    return sp_finish(c, &p);
}

/* monomial quotient a/b when b's coefficient and factors divide a's */
static bool mono_div(const dterm *a, const dterm *b, sterm *out) {
    if (b->c == 0 || (b->c == -1 && a->c == INT64_MIN) || a->c % b->c) return false;
    out->c = a->c / b->c;
    out->nf = 0;
    int i = 0, j = 0;
    while (i < a->nf) {
        int r = j == b->nf ? -1 : atom_cmp(a->f[i].atom, b->f[j].atom);
        if (r > 0) return false; /* b has an atom a lacks */
        if (r < 0) {
            out->f[out->nf++] = a->f[i++];
        } else {
            if (a->f[i].pow < b->f[j].pow) return false;
            if (a->f[i].pow > b->f[j].pow)
                out->f[out->nf++] = (fac){a->f[i].atom, a->f[i].pow - b->f[j].pow};
            i++, j++;
        }
    }
    return j == b->nf;
}

/* multivariate long division: lead terms in a monomial order, so each step removes the lead
 * term of the remainder and the loop ends; the bound only guards pathological sizes */
bool tir_dim_multiple_of(tir_context *c, const tir_dim *d, int64_t v) {
    int64_t x;
    if (v <= 1) return true;
    if (tir_dim_is_const(d, &x)) return x % v == 0;
    if (!c) return false;
    const tir_dim *q = tir_dim_exact_div(c, d, tir_dim_const(c, v));
    return q && tir_dim_mul(c, q, tir_dim_const(c, v)) == d;
}

const tir_dim *tir_dim_exact_div(tir_context *c, const tir_dim *a, const tir_dim *b) {
    if (!c || !a || !b || b->nt == 0) return NULL;
    const tir_dim *q = tir_dim_const(c, 0), *r = a;
    for (int iter = 0; q && r && r->nt > 0; iter++) {
        sterm t;
        if (iter == 256 || !mono_div(&r->t[0], &b->t[0], &t)) return NULL;
        const tir_dim *td = mono(c, t.c, t.f, t.nf);
        q = tir_dim_add(c, q, td);
        r = tir_dim_sub(c, r, tir_dim_mul(c, td, b));
    }
    return r ? q : NULL;
}

static int64_t floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int64_t gcd64(int64_t a, int64_t b) {
    uint64_t x = a < 0 ? -(uint64_t)a : (uint64_t)a, y = b < 0 ? -(uint64_t)b : (uint64_t)b;
    while (y) {
        uint64_t t = x % y;
        x = y;
        y = t;
    }
    return (int64_t)x;
}

static const tir_dim *quot_atom(tir_context *c, const tir_dim *num, const tir_dim *den) {
    if (!num || !den) return NULL;
    tir_dim key = {.kind = K_QUOT, .num = num, .den = den};
    return atom_dim(c, intern(c, &key));
}

/* a is exactly one quotient atom x/k2 with a constant k2 > 0 */
static bool const_quot(const tir_dim *a, const tir_dim **x, int64_t *k2) {
    if (a->nt != 1 || a->t[0].c != 1 || a->t[0].nf != 1 || a->t[0].f[0].pow != 1) return false;
    const tir_dim *q = a->t[0].f[0].atom;
    *x = q->num;
    return q->kind == K_QUOT && tir_dim_is_const(q->den, k2) && *k2 > 0;
}

/* floor(a / k) for a constant k > 1 */
static const tir_dim *div_const(tir_context *c, const tir_dim *a, int64_t k) {
    /* floor(floor(x/k2)/k) == floor(x/(k2*k)) for positive k2, k */
    int64_t k2, kk;
    const tir_dim *x;
    if (const_quot(a, &x, &k2) && !__builtin_mul_overflow(k, k2, &kk)) return div_const(c, x, kk);
    spoly q = {0}, r = {0};
    int64_t g = k;
    for (int i = 0; i < a->nt; i++) {
        /* floor quotient and remainder without a product that could overflow */
        int64_t rc = a->t[i].c % k, qc = a->t[i].c / k - (rc < 0);
        if (rc < 0) rc += k;
        if (qc) sp_add_term(&q, qc, a->t[i].f, a->t[i].nf);
        if (rc) {
            sp_add_term(&r, rc, a->t[i].f, a->t[i].nf);
            g = gcd64(g, rc);
        }
    }
    if (q.bad || r.bad) {
        sp_free(&q);
        sp_free(&r);
        return NULL;
    }
    for (int i = 0; i < r.n; i++) r.t[i].c /= g;
    bool rconst = r.n == 0 || (r.n == 1 && r.t[0].nf == 0); /* 0 <= r < k: floor is 0 */
    const tir_dim *qd = sp_finish(c, &q);
    if (rconst) {
        sp_free(&r);
        return qd;
    }
    const tir_dim *rd = sp_finish(c, &r);
    if (rd && const_quot(rd, &x, &k2) && !__builtin_mul_overflow(k / g, k2, &kk)) return tir_dim_add(c, qd, div_const(c, rd, k / g));
    return tir_dim_add(c, qd, quot_atom(c, rd, tir_dim_const(c, k / g)));
}

const tir_dim *tir_dim_div(tir_context *c, const tir_dim *a, const tir_dim *b) {
    if (!c || !a || !b) return NULL;
    int64_t av, bv;
    if (tir_dim_is_const(b, &bv)) {
        if (bv == 0) return NULL;
        if (bv == 1) return a;
        if (tir_dim_is_const(a, &av))
            return av == INT64_MIN && bv == -1 ? NULL : tir_dim_const(c, floordiv(av, bv));
        if (bv < 0) { /* floor(a / -k) == floor(-a / k) */
            if (bv == INT64_MIN) return quot_atom(c, a, b);
            return tir_dim_div(c, lin(c, a, -1, tir_dim_const(c, 0), 0), tir_dim_const(c, -bv));
        }
        return div_const(c, a, bv);
    }
    if (a->nt == 0) return a;
    const tir_dim *e = tir_dim_exact_div(c, a, b);
    return e ? e : quot_atom(c, a, b);
}

/* ---------------------------------------------------------------- printing */

typedef struct out {
    char *buf;
    size_t n, len;
} sbuf;

static void put(sbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(o->len < o->n ? o->buf + o->len : NULL, o->len < o->n ? o->n - o->len : 0,
                      fmt, ap);
    va_end(ap);
    if (k > 0) o->len += (size_t)k;
}

static void print_dim(sbuf *o, const tir_dim *d);

/* an operand of '/' that needs no parentheses: a constant >= 0 or a bare symbol */
static bool simple(const tir_dim *d, bool allow_quot) {
    int64_t v;
    if (tir_dim_is_const(d, &v)) return v >= 0;
    return d->nt == 1 && d->t[0].c == 1 && d->t[0].nf == 1 && d->t[0].f[0].pow == 1 &&
           (d->t[0].f[0].atom->kind == K_SYM || allow_quot);
}

static void print_atom(sbuf *o, const tir_dim *a, bool wrap) {
    if (a->kind == K_SYM) {
        put(o, "%s", a->name);
        return;
    }
    /* a quotient after another factor needs parentheses: M*N/2 would read as (M*N)/2 */
    if (wrap) put(o, "(");
    bool pn = !simple(a->num, true), pd = !simple(a->den, false);
    put(o, "%s", pn ? "(" : "");
    print_dim(o, a->num);
    put(o, "%s/%s", pn ? ")" : "", pd ? "(" : "");
    print_dim(o, a->den);
    put(o, "%s", pd ? ")" : "");
    if (wrap) put(o, ")");
}

static void print_dim(sbuf *o, const tir_dim *d) {
    if (d->nt == 0) {
        put(o, "0");
        return;
    }
    for (int i = 0; i < d->nt; i++) {
        const dterm *t = &d->t[i];
        /* |c| without overflow for INT64_MIN */
        uint64_t mag = t->c < 0 ? -(uint64_t)t->c : (uint64_t)t->c;
        if (i == 0) put(o, "%s", t->c < 0 ? "-" : "");
        else put(o, " %c ", t->c < 0 ? '-' : '+');
        bool any = false;
        if (mag != 1 || t->nf == 0) {
            put(o, "%llu", (unsigned long long)mag);
            any = true;
        }
        for (int j = 0; j < t->nf; j++)
            for (int p = 0; p < t->f[j].pow; p++) {
                if (any) put(o, "*");
                /* a leading '-' is unary and binds tighter than '/': -(N/2), not (-N)/2 */
                print_atom(o, t->f[j].atom, any || (i == 0 && t->c < 0));
                any = true;
            }
    }
}

int tir_dim_print(const tir_dim *d, char *buf, size_t n) {
    sbuf o = {buf, n, 0};
    if (n) buf[0] = 0;
    if (!d) put(&o, "?");
    else print_dim(&o, d);
    return (int)o.len;
}

/* ---------------------------------------------------------------- parsing */

typedef struct parser {
    tir_context *c;
    const char *s, *e;
    const char *err;
} parser;

static void skip_ws(parser *p) {
    while (p->s < p->e && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')) p->s++;
}

static const tir_dim *check(parser *p, const tir_dim *d, const char *why) {
    if (!d && !p->err) p->err = why;
    return d;
}

static const tir_dim *p_expr(parser *p, int depth);

static const tir_dim *p_unary(parser *p, int depth) {
    if (depth > 200) {
        p->err = "dim expression nested too deeply";
        return NULL;
    }
    skip_ws(p);
    if (p->s == p->e) {
        p->err = "expected a dim (an integer, a symbol or '(')";
        return NULL;
    }
    char ch = *p->s;
    if (ch == '-') {
        p->s++;
        const tir_dim *x = p_unary(p, depth + 1);
        if (!x) return NULL;
        return check(p, lin(p->c, x, -1, x, 0), "dim arithmetic overflows int64");
    }
    if (ch == '(') {
        p->s++;
        const tir_dim *x = p_expr(p, depth + 1);
        if (!x) return NULL;
        skip_ws(p);
        if (p->s == p->e || *p->s != ')') {
            p->err = "expected ')' in dim expression";
            return NULL;
        }
        p->s++;
        return x;
    }
    if (ch >= '0' && ch <= '9') {
        int64_t v = 0;
        while (p->s < p->e && *p->s >= '0' && *p->s <= '9') {
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p->s - '0', &v)) {
                p->err = "integer in dim is too large";
                return NULL;
            }
            p->s++;
        }
        return check(p, tir_dim_const(p->c, v), "out of memory");
    }
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_') {
        const char *b = p->s;
        while (p->s < p->e && ((*p->s >= 'a' && *p->s <= 'z') || (*p->s >= 'A' && *p->s <= 'Z') ||
                               (*p->s >= '0' && *p->s <= '9') || *p->s == '_'))
            p->s++;
        char name[128];
        if ((size_t)(p->s - b) >= sizeof name) {
            p->err = "symbol name in dim is too long";
            return NULL;
        }
        memcpy(name, b, (size_t)(p->s - b));
        name[p->s - b] = 0;
        return check(p, tir_dim_sym(p->c, name), "out of memory");
    }
    p->err = "expected a dim (an integer, a symbol or '(')";
    return NULL;
}

static const tir_dim *p_term(parser *p, int depth) {
    const tir_dim *x = p_unary(p, depth);
    for (;;) {
        if (!x) return NULL;
        skip_ws(p);
        if (p->s == p->e || (*p->s != '*' && *p->s != '/')) return x;
        char op = *p->s++;
        const tir_dim *y = p_unary(p, depth);
        if (!y) return NULL;
        int64_t v;
        if (op == '/' && tir_dim_is_const(y, &v) && v == 0) {
            p->err = "division by zero in dim";
            return NULL;
        }
        if (op == '*' && tir_dim_mul_too_large(x, y)) {
            p->err = "dim expression too large";
            return NULL;
        }
        x = check(p, op == '*' ? tir_dim_mul(p->c, x, y) : tir_dim_div(p->c, x, y),
                  "dim arithmetic overflows int64");
    }
}

static const tir_dim *p_expr(parser *p, int depth) {
    const tir_dim *x = p_term(p, depth);
    for (;;) {
        if (!x) return NULL;
        skip_ws(p);
        if (p->s == p->e || (*p->s != '+' && *p->s != '-')) return x;
        char op = *p->s++;
        const tir_dim *y = p_term(p, depth);
        if (!y) return NULL;
        x = check(p, lin(p->c, x, 1, y, op == '+' ? 1 : -1), "dim arithmetic overflows int64");
    }
}

const tir_dim *tir_dim_parse(tir_context *c, const char *s, size_t n, const char **err) {
    parser p = {c, s, s ? s + n : s, NULL};
    const tir_dim *d = c && s ? p_expr(&p, 0) : NULL;
    if (d) {
        skip_ws(&p);
        if (p.s != p.e) {
            d = NULL;
            p.err = "unexpected character after dim expression";
        }
    }
    if (!d && !p.err) p.err = "bad dim expression";
    if (err) *err = d ? NULL : p.err;
    return d;
}

/* ---------------------------------------------------------------- symbols, bindings, eval */

static void collect(const tir_dim *d, const char **names, int max, int *n) {
    for (int i = 0; i < d->nt; i++)
        for (int j = 0; j < d->t[i].nf; j++) {
            const tir_dim *a = d->t[i].f[j].atom;
            if (a->kind == K_QUOT) {
                collect(a->num, names, max, n);
                collect(a->den, names, max, n);
                continue;
            }
            bool seen = false;
            for (int k = 0; k < *n && k < max; k++) seen |= strcmp(names[k], a->name) == 0;
            if (!seen) {
                if (*n < max) names[*n] = a->name;
                (*n)++;
            }
        }
}

int tir_dim_symbols(const tir_dim *d, const char **out, int max) {
    int n = 0;
    if (d) collect(d, out, max, &n);
    return n < max ? n : max;
}

bool tir_bindings_get(const tir_bindings *b, const char *name, int64_t *v) {
    if (!b || !name) return false;
    for (int i = 0; i < b->n; i++)
        if (strcmp(b->names[i], name) == 0) {
            if (v) *v = b->values[i];
            return true;
        }
    return false;
}

/* names are kept by pointer: symbol names from dims live as long as the context */
tir_status tir_bindings_set(tir_bindings *b, const char *name, int64_t v) {
    if (!b || !name) return TIR_ERR_INVALID;
    int64_t old;
    if (tir_bindings_get(b, name, &old)) return old == v ? TIR_OK : TIR_ERR_INVALID;
    if (b->n >= (int)(sizeof b->names / sizeof b->names[0])) return TIR_ERR_INVALID;
    b->names[b->n] = name;
    b->values[b->n++] = v;
    return TIR_OK;
}

/* value of d without the final sign check (quotient numerators may be negative) */
static bool ev(const tir_dim *d, const tir_bindings *b, int64_t *out) {
    int64_t sum = 0;
    for (int i = 0; i < d->nt; i++) {
        int64_t prod = d->t[i].c;
        for (int j = 0; j < d->t[i].nf; j++) {
            const tir_dim *a = d->t[i].f[j].atom;
            int64_t v, num, den;
            if (a->kind == K_SYM) {
                if (!tir_bindings_get(b, a->name, &v)) return false;
            } else {
                if (!ev(a->num, b, &num) || !ev(a->den, b, &den) || den == 0 ||
                    (num == INT64_MIN && den == -1))
                    return false;
                v = floordiv(num, den);
            }
            for (int p = 0; p < d->t[i].f[j].pow; p++)
                if (__builtin_mul_overflow(prod, v, &prod)) return false;
        }
        if (__builtin_add_overflow(sum, prod, &sum)) return false;
    }
    *out = sum;
    return true;
}

tir_status tir_dim_eval(const tir_dim *d, const tir_bindings *b, int64_t *out) {
    int64_t v;
    if (!d || !ev(d, b, &v) || v < 0) return TIR_ERR_INVALID;
    if (out) *out = v;
    return TIR_OK;
}

/* true when sym occurs only to the first power and never inside a quotient */
static bool linear_in(const tir_dim *d, const char *sym) {
    for (int i = 0; i < d->nt; i++)
        for (int j = 0; j < d->t[i].nf; j++) {
            const tir_dim *a = d->t[i].f[j].atom;
            if (a->kind == K_QUOT) {
                const char *names[64];
                int n = tir_dim_symbols(a->num, names, 64);
                n += tir_dim_symbols(a->den, names + n, 64 - n);
                for (int k = 0; k < n; k++)
                    if (strcmp(names[k], sym) == 0) return false;
            } else if (strcmp(a->name, sym) == 0 && d->t[i].f[j].pow != 1) {
                return false;
            }
        }
    return true;
}

tir_status tir_dim_bind(const tir_dim *d, int64_t size, tir_bindings *b, char *err, size_t errn) {
    char txt[256], dummy[1];
    if (!err || !errn) err = dummy, errn = sizeof dummy;
    err[0] = 0;
    if (!d || !b) {
        snprintf(err, errn, "no dim to bind");
        return TIR_ERR_INVALID;
    }
    tir_dim_print(d, txt, sizeof txt);
    if (size < 0) {
        snprintf(err, errn, "size %lld of dim %s is negative", (long long)size, txt);
        return TIR_ERR_INVALID;
    }
    const char *names[64], *unbound[64];
    int n = tir_dim_symbols(d, names, 64), nu = 0;
    for (int i = 0; i < n; i++)
        if (!tir_bindings_get(b, names[i], NULL)) unbound[nu++] = names[i];
    int64_t v;
    if (nu == 0) {
        if (!ev(d, b, &v)) {
            snprintf(err, errn, "dim %s cannot be evaluated (division by zero or overflow)", txt);
            return TIR_ERR_INVALID;
        }
        if (v != size) {
            snprintf(err, errn, "size %lld does not match dim %s = %lld", (long long)size, txt,
                     (long long)v);
            return TIR_ERR_INVALID;
        }
        return TIR_OK;
    }
    if (nu > 1) {
        snprintf(err, errn, "cannot infer both %s and %s from dim %s = %lld", unbound[0],
                 unbound[1], txt, (long long)size);
        return TIR_ERR_INVALID;
    }
    const char *s = unbound[0];
    if (!linear_in(d, s)) {
        snprintf(err, errn, "cannot infer %s from dim %s = %lld: not linear in %s", s, txt,
                 (long long)size, s);
        return TIR_ERR_INVALID;
    }
    /* d(s) = a*s + r0 exactly, so two evaluations give a and r0 */
    tir_bindings t = *b;
    int64_t r0, r1, a;
    bool ok = tir_bindings_set(&t, s, 0) == TIR_OK && ev(d, &t, &r0);
    t.values[t.n - 1] = 1;
    if (!ok || !ev(d, &t, &r1) || __builtin_sub_overflow(r1, r0, &a)) {
        snprintf(err, errn, "dim %s cannot be evaluated (division by zero or overflow)", txt);
        return TIR_ERR_INVALID;
    }
    if (a == 0) {
        if (r0 == size) return TIR_OK; /* s does not matter under these bindings */
        snprintf(err, errn, "size %lld does not match dim %s = %lld", (long long)size, txt,
                 (long long)r0);
        return TIR_ERR_INVALID;
    }
    int64_t diff;
    if (__builtin_sub_overflow(size, r0, &diff) || (a == -1 && diff == INT64_MIN) ||
        diff % a != 0) {
        snprintf(err, errn, "size %lld does not fit dim %s: %s would not be an integer",
                 (long long)size, txt, s);
        return TIR_ERR_INVALID;
    }
    v = diff / a;
    if (v < 0) {
        snprintf(err, errn, "size %lld does not fit dim %s: %s would be %lld", (long long)size,
                 txt, s, (long long)v);
        return TIR_ERR_INVALID;
    }
    if (tir_bindings_set(b, s, v) != TIR_OK) {
        snprintf(err, errn, "too many symbols to bind %s", s);
        return TIR_ERR_INVALID;
    }
    return TIR_OK;
}

static int unbound_symbols(const tir_dim *d, const tir_bindings *b) {
    const char *names[64];
    int n = tir_dim_symbols(d, names, 64), nu = 0;
    for (int i = 0; i < n; i++)
        if (!tir_bindings_get(b, names[i], NULL)) nu++;
    return nu;
}

/* docs/tir.md §8: binds to a fixed point. Each pass binds every dim that tir_dim_bind can bind
 * now (one unbound symbol, linear in it); a dim it cannot bind yet (several unknowns, or one it
 * is not linear in: N*N) stays pending and is retried once other parameters have bound more, so
 * the order of the parameters never matters. A dim with every symbol bound that does not match
 * fails at once; whatever is still pending at the fixed point fails with the reason it did. */
tir_status tir_bind_params(int nparams, const tir_type *const *types, const int64_t *const *sizes,
                           tir_bindings *b, int *bad_param, int *bad_dim, char *err, size_t errn) {
    char dummy[1];
    int bp_, bd_;
    if (!err || !errn) err = dummy, errn = sizeof dummy;
    if (!bad_param) bad_param = &bp_;
    if (!bad_dim) bad_dim = &bd_;
    err[0] = 0;
    *bad_param = *bad_dim = -1;
    if (nparams <= 0) return TIR_OK;
    if (!types || !sizes || !b) {
        snprintf(err, errn, "nothing to bind");
        return TIR_ERR_INVALID;
    }
    bool *done = calloc((size_t)nparams * TIR_MAX_RANK, sizeof *done);
    if (!done) {
        snprintf(err, errn, "out of memory");
        return TIR_ERR_OOM;
    }
    tir_status st = TIR_OK;
    for (bool progress = true; progress && st == TIR_OK;) {
        progress = false;
        for (int p = 0; p < nparams && st == TIR_OK; p++)
            for (int j = 0; j < types[p]->rank && st == TIR_OK; j++) {
                bool *dj = &done[p * TIR_MAX_RANK + j];
                const tir_dim *d = types[p]->dims[j];
                if (*dj) continue;
                int nu = unbound_symbols(d, b);
                if (nu > 1) continue;
                if (tir_dim_bind(d, sizes[p][j], b, err, errn) == TIR_OK) {
                    *dj = progress = true;
                    err[0] = 0;
                } else if (nu == 0) { /* fully bound and wrong: no later binding changes that */
                    *bad_param = p, *bad_dim = j;
                    st = TIR_ERR_INVALID;
                }
                /* else not bindable from this dim yet: retried after the others */
            }
    }
    /* the fixed point: the first dim still pending cannot be bound, whatever the order */
    for (int p = 0; p < nparams && st == TIR_OK; p++)
        for (int j = 0; j < types[p]->rank && st == TIR_OK; j++) {
            if (done[p * TIR_MAX_RANK + j]) continue;
            const tir_dim *d = types[p]->dims[j];
            *bad_param = p, *bad_dim = j;
            st = TIR_ERR_INVALID;
            if (unbound_symbols(d, b) > 1) {
                char ds[128];
                tir_dim_print(d, ds, sizeof ds);
                snprintf(err, errn, "cannot bind the symbols of %s from its size %lld alone", ds,
                         (long long)sizes[p][j]);
            } else {
                tir_bindings t = *b;
                (void)tir_dim_bind(d, sizes[p][j], &t, err, errn);
            }
        }
    free(done);
    return st;
}
