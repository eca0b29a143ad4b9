/* test_dtype.c: element types (ir/dtype.c) against hand-computed bit patterns, the
 * round == load(store) identity, and the host tensor API (ir/tensor.c). */
#include <check.h>
#include <float.h>

#include "ir.h"

static uint32_t store_bits(tir_dtype t, double v) {
    unsigned char b[8] = {0};
    tir_dtype_store(t, b, v);
    uint32_t x = 0;
    memcpy(&x, b, tir_dtype_size(t) < 4 ? tir_dtype_size(t) : 4);
    return x;
}

static double load_bits(tir_dtype t, uint32_t bits) {
    unsigned char b[8] = {0};
    memcpy(b, &bits, 4);
    return tir_dtype_load(t, b);
}

START_TEST(test_names) {
    ck_assert_str_eq(tir_dtype_name(TIR_BF16), "bf16");
    ck_assert_str_eq(tir_dtype_name(TIR_F8E4M3), "f8e4m3");
    ck_assert_int_eq(tir_dtype_size(TIR_F64), 8);
    ck_assert_int_eq(tir_dtype_size(TIR_BF16), 2);
    ck_assert_int_eq(tir_dtype_size(TIR_F8E5M2), 1);
    ck_assert_int_eq(tir_dtype_size(TIR_BOOL), 1);
    ck_assert_int_eq(tir_dtype_size(TIR_I32), 4);
    for (int i = 0; i < TIR_DTYPE_COUNT; i++) {
        tir_dtype t = TIR_BOOL;
        const char *n = tir_dtype_name((tir_dtype)i);
        ck_assert(tir_dtype_from_name(n, strlen(n), &t));
        ck_assert_int_eq(t, i);
        ck_assert(!(tir_dtype_is_float((tir_dtype)i) && tir_dtype_is_int((tir_dtype)i)));
    }
    tir_dtype t;
    ck_assert(!tir_dtype_from_name("f3", 2, &t));
    ck_assert(!tir_dtype_from_name("bf16x", 5, &t));
    ck_assert(tir_dtype_from_name("bf16x", 4, &t) && t == TIR_BF16);
    ck_assert(tir_dtype_is_float(TIR_F8E4M3) && !tir_dtype_is_int(TIR_F8E4M3));
    ck_assert(tir_dtype_is_int(TIR_U8) && !tir_dtype_is_int(TIR_BOOL) && !tir_dtype_is_float(TIR_BOOL));
}
END_TEST

START_TEST(test_bf16) {
    ck_assert_uint_eq(store_bits(TIR_BF16, 1.0), 0x3f80);
    ck_assert_uint_eq(store_bits(TIR_BF16, 1.00390625), 0x3f80);   /* 1 + 2^-8: tie to even */
    ck_assert_uint_eq(store_bits(TIR_BF16, 1.01171875), 0x3f82);   /* 1 + 3*2^-8: tie to even */
    ck_assert_uint_eq(store_bits(TIR_BF16, 1.00390625 + 1e-9), 0x3f81);
    ck_assert_uint_eq(store_bits(TIR_BF16, -2.0), 0xc000);
    ck_assert_uint_eq(store_bits(TIR_BF16, -0.0), 0x8000);
    ck_assert_uint_eq(store_bits(TIR_BF16, 3.3895313892515355e38), 0x7f7f); /* max */
    ck_assert_uint_eq(store_bits(TIR_BF16, 3.4e38), 0x7f80);                /* overflow */
    ck_assert_uint_eq(store_bits(TIR_BF16, -INFINITY), 0xff80);
    ck_assert_uint_eq(store_bits(TIR_BF16, NAN) & 0x7fff, 0x7fc0);
    ck_assert_uint_eq(store_bits(TIR_BF16, ldexp(1, -133)), 0x0001); /* smallest subnormal */
    ck_assert_uint_eq(store_bits(TIR_BF16, ldexp(1, -134)), 0x0000); /* tie to even: 0 */
    ck_assert_uint_eq(store_bits(TIR_BF16, ldexp(3, -134)), 0x0002); /* 1.5 ulp: tie to 2 */
    ck_assert_uint_eq(store_bits(TIR_BF16, ldexp(1, -126)), 0x0080); /* smallest normal */
    ck_assert(load_bits(TIR_BF16, 0x4049) == 3.140625);
    ck_assert(load_bits(TIR_BF16, 0x0001) == ldexp(1, -133));
    ck_assert(isinf(load_bits(TIR_BF16, 0x7f80)));
    ck_assert(isnan(load_bits(TIR_BF16, 0x7fc1)));
    ck_assert_uint_eq(tir_f32_to_bf16_bits(1.00390625f), 0x3f80);
    ck_assert_uint_eq(tir_f32_to_bf16_bits(-1.01171875f), 0xbf82);
    ck_assert(tir_bf16_bits_to_f32(0x3f82) == 1.015625f);
    ck_assert(tir_dtype_round(TIR_BF16, 3.14159) == 3.140625);
}
END_TEST

START_TEST(test_f16) {
    ck_assert_uint_eq(store_bits(TIR_F16, 1.0), 0x3c00);
    ck_assert_uint_eq(store_bits(TIR_F16, -2.0), 0xc000);
    ck_assert_uint_eq(store_bits(TIR_F16, 0.1), 0x2e66);
    ck_assert_uint_eq(store_bits(TIR_F16, 1.0 / 3), 0x3555);
    ck_assert_uint_eq(store_bits(TIR_F16, 65504), 0x7bff);   /* max */
    ck_assert_uint_eq(store_bits(TIR_F16, 65519), 0x7bff);   /* below the halfway point */
    ck_assert_uint_eq(store_bits(TIR_F16, 65520), 0x7c00);   /* halfway: odd max -> inf */
    ck_assert_uint_eq(store_bits(TIR_F16, -1e6), 0xfc00);
    ck_assert_uint_eq(store_bits(TIR_F16, ldexp(1, -24)), 0x0001); /* smallest subnormal */
    ck_assert_uint_eq(store_bits(TIR_F16, ldexp(1, -25)), 0x0000); /* tie to even */
    ck_assert_uint_eq(store_bits(TIR_F16, ldexp(1.0001, -25)), 0x0001);
    ck_assert_uint_eq(store_bits(TIR_F16, ldexp(1, -14)), 0x0400);  /* smallest normal */
    ck_assert_uint_eq(store_bits(TIR_F16, ldexp(1023, -24)), 0x03ff); /* largest subnormal */
    ck_assert_uint_eq(store_bits(TIR_F16, 1 + ldexp(1, -11)), 0x3c00); /* tie to even */
    ck_assert_uint_eq(store_bits(TIR_F16, 1 + ldexp(3, -11)), 0x3c02);
    ck_assert_uint_eq(store_bits(TIR_F16, NAN) & 0x7fff, 0x7e00);
    ck_assert(load_bits(TIR_F16, 0x7bff) == 65504);
    ck_assert(load_bits(TIR_F16, 0x0001) == ldexp(1, -24));
    ck_assert(load_bits(TIR_F16, 0x8400) == -ldexp(1, -14));
    ck_assert(isinf(load_bits(TIR_F16, 0xfc00)) && load_bits(TIR_F16, 0xfc00) < 0);
    ck_assert(isnan(load_bits(TIR_F16, 0x7c01)));
    ck_assert_uint_eq(tir_f32_to_f16_bits(65520.0f), 0x7c00);
    ck_assert_uint_eq(tir_f32_to_f16_bits(0.1f), 0x2e66);
    ck_assert(tir_f16_bits_to_f32(0x3555) == 0.333251953125f);
}
END_TEST

START_TEST(test_f8) {
    /* e4m3fn: bias 7, no inf, max 448 = 1.75*2^8 = 0x7e, NaN 0x7f */
    ck_assert_uint_eq(store_bits(TIR_F8E4M3, 1.0), 0x38);
    ck_assert_uint_eq(store_bits(TIR_F8E4M3, 448), 0x7e);
    ck_assert_uint_eq(store_bits(TIR_F8E4M3, 464), 0x7e);   /* tie between 448 and 480: even */
    ck_assert_uint_eq(store_bits(TIR_F8E4M3, 480), 0x7e);   /* saturate */
    ck_assert_uint_eq(store_bits(TIR_F8E4M3, 1e9), 0x7e);
    ck_assert_uint_eq(store_bits(TIR_F8E4M3, INFINITY), 0x7e);
    ck_assert_uint_eq(store_bits(TIR_F8E4M3, -1000), 0xfe);
    ck_assert_uint_eq(store_bits(TIR_F8E4M3, NAN) & 0x7f, 0x7f);
    ck_assert_uint_eq(store_bits(TIR_F8E4M3, ldexp(1, -9)), 0x01);  /* smallest subnormal */
    ck_assert_uint_eq(store_bits(TIR_F8E4M3, ldexp(1, -10)), 0x00); /* tie to even */
    ck_assert_uint_eq(store_bits(TIR_F8E4M3, 0.0625), 0x18);
    ck_assert_uint_eq(store_bits(TIR_F8E4M3, 1.0625), 0x38);  /* tie: 1.0 */
    ck_assert_uint_eq(store_bits(TIR_F8E4M3, 1.1875), 0x3a);  /* tie: 1.25 */
    ck_assert(load_bits(TIR_F8E4M3, 0x7e) == 448);
    ck_assert(isnan(load_bits(TIR_F8E4M3, 0x7f)) && isnan(load_bits(TIR_F8E4M3, 0xff)));
    ck_assert(load_bits(TIR_F8E4M3, 0x78) == 256); /* exponent all ones is finite in fn */
    ck_assert(load_bits(TIR_F8E4M3, 0x81) == -ldexp(1, -9));
    ck_assert(tir_dtype_round(TIR_F8E4M3, 500) == 448);
    ck_assert(isnan(tir_dtype_round(TIR_F8E4M3, NAN)));

    /* e5m2: bias 15, max 57344 = 1.75*2^15 = 0x7b, inf 0x7c */
    ck_assert_uint_eq(store_bits(TIR_F8E5M2, 1.0), 0x3c);
    ck_assert_uint_eq(store_bits(TIR_F8E5M2, 57344), 0x7b);
    ck_assert_uint_eq(store_bits(TIR_F8E5M2, 61440), 0x7b); /* would round to 2^16: satfinite */
    ck_assert_uint_eq(store_bits(TIR_F8E5M2, -1e6), 0xfb);
    ck_assert_uint_eq(store_bits(TIR_F8E5M2, INFINITY), 0x7c);
    ck_assert_uint_eq(store_bits(TIR_F8E5M2, NAN) & 0x7f, 0x7e);
    ck_assert_uint_eq(store_bits(TIR_F8E5M2, ldexp(1, -16)), 0x01);
    ck_assert_uint_eq(store_bits(TIR_F8E5M2, 1.125), 0x3c); /* tie: 1.0 */
    ck_assert_uint_eq(store_bits(TIR_F8E5M2, 1.375), 0x3e); /* tie: 1.5 */
    ck_assert(load_bits(TIR_F8E5M2, 0x7b) == 57344);
    ck_assert(isinf(load_bits(TIR_F8E5M2, 0xfc)));
    ck_assert(isnan(load_bits(TIR_F8E5M2, 0x7d)));
}
END_TEST

START_TEST(test_ints) {
    ck_assert(tir_dtype_round(TIR_I32, 3.7) == 3);
    ck_assert(tir_dtype_round(TIR_I32, -3.7) == -3);
    ck_assert(tir_dtype_round(TIR_I32, 1e10) == 2147483647.0);
    ck_assert(tir_dtype_round(TIR_I32, -1e10) == -2147483648.0);
    ck_assert(tir_dtype_round(TIR_I32, NAN) == 0);
    ck_assert(tir_dtype_round(TIR_U8, -5) == 0);
    ck_assert(tir_dtype_round(TIR_U8, 300) == 255);
    ck_assert(tir_dtype_round(TIR_U8, 255.9) == 255);
    ck_assert(tir_dtype_round(TIR_I8, 128) == 127);
    ck_assert(tir_dtype_round(TIR_I8, -129.5) == -128);
    ck_assert(tir_dtype_round(TIR_BOOL, 0.5) == 1);
    ck_assert(tir_dtype_round(TIR_BOOL, -0.0) == 0);
    ck_assert(tir_dtype_round(TIR_BOOL, NAN) == 1);
    ck_assert(tir_dtype_round(TIR_F32, 0.1) == (double)0.1f);
    ck_assert(tir_dtype_round(TIR_F64, 0.1) == 0.1);
    unsigned char b[8];
    tir_dtype_store(TIR_I64, b, 1e19);
    int64_t x;
    memcpy(&x, b, 8);
    ck_assert(x == INT64_MAX);
    tir_dtype_store(TIR_I64, b, -1e19);
    memcpy(&x, b, 8);
    ck_assert(x == INT64_MIN);
    tir_dtype_store(TIR_I64, b, -123456789012.9);
    memcpy(&x, b, 8);
    ck_assert(x == -123456789012);
    tir_dtype_store(TIR_I32, b, -7.9);
    int32_t y;
    memcpy(&y, b, 4);
    ck_assert_int_eq(y, -7);
    tir_dtype_store(TIR_BOOL, b, -3);
    ck_assert_int_eq(b[0], 1);
    ck_assert(load_bits(TIR_U8, 200) == 200);
    ck_assert(load_bits(TIR_I8, 200) == -56);
}
END_TEST

/* round(t, v) == load(store(v)) for every dtype over awkward values */
START_TEST(test_round_is_store_load) {
    uint64_t s = 99;
    double special[] = {0.0, -0.0, 1.0, -1.0, 0.5, 65504, 65520, 448, 464, 57344, 61440,
                        1e-8, 1e-40, -1e-45, 3e38, 3.5e38, 1e300, INFINITY, -INFINITY,
                        2147483647.5, -2147483648.5, 9.3e18, -9.3e18, 255.5, -0.5, 1e-320};
    for (int dt = 0; dt < TIR_DTYPE_COUNT; dt++) {
        for (int i = 0; i < 2000 + (int)(sizeof special / sizeof special[0]); i++) {
            double v;
            if (i < (int)(sizeof special / sizeof special[0])) {
                v = special[i];
            } else {
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                double m = (double)(s >> 11) / 9007199254740992.0 * 2 - 1; /* [-1, 1) */
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                v = ldexp(m, (int)(s >> 58) - 30 + (int)((s >> 40) & 31) - 15);
            }
            unsigned char b[8];
            tir_dtype_store((tir_dtype)dt, b, v);
            double l = tir_dtype_load((tir_dtype)dt, b), r = tir_dtype_round((tir_dtype)dt, v);
            ck_assert_msg(l == r || (isnan(l) && isnan(r)), "%s: %.17g rounds to %.17g, stores as %.17g",
                          tir_dtype_name((tir_dtype)dt), v, r, l);
            /* rounding is idempotent */
            double rr = tir_dtype_round((tir_dtype)dt, r);
            ck_assert(rr == r || (isnan(rr) && isnan(r)));
        }
        double nr = tir_dtype_round((tir_dtype)dt, NAN);
        if (tir_dtype_is_float((tir_dtype)dt)) ck_assert(isnan(nr));
    }
}
END_TEST

/* every 16-bit pattern decodes and re-encodes to itself (NaNs to a NaN) */
START_TEST(test_all_16bit_patterns) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = tir_f16_bits_to_f32((uint16_t)h);
        if (isnan(f)) ck_assert(isnan(tir_f16_bits_to_f32(tir_f32_to_f16_bits(f))));
        else ck_assert_uint_eq(tir_f32_to_f16_bits(f), h);
        float g = tir_bf16_bits_to_f32((uint16_t)h);
        if (isnan(g)) ck_assert(isnan(tir_bf16_bits_to_f32(tir_f32_to_bf16_bits(g))));
        else ck_assert_uint_eq(tir_f32_to_bf16_bits(g), h);
    }
    for (uint32_t h = 0; h < 256; h++) {
        double a = load_bits(TIR_F8E4M3, h), b = load_bits(TIR_F8E5M2, h);
        if (!isnan(a)) ck_assert_uint_eq(store_bits(TIR_F8E4M3, a), h);
        if (!isnan(b)) ck_assert_uint_eq(store_bits(TIR_F8E5M2, b), h);
    }
}
END_TEST

START_TEST(test_tensor) {
    int64_t dims[3] = {2, 3, 5};
    tir_tensor *t = tir_tensor_new(TIR_BF16, 3, dims);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tir_tensor_rank(t), 3);
    ck_assert_int_eq(tir_tensor_dim(t, 2), 5);
    ck_assert_int_eq(tir_tensor_dim(t, 3), -1);
    ck_assert_int_eq(tir_tensor_numel(t), 30);
    ck_assert_int_eq(tir_tensor_nbytes(t), 60);
    ck_assert_int_eq(tir_tensor_dtype(t), TIR_BF16);
    ck_assert_int_eq((uintptr_t)tir_tensor_data(t) % 64, 0);
    for (int i = 0; i < 30; i++) tir_tensor_set(t, i, 1.0 + i / 256.0);
    uint16_t *raw = tir_tensor_data(t);
    ck_assert_uint_eq(raw[1], 0x3f80); /* 1 + 2^-8 ties to even */
    ck_assert_uint_eq(raw[3], 0x3f82); /* 1 + 3*2^-8 ties to even */
    ck_assert(tir_tensor_get(t, 2) == 1.0078125);
    ck_assert(isnan(tir_tensor_get(t, 30)));
    tir_tensor_set(t, -1, 5); /* ignored */
    tir_tensor_free(t);

    tir_tensor *s = tir_tensor_new(TIR_I32, 0, NULL);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(tir_tensor_numel(s), 1);
    tir_tensor_set(s, 0, -9.9);
    ck_assert(tir_tensor_get(s, 0) == -9);
    tir_tensor_free(s);

    int64_t zero[2] = {0, 7};
    tir_tensor *z = tir_tensor_new(TIR_F32, 2, zero);
    ck_assert_ptr_nonnull(z);
    ck_assert_int_eq(tir_tensor_numel(z), 0);
    tir_tensor_free(z);

    int64_t neg[1] = {-1}, huge[2] = {INT64_MAX / 2, 4};
    ck_assert_ptr_null(tir_tensor_new(TIR_F32, 1, neg));
    ck_assert_ptr_null(tir_tensor_new(TIR_F32, 2, huge));
    ck_assert_ptr_null(tir_tensor_new(TIR_F32, TIR_MAX_RANK + 1, dims));
    ck_assert_ptr_null(tir_tensor_new(TIR_DTYPE_COUNT, 1, dims));
    ck_assert_ptr_null(tir_tensor_new(TIR_F32, 1, NULL));
    tir_tensor_free(NULL);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("dtype");
    TCase *tc = tcase_create("dtype");
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_bf16);
    tcase_add_test(tc, test_f16);
    tcase_add_test(tc, test_f8);
    tcase_add_test(tc, test_ints);
    tcase_add_test(tc, test_round_is_store_load);
    tcase_add_test(tc, test_all_16bit_patterns);
    suite_add_tcase(s, tc);
    TCase *tt = tcase_create("tensor");
    tcase_add_test(tt, test_tensor);
    suite_add_tcase(s, tt);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
