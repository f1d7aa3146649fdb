/* arena.c - bump allocator for parsed PML documents (see arena.h).
 *
 * A document's nodes and strings are many and small and all die together,
 * so they are carved from large blocks and released in one sweep. */
#include "pml/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK (64u << 10)
#define ARENA_ALIGN 16u

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap; /* bytes of data[] */
    _Alignas(16) unsigned char data[];
} arena_block;

struct pc_pml_arena {
    arena_block *head; /* block being carved; older ones follow */
    size_t total;      /* bytes of all blocks */
    size_t budget;
};

pc_pml_arena *pc_pml_arena_new(size_t budget) {
    pc_pml_arena *a = calloc(1, sizeof *a);
    if (a) a->budget = budget;
    return a;
}

void pc_pml_arena_free(pc_pml_arena *a) {
    if (!a) return;
    arena_block *b = a->head;
    while (b) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}

static arena_block *arena_grow(pc_pml_arena *a, size_t need) {
    size_t cap = need > ARENA_BLOCK ? need : ARENA_BLOCK;
    if (cap > a->budget || a->total > a->budget - cap) return NULL;
    arena_block *b = malloc(sizeof *b + cap);
    if (!b) return NULL;
    b->used = 0;
    b->cap = cap;
    /* A large one-off block goes behind the head so the head keeps its room. */
    if (a->head && need > ARENA_BLOCK) {
        b->next = a->head->next;
        a->head->next = b;
    } else {
        b->next = a->head;
        a->head = b;
    }
    a->total += cap;
    return b;
}

void *pc_pml_arena_alloc(pc_pml_arena *a, size_t size) {
    if (size > SIZE_MAX - ARENA_ALIGN) return NULL;
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (size == 0) size = ARENA_ALIGN;
    arena_block *b = a->head;
    if (!b || b->cap - b->used < size) {
        b = arena_grow(a, size);
        if (!b) return NULL;
    }
    void *p = b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

char *pc_pml_arena_strndup(pc_pml_arena *a, const char *s, size_t n) {
    if (n == SIZE_MAX) return NULL;
    char *d = pc_pml_arena_alloc(a, n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = '\0';
    return d;
}
