/*
 * daemon.h - one whole running node, what `meshfs mount` runs: the store,
 * the file system (fs/), the mesh side (transport + replication, node.h),
 * the control socket and the rejoin thread, and the node's files in the
 * store directory. cli/ parses the arguments, checks the mount point,
 * decides whether to fork, and prints; everything between "open the
 * store" and "close the store" is here (node/daemon.c).
 *
 * Use: mfs_daemon_open() (everything up to a mounted file system and a
 * control socket that answers), then mfs_daemon_run() (the FUSE session
 * loop, until unmount, SIGTERM/SIGINT/SIGHUP or the control socket's
 * "stop"), then mfs_daemon_close() (always, also after a failed open:
 * rejoin, control socket, file system (publish, fsync, unmount), mesh
 * (goodbye), store, in that order). One thread calls all three; the
 * daemon's own threads are the fs's, the mesh's, the control server's
 * and the rejoin thread.
 */
#ifndef MFS_NODE_DAEMON_H
#define MFS_NODE_DAEMON_H

#include "fs.h"
#include "node.h"
#include "store.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

/* The daemon's group-commit window (mfs_store_config.commit_window_us):
 * changes from all FUSE threads share one LMDB commit at most this long
 * after the first of them; close and fsync commit at once. What a kill -9
 * may lose is at most this window of changes not yet closed or fsync'd.
 * MESHFS_COMMIT_WINDOW_US overrides it (0 still means 1 us: a daemon
 * always has group commit, docs/ARCHITECTURE.md). */
#define MFS_DAEMON_COMMIT_WINDOW_US 5000u

typedef struct mfs_daemon_config {
    const char *store_dir;  /* absolute */
    const char *mountpoint; /* absolute, checked by the caller */
    int create;             /* store_dir is missing or empty: make a new
                               store there, the first node of a new mesh */
    const char *fuse_opts;  /* -o options for FUSE, ours taken out */
    int debug;              /* libfuse's debug output */
    int writeback_cache;    /* -o writeback */
    int noatime;            /* -o noatime: reads never update atime */
    int writethrough;       /* -o writethrough: no write-behind (fs/wb.c) */
    const char *listen;     /* NULL: STORE/listen, else 0.0.0.0:7410 */
    const char *const *peers; /* seeds besides STORE/peers */
    size_t npeers;
    uint64_t trash_ms;      /* retention of deleted/overwritten files */
    uint32_t trash_share;   /* the trash's share of the disk, % (0: default) */
    /* The control socket's "stop": 1 if mountpoint still shows this
     * store there (NULL: assume so). */
    int (*mounted_here)(const char *mountpoint, const char *store_dir);
} mfs_daemon_config;

typedef struct mfs_daemon {
    mfs_store *store;
    mfs_fs fs;
    mfs_node mesh;
    mfs_control ctl;
    char store_dir[PATH_MAX];
    char mountpoint[PATH_MAX];
    int fs_inited, mesh_started, ctl_started;
    int ran; /* mfs_daemon_run returned 0 */
    /* after a failed open: 1 if the user's input was bad (FUSE options,
     * listen address, peers: the command exits 2), else 0 */
    int bad_input;
} mfs_daemon;

/* Opens the node: creates the store if cfg->create, opens it (taking its
 * single-writer lock, with group commit), starts collection, sets up the
 * file system, starts the mesh side (mfs_node_start: STORE/listen,
 * STORE/peers, STORE/epoch, the mesh key), mounts on cfg->mountpoint,
 * starts the control socket and, on a store that replaces an old one,
 * the rejoin thread. cfg and what it points to are copied or needed only
 * during the call. Returns 0, or -errno with a one-line message for the
 * user in err (d->bad_input says whether the input was at fault); call
 * mfs_daemon_close() in both cases. */
int mfs_daemon_open(mfs_daemon *d, const mfs_daemon_config *cfg, char *err,
                    size_t errcap);
/* Runs the file system's session loop until it is unmounted or the
 * process gets SIGTERM, SIGINT or SIGHUP. Returns 0 or -errno. */
int mfs_daemon_run(mfs_daemon *d);
/* Stops and frees what open started, in reverse order: the rejoin
 * thread, the control socket, the file system (publishes, fsyncs and
 * unmounts), the mesh side (STORE/peers, the goodbye), the store. Safe
 * after a failed or partial open. */
void mfs_daemon_close(mfs_daemon *d);

#endif
