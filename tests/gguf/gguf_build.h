/* gguf_build.h - a byte-level GGUF builder for tests, independent of the library's writer.
 *
 * Tests lay files out field by field with it, recording where each field lands
 * (gb.len before the write), so they can craft malformed files and know the
 * exact byte offset the reader must report. Little-endian host assumed, as in
 * the library. Aborts on allocation failure: it only runs in tests. */
#ifndef PC_TESTS_GGUF_BUILD_H
#define PC_TESTS_GGUF_BUILD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gb {
    uint8_t *p;
    size_t len, cap;
} gb;

static inline void gb_bytes(gb *b, const void *v, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    if (n) memcpy(b->p + b->len, v, n);
    b->len += n;
}
static inline void gb_u8(gb *b, uint8_t v) { gb_bytes(b, &v, 1); }
static inline void gb_u16(gb *b, uint16_t v) { gb_bytes(b, &v, 2); }
static inline void gb_u32(gb *b, uint32_t v) { gb_bytes(b, &v, 4); }
static inline void gb_u64(gb *b, uint64_t v) { gb_bytes(b, &v, 8); }
static inline void gb_f32(gb *b, float v) { gb_bytes(b, &v, 4); }
static inline void gb_f64(gb *b, double v) { gb_bytes(b, &v, 8); }
static inline void gb_str(gb *b, const char *s) {
    gb_u64(b, strlen(s));
    gb_bytes(b, s, strlen(s));
}
static inline void gb_zeros(gb *b, size_t n) {
    for (size_t i = 0; i < n; i++) gb_u8(b, 0);
}
static inline void gb_pad(gb *b, size_t align) {
    while (b->len % align) gb_u8(b, 0);
}
static inline void gb_header(gb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    gb_bytes(b, "GGUF", 4);
    gb_u32(b, version);
    gb_u64(b, n_tensors);
    gb_u64(b, n_kv);
}
/* Key and value type; the caller writes the value. */
static inline void gb_key(gb *b, const char *key, uint32_t type) {
    gb_str(b, key);
    gb_u32(b, type);
}
static inline void gb_free(gb *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

#endif
