/*
 * test_blake2b.c - the store's own BLAKE2b-256 (store/blake2b.c) names
 * chunks, so it must give exactly libsodium's crypto_generichash(32) bytes:
 * a chunk hashed by an older meshfs, or by a peer, keeps its name. Checked
 * on published vectors, on every length up to 1,100 bytes (every way the
 * last block can end), around the 64 KiB block size, at odd addresses, and
 * on random lengths up to 256 KiB.
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
    assert_true(sodium_init() >= 0);
    size_t cap = 256 * 1024 + 16;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    mfs_rng r;
    mfs_rng_seed(&r, mfs_test_seed(2));
    for (size_t i = 0; i < cap; i++)
        buf[i] = (uint8_t)mfs_rng_next(&r);

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_same_as_libsodium),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
