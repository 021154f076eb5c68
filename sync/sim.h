/*
 * sim.h - deterministic network simulator for the sync core.
 *
 * Many cores in one process on a fake clock, joined by a seeded network
 * that drops, duplicates, delays (hence reorders) and partitions
 * datagrams. Same seed, same calls => same run, so a failing seed can be
 * replayed (tests print it and honour MESHFS_SEED). Node i listens on
 * 10.0.0.(i+1):7000. Single-threaded; not for production use.
 */
#ifndef MFS_SYNC_SIM_H
#define MFS_SYNC_SIM_H

#include "core.h"

typedef struct mfs_sim mfs_sim;

typedef struct mfs_sim_net {
    double loss;           /* probability a datagram is dropped */
    double dup;            /* probability it is delivered twice */
    uint64_t delay_min_us; /* one-way delay, uniform in [min, max]: */
    uint64_t delay_max_us; /* a wide range reorders */
} mfs_sim_net;

typedef struct mfs_sim_hooks {
    void *arg;
    /* A message was delivered at node `node` (data borrowed). */
    void (*on_msg)(void *arg, unsigned node, uint64_t from, uint8_t mtype,
                   const uint8_t *data, size_t len);
    /* Every datagram a node sends, before the network acts on it. */
    void (*tap)(void *arg, unsigned from, const mfs_addr *to,
                const uint8_t *buf, size_t len);
    /* Node `node`'s core learned a peer, saw it change state, or saw it
     * restart (core.h on_peer). May be NULL. */
    void (*on_peer)(void *arg, unsigned node, uint64_t id, int state,
                    uint64_t epoch);
    /* Node `node`'s wall clock (unix us) at simulator time now_us, which
     * its heartbeats carry (core.h wall_us). NULL: the simulator's time
     * from a fixed unix origin, the same on every node. */
    uint64_t (*wall_us)(void *arg, unsigned node, uint64_t now_us);
} mfs_sim_hooks;

/* Creates n nodes (n <= 64) with config cfg (callbacks are replaced).
 * Returns 0 or -ENOMEM/-EINVAL. */
int mfs_sim_new(uint64_t seed, unsigned n, const mfs_sync_config *cfg,
                const mfs_sim_hooks *hooks, mfs_sim **out);
void mfs_sim_free(mfs_sim *s);
/* Per-node keys (core.h mfs_sync_core_set_identity) on every node, each
 * told every other's key; call before any seed. 0 or -errno. */
int mfs_sim_identities(mfs_sim *s);
const mfs_noise_keypair *mfs_sim_keypair(const mfs_sim *s, unsigned i);
/* Node a is told that node b is no member (its key is removed), also
 * after a restart of a. */
int mfs_sim_member_remove(mfs_sim *s, unsigned a, unsigned b);

void mfs_sim_set_net(mfs_sim *s, const mfs_sim_net *net);
/* Cuts (up = 0) or restores the link between nodes a and b, both ways. */
void mfs_sim_link(mfs_sim *s, unsigned a, unsigned b, int up);
/* Cuts or restores every link of node a. */
void mfs_sim_isolate(mfs_sim *s, unsigned a, int isolated);
/* Every datagram from a to b takes us more (one way: asymmetric delay). */
void mfs_sim_extra_delay(mfs_sim *s, unsigned a, unsigned b, uint64_t us);
/* Node a learns node b's address as a seed. */
int mfs_sim_seed(mfs_sim *s, unsigned a, unsigned b);

/* Runs until the fake clock reaches until_us. */
void mfs_sim_run(mfs_sim *s, uint64_t until_us);
uint64_t mfs_sim_now(const mfs_sim *s);

int mfs_sim_send(mfs_sim *s, unsigned from, unsigned to, int channel,
                 uint8_t mtype, const void *data, size_t len);
/* Delivers a raw datagram to node `to` now, as if from `from`. */
void mfs_sim_inject(mfs_sim *s, unsigned to, const mfs_addr *from,
                    const uint8_t *buf, size_t len);
/* Replaces node i by a fresh core (same id, new boot epoch), as after a
 * crash; it re-seeds from every other node's address. */
int mfs_sim_restart(mfs_sim *s, unsigned i);

mfs_sync_core *mfs_sim_core(mfs_sim *s, unsigned i);
uint64_t mfs_sim_id(const mfs_sim *s, unsigned i);
const mfs_addr *mfs_sim_addr(const mfs_sim *s, unsigned i);
/* Datagrams currently in the simulated network. */
size_t mfs_sim_in_flight(const mfs_sim *s);
/* The state node a holds about node b (-1 if unknown). */
int mfs_sim_peer_state(mfs_sim *s, unsigned a, unsigned b);

#endif
