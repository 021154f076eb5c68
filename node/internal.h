/*
 * internal.h - what node/'s files share and nothing outside node/ uses.
 */
#ifndef MFS_NODE_INTERNAL_H
#define MFS_NODE_INTERNAL_H

#include "node.h"

#define NODE_PEERS_FILE "peers"
#define NODE_LISTEN_FILE "listen"
#define NODE_MAX_SEEDS 64

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
