/*
 * transport.h - what a node's mesh side (node/mesh.c) needs from the
 * network below it, so that the same node code runs on the libuv driver
 * (node/uvnet.c: the daemon) and inside the deterministic simulator
 * (node/simnet.c: tests only).
 *
 * Down (node -> transport): the function pointers below. At start-up
 * the node reads its files (listen address, seeds, boot epoch) with the
 * same code whatever the transport (node/mesh.c, node/files.c). Up (transport ->
 * node): the transport calls mfs_node_on_msg() and mfs_node_on_peer()
 * for every message and peer event, and, when the node runs its engine
 * inline (no replication thread), mfs_node_tick() after its input, after
 * wake() and by the deadline that returned (node.h). The transport's
 * clock is the only clock the node's mesh side reads.
 */
#ifndef MFS_NODE_TRANSPORT_H
#define MFS_NODE_TRANSPORT_H

#include "core.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mfs_node_transport {
    void *ctx; /* passed back to every call; owned by the transport */
    /* Queues a message (copied) to peer `to` on MFS_SYNC_URGENT or
     * MFS_SYNC_BULK; returns as mfs_sync_core_send(). Any thread. */
    int (*send)(void *ctx, uint64_t to, int channel, uint8_t mtype,
                const void *data, size_t len);
    /* A snapshot of up to cap peers (core.h); returns the peer count.
     * Any thread. */
    size_t (*peers)(void *ctx, mfs_peer_stat *out, size_t cap);
    /* Any thread: mfs_node_tick() soon, on the transport's thread. */
    void (*wake)(void *ctx);
    /* Monotonic microseconds: the time of events, ticks and peer stats
     * (last_rx_us). With a replication thread it must be
     * CLOCK_MONOTONIC, which that thread waits on. */
    uint64_t (*now_us)(void *ctx);
    /* The MFS_CLOCK_* flags (wire.h) its heartbeats carry from now on.
     * Any thread. */
    void (*clock_flags)(void *ctx, uint8_t flags);
    /* The port it listens on (host order), for the report. */
    unsigned (*port)(void *ctx);
    /* Someone watches the mesh: keep links lively for ms (core.h
     * mfs_sync_core_watch). Any thread. NULL: not supported. */
    void (*watch)(void *ctx, uint32_t ms);
    /* Datagrams dropped from addresses of no known peer, by reason
     * (out[MFS_DROP__COUNT], core.h). Any thread. NULL: not counted. */
    void (*global_drops)(void *ctx, uint64_t *out);
    /* Messages send() accepted that the transport then dropped. */
    uint64_t (*send_drops)(void *ctx);
    /* After the goodbye: lets queued messages leave for up to ms, and
     * returns early once nothing is queued to a live peer. */
    void (*flush)(void *ctx, uint32_t ms);
    /* Stops delivering events and frees what the transport holds for
     * the node; no call reaches the node after it. NULL: nothing to do. */
    void (*close)(void *ctx);
    /* At the node's start, once its engine exists and before its first
     * tick: the seed addresses ("IP:PORT": those given, then STORE/peers)
     * and the boot epoch (STORE/epoch), both read by the node's own code
     * (node/files.c, node/mesh.c). 0 or -errno (the node does not
     * start). NULL: the transport was started with them (node/uvnet.c). */
    int (*open)(void *ctx, const char *const *seeds, size_t nseeds,
                uint64_t epoch);
    /* Per-node keys: node id's static key is pub (X25519; NULL: no
     * member), as mfs_sync_core_member_key; the node's join is over. Any
     * thread. NULL: the transport has no per-node keys. */
    int (*member_key)(void *ctx, uint64_t id, const uint8_t *pub);
    void (*join_done)(void *ctx);
    /* Moving a mesh from its mesh key (driver.h): hold the node's key and
     * send proof with every handshake; turn per-node keys on; are they
     * on. Any thread. NULL: the transport cannot move. */
    int (*hold_ident)(void *ctx, const mfs_noise_keypair *k,
                      const uint8_t *proof, size_t len);
    int (*go_ident)(void *ctx);
    int (*is_ident)(void *ctx);
} mfs_node_transport;

#endif
