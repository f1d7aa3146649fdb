/* test_union_exact.c - every union member, selected with exactly the
 * configuration it was encoded in, gives the plain prefill's logits bit for bit.
 *
 * DESIGN.md (contract, point 2): a non-scaffold member is encoded inside a
 * scaffold that selects it; attention is causal, so a piece's KV depends only
 * on what precedes it. For each member Y of each schema below, the prompt
 * imports exactly Y's configuration - in every union on Y's ancestor chain
 * the member on that chain, in every other union its scaffold member, every
 * module outside unions - up to the end of Y's outermost union, and nothing
 * after it (the schemas end their unions with their scopes, so nothing of
 * the schema lies after). Cached and uncached runs of the very same tokens at
 * the very same positions must then agree exactly: first-token logits and a
 * short greedy answer. The configurations are computed here from the layout
 * (members, scaffolds, positions), independently of the encoder.
 *
 * Schemas: PML.md's travel shape (a scaffold union whose other member holds
 * a nested union without scaffold, a src= member, a cache="false" module), a
 * three-level nest with scaffolds at the inner levels, two unions side by
 * side in one module, a union at the schema's root, and two members whose
 * names differ only past 600 characters (their children once shared a
 * store key).
 * Skips when the model is absent. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "default_model.h"
#include "engine/engine_internal.h"
#include "schema/schema.h"
#include "util/buf.h"

static const char *SCHEMAS[] = {
    "<schema name=\"travel\"><system>You are a travel planner.</system>"
    "<module name=\"plan\">I travel for <parameter name=\"duration\" length=\"5\"/>."
    "<union scaffold=\"domestic\">"
    "<module name=\"domestic\">I stay home in <parameter name=\"city\" length=\"10\" scaffold=\"a city\"/>.</module>"
    "<module name=\"overseas\">I go abroad. <module name=\"visa\" cache=\"false\">Check the visa rules.</module>"
    "<union><module name=\"tokyo\">Tokyo mixes temples and towers.</module>"
    "<module name=\"rome\" src=\"docs/rome.txt\"/></union></module>"
    "</union></module></schema>",

    "<schema name=\"deep\">Intro text.<module name=\"a\">A says hi."
    "<union><module name=\"b\">B is here.<union scaffold=\"c\"><module name=\"c\">C text.</module>"
    "<module name=\"d\">D text.<union scaffold=\"e\"><module name=\"e\">E one.</module>"
    "<module name=\"f\">F two.</module></union></module></union></module>"
    "<module name=\"g\">G is there.</module></union></module></schema>",

    "<schema name=\"pair\"><user>Pick one of each.</user><module name=\"m\">Options follow."
    "<union scaffold=\"x1\"><module name=\"x1\">One.</module><module name=\"x2\">Two more.</module></union>"
    "<union><module name=\"y1\">Alpha.</module><module name=\"y2\">Beta <parameter name=\"p\" length=\"3\" "
    "scaffold=\"gamma\"/> end.</module></union></module></schema>",

    "<schema name=\"rootu\"><system>Be brief.</system><union scaffold=\"p\"><module name=\"p\">P text.</module>"
    "<module name=\"q\">Q text.<union scaffold=\"s\"><module name=\"r\">R text.</module>"
    "<module name=\"s\">S text.</module></union></module></union></schema>",
};

/* ---- configurations, from the layout ---- */

/* The member union u holds in the configuration of member y. */
static int32_t chosen(const pc_schema *s, int32_t u, int32_t y) {
    for (int32_t x = y; x != PC_ROOT; x = s->modules[x].parent)
        if (s->modules[x].union_id == u) return x;
    return s->unions[u].scaffold;
}

static bool in_config(const pc_schema *s, int32_t m, int32_t y) {
    for (int32_t x = m; x != PC_ROOT; x = s->modules[x].parent)
        if (s->modules[x].union_id >= 0 && chosen(s, s->modules[x].union_id, y) != x) return false;
    return true;
}

/* End of the outermost union on y's ancestor chain. */
static int32_t outer_union_end(const pc_schema *s, int32_t y) {
    int32_t end = 0;
    for (int32_t x = y; x != PC_ROOT; x = s->modules[x].parent)
        if (s->modules[x].union_id >= 0) {
            const pc_union *u = &s->unions[s->modules[x].union_id];
            end = u->start + u->len;
        }
    return end;
}

/* Appends <name>...</name> for each imported child of scope, recursively. */
static void emit_refs(pc_buf *b, const pc_schema *s, int32_t scope, const bool *take) {
    for (int32_t i = 0; i < s->n_modules; i++) {
        if (s->modules[i].parent != scope || !take[i]) continue;
        pc_buf_printf(b, "<%s>", s->modules[i].name);
        emit_refs(b, s, i, take);
        pc_buf_printf(b, "</%s>", s->modules[i].name);
    }
}

static char *config_prompt(const pc_schema *s, int32_t y) {
    const int32_t end = outer_union_end(s, y);
    bool *take = calloc((size_t)s->n_modules, sizeof *take);
    for (int32_t m = 0; m < s->n_modules; m++) take[m] = in_config(s, m, y) && s->modules[m].start < end;
    pc_buf b = {0};
    pc_buf_printf(&b, "<prompt schema=\"%s\">", s->name);
    emit_refs(&b, s, PC_ROOT, take);
    pc_buf_puts(&b, "<user>What comes next?</user></prompt>");
    free(take);
    return pc_buf_take(&b);
}

/* Nothing imported lies at or after the end of y's outermost union: else
 * the prompt would hold text encoded in another configuration, and y is no
 * case for this test. */
static bool nothing_after(const pc_schema *s, int32_t y) {
    const int32_t end = outer_union_end(s, y);
    for (int32_t i = 0; i < s->n_pieces; i++) {
        const int32_t o = s->pieces[i].owner;
        if (s->pieces[i].start >= end && (o == PC_ROOT || (in_config(s, o, y) && s->modules[o].start < end)))
            return false;
    }
    return true;
}

/* ---- runs ---- */

static pc_status run(pc_engine *e, const char *xml, bool cache, float *logits, pc_run_result *r, pc_error *err) {
    pc_run_params rp = {.gen = pc_gen_default_params(), .use_cache = cache};
    rp.gen.temp = 0;
    rp.gen.n_predict = 6;
    rp.gen.ignore_eos = true;
    rp.gen.first_logits = logits;
    return pc_engine_run(e, xml, strlen(xml), "exact-request", &rp, NULL, NULL, r, err);
}

static void check_member(pc_engine *e, const pc_schema *s, int32_t y, float *a, float *b, int *n_checked) {
    CHECK_MSG(nothing_after(s, y), "%s/%s: the schema has text after the union", s->name, s->modules[y].name);
    char *xml = config_prompt(s, y);
    const int V = pc_engine_n_vocab(e);
    pc_run_result ra = {0}, rb = {0};
    pc_error err = {0};
    CHECK_MSG(run(e, xml, true, a, &ra, &err) == PC_OK, "%s/%s cached: %s", s->name, s->modules[y].name, err.msg);
    CHECK_MSG(run(e, xml, false, b, &rb, &err) == PC_OK, "%s/%s uncached: %s", s->name, s->modules[y].name, err.msg);
    CHECK_MSG(memcmp(a, b, sizeof(float) * (size_t)V) == 0, "%s: member '%s' (prompt %s): cached logits differ from the "
              "plain prefill (KL %.3g)", s->name, s->modules[y].name, xml, pc_logits_kl(b, a, V));
    CHECK_MSG(ra.gen.n_tokens == rb.gen.n_tokens &&
                  !memcmp(ra.gen.tokens, rb.gen.tokens, ra.gen.n_tokens * sizeof(int32_t)),
              "%s/%s: greedy answers differ", s->name, s->modules[y].name);
    CHECK_MSG(ra.cached_tokens > 0, "%s/%s: nothing came from the cache", s->name, s->modules[y].name);
    (*n_checked)++;
    pc_run_result_free(&ra);
    pc_run_result_free(&rb);
    free(xml);
}

static void check_schema(pc_engine *e, const char *xml, int *n_checked) {
    pc_error err = {0};
    char *name = NULL;
    pc_schema_params sp = {.src_root = PC_TEST_DATA "/pml/srcdoc"};
    if (pc_engine_schema_load(e, xml, strlen(xml), "exact.xml", &sp, &name, &err) != PC_OK) {
        CHECK_MSG(0, "load: %s", err.msg);
        return;
    }
    const pc_schema *s = pc_engine_find_schema(e, name);
    const int V = pc_engine_n_vocab(e);
    float *a = malloc(sizeof(float) * (size_t)V), *b = malloc(sizeof(float) * (size_t)V);
    for (int32_t y = 0; y < s->n_modules; y++)
        if (s->modules[y].union_id >= 0) check_member(e, s, y, a, b, n_checked);
    free(a);
    free(b);
    free(name);
}

int main(void) {
    pc_engine *e = NULL;
    const int opened = test_engine_open(1024, &e);
    if (opened) return opened;
    int n_checked = 0;
    for (size_t i = 0; i < sizeof SCHEMAS / sizeof *SCHEMAS; i++) check_schema(e, SCHEMAS[i], &n_checked);
    /* Members whose names differ only past 600 characters, each holding a
     * module c of the same text at the same positions: store keys once cut
     * their paths (and configurations) at 512 bytes, so both c pieces had one
     * key, the same tokens, and the second member's c was served the first
     * one's KV - computed after "cat", not "dog". */
    pc_buf name = {0}, xml = {0};
    for (int i = 0; i < 600; i++) pc_buf_puts(&name, "n");
    pc_buf_printf(&xml, "<schema name=\"long\"><system>Be brief.</system><union>"
                        "<module name=\"%sx\">The cat sat.<module name=\"c\">Then it slept.</module></module>"
                        "<module name=\"%sy\">The dog sat.<module name=\"c\">Then it slept.</module></module>"
                        "</union></schema>", name.data, name.data);
    check_schema(e, xml.data, &n_checked);
    pc_buf_free(&name);
    pc_buf_free(&xml);
    CHECK_EQ_INT(n_checked, 4 + 6 + 4 + 4 + 2); /* every union member of the five schemas */
    pc_engine_free(e);
    return check_report();
}
