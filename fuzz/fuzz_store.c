/* fuzz_store.c - libFuzzer target for what the store reads back from disk and
 * Redis: entry headers and Redis manifests (store/format.h), and the replies
 * the Redis tier reads straight from its socket (store/resp_bulk.h).
 *
 * The first byte chooses: bit 2 set, the rest is a reply stream fed through a
 * pipe to the bulk reader; otherwise bit 0 the parser (header / manifest),
 * bit 1 whether the checksums are first recomputed over the rest, so the
 * fuzzer reaches the checks that sit behind the checksum instead of stopping
 * at it. Any input
 * either is refused with a message, or parses into values that agree with the
 * bytes and with each other: sizes within the input and the limits, the
 * payload length the layout implies, and a re-serialization of the parsed
 * fields that gives back the very bytes the checksum covers. A broken
 * expectation traps. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include <unistd.h>

#include "store/format.h"
#include "store/resp_bulk.h"

#define EXPECT(cond)                                                                                               \
    do {                                                                                                           \
        if (!(cond)) __builtin_trap();                                                                             \
    } while (0)

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Writes the header checksum the parser will compute, where the input allows. */
static void reseal_header(uint8_t *b, size_t len) {
    if (len < PC_ENTRY_FIXED) return;
    const uint64_t n = rd32(b + 132), label = rd32(b + 140), end = PC_ENTRY_FIXED + 4 * n + label;
    if (n > PC_ENTRY_MAX_TOKENS || label > PC_ENTRY_MAX_LABEL || end > len) return;
    wr64(b + 160, XXH3_64bits_withSeed(b + PC_ENTRY_FIXED, (size_t)(end - PC_ENTRY_FIXED), XXH3_64bits(b, 160)));
}

static void reseal_manifest(uint8_t *b, size_t len) {
    if (len < 16 || len != pc_manifest_bytes(rd32(b + 12))) return;
    wr64(b + len - 8, XXH3_64bits(b, len - 8));
}

static void check_header(const uint8_t *b, size_t len) {
    pc_entry_header h;
    pc_error err = {0};
    if (pc_entry_header_parse(b, len, &h, &err) != PC_OK) {
        EXPECT(err.code == PC_ERR_FORMAT && err.msg[0]);
        return;
    }
    EXPECT(h.header_len <= len && h.header_len % PC_ENTRY_ALIGN == 0);
    EXPECT(h.n > 0 && h.n <= PC_ENTRY_MAX_TOKENS && h.cap >= h.n && h.cap % 8 == 0 && h.cap - h.n < 8);
    EXPECT(h.label_off == h.tokens_off + 4u * (size_t)h.n && h.label_off + h.label_len <= h.header_len);
    pc_entry_layout L;
    EXPECT(pc_entry_layout_of(h.n_layer, h.dim, h.cap, &L) && L.len == h.payload_len);
    EXPECT(L.k_off >= 4u * (uint64_t)h.cap && L.v_off >= L.k_off && L.v_off % 64 == 0 && L.k_off % 64 == 0);
    /* the writer, fed the parsed fields, reproduces every byte the checksum covers */
    uint8_t *w = malloc(h.header_len);
    int32_t *tokens = malloc(4u * (size_t)h.n);
    EXPECT(w && tokens);
    memcpy(tokens, b + h.tokens_off, 4u * (size_t)h.n);
    pc_entry_header_write(&h, tokens, (const char *)b + h.label_off, w);
    EXPECT(memcmp(w, b, h.label_off + h.label_len) == 0);
    free(tokens);
    free(w);
}

static void check_manifest(const uint8_t *b, size_t len) {
    pc_manifest m;
    pc_error err = {0};
    if (pc_manifest_parse(b, len, PC_PART_MAX_BYTES, &m, &err) != PC_OK) {
        EXPECT(err.code == PC_ERR_FORMAT || err.code == PC_ERR_NOMEM);
        EXPECT(m.parts == NULL);
        return;
    }
    EXPECT(m.n_parts >= 1 && m.n_parts <= PC_MANIFEST_MAX_PARTS && len == pc_manifest_bytes(m.n_parts));
    uint64_t total = 0;
    for (uint32_t i = 0; i < m.n_parts; i++) {
        EXPECT(m.parts[i].len >= 1 && m.parts[i].len <= PC_PART_MAX_BYTES);
        total += m.parts[i].len;
    }
    EXPECT(total == m.total_len);
    uint8_t *w = malloc(len);
    EXPECT(w);
    pc_manifest_write(&m, w);
    EXPECT(memcmp(w, b, len) == 0);
    free(w);
    pc_manifest_free(&m);
}

/* A reply stream read to its end: every bulk the reader accepts has the
 * length its header line states, and the reader never reads past the input
 * (it ends with a failure at the end of the stream, never a hang). */
static void check_replies(const uint8_t *b, size_t len) {
    int fds[2];
    if (len > 60000 || pipe(fds) != 0) return; /* one pipe buffer holds the whole input */
    EXPECT(write(fds[1], b, len) == (ssize_t)len);
    close(fds[1]);
    pc_resp_reader *R = malloc(sizeof *R);
    uint8_t *dst = malloc(len + 1);
    EXPECT(R && dst);
    pc_resp_reader_init(R, fds[0]);
    size_t consumed = 0;
    for (int i = 0; i < 1000; i++) {
        char msg[64];
        int64_t n = pc_resp_next_bulk(R, msg, sizeof msg);
        if (n == PC_RESP_FAIL) {
            EXPECT(R->why != NULL);
            break;
        }
        if (n == PC_RESP_NIL || n == PC_RESP_ERROR_REPLY) continue;
        EXPECT(n >= 0);
        if ((uint64_t)n > len) { /* longer than the whole stream: must fail at its end */
            EXPECT(pc_resp_skip(R, (size_t)n) == PC_RESP_FAIL);
            break;
        }
        if (pc_resp_read(R, dst, (size_t)n) != 0 || pc_resp_crlf(R) != 0) break;
        consumed += (size_t)n;
        EXPECT(consumed <= len);
    }
    free(dst);
    free(R);
    close(fds[0]);
    /* the header parser against its inverse */
    int64_t v;
    if (pc_resp_parse_bulk_len((const char *)b, len < 24 ? len : 24, &v) == 0 && v >= 0) {
        char line[32];
        int n = snprintf(line, sizeof line, "$%lld", (long long)v);
        EXPECT((size_t)n == (len < 24 ? len : 24) && memcmp(line, b, (size_t)n) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t mode = data[0];
    if (mode & 4) {
        check_replies(data + 1, size - 1);
        return 0;
    }
    size_t len = size - 1;
    uint8_t *b = malloc(len ? len : 1);
    if (!b) return 0;
    memcpy(b, data + 1, len);
    if (mode & 2) {
        if (mode & 1)
            reseal_manifest(b, len);
        else
            reseal_header(b, len);
    }
    if (mode & 1)
        check_manifest(b, len);
    else
        check_header(b, len);
    free(b);
    return 0;
}
