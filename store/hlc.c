/*
 * hlc.c - the hybrid logical clock and stamp order.
 *
 * A stamp is (hlc, node) with hlc = (unix ms << 16) | counter. Local events
 * take max(last + 1, now << 16), so stamps are strictly increasing per node
 * even when the wall clock steps back; receiving a remote stamp moves the
 * clock forward to it (callers first refuse stamps too far in the future).
 * Must never read a clock other than the store's configured one.
 */
#include "kv.h"

#include <time.h>

int mfs_stamp_cmp(mfs_stamp a, mfs_stamp b)
{
    if (a.hlc != b.hlc)
        return a.hlc < b.hlc ? -1 : 1;
    if (a.node != b.node)
        return a.node < b.node ? -1 : 1;
    return 0;
}

uint64_t store_now_ms(mfs_store *s)
{
    if (s->cfg.clock_ms)
        return s->cfg.clock_ms(s->cfg.clock_arg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Called with the write lock held. */
mfs_stamp stamp_next(mfs_store *s)
{
    uint64_t pt = store_now_ms(s) << 16;
    s->hlc = pt > s->hlc ? pt : s->hlc + 1;
    return (mfs_stamp){s->hlc, s->node};
}

mfs_stamp mfs_stamp_now_peek(mfs_store *s)
{
    uint64_t pt = store_now_ms(s) << 16;
    return (mfs_stamp){pt > s->hlc ? pt : s->hlc, s->node};
}
