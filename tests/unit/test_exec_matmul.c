/* test_exec_matmul.c: the choice of executor for matmul steps (compiler/exec_matmul.c), with no
 * GPU: what a plain matmul and a kind="matmul" fused region (also one of widened 16-bit operands,
 * a linear as decomposed) look like to cuBLASLt (dims,
 * transposes, batch strides, which epilogues map onto Lt's bias/relu/gelu and why the others
 * don't), the rules of matmul=tir|cublas|auto (TF32 only on request, no cuBLASLt library), the
 * model's answers following its table, the per-binding cache, tirc's option parsing, and the
 * choice strings a compiled program reports per step. */
#include <check.h>
#include <stdio.h>

#include "compile.h"
#include "exec_matmul.h"

static tir_context *ctx;
static tir_module *mod;

static void setup(void) { ctx = tir_context_create(); }
static void teardown(void) {
    if (mod) tir_module_free(mod);
    mod = NULL;
    tir_context_destroy(ctx);
}

/* the first op of @f in src, as parsed (no pipeline) */
static const tir_op *first_op(const char *src, const char *f) {
    tir_diag d;
    if (mod) tir_module_free(mod);
    mod = NULL;
    ck_assert_msg(tir_module_parse(ctx, src, "t.tir", &mod, &d) == TIR_OK, "%s", d.msg);
    const tir_func *fn = tir_module_find(mod, f);
    ck_assert_ptr_nonnull(fn);
    ck_assert_int_ge(fn->nops, 1);
    return fn->ops[fn->nops - 1];
}

static tir_mm_site site_of(const char *src) {
    tir_mm_site s;
    ck_assert(tir_mm_analyze(first_op(src, "f"), &s));
    return s;
}

/* ---------------------------------------------------------------- options */

START_TEST(parse_options) {
    char *argv[] = {"x", "--matmul=tir", "--matmul", "cublas", "--tf32", "--matmul=auto",
                    "--matmul=fast", "--func", "--matmul"};
    int argc = (int)(sizeof argv / sizeof *argv);
    tir_options o;
    tir_options_init(&o);
    ck_assert_int_eq(o.matmul, TIR_MATMUL_AUTO);
    ck_assert(!o.allow_tf32);
    char e[128];
    int i = 1;
    ck_assert_int_eq(tir_mm_parse_option(argc, argv, &i, &o, e, sizeof e), 1);
    ck_assert_int_eq(o.matmul, TIR_MATMUL_TIR);
    i = 2;
    ck_assert_int_eq(tir_mm_parse_option(argc, argv, &i, &o, e, sizeof e), 1);
    ck_assert_int_eq(i, 3); /* past the value */
    ck_assert_int_eq(o.matmul, TIR_MATMUL_CUBLAS);
    i = 4;
    ck_assert_int_eq(tir_mm_parse_option(argc, argv, &i, &o, e, sizeof e), 1);
    ck_assert(o.allow_tf32);
    i = 5;
    ck_assert_int_eq(tir_mm_parse_option(argc, argv, &i, &o, e, sizeof e), 1);
    ck_assert_int_eq(o.matmul, TIR_MATMUL_AUTO);
    i = 6;
    ck_assert_int_eq(tir_mm_parse_option(argc, argv, &i, &o, e, sizeof e), -1);
    ck_assert_ptr_nonnull(strstr(e, "fast"));
    i = 7;
    ck_assert_int_eq(tir_mm_parse_option(argc, argv, &i, &o, e, sizeof e), 0);
    i = 8; /* --matmul with nothing after it */
    ck_assert_int_eq(tir_mm_parse_option(argc, argv, &i, &o, e, sizeof e), -1);
    ck_assert_str_eq(tir_matmul_exec_name(TIR_MATMUL_CUBLAS), "cublas");
}
END_TEST

/* ---------------------------------------------------------------- reading the IR */

START_TEST(plain_matmul) {
    tir_mm_site s = site_of("func @f(%a: bf16[M, K], %b: bf16[N, K]) -> bf16[M, N] {\n"
                            "  %c = matmul(%a, %b, transpose_b=true)\n  return %c\n}\n");
    ck_assert(s.lt_ok);
    ck_assert(!s.region);
    ck_assert(!s.ta && s.tb);
    ck_assert_int_eq(s.a, 0);
    ck_assert_int_eq(s.b, 1);
    ck_assert_int_eq(s.bias, -1);
    ck_assert_int_eq(s.nbatch, 0);
    char buf[32];
    tir_dim_print(s.M, buf, sizeof buf);
    ck_assert_str_eq(buf, "M");
    tir_dim_print(s.N, buf, sizeof buf);
    ck_assert_str_eq(buf, "N");
    tir_dim_print(s.K, buf, sizeof buf);
    ck_assert_str_eq(buf, "K");

    s = site_of("func @f(%a: f16[K, M], %b: f16[K, N]) -> f16[M, N] {\n"
                "  %c = matmul(%a, %b, transpose_a=true)\n  return %c\n}\n");
    ck_assert(s.lt_ok && s.ta && !s.tb);
    tir_dim_print(s.K, buf, sizeof buf);
    ck_assert_str_eq(buf, "K");

    s = site_of("func @f(%a: f64[4, 8], %b: f64[8, 2]) -> f64[4, 2] {\n"
                "  %c = matmul(%a, %b)\n  return %c\n}\n");
    ck_assert(!s.lt_ok);
    ck_assert_ptr_nonnull(strstr(s.why, "f64"));

    /* not a matmul step */
    tir_mm_site t;
    ck_assert(!tir_mm_analyze(first_op("func @f(%a: f32[4]) -> f32[4] {\n  %c = exp(%a)\n"
                                       "  return %c\n}\n", "f"),
                              &t));
}
END_TEST

START_TEST(batch_strides) {
    /* a batched like the output, b one matrix for all: strides express it */
    tir_mm_site s = site_of("func @f(%a: bf16[B, H, 64, 32], %b: bf16[32, 48]) -> bf16[B, H, 64, 48] {\n"
                            "  %c = matmul(%a, %b)\n  return %c\n}\n");
    ck_assert(s.lt_ok);
    ck_assert_int_eq(s.nbatch, 2);
    ck_assert(s.a_batched && !s.b_batched);
    s = site_of("func @f(%a: bf16[1, 64, 32], %b: bf16[B, 32, 48]) -> bf16[B, 64, 48] {\n"
                "  %c = matmul(%a, %b)\n  return %c\n}\n");
    ck_assert(s.lt_ok && !s.a_batched && s.b_batched);
    /* a partial broadcast ([B, 1] against [1, H]) is no single stride */
    s = site_of("func @f(%a: bf16[B, 1, 64, 32], %b: bf16[1, H, 32, 48]) -> bf16[B, H, 64, 48] {\n"
                "  %c = matmul(%a, %b)\n  return %c\n}\n");
    ck_assert(!s.lt_ok);
    ck_assert_ptr_nonnull(strstr(s.why, "broadcast"));
    /* fewer batch dims than the output: repeats over the outer one, no single stride */
    s = site_of("func @f(%a: bf16[H, 64, 32], %b: bf16[B, H, 32, 48]) -> bf16[B, H, 64, 48] {\n"
                "  %c = matmul(%a, %b)\n  return %c\n}\n");
    ck_assert(!s.lt_ok);
}
END_TEST

#define REGION_HEAD                                                                               \
    "func @f(%x: bf16[M, 64], %w: bf16[64, 128], %bias: bf16[128], %r: bf16[M, 128]) -> bf16[M, 128] {\n" \
    "  %y = fused(%x, %w, %bias, %r) kernel=\"k\" schedule={kind=\"matmul\"} {\n"              \
    "    %c = matmul(%x, %w)\n"
#define REGION_TAIL "  }\n  return %y\n}\n"

START_TEST(region_epilogues) {
    /* bias then tanh-gelu: Lt's GELU_BIAS */
    tir_mm_site s = site_of(REGION_HEAD "    %d = add(%c, %bias)\n"
                                        "    yield gelu(%d, approximate=\"tanh\")\n" REGION_TAIL);
    ck_assert(s.region);
    ck_assert_msg(s.lt_ok, "%s", s.why);
    ck_assert_int_eq(s.bias, 2);
    ck_assert_int_eq(s.epi, TIR_CUBLAS_EPI_GELU);
    ck_assert_str_eq(s.epi_text, "+bias+gelu");
    /* through f32 and back, the bias cast too: still Lt's (it computes in f32) */
    s = site_of(REGION_HEAD "    %cf = cast(%c, dtype=f32)\n"
                            "    %d = add(%cf, cast(%bias, dtype=f32))\n"
                            "    yield cast(relu(%d), dtype=bf16)\n" REGION_TAIL);
    ck_assert_msg(s.lt_ok, "%s", s.why);
    ck_assert_int_eq(s.bias, 2);
    ck_assert_int_eq(s.epi, TIR_CUBLAS_EPI_RELU);
    ck_assert_str_eq(s.epi_text, "+bias+relu");
    /* scaled by constants (Lt's alpha), then the bias */
    s = site_of(REGION_HEAD "    %d = div(mul(%c, 0.5), 4.0)\n"
                            "    yield relu(add(%d, %bias))\n" REGION_TAIL);
    ck_assert_msg(s.lt_ok, "%s", s.why);
    ck_assert(s.scale == 0.125);
    ck_assert_str_eq(s.epi_text, "*0.125+bias+relu");
    /* a bare matmul region */
    s = site_of(REGION_HEAD "    yield %c\n" REGION_TAIL);
    ck_assert(s.lt_ok && s.bias == -1 && s.epi == TIR_CUBLAS_EPI_NONE);
    ck_assert_str_eq(s.epi_text, "");
    /* a bf16 linear as the tile pass leaves it: an f32 matmul of widened parameters is a bf16
     * GEMM to Lt (A and B the parameters the casts read), the bias's cast its bias */
    static const char *wide =
        "func @f(%x: bf16[B, T, 64], %w: bf16[128, 64], %bias: bf16[128]) -> bf16[B, T, 128] {\n"
        "  %y = fused(%x, %w, %bias) kernel=\"k\" schedule={kind=\"matmul\"} {\n"
        "    %0 = cast(%x, dtype=f32)\n    %1 = cast(%w, dtype=f32)\n"
        "    %2 = matmul(%0, %1, transpose_b=true)\n"
        "    %3 = add(%2, cast(%bias, dtype=f32))\n"
        "    yield relu(cast(%3, dtype=bf16))\n  }\n  return %y\n}\n";
    s = site_of(wide);
    ck_assert_msg(s.lt_ok, "%s", s.why);
    ck_assert_int_eq(s.dtype, TIR_BF16);
    ck_assert_int_eq(s.a, 0);
    ck_assert_int_eq(s.b, 1);
    ck_assert(s.tb && !s.ta);
    ck_assert_int_eq(s.bias, 2);
    ck_assert_str_eq(s.epi_text, "+bias+relu");
    ck_assert(s.a_batched && !s.b_batched && s.nbatch == 1); /* one weight for every batch */
    /* ... but one that keeps the f32 result has no 16-bit Lt call here */
    s = site_of("func @f(%x: f16[T, 64], %w: f16[64, 128]) -> f32[T, 128] {\n"
                "  %y = fused(%x, %w) kernel=\"k\" schedule={kind=\"matmul\"} {\n"
                "    yield matmul(cast(%x, dtype=f32), cast(%w, dtype=f32))\n  }\n  return %y\n}\n");
    ck_assert(!s.lt_ok);
    ck_assert_int_eq(s.dtype, TIR_F16);
    ck_assert_msg(strstr(s.why, "result"), "%s", s.why);

    /* what Lt has no form for, each with its reason */
    static const struct {
        const char *body, *why;
    } no[] = {
        {"    yield silu(%c)\n", "silu"},
        {"    yield gelu(add(%c, %bias))\n", "erf"},
        {"    yield add(%c, %r)\n", "add"},                 /* a residual, not a bias */
        {"    yield add(relu(%c), %bias)\n", "add"},        /* bias after the activation */
        {"    yield relu(relu(%c))\n", "relu"},             /* two activations */
        {"    yield cast(%c, dtype=f16)\n", "f16"},         /* another dtype */
        {"    %cf = cast(%c, dtype=f32)\n    yield relu(%cf)\n", "result"}, /* ends in f32 */
        {"    yield mul(%c, %c)\n", "mul"},
        {"    yield mul(%c, %r)\n", "mul"},                /* not a constant */
        {"    yield div(2.0, %c)\n", "div"},               /* the constant over the product */
        {"    yield mul(add(%c, %bias), 2.0)\n", "mul"},   /* a scale after the bias */
        {"    yield mul(%c, 0.0)\n", "mul"},               /* alpha 0 */
    };
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        char src[1024];
        const char *body = no[i].body;
        bool f32out = strstr(body, "relu(%cf)") != NULL, f16out = strstr(body, "f16") != NULL;
        snprintf(src, sizeof src,
                 "func @f(%%x: bf16[M, 64], %%w: bf16[64, 128], %%bias: bf16[128], %%r: bf16[M, 128]) -> %s[M, 128] {\n"
                 "  %%y = fused(%%x, %%w, %%bias, %%r) kernel=\"k\" schedule={kind=\"matmul\"} {\n"
                 "    %%c = matmul(%%x, %%w)\n%s  }\n  return %%y\n}\n",
                 f32out ? "f32" : f16out ? "f16" : "bf16", body);
        s = site_of(src);
        ck_assert_msg(!s.lt_ok, "case %zu maps onto Lt", i);
        ck_assert_msg(strstr(s.why, no[i].why), "case %zu: '%s' lacks '%s'", i, s.why, no[i].why);
        ck_assert_int_eq(s.bias, -1);
    }
    /* a region of another kind is no matmul step */
    tir_mm_site t;
    ck_assert(!tir_mm_analyze(first_op("func @f(%a: f32[4]) -> f32[4] {\n"
                                       "  %y = fused(%a) kernel=\"e\" schedule={kind=\"elementwise\"} {\n"
                                       "    yield exp(%a)\n  }\n  return %y\n}\n", "f"),
                              &t));
}
END_TEST

/* ---------------------------------------------------------------- the rules and the model */

static const char *SQUARE = "func @f(%a: bf16[M, K], %b: bf16[K, N]) -> bf16[M, N] {\n"
                            "  %c = matmul(%a, %b)\n  return %c\n}\n";
static const char *TRANS_B = "func @f(%a: bf16[M, K], %b: bf16[N, K]) -> bf16[M, N] {\n"
                             "  %c = matmul(%a, %b, transpose_b=true)\n  return %c\n}\n";
static const char *F32 = "func @f(%a: f32[M, K], %b: f32[K, N]) -> f32[M, N] {\n"
                         "  %c = matmul(%a, %b)\n  return %c\n}\n";

START_TEST(rules) {
    const tir_mm_model *mdl = &tir_mm_model_default;
    tir_mm_site s = site_of(SQUARE);
    tir_mm_sizes big = {4096, 4096, 4096, 1};
    char why[200];
    bool per;
    ck_assert_int_eq(tir_mm_decide(mdl, &s, &big, TIR_MATMUL_TIR, false, true, NULL, &per, why, sizeof why),
                     TIR_MM_TIR);
    ck_assert_str_eq(why, "matmul=tir");
    ck_assert_int_eq(tir_mm_decide(mdl, &s, &big, TIR_MATMUL_CUBLAS, false, true, NULL, &per, why, sizeof why),
                     TIR_MM_CUBLAS);
    /* auto on a large aligned shape: tir's TMA kernel measured 0.97-1.05x cuBLASLt there, a
     * close call that stays with tir ... */
    ck_assert_int_eq(tir_mm_decide(mdl, &s, &big, TIR_MATMUL_AUTO, false, true, NULL, &per, why, sizeof why),
                     TIR_MM_TIR);
    ck_assert(!per);
    ck_assert_ptr_nonnull(strstr(why, "aligned bf16"));
    /* ... and goes to cuBLAS where the table says it is clearly faster */
    tir_mm_model slow = *mdl;
    slow.tir_16 = 0.7 * slow.cublas_16;
    ck_assert_int_eq(tir_mm_decide(&slow, &s, &big, TIR_MATMUL_AUTO, false, true, NULL, &per, why, sizeof why),
                     TIR_MM_CUBLAS);
    ck_assert_ptr_nonnull(strstr(why, "aligned bf16"));
    /* no library: auto falls back, saying so */
    ck_assert_int_eq(tir_mm_decide(mdl, &s, &big, TIR_MATMUL_AUTO, false, false, "no libcublasLt", &per,
                                   why, sizeof why),
                     TIR_MM_TIR);
    ck_assert_ptr_nonnull(strstr(why, "no libcublasLt"));
    /* sizes unknown: auto waits for a binding */
    ck_assert_int_eq(tir_mm_decide(mdl, &s, NULL, TIR_MATMUL_AUTO, false, true, NULL, &per, why, sizeof why),
                     TIR_MM_CUBLAS);
    ck_assert(per);
    /* K = 0 has no cuBLASLt call, whatever was asked */
    tir_mm_sizes k0 = {64, 64, 0, 1};
    ck_assert_int_eq(tir_mm_decide(mdl, &s, &k0, TIR_MATMUL_CUBLAS, false, true, NULL, &per, why, sizeof why),
                     TIR_MM_TIR);
    ck_assert_ptr_nonnull(strstr(why, "K = 0"));
    /* cuBLAS can't express it: tir, with the reason, in either mode */
    tir_mm_site p = site_of("func @f(%a: bf16[B, 1, 64, 32], %b: bf16[1, H, 32, 48]) -> bf16[B, H, 64, 48] {\n"
                            "  %c = matmul(%a, %b)\n  return %c\n}\n");
    ck_assert_int_eq(tir_mm_decide(mdl, &p, &big, TIR_MATMUL_CUBLAS, false, true, NULL, &per, why, sizeof why),
                     TIR_MM_TIR);
    ck_assert_ptr_nonnull(strstr(why, "matmul=cublas: batch broadcast"));
}
END_TEST

START_TEST(model) {
    const tir_mm_model *mdl = &tir_mm_model_default;
    char why[200];
    /* the ragged transposed shape where cuBLAS is slow (RESULTS.md) goes to tir */
    tir_mm_site t = site_of(TRANS_B);
    tir_mm_sizes ragged = {4001, 4003, 4096, 1};
    ck_assert_int_eq(tir_mm_decide(mdl, &t, &ragged, TIR_MATMUL_AUTO, false, true, NULL, NULL, why, sizeof why),
                     TIR_MM_TIR);
    ck_assert_ptr_nonnull(strstr(why, "ragged"));
    /* with tir's kernel at 70% of cuBLAS on aligned shapes, the ragged one still goes to tir
     * and the same shape aligned to cuBLAS: it is the alignment, not the transpose */
    tir_mm_model slow = *mdl;
    slow.tir_16 = 0.7 * slow.cublas_16;
    ck_assert_int_eq(tir_mm_decide(&slow, &t, &ragged, TIR_MATMUL_AUTO, false, true, NULL, NULL, why, sizeof why),
                     TIR_MM_TIR);
    tir_mm_sizes al = {4000, 4000, 4096, 1};
    ck_assert_int_eq(tir_mm_decide(&slow, &t, &al, TIR_MATMUL_AUTO, false, true, NULL, NULL, why, sizeof why),
                     TIR_MM_CUBLAS);
    ck_assert_int_eq(tir_mm_decide(mdl, &t, &al, TIR_MATMUL_AUTO, false, true, NULL, NULL, why, sizeof why),
                     TIR_MM_TIR);
    /* the model's answer follows its table: with tir's kernel at cuBLAS's speed, tir wins the
     * close call; at 80% of it, cuBLAS still does */
    tir_mm_site s = site_of(SQUARE);
    tir_mm_sizes big = {8192, 8192, 8192, 1};
    tir_mm_model m2 = *mdl;
    m2.tir_16 = m2.cublas_16;
    ck_assert_int_eq(tir_mm_decide(&m2, &s, &big, TIR_MATMUL_AUTO, false, true, NULL, NULL, why, sizeof why),
                     TIR_MM_TIR);
    m2.tir_16 = 0.8 * m2.cublas_16;
    ck_assert_int_eq(tir_mm_decide(&m2, &s, &big, TIR_MATMUL_AUTO, false, true, NULL, NULL, why, sizeof why),
                     TIR_MM_CUBLAS);
    /* modelled time: more FLOPs take longer, TF32 is faster than full f32 */
    tir_mm_site f = site_of(F32);
    tir_mm_sizes z = {1024, 1024, 4096, 1}, z2 = {1024, 1024, 8192, 1};
    ck_assert(tir_mm_model_us(mdl, &f, &z2, TIR_MM_CUBLAS, false) > tir_mm_model_us(mdl, &f, &z, TIR_MM_CUBLAS, false));
    ck_assert(tir_mm_model_us(mdl, &f, &z, TIR_MM_CUBLAS, true) < tir_mm_model_us(mdl, &f, &z, TIR_MM_CUBLAS, false));
    /* f32: cuBLAS in full f32 unless TF32 is allowed, and the reason says which */
    ck_assert_int_eq(tir_mm_decide(mdl, &f, &z, TIR_MATMUL_AUTO, false, true, NULL, NULL, why, sizeof why),
                     TIR_MM_CUBLAS);
    ck_assert_ptr_nonnull(strstr(why, "no TF32"));
    ck_assert_int_eq(tir_mm_decide(mdl, &f, &z, TIR_MATMUL_CUBLAS, true, true, NULL, NULL, why, sizeof why),
                     TIR_MM_CUBLAS);
    ck_assert_ptr_nonnull(strstr(why, "TF32"));
    /* a tiny matmul is a close call: it stays with tir */
    tir_mm_sizes tiny = {8, 8, 8, 1};
    ck_assert_int_eq(tir_mm_decide(mdl, &s, &tiny, TIR_MATMUL_AUTO, false, true, NULL, NULL, why, sizeof why),
                     TIR_MM_TIR);
}
END_TEST

/* ---------------------------------------------------------------- a step at run time */

START_TEST(step_pick) {
    /* f32, where the model sends a large call to cuBLASLt (SIMT against SGEMM) */
    const tir_op *op = first_op(F32, "f");
    tir_options o;
    tir_options_init(&o);
    tir_kernel k;
    memset(&k, 0, sizeof k);
    bool e;
    tir_mm_step *ms = tir_mm_step_new(op, &k, "sm_90a", &o, &e);
    ck_assert_ptr_nonnull(ms);
    ck_assert(!e);
    ck_assert_ptr_nonnull(strstr(ms->choice, "per binding"));
    ck_assert(!tir_mm_step_on_cublas(ms));
    tir_bindings b = {0};
    tir_bindings_set(&b, "M", 4096);
    tir_bindings_set(&b, "N", 4096);
    tir_bindings_set(&b, "K", 4096);
    /* the handle only has to exist for the choice; it is never called here */
    static int fake;
    const tir_cublas *lt = (const tir_cublas *)&fake;
    tir_mm_exec who;
    tir_diag d;
    ck_assert_int_eq(tir_mm_step_pick(ms, &b, lt, NULL, &who, &d), TIR_OK);
    ck_assert_int_eq(who, TIR_MM_CUBLAS);
    ck_assert(tir_mm_step_on_cublas(ms));
    ck_assert_ptr_nonnull(strstr(ms->choice, "cublasLt (auto: f32 (no TF32) 4096x4096x4096"));
    /* Lt's heuristic finds no algorithm: tir's kernel for this binding, remembered */
    tir_mm_step_no_algo(ms, "cuBLASLt has no algorithm for f32 matmul");
    ck_assert(!tir_mm_step_on_cublas(ms));
    ck_assert_ptr_nonnull(strstr(ms->choice, "(auto: cuBLASLt has no algorithm"));
    ck_assert_int_eq(tir_mm_step_pick(ms, &b, lt, NULL, &who, &d), TIR_OK);
    ck_assert_int_eq(who, TIR_MM_TIR);
    /* another binding decides again */
    tir_bindings b2 = {0};
    tir_bindings_set(&b2, "M", 8);
    tir_bindings_set(&b2, "N", 8);
    tir_bindings_set(&b2, "K", 8);
    ck_assert_int_eq(tir_mm_step_pick(ms, &b2, lt, NULL, &who, &d), TIR_OK);
    ck_assert_int_eq(who, TIR_MM_TIR);
    ck_assert_ptr_nonnull(strstr(ms->choice, "8x8x8"));
    /* without cuBLASLt: auto falls back quietly ... */
    ck_assert_int_eq(tir_mm_step_pick(ms, &b, NULL, "libcublasLt.so.13: not found", &who, &d), TIR_OK);
    ck_assert_int_eq(who, TIR_MM_TIR);
    ck_assert_ptr_nonnull(strstr(ms->choice, "not found"));
    tir_mm_step_free(ms);
    /* ... matmul=cublas says it can't */
    o.matmul = TIR_MATMUL_CUBLAS;
    ms = tir_mm_step_new(op, &k, "sm_90a", &o, &e);
    ck_assert(tir_mm_step_on_cublas(ms)); /* decided at compile time */
    ck_assert_int_eq(tir_mm_step_pick(ms, &b, NULL, "libcublasLt.so.13: not found", &who, &d),
                     TIR_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(d.msg, "matmul=cublas"));
    ck_assert_ptr_nonnull(strstr(d.msg, "not found"));
    tir_mm_step_free(ms);
    /* an unbound size is an error, not a guess */
    o.matmul = TIR_MATMUL_AUTO;
    ms = tir_mm_step_new(op, &k, "sm_90a", &o, &e);
    tir_bindings none = {0};
    ck_assert_int_eq(tir_mm_step_pick(ms, &none, lt, NULL, &who, &d), TIR_ERR_INVALID);
    tir_mm_step_free(ms);
}
END_TEST

#ifdef TIR_WITH_LLVM
/* what a compiled program reports per step */
START_TEST(compiled_choice) {
    static const char *src =
        "func @f(%a: bf16[4096, 4096], %b: bf16[4096, 4096], %x: f32[16]) -> (bf16[4096, 4096], f32[16]) {\n"
        "  %c = matmul(%a, %b)\n  %e = exp(%x)\n  return %c, %e\n}\n";
    static const struct {
        tir_matmul_exec mode;
        const char *want;
        bool cublas;
    } cases[] = {
        {TIR_MATMUL_TIR, "(matmul=tir)", false},
        {TIR_MATMUL_CUBLAS, "cublasLt (matmul=cublas)", true},
        /* tir's TMA kernel, within the margin of cuBLAS on this shape */
        {TIR_MATMUL_AUTO, "tir tma 128x256x64 s4 (auto: aligned bf16 4096x4096x4096", false},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        tir_diag d;
        tir_module *m = NULL;
        ck_assert(tir_module_parse(ctx, src, "t.tir", &m, &d) == TIR_OK);
        tir_options o;
        tir_options_init(&o);
        o.matmul = cases[c].mode;
        tir_program *p = NULL;
        ck_assert_msg(tir_compile(m, "f", &o, &p, &d) == TIR_OK, "%s", d.msg);
        int nmm = 0;
        for (int i = 0; i < tir_program_num_kernels(p); i++) {
            tir_kernel_info ki;
            tir_program_kernel_info(p, i, &ki);
            /* the matmul is a step of its own: plain, or a kind="matmul" region (passes/tile.c) */
            if (!strstr(ki.name, "matmul")) {
                ck_assert_ptr_null(ki.executor);
                ck_assert(!ki.cublas);
                continue;
            }
            nmm++;
            ck_assert_ptr_nonnull(ki.executor);
            ck_assert_msg(strstr(ki.executor, cases[c].want), "%s", ki.executor);
            ck_assert_int_eq(ki.cublas, cases[c].cublas);
            ck_assert_ptr_nonnull(ki.ptx); /* tir's kernel stays as the fallback */
        }
        ck_assert_int_eq(nmm, 1);
        tir_program_free(p);
        tir_module_free(m);
    }
}
END_TEST
#endif

static Suite *suite(void) {
    Suite *s = suite_create("exec_matmul");
    TCase *t = tcase_create("core");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, parse_options);
    tcase_add_test(t, plain_matmul);
    tcase_add_test(t, batch_strides);
    tcase_add_test(t, region_epilogues);
    tcase_add_test(t, rules);
    tcase_add_test(t, model);
    tcase_add_test(t, step_pick);
#ifdef TIR_WITH_LLVM
    tcase_add_test(t, compiled_choice);
#endif
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
