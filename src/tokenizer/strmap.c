/* strmap.c - open addressing with linear probing; FNV-1a hashing.
 *
 * A pair key hashes its parts with a separator step, so ("ab","c") and
 * ("a","bc") differ; equality compares both parts. Keys are never removed. */
#include "tokenizer/strmap.h"

#include <stdlib.h>
#include <string.h>

static uint32_t fnv1a(uint32_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static uint32_t key_hash(const char *a, size_t alen, const char *b, size_t blen) {
    uint32_t h = fnv1a(2166136261u, a, alen);
    if (b) {
        h = (h ^ 0xFFu) * 16777619u;
        h = fnv1a(h, b, blen);
    }
    return h;
}

bool pc_strmap_init(pc_strmap *m, size_t max_keys) {
    size_t cap = 16;
    while (cap < max_keys * 2) cap *= 2;
    m->slots = calloc(cap, sizeof *m->slots);
    m->cap = cap;
    m->n = 0;
    m->max_n = max_keys;
    return m->slots != NULL;
}

void pc_strmap_free(pc_strmap *m) {
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = m->max_n = 0;
}

static bool slot_matches(const pc_strmap_slot *s, uint32_t h, const char *a, size_t alen, const char *b,
                         size_t blen) {
    if (s->hash != h || s->alen != alen || (s->b == NULL) != (b == NULL)) return false;
    if (memcmp(s->a, a, alen) != 0) return false;
    return !b || (s->blen == blen && memcmp(s->b, b, blen) == 0);
}

bool pc_strmap_put(pc_strmap *m, const char *a, size_t alen, const char *b, size_t blen, int32_t value) {
    uint32_t h = key_hash(a, alen, b, blen);
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        pc_strmap_slot *s = &m->slots[i];
        if (!s->a) {
            if (m->n >= m->max_n) return false;
            *s = (pc_strmap_slot){a, b, (uint32_t)alen, (uint32_t)blen, h, value};
            m->n++;
            return true;
        }
        if (slot_matches(s, h, a, alen, b, blen)) return true;
    }
}

int32_t pc_strmap_get(const pc_strmap *m, const char *a, size_t alen, const char *b, size_t blen) {
    if (!m->slots) return -1;
    uint32_t h = key_hash(a, alen, b, blen);
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const pc_strmap_slot *s = &m->slots[i];
        if (!s->a) return -1;
        if (slot_matches(s, h, a, alen, b, blen)) return s->value;
    }
}
