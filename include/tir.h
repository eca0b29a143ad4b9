/* tir.h: the one public header of tir, a tensor JIT compiler.
 *
 * A runnable example (examples/host_interp.c builds it): parse a .tir program, run it on the
 * reference interpreter, print the result.
 *
 *     #include <stdio.h>
 *     #include "tir.h"
 *     int main(void) {
 *         const char *src =
 *             "func @axpy(%a: f32[], %x: f32[N], %y: f32[N]) -> f32[N] {\n"
 *             "  %r = add(mul(%a, %x), %y)\n"
 *             "  return %r\n"
 *             "}\n";
 *         tir_context *ctx = tir_context_create();
 *         tir_module *m = NULL;
 *         tir_diag d;
 *         if (tir_module_parse(ctx, src, "axpy.tir", &m, &d) != TIR_OK) {
 *             tir_diag_print(&d, stderr);
 *             return 1;
 *         }
 *         int64_t n = 4;
 *         tir_tensor *a = tir_tensor_new(TIR_F32, 0, NULL);
 *         tir_tensor *x = tir_tensor_new(TIR_F32, 1, &n), *y = tir_tensor_new(TIR_F32, 1, &n);
 *         *(float *)tir_tensor_data(a) = 2.0f;
 *         for (int i = 0; i < 4; i++) {
 *             ((float *)tir_tensor_data(x))[i] = (float)i;
 *             ((float *)tir_tensor_data(y))[i] = 1.0f;
 *         }
 *         tir_tensor *args[] = {a, x, y}, *out[1] = {NULL};
 *         if (tir_interpret(m, "axpy", 3, args, 1, out, &d) != TIR_OK) {
 *             tir_diag_print(&d, stderr);
 *             return 1;
 *         }
 *         for (int i = 0; i < 4; i++) printf("%g\n", ((float *)tir_tensor_data(out[0]))[i]);
 *         tir_tensor_free(out[0]); tir_tensor_free(a); tir_tensor_free(x); tir_tensor_free(y);
 *         tir_module_free(m);
 *         tir_context_destroy(ctx);
 *         return 0;
 *     }
 *
 * Conventions: every function that can fail returns tir_status and, when given a tir_diag,
 * fills it with a message and, where there is source text, file:line:col and the source line.
 * Nothing in the library exits or aborts on bad input. Objects returned to the caller are
 * freed with their *_free / *_destroy function; tir_module_print's string with tir_free.
 */
#ifndef TIR_H
#define TIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status and diagnostics ---- */

typedef enum tir_status {
    TIR_OK = 0,
    TIR_ERR_PARSE,       /* malformed .tir text */
    TIR_ERR_TYPE,        /* ill-typed program: shapes, dtypes, arity, attributes */
    TIR_ERR_INVALID,     /* bad argument to an API call (wrong shape or dtype of a tensor, ...) */
    TIR_ERR_IO,          /* file could not be read or written, bad .npy */
    TIR_ERR_NO_DRIVER,   /* no CUDA driver on this machine */
    TIR_ERR_CUDA,        /* a CUDA driver / cuBLAS / NCCL call failed */
    TIR_ERR_LLVM,        /* LLVM failed to verify or emit */
    TIR_ERR_OOM,         /* out of host or device memory */
    TIR_ERR_UNSUPPORTED, /* valid input that this build cannot handle yet */
    TIR_ERR_INTERNAL     /* a bug in tir */
} tir_status;

typedef struct tir_diag {
    tir_status status;
    char file[256];         /* source file name, "" when none */
    int line, col;          /* 1-based; 0 when there is no source location */
    char msg[1024];
    char source_line[256];  /* the offending source line, "" when unknown */
} tir_diag;

const char *tir_status_name(tir_status s);
/* file:line:col: error: msg, then the source line and a caret under col. */
void tir_diag_print(const tir_diag *d, FILE *out);
void tir_free(void *p);

/* ---- dtypes ---- */

typedef enum tir_dtype {
    TIR_F64, TIR_F32, TIR_F16, TIR_BF16, TIR_F8E4M3, TIR_F8E5M2,
    TIR_I64, TIR_I32, TIR_I8, TIR_U8, TIR_BOOL,
    TIR_DTYPE_COUNT
} tir_dtype;

const char *tir_dtype_name(tir_dtype t);  /* "bf16" */
size_t tir_dtype_size(tir_dtype t);       /* bytes per element: bool and f8 are 1 */

#define TIR_MAX_RANK 8

/* ---- host tensors: dense, row-major, in the dtype's storage format (bf16 as its 16 bits) ---- */

typedef struct tir_tensor tir_tensor;

tir_tensor *tir_tensor_new(tir_dtype dtype, int rank, const int64_t *dims); /* NULL on bad args/OOM */
void tir_tensor_free(tir_tensor *t);
tir_dtype tir_tensor_dtype(const tir_tensor *t);
int tir_tensor_rank(const tir_tensor *t);
int64_t tir_tensor_dim(const tir_tensor *t, int i);
int64_t tir_tensor_numel(const tir_tensor *t);
size_t tir_tensor_nbytes(const tir_tensor *t);
void *tir_tensor_data(tir_tensor *t);
/* element i converted to / from double (rounding to the dtype on store) */
double tir_tensor_get(const tir_tensor *t, int64_t i);
void tir_tensor_set(tir_tensor *t, int64_t i, double v);
tir_status tir_tensor_load_npy(const char *path, tir_tensor **out, tir_diag *d);
tir_status tir_tensor_save_npy(const tir_tensor *t, const char *path, tir_diag *d);

/* ---- context and modules ---- */

typedef struct tir_context tir_context;
typedef struct tir_module tir_module;

tir_context *tir_context_create(void);
void tir_context_destroy(tir_context *ctx); /* modules of the context must be freed first */

/* Parse and verify .tir text. filename is used in diagnostics. */
tir_status tir_module_parse(tir_context *ctx, const char *src, const char *filename,
                            tir_module **out, tir_diag *d);
tir_status tir_module_parse_file(tir_context *ctx, const char *path, tir_module **out, tir_diag *d);
tir_module *tir_module_new(tir_context *ctx);
void tir_module_free(tir_module *m);
tir_status tir_module_verify(tir_module *m, tir_diag *d);
/* Canonical, re-parsable .tir text; free with tir_free. NULL on OOM. */
char *tir_module_print(const tir_module *m);

int tir_module_num_funcs(const tir_module *m);
const char *tir_module_func_name(const tir_module *m, int i);
/* -1 when the function does not exist */
int tir_func_num_params(const tir_module *m, const char *func);
int tir_func_num_results(const tir_module *m, const char *func);

/* ---- building IR from host code ----
 * Every builder call either returns a value or records the first error in the builder and
 * returns NULL; later calls given NULL operands return NULL too, so a whole function can be built
 * and checked once at tir_builder_finish. Dims are given as text ("B*T", "4096"). */

typedef struct tir_builder tir_builder;
typedef struct tir_value tir_value;

typedef enum tir_attr_kind {
    TIR_ATTR_INT, TIR_ATTR_FLOAT, TIR_ATTR_BOOL, TIR_ATTR_STR, TIR_ATTR_DTYPE,
    TIR_ATTR_INTS, TIR_ATTR_SHAPE
} tir_attr_kind;

/* An attribute as given to the builder. For TIR_ATTR_SHAPE, dims are text. */
typedef struct tir_attr {
    const char *name;
    tir_attr_kind kind;
    union {
        int64_t i;
        double f;
        bool b;
        const char *s;
        tir_dtype dtype;
        struct { int n; const int64_t *v; } ints;
        struct { int n; const char *const *v; } shape;
    } u;
} tir_attr;

tir_builder *tir_builder_begin(tir_module *m, const char *func_name);
tir_value *tir_build_param(tir_builder *b, const char *name, tir_dtype dtype, int rank,
                           const char *const *dims);
/* Any op of the op table by name ("add", "matmul", "rmsnorm", ...). Ops with several results
 * (split) return the first; use tir_build_op_n for all of them. */
tir_value *tir_build_op(tir_builder *b, const char *op, int nin, tir_value *const *in,
                        int nattrs, const tir_attr *attrs);
int tir_build_op_n(tir_builder *b, const char *op, int nin, tir_value *const *in,
                   int nattrs, const tir_attr *attrs, int max_out, tir_value **out);
tir_value *tir_build_call(tir_builder *b, const char *callee, int nin, tir_value *const *in);
/* A rank-0 constant of the given dtype (what a literal operand in .tir text becomes). */
tir_value *tir_build_const(tir_builder *b, double v, tir_dtype dtype);
/* Names a value so that it prints as %name. */
void tir_value_set_name(tir_value *v, const char *name);
/* Ends the function with these results and verifies it; frees the builder either way. */
tir_status tir_builder_finish(tir_builder *b, int nres, tir_value *const *res, tir_diag *d);
/* func @name = value_and_grad(@of, wrt=[...]) as a definition, like the .tir form. */
tir_status tir_define_value_and_grad(tir_module *m, const char *name, const char *of,
                                     int nwrt, const char *const *wrt, tir_diag *d);
/* tir_define_value_and_grad, then builds that function's body at once (reverse mode), so it
 * runs and prints as an ordinary function returning (loss, gradients in wrt order). */
tir_status tir_value_and_grad(tir_module *m, const char *name, const char *of, int nwrt,
                              const char *const *wrt, tir_diag *d);

/* ---- the reference interpreter (the oracle) ----
 * Runs func on host tensors. Symbols are bound from the arguments' shapes. results[0..nres) are
 * set to new tensors the caller frees; nres must equal the function's result count. */
tir_status tir_interpret(tir_module *m, const char *func, int nargs, tir_tensor *const *args,
                         int nres, tir_tensor **results, tir_diag *d);

/* ==== GPU: compile and run (compiler/compile.c, runtime/) =====================================
 * tir_compile runs the IR pipeline on the module (in place: inlining, autodiff, decomposition and
 * simplification rewrite it, keeping its meaning) and lowers every op of the function to a PTX
 * kernel. It needs no GPU; kernels load onto the device at the first run. One program serves every
 * binding of its symbols: each run binds them from the arguments' shapes.
 *
 *     tir_options o; tir_options_init(&o);
 *     tir_program *p;
 *     if (tir_compile(m, "rmsnorm", &o, &p, &d) != TIR_OK) ...
 *     tir_tensor *out[1];
 *     if (tir_program_run(p, 2, args, 1, out, &d) != TIR_OK) ...   // TIR_ERR_NO_DRIVER without a GPU
 *     tir_program_free(p);
 *
 * Lifetime: programs, streams and device tensors belong to the context of the module they came
 * from and must be freed before tir_context_destroy. Calls on one context are not thread-safe.
 * The device is device 0, or $TIR_DEVICE; $TIR_CUDA_LIB names the driver library.
 * TIR_DUMP=ptx writes every kernel's PTX as <kernel>.ptx to $TIR_DUMP_DIR (stderr when unset). */

/* who executes a matmul: see tir_options.matmul */
typedef enum tir_matmul_exec {
    TIR_MATMUL_AUTO = 0,
    TIR_MATMUL_TIR,
    TIR_MATMUL_CUBLAS,
} tir_matmul_exec;

typedef struct tir_options {
    const char *arch; /* PTX target, "sm_90a" when NULL */
    int opt_level;    /* LLVM optimisation level 0..3 (default 2) */
    bool verify;      /* verify the IR after the pipeline as well (default true) */
    bool poison;      /* fill every output buffer with 0xFF bytes before each run (NaN for floats),
                         so unwritten elements show; also on with $TIR_DEBUG=1 or debug builds */
    tir_matmul_exec matmul; /* who runs each matmul (compiler/exec_matmul.c): TIR_MATMUL_AUTO
                               (default: by a model of speed, per binding), TIR_MATMUL_TIR (tir's
                               own kernel), TIR_MATMUL_CUBLAS (cuBLASLt wherever it can) */
    bool allow_tf32;  /* f32 matmuls on cuBLASLt may use TF32 tensor cores (default false: full
                         f32, within the f32 tolerance) */
    bool donate_args; /* tir_program_run_device may overwrite its arguments' buffers once they are
                         dead (a result written in place of a dead argument, as Liger writes the
                         logits gradient into the logits, with no second logits-sized buffer);
                         a result written in place of an argument takes that buffer over and the
                         argument tensor is left empty (a later use of it is an error). Arguments
                         passed twice or returned are never overwritten. Host runs copy their
                         arguments into the run's memory, which they may always reuse. */
} tir_options;
void tir_options_init(tir_options *o);

typedef struct tir_program tir_program;

tir_status tir_compile(tir_module *m, const char *func, const tir_options *opts,
                       tir_program **out, tir_diag *d);
void tir_program_free(tir_program *p);
int tir_program_num_kernels(const tir_program *p);
const char *tir_program_kernel_name(const tir_program *p, int i);
const char *tir_program_kernel_op(const tir_program *p, int i); /* the op it computes: "add" */
/* NULL when the kernel needs no code (a reshape that aliases its operand's buffer) */
const char *tir_program_kernel_ptx(const tir_program *p, int i);
/* Binds a symbol for every later run, for symbols no argument's shape determines. */
tir_status tir_program_set_dim(tir_program *p, const char *sym, int64_t value, tir_diag *d);
/* Runs on the GPU with host tensors in and out: results[0..nres) are set to new host tensors. */
tir_status tir_program_run(tir_program *p, int nargs, tir_tensor *const *args, int nres,
                           tir_tensor **results, tir_diag *d);

/* ---- device-resident data, for host programs that keep tensors on the GPU */

typedef struct tir_stream tir_stream;
typedef struct tir_device_tensor tir_device_tensor;

/* TIR_OK when a CUDA device can be used; its description ("NVIDIA H100 ..., sm_90, 132 SMs") */
tir_status tir_device_probe(tir_context *ctx, char *desc, size_t n, tir_diag *d);

tir_status tir_stream_create(tir_context *ctx, tir_stream **out, tir_diag *d);
void tir_stream_destroy(tir_stream *s);
tir_status tir_stream_sync(tir_stream *s, tir_diag *d);

/* contents undefined until written */
tir_status tir_device_tensor_new(tir_context *ctx, tir_dtype dtype, int rank, const int64_t *dims,
                                 tir_device_tensor **out, tir_diag *d);
void tir_device_tensor_free(tir_device_tensor *t);
tir_dtype tir_device_tensor_dtype(const tir_device_tensor *t);
int tir_device_tensor_rank(const tir_device_tensor *t);
int64_t tir_device_tensor_dim(const tir_device_tensor *t, int i);
size_t tir_device_tensor_nbytes(const tir_device_tensor *t);
/* copies between equal-shaped host and device tensors; both return once the copy is done */
tir_status tir_device_tensor_upload(tir_device_tensor *dst, const tir_tensor *src, tir_diag *d);
tir_status tir_device_tensor_download(const tir_device_tensor *src, tir_tensor *dst, tir_diag *d);
/* conveniences: a new device tensor holding a host tensor's data, and the reverse */
tir_status tir_device_tensor_from_host(tir_context *ctx, const tir_tensor *src,
                                       tir_device_tensor **out, tir_diag *d);
tir_status tir_device_tensor_to_host(const tir_device_tensor *src, tir_tensor **out, tir_diag *d);

/* Runs on device tensors: results[0..nres) are set to new device tensors. Kernels go on stream s
 * (NULL: the context's own); the call returns when they are done. */
tir_status tir_program_run_device(tir_program *p, int nargs, tir_device_tensor *const *args,
                                  int nres, tir_device_tensor **results, tir_stream *s,
                                  tir_diag *d);
/* ==== end GPU ================================================================================ */

#ifdef __cplusplus
}
#endif
#endif /* TIR_H */
