/* test_schema_keys.c - every piece of a schema has a store key of its own.
 *
 * A piece's key names the KV it holds: two pieces with one key would be
 * served each other's KV (the second is "found" in the store where the first
 * was put). Pieces of different members of one union sit at the same
 * positions and may hold as many tokens, so only the path and configuration
 * in the key tell them apart.
 *  1. Members whose names differ only past 600 characters, each holding a
 *     module c of the same text at the same positions (paths and
 *     configurations were cut at 512 bytes: both c pieces got one key, and
 *     the store, finding the same tokens, served one's KV for the other's).
 *  2. PML.md's travel shape, nested unions with and without scaffolds, and a
 *     deep nest: all keys distinct, labels the full module path.
 *  3. Keys are stable (keying twice gives the same) and depend on the tenant.
 * Uses the default model's tokenizer; skips when it is absent. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "default_model.h"
#include "schema/schema.h"
#include "util/buf.h"

static const uint8_t MODEL[32] = {1, 2, 3};

static pc_schema *lay_and_key(const pc_tokenizer *tok, const char *xml, const char *tenant) {
    pc_pml_doc *doc = NULL;
    pc_error err = {0};
    pc_schema *s = NULL;
    pc_layout_ctx lc = {.tok = tok, .chat = PC_CHAT_CHATML, .add_bos = true, .n_ctx = 8192, .max_tokens = 1 << 20};
    if (pc_pml_parse_schema(xml, strlen(xml), "keys.xml", NULL, &doc, &err) != PC_OK ||
        pc_schema_layout(doc, &lc, &s, &err) != PC_OK || pc_schema_keys(s, MODEL, tenant, &err) != PC_OK) {
        CHECK_MSG(0, "%s", err.msg);
        pc_schema_free(s);
        return NULL;
    }
    return s;
}

/* Every pair of non-empty pieces has distinct keys and distinct labels. */
static void check_distinct(const pc_schema *s) {
    for (int32_t i = 0; i < s->n_pieces; i++)
        for (int32_t j = i + 1; j < s->n_pieces; j++) {
            if (!s->pieces[i].n || !s->pieces[j].n) continue;
            CHECK_MSG(memcmp(&s->pieces[i].key, &s->pieces[j].key, sizeof s->pieces[i].key) != 0,
                      "%s: pieces %d and %d share a key (%.80s... / %.80s...)", s->name, i, j, s->pieces[i].label,
                      s->pieces[j].label);
            CHECK_MSG(strcmp(s->pieces[i].label, s->pieces[j].label) != 0, "%s: pieces %d and %d share the label %s",
                      s->name, i, j, s->pieces[i].label);
        }
}

static void check_long_names(const pc_tokenizer *tok) {
    pc_buf a = {0}, b = {0}, xml = {0};
    for (int i = 0; i < 600; i++) pc_buf_puts(&a, "n");
    pc_buf_puts(&b, a.data);
    pc_buf_puts(&a, "x");
    pc_buf_puts(&b, "y");
    pc_buf_printf(&xml, "<schema name=\"long\">Intro.<union>"
                        "<module name=\"%s\">The cat sat.<module name=\"c\">Then it slept.</module></module>"
                        "<module name=\"%s\">The dog sat.<module name=\"c\">Then it slept.</module></module>"
                        "</union></schema>", a.data, b.data);
    pc_schema *s = lay_and_key(tok, xml.data, "");
    if (s) {
        int32_t ma = pc_schema_find_module(s, PC_ROOT, a.data), mb = pc_schema_find_module(s, PC_ROOT, b.data);
        CHECK(ma >= 0 && mb >= 0);
        int32_t pa = -1, pb = -1;
        for (int32_t i = 0; i < s->n_pieces; i++) { /* the pieces of each member's c */
            const int32_t o = s->pieces[i].owner;
            if (o != PC_ROOT && s->modules[o].parent == ma) pa = i;
            if (o != PC_ROOT && s->modules[o].parent == mb) pb = i;
        }
        CHECK(pa >= 0 && pb >= 0);
        if (pa >= 0 && pb >= 0) {
            CHECK_EQ_INT(s->pieces[pa].start, s->pieces[pb].start);
            CHECK_EQ_INT(s->pieces[pa].n, s->pieces[pb].n);
            CHECK(!memcmp(s->pieces[pa].tokens, s->pieces[pb].tokens, sizeof(int32_t) * (size_t)s->pieces[pa].n));
            CHECK(strstr(s->pieces[pa].label, a.data) && strstr(s->pieces[pb].label, b.data));
        }
        check_distinct(s);
    }
    pc_schema_free(s);
    pc_buf_free(&a);
    pc_buf_free(&b);
    pc_buf_free(&xml);
}

static const char *SHAPES[] = {
    "<schema name=\"travel\"><system>You are a travel planner.</system>"
    "<module name=\"plan\">I travel for <parameter name=\"duration\" length=\"5\"/>."
    "<union scaffold=\"domestic\">"
    "<module name=\"domestic\">I stay home in <parameter name=\"city\" length=\"10\" scaffold=\"a city\"/>.</module>"
    "<module name=\"overseas\">I go abroad. <module name=\"visa\" cache=\"false\">Visa rules.</module>"
    "<union><module name=\"tokyo\">Tokyo.</module><module name=\"rome\">Rome.</module></union></module>"
    "</union></module></schema>",

    "<schema name=\"deep\">Intro text.<module name=\"a\">A says hi."
    "<union><module name=\"b\">B is here.<union scaffold=\"c\"><module name=\"c\">C text.</module>"
    "<module name=\"d\">D text.<union scaffold=\"e\"><module name=\"e\">E one.</module>"
    "<module name=\"f\">F one.</module></union></module></union></module>"
    "<module name=\"g\">G is there.</module></union></module></schema>",
};

static void check_shapes(const pc_tokenizer *tok) {
    for (size_t k = 0; k < sizeof SHAPES / sizeof *SHAPES; k++) {
        pc_schema *s = lay_and_key(tok, SHAPES[k], "");
        if (!s) continue;
        check_distinct(s);
        for (int32_t i = 0; i < s->n_pieces; i++)
            if (s->pieces[i].owner != PC_ROOT && !strcmp(s->modules[s->pieces[i].owner].name, "f"))
                CHECK_MSG(!strncmp(s->pieces[i].label, "deep:a/b/d/f#", 13), "label %s", s->pieces[i].label);
        pc_schema *again = lay_and_key(tok, SHAPES[k], ""), *other = lay_and_key(tok, SHAPES[k], "acme");
        for (int32_t i = 0; again && other && i < s->n_pieces; i++) {
            CHECK(!memcmp(&s->pieces[i].key, &again->pieces[i].key, sizeof s->pieces[i].key));
            CHECK(memcmp(&s->pieces[i].key, &other->pieces[i].key, sizeof s->pieces[i].key) != 0);
        }
        pc_schema_free(again);
        pc_schema_free(other);
        pc_schema_free(s);
    }
}

int main(void) {
    pc_tokenizer *tok = NULL;
    const int opened = test_tokenizer_open(&tok);
    if (opened) return opened;
    check_long_names(tok);
    check_shapes(tok);
    pc_tokenizer_free(tok);
    return check_report();
}
