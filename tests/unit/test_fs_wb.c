/*
 * test_fs_wb.c - write-behind (fs/wb.c) on a real store, without FUSE:
 * queued writes are applied in order and a wait sees every write queued
 * before it (reads compared with a model of the file after random
 * sequential, large, small and overlapping writes); large writes are
 * prepared when queued and the file is still cut as a stream; a write
 * that fails once answered is reported for its inode, once cleared;
 * stopping applies what is queued; writes go direct when the store's
 * file system is short of space, and past the largest file.
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

typedef struct fx {
    char *dir;
    mfs_store *s;
    mfs_fs_wb wb;
    uint64_t ino;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = mfs_test_mkdtemp("wb");
    mfs_store_config cfg;
    mfs_store_config_default(&cfg);
    cfg.new_mesh = 1;
    assert_int_equal(mfs_store_open(&f->s, f->dir, &cfg, MFS_STORE_CREATE), 0);
    f->ino = mkfile(f->s, MFS_ROOT_INO, "f");
    assert_int_equal(mfs_fs_wb_init(&f->wb, f->s), 0);
    f->wb.free_min = 0; /* (whatever this machine's disk holds) */
    assert_int_equal(mfs_fs_wb_start(&f->wb), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    mfs_fs_wb_close(&f->wb);
    mfs_store_close(f->s);
    mfs_test_rmdir(f->dir);
    free(f);
    return 0;
}

static void fill(mfs_rng *r, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)mfs_rng_next(r);
}

static void check_file(fx *f, const uint8_t *model, size_t size)
{
    mfs_attr a;
    assert_int_equal(mfs_store_getattr(f->s, f->ino, &a), 0);
    assert_int_equal(a.size, size);
    uint8_t *got = malloc(size + 1);
    assert_non_null(got);
    assert_int_equal(mfs_store_read(f->s, f->ino, 0, got, size + 1),
                     (ssize_t)size);
    assert_memory_equal(got, model, size);
    free(got);
}

/* A file written in order in 1 MiB and odd-sized pieces, with small
 * overwrites behind the end and waits at random points: every wait sees
 * the model, and the large writes were prepared as they were queued. */
static void test_order(void **state)
{
    fx *f = *state;
    enum { MAX = 48 << 20, WR = 1 << 20 };
    mfs_rng r;
    mfs_rng_seed(&r, mfs_test_seed(7));
    uint8_t *model = calloc(1, MAX), *buf = malloc(WR);
    assert_non_null(model);
    assert_non_null(buf);
    size_t size = 0, queued = 0;
    while (size + WR <= MAX) {
        uint64_t k = mfs_rng_below(&r, 10);
        size_t len;
        uint64_t off;
        if (k < 7) { /* the next piece in order */
            len = k < 5 ? WR : 1 + mfs_rng_below(&r, WR);
            off = size;
        } else { /* a small write somewhere before the end */
            len = 1 + mfs_rng_below(&r, 8192);
            off = size > len ? mfs_rng_below(&r, size - len) : 0;
        }
        fill(&r, buf, len);
        memcpy(model + off, buf, len);
        if (off + len > size)
            size = off + len;
        int q = mfs_fs_wb_write(&f->wb, f->ino, off, buf, len, 0);
        if (q == 1) { /* (as op_write: after what is queued) */
            mfs_fs_wb_wait(&f->wb);
            assert_int_equal(mfs_store_write(f->s, f->ino, off, buf, len),
                             (ssize_t)len);
        } else {
            queued++;
        }
        memset(buf, 0xee, len); /* (the queue holds its own copy) */
        if (mfs_rng_below(&r, 16) == 0) {
            mfs_fs_wb_wait(&f->wb);
            check_file(f, model, size);
        }
    }
    mfs_fs_wb_wait(&f->wb);
    check_file(f, model, size);
    assert_true(queued > 0);
    assert_int_equal(f->wb.failed, 0);
    assert_int_equal(mfs_fs_wb_error(&f->wb, f->ino, 1), 0);
    /* published and read again: the same bytes */
    assert_int_equal(mfs_store_publish(f->s, f->ino), 0);
    check_file(f, model, size);
    free(model);
    free(buf);
}

/* 64 MiB in order in 1 MiB writes, all queued: the chunks are cut as the
 * file is written (each write prepared as it is queued, before the one
 * ahead of it is applied) and stored before the file is published; and
 * 64 MiB in 128 KiB writes, joined while queued. */
static void test_stream_prepared(void **state)
{
    fx *f = *state;
    enum { N = 64, WR = 1 << 20 };
    mfs_rng r;
    mfs_rng_seed(&r, 11);
    uint8_t *buf = malloc(WR), *model = malloc((size_t)N * WR);
    assert_non_null(buf);
    assert_non_null(model);
    for (int i = 0; i < N; i++) {
        fill(&r, buf, WR);
        memcpy(model + (size_t)i * WR, buf, WR);
        assert_int_equal(
            mfs_fs_wb_write(&f->wb, f->ino, (uint64_t)i * WR, buf, WR, 0), 0);
    }
    mfs_fs_wb_wait(&f->wb);
    mfs_store_stats st;
    assert_int_equal(mfs_store_stats_get(f->s, &st), 0);
    assert_int_equal(st.dirty_files, 1);
    /* cut and stored as written: all but the tail (under a chunk), in
     * some 3,000 chunks; written the ordinary way there would be none
     * before the publish */
    assert_true(st.chunk_bytes > (uint64_t)N * WR - MFS_CHUNK_SIZE);
    assert_true(st.chunks > (uint64_t)N * WR / MFS_CHUNK_SIZE);
    check_file(f, model, (size_t)N * WR);
    /* the same in 128 KiB writes (cp's size), joined up to a MiB while
     * queued and prepared by the thread: a stream too */
    uint64_t g = mkfile(f->s, MFS_ROOT_INO, "g");
    enum { PIECE = 128 << 10 };
    for (int i = 0; i < N; i++) {
        fill(&r, buf, WR);
        for (int k = 0; k < WR / PIECE; k++)
            assert_int_equal(mfs_fs_wb_write(&f->wb, g,
                                             (uint64_t)i * WR + k * PIECE,
                                             buf + k * PIECE, PIECE, 0),
                             0);
    }
    mfs_fs_wb_wait(&f->wb);
    mfs_store_stats st2;
    assert_int_equal(mfs_store_stats_get(f->s, &st2), 0);
    assert_int_equal(st2.dirty_files, 2);
    assert_true(st2.chunk_bytes - st.chunk_bytes >
                (uint64_t)N * WR - MFS_CHUNK_SIZE);
    assert_true(f->wb.joined > 0);
    free(buf);
    free(model);
}

/* A write the store refuses once it was answered (its inode is gone) is
 * reported for that inode until cleared, and for no other. */
static void test_error_reported(void **state)
{
    fx *f = *state;
    static uint8_t b[100 << 10] = {1}; /* (large: queued) */
    uint64_t gone = f->ino + 1000;
    assert_int_equal(mfs_fs_wb_write(&f->wb, gone, 0, b, sizeof(b), 0), 0);
    mfs_fs_wb_wait(&f->wb);
    assert_int_equal(f->wb.failed, 1);
    assert_int_equal(mfs_fs_wb_error(&f->wb, f->ino, 0), 0);
    int e = mfs_fs_wb_error(&f->wb, gone, 0);
    assert_true(e < 0);
    assert_int_equal(mfs_fs_wb_error(&f->wb, gone, 1), e); /* still there */
    assert_int_equal(mfs_fs_wb_error(&f->wb, gone, 0), 0); /* cleared */
}

/* A small write is applied at once when nothing is queued, queued behind
 * others; stopping applies every queued write; after it writes are
 * direct. */
static void test_stop_applies(void **state)
{
    fx *f = *state;
    static uint8_t b[100 << 10];
    memset(b, 'x', sizeof(b));
    assert_int_equal(mfs_fs_wb_write(&f->wb, f->ino, 0, b, 5000, 0), 1);
    assert_int_equal(mfs_fs_wb_write(&f->wb, f->ino, 0, b, sizeof(b), 0), 0);
    for (int i = 0; i < 40; i++)
        assert_int_equal(mfs_fs_wb_write(&f->wb, f->ino,
                                         sizeof(b) + (uint64_t)i * 5000, b,
                                         5000, 0),
                         0);
    mfs_fs_wb_stop(&f->wb);
    mfs_attr a;
    assert_int_equal(mfs_store_getattr(f->s, f->ino, &a), 0);
    assert_int_equal(a.size, sizeof(b) + 40 * 5000);
    assert_int_equal(mfs_fs_wb_write(&f->wb, f->ino, 0, b, sizeof(b), 0), 1);
}

/* Short of space, or past the largest file: the caller writes directly,
 * so the write(2) itself gets ENOSPC or EFBIG. */
static void test_direct(void **state)
{
    fx *f = *state;
    static uint8_t b[100 << 10];
    f->wb.free_min = UINT64_MAX;
    f->wb.free_checked = 0; /* (read the free space again) */
    assert_int_equal(mfs_fs_wb_write(&f->wb, f->ino, 0, b, sizeof(b), 0), 1);
    f->wb.free_min = 0;
    f->wb.free_checked = 0;
    assert_int_equal(mfs_fs_wb_write(&f->wb, f->ino, 0, b, sizeof(b), 0), 0);
    assert_int_equal(
        mfs_fs_wb_write(&f->wb, f->ino, MFS_MAX_FILE_SIZE - 5, b, sizeof(b), 0),
        1);
    mfs_fs_wb_wait(&f->wb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_prepared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_applies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
