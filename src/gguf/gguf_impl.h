/* gguf_impl.h - the reader's private state, built by gguf_read.c and only read by gguf_meta.c.
 *
 * Invariants of an opened pc_gguf (gguf_read.c establishes them, the getters rely on them):
 *   1. base[0 .. size) is the whole file; every *_pos below is < size and the
 *      bytes it names (a value, a string, an array's elements) end at or before size.
 *   2. A top-level string array has str_pos[j] = position of element j's u64 length.
 *   3. key_index and tensor_index are sorted by pc_gguf_ref_cmp and hold no two
 *      equal names, so lookups are binary searches.
 * The host is little-endian (checked at compile time), so values are read with memcpy. */
#ifndef PC_GGUF_IMPL_H
#define PC_GGUF_IMPL_H

#include "gguf/gguf.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "GGUF values are read in place as little-endian");
_Static_assert(SIZE_MAX >= UINT64_MAX, "file sizes and tensor byte counts are held in size_t");

#define PC_GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian u32 */
#define PC_GGUF_DEFAULT_ALIGNMENT 32
#define PC_GGUF_ALIGNMENT_KEY "general.alignment"

typedef struct pc_gguf_kv {
    pc_gguf_str key;
    size_t key_pos;          /* file offset of the key's length field */
    pc_gguf_vtype type;
    size_t val_pos;          /* file offset of the value (just after its type) */
    pc_gguf_vtype elem_type; /* arrays only */
    uint64_t count;          /* arrays only: number of elements */
    size_t arr_pos;          /* arrays only: file offset of element 0 */
    uint64_t *str_pos;       /* string arrays only: count offsets, see invariant 2 */
} pc_gguf_kv;

/* A name (key or tensor name) with the index of its owner, for sorted lookup. */
typedef struct pc_gguf_ref {
    const char *ptr;
    uint64_t len;
    int64_t idx;
} pc_gguf_ref;

struct pc_gguf {
    const uint8_t *base; /* the file's bytes (mapping or caller buffer) */
    size_t size;
    void *map;           /* non-NULL when we own an mmap of map_size bytes */
    size_t map_size;
    char *name;          /* path or caller-given name, for messages */
    uint32_t version;
    size_t alignment;    /* power of two */
    size_t data_pos;     /* file offset of the data section */
    int64_t n_kv;
    pc_gguf_kv *kvs;          /* n_kv, file order */
    pc_gguf_ref *key_index;   /* n_kv, sorted */
    int64_t n_tensors;
    pc_gguf_tensor *tensors;  /* n_tensors, file order */
    pc_gguf_ref *tensor_index; /* n_tensors, sorted */
};

/* Orders by bytes (memcmp), then length, then idx: a total order where equal
 * names sit next to each other, earliest first. qsort comparator over pc_gguf_ref. */
int pc_gguf_ref_cmp(const void *a, const void *b);
/* Index in refs of the owner of name[0 .. len), or -1. */
int64_t pc_gguf_ref_find(const pc_gguf_ref *refs, int64_t n, const char *name, size_t len);
/* Size in bytes of one scalar of type t; 0 for STRING, ARRAY and unknown types. */
size_t pc_gguf_scalar_size(uint32_t t);
/* "uint32", "string", ...; "?" for unknown types. */
const char *pc_gguf_vtype_name(uint32_t t);

#endif
