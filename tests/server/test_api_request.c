/* test_api_request.c - the request parser against hand-written bodies: what
 * OpenAI's clients send parses to the fields they mean; each malformed body
 * (bad JSON, wrong type, missing field, out of range, invalid UTF-8, more
 * than one choice or prompt) is a 400 naming the offending parameter. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "server/api_request.h"

static int parse(srv_api api, const char *body, srv_gen_req *r, srv_api_error *e) {
    return srv_parse_gen_request(body, strlen(body), api, r, e);
}

static void check_good_chat(void) {
    srv_gen_req r;
    srv_api_error e;
    const char *body =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hello \"},{\"type\":\"text\",\"text\":\"there\"}]}],"
        "\"max_tokens\":12,\"temperature\":0,\"top_p\":0.5,\"top_k\":7,\"min_p\":0.1,\"repeat_penalty\":1.1,\"seed\":42,"
        "\"stop\":[\"\\n\",\"END\"],\"stream\":true,\"stream_options\":{\"include_usage\":true},\"n\":1,"
        "\"unknown_field\":{\"x\":[1,2]},\"presence_penalty\":0.5}";
    CHECK_MSG(parse(SRV_CHAT, body, &r, &e) == 0, "%s", e.msg);
    CHECK_STR(r.model, "m");
    CHECK_EQ_INT(r.n_msgs, 2);
    CHECK_STR(r.msgs[0].role, "system");
    CHECK_STR(r.msgs[1].role, "user");
    CHECK_STR(r.msgs[1].content, "Hello there");
    CHECK_EQ_INT(r.max_tokens, 12);
    CHECK(r.temperature == 0 && r.top_p == 0.5f && r.top_k == 7 && r.min_p == 0.1f && r.repeat_penalty == 1.1f);
    CHECK(r.has_seed && r.seed == 42);
    CHECK_EQ_INT(r.n_stop, 2);
    CHECK_STR(r.stop[1], "END");
    CHECK(r.stream && r.include_usage);
    CHECK(r.pml == NULL);
    srv_gen_req_free(&r);

    /* defaults: llama.cpp's server's sampling, no max_tokens, no seed */
    CHECK(parse(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r, &e) == 0);
    CHECK(r.max_tokens == -1 && !r.has_seed && !r.stream && r.temperature == 0.8f && r.top_k == 40);
    srv_gen_req_free(&r);

    /* a PML chat: the messages follow the prompt; a stop given as one string */
    CHECK(parse(SRV_CHAT, "{\"pml\":\" <prompt schema=\\\"s\\\"><a/></prompt>\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"stop\":\"x\"}",
                &r, &e) == 0);
    CHECK(r.pml && strstr(r.pml, "<a/>") && r.n_stop == 1);
    srv_gen_req_free(&r);
}

static void check_good_completion(void) {
    srv_gen_req r;
    srv_api_error e;
    CHECK(parse(SRV_COMPLETION, "{\"prompt\":\"Once upon\",\"max_tokens\":3}", &r, &e) == 0);
    CHECK(r.prompt && !strcmp(r.prompt, "Once upon") && !r.prompt_is_pml && r.max_tokens == 3);
    srv_gen_req_free(&r);
    CHECK(parse(SRV_COMPLETION, "{\"prompt\":[\"\\n <prompt schema=\\\"s\\\"/>\"]}", &r, &e) == 0);
    CHECK(r.prompt_is_pml);
    srv_gen_req_free(&r);
    CHECK(parse(SRV_COMPLETION, "{\"prompt\":\"<promptly>\"}", &r, &e) == 0); /* not a <prompt> element */
    CHECK(!r.prompt_is_pml);
    srv_gen_req_free(&r);
    CHECK(parse(SRV_COMPLETION, "{\"prompt\":[1,2,3]}", &r, &e) == 0);
    CHECK(r.n_prompt_ids == 3 && r.prompt_ids[2] == 3 && !r.prompt);
    srv_gen_req_free(&r);
    CHECK(parse(SRV_COMPLETION, "{\"prompt\":[[5,6]],\"logprobs\":0,\"echo\":false}", &r, &e) == 0);
    CHECK(r.n_prompt_ids == 2);
    srv_gen_req_free(&r);
}

/* The body is refused with 400 and names `param` ("" for the body as a whole). */
static void refused(srv_api api, const char *body, size_t len, const char *param, const char *why) {
    srv_gen_req r;
    srv_api_error e = {0};
    const int rc = srv_parse_gen_request(body, len, api, &r, &e);
    CHECK_MSG(rc == -1 && e.http == 400, "%s: accepted (rc %d, http %d)", why, rc, e.http);
    CHECK_MSG(strcmp(e.param, param) == 0, "%s: param '%s', expected '%s' (%s)", why, e.param, param, e.msg);
    CHECK_MSG(e.msg[0] != '\0' && e.type != NULL, "%s: no message", why);
}

#define REFUSED(api, body, param) refused((api), (body), strlen(body), (param), body)

static void check_refusals(void) {
    REFUSED(SRV_CHAT, "", "");
    REFUSED(SRV_CHAT, "{\"messages\":", "");
    REFUSED(SRV_CHAT, "[1,2]", "");
    REFUSED(SRV_CHAT, "{\"a\":1,\"a\":2,\"messages\":[]}", ""); /* duplicate keys */
    REFUSED(SRV_CHAT, "{}", "messages");
    REFUSED(SRV_CHAT, "{\"messages\":[]}", "messages");
    REFUSED(SRV_CHAT, "{\"messages\":\"hi\"}", "messages");
    REFUSED(SRV_CHAT, "{\"messages\":[{\"content\":\"hi\"}]}", "messages[0].role");
    REFUSED(SRV_CHAT, "{\"messages\":[{\"role\":\"tool\",\"content\":\"hi\"}]}", "messages[0].role");
    REFUSED(SRV_CHAT, "{\"messages\":[{\"role\":\"user\"}]}", "messages[0].content");
    REFUSED(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content");
    REFUSED(SRV_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", "messages[0].content");
    const char *ok_msgs = "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]";
    char b[512];
#define WITH(extra) (snprintf(b, sizeof b, "{%s,%s}", ok_msgs, extra), b)
    REFUSED(SRV_CHAT, WITH("\"max_tokens\":\"10\""), "max_tokens");
    REFUSED(SRV_CHAT, WITH("\"max_tokens\":0"), "max_tokens");
    REFUSED(SRV_CHAT, WITH("\"max_tokens\":1.5"), "max_tokens");
    REFUSED(SRV_CHAT, WITH("\"temperature\":\"hot\""), "temperature");
    REFUSED(SRV_CHAT, WITH("\"temperature\":3"), "temperature");
    REFUSED(SRV_CHAT, WITH("\"top_p\":-0.1"), "top_p");
    REFUSED(SRV_CHAT, WITH("\"top_k\":-1"), "top_k");
    REFUSED(SRV_CHAT, WITH("\"seed\":\"x\""), "seed");
    REFUSED(SRV_CHAT, WITH("\"n\":2"), "n");
    REFUSED(SRV_CHAT, WITH("\"stream\":\"yes\""), "stream");
    REFUSED(SRV_CHAT, WITH("\"stream_options\":{\"include_usage\":true}"), "stream_options"); /* without stream */
    REFUSED(SRV_CHAT, WITH("\"stream\":true,\"stream_options\":[]"), "stream_options");
    REFUSED(SRV_CHAT, WITH("\"stop\":5"), "stop");
    REFUSED(SRV_CHAT, WITH("\"stop\":[\"a\",7]"), "stop");
    REFUSED(SRV_CHAT, WITH("\"stop\":\"\""), "stop");
    REFUSED(SRV_CHAT, WITH("\"logprobs\":true"), "logprobs");
    REFUSED(SRV_CHAT, WITH("\"model\":7"), "model");
    REFUSED(SRV_CHAT, WITH("\"pml\":7"), "pml");
    REFUSED(SRV_CHAT, WITH("\"pml\":\"<schema name='x'/>\""), "pml");
    REFUSED(SRV_CHAT, WITH("\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]"),
            "stop");
    REFUSED(SRV_COMPLETION, "{}", "prompt");
    REFUSED(SRV_COMPLETION, "{\"prompt\":\"\"}", "prompt");
    REFUSED(SRV_COMPLETION, "{\"prompt\":[\"a\",\"b\"]}", "prompt");
    REFUSED(SRV_COMPLETION, "{\"prompt\":[1,-2]}", "prompt");
    REFUSED(SRV_COMPLETION, "{\"prompt\":[1,\"x\"]}", "prompt");
    REFUSED(SRV_COMPLETION, "{\"prompt\":{}}", "prompt");
    REFUSED(SRV_COMPLETION, "{\"prompt\":\"a\",\"echo\":true}", "echo");
    REFUSED(SRV_COMPLETION, "{\"prompt\":\"a\",\"logprobs\":3}", "logprobs");
    /* invalid UTF-8 inside a string, and a NUL escape, are not JSON text */
    refused(SRV_COMPLETION, "{\"prompt\":\"a\xff\xfe\"}", 16, "", "invalid UTF-8");
    refused(SRV_COMPLETION, "{\"prompt\":\"a\\u0000b\"}", 20, "", "NUL");
    /* bytes after the object */
    REFUSED(SRV_COMPLETION, "{\"prompt\":\"a\"} x", "");
    /* a body with a NUL byte in it */
    refused(SRV_COMPLETION, "{\"prompt\":\"a\"}\0", 15, "", "NUL byte");
}

int main(void) {
    check_good_chat();
    check_good_completion();
    check_refusals();
    return check_report();
}
