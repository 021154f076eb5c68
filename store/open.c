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
    .deleted_shows = view_deleted_shows,
};

static const store_hooks hooks = {
    .format = format_new,
    .opened = opened,
    .closing = closing,
    .pre_commit = view_flush,
    .save = census_save,
    .committed = committed,
    .crdt = &crdt,
};

int mfs_store_open(mfs_store **out, const char *dir,
                   const mfs_store_config *cfg, unsigned flags)
{
    return store_open(out, dir, cfg, flags, &hooks);
}
