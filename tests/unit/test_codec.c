/*
 * test_codec.c - the bounds-checked big-endian codec (store/codec.h).
 * What callers rely on: exact big-endian layout, the first error sticks and
 * later calls are no-ops returning zeros, no byte outside the buffer is ever
 * read or written, and length-prefixed fields honour their caps.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"
#include "testutil.h"

/* Guard bytes around the region handed to the codec catch any write
 * outside it. */
#define GUARD 0xA5

static void test_put_layout(void **state)
{
    (void)state;
    uint8_t buf[64];
    memset(buf, GUARD, sizeof(buf));
    mfs_wbuf w;
    mfs_wbuf_init(&w, buf + 8, 32);
    mfs_put_u8(&w, 0x01);
    mfs_put_u16(&w, 0x0203);
    mfs_put_u32(&w, 0x04050607u);
    mfs_put_u64(&w, 0x08090a0b0c0d0e0full);
    mfs_put_bytes(&w, "xy", 2);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.len, 1 + 2 + 4 + 8 + 2);
    const uint8_t want[] = {1,  2,  3,  4,  5,  6,  7,   8,  9,
                            10, 11, 12, 13, 14, 15, 'x', 'y'};
    assert_memory_equal(buf + 8, want, sizeof(want));
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(buf[i], GUARD);
    for (size_t i = 8 + sizeof(want); i < sizeof(buf); i++)
        assert_int_equal(buf[i], GUARD);
}

static void test_put_first_error_sticks(void **state)
{
    (void)state;
    uint8_t buf[16];
    memset(buf, GUARD, sizeof(buf));
    mfs_wbuf w;
    mfs_wbuf_init(&w, buf + 4, 6);
    mfs_put_u32(&w, 0x11223344u);
    assert_int_equal(w.err, 0);
    mfs_put_u32(&w, 0x55667788u); /* needs 4, only 2 left */
    assert_int_equal(w.err, -ENOBUFS);
    assert_int_equal(w.len, 4);
    /* A smaller put that would fit must still be a no-op now. */
    mfs_put_u8(&w, 0x99);
    mfs_put_u16(&w, 0x9999);
    mfs_put_bytes(&w, "z", 1);
    assert_int_equal(w.err, -ENOBUFS);
    assert_int_equal(w.len, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(buf[i], GUARD);
    for (size_t i = 8; i < sizeof(buf); i++)
        assert_int_equal(buf[i], GUARD);
}

static void test_put_exact_fit(void **state)
{
    (void)state;
    uint8_t buf[8];
    mfs_wbuf w;
    mfs_wbuf_init(&w, buf, sizeof(buf));
    mfs_put_u64(&w, 1);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.len, 8);
    mfs_put_bytes(&w, NULL, 0); /* zero bytes always fit */
    assert_int_equal(w.err, 0);
    mfs_put_u8(&w, 1);
    assert_int_equal(w.err, -ENOBUFS);
}

static void test_put_str_blob(void **state)
{
    (void)state;
    uint8_t buf[32];
    mfs_wbuf w;
    mfs_wbuf_init(&w, buf, sizeof(buf));
    mfs_put_str16(&w, "abc", 3);
    mfs_put_blob32(&w, "de", 2);
    assert_int_equal(w.err, 0);
    const uint8_t want[] = {0, 3, 'a', 'b', 'c', 0, 0, 0, 2, 'd', 'e'};
    assert_int_equal(w.len, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));

    /* A string longer than a u16 can say is an error, not a truncation. */
    static uint8_t big[70000];
    uint8_t out[80000];
    mfs_wbuf_init(&w, out, sizeof(out));
    mfs_put_str16(&w, big, sizeof(big));
    assert_int_equal(w.err, -ENOBUFS);
    assert_int_equal(w.len, 0);
}

static void test_get_layout(void **state)
{
    (void)state;
    const uint8_t in[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    mfs_rbuf r;
    mfs_rbuf_init(&r, in, sizeof(in));
    assert_int_equal(mfs_get_u8(&r), 0x01);
    assert_int_equal(mfs_get_u16(&r), 0x0203);
    assert_int_equal(mfs_get_u32(&r), 0x04050607u);
    assert_true(mfs_get_u64(&r) == 0x08090a0b0c0d0e0full);
    assert_int_equal(r.err, 0);
    assert_int_equal(mfs_rbuf_left(&r), 0);
    /* Reading past the end: error, zero, and it sticks. */
    assert_int_equal(mfs_get_u8(&r), 0);
    assert_int_equal(r.err, -EBADMSG);
    assert_int_equal(mfs_rbuf_left(&r), 0);
}

static void test_get_first_error_sticks(void **state)
{
    (void)state;
    const uint8_t in[] = {0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa};
    mfs_rbuf r;
    mfs_rbuf_init(&r, in, sizeof(in));
    assert_int_equal(mfs_get_u32(&r), 0xffeeddccu);
    assert_int_equal(mfs_get_u32(&r), 0); /* only 2 left */
    assert_int_equal(r.err, -EBADMSG);
    /* The 2 bytes that are left must not be handed out after the error. */
    assert_int_equal(mfs_get_u16(&r), 0);
    assert_int_equal(mfs_get_u8(&r), 0);
    assert_null(mfs_get_bytes(&r, 1));
    assert_int_equal(r.err, -EBADMSG);
    assert_int_equal(mfs_rbuf_left(&r), 0);
}

static void test_get_bytes_bounds(void **state)
{
    (void)state;
    const uint8_t in[] = {1, 2, 3};
    mfs_rbuf r;
    mfs_rbuf_init(&r, in, sizeof(in));
    const uint8_t *p = mfs_get_bytes(&r, 3);
    assert_ptr_equal(p, in);
    assert_int_equal(r.err, 0);
    mfs_rbuf_init(&r, in, sizeof(in));
    /* A huge length must not wrap around the bounds check. */
    assert_null(mfs_get_bytes(&r, SIZE_MAX));
    assert_int_equal(r.err, -EBADMSG);
    mfs_rbuf_init(&r, in, sizeof(in));
    mfs_get_u8(&r);
    assert_null(mfs_get_bytes(&r, SIZE_MAX - 0));
    assert_int_equal(r.err, -EBADMSG);
}

static void test_get_str16(void **state)
{
    (void)state;
    const uint8_t ok[] = {0, 3, 'a', 'b', 'c', 0xaa};
    mfs_rbuf r;
    size_t n = 99;
    mfs_rbuf_init(&r, ok, sizeof(ok));
    const uint8_t *p = mfs_get_str16(&r, &n, 255);
    assert_non_null(p);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "abc", 3);
    assert_int_equal(mfs_rbuf_left(&r), 1);

    /* Over the cap. */
    mfs_rbuf_init(&r, ok, sizeof(ok));
    n = 99;
    assert_null(mfs_get_str16(&r, &n, 2));
    assert_int_equal(n, 0);
    assert_int_equal(r.err, -EBADMSG);

    /* Length says more than there is. */
    const uint8_t trunc[] = {0, 9, 'a', 'b'};
    mfs_rbuf_init(&r, trunc, sizeof(trunc));
    n = 99;
    assert_null(mfs_get_str16(&r, &n, 255));
    assert_int_equal(n, 0);
    assert_int_equal(r.err, -EBADMSG);

    /* Truncated length field itself. */
    mfs_rbuf_init(&r, trunc, 1);
    assert_null(mfs_get_str16(&r, &n, 255));
    assert_int_equal(r.err, -EBADMSG);

    /* Zero-length string is valid. */
    const uint8_t empty[] = {0, 0};
    mfs_rbuf_init(&r, empty, sizeof(empty));
    n = 99;
    mfs_get_str16(&r, &n, 255);
    assert_int_equal(r.err, 0);
    assert_int_equal(n, 0);
}

static void test_get_blob32(void **state)
{
    (void)state;
    const uint8_t ok[] = {0, 0, 0, 2, 'd', 'e'};
    mfs_rbuf r;
    size_t n = 0;
    mfs_rbuf_init(&r, ok, sizeof(ok));
    const uint8_t *p = mfs_get_blob32(&r, &n, 2);
    assert_non_null(p);
    assert_int_equal(n, 2);
    assert_memory_equal(p, "de", 2);
    /* 0xffffffff length must not wrap anything. */
    const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 1, 2};
    mfs_rbuf_init(&r, huge, sizeof(huge));
    assert_null(mfs_get_blob32(&r, &n, SIZE_MAX));
    assert_int_equal(r.err, -EBADMSG);
    mfs_rbuf_init(&r, ok, sizeof(ok));
    assert_null(mfs_get_blob32(&r, &n, 1));
    assert_int_equal(r.err, -EBADMSG);
}

static void test_roundtrip_random(void **state)
{
    (void)state;
    uint64_t seed = mfs_test_seed(0xc0dec);
    mfs_rng rng;
    mfs_rng_seed(&rng, seed);
    uint8_t buf[512];
    for (int iter = 0; iter < 2000; iter++) {
        uint64_t vals[32];
        int kinds[32];
        int n = (int)mfs_rng_below(&rng, 32) + 1;
        mfs_wbuf w;
        size_t cap = (size_t)mfs_rng_below(&rng, 200);
        mfs_wbuf_init(&w, buf, cap);
        size_t need = 0, fitted = 0;
        int nfit = 0;
        for (int i = 0; i < n; i++) {
            kinds[i] = (int)mfs_rng_below(&rng, 4);
            vals[i] = mfs_rng_next(&rng);
            size_t sz = (size_t)1 << kinds[i];
            need += sz;
            if (need <= cap) {
                fitted = need;
                nfit = i + 1;
            }
            switch (kinds[i]) {
            case 0:
                mfs_put_u8(&w, (uint8_t)vals[i]);
                break;
            case 1:
                mfs_put_u16(&w, (uint16_t)vals[i]);
                break;
            case 2:
                mfs_put_u32(&w, (uint32_t)vals[i]);
                break;
            default:
                mfs_put_u64(&w, vals[i]);
                break;
            }
        }
        if (need <= cap) {
            assert_int_equal(w.err, 0);
        } else {
            if (w.err != -ENOBUFS)
                print_error("seed %llu iter %d\n", (unsigned long long)seed,
                            iter);
            assert_int_equal(w.err, -ENOBUFS);
        }
        /* First error: only the prefix that fitted before it was written. */
        assert_int_equal(w.len, fitted);
        mfs_rbuf r;
        mfs_rbuf_init(&r, buf, w.len);
        for (int i = 0; i < nfit; i++) {
            uint64_t got,
                mask = kinds[i] == 3 ? ~0ull : ((1ull << (8 << kinds[i])) - 1);
            switch (kinds[i]) {
            case 0:
                got = mfs_get_u8(&r);
                break;
            case 1:
                got = mfs_get_u16(&r);
                break;
            case 2:
                got = mfs_get_u32(&r);
                break;
            default:
                got = mfs_get_u64(&r);
                break;
            }
            assert_true(got == (vals[i] & mask));
        }
        assert_int_equal(r.err, 0);
        assert_int_equal(mfs_rbuf_left(&r), 0);
    }
}

/* Varints (LEB128) and zigzag: edges round-trip in the expected number
 * of bytes; overlong, over-64-bit and truncated input is an error. */
static void test_varint(void **state)
{
    (void)state;
    const uint64_t u[] = {0, 1, 127, 128, 16383, 16384, UINT32_MAX,
                          (uint64_t)1 << 63, UINT64_MAX};
    const size_t ulen[] = {1, 1, 1, 2, 2, 3, 5, 10, 10};
    for (size_t i = 0; i < sizeof u / sizeof *u; i++) {
        uint8_t b[16];
        mfs_wbuf w;
        mfs_wbuf_init(&w, b, sizeof b);
        mfs_put_varint(&w, u[i]);
        assert_int_equal(w.err, 0);
        assert_int_equal(w.len, ulen[i]);
        mfs_rbuf r;
        mfs_rbuf_init(&r, b, w.len);
        assert_true(mfs_get_varint(&r) == u[i]);
        assert_int_equal(r.err, 0);
        assert_int_equal(r.off, w.len);
        /* one byte short: an error, never a read past the end */
        mfs_rbuf_init(&r, b, w.len - 1);
        assert_true(mfs_get_varint(&r) == 0);
        assert_int_equal(r.err, -EBADMSG);
    }
    const int64_t sv[] = {0, -1, 1, -64, 63, 64, INT64_MIN, INT64_MAX};
    for (size_t i = 0; i < sizeof sv / sizeof *sv; i++) {
        uint8_t b[16];
        mfs_wbuf w;
        mfs_wbuf_init(&w, b, sizeof b);
        mfs_put_svarint(&w, sv[i]);
        mfs_rbuf r;
        mfs_rbuf_init(&r, b, w.len);
        assert_true(mfs_get_svarint(&r) == sv[i]);
        assert_int_equal(r.err, 0);
        assert_true(w.len <= (sv[i] >= -64 && sv[i] <= 63 ? 1u : 10u));
    }
    /* 11 continuation bytes, and a 10th byte carrying more than bit 63 */
    uint8_t longer[11];
    memset(longer, 0x80, sizeof longer);
    mfs_rbuf r;
    mfs_rbuf_init(&r, longer, sizeof longer);
    mfs_get_varint(&r);
    assert_int_equal(r.err, -EBADMSG);
    uint8_t big[10];
    memset(big, 0xff, 9);
    big[9] = 0x02;
    mfs_rbuf_init(&r, big, sizeof big);
    mfs_get_varint(&r);
    assert_int_equal(r.err, -EBADMSG);
    big[9] = 0x01; /* exactly UINT64_MAX */
    mfs_rbuf_init(&r, big, sizeof big);
    assert_true(mfs_get_varint(&r) == UINT64_MAX);
    assert_int_equal(r.err, 0);
    /* no room: the writer's error, nothing written past its end */
    uint8_t small[2] = {0xaa, 0xaa};
    mfs_wbuf w;
    mfs_wbuf_init(&w, small, 1);
    mfs_put_varint(&w, 300);
    assert_int_equal(w.err, -ENOBUFS);
    assert_int_equal(small[1], 0xaa);
}

static void test_be_helpers(void **state)
{
    (void)state;
    uint8_t b[8];
    mfs_be64_put(b, 0x0102030405060708ull);
    const uint8_t w64[] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_memory_equal(b, w64, 8);
    assert_true(mfs_be64_get(b) == 0x0102030405060708ull);
    mfs_be32_put(b, 0xdeadbeefu);
    const uint8_t w32[] = {0xde, 0xad, 0xbe, 0xef};
    assert_memory_equal(b, w32, 4);
    assert_int_equal(mfs_be32_get(b), 0xdeadbeefu);
    /* Big-endian keys sort like the numbers (LMDB relies on it). */
    uint8_t a1[8], a2[8];
    mfs_be64_put(a1, 255);
    mfs_be64_put(a2, 256);
    assert_true(memcmp(a1, a2, 8) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_layout),
        cmocka_unit_test(test_put_first_error_sticks),
        cmocka_unit_test(test_put_exact_fit),
        cmocka_unit_test(test_put_str_blob),
        cmocka_unit_test(test_get_layout),
        cmocka_unit_test(test_get_first_error_sticks),
        cmocka_unit_test(test_get_bytes_bounds),
        cmocka_unit_test(test_get_str16),
        cmocka_unit_test(test_get_blob32),
        cmocka_unit_test(test_roundtrip_random),
        cmocka_unit_test(test_be_helpers),
        cmocka_unit_test(test_varint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
