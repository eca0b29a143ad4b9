/* movement.c: reshape, transpose, broadcast, slice, concat and split as index maps. Elements
 * move as their storage bits (no conversion), so every dtype, NaN payloads included, is copied
 * exactly.
 *
 *   reshape    no kernel: buffers are dense row-major, so the result aliases operand 0.
 *   transpose  out (x.dims[perm[0]], ...): out[c] = x[c'] with c'[perm[j]] = c[j].
 *   broadcast  out (S...): out[c] = x[c aligned right, 0 on x's constant-1 dims].
 *   slice      out is x with dim `axis` = len: out[c] = x[c with c[axis] = start + c[axis]*step];
 *              start follows Python (negative counts from the end, then clamped to [0, dim]),
 *              computed in the kernel from the runtime dim.
 *   concat     out (.., sum of Dk, ..): one kernel, one grid-stride loop per operand k copying
 *              x_k[c] to out[c with c[axis] += D0 + ... + Dk-1].
 *   split      the reverse: one kernel writes every result, loop k copying
 *              x[c with c[axis] += S0 + ... + Sk-1] to out_k[c]; results are buffers 1.. */
#include "cg.h"

static tir_status finish_1d(cg *g, const tir_type *t) {
    LLVMBuildRetVoid(g->B);
    cg_launch_1d(g, cg_numel_dim(g, t));
    return g->st;
}

static void copy_elt(cg *g, tir_dtype dt, LLVMValueRef src, LLVMValueRef soff, LLVMValueRef dst,
                     LLVMValueRef doff) {
    cg_store(g, dt, dst, doff, cg_load(g, dt, src, soff));
}

/* gather kernels: out[i] = x[map(coords of i)] */
static tir_status gather(cg *g, const char *name) {
    const tir_op *op = g->op;
    const tir_type *xt = &op->in[0]->type, *ot = &op->out[0]->type;
    cg_use_type(g, xt);
    cg_use_type(g, ot);
    cg_begin_kernel(g, name, 2, CG_BLOCK);
    LLVMBuilderRef B = g->B;
    cg_loop l;
    LLVMValueRef i = cg_grid_loop_begin(g, &l, cg_numel(g, ot));
    LLVMValueRef c[TIR_MAX_RANK], xc[TIR_MAX_RANK];
    cg_unravel(g, i, ot, c);
    LLVMValueRef off;
    switch (op->code) {
    case TIR_OP_TRANSPOSE: {
        const tir_attr_value *p = tir_op_attr(op, "perm");
        if (!p || p->u.ints.n != xt->rank) return cg_fail(g, TIR_ERR_TYPE, "codegen: bad perm");
        for (int j = 0; j < ot->rank; j++) {
            int64_t pj = p->u.ints.v[j];
            if (pj < 0 || pj >= xt->rank) return cg_fail(g, TIR_ERR_TYPE, "codegen: bad perm");
            xc[pj] = c[j];
        }
        off = cg_offset(g, xt, xc);
        break;
    }
    case TIR_OP_BROADCAST: off = cg_bcast_offset(g, xt, ot->rank, c); break;
    case TIR_OP_SLICE: {
        int ax;
        if (!tir_norm_axis(tir_attr_int(op, "axis", 0), xt->rank, &ax))
            return cg_fail(g, TIR_ERR_TYPE, "codegen: slice axis out of range");
        int64_t step = tir_attr_int(op, "step", 1), start = tir_attr_int(op, "start", 0);
        LLVMValueRef dim = cg_dimv(g, xt->dims[ax]);
        LLVMValueRef s;
        if (start < 0)
            s = cg_smax(g, LLVMBuildAdd(B, dim, cg_i64(g, start), ""), cg_i64(g, 0));
        else
            s = cg_smin(g, cg_i64(g, start), dim);
        for (int j = 0; j < xt->rank; j++) xc[j] = c[j];
        xc[ax] = LLVMBuildAdd(B, s, LLVMBuildMul(B, c[ax], cg_i64(g, step), ""), "");
        off = cg_offset(g, xt, xc);
        break;
    }
    default: return cg_fail(g, TIR_ERR_INTERNAL, "codegen: not a gather");
    }
    copy_elt(g, ot->dtype, g->buf[0], off, g->buf[1], i);
    cg_for_end(g, &l);
    return finish_1d(g, ot);
}

/* concat (to_out) and split (!to_out): part k of the big tensor `whole` is `part[k]` */
static tir_status pieces(cg *g, const char *name, bool to_out) {
    const tir_op *op = g->op;
    const tir_type *whole = to_out ? &op->out[0]->type : &op->in[0]->type;
    int n = to_out ? op->nin : op->nout;
    int ax;
    if (!tir_norm_axis(tir_attr_int(op, "axis", 0), whole->rank, &ax))
        return cg_fail(g, TIR_ERR_TYPE, "codegen: axis out of range");
    for (int k = 0; k < op->nin; k++) cg_use_type(g, &op->in[k]->type);
    for (int k = 0; k < op->nout; k++) cg_use_type(g, &op->out[k]->type);
    cg_begin_kernel(g, name, op->nin + op->nout, CG_BLOCK);
    LLVMBuilderRef B = g->B;
    LLVMValueRef wbuf = to_out ? g->buf[op->nin] : g->buf[0];
    LLVMValueRef at = cg_i64(g, 0);
    for (int k = 0; k < n; k++) {
        const tir_type *pt = to_out ? &op->in[k]->type : &op->out[k]->type;
        LLVMValueRef pbuf = to_out ? g->buf[k] : g->buf[1 + k];
        // part k is (.., Dk, ..); in whole it starts at `at` along axis
        cg_loop l;
        LLVMValueRef i = cg_grid_loop_begin(g, &l, cg_numel(g, pt));
        LLVMValueRef c[TIR_MAX_RANK];
        cg_unravel(g, i, pt, c);
        c[ax] = LLVMBuildAdd(B, c[ax], at, "");
        LLVMValueRef woff = cg_offset(g, whole, c);
        if (to_out) copy_elt(g, whole->dtype, pbuf, i, wbuf, woff);
        else copy_elt(g, whole->dtype, wbuf, woff, pbuf, i);
        cg_for_end(g, &l);
        at = LLVMBuildAdd(B, at, cg_dimv(g, pt->dims[ax]), "");
    }
    return finish_1d(g, whole);
}

tir_status cg_lower_movement(cg *g, const char *name) {
    switch (g->op->code) {
    case TIR_OP_RESHAPE:
        g->k->alias_of = 0;
        for (int a = 0; a < 3; a++) {
            g->k->grid[a] = tir_dim_const(g->ctx, 1);
            g->k->block[a] = 1;
        }
        return TIR_OK;
    case TIR_OP_TRANSPOSE:
    case TIR_OP_BROADCAST:
    case TIR_OP_SLICE: return gather(g, name);
    case TIR_OP_CONCAT: return pieces(g, name, true);
    case TIR_OP_SPLIT: return pieces(g, name, false);
    default: return cg_fail(g, TIR_ERR_INTERNAL, "codegen: not a movement op");
    }
}
