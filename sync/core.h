/*
 * core.h - the meshfs transport as a pure state machine.
 *
 * One mfs_sync_core is one node: it owns its peers, their membership state,
 * and reliable message streams to each of them. It never reads a clock,
 * opens a socket, sleeps, or starts a thread: the caller feeds it time (in
 * microseconds, monotonic, any origin), received datagrams and send
 * requests, and calls mfs_sync_core_tick(), which transmits through the
 * tx callback and returns the next deadline. The libuv driver (driver.h)
 * and the simulator (sim.h) are two such callers.
 *
 * Threads: a core is not thread-safe; every call for one core must come
 * from one thread at a time (the driver's loop thread). Callbacks run
 * inside mfs_sync_core_input() / mfs_sync_core_tick() on that thread and
 * must not call back into the core except mfs_sync_core_send().
 */
#ifndef MFS_SYNC_CORE_H
#define MFS_SYNC_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mesh.h"
#include "noise.h"

enum { MFS_SYNC_URGENT = 0, MFS_SYNC_BULK = 1 };

enum mfs_peer_state {
    MFS_PEER_ALIVE = 0,
    MFS_PEER_SUSPECT = 1,
    MFS_PEER_DEAD = 2,
};

/* Why a datagram was dropped. Drops from addresses of no known peer count
 * in the core-wide stats, others in that peer's stats. */
enum mfs_drop_reason {
    MFS_DROP_SIZE,      /* shorter than header + tag, or > 1400 bytes */
    MFS_DROP_VERSION,   /* unknown version or flags */
    MFS_DROP_MESH,      /* another mesh's tag */
    MFS_DROP_DST,       /* addressed to another node, or from ourselves */
    MFS_DROP_RATE,      /* unknown source over its rate limit */
    MFS_DROP_AUTH,      /* tag did not verify (forged, corrupt, wrong key) */
    MFS_DROP_REPLAY,    /* packet number seen or below the window */
    MFS_DROP_EPOCH,     /* older boot epoch than the one we know */
    MFS_DROP_MALFORMED, /* authenticated but frames do not parse */
    MFS_DROP_FLOW,      /* sender overran our reassembly limits */
    MFS_DROP_PEERS,     /* peer table full */
    MFS_DROP_MEMBER,    /* a handshake from a key no member has (per-node
                           keys), or data from a node with no session */
    MFS_DROP__COUNT
};

const char *mfs_sync_drop_name(int reason);
const char *mfs_sync_state_name(int state);

/* A peer address: opaque to callers beyond sockaddr use. */
typedef struct mfs_addr {
    struct sockaddr_storage ss;
    socklen_t len;
} mfs_addr;

/* Formats "ip:port" into buf. Returns buf. */
const char *mfs_addr_str(const mfs_addr *a, char *buf, size_t cap);
/* 1 if same family, address and port. */
int mfs_addr_eq(const mfs_addr *a, const mfs_addr *b);

typedef struct mfs_sync_config {
    uint32_t max_msg;          /* largest message, bytes (16 MiB) */
    uint64_t max_queue;        /* bytes queued to one peer (64 MiB) */
    uint32_t window_bulk;      /* bulk message bytes in flight (4 MiB) */
    uint32_t window_urgent;    /* urgent message bytes in flight (1 MiB) */
    uint32_t suspect_ms;       /* silence before suspect (1000) */
    uint32_t dead_ms;          /* silence before dead (5000) */
    uint32_t hb_ms;            /* heartbeat period when idle (400) */
    /* Sparse heartbeats on a quiet link (0 = off, the default): once no
     * message went either way for idle_after_ms, heartbeats come every
     * idle_hb_ms, and a silent peer is suspect after 2 idle periods +
     * suspect_ms, dead after 3 + dead_ms. The first message after that
     * makes the link active again at once, and a peer that does not answer
     * it is suspect after suspect_ms, dead after dead_ms, as on an active
     * link: failure detection of a peer we talk to is not slowed. */
    uint32_t idle_hb_ms;
    uint32_t idle_after_ms;
    uint32_t probe_ms;         /* hello/heartbeat period to dead or
                                  unidentified peers (1000) */
    uint32_t max_ack_delay_us; /* (2000) */
    uint32_t ack_every;        /* ack after this many packets (4) */
    uint32_t initial_rtt_us;   /* before the first sample (100000) */
    uint32_t max_cwnd_pkts;    /* congestion window cap (1024, <= 2048) */
    uint32_t cc_slack_us;      /* queueing delay that shrinks cwnd (5000) */
    uint32_t unknown_pps;      /* datagrams/s from unknown addresses (2000) */
    uint32_t max_peers;        /* (256) */
    uint64_t rng_seed;         /* gossip choices; 0 = derived from node id */
    /* Per-node keys (mfs_sync_core_set_identity): a pair's session is
     * replaced once it is rekey_ms old (120,000) and used no more once
     * it is reject_ms old (180,000). */
    uint32_t rekey_ms, reject_ms;
    /* Per-node keys: a node that took more INITs than this in the last
     * second answers those without a cookie for their address with
     * COOKIE, before any Diffie-Hellman (200). */
    uint32_t hs_load_pps;

    /* Callbacks, all on the core's thread; arg (tx_arg for tx) is passed
     * back. */
    void *arg;
    void *tx_arg;
    /* Send one datagram (buf borrowed for the call). Required. */
    void (*tx)(void *arg, const mfs_addr *to, const uint8_t *buf, size_t len);
    /* A message arrived, exactly once (data borrowed for the call). */
    void (*on_msg)(void *arg, uint64_t from, uint8_t mtype, const uint8_t *data,
                   size_t len);
    /* A peer was learned, changed state, or restarted (epoch changed). */
    void (*on_peer)(void *arg, uint64_t id, int state, uint64_t epoch);
    /* The node's wall clock (unix microseconds) at core time now_us, sent
     * in every heartbeat so that peers measure their clocks' offset from
     * ours NTP-style. NULL: none sent (peers measure nothing). */
    uint64_t (*wall_us)(void *arg, uint64_t now_us);
    /* Per-node keys: node id, whose static key pub is no member's, asks
     * to join with the bytes its handshake carried (len, up to
     * MFS_HS_JOIN_MAX: an invitation's proof). Return 0 to admit it (pub
     * becomes id's member key at once, and the handshake goes on), or
     * anything else to refuse (dropped as MFS_DROP_MEMBER). NULL: nobody
     * joins through this node. */
    int (*admit)(void *arg, uint64_t id, const uint8_t pub[32],
                 const uint8_t *join, size_t len);
    /* Per-node keys: member id said, provably, that this node was
     * removed from the mesh (it answered our handshake with REMOVED). May
     * be NULL. */
    void (*on_removed)(void *arg, uint64_t by);
} mfs_sync_config;

/* Fills cfg with the defaults above and NULL callbacks. */
void mfs_sync_config_default(mfs_sync_config *cfg);

typedef struct mfs_peer_stat {
    uint64_t id; /* 0 = seed address not yet answered */
    uint64_t epoch;
    mfs_addr addr;
    int state; /* enum mfs_peer_state */
    int addr_validated;
    uint64_t srtt_us, rttvar_us, min_rtt_us;
    double loss_out;     /* fraction of our packets declared lost */
    double loss_in;      /* fraction of its packet numbers not seen */
    uint64_t last_rx_us; /* core clock of the last authenticated packet */
    /* the longest silence from it while packets to it were in flight (its
     * acks late), over the last 10 to 20 s: a stalled thread on either
     * side shows here */
    uint64_t rx_wait_max_us;
    uint64_t bytes_in, bytes_out, dgrams_in, dgrams_out;
    uint64_t msgs_in, msgs_out, msgs_dropped;
    uint64_t retransmits, pkts_lost, ptos, restarts;
    uint64_t queued_bytes; /* accepted by send(), not yet acked */
    uint64_t rx_buffered;  /* reassembly bytes held for this peer */
    uint64_t cwnd;
    uint64_t drops[MFS_DROP__COUNT];
    /* its wall clock minus ours, NTP-style from heartbeats (the sample of
     * least round trip among the last 8), and that sample's uncertainty
     * (half its round trip); clock_ok: measured at all; its flags */
    int64_t clock_offset_us;
    uint64_t clock_err_us;
    int clock_ok;
    uint8_t clock_flags; /* MFS_CLOCK_* (wire.h) it last sent */
    /* per-node keys: its key is known (a member's); the age of the
     * session we seal with (0: none), and whether a handshake of ours is
     * under way */
    int has_key;
    uint64_t session_age_us;
    int handshaking;
} mfs_peer_stat;

typedef struct mfs_sync_core mfs_sync_core;

/* Creates a core for node_id (non-zero) booted at epoch (must grow across
 * restarts of the same node: the driver uses wall-clock microseconds). key
 * and cfg are copied. Returns 0 and *out, -EINVAL, or -ENOMEM. */
int mfs_sync_core_new(const mfs_sync_config *cfg,
                      const struct mfs_mesh_key *key, uint64_t node_id,
                      uint64_t epoch, uint64_t now_us, mfs_sync_core **out);
/* Frees the core and every queued message. NULL is fine. */
void mfs_sync_core_free(mfs_sync_core *c);

/* ---- per-node keys (docs/WIRE.md "Identities") ----
 * After set_identity the core speaks wire version 3 only: each pair of
 * members runs a handshake (sync/hs.h) with the static keys that
 * member_key gave, and seals its datagrams with that session's keys; the
 * mesh key opens nothing. A node's key must be set before it can talk to
 * it; a node whose key is removed is cut off at once. All on the core's
 * thread. */

/* Turns per-node keys on with this node's static key (copied). 0, or
 * -EBUSY once a peer is known. */
int mfs_sync_core_set_identity(mfs_sync_core *c, const mfs_noise_keypair *k);
/* Moving a mesh from its mesh key (docs/WIRE.md "Moving a mesh"): the
 * core keeps speaking the mesh key but holds this node's static key
 * (copied) and the members' keys; go_identity then turns per-node keys on
 * at once (as set_identity does, with the peers it knows: each gets a
 * handshake, and what is in flight to it goes again under the session),
 * and forgets the mesh key. A core that holds its key turns per-node keys
 * on by itself when a handshake made for that key arrives (only a member
 * knows it: that member has moved). hold: 0 or -EALREADY (on already).
 * go: 0 or -EINVAL (no key held). identity: 1 once on. */
int mfs_sync_core_hold_identity(mfs_sync_core *c, const mfs_noise_keypair *k);
int mfs_sync_core_go_identity(mfs_sync_core *c);
int mfs_sync_core_identity(const mfs_sync_core *c);
/* Node id's static key (X25519, copied) is pub; NULL: id is no member
 * (removed): its sessions end, what was queued for it is dropped, and its
 * handshakes are refused (those that prove its last key get a REMOVED
 * answer, which tells it why). A changed key ends its sessions too. 0,
 * -EINVAL (id 0 or ours), -ENOMEM. */
int mfs_sync_core_member_key(mfs_sync_core *c, uint64_t id, const uint8_t *pub);
/* Joins through node id (static key pub) at addr: its key is a member's
 * from now on, it is a seed, and every handshake this node starts with it
 * carries join (len <= MFS_HS_JOIN_MAX bytes, copied; the invitation's
 * proof) until mfs_sync_core_join_done. id MFS_SYNC_JOIN_ALL (pub and
 * addr unused): every handshake carries join (a moving mesh's proof that
 * this node holds the mesh key). 0, -EINVAL, -ENOSPC. */
#define MFS_SYNC_JOIN_ALL UINT64_MAX
int mfs_sync_core_join(mfs_sync_core *c, uint64_t now_us, uint64_t id,
                       const uint8_t *pub, const mfs_addr *addr,
                       const uint8_t *join, size_t len);
void mfs_sync_core_join_done(mfs_sync_core *c);
/* Sessions and handshakes so far: made (completed), started (INITs
 * sent), answered (RESPs sent), cookies (COOKIEs sent: under load). */
void mfs_sync_core_hs_counts(const mfs_sync_core *c, uint64_t *made,
                             uint64_t *started, uint64_t *answered);
uint64_t mfs_sync_core_cookies(const mfs_sync_core *c);

/* The MFS_CLOCK_* flags (wire.h) the next heartbeats carry: what the
 * node knows of its own clock. Any thread (an atomic store). */
void mfs_sync_core_set_clock_flags(mfs_sync_core *c, uint8_t flags);
/* Someone watches the mesh (a status page, `meshfs top`): for ms from
 * now_us, links keep the busy heartbeat pace even when no data flows, and
 * each heartbeat asks the peer to answer at once (an echo of 0), so a
 * peer that goes silent is suspect within cfg.suspect_ms and dead within
 * cfg.dead_ms rather than an idle link's half a minute. Call
 * mfs_sync_core_tick() afterwards. */
void mfs_sync_core_watch(mfs_sync_core *c, uint64_t now_us, uint32_t ms);

/* Adds a seed address (from --peer or the store's memory). Hellos go there
 * until a member answers from it. Returns 0, -EEXIST, or -ENOSPC. */
int mfs_sync_core_add_seed(mfs_sync_core *c, uint64_t now_us,
                           const mfs_addr *addr);

/* Handles one received datagram (borrowed). Never fails: bad input is
 * counted and dropped. Call mfs_sync_core_tick() afterwards (it may be
 * once per batch) to send what the input made due. */
void mfs_sync_core_input(mfs_sync_core *c, uint64_t now_us,
                         const mfs_addr *from, const uint8_t *buf, size_t len);

/* Queues a message (copied) to peer `to` on channel MFS_SYNC_URGENT or
 * MFS_SYNC_BULK. It is delivered exactly once, unless the peer is declared
 * dead first (then it is dropped and counted in msgs_dropped) or either
 * node restarts. Returns 0, -ENOENT (unknown peer), -EHOSTDOWN (peer is
 * dead), -EMSGSIZE (> max_msg), -ENOBUFS (max_queue reached), -EINVAL. */
int mfs_sync_core_send(mfs_sync_core *c, uint64_t to, int channel,
                       uint8_t mtype, const void *data, size_t len);

/* Runs timers and transmits what is due. Returns the next absolute
 * deadline (us) at which tick must be called again, if nothing else
 * happens first. */
uint64_t mfs_sync_core_tick(mfs_sync_core *c, uint64_t now_us);

/* Copies up to cap peer stats into out. Returns the number of peers. */
size_t mfs_sync_core_peers(const mfs_sync_core *c, mfs_peer_stat *out,
                           size_t cap);
/* Drops from addresses of no known peer, by reason (array of
 * MFS_DROP__COUNT). */
const uint64_t *mfs_sync_core_global_drops(const mfs_sync_core *c);
uint64_t mfs_sync_core_node_id(const mfs_sync_core *c);
uint64_t mfs_sync_core_epoch(const mfs_sync_core *c);
/* Bytes of heap held by queued, in-flight and reassembled messages. */
uint64_t mfs_sync_core_mem(const mfs_sync_core *c);

#endif
