/* utf8.c - UTF-8 helpers: llama.cpp-compatible lenient decoding for
 * tokenization, strict validation for the streaming detokenizer. */
#include "tokenizer/utf8.h"

#include <stdlib.h>

size_t pc_utf8_seq_len(unsigned char lead) {
    static const unsigned char by_high_nibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return by_high_nibble[lead >> 4];
}

static bool is_cont(const char *s, size_t i) { return ((unsigned char)s[i] & 0xC0) == 0x80; }

uint32_t pc_utf8_decode_lenient(const char *s, size_t len, size_t *pos) {
    size_t i = *pos;
    unsigned char b = (unsigned char)s[i];
    uint32_t cp;
    size_t n;
    if (b < 0x80) {
        cp = b, n = 1;
    } else if ((b & 0xE0) == 0xC0 && i + 1 < len && is_cont(s, i + 1)) {
        cp = ((uint32_t)(b & 0x1F) << 6) | ((unsigned char)s[i + 1] & 0x3F), n = 2;
    } else if ((b & 0xF0) == 0xE0 && i + 2 < len && is_cont(s, i + 1) && is_cont(s, i + 2)) {
        cp = ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)((unsigned char)s[i + 1] & 0x3F) << 6) |
             ((unsigned char)s[i + 2] & 0x3F);
        n = 3;
    } else if ((b & 0xF8) == 0xF0 && i + 3 < len && is_cont(s, i + 1) && is_cont(s, i + 2) && is_cont(s, i + 3)) {
        cp = ((uint32_t)(b & 0x07) << 18) | ((uint32_t)((unsigned char)s[i + 1] & 0x3F) << 12) |
             ((uint32_t)((unsigned char)s[i + 2] & 0x3F) << 6) | ((unsigned char)s[i + 3] & 0x3F);
        n = 4;
        /* llama.cpp aborts on these (it cannot re-encode them); we degrade
         * them to one replacement character per byte instead. */
        if (cp >= 0x110000) cp = PC_UTF8_REPLACEMENT, n = 1;
    } else {
        cp = PC_UTF8_REPLACEMENT, n = 1;
    }
    *pos = i + n;
    return cp;
}

bool pc_utf8_decode_all(const char *s, size_t len, uint32_t **out, size_t *n) {
    uint32_t *cps = malloc((len ? len : 1) * sizeof *cps);
    if (!cps) return false;
    size_t k = 0;
    for (size_t pos = 0; pos < len;) cps[k++] = pc_utf8_decode_lenient(s, len, &pos);
    *out = cps;
    *n = k;
    return true;
}

size_t pc_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int pc_utf8_strict_len(const unsigned char *s, size_t avail) {
    unsigned char b = s[0];
    int n;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) n = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        n = 3;
        if (b == 0xE0) lo = 0xA0;      /* overlong */
        else if (b == 0xED) hi = 0x9F; /* surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4;
        if (b == 0xF0) lo = 0x90;      /* overlong */
        else if (b == 0xF4) hi = 0x8F; /* > U+10FFFF */
    } else {
        return -1;
    }
    for (int i = 1; i < n; i++) {
        if ((size_t)i >= avail) return 0;
        unsigned char c = s[i];
        unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (c < l || c > h) return -1;
    }
    return n;
}
