/* gguf_meta.c - lookups and typed getters over an opened pc_gguf.
 *
 * Everything here only reads the index that gguf_read.c validated: positions
 * are trusted to lie inside the file (gguf_impl.h, invariants 1-2), names are
 * found by binary search (invariant 3), and string-array elements by their
 * recorded positions, so every getter is O(1) or O(log n) and cannot read
 * outside the mapping. Type mismatches and out-of-range conversions are
 * reported, never coerced silently. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gguf/gguf_impl.h"
#include "util/error.h"

static const char *const VTYPE_NAMES[] = {
    [PC_GGUF_UINT8] = "uint8",     [PC_GGUF_INT8] = "int8",       [PC_GGUF_UINT16] = "uint16",
    [PC_GGUF_INT16] = "int16",     [PC_GGUF_UINT32] = "uint32",   [PC_GGUF_INT32] = "int32",
    [PC_GGUF_FLOAT32] = "float32", [PC_GGUF_BOOL] = "bool",       [PC_GGUF_STRING] = "string",
    [PC_GGUF_ARRAY] = "array",     [PC_GGUF_UINT64] = "uint64",   [PC_GGUF_INT64] = "int64",
    [PC_GGUF_FLOAT64] = "float64",
};

static const uint8_t SCALAR_SIZES[] = {
    [PC_GGUF_UINT8] = 1,   [PC_GGUF_INT8] = 1,   [PC_GGUF_UINT16] = 2, [PC_GGUF_INT16] = 2,   [PC_GGUF_UINT32] = 4,
    [PC_GGUF_INT32] = 4,   [PC_GGUF_FLOAT32] = 4, [PC_GGUF_BOOL] = 1,  [PC_GGUF_STRING] = 0,  [PC_GGUF_ARRAY] = 0,
    [PC_GGUF_UINT64] = 8,  [PC_GGUF_INT64] = 8,  [PC_GGUF_FLOAT64] = 8,
};

const char *pc_gguf_vtype_name(uint32_t t) { return t <= PC_GGUF_FLOAT64 ? VTYPE_NAMES[t] : "?"; }

size_t pc_gguf_scalar_size(uint32_t t) { return t <= PC_GGUF_FLOAT64 ? SCALAR_SIZES[t] : 0; }

static int cmp_bytes(const char *a, uint64_t alen, const char *b, uint64_t blen) {
    int r = memcmp(a, b, (size_t)(alen < blen ? alen : blen));
    if (r != 0) return r;
    return alen < blen ? -1 : alen > blen;
}

int pc_gguf_ref_cmp(const void *a, const void *b) {
    const pc_gguf_ref *x = a, *y = b;
    int r = cmp_bytes(x->ptr, x->len, y->ptr, y->len);
    if (r != 0) return r;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

int64_t pc_gguf_ref_find(const pc_gguf_ref *refs, int64_t n, const char *name, size_t len) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int r = cmp_bytes(refs[mid].ptr, refs[mid].len, name, len);
        if (r == 0) return refs[mid].idx;
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

uint32_t pc_gguf_version(const pc_gguf *g) { return g ? g->version : 0; }
const char *pc_gguf_path(const pc_gguf *g) { return g ? g->name : NULL; }
size_t pc_gguf_alignment(const pc_gguf *g) { return g ? g->alignment : 0; }

int64_t pc_gguf_kv_count(const pc_gguf *g) { return g ? g->n_kv : 0; }

int64_t pc_gguf_find_key(const pc_gguf *g, const char *key) {
    if (!g || !key) return -1;
    return pc_gguf_ref_find(g->key_index, g->n_kv, key, strlen(key));
}

pc_gguf_str pc_gguf_key_at(const pc_gguf *g, int64_t i) {
    if (!g || i < 0 || i >= g->n_kv) return (pc_gguf_str){NULL, 0};
    return g->kvs[i].key;
}

pc_gguf_vtype pc_gguf_kv_type(const pc_gguf *g, int64_t i) {
    if (!g || i < 0 || i >= g->n_kv) return (pc_gguf_vtype)-1;
    return g->kvs[i].type;
}

/* The kv for key, or NOT_FOUND. */
static pc_status lookup(const pc_gguf *g, const char *key, const pc_gguf_kv **kv, pc_error *err) {
    if (!g || !key) return pc_fail(err, PC_ERR_INVALID, "pc_gguf getter: NULL argument");
    int64_t i = pc_gguf_find_key(g, key);
    if (i < 0) return pc_fail(err, PC_ERR_NOT_FOUND, "%s: key '%.200s' not found", g->name, key);
    *kv = &g->kvs[i];
    return PC_OK;
}

static pc_status wrong_type(const pc_gguf *g, const pc_gguf_kv *kv, const char *key, const char *expected,
                            pc_error *err) {
    return pc_fail(err, PC_ERR_FORMAT, "%s: offset %zu: key '%.200s': expected %s, found %s", g->name,
                   kv->val_pos - 4, key, expected, pc_gguf_vtype_name(kv->type));
}

/* An integer value as sign + magnitude; false when the value is not an integer type. */
static bool read_int(const pc_gguf *g, const pc_gguf_kv *kv, int64_t *s, uint64_t *u, bool *is_signed) {
    const uint8_t *p = g->base + kv->val_pos;
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; uint64_t u64; int64_t i64; } v;
    size_t n = pc_gguf_scalar_size(kv->type);
    if (kv->type == PC_GGUF_FLOAT32 || kv->type == PC_GGUF_FLOAT64 || kv->type == PC_GGUF_BOOL || n == 0) return false;
    memcpy(&v, p, n);
    *is_signed = true;
    switch (kv->type) {
    case PC_GGUF_INT8: *s = v.i8; break;
    case PC_GGUF_INT16: *s = v.i16; break;
    case PC_GGUF_INT32: *s = v.i32; break;
    case PC_GGUF_INT64: *s = v.i64; break;
    default:
        *is_signed = false;
        *u = kv->type == PC_GGUF_UINT8 ? v.u8 : kv->type == PC_GGUF_UINT16 ? v.u16
           : kv->type == PC_GGUF_UINT32 ? v.u32 : v.u64;
    }
    return true;
}

static pc_status out_of_range(const pc_gguf *g, const pc_gguf_kv *kv, const char *key, bool is_signed, int64_t s,
                             uint64_t u, const char *target, pc_error *err) {
    char v[24];
    if (is_signed) snprintf(v, sizeof v, "%" PRId64, s);
    else snprintf(v, sizeof v, "%" PRIu64, u);
    return pc_fail(err, PC_ERR_RANGE, "%s: offset %zu: key '%.200s': %s value %s does not fit in %s", g->name,
                   kv->val_pos, key, pc_gguf_vtype_name(kv->type), v, target);
}

pc_status pc_gguf_get_u32(const pc_gguf *g, const char *key, uint32_t *out, pc_error *err) {
    const pc_gguf_kv *kv = NULL;
    pc_status st = lookup(g, key, &kv, err);
    if (st != PC_OK) return st;
    int64_t s = 0;
    uint64_t u = 0;
    bool is_signed;
    if (!read_int(g, kv, &s, &u, &is_signed)) return wrong_type(g, kv, key, "an integer", err);
    if (is_signed ? (s < 0 || s > (int64_t)UINT32_MAX) : u > UINT32_MAX)
        return out_of_range(g, kv, key, is_signed, s, u, "uint32", err);
    *out = is_signed ? (uint32_t)s : (uint32_t)u;
    return PC_OK;
}

pc_status pc_gguf_get_i64(const pc_gguf *g, const char *key, int64_t *out, pc_error *err) {
    const pc_gguf_kv *kv = NULL;
    pc_status st = lookup(g, key, &kv, err);
    if (st != PC_OK) return st;
    int64_t s = 0;
    uint64_t u = 0;
    bool is_signed;
    if (!read_int(g, kv, &s, &u, &is_signed)) return wrong_type(g, kv, key, "an integer", err);
    if (!is_signed && u > (uint64_t)INT64_MAX) return out_of_range(g, kv, key, false, 0, u, "int64", err);
    *out = is_signed ? s : (int64_t)u;
    return PC_OK;
}

pc_status pc_gguf_get_f32(const pc_gguf *g, const char *key, float *out, pc_error *err) {
    const pc_gguf_kv *kv = NULL;
    pc_status st = lookup(g, key, &kv, err);
    if (st != PC_OK) return st;
    const uint8_t *p = g->base + kv->val_pos;
    if (kv->type == PC_GGUF_FLOAT32) {
        memcpy(out, p, 4);
        return PC_OK;
    }
    if (kv->type != PC_GGUF_FLOAT64) return wrong_type(g, kv, key, "float32 or float64", err);
    double d;
    memcpy(&d, p, 8);
    if (isfinite(d) && fabs(d) > FLT_MAX)
        return pc_fail(err, PC_ERR_RANGE, "%s: offset %zu: key '%.200s': value %g does not fit in float32", g->name,
                       kv->val_pos, key, d);
    *out = (float)d;
    return PC_OK;
}

pc_status pc_gguf_get_bool(const pc_gguf *g, const char *key, bool *out, pc_error *err) {
    const pc_gguf_kv *kv = NULL;
    pc_status st = lookup(g, key, &kv, err);
    if (st != PC_OK) return st;
    if (kv->type != PC_GGUF_BOOL) return wrong_type(g, kv, key, "bool", err);
    *out = g->base[kv->val_pos] != 0;
    return PC_OK;
}

static pc_gguf_str str_at(const pc_gguf *g, size_t pos) {
    uint64_t len;
    memcpy(&len, g->base + pos, 8);
    return (pc_gguf_str){(const char *)g->base + pos + 8, len};
}

pc_status pc_gguf_get_str(const pc_gguf *g, const char *key, pc_gguf_str *out, pc_error *err) {
    const pc_gguf_kv *kv = NULL;
    pc_status st = lookup(g, key, &kv, err);
    if (st != PC_OK) return st;
    if (kv->type != PC_GGUF_STRING) return wrong_type(g, kv, key, "string", err);
    *out = str_at(g, kv->val_pos);
    return PC_OK;
}

pc_status pc_gguf_get_arr(const pc_gguf *g, const char *key, pc_gguf_vtype *elem_type, uint64_t *count,
                          pc_error *err) {
    const pc_gguf_kv *kv = NULL;
    pc_status st = lookup(g, key, &kv, err);
    if (st != PC_OK) return st;
    if (kv->type != PC_GGUF_ARRAY) return wrong_type(g, kv, key, "array", err);
    *elem_type = kv->elem_type;
    *count = kv->count;
    return PC_OK;
}

static const pc_gguf_kv *find_array(const pc_gguf *g, const char *key) {
    int64_t i = pc_gguf_find_key(g, key);
    if (i < 0 || g->kvs[i].type != PC_GGUF_ARRAY) return NULL;
    return &g->kvs[i];
}

const void *pc_gguf_arr_data(const pc_gguf *g, const char *key) {
    const pc_gguf_kv *kv = find_array(g, key);
    if (!kv || pc_gguf_scalar_size(kv->elem_type) == 0) return NULL;
    return g->base + kv->arr_pos;
}

pc_gguf_str pc_gguf_arr_str(const pc_gguf *g, const char *key, uint64_t i) {
    const pc_gguf_kv *kv = find_array(g, key);
    if (!kv || kv->elem_type != PC_GGUF_STRING || i >= kv->count) return (pc_gguf_str){NULL, 0};
    return str_at(g, (size_t)kv->str_pos[i]);
}

int64_t pc_gguf_tensor_count(const pc_gguf *g) { return g ? g->n_tensors : 0; }

const pc_gguf_tensor *pc_gguf_tensor_at(const pc_gguf *g, int64_t i) {
    if (!g || i < 0 || i >= g->n_tensors) return NULL;
    return &g->tensors[i];
}

const pc_gguf_tensor *pc_gguf_find_tensor(const pc_gguf *g, const char *name) {
    if (!g || !name) return NULL;
    int64_t i = pc_gguf_ref_find(g->tensor_index, g->n_tensors, name, strlen(name));
    return i < 0 ? NULL : &g->tensors[i];
}
