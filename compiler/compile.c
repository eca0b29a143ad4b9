/* compile.c: the compile driver and the executor. tir_compile runs the IR pipeline
 * (compiler/pipeline.c) and lowers every op of the function to a kernel (codegen/), keeping its
 * PTX; nothing here touches the GPU, so `tirc ptx` works on any machine. A run binds the
 * symbols from the arguments' shapes, loads the kernels on first use, gives every value a device
 * buffer from the caching allocator for as long as it is live, and launches the kernels in
 * program order on one stream.
 *
 * A program copies what it needs out of the module (value types with their context-interned
 * dims, the op list as value ids), so it lives on after the module is freed, though not after the
 * context. */
#include <limits.h>
#include <stdio.h>

#include "compile.h"
#include "device.h"
#ifdef TIR_WITH_LLVM
#include "fused.h"
#endif
#include "pipeline.h"

typedef struct step {
    tir_opcode code;
    int nin, nout;
    int *in, *out;        /* value ids */
    tir_kernel k;         /* from codegen; k.ptx NULL for an alias */
    tir_rt_kernel rk;     /* loaded; rk.func NULL until then */
    float ms;
} step;

struct tir_program {
    tir_context *ctx;
    char *func;
    int nvalues;
    tir_type *types;      /* per value id */
    int *last_use;        /* per value: last step reading it; -1 none; INT_MAX a result */
    int nparams, nres;
    int *params, *res;    /* value ids */
    char **param_names;
    int nsteps;
    step *steps;
    tir_bindings fixed;   /* tir_program_set_dim */
    bool poison, timing, loaded, reduces;
    tir_rt *rt;           /* where the kernels are loaded */
    tir_rt_event *events; /* 2 per step when timing */
};

static tir_status err(tir_diag *d, tir_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static tir_status err(tir_diag *d, tir_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    tir_diag_vset(d, s, NULL, (tir_loc){0, 0}, fmt, ap);
    va_end(ap);
    return s;
}

static tir_status oom(tir_diag *d) { return err(d, TIR_ERR_OOM, "out of host memory"); }

void tir_options_init(tir_options *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->arch = "sm_90a";
    o->opt_level = 2;
    o->verify = true;
}

static bool env_on(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/* codegen/ is only built with LLVM; without it tir_compile reports why and nothing else changes */
static tir_status lower_op(tir_context *ctx, const tir_op *op, int id,
                          const tir_codegen_options *cg, tir_kernel *k, tir_diag *d) {
#ifdef TIR_WITH_LLVM
    if (op->code == TIR_OP_FUSED) return tir_codegen_fused(ctx, op, id, cg, k, d);
    return tir_codegen_op(ctx, op, id, cg, k, d);
#else
    return err(d, TIR_ERR_UNSUPPORTED, "tir was built without LLVM (TIR_WITH_LLVM=OFF): no codegen");
#endif
}

static bool arch_ok(const char *arch) {
#ifdef TIR_WITH_LLVM
    return tir_codegen_arch_ok(arch);
#else
    return arch != NULL;
#endif
}

static void release_kernel(tir_kernel *k) {
#ifdef TIR_WITH_LLVM
    tir_kernel_release(k);
#else
    (void)k;
#endif
}

/* ---------------------------------------------------------------- freeing */

void tir_program_free(tir_program *p) {
    if (!p) return;
    for (int i = 0; i < p->nsteps; i++) {
        step *st = &p->steps[i];
        if (st->rk.module) tir_rt_unload(p->rt, &st->rk);
        release_kernel(&st->k);
        free(st->in);
        free(st->out);
    }
    if (p->events) {
        for (int i = 0; i < 2 * p->nsteps; i++) tir_rt_event_free(p->rt, p->events[i]);
        free(p->events);
    }
    for (int i = 0; i < p->nparams; i++) free(p->param_names ? p->param_names[i] : NULL);
    free(p->param_names);
    free(p->steps);
    free(p->types);
    free(p->last_use);
    free(p->params);
    free(p->res);
    free(p->func);
    free(p);
}

/* ---------------------------------------------------------------- compiling */

/* TIR_DUMP=ptx (or all): each kernel's PTX to $TIR_DUMP_DIR/<name>.ptx, or to stderr */
static bool dump_ptx_wanted(void) {
    const char *want = getenv("TIR_DUMP");
    if (!want) return false;
    for (const char *p = want; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if ((len == 3 && strncmp(p, "ptx", 3) == 0) || (len == 3 && strncmp(p, "all", 3) == 0))
            return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

static void dump_ptx(const tir_program *p) {
    const char *dir = getenv("TIR_DUMP_DIR");
    for (int i = 0; i < p->nsteps; i++) {
        const tir_kernel *k = &p->steps[i].k;
        if (!k->ptx) continue;
        if (dir && *dir) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s.ptx", dir, k->name);
            FILE *f = fopen(path, "w");
            if (!f) {
                fprintf(stderr, "tir: TIR_DUMP: cannot write %s\n", path);
                continue;
            }
            fputs(k->ptx, f);
            fclose(f);
        } else {
            fprintf(stderr, "// ---- kernel %s (%s)\n%s", k->name, tir_ops[p->steps[i].code].name,
                    k->ptx);
        }
    }
}

/* One step to be: an op of the function, or, when its fused region has no lowering of its own
 * yet, a member of that region run as a kernel of its own. A member's values get program ids:
 * the region's parameters are the fused op's operands, its yielded values the fused op's
 * results, and its other values (intermediate buffers) ids from `base` on. */
typedef struct planned {
    const tir_op *op;
    const tir_op *region_op; /* the fused op op is a member of, or NULL */
    int base;
} planned;

static int value_id(const planned *e, const tir_value *v) {
    const tir_op *rop = e->region_op;
    if (!rop) return v->id;
    const tir_func *R = tir_op_region(rop);
    if (!v->def) return rop->in[v->index]->id;
    for (int j = 0; j < R->nres; j++)
        if (R->results[j] == v) return rop->out[j]->id;
    return e->base + v->id;
}

static int *dup_ids(const planned *e, int n, tir_value *const *vals) {
    int *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
    if (ids)
        for (int i = 0; i < n; i++) ids[i] = value_id(e, vals[i]);
    return ids;
}

static bool op_reduces(const tir_op *op) {
    const tir_func *R = tir_op_region(op);
    if (R) {
        for (int i = 0; i < R->nops; i++)
            if (op_reduces(R->ops[i])) return true;
        return false;
    }
    return (tir_ops[op->code].flags & (TIR_F_REDUCE | TIR_F_LINALG)) != 0;
}

/* the program's copy of the function: types, value ids, liveness; nv values in all */
static tir_status build(tir_program *p, const tir_func *f, const planned *ops, int nops, int nv,
                        tir_diag *d) {
    static const planned top = {NULL, NULL, 0};
    p->nvalues = nv;
    p->types = calloc((size_t)(nv ? nv : 1), sizeof *p->types);
    p->last_use = malloc((size_t)(nv ? nv : 1) * sizeof *p->last_use);
    p->nparams = f->nparams;
    p->nres = f->nres;
    p->params = dup_ids(&top, f->nparams, f->params);
    p->res = dup_ids(&top, f->nres, f->results);
    p->param_names = calloc((size_t)(f->nparams ? f->nparams : 1), sizeof *p->param_names);
    p->steps = calloc((size_t)(nops ? nops : 1), sizeof *p->steps);
    if (!p->types || !p->last_use || !p->params || !p->res || !p->param_names || !p->steps)
        return oom(d);
    for (int v = 0; v < nv; v++) p->last_use[v] = -1;
    for (int i = 0; i < f->nparams; i++) {
        p->types[f->params[i]->id] = f->params[i]->type;
        const char *nm = f->params[i]->name;
        char buf[32];
        if (!nm) {
            snprintf(buf, sizeof buf, "%d", i);
            nm = buf;
        }
        if (!(p->param_names[i] = strdup(nm))) return oom(d);
    }
    for (int i = 0; i < nops; i++) {
        const tir_op *op = ops[i].op;
        step *st = &p->steps[i];
        st->code = op->code;
        st->nin = op->nin;
        st->nout = op->nout;
        st->k.alias_of = st->k.init_from = -1;
        if (!(st->in = dup_ids(&ops[i], op->nin, op->in)) ||
            !(st->out = dup_ids(&ops[i], op->nout, op->out)))
            return oom(d);
        p->nsteps = i + 1; /* from here on, tir_program_free releases this step */
        for (int j = 0; j < op->nin; j++) p->last_use[st->in[j]] = i;
        for (int j = 0; j < op->nout; j++) {
            p->types[st->out[j]] = op->out[j]->type;
            p->last_use[st->out[j]] = i; /* a value nobody reads dies where it is made */
        }
        if (op_reduces(op)) p->reduces = true;
    }
    for (int i = 0; i < f->nres; i++) p->last_use[f->results[i]->id] = INT_MAX;
    return TIR_OK;
}

/* A region whose members run one by one needs every yielded value made by a member, once. */
static bool region_splits(const tir_op *fop) {
    const tir_func *R = tir_op_region(fop);
    for (int j = 0; j < R->nres; j++) {
        if (!R->results[j]->def) return false;
        for (int k = 0; k < j; k++)
            if (R->results[k] == R->results[j]) return false;
    }
    return true;
}

/* a kernel's buffer params name operands or results that exist */
static tir_status check_kernel(const step *st, tir_diag *d) {
    const tir_kernel *k = &st->k;
    if (k->alias_of >= 0) {
        if (k->alias_of >= st->nin || st->nout != 1)
            return err(d, TIR_ERR_INTERNAL, "kernel %s aliases operand %d of a %d-operand op",
                       k->name, k->alias_of, st->nin);
        return TIR_OK;
    }
    if (!k->ptx) return err(d, TIR_ERR_INTERNAL, "kernel %s has no PTX", k->name);
    for (int j = 0; j < k->nparams; j++)
        if (k->params[j].kind == TIR_KP_BUFFER &&
            (k->params[j].index < 0 || k->params[j].index >= st->nin + st->nout))
            return err(d, TIR_ERR_INTERNAL, "kernel %s: parameter %d names buffer %d of %d",
                       k->name, j, k->params[j].index, st->nin + st->nout);
        else if (k->params[j].kind == TIR_KP_DIM && !k->params[j].dim)
            return err(d, TIR_ERR_INTERNAL, "kernel %s: parameter %d has no dim", k->name, j);
    if (k->init_from >= st->nin)
        return err(d, TIR_ERR_INTERNAL, "kernel %s: init_from %d out of range", k->name,
                   k->init_from);
    for (int a = 0; a < 3; a++)
        if (k->block[a] < 1)
            return err(d, TIR_ERR_INTERNAL, "kernel %s: block[%d] = %d", k->name, a, k->block[a]);
    return TIR_OK;
}

tir_status tir_compile(tir_module *m, const char *func, const tir_options *opts,
                       tir_program **out, tir_diag *d) {
    if (!out) return err(d, TIR_ERR_INVALID, "tir_compile: no out pointer");
    *out = NULL;
    if (!m || !func) return err(d, TIR_ERR_INVALID, "tir_compile: no module or function name");
    tir_options dflt;
    tir_options_init(&dflt);
    if (!opts) opts = &dflt;
    const char *arch = opts->arch ? opts->arch : "sm_90a";
    if (!tir_module_find(m, func)) return err(d, TIR_ERR_INVALID, "no function @%s", func);
    if (!arch_ok(arch)) return err(d, TIR_ERR_INVALID, "unknown GPU arch '%s'", arch);
    /* Fused regions are one kernel each; the rest of the ops one kernel (or alias) each. */
    tir_status s = tir_pipeline_run(m, TIR_COMPILE_LAST_STAGE, NULL, NULL, d);
    if (s != TIR_OK) return s;
    if (opts->verify && (s = tir_verify(m, d)) != TIR_OK) return s;
    const tir_func *f = tir_module_find(m, func);
    if (!f) return err(d, TIR_ERR_INTERNAL, "function @%s vanished in the pipeline", func);
    if (f->grad_of && f->nops == 0 && f->nres == 0)
        return tir_diag_set(d, TIR_ERR_UNSUPPORTED, m, f->loc,
                            "@%s = value_and_grad(...) has no body: the pipeline has no grad stage",
                            func);

    tir_program *p = calloc(1, sizeof *p);
    if (!p) return oom(d);
    p->ctx = m->ctx;
    p->poison = opts->poison || env_on("TIR_DEBUG");
#ifdef TIR_DEBUG
    p->poison = true;
#endif
    if (!(p->func = strdup(func))) {
        tir_program_free(p);
        return oom(d);
    }
    /* the steps: every op, or the members of a region with no lowering of its own */
    int nv = f->nvalues, nplan = 0, cap = f->nops + 1;
    for (int i = 0; i < f->nparams; i++) nv = f->params[i]->id >= nv ? f->params[i]->id + 1 : nv;
    for (int i = 0; i < f->nops; i++)
        for (int j = 0; j < f->ops[i]->nout; j++)
            if (f->ops[i]->out[j]->id >= nv) nv = f->ops[i]->out[j]->id + 1;
    planned *plan = malloc((size_t)cap * sizeof *plan);
    tir_kernel *ks = malloc((size_t)cap * sizeof *ks);
    tir_codegen_options cg = {arch, opts->opt_level};
    if (!plan || !ks) s = oom(d);
    for (int i = 0; i < f->nops && s == TIR_OK; i++) {
        const tir_op *op = f->ops[i];
        if (op->code == TIR_OP_CALL || (tir_ops[op->code].flags & TIR_F_COMPOSITE)) {
            s = tir_diag_set(d, TIR_ERR_UNSUPPORTED, m, op->loc,
                             "%s reached codegen: the pipeline did not %s it", tir_ops[op->code].name,
                             op->code == TIR_OP_CALL ? "inline" : "decompose");
            break;
        }
        const tir_func *R = tir_op_region(op);
        int need = nplan + 1 + (R ? R->nops : 0);
        if (need > cap) {
            cap = 2 * need;
            planned *np = realloc(plan, (size_t)cap * sizeof *plan);
            if (np) plan = np;
            tir_kernel *nk = realloc(ks, (size_t)cap * sizeof *ks);
            if (nk) ks = nk;
            if (!np || !nk) {
                s = oom(d);
                break;
            }
        }
        tir_kernel k;
        memset(&k, 0, sizeof k);
        k.alias_of = k.init_from = -1;
        tir_diag d2;
        s = lower_op(m->ctx, op, nplan, &cg, &k, R ? &d2 : d);
        if (s == TIR_ERR_UNSUPPORTED && R && region_splits(op)) {
            /* no fused lowering yet: its members run one by one through intermediate buffers */
            release_kernel(&k);
            s = TIR_OK;
            for (int j = 0; j < R->nops && s == TIR_OK; j++) {
                const tir_op *mop = R->ops[j];
                memset(&k, 0, sizeof k);
                k.alias_of = k.init_from = -1;
                s = lower_op(m->ctx, mop, nplan, &cg, &k, d);
                plan[nplan] = (planned){mop, op, nv};
                ks[nplan++] = k;
                if (s != TIR_OK) op = mop;
            }
            nv += R->nvalues;
        } else {
            if (s != TIR_OK && R && d) *d = d2;
            plan[nplan] = (planned){op, NULL, 0};
            ks[nplan++] = k;
        }
        if (s != TIR_OK && d && d->line == 0 && op->loc.line > 0) { /* point at the op in the source */
            char msg[sizeof d->msg];
            snprintf(msg, sizeof msg, "%s", d->msg);
            tir_diag_set(d, s, m, op->loc, "%s: %s", tir_ops[op->code].name, msg);
        }
    }
    if (s == TIR_OK) s = build(p, f, plan, nplan, nv, d);
    /* the kernels go to the steps (released with the program whatever happened) */
    for (int i = 0; i < nplan; i++) {
        if (i < p->nsteps) p->steps[i].k = ks[i];
        else release_kernel(&ks[i]);
    }
    for (int i = 0; i < p->nsteps && s == TIR_OK; i++) s = check_kernel(&p->steps[i], d);
    free(plan);
    free(ks);
    if (s != TIR_OK) {
        tir_program_free(p);
        return s;
    }
    if (dump_ptx_wanted()) dump_ptx(p);
    *out = p;
    return TIR_OK;
}

/* ---------------------------------------------------------------- accessors */

int tir_program_num_kernels(const tir_program *p) { return p ? p->nsteps : 0; }

static const step *step_at(const tir_program *p, int i) {
    return p && i >= 0 && i < p->nsteps ? &p->steps[i] : NULL;
}
const char *tir_program_kernel_name(const tir_program *p, int i) {
    const step *st = step_at(p, i);
    return st ? st->k.name : NULL;
}
const char *tir_program_kernel_op(const tir_program *p, int i) {
    const step *st = step_at(p, i);
    return st ? tir_ops[st->code].name : NULL;
}
const char *tir_program_kernel_ptx(const tir_program *p, int i) {
    const step *st = step_at(p, i);
    return st ? st->k.ptx : NULL;
}
void tir_program_kernel_info(const tir_program *p, int i, tir_kernel_info *o) {
    memset(o, 0, sizeof *o);
    o->last_ms = -1;
    const step *st = step_at(p, i);
    if (!st) return;
    o->name = st->k.name;
    o->op = tir_ops[st->code].name;
    o->ptx = st->k.ptx;
    o->k = &st->k;
    o->loaded = st->rk.func != NULL;
    o->regs = st->rk.regs;
    o->local_bytes = st->rk.local_bytes;
    o->static_shared = st->rk.static_shared;
    o->max_threads = st->rk.max_threads;
    if (p->timing && p->events && st->k.ptx) o->last_ms = st->ms;
}
const char *tir_program_func(const tir_program *p) { return p->func; }
int tir_program_num_params(const tir_program *p) { return p->nparams; }
int tir_program_num_results(const tir_program *p) { return p->nres; }
const tir_type *tir_program_result_type(const tir_program *p, int i) {
    return i >= 0 && i < p->nres ? &p->types[p->res[i]] : NULL;
}
bool tir_program_has_reduction(const tir_program *p) { return p->reduces; }
void tir_program_set_timing(tir_program *p, bool on) { p->timing = on; }

tir_status tir_program_set_dim(tir_program *p, const char *sym, int64_t value, tir_diag *d) {
    if (!p || !sym) return err(d, TIR_ERR_INVALID, "tir_program_set_dim: NULL argument");
    if (value < 0) return err(d, TIR_ERR_INVALID, "%s = %lld: dims are >= 0", sym, (long long)value);
    int64_t old;
    if (tir_bindings_get(&p->fixed, sym, &old)) {
        for (int i = 0; i < p->fixed.n; i++)
            if (strcmp(p->fixed.names[i], sym) == 0) p->fixed.values[i] = value;
        return TIR_OK;
    }
    /* the names must outlive the call: intern them in the context's arena */
    const char *name = tir_arena_strdup(p->ctx->arena, sym);
    if (!name) return oom(d);
    tir_status s = tir_bindings_set(&p->fixed, name, value);
    if (s != TIR_OK) return err(d, s, "too many symbols bound (at most 64)");
    return TIR_OK;
}

/* ---------------------------------------------------------------- loading */

tir_status tir_program_load(tir_program *p, tir_diag *d) {
    if (!p) return err(d, TIR_ERR_INVALID, "tir_program_load: NULL program");
    if (p->loaded) return TIR_OK;
    tir_rt *rt = NULL;
    tir_status s = tir_rt_get(p->ctx, &rt, d);
    if (s != TIR_OK) return s;
    p->rt = rt;
    for (int i = 0; i < p->nsteps; i++) {
        step *st = &p->steps[i];
        if (!st->k.ptx || st->k.alias_of >= 0 || st->rk.func) continue;
        s = tir_rt_load(rt, st->k.ptx, st->k.name, st->k.shared_bytes, &st->rk, d);
        if (s != TIR_OK) {
            for (int j = 0; j < i; j++) tir_rt_unload(rt, &p->steps[j].rk);
            return s;
        }
        int threads = st->k.block[0] * st->k.block[1] * st->k.block[2];
        if (threads > st->rk.max_threads) {
            for (int j = 0; j <= i; j++) tir_rt_unload(rt, &p->steps[j].rk);
            return err(d, TIR_ERR_UNSUPPORTED,
                       "kernel %s launches %d threads per block; with %d registers it can have %d",
                       st->k.name, threads, st->rk.regs, st->rk.max_threads);
        }
    }
    p->loaded = true;
    return TIR_OK;
}

/* ---------------------------------------------------------------- running */

typedef struct buf {
    tir_dptr ptr;
    size_t size; /* as allocated */
    int refs;    /* live values in it */
    bool owned;  /* ours to free (not a caller's device tensor, not handed out) */
} buf;

typedef struct run {
    tir_program *p;
    tir_rt *rt;
    tir_rt_stream s;
    tir_bindings b;
    int *buf_of;            /* per value: index in bufs, -1 none */
    bool *dead;
    buf *bufs;
    int nbufs;
    int64_t (*shape)[TIR_MAX_RANK]; /* per value, under b */
    size_t *nbytes;
    tir_diag *d;
} run;

/* the shape of argument i, however it is held */
typedef struct argshape {
    tir_dtype dtype;
    int rank;
    int64_t dims[TIR_MAX_RANK];
} argshape;

/* Binds the symbols from the arguments' shapes, to a fixed point (tir_bind_params, shared with
 * the interpreter), so the order of the parameters never matters. */
static tir_status bind_args(const tir_program *p, int nargs, const argshape *a, tir_bindings *b,
                            tir_diag *d) {
    if (nargs != p->nparams)
        return err(d, TIR_ERR_INVALID, "@%s takes %d arguments, got %d", p->func, p->nparams, nargs);
    *b = p->fixed;
    for (int i = 0; i < p->nparams; i++) {
        const tir_type *t = &p->types[p->params[i]];
        if (a[i].dtype != t->dtype || a[i].rank != t->rank) {
            char want[128];
            tir_type_print(t, want, sizeof want);
            return err(d, TIR_ERR_INVALID, "argument %d (%%%s) should be %s, got %s with rank %d",
                       i, p->param_names[i], want, tir_dtype_name(a[i].dtype), a[i].rank);
        }
    }
    size_t n = (size_t)(p->nparams > 0 ? p->nparams : 1);
    const tir_type **types = malloc(n * sizeof *types);
    const int64_t **sizes = malloc(n * sizeof *sizes);
    if (!types || !sizes) {
        free(types);
        free(sizes);
        return oom(d);
    }
    for (int i = 0; i < p->nparams; i++) {
        types[i] = &p->types[p->params[i]];
        sizes[i] = a[i].dims;
    }
    char e[256] = "";
    int bi = -1, bj = -1;
    tir_status s = tir_bind_params(p->nparams, (const tir_type *const *)types,
                                   (const int64_t *const *)sizes, b, &bi, &bj, e, sizeof e);
    free(types);
    free(sizes);
    if (s == TIR_ERR_OOM) return oom(d);
    if (s != TIR_OK)
        return err(d, TIR_ERR_INVALID, "argument %d (%%%s), dim %d: %s", bi,
                   bi >= 0 ? p->param_names[bi] : "?", bj, e[0] ? e : "size does not fit");
    return TIR_OK;
}

static void release_value(run *r, int v) {
    if (r->dead[v]) return;
    r->dead[v] = true;
    int bi = r->buf_of[v];
    if (bi < 0) return;
    buf *bf = &r->bufs[bi];
    if (--bf->refs == 0 && bf->owned) {
        tir_rt_free(r->rt, bf->ptr, bf->size);
        bf->owned = false;
    }
}

static void run_free(run *r) {
    if (r->bufs && r->rt)
        for (int i = 0; i < r->nbufs; i++)
            if (r->bufs[i].owned) tir_rt_free(r->rt, r->bufs[i].ptr, r->bufs[i].size);
    free(r->buf_of);
    free(r->dead);
    free(r->bufs);
    free(r->shape);
    free(r->nbytes);
}

static tir_status new_buf(run *r, int v, tir_dptr ptr, size_t size, bool owned) {
    r->bufs[r->nbufs] = (buf){ptr, size, 1, owned};
    r->buf_of[v] = r->nbufs++;
    return TIR_OK;
}

static tir_status alloc_value(run *r, int v) {
    tir_dptr ptr = 0;
    tir_status s = tir_rt_alloc(r->rt, r->nbytes[v], &ptr, r->d);
    if (s != TIR_OK) return s;
    return new_buf(r, v, ptr, r->nbytes[v], true);
}

/* Sets up a run: device, bindings, every value's shape. */
static tir_status run_init(run *r, tir_program *p, int nargs, const argshape *a, tir_diag *d) {
    memset(r, 0, sizeof *r);
    r->p = p;
    r->d = d;
    tir_status s = bind_args(p, nargs, a, &r->b, d);
    if (s != TIR_OK) return s;
    if ((s = tir_program_load(p, d)) != TIR_OK) return s;
    r->rt = p->rt;
    size_t nv = (size_t)(p->nvalues ? p->nvalues : 1);
    r->buf_of = malloc(nv * sizeof *r->buf_of);
    r->dead = calloc(nv, sizeof *r->dead);
    r->bufs = calloc(nv, sizeof *r->bufs);
    r->shape = calloc(nv, sizeof *r->shape);
    r->nbytes = calloc(nv, sizeof *r->nbytes);
    if (!r->buf_of || !r->dead || !r->bufs || !r->shape || !r->nbytes) return oom(d);
    for (int v = 0; v < p->nvalues; v++) r->buf_of[v] = -1;
    /* shapes of the values that exist: params and op results */
    for (int i = 0; i < p->nsteps; i++)
        for (int j = 0; j < p->steps[i].nout; j++) {
            int v = p->steps[i].out[j];
            const tir_type *t = &p->types[v];
            if ((s = tir_type_eval(t, &r->b, r->shape[v])) != TIR_OK) {
                char ty[128];
                tir_type_print(t, ty, sizeof ty);
                return err(d, TIR_ERR_INVALID,
                           "cannot size %s, a result of %s: a symbol is bound by no argument "
                           "(tir_program_set_dim / --dim binds it)",
                           ty, tir_ops[p->steps[i].code].name);
            }
            if (!tir_shape_nbytes(t->dtype, t->rank, r->shape[v], &r->nbytes[v]))
                return err(d, TIR_ERR_INVALID, "a value of @%s is too large", p->func);
        }
    for (int i = 0; i < p->nparams; i++) {
        int v = p->params[i];
        memcpy(r->shape[v], a[i].dims, sizeof a[i].dims);
        tir_shape_nbytes(a[i].dtype, a[i].rank, a[i].dims, &r->nbytes[v]);
    }
    return TIR_OK;
}

static tir_status launch(run *r, int i) {
    tir_program *p = r->p;
    step *st = &p->steps[i];
    tir_kernel *k = &st->k;
    tir_diag *d = r->d;
    tir_status s;
    if (k->alias_of >= 0) {
        int src = st->in[k->alias_of], dst = st->out[0];
        r->buf_of[dst] = r->buf_of[src];
        if (r->buf_of[dst] >= 0) r->bufs[r->buf_of[dst]].refs++;
        return TIR_OK;
    }
    for (int j = 0; j < st->nout; j++) {
        int v = st->out[j];
        if ((s = alloc_value(r, v)) != TIR_OK) return s;
        bool init = j == 0 && (k->init_from >= 0 || k->init_zero);
        if (p->poison && !init &&
            (s = tir_rt_memset8(r->rt, r->bufs[r->buf_of[v]].ptr, 0xFF, r->nbytes[v], r->s, d)) !=
                TIR_OK)
            return s;
    }
    tir_dptr out0 = r->bufs[r->buf_of[st->out[0]]].ptr;
    if (k->init_from >= 0) {
        int src = st->in[k->init_from];
        size_t n = r->nbytes[st->out[0]];
        if (r->nbytes[src] != n)
            return err(d, TIR_ERR_INTERNAL, "kernel %s: init_from operand has %zu bytes, result %zu",
                       k->name, r->nbytes[src], n);
        if ((s = tir_rt_dtod(r->rt, out0, r->bufs[r->buf_of[src]].ptr, n, r->s, d)) != TIR_OK)
            return s;
    } else if (k->init_zero) {
        if ((s = tir_rt_memset8(r->rt, out0, 0, r->nbytes[st->out[0]], r->s, d)) != TIR_OK)
            return s;
    }

    enum { MAXP = 64 };
    union {
        tir_dptr ptr;
        int64_t i;
    } vals[MAXP];
    void *pv[MAXP];
    if (k->nparams > MAXP) return err(d, TIR_ERR_UNSUPPORTED, "kernel %s: too many params", k->name);
    for (int j = 0; j < k->nparams; j++) {
        const tir_kparam *kp = &k->params[j];
        if (kp->kind == TIR_KP_BUFFER) {
            int v = kp->index < st->nin ? st->in[kp->index] : st->out[kp->index - st->nin];
            if (r->buf_of[v] < 0)
                return err(d, TIR_ERR_INTERNAL, "kernel %s: operand %d has no buffer", k->name,
                           kp->index);
            vals[j].ptr = r->bufs[r->buf_of[v]].ptr;
        } else if ((s = tir_dim_eval(kp->dim, &r->b, &vals[j].i)) != TIR_OK) {
            return err(d, TIR_ERR_INVALID, "kernel %s: parameter %d: a symbol is unbound", k->name,
                       j);
        }
        pv[j] = &vals[j];
    }
    unsigned grid[3];
    static const int64_t limit[3] = {INT32_MAX, 65535, 65535};
    for (int a = 0; a < 3; a++) {
        int64_t g = 1;
        if (k->grid[a] && tir_dim_eval(k->grid[a], &r->b, &g) != TIR_OK)
            return err(d, TIR_ERR_INVALID, "kernel %s: grid[%d]: a symbol is unbound", k->name, a);
        if (g < 1) g = 1;
        if (g > limit[a])
            return err(d, TIR_ERR_UNSUPPORTED, "kernel %s: grid[%d] = %lld exceeds the device's %lld",
                       k->name, a, (long long)g, (long long)limit[a]);
        grid[a] = (unsigned)g;
    }
    if (p->timing && (s = tir_rt_event_record(r->rt, p->events[2 * i], r->s, d)) != TIR_OK) return s;
    s = tir_rt_launch(r->rt, &st->rk, k->name, grid, k->block, k->shared_bytes, pv, r->s, d);
    if (s != TIR_OK) return s;
    if (p->timing && (s = tir_rt_event_record(r->rt, p->events[2 * i + 1], r->s, d)) != TIR_OK)
        return s;
    return TIR_OK;
}

/* every step in order, releasing each value after its last use */
static tir_status run_steps(run *r) {
    tir_program *p = r->p;
    tir_status s;
    if (p->timing && !p->events) {
        p->events = calloc((size_t)(2 * p->nsteps + 1), sizeof *p->events);
        if (!p->events) return oom(r->d);
        for (int i = 0; i < 2 * p->nsteps; i++)
            if (p->steps[i / 2].k.ptx && p->steps[i / 2].k.alias_of < 0 &&
                (s = tir_rt_event_new(r->rt, &p->events[i], r->d)) != TIR_OK)
                return s;
    }
    for (int i = 0; i < p->nparams; i++) /* an unread parameter */
        if (p->last_use[p->params[i]] < 0) release_value(r, p->params[i]);
    for (int i = 0; i < p->nsteps; i++) {
        step *st = &p->steps[i];
        if ((s = launch(r, i)) != TIR_OK) return s;
        for (int j = 0; j < st->nin; j++)
            if (p->last_use[st->in[j]] == i) release_value(r, st->in[j]);
        for (int j = 0; j < st->nout; j++)
            if (p->last_use[st->out[j]] == i) release_value(r, st->out[j]);
    }
    if ((s = tir_rt_sync(r->rt, r->s, r->d)) != TIR_OK) return s;
    if (p->timing)
        for (int i = 0; i < p->nsteps; i++) {
            step *st = &p->steps[i];
            st->ms = 0;
            if (p->events[2 * i] &&
                (s = tir_rt_event_ms(r->rt, p->events[2 * i], p->events[2 * i + 1], &st->ms,
                                     r->d)) != TIR_OK)
                return s;
        }
    return TIR_OK;
}

tir_status tir_program_run(tir_program *p, int nargs, tir_tensor *const *args, int nres,
                           tir_tensor **results, tir_diag *d) {
    if (!p || (nargs && !args) || (nres && !results))
        return err(d, TIR_ERR_INVALID, "tir_program_run: NULL argument");
    for (int i = 0; i < nres; i++) results[i] = NULL;
    if (nres != p->nres)
        return err(d, TIR_ERR_INVALID, "@%s returns %d results, %d asked for", p->func, p->nres,
                   nres);
    argshape *a = calloc((size_t)(nargs ? nargs : 1), sizeof *a);
    if (!a) return oom(d);
    for (int i = 0; i < nargs; i++) {
        if (!args[i]) {
            free(a);
            return err(d, TIR_ERR_INVALID, "argument %d is NULL", i);
        }
        a[i].dtype = tir_tensor_dtype(args[i]);
        a[i].rank = tir_tensor_rank(args[i]);
        for (int j = 0; j < a[i].rank && j < TIR_MAX_RANK; j++) a[i].dims[j] = tir_tensor_dim(args[i], j);
    }
    run r;
    tir_status s = run_init(&r, p, nargs, a, d);
    free(a);
    for (int i = 0; s == TIR_OK && i < p->nparams; i++) {
        int v = p->params[i];
        if (p->last_use[v] < 0) continue; /* never read: no need to copy it over */
        if ((s = alloc_value(&r, v)) != TIR_OK) break;
        s = tir_rt_htod(r.rt, r.bufs[r.buf_of[v]].ptr, tir_tensor_data(args[i]), r.nbytes[v], r.s,
                        d);
    }
    if (s == TIR_OK) s = run_steps(&r);
    for (int i = 0; s == TIR_OK && i < nres; i++) {
        int v = p->res[i];
        const tir_type *t = &p->types[v];
        if (!(results[i] = tir_tensor_new(t->dtype, t->rank, r.shape[v]))) {
            s = oom(d);
            break;
        }
        s = tir_rt_dtoh(r.rt, tir_tensor_data(results[i]), r.bufs[r.buf_of[v]].ptr, r.nbytes[v],
                        r.s, d);
    }
    if (s == TIR_OK) s = tir_rt_sync(r.rt, r.s, d);
    if (s != TIR_OK)
        for (int i = 0; i < nres; i++) {
            tir_tensor_free(results[i]);
            results[i] = NULL;
        }
    if (s != TIR_OK && r.rt) tir_rt_sync(r.rt, r.s, NULL); /* no kernel may still use a buffer */
    run_free(&r);
    return s;
}

tir_status tir_program_run_device(tir_program *p, int nargs, tir_device_tensor *const *args,
                                  int nres, tir_device_tensor **results, tir_stream *stream,
                                  tir_diag *d) {
    if (!p || (nargs && !args) || (nres && !results))
        return err(d, TIR_ERR_INVALID, "tir_program_run_device: NULL argument");
    for (int i = 0; i < nres; i++) results[i] = NULL;
    if (nres != p->nres)
        return err(d, TIR_ERR_INVALID, "@%s returns %d results, %d asked for", p->func, p->nres,
                   nres);
    if (stream && stream->ctx != p->ctx)
        return err(d, TIR_ERR_INVALID, "the stream belongs to another context");
    argshape *a = calloc((size_t)(nargs ? nargs : 1), sizeof *a);
    if (!a) return oom(d);
    for (int i = 0; i < nargs; i++) {
        if (!args[i] || args[i]->ctx != p->ctx) {
            free(a);
            return err(d, TIR_ERR_INVALID, "argument %d is NULL or of another context", i);
        }
        a[i].dtype = args[i]->dtype;
        a[i].rank = args[i]->rank;
        memcpy(a[i].dims, args[i]->dims, sizeof a[i].dims);
    }
    run r;
    tir_status s = run_init(&r, p, nargs, a, d);
    free(a);
    if (stream) r.s = stream->s;
    for (int i = 0; s == TIR_OK && i < p->nparams; i++) {
        int v = p->params[i];
        if (r.buf_of[v] < 0) new_buf(&r, v, args[i]->ptr, args[i]->alloc_bytes, false);
    }
    if (s == TIR_OK) s = run_steps(&r);
    for (int i = 0; s == TIR_OK && i < nres; i++) {
        int v = p->res[i];
        const tir_type *t = &p->types[v];
        buf *bf = &r.bufs[r.buf_of[v]];
        tir_dptr ptr = bf->ptr;
        size_t size = bf->size;
        bool handover = bf->owned;
        if (!handover) { /* the caller's argument, or a buffer an earlier result took */
            size = r.nbytes[v];
            if ((s = tir_rt_alloc(r.rt, size, &ptr, d)) != TIR_OK) break;
            if ((s = tir_rt_dtod(r.rt, ptr, bf->ptr, size, r.s, d)) != TIR_OK) {
                tir_rt_free(r.rt, ptr, size);
                break;
            }
        }
        results[i] = tir_device_tensor_wrap(p->ctx, r.rt, t->dtype, t->rank, r.shape[v], ptr, size, d);
        if (!results[i]) {
            if (!handover) tir_rt_free(r.rt, ptr, size);
            s = TIR_ERR_OOM;
            break;
        }
        if (handover) bf->owned = false;
    }
    if (s == TIR_OK) s = tir_rt_sync(r.rt, r.s, d);
    if (s != TIR_OK) {
        if (r.rt) tir_rt_sync(r.rt, r.s, NULL);
        for (int i = 0; i < nres; i++) {
            tir_device_tensor_free(results[i]);
            results[i] = NULL;
        }
    }
    run_free(&r);
    return s;
}

/* ---------------------------------------------------------------- comparing (DESIGN §6) */

double tir_rel_error(const tir_tensor *out, const tir_tensor *ref) {
    if (!out || !ref || tir_tensor_dtype(out) != tir_tensor_dtype(ref) ||
        tir_tensor_rank(out) != tir_tensor_rank(ref))
        return NAN;
    for (int i = 0; i < tir_tensor_rank(out); i++)
        if (tir_tensor_dim(out, i) != tir_tensor_dim(ref, i)) return NAN;
    double diff = 0, norm = 0;
    int64_t n = tir_tensor_numel(out);
    if (tir_tensor_dtype(out) == TIR_BOOL) { /* poison (0xFF) reads as true: only 0 and 1 are bools */
        const unsigned char *b = tir_tensor_data((tir_tensor *)out);
        for (int64_t i = 0; i < n; i++)
            if (b[i] > 1) return NAN;
    }
    size_t es = n > 0 ? tir_tensor_nbytes(out) / (size_t)n : 0;
    const unsigned char *ob = tir_tensor_data((tir_tensor *)out);
    for (int64_t i = 0; i < n; i++) {
        double o = tir_tensor_get(out, i), e = tir_tensor_get(ref, i);
        if (isnan(e) && isnan(o)) {
            /* NaN is the right answer here (a mean over nothing is 0/0), but a NaN of all-0xFF
             * bytes is the poison of an element nobody wrote */
            bool poison = true;
            for (size_t k = 0; k < es; k++) poison &= ob[(size_t)i * es + k] == 0xFF;
            if (poison) return NAN;
            continue;
        }
        if (isnan(o) || isnan(e)) return NAN;
        if (isinf(o) || isinf(e)) {
            if (o == e) continue;
            return INFINITY;
        }
        diff += (o - e) * (o - e);
        norm += e * e;
    }
    return norm > 0 ? sqrt(diff) / sqrt(norm) : sqrt(diff);
}

double tir_tolerance(tir_dtype dt, bool reduces) {
    switch (dt) {
    case TIR_F64:
    case TIR_F32: return reduces ? 1e-4 : 1e-5;
    case TIR_F16:
    case TIR_BF16: return 1e-2;
    case TIR_F8E4M3:
    case TIR_F8E5M2: return 1.25e-1;
    default: return 0;
    }
}
