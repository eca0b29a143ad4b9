/* test_npy.c: .npy reading and writing (runtime/npy.c): round trips of every dtype, the bf16/f8
 * -> f32 rule, the header layout numpy expects, files in versions 1/2/3 written by hand, every
 * rejection with its message, and a mutation fuzz of the header parser (run under ASan). */
#include <check.h>
#include <stdio.h>
#include <unistd.h>

#include "ir.h"
#include "npy.h"

static char tmpdir[] = "/tmp/tir_test_npy_XXXXXX";

static void tmp_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

/* a .npy image: magic, version, header length (2 or 4 bytes), dict (unpadded), data */
static size_t make_npy(unsigned char *out, int major, const char *dict, const void *data, size_t dn) {
    size_t hl = strlen(dict), pre = major == 1 ? 10 : 12;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) out[8 + i] = (unsigned char)(hl >> (8 * i));
    memcpy(out + pre, dict, hl);
    if (dn) memcpy(out + pre + hl, data, dn);
    return pre + hl + dn;
}

static tir_status load_dict(int major, const char *dict, const void *data, size_t dn, tir_tensor **t,
                            tir_diag *d) {
    static unsigned char buf[1 << 16];
    size_t n = make_npy(buf, major, dict, data, dn);
    return tir_npy_load_mem(buf, n, "x.npy", t, d);
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

static unsigned char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)sz + 1);
    ck_assert_uint_eq(fread(p, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return p;
}

START_TEST(roundtrip_every_dtype) {
    static const tir_dtype dts[] = {TIR_F64, TIR_F32, TIR_F16, TIR_I64, TIR_I32, TIR_I8, TIR_U8, TIR_BOOL};
    int64_t dims[3] = {2, 3, 5};
    for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++) {
        tir_tensor *t = tir_tensor_new(dts[k], 3, dims);
        ck_assert_ptr_nonnull(t);
        for (int64_t i = 0; i < 30; i++)
            tir_tensor_set(t, i, dts[k] == TIR_BOOL ? (double)(i % 3 == 0) : (double)(i * 7 % 11) - 5.25);
        char path[256];
        tmp_path(path, sizeof path, "rt.npy");
        tir_diag d;
        ck_assert_int_eq(tir_tensor_save_npy(t, path, &d), TIR_OK);
        tir_tensor *u = NULL;
        ck_assert_msg(tir_tensor_load_npy(path, &u, &d) == TIR_OK, "%s: %s", tir_dtype_name(dts[k]), d.msg);
        ck_assert_int_eq(tir_tensor_dtype(u), dts[k]);
        ck_assert_int_eq(tir_tensor_rank(u), 3);
        for (int i = 0; i < 3; i++) ck_assert_int_eq(tir_tensor_dim(u, i), dims[i]);
        ck_assert_uint_eq(tir_tensor_nbytes(u), tir_tensor_nbytes(t));
        ck_assert_mem_eq(tir_tensor_data(u), tir_tensor_data(t), tir_tensor_nbytes(t));
        ck_assert(tir_tensor_get(u, 1) != 0 || tir_tensor_get(u, 0) != 0);
        tir_tensor_free(t);
        tir_tensor_free(u);
        unlink(path);
    }
}
END_TEST

START_TEST(header_layout_is_numpys) {
    int64_t n = 3;
    tir_tensor *t = tir_tensor_new(TIR_F32, 1, &n);
    for (int i = 0; i < 3; i++) tir_tensor_set(t, i, i + 0.5);
    char path[256];
    tmp_path(path, sizeof path, "layout.npy");
    tir_diag d;
    ck_assert_int_eq(tir_tensor_save_npy(t, path, &d), TIR_OK);
    size_t sz;
    unsigned char *p = read_file(path, &sz);
    ck_assert_mem_eq(p, "\x93NUMPY\x01\x00", 8);
    size_t hl = p[8] | (size_t)p[9] << 8;
    ck_assert_uint_eq((10 + hl) % 64, 0);
    ck_assert_uint_eq(sz, 10 + hl + 12);
    ck_assert_int_eq(p[10 + hl - 1], '\n');
    p[10 + hl - 1] = 0;
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
    ck_assert_mem_eq(p + 10, dict, strlen(dict));
    for (size_t i = 10 + strlen(dict); i < 10 + hl - 1; i++) ck_assert_int_eq(p[i], ' ');
    ck_assert_int_eq(((float *)(p + 10 + hl))[2], 2.5f);
    free(p);
    tir_tensor_free(t);

    /* a scalar is shape () and one-byte types carry '|' */
    tir_tensor *s = tir_tensor_new(TIR_U8, 0, NULL);
    tir_tensor_set(s, 0, 200);
    ck_assert_int_eq(tir_tensor_save_npy(s, path, &d), TIR_OK);
    p = read_file(path, &sz);
    ck_assert_ptr_nonnull(strstr((char *)p + 10, "{'descr': '|u1', 'fortran_order': False, 'shape': (), }"));
    ck_assert_int_eq(p[sz - 1], 200);
    free(p);
    tir_tensor_free(s);
    unlink(path);
}
END_TEST

START_TEST(bf16_and_f8_save_as_f32) {
    static const tir_dtype dts[] = {TIR_BF16, TIR_F8E4M3, TIR_F8E5M2};
    int64_t dims[2] = {2, 2};
    const double vals[4] = {1.5, -0.25, 3.0, -2.0}; /* exact in every one of them */
    for (int k = 0; k < 3; k++) {
        tir_tensor *t = tir_tensor_new(dts[k], 2, dims);
        for (int i = 0; i < 4; i++) tir_tensor_set(t, i, vals[i]);
        char path[256];
        tmp_path(path, sizeof path, "bf.npy");
        tir_diag d;
        ck_assert_int_eq(tir_tensor_save_npy(t, path, &d), TIR_OK);
        tir_tensor *u = NULL;
        ck_assert_int_eq(tir_tensor_load_npy(path, &u, &d), TIR_OK);
        ck_assert_int_eq(tir_tensor_dtype(u), TIR_F32);
        for (int i = 0; i < 4; i++) ck_assert_double_eq(tir_tensor_get(u, i), vals[i]);
        tir_tensor_free(t);
        tir_tensor_free(u);
        unlink(path);
    }
}
END_TEST

START_TEST(reads_versions_and_spellings) {
    float data[6] = {1, -2, 3, -4, 5.5f, 6};
    const char *ok[][2] = {
        {"1", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }          \n"},
        {"2", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n"},
        {"3", "{\"shape\": (2,3), \"descr\": \"<f4\", \"fortran_order\": False}"},
        {"1", "{'fortran_order':False,'shape':(2L, 3L),'descr':'=f4'}"},
        {"1", " {  'descr' : '<f4' , 'shape' : ( 2 , 3 , ) , 'fortran_order' : False , } \n\n"},
    };
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        tir_tensor *t = NULL;
        tir_diag d;
        ck_assert_msg(load_dict(ok[k][0][0] - '0', ok[k][1], data, sizeof data, &t, &d) == TIR_OK, "%zu: %s",
                      k, d.msg);
        ck_assert_int_eq(tir_tensor_dtype(t), TIR_F32);
        ck_assert_int_eq(tir_tensor_rank(t), 2);
        ck_assert_int_eq(tir_tensor_dim(t, 0), 2);
        ck_assert_int_eq(tir_tensor_dim(t, 1), 3);
        ck_assert_double_eq(tir_tensor_get(t, 4), 5.5);
        tir_tensor_free(t);
    }
    /* trailing bytes after the data are ignored; bool bytes normalise to 0/1 */
    unsigned char bools[5] = {0, 2, 1, 0, 0xAA};
    tir_tensor *t = NULL;
    tir_diag d;
    ck_assert_int_eq(load_dict(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (4,), }", bools, 5, &t, &d),
                     TIR_OK);
    ck_assert_int_eq(tir_tensor_numel(t), 4);
    ck_assert_int_eq(((unsigned char *)tir_tensor_data(t))[1], 1);
    ck_assert_double_eq(tir_tensor_get(t, 2), 1);
    ck_assert_double_eq(tir_tensor_get(t, 3), 0);
    tir_tensor_free(t);
    /* zero-size arrays are fine */
    ck_assert_int_eq(load_dict(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (0, 4), }", NULL, 0, &t, &d),
                     TIR_OK);
    ck_assert_int_eq(tir_tensor_numel(t), 0);
    tir_tensor_free(t);
}
END_TEST

typedef struct bad_case {
    int major;
    const char *dict;
    size_t datalen;
    const char *want; /* substring of the message */
} bad_case;

START_TEST(rejects_with_clear_messages) {
    static const bad_case cases[] = {
        {4, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8, "version 4.0"},
        {1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, "big-endian"},
        {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8, "fortran_order"},
        {1, "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", 8, "bf16"},
        {1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16, "unsupported dtype '<c8'"},
        {1, "{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }", 8, "unsupported dtype"},
        {1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, "structured"},
        {1, "{'descr': '<f4', 'shape': (2,), }", 8, "no 'fortran_order'"},
        {1, "{'descr': '<f4', 'fortran_order': False}", 8, "no 'shape'"},
        {1, "{'fortran_order': False, 'shape': (2,)}", 8, "no 'descr'"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8, "unexpected key 'x'"},
        {1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8, "twice"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8, "negative"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 8, "too large"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }", 8, "too large"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4, "rank"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8, "truncated data"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }", 8, "truncated data"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk", 8, "after the header"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,) ", 8, "malformed"},
        {1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}", 8, "True or False"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", 8, "tuple"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", 8, "malformed"},
        {1, "{'descr: '<f4'}", 8, "malformed"},
        {1, "", 0, "malformed"},
    };
    unsigned char data[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tir_tensor *t = (tir_tensor *)&data; /* must be reset to NULL */
        tir_diag d;
        tir_status s = load_dict(cases[k].major, cases[k].dict, data, cases[k].datalen, &t, &d);
        ck_assert_msg(s == TIR_ERR_IO, "case %zu (%s) gave %d", k, cases[k].dict, s);
        ck_assert_ptr_null(t);
        ck_assert_msg(strstr(d.msg, cases[k].want) != NULL, "case %zu: '%s' lacks '%s'", k, d.msg, cases[k].want);
        ck_assert_msg(strncmp(d.msg, "x.npy: ", 7) == 0, "case %zu: '%s' does not name the file", k, d.msg);
    }
    /* bad magic, short files */
    tir_tensor *t = NULL;
    tir_diag d;
    ck_assert_int_eq(tir_npy_load_mem("PK\x03\x04 not npy at all", 20, "x.npy", &t, &d), TIR_ERR_IO);
    ck_assert_ptr_nonnull(strstr(d.msg, "bad magic"));
    ck_assert_int_eq(tir_npy_load_mem("\x93NUMPY\x01", 7, "x.npy", &t, &d), TIR_ERR_IO);
    ck_assert_int_eq(tir_npy_load_mem("\x93NUMPY\x01\x00\x50", 9, "x.npy", &t, &d), TIR_ERR_IO);
    ck_assert_ptr_nonnull(strstr(d.msg, "truncated"));
    ck_assert_int_eq(tir_npy_load_mem("\x93NUMPY\x01\x00\x50\x00{'de", 14, "x.npy", &t, &d), TIR_ERR_IO);
    ck_assert_ptr_nonnull(strstr(d.msg, "truncated"));
    ck_assert_int_eq(tir_npy_load_mem(NULL, 0, "x.npy", &t, &d), TIR_ERR_IO);
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(file_errors_name_the_file) {
    char path[256];
    tmp_path(path, sizeof path, "missing.npy");
    tir_tensor *t = NULL;
    tir_diag d;
    ck_assert_int_eq(tir_tensor_load_npy(path, &t, &d), TIR_ERR_IO);
    ck_assert_ptr_nonnull(strstr(d.msg, path));
    ck_assert_ptr_nonnull(strstr(d.msg, "cannot open"));
    /* the file loader's own truncation paths: header, then data */
    unsigned char buf[256];
    float data[2] = {1.5f, 2.5f};
    size_t n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", data, 8);
    tmp_path(path, sizeof path, "trunc.npy");
    write_file(path, buf, n - 1);
    ck_assert_int_eq(tir_tensor_load_npy(path, &t, &d), TIR_ERR_IO);
    ck_assert_ptr_nonnull(strstr(d.msg, "truncated data"));
    ck_assert_ptr_nonnull(strstr(d.msg, path));
    write_file(path, buf, 30);
    ck_assert_int_eq(tir_tensor_load_npy(path, &t, &d), TIR_ERR_IO);
    ck_assert_ptr_nonnull(strstr(d.msg, "truncated .npy header"));
    write_file(path, buf, n);
    ck_assert_int_eq(tir_tensor_load_npy(path, &t, &d), TIR_OK);
    ck_assert_double_eq(tir_tensor_get(t, 1), 2.5);
    tir_tensor_free(t);
    /* a header so short that the 12 bytes read first already include data */
    unsigned char tiny[16];
    memcpy(tiny, "\x93NUMPY\x01\x00\x00\x00", 10);
    write_file(path, tiny, 10);
    ck_assert_int_eq(tir_tensor_load_npy(path, &t, &d), TIR_ERR_IO);
    ck_assert_ptr_null(t);
    unlink(path);
    /* saving into a directory that does not exist */
    int64_t one = 1;
    tir_tensor *s = tir_tensor_new(TIR_F32, 1, &one);
    tmp_path(path, sizeof path, "no/such/dir/x.npy");
    ck_assert_int_eq(tir_tensor_save_npy(s, path, &d), TIR_ERR_IO);
    ck_assert_ptr_nonnull(strstr(d.msg, path));
    tir_tensor_free(s);
}
END_TEST

/* Random mutations of valid files: every outcome must be a clean status, never a crash, an
 * out-of-bounds read (ASan) or a leak. Also drives the file loader on some of them. */
START_TEST(fuzz_header) {
    const char *seeds[] = {
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
        "{'descr': '|b1', 'fortran_order': False, 'shape': (6,), }",
        "{'descr': '<i8', 'fortran_order': False, 'shape': (), }",
    };
    static const char alphabet[] = "{}()[],:'\" \n0123456789-LTrueFalsedescrshape<>|=f4i8u1b1\\\x00\xff";
    unsigned char base[512], buf[512];
    unsigned char payload[48];
    for (int i = 0; i < 48; i++) payload[i] = (unsigned char)(i * 37 + 1);
    uint64_t rng = 0x1234567;
    int ok = 0, bad = 0;
    char path[256];
    tmp_path(path, sizeof path, "fuzz.npy");
    for (int it = 0; it < 30000; it++) {
        size_t n = make_npy(base, 1 + it % 3, seeds[it % 3], payload, sizeof payload);
        memcpy(buf, base, n);
        int nmut = 1 + (int)((rng >> 33) % 4);
        for (int m = 0; m < nmut && n > 0; m++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (size_t)(rng >> 33) % n;
            switch ((rng >> 20) % 4) {
            case 0: buf[pos] = (unsigned char)(rng >> 40); break;
            case 1: buf[pos] = (unsigned char)alphabet[(rng >> 40) % (sizeof alphabet - 1)]; break;
            case 2: n = pos; break; /* truncate */
            default:
                if (n + 1 < sizeof buf) {
                    memmove(buf + pos + 1, buf + pos, n - pos);
                    buf[pos] = (unsigned char)alphabet[(rng >> 40) % (sizeof alphabet - 1)];
                    n++;
                }
            }
        }
        tir_tensor *t = NULL;
        tir_diag d;
        tir_status s = tir_npy_load_mem(buf, n, "f.npy", &t, &d);
        if (s == TIR_OK) {
            ck_assert_ptr_nonnull(t);
            tir_tensor_free(t);
            ok++;
        } else {
            ck_assert_ptr_null(t);
            ck_assert(d.msg[0] != 0);
            bad++;
        }
        if (it % 50 == 0) {
            write_file(path, buf, n);
            tir_tensor *u = NULL;
            tir_status s2 = tir_tensor_load_npy(path, &u, &d);
            ck_assert_int_eq(s2 == TIR_OK, s == TIR_OK);
            tir_tensor_free(u);
        }
    }
    unlink(path);
    ck_assert_int_gt(ok, 100);
    ck_assert_int_gt(bad, 1000);
}
END_TEST

int main(void) {
    if (!mkdtemp(tmpdir)) return 1;
    Suite *s = suite_create("npy");
    TCase *tc = tcase_create("npy");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, roundtrip_every_dtype);
    tcase_add_test(tc, header_layout_is_numpys);
    tcase_add_test(tc, bf16_and_f8_save_as_f32);
    tcase_add_test(tc, reads_versions_and_spellings);
    tcase_add_test(tc, rejects_with_clear_messages);
    tcase_add_test(tc, file_errors_name_the_file);
    tcase_add_test(tc, fuzz_header);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    rmdir(tmpdir);
    return failed ? 1 : 0;
}
