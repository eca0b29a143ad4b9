/* matmul.c: batched matmul as a shared-memory tiled SIMT kernel (tensor cores come later).
 *
 *   a is (A.., M, K) or (A.., K, M) with transpose_a; b is (B.., K, N) or (B.., N, K) with
 *   transpose_b; out is (Z.., M, N) where Z is the broadcast of A and B (an operand's constant-1
 *   batch dims repeat). out[z, m, n] = sum_k a[z, m, k] b[z, k, n], accumulated in f32 (f64 for
 *   f64) with fma, rounded once to the dtype.
 *
 * Tiling: a block of 256 threads owns a 64x64 tile of one batch's output and walks K in steps of
 * 16: it stages a 64x16 slab of a and a 16x64 slab of b in shared memory (zeros past the edges,
 * so any M, N, K works), then each thread accumulates a 4x4 patch. Tiles of all batches are one
 * flat range that blocks stride over, so the grid may be any size. */
#include "cg.h"

#define BM 64
#define BN 64
#define BK 16
#define TM 4
#define TN 4
#define THREADS 256 /* (BM / TM) * (BN / TN) */

/* stages one BK-slab: element e of the slab (0 <= e < BK*64, slab index of thread + q*THREADS)
 * for operand x (rows r = the non-K dim, R its size); `kmajor` when x is stored (.., K, R) */
static void stage(cg *g, tir_dtype dt, LLVMTypeRef ct, LLVMValueRef xbuf, LLVMValueRef xoff,
                  bool kmajor, LLVMValueRef r0, LLVMValueRef R, LLVMValueRef k0, LLVMValueRef K,
                  LLVMValueRef smem, LLVMValueRef tid) {
    LLVMBuilderRef B = g->B;
    for (int q = 0; q < BK * 64 / THREADS; q++) {
        LLVMValueRef e = LLVMBuildAdd(B, tid, cg_i64(g, q * THREADS), "");
        /* consecutive threads read consecutive addresses of the operand */
        LLVMValueRef rr, kk;
        if (kmajor) {
            kk = LLVMBuildLShr(B, e, cg_i64(g, 6), "");
            rr = LLVMBuildAnd(B, e, cg_i64(g, 63), "");
        } else {
            rr = LLVMBuildLShr(B, e, cg_i64(g, 4), "");
            kk = LLVMBuildAnd(B, e, cg_i64(g, BK - 1), "");
        }
        LLVMValueRef gr = LLVMBuildAdd(B, r0, rr, ""), gk = LLVMBuildAdd(B, k0, kk, "");
        LLVMValueRef in = LLVMBuildAnd(B, LLVMBuildICmp(B, LLVMIntULT, gr, R, ""),
                                       LLVMBuildICmp(B, LLVMIntULT, gk, K, ""), "");
        LLVMValueRef at = kmajor ? LLVMBuildAdd(B, LLVMBuildMul(B, gk, R, ""), gr, "")
                                 : LLVMBuildAdd(B, LLVMBuildMul(B, gr, K, ""), gk, "");
        at = LLVMBuildAdd(B, xoff, at, "");
        /* past the edge read element 0 of the batch (always there) and use 0 */
        LLVMValueRef v = cg_load_c(g, dt, xbuf, LLVMBuildSelect(B, in, at, xoff, ""));
        v = LLVMBuildSelect(B, in, v, LLVMConstReal(ct, 0.0), "");
        LLVMValueRef slot = LLVMBuildAdd(B, LLVMBuildMul(B, kk, cg_i64(g, 64), ""), rr, "");
        LLVMBuildStore(B, v, cg_gep(g, ct, smem, slot));
    }
}

static const tir_dim *dmul(cg *g, const tir_dim *a, const tir_dim *b) {
    const tir_dim *r = tir_dim_mul(g->ctx, a, b);
    if (!r) {
        cg_fail(g, TIR_ERR_UNSUPPORTED, "launch size overflows int64");
        return tir_dim_const(g->ctx, 1);
    }
    return r;
}

tir_status cg_lower_matmul(cg *g, const char *name) {
    const tir_op *op = g->op;
    const tir_type *at = &op->in[0]->type, *bt = &op->in[1]->type, *ot = &op->out[0]->type;
    if (at->rank < 2 || bt->rank < 2 || ot->rank < 2)
        return cg_fail(g, TIR_ERR_TYPE, "codegen: matmul operands need rank >= 2");
    bool ta = tir_attr_bool(op, "transpose_a", false), tb = tir_attr_bool(op, "transpose_b", false);
    const tir_dim *Md = ot->dims[ot->rank - 2], *Nd = ot->dims[ot->rank - 1];
    const tir_dim *Kd = at->dims[at->rank - (ta ? 2 : 1)];
    tir_type zt = *ot, za = *at, zb = *bt; /* the batch parts */
    zt.rank -= 2;
    za.rank -= 2;
    zb.rank -= 2;
    cg_use_type(g, at);
    cg_use_type(g, bt);
    cg_use_type(g, ot);
    cg_begin_kernel(g, name, 3, THREADS);
    LLVMBuilderRef B = g->B;
    tir_dtype dt = ot->dtype;
    LLVMTypeRef ct = dt == TIR_F64 ? g->t_f64 : g->t_f32;
    LLVMValueRef As = cg_shared_array(g, "mm_a", ct, BK * BM);
    LLVMValueRef Bs = cg_shared_array(g, "mm_b", ct, BK * BN);
    LLVMValueRef acc[TM * TN];
    for (int j = 0; j < TM * TN; j++) acc[j] = LLVMBuildAlloca(B, ct, "acc");
    LLVMValueRef M = cg_dimv(g, Md), N = cg_dimv(g, Nd), K = cg_dimv(g, Kd);
    LLVMValueRef tilesM = LLVMBuildUDiv(B, LLVMBuildAdd(B, M, cg_i64(g, BM - 1), ""), cg_i64(g, BM), "");
    LLVMValueRef tilesN = LLVMBuildUDiv(B, LLVMBuildAdd(B, N, cg_i64(g, BN - 1), ""), cg_i64(g, BN), "");
    LLVMValueRef ntiles = LLVMBuildMul(B, LLVMBuildMul(B, tilesM, tilesN, ""), cg_numel(g, &zt), "");
    LLVMValueRef tid = cg_sreg(g, "tid.x");
    LLVMValueRef tx = LLVMBuildAnd(B, tid, cg_i64(g, BN / TN - 1), "");
    LLVMValueRef ty = LLVMBuildLShr(B, tid, cg_i64(g, 4), "");
    LLVMValueRef MK = LLVMBuildMul(B, M, K, ""), KN = LLVMBuildMul(B, K, N, "");

    // tile t = ((z * tilesM) + bm) * tilesN + bn
    cg_loop lt;
    LLVMValueRef t = cg_for_begin(g, &lt, cg_sreg(g, "ctaid.x"), ntiles, cg_sreg(g, "nctaid.x"));
    LLVMValueRef bn = LLVMBuildURem(B, t, tilesN, "");
    LLVMValueRef rest = LLVMBuildUDiv(B, t, tilesN, "");
    LLVMValueRef bm = LLVMBuildURem(B, rest, tilesM, "");
    LLVMValueRef z = LLVMBuildUDiv(B, rest, tilesM, "");
    LLVMValueRef zc[TIR_MAX_RANK];
    cg_unravel(g, z, &zt, zc);
    LLVMValueRef aoff = LLVMBuildMul(B, cg_bcast_offset(g, &za, zt.rank, zc), MK, "");
    LLVMValueRef boff = LLVMBuildMul(B, cg_bcast_offset(g, &zb, zt.rank, zc), KN, "");
    LLVMValueRef ooff = LLVMBuildMul(B, z, LLVMBuildMul(B, M, N, ""), "");
    LLVMValueRef m0 = LLVMBuildMul(B, bm, cg_i64(g, BM), ""), n0 = LLVMBuildMul(B, bn, cg_i64(g, BN), "");
    for (int j = 0; j < TM * TN; j++) LLVMBuildStore(B, LLVMConstReal(ct, 0.0), acc[j]);
    LLVMValueRef arow = LLVMBuildMul(B, ty, cg_i64(g, TM), ""); /* the thread's 4x4 patch */
    LLVMValueRef bcol = LLVMBuildMul(B, tx, cg_i64(g, TN), "");

    //   K in slabs of BK
    cg_loop lk;
    LLVMValueRef k0 = cg_for_begin(g, &lk, cg_i64(g, 0), K, cg_i64(g, BK));
    stage(g, at->dtype, ct, g->buf[0], aoff, ta, m0, M, k0, K, As, tid);
    stage(g, bt->dtype, ct, g->buf[1], boff, !tb, n0, N, k0, K, Bs, tid);
    cg_barrier(g);
    LLVMValueRef cur[TM * TN];
    for (int j = 0; j < TM * TN; j++) cur[j] = LLVMBuildLoad2(B, ct, acc[j], "");
    for (int kk = 0; kk < BK; kk++) {
        LLVMValueRef av[TM], bv[TN];
        for (int i = 0; i < TM; i++)
            av[i] = LLVMBuildLoad2(B, ct, cg_gep(g, ct, As, LLVMBuildAdd(B, arow, cg_i64(g, kk * 64 + i), "")), "");
        for (int j = 0; j < TN; j++)
            bv[j] = LLVMBuildLoad2(B, ct, cg_gep(g, ct, Bs, LLVMBuildAdd(B, bcol, cg_i64(g, kk * 64 + j), "")), "");
        for (int i = 0; i < TM; i++)
            for (int j = 0; j < TN; j++) {
                LLVMValueRef args[3] = {av[i], bv[j], cur[i * TN + j]};
                cur[i * TN + j] = cg_intr(g, "llvm.fma", ct, 1, &ct, 3, args);
            }
    }
    for (int j = 0; j < TM * TN; j++) LLVMBuildStore(B, cur[j], acc[j]);
    cg_barrier(g); /* the slabs are overwritten next step */
    cg_for_end(g, &lk);

    //   write the 4x4 patch that is inside (M, N)
    for (int i = 0; i < TM; i++)
        for (int j = 0; j < TN; j++) {
            LLVMValueRef gm = LLVMBuildAdd(B, m0, LLVMBuildAdd(B, arow, cg_i64(g, i), ""), "");
            LLVMValueRef gn = LLVMBuildAdd(B, n0, LLVMBuildAdd(B, bcol, cg_i64(g, j), ""), "");
            LLVMValueRef in = LLVMBuildAnd(B, LLVMBuildICmp(B, LLVMIntULT, gm, M, ""),
                                           LLVMBuildICmp(B, LLVMIntULT, gn, N, ""), "");
            cg_if c;
            cg_if_begin(g, &c, in);
            LLVMValueRef v = LLVMBuildLoad2(B, ct, acc[i * TN + j], "");
            LLVMValueRef off = LLVMBuildAdd(B, ooff, LLVMBuildAdd(B, LLVMBuildMul(B, gm, N, ""), gn, ""), "");
            cg_store(g, dt, g->buf[2], off, cg_cast(g, dt == TIR_F64 ? TIR_F64 : TIR_F32, v, dt));
            cg_if_end(g, &c);
        }
    cg_for_end(g, &lt);
    LLVMBuildRetVoid(B);

    const tir_dim *gx = dmul(g, dmul(g, cg_ceil_div(g, Md, BM), cg_ceil_div(g, Nd, BN)),
                             cg_numel_dim(g, &zt));
    int64_t v;
    if (tir_dim_is_const(gx, &v) && v > (1 << 20)) gx = tir_dim_const(g->ctx, 1 << 20);
    g->k->grid[0] = gx;
    g->k->grid[1] = tir_dim_const(g->ctx, 1);
    g->k->grid[2] = tir_dim_const(g->ctx, 1);
    return g->st;
}
