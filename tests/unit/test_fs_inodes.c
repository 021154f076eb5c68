/*
 * test_fs_inodes.c - the lookup-count table and the invalidation queue of
 * fs/: counts reach zero exactly once, survive growth and tombstones, and
 * the queue keeps order, bounds its length and wakes a blocked consumer on
 * stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fs.h"
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void test_ref_unref(void **state)
{
    mfs_fs_inodes t;
    assert_int_equal(mfs_fs_inodes_init(&t), 0);
    assert_int_equal(mfs_fs_inodes_count(&t, 7), 0);
    assert_int_equal(mfs_fs_inodes_unref(&t, 7, 1), 0); /* unknown */
    assert_int_equal(mfs_fs_inodes_ref(&t, 7, 1), 0);
    assert_int_equal(mfs_fs_inodes_ref(&t, 7, 2), 0);
    assert_int_equal(mfs_fs_inodes_count(&t, 7), 3);
    assert_int_equal(mfs_fs_inodes_unref(&t, 7, 2), 0);
    assert_int_equal(mfs_fs_inodes_count(&t, 7), 1);
    assert_int_equal(mfs_fs_inodes_unref(&t, 7, 1), 1); /* reached zero */
    assert_int_equal(mfs_fs_inodes_unref(&t, 7, 1), 0); /* only once */
    assert_int_equal(mfs_fs_inodes_size(&t), 0);
    /* the kernel may forget more than it looked up in one go: clamp */
    assert_int_equal(mfs_fs_inodes_ref(&t, 9, 2), 0);
    assert_int_equal(mfs_fs_inodes_unref(&t, 9, 5), 1);
    assert_int_equal(mfs_fs_inodes_ref(&t, 0, 1), -EINVAL);
    mfs_fs_inodes_close(&t);
}

/* Many inodes with random ref/unref against a plain array model. */
static void test_model(void **state)
{
    enum { N = 50000 };
    mfs_rng rng;
    mfs_rng_seed(&rng, mfs_test_seed(42));
    uint64_t *model = calloc(N, sizeof *model);
    assert_non_null(model);
    mfs_fs_inodes t;
    assert_int_equal(mfs_fs_inodes_init(&t), 0);
    size_t live = 0;
    for (int step = 0; step < 400000; step++) {
        uint64_t ino = 2 + mfs_rng_below(&rng, N - 2);
        if (mfs_rng_below(&rng, 3) != 0) {
            uint64_t n = 1 + mfs_rng_below(&rng, 3);
            if (model[ino] == 0)
                live++;
            model[ino] += n;
            assert_int_equal(mfs_fs_inodes_ref(&t, ino, n), 0);
        } else {
            uint64_t n = 1 + mfs_rng_below(&rng, 4);
            int want = model[ino] > 0 && model[ino] <= n;
            if (model[ino] > 0)
                model[ino] = model[ino] > n ? model[ino] - n : 0;
            if (want)
                live--;
            assert_int_equal(mfs_fs_inodes_unref(&t, ino, n), want);
        }
        if (step % 50000 == 0)
            assert_int_equal(mfs_fs_inodes_size(&t), live);
    }
    for (uint64_t i = 2; i < N; i++)
        assert_int_equal(mfs_fs_inodes_count(&t, i), model[i]);
    assert_int_equal(mfs_fs_inodes_size(&t), live);
    mfs_fs_inodes_close(&t);
    free(model);
}

static void test_queue_order(void **state)
{
    mfs_fs_invalq q;
    mfs_fs_invalq_init(&q);
    assert_int_equal(mfs_fs_invalq_push(&q, MFS_CHANGE_ENTRY, 1, "a"), 0);
    assert_int_equal(mfs_fs_invalq_push(&q, MFS_CHANGE_INODE, 5, NULL), 0);
    mfs_fs_inval_item *it = mfs_fs_invalq_pop(&q);
    assert_non_null(it);
    assert_int_equal(it->kind, MFS_CHANGE_ENTRY);
    assert_int_equal(it->ino, 1);
    assert_string_equal(it->name, "a");
    free(it);
    it = mfs_fs_invalq_pop(&q);
    assert_non_null(it);
    assert_int_equal(it->kind, MFS_CHANGE_INODE);
    assert_string_equal(it->name, "");
    free(it);
    /* nothing is dropped for length (the kernel caches for long): one
     * item per change not yet sent, however many there are */
    for (uint64_t i = 0; i < 100000; i++)
        assert_int_equal(mfs_fs_invalq_push(&q, MFS_CHANGE_INODE, 10 + i, NULL),
                         0);
    assert_int_equal(q.len, 100000);
    assert_int_equal(q.dropped, 0);
    mfs_fs_invalq_close(&q); /* frees what is queued */
}

/* A change already queued and not yet sent is not queued again (the one
 * send comes after both); once sent, the next change is queued anew. */
static void test_queue_merges(void **state)
{
    mfs_fs_invalq q;
    mfs_fs_invalq_init(&q);
    assert_int_equal(mfs_fs_invalq_push(&q, MFS_CHANGE_ENTRY, 1, "a"), 0);
    assert_int_equal(mfs_fs_invalq_push(&q, MFS_CHANGE_INODE, 1, NULL), 0);
    assert_int_equal(mfs_fs_invalq_push(&q, MFS_CHANGE_ATTR, 1, NULL), 0);
    assert_int_equal(mfs_fs_invalq_push(&q, MFS_CHANGE_ENTRY, 1, "b"), 0);
    assert_int_equal(mfs_fs_invalq_push(&q, MFS_CHANGE_ENTRY, 2, "a"), 0);
    assert_int_equal(q.len, 5);
    assert_int_equal(mfs_fs_invalq_push(&q, MFS_CHANGE_ENTRY, 1, "a"), 0);
    assert_int_equal(mfs_fs_invalq_push(&q, MFS_CHANGE_INODE, 1, NULL), 0);
    assert_int_equal(mfs_fs_invalq_push_raced(&q, MFS_CHANGE_ENTRY, 1, "a"),
                     0);
    assert_int_equal(q.len, 5);
    assert_int_equal(q.merged, 3);
    mfs_fs_inval_item *it = mfs_fs_invalq_pop(&q);
    assert_int_equal(it->kind, MFS_CHANGE_ENTRY);
    assert_string_equal(it->name, "a");
    assert_int_equal(it->raced, 1); /* the merged change was a raced one */
    free(it);
    assert_int_equal(mfs_fs_invalq_push(&q, MFS_CHANGE_ENTRY, 1, "a"), 0);
    assert_int_equal(q.len, 5);
    const char *want[] = {"", "", "b", "a", "a"};
    for (int i = 0; i < 5; i++) {
        it = mfs_fs_invalq_pop(&q);
        assert_string_equal(it->name, want[i]);
        free(it);
    }
    assert_int_equal(q.len, 0);
    /* every change is in the ring, merged or not; an attribute change
     * counts for a reply that named the inode */
    uint64_t since = mfs_fs_invalq_seq(&q);
    assert_int_equal(mfs_fs_invalq_push(&q, MFS_CHANGE_ATTR, 7, NULL), 0);
    assert_int_equal(mfs_fs_invalq_changed(&q, since, MFS_CHANGE_INODE, 7), 1);
    assert_int_equal(mfs_fs_invalq_changed(&q, since, MFS_CHANGE_INODE, 8), 0);
    mfs_fs_invalq_close(&q);
}

static void *consumer(void *arg)
{
    return mfs_fs_invalq_pop(arg);
}

static void test_queue_stop_wakes(void **state)
{
    mfs_fs_invalq q;
    pthread_t th;
    void *res = (void *)1;
    mfs_fs_invalq_init(&q);
    assert_int_equal(pthread_create(&th, NULL, consumer, &q), 0);
    mfs_fs_invalq_stop(&q);
    assert_int_equal(pthread_join(th, &res), 0);
    assert_null(res);
    assert_int_equal(mfs_fs_invalq_push(&q, MFS_CHANGE_INODE, 2, NULL),
                     -ENOBUFS);
    mfs_fs_invalq_close(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_unref),
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_queue_merges),
        cmocka_unit_test(test_queue_order),
        cmocka_unit_test(test_queue_stop_wakes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
