/* composite.c: the decomposition of every composite op (TIR_F_COMPOSITE in ops.def) into core
 * ops. This is the definition of what a composite means: the interpreter runs it, the default
 * gradient differentiates it, and a hand-written kernel for the op must agree with it.
 *
 * Precision: 16-bit and 8-bit float inputs are cast to f32, the whole decomposition computes in
 * f32, and the result is cast back once at the end (so a fused kernel that keeps f32 in registers
 * matches it); f32 and f64 compute in their own dtype.
 *
 * Symbolic dims: every shape built here is an expression of the operands' dims, so one
 * decomposition serves every binding. Where a size is needed as a tensor value (the causal
 * offset S - T, head counts, a symbolic head dim for the default scale) it is a constant when the dims are,
 * and otherwise a sum of ones over that dim, which any backend folds once the dims are bound.
 *
 * Ops are appended in statement order (never two builder calls as arguments of one call, whose
 * evaluation order C leaves open), so the printed decomposition is the same with every compiler. */
#include "ir.h"

static tir_dtype compute_dtype(tir_dtype t) {
    return (t == TIR_F64 || t == TIR_F32) ? t : TIR_F32;
}

static tir_context *ctx_of(tir_ib *b) { return b->f->module->ctx; }
static tir_module *mod_of(tir_ib *b) { return b->f->module; }

static tir_value *reduce1(tir_ib *b, tir_opcode code, tir_value *x, int axis, bool keep) {
    int64_t ax = axis;
    return tir_ib_reduce(b, code, x, 1, &ax, keep);
}

static tir_value *konst(tir_ib *b, double v, tir_dtype dt) { return tir_ib_const(b, v, dt); }

/* A dim as a rank-0 tensor of dtype dt: a constant when it is one, else sum(full(1, [d])). */
static tir_value *dim_value(tir_ib *b, const tir_dim *d, tir_dtype dt) {
    int64_t v;
    if (tir_dim_is_const(d, &v)) return konst(b, (double)v, dt);
    tir_type t = {.dtype = dt, .rank = 1, .dims = {d}};
    return tir_ib_reduce(b, TIR_OP_SUM, tir_ib_full(b, 1.0, &t), 0, NULL, false);
}

static tir_value *iota(tir_ib *b, int rank, const tir_dim *const *dims, int axis, tir_dtype dt) {
    tir_attr_value a[3] = {
        tir_a_shape(mod_of(b), "shape", rank, dims),
        tir_a_int("axis", axis),
        tir_a_dtype("dtype", dt),
    };
    return tir_ib_op(b, TIR_OP_IOTA, 0, NULL, 3, a);
}

static tir_value *where(tir_ib *b, tir_value *c, tir_value *x, tir_value *y) {
    tir_value *in[3] = {c, x, y};
    return tir_ib_op(b, TIR_OP_WHERE, 3, in, 0, NULL);
}

/* softmax / log_softmax along axis (already normalised), max-subtracted for range */
static tir_value *softmax_core(tir_ib *b, tir_value *x, int axis, bool log_) {
    tir_value *m = reduce1(b, TIR_OP_MAX, x, axis, true);
    tir_value *xm = tir_ib_bin(b, TIR_OP_SUB, x, m);
    tir_value *e = tir_ib_un(b, TIR_OP_EXP, xm);
    tir_value *s = reduce1(b, TIR_OP_SUM, e, axis, true);
    if (log_) return tir_ib_bin(b, TIR_OP_SUB, xm, tir_ib_un(b, TIR_OP_LOG, s));
    return tir_ib_bin(b, TIR_OP_DIV, e, s);
}

static bool norm_axis(tir_ib *b, const tir_op *op, int64_t axis, int rank, int *out) {
    if (tir_norm_axis(axis, rank, out)) return true;
    tir_diag_set(b->d, TIR_ERR_TYPE, mod_of(b), op->loc, "%s: axis %lld out of range for rank %d",
                 tir_ops[op->code].name, (long long)axis, rank);
    b->failed = true;
    return false;
}

/* linear(x[..., K], w[N, K], b[N]?) = x wᵀ + b; a rank-1 x goes through [1, K] because matmul
 * needs rank >= 2; w's missing batch dims broadcast against x's */
static tir_value *dec_linear(tir_ib *b, const tir_op *op, tir_dtype cdt) {
    tir_value *x = tir_ib_cast(b, op->in[0], cdt);
    tir_value *w = tir_ib_cast(b, op->in[1], cdt);
    tir_value *y;
    if (op->in[0]->type.rank == 1) {
        const tir_dim *d2[2] = {tir_dim_const(ctx_of(b), 1), op->in[0]->type.dims[0]};
        y = tir_ib_matmul(b, tir_ib_reshape(b, x, 2, d2), w, false, true);
        const tir_dim *d1[1] = {op->in[1]->type.dims[0]};
        y = tir_ib_reshape(b, y, 1, d1);
    } else {
        y = tir_ib_matmul(b, x, w, false, true);
    }
    if (op->nin == 3) y = tir_ib_bin(b, TIR_OP_ADD, y, tir_ib_cast(b, op->in[2], cdt));
    return y;
}

static tir_value *dec_softmax(tir_ib *b, const tir_op *op, tir_dtype cdt, bool log_) {
    int axis;
    if (!norm_axis(b, op, tir_attr_int(op, "axis", -1), op->in[0]->type.rank, &axis)) return NULL;
    return softmax_core(b, tir_ib_cast(b, op->in[0], cdt), axis, log_);
}

/* rmsnorm(x[..., D], w[D]) = x * rsqrt(mean(x*x, -1) + eps) * w, in that association (the same
 * as the hand-written examples/rmsnorm.tir, so the two agree bit for bit) */
static tir_value *dec_rmsnorm(tir_ib *b, const tir_op *op, tir_dtype cdt) {
    int last = op->in[0]->type.rank - 1;
    tir_value *x = tir_ib_cast(b, op->in[0], cdt);
    tir_value *w = tir_ib_cast(b, op->in[1], cdt);
    tir_value *ms = reduce1(b, TIR_OP_MEAN, tir_ib_bin(b, TIR_OP_MUL, x, x), last, true);
    tir_value *eps = konst(b, tir_attr_float(op, "eps", 1e-5), cdt);
    tir_value *r = tir_ib_un(b, TIR_OP_RSQRT, tir_ib_bin(b, TIR_OP_ADD, ms, eps));
    return tir_ib_bin(b, TIR_OP_MUL, tir_ib_bin(b, TIR_OP_MUL, x, r), w);
}

/* layernorm(x[..., D], w[D], b[D]) with the biased variance over the last axis (PyTorch's) */
static tir_value *dec_layernorm(tir_ib *b, const tir_op *op, tir_dtype cdt) {
    int last = op->in[0]->type.rank - 1;
    tir_value *x = tir_ib_cast(b, op->in[0], cdt);
    tir_value *w = tir_ib_cast(b, op->in[1], cdt);
    tir_value *bias = tir_ib_cast(b, op->in[2], cdt);
    tir_value *mu = reduce1(b, TIR_OP_MEAN, x, last, true);
    tir_value *xc = tir_ib_bin(b, TIR_OP_SUB, x, mu);
    tir_value *var = reduce1(b, TIR_OP_MEAN, tir_ib_bin(b, TIR_OP_MUL, xc, xc), last, true);
    tir_value *eps = konst(b, tir_attr_float(op, "eps", 1e-5), cdt);
    tir_value *r = tir_ib_un(b, TIR_OP_RSQRT, tir_ib_bin(b, TIR_OP_ADD, var, eps));
    tir_value *y = tir_ib_bin(b, TIR_OP_MUL, tir_ib_bin(b, TIR_OP_MUL, xc, r), w);
    return tir_ib_bin(b, TIR_OP_ADD, y, bias);
}

/* cross_entropy(logits[N, C], targets[N]): per row logsumexp(row) - row[target], written as
 * log(sum(exp(row - m))) - (row[target] - m) so that m never cancels. The picked logit is a
 * one-hot sum (iota == target), which never indexes memory, so no target value can read out of
 * range; ignored rows use target 0 and are zeroed. "mean" divides by the number of rows not
 * ignored; when every row is ignored that is 0/0 = NaN, exactly as PyTorch. */
static tir_value *dec_cross_entropy(tir_ib *b, const tir_op *op, tir_dtype cdt) {
    tir_value *x = tir_ib_cast(b, op->in[0], cdt);
    tir_value *t = op->in[1];
    tir_dtype tdt = t->type.dtype;
    const tir_dim *n = op->in[0]->type.dims[0];
    const char *red = tir_attr_str(op, "reduction", "mean");
    if (strcmp(red, "mean") != 0 && strcmp(red, "sum") != 0 && strcmp(red, "none") != 0) {
        tir_diag_set(b->d, TIR_ERR_TYPE, mod_of(b), op->loc,
                     "cross_entropy: reduction must be \"mean\", \"sum\" or \"none\", not \"%s\"",
                     red);
        b->failed = true;
        return NULL;
    }
    double ignore = (double)tir_attr_int(op, "ignore_index", -100);

    tir_value *m = reduce1(b, TIR_OP_MAX, x, 1, true);                       /* [N, 1] */
    tir_value *xm = tir_ib_bin(b, TIR_OP_SUB, x, m);                          /* [N, C] */
    tir_value *lse = tir_ib_un(b, TIR_OP_LOG,
                               reduce1(b, TIR_OP_SUM, tir_ib_un(b, TIR_OP_EXP, xm), 1, false));
    tir_value *valid = tir_ib_bin(b, TIR_OP_NE, t, konst(b, ignore, tdt));   /* [N] bool */
    tir_value *safe = where(b, valid, t, konst(b, 0, tdt));
    const tir_dim *n1[2] = {n, tir_dim_const(ctx_of(b), 1)};
    tir_value *cls = iota(b, 2, op->in[0]->type.dims, 1, tdt);                /* [N, C] */
    tir_value *onehot = tir_ib_bin(b, TIR_OP_EQ, cls, tir_ib_reshape(b, safe, 2, n1));
    tir_value *picked = reduce1(b, TIR_OP_SUM, where(b, onehot, xm, konst(b, 0, cdt)), 1, false);
    tir_value *raw = tir_ib_bin(b, TIR_OP_SUB, lse, picked);                  /* [N] */
    tir_value *loss = where(b, valid, raw, konst(b, 0, cdt));
    if (strcmp(red, "none") == 0) return loss;
    tir_value *total = tir_ib_reduce(b, TIR_OP_SUM, loss, 0, NULL, false);
    if (strcmp(red, "sum") == 0) return total;
    tir_value *count = tir_ib_reduce(b, TIR_OP_SUM, tir_ib_cast(b, valid, cdt), 0, NULL, false);
    return tir_ib_bin(b, TIR_OP_DIV, total, count);
}

/* rope(x[..., T, D], cos[T, D], sin[T, D]) = x*cos + rot(x)*sin, rot(x) = concat(-x2, x1) over
 * the halves x1 = x[..., :D/2], x2 = x[..., D/2:].
 *
 * When D is structurally even (a constant, or 2*H) the rotation is written as index maps, so that
 * the fusion pass makes the whole op one elementwise kernel: x viewed as [..., T, 2, D/2], its two
 * halves sliced out and broadcast back over the 2-axis, and rot = where(i == 0, -hi, lo) on an
 * iota over that axis; cos and sin are viewed the same way, and the result is cast to x's dtype
 * before it is viewed as [..., T, D] again (a cast after the reshape would be a second kernel).
 * Every element is the same f32 expression as in the split/concat form (the negation and the
 * selection are exact), so both give the same bits.
 *
 * A symbolic D that is not structurally even (a bare `D`) cannot be viewed as [2, D/2], so it
 * goes through split and concat, whose sizes are dims; an odd D is rejected before this runs
 * (shape inference, or the interpreter at run time). */
static tir_value *rope_split_concat(tir_ib *b, const tir_op *op, tir_dtype cdt) {
    tir_context *c = ctx_of(b);
    int last = op->in[0]->type.rank - 1;
    const tir_dim *d = op->in[0]->type.dims[last];
    const tir_dim *sizes[2];
    sizes[0] = tir_dim_div(c, d, tir_dim_const(c, 2));
    sizes[1] = sizes[0] ? tir_dim_sub(c, d, sizes[0]) : NULL;
    if (!sizes[0] || !sizes[1]) {
        tir_diag_set(b->d, TIR_ERR_INTERNAL, mod_of(b), op->loc, "rope: cannot halve the last dim");
        b->failed = true;
        return NULL;
    }
    tir_value *x = tir_ib_cast(b, op->in[0], cdt);
    tir_value *cs = tir_ib_cast(b, op->in[1], cdt);
    tir_value *sn = tir_ib_cast(b, op->in[2], cdt);
    tir_attr_value sa[2] = {tir_a_int("axis", last), tir_a_shape(mod_of(b), "sizes", 2, sizes)};
    tir_value *x1 = tir_ib_op(b, TIR_OP_SPLIT, 1, &x, 2, sa);
    if (!x1) return NULL;
    tir_value *x2 = x1->def->out[1];
    tir_value *cat_in[2] = {tir_ib_un(b, TIR_OP_NEG, x2), x1};
    tir_attr_value ca = tir_a_int("axis", last);
    tir_value *rot = tir_ib_op(b, TIR_OP_CONCAT, 2, cat_in, 1, &ca);
    tir_value *xc = tir_ib_bin(b, TIR_OP_MUL, x, cs);
    return tir_ib_bin(b, TIR_OP_ADD, xc, tir_ib_bin(b, TIR_OP_MUL, rot, sn));
}

/* half h (0 or 1) of v[..., 2, H] along axis -2, broadcast back to v's shape */
static tir_value *rope_half(tir_ib *b, tir_value *v, int h) {
    if (!v) return NULL;
    int ax = v->type.rank - 2;
    tir_attr_value a[3] = {tir_a_int("axis", ax), tir_a_int("start", h), tir_a_int("end", h + 1)};
    tir_value *s = tir_ib_op(b, TIR_OP_SLICE, 1, &v, 3, a);
    return tir_ib_broadcast(b, s, v->type.rank, v->type.dims);
}

static tir_value *dec_rope(tir_ib *b, const tir_op *op, tir_dtype cdt) {
    tir_context *c = ctx_of(b);
    const tir_type *xt = &op->in[0]->type;
    int rank = xt->rank;
    const tir_dim *D = xt->dims[rank - 1], *T = xt->dims[rank - 2], *two = tir_dim_const(c, 2);
    const tir_dim *h = tir_dim_exact_div(c, D, two);
    if (!h || tir_dim_mul(c, h, two) != D || rank + 1 > TIR_MAX_RANK)
        return rope_split_concat(b, op, cdt);
    const tir_dim *v[TIR_MAX_RANK];
    for (int i = 0; i < rank - 1; i++) v[i] = xt->dims[i];
    v[rank - 1] = two;
    v[rank] = h;
    const tir_dim *tv[3] = {T, two, h};
    tir_value *x = tir_ib_reshape(b, tir_ib_cast(b, op->in[0], cdt), rank + 1, v);
    tir_value *lo = rope_half(b, x, 0);
    tir_value *hi = rope_half(b, x, 1);
    const tir_dim *i2[2] = {two, tir_dim_const(c, 1)};
    tir_value *idx = iota(b, 2, i2, 0, TIR_I32);
    tir_value *first = tir_ib_bin(b, TIR_OP_EQ, idx, konst(b, 0, TIR_I32));
    tir_value *rot = where(b, first, tir_ib_un(b, TIR_OP_NEG, hi), lo);
    tir_value *cs = tir_ib_reshape(b, tir_ib_cast(b, op->in[1], cdt), 3, tv);
    tir_value *sn = tir_ib_reshape(b, tir_ib_cast(b, op->in[2], cdt), 3, tv);
    tir_value *xc = tir_ib_bin(b, TIR_OP_MUL, x, cs);
    tir_value *y = tir_ib_bin(b, TIR_OP_ADD, xc, tir_ib_bin(b, TIR_OP_MUL, rot, sn));
    return tir_ib_reshape(b, tir_ib_cast(b, y, xt->dtype), rank, xt->dims);
}

/* x[B, Hk, S, E] -> [B, Hq, S, E], head h reading kv head h / G with G = Hq/Hk. When Hq is
 * structurally G*Hk (constants, or 4*G over G) this is reshape to [B, Hk, 1, S, E], broadcast to
 * [B, Hk, G, S, E], reshape to [B, Hq, S, E] (free in a kernel). For independent symbols Hq, Hk
 * no reshape can be typed, so it is a take along the head axis at h*Hk/Hq, which is h/G whenever
 * Hq = G*Hk (the interpreter and the runtime check that when the symbols are bound). */
static tir_value *repeat_heads(tir_ib *b, tir_value *x, const tir_dim *hq) {
    tir_context *c = ctx_of(b);
    const tir_dim *const *xd = x->type.dims;
    const tir_dim *hk = xd[1];
    if (hk == hq) return x;
    const tir_dim *g = tir_dim_exact_div(c, hq, hk);
    if (g && tir_dim_mul(c, hk, g) == hq) {
        const tir_dim *d5[5] = {xd[0], hk, tir_dim_const(c, 1), xd[2], xd[3]};
        tir_value *x5 = tir_ib_reshape(b, x, 5, d5);
        d5[2] = g;
        x5 = tir_ib_broadcast(b, x5, 5, d5);
        const tir_dim *d4[4] = {xd[0], hq, xd[2], xd[3]};
        return tir_ib_reshape(b, x5, 4, d4);
    }
    tir_value *h = iota(b, 1, &hq, 0, TIR_I64);
    tir_value *hk_h = tir_ib_bin(b, TIR_OP_MUL, h, dim_value(b, hk, TIR_I64));
    tir_value *idx = tir_ib_bin(b, TIR_OP_DIV, hk_h, dim_value(b, hq, TIR_I64));
    tir_value *in[2] = {x, idx};
    tir_attr_value a = tir_a_int("axis", 1);
    return tir_ib_op(b, TIR_OP_TAKE, 2, in, 1, &a);
}

/* attention(q[B, Hq, T, D], k[B, Hk, S, D], v[B, Hk, S, Dv]) -> [B, Hq, T, Dv]:
 * softmax(q kᵀ * scale [masked]) v. Causal aligns the last query with the last key: key s is
 * hidden from query t when s - t > S - T; a fully masked row gives NaN, as PyTorch's. */
static tir_value *dec_attention(tir_ib *b, const tir_op *op, tir_dtype cdt) {
    tir_context *c = ctx_of(b);
    const tir_dim *const *qd = op->in[0]->type.dims;
    const tir_dim *const *kd = op->in[1]->type.dims;
    const tir_dim *t = qd[2], *s = kd[2];
    tir_value *q = tir_ib_cast(b, op->in[0], cdt);
    tir_value *k = tir_ib_cast(b, op->in[1], cdt), *v = tir_ib_cast(b, op->in[2], cdt);
    if (!k || !v) return NULL;
    k = repeat_heads(b, k, qd[1]);
    v = repeat_heads(b, v, qd[1]);

    tir_value *scale;
    if (tir_op_attr(op, "scale")) {
        scale = konst(b, tir_attr_float(op, "scale", 1.0), cdt);
    } else {
        int64_t dv;
        scale = tir_dim_is_const(qd[3], &dv)
                    ? konst(b, 1.0 / sqrt((double)dv), cdt)
                    : tir_ib_un(b, TIR_OP_RSQRT, dim_value(b, qd[3], cdt));
    }
    tir_value *sc = tir_ib_bin(b, TIR_OP_MUL, tir_ib_matmul(b, q, k, false, true), scale);
    if (tir_attr_bool(op, "causal", false)) {
        const tir_dim *ts[2] = {t, s};
        tir_value *si = iota(b, 2, ts, 1, TIR_I64);
        tir_value *diff = tir_ib_bin(b, TIR_OP_SUB, si, iota(b, 2, ts, 0, TIR_I64)); /* s - t */
        const tir_dim *off = tir_dim_sub(c, s, t);
        int64_t offv;
        tir_value *offset;
        if (off && tir_dim_is_const(off, &offv)) {
            offset = konst(b, (double)offv, TIR_I64);
        } else {
            tir_value *sv = dim_value(b, s, TIR_I64);
            offset = tir_ib_bin(b, TIR_OP_SUB, sv, dim_value(b, t, TIR_I64));
        }
        tir_value *mask = tir_ib_bin(b, TIR_OP_GT, diff, offset);
        sc = where(b, mask, konst(b, -INFINITY, cdt), sc);
    }
    return tir_ib_matmul(b, softmax_core(b, sc, 3, false), v, false, false);
}

tir_status tir_decompose(tir_ib *b, const tir_op *op, tir_value **out) {
    if (!(tir_ops[op->code].flags & TIR_F_COMPOSITE))
        return tir_diag_set(b->d, TIR_ERR_INTERNAL, mod_of(b), op->loc,
                            "decompose: %s is not a composite op", tir_ops[op->code].name);
    if (b->failed) return b->d ? b->d->status : TIR_ERR_INTERNAL;
    tir_dtype odt = op->in[0]->type.dtype;
    tir_dtype cdt = compute_dtype(odt);
    tir_value *r = NULL;
    switch (op->code) {
    case TIR_OP_LINEAR: r = dec_linear(b, op, cdt); break;
    case TIR_OP_SOFTMAX: r = dec_softmax(b, op, cdt, false); break;
    case TIR_OP_LOG_SOFTMAX: r = dec_softmax(b, op, cdt, true); break;
    case TIR_OP_RMSNORM: r = dec_rmsnorm(b, op, cdt); break;
    case TIR_OP_LAYERNORM: r = dec_layernorm(b, op, cdt); break;
    case TIR_OP_CROSS_ENTROPY: r = dec_cross_entropy(b, op, cdt); break;
    case TIR_OP_ROPE: r = dec_rope(b, op, cdt); break;
    case TIR_OP_ATTENTION: r = dec_attention(b, op, cdt); break;
    default:
        return tir_diag_set(b->d, TIR_ERR_INTERNAL, mod_of(b), op->loc,
                            "decompose: no decomposition for %s", tir_ops[op->code].name);
    }
    r = tir_ib_cast(b, r, odt);
    if (b->failed || !r) {
        if (b->d && b->d->status != TIR_OK) return b->d->status;
        return tir_diag_set(b->d, TIR_ERR_INTERNAL, mod_of(b), op->loc,
                            "decompose: building %s failed", tir_ops[op->code].name);
    }
    /* the replacement must have the op's own type, or every user of it would be ill-typed */
    if (op->nout >= 1 && op->out && op->out[0] && !tir_type_equal(&r->type, &op->out[0]->type)) {
        char want[256], got[256];
        tir_type_print(&op->out[0]->type, want, sizeof want);
        tir_type_print(&r->type, got, sizeof got);
        b->failed = true;
        return tir_diag_set(b->d, TIR_ERR_INTERNAL, mod_of(b), op->loc,
                            "decompose: %s gave %s, expected %s", tir_ops[op->code].name, got, want);
    }
    out[0] = r;
    return TIR_OK;
}
