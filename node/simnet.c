/*
 * simnet.c - the simulator's transport for a node (simnet.h). Every call
 * maps to the simulated core of one node; time is the simulator's. It
 * must never read a real clock or sleep: a run has to replay from its
 * seed. Tests only.
 */
#include "simnet.h"

#include "node.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

static int sn_send(void *ctx, uint64_t to, int channel, uint8_t mtype,
                   const void *data, size_t len)
{
    mfs_simnet *sn = ctx;
    int rc = -ENOENT;
    for (unsigned j = 0; j < sn->n; j++)
        if (mfs_sim_id(sn->sim, j) == to)
            rc = mfs_sim_send(sn->sim, sn->idx, j, channel, mtype, data, len);
    if (sn->tap)
        sn->tap(sn->tap_arg, to, mtype, data, len, rc);
    return rc;
}

static size_t sn_peers(void *ctx, mfs_peer_stat *out, size_t cap)
{
    mfs_simnet *sn = ctx;
    return mfs_sync_core_peers(mfs_sim_core(sn->sim, sn->idx), out, cap);
}

static void sn_clock_flags(void *ctx, uint8_t flags)
{
    mfs_simnet *sn = ctx;
    mfs_sync_core_set_clock_flags(mfs_sim_core(sn->sim, sn->idx), flags);
}

static void sn_wake(void *ctx)
{
    mfs_simnet *sn = ctx;
    atomic_store(&sn->woken, 1);
}

static uint64_t sn_now(void *ctx)
{
    mfs_simnet *sn = ctx;
    return mfs_sim_now(sn->sim);
}

static unsigned sn_port(void *ctx)
{
    mfs_simnet *sn = ctx;
    const struct sockaddr_in *a = (const void *)&mfs_sim_addr(sn->sim,
                                                              sn->idx)->ss;
    return ntohs(a->sin_port);
}

/* mfs_sim_send hands a message to the core at once: nothing it accepted
 * is dropped later but by the core (msgs_dropped). */
static uint64_t sn_send_drops(void *ctx)
{
    return 0;
}

/* The fake clock moves only when the test runs the simulator: what the
 * goodbye queued leaves then (or never, when the test restarts the node
 * first, as a crash). */
static void sn_flush(void *ctx, uint32_t ms)
{
}

/* The node's seeds (STORE/peers and those given): the simulated nodes at
 * those addresses; others are nobody's (a daemon would try them in vain).
 * The simulator's cores choose their own boot epochs (mfs_sim_restart),
 * so the node's, kept in STORE/epoch, is not used here. */
static int sn_open(void *ctx, const char *const *seeds, size_t nseeds,
                   uint64_t epoch)
{
    mfs_simnet *sn = ctx;
    (void)epoch;
    for (size_t k = 0; k < nseeds; k++)
        for (unsigned j = 0; j < sn->n; j++) {
            char a[80];
            mfs_addr_str(mfs_sim_addr(sn->sim, j), a, sizeof a);
            if (j != sn->idx && strcmp(a, seeds[k]) == 0)
                mfs_sim_seed(sn->sim, sn->idx, j); /* -EEXIST: known */
        }
    return 0;
}

int mfs_simnet_sim_new(uint64_t seed, unsigned n, const mfs_sim_hooks *hooks,
                       mfs_sim **out)
{
    mfs_sync_config cfg;
    mfs_node_sync_config(&cfg);
    return mfs_sim_new(seed, n, &cfg, hooks, out);
}

void mfs_simnet_init(mfs_simnet *sn, mfs_sim *sim, unsigned n, unsigned idx,
                     mfs_node_transport *t)
{
    sn->sim = sim;
    sn->n = n;
    sn->idx = idx;
    sn->tap = NULL;
    sn->tap_arg = NULL;
    atomic_store(&sn->woken, 0);
    *t = (mfs_node_transport){
        .ctx = sn,
        .send = sn_send,
        .peers = sn_peers,
        .wake = sn_wake,
        .clock_flags = sn_clock_flags,
        .now_us = sn_now,
        .port = sn_port,
        .send_drops = sn_send_drops,
        .flush = sn_flush,
        .close = NULL,
        .open = sn_open,
    };
}

int mfs_simnet_woken(mfs_simnet *sn)
{
    return atomic_exchange(&sn->woken, 0);
}
