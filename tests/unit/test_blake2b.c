/*
 * test_blake2b.c - the store's own BLAKE2b-256 (store/blake2b.c) names
 * chunks, so it must give exactly libsodium's crypto_generichash(32) bytes:
 * a chunk hashed by an older meshfs, or by a peer, keeps its name. Checked
 * on published vectors, on every length up to 1,100 bytes (every way the
 * last block can end), around the 64 KiB block size, at odd addresses, and
 * on random lengths up to 256 KiB. Many inputs at once
 * (mfs_blake2b256_many) give the same bytes in every implementation this
 * CPU has (SIMD lanes that run in lock step and take a new input as one
 * ends): batches of mixed lengths, empty inputs, lengths around every
 * block edge, more inputs than a batch sorts, and a CPU without an
 * implementation says so rather than hash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "blake2b.h"
#include "testutil.h"

static void hex(char *out, const uint8_t *h)
{
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", h[i]);
}

static void test_vectors(void **state)
{
    (void)state;
    uint8_t h[32];
    char s[65];
    mfs_blake2b256(h, NULL, 0);
    hex(s, h);
    assert_string_equal(
        s, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
    mfs_blake2b256(h, "abc", 3);
    hex(s, h);
    assert_string_equal(
        s, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
}

/* cap random bytes from *r, seeded with mfs_test_seed(dflt) (and
 * libsodium ready, to compare with) */
static uint8_t *random_buf(mfs_rng *r, uint64_t dflt, size_t cap)
{
    assert_true(sodium_init() >= 0);
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    mfs_rng_seed(r, mfs_test_seed(dflt));
    for (size_t i = 0; i < cap; i++)
        buf[i] = (uint8_t)mfs_rng_next(r);
    return buf;
}

static void check(const uint8_t *p, size_t len)
{
    uint8_t a[32], b[32];
    crypto_generichash(a, 32, p, len, NULL, 0);
    mfs_blake2b256(b, p, len);
    if (memcmp(a, b, 32))
        fail_msg("BLAKE2b-256 differs from libsodium at length %zu", len);
}

static void test_same_as_libsodium(void **state)
{
    (void)state;
    size_t cap = 256 * 1024 + 16;
    mfs_rng r;
    uint8_t *buf = random_buf(&r, 2, cap);

    for (size_t len = 0; len <= 1100; len++)
        check(buf, len);
    for (size_t len = 65536 - 130; len <= 65536 + 130; len++)
        check(buf, len);
    for (size_t off = 1; off < 16; off++) /* unaligned input */
        check(buf + off, 65536);
    for (int i = 0; i < 200; i++)
        check(buf + mfs_rng_next(&r) % 16, mfs_rng_next(&r) % (256 * 1024));
    memset(buf, 0, 65536); /* a zero block, as sparse files give */
    check(buf, 65536);
    free(buf);
}

/* n inputs at random places and lengths (lengths up to maxlen, some 0),
 * hashed by impl and one at a time: the same bytes */
static void check_many(mfs_blake2b_impl impl, const uint8_t *buf, size_t cap,
                       mfs_rng *r, size_t n, size_t maxlen)
{
    const uint8_t **data = malloc(n * sizeof(*data) + 1);
    size_t *len = malloc(n * sizeof(*len) + 1);
    uint8_t *a = malloc(n * 32 + 1), *b = malloc(n * 32 + 1);
    assert_true(data && len && a && b);
    for (size_t i = 0; i < n; i++) {
        len[i] = mfs_rng_next(r) % 8 == 0 ? 0 : mfs_rng_next(r) % (maxlen + 1);
        data[i] = buf + mfs_rng_next(r) % (cap - len[i] + 1);
        mfs_blake2b256(a + i * 32, data[i], len[i]);
    }
    memset(b, 0xa5, n * 32);
    assert_true(mfs_blake2b256_many_with(impl, b, data, len, n));
    for (size_t i = 0; i < n; i++)
        if (memcmp(a + i * 32, b + i * 32, 32))
            fail_msg("%s: input %zu of %zu (length %zu) differs",
                     mfs_blake2b_impl_name(impl), i, n, len[i]);
    free(data);
    free(len);
    free(a);
    free(b);
}

static void test_many(void **state)
{
    (void)state;
    size_t cap = 256 * 1024;
    mfs_rng r;
    uint8_t *buf = random_buf(&r, 3, cap);
    int ran = 0;
    for (int impl = 0; impl < MFS_BLAKE2B_IMPLS; impl++) {
        uint8_t h[32];
        const uint8_t *d = buf;
        size_t l = 1;
        if (!mfs_blake2b256_many_with(impl, h, &d, &l, 1)) {
            print_message("%s: not on this CPU\n",
                          mfs_blake2b_impl_name(impl));
            continue;
        }
        ran++;
        for (size_t n = 0; n <= 20; n++) /* fewer inputs than lanes, more */
            check_many(impl, buf, cap, &r, n, 300);
        for (int k = 0; k < 40; k++) /* chunk-like: up to 64 KiB */
            check_many(impl, buf, cap, &r, 1 + mfs_rng_next(&r) % 150,
                       65536);
        /* every length to 1,100 at once: every way a last block ends */
        size_t n = 1101;
        const uint8_t **data = malloc(n * sizeof(*data));
        size_t *len = malloc(n * sizeof(*len));
        uint8_t *a = malloc(n * 32), *b = malloc(n * 32);
        assert_true(data && len && a && b);
        for (size_t i = 0; i < n; i++) {
            data[i] = buf + i % 16; /* (odd addresses too) */
            len[i] = i;
            crypto_generichash(a + i * 32, 32, data[i], len[i], NULL, 0);
        }
        assert_true(mfs_blake2b256_many_with(impl, b, data, len, n));
        assert_memory_equal(a, b, n * 32);
        free(data);
        free(len);
        free(a);
        free(b);
    }
    print_message("best here: %s\n", mfs_blake2b_impl_name(mfs_blake2b_best()));
    assert_true(ran >= 1); /* scalar, at least */
    assert_false(mfs_blake2b256_many_with(MFS_BLAKE2B_IMPLS, NULL, NULL, NULL,
                                          0));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_same_as_libsodium),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
