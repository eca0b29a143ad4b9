/* interp.c: the reference interpreter, the oracle every pass and kernel is checked against.
 *
 * Every tensor is a dense row-major array of doubles plus a concrete shape; every op computes in
 * f64 and rounds its result to the result dtype (tir_dtype_round), so bf16/f16 behave as
 * "compute in f32, round per op", and sums and matmuls accumulate in f64, at least as accurately
 * as the f32 accumulation the language promises. Shapes come from the IR's types evaluated under
 * the symbol bindings of the running function; each kernel re-checks its operands against them,
 * so a binding that makes sizes disagree is an error, never an out-of-bounds read.
 *
 * Composites run through tir_decompose (built once per op into a scratch module), which is what
 * makes the decomposition the definition. Calls recurse with the callee's symbols bound from the
 * operands. Buffers are reference counted (reshape shares its operand's) and released after their
 * last use. Clarity over speed, except for matmul's inner loop, which is packed so that it runs
 * as contiguous dot products. */
#include <stdio.h>

#include "ir.h"

/* beyond this many bytes an allocation is refused as OOM instead of attempted (the sanitizers'
 * allocator aborts on larger requests rather than returning NULL) */
#define MAX_BYTES ((uint64_t)1 << 40)
#define MAX_DEPTH 200

typedef struct store {
    int refs;
    int64_t n;
    double d[];
} store;

typedef struct tval {
    store *s;
    int rank;
    int64_t dims[TIR_MAX_RANK];
} tval;

typedef struct decomp {
    const tir_op *op;
    tir_func *f;
} decomp;

typedef struct interp {
    tir_module *m;
    tir_diag *d;
    tir_module *scratch; /* holds the decompositions of composites, created on first need */
    decomp *dec;
    int ndec, capdec;
    int depth;
} interp;

/* ---------------------------------------------------------------- buffers */

static void release(store *s) {
    if (s && --s->refs == 0) free(s);
}

static store *retain(store *s) {
    if (s) s->refs++;
    return s;
}

static bool numel_of(int rank, const int64_t *dims, int64_t *out) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0 || __builtin_mul_overflow(n, dims[i], &n)) return false;
    }
    *out = n;
    return true;
}

static store *store_new(interp *I, const tir_module *m, tir_loc loc, int64_t n) {
    uint64_t bytes;
    if (n < 0 || __builtin_mul_overflow((uint64_t)n, sizeof(double), &bytes) ||
        bytes > MAX_BYTES) {
        tir_diag_set(I->d, TIR_ERR_OOM, m, loc, "tensor of %lld elements is too large",
                     (long long)n);
        return NULL;
    }
    store *s = malloc(sizeof(store) + (size_t)bytes);
    if (!s) {
        tir_diag_set(I->d, TIR_ERR_OOM, m, loc, "out of memory allocating %llu bytes",
                     (unsigned long long)bytes);
        return NULL;
    }
    s->refs = 1;
    s->n = n;
    return s;
}

static void shape_str(int rank, const int64_t *dims, char *buf, size_t n) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < rank && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

static void row_strides(int rank, const int64_t *dims, int64_t *st) {
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= dims[i];
    }
}

/* ---------------------------------------------------------------- frames */

typedef struct frame {
    interp *I;
    tir_func *f;
    const tir_bindings *bind;
    tval *vals; /* by value id */
} frame;

static tir_status err(frame *F, const tir_op *op, tir_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static tir_status err(frame *F, const tir_op *op, tir_status s, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tir_diag_set(F->I->d, s, F->f->module, op->loc, "%s: %s", tir_ops[op->code].name, msg);
}

static tval *in_val(frame *F, const tir_op *op, int i) { return &F->vals[op->in[i]->id]; }

/* evaluates the output's declared type and allocates it */
static tir_status alloc_out(frame *F, const tir_op *op, int i, tval *out) {
    const tir_type *t = &op->out[i]->type;
    memset(out, 0, sizeof *out);
    out->rank = t->rank;
    if (tir_type_eval(t, F->bind, out->dims) != TIR_OK) {
        char ts[256];
        tir_type_print(t, ts, sizeof ts);
        return err(F, op, TIR_ERR_INVALID, "cannot evaluate the result type %s under the bindings",
                   ts);
    }
    int64_t n;
    if (!numel_of(t->rank, out->dims, &n)) {
        char ss[256];
        shape_str(t->rank, out->dims, ss, sizeof ss);
        return err(F, op, TIR_ERR_OOM, "result shape %s is too large", ss);
    }
    out->s = store_new(F->I, F->f->module, op->loc, n);
    return out->s ? TIR_OK : F->I->d ? F->I->d->status : TIR_ERR_OOM;
}

/* Strides that read operand x at the positions of a broadcast result of shape (rank, dims):
 * NumPy alignment from the right, size-1 dims read with stride 0. */
static bool bcast_strides(const tval *x, int rank, const int64_t *dims, int64_t *st) {
    if (x->rank > rank) return false;
    int64_t xs[TIR_MAX_RANK];
    row_strides(x->rank, x->dims, xs);
    int off = rank - x->rank;
    for (int i = 0; i < rank; i++) {
        if (i < off) {
            st[i] = 0;
            continue;
        }
        int64_t xd = x->dims[i - off];
        if (xd == dims[i]) st[i] = xd == 1 ? 0 : xs[i - off];
        else if (xd == 1) st[i] = 0;
        else return false;
    }
    return true;
}

/* Odometer over an output of shape (rank, dims) carrying up to 3 strided input offsets. */
typedef struct walk {
    int rank, nin;
    const int64_t *dims;
    int64_t idx[TIR_MAX_RANK];
    int64_t st[3][TIR_MAX_RANK];
    int64_t off[3];
} walk;

static void walk_next(walk *w) {
    for (int ax = w->rank - 1; ax >= 0; ax--) {
        w->idx[ax]++;
        for (int k = 0; k < w->nin; k++) w->off[k] += w->st[k][ax];
        if (w->idx[ax] < w->dims[ax]) return;
        for (int k = 0; k < w->nin; k++) w->off[k] -= w->st[k][ax] * w->dims[ax];
        w->idx[ax] = 0;
    }
}

/* ---------------------------------------------------------------- elementwise */

static tir_status run_elementwise(frame *F, const tir_op *op, tval *out) {
    walk w = {.rank = out->rank, .nin = op->nin, .dims = out->dims};
    const double *src[3] = {NULL, NULL, NULL};
    for (int k = 0; k < op->nin; k++) {
        tval *x = in_val(F, op, k);
        if (!bcast_strides(x, out->rank, out->dims, w.st[k])) {
            char xs[128], os[128];
            shape_str(x->rank, x->dims, xs, sizeof xs);
            shape_str(out->rank, out->dims, os, sizeof os);
            return err(F, op, TIR_ERR_INVALID, "operand %d of shape %s does not broadcast to %s",
                       k + 1, xs, os);
        }
        src[k] = x->s->d;
    }
    /* the dtype the scalar formula sees is the data operands' (where's condition is bool) */
    tir_dtype dt = op->in[op->code == TIR_OP_WHERE ? 1 : 0]->type.dtype;
    tir_dtype odt = op->out[0]->type.dtype;
    int64_t n = out->s->n;
    double *o = out->s->d;
    for (int64_t i = 0; i < n; i++) {
        double a = src[0][w.off[0]];
        double b = op->nin > 1 ? src[1][w.off[1]] : 0.0;
        double c = op->nin > 2 ? src[2][w.off[2]] : 0.0;
        o[i] = tir_dtype_round(odt, tir_scalar_eval(op, dt, a, b, c));
        walk_next(&w);
    }
    return TIR_OK;
}

/* ---------------------------------------------------------------- reductions */

static tir_status reduce_axes(frame *F, const tir_op *op, int rank, bool *red) {
    const tir_attr_value *a = tir_op_attr(op, "axes");
    for (int i = 0; i < rank; i++) red[i] = a == NULL;
    if (!a) return TIR_OK;
    for (int j = 0; j < a->u.ints.n; j++) {
        int ax;
        if (!tir_norm_axis(a->u.ints.v[j], rank, &ax))
            return err(F, op, TIR_ERR_INVALID, "axis %lld out of range for rank %d",
                       (long long)a->u.ints.v[j], rank);
        red[ax] = true;
    }
    return TIR_OK;
}

static tir_status run_reduce(frame *F, const tir_op *op, tval *out) {
    tval *x = in_val(F, op, 0);
    bool red[TIR_MAX_RANK];
    tir_status st = reduce_axes(F, op, x->rank, red);
    if (st) return st;
    /* where each input element lands in the output: reduced axes have stride 0 */
    int64_t kept[TIR_MAX_RANK], nk = 0, count = 1;
    for (int i = 0; i < x->rank; i++) {
        if (red[i]) count *= x->dims[i];
        else kept[nk++] = x->dims[i];
    }
    int64_t on = 0;
    numel_of((int)nk, kept, &on);
    if (on != out->s->n)
        return err(F, op, TIR_ERR_INVALID, "result has %lld elements, the reduction gives %lld",
                   (long long)out->s->n, (long long)on);
    int64_t ks[TIR_MAX_RANK];
    row_strides((int)nk, kept, ks);
    walk w = {.rank = x->rank, .nin = 1, .dims = x->dims};
    for (int i = 0, j = 0; i < x->rank; i++) w.st[0][i] = red[i] ? 0 : ks[j++];

    double *o = out->s->d;
    double init = op->code == TIR_OP_MAX ? -INFINITY : op->code == TIR_OP_MIN ? INFINITY : 0.0;
    for (int64_t i = 0; i < on; i++) o[i] = init;
    const double *xd = x->s->d;
    for (int64_t i = 0; i < x->s->n; i++) {
        double v = xd[i], *acc = &o[w.off[0]];
        switch (op->code) {
        case TIR_OP_MAX:
            /* NaN is sticky: once acc is NaN no comparison replaces it */
            if (v != v || v > *acc) *acc = v;
            break;
        case TIR_OP_MIN:
            if (v != v || v < *acc) *acc = v;
            break;
        default: *acc += v; break;
        }
        walk_next(&w);
    }
    tir_dtype odt = op->out[0]->type.dtype;
    for (int64_t i = 0; i < on; i++) {
        if (op->code == TIR_OP_MEAN) o[i] /= (double)count;
        o[i] = tir_dtype_round(odt, o[i]);
    }
    return TIR_OK;
}

static tir_status run_argmax(frame *F, const tir_op *op, tval *out) {
    tval *x = in_val(F, op, 0);
    const tir_attr_value *a = tir_op_attr(op, "axes");
    int ax = 0;
    if (a ? a->u.ints.n != 1 || !tir_norm_axis(a->u.ints.v[0], x->rank, &ax) : x->rank != 1)
        return err(F, op, TIR_ERR_INVALID, "argmax needs exactly one axis in range");
    int64_t outer = 1, inner = 1, n = x->dims[ax];
    for (int i = 0; i < ax; i++) outer *= x->dims[i];
    for (int i = ax + 1; i < x->rank; i++) inner *= x->dims[i];
    if (outer * inner != out->s->n)
        return err(F, op, TIR_ERR_INVALID, "result size does not match the reduction");
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const double *p = x->s->d + o * n * inner + i;
            int64_t best = 0;
            double bv = n > 0 ? p[0] : NAN;
            /* the first maximum wins; the first NaN beats everything and ends the search */
            for (int64_t k = 1; k < n && bv == bv; k++) {
                double v = p[k * inner];
                if (v != v || v > bv) {
                    bv = v;
                    best = k;
                }
            }
            out->s->d[o * inner + i] = (double)best;
        }
    return TIR_OK;
}

/* ---------------------------------------------------------------- movement */

static tir_status shape_mismatch(frame *F, const tir_op *op, const tval *x, const tval *out) {
    char xs[128], os[128];
    shape_str(x->rank, x->dims, xs, sizeof xs);
    shape_str(out->rank, out->dims, os, sizeof os);
    return err(F, op, TIR_ERR_INVALID, "operand shape %s does not give the result shape %s", xs,
               os);
}

static tir_status run_transpose(frame *F, const tir_op *op, tval *out) {
    tval *x = in_val(F, op, 0);
    const tir_attr_value *p = tir_op_attr(op, "perm");
    if (!p || p->u.ints.n != x->rank || x->rank != out->rank)
        return err(F, op, TIR_ERR_INVALID, "perm does not match the operand's rank");
    int64_t xs[TIR_MAX_RANK];
    row_strides(x->rank, x->dims, xs);
    walk w = {.rank = out->rank, .nin = 1, .dims = out->dims};
    for (int j = 0; j < out->rank; j++) {
        int64_t pj = p->u.ints.v[j];
        if (pj < 0) pj += x->rank;
        if (pj < 0 || pj >= x->rank || x->dims[pj] != out->dims[j])
            return shape_mismatch(F, op, x, out);
        w.st[0][j] = xs[pj];
    }
    for (int64_t i = 0; i < out->s->n; i++) {
        out->s->d[i] = x->s->d[w.off[0]];
        walk_next(&w);
    }
    return TIR_OK;
}

static tir_status run_broadcast(frame *F, const tir_op *op, tval *out) {
    tval *x = in_val(F, op, 0);
    walk w = {.rank = out->rank, .nin = 1, .dims = out->dims};
    if (!bcast_strides(x, out->rank, out->dims, w.st[0])) return shape_mismatch(F, op, x, out);
    for (int64_t i = 0; i < out->s->n; i++) {
        out->s->d[i] = x->s->d[w.off[0]];
        walk_next(&w);
    }
    return TIR_OK;
}

/* outer * dim * inner view of x around axis */
static void split_at(const tval *x, int axis, int64_t *outer, int64_t *inner) {
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= x->dims[i];
    for (int i = axis + 1; i < x->rank; i++) *inner *= x->dims[i];
}

static bool same_except(const tval *a, const tval *b, int axis) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (i != axis && a->dims[i] != b->dims[i]) return false;
    return true;
}

static tir_status run_slice(frame *F, const tir_op *op, tval *out) {
    tval *x = in_val(F, op, 0);
    int axis;
    if (!tir_norm_axis(tir_attr_int(op, "axis", 0), x->rank, &axis))
        return err(F, op, TIR_ERR_INVALID, "axis out of range");
    int64_t dim = x->dims[axis];
    int64_t step = tir_attr_int(op, "step", 1);
    if (step < 1) return err(F, op, TIR_ERR_INVALID, "step must be >= 1, not %lld", (long long)step);
    /* Python's rule: negative counts from the end, then clamp into [0, dim] */
    int64_t start = tir_attr_int(op, "start", 0), end = tir_attr_int(op, "end", dim);
    if (start < 0) start = start < -dim ? 0 : start + dim;
    if (end < 0) end = end < -dim ? 0 : end + dim;
    if (start > dim) start = dim;
    if (end > dim) end = dim;
    int64_t len = end > start ? (end - start - 1) / step + 1 : 0;
    if (!same_except(x, out, axis) || out->dims[axis] != len) return shape_mismatch(F, op, x, out);
    int64_t outer, inner;
    split_at(x, axis, &outer, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < len; j++)
            memcpy(out->s->d + (o * len + j) * inner,
                   x->s->d + (o * dim + start + j * step) * inner, (size_t)inner * sizeof(double));
    return TIR_OK;
}

static tir_status run_concat(frame *F, const tir_op *op, tval *out) {
    int axis;
    if (!tir_norm_axis(tir_attr_int(op, "axis", 0), out->rank, &axis))
        return err(F, op, TIR_ERR_INVALID, "axis out of range");
    int64_t total = 0;
    for (int k = 0; k < op->nin; k++) {
        tval *x = in_val(F, op, k);
        if (!same_except(x, out, axis)) return shape_mismatch(F, op, x, out);
        total += x->dims[axis];
    }
    if (total != out->dims[axis])
        return err(F, op, TIR_ERR_INVALID, "operands give %lld along axis %d, the result has %lld",
                   (long long)total, axis, (long long)out->dims[axis]);
    int64_t outer, inner, od = out->dims[axis], at = 0;
    split_at(out, axis, &outer, &inner);
    for (int k = 0; k < op->nin; k++) {
        tval *x = in_val(F, op, k);
        int64_t xd = x->dims[axis];
        for (int64_t o = 0; o < outer; o++)
            memcpy(out->s->d + (o * od + at) * inner, x->s->d + o * xd * inner,
                   (size_t)(xd * inner) * sizeof(double));
        at += xd;
    }
    return TIR_OK;
}

static tir_status run_split(frame *F, const tir_op *op, tval *outs) {
    tval *x = in_val(F, op, 0);
    int axis;
    if (!tir_norm_axis(tir_attr_int(op, "axis", 0), x->rank, &axis))
        return err(F, op, TIR_ERR_INVALID, "axis out of range");
    int64_t total = 0;
    for (int k = 0; k < op->nout; k++) {
        if (!same_except(x, &outs[k], axis)) return shape_mismatch(F, op, x, &outs[k]);
        total += outs[k].dims[axis];
    }
    if (total != x->dims[axis])
        return err(F, op, TIR_ERR_INVALID, "sizes add up to %lld, the axis has %lld",
                   (long long)total, (long long)x->dims[axis]);
    int64_t outer, inner, xd = x->dims[axis], at = 0;
    split_at(x, axis, &outer, &inner);
    for (int k = 0; k < op->nout; k++) {
        int64_t od = outs[k].dims[axis];
        for (int64_t o = 0; o < outer; o++)
            memcpy(outs[k].s->d + o * od * inner, x->s->d + (o * xd + at) * inner,
                   (size_t)(od * inner) * sizeof(double));
        at += od;
    }
    return TIR_OK;
}

/* ---------------------------------------------------------------- indexing and creation */

/* the index-shaped part of take's and scatter_add's layout:
 * table[outer, V, inner], idx[I], data[outer, I, inner] */
static tir_status index_layout(frame *F, const tir_op *op, const tval *table, const tval *idx,
                               const tval *data, int *axis_out) {
    int axis;
    if (!tir_norm_axis(tir_attr_int(op, "axis", 0), table->rank, &axis))
        return err(F, op, TIR_ERR_INVALID, "axis out of range");
    bool ok = data->rank == table->rank - 1 + idx->rank;
    for (int i = 0; ok && i < data->rank; i++) {
        int64_t want = i < axis ? table->dims[i]
                       : i < axis + idx->rank ? idx->dims[i - axis]
                                              : table->dims[i - idx->rank + 1];
        ok = data->dims[i] == want;
    }
    if (!ok) {
        char ts[128], is[128], ds[128];
        shape_str(table->rank, table->dims, ts, sizeof ts);
        shape_str(idx->rank, idx->dims, is, sizeof is);
        shape_str(data->rank, data->dims, ds, sizeof ds);
        return err(F, op, TIR_ERR_INVALID, "shapes %s, index %s and %s do not agree", ts, is, ds);
    }
    *axis_out = axis;
    return TIR_OK;
}

static tir_status check_index(frame *F, const tir_op *op, double v, int64_t size, int axis,
                              int64_t *out) {
    if (!(v >= 0 && v < (double)size))
        return err(F, op, TIR_ERR_INVALID, "index %.17g out of range [0, %lld) for axis %d", v,
                   (long long)size, axis);
    *out = (int64_t)v;
    return TIR_OK;
}

static tir_status run_take(frame *F, const tir_op *op, tval *out) {
    tval *table = in_val(F, op, 0), *idx = in_val(F, op, 1);
    int axis;
    tir_status st = index_layout(F, op, table, idx, out, &axis);
    if (st) return st;
    int64_t outer, inner, v = table->dims[axis], ni = idx->s->n;
    split_at(table, axis, &outer, &inner);
    for (int64_t j = 0; j < ni; j++) {
        int64_t r = 0;
        if ((st = check_index(F, op, idx->s->d[j], v, axis, &r))) return st;
        for (int64_t o = 0; o < outer; o++)
            memcpy(out->s->d + (o * ni + j) * inner, table->s->d + (o * v + r) * inner,
                   (size_t)inner * sizeof(double));
    }
    return TIR_OK;
}

static tir_status run_scatter_add(frame *F, const tir_op *op, tval *out) {
    tval *target = in_val(F, op, 0), *idx = in_val(F, op, 1), *src = in_val(F, op, 2);
    int axis;
    tir_status st = index_layout(F, op, target, idx, src, &axis);
    if (st) return st;
    if (!same_except(target, out, -1)) return shape_mismatch(F, op, target, out);
    int64_t outer, inner, v = target->dims[axis], ni = idx->s->n;
    split_at(target, axis, &outer, &inner);
    memcpy(out->s->d, target->s->d, (size_t)out->s->n * sizeof(double));
    for (int64_t j = 0; j < ni; j++) {
        int64_t r = 0;
        if ((st = check_index(F, op, idx->s->d[j], v, axis, &r))) return st;
        for (int64_t o = 0; o < outer; o++) {
            double *dst = out->s->d + (o * v + r) * inner;
            const double *s = src->s->d + (o * ni + j) * inner;
            for (int64_t i = 0; i < inner; i++) dst[i] += s[i];
        }
    }
    /* accumulate exactly, round once per element */
    tir_dtype odt = op->out[0]->type.dtype;
    for (int64_t i = 0; i < out->s->n; i++) out->s->d[i] = tir_dtype_round(odt, out->s->d[i]);
    return TIR_OK;
}

static tir_status run_iota(frame *F, const tir_op *op, tval *out) {
    int axis = 0;
    if (out->rank > 0 && !tir_norm_axis(tir_attr_int(op, "axis", 0), out->rank, &axis))
        return err(F, op, TIR_ERR_INVALID, "axis out of range");
    int64_t outer = 1, inner = 1, n = out->rank > 0 ? out->dims[axis] : 1;
    split_at(out, out->rank > 0 ? axis : 0, &outer, &inner);
    if (out->rank == 0) outer = inner = 1;
    tir_dtype odt = op->out[0]->type.dtype;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < n; k++)
            for (int64_t i = 0; i < inner; i++)
                out->s->d[(o * n + k) * inner + i] = tir_dtype_round(odt, (double)k);
    return TIR_OK;
}

static tir_status run_full(frame *F, const tir_op *op, tval *out) {
    double v = tir_dtype_round(op->out[0]->type.dtype, tir_attr_float(op, "value", 0.0));
    for (int64_t i = 0; i < out->s->n; i++) out->s->d[i] = v;
    return TIR_OK;
}

/* ---------------------------------------------------------------- matmul */

/* a[..., M, K] (or [..., K, M] with transpose_a) times b[..., K, N] (or [..., N, K]); batch dims
 * broadcast. Each batch's operands are packed as A[M, K] and Bt[N, K] so that every output is a
 * contiguous dot product accumulated in f64. */
static tir_status run_matmul(frame *F, const tir_op *op, tval *out) {
    tval *a = in_val(F, op, 0), *b = in_val(F, op, 1);
    bool ta = tir_attr_bool(op, "transpose_a", false), tb = tir_attr_bool(op, "transpose_b", false);
    if (a->rank < 2 || b->rank < 2 || out->rank != (a->rank > b->rank ? a->rank : b->rank))
        return err(F, op, TIR_ERR_INVALID, "operands need rank >= 2");
    int64_t ar = a->dims[a->rank - 2], ac = a->dims[a->rank - 1];
    int64_t br = b->dims[b->rank - 2], bc = b->dims[b->rank - 1];
    int64_t M = ta ? ac : ar, K = ta ? ar : ac, K2 = tb ? bc : br, N = tb ? br : bc;
    if (K != K2 || out->dims[out->rank - 2] != M || out->dims[out->rank - 1] != N) {
        char as[128], bs[128], os[128];
        shape_str(a->rank, a->dims, as, sizeof as);
        shape_str(b->rank, b->dims, bs, sizeof bs);
        shape_str(out->rank, out->dims, os, sizeof os);
        return err(F, op, TIR_ERR_INVALID, "%s times %s does not give %s", as, bs, os);
    }
    /* batch walk: the batch dims of the result, with each operand's matrix-sized strides */
    int brank = out->rank - 2;
    tval ab = {.rank = a->rank - 2}, bb = {.rank = b->rank - 2};
    memcpy(ab.dims, a->dims, sizeof(int64_t) * (size_t)ab.rank);
    memcpy(bb.dims, b->dims, sizeof(int64_t) * (size_t)bb.rank);
    walk w = {.rank = brank, .nin = 2, .dims = out->dims};
    if (!bcast_strides(&ab, brank, out->dims, w.st[0]) ||
        !bcast_strides(&bb, brank, out->dims, w.st[1]))
        return err(F, op, TIR_ERR_INVALID, "batch dims do not broadcast");
    int64_t nbatch = 1;
    for (int i = 0; i < brank; i++) nbatch *= out->dims[i];

    store *pa = store_new(F->I, F->f->module, op->loc, M * K);
    store *pb = pa ? store_new(F->I, F->f->module, op->loc, N * K) : NULL;
    if (!pb) {
        release(pa);
        return F->I->d ? F->I->d->status : TIR_ERR_OOM;
    }
    tir_dtype odt = op->out[0]->type.dtype;
    int64_t last_a = -1, last_b = -1;
    for (int64_t bi = 0; bi < nbatch; bi++) {
        int64_t oa = w.off[0] * M * K, ob = w.off[1] * N * K;
        const double *sa = a->s->d + oa, *sb = b->s->d + ob;
        if (oa != last_a) { /* a broadcast operand is packed once */
            for (int64_t m = 0; m < M; m++)
                for (int64_t k = 0; k < K; k++) pa->d[m * K + k] = ta ? sa[k * M + m] : sa[m * K + k];
            last_a = oa;
        }
        if (ob != last_b) {
            for (int64_t n = 0; n < N; n++)
                for (int64_t k = 0; k < K; k++) pb->d[n * K + k] = tb ? sb[n * K + k] : sb[k * N + n];
            last_b = ob;
        }
        double *o = out->s->d + bi * M * N;
        for (int64_t m = 0; m < M; m++) {
            const double *ra = pa->d + m * K;
            for (int64_t n = 0; n < N; n++) {
                const double *rb = pb->d + n * K;
                double acc = 0;
                for (int64_t k = 0; k < K; k++) acc += ra[k] * rb[k];
                o[m * N + n] = tir_dtype_round(odt, acc);
            }
        }
        walk_next(&w);
    }
    release(pa);
    release(pb);
    return TIR_OK;
}

/* ---------------------------------------------------------------- functions and calls */

static tir_status run_func(interp *I, tir_func *f, const tir_bindings *bind, const tval *args,
                           tval *res);

static void type_str_of(tir_dtype dt, int rank, const int64_t *dims, char *buf, size_t n) {
    int k = snprintf(buf, n, "%s", tir_dtype_name(dt));
    if (k >= 0 && (size_t)k < n) shape_str(rank, dims, buf + k, n - (size_t)k);
}

/* Binds f's symbols from concrete argument shapes, to a fixed point (tir_bind_params), so the
 * order of the parameters never matters: f32[N*N] before f32[N] binds. `what` prefixes
 * messages ("" at the top level, "call @f: " inside). */
static tir_status bind_args(interp *I, const tir_module *m, tir_loc loc, const char *what,
                            tir_func *f, const tir_dtype *dts, const tval *args,
                            tir_bindings *bind) {
    int np = f->nparams;
    /* an optimizer step over a model's tensors takes hundreds of parameters */
    const tir_type **types = calloc((size_t)np + 1, sizeof *types);
    const int64_t **sizes = calloc((size_t)np + 1, sizeof *sizes);
    if (!types || !sizes) {
        free(types);
        free(sizes);
        return tir_diag_set(I->d, TIR_ERR_OOM, m, loc, "out of memory");
    }
    char e[256] = "";
    int bad = -1;
    for (int p = 0; p < np && bad < 0; p++) {
        types[p] = &f->params[p]->type;
        sizes[p] = args[p].dims;
        if (dts[p] != types[p]->dtype || args[p].rank != types[p]->rank) bad = p;
    }
    if (bad < 0) {
        tir_status st = tir_bind_params(np, types, sizes, bind, &bad, NULL, e, sizeof e);
        if (st == TIR_ERR_OOM || st == TIR_OK) {
            free(types);
            free(sizes);
            if (st == TIR_OK) return TIR_OK;
            return tir_diag_set(I->d, st, m, loc, "out of memory");
        }
        if (bad < 0) bad = 0;
    }
    free(types);
    free(sizes);
    const tir_type *t = &f->params[bad]->type;
    char want[256], got[256];
    tir_type_print(t, want, sizeof want);
    type_str_of(dts[bad], args[bad].rank, args[bad].dims, got, sizeof got);
    return tir_diag_set(I->d, TIR_ERR_INVALID, m, loc, "%sargument %%%s: expected %s, got %s%s%s",
                        what, f->params[bad]->name ? f->params[bad]->name : "?", want, got,
                        e[0] ? ": " : "", e);
}

static tir_status run_call(frame *F, const tir_op *op, tval *outs) {
    interp *I = F->I;
    tir_func *callee = op->callee;
    if (!callee) return err(F, op, TIR_ERR_INTERNAL, "call without a callee");
    if (callee->nparams != op->nin)
        return err(F, op, TIR_ERR_INVALID, "@%s takes %d arguments, given %d", callee->name,
                   callee->nparams, op->nin);
    tval *args = calloc((size_t)op->nin + 1, sizeof *args);
    tir_dtype *dts = calloc((size_t)op->nin + 1, sizeof *dts);
    tir_status st = TIR_ERR_OOM;
    if (!args || !dts) {
        tir_diag_set(I->d, st, F->f->module, op->loc, "out of memory");
        goto done;
    }
    for (int i = 0; i < op->nin; i++) {
        args[i] = *in_val(F, op, i);
        dts[i] = op->in[i]->type.dtype;
    }
    tir_bindings bind = {0};
    char what[300];
    snprintf(what, sizeof what, "call @%s: ", callee->name);
    st = bind_args(I, F->f->module, op->loc, what, callee, dts, args, &bind);
    if (st == TIR_OK) st = run_func(I, callee, &bind, args, outs);
done:
    free(args);
    free(dts);
    return st;
}

static tir_func *decomposition(interp *I, const tir_op *op, tir_func *parent) {
    for (int i = 0; i < I->ndec; i++)
        if (I->dec[i].op == op) return I->dec[i].f;
    if (!I->scratch) {
        tir_module *sm = tir_module_new(I->m->ctx);
        if (!sm) {
            tir_diag_set(I->d, TIR_ERR_OOM, parent->module, op->loc, "out of memory");
            return NULL;
        }
        /* diagnostics from inside a decomposition point at the composite's own source line
         * (calls stay within I->m, so every composite shares its text). Borrowed, not copied:
         * the scratch module dies before tir_interpret returns, I->m after. */
        sm->filename = I->m->filename;
        sm->source = I->m->source;
        I->scratch = sm;
    }
    tir_module *sm = I->scratch;
    if (I->ndec == I->capdec) {
        int cap = I->capdec ? 2 * I->capdec : 8;
        decomp *nd = realloc(I->dec, (size_t)cap * sizeof *nd);
        if (!nd) {
            tir_diag_set(I->d, TIR_ERR_OOM, parent->module, op->loc, "out of memory");
            return NULL;
        }
        I->dec = nd;
        I->capdec = cap;
    }
    char name[64];
    snprintf(name, sizeof name, "decompose_%d", I->ndec);
    tir_func *f = tir_func_new(sm, tir_arena_strdup(sm->arena, name), op->loc, I->d);
    if (!f) return NULL;
    tir_value **params = tir_arena_alloc(sm->arena, sizeof(tir_value *) * (size_t)(op->nin + 1));
    if (!params) {
        tir_diag_set(I->d, TIR_ERR_OOM, parent->module, op->loc, "out of memory");
        return NULL;
    }
    for (int i = 0; i < op->nin; i++) {
        snprintf(name, sizeof name, "a%d", i);
        params[i] = tir_func_add_param(f, tir_arena_strdup(sm->arena, name), &op->in[i]->type,
                                       op->loc);
        if (!params[i]) {
            tir_diag_set(I->d, TIR_ERR_OOM, parent->module, op->loc, "out of memory");
            return NULL;
        }
    }
    /* a view of the op reading the scratch parameters; it is never inserted in any function */
    tir_op view = *op;
    view.in = params;
    tir_ib b = {.f = f, .loc = op->loc, .d = I->d, .failed = false};
    tir_value *outs[8] = {0};
    if (op->nout < 1 || op->nout > 8 || tir_decompose(&b, &view, outs) != TIR_OK) {
        if (!I->d || I->d->status == TIR_OK)
            tir_diag_set(I->d, TIR_ERR_INTERNAL, parent->module, op->loc, "cannot decompose %s",
                         tir_ops[op->code].name);
        return NULL;
    }
    tir_func_set_results(f, op->nout, outs);
    I->dec[I->ndec++] = (decomp){op, f};
    return f;
}

/* run-time preconditions of composites that shape inference cannot see through symbols */
static tir_status composite_check(frame *F, const tir_op *op) {
    if (op->code == TIR_OP_ROPE) {
        tval *x = in_val(F, op, 0);
        if (x->rank < 1 || x->dims[x->rank - 1] % 2 != 0)
            return err(F, op, TIR_ERR_INVALID, "the last dim must be even, not %lld",
                       (long long)(x->rank ? x->dims[x->rank - 1] : 0));
    }
    if (op->code == TIR_OP_ATTENTION) {
        int64_t hq = in_val(F, op, 0)->dims[1], hk = in_val(F, op, 1)->dims[1];
        /* zero heads on both sides is a valid empty attention (as in ir/infer.c) */
        if (hk == 0 ? hq != 0 : hk < 0 || hq % hk != 0)
            return err(F, op, TIR_ERR_INVALID,
                       "%lld query heads are not a multiple of %lld key/value heads",
                       (long long)hq, (long long)hk);
    }
    return TIR_OK;
}

static tir_status run_composite(frame *F, const tir_op *op, tval *outs) {
    tir_status st = composite_check(F, op);
    if (st) return st;
    tir_func *df = decomposition(F->I, op, F->f);
    if (!df) return F->I->d ? F->I->d->status : TIR_ERR_INTERNAL;
    tval args[8];
    if (op->nin > 8) return err(F, op, TIR_ERR_INTERNAL, "too many operands");
    for (int i = 0; i < op->nin; i++) args[i] = *in_val(F, op, i);
    /* the decomposition is written in the caller's symbols: same bindings */
    return run_func(F->I, df, F->bind, args, outs);
}

/* A fused region is a function in the caller's own symbols: it runs like a call, with the
 * caller's bindings, so its results are bit for bit those of its ops run unfused. */
static tir_status run_fused(frame *F, const tir_op *op, tval *outs) {
    tir_func *r = tir_op_region(op);
    if (!r || r->nparams != op->nin) return err(F, op, TIR_ERR_INTERNAL, "fused op without a matching region");
    tval *args = calloc((size_t)op->nin + 1, sizeof *args);
    if (!args) return err(F, op, TIR_ERR_OOM, "out of memory");
    for (int i = 0; i < op->nin; i++) args[i] = *in_val(F, op, i);
    tir_status st = run_func(F->I, r, F->bind, args, outs);
    free(args);
    return st;
}

/* ---------------------------------------------------------------- the op loop */

static bool same_shape(const tval *a, int rank, const int64_t *dims) {
    if (a->rank != rank) return false;
    for (int i = 0; i < rank; i++)
        if (a->dims[i] != dims[i]) return false;
    return true;
}

static tir_status exec_op(frame *F, const tir_op *op, tval *outs) {
    unsigned fl = tir_ops[op->code].flags;
    if (op->code == TIR_OP_CALL || (fl & (TIR_F_COMPOSITE | TIR_F_REGION))) {
        if (F->I->depth >= MAX_DEPTH)
            return err(F, op, TIR_ERR_INVALID, "calls nested deeper than %d", MAX_DEPTH);
        F->I->depth++;
        tir_status st = op->code == TIR_OP_CALL ? run_call(F, op, outs)
                        : (fl & TIR_F_REGION)   ? run_fused(F, op, outs)
                                                : run_composite(F, op, outs);
        F->I->depth--;
        if (st) return st;
        /* check the results against the op's declared types where the caller can evaluate them */
        for (int k = 0; k < op->nout; k++) {
            int64_t dims[TIR_MAX_RANK];
            if (tir_type_eval(&op->out[k]->type, F->bind, dims) == TIR_OK &&
                !same_shape(&outs[k], op->out[k]->type.rank, dims)) {
                char got[128], want[256];
                shape_str(outs[k].rank, outs[k].dims, got, sizeof got);
                tir_type_print(&op->out[k]->type, want, sizeof want);
                return err(F, op, TIR_ERR_INVALID, "result %d has shape %s, declared %s", k, got,
                           want);
            }
        }
        return TIR_OK;
    }
    if (op->code == TIR_OP_RESHAPE) {
        tval *x = in_val(F, op, 0);
        memset(&outs[0], 0, sizeof outs[0]);
        outs[0].rank = op->out[0]->type.rank;
        int64_t n;
        if (tir_type_eval(&op->out[0]->type, F->bind, outs[0].dims) != TIR_OK ||
            !numel_of(outs[0].rank, outs[0].dims, &n) || n != x->s->n)
            return shape_mismatch(F, op, x, &outs[0]);
        outs[0].s = retain(x->s); /* same row-major data, new shape */
        return TIR_OK;
    }
    for (int k = 0; k < op->nout; k++) {
        tir_status st = alloc_out(F, op, k, &outs[k]);
        if (st) return st;
    }
    if (tir_op_is_elementwise(op->code)) return run_elementwise(F, op, &outs[0]);
    switch (op->code) {
    case TIR_OP_SUM:
    case TIR_OP_MAX:
    case TIR_OP_MIN:
    case TIR_OP_MEAN: return run_reduce(F, op, &outs[0]);
    case TIR_OP_ARGMAX: return run_argmax(F, op, &outs[0]);
    case TIR_OP_TRANSPOSE: return run_transpose(F, op, &outs[0]);
    case TIR_OP_BROADCAST: return run_broadcast(F, op, &outs[0]);
    case TIR_OP_SLICE: return run_slice(F, op, &outs[0]);
    case TIR_OP_CONCAT: return run_concat(F, op, &outs[0]);
    case TIR_OP_SPLIT: return run_split(F, op, outs);
    case TIR_OP_TAKE: return run_take(F, op, &outs[0]);
    case TIR_OP_SCATTER_ADD: return run_scatter_add(F, op, &outs[0]);
    case TIR_OP_IOTA: return run_iota(F, op, &outs[0]);
    case TIR_OP_FULL: return run_full(F, op, &outs[0]);
    case TIR_OP_MATMUL: return run_matmul(F, op, &outs[0]);
    default: return err(F, op, TIR_ERR_UNSUPPORTED, "the interpreter does not run this op");
    }
}

static tir_status run_func(interp *I, tir_func *f, const tir_bindings *bind, const tval *args,
                           tval *res) {
    if (f->grad_of && f->nres == 0)
        return tir_diag_set(I->d, TIR_ERR_UNSUPPORTED, f->module, f->loc,
                            "@%s is a value_and_grad definition without a body: run the grad "
                            "pass first",
                            f->name);
    int nv = f->nvalues > 0 ? f->nvalues : 1;
    frame F = {.I = I, .f = f, .bind = bind, .vals = calloc((size_t)nv, sizeof(tval))};
    int *last = malloc((size_t)nv * sizeof(int));
    tir_status st = TIR_OK;
    if (!F.vals || !last) {
        st = tir_diag_set(I->d, TIR_ERR_OOM, f->module, f->loc, "out of memory");
        goto done;
    }
    /* last[id]: index of the last op reading the value; results live past the loop */
    for (int i = 0; i < nv; i++) last[i] = -1;
    for (int i = 0; i < f->nops; i++)
        for (int k = 0; k < f->ops[i]->nin; k++) last[f->ops[i]->in[k]->id] = i;
    for (int k = 0; k < f->nres; k++) last[f->results[k]->id] = f->nops;
    for (int p = 0; p < f->nparams; p++) {
        F.vals[f->params[p]->id] = args[p];
        retain(args[p].s);
    }
    for (int i = 0; i < f->nops; i++) {
        const tir_op *op = f->ops[i];
        /* results on the stack for the usual one or two, so deep call chains stay shallow */
        tval small[4], *outs = small;
        if (op->nout > 4 && !(outs = calloc((size_t)op->nout, sizeof *outs))) {
            st = tir_diag_set(I->d, TIR_ERR_OOM, f->module, op->loc, "out of memory");
            goto done;
        }
        memset(outs, 0, sizeof(tval) * (size_t)(op->nout > 4 ? op->nout : 4));
        st = exec_op(&F, op, outs);
        for (int k = 0; k < op->nout; k++) {
            int id = op->out[k]->id;
            if (st || last[id] < 0) release(outs[k].s); /* failed, or dead */
            else F.vals[id] = outs[k];
        }
        if (outs != small) free(outs);
        if (st) goto done;
        for (int k = 0; k < op->nin; k++) {
            int id = op->in[k]->id;
            if (last[id] == i && F.vals[id].s) {
                release(F.vals[id].s);
                F.vals[id].s = NULL;
            }
        }
    }
    for (int k = 0; k < f->nres; k++) {
        res[k] = F.vals[f->results[k]->id];
        retain(res[k].s);
    }
done:
    if (F.vals)
        for (int i = 0; i < nv; i++) release(F.vals[i].s);
    free(F.vals);
    free(last);
    return st;
}

/* ---------------------------------------------------------------- the public entry point */

tir_status tir_interpret(tir_module *m, const char *func, int nargs, tir_tensor *const *args,
                         int nres, tir_tensor **results, tir_diag *d) {
    if (results)
        for (int i = 0; i < nres; i++) results[i] = NULL;
    if (!m || !func) return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "no module or function name");
    tir_func *f = tir_module_find(m, func);
    tir_loc nl = {0, 0};
    if (!f) return tir_diag_set(d, TIR_ERR_INVALID, m, nl, "no function @%s in the module", func);
    if (f->grad_of && f->nres == 0)
        return tir_diag_set(d, TIR_ERR_UNSUPPORTED, m, f->loc,
                            "@%s is a value_and_grad definition without a body: run the grad "
                            "pass first",
                            f->name);
    if (nargs != f->nparams)
        return tir_diag_set(d, TIR_ERR_INVALID, m, f->loc, "@%s takes %d arguments, given %d",
                            f->name, f->nparams, nargs);
    if (nres != f->nres || (nres > 0 && !results))
        return tir_diag_set(d, TIR_ERR_INVALID, m, f->loc, "@%s returns %d results, asked for %d",
                            f->name, f->nres, nres);
    for (int i = 0; i < nargs; i++)
        if (!args || !args[i])
            return tir_diag_set(d, TIR_ERR_INVALID, m, f->loc, "argument %d is NULL", i);

    interp I = {.m = m, .d = d};
    tir_status st = TIR_OK;
    tval *av = calloc((size_t)nargs + 1, sizeof *av);
    tval *rv = calloc((size_t)nres + 1, sizeof *rv);
    tir_dtype *dts = calloc((size_t)nargs + 1, sizeof *dts);
    if (!av || !rv || !dts) {
        st = tir_diag_set(d, TIR_ERR_OOM, m, nl, "out of memory");
        goto done;
    }
    for (int i = 0; i < nargs; i++) {
        int r = tir_tensor_rank(args[i]);
        if (r < 0 || r > TIR_MAX_RANK) {
            st = tir_diag_set(d, TIR_ERR_INVALID, m, nl, "argument %d has rank %d", i, r);
            goto done;
        }
        av[i].rank = r;
        for (int j = 0; j < r; j++) av[i].dims[j] = tir_tensor_dim(args[i], j);
        dts[i] = tir_tensor_dtype(args[i]);
    }
    tir_bindings bind = {0};
    st = bind_args(&I, m, f->loc, "", f, dts, av, &bind);
    if (st) goto done;
    for (int i = 0; i < nargs; i++) {
        int64_t n = tir_tensor_numel(args[i]);
        if (!(av[i].s = store_new(&I, m, nl, n))) {
            st = d ? d->status : TIR_ERR_OOM;
            goto done;
        }
        for (int64_t k = 0; k < n; k++) av[i].s->d[k] = tir_tensor_get(args[i], k);
    }
    st = run_func(&I, f, &bind, av, rv);
    if (st) goto done;
    for (int k = 0; k < nres; k++) {
        tir_tensor *t = tir_tensor_new(f->results[k]->type.dtype, rv[k].rank, rv[k].dims);
        if (!t) {
            st = tir_diag_set(d, TIR_ERR_OOM, m, nl, "out of memory creating result %d", k);
            for (int j = 0; j < k; j++) {
                tir_tensor_free(results[j]);
                results[j] = NULL;
            }
            goto done;
        }
        for (int64_t i = 0; i < rv[k].s->n; i++) tir_tensor_set(t, i, rv[k].s->d[i]);
        results[k] = t;
    }
done:
    if (av)
        for (int i = 0; i < nargs; i++) release(av[i].s);
    if (rv)
        for (int k = 0; k < nres; k++) release(rv[k].s);
    free(av);
    free(rv);
    free(dts);
    free(I.dec);
    if (I.scratch) tir_module_free(I.scratch);
    return st;
}
