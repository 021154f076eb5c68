/*
 * test_sync_noise.c - the members' handshake (sync/noise.c): the bytes
 * an independent implementation makes for the same keys (the npm package
 * noise-protocol 3.0.2, Noise_IK_25519_ChaChaPoly_BLAKE2b, ephemeral keys
 * fixed), both sides agreeing on keys, and every message truncated,
 * bit-flipped, reordered or made for another key or prologue refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "noise.h"

static void unhex(const char *hex, uint8_t *out, size_t n)
{
    assert_int_equal(strlen(hex), 2 * n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sscanf(hex + 2 * i, "%2hhx", &out[i]), 1);
}

/* The vectors' keys: secret byte i = seed + 7i. */
static void key_of(uint8_t seed, mfs_noise_keypair *kp)
{
    uint8_t sec[32];
    for (int i = 0; i < 32; i++)
        sec[i] = (uint8_t)(seed + i * 7);
    mfs_noise_keypair_from(kp, sec);
}

static const uint8_t PROLOGUE[] = "meshfs prologue";
#define PLEN (sizeof(PROLOGUE) - 1)

typedef struct pair {
    mfs_noise_keypair si, sr;
    mfs_noise i, r;
    uint8_t m1[256], m2[256];
    ssize_t l1, l2;
} pair;

/* Runs the handshake with fixed keys (seeds 1-4, as the vectors). */
static void run_fixed(pair *p)
{
    mfs_noise_keypair ei, er;
    key_of(1, &p->si);
    key_of(2, &p->sr);
    key_of(3, &ei);
    key_of(4, &er);
    mfs_noise_initiator(&p->i, &p->si, p->sr.pub, PROLOGUE, PLEN);
    mfs_noise_responder(&p->r, &p->sr, PROLOGUE, PLEN);
    mfs_noise_set_ephemeral(&p->i, &ei);
    mfs_noise_set_ephemeral(&p->r, &er);
    p->l1 = mfs_noise_write1(&p->i, (const uint8_t *)"hello responder", 15,
                             p->m1, sizeof(p->m1));
    assert_int_equal(p->l1, MFS_NOISE_MSG1_LEN(15));
}

static void test_vectors(void **state)
{
    (void)state;
    pair p;
    uint8_t want[256], out[64];
    run_fixed(&p);
    unhex("c8feca81be196cdf2cadeabf13c4903d7632dce4955aa68b6e5d9adef54e2616",
          want, 32);
    assert_memory_equal(p.si.pub, want, 32);
    unhex("bb50ff9e82a574cfbf820e97f60fb9c143ec7415cf514f8cfd98eff59e059614"
          "c55629390b09696be704617ea27127baf9bdaf243336cc076290cb9b6ca1ca22"
          "49b6a6a9bbd9f90122b4caaafcc74fc25b20b36f16ed85336f4c9e0ecb54da89"
          "fda5a87643a416ff33fd16fafb466a",
          want, 111);
    assert_memory_equal(p.m1, want, 111);
    assert_int_equal(
        mfs_noise_read1(&p.r, p.m1, (size_t)p.l1, out, sizeof(out)), 15);
    assert_memory_equal(out, "hello responder", 15);
    assert_memory_equal(p.r.rs, p.si.pub, 32);
    p.l2 = mfs_noise_write2(&p.r, (const uint8_t *)"hi", 2, p.m2, sizeof(p.m2));
    assert_int_equal(p.l2, 50);
    unhex("f74e5bb7515d565274967af75d88497dc6fc7fcd607da9dd91a617db86ad0110"
          "53b0026dedc0447d3d354a03d306c5e5c2dd",
          want, 50);
    assert_memory_equal(p.m2, want, 50);
    assert_int_equal(mfs_noise_read2(&p.i, p.m2, 50, out, sizeof(out)), 2);
    assert_memory_equal(out, "hi", 2);

    uint8_t itx[32], irx[32], rtx[32], rrx[32], ih[64], rh[64];
    assert_int_equal(mfs_noise_split(&p.i, itx, irx, ih), 0);
    assert_int_equal(mfs_noise_split(&p.r, rtx, rrx, rh), 0);
    /* The specification's first key (c1) carries initiator to responder;
     * the package hands c1 to whoever wrote the last message (the
     * responder in IK), so its names for these two are the other way. */
    unhex("9390391f43f3af98474b6dc61266a4b9e3a4d0f73313a151a50acb485e5b88d1",
          want, 32);
    assert_memory_equal(itx, want, 32);
    assert_memory_equal(rrx, want, 32);
    unhex("2b91a51e928627505b842e67a8d21bc24c3c76432a586f6d45d8709f297aead9",
          want, 32);
    assert_memory_equal(irx, want, 32);
    assert_memory_equal(rtx, want, 32);
    unhex("da76986693c49734744389a2fc901a0442b3584a0861d32df09193d44fcb8ab8"
          "3211edfacd41877ac1a148cc3d3ce8d1cc72dc04ac807d609b3741b56d09be5d",
          want, 64);
    assert_memory_equal(ih, want, 64);
    assert_memory_equal(rh, want, 64);
    /* split wiped both states */
    assert_int_equal(p.i.step, -1);
    assert_int_equal(mfs_noise_split(&p.i, itx, irx, NULL), -EPROTO);
}

static void test_random_keys_agree(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        mfs_noise_keypair si, sr;
        mfs_noise i, r;
        uint8_t m1[256], m2[256], out[128], a[32], b[32], c[32], d[32];
        mfs_noise_keypair_new(&si);
        mfs_noise_keypair_new(&sr);
        mfs_noise_initiator(&i, &si, sr.pub, NULL, 0);
        mfs_noise_responder(&r, &sr, NULL, 0);
        size_t n = (size_t)round * 5;
        memset(out, 0x5a, n);
        ssize_t l1 = mfs_noise_write1(&i, out, n, m1, sizeof(m1));
        assert_int_equal(mfs_noise_read1(&r, m1, (size_t)l1, out, 128), n);
        assert_memory_equal(r.rs, si.pub, 32);
        ssize_t l2 = mfs_noise_write2(&r, NULL, 0, m2, sizeof(m2));
        assert_int_equal(mfs_noise_read2(&i, m2, (size_t)l2, out, 128), 0);
        assert_int_equal(mfs_noise_split(&i, a, b, NULL), 0);
        assert_int_equal(mfs_noise_split(&r, c, d, NULL), 0);
        assert_memory_equal(a, d, 32);
        assert_memory_equal(b, c, 32);
        assert_memory_not_equal(a, b, 32);
    }
}

/* Message 1 as the vectors' initiator sends it, read by a responder
 * given (key seed, prologue); returns read1's result. */
static ssize_t read1_as(const uint8_t *m1, size_t len, uint8_t seed,
                        const uint8_t *pro, size_t plen)
{
    mfs_noise_keypair s;
    mfs_noise r;
    uint8_t out[256];
    key_of(seed, &s);
    mfs_noise_responder(&r, &s, pro, plen);
    ssize_t rc = mfs_noise_read1(&r, m1, len, out, sizeof(out));
    if (rc < 0) {
        /* a failed state keeps nothing and answers nothing */
        assert_int_equal(r.step, -1);
        assert_int_equal(mfs_noise_write2(&r, NULL, 0, out, sizeof(out)),
                         -EPROTO);
    }
    return rc;
}

static void test_message1_refused(void **state)
{
    (void)state;
    pair p;
    run_fixed(&p);
    size_t l1 = (size_t)p.l1;
    assert_int_equal(read1_as(p.m1, l1, 2, PROLOGUE, PLEN), 15);
    for (size_t n = 0; n < l1; n++) /* every truncation */
        assert_true(read1_as(p.m1, n, 2, PROLOGUE, PLEN) < 0);
    uint8_t m[256];
    for (size_t bit = 0; bit < l1 * 8; bit++) { /* every bit flipped */
        memcpy(m, p.m1, l1);
        m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(read1_as(m, l1, 2, PROLOGUE, PLEN), -EBADMSG);
    }
    memcpy(m, p.m1, l1); /* one byte longer */
    m[l1] = 0;
    assert_int_equal(read1_as(m, l1 + 1, 2, PROLOGUE, PLEN), -EBADMSG);
    /* made for another node's key, or another mesh's prologue */
    assert_int_equal(read1_as(p.m1, l1, 5, PROLOGUE, PLEN), -EBADMSG);
    assert_int_equal(read1_as(p.m1, l1, 2, (const uint8_t *)"other", 5),
                     -EBADMSG);
}

static void test_message2_refused(void **state)
{
    (void)state;
    pair p;
    uint8_t out[64], m[256];
    run_fixed(&p);
    assert_int_equal(mfs_noise_read1(&p.r, p.m1, (size_t)p.l1, out, 64), 15);
    p.l2 = mfs_noise_write2(&p.r, (const uint8_t *)"hi", 2, p.m2, 256);
    size_t l2 = (size_t)p.l2;
    for (size_t cut = 0; cut <= l2 + 1; cut++) {
        for (size_t bit = 0; bit <= l2 * 8; bit++) {
            if (cut != l2 && bit > 0)
                break; /* truncations once, flips on the whole message */
            pair q;
            run_fixed(&q);
            memcpy(m, p.m2, l2);
            m[l2] = 0;
            if (bit < l2 * 8 && cut == l2)
                m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            ssize_t rc = mfs_noise_read2(&q.i, m, cut, out, sizeof(out));
            if (cut == l2 && bit == l2 * 8) {
                assert_int_equal(rc, 2); /* the untouched one */
                continue;
            }
            assert_int_equal(rc, -EBADMSG);
            assert_int_equal(q.i.step, -1);
        }
    }
}

static void test_out_of_turn(void **state)
{
    (void)state;
    pair p;
    uint8_t out[256];
    run_fixed(&p);
    /* the initiator cannot read its own message 1 as a reply, nor write
     * twice; the failure is for good */
    assert_int_equal(mfs_noise_write1(&p.i, NULL, 0, out, sizeof(out)),
                     -EPROTO);
    assert_int_equal(mfs_noise_read2(&p.i, p.m2, 50, out, sizeof(out)),
                     -EPROTO);
    /* a responder given message 2 shapes: read1 of a short message */
    mfs_noise r;
    mfs_noise_responder(&r, &p.sr, PROLOGUE, PLEN);
    assert_int_equal(mfs_noise_read2(&r, p.m1, (size_t)p.l1, out, 256),
                     -EPROTO);
    mfs_noise_responder(&r, &p.sr, PROLOGUE, PLEN);
    assert_int_equal(mfs_noise_write2(&r, NULL, 0, out, sizeof(out)), -EPROTO);
    uint8_t a[32], b[32];
    mfs_noise_responder(&r, &p.sr, PROLOGUE, PLEN);
    assert_int_equal(mfs_noise_split(&r, a, b, NULL), -EPROTO);
    /* a short buffer is not a failure: the caller may try again */
    pair q;
    mfs_noise_keypair si;
    key_of(1, &si);
    mfs_noise_initiator(&q.i, &si, p.sr.pub, NULL, 0);
    assert_int_equal(mfs_noise_write1(&q.i, NULL, 0, out, 95), -ENOBUFS);
    assert_int_equal(mfs_noise_write1(&q.i, NULL, 0, out, 96), 96);
}

static void test_small_order_refused(void **state)
{
    (void)state;
    /* an ephemeral key of small order makes every DH zero: refused
     * before anything is decrypted */
    pair p;
    run_fixed(&p);
    uint8_t m[256];
    memcpy(m, p.m1, (size_t)p.l1);
    memset(m, 0, 32);
    assert_int_equal(read1_as(m, (size_t)p.l1, 2, PROLOGUE, PLEN), -EBADMSG);
    mfs_noise_keypair s, zero;
    mfs_noise i;
    uint8_t out[256];
    key_of(1, &s);
    memset(&zero, 0, sizeof(zero));
    mfs_noise_initiator(&i, &s, zero.pub, NULL, 0); /* a bad responder key */
    assert_int_equal(mfs_noise_write1(&i, NULL, 0, out, sizeof(out)), -EPROTO);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_random_keys_agree),
        cmocka_unit_test(test_message1_refused),
        cmocka_unit_test(test_message2_refused),
        cmocka_unit_test(test_out_of_turn),
        cmocka_unit_test(test_small_order_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
