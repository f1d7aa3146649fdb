/* test_pml_errors.c - PML documents that must be refused, each with a clear
 * message naming the document, line and column (worked out by hand from the
 * input text beside each case), plus the hostile inputs: external entities,
 * entity bombs, depth bombs, oversize documents, too many modules. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pml/pml.h"

/* Parses s as a schema (prompt = false) or prompt and checks the status and
 * that the message contains `where` ("t.xml:L:C: ") and `what`. */
static void expect(bool prompt, const char *s, size_t len, const pc_pml_options *o, pc_status code,
                   const char *where, const char *what, int line) {
    pc_pml_doc *d = (pc_pml_doc *)1;
    pc_error e = {0};
    pc_status st = prompt ? pc_pml_parse_prompt(s, len, "t.xml", o, &d, &e)
                          : pc_pml_parse_schema(s, len, "t.xml", o, &d, &e);
    CHECK_MSG(st == code, "line %d: status %d, want %d (%s)", line, st, code, e.msg);
    CHECK_MSG(d == NULL, "line %d: doc not NULL on failure", line);
    CHECK_MSG(e.code == code, "line %d: err.code %d", line, e.code);
    CHECK_MSG(strstr(e.msg, where) == e.msg, "line %d: want prefix \"%s\", got \"%s\"", line, where, e.msg);
    CHECK_MSG(strstr(e.msg, what) != NULL, "line %d: want \"%s\" in \"%s\"", line, what, e.msg);
    if (st == PC_OK) pc_pml_doc_free(d);
}

#define BAD_SCHEMA(s, code, where, what) expect(false, s, strlen(s), NULL, code, where, what, __LINE__)
#define BAD_PROMPT(s, code, where, what) expect(true, s, strlen(s), NULL, code, where, what, __LINE__)

static void test_malformed(void) {
    /* the end tag at column 35 closes <module>: libxml2 reports after "</schema>" */
    BAD_SCHEMA("<schema name=\"a\"><module name=\"x\">unclosed</schema>", PC_ERR_FORMAT, "t.xml:1:52: ",
               "malformed XML: Opening and ending tag mismatch: module line 1 and schema");
    BAD_SCHEMA("<schema name=\"a\">\n  <module name=\"x\" name=\"y\"/></schema>", PC_ERR_FORMAT, "t.xml:2:",
               "Attribute name redefined");
    BAD_SCHEMA("", PC_ERR_FORMAT, "t.xml:1:1: ", "malformed XML");
    BAD_SCHEMA("<schema name=\"a\"></schema><extra/>", PC_ERR_FORMAT, "t.xml:1:", "Extra content");
    /* byte 17 (line 1, column 18) is 0xFF */
    BAD_SCHEMA("<schema name=\"a\">\xFF</schema>", PC_ERR_FORMAT, "t.xml:1:18: ", "byte 0xff is not UTF-8");
    BAD_SCHEMA("<schema name=\"a\">&nbsp;</schema>", PC_ERR_FORMAT, "t.xml:1:", "Entity 'nbsp' not defined");
    BAD_SCHEMA("<schema name=\"a\" xmlns=\"urn:x\"/>", PC_ERR_FORMAT, "t.xml:1:1: ", "namespaces");
    BAD_SCHEMA("<schema name=\"a\"><p:module xmlns:p=\"urn:x\" name=\"m\"/></schema>", PC_ERR_FORMAT, "t.xml:1:18: ",
               "namespaces");
    /* NULL arguments */
    pc_error e = {0};
    CHECK(pc_pml_parse_schema("<schema name=\"a\"/>", 18, "t", NULL, NULL, &e) == PC_ERR_INVALID);
    pc_pml_doc *d = NULL;
    CHECK(pc_pml_parse_schema(NULL, 5, "t", NULL, &d, &e) == PC_ERR_INVALID && d == NULL);
    /* err may be NULL: the status still names the failure */
    pc_pml_options o = {.max_depth = 1};
    const char *s1 = "<schema name=\"a\"><module name=\"m\"/></schema>", *s2 = "<schema name=\"a\"><module/></schema>";
    CHECK(pc_pml_parse_schema(s1, strlen(s1), "t", &o, &d, NULL) == PC_ERR_RANGE && d == NULL);
    CHECK(pc_pml_parse_schema(s2, strlen(s2), "t", NULL, &d, NULL) == PC_ERR_FORMAT && d == NULL);
}

static void test_schema_rules(void) {
    BAD_SCHEMA("<prompt schema=\"a\"/>", PC_ERR_FORMAT, "t.xml:1:1: ", "root element must be <schema");
    BAD_SCHEMA("<schema>x</schema>", PC_ERR_FORMAT, "t.xml:1:1: ", "<schema> needs a name attribute");
    BAD_SCHEMA("<schema name=\"a b\"/>", PC_ERR_FORMAT, "t.xml:1:1: ", "not a valid name");
    /* XML's name rules: no digit or '-' first, no ':' (namespaces), no symbol such as U+00D7 */
    BAD_SCHEMA("<schema name=\"1a\"/>", PC_ERR_FORMAT, "t.xml:1:1: ", "not a valid name");
    BAD_SCHEMA("<schema name=\"-a\"/>", PC_ERR_FORMAT, "t.xml:1:1: ", "not a valid name");
    BAD_SCHEMA("<schema name=\"a:b\"/>", PC_ERR_FORMAT, "t.xml:1:1: ", "not a valid name");
    BAD_SCHEMA("<schema name=\"a\xC3\x97" "b\"/>", PC_ERR_FORMAT, "t.xml:1:1: ", "not a valid name");
    BAD_SCHEMA("<schema name=\"\"/>", PC_ERR_FORMAT, "t.xml:1:1: ", "not a valid name");
    BAD_SCHEMA("<schema name=\"a\">\n  <module>text</module></schema>", PC_ERR_FORMAT, "t.xml:2:3: ",
               "<module> needs a name attribute");
    BAD_SCHEMA("<schema name=\"a\"><module name=\"m\" cache=\"yes\"/></schema>", PC_ERR_FORMAT, "t.xml:1:18: ",
               "cache must be \"true\" or \"false\", got \"yes\"");
    BAD_SCHEMA("<schema name=\"a\"><module name=\"m\" color=\"red\"/></schema>", PC_ERR_FORMAT, "t.xml:1:18: ",
               "<module> has no attribute \"color\"");
    BAD_SCHEMA("<schema name=\"a\"><module name=\"user\"/></schema>", PC_ERR_FORMAT, "t.xml:1:18: ",
               "reserved for the chat tag");
    BAD_SCHEMA("<schema name=\"a\"><div/></schema>", PC_ERR_FORMAT, "t.xml:1:18: ", "unknown element <div>");
    BAD_SCHEMA("<schema name=\"a\"><schema name=\"b\"/></schema>", PC_ERR_FORMAT, "t.xml:1:18: ",
               "only be the root element");

    /* duplicates: siblings; a union member against its union's sibling; a
     * sibling seen through a chat tag; the second occurrence is reported */
    BAD_SCHEMA("<schema name=\"a\"><module name=\"m\"/>\n<module name=\"m\"/></schema>", PC_ERR_FORMAT,
               "t.xml:2:1: ", "module \"m\" is already defined in this scope (at line 1, column 18)");
    BAD_SCHEMA("<schema name=\"a\"><module name=\"b\">x</module><union><module name=\"b\"/></union></schema>",
               PC_ERR_FORMAT, "t.xml:1:52: ", "module \"b\" is already defined");
    BAD_SCHEMA("<schema name=\"a\"><system><module name=\"b\"/></system><user><module name=\"b\"/></user></schema>",
               PC_ERR_FORMAT, "t.xml:1:59: ", "module \"b\" is already defined");
    BAD_SCHEMA("<schema name=\"a\"><module name=\"m\"><parameter name=\"p\" length=\"1\"/>"
               "<parameter name=\"p\" length=\"2\"/></module></schema>",
               PC_ERR_FORMAT, "t.xml:1:67: ", "parameter \"p\" is already defined");

    /* unions */
    BAD_SCHEMA("<schema name=\"a\"><module name=\"m\"><union><module name=\"b\"/><parameter name=\"p\" length=\"1\"/>"
               "</union></module></schema>", PC_ERR_FORMAT, "t.xml:1:60: ",
               "<union> holds only <module> elements, found <parameter>");
    BAD_SCHEMA("<schema name=\"a\"><union><user/></union></schema>", PC_ERR_FORMAT, "t.xml:1:25: ",
               "<union> holds only <module> elements, found <user>");
    BAD_SCHEMA("<schema name=\"a\"><union><module name=\"b\"/> stray </union></schema>", PC_ERR_FORMAT,
               "t.xml:1:43: ", "text inside <union>");
    BAD_SCHEMA("<schema name=\"a\"><union>\n</union></schema>", PC_ERR_FORMAT, "t.xml:1:18: ", "<union> holds no <module>");
    BAD_SCHEMA("<schema name=\"a\"><union scaffold=\"z\"><module name=\"b\"/><module name=\"c\"/></union></schema>",
               PC_ERR_FORMAT, "t.xml:1:18: ", "scaffold \"z\" names none of its members (b, c)");

    /* parameters */
    static const char *bad_len[] = {"0", "-1", "abc", "5x", "", "1048577", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_len / sizeof *bad_len; i++) {
        char s[256], what[128];
        snprintf(s, sizeof s, "<schema name=\"a\"><module name=\"m\">\n <parameter name=\"p\" length=\"%s\"/></module></schema>",
                 bad_len[i]);
        snprintf(what, sizeof what, "parameter \"p\": length must be a whole number from 1 to 1048576, got \"%s\"",
                 bad_len[i]);
        BAD_SCHEMA(s, PC_ERR_FORMAT, "t.xml:2:2: ", what);
    }
    BAD_SCHEMA("<schema name=\"a\"><module name=\"m\"><parameter name=\"p\"/></module></schema>", PC_ERR_FORMAT,
               "t.xml:1:35: ", "parameter \"p\" needs a length attribute");
    BAD_SCHEMA("<schema name=\"a\"><module name=\"m\"><parameter length=\"3\"/></module></schema>", PC_ERR_FORMAT,
               "t.xml:1:35: ", "<parameter> needs a name attribute");
    BAD_SCHEMA("<schema name=\"a\"><parameter name=\"p\" length=\"3\"/></schema>", PC_ERR_FORMAT, "t.xml:1:18: ",
               "<parameter> is not allowed directly in <schema>");
    BAD_SCHEMA("<schema name=\"a\"><user><parameter name=\"p\" length=\"3\"/></user></schema>", PC_ERR_FORMAT,
               "t.xml:1:24: ", "<parameter> is not allowed directly in <schema>");
    BAD_SCHEMA("<schema name=\"a\"><module name=\"m\"><parameter name=\"p\" length=\"3\">x</parameter></module></schema>",
               PC_ERR_FORMAT, "t.xml:1:66: ", "text inside <parameter>");

    /* chat tags */
    BAD_SCHEMA("<schema name=\"a\"><user><system/></user></schema>", PC_ERR_FORMAT, "t.xml:1:24: ",
               "chat tags do not nest");
    BAD_SCHEMA("<schema name=\"a\"><user x=\"1\"/></schema>", PC_ERR_FORMAT, "t.xml:1:18: ",
               "chat tags take no attributes");
}

static void test_prompt_rules(void) {
    BAD_PROMPT("<schema name=\"a\"/>", PC_ERR_FORMAT, "t.xml:1:1: ", "root element must be <prompt");
    BAD_PROMPT("<prompt schema=\"a\" x=\"1\"/>", PC_ERR_FORMAT, "t.xml:1:1: ", "<prompt> has no attribute \"x\"");
    BAD_PROMPT("<prompt schema=\"a\">\n<plan>text</plan></prompt>", PC_ERR_FORMAT, "t.xml:2:7: ",
               "text inside a module reference");
    BAD_PROMPT("<prompt schema=\"a\"><user><plan/></user></prompt>", PC_ERR_FORMAT, "t.xml:1:26: ",
               "chat tags in a prompt hold only text");
    BAD_PROMPT("<prompt schema=\"a\"><plan><user>x</user></plan></prompt>", PC_ERR_FORMAT, "t.xml:1:26: ",
               "must be a direct child of <prompt>");
    BAD_PROMPT("<prompt schema=\"a\"><plan/><plan/></prompt>", PC_ERR_FORMAT, "t.xml:1:27: ",
               "module reference \"plan\" is already defined in this scope (at line 1, column 20)");
    BAD_PROMPT("<prompt schema=\"1a\"/>", PC_ERR_FORMAT, "t.xml:1:1: ", "is not a valid schema name");
}

/* Entities are never expanded or loaded; a DOCTYPE is refused outright. */
static void test_entities(void) {
    BAD_SCHEMA("<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>\n<schema name=\"a\">&e;</schema>",
               PC_ERR_FORMAT, "t.xml:1:1: ", "DOCTYPE, DTD and entity declarations are not allowed");
    BAD_SCHEMA("<?xml version=\"1.0\"?>\n<!DOCTYPE schema SYSTEM \"http://example.invalid/x.dtd\">\n<schema name=\"a\"/>",
               PC_ERR_FORMAT, "t.xml:2:1: ", "DOCTYPE");
    const char *bomb =
        "<?xml version=\"1.0\"?>\n"
        "<!DOCTYPE lolz [\n"
        " <!ENTITY lol \"lol\">\n"
        " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
        " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
        " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
        " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
        " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
        " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
        " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
        " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
        " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
        "]>\n"
        "<schema name=\"a\"><module name=\"m\">&lol9;</module></schema>";
    BAD_SCHEMA(bomb, PC_ERR_FORMAT, "t.xml:2:1: ", "DOCTYPE, DTD and entity declarations are not allowed");
    /* lenient mode never escapes its way around a DOCTYPE */
    pc_pml_options o = {.lenient = true};
    expect(false, bomb, strlen(bomb), &o, PC_ERR_FORMAT, "t.xml:2:1: ", "DOCTYPE", __LINE__);
    expect(true, bomb, strlen(bomb), &o, PC_ERR_FORMAT, "t.xml:2:1: ", "DOCTYPE", __LINE__);
}

/* head, n copies of unit (its %u gets the index), mid, n2 copies of unit2, tail. */
static char *repeat(const char *head, const char *unit, size_t n, const char *mid, const char *unit2, size_t n2,
                    const char *tail) {
    size_t len = strlen(head) + (strlen(unit) + 10) * n + strlen(mid) + strlen(unit2) * n2 + strlen(tail) + 1;
    char *s = malloc(len), *p = s;
    if (!s) return NULL;
    p += sprintf(p, "%s", head);
    for (size_t i = 0; i < n; i++) p += sprintf(p, unit, (unsigned)i);
    p += sprintf(p, "%s", mid);
    for (size_t i = 0; i < n2; i++) p += sprintf(p, "%s", unit2);
    sprintf(p, "%s", tail);
    return s;
}

static void test_limits(void) {
    /* 10000 nested modules: the 64th level is fine, the 65th is refused where
     * it opens: 17 columns of <schema name="s">, then 63 tags of 17 columns */
    char *s = repeat("<schema name=\"s\">", "<module name=\"m\">", 10000, "", "</module>", 10000, "</schema>");
    CHECK(s != NULL);
    if (s) expect(false, s, strlen(s), NULL, PC_ERR_RANGE, "t.xml:1:1089: ", "nest deeper than 64 levels", __LINE__);
    free(s);
    /* the same bomb as a prompt */
    s = repeat("<prompt schema=\"s\">", "<m>", 10000, "", "</m>", 10000, "</prompt>");
    if (s) expect(true, s, strlen(s), NULL, PC_ERR_RANGE, "t.xml:1:", "nest deeper than 64 levels", __LINE__);
    free(s);
    pc_pml_options o = {.max_depth = 3};
    const char *d4 = "<schema name=\"x\"><module name=\"a\"><module name=\"b\"><module name=\"c\"/></module></module></schema>";
    expect(false, d4, strlen(d4), &o, PC_ERR_RANGE, "t.xml:1:52: ", "nest deeper than 3 levels", __LINE__);

    /* 10001 sibling modules: the default limit is 10000 */
    s = repeat("<schema name=\"s\">\n", "<module name=\"m%u\"/>\n", 10001, "", "", 0, "</schema>");
    if (s) expect(false, s, strlen(s), NULL, PC_ERR_RANGE, "t.xml:10002:1: ", "more than 10000 modules", __LINE__);
    free(s);
    s = repeat("<schema name=\"s\">\n", "<module name=\"m%u\"/>\n", 10000, "", "", 0, "</schema>");
    pc_pml_doc *d = NULL;
    pc_error e = {0};
    CHECK(s && pc_pml_parse_schema(s, strlen(s), "t.xml", NULL, &d, &e) == PC_OK && d && d->n_modules == 10000);
    pc_pml_doc_free(d);
    free(s);
    /* the same 10000 modules on one line: module m9999 starts after the 17
     * columns of <schema name="s"> and 9999 tags of 18 + digits(i) columns */
    s = repeat("<schema name=\"s\">", "<module name=\"m%u\"/>", 10000, "", "", 0, "</schema>");
    size_t want_col = 18;
    for (unsigned i = 0; i < 9999; i++) want_col += 18 + (i < 10 ? 1 : i < 100 ? 2 : i < 1000 ? 3 : 4);
    CHECK(s && pc_pml_parse_schema(s, strlen(s), "t.xml", NULL, &d, &e) == PC_OK);
    const pc_pml_node *last = d ? pc_pml_find_module(d->root, "m9999") : NULL;
    CHECK_MSG(last && last->line == 1 && last->col == want_col, "col %u, want %zu", last ? last->col : 0, want_col);
    pc_pml_doc_free(d);
    free(s);
    o = (pc_pml_options){.max_modules = 2};
    const char *m3 = "<prompt schema=\"x\"><a/><b><c/></b></prompt>";
    expect(true, m3, strlen(m3), &o, PC_ERR_RANGE, "t.xml:1:27: ", "more than 2 modules", __LINE__);

    /* oversize: the message points at the first byte past the limit */
    o = (pc_pml_options){.max_bytes = 40};
    const char *big = "<schema name=\"a\">\n<module name=\"m\">0123456789</module></schema>";
    expect(false, big, strlen(big), &o, PC_ERR_RANGE, "t.xml:2:23: ", "longer than the limit of 40 bytes", __LINE__);
    size_t n = PC_PML_DEFAULT_MAX_BYTES + 1;
    char *huge = malloc(n);
    if (huge) {
        memset(huge, ' ', n);
        memcpy(huge, "<schema name=\"a\">", 17);
        memcpy(huge + n - 9, "</schema>", 9);
        expect(false, huge, n, NULL, PC_ERR_RANGE, "t.xml:1:16777217: ", "longer than the limit of 16777216 bytes",
               __LINE__);
        /* one byte less is accepted */
        memcpy(huge + n - 10, "</schema>", 9);
        huge[n - 1] = ' ';
        CHECK_MSG(pc_pml_parse_schema(huge, n - 1, "t.xml", NULL, &d, &e) == PC_OK, "%s", e.msg);
        pc_pml_doc_free(d);
    }
    free(huge);
}

int main(void) {
    test_malformed();
    test_schema_rules();
    test_prompt_rules();
    test_entities();
    test_limits();
    return check_report();
}
