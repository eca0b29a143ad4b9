/* cuda.h: tir's internal face of the CUDA driver API (runtime/cuda.c). The driver is loaded with
 * dlopen at first use, so libtir builds, tests and emits PTX on machines without a GPU; there,
 * every entry point here returns TIR_ERR_NO_DRIVER instead of crashing.
 *
 * One tir_rt per context (ctx->runtime): the primary context of one device, one stream, a caching
 * allocator. Everything here is synchronous from the caller's point of view unless it says it
 * enqueues; callers use one context from one thread at a time.
 *
 * Device pointers are plain integers (CUdeviceptr is 64 bits on every platform we run on).
 */
#ifndef TIR_RT_CUDA_H
#define TIR_RT_CUDA_H

#include "ir.h"

typedef struct tir_rt tir_rt;
typedef uint64_t tir_dptr;

/* The context's runtime, created (driver loaded, device 0 or $TIR_DEVICE opened) on first use.
 * $TIR_CUDA_LIB names the driver library instead of libcuda.so.1. A failure is not remembered,
 * so a later call tries again. */
tir_status tir_rt_get(tir_context *ctx, tir_rt **out, tir_diag *d);

/* what the device is: "NVIDIA H100 80GB HBM3, sm_90, 132 SMs" */
void tir_rt_describe(const tir_rt *rt, char *buf, size_t n);
int tir_rt_cc(const tir_rt *rt); /* compute capability as 10*major + minor: 90 */
int tir_rt_sms(const tir_rt *rt); /* multiprocessors */

/* Encodes a 128-byte CUtensorMap (map: 64-byte aligned) for a tiled view of `base`: rank dims,
 * innermost first, their strides in elements (strides[0] unused) and the box one copy brings;
 * swizzle in bytes (0, 32, 64, 128); out-of-range elements read as zero. TIR_ERR_UNSUPPORTED
 * when a stride or the base is not 16-byte aligned (the copy engine needs both). */
tir_status tir_rt_tensor_map(tir_rt *rt, void *map, tir_dtype dt, int rank, tir_dptr base,
                             const int64_t *dims, const int64_t *strides, const int *box,
                             int swizzle, tir_diag *d);

/* ---- memory: a caching allocator with size classes; blocks go back to free lists on free and
 * to the driver at destroy (or when an allocation fails, to retry once) */
tir_status tir_rt_alloc(tir_rt *rt, size_t n, tir_dptr *out, tir_diag *d);
void tir_rt_free(tir_rt *rt, tir_dptr p, size_t n); /* n as given to tir_rt_alloc */
/* bytes held from the driver, and of them bytes handed out and not yet freed */
void tir_rt_mem_stats(const tir_rt *rt, size_t *reserved, size_t *in_use);

/* ---- streams: NULL means the runtime's own stream */
typedef void *tir_rt_stream;
tir_status tir_rt_stream_new(tir_rt *rt, tir_rt_stream *out, tir_diag *d);
void tir_rt_stream_free(tir_rt *rt, tir_rt_stream s);
tir_status tir_rt_sync(tir_rt *rt, tir_rt_stream s, tir_diag *d);

/* enqueue on s; host memory must stay valid until the stream is synchronized */
tir_status tir_rt_htod(tir_rt *rt, tir_dptr dst, const void *src, size_t n, tir_rt_stream s,
                       tir_diag *d);
tir_status tir_rt_dtoh(tir_rt *rt, void *dst, tir_dptr src, size_t n, tir_rt_stream s, tir_diag *d);
tir_status tir_rt_dtod(tir_rt *rt, tir_dptr dst, tir_dptr src, size_t n, tir_rt_stream s,
                       tir_diag *d);
tir_status tir_rt_memset8(tir_rt *rt, tir_dptr dst, unsigned char v, size_t n, tir_rt_stream s,
                          tir_diag *d);

/* ---- kernels */
typedef struct tir_rt_kernel {
    void *module;      /* CUmodule */
    void *func;        /* CUfunction */
    int regs;          /* registers per thread */
    int local_bytes;   /* local memory per thread (spills and stack) */
    int static_shared; /* static shared memory per block */
    int max_threads;   /* most threads per block this kernel can launch with */
} tir_rt_kernel;

/* Load PTX and find entry `name`; the driver's JIT error and info logs go into the diagnostic.
 * dyn_shared > 48 KiB opts the kernel in to the larger dynamic shared memory. */
tir_status tir_rt_load(tir_rt *rt, const char *ptx, const char *name, int dyn_shared,
                       tir_rt_kernel *out, tir_diag *d);
void tir_rt_unload(tir_rt *rt, tir_rt_kernel *k);
/* enqueue; params as cuLaunchKernel takes them (an array of pointers to each argument) */
tir_status tir_rt_launch(tir_rt *rt, const tir_rt_kernel *k, const char *name,
                         const unsigned grid[3], const int block[3], int dyn_shared,
                         void **params, tir_rt_stream s, tir_diag *d);

/* ---- events, for timing kernels */
typedef void *tir_rt_event;
tir_status tir_rt_event_new(tir_rt *rt, tir_rt_event *out, tir_diag *d);
void tir_rt_event_free(tir_rt *rt, tir_rt_event e);
tir_status tir_rt_event_record(tir_rt *rt, tir_rt_event e, tir_rt_stream s, tir_diag *d);
/* waits for `end`, then the milliseconds between the two */
tir_status tir_rt_event_ms(tir_rt *rt, tir_rt_event start, tir_rt_event end, float *ms,
                           tir_diag *d);

#endif
