/* format.c - writing and checking entry headers and Redis manifests (format.h).
 *
 * The parsers read only inside the buffer they are given, in the order the
 * fields depend on each other: magic, version, then each size before anything
 * it bounds. Errors say which field is wrong and what was expected. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "store/format.h"
#include "store/store.h"
#include "util/error.h"
#include "util/sha256.h"

static const char ENTRY_MAGIC[8] = {'P', 'C', 'K', 'V', 'S', 'T', 'O', 'R'};
static const char MANIFEST_MAGIC[8] = {'P', 'C', 'K', 'V', 'M', 'A', 'N', 'I'};

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

uint64_t pc_xxh3(const void *data, size_t len) { return XXH3_64bits(data, len); }

static uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

bool pc_entry_layout_of(int32_t n_layer, int32_t dim, int32_t cap, pc_entry_layout *out) {
    if (n_layer <= 0 || n_layer > PC_ENTRY_MAX_LAYERS || dim <= 0 || dim > PC_ENTRY_MAX_DIM || cap < 0 ||
        cap > PC_ENTRY_MAX_TOKENS + 8)
        return false;
    /* Bounded factors: 1024 x 2^16 x (2^22 + 8) x 2 < 2^62, no overflow. */
    const uint64_t kv = (uint64_t)n_layer * (uint64_t)cap * (uint64_t)dim * 2u;
    out->pos_off = 0;
    out->k_off = round_up((uint64_t)cap * 4u, 64);
    out->v_off = round_up(out->k_off + kv, 64);
    out->len = out->v_off + kv;
    return true;
}

uint32_t pc_entry_header_len(int32_t n, uint32_t label_len) {
    return (uint32_t)round_up(PC_ENTRY_FIXED + 4u * (uint64_t)n + label_len, PC_ENTRY_ALIGN);
}

/* The header checksum skips its own field and the zero padding. */
static uint64_t header_sum(const uint8_t *buf, size_t end) {
    /* XXH3 of the concatenation, seeded by the first part's hash: two one-shot
     * calls, no heap state (the header is small and hashed on every read). */
    return XXH3_64bits_withSeed(buf + PC_ENTRY_FIXED, end - PC_ENTRY_FIXED, XXH3_64bits(buf, 160));
}

void pc_entry_header_write(const pc_entry_header *h, const int32_t *tokens, const char *label, uint8_t *buf) {
    memset(buf, 0, h->header_len);
    memcpy(buf, ENTRY_MAGIC, 8);
    put32(buf + 8, h->version);
    put32(buf + 12, h->header_len);
    memcpy(buf + 16, h->key, 32);
    memcpy(buf + 48, h->model, 32);
    memcpy(buf + 80, h->group, 32);
    put32(buf + 112, h->elem);
    put32(buf + 116, h->layout);
    put32(buf + 120, (uint32_t)h->n_layer);
    put32(buf + 124, (uint32_t)h->dim);
    put32(buf + 128, (uint32_t)h->start);
    put32(buf + 132, (uint32_t)h->n);
    put32(buf + 136, (uint32_t)h->cap);
    put32(buf + 140, h->label_len);
    put64(buf + 144, h->payload_len);
    put64(buf + 152, h->payload_sum);
    for (int32_t i = 0; i < h->n; i++) put32(buf + PC_ENTRY_FIXED + 4u * (uint32_t)i, (uint32_t)tokens[i]);
    if (h->label_len) memcpy(buf + PC_ENTRY_FIXED + 4u * (uint32_t)h->n, label, h->label_len);
    put64(buf + 160, header_sum(buf, PC_ENTRY_FIXED + 4u * (size_t)h->n + h->label_len));
}

pc_status pc_entry_header_peek(const uint8_t *buf, size_t len, uint32_t *header_len, pc_error *err) {
    if (len < PC_ENTRY_FIXED)
        return pc_fail(err, PC_ERR_FORMAT, "entry is %zu bytes, shorter than its %u-byte header", len, PC_ENTRY_FIXED);
    if (memcmp(buf, ENTRY_MAGIC, 8) != 0) return pc_fail(err, PC_ERR_FORMAT, "not a pcache store entry (bad magic)");
    const uint32_t v = get32(buf + 8);
    if (v != PC_STORE_FORMAT_VERSION)
        return pc_fail(err, PC_ERR_FORMAT, "entry format version %u, this build reads version %u", v,
                       PC_STORE_FORMAT_VERSION);
    const uint32_t hl = get32(buf + 12);
    const uint32_t max = pc_entry_header_len(PC_ENTRY_MAX_TOKENS, PC_ENTRY_MAX_LABEL);
    if (hl < PC_ENTRY_ALIGN || hl % PC_ENTRY_ALIGN != 0 || hl > max)
        return pc_fail(err, PC_ERR_FORMAT, "entry header length %u is not a multiple of %u in [%u, %u]", hl,
                       PC_ENTRY_ALIGN, PC_ENTRY_ALIGN, max);
    *header_len = hl;
    return PC_OK;
}

static pc_status check_shape(const pc_entry_header *h, pc_error *err) {
    if (h->elem != PC_STORE_ELEM_F16) return pc_fail(err, PC_ERR_FORMAT, "entry element type %u is not f16 (%u)", h->elem, PC_STORE_ELEM_F16);
    if (h->layout != PC_ENTRY_LAYOUT_SPAN) return pc_fail(err, PC_ERR_FORMAT, "entry payload layout %u is unknown", h->layout);
    if (h->n_layer <= 0 || h->n_layer > PC_ENTRY_MAX_LAYERS || h->dim <= 0 || h->dim > PC_ENTRY_MAX_DIM)
        return pc_fail(err, PC_ERR_FORMAT, "entry shape %d layers x %d is out of range", h->n_layer, h->dim);
    if (h->n <= 0 || h->n > PC_ENTRY_MAX_TOKENS || h->start < 0 || h->start > INT32_MAX - h->n)
        return pc_fail(err, PC_ERR_FORMAT, "entry positions [%d, +%d) are out of range", h->start, h->n);
    if (h->cap != (h->n + 7) / 8 * 8) return pc_fail(err, PC_ERR_FORMAT, "entry capacity %d does not fit %d tokens", h->cap, h->n);
    if (h->label_len > PC_ENTRY_MAX_LABEL) return pc_fail(err, PC_ERR_FORMAT, "entry label of %u bytes is too long", h->label_len);
    if (h->header_len != pc_entry_header_len(h->n, h->label_len))
        return pc_fail(err, PC_ERR_FORMAT, "entry header length %u does not match %d tokens and a %u-byte label",
                       h->header_len, h->n, h->label_len);
    pc_entry_layout L;
    if (!pc_entry_layout_of(h->n_layer, h->dim, h->cap, &L) || L.len != h->payload_len)
        return pc_fail(err, PC_ERR_FORMAT, "entry payload of %llu bytes does not match its shape",
                       (unsigned long long)h->payload_len);
    return PC_OK;
}

pc_status pc_entry_header_parse(const uint8_t *buf, size_t len, pc_entry_header *h, pc_error *err) {
    uint32_t hl;
    pc_status st = pc_entry_header_peek(buf, len, &hl, err);
    if (st != PC_OK) return st;
    if (len < hl) return pc_fail(err, PC_ERR_FORMAT, "entry is %zu bytes, shorter than its %u-byte header", len, hl);
    memset(h, 0, sizeof *h);
    h->version = get32(buf + 8);
    h->header_len = hl;
    memcpy(h->key, buf + 16, 32);
    memcpy(h->model, buf + 48, 32);
    memcpy(h->group, buf + 80, 32);
    h->elem = get32(buf + 112);
    h->layout = get32(buf + 116);
    h->n_layer = (int32_t)get32(buf + 120);
    h->dim = (int32_t)get32(buf + 124);
    h->start = (int32_t)get32(buf + 128);
    h->n = (int32_t)get32(buf + 132);
    h->cap = (int32_t)get32(buf + 136);
    h->label_len = get32(buf + 140);
    h->payload_len = get64(buf + 144);
    h->payload_sum = get64(buf + 152);
    if ((st = check_shape(h, err)) != PC_OK) return st;
    h->tokens_off = PC_ENTRY_FIXED;
    h->label_off = PC_ENTRY_FIXED + 4u * (size_t)h->n;
    const uint64_t want = get64(buf + 160), got = header_sum(buf, h->label_off + h->label_len);
    if (want != got)
        return pc_fail(err, PC_ERR_FORMAT, "entry header checksum mismatch (stored %016llx, computed %016llx)",
                       (unsigned long long)want, (unsigned long long)got);
    return PC_OK;
}

size_t pc_manifest_bytes(uint32_t n_parts) { return PC_MANIFEST_FIXED + 16u * (size_t)n_parts + 8u; }

void pc_manifest_write(const pc_manifest *m, uint8_t *buf) {
    memcpy(buf, MANIFEST_MAGIC, 8);
    put32(buf + 8, m->version);
    put32(buf + 12, m->n_parts);
    memcpy(buf + 16, m->key, 32);
    put64(buf + 48, m->nonce);
    put64(buf + 56, m->total_len);
    for (uint32_t i = 0; i < m->n_parts; i++) {
        put64(buf + PC_MANIFEST_FIXED + 16u * i, m->parts[i].len);
        put64(buf + PC_MANIFEST_FIXED + 16u * i + 8, m->parts[i].sum);
    }
    const size_t body = pc_manifest_bytes(m->n_parts) - 8;
    put64(buf + body, pc_xxh3(buf, body));
}

static pc_status manifest_parts(const uint8_t *buf, uint64_t part_max, pc_manifest *m, pc_error *err) {
    uint64_t total = 0;
    for (uint32_t i = 0; i < m->n_parts; i++) {
        const uint64_t l = get64(buf + PC_MANIFEST_FIXED + 16u * i);
        if (l == 0 || l > part_max)
            return pc_fail(err, PC_ERR_FORMAT, "manifest part %u is %llu bytes, outside [1, %llu]", i,
                           (unsigned long long)l, (unsigned long long)part_max);
        total += l; /* <= 65536 x 2^32: no overflow for any part_max below 2^32 */
        m->parts[i] = (pc_manifest_part){.len = l, .sum = get64(buf + PC_MANIFEST_FIXED + 16u * i + 8)};
    }
    if (total != m->total_len)
        return pc_fail(err, PC_ERR_FORMAT, "manifest parts add up to %llu bytes, not the %llu it states",
                       (unsigned long long)total, (unsigned long long)m->total_len);
    return PC_OK;
}

pc_status pc_manifest_parse(const uint8_t *buf, size_t len, uint64_t part_max, pc_manifest *m, pc_error *err) {
    memset(m, 0, sizeof *m);
    if (len < pc_manifest_bytes(1)) return pc_fail(err, PC_ERR_FORMAT, "manifest is %zu bytes, too short", len);
    if (memcmp(buf, MANIFEST_MAGIC, 8) != 0) return pc_fail(err, PC_ERR_FORMAT, "not a pcache manifest (bad magic)");
    m->version = get32(buf + 8);
    if (m->version != PC_STORE_FORMAT_VERSION)
        return pc_fail(err, PC_ERR_FORMAT, "manifest format version %u, this build reads version %u", m->version,
                       PC_STORE_FORMAT_VERSION);
    m->n_parts = get32(buf + 12);
    if (m->n_parts == 0 || m->n_parts > PC_MANIFEST_MAX_PARTS || len != pc_manifest_bytes(m->n_parts))
        return pc_fail(err, PC_ERR_FORMAT, "manifest of %zu bytes does not hold the %u parts it states", len, m->n_parts);
    if (part_max > UINT32_MAX) part_max = UINT32_MAX;
    const size_t body = len - 8;
    const uint64_t want = get64(buf + body), got = pc_xxh3(buf, body);
    if (want != got)
        return pc_fail(err, PC_ERR_FORMAT, "manifest checksum mismatch (stored %016llx, computed %016llx)",
                       (unsigned long long)want, (unsigned long long)got);
    memcpy(m->key, buf + 16, 32);
    m->nonce = get64(buf + 48);
    m->total_len = get64(buf + 56);
    m->parts = malloc((size_t)m->n_parts * sizeof *m->parts);
    if (!m->parts) return pc_fail(err, PC_ERR_NOMEM, "out of memory reading a manifest of %u parts", m->n_parts);
    pc_status st = manifest_parts(buf, part_max, m, err);
    if (st != PC_OK) pc_manifest_free(m);
    return st;
}

void pc_manifest_free(pc_manifest *m) {
    free(m->parts);
    m->parts = NULL;
}

void pc_manifest_key_name(const char *prefix, const uint8_t key[32], char *out, size_t cap) {
    char hex[65];
    pc_hex(key, 32, hex);
    snprintf(out, cap, "%s%s", prefix, hex);
}

void pc_manifest_part_name(const char *prefix, const uint8_t key[32], uint64_t nonce, uint32_t i, char *out, size_t cap) {
    char hex[65];
    pc_hex(key, 32, hex);
    snprintf(out, cap, "%s%s:%016llx:%u", prefix, hex, (unsigned long long)nonce, i);
}
