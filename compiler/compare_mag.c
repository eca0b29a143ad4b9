/* compare_mag.c: the magnitude program of a function and the comparison scaled by it (see
 * compare_mag.h).
 *
 * ---- What the scale must be
 * A kernel and the interpreter evaluate the same expression; they differ by rounding, mostly in
 * the order of the additions inside reductions (sum, mean, the dot products of matmul, the adds
 * of scatter_add). For a reduction r = Σ t_i, any order of evaluation gives |r̂ − r| <= γ_n·R with
 * R = Σ|t_i| (γ_n ≈ n·u; Higham, Accuracy and Stability, §4.2), and this bound is attained by
 * some orders: R is *the* scale of r's rounding, |r| is not. To first order, the error of a
 * result y is Σ_r (∂y/∂r)·δr plus the elementwise roundings, which are relative to |y| and to the
 * magnitudes of the intermediate values.
 *
 * ---- The magnitude program
 * Let C be a set of float reductions of the (inlined, decomposed) function, chosen below, and
 * call a value "tracked" when it is a reduction of C or computed from a tracked value. The
 * magnitude program computes, for each tracked value v, a non-negative M_v in place of v, by
 * evaluating v's expression with absolute values:
 *     reduction of C, sum/mean/matmul/scatter_add with a tracked operand
 *                        -> the same reduction of the operands' magnitudes (Σ|t_i|, |A|·|B|)
 *     add, sub           -> M_a + M_b          neg -> M_a
 *     mul                -> M_a·|b|            div -> M_a / |b|   (b not tracked)
 *     movement ops, float casts, where(c, a, b), take -> the same op on magnitudes
 * where an operand's magnitude is M_x when x is tracked and |x| when it is not (|x| built with
 * abs). Untracked values are computed exactly as in the original, so every result that depends on
 * no reduction of C is the reference result itself.
 *
 * ---- Why M is the right scale (both directions)
 * C is chosen so that every tracked value is *linear* in the reductions of C: the only ops that
 * take a tracked operand are the ones listed above, mul and matmul take at most one tracked
 * operand, div only a tracked numerator, where only tracked values (not a tracked condition),
 * take/scatter_add only tracked data (not tracked indices), cast only float to float. Then each
 * tracked value is y = b + Σ_r a_r·r with coefficients a_r and b that depend on no reduction of C
 * (a nested reduction of C makes a_r itself a sum of untracked coefficients). For such y:
 *  - M_y >= |y| (triangle inequality), and M_y >= Σ_r |a_r|·R_r: the first-order bound on y's
 *    error from the reductions' rounding is γ·M_y, whatever order each reduction adds in (the
 *    elementwise roundings of the linear ops are relative to the magnitudes M also sums). So an
 *    honest kernel's error is within tol·max(|ref|, M) whenever tol covers γ at the scale of the
 *    error bound: the tolerance means what it means for non-cancelling sums.
 *  - M_y = |b| + Σ|a_r|·R_r (evaluated with magnitudes) is the standard componentwise bound
 *    itself (Higham's |A||x| form), not more: every term of M_y is a quantity some summation order
 *    turns into error of that size. So the scale is never looser than the rounding justifies; a
 *    result off by more than tol times the bound still fails (a dropped term of a sum, a wrong
 *    element, a result 1% off where the sum does not cancel).
 * What is deliberately *not* tracked, and why:
 *  - a reduction whose result reaches an op that is not linear in it (exp, rsqrt, log, div by it,
 *    max, compare, a product of two tracked values, ...). There M would be the wrong scale: for
 *    y = exp(Σx) the error is |y|·γ·Σ|x| but exp(Σ|x|) can be astronomically larger; for
 *    y = (Σx)·(Σz) the error is γ(|Σz|·Σ|x| + |Σx|·Σ|z|) while Σ|x|·Σ|z| is larger by the factor
 *    the sums cancel by. Such a reduction keeps its original value (strict comparison, as
 *    before). Nothing is lost where its terms are non-negative (softmax's Σe^x, rmsnorm's Σx²:
 *    abs would change nothing anyway).
 *  - integer reductions (exact) and max/min/argmax (exact in any order).
 * C is found by a fixed point: start from every float reduction, propagate "tracked by which
 * reductions of C" (a bitset per value) forward, and at the first op that would be non-linear
 * in a tracked operand remove every reduction reaching that op's tracked operands from C; repeat
 * until no op objects. Each round removes at least one, so it ends; the result is the set the
 * linearity argument needs.
 *
 * The comparison (tir_rel_error_mag) measures ‖out − ref‖ against sqrt(Σ max(ref_i², M_i²)):
 * elementwise the larger of the two scales, so it is DESIGN §6's rule wherever M = ref. */
#include <stdio.h>

#include "compare_mag.h"
#include "compile.h"
#include "passes.h"
#include "rewrite.h"

static bool is_reduction(const tir_op *op) {
    switch (op->code) {
    case TIR_OP_SUM:
    case TIR_OP_MEAN:
    case TIR_OP_MATMUL:
    case TIR_OP_SCATTER_ADD: return op->nout == 1 && tir_dtype_is_float(op->out[0]->type.dtype);
    default: return false;
    }
}

/* true when op, given which operands are tracked (tin), is not linear in them (see above) */
static bool nonlinear(const tir_op *op, const bool *tin) {
    int nt = 0;
    for (int i = 0; i < op->nin; i++) nt += tin[i];
    if (nt == 0) return false;
    switch (op->code) {
    case TIR_OP_ADD:
    case TIR_OP_SUB:
    case TIR_OP_NEG:
    case TIR_OP_SUM:
    case TIR_OP_MEAN: return false;
    case TIR_OP_MUL:
    case TIR_OP_MATMUL: return nt > 1;
    case TIR_OP_DIV: return tin[1];
    case TIR_OP_WHERE: return tin[0];
    case TIR_OP_TAKE:
    case TIR_OP_SCATTER_ADD: return tin[1];
    case TIR_OP_CAST:
        return !(tir_dtype_is_float(op->in[0]->type.dtype) && tir_dtype_is_float(op->out[0]->type.dtype));
    default: return (tir_ops[op->code].flags & TIR_F_MOVEMENT) == 0; /* calls, regions, exp, max, ... */
    }
}

typedef struct mag_plan {
    int nw;          /* words per bitset */
    int nvals;
    uint64_t *dep;   /* per value id: the reductions of C it is computed from */
    int *red;        /* per op index: its reduction index, or -1 */
    bool *in_c;      /* per reduction index */
    int nred;
} mag_plan;

static uint64_t *dep_of(const mag_plan *p, const tir_value *v) { return p->dep + (size_t)v->id * (size_t)p->nw; }

static bool any_bit(const mag_plan *p, const tir_value *v) {
    const uint64_t *s = dep_of(p, v);
    for (int w = 0; w < p->nw; w++)
        if (s[w]) return true;
    return false;
}

/* one forward sweep; false (after shrinking C) when some op objected */
static bool sweep(const tir_func *f, mag_plan *p, bool *tin, uint64_t *acc) {
    memset(p->dep, 0, (size_t)p->nvals * (size_t)p->nw * sizeof *p->dep);
    for (int k = 0; k < f->nops; k++) {
        const tir_op *op = f->ops[k];
        for (int i = 0; i < op->nin; i++) tin[i] = any_bit(p, op->in[i]);
        if (nonlinear(op, tin)) {
            for (int i = 0; i < op->nin; i++) {
                if (!tin[i]) continue;
                const uint64_t *s = dep_of(p, op->in[i]);
                for (int r = 0; r < p->nred; r++)
                    if (s[r / 64] >> (r % 64) & 1) p->in_c[r] = false;
            }
            return false;
        }
        memset(acc, 0, (size_t)p->nw * sizeof *acc);
        for (int i = 0; i < op->nin; i++) {
            const uint64_t *s = dep_of(p, op->in[i]);
            for (int w = 0; w < p->nw; w++) acc[w] |= s[w];
        }
        if (p->red[k] >= 0 && p->in_c[p->red[k]]) acc[p->red[k] / 64] |= 1ull << (p->red[k] % 64);
        for (int j = 0; j < op->nout; j++) memcpy(dep_of(p, op->out[j]), acc, (size_t)p->nw * sizeof *acc);
    }
    return true;
}

static tir_status oom(tir_diag *d) { return tir_diag_set(d, TIR_ERR_OOM, NULL, (tir_loc){0, 0}, "out of memory"); }

/* rewrites f (flat: no calls, no composites) into its magnitude program */
static tir_status transform(tir_func *f, int *ntransformed, tir_diag *d) {
    mag_plan p = {0};
    int maxin = 1;
    for (int k = 0; k < f->nops; k++) {
        if (f->ops[k]->nin > maxin) maxin = f->ops[k]->nin;
        p.nred += is_reduction(f->ops[k]);
    }
    p.nvals = f->nvalues;
    for (int i = 0; i < f->nparams; i++)
        if (f->params[i]->id >= p.nvals) p.nvals = f->params[i]->id + 1;
    for (int k = 0; k < f->nops; k++)
        for (int j = 0; j < f->ops[k]->nout; j++)
            if (f->ops[k]->out[j]->id >= p.nvals) p.nvals = f->ops[k]->out[j]->id + 1;
    p.nw = p.nred / 64 + 1;
    p.dep = calloc((size_t)p.nvals * (size_t)p.nw + 1, sizeof *p.dep);
    p.red = calloc((size_t)f->nops + 1, sizeof *p.red);
    p.in_c = calloc((size_t)p.nred + 1, sizeof *p.in_c);
    bool *tin = calloc((size_t)maxin, sizeof *tin);
    uint64_t *acc = calloc((size_t)p.nw, sizeof *acc);
    tir_status st = TIR_OK;
    if (!p.dep || !p.red || !p.in_c || !tin || !acc) {
        st = oom(d);
        goto out;
    }
    for (int k = 0, r = 0; k < f->nops; k++) {
        p.red[k] = is_reduction(f->ops[k]) ? r++ : -1;
        if (p.red[k] >= 0) p.in_c[p.red[k]] = true;
    }
    while (!sweep(f, &p, tin, acc)) {
    }
    int n = 0;
    for (int r = 0; r < p.nred; r++) n += p.in_c[r];
    if (ntransformed) *ntransformed = n;
    if (n == 0) goto out; /* nothing tracked: the function is its own magnitude program */

    tir_rw rw;
    if ((st = tir_rw_begin(&rw, f, d)) != TIR_OK) goto out;
    for (int k = 0; k < rw.nold && st == TIR_OK; k++) {
        const tir_op *op = rw.old[k];
        if (op->nout < 1 || !any_bit(&p, op->out[0])) { /* untracked: as in the original */
            if (!tir_rw_copy(&rw, op)) st = tir_rw_fail(d);
            continue;
        }
        tir_value **in = tir_rw_operands(&rw, op);
        if (!in) {
            st = oom(d);
            break;
        }
        tir_ib b = {.f = rw.f, .loc = op->loc, .d = d};
        /* an operand's magnitude: M_x for a tracked x (already >= 0), |x| for an untracked float;
         * conditions and indices (bool, int) stay as they are */
        for (int i = 0; i < op->nin && !b.failed; i++)
            if (!any_bit(&p, op->in[i]) && tir_dtype_is_float(in[i]->type.dtype))
                in[i] = tir_ib_un(&b, TIR_OP_ABS, in[i]);
        tir_value *one = NULL;
        if (b.failed) st = tir_rw_fail(d);
        else if (op->code == TIR_OP_NEG) one = in[0];
        else if (op->code == TIR_OP_SUB) one = tir_ib_bin(&b, TIR_OP_ADD, in[0], in[1]);
        if (st == TIR_OK && (op->code == TIR_OP_NEG || op->code == TIR_OP_SUB)) {
            st = one ? tir_rw_replace(&rw, op, &one) : tir_rw_fail(d);
        } else if (st == TIR_OK) {
            tir_op *nop = tir_rw_clone(rw.f, op, in, NULL, d);
            st = nop ? tir_rw_replace(&rw, op, nop->out) : tir_rw_fail(d);
        }
        free(in);
    }
    st = tir_rw_end(&rw, st);
out:
    free(p.dep);
    free(p.red);
    free(p.in_c);
    free(tin);
    free(acc);
    return st;
}

tir_status tir_magnitude_module(tir_context *ctx, const char *src, const char *func, tir_module **out,
                                int *ntransformed, tir_diag *d) {
    tir_module *m = NULL;
    *out = NULL;
    if (ntransformed) *ntransformed = 0;
    tir_status st = tir_module_parse(ctx, src, "magnitudes.tir", &m, d);
    if (st == TIR_OK) st = tir_pass_grad(m, d);
    if (st == TIR_OK) st = tir_pass_inline(m, d);
    if (st == TIR_OK) st = tir_pass_decompose(m, d);
    tir_func *f = st == TIR_OK ? tir_module_find(m, func) : NULL;
    if (st == TIR_OK && !f) st = tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "no function @%s", func);
    if (st == TIR_OK) st = transform(f, ntransformed, d);
    if (st == TIR_OK) st = tir_verify(m, d);
    if (st != TIR_OK) {
        tir_module_free(m);
        return st;
    }
    *out = m;
    return TIR_OK;
}

tir_status tir_interpret_magnitudes(tir_context *ctx, const char *src, const char *func, int nargs,
                                    tir_tensor *const *args, int nres, tir_tensor **mag, tir_diag *d) {
    tir_module *m = NULL;
    for (int k = 0; k < nres; k++) mag[k] = NULL;
    tir_status st = tir_magnitude_module(ctx, src, func, &m, NULL, d);
    if (st == TIR_OK) st = tir_interpret(m, func, nargs, args, nres, mag, d);
    tir_module_free(m);
    return st;
}

tir_status tir_interpret_magnitudes_of(tir_module *m, const char *func, int nargs, tir_tensor *const *args,
                                       int nres, tir_tensor **mag, tir_diag *d) {
    for (int k = 0; k < nres; k++) mag[k] = NULL;
    char *src = tir_module_print(m);
    if (!src) return oom(d);
    tir_status st = tir_interpret_magnitudes(m->ctx, src, func, nargs, args, nres, mag, d);
    tir_free(src);
    return st;
}

double tir_rel_error_mag(const tir_tensor *out, const tir_tensor *ref, const tir_tensor *mag) {
    double e = tir_rel_error(out, ref);
    if (!mag || !isfinite(e) || tir_tensor_dtype(mag) != tir_tensor_dtype(ref) ||
        tir_tensor_rank(mag) != tir_tensor_rank(ref))
        return e;
    for (int i = 0; i < tir_tensor_rank(ref); i++)
        if (tir_tensor_dim(mag, i) != tir_tensor_dim(ref, i)) return e;
    /* tir_rel_error accepted the NaN / infinity pattern: the rest are finite pairs */
    double diff = 0, scale = 0;
    int64_t n = tir_tensor_numel(ref);
    for (int64_t i = 0; i < n; i++) {
        double o = tir_tensor_get(out, i), r = tir_tensor_get(ref, i), m = tir_tensor_get(mag, i);
        if (!isfinite(o) || !isfinite(r)) continue;
        diff += (o - r) * (o - r);
        double s = r * r;
        if (isfinite(m) && m * m > s) s = m * m;
        scale += s;
    }
    double em = scale > 0 ? sqrt(diff) / sqrt(scale) : sqrt(diff);
    return em < e ? em : e;
}

/* ---------------------------------------------------------------- one run's comparison */

double tir_mag_check_error(tir_mag_check *c, int k, const tir_tensor *out, const tir_tensor *ref, double tol,
                           double *plain) {
    double e = tir_rel_error(out, ref);
    if (plain) *plain = e;
    if (!isfinite(e) || e <= tol) return e;
    if (!c->tried) {
        c->tried = true;
        const char *src = c->src;
        if (!src && c->m) src = c->text = tir_module_print(c->m);
        tir_diag d;
        c->mag = calloc((size_t)c->nres + 1, sizeof *c->mag);
        if (!src || !c->mag) {
            fprintf(stderr, "@%s: no magnitude program: out of memory\n", c->func);
        } else if (tir_interpret_magnitudes(c->ctx, src, c->func, c->nargs, c->args, c->nres, c->mag, &d) != TIR_OK) {
            fprintf(stderr, "@%s: no magnitude program: %s\n", c->func, d.msg);
            for (int i = 0; i < c->nres; i++) {
                tir_tensor_free(c->mag[i]);
                c->mag[i] = NULL;
            }
        }
    }
    return c->mag && k < c->nres && c->mag[k] ? tir_rel_error_mag(out, ref, c->mag[k]) : e;
}

void tir_mag_check_free(tir_mag_check *c) {
    for (int i = 0; c->mag && i < c->nres; i++) tir_tensor_free(c->mag[i]);
    free(c->mag);
    tir_free(c->text);
    c->mag = NULL;
    c->text = NULL;
}
