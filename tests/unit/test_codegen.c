/* test_codegen.c: codegen/ on the CPU (no GPU, no ptxas): every core op lowers for sm_90a and
 * sm_80 over its dtypes and shapes (tests/unit/codegen_cases.h), LLVM verifies the module (an
 * error would come back as TIR_ERR_LLVM), and the kernel's description is coherent: the PTX holds
 * the named entry for the arch, buffers then symbolic dims as parameters (constant dims baked
 * in), grids that evaluate under bindings, reshape as an alias, scatter_add's init_from.
 * test_ptxas.c assembles the same kernels with ptxas. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>

#include "codegen.h"
#include "codegen_cases.h"

static tir_codegen_options opts(const char *arch) { return (tir_codegen_options){arch, 2}; }

/* the function's symbols bound to small odd sizes */
static void bind_all(const tir_op *op, tir_bindings *b) {
    memset(b, 0, sizeof *b);
    const tir_value *vs[16];
    int n = 0;
    for (int i = 0; i < op->nin && n < 16; i++) vs[n++] = op->in[i];
    for (int i = 0; i < op->nout && n < 16; i++) vs[n++] = op->out[i];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < vs[i]->type.rank; j++) {
            const char *syms[8];
            int ns = tir_dim_symbols(vs[i]->type.dims[j], syms, 8);
            for (int s = 0; s < ns; s++) {
                int64_t v;
                if (!tir_bindings_get(b, syms[s], &v)) tir_bindings_set(b, syms[s], 5 + (int64_t)strlen(syms[s]));
            }
        }
}

/* checks one lowered kernel; returns a message or NULL */
static const char *check_kernel(const tir_op *op, const tir_kernel *k, const char *arch,
                                char *msg, size_t n) {
    if (op->code == TIR_OP_RESHAPE) {
        if (k->alias_of != 0 || k->ptx) return "reshape must alias operand 0 with no PTX";
        return NULL;
    }
    if (!k->ptx) return "no PTX";
    if (k->alias_of != -1) return "alias_of set on a real kernel";
    char want[128];
    snprintf(want, sizeof want, ".entry %s(", k->name);
    if (!strstr(k->ptx, want)) {
        snprintf(msg, n, "PTX lacks '%s'", want);
        return msg;
    }
    snprintf(want, sizeof want, ".target %s", arch);
    if (!strstr(k->ptx, want)) return "PTX for the wrong arch";
    /* dynamic shared memory is `.extern .shared`; an external function would be libdevice */
    if (strstr(k->ptx, ".extern .func")) return "PTX calls an external function (libdevice?)";
    /* buffers (operands then results), then one i64 per distinct symbolic dim */
    int nbuf = op->nin + op->nout, ndim = 0;
    if (k->nparams < nbuf) return "too few parameters";
    for (int i = 0; i < k->nparams; i++) {
        const tir_kparam *p = &k->params[i];
        if (i < nbuf) {
            if (p->kind != TIR_KP_BUFFER || p->index != i) return "buffers must come first, in order";
        } else {
            if (p->kind != TIR_KP_DIM || !p->dim) return "dims must follow the buffers";
            if (tir_dim_is_const(p->dim, NULL)) return "a constant dim became a parameter";
            for (int j = nbuf; j < i; j++)
                if (k->params[j].dim == p->dim) return "a dim is passed twice";
            ndim++;
        }
    }
    /* every parameter appears in the entry's signature */
    char pname[160];
    snprintf(pname, sizeof pname, "%s_param_%d", k->name, nbuf + ndim - 1);
    if (!strstr(k->ptx, pname)) return "PTX entry has fewer parameters than described";
    snprintf(pname, sizeof pname, "%s_param_%d,", k->name, nbuf + ndim - 1);
    if (strstr(k->ptx, pname)) return "PTX entry has more parameters than described";
    if (k->block[0] < 32 || k->block[0] > 1024 || k->block[1] != 1 || k->block[2] != 1)
        return "bad block";
    tir_bindings b;
    bind_all(op, &b);
    for (int a = 0; a < 3; a++) {
        int64_t g = 0;
        if (!k->grid[a] || tir_dim_eval(k->grid[a], &b, &g) != TIR_OK || g < 0)
            return "grid does not evaluate";
    }
    for (int i = nbuf; i < k->nparams; i++) {
        int64_t v;
        if (tir_dim_eval(k->params[i].dim, &b, &v) != TIR_OK) return "dim parameter does not evaluate";
    }
    if (op->code == TIR_OP_SCATTER_ADD ? k->init_from != 0 : k->init_from != -1)
        return "init_from: scatter_add copies its target, nothing else initialises";
    return NULL;
}

static int lower_all(const char *arch, int stride, int *count) {
    cgc c;
    cgc_build(&c);
    ck_assert_msg(c.failed == 0, "building cases: %s", c.err);
    tir_codegen_options o = opts(arch);
    int bad = 0, n = 0, id = 0;
    for (int fi = 0; fi < c.m->nfuncs; fi++) {
        tir_func *f = c.m->funcs[fi];
        if (fi % stride) continue;
        for (int oi = 0; oi < f->nops; oi++) {
            tir_op *op = f->ops[oi];
            tir_kernel k;
            tir_diag d;
            tir_status s = tir_codegen_op(c.ctx, op, id++, &o, &k, &d);
            n++;
            char msg[256];
            const char *why = s == TIR_OK ? check_kernel(op, &k, arch, msg, sizeof msg) : d.msg;
            if (why) {
                if (bad++ < 20)
                    fprintf(stderr, "%s: %s op %d (%s): %s: %s\n", arch, f->name, oi,
                            tir_ops[op->code].name, tir_status_name(s), why);
            }
            tir_kernel_release(&k);
        }
    }
    cgc_free(&c);
    *count = n;
    return bad;
}

START_TEST(every_op_sm90a) {
    int n = 0, bad = lower_all("sm_90a", 1, &n);
    ck_assert_msg(bad == 0, "%d of %d kernels failed (see stderr)", bad, n);
    ck_assert_int_gt(n, 500);
}
END_TEST

START_TEST(every_op_sm80) {
    int n = 0, bad = lower_all("sm_80", 1, &n);
    ck_assert_msg(bad == 0, "%d of %d kernels failed (see stderr)", bad, n);
}
END_TEST

/* every core op of the table is among the cases, so a new op without a lowering shows here */
START_TEST(cases_cover_core_ops) {
    cgc c;
    cgc_build(&c);
    bool seen[TIR_OP_COUNT] = {false};
    for (int fi = 0; fi < c.m->nfuncs; fi++)
        for (int oi = 0; oi < c.m->funcs[fi]->nops; oi++) seen[c.m->funcs[fi]->ops[oi]->code] = true;
    /* core ops: those of a compute kind; composites, call and other structure are not codegen's */
    unsigned kinds = TIR_F_UNARY | TIR_F_BINARY | TIR_F_ELEMWISE | TIR_F_REDUCE | TIR_F_MOVEMENT |
                     TIR_F_INDEX | TIR_F_CREATION | TIR_F_LINALG;
    for (int i = 0; i < TIR_OP_COUNT; i++) {
        if (!(tir_ops[i].flags & kinds) || (tir_ops[i].flags & TIR_F_COMPOSITE)) continue;
        ck_assert_msg(seen[i], "no codegen case for %s", tir_ops[i].name);
    }
    cgc_free(&c);
}
END_TEST

/* lowers op i of @name */
static tir_status lower(cgc *c, const char *fname, int i, const char *arch, tir_kernel *k, tir_diag *d) {
    tir_func *f = tir_module_find(c->m, fname);
    ck_assert_msg(f != NULL, "no case %s", fname);
    ck_assert_int_lt(i, f->nops);
    tir_codegen_options o = opts(arch);
    return tir_codegen_op(c->ctx, f->ops[i], 7, &o, k, d);
}

START_TEST(kernel_description) {
    cgc c;
    cgc_build(&c);
    tir_kernel k;
    tir_diag d;
    /* names, symbolic dims as parameters */
    ck_assert_int_eq(lower(&c, "binary_add_f32", 0, "sm_90a", &k, &d), TIR_OK);
    ck_assert_str_eq(k.name, "tir_add_7");
    ck_assert_int_eq(k.nparams, 3 + 2); /* a, b, out; B and S */
    ck_assert_int_eq(k.block[0], 256);
    tir_kernel_release(&k);
    tir_kernel_release(&k); /* releasing twice is harmless */
    /* constant dims are baked in: no dim parameters */
    ck_assert_int_eq(lower(&c, "binary_const_shape", 0, "sm_90a", &k, &d), TIR_OK);
    ck_assert_int_eq(k.nparams, 3);
    int64_t g;
    tir_bindings b = {0};
    ck_assert_int_eq(tir_dim_eval(k.grid[0], &b, &g), TIR_OK);
    ck_assert_int_eq(g, 1); /* 24 elements */
    tir_kernel_release(&k);
    /* reshape aliases its operand */
    ck_assert_int_eq(lower(&c, "reshape_f32", 0, "sm_90a", &k, &d), TIR_OK);
    ck_assert_int_eq(k.alias_of, 0);
    ck_assert_ptr_null(k.ptx);
    tir_kernel_release(&k);
    /* scatter_add starts from a copy of its target */
    ck_assert_int_eq(lower(&c, "scatter_add_f32", 0, "sm_90a", &k, &d), TIR_OK);
    ck_assert_int_eq(k.init_from, 0);
    ck_assert(!k.init_zero);
    ck_assert_ptr_nonnull(strstr(k.ptx, "atom."));
    tir_kernel_release(&k);
    /* split writes every result from one kernel: x, then the three results */
    ck_assert_int_eq(lower(&c, "split_f32", 0, "sm_90a", &k, &d), TIR_OK);
    ck_assert(k.nparams >= 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(k.params[i].kind, TIR_KP_BUFFER);
        ck_assert_int_eq(k.params[i].index, i);
    }
    tir_kernel_release(&k);
    /* reductions use shuffles and a barrier */
    ck_assert_int_eq(lower(&c, "reduce_sum_f32", 0, "sm_90a", &k, &d), TIR_OK);
    ck_assert_ptr_nonnull(strstr(k.ptx, "shfl.sync.bfly"));
    ck_assert_ptr_nonnull(strstr(k.ptx, "bar.sync"));
    /* the grid is one block per output: A*6 outputs for axes=[1] */
    tir_bindings bb = {0};
    tir_bindings_set(&bb, "A", 3);
    tir_bindings_set(&bb, "B", 1000);
    ck_assert_int_eq(tir_dim_eval(k.grid[0], &bb, &g), TIR_OK);
    ck_assert_int_eq(g, 18);
    tir_kernel_release(&k);
    /* the elementwise grid covers the output: B*S*5 elements in blocks of 256 */
    ck_assert_int_eq(lower(&c, "binary_mul_bf16", 0, "sm_90a", &k, &d), TIR_OK);
    tir_bindings_set(&bb, "S", 100);
    ck_assert_int_eq(tir_dim_eval(k.grid[0], &bb, &g), TIR_OK);
    ck_assert_int_eq(g, (1000 * 100 * 5 + 255) / 256);
    tir_kernel_release(&k);
    cgc_free(&c);
}
END_TEST

START_TEST(refusals) {
    cgc c;
    cgc_build(&c);
    tir_kernel k;
    tir_diag d;
    /* composites must be decomposed first */
    cgc_func(&c, "composite");
    tir_value *x = cgc_param(&c, TIR_F32, "N, 8");
    tir_op *sm = cgc_op(&c, TIR_OP_SOFTMAX, 1, &x, 0, NULL);
    ck_assert_ptr_nonnull(sm);
    tir_codegen_options o = opts("sm_90a");
    ck_assert_int_eq(tir_codegen_op(c.ctx, sm, 0, &o, &k, &d), TIR_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(d.msg, "softmax"));
    ck_assert_ptr_null(k.ptx);
    ck_assert_ptr_null(k.params);
    /* unknown archs are refused before LLVM sees them */
    ck_assert_int_eq(lower(&c, "binary_add_f32", 0, "sm_999", &k, &d), TIR_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(d.msg, "sm_999"));
    ck_assert(tir_codegen_arch_ok("sm_90a"));
    ck_assert(tir_codegen_arch_ok("sm_80"));
    ck_assert(!tir_codegen_arch_ok("sm_35"));
    ck_assert(!tir_codegen_arch_ok(NULL));
    /* default options: sm_90a */
    ck_assert_int_eq(tir_codegen_op(c.ctx, c.m->funcs[0]->ops[0], 1, NULL, &k, &d), TIR_OK);
    ck_assert_ptr_nonnull(strstr(k.ptx, ".target sm_90a"));
    tir_kernel_release(&k);
    cgc_free(&c);
}
END_TEST

/* every opt level gives a kernel */
START_TEST(opt_levels) {
    cgc c;
    cgc_build(&c);
    for (int lvl = 0; lvl <= 3; lvl++) {
        tir_codegen_options o = {"sm_90a", lvl};
        const char *fs[] = {"reduce_argmax_f16", "matmul_bf16", "unary_gelu_f32", "scatter_add_f8e4m3"};
        for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) {
            tir_func *f = tir_module_find(c.m, fs[i]);
            ck_assert_ptr_nonnull(f);
            tir_kernel k;
            tir_diag d;
            tir_status s = tir_codegen_op(c.ctx, f->ops[0], 0, &o, &k, &d);
            ck_assert_msg(s == TIR_OK, "O%d %s: %s", lvl, fs[i], d.msg);
            tir_kernel_release(&k);
        }
    }
    cgc_free(&c);
}
END_TEST

/* two threads lowering at once: target initialisation and LLVM state are per call */
typedef struct job {
    cgc *c;
    int from, bad;
} job;

static void *worker(void *p) {
    job *j = p;
    tir_codegen_options o = opts("sm_90a");
    for (int fi = j->from; fi < j->c->m->nfuncs && fi < j->from + 40; fi++) {
        tir_func *f = j->c->m->funcs[fi];
        for (int oi = 0; oi < f->nops; oi++) {
            tir_kernel k;
            tir_diag d;
            if (tir_codegen_op(j->c->ctx, f->ops[oi], oi, &o, &k, &d) != TIR_OK) j->bad++;
            tir_kernel_release(&k);
        }
    }
    return NULL;
}

START_TEST(threads) {
    cgc c;
    cgc_build(&c);
    job a = {&c, 0, 0}, b = {&c, 200, 0};
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, worker, &a), 0);
    ck_assert_int_eq(pthread_create(&tb, NULL, worker, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_int_eq(a.bad + b.bad, 0);
    cgc_free(&c);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("codegen");
    TCase *t = tcase_create("core");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, cases_cover_core_ops);
    tcase_add_test(t, kernel_description);
    tcase_add_test(t, refusals);
    tcase_add_test(t, opt_levels);
    tcase_add_test(t, threads);
    tcase_add_test(t, every_op_sm90a);
    tcase_add_test(t, every_op_sm80);
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
