/* pretok.c - the pre-tokenizer regexes of llama.cpp, written out by hand.
 *
 * A stage reads the segments of the previous stage and writes new ones; it
 * only looks at codepoints inside the current segment [ini, end): anything
 * outside reads as "no codepoint" (flags 0), exactly as llama.cpp's custom
 * splitters and std::regex over a sub-range behave. Output lengths are never
 * zero and always sum to the input length. */
#include "tokenizer/pretok.h"

#include <stdlib.h>
#include <string.h>

#include "tokenizer/unicode.h"
#include "util/buf.h"

void pc_seglist_free(pc_seglist *s) {
    free(s->len);
    s->len = NULL;
    s->n = s->cap = 0;
}

static bool seg_push(pc_seglist *s, size_t len) {
    if (len == 0) return true;
    size_t *p = pc_array_reserve(s->len, &s->cap, s->n + 1, sizeof *s->len);
    if (!p) return false;
    s->len = p;
    s->len[s->n++] = len;
    return true;
}

/* View of one segment: out-of-segment positions read as absent. */
typedef struct seg {
    const uint32_t *cps;
    const uint16_t *flags;
    size_t ini, end;
    size_t prev_end; /* end of the last emitted piece */
    pc_seglist *out;
    bool ok;
} seg;

#define NO_CPT 0xFFFFFFFFu

static uint32_t cpt_at(const seg *s, size_t p) { return p >= s->ini && p < s->end ? s->cps[p] : NO_CPT; }
static uint16_t flags_at(const seg *s, size_t p) { return p >= s->ini && p < s->end ? s->flags[p] : 0; }
static bool is_letter(const seg *s, size_t p) { return flags_at(s, p) & PC_UNI_LETTER; }
static bool is_number(const seg *s, size_t p) { return flags_at(s, p) & PC_UNI_NUMBER; }
static bool is_space(const seg *s, size_t p) { return flags_at(s, p) & PC_UNI_WHITESPACE; }
/* [^\s\p{L}\p{N}] for a present codepoint */
static bool is_other(uint16_t f) { return f && !(f & (PC_UNI_WHITESPACE | PC_UNI_LETTER | PC_UNI_NUMBER)); }

/* Emits the piece from the previous end to end; returns its length. */
static size_t emit(seg *s, size_t end) {
    size_t len = end - s->prev_end;
    if (!seg_push(s->out, len)) s->ok = false;
    s->prev_end = end;
    return len;
}

static uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* 's|'t|'re|'ve|'m|'ll|'d (case-insensitive if icase): length matched at pos, 0 if none. */
static size_t contraction_len(const seg *s, size_t pos, bool icase) {
    if (cpt_at(s, pos) != '\'' || pos + 1 >= s->end) return 0;
    uint32_t a = cpt_at(s, pos + 1);
    if (icase) a = ascii_lower(a);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 >= s->end) return 0;
    uint32_t b = cpt_at(s, pos + 2);
    if (icase) b = ascii_lower(b);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void split_gpt2(seg *s) {
    for (size_t pos = s->ini; pos < s->end;) {
        uint32_t cpt = cpt_at(s, pos);
        size_t c = contraction_len(s, pos, false);
        if (c) {
            pos += emit(s, pos + c);
            continue;
        }
        size_t q = pos + (cpt == ' '); /* first codepoint after an optional space */
        uint16_t f2 = flags_at(s, q);
        if (f2 & PC_UNI_LETTER) {
            while (is_letter(s, q)) q++;
            emit(s, q), pos = q;
            continue;
        }
        if (f2 & PC_UNI_NUMBER) {
            while (is_number(s, q)) q++;
            emit(s, q), pos = q;
            continue;
        }
        if (is_other(f2)) {
            while (is_other(flags_at(s, q))) q++;
            emit(s, q), pos = q;
            continue;
        }
        size_t nws = 0;
        while (is_space(s, pos + nws)) nws++;
        if (nws > 1 && cpt_at(s, pos + nws) != NO_CPT) { /* \s+(?!\S): leave the last space to the next word */
            pos += nws - 1;
            emit(s, pos);
            continue;
        }
        if (nws > 0) {
            pos += nws;
            emit(s, pos);
            continue;
        }
        emit(s, ++pos);
    }
}

/* Llama-3 (max_digits 3) and Qwen2 (max_digits 1):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static void split_llama3(seg *s, size_t max_digits) {
    for (size_t pos = s->ini; pos < s->end;) {
        uint32_t cpt = cpt_at(s, pos);
        uint16_t flags = flags_at(s, pos);
        size_t c = contraction_len(s, pos, true);
        if (c) {
            pos += emit(s, pos + c);
            continue;
        }
        if (!(cpt == '\r' || cpt == '\n' || (flags & PC_UNI_NUMBER)) && ((flags & PC_UNI_LETTER) || is_letter(s, pos + 1))) {
            pos++;
            while (is_letter(s, pos)) pos++;
            emit(s, pos);
            continue;
        }
        if (flags & PC_UNI_NUMBER) {
            size_t ini = pos;
            while (is_number(s, pos)) {
                if (++pos - ini >= max_digits) {
                    emit(s, pos);
                    ini = pos;
                }
            }
            emit(s, pos);
            continue;
        }
        uint16_t f2 = cpt == ' ' ? flags_at(s, pos + 1) : flags;
        /* llama.cpp tests the current codepoint's presence here, not the next one's */
        if (!(f2 & (PC_UNI_WHITESPACE | PC_UNI_LETTER | PC_UNI_NUMBER)) && flags) {
            pos += (cpt == ' ');
            while (is_other(flags_at(s, pos))) pos++;
            while (cpt_at(s, pos) == '\r' || cpt_at(s, pos) == '\n') pos++;
            emit(s, pos);
            continue;
        }
        size_t nws = 0, last_rn_end = 0;
        while (is_space(s, pos + nws)) {
            uint32_t c2 = cpt_at(s, pos + nws);
            if (c2 == '\r' || c2 == '\n') last_rn_end = pos + nws + 1;
            nws++;
        }
        if (last_rn_end > 0) { /* \s*[\r\n]+ */
            pos = last_rn_end;
            emit(s, pos);
            continue;
        }
        if (nws > 1 && cpt_at(s, pos + nws) != NO_CPT) {
            pos += nws - 1;
            emit(s, pos);
            continue;
        }
        if (nws > 0) {
            pos += nws;
            emit(s, pos);
            continue;
        }
        emit(s, ++pos);
    }
}

/* Generic "find matches left to right, gaps stay segments" driver for the
 * stages llama.cpp runs through std::regex. match(s, pos) returns the match
 * length at pos (0: no match starting there). */
typedef size_t (*match_fn)(const seg *s, size_t pos);

static void split_by_matches(seg *s, match_fn match) {
    for (size_t pos = s->ini; pos < s->end;) {
        size_t m = match(s, pos);
        if (m == 0) {
            pos++;
            continue;
        }
        emit(s, pos);      /* the gap before the match (skipped if empty) */
        emit(s, pos + m);
        pos += m;
    }
    emit(s, s->end);
}

/* \p{N} */
static size_t match_one_number(const seg *s, size_t pos) { return is_number(s, pos) ? 1 : 0; }

/* \p{N}+ */
static size_t match_numbers(const seg *s, size_t pos) {
    size_t q = pos;
    while (is_number(s, q)) q++;
    return q - pos;
}

/* [0-9][0-9][0-9] */
static size_t match_digit_triple(const seg *s, size_t pos) {
    for (size_t i = 0; i < 3; i++) {
        uint32_t c = cpt_at(s, pos + i);
        if (c < '0' || c > '9') return 0;
    }
    return 3;
}

/* [\p{P}\$\+<=>\^~\|]+ as llama.cpp evaluates it: ASCII by its fixed list
 * (all printable non-alphanumerics but space and backquote), other codepoints
 * by the punctuation category. */
static bool is_default_punct(const seg *s, size_t p) {
    uint32_t c = cpt_at(s, p);
    if (c == NO_CPT) return false;
    if (c < 128) return c != '`' && c > ' ' && c < 127 && strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_{|}~", (int)c);
    return (flags_at(s, p) & (PC_UNI_PUNCT | PC_UNI_WHITESPACE)) == PC_UNI_PUNCT;
}

static size_t match_default_punct(const seg *s, size_t pos) {
    size_t q = pos;
    while (is_default_punct(s, q)) q++;
    return q - pos;
}

typedef enum stage { ST_GPT2, ST_LLAMA3, ST_QWEN2, ST_ONE_NUMBER, ST_NUMBERS, ST_TRIPLES, ST_PUNCT } stage;

static bool run_stage(stage st, const uint32_t *cps, const uint16_t *flags, const pc_seglist *in, pc_seglist *out) {
    out->n = 0;
    size_t start = 0;
    for (size_t i = 0; i < in->n; i++) {
        seg s = {cps, flags, start, start + in->len[i], start, out, true};
        switch (st) {
        case ST_GPT2: split_gpt2(&s); break;
        case ST_LLAMA3: split_llama3(&s, 3); break;
        case ST_QWEN2: split_llama3(&s, 1); break;
        case ST_ONE_NUMBER: split_by_matches(&s, match_one_number); break;
        case ST_NUMBERS: split_by_matches(&s, match_numbers); break;
        case ST_TRIPLES: split_by_matches(&s, match_digit_triple); break;
        case ST_PUNCT: split_by_matches(&s, match_default_punct); break;
        }
        if (!s.ok) return false;
        start += in->len[i];
    }
    return true;
}

bool pc_pretok_split(pc_pretok_type type, const uint32_t *cps, const uint16_t *flags, size_t n, pc_seglist *out,
                     pc_seglist *scratch) {
    static const stage stages_default[] = {ST_PUNCT, ST_GPT2, ST_NUMBERS, ST_TRIPLES};
    static const stage stages_gpt2[] = {ST_GPT2};
    static const stage stages_smollm[] = {ST_ONE_NUMBER, ST_GPT2};
    static const stage stages_llama3[] = {ST_LLAMA3};
    static const stage stages_qwen2[] = {ST_QWEN2};
    const stage *stages = stages_default;
    size_t n_stages = 4;
    switch (type) {
    case PC_PRETOK_DEFAULT: break;
    case PC_PRETOK_GPT2: stages = stages_gpt2, n_stages = 1; break;
    case PC_PRETOK_SMOLLM: stages = stages_smollm, n_stages = 2; break;
    case PC_PRETOK_LLAMA3: stages = stages_llama3, n_stages = 1; break;
    case PC_PRETOK_QWEN2: stages = stages_qwen2, n_stages = 1; break;
    }
    out->n = 0;
    if (n == 0) return true;
    if (!seg_push(out, n)) return false;
    for (size_t i = 0; i < n_stages; i++) {
        pc_seglist tmp = *scratch;
        *scratch = *out;
        *out = tmp; /* previous output becomes this stage's input */
        if (!run_stage(stages[i], cps, flags, scratch, out)) return false;
    }
    return true;
}

static bool name_in(const char *name, const char *const *names) {
    for (; *names; names++)
        if (strcmp(name, *names) == 0) return true;
    return false;
}

bool pc_pretok_from_name(const char *name, pc_pretok_type *out, bool *ignore_merges, bool *add_bos) {
    static const char *const gpt2[] = {"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
                                       "a.x-4.0", "mellum", "modern-bert", "exaone4", "jina-v1-en", "jina-v2-code",
                                       "roberta-bpe", "mpt", "olmo", "jais", "trillion", "granite-docling", NULL};
    static const char *const smollm[] = {"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone",
                                         "minerva-7b", "mellum2", NULL};
    static const char *const llama3[] = {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                                         "midm-2.0", "lfm2", "jina-v5-nano", NULL};
    static const char *const llama3_regex_only[] = {"dbrx", "smaug-bpe", NULL};
    static const char *const qwen2[] = {"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2",
                                        "hunyuan", "solar-open", NULL};
    if (name[0] == '\0' || strcmp(name, "default") == 0) *out = PC_PRETOK_DEFAULT;
    else if (name_in(name, gpt2)) *out = PC_PRETOK_GPT2;
    else if (name_in(name, smollm)) *out = PC_PRETOK_SMOLLM;
    else if (name_in(name, llama3)) {
        *out = PC_PRETOK_LLAMA3;
        *ignore_merges = true;
        *add_bos = true;
    } else if (name_in(name, llama3_regex_only)) *out = PC_PRETOK_LLAMA3;
    else if (name_in(name, qwen2)) *out = PC_PRETOK_QWEN2;
    else return false;
    return true;
}
