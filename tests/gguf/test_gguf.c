/* test_gguf.c - GGUF reader and writer on valid files.
 *
 * Truth comes from outside the library: byte layouts written out by hand,
 * files laid out field by field with gguf_build.h, and for the real model the
 * values gguf-py (llama.cpp's reader) reports for it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "gguf/gguf.h"
#include "gguf/gguf_build.h"

static bool str_eq(pc_gguf_str s, const char *want) {
    return s.ptr && s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

/* Deterministic bytes: the reader must hand back exactly these. */
static void fill_seeded(uint8_t *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (uint8_t)(seed >> 24);
    }
}

/* The writer's output for one kv, byte for byte. */
static void test_layout_kv(void) {
    static const uint8_t want[64] = {
        'G', 'G', 'U', 'F', 3, 0, 0, 0,   /* magic, version 3 */
        0, 0, 0, 0, 0, 0, 0, 0,           /* n_tensors 0 */
        1, 0, 0, 0, 0, 0, 0, 0,           /* n_kv 1 */
        1, 0, 0, 0, 0, 0, 0, 0, 'a',      /* key "a" */
        4, 0, 0, 0, 7, 0, 0, 0,           /* uint32 7; 41 bytes so far, zero padding to 64 */
    };
    pc_gguf_writer *w = pc_gguf_writer_create();
    CHECK(w != NULL);
    CHECK(pc_gguf_writer_set_u32(w, "a", 7) == PC_OK);
    void *buf = NULL;
    size_t size = 0;
    pc_error err;
    CHECK(pc_gguf_writer_to_memory(w, &buf, &size, &err) == PC_OK);
    CHECK_EQ_INT(size, 64);
    CHECK(size == 64 && memcmp(buf, want, 64) == 0);
    pc_free(buf);
    pc_gguf_writer_free(w);
}

/* One F32 tensor: info at 24, data at the next multiple of 32, file ends after the data. */
static void test_layout_tensor(void) {
    static const uint8_t want[72] = {
        'G', 'G', 'U', 'F', 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        1, 0, 0, 0, 0, 0, 0, 0, 't',       /* name "t" */
        1, 0, 0, 0,                        /* n_dims 1 */
        2, 0, 0, 0, 0, 0, 0, 0,            /* ne[0] 2 */
        0, 0, 0, 0,                        /* type F32 */
        0, 0, 0, 0, 0, 0, 0, 0,            /* offset 0; 57 bytes, pad to 64 */
        0, 0, 0, 0, 0, 0, 0,
        0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40, /* 1.0f, 2.0f */
    };
    const float v[2] = {1.0f, 2.0f};
    const int64_t ne[1] = {2};
    pc_gguf_writer *w = pc_gguf_writer_create();
    CHECK(pc_gguf_writer_add_tensor(w, "t", PC_TYPE_F32, 1, ne, v) == PC_OK);
    void *buf = NULL;
    size_t size = 0;
    CHECK(pc_gguf_writer_to_memory(w, &buf, &size, NULL) == PC_OK);
    CHECK_EQ_INT(size, 72);
    CHECK(size == 72 && memcmp(buf, want, 72) == 0);
    pc_free(buf);
    pc_gguf_writer_free(w);
}

typedef struct tspec {
    const char *name;
    pc_type type;
    int n_dims;
    int64_t ne[4];
    size_t bytes; /* hand-computed */
} tspec;

static const tspec TENSORS[] = {
    {"f32.vec", PC_TYPE_F32, 1, {3, 1, 1, 1}, 12},
    {"f16.mat", PC_TYPE_F16, 2, {4, 2, 1, 1}, 16},
    {"blk.0.q4_1", PC_TYPE_Q4_1, 2, {64, 2, 1, 1}, 2 * 2 * 20},
    {"blk.0.q8_0", PC_TYPE_Q8_0, 3, {32, 3, 2, 1}, 6 * 34},
    {"blk.1.q6_k", PC_TYPE_Q6_K, 4, {256, 1, 1, 2}, 2 * 210},
    {"i32", PC_TYPE_I32, 1, {5, 1, 1, 1}, 20},
    {"bf16", PC_TYPE_BF16, 2, {1, 7, 1, 1}, 14},
};
#define N_TENSORS (sizeof TENSORS / sizeof TENSORS[0])

static const uint8_t ARR_U8[] = {0, 1, 255};
static const int8_t ARR_I8[] = {-128, 0, 127};
static const uint16_t ARR_U16[] = {0, 65535};
static const int16_t ARR_I16[] = {-32768, 32767, -1};
static const uint32_t ARR_U32[] = {1, 4000000000u};
static const int32_t ARR_I32[] = {-2147483647 - 1, 5};
static const float ARR_F32[] = {0.5f, -1e30f, 3.25f};
static const uint8_t ARR_BOOL[] = {1, 0, 1, 1};
static const uint64_t ARR_U64[] = {UINT64_MAX, 0, 42};
static const int64_t ARR_I64[] = {INT64_MIN, INT64_MAX};
static const double ARR_F64[] = {1e300, -0.125};
static const char *const ARR_STR[] = {"<|endoftext|>", "", "h\xc3\xa9llo", "\xc4\xa0t"};

typedef struct aspec {
    const char *key;
    pc_gguf_vtype et;
    const void *data;
    uint64_t count;
    size_t bytes;
} aspec;

static const aspec ARRAYS[] = {
    {"arr.u8", PC_GGUF_UINT8, ARR_U8, 3, sizeof ARR_U8},       {"arr.i8", PC_GGUF_INT8, ARR_I8, 3, sizeof ARR_I8},
    {"arr.u16", PC_GGUF_UINT16, ARR_U16, 2, sizeof ARR_U16},   {"arr.i16", PC_GGUF_INT16, ARR_I16, 3, sizeof ARR_I16},
    {"arr.u32", PC_GGUF_UINT32, ARR_U32, 2, sizeof ARR_U32},   {"arr.i32", PC_GGUF_INT32, ARR_I32, 2, sizeof ARR_I32},
    {"arr.f32", PC_GGUF_FLOAT32, ARR_F32, 3, sizeof ARR_F32},  {"arr.bool", PC_GGUF_BOOL, ARR_BOOL, 4, sizeof ARR_BOOL},
    {"arr.u64", PC_GGUF_UINT64, ARR_U64, 3, sizeof ARR_U64},   {"arr.i64", PC_GGUF_INT64, ARR_I64, 2, sizeof ARR_I64},
    {"arr.f64", PC_GGUF_FLOAT64, ARR_F64, 2, sizeof ARR_F64},  {"arr.empty", PC_GGUF_INT32, NULL, 0, 0},
};
#define N_ARRAYS (sizeof ARRAYS / sizeof ARRAYS[0])

static uint8_t *tensor_bytes(size_t i) {
    uint8_t *p = malloc(TENSORS[i].bytes);
    fill_seeded(p, TENSORS[i].bytes, (uint32_t)i + 1);
    return p;
}

static pc_gguf_writer *build_full(void) {
    pc_gguf_writer *w = pc_gguf_writer_create();
    CHECK(pc_gguf_writer_set_str(w, "general.architecture", "llama") == PC_OK);
    CHECK(pc_gguf_writer_set_u32(w, "s.u32", 4000000000u) == PC_OK);
    CHECK(pc_gguf_writer_set_i32(w, "s.i32", -5) == PC_OK);
    CHECK(pc_gguf_writer_set_u64(w, "s.u64", 0x8000000000000001ull) == PC_OK);
    CHECK(pc_gguf_writer_set_u64(w, "s.u64small", 77) == PC_OK);
    CHECK(pc_gguf_writer_set_f32(w, "s.f32", 1e-5f) == PC_OK);
    CHECK(pc_gguf_writer_set_bool(w, "s.true", true) == PC_OK);
    CHECK(pc_gguf_writer_set_bool(w, "s.false", false) == PC_OK);
    CHECK(pc_gguf_writer_set_str(w, "s.empty", "") == PC_OK);
    for (size_t i = 0; i < N_ARRAYS; i++)
        CHECK(pc_gguf_writer_set_arr(w, ARRAYS[i].key, ARRAYS[i].et, ARRAYS[i].data, ARRAYS[i].count) == PC_OK);
    CHECK(pc_gguf_writer_set_arr_str(w, "arr.str", ARR_STR, 4) == PC_OK);
    CHECK(pc_gguf_writer_set_arr_str(w, "arr.str0", NULL, 0) == PC_OK);
    for (size_t i = 0; i < N_TENSORS; i++) {
        uint8_t *d = tensor_bytes(i);
        CHECK(pc_gguf_writer_add_tensor(w, TENSORS[i].name, TENSORS[i].type, TENSORS[i].n_dims, TENSORS[i].ne, d) ==
              PC_OK);
        free(d);
    }
    return w;
}

static void check_scalars(const pc_gguf *g) {
    pc_error err;
    pc_gguf_str s;
    uint32_t u32;
    int64_t i64;
    float f;
    bool b;
    CHECK(pc_gguf_get_str(g, "general.architecture", &s, &err) == PC_OK && str_eq(s, "llama"));
    CHECK(pc_gguf_get_u32(g, "s.u32", &u32, &err) == PC_OK && u32 == 4000000000u);
    CHECK(pc_gguf_get_i64(g, "s.u32", &i64, &err) == PC_OK && i64 == 4000000000ll);
    CHECK(pc_gguf_get_i64(g, "s.i32", &i64, &err) == PC_OK && i64 == -5);
    CHECK(pc_gguf_get_u32(g, "s.i32", &u32, &err) == PC_ERR_RANGE);
    CHECK_MSG(strstr(err.msg, "s.i32") && strstr(err.msg, "-5"), "%s", err.msg);
    CHECK(pc_gguf_get_i64(g, "s.u64", &i64, &err) == PC_ERR_RANGE);
    CHECK_MSG(strstr(err.msg, "9223372036854775809") != NULL, "%s", err.msg);
    CHECK(pc_gguf_get_u32(g, "s.u64small", &u32, &err) == PC_OK && u32 == 77);
    CHECK(pc_gguf_get_f32(g, "s.f32", &f, &err) == PC_OK && f == 1e-5f);
    CHECK(pc_gguf_get_bool(g, "s.true", &b, &err) == PC_OK && b);
    CHECK(pc_gguf_get_bool(g, "s.false", &b, &err) == PC_OK && !b);
    CHECK(pc_gguf_get_str(g, "s.empty", &s, &err) == PC_OK && s.len == 0);
    /* wrong types and absent keys */
    CHECK(pc_gguf_get_u32(g, "general.architecture", &u32, &err) == PC_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "general.architecture") && strstr(err.msg, "string"), "%s", err.msg);
    CHECK(pc_gguf_get_f32(g, "s.u32", &f, &err) == PC_ERR_FORMAT);
    CHECK(pc_gguf_get_u32(g, "s.f32", &u32, &err) == PC_ERR_FORMAT);
    CHECK(pc_gguf_get_u32(g, "s.true", &u32, &err) == PC_ERR_FORMAT);
    CHECK(pc_gguf_get_str(g, "arr.str", &s, &err) == PC_ERR_FORMAT);
    CHECK(pc_gguf_get_bool(g, "s.u32", &b, &err) == PC_ERR_FORMAT);
    CHECK(pc_gguf_get_u32(g, "no.such.key", &u32, &err) == PC_ERR_NOT_FOUND);
    CHECK_MSG(strstr(err.msg, "no.such.key") != NULL, "%s", err.msg);
    CHECK(pc_gguf_find_key(g, "no.such.key") == -1);
    CHECK(pc_gguf_find_key(g, "s.u3") == -1);
    CHECK(pc_gguf_find_key(g, "s.u32x") == -1);
}

static void check_arrays(const pc_gguf *g) {
    pc_error err;
    pc_gguf_vtype et;
    uint64_t n;
    for (size_t i = 0; i < N_ARRAYS; i++) {
        CHECK(pc_gguf_get_arr(g, ARRAYS[i].key, &et, &n, &err) == PC_OK);
        CHECK_MSG(et == ARRAYS[i].et && n == ARRAYS[i].count, "%s", ARRAYS[i].key);
        const void *d = pc_gguf_arr_data(g, ARRAYS[i].key);
        CHECK(d != NULL);
        CHECK_MSG(d && (ARRAYS[i].bytes == 0 || memcmp(d, ARRAYS[i].data, ARRAYS[i].bytes) == 0), "%s", ARRAYS[i].key);
    }
    CHECK(pc_gguf_get_arr(g, "arr.str", &et, &n, &err) == PC_OK && et == PC_GGUF_STRING && n == 4);
    for (uint64_t i = 0; i < 4; i++) CHECK(str_eq(pc_gguf_arr_str(g, "arr.str", i), ARR_STR[i]));
    CHECK(pc_gguf_arr_str(g, "arr.str", 4).ptr == NULL);
    CHECK(pc_gguf_arr_str(g, "arr.u8", 0).ptr == NULL);
    CHECK(pc_gguf_arr_data(g, "arr.str") == NULL);
    CHECK(pc_gguf_arr_data(g, "s.u32") == NULL);
    CHECK(pc_gguf_get_arr(g, "arr.str0", &et, &n, &err) == PC_OK && et == PC_GGUF_STRING && n == 0);
    CHECK(pc_gguf_get_arr(g, "s.u32", &et, &n, &err) == PC_ERR_FORMAT);
}

/* base: the file's first byte or its data section's; both are 32-aligned positions. */
static void check_tensors(const pc_gguf *g, const uint8_t *base) {
    CHECK_EQ_INT(pc_gguf_tensor_count(g), N_TENSORS);
    for (size_t i = 0; i < N_TENSORS; i++) {
        const pc_gguf_tensor *t = pc_gguf_tensor_at(g, (int64_t)i);
        CHECK(t != NULL && pc_gguf_find_tensor(g, TENSORS[i].name) == t);
        if (!t) continue;
        CHECK_STR(t->name, TENSORS[i].name);
        CHECK(t->type == TENSORS[i].type && t->n_dims == TENSORS[i].n_dims);
        for (int d = 0; d < 4; d++) CHECK_EQ_INT(t->ne[d], TENSORS[i].ne[d]);
        CHECK_EQ_INT(t->size, TENSORS[i].bytes);
        CHECK(t->offset % 32 == 0);
        CHECK(((const uint8_t *)t->data - base) % 32 == 0);
        uint8_t *want = tensor_bytes(i);
        CHECK_MSG(memcmp(t->data, want, t->size) == 0, "tensor %s bytes", t->name);
        free(want);
    }
    CHECK(pc_gguf_find_tensor(g, "blk.0") == NULL);
    CHECK(pc_gguf_tensor_at(g, (int64_t)N_TENSORS) == NULL);
    CHECK(pc_gguf_tensor_at(g, -1) == NULL);
}

static void check_full(const pc_gguf *g, const uint8_t *base) {
    CHECK_EQ_INT(pc_gguf_version(g), 3);
    CHECK_EQ_INT(pc_gguf_alignment(g), 32);
    CHECK_EQ_INT(pc_gguf_kv_count(g), 9 + N_ARRAYS + 2);
    CHECK(str_eq(pc_gguf_key_at(g, 0), "general.architecture"));
    CHECK(pc_gguf_kv_type(g, 0) == PC_GGUF_STRING);
    CHECK(pc_gguf_kv_type(g, 1) == PC_GGUF_UINT32 && pc_gguf_find_key(g, "s.u32") == 1);
    CHECK(pc_gguf_key_at(g, 999).ptr == NULL);
    check_scalars(g);
    check_arrays(g);
    check_tensors(g, base);
}

static void test_round_trip(void) {
    pc_gguf_writer *w = build_full();
    void *buf = NULL;
    size_t size = 0;
    pc_error err;
    CHECK(pc_gguf_writer_to_memory(w, &buf, &size, &err) == PC_OK);
    pc_gguf *g = NULL;
    CHECK_MSG(pc_gguf_open_memory(buf, size, "full", &g, &err) == PC_OK, "%s", err.msg);
    if (g) check_full(g, buf);
    pc_gguf_close(g);

    /* through a file: mmap'd reader, same answers; the file equals the memory image */
    char path[] = "/tmp/pc_test_gguf_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK(pc_gguf_writer_write(w, path, &err) == PC_OK);
    g = NULL;
    CHECK_MSG(pc_gguf_open(path, &g, &err) == PC_OK, "%s", err.msg);
    if (g) {
        CHECK_STR(pc_gguf_path(g), path);
        check_full(g, (const uint8_t *)pc_gguf_tensor_at(g, 0)->data - pc_gguf_tensor_at(g, 0)->offset);
    }
    FILE *f = fopen(path, "rb");
    uint8_t *back = malloc(size + 1);
    CHECK(f && back && fread(back, 1, size + 1, f) == size && memcmp(back, buf, size) == 0);
    if (f) fclose(f);
    free(back);
    pc_gguf_close(g);
    unlink(path);
    pc_free(buf);
    pc_gguf_writer_free(w);
}

static void test_writer_rejects(void) {
    pc_gguf_writer *w = pc_gguf_writer_create();
    const float v[64] = {0};
    int64_t ne[4] = {32, 1, 1, 1};
    CHECK(pc_gguf_writer_set_u32(w, "k", 1) == PC_OK);
    CHECK(pc_gguf_writer_set_str(w, "k", "x") == PC_ERR_INVALID);
    CHECK(pc_gguf_writer_set_u32(w, "general.alignment", 24) == PC_ERR_INVALID);
    CHECK(pc_gguf_writer_set_u32(w, "general.alignment", 0) == PC_ERR_INVALID);
    CHECK(pc_gguf_writer_set_arr(w, "a", PC_GGUF_STRING, v, 1) == PC_ERR_INVALID);
    CHECK(pc_gguf_writer_set_arr(w, "a", PC_GGUF_ARRAY, v, 1) == PC_ERR_INVALID);
    CHECK(pc_gguf_writer_add_tensor(w, "t", PC_TYPE_F32, 1, ne, v) == PC_OK);
    CHECK(pc_gguf_writer_add_tensor(w, "t", PC_TYPE_F32, 1, ne, v) == PC_ERR_INVALID);
    CHECK(pc_gguf_writer_add_tensor(w, "u", PC_TYPE_F32, 0, ne, v) == PC_ERR_INVALID);
    CHECK(pc_gguf_writer_add_tensor(w, "u", PC_TYPE_F32, 5, ne, v) == PC_ERR_INVALID);
    CHECK(pc_gguf_writer_add_tensor(w, "u", (pc_type)4, 1, ne, v) == PC_ERR_INVALID);
    ne[0] = 33;
    CHECK(pc_gguf_writer_add_tensor(w, "u", PC_TYPE_Q8_0, 1, ne, v) == PC_ERR_INVALID);
    ne[0] = 0;
    CHECK(pc_gguf_writer_add_tensor(w, "u", PC_TYPE_F32, 1, ne, v) == PC_ERR_INVALID);
    pc_gguf_writer_free(w);
    pc_gguf_writer_free(NULL);
}

/* An alignment of 64 moves the data section and tensor offsets to multiples of 64. */
static void test_alignment_64(void) {
    pc_gguf_writer *w = pc_gguf_writer_create();
    uint8_t d[40];
    fill_seeded(d, sizeof d, 9);
    int64_t ne[1] = {10};
    CHECK(pc_gguf_writer_set_u32(w, "general.alignment", 64) == PC_OK);
    CHECK(pc_gguf_writer_add_tensor(w, "a", PC_TYPE_F32, 1, ne, d) == PC_OK);
    CHECK(pc_gguf_writer_add_tensor(w, "b", PC_TYPE_F32, 1, ne, d) == PC_OK);
    void *buf;
    size_t size;
    CHECK(pc_gguf_writer_to_memory(w, &buf, &size, NULL) == PC_OK);
    pc_gguf *g = NULL;
    pc_error err;
    CHECK_MSG(pc_gguf_open_memory(buf, size, "a64", &g, &err) == PC_OK, "%s", err.msg);
    if (g) {
        CHECK_EQ_INT(pc_gguf_alignment(g), 64);
        const pc_gguf_tensor *b = pc_gguf_find_tensor(g, "b");
        CHECK(b && b->offset == 64 && ((const uint8_t *)b->data - (const uint8_t *)buf) % 64 == 0);
        CHECK(b && memcmp(b->data, d, 40) == 0);
        CHECK_EQ_INT(size, ((const uint8_t *)b->data - (const uint8_t *)buf) + 40);
    }
    pc_gguf_close(g);
    pc_free(buf);
    pc_gguf_writer_free(w);
}

/* Version 2, scalar types the writer has no setter for, nested arrays, a 64-byte alignment. */
static void test_hand_built_v2(void) {
    gb b = {0};
    gb_header(&b, 2, 1, 11);
    gb_key(&b, "u8", PC_GGUF_UINT8); gb_u8(&b, 200);
    gb_key(&b, "i8", PC_GGUF_INT8); gb_u8(&b, (uint8_t)-3);
    gb_key(&b, "u16", PC_GGUF_UINT16); gb_u16(&b, 60000);
    gb_key(&b, "i16", PC_GGUF_INT16); gb_u16(&b, (uint16_t)-30000);
    gb_key(&b, "i64", PC_GGUF_INT64); gb_u64(&b, (uint64_t)-5000000000000ll);
    gb_key(&b, "f64", PC_GGUF_FLOAT64); gb_f64(&b, 0.25);
    gb_key(&b, "f64.big", PC_GGUF_FLOAT64); gb_f64(&b, 1e300);
    /* [[1, 2], [3]] of uint32, then [["x"], []] of strings */
    gb_key(&b, "nested", PC_GGUF_ARRAY); gb_u32(&b, PC_GGUF_ARRAY); gb_u64(&b, 2);
    gb_u32(&b, PC_GGUF_UINT32); gb_u64(&b, 2); gb_u32(&b, 1); gb_u32(&b, 2);
    gb_u32(&b, PC_GGUF_UINT32); gb_u64(&b, 1); gb_u32(&b, 3);
    gb_key(&b, "nested.str", PC_GGUF_ARRAY); gb_u32(&b, PC_GGUF_ARRAY); gb_u64(&b, 2);
    gb_u32(&b, PC_GGUF_STRING); gb_u64(&b, 1); gb_str(&b, "x");
    gb_u32(&b, PC_GGUF_STRING); gb_u64(&b, 0);
    gb_key(&b, "general.alignment", PC_GGUF_UINT32); gb_u32(&b, 64);
    gb_key(&b, "after", PC_GGUF_STRING); gb_str(&b, "ok");
    gb_str(&b, "w"); gb_u32(&b, 2); gb_u64(&b, 2); gb_u64(&b, 3); gb_u32(&b, PC_TYPE_F16); gb_u64(&b, 0);
    gb_pad(&b, 64);
    size_t data_at = b.len;
    for (int i = 0; i < 6; i++) gb_u16(&b, (uint16_t)(0x3c00 + i));

    pc_gguf *g = NULL;
    pc_error err;
    CHECK_MSG(pc_gguf_open_memory(b.p, b.len, "v2", &g, &err) == PC_OK, "%s", err.msg);
    if (g) {
        uint32_t u;
        int64_t i;
        float f;
        pc_gguf_str s;
        pc_gguf_vtype et;
        uint64_t n;
        CHECK_EQ_INT(pc_gguf_version(g), 2);
        CHECK_EQ_INT(pc_gguf_alignment(g), 64);
        CHECK(pc_gguf_get_u32(g, "u8", &u, &err) == PC_OK && u == 200);
        CHECK(pc_gguf_get_i64(g, "i8", &i, &err) == PC_OK && i == -3);
        CHECK(pc_gguf_get_u32(g, "i8", &u, &err) == PC_ERR_RANGE);
        CHECK(pc_gguf_get_u32(g, "u16", &u, &err) == PC_OK && u == 60000);
        CHECK(pc_gguf_get_i64(g, "i16", &i, &err) == PC_OK && i == -30000);
        CHECK(pc_gguf_get_i64(g, "i64", &i, &err) == PC_OK && i == -5000000000000ll);
        CHECK(pc_gguf_get_u32(g, "i64", &u, &err) == PC_ERR_RANGE);
        CHECK(pc_gguf_get_f32(g, "f64", &f, &err) == PC_OK && f == 0.25f);
        CHECK(pc_gguf_get_f32(g, "f64.big", &f, &err) == PC_ERR_RANGE);
        CHECK(pc_gguf_get_arr(g, "nested", &et, &n, &err) == PC_OK && et == PC_GGUF_ARRAY && n == 2);
        CHECK(pc_gguf_arr_data(g, "nested") == NULL);
        CHECK(pc_gguf_get_arr(g, "nested.str", &et, &n, &err) == PC_OK && et == PC_GGUF_ARRAY && n == 2);
        CHECK(pc_gguf_get_str(g, "after", &s, &err) == PC_OK && str_eq(s, "ok"));
        const pc_gguf_tensor *t = pc_gguf_find_tensor(g, "w");
        CHECK(t && t->type == PC_TYPE_F16 && t->ne[0] == 2 && t->ne[1] == 3 && t->size == 12);
        CHECK(t && (const uint8_t *)t->data == b.p + data_at);
    }
    pc_gguf_close(g);
    gb_free(&b);
}

/* Values gguf-py (llama.cpp's Python reader) reports for the default model. */
static int test_real_model(void) {
    if (access(PC_MODEL_PATH, R_OK) != 0) return CHECK_SKIP;
    pc_gguf *g = NULL;
    pc_error err;
    CHECK_MSG(pc_gguf_open(PC_MODEL_PATH, &g, &err) == PC_OK, "%s", err.msg);
    if (!g) return 0;
    pc_gguf_str s;
    uint32_t u;
    float f;
    bool b;
    pc_gguf_vtype et;
    uint64_t n;
    CHECK_EQ_INT(pc_gguf_version(g), 3);
    CHECK_EQ_INT(pc_gguf_kv_count(g), 33);
    CHECK(pc_gguf_get_str(g, "general.architecture", &s, &err) == PC_OK && str_eq(s, "llama"));
    CHECK(pc_gguf_get_u32(g, "llama.block_count", &u, &err) == PC_OK && u == 30);
    CHECK(pc_gguf_get_u32(g, "llama.embedding_length", &u, &err) == PC_OK && u == 576);
    CHECK(pc_gguf_get_u32(g, "llama.attention.head_count_kv", &u, &err) == PC_OK && u == 3);
    CHECK(pc_gguf_get_f32(g, "llama.rope.freq_base", &f, &err) == PC_OK && f == 100000.0f);
    CHECK(pc_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b, &err) == PC_OK && !b);
    CHECK(pc_gguf_get_str(g, "tokenizer.ggml.pre", &s, &err) == PC_OK && str_eq(s, "smollm"));
    CHECK(pc_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n, &err) == PC_OK && et == PC_GGUF_STRING && n == 49152);
    CHECK(str_eq(pc_gguf_arr_str(g, "tokenizer.ggml.tokens", 0), "<|endoftext|>"));
    CHECK(str_eq(pc_gguf_arr_str(g, "tokenizer.ggml.tokens", 1), "<|im_start|>"));
    CHECK(str_eq(pc_gguf_arr_str(g, "tokenizer.ggml.tokens", 1000), "()"));
    CHECK(str_eq(pc_gguf_arr_str(g, "tokenizer.ggml.tokens", 49151), "ectable"));
    CHECK(pc_gguf_get_arr(g, "tokenizer.ggml.merges", &et, &n, &err) == PC_OK && n == 48900);
    CHECK(str_eq(pc_gguf_arr_str(g, "tokenizer.ggml.merges", 0), "\xc4\xa0 t"));
    CHECK(str_eq(pc_gguf_arr_str(g, "tokenizer.ggml.merges", 48899), "ect able"));
    CHECK(pc_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &n, &err) == PC_OK && et == PC_GGUF_INT32);
    const int32_t *tt = pc_gguf_arr_data(g, "tokenizer.ggml.token_type");
    int32_t last;
    CHECK(tt != NULL);
    if (tt) memcpy(&last, tt + 49151, 4);
    CHECK(tt && last == 1);

    CHECK_EQ_INT(pc_gguf_tensor_count(g), 272);
    const pc_gguf_tensor *t = pc_gguf_find_tensor(g, "token_embd.weight");
    CHECK(t && t->type == PC_TYPE_Q8_0 && t->n_dims == 2 && t->ne[0] == 576 && t->ne[1] == 49152);
    CHECK(t && t->offset == 0 && t->size == 30081024);
    static const uint8_t embd_head[8] = {0x32, 0x19, 0xd6, 0x0d, 0x13, 0xf7, 0xe5, 0xee};
    CHECK(t && memcmp(t->data, embd_head, 8) == 0);
    const pc_gguf_tensor *q = pc_gguf_find_tensor(g, "blk.3.attn_q.weight");
    CHECK(q && q->type == PC_TYPE_Q4_1 && q->ne[0] == 576 && q->ne[1] == 576 && q->size == 207360);
    CHECK(q && t && (const uint8_t *)q->data - (const uint8_t *)t->data == 84784960 - 1785664);
    const pc_gguf_tensor *on = pc_gguf_find_tensor(g, "output_norm.weight");
    CHECK(on && on->type == PC_TYPE_F32 && on->size == 2304);
    CHECK(on && t && (const uint8_t *)on->data - (const uint8_t *)t->data == 98360128 - 1785664);
    pc_gguf_close(g);
    return 0;
}

int main(void) {
    test_layout_kv();
    test_layout_tensor();
    test_round_trip();
    test_writer_rejects();
    test_alignment_64();
    test_hand_built_v2();
    if (test_real_model() == CHECK_SKIP) fprintf(stderr, "real model absent: skipped its checks\n");
    return check_report();
}
