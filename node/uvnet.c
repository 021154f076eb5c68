/*
 * uvnet.c - the daemon's transport for a node (transport.h): the libuv
 * driver (sync/driver) on a real UDP socket, and mfs_node_start, which
 * reads what the node's files say about it (mesh key, listen address,
 * peers, boot epoch) and starts the driver and the node's mesh side
 * (mesh.c) on it. The transport's context is the node itself (its
 * m->sync). Nothing here touches the engine or the store: that is
 * mesh.c's, the same code the simulator runs.
 *
 * Where it listens: --listen, else what STORE/listen says (written by an
 * earlier --listen), else 0.0.0.0:7410, or any free port when 7410 is
 * taken (only when the user asked for nothing).
 */
#include "internal.h"

#include "driver.h"
#include "log.h"
#include "mesh.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- the transport (transport.h) over the driver ----------------------- */

static int uv_send(void *ctx, uint64_t to, int channel, uint8_t mtype,
                   const void *data, size_t len)
{
    mfs_node *m = ctx;
    if (!m->sync) /* the engine exists before the driver starts */
        return -EAGAIN;
    return mfs_sync_send(m->sync, to, channel, mtype, data, len);
}

static size_t uv_peers(void *ctx, mfs_peer_stat *out, size_t cap)
{
    mfs_node *m = ctx;
    return m->sync ? mfs_sync_peers(m->sync, out, cap) : 0;
}

static int uv_member_key(void *ctx, uint64_t id, const uint8_t *pub)
{
    mfs_node *m = ctx;
    return m->sync ? mfs_sync_member_key(m->sync, id, pub) : -ENOTCONN;
}

static void uv_join_done(void *ctx)
{
    mfs_node *m = ctx;
    if (m->sync)
        mfs_sync_join_done(m->sync);
}

static int uv_hold_ident(void *ctx, const mfs_noise_keypair *k,
                         const uint8_t *proof, size_t len)
{
    mfs_node *m = ctx;
    return m->sync ? mfs_sync_hold_identity(m->sync, k, proof, len) : -ENOTCONN;
}

static int uv_go_ident(void *ctx)
{
    mfs_node *m = ctx;
    return m->sync ? mfs_sync_go_identity(m->sync) : -ENOTCONN;
}

static int uv_is_ident(void *ctx)
{
    mfs_node *m = ctx;
    return m->sync ? mfs_sync_identity(m->sync) : 0;
}

static void uv_clock_flags(void *ctx, uint8_t flags)
{
    mfs_node *m = ctx;
    if (m->sync)
        mfs_sync_set_clock_flags(m->sync, flags);
}

static void uv_wake(void *ctx)
{
    mfs_node *m = ctx;
    if (m->sync)
        mfs_sync_wake(m->sync);
}

/* The driver's clock (uv_hrtime: CLOCK_MONOTONIC), which the replication
 * thread waits on too. */
static uint64_t uv_now(void *ctx)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static unsigned uv_port(void *ctx)
{
    mfs_node *m = ctx;
    return m->sync ? mfs_sync_port(m->sync) : 0;
}

static void uv_watch(void *ctx, uint32_t ms)
{
    mfs_node *m = ctx;
    if (m->sync)
        mfs_sync_watch(m->sync, ms);
}

static void uv_global_drops(void *ctx, uint64_t *out)
{
    mfs_node *m = ctx;
    if (m->sync)
        mfs_sync_global_drops(m->sync, out);
}

static uint64_t uv_send_drops(void *ctx)
{
    mfs_node *m = ctx;
    return m->sync ? mfs_sync_inbox_drops(m->sync) : 0;
}

/* Waits, 10 ms at a time, until nothing is queued to a live peer. */
static void uv_flush(void *ctx, uint32_t ms)
{
    mfs_node *m = ctx;
    for (uint32_t waited = 0; m->sync && waited < ms; waited += 10) {
        mfs_peer_stat ps[64];
        /* what still waits in the inbox first: a goodbye sent just now
         * is not queued in the core until the sync thread's next run */
        uint64_t queued = mfs_sync_inbox_bytes(m->sync);
        size_t n = mfs_sync_peers(m->sync, ps, 64);
        for (size_t k = 0; k < n && k < 64; k++)
            if (ps[k].state != MFS_PEER_DEAD)
                queued += ps[k].queued_bytes;
        if (!queued)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void uv_close(void *ctx)
{
    mfs_node *m = ctx;
    mfs_sync_stop(m->sync);
    m->sync = NULL;
}

/* ---- the driver's callbacks: up into the node ------------------------- */

static void uv_on_msg(void *arg, uint64_t from, uint8_t mtype,
                      const uint8_t *data, size_t len)
{
    mfs_node_on_msg(arg, from, mtype, data, len);
}

static void uv_on_peer(void *arg, uint64_t id, int state, uint64_t epoch)
{
    mfs_node_on_peer(arg, id, state, epoch);
}

int mfs_node_start(mfs_node *m, mfs_store *s, const char *store_dir,
                   const char *listen, const char *const *peers, size_t npeers,
                   char *err, size_t errcap)
{
    node_init(m, s, store_dir);
    m->net = (mfs_node_transport){
        .ctx = m,
        .send = uv_send,
        .peers = uv_peers,
        .wake = uv_wake,
        .clock_flags = uv_clock_flags,
        .now_us = uv_now,
        .port = uv_port,
        .send_drops = uv_send_drops,
        .global_drops = uv_global_drops,
        .watch = uv_watch,
        .flush = uv_flush,
        .close = uv_close,
        .open = NULL, /* the driver starts below, with the seeds */
        .member_key = uv_member_key,
        .join_done = uv_join_done,
        .hold_ident = uv_hold_ident,
        .go_ident = uv_go_ident,
        .is_ident = uv_is_ident,
    };
    struct mfs_mesh_key key;
    int r = mfs_mesh_key_load(store_dir, &key);
    if (r < 0) {
        snprintf(err, errcap, "cannot use the mesh key %s/%s: %s", store_dir,
                 MFS_MESH_KEY_FILE,
                 r == -ENOENT  ? "missing"
                 : r == -EPERM ? "readable by others (chmod 600 it)"
                               : strerror(-r));
        mfs_node_stop(m);
        return r;
    }
    if ((r = mfs_node_ident_load(m, err, errcap)) < 0) {
        memset(&key, 0, sizeof key);
        mfs_node_stop(m);
        return r;
    }
    /* the node's files: the same code as in the simulator (mesh.c) */
    node_boot b;
    node_boot_read(m, &b, listen, peers, npeers);

    r = node_engine_start(m, NULL);
    if (r < 0) {
        snprintf(err, errcap, "cannot start replication: %s", strerror(-r));
        memset(&key, 0, sizeof key);
        mfs_node_stop(m);
        return r;
    }
    mfs_sync_opts o;
    memset(&o, 0, sizeof o);
    o.listen = m->listen;
    o.peers = (const char *const *)m->seeds;
    o.npeers = m->nseeds;
    o.key = key;
    o.node_id = mfs_store_node_id(s);
    o.epoch = node_next_epoch(store_dir, node_wall_us(NULL));
    mfs_node_sync_config(&o.cfg);
    o.cfg.arg = m;
    o.cfg.on_msg = uv_on_msg;
    o.cfg.on_peer = uv_on_peer;
    /* also for a mesh key node: `meshfs migrate` may give it a key */
    o.cfg.admit = mfs_node_ident_admit;
    o.cfg.on_removed = mfs_node_ident_told_removed;
    if (m->id.on) {
        o.ident = &m->id.key.dh;
        if (m->id.migrating) {
            o.ident_later = 1;
            o.proof = m->id.proof;
            o.prooflen = MFS_JOIN_LEN;
        }
        if (m->id.joining) {
            o.join_to = m->id.join.by;
            if ((r = mfs_ident_dh_pub(m->id.join.by_pk, o.join_pub)) < 0) {
                snprintf(err, errcap, "%s/%s names a bad key", store_dir,
                         MFS_JOINING_FILE);
                mfs_node_stop(m);
                return r;
            }
            o.join_addr = m->id.join.host_port;
            o.join = m->id.join.join;
            o.joinlen = MFS_JOIN_LEN;
        }
    }
    r = mfs_sync_start(&o, &m->sync);
    /* a port the user chose (now or before) must be ours or fail */
    if (r == -EADDRINUSE && !b.explicit_listen) {
        snprintf(m->listen, sizeof m->listen, "0.0.0.0:0");
        r = mfs_sync_start(&o, &m->sync);
    }
    memset(&key, 0, sizeof key);
    memset(&o.key, 0, sizeof o.key);
    if (r < 0) {
        if (r == -EINVAL)
            snprintf(err, errcap,
                     "bad listen address or peer (want IP:PORT): %s",
                     m->listen);
        else
            snprintf(err, errcap, "cannot listen on %s: %s", m->listen,
                     strerror(-r));
        m->sync = NULL;
        mfs_node_stop(m);
        return r;
    }
    m->net_up = 1;
    char *colon = strrchr(m->listen, ':'); /* port 0: the one we got */
    if (colon && strcmp(colon, ":0") == 0)
        snprintf(colon, sizeof m->listen - (size_t)(colon - m->listen), ":%u",
                 mfs_sync_port(m->sync));
    node_boot_done(m, &b);
    if ((r = node_run(m)) < 0) {
        snprintf(err, errcap, "cannot start the replication thread: %s",
                 strerror(-r));
        mfs_node_stop(m);
        return r;
    }
    mfs_log(LOG_NOTICE,
            "sync: node %016" PRIx64 " listening on %s, %zu seed "
            "peer(s)",
            mfs_store_node_id(s), m->listen, m->nseeds);
    return 0;
}
