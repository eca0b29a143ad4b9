/* tirc.c: the tirc command, what users touch first: check, print and run .tir programs, and
 * the GPU verbs whose bodies live in compiler/cmd_gpu.c (ptx, run --backend gpu, run --compare),
 * cmd_bench.c (bench, which makes its inputs by run's rule through bench_inputs) and
 * cmd_explain.c (explain).
 *
 * Each verb is one row of the `verbs` table: {name, function, one-line summary, help text}.
 * Adding a verb is adding a row and its function (int fn(argc, argv), argv[0] the verb); a row
 * with a NULL function is a verb that is announced but not built yet (exit 2), a row with NULL
 * help text a verb that answers --help itself. Exit codes, for every verb: 0 ok, 1 the program or its
 * inputs are wrong (a diagnostic was printed), 2 the command line is wrong.
 *
 * tirc frees everything before it returns, error paths included: the test suite runs it under
 * LeakSanitizer.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "cmd_gpu.h"
#include "exec_matmul.h"
#include "fuzz.h"
#include "gradcheck.h"
#include "ir.h"
#include "pipeline.h"

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_USAGE = 2 };

typedef int (*verb_fn)(int argc, char **argv); /* argv[0] is the verb */

typedef struct verb {
    const char *name;
    verb_fn fn;          /* NULL: not built yet */
    const char *summary; /* one line for `tirc --help` */
    const char *help;    /* `tirc VERB --help`; NULL: fn prints its own help for --help */
} verb;

/* ---------------------------------------------------------------- shared helpers */

static int usage_err(const char *verb_name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_err(const char *verb_name, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tirc %s: ", verb_name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see tirc %s --help)\n", verb_name);
    va_end(ap);
    return EXIT_USAGE;
}

static int user_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int user_err(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return EXIT_ERR;
}

/* --name VALUE or --name=VALUE at argv[*i]; advances *i past the value. 1 matched, 0 not this
 * option, -1 matched but the value is missing. */
static int opt(int argc, char **argv, int *i, const char *name, const char **val) {
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != 0) return 0;
    if (*i + 1 >= argc) return -1;
    *val = argv[++*i];
    return 1;
}

typedef struct loaded {
    tir_context *ctx;
    tir_module *m;
} loaded;

static void unload(loaded *l) {
    if (l->m) tir_module_free(l->m);
    if (l->ctx) tir_context_destroy(l->ctx);
    l->m = NULL;
    l->ctx = NULL;
}

/* parse and verify a file; prints the diagnostic on failure */
static int load(const char *path, loaded *l) {
    tir_diag d;
    l->m = NULL;
    l->ctx = tir_context_create();
    if (!l->ctx) return user_err("out of memory");
    if (tir_module_parse_file(l->ctx, path, &l->m, &d) != TIR_OK) {
        tir_diag_print(&d, stderr);
        l->m = NULL;
        unload(l);
        return EXIT_ERR;
    }
    return EXIT_OK;
}

static void list_funcs(const tir_module *m, FILE *out) {
    for (int i = 0; i < m->nfuncs; i++) fprintf(out, "%s@%s", i ? ", " : "", m->funcs[i]->name);
}

static const tir_func *find_func(const tir_module *m, const char *name) {
    if (name && name[0] == '@') name++;
    return tir_module_find(m, name);
}

static int no_such_func(const tir_module *m, const char *name) {
    fprintf(stderr, "error: no function @%s in %s (functions: ", name[0] == '@' ? name + 1 : name,
            m->filename ? m->filename : "the module");
    list_funcs(m, stderr);
    fputs(")\n", stderr);
    return EXIT_ERR;
}

static bool stage_known(const char *s) { return strcmp(s, "all") == 0 || tir_pipeline_find(s); }

static void list_stages(FILE *out) {
    for (int i = 0; i < tir_pipeline_count(); i++)
        fprintf(out, "%s%s", i ? " " : "", tir_pipeline_stage(i)->name);
}

/* ---------------------------------------------------------------- check */

static int cmd_check(int argc, char **argv) {
    int nfiles = 0, rc = EXIT_OK;
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1]) return usage_err("check", "unknown option '%s'", argv[i]);
    for (int i = 1; i < argc; i++) {
        loaded l;
        nfiles++;
        if (load(argv[i], &l) != EXIT_OK) {
            rc = EXIT_ERR;
            continue;
        }
        unload(&l);
    }
    if (!nfiles) return usage_err("check", "no input file");
    return rc;
}

/* ---------------------------------------------------------------- print */

typedef struct print_ctx {
    const char *after; /* NULL: every stage */
    const char *func;
    bool failed;
} print_ctx;

static void print_stage(const tir_stage *st, const tir_module *m, void *ud) {
    print_ctx *p = ud;
    if (p->failed || (p->after && strcmp(p->after, st->name) != 0)) return;
    char *text;
    if (p->func) {
        const tir_func *f = find_func(m, p->func);
        if (!f) {
            no_such_func(m, p->func);
            p->failed = true;
            return;
        }
        text = tir_print_func(f);
    } else {
        text = tir_module_print(m);
    }
    if (!text) {
        user_err("out of memory printing the module");
        p->failed = true;
        return;
    }
    if (!p->after) printf("# ---- after %s\n", st->name);
    fputs(text, stdout);
    tir_free(text);
}

static int cmd_print(int argc, char **argv) {
    const char *file = NULL, *after = NULL, *func = NULL;
    for (int i = 1; i < argc; i++) {
        int r;
        if ((r = opt(argc, argv, &i, "--after", &after)) || (r = opt(argc, argv, &i, "--func", &func))) {
            if (r < 0) return usage_err("print", "%s needs a value", argv[i]);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_err("print", "unknown option '%s'", argv[i]);
        } else if (file) {
            return usage_err("print", "more than one input file");
        } else {
            file = argv[i];
        }
    }
    if (!file) return usage_err("print", "no input file");
    if (!after) after = "verify"; /* the program as written; --after STAGE for later stages */
    if (!stage_known(after)) {
        fprintf(stderr, "tirc print: unknown stage '%s' (stages: ", after);
        list_stages(stderr);
        fputs(", or all)\n", stderr);
        return EXIT_USAGE;
    }
    loaded l;
    if (load(file, &l) != EXIT_OK) return EXIT_ERR;
    if (func && !find_func(l.m, func)) {
        no_such_func(l.m, func);
        unload(&l);
        return EXIT_ERR;
    }
    bool all = strcmp(after, "all") == 0;
    print_ctx p = {all ? NULL : after, func, false};
    tir_diag d;
    tir_status s = tir_pipeline_run(l.m, all ? NULL : after, print_stage, &p, &d);
    if (s != TIR_OK) tir_diag_print(&d, stderr);
    unload(&l);
    return s != TIR_OK || p.failed ? EXIT_ERR : EXIT_OK;
}

/* ---------------------------------------------------------------- run */

#define MAX_OPTS 64

typedef struct run_opts {
    const char *file, *func, *out_dir, *after, *backend;
    uint64_t seed;
    bool compare, save_inputs;
    int nin;
    struct { const char *name, *path; } in[MAX_OPTS];
    int ndim;
    struct { char name[64]; int64_t v; } dim[MAX_OPTS];
    tir_options gpu_opts; /* --matmul, --tf32 */
    bool gpu_set;
    char err[128];
} run_opts;

/* splitmix64: small, seedable, and the same on every machine */
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

static const char *param_name(const tir_value *p, char *buf, size_t n) {
    if (p->name) return p->name;
    snprintf(buf, n, "arg%d", p->index);
    return buf;
}

static void type_str(const tir_type *t, char *buf, size_t n) {
    if (tir_type_print(t, buf, n) < 0 && n) buf[0] = 0;
}

static void shape_str(const tir_tensor *t, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "%s[", tir_dtype_name(tir_tensor_dtype(t)));
    for (int i = 0; i < tir_tensor_rank(t) && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)tir_tensor_dim(t, i));
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* The unbound symbols of d, as "B, T" (empty when all are bound). */
static void unbound_syms(const tir_dim *d, const tir_bindings *b, char *buf, size_t n) {
    const char *syms[16];
    int ns = tir_dim_symbols(d, syms, 16);
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < ns && k < n; i++) {
        int64_t v;
        if (tir_bindings_get(b, syms[i], &v)) continue;
        k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? ", " : "", syms[i]);
    }
}

static int unbound_err(const char *what, const tir_dim *d, const tir_bindings *b) {
    char syms[256], dim[128];
    unbound_syms(d, b, syms, sizeof syms);
    if (tir_dim_print(d, dim, sizeof dim) < 0) dim[0] = 0;
    if (!syms[0]) return user_err("%s: dim %s is negative or cannot be evaluated", what, dim);
    const char *first_end = strchr(syms, ',');
    int first_len = first_end ? (int)(first_end - syms) : (int)strlen(syms);
    return user_err("%s: nothing binds %s: bind %.*s with --dim %.*s=...", what, syms, first_len,
                    syms, first_len, syms);
}

/* ---- which integer parameters are indices, and into a dim of which size */

typedef struct bound_ctx {
    int64_t bound;     /* smallest indexed size seen; -1 none */
    const tir_dim *unbound_dim; /* an indexed dim that could not be evaluated */
    tir_bindings unbound_b;
} bound_ctx;

static void note_bound(bound_ctx *bc, const tir_type *t, int64_t axis, const tir_bindings *b) {
    int ax;
    if (!tir_norm_axis(axis, t->rank, &ax)) return;
    int64_t v;
    if (tir_dim_eval(t->dims[ax], b, &v) != TIR_OK) {
        if (!bc->unbound_dim) {
            bc->unbound_dim = t->dims[ax];
            bc->unbound_b = *b;
        }
        return;
    }
    if (bc->bound < 0 || v < bc->bound) bc->bound = v;
}

/* Follows param pidx of f through movement ops and casts to the index operands of take,
 * scatter_add and cross_entropy, and into callees (with the callee's symbols bound from the
 * call's operand shapes). b binds f's symbols. */
static void scan_index_uses(const tir_func *f, int pidx, const tir_bindings *b, bound_ctx *bc,
                            int depth) {
    if (depth > 16 || pidx < 0 || pidx >= f->nparams) return;
    if (f->grad_of && f->nops == 0) {
        scan_index_uses(f->grad_of, pidx, b, bc, depth + 1);
        return;
    }
    bool *taint = calloc((size_t)(f->nvalues > 0 ? f->nvalues : 1), 1);
    if (!taint) return;
#define TAINTED(v) ((v) && (v)->id >= 0 && (v)->id < f->nvalues && taint[(v)->id])
    if (f->params[pidx]->id >= 0 && f->params[pidx]->id < f->nvalues) taint[f->params[pidx]->id] = true;
    for (int i = 0; i < f->nops; i++) {
        const tir_op *op = f->ops[i];
        switch (op->code) {
        case TIR_OP_TAKE:
        case TIR_OP_SCATTER_ADD:
            if (op->nin >= 2 && TAINTED(op->in[1]))
                note_bound(bc, &op->in[0]->type, tir_attr_int(op, "axis", 0), b);
            break;
        case TIR_OP_CROSS_ENTROPY:
            if (op->nin >= 2 && TAINTED(op->in[1])) note_bound(bc, &op->in[0]->type, -1, b);
            break;
        case TIR_OP_CALL:
            if (!op->callee) break;
            for (int j = 0; j < op->nin && j < op->callee->nparams; j++) {
                if (!TAINTED(op->in[j])) continue;
                tir_bindings cb = {0};
                char err[128];
                for (int k = 0; k < op->nin && k < op->callee->nparams; k++) {
                    const tir_type *ct = &op->callee->params[k]->type, *at = &op->in[k]->type;
                    for (int r = 0; r < ct->rank && r < at->rank; r++) {
                        int64_t v;
                        if (tir_dim_eval(at->dims[r], b, &v) == TIR_OK)
                            tir_dim_bind(ct->dims[r], v, &cb, err, sizeof err);
                    }
                }
                scan_index_uses(op->callee, j, &cb, bc, depth + 1);
            }
            break;
        default:
            break;
        }
        if (tir_ops[op->code].flags & TIR_F_MOVEMENT || op->code == TIR_OP_CAST) {
            bool any = false;
            for (int j = 0; j < op->nin; j++) any = any || TAINTED(op->in[j]);
            for (int j = 0; any && j < op->nout; j++)
                if (op->out[j]->id >= 0 && op->out[j]->id < f->nvalues) taint[op->out[j]->id] = true;
        }
    }
#undef TAINTED
    free(taint);
}

static void fill_random(tir_tensor *t, uint64_t seed, int pidx, int64_t index_bound) {
    uint64_t s = seed ^ (0x632be59bd9b4e019ull * (uint64_t)(pidx + 1));
    rng_next(&s);
    tir_dtype dt = tir_tensor_dtype(t);
    int64_t total = tir_tensor_numel(t);
    /* Past 4M elements the first 4M repeat: an optimizer step over a 1.5 B-parameter model would
     * otherwise spend minutes in this loop; a period of 4M elements is still far from any
     * pattern a kernel could exploit, and every element stays a draw of this generator. */
    const int64_t period = (int64_t)1 << 22;
    int64_t n = total > period ? period : total;
    bool any = false;
    for (int64_t i = 0; i < n; i++) {
        double v;
        if (dt == TIR_BOOL)
            v = (double)(rng_next(&s) >> 63);
        else if (tir_dtype_is_int(dt))
            v = (double)(rng_next(&s) % (uint64_t)(index_bound >= 0 ? (index_bound ? index_bound : 1) : 8));
        else
            v = rng_unit(&s) * 2.0 - 1.0;
        tir_tensor_set(t, i, v);
        any = any || tir_tensor_get(t, i) != 0;
    }
    /* never hand a program all zeros (it hides bugs); an index into a size-1 dim must be 0 */
    if (!any && n > 0 && index_bound != 0 && index_bound != 1) tir_tensor_set(t, 0, dt == TIR_BOOL ? 1 : 0.5);
    if (total > n) {
        unsigned char *b = tir_tensor_data(t);
        size_t have = tir_tensor_nbytes(t) / (size_t)total * (size_t)n, all = tir_tensor_nbytes(t);
        while (have < all) { /* doubling copies */
            size_t c = have < all - have ? have : all - have;
            memcpy(b + have, b, c);
            have += c;
        }
    }
}

/* Element-by-element conversion: .npy has no bf16/f8, so those parameters accept <f4 files. */
static tir_tensor *convert(tir_tensor *src, tir_dtype to) {
    int64_t dims[TIR_MAX_RANK];
    int rank = tir_tensor_rank(src);
    for (int i = 0; i < rank; i++) dims[i] = tir_tensor_dim(src, i);
    tir_tensor *t = tir_tensor_new(to, rank, dims);
    if (!t) return NULL;
    for (int64_t i = 0; i < tir_tensor_numel(src); i++) tir_tensor_set(t, i, tir_tensor_get(src, i));
    return t;
}

static int mkdir_p(const char *dir) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) return user_err("--out: path too long");
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return user_err("cannot create directory %s: %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return user_err("cannot create directory %s: %s", path, strerror(errno));
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return user_err("%s is not a directory", path);
    return EXIT_OK;
}

static void summarize(const char *label, const tir_tensor *t, const char *path) {
    char shape[256];
    shape_str(t, shape, sizeof shape);
    int64_t n = tir_tensor_numel(t), nan = 0, cnt = 0;
    double sum = 0, mn = INFINITY, mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        double v = tir_tensor_get(t, i);
        if (v != v) {
            nan++;
            continue;
        }
        cnt++;
        sum += v;
        if (v < mn) mn = v;
        if (v > mx) mx = v;
    }
    printf("%s: %s", label, shape);
    if (cnt) printf("  mean=%.6g min=%.6g max=%.6g", sum / (double)cnt, mn, mx);
    if (nan) printf("  nan=%lld", (long long)nan);
    printf("  -> %s\n", path);
}

static int parse_run_args(int argc, char **argv, run_opts *o) {
    memset(o, 0, sizeof *o);
    tir_options_init(&o->gpu_opts);
    o->out_dir = ".";
    o->backend = "ref";
    o->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        char *end;
        if ((r = opt(argc, argv, &i, "--func", &o->func)) || (r = opt(argc, argv, &i, "--out", &o->out_dir)) ||
            (r = opt(argc, argv, &i, "--after", &o->after)) ||
            (r = opt(argc, argv, &i, "--backend", &o->backend))) {
            if (r < 0) return usage_err("run", "%s needs a value", argv[i]);
        } else if ((r = opt(argc, argv, &i, "--seed", &v))) {
            if (r < 0) return usage_err("run", "--seed needs a value");
            errno = 0;
            o->seed = strtoull(v, &end, 0);
            if (!*v || *end || errno || v[0] == '-') return usage_err("run", "bad --seed '%s'", v);
        } else if ((r = opt(argc, argv, &i, "--in", &v))) {
            if (r < 0) return usage_err("run", "--in needs name=file.npy");
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1]) return usage_err("run", "--in wants name=file.npy, got '%s'", v);
            if (o->nin == MAX_OPTS) return usage_err("run", "too many --in");
            /* the name is kept as a pointer into argv with its length bounded by '=' */
            o->in[o->nin].name = v;
            o->in[o->nin].path = eq + 1;
            o->nin++;
        } else if ((r = opt(argc, argv, &i, "--dim", &v))) {
            if (r < 0) return usage_err("run", "--dim needs N=size");
            const char *eq = strchr(v, '=');
            size_t nl = eq ? (size_t)(eq - v) : 0;
            bool ok = eq && nl > 0 && nl < sizeof o->dim[0].name &&
                      ((v[0] >= 'A' && v[0] <= 'Z') || (v[0] >= 'a' && v[0] <= 'z') || v[0] == '_');
            for (size_t k = 1; ok && k < nl; k++)
                ok = (v[k] >= 'A' && v[k] <= 'Z') || (v[k] >= 'a' && v[k] <= 'z') ||
                     (v[k] >= '0' && v[k] <= '9') || v[k] == '_';
            long long val = 0;
            if (ok) {
                errno = 0;
                val = strtoll(eq + 1, &end, 10);
                ok = eq[1] && !*end && !errno && val >= 0;
            }
            if (!ok) return usage_err("run", "--dim wants SYMBOL=size (a size >= 0), got '%s'", v);
            if (o->ndim == MAX_OPTS) return usage_err("run", "too many --dim");
            memcpy(o->dim[o->ndim].name, v, nl);
            o->dim[o->ndim].name[nl] = 0;
            o->dim[o->ndim].v = val;
            o->ndim++;
        } else if ((r = tir_mm_parse_option(argc, argv, &i, &o->gpu_opts, o->err, sizeof o->err))) {
            if (r < 0) return usage_err("run", "%s", o->err);
            o->gpu_set = true;
        } else if (strcmp(argv[i], "--compare") == 0) {
            o->compare = true;
        } else if (strcmp(argv[i], "--save-inputs") == 0) {
            o->save_inputs = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_err("run", "unknown option '%s'", argv[i]);
        } else if (o->file) {
            return usage_err("run", "more than one input file");
        } else {
            o->file = argv[i];
        }
    }
    if (!o->file) return usage_err("run", "no input file");
    if (o->after && (!tir_pipeline_find(o->after)))
        return usage_err("run", "unknown stage '%s'", o->after);
    if (strcmp(o->backend, "ref") != 0 && strcmp(o->backend, "gpu") != 0)
        return usage_err("run", "unknown backend '%s' (ref or gpu)", o->backend);
    if (o->gpu_set && !o->compare && strcmp(o->backend, "gpu") != 0)
        return usage_err("run", "--matmul and --tf32 apply to the GPU (--backend gpu or --compare)");
    /* the GPU paths compile the module as written (compiling runs the pipeline itself) */
    if (o->after && (o->compare || strcmp(o->backend, "gpu") == 0))
        return usage_err("run", "--after applies to the interpreter alone (--backend ref)");
    return EXIT_OK;
}

/* the argument tensors of f: from --in files, else random; symbols bound on the way */
static int make_args(const run_opts *o, const tir_func *f, tir_tensor **args) {
    tir_bindings b = {0};
    bool given[1024] = {0};
    const char *given_as[1024] = {0}; /* the --in NAME=PATH text, for messages */
    char pn[32], ts[256], what[512];
    if (f->nparams > (int)(sizeof given / sizeof given[0])) return user_err("too many parameters");
    for (int k = 0; k < o->nin; k++) {
        size_t nl = (size_t)(strchr(o->in[k].name, '=') - o->in[k].name);
        const char *pname = o->in[k].name[0] == '%' ? o->in[k].name + 1 : o->in[k].name;
        size_t wl = o->in[k].name[0] == '%' ? nl - 1 : nl;
        int pi = -1;
        for (int i = 0; i < f->nparams; i++) {
            const char *nm = param_name(f->params[i], pn, sizeof pn);
            if (strlen(nm) == wl && memcmp(nm, pname, wl) == 0) pi = i;
        }
        if (pi < 0) {
            fprintf(stderr, "error: --in %.*s: @%s has no parameter %%%.*s (parameters:", (int)nl,
                    o->in[k].name, f->name, (int)wl, pname);
            for (int i = 0; i < f->nparams; i++)
                fprintf(stderr, " %%%s", param_name(f->params[i], pn, sizeof pn));
            fputs(")\n", stderr);
            return EXIT_ERR;
        }
        if (given[pi]) return user_err("--in %.*s is given twice", (int)nl, o->in[k].name);
        given[pi] = true;
        given_as[pi] = o->in[k].name;
        const tir_value *p = f->params[pi];
        type_str(&p->type, ts, sizeof ts);
        snprintf(what, sizeof what, "--in %s", o->in[k].name);
        tir_diag d;
        tir_tensor *t = NULL;
        if (tir_tensor_load_npy(o->in[k].path, &t, &d) != TIR_OK) {
            tir_diag_print(&d, stderr);
            return EXIT_ERR;
        }
        args[pi] = t;
        tir_dtype dt = tir_tensor_dtype(t), want = p->type.dtype;
        if (dt != want) {
            bool widened = dt == TIR_F32 && (want == TIR_BF16 || want == TIR_F8E4M3 || want == TIR_F8E5M2);
            if (!widened)
                return user_err("%s: the file holds %s data, parameter %%%s is %s", what,
                                tir_dtype_name(dt), param_name(p, pn, sizeof pn), ts);
            if (!(args[pi] = convert(t, want))) {
                tir_tensor_free(t);
                return user_err("out of memory");
            }
            tir_tensor_free(t);
            t = args[pi];
        }
        char got[256];
        shape_str(t, got, sizeof got);
        if (tir_tensor_rank(t) != p->type.rank)
            return user_err("%s: the file holds %s, parameter %%%s is %s (rank %d, not %d)", what, got,
                            param_name(p, pn, sizeof pn), ts, p->type.rank, tir_tensor_rank(t));
    }
    /* bind every given input's dims together, to a fixed point, so that the order of the
     * parameters never matters (f32[N*N] before f32[N]) */
    {
        const tir_type *types[sizeof given / sizeof given[0]];
        int64_t store[sizeof given / sizeof given[0]][TIR_MAX_RANK];
        const int64_t *sizes[sizeof given / sizeof given[0]];
        int which[sizeof given / sizeof given[0]], n = 0;
        for (int i = 0; i < f->nparams; i++) {
            if (!given[i]) continue;
            types[n] = &f->params[i]->type;
            for (int r = 0; r < f->params[i]->type.rank; r++) store[n][r] = tir_tensor_dim(args[i], r);
            sizes[n] = store[n];
            which[n++] = i;
        }
        int bp = 0, bd = 0;
        char err[256];
        if (n && tir_bind_params(n, types, sizes, &b, &bp, &bd, err, sizeof err) != TIR_OK) {
            const tir_value *p = f->params[which[bp]];
            char got[256];
            type_str(&p->type, ts, sizeof ts);
            shape_str(args[which[bp]], got, sizeof got);
            return user_err("--in %s: the file holds %s, parameter %%%s is %s: dim %d: %s",
                            given_as[which[bp]], got, param_name(p, pn, sizeof pn), ts, bd, err);
        }
    }
    for (int k = 0; k < o->ndim; k++) {
        int64_t have;
        if (tir_bindings_get(&b, o->dim[k].name, &have) && have != o->dim[k].v)
            return user_err("--dim %s=%lld: already bound: %s=%lld", o->dim[k].name,
                            (long long)o->dim[k].v, o->dim[k].name, (long long)have);
        if (tir_bindings_set(&b, o->dim[k].name, o->dim[k].v) != TIR_OK)
            return user_err("--dim %s: cannot bind (too many symbols?)", o->dim[k].name);
    }
    for (int i = 0; i < f->nparams; i++) {
        if (given[i]) continue;
        const tir_value *p = f->params[i];
        type_str(&p->type, ts, sizeof ts);
        snprintf(what, sizeof what, "parameter %%%s: %s", param_name(p, pn, sizeof pn), ts);
        int64_t dims[TIR_MAX_RANK];
        for (int r = 0; r < p->type.rank; r++)
            if (tir_dim_eval(p->type.dims[r], &b, &dims[r]) != TIR_OK)
                return unbound_err(what, p->type.dims[r], &b);
        bound_ctx bc = {-1, NULL, {0}};
        if (tir_dtype_is_int(p->type.dtype)) {
            scan_index_uses(f, i, &b, &bc, 0);
            if (bc.bound < 0 && bc.unbound_dim) {
                char dim[128];
                if (tir_dim_print(bc.unbound_dim, dim, sizeof dim) < 0) dim[0] = 0;
                snprintf(what, sizeof what, "parameter %%%s: %s indexes a dim of size %s", param_name(p, pn, sizeof pn),
                         ts, dim);
                return unbound_err(what, bc.unbound_dim, &bc.unbound_b);
            }
        }
        if (!(args[i] = tir_tensor_new(p->type.dtype, p->type.rank, dims)))
            return user_err("%s: cannot allocate the input (out of memory?)", what);
        fill_random(args[i], o->seed, i, bc.bound);
    }
    return EXIT_OK;
}

static int cmd_run(int argc, char **argv) {
    run_opts *o = malloc(sizeof *o);
    if (!o) return user_err("out of memory");
    int rc = parse_run_args(argc, argv, o);
    if (rc != EXIT_OK) {
        free(o);
        return rc;
    }
    loaded l;
    tir_tensor **args = NULL, **res = NULL;
    int nparams = 0, nres = 0;
    if ((rc = load(o->file, &l)) != EXIT_OK) goto out_opts;
    tir_diag d;
    bool gpu = o->compare || strcmp(o->backend, "gpu") == 0;
    const tir_func *f;
    if (!o->func) {
        if (l.m->nfuncs != 1) {
            fprintf(stderr, "tirc run: which function? pass --func (functions: ");
            list_funcs(l.m, stderr);
            fputs(")\n", stderr);
            rc = EXIT_USAGE;
            goto out;
        }
        f = l.m->funcs[0];
    } else if (!(f = find_func(l.m, o->func))) {
        rc = no_such_func(l.m, o->func);
        goto out;
    }
    nparams = f->nparams;
    nres = tir_func_num_results(l.m, f->name);
    args = calloc((size_t)nparams + 1, sizeof *args);
    res = calloc((size_t)(nres > 0 ? nres : 0) + 1, sizeof *res);
    if (!args || !res) {
        rc = user_err("out of memory");
        goto out;
    }
    if ((rc = make_args(o, f, args)) != EXIT_OK) goto out;
    if ((rc = mkdir_p(o->out_dir)) != EXIT_OK) goto out;
    char path[4096], pn[32];
    if (o->save_inputs)
        for (int i = 0; i < nparams; i++) {
            snprintf(path, sizeof path, "%s/in_%s.npy", o->out_dir, param_name(f->params[i], pn, sizeof pn));
            if (tir_tensor_save_npy(args[i], path, &d) != TIR_OK) {
                tir_diag_print(&d, stderr);
                rc = EXIT_ERR;
                goto out;
            }
        }
    /* Only now the pipeline: the inputs were made from the function as written, where an index
     * is still visibly an index (decomposition may turn cross_entropy's targets into compares).
     * The GPU paths compile, and so run the pipeline, themselves. */
    const char *fname = f->name;
    f = NULL;
    if (!gpu && tir_pipeline_run(l.m, o->after, NULL, NULL, &d) != TIR_OK) {
        tir_diag_print(&d, stderr);
        rc = EXIT_ERR;
        goto out;
    }
    tir_bindings dims = {0};
    for (int i = 0; i < o->ndim; i++) tir_bindings_set(&dims, o->dim[i].name, o->dim[i].v);
    tir_options opts = o->gpu_opts; /* --matmul, --tf32 */
    if (o->compare) {
        /* prints one line per output (error against the interpreter); res gets the GPU's results */
        rc = tir_cmd_compare(l.m, fname, &opts, &dims, nparams, args, stdout, res) ? EXIT_ERR : EXIT_OK;
    } else {
        tir_status s = gpu ? tir_cmd_run_gpu(l.m, fname, &opts, &dims, nparams, args, nres, res, &d)
                           : tir_interpret(l.m, fname, nparams, args, nres, res, &d);
        if (s != TIR_OK) {
            tir_diag_print(&d, stderr);
            rc = EXIT_ERR;
            goto out;
        }
    }
    for (int i = 0; i < nres && res[i]; i++) {
        char label[16];
        snprintf(path, sizeof path, "%s/out%d.npy", o->out_dir, i);
        snprintf(label, sizeof label, "out%d", i);
        if (tir_tensor_save_npy(res[i], path, &d) != TIR_OK) {
            tir_diag_print(&d, stderr);
            rc = EXIT_ERR;
            goto out;
        }
        summarize(label, res[i], path);
    }
out:
    for (int i = 0; args && i < nparams; i++) tir_tensor_free(args[i]);
    for (int i = 0; res && i < nres; i++) tir_tensor_free(res[i]);
    free(args);
    free(res);
    unload(&l);
out_opts:
    free(o);
    return rc;
}

/* ---------------------------------------------------------------- bench */

/* bench makes its inputs by run's rule (make_args), from its own options */
static int bench_inputs(const tir_func *f, const tir_input_spec *sp, tir_tensor **args) {
    run_opts *o = calloc(1, sizeof *o);
    if (!o) return user_err("out of memory");
    o->seed = sp->seed;
    for (int k = 0; k < sp->nin && k < MAX_OPTS; k++) {
        o->in[k].name = sp->in[k];
        o->in[k].path = strchr(sp->in[k], '=') + 1;
        o->nin++;
    }
    for (int k = 0; k < sp->ndim && k < MAX_OPTS; k++) {
        snprintf(o->dim[k].name, sizeof o->dim[k].name, "%s", sp->dim_names[k]);
        o->dim[k].v = sp->dim_values[k];
        o->ndim++;
    }
    int rc = make_args(o, f, args);
    free(o);
    return rc;
}

static int cmd_bench(int argc, char **argv) { return tir_cmd_bench(argc, argv, bench_inputs); }

/* ---------------------------------------------------------------- the verb table */

static const verb verbs[] = {
    {"check", cmd_check, "parse and verify .tir files",
     "usage: tirc check F.tir [F.tir ...]\n"
     "\n"
     "Parses and verifies each file. Prints nothing when all are well; otherwise the diagnostic\n"
     "(file:line:col: error: message, the source line and a caret) to stderr, and exits 1.\n"},
    {"print", cmd_print, "print the canonical IR after a pipeline stage",
     "usage: tirc print F.tir [--after STAGE|all] [--func F]\n"
     "\n"
     "Runs the pipeline up to STAGE (default: verify, the program as written) and prints the module as canonical,\n"
     "re-parsable .tir. --after all prints the module after every stage, each under a\n"
     "'# ---- after STAGE' line. --func F prints only function @F.\n"
     "Stages, in order: parse, verify, grad, inline, simplify, decompose, cleanup, tile, fuse,\n"
     "schedule, horizontal (`tirc explain` says why each kernel boundary is where it is).\n"},
    {"run", cmd_run, "run a function on the reference interpreter",
     "usage: tirc run F.tir --func F [--in NAME=x.npy ...] [--seed S] [--dim SYM=SIZE ...]\n"
     "                [--out DIR] [--save-inputs] [--after STAGE] [--backend ref|gpu] [--compare]\n"
     "                [--matmul=tir|cublas|auto] [--tf32]\n"
     "\n"
     "Runs @F on the reference interpreter, on the module after the IR pipeline (after STAGE with\n"
     "--after STAGE; --after parse runs the program as written), or on the GPU.\n"
     "  --in NAME=x.npy  the parameter %NAME from a .npy file (dtype must match; a bf16 or f8\n"
     "                   parameter takes <f4 data, as tir saves those dtypes as f32)\n"
     "  --seed S         parameters without --in get random data from seed S (default 1):\n"
     "                   floats uniform in [-1, 1); integers used as indices (take, scatter_add,\n"
     "                   cross_entropy targets) in [0, size of the indexed dim); other integers in\n"
     "                   [0, 8); bools random\n"
     "  --dim SYM=SIZE   binds a symbol that no --in input binds\n"
     "  --out DIR        writes result i to DIR/out<i>.npy (default: .; created if missing)\n"
     "  --save-inputs    also writes every input to DIR/in_<NAME>.npy\n"
     "  --backend gpu    compiles @F and runs it on the GPU (needs a CUDA driver); prints the\n"
     "                   run's peak device memory from its memory plan to stderr\n"
     "  --compare        runs both the interpreter and the GPU and prints each output's relative\n"
     "                   error against the tolerance of its dtype; writes the GPU's results; exits 1\n"
     "                   when an output is out of tolerance\n"
     TIR_MM_OPTIONS_HELP
     "Prints one line per result: its shape, dtype, mean, min and max.\n"},
    {"ptx", tir_cmd_ptx, "PTX of every kernel, with a kernel report",
     "usage: tirc ptx F.tir [--func F] [--arch sm_90a] [-o DIR] [--matmul=tir|cublas|auto] [--tf32]\n"
     "\n"
     "Compiles @F (every function without --func) and writes each kernel's PTX to DIR/<kernel>.ptx\n"
     "(DIR/<func>/<kernel>.ptx for several functions; stdout without -o), with a report per kernel:\n"
     "op, registers, shared and local memory and spills from `ptxas -v` ($TIR_PTXAS, ptxas on PATH,\n"
     "or /usr/local/cuda/bin/ptxas). Needs no GPU. A matmul step also gets a line saying who\n"
     "runs it (tir's kernel or cuBLASLt) and why; a step decided for cuBLASLt has no PTX.\n"
     TIR_MM_OPTIONS_HELP},
    {"gradcheck", tir_cmd_gradcheck, "reverse-mode gradients against central differences",
     "usage: tirc gradcheck F.tir --func F [--seed S] [--dim SYM=SIZE ...] [--eps E] [--tol T]\n"
     "                      [--range LO,HI] [--max-elems N]\n"
     "\n"
     "Checks the gradients of @F (a function returning one float scalar, with respect to all its\n"
     "float parameters; or a value_and_grad definition, with respect to its wrt list) against\n"
     "central finite differences, both on the interpreter in f64. Prints a PASS/FAIL line per\n"
     "parameter; exits 1 when one fails.\n"
     "  --seed S         random inputs (uniform in [-1, 1], or [LO, HI] with --range)\n"
     "  --dim SYM=SIZE   binds a symbol\n"
     "  --eps E          finite-difference step (default 1e-6)\n"
     "  --tol T          pass when |analytic - numeric| <= T * max(1, |numeric|) (default 1e-6)\n"
     "  --max-elems N    elements differenced per parameter, sampled when more (default 64)\n"},
    {"bench", cmd_bench, "GPU time per kernel and in total against the device's ceilings", NULL},
    {"explain", tir_cmd_explain, "what was fused and why, schedules, matmul executors, memory plan",
     NULL},
    {"fuzz", tir_cmd_fuzz, "compile-time fuzzing of random valid programs", NULL},
};
#define NVERBS ((int)(sizeof verbs / sizeof verbs[0]))

static void overview(FILE *out) {
    fputs("tirc: the tir tensor compiler\n\nusage: tirc VERB [options]   (tirc VERB --help for more)\n\n"
          "verbs:\n",
          out);
    for (int i = 0; i < NVERBS; i++) fprintf(out, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
    fputs("\npipeline stages (print --after, run --after, TIR_DUMP):", out);
    for (int i = 0; i < tir_pipeline_count(); i++) fprintf(out, " %s", tir_pipeline_stage(i)->name);
    fputs("\nexit status: 0 ok, 1 error in the program or its inputs, 2 bad command line\n", out);
}

/* help text goes to stdout with exit 0, whichever side holds it */
static int verb_help(const verb *v) {
    if (v->help) {
        fputs(v->help, stdout);
        return EXIT_OK;
    }
    char *argv[] = {(char *)v->name, (char *)"--help", NULL};
    return v->fn(2, argv);
}

static const verb *find_verb(const char *name) {
    for (int i = 0; i < NVERBS; i++)
        if (strcmp(verbs[i].name, name) == 0) return &verbs[i];
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        overview(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        overview(stdout);
        return EXIT_OK;
    }
    if (strcmp(name, "help") == 0) {
        if (argc < 3) {
            overview(stdout);
            return EXIT_OK;
        }
        name = argv[2];
        const verb *v = find_verb(name);
        if (!v) {
            fprintf(stderr, "tirc: unknown verb '%s' (see tirc --help)\n", name);
            return EXIT_USAGE;
        }
        return verb_help(v);
    }
    const verb *v = find_verb(name);
    if (!v) {
        fprintf(stderr, "tirc: unknown verb '%s' (see tirc --help)\n", name);
        return EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return verb_help(v);
    if (!v->fn) {
        fprintf(stderr, "tirc: '%s' is not built yet in this version of tir\n", v->name);
        return EXIT_USAGE;
    }
    return v->fn(argc - 1, argv + 1);
}
