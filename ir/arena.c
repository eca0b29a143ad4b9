/* arena.c: bump allocator that owns a module's (or a context's) IR; freed in one call. */
#include "ir.h"

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} chunk;

struct tir_arena {
    chunk *head;
};

tir_arena *tir_arena_new(void) { return calloc(1, sizeof(tir_arena)); }

void tir_arena_free(tir_arena *a) {
    if (!a) return;
    for (chunk *c = a->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    free(a);
}

void *tir_arena_alloc(tir_arena *a, size_t n) {
    if (!a) return NULL;
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 64 * 1024 ? n : 64 * 1024;
        chunk *nc = malloc(sizeof(chunk) + cap);
        if (!nc) return NULL;
        nc->used = 0;
        nc->cap = cap;
        /* a large one-off block goes behind the head, so the head's free space stays usable */
        if (c && n > 64 * 1024) {
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->head = nc;
        }
        c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void *tir_arena_memdup(tir_arena *a, const void *p, size_t n) {
    void *q = tir_arena_alloc(a, n ? n : 1);
    if (q && n) memcpy(q, p, n);
    return q;
}

char *tir_arena_strndup(tir_arena *a, const char *s, size_t n) {
    if (!s) return NULL;
    char *q = tir_arena_alloc(a, n + 1);
    if (!q) return NULL;
    memcpy(q, s, n);
    q[n] = 0;
    return q;
}

char *tir_arena_strdup(tir_arena *a, const char *s) {
    return s ? tir_arena_strndup(a, s, strlen(s)) : NULL;
}
