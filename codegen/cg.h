/* cg.h: codegen's private toolkit, shared by the files of codegen/ and nothing else.
 *
 * One tir_codegen_op call owns one `cg`: a fresh LLVM context, a module for nvptx64-nvidia-cuda
 * holding one kernel, and the kernel's description being filled in (codegen.h's tir_kernel).
 * A lowering (elementwise.c, reduce.c, ...) goes through three steps:
 *   1. cg_use_type/cg_use_dim: name every tensor shape it will index with; each distinct
 *      symbolic dim becomes one i64 kernel parameter (constant dims are baked into the code);
 *   2. cg_begin_kernel: creates the function (buffers, then dims) and its entry block;
 *   3. builds the body with the helpers below, sets grid/block in g->k, and returns.
 * tir_codegen_op then verifies, optimises and emits PTX (kernel.c).
 *
 * Values in kernels: every element is loaded in its dtype's storage type and widened to its
 * compute type (cg_ctype): f32 for f32/f16/bf16/f8, f64 for f64, i1 for bool and the storage
 * integer for ints. Indices are i64 throughout (correctness first: no 2^31 limits).
 *
 * Errors: the first failure is recorded in g->st / g->d; builders keep going with poison values
 * so that lowerings need no error plumbing, and tir_codegen_op reports the recorded error.
 */
#ifndef TIR_CG_H
#define TIR_CG_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "codegen.h"

#define CG_MAX_DIMS 64
#define CG_BLOCK 256 /* threads per block of the 1-D kernels */

typedef struct cg {
    LLVMContextRef C;
    LLVMModuleRef M;
    LLVMBuilderRef B;
    LLVMTargetMachineRef tm;
    LLVMValueRef fn;
    tir_context *ctx;
    const tir_op *op;
    tir_kernel *k;
    tir_diag *d;
    tir_status st;
    /* types */
    LLVMTypeRef t_void, t_i1, t_i8, t_i16, t_i32, t_i64, t_f16, t_bf16, t_f32, t_f64;
    LLVMTypeRef t_gptr; /* ptr addrspace(1): global memory */
    LLVMTypeRef t_sptr; /* ptr addrspace(3): shared memory */
    /* kernel parameters */
    int nbuf;
    LLVMValueRef *buf;
    int ndim;
    const tir_dim *dim[CG_MAX_DIMS];
    LLVMValueRef dimv[CG_MAX_DIMS];
} cg;

/* ---- kernel.c: the module, the kernel's signature, emission ---- */
/* arch as in tir_codegen_options ("sm_90a"); opt_level 0..3 */
void cg_init(cg *g, tir_context *ctx, const tir_op *op, const char *arch, int opt_level,
             tir_kernel *k, tir_diag *d);
void cg_dispose(cg *g);
/* records the first error; returns it */
tir_status cg_fail(cg *g, tir_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void cg_use_dim(cg *g, const tir_dim *dim);
void cg_use_type(cg *g, const tir_type *t);
/* Creates the kernel `name` with nbuf global pointers then the used dims, for blocks of
 * `threads` (1-D); enters its body. */
void cg_begin_kernel(cg *g, const char *name, int nbuf, int threads);
/* PTX for the finished module into g->k->ptx (verify, passes, emit) */
tir_status cg_emit(cg *g, int opt_level);
/* the NVPTX target, initialised once per process */
bool cg_target_init(char *err, size_t errn);

/* ---- kernel.c: sizes ---- */
LLVMValueRef cg_dimv(cg *g, const tir_dim *dim);              /* i64 */
LLVMValueRef cg_numel(cg *g, const tir_type *t);              /* i64 product of dims */
const tir_dim *cg_numel_dim(cg *g, const tir_type *t);        /* the same as a tir_dim */
const tir_dim *cg_ceil_div(cg *g, const tir_dim *a, int64_t b);
/* A 1-D launch of CG_BLOCK threads over n elements (grid-stride loops cope with any grid). */
void cg_launch_1d(cg *g, const tir_dim *n);

/* ---- kernel.c: instructions ---- */
LLVMValueRef cg_i64(cg *g, int64_t v);
LLVMValueRef cg_i32(cg *g, int32_t v);
LLVMValueRef cg_real(LLVMTypeRef t, double v);
/* call an intrinsic; overloaded ones take their overload types in otys */
LLVMValueRef cg_intr(cg *g, const char *name, LLVMTypeRef rty, int noty, LLVMTypeRef *otys,
                     int nargs, LLVMValueRef *args);
LLVMValueRef cg_intr1(cg *g, const char *name, LLVMValueRef a);             /* overloaded on a */
LLVMValueRef cg_intr2(cg *g, const char *name, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_sreg(cg *g, const char *reg);  /* "tid.x", "ntid.x", "ctaid.x", ... as i64 */
void cg_barrier(cg *g);                        /* bar.sync 0 */
/* lane value from lane ^ mask in the warp (all 32 lanes active); any 32/64-bit scalar */
LLVMValueRef cg_shfl_xor(cg *g, LLVMValueRef v, int mask);
/* an internal shared-memory array of n elements of t */
LLVMValueRef cg_shared_array(cg *g, const char *name, LLVMTypeRef t, int n);
LLVMValueRef cg_gep(cg *g, LLVMTypeRef elt, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef cg_umin(cg *g, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_smax(cg *g, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_smin(cg *g, LLVMValueRef a, LLVMValueRef b);

/* for (i = start; i < end; i += step) (unsigned compare) */
typedef struct cg_loop {
    LLVMBasicBlockRef body, exit;
    LLVMValueRef i, end, step;
} cg_loop;
LLVMValueRef cg_for_begin(cg *g, cg_loop *l, LLVMValueRef start, LLVMValueRef end,
                          LLVMValueRef step);
void cg_for_end(cg *g, cg_loop *l);
/* the grid-stride loop over [0, n): i = global thread id, step = all threads of the grid */
LLVMValueRef cg_grid_loop_begin(cg *g, cg_loop *l, LLVMValueRef n);
/* if (cond) { ... } */
typedef struct cg_if {
    LLVMBasicBlockRef then, done;
} cg_if;
void cg_if_begin(cg *g, cg_if *c, LLVMValueRef cond);
void cg_if_end(cg *g, cg_if *c);

/* ---- kernel.c: index maps ----
 * coords of flat index i (row-major) over dims of t; coords[0..rank) */
void cg_unravel(cg *g, LLVMValueRef i, const tir_type *t, LLVMValueRef *coords);
/* the offset in `t` of the element at `coords` of an output of rank `out_rank` that t
 * broadcasts to (NumPy: t aligns right; a constant-1 dim of t contributes nothing) */
LLVMValueRef cg_bcast_offset(cg *g, const tir_type *t, int out_rank, LLVMValueRef *coords);
/* offset of coords (one per dim of t) in t, row-major */
LLVMValueRef cg_offset(cg *g, const tir_type *t, LLVMValueRef *coords);

/* ---- convert.c: dtypes in kernels ---- */
LLVMTypeRef cg_stype(cg *g, tir_dtype t); /* storage: f16 half, bf16 i16, f8/bool/u8 i8, ... */
LLVMTypeRef cg_ctype(cg *g, tir_dtype t); /* compute: see above */
LLVMValueRef cg_load(cg *g, tir_dtype t, LLVMValueRef base, LLVMValueRef idx);  /* storage */
void cg_store(cg *g, tir_dtype t, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef sv);
LLVMValueRef cg_widen(cg *g, tir_dtype t, LLVMValueRef sv);   /* storage -> compute (exact) */
/* compute value of dtype `from` -> storage value of dtype `to`, with the interpreter's
 * rounding (tir_dtype_round): RNE for floats (f8 saturating), ints truncate and saturate,
 * NaN -> 0; bool is v != 0 */
LLVMValueRef cg_cast(cg *g, tir_dtype from, LLVMValueRef cv, tir_dtype to);
/* compute value of dtype t (possibly wider than t holds: f32 for bf16) -> storage of t */
LLVMValueRef cg_narrow(cg *g, tir_dtype t, LLVMValueRef cv);
LLVMValueRef cg_load_c(cg *g, tir_dtype t, LLVMValueRef base, LLVMValueRef idx);

/* ---- member.c: one elementwise member in registers (fused regions, matmul epilogues) ----
 * f32 -> bf16 storage bits by the hardware's cvt.rn.bf16.f32 (other dtypes: cg_narrow) */
LLVMValueRef cg_narrow_hw(cg *g, tir_dtype dt, LLVMValueRef cv);
/* an f32/f64 result -> the compute value of dt, rounded as the interpreter rounds */
LLVMValueRef cg_round_to(cg *g, tir_dtype dt, LLVMValueRef r);
/* the constant v of dtype dt as a compute value, rounded to dt */
LLVMValueRef cg_const_of(cg *g, tir_dtype dt, double v);
/* e^x in f32 by ex2.approx (about 2^-21 relative): for results rounded to 16 bits */
LLVMValueRef cg_fast_exp(cg *g, LLVMValueRef x);
/* elementwise op `op` (unary, binary, where, cast, compare, logic) on its operands' compute
 * values -> its result's; cg_fail for ops it has no lowering for */
LLVMValueRef cg_member(cg *g, const tir_op *op, LLVMValueRef *a);
/* the same; approx (codegen/fused_eval.h, fe_approx_set): 0 exact; 1 an f32 result may take
 * the MUFU forms of exp, sigmoid, silu and division (its uses tolerate 2^-21 relative error);
 * 2 as 1, and exp may be the bare ex2 (every use ends in a 16-bit rounding) */
LLVMValueRef cg_member_approx(cg *g, const tir_op *op, LLVMValueRef *a, int approx);
LLVMValueRef cg_is_nan(cg *g, LLVMValueRef x);
/* float rounding helpers, exposed for tests of the math */
LLVMValueRef cg_f32_to_bf16(cg *g, LLVMValueRef f);     /* i16 bits, RNE, NaN kept */
LLVMValueRef cg_f64_to_f32_odd(cg *g, LLVMValueRef d);  /* round to odd */
LLVMValueRef cg_f32_to_f8(cg *g, tir_dtype t, LLVMValueRef f); /* i8 bits, RNE, saturating */
LLVMValueRef cg_f8_to_f32(cg *g, tir_dtype t, LLVMValueRef b);

/* ---- math.c: f32/f64 elementary functions (no libdevice: polynomials with range reduction);
 * each works on float or double x and returns the same type ---- */
LLVMValueRef cgm_exp(cg *g, LLVMValueRef x);
LLVMValueRef cgm_log(cg *g, LLVMValueRef x);
LLVMValueRef cgm_tanh(cg *g, LLVMValueRef x);
LLVMValueRef cgm_sin(cg *g, LLVMValueRef x);
LLVMValueRef cgm_cos(cg *g, LLVMValueRef x);
LLVMValueRef cgm_erf1p(cg *g, LLVMValueRef x); /* 1 + erf(x), accurate for x < 0 too */
LLVMValueRef cgm_pow(cg *g, LLVMValueRef x, LLVMValueRef y);

/* ---- elementwise.c: one elementwise op on compute values, shared with fused.c's regions.
 * Floats in f32 (f64 for f64), not yet rounded to the result dtype; ints in i64, saturating;
 * NULL when the op has no lowering for that kind of dtype. */
LLVMValueRef cg_float_op(cg *g, const tir_op *op, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_int_op(cg *g, tir_opcode code, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_to_i64(cg *g, tir_dtype t, LLVMValueRef cv); /* int compute value -> i64 */
LLVMValueRef cg_compare(cg *g, tir_opcode code, tir_dtype t, LLVMValueRef a, LLVMValueRef b); /* i1 */

/* ---- the lowerings: each builds its kernel in g (or sets alias_of) ---- */
tir_status cg_lower_elementwise(cg *g, const char *name);
tir_status cg_lower_reduce(cg *g, const char *name);
tir_status cg_lower_movement(cg *g, const char *name);
tir_status cg_lower_index(cg *g, const char *name);
tir_status cg_lower_creation(cg *g, const char *name);
tir_status cg_lower_matmul(cg *g, const char *name);

#endif
