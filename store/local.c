/*
 * local.c - the store API for fs/: POSIX-style calls on local inode numbers,
 * each turned into ops (create = inode + move in, unlink = move to trash,
 * rename = moves, attributes = LWW registers) written in the same LMDB
 * transaction as their effect.
 *
 * It checks what a local filesystem checks about names and types and returns
 * the same errno; it does no permission checks (fs/ does). It must never
 * emit an op for a change it then refuses: all checks come before the ops.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

/* A write or a publish of up to this many bytes changes few enough records
 * to run as a small call (store_write_small). */
#define SMALL_CALL_BYTES ((uint64_t)1 << 20)

static int store_write_of(mfs_store *s, uint64_t bytes,
                          int (*fn)(wtx *w, void *arg), void *arg)
{
    return bytes <= SMALL_CALL_BYTES ? store_write_small(s, fn, arg)
                                     : store_write(s, fn, arg);
}

typedef struct lop {
    /* inputs */
    uint64_t ino, parent, newparent;
    const char *name, *newname, *target;
    uint32_t mode, uid, gid;
    uint64_t rdev;
    unsigned flags;
    const mfs_setattr *sa;
    const void *buf;
    size_t len;
    uint64_t off;
    const uint8_t *whole; /* content_hash_whole of buf, or NULL */
    stream_plan *plan;    /* content_stream_plan of the write, or NULL */
    /* outputs */
    mfs_attr *out;
    ssize_t ret;
} lop;

static int64_t now_ns(mfs_store *s)
{
    return mfs_store_now_ns(s);
}

/* ---- reading ---- */

static int resolve(mfs_store *s, MDB_txn *txn, uint64_t ino, objkey *k,
                   mfs_id *id)
{
    int rc = ino_lookup_obj(s, txn, ino, k);
    if (rc)
        return rc == -ENOENT ? -ENOENT : rc;
    *id = objkey_id(k);
    return 0;
}

/* The attributes of object k (inode id) known locally as ino. */
static int attr_fill_obj(mfs_store *s, MDB_txn *txn, uint64_t ino,
                         const objkey *kp, mfs_id id, mfs_attr *out)
{
    const objkey k = *kp;
    inode_rec in;
    int rc = inode_get(s, txn, id, &in);
    if (rc)
        return rc;
    if (in.type == 0)
        return -ENOENT;
    memset(out, 0, sizeof(*out));
    out->ino = ino;
    out->mode = in.type | in.mode.v;
    out->uid = in.uid.v;
    out->gid = in.gid.v;
    out->rdev = in.rdev;
    out->atime_ns = in.atime.v;
    out->mtime_ns = in.mtime.v;
    out->ctime_ns = in.ctime.v;
    if (objkey_kind(&k) == OBJ_CCOPY) {
        mfs_stamp ver = objkey_stamp(&k);
        uint8_t h[HASH_LEN];
        content_version_hash(s, txn, id, ver, h, &out->size);
        out->blocks = (out->size + 511) / 512;
        out->nlink = 1;
        return 0;
    }
    out->size = in.size;
    out->blocks = in.blocks;
    dinfo_rec d;
    if (in.type == S_IFREG && dinfo_get(s, txn, id, &d) == 0) {
        out->size = d.size;
        out->mtime_ns = d.mtime;
        out->ctime_ns = d.ctime > out->ctime_ns ? d.ctime : out->ctime_ns;
        out->blocks = (d.size + 511) / 512;
    }
    if (in.type == S_IFLNK)
        out->size = in.targetlen;
    out->nlink = view_nlink(s, txn, id, in.type);
    return 0;
}

static int attr_fill(mfs_store *s, MDB_txn *txn, uint64_t ino, mfs_attr *out)
{
    objkey k;
    mfs_id id;
    int rc = resolve(s, txn, ino, &k, &id);
    return rc ? rc : attr_fill_obj(s, txn, ino, &k, id, out);
}

int mfs_store_getattr(mfs_store *s, uint64_t ino, mfs_attr *out)
{
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    rc = attr_fill(s, txn, ino, out);
    store_read_end(s, txn);
    return rc;
}

/* A directory to look names up in (a deleted one simply has none). */
static int dir_lookup_of(mfs_store *s, MDB_txn *txn, uint64_t ino, mfs_id *dir)
{
    objkey k;
    int rc = resolve(s, txn, ino, &k, dir);
    if (rc)
        return rc;
    if (objkey_kind(&k) != OBJ_INODE)
        return -ENOTDIR;
    inode_rec in;
    rc = inode_get(s, txn, *dir, &in);
    if (rc)
        return rc;
    return in.type == S_IFDIR ? 0 : -ENOTDIR;
}

/* A directory that can take lookups and new entries. */
static int dir_of(mfs_store *s, MDB_txn *txn, uint64_t ino, mfs_id *dir)
{
    int rc = dir_lookup_of(s, txn, ino, dir);
    if (rc || id_eq(*dir, MFS_ID_ROOT))
        return rc;
    return view_primary(s, txn, *dir, NULL, NULL, NULL) ? -ENOENT : 0;
}

int mfs_store_lookup(mfs_store *s, uint64_t parent, const char *name,
                     mfs_attr *out)
{
    size_t n = strnlen(name, MFS_NAME_MAX + 1);
    if (n > MFS_NAME_MAX)
        return -ENAMETOOLONG;
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    /* A hit needs no check of the parent's type: only directories have
     * names in the view. A miss says whether it was one (ENOTDIR). */
    objkey pk;
    mfs_id dir;
    dirent_rec d;
    rc = resolve(s, txn, parent, &pk, &dir);
    if (!rc && objkey_kind(&pk) != OBJ_INODE)
        rc = -ENOTDIR;
    if (!rc)
        rc = view_lookup(s, txn, dir, name, &d);
    if (rc == -ENOENT) {
        int drc = dir_lookup_of(s, txn, parent, &dir);
        rc = drc ? drc : rc;
    }
    if (!rc) {
        objkey ck = d.kind == OBJ_CCOPY ? obj_ccopy(d.inode, d.ver)
                                        : obj_inode(d.inode);
        rc = attr_fill_obj(s, txn, d.ino, &ck, d.inode, out);
    }
    store_read_end(s, txn);
    return rc;
}

int mfs_store_readdir(mfs_store *s, uint64_t dirino, const char *after,
                      mfs_dirent_cb cb, void *arg)
{
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    mfs_id dir;
    rc = dir_of(s, txn, dirino, &dir);
    MDB_cursor *c = NULL;
    if (!rc)
        rc = mdb_to_errno(mdb_cursor_open(txn, s->db[DB_DIRENTS], &c));
    if (!rc) {
        uint8_t k[DIRENT_KEY_NAME + MFS_NAME_MAX];
        id_put(k, dir);
        size_t kl = DIRENT_KEY_NAME;
        if (after) {
            size_t n = strnlen(after, MFS_NAME_MAX);
            memcpy(k + DIRENT_KEY_NAME, after, n);
            kl += n;
        }
        MDB_val key = {kl, k}, val;
        int r = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
        if (r == 0 && after && key.mv_size == kl && !memcmp(key.mv_data, k, kl))
            r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
        while (r == 0 && key.mv_size > DIRENT_KEY_NAME &&
               !memcmp(key.mv_data, k, ID_LEN)) {
            dirent_rec d;
            if (view_dirent_decode(&val, &d))
                break;
            char name[MFS_NAME_MAX + 1];
            size_t n = key.mv_size - DIRENT_KEY_NAME;
            memcpy(name, (uint8_t *)key.mv_data + DIRENT_KEY_NAME, n);
            name[n] = 0;
            if (cb(arg, name, d.ino, d.type))
                break;
            r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
        }
        mdb_cursor_close(c);
    }
    store_read_end(s, txn);
    return rc;
}

int mfs_store_parent(mfs_store *s, uint64_t dirino, uint64_t *parent)
{
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    mfs_id dir, pdir;
    rc = dir_of(s, txn, dirino, &dir);
    if (!rc && id_eq(dir, MFS_ID_ROOT)) {
        *parent = MFS_ROOT_INO;
    } else if (!rc) {
        rc = view_primary(s, txn, dir, NULL, &pdir, NULL);
        objkey ok = obj_inode(pdir);
        if (!rc)
            rc = ino_of_obj(s, txn, &ok, parent);
    }
    store_read_end(s, txn);
    return rc;
}

int mfs_store_readlink(mfs_store *s, uint64_t ino, char *buf, size_t cap)
{
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    objkey k;
    mfs_id id;
    inode_rec in;
    rc = resolve(s, txn, ino, &k, &id);
    if (!rc)
        rc = inode_get(s, txn, id, &in);
    if (!rc && in.type != S_IFLNK)
        rc = -EINVAL;
    if (!rc && cap < in.targetlen)
        rc = -ENAMETOOLONG;
    if (!rc) {
        memcpy(buf, in.target, in.targetlen);
        rc = (int)in.targetlen;
    }
    store_read_end(s, txn);
    return rc;
}

/* ---- helpers for write transactions ---- */

/* Emits ops as one action: all but the last carry OPF_MORE. */
static int emit(wtx *w, mfs_op *ops, size_t n)
{
    for (size_t i = 0; i < n && !w->err; i++) {
        ops[i].flags |= i + 1 < n ? OPF_MORE : 0;
        op_local(w, &ops[i]);
    }
    return w->err;
}

static mfs_op op_touch_dir(mfs_id dir, int64_t now)
{
    return (mfs_op){.type = OP_ATTR,
                    .obj = dir,
                    .mask = MFS_SET_MTIME | MFS_SET_CTIME,
                    .mtime = now,
                    .ctime = now};
}

static mfs_op op_ctime(mfs_id id, int64_t now)
{
    return (mfs_op){
        .type = OP_ATTR, .obj = id, .mask = MFS_SET_CTIME, .ctime = now};
}

static mfs_op op_move(mfs_id e, mfs_id inode, mfs_id parent, const char *name,
                      mfs_id from)
{
    return (mfs_op){.type = OP_MOVE,
                    .obj = e,
                    .inode = inode,
                    .parent = parent,
                    .from = from,
                    .name = name,
                    .namelen = strlen(name)};
}

static mfs_id mint(mfs_store *s)
{
    return (mfs_id){s->node, ++s->ctr};
}

/* The heads of an inode, as the seen-list of a delete (owned by caller). */
static uint8_t *seen_heads(wtx *w, mfs_id inode, uint32_t *n)
{
    mfs_stamp heads[MFS_MAX_HEADS];
    int nh = content_heads(w->s, w->txn, inode, heads, MFS_MAX_HEADS);
    *n = 0;
    if (nh <= 0)
        return NULL;
    uint8_t *b = malloc((size_t)nh * STAMP_LEN);
    if (!b) {
        wtx_fail(w, -ENOMEM);
        return NULL;
    }
    for (int i = 0; i < nh; i++)
        stamp_put(b + (size_t)i * STAMP_LEN, heads[i]);
    *n = (uint32_t)nh;
    return b;
}

static int raw_name(wtx *w, mfs_id e, char *out)
{
    entry_rec er;
    int rc = entry_get(w->s, w->txn, e, &er);
    if (rc)
        return wtx_fail(w, rc);
    strcpy(out, er.name);
    return 0;
}

/* Turns a conflict copy into a file of its own (before it is changed):
 * a new inode with the copy's content and name, and the copy dropped. The
 * kernel's inode number for the copy now names the new file. */
static int materialize(wtx *w, uint64_t ino, objkey *k, mfs_id *id)
{
    mfs_store *s = w->s;
    mfs_id inode = objkey_id(k);
    mfs_stamp ver = objkey_stamp(k);
    inode_rec in;
    if (inode_get(s, w->txn, inode, &in))
        return wtx_fail(w, -ENOENT);
    /* where the copy shows now */
    mfs_id dir;
    char name[MFS_NAME_MAX + 1];
    uint8_t ck[VKEY_LEN];
    vkey_put(ck, inode, ver);
    MDB_val cv;
    if (tget(s, w->txn, DB_CCOPY, ck, VKEY_LEN, &cv))
        return wtx_fail(w, -ENOENT);
    mfs_rbuf r;
    mfs_rbuf_init(&r, cv.mv_data, cv.mv_size);
    dir = mfs_rget_id(&r);
    SCHEMA_RAT(&r, CCOPY_NAME);
    size_t nl;
    const uint8_t *np = mfs_get_str16(&r, &nl, MFS_NAME_MAX);
    if (!np || nl == 0)
        return wtx_fail(w, -EIO);
    memcpy(name, np, nl);
    name[nl] = 0;
    mfs_op vop;
    int rc = content_version_copy(s, w->txn, inode, ver, &vop);
    if (rc)
        return wtx_fail(w, rc);
    int64_t now = now_ns(s);
    mfs_id ni = mint(s);
    mfs_op ops[4];
    ops[0] = (mfs_op){.type = OP_INODE,
                      .obj = ni,
                      .mode = S_IFREG | in.mode.v,
                      .uid = in.uid.v,
                      .gid = in.gid.v,
                      .atime = now,
                      .mtime = in.mtime.v,
                      .ctime = now};
    ops[1] = vop;
    ops[1].obj = ni;
    ops[1].mtime = in.mtime.v;
    ops[1].ctime = now;
    ops[2] = op_move(ni, ni, dir, name, MFS_ID_NONE);
    uint8_t p[STAMP_LEN];
    stamp_put(p, ver);
    ops[3] = (mfs_op){.type = OP_VERSION,
                      .flags = OPF_DROP,
                      .obj = inode,
                      .parents = p,
                      .nparents = 1};
    emit(w, ops, 4);
    op_clear(&vop);
    /* the copy's inode number now names the new file */
    objkey nk = obj_inode(ni);
    uint8_t b[INO_LEN];
    mfs_be64_put(b, ino);
    tput(w, DB_INO2OBJ, b, INO_LEN, nk.b, nk.len);
    tput(w, DB_OBJ2INO, nk.b, nk.len, b, INO_LEN);
    tdel(w, DB_OBJ2INO, k->b, k->len);
    *k = nk;
    *id = ni;
    return w->err;
}

#define KEEP_COPIES_MAX 64 /* conflict copies kept per call */

/* Before a name of a file goes, its conflict copies become files of their
 * own: deleting "f" must not take "f.conflict-..." with it, even when
 * another node removes f's other hard link at the same time (two nodes may
 * then both keep a copy: duplicated, never lost). */
static int keep_copies(wtx *w, mfs_id inode)
{
    mfs_store *s = w->s;
    mfs_stamp vers[KEEP_COPIES_MAX];
    int n = 0;
    MDB_cursor *c;
    int rc = mdb_cursor_open(w->txn, s->db[DB_CCOPY], &c);
    if (rc)
        return wtx_fail(w, rc);
    uint8_t k[ID_KEY_LEN];
    id_put(k, inode);
    MDB_val key = {ID_KEY_LEN, k}, val;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && n < KEEP_COPIES_MAX && key.mv_size == VKEY_LEN &&
           !memcmp(key.mv_data, k, ID_LEN)) {
        vers[n++] = stamp_get((uint8_t *)key.mv_data + VKEY_STAMP);
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    for (int i = 0; i < n && !w->err; i++) {
        objkey ok = obj_ccopy(inode, vers[i]);
        uint64_t ino;
        if (ino_of_obj(s, w->txn, &ok, &ino))
            continue;
        mfs_id nid;
        materialize(w, ino, &ok, &nid);
    }
    return w->err;
}

/* Ops that move entry e (of inode) to the trash, deleted from dir. */
static int trash_entry(wtx *w, mfs_id e, mfs_id inode, mfs_id dir, int64_t now,
                       bool more)
{
    if (keep_copies(w, inode))
        return w->err;
    char name[MFS_NAME_MAX + 1];
    if (raw_name(w, e, name))
        return w->err;
    uint32_t nseen;
    uint8_t *seen = seen_heads(w, inode, &nseen);
    mfs_op ops[2];
    ops[0] = op_move(e, inode, MFS_ID_TRASH, name, dir);
    ops[0].seen = seen;
    ops[0].nseen = nseen;
    ops[1] = op_ctime(inode, now);
    ops[0].flags = OPF_MORE;
    ops[1].flags = more ? OPF_MORE : 0;
    op_local(w, &ops[0]);
    op_local(w, &ops[1]);
    free(seen);
    return w->err;
}

static int drop_ccopy(wtx *w, mfs_id inode, mfs_stamp ver, bool more)
{
    uint8_t p[STAMP_LEN];
    stamp_put(p, ver);
    mfs_op op = {.type = OP_VERSION,
                 .flags = OPF_DROP | (more ? OPF_MORE : 0),
                 .obj = inode,
                 .parents = p,
                 .nparents = 1};
    return op_local(w, &op);
}

static int finish_attr(wtx *w, uint64_t ino, mfs_attr *out)
{
    if (!out || w->err)
        return w->err;
    if (view_flush(w))
        return w->err;
    int rc = attr_fill(w->s, w->txn, ino, out);
    return rc ? wtx_fail(w, rc) : 0;
}

static int ino_for(wtx *w, mfs_id id, uint64_t *ino)
{
    objkey ok = obj_inode(id);
    *ino = ino_assign(w, &ok);
    return w->err;
}

/* Resolves ino for a change: conflict copies are materialized first. */
static int resolve_mut(wtx *w, uint64_t ino, mfs_id *id, inode_rec *in)
{
    objkey k;
    int rc = resolve(w->s, w->txn, ino, &k, id);
    if (rc)
        return wtx_fail(w, rc);
    if (objkey_kind(&k) == OBJ_CCOPY && materialize(w, ino, &k, id))
        return w->err;
    rc = inode_get(w->s, w->txn, *id, in);
    if (rc || in->type == 0)
        return wtx_fail(w, rc ? rc : -ENOENT);
    return 0;
}

/* ---- namespace changes ---- */

static int tx_create(wtx *w, void *arg)
{
    lop *a = arg;
    mfs_store *s = w->s;
    mfs_id dir;
    int rc = name_check_n(a->name, strnlen(a->name, MFS_NAME_MAX + 1));
    if (rc)
        return rc;
    rc = dir_of(s, w->txn, a->parent, &dir);
    if (rc)
        return rc;
    dirent_rec d;
    if (view_lookup(s, w->txn, dir, a->name, &d) == 0)
        return -EEXIST;
    int64_t now = now_ns(s);
    mfs_id id = mint(s);
    mfs_op ops[3];
    ops[0] = (mfs_op){.type = OP_INODE,
                      .obj = id,
                      .mode = a->mode,
                      .uid = a->uid,
                      .gid = a->gid,
                      .rdev = a->rdev,
                      .atime = now,
                      .mtime = now,
                      .ctime = now};
    if (a->target) {
        ops[0].name = a->target;
        ops[0].namelen = strlen(a->target);
    }
    ops[1] = op_move(id, id, dir, a->name, MFS_ID_NONE);
    ops[2] = op_touch_dir(dir, now);
    if (emit(w, ops, 3))
        return w->err;
    uint64_t ino;
    if (ino_for(w, id, &ino))
        return w->err;
    return finish_attr(w, ino, a->out);
}

static bool valid_mknod_type(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG:
    case S_IFIFO:
    case S_IFSOCK:
    case S_IFCHR:
    case S_IFBLK:
        return true;
    }
    return false;
}

int mfs_store_mknod(mfs_store *s, uint64_t parent, const char *name,
                    uint32_t mode, uint64_t rdev, uint32_t uid, uint32_t gid,
                    mfs_attr *out)
{
    if ((mode & S_IFMT) == 0)
        mode |= S_IFREG;
    if (!valid_mknod_type(mode))
        return -EINVAL;
    lop a = {.parent = parent,
             .name = name,
             .mode = mode & (S_IFMT | 07777),
             .rdev = (S_ISCHR(mode) || S_ISBLK(mode)) ? rdev : 0,
             .uid = uid,
             .gid = gid,
             .out = out};
    return store_write_small(s, tx_create, &a);
}

int mfs_store_mkdir(mfs_store *s, uint64_t parent, const char *name,
                    uint32_t mode, uint32_t uid, uint32_t gid, mfs_attr *out)
{
    lop a = {.parent = parent,
             .name = name,
             .mode = S_IFDIR | (mode & 07777),
             .uid = uid,
             .gid = gid,
             .out = out};
    return store_write_small(s, tx_create, &a);
}

int mfs_store_symlink(mfs_store *s, uint64_t parent, const char *name,
                      const char *target, uint32_t uid, uint32_t gid,
                      mfs_attr *out)
{
    size_t n = strnlen(target, 4097);
    if (n == 0)
        return -ENOENT;
    if (n > 4096)
        return -ENAMETOOLONG;
    lop a = {.parent = parent,
             .name = name,
             .target = target,
             .mode = S_IFLNK | 0777,
             .uid = uid,
             .gid = gid,
             .out = out};
    return store_write_small(s, tx_create, &a);
}

static int tx_link(wtx *w, void *arg)
{
    lop *a = arg;
    mfs_store *s = w->s;
    int rc = name_check_n(a->newname, strnlen(a->newname, MFS_NAME_MAX + 1));
    if (rc)
        return rc;
    mfs_id id, dir;
    inode_rec in;
    if (resolve_mut(w, a->ino, &id, &in))
        return w->err;
    if (in.type == S_IFDIR)
        return -EPERM;
    rc = dir_of(s, w->txn, a->newparent, &dir);
    if (rc)
        return rc;
    dirent_rec d;
    if (view_lookup(s, w->txn, dir, a->newname, &d) == 0)
        return -EEXIST;
    if (view_primary(s, w->txn, id, NULL, NULL, NULL))
        return -ENOENT; /* no name left: linkat of an unlinked file */
    int64_t now = now_ns(s);
    mfs_op ops[3];
    ops[0] = op_move(mint(s), id, dir, a->newname, MFS_ID_NONE);
    ops[1] = op_ctime(id, now);
    ops[2] = op_touch_dir(dir, now);
    if (emit(w, ops, 3))
        return w->err;
    return finish_attr(w, a->ino, a->out);
}

int mfs_store_link(mfs_store *s, uint64_t ino, uint64_t newparent,
                   const char *newname, mfs_attr *out)
{
    lop a = {
        .ino = ino, .newparent = newparent, .newname = newname, .out = out};
    return store_write_small(s, tx_link, &a);
}

static int tx_remove(wtx *w, void *arg)
{
    lop *a = arg;
    mfs_store *s = w->s;
    bool isdir = a->flags;
    size_t n = strnlen(a->name, MFS_NAME_MAX + 1);
    if (n > MFS_NAME_MAX)
        return -ENAMETOOLONG;
    if (isdir && ((n == 1 && a->name[0] == '.')))
        return -EINVAL;
    if (isdir && n == 2 && !memcmp(a->name, "..", 2))
        return -ENOTEMPTY;
    mfs_id dir;
    int rc = dir_of(s, w->txn, a->parent, &dir);
    if (rc)
        return rc;
    dirent_rec d;
    rc = view_lookup(s, w->txn, dir, a->name, &d);
    if (rc)
        return rc;
    int64_t now = now_ns(s);
    if (d.kind == OBJ_CCOPY) {
        if (isdir)
            return -ENOTDIR;
        drop_ccopy(w, d.inode, d.ver, true);
        mfs_op t = op_touch_dir(dir, now);
        return op_local(w, &t);
    }
    if (isdir && d.type != S_IFDIR)
        return -ENOTDIR;
    if (!isdir && d.type == S_IFDIR)
        return -EISDIR;
    if (id_eq(d.entry, MFS_ID_LOSTFOUND))
        return -EBUSY;
    if (isdir && !view_dir_empty(s, w->txn, d.inode))
        return -ENOTEMPTY;
    trash_entry(w, d.entry, d.inode, dir, now, true);
    mfs_op t = op_touch_dir(dir, now);
    return op_local(w, &t);
}

int mfs_store_unlink(mfs_store *s, uint64_t parent, const char *name)
{
    lop a = {.parent = parent, .name = name, .flags = 0};
    return store_write_small(s, tx_remove, &a);
}

int mfs_store_rmdir(mfs_store *s, uint64_t parent, const char *name)
{
    lop a = {.parent = parent, .name = name, .flags = 1};
    return store_write_small(s, tx_remove, &a);
}

/* Is anc (a directory) dir itself or one of dir's visible ancestors? */
static bool view_is_ancestor(mfs_store *s, MDB_txn *txn, mfs_id anc, mfs_id dir)
{
    mfs_id x = dir;
    for (int i = 0; i < 1 << 20; i++) {
        if (id_eq(x, anc))
            return true;
        if (id_eq(x, MFS_ID_ROOT))
            return false;
        mfs_id p;
        if (view_primary(s, txn, x, NULL, &p, NULL))
            return false;
        x = p;
    }
    return true;
}

static int tx_rename(wtx *w, void *arg)
{
    lop *a = arg;
    mfs_store *s = w->s;
    unsigned flags = a->flags;
    if ((flags & ~(MFS_RENAME_NOREPLACE | MFS_RENAME_EXCHANGE)) ||
        ((flags & MFS_RENAME_NOREPLACE) && (flags & MFS_RENAME_EXCHANGE)))
        return -EINVAL;
    int rc = name_check_n(a->newname, strnlen(a->newname, MFS_NAME_MAX + 1));
    if (rc)
        return rc;
    size_t sn = strnlen(a->name, MFS_NAME_MAX + 1);
    if (sn > MFS_NAME_MAX)
        return -ENAMETOOLONG;
    mfs_id sdir, ddir;
    rc = dir_of(s, w->txn, a->parent, &sdir);
    if (rc)
        return rc;
    rc = dir_of(s, w->txn, a->newparent, &ddir);
    if (rc)
        return rc;
    dirent_rec sd, dd;
    rc = view_lookup(s, w->txn, sdir, a->name, &sd);
    if (rc)
        return rc;
    bool dexists = view_lookup(s, w->txn, ddir, a->newname, &dd) == 0;
    if ((flags & MFS_RENAME_EXCHANGE) && !dexists)
        return -ENOENT;
    if ((flags & MFS_RENAME_NOREPLACE) && dexists)
        return -EEXIST;
    if (id_eq(sd.entry, MFS_ID_LOSTFOUND) ||
        (dexists && id_eq(dd.entry, MFS_ID_LOSTFOUND)))
        return -EBUSY;
    bool sdirp = sd.type == S_IFDIR;
    if (sdirp && view_is_ancestor(s, w->txn, sd.inode, ddir))
        return -EINVAL;
    if (dexists && sd.kind == dd.kind && id_eq(sd.entry, dd.entry) &&
        stamp_eq(sd.ver, dd.ver))
        return 0; /* same entry */
    if (dexists && !(flags & MFS_RENAME_EXCHANGE)) {
        if (sd.kind == OBJ_INODE && dd.kind == OBJ_INODE &&
            id_eq(sd.inode, dd.inode))
            return 0; /* two links of one file: rename(2) does nothing */
        bool ddirp = dd.type == S_IFDIR;
        if (sdirp && !ddirp)
            return -ENOTDIR;
        if (!sdirp && ddirp)
            return -EISDIR;
        if (ddirp && !view_dir_empty(s, w->txn, dd.inode))
            return -ENOTEMPTY;
    }
    if ((flags & MFS_RENAME_EXCHANGE) && dd.type == S_IFDIR &&
        view_is_ancestor(s, w->txn, dd.inode, sdir))
        return -EINVAL;
    /* A conflict copy that moves or is exchanged becomes a file first. */
    if (sd.kind == OBJ_CCOPY) {
        objkey k = obj_ccopy(sd.inode, sd.ver);
        mfs_id nid;
        if (materialize(w, sd.ino, &k, &nid))
            return w->err;
        view_flush(w);
        if (view_lookup(s, w->txn, sdir, a->name, &sd))
            return wtx_fail(w, -EIO);
    }
    if (dexists && dd.kind == OBJ_CCOPY && (flags & MFS_RENAME_EXCHANGE)) {
        objkey k = obj_ccopy(dd.inode, dd.ver);
        mfs_id nid;
        if (materialize(w, dd.ino, &k, &nid))
            return w->err;
        view_flush(w);
        if (view_lookup(s, w->txn, ddir, a->newname, &dd))
            return wtx_fail(w, -EIO);
    }
    int64_t now = now_ns(s);
    if (dexists && !(flags & MFS_RENAME_EXCHANGE)) {
        if (dd.kind == OBJ_CCOPY)
            drop_ccopy(w, dd.inode, dd.ver, true);
        else
            trash_entry(w, dd.entry, dd.inode, ddir, now, true);
    }
    mfs_op ops[6];
    size_t n = 0;
    ops[n++] = op_move(sd.entry, sd.inode, ddir, a->newname, sdir);
    if (flags & MFS_RENAME_EXCHANGE) {
        ops[n++] = op_move(dd.entry, dd.inode, sdir, a->name, ddir);
        ops[n++] = op_ctime(dd.inode, now);
    }
    ops[n++] = op_ctime(sd.inode, now);
    ops[n++] = op_touch_dir(sdir, now);
    if (!id_eq(sdir, ddir))
        ops[n++] = op_touch_dir(ddir, now);
    return emit(w, ops, n);
}

int mfs_store_rename(mfs_store *s, uint64_t parent, const char *name,
                     uint64_t newparent, const char *newname, unsigned flags)
{
    lop a = {.parent = parent,
             .name = name,
             .newparent = newparent,
             .newname = newname,
             .flags = flags};
    return store_write_small(s, tx_rename, &a);
}

/* ---- attributes ---- */

static int tx_setattr(wtx *w, void *arg)
{
    lop *a = arg;
    const mfs_setattr *sa = a->sa;
    mfs_id id;
    inode_rec in;
    /* Reading a conflict copy (an atime update) does not change it: turning
     * it into a file of its own here would make every node that reads it
     * mint its own copy, and those would clash by name. */
    objkey ck;
    if (!(sa->mask &
          ~(unsigned)(MFS_SET_ATIME | MFS_SET_ATIME_NOW | MFS_SET_CTIME)) &&
        resolve(w->s, w->txn, a->ino, &ck, &id) == 0 &&
        objkey_kind(&ck) == OBJ_CCOPY)
        return a->out ? attr_fill(w->s, w->txn, a->ino, a->out) : 0;
    if (resolve_mut(w, a->ino, &id, &in))
        return w->err;
    int64_t now = now_ns(w->s);
    if (sa->mask & MFS_SET_SIZE) {
        if (in.type == S_IFDIR)
            return -EISDIR;
        if (in.type != S_IFREG)
            return -EINVAL;
        content_stream_end(w->s, a->ino);
        if (content_truncate(w, id, sa->size, now))
            return w->err;
    }
    mfs_op op = {.type = OP_ATTR, .obj = id};
    if (sa->mask & MFS_SET_MODE) {
        op.mask |= MFS_SET_MODE;
        op.mode = sa->mode & 07777;
    }
    if (sa->mask & MFS_SET_UID) {
        op.mask |= MFS_SET_UID;
        op.uid = sa->uid;
    }
    if (sa->mask & MFS_SET_GID) {
        op.mask |= MFS_SET_GID;
        op.gid = sa->gid;
    }
    if (sa->mask & (MFS_SET_ATIME | MFS_SET_ATIME_NOW)) {
        op.mask |= MFS_SET_ATIME;
        op.atime = (sa->mask & MFS_SET_ATIME_NOW) ? now : sa->atime_ns;
    }
    if (sa->mask & (MFS_SET_MTIME | MFS_SET_MTIME_NOW)) {
        op.mask |= MFS_SET_MTIME;
        op.mtime = (sa->mask & MFS_SET_MTIME_NOW) ? now : sa->mtime_ns;
    }
    if (op.mask || (sa->mask & MFS_SET_CTIME)) {
        op.mask |= MFS_SET_CTIME;
        op.ctime = (sa->mask & MFS_SET_CTIME) ? sa->ctime_ns : now;
    }
    if (op.mask) {
        /* unpublished content carries its times into the next version */
        dinfo_rec d;
        if (in.type == S_IFREG && dinfo_get(w->s, w->txn, id, &d) == 0) {
            if (op.mask & MFS_SET_MTIME)
                d.mtime = op.mtime;
            d.ctime = op.ctime;
            dinfo_put(w, id, &d);
        }
        op_local(w, &op);
    }
    return finish_attr(w, a->ino, a->out);
}

int mfs_store_setattr(mfs_store *s, uint64_t ino, const mfs_setattr *sa,
                      mfs_attr *out)
{
    lop a = {.ino = ino, .sa = sa, .out = out};
    /* (a truncation may drop a file's worth of records) */
    if (sa->mask & MFS_SET_SIZE)
        return store_write(s, tx_setattr, &a);
    return store_write_small(s, tx_setattr, &a);
}

/* ---- xattrs ---- */

static int xattr_get(mfs_store *s, MDB_txn *txn, mfs_id id, const char *name,
                     MDB_val *val)
{
    uint8_t key[XATTR_KEY_NAME + MFS_NAME_MAX];
    size_t n = strlen(name);
    id_put(key, id);
    memcpy(key + XATTR_KEY_NAME, name, n);
    int rc = tget(s, txn, DB_XATTRS, key, XATTR_KEY_NAME + n, val);
    if (rc)
        return rc == -ENOENT ? -ENODATA : rc;
    if (val->mv_size < XATTR_VAL_DATA ||
        ((uint8_t *)val->mv_data)[XATTR_VAL_PRESENT] != 1)
        return -ENODATA;
    val->mv_data = (uint8_t *)val->mv_data + XATTR_VAL_DATA;
    val->mv_size -= XATTR_VAL_DATA;
    return 0;
}

static int xattr_name_ok(const char *name)
{
    size_t n = strnlen(name, MFS_NAME_MAX + 1);
    if (n == 0 || n > MFS_NAME_MAX)
        return -ERANGE;
    return 0;
}

static int tx_setxattr(wtx *w, void *arg)
{
    lop *a = arg;
    mfs_id id;
    inode_rec in;
    if (resolve_mut(w, a->ino, &id, &in))
        return w->err;
    MDB_val v;
    int rc = xattr_get(w->s, w->txn, id, a->name, &v);
    if (rc && rc != -ENODATA)
        return rc;
    if ((a->flags & MFS_XATTR_CREATE) && rc == 0)
        return -EEXIST;
    if ((a->flags & MFS_XATTR_REPLACE) && rc == -ENODATA)
        return -ENODATA;
    if (!a->buf && rc == -ENODATA)
        return -ENODATA; /* remove of an absent attribute */
    int64_t now = now_ns(w->s);
    mfs_op ops[2];
    ops[0] = (mfs_op){.type = OP_XATTR,
                      .obj = id,
                      .name = a->name,
                      .namelen = strlen(a->name),
                      .present = a->buf != NULL,
                      .value = a->buf,
                      .vlen = a->buf ? a->len : 0};
    ops[1] = op_ctime(id, now);
    return emit(w, ops, 2);
}

int mfs_store_setxattr(mfs_store *s, uint64_t ino, const char *name,
                       const void *value, size_t size, int flags)
{
    int rc = xattr_name_ok(name);
    if (rc)
        return rc;
    if (size > MFS_MAX_XATTR)
        return -E2BIG;
    lop a = {.ino = ino,
             .name = name,
             .buf = value ? value : "",
             .len = size,
             .flags = (unsigned)flags};
    return store_write_small(s, tx_setxattr, &a);
}

int mfs_store_removexattr(mfs_store *s, uint64_t ino, const char *name)
{
    int rc = xattr_name_ok(name);
    if (rc)
        return rc;
    lop a = {.ino = ino, .name = name, .buf = NULL, .flags = MFS_XATTR_REPLACE};
    return store_write_small(s, tx_setxattr, &a);
}

ssize_t mfs_store_getxattr(mfs_store *s, uint64_t ino, const char *name,
                           void *buf, size_t cap)
{
    int rc = xattr_name_ok(name);
    if (rc)
        return rc;
    MDB_txn *txn;
    rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    objkey k;
    mfs_id id;
    MDB_val v;
    ssize_t out = resolve(s, txn, ino, &k, &id);
    if (!out)
        out = xattr_get(s, txn, id, name, &v);
    if (!out) {
        out = (ssize_t)v.mv_size;
        if (cap && cap < v.mv_size)
            out = -ERANGE;
        else if (cap)
            memcpy(buf, v.mv_data, v.mv_size);
    }
    store_read_end(s, txn);
    return out;
}

ssize_t mfs_store_listxattr(mfs_store *s, uint64_t ino, char *buf, size_t cap)
{
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    objkey k;
    mfs_id id;
    ssize_t total = resolve(s, txn, ino, &k, &id);
    MDB_cursor *c = NULL;
    if (!total)
        total = mdb_to_errno(mdb_cursor_open(txn, s->db[DB_XATTRS], &c));
    if (!total) {
        uint8_t pk[ID_KEY_LEN];
        id_put(pk, id);
        MDB_val key = {ID_KEY_LEN, pk}, val;
        int r = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
        while (r == 0 && key.mv_size > XATTR_KEY_NAME &&
               !memcmp(key.mv_data, pk, ID_LEN)) {
            if (val.mv_size >= XATTR_VAL_DATA &&
                ((uint8_t *)val.mv_data)[XATTR_VAL_PRESENT] == 1) {
                size_t n = key.mv_size - XATTR_KEY_NAME;
                if (cap && (size_t)total + n + 1 > cap) {
                    total = -ERANGE;
                    break;
                }
                if (cap) {
                    memcpy(buf + total, (uint8_t *)key.mv_data + XATTR_KEY_NAME,
                           n);
                    buf[total + n] = 0;
                }
                total += (ssize_t)n + 1;
            }
            r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
        }
        mdb_cursor_close(c);
    }
    store_read_end(s, txn);
    return total;
}

/* ---- content ---- */

ssize_t mfs_store_read(mfs_store *s, uint64_t ino, uint64_t off, void *buf,
                       size_t len)
{
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    objkey k;
    mfs_id id;
    inode_rec in;
    ssize_t out = resolve(s, txn, ino, &k, &id);
    if (!out)
        out = inode_get(s, txn, id, &in);
    if (!out && in.type == S_IFDIR)
        out = -EISDIR;
    else if (!out && in.type != S_IFREG)
        out = -EINVAL;
    if (!out) {
        if (objkey_kind(&k) == OBJ_CCOPY)
            out = content_read(s, txn, id, objkey_stamp(&k), false, off, buf,
                               len);
        else
            out = content_read(s, txn, id, in.shown, true, off, buf, len);
    }
    store_read_end(s, txn);
    return out;
}

static int tx_write(wtx *w, void *arg)
{
    lop *a = arg;
    mfs_id id;
    inode_rec in;
    if (resolve_mut(w, a->ino, &id, &in))
        return w->err;
    if (in.type == S_IFDIR)
        return -EISDIR;
    if (in.type != S_IFREG)
        return -EINVAL;
    int rc = a->plan ? content_write_stream(w, id, a->plan) : 1;
    if (rc == 1) { /* (not as a stream) */
        content_stream_end(w->s, a->ino);
        rc = content_write(w, id, a->off, a->buf, a->len, a->whole);
    }
    if (rc)
        return w->err;
    /* content changes set mtime and ctime (carried by the next version) */
    dinfo_rec d;
    if (!(a->flags & MFS_WRITE_KEEP_TIMES) &&
        dinfo_get(w->s, w->txn, id, &d) == 0) {
        d.mtime = d.ctime = now_ns(w->s);
        dinfo_put(w, id, &d);
    }
    a->ret = (ssize_t)a->len;
    return w->err;
}

ssize_t mfs_store_write(mfs_store *s, uint64_t ino, uint64_t off,
                        const void *buf, size_t len)
{
    return mfs_store_write_flags(s, ino, off, buf, len, 0);
}

struct mfs_write_prep {
    stream_plan *plan; /* content-defined chunks cut and hashed */
    uint8_t *whole;    /* or fixed blocks hashed */
};

mfs_write_prep *mfs_store_write_prepare(mfs_store *s, uint64_t ino,
                                        uint64_t off, const void *buf,
                                        size_t len)
{
    if (len == 0)
        return NULL;
    mfs_write_prep *wp = malloc(sizeof(*wp));
    if (!wp)
        return NULL;
    wp->plan = content_stream_plan(s, ino, off, buf, len);
    wp->whole = wp->plan ? NULL : content_hash_whole(s, off, buf, len);
    return wp;
}

ssize_t mfs_store_write_apply(mfs_store *s, mfs_write_prep *wp, uint64_t ino,
                              uint64_t off, const void *buf, size_t len,
                              unsigned flags)
{
    if (len == 0) { /* (given up: the stream ends) */
        if (wp) {
            content_stream_done(s, wp->plan, false);
            free(wp->whole);
            free(wp);
        }
        return 0;
    }
    lop a = {.ino = ino,
             .off = off,
             .buf = buf,
             .len = len,
             .flags = flags,
             .whole = wp ? wp->whole : NULL,
             .plan = wp ? wp->plan : NULL};
    int rc = store_write_of(s, len, tx_write, &a);
    content_stream_done(s, a.plan, rc == 0);
    if (wp)
        free(wp->whole);
    free(wp);
    return rc ? rc : a.ret;
}

ssize_t mfs_store_write_flags(mfs_store *s, uint64_t ino, uint64_t off,
                              const void *buf, size_t len, unsigned flags)
{
    return mfs_store_write_apply(
        s, mfs_store_write_prepare(s, ino, off, buf, len), ino, off, buf,
        len, flags);
}

static int tx_publish(wtx *w, void *arg)
{
    lop *a = arg;
    objkey k;
    mfs_id id;
    int rc = resolve(w->s, w->txn, a->ino, &k, &id);
    if (rc == -ENOENT || (rc == 0 && objkey_kind(&k) != OBJ_INODE))
        return 0;
    if (rc)
        return rc;
    return content_publish(w, id, true);
}

/* Does ino have unpublished writes (and, with nameless, no name left)?
 * A read-only look, so the common no-op calls take no write lock. When
 * the look fails it answers yes and the write path decides. *size (if
 * size): the file's size then (UINT64_MAX when not known). */
static bool has_unpublished(mfs_store *s, uint64_t ino, bool nameless,
                            uint64_t *size)
{
    if (size)
        *size = UINT64_MAX;
    MDB_txn *txn;
    if (store_read_begin(s, &txn))
        return true;
    objkey k;
    mfs_id id;
    dinfo_rec d;
    bool yes = resolve(s, txn, ino, &k, &id) == 0 &&
               objkey_kind(&k) == OBJ_INODE && dinfo_get(s, txn, id, &d) == 0 &&
               (!nameless || view_primary(s, txn, id, NULL, NULL, NULL) != 0);
    if (yes && size)
        *size = d.size;
    store_read_end(s, txn);
    return yes;
}

int mfs_store_publish(mfs_store *s, uint64_t ino)
{
    /* most closes have nothing to publish: look before taking the lock */
    uint64_t size;
    if (!has_unpublished(s, ino, false, &size))
        return 0;
    lop a = {.ino = ino};
    /* the version reaches the mesh with the commit that carries it:
     * within 1 ms, without waiting for it (a close that waited would
     * cost a disk flush per file) */
    int rc = store_write_of(s, size, tx_publish, &a);
    if (!rc)
        mfs_store_commit_soon(s);
    return rc;
}

/* The periodic publish keeps its cost bounded: a file whose unpublished
 * blocks are many (a database or disk image rewritten at random) waits in
 * proportion to them, PUBLISH_BLOCKS blocks per period, up to
 * PUBLISH_MAX_MS; close and fsync publish it at once whatever its size. */
#define PUBLISH_BLOCKS 64u
#define PUBLISH_MAX_MS 30000u

/* Unpublished blocks of id (keys only: the blocks are not read). */
static int count_block(void *arg, uint64_t blk)
{
    (void)blk;
    (*(uint64_t *)arg)++;
    return 0;
}

static int count_ref(void *arg, uint64_t blk, const MDB_val *v)
{
    (void)v;
    return count_block(arg, blk);
}

/* A stream chunk counts as the blocks its bytes fill. */
static int count_chunk(void *arg, uint64_t start, const MDB_val *v)
{
    (void)start;
    if (v->mv_size == DCHUNKS_VAL_LEN)
        *(uint64_t *)arg +=
            mfs_be32_get((const uint8_t *)v->mv_data + DCHUNKS_VAL_SIZE);
    return 0;
}

/* id's unpublished blocks: bytes, whole blocks already chunks, and a
 * stream's chunks by their bytes (txn: the main store). The last two cost
 * publish no hashing, but a file being written whole (a copy, a download,
 * an editor's save) would otherwise be published every period, each time
 * with its whole chunk list and an op that never goes away; they count as
 * they did when they were bytes. */
static uint64_t dirty_blocks(mfs_store *s, MDB_txn *txn, mfs_id id)
{
    MDB_txn *dt;
    uint64_t n = 0;
    if (dirty_read_begin(s, &dt) == 0) {
        dirty_each(s, dt, id, count_block, &n);
        dirty_read_end(dt);
    }
    dirty_ref_each(s, txn, id, count_ref, &n);
    uint64_t bytes = 0;
    dirty_chunk_each(s, txn, id, count_chunk, &bytes);
    return n + bytes / MFS_CHUNK_SIZE;
}

/* Files due for the periodic publish (age_ms 0: every file with
 * unpublished writes). */
static int publish_due(mfs_store *s, uint64_t age_ms, idset *ids)
{
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    uint64_t now = mfs_store_wall_ms(s); /* (ages: dinfo since_ms) */
    MDB_cursor *c;
    rc = mdb_to_errno(mdb_cursor_open(txn, s->db[DB_DINFO], &c));
    if (rc) {
        store_read_end(s, txn);
        return rc;
    }
    MDB_val key, val;
    int r = mdb_cursor_get(c, &key, &val, MDB_FIRST);
    while (r == 0) {
        mfs_rbuf rb;
        mfs_rbuf_init(&rb, val.mv_data, val.mv_size);
        mfs_get_bytes(&rb, DINFO_VAL_SINCE);
        uint64_t since = mfs_get_u64(&rb);
        mfs_id id = id_get(key.mv_data);
        bool due = age_ms == 0;
        if (!rb.err && !due && since + age_ms <= now) {
            uint64_t wait =
                age_ms * (dirty_blocks(s, txn, id) / PUBLISH_BLOCKS);
            if (wait > PUBLISH_MAX_MS)
                wait = PUBLISH_MAX_MS;
            due = since + (wait > age_ms ? wait : age_ms) <= now;
        }
        if (due)
            idset_add(ids, id);
        r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    store_read_end(s, txn);
    return 0;
}

static int tx_publish_id(wtx *w, void *arg)
{
    return content_publish(w, *(const mfs_id *)arg, true);
}

int mfs_store_publish_all(mfs_store *s, uint64_t age_ms)
{
    idset ids = {0};
    int rc = publish_due(s, age_ms, &ids);
    /* one file per write: a large file does not hold up the others */
    for (size_t i = 0; i < ids.n && !rc; i++)
        rc = store_write(s, tx_publish_id, &ids.v[i]);
    if (ids.n)
        mfs_store_commit_soon(s);
    idset_free(&ids);
    return rc;
}

int mfs_store_fsync(mfs_store *s, uint64_t ino)
{
    if (s->rdonly)
        return -EROFS;
    if (ino) {
        int rc = mfs_store_publish(s, ino);
        if (rc)
            return rc;
    }
    int rc = wal_fsync(s); /* one record in the intent log, one flush */
    return rc == 1 ? mfs_store_commit(s, 1) : rc;
}

static int tx_forget(wtx *w, void *arg)
{
    lop *a = arg;
    objkey k;
    mfs_id id;
    if (resolve(w->s, w->txn, a->ino, &k, &id) || objkey_kind(&k) != OBJ_INODE)
        return 0;
    if (!view_primary(w->s, w->txn, id, NULL, NULL, NULL))
        return 0; /* still has a name */
    dinfo_rec d;
    if (dinfo_get(w->s, w->txn, id, &d) == 0 &&
        content_drop_dirty(w, id) == 0)
        collect_sweep_soon(w->s); /* (its stream's chunks, unpublished) */
    return w->err;
}

/* Is ino the number of an inode that collection forgot (its record gone)
 * while the kernel held it? Its id in *id. */
static bool ino_orphan(mfs_store *s, MDB_txn *txn, uint64_t ino, mfs_id *id)
{
    objkey k;
    inode_rec in;
    return resolve(s, txn, ino, &k, id) == 0 && objkey_kind(&k) == OBJ_INODE &&
           inode_get(s, txn, *id, &in) == -ENOENT;
}

static int tx_forget_ino(wtx *w, void *arg)
{
    mfs_id id;
    if (ino_orphan(w->s, w->txn, ((lop *)arg)->ino, &id))
        ino_forget(w, id);
    return w->err;
}

void mfs_store_forget(mfs_store *s, uint64_t ino)
{
    MDB_txn *txn;
    mfs_id id;
    bool orphan = false;
    if (!s->rdonly && store_read_begin(s, &txn) == 0) {
        orphan = ino_orphan(s, txn, ino, &id);
        store_read_end(s, txn);
    }
    if (orphan) {
        lop a = {.ino = ino};
        store_write(s, tx_forget_ino, &a);
        return;
    }
    /* only a nameless file with unpublished writes has anything to drop */
    if (!has_unpublished(s, ino, true, NULL))
        return;
    lop a = {.ino = ino};
    int rc = store_write(s, tx_forget, &a);
    if (rc)
        mfs_log(LOG_WARNING,
                "store %s: cannot drop the unpublished writes of inode %llu "
                "(it has no name left): %s; their space stays used until "
                "the first mount after a reboot",
                s->dir, (unsigned long long)ino, strerror(-rc));
}

int mfs_store_statfs(mfs_store *s, struct statvfs *out)
{
    if (statvfs(s->dir, out) < 0)
        return -errno;
    out->f_namemax = MFS_NAME_MAX;
    return 0;
}

/* ---- versions pinned by open files (fs/) ---- */

/* The version reads of a regular file's inode show now: the version that
 * its unpublished writes are based on while it has some, else the shown
 * version. A conflict copy's own version. Reads the common checks of
 * mfs_store_read(); *k, *id and *in are filled for the caller. */
static int current_version(mfs_store *s, MDB_txn *txn, uint64_t ino, objkey *k,
                           mfs_id *id, inode_rec *in, mfs_stamp *cur,
                           bool *dirty)
{
    int rc = resolve(s, txn, ino, k, id);
    if (!rc)
        rc = inode_get(s, txn, *id, in);
    if (!rc && in->type == S_IFDIR)
        rc = -EISDIR;
    else if (!rc && in->type != S_IFREG)
        rc = -EINVAL;
    if (rc)
        return rc;
    *dirty = false;
    if (objkey_kind(k) == OBJ_CCOPY) {
        *cur = objkey_stamp(k);
        return 0;
    }
    dinfo_rec d;
    if (dinfo_get(s, txn, *id, &d) == 0) {
        *cur = d.base;
        *dirty = true;
    } else {
        *cur = in->shown;
    }
    return 0;
}

int mfs_store_version_current(mfs_store *s, uint64_t ino, mfs_stamp *ver)
{
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    objkey k;
    mfs_id id;
    inode_rec in;
    bool dirty;
    rc = current_version(s, txn, ino, &k, &id, &in, ver, &dirty);
    store_read_end(s, txn);
    return rc;
}

ssize_t mfs_store_read_pinned(mfs_store *s, uint64_t ino, mfs_stamp *pin,
                              uint64_t off, void *buf, size_t len)
{
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    objkey k;
    mfs_id id;
    inode_rec in;
    mfs_stamp cur;
    bool dirty;
    ssize_t out = current_version(s, txn, ino, &k, &id, &in, &cur, &dirty);
    if (out) {
        /* nothing */
    } else if (objkey_kind(&k) == OBJ_CCOPY) {
        out = content_read(s, txn, id, cur, false, off, buf, len);
    } else if (stamp_eq(cur, *pin) || cur.node == s->node) {
        /* the pinned version, or a local change since (local writes are
         * seen as on a local disk): what everyone reads */
        *pin = cur;
        out = content_read(s, txn, id, in.shown, true, off, buf, len);
    } else {
        /* a remote version landed since the open: keep the pinned one */
        out = content_read(s, txn, id, *pin, false, off, buf, len);
    }
    store_read_end(s, txn);
    return out;
}

/* ---- restore from the trash ---- */

typedef struct restore_arg {
    mfs_id inode;
    mfs_stamp ver;
    uint64_t parent;
    const char *name;
    mfs_attr *out;
    uint64_t *absent;
} restore_arg;

static int tx_restore(wtx *w, void *arg)
{
    restore_arg *a = arg;
    mfs_store *s = w->s;
    int rc = name_check_n(a->name, strnlen(a->name, MFS_NAME_MAX + 1));
    if (rc)
        return rc;
    mfs_id dir;
    rc = dir_of(s, w->txn, a->parent, &dir);
    if (rc)
        return rc;
    inode_rec in;
    if (inode_get(s, w->txn, a->inode, &in) || in.type != S_IFREG)
        return -ENOENT;
    mfs_op cv;
    rc = content_version_copy(s, w->txn, a->inode, a->ver, &cv);
    if (rc)
        return rc == -ENOENT ? -ENOENT : rc; /* (collected meanwhile) */
    /* chunks not here are fetched from the members that hold them, as for
     * any version (the node that overwrote or deleted it keeps it for its
     * trash period) */
    *a->absent = version_absent(s, w->txn, a->inode, a->ver);
    int64_t now = now_ns(s);
    dirent_rec d;
    mfs_op ops[4];
    size_t n = 0;
    mfs_id target;
    uint8_t parents[MFS_MAX_HEADS * STAMP_LEN];
    uint8_t known[OP_MAX_KNOWN * STAMP_LEN];
    if (view_lookup(s, w->txn, dir, a->name, &d) == 0) {
        if (d.kind != OBJ_INODE || !id_eq(d.inode, a->inode)) {
            op_clear(&cv);
            return -EEXIST;
        }
        dinfo_rec di;
        if (dinfo_get(s, w->txn, a->inode, &di) == 0) {
            op_clear(&cv);
            return -EBUSY;
        }
        /* the old content becomes the file's newest version */
        mfs_stamp heads[MFS_MAX_HEADS];
        int nh = content_heads(s, w->txn, a->inode, heads, MFS_MAX_HEADS);
        for (int i = 0; i < nh; i++)
            stamp_put(parents + (size_t)i * STAMP_LEN, heads[i]);
        target = a->inode;
        cv.mtime = now;
        cv.parents = parents;
        cv.nparents = nh > 0 ? (uint32_t)nh : 0;
        /* it does not bring back the file's removed names */
        content_name_deletes(w, target, &cv, known);
    } else {
        /* a file of its own, as it was */
        target = mint(s);
        ops[n++] = (mfs_op){.type = OP_INODE,
                            .obj = target,
                            .mode = S_IFREG | (in.mode.v & 07777),
                            .uid = in.uid.v,
                            .gid = in.gid.v,
                            .atime = now,
                            .mtime = in.mtime.v,
                            .ctime = now};
        cv.mtime = in.mtime.v;
    }
    cv.obj = target;
    cv.ctime = now;
    ops[n++] = cv;
    if (!id_eq(target, a->inode)) {
        ops[n++] = op_move(target, target, dir, a->name, MFS_ID_NONE);
        ops[n++] = op_touch_dir(dir, now);
    }
    emit(w, ops, n);
    op_clear(&cv);
    uint64_t ino;
    if (ino_for(w, target, &ino))
        return w->err;
    return finish_attr(w, ino, a->out);
}

int mfs_store_restore(mfs_store *s, mfs_id inode, mfs_stamp version,
                      uint64_t parent, const char *name, mfs_attr *out,
                      uint64_t *absent)
{
    uint64_t none;
    restore_arg a = {inode, version, parent,
                     name,  out,     absent ? absent : &none};
    return store_write(s, tx_restore, &a);
}
