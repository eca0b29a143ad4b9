/* test_plan_memory.c: the memory planner (passes/plan_memory.c) on small programs whose slots,
 * reuse, in-place results, donation and peak bytes are worked out by hand in the comments, and
 * on a compiled program (tir_program_plan_memory) with its arena computed by hand; a kernel's
 * per-result pairing (tir_kernel.inplace_of) followed to the letter; cross-entropy
 * forward+backward with donated arguments: dlogits written over the logits; and AdamW over the
 * 147 tensors of benchmarks/adamw.tir, donated: every new p, m, v over its own old p, m, v, no
 * byte beyond the arguments. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "passes.h"
#include "testutil.h"

/* a program of single-result steps: step i reads in[i][0..nin) and makes value out[i] */
typedef struct prog {
    int nv, np, nr, ns;
    size_t nbytes[16];
    int params[4], res[4];
    int in[8][3], nin[8], out[8][2], nout[8];
    tir_mem_step steps[8];
} prog;

static void add_step(prog *g, int out, int nin, int a, int b, unsigned inplace, int alias_of) {
    int i = g->ns++;
    g->nin[i] = nin;
    g->in[i][0] = a;
    g->in[i][1] = b;
    g->out[i][0] = out;
    g->nout[i] = 1;
    g->steps[i] = (tir_mem_step){nin, 1, g->in[i], g->out[i], alias_of, inplace, NULL};
}

/* the steps point into g's arrays wherever g now is (progs are returned by value) */
static tir_mem_problem problem(prog *g) {
    for (int i = 0; i < g->ns; i++) {
        g->steps[i].in = g->in[i];
        g->steps[i].out = g->out[i];
    }
    return (tir_mem_problem){.nvalues = g->nv, .nbytes = g->nbytes, .nparams = g->np, .nres = g->nr,
                             .nsteps = g->ns, .params = g->params, .res = g->res, .steps = g->steps};
}

static void plan(const tir_mem_problem *pb, tir_mem_plan *pl) {
    tir_diag d;
    ck_assert_msg(tir_plan_memory(pb, pl, &d) == TIR_OK, "%s", d.msg);
}

/* v0 -> v1 -> v2 -> v3, 1000 bytes each, v3 returned */
static prog chain(unsigned inplace) {
    prog g = {.nv = 4, .np = 1, .nr = 1, .params = {0}, .res = {3}};
    for (int v = 0; v < 4; v++) g.nbytes[v] = 1000;
    for (int i = 0; i < 3; i++) add_step(&g, i + 1, 1, i, -1, inplace, -1);
    return g;
}

START_TEST(test_chain_reuse) {
    /* v0 in slot 0 (read by step 0); v1 can't take it (v0 is read while v1 is made): slot 1;
     * v2 takes slot 0 (v0 died at step 0), v3 slot 1: two 1024-byte slots */
    prog g = chain(0);
    tir_mem_problem pb = problem(&g);
    tir_mem_plan pl;
    plan(&pb, &pl);
    ck_assert_int_eq(pl.nslots, 2);
    ck_assert_int_eq(pl.slot[0], pl.slot[2]);
    ck_assert_int_eq(pl.slot[1], pl.slot[3]);
    ck_assert_int_ne(pl.slot[0], pl.slot[1]);
    ck_assert_uint_eq(pl.arena_bytes, 2048);
    ck_assert_uint_eq(pl.peak_bytes, 2048);
    ck_assert_uint_eq(pl.naive_bytes, 4096); /* 4 values of 1000 B, each 256-byte aligned */
    ck_assert_int_eq(pl.n_inplace, 0);
    ck_assert_int_eq(pl.n_reused, 2);
    ck_assert_uint_eq(pl.live_bytes, 2048); /* v_i and v_i+1 live together at step i */
    tir_mem_plan_free(&pl);
}
END_TEST

START_TEST(test_chain_inplace) {
    /* every kernel may write over its operand, and each operand dies there: one slot */
    prog g = chain(1);
    tir_mem_problem pb = problem(&g);
    tir_mem_plan pl;
    plan(&pb, &pl);
    ck_assert_int_eq(pl.nslots, 1);
    ck_assert_int_eq(pl.n_inplace, 3);
    for (int v = 1; v < 4; v++) ck_assert_int_eq(pl.inplace_of[v], v - 1);
    ck_assert_uint_eq(pl.arena_bytes, 1024);
    ck_assert_uint_eq(pl.live_bytes, 1024); /* each result shares its operand's bytes */
    tir_mem_plan_free(&pl);

    /* v0 returned as well: never overwritten, so v1 gets a slot of its own and v2, v3 follow
     * it in place */
    g.nr = 2;
    g.res[1] = 0;
    pb = problem(&g);
    plan(&pb, &pl);
    ck_assert_int_eq(pl.inplace_of[1], -1);
    ck_assert_int_ne(pl.slot[1], pl.slot[0]);
    ck_assert_int_eq(pl.inplace_of[2], 1);
    ck_assert_int_eq(pl.inplace_of[3], 2);
    ck_assert_uint_eq(pl.arena_bytes, 2048);
    tir_mem_plan_free(&pl);
}
END_TEST

START_TEST(test_inplace_needs_death_and_one_use) {
    /* v1 = f(v0) may be in place, but v0 is read again by step 1: no */
    prog g = {.nv = 3, .np = 1, .nr = 2, .params = {0}, .res = {1, 2}};
    for (int v = 0; v < 3; v++) g.nbytes[v] = 512;
    add_step(&g, 1, 1, 0, -1, 1, -1);
    add_step(&g, 2, 1, 0, -1, 0, -1);
    tir_mem_problem pb = problem(&g);
    tir_mem_plan pl;
    plan(&pb, &pl);
    ck_assert_int_eq(pl.inplace_of[1], -1);
    ck_assert_int_ne(pl.slot[1], pl.slot[0]);
    ck_assert_int_ne(pl.slot[2], pl.slot[1]);
    ck_assert_uint_eq(pl.arena_bytes, 3 * 512);
    tir_mem_plan_free(&pl);

    /* v1 = f(v0, v0) with only operand 0 allowed in place: the kernel may still read v0 through
     * operand 1 after writing: no */
    prog h = {.nv = 2, .np = 1, .nr = 1, .params = {0}, .res = {1}};
    h.nbytes[0] = h.nbytes[1] = 512;
    add_step(&h, 1, 2, 0, 0, 1, -1);
    pb = problem(&h);
    plan(&pb, &pl);
    ck_assert_int_eq(pl.inplace_of[1], -1);
    ck_assert_uint_eq(pl.arena_bytes, 1024);
    tir_mem_plan_free(&pl);

    /* sizes differ: no */
    prog k = {.nv = 2, .np = 1, .nr = 1, .params = {0}, .res = {1}};
    k.nbytes[0] = 512;
    k.nbytes[1] = 256;
    add_step(&k, 1, 1, 0, -1, 1, -1);
    pb = problem(&k);
    plan(&pb, &pl);
    ck_assert_int_eq(pl.inplace_of[1], -1);
    ck_assert_uint_eq(pl.arena_bytes, 768);
    tir_mem_plan_free(&pl);
}
END_TEST

START_TEST(test_overlap_and_best_fit) {
    /* v0 (100 B) is read by steps 0 and 1, v1 (300) = f(v0), v2 (200) = g(v0, v1), v3 (100) =
     * h(v2) returned. v0 and v1 live together (slots 0, 1), v2 too (slot 2), v3 takes the
     * smallest free slot that fits: v0's (100), not v1's (300). 256 + 512 + 256 bytes. */
    prog g = {.nv = 4, .np = 1, .nr = 1, .params = {0}, .res = {3}};
    g.nbytes[0] = 100;
    g.nbytes[1] = 300;
    g.nbytes[2] = 200;
    g.nbytes[3] = 100;
    add_step(&g, 1, 1, 0, -1, 0, -1);
    add_step(&g, 2, 2, 0, 1, 0, -1);
    add_step(&g, 3, 1, 2, -1, 0, -1);
    tir_mem_problem pb = problem(&g);
    tir_mem_plan pl;
    plan(&pb, &pl);
    ck_assert_int_eq(pl.nslots, 3);
    ck_assert_int_eq(pl.slot[3], pl.slot[0]);
    ck_assert_uint_eq(pl.arena_bytes, 1024);
    ck_assert_uint_eq(pl.naive_bytes, 256 + 512 + 256 + 256);
    /* at step 1, v0, v1 and v2 are live: 256 + 512 + 256; the plan reaches that bound */
    ck_assert_uint_eq(pl.live_bytes, 1024);
    tir_mem_plan_free(&pl);
}
END_TEST

START_TEST(test_grow_slot) {
    /* v0 100 -> v1 100 -> v2 1000 -> v3 50: v2 finds only v0's slot free, too small, and grows
     * it to 1000; v3 fits in v1's slot. 1024 + 256 bytes */
    prog g = {.nv = 4, .np = 1, .nr = 1, .params = {0}, .res = {3}};
    g.nbytes[0] = 100;
    g.nbytes[1] = 100;
    g.nbytes[2] = 1000;
    g.nbytes[3] = 50;
    for (int i = 0; i < 3; i++) add_step(&g, i + 1, 1, i, -1, 0, -1);
    tir_mem_problem pb = problem(&g);
    tir_mem_plan pl;
    plan(&pb, &pl);
    ck_assert_int_eq(pl.slot[2], pl.slot[0]);
    ck_assert_int_eq(pl.slot[3], pl.slot[1]);
    ck_assert_uint_eq(pl.slots[pl.slot[0]].size, 1000);
    ck_assert_uint_eq(pl.arena_bytes, 1280);
    ck_assert_uint_eq(pl.slots[pl.slot[1]].offset, 1024);
    ck_assert_uint_eq(pl.live_bytes, 1280); /* v1 and v2 at step 1 */
    tir_mem_plan_free(&pl);
}
END_TEST

START_TEST(test_views_extend_life) {
    /* v1 is a view of v0 (a reshape); step 1 reads v1, so v0 is alive until step 1 and v2
     * cannot take its storage. A view has its operand's slot. */
    prog g = {.nv = 3, .np = 1, .nr = 1, .params = {0}, .res = {2}};
    for (int v = 0; v < 3; v++) g.nbytes[v] = 256;
    add_step(&g, 1, 1, 0, -1, 0, 0);
    add_step(&g, 2, 1, 1, -1, 0, -1);
    tir_mem_problem pb = problem(&g);
    tir_mem_plan pl;
    plan(&pb, &pl);
    ck_assert_int_eq(pl.slot[1], pl.slot[0]);
    ck_assert_int_ne(pl.slot[2], pl.slot[0]);
    ck_assert_uint_eq(pl.arena_bytes, 512);
    tir_mem_plan_free(&pl);
}
END_TEST

/* cross-entropy forward and backward as one kernel: logits v0 (4096 B), targets v1 (64 B);
 * step 0 makes loss v2 (4 B) and the logits gradient v3 (4096 B), and may write the gradient
 * over the logits (operand 0) */
static prog xent(void) {
    prog g = {.nv = 4, .np = 2, .nr = 2, .params = {0, 1}, .res = {2, 3}};
    g.nbytes[0] = 4096;
    g.nbytes[1] = 64;
    g.nbytes[2] = 4;
    g.nbytes[3] = 4096;
    g.nin[0] = 2;
    g.in[0][0] = 0;
    g.in[0][1] = 1;
    g.nout[0] = 2;
    g.out[0][0] = 2;
    g.out[0][1] = 3;
    g.steps[0] = (tir_mem_step){2, 2, g.in[0], g.out[0], -1, 1, NULL};
    g.ns = 1;
    return g;
}

START_TEST(test_donation) {
    prog g = xent();
    tir_mem_problem pb = problem(&g);
    pb.params_external = pb.results_external = true;
    tir_mem_plan pl;
    /* not donated: both results get their own allocations: peak = 4160 of arguments + 4100 */
    plan(&pb, &pl);
    ck_assert_int_eq(pl.inplace_of[3], -1);
    ck_assert_int_eq(pl.slots[pl.slot[3]].where, TIR_MEM_OWN);
    ck_assert_uint_eq(pl.param_bytes, 4160);
    ck_assert_uint_eq(pl.own_bytes, 4100);
    ck_assert_uint_eq(pl.peak_bytes, 8260);
    tir_mem_plan_free(&pl);

    /* the logits donated: the gradient is written over them, no second logits-sized buffer */
    bool don[2] = {true, true};
    pb.donatable = don;
    plan(&pb, &pl);
    ck_assert_int_eq(pl.inplace_of[3], 0);
    ck_assert_int_eq(pl.slot[3], pl.slot[0]);
    ck_assert_int_eq(pl.slots[pl.slot[3]].where, TIR_MEM_PARAM);
    ck_assert_int_eq(pl.slots[pl.slot[3]].param, 0);
    ck_assert_uint_eq(pl.own_bytes, 4);
    ck_assert_uint_eq(pl.peak_bytes, 4164);
    ck_assert_uint_eq(pl.arena_bytes, 0);
    tir_mem_plan_free(&pl);

    /* donated, but the kernel does not allow in place: own allocation again */
    g.steps[0].inplace_ok = 0;
    plan(&pb, &pl);
    ck_assert_int_eq(pl.inplace_of[3], -1);
    ck_assert_uint_eq(pl.peak_bytes, 8260);
    tir_mem_plan_free(&pl);

    /* donated, but the logits are returned too: never overwritten */
    g = xent();
    g.nr = 3;
    g.res[2] = 0;
    pb = problem(&g);
    pb.params_external = pb.results_external = true;
    pb.donatable = don;
    plan(&pb, &pl);
    ck_assert_int_eq(pl.inplace_of[3], -1);
    ck_assert_int_ne(pl.slot[3], pl.slot[0]);
    tir_mem_plan_free(&pl);
}
END_TEST

START_TEST(test_donated_buffer_reused) {
    /* x (1024 B, donated) -> a (1024) -> b (512, returned): a can't be in place (not allowed),
     * but once x is dead at step 0, b... is a result (own allocation). With an intermediate c
     * after a: x's buffer holds c. */
    prog g = {.nv = 4, .np = 1, .nr = 1, .params = {0}, .res = {3}};
    g.nbytes[0] = 1024;
    g.nbytes[1] = 1024;
    g.nbytes[2] = 1000;
    g.nbytes[3] = 512;
    for (int i = 0; i < 3; i++) add_step(&g, i + 1, 1, i, -1, 0, -1);
    tir_mem_problem pb = problem(&g);
    pb.params_external = pb.results_external = true;
    bool don = true;
    pb.donatable = &don;
    tir_mem_plan pl;
    plan(&pb, &pl);
    ck_assert_int_eq(pl.slot[2], pl.slot[0]); /* c in the donated x */
    ck_assert_int_eq(pl.slots[pl.slot[1]].where, TIR_MEM_ARENA);
    ck_assert_int_eq(pl.slots[pl.slot[3]].where, TIR_MEM_OWN);
    ck_assert_uint_eq(pl.peak_bytes, 1024 + 1024 + 512);
    tir_mem_plan_free(&pl);
    /* not donated: c needs arena room of its own */
    pb.donatable = NULL;
    plan(&pb, &pl);
    ck_assert_int_ne(pl.slot[2], pl.slot[0]);
    ck_assert_uint_eq(pl.arena_bytes, 2048);
    tir_mem_plan_free(&pl);
}
END_TEST

/* One step reading a, b, c (values 0..2, 1000 B each, parameters copied into the arena) and
 * making x, y (3, 4), both returned; a later step may read b again (making z, 5). The kernel's
 * pairing (inplace_of) names the one operand each result may take, whatever inplace_ok says. */
typedef struct pairprog {
    size_t nbytes[6];
    int params[3], res[3], in0[3], out0[2], in1[1], out1[1], pair[2];
    tir_mem_step steps[2];
} pairprog;

static tir_mem_problem pair_problem(pairprog *g, int p0, int p1, bool b_read_later) {
    for (int v = 0; v < 6; v++) g->nbytes[v] = 1000;
    for (int i = 0; i < 3; i++) g->params[i] = g->in0[i] = i;
    g->res[0] = g->out0[0] = 3;
    g->res[1] = g->out0[1] = 4;
    g->res[2] = g->out1[0] = 5;
    g->in1[0] = 1;
    g->pair[0] = p0;
    g->pair[1] = p1;
    g->steps[0] = (tir_mem_step){3, 2, g->in0, g->out0, -1, 7u, g->pair};
    g->steps[1] = (tir_mem_step){1, 1, g->in1, g->out1, -1, 0, NULL};
    int ns = b_read_later ? 2 : 1;
    return (tir_mem_problem){.nvalues = 6, .nbytes = g->nbytes, .nparams = 3, .nres = ns == 2 ? 3 : 2,
                             .nsteps = ns, .params = g->params, .res = g->res, .steps = g->steps};
}

START_TEST(test_inplace_pairing) {
    pairprog g;
    tir_mem_plan pl;
    /* the mask alone (every operand): x takes a, y takes b, the first dying ones */
    tir_mem_problem pb = pair_problem(&g, 0, 0, false);
    g.steps[0].inplace_of = NULL;
    plan(&pb, &pl);
    ck_assert_int_eq(pl.inplace_of[3], 0);
    ck_assert_int_eq(pl.inplace_of[4], 1);
    ck_assert_uint_eq(pl.arena_bytes, 3 * 1024);
    tir_mem_plan_free(&pl);

    /* paired x -> c, y -> none: x over c though a comes first in the mask; y over nothing
     * (a and b are read by this step, so their slots are not free): a fourth slot */
    pb = pair_problem(&g, 2, -1, false);
    plan(&pb, &pl);
    ck_assert_int_eq(pl.inplace_of[3], 2);
    ck_assert_int_eq(pl.slot[3], pl.slot[2]);
    ck_assert_int_eq(pl.inplace_of[4], -1);
    for (int v = 0; v < 4; v++) ck_assert_int_ne(pl.slot[4], pl.slot[v]);
    ck_assert_int_eq(pl.n_inplace, 1);
    ck_assert_uint_eq(pl.arena_bytes, 4 * 1024);
    tir_mem_plan_free(&pl);

    /* both paired with a: one buffer cannot hold two results, so only x takes it */
    pb = pair_problem(&g, 0, 0, false);
    plan(&pb, &pl);
    ck_assert_int_eq(pl.inplace_of[3], 0);
    ck_assert_int_eq(pl.inplace_of[4], -1);
    ck_assert_int_ne(pl.slot[4], pl.slot[3]);
    ck_assert_int_eq(pl.n_inplace, 1);
    tir_mem_plan_free(&pl);

    /* x paired with b, which step 1 reads after this step: refused (and not traded for another
     * operand: the kernel said b only); y over c */
    pb = pair_problem(&g, 1, 2, true);
    plan(&pb, &pl);
    ck_assert_int_eq(pl.inplace_of[3], -1);
    ck_assert_int_ne(pl.slot[3], pl.slot[0]);
    ck_assert_int_ne(pl.slot[3], pl.slot[1]);
    ck_assert_int_eq(pl.inplace_of[4], 2);
    ck_assert_int_eq(pl.n_inplace, 1);
    tir_mem_plan_free(&pl);

    /* a pairing out of range pairs nothing */
    pb = pair_problem(&g, 3, -7, false);
    plan(&pb, &pl);
    ck_assert_int_eq(pl.inplace_of[3], -1);
    ck_assert_int_eq(pl.inplace_of[4], -1);
    ck_assert_int_eq(pl.n_inplace, 0);
    tir_mem_plan_free(&pl);

    /* donated device run: paired results take the caller's buffers, nothing of their own */
    pb = pair_problem(&g, 2, 0, false);
    bool don[3] = {true, true, true};
    pb.params_external = pb.results_external = true;
    pb.donatable = don;
    plan(&pb, &pl);
    ck_assert_int_eq(pl.inplace_of[3], 2);
    ck_assert_int_eq(pl.inplace_of[4], 0);
    ck_assert_uint_eq(pl.own_bytes, 0);
    ck_assert_uint_eq(pl.arena_bytes, 0);
    ck_assert_uint_eq(pl.peak_bytes, 3000);
    tir_mem_plan_free(&pl);
}
END_TEST

/* past the mask's 32 operands: one step reading 40 values, its one result paired with the 38th */
START_TEST(test_inplace_pairing_past_32) {
    enum { N = 40 };
    size_t nbytes[N + 1];
    int params[N], in[N], out[1] = {N}, res[1] = {N}, pair[1] = {37};
    for (int i = 0; i < N; i++) {
        params[i] = in[i] = i;
        nbytes[i] = 512;
    }
    nbytes[N] = 512;
    tir_mem_step st = {N, 1, in, out, -1, 0, pair};
    tir_mem_problem pb = {.nvalues = N + 1, .nbytes = nbytes, .nparams = N, .nres = 1, .nsteps = 1,
                          .params = params, .res = res, .steps = &st};
    tir_mem_plan pl;
    plan(&pb, &pl);
    ck_assert_int_eq(pl.inplace_of[N], 37);
    ck_assert_int_eq(pl.slot[N], pl.slot[37]);
    ck_assert_uint_eq(pl.arena_bytes, (size_t)N * 512);
    tir_mem_plan_free(&pl);
}
END_TEST

START_TEST(test_bad_ids) {
    prog g = chain(0);
    g.in[1][0] = 99;
    tir_mem_problem pb = problem(&g);
    tir_mem_plan pl;
    tir_diag d;
    ck_assert_int_eq(tir_plan_memory(&pb, &pl, &d), TIR_ERR_INTERNAL);
    ck_assert_ptr_null(pl.slot);
}
END_TEST

#ifdef TIR_WITH_LLVM
START_TEST(test_compiled_program) {
    /* x[N,64] @ w1[64,64] -> relu -> @ w2[64,64], f32, N = 8: x, h, r, y are 2048 bytes, the
     * weights 16384. As a host run (arguments copied into the arena): x, w1, w2 take three
     * slots; h a fourth; relu's result reuses x's slot (x died at the first matmul; w1's slot
     * fits too, but x's is the smallest); y reuses h's. Arena: 2048 + 16384 + 16384 + 2048.
     * (With relu fused into the first matmul as its epilogue, y takes x's slot instead: the
     * same arena.) */
    const char *src = "func @f(%x: f32[N, 64], %w1: f32[64, 64], %w2: f32[64, 64]) -> f32[N, 64] {\n"
                      "  %h = matmul(%x, %w1)\n"
                      "  %r = relu(%h)\n"
                      "  return matmul(%r, %w2)\n"
                      "}\n";
    tir_context *ctx = tir_context_create();
    tir_module *m = NULL;
    tir_diag d;
    ck_assert_int_eq(tir_module_parse(ctx, src, "t.tir", &m, &d), TIR_OK);
    tir_program *p = NULL;
    ck_assert_msg(tir_compile(m, "f", NULL, &p, &d) == TIR_OK, "%s", d.msg);
    tir_bindings b = {0};
    tir_bindings_set(&b, "N", 8);
    tir_mem_plan pl;
    size_t *nb = NULL;
    ck_assert_msg(tir_program_plan_memory(p, &b, false, &pl, &nb, &d) == TIR_OK, "%s", d.msg);
    ck_assert_uint_eq(pl.arena_bytes, 2048 + 16384 + 16384 + 2048);
    ck_assert_uint_eq(nb[tir_program_param_value(p, 1)], 16384);
    ck_assert_uint_eq(nb[tir_program_result_value(p, 0)], 2048);
    /* the first kernel is the first matmul (maybe with relu as its epilogue): it reads x and w1
     * and writes h: 2048 + 16384 + 2048 bytes, 2·8·64·64 FLOPs */
    double bytes = 0, flops = 0;
    ck_assert(tir_program_kernel_traffic_for(p, nb, &b, 0, &bytes, &flops));
    ck_assert_double_eq(bytes, 2048 + 16384 + 2048);
    ck_assert_double_eq(flops, 2.0 * 8 * 64 * 64);
    ck_assert(!tir_program_kernel_traffic(p, 0, &bytes, &flops)); /* no run yet */
    tir_mem_plan_free(&pl);
    free(nb);
    /* as a device run: arguments stay in the caller's buffers, the result is allocated on its
     * own, h (and relu's result) in the arena */
    ck_assert_int_eq(tir_program_plan_memory(p, &b, true, &pl, NULL, &d), TIR_OK);
    ck_assert_uint_eq(pl.param_bytes, 2048 + 16384 + 16384);
    ck_assert_uint_eq(pl.own_bytes, 2048);
    ck_assert_uint_le(pl.arena_bytes, 2 * 2048);
    ck_assert_uint_ge(pl.arena_bytes, 2048);
    tir_mem_plan_free(&pl);
    /* an unbound symbol is a diagnostic, not a crash */
    ck_assert_int_eq(tir_program_plan_memory(p, NULL, false, &pl, NULL, &d), TIR_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(d.msg, "unbound"));
    tir_program_free(p);
    tir_module_free(m);
    tir_context_destroy(ctx);
}
END_TEST

/* Cross-entropy forward and backward (benchmarks/cross_entropy.tir) as a device run: the fused
 * row kernel reads each logit only in the thread that writes its gradient (codegen/fused.c sets
 * inplace_ok for the logits), so with donate_args the logits gradient is written over the
 * logits buffer, and the run holds one logits-sized buffer instead of two (as Liger does);
 * without donation the gradient gets an allocation of its own. */
START_TEST(test_ce_fwdbwd_donated) {
    const char *src = "func @ce(%logits: bf16[N, 128256], %targets: i64[N]) -> f32[] {\n"
                      "  %l = cross_entropy(cast(%logits, dtype=f32), %targets, reduction=\"mean\")\n"
                      "  return %l\n}\n"
                      "func @ce_vg = value_and_grad(@ce, wrt=[%logits])\n"
                      "func @fb(%logits: bf16[N, 128256], %targets: i64[N]) -> (f32[], bf16[N, 128256]) {\n"
                      "  %l, %dl = call @ce_vg(%logits, %targets)\n  return %l, %dl\n}\n";
    tir_context *ctx = tir_context_create();
    tir_bindings b = {0};
    tir_bindings_set(&b, "N", 64);
    const size_t lbytes = (size_t)64 * 128256 * 2;
    size_t peak[2] = {0, 0};
    for (int donate = 0; donate < 2; donate++) {
        tir_module *m = NULL;
        tir_diag d;
        ck_assert_int_eq(tir_module_parse(ctx, src, "ce.tir", &m, &d), TIR_OK);
        tir_options o;
        tir_options_init(&o);
        o.donate_args = donate;
        tir_program *p = NULL;
        ck_assert_msg(tir_compile(m, "fb", &o, &p, &d) == TIR_OK, "%s", d.msg);
        /* the step writing dlogits allows it over the logits (its operand 0) */
        int lv = tir_program_param_value(p, 0), dv = tir_program_result_value(p, 1), step = -1;
        for (int i = 0; i < tir_program_num_kernels(p); i++) {
            int nin, nout;
            const int *in, *out;
            tir_program_step_values(p, i, &nin, &in, &nout, &out);
            for (int r = 0; r < nout; r++)
                if (out[r] == dv) step = i;
            if (step == i) {
                tir_kernel_info ki;
                tir_program_kernel_info(p, i, &ki);
                ck_assert_int_ge(nin, 1);
                ck_assert_int_eq(in[0], lv);
                ck_assert_uint_eq(ki.k->inplace_ok & 1u, 1u);
            }
        }
        ck_assert_int_ge(step, 0);
        tir_mem_plan pl;
        size_t *nb = NULL;
        ck_assert_msg(tir_program_plan_memory(p, &b, true, &pl, &nb, &d) == TIR_OK, "%s", d.msg);
        ck_assert_uint_eq(nb[lv], lbytes);
        ck_assert_uint_eq(nb[dv], lbytes);
        if (donate) {
            ck_assert_int_eq(pl.inplace_of[dv], lv);
            ck_assert_int_eq(pl.slot[dv], pl.slot[lv]);
            ck_assert_uint_lt(pl.own_bytes, lbytes); /* the loss only */
        } else {
            ck_assert_int_eq(pl.inplace_of[dv], -1);
            ck_assert_uint_ge(pl.own_bytes, lbytes);
        }
        peak[donate] = pl.peak_bytes;
        tir_mem_plan_free(&pl);
        free(nb);
        tir_program_free(p);
        tir_module_free(m);
    }
    /* one logits buffer less (the loss's own allocation aside, the same otherwise) */
    ck_assert_uint_eq(peak[0] - peak[1], lbytes);
    tir_context_destroy(ctx);
}
END_TEST

/* benchmarks/adamw.tir (147 f32 tensors, 1.5 B parameters; per tensor p, g, m, v in, new p, m,
 * v out) as a device run with donated arguments: two horizontal kernels of 73 tensors (the
 * layers share shapes) and one elementwise one. Each result is written over its own tensor's
 * old value (p -> new p, m -> new m, v -> new v; the horizontal kernels pair them), so the run
 * holds its arguments and not one byte more: PyTorch's fused AdamW allocates 0.25 GiB there.
 * Without donation every result gets an allocation of its own. */
START_TEST(test_adamw_donated_in_place) {
    char *src = tu_read_source("benchmarks", "adamw.tir");
    ck_assert_msg(src != NULL, "no benchmarks/adamw.tir");
    tir_context *ctx = tir_context_create();
    for (int donate = 0; donate < 2; donate++) {
        tir_module *m = NULL;
        tir_diag d;
        ck_assert_int_eq(tir_module_parse(ctx, src, "adamw.tir", &m, &d), TIR_OK);
        tir_options o;
        tir_options_init(&o);
        o.donate_args = donate;
        tir_program *p = NULL;
        ck_assert_msg(tir_compile(m, "adamw_step", &o, &p, &d) == TIR_OK, "%s", d.msg);
        ck_assert_int_eq(tir_program_num_kernels(p), 3);
        ck_assert_int_eq(tir_program_num_params(p), 4 * 147);
        ck_assert_int_eq(tir_program_num_results(p), 3 * 147);
        tir_mem_plan pl;
        size_t *nb = NULL;
        ck_assert_msg(tir_program_plan_memory(p, NULL, true, &pl, &nb, &d) == TIR_OK, "%s", d.msg);
        size_t args = 0;
        for (int i = 0; i < 4 * 147; i++) args += nb[tir_program_param_value(p, i)];
        ck_assert_uint_eq(args, (size_t)1498482688 * 4 * 4);
        ck_assert_uint_eq(pl.param_bytes, args);
        if (donate) {
            /* the steps whose kernel pairs results with operands: the horizontal ones */
            int *paired = calloc((size_t)pl.nvalues, sizeof *paired);
            ck_assert_ptr_nonnull(paired);
            int npaired = 0;
            for (int i = 0; i < tir_program_num_kernels(p); i++) {
                int nin, nout;
                const int *in, *out;
                tir_program_step_values(p, i, &nin, &in, &nout, &out);
                tir_kernel_info ki;
                tir_program_kernel_info(p, i, &ki);
                for (int r = 0; ki.k->inplace_of && r < nout; r++) paired[out[r]] = 1;
                npaired += ki.k->inplace_of ? nout : 0;
            }
            ck_assert_int_eq(npaired, 3 * 146); /* 2 x 73 tensors */
            for (int t = 0; t < 147; t++)
                for (int k = 0; k < 3; k++) {
                    /* result 3t+k (p1, m1, v1) over its own tensor's p, m, v (param 4t+{0,2,3})
                     * where the kernel pairs them; over one of its own tensor's buffers in the
                     * elementwise kernel (codegen/fused.c's mask: the planner's first pick) */
                    int rv = tir_program_result_value(p, 3 * t + k);
                    int pv = tir_program_param_value(p, 4 * t + (k ? k + 1 : 0)), got = pl.inplace_of[rv];
                    if (paired[rv])
                        ck_assert_msg(got == pv, "tensor %d result %d: over %d, not %d", t, k, got, pv);
                    bool own = false;
                    for (int q = 0; q < 4; q++) own |= got == tir_program_param_value(p, 4 * t + q);
                    ck_assert_msg(own, "tensor %d result %d: over %d", t, k, got);
                    ck_assert_int_eq(pl.slot[rv], pl.slot[got]);
                }
            free(paired);
            ck_assert_int_eq(pl.n_inplace, 3 * 147);
            ck_assert_uint_eq(pl.arena_bytes, 0);
            ck_assert_uint_eq(pl.own_bytes, 0);
            ck_assert_uint_eq(pl.peak_bytes, args);
        } else {
            ck_assert_int_eq(pl.n_inplace, 0);
            ck_assert_uint_eq(pl.own_bytes, args / 4 * 3);
        }
        tir_mem_plan_free(&pl);
        free(nb);
        tir_program_free(p);
        tir_module_free(m);
    }
    tir_context_destroy(ctx);
    free(src);
}
END_TEST
#endif

int main(void) {
    Suite *s = suite_create("plan_memory");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120); /* compiling benchmarks/adamw.tir takes a second or two */
    tcase_add_test(tc, test_chain_reuse);
    tcase_add_test(tc, test_chain_inplace);
    tcase_add_test(tc, test_inplace_needs_death_and_one_use);
    tcase_add_test(tc, test_overlap_and_best_fit);
    tcase_add_test(tc, test_grow_slot);
    tcase_add_test(tc, test_views_extend_life);
    tcase_add_test(tc, test_donation);
    tcase_add_test(tc, test_donated_buffer_reused);
    tcase_add_test(tc, test_inplace_pairing);
    tcase_add_test(tc, test_inplace_pairing_past_32);
    tcase_add_test(tc, test_bad_ids);
#ifdef TIR_WITH_LLVM
    tcase_add_test(tc, test_compiled_program);
    tcase_add_test(tc, test_ce_fwdbwd_donated);
    tcase_add_test(tc, test_adamw_donated_in_place);
#endif
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
