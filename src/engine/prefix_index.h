/* prefix_index.h - which prefix-cache entries follow a given prefix, so that a
 * prompt sharing only part of a block with an earlier one finds that block.
 *
 * The store finds entries by content key only: the key of "block k of this
 * prompt" says nothing about a stored block k whose first 40 tokens are the
 * prompt's and the rest are not. The index remembers, for the prefix before a
 * block (its parent: the hash chain up to the block and the tenant), the
 * tokens of the last few entries put after it; a request compares tokens,
 * derives the candidate's key itself and fetches it from the store as usual,
 * so the index never serves KV and a stale candidate is only a miss.
 *
 * Bounded: PC_PREFIX_INDEX_SETS x PC_PREFIX_INDEX_WAYS candidates, least
 * recently noted out first. Thread-safe (one mutex): requests are built on
 * HTTP threads while the stepping thread notes new entries. */
#ifndef PC_ENGINE_PREFIX_INDEX_H
#define PC_ENGINE_PREFIX_INDEX_H

#include <stdint.h>

#include "pcache.h"

enum { PC_PREFIX_INDEX_SETS = 512, PC_PREFIX_INDEX_WAYS = 4 };

typedef struct pc_prefix_index pc_prefix_index;

typedef struct pc_prefix_cand {
    int32_t n;                          /* tokens of the entry */
    int32_t common;                     /* leading tokens it shares with the prompt */
    int32_t tokens[PC_PREFIX_BLOCK];
} pc_prefix_cand;

pc_prefix_index *pc_prefix_index_new(void); /* NULL when out of memory */
void pc_prefix_index_free(pc_prefix_index *x); /* NULL-safe */
/* The store was given an entry of tokens[0..n) (1 <= n <= PC_PREFIX_BLOCK)
 * right after the prefix named parent. */
void pc_prefix_index_note(pc_prefix_index *x, const uint8_t parent[32], const int32_t *tokens, int32_t n);
/* The candidates after parent that share at least one leading token with
 * want[0..n_want), most shared first, at most PC_PREFIX_INDEX_WAYS; returns
 * how many were written to out. */
int32_t pc_prefix_index_find(pc_prefix_index *x, const uint8_t parent[32], const int32_t *want, int32_t n_want,
                             pc_prefix_cand out[PC_PREFIX_INDEX_WAYS]);

#endif
