/* keymap.c - open-addressing hash table of store keys (keymap.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "store/keymap.h"

static size_t home(const pc_store_key *k, size_t cap) {
    size_t h;
    memcpy(&h, k->b, sizeof h);
    return h & (cap - 1);
}

static pc_keymap_slot *find(const pc_keymap *m, const pc_store_key *k) {
    if (!m->cap) return NULL;
    for (size_t i = home(k, m->cap);; i = (i + 1) & (m->cap - 1)) {
        pc_keymap_slot *s = &m->slots[i];
        if (!s->val) return NULL;
        if (memcmp(s->key.b, k->b, sizeof k->b) == 0) return s;
    }
}

void *pc_keymap_get(const pc_keymap *m, const pc_store_key *k) {
    pc_keymap_slot *s = find(m, k);
    return s ? s->val : NULL;
}

static void place(pc_keymap_slot *slots, size_t cap, const pc_store_key *k, void *val) {
    size_t i = home(k, cap);
    while (slots[i].val) i = (i + 1) & (cap - 1);
    slots[i].key = *k;
    slots[i].val = val;
}

static int grow(pc_keymap *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    pc_keymap_slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].val) place(slots, cap, &m->slots[i].key, m->slots[i].val);
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int pc_keymap_put(pc_keymap *m, const pc_store_key *k, void *val) {
    pc_keymap_slot *s = find(m, k);
    if (s) {
        s->val = val;
        return 0;
    }
    if (2 * (m->n + 1) > m->cap && grow(m) != 0) return -1;
    place(m->slots, m->cap, k, val);
    m->n++;
    return 0;
}

/* Backward shift: later members of the probe run move up into the hole when
 * their home position allows, so no run is ever broken by an empty slot. */
void *pc_keymap_del(pc_keymap *m, const pc_store_key *k) {
    pc_keymap_slot *s = find(m, k);
    if (!s) return NULL;
    void *val = s->val;
    const size_t mask = m->cap - 1;
    size_t hole = (size_t)(s - m->slots);
    for (size_t i = (hole + 1) & mask; m->slots[i].val; i = (i + 1) & mask) {
        size_t h = home(&m->slots[i].key, m->cap);
        /* move i into the hole unless its home lies cyclically in (hole, i] */
        bool stays = hole <= i ? (h > hole && h <= i) : (h > hole || h <= i);
        if (!stays) {
            m->slots[hole] = m->slots[i];
            hole = i;
        }
    }
    m->slots[hole].val = NULL;
    m->n--;
    return val;
}

void pc_keymap_free(pc_keymap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}
