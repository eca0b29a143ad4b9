/* cuda.c: the CUDA driver API, loaded with dlopen so that libtir needs no CUDA toolkit or driver to
 * build or to run its CPU paths; the device runtime of a context (primary context, a stream, a
 * caching allocator); loading PTX with the JIT's logs; launches and events.
 *
 * The few driver types and enum values used are declared here rather than taken from cuda.h: the
 * build must not depend on the toolkit, and these values are ABI, fixed across driver versions.
 * Entry points are resolved by their versioned names (_v2) first, as cuda.h's macros would. */
#include <dlfcn.h>
#include <stdio.h>

#include "cuda.h"

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext, *CUmodule, *CUfunction, *CUstream, *CUevent;
typedef unsigned long long CUdeviceptr;

enum {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_INSUFFICIENT_DRIVER = 35,
    CUDA_ERROR_NO_DEVICE = 100,
};
enum { /* CUjit_option */
    CU_JIT_INFO_LOG_BUFFER = 3,
    CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4,
    CU_JIT_ERROR_LOG_BUFFER = 5,
    CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6,
    CU_JIT_OPTIMIZATION_LEVEL = 7,
};
enum { /* CUdevice_attribute */
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
};
enum { /* CUfunction_attribute */
    CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0,
    CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES = 1,
    CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES = 3,
    CU_FUNC_ATTRIBUTE_NUM_REGS = 4,
    CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
};
enum { CU_EVENT_DEFAULT = 0, CU_STREAM_NON_BLOCKING = 1 };

/* the driver entry points tir uses; enums are passed as int, which is their ABI */
typedef struct drv {
    CUresult (*Init)(unsigned flags);
    CUresult (*DriverGetVersion)(int *v);
    CUresult (*DeviceGetCount)(int *n);
    CUresult (*DeviceGet)(CUdevice *dev, int ordinal);
    CUresult (*DeviceGetName)(char *name, int len, CUdevice dev);
    CUresult (*DeviceGetAttribute)(int *v, int attr, CUdevice dev);
    CUresult (*DeviceTotalMem)(size_t *bytes, CUdevice dev);
    CUresult (*DevicePrimaryCtxRetain)(CUcontext *ctx, CUdevice dev);
    CUresult (*DevicePrimaryCtxRelease)(CUdevice dev);
    CUresult (*CtxSetCurrent)(CUcontext ctx);
    CUresult (*StreamCreate)(CUstream *s, unsigned flags);
    CUresult (*StreamDestroy)(CUstream s);
    CUresult (*StreamSynchronize)(CUstream s);
    CUresult (*MemAlloc)(CUdeviceptr *p, size_t n);
    CUresult (*MemFree)(CUdeviceptr p);
    CUresult (*MemcpyHtoDAsync)(CUdeviceptr dst, const void *src, size_t n, CUstream s);
    CUresult (*MemcpyDtoHAsync)(void *dst, CUdeviceptr src, size_t n, CUstream s);
    CUresult (*MemcpyDtoDAsync)(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s);
    CUresult (*MemsetD8Async)(CUdeviceptr dst, unsigned char v, size_t n, CUstream s);
    CUresult (*ModuleLoadDataEx)(CUmodule *m, const void *image, unsigned nopt, int *opts,
                                 void **vals);
    CUresult (*ModuleUnload)(CUmodule m);
    CUresult (*ModuleGetFunction)(CUfunction *f, CUmodule m, const char *name);
    CUresult (*FuncGetAttribute)(int *v, int attr, CUfunction f);
    CUresult (*FuncSetAttribute)(CUfunction f, int attr, int v);
    CUresult (*LaunchKernel)(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                             unsigned by, unsigned bz, unsigned shared, CUstream s, void **params,
                             void **extra);
    CUresult (*EventCreate)(CUevent *e, unsigned flags);
    CUresult (*EventRecord)(CUevent e, CUstream s);
    CUresult (*EventSynchronize)(CUevent e);
    CUresult (*EventElapsedTime)(float *ms, CUevent a, CUevent b);
    CUresult (*EventDestroy)(CUevent e);
    CUresult (*GetErrorString)(CUresult r, const char **s);
    CUresult (*GetErrorName)(CUresult r, const char **s);
    /* (map, data type, rank, base, dims, strides of dims 1.., box, element strides, interleave,
     * swizzle, L2 promotion, OOB fill): driver 12.0 and newer */
    CUresult (*TensorMapEncodeTiled)(void *map, int dtype, unsigned rank, void *base,
                                     const uint64_t *dims, const uint64_t *strides,
                                     const unsigned *box, const unsigned *elem_strides,
                                     int interleave, int swizzle, int l2, int oob);
} drv;

/* names to try, in order, separated by '|' */
static const struct {
    size_t off;
    const char *names;
} syms[] = {
#define S(field, names) {offsetof(drv, field), names}
    S(Init, "cuInit"),
    S(DriverGetVersion, "cuDriverGetVersion"),
    S(DeviceGetCount, "cuDeviceGetCount"),
    S(DeviceGet, "cuDeviceGet"),
    S(DeviceGetName, "cuDeviceGetName"),
    S(DeviceGetAttribute, "cuDeviceGetAttribute"),
    S(DeviceTotalMem, "cuDeviceTotalMem_v2"),
    S(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"),
    S(DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2|cuDevicePrimaryCtxRelease"),
    S(CtxSetCurrent, "cuCtxSetCurrent"),
    S(StreamCreate, "cuStreamCreate"),
    S(StreamDestroy, "cuStreamDestroy_v2|cuStreamDestroy"),
    S(StreamSynchronize, "cuStreamSynchronize"),
    S(MemAlloc, "cuMemAlloc_v2"),
    S(MemFree, "cuMemFree_v2"),
    S(MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"),
    S(MemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"),
    S(MemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"),
    S(MemsetD8Async, "cuMemsetD8Async"),
    S(ModuleLoadDataEx, "cuModuleLoadDataEx"),
    S(ModuleUnload, "cuModuleUnload"),
    S(ModuleGetFunction, "cuModuleGetFunction"),
    S(FuncGetAttribute, "cuFuncGetAttribute"),
    S(FuncSetAttribute, "cuFuncSetAttribute"),
    S(LaunchKernel, "cuLaunchKernel"),
    S(EventCreate, "cuEventCreate"),
    S(EventRecord, "cuEventRecord"),
    S(EventSynchronize, "cuEventSynchronize"),
    S(EventElapsedTime, "cuEventElapsedTime_v2|cuEventElapsedTime"),
    S(EventDestroy, "cuEventDestroy_v2|cuEventDestroy"),
    S(GetErrorString, "cuGetErrorString"),
    S(GetErrorName, "cuGetErrorName"),
    S(TensorMapEncodeTiled, "cuTensorMapEncodeTiled"),
#undef S
};

/* a free device block of a size class */
typedef struct free_block {
    CUdeviceptr p;
    struct free_block *next;
} free_block;

typedef struct bucket {
    size_t size; /* the class size; every block in the list has exactly this size */
    free_block *free;
} bucket;

struct tir_rt {
    void *lib;
    drv cu;
    CUdevice dev;
    CUcontext ctx;
    CUstream stream;
    char name[128];
    int cc_major, cc_minor, sms, smem_optin, driver_version;
    size_t total_mem;
    bucket *buckets;
    int nbuckets, cap_buckets;
    size_t reserved, in_use;
};

/* ---------------------------------------------------------------- errors */

static tir_status cu_fail(tir_rt *rt, CUresult r, const char *file, int line, const char *what,
                          tir_diag *d) {
    const char *str = NULL, *name = NULL;
    if (rt && rt->cu.GetErrorString) rt->cu.GetErrorString(r, &str);
    if (rt && rt->cu.GetErrorName) rt->cu.GetErrorName(r, &name);
    tir_status s = r == CUDA_ERROR_OUT_OF_MEMORY ? TIR_ERR_OOM : TIR_ERR_CUDA;
    return tir_diag_set(d, s, NULL, (tir_loc){0, 0}, "%s:%d: %s failed: %s (%s = %d)", file, line,
                        what, str ? str : "unknown error", name ? name : "CUresult", r);
}

/* Every driver call goes through CU, which names the call site in the diagnostic. */
#define CU(rt, call, d)                                                                    \
    do {                                                                                   \
        CUresult r_ = (rt)->cu.call;                                                       \
        if (r_ != CUDA_SUCCESS) return cu_fail((rt), r_, __FILE__, __LINE__, #call, (d)); \
    } while (0)

static tir_status enter(tir_rt *rt, tir_diag *d) {
    CU(rt, CtxSetCurrent(rt->ctx), d);
    return TIR_OK;
}

static CUstream stream_of(tir_rt *rt, tir_rt_stream s) { return s ? (CUstream)s : rt->stream; }

/* ---------------------------------------------------------------- allocator */

/* Size classes: 512 B minimum, powers of two up to 1 MiB, then four steps per doubling (at most
 * 25% waste), so that freed blocks are found again by exact class size. */
static size_t class_size(size_t n) {
    if (n <= 512) return 512;
    size_t p = 1;
    while (p < n && p < ((size_t)1 << 62)) p <<= 1;
    if (p <= ((size_t)1 << 20)) return p;
    size_t step = p / 8; /* n lies in (p/2, p]: steps of p/8 are quarters of p/2 */
    return (n + step - 1) / step * step;
}

static bucket *find_bucket(tir_rt *rt, size_t size, bool create) {
    for (int i = 0; i < rt->nbuckets; i++)
        if (rt->buckets[i].size == size) return &rt->buckets[i];
    if (!create) return NULL;
    if (rt->nbuckets == rt->cap_buckets) {
        int cap = rt->cap_buckets ? 2 * rt->cap_buckets : 32;
        bucket *nb = realloc(rt->buckets, (size_t)cap * sizeof *nb);
        if (!nb) return NULL;
        rt->buckets = nb;
        rt->cap_buckets = cap;
    }
    rt->buckets[rt->nbuckets] = (bucket){size, NULL};
    return &rt->buckets[rt->nbuckets++];
}

/* returns cached blocks to the driver */
static void release_cache(tir_rt *rt) {
    for (int i = 0; i < rt->nbuckets; i++) {
        free_block *b = rt->buckets[i].free;
        while (b) {
            free_block *next = b->next;
            rt->cu.MemFree(b->p); /* nothing useful to do about a failure while emptying */
            rt->reserved -= rt->buckets[i].size;
            free(b);
            b = next;
        }
        rt->buckets[i].free = NULL;
    }
}

tir_status tir_rt_alloc(tir_rt *rt, size_t n, tir_dptr *out, tir_diag *d) {
    size_t size = class_size(n);
    bucket *bk = find_bucket(rt, size, true);
    if (!bk) return tir_diag_set(d, TIR_ERR_OOM, NULL, (tir_loc){0, 0}, "out of host memory");
    if (bk->free) {
        free_block *b = bk->free;
        bk->free = b->next;
        *out = b->p;
        free(b);
        rt->in_use += size;
        return TIR_OK;
    }
    tir_status s = enter(rt, d);
    if (s != TIR_OK) return s;
    CUdeviceptr p = 0;
    CUresult r = rt->cu.MemAlloc(&p, size);
    if (r == CUDA_ERROR_OUT_OF_MEMORY) {
        release_cache(rt);
        r = rt->cu.MemAlloc(&p, size);
    }
    if (r != CUDA_SUCCESS) {
        char what[96];
        snprintf(what, sizeof what, "cuMemAlloc_v2(%zu bytes)", size);
        return cu_fail(rt, r, __FILE__, __LINE__, what, d);
    }
    rt->reserved += size;
    rt->in_use += size;
    *out = p;
    return TIR_OK;
}

void tir_rt_free(tir_rt *rt, tir_dptr p, size_t n) {
    if (!rt || !p) return;
    size_t size = class_size(n);
    bucket *bk = find_bucket(rt, size, true);
    free_block *b = bk ? malloc(sizeof *b) : NULL;
    rt->in_use -= size;
    if (!b) { /* no host memory to remember it: give it back instead */
        if (enter(rt, NULL) == TIR_OK) rt->cu.MemFree(p);
        rt->reserved -= size;
        return;
    }
    b->p = p;
    b->next = bk->free;
    bk->free = b;
}

void tir_rt_mem_stats(const tir_rt *rt, size_t *reserved, size_t *in_use) {
    if (reserved) *reserved = rt ? rt->reserved : 0;
    if (in_use) *in_use = rt ? rt->in_use : 0;
}

/* ---------------------------------------------------------------- lifetime */

static void rt_destroy(void *p) {
    tir_rt *rt = p;
    if (!rt) return;
    if (rt->ctx) {
        rt->cu.CtxSetCurrent(rt->ctx);
        if (rt->stream) {
            rt->cu.StreamSynchronize(rt->stream);
            rt->cu.StreamDestroy(rt->stream);
        }
        release_cache(rt);
        rt->cu.CtxSetCurrent(NULL);
        rt->cu.DevicePrimaryCtxRelease(rt->dev);
    }
    free(rt->buckets);
    if (rt->lib) dlclose(rt->lib);
    free(rt);
}

static tir_status rt_open(tir_rt *rt, tir_diag *d) {
    const char *path = getenv("TIR_CUDA_LIB");
    if (!path || !*path) path = "libcuda.so.1";
    rt->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!rt->lib)
        return tir_diag_set(d, TIR_ERR_NO_DRIVER, NULL, (tir_loc){0, 0},
                            "no CUDA driver (%s not found)", path);
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *sym = NULL;
        char name[64];
        for (const char *p = syms[i].names; *p && !sym;) {
            const char *e = strchr(p, '|');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            snprintf(name, sizeof name, "%.*s", (int)len, p);
            sym = dlsym(rt->lib, name);
            p += len + (e ? 1 : 0);
        }
        if (!sym)
            return tir_diag_set(d, TIR_ERR_NO_DRIVER, NULL, (tir_loc){0, 0},
                                "CUDA driver %s has no %s (driver too old?)", path, syms[i].names);
        memcpy((char *)&rt->cu + syms[i].off, &sym, sizeof sym);
    }

    CUresult r = rt->cu.Init(0);
    if (r == CUDA_ERROR_NO_DEVICE || r == CUDA_ERROR_INSUFFICIENT_DRIVER) {
        const char *str = NULL;
        rt->cu.GetErrorString(r, &str);
        return tir_diag_set(d, TIR_ERR_NO_DRIVER, NULL, (tir_loc){0, 0},
                            "no usable CUDA device: cuInit: %s", str ? str : "unknown error");
    }
    if (r != CUDA_SUCCESS) return cu_fail(rt, r, __FILE__, __LINE__, "cuInit(0)", d);

    int count = 0, ordinal = 0;
    CU(rt, DeviceGetCount(&count), d);
    const char *env = getenv("TIR_DEVICE");
    if (env && *env) ordinal = atoi(env);
    if (count <= 0)
        return tir_diag_set(d, TIR_ERR_NO_DRIVER, NULL, (tir_loc){0, 0}, "no CUDA device");
    if (ordinal < 0 || ordinal >= count)
        return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0},
                            "TIR_DEVICE=%d but there are %d CUDA devices", ordinal, count);
    CU(rt, DeviceGet(&rt->dev, ordinal), d);
    CU(rt, DriverGetVersion(&rt->driver_version), d);
    CU(rt, DeviceGetName(rt->name, (int)sizeof rt->name, rt->dev), d);
    CU(rt, DeviceGetAttribute(&rt->cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, rt->dev),
       d);
    CU(rt, DeviceGetAttribute(&rt->cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, rt->dev),
       d);
    CU(rt, DeviceGetAttribute(&rt->sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, rt->dev), d);
    CU(rt,
       DeviceGetAttribute(&rt->smem_optin, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                          rt->dev),
       d);
    CU(rt, DeviceTotalMem(&rt->total_mem, rt->dev), d);
    CUcontext ctx = NULL;
    CU(rt, DevicePrimaryCtxRetain(&ctx, rt->dev), d);
    rt->ctx = ctx;
    CU(rt, CtxSetCurrent(rt->ctx), d);
    CU(rt, StreamCreate(&rt->stream, CU_STREAM_NON_BLOCKING), d);
    return TIR_OK;
}

tir_status tir_rt_get(tir_context *ctx, tir_rt **out, tir_diag *d) {
    if (!ctx) return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "no context");
    if (ctx->runtime) {
        *out = ctx->runtime;
        return enter(*out, d);
    }
    tir_rt *rt = calloc(1, sizeof *rt);
    if (!rt) return tir_diag_set(d, TIR_ERR_OOM, NULL, (tir_loc){0, 0}, "out of host memory");
    tir_status s = rt_open(rt, d);
    if (s != TIR_OK) {
        rt_destroy(rt);
        return s;
    }
    ctx->runtime = rt;
    ctx->runtime_free = rt_destroy;
    *out = rt;
    return TIR_OK;
}

void tir_rt_describe(const tir_rt *rt, char *buf, size_t n) {
    snprintf(buf, n, "%s, sm_%d%d, %d SMs, %.1f GiB, driver %d.%d", rt->name, rt->cc_major,
             rt->cc_minor, rt->sms, (double)rt->total_mem / (1024.0 * 1024 * 1024),
             rt->driver_version / 1000, rt->driver_version % 1000 / 10);
}

int tir_rt_cc(const tir_rt *rt) { return rt->cc_major * 10 + rt->cc_minor; }

int tir_rt_sms(const tir_rt *rt) { return rt->sms; }

/* ---------------------------------------------------------------- tensor maps */

tir_status tir_rt_tensor_map(tir_rt *rt, void *map, tir_dtype dt, int rank, tir_dptr base,
                             const int64_t *dims, const int64_t *strides, const int *box,
                             int swizzle, tir_diag *d) {
    /* CUtensorMapDataType / CUtensorMapSwizzle values */
    int cdt = dt == TIR_BF16 ? 9 : dt == TIR_F16 ? 6 : dt == TIR_F32 ? 7 : dt == TIR_U8 ? 0 : -1;
    int sw = swizzle == 0 ? 0 : swizzle == 32 ? 1 : swizzle == 64 ? 2 : swizzle == 128 ? 3 : -1;
    size_t es = tir_dtype_size(dt);
    if (cdt < 0 || sw < 0 || rank < 1 || rank > 5)
        return tir_diag_set(d, TIR_ERR_UNSUPPORTED, NULL, (tir_loc){0, 0},
                            "tensor map: unsupported dtype, rank %d or swizzle %d", rank, swizzle);
    /* an empty tensor has no view (and maybe no memory); kernels copy nothing from it */
    for (int i = 0; i < rank; i++)
        if (dims[i] < 1) {
            memset(map, 0, 128);
            return TIR_OK;
        }
    uint64_t gd[5], gs[5];
    unsigned bx[5], one[5] = {1, 1, 1, 1, 1};
    for (int i = 0; i < rank; i++) {
        gd[i] = (uint64_t)dims[i];
        bx[i] = (unsigned)box[i];
        if (i > 0) {
            gs[i - 1] = (uint64_t)(strides[i] < 1 ? 1 : strides[i]) * es;
            if (gs[i - 1] % 16)
                return tir_diag_set(d, TIR_ERR_UNSUPPORTED, NULL, (tir_loc){0, 0},
                                    "tensor map: stride %d is %llu bytes, not a multiple of 16", i,
                                    (unsigned long long)gs[i - 1]);
        }
    }
    if (base % 16)
        return tir_diag_set(d, TIR_ERR_UNSUPPORTED, NULL, (tir_loc){0, 0},
                            "tensor map: base address not 16-byte aligned");
    /* L2 promotion of 256 bytes, out-of-range elements read as zeros */
    CU(rt, TensorMapEncodeTiled(map, cdt, (unsigned)rank, (void *)(uintptr_t)base, gd, gs, bx,
                                one, 0, sw, 3, 0),
       d);
    return TIR_OK;
}

/* ---------------------------------------------------------------- streams and copies */

tir_status tir_rt_stream_new(tir_rt *rt, tir_rt_stream *out, tir_diag *d) {
    CUstream s = NULL;
    CU(rt, StreamCreate(&s, CU_STREAM_NON_BLOCKING), d);
    *out = s;
    return TIR_OK;
}

void tir_rt_stream_free(tir_rt *rt, tir_rt_stream s) {
    if (!rt || !s) return;
    if (enter(rt, NULL) != TIR_OK) return;
    rt->cu.StreamSynchronize(s);
    rt->cu.StreamDestroy(s);
}

tir_status tir_rt_sync(tir_rt *rt, tir_rt_stream s, tir_diag *d) {
    CU(rt, StreamSynchronize(stream_of(rt, s)), d);
    return TIR_OK;
}

tir_status tir_rt_htod(tir_rt *rt, tir_dptr dst, const void *src, size_t n, tir_rt_stream s,
                       tir_diag *d) {
    if (n) CU(rt, MemcpyHtoDAsync(dst, src, n, stream_of(rt, s)), d);
    return TIR_OK;
}

tir_status tir_rt_dtoh(tir_rt *rt, void *dst, tir_dptr src, size_t n, tir_rt_stream s,
                       tir_diag *d) {
    if (n) CU(rt, MemcpyDtoHAsync(dst, src, n, stream_of(rt, s)), d);
    return TIR_OK;
}

tir_status tir_rt_dtod(tir_rt *rt, tir_dptr dst, tir_dptr src, size_t n, tir_rt_stream s,
                       tir_diag *d) {
    if (n) CU(rt, MemcpyDtoDAsync(dst, src, n, stream_of(rt, s)), d);
    return TIR_OK;
}

tir_status tir_rt_memset8(tir_rt *rt, tir_dptr dst, unsigned char v, size_t n, tir_rt_stream s,
                          tir_diag *d) {
    if (n) CU(rt, MemsetD8Async(dst, v, n, stream_of(rt, s)), d);
    return TIR_OK;
}

/* ---------------------------------------------------------------- kernels */

/* the logs' text, trimmed of trailing newlines, for one line of a diagnostic */
static void trim(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' ')) s[--n] = 0;
}

tir_status tir_rt_load(tir_rt *rt, const char *ptx, const char *name, int dyn_shared,
                       tir_rt_kernel *out, tir_diag *d) {
    memset(out, 0, sizeof *out);
    if (!ptx)
        return tir_diag_set(d, TIR_ERR_INTERNAL, NULL, (tir_loc){0, 0}, "kernel %s has no PTX",
                            name);
    char err_log[4096] = "", info_log[4096] = "";
    int opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
                  CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES};
    void *vals[] = {err_log, (void *)(uintptr_t)sizeof err_log, info_log,
                    (void *)(uintptr_t)sizeof info_log};
    CUmodule mod = NULL;
    CUresult r = rt->cu.ModuleLoadDataEx(&mod, ptx, 4, opts, vals);
    if (r != CUDA_SUCCESS) {
        char what[160];
        snprintf(what, sizeof what, "cuModuleLoadDataEx(kernel %s)", name);
        cu_fail(rt, r, __FILE__, __LINE__, what, d);
        trim(err_log);
        trim(info_log);
        if (d && (err_log[0] || info_log[0])) {
            size_t len = strlen(d->msg);
            snprintf(d->msg + len, sizeof d->msg - len, "; JIT log: %s%s%s", err_log,
                     err_log[0] && info_log[0] ? " | " : "", info_log);
        }
        return d ? d->status : TIR_ERR_CUDA;
    }
    out->module = mod;
    CUfunction f = NULL;
    tir_status s = TIR_OK;
    CUresult rf = rt->cu.ModuleGetFunction(&f, mod, name);
    if (rf != CUDA_SUCCESS) {
        char what[160];
        snprintf(what, sizeof what, "cuModuleGetFunction(%s)", name);
        s = cu_fail(rt, rf, __FILE__, __LINE__, what, d);
        goto fail;
    }
    out->func = f;
    static const struct {
        int attr;
        size_t off;
    } attrs[] = {
        {CU_FUNC_ATTRIBUTE_NUM_REGS, offsetof(tir_rt_kernel, regs)},
        {CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, offsetof(tir_rt_kernel, local_bytes)},
        {CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, offsetof(tir_rt_kernel, static_shared)},
        {CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, offsetof(tir_rt_kernel, max_threads)},
    };
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
        int v = 0;
        CUresult ra = rt->cu.FuncGetAttribute(&v, attrs[i].attr, f);
        if (ra != CUDA_SUCCESS) {
            s = cu_fail(rt, ra, __FILE__, __LINE__, "cuFuncGetAttribute", d);
            goto fail;
        }
        memcpy((char *)out + attrs[i].off, &v, sizeof v);
    }
    if (dyn_shared > 48 * 1024) {
        if (dyn_shared + out->static_shared > rt->smem_optin) {
            s = tir_diag_set(d, TIR_ERR_UNSUPPORTED, NULL, (tir_loc){0, 0},
                             "kernel %s wants %d bytes of shared memory; the device allows %d",
                             name, dyn_shared + out->static_shared, rt->smem_optin);
            goto fail;
        }
        CUresult rs =
            rt->cu.FuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, dyn_shared);
        if (rs != CUDA_SUCCESS) {
            s = cu_fail(rt, rs, __FILE__, __LINE__,
                        "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)", d);
            goto fail;
        }
    }
    return TIR_OK;
fail:
    rt->cu.ModuleUnload(mod);
    memset(out, 0, sizeof *out);
    return s;
}

void tir_rt_unload(tir_rt *rt, tir_rt_kernel *k) {
    if (!rt || !k || !k->module) return;
    if (enter(rt, NULL) == TIR_OK) rt->cu.ModuleUnload(k->module);
    memset(k, 0, sizeof *k);
}

tir_status tir_rt_launch(tir_rt *rt, const tir_rt_kernel *k, const char *name,
                         const unsigned grid[3], const int block[3], int dyn_shared,
                         void **params, tir_rt_stream s, tir_diag *d) {
    CUresult r = rt->cu.LaunchKernel(k->func, grid[0], grid[1], grid[2], (unsigned)block[0],
                                     (unsigned)block[1], (unsigned)block[2], (unsigned)dyn_shared,
                                     stream_of(rt, s), params, NULL);
    if (r != CUDA_SUCCESS) {
        char what[256];
        snprintf(what, sizeof what, "cuLaunchKernel(%s, grid %ux%ux%u, block %dx%dx%d, smem %d)",
                 name, grid[0], grid[1], grid[2], block[0], block[1], block[2], dyn_shared);
        return cu_fail(rt, r, __FILE__, __LINE__, what, d);
    }
    return TIR_OK;
}

/* ---------------------------------------------------------------- events */

tir_status tir_rt_event_new(tir_rt *rt, tir_rt_event *out, tir_diag *d) {
    CUevent e = NULL;
    CU(rt, EventCreate(&e, CU_EVENT_DEFAULT), d);
    *out = e;
    return TIR_OK;
}

void tir_rt_event_free(tir_rt *rt, tir_rt_event e) {
    if (rt && e && enter(rt, NULL) == TIR_OK) rt->cu.EventDestroy(e);
}

tir_status tir_rt_event_record(tir_rt *rt, tir_rt_event e, tir_rt_stream s, tir_diag *d) {
    CU(rt, EventRecord(e, stream_of(rt, s)), d);
    return TIR_OK;
}

tir_status tir_rt_event_ms(tir_rt *rt, tir_rt_event start, tir_rt_event end, float *ms,
                           tir_diag *d) {
    CU(rt, EventSynchronize(end), d);
    CU(rt, EventElapsedTime(ms, start, end), d);
    return TIR_OK;
}
