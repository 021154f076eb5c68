/*
 * replay.h - sliding replay window over packet numbers (one per sender,
 * destination and boot epoch). A packet number is fresh if it is above the
 * highest seen, or within the last MFS_REPLAY_BITS and not yet seen.
 * Checking and committing are split so that a datagram changes the window
 * only after it was authenticated and parsed. Pure; caller serialises.
 */
#ifndef MFS_SYNC_REPLAY_H
#define MFS_SYNC_REPLAY_H

#include <stdint.h>

#define MFS_REPLAY_BITS 2048

typedef struct mfs_replay {
    uint64_t top;                        /* highest packet number committed */
    int any;                             /* 0 until the first commit */
    uint64_t bits[MFS_REPLAY_BITS / 64]; /* bit (pn % BITS) = seen */
} mfs_replay;

void mfs_replay_init(mfs_replay *w);
/* 0 if pn is fresh, -EALREADY if seen, -ERANGE if older than the window. */
int mfs_replay_check(const mfs_replay *w, uint64_t pn);
/* Marks pn seen; pn must have passed mfs_replay_check(). */
void mfs_replay_commit(mfs_replay *w, uint64_t pn);

#endif
