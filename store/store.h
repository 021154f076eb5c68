/*
 * store.h - the replicated state of one meshfs replica, kept in LMDB.
 *
 * This is the whole public API of store/. fs/ uses the "local" half (POSIX
 * style calls on inode numbers); sync/ uses the "replica" half (version
 * vectors, op batches, chunks). store/ includes no FUSE or libuv header.
 *
 * Conventions for every function below unless it says otherwise:
 *  - returns 0 (or a byte count) on success, a negative errno on failure;
 *  - may be called from any thread; calls are serialised internally where
 *    they write, readers run concurrently (LMDB MVCC);
 *  - pointers passed in are borrowed for the duration of the call only;
 *  - inode numbers ("ino") are local to this replica: 1 is the root. They are
 *    never reused, so the generation number is constant.
 */
#ifndef MFS_STORE_H
#define MFS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#define MFS_ROOT_INO 1
#define MFS_NAME_MAX 255
/* The largest chunk; fixed-block versions (and unpublished writes) are
 * cut in blocks of this size */
#define MFS_CHUNK_SIZE 65536u
#define MFS_MAX_FILE_SIZE (256ull << 30) /* a write past it: EFBIG */
#define MFS_HASH_LEN 32    /* BLAKE2b-256 */
/* on-disk format version (2: pack files, 3: compact inode records, 4: the
 * op log is folded, 5: the store keeps its counts, "census", 6: versions
 * of content-defined chunks, 7: fsync's intent log, STORE/intent.log) */
#define MFS_STORE_FORMAT 7

typedef struct mfs_store mfs_store;

/* Globally unique object id: minting node + that node's counter. */
typedef struct mfs_id {
    uint64_t node;
    uint64_t seq;
} mfs_id;

/* Hybrid logical clock stamp: hlc = (unix ms << 16) | logical counter. */
typedef struct mfs_stamp {
    uint64_t hlc;
    uint64_t node;
} mfs_stamp;

/* Defaults live in one struct: mfs_store_config_default() fills it. */
typedef struct mfs_store_config {
    uint64_t max_future_ms; /* remote stamps further ahead are refused (60 s) */
    size_t map_size;        /* initial LMDB map size; grows on demand */
    uint64_t node_id;       /* 0 = random (only used when creating) */
    uint32_t root_uid;      /* owner of / in a new mesh */
    uint32_t root_gid;
    uint32_t root_mode; /* permission bits of / in a new mesh (0755) */
    int new_mesh;       /* creating: 1 = start a mesh (root attrs and
                           lost+found ops), 0 = join one (wait for ops) */
    uint64_t (*clock_ms)(void *arg); /* wall clock, ms; NULL = CLOCK_REALTIME */
    void *clock_arg;
    /* Group commit. 0 (the default): every call that changes something
     * commits before it returns. > 0: changes from all threads share one
     * LMDB write transaction that the store's commit thread commits at
     * most this many microseconds after its first change (sooner when
     * asked: mfs_store_commit, fsync, publish). Readers in this process
     * see uncommitted changes at once; other processes, and the replica
     * API's op log, see them once committed. */
    unsigned commit_window_us;
    /* A change asked to reach the disk soon (a publish, so peers see a
     * close at once) commits once no other change came for this long;
     * 0: 1000 us. (Tests that must see no commit between calls raise
     * it.) */
    unsigned commit_idle_us;
    /* New versions cut in fixed MFS_CHUNK_SIZE blocks, as builds before
     * content-defined chunks (cdc.h) cut them; 0 (the default):
     * content-defined. Either kind is read, kept and replicated. */
    int fixed_chunks;
} mfs_store_config;

void mfs_store_config_default(mfs_store_config *cfg);

enum {
    MFS_STORE_CREATE = 1 << 0, /* create the store if the dir has none */
    MFS_STORE_RDONLY = 1 << 1, /* read-only; no lock, may run beside daemon */
    MFS_STORE_NOLOCK = 1 << 2, /* skip the single-writer lock (tests) */
};

/*
 * Opens (or creates) the store in directory dir. On success *out owns the
 * store until mfs_store_close(). Errors: -ENOENT not a store and no CREATE,
 * -EPROTONOSUPPORT unknown format version, -EBADF the dir holds something that
 * is not a meshfs store, -EBUSY another process has it open for writing,
 * -ENOSPC, -EACCES. mfs_store_error() then says why in words.
 */
int mfs_store_open(mfs_store **out, const char *dir,
                   const mfs_store_config *cfg, unsigned flags);
/* Publishes nothing; commits durably and frees. NULL is allowed. */
void mfs_store_close(mfs_store *s);
/* Human-readable reason for the last failed open (static storage). */
const char *mfs_store_strerror(int err);

uint64_t mfs_store_node_id(const mfs_store *s);
const char *mfs_store_dir(const mfs_store *s);
/* Current clock reading as a stamp, without advancing it (for stats). */
mfs_stamp mfs_stamp_now_peek(mfs_store *s);
/* The clock's correction (DESIGN P1, docs/REPLICATION.md "Clocks"): ms
 * added to the wall clock (the configured one) wherever the store reads
 * it: new stamps, file times, the trash's ages. Set by the node from its
 * measured offset from the mesh; 0: the wall clock as it is. Any thread. */
void mfs_store_set_clock_correction(mfs_store *s, int64_t ms);
int64_t mfs_store_clock_correction(mfs_store *s);
/* The wall clock (ms) as it reads before any correction, and the
 * physical part (ms) of the newest stamp the store made or applied (as
 * of its last write; never waits for a writer). */
uint64_t mfs_store_wall_ms(mfs_store *s);
uint64_t mfs_store_hlc_ms(mfs_store *s);
/* Now as the store reads it (corrected), nanoseconds: what file times
 * set to "now" get. */
int64_t mfs_store_now_ns(mfs_store *s);

/* ---- attributes ------------------------------------------------------- */

typedef struct mfs_attr {
    uint64_t ino;
    uint32_t mode; /* S_IFMT type | permission bits */
    uint32_t nlink;
    uint32_t uid, gid;
    uint64_t rdev;
    uint64_t size;
    uint64_t blocks; /* 512-byte units actually stored */
    int64_t atime_ns, mtime_ns, ctime_ns;
} mfs_attr;

enum {
    MFS_SET_MODE = 1 << 0,
    MFS_SET_UID = 1 << 1,
    MFS_SET_GID = 1 << 2,
    MFS_SET_SIZE = 1 << 3,
    MFS_SET_ATIME = 1 << 4,
    MFS_SET_MTIME = 1 << 5,
    MFS_SET_ATIME_NOW = 1 << 6,
    MFS_SET_MTIME_NOW = 1 << 7,
    MFS_SET_CTIME = 1 << 8,
};

typedef struct mfs_setattr {
    unsigned mask;
    uint32_t mode, uid, gid;
    uint64_t size;
    int64_t atime_ns, mtime_ns, ctime_ns;
} mfs_setattr;

/* ---- local (fs/) API --------------------------------------------------
 * These do no permission checks: fs/ checks as the calling user (or lets
 * the kernel do it with default_permissions) before calling. They do the
 * namespace checks a local filesystem does and return its errno:
 * -ENOENT, -EEXIST, -ENOTDIR, -EISDIR, -ENOTEMPTY, -ENAMETOOLONG, -EINVAL.
 */

int mfs_store_lookup(mfs_store *s, uint64_t parent, const char *name,
                     mfs_attr *out);
int mfs_store_getattr(mfs_store *s, uint64_t ino, mfs_attr *out);

/* Called once per entry, in name order; return nonzero to stop (the entry
 * passed to the call that returned nonzero counts as not consumed). */
typedef int (*mfs_dirent_cb)(void *arg, const char *name, uint64_t ino,
                             uint32_t mode);
/* Lists dir's entries with names strictly after `after` (NULL: from the
 * start). Does not list "." and "..". -ENOTDIR, -ENOENT. */
int mfs_store_readdir(mfs_store *s, uint64_t dir, const char *after,
                      mfs_dirent_cb cb, void *arg);
/* Parent of a directory (root's parent is root); for "..". */
int mfs_store_parent(mfs_store *s, uint64_t dir, uint64_t *parent);

/* mknod covers regular files, fifos, sockets and devices (S_IFMT in mode). */
int mfs_store_mknod(mfs_store *s, uint64_t parent, const char *name,
                    uint32_t mode, uint64_t rdev, uint32_t uid, uint32_t gid,
                    mfs_attr *out);
int mfs_store_mkdir(mfs_store *s, uint64_t parent, const char *name,
                    uint32_t mode, uint32_t uid, uint32_t gid, mfs_attr *out);
int mfs_store_symlink(mfs_store *s, uint64_t parent, const char *name,
                      const char *target, uint32_t uid, uint32_t gid,
                      mfs_attr *out);
/* Copies the target into buf (not NUL-terminated); returns its length or
 * -ENAMETOOLONG if cap is too small, -EINVAL if ino is not a symlink. */
int mfs_store_readlink(mfs_store *s, uint64_t ino, char *buf, size_t cap);
int mfs_store_link(mfs_store *s, uint64_t ino, uint64_t newparent,
                   const char *newname, mfs_attr *out);
int mfs_store_unlink(mfs_store *s, uint64_t parent, const char *name);
int mfs_store_rmdir(mfs_store *s, uint64_t parent, const char *name);

#define MFS_RENAME_NOREPLACE (1 << 0) /* same values as renameat2 */
#define MFS_RENAME_EXCHANGE (1 << 1)
/* POSIX rename; replaces the target as rename(2) does. -EINVAL when moving a
 * directory into itself; -EBUSY for root and lost+found. */
int mfs_store_rename(mfs_store *s, uint64_t parent, const char *name,
                     uint64_t newparent, const char *newname, unsigned flags);

/* Sets the fields in sa->mask. Size changes are content changes (published
 * like writes); ctime is updated as POSIX says. */
int mfs_store_setattr(mfs_store *s, uint64_t ino, const mfs_setattr *sa,
                      mfs_attr *out);

#define MFS_XATTR_CREATE 1 /* same values as XATTR_CREATE/REPLACE */
#define MFS_XATTR_REPLACE 2
int mfs_store_setxattr(mfs_store *s, uint64_t ino, const char *name,
                       const void *value, size_t size, int flags);
/* Returns the value size; copies it when cap >= size; cap 0 only measures.
 * -ENODATA when absent, -ERANGE when cap is too small. */
ssize_t mfs_store_getxattr(mfs_store *s, uint64_t ino, const char *name,
                           void *buf, size_t cap);
/* NUL-separated names, like listxattr(2). */
ssize_t mfs_store_listxattr(mfs_store *s, uint64_t ino, char *buf, size_t cap);
int mfs_store_removexattr(mfs_store *s, uint64_t ino, const char *name);

/* Content. Reads see unpublished writes. Holes read as zeros. */
ssize_t mfs_store_read(mfs_store *s, uint64_t ino, uint64_t off, void *buf,
                       size_t len);
/* Writes are kept (durably after the next fsync or group commit) but are not
 * replicated until published. Returns len or -errno. */
ssize_t mfs_store_write(mfs_store *s, uint64_t ino, uint64_t off,
                        const void *buf, size_t len);
/* With MFS_WRITE_KEEP_TIMES the write leaves mtime/ctime alone: for a
 * caller (FUSE writeback cache) that reports the times itself through
 * mfs_store_setattr. Otherwise the same as mfs_store_write(). */
#define MFS_WRITE_KEEP_TIMES (1u << 0)
ssize_t mfs_store_write_flags(mfs_store *s, uint64_t ino, uint64_t off,
                              const void *buf, size_t len, unsigned flags);
/* mfs_store_write_flags in two steps, so that a caller can prepare the next
 * write while the last one is applied (fs/wb.c): prepare does the part that
 * needs no lock (cutting and hashing the chunks of a write that continues
 * a file written in order) and may return NULL (apply then does it all);
 * apply writes and frees the preparation. The writes of a file must be
 * applied in the order they were prepared, with buf unchanged between the
 * two; a preparation that is not applied (apply with len 0) only makes
 * the file's later writes slower. */
typedef struct mfs_write_prep mfs_write_prep;
mfs_write_prep *mfs_store_write_prepare(mfs_store *s, uint64_t ino,
                                        uint64_t off, const void *buf,
                                        size_t len);
ssize_t mfs_store_write_apply(mfs_store *s, mfs_write_prep *wp, uint64_t ino,
                              uint64_t off, const void *buf, size_t len,
                              unsigned flags);
/* Publishes ino's unpublished writes as a new content version (an op).
 * A no-op when there is nothing unpublished. A file with no remaining name
 * is never published (an unlinked temp file never replicates): its writes
 * stay readable through open handles until mfs_store_forget() drops them.
 * Call on close and on a timer. */
int mfs_store_publish(mfs_store *s, uint64_t ino);
/* Publishes every file with unpublished writes older than age_ms (0 = all). */
int mfs_store_publish_all(mfs_store *s, uint64_t age_ms);
/* Publishes ino (if nonzero) and makes everything committed so far durable
 * (fsync of the LMDB file). Returns only when it is on disk. */
int mfs_store_fsync(mfs_store *s, uint64_t ino);
int mfs_store_statfs(mfs_store *s, struct statvfs *out);

/* Forget: the kernel dropped its last reference to ino. Lets the store free
 * local state of files that have no name left, and the inode number of a
 * file that collection forgot while the kernel still held it. */
void mfs_store_forget(mfs_store *s, uint64_t ino);
/* Tells whether the kernel may still use an inode number (it holds a
 * lookup count: fs/). Collection forgets the number of a file it forgets
 * only when the kernel cannot ask for it; else mfs_store_forget does,
 * later. Without one, no number is in use. Any thread; must not call
 * into the store. */
typedef bool (*mfs_ino_busy_cb)(void *arg, uint64_t ino);
void mfs_store_set_ino_busy_cb(mfs_store *s, mfs_ino_busy_cb cb, void *arg);

/* Commits everything changed so far. durable = 0: committed (survives a
 * kill -9 of this process); durable = 1: also on disk (survives a power
 * cut). Returns once done, or the commit's error (-ENOSPC, -EIO). Any
 * thread; concurrent callers share one commit. */
int mfs_store_commit(mfs_store *s, int durable);
/* Asks for a commit of everything changed so far as soon as calls pause
 * (at the latest at the window's end), without waiting for it (a no-op
 * without group commit). Any thread. */
void mfs_store_commit_soon(mfs_store *s);
/* Asks for a commit (as mfs_store_commit(s, 0)) of everything changed so
 * far now, without waiting for it (a no-op without group commit). Any
 * thread. */
void mfs_store_commit_start(mfs_store *s);
/* Asks for a durable commit (as mfs_store_commit(s, 1)) of everything
 * changed so far, without waiting for it (a no-op without group commit).
 * Any thread. */
void mfs_store_sync_soon(mfs_store *s);
/* For the write concern: asks that everything applied so far, peers' ops
 * and chunks included, be made durable as soon as possible, with one
 * flush (a record of the intent log, made by the commit thread), or by a
 * sync as mfs_store_sync_soon when the log cannot; mfs_store_vv_held
 * then says so, and the oplog callback runs. Without waiting (a no-op
 * without group commit). Any thread. */
void mfs_store_hold_soon(mfs_store *s);

/* ---- grouping ----------------------------------------------------------
 * Between mfs_store_group_begin() and _end() calls from the calling thread
 * share one LMDB write transaction (used by bench and bulk imports). Other
 * threads' writes wait. _end() commits (not durably) and returns its error. */
int mfs_store_group_begin(mfs_store *s);
int mfs_store_group_end(mfs_store *s);

/* ---- replica (sync/) API ---------------------------------------------- */

typedef struct mfs_vv_entry {
    uint64_t node;
    uint64_t seq; /* highest contiguous op sequence held from node */
} mfs_vv_entry;

typedef struct mfs_vv {
    size_t n;
    mfs_vv_entry *e; /* owned; sorted by node; free with mfs_vv_free() */
} mfs_vv;

void mfs_vv_free(mfs_vv *vv);
/* Reads the store's version vector into *out (caller frees). */
int mfs_store_vv(mfs_store *s, mfs_vv *out);
/* The vector this store holds durably: what a power cut now cannot take
 * back (under group commit, the state of the last commit whose meta page
 * is synced: the one before the last commit, or the last once the commit
 * thread synced it, at most ~20 ms after the store went idle). What a
 * node reports to its peers for collection (DESIGN P9). Without group
 * commit: the last commit. */
int mfs_store_vv_durable(mfs_store *s, mfs_vv *out);
/* What the write concern needs (DESIGN P10) of one durable state, the
 * last commit known durable: its vector (*durable) and, per origin, the
 * least hlc of that origin's versions still waiting for a chunk there
 * (*wanted: entries (origin, hlc), none for an origin with nothing
 * wanted). The store holds origin's ops up to seq S whole and durably when
 * durable covers S and wanted has no hlc at or below S's (an origin stamps
 * its ops in sequence order). Kept from the first call on while calls
 * come (it reads every wanted chunk's key): -EAGAIN until the next commit
 * or sync has it (a sync is asked for). Without group commit: of the last
 * commit. Any thread; the caller frees both. */
int mfs_store_vv_held(mfs_store *s, mfs_vv *durable, mfs_vv *wanted);
/* The hlc of origin's op seq (in the log, or the last one folded), as the
 * calling thread sees the store; 0 for seq 0. 0 or -ENOENT. */
int mfs_store_op_hlc(mfs_store *s, uint64_t origin, uint64_t seq,
                     uint64_t *hlc);
uint64_t mfs_vv_get(const mfs_vv *vv, uint64_t node);
/* Ops in vv a not covered by b. */
uint64_t mfs_vv_missing(const mfs_vv *a, const mfs_vv *b);

/*
 * Encodes ops this store holds that `have` lacks into buf (up to cap bytes),
 * oldest first per origin, whole local actions only (an action's ops are
 * never split across batches unless one action alone exceeds cap).
 * Returns the bytes written (0: nothing missing), -ENOBUFS if cap cannot hold
 * even one op. Batch format: repeated [u32 length][op bytes], big-endian.
 * -ESTALE when `have` lacks ops this store has folded (snapshot.c): the
 * asker needs a snapshot.
 */
ssize_t mfs_store_ops_since(mfs_store *s, const mfs_vv *have, uint8_t *buf,
                            size_t cap);

#define MFS_APPLY_SMALL 32 /* wanted chunks of small versions listed */
#define MFS_SMALL_VERSION 4 /* chunks: a version this small is "small" */
typedef struct mfs_apply_result {
    size_t applied;    /* new ops applied */
    size_t duplicates; /* ops already held */
    size_t deferred;   /* ops with stamps too far in the future; not applied */
    /* chunks this store now wants for the small versions (at most
     * MFS_SMALL_VERSION chunks) the batch brought, with the node that
     * published each: replication asks for them ahead of the chunks
     * already queued, so a small file is not held up by a large one */
    size_t nsmall;
    uint8_t small[MFS_APPLY_SMALL][MFS_HASH_LEN];
    uint64_t small_origin[MFS_APPLY_SMALL];
} mfs_apply_result;

/* Applies a batch of remote ops atomically and idempotently, in any order.
 * A malformed batch or op is rejected whole with -EBADMSG and changes
 * nothing. res may be NULL. */
int mfs_store_apply(mfs_store *s, const uint8_t *batch, size_t len,
                    mfs_apply_result *res);

int mfs_store_chunk_has(mfs_store *s, const uint8_t hash[MFS_HASH_LEN]);
/* Returns the chunk's length, copying it when cap allows; -ENOENT, -ERANGE. */
ssize_t mfs_store_chunk_get(mfs_store *s, const uint8_t hash[MFS_HASH_LEN],
                            void *buf, size_t cap);
/* Verifies that data hashes to hash (-EBADMSG if not) and stores it. */
int mfs_store_chunk_put(mfs_store *s, const uint8_t hash[MFS_HASH_LEN],
                        const void *data, size_t len);
/* Stores several chunks in one transaction. Each is verified first; one
 * that does not match its hash gets len set to 0 and is skipped. Returns
 * how many were good (stored or held already), or -errno (then none was
 * stored). */
typedef struct mfs_chunk_in {
    uint8_t hash[MFS_HASH_LEN];
    const void *data;
    size_t len;
} mfs_chunk_in;
int mfs_store_chunks_put(mfs_store *s, mfs_chunk_in *v, size_t n);
/* Lists up to max hashes of chunks that applied versions need and this store
 * lacks (hashes written to out, MFS_HASH_LEN bytes each). Returns the count.
 * A version shows only once all its chunks are present. */
ssize_t mfs_store_chunks_wanted(mfs_store *s, uint8_t *out, size_t max);
/* The same, and origins[i] is the node that published a version needing
 * hash i (it held the chunk then): the first peer to ask. In hash order,
 * from the first hash above *after (NULL: from the first). */
ssize_t mfs_store_chunks_wanted_by(mfs_store *s, const uint8_t *after,
                                   uint8_t *out, uint64_t *origins,
                                   size_t max);
/* How many (chunk, version) pairs wait for a chunk: 0 when every applied
 * version is complete. Counts a chunk once per version needing it. */
ssize_t mfs_store_chunks_wanted_count(mfs_store *s);

/* ---- op log folding and snapshots (snapshot.c) -------------------------
 * The collector folds settled ops (every member holds them) into the state:
 * they leave the op log and a per-origin floor says how far. A vector below
 * a floor cannot be sent ops (mfs_store_ops_since says -ESTALE): such a node
 * (a new member) installs a snapshot instead. */
typedef struct mfs_snapshot_info {
    uint64_t bytes, records, inodes, entries, versions, ops;
    uint64_t extra; /* install: ops of this store applied on top */
} mfs_snapshot_info;
/* The floors (origin, last folded seq) in the last commit (caller frees). */
int mfs_store_log_floor(mfs_store *s, mfs_vv *out);
/* The replicated state of the last commit as one byte string, written to
 * a new file in the store's directory that has no name (its space is freed
 * when the last descriptor to it closes): *fd, which the caller owns and
 * closes, *len bytes from offset 0. Bounded memory (a 1 MiB buffer) whatever
 * the store's size; reads one committed read txn, so it may run on any
 * thread, beside writers, for as long as it takes (seconds for a big
 * store: not on a network thread). Returns 0, -ENOSPC or another -errno
 * of the file (*fd -1 then, nothing left behind), or a store error. */
int mfs_store_snapshot_file(mfs_store *s, int *fd, uint64_t *len,
                            mfs_snapshot_info *info);
/* A new empty file in the store's directory, with no name as above, to
 * receive a snapshot into: *fd, which the caller owns and closes. Any
 * thread. Returns 0 or -errno. */
int mfs_store_snapshot_spool(mfs_store *s, int *fd);
/* Writes a piece (p, n bytes) of a snapshot at off into a spool file
 * mfs_store_snapshot_spool gave. 0 or -errno (-ENOSPC). */
int mfs_store_snapshot_spool_put(int fd, const void *p, size_t n, uint64_t off);
/* Installs a snapshot (buf, len bytes: the contents of a file that
 * mfs_store_snapshot_file wrote, or a mapping of it; not kept after the
 * call): the store then holds what the sender held, but for
 * chunks, which it asks for as usual (those it has stay, and so do its
 * inode numbers and unpublished writes); ops it held that the snapshot
 * lacks are applied on top. -ENOTEMPTY when this store folded an op the
 * snapshot lacks (it could not be given back). A damaged or malformed snapshot:
 * -EBADMSG, nothing written. Durable when it returns 0. Any thread (the
 * daemon's sync thread runs it on one of its own, mfs-install). */
int mfs_store_snapshot_install(mfs_store *s, const uint8_t *buf, size_t len,
                               mfs_snapshot_info *info);

/* Raises vv so that it covers every op in batch (the format of
 * mfs_store_ops_since()): what a peer holds once it has applied it.
 * Returns the number of ops, -EBADMSG, -ENOMEM. */
ssize_t mfs_batch_scan(const uint8_t *batch, size_t len, mfs_vv *vv);

/* Where the first op of batch that is not origin's at or below seq
 * begins (len: none): the rest of a batch of one origin's ops in order
 * once a peer holds them up to seq. -EBADMSG when the framing is bad.
 * Reads only op heads. */
ssize_t mfs_batch_skip(const uint8_t *batch, size_t len, uint64_t origin,
                       uint64_t seq);

/* The content of the small files a batch's VERSION ops publish: the hash
 * of each version of one chunk and at most `small` bytes (not a hole),
 * at most max of them, into out (max * MFS_HASH_LEN bytes). Returns how
 * many; an op it cannot read is skipped. */
size_t mfs_batch_small_chunks(const uint8_t *batch, size_t len, size_t small,
                              uint8_t *out, size_t max);

/* Where mfs_store_ops_since() would have ended batch (its format) had its
 * buffer held max bytes: the length of the longest prefix of at most max
 * bytes that ends where an action ends (an op without OPF_MORE), or, when
 * the first action alone is larger, of as many of its ops as fit (the
 * first op, at least). So the prefix and the rest are each a batch the
 * sender could have sent (sync/repl.c applies large batches in such
 * slices). len when the whole batch fits; 0 for an empty one; -EBADMSG
 * when the framing of the part read is bad (mfs_store_apply() rejects
 * such a batch too). Reads only op heads. Any thread; batch is the
 * caller's. */
ssize_t mfs_batch_prefix(const uint8_t *batch, size_t len, size_t max);

/* The sequence number of the op `origin` stamped `st` with (a content
 * version's publish op, say): peers whose vector covers (st.node, *seq)
 * hold it. -ENOENT if this store holds no such op. */
int mfs_store_stamp_seq(mfs_store *s, mfs_stamp st, uint64_t *seq);

/* ---- change notification (for kernel cache invalidation) -------------- */

enum mfs_change_kind {
    MFS_CHANGE_ENTRY = 1, /* name appeared or vanished in dir `ino` */
    MFS_CHANGE_INODE = 2, /* attrs or content of `ino` changed */
    MFS_CHANGE_ATTR = 3,  /* attrs of `ino` changed, content did not
                             (a remote link or unlink of another name) */
};

/* Called after a change commits (in a group: after its call), once per
 * change, from the thread that made it. Reported: every change a remote
 * batch (or a chunk that completes a version, or a restore from the trash)
 * makes, and of a local call's changes the names it adds or removes
 * (ENTRY): the kernel knows the names its own request changed (fs/ skips
 * those), not the ones the derived view renames as a consequence
 * (conflict copies, a file coming back from the trash). Must not call
 * back into the store's write API. */
typedef void (*mfs_change_cb)(void *arg, int kind, uint64_t ino,
                              const char *name);
void mfs_store_set_change_cb(mfs_store *s, mfs_change_cb cb, void *arg);

/* Called after every commit that appended local ops (an fs/ write, a
 * publish), from the committing thread, after the commit is visible to
 * readers. For sync/ to push new ops at once. Must not block. */
typedef void (*mfs_oplog_cb)(void *arg);
void mfs_store_set_oplog_cb(mfs_store *s, mfs_oplog_cb cb, void *arg);
/* The write concern's early push: cb(arg, from, to, ops, len) with this
 * node's own ops in (from, to] (mfs_store_ops_since's format) once a
 * record of the intent log made them durable, before the group commit
 * that carries them to LMDB: from the fsync's thread, no store lock
 * held. A commit that then fails cannot take them back (the commit
 * thread applies the log again), so they may leave at once. The same
 * ops come again with the commit (oplog callback). NULL: none. */
typedef void (*mfs_logged_cb)(void *arg, uint64_t from, uint64_t to,
                              const uint8_t *ops, size_t len);
void mfs_store_set_logged_cb(mfs_store *s, mfs_logged_cb cb, void *arg);

/* ---- statistics and inspection ---------------------------------------- */

typedef struct mfs_store_stats {
    uint64_t node_id;
    uint64_t files, dirs, symlinks, others;
    uint64_t bytes;       /* logical size of live files */
    uint64_t ops;         /* ops in the op log */
    uint64_t ops_folded;  /* ops folded out of it (the floors' sum) */
    uint64_t local_seq;   /* this node's last op sequence */
    uint64_t chunks;      /* chunks held */
    uint64_t chunk_bytes; /* their bytes */
    uint64_t conflicts;   /* visible conflict copies */
    uint64_t dirty_files; /* files with unpublished writes */
    uint64_t store_bytes; /* size of the LMDB file */
    uint64_t log_bytes;   /* size of the intent log (preallocated) */
    uint64_t used_bytes;  /* of it in use (LMDB reuses the rest) */
    uint64_t map_bytes;   /* current map size */
    uint64_t pack_files;  /* pack files holding chunk bytes */
    uint64_t pack_bytes;  /* their size (live and not yet reclaimed) */
    uint64_t pack_live;   /* bytes in them still referenced */
    /* records kept for the tree: names (deleted ones too, until their
     * tombstones are collected), the move log, inode records */
    uint64_t entry_records, move_records, inode_records;
    uint64_t ino_records; /* inode numbers mapped */
    uint64_t commits;     /* commits of the main environment since open */
} mfs_store_stats;

/* Reads counts the store keeps up to date (no scan: about a millisecond
 * at a million files). */
int mfs_store_stats_get(mfs_store *s, mfs_store_stats *out);
/* The same counted by scanning every name, chunk and listing, for tests
 * that hold the kept counts equal to it. */
int mfs_store_stats_scan(mfs_store *s, mfs_store_stats *out);
/* For tests: the next n group commits fail with EIO (as a disk error
 * would), after their packs are synced. */
void mfs_store_test_fail_commits(mfs_store *s, int n);
/* For tests: the next n calls run in the group's txn itself (a FUSE
 * request's create, unlink, rename, ...: store_write_small) fail with EIO
 * after making their changes; with lose, as if those changes could not be
 * taken back (the group is then dropped as a failed commit is). */
void mfs_store_test_fail_calls(mfs_store *s, int n, bool lose);

/* Calls cb with the path of every visible conflict copy (up to max). */
int mfs_store_conflicts(mfs_store *s, void (*cb)(void *arg, const char *path),
                        void *arg, size_t max);

typedef struct mfs_file_info {
    uint64_t ino;
    mfs_id id;
    mfs_stamp version; /* stamp of the version shown (0 if none) */
    uint64_t size;
    uint32_t nchunks;
    uint32_t heads; /* concurrent versions held (1 = no conflict) */
    int dirty;      /* unpublished writes pending */
    /* what the shown version holds: a hash of its size, chunks and
     * extents (two versions of the same bytes, cut alike, match) */
    uint8_t content[MFS_HASH_LEN];
} mfs_file_info;

/* Looks ino up; when hashes is non-NULL, also copies up to max chunk hashes. */
int mfs_store_file_info(mfs_store *s, uint64_t ino, mfs_file_info *out,
                        uint8_t *hashes, size_t max);

/*
 * Writes a canonical text dump of the visible tree (paths, types, modes,
 * owners, times, sizes, content hashes, xattrs, link structure) with cb.
 * Two replicas that hold the same ops produce byte-identical dumps: it never
 * prints local inode numbers. For tests and `meshfs stat --dump`.
 */
int mfs_store_dump(mfs_store *s, void (*cb)(void *arg, const char *line),
                   void *arg);

/* Recomputes the derived view (listings, conflict names, lost+found) from
 * the replicated state. The view is kept incrementally; this is the repair
 * tool, and tests compare its result with the incremental one. */
int mfs_store_view_rebuild(mfs_store *s);

/* ---- stamps and names (pure helpers) ---------------------------------- */

int mfs_stamp_cmp(mfs_stamp a, mfs_stamp b);
/* 0 if name is a valid single path component; -EINVAL ("", ".", "..",
 * '/' in it), -ENAMETOOLONG (> 255 bytes). */
int mfs_name_check(const char *name);
/* Formats "<stem>.conflict-<node>-<YYYYMMDD-HHMMSS><.ext>" into out (cap >=
 * MFS_NAME_MAX + 1); the stem is shortened so the result fits in 255 bytes.
 * Returns the length. */
int mfs_conflict_name(char *out, size_t cap, const char *name, uint64_t node,
                      uint64_t unix_ms);

/* ---- versions pinned by open files (fs/) ------------------------------
 * An open file reads one whole version (DESIGN P5): fs/ pins the version
 * current at open and reads through the pin, and tells the store which
 * version each open file pins (mfs_store_pin_set / _drop) so that the
 * collector keeps it, and keeps an unlinked file's content while it is
 * open. */

/* The open file key (any address unique while it is open) pins version
 * ver of ino from now on, replacing what it pinned before. 0 or -errno
 * (-ENOENT unknown ino). Any thread. */
int mfs_store_pin_set(mfs_store *s, const void *key, uint64_t ino,
                      mfs_stamp ver);
/* The open file key is closed. */
void mfs_store_pin_drop(mfs_store *s, const void *key);

/* The version reads of regular file ino show now: the version its
 * unpublished local writes are based on while it has some, else the shown
 * version ({0,0}: none yet, an empty file); for a conflict copy its own
 * version. -ENOENT, -EISDIR, -EINVAL (not a regular file). Any thread. */
int mfs_store_version_current(mfs_store *s, uint64_t ino, mfs_stamp *ver);
/* Reads like mfs_store_read() through a handle pinned to *pin: when the
 * current version (above) is *pin or was made on this node (local writes
 * are seen at once, as on a local disk) it reads the current content,
 * unpublished writes included, and sets *pin to the current version;
 * otherwise (a remote version landed since) it reads version *pin as
 * published. Returns the bytes read (short at that version's end) or
 * -errno (-EIO if the pinned version is gone). Any thread. */
ssize_t mfs_store_read_pinned(mfs_store *s, uint64_t ino, mfs_stamp *pin,
                              uint64_t off, void *buf, size_t len);

/* ---- collection (DESIGN P9; docs/ARCHITECTURE.md "Collection") ---------
 * Frees superseded versions and the content of deleted files once the
 * change that made them garbage is settled (every member holds it and this
 * store holds every change concurrent with it) and the retention (the
 * trash: deleted and overwritten content stays recoverable that long) has
 * passed, then the chunks no version names. Works in small write
 * transactions on a thread of its own. */

#define MFS_COLLECT_RETENTION_DEFAULT_MS (7ull * 24 * 3600 * 1000)
#define MFS_COLLECT_SHARE_DEFAULT_PCT 10

typedef struct mfs_collect_config {
    uint64_t retention_ms; /* keep trash this long (0: collect at once) */
    uint32_t period_ms;    /* look again at least this often (1000) */
    /* The trash takes at most this share (percent) of the store's file
     * system; beyond it the oldest go first, whatever the retention.
     * 0: MFS_COLLECT_SHARE_DEFAULT_PCT; 100: no bound. */
    uint32_t share_pct;
    int alone;             /* no mesh: the store's own vector is settled */
} mfs_collect_config;

typedef struct mfs_collect_stats {
    uint64_t passes;
    uint64_t versions;     /* version records dropped */
    uint64_t inodes;       /* deleted files whose content was dropped */
    uint64_t tombstones;   /* deleted files and directories forgotten:
                            * names, logged moves, xattrs, inode record */
    uint64_t moves;        /* logged moves forgotten: no undo reaches them */
    uint64_t folded;       /* ops folded out of the op log (settled) */
    uint64_t chunks;       /* chunks freed */
    uint64_t chunk_bytes;  /* their bytes */
    uint64_t moved;        /* chunks moved out of mostly dead packs */
    uint64_t early;        /* items taken before their retention: the trash
                            * was over its share of the disk */
    uint64_t trash_over;   /* bytes the trash was over its share (last pass) */
    uint64_t disk_freed;   /* bytes of pack files deleted */
    uint64_t pinned;       /* items kept (last pass): open files, unpublished */
    uint64_t held_back;    /* items due but not settled (last pass) */
    uint64_t held_origin;  /* the node whose change the first of them is */
    uint64_t max_pause_us; /* longest write transaction of collection */
    uint64_t pass_ms;      /* duration of the last pass */
    uint64_t retention_ms; /* the retention in force */
    int settled;           /* the owner has given a settled vector */
    int last_error;        /* -errno of the last pass (0 ok) */
} mfs_collect_stats;

/* The settled vector: an op (origin, seq) with seq <= settled[origin] is
 * held by every member, and so is everything concurrent with it (sync/
 * computes it; a store alone passes its own vector). Until the first
 * call nothing is collected. Any thread; cheap. */
void mfs_store_collect_settled(mfs_store *s, const mfs_vv *settled);
/* Changes the settings; starts the collector's thread. -EROFS read-only. */
int mfs_store_collect_start(mfs_store *s, const mfs_collect_config *cfg);
void mfs_store_collect_set(mfs_store *s, const mfs_collect_config *cfg);
/* Stops the thread (mfs_store_close does too). */
void mfs_store_collect_stop(mfs_store *s);
/* One whole pass now, on this thread (tests, `meshfs stat`): drops what
 * is due and sweeps chunks. 0 or -errno; *out (may be NULL) gets what it
 * did. */
int mfs_store_collect_now(mfs_store *s, mfs_collect_stats *out);
/* ---- members ------------------------------------------------------------
 * Every node that ever originated ops (each node that reached the mesh
 * does: mfs_store_member_join), or that sync/ knows as a peer, is a
 * member, minus the removed ones. A removal replicates like any change and
 * is for good: the others stop counting the node (collection no longer
 * waits for it) and refuse its messages. */

/* Makes this node an origin (a "member.<node>" register on the member
 * registry) once it has reached the mesh, if it is not one yet, so that
 * every member counts it from then on. 1 done now, 0 an origin already,
 * -EAGAIN not reached the mesh yet (it holds no lost+found), -errno. */
int mfs_store_member_join(mfs_store *s);
/* Removes node from the mesh. -EINVAL for 0 or this node, -EALREADY. */
int mfs_store_member_remove(mfs_store *s, uint64_t node);
/* The removed nodes: up to cap into out; returns how many there are. */
ssize_t mfs_store_members_removed(mfs_store *s, uint64_t *out, size_t cap);
/* A member's identity record (sync/ident.h), rec (len bytes, at most
 * 1,024) borrowed: written as the register "key.<node>" on the member
 * registry, which replicates. -EALREADY if it holds those bytes already,
 * -EINVAL, -errno. Any thread. */
int mfs_store_member_key_put(mfs_store *s, uint64_t node, const uint8_t *rec,
                             size_t len);
/* Calls cb for each member's identity record (borrowed for the call),
 * in node order; cb returning nonzero stops. 0 or -errno. */
int mfs_store_member_keys(mfs_store *s,
                          int (*cb)(void *arg, uint64_t node,
                                    const uint8_t *rec, size_t len),
                          void *arg);
/* An invitation (sync/invite.h) listed on every member while it is open:
 * the register "invited.<id hex>" on the member registry, which
 * replicates. Only the node that made it sets or clears it. Collection
 * never waits for one (docs/REPLICATION.md). */
typedef struct mfs_invited {
    uint64_t id;              /* the invitation id's first 8 bytes (BE) */
    uint64_t by;              /* the node that made it */
    int64_t created, expires; /* unix seconds */
    uint32_t uses;            /* joins left */
} mfs_invited;
/* Sets the register of iv->id to *iv (borrowed). -EINVAL (id 0, uses 0,
 * or by not this node), -EALREADY if it holds that value already,
 * -errno. Any thread. */
int mfs_store_invited_put(mfs_store *s, const mfs_invited *iv);
/* Clears the register of invitation id. -EINVAL (0), -EALREADY (not
 * set), -EPERM (another node made it), -errno. Any thread. */
int mfs_store_invited_clear(mfs_store *s, uint64_t id);
/* The invitations set, expired ones too (the reader compares expires
 * with its clock), in id order: up to cap into out; returns how many
 * there are, or -errno. */
ssize_t mfs_store_invited_list(mfs_store *s, mfs_invited *out, size_t cap);

/* ---- the trash: what collection keeps for the retention ---------------
 * Deleted files and overwritten versions, until collection frees them. */
typedef struct mfs_trash_item {
    mfs_id inode;      /* the file */
    mfs_stamp version; /* the content kept */
    mfs_stamp cause;   /* the delete or overwrite: its node and time */
    uint64_t size;     /* of that version */
    int deleted;       /* 1: the file has no name now; 0: overwritten */
    int have;          /* all its chunks are on this node */
    char path[4096];   /* overwritten: where the file is now; deleted:
                          where it was ("?/NAME" if that dir is gone too) */
} mfs_trash_item;

/* Calls cb for each item, oldest change first; cb returning nonzero
 * stops. 0 or -errno. */
int mfs_store_trash_list(mfs_store *s,
                         int (*cb)(void *arg, const mfs_trash_item *it),
                         void *arg);
/* Brings version of inode back as a new local change that replicates like
 * any other: as the file's newest content when name in parent is that
 * file (an overwritten version), else as a new file name in parent (mode,
 * owner and mtime of the original). *absent (may be NULL) gets the number
 * of its chunks not on this node: they are fetched from the members that
 * hold them, and the restored content shows once they are here.
 * -EEXIST: name is another file; -EBUSY: the file has unpublished writes
 * (close it first); -ENOENT: not in the trash (any more). */
int mfs_store_restore(mfs_store *s, mfs_id inode, mfs_stamp version,
                      uint64_t parent, const char *name, mfs_attr *out,
                      uint64_t *absent);

/* ---- a node that rejoins keeps what only it had -----------------------
 * When a node's store is replaced (`meshfs join` on it again, after it was
 * removed or lost touch), the changes its old store's node made that the
 * mesh never received are copied out of the old store as new local
 * changes: every inode touched by the old node's ops after seq held (what
 * the mesh holds of that node, read once the new store has caught up) and
 * every file with writes never published, each with its path from the old
 * root, under directory dir of dst. Deletes and renames the mesh lacks
 * cannot become files: the ops are counted, nothing else. src is only
 * read. */
typedef struct mfs_recover_stats {
    uint64_t ops;        /* the old node's ops the mesh lacks */
    uint64_t files;      /* regular files (and other non-dirs) copied */
    uint64_t dirs;       /* directories made */
    uint64_t symlinks;   /* symlinks copied */
    uint64_t bytes;      /* content copied */
    uint64_t unreadable; /* files whose content src never had whole */
    uint64_t already;    /* whole copies an earlier run made (kept) */
} mfs_recover_stats;
/* stop (may be NULL): another thread sets *stop to give up: -ECANCELED.
 * Running it again into the same dir resumes: whole copies stay, partial
 * ones are made again. */
int mfs_store_recover(mfs_store *dst, uint64_t dir, mfs_store *src,
                      uint64_t held, const int *stop, mfs_recover_stats *st);

/* A check for tests and repair: every head version (what files and
 * conflict copies show), every base of unpublished writes and every
 * whole-block reference has all its chunks. 0, or -EIO with *absent the
 * number of chunks (or version records) missing. */
int mfs_store_verify(mfs_store *s, uint64_t *absent);
/* Totals since open, and the last pass's figures. */
void mfs_store_collect_stats_get(mfs_store *s, mfs_collect_stats *out);

#endif
