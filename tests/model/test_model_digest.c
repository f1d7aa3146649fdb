/* test_model_digest.c - the model fingerprint that names a model in store keys.
 *
 * Tiny seeded models written by the project's GGUF writer: the same weights
 * written twice give the same digest (on one thread and on a pool of four);
 * another seed, or one flipped byte in the last tensor's data, gives another;
 * a different hyper-parameter with the same weights gives another.
 *
 * On the default real model (when present): the fingerprint keeps the value
 * recorded before its pages were released after hashing (disk cache folders and
 * store keys depend on it), and after load + fingerprint the model file's
 * mapping holds at most the pages that packing keeps (the embedding table,
 * norms, headers) plus a few chunk-edge pages: hashing no longer leaves the
 * whole file resident beside its packed copy. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "kernels/cpu/quant.h"
#include "model/model.h"
#include "tiny_model.h"

static int digest_of(const char *path, pc_pool *pool, uint8_t out[32]) {
    pc_gguf *g = NULL;
    pc_model *m = NULL;
    pc_error err = {0};
    if (pc_gguf_open(path, &g, &err) != PC_OK || pc_model_load(g, &m, &err) != PC_OK) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return -1;
    }
    pc_status st = pc_model_digest(m, pool, out, &err);
    pc_model_free(m);
    return st == PC_OK ? 0 : -1;
}

/* Resident KiB of this process's mappings of path, from /proc/self/smaps; -1 if unknown. */
static long mapping_rss_kib(const char *path) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[4096];
    long rss = -1;
    int in = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, ' ')) {
            const char *nl = strchr(line, '\n');
            size_t n = strlen(path);
            in = nl && (size_t)(nl - line) >= n && memcmp(nl - n, path, n) == 0;
        } else if (in && strncmp(line, "Rss:", 4) == 0) {
            rss = (rss < 0 ? 0 : rss) + strtol(line + 4, NULL, 10);
        }
    }
    fclose(f);
    return rss;
}

/* The real default model: the pinned fingerprint and the resident pages left after it. */
static void check_real_model(pc_pool *pool) {
    if (access(PC_MODEL_PATH, R_OK) != 0) {
        printf("model %s absent: real-model checks skipped\n", PC_MODEL_PATH);
        return;
    }
    pc_gguf *g = NULL;
    pc_model *m = NULL;
    pc_error err = {0};
    CHECK(pc_gguf_open(PC_MODEL_PATH, &g, &err) == PC_OK && pc_model_load(g, &m, &err) == PC_OK);
    if (!m) return;
    uint8_t d[32];
    CHECK(pc_model_digest(m, pool, d, &err) == PC_OK);
    char hex[65];
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    CHECK_MSG(strcmp(hex, "c54e24455619e7605d9bfcfac2eb68ccfabb9d57add8629c96bd155dd14452f6") == 0,
              "the SmolLM2 fingerprint changed (%s): every cached module would be orphaned", hex);
    size_t kept = 0, n_tensors = (size_t)pc_gguf_tensor_count(m->gguf);
    for (int64_t i = 0; i < pc_gguf_tensor_count(m->gguf); i++) {
        const pc_gguf_tensor *t = pc_gguf_tensor_at(m->gguf, i);
        if (!pc_model_pages_released(m, t->data)) kept += t->size;
    }
    char *real = realpath(PC_MODEL_PATH, NULL); /* smaps names the file, not a link to it (models/ is one) */
    const long rss = real ? mapping_rss_kib(real) : -1;
    free(real);
    if (pc_isa_detect() < PC_ISA_AVX2 || rss < 0) {
        printf("no packing on this CPU or no smaps: resident-pages check skipped\n");
    } else {
        /* headers and tensor table (< 1 MiB here), two edge pages per tensor and per 16 MiB chunk */
        const long bound = (long)(kept >> 10) + 1024 + (long)n_tensors * 8 + 64 * 8;
        printf("model mapping resident after load + fingerprint: %ld KiB (kept tensors %zu KiB, bound %ld KiB)\n", rss,
               kept >> 10, bound);
        CHECK_MSG(rss <= bound, "%ld KiB of the model file resident after fingerprinting, more than %ld KiB", rss, bound);
    }
    pc_model_free(m);
}

int main(void) {
    tiny_spec sp = tiny_default();
    char *a = tiny_model_write(&sp), *b = tiny_model_write(&sp);
    sp.seed = 43;
    char *c = tiny_model_write(&sp);
    sp.seed = 42;
    sp.rope_theta = 500000.0f;
    char *d = tiny_model_write(&sp);
    CHECK(a && b && c && d);
    pc_pool *pool = pc_pool_create(4);
    uint8_t da[32], da4[32], db[32], dc[32], dd[32], de[32];
    CHECK(digest_of(a, NULL, da) == 0 && digest_of(a, pool, da4) == 0 && digest_of(b, pool, db) == 0);
    CHECK(digest_of(c, pool, dc) == 0 && digest_of(d, pool, dd) == 0);
    CHECK_MSG(memcmp(da, da4, 32) == 0, "the digest depends on the thread count");
    CHECK_MSG(memcmp(da, db, 32) == 0, "the same model written twice digests differently");
    CHECK_MSG(memcmp(da, dc, 32) != 0, "other weights, same digest");
    CHECK_MSG(memcmp(da, dd, 32) != 0, "another RoPE base, same digest");
    /* one byte near the end of the file: inside the last tensor's data */
    int fd = open(b, O_RDWR);
    off_t end = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
    unsigned char x = 0;
    CHECK(fd >= 0 && pread(fd, &x, 1, end - 3) == 1);
    x ^= 0x01;
    CHECK(pwrite(fd, &x, 1, end - 3) == 1);
    close(fd);
    CHECK(digest_of(b, pool, de) == 0);
    CHECK_MSG(memcmp(da, de, 32) != 0, "a flipped weight byte, same digest");
    check_real_model(pool);
    pc_pool_free(pool);
    unlink(a), unlink(b), unlink(c), unlink(d);
    free(a), free(b), free(c), free(d);
    return check_report();
}
