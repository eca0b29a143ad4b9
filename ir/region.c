/* region.c: the pieces of IR that fused regions need beyond ordinary functions: a region (a
 * tir_func owned by one fused op, outside the module's function list) and dict attributes (the
 * region's schedule=). The rules a region obeys are checked by ir/verify.c; docs/tir.md §11
 * states them. */
#include <stdio.h>

#include "ir.h"

tir_func *tir_region_new(tir_func *parent, const char *kernel, tir_loc loc) {
    if (!parent || !parent->module) return NULL;
    tir_module *m = parent->module;
    tir_func *r = tir_arena_alloc(m->arena, sizeof *r);
    if (!r) return NULL;
    /* "@parent.kernel" in diagnostics, read as a function nested in its parent; never looked
     * up by name, so it need not be unique */
    size_t n = strlen(parent->name) + strlen(kernel ? kernel : "fused") + 2;
    char *name = tir_arena_alloc(m->arena, n);
    if (!name) return NULL;
    snprintf(name, n, "%s.%s", parent->name, kernel ? kernel : "fused");
    r->module = m;
    r->name = name;
    r->loc = loc;
    return r;
}

static bool copy_entry(tir_arena *a, tir_attr_value *dst, const tir_attr_value *src) {
    *dst = *src;
    if (src->name && !(dst->name = tir_arena_strdup(a, src->name))) return false;
    if (src->kind == TIR_ATTR_STR && src->u.s && !(dst->u.s = tir_arena_strdup(a, src->u.s)))
        return false;
    return true;
}

tir_attr_value tir_a_dict(tir_module *m, const char *name, int n, const tir_attr_value *entries) {
    tir_attr_value a = {.name = name, .kind = TIR_ATTR_DICT};
    if (n <= 0 || !entries) return a;
    tir_attr_value *v = tir_arena_alloc(m->arena, (size_t)n * sizeof *v);
    if (!v) return a;
    for (int i = 0; i < n; i++)
        if (!copy_entry(m->arena, &v[i], &entries[i])) return a;
    a.u.dict.n = n;
    a.u.dict.v = v;
    return a;
}

const tir_attr_value *tir_dict_get(const tir_attr_value *a, const char *key) {
    if (!a || a->kind != TIR_ATTR_DICT || !key) return NULL;
    for (int i = 0; i < a->u.dict.n; i++)
        if (a->u.dict.v[i].name && strcmp(a->u.dict.v[i].name, key) == 0) return &a->u.dict.v[i];
    return NULL;
}
