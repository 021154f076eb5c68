/* store/blake2b.h - BLAKE2b-256 of a whole buffer (see blake2b.c for why
 * the store has its own). */
#ifndef MFS_STORE_BLAKE2B_H
#define MFS_STORE_BLAKE2B_H

#include <stddef.h>
#include <stdint.h>

#define MFS_BLAKE2B256_LEN 32

/* mfs_blake2b256: out = BLAKE2b(data[0..len), digest 32 bytes, no key), the
 * same bytes as libsodium's crypto_generichash(out, 32, data, len, NULL, 0).
 * data may be NULL when len is 0. Cannot fail; any thread. */
void mfs_blake2b256(uint8_t out[MFS_BLAKE2B256_LEN], const void *data,
                    size_t len);

#endif
