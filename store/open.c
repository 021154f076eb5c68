/*
 * open.c - the top of the store's layers: mfs_store_open wires them.
 *
 * The bottom layer (kv.h: txn.c, vv.c, dirty.c, pack.c) sits below the
 * CRDT (op.c, tree.c, content.c), the derived view (view.c) and the API
 * with collection (local.c, replica.c, snapshot.c, inspect.c, collect.c,
 * recover.c); docs/ARCHITECTURE.md "Layers". What the upper layers must
 * do at txn.c's fixed points comes through the hooks defined here, so
 * that no call goes from the bottom layer up. Must hold nothing but this
 * wiring and the records a new store begins with above txn.c's own.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A new store: the census (all zero: nothing shows yet), the root's inode
 * record with zero stamps so that any op overrides it, and for a new mesh
 * root's owner and mode and lost+found as ops that every joining replica
 * receives (op.c). */
static int format_new(wtx *w, const mfs_store_config *cfg)
{
    census_put(w);
    inode_rec root = {.type = 0040000};
    root.mode.v = cfg->root_mode & 07777;
    root.uid.v = cfg->root_uid;
    root.gid.v = cfg->root_gid;
    inode_put(w, MFS_ID_ROOT, &root);
    if (w->err || !cfg->new_mesh)
        return w->err;
    return op_seed_mesh(w, cfg);
}

static int opened(mfs_store *s)
{
    int rc = census_load(s);
    if (!rc && !s->rdonly)
        rc = collect_init(s);
    if (!rc && !s->rdonly)
        rc = content_hasher_init(s);
    return rc;
}

/* (both take what was never set up: a failed open closes too) */
static void closing(mfs_store *s)
{
    collect_free(s);
    content_hasher_free(s);
}

static void committed(wtx *w)
{
    if (w->gc_queued)
        gc_wake(w->s);
}

static const crdt_hooks crdt = {
    .inode_typed = census_typed,
    .inode_resized = census_resize,
    .chunks_named = gc_note,
    .chunks_dropped = collect_sweep_soon,
    .deleted_shows = view_deleted_shows,
};

static int replay_again(mfs_store *s);

static const store_hooks hooks = {
    .format = format_new,
    .opened = opened,
    .closing = closing,
    .pre_commit = view_flush,
    .save = census_save,
    .committed = committed,
    .held = store_held,
    .replay = replay_again,
    .crdt = &crdt,
};

/* One piece of an intent log record (wal_each): a chunk, or the ops. */
static int replay_one(const uint8_t *hash, const uint8_t *data, size_t n,
                      const uint8_t *ops, size_t opslen, void *arg)
{
    mfs_store *s = arg;
    if (hash) {
        int rc = mfs_store_chunk_put(s, hash, data, n);
        if (rc == -EBADMSG) { /* (never: the record's CRC held) */
            mfs_log(LOG_ERR,
                    "store %s: a chunk in the intent log does not match its "
                    "hash; skipped (the file that names it lacks it)",
                    s->dir);
            rc = 0;
        }
        return rc;
    }
    return store_apply_replay(s, ops, opslen);
}

/* store_hooks replay: after a failed group commit (txn.c gc_replay), the
 * log's records applied again, as at open (a duplicate changes nothing).
 * The log stays as it is: its records are what fsync promised until a
 * sync of LMDB covers them. */
static int replay_again(mfs_store *s)
{
    uint8_t *recs;
    size_t len;
    int rc = wal_reread(s, &recs, &len);
    if (!rc && len)
        rc = wal_each(recs, len, replay_one, s);
    free(recs);
    return rc;
}

/* The intent log's records (wal.c) that a crash left: what fsync promised
 * since LMDB's last durable state. Their chunks are put and their ops
 * applied as a peer's would be (a duplicate changes nothing), then all is
 * synced and the log cleared; fsync may append from then on. */
static int replay_log(mfs_store *s)
{
    int rc = 0;
    if (s->wal_nrecs) {
        mfs_log(LOG_NOTICE,
                "store %s: replaying %zu bytes of the intent log (changes "
                "fsync made durable before a crash)",
                s->dir, s->wal_nrecs);
        rc = wal_each(s->wal_recs, s->wal_nrecs, replay_one, s);
        if (!rc)
            rc = mfs_store_commit(s, 1);
        if (!rc)
            rc = wal_reset_file(s);
        if (rc)
            mfs_log(LOG_ERR,
                    "store %s: cannot replay the intent log: %s; the store "
                    "is not opened, and the log is kept for the next try",
                    s->dir, strerror(-rc));
    }
    if (!rc)
        wal_start(s);
    return rc;
}

int mfs_store_open(mfs_store **out, const char *dir,
                   const mfs_store_config *cfg, unsigned flags)
{
    int rc = store_open(out, dir, cfg, flags, &hooks);
    if (rc || (*out)->rdonly)
        return rc;
    rc = replay_log(*out);
    if (rc) {
        mfs_store_close(*out);
        *out = NULL;
    }
    return rc;
}
