/* test_layout_limits.c - a schema's positions and its KV are bounded while it
 * is laid out, whatever lengths it declares.
 *
 *  1. Parameters whose lengths pass the context are refused at the first one
 *     that does, with its line and column, before placeholders are made for
 *     it: memory stays in proportion to the document (peak RSS grows by less
 *     than 32 MiB for 40 parameters of 2^20 positions each, 160 MiB of
 *     placeholders had they been made).
 *  2. Lengths that sum past 2^32 (parameters with scaffold text, which need
 *     no placeholders) cannot wrap the position counter into a small L.
 *  3. Union members each hold their own KV: a schema whose members together
 *     pass the token budget is refused at the member's parameter that does.
 *  4. What fits is laid out, with L = BOS + the longest member.
 * Uses the default model's tokenizer; skips when it is absent. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "check.h"
#include "default_model.h"
#include "schema/schema.h"
#include "util/buf.h"

static long peak_rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static pc_status lay(const pc_tokenizer *tok, const char *xml, int64_t max_tokens, pc_schema **out, pc_error *err) {
    pc_pml_doc *doc = NULL;
    pc_status st = pc_pml_parse_schema(xml, strlen(xml), "limits.xml", NULL, &doc, err);
    if (st != PC_OK) return st;
    pc_layout_ctx lc = {.tok = tok, .chat = PC_CHAT_CHATML, .add_bos = true, .n_ctx = 8192, .max_tokens = max_tokens,
                        .placeholder = 0};
    return pc_schema_layout(doc, &lc, out, err);
}

/* The document so far is one line: the next element's column is its length + 1. */
static unsigned col_here(const pc_buf *b) { return (unsigned)b->len + 1; }

static void check_past_context(const pc_tokenizer *tok) {
    pc_buf b = {0};
    pc_buf_puts(&b, "<schema name=\"big\"><module name=\"m\">");
    for (int i = 0; i < 7; i++) pc_buf_printf(&b, "<parameter name=\"s%d\" length=\"1000\"/>", i);
    const unsigned first_bad = col_here(&b); /* positions 1 + 7000 taken; 1000 more pass 8191 */
    for (int i = 0; i < 40; i++) pc_buf_printf(&b, "<parameter name=\"p%d\" length=\"1048576\"/>", i);
    pc_buf_puts(&b, "</module></schema>");
    char want[64];
    snprintf(want, sizeof want, "limits.xml:1:%u: parameter 'p0' ends at position", first_bad);
    pc_schema *s = NULL;
    pc_error err = {0};
    const long before = peak_rss_kb();
    pc_status st = lay(tok, b.data, (int64_t)1 << 40, &s, &err);
    const long grown = peak_rss_kb() - before;
    CHECK_MSG(st == PC_ERR_RANGE && strstr(err.msg, want) && strstr(err.msg, "past the context of 8192"),
              "got %d '%s', want '%s'", st, err.msg, want);
    CHECK_MSG(grown < 32 * 1024, "laying out grew the peak RSS by %ld KiB", grown);
    pc_schema_free(s);
    pc_buf_free(&b);
}

static void check_no_wrap(const pc_tokenizer *tok) {
    pc_buf b = {0};
    pc_buf_puts(&b, "<schema name=\"wrap\"><module name=\"m\">");
    const unsigned first = col_here(&b);
    for (int i = 0; i < 4096; i++) pc_buf_printf(&b, "<parameter name=\"p%d\" length=\"1048576\" scaffold=\"a\"/>", i);
    pc_buf_puts(&b, "</module></schema>");
    char want[48];
    snprintf(want, sizeof want, "limits.xml:1:%u: parameter 'p0'", first);
    pc_schema *s = NULL;
    pc_error err = {0};
    pc_status st = lay(tok, b.data, (int64_t)1 << 40, &s, &err);
    CHECK_MSG(st == PC_ERR_RANGE && strstr(err.msg, want), "got %d '%s' (L = %d), want '%s'", st, err.msg,
              s ? s->length : -1, want);
    pc_schema_free(s);
    pc_buf_free(&b);
}

static void check_union_budget(const pc_tokenizer *tok) {
    pc_buf b = {0};
    pc_buf_puts(&b, "<schema name=\"many\"><union>");
    unsigned col51 = 0;
    for (int i = 0; i < 100; i++) {
        pc_buf_printf(&b, "<module name=\"m%d\">", i);
        if (i == 50) col51 = col_here(&b);
        pc_buf_printf(&b, "<parameter name=\"p\" length=\"1000\"/></module>");
    }
    pc_buf_puts(&b, "</union></schema>");
    char want[64];
    snprintf(want, sizeof want, "limits.xml:1:%u: parameter 'p' brings the schema to 51001", col51);
    pc_schema *s = NULL;
    pc_error err = {0};
    pc_status st = lay(tok, b.data, 50001, &s, &err); /* BOS + 50 members of 1000 fit exactly */
    CHECK_MSG(st == PC_ERR_RANGE && strstr(err.msg, want) && strstr(err.msg, "over its limit of 50001"),
              "got %d '%s', want '%s'", st, err.msg, want);
    pc_schema_free(s);
    s = NULL;
    st = lay(tok, b.data, 100001, &s, &err);
    CHECK_MSG(st == PC_OK && s && s->length == 1 + 1000 && s->n_params == 100, "got %d '%s'", st, err.msg);
    pc_schema_free(s);
    pc_buf_free(&b);
}

int main(void) {
    pc_tokenizer *tok = NULL;
    const int opened = test_tokenizer_open(&tok);
    if (opened) return opened;
    check_past_context(tok);
    check_no_wrap(tok);
    check_union_budget(tok);
    pc_tokenizer_free(tok);
    return check_report();
}
