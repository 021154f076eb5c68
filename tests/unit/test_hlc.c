/*
 * test_hlc.c - stamp order and the hybrid logical clock as seen through the
 * public API: mfs_stamp_cmp is a total order (hlc, then node); local stamps
 * (observed as the version stamps of published files) strictly increase even
 * when the wall clock steps back, also across a close and reopen; a remote
 * stamp within the future bound pushes the local clock forward.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "store.h"
#include "testutil.h"

static void test_stamp_cmp(void **state)
{
    (void)state;
    mfs_stamp a = {100, 5}, b = {100, 6}, c = {101, 1}, d = {100, 5};
    assert_int_equal(mfs_stamp_cmp(a, d), 0);
    assert_true(mfs_stamp_cmp(a, b) < 0);
    assert_true(mfs_stamp_cmp(b, a) > 0);
    assert_true(mfs_stamp_cmp(b, c) < 0); /* hlc dominates node */
    assert_true(mfs_stamp_cmp(c, b) > 0);
    mfs_stamp big = {UINT64_MAX, 0}, small = {0, UINT64_MAX};
    assert_true(mfs_stamp_cmp(small, big) < 0); /* unsigned, no overflow */
    assert_true(mfs_stamp_cmp(big, small) > 0);

    /* Antisymmetric and transitive over random triples. */
    mfs_rng r;
    uint64_t seed = mfs_test_seed(77);
    mfs_rng_seed(&r, seed);
    for (int i = 0; i < 20000; i++) {
        mfs_stamp x = {mfs_rng_below(&r, 4), mfs_rng_below(&r, 4)};
        mfs_stamp y = {mfs_rng_below(&r, 4), mfs_rng_below(&r, 4)};
        mfs_stamp z = {mfs_rng_below(&r, 4), mfs_rng_below(&r, 4)};
        int xy = mfs_stamp_cmp(x, y), yx = mfs_stamp_cmp(y, x);
        assert_true((xy > 0) == (yx < 0) && (xy == 0) == (yx == 0));
        assert_true((xy == 0) == (x.hlc == y.hlc && x.node == y.node));
        if (xy <= 0 && mfs_stamp_cmp(y, z) <= 0)
            assert_true(mfs_stamp_cmp(x, z) <= 0);
    }
}

static mfs_store *open_at(const char *dir, tclock *clk, int new_mesh,
                          uint64_t node)
{
    mfs_store_config cfg;
    mfs_test_store_config(&cfg, clk);
    cfg.new_mesh = new_mesh;
    cfg.node_id = node;
    mfs_store *s = NULL;
    int rc = mfs_store_open(&s, dir, &cfg, MFS_STORE_CREATE);
    if (rc)
        print_error("open %s: %d %s\n", dir, rc, mfs_store_strerror(rc));
    assert_int_equal(rc, 0);
    return s;
}

/* Writes one byte to ino and publishes; returns the new version stamp. */
static mfs_stamp bump(mfs_store *s, uint64_t ino, int i)
{
    char c = (char)('a' + i % 26);
    assert_int_equal(mfs_store_write(s, ino, (uint64_t)i, &c, 1), 1);
    assert_int_equal(mfs_store_publish(s, ino), 0);
    mfs_file_info fi;
    assert_int_equal(mfs_store_file_info(s, ino, &fi, NULL, 0), 0);
    assert_int_equal(fi.dirty, 0);
    return fi.version;
}

static void test_local_stamps_monotonic(void **state)
{
    (void)state;
    char *dir = mfs_test_mkdtemp("hlc");
    tclock clk = {1700000000000ull};
    mfs_store *s = open_at(dir, &clk, 1, 0x1111);
    mfs_attr a;
    assert_int_equal(
        mfs_store_mknod(s, MFS_ROOT_INO, "f", S_IFREG | 0644, 0, 0, 0, &a), 0);
    mfs_stamp prev = bump(s, a.ino, 0);
    assert_true(prev.node == mfs_store_node_id(s));
    assert_true(prev.hlc >> 16 == clk.ms);
    mfs_stamp peek0 = mfs_stamp_now_peek(s);
    assert_true(mfs_stamp_cmp(peek0, prev) >= 0);

    /* The wall clock jumps back an hour, then jitters. */
    const int64_t steps[] = {-3600000, 0, 0,  1,       -5,
                             0,        2, -1, 7200000, -7200000};
    for (int i = 0; i < (int)(sizeof(steps) / sizeof(steps[0])); i++) {
        clk.ms = (uint64_t)((int64_t)clk.ms + steps[i]);
        mfs_stamp st = bump(s, a.ino, i + 1);
        if (mfs_stamp_cmp(st, prev) <= 0)
            print_error("step %d: stamp %llx not after %llx\n", i,
                        (unsigned long long)st.hlc,
                        (unsigned long long)prev.hlc);
        assert_true(mfs_stamp_cmp(st, prev) > 0);
        prev = st;
    }
    /* Peek never goes backwards either, and does not advance the clock. */
    mfs_stamp p1 = mfs_stamp_now_peek(s), p2 = mfs_stamp_now_peek(s);
    assert_true(mfs_stamp_cmp(p1, prev) >= 0);
    assert_int_equal(mfs_stamp_cmp(p1, p2), 0);

    /* Across a reopen with the clock still behind. */
    mfs_store_close(s);
    clk.ms -= 10000;
    s = open_at(dir, &clk, 0, 0);
    mfs_attr b;
    assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "f", &b), 0);
    mfs_stamp st = bump(s, b.ino, 40);
    if (mfs_stamp_cmp(st, prev) <= 0)
        print_error("after reopen: stamp %llx not after %llx\n",
                    (unsigned long long)st.hlc, (unsigned long long)prev.hlc);
    assert_true(mfs_stamp_cmp(st, prev) > 0);
    mfs_store_close(s);
    mfs_test_rmdir(dir);
}

static void test_remote_stamp_advances_clock(void **state)
{
    (void)state;
    char *da = mfs_test_mkdtemp("hlca"), *db = mfs_test_mkdtemp("hlcb");
    tclock ca = {1700000030000ull}; /* A runs 30 s ahead of B */
    tclock cb = {1700000000000ull};
    mfs_store *a = open_at(da, &ca, 1, 0xaaaa);
    mfs_store *b = open_at(db, &cb, 0, 0xbbbb);
    mfs_attr at;
    assert_int_equal(
        mfs_store_mknod(a, MFS_ROOT_INO, "f", S_IFREG | 0644, 0, 0, 0, &at), 0);
    mfs_stamp va = bump(a, at.ino, 0);

    /* A -> B, ops only (no content needed to observe the clock). */
    mfs_vv vv;
    assert_int_equal(mfs_store_vv(b, &vv), 0);
    static uint8_t buf[1 << 20];
    ssize_t n = mfs_store_ops_since(a, &vv, buf, sizeof(buf));
    assert_true(n > 0);
    mfs_vv_free(&vv);
    mfs_apply_result res;
    assert_int_equal(mfs_store_apply(b, buf, (size_t)n, &res), 0);
    assert_true(res.applied > 0);
    assert_int_equal(res.deferred, 0);

    /* B's next local stamp must follow A's even though B's wall clock is
     * 30 s behind. */
    mfs_attr bt;
    assert_int_equal(
        mfs_store_mknod(b, MFS_ROOT_INO, "g", S_IFREG | 0644, 0, 0, 0, &bt), 0);
    mfs_stamp vb = bump(b, bt.ino, 0);
    assert_true(mfs_stamp_cmp(vb, va) > 0);
    assert_true(mfs_stamp_cmp(mfs_stamp_now_peek(b), va) > 0);
    mfs_store_close(a);
    mfs_store_close(b);
    mfs_test_rmdir(da);
    mfs_test_rmdir(db);
}

/* Stamps from a clock far off, and the same clock corrected
 * (mfs_store_set_clock_correction, what node/clock.c sets from the mesh's
 * time): A's clock runs a year ahead, B's a day behind. Uncorrected, A's
 * stamps are refused by B as from the future (deferred) and B's file times
 * are a day old; corrected, A's next stamps and file times are the mesh's
 * time, B applies them at once, and B's times are its mesh time too. A's
 * stamps never go back (its earlier ones are a year ahead: later ones
 * still follow them). */
static void test_corrected_clock(void **state)
{
    (void)state;
    const uint64_t T = 1700000000000ull, YEAR = 365ull * 86400000;
    char *da = mfs_test_mkdtemp("hlcca"), *db = mfs_test_mkdtemp("hlccb");
    tclock ca = {T + YEAR}, cb = {T - 86400000};
    mfs_store *a = open_at(da, &ca, 1, 0xaaaa);
    mfs_store *b = open_at(db, &cb, 0, 0xbbbb);
    assert_int_equal(mfs_store_clock_correction(a), 0);
    assert_true(mfs_store_wall_ms(a) == T + YEAR);
    mfs_attr at;
    assert_int_equal(
        mfs_store_mknod(a, MFS_ROOT_INO, "ahead", S_IFREG | 0644, 0, 0, 0, &at),
        0);
    mfs_stamp v0 = bump(a, at.ino, 0);
    assert_true(v0.hlc >> 16 == T + YEAR);
    mfs_vv vv;
    static uint8_t buf[1 << 20];
    assert_int_equal(mfs_store_vv(b, &vv), 0);
    ssize_t n = mfs_store_ops_since(a, &vv, buf, sizeof(buf));
    mfs_vv_free(&vv);
    assert_true(n > 0);
    mfs_apply_result res;
    mfs_store_set_clock_correction(b, 86400000); /* B: the mesh's time */
    assert_int_equal(mfs_store_apply(b, buf, (size_t)n, &res), 0);
    assert_true(res.deferred > 0); /* a year ahead: refused for now */

    /* corrected: A's new file is stamped (and timed) by the mesh, which B
     * takes at once; B's own times follow its correction too */
    mfs_store_set_clock_correction(a, -(int64_t)YEAR);
    assert_true(mfs_store_now_ns(a) / 1000000 == (int64_t)T);
    char *dc = mfs_test_mkdtemp("hlccc");
    tclock cc = {T + YEAR};
    mfs_store *c = open_at(dc, &cc, 0, 0xcccc); /* no stamps of its own yet */
    mfs_store_set_clock_correction(c, -(int64_t)YEAR);
    mfs_attr ct;
    assert_int_equal(
        mfs_store_mknod(c, MFS_ROOT_INO, "fixed", S_IFREG | 0644, 0, 0, 0, &ct),
        0);
    mfs_stamp vc = bump(c, ct.ino, 0);
    assert_true(vc.hlc >> 16 == T);
    assert_true(ct.mtime_ns / 1000000 == (int64_t)T);
    assert_int_equal(mfs_store_vv(b, &vv), 0);
    n = mfs_store_ops_since(c, &vv, buf, sizeof(buf));
    mfs_vv_free(&vv);
    assert_true(n > 0);
    assert_int_equal(mfs_store_apply(b, buf, (size_t)n, &res), 0);
    assert_int_equal(res.deferred, 0);
    assert_true(res.applied > 0);
    mfs_attr bt;
    assert_int_equal(mfs_store_lookup(b, MFS_ROOT_INO, "fixed", &bt), 0);
    assert_true(bt.mtime_ns / 1000000 == (int64_t)T);
    assert_int_equal(mfs_store_mknod(b, MFS_ROOT_INO, "behind", S_IFREG | 0644,
                                     0, 0, 0, &bt),
                     0);
    assert_true(bt.mtime_ns / 1000000 == (int64_t)T);
    mfs_stamp vb = bump(b, bt.ino, 0);
    assert_true(mfs_stamp_cmp(vb, vc) > 0);
    assert_true(vb.hlc >> 16 <= T + 1);

    /* A's later stamps still follow its earlier, far-ahead ones (its own
     * order: a clock is never wound back under its stamps) */
    mfs_stamp v1 = bump(a, at.ino, 1);
    assert_true(mfs_stamp_cmp(v1, v0) > 0);
    mfs_store_close(c);
    mfs_store_close(a);
    mfs_store_close(b);
    mfs_test_rmdir(dc);
    mfs_test_rmdir(da);
    mfs_test_rmdir(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stamp_cmp),
        cmocka_unit_test(test_local_stamps_monotonic),
        cmocka_unit_test(test_remote_stamp_advances_clock),
        cmocka_unit_test(test_corrected_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
