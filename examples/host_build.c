/* host_build.c: build examples/rmsnorm.tir's @rmsnorm from C through the builder API instead of
 * text, print it (valid .tir, re-parsed here to prove it), run it on the reference interpreter,
 * and check the result against the same arithmetic written directly in C.
 *
 *   rmsnorm(x: bf16[N, H], w: bf16[H]) -> bf16[N, H]
 *     = bf16( f32(x) * rsqrt(mean(f32(x)^2, over H) + 1e-6) * f32(w) )
 *
 * Exits 0 when every element agrees to within one bf16 ulp. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tir.h"

static tir_value *cast(tir_builder *b, tir_value *v, tir_dtype to) {
    tir_attr a = {.name = "dtype", .kind = TIR_ATTR_DTYPE, .u.dtype = to};
    return tir_build_op(b, "cast", 1, &v, 1, &a);
}

static tir_value *bin(tir_builder *b, const char *op, tir_value *x, tir_value *y) {
    tir_value *in[2] = {x, y};
    return tir_build_op(b, op, 2, in, 0, NULL);
}

static tir_value *un(tir_builder *b, const char *op, tir_value *x) {
    return tir_build_op(b, op, 1, &x, 0, NULL);
}

static tir_status build_rmsnorm(tir_module *m, tir_diag *d) {
    tir_builder *b = tir_builder_begin(m, "rmsnorm");
    const char *xdims[] = {"N", "H"}, *wdims[] = {"H"};
    tir_value *x = tir_build_param(b, "x", TIR_BF16, 2, xdims);
    tir_value *w = tir_build_param(b, "w", TIR_BF16, 1, wdims);
    tir_value *xf = cast(b, x, TIR_F32);
    if (xf) tir_value_set_name(xf, "xf");
    const int64_t last[] = {-1};
    tir_attr red[] = {
        {.name = "axes", .kind = TIR_ATTR_INTS, .u.ints = {1, last}},
        {.name = "keepdim", .kind = TIR_ATTR_BOOL, .u.b = true},
    };
    tir_value *sq = bin(b, "mul", xf, xf);
    tir_value *ms = tir_build_op(b, "mean", 1, &sq, 2, red);
    if (ms) tir_value_set_name(ms, "ms");
    tir_value *inv = un(b, "rsqrt", bin(b, "add", ms, tir_build_const(b, 1e-6, TIR_F32)));
    tir_value *y = bin(b, "mul", bin(b, "mul", xf, inv), cast(b, w, TIR_F32));
    if (y) tir_value_set_name(y, "y");
    tir_value *o = cast(b, y, TIR_BF16);
    if (o) tir_value_set_name(o, "o");
    /* any error above (NULL values) is reported here, once */
    return tir_builder_finish(b, 1, &o, d);
}

/* what the interpreter must compute: f32 per op, bf16 at the end (rounded through a bf16 tensor) */
static double reference(const tir_tensor *x, const tir_tensor *w, int64_t i, int64_t j, int64_t h) {
    float ss = 0;
    for (int64_t k = 0; k < h; k++) {
        float v = (float)tir_tensor_get(x, i * h + k);
        ss += v * v;
    }
    float ms = ss / (float)h;
    float inv = 1.0f / sqrtf(ms + 1e-6f);
    return (float)tir_tensor_get(x, i * h + j) * inv * (float)tir_tensor_get(w, j);
}

int main(void) {
    int rc = 1;
    tir_context *ctx = tir_context_create();
    tir_module *m = tir_module_new(ctx), *m2 = NULL;
    tir_tensor *x = NULL, *w = NULL, *out[1] = {NULL};
    char *text = NULL;
    tir_diag d;
    if (!ctx || !m) goto done;
    if (build_rmsnorm(m, &d) != TIR_OK) {
        tir_diag_print(&d, stderr);
        goto done;
    }
    if (!(text = tir_module_print(m))) goto done;
    fputs(text, stdout);
    if (tir_module_parse(ctx, text, "built.tir", &m2, &d) != TIR_OK) {
        fputs("the printed module does not parse:\n", stderr);
        tir_diag_print(&d, stderr);
        goto done;
    }

    enum { N = 3, H = 64 };
    int64_t xdims[2] = {N, H}, wdims[1] = {H};
    x = tir_tensor_new(TIR_BF16, 2, xdims);
    w = tir_tensor_new(TIR_BF16, 1, wdims);
    if (!x || !w) goto done;
    for (int64_t i = 0; i < N * H; i++) tir_tensor_set(x, i, sin(0.7 * (double)i + 0.3) * (1 + i % 5));
    for (int64_t j = 0; j < H; j++) tir_tensor_set(w, j, 0.5 + 0.01 * (double)j);
    tir_tensor *args[2] = {x, w};
    if (tir_interpret(m, "rmsnorm", 2, args, 1, out, &d) != TIR_OK) {
        tir_diag_print(&d, stderr);
        goto done;
    }
    if (tir_tensor_dtype(out[0]) != TIR_BF16 || tir_tensor_rank(out[0]) != 2 ||
        tir_tensor_dim(out[0], 0) != N || tir_tensor_dim(out[0], 1) != H) {
        fputs("rmsnorm: wrong result type\n", stderr);
        goto done;
    }
    /* the C result rounded to bf16 through a one-element tensor, like the program's last cast;
     * f32 sums in a different order may move a value across a rounding boundary: one bf16 ulp */
    int64_t one = 1;
    tir_tensor *r = tir_tensor_new(TIR_BF16, 1, &one);
    if (!r) goto done;
    int exact = 0;
    double err2 = 0, ref2 = 0;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < H; j++) {
            tir_tensor_set(r, 0, reference(x, w, i, j, H));
            double want = tir_tensor_get(r, 0), got = tir_tensor_get(out[0], i * H + j);
            double e = fabs(got - want);
            if (!(e <= ldexp(1.0, ilogb(want) - 7))) { /* NaN never passes */
                fprintf(stderr, "rmsnorm[%lld, %lld] = %g, want %g\n", (long long)i, (long long)j, got, want);
                tir_tensor_free(r);
                goto done;
            }
            exact += e == 0;
            err2 += e * e;
            ref2 += want * want;
        }
    tir_tensor_free(r);
    printf("# rmsnorm on the interpreter matches C: %d of %d elements exact, relative error %.3g\n", exact,
           N * H, sqrt(err2 / ref2));
    rc = 0;
done:
    tir_tensor_free(out[0]);
    tir_tensor_free(x);
    tir_tensor_free(w);
    tir_free(text);
    if (m2) tir_module_free(m2);
    if (m) tir_module_free(m);
    if (ctx) tir_context_destroy(ctx);
    return rc;
}
