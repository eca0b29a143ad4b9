/* cublas.c: row-major batched matmul through cuBLASLt, loaded with dlopen (see cublas.h).
 *
 * The few cuBLASLt types and enum values used are declared here rather than taken from
 * cublasLt.h: the build must not depend on the toolkit, and these values are ABI (cublasLt.h of
 * CUDA 13: cublasLtMatmulDescAttributes_t, cublasLtMatrixLayoutAttribute_t,
 * cublasLtMatmulPreferenceAttributes_t, cublasLtEpilogue_t, cudaDataType, cublasComputeType_t).
 *
 * Row-major to column-major: a row-major R x C matrix with row stride ld is, read column-major,
 * its transpose (C x R, leading dimension ld). So for C = op(A)·op(B) (row-major, m x n) we ask
 * cuBLASLt for Cᵀ (n x m) = op'(B_stored) · op'(A_stored): the stored B read column-major is Bᵀ
 * when it is [k, n] (no transpose needed) and B when it is [n, k] (transpose), likewise for A. The
 * bias, a vector over cuBLASLt's rows, is then a vector over tir's columns, as linear's is. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "cublas.h"

typedef int cublasStatus_t;
typedef void *cublasLtHandle_t, *cublasLtMatmulDesc_t, *cublasLtMatrixLayout_t,
    *cublasLtMatmulPreference_t;
typedef struct {
    uint64_t data[8];
} cublasLtMatmulAlgo_t;
typedef struct {
    cublasLtMatmulAlgo_t algo;
    size_t workspaceSize;
    cublasStatus_t state;
    float wavesCount;
    int reserved[4];
} cublasLtMatmulHeuristicResult_t;

enum { CUBLAS_STATUS_SUCCESS = 0 };
enum { CUDA_R_32F = 0, CUDA_R_16F = 2, CUDA_R_16BF = 14 };           /* cudaDataType */
enum { CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_FAST_TF32 = 77 }; /* cublasComputeType_t */
enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
enum { /* cublasLtMatmulDescAttributes_t */
    DESC_TRANSA = 3,            /* int32 */
    DESC_TRANSB = 4,            /* int32 */
    DESC_EPILOGUE = 7,          /* uint32 */
    DESC_BIAS_POINTER = 8,      /* void * */
    DESC_BIAS_DATA_TYPE = 26,   /* int32 */
};
enum { /* cublasLtMatrixLayoutAttribute_t */
    LAYOUT_BATCH_COUNT = 5,            /* int32 */
    LAYOUT_STRIDED_BATCH_OFFSET = 6,   /* int64 */
};
enum { /* cublasLtMatmulPreferenceAttributes_t */
    PREF_MAX_WORKSPACE_BYTES = 1, /* uint64 */
    PREF_MIN_ALIGNMENT_A_BYTES = 5, PREF_MIN_ALIGNMENT_B_BYTES = 6,
    PREF_MIN_ALIGNMENT_C_BYTES = 7, PREF_MIN_ALIGNMENT_D_BYTES = 8, /* uint32 */
};
enum { /* cublasLtEpilogue_t */
    EPILOGUE_DEFAULT = 1, EPILOGUE_RELU = 2, EPILOGUE_BIAS = 4, EPILOGUE_GELU = 32,
};

typedef struct lt_api {
    cublasStatus_t (*Create)(cublasLtHandle_t *h);
    cublasStatus_t (*Destroy)(cublasLtHandle_t h);
    size_t (*GetVersion)(void);
    const char *(*GetStatusString)(cublasStatus_t s);
    cublasStatus_t (*MatmulDescCreate)(cublasLtMatmulDesc_t *d, int compute, int scale);
    cublasStatus_t (*MatmulDescDestroy)(cublasLtMatmulDesc_t d);
    cublasStatus_t (*MatmulDescSetAttribute)(cublasLtMatmulDesc_t d, int attr, const void *buf,
                                             size_t n);
    cublasStatus_t (*MatrixLayoutCreate)(cublasLtMatrixLayout_t *l, int type, uint64_t rows,
                                         uint64_t cols, int64_t ld);
    cublasStatus_t (*MatrixLayoutDestroy)(cublasLtMatrixLayout_t l);
    cublasStatus_t (*MatrixLayoutSetAttribute)(cublasLtMatrixLayout_t l, int attr, const void *buf,
                                               size_t n);
    cublasStatus_t (*MatmulPreferenceCreate)(cublasLtMatmulPreference_t *p);
    cublasStatus_t (*MatmulPreferenceDestroy)(cublasLtMatmulPreference_t p);
    cublasStatus_t (*MatmulPreferenceSetAttribute)(cublasLtMatmulPreference_t p, int attr,
                                                   const void *buf, size_t n);
    cublasStatus_t (*MatmulAlgoGetHeuristic)(cublasLtHandle_t h, cublasLtMatmulDesc_t op,
                                             cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                             cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t dd,
                                             cublasLtMatmulPreference_t pref, int requested,
                                             cublasLtMatmulHeuristicResult_t *results, int *count);
    cublasStatus_t (*Matmul)(cublasLtHandle_t h, cublasLtMatmulDesc_t op, const void *alpha,
                             const void *a, cublasLtMatrixLayout_t adesc, const void *b,
                             cublasLtMatrixLayout_t bdesc, const void *beta, const void *c,
                             cublasLtMatrixLayout_t cdesc, void *dd, cublasLtMatrixLayout_t ddesc,
                             const cublasLtMatmulAlgo_t *algo, void *workspace, size_t wsbytes,
                             void *stream);
} lt_api;

static const struct {
    size_t off;
    const char *name;
} lt_syms[] = {
#define S(field, name) {offsetof(lt_api, field), name}
    S(Create, "cublasLtCreate"),
    S(Destroy, "cublasLtDestroy"),
    S(GetVersion, "cublasLtGetVersion"),
    S(GetStatusString, "cublasLtGetStatusString"),
    S(MatmulDescCreate, "cublasLtMatmulDescCreate"),
    S(MatmulDescDestroy, "cublasLtMatmulDescDestroy"),
    S(MatmulDescSetAttribute, "cublasLtMatmulDescSetAttribute"),
    S(MatrixLayoutCreate, "cublasLtMatrixLayoutCreate"),
    S(MatrixLayoutDestroy, "cublasLtMatrixLayoutDestroy"),
    S(MatrixLayoutSetAttribute, "cublasLtMatrixLayoutSetAttribute"),
    S(MatmulPreferenceCreate, "cublasLtMatmulPreferenceCreate"),
    S(MatmulPreferenceDestroy, "cublasLtMatmulPreferenceDestroy"),
    S(MatmulPreferenceSetAttribute, "cublasLtMatmulPreferenceSetAttribute"),
    S(MatmulAlgoGetHeuristic, "cublasLtMatmulAlgoGetHeuristic"),
    S(Matmul, "cublasLtMatmul"),
#undef S
};

/* The library is loaded once per process and stays loaded: unloading a library that carries its
 * own CUDA runtime while contexts may still exist is not worth the risk. */
static pthread_mutex_t lib_lock = PTHREAD_MUTEX_INITIALIZER;
static void *lib;
static lt_api api;
static char lib_err[512];

static bool load_lib(void) {
    pthread_mutex_lock(&lib_lock);
    if (!lib) {
        /* $TIR_CUBLASLT_LIB, when set, is the only candidate */
        const char *env = getenv("TIR_CUBLASLT_LIB");
        bool only_env = env && *env;
        const char *names[] = {only_env ? env : NULL,
                               only_env ? NULL : "libcublasLt.so.13",
                               only_env ? NULL : "libcublasLt.so",
                               only_env ? NULL : "/usr/local/cuda/lib64/libcublasLt.so.13",
                               only_env ? NULL : "/usr/local/cuda/lib64/libcublasLt.so"};
        const char *first_err = NULL;
        char errbuf[256] = "";
        for (size_t i = 0; i < sizeof names / sizeof *names && !lib; i++) {
            if (!names[i]) continue;
            lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
            if (!lib && !first_err) {
                first_err = dlerror();
                snprintf(errbuf, sizeof errbuf, "%s", first_err ? first_err : "?");
            }
        }
        if (!lib) {
            snprintf(lib_err, sizeof lib_err, "cuBLASLt not found (%s: %s); set "
                     "TIR_CUBLASLT_LIB to its path", only_env ? env : "libcublasLt.so.13", errbuf);
        } else {
            lib_err[0] = 0;
            for (size_t i = 0; i < sizeof lt_syms / sizeof *lt_syms; i++) {
                void *f = dlsym(lib, lt_syms[i].name);
                if (!f) {
                    snprintf(lib_err, sizeof lib_err, "cuBLASLt lacks %s", lt_syms[i].name);
                    dlclose(lib);
                    lib = NULL;
                    break;
                }
                memcpy((char *)&api + lt_syms[i].off, &f, sizeof f);
            }
        }
    }
    bool ok = lib != NULL;
    pthread_mutex_unlock(&lib_lock);
    return ok;
}

/* ---------------------------------------------------------------- handles and the algo cache */

typedef struct algo_key {
    int dtype, tf32, ta, tb, bias, epilogue;
    int64_t m, n, k, batch, lda, ldb, ldc, sa, sb, sc;
    uint32_t align[4];
    size_t ws;
} algo_key;

#define ALGO_CACHE 64

struct tir_cublas {
    cublasLtHandle_t h;
    char desc[64];
    struct {
        bool used;
        algo_key key;
        cublasLtMatmulAlgo_t algo;
    } cache[ALGO_CACHE];
    int next; /* round-robin replacement */
};

static tir_status fail(tir_diag *d, tir_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static tir_status fail(tir_diag *d, tir_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    tir_diag_vset(d, s, NULL, (tir_loc){0, 0}, fmt, ap);
    va_end(ap);
    return s;
}

static tir_status lt_fail(tir_diag *d, const char *call, cublasStatus_t st) {
    const char *msg = api.GetStatusString ? api.GetStatusString(st) : NULL;
    return fail(d, TIR_ERR_CUDA, "%s failed: %s (%d)", call, msg ? msg : "?", st);
}

tir_status tir_cublas_create(tir_rt *rt, tir_cublas **out, tir_diag *d) {
    *out = NULL;
    if (!load_lib()) return fail(d, TIR_ERR_UNSUPPORTED, "%s", lib_err);
    /* cuBLASLt needs a device and its context current (which tir_rt_get made so); without one,
     * cublasLtCreate fails and leaks, so it is not called */
    if (!rt) return fail(d, TIR_ERR_NO_DRIVER, "cuBLASLt needs the CUDA runtime (no device)");
    tir_cublas *cb = calloc(1, sizeof *cb);
    if (!cb) return fail(d, TIR_ERR_OOM, "out of host memory");
    cublasStatus_t st = api.Create(&cb->h);
    if (st != CUBLAS_STATUS_SUCCESS) {
        free(cb);
        return lt_fail(d, "cublasLtCreate", st);
    }
    snprintf(cb->desc, sizeof cb->desc, "cuBLASLt %zu", api.GetVersion());
    *out = cb;
    return TIR_OK;
}

void tir_cublas_destroy(tir_cublas *cb) {
    if (!cb) return;
    if (cb->h) api.Destroy(cb->h);
    free(cb);
}

const char *tir_cublas_describe(tir_cublas *cb) {
    if (cb) return cb->desc;
    return lib_err[0] ? lib_err : "cuBLASLt not loaded";
}

/* ---------------------------------------------------------------- matmul */

/* the largest power of two (<= 256) dividing the byte address and every batch step */
static uint32_t alignment(tir_dptr p, int64_t stride_elems, size_t esize, int64_t batch) {
    uint64_t x = p | 256;
    if (batch > 1 && stride_elems) x |= (uint64_t)stride_elems * esize;
    return (uint32_t)(x & (~x + 1));
}

typedef struct lt_call {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulPreference_t pref;
} lt_call;

static void lt_call_free(lt_call *c) {
    if (c->pref) api.MatmulPreferenceDestroy(c->pref);
    if (c->lc) api.MatrixLayoutDestroy(c->lc);
    if (c->lb) api.MatrixLayoutDestroy(c->lb);
    if (c->la) api.MatrixLayoutDestroy(c->la);
    if (c->op) api.MatmulDescDestroy(c->op);
}

#define LT(call, what)                                                                          \
    do {                                                                                        \
        cublasStatus_t st_ = (call);                                                            \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                     \
            s = lt_fail(d, what, st_);                                                          \
            goto done;                                                                          \
        }                                                                                       \
    } while (0)

/* a column-major rows x cols layout with leading dim ld, batched */
static cublasStatus_t layout(cublasLtMatrixLayout_t *l, int type, int64_t rows, int64_t cols,
                             int64_t ld, int64_t batch, int64_t stride) {
    cublasStatus_t st = api.MatrixLayoutCreate(l, type, (uint64_t)rows, (uint64_t)cols, ld);
    if (st != CUBLAS_STATUS_SUCCESS || batch == 1) return st;
    int32_t bc = (int32_t)batch;
    st = api.MatrixLayoutSetAttribute(*l, LAYOUT_BATCH_COUNT, &bc, sizeof bc);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    return api.MatrixLayoutSetAttribute(*l, LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride);
}

tir_status tir_cublas_matmul(tir_cublas *cb, void *stream, const tir_cublas_gemm *g, tir_diag *d) {
    if (!cb || !g) return fail(d, TIR_ERR_INVALID, "tir_cublas_matmul: no handle or no arguments");
    int type;
    size_t es;
    switch (g->dtype) {
    case TIR_BF16: type = CUDA_R_16BF; es = 2; break;
    case TIR_F16: type = CUDA_R_16F; es = 2; break;
    case TIR_F32: type = CUDA_R_32F; es = 4; break;
    default:
        return fail(d, TIR_ERR_UNSUPPORTED, "cuBLAS matmul: dtype %s (bf16, f16, f32 only)",
                    tir_dtype_name(g->dtype));
    }
    int64_t m = g->m, n = g->n, k = g->k, batch = g->batch;
    if (m < 0 || n < 0 || k < 0 || batch < 1)
        return fail(d, TIR_ERR_INVALID, "cuBLAS matmul: bad sizes m=%lld n=%lld k=%lld batch=%lld",
                    (long long)m, (long long)n, (long long)k, (long long)batch);
    if (m == 0 || n == 0) return TIR_OK;
    if (k == 0) return fail(d, TIR_ERR_UNSUPPORTED, "cuBLAS matmul: k = 0");
    if (batch > INT32_MAX || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
        return fail(d, TIR_ERR_UNSUPPORTED, "cuBLAS matmul: sizes beyond 2^31");
    int64_t lda = g->lda ? g->lda : (g->trans_a ? m : k);
    int64_t ldb = g->ldb ? g->ldb : (g->trans_b ? k : n);
    int64_t ldc = g->ldc ? g->ldc : n;
    if (lda < (g->trans_a ? m : k) || ldb < (g->trans_b ? k : n) || ldc < n)
        return fail(d, TIR_ERR_INVALID, "cuBLAS matmul: a leading dimension is too small");
    int64_t sa = g->stride_a, sb = g->stride_b, sc = g->stride_c ? g->stride_c : m * ldc;
    if (!g->a || !g->b || !g->c) return fail(d, TIR_ERR_INVALID, "cuBLAS matmul: null matrix");

    algo_key key;
    memset(&key, 0, sizeof key); /* padding too: keys are compared with memcmp */
    key.dtype = g->dtype;
    key.tf32 = g->dtype == TIR_F32 && g->allow_tf32;
    key.ta = g->trans_a;
    key.tb = g->trans_b;
    key.bias = g->bias != 0;
    key.epilogue = g->epilogue;
    key.m = m, key.n = n, key.k = k, key.batch = batch;
    key.lda = lda, key.ldb = ldb, key.ldc = ldc, key.sa = sa, key.sb = sb, key.sc = sc;
    key.align[0] = alignment(g->a, sa, es, batch);
    key.align[1] = alignment(g->b, sb, es, batch);
    key.align[2] = key.align[3] = alignment(g->c, sc, es, batch);
    key.ws = g->workspace ? g->workspace_bytes : 0;

    uint32_t epi; /* cublasLtEpilogue_t: flags, RELU|BIAS, GELU|BIAS */
    switch (g->epilogue) {
    case TIR_CUBLAS_EPI_NONE: epi = 0; break;
    case TIR_CUBLAS_EPI_RELU: epi = EPILOGUE_RELU; break;
    case TIR_CUBLAS_EPI_GELU: epi = EPILOGUE_GELU; break;
    default: return fail(d, TIR_ERR_INVALID, "cuBLAS matmul: bad epilogue %d", (int)g->epilogue);
    }
    if (g->bias) epi |= EPILOGUE_BIAS;
    if (!epi) epi = EPILOGUE_DEFAULT;

    tir_status s = TIR_OK;
    lt_call c;
    memset(&c, 0, sizeof c);
    /* column-major view: D (n x m) = op(X) (n x k) · op(Y) (k x m), X = B's storage, Y = A's */
    int opx = g->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, opy = g->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    int compute = key.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    LT(api.MatmulDescCreate(&c.op, compute, CUDA_R_32F), "cublasLtMatmulDescCreate");
    int32_t v = opx;
    LT(api.MatmulDescSetAttribute(c.op, DESC_TRANSA, &v, sizeof v), "cublasLtMatmulDescSetAttribute(TRANSA)");
    v = opy;
    LT(api.MatmulDescSetAttribute(c.op, DESC_TRANSB, &v, sizeof v), "cublasLtMatmulDescSetAttribute(TRANSB)");
    if (epi != EPILOGUE_DEFAULT)
        LT(api.MatmulDescSetAttribute(c.op, DESC_EPILOGUE, &epi, sizeof epi),
           "cublasLtMatmulDescSetAttribute(EPILOGUE)");
    if (g->bias) {
        const void *bp = (const void *)(uintptr_t)g->bias;
        LT(api.MatmulDescSetAttribute(c.op, DESC_BIAS_POINTER, &bp, sizeof bp),
           "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
        int32_t bt = type;
        LT(api.MatmulDescSetAttribute(c.op, DESC_BIAS_DATA_TYPE, &bt, sizeof bt),
           "cublasLtMatmulDescSetAttribute(BIAS_DATA_TYPE)");
    }
    /* stored B read column-major: [k, n] row-major is n x k (ld ldb); [n, k] is k x n */
    LT(layout(&c.la, type, g->trans_b ? k : n, g->trans_b ? n : k, ldb, batch, sb),
       "cublasLtMatrixLayoutCreate(B)");
    LT(layout(&c.lb, type, g->trans_a ? m : k, g->trans_a ? k : m, lda, batch, sa),
       "cublasLtMatrixLayoutCreate(A)");
    LT(layout(&c.lc, type, n, m, ldc, batch, sc), "cublasLtMatrixLayoutCreate(C)");

    int slot = -1;
    for (int i = 0; i < ALGO_CACHE; i++)
        if (cb->cache[i].used && memcmp(&cb->cache[i].key, &key, sizeof key) == 0) slot = i;
    if (slot < 0) {
        LT(api.MatmulPreferenceCreate(&c.pref), "cublasLtMatmulPreferenceCreate");
        uint64_t ws = key.ws;
        LT(api.MatmulPreferenceSetAttribute(c.pref, PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
           "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)");
        /* cuBLASLt's matrix A is tir's B (and B is A) */
        uint32_t al[4] = {key.align[1], key.align[0], key.align[2], key.align[3]};
        static const int pa[4] = {PREF_MIN_ALIGNMENT_A_BYTES, PREF_MIN_ALIGNMENT_B_BYTES,
                                  PREF_MIN_ALIGNMENT_C_BYTES, PREF_MIN_ALIGNMENT_D_BYTES};
        for (int i = 0; i < 4; i++)
            LT(api.MatmulPreferenceSetAttribute(c.pref, pa[i], &al[i], sizeof al[i]),
               "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT)");
        cublasLtMatmulHeuristicResult_t res;
        memset(&res, 0, sizeof res);
        int count = 0;
        LT(api.MatmulAlgoGetHeuristic(cb->h, c.op, c.la, c.lb, c.lc, c.lc, c.pref, 1, &res, &count),
           "cublasLtMatmulAlgoGetHeuristic");
        if (count < 1 || res.state != CUBLAS_STATUS_SUCCESS) {
            s = fail(d, TIR_ERR_UNSUPPORTED,
                     "cuBLASLt has no algorithm for %s matmul m=%lld n=%lld k=%lld batch=%lld",
                     tir_dtype_name(g->dtype), (long long)m, (long long)n, (long long)k,
                     (long long)batch);
            goto done;
        }
        slot = cb->next;
        cb->next = (cb->next + 1) % ALGO_CACHE;
        cb->cache[slot].used = true;
        cb->cache[slot].key = key;
        cb->cache[slot].algo = res.algo;
    }
    {
        const float alpha = g->scale != 0 ? g->scale : 1.0f, beta = 0.0f;
        void *pb = (void *)(uintptr_t)g->b, *pa = (void *)(uintptr_t)g->a, *pc = (void *)(uintptr_t)g->c;
        LT(api.Matmul(cb->h, c.op, &alpha, pb, c.la, pa, c.lb, &beta, pc, c.lc, pc, c.lc,
                      &cb->cache[slot].algo, (void *)(uintptr_t)g->workspace, key.ws, stream),
           "cublasLtMatmul");
    }
done:
    lt_call_free(&c);
    return s;
}
