/* matmul_mma.h: the tensor-core matmul template of codegen/ (matmul_mma.c): one `matmul` op with
 * 16-bit float operands (bf16 or f16), f32 accumulation and an output in the op's dtype, lowered
 * to one kernel that keeps the tensor cores busy. Two main loops share the loaders and the
 * epilogue:
 *   - mma.sync (sm_80+): cp.async 16-byte copies global -> shared in a multi-stage pipeline,
 *     XOR-swizzled shared tiles, ldmatrix into fragments, mma.sync.m16n8k16 with f32 accumulators;
 *   - wgmma (sm_90a, cfg->wgmma): the same cp.async pipeline into shared tiles laid out as wgmma's
 *     128-byte-swizzle canonical layout, wgmma.mma_async.m64nNk16 issued by warpgroups.
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
} tir_mma_config;

/* true when the template handles this op for this target: a matmul with bf16 or f16 operands
 * (output in the same dtype) on sm_80 or newer (opts->arch; NULL means sm_90a). */
bool tir_matmul_mma_ok(const tir_op *op, const tir_codegen_options *opts);

/* A mma.sync tiling for this op's shape (symbolic sizes are taken as large): 128x128 blocks for
 * big problems, 64x64 for small ones, 3-4 pipeline stages. Valid on every arch the template takes. */
void tir_mma_pick_config(const tir_op *op, tir_mma_config *cfg);
/* The best tiling for this op on `arch` (NULL: sm_90a): a wgmma one on sm_90a for problems that
 * are not small, else as above. $TIR_MATMUL_WGMMA=0 keeps to mma.sync everywhere. */
void tir_mma_pick_config_for(const tir_op *op, const char *arch, tir_mma_config *cfg);

/* false (with a reason in why) when cfg is not a tiling the generator supports */
bool tir_mma_config_valid(const tir_mma_config *cfg, char *why, size_t n);

/* Lowers the matmul op to one kernel "tir_matmul_mma_<id>" (cfg NULL: tir_mma_pick_config_for).
 * Kernel parameters: a, b, out, then the symbolic sizes (codegen.h); grid (tiles of M x tiles of
 * N, batch, 1); dynamic shared memory in out->shared_bytes (can exceed 48 KiB: the runtime opts
 * the kernel in). TIR_ERR_UNSUPPORTED when !tir_matmul_mma_ok, TIR_ERR_INVALID for a bad cfg,
 * TIR_ERR_LLVM when LLVM fails. */
tir_status tir_codegen_matmul_mma(tir_context *ctx, const tir_op *op, int id,
                                  const tir_codegen_options *opts, const tir_mma_config *cfg,
                                  tir_kernel *out, tir_diag *d);

#endif
