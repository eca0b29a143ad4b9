/* kernel.c: the LLVM side of one kernel: the NVPTX target (initialised once per process), the
 * module and its kernel signature (buffers, then symbolic dims as i64), the helpers every
 * lowering builds with (thread ids, loops, barriers, shuffles, index maps), and the
 * verify -> optimise -> emit-PTX sequence. Every LLVM failure becomes TIR_ERR_LLVM with LLVM's
 * message; nothing here exits. */
#include <pthread.h>
#include <stdio.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "cg.h"

#define TRIPLE "nvptx64-nvidia-cuda"
/* LLVM's calling convention number for PTX kernels (CallingConv::PTX_Kernel). Since LLVM 20
 * this, not an nvvm.annotations "kernel" entry, is what makes a function a .entry. */
#define CC_PTX_KERNEL 71

/* ---------------------------------------------------------------- target */

static pthread_once_t target_once = PTHREAD_ONCE_INIT;
static char target_err[256];

static void target_init_once(void) {
    LLVMInitializeNVPTXTargetInfo();
    LLVMInitializeNVPTXTarget();
    LLVMInitializeNVPTXTargetMC();
    LLVMInitializeNVPTXAsmPrinter();
    LLVMTargetRef t;
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(TRIPLE, &t, &msg)) {
        snprintf(target_err, sizeof target_err, "no NVPTX target in this LLVM: %s",
                 msg ? msg : "?");
    }
    if (msg) LLVMDisposeMessage(msg);
}

bool cg_target_init(char *err, size_t errn) {
    pthread_once(&target_once, target_init_once);
    if (target_err[0]) {
        snprintf(err, errn, "%s", target_err);
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- lifecycle */

tir_status cg_fail(cg *g, tir_status s, const char *fmt, ...) {
    if (g->st != TIR_OK) return g->st;
    g->st = s;
    const tir_module *m = NULL;
    tir_loc loc = {0, 0};
    if (g->op) {
        loc = g->op->loc;
        if (g->op->nout > 0 && g->op->out[0]->func) m = g->op->out[0]->func->module;
    }
    va_list ap;
    va_start(ap, fmt);
    tir_diag_vset(g->d, s, m, loc, fmt, ap);
    va_end(ap);
    return s;
}

void cg_init(cg *g, tir_context *ctx, const tir_op *op, const char *arch, int opt_level,
             tir_kernel *k, tir_diag *d) {
    memset(g, 0, sizeof *g);
    g->ctx = ctx;
    g->op = op;
    g->k = k;
    g->d = d;
    g->C = LLVMContextCreate();
    g->M = LLVMModuleCreateWithNameInContext("tir", g->C);
    LLVMSetTarget(g->M, TRIPLE);
    g->B = LLVMCreateBuilderInContext(g->C);
    g->t_void = LLVMVoidTypeInContext(g->C);
    g->t_i1 = LLVMInt1TypeInContext(g->C);
    g->t_i8 = LLVMInt8TypeInContext(g->C);
    g->t_i16 = LLVMInt16TypeInContext(g->C);
    g->t_i32 = LLVMInt32TypeInContext(g->C);
    g->t_i64 = LLVMInt64TypeInContext(g->C);
    g->t_f16 = LLVMHalfTypeInContext(g->C);
    g->t_bf16 = LLVMBFloatTypeInContext(g->C);
    g->t_f32 = LLVMFloatTypeInContext(g->C);
    g->t_f64 = LLVMDoubleTypeInContext(g->C);
    g->t_gptr = LLVMPointerTypeInContext(g->C, 1);
    g->t_sptr = LLVMPointerTypeInContext(g->C, 3);

    char err[256];
    if (!cg_target_init(err, sizeof err)) {
        cg_fail(g, TIR_ERR_LLVM, "%s", err);
        return;
    }
    LLVMTargetRef t;
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(TRIPLE, &t, &msg)) {
        cg_fail(g, TIR_ERR_LLVM, "LLVM: %s", msg ? msg : "no NVPTX target");
        if (msg) LLVMDisposeMessage(msg);
        return;
    }
    if (msg) LLVMDisposeMessage(msg);
    LLVMCodeGenOptLevel lvl = opt_level <= 0   ? LLVMCodeGenLevelNone
                              : opt_level == 1 ? LLVMCodeGenLevelLess
                              : opt_level == 2 ? LLVMCodeGenLevelDefault
                                               : LLVMCodeGenLevelAggressive;
    g->tm = LLVMCreateTargetMachine(t, TRIPLE, arch, "", lvl, LLVMRelocDefault,
                                    LLVMCodeModelDefault);
    if (!g->tm) {
        cg_fail(g, TIR_ERR_LLVM, "LLVM could not create a target machine for %s", arch);
        return;
    }
    /* before any instruction is built: loads and stores take their alignment from it */
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(g->tm);
    LLVMSetModuleDataLayout(g->M, td);
    LLVMDisposeTargetData(td);
}

void cg_dispose(cg *g) {
    if (g->B) LLVMDisposeBuilder(g->B);
    if (g->M) LLVMDisposeModule(g->M);
    if (g->tm) LLVMDisposeTargetMachine(g->tm);
    if (g->C) LLVMContextDispose(g->C);
    free(g->buf);
    g->B = NULL;
    g->M = NULL;
    g->tm = NULL;
    g->C = NULL;
    g->buf = NULL;
}

void cg_use_dim(cg *g, const tir_dim *dim) {
    if (!dim || tir_dim_is_const(dim, NULL)) return;
    for (int i = 0; i < g->ndim; i++)
        if (g->dim[i] == dim) return;
    if (g->ndim == CG_MAX_DIMS) {
        cg_fail(g, TIR_ERR_UNSUPPORTED, "kernel needs more than %d symbolic sizes", CG_MAX_DIMS);
        return;
    }
    g->dim[g->ndim++] = dim;
}

void cg_use_type(cg *g, const tir_type *t) {
    for (int i = 0; i < t->rank; i++) cg_use_dim(g, t->dims[i]);
}

void cg_begin_kernel(cg *g, const char *name, int nbuf, int threads) {
    int np = nbuf + g->ndim;
    LLVMTypeRef *pt = malloc(sizeof *pt * (size_t)(np ? np : 1));
    g->buf = malloc(sizeof *g->buf * (size_t)(nbuf ? nbuf : 1));
    g->k->params = malloc(sizeof *g->k->params * (size_t)(np ? np : 1));
    if (!pt || !g->buf || !g->k->params) {
        free(pt);
        cg_fail(g, TIR_ERR_OOM, "out of memory");
        /* keep building into a throwaway function so that callers need no checks */
        nbuf = 0;
        np = 0;
        g->ndim = 0;
    }
    for (int i = 0; i < nbuf; i++) pt[i] = g->t_gptr;
    for (int i = 0; i < g->ndim; i++) pt[nbuf + i] = g->t_i64;
    LLVMTypeRef fty = LLVMFunctionType(g->t_void, pt, (unsigned)np, 0);
    free(pt);
    g->fn = LLVMAddFunction(g->M, name, fty);
    LLVMSetFunctionCallConv(g->fn, CC_PTX_KERNEL);
    char nt[16];
    snprintf(nt, sizeof nt, "%d", threads);
    LLVMAddAttributeAtIndex(g->fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(g->C, "nvvm.maxntid", 12, nt,
                                                      (unsigned)strlen(nt)));
    g->nbuf = nbuf;
    if (g->k->params) {
        for (int i = 0; i < nbuf; i++) {
            g->k->params[i] = (tir_kparam){.kind = TIR_KP_BUFFER, .index = i};
            g->buf[i] = LLVMGetParam(g->fn, (unsigned)i);
        }
        for (int i = 0; i < g->ndim; i++) {
            g->k->params[nbuf + i] = (tir_kparam){.kind = TIR_KP_DIM, .index = -1, .dim = g->dim[i]};
            g->dimv[i] = LLVMGetParam(g->fn, (unsigned)(nbuf + i));
        }
        g->k->nparams = np;
    }
    g->k->block[0] = threads;
    g->k->block[1] = 1;
    g->k->block[2] = 1;
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(g->C, g->fn, "entry");
    LLVMPositionBuilderAtEnd(g->B, entry);
}

tir_status cg_emit(cg *g, int opt_level) {
    if (g->st != TIR_OK) return g->st;
    char *msg = NULL;
    if (LLVMVerifyModule(g->M, LLVMReturnStatusAction, &msg)) {
        cg_fail(g, TIR_ERR_LLVM, "LLVM verifier: %s", msg ? msg : "?");
        if (msg) LLVMDisposeMessage(msg);
        return g->st;
    }
    if (msg) LLVMDisposeMessage(msg);
    msg = NULL;

    char pipeline[32];
    snprintf(pipeline, sizeof pipeline, "default<O%d>",
             opt_level < 0 ? 0 : opt_level > 3 ? 3 : opt_level);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMErrorRef e = LLVMRunPasses(g->M, pipeline, g->tm, po);
    LLVMDisposePassBuilderOptions(po);
    if (e) {
        char *em = LLVMGetErrorMessage(e);
        cg_fail(g, TIR_ERR_LLVM, "LLVM passes: %s", em ? em : "?");
        LLVMDisposeErrorMessage(em);
        return g->st;
    }

    LLVMMemoryBufferRef mb = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(g->tm, g->M, LLVMAssemblyFile, &msg, &mb)) {
        cg_fail(g, TIR_ERR_LLVM, "LLVM PTX emission: %s", msg ? msg : "?");
        if (msg) LLVMDisposeMessage(msg);
        return g->st;
    }
    if (msg) LLVMDisposeMessage(msg);
    size_t n = LLVMGetBufferSize(mb);
    char *ptx = malloc(n + 1);
    if (!ptx) {
        LLVMDisposeMemoryBuffer(mb);
        return cg_fail(g, TIR_ERR_OOM, "out of memory");
    }
    memcpy(ptx, LLVMGetBufferStart(mb), n);
    ptx[n] = 0;
    LLVMDisposeMemoryBuffer(mb);
    g->k->ptx = ptx;
    return TIR_OK;
}

/* ---------------------------------------------------------------- sizes */

LLVMValueRef cg_i64(cg *g, int64_t v) { return LLVMConstInt(g->t_i64, (unsigned long long)v, 1); }
LLVMValueRef cg_i32(cg *g, int32_t v) { return LLVMConstInt(g->t_i32, (unsigned long long)(int64_t)v, 1); }
LLVMValueRef cg_real(LLVMTypeRef t, double v) { return LLVMConstReal(t, v); }

LLVMValueRef cg_dimv(cg *g, const tir_dim *dim) {
    int64_t v;
    if (tir_dim_is_const(dim, &v)) return cg_i64(g, v);
    for (int i = 0; i < g->ndim; i++)
        if (g->dim[i] == dim) return g->dimv[i];
    cg_fail(g, TIR_ERR_INTERNAL, "codegen: size used but not declared as a kernel parameter");
    return cg_i64(g, 0);
}

LLVMValueRef cg_numel(cg *g, const tir_type *t) {
    LLVMValueRef n = cg_i64(g, 1);
    for (int i = 0; i < t->rank; i++) n = LLVMBuildMul(g->B, n, cg_dimv(g, t->dims[i]), "");
    return n;
}

const tir_dim *cg_numel_dim(cg *g, const tir_type *t) {
    const tir_dim *n = tir_dim_const(g->ctx, 1);
    for (int i = 0; i < t->rank && n; i++) n = tir_dim_mul(g->ctx, n, t->dims[i]);
    if (!n) {
        cg_fail(g, TIR_ERR_UNSUPPORTED, "tensor size overflows int64");
        return tir_dim_const(g->ctx, 1);
    }
    return n;
}

const tir_dim *cg_ceil_div(cg *g, const tir_dim *a, int64_t b) {
    int64_t v;
    if (tir_dim_is_const(a, &v)) return tir_dim_const(g->ctx, v / b + (v % b != 0));
    const tir_dim *s = tir_dim_add(g->ctx, a, tir_dim_const(g->ctx, b - 1));
    const tir_dim *q = s ? tir_dim_div(g->ctx, s, tir_dim_const(g->ctx, b)) : NULL;
    if (!q) {
        cg_fail(g, TIR_ERR_UNSUPPORTED, "launch size overflows int64");
        return tir_dim_const(g->ctx, 1);
    }
    return q;
}

/* Constant grids are capped (the loops are grid-stride); symbolic ones are left to the runtime,
 * which clamps them to the device's limit. */
#define CG_MAX_CONST_GRID (1 << 20)

void cg_launch_1d(cg *g, const tir_dim *n) {
    const tir_dim *gx = cg_ceil_div(g, n, CG_BLOCK);
    int64_t v;
    if (tir_dim_is_const(gx, &v) && v > CG_MAX_CONST_GRID) gx = tir_dim_const(g->ctx, CG_MAX_CONST_GRID);
    g->k->grid[0] = gx;
    g->k->grid[1] = tir_dim_const(g->ctx, 1);
    g->k->grid[2] = tir_dim_const(g->ctx, 1);
}

/* ---------------------------------------------------------------- instructions */

LLVMValueRef cg_intr(cg *g, const char *name, LLVMTypeRef rty, int noty, LLVMTypeRef *otys,
                     int nargs, LLVMValueRef *args) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    if (!id) {
        cg_fail(g, TIR_ERR_LLVM, "LLVM has no intrinsic %s", name);
        return LLVMGetPoison(rty);
    }
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(g->M, id, otys, (size_t)noty);
    LLVMTypeRef fty = LLVMIntrinsicGetType(g->C, id, otys, (size_t)noty);
    return LLVMBuildCall2(g->B, fty, f, args, (unsigned)nargs, "");
}

LLVMValueRef cg_intr1(cg *g, const char *name, LLVMValueRef a) {
    LLVMTypeRef t = LLVMTypeOf(a);
    return cg_intr(g, name, t, 1, &t, 1, &a);
}

LLVMValueRef cg_intr2(cg *g, const char *name, LLVMValueRef a, LLVMValueRef b) {
    LLVMTypeRef t = LLVMTypeOf(a);
    LLVMValueRef args[2] = {a, b};
    return cg_intr(g, name, t, 1, &t, 2, args);
}

LLVMValueRef cg_sreg(cg *g, const char *reg) {
    char name[64];
    snprintf(name, sizeof name, "llvm.nvvm.read.ptx.sreg.%s", reg);
    LLVMValueRef v = cg_intr(g, name, g->t_i32, 0, NULL, 0, NULL);
    return LLVMBuildZExt(g->B, v, g->t_i64, "");
}

void cg_barrier(cg *g) {
    /* LLVM 22 spells bar.sync 0 (the old llvm.nvvm.barrier0) this way */
    LLVMValueRef zero = cg_i32(g, 0);
    cg_intr(g, "llvm.nvvm.barrier.cta.sync.aligned.all", g->t_void, 0, NULL, 1, &zero);
}

static LLVMValueRef shfl32(cg *g, LLVMValueRef v, int mask) {
    bool f = LLVMTypeOf(v) == g->t_f32;
    LLVMValueRef args[4] = {cg_i32(g, -1), v, cg_i32(g, mask), cg_i32(g, 31)};
    return cg_intr(g, f ? "llvm.nvvm.shfl.sync.bfly.f32" : "llvm.nvvm.shfl.sync.bfly.i32",
                   f ? g->t_f32 : g->t_i32, 0, NULL, 4, args);
}

LLVMValueRef cg_shfl_xor(cg *g, LLVMValueRef v, int mask) {
    LLVMTypeRef t = LLVMTypeOf(v);
    if (t == g->t_f32 || t == g->t_i32) return shfl32(g, v, mask);
    if (t == g->t_f64 || t == g->t_i64) {
        LLVMValueRef x = t == g->t_f64 ? LLVMBuildBitCast(g->B, v, g->t_i64, "") : v;
        LLVMValueRef lo = LLVMBuildTrunc(g->B, x, g->t_i32, "");
        LLVMValueRef hi = LLVMBuildTrunc(g->B, LLVMBuildLShr(g->B, x, cg_i64(g, 32), ""), g->t_i32, "");
        lo = LLVMBuildZExt(g->B, shfl32(g, lo, mask), g->t_i64, "");
        hi = LLVMBuildZExt(g->B, shfl32(g, hi, mask), g->t_i64, "");
        LLVMValueRef r = LLVMBuildOr(g->B, lo, LLVMBuildShl(g->B, hi, cg_i64(g, 32), ""), "");
        return t == g->t_f64 ? LLVMBuildBitCast(g->B, r, g->t_f64, "") : r;
    }
    if (LLVMGetTypeKind(t) == LLVMIntegerTypeKind && LLVMGetIntTypeWidth(t) == 128) {
        LLVMValueRef lo = cg_shfl_xor(g, LLVMBuildTrunc(g->B, v, g->t_i64, ""), mask);
        LLVMValueRef hi = LLVMBuildTrunc(g->B, LLVMBuildLShr(g->B, v, LLVMConstInt(t, 64, 0), ""), g->t_i64, "");
        hi = cg_shfl_xor(g, hi, mask);
        return LLVMBuildOr(g->B, LLVMBuildZExt(g->B, lo, t, ""),
                           LLVMBuildShl(g->B, LLVMBuildZExt(g->B, hi, t, ""), LLVMConstInt(t, 64, 0), ""), "");
    }
    /* i1, i8, i16 */
    LLVMValueRef w = LLVMBuildZExt(g->B, v, g->t_i32, "");
    return LLVMBuildTrunc(g->B, shfl32(g, w, mask), t, "");
}

LLVMValueRef cg_shared_array(cg *g, const char *name, LLVMTypeRef t, int n) {
    LLVMTypeRef at = LLVMArrayType2(t, (uint64_t)n);
    /* named after the kernel, so that PTX of several kernels can be pasted into one file */
    size_t len = 0;
    const char *fname = g->fn ? LLVMGetValueName2(g->fn, &len) : "k";
    char full[128];
    snprintf(full, sizeof full, "%.*s_%s", (int)len, fname, name);
    LLVMValueRef v = LLVMAddGlobalInAddressSpace(g->M, at, full, 3);
    LLVMSetInitializer(v, LLVMGetUndef(at));
    LLVMSetLinkage(v, LLVMInternalLinkage);
    LLVMSetAlignment(v, 16);
    return v;
}

LLVMValueRef cg_gep(cg *g, LLVMTypeRef elt, LLVMValueRef base, LLVMValueRef idx) {
    return LLVMBuildInBoundsGEP2(g->B, elt, base, &idx, 1, "");
}

LLVMValueRef cg_umin(cg *g, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(g->B, LLVMBuildICmp(g->B, LLVMIntULT, a, b, ""), a, b, "");
}
LLVMValueRef cg_smax(cg *g, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(g->B, LLVMBuildICmp(g->B, LLVMIntSGT, a, b, ""), a, b, "");
}
LLVMValueRef cg_smin(cg *g, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(g->B, LLVMBuildICmp(g->B, LLVMIntSLT, a, b, ""), a, b, "");
}

/* ---------------------------------------------------------------- control flow */

LLVMValueRef cg_for_begin(cg *g, cg_loop *l, LLVMValueRef start, LLVMValueRef end,
                          LLVMValueRef step) {
    LLVMBasicBlockRef cur = LLVMGetInsertBlock(g->B);
    l->body = LLVMAppendBasicBlockInContext(g->C, g->fn, "loop");
    l->exit = LLVMAppendBasicBlockInContext(g->C, g->fn, "done");
    LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntULT, start, end, ""), l->body, l->exit);
    LLVMPositionBuilderAtEnd(g->B, l->body);
    l->i = LLVMBuildPhi(g->B, g->t_i64, "i");
    LLVMAddIncoming(l->i, &start, &cur, 1);
    l->end = end;
    l->step = step;
    return l->i;
}

void cg_for_end(cg *g, cg_loop *l) {
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(g->B);
    LLVMValueRef next = LLVMBuildAdd(g->B, l->i, l->step, "");
    LLVMAddIncoming(l->i, &next, &latch, 1);
    LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntULT, next, l->end, ""), l->body, l->exit);
    LLVMPositionBuilderAtEnd(g->B, l->exit);
}

LLVMValueRef cg_grid_loop_begin(cg *g, cg_loop *l, LLVMValueRef n) {
    LLVMValueRef ntid = cg_sreg(g, "ntid.x");
    LLVMValueRef start = LLVMBuildAdd(g->B, LLVMBuildMul(g->B, cg_sreg(g, "ctaid.x"), ntid, ""),
                                      cg_sreg(g, "tid.x"), "");
    LLVMValueRef step = LLVMBuildMul(g->B, cg_sreg(g, "nctaid.x"), ntid, "");
    return cg_for_begin(g, l, start, n, step);
}

void cg_if_begin(cg *g, cg_if *c, LLVMValueRef cond) {
    c->then = LLVMAppendBasicBlockInContext(g->C, g->fn, "then");
    c->done = LLVMAppendBasicBlockInContext(g->C, g->fn, "endif");
    LLVMBuildCondBr(g->B, cond, c->then, c->done);
    LLVMPositionBuilderAtEnd(g->B, c->then);
}

void cg_if_end(cg *g, cg_if *c) {
    LLVMBuildBr(g->B, c->done);
    LLVMPositionBuilderAtEnd(g->B, c->done);
}

/* ---------------------------------------------------------------- index maps */

void cg_unravel(cg *g, LLVMValueRef i, const tir_type *t, LLVMValueRef *coords) {
    for (int d = t->rank - 1; d >= 0; d--) {
        int64_t c;
        if (tir_dim_is_const(t->dims[d], &c) && c == 1) {
            coords[d] = cg_i64(g, 0);
            continue;
        }
        if (d == 0) {
            coords[d] = i;
            break;
        }
        LLVMValueRef n = cg_dimv(g, t->dims[d]);
        coords[d] = LLVMBuildURem(g->B, i, n, "");
        i = LLVMBuildUDiv(g->B, i, n, "");
    }
}

LLVMValueRef cg_bcast_offset(cg *g, const tir_type *t, int out_rank, LLVMValueRef *coords) {
    LLVMValueRef off = cg_i64(g, 0), stride = cg_i64(g, 1);
    for (int j = t->rank - 1; j >= 0; j--) {
        int64_t c;
        if (tir_dim_is_const(t->dims[j], &c) && c == 1) continue;
        int axis = j + out_rank - t->rank;
        off = LLVMBuildAdd(g->B, off, LLVMBuildMul(g->B, coords[axis], stride, ""), "");
        if (j > 0) stride = LLVMBuildMul(g->B, stride, cg_dimv(g, t->dims[j]), "");
    }
    return off;
}

LLVMValueRef cg_offset(cg *g, const tir_type *t, LLVMValueRef *coords) {
    return cg_bcast_offset(g, t, t->rank, coords);
}


