/* device.c: the public device-side handles of include/tir.h's GPU section: probing the device,
 * streams, and device tensors (allocation through the context's caching allocator, and copies
 * to and from host tensors). Program execution on them is compiler/compile.c's. */
#include <stdio.h>

#include "device.h"

static tir_status invalid(tir_diag *d, const char *what) {
    return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "%s", what);
}

bool tir_shape_nbytes(tir_dtype dtype, int rank, const int64_t *dims, size_t *out) {
    if ((unsigned)dtype >= TIR_DTYPE_COUNT || rank < 0 || rank > TIR_MAX_RANK) return false;
    uint64_t n = tir_dtype_size(dtype);
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) return false;
        if (dims[i] && n > (uint64_t)(SIZE_MAX / 2) / (uint64_t)dims[i]) return false;
        n *= (uint64_t)dims[i];
    }
    if (n > SIZE_MAX / 2) return false;
    *out = (size_t)n;
    return true;
}

tir_status tir_device_probe(tir_context *ctx, char *desc, size_t n, tir_diag *d) {
    tir_rt *rt = NULL;
    tir_status s = tir_rt_get(ctx, &rt, d);
    if (s != TIR_OK) return s;
    if (desc && n) tir_rt_describe(rt, desc, n);
    return TIR_OK;
}

/* ---------------------------------------------------------------- streams */

tir_status tir_stream_create(tir_context *ctx, tir_stream **out, tir_diag *d) {
    if (!out) return invalid(d, "tir_stream_create: no out pointer");
    *out = NULL;
    tir_rt *rt = NULL;
    tir_status s = tir_rt_get(ctx, &rt, d);
    if (s != TIR_OK) return s;
    tir_stream *st = calloc(1, sizeof *st);
    if (!st) return tir_diag_set(d, TIR_ERR_OOM, NULL, (tir_loc){0, 0}, "out of host memory");
    s = tir_rt_stream_new(rt, &st->s, d);
    if (s != TIR_OK) {
        free(st);
        return s;
    }
    st->ctx = ctx;
    st->rt = rt;
    *out = st;
    return TIR_OK;
}

void tir_stream_destroy(tir_stream *s) {
    if (!s) return;
    tir_rt_stream_free(s->rt, s->s);
    free(s);
}

tir_status tir_stream_sync(tir_stream *s, tir_diag *d) {
    if (!s) return invalid(d, "tir_stream_sync: NULL stream");
    return tir_rt_sync(s->rt, s->s, d);
}

/* ---------------------------------------------------------------- device tensors */

tir_device_tensor *tir_device_tensor_wrap(tir_context *ctx, tir_rt *rt, tir_dtype dtype, int rank,
                                          const int64_t *dims, tir_dptr ptr, size_t alloc_bytes,
                                          tir_diag *d) {
    tir_device_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        tir_diag_set(d, TIR_ERR_OOM, NULL, (tir_loc){0, 0}, "out of host memory");
        return NULL;
    }
    t->ctx = ctx;
    t->rt = rt;
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->dims[i] = dims[i];
    tir_shape_nbytes(dtype, rank, dims, &t->nbytes);
    t->ptr = ptr;
    t->alloc_bytes = alloc_bytes;
    return t;
}

tir_status tir_device_tensor_new(tir_context *ctx, tir_dtype dtype, int rank, const int64_t *dims,
                                 tir_device_tensor **out, tir_diag *d) {
    if (!out) return invalid(d, "tir_device_tensor_new: no out pointer");
    *out = NULL;
    size_t nbytes = 0;
    if (!tir_shape_nbytes(dtype, rank, dims, &nbytes) || (rank > 0 && !dims))
        return invalid(d, "tir_device_tensor_new: bad dtype, rank or dims");
    tir_rt *rt = NULL;
    tir_status s = tir_rt_get(ctx, &rt, d);
    if (s != TIR_OK) return s;
    tir_dptr p = 0;
    s = tir_rt_alloc(rt, nbytes, &p, d);
    if (s != TIR_OK) return s;
    *out = tir_device_tensor_wrap(ctx, rt, dtype, rank, dims, p, nbytes, d);
    if (!*out) {
        tir_rt_free(rt, p, nbytes);
        return TIR_ERR_OOM;
    }
    return TIR_OK;
}

void tir_device_tensor_free(tir_device_tensor *t) {
    if (!t) return;
    tir_rt_free(t->rt, t->ptr, t->alloc_bytes);
    free(t);
}

tir_dtype tir_device_tensor_dtype(const tir_device_tensor *t) { return t->dtype; }
int tir_device_tensor_rank(const tir_device_tensor *t) { return t->rank; }
int64_t tir_device_tensor_dim(const tir_device_tensor *t, int i) {
    return i >= 0 && i < t->rank ? t->dims[i] : 0;
}
size_t tir_device_tensor_nbytes(const tir_device_tensor *t) { return t->nbytes; }

/* the host tensor has the device tensor's dtype and shape */
static tir_status same_shape(const tir_device_tensor *dt, const tir_tensor *ht, tir_diag *d) {
    if (!dt || !ht) return invalid(d, "NULL tensor");
    bool ok = tir_tensor_dtype(ht) == dt->dtype && tir_tensor_rank(ht) == dt->rank;
    for (int i = 0; ok && i < dt->rank; i++) ok = tir_tensor_dim(ht, i) == dt->dims[i];
    if (!ok)
        return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0},
                            "host and device tensors differ in dtype or shape");
    return TIR_OK;
}

tir_status tir_device_tensor_upload(tir_device_tensor *dst, const tir_tensor *src, tir_diag *d) {
    tir_status s = same_shape(dst, src, d);
    if (s != TIR_OK) return s;
    const void *data = tir_tensor_data((tir_tensor *)src);
    s = tir_rt_htod(dst->rt, dst->ptr, data, dst->nbytes, NULL, d);
    if (s != TIR_OK) return s;
    return tir_rt_sync(dst->rt, NULL, d);
}

tir_status tir_device_tensor_download(const tir_device_tensor *src, tir_tensor *dst, tir_diag *d) {
    tir_status s = same_shape(src, dst, d);
    if (s != TIR_OK) return s;
    s = tir_rt_dtoh(src->rt, tir_tensor_data(dst), src->ptr, src->nbytes, NULL, d);
    if (s != TIR_OK) return s;
    return tir_rt_sync(src->rt, NULL, d);
}

tir_status tir_device_tensor_from_host(tir_context *ctx, const tir_tensor *src,
                                       tir_device_tensor **out, tir_diag *d) {
    if (!src || !out) return invalid(d, "tir_device_tensor_from_host: NULL argument");
    int64_t dims[TIR_MAX_RANK];
    int rank = tir_tensor_rank(src);
    for (int i = 0; i < rank; i++) dims[i] = tir_tensor_dim(src, i);
    tir_status s = tir_device_tensor_new(ctx, tir_tensor_dtype(src), rank, dims, out, d);
    if (s != TIR_OK) return s;
    s = tir_device_tensor_upload(*out, src, d);
    if (s != TIR_OK) {
        tir_device_tensor_free(*out);
        *out = NULL;
    }
    return s;
}

tir_status tir_device_tensor_to_host(const tir_device_tensor *src, tir_tensor **out, tir_diag *d) {
    if (!src || !out) return invalid(d, "tir_device_tensor_to_host: NULL argument");
    *out = tir_tensor_new(src->dtype, src->rank, src->dims);
    if (!*out) return tir_diag_set(d, TIR_ERR_OOM, NULL, (tir_loc){0, 0}, "out of host memory");
    tir_status s = tir_device_tensor_download(src, *out, d);
    if (s != TIR_OK) {
        tir_tensor_free(*out);
        *out = NULL;
    }
    return s;
}
