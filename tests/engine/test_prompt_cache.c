/* test_prompt_cache.c - Prompt Cache end to end on the real default model.
 *
 *  1. Exactness: a prompt importing exactly the scaffold, no arguments, gives
 *     bit-identical first-token logits and the same greedy answer cached and
 *     uncached - also with a cache="false" module, parameters filled by their
 *     scaffold text and by placeholders, and a union with a scaffold member.
 *  2. Layout: hand-derived positions for nested unions, parameters, src= text and
 *     chat tags (token counts of each piece come from the tokenizer, which the
 *     tokenizer tests hold to llama.cpp; positions follow from the layout rules;
 *     chat markers are the template's, exactly).
 *  3. The prototype's schemas (shared/pml-examples) parse, lay out, encode, and
 *     prompts that pick union members, nested modules and arguments produce text.
 *  4. Bad input: each error is clear and leaves the engine and its cache intact.
 *  5. Memory: KV bytes per token = 2 x layers x kv_heads x head_dim x 2 (from the
 *     model's metadata); a request allocates no KV for cached tokens.
 * Skips when the model is absent. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "docs_trip_schemas.h"
#include "default_model.h"
#include "engine/engine_internal.h"
#include "schema/schema.h"

static int load(pc_engine *eng, const char *xml, const char *name) {
    pc_error err = {0};
    pc_schema_params sp = {.src_root = PC_TEST_DATA "/pml"};
    pc_status s = pc_engine_schema_load(eng, xml, strlen(xml), name, &sp, NULL, &err);
    if (s != PC_OK) fprintf(stderr, "load %s: %s\n", name, err.msg);
    return s == PC_OK ? 0 : -1;
}

static pc_status run(pc_engine *eng, const char *xml, bool cache, int n, float *logits, pc_run_result *r,
                     pc_error *err) {
    pc_run_params rp = {.gen = pc_gen_default_params(), .use_cache = cache};
    rp.gen.temp = 0;
    rp.gen.n_predict = n;
    rp.gen.ignore_eos = true;
    rp.gen.first_logits = logits;
    return pc_engine_run(eng, xml, strlen(xml), "test-request", &rp, NULL, NULL, r, err);
}

/* ---------------- 1. exactness ---------------- */

static const char *TRIP_P =
    "<prompt schema=\"trip\"><plan><home/></plan><clock/><after/><user>What should I do?</user></prompt>";

static void check_exact(pc_engine *eng, const char *label, const char *prompt) {
    const int V = pc_engine_n_vocab(eng);
    float *a = malloc(sizeof(float) * V), *b = malloc(sizeof(float) * V);
    pc_run_result ra = {0}, rb = {0};
    pc_error err = {0};
    CHECK_MSG(run(eng, prompt, true, 16, a, &ra, &err) == PC_OK, "%s cached: %s", label, err.msg);
    CHECK_MSG(run(eng, prompt, false, 16, b, &rb, &err) == PC_OK, "%s uncached: %s", label, err.msg);
    CHECK_MSG(memcmp(a, b, sizeof(float) * V) == 0, "%s: cached logits differ from uncached", label);
    CHECK_MSG(ra.gen.n_tokens == rb.gen.n_tokens &&
                  memcmp(ra.gen.tokens, rb.gen.tokens, ra.gen.n_tokens * sizeof(int32_t)) == 0,
              "%s: greedy answers differ", label);
    CHECK_MSG(ra.cached_tokens > 0 && ra.cached_tokens + ra.fresh_tokens == rb.fresh_tokens,
              "%s: cached %lld + fresh %lld != uncached %lld", label, (long long)ra.cached_tokens,
              (long long)ra.fresh_tokens, (long long)rb.fresh_tokens);
    pc_run_result_free(&ra);
    pc_run_result_free(&rb);
    free(a);
    free(b);
}

/* Uncached: the same tokens at the same positions; with an argument or a
 * non-scaffold member the answers may differ, but both must run. */
static void check_runs(pc_engine *eng, const char *label, const char *prompt) {
    pc_run_result r = {0};
    pc_error err = {0};
    CHECK_MSG(run(eng, prompt, true, 8, NULL, &r, &err) == PC_OK, "%s: %s", label, err.msg);
    CHECK_MSG(r.gen.n_tokens == 8, "%s: %zu tokens", label, r.gen.n_tokens);
    pc_run_result_free(&r);
}

/* ---------------- 2. layout ---------------- */

static int ntok(const pc_engine *eng, const char *text, bool special) {
    int32_t *ids = NULL;
    size_t n = 0;
    pc_error err = {0};
    if (pc_engine_tokenize(eng, text, strlen(text), false, special, &ids, &n, &err) != PC_OK) return -1;
    pc_free(ids);
    return (int)n;
}

static const pc_module *mod(const pc_schema *s, const char *name) {
    for (int32_t i = 0; i < s->n_modules; i++)
        if (!strcmp(s->modules[i].name, name)) return &s->modules[i];
    return NULL;
}

#define CHECK_SPAN(s, name, st, ln)                                                                      \
    do {                                                                                                 \
        const pc_module *m_ = mod(s, name);                                                              \
        CHECK_MSG(m_ && m_->start == (st) && m_->len == (ln), "module %s: [%d,+%d) expected [%d,+%d)", name, \
                  m_ ? m_->start : -1, m_ ? m_->len : -1, (int)(st), (int)(ln));                         \
    } while (0)

static void check_layout_nested(pc_engine *eng) {
    const char *xml = "<schema name=\"lay\">one<module name=\"a\">two<union><module name=\"b\">three four</module>"
                      "<module name=\"c\">five<union scaffold=\"e\"><module name=\"d\">six</module><module name=\"e\">"
                      "seven eight nine</module></union></module></union>ten<parameter name=\"p\" length=\"3\"/>"
                      "eleven</module>twelve</schema>";
    if (load(eng, xml, "lay.xml")) {
        CHECK(0);
        return;
    }
    const pc_schema *s = pc_engine_find_schema(eng, "lay");
    const int one = ntok(eng, "one", true), two = ntok(eng, "two", true), b = ntok(eng, "three four", true),
              five = ntok(eng, "five", true), six = ntok(eng, "six", true), e = ntok(eng, "seven eight nine", true),
              ten = ntok(eng, "ten", true), eleven = ntok(eng, "eleven", true), twelve = ntok(eng, "twelve", true);
    const int bos = pc_tokenizer_add_bos(eng->tok) ? 1 : 0;
    const int a0 = bos + one, u0 = a0 + two, inner = (six > e ? six : e), c_len = five + inner;
    const int u_len = b > c_len ? b : c_len, p0 = u0 + u_len + ten, a_len = two + u_len + ten + 3 + eleven;
    CHECK_SPAN(s, "a", a0, a_len);
    CHECK_SPAN(s, "b", u0, b);            /* union members share the union's start */
    CHECK_SPAN(s, "c", u0, c_len);        /* a member is as long as its nested union's longest member */
    CHECK_SPAN(s, "d", u0 + five, six);
    CHECK_SPAN(s, "e", u0 + five, e);
    CHECK_EQ_INT(s->unions[0].len, u_len);
    CHECK_EQ_INT(s->params[0].start, p0); /* a parameter reserves its length */
    CHECK_EQ_INT(s->params[0].len, 3);
    CHECK_EQ_INT(s->length, a0 + a_len + twelve);
    CHECK(s->modules[s->unions[1].scaffold].name[0] == 'e');
    CHECK(!mod(s, "b")->scaffold && !mod(s, "c")->scaffold && mod(s, "a")->scaffold);
}

static void check_layout_chat_src(pc_engine *eng) {
    const char *xml = "<schema name=\"chat\"><system>Be brief.</system><user><module name=\"f\" src=\"doc.txt\"/>"
                      "</user></schema>";
    if (load(eng, xml, "chat.xml")) {
        CHECK(0);
        return;
    }
    const pc_schema *s = pc_engine_find_schema(eng, "chat");
    /* the markers exactly as the template writes them, untouched by the whitespace rule */
    pc_chat_turns t = pc_chat_turns_start(eng->chat);
    const char *sys_open = NULL, *usr_open = NULL;
    pc_error err = {0};
    CHECK(pc_chat_turn_open(&t, PC_ROLE_SYSTEM, &sys_open, &err) == PC_OK);
    const char *sys_close = pc_chat_turn_close(&t);
    CHECK(pc_chat_turn_open(&t, PC_ROLE_USER, &usr_open, &err) == PC_OK);
    char head[256];
    snprintf(head, sizeof head, "%sBe brief.%s%s", sys_open, sys_close, usr_open);
    const int bos = pc_tokenizer_add_bos(eng->tok) ? 1 : 0;
    const int h = ntok(eng, head, true), f = ntok(eng, "The cache keeps module attention states. ", false);
    CHECK_SPAN(s, "f", bos + h, f);
    CHECK_EQ_INT(s->pieces[bos].n, h);
    CHECK_EQ_INT(s->pieces[bos].tokens[0], pc_tokenizer_find(eng->tok, "<|im_start|>"));
}

/* A parameter without scaffold text is filled with the placeholder token:
 * the model's unknown token by default, or the one the schema's loader names. */
static void check_placeholder(pc_engine *eng) {
    const char *xml = "<schema name=\"ph\"><module name=\"m\">Hi <parameter name=\"p\" length=\"3\"/></module></schema>";
    pc_error err = {0};
    pc_schema_params sp = {.placeholder = "<|im_start|>"};
    CHECK_MSG(pc_engine_schema_load(eng, xml, strlen(xml), "ph.xml", &sp, NULL, &err) == PC_OK, "%s", err.msg);
    const pc_schema *s = pc_engine_find_schema(eng, "ph");
    const int32_t want = pc_tokenizer_find(eng->tok, "<|im_start|>");
    const pc_piece *fill = s ? &s->pieces[s->params[0].fill_piece] : NULL;
    CHECK(want >= 0 && want != eng->placeholder && fill && fill->n == 3);
    for (int32_t i = 0; fill && i < fill->n; i++) CHECK_EQ_INT(fill->tokens[i], want);
    pc_engine_schema_remove(eng, "ph", &err);
    sp.placeholder = "two words";
    CHECK(pc_engine_schema_load(eng, xml, strlen(xml), "ph.xml", &sp, NULL, &err) == PC_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "ph.xml: placeholder \"two words\" is 2 tokens"), "%s", err.msg);
}

/* ---------------- 3. the prototype's schemas ---------------- */

static void check_examples(pc_engine *eng) {
    static const struct { const char *file; bool lenient; const char *prompts[3]; } ex[] = {
        {"travel.xml", false, {"travel_tokyo.xml", "travel_domestic.xml"}},
        {"mbti.xml", false, {"mbti_intj.xml"}},
        {"persona.xml", false, {"persona_teacher.xml"}},
        {"code-bookstore.xml", false, {"bookstore_checkout.xml"}},
    };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/pml-examples/%s", PC_SHARED_DIR, ex[i].file);
        if (access(path, R_OK) != 0) {
            printf("%s absent: skipped\n", path);
            continue;
        }
        char *warnings = NULL;
        pc_schema_params sp = {.lenient = ex[i].lenient, .warnings = &warnings};
        pc_error err = {0};
        char *name = NULL;
        CHECK_MSG(pc_engine_schema_load_file(eng, path, &sp, &name, &err) == PC_OK, "%s: %s", ex[i].file, err.msg);
        free(warnings);
        pc_schema_stats st;
        if (name && pc_engine_schema_stats(eng, name, &st, &err) == PC_OK)
            CHECK(st.kv_bytes > 0 && st.length > 0 && st.encoded_tokens >= st.length - 1);
        free(name);
        for (int j = 0; j < 3 && ex[i].prompts[j]; j++) {
            snprintf(path, sizeof path, "%s/prompts/%s", PC_TEST_DATA, ex[i].prompts[j]);
            FILE *fp = fopen(path, "rb");
            char buf[4096] = {0};
            size_t n = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;
            if (fp) fclose(fp);
            CHECK_MSG(n > 0, "read %s", path);
            check_runs(eng, ex[i].prompts[j], buf);
        }
    }
}

/* Raw '<' in code text: strict mode refuses it with a position, lenient mode
 * accepts it and says where it changed the text. */
static void check_lenient(pc_engine *eng) {
    const char *xml = "<schema name=\"code\"><module name=\"cmp.py\">def lt(a, b):\n    return a < b\n</module></schema>";
    pc_error err = {0};
    pc_schema_params strict = {0};
    CHECK(pc_engine_schema_load(eng, xml, strlen(xml), "code.xml", &strict, NULL, &err) == PC_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "code.xml:2:") != NULL, "strict error: %s", err.msg);
    char *warnings = NULL;
    pc_schema_params lenient = {.lenient = true, .warnings = &warnings};
    CHECK_MSG(pc_engine_schema_load(eng, xml, strlen(xml), "code.xml", &lenient, NULL, &err) == PC_OK, "%s", err.msg);
    CHECK_MSG(warnings && strstr(warnings, "code.xml:2:"), "lenient warnings: %s", warnings ? warnings : "(none)");
    free(warnings);
    check_runs(eng, "lenient code", "<prompt schema=\"code\"><cmp.py/><user>Explain lt.</user></prompt>");
}

/* ---------------- 4. bad input ---------------- */

static void expect_schema_error(pc_engine *eng, const char *xml, pc_status want, const char *needle) {
    pc_error err = {0};
    pc_schema_params sp = {.src_root = PC_TEST_DATA "/pml"};
    pc_status s = pc_engine_schema_load(eng, xml, strlen(xml), "bad.xml", &sp, NULL, &err);
    CHECK_MSG(s == want && strstr(err.msg, needle), "schema error: got %d '%s', want %d with '%s'", s, err.msg, want,
              needle);
}

static void expect_prompt_error(pc_engine *eng, const char *xml, pc_status want, const char *needle) {
    pc_run_result r = {0};
    pc_error err = {0};
    pc_status s = run(eng, xml, true, 4, NULL, &r, &err);
    CHECK_MSG(s == want && strstr(err.msg, needle), "prompt error: got %d '%s', want %d with '%s'", s, err.msg, want,
              needle);
    pc_run_result_free(&r);
}

static void check_bad_input(pc_engine *eng) {
    pc_schema_stats before, after;
    pc_error err = {0};
    CHECK(pc_engine_schema_stats(eng, "trip", &before, &err) == PC_OK);
    expect_schema_error(eng, "<schema name=\"x\"><module name=\"m\">text</schema>", PC_ERR_FORMAT, "bad.xml:1:");
    expect_schema_error(eng, "<schema><module name=\"m\">t</module></schema>", PC_ERR_FORMAT, "name");
    expect_schema_error(eng, "<schema name=\"d\"><module name=\"m\">a</module><module name=\"m\">b</module></schema>",
                        PC_ERR_FORMAT, "m");
    expect_schema_error(eng, "<!DOCTYPE s [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><schema name=\"e\">&e;</schema>",
                        PC_ERR_FORMAT, "bad.xml:1:");
    expect_schema_error(eng, "<!DOCTYPE s [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
                             "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><schema name=\"bomb\">&c;</schema>",
                        PC_ERR_FORMAT, "bad.xml:1:");
    char *deep = malloc(200000);
    strcpy(deep, "<schema name=\"deep\">");
    for (int i = 0; i < 5000; i++) sprintf(deep + strlen(deep), "<module name=\"m%d\">", i);
    for (int i = 0; i < 5000; i++) strcat(deep, "</module>");
    strcat(deep, "</schema>");
    expect_schema_error(eng, deep, PC_ERR_RANGE, "deeper than");
    free(deep);
    expect_schema_error(eng, "<schema name=\"s\"><module name=\"m\" src=\"../../etc/passwd\"/></schema>",
                        PC_ERR_INVALID, "schema folder");
    {
        bool already = false;
        pc_error err = {0};
        pc_schema_params sp = {.already = &already};
        CHECK_MSG(pc_engine_schema_load(eng, TRIP, strlen(TRIP), "again.xml", &sp, NULL, &err) == PC_OK && already,
                  "the same schema again must be a no-op: %s", err.msg);
        char *other = strdup(TRIP);
        memcpy(strstr(other, "good book"), "good bool", 9); /* another module text: another digest */
        expect_schema_error(eng, other, PC_ERR_EXISTS, "a different schema named 'trip' is already registered");
        free(other);
    }

    char want[128];
    snprintf(want, sizeof want, "bad.xml:1:36: scaffold of parameter 'p' is %d tokens, longer than its length 2",
             ntok(eng, "one two three four", false));
    expect_schema_error(eng, "<schema name=\"sc\"><module name=\"m\"><parameter name=\"p\" length=\"2\" "
                             "scaffold=\"one two three four\"/></module></schema>", PC_ERR_FORMAT, want);
    expect_prompt_error(eng, "<prompt schema=\"nope\"><user>hi</user></prompt>", PC_ERR_NOT_FOUND, "nope");
    expect_prompt_error(eng, "<prompt><user>hi</user></prompt>", PC_ERR_NOT_FOUND,
                        "test-request:1:1: the prompt names no schema: write <prompt schema=\"NAME\">");
    expect_prompt_error(eng, "<prompt schema=\"trip\"><plann/></prompt>", PC_ERR_NOT_FOUND, "plann");
    expect_prompt_error(eng, "<prompt schema=\"trip\"><plan dayz=\"2\"/></prompt>", PC_ERR_NOT_FOUND, "dayz");
    expect_prompt_error(eng, "<prompt schema=\"trip\"><plan><home/><abroad/></plan></prompt>", PC_ERR_INVALID,
                        "one union");
    expect_prompt_error(eng, "<prompt schema=\"trip\"><plan days=\"a very very long stay of many many weeks\"/>"
                             "</prompt>",
                        PC_ERR_RANGE, "length 4");
    expect_prompt_error(eng, "<prompt schema=\"trip\"><plan><home/></plan", PC_ERR_FORMAT, "test-request:1:");

    /* the engine and its cache are unharmed */
    CHECK(pc_engine_schema_stats(eng, "trip", &after, &err) == PC_OK);
    CHECK(before.kv_bytes == after.kv_bytes);
    check_exact(eng, "trip after errors", TRIP_P);
}

/* ---------------- 5. memory ---------------- */

static void check_memory(pc_engine *eng) {
    pc_gguf *g = NULL;
    pc_error err = {0};
    if (pc_gguf_open(PC_MODEL_PATH, &g, &err) != PC_OK) {
        CHECK(0);
        return;
    }
    uint32_t layers, kvh, heads, embd;
    pc_gguf_get_u32(g, "llama.block_count", &layers, &err);
    pc_gguf_get_u32(g, "llama.attention.head_count_kv", &kvh, &err);
    pc_gguf_get_u32(g, "llama.attention.head_count", &heads, &err);
    pc_gguf_get_u32(g, "llama.embedding_length", &embd, &err);
    pc_gguf_close(g);
    const size_t bpt = 2u * layers * kvh * (embd / heads) * 2u;
    pc_schema_stats st;
    CHECK(pc_engine_schema_stats(eng, "docs", &st, &err) == PC_OK);
    CHECK_EQ_INT(st.kv_bytes_per_token, bpt);
    const pc_schema *s = pc_engine_find_schema(eng, "docs");
    int64_t kept = 0;
    for (int32_t i = 0; i < s->n_pieces; i++) kept += s->pieces[i].n;
    CHECK_EQ_INT(st.kv_bytes, (size_t)kept * bpt);
    pc_run_result r = {0};
    const int n = 8;
    CHECK(run(eng, DOCS_P, true, n, NULL, &r, &err) == PC_OK);
    /* one request span: the prompt's text and the answer, rounded up to whole key blocks */
    const size_t need = (size_t)((r.fresh_tokens + n + PC_KV_BLOCK - 1) / PC_KV_BLOCK * PC_KV_BLOCK) * bpt;
    CHECK(r.cached_tokens > 30);
    CHECK_MSG(r.kv_bytes == need, "request allocated %zu bytes, fresh+generated need %zu", r.kv_bytes, need);
    pc_run_result_free(&r);
}

int main(void) {
    pc_engine *eng = NULL;
    const int opened = test_engine_open(4096, &eng);
    if (opened) return opened;
    CHECK(load(eng, DOCS, "docs.xml") == 0);
    CHECK(load(eng, TRIP, "trip.xml") == 0);
    check_exact(eng, "docs", DOCS_P);
    check_exact(eng, "trip (union scaffold, parameters, cache=false)", TRIP_P);
    check_runs(eng, "trip abroad + argument", "<prompt schema=\"trip\"><plan days=\"a week\"><abroad/></plan>"
                                              "<user>Where to?</user></prompt>");
    check_layout_nested(eng);
    check_layout_chat_src(eng);
    check_placeholder(eng);
    check_memory(eng);
    check_bad_input(eng);
    check_lenient(eng);
    check_examples(eng);
    pc_engine_free(eng);
    return check_report();
}
