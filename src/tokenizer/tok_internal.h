/* tok_internal.h - the tokenizer's shared state, private to src/tokenizer.
 *
 * Invariants of a loaded pc_tokenizer:
 *   1. Token i's text is text + off[i], len[i] bytes, NUL-terminated; texts
 *      are never empty (empty ones are renamed "[EMPTY_i]" as llama.cpp does).
 *   2. vocab maps every text to its LAST id (llama.cpp's token_to_id); merges
 *      maps (first, second) to the rank of its FIRST occurrence.
 *   3. bos/eos/eot/eom/unk are -1 or < n_vocab.
 *   4. special[] lists the CONTROL/USER_DEFINED/UNKNOWN ids, longest text
 *      first, ties by id: the order in which text is partitioned;
 *      special_lex[] holds the same ids sorted by text (prefix search). */
#ifndef PC_TOKENIZER_TOK_INTERNAL_H
#define PC_TOKENIZER_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/pretok.h"
#include "tokenizer/strmap.h"
#include "tokenizer/tokenizer.h"

/* GGUF tokenizer.ggml.token_type values. */
enum { PC_TT_NORMAL = 1, PC_TT_UNKNOWN = 2, PC_TT_CONTROL = 3, PC_TT_USER_DEFINED = 4, PC_TT_UNUSED = 5, PC_TT_BYTE = 6 };

/* Token attributes, bit-compatible with llama.cpp's llama_token_attr. */
enum {
    PC_ATTR_UNDEFINED = 0,
    PC_ATTR_UNKNOWN = 1 << 0,
    PC_ATTR_UNUSED = 1 << 1,
    PC_ATTR_NORMAL = 1 << 2,
    PC_ATTR_CONTROL = 1 << 3,
    PC_ATTR_USER_DEFINED = 1 << 4,
    PC_ATTR_BYTE = 1 << 5,
};

typedef enum pc_tok_model { PC_TOK_BPE, PC_TOK_SPM } pc_tok_model;

struct pc_tokenizer {
    pc_tok_model model;
    pc_pretok_type pre; /* BPE only */
    int32_t n_vocab;

    char *text;     /* all token texts, NUL-separated */
    uint32_t *off;  /* (n_vocab) byte offset of token i's text in text */
    uint32_t *len;  /* (n_vocab) its length in bytes */
    float *score;   /* (n_vocab) SentencePiece scores; 0 when absent */
    uint16_t *attr; /* (n_vocab) PC_ATTR_* bits */
    uint8_t *eog;   /* (n_vocab) 1 if end-of-generation */
    size_t max_len; /* longest token text */

    pc_strmap vocab;  /* text -> id */
    pc_strmap merges; /* (first, second) -> rank; BPE only */
    char *merge_text; /* copies of the merge strings the map points into */

    int32_t bos, eos, eot, eom, unk;
    bool add_bos, add_eos, add_space_prefix, ignore_merges;

    int32_t *special; /* (n_special) see invariant 4 */
    size_t n_special;
    int32_t *special_lex; /* (n_special) the same ids by text, bytewise, a prefix before its extensions */

    int32_t byte_token[256];  /* token for a raw byte (BPE: its mapped char; SPM: <0xXX>), -1 if none */
    uint16_t byte_to_cp[256]; /* GPT-2 byte -> codepoint mapping */
    int16_t cp_to_byte[324];  /* inverse for codepoints < 324, -1 elsewhere */
};

static inline const char *pc_tok_text(const pc_tokenizer *t, int32_t id) { return t->text + t->off[id]; }

/* Fills byte_to_cp/cp_to_byte: printable Latin-1 bytes map to themselves,
 * the other 68 bytes to U+0100.. in byte order (GPT-2's bytes_to_unicode). */
void pc_bytemap_init(pc_tokenizer *t);

/* Reusable buffers for one pc_tokenize call. */
typedef struct pc_tok_scratch {
    uint32_t *cps;
    uint16_t *flags;
    size_t cps_cap;
    char *buf; /* byte-encoded word or escaped SPM text */
    size_t buf_cap;
    struct pc_tok_sym *syms;
    size_t syms_cap;
    struct pc_tok_bigram *heap;
    size_t heap_n, heap_cap;
    pc_seglist words, tmp;
} pc_tok_scratch;

void pc_tok_scratch_free(pc_tok_scratch *s);
bool pc_tok_scratch_reserve_buf(pc_tok_scratch *s, size_t n);
bool pc_tok_scratch_reserve_cps(pc_tok_scratch *s, size_t n);

/* Tokenizes one fragment of plain text (no special tokens) and appends ids. */
bool pc_bpe_tokenize(const pc_tokenizer *t, const char *text, size_t len, pc_tok_scratch *s, pc_tokens *out);
/* text is already space-escaped ("▁") by the caller. */
bool pc_spm_tokenize(const pc_tokenizer *t, const char *text, size_t len, pc_tok_scratch *s, pc_tokens *out);

/* Symbols and bigram queue shared by both merge loops. */
typedef struct pc_tok_sym {
    uint32_t start, n; /* bytes of the working text; n == 0 once merged away */
    int32_t prev, next;
} pc_tok_sym;

typedef struct pc_tok_bigram {
    float score; /* higher first (SPM); BPE stores -rank */
    int32_t left, right;
    uint32_t size; /* bytes of left+right when queued: stale if they changed */
} pc_tok_bigram;

bool pc_tok_heap_push(pc_tok_scratch *s, pc_tok_bigram b);
pc_tok_bigram pc_tok_heap_pop(pc_tok_scratch *s);
/* Splits text into one symbol per UTF-8 lead-byte length (clamped at the end). */
bool pc_tok_syms_init(pc_tok_scratch *s, const char *text, size_t len, size_t *n_syms);

/* Queues the pair (left, right) if the model can merge it (a no-op for -1 sides). */
typedef bool (*pc_tok_queue_fn)(const pc_tokenizer *t, pc_tok_scratch *s, const char *text, int32_t left,
                                int32_t right);
/* The merge loop both models share: symbols of text, best queued pair first, until
 * nothing merges. Leaves the surviving symbols linked from index 0 in s->syms. */
bool pc_tok_merge(const pc_tokenizer *t, pc_tok_scratch *s, const char *text, size_t len, pc_tok_queue_fn queue,
                  size_t *n_syms);

#endif
