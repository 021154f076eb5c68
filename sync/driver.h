/*
 * driver.h - runs a sync core on its own libuv thread over a real UDP
 * socket: uv_udp with recvmmsg for input, sendmmsg for output batches, a
 * uv_timer for the core's deadline and a uv_async to wake the loop when
 * another thread queues a message or stops the driver.
 *
 * The core is guarded by one (recursive) mutex, so mfs_sync_peers() may
 * be called from any thread. mfs_sync_send() never takes it (below).
 * Callbacks (on_msg, on_peer) run on the sync thread with that mutex
 * held; they may call mfs_sync_send() but must not block.
 */
#ifndef MFS_SYNC_DRIVER_H
#define MFS_SYNC_DRIVER_H

#include "core.h"

typedef struct mfs_sync mfs_sync;

typedef struct mfs_sync_opts {
    const char *listen;       /* "IP:PORT" (port 0 = any); required */
    const char *const *peers; /* seed "IP:PORT" strings, npeers of them */
    size_t npeers;
    struct mfs_mesh_key key;
    uint64_t node_id;    /* non-zero; the store's node id */
    uint64_t epoch;      /* boot epoch; must grow across restarts of this
                            node (0 = wall-clock microseconds) */
    mfs_sync_config cfg; /* tx is set by the driver; callbacks and
                            arg as in core.h */
    /* Optional: the application's timer (replication). Runs on the sync
     * thread with the mutex held, before every core tick: after I/O, on
     * mfs_sync_wake() and by its own deadline, which it returns
     * (absolute, us, the driver's monotonic clock). */
    uint64_t (*on_tick)(void *arg, uint64_t now_us);
    void *tick_arg;
    /* Per-node keys (core.h mfs_sync_core_set_identity): this node's
     * static key, NULL for the mesh key. join_to != 0: joining through
     * that node (static key join_pub, at join_addr "IP:PORT") with the
     * join bytes (mfs_sync_core_join). */
    const mfs_noise_keypair *ident;
    uint64_t join_to;
    uint8_t join_pub[32];
    const char *join_addr;
    const uint8_t *join;
    size_t joinlen;
    /* Moving a mesh from its mesh key (core.h hold_identity): with
     * ident_later the mesh key speaks until mfs_sync_go_identity (or a
     * member that moved); proof (prooflen bytes) goes with every
     * handshake (MFS_SYNC_JOIN_ALL). */
    int ident_later;
    const uint8_t *proof;
    size_t prooflen;
} mfs_sync_opts;

/* Binds the socket, creates the core and starts the sync thread. opts and
 * the strings it points to are copied/used only during the call. *out is
 * set before the thread starts, so callbacks may already use it.
 * Returns 0 and *out, -EINVAL on a bad address, or the socket's -errno
 * (e.g. -EADDRINUSE). */
int mfs_sync_start(const mfs_sync_opts *opts, mfs_sync **out);

/* Stops the thread, closes the socket, frees everything. Any thread but
 * the sync thread itself. NULL is fine. Queued messages are dropped. */
void mfs_sync_stop(mfs_sync *s);

/* Queues a message (copied); same returns as mfs_sync_core_send(). Any
 * thread; it never waits for the core's lock: the message goes to an
 * inbox that the sync thread hands to the core on its next run, and the
 * checks use each peer's state and queue as of the thread's last run
 * (plus the inbox). A message the core has no room for yet waits in the
 * inbox for the next run; one accepted for a peer that dies before the
 * hand-over is dropped and counted (mfs_sync_inbox_drops), as the core
 * drops what was queued for a peer that dies. */
int mfs_sync_send(mfs_sync *s, uint64_t to, int channel, uint8_t mtype,
                  const void *data, size_t len);
/* Bytes of messages mfs_sync_send accepted that the sync thread has not
 * handed to the core yet (a message of 0 bytes counts 1). */
uint64_t mfs_sync_inbox_bytes(mfs_sync *s);
/* Messages accepted by mfs_sync_send that the core then refused. */
uint64_t mfs_sync_inbox_drops(mfs_sync *s);

/* Any thread: runs on_tick (and the core) soon on the sync thread. */
void mfs_sync_wake(mfs_sync *s);

/* Adds a seed address "IP:PORT". Returns 0, -EINVAL, -EEXIST. */
int mfs_sync_add_peer(mfs_sync *s, const char *host_port);

/* Snapshot of peer stats (see core.h). Returns the number of peers. */
size_t mfs_sync_peers(mfs_sync *s, mfs_peer_stat *out, size_t cap);
/* Any thread: node id's static key is pub (NULL: no member), as
 * mfs_sync_core_member_key; the join is over (mfs_sync_core_join_done);
 * the core's handshake counts. */
int mfs_sync_member_key(mfs_sync *s, uint64_t id, const uint8_t *pub);
void mfs_sync_join_done(mfs_sync *s);
/* Any thread: moving a mesh (core.h): hold this node's key (and send
 * proof, if not NULL, with every handshake); turn per-node keys on; are
 * they on. */
int mfs_sync_hold_identity(mfs_sync *s, const mfs_noise_keypair *k,
                           const uint8_t *proof, size_t len);
int mfs_sync_go_identity(mfs_sync *s);
int mfs_sync_identity(mfs_sync *s);
void mfs_sync_hs_counts(mfs_sync *s, uint64_t *made, uint64_t *started,
                        uint64_t *answered);
/* Any thread: the MFS_CLOCK_* flags heartbeats carry from now on. */
void mfs_sync_set_clock_flags(mfs_sync *s, uint8_t flags);
/* Any thread: links stay lively for ms (mfs_sync_core_watch). */
void mfs_sync_watch(mfs_sync *s, uint32_t ms);
/* Copies the core-wide drop counters into drops[MFS_DROP__COUNT]. */
void mfs_sync_global_drops(mfs_sync *s, uint64_t *drops);
/* The bound port (host order), the node id. */
unsigned mfs_sync_port(const mfs_sync *s);
uint64_t mfs_sync_node_id(const mfs_sync *s);
/* Datagrams the kernel refused to take (EAGAIN/ENOBUFS). */
uint64_t mfs_sync_tx_drops(mfs_sync *s);
/* Messages given to the kernel, the datagrams in them (a message carries
 * several with UDP GSO), and whether GSO is on. */
void mfs_sync_tx_counts(mfs_sync *s, uint64_t *msgs, uint64_t *dgrams,
                        int *gso);

#endif
