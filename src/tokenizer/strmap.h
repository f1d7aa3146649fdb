/* strmap.h - fixed-capacity open-addressing hash map from a string, or a
 * pair of strings, to an int32.
 *
 * Keys are borrowed: the map stores pointers to bytes the owner keeps alive
 * (the tokenizer's text arenas). Capacity is set at init for the number of
 * keys expected, so the load factor stays <= 1/2 and lookups stay short. */
#ifndef PC_TOKENIZER_STRMAP_H
#define PC_TOKENIZER_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pc_strmap_slot {
    const char *a, *b; /* b is NULL for single-string keys */
    uint32_t alen, blen;
    uint32_t hash;
    int32_t value;
} pc_strmap_slot;

typedef struct pc_strmap {
    pc_strmap_slot *slots; /* cap slots; a slot with a == NULL is empty */
    size_t cap;            /* power of two */
    size_t n, max_n;
} pc_strmap;

bool pc_strmap_init(pc_strmap *m, size_t max_keys);
void pc_strmap_free(pc_strmap *m);
/* Adds (a,b) -> value unless the key is present (then the first value stays).
 * False only when more than max_keys keys are added. */
/* a must not be NULL (it marks occupied slots). */
bool pc_strmap_put(pc_strmap *m, const char *a, size_t alen, const char *b, size_t blen, int32_t value);
/* Value of (a,b), or -1. Pass b = NULL, blen = 0 for single-string keys. */
int32_t pc_strmap_get(const pc_strmap *m, const char *a, size_t alen, const char *b, size_t blen);

#endif
