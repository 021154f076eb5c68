/*
 * test_store_lock.c - the lock-order checker (store/lock.h), debug builds
 * only (a release build compiles the checks out: every test is skipped).
 * Locks taken in the documented order, a recursive lock taken again and
 * locks released out of order pass; each fault (a lock below one held,
 * anything under a leaf, a non-recursive lock taken twice, a release of a
 * lock not held, a send-path check under the queue's lock) is made in a
 * forked child, which must die of SIGABRT before it blocks, and say which
 * locks on stderr.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lock.h"

/* Stand-ins for the daemon's locks: one mutex per rank. */
static pthread_mutex_t mu[MFS_LOCK__COUNT];

static void skip_release(void)
{
#ifdef NDEBUG
    skip(); /* the checker is compiled out */
#endif
}

/* Runs fn in a child; returns its stderr (static) and checks it died of
 * SIGABRT. */
static const char *must_abort(void (*fn)(void))
{
    static char err[2048];
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        alarm(10); /* a checker that let it block dies of SIGALRM */
        fn();
        _exit(0);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t k;
    while (n + 1 < sizeof(err) &&
           (k = read(p[0], err + n, sizeof(err) - 1 - n)) > 0)
        n += (size_t)k;
    err[n] = 0;
    close(p[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
        fail_msg("child did not abort (status %#x): %s", st, err);
    return err;
}

static void test_order_kept(void **state)
{
    (void)state;
    skip_release();
    /* every rank after the one before; leaves last */
    mfs_lock_take(&mu[MFS_LOCK_REPL], MFS_LOCK_REPL);
    mfs_lock_take(&mu[MFS_LOCK_STORE_W], MFS_LOCK_STORE_W);
    mfs_lock_take(&mu[MFS_LOCK_SYNC], MFS_LOCK_SYNC);
    MFS_LOCK_MAY_TAKE(MFS_LOCK_SYNC_IN);
    mfs_lock_take(&mu[MFS_LOCK_SYNC_IN], MFS_LOCK_SYNC_IN);
    mfs_lock_take(&mu[MFS_LOCK_NODE_Q], MFS_LOCK_NODE_Q);
    assert_true(mfs_lock_order_held(&mu[MFS_LOCK_STORE_W]));
    assert_true(mfs_lock_order_held(&mu[MFS_LOCK_NODE_Q]));
    mfs_lock_drop(&mu[MFS_LOCK_NODE_Q]);
    mfs_lock_drop(&mu[MFS_LOCK_SYNC_IN]);
    mfs_lock_drop(&mu[MFS_LOCK_SYNC]);
    /* released out of order: the engine's lock first */
    mfs_lock_drop(&mu[MFS_LOCK_REPL]);
    assert_false(mfs_lock_order_held(&mu[MFS_LOCK_REPL]));
    assert_true(mfs_lock_order_held(&mu[MFS_LOCK_STORE_W]));
    mfs_lock_drop(&mu[MFS_LOCK_STORE_W]);
    assert_false(mfs_lock_order_held(&mu[MFS_LOCK_STORE_W]));
    /* the engine's lock, then the writer's, as flush_job does */
    mfs_lock_take(&mu[MFS_LOCK_REPL], MFS_LOCK_REPL);
    mfs_lock_take(&mu[MFS_LOCK_REPL_WR], MFS_LOCK_REPL_WR);
    mfs_lock_drop(&mu[MFS_LOCK_REPL_WR]);
    mfs_lock_drop(&mu[MFS_LOCK_REPL]);
}

/* The core's lock is recursive: taken again, even under its inbox lock,
 * it never blocks; each take has its drop. */
static void test_recursive(void **state)
{
    (void)state;
    skip_release();
    pthread_mutex_t rec;
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&rec, &ma);
    pthread_mutexattr_destroy(&ma);
    mfs_lock_take(&rec, MFS_LOCK_SYNC);
    mfs_lock_take(&mu[MFS_LOCK_SYNC_IN], MFS_LOCK_SYNC_IN);
    mfs_lock_take(&rec, MFS_LOCK_SYNC);
    mfs_lock_drop(&rec);
    mfs_lock_drop(&mu[MFS_LOCK_SYNC_IN]);
    assert_true(mfs_lock_order_held(&rec));
    mfs_lock_drop(&rec);
    assert_false(mfs_lock_order_held(&rec));
    pthread_mutex_destroy(&rec);
}

static void core_then_engine(void)
{
    mfs_lock_take(&mu[MFS_LOCK_SYNC], MFS_LOCK_SYNC);
    mfs_lock_take(&mu[MFS_LOCK_REPL], MFS_LOCK_REPL);
}

static void inbox_then_core(void)
{
    pthread_mutex_t other = PTHREAD_MUTEX_INITIALIZER;
    mfs_lock_take(&mu[MFS_LOCK_SYNC_IN], MFS_LOCK_SYNC_IN);
    mfs_lock_take(&other, MFS_LOCK_SYNC);
}

static void store_then_engine_released_out_of_order(void)
{
    mfs_lock_take(&mu[MFS_LOCK_REPL], MFS_LOCK_REPL);
    mfs_lock_take(&mu[MFS_LOCK_STORE_W], MFS_LOCK_STORE_W);
    mfs_lock_drop(&mu[MFS_LOCK_REPL]);
    /* wlock still held: the engine's lock may not be taken again */
    mfs_lock_take(&mu[MFS_LOCK_REPL], MFS_LOCK_REPL);
}

static void under_writer_queue(void)
{
    mfs_lock_take(&mu[MFS_LOCK_REPL_WR], MFS_LOCK_REPL_WR);
    mfs_lock_take(&mu[MFS_LOCK_STORE_W], MFS_LOCK_STORE_W);
}

static void under_node_queue(void)
{
    mfs_lock_take(&mu[MFS_LOCK_NODE_Q], MFS_LOCK_NODE_Q);
    MFS_LOCK_MAY_TAKE(MFS_LOCK_SYNC_IN);
}

static void wlock_twice(void)
{
    mfs_lock_take(&mu[MFS_LOCK_STORE_W], MFS_LOCK_STORE_W);
    mfs_lock_take(&mu[MFS_LOCK_STORE_W], MFS_LOCK_STORE_W);
}

static void drop_not_held(void)
{
    pthread_mutex_t x = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&x); /* taken around the checker */
    mfs_lock_drop(&x);
}

static void test_faults_abort(void **state)
{
    (void)state;
    skip_release();
    const char *e = must_abort(core_then_engine);
    assert_non_null(strstr(e, "taking the engine's lock (mfs_repl.mu) while "
                              "holding the transport core's lock"));
    e = must_abort(inbox_then_core);
    assert_non_null(strstr(e, "taking the transport core's lock "
                              "(mfs_sync.mu) while holding the transport's "
                              "inbox lock"));
    e = must_abort(store_then_engine_released_out_of_order);
    assert_non_null(strstr(e, "while holding the store's writer lock"));
    e = must_abort(under_writer_queue);
    assert_non_null(strstr(e, "under a leaf) the store's writer lock (wlock) "
                              "while holding the chunk writer's lock"));
    e = must_abort(under_node_queue);
    assert_non_null(strstr(e, "while holding the replication queue's lock"));
    e = must_abort(wlock_twice);
    assert_non_null(strstr(e, "taking again the store's writer lock"));
    e = must_abort(drop_not_held);
    assert_non_null(strstr(e, "releasing a lock this thread does not hold"));
}

int main(void)
{
    for (int i = 0; i < MFS_LOCK__COUNT; i++)
        pthread_mutex_init(&mu[i], NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_kept),
        cmocka_unit_test(test_recursive),
        cmocka_unit_test(test_faults_abort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
