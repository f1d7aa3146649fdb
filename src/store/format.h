/* format.h - the bytes of a store entry (a file on disk, parts in Redis) and of
 * a Redis manifest. Every field a reader acts on is checked by the parsers
 * here before it is used; fuzz/fuzz_store.c holds them to that.
 *
 * Entry image, little-endian (files and Redis parts carry the same bytes):
 *   off   size  field
 *   0     8     magic "PCKVSTOR"
 *   8     4     format version (PC_STORE_FORMAT_VERSION)
 *   12    4     header_len: bytes before the payload, a multiple of 4096, so the
 *               payload of a mapped file starts on a page
 *   16    32    key (SHA-256, store_key.c)
 *   48    32    model fingerprint
 *   80    32    group: the schema digest
 *   112   4     KV element type (PC_STORE_ELEM_F16)
 *   116   4     payload layout (PC_ENTRY_LAYOUT_SPAN)
 *   120   4     n_layer
 *   124   4     dim (kv heads x head dim)
 *   128   4     start: the first position
 *   132   4     n: tokens
 *   136   4     cap: n rounded up to a multiple of 8
 *   140   4     label_len
 *   144   8     payload_len
 *   152   8     payload checksum: XXH3-64 of the payload
 *   160   8     header checksum: XXH3-64 of bytes [168, 168 + 4n + label_len) seeded with the
 *               XXH3-64 of bytes [0, 160)
 *   168   4n    token ids (int32)
 *   ...         label (UTF-8, label_len bytes, no NUL), then zeros up to header_len
 *   header_len  payload, a KV span's arrays (kv.h) for cap tokens:
 *               pos int32[cap] (start, start+1, ... then zeros), zeros to a multiple of 64,
 *               k f16[n_layer][cap/8][dim][8], zeros to a multiple of 64,
 *               v f16[n_layer][cap][dim] (rows past n are zeros)
 *   The file is exactly header_len + payload_len bytes.
 *
 * Redis manifest, little-endian, written after every part it names:
 *   0     8     magic "PCKVMANI"
 *   8     4     format version
 *   12    4     n_parts (>= 1)
 *   16    32    key
 *   48    8     nonce: the parts are <prefix><key hex>:<nonce hex>:<i>
 *   56    8     total_len: the entry image's bytes, the sum of the parts' lengths
 *   64    16 n  per part: length (1 .. part limit), XXH3-64 of its bytes
 *   ...   8     XXH3-64 of every byte before it
 *
 * Token ids, positions and KV are native int32 and f16: the format assumes a
 * little-endian host (checked at compile time). */
#ifndef PC_STORE_FORMAT_H
#define PC_STORE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pcache.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the store's file format is little-endian"
#endif

#define PC_ENTRY_FIXED 168u          /* bytes before the token ids */
#define PC_ENTRY_ALIGN 4096u         /* header_len granularity */
#define PC_ENTRY_LAYOUT_SPAN 1u
#define PC_ENTRY_MAX_TOKENS (1 << 22)
#define PC_ENTRY_MAX_LAYERS 1024
#define PC_ENTRY_MAX_DIM (1 << 16)
#define PC_ENTRY_MAX_LABEL 1024u
#define PC_MANIFEST_FIXED 64u
#define PC_MANIFEST_MAX_PARTS 65536u
#define PC_PART_MAX_BYTES (16u << 20) /* Redis parts: at most 16 MiB */

typedef struct pc_entry_header {
    uint32_t version;
    uint32_t header_len;
    uint8_t key[32], model[32], group[32];
    uint32_t elem, layout;
    int32_t n_layer, dim, start, n, cap;
    uint32_t label_len;
    uint64_t payload_len;
    uint64_t payload_sum;
    size_t tokens_off, label_off; /* offsets in the image */
} pc_entry_header;

/* Offsets of the payload's arrays, from the payload's start. */
typedef struct pc_entry_layout {
    uint64_t pos_off, k_off, v_off, len;
} pc_entry_layout;

/* The payload layout for cap tokens; false when the sizes overflow. */
bool pc_entry_layout_of(int32_t n_layer, int32_t dim, int32_t cap, pc_entry_layout *out);
/* header_len for n tokens and a label of label_len bytes. */
uint32_t pc_entry_header_len(int32_t n, uint32_t label_len);

/* Writes the header (h's fields, tokens, label, padding, header checksum) into
 * buf, which holds h->header_len bytes. h->payload_sum must already be set. */
void pc_entry_header_write(const pc_entry_header *h, const int32_t *tokens, const char *label, uint8_t *buf);

/* Reads the header_len field of an image's first PC_ENTRY_FIXED bytes,
 * after checking the magic; the caller then reads that many bytes. */
pc_status pc_entry_header_peek(const uint8_t *buf, size_t len, uint32_t *header_len, pc_error *err);
/* Parses and checks a whole header (len >= its header_len): magic, version,
 * sizes against each other and the limits, layout, header checksum. Does not
 * compare against any expectation (model, key...): the caller does. */
pc_status pc_entry_header_parse(const uint8_t *buf, size_t len, pc_entry_header *h, pc_error *err);

uint64_t pc_xxh3(const void *data, size_t len);

typedef struct pc_manifest_part {
    uint64_t len, sum;
} pc_manifest_part;

typedef struct pc_manifest {
    uint32_t version, n_parts;
    uint8_t key[32];
    uint64_t nonce, total_len;
    pc_manifest_part *parts; /* [n_parts], malloc'd by the parser; pc_manifest_free */
} pc_manifest;

size_t pc_manifest_bytes(uint32_t n_parts);
/* Serializes m into buf (pc_manifest_bytes(m->n_parts) bytes). */
void pc_manifest_write(const pc_manifest *m, uint8_t *buf);
/* Parses and checks a manifest: magic, version, part count against the
 * length, each part's length within (0, part_max], the total, the checksum. */
pc_status pc_manifest_parse(const uint8_t *buf, size_t len, uint64_t part_max, pc_manifest *m, pc_error *err);
void pc_manifest_free(pc_manifest *m);
/* Redis key names: the manifest <prefix><key hex>, part i <prefix><key hex>:<nonce, 16 hex>:<i>. */
void pc_manifest_key_name(const char *prefix, const uint8_t key[32], char *out, size_t cap);
void pc_manifest_part_name(const char *prefix, const uint8_t key[32], uint64_t nonce, uint32_t i, char *out, size_t cap);

#endif
