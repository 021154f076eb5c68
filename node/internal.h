/*
 * internal.h - what node/'s files share and nothing outside node/ uses.
 */
#ifndef MFS_NODE_INTERNAL_H
#define MFS_NODE_INTERNAL_H

#include "node.h"

#define NODE_PEERS_FILE "peers"
#define NODE_LISTEN_FILE "listen"
#define NODE_MAX_SEEDS 64
#define NODE_DEFAULT_LISTEN "0.0.0.0:7410"

/* mesh.c, for the transports' start-up (uvnet.c): zeroes m and sets up
 * its queue; the engine (rc NULL: mfs_node_repl_config) sending through
 * m->net; then the first tick, the replication thread unless
 * m->inline_repl, and the store's oplog callback. -errno. */
void node_init(mfs_node *m, mfs_store *s, const char *store_dir);
int node_engine_start(mfs_node *m, const mfs_repl_config *rc);
int node_run(mfs_node *m);

/* What the node's files say at start-up, the same for every transport
 * (mesh.c): node_boot_read sets m->listen (listen, else STORE/listen,
 * else NODE_DEFAULT_LISTEN) and m->seeds (peers, then STORE/peers);
 * node_boot_done, once the transport listens, remembers a given listen
 * address in STORE/listen. */
typedef struct node_boot {
    int given;           /* listen was given now */
    int explicit_listen; /* given now or before: must be ours or fail */
    char stored[128];    /* what STORE/listen said ("": nothing) */
    char listen[128];    /* the address chosen (m->listen may then say
                            which port "0.0.0.0:0" took) */
} node_boot;
void node_boot_read(mfs_node *m, node_boot *b, const char *listen,
                    const char *const *peers, size_t npeers);
void node_boot_done(mfs_node *m, const node_boot *b);
/* The node's wall clock in microseconds: rc's (a simulated one) when it
 * has one, else CLOCK_REALTIME. */
uint64_t node_wall_us(const mfs_repl_config *rc);
/* A number of ms (0..3600000) from the environment, else dflt. */
uint32_t node_env_ms(const char *name, uint32_t dflt);

/* files.c */
/* Adds the "HOST:PORT" lines of STORE/peers to seeds[n..cap) (strdup'd,
 * no duplicates). Returns the new count. */
size_t node_read_peers(const char *dir, char **seeds, size_t n, size_t cap);
/* A boot epoch larger than every earlier one of this store (kept in
 * STORE/epoch); wall_us: the node's wall clock (microseconds since the
 * epoch). */
uint64_t node_next_epoch(const char *dir, uint64_t wall_us);
/* STORE/listen: the address an earlier --listen chose. */
int node_write_listen(const char *dir, const char *addr);
void node_read_listen(const char *dir, char *out, size_t cap);

#endif
