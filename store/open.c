/*
 * open.c - the top of the store's layers: mfs_store_open wires them.
 *
 * txn.c (LMDB, transactions) sits below the ops (op.c, tree.c, content.c)
 * and the derived view (view.c). What it must run of theirs at its fixed
 * points comes through the hooks registered here, so that no call goes from
 * txn.c up. Must hold nothing but this wiring.
 */
#include "internal.h"

static const store_hooks hooks = {
    .pre_commit = view_flush,
    .seed_mesh = op_seed_mesh,
};

int mfs_store_open(mfs_store **out, const char *dir,
                   const mfs_store_config *cfg, unsigned flags)
{
    return store_open(out, dir, cfg, flags, &hooks);
}
