/* plan_memory.c: where every value of a compiled program lives during one run, for one binding
 * of the symbols: liveness-based reuse of storage, in-place results, donated arguments, and the
 * bytes that adds up to (the executor in compiler/compile.c allocates one arena from it).
 *
 * requires: the program's steps in launch order, each naming its operand and result values by
 *           id; every value's size in bytes under the binding; for each step the operands a
 *           result may overwrite (tir_kernel.inplace_ok: only codegen knows that its kernel reads
 *           an element of that operand by the thread that writes it, before it writes it, and
 *           that the operand is not read through the non-coherent cache), or, where the kernel
 *           pairs them (tir_kernel.inplace_of), the one operand each result may overwrite.
 * maintains: the meaning of the program: a value's storage is never shared with a value that is
 *           live at the same time, except a result written in place of an operand that dies at
 *           that very step (the kernel allows it) and a view (alias_of) of its operand.
 * breaks:   nothing; it is an analysis (the IR is not touched).
 *
 * The rules, conservatively:
 *   - a value is live from the step that makes it (parameters: before the first step) to the
 *     last step that reads it or a view of it; function results and views of them to the end;
 *   - a view (a reshape that aliases its operand, alias_of) is the same storage as its operand;
 *   - a result r of step i takes the storage of operand j in place when: the kernel sets bit j
 *     of inplace_ok, or pairs r with j (inplace_of[r] == j; then no other operand); the operand
 *     (with its views) is read by no later step and is no function result; it is operand j
 *     only (a value passed twice might be read through the other parameter after the write);
 *     result and operand have the same dims and element size (so "the same index" is the same
 *     byte); the storage is the run's (an arena slot), or a donated argument's; and no other
 *     result of the step took it (two results paired with one operand: the first);
 *   - otherwise a result takes a free slot (its occupants all died before step i: a slot freed
 *     by step i itself is still being read by it), best fit first, growing an arena slot when
 *     none is big enough, or a new slot. A donated argument's buffer is a free slot once the
 *     argument is dead, for values that fit in it;
 *   - results handed to the caller (device runs) get allocations of their own, unless they take a
 *     donated argument's buffer in place.
 * Slots are laid out one after another in the arena, each 256-byte aligned. The plan reports the
 * arena, the results' own and the arguments' bytes (their sum is the run's peak), what a buffer
 * per value would take, and the most bytes live at once, the bound no placement beats (greedy
 * slots come within a few percent of it on the examples; an offset-packing allocator could close
 * the rest). */
#include <limits.h>
#include <stdio.h>

#include "passes.h"

enum { ALIGN = 256 };

typedef struct slot_state {
    int last;   /* last step that reads the current occupants; INT_MAX: held to the end */
    bool taken; /* claimed in place by a result of the current step */
} slot_state;

static size_t align_up(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

static tir_status oom(tir_diag *d) {
    return tir_diag_set(d, TIR_ERR_OOM, NULL, (tir_loc){0, 0}, "out of host memory");
}

void tir_mem_plan_free(tir_mem_plan *p) {
    if (!p) return;
    free(p->slot);
    free(p->inplace_of);
    free(p->slots);
    memset(p, 0, sizeof *p);
}

/* operand j's type fits result r's element for element */
static bool same_layout(const tir_mem_problem *pb, int v, int w) {
    if (pb->nbytes[v] != pb->nbytes[w]) return false;
    if (!pb->types) return true;
    const tir_type *a = &pb->types[v], *b = &pb->types[w];
    if (a->rank != b->rank || tir_dtype_size(a->dtype) != tir_dtype_size(b->dtype)) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false; /* dims are interned: equal is the same pointer */
    return true;
}

static int new_slot(tir_mem_plan *p, tir_mem_where where, int param, size_t size) {
    tir_mem_slot *s = &p->slots[p->nslots];
    memset(s, 0, sizeof *s);
    s->where = where;
    s->param = param;
    s->size = size;
    return p->nslots++;
}

tir_status tir_plan_memory(const tir_mem_problem *pb, tir_mem_plan *p, tir_diag *d) {
    memset(p, 0, sizeof *p);
    if (!pb || pb->nvalues < 0 || (pb->nvalues && !pb->nbytes))
        return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "plan memory: no problem");
    int nv = pb->nvalues;
    size_t n1 = (size_t)(nv ? nv : 1);
    int *root = malloc(n1 * sizeof *root);      /* the value whose storage a view uses */
    int *last = malloc(n1 * sizeof *last);      /* per root: last step reading it (or a view) */
    int *def = malloc(n1 * sizeof *def);        /* per value: the step making it; -1 a parameter; -2 none */
    bool *is_res = calloc(n1, sizeof *is_res);  /* per root: a function result is (a view of) it */
    int *uses = calloc(n1, sizeof *uses);       /* scratch: times a value is an operand of a step */
    slot_state *ss = calloc(n1 + (size_t)pb->nparams + 1, sizeof *ss);
    p->slot = malloc(n1 * sizeof *p->slot);
    p->inplace_of = malloc(n1 * sizeof *p->inplace_of);
    p->slots = calloc(n1 + (size_t)pb->nparams + 1, sizeof *p->slots);
    p->nvalues = nv;
    tir_status st = TIR_OK;
    if (!root || !last || !def || !is_res || !uses || !ss || !p->slot || !p->inplace_of || !p->slots) {
        st = oom(d);
        goto out;
    }
    for (int v = 0; v < nv; v++) {
        root[v] = v;
        last[v] = -1;
        def[v] = -2;
        p->slot[v] = -1;
        p->inplace_of[v] = -1;
    }
#define BAD_ID(v) ((v) < 0 || (v) >= nv)
    for (int i = 0; i < pb->nparams; i++) {
        if (BAD_ID(pb->params[i])) goto bad;
        def[pb->params[i]] = -1;
    }
    /* views first, so that a read of a view keeps its root alive */
    for (int i = 0; i < pb->nsteps; i++) {
        const tir_mem_step *s = &pb->steps[i];
        for (int j = 0; j < s->nin; j++)
            if (BAD_ID(s->in[j])) goto bad;
        for (int j = 0; j < s->nout; j++) {
            if (BAD_ID(s->out[j])) goto bad;
            def[s->out[j]] = i;
        }
        if (s->alias_of >= 0) {
            if (s->alias_of >= s->nin || s->nout != 1) goto bad;
            root[s->out[0]] = root[s->in[s->alias_of]];
        }
    }
    for (int i = 0; i < pb->nsteps; i++) {
        const tir_mem_step *s = &pb->steps[i];
        for (int j = 0; j < s->nin; j++)
            if (last[root[s->in[j]]] < i) last[root[s->in[j]]] = i;
        for (int j = 0; j < s->nout; j++) /* a value nobody reads still needs its storage while made */
            if (last[root[s->out[j]]] < i) last[root[s->out[j]]] = i;
    }
    for (int i = 0; i < pb->nres; i++) {
        if (BAD_ID(pb->res[i])) goto bad;
        last[root[pb->res[i]]] = INT_MAX;
        is_res[root[pb->res[i]]] = true;
    }

    /* parameters: the caller's buffers, or copied into the arena when read */
    for (int i = 0; i < pb->nparams; i++) {
        int v = pb->params[i];
        if (p->slot[v] >= 0) continue; /* the same value twice */
        if (pb->params_external) {
            p->slot[v] = new_slot(p, TIR_MEM_PARAM, i, pb->nbytes[v]);
            p->param_bytes += pb->nbytes[v];
        } else if (last[v] >= 0) {
            p->slot[v] = new_slot(p, TIR_MEM_ARENA, i, pb->nbytes[v]);
        } else {
            continue; /* never read: never copied over */
        }
        ss[p->slot[v]].last = last[v];
        p->slots[p->slot[v]].nvalues++;
        p->naive_bytes += align_up(pb->nbytes[v]);
    }

    for (int i = 0; i < pb->nsteps; i++) {
        const tir_mem_step *s = &pb->steps[i];
        for (int k = 0; k < p->nslots; k++) ss[k].taken = false;
        for (int j = 0; j < s->nin; j++) uses[s->in[j]] = 0;
        for (int j = 0; j < s->nin; j++) uses[s->in[j]]++;
        for (int r = 0; r < s->nout; r++) {
            int w = s->out[r];
            if (root[w] != w) { /* a view: its operand's storage */
                p->slot[w] = p->slot[root[w]];
                continue;
            }
            if (def[w] != i) continue; /* made twice: the first making owns it */
            bool own = is_res[w] && pb->results_external;
            p->naive_bytes += align_up(pb->nbytes[w]);
            int pick = -1;
            /* in place of a dying operand: any the mask allows, or the one the kernel pairs r with
             * (the pairing is how a kernel says that r over another operand is not safe) */
            int j0 = 0, j1 = s->nin < 32 ? s->nin : 32;
            if (s->inplace_of) {
                j0 = s->inplace_of[r];
                j1 = j0 >= 0 && j0 < s->nin ? j0 + 1 : j0;
            }
            for (int j = j0; j < j1 && pick < 0; j++) {
                int v = s->in[j], sl = p->slot[root[v]];
                if (!s->inplace_of && !(s->inplace_ok & (1u << j))) continue;
                if (sl < 0 || ss[sl].taken) continue;
                if (root[v] != v || last[v] != i || is_res[v] || uses[v] != 1) continue;
                if (!same_layout(pb, v, w)) continue;
                const tir_mem_slot *so = &p->slots[sl];
                bool ok = so->where == TIR_MEM_ARENA ? !own
                        : so->where == TIR_MEM_PARAM && pb->donatable && pb->donatable[so->param];
                if (!ok) continue;
                pick = sl;
                p->inplace_of[w] = v;
                p->n_inplace++;
            }
            /* a slot free before this step: the smallest that fits, else the biggest arena slot */
            if (pick < 0 && !own) {
                int fit = -1, grow = -1;
                for (int k = 0; k < p->nslots; k++) {
                    const tir_mem_slot *so = &p->slots[k];
                    if (ss[k].last >= i) continue;
                    bool arena = so->where == TIR_MEM_ARENA;
                    bool donated = so->where == TIR_MEM_PARAM && pb->donatable && pb->donatable[so->param];
                    if (!arena && !donated) continue;
                    if (so->size >= pb->nbytes[w]) {
                        if (fit < 0 || so->size < p->slots[fit].size) fit = k;
                    } else if (arena && (grow < 0 || so->size > p->slots[grow].size)) {
                        grow = k;
                    }
                }
                pick = fit >= 0 ? fit : grow;
                if (pick >= 0) p->n_reused++;
            }
            if (pick < 0) pick = new_slot(p, own ? TIR_MEM_OWN : TIR_MEM_ARENA, -1, pb->nbytes[w]);
            tir_mem_slot *so = &p->slots[pick];
            if (so->size < pb->nbytes[w]) so->size = pb->nbytes[w];
            so->nvalues++;
            ss[pick].last = last[w];
            ss[pick].taken = true;
            p->slot[w] = pick;
        }
    }
    /* views of parameters, and of values made before them */
    for (int v = 0; v < nv; v++)
        if (p->slot[v] < 0 && root[v] != v) p->slot[v] = p->slot[root[v]];

    for (int k = 0; k < p->nslots; k++) {
        tir_mem_slot *so = &p->slots[k];
        if (so->where == TIR_MEM_ARENA) {
            so->offset = p->arena_bytes;
            p->arena_bytes += align_up(so->size);
        } else if (so->where == TIR_MEM_OWN) {
            p->own_bytes += so->size;
        }
    }
    p->peak_bytes = p->arena_bytes + p->own_bytes + p->param_bytes;
    /* the most bytes live at once (parameters from before the first step, results to the end; a
     * result written in place counted with its operand): what any placement needs at least */
    {
        int64_t *delta = calloc((size_t)pb->nsteps + 2, sizeof *delta);
        if (!delta) {
            st = oom(d);
            goto out;
        }
        for (int v = 0; v < nv; v++) {
            if (root[v] != v || p->slot[v] < 0 || def[v] == -2) continue;
            int from = def[v] + 1, to = last[v] == INT_MAX ? pb->nsteps : last[v] + 1;
            if (p->inplace_of[v] >= 0) from++; /* it shares its operand's bytes at its own step */
            if (to < from) continue;
            delta[from] += (int64_t)align_up(pb->nbytes[v]);
            delta[to + 1 > pb->nsteps + 1 ? pb->nsteps + 1 : to + 1] -= (int64_t)align_up(pb->nbytes[v]);
        }
        int64_t live = 0;
        for (int i = 0; i <= pb->nsteps; i++) {
            live += delta[i];
            if (live > (int64_t)p->live_bytes) p->live_bytes = (size_t)live;
        }
        free(delta);
    }
    goto out;
bad:
    st = tir_diag_set(d, TIR_ERR_INTERNAL, NULL, (tir_loc){0, 0}, "plan memory: a value id out of range");
#undef BAD_ID
out:
    free(root);
    free(last);
    free(def);
    free(is_res);
    free(uses);
    free(ss);
    if (st != TIR_OK) tir_mem_plan_free(p);
    return st;
}
