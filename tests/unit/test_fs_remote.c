/*
 * test_fs_remote.c - remote changes reach a mounted replica's kernel caches.
 *
 * Store A is mounted in-process with kernel cache timeouts of an hour, so
 * without invalidation the kernel would keep showing what it cached. A
 * second replica B of the same mesh changes a file's content, creates a
 * name the kernel has cached as absent, and removes a cached name; its ops
 * and chunks are applied to A. Through the mount the new content, the new
 * name and the removal must then be visible (the change callback, the
 * queue and the invalidation thread of fs/). Needs root and /dev/fuse
 * (skipped otherwise); every mount is unmounted in the teardown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fs.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BATCH_CAP (4u << 20)

typedef struct ctx {
    char *dir_a, *dir_b, *mnt;
    mfs_store *a, *b;
    mfs_fs fs;
    int fs_inited, mounted;
    pthread_t loop;
    int loop_started;
} ctx;

static void *loop_main(void *arg)
{
    ctx *c = arg;
    mfs_fs_run(&c->fs);
    return NULL;
}

static void ops_a_to_b_and_back(mfs_store *from, mfs_store *to)
{
    uint8_t *buf = malloc(BATCH_CAP);
    assert_non_null(buf);
    for (int guard = 0; guard < 100; guard++) {
        mfs_vv vv;
        assert_int_equal(mfs_store_vv(to, &vv), 0);
        ssize_t n = mfs_store_ops_since(from, &vv, buf, BATCH_CAP);
        mfs_vv_free(&vv);
        assert_true(n >= 0);
        if (n == 0)
            break;
        mfs_apply_result res = {0};
        assert_int_equal(mfs_store_apply(to, buf, (size_t)n, &res), 0);
        if (res.applied == 0)
            break;
    }
    /* chunks the applied versions need */
    static uint8_t hashes[64 * MFS_HASH_LEN];
    static uint8_t data[MFS_CHUNK_SIZE];
    for (int guard = 0; guard < 100; guard++) {
        ssize_t n = mfs_store_chunks_wanted(to, hashes, 64);
        assert_true(n >= 0);
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            const uint8_t *h = hashes + i * MFS_HASH_LEN;
            ssize_t len = mfs_store_chunk_get(from, h, data, sizeof data);
            assert_true(len >= 0);
            assert_int_equal(mfs_store_chunk_put(to, h, data, (size_t)len), 0);
        }
    }
    free(buf);
}

static int setup(void **state)
{
    if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0)
        return 0; /* the test skips */
    ctx *c = calloc(1, sizeof *c);
    assert_non_null(c);
    *state = c;
    c->dir_a = mfs_test_mkdtemp("fsremote-a");
    c->dir_b = mfs_test_mkdtemp("fsremote-b");
    c->mnt = mfs_test_mkdtemp("fsremote-mnt");
    mfs_store_config cfg;
    mfs_store_config_default(&cfg);
    cfg.new_mesh = 1;
    cfg.root_mode = 0755;
    assert_int_equal(mfs_store_open(&c->a, c->dir_a, &cfg, MFS_STORE_CREATE),
                     0);
    cfg.new_mesh = 0;
    assert_int_equal(mfs_store_open(&c->b, c->dir_b, &cfg, MFS_STORE_CREATE),
                     0);
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    if (!c)
        return 0;
    if (c->mounted && umount2(c->mnt, 0) < 0)
        umount2(c->mnt, MNT_DETACH);
    if (c->loop_started)
        pthread_join(c->loop, NULL);
    if (c->fs_inited)
        mfs_fs_close(&c->fs);
    mfs_store_close(c->a);
    mfs_store_close(c->b);
    mfs_test_rmdir(c->dir_a);
    mfs_test_rmdir(c->dir_b);
    mfs_test_rmdir(c->mnt);
    free(c);
    return 0;
}

static void write_file(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
    assert_int_equal(close(fd), 0);
}

static int read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    return (int)n;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void remote_change(void **state, int writeback)
{
    ctx *c = *state;
    char path[4096], p2[4096], p3[4096], buf[256], err[256];
    struct stat st;
    if (!c)
        skip(); /* needs root and /dev/fuse */

    mfs_fs_config fcfg;
    mfs_fs_config_default(&fcfg);
    fcfg.entry_timeout = 3600; /* only invalidation can refresh them */
    fcfg.attr_timeout = 3600;
    fcfg.fsname = c->dir_a;
    fcfg.writeback_cache = writeback;
    assert_int_equal(mfs_fs_init(&c->fs, c->a, &fcfg, err, sizeof err), 0);
    c->fs_inited = 1;
    assert_int_equal(mfs_fs_mount(&c->fs, c->mnt, err, sizeof err), 0);
    c->mounted = 1;
    assert_int_equal(pthread_create(&c->loop, NULL, loop_main, c), 0);
    c->loop_started = 1;

    snprintf(path, sizeof path, "%s/f", c->mnt);
    snprintf(p2, sizeof p2, "%s/new", c->mnt);
    snprintf(p3, sizeof p3, "%s/gone", c->mnt);
    write_file(path, "old content");
    write_file(p3, "to be removed");
    assert_int_equal(read_file(path, buf, sizeof buf), 11);
    assert_string_equal(buf, "old content");
    assert_int_equal(stat(p2, &st), -1); /* cached as absent */
    assert_int_equal(errno, ENOENT);
    assert_int_equal(stat(p3, &st), 0);

    /* B gets A's state, changes it; A applies B's ops and chunks */
    ops_a_to_b_and_back(c->a, c->b);
    mfs_attr fa, na;
    assert_int_equal(mfs_store_lookup(c->b, MFS_ROOT_INO, "f", &fa), 0);
    const char *nc = "new content from B";
    assert_int_equal(mfs_store_write(c->b, fa.ino, 0, nc, strlen(nc)),
                     (ssize_t)strlen(nc));
    assert_int_equal(mfs_store_publish(c->b, fa.ino), 0);
    assert_int_equal(mfs_store_mknod(c->b, MFS_ROOT_INO, "new", S_IFREG | 0644,
                                     0, 0, 0, &na),
                     0);
    assert_int_equal(mfs_store_unlink(c->b, MFS_ROOT_INO, "gone"), 0);
    ops_a_to_b_and_back(c->b, c->a);

    /* the kernel must drop what it cached: poll with a deadline */
    int64_t deadline = now_ms() + 10000;
    int content_ok = 0, new_ok = 0, gone_ok = 0;
    while (now_ms() < deadline && !(content_ok && new_ok && gone_ok)) {
        content_ok = read_file(path, buf, sizeof buf) == (int)strlen(nc) &&
                     strcmp(buf, nc) == 0;
        new_ok = stat(p2, &st) == 0;
        gone_ok = stat(p3, &st) < 0 && errno == ENOENT;
        if (!(content_ok && new_ok && gone_ok)) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    assert_true(content_ok);
    assert_true(new_ok);
    assert_true(gone_ok);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, (off_t)strlen(nc));
}

static void test_remote_change_invalidates(void **state)
{
    remote_change(state, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_remote_change_invalidates, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
