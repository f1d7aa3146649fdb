/* sampler.h - choosing the next token from logits.
 *
 * Order, as llama.cpp's common sampler chain: repetition penalty, top-k,
 * top-p, min-p, temperature, then a seeded draw. temp <= 0 is greedy argmax
 * (ties go to the lowest id). The sampler owns its RNG state; no globals. */
#ifndef PC_ENGINE_SAMPLER_H
#define PC_ENGINE_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

typedef struct pc_sampler_params {
    float temp;            /* <= 0: greedy */
    int32_t top_k;         /* <= 0: off */
    float top_p;           /* >= 1: off */
    float min_p;           /* <= 0: off */
    float repeat_penalty;  /* 1: off */
    int32_t repeat_last_n; /* how many recent tokens the penalty looks at */
    uint64_t seed;
} pc_sampler_params;

pc_sampler_params pc_sampler_defaults(void);

typedef struct pc_sampler pc_sampler;
pc_sampler *pc_sampler_create(const pc_sampler_params *p, int32_t n_vocab); /* NULL on OOM */
void pc_sampler_free(pc_sampler *s);
/* Picks a token. logits has n_vocab entries and is not modified; history is
 * the token sequence so far (for the repetition penalty). No allocation. */
int32_t pc_sampler_sample(pc_sampler *s, const float *logits, const int32_t *history, size_t n_history);

/* Stop strings: finds the earliest occurrence of any stop string in text; returns
 * its offset or -1. partial_keep gets the length of the longest text suffix that
 * is a proper prefix of some stop string (hold that much back when streaming). */
typedef struct pc_stop_set {
    char **strs;
    size_t n;
} pc_stop_set;
long pc_stop_find(const pc_stop_set *s, const char *text, size_t len, size_t *partial_keep);

#endif
