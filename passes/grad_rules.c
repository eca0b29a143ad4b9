/* grad_rules.c: one reverse-mode rule per differentiable op (TIR_F_DIFF), in a table indexed
 * by opcode; grad.c's driver calls them. A rule builds, in the function being differentiated,
 * the gradient of each operand that needs one from the adjoints of the op's results. Gradients
 * may keep the result's (broadcast) shape: the driver sums them back to the operand once.
 *
 * Conventions (documented in docs/tir.md's autodiff section):
 *   relu'(0) = 0 and abs'(0) = 0;
 *   maximum/minimum split the gradient in half between the operands on ties (PyTorch);
 *   max/min reductions split it evenly among all tied elements (PyTorch's amax/amin);
 *   where: to a and b by the mask, nothing to the condition; integer/bool operands get none.
 * Composites have their own memory-lean rules instead of differentiating their decomposition:
 * norms recompute the per-row rstd, softmax/log_softmax use the output, cross_entropy uses the
 * logits and a per-row log-sum-exp, attention recomputes probabilities from q, k and the row
 * log-sum-exp (flash-attention style), rope rotates the adjoint the other way. 16-bit inputs of
 * composites are computed in f32 (as their decompositions are) and cast back by the driver.
 *
 * requires: op in b->f with its operands; gout[i] of the result types or NULL.
 * maintains: the forward ops (rules only append).
 * breaks: nothing. */
#include "rewrite.h"

#define RULE_ARGS                                                                             \
    tir_ib *b, const tir_op *op, tir_value *const *gout, const bool *need, tir_value **gin
#define UN(code, x) tir_ib_un(b, TIR_OP_##code, (x))
#define BIN(code, x, y) tir_ib_bin(b, TIR_OP_##code, (x), (y))

/* Op order. Every builder call (BIN, UN, K, where3, red1, dim_scalar, reshape_to, ...) appends
 * ops to the function, and C leaves the order in which a call's arguments are evaluated
 * unspecified: in BIN(MUL, K(b, 2.0, x), BIN(ADD, x, y)) gcc and clang create the constant and
 * the add in different orders, and the printed IR (and every golden after it) would differ
 * between compilers. So no call here gets more than one argument that builds ops: such
 * arguments are evaluated into locals first, left to right, innermost first (the order a
 * left-to-right evaluation of the nested expression would give). A single nested builder call
 * is fine: it runs before the call it is an argument of, whatever the compiler. */

#define RMSNORM_EPS 1e-5 /* the defaults of ir/composite.c */
#define LAYERNORM_EPS 1e-5

/* ---------------------------------------------------------------- helpers */

static tir_status fail(tir_ib *b, tir_status s, const char *msg) {
    b->failed = true;
    return tir_diag_set(b->d, s, b->f->module, b->loc, "%s", msg);
}

/* scalar constant of v's dtype (NULL propagates) */
static tir_value *K(tir_ib *b, double c, const tir_value *v) {
    return v ? tir_ib_const(b, c, v->type.dtype) : NULL;
}

static tir_value *where3(tir_ib *b, tir_value *c, tir_value *x, tir_value *y) {
    tir_value *in[3] = {c, x, y};
    if (!c || !x || !y) return NULL;
    return tir_ib_op(b, TIR_OP_WHERE, 3, in, 0, NULL);
}

static tir_value *zeros(tir_ib *b, const tir_type *t) { return tir_ib_full(b, 0.0, t); }

static tir_value *iota(tir_ib *b, int rank, const tir_dim *const *dims, int axis, tir_dtype dt) {
    tir_attr_value a[3] = {tir_a_shape(b->f->module, "shape", rank, dims), tir_a_int("axis", axis),
                           tir_a_dtype("dtype", dt)};
    return tir_ib_op(b, TIR_OP_IOTA, 0, NULL, 3, a);
}

static bool dim_is_zero(const tir_dim *d) {
    int64_t v;
    return tir_dim_is_const(d, &v) && v == 0;
}

/* x reduced over one axis */
static tir_value *red1(tir_ib *b, tir_opcode code, tir_value *x, int axis, bool keep) {
    int64_t a = axis;
    return x ? tir_ib_reduce(b, code, x, 1, &a, keep) : NULL;
}

static tir_value *reshape_to(tir_ib *b, tir_value *x, int rank, const tir_dim *const *dims) {
    if (!x) return NULL;
    bool same = x->type.rank == rank;
    for (int i = 0; same && i < rank; i++) same = x->type.dims[i] == dims[i];
    return same ? x : tir_ib_reshape(b, x, rank, dims);
}

/* 16-bit floats compute in f32 inside composite rules */
static tir_value *up(tir_ib *b, tir_value *x) {
    if (!x) return NULL;
    tir_dtype t = x->type.dtype;
    return (t == TIR_F64 || t == TIR_F32 || !tir_dtype_is_float(t)) ? x : tir_ib_cast(b, x, TIR_F32);
}

static int norm_axis(tir_ib *b, int64_t axis, int rank) {
    int a = 0;
    if (!tir_norm_axis(axis, rank, &a)) {
        fail(b, TIR_ERR_TYPE, "axis out of range");
        return -1;
    }
    return a;
}

/* the size of a (possibly symbolic) dim as a scalar of dtype dt: a constant when it is one,
 * otherwise counted at run time by summing ones (there is no op that reads a symbol) */
static tir_value *dim_scalar(tir_ib *b, const tir_dim *dim, tir_dtype dt) {
    int64_t v;
    if (tir_dim_is_const(dim, &v)) return tir_ib_const(b, (double)v, dt);
    tir_dtype acc = tir_dtype_is_float(dt) ? (dt == TIR_F64 ? TIR_F64 : TIR_F32) : TIR_I64;
    tir_type t = {.dtype = acc, .rank = 1, .dims = {dim}};
    tir_value *ones = tir_ib_full(b, 1.0, &t); /* written as the decompositions do, for CSE */
    return tir_ib_cast(b, ones ? tir_ib_reduce(b, TIR_OP_SUM, ones, 0, NULL, false) : NULL, dt);
}

/* which axes a reduction reduces (axes= absent: all) */
static bool reduced_axes(tir_ib *b, const tir_op *op, int rank, bool red[TIR_MAX_RANK]) {
    const tir_attr_value *a = tir_op_attr(op, "axes");
    for (int i = 0; i < rank; i++) red[i] = a == NULL;
    for (int i = 0; a && i < a->u.ints.n; i++) {
        int ax = norm_axis(b, a->u.ints.v[i], rank);
        if (ax < 0) return false;
        red[ax] = true;
    }
    return true;
}

/* a reduction's adjoint broadcast back over the reduced axes (with 1s where they were) */
static tir_value *expand_reduced(tir_ib *b, tir_value *g, const tir_type *xt, const bool *red) {
    const tir_dim *kd[TIR_MAX_RANK];
    tir_context *ctx = b->f->module->ctx;
    for (int i = 0; i < xt->rank; i++) kd[i] = red[i] ? tir_dim_const(ctx, 1) : xt->dims[i];
    return reshape_to(b, g, xt->rank, kd);
}

static tir_value *bcast_to(tir_ib *b, tir_value *x, const tir_type *t) {
    if (!x) return NULL;
    bool same = x->type.rank == t->rank;
    for (int i = 0; same && i < t->rank; i++) same = x->type.dims[i] == t->dims[i];
    return same ? x : tir_ib_broadcast(b, x, t->rank, t->dims);
}

static tir_op *append_n(tir_ib *b, tir_opcode code, int nin, tir_value *const *in, int nattrs,
                        const tir_attr_value *attrs) {
    if (b->failed) return NULL;
    for (int i = 0; i < nin; i++)
        if (!in[i]) return NULL;
    tir_op *op = tir_func_append_op(b->f, code, nin, in, nattrs, attrs, NULL, b->loc, b->d);
    if (!op) b->failed = true;
    return op;
}

/* ---------------------------------------------------------------- unary elementwise */

#define X0 op->in[0]
#define Y0 op->out[0]
#define G0 gout[0]

static tir_status r_neg(RULE_ARGS) { gin[0] = UN(NEG, G0); return TIR_OK; }
static tir_status r_exp(RULE_ARGS) { gin[0] = BIN(MUL, G0, Y0); return TIR_OK; }
static tir_status r_log(RULE_ARGS) { gin[0] = BIN(DIV, G0, X0); return TIR_OK; }
static tir_status r_sin(RULE_ARGS) { gin[0] = BIN(MUL, G0, UN(COS, X0)); return TIR_OK; }
static tir_status r_cos(RULE_ARGS) { gin[0] = UN(NEG, BIN(MUL, G0, UN(SIN, X0))); return TIR_OK; }

static tir_status r_sqrt(RULE_ARGS) { /* 1 / (2 sqrt x) */
    gin[0] = BIN(DIV, G0, BIN(MUL, Y0, K(b, 2.0, Y0)));
    return TIR_OK;
}

static tir_status r_rsqrt(RULE_ARGS) { /* -x^(-3/2) / 2 = -y^3 / 2 */
    tir_value *k = K(b, -0.5, Y0);
    tir_value *y3 = BIN(MUL, Y0, BIN(MUL, Y0, Y0));
    gin[0] = BIN(MUL, G0, BIN(MUL, k, y3));
    return TIR_OK;
}

static tir_status r_recip(RULE_ARGS) { gin[0] = UN(NEG, BIN(MUL, G0, BIN(MUL, Y0, Y0))); return TIR_OK; }

static tir_status r_tanh(RULE_ARGS) {
    tir_value *one = K(b, 1.0, Y0);
    tir_value *y2 = BIN(MUL, Y0, Y0);
    gin[0] = BIN(MUL, G0, BIN(SUB, one, y2));
    return TIR_OK;
}

static tir_status r_sigmoid(RULE_ARGS) {
    gin[0] = BIN(MUL, G0, BIN(MUL, Y0, BIN(SUB, K(b, 1.0, Y0), Y0)));
    return TIR_OK;
}

static tir_status r_relu(RULE_ARGS) { /* 0 at 0 */
    tir_value *pos = BIN(GT, X0, K(b, 0.0, X0));
    tir_value *zero = K(b, 0.0, G0);
    gin[0] = where3(b, pos, G0, zero);
    return TIR_OK;
}

static tir_status r_abs(RULE_ARGS) { /* sign(x), 0 at 0 */
    tir_value *z = K(b, 0.0, X0);
    tir_value *pos = BIN(GT, X0, z);
    tir_value *neg = BIN(LT, X0, z);
    tir_value *ng = UN(NEG, G0);
    tir_value *zero = K(b, 0.0, G0);
    gin[0] = where3(b, pos, G0, where3(b, neg, ng, zero));
    return TIR_OK;
}

static tir_status r_silu(RULE_ARGS) { /* s (1 + x (1 - s)) */
    tir_value *s = UN(SIGMOID, X0);
    tir_value *one = K(b, 1.0, X0);
    tir_value *xs = BIN(MUL, X0, BIN(SUB, K(b, 1.0, X0), s));
    tir_value *d = BIN(MUL, s, BIN(ADD, one, xs));
    gin[0] = BIN(MUL, G0, d);
    return TIR_OK;
}

static tir_status r_gelu(RULE_ARGS) {
    tir_value *x = X0, *d;
    if (strcmp(tir_attr_str(op, "approximate", "none"), "tanh") == 0) {
        /* y = x/2 (1 + t), t = tanh(c (x + a x^3)):
         * y' = (1 + t)/2 + x/2 (1 - t^2) c (1 + 3 a x^2) */
        const double c = 0.7978845608028654, a = 0.044715;
        tir_value *x2 = BIN(MUL, x, x);
        tir_value *kc = K(b, c, x), *ka = K(b, a, x);
        tir_value *inner = BIN(ADD, x, BIN(MUL, ka, BIN(MUL, x2, x)));
        tir_value *t = UN(TANH, BIN(MUL, kc, inner));
        tir_value *one = K(b, 1.0, x), *half = K(b, 0.5, x);
        tir_value *kc2 = K(b, c, x), *k3a = K(b, 3.0 * a, x);
        tir_value *du = BIN(MUL, kc2, BIN(ADD, one, BIN(MUL, k3a, x2)));
        tir_value *lhs = BIN(MUL, half, BIN(ADD, one, t));
        tir_value *hx = BIN(MUL, half, x);
        tir_value *sech2 = BIN(SUB, one, BIN(MUL, t, t));
        tir_value *rhs = BIN(MUL, hx, BIN(MUL, sech2, du));
        d = BIN(ADD, lhs, rhs);
    } else {
        /* y' = Phi(x) + x phi(x). There is no erf op; Phi(x) = y / x away from 0, and exactly
         * 1/2 at 0. The division keeps full relative precision, so this is Phi as y has it. */
        tir_value *at0 = BIN(EQ, x, K(b, 0.0, x));
        tir_value *khalf = K(b, 0.5, x);
        tir_value *ratio = BIN(DIV, Y0, x);
        tir_value *cdf = where3(b, at0, khalf, ratio);
        tir_value *kp = K(b, 0.3989422804014327, x), *km = K(b, -0.5, x);
        tir_value *xx = BIN(MUL, x, x);
        tir_value *pdf = BIN(MUL, kp, UN(EXP, BIN(MUL, km, xx)));
        d = BIN(ADD, cdf, BIN(MUL, x, pdf));
    }
    gin[0] = BIN(MUL, G0, d);
    return TIR_OK;
}

/* ---------------------------------------------------------------- binary elementwise */

static tir_status r_add(RULE_ARGS) { gin[0] = gin[1] = G0; return TIR_OK; }

static tir_status r_sub(RULE_ARGS) {
    gin[0] = G0;
    if (need[1]) gin[1] = UN(NEG, G0);
    return TIR_OK;
}

static tir_status r_mul(RULE_ARGS) {
    if (need[0]) gin[0] = BIN(MUL, G0, op->in[1]);
    if (need[1]) gin[1] = BIN(MUL, G0, op->in[0]);
    return TIR_OK;
}

static tir_status r_div(RULE_ARGS) { /* d/db (a/b) = -(a/b)/b */
    if (need[0]) gin[0] = BIN(DIV, G0, op->in[1]);
    if (need[1]) gin[1] = UN(NEG, BIN(DIV, BIN(MUL, G0, Y0), op->in[1]));
    return TIR_OK;
}

static tir_status r_pow(RULE_ARGS) { /* PyTorch's masking: b = 0 gives da = 0; a = 0, b >= 0 gives db = 0 */
    tir_value *a = op->in[0], *e = op->in[1];
    if (need[0]) {
        tir_value *d = BIN(MUL, e, BIN(POW, a, BIN(SUB, e, K(b, 1.0, e))));
        tir_value *e0 = BIN(EQ, e, K(b, 0.0, e));
        tir_value *zero = K(b, 0.0, G0);
        tir_value *gd = BIN(MUL, G0, d);
        gin[0] = where3(b, e0, zero, gd);
    }
    if (need[1]) {
        tir_value *z = K(b, 0.0, a);
        tir_value *a0 = BIN(EQ, a, z);
        tir_value *epos = BIN(GE, e, K(b, 0.0, e));
        tir_value *zero_base = BIN(AND, a0, epos);
        tir_value *zero = K(b, 0.0, G0);
        tir_value *gyl = BIN(MUL, G0, BIN(MUL, Y0, UN(LOG, a)));
        gin[1] = where3(b, zero_base, zero, gyl);
    }
    return TIR_OK;
}

/* maximum (win = GT) / minimum (win = LT): all to the winner, half each on ties */
static tir_status minmax2(tir_ib *b, const tir_op *op, tir_value *g, const bool *need,
                          tir_value **gin, tir_opcode win, tir_opcode lose) {
    tir_value *x = op->in[0], *y = op->in[1];
    tir_value *eq = tir_ib_bin(b, TIR_OP_EQ, x, y);
    tir_value *half = BIN(MUL, g, K(b, 0.5, g));
    tir_value *zero = K(b, 0.0, g);
    tir_value *tie = where3(b, eq, half, zero);
    if (need[0]) gin[0] = where3(b, tir_ib_bin(b, win, x, y), g, tie);
    if (need[1]) gin[1] = where3(b, tir_ib_bin(b, lose, x, y), g, tie);
    return TIR_OK;
}
static tir_status r_maximum(RULE_ARGS) { return minmax2(b, op, G0, need, gin, TIR_OP_GT, TIR_OP_LT); }
static tir_status r_minimum(RULE_ARGS) { return minmax2(b, op, G0, need, gin, TIR_OP_LT, TIR_OP_GT); }

/* ---------------------------------------------------------------- other elementwise */

static tir_status r_where(RULE_ARGS) {
    tir_value *c = op->in[0];
    if (need[1]) gin[1] = where3(b, c, G0, K(b, 0.0, G0));
    if (need[2]) gin[2] = where3(b, c, K(b, 0.0, G0), G0);
    return TIR_OK;
}

static tir_status r_cast(RULE_ARGS) { gin[0] = G0; return TIR_OK; } /* the driver casts back */

/* ---------------------------------------------------------------- reductions */

static tir_status r_sum(RULE_ARGS) {
    bool red[TIR_MAX_RANK];
    if (!reduced_axes(b, op, X0->type.rank, red)) return tir_rw_fail(b->d);
    gin[0] = bcast_to(b, expand_reduced(b, G0, &X0->type, red), &X0->type);
    return TIR_OK;
}

static tir_status r_mean(RULE_ARGS) {
    bool red[TIR_MAX_RANK];
    const tir_type *xt = &X0->type;
    if (!reduced_axes(b, op, xt->rank, red)) return tir_rw_fail(b->d);
    tir_context *ctx = b->f->module->ctx;
    const tir_dim *n = tir_dim_const(ctx, 1);
    for (int i = 0; i < xt->rank; i++)
        if (red[i]) n = tir_dim_mul(ctx, n, xt->dims[i]);
    if (!n) return fail(b, TIR_ERR_UNSUPPORTED, "mean: element count overflows");
    tir_value *g = expand_reduced(b, G0, xt, red);
    gin[0] = bcast_to(b, BIN(DIV, g, dim_scalar(b, n, G0->type.dtype)), xt);
    return TIR_OK;
}

/* max/min: the adjoint goes to the elements equal to the extremum, split evenly among ties */
static tir_status r_maxmin(RULE_ARGS) {
    bool red[TIR_MAX_RANK];
    const tir_type *xt = &X0->type;
    if (!reduced_axes(b, op, xt->rank, red)) return tir_rw_fail(b->d);
    int64_t axes[TIR_MAX_RANK];
    int n = 0;
    for (int i = 0; i < xt->rank; i++)
        if (red[i]) axes[n++] = i;
    if (n == 0) {
        gin[0] = G0;
        return TIR_OK;
    }
    tir_value *hit = BIN(EQ, X0, expand_reduced(b, Y0, xt, red));
    tir_value *one = K(b, 1.0, X0), *zero = K(b, 0.0, X0);
    tir_value *w = where3(b, hit, one, zero);
    tir_value *cnt = w ? tir_ib_reduce(b, TIR_OP_SUM, w, n, axes, true) : NULL;
    gin[0] = BIN(MUL, w, BIN(DIV, expand_reduced(b, G0, xt, red), cnt));
    return TIR_OK;
}

/* ---------------------------------------------------------------- movement */

static tir_status r_reshape(RULE_ARGS) {
    gin[0] = reshape_to(b, G0, X0->type.rank, X0->type.dims);
    return TIR_OK;
}

static tir_status r_transpose(RULE_ARGS) {
    const tir_attr_value *p = tir_op_attr(op, "perm");
    int64_t inv[TIR_MAX_RANK];
    if (!p || p->u.ints.n != X0->type.rank) return fail(b, TIR_ERR_TYPE, "transpose: bad perm");
    for (int i = 0; i < p->u.ints.n; i++) inv[p->u.ints.v[i]] = i;
    gin[0] = G0 ? tir_ib_transpose(b, G0, inv) : NULL;
    return TIR_OK;
}

static tir_status r_broadcast(RULE_ARGS) { gin[0] = G0; return TIR_OK; } /* driver sums back */

/* slice: the adjoint padded with zeros (step 1), or scattered into zeros (step > 1) */
static tir_status r_slice(RULE_ARGS) {
    const tir_type *xt = &X0->type;
    tir_context *ctx = b->f->module->ctx;
    int ax = norm_axis(b, tir_attr_int(op, "axis", 0), xt->rank);
    if (ax < 0) return tir_rw_fail(b->d);
    int64_t start = tir_attr_int(op, "start", 0), step = tir_attr_int(op, "step", 1), dv;
    const tir_dim *dim = xt->dims[ax], *len = Y0->type.dims[ax], *s0;
    if (tir_dim_is_const(dim, &dv)) {
        if (start < 0) start += dv;
        start = start < 0 ? 0 : start > dv ? dv : start;
        s0 = tir_dim_const(ctx, start);
    } else {
        s0 = start >= 0 ? tir_dim_const(ctx, start) : tir_dim_add(ctx, dim, tir_dim_const(ctx, start));
    }
    if (step == 1) {
        const tir_dim *after = tir_dim_sub(ctx, tir_dim_sub(ctx, dim, s0), len);
        tir_value *parts[3];
        int n = 0;
        tir_type t = *xt;
        int64_t v;
        if (!after || (tir_dim_is_const(after, &v) && v < 0))
            return fail(b, TIR_ERR_INTERNAL, "slice: bad bounds");
        if (!dim_is_zero(s0)) {
            t.dims[ax] = s0;
            parts[n++] = zeros(b, &t);
        }
        parts[n++] = G0;
        if (!dim_is_zero(after)) {
            t.dims[ax] = after;
            parts[n++] = zeros(b, &t);
        }
        if (n == 1) {
            gin[0] = G0;
        } else {
            tir_attr_value a = tir_a_int("axis", ax);
            tir_op *c = append_n(b, TIR_OP_CONCAT, n, parts, 1, &a);
            gin[0] = c ? c->out[0] : NULL;
        }
        return TIR_OK;
    }
    /* the positions the slice read are the same slice of iota(dim): its bounds resolve as the
     * slice's own do, for a constant or a symbolic dim, a negative start or end included */
    tir_value *pos = iota(b, 1, &dim, 0, TIR_I64);
    tir_attr_value sa[4];
    int nsa = 0;
    for (int i = 0; i < op->nattrs && nsa < 4; i++)
        sa[nsa++] = strcmp(op->attrs[i].name, "axis") == 0 ? tir_a_int("axis", 0) : op->attrs[i];
    tir_op *sl = pos ? append_n(b, TIR_OP_SLICE, 1, &pos, nsa, sa) : NULL;
    tir_value *idx = sl ? sl->out[0] : NULL;
    if (idx && idx->type.dims[0] != len) return fail(b, TIR_ERR_INTERNAL, "slice: bad bounds");
    tir_value *in[3] = {zeros(b, xt), idx, G0};
    tir_attr_value a = tir_a_int("axis", ax);
    tir_op *sc = append_n(b, TIR_OP_SCATTER_ADD, 3, in, 1, &a);
    gin[0] = sc ? sc->out[0] : NULL;
    return TIR_OK;
}

static tir_status r_concat(RULE_ARGS) {
    int ax = norm_axis(b, tir_attr_int(op, "axis", 0), Y0->type.rank);
    if (ax < 0) return tir_rw_fail(b->d);
    if (op->nin == 1) {
        gin[0] = G0;
        return TIR_OK;
    }
    const tir_dim **sizes = malloc(sizeof *sizes * (size_t)op->nin);
    if (!sizes) return fail(b, TIR_ERR_OOM, "out of memory");
    for (int i = 0; i < op->nin; i++) sizes[i] = op->in[i]->type.dims[ax];
    tir_attr_value a[2] = {tir_a_int("axis", ax), tir_a_shape(b->f->module, "sizes", op->nin, sizes)};
    free(sizes);
    tir_op *sp = append_n(b, TIR_OP_SPLIT, 1, &gout[0], 2, a);
    for (int i = 0; sp && i < op->nin && i < sp->nout; i++) gin[i] = sp->out[i];
    return TIR_OK;
}

static tir_status r_split(RULE_ARGS) {
    int ax = norm_axis(b, tir_attr_int(op, "axis", 0), X0->type.rank);
    if (ax < 0) return tir_rw_fail(b->d);
    tir_value **parts = malloc(sizeof *parts * (size_t)op->nout);
    if (!parts) return fail(b, TIR_ERR_OOM, "out of memory");
    for (int i = 0; i < op->nout; i++) parts[i] = gout[i] ? gout[i] : zeros(b, &op->out[i]->type);
    if (op->nout == 1) {
        gin[0] = parts[0];
    } else {
        tir_attr_value a = tir_a_int("axis", ax);
        tir_op *c = append_n(b, TIR_OP_CONCAT, op->nout, parts, 1, &a);
        gin[0] = c ? c->out[0] : NULL;
    }
    free(parts);
    return TIR_OK;
}

/* ---------------------------------------------------------------- indexing */

static tir_status r_take(RULE_ARGS) { /* rows scattered back (repeated indices add up) */
    tir_attr_value a = tir_a_int("axis", tir_attr_int(op, "axis", 0));
    tir_value *in[3] = {zeros(b, &X0->type), op->in[1], G0};
    tir_op *sc = append_n(b, TIR_OP_SCATTER_ADD, 3, in, 1, &a);
    gin[0] = sc ? sc->out[0] : NULL;
    return TIR_OK;
}

static tir_status r_scatter_add(RULE_ARGS) {
    if (need[0]) gin[0] = G0;
    if (need[2]) {
        tir_attr_value a = tir_a_int("axis", tir_attr_int(op, "axis", 0));
        tir_value *in[2] = {G0, op->in[1]};
        tir_op *t = append_n(b, TIR_OP_TAKE, 2, in, 1, &a);
        gin[2] = t ? t->out[0] : NULL;
    }
    return TIR_OK;
}

/* ---------------------------------------------------------------- linear algebra */

/* out = A B with A = ta ? a^T : a, B = tb ? b^T : b (last two axes); batch dims broadcast and
 * the driver sums them back:
 *   da = ta ? B g^T : g B^T        db = tb ? g^T A : A^T g */
static tir_status r_matmul(RULE_ARGS) {
    tir_value *a = op->in[0], *bb = op->in[1];
    bool ta = tir_attr_bool(op, "transpose_a", false), tb = tir_attr_bool(op, "transpose_b", false);
    if (a->type.rank < 2 || bb->type.rank < 2)
        return fail(b, TIR_ERR_UNSUPPORTED, "gradient of a matmul with a rank-1 operand");
    if (need[0]) gin[0] = ta ? tir_ib_matmul(b, bb, G0, tb, true) : tir_ib_matmul(b, G0, bb, false, !tb);
    if (need[1]) gin[1] = tb ? tir_ib_matmul(b, G0, a, true, ta) : tir_ib_matmul(b, a, G0, !ta, false);
    return TIR_OK;
}

/* linear(x[..., K], w[N, K], b[N]) = x w^T + b */
static tir_status r_linear(RULE_ARGS) {
    tir_value *x = op->in[0], *w = op->in[1], *g = G0;
    tir_context *ctx = b->f->module->ctx;
    int r = x->type.rank;
    const tir_dim *N = w->type.dims[0], *Kd = w->type.dims[1], *one = tir_dim_const(ctx, 1);
    if (need[0]) {
        if (r == 1) {
            const tir_dim *d1[2] = {one, N}, *d2[1] = {Kd};
            gin[0] = reshape_to(b, tir_ib_matmul(b, reshape_to(b, g, 2, d1), w, false, false), 1, d2);
        } else {
            gin[0] = tir_ib_matmul(b, g, w, false, false);
        }
    }
    if (need[1]) {
        tir_value *g2 = g, *x2 = x;
        if (r == 1) {
            const tir_dim *dg[2] = {N, one}, *dx[2] = {one, Kd};
            tir_value *gc = reshape_to(b, g, 2, dg);
            tir_value *xr = reshape_to(b, x, 2, dx);
            gin[1] = tir_ib_matmul(b, gc, xr, false, false);
        } else {
            if (r > 2) {
                const tir_dim *R = one;
                for (int i = 0; i < r - 1; i++) R = tir_dim_mul(ctx, R, x->type.dims[i]);
                if (!R) return fail(b, TIR_ERR_UNSUPPORTED, "linear: row count overflows");
                const tir_dim *dg[2] = {R, N}, *dx[2] = {R, Kd};
                g2 = reshape_to(b, g, 2, dg);
                x2 = reshape_to(b, x, 2, dx);
            }
            gin[1] = tir_ib_matmul(b, g2, x2, true, false);
        }
    }
    if (op->nin > 2 && need[2]) gin[2] = g; /* the driver sums over the rows */
    return TIR_OK;
}

/* ---------------------------------------------------------------- composites */

static tir_status r_softmax(RULE_ARGS) { /* y (g - sum(g y)) */
    tir_value *y = up(b, Y0), *g = up(b, G0);
    int ax = norm_axis(b, tir_attr_int(op, "axis", -1), Y0->type.rank);
    if (ax < 0) return tir_rw_fail(b->d);
    gin[0] = BIN(MUL, y, BIN(SUB, g, red1(b, TIR_OP_SUM, BIN(MUL, g, y), ax, true)));
    return TIR_OK;
}

static tir_status r_log_softmax(RULE_ARGS) { /* g - exp(y) sum(g) */
    tir_value *y = up(b, Y0), *g = up(b, G0);
    int ax = norm_axis(b, tir_attr_int(op, "axis", -1), Y0->type.rank);
    if (ax < 0) return tir_rw_fail(b->d);
    tir_value *e = UN(EXP, y);
    tir_value *s = red1(b, TIR_OP_SUM, g, ax, true);
    gin[0] = BIN(SUB, g, BIN(MUL, e, s));
    return TIR_OK;
}

/* rmsnorm: y = x r w with r = rsqrt(mean(x^2) + eps) per row ([..., 1], what a fused forward
 * kernel saves). dx = r (g w) - x r^3 mean((g w) x);  dw = sum_rows(g x r). */
static tir_status r_rmsnorm(RULE_ARGS) {
    tir_value *x = up(b, op->in[0]), *w = up(b, op->in[1]), *g = up(b, G0);
    int last = op->in[0]->type.rank - 1;
    tir_value *ms = red1(b, TIR_OP_MEAN, BIN(MUL, x, x), last, true);
    tir_value *r = UN(RSQRT, BIN(ADD, ms, K(b, tir_attr_float(op, "eps", RMSNORM_EPS), ms)));
    if (need[0]) {
        tir_value *gw = BIN(MUL, g, w);
        tir_value *r3 = BIN(MUL, r, BIN(MUL, r, r));
        tir_value *m = red1(b, TIR_OP_MEAN, BIN(MUL, gw, x), last, true);
        tir_value *gwr = BIN(MUL, gw, r);
        gin[0] = BIN(SUB, gwr, BIN(MUL, x, BIN(MUL, r3, m)));
    }
    if (need[1]) gin[1] = BIN(MUL, g, BIN(MUL, x, r));
    return TIR_OK;
}

/* layernorm: xhat = (x - mu) r, y = xhat w + b, recomputed per element from x, mu and r.
 * dx = r (gw - mean(gw) - xhat mean(gw xhat));  dw = sum_rows(g xhat);  db = sum_rows(g) */
static tir_status r_layernorm(RULE_ARGS) {
    tir_value *x = up(b, op->in[0]), *w = up(b, op->in[1]), *g = up(b, G0);
    int last = op->in[0]->type.rank - 1;
    tir_value *xc = BIN(SUB, x, red1(b, TIR_OP_MEAN, x, last, true));
    tir_value *var = red1(b, TIR_OP_MEAN, BIN(MUL, xc, xc), last, true);
    tir_value *r = UN(RSQRT, BIN(ADD, var, K(b, tir_attr_float(op, "eps", LAYERNORM_EPS), var)));
    tir_value *xhat = BIN(MUL, xc, r);
    if (need[0]) {
        tir_value *gw = BIN(MUL, g, w);
        tir_value *m1 = red1(b, TIR_OP_MEAN, gw, last, true);
        tir_value *m2 = red1(b, TIR_OP_MEAN, BIN(MUL, gw, xhat), last, true);
        tir_value *c1 = BIN(SUB, gw, m1);
        tir_value *c2 = BIN(MUL, xhat, m2);
        gin[0] = BIN(MUL, r, BIN(SUB, c1, c2));
    }
    if (need[1]) gin[1] = BIN(MUL, g, xhat);
    if (need[2]) gin[2] = g;
    return TIR_OK;
}

/* cross_entropy(logits[..., C], t[...]): d logits = (softmax(logits) - onehot(t)) * s per row,
 * s = the upstream (divided by the count of targets not ignored for "mean"), 0 on ignored rows.
 * softmax comes from the logits and the row log-sum-exp, fused into the one result buffer. */
static tir_status r_cross_entropy(RULE_ARGS) {
    tir_value *lg = up(b, op->in[0]), *t = op->in[1], *g = up(b, G0);
    const tir_type *lt = &op->in[0]->type, *tt = &t->type;
    tir_context *ctx = b->f->module->ctx;
    int last = lt->rank - 1;
    if (last < 0 || tt->rank != last) return fail(b, TIR_ERR_TYPE, "cross_entropy: bad shapes");
    const char *red = tir_attr_str(op, "reduction", "mean");
    tir_value *mx = red1(b, TIR_OP_MAX, lg, last, true);
    tir_value *lse = BIN(ADD, mx, UN(LOG, red1(b, TIR_OP_SUM, UN(EXP, BIN(SUB, lg, mx)), last, true)));
    tir_value *p = UN(EXP, BIN(SUB, lg, lse));
    tir_value *valid = BIN(NE, t, tir_ib_const(b, (double)tir_attr_int(op, "ignore_index", -100), tt->dtype));
    tir_value *s = g;
    if (strcmp(red, "mean") == 0) {
        tir_value *one = K(b, 1.0, g), *zero = K(b, 0.0, g);
        tir_value *cnt = where3(b, valid, one, zero);
        int64_t axes[TIR_MAX_RANK];
        for (int i = 0; i < tt->rank; i++) axes[i] = i;
        if (cnt && tt->rank) cnt = tir_ib_reduce(b, TIR_OP_SUM, cnt, tt->rank, axes, false);
        s = BIN(DIV, g, cnt);
    }
    s = where3(b, valid, s, K(b, 0.0, g));
    const tir_dim *kd[TIR_MAX_RANK];
    for (int i = 0; i < last; i++) kd[i] = lt->dims[i];
    kd[last] = tir_dim_const(ctx, 1);
    s = bcast_to(b, s, tt); /* "sum"/"mean" give a scalar: one value per row first */
    tir_value *cls = iota(b, lt->rank, lt->dims, last, tt->dtype);
    tir_value *hot = BIN(EQ, cls, reshape_to(b, t, lt->rank, kd));
    tir_value *one = K(b, 1.0, p), *zero = K(b, 0.0, p);
    tir_value *dl = BIN(SUB, p, where3(b, hot, one, zero));
    gin[0] = BIN(MUL, dl, reshape_to(b, s, lt->rank, kd));
    return TIR_OK;
}

/* rope: y = x cos + rot(x) sin, rot(x) = concat(-x2, x1) over the halves of the last axis.
 * rot's transpose is rot^T(u) = concat(u2, -u1): the adjoint rotates the other way. */
static tir_value *halves(tir_ib *b, tir_value *x, bool forward) {
    if (!x) return NULL;
    tir_context *ctx = b->f->module->ctx;
    int last = x->type.rank - 1;
    /* [D/2, D - D/2]: equal when D is structurally even, and a sum inference can check when D is
     * symbolic (rope rejects an odd D at run time); the sizes ir/composite.c's dec_rope uses */
    const tir_dim *D = x->type.dims[last], *two = tir_dim_const(ctx, 2);
    const tir_dim *h = tir_dim_exact_div(ctx, D, two);
    const tir_dim *sz[2] = {h, h};
    if (!h || tir_dim_mul(ctx, h, two) != D) {
        sz[0] = tir_dim_div(ctx, D, two);
        sz[1] = sz[0] ? tir_dim_sub(ctx, D, sz[0]) : NULL;
    }
    if (!sz[0] || !sz[1]) {
        fail(b, TIR_ERR_INTERNAL, "rope: cannot halve the last dim");
        return NULL;
    }
    tir_attr_value a[2] = {tir_a_int("axis", last), tir_a_shape(b->f->module, "sizes", 2, sz)};
    tir_op *sp = append_n(b, TIR_OP_SPLIT, 1, &x, 2, a);
    if (!sp) return NULL;
    tir_value *parts[2];
    if (forward) {
        parts[0] = UN(NEG, sp->out[1]);
        parts[1] = sp->out[0];
    } else {
        parts[0] = sp->out[1];
        parts[1] = UN(NEG, sp->out[0]);
    }
    tir_attr_value ca = tir_a_int("axis", last);
    tir_op *c = append_n(b, TIR_OP_CONCAT, 2, parts, 1, &ca);
    return c ? c->out[0] : NULL;
}

/* The index-map form of the rotations (as ir/composite.c's dec_rope writes the forward), used
 * when D is structurally even: values viewed as [..., T, 2, D/2], a half of a view sliced out and
 * broadcast back over the 2-axis, and the 2-axis told apart by an iota. Then the adjoint of x,
 * g cos + rot^T(g sin), is one elementwise kernel like the forward. Each element is the same f32
 * expression as in the split/concat form, so the two agree to the bit. */
static tir_value *rope_view(tir_ib *b, tir_value *v, int rank, const tir_dim *const *dims) {
    return v ? reshape_to(b, v, rank, dims) : NULL;
}

static tir_value *rope_half(tir_ib *b, tir_value *v, int h) {
    if (!v || b->failed) return NULL;
    int ax = v->type.rank - 2;
    tir_attr_value a[3] = {tir_a_int("axis", ax), tir_a_int("start", h), tir_a_int("end", h + 1)};
    tir_op *sl = append_n(b, TIR_OP_SLICE, 1, &v, 3, a);
    return sl ? tir_ib_broadcast(b, sl->out[0], v->type.rank, v->type.dims) : NULL;
}

static tir_status r_rope(RULE_ARGS) {
    tir_value *x = up(b, op->in[0]), *g = up(b, G0);
    tir_context *ctx = b->f->module->ctx;
    const tir_type *xt = &op->in[0]->type;
    int rank = xt->rank;
    const tir_dim *D = xt->dims[rank - 1], *two = tir_dim_const(ctx, 2);
    const tir_dim *h = tir_dim_exact_div(ctx, D, two);
    if (!h || tir_dim_mul(ctx, h, two) != D || rank + 1 > TIR_MAX_RANK) {
        tir_value *cs = up(b, op->in[1]), *sn = up(b, op->in[2]);
        if (need[0]) {
            tir_value *gcs = BIN(MUL, g, cs);
            gin[0] = BIN(ADD, gcs, halves(b, BIN(MUL, g, sn), false));
        }
        if (need[1]) gin[1] = BIN(MUL, g, x);
        if (need[2]) gin[2] = BIN(MUL, g, halves(b, x, true));
        return TIR_OK;
    }
    const tir_dim *v[TIR_MAX_RANK], *tv[3] = {xt->dims[rank - 2], two, h};
    for (int i = 0; i < rank - 1; i++) v[i] = xt->dims[i];
    v[rank - 1] = two;
    v[rank] = h;
    /* The forward (decomposed later) computes the same mask and f32 cos and sin; written the
     * same way here, CSE would merge them, and a value two kernels read is materialised. So the
     * mask is ne(i, 1) rather than eq(i, 0), and cos and sin are viewed before they are widened:
     * the same values, recomputed in registers by each kernel. */
    const tir_dim *i2[2] = {two, tir_dim_const(ctx, 1)};
    tir_value *it = iota(b, 2, i2, 0, TIR_I32);
    tir_value *first = BIN(NE, it, tir_ib_const(b, 1, TIR_I32));
    tir_value *G = rope_view(b, g, rank + 1, v);
    if (need[0]) {
        tir_value *S = up(b, rope_view(b, op->in[2], 3, tv));
        tir_value *C = up(b, rope_view(b, op->in[1], 3, tv));
        /* rot^T(u) = concat(u2, -u1) with u = g sin: the halves of g and sin multiplied */
        tir_value *g2 = rope_half(b, G, 1);
        tir_value *u2 = BIN(MUL, g2, rope_half(b, S, 1));
        tir_value *g1 = rope_half(b, G, 0);
        tir_value *u1 = BIN(MUL, g1, rope_half(b, S, 0));
        tir_value *gc = BIN(MUL, G, C);
        tir_value *dx = BIN(ADD, gc, where3(b, first, u2, UN(NEG, u1)));
        /* cast before viewing it as [..., T, D] again (the driver's cast is then a no-op): a cast
         * after the reshape would be a kernel of its own */
        gin[0] = dx ? reshape_to(b, tir_ib_cast(b, dx, xt->dtype), rank, xt->dims) : NULL;
    }
    if (need[1]) gin[1] = BIN(MUL, g, x);
    if (need[2]) {
        tir_value *X = rope_view(b, x, rank + 1, v);
        tir_value *lo = rope_half(b, X, 0);
        tir_value *rot = where3(b, first, UN(NEG, rope_half(b, X, 1)), lo);
        tir_value *gr = BIN(MUL, G, rot);
        gin[2] = gr ? reshape_to(b, gr, rank, xt->dims) : NULL;
    }
    return TIR_OK;
}

/* attention(q[B,Hq,T,D], k[B,Hk,S,D], v[B,Hk,S,Dv]): query head h reads kv head h / (Hq/Hk).
 * Flash-style backward: P = exp(scale q k^T (masked) - lse) from the recomputed row
 * log-sum-exp; dS = P (dO v^T - rowsum(dO O)); dq = scale dS k; dk = scale dS^T q; dv = P^T dO.
 * Grouped heads: when Hq is structurally G*Hk, heads are viewed as [B, Hk, G, ...] so k and v
 * broadcast over G and dk, dv sum over it; when the ratio is only known at run time, k and v
 * are gathered per query head (take, as the decomposition does) and dk, dv scattered back. */
typedef enum { HEADS_SAME, HEADS_GROUP, HEADS_TAKE } heads_mode;

static tir_status r_attention(RULE_ARGS) {
    tir_module *m = b->f->module;
    tir_context *ctx = m->ctx;
    const tir_type *qt = &op->in[0]->type, *kt = &op->in[1]->type, *vt = &op->in[2]->type;
    if (qt->rank != 4 || kt->rank != 4 || vt->rank != 4)
        return fail(b, TIR_ERR_TYPE, "attention: rank-4 operands expected");
    const tir_dim *B = qt->dims[0], *Hq = qt->dims[1], *T = qt->dims[2], *D = qt->dims[3];
    const tir_dim *Hk = kt->dims[1], *S = kt->dims[2], *Dv = vt->dims[3], *one = tir_dim_const(ctx, 1);
    const tir_dim *G = Hq == Hk ? one : tir_dim_exact_div(ctx, Hq, Hk);
    heads_mode mode = Hq == Hk ? HEADS_SAME : G && tir_dim_mul(ctx, Hk, G) == Hq ? HEADS_GROUP : HEADS_TAKE;
    tir_value *q = up(b, op->in[0]), *k = up(b, op->in[1]), *v = up(b, op->in[2]);
    tir_value *o = up(b, Y0), *g = up(b, G0), *idx = NULL;
    tir_dtype ct = q ? q->type.dtype : TIR_F32;
    int last = 3;
    if (mode == HEADS_GROUP) {
        const tir_dim *q5[5] = {B, Hk, G, T, D}, *k5[5] = {B, Hk, one, S, D};
        const tir_dim *v5[5] = {B, Hk, one, S, Dv}, *o5[5] = {B, Hk, G, T, Dv};
        q = reshape_to(b, q, 5, q5);
        k = reshape_to(b, k, 5, k5);
        v = reshape_to(b, v, 5, v5);
        o = reshape_to(b, o, 5, o5);
        g = reshape_to(b, g, 5, o5);
        last = 4;
    } else if (mode == HEADS_TAKE) {
        tir_value *h = iota(b, 1, &Hq, 0, TIR_I64);
        tir_value *hk = dim_scalar(b, Hk, TIR_I64);
        tir_value *h_hk = BIN(MUL, h, hk);
        idx = BIN(DIV, h_hk, dim_scalar(b, Hq, TIR_I64));
        tir_attr_value a = tir_a_int("axis", 1);
        tir_value *kin[2] = {k, idx}, *vin[2] = {v, idx};
        k = tir_ib_op(b, TIR_OP_TAKE, 2, kin, 1, &a);
        v = tir_ib_op(b, TIR_OP_TAKE, 2, vin, 1, &a);
    }
    tir_value *scale; /* the decomposition's: 1/sqrt(D) by default */
    int64_t dval;
    if (tir_op_attr(op, "scale")) scale = tir_ib_const(b, tir_attr_float(op, "scale", 1.0), ct);
    else if (tir_dim_is_const(D, &dval)) scale = tir_ib_const(b, 1.0 / sqrt((double)dval), ct);
    else scale = UN(RSQRT, dim_scalar(b, D, ct));
    tir_value *sc = BIN(MUL, tir_ib_matmul(b, q, k, false, true), scale); /* [..., T, S] */
    if (tir_attr_bool(op, "causal", false)) { /* key s is visible to query t iff s - t <= S - T */
        const tir_dim *ts[2] = {T, S};
        tir_value *ti = iota(b, 2, ts, 0, TIR_I64), *si = iota(b, 2, ts, 1, TIR_I64);
        tir_value *sv = dim_scalar(b, S, TIR_I64);
        tir_value *off = BIN(SUB, sv, dim_scalar(b, T, TIR_I64));
        tir_value *vis = BIN(LE, BIN(SUB, si, ti), off);
        sc = where3(b, vis, sc, K(b, -INFINITY, sc));
    }
    tir_value *mx = red1(b, TIR_OP_MAX, sc, last, true);
    tir_value *lse = BIN(ADD, mx, UN(LOG, red1(b, TIR_OP_SUM, UN(EXP, BIN(SUB, sc, mx)), last, true)));
    tir_value *p = UN(EXP, BIN(SUB, sc, lse));
    tir_value *dq = NULL, *dk = NULL, *dv = NULL;
    if (need[0] || need[1]) {
        tir_value *dp = tir_ib_matmul(b, g, v, false, true);
        tir_value *drow = red1(b, TIR_OP_SUM, BIN(MUL, g, o), last, true);
        tir_value *ds = BIN(MUL, p, BIN(SUB, dp, drow));
        if (need[0]) dq = BIN(MUL, tir_ib_matmul(b, ds, k, false, false), scale);
        if (need[1]) dk = BIN(MUL, tir_ib_matmul(b, ds, q, true, false), scale);
    }
    if (need[2]) dv = tir_ib_matmul(b, p, g, true, false);
    if (mode == HEADS_GROUP) {
        dq = reshape_to(b, dq, 4, qt->dims);
        if (dk) dk = red1(b, TIR_OP_SUM, dk, 2, false);
        if (dv) dv = red1(b, TIR_OP_SUM, dv, 2, false);
    } else if (mode == HEADS_TAKE) { /* take's adjoint: rows added back per kv head */
        tir_attr_value a = tir_a_int("axis", 1);
        tir_value *kf = up(b, op->in[1]), *vf = up(b, op->in[2]);
        if (dk && kf) {
            tir_value *in[3] = {zeros(b, &kf->type), idx, dk};
            dk = tir_ib_op(b, TIR_OP_SCATTER_ADD, 3, in, 1, &a);
        }
        if (dv && vf) {
            tir_value *in[3] = {zeros(b, &vf->type), idx, dv};
            dv = tir_ib_op(b, TIR_OP_SCATTER_ADD, 3, in, 1, &a);
        }
    }
    gin[0] = dq;
    gin[1] = dk;
    gin[2] = dv;
    return TIR_OK;
}

/* ---------------------------------------------------------------- the table */

const tir_grad_rule tir_grad_rules[TIR_OP_COUNT] = {
    [TIR_OP_NEG] = r_neg, [TIR_OP_ABS] = r_abs, [TIR_OP_EXP] = r_exp, [TIR_OP_LOG] = r_log,
    [TIR_OP_SQRT] = r_sqrt, [TIR_OP_RSQRT] = r_rsqrt, [TIR_OP_RECIP] = r_recip,
    [TIR_OP_TANH] = r_tanh, [TIR_OP_SIGMOID] = r_sigmoid, [TIR_OP_RELU] = r_relu,
    [TIR_OP_SILU] = r_silu, [TIR_OP_GELU] = r_gelu, [TIR_OP_SIN] = r_sin, [TIR_OP_COS] = r_cos,
    [TIR_OP_ADD] = r_add, [TIR_OP_SUB] = r_sub, [TIR_OP_MUL] = r_mul, [TIR_OP_DIV] = r_div,
    [TIR_OP_POW] = r_pow, [TIR_OP_MAXIMUM] = r_maximum, [TIR_OP_MINIMUM] = r_minimum,
    [TIR_OP_WHERE] = r_where, [TIR_OP_CAST] = r_cast,
    [TIR_OP_SUM] = r_sum, [TIR_OP_MEAN] = r_mean, [TIR_OP_MAX] = r_maxmin, [TIR_OP_MIN] = r_maxmin,
    [TIR_OP_RESHAPE] = r_reshape, [TIR_OP_TRANSPOSE] = r_transpose,
    [TIR_OP_BROADCAST] = r_broadcast, [TIR_OP_SLICE] = r_slice, [TIR_OP_CONCAT] = r_concat,
    [TIR_OP_SPLIT] = r_split, [TIR_OP_TAKE] = r_take, [TIR_OP_SCATTER_ADD] = r_scatter_add,
    [TIR_OP_MATMUL] = r_matmul, [TIR_OP_LINEAR] = r_linear,
    [TIR_OP_SOFTMAX] = r_softmax, [TIR_OP_LOG_SOFTMAX] = r_log_softmax,
    [TIR_OP_RMSNORM] = r_rmsnorm, [TIR_OP_LAYERNORM] = r_layernorm,
    [TIR_OP_CROSS_ENTROPY] = r_cross_entropy, [TIR_OP_ROPE] = r_rope,
    [TIR_OP_ATTENTION] = r_attention,
    /* TIR_OP_CALL has no rule: the grad pass inlines calls before differentiating */
};
