/* tokenizer.c - text to ids (special-token partition, BOS/EOS, dispatch to
 * the BPE or SentencePiece merger) and ids to pieces.
 *
 * Partition follows llama.cpp's tokenizer_st_partition: special tokens are
 * taken one at a time in the order of tok->special (longest text first) and
 * every occurrence in every remaining plain-text fragment is cut out, left to
 * right. Without parse_special, CONTROL and UNKNOWN tokens are skipped but
 * USER_DEFINED ones still split the text (as in llama.cpp and HF). With
 * marker ranges (pc_tokenize_marked), CONTROL and UNKNOWN tokens are cut only
 * where their whole text lies inside a range: text elsewhere that spells one
 * stays text, so no content can forge a control token. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/utf8.h"
#include "util/buf.h"
#include "util/error.h"

void pc_tokens_free(pc_tokens *t) {
    if (!t) return;
    free(t->ids);
    t->ids = NULL;
    t->n = t->cap = 0;
}

bool pc_tokens_push(pc_tokens *t, int32_t id) {
    int32_t *p = pc_array_reserve(t->ids, &t->cap, t->n + 1, sizeof *t->ids);
    if (!p) return false;
    t->ids = p;
    t->ids[t->n++] = id;
    return true;
}

/* A fragment: plain text [off, off+len) of the input, or a token (id >= 0). */
typedef struct frag {
    size_t off, len;
    int32_t id;
} frag;

typedef struct fraglist {
    frag *v;
    size_t n, cap;
} fraglist;

static bool frag_push(fraglist *l, frag f) {
    frag *p = pc_array_reserve(l->v, &l->cap, l->n + 1, sizeof *l->v);
    if (!p) return false;
    l->v = p;
    l->v[l->n++] = f;
    return true;
}

static bool special_enabled(const pc_tokenizer *t, int32_t id, bool parse_special) {
    return parse_special || !(t->attr[id] & (PC_ATTR_CONTROL | PC_ATTR_UNKNOWN));
}

/* Narrows [*lo, *hi) of special_lex, whose texts all start with the k bytes
 * before text[k], to those whose byte k is c. */
static void narrow(const pc_tokenizer *t, size_t k, unsigned char c, size_t *lo, size_t *hi) {
    size_t a = *lo, b = *hi;
    while (a < b && t->len[t->special_lex[a]] == k) a++; /* exact prefixes sort first */
    size_t l = a, h = b;                                 /* first entry with byte k >= c */
    while (l < h) {
        size_t m = l + (h - l) / 2;
        if ((unsigned char)pc_tok_text(t, t->special_lex[m])[k] < c) l = m + 1;
        else h = m;
    }
    size_t u = l;
    h = b; /* first entry with byte k > c */
    while (u < h) {
        size_t m = u + (h - u) / 2;
        if ((unsigned char)pc_tok_text(t, t->special_lex[m])[k] <= c) u = m + 1;
        else h = m;
    }
    *lo = l, *hi = u;
}

/* The enabled special tokens that occur anywhere in text, in partition
 * order, so the per-token passes below only run for those. Each position
 * walks the lexicographically sorted texts byte by byte: cost grows with the
 * length of the longest partial match, not with the number of specials. */
static bool find_present(const pc_tokenizer *t, const char *text, size_t len, bool parse_special, int32_t **ids,
                         size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    if (t->n_special == 0 || len == 0) return true;
    uint8_t *seen = calloc((size_t)t->n_vocab, 1);
    if (!seen) return false;
    size_t n_seen = 0;
    for (size_t i = 0; i < len; i++) {
        size_t lo = 0, hi = t->n_special;
        for (size_t k = 0; i + k < len && lo < hi; k++) {
            narrow(t, k, (unsigned char)text[i + k], &lo, &hi);
            int32_t id = lo < hi ? t->special_lex[lo] : -1;
            if (id >= 0 && t->len[id] == k + 1 && !seen[id] && special_enabled(t, id, parse_special))
                seen[id] = 1, n_seen++;
        }
    }
    if (n_seen) {
        *ids = malloc(n_seen * sizeof **ids);
        if (!*ids) {
            free(seen);
            return false;
        }
        for (size_t k = 0; k < t->n_special; k++)
            if (seen[t->special[k]]) (*ids)[(*n_ids)++] = t->special[k];
    }
    free(seen);
    return true;
}

/* Where special-token text may become its token: everywhere (parse_special
 * without ranges), nowhere, or only inside the given ranges (chat markers). */
typedef struct special_scope {
    bool parse_special;
    const pc_text_range *ranges; /* sorted, disjoint; NULL: no restriction */
    size_t n_ranges;
} special_scope;

/* May token id (at text[at, at + tl)) be cut out? User-defined tokens always
 * are; control and unknown ones only where special parsing reaches. */
static bool may_cut(const pc_tokenizer *t, const special_scope *sc, int32_t id, size_t at, size_t tl) {
    if (!(t->attr[id] & (PC_ATTR_CONTROL | PC_ATTR_UNKNOWN)) || !sc->ranges) return true;
    size_t lo = 0, hi = sc->n_ranges; /* the last range starting at or before at */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (sc->ranges[mid].begin <= at) lo = mid;
        else hi = mid;
    }
    return sc->n_ranges && sc->ranges[lo].begin <= at && at + tl <= sc->ranges[lo].end;
}

/* Cuts every occurrence of token id that may be cut out of the plain fragments of in. */
static bool cut_token(const pc_tokenizer *t, const special_scope *sc, const char *text, int32_t id, const fraglist *in,
                      fraglist *out) {
    const char *tt = pc_tok_text(t, id);
    size_t tl = t->len[id];
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        frag f = in->v[i];
        if (f.id >= 0) {
            if (!frag_push(out, f)) return false;
            continue;
        }
        size_t pos = f.off, from = f.off, end = f.off + f.len;
        for (;;) {
            const char *m = end - from >= tl ? memmem(text + from, end - from, tt, tl) : NULL;
            if (!m) break;
            size_t at = (size_t)(m - text);
            if (!may_cut(t, sc, id, at, tl)) { /* plain text here: look further on */
                from = at + 1;
                continue;
            }
            if (at > pos && !frag_push(out, (frag){pos, at - pos, -1})) return false;
            if (!frag_push(out, (frag){0, 0, id})) return false;
            pos = from = at + tl;
        }
        if (pos < end && !frag_push(out, (frag){pos, end - pos, -1})) return false;
    }
    return true;
}

static bool partition(const pc_tokenizer *t, const special_scope *sc, const char *text, size_t len, fraglist *frags) {
    frags->n = 0;
    if (len == 0) return true;
    if (!frag_push(frags, (frag){0, len, -1})) return false;
    int32_t *ids;
    size_t n_ids;
    if (!find_present(t, text, len, sc->parse_special, &ids, &n_ids)) return false;
    fraglist other = {0};
    bool ok = true;
    for (size_t k = 0; k < n_ids && ok; k++) {
        ok = cut_token(t, sc, text, ids[k], frags, &other);
        fraglist tmp = *frags;
        *frags = other;
        other = tmp;
    }
    free(other.v);
    free(ids);
    return ok;
}

/* SentencePiece text of a fragment: optional leading space, spaces as U+2581. */
static bool spm_escape(pc_tok_scratch *s, const char *text, size_t len, bool prefix, size_t *out_len) {
    if (!pc_tok_scratch_reserve_buf(s, 3 * (len + 1))) return false;
    size_t k = 0;
    if (prefix) memcpy(s->buf, "\xe2\x96\x81", 3), k = 3;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') memcpy(s->buf + k, "\xe2\x96\x81", 3), k += 3;
        else s->buf[k++] = text[i];
    }
    *out_len = k;
    return true;
}

static bool tokenize_frags(const pc_tokenizer *t, const char *text, const fraglist *frags, pc_tok_scratch *s,
                           pc_tokens *out) {
    bool prev_special = true; /* SentencePiece: a fragment at the start or after a token gets the space prefix */
    for (size_t i = 0; i < frags->n; i++) {
        const frag *f = &frags->v[i];
        if (f->id >= 0) {
            if (!pc_tokens_push(out, f->id)) return false;
            prev_special = true;
            continue;
        }
        if (t->model == PC_TOK_BPE) {
            if (!pc_bpe_tokenize(t, text + f->off, f->len, s, out)) return false;
        } else {
            size_t n;
            if (!spm_escape(s, text + f->off, f->len, t->add_space_prefix && prev_special, &n) ||
                !pc_spm_tokenize(t, s->buf, n, s, out))
                return false;
        }
        prev_special = false;
    }
    return true;
}

static pc_status tokenize_scoped(const pc_tokenizer *tok, const char *text, size_t len, bool add_special,
                                 const special_scope *sc, pc_tokens *out, pc_error *err) {
    if (!tok || !out || (!text && len)) return pc_fail(err, PC_ERR_INVALID, "pc_tokenize: NULL argument");
    if (add_special && tok->add_bos && tok->bos < 0)
        return pc_fail(err, PC_ERR_FORMAT, "pc_tokenize: the model asks for a BOS token but has none");
    if (add_special && tok->add_eos && tok->eos < 0)
        return pc_fail(err, PC_ERR_FORMAT, "pc_tokenize: the model asks for an EOS token but has none");
    size_t n0 = out->n;
    fraglist frags = {0};
    pc_tok_scratch s = {0};
    bool ok = partition(tok, sc, text, len, &frags);
    if (ok && add_special && tok->add_bos) ok = pc_tokens_push(out, tok->bos);
    if (ok) ok = tokenize_frags(tok, text, &frags, &s, out);
    if (ok && add_special && tok->add_eos) ok = pc_tokens_push(out, tok->eos);
    free(frags.v);
    pc_tok_scratch_free(&s);
    if (!ok) {
        out->n = n0;
        return pc_fail(err, PC_ERR_NOMEM, "pc_tokenize: out of memory tokenizing %zu bytes", len);
    }
    return PC_OK;
}

pc_status pc_tokenize(const pc_tokenizer *tok, const char *text, size_t len, bool add_special, bool parse_special,
                      pc_tokens *out, pc_error *err) {
    const special_scope sc = {.parse_special = parse_special};
    return tokenize_scoped(tok, text, len, add_special, &sc, out, err);
}

pc_status pc_tokenize_marked(const pc_tokenizer *tok, const char *text, size_t len, const pc_text_range *special,
                             size_t n_special, bool add_special, pc_tokens *out, pc_error *err) {
    for (size_t i = 0; i < n_special; i++)
        if (special[i].begin > special[i].end || special[i].end > len || (i && special[i].begin < special[i - 1].end))
            return pc_fail(err, PC_ERR_INVALID, "pc_tokenize_marked: range %zu [%zu, %zu) is out of order or outside "
                           "the %zu bytes of text", i, special[i].begin, special[i].end, len);
    /* an empty list still restricts: no control token anywhere */
    static const pc_text_range none = {0, 0};
    const special_scope sc = {.parse_special = n_special > 0, .ranges = n_special ? special : &none,
                              .n_ranges = n_special};
    return tokenize_scoped(tok, text, len, add_special, &sc, out, err);
}

/* Copies src to buf up to cap; returns n. */
static size_t put(char *buf, size_t cap, size_t at, const char *src, size_t n) {
    if (at < cap) memcpy(buf + at, src, n < cap - at ? n : cap - at);
    return n;
}

/* Byte-level BPE text back to raw bytes. A codepoint outside the byte map
 * (only in malformed vocabularies) is copied as its own UTF-8. */
static size_t bpe_decode(const pc_tokenizer *t, const char *s, size_t n, char *buf, size_t cap) {
    size_t k = 0;
    for (size_t pos = 0; pos < n;) {
        size_t p0 = pos;
        uint32_t cp = pc_utf8_decode_lenient(s, n, &pos);
        if (cp < 324 && t->cp_to_byte[cp] >= 0) {
            char b = (char)t->cp_to_byte[cp];
            k += put(buf, cap, k, &b, 1);
        } else {
            k += put(buf, cap, k, s + p0, pos - p0);
        }
    }
    return k;
}

static size_t spm_unescape(const char *s, size_t n, char *buf, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (n - i >= 3 && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
            k += put(buf, cap, k, " ", 1);
            i += 3;
        } else {
            k += put(buf, cap, k, s + i, 1);
            i++;
        }
    }
    return k;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t pc_token_to_piece(const pc_tokenizer *tok, int32_t id, bool render_special, char *buf, size_t cap) {
    if (!tok || id < 0 || id >= tok->n_vocab) return 0;
    uint16_t a = tok->attr[id];
    const char *s = pc_tok_text(tok, id);
    size_t n = tok->len[id];
    if (a & (PC_ATTR_CONTROL | PC_ATTR_UNKNOWN)) return render_special ? put(buf, cap, 0, s, n) : 0;
    if (a & PC_ATTR_USER_DEFINED) return put(buf, cap, 0, s, n);
    if (a & PC_ATTR_NORMAL) return tok->model == PC_TOK_BPE ? bpe_decode(tok, s, n, buf, cap) : spm_unescape(s, n, buf, cap);
    if (a & PC_ATTR_BYTE) {
        /* "<0xNN>": llama.cpp parses the two characters after "<0x" */
        int hi = n >= 5 ? hexval(s[3]) : -1, lo = n >= 5 ? hexval(s[4]) : -1;
        char b = (char)(hi >= 0 && lo >= 0 ? hi * 16 + lo : hi >= 0 ? hi : 0);
        return put(buf, cap, 0, &b, 1);
    }
    return 0; /* unused and undefined tokens have no text */
}

size_t pc_tokenizer_max_piece(const pc_tokenizer *tok) { return tok->max_len; }
