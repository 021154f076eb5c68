/*
 * internal.h - what the store's layers above the bottom one (kv.h) share
 * and nobody else may see: the op record and codec (op.c), the raw tree
 * (tree.c), inodes and content (content.c), the derived view (view.c),
 * collection (collect.c), the op log's floors (snapshot.c) and the counts
 * (inspect.c, view.c). Never include from outside store/, nor from a file
 * of the bottom layer (tests/store_layers.sh checks).
 */
#ifndef MFS_STORE_INTERNAL_H
#define MFS_STORE_INTERNAL_H

#include "kv.h"

/* ---- ops (op.c) ---- */
enum {
    OP_INODE = 1,   /* create an inode: type, rdev, symlink target, attrs */
    OP_MOVE = 2,    /* move (or create / delete) a directory entry */
    OP_ATTR = 3,    /* LWW attribute registers */
    OP_XATTR = 4,   /* LWW extended attribute */
    OP_VERSION = 5, /* content version (or DROP of a conflict copy) */
};
#define OPF_MORE 0x01 /* the same local action continues in the next op */
#define OPF_DROP 0x02 /* VERSION: drops its parents (conflict resolved) */
#define OPF_KNOWN 0x04 /* VERSION: names deletes its writer had applied */
/* VERSION: content-defined chunks (cdc.h): each chunk's extent is
 * recorded (ends); without it chunk i is the fixed block i */
#define OPF_EXTENTS 0x08
/* VERSION: carries kfloor, the largest hlc of an op its writer had folded;
 * its writer had applied every delete stamped at or below it, and known
 * then lists the exceptions (content_knows_delete) */
#define OPF_FLOOR 0x10
#define OP_MAX_KNOWN 64
/* A VERSION op names at most this many parents (op_decode rejects more).
 * A local version's parents are its writer's heads, read into arrays of
 * MFS_MAX_HEADS: every one it can write must decode. */
#define OP_MAX_PARENTS 64
/* The heads (complete, unsuperseded versions) of one inode that callers
 * read at once: the max they give content_heads and their arrays' size. */
#define MFS_MAX_HEADS 64
_Static_assert(MFS_MAX_HEADS <= OP_MAX_PARENTS,
               "a version may name every head as a parent");
#define OP_WIRE_VERSION 1

typedef struct mfs_op {
    uint8_t type, flags;
    uint64_t origin, seq;
    mfs_stamp st;
    mfs_id obj; /* inode (INODE/ATTR/XATTR/VERSION) or entry (MOVE) */
    /* MOVE */
    mfs_id inode, parent, from;
    /* MOVE, XATTR name; INODE symlink target */
    const char *name;
    size_t namelen;
    const uint8_t *seen; /* MOVE to trash: stamps of heads seen (16 each) */
    uint32_t nseen;
    /* INODE / ATTR */
    uint32_t mask, mode, uid, gid;
    uint64_t rdev;
    int64_t atime, mtime, ctime;
    /* XATTR */
    const uint8_t *value;
    size_t vlen;
    uint8_t present;
    /* VERSION */
    uint64_t size;
    const uint8_t *parents; /* 16 bytes each */
    uint32_t nparents;
    uint8_t *hashes; /* owned after decode: nchunks * 32 */
    uint32_t nchunks;
    /* OPF_EXTENTS: where each chunk ends, nchunks big-endian u64 (owned
     * after decode); see chunk_end */
    uint8_t *ends;
    /* VERSION: the stamps of the deleting moves of the file's other names
     * that its writer had applied and that did not show there (16 each):
     * the version does not bring them back (view.c resurrects) */
    const uint8_t *known;
    uint32_t nknown;
    /* VERSION with OPF_FLOOR: every delete with an hlc at or below kfloor
     * is known to the version, except those in known (which then lists
     * the known deletes above kfloor and the unknown ones at or below) */
    uint64_t kfloor;
} mfs_op;

/* Encodes op into w (w->err set if out of room). */
void op_encode(mfs_wbuf *w, const mfs_op *op);
/* Decodes and validates; op borrows from buf except hashes (owned). */
int op_decode(const uint8_t *buf, size_t len, mfs_op *op);
void op_clear(mfs_op *op);
/* The fixed header of an encoded op (schema.h OP_HDR_*), for readers that
 * need a field or two without decoding the op (the log, batches). */
typedef struct op_head {
    uint8_t version, type, flags;
    uint64_t origin, seq, hlc;
    mfs_id obj;
} op_head;
/* Fills the fields that buf's first len bytes hold whole (the others are
 * zero) and returns how many header bytes that was (OP_HDR_LEN for a
 * whole header). Validates nothing: a caller that needs a field checks
 * the length it got covers it (e.g. >= OP_HDR_OBJ for hlc). */
size_t op_head_decode(const void *buf, size_t len, op_head *out);

/* Stamps, records and applies a local op (assigns origin, seq, stamp). */
int op_local(wtx *w, mfs_op *op);
/* The first ops of a new mesh: root's owner and mode, and lost+found
 * (the store_hooks seed_mesh of open.c). Returns w's first error. */
int op_seed_mesh(wtx *w, const mfs_store_config *cfg);
/* Logs and applies a remote op; 1 if it was held already. With
 * defer_moves, MOVE ops are logged but left for tree_apply_moves. */
int op_apply_remote(wtx *w, const mfs_op *op, const uint8_t *raw, size_t len,
                    bool defer_moves);
/* Applies a decoded op (local or remote) to the state. */
int op_apply(wtx *w, const mfs_op *op);

/* ---- raw tree (tree.c) ---- */
typedef struct entry_rec {
    bool exists;
    mfs_id parent, inode;
    mfs_id from; /* the dir a move to the trash deleted it from */
    mfs_stamp st;
    char name[MFS_NAME_MAX + 1];
} entry_rec;
int entry_get(mfs_store *s, MDB_txn *txn, mfs_id e, entry_rec *out);
int tree_apply_move(wtx *w, const mfs_op *op);
/* Applies many moves with one undo/redo pass (sorts ops in place). */
int tree_apply_moves(wtx *w, const mfs_op **ops, size_t n);
/* True if anc is d or an ancestor of d in the raw tree. */
bool tree_is_ancestor(mfs_store *s, MDB_txn *txn, mfs_id anc, mfs_id d);
/* The seen-heads list and from-parent of the move that put e where it is. */
/* Forgets entry e for good: its record and every logged move of it (the
 * chain of states from its current move back to its creation). Only for
 * an entry whose delete is settled: no op still to come can name it or
 * need those moves undone (every op not held yet comes causally after
 * every settled one, so it has a larger stamp). */
int tree_forget_entry(wtx *w, mfs_id e);
/* May an undo still put an entry back into dir: does a logged move
 * stamped above hlc (one an op still to come may undo: every op not held
 * yet has a larger hlc than every settled one) take an entry out of it,
 * or are there too many such moves to look at? */
bool tree_left_since(mfs_store *s, MDB_txn *txn, mfs_id dir, uint64_t hlc);
/* The entries that name inode (its raw names, in the trash or not): up to
 * max of them in out; returns how many (max + 1 when there are more), or
 * -EIO. */
#define TREE_NAMES_MAX 64
int tree_names(mfs_store *s, MDB_txn *txn, mfs_id inode, mfs_id *out, int max);
/* Forgets the logged move st of entry e if it is not e's current one:
 * 1 forgotten, 0 not (current, or gone already), or w's error. */
int tree_forget_move(wtx *w, mfs_id e, mfs_stamp st);
/* Forgets the logged move st if it is the current move of a live entry
 * (not in the trash, not skipped) and its caller knows it is settled: no
 * move older than it can still arrive, so nothing will undo it. A move to
 * the trash stays (the view reads what it had seen) until the tombstone
 * goes; a superseded one goes by tree_forget_move. 1 if it went. */
int tree_forget_current(wtx *w, mfs_stamp st);
/* Whether a logged move (its DB_MOVES value) put its entry somewhere live:
 * not skipped, not into the trash. A first look for tree_forget_current. */
bool tree_move_live(const MDB_val *v);
int tree_last_move(mfs_store *s, MDB_txn *txn, mfs_stamp st, mfs_op *op,
                   MDB_val *raw);

/* ---- inodes and content (content.c) ---- */
typedef struct reg32 {
    uint32_t v;
    mfs_stamp st;
} reg32;
typedef struct regtime {
    int64_t v;
    mfs_stamp st;
} regtime;
typedef struct inode_rec {
    uint32_t type; /* S_IFMT bits; 0 = not created yet (attrs arrived first) */
    uint64_t rdev;
    reg32 mode, uid, gid;
    regtime atime, mtime, ctime;
    mfs_stamp shown; /* version shown (0,0 none) */
    uint64_t size, blocks;
    uint32_t nheads;
    char target[4097];
    size_t targetlen;
} inode_rec;
int inode_get(mfs_store *s, MDB_txn *txn, mfs_id id, inode_rec *out);
int inode_put(wtx *w, mfs_id id, const inode_rec *r);
/* A version record (schema.h VERSION_*) read in place: the pointers are
 * into the value it was decoded from. */
typedef struct version_view {
    uint8_t flags; /* OPF_DROP, OPF_EXTENTS, and OPF_KNOWN when it names deletes */
    uint64_t size;
    int64_t mtime, ctime;
    uint32_t nparents;
    const uint8_t *parents;
    uint32_t nchunks;
    const uint8_t *hashes; /* into the LMDB value */
    const uint8_t *ends;   /* OPF_EXTENTS, else NULL: into the LMDB value */
    uint32_t nknown;       /* deletes its writer had applied (OPF_KNOWN) */
    const uint8_t *known;
    uint64_t kfloor; /* OPF_FLOOR: known is relative to it (mfs_op) */
} version_view;
/* The one codec of DB_VERSIONS values. version_decode: 0, or -EIO for a
 * record that is short, has bytes left over, or counts more parents,
 * chunks or known deletes than an op may (MFS_MAX_SEEN, MFS_MAX_CHUNKS,
 * OP_MAX_KNOWN). version_encode writes the record of version op into wb
 * (wb->err set when out of room). */
int version_decode(const void *p, size_t len, version_view *out);
void version_encode(mfs_wbuf *wb, const mfs_op *op);

/* Where chunk i of a version of size bytes ends: its recorded end when it
 * has extents (ends: OPF_EXTENTS), else the end of fixed block i. */
static inline uint64_t chunk_end(const uint8_t *ends, uint64_t size,
                                 uint32_t i)
{
    if (ends)
        return mfs_be64_get(ends + (size_t)i * U64_LEN);
    uint64_t e = ((uint64_t)i + 1) * MFS_CHUNK_SIZE;
    return e < size ? e : size;
}
static inline uint64_t chunk_start(const uint8_t *ends, uint64_t size,
                                   uint32_t i)
{
    return i ? chunk_end(ends, size, i - 1) : 0;
}
/* The chunk of n that holds byte off (n when off is past the last one):
 * a division for fixed blocks, a binary search of the ends otherwise, so
 * a read never scans a version's chunk list. */
uint32_t chunk_at(const uint8_t *ends, uint32_t n, uint64_t off);
/* Are v's extents (if any) what op_decode accepts: each chunk at least a
 * byte, one of data at most MFS_CHUNK_SIZE? For records that came from
 * elsewhere (a snapshot); version_decode checks only the total. */
bool extents_valid(const version_view *v);
int content_apply_version(wtx *w, const mfs_op *op);
/* Recomputes heads/shown version of inode id after versions changed. */
int content_refresh(wtx *w, mfs_id id);
/* Heads (complete, not superseded, not dropped) sorted by stamp ascending;
 * returns the count (<= max) or -errno. */
int content_heads(mfs_store *s, MDB_txn *txn, mfs_id id, mfs_stamp *out,
                  int max);
int content_publish(wtx *w, mfs_id id, bool force);
int content_drop_dirty(wtx *w, mfs_id id);
/* replica.c: mfs_store_apply of the intent log's ops at open (open.c): an
 * own version applied also drops its file's unpublished state, which it
 * was published from. */
int store_apply_replay(mfs_store *s, const uint8_t *ops, size_t len);
/* replica.c: the trash's floor (collect.c): items queued at or before it
 * go on every member whatever the retention. store_trash_floor reads the
 * largest any member set (0: none); store_trash_floor_raise sets this
 * node's, as a local op that replicates. */
int store_trash_floor(mfs_store *s, uint64_t *ms);
int store_trash_floor_raise(mfs_store *s, uint64_t ms);
ssize_t content_read(mfs_store *s, MDB_txn *txn, mfs_id id, mfs_stamp ver,
                     bool use_dirty, uint64_t off, void *buf, size_t len);
/* Writes buf at off as unpublished data. whole (may be NULL) holds the
 * hashes content_hash_whole gave for this same write. */
int content_write(wtx *w, mfs_id id, uint64_t off, const void *buf, size_t len,
                  const uint8_t *whole);
/* The names of the whole, aligned blocks inside [off, off + len): an array
 * indexed by block - off / MFS_CHUNK_SIZE (zeros for an all-zero block and
 * for the partial ends), for content_write. Takes no lock (hashing is most
 * of a large write's cost). NULL when the write holds no whole block or
 * memory is short (content_write then stores bytes). Caller frees. */
uint8_t *content_hash_whole(mfs_store *s, uint64_t off, const void *buf,
                            size_t len);
/* A write cut into content-defined chunks before the writer lock is
 * taken (content.c "streams"): content_stream_plan gives one for a write
 * that continues a file written in order from byte 0 (NULL for any other
 * write: it goes the ordinary way); under the lock content_write_stream
 * records it, or returns 1 when the file is no longer as the stream left
 * it (the caller then writes the ordinary way); content_stream_done (ok:
 * the call committed) updates the stream and frees the plan.
 * content_stream_end ends ino's stream: any other change of its content
 * (under the lock, before the change). */
typedef struct stream_plan stream_plan;
stream_plan *content_stream_plan(mfs_store *s, uint64_t ino, uint64_t off,
                                 const void *data, size_t len);
int content_write_stream(wtx *w, mfs_id id, stream_plan *p);
void content_stream_done(mfs_store *s, stream_plan *p, bool ok);
void content_stream_end(mfs_store *s, uint64_t ino);
/* The helper thread content_hash_whole splits large writes with (set up
 * at a writable open, started at its first use, stopped at close). */
int content_hasher_init(mfs_store *s);
void content_hasher_free(mfs_store *s);
int content_truncate(wtx *w, mfs_id id, uint64_t size, int64_t now);
typedef struct dinfo_rec {
    uint64_t size;
    int64_t mtime, ctime;
    uint64_t since_ms;
    mfs_stamp base;
    uint64_t trunc; /* blocks at or past this offset no longer come from base */
} dinfo_rec;
int dinfo_get(mfs_store *s, MDB_txn *txn, mfs_id id, dinfo_rec *out);
int dinfo_put(wtx *w, mfs_id id, const dinfo_rec *d);
/* Copies up to max chunk hashes of a version; *nchunks gets the count. */
/* The size of version (id, st); 0 when there is no such record. */
uint64_t content_version_size(mfs_store *s, MDB_txn *txn, mfs_id id,
                              mfs_stamp st);
int content_version_chunks(mfs_store *s, MDB_txn *txn, mfs_id id, mfs_stamp ver,
                           uint8_t *out, size_t max, uint32_t *nchunks);
/* Version (id, ver)'s content as a VERSION op to write again elsewhere:
 * size, chunks and their extents (owned: op_clear); the caller sets the
 * object, times and parents. -ENOENT when there is no such record. */
int content_version_copy(mfs_store *s, MDB_txn *txn, mfs_id id,
                         mfs_stamp ver, mfs_op *op);
/* Chunks of version (id, st) that are not here (1 if the record is gone);
 * inspect.c. */
uint64_t version_absent(mfs_store *s, MDB_txn *txn, mfs_id id, mfs_stamp st);
/* Is ver among the versions a deleting move had seen (seen: nseen stamps,
 * 16 bytes each), or an ancestor of one of them? A delete that saw a
 * version saw the edits it descends from. */
bool content_seen(mfs_store *s, MDB_txn *txn, mfs_id id, const uint8_t *seen,
                  uint32_t nseen, mfs_stamp ver);
/* Does version ver of id know the delete whose move is stamped del (its
 * writer had applied it, and the name did not show there): listed in
 * known (OPF_KNOWN), or, with OPF_FLOOR, at or below kfloor and not
 * listed? Read from ver's own record only, which every node holds alike
 * while ver is a head. */
bool content_knows_delete(mfs_store *s, MDB_txn *txn, mfs_id id,
                          mfs_stamp ver, mfs_stamp del);
/* Sets what a new version op of live file id (not one published from
 * unpublished writes: content_publish does that) knows of the deletes of
 * the file's names: op->known (into known), nknown, kfloor and the flags
 * OPF_KNOWN and OPF_FLOOR, as content_publish does. */
void content_name_deletes(wtx *w, mfs_id id, mfs_op *op,
                          uint8_t known[OP_MAX_KNOWN * STAMP_LEN]);
/* Up to max parents of a version; *n gets the count. */
int content_version_parents(mfs_store *s, MDB_txn *txn, mfs_id id,
                            mfs_stamp ver, mfs_stamp *out, uint32_t max,
                            uint32_t *n);
/* Blake2b of a whole version's chunk list (for dumps). */
int content_version_hash(mfs_store *s, MDB_txn *txn, mfs_id id, mfs_stamp ver,
                         uint8_t out[32], uint64_t *size);

/* ---- derived view (view.c) ---- */
typedef struct dirent_rec {
    uint8_t kind; /* OBJ_INODE or OBJ_CCOPY */
    uint64_t ino;
    uint32_t type;
    mfs_id entry, inode;
    mfs_stamp ver; /* OBJ_CCOPY */
} dirent_rec;
int view_lookup(mfs_store *s, MDB_txn *txn, mfs_id dir, const char *name,
                dirent_rec *out);
int view_dirent_decode(const MDB_val *v, dirent_rec *out);
/* Runs at the end of every write transaction. */
int view_flush(wtx *w);
/* What view_flush must refresh, recorded in w by the layers below the
 * view as they change an entry or an inode (data only: no call into
 * view.c). */
static inline void view_touch_entry(wtx *w, mfs_id e)
{
    idset_add(&w->touched_entries, e);
}
static inline void view_touch_inode(wtx *w, mfs_id i)
{
    idset_add(&w->touched_inodes, i);
}
uint32_t view_nlink(mfs_store *s, MDB_txn *txn, mfs_id inode, uint32_t type);
/* "/a/b" path of a visible directory. */
int view_path(mfs_store *s, MDB_txn *txn, mfs_id dir, char *out, size_t cap);
/* First visible entry of inode (primary) with its dir and display name;
 * -ENOENT if none. */
int view_primary(mfs_store *s, MDB_txn *txn, mfs_id inode, mfs_id *entry,
                 mfs_id *dir, char *dname);
bool view_dir_empty(mfs_store *s, MDB_txn *txn, mfs_id dir);
/* Does the deleted (in the trash) non-directory entry er show again? It
 * does when its inode has a head that the deleting move had not seen (nor
 * an ancestor of one it saw: a node whose newer version is still arriving
 * shows the older one meanwhile) and whose writer had not applied that
 * delete (an edit concurrent with it). *from (may be NULL) gets the
 * directory it was deleted from. */
bool view_resurrects(mfs_store *s, MDB_txn *txn, const entry_rec *er,
                     mfs_id *from);

/* What the CRDT layer tells or asks the layers above it as it applies
 * ops, through s->hooks->crdt (registered by open.c), so that it calls
 * nothing above itself (tests/store_layers.sh). */
typedef struct crdt_hooks {
    /* The record of inode learned its type (its attributes came before
     * it): the census counts it if it has a visible name (view.c). */
    void (*inode_typed)(wtx *w, mfs_id inode);
    /* The shown version of inode (of type) went from size from to to
     * (view.c: the census's bytes of visible files). */
    void (*inode_resized)(wtx *w, mfs_id inode, uint32_t type, uint64_t from,
                          uint64_t to);
    /* A write named chunks (a version record, a whole-block reference):
     * a mark that may be running keeps them (collect.c; wlock held). */
    void (*chunks_named)(mfs_store *s, const uint8_t *hashes, size_t n);
    /* Unpublished chunks may have lost their only name (a truncate into
     * a stream's chunks): the next collection pass sweeps (collect.c). */
    void (*chunks_dropped)(mfs_store *s);
    /* Does the deleted entry er show again (view.c's rule,
     * view_resurrects)? */
    bool (*deleted_shows)(mfs_store *s, MDB_txn *txn, const entry_rec *er);
} crdt_hooks;

/* The hooks' view.c side. */
void census_typed(wtx *w, mfs_id inode);
bool view_deleted_shows(mfs_store *s, MDB_txn *txn, const entry_rec *er);

/* ---- collection queue (gcq.c) and collection (collect.c) ---- */
int collect_init(mfs_store *s);
void collect_free(mfs_store *s); /* stops the thread first */
/* Chunks may have lost their last name other than through a version
 * (unpublished writes dropped): the next pass sweeps. */
void collect_sweep_soon(mfs_store *s);
/* Queues (inode, ver) — ver zero: the inode itself, deleted — as garbage
 * once the op stamped cause is settled and the retention has passed. */
void gc_queue(wtx *w, mfs_id inode, mfs_stamp ver, mfs_stamp cause);
/* The versions open files pin now: up to cap into inode/ver; returns how
 * many there are. */
size_t gc_pins_list(mfs_store *s, mfs_id *inode, mfs_stamp *ver, size_t cap);
/* Queues the logged move old of entry, no longer current since the move
 * cause: once cause is settled no undo reaches it (tree_forget_move). */
void gc_queue_move(wtx *w, mfs_id entry, mfs_stamp old, mfs_stamp cause);
/* A write that names chunks (a version record, a whole-block reference)
 * tells the mark that may be running (caller holds wlock). */
void gc_note(mfs_store *s, const uint8_t *hashes, size_t n);
void gc_wake(mfs_store *s);
/* A read txn on the last commit and a cursor on its op log; the caller
 * closes the cursor and ends the txn (store_read_end). */
int store_ops_cursor(mfs_store *s, MDB_txn **txn, MDB_cursor **c);
/* The seq of the op stamped st in the log (a cursor on DB_OPS). */
int op_seq_of_stamp(mfs_store *s, MDB_cursor *c, mfs_stamp st, uint64_t *seq);
/* store_hooks.held (inspect.c): per origin, the least hlc of its versions
 * that wait for a chunk, as of txn. */
int store_held(mfs_store *s, MDB_txn *txn, mfs_vv *out);
/* The hlc of op (origin, seq) of the log on cursor c, 0 if it is not there. */
uint64_t op_hlc_at(mfs_store *s, MDB_cursor *c, uint64_t origin, uint64_t seq);

/* ---- op log floors (snapshot.c) ---- */
/* The floor of origin's log: ops up to *seq were folded (*hlc: the last
 * one's); zeros when none was. */
int oplog_floor(mfs_store *s, MDB_txn *txn, uint64_t origin, uint64_t *seq,
                uint64_t *hlc);
/* Calls fn for each floor record (origin, seq, hlc) in txn (op.c); stops
 * at fn's first nonzero return, which it returns (or an errno). */
int oplog_floors_each(mfs_store *s, MDB_txn *txn,
                      int (*fn)(void *arg, uint64_t origin, uint64_t seq,
                                uint64_t hlc),
                      void *arg);
/* The largest hlc of an op folded, of any origin (0: none, or it cannot
 * be read). Every op stamped at or below it has been applied here: it was
 * settled when folded, so an op not held yet was made by a node that held
 * it, and has a larger hlc (docs/ARCHITECTURE.md "Collection"). */
uint64_t oplog_floor_top(mfs_store *s, MDB_txn *txn); /* op.c */
/* Every floor as a vector (caller frees). */
int oplog_floors(mfs_store *s, MDB_txn *txn, mfs_vv *out);
/* -ESTALE when have lacks an op below a floor (it needs a snapshot). */
int oplog_check_have(mfs_store *s, MDB_txn *txn, const mfs_vv *have);
/* Folds settled ops, FOLD_STEP per call, from origin settled->e[next]. */
typedef struct fold_step {
    const mfs_vv *settled;
    size_t next;
    bool done;
    uint64_t folded;
} fold_step;
int oplog_fold_tx(wtx *w, void *arg);

/* view.c: visible files (each inode once, through its visible names)
 * and their logical bytes, counted into out by a scan (census_recount,
 * inspect.c's stats). */
void store_count_files(mfs_store *s, MDB_txn *txn, mfs_store_stats *out);
/* The census (view.c). census_inode: the inode's record counts (sign +1)
 * or stops counting (-1) as a visible inode. census_resize: a visible
 * file's size changes. census_recount: counted again by scan (after a
 * rebuild, a snapshot install or an upgrade). census_get: the census of
 * txn's moment; -ENOENT in a store of format 4 or older. */
void census_inode(wtx *w, mfs_id inode, int sign);
void census_resize(wtx *w, mfs_id inode, uint32_t type, uint64_t from,
                   uint64_t to);
int census_recount(wtx *w);
int census_get(mfs_store *s, MDB_txn *txn, struct census *out);
int census_put(wtx *w);
/* The store_hooks save of open.c: puts the census when this txn changed
 * it (counts it again first when w->recount). */
void census_save(wtx *w);
/* At open (the opened hook): reads the census into s, or, in a writable
 * store that has none (format 4 or older), counts it in a write txn.
 * 0 or a negative errno. */
int census_load(mfs_store *s);

#endif
