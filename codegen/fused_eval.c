/* fused_eval.c: the elementwise evaluator of fused-region kernels (fused_eval.h): values of a
 * region at lane vectors of coordinates, memoised, loaded from the region's parameters and
 * stored to its results. Shared by codegen/fused.c and codegen/fused_horizontal.c. */
#include "fused_eval.h"

/* ---------------------------------------------------------------- small helpers */

int64_t fe_sched_int(const tir_attr_value *s, const char *key, int64_t dflt) {
    const tir_attr_value *e = tir_dict_get(s, key);
    if (!e) return dflt;
    if (e->kind == TIR_ATTR_INT) return e->u.i;
    if (e->kind == TIR_ATTR_BOOL) return e->u.b;
    return dflt;
}

int fe_clamp_vec(int64_t v) {
    int r = 1;
    while (r * 2 <= v && r * 2 <= FE_MAXV) r *= 2;
    return r;
}

bool fe_same_layout(const tir_type *a, const tir_type *b) {
    return tir_type_same_dims(a, b) && tir_dtype_size(a->dtype) == tir_dtype_size(b->dtype);
}

/* the value whose storage v is (a reshape of a contiguous buffer is a view of it: no kernel) */
static const tir_value *storage_of(const tir_value *v) {
    while (v->def && v->def->code == TIR_OP_RESHAPE && v->def->nin == 1) v = v->def->in[0];
    return v;
}

bool fe_shares_storage(const tir_op *fop, int j) {
    for (int k = 0; k < fop->nin; k++)
        if (k != j && storage_of(fop->in[k]) == storage_of(fop->in[j])) return true;
    return false;
}

void fe_mark_buffers(cg *g, int nin, const bool *plain) {
    unsigned na = LLVMGetEnumAttributeKindForName("noalias", 7);
    unsigned ro = LLVMGetEnumAttributeKindForName("readonly", 8);
    for (int i = 0; i < g->nbuf; i++) {
        if (plain[i]) continue;
        LLVMAddAttributeAtIndex(g->fn, (unsigned)i + 1, LLVMCreateEnumAttribute(g->C, na, 0));
        if (i < nin) LLVMAddAttributeAtIndex(g->fn, (unsigned)i + 1, LLVMCreateEnumAttribute(g->C, ro, 0));
    }
}

/* buffers are 16-byte aligned: no access may promise more, whatever its width */
static unsigned cap_align(size_t a) { return (unsigned)(a > 16 ? 16 : a); }

static void splat(fe_ctx *f, LLVMValueRef *out, LLVMValueRef x) {
    for (int j = 0; j < f->vec; j++) out[j] = x;
}

static bool same_crd(const fe_crd *a, const fe_crd *b) {
    if (a->rank != b->rank || a->lane != b->lane || a->aligned != b->aligned) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->c[i] != b->c[i]) return false;
    return true;
}

static fe_memo *memo_find(fe_ctx *f, const tir_value *v, const fe_crd *co) {
    for (int i = f->nm - 1; i >= 0; i--)
        if (f->m[i].v == v && same_crd(&f->m[i].co, co)) return &f->m[i];
    return NULL;
}

static void memo_add(fe_ctx *f, const tir_value *v, const fe_crd *co, LLVMValueRef *lanes) {
    if (f->nm == f->cap) {
        int nc = f->cap ? 2 * f->cap : 64;
        fe_memo *nm = realloc(f->m, (size_t)nc * sizeof *nm);
        if (!nm) {
            cg_fail(f->g, TIR_ERR_OOM, "out of memory");
            return;
        }
        f->m = nm;
        f->cap = nc;
    }
    fe_memo *e = &f->m[f->nm++];
    e->v = v;
    e->co = *co;
    memcpy(e->lane, lanes, sizeof e->lane);
}

/* ---------------------------------------------------------------- evaluation */

void fe_bcast_crd(cg *g, const fe_crd *co, const tir_type *ot, const tir_type *xt, fe_crd *xc) {
    int off = ot->rank - xt->rank;
    xc->rank = xt->rank;
    xc->lane = -1;
    xc->aligned = co->aligned;
    for (int j = 0; j < xt->rank; j++) {
        int64_t c;
        bool one = tir_dim_is_const(xt->dims[j], &c) && c == 1;
        xc->c[j] = one ? cg_i64(g, 0) : co->c[j + off];
        if (!one && co->lane == j + off) xc->lane = j;
    }
    bool same = tir_type_same_dims(xt, ot);
    xc->flat = same ? co->flat : NULL;
    xc->flat_t = same ? co->flat_t : NULL;
}

/* v evaluated one lane at a time (lanes whose coordinates an index map cannot keep together) */
static void scalarize(fe_ctx *f, const tir_value *v, const fe_crd *co, LLVMValueRef *out) {
    int vec = f->vec;
    LLVMValueRef tmp[FE_MAXV];
    for (int j = 0; j < vec; j++) {
        fe_crd cj = *co;
        cj.c[co->lane] = LLVMBuildAdd(f->g->B, co->c[co->lane], cg_i64(f->g, j), "");
        cj.lane = -1;
        cj.aligned = false;
        cj.flat = NULL;
        fe_eval(f, v, &cj, tmp); /* lane-free: every lane of tmp holds the one value */
        out[j] = tmp[0];
    }
}

/* the stage's address of v's vector at row coordinate co (fused_eval.h), or NULL when v is not
 * staged there: not a full-size operand read at its own row element, no room, or no stage */
static LLVMValueRef stage_at(fe_ctx *f, const tir_value *v, const fe_crd *co, size_t es) {
    cg *g = f->g;
    int i = v->index;
    if (!f->stage_mode || !f->stage_smem || i < 0 || i >= FE_MAX_STAGED || !co->flat || co->flat_t != f->stage_F ||
        !tir_type_same_dims(&v->type, f->stage_F))
        return NULL;
    if (f->stage_off[i] < 0) {
        int64_t bytes = (f->stage_L * (int64_t)es + 15) / 16 * 16;
        if (f->stage_mode != 1 || f->stage_used + bytes > f->stage_cap) return NULL;
        f->stage_off[i] = f->stage_used;
        f->stage_used += bytes;
    }
    LLVMValueRef e = LLVMBuildSub(g->B, co->flat, f->stage_row, "");
    LLVMValueRef byte = LLVMBuildAdd(g->B, cg_i64(g, f->stage_off[i]), LLVMBuildMul(g->B, e, cg_i64(g, (int64_t)es), ""), "");
    return LLVMBuildGEP2(g->B, g->t_i8, f->stage_smem, &byte, 1, "");
}

/* a vector load from global memory at gp, or (stage mode 2) from the stage at sp; in mode 1 the
 * loaded vector is also stored at sp */
static LLVMValueRef staged_load(fe_ctx *f, LLVMTypeRef t, LLVMValueRef sp, LLVMValueRef gp, unsigned align) {
    cg *g = f->g;
    LLVMValueRef ld = LLVMBuildLoad2(g->B, t, sp && f->stage_mode == 2 ? sp : gp, "");
    LLVMSetAlignment(ld, align); /* stage rows start at 16-byte multiples: the same alignment */
    if (sp && f->stage_mode == 1) {
        if (f->npend == FE_MAX_PENDING) fe_stage_flush(f);
        f->pend_v[f->npend] = ld;
        f->pend_p[f->npend] = sp;
        f->pend_a[f->npend++] = align;
    }
    return ld;
}

void fe_stage_flush(fe_ctx *f) {
    for (int i = 0; i < f->npend; i++) LLVMSetAlignment(LLVMBuildStore(f->g->B, f->pend_v[i], f->pend_p[i]), f->pend_a[i]);
    f->npend = 0;
}

static void load_param(fe_ctx *f, const tir_value *v, const fe_crd *co, LLVMValueRef *out) {
    cg *g = f->g;
    const tir_type *t = &v->type;
    tir_dtype dt = t->dtype;
    LLVMValueRef buf = g->buf[v->index];
    LLVMTypeRef st = cg_stype(g, dt);
    LLVMValueRef off = co->flat && co->flat_t && tir_type_same_dims(t, co->flat_t) ? co->flat
                                                                             : cg_offset(g, t, (LLVMValueRef *)co->c);
    if (co->lane < 0 || f->vec == 1) {
        splat(f, out, cg_widen(g, dt, cg_load(g, dt, buf, off)));
        return;
    }
    if (co->lane == t->rank - 1) {
        size_t es = tir_dtype_size(dt);
        bool al = co->aligned && tir_dim_multiple_of(g->ctx, t->dims[t->rank - 1], f->vec);
        LLVMValueRef sp = al ? stage_at(f, v, co, es) : NULL;
        if (dt == TIR_BF16 && al) {
            /* aligned bf16 pairs as 32-bit words: the low lane is w << 16, the high lane
             * w & 0xffff0000, one instruction a lane (exact: bf16 is f32's top half) */
            LLVMTypeRef wt = LLVMVectorType(g->t_i32, (unsigned)f->vec / 2);
            LLVMValueRef ld = staged_load(f, wt, sp, cg_gep(g, st, buf, off), cap_align(es * (size_t)f->vec));
            for (int j = 0; j < f->vec; j += 2) {
                LLVMValueRef w = LLVMBuildExtractElement(g->B, ld, cg_i32(g, j / 2), "");
                out[j] = LLVMBuildBitCast(g->B, LLVMBuildShl(g->B, w, cg_i32(g, 16), ""), g->t_f32, "");
                out[j + 1] = LLVMBuildBitCast(g->B, LLVMBuildAnd(g->B, w, LLVMConstInt(g->t_i32, 0xffff0000u, 0), ""),
                                              g->t_f32, "");
            }
            return;
        }
        LLVMTypeRef vt = LLVMVectorType(st, (unsigned)f->vec);
        LLVMValueRef ld = staged_load(f, vt, sp, cg_gep(g, st, buf, off), cap_align(al ? es * (size_t)f->vec : es));
        for (int j = 0; j < f->vec; j++)
            out[j] = cg_widen(g, dt, LLVMBuildExtractElement(g->B, ld, cg_i32(g, j), ""));
        return;
    }
    LLVMValueRef stride = cg_i64(g, 1);
    for (int k = co->lane + 1; k < t->rank; k++) stride = LLVMBuildMul(g->B, stride, cg_dimv(g, t->dims[k]), "");
    for (int j = 0; j < f->vec; j++) {
        LLVMValueRef o = LLVMBuildAdd(g->B, off, LLVMBuildMul(g->B, stride, cg_i64(g, j), ""), "");
        out[j] = cg_widen(g, dt, cg_load(g, dt, buf, o));
    }
}

/* the coordinates of a movement op's operand: 1; 0 when the lanes must be evaluated one by
 * one; -1 on error (recorded in g) */
static int move_crd(fe_ctx *f, const tir_op *op, const fe_crd *co, fe_crd *xc) {
    cg *g = f->g;
    const tir_type *xt = &op->in[0]->type, *vt = &op->out[0]->type;
    switch (op->code) {
    case TIR_OP_BROADCAST: fe_bcast_crd(g, co, vt, xt, xc); return 1;
    case TIR_OP_TRANSPOSE: {
        const tir_attr_value *p = tir_op_attr(op, "perm");
        if (!p || p->kind != TIR_ATTR_INTS || p->u.ints.n != xt->rank) {
            cg_fail(g, TIR_ERR_TYPE, "fused codegen: bad perm");
            return -1;
        }
        *xc = *co;
        xc->lane = -1;
        xc->flat = NULL;
        for (int j = 0; j < vt->rank; j++) {
            int64_t pj = p->u.ints.v[j];
            if (pj < 0 || pj >= xt->rank) {
                cg_fail(g, TIR_ERR_TYPE, "fused codegen: bad perm");
                return -1;
            }
            xc->c[pj] = co->c[j];
            if (co->lane == j) xc->lane = (int)pj;
        }
        return 1;
    }
    case TIR_OP_SLICE: {
        int ax;
        if (!tir_norm_axis(tir_attr_int(op, "axis", 0), xt->rank, &ax)) {
            cg_fail(g, TIR_ERR_TYPE, "fused codegen: slice axis out of range");
            return -1;
        }
        int64_t step = tir_attr_int(op, "step", 1), start = tir_attr_int(op, "start", 0);
        if (co->lane == ax && step != 1) return 0;
        *xc = *co;
        xc->flat = NULL;
        /* start follows Python: negative counts from the end; clamped to [0, dim] */
        LLVMValueRef dim = cg_dimv(g, xt->dims[ax]), s;
        if (start < 0) s = cg_smax(g, LLVMBuildAdd(g->B, dim, cg_i64(g, start), ""), cg_i64(g, 0));
        else s = cg_smin(g, cg_i64(g, start), dim);
        xc->c[ax] = LLVMBuildAdd(g->B, s, LLVMBuildMul(g->B, co->c[ax], cg_i64(g, step), ""), "");
        if (co->lane == ax && start != 0) xc->aligned = false;
        return 1;
    }
    case TIR_OP_RESHAPE: {
        if (co->lane >= 0 &&
            !(co->lane == vt->rank - 1 && co->aligned && xt->rank > 0 &&
              tir_dim_multiple_of(g->ctx, vt->dims[vt->rank - 1], f->vec) &&
              tir_dim_multiple_of(g->ctx, xt->dims[xt->rank - 1], f->vec)))
            return 0;
        /* the same flat index in both shapes */
        LLVMValueRef lin = co->flat && co->flat_t && tir_type_same_dims(vt, co->flat_t) ? co->flat
                                                                                  : cg_offset(g, vt, (LLVMValueRef *)co->c);
        xc->rank = xt->rank;
        cg_unravel(g, lin, xt, xc->c);
        xc->lane = co->lane >= 0 ? xt->rank - 1 : -1;
        xc->aligned = co->aligned;
        xc->flat = lin;
        xc->flat_t = xt;
        return 1;
    }
    default:
        cg_fail(g, TIR_ERR_UNSUPPORTED, "fused codegen: %s in a region", tir_ops[op->code].name);
        return -1;
    }
}

void fe_eval(fe_ctx *f, const tir_value *v, const fe_crd *co, LLVMValueRef *out) {
    cg *g = f->g;
    fe_memo *hit = memo_find(f, v, co);
    if (hit) {
        memcpy(out, hit->lane, sizeof hit->lane);
        return;
    }
    const tir_op *op = v->def;
    tir_dtype dt = v->type.dtype;
    unsigned fl = op ? tir_ops[op->code].flags : 0;
    if (!op) {
        load_param(f, v, co, out);
    } else if (op->code == TIR_OP_FULL) {
        splat(f, out, cg_const_of(g, dt, tir_attr_float(op, "value", 0.0)));
    } else if (op->code == TIR_OP_IOTA) {
        /* the coordinate along axis, in registers (fuse copies iota in like a constant) */
        int ax = 0;
        if (v->type.rank > 0 && !tir_norm_axis(tir_attr_int(op, "axis", 0), v->type.rank, &ax)) {
            cg_fail(g, TIR_ERR_TYPE, "fused codegen: iota axis out of range");
            splat(f, out, LLVMGetPoison(cg_ctype(g, dt)));
            return;
        }
        LLVMValueRef c = v->type.rank > 0 ? co->c[ax] : cg_i64(g, 0);
        for (int j = 0; j < f->vec; j++) {
            if (j > 0 && co->lane != ax) {
                out[j] = out[0];
                continue;
            }
            LLVMValueRef k = j ? LLVMBuildAdd(g->B, c, cg_i64(g, j), "") : c;
            out[j] = cg_widen(g, dt, cg_cast(g, TIR_I64, k, dt));
        }
    } else if ((fl & TIR_F_REDUCE) && f->red) {
        LLVMValueRef r = v->id >= 0 && f->R && v->id < f->R->nvalues ? f->red[v->id] : NULL;
        if (!r) {
            cg_fail(g, TIR_ERR_INTERNAL, "fused codegen: %s used before its row is reduced", tir_ops[op->code].name);
            r = LLVMGetPoison(cg_ctype(g, dt));
        }
        splat(f, out, r);
    } else if (tir_op_is_elementwise(op->code)) {
        LLVMValueRef in[3][FE_MAXV];
        if (!f->approx_done && f->R) {
            f->approx = fe_approx_set(f->R, NULL, 0);
            f->approx_done = true;
        }
        if (op->nin > 3) {
            cg_fail(g, TIR_ERR_UNSUPPORTED, "fused codegen: %s with %d operands", tir_ops[op->code].name, op->nin);
            splat(f, out, LLVMGetPoison(cg_ctype(g, dt)));
            return;
        }
        for (int k = 0; k < op->nin; k++) {
            fe_crd xc;
            fe_bcast_crd(g, co, &v->type, &op->in[k]->type, &xc);
            fe_eval(f, op->in[k], &xc, in[k]);
        }
        /* lanes that read the same operands compute once */
        for (int j = 0; j < f->vec; j++) {
            bool same = j > 0;
            for (int k = 0; k < op->nin && same; k++) same = in[k][j] == in[k][j - 1];
            if (same) {
                out[j] = out[j - 1];
                continue;
            }
            LLVMValueRef a[3] = {NULL, NULL, NULL};
            for (int k = 0; k < op->nin; k++) a[k] = in[k][j];
            out[j] = cg_member_approx(g, op, a, f->approx && v->id >= 0 && v->id < f->R->nvalues ? f->approx[v->id] : 0);
        }
    } else if ((fl & TIR_F_MOVEMENT) && op->nin == 1 && op->nout == 1) {
        fe_crd xc;
        int how = move_crd(f, op, co, &xc);
        if (how > 0) fe_eval(f, op->in[0], &xc, out);
        else if (how == 0) scalarize(f, v, co, out);
        else {
            splat(f, out, LLVMGetPoison(cg_ctype(g, dt)));
            return;
        }
    } else {
        cg_fail(g, TIR_ERR_UNSUPPORTED, "fused codegen: %s in a region", tir_ops[op->code].name);
        splat(f, out, LLVMGetPoison(cg_ctype(g, dt)));
        return;
    }
    memo_add(f, v, co, out);
}

void fe_prefetch(fe_ctx *f, const tir_value *v, const fe_crd *co) {
    const tir_op *op = v->def;
    if (memo_find(f, v, co)) return;
    if (!op) {
        LLVMValueRef tmp[FE_MAXV];
        fe_eval(f, v, co, tmp);
        return;
    }
    if (!tir_op_is_elementwise(op->code) && op->code != TIR_OP_BROADCAST) return;
    for (int k = 0; k < op->nin; k++) {
        fe_crd xc;
        fe_bcast_crd(f->g, co, &v->type, &op->in[k]->type, &xc);
        fe_prefetch(f, op->in[k], &xc);
    }
}

void fe_store_lanes(fe_ctx *f, tir_dtype dt, LLVMValueRef buf, LLVMValueRef off, LLVMValueRef *lanes, int n) {
    cg *g = f->g;
    if (n == 1) {
        cg_store(g, dt, buf, off, cg_narrow_hw(g, dt, lanes[0]));
        return;
    }
    LLVMTypeRef st = cg_stype(g, dt);
    LLVMValueRef vv;
    if (dt == TIR_BF16 && LLVMTypeOf(lanes[0]) == g->t_f32) {
        /* one vector fptrunc: pairs become cvt.rn.bf16x2.f32, half an instruction a lane */
        LLVMValueRef fv = LLVMGetUndef(LLVMVectorType(g->t_f32, (unsigned)n));
        for (int j = 0; j < n; j++) fv = LLVMBuildInsertElement(g->B, fv, lanes[j], cg_i32(g, j), "");
        vv = LLVMBuildBitCast(g->B, LLVMBuildFPTrunc(g->B, fv, LLVMVectorType(g->t_bf16, (unsigned)n), ""),
                              LLVMVectorType(st, (unsigned)n), "");
    } else {
        vv = LLVMGetUndef(LLVMVectorType(st, (unsigned)n));
        for (int j = 0; j < n; j++)
            vv = LLVMBuildInsertElement(g->B, vv, cg_narrow_hw(g, dt, lanes[j]), cg_i32(g, j), "");
    }
    LLVMValueRef s = LLVMBuildStore(g->B, vv, cg_gep(g, st, buf, off));
    LLVMSetAlignment(s, cap_align(tir_dtype_size(dt) * (size_t)n));
}

/* ---------------------------------------------------------------- a thread's elements */

int64_t fe_thread_space(tir_context *c, const tir_type *t, int *ta, tir_type *it) {
    int64_t D = 1;
    *it = *t;
    if (*ta < 0 || *ta >= t->rank - 1 || !tir_dim_is_const(t->dims[*ta], &D) || D < 1 || D > 4) {
        *ta = -1;
        return 1;
    }
    it->dims[*ta] = tir_dim_const(c, 1);
    return D;
}

void fe_thread_crds(fe_ctx *f, const tir_type *t, const tir_type *it, LLVMValueRef base, int ta, int64_t D, fe_crd *co) {
    cg *g = f->g;
    co[0] = (fe_crd){.rank = t->rank, .lane = f->vec > 1 ? t->rank - 1 : -1, .aligned = true, .flat = base, .flat_t = t};
    cg_unravel(g, base, it, co[0].c);
    for (int k = 0; ta >= 0 && k < D; k++) {
        co[k] = co[0];
        co[k].c[ta] = cg_i64(g, k);
        co[k].flat = cg_offset(g, t, co[k].c);
    }
}

void fe_write_results(fe_ctx *f, const tir_func *R, int r0, int nr, const fe_crd *co, int n, LLVMValueRef *bufs, bool prefetch) {
    LLVMValueRef (*lanes)[FE_MAXV] = malloc((size_t)(nr * n > 0 ? nr * n : 1) * sizeof *lanes);
    if (!lanes) {
        cg_fail(f->g, TIR_ERR_OOM, "out of memory");
        return;
    }
    for (int k = 0; prefetch && k < n; k++)
        for (int r = 0; r < nr; r++) fe_prefetch(f, R->results[r0 + r], &co[k]);
    for (int k = 0; k < n; k++)
        for (int r = 0; r < nr; r++) fe_eval(f, R->results[r0 + r], &co[k], lanes[k * nr + r]);
    for (int k = 0; k < n; k++)
        for (int r = 0; r < nr; r++)
            fe_store_lanes(f, R->results[r0 + r]->type.dtype, bufs[r], co[k].flat, lanes[k * nr + r], f->vec);
    free(lanes);
}

/* ---------------------------------------------------------------- approximation (fused_eval.h) */

static bool is16f(tir_dtype t) { return t == TIR_BF16 || t == TIR_F16; }

/* the values whose every use is fine (see fused_eval.h) into ok (1 or 0); sums: float sums and
 * means count as fine uses */
static void approx_pass(const tir_func *R, int n, unsigned char *ok, unsigned char *used, bool sums,
                        const tir_op *const *ignore, int nignore) {
    for (int i = 0; i < n; i++) ok[i] = 1, used[i] = 0;
    for (int r = 0; r < R->nres; r++)
        if (R->results[r]->id >= 0 && R->results[r]->id < n) ok[R->results[r]->id] = 0;
    /* consumers come after their producers: walking backwards, a use's verdict is final when
     * its producer is reached */
    for (int i = R->nops - 1; i >= 0; i--) {
        const tir_op *u = R->ops[i];
        bool skip = false;
        for (int j = 0; j < nignore; j++) skip |= ignore[j] == u;
        if (skip) continue;
        bool out_ok = u->nout == 1 && u->out[0]->id >= 0 && u->out[0]->id < n && ok[u->out[0]->id] &&
                      used[u->out[0]->id];
        for (int k = 0; k < u->nin; k++) {
            const tir_value *v = u->in[k];
            if (v->id < 0 || v->id >= n || v->func != R) continue;
            bool fine;
            switch (u->code) {
            case TIR_OP_CAST: fine = is16f(u->out[0]->type.dtype); break;
            case TIR_OP_SUM:
            case TIR_OP_MEAN: fine = sums && tir_dtype_is_float(u->out[0]->type.dtype); break;
            case TIR_OP_NEG:
            case TIR_OP_MUL:
            case TIR_OP_DIV:
            case TIR_OP_BROADCAST:
            case TIR_OP_RESHAPE:
            case TIR_OP_TRANSPOSE:
            case TIR_OP_SLICE: fine = out_ok; break;
            case TIR_OP_WHERE: fine = k > 0 && out_ok; break;
            default: fine = false;
            }
            if (fine) used[v->id] = 1;
            else ok[v->id] = 0;
        }
    }
    for (int i = 0; i < n; i++) ok[i] = ok[i] && used[i];
    /* only f32 values computed in the region */
    for (int i = 0; i < R->nops; i++)
        for (int k = 0; k < R->ops[i]->nout; k++) {
            const tir_value *v = R->ops[i]->out[k];
            if (v->id >= 0 && v->id < n && v->type.dtype != TIR_F32) ok[v->id] = 0;
        }
    for (int i = 0; i < R->nparams; i++)
        if (R->params[i]->id >= 0 && R->params[i]->id < n) ok[R->params[i]->id] = 0;
}

unsigned char *fe_approx_set(const tir_func *R, const tir_op *const *ignore, int nignore) {
    int n = R->nvalues > 0 ? R->nvalues : 1;
    unsigned char *ok = malloc((size_t)n), *only16 = malloc((size_t)n), *used = malloc((size_t)n);
    if (!ok || !only16 || !used) {
        free(ok);
        free(only16);
        free(used);
        return NULL;
    }
    approx_pass(R, n, ok, used, true, ignore, nignore);
    approx_pass(R, n, only16, used, false, ignore, nignore);
    for (int i = 0; i < n; i++) ok[i] = ok[i] ? (only16[i] ? FE_APPROX_16 : FE_APPROX) : 0;
    free(only16);
    free(used);
    return ok;
}
