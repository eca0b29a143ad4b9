/* matmul_mma.h: the tensor-core matmul template of codegen/ (matmul_mma.c): one `matmul` op with
 * 16-bit float operands (bf16 or f16), f32 accumulation and an output in the op's dtype, lowered
 * to one kernel that keeps the tensor cores busy. Two main loops share the loaders and the
 * epilogue:
 *   - mma.sync (sm_80+): cp.async 16-byte copies global -> shared in a multi-stage pipeline,
 *     XOR-swizzled shared tiles, ldmatrix into fragments, mma.sync.m16n8k16 with f32 accumulators;
 *   - wgmma (sm_90a, cfg->wgmma): the same cp.async pipeline into shared tiles laid out as wgmma's
 *     128-byte-swizzle canonical layout, wgmma.mma_async.m64nNk16 issued by warpgroups.
 *   - TMA (sm_90a, cfg->tma): a persistent, warp-specialised kernel. Warpgroup 0 is the
 *     producer: one thread brings the operand tiles with cp.async.bulk.tensor (tensor maps passed
 *     as TIR_KP_TMAP parameters, 128-byte swizzle) into a ring of `stages` buffers, each guarded by
 *     a "full" and an "empty" mbarrier; the other warps_m*warps_n warpgroups are consumers that
 *     issue wgmma on full buffers and release them. setmaxnreg moves registers from the producer
 *     to the consumers. Blocks (one per SM) walk the output tiles grid-stride in grouped order, so
 *     the producer loads the next tile while the consumers store the last. The tensor maps need
 *     16-byte aligned rows: tir_matmul_tma_ok says when an op qualifies.
 * Shapes, transposes and batch broadcasting are the op's (docs/tir.md §10.7); sizes are kernel
 * parameters, so one kernel serves every binding of the symbols. Ragged M, N, K are handled:
 * out-of-range parts of tiles are zero-filled, and an operand whose contiguous dim is not a
 * multiple of 8 elements (16 bytes) is copied with guarded element loads instead of cp.async. */
#ifndef TIR_MATMUL_MMA_H
#define TIR_MATMUL_MMA_H

#include "codegen.h"

/* The tiling of one kernel. Sizes are in elements. */
typedef struct tir_mma_config {
    int bm, bn, bk;       /* block tile: the block computes bm x bn of the output, bk of K per step */
    int warps_m, warps_n; /* warp grid (mma.sync); the warp tile is bm/warps_m x bn/warps_n */
    int stages;           /* depth of the cp.async pipeline (2..8) */
    int group_m;          /* rasterisation: blocks walk groups of group_m tile-rows (L2 reuse) */
    bool wgmma;           /* sm_90a warpgroup path: warps_m*warps_n warpgroups, each bm/warps_m
                             rows (a multiple of 64) by bn/warps_n columns (8..256) */
    bool tma;             /* with wgmma: the warp-specialised persistent kernel (below) */
} tir_mma_config;

/* true when the template handles this op for this target: a matmul with bf16 or f16 operands
 * (output in the same dtype) on sm_80 or newer (opts->arch; NULL means sm_90a). */
bool tir_matmul_mma_ok(const tir_op *op, const tir_codegen_options *opts);

/* A mma.sync tiling for this op's shape (symbolic sizes are taken as large): 128x128 blocks for
 * big problems, 64x64 for small ones, 3-4 pipeline stages. Valid on every arch the template takes. */
void tir_mma_pick_config(const tir_op *op, tir_mma_config *cfg);
/* The best tiling for this op on `arch` (NULL: sm_90a): on sm_90a for problems that are not
 * small, the TMA kernel where tir_matmul_tma_ok, else a cp.async wgmma one; else as above.
 * $TIR_MATMUL_WGMMA=0 keeps to mma.sync everywhere, $TIR_MATMUL_TMA=0 to the cp.async kernels. */
void tir_mma_pick_config_for(const tir_op *op, const char *arch, tir_mma_config *cfg);

/* true when the TMA kernel serves this op on `arch` (NULL: sm_90a): sm_90a, and the contiguous
 * dim of each operand (K or M for a, N or K for b) is a multiple of 8 for every binding (a
 * constant, or a symbolic dim such as 64*H that is structurally one). */
bool tir_matmul_tma_ok(const tir_op *op, const char *arch);

/* false (with a reason in why) when cfg is not a tiling the generator supports */
bool tir_mma_config_valid(const tir_mma_config *cfg, char *why, size_t n);

/* Lowers the matmul op to one kernel "tir_matmul_mma_<id>" (cfg NULL: tir_mma_pick_config_for).
 * Kernel parameters: a, b, out, then the symbolic sizes (codegen.h); grid (tiles of M x tiles of
 * N, batch, 1). The TMA kernel: a, b, out, the tensor maps of a and b (TIR_KP_TMAP), the sizes;
 * grid (all tiles of all batches, 1, 1), clamped at launch to one block per SM (persistent); dynamic shared memory in out->shared_bytes (can exceed 48 KiB: the runtime opts
 * the kernel in). TIR_ERR_UNSUPPORTED when !tir_matmul_mma_ok, TIR_ERR_INVALID for a bad cfg,
 * TIR_ERR_LLVM when LLVM fails. */
tir_status tir_codegen_matmul_mma(tir_context *ctx, const tir_op *op, int id,
                                  const tir_codegen_options *opts, const tir_mma_config *cfg,
                                  tir_kernel *out, tir_diag *d);

/* A fused region (docs/tir.md §11) with schedule kind="matmul": its body is one `matmul` of two
 * region parameters (full() constants may come first) followed by elementwise ops (unary,
 * binary, where, cast; full() constants) whose operands are the matmul's result, earlier
 * members, constants, or region parameters that broadcast to the matmul's output shape [.., M, N]
 * (a bias [N], a residual [.., M, N], a scalar), or casts of such parameters; exactly one
 * result, of the output shape. The matmul may also be an f32 matmul of widened operands:
 * cast(p, dtype=f32) and cast(q, dtype=f32) of parameters p, q of one 16-bit dtype, read by
 * nothing else (a bf16/f16 `linear` as decomposed): the kernel loads p and q as 16 bits (TMA and
 * cp.async alike), multiplies them on the tensor cores in f32, and the f32 accumulator is the
 * matmul's result (16-bit values are exact in f32; only the summation order differs). The
 * kernel applies the epilogue to each f32 accumulator before the single store, rounding each
 * member at its dtype as the interpreter does (the matmul's own result first, to its dtype).
 * Kernel parameters: the region's operands, then its result (TIR_KP_BUFFER indices as the fused
 * op's), the TMA kernel's two tensor maps, then the sizes. The tiling: the schedule's bm, bn,
 * bk, warps_m, warps_n, stages, group_m, wgmma (and tma), over tir_mma_pick_config_for's; the
 * TMA kernel wherever it applies (tma=false keeps the cp.async one); a tiling that is not valid
 * on `arch` gives way to the picker's. TIR_ERR_UNSUPPORTED for any other body, and for
 * split_k > 1 (the caller then runs the members one by one). */
tir_status tir_codegen_matmul_region(tir_context *ctx, const tir_op *fop, int id,
                                     const tir_codegen_options *opts, tir_kernel *out, tir_diag *d);
/* the tiling tir_codegen_matmul_region uses for fop on arch (NULL: sm_90a), or
 * TIR_ERR_UNSUPPORTED (with the reason) when it declines the region */
tir_status tir_region_mma_config(const tir_op *fop, const char *arch, tir_mma_config *cfg,
                                 tir_diag *d);

#endif
