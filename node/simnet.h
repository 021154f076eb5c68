/*
 * simnet.h - a node's transport inside the deterministic simulator
 * (sync/sim.h), for tests: the node's mesh side (node/mesh.c, started
 * with mfs_node_start_on, which reads and writes the node's files as the
 * daemon does) runs on simulated node idx of sim, on its fake clock, with
 * its engine inline and the daemon's transport timings
 * (mfs_simnet_sim_new). The test is the transport's thread: it
 * hands the simulator's on_msg / on_peer hooks for idx to
 * mfs_node_on_msg / mfs_node_on_peer and calls mfs_node_tick after them,
 * when mfs_simnet_woken says so, and by the deadline the tick returned.
 * Built only into tests (library meshfs_node_sim), never into the daemon.
 */
#ifndef MFS_NODE_SIMNET_H
#define MFS_NODE_SIMNET_H

#include "sim.h"
#include "transport.h"

#include <stdatomic.h>

typedef struct mfs_simnet {
    mfs_sim *sim; /* borrowed */
    unsigned idx, n;
    atomic_int woken; /* wake() came (any thread: the store's commits) */
    /* Optional: sees every message the node sends and what the
     * simulator returned (a test's traces). */
    void (*tap)(void *arg, uint64_t to, uint8_t mtype, const void *data,
                size_t len, int rc);
    void *tap_arg;
} mfs_simnet;

/* A simulator of n nodes whose transports run with a node's timings
 * (mfs_node_sync_config), as the daemon's driver does; else as
 * mfs_sim_new. */
int mfs_simnet_sim_new(uint64_t seed, unsigned n, const mfs_sim_hooks *hooks,
                       mfs_sim **out);
/* Fills *t with the transport of simulated node idx of the n in sim;
 * sn is its context and must outlive the node (tap is cleared). It lasts
 * across mfs_sim_restart of that node (the new core is used). */
void mfs_simnet_init(mfs_simnet *sn, mfs_sim *sim, unsigned n, unsigned idx,
                     mfs_node_transport *t);
/* 1 if the node asked to be ticked (wake) since the last call. */
int mfs_simnet_woken(mfs_simnet *sn);

#endif
