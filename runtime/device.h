/* device.h: the insides of the public device handles (tir_stream, tir_device_tensor) that
 * compiler/compile.c needs to run programs on device-resident data. runtime/device.c implements
 * the public functions on them. */
#ifndef TIR_RT_DEVICE_H
#define TIR_RT_DEVICE_H

#include "cuda.h"

struct tir_stream {
    tir_context *ctx;
    tir_rt *rt;
    tir_rt_stream s;
};

struct tir_device_tensor {
    tir_context *ctx;
    tir_rt *rt;
    tir_dtype dtype;
    int rank;
    int64_t dims[TIR_MAX_RANK];
    size_t nbytes;      /* numel * element size */
    tir_dptr ptr;       /* from rt's allocator; freed with the tensor */
    size_t alloc_bytes; /* the size ptr was allocated with (>= nbytes: a buffer a program
                           handed over may be larger than the tensor it holds) */
};

/* A device tensor that takes ownership of ptr (allocated with tir_rt_alloc(rt, alloc_bytes));
 * NULL (with d set) on OOM, in which case ptr is still the caller's. */
tir_device_tensor *tir_device_tensor_wrap(tir_context *ctx, tir_rt *rt, tir_dtype dtype, int rank,
                                          const int64_t *dims, tir_dptr ptr, size_t alloc_bytes,
                                          tir_diag *d);
/* numel * element size for a shape; false on a negative dim or overflow */
bool tir_shape_nbytes(tir_dtype dtype, int rank, const int64_t *dims, size_t *out);

#endif
