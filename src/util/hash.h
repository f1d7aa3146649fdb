/* hash.h - FNV-1a 64-bit hashing for fingerprints and hash tables (not cryptographic). */
#ifndef PC_UTIL_HASH_H
#define PC_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

#define PC_HASH64_INIT 0xcbf29ce484222325ULL

static inline uint64_t pc_hash64(uint64_t h, const void *data, size_t len) {
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

#endif
