/* unicode.c - codepoint flag lookup over the generated range table.
 *
 * Invariant relied on: pc_unicode_ranges starts at 0 and is sorted by start,
 * so a binary search for the last start <= cp finds cp's range. */
#include "tokenizer/unicode.h"

uint16_t pc_unicode_flags(uint32_t cp) {
    if (cp >= PC_UNI_MAX_CP) return 0;
    size_t lo = 0, hi = pc_unicode_ranges_count; /* answer in [lo, hi) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (pc_unicode_ranges[mid].start <= cp) lo = mid;
        else hi = mid;
    }
    return pc_unicode_ranges[lo].flags;
}
