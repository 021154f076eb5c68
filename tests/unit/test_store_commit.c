/*
 * test_store_commit.c - group commit and the dirty environment (txn.c,
 * dirty.c), as a daemon runs them (commit_window_us > 0):
 *  - a change is visible to every thread at once, to another process once
 *    committed (mfs_store_commit), and a failed call changes nothing;
 *  - a process that dies without closing the store (a kill -9) loses
 *    nothing it committed, unpublished blocks included (same boot);
 *  - after a reboot (another boot id) the unpublished blocks are dropped
 *    whole and each file shows its last published version;
 *  - the durable vector (what a node reports for collection) covers a
 *    change only once the commit that holds it is synced: by a durable
 *    commit at once, or by the commit thread once the store is idle;
 *  - fsync is durable through the intent log before LMDB commits.
 * Child processes stand in for the daemon that dies; each one exits with
 * 0 for success or the line of the first failed check.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"
#include "testutil.h"

#define WINDOW_US 20000u /* long enough that nothing commits by itself */

static mfs_store *open_store(const char *dir, unsigned window, unsigned fl)
{
    mfs_store_config cfg;
    mfs_store_config_default(&cfg);
    cfg.commit_window_us = window;
    mfs_store *s = NULL;
    int rc = mfs_store_open(&s, dir, &cfg, fl);
    return rc ? NULL : s;
}

/* In a child: exit with the line number when cond fails. */
#define CHILD_CHECK(cond)                                                      \
    do {                                                                       \
        if (!(cond))                                                           \
            _exit(__LINE__ & 0xff ? __LINE__ & 0xff : 1);                      \
    } while (0)

static int run_child(void (*fn)(const char *dir), const char *dir)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        fn(dir);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* In a child: looks name up in what dir's store committed. */
static int committed_lookup(const char *dir, const char *name)
{
    mfs_store *s = open_store(dir, 0, MFS_STORE_RDONLY);
    CHILD_CHECK(s);
    mfs_attr a;
    int rc = mfs_store_lookup(s, MFS_ROOT_INO, name, &a);
    mfs_store_close(s);
    return rc;
}

/* Another process sees a change only once it is committed. */
static void child_reads_committed(const char *dir)
{
    _exit(committed_lookup(dir, "visible") == 0 ? 0 : 100);
}

static void test_visibility(void **state)
{
    char *dir = mfs_test_mkdtemp("commit-vis");
    mfs_store *s = open_store(dir, WINDOW_US, MFS_STORE_CREATE);
    assert_non_null(s);
    mfs_attr a, b;
    assert_int_equal(
        mfs_store_mknod(s, MFS_ROOT_INO, "visible", 0100644, 0, 0, 0, &a), 0);
    /* this process sees it at once, committed or not */
    assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "visible", &b), 0);
    assert_int_equal(b.ino, a.ino);
    /* a failed call leaves the group as it was */
    assert_int_equal(
        mfs_store_mknod(s, MFS_ROOT_INO, "visible", 0100644, 0, 0, 0, &b),
        -EEXIST);
    assert_int_equal(mfs_store_commit(s, 0), 0);
    assert_int_equal(run_child(child_reads_committed, dir), 0);
    assert_int_equal(mfs_store_commit(s, 1), 0);
    mfs_store_close(s);
    mfs_test_rmdir(dir);
}

/* `meshfs stat`'s counts (mfs_store_stats_get) and conflict list show
 * what the group holds without committing it: a commit is a disk flush
 * that writers and replication wait for (issue 11: stat "never stalls
 * replication"). The child, another process, sees only what was
 * committed: before this, stats_get committed the group and it saw the
 * file. */
static void child_sees_nothing(const char *dir)
{
    _exit(committed_lookup(dir, "uncommitted") == -ENOENT ? 0 : 100);
}

static void count_line(void *arg, const char *path)
{
    (void)path;
    (*(int *)arg)++;
}

static void test_stats_do_not_commit(void **state)
{
    char *dir = mfs_test_mkdtemp("commit-stat");
    /* a window no test run outlasts: only a caller commits */
    mfs_store *s = open_store(dir, 30000000u, MFS_STORE_CREATE);
    assert_non_null(s);
    assert_int_equal(mfs_store_commit(s, 1), 0);
    mfs_store_stats st0, st1;
    assert_int_equal(mfs_store_stats_get(s, &st0), 0);
    mfs_attr a;
    assert_int_equal(
        mfs_store_mknod(s, MFS_ROOT_INO, "uncommitted", 0100644, 0, 0, 0, &a),
        0);
    assert_int_equal(mfs_store_stats_get(s, &st1), 0);
    assert_int_equal(st1.files, st0.files + 1); /* the group's change counts */
    assert_true(st1.local_seq > st0.local_seq);
    assert_true(st1.used_bytes > 0);
    int n = 0;
    assert_true(mfs_store_conflicts(s, count_line, &n, 100) >= 0);
    assert_int_equal(n, 0);
    assert_int_equal(run_child(child_sees_nothing, dir), 0);
    assert_int_equal(mfs_store_commit(s, 1), 0);
    assert_int_equal(run_child(child_sees_nothing, dir), 100);
    mfs_store_close(s);
    mfs_test_rmdir(dir);
}

/* An idle store is not written to: a collection pass that finds nothing
 * to do commits nothing (before, each pass's steps joined the group and
 * the commit thread committed it and synced its meta page: two
 * fdatasyncs a second from an idle daemon). Work it does find still
 * commits. */
static void test_idle_collection_commits_nothing(void **state)
{
    char *dir = mfs_test_mkdtemp("commit-idle");
    mfs_store_config cfg;
    mfs_store_config_default(&cfg);
    cfg.commit_window_us = 2000u;
    cfg.new_mesh = 1; /* it has reached its mesh: collection may run */
    mfs_store *s = NULL;
    assert_int_equal(mfs_store_open(&s, dir, &cfg, MFS_STORE_CREATE), 0);
    mfs_collect_config cc = {.retention_ms = 0, .alone = 1};
    mfs_store_collect_set(s, &cc);
    mfs_attr a;
    assert_int_equal(
        mfs_store_mknod(s, MFS_ROOT_INO, "gone", 0100644, 0, 0, 0, &a), 0);
    static char big[3 * MFS_CHUNK_SIZE / 2];
    memset(big, 'g', sizeof big);
    assert_int_equal(mfs_store_write(s, a.ino, 0, big, sizeof big),
                     (ssize_t)sizeof big);
    assert_int_equal(mfs_store_publish(s, a.ino), 0);
    assert_int_equal(mfs_store_unlink(s, MFS_ROOT_INO, "gone"), 0);
    assert_int_equal(mfs_store_commit(s, 1), 0);
    /* passes until one finds nothing: the file's content and tombstone
     * go, the op log folds */
    mfs_collect_stats cs;
    mfs_store_stats st;
    uint64_t before = 0;
    int quiet = 0;
    struct timespec grace = {1, 200 * 1000 * 1000}; /* collect.c GRACE_MS */
    nanosleep(&grace, NULL);
    for (int i = 0; i < 40 && quiet < 3; i++) {
        assert_int_equal(mfs_store_collect_now(s, &cs), 0);
        assert_int_equal(mfs_store_commit(s, 0), 0);
        assert_int_equal(mfs_store_stats_get(s, &st), 0);
        quiet = st.commits == before ? quiet + 1 : 0;
        before = st.commits;
    }
    assert_int_equal(quiet, 3); /* three passes in a row committed nothing */
    assert_int_equal(st.chunks, 0);
    /* new work commits again */
    assert_int_equal(
        mfs_store_mknod(s, MFS_ROOT_INO, "next", 0100644, 0, 0, 0, &a), 0);
    assert_int_equal(mfs_store_commit(s, 0), 0);
    assert_int_equal(mfs_store_stats_get(s, &st), 0);
    assert_true(st.commits > before);
    mfs_store_close(s);
    mfs_test_rmdir(dir);
}

/* A file written in order (so cut and stored as it was written, a
 * stream) and unlinked before it was ever published: when the kernel
 * forgets it, the next collection pass frees its chunks. They stayed
 * until some version was collected or the store was opened again
 * (tests/system/fs_writebehind found 126 MiB kept after a delete). So
 * did a truncate into them. */
static void test_unpublished_stream_freed(void **state)
{
    char *dir = mfs_test_mkdtemp("commit-unpub");
    mfs_store_config cfg;
    mfs_store_config_default(&cfg);
    cfg.new_mesh = 1;
    mfs_store *s = NULL;
    assert_int_equal(mfs_store_open(&s, dir, &cfg, MFS_STORE_CREATE), 0);
    mfs_collect_config cc = {.retention_ms = 0, .alone = 1};
    mfs_store_collect_set(s, &cc);
    mfs_collect_stats cs;
    assert_int_equal(mfs_store_collect_now(s, &cs), 0); /* (the first sweep) */
    mfs_attr a;
    assert_int_equal(
        mfs_store_mknod(s, MFS_ROOT_INO, "tmp", 0100644, 0, 0, 0, &a), 0);
    static uint8_t buf[1 << 20];
    mfs_rng r;
    mfs_rng_seed(&r, 5);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)mfs_rng_next(&r);
    for (int i = 0; i < 4; i++)
        assert_int_equal(
            mfs_store_write(s, a.ino, (uint64_t)i * sizeof buf, buf, sizeof buf),
            (ssize_t)sizeof buf);
    mfs_store_stats st;
    assert_int_equal(mfs_store_stats_get(s, &st), 0);
    assert_true(st.chunk_bytes > (1u << 20)); /* (the same MiB four times) */
    assert_int_equal(mfs_store_unlink(s, MFS_ROOT_INO, "tmp"), 0);
    mfs_store_forget(s, a.ino);
    assert_int_equal(mfs_store_collect_now(s, &cs), 0);
    assert_int_equal(mfs_store_stats_get(s, &st), 0);
    assert_int_equal(st.chunk_bytes, 0);
    assert_int_equal(st.chunks, 0);
    /* the same for a truncate into unpublished stream chunks: 4 MiB of
     * distinct bytes cut to 1 MiB keep at most that (before: all 4) */
    assert_int_equal(
        mfs_store_mknod(s, MFS_ROOT_INO, "cut", 0100644, 0, 0, 0, &a), 0);
    for (int i = 0; i < 4; i++) {
        for (size_t k = 0; k < sizeof buf; k++)
            buf[k] = (uint8_t)mfs_rng_next(&r);
        assert_int_equal(
            mfs_store_write(s, a.ino, (uint64_t)i * sizeof buf, buf, sizeof buf),
            (ssize_t)sizeof buf);
    }
    assert_int_equal(mfs_store_stats_get(s, &st), 0);
    assert_true(st.chunk_bytes > (3u << 20));
    mfs_setattr sa;
    memset(&sa, 0, sizeof sa);
    sa.mask = MFS_SET_SIZE;
    sa.size = 1u << 20;
    assert_int_equal(mfs_store_setattr(s, a.ino, &sa, &a), 0);
    assert_int_equal(mfs_store_collect_now(s, &cs), 0);
    assert_int_equal(mfs_store_stats_get(s, &st), 0);
    assert_true(st.chunk_bytes <= (1u << 20));
    mfs_store_close(s);
    mfs_test_rmdir(dir);
}

/* A daemon that writes, commits, and dies without closing anything. */
static void child_dies(const char *dir)
{
    mfs_store *s = open_store(dir, WINDOW_US, 0);
    CHILD_CHECK(s);
    mfs_attr a, b;
    CHILD_CHECK(
        mfs_store_mknod(s, MFS_ROOT_INO, "closed", 0100644, 0, 0, 0, &a) == 0);
    CHILD_CHECK(mfs_store_write(s, a.ino, 0, "published", 9) == 9);
    CHILD_CHECK(mfs_store_publish(s, a.ino) == 0);
    CHILD_CHECK(
        mfs_store_mknod(s, MFS_ROOT_INO, "open", 0100644, 0, 0, 0, &b) == 0);
    CHILD_CHECK(mfs_store_write(s, b.ino, 0, "first", 5) == 5);
    CHILD_CHECK(mfs_store_publish(s, b.ino) == 0);
    CHILD_CHECK(mfs_store_write(s, b.ino, 0, "SECOND-unpublished", 18) == 18);
    /* whole blocks, unpublished: chunks and references in the main store */
    mfs_attr w;
    CHILD_CHECK(
        mfs_store_mknod(s, MFS_ROOT_INO, "whole", 0100644, 0, 0, 0, &w) == 0);
    CHILD_CHECK(mfs_store_write(s, w.ino, 0, "first", 5) == 5);
    CHILD_CHECK(mfs_store_publish(s, w.ino) == 0);
    static char big[2 * MFS_CHUNK_SIZE];
    memset(big, 'W', sizeof big);
    CHILD_CHECK(mfs_store_write(s, w.ino, 0, big, sizeof big) ==
                (ssize_t)sizeof big);
    CHILD_CHECK(mfs_store_commit(s, 0) == 0);
    /* and one more change that never commits: lost with the process */
    mfs_attr c;
    CHILD_CHECK(mfs_store_mknod(s, MFS_ROOT_INO, "uncommitted", 0100644, 0, 0,
                                0, &c) == 0);
    _exit(0); /* no close, no final commit: as a kill -9 */
}

static void read_file(mfs_store *s, const char *name, char *buf, size_t cap,
                      ssize_t *len)
{
    mfs_attr a;
    assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, name, &a), 0);
    *len = mfs_store_read(s, a.ino, 0, buf, cap);
}

static void test_kill_then_reboot(void **state)
{
    char *dir = mfs_test_mkdtemp("commit-kill");
    mfs_store *s = open_store(dir, WINDOW_US, MFS_STORE_CREATE);
    assert_non_null(s);
    mfs_store_close(s);
    assert_int_equal(run_child(child_dies, dir), 0);

    /* same boot: everything committed is back, unpublished blocks too */
    s = open_store(dir, WINDOW_US, 0);
    assert_non_null(s);
    char buf[64];
    ssize_t n;
    read_file(s, "closed", buf, sizeof buf, &n);
    assert_int_equal(n, 9);
    assert_memory_equal(buf, "published", 9);
    read_file(s, "open", buf, sizeof buf, &n);
    assert_int_equal(n, 18);
    assert_memory_equal(buf, "SECOND-unpublished", 18);
    static char big[2 * MFS_CHUNK_SIZE + 1];
    read_file(s, "whole", big, sizeof big, &n);
    assert_int_equal(n, 2 * MFS_CHUNK_SIZE);
    assert_true(big[0] == 'W' && big[n - 1] == 'W');
    mfs_attr a;
    assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "uncommitted", &a),
                     -ENOENT);
    mfs_store_close(s);

    /* another boot: the dirty environment may be torn, so it is dropped
     * and "open" shows its last published version */
    char path[1024];
    snprintf(path, sizeof path, "%s/dirty/boot", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("00000000-0000-0000-0000-000000000000\n", f);
    fclose(f);
    s = open_store(dir, WINDOW_US, 0);
    assert_non_null(s);
    read_file(s, "open", buf, sizeof buf, &n);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "first", 5);
    read_file(s, "closed", buf, sizeof buf, &n);
    assert_int_equal(n, 9);
    mfs_file_info fi;
    assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "open", &a), 0);
    assert_int_equal(mfs_store_file_info(s, a.ino, &fi, NULL, 0), 0);
    assert_int_equal(fi.dirty, 0);
    /* and it takes writes again */
    assert_int_equal(mfs_store_write(s, a.ino, 5, "+more", 5), 5);
    read_file(s, "open", buf, sizeof buf, &n);
    assert_int_equal(n, 10);
    assert_memory_equal(buf, "first+more", 10);
    /* the whole blocks went with the boot, references too: growing the
     * file shows zeros, not them */
    assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "whole", &a), 0);
    assert_int_equal(mfs_store_write(s, a.ino, 2 * MFS_CHUNK_SIZE - 1, "e", 1),
                     1);
    memset(big, 0x55, sizeof big);
    read_file(s, "whole", big, sizeof big, &n);
    assert_int_equal(n, 2 * MFS_CHUNK_SIZE);
    assert_memory_equal(big, "first", 5);
    for (ssize_t i = 5; i < n - 1; i++)
        if (big[i] != 0)
            fail_msg("byte %zd of \"whole\" is %#x after the reboot", i,
                     (unsigned)(unsigned char)big[i]);
    assert_int_equal(big[n - 1], 'e');
    mfs_store_close(s);
    mfs_test_rmdir(dir);
}

static uint64_t own_seq(const mfs_vv *v, uint64_t node)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->e[i].node == node)
            return v->e[i].seq;
    return 0;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_durable_vector(void **state)
{
    (void)state;
    char *dir = mfs_test_mkdtemp("durvv");
    mfs_store *s = open_store(dir, 2000, MFS_STORE_CREATE);
    assert_non_null(s);
    uint64_t node = mfs_store_node_id(s);
    mfs_vv v, d;
    mfs_attr a;
    /* a committed change is not durable until its meta page is synced */
    assert_int_equal(mfs_store_mknod(s, MFS_ROOT_INO, "a", S_IFREG | 0644, 0,
                                     0, 0, &a),
                     0);
    uint64_t t0 = mono_ms();
    assert_int_equal(mfs_store_commit(s, 0), 0);
    assert_int_equal(mfs_store_vv(s, &v), 0);
    assert_int_equal(mfs_store_vv_durable(s, &d), 0);
    uint64_t seq = own_seq(&v, node);
    assert_true(seq > 0);
    if (mono_ms() - t0 < 10) /* (else the idle sync may have run) */
        assert_true(own_seq(&d, node) < seq);
    mfs_vv_free(&v);
    mfs_vv_free(&d);
    /* the commit thread syncs it once the store is idle */
    uint64_t waited = 0;
    for (;;) {
        assert_int_equal(mfs_store_vv_durable(s, &d), 0);
        uint64_t got = own_seq(&d, node);
        mfs_vv_free(&d);
        if (got >= seq)
            break;
        assert_true(waited < 2000);
        usleep(1000);
        waited = mono_ms() - t0;
    }
    print_message("durable %llu ms after the commit\n",
                  (unsigned long long)(mono_ms() - t0));
    /* a durable commit makes it durable at once */
    assert_int_equal(mfs_store_mknod(s, MFS_ROOT_INO, "b", S_IFREG | 0644, 0,
                                     0, 0, &a),
                     0);
    assert_int_equal(mfs_store_commit(s, 1), 0);
    assert_int_equal(mfs_store_vv(s, &v), 0);
    assert_int_equal(mfs_store_vv_durable(s, &d), 0);
    assert_int_equal(own_seq(&d, node), own_seq(&v, node));
    mfs_vv_free(&v);
    mfs_vv_free(&d);
    mfs_store_close(s);
    mfs_test_rmdir(dir);
}

static int told;

static void count_told(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&told, 1, __ATOMIC_SEQ_CST);
}

/* Ops of `from` that `to` lacks, applied to `to`. */
static void copy_ops(mfs_store *from, mfs_store *to)
{
    static uint8_t buf[1 << 20];
    mfs_vv vv;
    assert_int_equal(mfs_store_vv(to, &vv), 0);
    ssize_t n = mfs_store_ops_since(from, &vv, buf, sizeof buf);
    mfs_vv_free(&vv);
    assert_true(n > 0);
    mfs_apply_result res = {0};
    assert_int_equal(mfs_store_apply(to, buf, (size_t)n, &res), 0);
    assert_true(res.applied > 0);
}

/* Does s hold origin's ops up to seq (whose hlc is hlc) durably and whole,
 * by what mfs_store_vv_held says? */
static bool holds(mfs_store *s, uint64_t origin, uint64_t seq, uint64_t hlc)
{
    mfs_vv d, w;
    assert_int_equal(mfs_store_vv_held(s, &d, &w), 0);
    uint64_t cut = mfs_vv_get(&w, origin);
    bool r = mfs_vv_get(&d, origin) >= seq && (cut == 0 || cut > hlc);
    mfs_vv_free(&d);
    mfs_vv_free(&w);
    return r;
}

/* The write concern's vector (mfs_store_vv_held): of what is durable
 * only, and each origin cut below a version that still waits for a chunk;
 * it grows when the chunk comes and a sync follows. */
static void test_held_vector(void **state)
{
    (void)state;
    char *da = mfs_test_mkdtemp("helda"), *db = mfs_test_mkdtemp("heldb");
    mfs_store *a = open_store(da, 0, MFS_STORE_CREATE); /* no group commit */
    mfs_store_config cfg;
    mfs_store_config_default(&cfg);
    cfg.commit_window_us = cfg.commit_idle_us = 30000000u; /* never alone */
    cfg.new_mesh = 0;
    mfs_store *b = NULL;
    assert_int_equal(mfs_store_open(&b, db, &cfg, MFS_STORE_CREATE), 0);
    uint64_t na = mfs_store_node_id(a);
    mfs_vv d, w, v;
    /* asked for once (idle, everything durable): at once */
    assert_int_equal(mfs_store_vv_held(b, &d, &w), 0);
    mfs_vv_free(&d);
    mfs_vv_free(&w);
    /* a file of two chunks on A; B gets its ops, not its chunks */
    mfs_attr at;
    assert_int_equal(
        mfs_store_mknod(a, MFS_ROOT_INO, "f", S_IFREG | 0644, 0, 0, 0, &at), 0);
    assert_int_equal(mfs_store_vv(a, &v), 0);
    uint64_t made = own_seq(&v, na), made_hlc, all_hlc; /* the mknod's ops */
    mfs_vv_free(&v);
    assert_int_equal(mfs_store_op_hlc(a, na, made, &made_hlc), 0);
    size_t len = 2 * MFS_CHUNK_SIZE + 5;
    uint8_t *buf = malloc(len);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 13 + (i >> 9));
    assert_int_equal(mfs_store_write(a, at.ino, 0, buf, len), (ssize_t)len);
    assert_int_equal(mfs_store_publish(a, at.ino), 0);
    copy_ops(a, b);
    assert_int_equal(mfs_store_vv(b, &v), 0);
    uint64_t all = own_seq(&v, na);
    mfs_vv_free(&v);
    assert_true(all > made);
    assert_int_equal(mfs_store_op_hlc(a, na, all, &all_hlc), 0);
    /* applied, not durable: not held */
    assert_false(holds(b, na, made, made_hlc));
    /* durable, but the version waits for its chunks: held up to before it */
    assert_int_equal(mfs_store_commit(b, 1), 0);
    assert_int_equal(mfs_store_vv_durable(b, &v), 0);
    assert_int_equal(own_seq(&v, na), all);
    mfs_vv_free(&v);
    assert_true(holds(b, na, made, made_hlc));
    assert_false(holds(b, na, all, all_hlc));
    /* the chunks come: held once a sync covers them */
    uint8_t want[8 * MFS_HASH_LEN];
    ssize_t nw = mfs_store_chunks_wanted(b, want, 8);
    assert_true(nw > 0);
    uint8_t *chunk = malloc(1 << 20);
    for (ssize_t i = 0; i < nw; i++) {
        const uint8_t *hash = want + i * MFS_HASH_LEN;
        ssize_t got = mfs_store_chunk_get(a, hash, chunk, 1 << 20);
        assert_true(got > 0);
        assert_int_equal(mfs_store_chunk_put(b, hash, chunk, (size_t)got), 0);
    }
    free(chunk);
    assert_int_equal(mfs_store_chunks_wanted_count(b), 0);
    assert_false(holds(b, na, all, all_hlc)); /* (not durable yet) */
    assert_int_equal(mfs_store_commit(b, 1), 0);
    assert_true(holds(b, na, all, all_hlc));
    free(buf);
    mfs_store_close(b);
    mfs_store_close(a);
    mfs_test_rmdir(da);
    mfs_test_rmdir(db);
}

/* Whenever the durable vector grows, the owner hears of it (the oplog
 * callback): its STATE reports that vector to the peers, and collection
 * waits on what they report. Before, only a commit with local ops or an
 * idle sync told it, so ops from a peer made durable by a durable commit
 * that had no local ops (pack.c's, after a sweep freed packs) stayed
 * unreported: the peers counted them as lacking here for good
 * (tests/system/mesh_collect.sh, after a heal, about 1 run in 20). */
static void test_durable_vector_told(void **state)
{
    (void)state;
    char *da = mfs_test_mkdtemp("tolda"), *db = mfs_test_mkdtemp("toldb");
    mfs_store *a = open_store(da, WINDOW_US, MFS_STORE_CREATE);
    assert_non_null(a);
    mfs_store_config cfg;
    mfs_store_config_default(&cfg);
    cfg.new_mesh = 0; /* joins a's mesh */
    mfs_store *b = NULL;
    assert_int_equal(mfs_store_open(&b, db, &cfg, MFS_STORE_CREATE), 0);
    assert_int_equal(mfs_store_commit(a, 1), 0);
    copy_ops(a, b);
    mfs_attr at;
    assert_int_equal(mfs_store_mknod(b, MFS_ROOT_INO, "from-b", S_IFREG | 0644,
                                     0, 0, 0, &at),
                     0);
    uint64_t nb = mfs_store_node_id(b);
    mfs_vv v;
    assert_int_equal(mfs_store_vv(b, &v), 0);
    uint64_t seq_b = own_seq(&v, nb);
    mfs_vv_free(&v);
    mfs_store_set_oplog_cb(a, count_told, NULL);
    copy_ops(b, a); /* remote ops only: no local op in a's group */
    int before = __atomic_load_n(&told, __ATOMIC_SEQ_CST);
    assert_int_equal(mfs_store_commit(a, 1), 0);
    assert_int_equal(mfs_store_vv_durable(a, &v), 0);
    assert_int_equal(own_seq(&v, nb), seq_b); /* durable now */
    mfs_vv_free(&v);
    uint64_t t0 = mono_ms();
    while (__atomic_load_n(&told, __ATOMIC_SEQ_CST) == before &&
           mono_ms() - t0 < 2000)
        usleep(1000);
    if (__atomic_load_n(&told, __ATOMIC_SEQ_CST) == before)
        fail_msg("the durable vector grew and the owner was not told");
    mfs_store_set_oplog_cb(a, NULL, NULL);
    mfs_store_close(b);
    mfs_store_close(a);
    mfs_test_rmdir(db);
    mfs_test_rmdir(da);
}

/* In a child: dir's store under a window no test outlasts, with a new
 * file name in it (*a). A publish's commit waits for 1 ms without a
 * change by default; here for as long as the window: an fsync's flush
 * that took over 1 ms on a busy machine let the commit thread commit
 * between two appends, in all 10 tries of a CI run. */
static mfs_store *child_store(const char *dir, const char *name, mfs_attr *a)
{
    mfs_store_config cfg;
    mfs_store_config_default(&cfg);
    cfg.commit_window_us = cfg.commit_idle_us = 30000000u;
    mfs_store *s = NULL;
    CHILD_CHECK(mfs_store_open(&s, dir, &cfg, 0) == 0);
    CHILD_CHECK(
        mfs_store_mknod(s, MFS_ROOT_INO, name, 0100644, 0, 0, 0, a) == 0);
    return s;
}

/* In a child: a file made, written and fsync'd under a window no test
 * outlasts, then the process dies at once (a kill -9, or a power cut:
 * what LMDB did not commit is gone either way). Exits 0 when fsync
 * returned without a commit of the main environment (the intent log made
 * it durable), 50 when a commit came meanwhile (the commit thread's own,
 * 1 ms after the publish: the parent tries again). */
static void child_fsyncs_and_dies(const char *dir)
{
    mfs_attr a;
    mfs_store *s = child_store(dir, "logged", &a);
    static char big[3 * MFS_CHUNK_SIZE / 2];
    memset(big, 'L', sizeof big);
    CHILD_CHECK(mfs_store_write(s, a.ino, 0, big, sizeof big) ==
                (ssize_t)sizeof big);
    CHILD_CHECK(mfs_store_write(s, a.ino, 0, "fsync'd", 7) == 7);
    mfs_store_stats st0, st1;
    CHILD_CHECK(mfs_store_stats_get(s, &st0) == 0);
    CHILD_CHECK(mfs_store_fsync(s, a.ino) == 0);
    CHILD_CHECK(mfs_store_stats_get(s, &st1) == 0);
    _exit(st1.commits == st0.commits ? 0 : 50);
}

/* A new store in which child (one of the two above) made `name` durable by
 * the intent log alone and died: child ran again, in a new store each
 * time, until a read-only open of what LMDB holds lacked the file (the
 * child's fsyncs raced no commit). Fails the test after 10 tries. The
 * caller removes the directory. */
static char *logged_store(void (*child)(const char *), const char *name)
{
    for (int attempt = 0; attempt < 10; attempt++) {
        char *dir = mfs_test_mkdtemp("commit-wal");
        mfs_store *s = open_store(dir, WINDOW_US, MFS_STORE_CREATE);
        assert_non_null(s);
        mfs_store_close(s);
        int rc = run_child(child, dir);
        if (rc != 50)
            assert_int_equal(rc, 0);
        if (rc == 0) {
            s = open_store(dir, 0, MFS_STORE_RDONLY);
            assert_non_null(s);
            mfs_attr a;
            bool absent = mfs_store_lookup(s, MFS_ROOT_INO, name, &a) == -ENOENT;
            mfs_store_close(s);
            if (absent)
                return dir;
        }
        mfs_test_rmdir(dir);
    }
    fail_msg("fsync never returned before LMDB committed %s", name);
    return NULL;
}

/* fsync is durable through the intent log alone (store/wal.c): a process
 * that dies right after fsync returned, before any commit of LMDB, leaves
 * a store that a read-only open shows without the file (LMDB never had
 * it) and that a writable open gives back whole (the log replayed), once;
 * it then takes writes and fsyncs again. Before the log, fsync committed
 * LMDB: the read-only open always saw the file, and this test fails. */
static void test_fsync_logged(void **state)
{
    (void)state;
    char *dir = logged_store(child_fsyncs_and_dies, "logged");
    mfs_store *s = open_store(dir, WINDOW_US, 0); /* replays the log */
    assert_non_null(s);
    static char buf[3 * MFS_CHUNK_SIZE / 2 + 1];
    ssize_t n;
    read_file(s, "logged", buf, sizeof buf, &n);
    assert_int_equal(n, 3 * MFS_CHUNK_SIZE / 2);
    assert_memory_equal(buf, "fsync'dL", 8);
    for (ssize_t i = 7; i < n; i++)
        if (buf[i] != 'L')
            fail_msg("byte %zd of \"logged\" is %#x", i,
                     (unsigned)(unsigned char)buf[i]);
    /* it takes writes and fsyncs again */
    mfs_attr a;
    assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "logged", &a), 0);
    assert_int_equal(mfs_store_write(s, a.ino, 0, "again", 5), 5);
    assert_int_equal(mfs_store_fsync(s, a.ino), 0);
    mfs_store_close(s);
    /* LMDB holds it all now, and the log was cleared */
    s = open_store(dir, 0, MFS_STORE_RDONLY);
    assert_non_null(s);
    read_file(s, "logged", buf, sizeof buf, &n);
    assert_int_equal(n, 3 * MFS_CHUNK_SIZE / 2);
    assert_memory_equal(buf, "again'dL", 8);
    mfs_store_close(s);
    char path[1024];
    snprintf(path, sizeof path, "%s/intent.log", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    unsigned char head[24];
    assert_int_equal(fread(head, 1, sizeof head, f), sizeof head);
    fclose(f);
    for (size_t i = 0; i < sizeof head; i++)
        assert_int_equal(head[i], 0);
    mfs_test_rmdir(dir);
}

/* The peer of test_held_logged: a store (no group commit) with a file
 * of two chunks and a small one; made by the parent, read by the child. */
static char *held_peer_dir;

/* holds (above) for a child: false on an error */
static bool child_holds(mfs_store *s, uint64_t origin, uint64_t seq,
                        uint64_t hlc)
{
    mfs_vv d, w;
    if (mfs_store_vv_held(s, &d, &w))
        return false;
    uint64_t cut = mfs_vv_get(&w, origin);
    bool r = mfs_vv_get(&d, origin) >= seq && (cut == 0 || cut > hlc);
    mfs_vv_free(&d);
    mfs_vv_free(&w);
    return r;
}

/* In a child: the peer's ops and chunks applied to dir's store as
 * replication would (its window outlasts the test: no commit comes by
 * itself), then mfs_store_hold_soon; once the store says it holds them
 * (mfs_store_vv_held: what a HELD message tells the peer) the process
 * dies at once. Exits 0 when that came without a commit of LMDB (one
 * record of the intent log made it durable), 50 when a commit came. */
static void child_holds_and_dies(const char *dir)
{
    mfs_store_config cfg;
    mfs_store_config_default(&cfg);
    cfg.commit_window_us = cfg.commit_idle_us = 30000000u;
    cfg.new_mesh = 0;
    mfs_store *b = NULL, *a = NULL;
    CHILD_CHECK(mfs_store_open(&b, dir, &cfg, 0) == 0);
    CHILD_CHECK(mfs_store_open(&a, held_peer_dir, NULL, MFS_STORE_RDONLY) == 0);
    uint64_t na = mfs_store_node_id(a), seq, hlc;
    mfs_vv v, d, w;
    CHILD_CHECK(mfs_store_vv(a, &v) == 0);
    seq = mfs_vv_get(&v, na);
    mfs_vv_free(&v);
    CHILD_CHECK(mfs_store_op_hlc(a, na, seq, &hlc) == 0);
    /* asked for before: kept from then on (a member that asks) */
    if (mfs_store_vv_held(b, &d, &w) == 0) {
        mfs_vv_free(&d);
        mfs_vv_free(&w);
    }
    mfs_store_stats st0, st1;
    CHILD_CHECK(mfs_store_stats_get(b, &st0) == 0);
    static uint8_t buf[4u << 20];
    CHILD_CHECK(mfs_store_vv(b, &v) == 0);
    ssize_t n = mfs_store_ops_since(a, &v, buf, sizeof buf);
    mfs_vv_free(&v);
    CHILD_CHECK(n > 0 && mfs_store_apply(b, buf, (size_t)n, NULL) == 0);
    uint8_t want[8 * MFS_HASH_LEN];
    ssize_t nw = mfs_store_chunks_wanted(b, want, 8);
    CHILD_CHECK(nw > 0);
    for (ssize_t i = 0; i < nw; i++) {
        const uint8_t *h = want + i * MFS_HASH_LEN;
        ssize_t got = mfs_store_chunk_get(a, h, buf, sizeof buf);
        CHILD_CHECK(got > 0 &&
                    mfs_store_chunk_put(b, h, buf, (size_t)got) == 0);
    }
    CHILD_CHECK(!child_holds(b, na, seq, hlc));
    mfs_store_hold_soon(b);
    for (int i = 0; i < 5000 && !child_holds(b, na, seq, hlc); i++)
        usleep(1000);
    CHILD_CHECK(child_holds(b, na, seq, hlc));
    CHILD_CHECK(mfs_store_stats_get(b, &st1) == 0);
    _exit(st1.commits == st0.commits ? 0 : 50);
}

/* The write concern's one flush (mfs_store_hold_soon): a member says it
 * holds a peer's ops once one record of its intent log has them, chunks
 * and all, before LMDB commits them; a crash right then loses none of
 * them (the open replays the record). Before, HELD waited for a commit
 * and a sync of LMDB (two flushes): mfs_store_hold_soon did not exist. */
static void test_held_logged(void **state)
{
    (void)state;
    held_peer_dir = mfs_test_mkdtemp("heldpeer");
    mfs_store *a = open_store(held_peer_dir, 0, MFS_STORE_CREATE);
    assert_non_null(a);
    uint64_t na = mfs_store_node_id(a);
    mfs_attr at;
    size_t len = 2 * MFS_CHUNK_SIZE + 5;
    char *big = malloc(len);
    for (size_t i = 0; i < len; i++)
        big[i] = (char)(i * 13 + (i >> 9));
    assert_int_equal(
        mfs_store_mknod(a, MFS_ROOT_INO, "f", S_IFREG | 0644, 0, 0, 0, &at), 0);
    assert_int_equal(mfs_store_write(a, at.ino, 0, big, len), (ssize_t)len);
    assert_int_equal(mfs_store_publish(a, at.ino), 0);
    assert_int_equal(
        mfs_store_mknod(a, MFS_ROOT_INO, "g", S_IFREG | 0644, 0, 0, 0, &at), 0);
    assert_int_equal(mfs_store_write(a, at.ino, 0, "small", 5), 5);
    assert_int_equal(mfs_store_publish(a, at.ino), 0);
    mfs_vv v;
    assert_int_equal(mfs_store_vv(a, &v), 0);
    uint64_t seq = own_seq(&v, na);
    mfs_vv_free(&v);
    mfs_store_close(a);
    char *dir = NULL;
    for (int attempt = 0; attempt < 10 && !dir; attempt++) {
        dir = mfs_test_mkdtemp("heldlog");
        mfs_store_config cfg;
        mfs_store_config_default(&cfg);
        cfg.commit_window_us = WINDOW_US;
        cfg.new_mesh = 0;
        mfs_store *b = NULL;
        assert_int_equal(mfs_store_open(&b, dir, &cfg, MFS_STORE_CREATE), 0);
        mfs_store_close(b);
        int rc = run_child(child_holds_and_dies, dir);
        if (rc != 50)
            assert_int_equal(rc, 0);
        if (rc == 50) {
            mfs_test_rmdir(dir);
            dir = NULL;
        }
    }
    if (!dir)
        fail_msg("the hold never came before LMDB committed");
    /* LMDB never had them */
    mfs_store *b = open_store(dir, 0, MFS_STORE_RDONLY);
    assert_non_null(b);
    assert_int_equal(mfs_store_vv(b, &v), 0);
    assert_int_equal(own_seq(&v, na), 0);
    mfs_vv_free(&v);
    mfs_store_close(b);
    /* the open replays the record: every op, both files whole */
    b = open_store(dir, WINDOW_US, 0);
    assert_non_null(b);
    assert_int_equal(mfs_store_vv(b, &v), 0);
    assert_int_equal(own_seq(&v, na), seq);
    mfs_vv_free(&v);
    assert_int_equal(mfs_store_chunks_wanted_count(b), 0);
    char *got = malloc(len + 1);
    ssize_t n;
    read_file(b, "f", got, len + 1, &n);
    assert_int_equal(n, (ssize_t)len);
    assert_memory_equal(got, big, len);
    read_file(b, "g", got, len + 1, &n);
    assert_int_equal(n, 5);
    assert_memory_equal(got, "small", 5);
    free(got);
    free(big);
    mfs_store_close(b);
    mfs_test_rmdir(dir);
    mfs_test_rmdir(held_peer_dir);
}

/* 4 KiB pieces of an appended file, each different */
static void piece(char *b, int i)
{
    for (int k = 0; k < 4096; k++)
        b[k] = (char)((k * 131 + i * 7919 + (k >> 5) * i) & 0xff);
}

/* In a child: a file appended to 4 KiB at a time, each append fsync'd
 * (the log then holds each new last chunk as the one before plus the
 * new bytes), and the process dies. Exits as child_fsyncs_and_dies. */
static void child_appends_and_dies(const char *dir)
{
    mfs_attr a;
    mfs_store *s = child_store(dir, "appended", &a);
    mfs_store_stats st0, st1;
    CHILD_CHECK(mfs_store_stats_get(s, &st0) == 0);
    char b[4096];
    for (int i = 0; i < 24; i++) {
        piece(b, i);
        CHILD_CHECK(mfs_store_write(s, a.ino, (uint64_t)i * 4096, b, 4096) ==
                    4096);
        CHILD_CHECK(mfs_store_fsync(s, a.ino) == 0);
    }
    CHILD_CHECK(mfs_store_stats_get(s, &st1) == 0);
    _exit(st1.commits == st0.commits ? 0 : 50);
}

/* An appended file fsync'd after each 4 KiB comes back whole from the
 * log alone: its records hold each new last chunk as a delta of the one
 * before (wal.c), which the replay rebuilds. */
static void test_fsync_appends_logged(void **state)
{
    (void)state;
    char *dir = logged_store(child_appends_and_dies, "appended");
    mfs_store *s = open_store(dir, WINDOW_US, 0);
    assert_non_null(s);
    static char buf[24 * 4096 + 1];
    ssize_t n;
    read_file(s, "appended", buf, sizeof buf, &n);
    assert_int_equal(n, 24 * 4096);
    char b[4096];
    for (int i = 0; i < 24; i++) {
        piece(b, i);
        assert_memory_equal(buf + i * 4096, b, 4096);
    }
    mfs_store_close(s);
    mfs_test_rmdir(dir);
}

/* A store whose group commits only when asked (a 30 s window), with what
 * it holds at open durable. */
static mfs_store *open_asked_only(const char *dir, unsigned flags)
{
    mfs_store_config cfg;
    mfs_store_config_default(&cfg);
    cfg.commit_window_us = cfg.commit_idle_us = 30000000u;
    mfs_store *s = NULL;
    assert_int_equal(mfs_store_open(&s, dir, &cfg, flags), 0);
    assert_int_equal(mfs_store_commit(s, 1), 0);
    return s;
}

/* A group commit that fails after an fsync returned loses nothing the
 * intent log holds: the commit thread applies the log again (txn.c
 * gc_replay) before any other write, so the fsync'd file stays, whole,
 * and its ops keep their sequence numbers (a write concern's members may
 * hold them already: node/acks.c sends them with their record). While
 * that replay fails too, writes fail with the commit's error, and a
 * later try (every second) brings it all back; a close meanwhile keeps
 * the log for the next open (its sync once cleared it). Before, the failed
 * commit cleared the log: the fsync'd file was gone, and the next ops took its
 * ops' sequence numbers. */
static void test_failed_commit_replays_log(void **state)
{
    (void)state;
    static char big[3 * MFS_CHUNK_SIZE / 2], buf[sizeof big + 1];
    memset(big, 'K', sizeof big);
    for (int fails = 1; fails <= 3; fails++) {
        char *dir = mfs_test_mkdtemp("commit-fail");
        mfs_store *s = open_asked_only(dir, MFS_STORE_CREATE);
        mfs_attr a, b;
        assert_int_equal(
            mfs_store_mknod(s, MFS_ROOT_INO, "kept", 0100644, 0, 0, 0, &a), 0);
        assert_int_equal(mfs_store_write(s, a.ino, 0, big, sizeof big),
                         (ssize_t)sizeof big);
        assert_int_equal(mfs_store_fsync(s, a.ino), 0);
        uint64_t self = mfs_store_node_id(s), seq, hlc;
        mfs_vv v;
        assert_int_equal(mfs_store_vv(s, &v), 0);
        seq = mfs_vv_get(&v, self);
        mfs_vv_free(&v);
        mfs_store_test_fail_commits(s, fails < 3 ? fails : 2);
        assert_int_equal(mfs_store_commit(s, 0), -EIO);
        int eio = 0, rc;
        if (fails == 3) {
            /* closed while the replay is owed (writes fail): the close's
             * sync must not clear the log, the next open replays it */
            while (mfs_store_mknod(s, MFS_ROOT_INO, "lost", 0100644, 0, 0, 0,
                                   &b) != -EIO)
                fail_msg("a write went through before the replay");
            mfs_store_close(s);
            s = open_store(dir, 0, 0);
            assert_non_null(s);
            ssize_t n;
            read_file(s, "kept", buf, sizeof buf, &n);
            assert_int_equal(n, sizeof big);
            assert_memory_equal(buf, big, sizeof big);
            assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "lost", &b),
                             -ENOENT);
            mfs_store_close(s);
            mfs_test_rmdir(dir);
            continue;
        }
        while ((rc = mfs_store_mknod(s, MFS_ROOT_INO, "after", 0100644, 0, 0, 0,
                                     &b)) == -EIO &&
               eio < 500) {
            eio++;
            usleep(10000);
        }
        assert_int_equal(rc, 0);
        if (fails == 1)
            assert_int_equal(eio, 0); /* (it waited for the replay) */
        else
            assert_true(eio > 0);
        ssize_t n;
        read_file(s, "kept", buf, sizeof buf, &n);
        assert_int_equal(n, sizeof big);
        assert_memory_equal(buf, big, sizeof big);
        assert_int_equal(mfs_store_vv(s, &v), 0);
        assert_true(mfs_vv_get(&v, self) > seq); /* "after"'s: new ones */
        mfs_vv_free(&v);
        assert_int_equal(mfs_store_op_hlc(s, self, seq, &hlc), 0);
        mfs_store_close(s);
        s = open_store(dir, 0, MFS_STORE_RDONLY);
        assert_non_null(s);
        read_file(s, "kept", buf, sizeof buf, &n);
        assert_int_equal(n, sizeof big);
        assert_memory_equal(buf, big, sizeof big);
        assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "after", &b), 0);
        mfs_store_close(s);
        mfs_test_rmdir(dir);
    }
}

/* The census as kept equals the census counted, and the store's files
 * hold every version and chunk they name. */
static void assert_counts_whole(mfs_store *s)
{
    mfs_store_stats kept, counted;
    assert_int_equal(mfs_store_stats_get(s, &kept), 0);
    assert_int_equal(mfs_store_stats_scan(s, &counted), 0);
    assert_int_equal(kept.files, counted.files);
    assert_int_equal(kept.dirs, counted.dirs);
    assert_int_equal(kept.bytes, counted.bytes);
    uint64_t absent = 0;
    assert_int_equal(mfs_store_verify(s, &absent), 0);
    assert_int_equal(absent, 0);
}

/* The file `name` in the root holds exactly `want`. */
static void assert_file(mfs_store *s, const char *name, const char *want)
{
    char buf[64];
    ssize_t n;
    read_file(s, name, buf, sizeof buf, &n);
    assert_int_equal(n, (ssize_t)strlen(want));
    assert_memory_equal(buf, want, strlen(want));
}

/* In s: a file `name` holding data, fsync'd, then an empty file `other`
 * made after it (in the open group, not fsync'd). */
static void fsynced_then_not(mfs_store *s, const char *name, const char *data,
                             mfs_attr *a, const char *other, mfs_attr *b)
{
    size_t n = strlen(data);
    assert_int_equal(
        mfs_store_mknod(s, MFS_ROOT_INO, name, 0100644, 0, 0, 0, a), 0);
    assert_int_equal(mfs_store_write(s, a->ino, 0, data, n), (ssize_t)n);
    assert_int_equal(mfs_store_fsync(s, a->ino), 0);
    assert_int_equal(
        mfs_store_mknod(s, MFS_ROOT_INO, other, 0100644, 0, 0, 0, b), 0);
}

/* A request's call runs in the group's txn itself (store_write_small,
 * txn.c gc_write): one that fails after making its changes is taken back
 * from the group (its undo log), and the group's other calls stay and
 * commit. One that cannot be taken back drops the group as a failed commit
 * does: the intent log brings back what fsync covered. */
static void test_failed_call_taken_back(void **state)
{
    (void)state;
    char *dir = mfs_test_mkdtemp("commit-call");
    mfs_store *s = open_asked_only(dir, MFS_STORE_CREATE);
    mfs_attr a, b, c, d;
    fsynced_then_not(s, "a", "alpha", &a, "b", &b);
    mfs_store_stats s0, s1;
    assert_int_equal(mfs_store_stats_get(s, &s0), 0);

    mfs_store_test_fail_calls(s, 5, false);
    assert_int_equal(mfs_store_unlink(s, MFS_ROOT_INO, "b"), -EIO);
    assert_int_equal(
        mfs_store_mknod(s, MFS_ROOT_INO, "c", 0100644, 0, 0, 0, &c), -EIO);
    assert_int_equal(mfs_store_mkdir(s, MFS_ROOT_INO, "dir", 0755, 0, 0, &d),
                     -EIO);
    assert_int_equal(
        mfs_store_rename(s, MFS_ROOT_INO, "a", MFS_ROOT_INO, "z", 0), -EIO);
    mfs_setattr sa = {.mask = MFS_SET_MODE, .mode = 0600};
    assert_int_equal(mfs_store_setattr(s, a.ino, &sa, &d), -EIO);
    /* nothing of them is left, in the tree, the census or the op log */
    assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "b", &d), 0);
    assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "c", &d), -ENOENT);
    assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "dir", &d), -ENOENT);
    assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "z", &d), -ENOENT);
    assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "a", &d), 0);
    assert_int_equal(d.mode & 07777, 0644);
    assert_int_equal(mfs_store_stats_get(s, &s1), 0);
    assert_int_equal(s1.files, s0.files);
    assert_int_equal(s1.dirs, s0.dirs);
    assert_int_equal(s1.ops, s0.ops);
    assert_int_equal(s1.local_seq, s0.local_seq);
    /* the next calls go on in the same group, and it all commits */
    assert_int_equal(
        mfs_store_mknod(s, MFS_ROOT_INO, "c", 0100644, 0, 0, 0, &c), 0);
    assert_int_equal(mfs_store_unlink(s, MFS_ROOT_INO, "b"), 0);
    assert_counts_whole(s);
    mfs_store_stats s2;
    assert_int_equal(mfs_store_stats_get(s, &s2), 0);
    assert_true(s2.local_seq > s0.local_seq);
    assert_int_equal(mfs_store_commit(s, 1), 0);
    mfs_store_close(s);
    s = open_store(dir, 0, 0);
    assert_non_null(s);
    assert_file(s, "a", "alpha");
    assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "b", &d), -ENOENT);
    assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "c", &d), 0);
    assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "z", &d), -ENOENT);
    assert_int_equal(mfs_store_stats_get(s, &s1), 0);
    assert_int_equal(s1.local_seq, s2.local_seq);
    assert_counts_whole(s);
    mfs_store_close(s);

    /* a call that cannot be taken back: the group is dropped, what fsync
     * made durable comes back from the intent log, the rest is lost as
     * after a failed commit (docs/ARCHITECTURE.md) */
    s = open_asked_only(dir, 0);
    fsynced_then_not(s, "synced", "beta", &b, "unsynced", &d);
    mfs_store_test_fail_calls(s, 1, true);
    assert_int_equal(
        mfs_store_mknod(s, MFS_ROOT_INO, "broken", 0100644, 0, 0, 0, &d), -EIO);
    /* (it waited for the commit thread to drop the group and replay) */
    assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "broken", &d), -ENOENT);
    assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "unsynced", &d),
                     -ENOENT);
    assert_file(s, "synced", "beta");
    assert_int_equal(
        mfs_store_mknod(s, MFS_ROOT_INO, "after", 0100644, 0, 0, 0, &d), 0);
    assert_counts_whole(s);
    mfs_store_close(s);
    s = open_store(dir, 0, 0);
    assert_non_null(s);
    assert_file(s, "synced", "beta");
    assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "after", &d), 0);
    assert_counts_whole(s);
    mfs_store_close(s);
    mfs_test_rmdir(dir);
}

int main(void)
{

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_visibility),
        cmocka_unit_test(test_kill_then_reboot),
        cmocka_unit_test(test_durable_vector),
        cmocka_unit_test(test_durable_vector_told),
        cmocka_unit_test(test_held_vector),
        cmocka_unit_test(test_stats_do_not_commit),
        cmocka_unit_test(test_idle_collection_commits_nothing),
        cmocka_unit_test(test_unpublished_stream_freed),
        cmocka_unit_test(test_fsync_logged),
        cmocka_unit_test(test_fsync_appends_logged),
        cmocka_unit_test(test_held_logged),
        cmocka_unit_test(test_failed_commit_replays_log),
        cmocka_unit_test(test_failed_call_taken_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
