/* fuzz_server.c - libFuzzer target for the server's request parser.
 *
 * Every input is parsed as a chat and as a completion body. A refusal must
 * be a 400 (or 503 when out of memory) with a message; an acceptance must
 * hold only what the parser promises (roles from the three it maps to, stop
 * strings within their limits, sampling values within their ranges), and
 * freeing must leave nothing behind (ASan's leak check). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "server/api_request.h"

static void check_accepted(const srv_gen_req *r) {
    for (size_t i = 0; i < r->n_msgs; i++) {
        const char *role = r->msgs[i].role;
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant")) __builtin_trap();
        if (!r->msgs[i].content) __builtin_trap();
    }
    if (r->n_stop > SRV_MAX_STOP) __builtin_trap();
    for (size_t i = 0; i < r->n_stop; i++) {
        const size_t n = strlen(r->stop[i]);
        if (n == 0 || n > SRV_MAX_STOP_BYTES) __builtin_trap();
    }
    if (!(r->temperature >= 0 && r->temperature <= 2) || !(r->top_p >= 0 && r->top_p <= 1) || r->top_k < 0)
        __builtin_trap();
    if (r->max_tokens == 0 || r->max_tokens < -1) __builtin_trap();
    if (r->include_usage && !r->stream) __builtin_trap();
    if (r->api == SRV_COMPLETION && !r->prompt == !r->prompt_ids) __builtin_trap();
    if (r->api == SRV_CHAT && r->n_msgs == 0 && !r->pml) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int api = SRV_CHAT; api <= SRV_COMPLETION; api++) {
        srv_gen_req r;
        srv_api_error e = {0};
        if (srv_parse_gen_request((const char *)data, size, (srv_api)api, &r, &e) == 0) {
            check_accepted(&r);
            srv_gen_req_free(&r);
        } else if ((e.http != 400 && e.http != 503) || e.msg[0] == '\0' || !e.type) {
            __builtin_trap();
        }
    }
    return 0;
}
