/* index.c: take and scatter_add (indexing), iota and full (creation).
 *
 *   take(table, idx, axis)         table (A.., V, B..), idx (I..) i32|i64, out (A.., I.., B..):
 *                                  out[a, i, b] = table[a, idx[i], b]
 *   scatter_add(target, idx, src)  target (A.., V, B..), src (A.., I.., B..), out like target:
 *                                  out = target (the runtime copies it first: init_from = 0),
 *                                  then out[a, idx[i], b] += src[a, i, b] with atomics.
 *   iota(shape, axis, dtype)       out[c] = c[axis], rounded to dtype.
 *   full(value, shape, dtype)      out[c] = value rounded to dtype (rounded here, on the host,
 *                                  by ir/dtype.c, so the bits are the interpreter's).
 *
 * Indices outside [0, V) are skipped, so a bad index never faults: take leaves that output
 * element unwritten (a poisoned buffer shows it) and scatter_add adds nothing. The interpreter
 * reports such an index as an error instead.
 *
 * scatter_add's atomics: f32, f64 and f16 use atomicrmw fadd (bf16 too: native on sm_90, a
 * compare-and-swap loop that LLVM writes on older chips); f8 and ints use our own
 * compare-and-swap loop, f8 rounding after each add and ints saturating (atom.add would wrap).
 * Floats thus round after each add and ints saturate at each add, where the interpreter sums
 * exactly and rounds once: the same unless an int partial sum leaves the range and comes back.
 * 8- and 16-bit atomics touch the aligned 32-bit word holding the element, so buffers must be
 * padded to 4 bytes. */
#include "cg.h"

/* idx[...] as i64 and whether it is in [0, v) */
static LLVMValueRef load_index(cg *g, tir_dtype dt, LLVMValueRef buf, LLVMValueRef off,
                               LLVMValueRef v, LLVMValueRef *ok) {
    LLVMValueRef x = cg_load(g, dt, buf, off);
    if (dt != TIR_I64) x = LLVMBuildSExt(g->B, x, g->t_i64, "");
    *ok = LLVMBuildICmp(g->B, LLVMIntULT, x, v, ""); /* unsigned: negatives are huge */
    return x;
}

/* coords of the table-shaped tensor t from the data-shaped coords dc: dc[axis..axis+ir) are
 * replaced by the one index iv */
static LLVMValueRef table_offset(cg *g, const tir_type *t, int axis, int ir, LLVMValueRef *dc,
                                 LLVMValueRef iv) {
    LLVMValueRef tc[TIR_MAX_RANK];
    for (int j = 0; j < axis; j++) tc[j] = dc[j];
    tc[axis] = iv;
    for (int j = axis + 1; j < t->rank; j++) tc[j] = dc[j - 1 + ir];
    return cg_offset(g, t, tc);
}

static LLVMValueRef to_i64(cg *g, tir_dtype dt, LLVMValueRef v) {
    if (dt == TIR_I64) return v;
    return dt == TIR_U8 ? LLVMBuildZExt(g->B, v, g->t_i64, "") : LLVMBuildSExt(g->B, v, g->t_i64, "");
}

/* *p = *p + v (storage values of dt) in a compare-and-swap loop: for f8 (rounded after each add)
 * and ints (saturating, where atom.add would wrap) */
static void cas_add(cg *g, tir_dtype dt, LLVMValueRef p, LLVMValueRef v, unsigned scope) {
    LLVMBuilderRef B = g->B;
    LLVMTypeRef st = cg_stype(g, dt);
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(B);
    LLVMValueRef first = LLVMBuildLoad2(B, st, p, "");
    LLVMBasicBlockRef loop = LLVMAppendBasicBlockInContext(g->C, g->fn, "cas");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(g->C, g->fn, "cas_done");
    LLVMBuildBr(B, loop);
    LLVMPositionBuilderAtEnd(B, loop);
    LLVMValueRef old = LLVMBuildPhi(B, st, "old");
    LLVMValueRef nv;
    if (tir_dtype_is_float(dt)) {
        nv = cg_narrow(g, dt, LLVMBuildFAdd(B, cg_widen(g, dt, old), cg_widen(g, dt, v), ""));
    } else {
        LLVMValueRef sum = cg_intr2(g, "llvm.sadd.sat", to_i64(g, dt, old), to_i64(g, dt, v));
        nv = cg_cast(g, TIR_I64, sum, dt);
    }
    LLVMValueRef pair = LLVMBuildAtomicCmpXchgSyncScope(B, p, old, nv, LLVMAtomicOrderingMonotonic,
                                                        LLVMAtomicOrderingMonotonic, scope);
    LLVMValueRef seen = LLVMBuildExtractValue(B, pair, 0, "");
    LLVMAddIncoming(old, &first, &pre, 1);
    LLVMAddIncoming(old, &seen, &loop, 1);
    LLVMBuildCondBr(B, LLVMBuildExtractValue(B, pair, 1, ""), done, loop);
    LLVMPositionBuilderAtEnd(B, done);
}

static void atomic_add(cg *g, tir_dtype dt, LLVMValueRef buf, LLVMValueRef off, LLVMValueRef sv) {
    LLVMBuilderRef B = g->B;
    unsigned scope = LLVMGetSyncScopeID(g->C, "device", 6);
    if (dt == TIR_F8E4M3 || dt == TIR_F8E5M2 || tir_dtype_is_int(dt)) {
        cas_add(g, dt, cg_gep(g, cg_stype(g, dt), buf, off), sv, scope);
        return;
    }
    LLVMTypeRef st = dt == TIR_BF16 ? g->t_bf16 : cg_stype(g, dt);
    LLVMValueRef v = dt == TIR_BF16 ? LLVMBuildBitCast(B, sv, g->t_bf16, "") : sv;
    LLVMBuildAtomicRMWSyncScope(B, LLVMAtomicRMWBinOpFAdd, cg_gep(g, st, buf, off), v,
                                LLVMAtomicOrderingMonotonic, scope);
}

static tir_status lower_take(cg *g, const char *name, bool scatter) {
    const tir_op *op = g->op;
    const tir_type *tt = &op->in[0]->type, *it = &op->in[1]->type;
    const tir_type *dt = scatter ? &op->in[2]->type : &op->out[0]->type; /* data-shaped */
    int axis;
    if (!tir_norm_axis(tir_attr_int(op, "axis", 0), tt->rank, &axis))
        return cg_fail(g, TIR_ERR_TYPE, "codegen: axis out of range");
    if (dt->rank != tt->rank - 1 + it->rank)
        return cg_fail(g, TIR_ERR_TYPE, "codegen: shapes of %s do not agree", tir_ops[op->code].name);
    for (int k = 0; k < op->nin; k++) cg_use_type(g, &op->in[k]->type);
    cg_use_type(g, &op->out[0]->type);
    cg_begin_kernel(g, name, op->nin + 1, CG_BLOCK);
    LLVMValueRef V = cg_dimv(g, tt->dims[axis]);
    // over the data-shaped tensor (A.., I.., B..): out for take, src for scatter_add
    cg_loop l;
    LLVMValueRef i = cg_grid_loop_begin(g, &l, cg_numel(g, dt));
    LLVMValueRef c[TIR_MAX_RANK];
    cg_unravel(g, i, dt, c);
    LLVMValueRef ioff = cg_offset(g, it, c + axis), ok;
    LLVMValueRef iv = load_index(g, it->dtype, g->buf[1], ioff, V, &ok);
    cg_if in;
    cg_if_begin(g, &in, ok);
    LLVMValueRef toff = table_offset(g, tt, axis, it->rank, c, iv);
    if (scatter) atomic_add(g, tt->dtype, g->buf[3], toff, cg_load(g, tt->dtype, g->buf[2], i));
    else cg_store(g, tt->dtype, g->buf[2], i, cg_load(g, tt->dtype, g->buf[0], toff));
    cg_if_end(g, &in);
    cg_for_end(g, &l);
    LLVMBuildRetVoid(g->B);
    cg_launch_1d(g, cg_numel_dim(g, dt));
    if (scatter) g->k->init_from = 0;
    return g->st;
}

tir_status cg_lower_index(cg *g, const char *name) {
    return lower_take(g, name, g->op->code == TIR_OP_SCATTER_ADD);
}

tir_status cg_lower_creation(cg *g, const char *name) {
    const tir_op *op = g->op;
    const tir_type *ot = &op->out[0]->type;
    cg_use_type(g, ot);
    cg_begin_kernel(g, name, 1, CG_BLOCK);
    LLVMBuilderRef B = g->B;
    LLVMValueRef fill = NULL;
    int ax = 0;
    if (op->code == TIR_OP_FULL) {
        /* the interpreter's bits for value, stored through an integer of the same width */
        unsigned char bytes[8] = {0};
        tir_dtype_store(ot->dtype, bytes, tir_attr_float(op, "value", 0.0));
        size_t sz = tir_dtype_size(ot->dtype);
        uint64_t bits = 0;
        memcpy(&bits, bytes, sz); /* little-endian, like the device */
        fill = LLVMConstInt(LLVMIntTypeInContext(g->C, (unsigned)(8 * sz)), bits, 0);
    } else if (ot->rank > 0 && !tir_norm_axis(tir_attr_int(op, "axis", 0), ot->rank, &ax)) {
        return cg_fail(g, TIR_ERR_TYPE, "codegen: iota axis out of range");
    }
    // out is (S..); flat index i
    cg_loop l;
    LLVMValueRef i = cg_grid_loop_begin(g, &l, cg_numel(g, ot));
    if (fill) {
        LLVMBuildStore(B, fill, cg_gep(g, LLVMTypeOf(fill), g->buf[0], i));
    } else {
        LLVMValueRef c[TIR_MAX_RANK], k = cg_i64(g, 0);
        if (ot->rank > 0) {
            cg_unravel(g, i, ot, c);
            k = c[ax];
        }
        cg_store(g, ot->dtype, g->buf[0], i, cg_cast(g, TIR_I64, k, ot->dtype));
    }
    cg_for_end(g, &l);
    LLVMBuildRetVoid(B);
    cg_launch_1d(g, cg_numel_dim(g, ot));
    return g->st;
}
