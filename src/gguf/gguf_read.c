/* gguf_read.c - opening a GGUF file: map it, validate every field, build the lookup index.
 *
 * One forward pass over header, key-values and tensor infos through a cursor
 * whose position never exceeds the file size; every read first checks that
 * its bytes remain (need()), and every size computed from file values is
 * checked for overflow before use. Counts are bounded by the bytes left
 * (each item has a minimum encoded size) before anything is allocated, so a
 * hostile file costs at most a few times its own size in memory. Errors name
 * the file, the item and field, and the byte offset where the field was read. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/gguf_impl.h"
#include "util/error.h"
#include "util/file.h"

#define HEADER_SIZE 24
#define MIN_KV_SIZE 13          /* key length 8 + type 4 + smallest value 1 */
#define MIN_TENSOR_INFO_SIZE 32 /* name length 8 + n_dims 4 + ne 8 + type 4 + offset 8 */
#define MIN_ARRAY_SIZE 12       /* element type 4 + count 8 */
#define MAX_ARRAY_DEPTH 8       /* arrays of arrays deeper than this are refused (bounded recursion) */

typedef struct cursor {
    const uint8_t *base;
    size_t size;
    size_t pos;       /* <= size always */
    const char *name; /* file name for messages */
    char ctx[160];    /* item being read: "kv 'general.name'", "tensor 3"; "" for the header */
    pc_error *err;
} cursor;

#define TRY(x)                                                                                                     \
    do {                                                                                                           \
        pc_status st_ = (x);                                                                                       \
        if (st_ != PC_OK) return st_;                                                                              \
    } while (0)

/* Formats a file-provided name for messages: printable ASCII kept, other bytes escaped, long names cut. */
static void describe(char *buf, size_t cap, const char *p, uint64_t len) {
    size_t o = 0;
    for (uint64_t i = 0; i < len && o + 8 < cap; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\') buf[o++] = (char)ch;
        else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
        if (o >= 64 && i + 1 < len) {
            o += (size_t)snprintf(buf + o, cap - o, "...");
            break;
        }
    }
    buf[o < cap ? o : cap - 1] = '\0';
}

static void set_ctx(cursor *c, const char *kind, int64_t i) {
    snprintf(c->ctx, sizeof c->ctx, "%s %" PRId64, kind, i);
}

static void set_ctx_named(cursor *c, const char *kind, pc_gguf_str s) {
    char d[96];
    describe(d, sizeof d, s.ptr, s.len);
    snprintf(c->ctx, sizeof c->ctx, "%s '%s'", kind, d);
}

/* "name: offset AT: ctx field suffix: what" as a PC_ERR_FORMAT. */
static pc_status bad(const cursor *c, size_t at, const char *field, const char *suffix, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static pc_status bad(const cursor *c, size_t at, const char *field, const char *suffix, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return pc_fail(c->err, PC_ERR_FORMAT, "%s: offset %zu: %s%s%s%s: %s", c->name, at, c->ctx, c->ctx[0] ? " " : "",
                   field, suffix, what);
}

static size_t left(const cursor *c) { return c->size - c->pos; }

static pc_status need(const cursor *c, uint64_t n, const char *field, const char *suffix) {
    if (n > left(c))
        return bad(c, c->pos, field, suffix, "file ends: need %" PRIu64 " bytes, %zu left", n, left(c));
    return PC_OK;
}

static pc_status rd_u32(cursor *c, const char *field, const char *suffix, uint32_t *v) {
    TRY(need(c, 4, field, suffix));
    memcpy(v, c->base + c->pos, 4);
    c->pos += 4;
    return PC_OK;
}

static pc_status rd_u64(cursor *c, const char *field, const char *suffix, uint64_t *v) {
    TRY(need(c, 8, field, suffix));
    memcpy(v, c->base + c->pos, 8);
    c->pos += 8;
    return PC_OK;
}

/* A gguf string: u64 length, then that many bytes inside the file. */
static pc_status rd_str(cursor *c, const char *field, pc_gguf_str *s) {
    size_t at = c->pos;
    uint64_t len;
    TRY(rd_u64(c, field, " length", &len));
    if (len > left(c))
        return bad(c, at, field, " length", "%" PRIu64 " bytes run past the end of the file (%zu left)", len, left(c));
    s->ptr = (const char *)c->base + c->pos;
    s->len = len;
    c->pos += (size_t)len;
    return PC_OK;
}

static bool str_fits(const cursor *c) {
    uint64_t len;
    if (left(c) < 8) return false;
    memcpy(&len, c->base + c->pos, 8);
    return len <= left(c) - 8;
}

/* Element j of an array named path: the "path[j]" name is formatted only on failure. */
static pc_status rd_str_elem(cursor *c, const char *path, uint64_t j, pc_gguf_str *s) {
    if (str_fits(c)) return rd_str(c, path, s);
    char f[192];
    snprintf(f, sizeof f, "%.160s[%" PRIu64 "]", path, j);
    return rd_str(c, f, s);
}

static size_t min_elem_size(uint32_t t) {
    if (t == PC_GGUF_STRING) return 8;
    if (t == PC_GGUF_ARRAY) return MIN_ARRAY_SIZE;
    return pc_gguf_scalar_size(t);
}

/* Reads an array header at c->pos and checks that count elements can fit in the bytes left. */
static pc_status rd_array_head(cursor *c, const char *path, int depth, uint32_t *et, uint64_t *count) {
    size_t at = c->pos;
    TRY(rd_u32(c, path, " element type", et));
    if (*et > PC_GGUF_FLOAT64) return bad(c, at, path, " element type", "unknown value type %" PRIu32, *et);
    if (*et == PC_GGUF_ARRAY && depth + 1 >= MAX_ARRAY_DEPTH)
        return bad(c, at, path, " element type", "arrays nested deeper than %d levels", MAX_ARRAY_DEPTH);
    at = c->pos;
    TRY(rd_u64(c, path, " count", count));
    size_t m = min_elem_size(*et);
    if (*count > left(c) / m)
        return bad(c, at, path, " count",
                   "%" PRIu64 " elements of type %s (at least %zu bytes each) do not fit in the %zu bytes left",
                   *count, pc_gguf_vtype_name(*et), m, left(c));
    return PC_OK;
}

/* Validates and skips the elements of an array whose header was just read.
 * str_pos, when non-NULL, receives the position of each string element. */
static pc_status skip_elems(cursor *c, const char *path, int depth, uint32_t et, uint64_t count, uint64_t *str_pos) {
    if (et == PC_GGUF_STRING) {
        for (uint64_t j = 0; j < count; j++) {
            pc_gguf_str s;
            if (str_pos) str_pos[j] = c->pos;
            TRY(rd_str_elem(c, path, j, &s));
        }
        return PC_OK;
    }
    if (et == PC_GGUF_ARRAY) {
        for (uint64_t j = 0; j < count; j++) {
            char sub[192]; /* "value" + up to MAX_ARRAY_DEPTH "[j]": fits in 160 */
            uint32_t sub_et = 0;
            uint64_t sub_count = 0;
            snprintf(sub, sizeof sub, "%.160s[%" PRIu64 "]", path, j);
            TRY(rd_array_head(c, sub, depth + 1, &sub_et, &sub_count));
            TRY(skip_elems(c, sub, depth + 1, sub_et, sub_count, NULL));
        }
        return PC_OK;
    }
    c->pos += (size_t)(count * pc_gguf_scalar_size(et)); /* fits: rd_array_head bounded count */
    return PC_OK;
}

static pc_status read_array_value(cursor *c, pc_gguf_kv *kv) {
    uint32_t et;
    TRY(rd_array_head(c, "value", 0, &et, &kv->count));
    kv->elem_type = (pc_gguf_vtype)et;
    kv->arr_pos = c->pos;
    if (et == PC_GGUF_STRING) {
        kv->str_pos = malloc((size_t)(kv->count ? kv->count : 1) * sizeof *kv->str_pos);
        if (!kv->str_pos) return pc_fail(c->err, PC_ERR_NOMEM, "%s: %s: no memory for the string index", c->name, c->ctx);
    }
    return skip_elems(c, "value", 0, et, kv->count, kv->str_pos);
}

/* general.alignment: a uint32 power of two; it governs every tensor offset after it. */
static pc_status check_alignment(cursor *c, pc_gguf *g, const pc_gguf_kv *kv) {
    if (kv->type != PC_GGUF_UINT32)
        return bad(c, kv->val_pos - 4, "value", " type", "must be uint32, found %s", pc_gguf_vtype_name(kv->type));
    uint32_t a;
    memcpy(&a, c->base + kv->val_pos, 4);
    if (a == 0 || (a & (a - 1)) != 0)
        return bad(c, kv->val_pos, "value", "", "alignment %" PRIu32 " is not a non-zero power of two", a);
    g->alignment = a;
    return PC_OK;
}

static pc_status read_kv(cursor *c, pc_gguf *g, int64_t i) {
    pc_gguf_kv *kv = &g->kvs[i];
    set_ctx(c, "kv", i);
    kv->key_pos = c->pos;
    TRY(rd_str(c, "key", &kv->key));
    if (memchr(kv->key.ptr, 0, (size_t)kv->key.len))
        return bad(c, kv->key_pos + 8, "key", "", "contains a NUL byte");
    set_ctx_named(c, "kv", kv->key);
    size_t at = c->pos;
    uint32_t t;
    TRY(rd_u32(c, "value", " type", &t));
    if (t > PC_GGUF_FLOAT64) return bad(c, at, "value", " type", "unknown value type %" PRIu32, t);
    kv->type = (pc_gguf_vtype)t;
    kv->val_pos = c->pos;
    if (t == PC_GGUF_ARRAY) {
        TRY(read_array_value(c, kv));
    } else if (t == PC_GGUF_STRING) {
        pc_gguf_str s;
        TRY(rd_str(c, "value", &s));
    } else {
        TRY(need(c, pc_gguf_scalar_size(t), "value", ""));
        c->pos += pc_gguf_scalar_size(t);
    }
    if (kv->key.len == sizeof PC_GGUF_ALIGNMENT_KEY - 1 &&
        memcmp(kv->key.ptr, PC_GGUF_ALIGNMENT_KEY, sizeof PC_GGUF_ALIGNMENT_KEY - 1) == 0)
        TRY(check_alignment(c, g, kv));
    return PC_OK;
}

static pc_status read_header(cursor *c, pc_gguf *g, uint64_t *n_tensors, uint64_t *n_kv) {
    uint32_t magic, version;
    TRY(rd_u32(c, "magic", "", &magic));
    if (magic != PC_GGUF_MAGIC) {
        const uint8_t *m = c->base;
        return bad(c, 0, "magic", "", "expected \"GGUF\" (47 47 55 46), found %02x %02x %02x %02x: not a GGUF file",
                   m[0], m[1], m[2], m[3]);
    }
    TRY(rd_u32(c, "version", "", &version));
    if (version == 1)
        return bad(c, 4, "version", "", "GGUF version 1 (32-bit counts) is not supported; convert the file to version 3");
    if (version == 0x02000000u || version == 0x03000000u)
        return bad(c, 4, "version", "", "big-endian GGUF is not supported");
    if (version != 2 && version != 3)
        return bad(c, 4, "version", "", "GGUF version %" PRIu32 " is not supported (only 2 and 3)", version);
    g->version = version;
    TRY(rd_u64(c, "n_tensors", "", n_tensors));
    TRY(rd_u64(c, "n_kv", "", n_kv));
    if (*n_tensors > left(c) / MIN_TENSOR_INFO_SIZE)
        return bad(c, 8, "n_tensors", "", "%" PRIu64 " tensors cannot fit in the %zu bytes left (%d bytes each at least)",
                   *n_tensors, left(c), MIN_TENSOR_INFO_SIZE);
    if (*n_kv > left(c) / MIN_KV_SIZE)
        return bad(c, 16, "n_kv", "", "%" PRIu64 " key-values cannot fit in the %zu bytes left (%d bytes each at least)",
                   *n_kv, left(c), MIN_KV_SIZE);
    return PC_OK;
}

/* Sorts an index over names; a duplicate is reported at pos[idx] of its later occurrence,
 * as "<kind> '<name>' <field>: duplicate". */
static pc_status index_names(cursor *c, pc_gguf_ref *refs, int64_t n, const size_t *pos, const char *kind,
                             const char *field) {
    qsort(refs, (size_t)n, sizeof *refs, pc_gguf_ref_cmp);
    for (int64_t k = 1; k < n; k++) {
        if (refs[k].len != refs[k - 1].len || memcmp(refs[k].ptr, refs[k - 1].ptr, (size_t)refs[k].len) != 0) continue;
        pc_gguf_str s = {refs[k].ptr, refs[k].len};
        set_ctx_named(c, kind, s);
        return bad(c, pos[refs[k].idx], field, "", "duplicate: %s %" PRId64 " has the same %s as %s %" PRId64, kind,
                   refs[k].idx, field, kind, refs[k - 1].idx);
    }
    return PC_OK;
}

static pc_status read_kvs(cursor *c, pc_gguf *g, uint64_t n_kv) {
    g->kvs = calloc((size_t)n_kv + 1, sizeof *g->kvs);
    g->key_index = calloc((size_t)n_kv + 1, sizeof *g->key_index);
    size_t *pos = calloc((size_t)n_kv + 1, sizeof *pos);
    if (!g->kvs || !g->key_index || !pos) {
        free(pos);
        return pc_fail(c->err, PC_ERR_NOMEM, "%s: no memory for %" PRIu64 " key-values", c->name, n_kv);
    }
    pc_status st = PC_OK;
    for (int64_t i = 0; i < (int64_t)n_kv && st == PC_OK; i++) {
        st = read_kv(c, g, i);
        g->n_kv = i + 1; /* close() frees str_pos of every kv touched */
        g->key_index[i] = (pc_gguf_ref){g->kvs[i].key.ptr, g->kvs[i].key.len, i};
        pos[i] = g->kvs[i].key_pos;
    }
    if (st == PC_OK) st = index_names(c, g->key_index, g->n_kv, pos, "kv", "key");
    free(pos);
    return st;
}

typedef struct tinfo_pos {
    size_t name;   /* name length field */
    size_t ne0;    /* ne[0] */
    size_t offset; /* offset field */
} tinfo_pos;

static pc_status read_dims(cursor *c, pc_gguf_tensor *t, tinfo_pos *p) {
    size_t at = c->pos;
    uint32_t n_dims;
    TRY(rd_u32(c, "n_dims", "", &n_dims));
    if (n_dims < 1 || n_dims > PC_GGUF_MAX_DIMS)
        return bad(c, at, "n_dims", "", "%" PRIu32 " is not in 1..%d", n_dims, PC_GGUF_MAX_DIMS);
    t->n_dims = (int)n_dims;
    p->ne0 = c->pos;
    int64_t n_elems = 1;
    for (int d = 0; d < PC_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        char f[16];
        uint64_t ne;
        snprintf(f, sizeof f, "ne[%" PRIu32 "]", d);
        at = c->pos;
        TRY(rd_u64(c, f, "", &ne));
        if (ne == 0 || ne > (uint64_t)INT64_MAX)
            return bad(c, at, f, "", "%" PRIu64 " is not a valid dimension (1 .. 2^63-1)", ne);
        if ((int64_t)ne > INT64_MAX / n_elems)
            return bad(c, at, f, "", "element count overflows: product of dims exceeds 2^63-1");
        n_elems *= (int64_t)ne;
        t->ne[d] = (int64_t)ne;
    }
    return PC_OK;
}

/* Type, block divisibility and byte size; the bytes' place in the file is checked later. */
static pc_status read_type(cursor *c, pc_gguf_tensor *t, const tinfo_pos *p) {
    size_t at = c->pos;
    uint32_t type;
    TRY(rd_u32(c, "type", "", &type));
    const pc_type_info *ti = pc_type_get(type);
    if (!ti) return bad(c, at, "type", "", "unknown tensor type %" PRIu32, type);
    t->type = (pc_type)type;
    if (t->ne[0] % ti->block_size != 0)
        return bad(c, p->ne0, "ne[0]", "", "%" PRId64 " is not a multiple of the %s block size %d", t->ne[0],
                   ti->name, ti->block_size);
    uint64_t bytes = (uint64_t)(t->ne[0] / ti->block_size);
    for (int d = 0; d < 4; d++) {
        uint64_t f = d == 0 ? ti->type_size : (uint64_t)t->ne[d];
        if (__builtin_mul_overflow(bytes, f, &bytes))
            return bad(c, p->ne0, "size", "", "byte size of %s tensor overflows", ti->name);
    }
    t->size = (size_t)bytes;
    return PC_OK;
}

static pc_status read_tensor_info(cursor *c, pc_gguf *g, int64_t i, tinfo_pos *p) {
    pc_gguf_tensor *t = &g->tensors[i];
    pc_gguf_str name;
    set_ctx(c, "tensor", i);
    p->name = c->pos;
    TRY(rd_str(c, "name", &name));
    if (memchr(name.ptr, 0, (size_t)name.len)) return bad(c, p->name + 8, "name", "", "contains a NUL byte");
    t->name = malloc((size_t)name.len + 1);
    if (!t->name) return pc_fail(c->err, PC_ERR_NOMEM, "%s: %s: no memory for the name", c->name, c->ctx);
    memcpy(t->name, name.ptr, (size_t)name.len);
    t->name[name.len] = '\0';
    g->tensor_index[i] = (pc_gguf_ref){t->name, name.len, i};
    set_ctx_named(c, "tensor", name);
    TRY(read_dims(c, t, p));
    TRY(read_type(c, t, p));
    p->offset = c->pos;
    TRY(rd_u64(c, "offset", "", &t->offset));
    if (t->offset % g->alignment != 0)
        return bad(c, p->offset, "offset", "", "%" PRIu64 " is not a multiple of the alignment %zu", t->offset,
                   g->alignment);
    return PC_OK;
}

/* Places every tensor's bytes: data section start + offset + size must end inside the file. */
static pc_status place_tensors(cursor *c, pc_gguf *g, const tinfo_pos *p) {
    uint64_t pad = (g->alignment - c->pos % g->alignment) % g->alignment;
    g->data_pos = c->pos + (size_t)pad; /* pos <= size and pad < 2^32: no overflow */
    for (int64_t i = 0; i < g->n_tensors; i++) {
        pc_gguf_tensor *t = &g->tensors[i];
        pc_gguf_str name = {t->name, strlen(t->name)};
        uint64_t room = g->data_pos <= c->size ? c->size - g->data_pos : 0;
        if (t->offset > room || t->size > room - t->offset) {
            set_ctx_named(c, "tensor", name);
            return bad(c, p[i].offset, "offset", "",
                       "%zu bytes at data offset %" PRIu64 " run past the end of the file (data section at %zu, "
                       "file %zu bytes)",
                       t->size, t->offset, g->data_pos, c->size);
        }
        t->data = c->base + g->data_pos + t->offset;
    }
    return PC_OK;
}

static pc_status read_tensors(cursor *c, pc_gguf *g, uint64_t n_tensors) {
    g->tensors = calloc((size_t)n_tensors + 1, sizeof *g->tensors);
    g->tensor_index = calloc((size_t)n_tensors + 1, sizeof *g->tensor_index);
    tinfo_pos *p = calloc((size_t)n_tensors + 1, sizeof *p);
    size_t *name_pos = calloc((size_t)n_tensors + 1, sizeof *name_pos);
    pc_status st = PC_OK;
    if (!g->tensors || !g->tensor_index || !p || !name_pos)
        st = pc_fail(c->err, PC_ERR_NOMEM, "%s: no memory for %" PRIu64 " tensors", c->name, n_tensors);
    for (int64_t i = 0; i < (int64_t)n_tensors && st == PC_OK; i++) {
        g->n_tensors = i + 1; /* close() frees the names read so far */
        st = read_tensor_info(c, g, i, &p[i]);
        name_pos[i] = p[i].name;
    }
    if (st == PC_OK) st = place_tensors(c, g, p);
    if (st == PC_OK) st = index_names(c, g->tensor_index, g->n_tensors, name_pos, "tensor", "name");
    free(p);
    free(name_pos);
    return st;
}

static pc_status parse(pc_gguf *g, pc_error *err) {
    cursor c = {.base = g->base, .size = g->size, .pos = 0, .name = g->name, .ctx = "", .err = err};
    uint64_t n_tensors = 0, n_kv = 0;
    TRY(read_header(&c, g, &n_tensors, &n_kv));
    TRY(read_kvs(&c, g, n_kv));
    return read_tensors(&c, g, n_tensors);
}

static pc_status new_handle(const char *name, pc_gguf **out, pc_error *err) {
    pc_gguf *g = calloc(1, sizeof *g);
    if (g) g->name = strdup(name);
    if (!g || !g->name) {
        free(g);
        return pc_fail(err, PC_ERR_NOMEM, "%s: no memory for the GGUF handle", name);
    }
    g->alignment = PC_GGUF_DEFAULT_ALIGNMENT;
    *out = g;
    return PC_OK;
}

pc_status pc_gguf_open_memory(const void *data, size_t size, const char *name, pc_gguf **out, pc_error *err) {
    if (!out || (!data && size)) return pc_fail(err, PC_ERR_INVALID, "pc_gguf_open_memory: NULL argument");
    *out = NULL;
    pc_gguf *g = NULL;
    TRY(new_handle(name ? name : "<memory>", &g, err));
    g->base = data ? data : (const uint8_t *)"";
    g->size = size;
    pc_status st = parse(g, err);
    if (st != PC_OK) {
        pc_gguf_close(g);
        return st;
    }
    *out = g;
    return PC_OK;
}

static pc_status map_file(const char *path, void **map, size_t *size, pc_error *err) {
    int fd = -1;
    *map = NULL;
    pc_status st = pc_file_open_regular(path, 0, &fd, size, err);
    if (st != PC_OK) return st;
    if (*size > 0) {
        void *m = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) st = pc_fail(err, PC_ERR_IO, "%s: cannot map %zu bytes: %s", path, *size, strerror(errno));
        else *map = m;
    }
    close(fd);
    return st;
}

void pc_gguf_advise_unused(const pc_gguf *g, const void *p, size_t n) {
    if (!g || !g->map || !p) return;
    const uintptr_t lo = (uintptr_t)g->map, hi = lo + g->map_size, page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p, b = a + n;
    if (a < lo || b > hi || b < a) return;
    a = (a + page - 1) & ~(page - 1); /* whole pages inside the range only: a neighbour may still be in use */
    b &= ~(page - 1);
    if (b > a) (void)madvise((void *)a, b - a, MADV_DONTNEED); /* a private read-only file mapping: pages come back from the file */
}

pc_status pc_gguf_open(const char *path, pc_gguf **out, pc_error *err) {
    if (!path || !out) return pc_fail(err, PC_ERR_INVALID, "pc_gguf_open: NULL argument");
    *out = NULL;
    void *map = NULL;
    size_t size = 0;
    TRY(map_file(path, &map, &size, err));
    pc_gguf *g = NULL;
    pc_status st = new_handle(path, &g, err);
    if (st != PC_OK) {
        if (map) munmap(map, size);
        return st;
    }
    g->map = map;
    g->map_size = size;
    g->base = map ? map : (const uint8_t *)"";
    g->size = size;
    st = parse(g, err);
    if (st != PC_OK) {
        pc_gguf_close(g);
        return st;
    }
    *out = g;
    return PC_OK;
}

void pc_gguf_close(pc_gguf *g) {
    if (!g) return;
    for (int64_t i = 0; g->kvs && i < g->n_kv; i++) free(g->kvs[i].str_pos);
    for (int64_t i = 0; g->tensors && i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kvs);
    free(g->key_index);
    free(g->tensors);
    free(g->tensor_index);
    if (g->map) munmap(g->map, g->map_size);
    free(g->name);
    free(g);
}
