/* test_buf.c - the growable buffer: appends of every size keep the bytes
 * and the NUL; a request whose size overflows fails and leaves the buffer or
 * array as it was. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "util/buf.h"

static void check_buf(void) {
    pc_buf b = {0};
    char *empty = pc_buf_take(&b);
    CHECK(empty && empty[0] == '\0');
    free(empty);
    for (int i = 0; i < 1000; i++) CHECK(pc_buf_append(&b, "ab", 2));
    CHECK_EQ_INT(b.len, 2000);
    CHECK(b.data[1999] == 'b' && b.data[2000] == '\0');
    CHECK(pc_buf_printf(&b, "<%d:%s>", 42, "x"));
    CHECK_STR(b.data + 2000, "<42:x>");
    CHECK(pc_buf_append(&b, "\0z", 2) && b.len == 2008 && b.data[2006] == '\0' && b.data[2007] == 'z');
    CHECK(!pc_buf_reserve(&b, SIZE_MAX - 4));
    CHECK_EQ_INT(b.len, 2008);
    char *s = pc_buf_take(&b);
    CHECK(s && s[0] == 'a' && b.data == NULL && b.len == 0 && b.cap == 0);
    free(s);
    pc_buf_free(&b);
    pc_buf_free(&b); /* twice is fine */

    size_t cap = 0;
    int32_t *v = pc_array_reserve(NULL, &cap, 3, sizeof *v);
    CHECK(v && cap >= 3);
    v[0] = 7;
    int32_t *w = pc_array_reserve(v, &cap, 100000, sizeof *v);
    CHECK(w && cap >= 100000 && w[0] == 7);
    v = w;
    size_t before = cap;
    CHECK(pc_array_reserve(v, &cap, SIZE_MAX / 2, sizeof *v) == NULL);
    CHECK(cap == before && v[0] == 7);
    free(v);
}

int main(void) {
    check_buf();
    return check_report();
}
