/* fused_horizontal.c: a horizontal region (schedule kind="horizontal", docs/tir.md §11.1) ->
 * one kernel that runs several independent elementwise parts, each over its own shape: an
 * optimizer step over many parameter tensors in one launch (PyTorch's multi_tensor_apply).
 *
 * Layout. The region's results are cut into parts (the schedule's part_results; a cut is also
 * made wherever the result shape changes, so a hand-written schedule can never make a part
 * iterate over two shapes). Part p has n_p elements, a vector width v_p (part_vectors, kept
 * only where the innermost dim is structurally a multiple, so symbolic sizes stay correct for
 * every binding), a thread axis a_p (part_thread_axes, the part's elementwise thread_axis:
 * a short axis of constant size D_p <= 4, not the innermost, that each thread walks whole at
 * constant coordinates, as codegen/fused.c's lower_elementwise does, so that slices along it,
 * RoPE's two halves, are loaded once for all of its elements; D_p = 1 without one) and
 * u_p = n_p / (D_p * v_p) vectors; a block covers C = block * per_thread vectors of one part,
 * so part p owns nb_p = ceil(u_p / C) consecutive virtual blocks from offset o_p (the prefix
 * sums, computed in the kernel from its size parameters). Block b finds its part with a
 * balanced tree of compares against the o_p (log2(parts) uniform branches), then its threads
 * stride over the block's C vectors. The grid is exactly sum nb_p blocks, not grid-stride: a
 * loop over virtual blocks lets LLVM hoist every part's block-invariant index math out of it,
 * and with 73 parts (511 buffers) those values, live across the dispatch, took 255 registers
 * and 14 KB of spills; straight-line, ptxas reads each part's pointers from the parameter bank
 * in its own leaf (48 registers). The runtime's 2^31-1 blocks are 2^41 vectors.
 *
 * Evaluation: codegen/fused_eval.c, the evaluator codegen/fused.c uses for one region: every
 * member is computed in registers from the region's parameters, walking back through its
 * producers (elementwise ops, full and iota, and the index maps broadcast, reshape, transpose
 * and slice) and memoised on (value, coordinates) within a vector (and its thread axis); each op
 * is lowered by cg_member (codegen/member.c), the lowering every elementwise kernel uses (16-bit
 * floats compute in f32 and round at each op's output, as the interpreter does), and results are
 * stored as fused.c stores them, so merging kernels never changes a result. A parameter read
 * along the innermost axis of a vector is one 16-byte load when its offset is provably a
 * multiple of v_p (aligned bf16 as 32-bit pairs); results are written with one 16-byte store.
 * Buffers are assumed 16-byte aligned (the runtime's allocations are).
 *
 * In place: each result may be written over one operand of its own part read only at the
 * element being written (tir_kernel.inplace_of; inplace_pairs), which no other result may take.
 *
 * Not lowered (TIR_ERR_UNSUPPORTED; compile.c then runs the members one by one): reductions and
 * other ops that are not elementwise or index maps, ops with no scalar lowering. */
#include <stdio.h>

#include "cg.h"
#include "fused_eval.h"
#include "fused_horizontal.h"

typedef fe_crd crd;
typedef fe_ctx hx;

/* ---------------------------------------------------------------- helpers */

/* entry i of a "a,b,c" list, or dflt when absent or malformed */
static int64_t list_at(const tir_attr_value *s, const char *key, int i, int64_t dflt) {
    const tir_attr_value *e = tir_dict_get(s, key);
    if (!e || e->kind != TIR_ATTR_STR || !e->u.s) return dflt;
    const char *p = e->u.s;
    for (int k = 0; k < i; k++) {
        p = strchr(p, ',');
        if (!p) return dflt;
        p++;
    }
    char *end;
    long long v = strtoll(p, &end, 10);
    return end == p || (*end && *end != ',') ? dflt : (int64_t)v;
}

/* ---------------------------------------------------------------- the kernel */

typedef struct part {
    int r0, nr;           /* results r0 .. r0+nr-1 */
    const tir_type *t;    /* their shape */
    int vec;
    int ta;               /* the thread axis (walked whole by each thread), -1 none */
    int64_t D;            /* its size (1 without one) */
    tir_type it;          /* the threads' space: t with axis ta collapsed to 1 */
    LLVMValueRef units;   /* vectors of `it`: numel(it) / vec */
    LLVMValueRef off;     /* first virtual block */
} part;

typedef struct hk {
    hx *f;
    const tir_op *fop;
    const tir_func *R;
    part *p;
    int np;
    int64_t chunk;        /* vectors per block */
    LLVMValueRef vb;      /* the virtual block */
    LLVMBasicBlockRef latch;
} hk;

/* part p's share of virtual block vb: its threads stride over the block's vectors. With a
 * thread axis a of size D, a vector of `it` stands for D vectors of t, at coordinates 0 .. D-1
 * along a (constants), evaluated together: slices along a (RoPE's two halves) are loaded once
 * for all of them, as codegen/fused.c's lower_elementwise does. */
static void emit_part(hk *h, int pi) {
    hx *f = h->f;
    cg *g = f->g;
    LLVMBuilderRef B = g->B;
    const part *p = &h->p[pi];
    const tir_type *ot = p->t;
    int D = (int)p->D, nr = p->nr;
    f->vec = p->vec;
    int nin = h->fop->nin;
    LLVMValueRef lb = LLVMBuildSub(B, h->vb, p->off, "");
    LLVMValueRef u0 = LLVMBuildMul(B, lb, cg_i64(g, h->chunk), "");
    LLVMValueRef u1 = cg_umin(g, LLVMBuildAdd(B, u0, cg_i64(g, h->chunk), ""), p->units);
    LLVMValueRef tid = cg_sreg(g, "tid.x");
    cg_loop l;
    LLVMValueRef u = cg_for_begin(g, &l, LLVMBuildAdd(B, u0, tid, ""), u1, cg_sreg(g, "ntid.x"));
    LLVMValueRef base = p->vec > 1 ? LLVMBuildMul(B, u, cg_i64(g, p->vec), "") : u;
    crd co[4];
    fe_thread_crds(f, ot, &p->it, base, p->ta, D, co);
    /* every result evaluated (its loads issued) before the first store; along a thread axis,
     * every load issued before the math that uses the first */
    f->nm = 0;
    fe_write_results(f, h->R, p->r0, nr, co, D, g->buf + nin + p->r0, D > 1);
    f->nm = 0;
    cg_for_end(g, &l);
    LLVMBuildBr(B, h->latch);
}

/* parts lo .. hi-1, knowing o_lo <= vb < o_hi: split at the middle part's offset */
static void dispatch(hk *h, int lo, int hi) {
    cg *g = h->f->g;
    if (hi - lo == 1) {
        emit_part(h, lo);
        return;
    }
    int mid = (lo + hi) / 2;
    LLVMBasicBlockRef left = LLVMAppendBasicBlockInContext(g->C, g->fn, "parts_lo");
    LLVMBasicBlockRef right = LLVMAppendBasicBlockInContext(g->C, g->fn, "parts_hi");
    LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntULT, h->vb, h->p[mid].off, ""), left, right);
    LLVMPositionBuilderAtEnd(g->B, left);
    dispatch(h, lo, mid);
    LLVMPositionBuilderAtEnd(g->B, right);
    dispatch(h, mid, hi);
}

/* the parts: the schedule's part_results, cut again wherever the result shape changes; each
 * with its part_vectors and part_thread_axes entries (a thread axis is kept only where it is
 * not the innermost and has a constant size of at most 4, as fused.c's lower_elementwise) */
static part *find_parts(cg *g, const tir_func *R, const tir_attr_value *sched, int *np) {
    part *p = calloc((size_t)R->nres, sizeof *p);
    if (!p) return NULL;
    int n = 0, sp = 0;
    int64_t left = list_at(sched, "part_results", 0, -1);
    for (int r = 0; r < R->nres; r++) {
        const tir_type *t = &R->results[r]->type;
        bool cut = r == 0 || !tir_type_same_dims(t, p[n - 1].t) || left == 0;
        if (left == 0) left = list_at(sched, "part_results", ++sp, -1);
        if (cut) {
            int64_t v = list_at(sched, "part_vectors", sp, 1), ta = list_at(sched, "part_thread_axes", sp, -1);
            p[n++] = (part){.r0 = r, .nr = 0, .t = t, .vec = fe_clamp_vec(v),
                            .ta = ta >= 0 && ta < TIR_MAX_RANK ? (int)ta : -1};
        }
        p[n - 1].nr++;
        if (left > 0) left--;
    }
    for (int i = 0; i < n; i++) {
        const tir_type *t = p[i].t;
        if (t->rank == 0 || !tir_dim_multiple_of(g->ctx, t->dims[t->rank - 1], p[i].vec)) p[i].vec = 1;
        p[i].D = fe_thread_space(g->ctx, t, &p[i].ta, &p[i].it);
    }
    *np = n;
    return p;
}

/* In place (codegen.h, tir_kernel.inplace_of): pair[r] = the operand result r may be written
 * over, or -1. A part's vector is read and written by one thread, every result evaluated before
 * the first store, so operand j may take a result of its part q when every value computed from
 * j is an elementwise op over j's shape (no broadcast, no index map: element c is read only
 * while element c is computed) and every result reached from j is of part q, whose shape is
 * j's. The pairing is what makes that enough: no result but pair[r]'s may be written over j, so
 * another part's result of j's layout, whose blocks run in any order with q's, never lands on j
 * before q's blocks read it (with a mask of "any result of j's layout", the layers of a model,
 * which share shapes, kept nearly every operand). Each operand goes to one result at most (two
 * results over one buffer would be one value), chosen so that an optimizer step pairs p, m, v
 * with new p, m, v: results with the fewest candidates first, each taking an operand it reads
 * over one it does not, then the one the fewest results read (p is read only by new p; g by
 * every result), then the first. Returns false when out of memory. */
static bool inplace_pairs(const tir_op *fop, const tir_func *R, const part *p, int np, int *pair) {
    int nin = fop->nin < R->nparams ? fop->nin : R->nparams, nres = R->nres;
    size_t nv1 = (size_t)(R->nvalues > 0 ? R->nvalues : 1), nr1 = (size_t)(nres > 0 ? nres : 1),
           ni1 = (size_t)(nin > 0 ? nin : 1);
    bool *t = calloc(nv1, sizeof *t);
    bool *dep = calloc(ni1 * nr1, sizeof *dep); /* dep[j * nres + r]: result r reads operand j */
    int *rp = calloc(nr1, sizeof *rp), *q = malloc(ni1 * sizeof *q), *nreads = calloc(ni1, sizeof *nreads);
    int *ncand = calloc(nr1, sizeof *ncand), *order = malloc(nr1 * sizeof *order);
    bool *claimed = calloc(ni1, sizeof *claimed);
    bool ok = t && dep && rp && q && nreads && ncand && order && claimed;
    for (int r = 0; r < nres; r++) pair[r] = -1;
    if (!ok) goto out;
    for (int i = 0; i < np; i++)
        for (int r = p[i].r0; r < p[i].r0 + p[i].nr && r < nres; r++) rp[r] = i;
#define TAINT(v) ((v)->id >= 0 && (v)->id < R->nvalues && t[(v)->id])
    for (int j = 0; j < nin; j++) {
        q[j] = -1;
        const tir_value *pv = R->params[j];
        if (pv->id < 0 || pv->id >= R->nvalues || fe_shares_storage(fop, j)) continue;
        memset(t, 0, nv1 * sizeof *t);
        t[pv->id] = true;
        bool good = true;
        for (int i = 0; i < R->nops && good; i++) {
            const tir_op *op = R->ops[i];
            bool any = false;
            for (int k = 0; k < op->nin; k++) any |= TAINT(op->in[k]);
            if (!any) continue;
            good = tir_op_is_elementwise(op->code) && op->nout == 1 && tir_type_same_dims(&op->out[0]->type, &pv->type) &&
                   op->out[0]->id >= 0 && op->out[0]->id < R->nvalues;
            if (good) t[op->out[0]->id] = true;
        }
        int qj = -1;
        for (int r = 0; r < nres && good; r++) {
            if (!TAINT(R->results[r])) continue;
            dep[(size_t)j * nr1 + (size_t)r] = true;
            nreads[j]++;
            if (qj < 0) qj = rp[r];
            good = rp[r] == qj;
        }
        if (good && qj >= 0 && tir_type_same_dims(p[qj].t, &pv->type)) q[j] = qj;
    }
#undef TAINT
#define CAND(j, r) (q[j] >= 0 && q[j] == rp[r] && fe_same_layout(&R->results[r]->type, &R->params[j]->type))
    for (int r = 0; r < nres; r++) {
        for (int j = 0; j < nin; j++) ncand[r] += CAND(j, r);
        int k = r; /* insertion: by candidates, stable */
        while (k > 0 && ncand[order[k - 1]] > ncand[r]) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = r;
    }
    for (int i = 0; i < nres; i++) {
        int r = order[i], best = -1;
        for (int j = 0; j < nin; j++) {
            if (claimed[j] || !CAND(j, r)) continue;
            bool dj = dep[(size_t)j * nr1 + (size_t)r];
            if (best < 0 || (dj && !dep[(size_t)best * nr1 + (size_t)r]) ||
                (dj == dep[(size_t)best * nr1 + (size_t)r] && nreads[j] < nreads[best]))
                best = j;
        }
        if (best >= 0) {
            pair[r] = best;
            claimed[best] = true;
        }
    }
#undef CAND
out:
    free(t);
    free(dep);
    free(rp);
    free(q);
    free(nreads);
    free(ncand);
    free(order);
    free(claimed);
    return ok;
}

static tir_status lower(hx *f, const tir_op *fop, const char *name, const tir_attr_value *sched) {
    cg *g = f->g;
    const tir_func *R = tir_op_region(fop);
    for (int i = 0; i < R->nops; i++) {
        const tir_op *op = R->ops[i];
        unsigned fl = tir_ops[op->code].flags;
        if (!tir_op_is_elementwise(op->code) && !(fl & TIR_F_MOVEMENT) && op->code != TIR_OP_FULL &&
            op->code != TIR_OP_IOTA)
            return cg_fail(g, TIR_ERR_UNSUPPORTED, "horizontal codegen: %s in a part", tir_ops[op->code].name);
    }
    int np = 0;
    part *p = find_parts(g, R, sched, &np);
    if (!p) return cg_fail(g, TIR_ERR_OOM, "out of memory");
    int64_t block = fe_sched_int(sched, "block", 256), per = fe_sched_int(sched, "per_thread", 4);
    if (block < 32 || block > 1024 || block % 32) block = 256;
    if (per < 1 || per > 64) per = 4;
    hk h = {.f = f, .fop = fop, .R = R, .p = p, .np = np, .chunk = block * per};

    for (int i = 0; i < R->nparams; i++) cg_use_type(g, &R->params[i]->type);
    for (int i = 0; i < R->nops; i++)
        for (int j = 0; j < R->ops[i]->nout; j++) cg_use_type(g, &R->ops[i]->out[j]->type);
    for (int i = 0; i < np; i++) cg_use_type(g, &p[i].it);
    /* the grid: every part's blocks */
    const tir_dim *grid = tir_dim_const(g->ctx, 0);
    for (int i = 0; i < np && grid; i++)
        grid = tir_dim_add(g->ctx, grid, cg_ceil_div(g, cg_numel_dim(g, &p[i].it), p[i].vec * h.chunk));
    if (!grid) {
        free(p);
        return cg_fail(g, TIR_ERR_UNSUPPORTED, "launch size overflows int64");
    }
    cg_begin_kernel(g, name, fop->nin + fop->nout, (int)block);
    /* noalias + readonly operands (ld.global.nc): a region names each operand once and a result
     * has storage of its own, so no result overlaps anything the kernel reads; except each
     * operand paired with a result for in place and that result: plain pointers, so their loads
     * are coherent and stay before the stores that may hit them. The kernel owns the pairing
     * from here (freed with it, on failure too). */
    int *pair = malloc((size_t)fop->nout * sizeof *pair);
    if (!pair || !inplace_pairs(fop, R, p, np, pair)) {
        free(pair);
        free(p);
        return cg_fail(g, TIR_ERR_OOM, "out of memory");
    }
    g->k->inplace_of = pair;
    unsigned inplace = 0; /* inplace_ok, for display only: the planner follows the pairing */
    for (int r = 0; r < fop->nout; r++)
        if (pair[r] >= 0 && pair[r] < 32) inplace |= 1u << pair[r];
    bool *plain = calloc((size_t)(g->nbuf > 0 ? g->nbuf : 1), sizeof *plain);
    if (!plain) {
        free(p);
        return cg_fail(g, TIR_ERR_OOM, "out of memory");
    }
    for (int i = 0; i < g->nbuf; i++) {
        plain[i] = i >= fop->nin && i - fop->nin < fop->nout && pair[i - fop->nin] >= 0;
        for (int r = 0; i < fop->nin && r < fop->nout && !plain[i]; r++) plain[i] = pair[r] == i;
    }
    fe_mark_buffers(g, fop->nin, plain);
    free(plain);
    g->k->inplace_ok = inplace;
    LLVMBuilderRef B = g->B;
    /* offsets o_p: prefix sums of ceil(u_p / chunk) */
    LLVMValueRef o = cg_i64(g, 0);
    for (int i = 0; i < np; i++) {
        LLVMValueRef n = cg_numel(g, &p[i].it);
        p[i].units = p[i].vec > 1 ? LLVMBuildUDiv(B, n, cg_i64(g, p[i].vec), "") : n;
        p[i].off = o;
        LLVMValueRef nb = LLVMBuildUDiv(B, LLVMBuildAdd(B, p[i].units, cg_i64(g, h.chunk - 1), ""), cg_i64(g, h.chunk), "");
        o = LLVMBuildAdd(B, o, nb, "");
    }
    /* one virtual block per block of the grid: a grid-stride loop over them would let LLVM
     * hoist every part's block-invariant index math out of the loop (hundreds of registers
     * live across the dispatch) */
    h.vb = cg_sreg(g, "ctaid.x");
    h.latch = LLVMAppendBasicBlockInContext(g->C, g->fn, "done");
    cg_if in;
    cg_if_begin(g, &in, LLVMBuildICmp(B, LLVMIntULT, h.vb, o, ""));
    if (np > 0) dispatch(&h, 0, np);
    else LLVMBuildBr(B, h.latch);
    LLVMPositionBuilderAtEnd(B, h.latch);
    cg_if_end(g, &in);
    LLVMBuildRetVoid(B);

    g->k->grid[0] = grid;
    g->k->grid[1] = tir_dim_const(g->ctx, 1);
    g->k->grid[2] = tir_dim_const(g->ctx, 1);
    free(p);
    return g->st;
}

tir_status tir_codegen_fused_horizontal(tir_context *ctx, const tir_op *op, int id,
                                        const tir_codegen_options *opts, tir_kernel *out, tir_diag *d) {
    memset(out, 0, sizeof *out);
    out->alias_of = -1;
    out->init_from = -1;
    const tir_module *m = op->nout > 0 && op->out[0]->func ? op->out[0]->func->module : NULL;
    const char *arch = opts && opts->arch ? opts->arch : "sm_90a";
    int opt = opts ? opts->opt_level : 2;
    const tir_func *R = tir_op_region(op);
    if (!R || R->nres < 1 || R->nres != op->nout || R->nparams != op->nin)
        return tir_diag_set(d, TIR_ERR_INTERNAL, m, op->loc, "codegen: malformed fused op");
    if (!tir_codegen_arch_ok(arch))
        return tir_diag_set(d, TIR_ERR_UNSUPPORTED, m, op->loc, "codegen: unsupported arch '%s'", arch);
    const char *kname = tir_attr_str(op, "kernel", "horizontal");
    snprintf(out->name, sizeof out->name, "tir_%.40s_%d", kname, id);
    for (char *p = out->name; *p; p++) /* an identifier for PTX whatever the region was called */
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_')) *p = '_';
    cg g;
    cg_init(&g, ctx, op, arch, opt, out, d);
    hx f = {.g = &g, .vec = 1};
    tir_status s = g.st;
    if (s == TIR_OK) s = lower(&f, op, out->name, tir_op_attr(op, "schedule"));
    if (s == TIR_OK) s = cg_emit(&g, opt);
    cg_dispose(&g);
    free(f.m);
    free(f.approx);
    if (s != TIR_OK) {
        tir_kernel_release(out);
        out->alias_of = -1;
    }
    return s;
}
