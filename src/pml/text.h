/* text.h - UTF-8 helpers and the prototype's whitespace rule for PML text.
 *
 * All functions work on byte ranges that need not be NUL terminated and
 * never read outside them; malformed UTF-8 is treated byte by byte. */
#ifndef PC_PML_TEXT_H
#define PC_PML_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length in bytes of the whitespace code point (Python's str \s) starting at
 * s[0..n), or 0 when s does not start with one. */
size_t pc_pml_space_len(const char *s, size_t n);

/* Length of the whitespace run ending at s + n (scanning backwards). */
size_t pc_pml_space_suffix_len(const char *s, size_t n);

/* True when s[0..n) is only whitespace (or empty). */
bool pc_pml_all_space(const char *s, size_t n);

/* The prototype's compact_surrounding_spaces(): a leading and a trailing run
 * of whitespace each become one space. Writes at most n bytes to out (which
 * may not alias s) and returns the length written. */
size_t pc_pml_compact(const char *s, size_t n, char *out);

/* pc_pml_compact where a side may instead lose its whitespace run entirely:
 * where text meets a chat marker, which brings its own newlines. A piece
 * that is only whitespace becomes " " when both sides keep a space, else "". */
size_t pc_pml_compact_sides(const char *s, size_t n, bool lead_space, bool trail_space, char *out);

/* The code point at s[0..n) (n >= 1) and its length in *len; *len = 0 when
 * s does not start with well-formed UTF-8 (overlong, surrogate, truncated). */
uint32_t pc_pml_utf8_decode(const unsigned char *s, size_t n, size_t *len);

/* Number of code points in s[0..n) (continuation bytes do not count). */
size_t pc_pml_utf8_count(const char *s, size_t n);

/* True when s[0..n) is well-formed UTF-8 without NUL bytes; else *bad_off is
 * the offset of the first bad byte. */
bool pc_pml_utf8_valid(const char *s, size_t n, size_t *bad_off);

#endif
