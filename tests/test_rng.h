/* test_rng.h - the tests' seeded xorshift64*. The state lives with the caller,
 * never at file scope (no global mutable state), and each test keeps its own
 * seed and order of draws, so its inputs are the same on every run. */
#ifndef PC_TESTS_TEST_RNG_H
#define PC_TESTS_TEST_RNG_H

#include <stdint.h>

typedef struct test_rng {
    uint64_t s; /* nonzero */
} test_rng;

static inline uint64_t test_rng_next(test_rng *r) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ULL;
}

/* The high 32 bits: the low ones of xorshift64* are its weakest. */
static inline uint32_t test_rng_u32(test_rng *r) { return (uint32_t)(test_rng_next(r) >> 32); }

/* Uniform in [-1, 1), 24 bits: exact in a float. */
static inline float test_rng_float(test_rng *r) { return (float)(test_rng_next(r) >> 40) / (float)(1 << 23) - 1.f; }

#endif
