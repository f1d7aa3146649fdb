/* test_pretok.c - pre-tokenizer splits worked out by hand from the regexes.
 *
 * The golden test checks whole tokenizations against llama.cpp; SmolLM2's
 * vocabulary has no multi-digit tokens, so the digit grouping of llama3 /
 * qwen2 / default is only visible here, at the level of the split itself.
 * Also checks the Unicode class table and the lenient UTF-8 decoder. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tokenizer/pretok.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

/* Splits text and joins the pieces with '|' (as UTF-8). */
static void split_joined(pc_pretok_type type, const char *text, char *out, size_t cap) {
    uint32_t *cps;
    size_t n;
    pc_utf8_decode_all(text, strlen(text), &cps, &n);
    uint16_t *flags = malloc((n + 1) * sizeof *flags);
    for (size_t i = 0; i < n; i++) flags[i] = pc_unicode_flags(cps[i]);
    pc_seglist words = {0}, tmp = {0};
    CHECK(pc_pretok_split(type, cps, flags, n, &words, &tmp));
    size_t k = 0, start = 0;
    for (size_t w = 0; w < words.n; w++) {
        if (w) out[k++] = '|';
        for (size_t i = start; i < start + words.len[w]; i++) {
            char u[4];
            size_t m = pc_utf8_encode(cps[i], u);
            if (k + m + 2 < cap) memcpy(out + k, u, m), k += m;
        }
        start += words.len[w];
    }
    out[k] = '\0';
    CHECK_EQ_INT(start, n);
    pc_seglist_free(&words);
    pc_seglist_free(&tmp);
    free(flags);
    free(cps);
}

static void expect(pc_pretok_type type, const char *text, const char *want) {
    char got[512];
    split_joined(type, text, got, sizeof got);
    CHECK_MSG(strcmp(got, want) == 0, "type %d: \"%s\"\n got  [%s]\n want [%s]", (int)type, text, got, want);
}

static void test_splits(void) {
    const char *s = "Hello world's  123 !!x\n\n  y";
    expect(PC_PRETOK_GPT2, s, "Hello| world|'s| | 123| !!|x|\n\n | y");
    /* digits are cut out first, so "  " ends its segment and stays whole */
    expect(PC_PRETOK_SMOLLM, s, "Hello| world|'s|  |1|2|3| !!|x|\n\n | y");
    expect(PC_PRETOK_LLAMA3, "Hello world's  12345 !!x\n\n  y", "Hello| world|'s| | |123|45| !!|x|\n\n| | y");
    expect(PC_PRETOK_QWEN2, "ab 12345", "ab| |1|2|3|4|5");
    /* contractions: case-insensitive only in llama3/qwen2 */
    expect(PC_PRETOK_GPT2, "IT'S", "IT|'|S");
    expect(PC_PRETOK_LLAMA3, "IT'S it's", "IT|'S| it|'s");
    /* default: punctuation runs, GPT-2, number runs, then ASCII digit triples; ` is not punctuation here */
    expect(PC_PRETOK_DEFAULT, "a+=b 12345 `x`", "a|+=|b| |123|45| `|x|`");
    /* non-ASCII: letters with a leading space, CJK letters, an emoji is "other" */
    expect(PC_PRETOK_GPT2, "caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80!", "caf\xc3\xa9| \xe4\xbd\xa0\xe5\xa5\xbd| \xf0\x9f\x98\x80!");
    /* U+3000 is whitespace, but only an ASCII space may lead a word */
    expect(PC_PRETOK_GPT2, "a\xe3\x80\x80\xe3\x80\x80" "b", "a|\xe3\x80\x80|\xe3\x80\x80|b");
    expect(PC_PRETOK_LLAMA3, "x\r\n\r\ny", "x|\r\n\r\n|y");
    expect(PC_PRETOK_LLAMA3, "x ...\n\ny", "x| ...\n\n|y");
    expect(PC_PRETOK_GPT2, "", "");
}

static void test_tables(void) {
    CHECK(pc_unicode_flags('a') == PC_UNI_LETTER);
    CHECK(pc_unicode_flags('7') == PC_UNI_NUMBER);
    CHECK(pc_unicode_flags(' ') == (PC_UNI_SEPARATOR | PC_UNI_WHITESPACE));
    CHECK(pc_unicode_flags('\n') == (PC_UNI_CONTROL | PC_UNI_WHITESPACE));
    CHECK(pc_unicode_flags(0x4F60) == PC_UNI_LETTER);        /* 你 */
    CHECK(pc_unicode_flags(0x0663) == PC_UNI_NUMBER);        /* Arabic-Indic three */
    CHECK(pc_unicode_flags(0x2167) == PC_UNI_NUMBER);        /* Roman numeral eight (Nl) */
    CHECK(pc_unicode_flags(0x0301) == PC_UNI_MARK);          /* combining acute */
    CHECK(pc_unicode_flags(0x1F600) == PC_UNI_SYMBOL);       /* emoji */
    CHECK(pc_unicode_flags(0x200D) == PC_UNI_CONTROL);       /* ZWJ is Cf */
    CHECK(pc_unicode_flags(0x2EBF0) == PC_UNI_LETTER);       /* CJK Ext. I: new in Unicode 15.1 */
    CHECK(pc_unicode_flags(0x0378) == PC_UNI_UNDEFINED);     /* unassigned */
    CHECK(pc_unicode_flags(0x110000) == 0);
    CHECK_STR(pc_unicode_version, "15.1.0");
}

static void test_utf8(void) {
    /* llama.cpp's leniency: overlong and surrogate forms decode; broken ones give U+FFFD per byte */
    static const struct {
        const char *s;
        uint32_t cps[4];
        size_t n;
    } cases[] = {
        {"\xc0\x80", {0}, 1},
        {"\xed\xa0\x80", {0xD800}, 1},
        {"\xe2\x82", {0xFFFD, 0xFFFD}, 2},
        {"\x80" "a", {0xFFFD, 'a'}, 2},
        {"\xf7\xbf\xbf\xbf", {0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD}, 4}, /* beyond U+10FFFF */
        {"\xf0\x9f\x98\x80", {0x1F600}, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t *cps;
        size_t n;
        CHECK(pc_utf8_decode_all(cases[i].s, strlen(cases[i].s), &cps, &n));
        CHECK_MSG(n == cases[i].n && memcmp(cps, cases[i].cps, n * 4) == 0, "utf8 case %zu", i);
        free(cps);
    }
    const unsigned char ok[] = {0xE2, 0x82, 0xAC}, bad[] = {0xED, 0xA0, 0x80}, over[] = {0xC0, 0x80};
    CHECK(pc_utf8_strict_len(ok, 3) == 3);
    CHECK(pc_utf8_strict_len(ok, 2) == 0);
    CHECK(pc_utf8_strict_len(bad, 3) == -1);
    CHECK(pc_utf8_strict_len(over, 2) == -1);
}

static void test_names(void) {
    pc_pretok_type t;
    bool im = false, ab = false;
    CHECK(pc_pretok_from_name("smollm", &t, &im, &ab) && t == PC_PRETOK_SMOLLM && !im && !ab);
    CHECK(pc_pretok_from_name("llama-bpe", &t, &im, &ab) && t == PC_PRETOK_LLAMA3 && im && ab);
    CHECK(pc_pretok_from_name("qwen2", &t, &im, &ab) && t == PC_PRETOK_QWEN2);
    CHECK(pc_pretok_from_name("gpt-2", &t, &im, &ab) && t == PC_PRETOK_GPT2);
    CHECK(pc_pretok_from_name("default", &t, &im, &ab) && t == PC_PRETOK_DEFAULT);
    CHECK(!pc_pretok_from_name("deepseek-llm", &t, &im, &ab));
}

int main(void) {
    test_splits();
    test_tables();
    test_utf8();
    test_names();
    return check_report();
}
