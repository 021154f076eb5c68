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
#include <sys/types.h>
#include <sys/uio.h>

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

/* The slot of inode number ino in a table of n slots (n a power of two):
 * a 64-bit mix, so consecutive numbers spread. Shared by the inode and
 * open-file tables. */
static inline size_t mfs_fs_ino_slot(uint64_t ino, size_t n)
{
    ino ^= ino >> 33;
    ino *= 0xff51afd7ed558ccdULL;
    ino ^= ino >> 33;
    return (size_t)ino & (n - 1);
}

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
    struct mfs_fs_inval_item *hnext; /* same hash slot, while queued */
    uint64_t hash;   /* of (kind, ino, name) */
    int kind;        /* MFS_CHANGE_ENTRY, _INODE or _ATTR */
    int raced;       /* queued again by a reply built while the change landed */
    unsigned tries;  /* sends that found nothing in the kernel (-ENOENT) */
    uint64_t due_ns; /* CLOCK_MONOTONIC: not before (retries) */
    uint64_t ino;
    char name[]; /* NUL-terminated; "" for inode changes */
} mfs_fs_inval_item;

/* Recent changes, so that a handler can tell whether one landed while it
 * built a reply (then the kernel may cache the reply after the change's
 * invalidation went by). */
#define MFS_FS_CHG_RING 4096
#define MFS_FS_NEG_RING 256
#define MFS_FS_INVALQ_SLOTS 4096 /* hash of the queued items */

typedef struct mfs_fs_invalq {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    mfs_fs_inval_item *head, *tail; /* (lock) */
    mfs_fs_inval_item *later;       /* retries, each at its due_ns (lock) */
    mfs_fs_inval_item *slot[MFS_FS_INVALQ_SLOTS]; /* queued, by hash (lock) */
    size_t len;                     /* (lock) */
    size_t peak;                    /* most items queued at once (lock) */
    size_t merged;  /* changes already queued, not queued again (lock) */
    size_t dropped; /* changes lost for want of memory (lock) */
    int stop;       /* (lock) */
    uint64_t seq;   /* changes pushed so far (lock) */
    struct {
        uint64_t seq, ino;
        int kind;
    } ring[MFS_FS_CHG_RING]; /* change seq -> ring[seq % size] (lock) */
    struct {
        uint64_t parent, hash, t_ns;
    } neg[MFS_FS_NEG_RING]; /* latest negative LOOKUP replies (lock) */
    size_t neg_next;        /* (lock) */
} mfs_fs_invalq;

int mfs_fs_invalq_init(mfs_fs_invalq *q);
/* Frees the items still queued. */
void mfs_fs_invalq_close(mfs_fs_invalq *q);
/* Queues a change (copies name; NULL = ""), unless the same change (kind,
 * ino, name) is queued and not yet sent: one send covers both. Nothing is
 * dropped for length (the kernel caches entries and attributes for long,
 * docs/FS.md "Caching"): the queue holds one item per object changed and
 * not yet sent. Returns 0, -ENOMEM (counted in dropped), -ENOBUFS
 * (stopped). */
int mfs_fs_invalq_push(mfs_fs_invalq *q, int kind, uint64_t ino,
                       const char *name);
/* The same for a change a handler saw land while it built a reply: the
 * invalidation thread sends it again while the kernel may still be
 * instantiating what the reply named. */
int mfs_fs_invalq_push_raced(mfs_fs_invalq *q, int kind, uint64_t ino,
                             const char *name);
/* Puts back an item to send again at it->due_ns (the invalidation thread's
 * retries); frees it when the queue is stopped. */
void mfs_fs_invalq_requeue(mfs_fs_invalq *q, mfs_fs_inval_item *it);
/* Waits for an item whose time has come (or stop); returns it (caller
 * frees with free()) or NULL once stopped. */
mfs_fs_inval_item *mfs_fs_invalq_pop(mfs_fs_invalq *q);
void mfs_fs_invalq_stop(mfs_fs_invalq *q);
/* Changes pushed so far: take it before reading the store for a reply. */
uint64_t mfs_fs_invalq_seq(mfs_fs_invalq *q);
/* 1 if a change of (kind, ino) was pushed after seq `since` (or too many
 * changes were pushed to tell), else 0. */
int mfs_fs_invalq_changed(mfs_fs_invalq *q, uint64_t since, int kind,
                          uint64_t ino);
/* A LOOKUP of name in parent is about to be answered "no such name": an
 * entry invalidation of it that meets -ENOENT soon after is retried (the
 * kernel may not have made the negative entry yet). */
void mfs_fs_invalq_negative(mfs_fs_invalq *q, uint64_t parent,
                            const char *name);
/* 1 if such a reply was noted within the last window_ns. */
int mfs_fs_invalq_negative_recent(mfs_fs_invalq *q, uint64_t parent,
                                  const char *name, uint64_t window_ns);

/* ---- open files and the versions they pin (fs/files.c) ----------------
 * One handle per open file (fi->fh); one record per inode that was opened,
 * kept until the kernel forgets the inode. Every field marked "lock" is
 * guarded by mfs_fs_files.lock. */
typedef struct mfs_fs_fh {
    struct mfs_fs_fh *next; /* in its inode's list (lock) */
    uint64_t ino;
    mfs_stamp pin; /* the version this open reads (lock) */
    int writer;    /* opened for writing: close publishes */
    int direct;    /* FOPEN_DIRECT_IO: reads bypass the page cache */
    int adopted;   /* stands for an open of a daemon that died while the
                    * kernel kept the connection: the kernel keeps the open
                    * flags that daemon gave (mfs_fs_handles_adopt) */
} mfs_fs_fh;

typedef struct mfs_fs_file {
    struct mfs_fs_file *next; /* hash chain (lock) */
    uint64_t ino;
    mfs_fs_fh *handles;  /* open handles (lock) */
    mfs_stamp cache_ver; /* version the page cache holds, if cache_ok (lock) */
    int cache_ok;        /* 0: the cache may hold anything (lock) */
    uint64_t remote_gen; /* remote changes of ino seen (lock) */
    uint64_t cache_gen;  /* remote_gen when cache_ver was set (lock) */
} mfs_fs_file;

/* What fi->fh holds, for open files and directories alike: not a pointer
 * but a checked index into a table, so that a request carrying a value
 * another process handed out (a daemon that died while the kernel kept
 * the connection and now resends its requests) is recognised instead of
 * dereferenced. fi->fh = tag << 32 | (slot + 1), tag = boot ^ gen: boot
 * is 32 random bits drawn per process, gen counts the slot's reuses. 0 is
 * never a handle. Every field marked "hlock" is guarded by
 * mfs_fs_files.hlock. */
enum { MFS_FS_H_FILE = 1, MFS_FS_H_DIR = 2 }; /* kinds of handle */

typedef struct mfs_fs_hslot {
    void *obj;      /* the handle (borrowed); NULL: free (hlock) */
    uint64_t ino;   /* the inode it was opened on (hlock) */
    uint64_t stale; /* adopted: the other process's fi->fh it stands for;
                     * 0: a handle of this process (hlock) */
    uint32_t gen;   /* reuses of the slot (hlock) */
    uint32_t next;  /* while free: the next free slot + 1, 0 = none (hlock) */
    int kind;       /* MFS_FS_H_* (hlock) */
} mfs_fs_hslot;

typedef struct mfs_fs_files {
    pthread_mutex_t lock;
    mfs_fs_file **buckets; /* (lock) */
    size_t nb, n;          /* buckets (power of two), records (lock) */
    /* the handle table; lock order: hlock is never taken with lock held,
     * nor lock with hlock held */
    pthread_mutex_t hlock;
    mfs_fs_hslot *slots;    /* grown by doubling (hlock) */
    uint32_t nslots, live;  /* allocated, in use (hlock) */
    uint32_t free1;         /* first free slot + 1, 0 = none (hlock) */
    uint32_t *amap;         /* adopted slots + 1 by the hash of their stale
                             * value, linear probing; 0 = empty (hlock) */
    uint32_t namap, nadopt; /* amap size (power of two or 0), entries
                             * (hlock) */
    uint32_t boot;          /* random, set by mfs_fs_files_init */
    uint64_t adopted;       /* handles adopted so far (hlock) */
} mfs_fs_files;

int mfs_fs_files_init(mfs_fs_files *t);
void mfs_fs_files_close(mfs_fs_files *t);
/* Registers fh (ino and pin = the version current at open set by the
 * caller; fh stays owned by the caller until release). Sets fh->direct
 * when cached handles of the inode are pinned to an older version (their
 * reads refill the shared page cache with it); otherwise *keep_cache = 1
 * when the page cache holds the version fh pins. An adopted fh is counted
 * as cached (direct stays 0) and the page cache as holding anything.
 * self: this node's id. 0 or -ENOMEM. Any thread. */
int mfs_fs_files_open(mfs_fs_files *t, mfs_fs_fh *fh, uint64_t self,
                      int *keep_cache);
/* Unregisters fh; cur: the inode's current version. Returns 1 when fh was
 * the last cached handle pinned to an older version: the caller then drops
 * the inode's page cache (notify_inval_inode, from the invalidation
 * thread). */
int mfs_fs_files_release(mfs_fs_files *t, mfs_fs_fh *fh, mfs_stamp cur,
                         uint64_t self);
mfs_stamp mfs_fs_files_pin_get(mfs_fs_files *t, const mfs_fs_fh *fh);
void mfs_fs_files_pin_set(mfs_fs_files *t, mfs_fs_fh *fh, mfs_stamp pin);
/* A remote change of ino landed (the store's change callback). */
void mfs_fs_files_remote(mfs_fs_files *t, uint64_t ino);
/* The kernel forgot ino: its page cache is gone; drop the record. */
void mfs_fs_files_forget(mfs_fs_files *t, uint64_t ino);

/* The handle table (any thread). obj is borrowed: the caller frees it
 * once it is removed. A handle resolves only for its kind and inode.
 *
 * Registers obj, of kind, opened on ino; *fh gets its fi->fh value.
 * 0, -ENOMEM, or -ENFILE when 2^32 - 1 handles are open. */
int mfs_fs_handles_add(mfs_fs_files *t, int kind, uint64_t ino, void *obj,
                       uint64_t *fh);
/* The handle fh names in a request on ino: a live one of this process,
 * or the one adopted for fh. NULL when there is none (fh 0, a value of
 * another process not adopted, garbage). */
void *mfs_fs_handles_get(mfs_fs_files *t, uint64_t fh, int kind, uint64_t ino);
/* fh, which mfs_fs_handles_get did not resolve, is a value of another
 * process: obj (a new handle of ino, made as a fresh open would) stands
 * for it from now on, until mfs_fs_handles_remove(fh). Returns obj, or the
 * handle fh resolves to when another thread got there first (the caller
 * then frees obj), or NULL without memory. *first = 1 on the first
 * adoption of this table. */
void *mfs_fs_handles_adopt(mfs_fs_files *t, uint64_t fh, int kind, uint64_t ino,
                           void *obj, int *first);
/* Removes what mfs_fs_handles_get(fh) would return and returns it (the
 * caller frees it), or NULL when there is nothing. */
void *mfs_fs_handles_remove(mfs_fs_files *t, uint64_t fh, int kind,
                            uint64_t ino);
/* Handles adopted so far, and handles open now (adopted ones included). */
uint64_t mfs_fs_handles_adopted(mfs_fs_files *t);
size_t mfs_fs_handles_open(mfs_fs_files *t);

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

/* ---- FUSE_HANDLE_KILLPRIV_V2 under libfuse 3.14 (fs/killpriv.c) -------
 * The session's /dev/fuse reads and writes go through these (custom io). */
#define MFS_FS_KILL_SUIDGID                                                    \
    (1 << 30) /* in fi->flags of WRITE, OPEN, CREATE:                          \
                 the kernel asks us to clear the                               \
                 setuid/setgid bits */
typedef struct mfs_fs_killpriv {
    int want;             /* accept the kernel's offer (set before mount) */
    int on;               /* negotiated (atomic) */
    uint64_t init_unique; /* the INIT request that offered it (atomic) */
} mfs_fs_killpriv;

/* read(2) of one request from fd, with the kill flags moved where libfuse
 * passes them on. Returns what read(2) returns. The session thread. */
/* Notes an INIT request (buf, n bytes) as the read hook does: for a
 * session fed an INIT that it did not read (fs/holder.c). */
void mfs_fs_killpriv_init(mfs_fs_killpriv *kp, const void *buf, size_t n);
ssize_t mfs_fs_killpriv_read(mfs_fs_killpriv *kp, int fd, void *buf,
                             size_t len);
/* writev(2) of one reply; sets FUSE_HANDLE_KILLPRIV_V2 in the INIT reply
 * when offered and wanted. Returns what writev(2) returns. Any thread. */
ssize_t mfs_fs_killpriv_writev(mfs_fs_killpriv *kp, int fd, struct iovec *iov,
                               int count);

/* ---- write-behind (fs/wb.c) -------------------------------------------
 * WRITEs answered once copied, applied in order by one thread; every other
 * request first waits for the writes queued before it (mfs_fs_wb_wait). */
#define MFS_FS_WB_BYTES (8u << 20) /* queued at most (then a WRITE waits) */
#define MFS_FS_WB_ITEMS 64 /* queued writes at most: a request that waits
                            * for them waits for at most this many */
#define MFS_FS_WB_FREE_MIN (1ull << 30) /* less free on the store's file
                                         * system: writes go direct */
#define MFS_FS_WB_ERRS 64

struct mfs_fs_wb_item;

typedef struct mfs_fs_wb {
    mfs_store *store; /* borrowed */
    pthread_mutex_t lock;
    pthread_cond_t work, done;
    pthread_t thread;
    int started, stop; /* (started: atomic; stop: lock) */
    struct mfs_fs_wb_item *head, *tail, *busy, *pool; /* (lock) */
    size_t npool, items, bytes;                       /* (lock; items atomic) */
    uint64_t queued, applied; /* seq of the last queued / applied (lock) */
    struct {
        uint64_t ino;
        int err;
    } errs[MFS_FS_WB_ERRS]; /* writes that failed once answered (lock) */
    size_t nerr;            /* (lock; read atomic) */
    uint64_t free_min;      /* MFS_FS_WB_FREE_MIN, or MESHFS_WB_FREE_MIN
                             * (bytes) from the environment */
    uint64_t free_checked;  /* CLOCK_MONOTONIC ns of the last statvfs (lock) */
    uint64_t last_ino, last_end; /* where the last write ended (atomic) */
    int free_ok;            /* (lock) */
    /* counters (lock): answered before applied, joined to the previous,
     * waits for room, failed once answered, errors dropped from errs */
    uint64_t answered, joined, full, failed, errs_lost;
} mfs_fs_wb;

int mfs_fs_wb_init(mfs_fs_wb *wb, mfs_store *store);
/* Starts the thread; until then (and when it cannot start) every write is
 * direct. 0 or -EAGAIN. */
int mfs_fs_wb_start(mfs_fs_wb *wb);
/* Applies what is queued and stops the thread (writes are direct after). */
void mfs_fs_wb_stop(mfs_fs_wb *wb);
void mfs_fs_wb_close(mfs_fs_wb *wb);
/* Queues a write of len bytes (copied) of ino at off: 0 when queued (answer
 * it), 1 when the caller must apply it itself (mfs_store_write_flags). */
int mfs_fs_wb_write(mfs_fs_wb *wb, uint64_t ino, uint64_t off,
                    const void *buf, size_t len, unsigned flags);
/* Returns once every write queued before the call is applied. */
void mfs_fs_wb_wait(mfs_fs_wb *wb);
/* The same for a request other than a WRITE: it also ends a run of small
 * writes (the next small write with nothing queued is applied at once:
 * a write, fsync, write, fsync loop never waits for the thread). */
void mfs_fs_wb_before(mfs_fs_wb *wb);
/* Writes answered before they were applied, and of those the ones that
 * failed once answered, since the mount (for `meshfs stat`). */
void mfs_fs_wb_counts(mfs_fs_wb *wb, uint64_t *answered, uint64_t *failed);
/* The error (negative errno) of a write of ino that failed after it was
 * answered, or 0; clear: forget it (flush and fsync report it once). */
int mfs_fs_wb_error(mfs_fs_wb *wb, uint64_t ino, int clear);
/* Notes err (positive errno) as such an error of ino. */
void mfs_fs_wb_fail(mfs_fs_wb *wb, uint64_t ino, int err);

/* ---- the write concern's hook (node/acks.c; DESIGN P10) ---------------
 * fsync, fdatasync, a directory's fsync and (with on_close) a close that
 * published: once the change is committed here, the request is handed to
 * fn instead of answered, and fn (or whoever it hands it to) answers it
 * exactly once with mfs_fs_acked, from any thread: FUSE's threads go on
 * meanwhile. */
typedef struct mfs_fs_ackwait mfs_fs_ackwait; /* a request waiting */
typedef void (*mfs_fs_acks_fn)(void *arg, mfs_fs_ackwait *w);
/* Answers w: 0, or EIO for any err (the change stays committed here). */
void mfs_fs_acked(mfs_fs_ackwait *w, int err);

/* ---- the file system --------------------------------------------------- */

typedef struct mfs_fs_config {
    double entry_timeout;  /* s, kernel dentry cache (60) */
    double attr_timeout;   /* s, kernel attribute cache (60) */
    int writeback_cache;   /* 1: FUSE_CAP_WRITEBACK_CACHE (default 0,
                              docs/FS.md "Caching") */
    int allow_other;       /* 1: other users may use the mount (root: 1) */
    unsigned max_write;    /* bytes per WRITE request (1 MiB) */
    unsigned publish_ms;   /* publish timer period and age (1000) */
    int relatime;          /* 1: reads update atime as relatime (default) */
    int killpriv_v2;       /* 1: FUSE_HANDLE_KILLPRIV_V2 (default; no
                              GETXATTR per write, docs/FS.md) */
    int write_behind;      /* 1: WRITEs answered once queued (default;
                              fs/wb.c); 0: once applied */
    const char *fsname;    /* shown in /proc/mounts: the store dir */
    const char *user_opts; /* extra -o options, borrowed; may be NULL */
    int debug;             /* libfuse debug output */
    int stack;             /* 1: mount over a dead mount of a killed daemon
                              (fs/stack.c; root only) */
    int adopt;             /* 1: take the mount over from the holder of the
                              store's crashed daemon (fs/holder.c) */
    int hold;              /* 1: start a holder (default) */
    const char *store_dir; /* for the holder's socket; borrowed */
} mfs_fs_config;

void mfs_fs_config_default(mfs_fs_config *cfg);

/* ---- request counts and latencies (fs/opstats.c) -----------------------
 * Every FUSE request is counted by kind with the time its handler took
 * (fs/ops.c times them), in a histogram of fixed buckets: the metrics the
 * status page serves (node/metrics.c). Lock-free: relaxed atomic adds. */
enum mfs_fsop {
    MFS_FSOP_LOOKUP,
    MFS_FSOP_FORGET,
    MFS_FSOP_FORGET_MULTI,
    MFS_FSOP_GETATTR,
    MFS_FSOP_SETATTR,
    MFS_FSOP_READLINK,
    MFS_FSOP_MKNOD,
    MFS_FSOP_MKDIR,
    MFS_FSOP_UNLINK,
    MFS_FSOP_RMDIR,
    MFS_FSOP_SYMLINK,
    MFS_FSOP_RENAME,
    MFS_FSOP_LINK,
    MFS_FSOP_OPEN,
    MFS_FSOP_READ,
    MFS_FSOP_WRITE,
    MFS_FSOP_FLUSH,
    MFS_FSOP_RELEASE,
    MFS_FSOP_FSYNC,
    MFS_FSOP_OPENDIR,
    MFS_FSOP_READDIR,
    MFS_FSOP_READDIRPLUS,
    MFS_FSOP_RELEASEDIR,
    MFS_FSOP_FSYNCDIR,
    MFS_FSOP_STATFS,
    MFS_FSOP_SETXATTR,
    MFS_FSOP_GETXATTR,
    MFS_FSOP_LISTXATTR,
    MFS_FSOP_REMOVEXATTR,
    MFS_FSOP_ACCESS,
    MFS_FSOP_CREATE,
    MFS_FSOP_FALLOCATE,
    MFS_FSOP__COUNT
};
/* The request's name as libfuse's fuse_lowlevel_ops calls it. */
extern const char *const mfs_fsop_names[MFS_FSOP__COUNT];
/* Upper bounds of the histogram's buckets (microseconds); a last bucket
 * holds the rest. */
#define MFS_FSOP_BUCKETS 14
extern const uint32_t mfs_fsop_bound_us[MFS_FSOP_BUCKETS - 1];
typedef struct mfs_fsop_stat {
    uint64_t count;
    uint64_t sum_ns;
    uint64_t bucket[MFS_FSOP_BUCKETS]; /* not cumulative */
} mfs_fsop_stat;
struct fuse_req;
typedef struct mfs_fs_opclock {
    struct mfs_fs *fs;
    uint64_t t0_ns;
} mfs_fs_opclock;
/* A request's start (its fs from the request: read it before the
 * handler replies, which frees req) and its end. */
mfs_fs_opclock mfs_fs_op_begin(struct fuse_req *req);
void mfs_fs_op_end(const mfs_fs_opclock *t, enum mfs_fsop op);
/* Any thread: a copy of the counts (out[MFS_FSOP__COUNT]). */
void mfs_fs_op_stats(const struct mfs_fs *fs, mfs_fsop_stat *out);

typedef struct mfs_fs {
    mfs_store *store; /* borrowed */
    mfs_fs_config cfg;
    struct fuse_session *se;
    char *mountpoint; /* owned, once mounted */
    mfs_fs_inodes inodes;
    mfs_fs_files files;
    mfs_fs_invalq invalq;
    mfs_fs_killpriv killpriv;
    mfs_fs_wb wb;
    pthread_t inval_thread, timer_thread;
    int threads_started;
    pthread_mutex_t timer_lock;
    pthread_cond_t timer_cond;
    int timer_stop;
    int mounted;
    int own_mount; /* mounted by fs/stack.c: unmounted here, not by libfuse */
    /* fs/holder.c: the holder's socket (-1: none); adopted: the session
     * came from a holder, init its kernel's INIT request */
    int hold_sock;
    int adopted;
    uint8_t *init;
    size_t initlen;
    int signals_set;
    /* the write concern (mfs_fs_set_acks; NULL: none) */
    mfs_fs_acks_fn acks_fn;
    void *acks_arg;
    int acks_on_close;
    /* fs/opstats.c: last, on cache lines of their own, so that the counts
     * the FUSE threads add to never share a line with what every request
     * reads */
    _Alignas(64) mfs_fsop_stat opstats[MFS_FSOP__COUNT];
} mfs_fs;

/* Before the mount: hands fsyncs (and, with on_close, closes that
 * published) to fn (see mfs_fs_acks_fn); fn NULL: none. */
void mfs_fs_set_acks(mfs_fs *fs, mfs_fs_acks_fn fn, void *arg, int on_close);

/* Creates the FUSE session (parses options; mounts nothing). err gets one
 * line when it fails. Returns 0, -EINVAL (bad option), -ENOMEM. */
int mfs_fs_init(mfs_fs *fs, mfs_store *store, const mfs_fs_config *cfg,
                char *err, size_t errcap);
/* Mounts on mountpoint (absolute). Returns 0 or a negative errno; err gets
 * one line. */
int mfs_fs_mount(mfs_fs *fs, const char *mountpoint, char *err, size_t errcap);
/* fs/stack.c: mounts on top of the dead mount on mountpoint (mount(2) with
 * the options libfuse would use): the /dev/fuse descriptor, or -errno (err
 * says why). */
int mfs_fs_mount_stacked(const mfs_fs_config *cfg, const char *mountpoint,
                         char *err, size_t errcap);
/* Detaches (lazily) the dead FUSE mounts on mountpoint, topmost first,
 * while the topmost is one. Returns how many. */
int mfs_fs_detach_dead(const char *mountpoint);

/* ---- fs/holder.c: the mount outlives a crashed daemon ---- */
#define MFS_HOLDER_ARGV0 "meshfs-holder"
#define MFS_HOLDER_SOCK "fuse.hold" /* in the store directory */
enum { MFS_HOLD_NONE, MFS_HOLD_LIVE, MFS_HOLD_WAITING };
/* The holder process (argv[0] MFS_HOLDER_ARGV0): exit code. */
int mfs_fs_holder_main(int argc, char **argv);
/* Starts a holder for the session on fuse_fd (mounted on mountpoint, of
 * device number dev "MAJ:MIN") that keeps init (the kernel's INIT request)
 * for the next daemon. The socket to keep open while this daemon lives
 * (and to say goodbye on, mfs_fs_holder_bye), or -errno. */
int mfs_fs_holder_start(const char *store_dir, const char *mountpoint,
                        const char *dev, int fuse_fd, const void *init,
                        size_t initlen);
void mfs_fs_holder_bye(int sock);
/* Asks store_dir's holder: MFS_HOLD_NONE (none), MFS_HOLD_LIVE (a daemon
 * serves its mount) or MFS_HOLD_WAITING (none does; the mount point in
 * mnt). */
int mfs_fs_holder_query(const char *store_dir, char *mnt, size_t cap);
/* Takes the held session: *fuse_fd and the INIT request (*initlen: the
 * room in init, then its length). The socket to keep open, or -errno
 * (-EBUSY: a daemon serves the mount). */
int mfs_fs_holder_adopt(const char *store_dir, int *fuse_fd, void *init,
                        size_t *initlen);
/* Asks a waiting holder to let the mount go (it is dead then): 1 done, 0
 * no holder, -EBUSY a daemon serves the mount. */
int mfs_fs_holder_release(const char *store_dir);
/* Starts the helper threads, installs SIGTERM/SIGINT/SIGHUP handlers and
 * runs the session loop until unmount or signal. Returns 0 or -errno. */
int mfs_fs_run(mfs_fs *fs);
/* Blocks SIGTERM, SIGINT and SIGHUP in the calling thread, so that they
 * reach the session loop (the handlers mfs_fs_run installs) and not this
 * thread. Every thread a daemon starts besides the loop's calls it. */
void mfs_fs_signals_block(void);
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

/* Store change callback: queues kernel-cache invalidations. arg is mfs_fs.
 * A name the request on the calling thread changes itself is skipped. */
void mfs_fs_change_cb(void *arg, int kind, uint64_t ino, const char *name);
/* Says which names (dir, name) the calling thread's request changes itself
 * (NULL: none), until the next call: the store reports every name a local
 * call changes, and the kernel needs to hear only of the others (conflict
 * copies renamed, a file back from the trash). */
void mfs_fs_own_names(uint64_t dir, const char *name, uint64_t dir2,
                      const char *name2);

#endif
