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

#include <stdbool.h>
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

/* the state a hash starts from: the IV xor the parameter block (digest
 * length 32, no key, fanout 1, depth 1) */
static const uint64_t h0[8] = {
    0x6a09e667f3bcc908ULL ^ 0x01010000ULL ^ MFS_BLAKE2B256_LEN,
    0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL,
    0x5be0cd19137e2179ULL,
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
    memcpy(h, h0, sizeof h);

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

/* ---- many inputs at once ----
 * Chunks are hashed many at a time (a large write cuts a MiB into some
 * fifty), and BLAKE2b's rounds are a chain within one input but
 * independent across inputs: one input per 64-bit SIMD lane hashes 8 (AVX-512)
 * or 4 (AVX2) at the cost of about one (docs/BENCH-chunks.md, "Hashing
 * many chunks at once": 3.8x on AVX-512). The lanes' code is
 * blake2b_lanes.h, compiled once per instruction set with GCC's target
 * attribute; the CPU is asked which it has once, and a CPU with neither
 * gets the scalar code above. Same bytes whatever runs (test_blake2b.c
 * checks every implementation the CPU has against libsodium). */

#define MANY_MAX 64 /* inputs sorted at a time (on the stack) */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define LANES 8
#define VEC __m512i
#define ATTR __attribute__((target("avx512f")))
#define LANES_FN lanes_avx512
#define LANES_COMPRESS compress_avx512
#define V_LOAD(p) _mm512_loadu_si512((const void *)(p))
#define V_STORE(p, x) _mm512_storeu_si512((void *)(p), (x))
#define V_SET1(x) _mm512_set1_epi64((long long)(x))
#define V_ADD(a, b) _mm512_add_epi64((a), (b))
#define V_XOR(a, b) _mm512_xor_si512((a), (b))
#define V_GATHER(a, w)                                                         \
    _mm512_i64gather_epi64(_mm512_add_epi64((a), _mm512_set1_epi64(8 * (w))), \
                           NULL, 1)
#define V_ROR32(x) _mm512_ror_epi64((x), 32)
#define V_ROR24(x) _mm512_ror_epi64((x), 24)
#define V_ROR16(x) _mm512_ror_epi64((x), 16)
#define V_ROR63(x) _mm512_ror_epi64((x), 63)
#include "blake2b_lanes.h" /* (undefines them all) */

/* AVX2 has no 64-bit rotate: 32 swaps the halves, 24 and 16 move whole
 * bytes (a shuffle), 63 is a shift left by one (x + x) and the top bit */
#define LANES 4
#define VEC __m256i
#define ATTR __attribute__((target("avx2")))
#define LANES_FN lanes_avx2
#define LANES_COMPRESS compress_avx2
#define V_LOAD(p) _mm256_loadu_si256((const __m256i *)(p))
#define V_STORE(p, x) _mm256_storeu_si256((__m256i *)(p), (x))
#define V_SET1(x) _mm256_set1_epi64x((long long)(x))
#define V_ADD(a, b) _mm256_add_epi64((a), (b))
#define V_XOR(a, b) _mm256_xor_si256((a), (b))
#define V_GATHER(a, w)                                                         \
    _mm256_i64gather_epi64(                                                    \
        NULL, _mm256_add_epi64((a), _mm256_set1_epi64x(8 * (w))), 1)
#define V_ROR32(x) _mm256_shuffle_epi32((x), _MM_SHUFFLE(2, 3, 0, 1))
#define V_ROR24(x)                                                             \
    _mm256_shuffle_epi8((x), _mm256_setr_epi8(3, 4, 5, 6, 7, 0, 1, 2, 11, 12,  \
                                              13, 14, 15, 8, 9, 10, 3, 4, 5, \
                                              6, 7, 0, 1, 2, 11, 12, 13, 14,  \
                                              15, 8, 9, 10))
#define V_ROR16(x)                                                             \
    _mm256_shuffle_epi8((x), _mm256_setr_epi8(2, 3, 4, 5, 6, 7, 0, 1, 10, 11,  \
                                              12, 13, 14, 15, 8, 9, 2, 3, 4,  \
                                              5, 6, 7, 0, 1, 10, 11, 12, 13,  \
                                              14, 15, 8, 9))
#define V_ROR63(x)                                                             \
    _mm256_or_si256(_mm256_srli_epi64((x), 63), _mm256_add_epi64((x), (x)))
#include "blake2b_lanes.h" /* (undefines them all) */

static bool cpu_has(mfs_blake2b_impl impl)
{
    __builtin_cpu_init();
    switch (impl) {
    case MFS_BLAKE2B_AVX512:
        return __builtin_cpu_supports("avx512f");
    case MFS_BLAKE2B_AVX2:
        return __builtin_cpu_supports("avx2");
    default:
        return impl == MFS_BLAKE2B_SCALAR;
    }
}
#else
static bool cpu_has(mfs_blake2b_impl impl)
{
    return impl == MFS_BLAKE2B_SCALAR;
}
#endif

bool mfs_blake2b256_many_with(mfs_blake2b_impl impl, uint8_t *out,
                              const uint8_t *const *data, const size_t *len,
                              size_t n)
{
    if (!cpu_has(impl))
        return false;
    for (size_t at = 0; at < n; at += MANY_MAX) {
        size_t k = n - at < MANY_MAX ? n - at : MANY_MAX, ord[MANY_MAX];
        for (size_t i = 0; i < k; i++) { /* longest first (insertion) */
            size_t j = i;
            for (; j && len[at + ord[j - 1]] < len[at + i]; j--)
                ord[j] = ord[j - 1];
            ord[j] = i;
        }
        uint8_t *o = out + at * MFS_BLAKE2B256_LEN;
        switch (impl) {
#if defined(__x86_64__) && defined(__GNUC__)
        case MFS_BLAKE2B_AVX512:
            lanes_avx512(o, data + at, len + at, ord, k);
            break;
        case MFS_BLAKE2B_AVX2:
            lanes_avx2(o, data + at, len + at, ord, k);
            break;
#endif
        default:
            for (size_t i = 0; i < k; i++)
                mfs_blake2b256(o + i * MFS_BLAKE2B256_LEN, data[at + i],
                               len[at + i]);
        }
    }
    return true;
}

mfs_blake2b_impl mfs_blake2b_best(void)
{
    static mfs_blake2b_impl best = MFS_BLAKE2B_IMPLS; /* not asked yet */
    mfs_blake2b_impl b = __atomic_load_n(&best, __ATOMIC_RELAXED);
    if (b == MFS_BLAKE2B_IMPLS) {
        b = cpu_has(MFS_BLAKE2B_AVX512) ? MFS_BLAKE2B_AVX512
            : cpu_has(MFS_BLAKE2B_AVX2) ? MFS_BLAKE2B_AVX2
                                        : MFS_BLAKE2B_SCALAR;
        __atomic_store_n(&best, b, __ATOMIC_RELAXED);
    }
    return b;
}

void mfs_blake2b256_many(uint8_t *out, const uint8_t *const *data,
                         const size_t *len, size_t n)
{
    if (n == 1)
        mfs_blake2b256(out, data[0], len[0]);
    else
        mfs_blake2b256_many_with(mfs_blake2b_best(), out, data, len, n);
}

const char *mfs_blake2b_impl_name(mfs_blake2b_impl impl)
{
    static const char *names[] = {"scalar", "avx2", "avx512"};
    return impl < MFS_BLAKE2B_IMPLS ? names[impl] : "?";
}
