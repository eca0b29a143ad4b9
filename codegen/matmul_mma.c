/* matmul_mma.c: the tensor-core matmul template (see matmul_mma.h for the contract).
 *
 * out[z, M, N] = a[z, M, K] · b[z, K, N], where a is stored [.., M, K] (K-major) or, with
 * transpose_a, [.., K, M] (M-major); b is stored [.., K, N] (N-major) or, with transpose_b,
 * [.., N, K] (K-major); z runs over the broadcast batch dims. Operands are bf16 or f16, the
 * accumulators f32, the output the operands' dtype (rounded to nearest even once, at the end);
 * in a region, the operands may be 16-bit parameters widened to f32 (mm_dtype), and then the
 * matmul's result is the f32 accumulator.
 *
 * Blocks and tiles. Block (pid, z) computes the bm x bn output tile (pid_m, pid_n), with pid
 * mapped to tiles in groups of group_m tile-rows so that blocks running together share A rows and
 * B columns in L2. K is walked in steps of bk through `stages` shared-memory buffers filled by
 * cp.async 16-byte copies (prefetching stages-1 steps ahead for mma.sync, stages-2 for wgmma, whose
 * reads of the previous step may still be in flight).
 *
 * Shared tiles. Each operand tile keeps its global orientation: a K-major tile is
 * [mn rows][bk cols], an MN-major one [bk rows][mn cols]. A row is cut into 16-byte chunks (8
 * elements); `cpr` chunks per row. With cpr >= 8 rows live in 128-byte panels (64 elements of the
 * contiguous dim), panel p holding every row's chunks 8p..8p+7, and chunk c of row r sits at
 * position (c & 7) ^ (r & 7) of the row's 128 bytes: exactly wgmma's 128-byte-swizzle canonical
 * layout when panels are 1024-byte aligned, and free of bank conflicts for ldmatrix (8 rows, one
 * chunk column) and for the copies (8 consecutive chunks of one row). With cpr < 8 (bk 16/32 on a
 * K-major tile) rows are packed and the XOR key is taken from the row's 128-byte line.
 *
 * mma.sync main loop (warps_m x warps_n warps; warp tile wm x wn; per 16-deep k-step):
 *   ldmatrix.x4 (.trans for MN-major tiles) loads, for each 16x16 sub-tile, the four 8x8 matrices
 *   j = (mn half j&1, k half j>>1); lane l addresses row l&7 of matrix l>>3. For A these are
 *   exactly the m16n8k16 A registers a0..a3; for B a pair of n8 tiles: (r0, r2) and (r1, r3).
 *   Accumulators: acc[mt][nt][0..3] = C rows g, g+8 and cols 2t, 2t+1 of the 16x8 tile (mt, nt),
 *   g = lane/4, t = lane%4.
 * wgmma main loop (sm_90a): warpgroup w computes rows wm*(w / warps_n) .. and columns
 *   wn*(w % warps_n) .. with one wgmma.mma_async.m64n<wn>k16 per 64 rows and k-step, both
 *   operands from shared memory through matrix descriptors (128-byte swizzle; K-major: SBO 1024;
 *   MN-major: SBO 1024 between 8-row groups along K, LBO = one panel between 64-wide column
 *   groups). Its accumulators have the mma.sync layout per warp (warp w%4 owns 16 of the 64 rows).
 *
 * TMA kernel (sm_90a, cfg->tma): see "the TMA kernel" below: the same shared-tile layout and
 *   wgmma issue, filled by the copy engine, producer and consumers in separate warpgroups, one
 *   persistent block per SM.
 *
 * Epilogue. The accumulators (of a fused region: after its elementwise members, see "fused
 *   epilogues") are rounded to the output dtype and stored from registers; on the wgmma paths,
 *   16-bit outputs are first exchanged within each quad of lanes so that every lane stores 16
 *   contiguous bytes (a quarter of the store instructions, which bound the epilogue).
 *
 * Edges. Rows and columns beyond M, N, K are zero-filled in shared memory (cp.async with a source
 * size of 0), so partial tiles compute on zeros; the epilogue stores only in-range elements. An
 * operand whose contiguous dim is not a multiple of 8 cannot be copied in 16-byte pieces: its
 * tiles are built from guarded 2-byte loads instead, in a second copy of the main loop (chosen by
 * a uniform branch on the sizes and the pointers' alignment) so that the fast loop carries none
 * of its registers. */
#include <stdio.h>

#include <llvm-c/DebugInfo.h>

#include "cg.h"
#include "matmul_mma.h"

#define MAX_CHUNKS 32    /* 16-byte copies per thread per operand and k-step */
#define MAX_WARPS 16
#define MAX_FRAG 16      /* ldmatrix x4 loads per operand and k-step in a warp */
#define MAX_ACC 256      /* f32 accumulators per thread */

/* ---------------------------------------------------------------- configuration */

static int arch_num(const char *arch, bool *is_a) {
    if (!arch) arch = "sm_90a";
    int v = 0;
    char suffix = 0;
    if (sscanf(arch, "sm_%d%c", &v, &suffix) < 1) return 0;
    if (is_a) *is_a = suffix == 'a';
    return v;
}

static bool wgmma_arch(const char *arch) {
    bool a = false;
    return arch_num(arch, &a) == 90 && a;
}

static bool is16(tir_dtype t) { return t == TIR_BF16 || t == TIR_F16; }

/* operand i of a matmul as a value of dtype t widened to f32: cast(p, dtype=f32) with p of t */
static bool widened(const tir_value *v, tir_dtype *t) {
    const tir_op *c = v->def;
    if (!c || c->code != TIR_OP_CAST || c->nin != 1 || v->type.dtype != TIR_F32) return false;
    *t = c->in[0]->type.dtype;
    return is16(*t);
}

/* The 16-bit dtype op multiplies in: a bf16/f16 matmul with its output in that dtype, or, when
 * wide_ok (inside a region, where the casts' operands are the kernel's buffers), an f32 matmul
 * of two such values widened to f32 (linear's decomposition). The widened form is the same
 * kernel: the 16-bit values are exact in f32, the tensor cores multiply them exactly and add in
 * f32, and the f32 accumulator is the matmul's result (only the summation order differs, as for
 * any matmul). */
static bool mm_dtype(const tir_op *op, bool wide_ok, tir_dtype *dt) {
    if (!op || op->code != TIR_OP_MATMUL || op->nin != 2 || op->nout != 1) return false;
    if (op->in[0]->type.rank < 2 || op->in[1]->type.rank < 2) return false;
    tir_dtype t = op->in[0]->type.dtype, t1;
    if (is16(t)) {
        *dt = t;
        return op->in[1]->type.dtype == t && op->out[0]->type.dtype == t;
    }
    if (!wide_ok || op->out[0]->type.dtype != TIR_F32 || !widened(op->in[0], &t) ||
        !widened(op->in[1], &t1) || t != t1)
        return false;
    *dt = t;
    return true;
}

/* the value the kernel loads for operand i: the operand, or the 16-bit value it widens */
static const tir_value *mm_src(const tir_op *op, int i) {
    tir_dtype t;
    return widened(op->in[i], &t) ? op->in[i]->def->in[0] : op->in[i];
}

bool tir_matmul_mma_ok(const tir_op *op, const tir_codegen_options *opts) {
    tir_dtype t;
    return mm_dtype(op, false, &t) && arch_num(opts ? opts->arch : NULL, NULL) >= 80;
}

static bool pow2(int v) { return v > 0 && (v & (v - 1)) == 0; }

bool tir_mma_config_valid(const tir_mma_config *c, char *why, size_t n) {
#define BAD(...) do { if (why) snprintf(why, n, __VA_ARGS__); return false; } while (0)
    if (!c) BAD("no config");
    if (!pow2(c->bm) || !pow2(c->bn) || !pow2(c->bk)) BAD("bm, bn, bk must be powers of two");
    if (c->bk < 16 || c->bk > 128) BAD("bk must be 16..128");
    if (c->bm < 16 || c->bn < 16 || c->bm > 256 || c->bn > 256) BAD("bm, bn must be 16..256");
    if (c->stages < 2 || c->stages > 8) BAD("stages must be 2..8");
    if (c->group_m < 1) BAD("group_m must be >= 1");
    if (c->warps_m < 1 || c->warps_n < 1) BAD("warps_m, warps_n must be >= 1");
    int groups = c->warps_m * c->warps_n;
    int threads = groups * (c->wgmma ? 128 : 32);
    if (c->tma) threads += 128; /* the producer warpgroup */
    if (threads > 1024 || (c->wgmma ? groups * 4 : groups) > MAX_WARPS) BAD("too many warps");
    int wm = c->bm / c->warps_m, wn = c->bn / c->warps_n;
    if (wm * c->warps_m != c->bm || wn * c->warps_n != c->bn) BAD("warps must divide the tile");
    if (c->wgmma) {
        if (wm % 64) BAD("wgmma: bm/warps_m must be a multiple of 64");
        if (wn % 64 || wn > 256) BAD("wgmma: bn/warps_n must be 64, 128 or 256");
        if (c->bk < 64) BAD("wgmma: bk must be >= 64 (128-byte swizzled rows)");
        if (c->stages < 3) BAD("wgmma: stages must be >= 3");
        if ((wm / 64) * (wn / 2) > MAX_ACC) BAD("wgmma: too many accumulators per thread");
    } else {
        if (wm % 16 || wn % 16) BAD("warp tile must be a multiple of 16x16");
        if ((wm / 16) > MAX_FRAG || (wn / 16) > MAX_FRAG) BAD("warp tile too large");
        if ((wm / 16) * (wn / 8) * 4 > MAX_ACC) BAD("too many accumulators per thread");
    }
    if (c->tma) {
        if (!c->wgmma) BAD("tma: needs wgmma");
        if (c->bk != 64) BAD("tma: bk must be 64 (one 128-byte swizzled row)");
        if (groups > 3) BAD("tma: at most 3 consumer warpgroups");
        if (c->bm > 256 || c->bn > 256) BAD("tma: bm, bn must be <= 256 (one copy's box)");
    } else if ((c->bm * c->bk / 8) % threads || (c->bn * c->bk / 8) % threads) {
        BAD("tile copies must divide evenly among %d threads", threads);
    } else if (c->bm * c->bk / 8 / threads > MAX_CHUNKS || c->bn * c->bk / 8 / threads > MAX_CHUNKS) {
        BAD("too many copies per thread");
    }
    long smem = (long)c->stages * (c->bm + c->bn) * c->bk * 2 + (c->tma ? 16 * c->stages : 0);
    if (smem > 227 * 1024) BAD("needs %ld bytes of shared memory (at most 227 KiB)", smem);
    return true;
#undef BAD
}

/* the dim's value when constant, else `big` (symbolic sizes are taken as large) */
static int64_t dim_or(const tir_dim *d, int64_t big) {
    int64_t v;
    return tir_dim_is_const(d, &v) ? v : big;
}

static void op_mn(const tir_op *op, int64_t *M, int64_t *N) {
    const tir_type *o = &op->out[0]->type;
    *M = dim_or(o->dims[o->rank - 2], 4096);
    *N = dim_or(o->dims[o->rank - 1], 4096);
}

static bool small_problem(const tir_op *op) {
    int64_t M, N;
    op_mn(op, &M, &N);
    return M * N <= 512 * 512 || M <= 64 || N <= 64;
}

void tir_mma_pick_config(const tir_op *op, tir_mma_config *cfg) {
    /* 8 warps of 64x32 on 128x128 tiles: enough reuse per warp for mma.sync without running out
     * of registers; small problems take 64x64 tiles so that more blocks run */
    *cfg = (tir_mma_config){.bm = 128, .bn = 128, .bk = 32, .warps_m = 2, .warps_n = 4,
                            .stages = 4, .group_m = 8, .wgmma = false};
    if (small_problem(op))
        *cfg = (tir_mma_config){.bm = 64, .bn = 64, .bk = 32, .warps_m = 2, .warps_n = 2,
                                .stages = 3, .group_m = 8, .wgmma = false};
}


static bool tma_ok(const tir_op *op, const char *arch, bool wide_ok) {
    tir_dtype t;
    if (!wgmma_arch(arch) || !mm_dtype(op, wide_ok, &t)) return false;
    if (!op->out[0]->func || !op->out[0]->func->module) return false;
    tir_context *ctx = op->out[0]->func->module->ctx;
    const tir_type *ta = &op->in[0]->type, *tb = &op->in[1]->type;
    /* the contiguous dims: their length in bytes is every other dim's stride */
    return tir_dim_multiple_of(ctx, ta->dims[ta->rank - 1], 8) && tir_dim_multiple_of(ctx, tb->dims[tb->rank - 1], 8);
}

bool tir_matmul_tma_ok(const tir_op *op, const char *arch) { return tma_ok(op, arch, false); }

static void pick_config_for(const tir_op *op, const char *arch, bool wide_ok, tir_mma_config *cfg) {
    tir_mma_pick_config(op, cfg);
    const char *env = getenv("TIR_MATMUL_WGMMA");
    if (!wgmma_arch(arch) || (env && strcmp(env, "0") == 0) || small_problem(op)) return;
    int64_t M, N;
    op_mn(op, &M, &N);
    const char *tenv = getenv("TIR_MATMUL_TMA");
    if (!(tenv && strcmp(tenv, "0") == 0) && tma_ok(op, arch, wide_ok)) {
        /* two consumer warpgroups of 64x256 each, fed by a producer warpgroup through 4 stages
         * of 48 KiB (CUTLASS's and ThunderKittens' choice for large bf16 problems) */
        *cfg = (tir_mma_config){.bm = 128, .bn = 256, .bk = 64, .warps_m = 2, .warps_n = 1,
                                .stages = 4, .group_m = 16, .wgmma = true, .tma = true};
        return;
    }
    /* two warpgroups of 64x256 each: the largest wgmma tile within the register budget; 4 stages
     * of 48 KiB keep the copies two k-steps ahead */
    *cfg = (tir_mma_config){.bm = 128, .bn = 256, .bk = 64, .warps_m = 2, .warps_n = 1,
                            .stages = 4, .group_m = 8, .wgmma = true};
    if (N <= 1024 || M * N <= 2048 * 2048)
        *cfg = (tir_mma_config){.bm = 128, .bn = 128, .bk = 64, .warps_m = 2, .warps_n = 1,
                                .stages = 4, .group_m = 8, .wgmma = true};
}

void tir_mma_pick_config_for(const tir_op *op, const char *arch, tir_mma_config *cfg) {
    pick_config_for(op, arch, false, cfg);
}

/* ---------------------------------------------------------------- the kernel being built */

typedef struct opnd {
    bool mn_major;         /* contiguous along M (A) or N (B) */
    int tile_mn;           /* bm or bn */
    int rows, cpr;         /* shared tile: rows x cpr 16-byte chunks */
    int off;               /* byte offset of the tile within a stage */
    int nchunk;            /* copies per thread per k-step */
    LLVMValueRef base;     /* global pointer to this batch's matrix */
    LLVMValueRef mn0;      /* i64: the block's first M (A) or N (B) index */
    LLVMValueRef ld;       /* i64: elements per stored row */
    LLVMValueRef row_lim;  /* i64: stored rows */
    LLVMValueRef aligned;  /* i1: ld % 8 == 0, so every chunk is 16-byte aligned */
    LLVMValueRef sm[MAX_CHUNKS];                 /* i32: byte offset of copy i in the tile */
    LLVMValueRef r0[MAX_CHUNKS], c0[MAX_CHUNKS]; /* i64: its stored row and column at k = 0 */
} opnd;

typedef struct sync_state {
    int wm, wn, mt, nt;          /* warp tile, 16-row A sub-tiles, 8-column B sub-tiles */
    LLVMValueRef wm0, wn0;       /* i32: the warp's first row / column within the block tile */
} sync_state;

typedef struct wg_state {
    int wm, wn, mi, nacc;        /* warpgroup tile, m64 blocks, accumulators per m64 block */
    LLVMValueRef wm0, wn0;       /* i32: the warpgroup's first row / column in the block tile */
    LLVMValueRef fn_asm;         /* the wgmma inline asm and its type */
    LLVMTypeRef fn_ty;
} wg_state;

typedef struct mm {
    cg *g;
    tir_mma_config c;
    tir_dtype dt;
    int threads, stage_bytes, pre;
    LLVMTypeRef t_v8i16, t_v2i16, t_i32x4;
    LLVMValueRef smem;                 /* the dynamic shared memory, ptr addrspace(3) */
    LLVMValueRef tid, lane, warp;      /* i32 */
    LLVMValueRef M, N, K;              /* i64 */
    LLVMValueRef out;                  /* global pointer to this batch's output */
    LLVMValueRef m0, n0;               /* i64: the block's first output row and column */
    opnd A, B;
    sync_state ss;
    wg_state ws;
    int nacc;
    LLVMValueRef acc[MAX_ACC];         /* f32 accumulators (layout: see the top of the file) */
    /* buffers: a, b and the output are kernel buffers ia, ib, io of nbuf (0, 1, 2 of 3 for a
     * plain matmul; a fused region's parameters and then its result for a region) */
    int ia, ib, io, nbuf;
    tir_dtype odt;                     /* the stored output's dtype */
    const tir_func *rg;                /* a fused region whose epilogue the stores apply, or NULL */
    const tir_op *mmop;                /* its matmul */
    tir_type ob;                       /* the output's batch dims */
    LLVMValueRef zc[TIR_MAX_RANK];     /* i64: this block's (tile's) batch coordinates */
} mm;

static LLVMValueRef i32c(mm *m, int v) { return cg_i32(m->g, v); }
static LLVMValueRef i64c(mm *m, int64_t v) { return cg_i64(m->g, v); }
static LLVMValueRef add(mm *m, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildAdd(m->g->B, a, b, ""); }
static LLVMValueRef mul(mm *m, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildMul(m->g->B, a, b, ""); }
static LLVMValueRef sext(mm *m, LLVMValueRef v) { return LLVMBuildSExt(m->g->B, v, m->g->t_i64, ""); }
static LLVMValueRef ult(mm *m, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildICmp(m->g->B, LLVMIntULT, a, b, "");
}
static LLVMValueRef and1(mm *m, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildAnd(m->g->B, a, b, ""); }

static LLVMValueRef sreg32(mm *m, const char *reg) {
    char name[64];
    snprintf(name, sizeof name, "llvm.nvvm.read.ptx.sreg.%s", reg);
    return cg_intr(m->g, name, m->g->t_i32, 0, NULL, 0, NULL);
}

static LLVMBasicBlockRef new_block(mm *m, const char *name) {
    return LLVMAppendBasicBlockInContext(m->g->C, m->g->fn, name);
}

static LLVMValueRef phi(mm *m, LLVMTypeRef t, LLVMValueRef init, LLVMBasicBlockRef from) {
    LLVMValueRef p = LLVMBuildPhi(m->g->B, t, "");
    LLVMAddIncoming(p, &init, &from, 1);
    return p;
}

/* byte offset of chunk `c` of row `r` (i32 values) in operand o's shared tile */
static LLVMValueRef swz(mm *m, const opnd *o, LLVMValueRef r, LLVMValueRef c) {
    LLVMBuilderRef B = m->g->B;
    if (o->cpr >= 8) {
        LLVMValueRef panel = mul(m, LLVMBuildLShr(B, c, i32c(m, 3), ""), i32c(m, o->rows * 128));
        LLVMValueRef x = LLVMBuildXor(B, LLVMBuildAnd(B, c, i32c(m, 7), ""),
                                      LLVMBuildAnd(B, r, i32c(m, 7), ""), "");
        return add(m, add(m, panel, mul(m, r, i32c(m, 128))), LLVMBuildShl(B, x, i32c(m, 4), ""));
    }
    /* rows of cpr < 8 chunks: 8/cpr rows share a 128-byte line, keyed by the line's index */
    int sh = o->cpr == 4 ? 1 : o->cpr == 2 ? 2 : 3;
    LLVMValueRef key = LLVMBuildAnd(B, LLVMBuildLShr(B, r, i32c(m, sh), ""), i32c(m, o->cpr - 1), "");
    LLVMValueRef x = LLVMBuildXor(B, c, key, "");
    return add(m, mul(m, r, i32c(m, o->cpr * 16)), LLVMBuildShl(B, x, i32c(m, 4), ""));
}

/* the shared memory `byte_off` (i32) bytes into the dynamic shared memory */
static LLVMValueRef smem_at(mm *m, LLVMValueRef byte_off) {
    return LLVMBuildInBoundsGEP2(m->g->B, m->g->t_i8, m->smem, &byte_off, 1, "");
}

/* cp.async.cg 16 bytes global -> shared; bytes past `size` (0 or 16) are zero-filled */
static void cp_async16(mm *m, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef size) {
    LLVMValueRef args[3] = {dst, src, size};
    cg_intr(m->g, "llvm.nvvm.cp.async.cg.shared.global.16.s", m->g->t_void, 0, NULL, 3, args);
}

/* ---------------------------------------------------------------- operands and copies */

/* Chunk q (i32) of operand o's tile: q = row * cpr + column in 16-byte chunks, copied by thread
 * q % threads. Gives its byte offset in the shared tile and its stored row and column (i64) in
 * the matrix at k = 0: K-major: row = mn, column = k; MN-major: row = k, column = mn. */
static void chunk_geom(mm *m, const opnd *o, LLVMValueRef q, LLVMValueRef mn0, LLVMValueRef *sm,
                       LLVMValueRef *row, LLVMValueRef *col) {
    cg *g = m->g;
    LLVMValueRef r = LLVMBuildUDiv(g->B, q, i32c(m, o->cpr), "");
    LLVMValueRef c = LLVMBuildURem(g->B, q, i32c(m, o->cpr), "");
    *sm = swz(m, o, r, c);
    LLVMValueRef r64 = LLVMBuildZExt(g->B, r, g->t_i64, "");
    LLVMValueRef c64 = LLVMBuildZExt(g->B, LLVMBuildShl(g->B, c, i32c(m, 3), ""), g->t_i64, "");
    *row = o->mn_major ? r64 : add(m, mn0, r64);
    *col = o->mn_major ? add(m, mn0, c64) : c64;
}

/* Operand o's geometry and this thread's share of every tile copy. mn0 is the block's first M
 * (A) or N (B) index, mn_dim the size along it, base the batch's matrix. */
static void opnd_setup(mm *m, opnd *o, LLVMValueRef base, LLVMValueRef mn0, LLVMValueRef mn_dim) {
    cg *g = m->g;
    int bk = m->c.bk;
    o->rows = o->mn_major ? bk : o->tile_mn;
    o->cpr = (o->mn_major ? o->tile_mn : bk) / 8;
    o->nchunk = o->tile_mn * bk / 8 / m->threads;
    o->base = base;
    o->mn0 = mn0;
    o->ld = o->mn_major ? mn_dim : m->K;
    o->row_lim = o->mn_major ? m->K : mn_dim;
    /* 16-byte copies need rows of a multiple of 8 elements and a 16-byte aligned matrix */
    LLVMValueRef addr = LLVMBuildPtrToInt(g->B, base, g->t_i64, "");
    LLVMValueRef misal = LLVMBuildOr(g->B, LLVMBuildAnd(g->B, o->ld, i64c(m, 7), ""),
                                     LLVMBuildAnd(g->B, addr, i64c(m, 15), ""), "");
    o->aligned = LLVMBuildICmp(g->B, LLVMIntEQ, misal, i64c(m, 0), "");
    /* a thread's chunks are `step` rows apart in the same column; when step is a multiple of 8
     * they also share the XOR key, so they differ by constants (which LLVM folds into the
     * address immediates) */
    int step = m->threads / o->cpr;
    bool rows_apart = m->threads % o->cpr == 0 && step % 8 == 0;
    int row_bytes = o->cpr >= 8 ? 128 : o->cpr * 16;
    for (int i = 0; i < o->nchunk; i++) {
        if (i > 0 && rows_apart) {
            o->sm[i] = add(m, o->sm[0], i32c(m, i * step * row_bytes));
            o->r0[i] = add(m, o->r0[0], i64c(m, (int64_t)i * step));
            o->c0[i] = o->c0[0];
        } else {
            chunk_geom(m, o, add(m, m->tid, i32c(m, i * m->threads)), mn0, &o->sm[i], &o->r0[i],
                       &o->c0[i]);
        }
    }
}

/* loop metadata asking LLVM not to unroll: the slow copies stay a loop, so their per-chunk
 * values are not all live at once */
static void no_unroll(mm *m, LLVMValueRef br) {
    LLVMContextRef C = m->g->C;
    LLVMMetadataRef tmp = LLVMTemporaryMDNode(C, NULL, 0);
    const char *s = "llvm.loop.unroll.disable";
    LLVMMetadataRef flag = LLVMMDStringInContext2(C, s, strlen(s));
    LLVMMetadataRef flag_node = LLVMMDNodeInContext2(C, &flag, 1);
    LLVMMetadataRef ops[2] = {tmp, flag_node};
    LLVMMetadataRef id = LLVMMDNodeInContext2(C, ops, 2);
    LLVMMetadataReplaceAllUsesWith(tmp, id);
    const char *kind = "llvm.loop";
    LLVMSetMetadata(br, LLVMGetMDKindIDInContext(C, kind, (unsigned)strlen(kind)),
                    LLVMMetadataAsValue(C, id));
}

/* Copies one chunk (shared offset `sm` in the tile at `tile`, stored row/col at k = 0) of k-step
 * k0 (i64 elements): 16-byte cp.async (zero-filled outside the matrix) when `wide`, else eight
 * guarded 2-byte loads and one 16-byte shared store. */
static void copy_chunk(mm *m, const opnd *o, LLVMValueRef tile, LLVMValueRef sm, LLVMValueRef r0,
                       LLVMValueRef c0, LLVMValueRef k0, bool wide) {
    cg *g = m->g;
    LLVMBuilderRef B = g->B;
    LLVMValueRef row = o->mn_major ? add(m, r0, k0) : r0;
    LLVMValueRef col = o->mn_major ? c0 : add(m, c0, k0);
    LLVMValueRef row_ok = ult(m, row, o->row_lim);
    LLVMValueRef rowoff = mul(m, row, o->ld);
    LLVMValueRef dst = smem_at(m, add(m, tile, sm));
    if (wide) {
        /* the whole chunk is in or out, since the row length is a multiple of 8 */
        LLVMValueRef ok = and1(m, row_ok, ult(m, col, o->ld));
        LLVMValueRef idx = LLVMBuildSelect(B, ok, add(m, rowoff, col), i64c(m, 0), "");
        cp_async16(m, dst, cg_gep(g, g->t_i16, o->base, idx),
                   LLVMBuildSelect(B, ok, i32c(m, 16), i32c(m, 0), ""));
        return;
    }
    LLVMValueRef v = LLVMGetUndef(m->t_v8i16);
    for (int e = 0; e < 8; e++) {
        LLVMValueRef ce = add(m, col, i64c(m, e));
        LLVMValueRef ok = and1(m, row_ok, ult(m, ce, o->ld));
        LLVMValueRef idx = LLVMBuildSelect(B, ok, add(m, rowoff, ce), i64c(m, 0), "");
        LLVMValueRef x = LLVMBuildLoad2(B, g->t_i16, cg_gep(g, g->t_i16, o->base, idx), "");
        LLVMSetAlignment(x, 2);
        x = LLVMBuildSelect(B, ok, x, LLVMConstInt(g->t_i16, 0, 0), "");
        v = LLVMBuildInsertElement(B, v, x, i32c(m, e), "");
    }
    LLVMValueRef st = LLVMBuildStore(B, v, dst);
    LLVMSetAlignment(st, 16);
}

/* Copies k-step kt (i32) of operand o into stage `stage` (i32). `fast`: the caller knows the rows
 * are 16-byte aligned; straight-line cp.async with the precomputed chunk geometry. Otherwise a
 * loop over the thread's chunks that recomputes their geometry (few live registers) and takes
 * cp.async or element loads by o->aligned. */
static void copy_tile(mm *m, opnd *o, LLVMValueRef stage, LLVMValueRef kt, bool fast) {
    cg *g = m->g;
    LLVMBuilderRef B = g->B;
    LLVMValueRef k0 = mul(m, LLVMBuildZExt(B, kt, g->t_i64, ""), i64c(m, m->c.bk));
    LLVMValueRef tile = add(m, mul(m, stage, i32c(m, m->stage_bytes)), i32c(m, o->off));
    if (fast) {
        for (int i = 0; i < o->nchunk; i++) copy_chunk(m, o, tile, o->sm[i], o->r0[i], o->c0[i], k0, true);
        return;
    }
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(B);
    LLVMBasicBlockRef body = new_block(m, "copy"), wide = new_block(m, "copy16");
    LLVMBasicBlockRef narrow = new_block(m, "copy2"), next = new_block(m, "copied");
    LLVMBasicBlockRef done = new_block(m, "copy_done");
    LLVMBuildBr(B, body);
    LLVMPositionBuilderAtEnd(B, body);
    LLVMValueRef i = phi(m, g->t_i32, i32c(m, 0), pre);
    LLVMValueRef sm, r0, c0;
    chunk_geom(m, o, add(m, m->tid, mul(m, i, i32c(m, m->threads))), o->mn0, &sm, &r0, &c0);
    LLVMBuildCondBr(B, o->aligned, wide, narrow);
    LLVMPositionBuilderAtEnd(B, wide);
    copy_chunk(m, o, tile, sm, r0, c0, k0, true);
    LLVMBuildBr(B, next);
    LLVMPositionBuilderAtEnd(B, narrow);
    copy_chunk(m, o, tile, sm, r0, c0, k0, false);
    LLVMBuildBr(B, next);
    LLVMPositionBuilderAtEnd(B, next);
    LLVMValueRef i1 = add(m, i, i32c(m, 1));
    LLVMAddIncoming(i, &i1, &next, 1);
    no_unroll(m, LLVMBuildCondBr(B, ult(m, i1, i32c(m, o->nchunk)), body, done));
    LLVMPositionBuilderAtEnd(B, done);
}

static void copy_stage(mm *m, LLVMValueRef stage, LLVMValueRef kt, bool fast) {
    copy_tile(m, &m->A, stage, kt, fast);
    copy_tile(m, &m->B, stage, kt, fast);
    cg_intr(m->g, "llvm.nvvm.cp.async.commit.group", m->g->t_void, 0, NULL, 0, NULL);
}

/* ---------------------------------------------------------------- mma.sync */

/* ldmatrix.x4 of the 16x16 (mn x k) sub-tile whose first mn is w0 + 16*s, at k-step kk */
static void ldsm(mm *m, const opnd *o, LLVMValueRef stage_base, LLVMValueRef w0, int s, int kk,
                 LLVMValueRef r[4]) {
    cg *g = m->g;
    LLVMBuilderRef B = g->B;
    LLVMValueRef j = LLVMBuildLShr(B, m->lane, i32c(m, 3), "");
    LLVMValueRef i = LLVMBuildAnd(B, m->lane, i32c(m, 7), "");
    LLVMValueRef jlo = LLVMBuildAnd(B, j, i32c(m, 1), ""), jhi = LLVMBuildLShr(B, j, i32c(m, 1), "");
    LLVMValueRef row, chunk;
    if (!o->mn_major) {
        row = add(m, add(m, w0, i32c(m, 16 * s)), add(m, LLVMBuildShl(B, jlo, i32c(m, 3), ""), i));
        chunk = add(m, i32c(m, 2 * kk), jhi);
    } else {
        row = add(m, i32c(m, 16 * kk), add(m, LLVMBuildShl(B, jhi, i32c(m, 3), ""), i));
        chunk = add(m, add(m, LLVMBuildLShr(B, w0, i32c(m, 3), ""), i32c(m, 2 * s)), jlo);
    }
    LLVMValueRef p = smem_at(m, add(m, add(m, stage_base, i32c(m, o->off)), swz(m, o, row, chunk)));
    LLVMTypeRef pt = g->t_sptr;
    LLVMValueRef v = cg_intr(g, o->mn_major ? "llvm.nvvm.ldmatrix.sync.aligned.m8n8.x4.trans.b16"
                                            : "llvm.nvvm.ldmatrix.sync.aligned.m8n8.x4.b16",
                             m->t_i32x4, 1, &pt, 1, &p);
    for (int q = 0; q < 4; q++) r[q] = LLVMBuildExtractValue(B, v, (unsigned)q, "");
}

static LLVMValueRef as_f16x2(mm *m, LLVMValueRef v) {
    if (m->dt == TIR_BF16) return v;
    return LLVMBuildBitCast(m->g->B, v, LLVMVectorType(m->g->t_f16, 2), "");
}

/* one bk-deep step on stage `stage` (i32): acc += A_tile · B_tile for this warp */
static void sync_compute(mm *m, LLVMValueRef stage) {
    cg *g = m->g;
    sync_state *s = &m->ss;
    LLVMValueRef base = mul(m, stage, i32c(m, m->stage_bytes));
    const char *name = m->dt == TIR_BF16 ? "llvm.nvvm.mma.m16n8k16.row.col.bf16"
                                         : "llvm.nvvm.mma.m16n8k16.row.col.f32.f32";
    LLVMTypeRef f4[4] = {g->t_f32, g->t_f32, g->t_f32, g->t_f32};
    LLVMTypeRef rty = LLVMStructTypeInContext(g->C, f4, 4, 0);
    for (int kk = 0; kk < m->c.bk / 16; kk++) {
        LLVMValueRef a[MAX_FRAG][4], b[MAX_FRAG][4];
        for (int i = 0; i < s->mt; i++) ldsm(m, &m->A, base, s->wm0, i, kk, a[i]);
        for (int p = 0; p < s->nt / 2; p++) ldsm(m, &m->B, base, s->wn0, p, kk, b[p]);
        for (int i = 0; i < s->mt; i++)
            for (int n = 0; n < s->nt; n++) {
                LLVMValueRef *acc = &m->acc[(i * s->nt + n) * 4];
                LLVMValueRef args[10] = {
                    as_f16x2(m, a[i][0]), as_f16x2(m, a[i][1]), as_f16x2(m, a[i][2]),
                    as_f16x2(m, a[i][3]), as_f16x2(m, b[n / 2][n & 1]),
                    as_f16x2(m, b[n / 2][2 + (n & 1)]), acc[0], acc[1], acc[2], acc[3]};
                LLVMValueRef d = cg_intr(g, name, rty, 0, NULL, 10, args);
                for (int q = 0; q < 4; q++) acc[q] = LLVMBuildExtractValue(g->B, d, (unsigned)q, "");
            }
    }
}

/* ---------------------------------------------------------------- wgmma */

/* A 128-byte-swizzle matrix descriptor for the shared tile starting `off` (i32) bytes into the
 * dynamic shared memory, with leading / stride byte offsets lbo and sbo. */
static LLVMValueRef wg_desc(mm *m, LLVMValueRef off, int lbo, int sbo) {
    cg *g = m->g;
    LLVMBuilderRef B = g->B;
    LLVMValueRef addr = LLVMBuildPtrToInt(B, smem_at(m, off), g->t_i64, "");
    LLVMValueRef d = LLVMBuildLShr(B, LLVMBuildAnd(B, addr, i64c(m, 0x3FFFF), ""), i64c(m, 4), "");
    uint64_t hi = ((uint64_t)((lbo >> 4) & 0x3FFF) << 16) | ((uint64_t)((sbo >> 4) & 0x3FFF) << 32) |
                  (1ull << 62);
    return LLVMBuildOr(B, d, LLVMConstInt(g->t_i64, hi, 0), "");
}

/* descriptor of operand o's 16-deep k-step kk for the rows/columns starting at mn (i32) */
static LLVMValueRef wg_opnd_desc(mm *m, const opnd *o, LLVMValueRef tile, LLVMValueRef mn, int kk) {
    LLVMBuilderRef B = m->g->B;
    LLVMValueRef off;
    if (!o->mn_major) {
        /* rows mn.. of the panel holding k = 16kk; inside the 128-byte row, k-step kk%4 is 32
         * bytes in: the hardware applies the swizzle to the address, as the copies did */
        int panel = (16 * kk) / 64;
        off = add(m, tile, i32c(m, panel * o->rows * 128 + (kk % 4) * 32));
        off = add(m, off, mul(m, mn, i32c(m, 128)));
        return wg_desc(m, off, 16, 1024);
    }
    /* panel mn/64, rows k = 16kk..; the next 64 columns are one panel further (LBO) */
    off = add(m, tile, mul(m, LLVMBuildLShr(B, mn, i32c(m, 6), ""), i32c(m, o->rows * 128)));
    off = add(m, off, i32c(m, 16 * kk * 128));
    return wg_desc(m, off, o->rows * 128, 1024);
}

/* the inline asm of one wgmma.mma_async.m64n<wn>k16 accumulating into its tied f32 operands */
static void wg_build_asm(mm *m) {
    cg *g = m->g;
    wg_state *s = &m->ws;
    int n = s->nacc;
    size_t cap = (size_t)n * 8 + 512;
    char *text = malloc(cap), *cons = malloc(cap);
    LLVMTypeRef *fs = malloc(sizeof *fs * (size_t)n), *ps = malloc(sizeof *ps * (size_t)(n + 2));
    if (!text || !cons || !fs || !ps) {
        cg_fail(g, TIR_ERR_OOM, "out of memory");
    } else {
        const char *t = m->dt == TIR_BF16 ? "bf16" : "f16";
        int len = snprintf(text, cap,
                           "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
                           "wgmma.mma_async.sync.aligned.m64n%dk16.f32.%s.%s {", s->wn, t, t);
        for (int i = 0; i < n; i++)
            len += snprintf(text + len, cap - (size_t)len, "%s$%d", i ? ", " : "", i);
        /* scale-d = p (accumulate), scale-a = scale-b = 1, transposes: MN-major operands */
        snprintf(text + len, cap - (size_t)len, "}, $%d, $%d, p, 1, 1, %d, %d;\n}", n, n + 1,
                 m->A.mn_major ? 1 : 0, m->B.mn_major ? 1 : 0);
        int cl = 0;
        for (int i = 0; i < n; i++) cl += snprintf(cons + cl, cap - (size_t)cl, "=f,");
        cl += snprintf(cons + cl, cap - (size_t)cl, "l,l");
        for (int i = 0; i < n; i++) cl += snprintf(cons + cl, cap - (size_t)cl, ",%d", i);
        for (int i = 0; i < n; i++) fs[i] = g->t_f32;
        ps[0] = ps[1] = g->t_i64;
        for (int i = 0; i < n; i++) ps[2 + i] = g->t_f32;
        LLVMTypeRef rty = LLVMStructTypeInContext(g->C, fs, (unsigned)n, 0);
        s->fn_ty = LLVMFunctionType(rty, ps, (unsigned)(n + 2), 0);
        s->fn_asm = LLVMGetInlineAsm(s->fn_ty, text, strlen(text), cons, strlen(cons), 1, 0,
                                     LLVMInlineAsmDialectATT, 0);
    }
    free(fs);
    free(ps);
    free(text);
    free(cons);
}

static void wg_compute(mm *m, LLVMValueRef stage) {
    cg *g = m->g;
    wg_state *s = &m->ws;
    LLVMValueRef base = mul(m, stage, i32c(m, m->stage_bytes));
    LLVMValueRef ta = add(m, base, i32c(m, m->A.off)), tb = add(m, base, i32c(m, m->B.off));
    cg_intr(g, "llvm.nvvm.wgmma.fence.sync.aligned", g->t_void, 0, NULL, 0, NULL);
    int n = s->nacc;
    LLVMValueRef args[MAX_ACC + 2];
    for (int kk = 0; kk < m->c.bk / 16; kk++) {
        LLVMValueRef db = wg_opnd_desc(m, &m->B, tb, s->wn0, kk);
        for (int i = 0; i < s->mi; i++) {
            args[0] = wg_opnd_desc(m, &m->A, ta, add(m, s->wm0, i32c(m, 64 * i)), kk);
            args[1] = db;
            for (int q = 0; q < n; q++) args[2 + q] = m->acc[i * n + q];
            LLVMValueRef r = LLVMBuildCall2(g->B, s->fn_ty, s->fn_asm, args, (unsigned)(n + 2), "");
            for (int q = 0; q < n; q++)
                m->acc[i * n + q] = LLVMBuildExtractValue(g->B, r, (unsigned)q, "");
        }
    }
    cg_intr(g, "llvm.nvvm.wgmma.commit_group.sync.aligned", g->t_void, 0, NULL, 0, NULL);
}

static void wg_wait(mm *m, int n) {
    LLVMValueRef v = i64c(m, n);
    cg_intr(m->g, "llvm.nvvm.wgmma.wait_group.sync.aligned", m->g->t_void, 0, NULL, 1, &v);
}

/* ---------------------------------------------------------------- main loop */

/* The pipelined k-loop, entered at `start` with at least one k-step: the prologue puts the first
 * `pre` k-steps in flight; iteration kt waits for step kt, refills the stage freed one (mma.sync)
 * or two (wgmma: its reads of the last step may still be in flight) steps ago with step kt + pre,
 * and computes on step kt. Leaves the final accumulators in out[] (m->acc is restored) and returns
 * the block that branches to `after`. */
static LLVMBasicBlockRef main_loop(mm *m, LLVMBasicBlockRef start, bool fast, LLVMValueRef kt_n,
                                   LLVMBasicBlockRef after, LLVMValueRef *out) {
    cg *g = m->g;
    LLVMBuilderRef B = g->B;
    const tir_mma_config *c = &m->c;
    int nacc = m->nacc;
    LLVMValueRef saved[MAX_ACC], acc_phi[MAX_ACC];
    memcpy(saved, m->acc, sizeof *saved * (size_t)nacc);

    LLVMPositionBuilderAtEnd(B, start);
    for (int s = 0; s < m->pre; s++) copy_stage(m, i32c(m, s), i32c(m, s), fast);
    LLVMBasicBlockRef pre_bb = LLVMGetInsertBlock(B);
    LLVMBasicBlockRef loop = new_block(m, fast ? "kloop_fast" : "kloop_slow");
    LLVMBuildBr(B, loop);

    LLVMPositionBuilderAtEnd(B, loop);
    LLVMValueRef kt = phi(m, g->t_i32, i32c(m, 0), pre_bb);
    LLVMValueRef rd = phi(m, g->t_i32, i32c(m, 0), pre_bb);
    LLVMValueRef wr = phi(m, g->t_i32, i32c(m, m->pre % c->stages), pre_bb);
    for (int i = 0; i < nacc; i++) {
        acc_phi[i] = phi(m, g->t_f32, m->acc[i], pre_bb);
        m->acc[i] = acc_phi[i];
    }
    LLVMValueRef wait_n = i32c(m, m->pre - 1);
    cg_intr(g, "llvm.nvvm.cp.async.wait.group", g->t_void, 0, NULL, 1, &wait_n);
    if (c->wgmma) /* the copies' writes must be visible to the tensor cores' async proxy */
        cg_intr(g, "llvm.nvvm.fence.proxy.async.shared_cta", g->t_void, 0, NULL, 0, NULL);
    cg_barrier(g);
    copy_stage(m, wr, add(m, kt, i32c(m, m->pre)), fast);
    if (!c->wgmma) {
        sync_compute(m, rd);
    } else {
        wg_compute(m, rd);
        wg_wait(m, 1);
    }
    LLVMValueRef kt1 = add(m, kt, i32c(m, 1));
    LLVMValueRef rd1 = add(m, rd, i32c(m, 1)), wr1 = add(m, wr, i32c(m, 1));
    rd1 = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntEQ, rd1, i32c(m, c->stages), ""), i32c(m, 0), rd1, "");
    wr1 = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntEQ, wr1, i32c(m, c->stages), ""), i32c(m, 0), wr1, "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(B);
    LLVMAddIncoming(kt, &kt1, &latch, 1);
    LLVMAddIncoming(rd, &rd1, &latch, 1);
    LLVMAddIncoming(wr, &wr1, &latch, 1);
    for (int i = 0; i < nacc; i++) LLVMAddIncoming(acc_phi[i], &m->acc[i], &latch, 1);
    LLVMBasicBlockRef exit = new_block(m, "kexit");
    LLVMBuildCondBr(B, ult(m, kt1, kt_n), loop, exit);

    LLVMPositionBuilderAtEnd(B, exit);
    if (c->wgmma) wg_wait(m, 0);
    /* retire the trailing zero-fill copies before the block's shared memory goes away */
    cg_intr(g, "llvm.nvvm.cp.async.wait.all", g->t_void, 0, NULL, 0, NULL);
    LLVMBuildBr(B, after);
    memcpy(out, m->acc, sizeof *out * (size_t)nacc);
    memcpy(m->acc, saved, sizeof *saved * (size_t)nacc);
    return exit;
}

/* ---------------------------------------------------------------- epilogue */

/* out[row, col], out[row, col + 1] = v0, v1 where in range; col is even */
static LLVMValueRef epi_eval(mm *m, LLVMValueRef row, LLVMValueRef col, LLVMValueRef ok,
                             LLVMValueRef acc);

static void store_pair(mm *m, LLVMValueRef row, LLVMValueRef col, LLVMValueRef v0, LLVMValueRef v1,
                       LLVMValueRef n_even) {
    cg *g = m->g;
    LLVMBuilderRef B = g->B;
    LLVMValueRef idx = add(m, mul(m, row, m->N), col);
    LLVMValueRef row_ok = ult(m, row, m->M);
    LLVMValueRef c0_ok = and1(m, row_ok, ult(m, col, m->N));
    LLVMValueRef c1_ok = and1(m, row_ok, ult(m, add(m, col, i64c(m, 1)), m->N));
    cg_if w;
    if (m->odt != TIR_BF16 && m->odt != TIR_F16) {
        /* an epilogue's f32 (or other) result: element stores, with the interpreter's rounding */
        cg_if_begin(g, &w, c0_ok);
        cg_store(g, m->odt, m->out, idx, cg_narrow(g, m->odt, v0));
        cg_if_end(g, &w);
        cg_if_begin(g, &w, c1_ok);
        cg_store(g, m->odt, m->out, add(m, idx, i64c(m, 1)), cg_narrow(g, m->odt, v1));
        cg_if_end(g, &w);
        return;
    }
    LLVMTypeRef ht = m->odt == TIR_BF16 ? g->t_bf16 : g->t_f16;
    LLVMValueRef h0 = LLVMBuildBitCast(B, LLVMBuildFPTrunc(B, v0, ht, ""), g->t_i16, "");
    LLVMValueRef h1 = LLVMBuildBitCast(B, LLVMBuildFPTrunc(B, v1, ht, ""), g->t_i16, "");
    /* even N (and an aligned output): the pair is one aligned word, both or neither in range */
    cg_if_begin(g, &w, and1(m, n_even, c0_ok));
    LLVMValueRef v = LLVMGetUndef(m->t_v2i16);
    v = LLVMBuildInsertElement(B, v, h0, i32c(m, 0), "");
    v = LLVMBuildInsertElement(B, v, h1, i32c(m, 1), "");
    LLVMValueRef st = LLVMBuildStore(B, v, cg_gep(g, g->t_i16, m->out, idx));
    LLVMSetAlignment(st, 4);
    cg_if_end(g, &w);
    LLVMValueRef odd = LLVMBuildNot(B, n_even, "");
    cg_if_begin(g, &w, and1(m, odd, c0_ok));
    st = LLVMBuildStore(B, h0, cg_gep(g, g->t_i16, m->out, idx));
    LLVMSetAlignment(st, 2);
    cg_if_end(g, &w);
    cg_if_begin(g, &w, and1(m, odd, c1_ok));
    st = LLVMBuildStore(B, h1, cg_gep(g, g->t_i16, m->out, add(m, idx, i64c(m, 1))));
    LLVMSetAlignment(st, 2);
    cg_if_end(g, &w);
}

/* 8 16-bit outputs at (row, col..col+7), packed in a (cols 0-3) and b (cols 4-7): one 16-byte
 * store when the row is 16-byte aligned (n16) and all 8 are inside, else element stores */
static void store_oct(mm *m, LLVMValueRef row, LLVMValueRef col, LLVMValueRef a, LLVMValueRef b,
                      LLVMValueRef n16) {
    cg *g = m->g;
    LLVMBuilderRef B = g->B;
    LLVMValueRef idx = add(m, mul(m, row, m->N), col);
    LLVMValueRef row_ok = ult(m, row, m->M);
    LLVMValueRef full = and1(m, row_ok, LLVMBuildICmp(B, LLVMIntULE, add(m, col, i64c(m, 8)), m->N, ""));
    LLVMBasicBlockRef vec = new_block(m, "st16"), notvec = new_block(m, "st_notvec");
    LLVMBasicBlockRef inside = new_block(m, "st_inside"), part = new_block(m, "st_part");
    LLVMBasicBlockRef done = new_block(m, "st_done");
    LLVMBuildCondBr(B, and1(m, n16, full), vec, notvec);
    LLVMPositionBuilderAtEnd(B, vec);
    LLVMTypeRef v2 = LLVMVectorType(g->t_i64, 2);
    LLVMValueRef v = LLVMBuildInsertElement(B, LLVMGetUndef(v2), a, i32c(m, 0), "");
    v = LLVMBuildInsertElement(B, v, b, i32c(m, 1), "");
    LLVMValueRef st = LLVMBuildStore(B, v, cg_gep(g, g->t_i16, m->out, idx));
    LLVMSetAlignment(st, 16);
    LLVMBuildBr(B, done);
    /* rows not 16-byte aligned (N not a multiple of 8): all 8 inside takes one branch */
    LLVMPositionBuilderAtEnd(B, notvec);
    LLVMBuildCondBr(B, full, inside, part);
    LLVMPositionBuilderAtEnd(B, inside);
    for (int e = 0; e < 8; e++) {
        LLVMValueRef w = e < 4 ? a : b;
        LLVMValueRef h = LLVMBuildTrunc(B, LLVMBuildLShr(B, w, i64c(m, 16 * (e % 4)), ""), g->t_i16, "");
        st = LLVMBuildStore(B, h, cg_gep(g, g->t_i16, m->out, add(m, idx, i64c(m, e))));
        LLVMSetAlignment(st, 2);
    }
    LLVMBuildBr(B, done);
    LLVMPositionBuilderAtEnd(B, part);
    for (int e = 0; e < 8; e++) {
        LLVMValueRef w = e < 4 ? a : b;
        LLVMValueRef h = LLVMBuildTrunc(B, LLVMBuildLShr(B, w, i64c(m, 16 * (e % 4)), ""), g->t_i16, "");
        cg_if c;
        cg_if_begin(g, &c, and1(m, row_ok, ult(m, add(m, col, i64c(m, e)), m->N)));
        st = LLVMBuildStore(B, h, cg_gep(g, g->t_i16, m->out, add(m, idx, i64c(m, e))));
        LLVMSetAlignment(st, 2);
        cg_if_end(g, &c);
    }
    LLVMBuildBr(B, done);
    LLVMPositionBuilderAtEnd(B, done);
}

/* the 16-bit bits of compute value v (f32) in the output dtype, as an i64 */
static LLVMValueRef bits16(mm *m, LLVMValueRef v) {
    cg *g = m->g;
    LLVMTypeRef ht = m->odt == TIR_BF16 ? g->t_bf16 : g->t_f16;
    LLVMValueRef h = LLVMBuildBitCast(g->B, LLVMBuildFPTrunc(g->B, v, ht, ""), g->t_i16, "");
    return LLVMBuildZExt(g->B, h, g->t_i64, "");
}

/* The wgmma epilogue with 16-byte stores. Lane t of a quad holds columns 2t, 2t+1 of each 8-wide
 * n-tile; two rounds of shuffles within the quad (xor 1, then xor 2) give lane t all 8 columns of
 * n-tile 4j + t of each group of 4, so a warp stores 8 rows x 64 contiguous bytes per
 * instruction instead of 8 x 16: a quarter of the store instructions, which bound the epilogue. */
static void epilogue_wide(mm *m, LLVMValueRef row0, LLVMValueRef colq, int tiles_m, int tiles_n,
                          int row_step) {
    cg *g = m->g;
    LLVMBuilderRef B = g->B;
    LLVMValueRef oaddr = LLVMBuildPtrToInt(B, m->out, g->t_i64, "");
    LLVMValueRef mis = LLVMBuildOr(B, LLVMBuildAnd(B, m->N, i64c(m, 7), ""),
                                   LLVMBuildAnd(B, oaddr, i64c(m, 15), ""), "");
    LLVMValueRef n16 = LLVMBuildICmp(B, LLVMIntEQ, mis, i64c(m, 0), "");
    LLVMValueRef t = LLVMBuildAnd(B, m->lane, i32c(m, 3), "");
    LLVMValueRef odd = LLVMBuildICmp(B, LLVMIntNE, LLVMBuildAnd(B, t, i32c(m, 1), ""), i32c(m, 0), "");
    LLVMValueRef hi2 = LLVMBuildICmp(B, LLVMIntNE, LLVMBuildAnd(B, t, i32c(m, 2), ""), i32c(m, 0), "");
    /* colq: the quad's first column (n-tile 0, lane 0); lane t stores n-tile 4j + t */
    LLVMValueRef colt = add(m, colq, LLVMBuildZExt(B, mul(m, t, i32c(m, 8)), g->t_i64, ""));
    for (int i = 0; i < tiles_m; i++) {
        LLVMValueRef row = add(m, row0, i64c(m, row_step * i));
        for (int j = 0; j < tiles_n / 4; j++) {
            LLVMValueRef *q[4];
            for (int k = 0; k < 4; k++) {
                q[k] = &m->acc[(i * tiles_n + 4 * j + k) * 4];
                LLVMValueRef col = add(m, colq, i64c(m, 8 * (4 * j + k)));
                col = add(m, col, LLVMBuildZExt(B, mul(m, t, i32c(m, 2)), g->t_i64, ""));
                LLVMValueRef col1 = add(m, col, i64c(m, 1));
                for (int e = 0; m->rg && e < 4; e++)
                    q[k][e] = epi_eval(m, e < 2 ? row : add(m, row, i64c(m, 8)), e & 1 ? col1 : col, NULL, q[k][e]);
            }
            for (int h = 0; h < 2; h++) {
                LLVMValueRef w[4], u[2];
                for (int k = 0; k < 4; k++)
                    w[k] = LLVMBuildOr(B, bits16(m, q[k][2 * h]),
                                       LLVMBuildShl(B, bits16(m, q[k][2 * h + 1]), i64c(m, 16), ""), "");
                /* round 1: lanes t, t^1 swap so each holds 4 columns of one n-tile */
                for (int kk = 0; kk < 2; kk++) {
                    LLVMValueRef a = w[2 * kk], b = w[2 * kk + 1];
                    LLVMValueRef send = LLVMBuildTrunc(B, LLVMBuildSelect(B, odd, a, b, ""), g->t_i32, "");
                    LLVMValueRef r = LLVMBuildZExt(B, cg_shfl_xor(g, send, 1), g->t_i64, "");
                    LLVMValueRef lo = LLVMBuildSelect(B, odd, r, a, ""), hi = LLVMBuildSelect(B, odd, b, r, "");
                    u[kk] = LLVMBuildOr(B, lo, LLVMBuildShl(B, hi, i64c(m, 32), ""), "");
                }
                /* round 2: lanes t, t^2 swap so each holds all 8 columns of one n-tile */
                LLVMValueRef r = cg_shfl_xor(g, LLVMBuildSelect(B, hi2, u[0], u[1], ""), 2);
                LLVMValueRef a = LLVMBuildSelect(B, hi2, r, u[0], ""), b = LLVMBuildSelect(B, hi2, u[1], r, "");
                store_oct(m, h ? add(m, row, i64c(m, 8)) : row, add(m, colt, i64c(m, 32 * j)), a, b, n16);
            }
        }
    }
}

/* each accumulator quad holds rows g and g+8, columns 2t and 2t+1 of a 16x8 tile */
static void epilogue(mm *m) {
    LLVMBuilderRef B = m->g->B;
    const tir_mma_config *c = &m->c;
    /* pairs are stored as one 4-byte word when every row starts 4-byte aligned */
    LLVMValueRef oaddr = LLVMBuildPtrToInt(B, m->out, m->g->t_i64, "");
    LLVMValueRef odd = LLVMBuildOr(B, LLVMBuildAnd(B, m->N, i64c(m, 1), ""),
                                   LLVMBuildAnd(B, oaddr, i64c(m, 3), ""), "");
    LLVMValueRef n_even = LLVMBuildICmp(B, LLVMIntEQ, odd, i64c(m, 0), "");
    LLVMValueRef gid = LLVMBuildLShr(B, m->lane, i32c(m, 2), "");
    LLVMValueRef tig = LLVMBuildShl(B, LLVMBuildAnd(B, m->lane, i32c(m, 3), ""), i32c(m, 1), "");
    int tiles_m, tiles_n, row_step;
    LLVMValueRef row0, col0;
    if (!c->wgmma) {
        /* quad (i, n) is the warp's 16x8 tile i, n */
        tiles_m = m->ss.mt;
        tiles_n = m->ss.nt;
        row_step = 16;
        row0 = add(m, m->m0, sext(m, add(m, m->ss.wm0, gid)));
        col0 = add(m, m->n0, sext(m, add(m, m->ss.wn0, tig)));
    } else {
        /* quad (i, n) of m64 block i: warp w%4 of the warpgroup holds its rows 16(w%4).. */
        tiles_m = m->ws.mi;
        tiles_n = m->ws.nacc / 4;
        row_step = 64;
        LLVMValueRef wq = LLVMBuildShl(B, LLVMBuildAnd(B, m->warp, i32c(m, 3), ""), i32c(m, 4), "");
        row0 = add(m, m->m0, sext(m, add(m, add(m, m->ws.wm0, wq), gid)));
        col0 = add(m, m->n0, sext(m, add(m, m->ws.wn0, tig)));
        if ((m->odt == TIR_BF16 || m->odt == TIR_F16) && tiles_n % 4 == 0) {
            epilogue_wide(m, row0, add(m, m->n0, sext(m, m->ws.wn0)), tiles_m, tiles_n, row_step);
            return;
        }
    }
    for (int i = 0; i < tiles_m; i++) {
        LLVMValueRef row = add(m, row0, i64c(m, row_step * i));
        for (int n = 0; n < tiles_n; n++) {
            LLVMValueRef *q = &m->acc[(i * tiles_n + n) * 4];
            LLVMValueRef col = add(m, col0, i64c(m, 8 * n)), col1 = add(m, col, i64c(m, 1));
            /* a fused epilogue on the quad's four elements before its stores: its loads (a
             * bias) see no store in between that could alias them, so the two rows share them */
            for (int e = 0; m->rg && e < 4; e++)
                q[e] = epi_eval(m, e < 2 ? row : add(m, row, i64c(m, 8)), e & 1 ? col1 : col, NULL, q[e]);
            store_pair(m, row, col, q[0], q[1], n_even);
            store_pair(m, add(m, row, i64c(m, 8)), col, q[2], q[3], n_even);
        }
    }
}

/* ---------------------------------------------------------------- the kernel */

/* batch dims (all but the last two) of t as a type of their own */
static tir_type batch_type(const tir_type *t) {
    tir_type b = *t;
    b.rank = t->rank - 2;
    return b;
}

static void build(mm *m, const tir_op *op, const char *name) {
    cg *g = m->g;
    LLVMBuilderRef B = g->B;
    const tir_type *ta = &op->in[0]->type, *tb = &op->in[1]->type, *to = &op->out[0]->type;
    bool tra = tir_attr_bool(op, "transpose_a", false), trb = tir_attr_bool(op, "transpose_b", false);
    const tir_mma_config *c = &m->c;
    int groups = c->warps_m * c->warps_n;
    m->threads = groups * (c->wgmma ? 128 : 32);
    m->stage_bytes = (c->bm + c->bn) * c->bk * 2;
    m->pre = c->wgmma ? c->stages - 2 : c->stages - 1;
    m->t_v8i16 = LLVMVectorType(g->t_i16, 8);
    m->t_v2i16 = LLVMVectorType(g->t_i16, 2);
    LLVMTypeRef i4[4] = {g->t_i32, g->t_i32, g->t_i32, g->t_i32};
    m->t_i32x4 = LLVMStructTypeInContext(g->C, i4, 4, 0);

    cg_use_type(g, ta);
    cg_use_type(g, tb);
    cg_use_type(g, to);
    for (int i = 0; m->rg && i < m->rg->nparams; i++) cg_use_type(g, &m->rg->params[i]->type);
    cg_begin_kernel(g, name, m->nbuf, m->threads);
    if (g->st != TIR_OK) return;

    /* the dynamic shared memory: 1024-byte alignment makes every 128-byte-swizzle pattern start
     * where wgmma expects it (descriptor base offset 0) */
    char sname[80];
    snprintf(sname, sizeof sname, "%s_smem", name); /* unique when kernels share a PTX file */
    m->smem = LLVMAddGlobalInAddressSpace(g->M, LLVMArrayType2(g->t_i8, 0), sname, 3);
    LLVMSetLinkage(m->smem, LLVMExternalLinkage);
    LLVMSetAlignment(m->smem, 1024);

    m->tid = sreg32(m, "tid.x");
    m->lane = LLVMBuildAnd(B, m->tid, i32c(m, 31), "");
    m->warp = LLVMBuildLShr(B, m->tid, i32c(m, 5), "");
    m->M = cg_dimv(g, to->dims[to->rank - 2]);
    m->N = cg_dimv(g, to->dims[to->rank - 1]);
    m->K = cg_dimv(g, ta->dims[ta->rank - (tra ? 2 : 1)]);

    /* nothing to do for an empty output (the runtime launches at least one block) */
    LLVMBasicBlockRef work = new_block(m, "work"), quit = new_block(m, "quit");
    LLVMValueRef empty = LLVMBuildOr(B, LLVMBuildICmp(B, LLVMIntEQ, m->M, i64c(m, 0), ""),
                                     LLVMBuildICmp(B, LLVMIntEQ, m->N, i64c(m, 0), ""), "");
    LLVMBuildCondBr(B, empty, quit, work);
    LLVMPositionBuilderAtEnd(B, quit);
    LLVMBuildRetVoid(B);
    LLVMPositionBuilderAtEnd(B, work);

    /* tile of this block: grouped rasterisation (group_m tile-rows walked column by column) */
    LLVMValueRef tiles_m = LLVMBuildUDiv(B, add(m, m->M, i64c(m, c->bm - 1)), i64c(m, c->bm), "");
    LLVMValueRef tiles_n = LLVMBuildUDiv(B, add(m, m->N, i64c(m, c->bn - 1)), i64c(m, c->bn), "");
    LLVMValueRef pid = LLVMBuildZExt(B, sreg32(m, "ctaid.x"), g->t_i64, "");
    LLVMValueRef in_group = mul(m, i64c(m, c->group_m), tiles_n);
    LLVMValueRef first_m = mul(m, LLVMBuildUDiv(B, pid, in_group, ""), i64c(m, c->group_m));
    LLVMValueRef gsize = cg_umin(g, LLVMBuildSub(B, tiles_m, first_m, ""), i64c(m, c->group_m));
    LLVMValueRef r = LLVMBuildURem(B, pid, in_group, "");
    m->m0 = mul(m, add(m, first_m, LLVMBuildURem(B, r, gsize, "")), i64c(m, c->bm));
    m->n0 = mul(m, LLVMBuildUDiv(B, r, gsize, ""), i64c(m, c->bn));

    /* batch z: offsets of its matrices, with the batch dims broadcast */
    tir_type ob = batch_type(to), ab = batch_type(ta), bb = batch_type(tb);
    LLVMValueRef z = LLVMBuildZExt(B, sreg32(m, "ctaid.y"), g->t_i64, "");
    LLVMValueRef coords[TIR_MAX_RANK];
    LLVMValueRef a_off = i64c(m, 0), b_off = i64c(m, 0), o_off = i64c(m, 0);
    if (ob.rank > 0) {
        cg_unravel(g, z, &ob, coords);
        a_off = mul(m, cg_bcast_offset(g, &ab, ob.rank, coords), mul(m, m->M, m->K));
        b_off = mul(m, cg_bcast_offset(g, &bb, ob.rank, coords), mul(m, m->K, m->N));
        o_off = mul(m, z, mul(m, m->M, m->N));
        memcpy(m->zc, coords, sizeof *coords * (size_t)ob.rank);
    }
    m->ob = ob;
    m->out = cg_gep(g, cg_stype(g, m->odt), g->buf[m->io], o_off);

    m->A = (opnd){.mn_major = tra, .tile_mn = c->bm, .off = 0};
    m->B = (opnd){.mn_major = !trb, .tile_mn = c->bn, .off = c->bm * c->bk * 2};
    opnd_setup(m, &m->A, cg_gep(g, g->t_i16, g->buf[m->ia], a_off), m->m0, m->M);
    opnd_setup(m, &m->B, cg_gep(g, g->t_i16, g->buf[m->ib], b_off), m->n0, m->N);

    if (!c->wgmma) {
        sync_state *s = &m->ss;
        s->wm = c->bm / c->warps_m;
        s->wn = c->bn / c->warps_n;
        s->mt = s->wm / 16;
        s->nt = s->wn / 8;
        s->wm0 = mul(m, LLVMBuildUDiv(B, m->warp, i32c(m, c->warps_n), ""), i32c(m, s->wm));
        s->wn0 = mul(m, LLVMBuildURem(B, m->warp, i32c(m, c->warps_n), ""), i32c(m, s->wn));
        m->nacc = s->mt * s->nt * 4;
    } else {
        wg_state *s = &m->ws;
        s->wm = c->bm / c->warps_m;
        s->wn = c->bn / c->warps_n;
        s->mi = s->wm / 64;
        s->nacc = s->wn / 2;
        LLVMValueRef wgi = LLVMBuildLShr(B, m->warp, i32c(m, 2), "");
        s->wm0 = mul(m, LLVMBuildUDiv(B, wgi, i32c(m, c->warps_n), ""), i32c(m, s->wm));
        s->wn0 = mul(m, LLVMBuildURem(B, wgi, i32c(m, c->warps_n), ""), i32c(m, s->wn));
        wg_build_asm(m);
        if (g->st != TIR_OK) return;
        m->nacc = s->mi * s->nacc;
    }
    for (int i = 0; i < m->nacc; i++) m->acc[i] = LLVMConstReal(g->t_f32, 0.0);

    /* Two copies of the main loop: one for operands whose rows are all 16-byte aligned (only
     * cp.async), one for the rest; separate loops keep the slow path's registers out of the fast
     * one. K == 0 skips both. */
    LLVMValueRef kt_n = LLVMBuildTrunc(B, LLVMBuildUDiv(B, add(m, m->K, i64c(m, c->bk - 1)),
                                                        i64c(m, c->bk), ""), g->t_i32, "");
    LLVMBasicBlockRef entry_bb = LLVMGetInsertBlock(B);
    LLVMBasicBlockRef split = new_block(m, "split"), after = new_block(m, "kdone");
    LLVMBasicBlockRef fast_bb = new_block(m, "fast"), slow_bb = new_block(m, "slow");
    LLVMBuildCondBr(B, LLVMBuildICmp(B, LLVMIntEQ, kt_n, i32c(m, 0), ""), after, split);
    LLVMPositionBuilderAtEnd(B, split);
    LLVMBuildCondBr(B, and1(m, m->A.aligned, m->B.aligned), fast_bb, slow_bb);
    LLVMValueRef accf[MAX_ACC], accs[MAX_ACC];
    LLVMBasicBlockRef fast_end = main_loop(m, fast_bb, true, kt_n, after, accf);
    LLVMBasicBlockRef slow_end = main_loop(m, slow_bb, false, kt_n, after, accs);

    LLVMPositionBuilderAtEnd(B, after);
    for (int i = 0; i < m->nacc; i++) {
        LLVMValueRef p = LLVMBuildPhi(B, g->t_f32, "");
        LLVMValueRef in[3] = {m->acc[i], accf[i], accs[i]};
        LLVMBasicBlockRef from[3] = {entry_bb, fast_end, slow_end};
        LLVMAddIncoming(p, in, from, 3);
        m->acc[i] = p;
    }
    epilogue(m);
    LLVMBuildRetVoid(B);

    /* launch: tiles of M x tiles of N blocks per batch */
    tir_kernel *k = g->k;
    const tir_dim *Md = to->dims[to->rank - 2], *Nd = to->dims[to->rank - 1];
    const tir_dim *gx = tir_dim_mul(g->ctx, cg_ceil_div(g, Md, c->bm), cg_ceil_div(g, Nd, c->bn));
    if (!gx) {
        cg_fail(g, TIR_ERR_UNSUPPORTED, "matmul: grid size overflows int64");
        return;
    }
    k->grid[0] = gx;
    k->grid[1] = ob.rank > 0 ? cg_numel_dim(g, &ob) : tir_dim_const(g->ctx, 1);
    k->grid[2] = tir_dim_const(g->ctx, 1);
    k->shared_bytes = c->stages * m->stage_bytes;
}

/* ---------------------------------------------------------------- the TMA kernel (sm_90a)
 *
 * Block: warpgroup 0 produces, warpgroups 1..G consume (G = warps_m * warps_n, each with the
 * wgmma tile of the cp.async kernel). Shared memory: `stages` buffers of (bm + bn) x 64 elements
 * in the layout above (A then B), then the barriers full[stages], empty[stages].
 *   producer (one thread): for each of the block's tiles, for each k-step: wait until empty[s]
 *     completes the phase before ph (a fresh barrier counts as having completed it), announce the
 *     stage's bytes on full[s] and start the copies, which complete full[s]'s phase;
 *   consumers: wait for full[s]'s phase ph, wgmma over the stage, wait for the wgmmas to finish
 *     reading, and arrive on empty[s] (lane 0 of each consumer warp: empty counts 4G arrivals).
 * s and ph run over k-steps of every tile alike on both sides, so they never need to agree
 * other than through the barriers. A K-major tile is one copy of box {64, rows} (64 elements of
 * K = one 128-byte swizzled row); an MN-major tile is mn/64 copies of box {64, 64}, one per
 * 128-byte panel, which is the layout wg_opnd_desc reads. Out-of-range parts of a box read as
 * zeros and count towards the stage's bytes, so ragged M, N, K need no special case. */

/* an inline-asm statement with side effects; argument types are the values' */
static LLVMValueRef tma_asm(mm *m, LLVMTypeRef rty, const char *text, const char *cons, int n,
                            LLVMValueRef *args) {
    LLVMTypeRef pt[8];
    for (int i = 0; i < n; i++) pt[i] = LLVMTypeOf(args[i]);
    LLVMTypeRef fty = LLVMFunctionType(rty, pt, (unsigned)n, 0);
    LLVMValueRef f = LLVMGetInlineAsm(fty, text, strlen(text), cons, strlen(cons), 1, 0,
                                      LLVMInlineAsmDialectATT, 0);
    return LLVMBuildCall2(m->g->B, fty, f, args, (unsigned)n, "");
}

/* the 32-bit shared-memory address of byte `off` (i32) of the dynamic shared memory */
static LLVMValueRef saddr(mm *m, LLVMValueRef off) {
    LLVMValueRef p = LLVMBuildPtrToInt(m->g->B, smem_at(m, off), m->g->t_i64, "");
    return LLVMBuildTrunc(m->g->B, p, m->g->t_i32, "");
}

/* wait until the barrier at `bar` (i32 shared address) completes the phase of parity `par` */
static void mbar_wait(mm *m, LLVMValueRef bar, LLVMValueRef par) {
    LLVMBuilderRef B = m->g->B;
    LLVMBasicBlockRef spin = new_block(m, "mbar_wait"), done = new_block(m, "mbar_done");
    LLVMBuildBr(B, spin);
    LLVMPositionBuilderAtEnd(B, spin);
    LLVMValueRef args[2] = {bar, par};
    LLVMValueRef ok = tma_asm(m, m->g->t_i32,
                              "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [$1], $2;\n"
                              "selp.b32 $0, 1, 0, p;\n}",
                              "=r,r,r", 2, args);
    LLVMBuildCondBr(B, LLVMBuildICmp(B, LLVMIntNE, ok, i32c(m, 0), ""), done, spin);
    LLVMPositionBuilderAtEnd(B, done);
}

typedef struct tma_tile {
    LLVMValueRef m0, n0; /* i64: the tile's first output row and column */
    LLVMValueRef z;      /* i64: its batch index */
} tma_tile;

/* tile t (i64) of the walk: batch-major, grouped rasterisation within a batch */
static tma_tile tma_tile_of(mm *m, LLVMValueRef t, LLVMValueRef tiles_m, LLVMValueRef tiles_n) {
    LLVMBuilderRef B = m->g->B;
    const tir_mma_config *c = &m->c;
    tma_tile r;
    LLVMValueRef tiles = mul(m, tiles_m, tiles_n);
    r.z = LLVMBuildUDiv(B, t, tiles, "");
    LLVMValueRef pid = LLVMBuildURem(B, t, tiles, "");
    LLVMValueRef in_group = mul(m, i64c(m, c->group_m), tiles_n);
    LLVMValueRef first_m = mul(m, LLVMBuildUDiv(B, pid, in_group, ""), i64c(m, c->group_m));
    LLVMValueRef gsize = cg_umin(m->g, LLVMBuildSub(B, tiles_m, first_m, ""), i64c(m, c->group_m));
    LLVMValueRef rr = LLVMBuildURem(B, pid, in_group, "");
    r.m0 = mul(m, add(m, first_m, LLVMBuildURem(B, rr, gsize, "")), i64c(m, c->bm));
    r.n0 = mul(m, LLVMBuildUDiv(B, rr, gsize, ""), i64c(m, c->bn));
    return r;
}

/* The kernel's signature: a, b, out, the tensor maps of a and b (byval, grid constants: the
 * copies read them in the parameter space), the symbolic sizes. */
static void tma_begin_kernel(mm *m, const char *name, const tir_kparam_tmap *ta,
                             const tir_kparam_tmap *tb, int threads, int max_regs) {
    cg *g = m->g;
    int nbuf = m->nbuf, np = nbuf + 2 + g->ndim;
    LLVMTypeRef *pt = malloc(sizeof *pt * (size_t)np);
    g->buf = malloc(sizeof *g->buf * (size_t)nbuf);
    g->k->params = malloc(sizeof *g->k->params * (size_t)np);
    if (!pt || !g->buf || !g->k->params) {
        free(pt);
        cg_fail(g, TIR_ERR_OOM, "out of memory");
        return;
    }
    for (int i = 0; i < nbuf; i++) pt[i] = g->t_gptr;
    LLVMTypeRef gen = LLVMPointerTypeInContext(g->C, 0);
    pt[nbuf] = pt[nbuf + 1] = gen;
    for (int i = 0; i < g->ndim; i++) pt[nbuf + 2 + i] = g->t_i64;
    LLVMTypeRef fty = LLVMFunctionType(g->t_void, pt, (unsigned)np, 0);
    free(pt);
    g->fn = LLVMAddFunction(g->M, name, fty);
    LLVMSetFunctionCallConv(g->fn, 71 /* ptx_kernel */);
    char v[16];
    /* a register cap at entry (maxntid with one block per SM) lets setmaxnreg move registers */
    snprintf(v, sizeof v, "%d", threads);
    LLVMAddAttributeAtIndex(g->fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(g->C, "nvvm.maxntid", 12, v, (unsigned)strlen(v)));
    LLVMAddAttributeAtIndex(g->fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(g->C, "nvvm.minctasm", 13, "1", 1));
    snprintf(v, sizeof v, "%d", max_regs);
    LLVMAddAttributeAtIndex(g->fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(g->C, "nvvm.maxnreg", 12, v, (unsigned)strlen(v)));
    LLVMTypeRef blob = LLVMArrayType2(g->t_i8, 128);
    unsigned k_byval = LLVMGetEnumAttributeKindForName("byval", 5);
    unsigned k_align = LLVMGetEnumAttributeKindForName("align", 5);
    for (int i = 0; i < 2; i++) {
        unsigned idx = (unsigned)(nbuf + i + 1); /* attribute indices of parameters are 1-based */
        LLVMAddAttributeAtIndex(g->fn, idx, LLVMCreateTypeAttribute(g->C, k_byval, blob));
        LLVMAddAttributeAtIndex(g->fn, idx, LLVMCreateEnumAttribute(g->C, k_align, 64));
        LLVMAddAttributeAtIndex(g->fn, idx,
                                LLVMCreateStringAttribute(g->C, "nvvm.grid_constant", 18, "", 0));
    }
    g->nbuf = nbuf;
    for (int i = 0; i < nbuf; i++) {
        g->k->params[i] = (tir_kparam){.kind = TIR_KP_BUFFER, .index = i};
        g->buf[i] = LLVMGetParam(g->fn, (unsigned)i);
    }
    g->k->params[nbuf] = (tir_kparam){.kind = TIR_KP_TMAP, .index = m->ia, .tmap = *ta};
    g->k->params[nbuf + 1] = (tir_kparam){.kind = TIR_KP_TMAP, .index = m->ib, .tmap = *tb};
    for (int i = 0; i < g->ndim; i++) {
        g->k->params[nbuf + 2 + i] = (tir_kparam){.kind = TIR_KP_DIM, .index = -1, .dim = g->dim[i]};
        g->dimv[i] = LLVMGetParam(g->fn, (unsigned)(nbuf + 2 + i));
    }
    g->k->nparams = np;
    g->k->block[0] = threads;
    g->k->block[1] = g->k->block[2] = 1;
    LLVMPositionBuilderAtEnd(g->B, LLVMAppendBasicBlockInContext(g->C, g->fn, "entry"));
}

/* The view of operand o (stored type t, 3-D: its two matrix dims and its batch) and the copies of
 * one stage: K-major, one box {64, tile_mn}; MN-major, tile_mn/64 boxes {64, 64}. */
static void tma_view(mm *m, const opnd *o, const tir_type *t, tir_kparam_tmap *v) {
    cg *g = m->g;
    tir_type bt = batch_type(t);
    const tir_dim *inner = t->dims[t->rank - 1], *outer = t->dims[t->rank - 2];
    const tir_dim *mat = tir_dim_mul(g->ctx, inner, outer);
    const tir_dim *nb = bt.rank > 0 ? cg_numel_dim(g, &bt) : tir_dim_const(g->ctx, 1);
    if (!mat) {
        cg_fail(g, TIR_ERR_UNSUPPORTED, "matmul: matrix size overflows int64");
        mat = tir_dim_const(g->ctx, 1);
    }
    *v = (tir_kparam_tmap){.dtype = m->dt, .rank = 3, .dims = {inner, outer, nb},
                           .strides = {NULL, inner, mat}, .box = {64, o->mn_major ? 64 : o->tile_mn, 1},
                           .swizzle = 128};
}

/* the copies of k-step kt (i64) of operand o into the stage at byte `tile` (i32), completing on
 * the barrier at `bar`; zc is the operand's batch coordinate (i32) */
static void tma_load(mm *m, const opnd *o, LLVMValueRef tmap, LLVMValueRef tile, LLVMValueRef bar,
                     LLVMValueRef mn0, LLVMValueRef kt, LLVMValueRef zc) {
    cg *g = m->g;
    LLVMBuilderRef B = g->B;
    LLVMValueRef k0 = LLVMBuildTrunc(B, mul(m, kt, i64c(m, m->c.bk)), g->t_i32, "");
    LLVMValueRef mn = LLVMBuildTrunc(B, mn0, g->t_i32, "");
    const char *text = "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
                       " [$0], [$1, {$2, $3, $4}], [$5];";
    int n = o->mn_major ? o->tile_mn / 64 : 1;
    for (int p = 0; p < n; p++) {
        LLVMValueRef dst = saddr(m, add(m, tile, i32c(m, o->off + p * o->rows * 128)));
        LLVMValueRef c0 = o->mn_major ? add(m, mn, i32c(m, 64 * p)) : k0;
        LLVMValueRef c1 = o->mn_major ? k0 : mn;
        LLVMValueRef args[6] = {dst, tmap, c0, c1, zc, bar};
        tma_asm(m, g->t_void, text, "r,l,r,r,r,r", 6, args);
    }
}

static void build_tma(mm *m, const tir_op *op, const char *name) {
    cg *g = m->g;
    LLVMBuilderRef B = g->B;
    const tir_type *ta = &op->in[0]->type, *tb = &op->in[1]->type, *to = &op->out[0]->type;
    bool tra = tir_attr_bool(op, "transpose_a", false), trb = tir_attr_bool(op, "transpose_b", false);
    const tir_mma_config *c = &m->c;
    int groups = c->warps_m * c->warps_n;
    m->threads = (groups + 1) * 128;
    m->stage_bytes = (c->bm + c->bn) * c->bk * 2;
    m->t_v2i16 = LLVMVectorType(g->t_i16, 2);
    int bars = c->stages * m->stage_bytes; /* full[s] at bars + 8s, empty[s] at bars + 8(stages + s) */
    /* registers: the producer gives up all but 40; the consumers share the rest (multiples of 8) */
    int entry_regs = (65536 / m->threads) / 8 * 8;
    if (entry_regs > 255) entry_regs = 255;
    int cons_regs = ((65536 / 128 - 40) / groups) / 8 * 8;
    if (cons_regs > 240) cons_regs = 240;

    m->A = (opnd){.mn_major = tra, .tile_mn = c->bm, .off = 0};
    m->B = (opnd){.mn_major = !trb, .tile_mn = c->bn, .off = c->bm * c->bk * 2};
    m->A.rows = tra ? c->bk : c->bm;
    m->A.cpr = (tra ? c->bm : c->bk) / 8;
    m->B.rows = trb ? c->bn : c->bk;
    m->B.cpr = (trb ? c->bk : c->bn) / 8;
    tir_kparam_tmap va, vb;
    tma_view(m, &m->A, ta, &va);
    tma_view(m, &m->B, tb, &vb);

    cg_use_type(g, ta);
    cg_use_type(g, tb);
    cg_use_type(g, to);
    for (int i = 0; m->rg && i < m->rg->nparams; i++) cg_use_type(g, &m->rg->params[i]->type);
    if (g->st != TIR_OK) return;
    tma_begin_kernel(m, name, &va, &vb, m->threads, entry_regs);
    if (g->st != TIR_OK) return;
    LLVMValueRef tmap_a = LLVMGetParam(g->fn, (unsigned)m->nbuf);
    LLVMValueRef tmap_b = LLVMGetParam(g->fn, (unsigned)m->nbuf + 1);

    char sname[80];
    snprintf(sname, sizeof sname, "%s_smem", name);
    m->smem = LLVMAddGlobalInAddressSpace(g->M, LLVMArrayType2(g->t_i8, 0), sname, 3);
    LLVMSetLinkage(m->smem, LLVMExternalLinkage);
    LLVMSetAlignment(m->smem, 1024);

    /* loop state lives in allocas (promoted to registers by SROA) */
    LLVMValueRef v_s = LLVMBuildAlloca(B, g->t_i32, "s"), v_ph = LLVMBuildAlloca(B, g->t_i32, "ph");
    LLVMValueRef v_acc = LLVMBuildAlloca(B, LLVMArrayType2(g->t_f32, MAX_ACC), "acc");

    m->tid = sreg32(m, "tid.x");
    m->lane = LLVMBuildAnd(B, m->tid, i32c(m, 31), "");
    m->warp = LLVMBuildLShr(B, m->tid, i32c(m, 5), "");
    m->M = cg_dimv(g, to->dims[to->rank - 2]);
    m->N = cg_dimv(g, to->dims[to->rank - 1]);
    m->K = cg_dimv(g, ta->dims[ta->rank - (tra ? 2 : 1)]);

    LLVMBasicBlockRef work = new_block(m, "work"), quit = new_block(m, "quit");
    LLVMValueRef empty = LLVMBuildOr(B, LLVMBuildICmp(B, LLVMIntEQ, m->M, i64c(m, 0), ""),
                                     LLVMBuildICmp(B, LLVMIntEQ, m->N, i64c(m, 0), ""), "");
    LLVMBuildCondBr(B, empty, quit, work);
    LLVMPositionBuilderAtEnd(B, quit);
    LLVMBuildRetVoid(B);
    LLVMPositionBuilderAtEnd(B, work);

    tir_type ob = batch_type(to), ab = batch_type(ta), bb = batch_type(tb);
    LLVMValueRef tiles_m = LLVMBuildUDiv(B, add(m, m->M, i64c(m, c->bm - 1)), i64c(m, c->bm), "");
    LLVMValueRef tiles_n = LLVMBuildUDiv(B, add(m, m->N, i64c(m, c->bn - 1)), i64c(m, c->bn), "");
    LLVMValueRef nbatch = ob.rank > 0 ? cg_numel(g, &ob) : i64c(m, 1);
    LLVMValueRef total = mul(m, mul(m, tiles_m, tiles_n), nbatch);
    LLVMValueRef kt_n = LLVMBuildUDiv(B, add(m, m->K, i64c(m, c->bk - 1)), i64c(m, c->bk), "");
    LLVMValueRef t0 = LLVMBuildZExt(B, sreg32(m, "ctaid.x"), g->t_i64, "");
    LLVMValueRef tstep = LLVMBuildZExt(B, sreg32(m, "nctaid.x"), g->t_i64, "");

    /* barriers: made by one thread, visible to the copy engine and every thread before use */
    cg_if ifz;
    cg_if_begin(g, &ifz, LLVMBuildICmp(B, LLVMIntEQ, m->tid, i32c(m, 0), ""));
    for (int s = 0; s < c->stages; s++) {
        LLVMValueRef a1[2] = {saddr(m, i32c(m, bars + 8 * s)), i32c(m, 1)};
        tma_asm(m, g->t_void, "mbarrier.init.shared::cta.b64 [$0], $1;", "r,r", 2, a1);
        LLVMValueRef a2[2] = {saddr(m, i32c(m, bars + 8 * (c->stages + s))), i32c(m, 4 * groups)};
        tma_asm(m, g->t_void, "mbarrier.init.shared::cta.b64 [$0], $1;", "r,r", 2, a2);
    }
    tma_asm(m, g->t_void, "fence.mbarrier_init.release.cluster;", "", 0, NULL);
    cg_if_end(g, &ifz);
    cg_barrier(g);
    LLVMBuildStore(B, i32c(m, 0), v_s);
    LLVMBuildStore(B, i32c(m, 0), v_ph);

    LLVMValueRef wg = LLVMBuildLShr(B, m->tid, i32c(m, 7), "");
    LLVMBasicBlockRef prod = new_block(m, "producer"), cons = new_block(m, "consumer");
    LLVMBasicBlockRef fin = new_block(m, "finish");
    LLVMBuildCondBr(B, LLVMBuildICmp(B, LLVMIntEQ, wg, i32c(m, 0), ""), prod, cons);

    /* advance the ring position: s + 1, flipping the parity on wrap-around */
#define ADVANCE()                                                                                 \
    do {                                                                                          \
        LLVMValueRef s1 = add(m, s, i32c(m, 1));                                                  \
        LLVMValueRef wrap = LLVMBuildICmp(B, LLVMIntEQ, s1, i32c(m, c->stages), "");              \
        LLVMBuildStore(B, LLVMBuildSelect(B, wrap, i32c(m, 0), s1, ""), v_s);                     \
        LLVMBuildStore(B, LLVMBuildSelect(B, wrap, LLVMBuildXor(B, ph, i32c(m, 1), ""), ph, ""),  \
                       v_ph);                                                                     \
    } while (0)

    /* ---- producer */
    LLVMPositionBuilderAtEnd(B, prod);
    {
        tma_asm(m, g->t_void, "setmaxnreg.dec.sync.aligned.u32 40;", "", 0, NULL);
        cg_if one;
        cg_if_begin(g, &one, LLVMBuildICmp(B, LLVMIntEQ, m->tid, i32c(m, 0), ""));
        cg_loop tl;
        LLVMValueRef t = cg_for_begin(g, &tl, t0, total, tstep);
        tma_tile tt = tma_tile_of(m, t, tiles_m, tiles_n);
        LLVMValueRef za = i32c(m, 0), zb = i32c(m, 0);
        if (ob.rank > 0) {
            LLVMValueRef coords[TIR_MAX_RANK];
            cg_unravel(g, tt.z, &ob, coords);
            za = LLVMBuildTrunc(B, cg_bcast_offset(g, &ab, ob.rank, coords), g->t_i32, "");
            zb = LLVMBuildTrunc(B, cg_bcast_offset(g, &bb, ob.rank, coords), g->t_i32, "");
        }
        cg_loop kl;
        LLVMValueRef kt = cg_for_begin(g, &kl, i64c(m, 0), kt_n, i64c(m, 1));
        LLVMValueRef s = LLVMBuildLoad2(B, g->t_i32, v_s, ""), ph = LLVMBuildLoad2(B, g->t_i32, v_ph, "");
        LLVMValueRef full = saddr(m, add(m, i32c(m, bars), mul(m, s, i32c(m, 8))));
        LLVMValueRef emp = saddr(m, add(m, i32c(m, bars + 8 * c->stages), mul(m, s, i32c(m, 8))));
        mbar_wait(m, emp, LLVMBuildXor(B, ph, i32c(m, 1), ""));
        LLVMValueRef ex[2] = {full, i32c(m, m->stage_bytes)};
        tma_asm(m, g->t_void, "mbarrier.arrive.expect_tx.shared::cta.b64 _, [$0], $1;", "r,r", 2, ex);
        LLVMValueRef tile = mul(m, s, i32c(m, m->stage_bytes));
        tma_load(m, &m->A, tmap_a, tile, full, tt.m0, kt, za);
        tma_load(m, &m->B, tmap_b, tile, full, tt.n0, kt, zb);
        ADVANCE();
        cg_for_end(g, &kl);
        cg_for_end(g, &tl);
        cg_if_end(g, &one);
        LLVMBuildBr(B, fin);
    }

    /* ---- consumers */
    LLVMPositionBuilderAtEnd(B, cons);
    {
        char t[64];
        snprintf(t, sizeof t, "setmaxnreg.inc.sync.aligned.u32 %d;", cons_regs);
        tma_asm(m, g->t_void, t, "", 0, NULL);
        wg_state *ws = &m->ws;
        ws->wm = c->bm / c->warps_m;
        ws->wn = c->bn / c->warps_n;
        ws->mi = ws->wm / 64;
        ws->nacc = ws->wn / 2;
        LLVMValueRef wgi = LLVMBuildSub(B, wg, i32c(m, 1), "");
        ws->wm0 = mul(m, LLVMBuildUDiv(B, wgi, i32c(m, c->warps_n), ""), i32c(m, ws->wm));
        ws->wn0 = mul(m, LLVMBuildURem(B, wgi, i32c(m, c->warps_n), ""), i32c(m, ws->wn));
        wg_build_asm(m);
        if (g->st != TIR_OK) return;
        m->nacc = ws->mi * ws->nacc;
        LLVMTypeRef at = LLVMArrayType2(g->t_f32, MAX_ACC);
        LLVMValueRef accp[MAX_ACC];
        for (int i = 0; i < m->nacc; i++) {
            LLVMValueRef idx[2] = {i32c(m, 0), i32c(m, i)};
            accp[i] = LLVMBuildInBoundsGEP2(B, at, v_acc, idx, 2, "");
        }
        cg_loop tl;
        LLVMValueRef tv = cg_for_begin(g, &tl, t0, total, tstep);
        tma_tile tt = tma_tile_of(m, tv, tiles_m, tiles_n);
        for (int i = 0; i < m->nacc; i++) LLVMBuildStore(B, LLVMConstReal(g->t_f32, 0.0), accp[i]);
        cg_loop kl;
        cg_for_begin(g, &kl, i64c(m, 0), kt_n, i64c(m, 1));
        LLVMValueRef s = LLVMBuildLoad2(B, g->t_i32, v_s, ""), ph = LLVMBuildLoad2(B, g->t_i32, v_ph, "");
        LLVMValueRef full = saddr(m, add(m, i32c(m, bars), mul(m, s, i32c(m, 8))));
        LLVMValueRef emp = saddr(m, add(m, i32c(m, bars + 8 * c->stages), mul(m, s, i32c(m, 8))));
        mbar_wait(m, full, ph);
        for (int i = 0; i < m->nacc; i++) m->acc[i] = LLVMBuildLoad2(B, g->t_f32, accp[i], "");
        wg_compute(m, s);
        /* wait for this step's wgmmas before releasing the stage: keeping one step in flight
         * (wait_group 1, releasing the step before) measured 3-7% slower on the H100, as the
         * stage stays held longer and the producer runs fewer steps ahead */
        wg_wait(m, 0);
        for (int i = 0; i < m->nacc; i++) LLVMBuildStore(B, m->acc[i], accp[i]);
        cg_if rel;
        cg_if_begin(g, &rel, LLVMBuildICmp(B, LLVMIntEQ, m->lane, i32c(m, 0), ""));
        tma_asm(m, g->t_void, "mbarrier.arrive.shared::cta.b64 _, [$0];", "r", 1, &emp);
        cg_if_end(g, &rel);
        ADVANCE();
        cg_for_end(g, &kl);
        /* the epilogue: this batch's output, the tile's origin, the accumulators */
        LLVMValueRef o_off = ob.rank > 0 ? mul(m, tt.z, mul(m, m->M, m->N)) : i64c(m, 0);
        if (ob.rank > 0) cg_unravel(g, tt.z, &ob, m->zc);
        m->ob = ob;
        m->out = cg_gep(g, cg_stype(g, m->odt), g->buf[m->io], o_off);
        m->m0 = tt.m0;
        m->n0 = tt.n0;
        for (int i = 0; i < m->nacc; i++) m->acc[i] = LLVMBuildLoad2(B, g->t_f32, accp[i], "");
        epilogue(m);
        cg_for_end(g, &tl);
        LLVMBuildBr(B, fin);
    }
#undef ADVANCE
    LLVMPositionBuilderAtEnd(B, fin);
    LLVMBuildRetVoid(B);

    tir_kernel *k = g->k;
    const tir_dim *Md = to->dims[to->rank - 2], *Nd = to->dims[to->rank - 1];
    const tir_dim *gx = tir_dim_mul(g->ctx, cg_ceil_div(g, Md, c->bm), cg_ceil_div(g, Nd, c->bn));
    if (gx && ob.rank > 0) gx = tir_dim_mul(g->ctx, gx, cg_numel_dim(g, &ob));
    if (!gx) {
        cg_fail(g, TIR_ERR_UNSUPPORTED, "matmul: grid size overflows int64");
        return;
    }
    k->grid[0] = gx;
    k->grid[1] = k->grid[2] = tir_dim_const(g->ctx, 1);
    k->persistent = 1;
    k->shared_bytes = bars + 16 * c->stages;
}

/* ---------------------------------------------------------------- fused epilogues
 *
 * A kind="matmul" region: its matmul's accumulators go through the region's elementwise members
 * before the one store. Every member is evaluated per output element in f32 (f64 for f64, ints
 * as in codegen/elementwise.c) and rounded at its own dtype, as the interpreter rounds: the
 * matmul's result itself is first rounded to its dtype (bf16), since that is what its readers
 * see; a widened matmul's result is f32, the accumulator itself. Casts of parameters are leaves:
 * a widened operand's is done by the main loop (the tensor cores take the 16-bit values), a
 * bias's is evaluated where an epilogue member reads it. Parameters other than the matmul's
 * operands are loaded at the element's coordinates, broadcast (a bias [N], a residual
 * [.., M, N], a scalar), and only for elements inside the output, so no load leaves its
 * buffer. */

/* v broadcasts to the output type ot (NumPy: aligned right, each dim equal or the constant 1) */
static bool bcasts_to(const tir_type *v, const tir_type *ot) {
    if (v->rank > ot->rank) return false;
    for (int i = 0; i < v->rank; i++) {
        const tir_dim *d = v->dims[v->rank - 1 - i], *o = ot->dims[ot->rank - 1 - i];
        int64_t c;
        if (d != o && !(tir_dim_is_const(d, &c) && c == 1)) return false;
    }
    return true;
}

/* a cast of a region parameter: a leaf of the region, computed where it is read (the widening
 * of a matmul operand, loaded as 16 bits by the main loop; a bias's cast, in the epilogue) */
static bool param_cast(const tir_value *v) {
    return v->def && v->def->code == TIR_OP_CAST && v->def->nin == 1 && !v->def->in[0]->def;
}

#define EPI_MAX_OPS 64

/* the region's result at output element (row, col) of the current batch, from the matmul's
 * accumulator acc; ok: the element is inside the output */
static LLVMValueRef epi_eval(mm *m, LLVMValueRef row, LLVMValueRef col, LLVMValueRef ok,
                             LLVMValueRef acc) {
    cg *g = m->g;
    LLVMBuilderRef B = g->B;
    const tir_func *r = m->rg;
    LLVMValueRef val[EPI_MAX_OPS] = {0};
    LLVMValueRef coords[TIR_MAX_RANK + 2];
    int orank = m->ob.rank + 2;
    for (int i = 0; i < m->ob.rank; i++) coords[i] = m->zc[i];
    coords[orank - 2] = row;
    coords[orank - 1] = col;
    if (!ok) ok = and1(m, ult(m, row, m->M), ult(m, col, m->N));
    const tir_value *res = r->results[0];
    for (int i = 0; i < r->nops && i < EPI_MAX_OPS; i++) {
        const tir_op *op = r->ops[i];
        if (op == m->mmop) {
            /* a widened matmul's f32 result is the accumulator itself */
            val[i] = cg_round_to(g, op->out[0]->type.dtype, acc);
        } else if (op->out[0] == m->mmop->in[0] || op->out[0] == m->mmop->in[1] ||
                   (param_cast(op->out[0]) && !bcasts_to(&op->out[0]->type, &m->mmop->out[0]->type))) {
            continue; /* a widened operand (the main loop's), or a cast no member reads */
        } else if (op->code == TIR_OP_FULL) {
            val[i] = cg_const_of(g, op->out[0]->type.dtype, tir_attr_float(op, "value", 0.0));
        } else {
            LLVMValueRef a[3];
            for (int j = 0; j < op->nin && j < 3; j++) {
                const tir_value *v = op->in[j];
                if (!v->def) {
                    /* loaded only inside the output (a branch, not a clamped index: the
                     * addresses stay base + constant, and none is computed ahead) */
                    LLVMValueRef off = cg_bcast_offset(g, &v->type, orank, coords);
                    LLVMTypeRef ct = cg_ctype(g, v->type.dtype);
                    LLVMBasicBlockRef from = LLVMGetInsertBlock(B);
                    cg_if c;
                    cg_if_begin(g, &c, ok);
                    LLVMValueRef x = cg_load_c(g, v->type.dtype, g->buf[v->index], off);
                    LLVMBasicBlockRef then = LLVMGetInsertBlock(B);
                    cg_if_end(g, &c);
                    LLVMValueRef p = LLVMBuildPhi(B, ct, "");
                    LLVMValueRef in[2] = {LLVMConstNull(ct), x};
                    LLVMBasicBlockRef bb[2] = {from, then};
                    LLVMAddIncoming(p, in, bb, 2);
                    a[j] = p;
                } else {
                    int k = 0;
                    while (k < i && r->ops[k] != v->def) k++;
                    a[j] = val[k];
                }
            }
            val[i] = cg_member(g, op, a);
        }
        if (op->out[0] == res) {
            /* the result as a compute value of its own dtype: f32 for 16-bit floats */
            return val[i];
        }
    }
    cg_fail(g, TIR_ERR_INTERNAL, "matmul epilogue: the region's result is not a member");
    return acc;
}

/* the region's matmul when its body is one the epilogue handles (see matmul_mma.h), else NULL
 * with the reason in why */
static const tir_op *region_matmul(const tir_op *fop, char *why, size_t n) {
    const tir_func *r = tir_op_region(fop);
#define NO(...) do { snprintf(why, n, __VA_ARGS__); return NULL; } while (0)
    if (!r || fop->nout != 1 || r->nres != 1) NO("not a one-result fused region");
    if (r->nops > EPI_MAX_OPS) NO("more than %d members", EPI_MAX_OPS);
    const tir_op *mmop = NULL;
    int imm = 0;
    for (; imm < r->nops && !mmop; imm++)
        if (r->ops[imm]->code == TIR_OP_MATMUL) mmop = r->ops[imm];
    if (!mmop) NO("no matmul");
    tir_dtype t16;
    bool wide = !is16(mmop->in[0]->type.dtype);
    if (wide ? !mm_dtype(mmop, true, &t16) || !param_cast(mmop->in[0]) || !param_cast(mmop->in[1])
             : mmop->in[0]->def || mmop->in[1]->def)
        NO("the matmul's operands must be region parameters (or their casts to f32 from one "
           "16-bit dtype)");
    for (int i = 0; i < r->nops; i++) {
        const tir_op *op = r->ops[i];
        if (op->code == TIR_OP_FULL || op == mmop) continue;
        if (op->code == TIR_OP_MATMUL) NO("two matmuls");
        if (op->nout == 1 && param_cast(op->out[0])) continue; /* checked where it is read */
        if (i < imm || !tir_op_is_elementwise(op->code))
            NO("%s is not an epilogue member", tir_ops[op->code].name);
        if (op->nout != 1 || op->nin > 3) NO("%s is not elementwise", tir_ops[op->code].name);
        if (!tir_type_same_dims(&op->out[0]->type, &mmop->out[0]->type))
            NO("%s does not have the matmul's output shape", tir_ops[op->code].name);
        for (int j = 0; j < op->nin; j++) {
            const tir_value *v = op->in[j];
            if (wide && (v == mmop->in[0] || v == mmop->in[1]))
                NO("a widened operand of the matmul is read by the epilogue");
            if (!v->def || param_cast(v)) {
                if (!bcasts_to(&v->type, &mmop->out[0]->type))
                    NO("operand %d of %s does not broadcast to the output", j, tir_ops[op->code].name);
            } else if (v->def->code != TIR_OP_FULL && !tir_type_same_dims(&v->type, &mmop->out[0]->type)) {
                NO("operand %d of %s does not have the output shape", j, tir_ops[op->code].name);
            }
        }
    }
    const tir_value *res = r->results[0];
    if (!res->def || res->def->code == TIR_OP_FULL || res == mmop->in[0] || res == mmop->in[1] ||
        !tir_type_same_dims(&res->type, &mmop->out[0]->type))
        NO("the result is not the matmul's or an epilogue member's");
    return mmop;
#undef NO
}

/* Shared by the two entry points: `op` the matmul, `fop` its region (NULL: a plain matmul). */
static tir_status gen(tir_context *ctx, const tir_op *op, const tir_op *fop, int id,
                      const tir_codegen_options *opts, const tir_mma_config *cfg, tir_kernel *out,
                      tir_diag *d) {
    memset(out, 0, sizeof *out);
    out->alias_of = -1;
    out->init_from = -1;
    const char *arch = opts && opts->arch ? opts->arch : "sm_90a";
    int opt = opts ? opts->opt_level : 2;
    const tir_op *at = fop ? fop : op;
    const tir_module *mod = at->nout > 0 && at->out[0]->func ? at->out[0]->func->module : NULL;
    tir_dtype dt16;
    if (!mm_dtype(op, fop != NULL, &dt16) || arch_num(arch, NULL) < 80)
        return tir_diag_set(d, TIR_ERR_UNSUPPORTED, mod, at->loc,
                            "matmul_mma: needs a bf16/f16 matmul on sm_80 or newer (arch %s)", arch);
    mm *m = calloc(1, sizeof *m);
    if (!m) return tir_diag_set(d, TIR_ERR_OOM, mod, at->loc, "out of memory");
    if (cfg) m->c = *cfg;
    else pick_config_for(op, arch, fop != NULL, &m->c);
    char why[128];
    if (!tir_mma_config_valid(&m->c, why, sizeof why)) {
        free(m);
        return tir_diag_set(d, TIR_ERR_INVALID, mod, at->loc, "matmul_mma: bad tiling: %s", why);
    }
    if (m->c.tma && !tma_ok(op, arch, fop != NULL)) {
        free(m);
        return tir_diag_set(d, TIR_ERR_INVALID, mod, at->loc,
                            "matmul_mma: the TMA kernel needs sm_90a and operands whose rows are "
                            "a multiple of 8 elements");
    }
    if (m->c.wgmma && !wgmma_arch(arch)) {
        free(m);
        return tir_diag_set(d, TIR_ERR_INVALID, mod, at->loc,
                            "matmul_mma: wgmma needs sm_90a, not %s", arch);
    }
    m->dt = dt16;
    m->odt = op->out[0]->type.dtype;
    m->ia = 0, m->ib = 1, m->io = 2, m->nbuf = 3;
    if (fop) {
        m->rg = tir_op_region(fop);
        m->mmop = op;
        m->ia = mm_src(op, 0)->index;
        m->ib = mm_src(op, 1)->index;
        m->io = fop->nin;
        m->nbuf = fop->nin + 1;
        m->odt = m->rg->results[0]->type.dtype;
    }

    cg g;
    cg_init(&g, ctx, at, arch, opt, out, d);
    m->g = &g;
    snprintf(out->name, sizeof out->name, fop ? "tir_matmul_fused_%d" : "tir_matmul_mma_%d", id);
    if (g.st == TIR_OK) {
        if (m->c.tma) build_tma(m, op, out->name);
        else build(m, op, out->name);
    }
    tir_status s = cg_emit(&g, opt);
    cg_dispose(&g);
    free(m);
    if (s != TIR_OK) {
        tir_kernel_release(out);
        memset(out, 0, sizeof *out);
        out->alias_of = -1;
        out->init_from = -1;
    }
    return s;
}

tir_status tir_codegen_matmul_mma(tir_context *ctx, const tir_op *op, int id,
                                  const tir_codegen_options *opts, const tir_mma_config *cfg,
                                  tir_kernel *out, tir_diag *d) {
    if (!op) {
        memset(out, 0, sizeof *out);
        out->alias_of = -1;
        out->init_from = -1;
        return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "matmul_mma: no op");
    }
    return gen(ctx, op, NULL, id, opts, cfg, out, d);
}

tir_status tir_region_mma_config(const tir_op *fop, const char *arch, tir_mma_config *cfg,
                                 tir_diag *d) {
    char why[160];
    const tir_module *mod = fop && fop->nout > 0 && fop->out[0]->func ? fop->out[0]->func->module : NULL;
    const tir_op *mmop = fop ? region_matmul(fop, why, sizeof why) : NULL;
    if (!mmop)
        return tir_diag_set(d, TIR_ERR_UNSUPPORTED, mod, fop ? fop->loc : (tir_loc){0, 0},
                            "matmul region: %s", fop ? why : "no op");
    pick_config_for(mmop, arch, true, cfg);
    const tir_attr_value *sch = tir_op_attr(fop, "schedule");
    static const char *const ikeys[] = {"bm", "bn", "bk", "warps_m", "warps_n", "stages", "group_m"};
    int *ifields[] = {&cfg->bm, &cfg->bn, &cfg->bk, &cfg->warps_m, &cfg->warps_n, &cfg->stages,
                      &cfg->group_m};
    for (int i = 0; i < 7; i++) {
        const tir_attr_value *v = tir_dict_get(sch, ikeys[i]);
        if (v && v->kind == TIR_ATTR_INT) *ifields[i] = (int)v->u.i;
    }
    const tir_attr_value *wg = tir_dict_get(sch, "wgmma"), *tma = tir_dict_get(sch, "tma");
    const tir_attr_value *sk = tir_dict_get(sch, "split_k");
    if (sk && sk->kind == TIR_ATTR_INT && sk->u.i > 1)
        return tir_diag_set(d, TIR_ERR_UNSUPPORTED, mod, fop->loc,
                            "matmul region: split_k=%lld is not implemented", (long long)sk->u.i);
    if (wg && wg->kind == TIR_ATTR_BOOL) cfg->wgmma = wg->u.b;
    if (!wgmma_arch(arch)) cfg->wgmma = false;
    /* the TMA kernel where it applies, unless the schedule asks otherwise: it computes the
     * same tiles as the cp.async wgmma kernel with bk = 64, faster */
    cfg->tma = cfg->wgmma && cfg->bk == 64 && cfg->warps_m * cfg->warps_n <= 3 &&
               tma_ok(mmop, arch, true);
    if (tma && tma->kind == TIR_ATTR_BOOL) cfg->tma = tma->u.b && cfg->tma;
    if (!tir_mma_config_valid(cfg, why, sizeof why)) {
        /* a schedule written for another arch (wgmma tiles on sm_80): the picker's tiling */
        pick_config_for(mmop, arch, true, cfg);
    }
    return TIR_OK;
}

tir_status tir_codegen_matmul_region(tir_context *ctx, const tir_op *fop, int id,
                                     const tir_codegen_options *opts, tir_kernel *out, tir_diag *d) {
    memset(out, 0, sizeof *out);
    out->alias_of = -1;
    out->init_from = -1;
    const char *arch = opts && opts->arch ? opts->arch : "sm_90a";
    tir_mma_config cfg;
    tir_status s = tir_region_mma_config(fop, arch, &cfg, d);
    if (s != TIR_OK) return s;
    char why[160];
    return gen(ctx, region_matmul(fop, why, sizeof why), fop, id, opts, &cfg, out, d);
}
