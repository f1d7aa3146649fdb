/* unicode.h - codepoint classes for pre-tokenizer splitting.
 *
 * Flags follow llama.cpp's grouping of Unicode general categories (one
 * category bit per codepoint) plus the White_Space property. The tables are
 * generated (tools/gen_unicode_tables.py) into unicode_tables.c. */
#ifndef PC_TOKENIZER_UNICODE_H
#define PC_TOKENIZER_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#define PC_UNI_UNDEFINED 0x0001u   /* Cn: unassigned */
#define PC_UNI_NUMBER 0x0002u      /* \p{N} */
#define PC_UNI_LETTER 0x0004u      /* \p{L} */
#define PC_UNI_SEPARATOR 0x0008u   /* \p{Z} */
#define PC_UNI_MARK 0x0010u        /* \p{M} */
#define PC_UNI_PUNCT 0x0020u       /* \p{P} */
#define PC_UNI_SYMBOL 0x0040u      /* \p{S} */
#define PC_UNI_CONTROL 0x0080u     /* \p{C} except Cn */
#define PC_UNI_WHITESPACE 0x0100u  /* \s (White_Space) */

#define PC_UNI_MAX_CP 0x110000u

typedef struct pc_unicode_range {
    uint32_t start; /* first codepoint of the range; it runs to the next entry's start */
    uint16_t flags;
} pc_unicode_range;

extern const pc_unicode_range pc_unicode_ranges[];
extern const size_t pc_unicode_ranges_count;
extern const char pc_unicode_version[];

/* Flags of cp; 0 (no class at all) for cp >= 0x110000. */
uint16_t pc_unicode_flags(uint32_t cp);

#endif
