/* test_store_format.c - store keys and the bytes of entries and manifests.
 *
 *  1. Keys: SHA-256 of the documented serialization, rebuilt here by hand
 *     (an independent writer of format.h/store_key.c's layout); a golden value
 *     catches any silent change of the format; every part of the key changes
 *     it; and a second process (this binary re-executed) derives the same keys.
 *  2. Entry headers: what is written parses back field for field; each way a
 *     header can be wrong (magic, version, lengths, shape, checksum, a short
 *     buffer) is refused with a message naming the field.
 *  3. Manifests: round trip; wrong magic, version, part count, part length,
 *     totals and checksum are refused. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <xxhash.h>

#include "store/format.h"
#include "store_testlib.h"

/* ---------------- 1. keys ---------------- */

static size_t put_u64(uint8_t *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    return 8;
}

static size_t put_field(uint8_t *b, const void *p, size_t n) {
    size_t o = put_u64(b, n);
    memcpy(b + o, p, n);
    return o + n;
}

static pc_store_key_parts sample_parts(const uint8_t *model, const uint8_t *schema) {
    return (pc_store_key_parts){.model = model, .schema = schema, .path = "plan/home#1", .config = "plan/home",
                                .start = 17, .n = 42, .elem = PC_STORE_ELEM_F16, .tenant = "acme"};
}

static void check_key_by_hand(void) {
    uint8_t model[32], schema[32];
    for (int i = 0; i < 32; i++) model[i] = (uint8_t)i, schema[i] = (uint8_t)(0xff - i);
    pc_store_key_parts kp = sample_parts(model, schema);
    uint8_t buf[512];
    size_t o = 0;
    o += put_field(buf + o, "pcache-store-key", 16);
    o += put_u64(buf + o, PC_STORE_FORMAT_VERSION);
    o += put_field(buf + o, model, 32);
    o += put_field(buf + o, schema, 32);
    o += put_field(buf + o, "plan/home#1", 11);
    o += put_field(buf + o, "plan/home", 9);
    o += put_u64(buf + o, 17);
    o += put_u64(buf + o, 42);
    o += put_u64(buf + o, PC_STORE_ELEM_F16);
    o += put_field(buf + o, "acme", 4);
    uint8_t want[32];
    CHECK(pc_sha256_digest(buf, o, want) == 0);
    pc_store_key k;
    CHECK(pc_store_key_derive(&kp, &k, NULL) == PC_OK);
    CHECK_MSG(memcmp(k.b, want, 32) == 0, "key is not SHA-256 of the documented serialization");
    char hex[65];
    pc_store_key_hex(&k, hex);
    /* Computed with Python's hashlib from the serialization in store_key.c's
     * comment when format version 1 was defined. A change here orphans every
     * stored entry, which needs PC_STORE_FORMAT_VERSION bumped. */
    CHECK_STR(hex, "1d9e51d2a62ab4ac8399a681cb6ef407d38b32fda6bcc8d022657234773761bc");
    pc_store_key back;
    CHECK(pc_store_key_parse(hex, &back) == 0 && memcmp(back.b, k.b, 32) == 0);
    CHECK(pc_store_key_parse("12", &back) != 0);
    hex[5] = 'g';
    CHECK(pc_store_key_parse(hex, &back) != 0);
}

static void check_key_parts_matter(void) {
    uint8_t model[32] = {1}, schema[32] = {2}, model2[32] = {3}, schema2[32] = {4};
    pc_store_key base, k;
    pc_store_key_parts kp = sample_parts(model, schema);
    pc_store_key_derive(&kp, &base, NULL);
#define VARY(stmt)                                                   \
    do {                                                             \
        pc_store_key_parts v = sample_parts(model, schema);          \
        stmt;                                                        \
        pc_store_key_derive(&v, &k, NULL);                           \
        CHECK_MSG(memcmp(k.b, base.b, 32) != 0, "%s", #stmt);       \
    } while (0)
    VARY(v.model = model2);
    VARY(v.schema = schema2);
    VARY(v.path = "plan/home#2");
    VARY(v.config = "");
    VARY(v.start = 18);
    VARY(v.n = 41);
    VARY(v.elem = 2);
    VARY(v.tenant = "");
    VARY(v.tenant = "acme2");
    /* length prefixes: moving a character between fields is a different key */
    VARY((v.path = "plan/home#1p", v.config = "lan/home"));
#undef VARY
}

/* The same keys from another process: this binary, re-executed. */
static void print_keys(void) {
    for (int i = 0; i < 4; i++) {
        t_piece p = t_piece_make(i, 5 + i, i % 2 ? "tenant" : "");
        char hex[65];
        pc_store_key_hex(&p.key, hex);
        printf("%s\n", hex);
    }
}

static void check_key_other_process(const char *self) {
    char cmd[4200], line[128];
    snprintf(cmd, sizeof cmd, "%s --print-keys", self);
    FILE *f = popen(cmd, "r");
    CHECK(f != NULL);
    if (!f) return;
    int i = 0;
    while (fgets(line, sizeof line, f) && i < 4) {
        t_piece p = t_piece_make(i, 5 + i, i % 2 ? "tenant" : "");
        char hex[65];
        pc_store_key_hex(&p.key, hex);
        line[strcspn(line, "\n")] = '\0';
        CHECK_MSG(strcmp(line, hex) == 0, "key %d: other process %s, this one %s", i, line, hex);
        i++;
    }
    CHECK_EQ_INT(i, 4);
    CHECK(pclose(f) == 0);
}

/* ---------------- 2. entry headers ---------------- */

static pc_entry_header sample_header(int32_t n, uint32_t label_len) {
    pc_entry_header h = {.version = PC_STORE_FORMAT_VERSION, .elem = PC_STORE_ELEM_F16, .layout = PC_ENTRY_LAYOUT_SPAN,
                         .n_layer = 3, .dim = 24, .start = 100, .n = n, .cap = (n + 7) / 8 * 8, .label_len = label_len,
                         .payload_sum = 0x1122334455667788ULL};
    for (int i = 0; i < 32; i++) h.key[i] = (uint8_t)i, h.model[i] = (uint8_t)(i * 3), h.group[i] = (uint8_t)(i * 5);
    pc_entry_layout L;
    pc_entry_layout_of(h.n_layer, h.dim, h.cap, &L);
    h.payload_len = L.len;
    h.header_len = pc_entry_header_len(n, label_len);
    return h;
}

static void put32le(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Rewrites the header checksum after a deliberate change (to reach the check behind it). */
static void reseal(uint8_t *buf, int32_t n, uint32_t label_len) {
    uint64_t s = XXH3_64bits_withSeed(buf + PC_ENTRY_FIXED, 4u * (size_t)n + label_len, XXH3_64bits(buf, 160));
    for (int i = 0; i < 8; i++) buf[160 + i] = (uint8_t)(s >> (8 * i));
}

static void expect_refused(const uint8_t *buf, size_t len, const char *needle, const char *what) {
    pc_entry_header h;
    pc_error err = {0};
    pc_status st = pc_entry_header_parse(buf, len, &h, &err);
    CHECK_MSG(st == PC_ERR_FORMAT && strstr(err.msg, needle), "%s: status %d, message '%s' lacks '%s'", what, st,
              err.msg, needle);
}

static void check_header(void) {
    int32_t tokens[37];
    for (int i = 0; i < 37; i++) tokens[i] = 1000 + i * 7;
    const char *label = "docs:rhine#0";
    pc_entry_header h = sample_header(37, (uint32_t)strlen(label));
    uint8_t *buf = malloc(h.header_len), *w = malloc(h.header_len);
    pc_entry_header_write(&h, tokens, label, buf);
    pc_entry_header g;
    pc_error err = {0};
    CHECK_MSG(pc_entry_header_parse(buf, h.header_len, &g, &err) == PC_OK, "%s", err.msg);
    CHECK(g.header_len == 4096 && g.n == 37 && g.cap == 40 && g.start == 100 && g.n_layer == 3 && g.dim == 24);
    CHECK(g.payload_len == h.payload_len && g.payload_sum == h.payload_sum && g.label_len == strlen(label));
    CHECK(memcmp(g.key, h.key, 32) == 0 && memcmp(g.model, h.model, 32) == 0 && memcmp(g.group, h.group, 32) == 0);
    CHECK(memcmp(buf + g.tokens_off, tokens, sizeof tokens) == 0);
    CHECK(memcmp(buf + g.label_off, label, strlen(label)) == 0);
    /* the payload layout: pos[40] padded to 64, k and v each 3 x 40 x 24 f16 */
    pc_entry_layout L;
    CHECK(pc_entry_layout_of(3, 24, 40, &L) && L.k_off == 192 && L.v_off == 192 + 5760 && L.len == 192 + 2 * 5760);

#define MUTATE(stmt, needle)                            \
    do {                                                \
        memcpy(w, buf, h.header_len);                   \
        stmt;                                           \
        expect_refused(w, h.header_len, needle, #stmt); \
    } while (0)
    MUTATE(w[0] = 'X', "magic");
    MUTATE(put32le(w + 8, 2), "version 2");
    MUTATE(put32le(w + 12, 4095), "header length");
    MUTATE(put32le(w + 12, 8192), "shorter than its 8192-byte header");
    MUTATE((put32le(w + 112, 7), reseal(w, 37, (uint32_t)strlen(label))), "element type");
    MUTATE((put32le(w + 116, 9), reseal(w, 37, (uint32_t)strlen(label))), "layout");
    MUTATE((put32le(w + 120, 0), reseal(w, 37, (uint32_t)strlen(label))), "shape");
    MUTATE((put32le(w + 124, 1u << 20), reseal(w, 37, (uint32_t)strlen(label))), "shape");
    MUTATE((put32le(w + 136, 48), reseal(w, 37, (uint32_t)strlen(label))), "capacity");
    MUTATE((put32le(w + 128, 0x7ffffff0u), reseal(w, 37, (uint32_t)strlen(label))), "positions");
    MUTATE((put32le(w + 132, 2000), put32le(w + 136, 2000), reseal(w, 37, (uint32_t)strlen(label))), "header length");
    MUTATE((w[144] ^= 1, reseal(w, 37, (uint32_t)strlen(label))), "payload of");
    MUTATE(w[200] ^= 0x10, "header checksum");  /* a token id */
    MUTATE(w[60] ^= 0x01, "header checksum");   /* the model */
#undef MUTATE
    expect_refused(buf, 100, "shorter than its 168-byte header", "100 bytes");
    expect_refused(buf, 1000, "shorter than its 4096-byte header", "1000 bytes");
    free(buf);
    free(w);
}

/* ---------------- 3. manifests ---------------- */

static void check_manifest(void) {
    pc_manifest_part parts[3] = {{100, 1}, {100, 2}, {7, 3}};
    pc_manifest m = {.version = PC_STORE_FORMAT_VERSION, .n_parts = 3, .nonce = 0xabcdef, .total_len = 207, .parts = parts};
    memset(m.key, 0x42, 32);
    size_t len = pc_manifest_bytes(3);
    uint8_t *b = malloc(len), *w = malloc(len);
    pc_manifest_write(&m, b);
    pc_manifest g;
    pc_error err = {0};
    CHECK_MSG(pc_manifest_parse(b, len, 100, &g, &err) == PC_OK, "%s", err.msg);
    CHECK(g.n_parts == 3 && g.nonce == 0xabcdef && g.total_len == 207 && g.parts[2].len == 7 && g.parts[1].sum == 2);
    pc_manifest_free(&g);
    CHECK(pc_manifest_parse(b, len, 99, &g, &err) == PC_ERR_FORMAT && strstr(err.msg, "part 0 is 100 bytes"));
    CHECK(pc_manifest_parse(b, len - 1, 100, &g, &err) == PC_ERR_FORMAT && strstr(err.msg, "does not hold"));
    CHECK(pc_manifest_parse(b, 20, 100, &g, &err) == PC_ERR_FORMAT && strstr(err.msg, "too short"));
    memcpy(w, b, len);
    w[70] ^= 1;
    CHECK(pc_manifest_parse(w, len, 100, &g, &err) == PC_ERR_FORMAT && strstr(err.msg, "checksum"));
    memcpy(w, b, len);
    w[3] = 'x';
    CHECK(pc_manifest_parse(w, len, 100, &g, &err) == PC_ERR_FORMAT && strstr(err.msg, "magic"));
    pc_manifest bad = m;
    bad.total_len = 208;
    pc_manifest_write(&bad, w);
    CHECK(pc_manifest_parse(w, len, 100, &g, &err) == PC_ERR_FORMAT && strstr(err.msg, "add up to 207"));
    bad = m;
    bad.version = 9;
    pc_manifest_write(&bad, w);
    CHECK(pc_manifest_parse(w, len, 100, &g, &err) == PC_ERR_FORMAT && strstr(err.msg, "version 9"));
    pc_manifest_part zero[3] = {{100, 1}, {0, 2}, {107, 3}};
    bad = m;
    bad.parts = zero;
    pc_manifest_write(&bad, w);
    CHECK(pc_manifest_parse(w, len, 200, &g, &err) == PC_ERR_FORMAT && strstr(err.msg, "part 1 is 0 bytes"));
    free(b);
    free(w);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--print-keys") == 0) {
        print_keys();
        return 0;
    }
    check_key_by_hand();
    check_key_parts_matter();
    check_key_other_process(argv[0]);
    check_header();
    check_manifest();
    return check_report();
}
