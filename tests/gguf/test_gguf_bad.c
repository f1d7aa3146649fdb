/* test_gguf_bad.c - malformed GGUF files: each must be refused with PC_ERR_FORMAT
 * (or PC_ERR_RANGE) and a message naming the file, the field and the byte offset.
 *
 * Files are laid out field by field with gguf_build.h; the offset a message must
 * name is the builder's position when it wrote the bad field. Every input is
 * copied into a buffer of exactly its size, so a read past the end trips ASan. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "gguf/gguf.h"
#include "gguf/gguf_build.h"

/* Opens b as a file called name; it must fail, and the message must contain each needle. */
static void expect_bad_(const gb *b, const char *name, const char *needle1, const char *needle2, int line) {
    uint8_t *copy = malloc(b->len ? b->len : 1);
    if (b->len) memcpy(copy, b->p, b->len);
    pc_gguf *g = NULL;
    pc_error err = {0};
    pc_status st = pc_gguf_open_memory(copy, b->len, name, &g, &err);
    if (getenv("PC_TEST_VERBOSE")) printf("%s\n", err.msg);
    CHECK_MSG(st == PC_ERR_FORMAT || st == PC_ERR_RANGE, "line %d: %s: status %d", line, name, st);
    CHECK_MSG(g == NULL, "line %d", line);
    CHECK_MSG(st == err.code, "line %d", line);
    CHECK_MSG(strncmp(err.msg, name, strlen(name)) == 0, "line %d: message does not start with the name: %s", line,
              err.msg);
    CHECK_MSG(strstr(err.msg, needle1) != NULL, "line %d: '%s' not in: %s", line, needle1, err.msg);
    if (needle2) CHECK_MSG(strstr(err.msg, needle2) != NULL, "line %d: '%s' not in: %s", line, needle2, err.msg);
    pc_gguf_close(g);
    free(copy);
}
#define expect_bad(b, name, n1, n2) expect_bad_((b), (name), (n1), (n2), __LINE__)

static void expect_ok(const gb *b, const char *name) {
    pc_gguf *g = NULL;
    pc_error err = {0};
    CHECK_MSG(pc_gguf_open_memory(b->p, b->len, name, &g, &err) == PC_OK, "%s", err.msg);
    pc_gguf_close(g);
}

static const char *at(size_t off) {
    static char buf[4][32]; /* test-process only: a few live strings per expect_bad call */
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "offset %zu:", off);
    return buf[k];
}

/* Positions of one tensor-info's fields, as written. */
typedef struct tpos {
    size_t name, n_dims, ne0, ne1, type, offset;
} tpos;

/* A file with one key-value and one tensor "t"; data_bytes of data after the aligned data section. */
static tpos one_tensor(gb *b, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t offset, size_t data_bytes) {
    tpos p = {0};
    gb_header(b, 3, 1, 1);
    gb_key(b, "general.architecture", 8);
    gb_str(b, "llama");
    p.name = b->len;
    gb_str(b, "t");
    p.n_dims = b->len;
    gb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) {
        if (d == 0) p.ne0 = b->len;
        if (d == 1) p.ne1 = b->len;
        gb_u64(b, ne[d]);
    }
    p.type = b->len;
    gb_u32(b, type);
    p.offset = b->len;
    gb_u64(b, offset);
    gb_pad(b, 32);
    gb_zeros(b, data_bytes);
    return p;
}

static void test_valid_baseline(void) {
    gb b = {0};
    uint64_t ne[2] = {32, 2};
    one_tensor(&b, 2, ne, PC_TYPE_F32, 0, 256);
    expect_ok(&b, "baseline");
    gb_free(&b);
}

static void test_header(void) {
    gb b = {0};
    gb_bytes(&b, "GGML", 4);
    gb_u32(&b, 3);
    gb_u64(&b, 0);
    gb_u64(&b, 0);
    expect_bad(&b, "magic.gguf", "offset 0: magic", "not a GGUF file");
    gb_free(&b);

    gb_header(&b, 1, 0, 0);
    expect_bad(&b, "v1.gguf", "offset 4: version", "version 1");
    gb_free(&b);
    gb_header(&b, 4, 0, 0);
    expect_bad(&b, "v4.gguf", "offset 4: version", "version 4");
    gb_free(&b);
    gb_header(&b, 0, 0, 0);
    expect_bad(&b, "v0.gguf", "offset 4: version", "version 0");
    gb_free(&b);
    gb_header(&b, 0x03000000u, 0, 0);
    expect_bad(&b, "be.gguf", "offset 4: version", "big-endian");
    gb_free(&b);

    gb_header(&b, 3, 1000, 0);
    gb_zeros(&b, 100);
    expect_bad(&b, "nt.gguf", "offset 8: n_tensors", "1000");
    gb_free(&b);
    gb_header(&b, 3, 0, UINT64_MAX);
    gb_zeros(&b, 100);
    expect_bad(&b, "nkv.gguf", "offset 16: n_kv", "18446744073709551615");
    gb_free(&b);
    gb_header(&b, 3, UINT64_MAX / 2, 1);
    expect_bad(&b, "nt2.gguf", "offset 8: n_tensors", NULL);
    gb_free(&b);

    /* more key-values promised than present */
    gb_header(&b, 3, 0, 2);
    gb_key(&b, "a", PC_GGUF_UINT32);
    gb_u32(&b, 1);
    gb_u64(&b, 5);
    gb_bytes(&b, "ab", 2);
    expect_bad(&b, "short.gguf", "offset 41: kv 1 key length", "5 bytes run past");
    gb_free(&b);
}

static void test_strings_and_values(void) {
    gb b = {0};
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, 1000); /* key length past the end */
    gb_bytes(&b, "abcd", 4);
    gb_zeros(&b, 16);
    expect_bad(&b, "keylen.gguf", "offset 24: kv 0 key length", "1000 bytes");
    gb_free(&b);

    gb_header(&b, 3, 0, 1);
    gb_key(&b, "name", PC_GGUF_STRING);
    size_t p = b.len;
    gb_u64(&b, UINT64_MAX); /* value length past the end, and an overflow trap */
    gb_zeros(&b, 16);
    expect_bad(&b, "strlen.gguf", "kv 'name' value length", at(p));
    gb_free(&b);

    gb_header(&b, 3, 0, 1);
    gb_key(&b, "weird", 13);
    gb_zeros(&b, 8);
    expect_bad(&b, "vtype.gguf", "kv 'weird' value type", "unknown value type 13");
    gb_free(&b);

    gb_header(&b, 3, 0, 1);
    p = b.len;
    gb_u64(&b, 3);
    gb_bytes(&b, "a\0b", 3);
    gb_u32(&b, PC_GGUF_UINT8);
    gb_u8(&b, 1);
    gb_zeros(&b, 12);
    expect_bad(&b, "nulkey.gguf", "kv 0 key", "NUL");
    gb_free(&b);

    /* truncated scalar value */
    gb_header(&b, 3, 0, 1);
    gb_key(&b, "x", PC_GGUF_UINT64);
    p = b.len;
    gb_u32(&b, 0); /* 4 of the 8 bytes */
    expect_bad(&b, "scalar.gguf", "kv 'x' value", at(p));
    gb_free(&b);
}

static void test_arrays(void) {
    gb b = {0};
    gb_header(&b, 3, 0, 1);
    gb_key(&b, "arr", PC_GGUF_ARRAY);
    gb_u32(&b, PC_GGUF_UINT32);
    size_t p = b.len;
    gb_u64(&b, 1ull << 62); /* count * 4 overflows 64 bits */
    gb_zeros(&b, 16);
    expect_bad(&b, "arrcount.gguf", "kv 'arr' value count", at(p));
    gb_free(&b);

    gb_header(&b, 3, 0, 1);
    gb_key(&b, "arr", PC_GGUF_ARRAY);
    p = b.len;
    gb_u32(&b, 42);
    gb_u64(&b, 0);
    expect_bad(&b, "arrtype.gguf", "kv 'arr' value element type", at(p));
    gb_free(&b);

    /* third string of a string array runs past the end */
    gb_header(&b, 3, 0, 1);
    gb_key(&b, "tokenizer.ggml.tokens", PC_GGUF_ARRAY);
    gb_u32(&b, PC_GGUF_STRING);
    gb_u64(&b, 3);
    gb_str(&b, "a");
    gb_str(&b, "bc");
    p = b.len;
    gb_u64(&b, 5);
    gb_bytes(&b, "xy", 2);
    expect_bad(&b, "strarr.gguf", "kv 'tokenizer.ggml.tokens' value[2] length", at(p));
    gb_free(&b);

    /* nested: [[1], [<count past end>]] */
    gb_header(&b, 3, 0, 1);
    gb_key(&b, "nest", PC_GGUF_ARRAY);
    gb_u32(&b, PC_GGUF_ARRAY);
    gb_u64(&b, 2);
    gb_u32(&b, PC_GGUF_UINT8);
    gb_u64(&b, 1);
    gb_u8(&b, 1);
    gb_u32(&b, PC_GGUF_UINT16);
    p = b.len;
    gb_u64(&b, 100);
    gb_zeros(&b, 3);
    expect_bad(&b, "nested.gguf", "kv 'nest' value[1] count", at(p));
    gb_free(&b);

    /* arrays nested beyond the depth limit */
    gb_header(&b, 3, 0, 1);
    gb_key(&b, "deep", PC_GGUF_ARRAY);
    for (int i = 0; i < 20; i++) {
        gb_u32(&b, PC_GGUF_ARRAY);
        gb_u64(&b, 1);
    }
    gb_u32(&b, PC_GGUF_UINT8);
    gb_u64(&b, 0);
    expect_bad(&b, "deep.gguf", "kv 'deep' value", "nested deeper");
    gb_free(&b);
}

static void test_keys_and_alignment(void) {
    gb b = {0};
    gb_header(&b, 3, 0, 3);
    gb_key(&b, "a", PC_GGUF_UINT32);
    gb_u32(&b, 1);
    gb_key(&b, "b", PC_GGUF_UINT32);
    gb_u32(&b, 2);
    size_t p = b.len;
    gb_key(&b, "a", PC_GGUF_STRING);
    gb_str(&b, "again");
    expect_bad(&b, "dupkey.gguf", "kv 'a' key", "duplicate");
    expect_bad(&b, "dupkey.gguf", at(p), NULL);
    gb_free(&b);

    static const uint32_t bad_align[] = {0, 3, 48, 0x80000001u};
    for (size_t i = 0; i < 4; i++) {
        gb_header(&b, 3, 0, 1);
        gb_key(&b, "general.alignment", PC_GGUF_UINT32);
        p = b.len;
        gb_u32(&b, bad_align[i]);
        expect_bad(&b, "align.gguf", "kv 'general.alignment' value", at(p));
        expect_bad(&b, "align.gguf", "power of two", NULL);
        gb_free(&b);
    }
    gb_header(&b, 3, 0, 1);
    p = b.len;
    gb_key(&b, "general.alignment", PC_GGUF_STRING);
    gb_str(&b, "32");
    expect_bad(&b, "aligntype.gguf", "kv 'general.alignment' value type", "uint32");
    gb_free(&b);
}

static void test_tensors(void) {
    gb b = {0};
    uint64_t ne[5] = {32, 2, 1, 1, 1};
    tpos p;

    p = one_tensor(&b, 1, ne, PC_TYPE_F32, 128, 128); /* 128 bytes of data, tensor wants [128, 256) */
    expect_bad(&b, "past.gguf", "tensor 't' offset", at(p.offset));
    gb_free(&b);
    p = one_tensor(&b, 1, ne, PC_TYPE_F32, UINT64_MAX - 31, 128);
    expect_bad(&b, "past2.gguf", "tensor 't' offset", at(p.offset));
    gb_free(&b);
    p = one_tensor(&b, 1, ne, PC_TYPE_F32, 0, 127); /* one byte short */
    expect_bad(&b, "short.gguf", "tensor 't' offset", "run past");
    gb_free(&b);
    p = one_tensor(&b, 1, ne, PC_TYPE_F32, 16, 256);
    expect_bad(&b, "misaligned.gguf", "tensor 't' offset", at(p.offset));
    gb_free(&b);

    p = one_tensor(&b, 1, ne, 99, 0, 256);
    expect_bad(&b, "type99.gguf", "tensor 't' type", at(p.type));
    gb_free(&b);
    p = one_tensor(&b, 1, ne, 4, 0, 256); /* 4 was Q4_2, long removed */
    expect_bad(&b, "type4.gguf", "tensor 't' type", "unknown tensor type 4");
    gb_free(&b);

    p = one_tensor(&b, 0, ne, PC_TYPE_F32, 0, 256);
    expect_bad(&b, "ndims0.gguf", "tensor 't' n_dims", at(p.n_dims));
    gb_free(&b);
    p = one_tensor(&b, 5, ne, PC_TYPE_F32, 0, 256);
    expect_bad(&b, "ndims5.gguf", "tensor 't' n_dims", at(p.n_dims));
    gb_free(&b);

    uint64_t big[2] = {1ull << 32, 1ull << 32};
    p = one_tensor(&b, 2, big, PC_TYPE_F32, 0, 256);
    expect_bad(&b, "overflow.gguf", "tensor 't' ne[1]", at(p.ne1));
    expect_bad(&b, "overflow.gguf", "overflow", NULL);
    gb_free(&b);
    uint64_t huge[1] = {1ull << 63};
    p = one_tensor(&b, 1, huge, PC_TYPE_F32, 0, 256);
    expect_bad(&b, "huge.gguf", "tensor 't' ne[0]", at(p.ne0));
    gb_free(&b);
    /* elements fit in int64 but bytes (x 4) do not */
    uint64_t bytes_over[1] = {1ull << 62};
    p = one_tensor(&b, 1, bytes_over, PC_TYPE_F32, 0, 256);
    expect_bad(&b, "bytes.gguf", "tensor 't' size", "overflow");
    gb_free(&b);
    uint64_t zero[2] = {32, 0};
    p = one_tensor(&b, 2, zero, PC_TYPE_F32, 0, 256);
    expect_bad(&b, "zero.gguf", "tensor 't' ne[1]", at(p.ne1));
    gb_free(&b);
    uint64_t odd[1] = {33};
    p = one_tensor(&b, 1, odd, PC_TYPE_Q8_0, 0, 256);
    expect_bad(&b, "block.gguf", "tensor 't' ne[0]", "block size 32");
    gb_free(&b);

    /* two tensors named "t" */
    gb_header(&b, 3, 2, 0);
    for (int i = 0; i < 2; i++) {
        if (i == 1) p.name = b.len;
        gb_str(&b, "t");
        gb_u32(&b, 1);
        gb_u64(&b, 8);
        gb_u32(&b, PC_TYPE_F32);
        gb_u64(&b, (uint64_t)i * 32);
    }
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    expect_bad(&b, "duptensor.gguf", "tensor 't' name", "duplicate");
    expect_bad(&b, "duptensor.gguf", at(p.name), NULL);
    gb_free(&b);

    gb_header(&b, 3, 1, 0);
    p.name = b.len;
    gb_u64(&b, 2);
    gb_bytes(&b, "t\0", 2);
    gb_u32(&b, 1);
    gb_u64(&b, 8);
    gb_u32(&b, 0);
    gb_u64(&b, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 32);
    expect_bad(&b, "nulname.gguf", "tensor 0 name", "NUL");
    gb_free(&b);
}

/* Every proper prefix of a valid file (kvs of several kinds, two tensors) is refused. */
static void test_truncations(void) {
    pc_gguf_writer *w = pc_gguf_writer_create();
    const char *toks[3] = {"<s>", "", "hello"};
    const int32_t ints[3] = {1, -2, 3};
    uint8_t d[2 * 2 * 20 + 64] = {0};
    int64_t ne_a[2] = {64, 2}, ne_b[1] = {5};
    CHECK(pc_gguf_writer_set_str(w, "general.architecture", "llama") == PC_OK);
    CHECK(pc_gguf_writer_set_u32(w, "general.alignment", 32) == PC_OK);
    CHECK(pc_gguf_writer_set_f32(w, "x.eps", 1e-5f) == PC_OK);
    CHECK(pc_gguf_writer_set_bool(w, "x.flag", true) == PC_OK);
    CHECK(pc_gguf_writer_set_arr(w, "x.ints", PC_GGUF_INT32, ints, 3) == PC_OK);
    CHECK(pc_gguf_writer_set_arr_str(w, "x.toks", toks, 3) == PC_OK);
    CHECK(pc_gguf_writer_add_tensor(w, "a", PC_TYPE_Q4_1, 2, ne_a, d) == PC_OK);
    CHECK(pc_gguf_writer_add_tensor(w, "b", PC_TYPE_F16, 1, ne_b, d) == PC_OK);
    void *buf;
    size_t size;
    CHECK(pc_gguf_writer_to_memory(w, &buf, &size, NULL) == PC_OK);
    gb b = {0};
    gb_bytes(&b, buf, size);
    expect_ok(&b, "full");
    int fails = 0;
    for (size_t n = 0; n < size; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, buf, n);
        pc_gguf *g = NULL;
        pc_error err = {0};
        pc_status st = pc_gguf_open_memory(copy, n, "trunc.gguf", &g, &err);
        /* the offset named is where the reader stood: inside the prefix (or at its end) */
        unsigned long long off = ~0ull;
        bool ok = (st == PC_ERR_FORMAT || st == PC_ERR_RANGE) && g == NULL &&
                  sscanf(err.msg, "trunc.gguf: offset %llu:", &off) == 1 && off <= n;
        if (!ok && fails++ < 5) fprintf(stderr, "prefix %zu: status %d: %s\n", n, st, err.msg);
        pc_gguf_close(g);
        free(copy);
    }
    CHECK_MSG(fails == 0, "%d of %zu prefixes misreported", fails, size);
    gb_free(&b);
    pc_free(buf);
    pc_gguf_writer_free(w);
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "test_gguf_bad: opening a FIFO blocked (hang)\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(1);
}

static void test_files(void) {
    pc_gguf *g = NULL;
    pc_error err = {0};
    CHECK(pc_gguf_open("/nonexistent/dir/model.gguf", &g, &err) == PC_ERR_NOT_FOUND && g == NULL);
    CHECK_MSG(strstr(err.msg, "/nonexistent/dir/model.gguf") != NULL, "%s", err.msg);
    CHECK(pc_gguf_open("/tmp", &g, &err) == PC_ERR_INVALID && g == NULL);
    CHECK_MSG(strstr(err.msg, "/tmp: is a directory"), "%s", err.msg);
    /* a named pipe is refused at once, not waited on (alarm() turns a hang into a failure) */
    char fifo[] = "/tmp/pc_test_gguf_fifo_XXXXXX";
    int ffd = mkstemp(fifo);
    if (ffd >= 0) close(ffd), unlink(fifo);
    CHECK(ffd >= 0 && mkfifo(fifo, 0600) == 0);
    signal(SIGALRM, on_alarm);
    alarm(10);
    CHECK(pc_gguf_open(fifo, &g, &err) == PC_ERR_INVALID && g == NULL);
    alarm(0);
    CHECK_MSG(strstr(err.msg, "is a FIFO"), "%s", err.msg);
    unlink(fifo);

    char path[] = "/tmp/pc_test_gguf_bad_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd); /* an empty file */
    CHECK(pc_gguf_open(path, &g, &err) == PC_ERR_FORMAT && g == NULL);
    CHECK_MSG(strstr(err.msg, path) && strstr(err.msg, "offset 0: magic"), "%s", err.msg);
    FILE *f = fopen(path, "wb");
    gb b = {0};
    gb_header(&b, 1, 0, 0);
    fwrite(b.p, 1, b.len, f);
    fclose(f);
    CHECK(pc_gguf_open(path, &g, &err) == PC_ERR_FORMAT && g == NULL);
    CHECK_MSG(strstr(err.msg, path) && strstr(err.msg, "offset 4: version"), "%s", err.msg);
    gb_free(&b);
    unlink(path);
    CHECK(pc_gguf_open_memory(NULL, 0, NULL, &g, &err) == PC_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "<memory>: offset 0: magic") != NULL, "%s", err.msg);
}

int main(void) {
    test_valid_baseline();
    test_header();
    test_strings_and_values();
    test_arrays();
    test_keys_and_alignment();
    test_tensors();
    test_truncations();
    test_files();
    return check_report();
}
