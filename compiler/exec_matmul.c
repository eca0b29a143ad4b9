/* exec_matmul.c: choosing the executor of each matmul step, tir's own kernel or cuBLASLt, and
 * running a step on cuBLASLt (see exec_matmul.h).
 *
 * What a step is. A plain `matmul`, or a fused region with schedule kind="matmul" whose body is a
 * matmul of two region parameters (or of their widenings to f32, below) followed by a chain of
 * elementwise ops ending in its one result. cuBLASLt runs the region whole when the chain is
 * what its epilogue computes: optional casts to f32 and back, multiplications or divisions by a scalar constant (Lt's alpha), then
 * `add` of a bias (a parameter shaped [N], or [1, .., N], of the matmul's dtype: Lt's bias is
 * per output column), then relu or gelu(approximate="tanh") (Lt's GELU is the tanh form). Any other epilogue (a residual add, silu, erf-gelu, a scale, a cast to
 * another dtype) keeps tir's fused kernel: cuBLAS for the matmul and the epilogue as a second
 * kernel would write the output and read it back, a round trip the fused kernel saves, so the
 * choice string says "tir fused kernel (matmul=cublas: epilogue silu has no cuBLASLt form)".
 * Batch dims: Lt expresses a strided batch where each operand is either batched exactly like
 * the output or one matrix for all (stride 0); a partial broadcast ([B, 1] against [1, C]) stays
 * with tir. dtypes: bf16, f16, f32 (f64 stays with tir).
 *
 * Widened regions. A bf16/f16 `linear` decomposes to an f32 matmul of cast(x, dtype=f32) and
 * cast(w, dtype=f32), and the tile pass puts those casts in the region. Such a region is a
 * 16-bit GEMM whose f32 accumulator is the matmul's result: to cuBLASLt, A and B are the 16-bit
 * parameters the casts read (the site's dtype is theirs), and when the chain ends in a cast back
 * to that dtype, Lt's 16-bit GEMM with its epilogue computes the same thing (f32 compute, bias
 * and activation in f32, one rounding at the output), so the region goes to Lt like any other.
 * A widened region whose result stays f32 keeps tir's kernel ("the region's result is not the
 * epilogue's end in bf16"): runtime/cublas.c's calls take one dtype for A, B and C.
 *
 * The rules (tir_mm_decide):
 *   - matmul=tir: tir's kernel, always.
 *   - matmul=cublas: cuBLASLt for every step it can express; where it can't (above, or at run
 *     time K = 0, a size beyond 2^31, or no algorithm from Lt's heuristic), tir's kernel with
 *     the reason. No cuBLASLt library at run time: TIR_ERR_UNSUPPORTED (the user asked for it).
 *   - matmul=auto: by the model below, per step and per binding; no cuBLASLt library: tir,
 *     silently (the choice string says why).
 *   - f32: cuBLASLt in full f32 (CUBLAS_COMPUTE_32F) unless allow_tf32, then
 *     CUBLAS_COMPUTE_32F_FAST_TF32; tir's SIMT kernel is always full f32.
 *
 * When it is decided: at the first run of each binding, and remembered while the sizes repeat.
 * Sizes are symbolic at compile time and what matters to the model is known only under a
 * binding: whether each leading dim is a multiple of 16 bytes (cuBLAS is 5-7x slower on the
 * ragged shapes of RESULTS.md, tir's kernel falls back to guarded copies when an operand's row
 * is not) and the problem's size (fixed costs against FLOPs). Deciding costs a few float
 * operations, nothing next to a launch. When every size is a constant the compile-time choice
 * string is already the final one; otherwise it says "per binding" until a run decides.
 *
 * The model: time = fixed cost + FLOPs / rate, with rates from the shape class (dtype, TF32,
 * which leading dims are 16-byte aligned, B transposed); cuBLASLt is chosen when its time is
 * below tir's by the margin (close calls stay with tir: no library, no workspace, and the kernel
 * is inspectable). The constants are one table (tir_mm_model_default); rows measured on the H100
 * are marked so, the rest are estimates to replace with `bench_matmul` numbers. When tir's
 * kernel gets faster or slower, update tir_16 and the decisions follow.
 *
 * The cuBLASLt call runs on the program's stream with the step's buffers (allocated and
 * poisoned by compile.c as for any kernel, so timing events and the memory plan see no
 * difference) and a workspace from the caching allocator, given back right after the call is
 * enqueued: the stream orders any later use of that block after it. */
#include <math.h>
#include <stdio.h>

#include "exec_matmul.h"
#ifdef TIR_WITH_LLVM
#include "matmul_mma.h"
#endif

/* H100 80GB HBM3, cuBLASLt 13.1, benchmarks/RESULTS.md of 2026-11-22. The 16-bit rates of the
 * large aligned shapes, TFLOP/s, tir's TMA kernel vs cuBLASLt: 4096^3 769 vs 729, 8192^3 789 vs
 * 776, 8192x4096x14336 769 vs 790, 8192x2048x3072 730 vs 723, 8192x2048x2048 712 vs 676
 * (0.97-1.05x): within the margin, so `auto` keeps them on tir. */
const tir_mm_model tir_mm_model_default = {
    .device = "H100 80GB HBM3 (sm_90)",
    .cublas_16 = 739,          /* measured: the mean of the five shapes above (676-790) */
    .cublas_16_ragged_tb = 102, /* measured: 4001x4096 . 4096x4003, B transposed */
    .cublas_16_ragged = 157,   /* measured: 4095x4093 . 4093x4097 */
    .tir_16 = 754,             /* measured: the mean of the five shapes above (712-789) */
    .tir_16_guarded = 64,      /* measured: 4095x4093 . 4093x4097, the default tiling */
    .cublas_f32 = 50,          /* estimate: SGEMM at ~75% of the 67 TFLOP/s f32 peak */
    .cublas_tf32 = 350,        /* estimate: half the bf16 rate */
    .tir_f32 = 10,             /* estimate: codegen/matmul.c's SIMT kernel, not yet measured */
    .cublas_us = 5,            /* estimate: launch plus cuBLASLt's host work, algo cached */
    .tir_us = 5,               /* estimate: one launch */
    .margin = 0.05,
};

static void setf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void setf(char *buf, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(buf, n, fmt, ap) < 0 && n) buf[0] = 0;
    va_end(ap);
}

const char *tir_matmul_exec_name(tir_matmul_exec e) {
    switch (e) {
    case TIR_MATMUL_TIR: return "tir";
    case TIR_MATMUL_CUBLAS: return "cublas";
    default: return "auto";
    }
}

/* ---------------------------------------------------------------- reading the IR */

static bool is_one(const tir_dim *d) {
    int64_t v;
    return tir_dim_is_const(d, &v) && v == 1;
}

/* An operand's batch dims (all but its last two) against the output's: true when they are the
 * output's exactly (batched) or all 1 (one matrix for all); false when a stride can't say it. */
static bool batch_form(const tir_type *x, const tir_type *out, bool *batched) {
    int nx = x->rank - 2, no = out->rank - 2;
    bool all_one = true;
    for (int j = 0; j < nx; j++) all_one &= is_one(x->dims[j]);
    if (all_one) {
        *batched = false;
        return true;
    }
    *batched = true;
    for (int j = 0; j < no; j++) {
        int xj = j - (no - nx);
        const tir_dim *xd = xj >= 0 ? x->dims[xj] : NULL;
        if (xd ? xd != out->dims[j] : !is_one(out->dims[j])) return false;
    }
    return true;
}

static bool lt_dtype(tir_dtype dt) { return dt == TIR_BF16 || dt == TIR_F16 || dt == TIR_F32; }

/* the matmul's own part of the site: dims, transposes, batch; a and b are operand indexes */
static void read_matmul(const tir_op *mm, int a, int b, tir_mm_site *s) {
    const tir_type *ta = &mm->in[0]->type, *tb = &mm->in[1]->type, *to = &mm->out[0]->type;
    s->dtype = to->dtype;
    s->ta = tir_attr_bool(mm, "transpose_a", false);
    s->tb = tir_attr_bool(mm, "transpose_b", false);
    s->a = a;
    s->b = b;
    s->M = to->dims[to->rank - 2];
    s->N = to->dims[to->rank - 1];
    s->K = ta->dims[ta->rank - (s->ta ? 2 : 1)];
    s->nbatch = to->rank - 2;
    for (int j = 0; j < s->nbatch; j++) s->batch[j] = to->dims[j];
    s->lt_ok = true;
    if (!lt_dtype(s->dtype) || ta->dtype != s->dtype || tb->dtype != s->dtype) {
        s->lt_ok = false;
        setf(s->why, sizeof s->why, "%s has no cuBLASLt form here", tir_dtype_name(s->dtype));
    } else if (!batch_form(ta, to, &s->a_batched) || !batch_form(tb, to, &s->b_batched)) {
        s->lt_ok = false;
        setf(s->why, sizeof s->why, "batch broadcast no stride expresses");
    }
}

/* a bias for Lt: [N] or [1, .., 1, N] */
static bool bias_shaped(const tir_type *t, const tir_dim *N) {
    if (t->rank < 1 || t->dims[t->rank - 1] != N) return false;
    for (int j = 0; j < t->rank - 1; j++)
        if (!is_one(t->dims[j])) return false;
    return true;
}

/* a constant scalar (full of rank 0 or all-1 dims): its value */
static bool scalar_const(const tir_value *v, double *out) {
    if (!v->def || v->def->code != TIR_OP_FULL) return false;
    for (int j = 0; j < v->type.rank; j++)
        if (!is_one(v->type.dims[j])) return false;
    *out = tir_dtype_round(v->type.dtype, tir_attr_float(v->def, "value", 0.0)); /* as it runs */
    return true;
}

/* v = cast(p, dtype=f32) of a bf16/f16 region parameter p: p, else NULL */
static const tir_value *widened_param(const tir_value *v) {
    const tir_op *c = v->def;
    if (!c || c->code != TIR_OP_CAST || c->in[0]->def || v->type.dtype != TIR_F32) return NULL;
    tir_dtype t = c->in[0]->type.dtype;
    return t == TIR_BF16 || t == TIR_F16 ? c->in[0] : NULL;
}

/* The region's epilogue onto Lt's (bias, then relu or tanh-gelu), or why not. */
static void read_region(const tir_op *fop, const tir_func *R, tir_mm_site *s) {
    const tir_op *mm = NULL;
    int imm = -1;
    for (int i = 0; i < R->nops; i++)
        if (R->ops[i]->code == TIR_OP_MATMUL) {
            if (mm) {
                s->lt_ok = false;
                setf(s->why, sizeof s->why, "the region holds two matmuls");
                return;
            }
            mm = R->ops[i];
            imm = i;
        }
    /* widened operands (a 16-bit linear as decomposed): the 16-bit parameters they cast */
    const tir_value *pa = mm ? widened_param(mm->in[0]) : NULL, *pb = mm ? widened_param(mm->in[1]) : NULL;
    bool wide = pa && pb && pa->type.dtype == pb->type.dtype && mm->out[0]->type.dtype == TIR_F32;
    if (!wide) pa = mm ? mm->in[0] : NULL, pb = mm ? mm->in[1] : NULL;
    if (!mm || pa->def || pb->def || R->nres != 1 || fop->nout != 1) {
        s->lt_ok = false;
        if (mm) read_matmul(mm, 0, 1, s);
        s->lt_ok = false;
        setf(s->why, sizeof s->why, "not a matmul of two region parameters with one result");
        return;
    }
    read_matmul(mm, pa->index, pb->index, s);
    /* a 16-bit GEMM whose f32 accumulator is the matmul's result: what Lt computes for A, B and
     * C in the 16-bit dtype (f32 compute, the epilogue in f32, one rounding at the output), so
     * the chain below must end in a cast back to that dtype */
    if (wide) s->dtype = pa->type.dtype;
    char why[120];
    setf(why, sizeof why, "%s", s->why);
    bool ok = s->lt_ok;
    const tir_value *cur = mm->out[0];
    tir_dtype dt = mm->out[0]->type.dtype;
    double sc;
    bool have_act = false;
    for (int i = 0; ok && i < R->nops; i++) {
        const tir_op *op = R->ops[i];
        if (i == imm) continue;
        const char *name = tir_ops[op->code].name;
        if (op->code == TIR_OP_FULL) continue; /* a constant: it counts where it is read */
        if (op->code == TIR_OP_CAST && !op->in[0]->def && i < imm) continue; /* a bias's cast */
        if (i < imm) {
            ok = false;
            setf(why, sizeof why, "%s before the matmul has no cuBLASLt form", name);
            break;
        }
        int ci = -1;
        for (int j = 0; j < op->nin; j++)
            if (op->in[j] == cur) ci = j;
        if (op->code == TIR_OP_CAST && !op->in[0]->def) continue; /* a bias's cast */
        if (ci < 0 || op->nout != 1) {
            ok = false;
            setf(why, sizeof why, "epilogue %s off the matmul's chain has no cuBLASLt form", name);
            break;
        }
        tir_dtype odt = op->out[0]->type.dtype;
        if (op->code == TIR_OP_CAST) {
            if (odt != TIR_F32 && odt != s->dtype) {
                ok = false;
                setf(why, sizeof why, "epilogue cast to %s has no cuBLASLt form", tir_dtype_name(odt));
            }
        } else if (op->code == TIR_OP_ADD && !have_act && s->bias < 0) {
            const tir_value *o = op->in[1 - ci];
            /* the bias: a parameter, or a parameter's cast (to the chain's f32) */
            const tir_value *p = o->def && o->def->code == TIR_OP_CAST && !o->def->in[0]->def
                                     ? o->def->in[0]
                                     : o;
            if (p->def || p->type.dtype != s->dtype || !bias_shaped(&o->type, s->N) ||
                !tir_type_equal(&op->out[0]->type, &cur->type)) {
                ok = false;
                setf(why, sizeof why, "epilogue add of a %s, not a bias [N], has no cuBLASLt form",
                     p->def ? "computed value" : "tensor");
            } else {
                s->bias = p->index;
            }
        } else if ((op->code == TIR_OP_MUL || (op->code == TIR_OP_DIV && ci == 0)) &&
                   !have_act && s->bias < 0 && scalar_const(op->in[1 - ci], &sc) && sc != 0 &&
                   isfinite(sc)) {
            s->scale = op->code == TIR_OP_MUL ? s->scale * sc : s->scale / sc;
        } else if (op->code == TIR_OP_RELU && !have_act) {
            have_act = true;
            s->epi = TIR_CUBLAS_EPI_RELU;
        } else if (op->code == TIR_OP_GELU && !have_act &&
                   strcmp(tir_attr_str(op, "approximate", "none"), "tanh") == 0) {
            have_act = true;
            s->epi = TIR_CUBLAS_EPI_GELU;
        } else {
            ok = false;
            setf(why, sizeof why, "epilogue %s%s has no cuBLASLt form", name,
                 op->code == TIR_OP_GELU && !have_act ? " (erf)" : "");
        }
        dt = odt;
        cur = op->out[0];
    }
    float fs = (float)s->scale; /* Lt's alpha is an f32 */
    if (ok && (fs == 0 || isinf(fs))) {
        ok = false;
        setf(why, sizeof why, "epilogue scale %g is no f32 alpha", s->scale);
    }
    if (ok && (R->results[0] != cur || dt != s->dtype)) {
        ok = false;
        setf(why, sizeof why, "the region's result is not the epilogue's end in %s",
             tir_dtype_name(s->dtype));
    }
    s->lt_ok = ok;
    setf(s->why, sizeof s->why, "%s", ok ? "" : why);
    if (!ok) {
        s->bias = -1;
        s->scale = 1;
        s->epi = TIR_CUBLAS_EPI_NONE;
    }
    char scale[24] = "";
    if (s->scale != 1) setf(scale, sizeof scale, "*%.6g", s->scale);
    setf(s->epi_text, sizeof s->epi_text, "%s%s%s", scale, s->bias >= 0 ? "+bias" : "",
         s->epi == TIR_CUBLAS_EPI_RELU ? "+relu" : s->epi == TIR_CUBLAS_EPI_GELU ? "+gelu" : "");
}

bool tir_mm_analyze(const tir_op *op, tir_mm_site *s) {
    memset(s, 0, sizeof *s);
    s->bias = -1;
    s->scale = 1;
    if (!op) return false;
    if (op->code == TIR_OP_MATMUL) {
        if (op->nin != 2 || op->nout != 1) return false;
        read_matmul(op, 0, 1, s);
        return true;
    }
    const tir_func *R = tir_op_region(op);
    if (!R) return false;
    const tir_attr_value *ke = tir_dict_get(tir_op_attr(op, "schedule"), "kind");
    if (!ke || ke->kind != TIR_ATTR_STR || strcmp(ke->u.s, "matmul") != 0) return false;
    s->region = true;
    read_region(op, R, s);
    return true;
}

/* ---------------------------------------------------------------- the model */

static bool aligned(int64_t elems, tir_dtype dt) {
    return ((uint64_t)elems * tir_dtype_size(dt)) % 16 == 0;
}

/* the shape class: which leading dims are 16-byte aligned */
typedef struct shape_class {
    bool lt_aligned;  /* A's, B's and C's rows: cuBLASLt's fast kernels */
    bool tir_aligned; /* A's and B's rows: tir's cp.async path */
} shape_class;

static shape_class classify(const tir_mm_site *s, const tir_mm_sizes *z) {
    shape_class c;
    bool a = aligned(s->ta ? z->m : z->k, s->dtype), b = aligned(s->tb ? z->k : z->n, s->dtype);
    c.tir_aligned = a && b;
    c.lt_aligned = a && b && aligned(z->n, s->dtype);
    return c;
}

double tir_mm_model_us(const tir_mm_model *mdl, const tir_mm_site *s, const tir_mm_sizes *z,
                       tir_mm_exec who, bool allow_tf32) {
    shape_class c = classify(s, z);
    double rate; /* TFLOP/s */
    if (s->dtype == TIR_F32) {
        rate = who == TIR_MM_TIR ? mdl->tir_f32 : allow_tf32 ? mdl->cublas_tf32 : mdl->cublas_f32;
    } else if (who == TIR_MM_TIR) {
        rate = c.tir_aligned ? mdl->tir_16 : mdl->tir_16_guarded;
    } else {
        rate = c.lt_aligned ? mdl->cublas_16 : s->tb ? mdl->cublas_16_ragged_tb : mdl->cublas_16_ragged;
    }
    double flops = 2.0 * (double)z->m * (double)z->n * (double)z->k * (double)z->batch;
    return (who == TIR_MM_TIR ? mdl->tir_us : mdl->cublas_us) + flops / (rate * 1e6);
}

tir_mm_exec tir_mm_decide(const tir_mm_model *mdl, const tir_mm_site *s, const tir_mm_sizes *z,
                          tir_matmul_exec mode, bool allow_tf32, bool lt_loaded,
                          const char *lt_why, bool *per_binding, char *why, size_t n) {
    const char *mname = mode == TIR_MATMUL_CUBLAS ? "matmul=cublas" : "auto";
    if (per_binding) *per_binding = false;
    if (!mdl) mdl = &tir_mm_model_default;
    if (mode == TIR_MATMUL_TIR) {
        setf(why, n, "matmul=tir");
        return TIR_MM_TIR;
    }
    if (!s->lt_ok) {
        setf(why, n, "%s: %s", mname, s->why);
        return TIR_MM_TIR;
    }
    if (!lt_loaded) {
        setf(why, n, "%s: cuBLASLt not available: %s", mname, lt_why ? lt_why : "?");
        return TIR_MM_TIR;
    }
    if (z) {
        if (z->k == 0) {
            setf(why, n, "%s: K = 0 (cuBLASLt has no such call)", mname);
            return TIR_MM_TIR;
        }
        if (z->m > INT32_MAX || z->n > INT32_MAX || z->k > INT32_MAX || z->batch > INT32_MAX) {
            setf(why, n, "%s: a size beyond 2^31", mname);
            return TIR_MM_TIR;
        }
    }
    if (mode == TIR_MATMUL_CUBLAS) {
        setf(why, n, "matmul=cublas%s", s->dtype == TIR_F32 ? allow_tf32 ? ", TF32" : ", full f32" : "");
        return TIR_MM_CUBLAS;
    }
    if (!z) {
        if (per_binding) *per_binding = true;
        setf(why, n, "auto: decided per binding, the sizes are symbolic");
        return TIR_MM_CUBLAS;
    }
    double tc = tir_mm_model_us(mdl, s, z, TIR_MM_CUBLAS, allow_tf32);
    double tt = tir_mm_model_us(mdl, s, z, TIR_MM_TIR, allow_tf32);
    shape_class c = classify(s, z);
    char cls[64];
    if (s->dtype == TIR_F32) setf(cls, sizeof cls, "f32%s", allow_tf32 ? " TF32" : " (no TF32)");
    else if (c.lt_aligned) setf(cls, sizeof cls, "aligned %s", tir_dtype_name(s->dtype));
    else setf(cls, sizeof cls, "ragged %s%s", tir_dtype_name(s->dtype), s->tb ? " B^T" : "");
    bool lt = tc < tt * (1 - mdl->margin);
    setf(why, n, "auto: %s %lldx%lldx%lld%s, model %.3g us vs %s %.3g us", cls, (long long)z->m,
         (long long)z->n, (long long)z->k, z->batch > 1 ? " batched" : "", lt ? tc : tt,
         lt ? "tir" : "cuBLASLt", lt ? tt : tc);
    return lt ? TIR_MM_CUBLAS : TIR_MM_TIR;
}

/* ---------------------------------------------------------------- a program's step */

static bool const_sizes(const tir_mm_site *s, tir_mm_sizes *z) {
    z->batch = 1;
    if (!tir_dim_is_const(s->M, &z->m) || !tir_dim_is_const(s->N, &z->n) ||
        !tir_dim_is_const(s->K, &z->k))
        return false;
    for (int j = 0; j < s->nbatch; j++) {
        int64_t v;
        if (!tir_dim_is_const(s->batch[j], &v)) return false;
        z->batch *= v;
    }
    return true;
}

#ifdef TIR_WITH_LLVM
static const char *path_name(bool tma, bool wgmma) {
    return tma ? "tma" : wgmma ? "wgmma" : "mma.sync";
}
#endif

/* tir's kernel for the step: the path (tma: the TMA warp-specialised kernel; wgmma: cp.async
 * with wgmma; mma.sync) and the block tile; a widened region says so ("bf16->f32") */
static void describe_tir(const tir_op *op, const tir_mm_site *s, const tir_kernel *k,
                         const char *arch, char *buf, size_t n) {
    if (s->region) {
        const tir_func *R = tir_op_region(op);
        const char *epi = R && R->nops > 1 ? " +epilogue" : "";
        char wide[24] = "";
        const tir_op *mm = NULL;
        for (int i = 0; R && i < R->nops && !mm; i++)
            if (R->ops[i]->code == TIR_OP_MATMUL) mm = R->ops[i];
        if (mm && mm->out[0]->type.dtype == TIR_F32 && s->dtype != TIR_F32)
            setf(wide, sizeof wide, " %s->f32", tir_dtype_name(s->dtype));
#ifdef TIR_WITH_LLVM
        /* the tiling the fused kernel was built with (the schedule's, checked for the arch) */
        tir_mma_config cfg;
        if (k && k->ptx && tir_region_mma_config(op, arch, &cfg, NULL) == TIR_OK) {
            setf(buf, n, "tir %s %dx%dx%d s%d%s%s", path_name(cfg.tma, cfg.wgmma), cfg.bm, cfg.bn,
                 cfg.bk, cfg.stages, wide, epi);
            return;
        }
#endif
        setf(buf, n, "tir fused kernel %s%s%s", k ? k->name : "", wide, epi);
        return;
    }
#ifdef TIR_WITH_LLVM
    tir_codegen_options cg = {arch, 2};
    if (tir_matmul_mma_ok(op, &cg)) {
        tir_mma_config cfg;
        tir_mma_pick_config_for(op, arch, &cfg);
        setf(buf, n, "tir %s %dx%dx%d s%d", path_name(cfg.tma, cfg.wgmma), cfg.bm, cfg.bn, cfg.bk,
             cfg.stages);
        return;
    }
#else
    (void)k;
#endif
    setf(buf, n, "tir SIMT %s", tir_dtype_name(s->dtype));
}

static void set_choice(tir_mm_step *ms, tir_mm_exec who, const char *why) {
    if (who == TIR_MM_CUBLAS)
        setf(ms->choice, sizeof ms->choice, "cublasLt%s (%s)", ms->site.epi_text, why);
    else setf(ms->choice, sizeof ms->choice, "%s (%s)", ms->tir_desc, why);
}

tir_mm_step *tir_mm_step_new(const tir_op *op, const tir_kernel *kernel, const char *arch,
                             const tir_options *o, bool *err) {
    *err = false;
    tir_mm_site site;
    if (!tir_mm_analyze(op, &site)) return NULL;
    tir_mm_step *ms = calloc(1, sizeof *ms);
    if (!ms) {
        *err = true;
        return NULL;
    }
    ms->site = site;
    ms->mode = o ? o->matmul : TIR_MATMUL_AUTO;
    ms->allow_tf32 = o && o->allow_tf32;
    describe_tir(op, &ms->site, kernel, arch ? arch : "sm_90a", ms->tir_desc, sizeof ms->tir_desc);
    tir_mm_sizes z;
    bool known = const_sizes(&ms->site, &z), per = false;
    char why[160];
    tir_mm_exec who = tir_mm_decide(NULL, &ms->site, known ? &z : NULL, ms->mode, ms->allow_tf32,
                                    true, NULL, &per, why, sizeof why);
    ms->compile_cublas = !per && who == TIR_MM_CUBLAS;
    if (per)
        setf(ms->choice, sizeof ms->choice, "cublasLt%s or %s (%s)", ms->site.epi_text,
             ms->tir_desc, why);
    else set_choice(ms, who, why);
    return ms;
}

void tir_mm_step_free(tir_mm_step *ms) { free(ms); }

bool tir_mm_step_on_cublas(const tir_mm_step *ms) {
    return ms && (ms->have_last ? ms->last == TIR_MM_CUBLAS : ms->compile_cublas);
}

static tir_status eval_sizes(const tir_mm_site *s, const tir_bindings *b, tir_mm_sizes *z,
                             tir_diag *d) {
    z->batch = 1;
    if (tir_dim_eval(s->M, b, &z->m) != TIR_OK || tir_dim_eval(s->N, b, &z->n) != TIR_OK ||
        tir_dim_eval(s->K, b, &z->k) != TIR_OK)
        return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0},
                            "matmul: a size is unbound");
    for (int j = 0; j < s->nbatch; j++) {
        int64_t v;
        if (tir_dim_eval(s->batch[j], b, &v) != TIR_OK)
            return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0},
                                "matmul: a batch size is unbound");
        if (v && z->batch > INT64_MAX / v) z->batch = INT64_MAX;
        else z->batch *= v;
    }
    return TIR_OK;
}

tir_status tir_mm_step_pick(tir_mm_step *ms, const tir_bindings *b, const tir_cublas *lt,
                            const char *lt_why, tir_mm_exec *out, tir_diag *d) {
    *out = TIR_MM_TIR;
    if (ms->mode == TIR_MATMUL_TIR) return TIR_OK;
    tir_mm_sizes z;
    tir_status s = eval_sizes(&ms->site, b, &z, d);
    if (s != TIR_OK) return s;
    if (ms->have_last && memcmp(&z, &ms->last_sizes, sizeof z) == 0 && (lt || ms->last == TIR_MM_TIR)) {
        *out = ms->last;
        return TIR_OK;
    }
    if (!lt && ms->mode == TIR_MATMUL_CUBLAS && ms->site.lt_ok)
        return tir_diag_set(d, TIR_ERR_UNSUPPORTED, NULL, (tir_loc){0, 0},
                            "matmul=cublas: cuBLASLt is not available (%s); use --matmul=auto or "
                            "tir, or set TIR_CUBLASLT_LIB",
                            lt_why ? lt_why : "?");
    char why[160];
    *out = tir_mm_decide(NULL, &ms->site, &z, ms->mode, ms->allow_tf32, lt != NULL, lt_why, NULL,
                         why, sizeof why);
    set_choice(ms, *out, why);
    ms->have_last = true;
    ms->last_sizes = z;
    ms->last = *out;
    return TIR_OK;
}

void tir_mm_step_no_algo(tir_mm_step *ms, const char *why) {
    char w[160];
    setf(w, sizeof w, "%s: %.120s", ms->mode == TIR_MATMUL_CUBLAS ? "matmul=cublas" : "auto", why);
    ms->last = TIR_MM_TIR; /* have_last stays: the sizes of this binding */
    set_choice(ms, TIR_MM_TIR, w);
}

tir_status tir_mm_step_run(const tir_mm_step *ms, tir_cublas *lt, tir_rt *rt, void *stream,
                           const tir_bindings *b, int nin, const tir_dptr *bufs, tir_diag *d) {
    const tir_mm_site *s = &ms->site;
    tir_mm_sizes z;
    tir_status st = eval_sizes(s, b, &z, d);
    if (st != TIR_OK) return st;
    if (s->a >= nin || s->b >= nin || s->bias >= nin)
        return tir_diag_set(d, TIR_ERR_INTERNAL, NULL, (tir_loc){0, 0},
                            "matmul step: operand out of range");
    if (z.m == 0 || z.n == 0 || z.batch == 0) return TIR_OK;
    tir_cublas_gemm g;
    memset(&g, 0, sizeof g);
    g.dtype = s->dtype;
    g.allow_tf32 = ms->allow_tf32;
    g.m = z.m, g.n = z.n, g.k = z.k, g.batch = z.batch;
    g.trans_a = s->ta, g.trans_b = s->tb;
    g.a = bufs[s->a], g.b = bufs[s->b], g.c = bufs[nin];
    g.stride_a = s->a_batched ? z.m * z.k : 0;
    g.stride_b = s->b_batched ? z.k * z.n : 0;
    g.scale = (float)s->scale;
    g.bias = s->bias >= 0 ? bufs[s->bias] : 0;
    g.epilogue = s->epi;
    g.workspace_bytes = TIR_CUBLAS_WORKSPACE;
    if ((st = tir_rt_alloc(rt, g.workspace_bytes, &g.workspace, d)) != TIR_OK) return st;
    st = tir_cublas_matmul(lt, stream, &g, d);
    tir_rt_free(rt, g.workspace, g.workspace_bytes);
    return st;
}

/* ---------------------------------------------------------------- tirc's options */

int tir_mm_parse_option(int argc, char **argv, int *i, tir_options *o, char *err, size_t n) {
    const char *a = argv[*i], *v = NULL;
    if (strcmp(a, "--tf32") == 0) {
        o->allow_tf32 = true;
        return 1;
    }
    if (strncmp(a, "--matmul=", 9) == 0) {
        v = a + 9;
    } else if (strcmp(a, "--matmul") == 0) {
        if (*i + 1 >= argc) {
            setf(err, n, "--matmul needs a value (tir, cublas or auto)");
            return -1;
        }
        v = argv[++*i];
    } else {
        return 0;
    }
    if (strcmp(v, "tir") == 0) o->matmul = TIR_MATMUL_TIR;
    else if (strcmp(v, "cublas") == 0) o->matmul = TIR_MATMUL_CUBLAS;
    else if (strcmp(v, "auto") == 0) o->matmul = TIR_MATMUL_AUTO;
    else {
        setf(err, n, "--matmul wants tir, cublas or auto, got '%s'", v);
        return -1;
    }
    return 1;
}
