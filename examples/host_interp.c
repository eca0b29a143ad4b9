/* host_interp.c: the program in tir.h's opening comment, kept runnable: parse a .tir program from a
 * string, run it on the reference interpreter, print the result (3 5 7 9 for a=2, x=i, y=1). */
#include <stdio.h>
#include "tir.h"
int main(void) {
    const char *src =
        "func @axpy(%a: f32[], %x: f32[N], %y: f32[N]) -> f32[N] {\n"
        "  %r = add(mul(%a, %x), %y)\n"
        "  return %r\n"
        "}\n";
    tir_context *ctx = tir_context_create();
    tir_module *m = NULL;
    tir_diag d;
    if (tir_module_parse(ctx, src, "axpy.tir", &m, &d) != TIR_OK) {
        tir_diag_print(&d, stderr);
        return 1;
    }
    int64_t n = 4;
    tir_tensor *a = tir_tensor_new(TIR_F32, 0, NULL);
    tir_tensor *x = tir_tensor_new(TIR_F32, 1, &n), *y = tir_tensor_new(TIR_F32, 1, &n);
    *(float *)tir_tensor_data(a) = 2.0f;
    for (int i = 0; i < 4; i++) {
        ((float *)tir_tensor_data(x))[i] = (float)i;
        ((float *)tir_tensor_data(y))[i] = 1.0f;
    }
    tir_tensor *args[] = {a, x, y}, *out[1] = {NULL};
    if (tir_interpret(m, "axpy", 3, args, 1, out, &d) != TIR_OK) {
        tir_diag_print(&d, stderr);
        return 1;
    }
    for (int i = 0; i < 4; i++) printf("%g\n", ((float *)tir_tensor_data(out[0]))[i]);
    tir_tensor_free(out[0]); tir_tensor_free(a); tir_tensor_free(x); tir_tensor_free(y);
    tir_module_free(m);
    tir_context_destroy(ctx);
    return 0;
}
