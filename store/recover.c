/*
 * recover.c - a rejoining node keeps what only it had (issue 10): the
 * changes an old store's node made that the mesh never received become
 * plain files in the new store, under one directory (the daemon uses
 * /lost+found/<node>-<date>/), as new local changes that replicate like
 * any other. Nothing is taken out of the old store; it stays as it was.
 *
 * "What only it had" is read from the old store's op log: the ops of its
 * own node after the sequence the mesh holds (the new store's vector for
 * that node once it has caught up). Those ops are never folded in the old
 * store (folding needs every member to hold them), so the log has them.
 * Every inode they touched that still has a name is copied with its path;
 * so is every file with writes that were never published. Deletes and
 * renames of files the mesh holds cannot become files: they are counted.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define COPY_BUF (1u << 20)
#define XATTR_LIST_MAX_BYTES 65536
#define XATTR_VALUE_MAX_BYTES 65536

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct inoset {
    uint64_t *v;
    size_t n, cap;
} inoset;

static int inoset_add(inoset *set, uint64_t ino)
{
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 256;
        uint64_t *v = realloc(set->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        set->v = v;
        set->cap = cap;
    }
    set->v[set->n++] = ino;
    return 0;
}

static bool inoset_has(const inoset *set, uint64_t ino)
{
    return set->n &&
           bsearch(&ino, set->v, set->n, sizeof(*set->v), u64_cmp) != NULL;
}

/* The local inos of the inodes that origin's ops after seq held touched
 * (those with an ino: objects gone for good have none), sorted. */
static int changed_inos(mfs_store *s, uint64_t origin, uint64_t held,
                        inoset *out, uint64_t *nops)
{
    MDB_txn *txn;
    MDB_cursor *c;
    int rc = store_ops_cursor(s, &txn, &c);
    if (rc)
        return rc;
    uint8_t k[OPS_KEY_LEN];
    ops_key_put(k, origin, held + 1);
    MDB_val key = {sizeof k, k}, val;
    int r = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (r == 0 && key.mv_size == OPS_KEY_LEN &&
           mfs_be64_get(key.mv_data) == origin) {
        mfs_op op;
        if (op_decode(val.mv_data, val.mv_size, &op) == 0) {
            mfs_id id = op.type == OP_MOVE ? op.inode : op.obj;
            op_clear(&op);
            objkey ok = obj_inode(id);
            uint64_t ino;
            if (ino_of_obj(s, txn, &ok, &ino) == 0 &&
                (rc = inoset_add(out, ino)) < 0)
                break;
            (*nops)++;
        }
        r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    store_read_end(s, txn);
    if (rc)
        return rc;
    if (r && r != MDB_NOTFOUND)
        return mdb_to_errno(r);
    if (out->n)
        qsort(out->v, out->n, sizeof(*out->v), u64_cmp);
    return 0;
}

/* ---- the walk of the old tree ------------------------------------------ */

typedef struct rwalk {
    mfs_store *src, *dst;
    const int *stop; /* set by another thread: give up (-ECANCELED) */
    uint64_t base; /* dst directory everything goes under */
    const inoset *changed;
    mfs_recover_stats *st;
    uint8_t *buf;
    char path[4096]; /* of the dir being listed, relative, "" for root */
    int err;
} rwalk;

/* The dst directory for the src path prefix path[0, len): made on
 * demand, each component with the mode of the src directory it copies
 * (src_dirs[i] is the src ino of component i). */
static int dst_dir(rwalk *w, const uint64_t *src_dirs, int depth,
                   uint64_t *out)
{
    uint64_t d = w->base;
    const char *p = w->path;
    for (int i = 0; i < depth; i++) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        char name[MFS_NAME_MAX + 1];
        memcpy(name, p, len);
        name[len] = 0;
        p += len + (slash ? 1 : 0);
        mfs_attr a;
        int r = mfs_store_lookup(w->dst, d, name, &a);
        if (r == -ENOENT) {
            mfs_attr sa;
            if ((r = mfs_store_getattr(w->src, src_dirs[i], &sa)) < 0)
                return r;
            r = mfs_store_mkdir(w->dst, d, name, sa.mode & 07777, sa.uid,
                                sa.gid, &a);
            if (r == 0)
                w->st->dirs++;
        }
        if (r < 0)
            return r;
        if (!S_ISDIR(a.mode))
            return -ENOTDIR;
        d = a.ino;
    }
    *out = d;
    return 0;
}

static int copy_xattrs(rwalk *w, uint64_t from, uint64_t to)
{
    char *list = malloc(XATTR_LIST_MAX_BYTES);
    void *val = malloc(XATTR_VALUE_MAX_BYTES);
    int rc = list && val ? 0 : -ENOMEM;
    ssize_t n = rc ? 0 : mfs_store_listxattr(w->src, from, list,
                                             XATTR_LIST_MAX_BYTES);
    if (n < 0)
        rc = (int)n;
    for (ssize_t i = 0; !rc && i < n; i += (ssize_t)strlen(list + i) + 1) {
        ssize_t v = mfs_store_getxattr(w->src, from, list + i, val,
                                       XATTR_VALUE_MAX_BYTES);
        if (v >= 0)
            rc = mfs_store_setxattr(w->dst, to, list + i, val, (size_t)v, 0);
        else if (v != -ENODATA)
            rc = (int)v;
    }
    free(list);
    free(val);
    return rc;
}

/* Copies src file ino (attributes a) as name in dst directory dir. */
static int copy_one(rwalk *w, uint64_t dir, const char *name,
                    const mfs_attr *a)
{
    mfs_attr o;
    int r;
    uint32_t type = a->mode & S_IFMT;
    if (type != S_IFDIR && mfs_store_lookup(w->dst, dir, name, &o) == 0) {
        /* an earlier attempt got this far: a whole copy stays, a partial
         * one (cut short by an unmount) is made again */
        if ((o.mode & S_IFMT) == type &&
            (type != S_IFREG || o.size == a->size)) {
            w->st->already++;
            return 0;
        }
        if ((r = mfs_store_unlink(w->dst, dir, name)) < 0)
            return r;
    }
    if (type == S_IFDIR) {
        r = mfs_store_mkdir(w->dst, dir, name, a->mode & 07777, a->uid, a->gid,
                            &o);
        if (r == -EEXIST)
            return 0; /* made already as the parent of something */
        if (r == 0)
            w->st->dirs++;
    } else if (type == S_IFLNK) {
        char target[4097];
        r = mfs_store_readlink(w->src, a->ino, target, sizeof target - 1);
        if (r < 0)
            return r;
        target[r] = 0;
        r = mfs_store_symlink(w->dst, dir, name, target, a->uid, a->gid, &o);
        if (r == 0)
            w->st->symlinks++;
    } else {
        r = mfs_store_mknod(w->dst, dir, name, a->mode, a->rdev, a->uid,
                            a->gid, &o);
        uint64_t off = 0;
        while (r == 0 && type == S_IFREG && off < a->size) {
            ssize_t n = mfs_store_read(w->src, a->ino, off, w->buf, COPY_BUF);
            if (n <= 0) {
                r = n < 0 ? (int)n : -EIO;
                break;
            }
            ssize_t m = mfs_store_write(w->dst, o.ino, off, w->buf, (size_t)n);
            if (m < 0)
                r = (int)m;
            off += (uint64_t)n;
        }
        if (r == 0 && type == S_IFREG)
            r = mfs_store_publish(w->dst, o.ino);
        if (r == 0) {
            w->st->files++;
            w->st->bytes += off;
        }
    }
    if (r == 0)
        r = copy_xattrs(w, a->ino, o.ino);
    if (r == 0 && type != S_IFLNK) {
        mfs_setattr sa = {.mask = MFS_SET_ATIME | MFS_SET_MTIME,
                          .atime_ns = a->atime_ns,
                          .mtime_ns = a->mtime_ns};
        r = mfs_store_setattr(w->dst, o.ino, &sa, &o);
    }
    return r;
}

/* Subdirectories a listing collects before it descends into them. */
#define RECOVER_BATCH 64
typedef struct rdir {
    rwalk *w;
    uint64_t dirs[256]; /* src inos of the path's components */
    int depth;
    char last[MFS_NAME_MAX + 1];
    uint64_t sub[RECOVER_BATCH]; /* subdirectories to descend into */
    char subname[RECOVER_BATCH][MFS_NAME_MAX + 1];
    int nsub;
} rdir;

static int walk_dir(rwalk *w, uint64_t dir, rdir *parent);

static int walk_entry(void *arg, const char *name, uint64_t ino, uint32_t mode)
{
    rdir *d = arg;
    rwalk *w = d->w;
    if (w->stop && __atomic_load_n(w->stop, __ATOMIC_RELAXED)) {
        w->err = -ECANCELED;
        return 1;
    }
    if (S_ISDIR(mode) && d->nsub == RECOVER_BATCH)
        return 1; /* descend into these first, then list on */
    snprintf(d->last, sizeof d->last, "%s", name);
    bool want = inoset_has(w->changed, ino);
    if (!want && S_ISREG(mode)) {
        mfs_file_info fi;
        want = mfs_store_file_info(w->src, ino, &fi, NULL, 0) == 0 && fi.dirty;
    }
    if (want) {
        mfs_attr a;
        uint64_t to = 0;
        int r = mfs_store_getattr(w->src, ino, &a);
        /* dirs[0] is the root; the path's components are dirs[1..] */
        if (r == 0)
            r = dst_dir(w, d->dirs + 1, d->depth - 1, &to);
        if (r == 0)
            r = copy_one(w, to, name, &a);
        if (r == -EIO && to) {
            /* content the old store never got whole (chunks it was still
             * waiting for): counted, and no partial copy is left */
            mfs_store_unlink(w->dst, to, name);
            w->st->unreadable++;
            r = 0;
        }
        if (r < 0) {
            w->err = r;
            return 1;
        }
    }
    if (S_ISDIR(mode)) {
        d->sub[d->nsub] = ino;
        snprintf(d->subname[d->nsub], sizeof d->subname[0], "%s", name);
        d->nsub++;
    }
    return 0;
}

static int walk_dir(rwalk *w, uint64_t dir, rdir *parent)
{
    rdir *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->w = w;
    if (parent) {
        memcpy(d->dirs, parent->dirs, sizeof d->dirs);
        d->depth = parent->depth;
    }
    if (d->depth >= 256) {
        free(d);
        return -ELOOP;
    }
    d->dirs[d->depth++] = dir;
    size_t plen = strlen(w->path);
    int rc = 0;
    const char *after = NULL;
    for (;;) {
        d->nsub = 0;
        char before[MFS_NAME_MAX + 1];
        snprintf(before, sizeof before, "%s", d->last);
        rc = mfs_store_readdir(w->src, dir, after, walk_entry, d);
        if (rc == 0 && w->err)
            rc = w->err;
        for (int i = 0; rc == 0 && i < d->nsub; i++) {
            size_t nlen = strlen(d->subname[i]);
            if (plen + 1 + nlen + 1 > sizeof w->path) {
                rc = -ENAMETOOLONG;
                break;
            }
            if (plen)
                w->path[plen] = '/';
            memcpy(w->path + plen + (plen ? 1 : 0), d->subname[i], nlen + 1);
            rc = walk_dir(w, d->sub[i], d);
            w->path[plen] = 0;
        }
        /* readdir stopped early (RECOVER_BATCH subdirectories) when d->nsub
         * is full and it did not list everything: go on after the last one */
        if (rc || d->nsub < RECOVER_BATCH || !strcmp(before, d->last))
            break;
        after = d->last;
    }
    free(d);
    return rc;
}

int mfs_store_recover(mfs_store *dst, uint64_t dir, mfs_store *src,
                      uint64_t held, const int *stop, mfs_recover_stats *st)
{
    memset(st, 0, sizeof(*st));
    inoset changed = {0};
    int rc = changed_inos(src, mfs_store_node_id(src), held, &changed,
                          &st->ops);
    rwalk *w = rc ? NULL : calloc(1, sizeof(*w));
    if (!rc && !w)
        rc = -ENOMEM;
    if (!rc) {
        w->src = src;
        w->dst = dst;
        w->base = dir;
        w->changed = &changed;
        w->stop = stop;
        w->st = st;
        w->buf = malloc(COPY_BUF);
        rc = w->buf ? walk_dir(w, MFS_ROOT_INO, NULL) : -ENOMEM;
        free(w->buf);
    }
    free(w);
    free(changed.v);
    return rc;
}
