/* prefix_index.c - a set-associative table of the prefix cache's entries by
 * their parent prefix; see prefix_index.h. */
#include "engine/prefix_index.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
    uint8_t parent[32];
    uint64_t stamp;                     /* 0: empty; else when last noted */
    int32_t n;
    int32_t tokens[PC_PREFIX_BLOCK];
} slot;

struct pc_prefix_index {
    pthread_mutex_t mu;
    uint64_t clock;
    slot slots[PC_PREFIX_INDEX_SETS][PC_PREFIX_INDEX_WAYS];
};

pc_prefix_index *pc_prefix_index_new(void) {
    pc_prefix_index *x = calloc(1, sizeof *x);
    if (x) pthread_mutex_init(&x->mu, NULL);
    return x;
}

void pc_prefix_index_free(pc_prefix_index *x) {
    if (!x) return;
    pthread_mutex_destroy(&x->mu);
    free(x);
}

/* parent is a SHA-256 digest: its first bytes are as good as any hash. */
static slot *set_of(pc_prefix_index *x, const uint8_t parent[32]) {
    const uint32_t h = (uint32_t)parent[0] | (uint32_t)parent[1] << 8;
    return x->slots[h % PC_PREFIX_INDEX_SETS];
}

void pc_prefix_index_note(pc_prefix_index *x, const uint8_t parent[32], const int32_t *tokens, int32_t n) {
    if (!x || n <= 0 || n > PC_PREFIX_BLOCK) return;
    pthread_mutex_lock(&x->mu);
    slot *set = set_of(x, parent), *use = &set[0];
    for (int w = 0; w < PC_PREFIX_INDEX_WAYS; w++) {
        slot *s = &set[w];
        if (s->stamp && s->n == n && !memcmp(s->parent, parent, 32) &&
            !memcmp(s->tokens, tokens, (size_t)n * sizeof *tokens)) {
            use = s; /* already known: only refreshed */
            break;
        }
        if (s->stamp < use->stamp) use = s;
    }
    memcpy(use->parent, parent, 32);
    memcpy(use->tokens, tokens, (size_t)n * sizeof *tokens);
    use->n = n;
    use->stamp = ++x->clock;
    pthread_mutex_unlock(&x->mu);
}

static int32_t common_head(const int32_t *a, int32_t na, const int32_t *b, int32_t nb) {
    int32_t m = 0;
    while (m < na && m < nb && a[m] == b[m]) m++;
    return m;
}

int32_t pc_prefix_index_find(pc_prefix_index *x, const uint8_t parent[32], const int32_t *want, int32_t n_want,
                             pc_prefix_cand out[PC_PREFIX_INDEX_WAYS]) {
    if (!x || n_want <= 0) return 0;
    int32_t k = 0;
    pthread_mutex_lock(&x->mu);
    const slot *set = set_of(x, parent);
    for (int w = 0; w < PC_PREFIX_INDEX_WAYS; w++) {
        const slot *s = &set[w];
        if (!s->stamp || memcmp(s->parent, parent, 32)) continue;
        const int32_t m = common_head(s->tokens, s->n, want, n_want);
        if (m == 0) continue;
        int32_t i = k++; /* insertion: most shared first */
        for (; i > 0 && out[i - 1].common < m; i--) out[i] = out[i - 1];
        out[i].n = s->n;
        out[i].common = m;
        memcpy(out[i].tokens, s->tokens, (size_t)s->n * sizeof *s->tokens);
    }
    pthread_mutex_unlock(&x->mu);
    return k;
}
