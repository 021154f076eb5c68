/*
 * fs.h - the meshfs FUSE filesystem: libfuse3 low-level operations on top of
 * the store, plus the two helper threads a mount needs (the publish timer and
 * the kernel-cache invalidation sender).
 *
 * Use: mfs_fs_config_default(), mfs_fs_init() (parses the FUSE options,
 * nothing is mounted yet), mfs_fs_mount(), mfs_fs_run() (blocks in the
 * multi-threaded session loop until the file system is unmounted or the
 * process gets SIGTERM/SIGINT/SIGHUP), mfs_fs_close() (publishes, fsyncs,
 * unmounts, frees). The store is borrowed: the caller opened it and closes
 * it after mfs_fs_close().
 *
 * Store inode numbers are used as FUSE inode numbers (the store never reuses
 * them; the generation is the constant 1). Inode lifetime follows the
 * kernel's lookup counts, kept in fs/inodes.c.
 */
#ifndef MFS_FS_H
#define MFS_FS_H

#include "store.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct fuse_session;

/* ---- lookup counts (fs/inodes.c) --------------------------------------
 * A thread-safe map ino -> kernel lookup count. */
typedef struct mfs_fs_inodes {
    pthread_mutex_t lock;
    uint64_t *keys; /* 0 = empty slot, UINT64_MAX = deleted */
    uint64_t *vals;
    size_t cap;   /* power of two */
    size_t used;  /* live keys */
    size_t tombs; /* deleted slots */
} mfs_fs_inodes;

int mfs_fs_inodes_init(mfs_fs_inodes *t);
void mfs_fs_inodes_close(mfs_fs_inodes *t);
/* Adds n to ino's count. Returns 0 or -ENOMEM (the count is unchanged). */
int mfs_fs_inodes_ref(mfs_fs_inodes *t, uint64_t ino, uint64_t n);
/* Subtracts n (clamped at 0). Returns 1 if the count reached zero (the
 * caller then tells the store to forget ino), 0 if it is still referenced or
 * was not known. */
int mfs_fs_inodes_unref(mfs_fs_inodes *t, uint64_t ino, uint64_t n);
/* The current count (0 when unknown). */
uint64_t mfs_fs_inodes_count(mfs_fs_inodes *t, uint64_t ino);
size_t mfs_fs_inodes_size(mfs_fs_inodes *t);

/* ---- invalidation queue (fs/inval.c) ----------------------------------
 * The store's change callback may run on a FUSE thread; a notify call from
 * there can deadlock against the kernel, so changes are queued and sent by
 * a separate thread. */
typedef struct mfs_fs_inval_item {
    struct mfs_fs_inval_item *next;
    int kind; /* MFS_CHANGE_ENTRY or MFS_CHANGE_INODE */
    uint64_t ino;
    char name[]; /* NUL-terminated; "" for inode changes */
} mfs_fs_inval_item;

typedef struct mfs_fs_invalq {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    mfs_fs_inval_item *head, *tail;
    size_t len;
    size_t dropped; /* items dropped because the queue was full */
    int stop;
} mfs_fs_invalq;

#define MFS_FS_INVALQ_MAX 65536

int mfs_fs_invalq_init(mfs_fs_invalq *q);
/* Frees the items still queued. */
void mfs_fs_invalq_close(mfs_fs_invalq *q);
/* Queues a change (copies name; NULL = ""). When the queue holds
 * MFS_FS_INVALQ_MAX items the change is dropped and counted: the kernel
 * caches then still expire by their timeouts. Returns 0, -ENOMEM, -ENOBUFS. */
int mfs_fs_invalq_push(mfs_fs_invalq *q, int kind, uint64_t ino,
                       const char *name);
/* Waits for an item (or stop); returns it (caller frees with free()) or NULL
 * once stopped. */
mfs_fs_inval_item *mfs_fs_invalq_pop(mfs_fs_invalq *q);
void mfs_fs_invalq_stop(mfs_fs_invalq *q);

/* ---- POSIX ACL xattrs (fs/acl.c) --------------------------------------
 * value/size: a system.posix_acl_access xattr as the kernel passes it. */

/* The permission bits (0777) the ACL implies; *equiv = 1 when the ACL says
 * no more than those bits (then it need not be stored). -EINVAL when the
 * ACL is malformed (as setxattr(2) reports it). */
int mfs_fs_acl_to_mode(const void *value, size_t size, uint32_t *perm,
                       int *equiv);
/* Rewrites the owner, group (MASK if present) and other entries in place
 * from mode, as chmod(2) does to an ACL. 0 or -EINVAL. */
int mfs_fs_acl_chmod(void *value, size_t size, uint32_t mode);

/* ---- the file system --------------------------------------------------- */

typedef struct mfs_fs_config {
    double entry_timeout;  /* s, kernel dentry cache (1.0) */
    double attr_timeout;   /* s, kernel attribute cache (1.0) */
    int writeback_cache;   /* 1: FUSE_CAP_WRITEBACK_CACHE (default 0,
                              docs/FS.md "Caching") */
    int allow_other;       /* 1: other users may use the mount (root: 1) */
    unsigned max_write;    /* bytes per WRITE request (1 MiB) */
    unsigned publish_ms;   /* publish timer period and age (1000) */
    int relatime;          /* 1: reads update atime as relatime (default) */
    const char *fsname;    /* shown in /proc/mounts: the store dir */
    const char *user_opts; /* extra -o options, borrowed; may be NULL */
    int debug;             /* libfuse debug output */
} mfs_fs_config;

void mfs_fs_config_default(mfs_fs_config *cfg);

typedef struct mfs_fs {
    mfs_store *store; /* borrowed */
    mfs_fs_config cfg;
    struct fuse_session *se;
    char *mountpoint; /* owned, once mounted */
    mfs_fs_inodes inodes;
    mfs_fs_invalq invalq;
    pthread_t inval_thread, timer_thread;
    int threads_started;
    pthread_mutex_t timer_lock;
    pthread_cond_t timer_cond;
    int timer_stop;
    int mounted;
    int signals_set;
} mfs_fs;

/* Creates the FUSE session (parses options; mounts nothing). err gets one
 * line when it fails. Returns 0, -EINVAL (bad option), -ENOMEM. */
int mfs_fs_init(mfs_fs *fs, mfs_store *store, const mfs_fs_config *cfg,
                char *err, size_t errcap);
/* Mounts on mountpoint (absolute). Returns 0 or a negative errno; err gets
 * one line. */
int mfs_fs_mount(mfs_fs *fs, const char *mountpoint, char *err, size_t errcap);
/* Starts the helper threads, installs SIGTERM/SIGINT/SIGHUP handlers and
 * runs the session loop until unmount or signal. Returns 0 or -errno. */
int mfs_fs_run(mfs_fs *fs);
/* Publishes everything and makes it durable (for `meshfs umount`). Any
 * thread. */
int mfs_fs_flush_all(mfs_fs *fs);
/* Tells fs that its mount point was unmounted by someone else while the
 * kernel keeps the connection (a copy of the mount in another mount
 * namespace): mfs_fs_close() then does not unmount the path again, which
 * could by then hold another mount. Any thread. */
void mfs_fs_forget_mount(mfs_fs *fs);
/* Stops the threads, publishes all, fsyncs, unmounts (lazily if still
 * mounted) and frees the session. Safe on a partly initialised fs. */
void mfs_fs_close(mfs_fs *fs);

/* The low-level operation table (fs/ops.c). */
struct fuse_lowlevel_ops;
const struct fuse_lowlevel_ops *mfs_fs_ops(void);

/* Store change callback: queues kernel-cache invalidations. arg is mfs_fs. */
void mfs_fs_change_cb(void *arg, int kind, uint64_t ino, const char *name);

#endif
