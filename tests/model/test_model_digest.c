/* test_model_digest.c - the model fingerprint that names a model in store keys.
 *
 * Tiny seeded models written by the project's GGUF writer: the same weights
 * written twice give the same digest (on one thread and on a pool of four);
 * another seed, or one flipped byte in the last tensor's data, gives another;
 * a different hyper-parameter with the same weights gives another. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
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
    pc_pool_free(pool);
    unlink(a), unlink(b), unlink(c), unlink(d);
    free(a), free(b), free(c), free(d);
    return check_report();
}
