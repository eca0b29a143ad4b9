/* simplify.c: cleans up what the frontend and the other passes leave: constant folding,
 * algebraic identities, common-subexpression elimination and dead-code elimination, repeated
 * until nothing changes. The gradient pass relies on it to drop the forward ops the loss does not
 * need and the zeros and ones its rules introduce.
 *
 * Rules (each must give the interpreter's result exactly):
 *   fold     an elementwise op of full() constants -> full() (tir_scalar_eval, rounded to the
 *            result dtype, as the interpreter); movement ops and max/min/mean/sum reductions of
 *            a full() with constant extents -> full()
 *   identity x+0 0+x x-0 x*1 1*x x/1 pow(x,1) (for floats x+(-0) and (-0)+x: x+0 is +0 for x=-0) and(x,true) or(x,false) (identity elements per op,
 *            sides from TIR_F_COMMUTATIVE); f(x,x) -> x for TIR_F_IDEMPOTENT; neg(neg(x)) for floats
 *            (integer neg saturates);
 *            cast/reshape/broadcast to x's own type, identity transpose, full-range slice,
 *            one-operand concat, where(c,x,x), where(const,...), reshape(reshape(x))
 *   absorb   x*0 and x-x -> 0 for integers only (for floats x*0 is NaN for inf/NaN x);
 *            and(x,false), or(x,true)
 *   CSE      ops equal in opcode, operands (unordered for commutative ops), attributes and callee
 *   DCE      ops none of whose results are used (calls are pure, so they go too)
 * Every rule keeps a result's type: a replacement of a different shape is not taken.
 *
 * requires: a verified module.
 * maintains: signatures and results (values may be replaced by equal ones), names of kept values.
 * breaks: op identity (the op list is rebuilt). */
#include "passes.h"
#include "rewrite.h"

/* ---------------------------------------------------------------- constants */

static bool const_of(const tir_value *v, double *c) {
    if (!v || !v->def || v->def->code != TIR_OP_FULL) return false;
    *c = tir_dtype_round(v->type.dtype, tir_attr_float(v->def, "value", 0));
    return true;
}

static bool is_const(const tir_value *v, double c) {
    double x;
    return const_of(v, &x) && x == c;
}

/* the same double, the sign of a zero included (NaN is never the same) */
static bool same_double(double a, double b) { return a == b && signbit(a) == signbit(b); }

/* is v the constant c, exactly: for a float the sign of a zero counts */
static bool is_const_exact(const tir_value *v, double c) {
    double x;
    if (!const_of(v, &x)) return false;
    return tir_dtype_is_float(v->type.dtype) ? same_double(x, c) : x == c;
}

/* the identity element of a binary op for its right operand (left too when commutative), for
 * operands of dtype dt. For floats x + (-0) == x for every x, but x + 0 is +0 for x = -0, so the
 * identity of add is -0; x - 0 == x (and x - (-0) is x + 0, which is not). */
static bool identity_elem(tir_opcode code, tir_dtype dt, double *e) {
    switch (code) {
    case TIR_OP_ADD: *e = tir_dtype_is_float(dt) ? -0.0 : 0.0; return true;
    case TIR_OP_SUB: case TIR_OP_OR: *e = 0; return true;
    case TIR_OP_MUL: case TIR_OP_DIV: case TIR_OP_POW: case TIR_OP_AND: *e = 1; return true;
    default: return false;
    }
}

/* The interpreter's sum of n copies of c: accumulated in f64 from +0 (so n copies of -0 sum to
 * +0). n*c is that sum when every partial sum k*c is exact: c has at most 24 significant bits
 * and n <= 2^29. Otherwise the sum is added up as the interpreter does, when n is small. */
static bool sum_of_copies(double c, int64_t n, double *out) {
    if ((double)(float)c == c && n <= ((int64_t)1 << 29)) {
        *out = 0.0 + c * (double)n;
        return true;
    }
    if (n > 4096) return false;
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) acc += c;
    *out = acc;
    return true;
}

static bool all_const_extents(const tir_type *t, const bool *axes, int64_t *count) {
    int64_t n = 1, v;
    for (int i = 0; i < t->rank; i++) {
        if (axes && !axes[i]) continue;
        if (!tir_dim_is_const(t->dims[i], &v)) return false;
        n *= v;
    }
    *count = n;
    return true;
}

/* the value an op of constant operands computes, when every element is the same */
static bool fold(const tir_op *op, tir_value *const *in, double *out) {
    unsigned fl = tir_ops[op->code].flags;
    double c[3] = {0, 0, 0};
    if (op->nout != 1 || op->nin < 1 || op->nin > 3) return false;
    for (int i = 0; i < op->nin; i++)
        if (!const_of(in[i], &c[i])) return false;
    tir_dtype rt = op->out[0]->type.dtype;
    if (tir_op_is_elementwise(op->code)) {
        tir_dtype dt = in[op->nin - 1]->type.dtype;
        *out = tir_dtype_round(rt, tir_scalar_eval(op, dt, c[0], c[1], c[2]));
        return true;
    }
    if ((fl & TIR_F_MOVEMENT) && op->code != TIR_OP_SPLIT) {
        for (int i = 1; i < op->nin; i++)
            if (!same_double(c[i], c[0])) return false;
        *out = c[0];
        return true;
    }
    if (op->code == TIR_OP_SUM || op->code == TIR_OP_MAX || op->code == TIR_OP_MIN ||
        op->code == TIR_OP_MEAN) {
        const tir_type *xt = &in[0]->type;
        bool red[TIR_MAX_RANK];
        const tir_attr_value *a = tir_op_attr(op, "axes");
        for (int i = 0; i < xt->rank; i++) red[i] = a == NULL;
        for (int i = 0; a && i < a->u.ints.n; i++) {
            int ax;
            if (!tir_norm_axis(a->u.ints.v[i], xt->rank, &ax)) return false;
            red[ax] = true;
        }
        int64_t n;
        if (!all_const_extents(xt, red, &n) || n <= 0) return false;
        double v = c[0]; /* max and min: c itself */
        if (op->code == TIR_OP_SUM || op->code == TIR_OP_MEAN) {
            if (!sum_of_copies(c[0], n, &v)) return false;
            if (op->code == TIR_OP_MEAN) v /= (double)n; /* as the interpreter: sum, then divide */
        }
        *out = tir_dtype_round(rt, v);
        return true;
    }
    return false;
}

/* ---------------------------------------------------------------- identities */

static tir_value *same_type(tir_value *v, const tir_op *op) {
    return v && tir_type_equal(&v->type, &op->out[0]->type) ? v : NULL;
}

static tir_value *identity(const tir_op *op, tir_value *const *in) {
    unsigned fl = tir_ops[op->code].flags;
    double e, c;
    if (fl & TIR_F_BINARY) {
        if ((fl & TIR_F_IDEMPOTENT) && in[0] == in[1]) return same_type(in[0], op);
        if (identity_elem(op->code, in[0]->type.dtype, &e)) {
            if (is_const_exact(in[1], e) && same_type(in[0], op)) return in[0];
            if ((fl & TIR_F_COMMUTATIVE) && is_const_exact(in[0], e) && same_type(in[1], op)) return in[1];
        }
        return NULL;
    }
    switch (op->code) {
    case TIR_OP_NEG: /* not for integers: neg saturates (neg of a u8 is 0, of INT32_MIN is INT32_MAX) */
        if (!tir_dtype_is_float(op->out[0]->type.dtype) || !tir_dtype_is_float(in[0]->type.dtype))
            return NULL;
        return in[0]->def && in[0]->def->code == TIR_OP_NEG ? same_type(in[0]->def->in[0], op) : NULL;
    case TIR_OP_CAST:
    case TIR_OP_RESHAPE:
    case TIR_OP_BROADCAST:
    case TIR_OP_SLICE: /* a step-1 slice keeping the whole extent starts at 0 */
        if (op->code == TIR_OP_SLICE && tir_attr_int(op, "step", 1) != 1) return NULL;
        return same_type(in[0], op);
    case TIR_OP_TRANSPOSE: {
        const tir_attr_value *p = tir_op_attr(op, "perm");
        for (int i = 0; p && i < p->u.ints.n; i++)
            if (p->u.ints.v[i] != i) return NULL;
        return same_type(in[0], op);
    }
    case TIR_OP_CONCAT: return op->nin == 1 ? same_type(in[0], op) : NULL;
    case TIR_OP_WHERE:
        if (in[1] == in[2]) return same_type(in[1], op);
        if (const_of(in[0], &c)) return same_type(c != 0 ? in[1] : in[2], op);
        return NULL;
    default: return NULL;
    }
}

/* ops whose result is a constant whatever the non-constant operand holds */
static bool absorb(const tir_op *op, tir_value *const *in, double *out) {
    tir_dtype rt = op->nout == 1 ? op->out[0]->type.dtype : TIR_F32;
    switch (op->code) {
    case TIR_OP_MUL:
        if (!tir_dtype_is_int(rt) || !(is_const(in[0], 0) || is_const(in[1], 0))) return false;
        *out = 0;
        return true;
    case TIR_OP_SUB:
        if (!tir_dtype_is_int(rt) || in[0] != in[1]) return false;
        *out = 0;
        return true;
    case TIR_OP_AND:
        if (!(is_const(in[0], 0) || is_const(in[1], 0))) return false;
        *out = 0;
        return true;
    case TIR_OP_OR:
        if (!(const_of(in[0], out) && *out != 0) && !(const_of(in[1], out) && *out != 0)) return false;
        *out = 1;
        return true;
    default: return false;
    }
}

/* ---------------------------------------------------------------- CSE */

static uint64_t mix(uint64_t h, uint64_t x) {
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

static uint64_t attr_hash(const tir_attr_value *a) {
    uint64_t h = mix(0, (uint64_t)a->kind);
    for (const char *s = a->name; s && *s; s++) h = mix(h, (uint64_t)(unsigned char)*s);
    switch (a->kind) {
    case TIR_ATTR_INT: return mix(h, (uint64_t)a->u.i);
    case TIR_ATTR_FLOAT: {
        uint64_t bits;
        memcpy(&bits, &a->u.f, sizeof bits);
        return mix(h, bits);
    }
    case TIR_ATTR_BOOL: return mix(h, a->u.b);
    case TIR_ATTR_DTYPE: return mix(h, (uint64_t)a->u.dtype);
    case TIR_ATTR_STR:
        for (const char *s = a->u.s; s && *s; s++) h = mix(h, (uint64_t)(unsigned char)*s);
        return h;
    case TIR_ATTR_INTS:
        for (int i = 0; i < a->u.ints.n; i++) h = mix(h, (uint64_t)a->u.ints.v[i]);
        return h;
    case TIR_ATTR_SHAPE:
        for (int i = 0; i < a->u.shape.n; i++) h = mix(h, (uint64_t)(uintptr_t)a->u.shape.v[i]);
        return h;
    }
    return h;
}

static bool attr_eq(const tir_attr_value *a, const tir_attr_value *b) {
    if (a->kind != b->kind || strcmp(a->name, b->name) != 0) return false;
    switch (a->kind) {
    case TIR_ATTR_INT: return a->u.i == b->u.i;
    case TIR_ATTR_FLOAT: return memcmp(&a->u.f, &b->u.f, sizeof a->u.f) == 0;
    case TIR_ATTR_BOOL: return a->u.b == b->u.b;
    case TIR_ATTR_DTYPE: return a->u.dtype == b->u.dtype;
    case TIR_ATTR_STR: return strcmp(a->u.s ? a->u.s : "", b->u.s ? b->u.s : "") == 0;
    case TIR_ATTR_INTS:
        if (a->u.ints.n != b->u.ints.n) return false;
        for (int i = 0; i < a->u.ints.n; i++)
            if (a->u.ints.v[i] != b->u.ints.v[i]) return false;
        return true;
    case TIR_ATTR_SHAPE:
        if (a->u.shape.n != b->u.shape.n) return false;
        for (int i = 0; i < a->u.shape.n; i++)
            if (a->u.shape.v[i] != b->u.shape.v[i]) return false;
        return true;
    }
    return false;
}

static bool commutes(const tir_op *op) {
    return (tir_ops[op->code].flags & TIR_F_COMMUTATIVE) && op->nin == 2;
}

static uint64_t op_hash(const tir_op *op, tir_value *const *in) {
    uint64_t h = mix((uint64_t)op->code, (uint64_t)(uintptr_t)op->callee);
    if (commutes(op)) {
        uint64_t a = (uint64_t)(uintptr_t)in[0], b = (uint64_t)(uintptr_t)in[1];
        h = mix(mix(h, a < b ? a : b), a < b ? b : a);
    } else {
        for (int i = 0; i < op->nin; i++) h = mix(h, (uint64_t)(uintptr_t)in[i]);
    }
    uint64_t ah = 0; /* attributes are unordered */
    for (int i = 0; i < op->nattrs; i++) ah += attr_hash(&op->attrs[i]);
    return mix(h, ah);
}

/* does the kept op k compute what op with operands in computes? */
static bool op_eq(const tir_op *k, const tir_op *op, tir_value *const *in) {
    if (k->code != op->code || k->nin != op->nin || k->callee != op->callee ||
        k->nattrs != op->nattrs)
        return false;
    bool same = true;
    for (int i = 0; same && i < op->nin; i++) same = k->in[i] == in[i];
    if (!same && commutes(op)) same = k->in[0] == in[1] && k->in[1] == in[0];
    if (!same) return false;
    for (int i = 0; i < op->nattrs; i++) {
        const tir_attr_value *b = tir_op_attr(k, op->attrs[i].name);
        if (!b || !attr_eq(&op->attrs[i], b)) return false;
    }
    return true;
}

typedef struct cse_table {
    size_t cap, n;
    uint64_t *hash;
    tir_op **ops;
} cse_table;

static tir_op *cse_find(const cse_table *t, uint64_t h, const tir_op *op, tir_value *const *in) {
    if (!t->cap) return NULL;
    for (size_t j = h & (t->cap - 1); t->ops[j]; j = (j + 1) & (t->cap - 1))
        if (t->hash[j] == h && op_eq(t->ops[j], op, in)) return t->ops[j];
    return NULL;
}

static bool cse_add(cse_table *t, uint64_t h, tir_op *op) {
    if ((t->n + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        uint64_t *nh = calloc(cap, sizeof *nh);
        tir_op **no = calloc(cap, sizeof *no);
        if (!nh || !no) {
            free(nh);
            free(no);
            return false;
        }
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->ops[i]) continue;
            size_t j = t->hash[i] & (cap - 1);
            while (no[j]) j = (j + 1) & (cap - 1);
            nh[j] = t->hash[i];
            no[j] = t->ops[i];
        }
        free(t->hash);
        free(t->ops);
        t->hash = nh;
        t->ops = no;
        t->cap = cap;
    }
    size_t j = h & (t->cap - 1);
    while (t->ops[j]) j = (j + 1) & (t->cap - 1);
    t->hash[j] = h;
    t->ops[j] = op;
    t->n++;
    return true;
}

/* ---------------------------------------------------------------- one sweep */

/* ops [k] whose results something live uses */
static bool *live_ops(const tir_func *f) {
    bool *val = calloc((size_t)f->nvalues + 1, 1), *ops = calloc((size_t)f->nops + 1, 1);
    if (!val || !ops) {
        free(val);
        free(ops);
        return NULL;
    }
    for (int i = 0; i < f->nres; i++) val[f->results[i]->id] = true;
    for (int k = f->nops - 1; k >= 0; k--) {
        const tir_op *op = f->ops[k];
        for (int i = 0; i < op->nout; i++) ops[k] |= val[op->out[i]->id];
        for (int i = 0; ops[k] && i < op->nin; i++) val[op->in[i]->id] = true;
    }
    free(val);
    return ops;
}

static tir_status sweep(tir_func *f, tir_simplify_stats *stats, int *changes, tir_diag *d) {
    bool *live = live_ops(f);
    if (!live) return tir_diag_set(d, TIR_ERR_OOM, f->module, f->loc, "out of memory");
    tir_rw rw;
    tir_status st = tir_rw_begin(&rw, f, d);
    cse_table cse = {0};
    for (int k = 0; k < rw.nold && st == TIR_OK; k++) {
        const tir_op *op = rw.old[k];
        if (!live[k]) {
            stats->dce++;
            (*changes)++;
            continue;
        }
        tir_value **in = tir_rw_operands(&rw, op);
        if (!in) {
            st = tir_diag_set(d, TIR_ERR_OOM, f->module, op->loc, "out of memory");
            break;
        }
        tir_value *rep = NULL;
        double c;
        if (op->code == TIR_OP_RESHAPE && in[0]->def && in[0]->def->code == TIR_OP_RESHAPE) {
            in[0] = in[0]->def->in[0]; /* reshape(reshape(x)) reads x */
            stats->identities++;
            (*changes)++;
        }
        if (op->nout == 1 && (rep = identity(op, in))) {
            stats->identities++;
        } else if (op->nout == 1 && op->code != TIR_OP_FULL && (fold(op, in, &c) || absorb(op, in, &c))) {
            tir_ib b = {f, op->loc, d, false};
            if (!(rep = tir_ib_full(&b, c, &op->out[0]->type))) st = tir_rw_fail(d);
            else if (!cse_add(&cse, op_hash(rep->def, rep->def->in), rep->def)) st = TIR_ERR_OOM;
            stats->folded++;
        }
        if (rep || st != TIR_OK) {
            if (st == TIR_OK) st = tir_rw_set(&rw, op->out[0], rep);
            (*changes)++;
            free(in);
            continue;
        }
        uint64_t h = op_hash(op, in);
        tir_op *same = cse_find(&cse, h, op, in);
        if (same) {
            for (int i = 0; st == TIR_OK && i < op->nout; i++) st = tir_rw_set(&rw, op->out[i], same->out[i]);
            stats->cse++;
            (*changes)++;
        } else {
            tir_op *no = tir_rw_clone(f, op, in, NULL, d);
            if (!no) {
                st = tir_rw_fail(d);
            } else {
                for (int i = 0; st == TIR_OK && i < op->nout; i++) {
                    no->out[i]->name = op->out[i]->name;
                    st = tir_rw_set(&rw, op->out[i], no->out[i]);
                }
                if (st == TIR_OK && !cse_add(&cse, h, no)) st = TIR_ERR_OOM;
            }
        }
        free(in);
    }
    if (st == TIR_ERR_OOM && d->status != TIR_ERR_OOM)
        tir_diag_set(d, st, f->module, f->loc, "out of memory");
    free(live);
    free(cse.hash);
    free(cse.ops);
    return tir_rw_end(&rw, st);
}

tir_status tir_pass_simplify_stats(tir_module *m, tir_simplify_stats *stats, tir_diag *d) {
    tir_diag local;
    tir_simplify_stats ls;
    if (!d) d = &local;
    if (!stats) stats = &ls;
    memset(d, 0, sizeof *d);
    memset(stats, 0, sizeof *stats);
    for (int i = 0; i < m->nfuncs; i++) {
        tir_func *f = m->funcs[i];
        if (tir_func_bodiless(f)) continue;
        for (int it = 0; it < 32; it++) {
            int changes = 0;
            tir_status st = sweep(f, stats, &changes, d);
            stats->sweeps++;
            if (st != TIR_OK) return st;
            if (!changes) break;
        }
    }
    return TIR_OK;
}

tir_status tir_pass_simplify(tir_module *m, tir_diag *d) { return tir_pass_simplify_stats(m, NULL, d); }
