/* pretok.h - pre-tokenizer splitting of text into words before BPE.
 *
 * Each pre-tokenizer type is llama.cpp's list of regexes for that
 * tokenizer.ggml.pre value, applied in sequence: every stage splits each
 * segment of the previous stage independently (a match never crosses a
 * segment boundary, and unmatched gaps stay segments of their own). The
 * regexes are fixed, so each stage is written out by hand. */
#ifndef PC_TOKENIZER_PRETOK_H
#define PC_TOKENIZER_PRETOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum pc_pretok_type {
    PC_PRETOK_DEFAULT = 0, /* llama.cpp's default (4 stages) */
    PC_PRETOK_GPT2,        /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) */
    PC_PRETOK_SMOLLM,      /* \p{N} isolated, then GPT2 (also starcoder, refact, ...) */
    PC_PRETOK_LLAMA3,      /* llama3 regex, numbers in groups of up to 3 */
    PC_PRETOK_QWEN2,       /* llama3 regex with single-digit numbers */
} pc_pretok_type;

/* Maps a tokenizer.ggml.pre value to its type; *ignore_merges / *add_bos are
 * set where llama.cpp changes them for that name. False if not supported. */
bool pc_pretok_from_name(const char *name, pc_pretok_type *out, bool *ignore_merges, bool *add_bos);

/* Segment lengths in codepoints; the segments tile the input in order. */
typedef struct pc_seglist {
    size_t *len;
    size_t n, cap;
} pc_seglist;

void pc_seglist_free(pc_seglist *s);

/* Splits cps[0..n) (flags[i] = pc_unicode_flags(cps[i])) into words.
 * out is reset first. False on allocation failure. */
bool pc_pretok_split(pc_pretok_type type, const uint32_t *cps, const uint16_t *flags, size_t n, pc_seglist *out,
                     pc_seglist *scratch);

#endif
