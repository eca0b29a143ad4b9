/* tensor.c: host tensors of the public API: dense, row-major, each element in its dtype's
 * storage format. Data is 64-byte aligned so it can be handed to vectorised host code and
 * copied to the device without staging. (.npy files: runtime/npy.c.) */
#include "ir.h"

struct tir_tensor {
    tir_dtype dtype;
    int rank;
    int64_t dims[TIR_MAX_RANK];
    int64_t numel;
    size_t nbytes;
    void *data;
};

tir_tensor *tir_tensor_new(tir_dtype dtype, int rank, const int64_t *dims) {
    if ((unsigned)dtype >= TIR_DTYPE_COUNT || rank < 0 || rank > TIR_MAX_RANK || (rank && !dims))
        return NULL;
    int64_t numel = 1;
    for (int i = 0; i < rank; i++)
        if (dims[i] < 0 || __builtin_mul_overflow(numel, dims[i], &numel)) return NULL;
    size_t nbytes, alloc;
    if (numel > (int64_t)(SIZE_MAX / 2) ||
        __builtin_mul_overflow((size_t)numel, tir_dtype_size(dtype), &nbytes) ||
        __builtin_add_overflow(nbytes, (size_t)63, &alloc))
        return NULL;
    alloc &= ~(size_t)63; /* aligned_alloc wants a multiple of the alignment */
    tir_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->data = aligned_alloc(64, alloc ? alloc : 64);
    if (!t->data) {
        free(t);
        return NULL;
    }
    memset(t->data, 0, alloc ? alloc : 64);
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->dims[i] = dims[i];
    t->numel = numel;
    t->nbytes = nbytes;
    return t;
}

void tir_tensor_free(tir_tensor *t) {
    if (!t) return;
    free(t->data);
    free(t);
}

/* the getters tolerate NULL, so a failed tir_tensor_new shows up as an empty tensor */
tir_dtype tir_tensor_dtype(const tir_tensor *t) { return t ? t->dtype : TIR_F32; }
int tir_tensor_rank(const tir_tensor *t) { return t ? t->rank : 0; }
int64_t tir_tensor_dim(const tir_tensor *t, int i) {
    return t && i >= 0 && i < t->rank ? t->dims[i] : -1;
}
int64_t tir_tensor_numel(const tir_tensor *t) { return t ? t->numel : 0; }
size_t tir_tensor_nbytes(const tir_tensor *t) { return t ? t->nbytes : 0; }
void *tir_tensor_data(tir_tensor *t) { return t ? t->data : NULL; }

/* out-of-range reads give NaN and writes are dropped: host API misuse must not corrupt memory */
double tir_tensor_get(const tir_tensor *t, int64_t i) {
    if (!t || i < 0 || i >= t->numel) return NAN;
    return tir_dtype_load(t->dtype, (const char *)t->data + (size_t)i * tir_dtype_size(t->dtype));
}

void tir_tensor_set(tir_tensor *t, int64_t i, double v) {
    if (!t || i < 0 || i >= t->numel) return;
    tir_dtype_store(t->dtype, (char *)t->data + (size_t)i * tir_dtype_size(t->dtype), v);
}
