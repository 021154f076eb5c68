/*
 * lock.h - the daemon's lock order (docs/ARCHITECTURE.md, "Threads and
 * locks") in code: every mutex that takes part in the order has a rank,
 * and is taken and released through mfs_lock_take / mfs_lock_drop. Debug
 * builds (no NDEBUG) keep, per thread, the locks it holds and abort, with
 * a message naming both locks, when a thread takes a lock whose rank is
 * not above every rank it holds, takes anything while it holds a leaf
 * lock, or takes a non-recursive lock it already holds. In a release
 * build (NDEBUG, as RelWithDebInfo) the wrappers are the bare pthread
 * calls: no cost. A leaf of the store (layer 0), so that store/, sync/,
 * fs/ and node/ may all include it.
 */
#ifndef MFS_LOCK_H
#define MFS_LOCK_H

#include <pthread.h>
#include <stdbool.h>

/* The order: a thread holding one may take only those after it. */
typedef enum mfs_lock_rank {
    MFS_LOCK_REPL = 1,    /* sync/repl.c mfs_repl.mu: the engine */
    MFS_LOCK_REPL_WR,     /* sync/repl.c mfs_repl.wr_mu: the chunk writer's
                             queue; a leaf (nothing taken under it) */
    MFS_LOCK_STORE_LOG,   /* store/wal.c mfs_store.wal_mu: intent log
                             appends (wlock is taken under it) */
    MFS_LOCK_STORE_W,     /* store/txn.c mfs_store.wlock: the single writer,
                             group commit */
    MFS_LOCK_SYNC,        /* sync/driver.c mfs_sync.mu: the transport core;
                             recursive */
    MFS_LOCK_SYNC_IN,     /* sync/driver.c mfs_sync.in_mu: its inbox */
    MFS_LOCK_NODE_Q,      /* node/mesh.c mfs_node.q_mu: the replication
                             queue; a leaf */
    MFS_LOCK_REPL_LOGGED, /* sync/repl.c mfs_repl.logged_mu: the write
                             concern's early pushes, queued by an fsync
                             under the store's wal_mu; a leaf */
    MFS_LOCK__COUNT
} mfs_lock_rank;

/* The checker, for debug builds; called by the wrappers below. Any
 * thread. `lock` is only compared, never dereferenced. enter: before the
 * lock is taken; aborts (after an mfs_log(LOG_CRIT) line naming both
 * locks) on a fault of the order or a stack of more than 16 locks.
 * leave: after it is released; aborts if this thread does not hold it.
 * check: aborts as enter would, and records nothing.
 * held: whether this thread holds it (through mfs_lock_take). */
void mfs_lock_order_enter(const void *lock, mfs_lock_rank rank);
void mfs_lock_order_leave(const void *lock);
void mfs_lock_order_check(mfs_lock_rank rank);
bool mfs_lock_order_held(const void *lock);

/* pthread_mutex_lock / _unlock of a ranked mutex, checked in debug
 * builds. A condition wait on a ranked mutex stays pthread_cond_wait: the
 * thread holds the mutex again when it returns, and takes nothing while
 * it waits. */
static inline void mfs_lock_take(pthread_mutex_t *mu, mfs_lock_rank rank)
{
#ifndef NDEBUG
    mfs_lock_order_enter(mu, rank);
#else
    (void)rank;
#endif
    pthread_mutex_lock(mu);
}

static inline void mfs_lock_drop(pthread_mutex_t *mu)
{
    pthread_mutex_unlock(mu);
#ifndef NDEBUG
    mfs_lock_order_leave(mu);
#endif
}

/* Debug builds: aborts, as mfs_lock_take would, if this thread may not
 * take a lock of this rank now (for a call that takes one only on some
 * transports or paths). Nothing in a release build. To assert that a
 * lock is held: assert(mfs_lock_order_held(mu)). */
#ifndef NDEBUG
#define MFS_LOCK_MAY_TAKE(rank) mfs_lock_order_check(rank)
#else
#define MFS_LOCK_MAY_TAKE(rank) ((void)0)
#endif

#endif
