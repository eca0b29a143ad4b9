/* cmd_explain.c: `tirc explain`, what the compiler made of a function and why, without a GPU:
 * which ops went into which kernel and why each kernel boundary is where it is (the fuse pass's
 * own account, tir_fuse_explain), the schedule each kernel follows, who runs each matmul and with
 * which tiling, and the memory plan (passes/plan_memory.c) for a binding of the symbols: slots,
 * what reuses what, and the peak. */
#include <stdio.h>

#include "cmd_gpu.h"
#include "compile.h"
#include "exec_matmul.h"
#ifdef TIR_WITH_LLVM
#include "matmul_mma.h"
#endif
#include "passes.h"
#include "pipeline.h"

static int explain_usage(FILE *out, int rc) {
    fputs("usage: tirc explain F.tir [--func F] [--dim SYM=SIZE ...] [--arch sm_90a] [--donate]\n"
          "                    [--matmul=tir|cublas|auto] [--tf32]\n"
          "\n"
          "Explains @F (the only function without --func) without running it:\n"
          "  fusion   which ops went into which kernel, and why each kernel boundary was placed\n"
          "  kernels  each kernel with the op or region it computes and its schedule; for matmuls\n"
          "           the executor (tir's kernel or cuBLASLt) and tir's tiling\n"
          "  memory   the memory plan under --dim bindings: the slots of one arena (values whose\n"
          "           lifetimes do not overlap share one; a result written over a dying operand\n"
          "           is 'in place'), and peak device memory for a host run (tirc run --backend\n"
          "           gpu) and a run on device tensors (with --donate: arguments may be\n"
          "           overwritten once dead, as tirc bench --donate)\n",
          out);
    return rc;
}

static void human(size_t n, char *buf, size_t len) {
    if (n >= (size_t)1 << 30) snprintf(buf, len, "%.2f GiB", (double)n / (1 << 30));
    else if (n >= (size_t)1 << 20) snprintf(buf, len, "%.2f MiB", (double)n / (1 << 20));
    else if (n >= 1024) snprintf(buf, len, "%.2f KiB", (double)n / 1024);
    else snprintf(buf, len, "%zu B", n);
}

static void print_dict(FILE *out, const tir_attr_value *a) {
    if (!a || a->kind != TIR_ATTR_DICT) {
        fputs("-", out);
        return;
    }
    for (int i = 0; i < a->u.dict.n; i++) {
        const tir_attr_value *e = &a->u.dict.v[i];
        fprintf(out, "%s%s=", i ? " " : "", e->name);
        if (e->kind == TIR_ATTR_STR) fprintf(out, "\"%s\"", e->u.s);
        else if (e->kind == TIR_ATTR_BOOL) fputs(e->u.b ? "true" : "false", out);
        else fprintf(out, "%lld", (long long)e->u.i);
    }
}

/* the fuse pass's account of every function; only @func's part is shown */
static tir_status fusion_section(tir_module *m, const char *func, FILE *out, tir_diag *d) {
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) return tir_diag_set(d, TIR_ERR_OOM, NULL, (tir_loc){0, 0}, "out of memory");
    tir_status s = tir_fuse_explain(m, mem, d);
    fclose(mem);
    if (s == TIR_OK) {
        bool in = false;
        size_t nl = strlen(func);
        for (char *line = text; line && *line;) {
            char *end = strchr(line, '\n');
            size_t n = end ? (size_t)(end - line) : strlen(line);
            if (line[0] == '@') in = strncmp(line + 1, func, nl) == 0 && line[1 + nl] == ':';
            if (in) fprintf(out, "%.*s\n", (int)n, line);
            line = end ? end + 1 : NULL;
        }
    }
    free(text);
    return s;
}

/* Steps follow f's ops in order; a region with no lowering of its own runs as one step per
 * member. The op of f each step comes from, and the op it lowers (that op, or the member). */
static const tir_op *op_of_step(const tir_func *f, const tir_program *p, int i, int *cursor,
                                int *member, const tir_op **lowered) {
    const char *name = tir_program_kernel_op(p, i);
    *lowered = NULL;
    while (*cursor < f->nops) {
        const tir_op *op = f->ops[*cursor];
        const tir_func *R = tir_op_region(op);
        if (!R || (*member == 0 && strcmp(name, tir_ops[op->code].name) == 0)) {
            (*cursor)++;
            *member = 0;
            *lowered = op;
            return op;
        }
        if (*member < R->nops) { /* a member of a region that was split */
            *lowered = R->ops[(*member)++];
            if (*member == R->nops) {
                (*cursor)++;
                *member = 0;
            }
            return op;
        }
        (*cursor)++;
        *member = 0;
    }
    return NULL;
}

static void kernels_section(const tir_func *f, const tir_program *p, const char *arch, FILE *out) {
    int cursor = 0, member = 0;
    for (int i = 0; i < tir_program_num_kernels(p); i++) {
        tir_kernel_info ki;
        tir_program_kernel_info(p, i, &ki);
        const tir_op *low = NULL;
        const tir_op *op = f ? op_of_step(f, p, i, &cursor, &member, &low) : NULL;
        fprintf(out, "  %-30s %-10s", ki.name, ki.op);
        if (!ki.ptx && !ki.cublas) {
            fputs(" view of its operand (no kernel)\n", out);
            continue;
        }
        fprintf(out, " block %dx%dx%d", ki.k->block[0], ki.k->block[1], ki.k->block[2]);
        const tir_attr_value *sched = op ? tir_op_attr(op, "schedule") : NULL;
        if (op && low && low != op)
            fprintf(out, "  (member of region %s, run op by op: the region has no lowering)",
                    tir_attr_str(op, "kernel", "?"));
        if (sched) {
            fputs(low && low != op ? "\n      region schedule: " : "  schedule: ", out);
            print_dict(out, sched);
        }
        fputc('\n', out);
        if (ki.executor) fprintf(out, "      executor: %s\n", ki.executor);
        if (ki.k->inplace_of && low) { /* per result: the one operand it may be written over */
            int shown = 0, more = 0;
            for (int r = 0; r < low->nout; r++) {
                if (ki.k->inplace_of[r] < 0) continue;
                if (shown == 12) {
                    more++;
                    continue;
                }
                fprintf(out, "%s %d<-%d", shown ? "" : "      may write in place (result<-operand):", r,
                        ki.k->inplace_of[r]);
                shown++;
            }
            if (more) fprintf(out, " and %d more", more);
            if (shown) fputc('\n', out);
        } else if (ki.k->inplace_ok) { /* codegen says a result may be written over these operands */
            fputs("      may write in place of operand", out);
            for (int j = 0; j < 32; j++)
                if (ki.k->inplace_ok & (1u << j)) fprintf(out, " %d", j);
            fputc('\n', out);
        }
#ifdef TIR_WITH_LLVM
        if (low && low->code == TIR_OP_MATMUL) {
            tir_codegen_options cg = {arch, 2};
            if (tir_matmul_mma_ok(low, &cg)) {
                tir_mma_config c;
                tir_mma_pick_config_for(low, arch, &c);
                fprintf(out, "      tir tiling: %dx%dx%d blocks, %dx%d %s, %d stages, group_m %d%s\n",
                        c.bm, c.bn, c.bk, c.warps_m, c.warps_n,
                        c.wgmma ? "warpgroups (wgmma)" : "warps (mma.sync)", c.stages, c.group_m,
                        c.tma ? ", TMA producer warpgroup" : "");
            } else {
                fputs("      tir tiling: the general (SIMT) matmul kernel\n", out);
            }
        }
#else
        (void)arch;
#endif
    }
}

static void plan_table(const tir_program *p, const tir_mem_plan *pl, const size_t *nb, FILE *out) {
    char h[32];
    fprintf(out, "  %-5s %-28s %10s %10s  %s\n", "slot", "where", "offset", "bytes", "holds");
    for (int k = 0; k < pl->nslots; k++) {
        const tir_mem_slot *s = &pl->slots[k];
        char where[64];
        if (s->where == TIR_MEM_ARENA && s->param >= 0)
            snprintf(where, sizeof where, "arena (%%%s copied in)", tir_program_param_name(p, s->param));
        else if (s->where == TIR_MEM_ARENA) snprintf(where, sizeof where, "arena");
        else if (s->where == TIR_MEM_PARAM)
            snprintf(where, sizeof where, "argument %%%s", tir_program_param_name(p, s->param));
        else snprintf(where, sizeof where, "own allocation");
        char off[24] = "-";
        if (s->where == TIR_MEM_ARENA) snprintf(off, sizeof off, "%zu", s->offset);
        human(s->size, h, sizeof h);
        fprintf(out, "  %-5d %-28s %10s %10zu  %d value%s (%s)\n", k, where, off, s->size, s->nvalues,
                s->nvalues == 1 ? "" : "s", h);
    }
    /* per kernel: where its results go */
    for (int i = 0; i < tir_program_num_kernels(p); i++) {
        int nin, nout;
        const int *in, *o;
        tir_program_step_values(p, i, &nin, &in, &nout, &o);
        fprintf(out, "  %-30s", tir_program_kernel_name(p, i));
        for (int j = 0; j < nout; j++) {
            int v = o[j];
            fprintf(out, "%s result %d (%zu B) -> slot %d", j ? "," : "", j, nb[v], pl->slot[v]);
            if (pl->inplace_of[v] >= 0)
                for (int q = 0; q < nin; q++)
                    if (in[q] == pl->inplace_of[v]) {
                        fprintf(out, " in place of operand %d", q);
                        break;
                    }
        }
        fputc('\n', out);
    }
}

static void plan_summary(const char *what, const tir_mem_plan *pl, FILE *out) {
    char a[32], o[32], pa[32], pk[32], nv[32], lv[32];
    human(pl->live_bytes, lv, sizeof lv);
    human(pl->arena_bytes, a, sizeof a);
    human(pl->own_bytes, o, sizeof o);
    human(pl->param_bytes, pa, sizeof pa);
    human(pl->peak_bytes, pk, sizeof pk);
    human(pl->naive_bytes, nv, sizeof nv);
    fprintf(out, "  %s: peak %s = arena %s + results %s + arguments %s; %d in place, %d reused "
                 "(a buffer per value: %s; live at once at most: %s)\n",
            what, pk, a, o, pa, pl->n_inplace, pl->n_reused, nv, lv);
}

int tir_cmd_explain(int argc, char **argv) {
    const char *file = NULL, *func = NULL, *arch = "sm_90a";
    tir_options opts;
    tir_options_init(&opts);
    tir_bindings dims = {0};
    char names[64][64];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char merr[128];
        int mr = tir_mm_parse_option(argc, argv, &i, &opts, merr, sizeof merr);
        if (mr < 0) {
            fprintf(stderr, "tirc explain: %s\n", merr);
            return 2;
        }
        if (mr > 0) continue;
        const char *v = NULL;
        if (strcmp(a, "--func") == 0 && i + 1 < argc) func = argv[++i];
        else if (strncmp(a, "--func=", 7) == 0) func = a + 7;
        else if (strcmp(a, "--arch") == 0 && i + 1 < argc) arch = argv[++i];
        else if (strncmp(a, "--arch=", 7) == 0) arch = a + 7;
        else if (strcmp(a, "--donate") == 0) opts.donate_args = true;
        else if ((strcmp(a, "--dim") == 0 && i + 1 < argc && (v = argv[++i])) ||
                 (strncmp(a, "--dim=", 6) == 0 && (v = a + 6))) {
            const char *eq = strchr(v, '=');
            char *end = NULL;
            long long n = eq ? strtoll(eq + 1, &end, 10) : -1;
            size_t nl = eq ? (size_t)(eq - v) : 0;
            if (!eq || nl == 0 || nl >= sizeof names[0] || !eq[1] || *end || n < 0 || dims.n >= 64) {
                fprintf(stderr, "tirc explain: --dim wants SYMBOL=size (a size >= 0), got '%s'\n", v);
                return 2;
            }
            memcpy(names[dims.n], v, nl);
            names[dims.n][nl] = 0;
            if (tir_bindings_set(&dims, names[dims.n], n) != TIR_OK) {
                fprintf(stderr, "tirc explain: --dim %s: bound twice\n", v);
                return 2;
            }
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            return explain_usage(stdout, 0);
        } else if (a[0] == '-' || file) {
            fprintf(stderr, "tirc explain: unexpected argument '%s'\n", a);
            return explain_usage(stderr, 2);
        } else {
            file = a;
        }
    }
    if (!file) return explain_usage(stderr, 2);
    opts.arch = arch;

    tir_context *ctx = tir_context_create();
    if (!ctx) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    tir_module *m = NULL;
    tir_program *p = NULL;
    tir_diag d;
    int rc = 1;
    char *fname = NULL;
    if (tir_module_parse_file(ctx, file, &m, &d) != TIR_OK) {
        tir_diag_print(&d, stderr);
        goto out;
    }
    if (!func) {
        if (tir_module_num_funcs(m) != 1) {
            fprintf(stderr, "tirc explain: which function? pass --func (%s has %d)\n", file,
                    tir_module_num_funcs(m));
            rc = 2;
            goto out;
        }
        func = tir_module_func_name(m, 0);
    }
    if (func[0] == '@') func++;
    if (!tir_module_find(m, func)) {
        fprintf(stderr, "error: no function @%s in %s\n", func, file);
        goto out;
    }
    if (!(fname = strdup(func))) goto out;
    /* fusion is explained on the module as the fuse stage finds it */
    const char *before_fuse = "cleanup";
    for (int i = 1; i < tir_pipeline_count(); i++)
        if (strcmp(tir_pipeline_stage(i)->name, "fuse") == 0) before_fuse = tir_pipeline_stage(i - 1)->name;
    if (tir_pipeline_run(m, before_fuse, NULL, NULL, &d) != TIR_OK) {
        tir_diag_print(&d, stderr);
        goto out;
    }
    printf("== fusion: which ops share a kernel, and why each boundary\n");
    if (fusion_section(m, fname, stdout, &d) != TIR_OK) {
        tir_diag_print(&d, stderr);
        goto out;
    }
    if (tir_compile(m, fname, &opts, &p, &d) != TIR_OK) {
        tir_diag_print(&d, stderr);
        goto out;
    }
    printf("== kernels of @%s (%s), in launch order\n", fname, arch);
    kernels_section(tir_module_find(m, fname), p, arch, stdout);

    printf("== memory plan");
    for (int i = 0; i < dims.n; i++) printf("%s%s=%lld", i ? " " : " (", dims.names[i], (long long)dims.values[i]);
    printf("%s\n", dims.n ? ")" : "");
    tir_mem_plan pl;
    size_t *nb = NULL;
    if (tir_program_plan_memory(p, &dims, false, &pl, &nb, &d) != TIR_OK) {
        printf("  no sizes: %s\n", d.msg);
        rc = 0;
        goto out;
    }
    plan_table(p, &pl, nb, stdout);
    plan_summary("host run (arguments copied into the arena)", &pl, stdout);
    tir_mem_plan_free(&pl);
    free(nb);
    if (tir_program_plan_memory(p, &dims, true, &pl, NULL, &d) == TIR_OK) {
        plan_summary(opts.donate_args ? "device run, arguments donated"
                                      : "device run (arguments in the caller's buffers)",
                     &pl, stdout);
        tir_mem_plan_free(&pl);
    }
    rc = 0;
out:
    free(fname);
    tir_program_free(p);
    tir_module_free(m);
    tir_context_destroy(ctx);
    return rc;
}
