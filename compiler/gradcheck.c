/* gradcheck.c: reverse-mode gradients against central finite differences, on the reference
 * interpreter, in f64.
 *
 * The f64 program is the module with every float dtype (f32, bf16, ..., and those the text leaves
 * to a default) made f64 in the IR, printed and parsed again: every op then computes and rounds
 * in f64, so finite differences with a small step are accurate to ~1e-9 and any larger
 * disagreement is a wrong rule. (Casting f64
 * inputs down at entry would round them and make differences meaningless.) Integer parameters
 * that index (take, scatter_add, cross_entropy targets) are drawn inside the indexed dim. */
#include <errno.h>
#include <stdio.h>

#include "gradcheck.h"
#include "passes.h"

/* splitmix64: seedable and the same on every machine */
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

/* Retype the module to f64 in the IR, where every dtype is known -- including the ones the text
 * leaves to a default (full() without dtype=, a literal with no data operand), which a rewrite
 * of dtype tokens would miss. Every float value, declared result and dtype attribute becomes
 * f64, and a float full() without dtype= gets one; the caller prints and parses the result, so
 * inference checks it. Returns false on OOM. */
static void retype_type(tir_type *t) {
    if (tir_dtype_is_float(t->dtype)) t->dtype = TIR_F64;
}
static bool retype_func_f64(tir_module *m, tir_func *f) {
    for (int i = 0; i < f->nparams; i++) retype_type(&f->params[i]->type);
    for (int i = 0; i < f->nret; i++) retype_type(&f->ret[i]);
    for (int k = 0; k < f->nops; k++) {
        tir_op *op = f->ops[k];
        for (int j = 0; j < op->nout; j++) retype_type(&op->out[j]->type);
        bool has_dtype = false;
        for (int i = 0; i < op->nattrs; i++)
            if (op->attrs[i].kind == TIR_ATTR_DTYPE) {
                has_dtype |= strcmp(op->attrs[i].name, "dtype") == 0;
                if (tir_dtype_is_float(op->attrs[i].u.dtype)) op->attrs[i].u.dtype = TIR_F64;
            }
        if (op->code == TIR_OP_FULL && !has_dtype && op->nout == 1 && op->out[0]->type.dtype == TIR_F64) {
            tir_attr_value *a = tir_arena_alloc(m->arena, (size_t)(op->nattrs + 1) * sizeof *a);
            if (!a) return false;
            if (op->nattrs) memcpy(a, op->attrs, (size_t)op->nattrs * sizeof *a);
            a[op->nattrs] = tir_a_dtype("dtype", TIR_F64);
            op->attrs = a;
            op->nattrs++;
        }
        tir_func *r = tir_op_region(op);
        if (r && !retype_func_f64(m, r)) return false;
    }
    return true;
}

/* The smallest dim that integer parameter p indexes in f (followed through movement ops and
 * casts); -1 when it indexes nothing. f has no calls (the grad pass inlined them). */
static int64_t index_bound(const tir_func *f, const tir_value *p, const tir_bindings *b) {
    bool *taint = calloc((size_t)f->nvalues + 1, 1);
    int64_t bound = -1;
    if (!taint) return -1;
    taint[p->id] = true;
    for (int k = 0; k < f->nops; k++) {
        const tir_op *op = f->ops[k];
        const tir_type *t = NULL;
        int64_t axis = 0;
        if ((op->code == TIR_OP_TAKE || op->code == TIR_OP_SCATTER_ADD) && taint[op->in[1]->id]) {
            t = &op->in[0]->type;
            axis = tir_attr_int(op, "axis", 0);
        } else if (op->code == TIR_OP_CROSS_ENTROPY && taint[op->in[1]->id]) {
            t = &op->in[0]->type;
            axis = -1;
        }
        int ax;
        int64_t v;
        if (t && tir_norm_axis(axis, t->rank, &ax) && tir_dim_eval(t->dims[ax], b, &v) == TIR_OK &&
            (bound < 0 || v < bound))
            bound = v;
        if ((tir_ops[op->code].flags & TIR_F_MOVEMENT) || op->code == TIR_OP_CAST) {
            bool any = false;
            for (int i = 0; i < op->nin; i++) any |= taint[op->in[i]->id];
            for (int i = 0; any && i < op->nout; i++) taint[op->out[i]->id] = true;
        }
    }
    free(taint);
    return bound;
}

static void fill(tir_tensor *t, uint64_t *s, double lo, double hi, int64_t bound) {
    tir_dtype dt = tir_tensor_dtype(t);
    int64_t n = tir_tensor_numel(t);
    double band = 0.05 * (hi - lo);
    for (int64_t i = 0; i < n; i++) {
        double v;
        if (dt == TIR_BOOL) {
            v = (double)(rng_next(s) >> 63) || i == 0;
        } else if (tir_dtype_is_int(dt)) {
            v = bound >= 0 ? (double)(rng_next(s) % (uint64_t)(bound ? bound : 1))
                           : 1.0 + (double)(rng_next(s) % 3);
        } else {
            do v = lo + (hi - lo) * rng_unit(s);
            while (fabs(v) < band || v == 0);
        }
        tir_tensor_set(t, i, v);
    }
}

typedef struct gc {
    tir_module *m;        /* the f64 copy */
    const char *loss_fn;  /* its scalar function */
    const char *grad_fn;  /* its value_and_grad function (built) */
    int nparams;
    tir_tensor **args;
} gc;

static tir_status eval_loss(gc *g, double *out, tir_diag *d) {
    tir_tensor *res = NULL;
    tir_status s = tir_interpret(g->m, g->loss_fn, g->nparams, g->args, 1, &res, d);
    if (s == TIR_OK) *out = tir_tensor_get(res, 0);
    tir_tensor_free(res);
    return s;
}

/* compares the analytic gradient of parameter pi with finite differences */
static tir_status check_param(gc *g, const tir_gradcheck_opts *o, uint64_t *rng, int pi,
                              const tir_tensor *ana, const char *pname, tir_gradcheck_result *r,
                              tir_diag *d) {
    tir_tensor *x = g->args[pi];
    int64_t n = tir_tensor_numel(x);
    int64_t count = n <= o->max_elems ? n : o->max_elems;
    double max_abs = 0, max_rel = 0;
    bool ok = true;
    for (int64_t k = 0; k < count; k++) {
        int64_t i = n <= o->max_elems ? k : (int64_t)(rng_next(rng) % (uint64_t)n);
        double x0 = tir_tensor_get(x, i), lp, lm;
        tir_tensor_set(x, i, x0 + o->eps);
        tir_status s = eval_loss(g, &lp, d);
        tir_tensor_set(x, i, x0 - o->eps);
        if (s == TIR_OK) s = eval_loss(g, &lm, d);
        tir_tensor_set(x, i, x0);
        if (s != TIR_OK) return s;
        double num = (lp - lm) / (2 * o->eps), a = tir_tensor_get(ana, i);
        double err = fabs(a - num), rel = err / fmax(1.0, fabs(num));
        if (!(rel <= o->tol)) ok = false; /* NaN fails too */
        if (err != err) err = rel = INFINITY;
        max_abs = fmax(max_abs, err);
        max_rel = fmax(max_rel, rel);
    }
    double rel = max_rel;
    r->nparams++;
    if (!ok) r->nfailed++;
    if (max_abs > r->max_abs_err) r->max_abs_err = max_abs;
    if (rel > r->max_rel_err) r->max_rel_err = rel;
    if (o->log) {
        char ts[256];
        snprintf(ts, sizeof ts, "%lld of %lld elements", (long long)count, (long long)n);
        fprintf(o->log, "%s %%%s: %s, max abs err %.3g, rel err %.3g\n", ok ? "PASS" : "FAIL",
                pname, ts, max_abs, rel);
    }
    return TIR_OK;
}

tir_status tir_gradcheck(const tir_module *m, const char *func, const tir_gradcheck_opts *opts,
                         tir_gradcheck_result *r, tir_diag *d) {
    tir_diag local;
    if (!d) d = &local;
    memset(d, 0, sizeof *d);
    memset(r, 0, sizeof *r);
    tir_gradcheck_opts o = *opts;
    if (o.eps <= 0) o.eps = 1e-6;
    if (o.tol <= 0) o.tol = 1e-6;
    if (o.max_elems <= 0) o.max_elems = 64;
    if (o.lo >= o.hi) {
        o.lo = -1;
        o.hi = 1;
    }
    if (func && func[0] == '@') func++;
    const tir_func *f = tir_module_find(m, func);
    if (!f) return tir_diag_set(d, TIR_ERR_INVALID, m, (tir_loc){0, 0}, "no function @%s", func ? func : "");
    if (!f->grad_of && f->nops == 0 && f->nres == 0)
        return tir_diag_set(d, TIR_ERR_INVALID, m, f->loc, "@%s has no body", f->name);

    /* the f64 copy: print, parse, retype in the IR, print and parse again (which re-infers) */
    gc g = {0};
    const char *fname = m->filename ? m->filename : "<gradcheck>";
    tir_module *copy = NULL;
    char *text = tir_module_print(m), *t64 = NULL;
    if (!text) return tir_diag_set(d, TIR_ERR_OOM, m, f->loc, "out of memory");
    tir_status s = tir_module_parse(m->ctx, text, fname, &copy, d);
    tir_free(text);
    if (s == TIR_OK) {
        bool ok = true;
        for (int i = 0; i < copy->nfuncs && ok; i++) ok = retype_func_f64(copy, copy->funcs[i]);
        t64 = ok ? tir_module_print(copy) : NULL;
        tir_module_free(copy);
        if (!t64) return tir_diag_set(d, TIR_ERR_OOM, m, f->loc, "out of memory");
        s = tir_module_parse(m->ctx, t64, fname, &g.m, d);
        tir_free(t64);
    }
    if (s != TIR_OK) {
        char msg[sizeof d->msg];
        snprintf(msg, sizeof msg, "%s", d->msg);
        return tir_diag_set(d, TIR_ERR_INTERNAL, NULL, (tir_loc){0, 0},
                            "gradcheck: the f64 copy of the module does not parse: %s", msg);
    }
    char gname[300];
    if (f->grad_of) {
        g.loss_fn = f->grad_of->name;
        g.grad_fn = f->name;
    } else {
        g.loss_fn = f->name;
        snprintf(gname, sizeof gname, "__gradcheck_%.200s", f->name);
        const char *wrt[256];
        int nwrt = 0;
        for (int i = 0; i < f->nparams && nwrt < 256; i++)
            if (tir_dtype_is_float(f->params[i]->type.dtype)) wrt[nwrt++] = f->params[i]->name;
        if (nwrt == 0) {
            s = tir_diag_set(d, TIR_ERR_INVALID, m, f->loc, "@%s has no float parameter", f->name);
            goto out;
        }
        if ((s = tir_define_value_and_grad(g.m, gname, f->name, nwrt, wrt, d)) != TIR_OK) goto out;
        g.grad_fn = gname;
    }
    if ((s = tir_pass_grad(g.m, d)) != TIR_OK) goto out;

    const tir_func *gf = tir_module_find(g.m, g.grad_fn);
    g.nparams = gf->nparams;
    g.args = calloc((size_t)g.nparams + 1, sizeof *g.args);
    tir_tensor **res = calloc((size_t)gf->nres + 1, sizeof *res);
    if (!g.args || !res) {
        free(res);
        s = tir_diag_set(d, TIR_ERR_OOM, m, f->loc, "out of memory");
        goto out;
    }
    uint64_t rng = o.seed ^ 0x5851f42d4c957f2dull;
    for (int i = 0; i < g.nparams && s == TIR_OK; i++) {
        const tir_value *p = gf->params[i];
        int64_t dims[TIR_MAX_RANK];
        for (int k = 0; k < p->type.rank && s == TIR_OK; k++)
            if (tir_dim_eval(p->type.dims[k], &o.dims, &dims[k]) != TIR_OK) {
                char dt[128];
                tir_dim_print(p->type.dims[k], dt, sizeof dt);
                s = tir_diag_set(d, TIR_ERR_INVALID, m, f->loc,
                                 "parameter %%%s: nothing binds dim %s (bind its symbols with --dim)",
                                 p->name ? p->name : "?", dt);
            }
        if (s != TIR_OK) break;
        if (!(g.args[i] = tir_tensor_new(p->type.dtype, p->type.rank, dims))) {
            s = tir_diag_set(d, TIR_ERR_OOM, m, f->loc, "cannot allocate parameter %%%s", p->name);
            break;
        }
        int64_t bound = tir_dtype_is_int(p->type.dtype) ? index_bound(gf, p, &o.dims) : -1;
        fill(g.args[i], &rng, o.lo, o.hi, bound);
    }
    if (s == TIR_OK) s = tir_interpret(g.m, g.grad_fn, g.nparams, g.args, gf->nres, res, d);
    if (s == TIR_OK) {
        double l0;
        r->loss = tir_tensor_get(res[0], 0);
        s = eval_loss(&g, &l0, d);
        if (s == TIR_OK && !(fabs(l0 - r->loss) <= 1e-12 * fmax(1.0, fabs(l0)))) {
            r->loss_failed = true;
            if (o.log) fprintf(o.log, "FAIL loss: value_and_grad gives %.17g, @%s gives %.17g\n",
                               r->loss, g.loss_fn, l0);
        }
    }
    const int *wrt = f->grad_of ? f->wrt : NULL;
    for (int j = 0, k = 0; s == TIR_OK && j + 1 < gf->nres; j++, k++) {
        int pi = wrt ? wrt[j] : -1;
        if (!wrt) { /* all float params, in order */
            while (k < gf->nparams && !tir_dtype_is_float(gf->params[k]->type.dtype)) k++;
            pi = k;
        }
        s = check_param(&g, &o, &rng, pi, res[j + 1], gf->params[pi]->name, r, d);
    }
    for (int i = 0; i < gf->nres; i++) tir_tensor_free(res[i]);
    free(res);
out:
    for (int i = 0; g.args && i < g.nparams; i++) tir_tensor_free(g.args[i]);
    free(g.args);
    tir_module_free(g.m);
    return s;
}

/* ---------------------------------------------------------------- the tirc verb */

static int usage(const char *fmt, const char *arg) {
    fprintf(stderr, "tirc gradcheck: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see tirc gradcheck --help)\n");
    return 2;
}

static bool parse_double(const char *s, double *v) {
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *s && !*end && !errno;
}

int tir_cmd_gradcheck(int argc, char **argv) {
    const char *file = NULL, *func = NULL;
    tir_gradcheck_opts o = {.seed = 1};
    char syms[64][64]; /* tir_bindings keeps the name pointers */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        static const char *const with_value[] = {"--func", "--seed", "--dim", "--eps", "--tol",
                                                 "--range", "--max-elems"};
        const char *name = NULL;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) {
            size_t n = strlen(with_value[k]);
            if (strncmp(a, with_value[k], n) == 0 && (a[n] == 0 || a[n] == '=')) {
                name = with_value[k];
                if (a[n] == '=') v = a + n + 1;
                else if (i + 1 < argc) v = argv[++i];
                else return usage("%s needs a value", name);
            }
        }
        if (!name) {
            if (a[0] == '-' && a[1]) return usage("unknown option '%s'", a);
            if (file) return usage("more than one input file%s", "");
            file = a;
            continue;
        }
        double x;
        if (strcmp(name, "--func") == 0) {
            func = v;
        } else if (strcmp(name, "--seed") == 0) {
            char *end;
            errno = 0;
            o.seed = strtoull(v, &end, 0);
            if (!*v || *end || errno || v[0] == '-') return usage("bad --seed '%s'", v);
        } else if (strcmp(name, "--dim") == 0) {
            const char *eq = strchr(v, '=');
            char *sym = syms[o.dims.n < 64 ? o.dims.n : 63];
            char *end;
            long long val;
            if (!eq || eq == v || (size_t)(eq - v) >= sizeof syms[0])
                return usage("--dim wants N=size, got '%s'", v);
            memcpy(sym, v, (size_t)(eq - v));
            sym[eq - v] = 0;
            errno = 0;
            val = strtoll(eq + 1, &end, 10);
            if (!eq[1] || *end || errno || val < 0) return usage("--dim wants N=size, got '%s'", v);
            if (tir_bindings_set(&o.dims, sym, val) != TIR_OK) return usage("cannot bind --dim %s", v);
        } else if (strcmp(name, "--eps") == 0) {
            if (!parse_double(v, &o.eps) || o.eps <= 0) return usage("bad --eps '%s'", v);
        } else if (strcmp(name, "--tol") == 0) {
            if (!parse_double(v, &o.tol) || o.tol <= 0) return usage("bad --tol '%s'", v);
        } else if (strcmp(name, "--range") == 0) {
            char *end;
            errno = 0;
            o.lo = strtod(v, &end);
            if (end == v || *end != ',' || errno) return usage("--range wants LO,HI, got '%s'", v);
            const char *h = end + 1;
            o.hi = strtod(h, &end);
            if (end == h || *end || errno || !(o.lo < o.hi)) return usage("--range wants LO,HI, got '%s'", v);
        } else if (strcmp(name, "--max-elems") == 0) {
            if (!parse_double(v, &x) || x < 1 || x != floor(x)) return usage("bad --max-elems '%s'", v);
            o.max_elems = (int)fmin(x, 1e9);
        }
    }
    if (!file) return usage("no input file%s", "");
    if (!func) return usage("--func is required%s", "");
    tir_context *ctx = tir_context_create();
    if (!ctx) return 1;
    tir_module *m = NULL;
    tir_diag d;
    int rc = 1;
    if (tir_module_parse_file(ctx, file, &m, &d) != TIR_OK) {
        tir_diag_print(&d, stderr);
        tir_context_destroy(ctx);
        return 1;
    }
    o.log = stdout;
    tir_gradcheck_result r;
    if (tir_gradcheck(m, func, &o, &r, &d) != TIR_OK) {
        tir_diag_print(&d, stderr);
    } else {
        bool bad = r.nfailed || r.loss_failed;
        printf("%s: %d parameter%s, %d failed%s (loss %.6g, max abs err %.3g, max rel err %.3g)\n",
               bad ? "FAIL" : "PASS", r.nparams, r.nparams == 1 ? "" : "s", r.nfailed,
               r.loss_failed ? ", the loss value differs" : "", r.loss, r.max_abs_err, r.max_rel_err);
        rc = bad ? 1 : 0;
    }
    tir_module_free(m);
    tir_context_destroy(ctx);
    return rc;
}
