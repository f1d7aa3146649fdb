/* sha256.h - SHA-256 (OpenSSL's libcrypto) for names that must be the same in
 * every process and on every machine: model fingerprints, schema digests,
 * store keys. Never seeded; never truncated where a collision would be served. */
#ifndef PC_UTIL_SHA256_H
#define PC_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define PC_SHA256_BYTES 32

typedef struct pc_sha256 {
    void *ctx; /* EVP_MD_CTX */
    int failed;
} pc_sha256;

/* Streaming use: init, update..., final. A failure inside libcrypto (out of
 * memory) makes final return -1; callers treat that as out of memory. */
void pc_sha256_init(pc_sha256 *h);
void pc_sha256_update(pc_sha256 *h, const void *data, size_t len);
int pc_sha256_final(pc_sha256 *h, uint8_t out[PC_SHA256_BYTES]);

/* Length-prefixed fields, so ("ab","c") and ("a","bc") hash differently. */
void pc_sha256_field(pc_sha256 *h, const void *data, size_t len);
void pc_sha256_u64(pc_sha256 *h, uint64_t v); /* little-endian, 8 bytes */

/* One-shot digest of a buffer; -1 on failure. */
int pc_sha256_digest(const void *data, size_t len, uint8_t out[PC_SHA256_BYTES]);

/* Lowercase hex of n bytes into out[2n + 1]. */
void pc_hex(const uint8_t *b, size_t n, char *out);
/* Parses exactly 2n hex digits; 0 on success, -1 otherwise. */
int pc_unhex(const char *s, size_t n, uint8_t *out);

#endif
