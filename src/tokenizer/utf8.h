/* utf8.h - UTF-8 decoding and encoding with llama.cpp's leniency.
 *
 * Tokenization must turn invalid input into the same codepoints llama.cpp
 * does: a lead byte is trusted for the sequence length, continuation bytes are
 * checked, overlong forms and surrogates are accepted, and any byte that does
 * not start a well-formed sequence becomes U+FFFD and consumes one byte. */
#ifndef PC_TOKENIZER_UTF8_H
#define PC_TOKENIZER_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PC_UTF8_REPLACEMENT 0xFFFDu

/* Sequence length announced by a lead byte (1 for ASCII and stray bytes). */
size_t pc_utf8_seq_len(unsigned char lead);

/* Decodes one codepoint at s[*pos] (*pos < len) and advances *pos. */
uint32_t pc_utf8_decode_lenient(const char *s, size_t len, size_t *pos);

/* Decodes s[0..len) into a malloc'd array (*out, *n); false on allocation failure. */
bool pc_utf8_decode_all(const char *s, size_t len, uint32_t **out, size_t *n);

/* Writes cp (< 0x110000) as UTF-8 into out; returns 1..4. */
size_t pc_utf8_encode(uint32_t cp, char out[4]);

/* Length of the well-formed UTF-8 sequence at s (strict: no overlongs, no
 * surrogates, <= U+10FFFF): 1..4; 0 if s[0..avail) is a proper prefix of a
 * well-formed sequence (more bytes may complete it); -1 if it is invalid. */
int pc_utf8_strict_len(const unsigned char *s, size_t avail);

#endif
