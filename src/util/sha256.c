/* sha256.c - SHA-256 through libcrypto's EVP interface (uses SHA-NI where the CPU has it). */
#include "util/sha256.h"

#include <openssl/evp.h>
#include <string.h>

void pc_sha256_init(pc_sha256 *h) {
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    h->ctx = c;
    h->failed = !c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1;
}

void pc_sha256_update(pc_sha256 *h, const void *data, size_t len) {
    if (!h->failed && len && EVP_DigestUpdate(h->ctx, data, len) != 1) h->failed = 1;
}

int pc_sha256_final(pc_sha256 *h, uint8_t out[PC_SHA256_BYTES]) {
    unsigned n = 0;
    int ok = !h->failed && EVP_DigestFinal_ex(h->ctx, out, &n) == 1 && n == PC_SHA256_BYTES;
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
    return ok ? 0 : -1;
}

void pc_sha256_u64(pc_sha256 *h, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    pc_sha256_update(h, b, sizeof b);
}

void pc_sha256_field(pc_sha256 *h, const void *data, size_t len) {
    pc_sha256_u64(h, len);
    pc_sha256_update(h, data, len);
}

int pc_sha256_digest(const void *data, size_t len, uint8_t out[PC_SHA256_BYTES]) {
    pc_sha256 h;
    pc_sha256_init(&h);
    pc_sha256_update(&h, data, len);
    return pc_sha256_final(&h, out);
}

void pc_hex(const uint8_t *b, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int nibble(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int pc_unhex(const char *s, size_t n, uint8_t *out) {
    for (size_t i = 0; i < n; i++) {
        int hi = nibble(s[2 * i]), lo = hi < 0 ? -1 : nibble(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}
