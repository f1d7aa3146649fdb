/* test_kv_span.c - copying the head of a span (what the prefix cache seeds a
 * request with): the first m tokens' positions, keys (transposed blocks, a
 * partial last block lane by lane) and values arrive bit for bit, key lanes
 * past m stay zero, and every misuse is refused with the destination left
 * empty. Hand-computed: each element's value names its layer, token and
 * dimension. */
#include <stdint.h>

#include "check.h"
#include "kv/kv.h"

enum { L = 3, D = 5 };

static pc_f16 val(int32_t layer, int32_t tok, int32_t d, int which) {
    return (pc_f16)(1 + which * 20000 + layer * 5000 + tok * 50 + d);
}

static pc_kv_span *filled(int32_t n) {
    pc_kv_span *s = pc_kv_span_create(L, D, n);
    for (int32_t t = 0; t < n; t++) {
        s->pos[t] = 100 + t;
        for (int32_t l = 0; l < L; l++)
            for (int32_t d = 0; d < D; d++) {
                *pc_kv_k_at(s, l, t, d) = val(l, t, d, 0);
                pc_kv_v(s, l, t)[d] = val(l, t, d, 1);
            }
    }
    s->n = n;
    return s;
}

static void check_copy(int32_t m) {
    pc_kv_span *src = filled(29), *dst = pc_kv_span_create(L, D, 40);
    pc_error err = {0};
    CHECK_MSG(pc_kv_span_copy_head(dst, src, m, &err) == PC_OK, "m=%d: %s", m, err.msg);
    CHECK_EQ_INT(dst->n, m);
    int bad = 0;
    for (int32_t t = 0; t < 40; t++)
        for (int32_t l = 0; l < L; l++)
            for (int32_t d = 0; d < D; d++) {
                const pc_f16 k = *pc_kv_k_at(dst, l, t, d);
                if (t < m) bad += k != val(l, t, d, 0) || pc_kv_v(dst, l, t)[d] != val(l, t, d, 1) || dst->pos[t] != 100 + t;
                else if (t < (m + 7) / 8 * 8) bad += k != 0; /* the last block's lanes past m */
            }
    CHECK_MSG(bad == 0, "m=%d: %d elements differ", m, bad);
    pc_kv_span_release(src);
    pc_kv_span_release(dst);
}

static void check_refused(void) {
    pc_kv_span *src = filled(12), *dst = pc_kv_span_create(L, D, 8), *other = pc_kv_span_create(L, D + 1, 16);
    pc_error err = {0};
    CHECK(pc_kv_span_copy_head(dst, src, 13, &err) == PC_ERR_RANGE); /* more than src holds */
    CHECK(pc_kv_span_copy_head(dst, src, 12, &err) == PC_ERR_RANGE); /* more than dst has room for */
    CHECK(pc_kv_span_copy_head(dst, src, -1, &err) == PC_ERR_RANGE);
    CHECK(pc_kv_span_copy_head(other, src, 4, &err) == PC_ERR_INVALID); /* shapes differ */
    CHECK_EQ_INT(dst->n, 0);
    CHECK(pc_kv_span_copy_head(dst, src, 4, &err) == PC_OK);
    CHECK(pc_kv_span_copy_head(dst, src, 4, &err) == PC_ERR_INVALID); /* not empty any more */
    pc_kv_span *frozen = pc_kv_span_create(L, D, 16);
    pc_kv_span_freeze(frozen);
    CHECK(pc_kv_span_copy_head(frozen, src, 4, &err) == PC_ERR_INVALID);
    CHECK_EQ_INT(frozen->n, 0);
    pc_kv_span_release(src);
    pc_kv_span_release(dst);
    pc_kv_span_release(other);
    pc_kv_span_release(frozen);
}

int main(void) {
    const int32_t ms[] = {0, 1, 7, 8, 9, 16, 21, 29};
    for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) check_copy(ms[i]);
    check_refused();
    return check_report();
}
