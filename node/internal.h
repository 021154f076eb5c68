/*
 * internal.h - what node/'s files share and nothing outside node/ uses.
 */
#ifndef MFS_NODE_INTERNAL_H
#define MFS_NODE_INTERNAL_H

#include "node.h"

#define NODE_PEERS_FILE "peers"
#define NODE_LISTEN_FILE "listen"
#define NODE_MAX_SEEDS 64

/* mesh.c, for the transports' start-up (uvnet.c): zeroes m and sets up
 * its queue; the engine (rc NULL: mfs_node_repl_config) sending through
 * m->net; then the first tick, the replication thread unless
 * m->inline_repl, and the store's oplog callback. -errno. */
void node_init(mfs_node *m, mfs_store *s, const char *store_dir);
int node_engine_start(mfs_node *m, const mfs_repl_config *rc);
int node_run(mfs_node *m);
/* A number of ms (0..3600000) from the environment, else dflt. */
uint32_t node_env_ms(const char *name, uint32_t dflt);

/* files.c */
/* Adds the "HOST:PORT" lines of STORE/peers to seeds[n..cap) (strdup'd,
 * no duplicates). Returns the new count. */
size_t node_read_peers(const char *dir, char **seeds, size_t n, size_t cap);
/* A boot epoch larger than every earlier one of this store (kept in
 * STORE/epoch). */
uint64_t node_next_epoch(const char *dir);
/* STORE/listen: the address an earlier --listen chose. */
int node_write_listen(const char *dir, const char *addr);
void node_read_listen(const char *dir, char *out, size_t cap);

#endif
