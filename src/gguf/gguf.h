/* gguf.h - reading (mmap'd, fully validated) and writing GGUF files, versions 2 and 3.
 *
 * File format (little-endian):
 *   magic "GGUF" (u32 0x46554747), version u32, n_tensors u64, n_kv u64
 *   n_kv x { key: gguf string, value_type u32, value }
 *   n_tensors x { name: gguf string, n_dims u32, ne[n_dims] u64, type u32, offset u64 }
 *   padding to `general.alignment` (default 32), then the tensor data section;
 *   each tensor's data starts at data_section + offset (offset aligned).
 *   gguf string = u64 length + bytes (no terminator).
 *   array value = elem_type u32, count u64, elements.
 * (Version 1 used u32 counts and lengths; it is refused.)
 *
 * Invariants of an opened pc_gguf: every offset, length and count has been
 * checked against the file size with overflow-safe arithmetic; every tensor's
 * bytes lie inside the file; every string is reachable through the index, so
 * the getters below never read outside the mapping. */
#ifndef PC_GGUF_H
#define PC_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pcache.h"
#include "tensor/types.h"

typedef enum pc_gguf_vtype {
    PC_GGUF_UINT8 = 0,
    PC_GGUF_INT8 = 1,
    PC_GGUF_UINT16 = 2,
    PC_GGUF_INT16 = 3,
    PC_GGUF_UINT32 = 4,
    PC_GGUF_INT32 = 5,
    PC_GGUF_FLOAT32 = 6,
    PC_GGUF_BOOL = 7,
    PC_GGUF_STRING = 8,
    PC_GGUF_ARRAY = 9,
    PC_GGUF_UINT64 = 10,
    PC_GGUF_INT64 = 11,
    PC_GGUF_FLOAT64 = 12,
} pc_gguf_vtype;

#define PC_GGUF_MAX_DIMS 4

/* A string inside the mapping: NOT NUL-terminated. */
typedef struct pc_gguf_str {
    const char *ptr;
    uint64_t len;
} pc_gguf_str;

typedef struct pc_gguf_tensor {
    char *name;                     /* NUL-terminated copy, owned by the pc_gguf */
    pc_type type;
    int n_dims;
    int64_t ne[PC_GGUF_MAX_DIMS];   /* ne[0] is the contiguous (row) dimension; unused dims are 1 */
    uint64_t offset;                /* relative to the data section */
    const void *data;               /* inside the mapping */
    size_t size;                    /* bytes */
} pc_gguf_tensor;

typedef struct pc_gguf pc_gguf;

/* Maps and validates path. On failure returns an error whose message names the
 * file, the field and its byte offset. Close with pc_gguf_close. */
pc_status pc_gguf_open(const char *path, pc_gguf **out, pc_error *err);
/* Same over a caller-owned buffer that must outlive the handle (fuzzing, tests).
 * name is used in error messages. */
pc_status pc_gguf_open_memory(const void *data, size_t size, const char *name, pc_gguf **out, pc_error *err);
void pc_gguf_close(pc_gguf *g);
/* Hints that bytes [p, p + n) of g's mapped file will not be read for a while:
 * their pages leave the process's resident set and are read from the file again
 * if touched. The bytes stay valid. A no-op for a GGUF read from memory and for
 * a range outside the mapping. */
void pc_gguf_advise_unused(const pc_gguf *g, const void *p, size_t n);

uint32_t pc_gguf_version(const pc_gguf *g);
const char *pc_gguf_path(const pc_gguf *g);
size_t pc_gguf_alignment(const pc_gguf *g);

/* Key-value metadata. Index lookups return -1 when the key is absent. */
int64_t pc_gguf_kv_count(const pc_gguf *g);
int64_t pc_gguf_find_key(const pc_gguf *g, const char *key);
pc_gguf_str pc_gguf_key_at(const pc_gguf *g, int64_t i);
pc_gguf_vtype pc_gguf_kv_type(const pc_gguf *g, int64_t i); /* (pc_gguf_vtype)-1 if i is out of range */

/* Typed getters by key. Integer getters accept any integer value type whose
 * value fits (else PC_ERR_RANGE); float getters accept FLOAT32/FLOAT64.
 * Absent key: PC_ERR_NOT_FOUND. Wrong type: PC_ERR_FORMAT naming key and types. */
pc_status pc_gguf_get_u32(const pc_gguf *g, const char *key, uint32_t *out, pc_error *err);
pc_status pc_gguf_get_i64(const pc_gguf *g, const char *key, int64_t *out, pc_error *err);
pc_status pc_gguf_get_f32(const pc_gguf *g, const char *key, float *out, pc_error *err);
pc_status pc_gguf_get_bool(const pc_gguf *g, const char *key, bool *out, pc_error *err);
pc_status pc_gguf_get_str(const pc_gguf *g, const char *key, pc_gguf_str *out, pc_error *err);

/* Arrays: element type and count. Numeric elements are packed in the file:
 * pc_gguf_arr_data gives a pointer to count elements (may be unaligned: read
 * with memcpy); it is NULL for absent keys, non-arrays and arrays of strings
 * or arrays. String elements: pc_gguf_arr_str, O(1) by index. Arrays of arrays
 * are validated at open (nesting up to 8 levels) and report elem_type ARRAY,
 * but their elements are not reachable through this API. */
pc_status pc_gguf_get_arr(const pc_gguf *g, const char *key, pc_gguf_vtype *elem_type, uint64_t *count,
                          pc_error *err);
const void *pc_gguf_arr_data(const pc_gguf *g, const char *key);
pc_gguf_str pc_gguf_arr_str(const pc_gguf *g, const char *key, uint64_t i); /* {NULL,0} if out of range */

/* Tensors. */
int64_t pc_gguf_tensor_count(const pc_gguf *g);
const pc_gguf_tensor *pc_gguf_tensor_at(const pc_gguf *g, int64_t i);
const pc_gguf_tensor *pc_gguf_find_tensor(const pc_gguf *g, const char *name); /* NULL if absent */

/* ---- Writer (tests use it to make tiny seeded models) ---- */
typedef struct pc_gguf_writer pc_gguf_writer;

pc_gguf_writer *pc_gguf_writer_create(void); /* version 3, alignment 32 */
void pc_gguf_writer_free(pc_gguf_writer *w);
/* Each add copies its inputs. They return PC_ERR_INVALID on duplicate keys or names. */
pc_status pc_gguf_writer_set_u32(pc_gguf_writer *w, const char *key, uint32_t v);
pc_status pc_gguf_writer_set_i32(pc_gguf_writer *w, const char *key, int32_t v);
pc_status pc_gguf_writer_set_u64(pc_gguf_writer *w, const char *key, uint64_t v);
pc_status pc_gguf_writer_set_f32(pc_gguf_writer *w, const char *key, float v);
pc_status pc_gguf_writer_set_bool(pc_gguf_writer *w, const char *key, bool v);
pc_status pc_gguf_writer_set_str(pc_gguf_writer *w, const char *key, const char *v);
/* Numeric array of count elements of elem_type, packed little-endian. */
pc_status pc_gguf_writer_set_arr(pc_gguf_writer *w, const char *key, pc_gguf_vtype elem_type, const void *data,
                                 uint64_t count);
pc_status pc_gguf_writer_set_arr_str(pc_gguf_writer *w, const char *key, const char *const *strs, uint64_t count);
/* data holds pc_row_size(type, ne[0]) * ne[1] * ... bytes. */
pc_status pc_gguf_writer_add_tensor(pc_gguf_writer *w, const char *name, pc_type type, int n_dims, const int64_t *ne,
                                    const void *data);
pc_status pc_gguf_writer_write(const pc_gguf_writer *w, const char *path, pc_error *err);
/* Serializes to a malloc'd buffer the caller frees with pc_free. */
pc_status pc_gguf_writer_to_memory(const pc_gguf_writer *w, void **out, size_t *size, pc_error *err);

#endif
