/* test_tokenizer_golden.c - real tokenizers against llama.cpp.
 *
 * tests/data/golden/tokens_*.json were recorded from llama-cpp-python
 * (tools/record_golden_tokens.py): for each text, the ids with special=false
 * and special=true, and the concatenated pieces. Also checked: BOS/EOS,
 * end-of-generation ids, token attributes, a digest over every token's piece,
 * the streaming detokenizer, the other BPE pre-tokenizers on SmolLM2's
 * vocabulary, and speed on ~8k tokens.
 * Models: SmolLM2 (byte-level BPE; the default model, skip if absent) and,
 * optionally, Gemma 3 270M (SentencePiece; $PC_GEMMA_PATH or
 * gemma-3-270m-q4_k_m.gguf beside the default model). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

static size_t unhex(const char *h, char *out) {
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (char)v;
    }
    return n;
}

static bool ids_equal(const pc_tokens *t, json_t *arr) {
    if (t->n != json_array_size(arr)) return false;
    for (size_t i = 0; i < t->n; i++)
        if (t->ids[i] != json_integer_value(json_array_get(arr, i))) return false;
    return true;
}

static void print_ids(const char *what, const pc_tokens *t, json_t *arr) {
    fprintf(stderr, "  %s ours:", what);
    for (size_t i = 0; i < t->n; i++) fprintf(stderr, " %d", t->ids[i]);
    fprintf(stderr, "\n  %s llama.cpp:", what);
    for (size_t i = 0; i < json_array_size(arr); i++) fprintf(stderr, " %lld", json_integer_value(json_array_get(arr, i)));
    fprintf(stderr, "\n");
}

static void check_case(const pc_tokenizer *tok, json_t *c, size_t idx) {
    const char *hex = json_string_value(json_object_get(c, "hex"));
    char *text = malloc(strlen(hex) / 2 + 1);
    size_t len = unhex(hex, text);
    const char *keys[2] = {"ids", "ids_special"};
    for (int sp = 0; sp < 2; sp++) {
        pc_tokens t = {0};
        pc_error err;
        CHECK(pc_tokenize(tok, text, len, true, sp == 1, &t, &err) == PC_OK);
        json_t *want = json_object_get(c, keys[sp]);
        bool eq = ids_equal(&t, want);
        CHECK_MSG(eq, "case %zu (%s) parse_special=%d", idx, hex, sp);
        if (!eq) print_ids(keys[sp], &t, want);
        pc_tokens_free(&t);
    }
    /* pieces of llama.cpp's ids give llama.cpp's detokenized bytes */
    json_t *ids = json_object_get(c, "ids");
    const char *dhex = json_string_value(json_object_get(c, "detok_hex"));
    char *want = malloc(strlen(dhex) / 2 + 1), *got = malloc(64 * (json_array_size(ids) + 1));
    size_t wn = unhex(dhex, want), gn = 0;
    for (size_t i = 0; i < json_array_size(ids); i++)
        gn += pc_token_to_piece(tok, (int32_t)json_integer_value(json_array_get(ids, i)), false, got + gn, 64);
    CHECK_MSG(gn == wn && memcmp(got, want, wn) == 0, "case %zu: detokenized bytes differ", idx);
    {
        /* streaming: complete UTF-8 only; invalid bytes as Python's "replace" renders them */
        const char *uhex = json_string_value(json_object_get(c, "detok_utf8_hex"));
        char *uwant = malloc(strlen(uhex) / 2 + 1);
        size_t un = unhex(uhex, uwant);
        pc_detok d = {0};
        size_t sn = 0;
        char chunk[1024];
        for (size_t i = 0; i < json_array_size(ids); i++) {
            size_t k = pc_detok_push(&d, tok, (int32_t)json_integer_value(json_array_get(ids, i)), chunk, sizeof chunk);
            memcpy(got + sn, chunk, k);
            sn += k;
        }
        sn += pc_detok_flush(&d, got + sn, 8);
        CHECK_MSG(sn == un && memcmp(got, uwant, un) == 0, "case %zu: streaming detok differs", idx);
        if (json_is_true(json_object_get(c, "roundtrip")) && json_object_get(c, "text"))
            CHECK_MSG(sn == len && memcmp(got, text, len) == 0, "case %zu: no round trip", idx);
        free(uwant);
    }
    free(want);
    free(got);
    free(text);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= ((const unsigned char *)p)[i];
        h *= 0x100000001B3ull;
    }
    return h;
}

static void check_vocab_facts(const pc_tokenizer *tok, json_t *g) {
    int32_t n = pc_tokenizer_n_vocab(tok);
    CHECK_EQ_INT(n, json_integer_value(json_object_get(g, "n_vocab")));
    CHECK_EQ_INT(pc_tokenizer_bos(tok), json_integer_value(json_object_get(g, "bos")));
    CHECK_EQ_INT(pc_tokenizer_eos(tok), json_integer_value(json_object_get(g, "eos")));
    CHECK(pc_tokenizer_add_bos(tok) == json_is_true(json_object_get(g, "add_bos")));
    json_t *eog = json_object_get(g, "eog");
    size_t n_eog = 0;
    for (int32_t i = 0; i < n; i++) n_eog += pc_tokenizer_is_eog(tok, i);
    CHECK_EQ_INT(n_eog, json_array_size(eog));
    for (size_t i = 0; i < json_array_size(eog); i++)
        CHECK(pc_tokenizer_is_eog(tok, (int32_t)json_integer_value(json_array_get(eog, i))));
    json_t *attrs = json_object_get(g, "attrs"), *a;
    const char *key;
    size_t n_special = 0, want_special = 0;
    for (int32_t i = 0; i < n; i++) n_special += pc_tokenizer_is_special(tok, i);
    json_object_foreach(attrs, key, a) {
        bool sp = (json_integer_value(a) & (1 | 8 | 16)) != 0; /* llama.cpp: UNKNOWN | CONTROL | USER_DEFINED */
        want_special += sp;
        CHECK_MSG(pc_tokenizer_is_special(tok, atoi(key)) == sp, "token %s attr %lld", key, json_integer_value(a));
    }
    CHECK_EQ_INT(n_special, want_special);
    uint64_t h = 0xCBF29CE484222325ull;
    char buf[512];
    for (int32_t i = 0; i < n; i++) {
        for (int sp = 0; sp < 2; sp++) {
            uint32_t k = (uint32_t)pc_token_to_piece(tok, i, sp == 1, buf, sizeof buf);
            unsigned char le[4] = {(unsigned char)k, (unsigned char)(k >> 8), (unsigned char)(k >> 16), (unsigned char)(k >> 24)};
            h = fnv(fnv(h, le, 4), buf, k);
        }
    }
    char hs[17];
    snprintf(hs, sizeof hs, "%016llx", (unsigned long long)h);
    CHECK_STR(hs, json_string_value(json_object_get(g, "piece_digest_fnv1a64")));
    CHECK(pc_tokenizer_find(tok, "no such token text") == -1);
    CHECK(pc_tokenizer_find(tok, pc_tokenizer_text(tok, 2)) == 2);
    CHECK(pc_tokenizer_text(tok, n) == NULL);
}

/* The model's tokenizer metadata with tokenizer.ggml.pre replaced, written
 * with the GGUF writer (tools/record_golden_tokens.py does the same). */
static pc_tokenizer *load_variant(const pc_gguf *g, const char *pre) {
    static const char *const str_arrays[] = {"tokenizer.ggml.tokens", "tokenizer.ggml.merges"};
    static const char *const ids[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                      "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"};
    pc_gguf_writer *w = pc_gguf_writer_create();
    pc_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    pc_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    for (int k = 0; k < 2; k++) {
        pc_gguf_vtype et;
        uint64_t n;
        pc_gguf_get_arr(g, str_arrays[k], &et, &n, NULL);
        char **v = malloc(n * sizeof *v);
        for (uint64_t i = 0; i < n; i++) {
            pc_gguf_str s = pc_gguf_arr_str(g, str_arrays[k], i);
            v[i] = malloc(s.len + 1);
            memcpy(v[i], s.ptr, s.len);
            v[i][s.len] = '\0';
        }
        pc_gguf_writer_set_arr_str(w, str_arrays[k], (const char *const *)v, n);
        for (uint64_t i = 0; i < n; i++) free(v[i]);
        free(v);
    }
    pc_gguf_vtype et;
    uint64_t n;
    pc_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &n, NULL);
    pc_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", PC_GGUF_INT32, pc_gguf_arr_data(g, "tokenizer.ggml.token_type"), n);
    for (int k = 0; k < 4; k++) {
        uint32_t v;
        if (pc_gguf_get_u32(g, ids[k], &v, NULL) == PC_OK) pc_gguf_writer_set_u32(w, ids[k], v);
    }
    bool b;
    if (pc_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b, NULL) == PC_OK)
        pc_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", b);
    void *mem = NULL;
    size_t size = 0;
    pc_gguf *vg = NULL;
    pc_tokenizer *tok = NULL;
    pc_error err;
    if (pc_gguf_writer_to_memory(w, &mem, &size, &err) == PC_OK && pc_gguf_open_memory(mem, size, pre, &vg, &err) == PC_OK)
        CHECK_MSG(pc_tokenizer_load(vg, &tok, &err) == PC_OK, "%s: %s", pre, err.msg);
    pc_gguf_close(vg);
    pc_free(mem);
    pc_gguf_writer_free(w);
    return tok;
}

static void check_variants(const pc_gguf *g, json_t *golden) {
    json_t *variants = json_object_get(golden, "pre_variants"), *cases = json_object_get(golden, "cases");
    const char *pre;
    json_t *lists;
    json_object_foreach(variants, pre, lists) {
        pc_tokenizer *tok = load_variant(g, pre);
        if (!tok) continue;
        for (size_t i = 0; i < json_array_size(lists); i++) {
            const char *hex = json_string_value(json_object_get(json_array_get(cases, i), "hex"));
            char *text = malloc(strlen(hex) / 2 + 1);
            size_t len = unhex(hex, text);
            pc_tokens t = {0};
            CHECK(pc_tokenize(tok, text, len, true, false, &t, NULL) == PC_OK);
            json_t *want = json_array_get(lists, i);
            bool eq = ids_equal(&t, want);
            CHECK_MSG(eq, "pre %s, case %zu (%s)", pre, i, hex);
            if (!eq) print_ids(pre, &t, want);
            pc_tokens_free(&t);
            free(text);
        }
        pc_tokenizer_free(tok);
    }
}

static void check_speed(const pc_tokenizer *tok) {
    static const char para[] = "The Prompt Cache paper (Gim et al., MLSys 2024) reuses attention states of prompt "
                               "modules across requests; 12345 tokens, caf\xc3\xa9 & code: for (i = 0; i < n; ++i) {}\n";
    size_t reps = 400, len = (sizeof para - 1) * reps;
    char *text = malloc(len);
    for (size_t i = 0; i < reps; i++) memcpy(text + i * (sizeof para - 1), para, sizeof para - 1);
    pc_tokens t = {0};
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    CHECK(pc_tokenize(tok, text, len, true, true, &t, NULL) == PC_OK);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
    printf("tokenized %zu bytes into %zu tokens in %.2f ms\n", len, t.n, ms);
    CHECK(t.n > 8000);
    CHECK_MSG(ms < 1000.0, "%.1f ms for %zu tokens", ms, t.n); /* catches quadratic behaviour, even under ASan */
    pc_tokens_free(&t);
    free(text);
}

/* Runs every check of one golden file; returns false if the model is absent. */
static bool run_suite(const char *model, const char *golden_path, bool speed) {
    pc_gguf *g = NULL;
    pc_error err;
    if (pc_gguf_open(model, &g, &err) != PC_OK) {
        printf("skip %s: %s\n", golden_path, err.msg);
        return false;
    }
    pc_tokenizer *tok = NULL;
    CHECK_MSG(pc_tokenizer_load(g, &tok, &err) == PC_OK, "%s: %s", model, err.msg);
    json_error_t jerr;
    json_t *golden = json_load_file(golden_path, 0, &jerr);
    CHECK_MSG(golden != NULL, "golden: %s", jerr.text);
    if (tok && golden) {
        check_variants(g, golden);
        check_vocab_facts(tok, golden);
        json_t *cases = json_object_get(golden, "cases");
        CHECK(json_array_size(cases) >= 40);
        for (size_t i = 0; i < json_array_size(cases); i++) check_case(tok, json_array_get(cases, i), i);
        if (speed) check_speed(tok);
    }
    json_decref(golden);
    pc_gguf_close(g);
    pc_tokenizer_free(tok);
    return true;
}

int main(void) {
    bool smollm = run_suite(PC_MODEL_PATH, PC_TEST_DATA "/golden/tokens_smollm2.json", true);
    char gemma[4096];
    const char *env = getenv("PC_GEMMA_PATH");
    if (env) {
        snprintf(gemma, sizeof gemma, "%s", env);
    } else {
        snprintf(gemma, sizeof gemma, "%s", PC_MODEL_PATH);
        char *slash = strrchr(gemma, '/');
        snprintf(slash ? slash + 1 : gemma, sizeof gemma - (size_t)(slash ? slash + 1 - gemma : 0), "%s",
                 "gemma-3-270m-q4_k_m.gguf");
    }
    bool gem = run_suite(gemma, PC_TEST_DATA "/golden/tokens_gemma3.json", !smollm);
    if (!smollm && !gem) return CHECK_SKIP;
    return check_report();
}
