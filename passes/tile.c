/* tile.c: gives every tensor-core matmul its tiling and its epilogue. Each `matmul` whose
 * operands are 16-bit floats (bf16, f16: the operands the tensor-core template takes), or 16-bit
 * floats widened to f32 (below), becomes a fused region holding the matmul and the elementwise
 * ops that finish its output (bias add, activation, residual add, scaling, the output cast),
 * with the schedule
 *   {kind="matmul", bm, bn, bk, warps_m, warps_n, stages, group_m, wgmma, split_k}
 * that the code generator follows (docs/tir.md §11.1); split_k is always 1 (below). Runs after
 * decompose and cleanup, before fuse, so that fuse never claims the epilogue for an elementwise
 * kernel of its own.
 *
 * requires: a verified module, normally after decompose and cleanup (no composites).
 * maintains: signatures and results; the meaning of every value, bit for bit (the same ops run in
 *           the same order, only grouped); the names of values visible outside a region.
 * breaks:  the flat op list: matmuls and their epilogues now live in regions (opaque to fuse
 *           and to simplify's patterns).
 *
 * The epilogue is the chain that starts at the matmul's result: while the current value is read
 * by exactly one op (any number of times), not returned, and that op is elementwise (unary,
 * binary, where, cast) with the matmul's output shape, the op joins. Its other operands broadcast
 * to that shape (bias [N], residual [.., M, N], scalars) and come from outside: full() constants
 * are copied into the region, anything else becomes a region parameter. Since every member but
 * the last has its only reader inside the region, nothing outside depends on a member but the
 * last, whose value the region yields: exactly one result. A value read by two ops (or returned
 * and read) stops the chain there, since it has to be materialised anyway. The region is emitted
 * where its last member was, where every operand is already defined.
 *
 * Widened operands. A bf16/f16 `linear` decomposes (ir/composite.c) to an f32 matmul of
 * cast(x, dtype=f32) and cast(w, dtype=f32), "compute in f32, round once". Such a matmul (both
 * operands casts to f32 of one 16-bit dtype) is tiled too: the 16-bit tensor-core kernel gives
 * the same values (16-bit values are exact in f32, the MMA multiplies them exactly and adds in
 * f32; only the summation order differs, as for any matmul) and keeps the f32 accumulator as the
 * matmul's result. The two casts are copied into the region (a copy per region that reads them;
 * the one outside is dropped when nothing else reads it), so the kernel reads the 16-bit values;
 * an epilogue operand that is a cast and broadcasts to the output (the bias's cast to f32) is
 * copied in the same way. An epilogue chain does not take in a widening cast that a matmul reads
 * (the next linear's input cast): it stays outside, for that matmul's region to copy in.
 *
 * Other f32/f64 matmuls are left alone: the only kernel for them is the SIMT one without an
 * epilogue, and a region its code generator refuses runs member by member (compiler/compile.c),
 * which is more kernels than a plain matmul followed by fuse's one elementwise kernel.
 *
 * The tiling mirrors codegen/matmul_mma.c's tir_mma_pick_config_for rather than calling it:
 * passes/ may not depend on codegen/, and the choice is a pure function of the shape class that
 * belongs with the pass that records it (tir_tile_pick, unit-tested in tests/unit/test_tile.c).
 * The schedule names sm_90a's choice (wgmma); a code generator for another arch keeps the block
 * tile and uses mma.sync. split_k is always 1 for now: the heuristic that would split K when K
 * is long and the output has too few tiles to fill the GPU is kept, disabled (TILE_SPLIT_K),
 * until the code generator has a split-K kernel, since a region it declines runs member by
 * member; a region must never fall back because of a key this pass chose. */
#include <stdio.h>
#include <stdlib.h>

#include "passes.h"
#include "rewrite.h"

/* H100's SM count: the number of blocks one wave of a kernel needs (sm_90a is the default target) */
#define TILE_SMS 132
/* Split-K is off: tir_codegen_matmul_region has no split-K kernel yet and declines a region
 * with split_k > 1 (its members would then run one by one, 3-5 kernels), so the pass records
 * split_k=1 everywhere. Set to 1 with a split-K kernel to bring back the heuristic below. */
#define TILE_SPLIT_K 0
/* symbolic sizes are taken as large (as codegen/matmul_mma.c does), so they never pick split-K */
#define TILE_BIG 4096
/* sizes beyond this are all "large" to the heuristic; clamping keeps its products in range */
#define TILE_CLAMP ((int64_t)1 << 20)

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t clamp(int64_t v) { return v < 0 ? TILE_BIG : v > TILE_CLAMP ? TILE_CLAMP : v; }

void tir_tile_pick(int64_t batch, int64_t M, int64_t N, int64_t K, tir_tile_config *cfg) {
    bool kknown = K >= 0;
    batch = clamp(batch);
    M = clamp(M);
    N = clamp(N);
    K = clamp(K);
    bool small = M * N <= 512 * 512 || M <= 64 || N <= 64;
    if (small) {
        /* 64x64 tiles so that more blocks run; mma.sync (a wgmma warpgroup wants 64 rows each) */
        *cfg = (tir_tile_config){.bm = 64, .bn = 64, .bk = 32, .warps_m = 2, .warps_n = 2,
                                 .stages = 3, .group_m = 8, .wgmma = false, .split_k = 1};
    } else if (N <= 1024 || M * N <= 2048 * 2048) {
        *cfg = (tir_tile_config){.bm = 128, .bn = 128, .bk = 64, .warps_m = 2, .warps_n = 1,
                                 .stages = 4, .group_m = 8, .wgmma = true, .split_k = 1};
    } else {
        /* two warpgroups of 64x256: the largest wgmma tile within the register budget */
        *cfg = (tir_tile_config){.bm = 128, .bn = 256, .bk = 64, .warps_m = 2, .warps_n = 1,
                                 .stages = 4, .group_m = 8, .wgmma = true, .split_k = 1};
    }
    /* (disabled, TILE_SPLIT_K) too few output tiles for one wave and a long K: split K across
     * blocks until the GPU is full, keeping at least 1024 of K per split so that each block's
     * pipeline fills */
    int64_t tiles = cdiv(M, cfg->bm) * cdiv(N, cfg->bn) * batch;
    if (!TILE_SPLIT_K || !kknown || K < 4096) return;
    while (tiles * cfg->split_k < TILE_SMS && cfg->split_k < 16 && K / (2 * cfg->split_k) >= 1024)
        cfg->split_k *= 2;
}

static int64_t dim_or(const tir_dim *d) {
    int64_t v;
    return tir_dim_is_const(d, &v) ? v : -1;
}

static void pick_for(const tir_op *op, tir_tile_config *cfg) {
    const tir_type *o = &op->out[0]->type, *a = &op->in[0]->type;
    int64_t batch = 1;
    for (int i = 0; i + 2 < o->rank && batch >= 0; i++) {
        int64_t v = dim_or(o->dims[i]);
        batch = v < 0 ? -1 : v > TILE_CLAMP || batch * v > TILE_CLAMP ? TILE_CLAMP : batch * v;
    }
    bool ta = tir_attr_bool(op, "transpose_a", false);
    const tir_dim *K = a->dims[a->rank - (ta ? 2 : 1)];
    tir_tile_pick(batch, dim_or(o->dims[o->rank - 2]), dim_or(o->dims[o->rank - 1]), dim_or(K), cfg);
}

/* ------------------------------------------------------------------ the analysis */

static bool is16(tir_dtype t) { return t == TIR_BF16 || t == TIR_F16; }

/* v = cast(p, dtype=f32) with p a 16-bit float: the 16-bit dtype, else TIR_F32 (none) */
static tir_dtype widened_from(const tir_value *v) {
    const tir_op *c = v->def;
    if (!c || c->code != TIR_OP_CAST || v->type.dtype != TIR_F32 || !is16(c->in[0]->type.dtype))
        return TIR_F32;
    return c->in[0]->type.dtype;
}

/* an f32 matmul of two 16-bit values of one dtype widened to f32 (linear's decomposition) */
static bool widened_matmul(const tir_op *op) {
    if (op->code != TIR_OP_MATMUL || op->out[0]->type.dtype != TIR_F32) return false;
    tir_dtype a = widened_from(op->in[0]);
    return a != TIR_F32 && a == widened_from(op->in[1]);
}

static bool is_const_op(const tir_op *op) { return op->code == TIR_OP_FULL; }

/* v broadcasts to S (aligned right, each dim equal or the constant 1): a bias, a residual */
static bool bcasts_to(const tir_type *v, const tir_type *S) {
    if (v->rank > S->rank) return false;
    for (int i = 0; i < v->rank; i++) {
        const tir_dim *d = v->dims[v->rank - 1 - i];
        int64_t c;
        if (d != S->dims[S->rank - 1 - i] && !(tir_dim_is_const(d, &c) && c == 1)) return false;
    }
    return true;
}

typedef struct ta {
    const tir_func *f;
    tir_op *const *ops; /* f's ops as analysed (the rewrite's old list once it begins) */
    int n;
    tir_vmap idx;    /* op -> index + 1 */
    int *nuse;       /* per op: how many ops read its result */
    int *user;       /* per op: its reader when there is exactly one */
    bool *ret;       /* per op: its result is returned */
    bool *absorbed;  /* per op: a full() or cast read only by region members (copied into them) */
    bool *feeds_mm;  /* per op: its result is an operand of a matmul */
    int *region;     /* per op: the region it belongs to, or -1 */
    int nr;
    int *first, *last; /* per region: its matmul, its last member */
} ta;

static int def_of(const ta *a, const tir_value *v) {
    if (!v || !v->def) return -1;
    void *p = tir_vmap_get(&a->idx, v->def);
    return p ? (int)((intptr_t)p - 1) : -1;
}

static void ta_free(ta *a) {
    tir_vmap_free(&a->idx);
    free(a->nuse);
    free(a->user);
    free(a->ret);
    free(a->absorbed);
    free(a->feeds_mm);
    free(a->region);
    free(a->first);
    free(a->last);
}

/* op k, the only reader of the chain's last value, may join the epilogue of a matmul of shape S */
static bool joins(const ta *a, int k, const tir_type *S) {
    const tir_op *op = a->f->ops[k];
    if (!tir_op_is_elementwise(op->code) || op->nout != 1 || a->region[k] >= 0) return false;
    /* TIR_TILE_EPILOGUE=0 keeps only the output cast in the matmul kernel and leaves the rest of
     * the epilogue to fuse (a matmul kernel, then an elementwise one): the baseline `tirc bench`
     * compares the fused epilogue against (benchmarks/matmul_epilogue.tir) */
    const char *ep = getenv("TIR_TILE_EPILOGUE");
    if (ep && strcmp(ep, "0") == 0 && op->code != TIR_OP_CAST) return false;
    /* a widening of a 16-bit value that a matmul reads stays outside: that matmul's region takes
     * the cast (and its 16-bit operand) in, and this one yields the narrower value */
    if (a->feeds_mm[k] && widened_from(op->out[0]) != TIR_F32) return false;
    const tir_type *t = &op->out[0]->type;
    if (t->rank != S->rank) return false;
    for (int i = 0; i < S->rank; i++)
        if (t->dims[i] != S->dims[i]) return false;
    /* its other operands need no check: nothing outside reads a member but the last of its
     * region, so they are plain values or other regions' results, all defined before op k */
    return true;
}

/* the cast op k (outside every region) is copied into the region of its reader c: as an operand
 * of a widened matmul (the code generator loads the 16-bit value and widens it on the tensor
 * cores), or as an epilogue operand that broadcasts to the output (a bias's cast: the epilogue
 * loads the narrower value) */
static bool copied_cast(const ta *a, int k, int c) {
    const tir_op *op = a->ops[k];
    int r = a->region[c];
    if (op->code != TIR_OP_CAST || a->region[k] >= 0 || r < 0) return false;
    const tir_op *mm = a->ops[a->first[r]];
    if (c == a->first[r]) return widened_matmul(mm);
    return bcasts_to(&op->out[0]->type, &mm->out[0]->type);
}

/* a full() whose every reader is an epilogue member is copied into those regions and dropped;
 * a matmul's operands stay region parameters (the form the code generator takes) */
static bool absorbed_const(const ta *a, int k) {
    const tir_func *f = a->f;
    if (!is_const_op(f->ops[k]) || a->ret[k] || a->nuse[k] == 0) return false;
    for (int c = k + 1; c < a->n; c++) {
        const tir_op *op = f->ops[c];
        for (int j = 0; j < op->nin; j++)
            if (def_of(a, op->in[j]) == k && (a->region[c] < 0 || a->first[a->region[c]] == c))
                return false;
    }
    return true;
}

static bool analyse(ta *a, const tir_func *f) {
    memset(a, 0, sizeof *a);
    a->f = f;
    a->ops = f->ops;
    int n = a->n = f->nops;
    size_t sz = (size_t)(n ? n : 1);
    a->nuse = calloc(sz, sizeof *a->nuse);
    a->user = malloc(sz * sizeof *a->user);
    a->ret = calloc(sz, sizeof *a->ret);
    a->absorbed = calloc(sz, sizeof *a->absorbed);
    a->feeds_mm = calloc(sz, sizeof *a->feeds_mm);
    a->region = malloc(sz * sizeof *a->region);
    a->first = malloc(sz * sizeof *a->first);
    a->last = malloc(sz * sizeof *a->last);
    if (!a->nuse || !a->user || !a->ret || !a->absorbed || !a->feeds_mm || !a->region ||
        !a->first || !a->last)
        return false;
    for (int k = 0; k < n; k++) {
        a->region[k] = -1;
        a->user[k] = -1;
        if (!tir_vmap_put(&a->idx, f->ops[k], (void *)(intptr_t)(k + 1))) return false;
    }
    for (int k = 0; k < n; k++) {
        const tir_op *op = f->ops[k];
        for (int j = 0; j < op->nin; j++) {
            int p = def_of(a, op->in[j]);
            if (p < 0 || a->user[p] == k) continue; /* a reader counts once however often it reads */
            a->nuse[p]++;
            a->user[p] = k;
        }
        for (int j = 0; op->code == TIR_OP_MATMUL && j < op->nin; j++) {
            int p = def_of(a, op->in[j]);
            if (p >= 0) a->feeds_mm[p] = true;
        }
    }
    for (int i = 0; i < f->nres; i++) {
        int p = def_of(a, f->results[i]);
        if (p >= 0) a->ret[p] = true;
    }
    for (int k = 0; k < n; k++) {
        const tir_op *mm = f->ops[k];
        if (mm->code != TIR_OP_MATMUL || a->region[k] >= 0) continue;
        /* a widened matmul's casts must be free to copy in (not yielded by an earlier region) */
        int c0 = def_of(a, mm->in[0]), c1 = def_of(a, mm->in[1]);
        bool wide = widened_matmul(mm) && c0 >= 0 && c1 >= 0 && a->region[c0] < 0 && a->region[c1] < 0;
        if (!is16(mm->in[0]->type.dtype) && !wide) continue;
        int r = a->nr++;
        a->first[r] = a->last[r] = k;
        a->region[k] = r;
        const tir_type *S = &mm->out[0]->type;
        for (int cur = k; a->nuse[cur] == 1 && !a->ret[cur] && f->ops[cur]->nout == 1;) {
            int u = a->user[cur];
            if (!joins(a, u, S)) break;
            a->region[u] = r;
            a->last[r] = cur = u;
        }
    }
    for (int k = 0; a->nr > 0 && k < n; k++) a->absorbed[k] = absorbed_const(a, k);
    /* a cast every reader copies in is dropped: keep[] marks the others */
    bool *keep = calloc(sz, sizeof *keep);
    if (!keep) return false;
    for (int c = 0; a->nr > 0 && c < n; c++)
        for (int j = 0; j < f->ops[c]->nin; j++) {
            int p = def_of(a, f->ops[c]->in[j]);
            if (p >= 0 && !copied_cast(a, p, c)) keep[p] = true;
        }
    for (int k = 0; a->nr > 0 && k < n; k++)
        if (f->ops[k]->code == TIR_OP_CAST && a->region[k] < 0 && a->nuse[k] > 0 && !a->ret[k] &&
            !keep[k])
            a->absorbed[k] = true;
    free(keep);
    return true;
}

/* ------------------------------------------------------------------ rewriting */


/* the region parameters: outer[i] (the outside value) is the fused op's operand i */
typedef struct params {
    tir_value **outer;
    int n, cap;
} params;

/* v's parameter in R (added on first use), through map; NULL on OOM */
static tir_value *param_of(tir_rw *rw, tir_func *R, tir_vmap *map, params *ps, tir_value *v,
                           tir_loc loc) {
    tir_value *p = tir_vmap_get(map, v);
    if (p) return p;
    if (ps->n == ps->cap) {
        int nc = ps->cap ? 2 * ps->cap : 8;
        tir_value **no = realloc(ps->outer, (size_t)nc * sizeof *no);
        if (!no) return NULL;
        ps->outer = no;
        ps->cap = nc;
    }
    p = tir_func_add_param(R, v->name, &v->type, loc);
    if (!p || !tir_vmap_put(map, v, p)) return NULL;
    ps->outer[ps->n++] = tir_rw_get(rw, v);
    return p;
}

static tir_status emit_region(tir_rw *rw, const ta *a, int r, tir_kernel_names *nm, tir_diag *d) {
    tir_func *f = rw->f;
    tir_module *m = f->module;
    const tir_op *mm = rw->old[a->first[r]];
    tir_status st = TIR_OK;
    tir_vmap map = {0};
    params ps = {0};
    tir_value *tmp[8];
    char kname[64];
    for (;;) {
        snprintf(kname, sizeof kname, "matmul_%d", nm->next++);
        if (!tir_kernel_names_has(nm, kname)) break;
    }
    const char *kn = tir_arena_strdup(m->arena, kname);
    tir_func *R = kn ? tir_region_new(f, kn, mm->loc) : NULL;
    if (!kn || !R || !tir_kernel_names_add(nm, kn)) goto oom;
    for (int k = a->first[r]; k <= a->last[r] && st == TIR_OK; k++) {
        if (a->region[k] != r) continue;
        const tir_op *op = rw->old[k];
        if (op->nin > 8) {
            st = tir_diag_set(d, TIR_ERR_INTERNAL, m, op->loc, "tile: %d operands", op->nin);
            break;
        }
        for (int j = 0; j < op->nin && st == TIR_OK; j++) {
            int p = def_of(a, op->in[j]);
            tir_value *v = NULL;
            if (p >= 0 && copied_cast(a, p, k)) {
                /* a fresh copy per reader, so that a widened operand is never also an epilogue
                 * operand; its operand is a parameter, the form the code generator takes */
                const tir_op *c = rw->old[p];
                tir_value *src = param_of(rw, R, &map, &ps, c->in[0], op->loc);
                if (!src) goto oom;
                tir_op *cl = tir_rw_clone(R, c, &src, NULL, d);
                if (!cl) {
                    st = tir_rw_fail(d);
                    break;
                }
                tmp[j] = cl->out[0];
                continue;
            }
            v = tir_vmap_get(&map, op->in[j]);
            /* a constant the epilogue reads is free to recompute: copied in */
            if (!v && p >= 0 && is_const_op(rw->old[p]) && k != a->first[r]) {
                tir_op *c = tir_rw_clone(R, rw->old[p], NULL, NULL, d);
                if (!c) {
                    st = tir_rw_fail(d);
                    break;
                }
                c->out[0]->name = rw->old[p]->out[0]->name;
                v = c->out[0];
                if (!tir_vmap_put(&map, op->in[j], v)) goto oom;
            } else if (!v) { /* a parameter: the outside value as the fused op's operand */
                if (!(v = param_of(rw, R, &map, &ps, op->in[j], op->loc))) goto oom;
            }
            tmp[j] = v;
        }
        if (st != TIR_OK) break;
        tir_op *no = tir_rw_clone(R, op, tmp, NULL, d);
        if (!no) {
            st = tir_rw_fail(d);
            break;
        }
        no->out[0]->name = op->out[0]->name;
        if (!tir_vmap_put(&map, op->out[0], no->out[0])) goto oom;
    }
    if (st != TIR_OK) goto out;
    const tir_op *lastop = rw->old[a->last[r]];
    tir_value *res = tir_vmap_get(&map, lastop->out[0]);
    res->name = NULL; /* the name moves to the fused op's result */
    tir_func_set_results(R, 1, &res);
    tir_func_set_ret(R, 1, &res->type);
    if (R->nres != 1 || R->nret != 1) goto oom;

    tir_tile_config c;
    pick_for(mm, &c);
    tir_attr_value sch[] = {
        tir_a_str("kind", "matmul"),     tir_a_int("bm", c.bm),
        tir_a_int("bn", c.bn),           tir_a_int("bk", c.bk),
        tir_a_int("warps_m", c.warps_m), tir_a_int("warps_n", c.warps_n),
        tir_a_int("stages", c.stages),   tir_a_int("group_m", c.group_m),
        tir_a_bool("wgmma", c.wgmma),    tir_a_int("split_k", c.split_k),
    };
    tir_attr_value attrs[2] = {tir_a_str("kernel", kn),
                               tir_a_dict(m, "schedule", (int)(sizeof sch / sizeof sch[0]), sch)};
    tir_op *fo = tir_func_append_op(f, TIR_OP_FUSED, ps.n, ps.outer, 2, attrs, R, mm->loc, d);
    if (!fo) {
        st = tir_rw_fail(d);
        goto out;
    }
    fo->out[0]->name = lastop->out[0]->name;
    st = tir_rw_set(rw, lastop->out[0], fo->out[0]);
    goto out;
oom:
    st = tir_diag_set(d, TIR_ERR_OOM, m, mm->loc, "out of memory");
out:
    tir_vmap_free(&map);
    free(ps.outer);
    return st;
}

static tir_status tile_func(tir_func *f, tir_kernel_names *nm, tir_diag *d) {
    ta a;
    if (!analyse(&a, f)) {
        ta_free(&a);
        return tir_diag_set(d, TIR_ERR_OOM, f->module, f->loc, "out of memory");
    }
    if (a.nr == 0) {
        ta_free(&a);
        return TIR_OK;
    }
    tir_rw rw;
    tir_status st = tir_rw_begin(&rw, f, d);
    a.ops = rw.old;
    for (int k = 0; k < a.n && st == TIR_OK; k++) {
        int r = a.region[k];
        if (r >= 0) {
            if (k == a.last[r]) st = emit_region(&rw, &a, r, nm, d);
        } else if (!a.absorbed[k] && !tir_rw_copy(&rw, rw.old[k])) {
            st = tir_rw_fail(d);
        }
    }
    ta_free(&a);
    return tir_rw_end(&rw, st);
}

tir_status tir_pass_tile(tir_module *m, tir_diag *d) {
    tir_diag local;
    if (!d) d = &local;
    memset(d, 0, sizeof *d);
    if (!m) return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "tile: no module");
    tir_kernel_names nm;
    if (!tir_kernel_names_init(&nm, m)) {
        tir_kernel_names_free(&nm);
        return tir_diag_set(d, TIR_ERR_OOM, m, (tir_loc){0, 0}, "out of memory");
    }
    tir_status st = TIR_OK;
    for (int i = 0; i < m->nfuncs && st == TIR_OK; i++)
        if (m->funcs[i]->nops > 0) st = tile_func(m->funcs[i], &nm, d);
    tir_kernel_names_free(&nm);
    return st;
}
