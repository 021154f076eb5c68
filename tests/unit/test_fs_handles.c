/*
 * test_fs_handles.c - the handle table behind fi->fh (fs/files.c): a value
 * resolves only while its handle lives, for its kind and inode; a slot
 * reused or a value of another process (another boot) never resolves; a
 * stale value adopted maps to one handle until it is removed; the table
 * grows past its first size and past many adoptions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fs.h"
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int objs[8]; /* distinct addresses standing for handles */

static void test_add_get_remove(void **state)
{
    mfs_fs_files t;
    assert_int_equal(mfs_fs_files_init(&t), 0);
    uint64_t a, b;
    assert_int_equal(mfs_fs_handles_add(&t, MFS_FS_H_FILE, 5, &objs[0], &a), 0);
    assert_int_equal(mfs_fs_handles_add(&t, MFS_FS_H_DIR, 6, &objs[1], &b), 0);
    assert_true(a != 0 && b != 0 && a != b);
    assert_ptr_equal(mfs_fs_handles_get(&t, a, MFS_FS_H_FILE, 5), &objs[0]);
    assert_ptr_equal(mfs_fs_handles_get(&t, b, MFS_FS_H_DIR, 6), &objs[1]);
    assert_int_equal(mfs_fs_handles_open(&t), 2);
    /* another kind or inode, 0 and garbage resolve to nothing */
    assert_null(mfs_fs_handles_get(&t, a, MFS_FS_H_DIR, 5));
    assert_null(mfs_fs_handles_get(&t, a, MFS_FS_H_FILE, 6));
    assert_null(mfs_fs_handles_get(&t, 0, MFS_FS_H_FILE, 5));
    assert_null(mfs_fs_handles_get(&t, a & ~(uint64_t)UINT32_MAX, MFS_FS_H_FILE,
                                   5)); /* slot + 1 = 0 */
    assert_null(mfs_fs_handles_get(&t, (a >> 32) << 32 | 0xfffffff0u,
                                   MFS_FS_H_FILE, 5)); /* past the table */
    assert_null(mfs_fs_handles_remove(&t, a, MFS_FS_H_FILE, 6));
    assert_ptr_equal(mfs_fs_handles_remove(&t, a, MFS_FS_H_FILE, 5), &objs[0]);
    assert_null(mfs_fs_handles_get(&t, a, MFS_FS_H_FILE, 5));
    assert_null(mfs_fs_handles_remove(&t, a, MFS_FS_H_FILE, 5)); /* once */
    assert_ptr_equal(mfs_fs_handles_remove(&t, b, MFS_FS_H_DIR, 6), &objs[1]);
    assert_int_equal(mfs_fs_handles_open(&t), 0);
    assert_int_equal(mfs_fs_handles_adopted(&t), 0);
    mfs_fs_files_close(&t);
}

/* A slot freed and handed out again answers only to its new value, even
 * for the same kind and inode. */
static void test_generation(void **state)
{
    mfs_fs_files t;
    assert_int_equal(mfs_fs_files_init(&t), 0);
    uint64_t old, now;
    assert_int_equal(mfs_fs_handles_add(&t, MFS_FS_H_FILE, 9, &objs[0], &old),
                     0);
    assert_ptr_equal(mfs_fs_handles_remove(&t, old, MFS_FS_H_FILE, 9),
                     &objs[0]);
    assert_int_equal(mfs_fs_handles_add(&t, MFS_FS_H_FILE, 9, &objs[1], &now),
                     0);
    assert_int_equal((uint32_t)now, (uint32_t)old); /* the same slot */
    assert_true(now != old);
    assert_null(mfs_fs_handles_get(&t, old, MFS_FS_H_FILE, 9));
    assert_null(mfs_fs_handles_remove(&t, old, MFS_FS_H_FILE, 9));
    assert_ptr_equal(mfs_fs_handles_get(&t, now, MFS_FS_H_FILE, 9), &objs[1]);
    mfs_fs_files_close(&t);
}

/* Two tables standing for two daemons: the same slots, generations, kinds
 * and inodes, another boot. No value of one resolves in the other. */
static void test_other_boot(void **state)
{
    mfs_fs_files dead, live;
    assert_int_equal(mfs_fs_files_init(&dead), 0);
    assert_int_equal(mfs_fs_files_init(&live), 0);
    live.boot = dead.boot ^ 0x00010000u; /* differ by one bit */
    enum { N = 300 };
    uint64_t d[N], l[N];
    for (int i = 0; i < N; i++) {
        assert_int_equal(
            mfs_fs_handles_add(&dead, MFS_FS_H_FILE, 7, &objs[0], &d[i]), 0);
        assert_int_equal(
            mfs_fs_handles_add(&live, MFS_FS_H_FILE, 7, &objs[1], &l[i]), 0);
        assert_int_equal((uint32_t)d[i], (uint32_t)l[i]);
    }
    for (int i = 0; i < N; i++) {
        assert_null(mfs_fs_handles_get(&live, d[i], MFS_FS_H_FILE, 7));
        assert_null(mfs_fs_handles_get(&dead, l[i], MFS_FS_H_FILE, 7));
        assert_ptr_equal(mfs_fs_handles_get(&live, l[i], MFS_FS_H_FILE, 7),
                         &objs[1]);
    }
    /* and after reuses of every slot (generations move in both) */
    for (int i = 0; i < N; i++) {
        assert_non_null(mfs_fs_handles_remove(&live, l[i], MFS_FS_H_FILE, 7));
        assert_int_equal(
            mfs_fs_handles_add(&live, MFS_FS_H_FILE, 7, &objs[1], &l[i]), 0);
        assert_null(mfs_fs_handles_get(&live, d[i], MFS_FS_H_FILE, 7));
    }
    mfs_fs_files_close(&dead);
    mfs_fs_files_close(&live);
}

/* A stale value is adopted once: later lookups, a second adoption (a
 * racing thread) and the remove all find the one adopted handle. */
static void test_adopt(void **state)
{
    mfs_fs_files dead, t;
    assert_int_equal(mfs_fs_files_init(&dead), 0);
    assert_int_equal(mfs_fs_files_init(&t), 0);
    t.boot = dead.boot ^ 1;
    uint64_t stale, stale2, mine;
    assert_int_equal(
        mfs_fs_handles_add(&dead, MFS_FS_H_FILE, 3, &objs[0], &stale), 0);
    assert_int_equal(
        mfs_fs_handles_add(&dead, MFS_FS_H_DIR, 4, &objs[0], &stale2), 0);
    assert_int_equal(mfs_fs_handles_add(&t, MFS_FS_H_FILE, 3, &objs[5], &mine),
                     0);
    assert_int_equal((uint32_t)mine, (uint32_t)stale); /* the same slot */

    assert_null(mfs_fs_handles_get(&t, stale, MFS_FS_H_FILE, 3));
    int first = -1;
    assert_ptr_equal(
        mfs_fs_handles_adopt(&t, stale, MFS_FS_H_FILE, 3, &objs[1], &first),
        &objs[1]);
    assert_int_equal(first, 1);
    assert_ptr_equal(mfs_fs_handles_get(&t, stale, MFS_FS_H_FILE, 3), &objs[1]);
    assert_ptr_equal(mfs_fs_handles_get(&t, stale, MFS_FS_H_FILE, 3), &objs[1]);
    /* the slot's own handle is untouched */
    assert_ptr_equal(mfs_fs_handles_get(&t, mine, MFS_FS_H_FILE, 3), &objs[5]);
    /* a thread that lost the race gets the first one back */
    assert_ptr_equal(
        mfs_fs_handles_adopt(&t, stale, MFS_FS_H_FILE, 3, &objs[2], &first),
        &objs[1]);
    assert_int_equal(first, 0);
    /* a second stale value is a second adoption, not the first's */
    assert_null(mfs_fs_handles_get(&t, stale2, MFS_FS_H_DIR, 4));
    assert_ptr_equal(
        mfs_fs_handles_adopt(&t, stale2, MFS_FS_H_DIR, 4, &objs[3], &first),
        &objs[3]);
    assert_int_equal(first, 0); /* only the first of the table says so */
    assert_int_equal(mfs_fs_handles_adopted(&t), 2);
    assert_int_equal(mfs_fs_handles_open(&t), 3);
    /* an adopted handle answers only to the stale value, kind and inode */
    assert_null(mfs_fs_handles_get(&t, stale, MFS_FS_H_DIR, 3));
    assert_null(mfs_fs_handles_get(&t, stale, MFS_FS_H_FILE, 4));

    /* release frees it; after that the value resolves to nothing, and a
     * release of a value never adopted is a no-op */
    assert_ptr_equal(mfs_fs_handles_remove(&t, stale, MFS_FS_H_FILE, 3),
                     &objs[1]);
    assert_null(mfs_fs_handles_get(&t, stale, MFS_FS_H_FILE, 3));
    assert_null(mfs_fs_handles_remove(&t, stale, MFS_FS_H_FILE, 3));
    assert_null(
        mfs_fs_handles_remove(&t, stale ^ (1ull << 40), MFS_FS_H_FILE, 3));
    assert_ptr_equal(mfs_fs_handles_get(&t, stale2, MFS_FS_H_DIR, 4), &objs[3]);
    assert_ptr_equal(mfs_fs_handles_remove(&t, stale2, MFS_FS_H_DIR, 4),
                     &objs[3]);
    assert_ptr_equal(mfs_fs_handles_get(&t, mine, MFS_FS_H_FILE, 3), &objs[5]);
    assert_int_equal(mfs_fs_handles_open(&t), 1);
    mfs_fs_files_close(&dead);
    mfs_fs_files_close(&t);
}

/* Many handles and many adoptions, added and removed at random against a
 * plain model: the slot array grows past its first size, the adoption map
 * past its first size, and removal from the map (backward shift) never
 * loses another entry. */
static void test_grow_model(void **state)
{
    enum { N = 20000 };
    mfs_rng rng;
    mfs_rng_seed(&rng, mfs_test_seed(7));
    mfs_fs_files dead, t;
    assert_int_equal(mfs_fs_files_init(&dead), 0);
    assert_int_equal(mfs_fs_files_init(&t), 0);
    t.boot = dead.boot ^ 0x80000000u;
    uint64_t *val = calloc(N, sizeof *val);
    int *live = calloc(N, sizeof *live);
    char *obj = calloc(N, 1);
    assert_true(val && live && obj);
    /* odd i: values of the dead daemon, adopted here */
    for (int i = 1; i < N; i += 2)
        assert_int_equal(
            mfs_fs_handles_add(&dead, MFS_FS_H_FILE, 100 + i, &obj[i], &val[i]),
            0);
    size_t open = 0;
    for (int step = 0; step < 200000; step++) {
        int i = (int)mfs_rng_below(&rng, N);
        uint64_t ino = 100 + (uint64_t)i;
        if (!live[i]) {
            if (i % 2 == 0) {
                assert_int_equal(mfs_fs_handles_add(&t, MFS_FS_H_FILE, ino,
                                                    &obj[i], &val[i]),
                                 0);
            } else {
                int first;
                assert_null(mfs_fs_handles_get(&t, val[i], MFS_FS_H_FILE, ino));
                assert_ptr_equal(mfs_fs_handles_adopt(&t, val[i], MFS_FS_H_FILE,
                                                      ino, &obj[i], &first),
                                 &obj[i]);
            }
            live[i] = 1;
            open++;
        } else if (mfs_rng_below(&rng, 2)) {
            assert_ptr_equal(
                mfs_fs_handles_remove(&t, val[i], MFS_FS_H_FILE, ino), &obj[i]);
            live[i] = 0;
            open--;
        }
        if (step % 1000 == 0) {
            for (int k = 0; k < N; k++) {
                void *want = live[k] ? &obj[k] : NULL;
                if (val[k])
                    assert_ptr_equal(mfs_fs_handles_get(&t, val[k],
                                                        MFS_FS_H_FILE,
                                                        100 + (uint64_t)k),
                                     want);
            }
            assert_int_equal(mfs_fs_handles_open(&t), open);
        }
    }
    assert_true(t.nslots > 64);
    assert_true(t.namap > 64);
    free(val);
    free(live);
    free(obj);
    mfs_fs_files_close(&dead);
    mfs_fs_files_close(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_get_remove),
        cmocka_unit_test(test_generation),
        cmocka_unit_test(test_other_boot),
        cmocka_unit_test(test_adopt),
        cmocka_unit_test(test_grow_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
