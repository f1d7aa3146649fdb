/* vocab.c - loading the vocabulary from GGUF metadata (tokenizer.ggml.*).
 *
 * Follows llama.cpp's loader for the "gpt2" and "llama" models: default
 * special ids per model type, ids from metadata when in range, token types
 * as attributes, end-of-generation tokens recognised by their text, and the
 * special-token list in partition order (see tok_internal.h invariants). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "util/error.h"

#define KEY(name) "tokenizer.ggml." name

void pc_bytemap_init(pc_tokenizer *t) {
    for (int c = 0; c < 324; c++) t->cp_to_byte[c] = -1;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        uint16_t cp = printable ? (uint16_t)b : (uint16_t)(256 + extra++);
        t->byte_to_cp[b] = cp;
        t->cp_to_byte[cp] = (int16_t)b;
    }
}

static pc_status read_string(const pc_gguf *g, const char *key, char *buf, size_t cap, bool required, pc_error *err) {
    pc_gguf_str s;
    pc_status st = pc_gguf_get_str(g, key, &s, err);
    buf[0] = '\0';
    if (st == PC_ERR_NOT_FOUND && !required) return PC_OK;
    if (st != PC_OK) return st;
    if (s.len >= cap) return pc_fail(err, PC_ERR_FORMAT, "%s: value too long (%llu bytes)", key, (unsigned long long)s.len);
    memcpy(buf, s.ptr, s.len);
    buf[s.len] = '\0';
    return PC_OK;
}

/* Optional bool: leaves *v alone when absent. */
static pc_status read_bool(const pc_gguf *g, const char *key, bool *v, pc_error *err) {
    pc_status st = pc_gguf_get_bool(g, key, v, err);
    return st == PC_ERR_NOT_FOUND ? PC_OK : st;
}

/* Optional id: metadata wins when in range (llama.cpp keeps the default otherwise). */
static pc_status read_id(const pc_gguf *g, const char *key, int32_t n_vocab, int32_t *id, pc_error *err) {
    if (*id >= n_vocab) *id = -1;
    uint32_t v;
    pc_status st = pc_gguf_get_u32(g, key, &v, err);
    if (st == PC_ERR_NOT_FOUND) return PC_OK;
    if (st == PC_ERR_RANGE) return PC_OK; /* negative or huge: keep the default */
    if (st != PC_OK) return st;
    if (v < (uint32_t)n_vocab) *id = (int32_t)v;
    return PC_OK;
}

static pc_status load_texts(pc_tokenizer *t, const pc_gguf *g, pc_error *err) {
    pc_gguf_vtype et;
    uint64_t count;
    pc_status st = pc_gguf_get_arr(g, KEY("tokens"), &et, &count, err);
    if (st != PC_OK) return pc_fail_wrap(err, "tokenizer");
    if (et != PC_GGUF_STRING) return pc_fail(err, PC_ERR_FORMAT, "%s: expected an array of strings", KEY("tokens"));
    if (count == 0 || count > INT32_MAX / 2) return pc_fail(err, PC_ERR_FORMAT, "%s: bad token count %llu", KEY("tokens"), (unsigned long long)count);
    t->n_vocab = (int32_t)count;
    size_t total = 0;
    for (uint64_t i = 0; i < count; i++) {
        pc_gguf_str s = pc_gguf_arr_str(g, KEY("tokens"), i);
        total += (s.len ? s.len : 32) + 1;
        if (total > UINT32_MAX) return pc_fail(err, PC_ERR_RANGE, "%s: token texts exceed 4 GiB", KEY("tokens"));
    }
    t->text = malloc(total);
    t->off = malloc(count * sizeof *t->off);
    t->len = malloc(count * sizeof *t->len);
    t->score = calloc(count, sizeof *t->score);
    t->attr = malloc(count * sizeof *t->attr);
    t->eog = calloc(count, 1);
    if (!t->text || !t->off || !t->len || !t->score || !t->attr || !t->eog || !pc_strmap_init(&t->vocab, count))
        return pc_fail(err, PC_ERR_NOMEM, "tokenizer: out of memory for %llu tokens", (unsigned long long)count);
    size_t pos = 0;
    for (uint64_t i = 0; i < count; i++) {
        pc_gguf_str s = pc_gguf_arr_str(g, KEY("tokens"), i);
        size_t n = s.len;
        if (n) memcpy(t->text + pos, s.ptr, n);
        else n = (size_t)snprintf(t->text + pos, 32, "[EMPTY_%llu]", (unsigned long long)i);
        t->text[pos + n] = '\0';
        t->off[i] = (uint32_t)pos;
        t->len[i] = (uint32_t)n;
        if (n > t->max_len) t->max_len = n;
        t->attr[i] = PC_ATTR_NORMAL;
        pos += n + 1;
    }
    /* Later duplicates win, as in llama.cpp's token_to_id: insert from the end. */
    for (int32_t i = t->n_vocab - 1; i >= 0; i--)
        pc_strmap_put(&t->vocab, pc_tok_text(t, i), t->len[i], NULL, 0, i);
    return PC_OK;
}

static pc_status load_scores_types(pc_tokenizer *t, const pc_gguf *g, pc_error *err) {
    pc_gguf_vtype et;
    uint64_t count;
    pc_status st = pc_gguf_get_arr(g, KEY("scores"), &et, &count, err);
    if (st == PC_OK) {
        if (et != PC_GGUF_FLOAT32 && et != PC_GGUF_INT32)
            return pc_fail(err, PC_ERR_FORMAT, "%s: expected float32 or int32 elements", KEY("scores"));
        if (count < (uint64_t)t->n_vocab)
            return pc_fail(err, PC_ERR_FORMAT, "%s: %llu scores for %d tokens", KEY("scores"), (unsigned long long)count, t->n_vocab);
        const unsigned char *p = pc_gguf_arr_data(g, KEY("scores"));
        for (int32_t i = 0; i < t->n_vocab; i++) {
            if (et == PC_GGUF_FLOAT32) {
                memcpy(&t->score[i], p + 4 * (size_t)i, 4);
            } else {
                int32_t v;
                memcpy(&v, p + 4 * (size_t)i, 4);
                t->score[i] = (float)v;
            }
        }
    } else if (st != PC_ERR_NOT_FOUND) {
        return st;
    }
    st = pc_gguf_get_arr(g, KEY("token_type"), &et, &count, err);
    if (st == PC_ERR_NOT_FOUND) return PC_OK;
    if (st != PC_OK) return st;
    if (et != PC_GGUF_INT32) return pc_fail(err, PC_ERR_FORMAT, "%s: expected int32 elements", KEY("token_type"));
    if (count < (uint64_t)t->n_vocab)
        return pc_fail(err, PC_ERR_FORMAT, "%s: %llu types for %d tokens", KEY("token_type"), (unsigned long long)count, t->n_vocab);
    const unsigned char *p = pc_gguf_arr_data(g, KEY("token_type"));
    for (int32_t i = 0; i < t->n_vocab; i++) {
        int32_t ty;
        memcpy(&ty, p + 4 * (size_t)i, 4);
        static const uint16_t attr_of_type[] = {PC_ATTR_UNDEFINED, PC_ATTR_NORMAL, PC_ATTR_UNKNOWN, PC_ATTR_CONTROL,
                                                PC_ATTR_USER_DEFINED, PC_ATTR_UNUSED, PC_ATTR_BYTE};
        t->attr[i] = ty >= 0 && ty <= 6 ? attr_of_type[ty] : PC_ATTR_UNDEFINED;
    }
    return PC_OK;
}

static pc_status load_merges(pc_tokenizer *t, const pc_gguf *g, pc_error *err) {
    pc_gguf_vtype et;
    uint64_t count;
    pc_status st = pc_gguf_get_arr(g, KEY("merges"), &et, &count, err);
    if (st == PC_ERR_NOT_FOUND) return pc_fail(err, PC_ERR_FORMAT, "tokenizer: BPE model without %s", KEY("merges"));
    if (st != PC_OK) return st;
    if (et != PC_GGUF_STRING) return pc_fail(err, PC_ERR_FORMAT, "%s: expected an array of strings", KEY("merges"));
    if (count > INT32_MAX) return pc_fail(err, PC_ERR_FORMAT, "%s: too many merges", KEY("merges"));
    size_t total = 1;
    for (uint64_t i = 0; i < count; i++) total += pc_gguf_arr_str(g, KEY("merges"), i).len + 1;
    t->merge_text = malloc(total);
    if (!t->merge_text || !pc_strmap_init(&t->merges, count))
        return pc_fail(err, PC_ERR_NOMEM, "tokenizer: out of memory for %llu merges", (unsigned long long)count);
    size_t pos = 0;
    for (uint64_t i = 0; i < count; i++) {
        pc_gguf_str s = pc_gguf_arr_str(g, KEY("merges"), i);
        char *m = t->merge_text + pos;
        if (s.len) memcpy(m, s.ptr, s.len);
        m[s.len] = '\0';
        pos += s.len + 1;
        /* "first second", split at the first space after position 0; without
         * one llama.cpp records the pair ("", ""). */
        const char *sp = s.len > 1 ? memchr(m + 1, ' ', s.len - 1) : NULL;
        size_t flen = sp ? (size_t)(sp - m) : 0;
        const char *second = sp ? sp + 1 : m + s.len;
        size_t slen = sp ? s.len - flen - 1 : 0;
        pc_strmap_put(&t->merges, m, flen, second, slen, (int32_t)i);
    }
    return PC_OK;
}

static bool text_is(const pc_tokenizer *t, int32_t id, const char *const *names) {
    for (; *names; names++)
        if (strcmp(pc_tok_text(t, id), *names) == 0) return true;
    return false;
}

/* llama.cpp finds EOT/EOM/FIM tokens by their text and forces them to CONTROL;
 * the FIM pad/repo/sep ones and a fixed list of texts end generation. */
static void detect_special_texts(pc_tokenizer *t, int32_t fim_ids[3]) {
    static const char *const eot_names[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                            "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
                                            "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
                                            "<end_of_utterance>", NULL};
    static const char *const eom_names[] = {"<|eom_id|>", NULL};
    static const char *const fim_other[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<PRE>", "\xe2\x96\x81<PRE>",
                                            "<|code_prefix|>", "<|prefix|>", "<|fim_suffix|>", "<fim-suffix>",
                                            "<fim_suffix>", "<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>",
                                            "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<MID>",
                                            "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>", NULL};
    static const char *const fim_pad[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL};
    static const char *const fim_rep[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", NULL};
    static const char *const fim_sep[] = {"<|file_sep|>", NULL};
    static const char *const *const fim_lists[3] = {fim_pad, fim_rep, fim_sep};
    for (int32_t i = 0; i < t->n_vocab; i++) {
        bool hit = false;
        if (t->eot < 0 && text_is(t, i, eot_names)) t->eot = i, hit = true;
        if (t->eom < 0 && text_is(t, i, eom_names)) t->eom = i, hit = true;
        if (text_is(t, i, fim_other)) hit = true;
        for (int k = 0; k < 3; k++)
            if (fim_ids[k] < 0 && text_is(t, i, fim_lists[k])) fim_ids[k] = i, hit = true;
        if (hit) t->attr[i] |= PC_ATTR_CONTROL;
    }
}

static void mark_eog(pc_tokenizer *t, const int32_t fim_ids[3]) {
    static const char *const eog_names[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
                                            "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>",
                                            "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>",
                                            "<eos>", "<turn|>", "<|tool_response>",
                                            "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
                                            "[e~[", NULL};
    for (int k = 0; k < 3; k++)
        if (fim_ids[k] >= 0) t->eog[fim_ids[k]] = 1;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if ((t->attr[i] & PC_ATTR_CONTROL) && strstr(pc_tok_text(t, i), "unused")) t->attr[i] |= PC_ATTR_UNUSED;
        if (text_is(t, i, eog_names)) {
            t->eog[i] = 1;
            t->attr[i] |= PC_ATTR_CONTROL;
        }
    }
    if (t->eos >= 0) t->eog[t->eos] = 1;
    if (t->eot >= 0) t->eog[t->eot] = 1;
    if (t->eom >= 0) t->eog[t->eom] = 1;
}

typedef int (*id_cmp)(const pc_tokenizer *t, int32_t a, int32_t b);

/* Partition order: longer text first; stable, so ties keep id order. */
static int by_len_desc(const pc_tokenizer *t, int32_t a, int32_t b) {
    return t->len[a] == t->len[b] ? 0 : t->len[a] > t->len[b] ? -1 : 1;
}

/* Bytewise text order, a prefix before its extensions. */
static int by_text(const pc_tokenizer *t, int32_t a, int32_t b) {
    uint32_t n = t->len[a] < t->len[b] ? t->len[a] : t->len[b];
    int c = memcmp(pc_tok_text(t, a), pc_tok_text(t, b), n);
    return c ? c : t->len[a] == t->len[b] ? 0 : t->len[a] < t->len[b] ? -1 : 1;
}

/* Stable merge sort of ids (C11 qsort takes no context). */
static void sort_ids(const pc_tokenizer *t, int32_t *ids, int32_t *tmp, size_t n, id_cmp cmp) {
    if (n < 2) return;
    size_t h = n / 2;
    sort_ids(t, ids, tmp, h, cmp);
    sort_ids(t, ids + h, tmp, n - h, cmp);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = cmp(t, ids[j], ids[i]) < 0 ? ids[j++] : ids[i++];
    while (i < h) tmp[k++] = ids[i++];
    while (j < n) tmp[k++] = ids[j++];
    memcpy(ids, tmp, n * sizeof *ids);
}

static pc_status build_special(pc_tokenizer *t, pc_error *err) {
    size_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->attr[i] & (PC_ATTR_CONTROL | PC_ATTR_USER_DEFINED | PC_ATTR_UNKNOWN)) n++;
    t->special = malloc((n ? n : 1) * sizeof *t->special);
    t->special_lex = malloc((n ? n : 1) * sizeof *t->special_lex);
    int32_t *tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!t->special || !t->special_lex || !tmp) {
        free(tmp);
        return pc_fail(err, PC_ERR_NOMEM, "tokenizer: out of memory for %zu special tokens", n);
    }
    t->n_special = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->attr[i] & (PC_ATTR_CONTROL | PC_ATTR_USER_DEFINED | PC_ATTR_UNKNOWN)) t->special[t->n_special++] = i;
    memcpy(t->special_lex, t->special, n * sizeof *tmp);
    sort_ids(t, t->special, tmp, n, by_len_desc);
    sort_ids(t, t->special_lex, tmp, n, by_text);
    free(tmp);
    return PC_OK;
}

static void build_byte_tokens(pc_tokenizer *t) {
    for (int b = 0; b < 256; b++) {
        char s[8];
        int32_t id;
        if (t->model == PC_TOK_BPE) {
            size_t n = 0;
            uint16_t cp = t->byte_to_cp[b];
            if (cp < 0x80) s[n++] = (char)cp;
            else s[n++] = (char)(0xC0 | (cp >> 6)), s[n++] = (char)(0x80 | (cp & 0x3F));
            id = pc_strmap_get(&t->vocab, s, n, NULL, 0);
        } else {
            snprintf(s, sizeof s, "<0x%02X>", b);
            id = pc_strmap_get(&t->vocab, s, 6, NULL, 0);
            if (id < 0) {
                s[0] = (char)b;
                id = pc_strmap_get(&t->vocab, s, 1, NULL, 0);
            }
        }
        t->byte_token[b] = id;
    }
}

static pc_status load_model_kind(pc_tokenizer *t, const pc_gguf *g, pc_error *err) {
    char model[64], pre[64];
    pc_status st = read_string(g, KEY("model"), model, sizeof model, true, err);
    if (st != PC_OK) return pc_fail_wrap(err, "tokenizer");
    if ((st = read_string(g, KEY("pre"), pre, sizeof pre, false, err)) != PC_OK) return st;
    if (strcmp(model, "gpt2") == 0) {
        t->model = PC_TOK_BPE;
        t->bos = t->eos = 11; /* llama.cpp's BPE defaults */
        t->unk = -1;
        if (!pc_pretok_from_name(pre, &t->pre, &t->ignore_merges, &t->add_bos))
            return pc_fail(err, PC_ERR_UNSUPPORTED,
                           "tokenizer: %s = \"%s\" is not supported (supported: default, gpt-2, smollm, starcoder, "
                           "llama3, llama-bpe, qwen2 and their aliases)",
                           KEY("pre"), pre);
    } else if (strcmp(model, "llama") == 0) {
        t->model = PC_TOK_SPM;
        t->bos = 1, t->eos = 2, t->unk = 0;
        t->add_bos = true;
        t->add_space_prefix = true;
    } else {
        return pc_fail(err, PC_ERR_UNSUPPORTED, "tokenizer: %s = \"%s\" is not supported (supported: gpt2, llama)",
                       KEY("model"), model);
    }
    return PC_OK;
}

static pc_status load_flags_ids(pc_tokenizer *t, const pc_gguf *g, int32_t fim_ids[3], pc_error *err) {
    pc_status st;
    if ((st = read_id(g, KEY("bos_token_id"), t->n_vocab, &t->bos, err)) != PC_OK) return st;
    if ((st = read_id(g, KEY("eos_token_id"), t->n_vocab, &t->eos, err)) != PC_OK) return st;
    if ((st = read_id(g, KEY("eot_token_id"), t->n_vocab, &t->eot, err)) != PC_OK) return st;
    if ((st = read_id(g, KEY("eom_token_id"), t->n_vocab, &t->eom, err)) != PC_OK) return st;
    if ((st = read_id(g, KEY("unknown_token_id"), t->n_vocab, &t->unk, err)) != PC_OK) return st;
    if ((st = read_id(g, KEY("fim_pad_token_id"), t->n_vocab, &fim_ids[0], err)) != PC_OK) return st;
    if ((st = read_id(g, KEY("fim_rep_token_id"), t->n_vocab, &fim_ids[1], err)) != PC_OK) return st;
    if ((st = read_id(g, KEY("fim_sep_token_id"), t->n_vocab, &fim_ids[2], err)) != PC_OK) return st;
    if ((st = read_bool(g, KEY("add_bos_token"), &t->add_bos, err)) != PC_OK) return st;
    if ((st = read_bool(g, KEY("add_eos_token"), &t->add_eos, err)) != PC_OK) return st;
    if (t->model == PC_TOK_SPM && (st = read_bool(g, KEY("add_space_prefix"), &t->add_space_prefix, err)) != PC_OK)
        return st;
    return PC_OK;
}

pc_status pc_tokenizer_load(const pc_gguf *g, pc_tokenizer **out, pc_error *err) {
    *out = NULL;
    if (!g) return pc_fail(err, PC_ERR_INVALID, "tokenizer: no GGUF handle");
    pc_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return pc_fail(err, PC_ERR_NOMEM, "tokenizer: out of memory");
    t->eot = t->eom = -1;
    int32_t fim_ids[3] = {-1, -1, -1};
    pc_bytemap_init(t);
    pc_status st = load_model_kind(t, g, err);
    if (st == PC_OK) st = load_texts(t, g, err);
    if (st == PC_OK) st = load_scores_types(t, g, err);
    if (st == PC_OK && t->model == PC_TOK_BPE) st = load_merges(t, g, err);
    if (st == PC_OK) st = load_flags_ids(t, g, fim_ids, err);
    if (st == PC_OK) {
        detect_special_texts(t, fim_ids);
        mark_eog(t, fim_ids);
        st = build_special(t, err);
    }
    if (st != PC_OK) {
        pc_tokenizer_free(t);
        return st;
    }
    build_byte_tokens(t);
    *out = t;
    return PC_OK;
}

void pc_tokenizer_free(pc_tokenizer *t) {
    if (!t) return;
    free(t->text);
    free(t->off);
    free(t->len);
    free(t->score);
    free(t->attr);
    free(t->eog);
    pc_strmap_free(&t->vocab);
    pc_strmap_free(&t->merges);
    free(t->merge_text);
    free(t->special);
    free(t->special_lex);
    free(t);
}

int32_t pc_tokenizer_n_vocab(const pc_tokenizer *t) { return t->n_vocab; }
int32_t pc_tokenizer_bos(const pc_tokenizer *t) { return t->bos; }
int32_t pc_tokenizer_eos(const pc_tokenizer *t) { return t->eos; }
bool pc_tokenizer_add_bos(const pc_tokenizer *t) { return t->add_bos; }

bool pc_tokenizer_is_eog(const pc_tokenizer *t, int32_t id) { return id >= 0 && id < t->n_vocab && t->eog[id]; }

bool pc_tokenizer_is_special(const pc_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && (t->attr[id] & (PC_ATTR_CONTROL | PC_ATTR_USER_DEFINED | PC_ATTR_UNKNOWN));
}

const char *pc_tokenizer_text(const pc_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? pc_tok_text(t, id) : NULL;
}

int32_t pc_tokenizer_find(const pc_tokenizer *t, const char *text) {
    return pc_strmap_get(&t->vocab, text, strlen(text), NULL, 0);
}
