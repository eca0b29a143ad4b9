/* compile.c: the compile driver and the executor. tir_compile runs the IR pipeline
 * (compiler/pipeline.c) and lowers every op of the function to a kernel (codegen/), keeping its
 * PTX; nothing here touches the GPU, so `tirc ptx` works on any machine. A run binds the
 * symbols from the arguments' shapes, loads the kernels on first use, places every value by the
 * memory plan of that binding (passes/plan_memory.c: liveness reuse, in place, donated
 * arguments) in one arena allocation from the caching allocator, and launches the kernels in
 * program order on one stream.
 *
 * A program copies what it needs out of the module (value types with their context-interned
 * dims, the op list as value ids), so it lives on after the module is freed, though not after the
 * context. */
#include <limits.h>
#include <stdio.h>

#include "compile.h"
#include "device.h"
#include "exec_matmul.h"
#ifdef TIR_WITH_LLVM
#include "fused.h"
#include "fused_horizontal.h"
#endif
#include "passes.h"
#include "pipeline.h"

typedef struct step {
    tir_opcode code;
    int nin, nout;
    int *in, *out;        /* value ids */
    tir_kernel k;         /* from codegen; k.ptx NULL for an alias */
    tir_rt_kernel rk;     /* loaded; rk.func NULL until then */
    float ms;
    tir_mm_step *mm;      /* a matmul step: tir's kernel or cuBLASLt (exec_matmul.c); else NULL */
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
    bool donate;          /* tir_options.donate_args */
    /* the last run's binding, its values' sizes and memory plan (passes/plan_memory.c), for the
     * reports of `tirc run` and `tirc bench` */
    bool have_last, last_device;
    bool *last_don;       /* per parameter: donatable in the last run */
    tir_bindings last_b;
    size_t *last_nbytes;
    tir_mem_plan last_plan;
    tir_rt *rt;           /* where the kernels are loaded */
    tir_rt_event *events; /* 2 per step when timing */
    /* matmul steps that may run on cuBLASLt: its handle (NULL when it could not be made, lt_why
     * says why) and a stream of the program's own, as cuBLASLt needs a CUstream and the
     * runtime's stream is not handed out; runs are synchronous, so nothing else orders on it */
    bool wants_lt;
    tir_cublas *lt;
    char lt_why[200];
    tir_rt_stream lt_stream;
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
    if (op->code == TIR_OP_FUSED && tir_fused_is_horizontal(op))
        return tir_codegen_fused_horizontal(ctx, op, id, cg, k, d);
    if (op->code == TIR_OP_FUSED) return tir_codegen_fused(ctx, op, id, cg, k, d);
    tir_status s = tir_codegen_op(ctx, op, id, cg, k, d);
    /* codegen/elementwise.c reads an operand of the result's exact shape at the index it writes,
     * in the thread that writes it, before the store, through a plain (not noalias) pointer: such
     * an operand may be overwritten in place (plan_memory.c) */
    if (s == TIR_OK && tir_op_is_elementwise(op->code) && k->alias_of < 0 && op->nout == 1)
        for (int j = 0; j < op->nin && j < 32; j++) {
            const tir_type *a = &op->in[j]->type, *o = &op->out[0]->type;
            bool same = a->rank == o->rank;
            for (int q = 0; same && q < a->rank; q++) same = a->dims[q] == o->dims[q];
            if (same) k->inplace_ok |= 1u << j;
        }
    return s;
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
        tir_mm_step_free(st->mm);
        free(st->in);
        free(st->out);
    }
    if (p->events) {
        for (int i = 0; i < 2 * p->nsteps; i++) tir_rt_event_free(p->rt, p->events[i]);
        free(p->events);
    }
    tir_cublas_destroy(p->lt);
    if (p->lt_stream) tir_rt_stream_free(p->rt, p->lt_stream);
    for (int i = 0; i < p->nparams; i++) free(p->param_names ? p->param_names[i] : NULL);
    free(p->param_names);
    free(p->steps);
    free(p->types);
    free(p->last_use);
    free(p->last_nbytes);
    free(p->last_don);
    tir_mem_plan_free(&p->last_plan);
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
    p->donate = opts->donate_args;
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
    for (int i = 0; i < p->nsteps && s == TIR_OK; i++) { /* who runs each matmul */
        bool e = false;
        step *st = &p->steps[i];
        if (st->k.alias_of < 0 && (st->mm = tir_mm_step_new(plan[i].op, &st->k, arch, opts, &e)) &&
            opts->matmul != TIR_MATMUL_TIR && st->mm->site.lt_ok) {
            p->wants_lt = true;
            st->k.inplace_ok = 0; /* cuBLASLt reads its operands across elements: never in place */
            free(st->k.inplace_of);
            st->k.inplace_of = NULL;
        }
        if (e) s = oom(d);
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
    if (st->mm) {
        o->executor = st->mm->choice;
        o->cublas = tir_mm_step_on_cublas(st->mm);
    }
}
const char *tir_program_func(const tir_program *p) { return p->func; }
int tir_program_num_params(const tir_program *p) { return p->nparams; }
int tir_program_num_results(const tir_program *p) { return p->nres; }
const tir_type *tir_program_result_type(const tir_program *p, int i) {
    return i >= 0 && i < p->nres ? &p->types[p->res[i]] : NULL;
}
bool tir_program_has_reduction(const tir_program *p) { return p->reduces; }
void tir_program_set_timing(tir_program *p, bool on) { p->timing = on; }

/* ---------------------------------------------------------------- memory and traffic */

static tir_status plan_for(const tir_program *p, const size_t *nbytes, bool device_args,
                           const bool *donatable, tir_mem_plan *out, tir_diag *d);

tir_status tir_program_plan_memory(const tir_program *p, const tir_bindings *b, bool device_args,
                                   tir_mem_plan *out, size_t **nbytes_out, tir_diag *d) {
    if (nbytes_out) *nbytes_out = NULL;
    if (!p || !out) return err(d, TIR_ERR_INVALID, "tir_program_plan_memory: NULL argument");
    memset(out, 0, sizeof *out);
    tir_bindings all = p->fixed;
    for (int i = 0; b && i < b->n; i++)
        if (tir_bindings_set(&all, b->names[i], b->values[i]) != TIR_OK)
            return err(d, TIR_ERR_INVALID, "%s = %lld: bound twice, or too many symbols",
                       b->names[i], (long long)b->values[i]);
    size_t *nb = calloc((size_t)(p->nvalues ? p->nvalues : 1), sizeof *nb);
    bool *don = calloc((size_t)(p->nparams ? p->nparams : 1), sizeof *don);
    tir_status s = nb && don ? TIR_OK : oom(d);
    for (int i = 0; s == TIR_OK && i < p->nparams; i++) don[i] = p->donate;
    /* every value that exists: parameters and what the steps make */
    bool *exists = s == TIR_OK ? calloc((size_t)(p->nvalues ? p->nvalues : 1), 1) : NULL;
    if (s == TIR_OK && !exists) s = oom(d);
    for (int i = 0; exists && i < p->nparams; i++) exists[p->params[i]] = true;
    for (int i = 0; exists && i < p->nsteps; i++)
        for (int j = 0; j < p->steps[i].nout; j++) exists[p->steps[i].out[j]] = true;
    for (int v = 0; s == TIR_OK && v < p->nvalues; v++) {
        if (!exists[v]) continue;
        const tir_type *t = &p->types[v];
        int64_t dims[TIR_MAX_RANK];
        if (tir_type_eval(t, &all, dims) != TIR_OK) {
            char ty[128];
            tir_type_print(t, ty, sizeof ty);
            s = err(d, TIR_ERR_INVALID, "cannot size %s: a symbol is unbound (bind it with --dim)", ty);
        } else if (!tir_shape_nbytes(t->dtype, t->rank, dims, &nb[v])) {
            s = err(d, TIR_ERR_INVALID, "a value of @%s is too large", p->func);
        }
    }
    if (s == TIR_OK) s = plan_for(p, nb, device_args, don, out, d);
    free(exists);
    free(don);
    if (s == TIR_OK && nbytes_out) *nbytes_out = nb;
    else free(nb);
    return s;
}

const tir_mem_plan *tir_program_last_plan(const tir_program *p, const size_t **nbytes) {
    if (!p || !p->have_last) return NULL;
    if (nbytes) *nbytes = p->last_nbytes;
    return &p->last_plan;
}

void tir_program_step_values(const tir_program *p, int i, int *nin, const int **in, int *nout,
                             const int **out) {
    const step *st = step_at(p, i);
    *nin = st ? st->nin : 0;
    *nout = st ? st->nout : 0;
    *in = st ? st->in : NULL;
    *out = st ? st->out : NULL;
}
int tir_program_param_value(const tir_program *p, int i) {
    return i >= 0 && i < p->nparams ? p->params[i] : -1;
}
int tir_program_result_value(const tir_program *p, int i) {
    return i >= 0 && i < p->nres ? p->res[i] : -1;
}
const char *tir_program_param_name(const tir_program *p, int i) {
    return i >= 0 && i < p->nparams ? p->param_names[i] : NULL;
}

static double eval_or0(const tir_dim *dm, const tir_bindings *b) {
    int64_t v = 0;
    return dm && tir_dim_eval(dm, b, &v) == TIR_OK ? (double)v : 0;
}

bool tir_program_kernel_traffic(const tir_program *p, int i, double *bytes, double *flops) {
    *bytes = *flops = 0;
    if (!p || !p->have_last) return false;
    return tir_program_kernel_traffic_for(p, p->last_nbytes, &p->last_b, i, bytes, flops);
}

bool tir_program_kernel_traffic_for(const tir_program *p, const size_t *nbytes,
                                    const tir_bindings *b, int i, double *bytes, double *flops) {
    const step *st = step_at(p, i);
    *bytes = *flops = 0;
    if (!st || !nbytes || !b) return false;
    const tir_kernel *k = &st->k;
    /* each distinct buffer read once and written once: what a kernel must move at least */
    for (int j = 0; j < k->nparams; j++) {
        tir_kparam_kind kind = k->params[j].kind;
        if (kind != TIR_KP_BUFFER && kind != TIR_KP_TMAP) continue; /* sizes, scratch */
        int idx = k->params[j].index, dup = 0;
        for (int q = 0; q < j; q++)
            dup |= (k->params[q].kind == TIR_KP_BUFFER || k->params[q].kind == TIR_KP_TMAP) &&
                   k->params[q].index == idx;
        if (dup || idx < 0 || idx >= st->nin + st->nout) continue;
        int v = idx < st->nin ? st->in[idx] : st->out[idx - st->nin];
        *bytes += (double)nbytes[v];
    }
    if (st->mm) { /* a matmul step, plain or a region with an epilogue: 2·M·N·K per batch */
        const tir_mm_site *ms = &st->mm->site;
        double batch = 1;
        for (int q = 0; q < ms->nbatch; q++) batch *= eval_or0(ms->batch[q], b);
        *flops = 2 * batch * eval_or0(ms->M, b) * eval_or0(ms->N, b) * eval_or0(ms->K, b);
    } else if (st->code == TIR_OP_MATMUL && st->nin == 2) {
        /* out [..., M, N] = a [..., M, K] b (or a transposed): K·M is a's two last dims */
        const tir_type *a = &p->types[st->in[0]], *o = &p->types[st->out[0]];
        if (a->rank >= 2 && o->rank >= 2) {
            double m = eval_or0(o->dims[o->rank - 2], b), numel = 1;
            for (int q = 0; q < o->rank; q++) numel *= eval_or0(o->dims[q], b);
            double km = eval_or0(a->dims[a->rank - 1], b) * eval_or0(a->dims[a->rank - 2], b);
            if (m > 0) *flops = 2 * numel * (km / m);
        }
    }
    return true;
}

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
    if (p->wants_lt && !p->lt) { /* without cuBLASLt, auto runs tir's kernels (and says so) */
        tir_diag d2;
        if (tir_cublas_create(rt, &p->lt, &d2) != TIR_OK ||
            tir_rt_stream_new(rt, &p->lt_stream, &d2) != TIR_OK) {
            snprintf(p->lt_why, sizeof p->lt_why, "%.190s", d2.msg);
            tir_cublas_destroy(p->lt);
            p->lt = NULL;
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
    bool donated; /* a donated argument's buffer: a result in it takes it over */
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
    tir_mem_plan plan;      /* where every value lives (passes/plan_memory.c) */
    bool plan_borrowed;     /* plan is p->last_plan (the same binding as the last run) */
    bool *don;              /* per parameter: its buffer may be overwritten */
    tir_dptr arena;         /* one allocation for every slot the plan puts in the arena */
    size_t arena_size;
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
    if (r->arena && r->rt) tir_rt_free(r->rt, r->arena, r->arena_size);
    if (!r->plan_borrowed) tir_mem_plan_free(&r->plan);
    free(r->don);
    free(r->buf_of);
    free(r->dead);
    free(r->bufs);
    free(r->shape);
    free(r->nbytes);
}

/* The memory plan of p for values of these sizes (passes/plan_memory.c): device_args as
 * tir_program_run_device runs (arguments in the caller's buffers, donatable[i] those it may
 * overwrite; results in allocations of their own), else as tir_program_run (arguments copied
 * into the arena, results read back from it). */
static tir_status plan_for(const tir_program *p, const size_t *nbytes, bool device_args,
                           const bool *donatable, tir_mem_plan *out, tir_diag *d) {
    tir_mem_step *ms = calloc((size_t)(p->nsteps ? p->nsteps : 1), sizeof *ms);
    if (!ms) return oom(d);
    for (int i = 0; i < p->nsteps; i++) {
        const step *st = &p->steps[i];
        ms[i] = (tir_mem_step){st->nin, st->nout, st->in, st->out, st->k.alias_of,
                               st->k.inplace_ok, st->k.inplace_of};
    }
    tir_mem_problem pb = {
        .nvalues = p->nvalues, .nbytes = nbytes, .types = p->types,
        .nparams = p->nparams, .nres = p->nres, .nsteps = p->nsteps,
        .params = p->params, .res = p->res, .steps = ms,
        .params_external = device_args, .donatable = donatable, .results_external = device_args,
    };
    tir_status s = tir_plan_memory(&pb, out, d);
    free(ms);
    return s;
}

/* Gives every value its storage from the plan: one arena allocation, the arguments' buffers
 * (device runs: dargs), and an allocation of its own for each result handed to the caller. */
static tir_status run_plan(run *r, bool device, tir_device_tensor *const *dargs) {
    tir_program *p = r->p;
    bool *don = r->don = calloc((size_t)(p->nparams ? p->nparams : 1), sizeof *don);
    if (!don) return oom(r->d);
    /* an argument passed twice is read through both names: never overwritten */
    for (int i = 0; device && p->donate && i < p->nparams; i++) {
        don[i] = true;
        for (int j = 0; j < p->nparams; j++)
            if (j != i && dargs[j]->ptr == dargs[i]->ptr) don[i] = false;
    }
    /* the same binding as the last run: the same plan (planning is quadratic in the values) */
    bool same = p->have_last && p->last_device == device && p->last_b.n == r->b.n &&
                memcmp(p->last_don, don, (size_t)p->nparams * sizeof *don) == 0;
    for (int i = 0; same && i < r->b.n; i++) {
        int64_t v;
        same = tir_bindings_get(&p->last_b, r->b.names[i], &v) && v == r->b.values[i];
    }
    tir_status s = TIR_OK;
    if (same) {
        r->plan = p->last_plan;
        r->plan_borrowed = true;
    } else if ((s = plan_for(p, r->nbytes, device, don, &r->plan, r->d)) != TIR_OK) {
        return s;
    }
    const tir_mem_plan *pl = &r->plan;
    buf *nb = realloc(r->bufs, (size_t)(pl->nslots ? pl->nslots : 1) * sizeof *nb);
    if (!nb) return oom(r->d);
    r->bufs = nb;
    r->nbufs = 0;
    if (pl->arena_bytes) {
        if ((s = tir_rt_alloc(r->rt, pl->arena_bytes, &r->arena, r->d)) != TIR_OK) return s;
        r->arena_size = pl->arena_bytes;
    }
    for (int k = 0; k < pl->nslots; k++) {
        const tir_mem_slot *sl = &pl->slots[k];
        buf b = {0, sl->size, sl->nvalues, false, false};
        if (sl->where == TIR_MEM_ARENA) {
            b.ptr = r->arena + sl->offset;
        } else if (sl->where == TIR_MEM_PARAM) {
            b.ptr = dargs[sl->param]->ptr;
            b.size = dargs[sl->param]->alloc_bytes;
            b.donated = device && p->donate;
            for (int j = 0; b.donated && j < p->nparams; j++)
                if (j != sl->param && dargs[j]->ptr == b.ptr) b.donated = false;
        } else if ((s = tir_rt_alloc(r->rt, sl->size, &b.ptr, r->d)) != TIR_OK) {
            return s;
        } else {
            b.owned = true;
        }
        r->bufs[r->nbufs++] = b;
    }
    for (int v = 0; v < p->nvalues; v++) r->buf_of[v] = pl->slot[v];
    return TIR_OK;
}

/* keeps the run's binding, sizes and plan (tir_program_last_plan, _kernel_traffic) */
static void keep_last(run *r, bool device) {
    tir_program *p = r->p;
    if (r->plan_borrowed) return;
    size_t *nb = malloc((size_t)(p->nvalues ? p->nvalues : 1) * sizeof *nb);
    if (!nb) return;
    memcpy(nb, r->nbytes, (size_t)p->nvalues * sizeof *nb);
    free(p->last_nbytes);
    free(p->last_don);
    tir_mem_plan_free(&p->last_plan);
    p->last_nbytes = nb;
    p->last_don = r->don;
    r->don = NULL;
    p->last_plan = r->plan;
    memset(&r->plan, 0, sizeof r->plan);
    p->last_b = r->b;
    p->last_device = device;
    p->have_last = true;
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
    r->s = p->lt_stream; /* NULL (the runtime's stream) unless cuBLASLt may run */
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

/* a matmul step on cuBLASLt, its outputs allocated as for a kernel, timed like one */
static tir_status launch_cublas(run *r, int i) {
    tir_program *p = r->p;
    step *st = &p->steps[i];
    enum { MAXB = 16 };
    tir_dptr bufs[MAXB];
    tir_status s;
    if (st->nin + 1 > MAXB) return err(r->d, TIR_ERR_INTERNAL, "matmul step: too many operands");
    for (int j = 0; j <= st->nin; j++) {
        int v = j < st->nin ? st->in[j] : st->out[0];
        bufs[j] = r->buf_of[v] >= 0 ? r->bufs[r->buf_of[v]].ptr : 0;
    }
    bool timed = p->timing && p->events && p->events[2 * i];
    if (timed && (s = tir_rt_event_record(r->rt, p->events[2 * i], r->s, r->d)) != TIR_OK) return s;
    s = tir_mm_step_run(st->mm, p->lt, r->rt, r->s, &r->b, st->nin, bufs, r->d);
    if (s != TIR_OK) return s;
    if (timed && (s = tir_rt_event_record(r->rt, p->events[2 * i + 1], r->s, r->d)) != TIR_OK)
        return s;
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
    for (int j = 0; j < st->nout; j++) { /* the plan gave every result its storage */
        int v = st->out[j];
        if (r->buf_of[v] < 0)
            return err(d, TIR_ERR_INTERNAL, "kernel %s: result %d has no buffer", k->name, j);
        bool init = j == 0 && (k->init_from >= 0 || k->init_zero);
        if (p->poison && !init && r->plan.inplace_of[v] < 0 && /* in place: it holds the operand */
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

    if (st->mm) {
        tir_mm_exec who;
        if ((s = tir_mm_step_pick(st->mm, &r->b, p->lt, p->lt_why, &who, d)) != TIR_OK) return s;
        if (who == TIR_MM_CUBLAS) {
            s = launch_cublas(r, i);
            if (s != TIR_ERR_UNSUPPORTED) return s;
            tir_mm_step_no_algo(st->mm, d ? d->msg : "cuBLASLt has no algorithm"); /* tir's kernel */
        }
    }

    /* 4 KB of parameters at 8 bytes each: a horizontal kernel (passes/fuse_horizontal.c) holds
     * up to 511 buffers */
    enum { MAXP = 512, MAXTMAP = 8 };
    union {
        tir_dptr ptr;
        int64_t i;
    } vals[MAXP];
    _Alignas(64) unsigned char tmaps[MAXTMAP][128]; /* TIR_KP_TMAP: CUtensorMaps, apart (12 KB in all) */
    int ntmap = 0;
    void *pv[MAXP];
    if (k->nparams > MAXP) return err(d, TIR_ERR_UNSUPPORTED, "kernel %s: too many params", k->name);
    tir_dptr ws = 0; /* the kernel's scratch: sized once the grid is known, below */
    for (int j = 0; j < k->nparams; j++) {
        const tir_kparam *kp = &k->params[j];
        if (kp->kind == TIR_KP_WORKSPACE) {
            vals[j].ptr = 0;
        } else if (kp->kind == TIR_KP_BUFFER) {
            int v = kp->index < st->nin ? st->in[kp->index] : st->out[kp->index - st->nin];
            if (r->buf_of[v] < 0)
                return err(d, TIR_ERR_INTERNAL, "kernel %s: operand %d has no buffer", k->name,
                           kp->index);
            vals[j].ptr = r->bufs[r->buf_of[v]].ptr;
        } else if (kp->kind == TIR_KP_TMAP) {
            const tir_kparam_tmap *t = &kp->tmap;
            int v = kp->index < st->nin ? st->in[kp->index] : st->out[kp->index - st->nin];
            int64_t dims[5], strides[5] = {1, 1, 1, 1, 1};
            for (int q = 0; q < t->rank && q < 5; q++)
                if (tir_dim_eval(t->dims[q], &r->b, &dims[q]) != TIR_OK ||
                    (q > 0 && tir_dim_eval(t->strides[q], &r->b, &strides[q]) != TIR_OK))
                    return err(d, TIR_ERR_INVALID, "kernel %s: parameter %d: a symbol is unbound",
                               k->name, j);
            if (r->buf_of[v] < 0)
                return err(d, TIR_ERR_INTERNAL, "kernel %s: operand %d has no buffer", k->name,
                           kp->index);
            if (ntmap == MAXTMAP) return err(d, TIR_ERR_UNSUPPORTED, "kernel %s: too many tensor maps", k->name);
            if ((s = tir_rt_tensor_map(r->rt, tmaps[ntmap], t->dtype, t->rank, r->bufs[r->buf_of[v]].ptr, dims,
                                       strides, t->box, t->swizzle, d)) != TIR_OK)
                return s;
            pv[j] = tmaps[ntmap++];
            continue;
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
        if (a == 0 && k->persistent > 0 && g > (int64_t)k->persistent * tir_rt_sms(r->rt))
            g = (int64_t)k->persistent * tir_rt_sms(r->rt);
        if (g > limit[a])
            return err(d, TIR_ERR_UNSUPPORTED, "kernel %s: grid[%d] = %lld exceeds the device's %lld",
                       k->name, a, (long long)g, (long long)limit[a]);
        grid[a] = (unsigned)g;
    }
    size_t wsn = 0;
    if (k->workspace) {
        int64_t per;
        if (tir_dim_eval(k->workspace, &r->b, &per) != TIR_OK || per < 0)
            return err(d, TIR_ERR_INVALID, "kernel %s: workspace: a symbol is unbound", k->name);
        wsn = TIR_WORKSPACE_HEADER + (size_t)grid[0] * (size_t)per;
        if ((s = tir_rt_alloc(r->rt, wsn, &ws, d)) != TIR_OK) return s;
        if ((s = tir_rt_memset8(r->rt, ws, 0, TIR_WORKSPACE_HEADER, r->s, d)) != TIR_OK) {
            tir_rt_free(r->rt, ws, wsn);
            return s;
        }
        for (int j = 0; j < k->nparams; j++)
            if (k->params[j].kind == TIR_KP_WORKSPACE) vals[j].ptr = ws;
    }
    if (p->timing && (s = tir_rt_event_record(r->rt, p->events[2 * i], r->s, d)) != TIR_OK) {
        tir_rt_free(r->rt, ws, wsn);
        return s;
    }
    s = tir_rt_launch(r->rt, &st->rk, k->name, grid, k->block, k->shared_bytes, pv, r->s, d);
    /* back to the cache at once: later work on this stream runs after the kernel */
    tir_rt_free(r->rt, ws, wsn);
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
    if (s == TIR_OK) s = run_plan(&r, false, NULL);
    for (int i = 0; s == TIR_OK && i < p->nparams; i++) {
        int v = p->params[i];
        if (r.buf_of[v] < 0) continue; /* never read: no need to copy it over */
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
    if (s == TIR_OK) keep_last(&r, false);
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
        if (!args[i]->ptr && args[i]->nbytes) {
            free(a);
            return err(d, TIR_ERR_INVALID,
                       "argument %d is empty: its buffer was donated to an earlier run", i);
        }
        a[i].dtype = args[i]->dtype;
        a[i].rank = args[i]->rank;
        memcpy(a[i].dims, args[i]->dims, sizeof a[i].dims);
    }
    run r;
    tir_status s = run_init(&r, p, nargs, a, d);
    free(a);
    if (stream) r.s = stream->s;
    if (s == TIR_OK) s = run_plan(&r, true, args);
    if (s == TIR_OK) s = run_steps(&r);
    for (int i = 0; s == TIR_OK && i < nres; i++) {
        int v = p->res[i];
        const tir_type *t = &p->types[v];
        buf *bf = &r.bufs[r.buf_of[v]];
        tir_dptr ptr = bf->ptr;
        size_t size = bf->size;
        /* a result written in place of a donated argument takes its buffer; an argument that is
         * itself returned is copied, and stays the caller's */
        bool handover = bf->owned || (bf->donated && r.plan.inplace_of[v] >= 0);
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
        if (handover && bf->donated) /* the result takes the donated argument's buffer over */
            for (int j = 0; j < p->nparams; j++)
                if (args[j]->ptr == bf->ptr) {
                    args[j]->ptr = 0;
                    args[j]->alloc_bytes = 0;
                }
        if (handover) bf->owned = bf->donated = false;
    }
    if (s == TIR_OK) s = tir_rt_sync(r.rt, r.s, d);
    if (s != TIR_OK) {
        if (r.rt) tir_rt_sync(r.rt, r.s, NULL);
        for (int i = 0; i < nres; i++) {
            tir_device_tensor_free(results[i]);
            results[i] = NULL;
        }
    }
    if (s == TIR_OK) keep_last(&r, true);
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
