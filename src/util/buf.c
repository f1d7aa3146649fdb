/* buf.c - growable byte strings and arrays (see buf.h). */
#include "util/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *pc_array_grow(void *arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap && arr) return arr;
    if (elem == 0 || need > SIZE_MAX / elem) return NULL;
    size_t c = *cap ? *cap : 16;
    while (c < need) c = c > SIZE_MAX / 2 ? need : c * 2;
    if (c > SIZE_MAX / elem) c = need; /* doubling overflowed: take exactly what is needed */
    void *p = realloc(arr, c * elem);
    if (!p) return NULL;
    *cap = c;
    return p;
}

bool pc_buf_reserve(pc_buf *b, size_t more) {
    if (more > SIZE_MAX - 1 - b->len) return false;
    char *p = pc_array_reserve(b->data, &b->cap, b->len + more + 1, 1);
    if (!p) return false;
    if (!b->data) p[0] = '\0';
    b->data = p;
    return true;
}

bool pc_buf_append(pc_buf *b, const void *s, size_t n) {
    if (!pc_buf_reserve(b, n)) return false;
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

bool pc_buf_puts(pc_buf *b, const char *s) { return pc_buf_append(b, s, strlen(s)); }

bool pc_buf_printf(pc_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !pc_buf_reserve(b, (size_t)n)) return false;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

char *pc_buf_take(pc_buf *b) {
    if (!b->data && !pc_buf_reserve(b, 0)) return NULL;
    char *p = b->data;
    *b = (pc_buf){0};
    return p;
}

void pc_buf_free(pc_buf *b) {
    if (!b) return;
    free(b->data);
    *b = (pc_buf){0};
}
