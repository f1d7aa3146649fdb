/* test_tokenizer_spm.c - SentencePiece-style tokenization on a tiny vocabulary
 * written with the GGUF writer; the expected ids are worked out by hand in
 * the comments (highest score merges first, ties to the leftmost pair). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

#define SP "\xe2\x96\x81" /* U+2581, SentencePiece's space */

enum { UNK = 0, BOS = 1, EOS = 2, BYTE0 = 3 /* <0x00> .. <0xFF> are 3..258 */, N0 = 259 };

/* normal pieces after the byte tokens, with their scores */
static const char *const pieces[] = {SP, "h", "e", "l", "o", "w", "r", "d", "ll", "he", (SP "h"), "llo", "hello",
                                     (SP "hello"), "or", (SP "w"), (SP "wor"), "a", "b", "c", "ab", "bc", "<user>"};
static const float piece_scores[] = {-10, -10, -10, -10, -10, -10, -10, -10, -1, -2, -3, -4, -5,
                                     -6,  -7,  -8,  -9,  -10, -10, -10, -1,  -1, 0};
#define NP (sizeof pieces / sizeof pieces[0])
static int32_t id_of(const char *p) {
    for (size_t i = 0; i < NP; i++)
        if (strcmp(pieces[i], p) == 0) return N0 + (int32_t)i;
    return -1;
}

typedef struct opts {
    bool byte_tokens;      /* include <0xNN> tokens */
    int add_bos;           /* -1: absent (type default), else the metadata value */
    int add_space_prefix;  /* -1: absent */
    const char *model;
} opts;

static pc_tokenizer *make(opts o, pc_status *st_out, pc_error *err) {
    const char *texts[N0 + NP];
    char bytes[256][16];
    int32_t types[N0 + NP];
    float scores[N0 + NP];
    size_t n = 0;
    texts[n] = "<unk>", types[n] = 2, scores[n++] = 0;
    texts[n] = "<s>", types[n] = 3, scores[n++] = 0;
    texts[n] = "</s>", types[n] = 3, scores[n++] = 0;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], o.byte_tokens ? "<0x%02X>" : "<unused%02X>", b);
        texts[n] = bytes[b], types[n] = o.byte_tokens ? 6 : 5, scores[n++] = 0;
    }
    for (size_t i = 0; i < NP; i++) {
        texts[n] = pieces[i];
        types[n] = strcmp(pieces[i], "<user>") == 0 ? 4 : 1;
        scores[n++] = piece_scores[i];
    }
    pc_gguf_writer *w = pc_gguf_writer_create();
    pc_gguf_writer_set_str(w, "general.architecture", "llama");
    pc_gguf_writer_set_str(w, "tokenizer.ggml.model", o.model ? o.model : "llama");
    pc_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", texts, n);
    pc_gguf_writer_set_arr(w, "tokenizer.ggml.scores", PC_GGUF_FLOAT32, scores, n);
    pc_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", PC_GGUF_INT32, types, n);
    pc_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", BOS);
    pc_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", EOS);
    if (o.add_bos >= 0) pc_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", o.add_bos);
    if (o.add_space_prefix >= 0) pc_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", o.add_space_prefix);
    void *mem = NULL;
    size_t size = 0;
    pc_tokenizer *tok = NULL;
    pc_gguf *g = NULL;
    pc_status st = pc_gguf_writer_to_memory(w, &mem, &size, err);
    if (st == PC_OK) st = pc_gguf_open_memory(mem, size, "tiny-spm", &g, err);
    if (st == PC_OK) st = pc_tokenizer_load(g, &tok, err);
    pc_gguf_close(g);
    pc_free(mem);
    pc_gguf_writer_free(w);
    if (st_out) *st_out = st;
    return tok;
}

static bool ids_are(const pc_tokenizer *tok, const char *text, bool add_special, bool parse_special,
                    const int32_t *want, size_t n) {
    pc_tokens t = {0};
    pc_error err;
    bool ok = pc_tokenize(tok, text, strlen(text), add_special, parse_special, &t, &err) == PC_OK && t.n == n &&
              (n == 0 || memcmp(t.ids, want, n * sizeof *want) == 0);
    if (!ok) {
        fprintf(stderr, "  \"%s\": got", text);
        for (size_t i = 0; i < t.n; i++) fprintf(stderr, " %d", t.ids[i]);
        fprintf(stderr, "\n");
    }
    pc_tokens_free(&t);
    return ok;
}

static void test_merging(const pc_tokenizer *tok) {
    /* "▁hello▁world": ll(-1), he(-2), [▁h stale], llo(-4), hello(-5), ▁hello(-6),
     * or(-7), ▁w(-8), ▁wor(-9); "l" and "d" stay. BOS first (llama default). */
    int32_t a[] = {BOS, id_of(SP "hello"), id_of(SP "wor"), id_of("l"), id_of("d")};
    CHECK(ids_are(tok, "hello world", true, false, a, 5));
    CHECK(ids_are(tok, "hello world", false, false, a + 1, 4));
    /* equal scores: ab (left) wins over bc: ▁ ab c */
    int32_t b[] = {id_of(SP), id_of("ab"), id_of("c")};
    CHECK(ids_are(tok, "abc", false, false, b, 3));
    /* byte fallback: "i" and the three bytes of the euro sign have no piece */
    int32_t c[] = {id_of(SP "h"), BYTE0 + 'i', BYTE0 + 0xE2, BYTE0 + 0x82, BYTE0 + 0xAC};
    CHECK(ids_are(tok, "hi\xe2\x82\xac", false, false, c, 5));
    /* a leading space doubles the prefix: ▁▁h... -> ▁ + ▁hello */
    int32_t d[] = {id_of(SP), id_of(SP "hello")};
    CHECK(ids_are(tok, " hello", false, false, d, 2));
    CHECK(ids_are(tok, "", false, false, NULL, 0));
    int32_t e[] = {BOS};
    CHECK(ids_are(tok, "", true, false, e, 1));
}

static void test_special(const pc_tokenizer *tok) {
    /* parse_special: "<s>" is BOS; the text after a special token gets the space prefix again */
    int32_t a[] = {BOS, BOS, id_of(SP "hello")};
    CHECK(ids_are(tok, "<s>hello", true, true, a, 3));
    /* without it "<s>" is text: ▁ < s > are bytes, then ▁hello is not formed ("hello" follows '>') */
    int32_t b[] = {id_of(SP), BYTE0 + '<', BYTE0 + 's', BYTE0 + '>', id_of("hello")};
    CHECK(ids_are(tok, "<s>hello", false, false, b, 5));
    /* user-defined tokens split the text even without parse_special (llama.cpp and HF agree) */
    int32_t c[] = {id_of(SP "h"), id_of("<user>"), id_of(SP "h")};
    CHECK(ids_are(tok, "h<user>h", false, false, c, 3));
}

static void test_pieces(const pc_tokenizer *tok) {
    char buf[32];
    size_t n = pc_token_to_piece(tok, id_of(SP "hello"), false, buf, sizeof buf);
    CHECK(n == 6 && memcmp(buf, " hello", 6) == 0);
    n = pc_token_to_piece(tok, BYTE0 + 0xE2, false, buf, sizeof buf);
    CHECK(n == 1 && (unsigned char)buf[0] == 0xE2);
    CHECK(pc_token_to_piece(tok, BOS, false, buf, sizeof buf) == 0);
    n = pc_token_to_piece(tok, BOS, true, buf, sizeof buf);
    CHECK(n == 3 && memcmp(buf, "<s>", 3) == 0);
    CHECK(pc_token_to_piece(tok, id_of("<user>"), false, buf, sizeof buf) == 6);
    /* too small a buffer: full length returned, nothing past cap written */
    buf[2] = 'X';
    CHECK(pc_token_to_piece(tok, id_of(SP "hello"), false, buf, 2) == 6);
    CHECK(buf[0] == ' ' && buf[1] == 'h' && buf[2] == 'X');
    CHECK(pc_tokenizer_is_eog(tok, EOS));
    CHECK(!pc_tokenizer_is_eog(tok, BOS));
    CHECK(pc_tokenizer_is_special(tok, BOS) && pc_tokenizer_is_special(tok, UNK));
    CHECK(!pc_tokenizer_is_special(tok, id_of("he")));
    CHECK(pc_tokenizer_add_bos(tok));
}

static void test_detok(const pc_tokenizer *tok) {
    pc_detok d = {0};
    char out[64];
    CHECK(pc_detok_push(&d, tok, id_of(SP "h"), out, sizeof out) == 2 && memcmp(out, " h", 2) == 0);
    CHECK(pc_detok_push(&d, tok, BYTE0 + 0xE2, out, sizeof out) == 0); /* incomplete euro sign waits */
    CHECK(pc_detok_push(&d, tok, BYTE0 + 0x82, out, sizeof out) == 0);
    CHECK(pc_detok_push(&d, tok, BYTE0 + 0xAC, out, sizeof out) == 3 && memcmp(out, "\xe2\x82\xac", 3) == 0);
    /* E2 82 then 'h': the two bytes are one invalid subpart -> one U+FFFD, then "h" */
    pc_detok_push(&d, tok, BYTE0 + 0xE2, out, sizeof out);
    pc_detok_push(&d, tok, BYTE0 + 0x82, out, sizeof out);
    CHECK(pc_detok_push(&d, tok, id_of("h"), out, sizeof out) == 4 && memcmp(out, "\xef\xbf\xbdh", 4) == 0);
    /* a stray continuation byte is invalid at once */
    CHECK(pc_detok_push(&d, tok, BYTE0 + 0x80, out, sizeof out) == 3 && memcmp(out, "\xef\xbf\xbd", 3) == 0);
    /* control tokens print nothing; pending bytes at the end flush as U+FFFD */
    CHECK(pc_detok_push(&d, tok, EOS, out, sizeof out) == 0);
    CHECK(pc_detok_push(&d, tok, BYTE0 + 0xF0, out, sizeof out) == 0);
    CHECK(pc_detok_flush(&d, out, sizeof out) == 3 && memcmp(out, "\xef\xbf\xbd", 3) == 0);
    CHECK(pc_detok_flush(&d, out, sizeof out) == 0);
}

static void test_variants(void) {
    pc_error err;
    pc_status st;
    /* no byte tokens: bytes fall back to <unk> */
    pc_tokenizer *tok = make((opts){false, 0, -1, NULL}, &st, &err);
    CHECK(tok != NULL);
    if (tok) {
        int32_t a[] = {id_of(SP "h"), UNK, UNK, UNK, UNK};
        CHECK(ids_are(tok, "hi\xe2\x82\xac", true, false, a, 5)); /* add_bos_token=false: no BOS */
        CHECK(!pc_tokenizer_add_bos(tok));
        pc_tokenizer_free(tok);
    }
    /* add_space_prefix=false: "hello" is one piece without the ▁ */
    tok = make((opts){true, -1, 0, NULL}, &st, &err);
    CHECK(tok != NULL);
    if (tok) {
        int32_t a[] = {BOS, id_of("hello")};
        CHECK(ids_are(tok, "hello", true, false, a, 2));
        pc_tokenizer_free(tok);
    }
    tok = make((opts){true, -1, -1, "bert"}, &st, &err);
    CHECK(tok == NULL && st == PC_ERR_UNSUPPORTED && strstr(err.msg, "bert") != NULL);
}

/* A byte-level BPE vocabulary of three tokens, for load errors. */
static pc_status load_bpe(const char *pre, bool with_merges, pc_error *err) {
    const char *toks[] = {"a", "b", "ab"}, *merges[] = {"a b"};
    pc_gguf_writer *w = pc_gguf_writer_create();
    pc_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    pc_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    pc_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 3);
    if (with_merges) pc_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 1);
    void *mem = NULL;
    size_t size = 0;
    pc_gguf *g = NULL;
    pc_tokenizer *tok = NULL;
    pc_status st = pc_gguf_writer_to_memory(w, &mem, &size, err);
    if (st == PC_OK) st = pc_gguf_open_memory(mem, size, "tiny-bpe", &g, err);
    if (st == PC_OK) st = pc_tokenizer_load(g, &tok, err);
    if (tok) {
        /* "ab" merges; BPE defaults: no BOS added, and id 11 is out of range so there is none */
        pc_tokens t = {0};
        CHECK(pc_tokenize(tok, "abba", 4, true, false, &t, NULL) == PC_OK);
        CHECK(t.n == 3 && t.ids[0] == 2 && t.ids[1] == 1 && t.ids[2] == 0);
        CHECK(pc_tokenizer_bos(tok) == -1 && !pc_tokenizer_add_bos(tok));
        pc_tokens_free(&t);
    }
    pc_tokenizer_free(tok);
    pc_gguf_close(g);
    pc_free(mem);
    pc_gguf_writer_free(w);
    return st;
}

static void test_load_errors(void) {
    pc_error err;
    CHECK(load_bpe("smollm", true, &err) == PC_OK);
    CHECK(load_bpe("deepseek-llm", true, &err) == PC_ERR_UNSUPPORTED && strstr(err.msg, "deepseek-llm") != NULL);
    CHECK(load_bpe("smollm", false, &err) == PC_ERR_FORMAT && strstr(err.msg, "merges") != NULL);
    /* no tokenizer at all */
    pc_gguf_writer *w = pc_gguf_writer_create();
    pc_gguf_writer_set_str(w, "general.architecture", "llama");
    void *mem = NULL;
    size_t size = 0;
    pc_gguf *g = NULL;
    pc_tokenizer *tok = (pc_tokenizer *)1;
    CHECK(pc_gguf_writer_to_memory(w, &mem, &size, &err) == PC_OK);
    CHECK(pc_gguf_open_memory(mem, size, "empty", &g, &err) == PC_OK);
    CHECK(pc_tokenizer_load(g, &tok, &err) == PC_ERR_NOT_FOUND && tok == NULL);
    CHECK(strstr(err.msg, "tokenizer.ggml.model") != NULL);
    pc_gguf_close(g);
    pc_free(mem);
    pc_gguf_writer_free(w);
}

int main(void) {
    pc_error err;
    pc_status st;
    pc_tokenizer *tok = make((opts){true, -1, -1, NULL}, &st, &err);
    CHECK_MSG(tok != NULL, "load: %s", err.msg);
    if (tok) {
        test_merging(tok);
        test_special(tok);
        test_pieces(tok);
        test_detok(tok);
        pc_tokenizer_free(tok);
    }
    test_variants();
    test_load_errors();
    return check_report();
}
