/* gguf_write.c - building GGUF v3 files in memory (tests make tiny seeded models with it).
 *
 * The writer holds copies of every key-value (already encoded as its on-disk
 * value bytes) and every tensor, in insertion order. Serialization lays them out
 * as gguf.h describes: header, key-values, tensor infos, padding to the
 * alignment, then each tensor's bytes at the next aligned offset; the file ends
 * right after the last tensor's bytes. Invariants: keys and tensor names are
 * unique; every tensor passed the reader's checks (known type, 1..4 positive
 * dims, ne[0] a multiple of the block size, byte size without overflow); the
 * alignment is a power of two (32 unless general.alignment was set). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf_impl.h"
#include "util/buf.h"
#include "util/error.h"

typedef struct wkv {
    char *key;
    uint32_t type;
    uint8_t *val; /* encoded value bytes */
    size_t len;
} wkv;

typedef struct wtensor {
    char *name;
    pc_type type;
    int n_dims;
    int64_t ne[PC_GGUF_MAX_DIMS];
    uint8_t *data;
    size_t size;
} wtensor;

struct pc_gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *ts;
    size_t n_t, cap_t;
    uint32_t alignment;
};

pc_gguf_writer *pc_gguf_writer_create(void) {
    pc_gguf_writer *w = calloc(1, sizeof *w);
    if (w) w->alignment = PC_GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void pc_gguf_writer_free(pc_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->ts[i].name);
        free(w->ts[i].data);
    }
    free(w->kvs);
    free(w->ts);
    free(w);
}

static bool has_key(const pc_gguf_writer *w, const char *key) {
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kvs[i].key, key) == 0) return true;
    return false;
}

/* Takes ownership of val (len bytes) on success and on failure. */
static pc_status add_kv(pc_gguf_writer *w, const char *key, uint32_t type, uint8_t *val, size_t len) {
    pc_status st = PC_OK;
    char *k = NULL;
    if (!w || !key || has_key(w, key)) st = PC_ERR_INVALID;
    else if (!val || !(k = strdup(key)))
        st = PC_ERR_NOMEM;
    wkv *kvs = st == PC_OK ? pc_array_reserve(w->kvs, &w->cap_kv, w->n_kv + 1, sizeof *w->kvs) : NULL;
    if (kvs) w->kvs = kvs;
    else if (st == PC_OK) st = PC_ERR_NOMEM;
    if (st != PC_OK) {
        free(val);
        free(k);
        return st;
    }
    w->kvs[w->n_kv++] = (wkv){k, type, val, len};
    return PC_OK;
}

static pc_status add_scalar(pc_gguf_writer *w, const char *key, uint32_t type, const void *v) {
    size_t n = pc_gguf_scalar_size(type);
    uint8_t *val = malloc(n);
    if (val) memcpy(val, v, n);
    return add_kv(w, key, type, val, n);
}

pc_status pc_gguf_writer_set_u32(pc_gguf_writer *w, const char *key, uint32_t v) {
    if (key && strcmp(key, PC_GGUF_ALIGNMENT_KEY) == 0) {
        if (v == 0 || (v & (v - 1)) != 0 || !w) return PC_ERR_INVALID;
        pc_status st = add_scalar(w, key, PC_GGUF_UINT32, &v);
        if (st == PC_OK) w->alignment = v;
        return st;
    }
    return add_scalar(w, key, PC_GGUF_UINT32, &v);
}

pc_status pc_gguf_writer_set_i32(pc_gguf_writer *w, const char *key, int32_t v) {
    return add_scalar(w, key, PC_GGUF_INT32, &v);
}

pc_status pc_gguf_writer_set_u64(pc_gguf_writer *w, const char *key, uint64_t v) {
    return add_scalar(w, key, PC_GGUF_UINT64, &v);
}

pc_status pc_gguf_writer_set_f32(pc_gguf_writer *w, const char *key, float v) {
    return add_scalar(w, key, PC_GGUF_FLOAT32, &v);
}

pc_status pc_gguf_writer_set_bool(pc_gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return add_scalar(w, key, PC_GGUF_BOOL, &b);
}

/* u64 length + bytes at dst; returns the bytes written. */
static size_t put_str(uint8_t *dst, const char *s, size_t len) {
    uint64_t l = len;
    memcpy(dst, &l, 8);
    memcpy(dst + 8, s, len);
    return 8 + len;
}

pc_status pc_gguf_writer_set_str(pc_gguf_writer *w, const char *key, const char *v) {
    if (!v) return PC_ERR_INVALID;
    size_t len = strlen(v);
    uint8_t *val = malloc(8 + len);
    if (val) put_str(val, v, len);
    return add_kv(w, key, PC_GGUF_STRING, val, 8 + len);
}

static uint8_t *array_head(uint32_t elem_type, uint64_t count, size_t body) {
    uint8_t *val = body <= SIZE_MAX - 12 ? malloc(12 + body) : NULL;
    if (!val) return NULL;
    memcpy(val, &elem_type, 4);
    memcpy(val + 4, &count, 8);
    return val;
}

pc_status pc_gguf_writer_set_arr(pc_gguf_writer *w, const char *key, pc_gguf_vtype elem_type, const void *data,
                                 uint64_t count) {
    size_t es = pc_gguf_scalar_size(elem_type);
    size_t body;
    if (es == 0 || (count && !data) || __builtin_mul_overflow((size_t)count, es, &body)) return PC_ERR_INVALID;
    uint8_t *val = array_head(elem_type, count, body);
    if (val && body) memcpy(val + 12, data, body);
    return add_kv(w, key, PC_GGUF_ARRAY, val, 12 + body);
}

pc_status pc_gguf_writer_set_arr_str(pc_gguf_writer *w, const char *key, const char *const *strs, uint64_t count) {
    size_t body = 0;
    if (count && !strs) return PC_ERR_INVALID;
    for (uint64_t i = 0; i < count; i++) {
        if (!strs[i]) return PC_ERR_INVALID;
        body += 8 + strlen(strs[i]);
    }
    uint8_t *val = array_head(PC_GGUF_STRING, count, body);
    for (size_t i = 0, o = 12; val && i < count; i++) o += put_str(val + o, strs[i], strlen(strs[i]));
    return add_kv(w, key, PC_GGUF_ARRAY, val, 12 + body);
}

/* The reader's shape rules, applied up front so every written file reopens. */
static pc_status tensor_size(pc_type type, int n_dims, const int64_t *ne, size_t *size) {
    const pc_type_info *ti = pc_type_get((uint32_t)type);
    if (!ti || n_dims < 1 || n_dims > PC_GGUF_MAX_DIMS || !ne) return PC_ERR_INVALID;
    for (int d = 0; d < n_dims; d++)
        if (ne[d] <= 0) return PC_ERR_INVALID;
    if (ne[0] % ti->block_size != 0) return PC_ERR_INVALID;
    size_t bytes = pc_row_size(type, ne[0]);
    for (int d = 1; d < n_dims; d++)
        if (__builtin_mul_overflow(bytes, (size_t)ne[d], &bytes)) return PC_ERR_INVALID;
    *size = bytes;
    return PC_OK;
}

pc_status pc_gguf_writer_add_tensor(pc_gguf_writer *w, const char *name, pc_type type, int n_dims, const int64_t *ne,
                                    const void *data) {
    size_t size;
    if (!w || !name || !data || tensor_size(type, n_dims, ne, &size) != PC_OK) return PC_ERR_INVALID;
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->ts[i].name, name) == 0) return PC_ERR_INVALID;
    wtensor t = {.name = strdup(name), .type = type, .n_dims = n_dims, .data = malloc(size), .size = size};
    wtensor *ts = t.name && t.data ? pc_array_reserve(w->ts, &w->cap_t, w->n_t + 1, sizeof *w->ts) : NULL;
    if (ts) w->ts = ts;
    if (!ts) {
        free(t.name);
        free(t.data);
        return PC_ERR_NOMEM;
    }
    for (int d = 0; d < PC_GGUF_MAX_DIMS; d++) t.ne[d] = d < n_dims ? ne[d] : 1;
    memcpy(t.data, data, size);
    w->ts[w->n_t++] = t;
    return PC_OK;
}

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* Offsets of each tensor within the data section; returns the data section's size. */
static size_t tensor_offsets(const pc_gguf_writer *w, uint64_t *offs) {
    size_t end = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        offs[i] = align_up(end, w->alignment);
        end = offs[i] + w->ts[i].size;
    }
    return end;
}

static size_t meta_size(const pc_gguf_writer *w) {
    size_t n = 24;
    for (size_t i = 0; i < w->n_kv; i++) n += 8 + strlen(w->kvs[i].key) + 4 + w->kvs[i].len;
    for (size_t i = 0; i < w->n_t; i++) n += 8 + strlen(w->ts[i].name) + 4 + 8 * (size_t)w->ts[i].n_dims + 4 + 8;
    return n;
}

static uint8_t *put(uint8_t *p, const void *v, size_t n) {
    memcpy(p, v, n);
    return p + n;
}

static uint8_t *put_meta(const pc_gguf_writer *w, uint8_t *p, const uint64_t *offs) {
    uint32_t magic = PC_GGUF_MAGIC, version = 3;
    uint64_t n_t = w->n_t, n_kv = w->n_kv;
    p = put(put(put(put(p, &magic, 4), &version, 4), &n_t, 8), &n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        p += put_str(p, w->kvs[i].key, strlen(w->kvs[i].key));
        p = put(put(p, &w->kvs[i].type, 4), w->kvs[i].val, w->kvs[i].len);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->ts[i];
        uint32_t n_dims = (uint32_t)t->n_dims, type = (uint32_t)t->type;
        p += put_str(p, t->name, strlen(t->name));
        p = put(p, &n_dims, 4);
        for (int d = 0; d < t->n_dims; d++) p = put(p, &t->ne[d], 8);
        p = put(put(p, &type, 4), &offs[i], 8);
    }
    return p;
}

pc_status pc_gguf_writer_to_memory(const pc_gguf_writer *w, void **out, size_t *size, pc_error *err) {
    if (!w || !out || !size) return pc_fail(err, PC_ERR_INVALID, "pc_gguf_writer_to_memory: NULL argument");
    uint64_t *offs = malloc((w->n_t + 1) * sizeof *offs);
    if (!offs) return pc_fail(err, PC_ERR_NOMEM, "gguf writer: no memory for tensor offsets");
    size_t data_pos = align_up(meta_size(w), w->alignment);
    size_t total = data_pos + tensor_offsets(w, offs);
    uint8_t *buf = calloc(1, total); /* zeroed: padding bytes are 0 */
    if (!buf) {
        free(offs);
        return pc_fail(err, PC_ERR_NOMEM, "gguf writer: no memory for %zu bytes", total);
    }
    put_meta(w, buf, offs);
    for (size_t i = 0; i < w->n_t; i++) memcpy(buf + data_pos + offs[i], w->ts[i].data, w->ts[i].size);
    free(offs);
    *out = buf;
    *size = total;
    return PC_OK;
}

pc_status pc_gguf_writer_write(const pc_gguf_writer *w, const char *path, pc_error *err) {
    if (!path) return pc_fail(err, PC_ERR_INVALID, "pc_gguf_writer_write: NULL path");
    void *buf;
    size_t size;
    pc_status st = pc_gguf_writer_to_memory(w, &buf, &size, err);
    if (st != PC_OK) return st;
    FILE *f = fopen(path, "wb");
    if (!f) st = pc_fail(err, PC_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    else if (fwrite(buf, 1, size, f) != size) st = pc_fail(err, PC_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (f && fclose(f) != 0 && st == PC_OK) st = pc_fail(err, PC_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    free(buf);
    return st;
}
