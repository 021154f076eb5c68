/*
 * gcq.c - the collection queue (DB_GCQ), written by the CRDT layer in the
 * transaction of the change that makes something garbage; collect.c
 * (layer 4) reads and empties it once the change is settled. The queue's
 * records are laid out in schema.h; collect.c says what each item means.
 */
#include "internal.h"

void gc_queue(wtx *w, mfs_id inode, mfs_stamp ver, mfs_stamp cause)
{
    uint8_t k[GCQ_KEY_LEN], v[GCQ_VAL_LEN];
    gcq_key_put(k, cause.hlc >> 16, inode, ver);
    stamp_put(v + GCQ_VAL_CAUSE, cause);
    tput(w, DB_GCQ, k, GCQ_KEY_LEN, v, GCQ_VAL_LEN);
    w->gc_queued = true;
}

void gc_queue_move(wtx *w, mfs_id entry, mfs_stamp old, mfs_stamp cause)
{
    uint8_t k[GCQ_KEY_LEN], v[GCQ_VAL_MOVE_LEN];
    gcq_key_put(k, 0, entry, old); /* no retention: first in the queue */
    stamp_put(v + GCQ_VAL_CAUSE, cause);
    v[GCQ_VAL_MOVE_TAG] = GCQ_MOVE;
    tput(w, DB_GCQ, k, GCQ_KEY_LEN, v, GCQ_VAL_MOVE_LEN);
    w->gc_queued = true;
}
