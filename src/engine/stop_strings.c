/* stop_strings.c - finding stop strings in generated text, stream-safely.
 *
 * Text is bytes with a length (it may hold NULs); stop strings are
 * NUL-terminated, and empty or NULL ones are ignored (they would match
 * everywhere). When a stop string matches, the caller cuts the text there,
 * so nothing needs holding back: partial_keep is then 0. Otherwise it is the
 * longest suffix that could still grow into a stop string, which a streaming
 * caller must not emit yet. */
#include <string.h>

#include "engine/sampler.h"

static size_t longest_partial(const char *stop, size_t stop_len, const char *text, size_t len) {
    size_t k = stop_len - 1 < len ? stop_len - 1 : len; /* a proper prefix only */
    for (; k > 0; k--) {
        if (memcmp(text + len - k, stop, k) == 0) return k;
    }
    return 0;
}

long pc_stop_find(const pc_stop_set *s, const char *text, size_t len, size_t *partial_keep) {
    long hit = -1;
    size_t keep = 0;
    if (s && s->strs && text) {
        for (size_t i = 0; i < s->n && hit != 0; i++) {
            const char *stop = s->strs[i];
            size_t stop_len = stop ? strlen(stop) : 0;
            if (stop_len == 0) continue;
            /* a match starting before hit ends by hit - 1 + stop_len */
            size_t hay = len;
            if (hit > 0 && (size_t)hit - 1 + stop_len < len) hay = (size_t)hit - 1 + stop_len;
            const char *m = memmem(text, hay, stop, stop_len);
            if (m && (hit < 0 || m - text < hit)) hit = m - text;
        }
        for (size_t i = 0; hit < 0 && i < s->n; i++) {
            const char *stop = s->strs[i];
            size_t stop_len = stop ? strlen(stop) : 0;
            if (stop_len < 2) continue;
            size_t k = longest_partial(stop, stop_len, text, len);
            keep = k > keep ? k : keep;
        }
    }
    if (partial_keep) *partial_keep = keep;
    return hit;
}
