/* test_pml_text.c - the whitespace rule and UTF-8 helpers behind PML text.
 *
 * Truth: what Python 3 gives for the prototype's
 * re.sub(r'^\s+|\s+$', ' ', text), run by hand on each input (shown beside
 * it), and the set of code points Python's \s matches on str. */
#include <string.h>

#include "check.h"
#include "pml/text.h"

static void compacts(const char *in, const char *want, int line) {
    char out[256];
    size_t n = pc_pml_compact(in, strlen(in), out);
    out[n] = '\0';
    CHECK_MSG(strcmp(out, want) == 0, "line %d: \"%s\" -> \"%s\", want \"%s\"", line, in, out, want);
}

static void test_compact(void) {
    compacts("", "", __LINE__);
    compacts(" ", " ", __LINE__);
    compacts("\n\n   ", " ", __LINE__);
    compacts("abc", "abc", __LINE__);
    compacts("  abc", " abc", __LINE__);
    compacts("abc \n ", "abc ", __LINE__);
    compacts("\n  a  b \n", " a  b ", __LINE__); /* inner runs stay */
    compacts("a\xC2\xA0", "a ", __LINE__);          /* U+00A0 */
    compacts("\xE3\x80\x80" "a\xE2\x80\xA8", " a ", __LINE__); /* U+3000 a U+2028 */
    compacts("x\n", "x ", __LINE__);
    compacts(" \xE2\x80\x8Bx", " \xE2\x80\x8Bx", __LINE__); /* U+200B is not \s */
    compacts("\x0B\x0C\x1C" "a\x1F", " a ", __LINE__);
}

static void test_space_set(void) {
    /* Python: [c for c in range(0x110000) if re.match(r'\s', chr(c))] */
    static const unsigned spaces[] = {0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0,
                                      0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006,
                                      0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000};
    size_t k = 0, wrong = 0;
    for (unsigned cp = 1; cp < 0x3100; cp++) {
        char b[4];
        size_t n;
        if (cp < 0x80) { b[0] = (char)cp; n = 1; }
        else if (cp < 0x800) { b[0] = (char)(0xC0 | (cp >> 6)); b[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
        else {
            if (cp >= 0xD800 && cp <= 0xDFFF) continue;
            b[0] = (char)(0xE0 | (cp >> 12)); b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            b[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
        }
        bool want = k < sizeof spaces / sizeof *spaces && spaces[k] == cp;
        k += want;
        wrong += (pc_pml_space_len(b, n) == n) != want;
    }
    CHECK_EQ_INT(wrong, 0);
    CHECK_EQ_INT(k, sizeof spaces / sizeof *spaces);
    /* a truncated sequence is not a space, and never read past */
    CHECK_EQ_INT(pc_pml_space_len("\xE3\x80", 2), 0);
    CHECK_EQ_INT(pc_pml_space_suffix_len("ab \xE3\x80\x80", 6), 4);
    CHECK(pc_pml_all_space(" \t\n\xC2\x85", 5));
    CHECK(!pc_pml_all_space(" x ", 3));
}

static void test_utf8(void) {
    size_t bad = 99;
    CHECK(pc_pml_utf8_valid("caf\xC3\xA9", 5, &bad));
    CHECK(!pc_pml_utf8_valid("ab\xC0\xAF", 4, &bad) && bad == 2);      /* overlong '/' */
    CHECK(!pc_pml_utf8_valid("\xED\xA0\x80", 3, &bad) && bad == 0);    /* a surrogate */
    CHECK(!pc_pml_utf8_valid("x\xF4\x90\x80\x80", 5, &bad) && bad == 1); /* past U+10FFFF */
    CHECK(!pc_pml_utf8_valid("a\0b", 3, &bad) && bad == 1);
    CHECK(!pc_pml_utf8_valid("\xE2\x82", 2, &bad) && bad == 0);        /* truncated */
    CHECK_EQ_INT(pc_pml_utf8_count("caf\xC3\xA9 \xF0\x9F\x98\x80", 10), 6);
}

int main(void) {
    test_compact();
    test_space_set();
    test_utf8();
    return check_report();
}
