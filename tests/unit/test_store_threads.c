/*
 * test_store_threads.c - store.h says every call may come from any thread,
 * writes are serialised and readers run concurrently. Here writers (one of
 * them inside groups) and readers hammer one store while the map grows from
 * 1 MiB (the resize must wait for readers, and readers must never see a
 * torn state); then every file has exactly the bytes its writer acknowledged.
 * A writer starved by readers is detected by the readers (no writer
 * progress for STALL_ROUNDS of their rounds); a deadlock by a join deadline.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"
#include "testutil.h"

#define NW 3      /* writers */
#define NR 2      /* readers */
#define FILES 120 /* per writer */
#define SZ 20000  /* bytes per file */
/* A reader gives up when the writers made no progress for this many of its
 * rounds (seconds of reads): they cannot get in. */
#define STALL_ROUNDS 300000
#define JOIN_DEADLINE_S 120

typedef struct shared {
    mfs_store *s;
    uint64_t dir[NW];
    atomic_int writers_left;
    atomic_int starved;
    atomic_long progress; /* writer calls completed */
    atomic_int errors;
    char err[NW + NR][160];
} shared;

typedef struct targ {
    shared *sh;
    int id;
} targ;

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
    mfs_rng r;
    mfs_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)mfs_rng_next(&r);
}

static void note(shared *sh, int id, const char *what, long rc)
{
    if (atomic_fetch_add(&sh->errors, 1) == 0 || !sh->err[id][0])
        snprintf(sh->err[id], sizeof(sh->err[id]), "thread %d: %s: %ld", id,
                 what, rc);
}

static void *writer(void *arg)
{
    targ *t = arg;
    shared *sh = t->sh;
    uint8_t *buf = malloc(SZ);
    int grouped = t->id == 0, in_group = 0;
    for (int i = 0; i < FILES; i++) {
        if (grouped && i % 10 == 0) {
            long rc = mfs_store_group_begin(sh->s);
            if (rc)
                note(sh, t->id, "group_begin", rc);
            in_group = rc == 0;
        }
        char n[32];
        snprintf(n, sizeof(n), "w%d-%03d", t->id, i);
        mfs_attr a;
        long rc = mfs_store_mknod(sh->s, sh->dir[t->id], n, S_IFREG | 0644, 0,
                                  0, 0, &a);
        if (rc) {
            note(sh, t->id, "mknod", rc);
            break;
        }
        atomic_fetch_add(&sh->progress, 1);
        fill(buf, SZ, (uint64_t)(t->id * 1000 + i + 1));
        ssize_t w = mfs_store_write(sh->s, a.ino, 0, buf, SZ);
        atomic_fetch_add(&sh->progress, 1);
        if (w != SZ)
            note(sh, t->id, "write", w);
        rc = mfs_store_publish(sh->s, a.ino);
        if (rc)
            note(sh, t->id, "publish", rc);
        if (i % 7 == 0) { /* some churn: rename and back */
            char m[32];
            snprintf(m, sizeof(m), "tmp-%d", t->id);
            rc = mfs_store_rename(sh->s, sh->dir[t->id], n, sh->dir[t->id], m,
                                  0);
            if (!rc)
                rc = mfs_store_rename(sh->s, sh->dir[t->id], m, sh->dir[t->id],
                                      n, 0);
            if (rc)
                note(sh, t->id, "rename", rc);
        }
        if (in_group && i % 10 == 9) {
            in_group = 0;
            rc = mfs_store_group_end(sh->s);
            if (rc)
                note(sh, t->id, "group_end", rc);
        }
    }
    /* also after a failed call: a group left open holds the writer lock
     * and the other writers would wait for ever */
    if (in_group)
        mfs_store_group_end(sh->s);
    free(buf);
    atomic_fetch_sub(&sh->writers_left, 1);
    return NULL;
}

static int count_cb(void *arg, const char *name, uint64_t ino, uint32_t mode)
{
    (void)name;
    (void)ino;
    (void)mode;
    (*(int *)arg)++;
    return 0;
}

static void *reader(void *arg)
{
    targ *t = arg;
    shared *sh = t->sh;
    uint8_t *buf = malloc(SZ), *want = malloc(SZ);
    uint64_t x = (uint64_t)t->id * 7919 + 1;
    int rounds = 0;
    long last_progress = -1, stall = 0;
    while (atomic_load(&sh->writers_left) > 0 || rounds < 50) {
        rounds++;
        long p = atomic_load(&sh->progress);
        if (p != last_progress) {
            last_progress = p;
            stall = 0;
        } else if (++stall > STALL_ROUNDS &&
                   atomic_load(&sh->writers_left) > 0) {
            atomic_store(&sh->starved, 1);
            break;
        }
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int w = (int)((x >> 33) % NW), i = (int)((x >> 40) % FILES);
        char n[32];
        snprintf(n, sizeof(n), "w%d-%03d", w, i);
        mfs_attr a;
        long rc = mfs_store_lookup(sh->s, sh->dir[w], n, &a);
        if (rc == -ENOENT)
            continue; /* not written yet, or renamed for a moment */
        if (rc) {
            note(sh, t->id, "lookup", rc);
            break;
        }
        mfs_file_info fi;
        rc = mfs_store_file_info(sh->s, a.ino, &fi, NULL, 0);
        if (rc && rc != -ENOENT)
            note(sh, t->id, "file_info", rc);
        ssize_t got = mfs_store_read(sh->s, a.ino, 0, buf, SZ);
        /* a reader sees nothing, or the whole acknowledged write */
        if (got == SZ) {
            fill(want, SZ, (uint64_t)(w * 1000 + i + 1));
            if (memcmp(buf, want, SZ))
                note(sh, t->id, "torn read", i);
        } else if (got != 0 && got != -ENOENT) {
            note(sh, t->id, "read size", got);
        }
        int cnt = 0;
        rc = mfs_store_readdir(sh->s, sh->dir[w], NULL, count_cb, &cnt);
        if (rc)
            note(sh, t->id, "readdir", rc);
        mfs_store_stats st;
        rc = mfs_store_stats_get(sh->s, &st);
        if (rc)
            note(sh, t->id, "stats", rc);
    }
    free(buf);
    free(want);
    return NULL;
}


static void test_threads(void **state)
{
    (void)state;
    g_dir = mfs_test_mkdtemp("threads");
    mfs_store_config cfg;
    mfs_store_config_default(&cfg);
    cfg.new_mesh = 1;
    cfg.map_size = 1 << 20;
    assert_int_equal(mfs_store_open(&g_s, g_dir, &cfg, MFS_STORE_CREATE), 0);
    shared sh;
    memset(&sh, 0, sizeof(sh));
    sh.s = g_s;
    for (int i = 0; i < NW; i++) {
        char n[16];
        snprintf(n, sizeof(n), "d%d", i);
        mfs_attr a;
        assert_int_equal(mfs_store_mkdir(g_s, MFS_ROOT_INO, n, 0755, 0, 0, &a),
                         0);
        sh.dir[i] = a.ino;
    }
    atomic_store(&sh.writers_left, NW);
    pthread_t th[NW + NR];
    targ ta[NW + NR];
    for (int i = 0; i < NW + NR; i++) {
        ta[i].sh = &sh;
        ta[i].id = i;
        assert_int_equal(
            pthread_create(&th[i], NULL, i < NW ? writer : reader, &ta[i]), 0);
    }
    /* Watchdog: the threads need about a second; if they are not done in
     * JOIN_DEADLINE_S a lock is held by nobody who will release it (e.g. by
     * a thread that exited). Threads blocked forever cannot be cleaned up,
     * so report, remove the temp dir and exit. */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += JOIN_DEADLINE_S;
    for (int i = 0; i < NW + NR; i++) {
        int jr = pthread_timedjoin_np(th[i], NULL, &dl);
        if (jr == ETIMEDOUT) {
            fprintf(stderr,
                    "test_store_threads: DEADLOCK: thread %d (%s) not "
                    "done after %d s; writers left %d, writer calls done %ld\n",
                    i, i < NW ? "writer" : "reader", JOIN_DEADLINE_S,
                    atomic_load(&sh.writers_left), atomic_load(&sh.progress));
            for (int k = 0; k < NW + NR; k++)
                if (sh.err[k][0])
                    fprintf(stderr, "  first error: %s\n", sh.err[k]);
            mfs_test_rmdir(g_dir);
            _exit(1);
        }
    }
    for (int i = 0; i < NW + NR; i++)
        if (sh.err[i][0])
            print_error("%s\n", sh.err[i]);
    if (atomic_load(&sh.starved))
        print_error("writers starved: no writer call finished during %d "
                    "rounds of a reader (map growth waits for the map lock "
                    "while readers keep taking it?)\n",
                    STALL_ROUNDS);
    assert_int_equal(atomic_load(&sh.starved), 0);
    assert_int_equal(atomic_load(&sh.errors), 0);
    /* everything acknowledged is there, also after a reopen */
    for (int pass = 0; pass < 2; pass++) {
        uint8_t *buf = malloc(SZ), *want = malloc(SZ);
        for (int w = 0; w < NW; w++) {
            int cnt = 0;
            assert_int_equal(
                mfs_store_readdir(g_s, sh.dir[w], NULL, count_cb, &cnt), 0);
            assert_int_equal(cnt, FILES);
            for (int i = 0; i < FILES; i++) {
                char n[32];
                snprintf(n, sizeof(n), "w%d-%03d", w, i);
                mfs_attr a;
                assert_int_equal(mfs_store_lookup(g_s, sh.dir[w], n, &a), 0);
                fill(want, SZ, (uint64_t)(w * 1000 + i + 1));
                assert_int_equal(mfs_store_read(g_s, a.ino, 0, buf, SZ), SZ);
                assert_memory_equal(buf, want, SZ);
            }
        }
        free(buf);
        free(want);
        if (pass == 0) {
            mfs_store_close(g_s);
            g_s = NULL;
            assert_int_equal(mfs_store_open(&g_s, g_dir, &cfg, 0), 0);
            for (int w = 0; w < NW; w++) {
                char n[16];
                snprintf(n, sizeof(n), "d%d", w);
                mfs_attr a;
                assert_int_equal(mfs_store_lookup(g_s, MFS_ROOT_INO, n, &a), 0);
                sh.dir[w] = a.ino;
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_threads, cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
