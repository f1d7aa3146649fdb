/* keymap.h - a hash table from store keys to pointers (open addressing, linear
 * probing, deletion by backward shift: no tombstones, so lookups stay short
 * however many entries come and go). Keys are SHA-256 digests, so their
 * first eight bytes are already a uniform hash. Not thread-safe: the owning
 * tier's mutex guards it. */
#ifndef PC_STORE_KEYMAP_H
#define PC_STORE_KEYMAP_H

#include <stddef.h>

#include "store/store.h"

typedef struct pc_keymap_slot {
    pc_store_key key;
    void *val; /* NULL: empty slot */
} pc_keymap_slot;

typedef struct pc_keymap {
    pc_keymap_slot *slots;
    size_t cap, n; /* cap is 0 or a power of two, kept >= 2n */
} pc_keymap;

void *pc_keymap_get(const pc_keymap *m, const pc_store_key *k);
/* Inserts or replaces (val must be non-NULL); -1 when out of memory. */
int pc_keymap_put(pc_keymap *m, const pc_store_key *k, void *val);
/* Removes k; returns its value or NULL. */
void *pc_keymap_del(pc_keymap *m, const pc_store_key *k);
void pc_keymap_free(pc_keymap *m);

#endif
