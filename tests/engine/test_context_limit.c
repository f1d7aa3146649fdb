/* test_context_limit.c - positions, not token counts, bound a context.
 *
 * A prompt that skips a long union member computes few tokens but places its
 * own text after the whole schema. With a context of 128 positions:
 *  1. A prompt whose positions pass the context, though its tokens would
 *     fit, is refused before anything is computed, with the request's name,
 *     line and column.
 *  2. A prompt that fits stops generating when the next position would pass
 *     the context: stop reason PC_STOP_CONTEXT, n_ctx - P tokens for a prompt
 *     whose last position is P (the first comes from the prefill, each later
 *     one from a decode step at P+1 .. n_ctx-1).
 *  3. Plain generation (positions 0..n-1) stops the same way.
 * Skips when the model is absent. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "default_model.h"
#include "engine/engine_internal.h"
#include "schema/schema.h"

#define N_CTX 128

static const char *SCHEMA =
    "<schema name=\"ctx\"><union scaffold=\"a\"><module name=\"a\">Short.</module><module name=\"b\">The long "
    "member holds many words so that the schema is long while a prompt that selects the short member computes only "
    "a few tokens of it. It goes on for a while: rivers, mountains, cities, harbours, bridges, towers, gardens, "
    "markets, libraries, museums, theatres and stations all appear here, one after another, until the union is "
    "some seventy tokens long.</module></union></schema>";

static pc_status run(pc_engine *e, const char *xml, int n_predict, pc_run_result *r, pc_error *err) {
    pc_run_params rp = {.gen = pc_gen_default_params(), .use_cache = true};
    rp.gen.temp = 0;
    rp.gen.n_predict = n_predict;
    rp.gen.ignore_eos = true;
    return pc_engine_run(e, xml, strlen(xml), "ctx-request", &rp, NULL, NULL, r, err);
}

static void check_refused(pc_engine *e, const pc_schema *s) {
    const char *xml = "<prompt schema=\"ctx\"><a/><user>Tell me about the rivers and the mountains and the cities and "
                      "the harbours and the bridges, please, in some detail, and then about the towers, the gardens, "
                      "the markets, the libraries and the museums, one after another, with a word on each.</user>"
                      "</prompt>";
    pc_run_result r = {0};
    pc_error err = {0};
    pc_status st = run(e, xml, 4, &r, &err);
    CHECK_MSG(st == PC_ERR_RANGE && strstr(err.msg, "ctx-request:1:1:") && strstr(err.msg, "last position") &&
                  strstr(err.msg, "context of 128"),
              "got %d '%s' (schema L = %d)", st, err.msg, s->length);
    pc_run_result_free(&r);
}

static void check_stop_at_context(pc_engine *e) {
    pc_run_result r = {0};
    pc_error err = {0};
    pc_status st = run(e, "<prompt schema=\"ctx\"><a/><user>Hi.</user></prompt>", 200, &r, &err);
    CHECK_MSG(st == PC_OK, "%s", err.msg);
    if (st != PC_OK) return;
    const int32_t last = r.input_pos[r.n_input - 1];
    CHECK_MSG(last > (int32_t)r.n_input + 50, "the prompt skips positions: last %d, %zu tokens", last, r.n_input);
    CHECK_EQ_INT(r.gen.stop, PC_STOP_CONTEXT);
    CHECK_EQ_INT(r.gen.n_tokens, N_CTX - last);
    pc_run_result_free(&r);
}

static void check_plain_generate(pc_engine *e) {
    int32_t ids[N_CTX];
    for (int i = 0; i < N_CTX; i++) ids[i] = 100 + i;
    pc_gen_params gp = pc_gen_default_params();
    gp.temp = 0;
    gp.n_predict = 50;
    gp.ignore_eos = true;
    pc_gen_result g = {0};
    pc_error err = {0};
    CHECK_MSG(pc_engine_generate(e, ids, 120, &gp, NULL, NULL, &g, &err) == PC_OK, "%s", err.msg);
    CHECK_EQ_INT(g.stop, PC_STOP_CONTEXT);
    CHECK_EQ_INT(g.n_tokens, N_CTX - 119);
    pc_gen_result_free(&g);
    CHECK(pc_engine_generate(e, ids, N_CTX, &gp, NULL, NULL, &g, &err) == PC_ERR_RANGE);
    CHECK_MSG(strstr(err.msg, "no room for an answer"), "%s", err.msg);
}

int main(void) {
    pc_engine *e = NULL;
    const int opened = test_engine_open(N_CTX, &e);
    if (opened) return opened;
    pc_error err = {0};
    if (pc_engine_schema_load(e, SCHEMA, strlen(SCHEMA), "ctx.xml", NULL, NULL, &err) != PC_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const pc_schema *s = pc_engine_find_schema(e, "ctx");
    CHECK_MSG(s->length > 70 && s->length < N_CTX - 20, "schema L = %d", s->length);
    check_refused(e, s);
    check_stop_at_context(e);
    check_plain_generate(e);
    pc_engine_free(e);
    return check_report();
}
