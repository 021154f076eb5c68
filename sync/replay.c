/*
 * replay.c - sliding replay window (see replay.h). Never changes state in
 * check; never rejects a fresh in-window number.
 */
#include "replay.h"

#include <errno.h>
#include <string.h>

void mfs_replay_init(mfs_replay *w)
{
    memset(w, 0, sizeof(*w));
}

static int bit_get(const mfs_replay *w, uint64_t pn)
{
    uint64_t i = pn % MFS_REPLAY_BITS;
    return (int)((w->bits[i / 64] >> (i % 64)) & 1);
}

static void bit_set(mfs_replay *w, uint64_t pn, int v)
{
    uint64_t i = pn % MFS_REPLAY_BITS;
    if (v)
        w->bits[i / 64] |= 1ull << (i % 64);
    else
        w->bits[i / 64] &= ~(1ull << (i % 64));
}

int mfs_replay_check(const mfs_replay *w, uint64_t pn)
{
    if (!w->any || pn > w->top)
        return 0;
    if (w->top - pn >= MFS_REPLAY_BITS)
        return -ERANGE;
    return bit_get(w, pn) ? -EALREADY : 0;
}

void mfs_replay_commit(mfs_replay *w, uint64_t pn)
{
    if (!w->any) {
        w->any = 1;
        w->top = pn;
        memset(w->bits, 0, sizeof(w->bits));
    } else if (pn > w->top) {
        uint64_t shift = pn - w->top;
        if (shift >= MFS_REPLAY_BITS) {
            memset(w->bits, 0, sizeof(w->bits));
        } else {
            for (uint64_t p = w->top + 1; p <= pn; p++)
                bit_set(w, p, 0);
        }
        w->top = pn;
    }
    bit_set(w, pn, 1);
}
