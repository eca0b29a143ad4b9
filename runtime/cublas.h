/* cublas.h: matmul through cuBLASLt (runtime/cublas.c), the executor tir routes a matmul to when
 * cuBLAS is faster than its own kernel. cuBLASLt is loaded with dlopen on first use
 * ($TIR_CUBLASLT_LIB alone when set, else libcublasLt.so.13, libcublasLt.so, then the same in
 * /usr/local/cuda/lib64), so libtir never links against it; where it is missing,
 * tir_cublas_create says so with TIR_ERR_UNSUPPORTED.
 *
 * Matrices are row-major, as everywhere in tir: C[b] (m x n) = op(A[b]) (m x k) · op(B[b]) (k x n),
 * A stored [m, k] (or [k, m] with trans_a), B stored [k, n] (or [n, k] with trans_b). cuBLASLt is
 * column-major, so the call computes Cᵀ = op(B)ᵀ op(A)ᵀ, which has the same bytes.
 *
 *     tir_cublas *cb;
 *     if (tir_cublas_create(rt, &cb, &d) != TIR_OK) ...    // rt from tir_rt_get
 *     tir_cublas_gemm g = {.dtype = TIR_BF16, .m = M, .n = N, .k = K, .batch = 1,
 *                          .a = a, .b = b, .c = c, .workspace = ws,
 *                          .workspace_bytes = TIR_CUBLAS_WORKSPACE};
 *     tir_cublas_matmul(cb, stream, &g, &d);                // enqueues on stream
 *     tir_cublas_destroy(cb);
 */
#ifndef TIR_RT_CUBLAS_H
#define TIR_RT_CUBLAS_H

#include "cuda.h"

#define TIR_CUBLAS_WORKSPACE (32u << 20) /* the workspace cuBLASLt may use, bytes */

typedef struct tir_cublas tir_cublas;

typedef enum tir_cublas_epilogue {
    TIR_CUBLAS_EPI_NONE = 0,
    TIR_CUBLAS_EPI_RELU,
    TIR_CUBLAS_EPI_GELU,      /* cuBLAS's GELU: the tanh approximation */
} tir_cublas_epilogue;

typedef struct tir_cublas_gemm {
    tir_dtype dtype;          /* of A, B, C and the bias: bf16, f16 or f32 (accumulation in f32) */
    bool allow_tf32;          /* f32 only: run on the tensor cores in TF32 */
    int64_t m, n, k, batch;   /* batch >= 1 */
    bool trans_a, trans_b;    /* A stored [k, m]; B stored [n, k] */
    tir_dptr a, b, c;
    int64_t lda, ldb, ldc;    /* elements between rows as stored; 0: packed */
    int64_t stride_a, stride_b, stride_c; /* elements between batch matrices; for a and b, 0 with
                                             batch > 1 repeats one matrix (broadcast); for c, 0
                                             means packed */
    float scale;              /* alpha: C = scale·op(A)·op(B) (+ bias, epilogue); 0 means 1 */
    tir_dptr bias;            /* [n] in dtype, added to every row (0: none) */
    tir_cublas_epilogue epilogue; /* applied after the bias */
    tir_dptr workspace;       /* device memory cuBLASLt may use (0: none; slower algorithms) */
    size_t workspace_bytes;
} tir_cublas_gemm;

/* Loads cuBLASLt (once per process) and makes a handle for rt's device (its context current:
 * tir_rt_get makes it so). TIR_ERR_UNSUPPORTED when the library cannot be found,
 * TIR_ERR_NO_DRIVER when rt is NULL, TIR_ERR_CUDA when cuBLASLt fails. */
tir_status tir_cublas_create(tir_rt *rt, tir_cublas **out, tir_diag *d);
void tir_cublas_destroy(tir_cublas *cb);
/* "cuBLASLt 130100" for the loaded library, or why it is not there */
const char *tir_cublas_describe(tir_cublas *cb);

/* Enqueues the matmul on `stream` (a CUstream; NULL is the legacy default stream). Algorithms are
 * chosen by cuBLASLt's heuristic once per shape and remembered. TIR_ERR_INVALID for bad
 * arguments, TIR_ERR_UNSUPPORTED when cuBLASLt has no algorithm, TIR_ERR_CUDA when a call
 * fails (the diagnostic names it). */
tir_status tir_cublas_matmul(tir_cublas *cb, void *stream, const tir_cublas_gemm *g, tir_diag *d);

#endif
