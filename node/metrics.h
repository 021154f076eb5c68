/*
 * metrics.h - the node's metrics in Prometheus's text format (node/
 * metrics.c), for /metrics of the status page (node/http.c).
 */
#ifndef MFS_NODE_METRICS_H
#define MFS_NODE_METRICS_H

#include <stdio.h>

struct mfs_kv;
struct mfs_fs;
struct mfs_node;

/* Writes every family: from r (the daemon's "stat" reply), the file
 * system's request counts (fs, NULL: none) and the mesh's per-peer
 * counters (mesh, NULL: none). One caller at a time (static buffers). */
void mfs_metrics_write(FILE *f, const struct mfs_kv *r, const struct mfs_fs *fs,
                       struct mfs_node *mesh);

#endif
