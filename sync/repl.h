/*
 * repl.h - replication between mounts: which ops and chunks a peer lacks,
 * and moving them (DESIGN P5, P6, P9, P12).
 *
 * One mfs_repl sits between one store and one transport. Like the core it
 * is a state machine: it never reads a clock or opens a socket. The caller
 * feeds it the transport's events (a message arrived, a peer changed
 * state) and the time, calls mfs_repl_tick() by the deadline it returns,
 * and gives it a send function. The node (node/mesh.c: on its replication
 * thread in the daemon, inline in the simulator) and the simulator's bare
 * engine runs are such callers. It calls the store directly (LMDB
 * transactions) from the calling thread, except that received chunks are
 * checked and stored by the writer cfg.store_chunks names (a thread of its
 * own in the daemon), so that the engine never waits for the disk.
 *
 * Protocol (messages on the reliable transport; docs/WIRE.md):
 *  - STATE: the sender's version vector, wall clock and missing chunks;
 *    sent when a peer comes alive, shortly after our vector changes, and
 *    every state_ms as anti-entropy.
 *  - PULL / OPS: a node that sees a peer hold ops it lacks asks for them
 *    once the lack has lasted pull_grace_ms (the push may be on its way)
 *    (one pull at a time, pull_bytes per request); the answer is a stream
 *    of OPS batches (bulk channel: a catch-up must not hold small changes
 *    back), zlib-compressed when that shrinks them. New local ops are also
 *    pushed at once (urgent channel when small) to peers believed up to
 *    date, only our own to a peer far behind (an optimisation: correctness
 *    rests on STATE + PULL alone).
 *  - WANT / CHUNK / NOCHUNK: chunks a version needs are fetched on demand
 *    from any live peer, a window of bytes in flight per peer; a peer that
 *    lacks one says so and the next peer is asked.
 * Collection is the store's (collect.c); the engine hands it the vector
 * every member holds (the settled vector).
 *
 * Threads: every call except mfs_repl_changed() and mfs_repl_status() /
 * mfs_repl_peer_vv() must come from one thread at a time (the sync
 * thread). Those three may be called from any thread.
 */
#ifndef MFS_SYNC_REPL_H
#define MFS_SYNC_REPL_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Message types on the transport (the core leaves mtype to us). */
enum mfs_repl_mtype {
    MFS_MT_STATE = 16,
    MFS_MT_PULL = 17,
    MFS_MT_OPS = 18,
    MFS_MT_WANT = 19,
    MFS_MT_CHUNK = 20,
    MFS_MT_NOCHUNK = 21,
    MFS_MT_BYE = 22,
    MFS_MT_REFUSED = 23, /* "you were removed from the mesh": one byte 0 */
    MFS_MT_SNAPGET = 24, /* a window of a snapshot (docs/REPLICATION.md) */
    MFS_MT_SNAP = 25,    /* a piece of one */
    /* write concern (DESIGN P10): "I hold your ops up to seq durably,
     * and of those whole all but the versions at or past hlc" (u64
     * message seq, u64 origin, u64 seq, u64 hlc: 0 = all whole), and
     * "tell me how far you hold mine, and make up to seq durable soon"
     * (u64 seq) */
    MFS_MT_HELD = 26,
    MFS_MT_ASKHELD = 27,
};

typedef int (*mfs_repl_send_fn)(void *arg, uint64_t to, int channel,
                                uint8_t mtype, const void *data, size_t len);

typedef struct mfs_repl_config {
    mfs_repl_send_fn send; /* required */
    void *arg;
    uint32_t state_ms;     /* anti-entropy STATE period (15000) */
    uint32_t coalesce_ms;  /* STATE after a change, at most this often (5) */
    uint32_t batch_bytes;  /* raw op bytes per OPS message (256 KiB) */
    uint32_t pull_bytes;   /* raw op bytes answered per PULL (4 MiB) */
    uint32_t push_bytes;   /* largest push of new local ops (1 MiB) */
    uint32_t chunk_window; /* chunk bytes requested, per peer (8 MiB) */
    uint32_t chunk_timeout_ms; /* re-ask another peer after (10000) */
    uint32_t pull_timeout_ms;  /* pull answered by nothing after (10000) */
    /* a peer's ops this node lacks are pulled once the lack has lasted
     * this long: its push may be on its way, behind the STATE that told
     * of it (100) */
    uint32_t pull_grace_ms;
    /* wall clock in ms for clock skew; NULL = CLOCK_REALTIME */
    uint64_t (*wall_ms)(void *arg);
    void *clock_arg;
    int store_chunks; /* who stores received chunks (MFS_REPL_STORE_NOW) */
    /* op bytes applied per store call: an OPS message larger than this is
     * applied in slices by mfs_repl_work(), and bulk OPS that come
     * meanwhile wait behind it (0: every message at once, as it comes) */
    uint32_t apply_bytes;
} mfs_repl_config;

/* Who checks and stores the chunks that arrive (repl.c, "storing chunks"):
 * the engine's thread at the next tick, a thread of the engine's own (the
 * daemon: the engine never waits for the disk), or the engine's thread a
 * tick later, as the thread would (the simulator: deterministic). */
enum { MFS_REPL_STORE_NOW, MFS_REPL_STORE_THREAD, MFS_REPL_STORE_NEXT_TICK };

void mfs_repl_config_default(mfs_repl_config *cfg);

typedef struct mfs_repl mfs_repl;

/* s is borrowed and must outlive the engine. Returns 0, -EINVAL, -ENOMEM. */
int mfs_repl_new(mfs_store *s, const mfs_repl_config *cfg, uint64_t now_us,
                 mfs_repl **out);
void mfs_repl_free(mfs_repl *r);

/* Transport events (core.h on_msg / on_peer). Bad messages are counted
 * and dropped; they change nothing. */
void mfs_repl_on_msg(mfs_repl *r, uint64_t now_us, uint64_t from, uint8_t mtype,
                     const uint8_t *data, size_t len);
void mfs_repl_on_peer(mfs_repl *r, uint64_t now_us, uint64_t id, int state,
                      uint64_t epoch);
/* Any thread: 1 if a message of this type and bytes is bulk: a chunk of
 * more than 4 KiB, a pull's answer or a large push (a catch-up), a
 * snapshot piece. The engine sends them on the bulk channel, and a
 * receiver may take them after everything else (node/mesh.c does): a
 * small change must not wait behind a catch-up. Reads at most 8 bytes. */
int mfs_repl_msg_bulk(uint8_t mtype, const uint8_t *data, size_t len);

/* Runs what is due; returns the next absolute deadline (us). */
uint64_t mfs_repl_tick(mfs_repl *r, uint64_t now_us);
/* With cfg.apply_bytes: applies the next slice (at most apply_bytes of
 * ops, whole actions) of the OPS messages received and not applied whole
 * yet, oldest first. Returns 1 while some remain: the caller calls it
 * again soon, serving the messages it holds for the engine's urgent
 * channel first (a small file's op and chunk must not wait behind a
 * catch-up), and the bulk ones after it is done (they would wait in the
 * engine anyway). The sync thread, as every engine call. */
int mfs_repl_work(mfs_repl *r, uint64_t now_us);
/* 1 while mfs_repl_work() has work. Lock-free: the sync thread may call it
 * holding its own queue's lock. */
int mfs_repl_work_pending(mfs_repl *r);

/* Any thread: tells every live peer we are leaving (a clean unmount), so
 * they stop waiting for us at once. Returns how many were told. */
size_t mfs_repl_bye(mfs_repl *r);

/* Any thread: local ops were committed (call, then wake the sync thread). */
void mfs_repl_changed(mfs_repl *r);
/* 1 if mfs_repl_changed() was called since the last tick. */
int mfs_repl_pending(mfs_repl *r);

typedef struct mfs_repl_peer {
    uint64_t id;
    int state;                 /* enum mfs_peer_state, as last reported */
    int heard;                 /* a STATE arrived from it */
    int left;                  /* it said goodbye and has not come back */
    int removed;               /* removed from the mesh: its messages refused */
    uint64_t ops_they_lack;    /* ops we hold that it lacks */
    uint64_t ops_we_lack;      /* ops it holds that we lack */
    uint64_t bytes_they_lack;  /* estimate: its ops + its missing chunks */
    uint64_t bytes_we_lack;    /* estimate, see docs/WIRE.md */
    uint64_t chunks_they_want; /* chunks it reported missing */
    /* our ops it holds durably, up to held (HELD); of them, the versions
     * at or past held_hlc (0: none) still wait for a chunk there */
    uint64_t held, held_hlc;
    int64_t skew_ms;           /* its wall clock minus ours (one-way est.) */
    uint64_t last_state_us;    /* when its last STATE arrived (our clock) */
    uint64_t ops_sent, ops_recv, chunks_sent, chunks_recv;
    uint64_t bytes_sent, bytes_recv; /* payload bytes, after compression */
} mfs_repl_peer;

typedef struct mfs_repl_status {
    uint64_t ops_to_go;    /* most ops any live peer holds that we lack */
    uint64_t chunks_to_go; /* chunks our versions wait for */
    uint64_t bytes_to_go;  /* estimate of both */
    double ops_per_s;      /* received, smoothed */
    double bytes_per_s;    /* received, smoothed */
    int64_t eta_ms;        /* -1 unknown */
    int catching_up;       /* something to go */
    int in_sync;           /* nothing to go either way with every live
                              peer, and every live peer has reported */
    size_t live_peers;
    uint64_t bad_msgs;      /* malformed messages dropped */
    uint64_t pulls, pushes; /* requests made, pushes sent */
    /* collection: a member that lacks ops we hold holds it back */
    uint64_t held_by;      /* 0: none */
    int held_live;         /* it is alive (catching up) */
    int held_heard;        /* it reported since we started */
    uint64_t held_last_us; /* when its last STATE arrived (our clock) */
    uint64_t refused;      /* messages of removed members, refused */
    int removed_self;      /* this node was removed from the mesh */
    uint64_t removed_by;   /* the member that said so (0: learned from the
                              member registry) */
    /* snapshots (a node below the peers' op log floors) */
    uint64_t snap_from;       /* fetching one from this peer (0: not) */
    uint64_t snap_bytes_done; /* of snap_bytes_total */
    uint64_t snap_bytes_total;
    uint64_t snaps_installed, snaps_served;
    /* chunk bytes waiting for the chunk writer now, and the most so far */
    uint64_t storing_bytes, storing_max_bytes;
    int snap_refused; /* -ENOTEMPTY: we folded ops a snapshot lacked */
} mfs_repl_status;

/* Any thread: a snapshot. Fills up to cap peers; returns the peer count. */
size_t mfs_repl_status_get(mfs_repl *r, mfs_repl_status *st,
                           mfs_repl_peer *peers, size_t cap);
/* Any thread: the last version vector peer reported (caller frees).
 * -ENOENT if it never did. */
int mfs_repl_peer_vv(mfs_repl *r, uint64_t peer, mfs_vv *out);
/* The settled vector last given to the store (empty before the first). */
void mfs_repl_settled(mfs_repl *r, mfs_vv *out);

/* ---- write concern (DESIGN P10, docs/REPLICATION.md) --------------------
 * A node that waits asks the live members (ASKHELD) how far they hold its
 * ops; each answers (HELD) once its store holds them durably and whole
 * (mfs_store_vv_held), and again whenever that grows while asked (for a
 * minute after the last ask). One answer covers every wait up to it. */
typedef void (*mfs_repl_held_fn)(void *arg, int err);
/* Does a member that said HELD (held, held_hlc) hold our op seq, whose hlc
 * is hlc, and every one before it, durably and whole? */
static inline int mfs_repl_holds(uint64_t held, uint64_t held_hlc, uint64_t seq,
                                 uint64_t hlc)
{
    return held >= seq && (held_hlc == 0 || held_hlc > hlc);
}
/* Any thread but inside an engine call: calls done(arg, 0) once n members
 * said they hold this node's ops up to seq (whose hlc is hlc:
 * mfs_store_op_hlc) durably and whole, done(arg, -ETIMEDOUT) once
 * timeout_ms passed, or done(arg, -EHOSTUNREACH) as soon as fewer than n
 * members are alive and have not said so (unless wait: then it waits for
 * them until the timeout). done runs on this thread when the answer is
 * known at once, else on the engine's thread (inside an engine call,
 * with the engine's lock held: it must not call the engine). now_us is
 * the engine's clock. 0, or -ENOMEM (done not called). */
int mfs_repl_await_held(mfs_repl *r, uint64_t now_us, uint64_t seq,
                        uint64_t hlc, unsigned n, uint32_t timeout_ms, int wait,
                        mfs_repl_held_fn done, void *arg);
/* Any thread but inside an engine call: asks every live member to hold
 * this node's ops up to seq durably and say so (`meshfs sync`). */
void mfs_repl_ask_held(mfs_repl *r, uint64_t seq);
/* Any thread but inside an engine call: on, every push of this node's
 * ops also asks its member for HELD up to them (ASKHELD ahead of the ops),
 * so the member syncs as it applies them (the write concern's mounts). */
void mfs_repl_set_ask_pushes(mfs_repl *r, int on);
/* Any thread but inside an engine call: this node's ops in (from, to]
 * (a batch of mfs_store_ops_since's format) that a record of the intent
 * log just made durable, for the write concern's members at the
 * engine's next turn (mfs_repl_tick), before the commit that carries
 * them (the store's logged callback). Ignored unless pushes ask
 * (mfs_repl_set_ask_pushes). mfs_repl_early_pushes: how many pushes
 * went so (`meshfs stat`'s acks_early). */
void mfs_repl_logged(mfs_repl *r, uint64_t from, uint64_t to,
                     const uint8_t *ops, size_t len);
uint64_t mfs_repl_early_pushes(mfs_repl *r);
/* Any thread: 1 when this node's ops up to seq went to mfs_repl_logged
 * (they leave without waiting for their commit). */
int mfs_repl_logged_has(mfs_repl *r, uint64_t seq);
/* Any thread: every wait still open ends with done(arg, err), on this
 * thread (an unmount). */
void mfs_repl_await_cancel(mfs_repl *r, int err);

#endif
