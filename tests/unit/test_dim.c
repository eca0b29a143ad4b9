/* test_dim.c: symbolic dims (ir/dim.c): the normal form (equal expressions are one pointer),
 * floor division rules, print/parse round trips, exact division, evaluation and binding. */
#include <check.h>
#include <stdio.h>

#include "ir.h"

static tir_context *ctx;

static void setup(void) { ctx = tir_context_create(); }
static void teardown(void) { tir_context_destroy(ctx); }

static const tir_dim *P(const char *s) {
    const char *err = NULL;
    const tir_dim *d = tir_dim_parse(ctx, s, strlen(s), &err);
    ck_assert_msg(d != NULL, "parse \"%s\": %s", s, err ? err : "?");
    return d;
}

static const char *S(const tir_dim *d) {
    static char buf[8][256];
    static int k;
    char *b = buf[k++ % 8];
    tir_dim_print(d, b, 256);
    return b;
}

START_TEST(test_normal_form) {
    const tir_dim *B = tir_dim_sym(ctx, "B"), *T = tir_dim_sym(ctx, "T"), *H = tir_dim_sym(ctx, "H");
    ck_assert_ptr_eq(tir_dim_mul(ctx, tir_dim_mul(ctx, B, T), H),
                     tir_dim_mul(ctx, B, tir_dim_mul(ctx, T, H)));
    ck_assert_ptr_eq(tir_dim_mul(ctx, B, T), tir_dim_mul(ctx, T, B));
    ck_assert_ptr_eq(tir_dim_add(ctx, B, B), tir_dim_mul(ctx, tir_dim_const(ctx, 2), B));
    ck_assert_ptr_eq(tir_dim_sub(ctx, B, B), tir_dim_const(ctx, 0));
    ck_assert_ptr_eq(tir_dim_sym(ctx, "B"), B);
    ck_assert_ptr_ne(B, T);
    ck_assert_ptr_eq(P("(B + T)*(B - T)"), P("B*B - T*T"));
    ck_assert_ptr_eq(P("2*(H + 3) - 6"), P("H*2"));
    ck_assert_ptr_eq(P("B*T*H"), P("H * (T * B)"));
    ck_assert_ptr_eq(P("3 + 4*5"), tir_dim_const(ctx, 23));
    ck_assert_ptr_eq(P("(3 + 4)*5"), tir_dim_const(ctx, 35));
    ck_assert_ptr_eq(P("10 - 2 - 3"), tir_dim_const(ctx, 5));
    ck_assert_ptr_eq(P("-N + N"), tir_dim_const(ctx, 0));
    int64_t v = -7;
    ck_assert(tir_dim_is_const(P("N - N"), &v));
    ck_assert_int_eq(v, 0);
    ck_assert(tir_dim_is_const(P("4096"), &v));
    ck_assert_int_eq(v, 4096);
    ck_assert(!tir_dim_is_const(B, NULL));
}
END_TEST

START_TEST(test_division) {
    int64_t v;
    ck_assert(tir_dim_is_const(P("7/2"), &v));
    ck_assert_int_eq(v, 3);
    ck_assert(tir_dim_is_const(P("-7/2"), &v)); /* floor, like Python's // */
    ck_assert_int_eq(v, -4);
    ck_assert(tir_dim_is_const(P("7/(0-2)"), &v));
    ck_assert_int_eq(v, -4);
    ck_assert_ptr_eq(P("N/1"), P("N"));
    ck_assert_ptr_eq(P("(4*N + 8)/4"), P("N + 2"));
    ck_assert_ptr_eq(P("(2*N + 1)/2"), P("N"));         /* floor((2N+1)/2) = N */
    ck_assert_ptr_eq(P("(N + 3)/2"), P("(N + 1)/2 + 1"));
    ck_assert_ptr_eq(P("(2*N + 2)/4"), P("(N + 1)/2"));
    ck_assert_ptr_eq(P("N/2/3"), P("N/6"));
    ck_assert_ptr_eq(P("B*T*H/H"), P("B*T"));
    ck_assert_ptr_eq(P("(B*T + B)/B"), P("T + 1"));
    ck_assert_ptr_eq(P("(N*N - 1)/(N + 1)"), P("N - 1"));
    ck_assert_ptr_ne(P("N/2"), P("N"));
    ck_assert_ptr_ne(P("N/2"), P("N/3"));
    ck_assert_ptr_eq(P("N/M"), P("N/M"));
    ck_assert_ptr_eq(tir_dim_div(ctx, P("N"), tir_dim_const(ctx, 0)), NULL);
}
END_TEST

START_TEST(test_exact_div) {
    ck_assert_ptr_eq(tir_dim_exact_div(ctx, P("B*T*4"), P("T*2")), P("2*B"));
    ck_assert_ptr_eq(tir_dim_exact_div(ctx, P("B*T*H"), P("H")), P("B*T"));
    ck_assert_ptr_eq(tir_dim_exact_div(ctx, P("12"), P("4")), P("3"));
    ck_assert_ptr_eq(tir_dim_exact_div(ctx, P("N*M + N"), P("M + 1")), P("N"));
    ck_assert_ptr_eq(tir_dim_exact_div(ctx, P("B*T"), P("H")), NULL);
    ck_assert_ptr_eq(tir_dim_exact_div(ctx, P("13"), P("4")), NULL);
    ck_assert_ptr_eq(tir_dim_exact_div(ctx, P("2*N + 1"), P("2")), NULL);
    ck_assert_ptr_eq(tir_dim_exact_div(ctx, P("N"), P("0")), NULL);
}
END_TEST

START_TEST(test_print) {
    ck_assert_str_eq(S(P("T*B")), "B*T");
    ck_assert_str_eq(S(P("1 + H*2")), "2*H + 1");
    ck_assert_str_eq(S(P("N - 1")), "N - 1");
    ck_assert_str_eq(S(P("(N+1)/2")), "(N + 1)/2");
    ck_assert_str_eq(S(P("4096")), "4096");
    ck_assert_str_eq(S(P("0 - 5")), "-5");
    ck_assert_str_eq(S(P("0")), "0");
    ck_assert_str_eq(S(P("1 - N")), "-N + 1");
    ck_assert_str_eq(S(P("N*N")), "N*N");
    ck_assert_str_eq(S(P("N/2")), "N/2");
    ck_assert_str_eq(S(P("M*(N/2)")), "M*(N/2)");
    ck_assert_str_eq(S(P("N/(M + 1)")), "N/(M + 1)");
    char small[4];
    ck_assert_int_eq(tir_dim_print(P("B*T + 100"), small, sizeof small), 9);
    ck_assert_str_eq(small, "B*T");
}
END_TEST

START_TEST(test_round_trip) {
    const char *cases[] = {"B*T", "2*H + 1", "N - 1", "(N + 1)/2", "M*(N/2) + N/3", "N/(M + 1)",
                           "(N*N + 3*N)/5 - 7", "-N + 1", "A*B*C*D", "(M/2 + 1)/(N + 1)",
                           "N/M/K", "(2*N)/(3*M)", "X_1*y2 + _z"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const tir_dim *d = P(cases[i]);
        char buf[256];
        tir_dim_print(d, buf, sizeof buf);
        ck_assert_msg(P(buf) == d, "%s printed as %s does not re-parse to itself", cases[i], buf);
    }
}
END_TEST

START_TEST(test_parse_errors) {
    const char *bad[] = {"", "N +", "(N", "N)", "2**N", "N / 0", "3$", "99999999999999999999",
                         "1 2", "N + (", "*N"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *err = NULL;
        ck_assert_msg(tir_dim_parse(ctx, bad[i], strlen(bad[i]), &err) == NULL, "%s parsed",
                      bad[i]);
        ck_assert_msg(err && *err, "no message for %s", bad[i]);
    }
    const char *err = NULL;
    ck_assert_ptr_null(tir_dim_parse(ctx, "N / 0", 5, &err));
    ck_assert(strstr(err, "zero"));
    /* n bounds the text: "N*2" of "N*2+junk" */
    ck_assert_ptr_eq(tir_dim_parse(ctx, "N*2+junk", 3, &err), P("2*N"));
    ck_assert_ptr_null(err);
}
END_TEST

START_TEST(test_overflow) {
    const tir_dim *big = tir_dim_const(ctx, INT64_MAX);
    ck_assert_ptr_null(tir_dim_add(ctx, big, tir_dim_const(ctx, 1)));
    ck_assert_ptr_null(tir_dim_mul(ctx, big, tir_dim_const(ctx, 2)));
    ck_assert_ptr_null(tir_dim_mul(ctx, P("4611686018427387904*N"), P("2")));
    ck_assert_ptr_null(tir_dim_sub(ctx, tir_dim_const(ctx, INT64_MIN), tir_dim_const(ctx, 1)));
    ck_assert_ptr_null(tir_dim_add(ctx, NULL, big));
    const char *err = NULL;
    ck_assert_ptr_null(tir_dim_parse(ctx, "9223372036854775807 + 1", 23, &err));
    ck_assert(err != NULL);
    ck_assert_ptr_nonnull(P("9223372036854775807"));
    /* INT64_MIN coefficients: floor division and negation stay defined */
    const tir_dim *mn = tir_dim_mul(ctx, P("N"), tir_dim_const(ctx, INT64_MIN));
    ck_assert_ptr_nonnull(mn);
    const tir_dim *q = tir_dim_div(ctx, mn, tir_dim_const(ctx, 3));
    ck_assert_ptr_nonnull(q);
    tir_bindings b = {0};
    tir_bindings_set(&b, "N", 0);
    int64_t v = -1;
    ck_assert_int_eq(tir_dim_eval(q, &b, &v), TIR_OK);
    ck_assert_int_eq(v, 0);
    ck_assert_ptr_null(tir_dim_mul(ctx, mn, tir_dim_const(ctx, -1)));
    ck_assert_ptr_null(tir_dim_div(ctx, tir_dim_const(ctx, INT64_MIN), tir_dim_const(ctx, -1)));
    ck_assert_ptr_null(tir_dim_exact_div(ctx, mn, tir_dim_const(ctx, -1)));
}
END_TEST

START_TEST(test_symbols_eval) {
    const char *names[8];
    int n = tir_dim_symbols(P("B*T + (H + 1)/K + B"), names, 8);
    ck_assert_int_eq(n, 4);
    int found = 0;
    for (int i = 0; i < n; i++)
        for (const char *w = "BTHK"; *w; w++)
            if (names[i][0] == *w && !names[i][1]) found |= 1 << (w - "BTHK");
    ck_assert_int_eq(found, 15);
    ck_assert_int_eq(tir_dim_symbols(P("17"), names, 8), 0);

    tir_bindings b = {0};
    ck_assert_int_eq(tir_bindings_set(&b, "B", 3), TIR_OK);
    ck_assert_int_eq(tir_bindings_set(&b, "T", 5), TIR_OK);
    ck_assert_int_eq(tir_bindings_set(&b, "B", 3), TIR_OK);
    ck_assert_int_eq(tir_bindings_set(&b, "B", 4), TIR_ERR_INVALID);
    int64_t v = 0;
    ck_assert(tir_bindings_get(&b, "T", &v));
    ck_assert_int_eq(v, 5);
    ck_assert(!tir_bindings_get(&b, "H", &v));
    ck_assert_int_eq(tir_dim_eval(P("B*T + 2"), &b, &v), TIR_OK);
    ck_assert_int_eq(v, 17);
    ck_assert_int_eq(tir_dim_eval(P("(T + 2)/B"), &b, &v), TIR_OK); /* 7/3 */
    ck_assert_int_eq(v, 2);
    ck_assert_int_eq(tir_dim_eval(P("(B - T)/2 + 3"), &b, &v), TIR_OK); /* floor(-2/2)+3 */
    ck_assert_int_eq(v, 2);
    ck_assert_int_eq(tir_dim_eval(P("(B - T)/4 + 3"), &b, &v), TIR_OK); /* floor(-0.5)+3 */
    ck_assert_int_eq(v, 2);
    ck_assert_int_eq(tir_dim_eval(P("B*H"), &b, &v), TIR_ERR_INVALID);  /* unbound */
    ck_assert_int_eq(tir_dim_eval(P("B - T"), &b, &v), TIR_ERR_INVALID); /* negative */
    ck_assert_int_eq(tir_dim_eval(P("T/(B - 3)"), &b, &v), TIR_ERR_INVALID); /* by zero */
}
END_TEST

START_TEST(test_bind) {
    tir_bindings b = {0};
    char err[256];
    int64_t v = 0;
    ck_assert_int_eq(tir_dim_bind(P("Hq*64"), 512, &b, err, sizeof err), TIR_OK);
    ck_assert(tir_bindings_get(&b, "Hq", &v));
    ck_assert_int_eq(v, 8);
    ck_assert_int_eq(tir_dim_bind(P("2*N + 1"), 11, &b, err, sizeof err), TIR_OK);
    ck_assert(tir_bindings_get(&b, "N", &v));
    ck_assert_int_eq(v, 5);
    /* consistent and inconsistent re-checks */
    ck_assert_int_eq(tir_dim_bind(P("N"), 5, &b, err, sizeof err), TIR_OK);
    ck_assert_int_eq(tir_dim_bind(P("Hq*N"), 40, &b, err, sizeof err), TIR_OK);
    ck_assert_int_eq(tir_dim_bind(P("N"), 6, &b, err, sizeof err), TIR_ERR_INVALID);
    ck_assert_msg(strstr(err, "6") && strstr(err, "5"), "message: %s", err);
    /* binding with an already bound factor: Hq*D with Hq = 8 */
    ck_assert_int_eq(tir_dim_bind(P("Hq*D"), 128, &b, err, sizeof err), TIR_OK);
    ck_assert(tir_bindings_get(&b, "D", &v));
    ck_assert_int_eq(v, 16);
    /* does not divide */
    ck_assert_int_eq(tir_dim_bind(P("K*64"), 500, &b, err, sizeof err), TIR_ERR_INVALID);
    ck_assert_msg(strstr(err, "K") && strstr(err, "500"), "message: %s", err);
    ck_assert(!tir_bindings_get(&b, "K", NULL));
    /* would be negative */
    ck_assert_int_eq(tir_dim_bind(P("M + 10"), 3, &b, err, sizeof err), TIR_ERR_INVALID);
    ck_assert_msg(strstr(err, "M"), "message: %s", err);
    /* two unknowns, non-linear */
    ck_assert_int_eq(tir_dim_bind(P("X*Y"), 12, &b, err, sizeof err), TIR_ERR_INVALID);
    ck_assert_msg(strstr(err, "X") && strstr(err, "Y"), "message: %s", err);
    ck_assert_int_eq(tir_dim_bind(P("Z*Z"), 16, &b, err, sizeof err), TIR_ERR_INVALID);
    ck_assert_msg(strstr(err, "linear"), "message: %s", err);
    ck_assert_int_eq(tir_dim_bind(P("W/2"), 16, &b, err, sizeof err), TIR_ERR_INVALID);
    /* constants */
    ck_assert_int_eq(tir_dim_bind(P("4096"), 4096, &b, err, sizeof err), TIR_OK);
    ck_assert_int_eq(tir_dim_bind(P("4096"), 4095, &b, err, sizeof err), TIR_ERR_INVALID);
    ck_assert_int_eq(tir_dim_bind(P("Q"), -1, &b, err, sizeof err), TIR_ERR_INVALID);
    /* linear with a negative slope: 100 - R = 30 -> R = 70 */
    ck_assert_int_eq(tir_dim_bind(P("100 - R"), 30, &b, err, sizeof err), TIR_OK);
    ck_assert(tir_bindings_get(&b, "R", &v));
    ck_assert_int_eq(v, 70);
    /* NULL err buffer is allowed */
    ck_assert_int_eq(tir_dim_bind(P("N"), 7, &b, NULL, 0), TIR_ERR_INVALID);
}
END_TEST

/* docs/tir.md §8: parameter order does not matter; binding runs to a fixed point */
START_TEST(test_bind_params) {
    char err[256];
    int bp, bd;
    /* f32[N*N] before f32[N]: N*N is not linear in N, so it waits for f32[N] */
    tir_type sq = {TIR_F32, 1, {P("N*N")}}, n = {TIR_F32, 1, {P("N")}};
    const tir_type *ty[2] = {&sq, &n};
    int64_t s16[1] = {16}, s4[1] = {4}, s5[1] = {5};
    const int64_t *sz[2] = {s16, s4};
    tir_bindings b = {0};
    int64_t v = 0;
    ck_assert_int_eq(tir_bind_params(2, ty, sz, &b, &bp, &bd, err, sizeof err), TIR_OK);
    ck_assert(tir_bindings_get(&b, "N", &v));
    ck_assert_int_eq(v, 4);
    /* mismatch: N = 5 from the second, then N*N = 25 != 16 */
    const int64_t *bad[2] = {s16, s5};
    b = (tir_bindings){0};
    ck_assert_int_eq(tir_bind_params(2, ty, bad, &b, &bp, &bd, err, sizeof err), TIR_ERR_INVALID);
    ck_assert_int_eq(bp, 0);
    ck_assert_int_eq(bd, 0);
    ck_assert_msg(strstr(err, "16") && strstr(err, "25"), "message: %s", err);
    /* N*N alone never binds: reported with the reason, after the fixed point */
    b = (tir_bindings){0};
    ck_assert_int_eq(tir_bind_params(1, ty, sz, &b, &bp, &bd, err, sizeof err), TIR_ERR_INVALID);
    ck_assert_int_eq(bp, 0);
    ck_assert_msg(strstr(err, "linear"), "message: %s", err);
    /* a chain: [B*T, T] [B] in either order, and several unknowns reported */
    tir_type bt = {TIR_F32, 2, {P("B*T*H"), P("H")}}, bb = {TIR_F32, 1, {P("B + 1")}};
    tir_type tt = {TIR_F32, 1, {P("2*T")}};
    int64_t s_bt[2] = {40, 5}, s_b[1] = {3}, s_t[1] = {8};
    const tir_type *ty3[3] = {&bt, &bb, &tt};
    const int64_t *sz3[3] = {s_bt, s_b, s_t};
    b = (tir_bindings){0};
    ck_assert_int_eq(tir_bind_params(3, ty3, sz3, &b, NULL, NULL, NULL, 0), TIR_OK);
    ck_assert(tir_bindings_get(&b, "B", &v) && v == 2);
    ck_assert(tir_bindings_get(&b, "T", &v) && v == 4);
    tir_type xy = {TIR_F32, 1, {P("X*Y")}};
    const tir_type *ty2[2] = {&bb, &xy};
    const int64_t *sz2[2] = {s_b, s16};
    b = (tir_bindings){0};
    ck_assert_int_eq(tir_bind_params(2, ty2, sz2, &b, &bp, &bd, err, sizeof err), TIR_ERR_INVALID);
    ck_assert_int_eq(bp, 1);
    ck_assert_int_eq(bd, 0);
    ck_assert_msg(strstr(err, "cannot bind"), "message: %s", err);
    ck_assert_int_eq(tir_bind_params(0, NULL, NULL, &b, &bp, &bd, err, sizeof err), TIR_OK);
}
END_TEST

/* products of sums expand; past TIR_DIM_MAX_TERMS terms they fail at once instead */
START_TEST(test_product_cap) {
    char txt[512] = "s0";
    for (int i = 1; i < 40; i++) snprintf(txt + strlen(txt), sizeof txt - strlen(txt), " - s%d", i);
    const tir_dim *a = P(txt);
    ck_assert(tir_dim_mul_too_large(a, a));
    ck_assert_ptr_null(tir_dim_mul(ctx, a, a));
    ck_assert(!tir_dim_mul_too_large(a, P("2*N")));      /* scaling by a monomial is linear */
    ck_assert_ptr_nonnull(tir_dim_mul(ctx, a, P("2*N")));
    ck_assert_ptr_nonnull(tir_dim_mul(ctx, P("A + 1"), P("B + 1")));
    /* rank 8 of N+1 dims: 2^8 terms still multiply */
    const tir_dim *p = P("1");
    for (int i = 0; i < 8 && p; i++) {
        char s[32];
        snprintf(s, sizeof s, "N%d + 1", i);
        p = tir_dim_mul(ctx, p, P(s));
    }
    ck_assert_ptr_nonnull(p);
    const char *err = NULL;
    char big[1200];
    snprintf(big, sizeof big, "(%s)*(%s)", txt, txt);
    ck_assert_ptr_null(tir_dim_parse(ctx, big, strlen(big), &err));
    ck_assert_msg(err && strstr(err, "too large"), "message: %s", err ? err : "(none)");
}
END_TEST

START_TEST(test_many_dims) {
    /* enough distinct dims to grow the intern table several times; all stay distinct */
    const tir_dim *d[2000];
    for (int i = 0; i < 2000; i++) {
        char s[64];
        snprintf(s, sizeof s, "N*%d + M", i + 1);
        d[i] = P(s);
    }
    for (int i = 0; i < 2000; i++) {
        char s[64];
        snprintf(s, sizeof s, "M + %d*N", i + 1);
        ck_assert_ptr_eq(P(s), d[i]);
        if (i) ck_assert_ptr_ne(d[i], d[i - 1]);
    }
}
END_TEST


/* Random expression trees, evaluated directly (floor division, as Python's //) and through the
 * normal form under random bindings: simplification must never change a value, and every
 * normal form must print and re-parse to itself. */
typedef struct rng {
    uint64_t s;
} rng;
static uint32_t rnd(rng *r) {
    r->s = r->s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(r->s >> 33);
}

static bool tree_eval_fail;
static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* builds text into buf and returns the direct value under vals[A..C] */
static int64_t gen(rng *r, int depth, char *buf, size_t n, const int64_t *vals) {
    uint32_t k = rnd(r) % (depth > 3 ? 2 : 7);
    if (k == 0) {
        int64_t c = (int64_t)(rnd(r) % 7);
        snprintf(buf, n, "%lld", (long long)c);
        return c;
    }
    if (k == 1) {
        int i = (int)(rnd(r) % 3);
        snprintf(buf, n, "%c", "ABC"[i]);
        return vals[i];
    }
    char x[512], y[512];
    int64_t a = gen(r, depth + 1, x, sizeof x, vals), b = gen(r, depth + 1, y, sizeof y, vals);
    char op = "+-*/+"[k - 2];
    if ((size_t)snprintf(buf, n, "(%s) %c (%s)", x, op, y) >= n) tree_eval_fail = true;
    switch (op) {
    case '+': return a + b;
    case '-': return a - b;
    case '*': return a * b;
    default:
        if (b == 0) {
            tree_eval_fail = true;
            return 0;
        }
        return floor_div(a, b);
    }
}

START_TEST(test_random_semantics) {
    rng r = {12345};
    int checked = 0;
    for (int iter = 0; iter < 3000; iter++) {
        int64_t vals[3];
        for (int i = 0; i < 3; i++) vals[i] = 1 + (int64_t)(rnd(&r) % 9);
        char text[512];
        tree_eval_fail = false;
        int64_t want = gen(&r, 0, text, sizeof text, vals);
        if (tree_eval_fail) continue;
        const tir_dim *d = P(text);
        tir_bindings b = {0};
        tir_bindings_set(&b, "A", vals[0]);
        tir_bindings_set(&b, "B", vals[1]);
        tir_bindings_set(&b, "C", vals[2]);
        int64_t got;
        tir_status st = tir_dim_eval(d, &b, &got);
        if (want < 0) {
            ck_assert_int_eq(st, TIR_ERR_INVALID);
        } else if (st == TIR_OK) { /* a kept quotient may divide by zero where the tree did not */
            ck_assert_msg(got == want, "%s = %lld at A=%lld B=%lld C=%lld, normal form %s gives %lld",
                          text, (long long)want, (long long)vals[0], (long long)vals[1],
                          (long long)vals[2], S(d), (long long)got);
            checked++;
        }
        char buf[65536];
        tir_dim_print(d, buf, sizeof buf);
        ck_assert_msg(P(buf) == d, "%s: printed as %s, which does not re-parse to itself", text, buf);
    }
    ck_assert_int_gt(checked, 1000);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("dim");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_normal_form);
    tcase_add_test(tc, test_division);
    tcase_add_test(tc, test_exact_div);
    tcase_add_test(tc, test_print);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_parse_errors);
    tcase_add_test(tc, test_overflow);
    tcase_add_test(tc, test_symbols_eval);
    tcase_add_test(tc, test_bind);
    tcase_add_test(tc, test_bind_params);
    tcase_add_test(tc, test_product_cap);
    tcase_add_test(tc, test_many_dims);
    tcase_add_test(tc, test_random_semantics);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
