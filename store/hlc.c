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

uint64_t mfs_store_wall_ms(mfs_store *s)
{
    if (s->cfg.clock_ms)
        return s->cfg.clock_ms(s->cfg.clock_arg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void mfs_store_set_clock_correction(mfs_store *s, int64_t ms)
{
    __atomic_store_n(&s->clock_corr_ms, ms, __ATOMIC_RELAXED);
}

int64_t mfs_store_clock_correction(mfs_store *s)
{
    return __atomic_load_n(&s->clock_corr_ms, __ATOMIC_RELAXED);
}

uint64_t store_now_ms(mfs_store *s)
{
    int64_t t = (int64_t)mfs_store_wall_ms(s) + mfs_store_clock_correction(s);
    return t > 0 ? (uint64_t)t : 0;
}

int64_t mfs_store_now_ns(mfs_store *s)
{
    int64_t corr = mfs_store_clock_correction(s);
    if (s->cfg.clock_ms)
        return (int64_t)store_now_ms(s) * 1000000;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* file times keep nanoseconds */
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + corr * 1000000;
}

uint64_t mfs_store_hlc_ms(mfs_store *s)
{
    /* without wlock: the replication thread must not wait for a commit */
    return __atomic_load_n(&s->hlc_pub, __ATOMIC_RELAXED) >> 16;
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
