/*
 * kv.h - the store's bottom layer (docs/ARCHITECTURE.md, "Layers"): the
 * store struct, the LMDB tables, write and read transactions (txn.c),
 * version vectors (vv.c), and what a commit makes durable together with
 * the main environment: unpublished blocks (dirty.c) and pack files
 * (pack.c). Files of this layer include this header and never
 * internal.h: nothing here calls the ops, the tree, the content, the view
 * or the collector; what those must run at txn.c's fixed points comes
 * through store_hooks (open.c). Never include from outside store/.
 */
#ifndef MFS_STORE_KV_H
#define MFS_STORE_KV_H

#include "codec.h"
#include "log.h"
#include "schema.h"
#include "store.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Fixed object ids (node 0 is never a real node). */
#define MFS_ID_ROOT ((mfs_id){0, 1})
#define MFS_ID_TRASH ((mfs_id){0, 2})
#define MFS_ID_LOSTFOUND ((mfs_id){0, 3})
#define MFS_ID_NONE ((mfs_id){0, 0})
/* The mesh's member registry: a register per removed node, "removed.<node
 * in 16 hex digits>", carried by XATTR ops on this object (replica.c). */
#define MFS_ID_MEMBERS ((mfs_id){0, 4})

#define MFS_LOSTFOUND_NAME "lost+found"
#define MFS_MAX_CHUNKS (1u << 22) /* 256 GiB files at 64 KiB */
_Static_assert((uint64_t)MFS_MAX_CHUNKS * MFS_CHUNK_SIZE == MFS_MAX_FILE_SIZE,
               "store.h's largest file is MFS_MAX_CHUNKS chunks");
#define MFS_MAX_XATTR 65536
#define MFS_MAX_SEEN 4096
#define MFS_MAX_OP_BYTES (MFS_MAX_CHUNKS * 33ull + 4096)

enum db_index {
    DB_META,       /* "format", "node", "hlc", "seq", "ctr", "ino" */
    DB_OPS,        /* (origin, seq) -> op bytes: the op log */
    DB_VV,         /* origin -> highest contiguous seq held */
    DB_MOVES,      /* stamp -> move record (op + prior state): undo log */
    DB_ENTRIES,    /* entry id -> raw tree state (parent, inode, stamp, name) */
    DB_RCHILD,     /* (parent id, entry id) -> "" raw children */
    DB_ILINKS,     /* (inode id, entry id) -> "" every entry of an inode */
    DB_INODES,     /* inode id -> registers and shown version */
    DB_XATTRS,     /* (inode id, name) -> stamp, present, value */
    DB_VERSIONS,   /* (inode id, stamp) -> version record */
    DB_SUPERSEDED, /* (inode id, stamp) -> "" versions a complete one replaced
                    */
    DB_VMISSING,   /* (inode id, stamp) -> u32 chunks still missing */
    DB_WANT,       /* (hash, inode id, stamp) -> "" chunk wanted by version */
    DB_CHUNKS,     /* hash -> data */
    DB_DIRTY,      /* (inode id, block) -> unpublished block */
    DB_DINFO,      /* inode id -> unpublished size/times/base */
    DB_INO2OBJ,    /* local ino -> object key */
    DB_OBJ2INO,    /* object key -> local ino */
    DB_DIRENTS,    /* (dir id, display name) -> visible entry */
    DB_VENT,       /* entry id -> where the entry is visible */
    DB_GROUPS,     /* (dir id, raw name, 0, entry id) -> "" same-name groups */
    DB_LINKS,      /* (inode id, entry id) -> "" visible entries of an inode */
    DB_NSUB,       /* dir id -> visible subdirectory count */
    DB_CCOPY,      /* (inode id, stamp) -> (dir id, name) conflict copy shown */
    DB_HEADS,      /* (inode id, stamp) -> "" complete, unsuperseded versions */
    DB_TFROM,      /* (dir id, entry id) -> "" entries deleted from dir */
    DB_CDIRS,      /* dir id -> u32 generated (conflict) names shown in it */
    DB_NLINK,      /* inode id -> u32 visible entries (non-directories) */
    DB_DREFS,      /* (inode id, block) -> hash: unpublished whole block,
                    * already a chunk (dirty.c) */
    DB_GCQ,        /* (time ms, inode id, version stamp) -> cause stamp:
                    * what collection may free once settled (collect.c) */
    DB_PACKS,      /* pack id -> size, live bytes (pack.c) */
    DB_DCHUNKS,    /* (inode id, offset) -> hash, length: an unpublished
                    * content-defined chunk, already stored (dirty.c) */
    DB_COUNT
};

/* What `meshfs stat` counts, kept as the view changes (view.c; store
 * format 5): saved in DB_META "census" by every write txn that changed it. */
struct census {
    int64_t files, dirs, symlinks, others; /* visible inodes by type */
    int64_t bytes;     /* sizes of the visible regular files */
    int64_t conflicts; /* generated names shown (DB_CDIRS summed) */
};

/* What the layers above txn.c do at the points txn.c reaches, registered
 * by mfs_store_open (open.c), so that the bottom layer calls nothing above
 * it. Every one is set; the table is never changed after open. */
struct wtx;
typedef struct store_hooks {
    /* In the txn that creates a store, after txn.c's own records (magic,
     * format, node, the root's ino): the upper layers' first records (the
     * census, the root inode) and, for a new mesh (cfg->new_mesh), the ops
     * every joining replica receives (op_seed_mesh). Returns w's first
     * error. */
    int (*format)(struct wtx *w, const mfs_store_config *cfg);
    /* Once a store is open (created, or checked and upgraded), before the
     * commit thread starts: the census loaded (counted again if the store
     * has none), and in a writable store the collector and the content
     * hasher set up. 0 or a negative errno (the open fails). */
    int (*opened)(mfs_store *s);
    /* First thing at close, while the commit thread still runs: stops
     * and frees what opened set up (the collector's thread writes). */
    void (*closing)(mfs_store *s);
    /* Ends every write txn's work, before its counters are saved and it
     * commits (a group's nested txn too): the derived view (view_flush).
     * Returns w's first error. */
    int (*pre_commit)(struct wtx *w);
    /* With the counters, in the last txn of every commit: what the layers
     * above keep in DB_META as the view changes (census_save). */
    void (*save)(struct wtx *w);
    /* After a store_write whose changes committed (or joined the group
     * txn), without wlock: what the upper layers do then (wake the
     * collector when w queued work for it). */
    void (*committed)(struct wtx *w);
    /* The write concern's wanted vector (mfs_store_vv_held) of txn: per
     * origin, the least hlc of its versions that still wait for a chunk.
     * 0 or -errno. */
    int (*held)(mfs_store *s, MDB_txn *txn, mfs_vv *out);
    /* The intent log's records applied again, as at open (a group commit
     * failed and took back ops the log holds: gc_replay, on the commit
     * thread, wal_mu held, wlock not). 0 or -errno. */
    int (*replay)(mfs_store *s);
    /* What the CRDT layer (op.c, tree.c, content.c) tells or asks the
     * layers above as it applies ops (internal.h). */
    const struct crdt_hooks *crdt;
} store_hooks;

/* The store's counters as of a moment, to go back to when a txn fails. */
/* What a call in the group's txn changed, to take it back if it fails
 * (txn.c undo_note, undo_apply): the keys it put or deleted with their
 * values before it, oldest first, in one growing buffer. */
struct undo_rec {
    MDB_dbi dbi;
    uint32_t kl;
    uint32_t vl; /* UNDO_ABSENT: the key was not there */
    size_t off;  /* key, then the old value, at buf + off */
};
#define UNDO_ABSENT UINT32_MAX
struct undo_log {
    struct undo_rec *r;
    size_t n, cap;
    uint8_t *buf;
    size_t len, bcap;
    bool lost; /* a change it cannot take back (a dropped table, no memory) */
};

struct counters {
    uint64_t hlc, seq, ctr, next_ino;
    struct census census, census_put;
};

struct mfs_store {
    const store_hooks *hooks; /* (open.c) */
    uint64_t commits; /* of env, since open (atomic; mfs_store_stats) */
    char *dir;
    MDB_env *env;
    MDB_dbi db[DB_COUNT];
    int lockfd;
    bool rdonly;
    uint32_t format; /* DB_META "format" as opened */
    mfs_store_config cfg;
    size_t mapsize;

    pthread_mutex_t wlock;    /* one writer at a time */
    pthread_mutex_t poollock; /* guards the pool of idle read txns */
    MDB_txn *pool[32];        /* reset read txns, renewed on use */
    int npool;
    pthread_rwlock_t maplock; /* txns read-lock; map resize write-locks */

    /* counters, persisted in DB_META by every write txn */
    uint64_t node;
    uint64_t hlc;
    int64_t clock_corr_ms; /* atomic: mfs_store_set_clock_correction */
    uint64_t hlc_pub;      /* atomic: hlc as of the last write (lock-free) */
    uint64_t seq;
    uint64_t ctr;
    uint64_t next_ino;
    struct census census;     /* see struct census */
    struct census census_put; /* as last put in a txn (census_save) */

    /* grouping */
    MDB_txn *group_txn;
    pthread_t group_owner;
    struct wtx *group_w;

    /* Group commit (cfg.commit_window_us > 0; docs/ARCHITECTURE.md
     * "Write path"). LMDB ties a write txn to the thread that began it
     * (its writer mutex), so one commit thread begins and commits the
     * shared txn `gc_txn`. A small call (store_write_small: a FUSE
     * request's create, unlink, rename, ...) runs in it directly and a
     * failure takes it back with its undo log (gc_undo); every other
     * store_write runs in a nested txn of it. Readers in this process read
     * through it while it holds uncommitted changes. Every gc_ field is
     * protected by wlock. */
    bool gc_on;
    MDB_txn *gc_txn;       /* the shared txn; NULL while none is open */
    MDB_txn *gc_dtxn;      /* its partner in the dirty environment */
    bool gc_in_call;       /* a store_write runs in gc_txn now */
    struct undo_log gc_undo; /* how to take that call back (txn.c) */
    int gc_poison;           /* a call broke gc_txn: the commit must fail */
    uint64_t gc_first_us;  /* monotonic time of gc_txn's first change */
    uint64_t gc_last_us;   /* monotonic time of the last change */
    bool gc_soon;          /* commit once calls pause (commit_soon) */
    uint64_t gc_written;   /* bytes put in gc_txn (map and disk room) */
    uint64_t gc_gen;       /* store_writes done into some gc_txn */
    uint64_t gc_committed; /* gc_gen covered by the last commit attempt */
    uint64_t gc_durable;   /* gc_gen covered by the last sync */
    uint64_t gc_want;      /* a caller waits for a commit up to this */
    uint64_t gc_want_durable;
    uint64_t gc_fail_lo, gc_fail_hi; /* gens lost by the last failed commit */
    int gc_fail_rc;
    bool gc_grow;      /* the map is full: grow it after the commit */
    bool gc_dgrow;     /* the dirty environment's map, likewise */
    bool gc_local_ops; /* gc_txn holds local ops (oplog_cb after commit) */
    bool gc_stop;
    bool gc_exited;           /* the commit thread has returned */
    struct counters gc_saved; /* the counters as last committed */
    uint64_t gc_reserved;     /* bytes of data.mdb preallocated (fallocate) */
    uint64_t gc_dwritten;     /* bytes put in gc_dtxn */
    uint64_t gc_dreserved;    /* bytes of dirty/data.mdb preallocated */
    uint64_t gc_zeroed;       /* data.mdb written with zeros up to here */
    bool gc_durable_grew;     /* vv_durable (or vv_held_durable) grew,
                                 the owner not told yet */
    pthread_t gc_thread;
    bool gc_thread_started;
    pthread_cond_t gc_work; /* the commit thread waits here */
    pthread_cond_t gc_done; /* callers wait here for commits */

    /* unpublished blocks (dirty.c): a second, never-synced environment */
    MDB_env *denv; /* NULL in a read-only open */
    MDB_dbi ddb;  /* dirty.c: whole blocks */
    MDB_dbi dpdb; /* dirty.c: pages written over blocks */
    size_t dmapsize;    /* grows like mapsize, under maplock */
    MDB_txn *dpool[32]; /* reset read txns of denv, guarded by poollock */
    int ndpool;
    /* Odd while a writer commits the dirty environment and then the main
     * one; readers that begin a read txn of each without wlock check it
     * did not move (a seqcount). Atomic; written only under wlock. */
    uint64_t dseq;
    /* 1 while gc_txn holds uncommitted changes (gc_first_us != 0), for
     * readers that look without wlock. Atomic; written under wlock. */
    int gc_dirty;

    /* durable vectors (group commit only): the vector of the last commit
     * and of the last commit known durable (mfs_store_vv_durable) */
    pthread_mutex_t vvlock;
    mfs_vv vv_commit, vv_durable;
    uint64_t vv_commit_gen, vv_durable_gen; /* their commits' gc_gen */
    /* of the same two commits, per origin the least hlc of a version that
     * waits for a chunk (hooks->held), kept while a peer asks for
     * write-concern acks: until held_track_us (monotonic); *_ok: computed
     * for that commit */
    mfs_vv vv_held_commit, vv_held_durable;
    bool held_commit_ok, held_durable_ok;
    uint64_t held_track_us; /* atomic */
    /* the same of the intent log's last record that held peers' ops
     * (wal_hold): newer than the durable ones when held_log_gen, the
     * gc_gen it covers, is above vv_durable_gen */
    mfs_vv vv_held_log, wanted_held_log;
    bool held_log_ok;
    uint64_t held_log_gen;
    bool gc_want_hold;      /* a hold record is asked for (wlock) */
    bool meta_unsynced;     /* a commit's meta page is not synced yet */
    uint64_t last_commit_us; /* monotonic time of the last commit */

    /* The intent log (wal.c): fsync in one flush. Every wal_ field but
     * wal_mu and wal_fd is protected by wlock. */
    pthread_mutex_t wal_mu; /* appends, one at a time (MFS_LOCK_STORE_LOG) */
    int wal_fd;             /* STORE/intent.log; -1 without */
    bool wal_on;            /* fsync appends (group commit, file usable) */
    bool wal_broken;        /* an append failed: fsync commits from now */
    bool wal_covered;       /* LMDB's last sync covered every record */
    uint64_t wal_size;      /* its bytes: two halves (0: no log) */
    int wal_half;           /* the half being appended to */
    uint64_t wal_half_gen[2]; /* gc_gen at each half's last record */
    uint64_t wal_synced_gen;  /* gc_gen the last sync of LMDB covered */
    bool wal_written;       /* a record was appended since open */
    uint8_t *wal_recs;      /* records found at open, until replayed */
    size_t wal_nrecs;       /* their bytes */
    uint64_t wal_epoch;     /* of the records being appended */
    uint64_t wal_off;       /* where the next record goes (file offset) */
    uint64_t wal_gen;       /* gc_gen when the last record was made */
    uint64_t wal_lost;      /* failed commits that cleared the log */
    /* A failed group commit took back ops the log holds (fsync said they
     * were durable; with a write concern, members may hold them): the
     * commit thread applies the log again before any other write
     * (WAL_REPLAY_NOW: writers wait), or, when that failed, every
     * second (WAL_REPLAY_FAILED: writes fail with gc_fail_rc). */
    enum { WAL_REPLAY_NONE, WAL_REPLAY_NOW, WAL_REPLAY_FAILED } wal_replay;
    uint64_t wal_replay_us; /* monotonic: the next try after a failed one */
    int test_fail_commits;  /* (tests) group commits to fail with EIO */
    int test_fail_calls;    /* (tests) small calls in gc_txn to fail so */
    bool test_fail_lose;    /* (tests) ... and not be taken back */
    uint64_t wal_seq;       /* own ops <= this are durable (log or LMDB) */
    /* peers' ops: those up to wal_vv are durable (log or LMDB; below
     * vv_durable they are anyway); which halves hold records of them */
    mfs_vv wal_vv;
    bool wal_half_peers[2];
    uint64_t wal_commit_seq, wal_synced_seq; /* s->seq at the last commit,
                                                and at the last synced one */
    uint8_t *wal_fresh;     /* hashes of chunks put since the last sync */
    size_t wal_nfresh, wal_fresh_cap;
    size_t wal_logged;       /* fresh ones before this are durable */
    size_t wal_commit_fresh; /* wal_nfresh at the last commit */
    uint64_t wal_dropped;    /* fresh entries dropped since open (synced) */
    bool wal_fresh_over;     /* more than the list holds: fsync commits */
    bool wal_commit_over;    /* it was so at the last commit */
    uint8_t *wal_buf;        /* the record being made */
    /* (wal_mu) its own ops: (wal_own_from, its seq], wal_own_len bytes
     * at wal_own_at (0: none); for logged_cb */
    size_t wal_own_at, wal_own_len;
    uint64_t wal_own_from;
    mfs_logged_cb logged_cb; /* (wlock) mfs_store_set_logged_cb */
    void *logged_arg;
    /* the last WAL_RING chunks logged in this half (delta bases) */
#define WAL_RING 8
    uint8_t wal_ring[WAL_RING][MFS_HASH_LEN];
    uint32_t wal_ring_len[WAL_RING];
    unsigned wal_ring_n;     /* entries in use; the next goes at n % RING */
    uint8_t *wal_base;       /* a base's bytes, to compare (64 KiB) */

    /* collection (collect.c): its thread, settings, pins; NULL read-only */
    struct collector *col;
    /* chunk bytes in pack files (pack.c); NULL before open */
    struct packs *packs;
    struct hasher *hasher; /* content.c: hashes half of a large write */
    struct streams *streams; /* content.c: files being written in order */

    /* ino -> inode id of committed OBJ_INODE mappings, which never change
     * once committed (ino_lookup_obj): saves a B-tree search per resolve.
     * Each slot is a seqcount (odd while one thread fills it). */
    struct icache_slot {
        uint64_t seq, ino, node, ctr;
    } icache[4096];

    mfs_change_cb change_cb;
    _Atomic(mfs_ino_busy_cb) ino_busy_cb;
    void *_Atomic ino_busy_arg;
    mfs_oplog_cb oplog_cb;
    void *oplog_arg;
    void *change_arg;
};

/* ---- id and stamp keys (layout: schema.h) ---- */
static inline bool id_eq(mfs_id a, mfs_id b)
{
    return a.node == b.node && a.seq == b.seq;
}
static inline bool id_zero(mfs_id a)
{
    return a.node == 0 && a.seq == 0;
}
static inline bool stamp_eq(mfs_stamp a, mfs_stamp b)
{
    return a.hlc == b.hlc && a.node == b.node;
}
static inline void mfs_wput_id(mfs_wbuf *w, mfs_id id)
{
    mfs_put_u64(w, id.node);
    mfs_put_u64(w, id.seq);
}
static inline mfs_id mfs_rget_id(mfs_rbuf *r)
{
    mfs_id id;
    id.node = mfs_get_u64(r);
    id.seq = mfs_get_u64(r);
    return id;
}
static inline void mfs_wput_stamp(mfs_wbuf *w, mfs_stamp st)
{
    mfs_put_u64(w, st.hlc);
    mfs_put_u64(w, st.node);
}
static inline mfs_stamp mfs_rget_stamp(mfs_rbuf *r)
{
    mfs_stamp st;
    st.hlc = mfs_get_u64(r);
    st.node = mfs_get_u64(r);
    return st;
}

/* ---- small growable id sets used while a transaction runs ---- */
typedef struct idset {
    mfs_id *v;
    size_t n, cap;
} idset;
/* Appends (duplicates allowed; view_flush sorts and dedups). Aborts on OOM. */
void idset_add(idset *s, mfs_id id);
bool idset_has(const idset *s, mfs_id id);
void idset_free(idset *s);

/* A (dir, raw name) pair whose display names need recomputing. */
typedef struct namekey {
    mfs_id dir;
    char name[MFS_NAME_MAX + 1];
} namekey;

typedef struct change {
    int kind;
    uint64_t ino;
    char name[MFS_NAME_MAX + 1];
} change;

/* ---- write transaction context ---- */
typedef struct wtx {
    mfs_store *s;
    MDB_txn *txn;
    int err;               /* first error; later calls are no-ops */
    bool remote;           /* applying remote ops: collect notifications */
    idset touched_entries; /* raw tree state changed */
    idset touched_inodes;  /* heads / existence changed */
    namekey *groups;       /* dirty name groups */
    size_t ngroups, capgroups;
    uint32_t *gindex; /* open addressing over groups: index + 1, 0 empty */
    size_t gslots;    /* a power of two, >= 2 x ngroups (0: none yet) */
    uint64_t written;  /* bytes put so far (map room estimate) */
    MDB_txn *dtxn;     /* write txn of the dirty environment, once used */
    uint64_t dwritten; /* bytes put in it */
    bool dfull;        /* its map was full (err is MDB_MAP_FULL) */
    change *changes;
    size_t nchanges, capchanges;
    bool gc_queued; /* queued something for collection: wake it */
    bool recount;   /* count the census again before the txn ends */
    uint64_t muts;  /* records put or deleted by the call (wtx_mut) */
    struct undo_log *undo; /* group commit: notes what the call changes */
    /* Set by a call that may find nothing to do (collection's steps): if
     * it changed no record, store_write commits nothing, so an idle store
     * is never written to (it was, twice a second: a commit and its meta
     * page's sync). */
    bool drop_if_unchanged;
} wtx;

/* A record of w's txns put or deleted other than by tput/tdel. */
static inline void wtx_mut(wtx *w)
{
    w->muts++;
}

/* Before a change of w's main txn made other than by tput/tdel: notes the
 * key's value now, so a failed call can be taken back (group commit runs
 * calls in the group's txn itself). wtx_undo_lost: a change that cannot be
 * noted (a table dropped); if the call then fails, the group is lost. */
void wtx_undo_note(wtx *w, int db, const void *k, size_t kl);
void wtx_undo_cursor(wtx *w, MDB_cursor *c); /* the record under c */
static inline void wtx_undo_lost(wtx *w)
{
    if (w->undo)
        w->undo->lost = true;
}

/* wal.c: the intent log (see its top comment). wal_open (store_open,
 * writable stores) makes or opens STORE/intent.log, syncs what LMDB holds
 * and keeps the records found in s->wal_recs for the top layer to replay
 * (wal_each); wal_start (after that replay's durable commit, under no
 * lock) lets fsync append. wal_fsync: 0 durable, 1 use
 * mfs_store_commit(s, 1) instead, or -errno. wal_note_chunk (a chunk put,
 * under wlock), wal_committed (a group commit succeeded), wal_synced (a
 * sync covered commit gen), wal_lost (a group commit failed): txn.c's and
 * pack.c's points. wal_reset_file zeroes the first header and syncs. */
int wal_open(mfs_store *s);
int wal_each(const uint8_t *recs, size_t len,
             int (*fn)(const uint8_t *hash, const uint8_t *data, size_t n,
                       const uint8_t *ops, size_t opslen, void *arg),
             void *arg);
void wal_start(mfs_store *s);
int wal_fsync(mfs_store *s);
void wal_note_chunk(mfs_store *s, const uint8_t *hash);
void wal_committed(mfs_store *s);
void wal_synced(mfs_store *s, uint64_t gen);
void wal_lost(mfs_store *s);
/* A group commit failed (txn.c, wlock held): true when the log holds
 * records to apply again (wal_replay set), false when it was cleared
 * (wal_lost). wal_reread: the file's records, as at open, into *recs
 * (malloc'd, the caller frees it; NULL: none), *len bytes (wal_mu
 * held). */
bool wal_failed(mfs_store *s);
int wal_reread(mfs_store *s, uint8_t **recs, size_t *len);
/* The commit thread's, with no lock held (mfs_store_hold_soon): one
 * record of every op applied and chunk put that is not durable yet,
 * peers' too, made durable with one flush; the held snapshot is then of
 * it (vv_held_log). 0, 1: the log cannot (sync LMDB instead), -errno. */
int wal_hold(mfs_store *s);
int wal_reset_file(mfs_store *s);
/* txn.c: asks the commit thread for a sync of LMDB, without waiting
 * (under wlock; group commit only). */
void gc_sync_soon(mfs_store *s);
/* txn.c, for the store's files: pwrite of all n bytes at off (0 or
 * -errno); zeros over [from, to); cap, or a sixteenth of the free space
 * of fd's file system if less (what a preallocation may take); whether
 * fd is on tmpfs (no blocks to prepare, and zeros would take memory). */
int pwrite_all(int fd, const void *p, size_t n, uint64_t off);
int zero_write(int fd, uint64_t from, uint64_t to);
uint64_t free_share(int fd, uint64_t cap);
bool on_tmpfs(int fd);
void wal_close(mfs_store *s);

/* txn.c */
/* mfs_store_open (store.h) with the hooks of the layers above txn.c. */
int store_open(mfs_store **out, const char *dir, const mfs_store_config *cfg,
               unsigned flags, const store_hooks *hooks);
int store_write(mfs_store *s, int (*fn)(wtx *w, void *arg), void *arg);
/* The same for a call that changes a few records (a FUSE request's create,
 * unlink, rename, setattr): under group commit it may run in the group's
 * txn itself, taken back by its undo log if it fails (txn.c gc_write). */
int store_write_small(mfs_store *s, int (*fn)(wtx *w, void *arg), void *arg);
/* A read txn that sees every change made so far in this process,
 * committed or not (with group commit it may be the shared write txn, and
 * the caller then holds wlock until store_read_end: keep reads short). */
int store_read_begin(mfs_store *s, MDB_txn **txn);
/* A read txn on the last commit only: what survives a kill -9, and all
 * that may leave the node (op log) or feed long scans. Not to be begun
 * while this thread holds a store_read_begin txn: its store_read_end
 * would end that one's paired dirty txn (no caller nests them). */
int store_read_begin_committed(mfs_store *s, MDB_txn **txn);
/* For long scans (stats, dumps): commits every call made so far, then
 * reads the last commit, so the scan holds up no writer. */
int store_read_begin_scan(mfs_store *s, MDB_txn **txn);
void store_read_end(mfs_store *s, MDB_txn *txn);
/* The dirty environment's txn paired with the calling thread's open
 * store_read_begin txn (same moment), or NULL. */
MDB_txn *store_read_dtxn(const mfs_store *s);
int mdb_to_errno(int rc);
/* -EIO from a commit or sync on a full disk becomes -ENOSPC. */
int store_commit_errno(mfs_store *s, int rc);
/* Records rc (an LMDB or negative errno code) as w's first error. */
int wtx_fail(wtx *w, int rc);
int tput(wtx *w, int db, const void *k, size_t kl, const void *v, size_t vl);
int tdel(wtx *w, int db, const void *k, size_t kl);
/* Deletes every key >= start (kl bytes) that begins with start's first plen
 * bytes. Returns how many, or w's first error. */
int tdel_prefix(wtx *w, int db, const void *start, size_t kl, size_t plen);
/* The item after the one the cursor just deleted (LMDB leaves the cursor
 * on it; with none left it may say EINVAL rather than NOTFOUND). */
static inline int cursor_after_del(MDB_cursor *c, MDB_val *key, MDB_val *val)
{
    int rc = mdb_cursor_get(c, key, val, MDB_GET_CURRENT);
    return rc == EINVAL ? MDB_NOTFOUND : rc;
}
/* 0 found, -ENOENT absent, other -errno */
int tget(mfs_store *s, MDB_txn *txn, int db, const void *k, size_t kl,
         MDB_val *v);
mfs_stamp stamp_next(mfs_store *s);
uint64_t store_now_ms(mfs_store *s);
void wtx_change(wtx *w, int kind, uint64_t ino, const char *name);

/* Object keys: kind 1 = inode (16 bytes id), kind 2 = conflict copy
 * (inode id + version stamp). */
enum { OBJ_INODE = 1, OBJ_CCOPY = 2 };
typedef struct objkey {
    uint8_t b[OBJKEY_CCOPY_LEN];
    size_t len;
} objkey;
objkey obj_inode(mfs_id id);
objkey obj_ccopy(mfs_id id, mfs_stamp v);
/* The fields of an object key (schema.h OBJKEY_*); the stamp only of an
 * OBJ_CCOPY key. */
static inline uint8_t objkey_kind(const objkey *k)
{
    return k->b[OBJKEY_KIND];
}
static inline mfs_id objkey_id(const objkey *k)
{
    return id_get(k->b + OBJKEY_ID);
}
static inline mfs_stamp objkey_stamp(const objkey *k)
{
    return stamp_get(k->b + OBJKEY_STAMP);
}
/* Finds or assigns the local ino of an object (write txn). */
uint64_t ino_assign(wtx *w, const objkey *k);
int ino_lookup_obj(mfs_store *s, MDB_txn *txn, uint64_t ino, objkey *out);
int ino_of_obj(mfs_store *s, MDB_txn *txn, const objkey *k, uint64_t *ino);
/* Forgets the inode number of inode id (an object gone for good) unless the
 * kernel may still use it (the ino_busy callback). */
void ino_forget(wtx *w, mfs_id id);

/* ---- unpublished blocks (dirty.c) ---- */
int dirty_open(mfs_store *s);
void dirty_close(mfs_store *s);
/* LMDB never shrinks a file: a stream of writes that are not whole blocks
 * leaves the environment as large as the most it held between two
 * commits, tens of MiB, long after the writes were published. When it
 * holds nothing and its file is past DIRTY_SHRINK_BYTES
 * (dirty_oversized), dirty_shrink makes it anew; the caller has no txn of
 * it open and keeps readers out (txn.c, after a group commit). */
#define DIRTY_SHRINK_BYTES ((uint64_t)1 << 20)
bool dirty_oversized(mfs_store *s);
int dirty_shrink(mfs_store *s);
/* w's write txn of the dirty environment, begun on first use (NULL and
 * w->err set on failure). store_write commits it just before the main
 * store's changes, and only when they succeed. */
MDB_txn *dirty_wtxn(wtx *w);
int dirty_commit(wtx *w);
void dirty_abort(wtx *w);
/* A read txn (*txn NULL when the store has no dirty environment). */
int dirty_read_begin(mfs_store *s, MDB_txn **txn);
void dirty_read_end(MDB_txn *txn);
/* Block blk of id; -ENOENT when it has none (or dtxn is NULL). */
int dirty_get(mfs_store *s, MDB_txn *dtxn, mfs_id id, uint64_t blk, MDB_val *v);
int dirty_put(wtx *w, mfs_id id, uint64_t blk, const void *data, size_t len);
/* Drops block blk's bytes and pages (absent is not an error). */
int dirty_del(wtx *w, mfs_id id, uint64_t blk);
/* Drops id's blocks (bytes, pages and references) at or past block
 * first. */
int dirty_del_from(wtx *w, mfs_id id, uint64_t first);
/* Calls cb for each of id's blocks that has bytes or pages here, in
 * order, each once; stops at cb's first nonzero return, which it
 * returns. */
int dirty_each(mfs_store *s, MDB_txn *dtxn, mfs_id id,
               int (*cb)(void *arg, uint64_t blk), void *arg);
/* Pages: a write of whole, aligned 4 KiB pages inside a block is kept as
 * those pages (table "pages", key id, block, page number), not as the
 * whole block read, changed and written again: 20,000 random 4 KiB
 * writes copied 64 KiB each into this environment, and its commits wrote
 * them all. A block's bytes are then its bytes here (or its reference,
 * or its base version's chunk, or zeros) with its pages laid over them;
 * a write that is not whole pages, a truncate into the block and a
 * reference (dirty_ref_put) fold or drop them. dirty_pages counts the
 * pages over a block; dirty_pages_over lays them over out, whose first
 * len bytes are the block's bytes below (zeros fill a gap), and returns
 * the new length or a negative errno; dirty_pages_del drops a block's. */
#define MFS_DIRTY_PAGE 4096u
int dirty_page_put(wtx *w, mfs_id id, uint64_t blk, unsigned page,
                   const void *data);
unsigned dirty_pages(mfs_store *s, MDB_txn *dtxn, mfs_id id, uint64_t blk);
/* Which pages lie over block blk: bit i for page i. */
uint32_t dirty_page_mask(mfs_store *s, MDB_txn *dtxn, mfs_id id, uint64_t blk);
ssize_t dirty_pages_over(mfs_store *s, MDB_txn *dtxn, mfs_id id, uint64_t blk,
                         uint8_t *out, size_t len);
int dirty_pages_del(wtx *w, mfs_id id, uint64_t blk);
/* Block references: a block written whole is hashed by the writer, stored
 * at once as a chunk of the main store, and recorded in DB_DREFS (main
 * store, so the chunk and the reference commit together) instead of as
 * bytes here. A block has bytes or a reference, never both; readers look
 * at the bytes first. dirty_ref_get reads txn (the main store): 0 and the
 * hash, or -ENOENT. dirty_ref_put records one and drops the block's
 * bytes and pages (its caller tells the collector: gc_note); dirty_ref_del drops one (absent is not an error).
 * dirty_ref_each calls cb(arg, blk, hash) in block order. */
int dirty_ref_get(mfs_store *s, MDB_txn *txn, mfs_id id, uint64_t blk,
                  uint8_t hash[MFS_HASH_LEN]);
int dirty_ref_put(wtx *w, mfs_id id, uint64_t blk,
                  const uint8_t hash[MFS_HASH_LEN]);
int dirty_ref_del(wtx *w, mfs_id id, uint64_t blk);
int dirty_ref_each(mfs_store *s, MDB_txn *txn, mfs_id id,
                   int (*cb)(void *arg, uint64_t blk, const MDB_val *v),
                   void *arg);
/* Stream chunks: a file written from its first byte on, in order, is cut
 * into content-defined chunks as it is written (content.c streams); each
 * is stored at once and recorded in DB_DCHUNKS (main store) by the offset
 * where it starts, its bytes in no block here. They lie under the blocks
 * (a block's bytes, pages or reference come first) and over the base
 * version. dirty_chunk_at gives the chunk that holds byte pos, else the
 * first one after it (0), or -ENOENT; dirty_del_from drops those that
 * start at or past its block. */
int dirty_chunk_put(wtx *w, mfs_id id, uint64_t start,
                    const uint8_t hash[MFS_HASH_LEN], uint32_t len);
int dirty_chunk_at(mfs_store *s, MDB_txn *txn, mfs_id id, uint64_t pos,
                   uint64_t *start, uint32_t *len,
                   uint8_t hash[MFS_HASH_LEN]);
/* Drops id's stream chunks that start at or past byte start. */
int dirty_chunk_del_from(wtx *w, mfs_id id, uint64_t start);
/* cb(arg, start, value) for each of id's stream chunks, in order. */
int dirty_chunk_each(mfs_store *s, MDB_txn *txn, mfs_id id,
                     int (*cb)(void *arg, uint64_t start, const MDB_val *v),
                     void *arg);

/* ---- pack files (pack.c) ---- */
#define PACK_INLINE 4096u           /* chunks up to this stay in DB_CHUNKS */
#define PACK_MAX ((uint64_t)32 << 20) /* a pack ends once this big */
int packs_open(mfs_store *s, bool writable);
void packs_close(mfs_store *s);
/* fdatasyncs every pack written since the last call: before each commit
 * of the main environment (a failure fails the commit). */
int packs_sync(mfs_store *s);
/* Bytes appended to packs since the last packs_sync, and a sync of them
 * that holds no lock while the disk writes (the commit thread runs it
 * before the commit, without wlock, so that the commit's own packs_sync,
 * which writers wait for, only has what came in meanwhile). */
uint64_t packs_unsynced_bytes(mfs_store *s);
void packs_presync(mfs_store *s);
/* A DB_CHUNKS value: is it a reference into a pack (else the bytes)? */
bool chunk_is_ref(const MDB_val *v);
size_t chunk_val_len(const MDB_val *v);
/* Copies a chunk's bytes (MFS_CHUNK_SIZE room); its length or -EIO. */
ssize_t chunk_val_copy(mfs_store *s, const MDB_val *v, void *out);
/* Copies at most max of a chunk's bytes from its byte skip on; how many
 * (fewer than asked where the chunk ends: its trailing zeros are not
 * stored) or -EIO. */
ssize_t chunk_val_read(mfs_store *s, const MDB_val *v, size_t skip, void *out,
                       size_t max);
/* Puts chunk hash: inline when small, else appended to the active pack. */
int chunk_val_put(wtx *w, const uint8_t *hash, const void *data, size_t len);
/* chunk_val_put of n chunks, none of them here yet and no two alike;
 * those for the pack files appended a run at a time (one system call per
 * run instead of one per chunk). */
int chunk_vals_put(wtx *w, size_t n, const uint8_t *const *hash,
                   const uint8_t *const *data, const size_t *len);
/* Accounts for a reference about to be deleted. */
int chunk_val_drop(wtx *w, const MDB_val *v);
/* Is v a reference into a pack being evacuated? Then chunk_val_move
 * copies the bytes to the active pack and fills the new reference. */
bool chunk_val_evacuating(mfs_store *s, const MDB_val *v);
int chunk_val_move(wtx *w, const MDB_val *v, uint8_t out[PACK_REF_LEN]);
/* After a sweep: drops empty packs' records and deletes their files,
 * picks mostly dead packs for evacuation (*sweep_again: the next sweep
 * moves their chunks). write runs each step (collect.c's timed write). */
int packs_tidy(mfs_store *s,
               int (*write)(mfs_store *, int (*)(wtx *, void *), void *,
                            uint64_t *),
               uint64_t *max_us, bool *sweep_again, uint64_t *freed);
/* Chunk bytes held, inline and in packs (DB_PACKS: pack id 0 counts the
 * inline ones): cheap, one record per pack. */
uint64_t packs_held(mfs_store *s, MDB_txn *txn);
/* Counts the inline chunks into pack record 0 (the format upgrade). */
int packs_count_inline(wtx *w);
/* Packs emptied whose files are not deleted yet (a pass retries). */
bool packs_doomed(mfs_store *s);
/* Pack files, their bytes, their live bytes, and the live bytes of the
 * chunks kept inline (pack record 0). */
void packs_stats(mfs_store *s, MDB_txn *txn, uint64_t *files, uint64_t *bytes,
                 uint64_t *live, uint64_t *inline_live);

/* replica.c: the vector in txn */
int store_vv_read(mfs_store *s, MDB_txn *txn, mfs_vv *out);
int store_vv_copy(mfs_vv *out, const mfs_vv *in);

/* names.c */
int name_check_n(const char *name, size_t n);

#endif
