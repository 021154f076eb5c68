/*
 * test_store_enospc.c - a full disk (P2, P14): the store sits on a 4 MiB
 * tmpfs, files are written and fsync'd until the filesystem is full. Every
 * call then fails with -ENOSPC (never another error, never a crash); the
 * store closes, reopens read-only on the full disk with everything fsync
 * acknowledged intact, and after space is freed reopens read-write and
 * accepts writes again. Needs root for mount(2); skips with the reason
 * otherwise. The tmpfs is unmounted on every path (teardown).
 *
 * test_trash_share: the trash takes at most its share of the file system
 * (issue 10): on a 32 MiB tmpfs with a share of 10%, a 1 MiB file
 * overwritten 8 times with a retention of an hour keeps only the newest
 * overwritten versions that fit in 3.2 MiB; the oldest go first.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"
#include "testutil.h"

typedef struct fx {
    char *mnt;
    int mounted;
    mfs_store *s;
    char store_dir[512];
    char ballast[512];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    f->mnt = mfs_test_mkdtemp("enospc");
    *state = f;
    if (mount("tmpfs", f->mnt, "tmpfs", 0, "size=4m,mode=0700") == 0)
        f->mounted = 1;
    else
        fprintf(stderr, "test_store_enospc: cannot mount a tmpfs on %s: %s\n",
                f->mnt, strerror(errno));
    snprintf(f->store_dir, sizeof(f->store_dir), "%s/store", f->mnt);
    snprintf(f->ballast, sizeof(f->ballast), "%s/ballast", f->mnt);
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    mfs_store_close(f->s);
    if (f->mounted && umount2(f->mnt, MNT_DETACH))
        fprintf(stderr, "umount %s: %s\n", f->mnt, strerror(errno));
    mfs_test_rmdir(f->mnt);
    free(f);
    return 0;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
    mfs_rng r;
    mfs_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) /* (no zero: chunks keep every byte) */
        p[i] = (uint8_t)(mfs_rng_next(&r) % 255 + 1);
}

#define BLK 65536

static int open_at(fx *f, unsigned flags)
{
    mfs_store_config cfg;
    mfs_store_config_default(&cfg);
    cfg.new_mesh = 1;
    cfg.map_size = 1 << 20; /* grows on demand: growth itself hits the wall */
    return mfs_store_open(&f->s, f->store_dir, &cfg, flags);
}

static void verify(fx *f, int acked)
{
    static uint8_t want[BLK], got[BLK];
    for (int i = 0; i < acked; i++) {
        char name[32];
        snprintf(name, sizeof(name), "f%04d", i);
        mfs_attr a;
        int rc = mfs_store_lookup(f->s, MFS_ROOT_INO, name, &a);
        if (rc)
            print_error("acknowledged %s missing after reopen: %d\n", name, rc);
        assert_int_equal(rc, 0);
        assert_int_equal(a.size, BLK);
        fill(want, BLK, (uint64_t)i + 1);
        assert_int_equal(mfs_store_read(f->s, a.ino, 0, got, BLK), BLK);
        if (memcmp(want, got, BLK))
            fail_msg("acknowledged %s has other bytes after reopen", name);
    }
}

static void test_enospc(void **state)
{
    fx *f = *state;
    if (geteuid() != 0 || !f->mounted) {
        print_message("skipped: needs root and mount(2) of a tmpfs\n");
        skip();
    }
    /* 512 KiB ballast, freed later to let the store recover */
    static uint8_t buf[BLK];
    FILE *b = fopen(f->ballast, "wb");
    assert_non_null(b);
    for (int i = 0; i < 8; i++) {
        fill(buf, BLK, 999 + (uint64_t)i);
        assert_int_equal(fwrite(buf, 1, BLK, b), BLK);
    }
    assert_int_equal(fclose(b), 0);
    assert_int_equal(mkdir(f->store_dir, 0700), 0);
    int rc = open_at(f, MFS_STORE_CREATE);
    assert_int_equal(rc, 0);

    int acked = 0, err = 0;
    const char *where = "";
    for (int i = 0; i < 200 && !err; i++) {
        char name[32];
        snprintf(name, sizeof(name), "f%04d", i);
        mfs_attr a;
        rc = mfs_store_mknod(f->s, MFS_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0,
                             &a);
        if (rc) {
            err = rc;
            where = "mknod";
            break;
        }
        fill(buf, BLK, (uint64_t)i + 1); /* distinct: no dedup */
        ssize_t n = mfs_store_write(f->s, a.ino, 0, buf, BLK);
        if (n != BLK) {
            err = (int)n;
            where = "write";
            break;
        }
        rc = mfs_store_fsync(f->s, a.ino);
        if (rc) {
            err = rc;
            where = "fsync";
            break;
        }
        acked++;
    }
    if (err != -ENOSPC)
        print_error("after %d acknowledged 64 KiB files the first error was "
                    "%d from %s, want -ENOSPC (%d)\n",
                    acked, err, where, -ENOSPC);
    assert_int_equal(err, -ENOSPC);
    assert_true(acked > 5);  /* the ballast leaves ~3.5 MiB */
    assert_true(acked < 60); /* and the disk really was full */

    /* More calls on the full disk: -ENOSPC or success, nothing else. */
    for (int i = 0; i < 20; i++) {
        mfs_attr a;
        char name[32];
        snprintf(name, sizeof(name), "late%02d", i);
        rc = mfs_store_mknod(f->s, MFS_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0,
                             &a);
        if (rc == 0) {
            fill(buf, BLK, 5000 + (uint64_t)i);
            ssize_t n = mfs_store_write(f->s, a.ino, 0, buf, BLK);
            assert_true(n == BLK || n == -ENOSPC);
            rc = mfs_store_fsync(f->s, a.ino);
        }
        if (rc != 0 && rc != -ENOSPC)
            print_error("on a full disk: %d\n", rc);
        assert_true(rc == 0 || rc == -ENOSPC);
    }
    /* reads still work */
    verify(f, acked);
    mfs_store_close(f->s);
    f->s = NULL;

    /* reopen on the still full disk: read-only must work */
    rc = open_at(f, MFS_STORE_RDONLY);
    if (rc)
        print_error("read-only reopen on a full disk: %d (%s)\n", rc,
                    mfs_store_strerror(rc));
    assert_int_equal(rc, 0);
    verify(f, acked);
    mfs_store_close(f->s);
    f->s = NULL;

    /* free the ballast: read-write again, intact, and writable */
    assert_int_equal(unlink(f->ballast), 0);
    rc = open_at(f, 0);
    if (rc)
        print_error("reopen after freeing space: %d (%s)\n", rc,
                    mfs_store_strerror(rc));
    assert_int_equal(rc, 0);
    verify(f, acked);
    mfs_attr a;
    assert_int_equal(mfs_store_mknod(f->s, MFS_ROOT_INO, "after",
                                     S_IFREG | 0644, 0, 0, 0, &a),
                     0);
    fill(buf, BLK, 4242);
    assert_int_equal(mfs_store_write(f->s, a.ino, 0, buf, BLK), BLK);
    assert_int_equal(mfs_store_fsync(f->s, a.ino), 0);
    mfs_store_close(f->s);
    f->s = NULL;
    assert_int_equal(open_at(f, 0), 0);
    verify(f, acked);
    assert_int_equal(mfs_store_lookup(f->s, MFS_ROOT_INO, "after", &a), 0);
    assert_int_equal(a.size, BLK);
}

static uint64_t clock_fn(void *arg)
{
    return *(uint64_t *)arg;
}

static int setup_share(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    f->mnt = mfs_test_mkdtemp("share");
    *state = f;
    if (mount("tmpfs", f->mnt, "tmpfs", 0, "size=32m,mode=0700") == 0)
        f->mounted = 1;
    snprintf(f->store_dir, sizeof(f->store_dir), "%s/store", f->mnt);
    return 0;
}

static uint64_t held_bytes(mfs_store *s)
{
    mfs_store_stats st;
    assert_int_equal(mfs_store_stats_get(s, &st), 0);
    return st.chunk_bytes;
}

/* Every op of `from` that `to` lacks, applied to `to`. */
static void sync_ops(mfs_store *from, mfs_store *to)
{
    static uint8_t buf[4 << 20];
    for (int guard = 0; guard < 100; guard++) {
        mfs_vv vv;
        assert_int_equal(mfs_store_vv(to, &vv), 0);
        ssize_t n = mfs_store_ops_since(from, &vv, buf, sizeof buf);
        mfs_vv_free(&vv);
        assert_true(n >= 0);
        if (n == 0)
            return;
        mfs_apply_result res = {0};
        assert_int_equal(mfs_store_apply(to, buf, (size_t)n, &res), 0);
        if (!res.applied)
            return;
    }
}

/* The chunks `to` wants, from `from`. */
static void sync_chunks(mfs_store *from, mfs_store *to)
{
    static uint8_t hashes[64 * MFS_HASH_LEN];
    static uint8_t data[MFS_CHUNK_SIZE];
    ssize_t n = mfs_store_chunks_wanted(to, hashes, 64);
    assert_true(n >= 0);
    for (ssize_t i = 0; i < n; i++) {
        const uint8_t *h = hashes + i * MFS_HASH_LEN;
        ssize_t len = mfs_store_chunk_get(from, h, data, sizeof(data));
        assert_true(len >= 0);
        assert_int_equal(mfs_store_chunk_put(to, h, data, (size_t)len), 0);
    }
}

static void settle(mfs_store *s)
{
    mfs_vv vv;
    assert_int_equal(mfs_store_vv(s, &vv), 0);
    mfs_store_collect_settled(s, &vv);
    mfs_vv_free(&vv);
}

typedef struct trash_set {
    uint64_t hlc[64];
    size_t n;
} trash_set;

static int trash_one(void *arg, const mfs_trash_item *it)
{
    trash_set *t = arg;
    if (t->n < 64)
        t->hlc[t->n++] = it->version.hlc;
    return 0;
}

static trash_set trash_of(mfs_store *s)
{
    trash_set t = {.n = 0};
    assert_int_equal(mfs_store_trash_list(s, trash_one, &t), 0);
    for (size_t i = 1; i < t.n; i++) /* sorted, to compare */
        for (size_t j = i; j > 0 && t.hlc[j - 1] > t.hlc[j]; j--) {
            uint64_t x = t.hlc[j];
            t.hlc[j] = t.hlc[j - 1];
            t.hlc[j - 1] = x;
        }
    return t;
}

static void test_trash_share(void **state)
{
    fx *f = *state;
    if (geteuid() != 0 || !f->mounted) {
        print_message("skipped: needs root and mount(2) of a tmpfs\n");
        skip();
    }
    uint64_t now = 1700000000000ull;
    mfs_store_config cfg;
    mfs_store_config_default(&cfg);
    cfg.new_mesh = 1;
    cfg.clock_ms = clock_fn;
    cfg.clock_arg = &now;
    assert_int_equal(mfs_store_open(&f->s, f->store_dir, &cfg,
                                     MFS_STORE_CREATE),
                     0);
    mfs_collect_config cc = {.retention_ms = 3600 * 1000, .share_pct = 10};
    mfs_store_collect_set(f->s, &cc);
    mfs_attr a;
    assert_int_equal(mfs_store_mknod(f->s, MFS_ROOT_INO, "f", S_IFREG | 0644,
                                     0, 0, 0, &a),
                     0);
    static uint8_t buf[1 << 20];
    for (int i = 0; i < 9; i++) {
        fill(buf, sizeof buf, 100 + (uint64_t)i);
        assert_int_equal(mfs_store_write(f->s, a.ino, 0, buf, sizeof buf),
                         (ssize_t)sizeof buf);
        assert_int_equal(mfs_store_publish(f->s, a.ino), 0);
        now += 1000;
    }
    assert_int_equal(held_bytes(f->s), 9u << 20);
    settle(f->s);
    /* a second member on a roomy disk (the test's temp dir): its trash
     * must follow the smallest share in the mesh, A's */
    char *bdir = mfs_test_mkdtemp("share-b");
    mfs_store *b = NULL;
    mfs_store_config bcfg = cfg;
    bcfg.new_mesh = 0;
    assert_int_equal(mfs_store_open(&b, bdir, &bcfg, MFS_STORE_CREATE), 0);
    mfs_store_collect_set(b, &cc);
    sync_ops(f->s, b);
    sync_chunks(f->s, b);
    settle(b);
    now += 5000; /* past the grace, far from the retention's end */
    /* a share of 100%: no bound, nothing goes before its time */
    cc.share_pct = 100;
    mfs_store_collect_set(f->s, &cc);
    mfs_collect_stats cs;
    assert_int_equal(mfs_store_collect_now(f->s, &cs), 0);
    assert_int_equal(cs.versions, 0);
    /* 10% of 32 MiB: the trash keeps what fits in 3.2 MiB, newest first */
    cc.share_pct = 10;
    mfs_store_collect_set(f->s, &cc);
    assert_int_equal(mfs_store_collect_now(f->s, &cs), 0);
    uint64_t held = held_bytes(f->s);
    print_message("trash over its share by %llu bytes; %llu versions went "
                  "early; %llu bytes held\n",
                  (unsigned long long)cs.trash_over,
                  (unsigned long long)cs.early, (unsigned long long)held);
    assert_true(cs.trash_over > (4u << 20));
    assert_int_equal(cs.early, 5); /* 4.8 MiB over, and 5% of the share */
    assert_true(held <= (1u << 20) + (32u << 20) / 10);
    assert_true(held >= 3u << 20); /* the newest overwritten ones stay */
    /* the current version reads whole */
    static uint8_t got[1 << 20];
    fill(buf, sizeof buf, 108);
    assert_int_equal(mfs_store_read(f->s, a.ino, 0, got, sizeof got),
                     (ssize_t)sizeof got);
    assert_memory_equal(got, buf, sizeof got);
    /* the newest overwritten version is still in the trash */
    assert_int_equal(mfs_store_collect_now(f->s, &cs), 0);
    assert_int_equal(cs.early, 0);
    trash_set ta = trash_of(f->s);
    assert_int_equal(ta.n, 8 - 5); /* 8 overwritten, the oldest 5 gone */
    /* B, far from its own share, frees the same ones once A's floor
     * reaches it, and keeps the same trash (before: B kept all 8) */
    trash_set tb = trash_of(b);
    assert_int_equal(tb.n, 8);
    assert_int_equal(mfs_store_collect_now(b, &cs), 0);
    assert_int_equal(cs.early, 0);
    assert_int_equal(cs.trash_over, 0);
    sync_ops(f->s, b);
    settle(b);
    assert_int_equal(mfs_store_collect_now(b, &cs), 0);
    assert_int_equal(cs.early, 5);
    tb = trash_of(b);
    assert_int_equal(tb.n, ta.n);
    assert_memory_equal(tb.hlc, ta.hlc, ta.n * sizeof(ta.hlc[0]));
    mfs_store_close(b);
    mfs_test_rmdir(bdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enospc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trash_share, setup_share,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
