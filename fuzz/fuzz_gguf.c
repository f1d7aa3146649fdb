/* fuzz_gguf.c - libFuzzer target for the GGUF reader.
 *
 * Any input either fails to open with a message naming the input, or opens
 * into a handle whose every key, array element and tensor can be walked
 * without leaving the input (ASan checks the reads) and whose index agrees
 * with itself: find_key/find_tensor return what key_at/tensor_at list, and
 * each tensor's bytes lie inside the input. A broken expectation traps. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"

#define EXPECT(cond)                                                                                               \
    do {                                                                                                           \
        if (!(cond)) __builtin_trap();                                                                             \
    } while (0)

static uint8_t touch(const void *p, size_t n) {
    const volatile uint8_t *b = p;
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) acc ^= b[i];
    return acc;
}

static size_t elem_size(pc_gguf_vtype t) {
    static const uint8_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return (unsigned)t < sizeof sizes ? sizes[t] : 0;
}

static uint8_t walk_array(const pc_gguf *g, const char *key) {
    pc_gguf_vtype et;
    uint64_t n;
    pc_error err;
    uint8_t acc = 0;
    EXPECT(pc_gguf_get_arr(g, key, &et, &n, &err) == PC_OK);
    if (et == PC_GGUF_STRING) {
        for (uint64_t j = 0; j < n; j++) {
            pc_gguf_str s = pc_gguf_arr_str(g, key, j);
            EXPECT(s.ptr != NULL);
            acc ^= touch(s.ptr, (size_t)s.len);
        }
        EXPECT(pc_gguf_arr_str(g, key, n).ptr == NULL);
    } else if (et != PC_GGUF_ARRAY) {
        const void *d = pc_gguf_arr_data(g, key);
        EXPECT(d != NULL);
        acc ^= touch(d, (size_t)n * elem_size(et));
    }
    return acc;
}

static uint8_t walk_value(const pc_gguf *g, const char *key, pc_gguf_vtype t) {
    pc_error err;
    uint32_t u;
    int64_t i;
    float f;
    bool b;
    pc_gguf_str s;
    pc_status su = pc_gguf_get_u32(g, key, &u, &err), si = pc_gguf_get_i64(g, key, &i, &err);
    bool is_int = t <= PC_GGUF_INT32 || t == PC_GGUF_UINT64 || t == PC_GGUF_INT64; /* ids 0..5, 10, 11 */
    EXPECT(is_int ? (su == PC_OK || su == PC_ERR_RANGE) : su == PC_ERR_FORMAT);
    EXPECT(is_int ? (si == PC_OK || si == PC_ERR_RANGE) : si == PC_ERR_FORMAT);
    pc_status sf = pc_gguf_get_f32(g, key, &f, &err);
    EXPECT((t == PC_GGUF_FLOAT32 || t == PC_GGUF_FLOAT64) ? (sf == PC_OK || sf == PC_ERR_RANGE) : sf == PC_ERR_FORMAT);
    EXPECT((pc_gguf_get_bool(g, key, &b, &err) == PC_OK) == (t == PC_GGUF_BOOL));
    if (pc_gguf_get_str(g, key, &s, &err) == PC_OK) return touch(s.ptr, (size_t)s.len);
    if (t == PC_GGUF_ARRAY) return walk_array(g, key);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pc_gguf *g = NULL;
    pc_error err;
    err.msg[0] = '\0';
    if (pc_gguf_open_memory(data, size, "fuzz", &g, &err) != PC_OK) {
        EXPECT(g == NULL && strncmp(err.msg, "fuzz", 4) == 0);
        return 0;
    }
    uint8_t acc = 0;
    for (int64_t i = 0; i < pc_gguf_kv_count(g); i++) {
        pc_gguf_str k = pc_gguf_key_at(g, i);
        char *key = malloc((size_t)k.len + 1);
        EXPECT(key != NULL);
        memcpy(key, k.ptr, (size_t)k.len);
        key[k.len] = '\0';
        EXPECT(pc_gguf_find_key(g, key) == i);
        acc ^= walk_value(g, key, pc_gguf_kv_type(g, i));
        free(key);
    }
    for (int64_t i = 0; i < pc_gguf_tensor_count(g); i++) {
        const pc_gguf_tensor *t = pc_gguf_tensor_at(g, i);
        EXPECT(t && pc_gguf_find_tensor(g, t->name) == t);
        const uint8_t *p = t->data;
        EXPECT(p >= data && t->size <= size && (size_t)(p - data) <= size - t->size);
        EXPECT(t->size > 0 && t->offset % pc_gguf_alignment(g) == 0);
        acc ^= touch(p, 1) ^ touch(p + t->size - 1, 1);
    }
    pc_gguf_close(g);
    volatile uint8_t sink = acc; /* keeps the reads */
    (void)sink;
    return 0;
}
