/* test_runtime.c: the GPU path on any machine: no driver is a clean TIR_ERR_NO_DRIVER;
 * tir_compile needs no GPU and yields kernels with PTX (checked by ptxas through `tirc ptx` when
 * the toolkit is here); argument checking happens before the device is touched; TIR_DUMP=ptx;
 * the comparison rule of DESIGN §6. Where a GPU is present, small programs run on it (host and
 * device-resident) and match the interpreter; elsewhere that part skips. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <unistd.h>

#include "cmd_gpu.h"
#include "compile.h"
#include "ir.h"

static tir_context *ctx;
static tir_module *mod;

static const char *SRC =
    "func @f(%x: f32[N], %y: f32[N]) -> f32[N] {\n"
    "  %a = add(%x, %y)\n"
    "  %b = exp(mul(%a, 0.5))\n"
    "  return %b\n"
    "}\n"
    "func @g(%x: f32[R, C]) -> (f32[R], f32[R, C]) {\n"
    "  %s = sum(%x, axes=[1])\n"
    "  %n = neg(%x)\n"
    "  return %s, %n\n"
    "}\n";

static void setup(void) {
    ctx = tir_context_create();
    ck_assert_ptr_nonnull(ctx);
    tir_diag d;
    mod = NULL;
    ck_assert_msg(tir_module_parse(ctx, SRC, "rt.tir", &mod, &d) == TIR_OK, "%s", d.msg);
}

static void teardown(void) {
    tir_module_free(mod);
    tir_context_destroy(ctx);
}

static tir_tensor *vec(int64_t n, double scale) {
    tir_tensor *t = tir_tensor_new(TIR_F32, 1, &n);
    for (int64_t i = 0; i < n; i++) tir_tensor_set(t, i, scale * (double)((i % 13) + 1) / 7.0);
    return t;
}

/* with TIR_CUDA_LIB pointing nowhere, every device entry point says "no CUDA driver" */
START_TEST(test_no_driver) {
    const char *old = getenv("TIR_CUDA_LIB");
    char *saved = old ? strdup(old) : NULL;
    setenv("TIR_CUDA_LIB", "/nonexistent/libcuda.so.1", 1);
    tir_diag d;
    char desc[128];
    ck_assert_int_eq(tir_device_probe(ctx, desc, sizeof desc, &d), TIR_ERR_NO_DRIVER);
    ck_assert_msg(strstr(d.msg, "no CUDA driver") != NULL, "%s", d.msg);
    tir_device_tensor *dt = NULL;
    int64_t n = 4;
    ck_assert_int_eq(tir_device_tensor_new(ctx, TIR_F32, 1, &n, &dt, &d), TIR_ERR_NO_DRIVER);
    ck_assert_ptr_null(dt);
    tir_stream *st = NULL;
    ck_assert_int_eq(tir_stream_create(ctx, &st, &d), TIR_ERR_NO_DRIVER);
    ck_assert_ptr_null(ctx->runtime); /* a failure is not kept: a later call tries again */
#ifdef TIR_WITH_LLVM
    tir_program *p = NULL;
    ck_assert_msg(tir_compile(mod, "f", NULL, &p, &d) == TIR_OK, "%s", d.msg);
    tir_tensor *x = vec(5, 1), *y = vec(5, -0.5), *args[] = {x, y}, *out[1] = {NULL};
    ck_assert_int_eq(tir_program_run(p, 2, args, 1, out, &d), TIR_ERR_NO_DRIVER);
    ck_assert_ptr_null(out[0]);
    FILE *devnull = fopen("/dev/null", "w");
    ck_assert_int_eq(tir_cmd_compare(mod, "f", NULL, NULL, 2, args, devnull, NULL), 1);
    fclose(devnull);
    tir_tensor_free(x);
    tir_tensor_free(y);
    tir_program_free(p);
#endif
    if (saved) setenv("TIR_CUDA_LIB", saved, 1);
    else unsetenv("TIR_CUDA_LIB");
    free(saved);
}
END_TEST

#ifdef TIR_WITH_LLVM
/* compiling needs no GPU: every kernel has PTX with its entry */
START_TEST(test_compile_no_gpu) {
    tir_diag d;
    tir_options o;
    tir_options_init(&o);
    ck_assert_str_eq(o.arch, "sm_90a");
    tir_program *p = NULL;
    ck_assert_msg(tir_compile(mod, "f", &o, &p, &d) == TIR_OK, "%s", d.msg);
    int n = tir_program_num_kernels(p);
    ck_assert_int_ge(n, 1);
    for (int i = 0; i < n; i++) {
        const char *name = tir_program_kernel_name(p, i), *ptx = tir_program_kernel_ptx(p, i);
        ck_assert_ptr_nonnull(name);
        ck_assert_ptr_nonnull(tir_program_kernel_op(p, i));
        if (!ptx) continue;
        ck_assert_msg(strstr(ptx, ".entry") && strstr(ptx, name), "kernel %s: no entry", name);
        ck_assert_msg(strstr(ptx, ".target sm_90a") != NULL, "kernel %s: not sm_90a", name);
    }
    ck_assert_ptr_null(tir_program_kernel_name(p, n));
    ck_assert_int_eq(tir_program_num_results(p), 1);
    ck_assert(!tir_program_has_reduction(p));
    tir_program_free(p);

    ck_assert_msg(tir_compile(mod, "g", NULL, &p, &d) == TIR_OK, "%s", d.msg);
    ck_assert(tir_program_has_reduction(p));
    ck_assert_int_eq(tir_program_num_results(p), 2);
    tir_program_free(p);
}
END_TEST

START_TEST(test_compile_errors) {
    tir_diag d;
    tir_program *p = (tir_program *)&d;
    ck_assert_int_eq(tir_compile(mod, "nope", NULL, &p, &d), TIR_ERR_INVALID);
    ck_assert_ptr_null(p);
    ck_assert(strstr(d.msg, "@nope") != NULL);
    tir_options o;
    tir_options_init(&o);
    o.arch = "sm_bogus";
    ck_assert_int_eq(tir_compile(mod, "f", &o, &p, &d), TIR_ERR_INVALID);
    ck_assert_int_eq(tir_compile(NULL, "f", NULL, &p, &d), TIR_ERR_INVALID);
    ck_assert_int_eq(tir_compile(mod, "f", NULL, NULL, &d), TIR_ERR_INVALID);
}
END_TEST

/* bad arguments are caught from the shapes alone, before any device is needed */
START_TEST(test_run_arg_checks) {
    tir_diag d;
    tir_program *p = NULL;
    ck_assert_msg(tir_compile(mod, "f", NULL, &p, &d) == TIR_OK, "%s", d.msg);
    tir_tensor *x = vec(5, 1), *y = vec(6, 1), *out[2];
    tir_tensor *args[] = {x, y};
    ck_assert_int_eq(tir_program_run(p, 2, args, 1, out, &d), TIR_ERR_INVALID); /* N = 5 vs 6 */
    ck_assert_msg(strstr(d.msg, "%y") != NULL, "%s", d.msg);
    ck_assert_int_eq(tir_program_run(p, 1, args, 1, out, &d), TIR_ERR_INVALID); /* arity */
    ck_assert_int_eq(tir_program_run(p, 2, args, 2, out, &d), TIR_ERR_INVALID); /* results */
    int64_t two[2] = {5, 1};
    tir_tensor *m = tir_tensor_new(TIR_F32, 2, two), *args2[] = {x, m};
    ck_assert_int_eq(tir_program_run(p, 2, args2, 1, out, &d), TIR_ERR_INVALID); /* rank */
    tir_tensor *i32 = tir_tensor_new(TIR_I32, 1, (int64_t[]){5}), *args3[] = {x, i32};
    ck_assert_int_eq(tir_program_run(p, 2, args3, 1, out, &d), TIR_ERR_INVALID); /* dtype */
    ck_assert_int_eq(tir_program_set_dim(p, "N", -1, &d), TIR_ERR_INVALID);
    ck_assert_msg(tir_program_set_dim(p, "N", 7, &d) == TIR_OK, "%s", d.msg);
    ck_assert_int_eq(tir_program_set_dim(p, "N", 5, &d), TIR_OK); /* rebinding replaces */
    tir_tensor_free(x);
    tir_tensor_free(y);
    tir_tensor_free(m);
    tir_tensor_free(i32);
    tir_program_free(p);
}
END_TEST

static char tmpdir[256];

static void make_tmpdir(void) {
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/tir-rt-XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* removes tmpdir and what is in it (one level), counting the .ptx files */
static int clean_tmpdir(void) {
    int nptx = 0;
    DIR *dir = opendir(tmpdir);
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        if (e->d_name[0] == '.') continue;
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".ptx") == 0) nptx++;
        char path[600];
        snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    if (dir) closedir(dir);
    rmdir(tmpdir);
    return nptx;
}

START_TEST(test_dump_ptx) {
    make_tmpdir();
    setenv("TIR_DUMP", "ptx", 1);
    setenv("TIR_DUMP_DIR", tmpdir, 1);
    tir_diag d;
    tir_program *p = NULL;
    tir_status s = tir_compile(mod, "f", NULL, &p, &d);
    unsetenv("TIR_DUMP");
    unsetenv("TIR_DUMP_DIR");
    ck_assert_msg(s == TIR_OK, "%s", d.msg);
    int want = 0;
    for (int i = 0; i < tir_program_num_kernels(p); i++) want += tir_program_kernel_ptx(p, i) != NULL;
    tir_program_free(p);
    ck_assert_int_eq(clean_tmpdir(), want);
}
END_TEST

/* `tirc ptx -o DIR`: PTX files, and ptxas (when here) accepts every kernel */
START_TEST(test_cmd_ptx) {
    make_tmpdir();
    char file[300];
    snprintf(file, sizeof file, "%s/k.tir", tmpdir);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fputs(SRC, f);
    fclose(f);
    char *argv[] = {"ptx", file, "--func", "f", "-o", tmpdir, NULL};
    ck_assert_int_eq(tir_cmd_ptx(6, argv), 0);
    char *bad[] = {"ptx", file, "--func", "nope", NULL};
    ck_assert_int_eq(tir_cmd_ptx(4, bad), 1);
    char *none[] = {"ptx", NULL};
    ck_assert_int_eq(tir_cmd_ptx(1, none), 1);
    ck_assert_int_ge(clean_tmpdir(), 1);
}
END_TEST
#endif

START_TEST(test_compare_rule) {
    int64_t n = 4;
    tir_tensor *a = tir_tensor_new(TIR_F32, 1, &n), *b = tir_tensor_new(TIR_F32, 1, &n);
    for (int i = 0; i < 4; i++) {
        tir_tensor_set(a, i, i + 1);
        tir_tensor_set(b, i, i + 1);
    }
    ck_assert(tir_rel_error(a, b) == 0);
    tir_tensor_set(a, 3, 4.0001);
    double e = tir_rel_error(a, b);
    ck_assert(e > 1e-6 && e < 1e-4);
    tir_tensor_set(a, 0, NAN);
    ck_assert(isnan(tir_rel_error(a, b))); /* NaN never passes */
    tir_tensor_set(a, 0, 1);
    tir_tensor_set(b, 0, INFINITY);
    ck_assert(isinf(tir_rel_error(a, b)));
    /* a NaN where the reference has one (a mean over nothing) matches, unless it is the poison
     * of an unwritten element (all 0xFF bytes) */
    tir_tensor_set(b, 0, 1);
    tir_tensor_set(a, 2, NAN);
    tir_tensor_set(b, 2, NAN);
    e = tir_rel_error(a, b);
    ck_assert(e > 1e-6 && e < 1e-4);
    memset((char *)tir_tensor_data(a) + 2 * sizeof(float), 0xFF, sizeof(float));
    ck_assert(isnan(tir_rel_error(a, b)));
    int64_t m = 5;
    tir_tensor *c = tir_tensor_new(TIR_F32, 1, &m);
    ck_assert(isnan(tir_rel_error(a, c)));
    ck_assert(tir_tolerance(TIR_F32, false) == 1e-5);
    ck_assert(tir_tolerance(TIR_F32, true) == 1e-4);
    ck_assert(tir_tolerance(TIR_BF16, false) == 1e-2);
    ck_assert(tir_tolerance(TIR_I32, true) == 0);
    tir_tensor_free(a);
    tir_tensor_free(b);
    tir_tensor_free(c);
}
END_TEST

#ifdef TIR_WITH_LLVM
/* on a machine with a GPU: host and device-resident runs match the interpreter */
START_TEST(test_gpu_run) {
    tir_diag d;
    char desc[256];
    if (tir_device_probe(ctx, desc, sizeof desc, &d) != TIR_OK) {
        ck_assert_int_eq(d.status, TIR_ERR_NO_DRIVER);
        fprintf(stderr, "test_gpu_run: skipped (%s)\n", d.msg);
        return;
    }
    fprintf(stderr, "test_gpu_run: %s\n", desc);
    tir_options o;
    tir_options_init(&o);
    o.poison = true;
    tir_program *p = NULL;
    ck_assert_msg(tir_compile(mod, "f", &o, &p, &d) == TIR_OK, "%s", d.msg);
    int64_t sizes[] = {1, 7, 1000, 4097};
    for (int k = 0; k < 4; k++) { /* one program, every binding */
        tir_tensor *x = vec(sizes[k], 1), *y = vec(sizes[k], -0.25), *args[] = {x, y};
        tir_tensor *ref[1], *out[1];
        ck_assert_msg(tir_interpret(mod, "f", 2, args, 1, ref, &d) == TIR_OK, "%s", d.msg);
        ck_assert_msg(tir_program_run(p, 2, args, 1, out, &d) == TIR_OK, "%s", d.msg);
        double e = tir_rel_error(out[0], ref[0]);
        ck_assert_msg(e <= 1e-5, "N=%lld: rel error %g", (long long)sizes[k], e);
        tir_tensor_free(out[0]);

        tir_device_tensor *dx, *dy, *dout[1];
        ck_assert_msg(tir_device_tensor_from_host(ctx, x, &dx, &d) == TIR_OK, "%s", d.msg);
        ck_assert_msg(tir_device_tensor_from_host(ctx, y, &dy, &d) == TIR_OK, "%s", d.msg);
        tir_device_tensor *dargs[] = {dx, dy};
        tir_stream *st = NULL;
        ck_assert_msg(tir_stream_create(ctx, &st, &d) == TIR_OK, "%s", d.msg);
        ck_assert_msg(tir_program_run_device(p, 2, dargs, 1, dout, st, &d) == TIR_OK, "%s",
                      d.msg);
        ck_assert_int_eq(tir_device_tensor_dim(dout[0], 0), sizes[k]);
        ck_assert_msg(tir_device_tensor_to_host(dout[0], &out[0], &d) == TIR_OK, "%s", d.msg);
        e = tir_rel_error(out[0], ref[0]);
        ck_assert_msg(e <= 1e-5, "device N=%lld: rel error %g", (long long)sizes[k], e);
        tir_stream_destroy(st);
        tir_device_tensor_free(dx);
        tir_device_tensor_free(dy);
        tir_device_tensor_free(dout[0]);
        tir_tensor_free(out[0]);
        tir_tensor_free(ref[0]);
        tir_tensor_free(x);
        tir_tensor_free(y);
    }
    tir_program_free(p);

    int64_t dims[2] = {3, 129};
    tir_tensor *x = tir_tensor_new(TIR_F32, 2, dims), *args[] = {x};
    for (int64_t i = 0; i < 3 * 129; i++) tir_tensor_set(x, i, (double)(i % 17) / 8.0 - 1.0);
    ck_assert_int_eq(tir_cmd_compare(mod, "g", NULL, NULL, 1, args, stderr, NULL), 0);
    tir_tensor_free(x);
}
END_TEST
#endif

static Suite *suite(void) {
    Suite *s = suite_create("runtime");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_no_driver);
    tcase_add_test(tc, test_compare_rule);
#ifdef TIR_WITH_LLVM
    tcase_add_test(tc, test_compile_no_gpu);
    tcase_add_test(tc, test_compile_errors);
    tcase_add_test(tc, test_run_arg_checks);
    tcase_add_test(tc, test_dump_ptx);
    tcase_add_test(tc, test_cmd_ptx);
    tcase_add_test(tc, test_gpu_run);
#endif
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
