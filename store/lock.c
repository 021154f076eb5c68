/*
 * lock.c - the checker of the lock order (lock.h): per thread, the
 * ranked locks it holds, in the order taken. Debug builds call it around
 * every ranked mutex; release builds never do. It must never take a lock
 * or allocate: it runs inside every other lock's critical path.
 */
#include "lock.h"

#include "log.h"

#include <stdlib.h>

#define HELD_MAX 16

static const struct {
    const char *name;
    bool leaf;      /* nothing may be taken under it */
    bool recursive; /* its holder may take it again */
} ranks[MFS_LOCK__COUNT] = {
    [MFS_LOCK_REPL] = {"the engine's lock (mfs_repl.mu)", false, false},
    [MFS_LOCK_REPL_WR] = {"the chunk writer's lock (mfs_repl.wr_mu)", true,
                          false},
    [MFS_LOCK_STORE_LOG] = {"the store's intent log lock (wal_mu)", false,
                            false},
    [MFS_LOCK_STORE_W] = {"the store's writer lock (wlock)", false, false},
    [MFS_LOCK_SYNC] = {"the transport core's lock (mfs_sync.mu)", false,
                       true},
    [MFS_LOCK_SYNC_IN] = {"the transport's inbox lock (mfs_sync.in_mu)",
                          false, false},
    [MFS_LOCK_NODE_Q] = {"the replication queue's lock (mfs_node.q_mu)",
                         true, false},
};

static _Thread_local struct {
    const void *lock;
    mfs_lock_rank rank;
} held[HELD_MAX];
static _Thread_local int nheld;

static const char *rank_name(mfs_lock_rank rank)
{
    return rank > 0 && rank < MFS_LOCK__COUNT && ranks[rank].name
               ? ranks[rank].name
               : "an unranked lock";
}

static void die(const char *what, mfs_lock_rank taking, mfs_lock_rank holding)
{
    mfs_log(LOG_CRIT, "lock order: %s %s while holding %s "
            "(docs/ARCHITECTURE.md, \"Threads and locks\"); aborting",
            what, rank_name(taking), rank_name(holding));
    abort();
}

/* Aborts if taking lock (NULL: any lock) of rank now breaks the order. */
static void check(const void *lock, mfs_lock_rank rank)
{
    if (rank <= 0 || rank >= MFS_LOCK__COUNT)
        die("taking", rank, nheld ? held[nheld - 1].rank : rank);
    for (int i = 0; i < nheld; i++) {
        mfs_lock_rank h = held[i].rank;
        if (lock && held[i].lock == lock) {
            if (ranks[rank].recursive)
                return;
            die("taking again", rank, h);
        }
    }
    for (int i = 0; i < nheld; i++) {
        mfs_lock_rank h = held[i].rank;
        if (ranks[h].leaf)
            die("taking (nothing may be taken under a leaf)", rank, h);
        if (h >= rank)
            die("taking", rank, h);
    }
}

void mfs_lock_order_check(mfs_lock_rank rank)
{
    check(NULL, rank);
}

void mfs_lock_order_enter(const void *lock, mfs_lock_rank rank)
{
    check(lock, rank);
    if (nheld == HELD_MAX)
        die("taking (more than 16 held)", rank, held[nheld - 1].rank);
    held[nheld].lock = lock;
    held[nheld].rank = rank;
    nheld++;
}

void mfs_lock_order_leave(const void *lock)
{
    /* the last taken first: a recursive lock taken twice leaves twice */
    for (int i = nheld - 1; i >= 0; i--)
        if (held[i].lock == lock) {
            for (; i + 1 < nheld; i++)
                held[i] = held[i + 1];
            nheld--;
            return;
        }
    mfs_log(LOG_CRIT, "lock order: releasing a lock this thread does not "
            "hold (%p); aborting", lock);
    abort();
}

bool mfs_lock_order_held(const void *lock)
{
    for (int i = 0; i < nheld; i++)
        if (held[i].lock == lock)
            return true;
    return false;
}
