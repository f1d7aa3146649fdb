/* tokenizer.h - text <-> token ids from GGUF metadata (tokenizer.ggml.*).
 *
 * Models: "gpt2" (byte-level BPE, with the pre-tokenizer split rules llama.cpp
 * uses for tokenizer.ggml.pre) and "llama" (SentencePiece-style BPE over
 * scores, with byte fallback <0xNN>). Control tokens are matched in text
 * only when parse_special is set; user-defined tokens always are, as in
 * llama.cpp. Tokenizations match llama.cpp's id for id (tests/tokenizer). */
#ifndef PC_TOKENIZER_H
#define PC_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"
#include "pcache.h"

typedef struct pc_tokenizer pc_tokenizer;

/* Reads the vocabulary from g (copies what it needs: g may be closed after). */
pc_status pc_tokenizer_load(const pc_gguf *g, pc_tokenizer **out, pc_error *err);
void pc_tokenizer_free(pc_tokenizer *tok);

/* Growable token buffer owned by the caller (free with pc_tokens_free). */
typedef struct pc_tokens {
    int32_t *ids;
    size_t n, cap;
} pc_tokens;
void pc_tokens_free(pc_tokens *t);
bool pc_tokens_push(pc_tokens *t, int32_t id);

/* Appends the tokens of text[0..len) to out. add_special: add BOS (and EOS)
 * when the metadata says so (tokenizer.ggml.add_bos_token / add_eos_token, with
 * llama.cpp's defaults per model type). parse_special: text such as
 * "<|im_start|>" becomes its control token (user-defined tokens are always
 * split out). Invalid UTF-8 is tokenized as U+FFFD, like llama.cpp. On error
 * out is left as it was. */
pc_status pc_tokenize(const pc_tokenizer *tok, const char *text, size_t len, bool add_special, bool parse_special,
                      pc_tokens *out, pc_error *err);

/* A byte range [begin, end) of a text. */
typedef struct pc_text_range {
    size_t begin, end;
} pc_text_range;

/* pc_tokenize for text assembled from markup and content (a chat template's
 * role markers around messages): control-token text becomes its token only
 * where it lies wholly inside one of the special ranges (sorted, disjoint),
 * and is plain text everywhere else - so no content can forge a marker.
 * Tokenizing the whole text at once keeps merges across a range's edge as a
 * plain pc_tokenize of the same text would make them. */
pc_status pc_tokenize_marked(const pc_tokenizer *tok, const char *text, size_t len, const pc_text_range *special,
                             size_t n_special, bool add_special, pc_tokens *out, pc_error *err);

/* The raw bytes a token stands for (byte-level decoded; SentencePiece "▁" -> " ",
 * <0xNN> -> that byte). Special tokens give their text only if render_special.
 * Returns the number of bytes (may exceed cap: then nothing past cap is written). */
size_t pc_token_to_piece(const pc_tokenizer *tok, int32_t id, bool render_special, char *buf, size_t cap);

int32_t pc_tokenizer_n_vocab(const pc_tokenizer *tok);
int32_t pc_tokenizer_bos(const pc_tokenizer *tok); /* -1 if none */
int32_t pc_tokenizer_eos(const pc_tokenizer *tok); /* -1 if none */
bool pc_tokenizer_add_bos(const pc_tokenizer *tok);
/* End-of-generation: EOS, EOT, <|im_end|>, <end_of_turn>, <|eot_id|> ... */
bool pc_tokenizer_is_eog(const pc_tokenizer *tok, int32_t id);
bool pc_tokenizer_is_special(const pc_tokenizer *tok, int32_t id); /* control/user-defined/unknown types */
/* Text of token id as stored in the vocabulary; NULL if out of range. */
const char *pc_tokenizer_text(const pc_tokenizer *tok, int32_t id);
int32_t pc_tokenizer_find(const pc_tokenizer *tok, const char *text); /* -1 if absent */
/* Longest token text in bytes: no piece is longer. */
size_t pc_tokenizer_max_piece(const pc_tokenizer *tok);

/* Streaming detokenizer: emits only complete UTF-8 sequences. */
typedef struct pc_detok {
    char pending[8];
    size_t n_pending;
} pc_detok;
/* Appends token id's bytes to the stream; writes the complete UTF-8 prefix to
 * buf (cap bytes) and returns its length; incomplete trailing bytes wait for
 * the next token. Invalid sequences are emitted as U+FFFD. Control tokens give
 * no text. Initialise with (pc_detok){0}. The length returned may exceed cap
 * (the excess is lost): cap >= 3 * (pc_tokenizer_max_piece(tok) + 4) never
 * truncates. Returns 0 if a piece buffer cannot be allocated. */
size_t pc_detok_push(pc_detok *d, const pc_tokenizer *tok, int32_t id, char *buf, size_t cap);
/* Flushes what is pending at end of stream (incomplete bytes become U+FFFD). */
size_t pc_detok_flush(pc_detok *d, char *buf, size_t cap);

#endif
