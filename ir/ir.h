/* ir.h: tir's internal IR, shared by every folder downstream of ir/ (frontend, passes, codegen,
 * runtime, compiler). Not installed; the public API is include/tir.h.
 *
 * Shape of the IR:
 *   tir_module    a list of tir_func, an arena that owns everything below, the source text
 *   tir_func      parameters (tir_value), a flat SSA list of tir_op, results, declared result
 *                 types; or a value_and_grad definition whose body the grad pass fills in
 *   tir_op        opcode from ops.def, operands, results, typed attributes, callee, location
 *   tir_value     SSA value: a parameter or an op result; has a tir_type
 *   tir_type      dtype + rank + dims; each dim an interned symbolic expression (tir_dim)
 *
 * Ownership: all IR lives in its module's arena and dies with tir_module_free. Dims are interned
 * in the context (pointer equality == structural equality of the normalised expression), so
 * types of different modules of one context compare with ==.
 *
 * Internal names: tir_ prefix for cross-folder internal API, static functions unprefixed.
 */
#ifndef TIR_IR_H
#define TIR_IR_H

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tir.h"

/* ---------------------------------------------------------------- arena */

typedef struct tir_arena tir_arena;
tir_arena *tir_arena_new(void);
void tir_arena_free(tir_arena *a);
void *tir_arena_alloc(tir_arena *a, size_t n);      /* zeroed, 16-aligned; NULL on OOM */
char *tir_arena_strdup(tir_arena *a, const char *s); /* NULL s -> NULL */
char *tir_arena_strndup(tir_arena *a, const char *s, size_t n);
void *tir_arena_memdup(tir_arena *a, const void *p, size_t n);

/* ---------------------------------------------------------------- dtypes (ir/dtype.c) */

bool tir_dtype_is_float(tir_dtype t);   /* f64 f32 f16 bf16 f8* */
bool tir_dtype_is_int(tir_dtype t);     /* i64 i32 i8 u8 (not bool) */
bool tir_dtype_from_name(const char *s, size_t n, tir_dtype *out);
/* Round a double to what the dtype can hold (the interpreter's per-op rounding):
 * floats round to nearest even (f8 saturate to the largest finite, NaN stays NaN);
 * ints truncate toward zero, saturate to range, NaN -> 0; bool is v != 0. */
double tir_dtype_round(tir_dtype t, double v);
/* storage conversions */
double tir_dtype_load(tir_dtype t, const void *p);   /* element at p -> double */
void tir_dtype_store(tir_dtype t, void *p, double v);/* rounds, then stores */
uint16_t tir_f32_to_bf16_bits(float f);
float tir_bf16_bits_to_f32(uint16_t h);
uint16_t tir_f32_to_f16_bits(float f);
float tir_f16_bits_to_f32(uint16_t h);

/* ---------------------------------------------------------------- context */

struct tir_context {
    tir_arena *arena;          /* dims and interned strings */
    struct tir_dim_table *dims;/* interning table, ir/dim.c */
    void *runtime;             /* the device runtime, created on first use (runtime/) */
    /* set by runtime/ together with runtime; tir_context_destroy calls it (when non-NULL) before
     * freeing the context, so ir/ needs no link to runtime/ */
    void (*runtime_free)(void *runtime);
    void *kernel_cache;        /* compiler/ */
    /* set by compiler/ together with kernel_cache; tir_context_destroy calls it */
    void (*kernel_cache_free)(void *kernel_cache);
};

/* ---------------------------------------------------------------- symbolic dims (ir/dim.c)
 * A dim is an integer expression over symbols, kept in a normal form: a sum of terms
 * coeff * atom1^p1 * atom2^p2 ..., where an atom is a symbol or an exact-or-floor quotient
 * (num / den) that could not be simplified. Terms are sorted, so equal expressions are one
 * interned node and compare with ==. Division by a constant that divides every coefficient
 * simplifies; anything else becomes a quotient atom (floor division, like Python //). */

typedef struct tir_dim tir_dim;

const tir_dim *tir_dim_const(tir_context *c, int64_t v);
const tir_dim *tir_dim_sym(tir_context *c, const char *name);
/* NULL on overflow of a coefficient (int64); tir_dim_mul also when the product of two sums would
 * expand past TIR_DIM_MAX_TERMS terms (tir_dim_mul_too_large says which), which bounds the work
 * of any chain of products: report that as "dim expression too large" */
enum { TIR_DIM_MAX_TERMS = 256 };
const tir_dim *tir_dim_add(tir_context *c, const tir_dim *a, const tir_dim *b);
const tir_dim *tir_dim_sub(tir_context *c, const tir_dim *a, const tir_dim *b);
const tir_dim *tir_dim_mul(tir_context *c, const tir_dim *a, const tir_dim *b);
bool tir_dim_mul_too_large(const tir_dim *a, const tir_dim *b);
const tir_dim *tir_dim_div(tir_context *c, const tir_dim *a, const tir_dim *b); /* floor */
/* exact quotient a/b when b divides a structurally (e.g. (B*T*4)/(T*2) = 2*B), else NULL */
const tir_dim *tir_dim_exact_div(tir_context *c, const tir_dim *a, const tir_dim *b);
bool tir_dim_is_const(const tir_dim *d, int64_t *v); /* v may be NULL */
/* d is a multiple of v for every binding: a constant multiple, or structurally (2*B*T of 2) */
bool tir_dim_multiple_of(tir_context *c, const tir_dim *d, int64_t v);
/* Canonical text, re-parsable by tir_dim_parse: "4096", "N", "B*T", "2*H + 1", "(N + 1)/2" */
int tir_dim_print(const tir_dim *d, char *buf, size_t n); /* snprintf-like */
/* Parse a dim expression: integers, symbols [A-Za-z_][A-Za-z0-9_]*, + - * / and parentheses. */
const tir_dim *tir_dim_parse(tir_context *c, const char *s, size_t n, const char **err);
/* the symbols of d, each once, in a stable order; returns count (<= max) */
int tir_dim_symbols(const tir_dim *d, const char **out, int max);

/* Symbol bindings: name -> value. Used to run or compile a program for concrete sizes. */
typedef struct tir_bindings {
    int n;
    const char *names[64];
    int64_t values[64];
} tir_bindings;
bool tir_bindings_get(const tir_bindings *b, const char *name, int64_t *v);
tir_status tir_bindings_set(tir_bindings *b, const char *name, int64_t v); /* conflict -> error */
/* evaluate under bindings; TIR_ERR_INVALID when a symbol is unbound or the result is negative */
tir_status tir_dim_eval(const tir_dim *d, const tir_bindings *b, int64_t *out);
/* Unify a declared dim with a concrete size: binds the one unbound symbol of a linear dim
 * (N, Hq*64, 2*N+1) when the size fits exactly; checks the rest. */
tir_status tir_dim_bind(const tir_dim *d, int64_t size, tir_bindings *b, char *err, size_t errn);

/* ---------------------------------------------------------------- types */

typedef struct tir_type {
    tir_dtype dtype;
    int rank;
    const tir_dim *dims[TIR_MAX_RANK];
} tir_type;

bool tir_type_equal(const tir_type *a, const tir_type *b);
/* the same dims (rank and each dim), whatever the dtypes */
bool tir_type_same_dims(const tir_type *a, const tir_type *b);
int tir_type_print(const tir_type *t, char *buf, size_t n); /* "bf16[B*T, 4096]" */
/* concrete shape under bindings */
tir_status tir_type_eval(const tir_type *t, const tir_bindings *b, int64_t *dims);
/* Binds the symbols of several parameters' dims from their concrete sizes (sizes[p][j] for
 * types[p]->dims[j]; the ranks must already match), to a fixed point, so parameter order never
 * matters (docs/tir.md §8): f32[N*N] before f32[N] binds. Adds to *b. On failure, the first dim
 * that cannot be bound or does not fit: *bad_param, *bad_dim (either may be NULL) and err. */
tir_status tir_bind_params(int nparams, const tir_type *const *types, const int64_t *const *sizes,
                           tir_bindings *b, int *bad_param, int *bad_dim, char *err, size_t errn);

/* ---------------------------------------------------------------- ops (ops.def) */

typedef struct tir_op tir_op;
typedef struct tir_func tir_func;

enum {
    TIR_F_UNARY       = 1u << 0,  /* elementwise, one operand */
    TIR_F_BINARY      = 1u << 1,  /* elementwise, two operands, broadcasting */
    TIR_F_ELEMWISE    = 1u << 2,  /* other elementwise (where, cast); UNARY/BINARY imply it */
    TIR_F_REDUCE      = 1u << 3,
    TIR_F_MOVEMENT    = 1u << 4,  /* pure index maps: reshape transpose broadcast slice concat split */
    TIR_F_INDEX       = 1u << 5,  /* take, scatter_add */
    TIR_F_CREATION    = 1u << 6,  /* no tensor operands */
    TIR_F_LINALG      = 1u << 7,
    TIR_F_COMPOSITE   = 1u << 8,  /* has a decomposition (ir/composite.c) */
    TIR_F_DIFF        = 1u << 9,  /* differentiable (has a gradient rule) */
    TIR_F_FLOAT       = 1u << 10, /* operands must be a float dtype */
    TIR_F_NUMERIC     = 1u << 11, /* operands must be float or int (not bool) */
    TIR_F_LOGIC       = 1u << 12, /* operands must be bool; result bool */
    TIR_F_COMPARE     = 1u << 13, /* operands numeric and equal dtype; result bool */
    TIR_F_COMMUTATIVE = 1u << 14,
    TIR_F_ASSOCIATIVE = 1u << 15,
    TIR_F_IDEMPOTENT  = 1u << 16, /* f(x, x) == x */
    TIR_F_VALUE_ATTR  = 1u << 17, /* first positional operand in text is the value= attribute */
    TIR_F_REGION      = 1u << 18, /* owns a region (op->callee) that it runs like an inline call */
};

typedef enum tir_opcode {
#define X(id, name, min_in, max_in, nout, flags, attrs, scalar) TIR_OP_##id,
#include "ops.def"
#undef X
    TIR_OP_COUNT
} tir_opcode;

typedef struct tir_opinfo {
    const char *name;
    int min_in, max_in, nout;
    unsigned flags;
    const char *attrs;
} tir_opinfo;

extern const tir_opinfo tir_ops[TIR_OP_COUNT];
bool tir_op_lookup(const char *name, size_t n, tir_opcode *out);
static inline bool tir_op_is_elementwise(tir_opcode op) {
    return (tir_ops[op].flags & (TIR_F_UNARY | TIR_F_BINARY | TIR_F_ELEMWISE)) != 0;
}

/* the scalar column of ops.def: f64 in, f64 out (not yet rounded to the result dtype) */
double tir_scalar_eval(const tir_op *op, tir_dtype dt, double a, double b, double c);
double tir_scalar_gelu(double a, const tir_op *op);
double tir_scalar_div(double a, double b, tir_dtype dt); /* ints: trunc toward 0, x/0 = 0 */

/* ---------------------------------------------------------------- attributes */

/* An attribute kind that exists only inside the IR (the public builder has no form for it):
 * a dict {key=value, ...} of int, bool and string entries, e.g. a fused region's schedule=.
 * A macro rather than an enumerator of tir.h's tir_attr_kind, so switches over the public
 * kinds stay complete; test it with ==. */
#define TIR_ATTR_DICT ((tir_attr_kind)(TIR_ATTR_SHAPE + 1))

typedef struct tir_attr_value {
    const char *name;  /* in the module arena (or static) */
    tir_attr_kind kind;
    union {
        int64_t i;
        double f;
        bool b;
        const char *s;
        tir_dtype dtype;
        struct { int n; const int64_t *v; } ints;
        struct { int n; const tir_dim *const *v; } shape;
        /* TIR_ATTR_DICT: entries are named INT, BOOL or STR values, in the module arena */
        struct { int n; const struct tir_attr_value *v; } dict;
    } u;
} tir_attr_value;

/* ---------------------------------------------------------------- values, ops, functions */

typedef struct tir_loc { int line, col; } tir_loc;

struct tir_value {
    int id;            /* unique within its function, dense from 0 */
    const char *name;  /* source name without '%', or NULL for a temporary */
    tir_type type;
    tir_op *def;       /* NULL for a parameter */
    int index;         /* parameter index, or result index within def */
    tir_func *func;
};

struct tir_op {
    tir_opcode code;
    int nin, nout;
    tir_value **in;
    tir_value **out;
    int nattrs;
    tir_attr_value *attrs;
    /* TIR_OP_CALL: the function called. TIR_OP_FUSED: its region, an anonymous function the op
     * owns (not in the module's list; see ir/region.c). Generic op copying carries it as is. */
    tir_func *callee;
    tir_loc loc;
};

struct tir_func {
    struct tir_module *module;
    const char *name;  /* without '@' */
    tir_loc loc;
    int nparams;
    tir_value **params;
    int nops, cap_ops;
    tir_op **ops;      /* in program order (SSA: defs before uses) */
    int nres;
    tir_value **results;
    int nret;
    tir_type *ret;     /* declared result types (from the signature) */
    int nvalues;       /* next value id */
    /* value_and_grad definition: grad_of != NULL. Until the grad pass runs, nops == 0 and
     * results are unset; params mirror grad_of's, ret is (loss type, one type per wrt). */
    tir_func *grad_of;
    int nwrt;
    int *wrt;          /* parameter indices of grad_of */
};

struct tir_module {
    tir_context *ctx;
    tir_arena *arena;
    const char *filename; /* for diagnostics; may be NULL */
    const char *source;   /* the whole source text (arena copy), or NULL */
    int nfuncs, cap_funcs;
    tir_func **funcs;
};

tir_func *tir_module_find(const tir_module *m, const char *name);

/* ---------------------------------------------------------------- building (ir/module.c)
 * The one way to create IR. tir_func_append_op runs shape inference (ir/infer.c) and on error
 * returns NULL with d filled (at loc). Callers never construct tir_op by hand. */

tir_func *tir_func_new(tir_module *m, const char *name, tir_loc loc, tir_diag *d); /* dup name -> error */
tir_value *tir_func_add_param(tir_func *f, const char *name, const tir_type *t, tir_loc loc);
tir_op *tir_func_append_op(tir_func *f, tir_opcode code, int nin, tir_value *const *in,
                           int nattrs, const tir_attr_value *attrs, tir_func *callee,
                           tir_loc loc, tir_diag *d);
void tir_func_set_results(tir_func *f, int n, tir_value *const *res);
void tir_func_set_ret(tir_func *f, int n, const tir_type *ret); /* declared signature */
tir_value *tir_value_new(tir_func *f, const tir_type *t); /* used by append_op and passes */
/* func @name = value_and_grad(@of, wrt=[...]): params copied from of (same names), ret =
 * (of's result type, then each wrt param's type). Errors (unknown @of, unknown or repeated wrt
 * name, non-float wrt, of not returning exactly one float scalar) are diagnostics at loc. */
tir_func *tir_func_new_grad_def(tir_module *m, const char *name, const char *of, int nwrt,
                                const char *const *wrt, tir_loc loc, tir_diag *d);

/* attribute access (NULL / default when absent) */
const tir_attr_value *tir_op_attr(const tir_op *op, const char *name);
int64_t tir_attr_int(const tir_op *op, const char *name, int64_t dflt);
double tir_attr_float(const tir_op *op, const char *name, double dflt); /* accepts int too */
bool tir_attr_bool(const tir_op *op, const char *name, bool dflt);
const char *tir_attr_str(const tir_op *op, const char *name, const char *dflt);
/* attribute constructors (copy lists into the module arena) */
tir_attr_value tir_a_int(const char *name, int64_t v);
tir_attr_value tir_a_float(const char *name, double v);
tir_attr_value tir_a_bool(const char *name, bool v);
tir_attr_value tir_a_str(const char *name, const char *s);
tir_attr_value tir_a_dtype(const char *name, tir_dtype t);
tir_attr_value tir_a_ints(tir_module *m, const char *name, int n, const int64_t *v);
tir_attr_value tir_a_shape(tir_module *m, const char *name, int n, const tir_dim *const *v);

/* A convenience builder for C code that writes IR (decompositions, gradient rules, passes):
 * the first error sticks, later calls return NULL. */
typedef struct tir_ib {
    tir_func *f;
    tir_loc loc;      /* stamped on every op built */
    tir_diag *d;
    bool failed;
} tir_ib;
tir_value *tir_ib_op(tir_ib *b, tir_opcode code, int nin, tir_value *const *in, int nattrs,
                     const tir_attr_value *attrs);
tir_value *tir_ib_un(tir_ib *b, tir_opcode code, tir_value *x);
tir_value *tir_ib_bin(tir_ib *b, tir_opcode code, tir_value *x, tir_value *y);
tir_value *tir_ib_const(tir_ib *b, double v, tir_dtype dt);            /* full(v, shape=[]) */
tir_value *tir_ib_full(tir_ib *b, double v, const tir_type *t);        /* full(v, shape=t) */
tir_value *tir_ib_cast(tir_ib *b, tir_value *x, tir_dtype dt);         /* no-op when equal */
tir_value *tir_ib_reduce(tir_ib *b, tir_opcode code, tir_value *x, int naxes, const int64_t *axes,
                         bool keepdim);
tir_value *tir_ib_reshape(tir_ib *b, tir_value *x, int rank, const tir_dim *const *dims);
tir_value *tir_ib_transpose(tir_ib *b, tir_value *x, const int64_t *perm);
tir_value *tir_ib_broadcast(tir_ib *b, tir_value *x, int rank, const tir_dim *const *dims);
tir_value *tir_ib_matmul(tir_ib *b, tir_value *x, tir_value *y, bool ta, bool tb);

/* ---------------------------------------------------------------- fused regions (ir/region.c)
 * `%y = fused(%x, %w) kernel="k" schedule={...} { ... yield %r }` is one TIR_OP_FUSED op whose
 * callee is its region: a tir_func with one parameter per operand (same types), a body of core
 * ops that refers only to its own parameters and values, and results (the yielded values; ret
 * holds their types). The region shares the enclosing function's symbols (no binding at the
 * boundary: operand and parameter types are equal). It never appears in m->funcs, never holds a
 * call or another fused op, and is built like any function: tir_func_add_param,
 * tir_func_append_op, tir_func_set_results + tir_func_set_ret; then append the fused op with
 * tir_func_append_op(parent, TIR_OP_FUSED, ..., callee = region, ...). */
tir_func *tir_region_new(tir_func *parent, const char *kernel, tir_loc loc); /* NULL on OOM */
static inline tir_func *tir_op_region(const tir_op *op) {
    return op && op->code == TIR_OP_FUSED ? op->callee : NULL;
}
/* a dict attribute; entries (and their names and strings) are copied into the module arena */
tir_attr_value tir_a_dict(tir_module *m, const char *name, int n, const tir_attr_value *entries);
/* the entry key of a dict attribute, NULL when absent (or a is not a dict) */
const tir_attr_value *tir_dict_get(const tir_attr_value *a, const char *key);

/* ---------------------------------------------------------------- inference (ir/infer.c)
 * Checks operand count, operand dtypes (op flags), attributes against the op's schema (names,
 * kinds, ranges: axes, perm, reshape size, slice bounds...), and computes the result types.
 * Broadcasting is NumPy's: align from the right; dims equal or one of them the constant 1.
 * Binary ops need equal dtypes (no implicit promotion). Composites' result types follow
 * docs/tir.md. Writes at most max_out types; *nout gets the count. */
tir_status tir_infer(tir_module *m, tir_opcode code, int nin, tir_value *const *in, int nattrs,
                     const tir_attr_value *attrs, const tir_func *callee, tir_loc loc,
                     int max_out, tir_type *out, int *nout, tir_diag *d);
/* NumPy broadcast of two shapes; false if incompatible */
bool tir_broadcast_shapes(tir_context *c, const tir_type *a, const tir_type *b, tir_type *out);
/* normalise an axis (negative counts from the end); false when out of range */
bool tir_norm_axis(int64_t axis, int rank, int *out);

/* ---------------------------------------------------------------- verifier (ir/verify.c)
 * Whole-module checks: SSA (each value defined once, before use, in its function), every op's
 * types re-inferred and equal, results match the declared types, calls resolve with matching
 * types, no recursion (direct or mutual), value_and_grad definitions well-formed (wrt are float
 * params of grad_of, grad_of returns one scalar float). Runs between passes in debug builds. */
tir_status tir_verify(tir_module *m, tir_diag *d);

/* ---------------------------------------------------------------- printer (ir/print.c)
 * Canonical text: print(parse(print(m))) == print(m). Temporaries get %0, %1... in order;
 * a rank-0 full() used as an operand prints as a literal where the parser would give it the
 * same dtype (tir_literal_dtype). */
char *tir_print_module(const tir_module *m); /* malloc'd */
char *tir_print_func(const tir_func *f);     /* malloc'd */
/* The dtype a literal operand at position i of op code takes, given the other operands (NULL for
 * literal positions): the first non-literal "data" operand's dtype; f32 when there is none.
 * Shared by parser and printer so that literals round-trip. */
tir_dtype tir_literal_dtype(tir_opcode code, int nin, const tir_value *const *in, int i,
                            bool literal_is_int);

/* ---------------------------------------------------------------- diagnostics (ir/diag.c) */
/* Fill d: status, message, and, when m has source and loc.line > 0, file:line:col and the line.
 * Returns status, so `return tir_diag_set(...)` reads naturally. d may be NULL. */
tir_status tir_diag_set(tir_diag *d, tir_status s, const tir_module *m, tir_loc loc,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
tir_status tir_diag_vset(tir_diag *d, tir_status s, const tir_module *m, tir_loc loc,
                         const char *fmt, va_list ap);
/* same, with an explicit file name and source (the parser, before a module exists) */
tir_status tir_diag_set_src(tir_diag *d, tir_status s, const char *file, const char *src,
                            tir_loc loc, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---------------------------------------------------------------- composites (ir/composite.c)
 * Builds the decomposition of a composite op (TIR_F_COMPOSITE) into core ops with b, from the
 * op's operands (already in b->f) and attributes; writes the replacement results.
 * 16-bit float inputs are cast to f32, computed, and cast back once at the end. */
tir_status tir_decompose(tir_ib *b, const tir_op *op, tir_value **out);

/* ---------------------------------------------------------------- interpreter (ir/interp.c)
 * Every op, in f64 with rounding to the result dtype after each op (so bf16/f16 behave as
 * "compute in f32, round per op", and f32 accumulation is at least as accurate); composites run
 * through tir_decompose; calls recurse. Implements tir_interpret. */

#endif /* TIR_IR_H */
