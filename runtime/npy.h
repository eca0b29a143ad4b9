/* npy.h: internal entry points of runtime/npy.c beyond the public tir_tensor_load_npy /
 * tir_tensor_save_npy: loading from memory (the fuzz target and the unit tests use it, so the
 * header parser can be driven with arbitrary bytes without touching the file system) and the
 * header parser itself. */
#ifndef TIR_NPY_H
#define TIR_NPY_H

#include "ir.h"

typedef struct tir_npy_header {
    tir_dtype dtype;
    int rank;
    int64_t dims[TIR_MAX_RANK];
    int64_t numel;
    size_t nbytes;      /* numel * element size; guaranteed not to overflow */
    size_t data_offset; /* where the data starts in the file */
} tir_npy_header;

/* Parse the preamble (magic, version, header length) and the header dict from buf[0..n).
 * On error returns TIR_ERR_IO with d's message naming `name`. Never reads past buf + n. */
tir_status tir_npy_parse(const void *buf, size_t n, const char *name, tir_npy_header *h,
                         tir_diag *d);

/* A whole .npy file held in memory -> a new tensor. `name` is used in messages. */
tir_status tir_npy_load_mem(const void *buf, size_t n, const char *name, tir_tensor **out,
                            tir_diag *d);

#endif
