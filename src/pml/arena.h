/* arena.h - the bump allocator that owns one parsed PML document.
 *
 * Invariants: blocks are never moved or freed before pc_pml_arena_free, so
 * every pointer handed out stays valid for the arena's life; allocations are
 * aligned for any scalar type; an arena refuses to grow past its budget. */
#ifndef PC_PML_ARENA_H
#define PC_PML_ARENA_H

#include <stddef.h>

typedef struct pc_pml_arena pc_pml_arena;

/* NULL when out of memory. budget bounds the bytes of all blocks together. */
pc_pml_arena *pc_pml_arena_new(size_t budget);
void pc_pml_arena_free(pc_pml_arena *a);

/* Zeroed memory, or NULL when out of memory or over budget. */
void *pc_pml_arena_alloc(pc_pml_arena *a, size_t size);

/* A NUL-terminated copy of s[0..n), or NULL. */
char *pc_pml_arena_strndup(pc_pml_arena *a, const char *s, size_t n);

#endif
