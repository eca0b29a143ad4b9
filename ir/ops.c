/* ops.c: the op table instance (from ops.def), name lookup, and the scalar functions that the
 * scalar column of ops.def names. */
#include "ir.h"

const tir_opinfo tir_ops[TIR_OP_COUNT] = {
#define X(id, nm, min_in, max_in, nout, flags, attrs, scalar) \
    [TIR_OP_##id] = {nm, min_in, max_in, nout, flags, attrs},
#include "ops.def"
#undef X
};

bool tir_op_lookup(const char *name, size_t n, tir_opcode *out) {
    for (int i = 0; i < TIR_OP_COUNT; i++)
        if (strlen(tir_ops[i].name) == n && memcmp(tir_ops[i].name, name, n) == 0) {
            *out = (tir_opcode)i;
            return true;
        }
    return false;
}

double tir_scalar_div(double a, double b, tir_dtype dt) {
    if (tir_dtype_is_int(dt) || dt == TIR_BOOL) return b == 0 ? 0 : trunc(a / b);
    return a / b;
}

double tir_scalar_gelu(double a, const tir_op *op) {
    const char *ap = op ? tir_attr_str(op, "approximate", "none") : "none";
    if (strcmp(ap, "tanh") == 0)
        return 0.5 * a * (1.0 + tanh(0.7978845608028654 * (a + 0.044715 * a * a * a)));
    return 0.5 * a * (1.0 + erf(a * 0.7071067811865476));
}

double tir_scalar_eval(const tir_op *op, tir_dtype dt, double a, double b, double c) {
    (void)b;
    (void)c;
    (void)dt;
    switch (op->code) {
#define X(id, nm, min_in, max_in, nout, flags, attrs, scalar) \
    case TIR_OP_##id: return (scalar);
#include "ops.def"
#undef X
    default: return NAN;
    }
}
