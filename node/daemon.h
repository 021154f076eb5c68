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
 * rejoin, control socket, write concern, file system (publish, fsync,
 * unmount), mesh (goodbye), store, in that order). One thread calls all three;
 * the daemon's own threads are the fs's, the mesh's, the control server's and
 * the rejoin thread.
 */
#ifndef MFS_NODE_DAEMON_H
#define MFS_NODE_DAEMON_H

#include "fs.h"
#include "node.h"
#include "http.h"
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
    int stack;              /* mount over the dead mount of a killed daemon
                               on mountpoint (fs/stack.c) */
    int adopt;              /* take the mount on mountpoint over from the
                               holder of a crashed daemon (fs/holder.c) */
    const char *listen;     /* NULL: STORE/listen, else 0.0.0.0:7410 */
    const char *const *peers; /* seeds besides STORE/peers */
    size_t npeers;
    uint64_t trash_ms;      /* retention of deleted/overwritten files */
    uint32_t trash_share;   /* the trash's share of the disk, % (0: default) */
    /* The write concern (--acks N, -o acks=N and the rest) and which of
     * its settings were given (MFS_DAEMON_ACKS_*). A given n starts a new
     * setting (what else was given, defaults for the rest); without it
     * the remembered one (STORE/acks) holds, with what else was given
     * changed. Remembered once the mount is up. */
    mfs_acks_config acks;
    unsigned acks_given;
    /* The status page (--http; addr NULL: none), node/http.h. */
    mfs_http_config http;
    /* The control socket's "stop": 1 if mountpoint still shows this
     * store there (NULL: assume so). */
    int (*mounted_here)(const char *mountpoint, const char *store_dir);
} mfs_daemon_config;

enum {
    MFS_DAEMON_ACKS_N = 1 << 0,
    MFS_DAEMON_ACKS_TIMEOUT = 1 << 1,
    MFS_DAEMON_ACKS_WAIT = 1 << 2,
    MFS_DAEMON_ACKS_ON_CLOSE = 1 << 3,
};

typedef struct mfs_daemon {
    mfs_store *store;
    mfs_fs fs;
    mfs_node mesh;
    mfs_control ctl;
    struct mfs_http *http; /* the status page, or NULL */
    char store_dir[PATH_MAX];
    char mountpoint[PATH_MAX];
    int fs_inited, mesh_started, ctl_started;
    int acks_attached;    /* mfs_node_acks_attach was called */
    mfs_acks_config acks; /* the write concern this mount runs with */
    int ran; /* mfs_daemon_run returned 0 */
    /* after a failed open: 1 if the user's input was bad (FUSE options,
     * listen address, peers: the command exits 2), else 0 */
    int bad_input;
} mfs_daemon;

/* Opens the node: creates the store if cfg->create, opens it (taking its
 * single-writer lock, with group commit), starts collection, sets up the
 * file system, starts the mesh side (mfs_node_start: STORE/listen,
 * STORE/peers, STORE/epoch, the mesh key), gives the file system the
 * write concern (cfg->acks, STORE/acks), mounts on cfg->mountpoint,
 * starts the control socket and, on a store that replaces an old one,
 * the rejoin thread, and then remembers the write concern given in
 * STORE/acks. cfg and what it points to are copied or needed only
 * during the call. Returns 0, or -errno with a one-line message for the
 * user in err (d->bad_input says whether the input was at fault); call
 * mfs_daemon_close() in both cases. */
int mfs_daemon_open(mfs_daemon *d, const mfs_daemon_config *cfg, char *err,
                    size_t errcap);
/* Runs the file system's session loop until it is unmounted or the
 * process gets SIGTERM, SIGINT or SIGHUP. Returns 0 or -errno. */
int mfs_daemon_run(mfs_daemon *d);
/* Stops and frees what open started, in reverse order: the rejoin
 * thread, the control socket (and the `meshfs sync` waits it runs), the
 * write concern (fsyncs still waiting for acks fail with EIO), the file
 * system (publishes, fsyncs and unmounts), the mesh side (STORE/peers, the
 * goodbye), the store. Safe after a failed or partial open. */
void mfs_daemon_close(mfs_daemon *d);

/* ---- the write concern's remembered setting (node/files.c) -------------
 * STORE/acks, one line: "acks N timeout_ms MS wait 0|1 on_close 0|1\n",
 * written whole (tmp, fsync, rename). `meshfs mount` writes it, `meshfs
 * stat` shows it while no daemon runs. */
#define MFS_ACKS_FILE "acks"
/* The longest timeout a mount may give (--acks-timeout, STORE/acks). */
#define MFS_DAEMON_ACKS_TIMEOUT_MAX_MS 3600000u
/* The defaults: off, MFS_ACKS_TIMEOUT_DEFAULT_MS. */
void mfs_daemon_acks_default(mfs_acks_config *c);
/* Reads STORE/acks into *c. 0, -ENOENT (no file), -EINVAL (malformed or
 * out of range: *c then holds the defaults) or another -errno. */
int mfs_daemon_acks_read(const char *store_dir, mfs_acks_config *c);
/* Replaces STORE/acks with c. 0 or -errno (the old file stays). */
int mfs_daemon_acks_write(const char *store_dir, const mfs_acks_config *c);

/* ---- `meshfs sync` on the control socket (node/control.c) --------------
 * Request "sync PEERS TIMEOUT_MS" (PEERS 0: every live member). Reply, as
 * it changes: a "held" line per member and then a "progress" line (the
 * group's end); last "ok" or "error ERRNO TEXT" (ETIMEDOUT: TEXT names
 * what is missing). "note TEXT" lines are for the user as they are. Both
 * ends use these codecs. */
typedef struct mfs_sync_progress {
    uint64_t seq;  /* this node's changes up to this op */
    unsigned have; /* members that hold them durably (see want) */
    unsigned want; /* members needed: PEERS, or the live ones */
} mfs_sync_progress;
/* Encoders write the fields, without the key, into buf; decoders return
 * 0 or -EINVAL (a line they cannot read). Extra fields are ignored. */
void mfs_sync_progress_format(const mfs_sync_progress *p, char *buf,
                              size_t cap);
int mfs_sync_progress_parse(const char *fields, mfs_sync_progress *out);
void mfs_sync_held_format(const mfs_node_held *h, char *buf, size_t cap);
int mfs_sync_held_parse(const char *fields, mfs_node_held *out);

#endif
