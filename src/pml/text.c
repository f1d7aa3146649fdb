/* text.c - UTF-8 helpers and the prototype's whitespace rule (see text.h).
 *
 * The whitespace set is exactly what Python's re module matches with \s on
 * str patterns, because the prototype trimmed with re.sub(r'^\s+|\s+$', ' ').
 * Invariant: the compacted text is never longer than the raw text. */
#include "pml/text.h"

uint32_t pc_pml_utf8_decode(const unsigned char *s, size_t n, size_t *len) {
    unsigned c = s[0];
    size_t need;
    uint32_t cp;
    if (c < 0x80) { *len = 1; return c; }
    if (c >= 0xC2 && c <= 0xDF) { need = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { need = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 4; cp = c & 0x07; }
    else { *len = 0; return 0; }
    if (need > n) { *len = 0; return 0; }
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) { *len = 0; return 0; }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
    if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
        *len = 0;
        return 0;
    }
    *len = need;
    return cp;
}

static bool is_space_cp(uint32_t c) {
    if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) return true;
    if (c < 0x85) return false;
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

size_t pc_pml_space_len(const char *s, size_t n) {
    if (n == 0) return 0;
    size_t len;
    uint32_t c = pc_pml_utf8_decode((const unsigned char *)s, n, &len);
    return len && is_space_cp(c) ? len : 0;
}

size_t pc_pml_space_suffix_len(const char *s, size_t n) {
    size_t end = n;
    while (end > 0) {
        size_t start = end - 1; /* back up to the lead byte of the last code point */
        while (start > 0 && end - start < 4 && ((unsigned char)s[start] & 0xC0) == 0x80) start--;
        size_t len = pc_pml_space_len(s + start, end - start);
        if (len != end - start) break;
        end = start;
    }
    return n - end;
}

bool pc_pml_all_space(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t len = pc_pml_space_len(s + i, n - i);
        if (!len) return false;
        i += len;
    }
    return true;
}

size_t pc_pml_compact_sides(const char *s, size_t n, bool lead_space, bool trail_space, char *out) {
    size_t lead = 0, o = 0;
    for (size_t len; lead < n && (len = pc_pml_space_len(s + lead, n - lead)) != 0;) lead += len;
    if (lead == n) {
        if (n == 0 || !lead_space || !trail_space) return 0;
        out[0] = ' ';
        return 1;
    }
    size_t trail = pc_pml_space_suffix_len(s + lead, n - lead);
    if (lead && lead_space) out[o++] = ' ';
    for (size_t i = lead; i < n - trail; i++) out[o++] = s[i];
    if (trail && trail_space) out[o++] = ' ';
    return o;
}

size_t pc_pml_compact(const char *s, size_t n, char *out) { return pc_pml_compact_sides(s, n, true, true, out); }

size_t pc_pml_utf8_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

bool pc_pml_utf8_valid(const char *s, size_t n, size_t *bad_off) {
    size_t i = 0;
    while (i < n) {
        size_t len;
        if (s[i] == '\0') break;
        pc_pml_utf8_decode((const unsigned char *)s + i, n - i, &len);
        if (!len) break;
        i += len;
    }
    if (i < n && bad_off) *bad_off = i;
    return i == n;
}
