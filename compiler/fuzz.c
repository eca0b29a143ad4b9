/* fuzz.c: compile-time fuzzing, `tirc fuzz` (DESIGN §6.6; the contract is in fuzz.h).
 *
 * The generator builds random programs through tir_func_append_op, so every op it keeps passed
 * shape inference: the programs are well-typed by construction, and an op that inference
 * rejects is simply not kept (that is not a finding; a crash is). Each program is then checked:
 *   1. print, parse, print: the two texts must be identical, and both modules compute the same;
 *   2. the interpreter runs every function on random inputs (never all zero, indices in range);
 *   3. every pipeline stage runs in turn, with the verifier and the round trip after each, and
 *      the interpreter's results after each stage must match the original's (a mismatch names
 *      the stage);
 *   4. value_and_grad definitions are checked against finite differences (compiler/gradcheck.c);
 *   5. with LLVM: tir_compile lowers every function, ptxas checks every new kernel, and with
 *      --gpu the GPU's results are compared with the interpreter's.
 *
 * Each check runs in a forked child, so that a crash, a hang or a sanitizer report is a finding
 * with the program attached rather than the end of the run. The parent holds only text: it never
 * builds IR itself, the children report through a shared page. A failing program is reduced by
 * delta debugging: the child parses the current text, applies one edit (remove a function, drop
 * dead code, replace an op's result by a parameter or by an operand, drop a result or unused
 * parameters, fix a symbol to its size, shrink a dim), and checks the result; an edit is kept
 * when the program still fails in the same class at the same stage and has become smaller.
 *
 * Discrete ops (comparisons, argmax, casts to int or bool) only read "exact" values: ones every
 * correct pass must compute bit for bit (parameters and single correctly rounded ops on exact
 * values, but not sums, means, matmuls or composites whose rounding a pass may legitimately
 * change). Otherwise a permitted last-bit difference could flip a comparison and report a bug
 * that is not there.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compare_mag.h"
#include "compile.h"
#include "fuzz.h"
#include "gradcheck.h"
#include "pipeline.h"

/* ================================================================ PRNG (xorshift64*, seeded by
 * splitmix64): the same programs on every machine */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static rng rng_make(uint64_t seed) {
    rng r = {mix64(seed)};
    if (!r.s) r.s = 0x2545f4914f6cdd1dull;
    return r;
}

static uint64_t rnext(rng *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545f4914f6cdd1dull;
}

static int rn(rng *r, int n) { return n <= 1 ? 0 : (int)(rnext(r) % (uint64_t)n); }
static bool rp(rng *r, int pct) { return rn(r, 100) < pct; }
static double runit(rng *r) { return (double)(rnext(r) >> 11) * 0x1.0p-53; }

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; s && *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* ================================================================ the generator */

enum {
    POOL_MAX = 192,     /* values an op may read */
    VAL_MAX = 8192,     /* value ids tracked for exactness */
    NUMEL_CAP = 2048,   /* elements of any value, under the program's sizes */
    FLOP_CAP = 200000,  /* multiply-adds of one matmul */
    MAX_SYMS = 5,       /* symbols per function */
};

typedef struct gen {
    rng r;
    tir_context *c;
    tir_module *m;
    tir_func *f;
    tir_diag d;
    tir_value *pool[POOL_MAX];
    int npool;
    bool exact[VAL_MAX];
    const char *syms[MAX_SYMS]; /* symbols that a parameter of f binds */
    int nsyms;
    tir_bindings *bind;         /* the program's sizes for every symbol */
    tir_dtype fdt;              /* the float dtype f mostly computes in */
    int nparam, nnamed;
    bool smooth;                /* a loss: stay where gradients are finite (gradcheck) */
    tir_func *callees[6];       /* functions f may call */
    bool callee_smooth[6];
    int ncallees;
    unsigned long *op_counts;   /* ops kept, per opcode (may be NULL) */
    int max_ops;                /* of @main; helpers and losses are smaller */
} gen;

static const tir_loc NOLOC = {0, 0};

static const tir_dim *K(gen *g, int64_t v) { return tir_dim_const(g->c, v); }

static int64_t eval_dim(const tir_bindings *b, const tir_dim *d) {
    int64_t v;
    return d && tir_dim_eval(d, b, &v) == TIR_OK ? v : -1;
}

/* elements of t under b; -1 when a dim does not evaluate; saturates */
static int64_t numel_of(const tir_bindings *b, const tir_type *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        int64_t v = eval_dim(b, t->dims[i]);
        if (v < 0) return -1;
        if (v && n > INT64_MAX / v) return INT64_MAX;
        n *= v;
    }
    return n;
}

static bool is_float(const tir_value *v) { return tir_dtype_is_float(v->type.dtype); }
static bool is_int(const tir_value *v) { return tir_dtype_is_int(v->type.dtype); }
static bool is_bool(const tir_value *v) { return v->type.dtype == TIR_BOOL; }
static bool exact_of(const gen *g, const tir_value *v) { return v->id < VAL_MAX && g->exact[v->id]; }

static int64_t rand_size(gen *g) {
    static const int64_t sizes[] = {1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 6, 7, 8, 8, 11, 13, 16, 16, 17, 32};
    if (rp(&g->r, 1)) return 0; /* empty tensors: every op must cope */
    return sizes[rn(&g->r, (int)(sizeof sizes / sizeof sizes[0]))];
}

static bool has_sym(const gen *g, const char *name) {
    for (int i = 0; i < g->nsyms; i++)
        if (strcmp(g->syms[i], name) == 0) return true;
    return false;
}

/* makes `name` a symbol of f, giving it a size for the program when it has none */
static void add_sym(gen *g, const char *name) {
    static const int64_t sizes[] = {1, 2, 3, 3, 4, 5, 5, 6, 7, 8, 9, 12, 16};
    if (has_sym(g, name) || g->nsyms >= MAX_SYMS) return;
    int64_t v;
    if (!tir_bindings_get(g->bind, name, &v))
        tir_bindings_set(g->bind, name, sizes[rn(&g->r, (int)(sizeof sizes / sizeof sizes[0]))]);
    g->syms[g->nsyms++] = name;
}

static const tir_dim *old_sym(gen *g) {
    return g->nsyms ? tir_dim_sym(g->c, g->syms[rn(&g->r, g->nsyms)]) : K(g, rand_size(g));
}

/* A random dim: mostly constants (1, primes, powers of two) and symbols; new symbols only where
 * a parameter will bind them (allow_new). Expressions of symbols (2*N, N + 1, N*M) too. */
static const tir_dim *rand_dim(gen *g, bool allow_new) {
    static const char *const names[] = {"N", "M", "T", "B", "S", "L", "R"};
    int r = rn(&g->r, 100);
    if (r < 55) return K(g, rand_size(g));
    if (r < 80 && g->nsyms) return old_sym(g);
    if (r < 92 && allow_new && g->nsyms < MAX_SYMS) {
        /* a new symbol gets its size now; it joins f's symbols with the parameter that binds it */
        const char *name = names[rn(&g->r, (int)(sizeof names / sizeof names[0]))];
        int64_t v;
        if (!tir_bindings_get(g->bind, name, &v)) tir_bindings_set(g->bind, name, 1 + rn(&g->r, 9));
        return tir_dim_sym(g->c, name);
    }
    if (!g->nsyms) return K(g, rand_size(g));
    const tir_dim *s = old_sym(g), *d = NULL;
    switch (rn(&g->r, 3)) {
    case 0: d = tir_dim_mul(g->c, K(g, 2), s); break;
    case 1: d = tir_dim_add(g->c, s, K(g, 1)); break;
    default: d = tir_dim_mul(g->c, s, old_sym(g)); break;
    }
    return d ? d : s;
}

/* dims of a new shape of `rank` within the element cap; false when none fits */
static bool rand_shape(gen *g, int rank, const tir_dim **dims, bool allow_new) {
    for (int tries = 0; tries < 8; tries++) {
        for (int i = 0; i < rank; i++) dims[i] = rand_dim(g, allow_new);
        tir_type t = {.dtype = TIR_F32, .rank = rank};
        for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
        int64_t n = numel_of(g->bind, &t);
        if (n >= 0 && n <= NUMEL_CAP / 4) return true;
    }
    for (int i = 0; i < rank; i++) dims[i] = K(g, 1 + rn(&g->r, 3));
    return true;
}

static int rand_rank(gen *g) {
    static const int ranks[] = {0, 1, 1, 1, 2, 2, 2, 2, 3, 3, 4};
    return ranks[rn(&g->r, (int)(sizeof ranks / sizeof ranks[0]))];
}

static tir_dtype rand_dtype(gen *g) {
    static const tir_dtype dts[] = {TIR_F32, TIR_F32, TIR_F32, TIR_F32, TIR_F32, TIR_F32, TIR_F64,
                                    TIR_F64, TIR_BF16, TIR_BF16, TIR_BF16, TIR_F16, TIR_F16,
                                    TIR_I32, TIR_I32, TIR_I64, TIR_I64, TIR_I8, TIR_U8, TIR_BOOL,
                                    TIR_BOOL, TIR_F8E4M3, TIR_F8E5M2};
    return dts[rn(&g->r, (int)(sizeof dts / sizeof dts[0]))];
}

static void pool_add(gen *g, tir_value *v, bool exact) {
    if (v->id < VAL_MAX) g->exact[v->id] = exact;
    if (g->npool == POOL_MAX) {
        memmove(g->pool, g->pool + 1, (POOL_MAX - 1) * sizeof *g->pool);
        g->npool--;
    }
    g->pool[g->npool++] = v;
}

/* names some values, so the printer's mix of user names and numbered temporaries is exercised
 * (numeric names like %100 must not collide with its temporaries) */
static void maybe_name(gen *g, tir_value *v) {
    if (!rp(&g->r, 6)) return;
    char buf[32];
    switch (rn(&g->r, 3)) {
    case 0: snprintf(buf, sizeof buf, "v%d", g->nnamed++); break;
    case 1: snprintf(buf, sizeof buf, "%d", 1 + g->nnamed++); break;
    default: snprintf(buf, sizeof buf, "h.%d", g->nnamed++); break;
    }
    v->name = tir_arena_strdup(g->m->arena, buf);
}

static tir_value *new_param(gen *g, tir_dtype dt, int rank, const tir_dim *const *dims) {
    char name[24];
    snprintf(name, sizeof name, "x%d", g->nparam++);
    tir_type t = {.dtype = dt, .rank = rank};
    for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
    /* a parameter binds the symbol of a dim linear in it (N, 2*N, N + 1), not of N*N */
    for (int i = 0; i < rank; i++) {
        const char *s[8];
        if (tir_dim_symbols(dims[i], s, 8) != 1) continue;
        const tir_dim *x = tir_dim_sym(g->c, s[0]);
        if (dims[i] == x || dims[i] == tir_dim_mul(g->c, K(g, 2), x) ||
            dims[i] == tir_dim_add(g->c, x, K(g, 1)))
            add_sym(g, s[0]);
    }
    tir_value *v = tir_func_add_param(g->f, name, &t, NOLOC);
    if (v) pool_add(g, v, true);
    return v;
}

static tir_value *rand_param(gen *g, tir_dtype dt) {
    const tir_dim *dims[TIR_MAX_RANK];
    int rank = rand_rank(g);
    rand_shape(g, rank, dims, true);
    return new_param(g, dt, rank, dims);
}

/* ops whose results every correct pass computes bit for bit from exact operands */
static bool op_exact(tir_opcode code, tir_dtype out) {
    unsigned fl = tir_ops[code].flags;
    if (fl & (TIR_F_COMPOSITE | TIR_F_LINALG) || code == TIR_OP_CALL) return false;
    if (code == TIR_OP_SUM || code == TIR_OP_MEAN || code == TIR_OP_SCATTER_ADD)
        return !tir_dtype_is_float(out);
    return true;
}

/* Appends an op; NULL when inference rejects it or a result is too large (the op is then taken
 * back off the end: nothing refers to it yet). */
static tir_op *emit(gen *g, tir_opcode code, int nin, tir_value *const *in, int na,
                    const tir_attr_value *a, tir_func *callee) {
    tir_op *op = tir_func_append_op(g->f, code, nin, in, na, a, callee, NOLOC, &g->d);
    if (!op) return NULL;
    for (int i = 0; i < op->nout; i++) {
        int64_t n = numel_of(g->bind, &op->out[i]->type);
        if (n < 0 || n > NUMEL_CAP) {
            g->f->nops--;
            return NULL;
        }
    }
    bool exact = true;
    for (int i = 0; i < nin; i++) exact = exact && exact_of(g, in[i]);
    for (int i = 0; i < op->nout; i++) {
        pool_add(g, op->out[i], exact && op_exact(code, op->out[i]->type.dtype));
        maybe_name(g, op->out[i]);
    }
    if (g->op_counts) g->op_counts[code]++;
    return op;
}

static tir_value *emit1(gen *g, tir_opcode code, int nin, tir_value *const *in, int na,
                        const tir_attr_value *a) {
    tir_op *op = emit(g, code, nin, in, na, a, NULL);
    return op && op->nout ? op->out[0] : NULL;
}

/* a value of the pool for which ok() holds, most often one of the newest */
typedef bool (*val_pred)(const gen *g, const tir_value *v, const void *arg);

static tir_value *pick(gen *g, val_pred ok, const void *arg) {
    int idx[POOL_MAX], n = 0;
    for (int i = 0; i < g->npool; i++)
        if (!ok || ok(g, g->pool[i], arg)) idx[n++] = i;
    if (!n) return NULL;
    if (rp(&g->r, 60)) return g->pool[idx[n - 1 - rn(&g->r, n < 4 ? n : 4)]];
    return g->pool[idx[rn(&g->r, n)]];
}

static bool p_float(const gen *g, const tir_value *v, const void *a) { return is_float(v); }
static bool p_numeric(const gen *g, const tir_value *v, const void *a) { return !is_bool(v); }
static bool p_bool(const gen *g, const tir_value *v, const void *a) { return is_bool(v); }
static bool p_exact_numeric(const gen *g, const tir_value *v, const void *a) {
    return !is_bool(v) && exact_of(g, v);
}
static bool p_rank_ge(const gen *g, const tir_value *v, const void *a) {
    return v->type.rank >= *(const int *)a;
}
static bool p_float_rank_ge(const gen *g, const tir_value *v, const void *a) {
    return is_float(v) && v->type.rank >= *(const int *)a;
}
static bool p_numeric_rank_ge(const gen *g, const tir_value *v, const void *a) {
    return !is_bool(v) && v->type.rank >= *(const int *)a;
}
static bool p_same_dtype_bcast(const gen *g, const tir_value *v, const void *a) {
    const tir_value *x = a;
    tir_type out;
    return v->type.dtype == x->type.dtype && tir_broadcast_shapes(g->c, &x->type, &v->type, &out);
}
static bool p_same_type(const gen *g, const tir_value *v, const void *a) {
    return tir_type_equal(&v->type, a);
}

/* a rank-0 constant (prints as a literal operand); now and then inf or NaN */
static tir_value *literal(gen *g, tir_dtype dt) {
    static const double fl[] = {0.5, -1.5, 2.0, 0.1, 3.0, 1e-3, -0.25, 1.0, 0.0, 1e-6, -2.0, 0.7,
                                1.0 / 3.0, 100.0};
    /* now and then the edges of a dtype, for the printer's and the folder's sake */
    static const double fedge[] = {-0.0, 1e-40, 65504.0, 3.0e38, 1e-300, 123456789.0,
                                   0.30000000000000004, 5e-324, 1.0000001, 0.1};
    double v;
    if (dt == TIR_BOOL) v = rn(&g->r, 2);
    else if (tir_dtype_is_int(dt) && rp(&g->r, 5))
        v = dt == TIR_U8 ? 255 : dt == TIR_I8 ? (rp(&g->r, 50) ? 127 : -128)
          : dt == TIR_I32 ? (rp(&g->r, 50) ? 2147483647.0 : -2147483648.0)
                          : (rp(&g->r, 50) ? 9007199254740993.0 : -9.2233720368547758e18);
    else if (tir_dtype_is_int(dt)) v = rn(&g->r, 9) - (dt == TIR_U8 ? 0 : 3);
    else if (!g->smooth && rp(&g->r, 2)) v = rp(&g->r, 50) ? INFINITY : NAN;
    else if (!g->smooth && rp(&g->r, 4)) v = fedge[rn(&g->r, (int)(sizeof fedge / sizeof fedge[0]))];
    else v = fl[rn(&g->r, (int)(sizeof fl / sizeof fl[0]))];
    tir_attr_value a[3] = {tir_a_float("value", v), tir_a_shape(g->m, "shape", 0, NULL),
                           tir_a_dtype("dtype", dt)};
    return emit1(g, TIR_OP_FULL, 0, NULL, 3, a);
}

/* a shape that broadcasts with t: a suffix of its dims, some replaced by 1, perhaps a leading
 * dim more, or one of t's 1s expanded */
static int bcast_partner(gen *g, const tir_type *t, const tir_dim **dims) {
    int k = rp(&g->r, 45) ? t->rank : rn(&g->r, t->rank + 1), n = 0;
    if (k == t->rank && t->rank < 4 && rp(&g->r, 15)) dims[n++] = rand_dim(g, false);
    for (int i = t->rank - k; i < t->rank; i++) {
        const tir_dim *d = t->dims[i];
        if (rp(&g->r, 25)) d = K(g, 1);
        else if (tir_dim_is_const(d, NULL) && d == K(g, 1) && rp(&g->r, 30)) d = rand_dim(g, false);
        dims[n++] = d;
    }
    return n;
}

/* the second operand of a binary op or where with a */
static tir_value *partner(gen *g, tir_value *a) {
    int r = rn(&g->r, 100);
    if (r < 22) return literal(g, a->type.dtype);
    if (r < 60) {
        tir_value *v = pick(g, p_same_dtype_bcast, a);
        if (v) return v;
    }
    const tir_dim *dims[TIR_MAX_RANK];
    int n = bcast_partner(g, &a->type, dims);
    return new_param(g, a->type.dtype, n, dims);
}

/* ---------------------------------------------------------------- op families */

static bool fam_unary(gen *g) {
    static const tir_opcode fops[] = {TIR_OP_NEG, TIR_OP_ABS, TIR_OP_EXP, TIR_OP_LOG, TIR_OP_SQRT,
                                      TIR_OP_RSQRT, TIR_OP_RECIP, TIR_OP_TANH, TIR_OP_SIGMOID,
                                      TIR_OP_RELU, TIR_OP_SILU, TIR_OP_GELU, TIR_OP_SIN, TIR_OP_COS};
    static const tir_opcode iops[] = {TIR_OP_NEG, TIR_OP_ABS, TIR_OP_RELU};
    tir_value *x = pick(g, NULL, NULL);
    if (!x) return false;
    tir_opcode op;
    if (is_bool(x)) op = TIR_OP_NOT;
    else if (is_int(x)) op = iops[rn(&g->r, 3)];
    else op = fops[rn(&g->r, (int)(sizeof fops / sizeof fops[0]))];
    /* keep most logs and roots in their domain, so that not everything turns NaN */
    if ((op == TIR_OP_LOG || op == TIR_OP_SQRT || op == TIR_OP_RSQRT || op == TIR_OP_RECIP) &&
        (g->smooth || rp(&g->r, 60))) {
        tir_value *ab = emit1(g, TIR_OP_ABS, 1, &x, 0, NULL);
        tir_value *c = ab ? literal(g, x->type.dtype) : NULL;
        tir_value *in[2] = {ab, c};
        x = c ? emit1(g, TIR_OP_ADD, 2, in, 0, NULL) : NULL;
        if (!x) return false;
    }
    if (op == TIR_OP_EXP && g->smooth && !(x = emit1(g, TIR_OP_TANH, 1, &x, 0, NULL))) return false;
    tir_attr_value a[1];
    int na = 0;
    if (op == TIR_OP_GELU && rp(&g->r, 60))
        a[na++] = tir_a_str("approximate", rp(&g->r, 50) ? "tanh" : "none");
    return emit1(g, op, 1, &x, na, a) != NULL;
}

static bool fam_binary(gen *g) {
    static const tir_opcode arith[] = {TIR_OP_ADD, TIR_OP_ADD, TIR_OP_SUB, TIR_OP_MUL, TIR_OP_MUL,
                                       TIR_OP_DIV, TIR_OP_MAXIMUM, TIR_OP_MINIMUM, TIR_OP_POW};
    static const tir_opcode cmp[] = {TIR_OP_EQ, TIR_OP_NE, TIR_OP_LT, TIR_OP_LE, TIR_OP_GT, TIR_OP_GE};
    tir_value *a = rp(&g->r, 15) ? pick(g, p_bool, NULL) : NULL;
    tir_opcode op;
    if (a) {
        op = rp(&g->r, 50) ? TIR_OP_AND : TIR_OP_OR;
    } else {
        bool want_cmp = rp(&g->r, 20);
        a = pick(g, want_cmp ? p_exact_numeric : p_numeric, NULL);
        if (!a) return false;
        if (want_cmp) op = cmp[rn(&g->r, 6)];
        else op = arith[rn(&g->r, is_float(a) ? 9 : 8)];
    }
    tir_value *b = partner(g, a);
    if (!b) return false;
    if (g->smooth && (op == TIR_OP_DIV || op == TIR_OP_POW)) {
        /* a loss divides and raises only positive values: 0.5 + |b| */
        tir_value **pos = op == TIR_OP_DIV ? &b : &a;
        tir_value *ab = emit1(g, TIR_OP_ABS, 1, pos, 0, NULL);
        tir_value *in2[2] = {ab, ab ? literal(g, ab->type.dtype) : NULL};
        if (!in2[1] || !(*pos = emit1(g, TIR_OP_ADD, 2, in2, 0, NULL))) return false;
    }
    if ((tir_ops[op].flags & TIR_F_COMPARE) && !exact_of(g, b)) return false;
    tir_value *in[2] = {a, b};
    if (rp(&g->r, 30)) { in[0] = b; in[1] = a; }
    return emit1(g, op, 2, in, 0, NULL) != NULL;
}

static bool fam_where(gen *g) {
    tir_value *a = pick(g, NULL, NULL);
    if (!a) return false;
    tir_value *c = NULL;
    int r = rn(&g->r, 100);
    if (r < 35) {
        c = pick(g, p_bool, NULL);
    } else if (r < 70) {
        tir_value *x = pick(g, p_exact_numeric, NULL);
        if (x) {
            tir_value *in[2] = {x, literal(g, x->type.dtype)};
            c = in[1] ? emit1(g, rp(&g->r, 50) ? TIR_OP_GT : TIR_OP_LE, 2, in, 0, NULL) : NULL;
        }
    }
    if (!c) {
        const tir_dim *dims[TIR_MAX_RANK];
        int n = bcast_partner(g, &a->type, dims);
        c = new_param(g, TIR_BOOL, n, dims);
    }
    tir_value *b = partner(g, a);
    if (!c || !b) return false;
    tir_value *in[3] = {c, a, b};
    return emit1(g, TIR_OP_WHERE, 3, in, 0, NULL) != NULL;
}

static bool fam_cast(gen *g) {
    tir_value *x = pick(g, NULL, NULL);
    if (!x) return false;
    tir_dtype to = rand_dtype(g);
    if (is_float(x) && !tir_dtype_is_float(to) && !exact_of(g, x))
        to = rp(&g->r, 50) ? TIR_F32 : TIR_BF16;
    tir_attr_value a = tir_a_dtype("dtype", to);
    return emit1(g, TIR_OP_CAST, 1, &x, 1, &a) != NULL;
}

static bool fam_reduce(gen *g) {
    static const tir_opcode ops[] = {TIR_OP_SUM, TIR_OP_SUM, TIR_OP_MAX, TIR_OP_MIN, TIR_OP_MEAN,
                                     TIR_OP_ARGMAX};
    tir_opcode op = ops[rn(&g->r, 6)];
    tir_value *x = op == TIR_OP_ARGMAX ? pick(g, p_exact_numeric, NULL)
                   : op == TIR_OP_MEAN ? pick(g, p_float, NULL)
                                       : pick(g, p_numeric, NULL);
    if (!x) return false;
    int rank = x->type.rank;
    int64_t axes[TIR_MAX_RANK];
    int n = 0;
    bool with_axes = !rp(&g->r, 25);
    if (op == TIR_OP_ARGMAX) {
        if (rank == 0) return false;
        with_axes = rank > 1 || rp(&g->r, 50);
        axes[n++] = rn(&g->r, rank) - (rp(&g->r, 30) ? rank : 0);
    } else if (with_axes) {
        for (int i = 0; i < rank; i++)
            if (rp(&g->r, 50)) axes[n++] = rp(&g->r, 30) ? i - rank : i;
        if (n > 1 && rp(&g->r, 30)) { /* any order */
            int64_t t = axes[0];
            axes[0] = axes[n - 1];
            axes[n - 1] = t;
        }
    }
    tir_attr_value a[2];
    int na = 0;
    if (with_axes) a[na++] = tir_a_ints(g->m, "axes", n, axes);
    if (rp(&g->r, 40)) a[na++] = tir_a_bool("keepdim", rp(&g->r, 80));
    return emit1(g, op, 1, &x, na, a) != NULL;
}

static bool mv_reshape(gen *g, tir_value *x) {
    const tir_dim *d[TIR_MAX_RANK + 1];
    int n = x->type.rank;
    for (int i = 0; i < n; i++) d[i] = x->type.dims[i];
    switch (rn(&g->r, 6)) {
    case 0: { /* flatten */
        const tir_dim *p = K(g, 1);
        for (int i = 0; i < n && p; i++) p = tir_dim_mul(g->c, p, d[i]);
        if (!p) return false;
        d[0] = p;
        n = 1;
        break;
    }
    case 1: { /* merge two neighbours */
        if (n < 2) return false;
        int i = rn(&g->r, n - 1);
        const tir_dim *p = tir_dim_mul(g->c, d[i], d[i + 1]);
        if (!p) return false;
        d[i] = p;
        memmove(&d[i + 1], &d[i + 2], (size_t)(n - i - 2) * sizeof *d);
        n--;
        break;
    }
    case 2: { /* split a constant dim into two factors */
        if (n == 0 || n >= TIR_MAX_RANK) return false;
        int i = rn(&g->r, n);
        int64_t c, f = 0;
        if (!tir_dim_is_const(d[i], &c) || c < 4) return false;
        for (int64_t k = 2; k < c; k++)
            if (c % k == 0 && (f == 0 || rp(&g->r, 50))) f = k;
        if (!f) return false;
        memmove(&d[i + 1], &d[i], (size_t)(n - i) * sizeof *d);
        d[i] = K(g, f);
        d[i + 1] = K(g, c / f);
        n++;
        break;
    }
    case 3: { /* insert a 1 */
        if (n >= 4) return false;
        int i = rn(&g->r, n + 1);
        memmove(&d[i + 1], &d[i], (size_t)(n - i) * sizeof *d);
        d[i] = K(g, 1);
        n++;
        break;
    }
    case 4: { /* drop a 1 */
        int i = n ? rn(&g->r, n) : 0;
        if (n == 0 || d[i] != K(g, 1)) return false;
        memmove(&d[i], &d[i + 1], (size_t)(n - i - 1) * sizeof *d);
        n--;
        break;
    }
    default: /* let -1 stand for one dim */
        if (n == 0) return false;
        d[rn(&g->r, n)] = K(g, -1);
        break;
    }
    tir_attr_value a = tir_a_shape(g->m, "shape", n, d);
    return emit1(g, TIR_OP_RESHAPE, 1, &x, 1, &a) != NULL;
}

static bool mv_transpose(gen *g, tir_value *x) {
    int64_t perm[TIR_MAX_RANK];
    int n = x->type.rank;
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = rn(&g->r, i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    tir_attr_value a = tir_a_ints(g->m, "perm", n, perm);
    return emit1(g, TIR_OP_TRANSPOSE, 1, &x, 1, &a) != NULL;
}

static bool mv_broadcast(gen *g, tir_value *x) {
    const tir_dim *d[TIR_MAX_RANK];
    int lead = rn(&g->r, 3), n = 0;
    if (x->type.rank + lead > 4) lead = 0;
    for (int i = 0; i < lead; i++) d[n++] = rand_dim(g, false);
    for (int i = 0; i < x->type.rank; i++) {
        const tir_dim *e = x->type.dims[i];
        d[n++] = e == K(g, 1) && rp(&g->r, 60) ? rand_dim(g, false) : e;
    }
    tir_attr_value a = tir_a_shape(g->m, "shape", n, d);
    return emit1(g, TIR_OP_BROADCAST, 1, &x, 1, &a) != NULL;
}

static bool mv_slice(gen *g, tir_value *x) {
    int rank = x->type.rank;
    if (rank == 0) return false;
    int ax = rn(&g->r, rank);
    const tir_dim *dim = x->type.dims[ax];
    int64_t nv;
    tir_attr_value a[4];
    int na = 0;
    a[na++] = tir_a_int("axis", rp(&g->r, 30) ? ax - rank : ax);
    if (tir_dim_is_const(dim, &nv)) {
        int span = (int)(2 * nv + 3);
        if (rp(&g->r, 70)) a[na++] = tir_a_int("start", rn(&g->r, span) - nv - 1);
        if (rp(&g->r, 60)) a[na++] = tir_a_int("end", rn(&g->r, span) - nv - 1);
    } else {
        /* symbolic: bounds the program's size keeps in range (checked below through the result) */
        if (rp(&g->r, 60)) a[na++] = tir_a_int("start", rn(&g->r, 3) - (rp(&g->r, 30) ? 2 : 0));
        if (rp(&g->r, 40)) a[na++] = tir_a_int("end", -rn(&g->r, 2) - (rp(&g->r, 50) ? 0 : 1));
    }
    if (rp(&g->r, 40)) a[na++] = tir_a_int("step", 1 + rn(&g->r, 3));
    tir_op *op = emit(g, TIR_OP_SLICE, 1, &x, na, a, NULL);
    if (!op) return false;
    /* a symbolic slice whose bounds fall outside the program's size is an error at run time: the
     * start and end evaluated under the sizes must lie in [0, N] */
    int64_t n = eval_dim(g->bind, dim);
    if (!tir_dim_is_const(dim, NULL)) {
        int64_t s = tir_attr_int(op, "start", 0), e = tir_attr_int(op, "end", n);
        if (s < 0) s += n;
        if (e < 0) e += n;
        if (s < 0 || s > n || e < 0 || e > n || e < s) {
            g->f->nops--;
            g->npool--;
            return false;
        }
    }
    return true;
}

static bool mv_concat(gen *g, tir_value *x) {
    int rank = x->type.rank;
    if (rank == 0) return false;
    int ax = rn(&g->r, rank), n = 2 + rn(&g->r, 2);
    tir_value *in[4] = {x};
    for (int i = 1; i < n; i++) {
        int r = rn(&g->r, 100);
        if (r < 30) {
            in[i] = x;
        } else if (r < 60) {
            tir_value *v = pick(g, p_rank_ge, &rank);
            in[i] = v && v->type.rank == rank && v->type.dtype == x->type.dtype ? v : x;
        } else {
            const tir_dim *d[TIR_MAX_RANK];
            for (int k = 0; k < rank; k++) d[k] = x->type.dims[k];
            d[ax] = rand_dim(g, true);
            in[i] = new_param(g, x->type.dtype, rank, d);
        }
        if (!in[i]) return false;
    }
    tir_attr_value a = tir_a_int("axis", rp(&g->r, 30) ? ax - rank : ax);
    return emit1(g, TIR_OP_CONCAT, n, in, 1, &a) != NULL;
}

static bool mv_split(gen *g, tir_value *x) {
    int rank = x->type.rank;
    if (rank == 0) return false;
    int ax = rn(&g->r, rank), n = 0;
    const tir_dim *dim = x->type.dims[ax], *s[4];
    int64_t nv;
    if (tir_dim_is_const(dim, &nv)) {
        int parts = 1 + rn(&g->r, 3);
        int64_t left = nv;
        for (int i = 0; i < parts - 1; i++) {
            int64_t k = left ? rn(&g->r, (int)left + 1) : 0;
            s[n++] = K(g, k);
            left -= k;
        }
        s[n++] = K(g, left);
    } else {
        const tir_dim *h = tir_dim_exact_div(g->c, dim, K(g, 2));
        int r = rn(&g->r, 4);
        if (r == 0 && h) {
            s[n++] = h;
            s[n++] = h;
        } else if (r == 1 && eval_dim(g->bind, dim) >= 1) {
            s[n++] = K(g, 1);
            s[n++] = tir_dim_sub(g->c, dim, K(g, 1));
        } else if (r == 2 && eval_dim(g->bind, dim) >= 1) {
            s[n++] = tir_dim_sub(g->c, dim, K(g, 1));
            s[n++] = K(g, 1);
        } else {
            s[n++] = dim;
        }
        for (int i = 0; i < n; i++)
            if (!s[i]) return false;
    }
    tir_attr_value a[2] = {tir_a_int("axis", rp(&g->r, 30) ? ax - rank : ax),
                           tir_a_shape(g->m, "sizes", n, s)};
    return emit(g, TIR_OP_SPLIT, 1, &x, 2, a, NULL) != NULL;
}

static bool fam_movement(gen *g) {
    tir_value *x = pick(g, NULL, NULL);
    if (!x) return false;
    switch (rn(&g->r, 6)) {
    case 0: return mv_reshape(g, x);
    case 1: return mv_transpose(g, x);
    case 2: return mv_broadcast(g, x);
    case 3: return mv_slice(g, x);
    case 4: return mv_concat(g, x);
    default: return mv_split(g, x);
    }
}

/* an index parameter (in range at run time: see index_bound) */
static tir_value *index_param(gen *g) {
    const tir_dim *d[TIR_MAX_RANK];
    int rank = rn(&g->r, 3);
    rand_shape(g, rank, d, true);
    return new_param(g, rp(&g->r, 50) ? TIR_I32 : TIR_I64, rank, d);
}

static bool fam_index(gen *g) {
    int one = 1;
    bool take = rp(&g->r, 60);
    tir_value *t = pick(g, take ? p_rank_ge : p_numeric_rank_ge, &one);
    if (!t) return false;
    int rank = t->type.rank, ax = rn(&g->r, rank);
    if (eval_dim(g->bind, t->type.dims[ax]) < 1) return false; /* no index is in range */
    tir_value *idx = index_param(g);
    if (!idx) return false;
    tir_attr_value a[1];
    int na = 0;
    if (ax || rp(&g->r, 40)) a[na++] = tir_a_int("axis", rp(&g->r, 30) ? ax - rank : ax);
    if (take) {
        tir_value *in[2] = {t, idx};
        return emit1(g, TIR_OP_TAKE, 2, in, na, a) != NULL;
    }
    const tir_dim *d[TIR_MAX_RANK];
    int n = 0;
    for (int i = 0; i < ax; i++) d[n++] = t->type.dims[i];
    for (int i = 0; i < idx->type.rank; i++) d[n++] = idx->type.dims[i];
    for (int i = ax + 1; i < rank; i++) d[n++] = t->type.dims[i];
    if (n > TIR_MAX_RANK) return false;
    tir_type st = {.dtype = t->type.dtype, .rank = n};
    for (int i = 0; i < n; i++) st.dims[i] = d[i];
    tir_value *src = rp(&g->r, 30) ? pick(g, p_same_type, &st) : NULL;
    if (!src) src = new_param(g, t->type.dtype, n, d);
    tir_value *in[3] = {t, idx, src};
    return src && emit1(g, TIR_OP_SCATTER_ADD, 3, in, na, a) != NULL;
}

/* the shape of a pool value, or a new one of bound dims */
static int some_shape(gen *g, const tir_dim **d, int min_rank) {
    tir_value *v = rp(&g->r, 60) ? pick(g, p_rank_ge, &min_rank) : NULL;
    if (v) {
        for (int i = 0; i < v->type.rank; i++) d[i] = v->type.dims[i];
        return v->type.rank;
    }
    int rank = min_rank + rn(&g->r, 3);
    rand_shape(g, rank, d, false);
    return rank;
}

static bool fam_create(gen *g) {
    const tir_dim *d[TIR_MAX_RANK];
    tir_attr_value a[4];
    int na = 0;
    if (rp(&g->r, 45)) {
        static const tir_dtype dts[] = {TIR_I32, TIR_I64, TIR_F32, TIR_F64, TIR_BF16, TIR_I8, TIR_F16};
        int n = some_shape(g, d, 1);
        a[na++] = tir_a_shape(g->m, "shape", n, d);
        if (n > 1 || rp(&g->r, 30)) a[na++] = tir_a_int("axis", rn(&g->r, n) - (rp(&g->r, 30) ? n : 0));
        if (rp(&g->r, 50)) a[na++] = tir_a_dtype("dtype", dts[rn(&g->r, 7)]);
        return emit1(g, TIR_OP_IOTA, 0, NULL, na, a) != NULL;
    }
    tir_dtype dt = rp(&g->r, 40) ? TIR_F32 : rand_dtype(g);
    static const double vals[] = {0.5, -1.0, 2.0, 3.25, -0.125, 7.0, 1e-4, 1.0};
    double v = g->smooth      ? vals[rn(&g->r, 8)]
               : rp(&g->r, 3) ? NAN
               : rp(&g->r, 3) ? -INFINITY
                              : vals[rn(&g->r, 8)];
    if (tir_dtype_is_int(dt) || dt == TIR_BOOL) v = dt == TIR_BOOL ? rn(&g->r, 2) : rn(&g->r, 7) - 2;
    if (dt == TIR_U8 && v < 0) v = -v;
    int n = some_shape(g, d, 0);
    a[na++] = tir_a_float("value", v);
    a[na++] = tir_a_shape(g->m, "shape", n, d);
    if (dt != TIR_F32 || rp(&g->r, 30)) a[na++] = tir_a_dtype("dtype", dt);
    return emit1(g, TIR_OP_FULL, 0, NULL, na, a) != NULL;
}

static bool fam_linalg(gen *g) {
    int two = 2, one = 1;
    if (rp(&g->r, 35)) { /* linear(x[..., K], w[N, K] [, b[N]]) */
        tir_value *x = pick(g, p_float_rank_ge, &one);
        if (!x) x = rand_param(g, g->fdt);
        if (!x || x->type.rank == 0) return false;
        const tir_dim *kd = x->type.dims[x->type.rank - 1], *nd = rand_dim(g, true);
        const tir_dim *wd[2] = {nd, kd};
        tir_value *in[3] = {x, new_param(g, x->type.dtype, 2, wd), NULL};
        int nin = 2;
        if (rp(&g->r, 50)) in[nin++] = new_param(g, x->type.dtype, 1, &nd);
        if (!in[1] || (nin == 3 && !in[2])) return false;
        if (numel_of(g->bind, &x->type) * (eval_dim(g->bind, nd) + 1) > FLOP_CAP) return false;
        return emit1(g, TIR_OP_LINEAR, nin, in, 0, NULL) != NULL;
    }
    tir_value *a = pick(g, p_float_rank_ge, &two);
    if (!a) {
        const tir_dim *d[3];
        int rank = 2 + rn(&g->r, 2);
        rand_shape(g, rank, d, true);
        a = new_param(g, g->fdt, rank, d);
    }
    if (!a) return false;
    bool ta = rp(&g->r, 30), tb = rp(&g->r, 30);
    int r = a->type.rank;
    const tir_dim *kd = a->type.dims[ta ? r - 2 : r - 1];
    tir_value *b = NULL;
    if (rp(&g->r, 30)) b = pick(g, p_float_rank_ge, &two);
    if (!b || b->type.dtype != a->type.dtype) {
        const tir_dim *d[TIR_MAX_RANK];
        int n = 0, batch = r - 2;
        int keep = rp(&g->r, 50) ? batch : rn(&g->r, batch + 1);
        for (int i = batch - keep; i < batch; i++) d[n++] = rp(&g->r, 20) ? K(g, 1) : a->type.dims[i];
        const tir_dim *nd = rand_dim(g, true);
        d[n++] = tb ? nd : kd;
        d[n++] = tb ? kd : nd;
        b = new_param(g, a->type.dtype, n, d);
    }
    if (!b) return false;
    tir_value *in[2] = {a, b};
    tir_attr_value at[2];
    int na = 0;
    if (ta || rp(&g->r, 10)) at[na++] = tir_a_bool("transpose_a", ta);
    if (tb || rp(&g->r, 10)) at[na++] = tir_a_bool("transpose_b", tb);
    tir_op *op = emit(g, TIR_OP_MATMUL, 2, in, na, at, NULL);
    if (!op) return false;
    if (numel_of(g->bind, &op->out[0]->type) * (eval_dim(g->bind, kd) + 1) > FLOP_CAP) {
        g->f->nops--;
        g->npool--;
        return false;
    }
    return true;
}

/* a new float parameter [T, D] with D even: what rope and attention read */
static bool fam_composite(gen *g) {
    int one = 1, two = 2;
    tir_attr_value a[3];
    int na = 0;
    switch (rn(&g->r, 7)) {
    case 0:
    case 1: { /* softmax, log_softmax */
        tir_value *x = pick(g, p_float_rank_ge, &one);
        if (!x) return false;
        if (rp(&g->r, 60)) a[na++] = tir_a_int("axis", rn(&g->r, 2 * x->type.rank) - x->type.rank);
        return emit1(g, rp(&g->r, 50) ? TIR_OP_SOFTMAX : TIR_OP_LOG_SOFTMAX, 1, &x, na, a) != NULL;
    }
    case 2: { /* rmsnorm, layernorm */
        static const double eps[] = {1e-5, 1e-6, 0.5, 0.0};
        tir_value *x = pick(g, p_float_rank_ge, &one);
        if (!x) return false;
        const tir_dim *dd = x->type.dims[x->type.rank - 1];
        bool ln = rp(&g->r, 45);
        tir_type wt = {.dtype = x->type.dtype, .rank = 1, .dims = {dd}};
        tir_value *in[3] = {x, NULL, NULL};
        for (int i = 1; i < (ln ? 3 : 2); i++) {
            in[i] = rp(&g->r, 25) ? pick(g, p_same_type, &wt) : NULL;
            if (!in[i]) in[i] = new_param(g, x->type.dtype, 1, &dd);
            if (!in[i]) return false;
        }
        if (rp(&g->r, 40)) a[na++] = tir_a_float("eps", eps[rn(&g->r, 4)]);
        return emit1(g, ln ? TIR_OP_LAYERNORM : TIR_OP_RMSNORM, ln ? 3 : 2, in, na, a) != NULL;
    }
    case 3: { /* cross_entropy(logits[N, C], targets[N]) */
        static const char *const red[] = {"mean", "sum", "none"};
        static const int64_t ign[] = {0, 1, -100, -1};
        tir_value *x = pick(g, p_float_rank_ge, &two);
        if (!x || x->type.rank != 2) {
            const tir_dim *d[2];
            rand_shape(g, 2, d, true);
            x = new_param(g, g->fdt, 2, d);
        }
        if (!x) return false;
        const tir_dim *nd = x->type.dims[0];
        tir_value *in[2] = {x, new_param(g, rp(&g->r, 50) ? TIR_I32 : TIR_I64, 1, &nd)};
        if (!in[1]) return false;
        if (rp(&g->r, 60)) a[na++] = tir_a_str("reduction", red[rn(&g->r, 3)]);
        if (rp(&g->r, 25)) a[na++] = tir_a_int("ignore_index", ign[rn(&g->r, 4)]);
        return emit1(g, TIR_OP_CROSS_ENTROPY, 2, in, na, a) != NULL;
    }
    case 4: { /* rope(x[..., T, D], cos[T, D], sin[T, D]) */
        tir_value *x = pick(g, p_float_rank_ge, &two);
        int64_t dv = x ? eval_dim(g->bind, x->type.dims[x->type.rank - 1]) : -1;
        if (!x || dv < 0 || dv % 2 || rp(&g->r, 30)) {
            const tir_dim *d[3];
            int rank = 2 + rn(&g->r, 2);
            rand_shape(g, rank, d, true);
            d[rank - 1] = rp(&g->r, 70) ? K(g, 2 * (1 + rn(&g->r, 8)))
                                        : tir_dim_mul(g->c, K(g, 2), old_sym(g));
            if (!d[rank - 1]) return false;
            x = new_param(g, g->fdt, rank, d);
        }
        if (!x) return false;
        const tir_dim *td[2] = {x->type.dims[x->type.rank - 2], x->type.dims[x->type.rank - 1]};
        tir_value *in[3] = {x, new_param(g, x->type.dtype, 2, td), new_param(g, x->type.dtype, 2, td)};
        if (!in[1] || !in[2]) return false;
        return emit1(g, TIR_OP_ROPE, 3, in, 0, NULL) != NULL;
    }
    default: { /* attention(q[B, Hq, T, D], k[B, Hk, S, D], v[B, Hk, S, Dv]) */
        const tir_dim *b = K(g, 1 + rn(&g->r, 2)), *hk = K(g, 1 + rn(&g->r, 2));
        const tir_dim *hq = tir_dim_mul(g->c, hk, K(g, 1 + rn(&g->r, 3)));
        const tir_dim *t = rp(&g->r, 30) ? rand_dim(g, true) : K(g, 1 + rn(&g->r, 8));
        const tir_dim *s = rp(&g->r, 40) ? t : K(g, 1 + rn(&g->r, 8));
        const tir_dim *dd = K(g, 1 + rn(&g->r, 16)), *dv = rp(&g->r, 70) ? dd : K(g, 1 + rn(&g->r, 8));
        tir_value *q = pick(g, p_float_rank_ge, &two);
        if (!q || q->type.rank != 4 || rp(&g->r, 50)) {
            const tir_dim *qd[4] = {b, hq, t, dd};
            q = new_param(g, g->fdt, 4, qd);
        } else {
            b = q->type.dims[0];
            hq = q->type.dims[1];
            dd = q->type.dims[3];
            hk = rp(&g->r, 50) ? hq : K(g, 1);
        }
        if (!q) return false;
        /* A causal query row with no key to see (S < T) is NaN by definition (softmax of all
         * -inf, as PyTorch), and so is every gradient through it, even where the loss ignores the
         * row: finite differences cannot agree there. Causal programs get S >= T (q's own T). */
        bool has_causal = rp(&g->r, 50), causal = has_causal && rp(&g->r, 70);
        if (causal) {
            const tir_dim *tq = q->type.dims[2];
            s = rp(&g->r, 50) ? tq : tir_dim_add(g->c, tq, K(g, 1 + rn(&g->r, 3)));
            if (!s) return false;
        }
        const tir_dim *kd[4] = {b, hk, s, dd}, *vd[4] = {b, hk, s, dv};
        tir_value *in[3] = {q, new_param(g, q->type.dtype, 4, kd), new_param(g, q->type.dtype, 4, vd)};
        if (!in[1] || !in[2]) return false;
        if (has_causal) a[na++] = tir_a_bool("causal", causal);
        if (rp(&g->r, 30)) a[na++] = tir_a_float("scale", 0.25 + runit(&g->r));
        return emit1(g, TIR_OP_ATTENTION, 3, in, na, a) != NULL;
    }
    }
}

/* a rank-0 constant of dt with value v (a literal operand) */
static tir_value *konst(gen *g, tir_dtype dt, double v) {
    tir_attr_value a[3] = {tir_a_float("value", v), tir_a_shape(g->m, "shape", 0, NULL),
                           tir_a_dtype("dtype", dt)};
    return emit1(g, TIR_OP_FULL, 0, NULL, 3, a);
}

static tir_value *un(gen *g, tir_opcode op, tir_value *x) {
    return x ? emit1(g, op, 1, &x, 0, NULL) : NULL;
}

static tir_value *bin(gen *g, tir_opcode op, tir_value *x, tir_value *y) {
    tir_value *in[2] = {x, y};
    return x && y ? emit1(g, op, 2, in, 0, NULL) : NULL;
}

static tir_value *cast_to(gen *g, tir_value *x, tir_dtype dt) {
    tir_attr_value a = tir_a_dtype("dtype", dt);
    return x ? emit1(g, TIR_OP_CAST, 1, &x, 1, &a) : NULL;
}

/* Patterns the simplifier rewrites (or must not): identities, inverse pairs, cast chains,
 * constant expressions, idempotent ops on one operand, NaN-sensitive folds. */
static bool fam_identity(gen *g) {
    tir_value *x = pick(g, NULL, NULL);
    if (!x) return false;
    tir_dtype dt = x->type.dtype;
    bool num = dt != TIR_BOOL, fl = tir_dtype_is_float(dt);
    int rank = x->type.rank;
    switch (rn(&g->r, 16)) {
    case 0: return num && bin(g, rp(&g->r, 50) ? TIR_OP_MUL : TIR_OP_DIV, x, konst(g, dt, 1)) != NULL;
    case 1:
        return num && bin(g, rn(&g->r, 2) ? TIR_OP_ADD : TIR_OP_SUB, x,
                          konst(g, dt, rp(&g->r, 20) ? -0.0 : 0)) != NULL;
    case 2: /* x - x, x / x: 0 and 1 only where x is finite (and nonzero) */
        if (!num || (g->smooth && fl)) return false;
        return bin(g, rp(&g->r, 50) ? TIR_OP_SUB : TIR_OP_DIV, x, x) != NULL;
    case 3: {
        static const tir_opcode ops[] = {TIR_OP_NEG, TIR_OP_ABS, TIR_OP_RELU};
        if (!num) return un(g, TIR_OP_NOT, un(g, TIR_OP_NOT, x)) != NULL;
        tir_opcode op = ops[rn(&g->r, 3)];
        return un(g, op, un(g, op, x)) != NULL;
    }
    case 4: { /* cast chains: through a narrower type is not an identity */
        if (fl && !exact_of(g, x))
            return cast_to(g, cast_to(g, x, rp(&g->r, 50) ? TIR_BF16 : TIR_F64), dt) != NULL;
        tir_dtype mid = rand_dtype(g);
        return cast_to(g, cast_to(g, x, mid), rp(&g->r, 60) ? dt : rand_dtype(g)) != NULL;
    }
    case 5: { /* transpose and its inverse */
        if (rank < 2) return false;
        int64_t p[TIR_MAX_RANK], q[TIR_MAX_RANK];
        for (int i = 0; i < rank; i++) p[i] = i;
        for (int i = rank - 1; i > 0; i--) {
            int j = rn(&g->r, i + 1);
            int64_t t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        for (int i = 0; i < rank; i++) q[p[i]] = i;
        tir_attr_value a = tir_a_ints(g->m, "perm", rank, p), b = tir_a_ints(g->m, "perm", rank, q);
        tir_value *t = emit1(g, TIR_OP_TRANSPOSE, 1, &x, 1, &a);
        return t && emit1(g, TIR_OP_TRANSPOSE, 1, &t, 1, &b) != NULL;
    }
    case 6: { /* reshape there and back */
        const tir_dim *flat = K(g, 1);
        for (int i = 0; i < rank && flat; i++) flat = tir_dim_mul(g->c, flat, x->type.dims[i]);
        if (!flat) return false;
        tir_attr_value a = tir_a_shape(g->m, "shape", 1, &flat);
        tir_attr_value b = tir_a_shape(g->m, "shape", rank, x->type.dims);
        tir_value *t = emit1(g, TIR_OP_RESHAPE, 1, &x, 1, &a);
        return t && emit1(g, TIR_OP_RESHAPE, 1, &t, 1, &b) != NULL;
    }
    case 7: { /* one operand twice */
        if (!num) return bin(g, rp(&g->r, 50) ? TIR_OP_AND : TIR_OP_OR, x, x) != NULL;
        tir_opcode op = rp(&g->r, 50) ? TIR_OP_MAXIMUM : TIR_OP_MINIMUM;
        if (rp(&g->r, 30) && exact_of(g, x)) /* eq(x, x) is false for NaN */
            op = rp(&g->r, 50) ? TIR_OP_EQ : TIR_OP_NE;
        if (rp(&g->r, 30)) {
            tir_value *c = pick(g, p_bool, NULL);
            tir_value *in[3] = {c, x, x};
            return c && emit1(g, TIR_OP_WHERE, 3, in, 0, NULL) != NULL;
        }
        return bin(g, op, x, x) != NULL;
    }
    case 8: { /* a full-range slice, a slice of a slice */
        if (rank == 0) return false;
        int ax = rn(&g->r, rank);
        tir_attr_value a[2] = {tir_a_int("axis", ax), tir_a_int("start", 0)};
        tir_value *t = emit1(g, TIR_OP_SLICE, 1, &x, rp(&g->r, 50) ? 2 : 1, a);
        return t && (rp(&g->r, 50) || mv_slice(g, t));
    }
    case 9: { /* concat, then split back */
        if (rank == 0) return false;
        int ax = rn(&g->r, rank);
        tir_value *in[2] = {x, x};
        tir_attr_value a = tir_a_int("axis", ax);
        tir_value *c = emit1(g, TIR_OP_CONCAT, 2, in, 1, &a);
        const tir_dim *sz[2] = {x->type.dims[ax], x->type.dims[ax]};
        tir_attr_value b[2] = {tir_a_int("axis", ax), tir_a_shape(g->m, "sizes", 2, sz)};
        return c && emit(g, TIR_OP_SPLIT, 1, &c, 2, b, NULL) != NULL;
    }
    case 10: { /* broadcast to its own shape, or twice */
        tir_attr_value a = tir_a_shape(g->m, "shape", rank, x->type.dims);
        tir_value *t = emit1(g, TIR_OP_BROADCAST, 1, &x, 1, &a);
        return t && (rp(&g->r, 50) || mv_broadcast(g, t));
    }
    case 11: { /* x*0, x^1, x^0, x^2, 0/x: 0*inf and 0/0 are NaN */
        if (!num) return false;
        if (fl && rp(&g->r, 50))
            return bin(g, TIR_OP_POW, x, konst(g, dt, (double)rn(&g->r, 3))) != NULL;
        if (g->smooth) return bin(g, TIR_OP_MUL, x, konst(g, dt, 0)) != NULL;
        return rp(&g->r, 50) ? bin(g, TIR_OP_MUL, konst(g, dt, 0), x) != NULL
                             : bin(g, TIR_OP_DIV, konst(g, dt, 0), x) != NULL;
    }
    case 12: { /* reductions over nothing or over a dim of 1 */
        if (!num) return false;
        tir_opcode op = fl && rp(&g->r, 30) ? TIR_OP_MEAN : rp(&g->r, 50) ? TIR_OP_SUM : TIR_OP_MAX;
        int64_t ax[TIR_MAX_RANK];
        int n = 0;
        for (int i = 0; i < rank; i++)
            if (x->type.dims[i] == K(g, 1)) ax[n++] = i;
        tir_attr_value a[2] = {tir_a_ints(g->m, "axes", n, ax), tir_a_bool("keepdim", rp(&g->r, 50))};
        return emit1(g, op, 1, &x, 2, a) != NULL;
    }
    case 13: { /* exp(log(x)), log(exp(x)), sqrt(x*x), tanh(atanh...) */
        if (!fl) return false;
        if (g->smooth) return un(g, TIR_OP_LOG, un(g, TIR_OP_EXP, x)) != NULL;
        return rp(&g->r, 50) ? un(g, TIR_OP_EXP, un(g, TIR_OP_LOG, x)) != NULL
                             : un(g, TIR_OP_SQRT, bin(g, TIR_OP_MUL, x, x)) != NULL;
    }
    case 14: { /* a constant expression: the folder computes it */
        static const tir_opcode ops[] = {TIR_OP_EXP,  TIR_OP_NEG,   TIR_OP_SQRT,
                                         TIR_OP_TANH, TIR_OP_RECIP, TIR_OP_GELU};
        tir_dtype cd = rp(&g->r, 60) ? g->fdt : rand_dtype(g);
        const tir_dim *d[TIR_MAX_RANK];
        int n = some_shape(g, d, 0);
        tir_attr_value a[3] = {tir_a_float("value", rp(&g->r, 50) ? 2.5 : -0.75),
                               tir_a_shape(g->m, "shape", n, d), tir_a_dtype("dtype", cd)};
        tir_value *c = emit1(g, TIR_OP_FULL, 0, NULL, 3, a);
        tir_value *e = tir_dtype_is_float(cd) ? un(g, ops[rn(&g->r, 6)], c) : un(g, TIR_OP_NEG, c);
        return e && bin(g, TIR_OP_ADD, e, konst(g, cd, 1.5)) != NULL;
    }
    default: { /* x + x and 2 * x; x - (-y) */
        if (!num) return false;
        tir_value *y = partner(g, x);
        return rp(&g->r, 50) ? bin(g, TIR_OP_ADD, x, x) != NULL
                             : bin(g, TIR_OP_SUB, x, un(g, TIR_OP_NEG, y)) != NULL;
    }
    }
}

/* An op of f once more with the same operands, sometimes with one attribute changed: common
 * subexpression elimination must merge the first kind and keep the second apart. */
static bool fam_repeat(gen *g) {
    tir_func *f = g->f;
    if (!f->nops) return false;
    const tir_op *op = f->ops[rn(&g->r, f->nops)];
    if (op->nattrs > 8 || op->code == TIR_OP_FULL) return false;
    tir_attr_value a[8];
    int64_t ints[TIR_MAX_RANK];
    for (int i = 0; i < op->nattrs; i++) a[i] = op->attrs[i];
    /* a slice's bounds on a symbolic dim must stay in range for the program's sizes */
    if (op->nattrs && op->code != TIR_OP_SLICE && rp(&g->r, 50)) {
        tir_attr_value *x = &a[rn(&g->r, op->nattrs)];
        switch (x->kind) {
        case TIR_ATTR_INT: x->u.i += rp(&g->r, 50) ? 1 : -1; break;
        case TIR_ATTR_FLOAT: x->u.f *= 0.5; break;
        case TIR_ATTR_BOOL: x->u.b = !x->u.b; break;
        case TIR_ATTR_DTYPE: x->u.dtype = rand_dtype(g); break;
        case TIR_ATTR_STR: x->u.s = rp(&g->r, 50) ? "sum" : "tanh"; break;
        case TIR_ATTR_INTS:
            if (x->u.ints.n < 2 || x->u.ints.n > TIR_MAX_RANK) return false;
            for (int i = 0; i < x->u.ints.n; i++) ints[i] = x->u.ints.v[x->u.ints.n - 1 - i];
            x->u.ints.v = ints;
            break;
        default: return false;
        }
    }
    if (op->code == TIR_OP_CAST && is_float(op->in[0]) && !exact_of(g, op->in[0]) &&
        !tir_dtype_is_float(a[0].u.dtype))
        return false; /* discrete results of inexact values: see the top of the file */
    return emit(g, op->code, op->nin, op->in, op->nattrs, a, op->callee) != NULL;
}

/* v (an integer value of f) indexes something, perhaps through movement ops and calls */
static bool indexes(const tir_func *f, const tir_value *v, int depth) {
    if (depth > 8) return false;
    if (f->grad_of && f->nres == 0) f = f->grad_of;
    for (int k = 0; k < f->nops; k++) {
        const tir_op *op = f->ops[k];
        for (int i = 0; i < op->nin; i++) {
            if (op->in[i] != v) continue;
            if (i == 1 && (op->code == TIR_OP_TAKE || op->code == TIR_OP_SCATTER_ADD ||
                           op->code == TIR_OP_CROSS_ENTROPY))
                return true;
            if (tir_ops[op->code].flags & TIR_F_MOVEMENT || op->code == TIR_OP_CAST)
                for (int j = 0; j < op->nout; j++)
                    if (indexes(f, op->out[j], depth + 1)) return true;
            if (op->callee) {
                const tir_func *c = op->callee;
                if (c->grad_of && c->nres == 0) c = c->grad_of;
                if (i < c->nparams && indexes(c, c->params[i], depth + 1)) return true;
            }
        }
    }
    return false;
}

static bool fam_call(gen *g) {
    if (!g->ncallees) return false;
    int ci = rn(&g->r, g->ncallees);
    if (g->smooth && !g->callee_smooth[ci]) return false;
    tir_func *callee = g->callees[ci];
    int np = callee->nparams;
    const tir_func *body = callee->grad_of && callee->nres == 0 ? callee->grad_of : callee;
    if (np > 16 || body->nparams != np) return false;
    tir_value *in[16];
    for (int attempt = 0; attempt < 2; attempt++) {
        for (int i = 0; i < np; i++) {
            const tir_type *pt = &callee->params[i]->type;
            in[i] = NULL;
            /* indices come from parameters, which the inputs keep in range */
            if (attempt == 0 && rp(&g->r, 60) && !indexes(body, body->params[i], 0))
                for (int k = g->npool - 1; k >= 0 && !in[i]; k--) {
                    tir_value *v = g->pool[(k + rn(&g->r, 2)) % g->npool];
                    /* the sizes the callee was generated for: its slices stay in range */
                    bool same = v->type.dtype == pt->dtype && v->type.rank == pt->rank;
                    for (int d = 0; same && d < pt->rank; d++)
                        same = eval_dim(g->bind, v->type.dims[d]) == eval_dim(g->bind, pt->dims[d]);
                    if (same) in[i] = v;
                }
            if (!in[i]) in[i] = new_param(g, pt->dtype, pt->rank, pt->dims);
            if (!in[i]) return false;
        }
        if (emit(g, TIR_OP_CALL, np, in, 0, NULL, callee)) return true;
    }
    return false;
}

typedef bool (*family_fn)(gen *g);

static bool one_op(gen *g) {
    static const struct {
        family_fn fn;
        int w;
    } fams[] = {{fam_unary, 14}, {fam_binary, 20}, {fam_where, 5}, {fam_cast, 7}, {fam_reduce, 9},
                {fam_movement, 16}, {fam_index, 5}, {fam_create, 4}, {fam_linalg, 6},
                {fam_composite, 9}, {fam_call, 6}, {fam_identity, 10}, {fam_repeat, 5}};
    int total = 0;
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) total += fams[i].w;
    int r = rn(&g->r, total);
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
        if (r < fams[i].w) return fams[i].fn(g);
        r -= fams[i].w;
    }
    return false;
}

static tir_dtype func_dtype(gen *g) {
    static const tir_dtype dts[] = {TIR_F32, TIR_F32, TIR_F32, TIR_F32, TIR_F32, TIR_F32,
                                    TIR_F64, TIR_BF16, TIR_BF16, TIR_F16};
    return dts[rn(&g->r, (int)(sizeof dts / sizeof dts[0]))];
}

enum { FN_HELPER, FN_SMOOTH_HELPER, FN_LOSS, FN_MAIN };

static tir_func *gen_func(gen *g, const char *name, int kind) {
    g->f = tir_func_new(g->m, name, NOLOC, &g->d);
    if (!g->f) return NULL;
    g->smooth = kind == FN_LOSS || kind == FN_SMOOTH_HELPER;
    g->npool = g->nsyms = g->nparam = g->nnamed = 0;
    memset(g->exact, 0, sizeof g->exact);
    g->fdt = func_dtype(g);
    int np = 1 + rn(&g->r, 3);
    for (int i = 0; i < np; i++) {
        int r = rn(&g->r, 100);
        tir_dtype dt = r < 75 || kind == FN_LOSS ? g->fdt
                       : r < 90                  ? (rp(&g->r, 50) ? TIR_I32 : TIR_I64)
                                                 : TIR_BOOL;
        if (!rand_param(g, dt)) return NULL;
    }
    int big = g->max_ops, nops = kind == FN_MAIN ? 4 + rn(&g->r, big - 4)
                                 : kind == FN_LOSS ? 3 + rn(&g->r, big / 3) : 2 + rn(&g->r, big / 4);
    for (int done = 0, tries = 0; done < nops && tries < nops * 8; tries++)
        if (one_op(g)) done++;
    tir_value *res[3];
    int nres = 0;
    if (kind == FN_LOSS) {
        tir_value *x = pick(g, p_float, NULL);
        if (!x) return NULL;
        if (x->type.dtype != g->fdt) {
            tir_attr_value a = tir_a_dtype("dtype", g->fdt);
            x = emit1(g, TIR_OP_CAST, 1, &x, 1, &a);
        }
        if (x && x->type.rank > 0)
            x = emit1(g, rp(&g->r, 50) ? TIR_OP_SUM : TIR_OP_MEAN, 1, &x, 0, NULL);
        if (!x) return NULL;
        res[nres++] = x;
    } else {
        /* the newest values nothing reads, so that most of the code is live */
        res[nres++] = g->pool[g->npool - 1];
        int want = 1 + rn(&g->r, 3);
        for (int i = g->npool - 2; i >= 0 && nres < want; i--) {
            tir_value *v = g->pool[i];
            bool read = !v->def || (v->def->code == TIR_OP_FULL && v->type.rank == 0);
            for (int k = 0; k < g->f->nops && !read; k++)
                for (int j = 0; j < g->f->ops[k]->nin; j++) read |= g->f->ops[k]->in[j] == v;
            if (!read) res[nres++] = v;
        }
    }
    tir_type rt[3];
    for (int i = 0; i < nres; i++) rt[i] = res[i]->type;
    tir_func_set_results(g->f, nres, res);
    tir_func_set_ret(g->f, nres, rt);
    return g->f;
}


static bool is_grad_def(const tir_func *f) { return f->grad_of && f->nres == 0; }

static int64_t index_bound(const tir_func *f, const tir_value *v, const tir_bindings *b, int depth);

static tir_status generate_once(tir_context *ctx, uint64_t seed, uint64_t index, int max_ops,
                                tir_module **out, tir_bindings *dims, unsigned long *counts, tir_diag *d) {
    *out = NULL;
    memset(dims, 0, sizeof *dims);
    gen *g = calloc(1, sizeof *g);
    if (!g) return tir_diag_set(d, TIR_ERR_OOM, NULL, NOLOC, "out of memory");
    g->r = rng_make(mix64(seed) ^ mix64(index * 0x9e3779b97f4a7c15ull + 1));
    g->c = ctx;
    g->bind = dims;
    g->op_counts = counts;
    g->max_ops = max_ops < 4 ? 4 : max_ops;
    tir_status st = TIR_OK;
    if (!(g->m = tir_module_new(ctx))) {
        st = tir_diag_set(d, TIR_ERR_OOM, NULL, NOLOC, "out of memory");
        goto done;
    }
    tir_func *callable[6];
    bool smooth[6] = {false};
    int ncall = 0;
    int nh = rp(&g->r, 50) ? 1 + rn(&g->r, 2) : 0;
    for (int i = 0; i < nh; i++) {
        char name[16];
        snprintf(name, sizeof name, "h%d", i);
        memcpy(g->callees, callable, sizeof callable);
        memcpy(g->callee_smooth, smooth, sizeof smooth);
        g->ncallees = ncall;
        smooth[ncall] = rp(&g->r, 50);
        tir_func *f = gen_func(g, name, smooth[ncall] ? FN_SMOOTH_HELPER : FN_HELPER);
        if (!f) goto fail;
        callable[ncall++] = f;
    }
    if (rp(&g->r, 35)) {
        memcpy(g->callees, callable, sizeof callable);
        memcpy(g->callee_smooth, smooth, sizeof smooth);
        g->ncallees = ncall;
        tir_func *loss = gen_func(g, "loss", FN_LOSS);
        if (!loss) goto fail;
        const char *wrt[16];
        int nw = 0;
        for (int i = 0; i < loss->nparams && nw < 16; i++)
            if (tir_dtype_is_float(loss->params[i]->type.dtype) &&
                (rp(&g->r, 60) || (!nw && i == loss->nparams - 1)))
                wrt[nw++] = loss->params[i]->name;
        if (nw) {
            tir_func *gd = tir_func_new_grad_def(g->m, "loss_grad", "loss", nw, wrt, NOLOC, &g->d);
            if (!gd) goto fail;
            callable[ncall++] = gd;
        }
    }
    memcpy(g->callees, callable, sizeof callable);
    g->ncallees = ncall;
    if (!gen_func(g, "main", FN_MAIN)) goto fail;
    if (tir_verify(g->m, &g->d) != TIR_OK) goto fail;
    *out = g->m;
    g->m = NULL;
    goto done;
fail:
    st = tir_diag_set(d, TIR_ERR_INTERNAL, NULL, NOLOC, "the generator built no valid module: %s",
                      g->d.msg);
done:
    if (g->m) tir_module_free(g->m);
    free(g);
    return st;
}

/* does some non-empty integer parameter of @main index only a 0-sized dim (take over an empty
 * axis)? Such a program has no valid inputs. */
static bool has_unsatisfiable_index(const tir_module *m, const tir_bindings *dims) {
    const tir_func *f = tir_module_find(m, "main");
    if (!f) return false;
    for (int i = 0; i < f->nparams; i++) {
        const tir_value *p = f->params[i];
        if (!tir_dtype_is_int(p->type.dtype)) continue;
        bool empty = false;
        for (int j = 0; j < p->type.rank; j++) empty |= eval_dim(dims, p->type.dims[j]) == 0;
        if (!empty && index_bound(f, p, dims, 0) == 0) return true;
    }
    return false;
}

/* A program index whose generation fails (every attempt rejected, or a program with no valid
 * inputs) is not a compiler bug: generate again from other sub-seeds of the index. The first
 * attempt uses the index itself, so programs that generate at once are unchanged. */
static tir_status generate(tir_context *ctx, uint64_t seed, uint64_t index, int max_ops,
                           tir_module **out, tir_bindings *dims, unsigned long *counts, tir_diag *d) {
    tir_status st = TIR_OK;
    for (uint64_t sub = 0; sub < 64; sub++) {
        uint64_t ix = sub ? mix64(index ^ mix64(sub * 0x2545f4914f6cdd1dull)) : index;
        st = generate_once(ctx, seed, ix, max_ops, out, dims, counts, d);
        if (st != TIR_OK && st != TIR_ERR_INTERNAL) return st; /* out of memory */
        if (st == TIR_OK && !has_unsatisfiable_index(*out, dims)) return TIR_OK;
        if (st == TIR_OK) {
            tir_module_free(*out);
            *out = NULL;
            st = tir_diag_set(d, TIR_ERR_INTERNAL, NULL, NOLOC,
                              "the generator built no valid module: an index over an empty axis");
        }
    }
    return st;
}

tir_status tir_fuzz_generate(tir_context *ctx, uint64_t seed, uint64_t index, tir_module **out,
                             tir_bindings *dims, tir_diag *d) {
    if (!ctx || !out || !dims)
        return tir_diag_set(d, TIR_ERR_INVALID, NULL, NOLOC, "tir_fuzz_generate: NULL argument");
    return generate(ctx, seed, index, 30, out, dims, NULL, d);
}

/* ================================================================ what a child reports */

enum fz_class {
    C_PASS, C_GENERATE, C_ROUNDTRIP, C_VERIFY, C_STAGE, C_INTERP, C_MISMATCH, C_GRADCHECK,
    C_CODEGEN, C_PTXAS, C_GPU, C_CRASH, C_TIMEOUT, C_ABNORMAL, C_INVALID, C_NO_EDIT, C_COUNT
};
static const char *const class_names[C_COUNT] = {
    "pass", "generator failure", "round trip", "verifier", "stage error", "interpreter error",
    "mismatch", "gradcheck", "codegen", "ptxas", "gpu", "crash", "timeout", "abnormal exit",
    "invalid candidate", "no edit"};

enum { SH_TEXT = 1 << 20, PTX_SEEN = 1 << 15 };

/* one page set shared by the parent and its children (mmap MAP_SHARED) */
typedef struct fz_shared {
    int cls;
    char stage[64];   /* where the child is (or was when it failed) */
    char key[32];     /* tells failures of one class and stage apart, for reduction */
    char phase[256];  /* what it is doing, for crash reports */
    char msg[3072];
    char dims[512];   /* "N=5 M=3": the sizes of the program's symbols */
    int nedits;
    long measure[5], cur_measure[5];
    long kernels, unsupported, ptx_checked;
    char unsupported_msg[256];
    unsigned long op_counts[TIR_OP_COUNT];
    uint64_t ptx_seen[PTX_SEEN]; /* hashes of PTX that ptxas accepted (open addressing) */
    size_t text_len;
    char text[SH_TEXT];
} fz_shared;

typedef struct fz_opts {
    uint64_t seed;
    long count, only;
    bool gpu, verbose, fork, reduce, gradcheck, codegen, print_all;
    const char *keep, *check_file, *arch;
    char ptxas[1024];   /* "" when none */
    int timeout;
    int reduce_budget;  /* candidates per failure */
    int reduce_seconds; /* and seconds per failure */
    int max_ops;        /* the generator's size: ops of @main at most */
    tir_bindings dims;  /* --dim: sizes for --check */
    uint64_t input_seed;
    bool have_input_seed;
} fz_opts;

static void set_stage(fz_shared *sh, const char *s) { snprintf(sh->stage, sizeof sh->stage, "%s", s); }

static void phase(fz_shared *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void phase(fz_shared *sh, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sh->phase, sizeof sh->phase, fmt, ap);
    va_end(ap);
}

/* records the first failure; false so that `return fail(...)` reads as "stop" */
static bool fail(fz_shared *sh, int cls, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(fz_shared *sh, int cls, const char *fmt, ...) {
    if (sh->cls) return false;
    sh->cls = cls;
    sh->key[0] = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sh->msg, sizeof sh->msg, fmt, ap);
    va_end(ap);
    return false;
}

static const char *dmsg(const tir_diag *d, char *buf, size_t n) {
    if (d->line > 0) snprintf(buf, n, "%d:%d: %s", d->line, d->col, d->msg);
    else snprintf(buf, n, "%s", d->msg);
    return buf;
}

static void dims_to_str(const tir_bindings *b, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < b->n && len < n; i++) {
        int w = snprintf(buf + len, n - len, "%s%s=%lld", i ? " " : "", b->names[i],
                         (long long)b->values[i]);
        if (w < 0) break;
        len += (size_t)w;
    }
}

/* "N=5 M=3" (spaces or commas) into b; false on a malformed entry. Names point into s. */
static bool dims_from_str(char *s, tir_bindings *b) {
    for (char *tok = strtok(s, " ,\t\r\n"); tok; tok = strtok(NULL, " ,\t\r\n")) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok) return false;
        *eq = 0;
        char *end;
        long long v = strtoll(eq + 1, &end, 10);
        if (*end || v < 0 || tir_bindings_set(b, tok, v) != TIR_OK) return false;
    }
    return true;
}

/* ================================================================ inputs */

/* The smallest dim that integer value v indexes (take, scatter_add, cross_entropy targets),
 * followed through movement ops, integer casts and calls; -1 when it indexes nothing. */
static int64_t index_bound(const tir_func *f, const tir_value *v, const tir_bindings *b, int depth) {
    if (depth > 8) return -1;
    if (is_grad_def(f)) f = f->grad_of;
    int64_t best = -1;
    for (int k = 0; k < f->nops; k++) {
        const tir_op *op = f->ops[k];
        for (int i = 0; i < op->nin; i++) {
            if (op->in[i] != v) continue;
            int64_t bnd = -1;
            switch (op->code) {
            case TIR_OP_TAKE:
            case TIR_OP_SCATTER_ADD: {
                int ax;
                const tir_type *t = &op->in[0]->type;
                if (i == 1 && tir_norm_axis(tir_attr_int(op, "axis", 0), t->rank, &ax))
                    bnd = eval_dim(b, t->dims[ax]);
                break;
            }
            case TIR_OP_CROSS_ENTROPY:
                if (i == 1 && op->in[0]->type.rank == 2) bnd = eval_dim(b, op->in[0]->type.dims[1]);
                break;
            case TIR_OP_RESHAPE: case TIR_OP_TRANSPOSE: case TIR_OP_BROADCAST: case TIR_OP_SLICE:
            case TIR_OP_CONCAT: case TIR_OP_SPLIT: case TIR_OP_CAST:
                for (int j = 0; j < op->nout; j++) {
                    if (!is_int(op->out[j])) continue;
                    int64_t x = index_bound(f, op->out[j], b, depth + 1);
                    if (x >= 0 && (bnd < 0 || x < bnd)) bnd = x;
                }
                break;
            case TIR_OP_CALL: {
                const tir_func *cf = op->callee;
                if (!cf || cf->nparams != op->nin) break;
                /* the callee's sizes, bound from the arguments' sizes */
                tir_bindings cb = {0};
                char e[128];
                for (int pass = 0; pass < 3; pass++)
                    for (int a = 0; a < op->nin; a++)
                        for (int j = 0; j < op->in[a]->type.rank && j < cf->params[a]->type.rank; j++) {
                            int64_t sz = eval_dim(b, op->in[a]->type.dims[j]);
                            if (sz >= 0)
                                (void)tir_dim_bind(cf->params[a]->type.dims[j], sz, &cb, e, sizeof e);
                        }
                bnd = index_bound(cf, (is_grad_def(cf) ? cf->grad_of : cf)->params[i], &cb, depth + 1);
                break;
            }
            default: break;
            }
            if (bnd >= 0 && (best < 0 || bnd < best)) best = bnd;
        }
    }
    return best;
}

typedef struct fn_run {
    char *name;
    char *of;           /* value_and_grad definitions: the function differentiated */
    int nargs, nres;
    tir_tensor **args;
    tir_tensor **ref;   /* the original's results; NULL until the function has a body */
    tir_tensor **mag;   /* the original on |inputs| when it is monotone in magnitudes, else NULL */
    bool reduces;       /* rounding may legitimately change: looser tolerance */
    bool root;          /* no other function calls it */
} fn_run;

static void fn_run_free(fn_run *r) {
    for (int i = 0; r->args && i < r->nargs; i++) tir_tensor_free(r->args[i]);
    for (int i = 0; r->ref && i < r->nres; i++) tir_tensor_free(r->ref[i]);
    for (int i = 0; r->mag && i < r->nres; i++) tir_tensor_free(r->mag[i]);
    free(r->mag);
    free(r->args);
    free(r->ref);
    free(r->name);
    free(r->of);
}

static bool func_reduces(const tir_func *f) {
    if (is_grad_def(f)) return true;
    for (int k = 0; k < f->nops; k++) {
        unsigned fl = tir_ops[f->ops[k]->code].flags;
        if (fl & (TIR_F_REDUCE | TIR_F_LINALG | TIR_F_COMPOSITE) || f->ops[k]->code == TIR_OP_CALL ||
            f->ops[k]->code == TIR_OP_SCATTER_ADD)
            return true;
    }
    return false;
}

/* Random arguments for f: floats in [-2, 2] away from 0 but for a few signed zeros, integers
 * that index in range (others in [-3, 6)), booleans; the same for the same seed and function
 * name. */
static bool make_inputs(const tir_func *f, const tir_bindings *b, uint64_t seed, fn_run *r,
                        char *err, size_t errn) {
    const tir_func *body = is_grad_def(f) ? f->grad_of : f;
    rng g = rng_make(seed ^ hash_str(is_grad_def(f) ? f->grad_of->name : f->name));
    r->nargs = f->nparams;
    r->args = calloc((size_t)f->nparams + 1, sizeof *r->args);
    if (!r->args) return snprintf(err, errn, "out of memory"), false;
    for (int p = 0; p < f->nparams; p++) {
        const tir_type *t = &f->params[p]->type;
        int64_t dims[TIR_MAX_RANK];
        if (tir_type_eval(t, b, dims) != TIR_OK) {
            char ts[128];
            tir_type_print(t, ts, sizeof ts);
            snprintf(err, errn, "@%s: parameter %d: %s has no size under the program's dims",
                     f->name, p, ts);
            return false;
        }
        tir_tensor *x = r->args[p] = tir_tensor_new(t->dtype, t->rank, dims);
        if (!x) return snprintf(err, errn, "out of memory"), false;
        int64_t n = tir_tensor_numel(x), bound = -1;
        bool nonzero = false;
        if (tir_dtype_is_int(t->dtype)) bound = index_bound(body, body->params[p], b, 0);
        for (int64_t i = 0; i < n; i++) {
            double v;
            if (t->dtype == TIR_BOOL) v = rn(&g, 2);
            else if (bound >= 0) v = bound ? rn(&g, (int)(bound < INT32_MAX ? bound : INT32_MAX)) : 0;
            else if (tir_dtype_is_int(t->dtype)) v = rn(&g, 9) - (t->dtype == TIR_U8 ? 0 : 3);
            else if (rp(&g, 2)) {
                v = rp(&g, 50) ? -0.0 : 0.0; /* a few signed zeros, never all */
            } else {
                v = runit(&g) * 4 - 2;
                if (fabs(v) < 0.05) v = v < 0 ? -0.5 : 0.5;
            }
            tir_tensor_set(x, i, v);
            nonzero |= v != 0;
        }
        if (n && !nonzero && tir_dtype_is_float(t->dtype)) tir_tensor_set(x, 0, 0.5);
    }
    return true;
}

/* ================================================================ comparing results */

/* Monotone in magnitudes: f is built only from add, mul, matmul, sum, mean, pure index maps
 * (movement ops), float casts, non-negative constants and calls of such functions. Then every
 * result element is a polynomial in the inputs with non-negative coefficients, so
 * |f(x)| <= f(|x|) elementwise, and the standard error analysis of floating sums and products
 * bounds the rounding error of any evaluation order by about n·u·f(|x|) (n terms, u the unit
 * roundoff): f(|x|) is the scale at which a kernel's rounding is measured. Where f(x) is small by
 * cancellation among large terms (a mean of matmul products near 0), ‖ref‖ understates that
 * scale and DESIGN §6's ‖out − ref‖/‖ref‖ is ill-conditioned. Anything else (sub, neg, div,
 * exp, max, ...) may cancel or amplify in ways |inputs| do not bound: the strict test stays. */
static bool monotone_func(const tir_func *f, int depth) {
    if (!f || depth > 8 || is_grad_def(f)) return false;
    for (int k = 0; k < f->nops; k++) {
        const tir_op *op = f->ops[k];
        unsigned fl = tir_ops[op->code].flags;
        switch (op->code) {
        case TIR_OP_ADD:
        case TIR_OP_MUL:
        case TIR_OP_MATMUL:
        case TIR_OP_SUM:
        case TIR_OP_MEAN: break;
        case TIR_OP_CAST:
            if (!tir_dtype_is_float(op->in[0]->type.dtype) || !tir_dtype_is_float(op->out[0]->type.dtype))
                return false;
            break;
        case TIR_OP_FULL:
            if (!(tir_attr_float(op, "value", -1.0) >= 0)) return false;
            break;
        case TIR_OP_CALL:
            if (!monotone_func(op->callee, depth + 1)) return false;
            break;
        default:
            if (!(fl & TIR_F_MOVEMENT)) return false;
        }
    }
    return true;
}

/* NaN and infinity patterns must match exactly, and with signed_zero the signs of zeros; the
 * rest ‖out − ref‖/‖ref‖ <= tol (DESIGN §6), or, with mag (ref's function on |inputs|, for
 * functions monotone in magnitudes: see monotone_func), ‖out − ref‖/max(‖ref‖, ‖mag‖) <= tol */
static bool same_result_mag(const tir_tensor *out, const tir_tensor *ref, const tir_tensor *mag,
                            double tol, bool signed_zero, char *msg, size_t n) {
    char a[128], b[128];
    if (tir_tensor_dtype(out) != tir_tensor_dtype(ref) || tir_tensor_rank(out) != tir_tensor_rank(ref)) {
        snprintf(msg, n, "got %s rank %d, expected %s rank %d", tir_dtype_name(tir_tensor_dtype(out)),
                 tir_tensor_rank(out), tir_dtype_name(tir_tensor_dtype(ref)), tir_tensor_rank(ref));
        return false;
    }
    for (int i = 0; i < tir_tensor_rank(out); i++)
        if (tir_tensor_dim(out, i) != tir_tensor_dim(ref, i)) {
            snprintf(msg, n, "dim %d is %lld, expected %lld", i, (long long)tir_tensor_dim(out, i),
                     (long long)tir_tensor_dim(ref, i));
            return false;
        }
    int64_t cnt = tir_tensor_numel(out), first = -1;
    double num = 0, den = 0;
    for (int64_t i = 0; i < cnt; i++) {
        double x = tir_tensor_get(out, i), y = tir_tensor_get(ref, i);
        if (isnan(x) != isnan(y) || ((isinf(x) || isinf(y)) && x != y)) {
            snprintf(a, sizeof a, "%.9g", x);
            snprintf(b, sizeof b, "%.9g", y);
            snprintf(msg, n, "element %lld is %s, expected %s (NaN/inf pattern differs)",
                     (long long)i, a, b);
            return false;
        }
        if (isnan(x) || isinf(x)) continue;
        /* -0 and +0 divide differently */
        if (signed_zero && x == 0 && y == 0 && signbit(x) != signbit(y)) {
            snprintf(msg, n, "element %lld is %s0, expected %s0 (the sign of zero differs)",
                     (long long)i, signbit(x) ? "-" : "+", signbit(y) ? "-" : "+");
            return false;
        }
        if (x != y && first < 0) first = i;
        num += (x - y) * (x - y);
        den += y * y;
    }
    double err = den > 0 ? sqrt(num / den) : sqrt(num);
    if (first < 0 || (tol > 0 && err <= tol)) return true;
    double merr = err;
    if (mag && tol > 0 && tir_tensor_numel(mag) == cnt) {
        double mden = 0;
        bool finite = true;
        for (int64_t i = 0; i < cnt; i++) {
            double y = tir_tensor_get(mag, i);
            finite &= isfinite(y);
            mden += y * y;
        }
        if (finite && mden > den) {
            merr = sqrt(num / mden);
            if (merr <= tol) return true;
        }
    }
    snprintf(a, sizeof a, "%.9g", tir_tensor_get(out, first));
    snprintf(b, sizeof b, "%.9g", tir_tensor_get(ref, first));
    if (merr < err)
        snprintf(msg, n, "rel err %.3g (%.3g against the result on |inputs|) > %.3g; element %lld is %s, expected %s",
                 err, merr, tol, (long long)first, a, b);
    else
        snprintf(msg, n, "rel err %.3g > %.3g; element %lld is %s, expected %s", err, tol,
                 (long long)first, a, b);
    return false;
}

static bool same_result(const tir_tensor *out, const tir_tensor *ref, double tol, bool signed_zero,
                        char *msg, size_t n) {
    return same_result_mag(out, ref, NULL, tol, signed_zero, msg, n);
}

static double tolerance(tir_dtype dt, bool reduces) { return tir_tolerance(dt, reduces); }

/* the first line where two texts differ, for round-trip reports */
static void first_diff(const char *a, const char *b, char *msg, size_t n) {
    int line = 1;
    const char *la = a, *lb = b;
    while (*a && *a == *b) {
        if (*a == '\n') {
            line++;
            la = a + 1;
            lb = b + 1;
        }
        a++;
        b++;
    }
    int ea = (int)strcspn(la, "\n"), eb = (int)strcspn(lb, "\n");
    snprintf(msg, n, "line %d: '%.*s' became '%.*s'", line, ea > 200 ? 200 : ea, la,
             eb > 200 ? 200 : eb, lb);
}

/* ================================================================ the check of one module */

enum { E_REMOVE_FUNC, E_KEEP, E_DCE, E_TO_PARAM, E_TO_OPERAND, E_DROP_RESULT, E_DROP_PARAMS,
       E_DROP_WRT, E_SUBST_SYM, E_SHRINK };

typedef struct redit {
    int kind;
    int fi, op, j;
    const char *sym;
    int64_t from, to;
    uint64_t keep;  /* E_KEEP: the functions kept (bit fi) */
} redit;

static tir_module *rebuild(const tir_module *m, const redit *e, tir_diag *d);

/* the functions f reaches through calls and value_and_grad definitions, as bits */
static uint64_t reach(const tir_module *m, const tir_func *f, uint64_t seen) {
    int fi = -1;
    for (int i = 0; i < m->nfuncs && i < 64; i++)
        if (m->funcs[i] == f) fi = i;
    if (fi < 0 || (seen >> fi & 1)) return seen;
    seen |= 1ull << fi;
    if (f->grad_of) seen = reach(m, f->grad_of, seen);
    for (int k = 0; k < f->nops; k++)
        if (f->ops[k]->callee) seen = reach(m, f->ops[k]->callee, seen);
    return seen;
}

/* f calls (perhaps indirectly) a value_and_grad definition that has no body yet */
static bool needs_grad_pass(const tir_module *m, const tir_func *f) {
    uint64_t r = reach(m, f, 0);
    for (int i = 0; i < m->nfuncs && i < 64; i++)
        if ((r >> i & 1) && is_grad_def(m->funcs[i]) && m->funcs[i] != f) return true;
    return false;
}

typedef struct checker {
    tir_context *ctx;
    const fz_opts *o;
    fz_shared *sh;
    const tir_bindings *bind;
    uint64_t iseed;
    fn_run *runs;
    int nruns;
} checker;

static fn_run *find_run(checker *C, const char *name) {
    for (int i = 0; i < C->nruns; i++)
        if (strcmp(C->runs[i].name, name) == 0) return &C->runs[i];
    return NULL;
}

static void free_results(tir_tensor **res, int n) {
    for (int i = 0; i < n; i++) tir_tensor_free(res[i]);
    free(res);
}

/* runs r's function of m; NULL after recording a failure */
static tir_tensor **interp(checker *C, tir_module *m, fn_run *r, const char *when) {
    tir_diag d;
    char dm[1200];
    tir_tensor **res = calloc((size_t)r->nres + 1, sizeof *res);
    if (!res) return fail(C->sh, C_INTERP, "out of memory"), NULL;
    phase(C->sh, "running @%s on the interpreter %s", r->name, when);
    if (tir_interpret(m, r->name, r->nargs, r->args, r->nres, res, &d) != TIR_OK) {
        fail(C->sh, C_INTERP, "@%s %s: %s", r->name, when, dmsg(&d, dm, sizeof dm));
        /* A function's first run failing (as generated, or once a stage gave it a body) is one
         * failure wherever it happens, so the reducer may move it; a later run failing is a
         * stage breaking a program that ran, and stays tied to that stage. */
        bool first = !r->ref;
        snprintf(C->sh->key, sizeof C->sh->key, "%s:%.*s", first ? "first" : "later",
                 (int)strcspn(d.msg, ":"), d.msg);
        if (first) set_stage(C->sh, "first run");
        free_results(res, r->nres);
        return NULL;
    }
    return res;
}

static bool compare_all(checker *C, fn_run *r, tir_tensor **res, tir_tensor **ref, int cls,
                        bool exact, const char *when) {
    for (int k = 0; k < r->nres; k++) {
        char msg[512];
        double tol = exact ? 0 : tolerance(tir_tensor_dtype(ref[k]), r->reduces);
        const tir_tensor *mag = ref == r->ref && r->mag ? r->mag[k] : NULL;
        if (!same_result_mag(res[k], ref[k], mag, tol, true, msg, sizeof msg))
            return fail(C->sh, cls, "@%s result %d %s: %s", r->name, k, when, msg);
    }
    return true;
}

/* print(parse(text)) == text, and the reparsed module computes exactly what m does (when) */
static bool round_trip(checker *C, tir_module *m, const char *text, const char *when, bool run) {
    tir_diag d;
    char dm[1200];
    tir_module *m2 = NULL;
    phase(C->sh, "parsing the module printed %s", when);
    if (tir_module_parse(C->ctx, text, "fuzz.tir", &m2, &d) != TIR_OK)
        return fail(C->sh, C_ROUNDTRIP, "the module printed %s does not parse: %s", when,
                    dmsg(&d, dm, sizeof dm));
    phase(C->sh, "printing the re-parsed module %s", when);
    char *t2 = tir_module_print(m2);
    bool ok = t2 != NULL;
    if (!t2) fail(C->sh, C_ROUNDTRIP, "printing the re-parsed module %s failed", when);
    if (ok && strcmp(text, t2) != 0) {
        char msg[600];
        first_diff(text, t2, msg, sizeof msg);
        ok = fail(C->sh, C_ROUNDTRIP, "print(parse(print(m))) != print(m) %s: %s", when, msg);
    }
    tir_free(t2);
    for (int i = 0; ok && run && i < C->nruns; i++) {
        fn_run *r = &C->runs[i];
        if (!r->ref || !tir_module_find(m, r->name)) continue;
        tir_tensor **res = interp(C, m2, r, "after print and parse");
        ok = res && compare_all(C, r, res, r->ref, C_ROUNDTRIP, true, "after print and parse");
        if (res) free_results(res, r->nres);
    }
    (void)m;
    tir_module_free(m2);
    return ok;
}

static bool check_gradients(checker *C, tir_module *m) {
    for (int i = 0; i < m->nfuncs; i++) {
        const tir_func *f = m->funcs[i];
        if (!is_grad_def(f)) continue;
        tir_gradcheck_opts go;
        memset(&go, 0, sizeof go);
        go.seed = C->iseed;
        go.tol = 1e-4;
        go.lo = -2;
        go.hi = 2;
        go.max_elems = 12;
        go.dims = *C->bind;
        tir_gradcheck_result gr;
        tir_diag d;
        char dm[1200];
        /* only what the loss needs: the rest of the module has nothing to do with it */
        redit keep = {.kind = E_KEEP, .keep = m->nfuncs <= 64 ? reach(m, f, 0) : ~0ull};
        phase(C->sh, "extracting @%s for gradcheck", f->name);
        tir_module *sub = rebuild(m, &keep, &d);
        if (!sub) return fail(C->sh, C_GRADCHECK, "@%s: cannot extract it with its callees", f->name);
        phase(C->sh, "checking the gradients of @%s against finite differences", f->name);
        tir_status s = tir_gradcheck(sub, f->name, &go, &gr, &d);
        tir_module_free(sub);
        if (s != TIR_OK) {
            fail(C->sh, C_GRADCHECK, "@%s: gradcheck could not run: %s", f->name,
                 dmsg(&d, dm, sizeof dm));
            snprintf(C->sh->key, sizeof C->sh->key, "run");
            return false;
        }
        /* finite differences of a huge loss lose every digit to cancellation: not a finding */
        if ((gr.nfailed || gr.loss_failed) && isfinite(gr.loss) && fabs(gr.loss) <= 1e4) {
            fail(C->sh, C_GRADCHECK,
                 "@%s: %d of %d parameters disagree with finite differences%s (max abs err %.3g, "
                 "rel %.3g)",
                 f->name, gr.nfailed, gr.nparams, gr.loss_failed ? ", and the loss value differs" : "",
                 gr.max_abs_err, gr.max_rel_err);
            snprintf(C->sh->key, sizeof C->sh->key, "fd");
            return false;
        }
    }
    return true;
}

/* ---------------------------------------------------------------- codegen, ptxas, GPU */

static bool ptx_seen(fz_shared *sh, uint64_t h, bool insert) {
    if (!h) h = 1;
    for (size_t i = h & (PTX_SEEN - 1), n = 0; n < PTX_SEEN; i = (i + 1) & (PTX_SEEN - 1), n++) {
        if (sh->ptx_seen[i] == h) return true;
        if (!sh->ptx_seen[i]) {
            if (insert) sh->ptx_seen[i] = h;
            return false;
        }
    }
    return false;
}

/* a kernel's PTX hashed with its own name left out, so that the same code under another
 * kernel name (every program numbers its kernels) is checked by ptxas once */
static uint64_t ptx_hash(const char *ptx, const char *name) {
    uint64_t h = 1469598103934665603ull;
    size_t nl = name ? strlen(name) : 0;
    for (const char *p = ptx; *p;) {
        if (nl && strncmp(p, name, nl) == 0) {
            h = (h ^ 0xff) * 1099511628211ull;
            p += nl;
            continue;
        }
        h = (h ^ (unsigned char)*p++) * 1099511628211ull;
    }
    return mix64(h);
}

typedef struct kern {
    char *ptx, *name, *op, *func;
    uint64_t hash;
} kern;

/* ptxas once over every kernel not seen before; false after recording a rejection */
static bool ptxas_batch(checker *C, kern *ks, int nk) {
    char dir[] = "/tmp/tir_fuzz_ptxXXXXXX";
    if (!nk) return true;
    if (!mkdtemp(dir)) return fail(C->sh, C_PTXAS, "cannot make a temporary directory for ptxas");
    size_t cap = 4096 + (size_t)nk * 64;
    char *cmd = malloc(cap), log[128], path[128];
    bool ok = cmd != NULL;
    size_t len = 0;
    if (ok) len = (size_t)snprintf(cmd, cap, "'%s' -arch=%s -o /dev/null", C->o->ptxas, C->o->arch);
    /* ptxas assembles its inputs into one image: every kernel gets a name of its own */
    for (int i = 0; ok && i < nk; i++) {
        snprintf(path, sizeof path, "%s/k%d.ptx", dir, i);
        FILE *f = fopen(path, "w");
        ok = f != NULL;
        size_t nl = strlen(ks[i].name);
        for (const char *q = ks[i].ptx; ok && *q;) {
            const char *hit = nl ? strstr(q, ks[i].name) : NULL;
            size_t upto = hit ? (size_t)(hit - q) : strlen(q);
            ok = fwrite(q, 1, upto, f) == upto && (!hit || fprintf(f, "fz%d_%s", i, ks[i].name) > 0);
            q += upto + (hit ? nl : 0);
        }
        if (f) fclose(f);
        len += (size_t)snprintf(cmd + len, cap - len, " '%s'", path);
    }
    snprintf(log, sizeof log, "%s/log", dir);
    if (!ok) {
        fail(C->sh, C_PTXAS, "cannot write PTX for ptxas in %s", dir);
    } else {
        snprintf(cmd + len, cap - len, " >'%s' 2>&1", log);
        set_stage(C->sh, "ptxas");
        phase(C->sh, "ptxas on %d kernels", nk);
        int rc = system(cmd);
        C->sh->ptx_checked += nk;
        if (rc == 0) {
            for (int i = 0; i < nk; i++) ptx_seen(C->sh, ks[i].hash, true);
        } else {
            char buf[1500] = "";
            FILE *lf = fopen(log, "r");
            size_t n = lf ? fread(buf, 1, sizeof buf - 1, lf) : 0;
            buf[n] = 0;
            if (lf) fclose(lf);
            /* "ptxas /tmp/.../k3.ptx, line 29; error : ..." names the kernel */
            int bad = -1;
            const char *k = strstr(buf, "/k");
            if (k) bad = atoi(k + 2);
            if (bad >= 0 && bad < nk)
                ok = fail(C->sh, C_PTXAS, "@%s: kernel %s (%s): ptxas: %s", ks[bad].func,
                          ks[bad].name, ks[bad].op, buf);
            else
                ok = fail(C->sh, C_PTXAS, "ptxas exit %d: %s", rc, buf);
        }
    }
    for (int i = 0; i < nk; i++) {
        snprintf(path, sizeof path, "%s/k%d.ptx", dir, i);
        remove(path);
    }
    remove(log);
    rmdir(dir);
    free(cmd);
    return ok;
}

static bool check_codegen(checker *C, const char *text) {
    kern *ks = NULL;
    int nk = 0, capk = 0;
    bool ok = true;
    for (int i = 0; ok && i < C->nruns; i++) {
        fn_run *r = &C->runs[i];
        /* only functions nothing calls: the pipeline inlines the others into them */
        if (!r->ref || !r->root) continue;
        tir_diag d;
        char dm[1200];
        tir_module *mc = NULL;
        set_stage(C->sh, "codegen");
        if (tir_module_parse(C->ctx, text, "fuzz.tir", &mc, &d) != TIR_OK) {
            ok = fail(C->sh, C_ROUNDTRIP, "the printed module does not parse: %s",
                      dmsg(&d, dm, sizeof dm));
            break;
        }
        tir_options co;
        tir_options_init(&co);
        co.arch = C->o->arch;
        co.poison = true; /* unwritten outputs show as NaN on the GPU */
        tir_program *p = NULL;
        phase(C->sh, "compiling @%s", r->name);
        tir_status s = tir_compile(mc, r->name, &co, &p, &d);
        if (getenv("TIR_FUZZ_DEBUG"))
            fprintf(stderr, "codegen @%s: %s, %d kernels\n", r->name, tir_status_name(s),
                    p ? tir_program_num_kernels(p) : -1);
        if (s == TIR_ERR_UNSUPPORTED) {
            C->sh->unsupported++;
            snprintf(C->sh->unsupported_msg, sizeof C->sh->unsupported_msg, "%.200s", d.msg);
        } else if (s != TIR_OK) {
            ok = fail(C->sh, C_CODEGEN, "@%s: tir_compile: %s: %s", r->name, tir_status_name(s),
                      dmsg(&d, dm, sizeof dm));
        }
        for (int k = 0; ok && p && k < tir_program_num_kernels(p); k++) {
            const char *ptx = tir_program_kernel_ptx(p, k), *name = tir_program_kernel_name(p, k);
            if (!ptx) continue;
            C->sh->kernels++;
            uint64_t h = ptx_hash(ptx, name);
            bool dup = ptx_seen(C->sh, h, false);
            for (int j = 0; j < nk && !dup; j++) dup = ks[j].hash == h;
            if (!C->o->ptxas[0] || dup) continue;
            if (nk == capk) {
                kern *nks = realloc(ks, (size_t)(capk = capk ? 2 * capk : 16) * sizeof *ks);
                if (!nks) {
                    ok = fail(C->sh, C_PTXAS, "out of memory");
                    break;
                }
                ks = nks;
            }
            kern *kk = &ks[nk++];
            kk->ptx = strdup(ptx);
            kk->name = strdup(name ? name : "?");
            kk->op = strdup(tir_program_kernel_op(p, k) ? tir_program_kernel_op(p, k) : "?");
            kk->func = strdup(r->name);
            kk->hash = h;
            if (!kk->ptx || !kk->name || !kk->op || !kk->func) ok = fail(C->sh, C_PTXAS, "out of memory");
        }
        if (ok && p && C->o->gpu) {
            set_stage(C->sh, "gpu");
            phase(C->sh, "running @%s on the GPU", r->name);
            tir_tensor **res = calloc((size_t)r->nres + 1, sizeof *res);
            if (!res) ok = fail(C->sh, C_GPU, "out of memory");
            else if ((s = tir_program_run(p, r->nargs, r->args, r->nres, res, &d)) != TIR_OK)
                ok = fail(C->sh, C_GPU, "@%s: %s: %s", r->name, tir_status_name(s),
                          dmsg(&d, dm, sizeof dm));
            /* the magnitude program (compare_mag.h: every reduction the results are linear in
             * summed over magnitudes), run only when a result misses at the plain scale */
            tir_tensor **gmag = NULL;
            bool gmag_tried = false;
            for (int k = 0; ok && k < r->nres; k++) {
                char msg[512], msg2[512];
                bool reduces = r->reduces || tir_program_has_reduction(p);
                double tol = tolerance(tir_tensor_dtype(r->ref[k]), reduces);
                bool same = same_result_mag(res[k], r->ref[k], r->mag ? r->mag[k] : NULL, tol, false, msg, sizeof msg);
                if (!same && !gmag_tried) {
                    gmag_tried = true;
                    gmag = calloc((size_t)r->nres + 1, sizeof *gmag);
                    if (gmag && tir_interpret_magnitudes(C->ctx, text, r->name, r->nargs, r->args, r->nres, gmag,
                                                         &d) != TIR_OK) {
                        free_results(gmag, r->nres);
                        gmag = NULL;
                    }
                }
                if (!same && gmag) same = same_result_mag(res[k], r->ref[k], gmag[k], tol, false, msg2, sizeof msg2);
                if (!same) ok = fail(C->sh, C_GPU, "@%s result %d on the GPU: %s", r->name, k, msg);
            }
            if (gmag) free_results(gmag, r->nres);
            if (res) free_results(res, r->nres);
        }
        tir_program_free(p);
        tir_module_free(mc);
    }
    if (ok) ok = ptxas_batch(C, ks, nk);
    for (int i = 0; i < nk; i++) {
        free(ks[i].ptx);
        free(ks[i].name);
        free(ks[i].op);
        free(ks[i].func);
    }
    free(ks);
    return ok;
}

/* r's function of m on its arguments with every float replaced by its magnitude; NULL when it
 * does not run (then the strict comparison applies) */
static tir_tensor **run_on_magnitudes(tir_module *m, const fn_run *r) {
    tir_tensor **args = calloc((size_t)r->nargs + 1, sizeof *args);
    tir_tensor **res = calloc((size_t)r->nres + 1, sizeof *res);
    bool ok = args && res;
    for (int p = 0; ok && p < r->nargs; p++) {
        const tir_tensor *x = r->args[p];
        int64_t dims[TIR_MAX_RANK];
        for (int i = 0; i < tir_tensor_rank(x); i++) dims[i] = tir_tensor_dim(x, i);
        args[p] = tir_tensor_new(tir_tensor_dtype(x), tir_tensor_rank(x), dims);
        if (!(ok = args[p] != NULL)) break;
        memcpy(tir_tensor_data(args[p]), tir_tensor_data((tir_tensor *)x), tir_tensor_nbytes(x));
        if (tir_dtype_is_float(tir_tensor_dtype(x)))
            for (int64_t i = 0; i < tir_tensor_numel(x); i++)
                tir_tensor_set(args[p], i, fabs(tir_tensor_get(x, i)));
    }
    tir_diag d;
    if (ok) ok = tir_interpret(m, r->name, r->nargs, args, r->nres, res, &d) == TIR_OK;
    for (int p = 0; args && p < r->nargs; p++) tir_tensor_free(args[p]);
    free(args);
    if (!ok && res) {
        for (int k = 0; k < r->nres; k++) tir_tensor_free(res[k]);
        free(res);
        res = NULL;
    }
    return res;
}

/* ---------------------------------------------------------------- the whole check */

static void check_module(tir_context *ctx, tir_module *m, const char *text, const tir_bindings *bind,
                         uint64_t iseed, const fz_opts *o, fz_shared *sh) {
    checker C = {.ctx = ctx, .o = o, .sh = sh, .bind = bind, .iseed = iseed};
    tir_diag d;
    char dm[1200];
    set_stage(sh, "parse");
    C.runs = calloc((size_t)m->nfuncs + 1, sizeof *C.runs);
    if (!C.runs) {
        fail(sh, C_INTERP, "out of memory");
        return;
    }
    /* the original's results: the reference for every later stage */
    for (int i = 0; i < m->nfuncs; i++) {
        const tir_func *f = m->funcs[i];
        fn_run *r = &C.runs[C.nruns++];
        char err[300];
        r->name = strdup(f->name);
        r->of = is_grad_def(f) ? strdup(f->grad_of->name) : NULL;
        r->nres = tir_func_num_results(m, f->name);
        r->reduces = func_reduces(f);
        r->root = true;
        for (int k = 0; k < m->nfuncs; k++)
            for (int q = 0; q < m->funcs[k]->nops; q++) r->root &= m->funcs[k]->ops[q]->callee != f;
        if (!r->name || (is_grad_def(f) && !r->of)) {
            fail(sh, C_INTERP, "out of memory");
            goto out;
        }
        if (!make_inputs(f, bind, iseed, r, err, sizeof err)) {
            fail(sh, C_INTERP, "inputs: %s", err);
            goto out;
        }
        /* a function that calls a value_and_grad definition runs once the grad pass built it */
        if (!is_grad_def(f) && !needs_grad_pass(m, f) && !(r->ref = interp(&C, m, r, "(the original)")))
            goto out;
        if (r->ref && monotone_func(f, 0)) r->mag = run_on_magnitudes(m, r);
    }
    if (!round_trip(&C, m, text, "as generated", true)) goto out;
    if (o->gradcheck) {
        set_stage(sh, "gradcheck");
        if (!check_gradients(&C, m)) goto out;
    }
    for (int i = 0; i < tir_pipeline_count(); i++) {
        const tir_stage *st = tir_pipeline_stage(i);
        if (!st->run) continue;
        char when[96];
        snprintf(when, sizeof when, "after %s", st->name);
        set_stage(sh, st->name);
        phase(sh, "running stage %s", st->name);
        tir_status s = st->run(m, &d);
        if (s != TIR_OK) {
            fail(sh, C_STAGE, "stage %s: %s: %s", st->name, tir_status_name(s), dmsg(&d, dm, sizeof dm));
            goto out;
        }
        phase(sh, "verifying after %s", st->name);
        if (tir_verify(m, &d) != TIR_OK) {
            fail(sh, C_VERIFY, "%s: %s", when, dmsg(&d, dm, sizeof dm));
            goto out;
        }
        phase(sh, "printing after %s", st->name);
        char *t = tir_module_print(m);
        if (!t) {
            fail(sh, C_ROUNDTRIP, "printing %s failed", when);
            goto out;
        }
        bool ok = round_trip(&C, m, t, when, false);
        tir_free(t);
        if (!ok) goto out;
        for (int k = 0; k < C.nruns; k++) {
            fn_run *r = &C.runs[k];
            const tir_func *f = tir_module_find(m, r->name);
            if (!f || is_grad_def(f) || (!r->ref && needs_grad_pass(m, f))) continue;
            if (tir_func_num_params(m, r->name) != r->nargs ||
                tir_func_num_results(m, r->name) != r->nres) {
                fail(sh, C_VERIFY, "@%s changed its signature %s", r->name, when);
                goto out;
            }
            tir_tensor **res = interp(&C, m, r, when);
            if (!res) goto out;
            if (r->ref) {
                ok = compare_all(&C, r, res, r->ref, C_MISMATCH, false, when);
                free_results(res, r->nres);
                if (!ok) goto out;
                continue;
            }
            r->ref = res; /* the function runs from here on (a value_and_grad definition got its body) */
            if (monotone_func(f, 0)) r->mag = run_on_magnitudes(m, r);
            fn_run *of = r->of ? find_run(&C, r->of) : NULL;
            if (of && of->ref && of->nres >= 1 && r->nres >= 1) {
                char msg[512];
                double tol = tolerance(tir_tensor_dtype(of->ref[0]), true);
                if (!same_result(res[0], of->ref[0], tol, false, msg, sizeof msg)) {
                    fail(sh, C_MISMATCH, "@%s's value %s differs from @%s's: %s", r->name, when,
                         r->of, msg);
                    goto out;
                }
            }
        }
    }
    if (o->codegen) check_codegen(&C, text);
out:
    for (int i = 0; i < C.nruns; i++) fn_run_free(&C.runs[i]);
    free(C.runs);
}

/* ================================================================ reduction: edits of a module */

static int func_index(const tir_module *m, const tir_func *f) {
    for (int i = 0; i < m->nfuncs; i++)
        if (m->funcs[i] == f) return i;
    return -1;
}

/* called by another function, or differentiated by a value_and_grad definition */
static bool referenced(const tir_module *m, const tir_func *f) {
    for (int i = 0; i < m->nfuncs; i++) {
        const tir_func *g = m->funcs[i];
        if (g->grad_of == f) return true;
        for (int k = 0; k < g->nops; k++)
            if (g->ops[k]->callee == f) return true;
    }
    return false;
}

/* live[k]: op k of f contributes to a result */
static void live_ops(const tir_func *f, bool *live) {
    bool *used = calloc((size_t)f->nvalues + 1, 1);
    if (!used) {
        for (int k = 0; k < f->nops; k++) live[k] = true;
        return;
    }
    for (int i = 0; i < f->nres; i++) used[f->results[i]->id] = true;
    for (int k = f->nops - 1; k >= 0; k--) {
        const tir_op *op = f->ops[k];
        live[k] = false;
        for (int j = 0; j < op->nout; j++) live[k] |= used[op->out[j]->id];
        if (live[k])
            for (int i = 0; i < op->nin; i++) used[op->in[i]->id] = true;
    }
    free(used);
}

static bool param_used(const tir_func *f, const tir_value *p) {
    for (int i = 0; i < f->nres; i++)
        if (f->results[i] == p) return true;
    for (int k = 0; k < f->nops; k++)
        for (int i = 0; i < f->ops[k]->nin; i++)
            if (f->ops[k]->in[i] == p) return true;
    return false;
}

static int add_sym_name(const char **syms, int n, int max, const tir_dim *d) {
    const char *s[8];
    int k = tir_dim_symbols(d, s, 8);
    for (int i = 0; i < k && i < 8; i++) {
        bool have = false;
        for (int j = 0; j < n; j++) have |= strcmp(syms[j], s[i]) == 0;
        if (!have && n < max) syms[n++] = s[i];
    }
    return n;
}

/* every edit of m, in the order they are tried: big cuts first */
static int list_edits(const tir_module *m, const tir_bindings *b, redit *out, int max) {
    int n = 0;
#define PUSH(...) do { if (n < max) out[n++] = (redit){__VA_ARGS__}; } while (0)
    for (int fi = m->nfuncs - 1; fi >= 0; fi--)
        if (m->nfuncs > 1 && !referenced(m, m->funcs[fi])) PUSH(.kind = E_REMOVE_FUNC, .fi = fi);
    for (int fi = 0; fi < m->nfuncs; fi++) {
        const tir_func *f = m->funcs[fi];
        bool *live = calloc((size_t)f->nops + 1, 1);
        if (!live) continue;
        live_ops(f, live);
        bool dead = false;
        for (int k = 0; k < f->nops; k++) dead |= !live[k];
        free(live);
        if (dead) PUSH(.kind = E_DCE, .fi = fi);
    }
    for (int fi = 0; fi < m->nfuncs; fi++) {
        const tir_func *f = m->funcs[fi];
        for (int k = f->nops - 1; k >= 0; k--) {
            const tir_op *op = f->ops[k];
            if (op->nout == 0) continue;
            bool lit = op->code == TIR_OP_FULL && op->out[0]->type.rank == 0;
            if (!lit) PUSH(.kind = E_TO_PARAM, .fi = fi, .op = k);
            for (int j = 0; op->nout == 1 && j < op->nin; j++)
                if (tir_type_equal(&op->in[j]->type, &op->out[0]->type))
                    PUSH(.kind = E_TO_OPERAND, .fi = fi, .op = k, .j = j);
        }
    }
    for (int fi = 0; fi < m->nfuncs; fi++) {
        const tir_func *f = m->funcs[fi];
        if (f->nres > 1 && !referenced(m, f))
            for (int j = 0; j < f->nres; j++) PUSH(.kind = E_DROP_RESULT, .fi = fi, .j = j);
        int unused = 0;
        for (int p = 0; !is_grad_def(f) && p < f->nparams; p++) unused += !param_used(f, f->params[p]);
        if (unused) PUSH(.kind = E_DROP_PARAMS, .fi = fi, .j = -1);
        for (int p = 0; unused > 1 && p < f->nparams; p++)
            if (!param_used(f, f->params[p])) PUSH(.kind = E_DROP_PARAMS, .fi = fi, .j = p);
        for (int w = 0; is_grad_def(f) && f->nwrt > 1 && w < f->nwrt; w++)
            PUSH(.kind = E_DROP_WRT, .fi = fi, .j = w);
    }
    const char *syms[32];
    int ns = 0;
    int64_t consts[64];
    int nc = 0;
    for (int fi = 0; fi < m->nfuncs; fi++) {
        const tir_func *f = m->funcs[fi];
        for (int p = 0; p < f->nparams; p++)
            for (int j = 0; j < f->params[p]->type.rank; j++) {
                const tir_dim *d = f->params[p]->type.dims[j];
                int64_t v;
                ns = add_sym_name(syms, ns, 32, d);
                if (tir_dim_is_const(d, &v) && v > 1) {
                    bool have = false;
                    for (int k = 0; k < nc; k++) have |= consts[k] == v;
                    if (!have && nc < 64) consts[nc++] = v;
                }
            }
    }
    for (int i = 0; i < ns; i++) {
        int64_t v;
        if (tir_bindings_get(b, syms[i], &v)) PUSH(.kind = E_SUBST_SYM, .sym = syms[i], .to = v);
    }
    for (int i = 0; i < nc; i++) {
        PUSH(.kind = E_SHRINK, .from = consts[i], .to = 1);
        if (consts[i] / 2 > 1) PUSH(.kind = E_SHRINK, .from = consts[i], .to = consts[i] / 2);
    }
#undef PUSH
    return n;
}

/* d with the edit's symbol fixed to its size, or the constant shrunk */
static const tir_dim *map_dim(tir_context *c, const tir_dim *d, const redit *e) {
    int64_t v;
    if (e->kind == E_SHRINK)
        return tir_dim_is_const(d, &v) && v == e->from ? tir_dim_const(c, e->to) : d;
    if (e->kind != E_SUBST_SYM) return d;
    char in[512], out[1024];
    tir_dim_print(d, in, sizeof in);
    size_t o = 0, sl = strlen(e->sym);
    for (const char *p = in; *p && o < sizeof out - 32;) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_') {
            const char *q = p;
            while (isalnum((unsigned char)*q) || *q == '_') q++;
            if ((size_t)(q - p) == sl && memcmp(p, e->sym, sl) == 0)
                o += (size_t)snprintf(out + o, sizeof out - o, "%lld", (long long)e->to);
            else {
                memcpy(out + o, p, (size_t)(q - p));
                o += (size_t)(q - p);
            }
            p = q;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = 0;
    const char *err = NULL;
    const tir_dim *r = tir_dim_parse(c, out, o, &err);
    return r ? r : d;
}

static tir_type map_type(tir_context *c, const tir_type *t, const redit *e) {
    tir_type r = *t;
    for (int i = 0; i < t->rank; i++) r.dims[i] = map_dim(c, t->dims[i], e);
    return r;
}

static bool why(tir_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool why(tir_diag *d, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
    return false;
}

/* m rebuilt with one edit, through the same inference as everything else; NULL when the edit
 * gives no valid module */
static tir_module *rebuild(const tir_module *m, const redit *e, tir_diag *dout) {
    tir_context *c = m->ctx;
    tir_diag d;
    memset(&d, 0, sizeof d);
    int nf = m->nfuncs;
    tir_module *nm = tir_module_new(c);
    tir_func **newf = calloc((size_t)nf + 1, sizeof *newf);
    bool **dropped = calloc((size_t)nf + 1, sizeof *dropped);
    tir_value **vmap = NULL;
    bool *live = NULL, ok = nm && newf && dropped;
    for (int fi = 0; ok && fi < nf; fi++) {
        const tir_func *f = m->funcs[fi];
        dropped[fi] = calloc((size_t)f->nparams + 1, 1);
        ok = dropped[fi] != NULL;
        if (ok && e->kind == E_DROP_PARAMS && e->fi == fi)
            for (int p = 0; p < f->nparams; p++)
                dropped[fi][p] = (e->j < 0 || e->j == p) && !param_used(f, f->params[p]);
    }
    for (int fi = 0; ok && fi < nf; fi++) { /* value_and_grad definitions mirror their function */
        const tir_func *f = m->funcs[fi];
        int of = is_grad_def(f) ? func_index(m, f->grad_of) : -1;
        if (of >= 0) memcpy(dropped[fi], dropped[of], (size_t)f->nparams);
    }
    for (int fi = 0; ok && fi < nf; fi++) {
        const tir_func *f = m->funcs[fi];
        if (e->kind == E_REMOVE_FUNC && e->fi == fi) continue;
        if (e->kind == E_KEEP && fi < 64 && !(e->keep >> fi & 1)) continue;
        if (is_grad_def(f)) {
            int of = func_index(m, f->grad_of);
            if (of < 0 || !newf[of]) {
                ok = why(&d, "@%s differentiates a removed function", f->name);
                break;
            }
            const char *wrt[64];
            int nw = 0;
            for (int i = 0; i < f->nwrt && nw < 64; i++)
                if (!dropped[of][f->wrt[i]] && !(e->kind == E_DROP_WRT && e->fi == fi && e->j == i))
                    wrt[nw++] = f->grad_of->params[f->wrt[i]]->name;
            ok = (nw > 0 || why(&d, "@%s: no wrt left", f->name)) &&
                 (newf[fi] = tir_func_new_grad_def(nm, f->name, newf[of]->name, nw, wrt, f->loc, &d));
            continue;
        }
        tir_func *g = newf[fi] = tir_func_new(nm, f->name, f->loc, &d);
        free(vmap);
        free(live);
        vmap = calloc((size_t)f->nvalues + 1, sizeof *vmap);
        live = calloc((size_t)f->nops + 1, 1);
        if (!g || !vmap || !live) {
            ok = false;
            break;
        }
        live_ops(f, live);
        for (int p = 0; ok && p < f->nparams; p++) {
            if (dropped[fi][p]) continue;
            tir_type t = map_type(c, &f->params[p]->type, e);
            tir_value *np = tir_func_add_param(g, f->params[p]->name, &t, f->loc);
            ok = (vmap[f->params[p]->id] = np) != NULL;
        }
        if (ok && e->kind == E_TO_PARAM && e->fi == fi) {
            const tir_op *op = f->ops[e->op];
            for (int j = 0; ok && j < op->nout; j++) {
                char name[32];
                for (int k = 0;; k++) {
                    snprintf(name, sizeof name, "r%d", k);
                    bool taken = false;
                    for (int p = 0; p < f->nparams; p++)
                        taken |= f->params[p]->name && strcmp(f->params[p]->name, name) == 0;
                    for (int p = 0; p < g->nparams; p++)
                        taken |= g->params[p]->name && strcmp(g->params[p]->name, name) == 0;
                    if (!taken) break;
                }
                tir_value *np = tir_func_add_param(g, name, &op->out[j]->type, f->loc);
                ok = (vmap[op->out[j]->id] = np) != NULL;
            }
        }
        for (int k = 0; ok && k < f->nops; k++) {
            const tir_op *op = f->ops[k];
            bool here = e->fi == fi && e->op == k;
            if (e->kind == E_TO_PARAM && here) continue;
            if (e->kind == E_TO_OPERAND && here) {
                ok = (vmap[op->out[0]->id] = vmap[op->in[e->j]->id]) != NULL;
                continue;
            }
            if (e->kind == E_DCE && e->fi == fi && !live[k]) continue;
            tir_value *in[256];
            int nin = 0, ci = op->callee ? func_index(m, op->callee) : -1;
            if (op->nin > 256 || (op->callee && (ci < 0 || !newf[ci]))) {
                ok = why(&d, "@%s: a call of a removed function", f->name);
                break;
            }
            for (int i = 0; i < op->nin; i++) {
                if (ci >= 0 && dropped[ci][i]) continue;
                if (!(in[nin++] = vmap[op->in[i]->id]))
                    ok = why(&d, "@%s: an operand was removed", f->name);
            }
            tir_attr_value at[32];
            const tir_dim *dims[32][TIR_MAX_RANK];
            if (!ok || op->nattrs > 32) {
                ok = false;
                break;
            }
            for (int i = 0; i < op->nattrs; i++) {
                at[i] = op->attrs[i];
                if (at[i].kind == TIR_ATTR_SHAPE && at[i].u.shape.n <= TIR_MAX_RANK) {
                    for (int j = 0; j < at[i].u.shape.n; j++)
                        dims[i][j] = map_dim(c, at[i].u.shape.v[j], e);
                    at[i].u.shape.v = dims[i];
                }
            }
            tir_op *no = tir_func_append_op(g, op->code, nin, in, op->nattrs, at,
                                            ci >= 0 ? newf[ci] : NULL, op->loc, &d);
            if (!no || no->nout != op->nout) {
                ok = false;
                break;
            }
            for (int j = 0; j < op->nout; j++) {
                vmap[op->out[j]->id] = no->out[j];
                if (op->out[j]->name) no->out[j]->name = tir_arena_strdup(nm->arena, op->out[j]->name);
            }
        }
        tir_value *res[64];
        tir_type rt[64];
        int nres = 0;
        for (int i = 0; ok && i < f->nres && nres < 64; i++) {
            if (e->kind == E_DROP_RESULT && e->fi == fi && e->j == i) continue;
            if (!(res[nres] = vmap[f->results[i]->id]))
                ok = why(&d, "@%s: a result was removed", f->name);
            else {
                rt[nres] = res[nres]->type;
                nres++;
            }
        }
        if (ok) {
            tir_func_set_results(g, nres, res);
            tir_func_set_ret(g, nres, rt);
        }
    }
    free(vmap);
    free(live);
    for (int fi = 0; dropped && fi < nf; fi++) free(dropped[fi]);
    free(dropped);
    free(newf);
    if (ok && tir_verify(nm, &d) != TIR_OK) ok = false;
    if (dout) *dout = d;
    if (!ok && nm) {
        tir_module_free(nm);
        nm = NULL;
    }
    return nm;
}

/* the size of a program, compared lexicographically: ops, results, parameters, symbols,
 * constant dims */
static void measure(const tir_module *m, long *out) {
    const char *syms[64];
    int ns = 0;
    out[0] = out[1] = out[2] = out[4] = 0;
    for (int fi = 0; fi < m->nfuncs; fi++) {
        const tir_func *f = m->funcs[fi];
        out[0] += f->nops;
        out[1] += f->nres;
        out[2] += f->nparams;
        for (int p = 0; p < f->nparams; p++)
            for (int j = 0; j < f->params[p]->type.rank; j++) {
                int64_t v;
                ns = add_sym_name(syms, ns, 64, f->params[p]->type.dims[j]);
                if (tir_dim_is_const(f->params[p]->type.dims[j], &v)) out[4] += v < 64 ? v : 64;
            }
    }
    out[3] = ns;
}

static bool smaller(const long *a, const long *b) {
    for (int i = 0; i < 5; i++)
        if (a[i] != b[i]) return a[i] < b[i];
    return false;
}

/* ================================================================ jobs: what a child does */

typedef enum { J_GEN, J_CAND, J_TEXT } job_kind;

typedef struct job {
    job_kind kind;
    uint64_t index;       /* J_GEN: program index */
    const char *text;     /* J_CAND, J_TEXT: the module */
    const char *dims;     /* J_CAND, J_TEXT: "N=5 M=3" */
    uint64_t iseed;       /* inputs */
    int edit;             /* J_CAND */
    bool quiet;           /* the child's stderr goes to /dev/null (reduction candidates) */
} job;

static void put_text(fz_shared *sh, const char *t) {
    size_t n = strlen(t);
    if (n >= SH_TEXT) n = SH_TEXT - 1;
    memcpy(sh->text, t, n);
    sh->text[n] = 0;
    sh->text_len = n;
}

static void job_body(const job *j, const fz_opts *o, fz_shared *sh) {
    tir_context *ctx = tir_context_create();
    tir_module *m = NULL;
    tir_bindings b;
    memset(&b, 0, sizeof b);
    tir_diag d;
    char dm[1200], *text = NULL, *dims = NULL;
    redit *edits = NULL;
    if (!ctx) {
        fail(sh, C_GENERATE, "out of memory");
        return;
    }
    if (j->kind == J_GEN) {
        set_stage(sh, "generate");
        phase(sh, "generating program %llu", (unsigned long long)j->index);
        if (generate(ctx, o->seed, j->index, o->max_ops, &m, &b, sh->op_counts, &d) != TIR_OK) {
            fail(sh, C_GENERATE, "%s", d.msg);
            goto out;
        }
        dims_to_str(&b, sh->dims, sizeof sh->dims);
    } else {
        dims = strdup(j->dims ? j->dims : "");
        if (!dims || !dims_from_str(dims, &b)) {
            fail(sh, C_INVALID, "bad dims '%s'", j->dims ? j->dims : "");
            goto out;
        }
        set_stage(sh, "parse");
        phase(sh, "parsing the program");
        if (tir_module_parse(ctx, j->text, "fuzz.tir", &m, &d) != TIR_OK) {
            fail(sh, C_INVALID, "the program does not parse: %s", dmsg(&d, dm, sizeof dm));
            goto out;
        }
    }
    if (j->kind == J_CAND) {
        enum { MAX_EDITS = 4096 };
        edits = malloc(MAX_EDITS * sizeof *edits);
        if (!edits) goto out;
        sh->nedits = list_edits(m, &b, edits, MAX_EDITS);
        measure(m, sh->cur_measure);
        if (j->edit >= sh->nedits) {
            sh->cls = C_NO_EDIT;
            goto out;
        }
        set_stage(sh, "reduce");
        phase(sh, "applying edit %d", j->edit);
        tir_module *m2 = rebuild(m, &edits[j->edit], &d);
        if (!m2) {
            sh->cls = C_INVALID;
            snprintf(sh->msg, sizeof sh->msg, "edit %d (kind %d): %s", j->edit,
                     edits[j->edit].kind, d.msg);
            goto out;
        }
        tir_module_free(m);
        m = m2;
        measure(m, sh->measure);
    }
    if (!(text = tir_module_print(m))) {
        fail(sh, C_ROUNDTRIP, "printing the module failed");
        goto out;
    }
    put_text(sh, text);
    if (o->print_all && j->kind == J_GEN) {
        printf("# ---- program %llu (dims: %s)\n%s", (unsigned long long)j->index, sh->dims, text);
        fflush(stdout);
    }
    check_module(ctx, m, text, &b, j->iseed, o, sh);
out:
    tir_free(text);
    free(dims);
    free(edits);
    if (m) tir_module_free(m);
    tir_context_destroy(ctx);
}

static const char *signal_name(int s) {
    switch (s) {
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGALRM: return "SIGALRM";
    case SIGKILL: return "SIGKILL";
    default: return "a signal";
    }
}

/* Runs j in a forked child (or here, without --fork); the outcome is in sh. */
static void run_job(const job *j, const fz_opts *o, fz_shared *sh) {
    sh->cls = C_PASS;
    sh->stage[0] = sh->phase[0] = sh->msg[0] = sh->key[0] = 0;
    sh->text_len = 0;
    sh->text[0] = 0;
    if (j->kind == J_GEN) sh->dims[0] = 0;
    if (!o->fork) {
        job_body(j, o, sh);
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        job_body(j, o, sh);
        return;
    }
    if (pid == 0) {
        if (j->quiet) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd >= 0) {
                dup2(fd, 2);
                close(fd);
            }
        }
        signal(SIGALRM, SIG_DFL);
        alarm((unsigned)o->timeout);
        job_body(j, o, sh);
        fflush(stdout);
        phase(sh, "exiting after the check (LeakSanitizer runs now: a leak?)");
        exit(0); /* not _exit: LeakSanitizer checks the child at exit */
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
    char where[400];
    snprintf(where, sizeof where, "while %s", sh->phase[0] ? sh->phase : "starting");
    sh->cls = 0; /* a child that died has the last word, whatever it recorded */
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        fail(sh, C_TIMEOUT, "no answer after %d s %s", o->timeout, where);
    else if (WIFSIGNALED(status))
        fail(sh, C_CRASH, "%s %s", signal_name(WTERMSIG(status)), where);
    else
        fail(sh, C_ABNORMAL, "exit status %d %s (a sanitizer report?)", WEXITSTATUS(status), where);
}

/* ================================================================ the driver */

static bool same_failure(const fz_shared *sh, int cls, const char *stage, const char *key) {
    return sh->cls == cls && strcmp(sh->stage, stage) == 0 && strcmp(sh->key, key) == 0;
}

/* Delta debugging over edits: keep an edit when the program still fails the same way and got
 * smaller; after a kept edit the list is recomputed and the same position tried again. */
static char *reduce(const fz_opts *o, fz_shared *sh, const char *text, const char *dims,
                    uint64_t iseed, int cls, const char *stage, const char *key, int *tried, int *kept) {
    char *cur = strdup(text);
    int budget = o->reduce_budget;
    time_t t0 = time(NULL);
    *tried = *kept = 0;
    for (bool progress = true; cur && progress && budget > 0;) {
        progress = false;
        for (int e = 0; budget > 0 && time(NULL) - t0 < o->reduce_seconds; budget--, (*tried)++) {
            job j = {.kind = J_CAND, .text = cur, .dims = dims, .iseed = iseed, .edit = e,
                     .quiet = true};
            run_job(&j, o, sh);
            if (sh->cls == C_NO_EDIT) break;
            if (getenv("TIR_FUZZ_DEBUG"))
                fprintf(stderr, "reduce: edit %d/%d: %s at %s [%s]%s: %.200s\n", e, sh->nedits,
                        class_names[sh->cls], sh->stage, sh->key,
                        smaller(sh->measure, sh->cur_measure) ? " smaller" : "", sh->msg);
            if (sh->text_len && same_failure(sh, cls, stage, key) &&
                smaller(sh->measure, sh->cur_measure)) {
                char *next = strdup(sh->text);
                if (next) {
                    free(cur);
                    cur = next;
                    progress = true;
                    (*kept)++;
                    continue;
                }
            }
            e++;
        }
    }
    return cur;
}

static int mkdir_p(const char *dir) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

/* a failing program with a header that says how it fails and how to replay it */
static void write_program(FILE *out, const char *title, int cls, const char *stage, const char *msg,
                          const char *dims, uint64_t iseed, const char *text, const char *prefix) {
    fprintf(out, "%s# %s\n", prefix, title);
    fprintf(out, "%s# fails: %s at stage %s: ", prefix, class_names[cls], stage[0] ? stage : "?");
    for (const char *p = msg; *p; p++) fputc(*p == '\n' ? ' ' : *p, out);
    fputc('\n', out);
    fprintf(out, "%s# dims:", prefix);
    char buf[512];
    snprintf(buf, sizeof buf, "%s", dims);
    for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
        size_t nl = strcspn(tok, "=");
        bool used = false; /* only the symbols the program still has */
        for (const char *p = strstr(text, "["); p && *p && !used; p++) {
            if (strncmp(p, tok, nl) != 0) continue;
            char before = p > text ? p[-1] : ' ', after = p[nl];
            used = !(isalnum((unsigned char)before) || strchr("_%@.", before)) &&
                   !(isalnum((unsigned char)after) || after == '_' || after == '.');
        }
        if (used) fprintf(out, " %s", tok);
    }
    fputc('\n', out);
    fprintf(out, "%s# input-seed: %llu\n", prefix, (unsigned long long)iseed);
    fprintf(out, "%s# replay: tirc fuzz --check FILE\n", prefix);
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        fprintf(out, "%s%.*s\n", prefix, (int)n, p);
        p += n + (p[n] == '\n');
    }
}

static void keep_file(const fz_opts *o, const char *name, const char *title, int cls, const char *stage,
                      const char *msg, const char *dims, uint64_t iseed, const char *text) {
    if (!o->keep) return;
    char path[4096];
    if (mkdir_p(o->keep) != 0) {
        fprintf(stderr, "tirc fuzz: cannot create %s: %s\n", o->keep, strerror(errno));
        return;
    }
    snprintf(path, sizeof path, "%s/%s", o->keep, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "tirc fuzz: cannot write %s: %s\n", path, strerror(errno));
        return;
    }
    write_program(f, title, cls, stage, msg, dims, iseed, text, "");
    fclose(f);
    printf("  kept %s\n", path);
}

/* reports (and reduces) the failure now in sh; text/dims are the failing program */
static void report(const fz_opts *o, fz_shared *sh, const char *what, const char *tag, uint64_t iseed) {
    int cls = sh->cls;
    char stage[64], key[32], *msg = strdup(sh->msg), *dims = strdup(sh->dims);
    char *text = strndup(sh->text, sh->text_len);
    snprintf(stage, sizeof stage, "%s", sh->stage);
    snprintf(key, sizeof key, "%s", sh->key);
    if (!msg || !text || !dims) goto out;
    printf("FAIL %s: %s at stage %s: %s\n", what, class_names[cls], stage[0] ? stage : "?", msg);
    if (!text[0]) {
        printf("  (no program text: it failed while being generated; replay with --no-fork)\n");
        goto out;
    }
    char title[512];
    snprintf(title, sizeof title, "tirc fuzz: %s", what);
    char name[256];
    snprintf(name, sizeof name, "%s-orig.tir", tag);
    keep_file(o, name, title, cls, stage, msg, dims, iseed, text);
    char *red = NULL;
    if (o->reduce) {
        int tried, kept;
        red = reduce(o, sh, text, dims, iseed, cls, stage, key, &tried, &kept);
        /* the reduced program once more, loudly: its own message (and sanitizer report) */
        job j = {.kind = J_TEXT, .text = red ? red : text, .dims = dims, .iseed = iseed};
        run_job(&j, o, sh);
        if (red && same_failure(sh, cls, stage, key)) {
            printf("  reduced (%d edits tried, %d kept):\n", tried, kept);
            write_program(stdout, title, cls, stage, sh->msg, dims, iseed, red, "  | ");
            snprintf(name, sizeof name, "%s.tir", tag);
            keep_file(o, name, title, cls, stage, sh->msg, dims, iseed, red);
            goto out_red;
        }
        printf("  (reduction lost the failure; the original program follows)\n");
    }
    write_program(stdout, title, cls, stage, msg, dims, iseed, text, "  | ");
out_red:
    free(red);
out:
    fflush(stdout);
    free(msg);
    free(text);
    free(dims);
}

static const char *find_ptxas(char *buf, size_t n) {
    const char *env = getenv("TIR_PTXAS");
    if (env && *env) return access(env, X_OK) == 0 ? env : NULL;
    const char *path = getenv("PATH");
    for (const char *p = path; p && *p;) {
        size_t len = strcspn(p, ":");
        snprintf(buf, n, "%.*s/ptxas", (int)len, p);
        if (len && access(buf, X_OK) == 0) return buf;
        p += len + (p[len] == ':');
    }
    snprintf(buf, n, "/usr/local/cuda/bin/ptxas");
    return access(buf, X_OK) == 0 ? buf : NULL;
}

static const char *const usage =
    "usage: tirc fuzz [--seed S] [--count N] [--gpu] [--keep DIR] [--verbose] [options]\n"
    "       tirc fuzz --check FILE.tir [--dim N=5 ...] [--input-seed S]\n"
    "\n"
    "Generates N random well-typed programs from seed S (program i of seed S is always the same),\n"
    "and checks each: print/parse round trip, every pipeline stage with the verifier after it, the\n"
    "interpreter's results after each stage against the original's, value_and_grad against\n"
    "finite differences, and with LLVM tir_compile, ptxas on every new kernel, and with --gpu the\n"
    "GPU against the interpreter. A failing program is reduced to a small .tir and printed.\n"
    "Ends with `N passed, M failed`; exit 1 when a program failed.\n"
    "\n"
    "  --seed S         seed of the run (default 1)\n"
    "  --count N        programs to generate (default 100)\n"
    "  --only I         just program I of the seed (to replay a failure)\n"
    "  --ops N          programs of up to N ops in @main (default 30; part of a program's identity)\n"
    "  --gpu            also run every function on the GPU and compare\n"
    "  --keep DIR       write every failing program (original and reduced) to DIR\n"
    "  --verbose        one line per program, and op coverage at the end\n"
    "  --print          print every generated program\n"
    "  --check FILE     check one .tir file (its '# dims:' and '# input-seed:' lines are read)\n"
    "  --dim N=5        a symbol's size for --check\n"
    "  --input-seed S   the inputs' seed for --check\n"
    "  --no-reduce      report failing programs as generated\n"
    "  --no-fork        check in this process (a crash then ends the run)\n"
    "  --no-gradcheck   skip the finite-difference check of value_and_grad\n"
    "  --no-codegen     skip tir_compile and ptxas (the default without LLVM)\n"
    "  --arch SM        PTX target (default sm_90a)\n"
    "  --timeout S      seconds per program before it counts as a hang (default 120)\n"
    "  --budget N       reduction attempts per failure (default 1500)\n"
    "  --reduce-time S  seconds of reduction per failure (default 120)\n";

static bool parse_u64(const char *s, uint64_t *v) {
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (!*s || *end || errno || *s == '-') return false;
    *v = x;
    return true;
}

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "tirc fuzz: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see tirc fuzz --help)\n");
    return 2;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t k; buf && (k = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += k;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (buf) buf[n] = 0;
    return buf;
}

/* `# key: value` in the comment header of a kept program */
static bool header_value(const char *text, const char *key, char *out, size_t n) {
    size_t kl = strlen(key);
    for (const char *p = text; p && *p;) {
        while (*p == ' ' || *p == '\t') p++;
        if (*p != '#') {
            p = strchr(p, '\n');
            p = p ? p + 1 : NULL;
            continue;
        }
        const char *q = p + 1;
        while (*q == ' ') q++;
        size_t len = strcspn(q, "\n");
        if (len > kl && strncmp(q, key, kl) == 0 && q[kl] == ':') {
            const char *v = q + kl + 1;
            while (*v == ' ') v++;
            snprintf(out, n, "%.*s", (int)(len - (size_t)(v - q)), v);
            return true;
        }
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return false;
}

static int check_file(const fz_opts *o, fz_shared *sh) {
    char *text = read_file(o->check_file);
    if (!text) {
        fprintf(stderr, "tirc fuzz: cannot read %s: %s\n", o->check_file, strerror(errno));
        return 1;
    }
    char dims[512] = "", seed[64] = "";
    header_value(text, "dims", dims, sizeof dims);
    uint64_t iseed = 1;
    if (header_value(text, "input-seed", seed, sizeof seed) && !parse_u64(seed, &iseed)) iseed = 1;
    if (o->have_input_seed) iseed = o->input_seed;
    /* --dim entries override the header's */
    for (int i = 0; i < o->dims.n; i++) {
        size_t len = strlen(dims);
        snprintf(dims + len, sizeof dims - len, " %s=%lld", o->dims.names[i],
                 (long long)o->dims.values[i]);
    }
    job j = {.kind = J_TEXT, .text = text, .dims = dims, .iseed = iseed};
    run_job(&j, o, sh);
    int failed = sh->cls != C_PASS;
    if (failed) {
        snprintf(sh->dims, sizeof sh->dims, "%s", dims);
        char what[4200];
        snprintf(what, sizeof what, "%s", o->check_file);
        if (sh->cls == C_INVALID) printf("FAIL %s: %s\n", what, sh->msg);
        else report(o, sh, what, "check", iseed);
    }
    free(text);
    printf("%d passed, %d failed\n", !failed, failed);
    return failed ? 1 : 0;
}

int tir_cmd_fuzz(int argc, char **argv) {
    fz_opts o;
    memset(&o, 0, sizeof o);
    o.seed = 1;
    o.count = 100;
    o.only = -1;
    o.fork = o.reduce = o.gradcheck = true;
#ifdef TIR_WITH_LLVM
    o.codegen = true;
#endif
    o.timeout = 120;
    o.reduce_budget = 1500;
    o.reduce_seconds = 120;
    o.max_ops = 30;
    o.arch = "sm_90a";
    char *dimbuf[64];
    int ndimbuf = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x;
#define NEED_VALUE() do { if (!v) return usage_error("%s needs a value", a); i++; } while (0)
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--seed") == 0) {
            NEED_VALUE();
            if (!parse_u64(v, &o.seed)) return usage_error("bad --seed '%s'", v);
        } else if (strcmp(a, "--count") == 0) {
            NEED_VALUE();
            if (!parse_u64(v, &x) || x > 100000000) return usage_error("bad --count '%s'", v);
            o.count = (long)x;
        } else if (strcmp(a, "--only") == 0) {
            NEED_VALUE();
            if (!parse_u64(v, &x) || x > 100000000) return usage_error("bad --only '%s'", v);
            o.only = (long)x;
        } else if (strcmp(a, "--timeout") == 0) {
            NEED_VALUE();
            if (!parse_u64(v, &x) || x < 1 || x > 100000) return usage_error("bad --timeout '%s'", v);
            o.timeout = (int)x;
        } else if (strcmp(a, "--budget") == 0) {
            NEED_VALUE();
            if (!parse_u64(v, &x) || x > 1000000) return usage_error("bad --budget '%s'", v);
            o.reduce_budget = (int)x;
        } else if (strcmp(a, "--ops") == 0) {
            NEED_VALUE();
            if (!parse_u64(v, &x) || x < 4 || x > 2000)
                return usage_error("bad --ops '%s' (4 to 2000)", v);
            o.max_ops = (int)x;
        } else if (strcmp(a, "--reduce-time") == 0) {
            NEED_VALUE();
            if (!parse_u64(v, &x) || x > 1000000) return usage_error("bad --reduce-time '%s'", v);
            o.reduce_seconds = (int)x;
        } else if (strcmp(a, "--input-seed") == 0) {
            NEED_VALUE();
            if (!parse_u64(v, &o.input_seed)) return usage_error("bad --input-seed '%s'", v);
            o.have_input_seed = true;
        } else if (strcmp(a, "--dim") == 0) {
            NEED_VALUE();
            if (ndimbuf == 64) return usage_error("too many --dim options%s", "");
            char *s = dimbuf[ndimbuf++] = strdup(v);
            if (!s || !dims_from_str(s, &o.dims)) {
                for (int k = 0; k < ndimbuf; k++) free(dimbuf[k]);
                return usage_error("bad --dim '%s' (want NAME=SIZE)", v);
            }
        } else if (strcmp(a, "--keep") == 0) {
            NEED_VALUE();
            o.keep = v;
        } else if (strcmp(a, "--check") == 0) {
            NEED_VALUE();
            o.check_file = v;
        } else if (strcmp(a, "--arch") == 0) {
            NEED_VALUE();
            o.arch = v;
        } else if (strcmp(a, "--gpu") == 0) {
            o.gpu = true;
        } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            o.verbose = true;
        } else if (strcmp(a, "--print") == 0) {
            o.print_all = true;
        } else if (strcmp(a, "--no-reduce") == 0) {
            o.reduce = false;
        } else if (strcmp(a, "--no-fork") == 0) {
            o.fork = false;
        } else if (strcmp(a, "--no-gradcheck") == 0) {
            o.gradcheck = false;
        } else if (strcmp(a, "--no-codegen") == 0) {
            o.codegen = false;
        } else {
            for (int k = 0; k < ndimbuf; k++) free(dimbuf[k]);
            return usage_error("unknown option '%s'", a);
        }
#undef NEED_VALUE
    }
#ifndef TIR_WITH_LLVM
    if (o.gpu) {
        for (int k = 0; k < ndimbuf; k++) free(dimbuf[k]);
        return usage_error("--gpu needs codegen: this tir was built without LLVM%s", "");
    }
#endif
    if (o.gpu) o.codegen = true;
    char pbuf[1024];
    const char *px = o.codegen ? find_ptxas(pbuf, sizeof pbuf) : NULL;
    snprintf(o.ptxas, sizeof o.ptxas, "%s", px ? px : "");

    fz_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        fprintf(stderr, "tirc fuzz: cannot map shared memory: %s\n", strerror(errno));
        for (int k = 0; k < ndimbuf; k++) free(dimbuf[k]);
        return 1;
    }
    memset(sh, 0, offsetof(fz_shared, text) + 1);
    int rc;
    if (o.check_file) {
        rc = check_file(&o, sh);
        goto done;
    }
    if (o.gpu) {
        /* CUDA does not survive fork: probe in a child, so that each check starts its own */
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            tir_context *ctx = tir_context_create();
            char desc[256];
            tir_diag d;
            tir_status s = tir_device_probe(ctx, desc, sizeof desc, &d);
            if (s == TIR_OK) printf("tirc fuzz: GPU: %s\n", desc);
            else fprintf(stderr, "tirc fuzz: --gpu: %s\n", d.msg);
            tir_context_destroy(ctx);
            fflush(stdout);
            exit(s == TIR_OK ? 0 : 1);
        }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            rc = 1;
            goto done;
        }
    }
    long passed = 0, failed = 0;
    int cls_count[C_COUNT] = {0};
    time_t t0 = time(NULL);
    long n = o.only >= 0 ? 1 : o.count;
    for (long i = 0; i < n; i++) {
        uint64_t index = o.only >= 0 ? (uint64_t)o.only : (uint64_t)i;
        uint64_t iseed = mix64(o.seed * 0x9e3779b97f4a7c15ull + index + 7);
        job j = {.kind = J_GEN, .index = index, .iseed = iseed};
        run_job(&j, &o, sh);
        if (sh->cls == C_PASS) {
            passed++;
            if (o.verbose)
                printf("ok   program %llu (%zu bytes)\n", (unsigned long long)index, sh->text_len);
            continue;
        }
        failed++;
        cls_count[sh->cls]++;
        char what[128], tag[96];
        char ops[32] = "";
        if (o.max_ops != 30) snprintf(ops, sizeof ops, " --ops %d", o.max_ops);
        snprintf(what, sizeof what, "seed %llu program %llu (replay: tirc fuzz --seed %llu --only %llu%s)",
                 (unsigned long long)o.seed, (unsigned long long)index, (unsigned long long)o.seed,
                 (unsigned long long)index, ops);
        snprintf(tag, sizeof tag, "fuzz-s%llu-p%llu", (unsigned long long)o.seed,
                 (unsigned long long)index);
        long kernels = sh->kernels, checked = sh->ptx_checked, unsup = sh->unsupported;
        report(&o, sh, what, tag, iseed);
        sh->kernels = kernels; /* the statistics are of the generated programs only */
        sh->ptx_checked = checked;
        sh->unsupported = unsup;
    }
    if (o.verbose) {
        printf("op coverage (ops kept by the generator):");
        int k = 0;
        for (int op = 0; op < TIR_OP_COUNT; op++)
            printf("%s%s %lu", k++ % 8 ? ", " : "\n  ", tir_ops[op].name, sh->op_counts[op]);
        printf("\n");
        if (o.codegen)
            printf("codegen: %ld kernels, %ld new ones checked by ptxas%s, %ld functions unsupported\n",
                   sh->kernels, sh->ptx_checked, o.ptxas[0] ? "" : " (no ptxas)", sh->unsupported);
        if (o.codegen && sh->unsupported) printf("  the last unsupported: %s\n", sh->unsupported_msg);
        printf("%ld s\n", (long)(time(NULL) - t0));
    }
    if (failed) {
        printf("failures by class:");
        for (int c = 0; c < C_COUNT; c++)
            if (cls_count[c]) printf(" %s %d;", class_names[c], cls_count[c]);
        printf("\n");
    }
    printf("%ld passed, %ld failed\n", passed, failed);
    rc = failed ? 1 : 0;
done:
    fflush(stdout);
    munmap(sh, sizeof *sh);
    for (int k = 0; k < ndimbuf; k++) free(dimbuf[k]);
    return rc;
}
