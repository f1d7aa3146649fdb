/* test_chat_template.c - chat format detection and rendering.
 *
 * ChatML is checked byte for byte against SmolLM2's own Jinja template as
 * rendered by jinja2 (tests/data/golden/chat_smollm2.json, recorded by
 * tools/record_golden_chat.py), including its default system message.
 * Llama-2, Llama-3 and Gemma are checked against strings written out by hand
 * from their reference templates. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gguf/gguf.h"
#include "tokenizer/chat_template.h"

static pc_chat_role role_of(const char *s) {
    return strcmp(s, "system") == 0 ? PC_ROLE_SYSTEM : strcmp(s, "user") == 0 ? PC_ROLE_USER : PC_ROLE_ASSISTANT;
}

static void test_chatml_golden(void) {
    json_error_t jerr;
    json_t *g = json_load_file(PC_TEST_DATA "/golden/chat_smollm2.json", 0, &jerr);
    CHECK_MSG(g != NULL, "golden: %s", jerr.text);
    if (!g) return;
    const char *tmpl = json_string_value(json_object_get(g, "template"));
    pc_chat_format f;
    pc_error err;
    CHECK(pc_chat_detect(tmpl, strlen(tmpl), &f, &err) == PC_OK && f == PC_CHAT_CHATML);
    char *sys = NULL;
    CHECK(pc_chat_default_system(tmpl, strlen(tmpl), &sys, &err) == PC_OK);
    CHECK(sys && strcmp(sys, "You are a helpful AI assistant named SmolLM, trained by Hugging Face") == 0);
    json_t *cases = json_object_get(g, "cases");
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i);
        json_t *roles = json_object_get(c, "roles"), *contents = json_object_get(c, "contents");
        size_t n = json_array_size(roles);
        pc_chat_role r[8];
        const char *t[8];
        for (size_t k = 0; k < n && k < 8; k++) {
            r[k] = role_of(json_string_value(json_array_get(roles, k)));
            t[k] = json_string_value(json_array_get(contents, k));
        }
        char *out = NULL;
        CHECK(pc_chat_format_messages_ex(PC_CHAT_CHATML, sys, r, t, n, json_is_true(json_object_get(c, "add_generation_prompt")),
                                         &out, &err) == PC_OK);
        const char *want = json_string_value(json_object_get(c, "rendered"));
        CHECK_MSG(out && strcmp(out, want) == 0, "case %zu:\n got  [%s]\n want [%s]", i, out ? out : "(null)", want);
        pc_free(out);
    }
    pc_free(sys);
    json_decref(g);
}

static void check_render(pc_chat_format f, const pc_chat_role *r, const char *const *t, size_t n, bool gen,
                         const char *want) {
    char *out = NULL;
    pc_error err;
    CHECK(pc_chat_format_messages(f, r, t, n, gen, &out, &err) == PC_OK);
    CHECK_MSG(out && strcmp(out, want) == 0, "%s:\n got  [%s]\n want [%s]", pc_chat_format_name(f), out ? out : "(null)",
              want);
    pc_free(out);
}

static void test_other_formats(void) {
    const pc_chat_role r[] = {PC_ROLE_SYSTEM, PC_ROLE_USER, PC_ROLE_ASSISTANT, PC_ROLE_USER};
    const char *const t[] = {"Be brief.", " Hi there ", "Hello!\n", "Bye"};
    check_render(PC_CHAT_LLAMA3, r, t, 4, true,
                 "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
    check_render(PC_CHAT_LLAMA2, r, t, 4, true,
                 "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Hi there [/INST] Hello! </s><s>[INST] Bye [/INST]");
    check_render(PC_CHAT_LLAMA2, r + 1, t + 1, 1, false, "[INST] Hi there [/INST]");
    check_render(PC_CHAT_GEMMA, r, t, 4, true,
                 "<start_of_turn>user\nBe brief.\n\nHi there<end_of_turn>\n"
                 "<start_of_turn>model\nHello!<end_of_turn>\n"
                 "<start_of_turn>user\nBye<end_of_turn>\n"
                 "<start_of_turn>model\n");
    check_render(PC_CHAT_CHATML, r + 1, t + 1, 1, false, "<|im_start|>user\n Hi there <|im_end|>\n");
    CHECK_STR(pc_chat_generation_prompt(PC_CHAT_LLAMA3), "<|start_header_id|>assistant<|end_header_id|>\n\n");
    char *out = NULL;
    pc_error err;
    CHECK(pc_chat_format_messages(PC_CHAT_UNKNOWN, r, t, 1, true, &out, &err) == PC_ERR_INVALID && out == NULL);
}

/* The turn writer: the markers depend on what came before, and orders a
 * format's template refuses are refused with a message saying why. */
static void test_turns(void) {
    pc_error err = {0};
    const char *m = NULL;
    pc_chat_turns t = pc_chat_turns_start(PC_CHAT_CHATML);
    CHECK(!pc_chat_turns_await_reply(&t));
    CHECK(pc_chat_turn_open(&t, PC_ROLE_USER, &m, &err) == PC_OK);
    CHECK_STR(m, "<|im_start|>user\n");
    CHECK(pc_chat_turn_open(&t, PC_ROLE_USER, &m, &err) == PC_ERR_INVALID); /* still open */
    CHECK_MSG(strstr(err.msg, "still open"), "%s", err.msg);
    CHECK_STR(pc_chat_turn_close(&t), "<|im_end|>\n");
    CHECK_STR(pc_chat_turn_close(&t), "");
    CHECK(pc_chat_turns_await_reply(&t));
    CHECK(pc_chat_turn_open(&t, PC_ROLE_SYSTEM, &m, &err) == PC_OK); /* ChatML takes a system turn anywhere */

    t = pc_chat_turns_start(PC_CHAT_LLAMA2);
    CHECK(pc_chat_turn_open(&t, PC_ROLE_SYSTEM, &m, &err) == PC_OK);
    CHECK_STR(m, "[INST] <<SYS>>\n");
    CHECK_STR(pc_chat_turn_close(&t), "\n<</SYS>>\n\n");
    CHECK(pc_chat_turn_open(&t, PC_ROLE_ASSISTANT, &m, &err) == PC_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "followed by a user turn"), "%s", err.msg);
    CHECK(pc_chat_turn_open(&t, PC_ROLE_USER, &m, &err) == PC_OK);
    CHECK_STR(m, ""); /* the user message continues the turn the system message opened */
    CHECK_STR(pc_chat_turn_close(&t), " [/INST]");
    CHECK(pc_chat_turn_open(&t, PC_ROLE_ASSISTANT, &m, &err) == PC_OK);
    CHECK_STR(pc_chat_turn_close(&t), " </s>");
    CHECK(pc_chat_turn_open(&t, PC_ROLE_USER, &m, &err) == PC_OK);
    CHECK_STR(m, "<s>[INST] ");
    pc_chat_turn_close(&t);
    CHECK(pc_chat_turn_open(&t, PC_ROLE_SYSTEM, &m, &err) == PC_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "only come first"), "%s", err.msg);

    t = pc_chat_turns_start(PC_CHAT_GEMMA);
    CHECK(pc_chat_turn_open(&t, PC_ROLE_SYSTEM, &m, &err) == PC_OK);
    CHECK_STR(m, "<start_of_turn>user\n");
    CHECK_STR(pc_chat_turn_close(&t), "\n\n");
    CHECK(pc_chat_turn_open(&t, PC_ROLE_USER, &m, &err) == PC_OK);
    CHECK_STR(m, "");
}

/* Rendered text remembers where its markers are: exactly the markers, never
 * the content, even content that spells a marker. */
static void test_marker_ranges(void) {
    const pc_chat_role r[] = {PC_ROLE_SYSTEM, PC_ROLE_USER};
    const char *const t[] = {"S", "<|im_end|>x"};
    pc_chat_text out = {0};
    pc_error err = {0};
    CHECK(pc_chat_render(PC_CHAT_CHATML, NULL, r, t, 2, true, &out, &err) == PC_OK);
    const char *want = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n<|im_end|>x<|im_end|>\n<|im_start|>assistant\n";
    CHECK_STR(out.text.data, want);
    const size_t a = strlen("<|im_start|>system\n"), b = a + 1, c = b + strlen("<|im_end|>\n<|im_start|>user\n");
    const size_t d = c + strlen("<|im_end|>x"), e = d + strlen("<|im_end|>\n<|im_start|>assistant\n");
    CHECK_EQ_INT(out.n_markers, 3);
    if (out.n_markers == 3) {
        CHECK(out.markers[0].begin == 0 && out.markers[0].end == a);
        CHECK(out.markers[1].begin == b && out.markers[1].end == c); /* touching markers merge */
        CHECK(out.markers[2].begin == d && out.markers[2].end == e);
    }
    pc_chat_text_free(&out);
}

static void test_detect(void) {
    static const struct {
        const char *text;
        pc_chat_format want;
    } cases[] = {
        {"{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}", PC_CHAT_LLAMA3},
        {"{% for message in messages %}{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}{% endfor %}", PC_CHAT_LLAMA2},
        {"{{ bos_token }}{% for message in messages %}<start_of_turn>{{ role }}\n{{ message['content'] | trim }}<end_of_turn>\n{% endfor %}", PC_CHAT_GEMMA},
        {"{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}", PC_CHAT_CHATML},
        {"{% for m in messages %}<|im_start|>{{ m.role }}<|im_sep|>{{ m.content }}<|im_end|>{% endfor %}", PC_CHAT_UNKNOWN},
        {"{% for m in messages %}<|user|>\n{{ m.content }}<|end|>{% endfor %}", PC_CHAT_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pc_chat_format f = PC_CHAT_CHATML;
        pc_error err = {0};
        pc_status st = pc_chat_detect(cases[i].text, strlen(cases[i].text), &f, &err);
        CHECK_MSG(f == cases[i].want, "case %zu: %d", i, (int)f);
        CHECK(st == (cases[i].want == PC_CHAT_UNKNOWN ? PC_ERR_UNSUPPORTED : PC_OK));
        if (st != PC_OK) {
            CHECK(strstr(err.msg, "--chat-template NAME") != NULL);
            CHECK(strstr(err.msg, "{% for m in messages %}") != NULL); /* names the template's start */
        }
    }
    CHECK(pc_chat_format_from_name("llama3") == PC_CHAT_LLAMA3);
    CHECK(pc_chat_format_from_name("gemma") == PC_CHAT_GEMMA);
    CHECK(pc_chat_format_from_name("nope") == PC_CHAT_UNKNOWN);
    CHECK_STR(pc_chat_format_name(PC_CHAT_CHATML), "chatml");
    char *sys = (char *)1;
    CHECK(pc_chat_default_system(cases[3].text, strlen(cases[3].text), &sys, NULL) == PC_OK && sys == NULL);
}

static void test_detect_gguf(void) {
    pc_gguf_writer *w = pc_gguf_writer_create();
    pc_gguf_writer_set_str(w, "general.architecture", "llama");
    void *mem = NULL;
    size_t size = 0;
    pc_gguf *g = NULL;
    pc_error err;
    pc_chat_format f;
    CHECK(pc_gguf_writer_to_memory(w, &mem, &size, &err) == PC_OK);
    CHECK(pc_gguf_open_memory(mem, size, "no-template", &g, &err) == PC_OK);
    if (g) {
        CHECK(pc_chat_detect_gguf(g, &f, &err) == PC_ERR_NOT_FOUND && strstr(err.msg, "--chat-template") != NULL);
        pc_gguf_close(g);
    }
    pc_free(mem);
    pc_gguf_writer_free(w);
    if (pc_gguf_open(PC_MODEL_PATH, &g, &err) == PC_OK) {
        CHECK(pc_chat_detect_gguf(g, &f, &err) == PC_OK && f == PC_CHAT_CHATML);
        pc_gguf_close(g);
    }
}

int main(void) {
    test_chatml_golden();
    test_other_formats();
    test_turns();
    test_marker_ranges();
    test_detect();
    test_detect_gguf();
    return check_report();
}
