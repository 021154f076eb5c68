/* store/blake2b.h - BLAKE2b-256 of a whole buffer (see blake2b.c for why
 * the store has its own). */
#ifndef MFS_STORE_BLAKE2B_H
#define MFS_STORE_BLAKE2B_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MFS_BLAKE2B256_LEN 32

/* mfs_blake2b256: out = BLAKE2b(data[0..len), digest 32 bytes, no key), the
 * same bytes as libsodium's crypto_generichash(out, 32, data, len, NULL, 0).
 * data may be NULL when len is 0. Cannot fail; any thread. */
void mfs_blake2b256(uint8_t out[MFS_BLAKE2B256_LEN], const void *data,
                    size_t len);

/* mfs_blake2b256_many: out + 32 i = mfs_blake2b256(data[i], len[i]) for
 * every i < n, several at once on a CPU with SIMD lanes (blake2b.c). Same
 * bytes as one at a time. Cannot fail; any thread. */
void mfs_blake2b256_many(uint8_t *out, const uint8_t *const *data,
                         const size_t *len, size_t n);

/* The implementations, for tests and benchmarks. */
typedef enum {
    MFS_BLAKE2B_SCALAR,
    MFS_BLAKE2B_AVX2,
    MFS_BLAKE2B_AVX512,
    MFS_BLAKE2B_IMPLS
} mfs_blake2b_impl;

/* As mfs_blake2b256_many with impl; false (out untouched) when this CPU
 * does not have it. */
bool mfs_blake2b256_many_with(mfs_blake2b_impl impl, uint8_t *out,
                              const uint8_t *const *data, const size_t *len,
                              size_t n);
/* What mfs_blake2b256_many uses here; its name. */
mfs_blake2b_impl mfs_blake2b_best(void);
const char *mfs_blake2b_impl_name(mfs_blake2b_impl impl);

#endif
