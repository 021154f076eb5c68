/*
 * op.c - the op: the unit of replication. Encoding, validation of remote
 * ops, stamping of local ones, and the dispatch that applies any op, local
 * or remote, through the same code (so a replica that replays the log ends
 * where the origin did).
 *
 * op_decode must reject anything malformed before anything is allocated
 * beyond the bounded hash array, and must never trust a length.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ATTR_MASK                                                              \
    (MFS_SET_MODE | MFS_SET_UID | MFS_SET_GID | MFS_SET_ATIME |                \
     MFS_SET_MTIME | MFS_SET_CTIME)

static const uint8_t zero_hash[MFS_HASH_LEN];

static size_t op_size_bound(const mfs_op *op)
{
    /* per chunk at worst a hash and a run header (kind u8, count u32),
     * rounded up to HASH_LEN + 8, and its length (a varint) */
    return 128 + op->namelen + op->vlen + (size_t)op->nseen * STAMP_LEN +
           (size_t)op->nknown * STAMP_LEN + 8 +
           (size_t)op->nparents * STAMP_LEN +
           (size_t)op->nchunks * (HASH_LEN + 8 + 10);
}

void op_encode(mfs_wbuf *w, const mfs_op *op)
{
    /* the header, in schema.h's OP_HDR_* order */
    mfs_put_u8(w, OP_WIRE_VERSION);
    mfs_put_u8(w, op->type);
    mfs_put_u8(w, op->flags);
    mfs_put_u64(w, op->origin);
    mfs_put_u64(w, op->seq);
    mfs_put_u64(w, op->st.hlc);
    mfs_wput_id(w, op->obj);
    switch (op->type) {
    case OP_INODE:
        mfs_put_u32(w, op->mode);
        mfs_put_u32(w, op->uid);
        mfs_put_u32(w, op->gid);
        mfs_put_u64(w, op->rdev);
        mfs_put_u64(w, (uint64_t)op->atime);
        mfs_put_u64(w, (uint64_t)op->mtime);
        mfs_put_u64(w, (uint64_t)op->ctime);
        mfs_put_str16(w, op->name, op->namelen);
        break;
    case OP_MOVE:
        mfs_wput_id(w, op->inode);
        mfs_wput_id(w, op->parent);
        mfs_wput_id(w, op->from);
        mfs_put_str16(w, op->name, op->namelen);
        mfs_put_u32(w, op->nseen);
        mfs_put_bytes(w, op->seen, (size_t)op->nseen * STAMP_LEN);
        break;
    case OP_ATTR:
        mfs_put_u32(w, op->mask);
        mfs_put_u32(w, op->mode);
        mfs_put_u32(w, op->uid);
        mfs_put_u32(w, op->gid);
        mfs_put_u64(w, (uint64_t)op->atime);
        mfs_put_u64(w, (uint64_t)op->mtime);
        mfs_put_u64(w, (uint64_t)op->ctime);
        break;
    case OP_XATTR:
        mfs_put_str16(w, op->name, op->namelen);
        mfs_put_u8(w, op->present);
        mfs_put_blob32(w, op->value, op->vlen);
        break;
    case OP_VERSION: {
        mfs_put_u64(w, op->size);
        mfs_put_u64(w, (uint64_t)op->mtime);
        mfs_put_u64(w, (uint64_t)op->ctime);
        mfs_put_u32(w, op->nparents);
        mfs_put_bytes(w, op->parents, (size_t)op->nparents * STAMP_LEN);
        mfs_put_u32(w, op->nchunks);
        /* runs of holes (kind 0) and literal hashes (kind 1) */
        uint32_t i = 0;
        while (i < op->nchunks) {
            bool hole =
                !memcmp(op->hashes + (size_t)i * HASH_LEN, zero_hash, HASH_LEN);
            uint32_t j = i;
            while (j < op->nchunks && !memcmp(op->hashes + (size_t)j * HASH_LEN,
                                              zero_hash, HASH_LEN) == hole)
                j++;
            mfs_put_u8(w, hole ? 0 : 1);
            mfs_put_u32(w, j - i);
            if (!hole)
                mfs_put_bytes(w, op->hashes + (size_t)i * HASH_LEN,
                              (size_t)(j - i) * HASH_LEN);
            i = j;
        }
        /* content-defined chunks: then each chunk's length */
        for (uint32_t k = 0; (op->flags & OPF_EXTENTS) && k < op->nchunks; k++)
            mfs_put_varint(w, chunk_end(op->ends, op->size, k) -
                                  chunk_start(op->ends, op->size, k));
        if (op->flags & OPF_KNOWN) {
            mfs_put_u32(w, op->nknown);
            mfs_put_bytes(w, op->known, (size_t)op->nknown * STAMP_LEN);
        }
        if (op->flags & OPF_FLOOR)
            mfs_put_u64(w, op->kfloor);
        break;
    }
    }
}

static bool valid_type(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG:
    case S_IFDIR:
    case S_IFLNK:
    case S_IFIFO:
    case S_IFSOCK:
    case S_IFCHR:
    case S_IFBLK:
        return true;
    }
    return false;
}

/* The chunks' lengths of an OPF_EXTENTS version (after its hashes) into
 * op->ends: each at least 1 byte, a chunk of data at most
 * MFS_CHUNK_SIZE (a hole any length), and together the version's size. */
static int extents_decode(mfs_rbuf *r, mfs_op *op)
{
    if (!op->nchunks)
        return op->size ? -EBADMSG : 0;
    op->ends = malloc((size_t)op->nchunks * U64_LEN);
    if (!op->ends)
        return -ENOMEM;
    uint64_t end = 0;
    for (uint32_t i = 0; i < op->nchunks; i++) {
        uint64_t len = mfs_get_varint(r);
        bool hole = !memcmp(op->hashes + (size_t)i * HASH_LEN, zero_hash,
                            HASH_LEN);
        if (r->err || len == 0 || (!hole && len > MFS_CHUNK_SIZE) ||
            len > op->size - end)
            return -EBADMSG;
        end += len;
        mfs_be64_put(op->ends + (size_t)i * U64_LEN, end);
    }
    return end == op->size ? 0 : -EBADMSG;
}

int op_decode(const uint8_t *buf, size_t len, mfs_op *op)
{
    memset(op, 0, sizeof(*op));
    mfs_rbuf r;
    mfs_rbuf_init(&r, buf, len);
    if (mfs_get_u8(&r) != OP_WIRE_VERSION)
        return -EBADMSG;
    op->type = mfs_get_u8(&r);
    op->flags = mfs_get_u8(&r);
    op->origin = mfs_get_u64(&r);
    op->seq = mfs_get_u64(&r);
    op->st.hlc = mfs_get_u64(&r);
    op->st.node = op->origin;
    op->obj = mfs_rget_id(&r);
    if (r.err || !op->origin || !op->seq || !op->st.hlc || id_zero(op->obj))
        return -EBADMSG;
    if (op->flags &
            ~(OPF_MORE | OPF_DROP | OPF_KNOWN | OPF_EXTENTS | OPF_FLOOR) ||
        ((op->flags & (OPF_KNOWN | OPF_EXTENTS | OPF_FLOOR)) &&
         op->type != OP_VERSION))
        return -EBADMSG;
    size_t n;
    switch (op->type) {
    case OP_INODE:
        op->mode = mfs_get_u32(&r);
        op->uid = mfs_get_u32(&r);
        op->gid = mfs_get_u32(&r);
        op->rdev = mfs_get_u64(&r);
        op->atime = (int64_t)mfs_get_u64(&r);
        op->mtime = (int64_t)mfs_get_u64(&r);
        op->ctime = (int64_t)mfs_get_u64(&r);
        op->name = (const char *)mfs_get_str16(&r, &n, 4096);
        op->namelen = n;
        if (r.err || !valid_type(op->mode) || (op->mode & ~(S_IFMT | 07777)))
            return -EBADMSG;
        if (id_eq(op->obj, MFS_ID_ROOT) || id_eq(op->obj, MFS_ID_TRASH) ||
            (id_eq(op->obj, MFS_ID_LOSTFOUND) && !S_ISDIR(op->mode)))
            return -EBADMSG;
        if (S_ISLNK(op->mode) != (n > 0) || memchr(op->name, 0, n))
            return -EBADMSG;
        break;
    case OP_MOVE:
        op->inode = mfs_rget_id(&r);
        op->parent = mfs_rget_id(&r);
        op->from = mfs_rget_id(&r);
        op->name = (const char *)mfs_get_str16(&r, &n, MFS_NAME_MAX);
        op->namelen = n;
        op->nseen = mfs_get_u32(&r);
        if (r.err || op->nseen > MFS_MAX_SEEN)
            return -EBADMSG;
        op->seen = mfs_get_bytes(&r, (size_t)op->nseen * STAMP_LEN);
        if (r.err || id_zero(op->inode) || id_zero(op->parent) ||
            id_eq(op->parent, op->obj) || name_check_n(op->name, n))
            return -EBADMSG;
        if (id_eq(op->obj, MFS_ID_ROOT) || id_eq(op->obj, MFS_ID_TRASH))
            return -EBADMSG;
        break;
    case OP_ATTR:
        op->mask = mfs_get_u32(&r);
        op->mode = mfs_get_u32(&r);
        op->uid = mfs_get_u32(&r);
        op->gid = mfs_get_u32(&r);
        op->atime = (int64_t)mfs_get_u64(&r);
        op->mtime = (int64_t)mfs_get_u64(&r);
        op->ctime = (int64_t)mfs_get_u64(&r);
        if (r.err || !op->mask || (op->mask & ~ATTR_MASK) ||
            (op->mode & ~07777))
            return -EBADMSG;
        break;
    case OP_XATTR:
        op->name = (const char *)mfs_get_str16(&r, &n, MFS_NAME_MAX);
        op->namelen = n;
        op->present = mfs_get_u8(&r);
        op->value = mfs_get_blob32(&r, &op->vlen, MFS_MAX_XATTR);
        if (r.err || n == 0 || memchr(op->name, 0, n) || op->present > 1)
            return -EBADMSG;
        break;
    case OP_VERSION: {
        op->size = mfs_get_u64(&r);
        op->mtime = (int64_t)mfs_get_u64(&r);
        op->ctime = (int64_t)mfs_get_u64(&r);
        op->nparents = mfs_get_u32(&r);
        if (r.err || op->nparents > OP_MAX_PARENTS)
            return -EBADMSG;
        op->parents = mfs_get_bytes(&r, (size_t)op->nparents * STAMP_LEN);
        op->nchunks = mfs_get_u32(&r);
        bool ext = op->flags & OPF_EXTENTS;
        if (r.err || op->nchunks > MFS_MAX_CHUNKS ||
            op->size > (uint64_t)MFS_MAX_CHUNKS * MFS_CHUNK_SIZE ||
            (!ext &&
             op->nchunks != (op->size + MFS_CHUNK_SIZE - 1) / MFS_CHUNK_SIZE))
            return -EBADMSG;
        if ((op->flags & OPF_DROP) &&
            (op->nchunks || !op->nparents || ext))
            return -EBADMSG;
        if (op->nchunks) {
            op->hashes = calloc(op->nchunks, MFS_HASH_LEN);
            if (!op->hashes)
                return -ENOMEM;
        }
        uint32_t i = 0;
        while (i < op->nchunks) {
            uint8_t kind = mfs_get_u8(&r);
            uint32_t cnt = mfs_get_u32(&r);
            if (r.err || kind > 1 || cnt == 0 || cnt > op->nchunks - i)
                goto bad_version;
            if (kind == 1) {
                const uint8_t *h = mfs_get_bytes(&r, (size_t)cnt * HASH_LEN);
                if (!h)
                    goto bad_version;
                memcpy(op->hashes + (size_t)i * HASH_LEN, h,
                       (size_t)cnt * HASH_LEN);
                for (uint32_t k = 0; k < cnt; k++)
                    if (!memcmp(h + (size_t)k * HASH_LEN, zero_hash, HASH_LEN))
                        goto bad_version;
            }
            i += cnt;
        }
        if (ext && extents_decode(&r, op))
            goto bad_version;
        if (op->flags & OPF_KNOWN) {
            op->nknown = mfs_get_u32(&r);
            if (r.err || !op->nknown || op->nknown > OP_MAX_KNOWN)
                goto bad_version;
            op->known = mfs_get_bytes(&r, (size_t)op->nknown * STAMP_LEN);
            if (!op->known)
                goto bad_version;
        }
        if (op->flags & OPF_FLOOR) {
            op->kfloor = mfs_get_u64(&r);
            if (r.err || !op->kfloor)
                goto bad_version;
        }
        break;
    bad_version:
        op_clear(op);
        return -EBADMSG;
    }
    default:
        return -EBADMSG;
    }
    if (r.err || mfs_rbuf_left(&r) != 0) {
        op_clear(op);
        return -EBADMSG;
    }
    return 0;
}

size_t op_head_decode(const void *buf, size_t len, op_head *out)
{
    const uint8_t *p = buf;
    memset(out, 0, sizeof(*out));
    if (len > OP_HDR_VERSION)
        out->version = p[OP_HDR_VERSION];
    if (len > OP_HDR_TYPE)
        out->type = p[OP_HDR_TYPE];
    if (len > OP_HDR_FLAGS)
        out->flags = p[OP_HDR_FLAGS];
    if (len < OP_HDR_SEQ)
        return len < OP_HDR_ORIGIN ? len : OP_HDR_ORIGIN;
    out->origin = mfs_be64_get(p + OP_HDR_ORIGIN);
    if (len < OP_HDR_HLC)
        return OP_HDR_SEQ;
    out->seq = mfs_be64_get(p + OP_HDR_SEQ);
    if (len < OP_HDR_OBJ)
        return OP_HDR_HLC;
    out->hlc = mfs_be64_get(p + OP_HDR_HLC);
    if (len < OP_HDR_LEN)
        return OP_HDR_OBJ;
    out->obj = id_get(p + OP_HDR_OBJ);
    return OP_HDR_LEN;
}

void op_clear(mfs_op *op)
{
    free(op->hashes);
    op->hashes = NULL;
    free(op->ends);
    op->ends = NULL;
}

static void vv_advance(wtx *w, uint64_t origin)
{
    uint8_t k[VV_KEY_LEN], kk[OPS_KEY_LEN];
    mfs_be64_put(k, origin);
    MDB_val v;
    uint64_t seq = 0;
    if (tget(w->s, w->txn, DB_VV, k, VV_KEY_LEN, &v) == 0 &&
        v.mv_size == VV_VAL_LEN)
        seq = mfs_be64_get(v.mv_data);
    uint64_t start = seq;
    for (;;) {
        ops_key_put(kk, origin, seq + 1);
        if (tget(w->s, w->txn, DB_OPS, kk, OPS_KEY_LEN, &v) != 0)
            break;
        seq++;
    }
    if (seq != start) {
        uint8_t b[VV_VAL_LEN];
        mfs_be64_put(b, seq);
        tput(w, DB_VV, k, VV_KEY_LEN, b, VV_VAL_LEN);
    }
}

/* Stores the encoded op in the log and advances the version vector. */
static int op_record(wtx *w, const mfs_op *op)
{
    size_t cap = op_size_bound(op);
    uint8_t *buf = malloc(cap);
    if (!buf)
        return wtx_fail(w, -ENOMEM);
    mfs_wbuf wb;
    mfs_wbuf_init(&wb, buf, cap);
    op_encode(&wb, op);
    if (wb.err) {
        free(buf);
        return wtx_fail(w, -EIO);
    }
    uint8_t k[OPS_KEY_LEN];
    ops_key_put(k, op->origin, op->seq);
    tput(w, DB_OPS, k, OPS_KEY_LEN, buf, wb.len);
    free(buf);
    vv_advance(w, op->origin);
    return w->err;
}

/* A move to the trash may have deleted the inode's last name: collection
 * looks at it once the move is settled. */
static void queue_delete(wtx *w, const mfs_op *op)
{
    if (op->type == OP_MOVE && id_eq(op->parent, MFS_ID_TRASH))
        gc_queue(w, op->inode, (mfs_stamp){0, 0}, op->st);
}

int op_local(wtx *w, mfs_op *op)
{
    if (w->err)
        return w->err;
    mfs_store *s = w->s;
    op->origin = s->node;
    op->seq = ++s->seq;
    op->st = stamp_next(s);
    if (op_record(w, op))
        return w->err;
    queue_delete(w, op);
    return op_apply(w, op);
}

/* A new mesh's root owner and mode, and its lost+found, as ops that every
 * joining replica receives (run once, in the txn that creates the store). */
int op_seed_mesh(wtx *w, const mfs_store_config *cfg)
{
    int64_t now = (int64_t)store_now_ms(w->s) * 1000000;
    mfs_op a = {.type = OP_ATTR,
                .flags = OPF_MORE,
                .obj = MFS_ID_ROOT,
                .mask = MFS_SET_MODE | MFS_SET_UID | MFS_SET_GID |
                        MFS_SET_ATIME | MFS_SET_MTIME | MFS_SET_CTIME,
                .mode = cfg->root_mode & 07777,
                .uid = cfg->root_uid,
                .gid = cfg->root_gid,
                .atime = now,
                .mtime = now,
                .ctime = now};
    op_local(w, &a);
    mfs_op in = {.type = OP_INODE,
                 .flags = OPF_MORE,
                 .obj = MFS_ID_LOSTFOUND,
                 .mode = 0040700,
                 .uid = cfg->root_uid,
                 .gid = cfg->root_gid,
                 .atime = now,
                 .mtime = now,
                 .ctime = now};
    op_local(w, &in);
    mfs_op mv = {.type = OP_MOVE,
                 .obj = MFS_ID_LOSTFOUND,
                 .inode = MFS_ID_LOSTFOUND,
                 .parent = MFS_ID_ROOT,
                 .from = MFS_ID_NONE,
                 .name = MFS_LOSTFOUND_NAME,
                 .namelen = strlen(MFS_LOSTFOUND_NAME)};
    op_local(w, &mv);
    return w->err;
}

int op_apply_remote(wtx *w, const mfs_op *op, const uint8_t *raw, size_t len,
                    bool defer_moves)
{
    uint8_t k[OPS_KEY_LEN];
    ops_key_put(k, op->origin, op->seq);
    MDB_val v;
    /* held: below the vector (perhaps folded out of the log), or logged */
    if (tget(w->s, w->txn, DB_VV, k + OPS_KEY_ORIGIN, VV_KEY_LEN, &v) == 0 &&
        v.mv_size == VV_VAL_LEN && op->seq <= mfs_be64_get(v.mv_data))
        return 1;
    if (tget(w->s, w->txn, DB_OPS, k, OPS_KEY_LEN, &v) == 0)
        return 1;
    if (op->st.hlc > w->s->hlc)
        w->s->hlc = op->st.hlc; /* HLC receive rule */
    tput(w, DB_OPS, k, OPS_KEY_LEN, raw, len);
    vv_advance(w, op->origin);
    queue_delete(w, op);
    if (w->err)
        return w->err;
    if (defer_moves && op->type == OP_MOVE)
        return 0;
    return op_apply(w, op);
}

static void lww32(reg32 *r, uint32_t v, mfs_stamp st)
{
    if (mfs_stamp_cmp(st, r->st) > 0) {
        r->v = v;
        r->st = st;
    }
}

static void lwwt(regtime *r, int64_t v, mfs_stamp st)
{
    if (mfs_stamp_cmp(st, r->st) > 0) {
        r->v = v;
        r->st = st;
    }
}

static int apply_inode(wtx *w, const mfs_op *op)
{
    inode_rec r;
    int rc = inode_get(w->s, w->txn, op->obj, &r);
    if (rc && rc != -ENOENT)
        return wtx_fail(w, rc);
    if (rc == -ENOENT)
        memset(&r, 0, sizeof(r));
    bool typed = r.type == 0;
    if (typed) {
        r.type = op->mode & S_IFMT;
        r.rdev = op->rdev;
        if (op->namelen)
            memcpy(r.target, op->name, op->namelen);
        r.targetlen = op->namelen;
    }
    lww32(&r.mode, op->mode & 07777, op->st);
    lww32(&r.uid, op->uid, op->st);
    lww32(&r.gid, op->gid, op->st);
    lwwt(&r.atime, op->atime, op->st);
    lwwt(&r.mtime, op->mtime, op->st);
    lwwt(&r.ctime, op->ctime, op->st);
    inode_put(w, op->obj, &r);
    if (typed && r.type)
        w->s->hooks->crdt->inode_typed(w, op->obj);
    view_touch_inode(w, op->obj);
    return w->err;
}

static void change_inode(wtx *w, mfs_id id)
{
    if (!w->remote)
        return;
    uint64_t ino;
    objkey k = obj_inode(id);
    if (ino_of_obj(w->s, w->txn, &k, &ino) == 0)
        wtx_change(w, MFS_CHANGE_INODE, ino, NULL);
}

static int apply_attr(wtx *w, const mfs_op *op)
{
    inode_rec r;
    int rc = inode_get(w->s, w->txn, op->obj, &r);
    if (rc && rc != -ENOENT)
        return wtx_fail(w, rc);
    if (rc == -ENOENT)
        memset(&r, 0, sizeof(r)); /* attrs before the inode: keep them */
    if (op->mask & MFS_SET_MODE)
        lww32(&r.mode, op->mode, op->st);
    if (op->mask & MFS_SET_UID)
        lww32(&r.uid, op->uid, op->st);
    if (op->mask & MFS_SET_GID)
        lww32(&r.gid, op->gid, op->st);
    if (op->mask & MFS_SET_ATIME)
        lwwt(&r.atime, op->atime, op->st);
    if (op->mask & MFS_SET_MTIME)
        lwwt(&r.mtime, op->mtime, op->st);
    if (op->mask & MFS_SET_CTIME)
        lwwt(&r.ctime, op->ctime, op->st);
    inode_put(w, op->obj, &r);
    change_inode(w, op->obj);
    return w->err;
}

static int apply_xattr(wtx *w, const mfs_op *op)
{
    uint8_t key[XATTR_KEY_NAME + MFS_NAME_MAX];
    id_put(key, op->obj);
    memcpy(key + XATTR_KEY_NAME, op->name, op->namelen);
    size_t kl = XATTR_KEY_NAME + op->namelen;
    MDB_val v;
    if (tget(w->s, w->txn, DB_XATTRS, key, kl, &v) == 0 &&
        v.mv_size >= XATTR_VAL_DATA) {
        mfs_stamp cur = stamp_get((uint8_t *)v.mv_data + XATTR_VAL_STAMP);
        if (mfs_stamp_cmp(op->st, cur) <= 0)
            return 0;
    }
    uint8_t *val = malloc(XATTR_VAL_DATA + op->vlen);
    if (!val)
        return wtx_fail(w, -ENOMEM);
    stamp_put(val + XATTR_VAL_STAMP, op->st);
    val[XATTR_VAL_PRESENT] = op->present;
    if (op->vlen)
        memcpy(val + XATTR_VAL_DATA, op->value, op->vlen);
    tput(w, DB_XATTRS, key, kl, val, XATTR_VAL_DATA + op->vlen);
    free(val);
    change_inode(w, op->obj);
    return w->err;
}

int op_apply(wtx *w, const mfs_op *op)
{
    if (w->err)
        return w->err;
    switch (op->type) {
    case OP_INODE:
        return apply_inode(w, op);
    case OP_MOVE:
        return tree_apply_move(w, op);
    case OP_ATTR:
        return apply_attr(w, op);
    case OP_XATTR:
        return apply_xattr(w, op);
    case OP_VERSION:
        return content_apply_version(w, op);
    }
    return wtx_fail(w, -EBADMSG);
}

/* ---- the op log's floors (DB_META; snapshot.c folds) ---- */

int oplog_floors_each(mfs_store *s, MDB_txn *txn,
                      int (*fn)(void *arg, uint64_t origin, uint64_t seq,
                                uint64_t hlc),
                      void *arg)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->db[DB_META], &c);
    if (rc)
        return mdb_to_errno(rc);
    MDB_val key = {META_FLOOR_PREFIX_LEN, META_FLOOR_PREFIX}, val;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    int out = 0;
    while (rc == 0 && key.mv_size == META_FLOOR_KEY_LEN &&
           !memcmp(key.mv_data, META_FLOOR_PREFIX, META_FLOOR_PREFIX_LEN)) {
        if (val.mv_size == META_FLOOR_LEN) {
            const uint8_t *kb = key.mv_data, *vb = val.mv_data;
            out = fn(arg, mfs_be64_get(kb + META_FLOOR_KEY_ORIGIN),
                     mfs_be64_get(vb + META_FLOOR_SEQ),
                     mfs_be64_get(vb + META_FLOOR_HLC));
            if (out)
                break;
        }
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return out;
}

static int floor_top(void *arg, uint64_t origin, uint64_t seq, uint64_t hlc)
{
    (void)origin, (void)seq;
    uint64_t *top = arg;
    if (hlc > *top)
        *top = hlc;
    return 0;
}

uint64_t oplog_floor_top(mfs_store *s, MDB_txn *txn)
{
    uint64_t top = 0;
    return oplog_floors_each(s, txn, floor_top, &top) ? 0 : top;
}
