/* store/blake2b.c - BLAKE2b-256 of a whole buffer, for naming chunks.
 *
 * A chunk's name is BLAKE2b with a 32-byte digest and no key: exactly what
 * libsodium's crypto_generichash(out, 32, in, len, NULL, 0) returns, and a
 * unit test (tests/unit/test_blake2b.c) checks that they agree on every
 * length that matters. It is written here, from RFC 7693, for speed only:
 * libsodium 1.0.18 picks its AVX2 code at sodium_init() on any CPU that has
 * AVX2, and on this project's machines that code hashes 64 KiB blocks at
 * about 720 MB/s where its own portable code (and this) does about
 * 1,300 MB/s (docs/BENCH-fs.md, "Hashing"). Every byte a user writes is
 * hashed once, so this bounds large writes.
 *
 * One-shot only: the whole input is in memory, so no streaming state, and
 * no copy of the input into a buffer (the other cost of libsodium's
 * update()). Must never be used where a key or a MAC is wanted: the wire's
 * cryptography stays with libsodium.
 */
#include "blake2b.h"

#include <string.h>

static const uint64_t iv[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL,
    0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL,
    0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const uint8_t sigma[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

static inline uint64_t rotr64(uint64_t x, unsigned n)
{
    return (x >> n) | (x << (64 - n));
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline void store64(uint8_t *p, uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, 8);
}

#define G(r, i, a, b, c, d)                                                    \
    do {                                                                       \
        a = a + b + m[sigma[r][2 * (i)]];                                      \
        d = rotr64(d ^ a, 32);                                                 \
        c = c + d;                                                             \
        b = rotr64(b ^ c, 24);                                                 \
        a = a + b + m[sigma[r][2 * (i) + 1]];                                  \
        d = rotr64(d ^ a, 16);                                                 \
        c = c + d;                                                             \
        b = rotr64(b ^ c, 63);                                                 \
    } while (0)

#define ROUND(r)                                                               \
    do {                                                                       \
        G(r, 0, v[0], v[4], v[8], v[12]);                                      \
        G(r, 1, v[1], v[5], v[9], v[13]);                                      \
        G(r, 2, v[2], v[6], v[10], v[14]);                                     \
        G(r, 3, v[3], v[7], v[11], v[15]);                                     \
        G(r, 4, v[0], v[5], v[10], v[15]);                                     \
        G(r, 5, v[1], v[6], v[11], v[12]);                                     \
        G(r, 6, v[2], v[7], v[8], v[13]);                                      \
        G(r, 7, v[3], v[4], v[9], v[14]);                                      \
    } while (0)

/* compress one 128-byte block into h; t = bytes hashed so far, last = the
 * final block's flag */
static void compress(uint64_t h[8], const uint8_t block[128], uint64_t t,
                     int last)
{
    uint64_t m[16], v[16];
    for (int i = 0; i < 16; i++)
        m[i] = load64(block + 8 * i);
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = iv[i];
    }
    v[12] ^= t; /* inputs here are far below 2^64 bytes: the high word is 0 */
    if (last)
        v[14] = ~v[14];
    /* the rounds are spelled out so that each sigma[r][...] is a constant
     * and m[] stays in registers: a loop over r is about 20% slower */
    ROUND(0);
    ROUND(1);
    ROUND(2);
    ROUND(3);
    ROUND(4);
    ROUND(5);
    ROUND(6);
    ROUND(7);
    ROUND(8);
    ROUND(9);
    ROUND(10);
    ROUND(11);
    for (int i = 0; i < 8; i++)
        h[i] ^= v[i] ^ v[i + 8];
}

void mfs_blake2b256(uint8_t out[MFS_BLAKE2B256_LEN], const void *data,
                    size_t len)
{
    const uint8_t *p = data;
    uint64_t h[8];
    memcpy(h, iv, sizeof h);
    /* parameter block: digest length 32, no key, fanout 1, depth 1 */
    h[0] ^= 0x01010000ULL ^ MFS_BLAKE2B256_LEN;

    uint64_t t = 0;
    /* every block but the last is compressed straight from the input; the
     * last (1..128 bytes, or the empty input's zero block) is padded */
    while (len > 128) {
        t += 128;
        compress(h, p, t, 0);
        p += 128;
        len -= 128;
    }
    uint8_t last[128] = {0};
    if (len)
        memcpy(last, p, len);
    t += len;
    compress(h, last, t, 1);

    uint8_t full[64];
    for (int i = 0; i < 8; i++)
        store64(full + 8 * i, h[i]);
    memcpy(out, full, MFS_BLAKE2B256_LEN);
}
