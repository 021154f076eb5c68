/*
 * content.c - inode records and file content.
 *
 * Content is a set of versions per inode: (stamp, size, parents, chunk
 * hashes). A file is cut in MFS_CHUNK_SIZE blocks; a chunk is a block with
 * its trailing zero bytes removed, stored once under its BLAKE2b-256 hash,
 * and an all-zero block is a hole (hash of zeros, nothing stored). Heads are
 * complete versions no complete version supersedes; the shown version is the
 * head with the greatest stamp, the others are conflict copies (view.c).
 *
 * Writes go to unpublished blocks (DB_DIRTY) over a base version; publishing
 * turns them into chunks and a VERSION op whose parent is that base, so a
 * remote version that arrived meanwhile is concurrent, never overwritten.
 * Must never show a version before all its chunks are present.
 */
#include "internal.h"
#include "blake2b.h"
#include "cdc.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const uint8_t zero_hash[MFS_HASH_LEN];

/* ---- inode records ---- */

static void get_reg32(mfs_rbuf *r, reg32 *g)
{
    g->v = mfs_get_u32(r);
    g->st = mfs_rget_stamp(r);
}

static void get_regt(mfs_rbuf *r, regtime *g)
{
    g->v = (int64_t)mfs_get_u64(r);
    g->st = mfs_rget_stamp(r);
}

/* Inode records, store format 3 (schema.h INODE_*): a marker byte (an
 * older record starts with the high byte of its u32 type, always 0), then
 * varints, and each register's stamp only where it differs from the one
 * before (a file's registers are mostly set by one op): about 45 bytes
 * instead of 182. */
/* At most this many pages over one block (dirty.c): each takes two pages
 * of the dirty file, the whole block 17, so past half the block the next
 * write folds them into the block's bytes. */
#define DIRTY_PAGES_MAX 8u

static int inode_decode_compact(mfs_rbuf *r, inode_rec *out)
{
    reg32 *r32[3] = {&out->mode, &out->uid, &out->gid};
    regtime *rt[3] = {&out->atime, &out->mtime, &out->ctime};
    out->type = (uint32_t)mfs_get_varint(r);
    out->rdev = mfs_get_varint(r);
    uint8_t fresh = mfs_get_u8(r); /* bit i: register i has its own stamp */
    mfs_stamp st = {0, 0};
    int64_t prev = 0;
    for (int i = 0; i < 6; i++) {
        if (fresh & (1u << i))
            st = mfs_rget_stamp(r);
        else if (i == 0)
            r->err = -EBADMSG;
        if (i < 3) {
            r32[i]->v = (uint32_t)mfs_get_varint(r);
            r32[i]->st = st;
        } else {
            /* times: atime, then each as a difference to the one before */
            prev = (int64_t)((uint64_t)prev + (uint64_t)mfs_get_svarint(r));
            rt[i - 3]->v = prev;
            rt[i - 3]->st = st;
        }
    }
    out->shown = (mfs_stamp){0, 0};
    if (mfs_get_u8(r))
        out->shown = mfs_rget_stamp(r);
    out->size = mfs_get_varint(r);
    out->blocks = mfs_get_varint(r);
    out->nheads = (uint32_t)mfs_get_varint(r);
    uint64_t n = mfs_get_varint(r);
    const uint8_t *t = n <= 4096 ? mfs_get_bytes(r, n) : NULL;
    if (r->err || !t || r->off != r->len || (fresh & 0xc0))
        return -EIO;
    memcpy(out->target, t, n);
    out->target[n] = 0;
    out->targetlen = n;
    return 0;
}

/* Format 1 and 2 records: fixed fields, every stamp in full. */
static int inode_decode_v1(mfs_rbuf *r, inode_rec *out)
{
    out->type = mfs_get_u32(r);
    out->rdev = mfs_get_u64(r);
    get_reg32(r, &out->mode);
    get_reg32(r, &out->uid);
    get_reg32(r, &out->gid);
    get_regt(r, &out->atime);
    get_regt(r, &out->mtime);
    get_regt(r, &out->ctime);
    out->shown = mfs_rget_stamp(r);
    out->size = mfs_get_u64(r);
    out->blocks = mfs_get_u64(r);
    out->nheads = mfs_get_u32(r);
    SCHEMA_RAT(r, INODE_V1_TARGET);
    size_t n;
    const uint8_t *t = mfs_get_str16(r, &n, 4096);
    if (r->err)
        return -EIO;
    memcpy(out->target, t, n);
    out->target[n] = 0;
    out->targetlen = n;
    return 0;
}

/* Reads id's record of table db into v and starts r on it. */
static int id_rec_get(mfs_store *s, MDB_txn *txn, int db, mfs_id id,
                      MDB_val *v, mfs_rbuf *r)
{
    uint8_t k[ID_KEY_LEN];
    id_put(k, id);
    int rc = tget(s, txn, db, k, ID_KEY_LEN, v);
    if (!rc)
        mfs_rbuf_init(r, v->mv_data, v->mv_size);
    return rc;
}

int inode_get(mfs_store *s, MDB_txn *txn, mfs_id id, inode_rec *out)
{
    MDB_val v;
    mfs_rbuf r;
    int rc = id_rec_get(s, txn, DB_INODES, id, &v, &r);
    if (rc)
        return rc;
    if (v.mv_size &&
        ((const uint8_t *)v.mv_data)[INODE_TAG] == INODE_COMPACT) {
        mfs_get_u8(&r);
        return inode_decode_compact(&r, out);
    }
    return inode_decode_v1(&r, out);
}

int inode_put(wtx *w, mfs_id id, const inode_rec *in)
{
    uint8_t buf[128 + 4096];
    mfs_wbuf wb;
    mfs_wbuf_init(&wb, buf, sizeof(buf));
    const reg32 *r32[3] = {&in->mode, &in->uid, &in->gid};
    const regtime *rt[3] = {&in->atime, &in->mtime, &in->ctime};
    mfs_stamp sts[6] = {in->mode.st, in->uid.st, in->gid.st,
                        in->atime.st, in->mtime.st, in->ctime.st};
    uint8_t fresh = 1;
    for (int i = 1; i < 6; i++)
        if (!stamp_eq(sts[i], sts[i - 1]))
            fresh |= (uint8_t)(1u << i);
    mfs_put_u8(&wb, INODE_COMPACT);
    SCHEMA_WAT(&wb, INODE_TAG + 1);
    mfs_put_varint(&wb, in->type);
    mfs_put_varint(&wb, in->rdev);
    mfs_put_u8(&wb, fresh);
    int64_t prev = 0;
    for (int i = 0; i < 6; i++) {
        if (fresh & (1u << i))
            mfs_wput_stamp(&wb, sts[i]);
        if (i < 3) {
            mfs_put_varint(&wb, r32[i]->v);
        } else {
            /* (wraps alike both ways: any two int64 differ by a uint64) */
            mfs_put_svarint(&wb, (int64_t)((uint64_t)rt[i - 3]->v -
                                           (uint64_t)prev));
            prev = rt[i - 3]->v;
        }
    }
    bool shown = in->shown.hlc || in->shown.node;
    mfs_put_u8(&wb, shown);
    if (shown)
        mfs_wput_stamp(&wb, in->shown);
    mfs_put_varint(&wb, in->size);
    mfs_put_varint(&wb, in->blocks);
    mfs_put_varint(&wb, in->nheads);
    mfs_put_varint(&wb, in->targetlen);
    mfs_put_bytes(&wb, in->target, in->targetlen);
    if (wb.err || in->targetlen > 4096)
        return wtx_fail(w, -EIO);
    uint8_t k[ID_KEY_LEN];
    id_put(k, id);
    return tput(w, DB_INODES, k, ID_KEY_LEN, buf, wb.len);
}

/* ---- versions ---- */

int version_decode(const void *p, size_t len, version_view *vv)
{
    mfs_rbuf r;
    mfs_rbuf_init(&r, p, len);
    uint8_t flags = mfs_get_u8(&r);
    if (flags & ~(OPF_DROP | OPF_EXTENTS | OPF_FLOOR))
        return -EIO;
    vv->size = mfs_get_u64(&r);
    vv->mtime = (int64_t)mfs_get_u64(&r);
    vv->ctime = (int64_t)mfs_get_u64(&r);
    SCHEMA_RAT(&r, VERSION_NPARENTS);
    vv->nparents = mfs_get_u32(&r);
    if (vv->nparents > MFS_MAX_SEEN)
        return -EIO;
    vv->parents = mfs_get_bytes(&r, (size_t)vv->nparents * STAMP_LEN);
    SCHEMA_RAT(&r, VERSION_NCHUNKS(vv->nparents));
    vv->nchunks = mfs_get_u32(&r);
    if (vv->nchunks > MFS_MAX_CHUNKS)
        return -EIO;
    vv->hashes = mfs_get_bytes(&r, (size_t)vv->nchunks * HASH_LEN);
    vv->ends = NULL;
    if ((flags & OPF_EXTENTS) && vv->nchunks) {
        vv->ends = mfs_get_bytes(&r, (size_t)vv->nchunks * U64_LEN);
        if (vv->ends &&
            chunk_end(vv->ends, vv->size, vv->nchunks - 1) != vv->size)
            return -EIO;
    }
    vv->nknown = 0;
    vv->known = NULL;
    vv->kfloor = 0;
    /* records of versions without OPF_KNOWN or OPF_FLOOR end here; with
     * OPF_FLOOR (in the flags byte) the count may be 0 and the floor
     * follows the list */
    if (!r.err && ((flags & OPF_FLOOR) || mfs_rbuf_left(&r))) {
        vv->nknown = mfs_get_u32(&r);
        if (vv->nknown > OP_MAX_KNOWN || (!vv->nknown && !(flags & OPF_FLOOR)))
            return -EIO;
        vv->known = mfs_get_bytes(&r, (size_t)vv->nknown * STAMP_LEN);
        if (flags & OPF_FLOOR) {
            vv->kfloor = mfs_get_u64(&r);
            if (!vv->kfloor)
                return -EIO;
        }
    }
    vv->flags = flags | (vv->nknown ? OPF_KNOWN : 0);
    return r.err || mfs_rbuf_left(&r) ? -EIO : 0;
}

void version_encode(mfs_wbuf *wb, const mfs_op *op)
{
    mfs_put_u8(wb, op->flags & (OPF_DROP | OPF_EXTENTS | OPF_FLOOR));
    mfs_put_u64(wb, op->size);
    mfs_put_u64(wb, (uint64_t)op->mtime);
    mfs_put_u64(wb, (uint64_t)op->ctime);
    SCHEMA_WAT(wb, VERSION_NPARENTS);
    mfs_put_u32(wb, op->nparents);
    mfs_put_bytes(wb, op->parents, (size_t)op->nparents * STAMP_LEN);
    SCHEMA_WAT(wb, VERSION_NCHUNKS(op->nparents));
    mfs_put_u32(wb, op->nchunks);
    mfs_put_bytes(wb, op->hashes, (size_t)op->nchunks * HASH_LEN);
    if (op->flags & OPF_EXTENTS)
        mfs_put_bytes(wb, op->ends, (size_t)op->nchunks * U64_LEN);
    if (op->nknown || (op->flags & OPF_FLOOR)) {
        mfs_put_u32(wb, op->nknown);
        mfs_put_bytes(wb, op->known, (size_t)op->nknown * STAMP_LEN);
    }
    if (op->flags & OPF_FLOOR)
        mfs_put_u64(wb, op->kfloor);
}

bool extents_valid(const version_view *v)
{
    uint64_t start = 0;
    for (uint32_t i = 0; v->ends && i < v->nchunks; i++) {
        uint64_t end = chunk_end(v->ends, v->size, i);
        bool hole =
            !memcmp(v->hashes + (size_t)i * HASH_LEN, zero_hash, HASH_LEN);
        if (end <= start || (!hole && end - start > MFS_CHUNK_SIZE))
            return false;
        start = end;
    }
    return true;
}

uint32_t chunk_at(const uint8_t *ends, uint32_t n, uint64_t off)
{
    if (!ends) {
        uint64_t i = off / MFS_CHUNK_SIZE;
        return i < n ? (uint32_t)i : n;
    }
    uint32_t lo = 0, hi = n; /* the first chunk that ends past off */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (mfs_be64_get(ends + (size_t)mid * U64_LEN) > off)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static int version_get(mfs_store *s, MDB_txn *txn, mfs_id id, mfs_stamp st,
                       version_view *vv)
{
    uint8_t k[VKEY_LEN];
    vkey_put(k, id, st);
    MDB_val v;
    int rc = tget(s, txn, DB_VERSIONS, k, VKEY_LEN, &v);
    if (rc)
        return rc;
    return version_decode(v.mv_data, v.mv_size, vv);
}

int content_heads(mfs_store *s, MDB_txn *txn, mfs_id id, mfs_stamp *out,
                  int max)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->db[DB_HEADS], &c);
    if (rc)
        return mdb_to_errno(rc);
    uint8_t k[ID_KEY_LEN];
    id_put(k, id);
    MDB_val key = {ID_KEY_LEN, k}, val;
    int n = 0;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == VKEY_LEN &&
           !memcmp(key.mv_data, k, ID_LEN)) {
        if (n < max)
            out[n] = stamp_get((uint8_t *)key.mv_data + VKEY_STAMP);
        n++;
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return n < max ? n : max;
}

uint64_t content_version_size(mfs_store *s, MDB_txn *txn, mfs_id id,
                              mfs_stamp st)
{
    version_view vv;
    return version_get(s, txn, id, st, &vv) == 0 ? vv.size : 0;
}

static uint64_t version_blocks(const version_view *v)
{
    uint64_t nz = 0; /* bytes in chunks that are not holes */
    for (uint32_t i = 0; i < v->nchunks; i++)
        if (memcmp(v->hashes + (size_t)i * HASH_LEN, zero_hash, HASH_LEN))
            nz += v->ends ? chunk_end(v->ends, v->size, i) -
                                chunk_start(v->ends, v->size, i)
                          : MFS_CHUNK_SIZE;
    uint64_t b = (nz + 511) / 512;
    uint64_t cap = (v->size + 511) / 512;
    return b < cap ? b : cap;
}

int content_refresh(wtx *w, mfs_id id)
{
    inode_rec in;
    if (inode_get(w->s, w->txn, id, &in))
        return w->err;
    mfs_stamp heads[MFS_MAX_HEADS];
    int n = content_heads(w->s, w->txn, id, heads, MFS_MAX_HEADS);
    if (n < 0)
        return wtx_fail(w, n);
    mfs_stamp shown = n ? heads[n - 1] : (mfs_stamp){0, 0};
    if (stamp_eq(shown, in.shown) && in.nheads == (uint32_t)n)
        return 0;
    bool changed = !stamp_eq(shown, in.shown);
    uint64_t was = in.size;
    in.shown = shown;
    in.nheads = (uint32_t)n;
    in.size = 0;
    in.blocks = 0;
    if (n) {
        version_view v;
        if (version_get(w->s, w->txn, id, shown, &v))
            return wtx_fail(w, -EIO);
        in.size = v.size;
        in.blocks = version_blocks(&v);
    }
    w->s->hooks->crdt->inode_resized(w, id, in.type, was, in.size);
    inode_put(w, id, &in);
    if (changed && w->remote) {
        uint64_t ino;
        objkey ok = obj_inode(id);
        if (ino_of_obj(w->s, w->txn, &ok, &ino) == 0)
            wtx_change(w, MFS_CHANGE_INODE, ino, NULL);
    }
    return w->err;
}

/* How far back supersede and unwant_ancestors follow a version's
 * ancestors (the recursion's depth). */
#define ANCESTRY_MAX 64

/* Version ver of inode id is superseded by the complete version by: it
 * never shows again. Queued for collection. An incomplete one also stops
 * waiting for its chunks (a node that was away would otherwise fetch
 * every rewrite it missed, and after collection nobody holds them), and
 * its own parents are superseded too (by descends from them). Each is
 * queued with its child on the way as the cause, as the node that wrote
 * them queued it: so a version's time in the trash (and its cause) is the
 * same on every member, whichever of its descendants completed there
 * first (a node that was away gets a rewrite storm's last version only). */
static void supersede(wtx *w, mfs_id id, mfs_stamp ver, mfs_stamp by, int depth)
{
    uint8_t k[VKEY_LEN];
    vkey_put(k, id, ver);
    MDB_val v;
    if (tget(w->s, w->txn, DB_SUPERSEDED, k, VKEY_LEN, &v) == 0)
        return; /* and so are its ancestors */
    tput(w, DB_SUPERSEDED, k, VKEY_LEN, "", 0);
    if (tget(w->s, w->txn, DB_HEADS, k, VKEY_LEN, &v) == 0) {
        tdel(w, DB_HEADS, k, VKEY_LEN);
        view_touch_inode(w, id); /* a conflict copy may go */
    }
    gc_queue(w, id, ver, by);
    if (tget(w->s, w->txn, DB_VMISSING, k, VKEY_LEN, &v) != 0 ||
        depth >= ANCESTRY_MAX)
        return;
    version_view vv;
    if (version_get(w->s, w->txn, id, ver, &vv))
        return; /* not arrived yet: it lands superseded (apply_version) */
    uint32_t n = vv.nchunks,
             np = vv.nparents > OP_MAX_PARENTS ? OP_MAX_PARENTS : vv.nparents;
    uint8_t parents[OP_MAX_PARENTS * STAMP_LEN];
    memcpy(parents, vv.parents, (size_t)np * STAMP_LEN);
    uint8_t *h = n ? malloc((size_t)n * HASH_LEN) : NULL;
    if (n && !h) {
        wtx_fail(w, -ENOMEM);
        return;
    }
    if (n)
        memcpy(h, vv.hashes, (size_t)n * HASH_LEN);
    for (uint32_t i = 0; i < n && !w->err; i++) {
        uint8_t wk[WANT_KEY_LEN];
        want_key_put(wk, h + (size_t)i * HASH_LEN, k);
        tdel(w, DB_WANT, wk, WANT_KEY_LEN);
    }
    free(h);
    /* DB_VMISSING stays: the version is not complete (parent shortcut) */
    for (uint32_t i = 0; i < np && !w->err; i++)
        supersede(w, id, stamp_get(parents + (size_t)i * STAMP_LEN), ver,
                  depth + 1);
}

/* Stops asking for the chunks of version ver's incomplete ancestors:
 * ver, once complete, supersedes them, so fetching them would only fetch
 * what never shows (a node that was away would fetch every rewrite it
 * missed; after collection nobody holds them). Returns want rows dropped. */
static size_t unwant_ancestors(wtx *w, mfs_id id, const uint8_t *parents,
                               uint32_t np, int depth)
{
    size_t dropped = 0;
    for (uint32_t i = 0;
         i < np && i < OP_MAX_PARENTS && !w->err && depth < ANCESTRY_MAX; i++) {
        mfs_stamp p = stamp_get(parents + (size_t)i * STAMP_LEN);
        uint8_t k[VKEY_LEN];
        vkey_put(k, id, p);
        MDB_val v;
        version_view pv;
        if (tget(w->s, w->txn, DB_VMISSING, k, VKEY_LEN, &v) != 0 ||
            version_get(w->s, w->txn, id, p, &pv) != 0)
            continue;
        uint32_t n = pv.nchunks, pn = pv.nparents > OP_MAX_PARENTS
                                          ? OP_MAX_PARENTS
                                          : pv.nparents;
        uint8_t *buf =
            malloc((size_t)n * HASH_LEN + (size_t)pn * STAMP_LEN + 1);
        if (!buf) {
            wtx_fail(w, -ENOMEM);
            break;
        }
        memcpy(buf, pv.hashes, (size_t)n * HASH_LEN);
        memcpy(buf + (size_t)n * HASH_LEN, pv.parents, (size_t)pn * STAMP_LEN);
        size_t here = 0;
        for (uint32_t j = 0; j < n && !w->err; j++) {
            uint8_t wk[WANT_KEY_LEN];
            want_key_put(wk, buf + (size_t)j * HASH_LEN, k);
            MDB_val key = {WANT_KEY_LEN, wk};
            wtx_undo_note(w, DB_WANT, wk, WANT_KEY_LEN);
            int rc = mdb_del(w->txn, w->s->db[DB_WANT], &key, NULL);
            if (rc == 0) {
                here++;
                wtx_mut(w);
            }
            else if (rc != MDB_NOTFOUND)
                wtx_fail(w, rc);
        }
        dropped += here;
        if (here) /* an ancestor with none left was done before */
            dropped += unwant_ancestors(w, id, buf + (size_t)n * HASH_LEN, pn,
                                        depth + 1);
        free(buf);
    }
    return dropped;
}

/* A version whose chunks are all present takes effect. */
static int version_complete(wtx *w, mfs_id id, mfs_stamp st,
                            const uint8_t *parents, uint32_t np, bool drop)
{
    uint8_t k[VKEY_LEN];
    for (uint32_t i = 0; i < np; i++)
        supersede(w, id, stamp_get(parents + (size_t)i * STAMP_LEN), st, 0);
    vkey_put(k, id, st);
    MDB_val v;
    if (!drop && tget(w->s, w->txn, DB_SUPERSEDED, k, VKEY_LEN, &v) != 0)
        tput(w, DB_HEADS, k, VKEY_LEN, "", 0);
    else if (drop)
        gc_queue(w, id, st, st); /* a drop is garbage once it did its work */
    view_touch_inode(w, id);
    return w->err;
}

int content_apply_version(wtx *w, const mfs_op *op)
{
    uint8_t k[VKEY_LEN];
    vkey_put(k, op->obj, op->st);
    MDB_val v;
    if (tget(w->s, w->txn, DB_VERSIONS, k, VKEY_LEN, &v) == 0)
        return 0;
    size_t cap = 64 + (size_t)op->nparents * STAMP_LEN +
                 (size_t)op->nchunks * (HASH_LEN + U64_LEN) +
                 (size_t)op->nknown * STAMP_LEN + 8;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return wtx_fail(w, -ENOMEM);
    mfs_wbuf wb;
    mfs_wbuf_init(&wb, buf, cap);
    version_encode(&wb, op);
    tput(w, DB_VERSIONS, k, VKEY_LEN, buf, wb.len);
    free(buf);
    w->s->hooks->crdt->chunks_named(w->s, op->hashes, op->nchunks);

    /* A chunk that a complete parent has at the same place is held: only
     * the others are looked up (a small edit of a large file changes a few
     * of its thousands of chunks; looking all 16,384 chunks of a 1 GiB file
     * up made each fsync after a 4 KiB write cost 12.3 ms, bench/fs
     * bigfsync). Collection must keep this true: a version whose chunks it
     * frees loses its record. */
    version_view pv;
    uint8_t *ph = NULL; /* the parent's hashes, copied: the loop writes */
    uint32_t pn = 0;
    if (op->nparents >= 1) {
        uint8_t pk[VKEY_LEN];
        vkey_put(pk, op->obj, stamp_get(op->parents));
        if (tget(w->s, w->txn, DB_VMISSING, pk, VKEY_LEN, &v) == -ENOENT &&
            version_get(w->s, w->txn, op->obj, stamp_get(op->parents), &pv) ==
                0 &&
            pv.nchunks &&
            (ph = malloc((size_t)pv.nchunks * HASH_LEN)) != NULL) {
            memcpy(ph, pv.hashes, (size_t)pv.nchunks * HASH_LEN);
            pn = pv.nchunks;
        }
    }
    /* superseded before it arrived (a descendant came first and is
     * complete): it never shows, so its chunks are not asked for */
    bool sup = tget(w->s, w->txn, DB_SUPERSEDED, k, VKEY_LEN, &v) == 0;
    uint32_t missing = 0;
    for (uint32_t i = 0; i < op->nchunks && !w->err; i++) {
        const uint8_t *h = op->hashes + (size_t)i * HASH_LEN;
        if (!memcmp(h, zero_hash, HASH_LEN))
            continue;
        if (i < pn && !memcmp(h, ph + (size_t)i * HASH_LEN, HASH_LEN))
            continue;
        /* (content-defined chunks after an insertion or deletion: the
         * same chunks, counted from the end) */
        uint32_t back = op->nchunks - i;
        if (back <= pn &&
            !memcmp(h, ph + (size_t)(pn - back) * HASH_LEN, HASH_LEN))
            continue;
        if (tget(w->s, w->txn, DB_CHUNKS, h, CHUNKS_KEY_LEN, &v) == 0)
            continue;
        if (sup) {
            missing++;
            continue;
        }
        uint8_t wk[WANT_KEY_LEN];
        want_key_put(wk, h, k);
        MDB_val key = {WANT_KEY_LEN, wk}, val = {0, ""};
        wtx_undo_note(w, DB_WANT, wk, WANT_KEY_LEN);
        int rc =
            mdb_put(w->txn, w->s->db[DB_WANT], &key, &val, MDB_NOOVERWRITE);
        if (rc == 0) {
            missing++;
            wtx_mut(w);
        }
        else if (rc != MDB_KEYEXIST)
            wtx_fail(w, rc);
    }
    free(ph);
    /* the inode record must exist for the registers even before OP_INODE */
    inode_rec in;
    int rc = inode_get(w->s, w->txn, op->obj, &in);
    if (rc == -ENOENT) {
        memset(&in, 0, sizeof(in));
        rc = 0;
    }
    if (rc)
        return wtx_fail(w, rc);
    if (!(op->flags & OPF_DROP)) {
        if (mfs_stamp_cmp(op->st, in.mtime.st) > 0) {
            in.mtime.v = op->mtime;
            in.mtime.st = op->st;
        }
        if (mfs_stamp_cmp(op->st, in.ctime.st) > 0) {
            in.ctime.v = op->ctime;
            in.ctime.st = op->st;
        }
    }
    inode_put(w, op->obj, &in);
    if (missing) {
        uint8_t b[VMISSING_VAL_LEN];
        mfs_be32_put(b, missing);
        tput(w, DB_VMISSING, k, VKEY_LEN, b, VMISSING_VAL_LEN);
        /* its record alone can change what a deleted name shows: a head
         * that is its parent counts as seen by a delete that saw it
         * (view_resurrects), whichever arrived first (replication
         * simulator, long seed 1186: a node that got the delete, then
         * the head, then this version incomplete, kept showing the file
         * the others had hidden and collected) */
        view_touch_inode(w, op->obj);
        if (!sup)
            unwant_ancestors(w, op->obj, op->parents, op->nparents, 0);
        for (uint32_t i = 0; sup && i < op->nparents && !w->err; i++)
            supersede(w, op->obj,
                      stamp_get(op->parents + (size_t)i * STAMP_LEN), op->st,
                      0);
        return w->err;
    }
    return version_complete(w, op->obj, op->st, op->parents, op->nparents,
                            op->flags & OPF_DROP);
}

/* ---- chunks ---- */

static void hash_block(uint8_t out[HASH_LEN], const void *data, size_t len)
{
    mfs_blake2b256(out, data, len);
}

static size_t trim_zeros(const uint8_t *p, size_t len)
{
    while (len > 0 && p[len - 1] == 0)
        len--;
    return len;
}

int mfs_store_chunk_has(mfs_store *s, const uint8_t hash[MFS_HASH_LEN])
{
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    MDB_val v;
    rc = tget(s, txn, DB_CHUNKS, hash, CHUNKS_KEY_LEN, &v);
    store_read_end(s, txn);
    return rc == 0 ? 1 : (rc == -ENOENT ? 0 : rc);
}

ssize_t mfs_store_chunk_get(mfs_store *s, const uint8_t hash[MFS_HASH_LEN],
                            void *buf, size_t cap)
{
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    MDB_val v;
    rc = tget(s, txn, DB_CHUNKS, hash, CHUNKS_KEY_LEN, &v);
    ssize_t out = rc;
    if (rc == 0) {
        size_t len = chunk_val_len(&v);
        out = (ssize_t)len;
        if (buf && cap >= MFS_CHUNK_SIZE)
            out = chunk_val_copy(s, &v, buf);
        else if (buf && cap >= len) {
            uint8_t *tmp = malloc(MFS_CHUNK_SIZE);
            out = tmp ? chunk_val_copy(s, &v, tmp) : -ENOMEM;
            if (out > 0)
                memcpy(buf, tmp, (size_t)out);
            free(tmp);
        } else if (buf && cap)
            out = -ERANGE;
    }
    store_read_end(s, txn);
    return out;
}

struct chunk_put_arg {
    const uint8_t *hash;
    const void *data;
    size_t len;
};

/* Stores a chunk (absent so far) and lets every version waiting for it
 * count down; a version whose last chunk arrives takes effect. */
static int chunk_arrived(wtx *w, const uint8_t *hash);

static int chunk_store(wtx *w, const uint8_t *hash, const void *data,
                       size_t len)
{
    if (chunk_val_put(w, hash, data, len))
        return w->err;
    return chunk_arrived(w, hash);
}

/* chunk_store of the n chunks (hash[i]: len[i] bytes at data[i]) that are
 * not here yet, each once (the same bytes may come twice), those for the
 * pack files a run per system call (chunk_vals_put). Reorders the
 * arrays. */
static int chunks_store_new(wtx *w, size_t n, const uint8_t **hash,
                            const uint8_t **data, size_t *len)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool twice = false;
        for (size_t j = 0; j < k && !twice; j++)
            twice = !memcmp(hash[j], hash[i], HASH_LEN);
        MDB_val cv;
        if (twice ||
            tget(w->s, w->txn, DB_CHUNKS, hash[i], CHUNKS_KEY_LEN, &cv) == 0)
            continue;
        hash[k] = hash[i];
        data[k] = data[i];
        len[k++] = len[i];
    }
    if (chunk_vals_put(w, k, hash, data, len) == 0)
        for (size_t i = 0; i < k && !w->err; i++)
            chunk_arrived(w, hash[i]);
    return w->err;
}

/* Chunk hash is here now: every version waiting for it gets one step
 * closer. */
static int chunk_arrived(wtx *w, const uint8_t *hash)
{
    struct chunk_put_arg aa = {hash, NULL, 0}, *a = &aa;
    MDB_val v;
    MDB_cursor *c;
    int rc = mdb_cursor_open(w->txn, w->s->db[DB_WANT], &c);
    if (rc)
        return wtx_fail(w, rc);
    MDB_val key = {HASH_LEN, (void *)a->hash}, val;
    uint8_t(*vk)[VKEY_LEN] = NULL; /* the want keys' version keys */
    size_t n = 0, cap = 0;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == WANT_KEY_LEN &&
           !memcmp(key.mv_data, a->hash, HASH_LEN)) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            void *nv = realloc(vk, cap * VKEY_LEN);
            if (!nv)
                break;
            vk = nv;
        }
        memcpy(vk[n++], (uint8_t *)key.mv_data + WANT_KEY_VKEY, VKEY_LEN);
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    for (size_t i = 0; i < n && !w->err; i++) {
        uint8_t wk[WANT_KEY_LEN];
        want_key_put(wk, a->hash, vk[i]);
        tdel(w, DB_WANT, wk, WANT_KEY_LEN);
        if (tget(w->s, w->txn, DB_VMISSING, vk[i], VKEY_LEN, &v) != 0)
            continue;
        uint32_t m = mfs_be32_get(v.mv_data);
        if (m > 1) {
            uint8_t b[VMISSING_VAL_LEN];
            mfs_be32_put(b, m - 1);
            tput(w, DB_VMISSING, vk[i], VKEY_LEN, b, VMISSING_VAL_LEN);
            continue;
        }
        tdel(w, DB_VMISSING, vk[i], VKEY_LEN);
        /* a version that now takes effect is news for the kernel, also when
         * a local write brought its last chunk (content_write) */
        w->remote = true;
        mfs_id id = id_get(vk[i] + VKEY_INODE);
        mfs_stamp st = stamp_get(vk[i] + VKEY_STAMP);
        version_view vv;
        if (version_get(w->s, w->txn, id, st, &vv)) {
            wtx_fail(w, -EIO);
            break;
        }
        /* parents point into the LMDB value; copy before writing */
        uint8_t parents[OP_MAX_PARENTS * STAMP_LEN];
        uint32_t np =
            vv.nparents > OP_MAX_PARENTS ? OP_MAX_PARENTS : vv.nparents;
        memcpy(parents, vv.parents, (size_t)np * STAMP_LEN);
        version_complete(w, id, st, parents, np, vv.flags & OPF_DROP);
    }
    free(vk);
    return w->err;
}

static int chunk_put_tx(wtx *w, void *arg)
{
    struct chunk_put_arg *a = arg;
    w->remote = true; /* completing a version is a change the kernel hears of */
    MDB_val v;
    if (tget(w->s, w->txn, DB_CHUNKS, a->hash, CHUNKS_KEY_LEN, &v) == 0)
        return 0;
    return chunk_store(w, a->hash, a->data, a->len);
}

int mfs_store_chunk_put(mfs_store *s, const uint8_t hash[MFS_HASH_LEN],
                        const void *data, size_t len)
{
    if (len == 0 || len > MFS_CHUNK_SIZE ||
        ((const uint8_t *)data)[len - 1] == 0)
        return -EBADMSG;
    uint8_t h[HASH_LEN];
    hash_block(h, data, len);
    if (memcmp(h, hash, HASH_LEN))
        return -EBADMSG;
    struct chunk_put_arg a = {hash, data, len};
    int rc = store_write(s, chunk_put_tx, &a);
    return rc;
}

struct chunks_put_arg {
    const mfs_chunk_in *v;
    size_t n;
};

static int chunks_put_tx(wtx *w, void *arg)
{
    struct chunks_put_arg *a = arg;
    w->remote = true;
    for (size_t i = 0; i < a->n && !w->err; i++) {
        MDB_val v;
        if (a->v[i].len == 0 || tget(w->s, w->txn, DB_CHUNKS, a->v[i].hash,
                                     CHUNKS_KEY_LEN, &v) == 0)
            continue;
        chunk_store(w, a->v[i].hash, a->v[i].data, a->v[i].len);
    }
    return w->err;
}

int mfs_store_chunks_put(mfs_store *s, mfs_chunk_in *v, size_t n)
{
    size_t good = 0;
    enum { BATCH = 64 };
    for (size_t at = 0; at < n; at += BATCH) { /* hashed several at once */
        size_t k = n - at < BATCH ? n - at : BATCH, lens[BATCH];
        const uint8_t *data[BATCH];
        uint8_t h[BATCH * HASH_LEN];
        for (size_t i = 0; i < k; i++) {
            mfs_chunk_in *c = &v[at + i];
            const uint8_t *d = c->data;
            if (c->len == 0 || c->len > MFS_CHUNK_SIZE || d[c->len - 1] == 0)
                c->len = 0;
            data[i] = d;
            lens[i] = c->len;
        }
        mfs_blake2b256_many(h, data, lens, k);
        for (size_t i = 0; i < k; i++) {
            mfs_chunk_in *c = &v[at + i];
            if (c->len && memcmp(h + i * HASH_LEN, c->hash, HASH_LEN))
                c->len = 0;
            good += c->len != 0;
        }
    }
    if (!good)
        return 0;
    struct chunks_put_arg a = {v, n};
    int rc = store_write(s, chunks_put_tx, &a);
    return rc < 0 ? rc : (int)good;
}

ssize_t mfs_store_chunks_wanted_by(mfs_store *s, const uint8_t *after,
                                   uint8_t *out, uint64_t *origins,
                                   size_t max)
{
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    MDB_cursor *c;
    rc = mdb_cursor_open(txn, s->db[DB_WANT], &c);
    if (rc) {
        store_read_end(s, txn);
        return mdb_to_errno(rc);
    }
    MDB_val key = {0}, val;
    size_t n = 0;
    uint8_t from[HASH_LEN + 1];
    if (after) {
        /* the first key above every key of hash *after */
        memcpy(from, after, HASH_LEN);
        from[HASH_LEN] = 0xff;
        key.mv_size = sizeof from;
        key.mv_data = from;
    }
    rc = mdb_cursor_get(c, &key, &val, after ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0 && n < max) {
        /* key: schema.h WANT_KEY_* */
        if (after && memcmp(key.mv_data, after, HASH_LEN) <= 0) {
            rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
            continue;
        }
        if (n == 0 || memcmp(out + (n - 1) * HASH_LEN, key.mv_data, HASH_LEN)) {
            memcpy(out + n * HASH_LEN, key.mv_data, HASH_LEN);
            if (origins)
                origins[n] = key.mv_size >= WANT_KEY_LEN
                                 ? mfs_be64_get((uint8_t *)key.mv_data +
                                                WANT_KEY_STAMP_NODE)
                                 : 0;
            n++;
        }
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    store_read_end(s, txn);
    return (ssize_t)n;
}

ssize_t mfs_store_chunks_wanted(mfs_store *s, uint8_t *out, size_t max)
{
    return mfs_store_chunks_wanted_by(s, NULL, out, NULL, max);
}

/* ---- unpublished writes ---- */

int dinfo_get(mfs_store *s, MDB_txn *txn, mfs_id id, dinfo_rec *out)
{
    MDB_val v;
    mfs_rbuf r;
    int rc = id_rec_get(s, txn, DB_DINFO, id, &v, &r);
    if (rc)
        return rc;
    out->size = mfs_get_u64(&r);
    out->mtime = (int64_t)mfs_get_u64(&r);
    out->ctime = (int64_t)mfs_get_u64(&r);
    out->since_ms = mfs_get_u64(&r);
    out->base = mfs_rget_stamp(&r);
    out->trunc = mfs_get_u64(&r);
    return r.err ? -EIO : 0;
}

int dinfo_put(wtx *w, mfs_id id, const dinfo_rec *d)
{
    uint8_t buf[64], k[ID_KEY_LEN];
    mfs_wbuf wb;
    mfs_wbuf_init(&wb, buf, sizeof(buf));
    mfs_put_u64(&wb, d->size);
    mfs_put_u64(&wb, (uint64_t)d->mtime);
    mfs_put_u64(&wb, (uint64_t)d->ctime);
    mfs_put_u64(&wb, d->since_ms);
    mfs_wput_stamp(&wb, d->base);
    mfs_put_u64(&wb, d->trunc);
    id_put(k, id);
    return tput(w, DB_DINFO, k, ID_KEY_LEN, buf, wb.len);
}

/* Loads (or starts) the unpublished state of a regular file. */
static int dinfo_load(wtx *w, mfs_id id, dinfo_rec *d, inode_rec *in)
{
    int rc = inode_get(w->s, w->txn, id, in);
    if (rc)
        return wtx_fail(w, rc);
    if (in->type != S_IFREG)
        return wtx_fail(w, in->type == S_IFDIR ? -EISDIR : -EINVAL);
    rc = dinfo_get(w->s, w->txn, id, d);
    if (rc == 0)
        return 0;
    if (rc != -ENOENT)
        return wtx_fail(w, rc);
    d->size = in->size;
    d->mtime = in->mtime.v;
    d->ctime = in->ctime.v;
    d->since_ms = mfs_store_wall_ms(w->s); /* (a local age: publish_due) */
    d->base = in->shown;
    d->trunc = in->size;
    /* blocks a kill -9 left behind without their record are stale */
    return dirty_del_from(w, id, 0);
}

/* Bytes [pos, pos + len) of a version with extents, as far as it reaches
 * before trunc, into out; the rest of out is zeros. Returns how far it
 * reached (0 past trunc or the end) or -EIO. */
static ssize_t extents_read(mfs_store *s, MDB_txn *txn, const version_view *v,
                            uint64_t trunc, uint64_t pos, uint8_t *out,
                            size_t len)
{
    uint64_t lim = trunc < v->size ? trunc : v->size;
    size_t have = pos >= lim ? 0 : (size_t)(lim - pos < len ? lim - pos : len);
    memset(out, 0, len);
    for (uint32_t i = chunk_at(v->ends, v->nchunks, pos);
         i < v->nchunks && chunk_start(v->ends, v->size, i) < pos + have;
         i++) {
        const uint8_t *h = v->hashes + (size_t)i * HASH_LEN;
        uint64_t cs = chunk_start(v->ends, v->size, i);
        uint64_t from = cs > pos ? cs : pos; /* this chunk's part */
        uint64_t to = chunk_end(v->ends, v->size, i);
        to = to < pos + have ? to : pos + have;
        MDB_val cv;
        if (!memcmp(h, zero_hash, HASH_LEN))
            continue;
        if (tget(s, txn, DB_CHUNKS, h, CHUNKS_KEY_LEN, &cv) ||
            chunk_val_read(s, &cv, (size_t)(from - cs), out + (from - pos),
                           (size_t)(to - from)) < 0)
            return -EIO;
    }
    return (ssize_t)have;
}

/* Block blk of version base (NULL: none) as far as trunc, into out;
 * the meaningful length. */
static ssize_t base_block(mfs_store *s, MDB_txn *txn, const version_view *base,
                          uint64_t trunc, uint64_t blk, uint8_t *out)
{
    if (base && base->ends)
        return extents_read(s, txn, base, trunc, blk * MFS_CHUNK_SIZE, out,
                            MFS_CHUNK_SIZE);
    if (!base || blk * MFS_CHUNK_SIZE >= trunc || blk >= base->nchunks)
        return 0;
    const uint8_t *h = base->hashes + blk * HASH_LEN;
    MDB_val v;
    if (!memcmp(h, zero_hash, HASH_LEN))
        return 0;
    if (tget(s, txn, DB_CHUNKS, h, CHUNKS_KEY_LEN, &v))
        return -EIO;
    return chunk_val_copy(s, &v, out);
}

/* Lays id's stream chunks (DB_DCHUNKS) over block blk, whose first have
 * bytes out holds (the rest of out is not set); the new length. */
static ssize_t stream_over(mfs_store *s, MDB_txn *txn, mfs_id id, uint64_t blk,
                           uint8_t *out, ssize_t have)
{
    uint64_t pos = blk * MFS_CHUNK_SIZE, end = pos + MFS_CHUNK_SIZE;
    uint64_t at = pos, cs;
    uint32_t len;
    uint8_t h[HASH_LEN];
    while (at < end && dirty_chunk_at(s, txn, id, at, &cs, &len, h) == 0 &&
           cs < end) {
        uint64_t from = cs > pos ? cs : pos, to = cs + len < end ? cs + len
                                                                  : end;
        if ((uint64_t)have < from - pos)
            memset(out + have, 0, (size_t)(from - pos - (uint64_t)have));
        memset(out + (from - pos), 0, (size_t)(to - from));
        MDB_val v;
        if (memcmp(h, zero_hash, HASH_LEN) &&
            (tget(s, txn, DB_CHUNKS, h, CHUNKS_KEY_LEN, &v) ||
             chunk_val_read(s, &v, (size_t)(from - cs), out + (from - pos),
                            (size_t)(to - from)) < 0))
            return -EIO;
        if ((uint64_t)have < to - pos)
            have = (ssize_t)(to - pos);
        at = cs + len;
    }
    return have;
}

/* Reads block blk as it is now (dirty bytes, else a dirty reference, else
 * base, else zeros; block_load then lays the dirty pages over it) into
 * out (MFS_CHUNK_SIZE bytes); returns the meaningful length. *was_ref (if
 * not NULL) tells whether it came from a reference, which a caller that
 * stores the block as bytes must drop. */
static ssize_t block_below(mfs_store *s, MDB_txn *txn, MDB_txn *dtxn,
                           mfs_id id, const version_view *base,
                           uint64_t trunc, uint64_t blk, uint8_t *out,
                           bool *was_ref)
{
    MDB_val v;
    uint8_t ref[MFS_HASH_LEN];
    if (was_ref)
        *was_ref = false;
    if (dtxn && dirty_get(s, dtxn, id, blk, &v) == 0) {
        memcpy(out, v.mv_data, v.mv_size);
        return (ssize_t)v.mv_size;
    }
    const uint8_t *h;
    if (dtxn && dirty_ref_get(s, txn, id, blk, ref) == 0) {
        if (was_ref)
            *was_ref = true;
        h = ref;
    } else {
        ssize_t n = base_block(s, txn, base, trunc, blk, out);
        return n < 0 || !dtxn ? n : stream_over(s, txn, id, blk, out, n);
    }
    if (!memcmp(h, zero_hash, HASH_LEN))
        return 0;
    if (tget(s, txn, DB_CHUNKS, h, CHUNKS_KEY_LEN, &v))
        return -EIO;
    return chunk_val_copy(s, &v, out);
}

static ssize_t block_load(mfs_store *s, MDB_txn *txn, MDB_txn *dtxn, mfs_id id,
                          const version_view *base, uint64_t trunc,
                          uint64_t blk, uint8_t *out, bool *was_ref)
{
    ssize_t n = block_below(s, txn, dtxn, id, base, trunc, blk, out, was_ref);
    return n < 0 ? n : dirty_pages_over(s, dtxn, id, blk, out, (size_t)n);
}

/* Asks the kernel to start reading, all at once, the chunks of base blocks
 * b0..b1 that are not in memory yet. The store's map is opened without
 * readahead (MDB_NORDAHEAD: B-tree pages are read at random), so without
 * this a cold 64 KiB chunk is read one 4 KiB page fault at a time. */
static void prefetch_chunks(mfs_store *s, MDB_txn *txn,
                            const version_view *base, uint64_t trunc,
                            uint64_t b0, uint64_t b1)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        page = 4096;
    if (!base)
        return;
    /* the chunks over blocks b0..b1 */
    uint32_t i0 = chunk_at(base->ends, base->nchunks, b0 * MFS_CHUNK_SIZE);
    uint32_t i1 =
        chunk_at(base->ends, base->nchunks, (b1 + 1) * MFS_CHUNK_SIZE - 1);
    for (uint32_t b = i0;
         b <= i1 && b < base->nchunks &&
         chunk_start(base->ends, base->size, b) < trunc;
         b++) {
        const uint8_t *h = base->hashes + (size_t)b * HASH_LEN;
        MDB_val v;
        if (!memcmp(h, zero_hash, HASH_LEN) ||
            tget(s, txn, DB_CHUNKS, h, CHUNKS_KEY_LEN, &v) ||
            chunk_is_ref(&v)) /* (a pack is read ahead by the kernel) */
            continue;
        uintptr_t at = (uintptr_t)v.mv_data & ~(uintptr_t)(page - 1);
        (void)madvise((void *)at, (uintptr_t)v.mv_data + v.mv_size - at,
                      MADV_WILLNEED); /* only a hint: errors do not matter */
    }
}

ssize_t content_read(mfs_store *s, MDB_txn *txn, mfs_id id, mfs_stamp ver,
                     bool use_dirty, uint64_t off, void *buf, size_t len)
{
    dinfo_rec d;
    bool dirty = use_dirty && dinfo_get(s, txn, id, &d) == 0;
    version_view base, *bp = NULL;
    uint64_t size, trunc;
    mfs_stamp bst = dirty ? d.base : ver;
    if (bst.hlc) {
        if (version_get(s, txn, id, bst, &base))
            return -EIO;
        bp = &base;
    }
    size = dirty ? d.size : (bp ? bp->size : 0);
    trunc = dirty ? d.trunc : size;
    if (off >= size)
        return 0;
    if (len > size - off)
        len = (size_t)(size - off);
    uint8_t *blockbuf = malloc(MFS_CHUNK_SIZE);
    if (!blockbuf)
        return -ENOMEM;
    /* the dirty blocks of the same moment as txn (see store_read_begin) */
    MDB_txn *dtxn = dirty ? store_read_dtxn(s) : NULL, *own = NULL;
    if (dirty && !dtxn) {
        int rc = dirty_read_begin(s, &own);
        if (rc) {
            free(blockbuf);
            return rc;
        }
        dtxn = own;
    }
    prefetch_chunks(s, txn, bp, trunc, off / MFS_CHUNK_SIZE,
                    (off + len - 1) / MFS_CHUNK_SIZE);
    size_t done = 0;
    while (done < len) {
        uint64_t pos = off + done;
        uint64_t blk = pos / MFS_CHUNK_SIZE;
        size_t in = (size_t)(pos % MFS_CHUNK_SIZE);
        size_t n = MFS_CHUNK_SIZE - in;
        if (n > len - done)
            n = len - done;
        ssize_t bl =
            block_load(s, txn, dtxn, id, bp, trunc, blk, blockbuf, NULL);
        if (bl < 0) {
            dirty_read_end(own);
            free(blockbuf);
            return bl;
        }
        uint8_t *dst = (uint8_t *)buf + done;
        size_t have = (size_t)bl > in ? (size_t)bl - in : 0;
        if (have > n)
            have = n;
        memcpy(dst, blockbuf + in, have);
        memset(dst + have, 0, n - have);
        done += n;
    }
    dirty_read_end(own);
    free(blockbuf);
    return (ssize_t)len;
}

/* ---- hashing a large write on two threads ----
 * Hashing is most of what a large write costs the thread that serves it
 * (BLAKE2b, about 0.75 ms a MiB here), and the application waits for
 * it. A store keeps one helper thread (started at the first large write)
 * that hashes the second half of a write's whole blocks while the
 * calling thread hashes the first. One write at a time uses it; another
 * that finds it busy hashes alone. */
typedef struct hash_job {
    const uint8_t *buf;
    uint64_t off, first, b0, b1;
    uint8_t *out;
    /* content-defined chunks instead of blocks: chunk i of buf ends at
     * ends[i] (and starts where i - 1 ends, chunk 0 at start); b0..b1
     * count chunks */
    const uint64_t *ends;
    uint64_t start;
    /* other work instead (cut_half): fn(ctx) */
    void (*fn)(void *ctx);
    void *ctx;
} hash_job;

struct hasher {
    pthread_mutex_t lock;
    pthread_cond_t work, done;
    pthread_t thread;
    bool started, stop, busy, pending;
    hash_job job;
};

#define HASH_SPLIT_MIN 4 /* whole blocks a write needs to be split */

static int streams_init(mfs_store *s);
static void streams_free(mfs_store *s);

/* Pieces of bytes to hash, several at once (mfs_blake2b256_many): each
 * piece's hash goes to its out; a piece that is all zeros is not hashed
 * and its out keeps the zero hash (a hole). */
#define HASH_BATCH 64
typedef struct hash_batch {
    const uint8_t *data[HASH_BATCH];
    size_t len[HASH_BATCH], k;
    uint8_t *out[HASH_BATCH];
} hash_batch;

static void batch_flush(hash_batch *b)
{
    uint8_t h[HASH_BATCH * HASH_LEN];
    if (!b->k)
        return;
    mfs_blake2b256_many(h, b->data, b->len, b->k);
    for (size_t x = 0; x < b->k; x++)
        memcpy(b->out[x], h + x * HASH_LEN, HASH_LEN);
    b->k = 0;
}

static void batch_add(hash_batch *b, const uint8_t *p, size_t n, uint8_t *out)
{
    if ((n = trim_zeros(p, n)) == 0)
        return;
    b->data[b->k] = p;
    b->len[b->k] = n;
    b->out[b->k++] = out;
    if (b->k == HASH_BATCH)
        batch_flush(b);
}

/* Hashes the pieces of j->buf from j->b0 to j->b1 (chunks or blocks)
 * into j->out. */
static void hash_range(const hash_job *j)
{
    if (j->fn) {
        j->fn(j->ctx);
        return;
    }
    hash_batch hb;
    hb.k = 0;
    for (uint64_t i = j->b0; i < j->b1; i++) {
        if (j->ends) {
            uint64_t from = i ? j->ends[i - 1] : j->start;
            batch_add(&hb, j->buf + from, (size_t)(j->ends[i] - from),
                      j->out + i * HASH_LEN);
        } else {
            batch_add(&hb, j->buf + (i * MFS_CHUNK_SIZE - j->off),
                      MFS_CHUNK_SIZE, j->out + (i - j->first) * HASH_LEN);
        }
    }
    batch_flush(&hb);
}

static void *hasher_main(void *arg)
{
    struct hasher *h = arg;
    pthread_setname_np(pthread_self(), "mfs-hash"); /* top, perf */
    pthread_mutex_lock(&h->lock);
    for (;;) {
        while (!h->pending && !h->stop)
            pthread_cond_wait(&h->work, &h->lock);
        if (!h->pending)
            break; /* stop, nothing left */
        hash_job j = h->job;
        pthread_mutex_unlock(&h->lock);
        hash_range(&j);
        pthread_mutex_lock(&h->lock);
        __atomic_store_n(&h->pending, false, __ATOMIC_RELEASE);
        pthread_cond_signal(&h->done);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

int content_hasher_init(mfs_store *s)
{
    struct hasher *h = calloc(1, sizeof(*h));
    if (!h || streams_init(s)) {
        free(h);
        return -ENOMEM;
    }
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->work, NULL);
    pthread_cond_init(&h->done, NULL);
    s->hasher = h;
    return 0;
}

void content_hasher_free(mfs_store *s)
{
    streams_free(s);
    struct hasher *h = s->hasher;
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    h->stop = true;
    pthread_cond_signal(&h->work);
    pthread_mutex_unlock(&h->lock);
    if (h->started)
        pthread_join(h->thread, NULL);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->work);
    pthread_cond_destroy(&h->done);
    free(h);
    s->hasher = NULL;
}

/* Hands j to the helper if it is free (starting it the first time). */
static bool hasher_give(struct hasher *h, const hash_job *j)
{
    if (!h)
        return false;
    pthread_mutex_lock(&h->lock);
    bool ok = !h->busy && !h->stop;
    if (ok && !h->started) {
        h->started = pthread_create(&h->thread, NULL, hasher_main, h) == 0;
        ok = h->started;
    }
    if (ok) {
        h->busy = h->pending = true;
        h->job = *j;
        pthread_cond_signal(&h->work);
    }
    pthread_mutex_unlock(&h->lock);
    return ok;
}

/* How long hasher_wait polls before it sleeps: a sleeping thread's CPU
 * halts, and in a virtual machine waking it again took 0.1-0.15 ms
 * (uprobes, 1 MiB writes), a tenth of what the write costs. */
#define HASHER_POLL_NS 200000

static void hasher_wait(struct hasher *h)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 1; __atomic_load_n(&h->pending, __ATOMIC_ACQUIRE); i++) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        if (i % 64)
            continue;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000000000L + t.tv_nsec - t0.tv_nsec >
            HASHER_POLL_NS)
            break;
    }
    pthread_mutex_lock(&h->lock);
    while (h->pending)
        pthread_cond_wait(&h->done, &h->lock);
    h->busy = false;
    pthread_mutex_unlock(&h->lock);
}

/* Runs job j (b0..b1) on the calling thread, with its second half on the
 * store's helper thread when that is free and the job is large enough. */
static void hash_split(mfs_store *s, hash_job j)
{
    if (j.b1 - j.b0 >= HASH_SPLIT_MIN) {
        hash_job half = j;
        half.b0 = j.b1 = j.b0 + (j.b1 - j.b0) / 2;
        if (hasher_give(s->hasher, &half)) {
            hash_range(&j);
            hasher_wait(s->hasher);
            return;
        }
        j.b1 = half.b1;
    }
    hash_range(&j);
}

uint8_t *content_hash_whole(mfs_store *s, uint64_t off, const void *buf,
                            size_t len)
{
    uint64_t first = off / MFS_CHUNK_SIZE;
    uint64_t end = (off + len) / MFS_CHUNK_SIZE; /* past the last whole one */
    uint64_t start = (off + MFS_CHUNK_SIZE - 1) / MFS_CHUNK_SIZE;
    if (len < MFS_CHUNK_SIZE || start >= end || !s->cfg.fixed_chunks)
        return NULL; /* (content-defined chunks are cut at publish) */
    uint8_t *out = calloc(end - first, MFS_HASH_LEN);
    if (!out)
        return NULL; /* the blocks go the slow way, as bytes */
    hash_split(s, (hash_job){.buf = buf, .off = off, .first = first,
                             .b0 = start, .b1 = end, .out = out});
    return out;
}

/* ---- streams: content-defined chunks cut as a file is written ----
 * Most large files are written once, from the first byte on, in order (cp,
 * tar, downloads, builds, an editor's save). Such a write is cut into
 * chunks and hashed before the store's writer lock is taken (on two
 * threads, as content_hash_whole does for fixed blocks), and the chunks
 * are stored at once and recorded in DB_DCHUNKS; only the bytes after the
 * last cut (less than a chunk) go to the dirty blocks. Publishing then
 * finds the file already cut. A stream is kept per file in memory: where
 * the next write must start, the last cut, and the bytes since it. Every
 * other change to the file's content ends it; a write that finds the
 * store not as the stream left it (checked under the lock) is written the
 * ordinary way. */

#define STREAMS 16

typedef struct stream {
    uint64_t ino; /* 0: a free slot */
    uint64_t gen; /* this use of the slot (a plan is of one use) */
    mfs_id id;    /* once a write was recorded */
    bool busy, dead; /* busy: a write is being planned */
    uint64_t pos, cut; /* next write's offset; the last cut: as the plans
                        * so far leave it, applied or not */
    mfs_stamp base;    /* the version last published from it */
    uint64_t used;
    uint8_t tail[MFS_CHUNK_SIZE]; /* bytes [cut, pos) */
} stream;

struct streams {
    pthread_mutex_t lock;
    uint64_t tick, gens;
    stream st[STREAMS];
};

struct stream_plan {
    stream *st;
    uint64_t gen; /* st->gen when planned */
    mfs_id id;
    uint64_t off, end, cut0, cut1;
    bool fresh, recorded, planned; /* planned: the stream moved on */
    /* the bytes [cut0, end): the stream's tail (tl bytes), then the
     * write's. buf (the plan's own) holds the first `joined` of them, so
     * that the chunks that start in the tail are in one piece; a large
     * write's own bytes are used where they are, not copied (plan_at) */
    uint8_t *buf;
    const uint8_t *data;
    size_t tl, joined;
    uint64_t *ends; /* the new chunks' ends, from cut0 */
    uint8_t *hashes;
    size_t n;
};

/* Where the plan's bytes from x (counted from cut0) are, in one piece up
 * to the end of a chunk that starts at x, or to the plan's end when x is
 * at or after the last cut. */
static const uint8_t *plan_at(const stream_plan *p, size_t x)
{
    return x < p->tl || p->joined == p->tl + (size_t)(p->end - p->off)
               ? p->buf + x
               : p->data + (x - p->tl);
}

/* How many bytes from x a cut may look at (all, but in the tail only up
 * to what buf holds: at least a chunk past the tail). */
static size_t plan_avail(const stream_plan *p, size_t x)
{
    return (x < p->tl ? p->joined : p->tl + (size_t)(p->end - p->off)) - x;
}

/* Hashes the plan's chunks b0..b1 (into p->hashes), wherever their
 * bytes are, all at once. */
static void plan_hash(const stream_plan *p, size_t b0, size_t b1)
{
    hash_batch hb;
    hb.k = 0;
    for (size_t i = b0; i < b1; i++) {
        size_t at = i ? (size_t)p->ends[i - 1] : 0;
        batch_add(&hb, plan_at(p, at), (size_t)p->ends[i] - at,
                  p->hashes + i * HASH_LEN);
    }
    batch_flush(&hb);
}

static int streams_init(mfs_store *s)
{
    s->streams = calloc(1, sizeof(*s->streams));
    if (!s->streams)
        return -ENOMEM;
    pthread_mutex_init(&s->streams->lock, NULL);
    return 0;
}

static void streams_free(mfs_store *s)
{
    if (s->streams)
        pthread_mutex_destroy(&s->streams->lock);
    free(s->streams);
    s->streams = NULL;
}

/* The slot for a stream of ino that starts at off (NULL: none may). */
static stream *stream_take(struct streams *ss, uint64_t ino, uint64_t off)
{
    stream *st = NULL, *lru = NULL;
    for (int i = 0; i < STREAMS && !st; i++)
        if (ss->st[i].ino == ino)
            st = &ss->st[i];
    if (st && (st->busy || (!st->dead && st->pos != off)))
        return NULL; /* another write of it is on its way, or out of order */
    if (st && st->dead)
        st->ino = 0; /* over: a write at 0 starts anew */
    if (!st || !st->ino) {
        if (off != 0)
            return NULL;
        for (int i = 0; i < STREAMS && !st; i++)
            if (!ss->st[i].busy &&
                (!lru || ss->st[i].used < lru->used))
                lru = &ss->st[i];
        st = st ? st : lru;
        if (!st)
            return NULL;
        memset(st, 0, offsetof(stream, tail));
        st->ino = ino;
        st->gen = ++ss->gens;
    }
    st->busy = true;
    st->used = ++ss->tick;
    return st;
}

/* Cuts p[from..n) as if a chunk started at from, into ends (offsets in
 * p), until the bytes run out; the count. */
static size_t cut_from(const uint8_t *p, size_t n, size_t from,
                       uint64_t *ends)
{
    size_t k = 0, c;
    while ((c = mfs_cdc_cut(p + from, n - from, false)) != 0)
        ends[k++] = from += c;
    return k;
}

typedef struct cut_half {
    const uint8_t *p; /* the write's own bytes (the half lies in them) */
    size_t n, from, k; /* p[from..n) cut as if a chunk started at from */
    uint64_t *ends;    /* offsets in p */
    uint8_t *hashes;   /* of the k chunks */
} cut_half;

static void cut_half_run(void *arg)
{
    cut_half *h = arg;
    h->k = cut_from(h->p, h->n, h->from, h->ends);
    hash_range(&(hash_job){.buf = h->p, .ends = h->ends, .start = h->from,
                           .b1 = h->k, .out = h->hashes});
}

/* Cuts p's bytes from 0 into p->ends (from k on) while the last cut is
 * before `until`, or to the end; the count. */
static size_t plan_cut(const stream_plan *p, size_t k, size_t until)
{
    size_t at = k ? (size_t)p->ends[k - 1] : 0, c;
    while (at < until &&
           (c = mfs_cdc_cut(plan_at(p, at), plan_avail(p, at), false)) != 0)
        p->ends[k++] = at += c;
    return k;
}

/* The cuts of p's bytes (the stream's tail, then the write's data) into
 * p->ends, their chunks' hashes into p->hashes (zeroed, room for n /
 * MFS_CDC_MIN + 1); the count. Cutting cannot be split where the cuts are
 * not known yet; but cuts made from anywhere meet the true ones after a
 * chunk or two (a cut depends only on its chunk's bytes). So the store's
 * helper thread cuts the second half of a large write as if a chunk
 * started in its middle, and hashes those chunks, while this thread cuts
 * and hashes the first half, then cuts on into the second until a cut of
 * its own is one of the helper's: the helper's from there on are the true
 * ones, hashes and all. One hand-over a write, and the helper starts at
 * once: a sleeping thread took 0.1-0.15 ms to wake here, as long as
 * copying the MiB took (and the write is no longer copied). */
static size_t cut_hash_all(mfs_store *s, stream_plan *p, const uint8_t *tail)
{
    size_t tl = p->tl, len = (size_t)(p->end - p->off), n = tl + len;
    size_t mid = n / 2, cap = 0;
    cut_half h = {p->data, len, mid - tl, 0, NULL, NULL};
    if (p->joined < n) { /* large: mid is past the tail and what is joined */
        cap = (len - h.from) / MFS_CDC_MIN + 1;
        h.ends = malloc(cap * sizeof(*h.ends));
        h.hashes = calloc(cap, HASH_LEN);
    }
    bool split = h.ends && h.hashes &&
                 hasher_give(s->hasher,
                             &(hash_job){.fn = cut_half_run, .ctx = &h});
    memcpy(p->buf, tail, tl);
    memcpy(p->buf + tl, p->data, p->joined - tl);
    if (!split) {
        free(h.ends);
        free(h.hashes);
        size_t k = plan_cut(p, 0, n);
        plan_hash(p, 0, k);
        return k;
    }
    size_t k = plan_cut(p, 0, mid), k0 = k, j = 0;
    plan_hash(p, 0, k);
    hasher_wait(s->hasher);
    size_t at = k ? (size_t)p->ends[k - 1] : 0;
    bool more = at >= mid, met = false; /* (else the bytes ended uncut) */
    while (more && !met) {
        while (j < h.k && h.ends[j] + tl < at)
            j++;
        met = j < h.k && h.ends[j] + tl == at;
        if (!met) { /* one more cut of our own */
            size_t k1 = plan_cut(p, k, at + 1);
            more = k1 > k;
            k = k1;
            at = (size_t)p->ends[k - 1];
        }
    }
    plan_hash(p, k0, k);
    for (j++; met && j < h.k; j++, k++) { /* the helper's, past the meeting */
        p->ends[k] = h.ends[j] + tl;
        memcpy(p->hashes + k * HASH_LEN, h.hashes + j * HASH_LEN, HASH_LEN);
    }
    free(h.ends);
    free(h.hashes);
    return k;
}

stream_plan *content_stream_plan(mfs_store *s, uint64_t ino, uint64_t off,
                                 const void *data, size_t len)
{
    if (s->cfg.fixed_chunks || !s->streams || !ino ||
        off + len > (uint64_t)MFS_MAX_CHUNKS * MFS_CHUNK_SIZE)
        return NULL;
    pthread_mutex_lock(&s->streams->lock);
    stream *st = stream_take(s->streams, ino, off);
    pthread_mutex_unlock(&s->streams->lock);
    if (!st)
        return NULL;
    stream_plan *p = calloc(1, sizeof(*p));
    size_t tl = (size_t)(st->pos - st->cut), blen = tl + len;
    /* a large write is cut where it is, but for its first chunks: two
     * chunks past the tail (cuts from the tail find one in the first);
     * then the bytes after its last cut (under a chunk) are its own too */
    size_t joined = len >= 4 * MFS_CDC_MAX ? tl + 2 * MFS_CDC_MAX : blen;
    if (p) {
        p->st = st;
        p->gen = st->gen;
        p->buf = malloc(joined ? joined : 1);
        p->ends = malloc((blen / MFS_CDC_MIN + 1) * sizeof(*p->ends));
        p->hashes = calloc(blen / MFS_CDC_MIN + 1, HASH_LEN);
    }
    if (!p) {
        pthread_mutex_lock(&s->streams->lock);
        st->busy = false;
        st->dead = true;
        pthread_mutex_unlock(&s->streams->lock);
        return NULL;
    }
    if (!p->buf || !p->ends || !p->hashes) {
        content_stream_done(s, p, false);
        return NULL;
    }
    p->off = off;
    p->end = off + len;
    p->fresh = st->pos == 0;
    p->cut0 = st->cut;
    p->data = data;
    p->tl = tl;
    p->joined = joined;
    /* the cuts the bytes so far make (none is undone by what follows) */
    p->n = cut_hash_all(s, p, st->tail);
    p->cut1 = p->cut0 + (p->n ? p->ends[p->n - 1] : 0);
    /* the stream goes on from this plan at once: the next write can be
     * planned before this one is applied (fs/wb.c queues them); a plan
     * that is not applied after all ends the stream (content_stream_done),
     * and one applied over a file the stream no longer describes is
     * written the ordinary way (stream_fits) */
    st->pos = p->end;
    st->cut = p->cut1;
    memmove(st->tail, plan_at(p, (size_t)(p->cut1 - p->cut0)),
            (size_t)(p->end - p->cut1));
    pthread_mutex_lock(&s->streams->lock);
    st->busy = false;
    pthread_mutex_unlock(&s->streams->lock);
    p->planned = true;
    return p;
}

/* Is id's unpublished state where p's stream left it: the file ends at
 * p->off and its bytes before p->cut0 are cut there, by stream chunks or
 * by the version last published from the stream? */
static bool stream_fits(wtx *w, mfs_id id, const stream_plan *p,
                        const dinfo_rec *d)
{
    struct {
        uint64_t gen;
        bool dead;
        mfs_id id;
        mfs_stamp base;
    } st; /* (the slot is not ours: later plans move it on) */
    pthread_mutex_lock(&w->s->streams->lock);
    st.gen = p->st->gen;
    st.dead = p->st->dead;
    st.id = p->st->id;
    st.base = p->st->base;
    pthread_mutex_unlock(&w->s->streams->lock);
    uint64_t cs;
    uint32_t cl;
    uint8_t h[HASH_LEN];
    if (st.gen != p->gen || st.dead || d->size != p->off)
        return false;
    if (p->fresh)
        return d->size == 0 && d->trunc == 0;
    if (!id_eq(st.id, id) ||
        dirty_chunk_at(w->s, w->txn, id, p->cut0, &cs, &cl, h) == 0)
        return false; /* (a chunk at or past the cut: not ours) */
    if (p->cut0 == 0)
        return d->trunc == 0;
    if (dirty_chunk_at(w->s, w->txn, id, p->cut0 - 1, &cs, &cl, h) == 0)
        return cs + cl == p->cut0;
    /* after a publish: the base is that version, cut at cut0 */
    version_view b;
    if (!stamp_eq(d->base, st.base) ||
        version_get(w->s, w->txn, id, d->base, &b) || !b.ends ||
        d->trunc != b.size || b.size != p->off)
        return false;
    uint32_t i = chunk_at(b.ends, b.nchunks, p->cut0 - 1);
    return i < b.nchunks && chunk_end(b.ends, b.size, i) == p->cut0;
}

/* Stores p's chunks that are not here yet. */
static int stream_store(wtx *w, stream_plan *p)
{
    const uint8_t **hash = malloc(p->n * sizeof(*hash) + 1);
    const uint8_t **data = malloc(p->n * sizeof(*data) + 1);
    size_t *len = malloc(p->n * sizeof(*len) + 1), k = 0;
    if (!hash || !data || !len) {
        free(hash);
        free(data);
        free(len);
        return wtx_fail(w, -ENOMEM);
    }
    for (size_t i = 0; i < p->n; i++) {
        uint64_t at = i ? p->ends[i - 1] : 0;
        const uint8_t *h = p->hashes + i * HASH_LEN;
        if (!memcmp(h, zero_hash, HASH_LEN))
            continue; /* (a hole) */
        hash[k] = h;
        data[k] = plan_at(p, (size_t)at);
        len[k] = trim_zeros(data[k], (size_t)(p->ends[i] - at));
        k++;
    }
    chunks_store_new(w, k, hash, data, len);
    free(hash);
    free(data);
    free(len);
    return w->err;
}

int content_write_stream(wtx *w, mfs_id id, stream_plan *p)
{
    dinfo_rec d;
    inode_rec in;
    if (dinfo_load(w, id, &d, &in))
        return w->err;
    if (!stream_fits(w, id, p, &d))
        return 1;
    p->id = id;
    if (dinfo_put(w, id, &d)) /* (recorded first: a load without one
                               * drops what it finds as stale) */
        return w->err;
    /* the chunks: those not here stored (a few system calls for all),
     * and all recorded where they start */
    if (stream_store(w, p))
        return w->err;
    for (size_t i = 0; i < p->n && !w->err; i++) {
        uint64_t at = i ? p->ends[i - 1] : 0;
        const uint8_t *h = p->hashes + i * HASH_LEN;
        if (memcmp(h, zero_hash, HASH_LEN))
            w->s->hooks->crdt->chunks_named(w->s, h, 1); /* a mark may run */
        dirty_chunk_put(w, id, p->cut0 + at, h, (uint32_t)(p->ends[i] - at));
    }
    /* blocks now inside chunks are not needed */
    for (uint64_t b = p->cut0 / MFS_CHUNK_SIZE;
         (b + 1) * MFS_CHUNK_SIZE <= p->cut1 && !w->err; b++) {
        dirty_del(w, id, b);
    }
    if (w->err)
        return w->err;
    /* the bytes after the last cut: as blocks (they are read from there
     * and survive a crash; the next write or publish cuts them). A block's
     * bytes come before the chunks under it, so the block that holds the
     * cut gets the new bytes before the cut too. */
    p->recorded = true;
    uint64_t from = p->cut1 - p->cut1 % MFS_CHUNK_SIZE;
    from = from > p->cut0 ? from : p->cut0;
    if (p->end > p->cut1)
        return content_write(w, id, from, plan_at(p, from - p->cut0),
                             (size_t)(p->end - from), NULL);
    MDB_val v; /* ends on a cut: the block there, if any, must not hide it */
    if (p->cut1 % MFS_CHUNK_SIZE &&
        dirty_get(w->s, dirty_wtxn(w), id, p->cut1 / MFS_CHUNK_SIZE, &v) == 0)
        dirty_del(w, id, p->cut1 / MFS_CHUNK_SIZE);
    d.size = p->end;
    return dinfo_put(w, id, &d);
}

void content_stream_done(mfs_store *s, stream_plan *p, bool ok)
{
    if (!p)
        return;
    if (p->st) {
        pthread_mutex_lock(&s->streams->lock);
        stream *st = p->st;
        if (!p->planned)
            st->busy = false; /* (given up while planning) */
        if (st->gen == p->gen) {
            if (ok && p->recorded && !st->dead)
                st->id = p->id;
            else
                st->dead = true;
        }
        pthread_mutex_unlock(&s->streams->lock);
    }
    free(p->buf);
    free(p->ends);
    free(p->hashes);
    free(p);
}

void content_stream_end(mfs_store *s, uint64_t ino)
{
    if (!s->streams)
        return;
    pthread_mutex_lock(&s->streams->lock);
    for (int i = 0; i < STREAMS; i++)
        if (s->streams->st[i].ino == ino)
            s->streams->st[i].dead = true;
    pthread_mutex_unlock(&s->streams->lock);
}

/* Version ver was just published from id's unpublished state: a stream of
 * id goes on over it. */
static void stream_published(mfs_store *s, mfs_id id, mfs_stamp ver)
{
    if (!s->streams)
        return;
    pthread_mutex_lock(&s->streams->lock);
    for (int i = 0; i < STREAMS; i++)
        if (s->streams->st[i].ino && id_eq(s->streams->st[i].id, id))
            s->streams->st[i].base = ver;
    pthread_mutex_unlock(&s->streams->lock);
}

int content_write(wtx *w, mfs_id id, uint64_t off, const void *buf, size_t len,
                  const uint8_t *whole)
{
    dinfo_rec d;
    inode_rec in;
    if (dinfo_load(w, id, &d, &in))
        return w->err;
    if (off + len > (uint64_t)MFS_MAX_CHUNKS * MFS_CHUNK_SIZE)
        return wtx_fail(w, -EFBIG);
    version_view base, *bp = NULL;
    if (d.base.hlc) {
        if (version_get(w->s, w->txn, id, d.base, &base))
            return wtx_fail(w, -EIO);
        bp = &base;
    }
    uint8_t *blk = malloc(MFS_CHUNK_SIZE);
    if (!blk)
        return wtx_fail(w, -ENOMEM);
    size_t done = 0;
    while (done < len && !w->err) {
        uint64_t pos = off + done;
        uint64_t b = pos / MFS_CHUNK_SIZE;
        size_t in_off = (size_t)(pos % MFS_CHUNK_SIZE);
        size_t n = MFS_CHUNK_SIZE - in_off;
        if (n > len - done)
            n = len - done;
        const uint8_t *src = (const uint8_t *)buf + done;
        ssize_t bl = 0;
        bool was_ref = false;
        if (in_off == 0 && n == MFS_CHUNK_SIZE && whole) {
            /* a whole block, hashed by the caller: a chunk at once */
            const uint8_t *h =
                whole + (b - off / MFS_CHUNK_SIZE) * MFS_HASH_LEN;
            size_t tl = trim_zeros(src, MFS_CHUNK_SIZE);
            MDB_val cv;
            if (tl &&
                tget(w->s, w->txn, DB_CHUNKS, h, CHUNKS_KEY_LEN, &cv) != 0)
                chunk_store(w, h, src, tl);
            if (dirty_ref_put(w, id, b, h) == 0)
                w->s->hooks->crdt->chunks_named(w->s, h, 1); /* a mark may run */
            done += n;
            continue;
        }
        if (in_off % MFS_DIRTY_PAGE == 0 && n % MFS_DIRTY_PAGE == 0 &&
            n < MFS_CHUNK_SIZE &&
            dirty_pages(w->s, dirty_wtxn(w), id, b) + n / MFS_DIRTY_PAGE <=
                DIRTY_PAGES_MAX) {
            /* whole pages: kept as pages over the block (dirty.c) */
            for (size_t p = 0; p < n && !w->err; p += MFS_DIRTY_PAGE)
                dirty_page_put(w, id, b, (unsigned)((in_off + p) /
                                                    MFS_DIRTY_PAGE),
                               src + p);
            done += n;
            continue;
        }
        if (in_off == 0 && pos + n >= d.size) {
            was_ref = true; /* from the block's start to past the end of
                             * the file: nothing below it to keep */
        } else if (in_off > 0 || n < MFS_CHUNK_SIZE) {
            bl = block_load(w->s, w->txn, dirty_wtxn(w), id, bp, d.trunc, b,
                            blk, &was_ref);
            if (bl < 0) {
                wtx_fail(w, (int)bl);
                break;
            }
        } else {
            was_ref = true; /* whole, unhashed: drop a reference if any */
        }
        if ((size_t)bl < in_off)
            memset(blk + bl, 0, in_off - (size_t)bl);
        memcpy(blk + in_off, src, n);
        size_t newlen = in_off + n > (size_t)bl ? in_off + n : (size_t)bl;
        dirty_put(w, id, b, blk, newlen);
        dirty_pages_del(w, id, b); /* (now in the bytes) */
        if (was_ref)
            dirty_ref_del(w, id, b);
        done += n;
    }
    free(blk);
    if (off + len > d.size)
        d.size = off + len;
    return dinfo_put(w, id, &d);
}

/* Before a truncate to size: a stream chunk that holds bytes on both
 * sides of it goes, and so do those after it; the blocks it covered
 * below size become dirty blocks first. */
static int stream_truncate(wtx *w, mfs_id id, uint64_t size,
                           const dinfo_rec *d, const version_view *bp)
{
    uint64_t cs;
    uint32_t cl;
    uint8_t h[HASH_LEN];
    if (dirty_chunk_at(w->s, w->txn, id, size, &cs, &cl, h) != 0)
        return 0;
    uint8_t *blk = cs < size ? malloc(MFS_CHUNK_SIZE) : NULL;
    if (cs < size && !blk)
        return wtx_fail(w, -ENOMEM);
    MDB_txn *dt = dirty_wtxn(w);
    for (uint64_t b = cs / MFS_CHUNK_SIZE;
         cs < size && b <= (size - 1) / MFS_CHUNK_SIZE && !w->err; b++) {
        MDB_val v;
        if (dirty_get(w->s, dt, id, b, &v) == 0)
            continue;
        ssize_t bl = block_load(w->s, w->txn, dt, id, bp, d->trunc, b, blk,
                                NULL);
        if (bl < 0)
            wtx_fail(w, (int)bl);
        else if (dirty_put(w, id, b, blk, (size_t)bl) == 0)
            dirty_pages_del(w, id, b);
    }
    free(blk);
    return w->err ? w->err : dirty_chunk_del_from(w, id, cs < size ? cs : size);
}

int content_truncate(wtx *w, mfs_id id, uint64_t size, int64_t now)
{
    dinfo_rec d;
    inode_rec in;
    if (dinfo_load(w, id, &d, &in))
        return w->err;
    if (size > (uint64_t)MFS_MAX_CHUNKS * MFS_CHUNK_SIZE)
        return wtx_fail(w, -EFBIG);
    if (size < d.size) {
        version_view base, *bp = NULL;
        if (d.base.hlc) {
            if (version_get(w->s, w->txn, id, d.base, &base))
                return wtx_fail(w, -EIO);
            bp = &base;
        }
        uint64_t cs;
        uint32_t cl;
        uint8_t ch[HASH_LEN];
        if (dirty_chunk_at(w->s, w->txn, id, size, &cs, &cl, ch) == 0)
            w->s->hooks->crdt->chunks_dropped(w->s); /* (stream chunks cut) */
        if (stream_truncate(w, id, size, &d, bp))
            return w->err;
        uint64_t first = size / MFS_CHUNK_SIZE;
        size_t part = (size_t)(size % MFS_CHUNK_SIZE);
        if (part) {
            uint8_t *blk = malloc(MFS_CHUNK_SIZE);
            if (!blk)
                return wtx_fail(w, -ENOMEM);
            bool was_ref;
            ssize_t bl = block_load(w->s, w->txn, dirty_wtxn(w), id, bp,
                                    d.trunc, first, blk, &was_ref);
            if (bl < 0) {
                free(blk);
                return wtx_fail(w, (int)bl);
            }
            size_t nl = (size_t)bl < part ? (size_t)bl : part;
            dirty_put(w, id, first, blk, nl);
            dirty_pages_del(w, id, first);
            if (was_ref)
                dirty_ref_del(w, id, first);
            free(blk);
            first++;
        }
        /* drop dirty blocks at or past `first` */
        if (dirty_del_from(w, id, first))
            return w->err;
        if (size < d.trunc)
            d.trunc = size;
    }
    d.size = size;
    d.mtime = d.ctime = now;
    return dinfo_put(w, id, &d);
}

int content_drop_dirty(wtx *w, mfs_id id)
{
    if (dirty_del_from(w, id, 0))
        return w->err;
    uint8_t k[ID_KEY_LEN];
    id_put(k, id);
    return tdel(w, DB_DINFO, k, ID_KEY_LEN);
}

static bool has_visible_link(mfs_store *s, MDB_txn *txn, mfs_id id)
{
    MDB_cursor *c;
    if (mdb_cursor_open(txn, s->db[DB_LINKS], &c))
        return false;
    uint8_t k[ID_KEY_LEN];
    id_put(k, id);
    MDB_val key = {ID_KEY_LEN, k}, val;
    int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    bool yes = rc == 0 && !memcmp(key.mv_data, k, ID_LEN);
    mdb_cursor_close(c);
    return yes;
}

struct publish_arg {
    wtx *w;
    const dinfo_rec *d;
    uint8_t *hashes;
    uint64_t nblocks;
    mfs_id id;
    const version_view *base;
    MDB_txn *dt;
    uint8_t *buf; /* MFS_CHUNK_SIZE */
};

/* One unpublished block written whole: its chunk is stored already. */
static int publish_ref(void *arg, uint64_t b, const MDB_val *val)
{
    struct publish_arg *a = arg;
    if (val->mv_size != MFS_HASH_LEN)
        return -EIO;
    if (b < a->nblocks)
        memcpy(a->hashes + b * HASH_LEN, val->mv_data, MFS_HASH_LEN);
    return 0;
}

/* One unpublished block (bytes, or pages over what is below them):
 * hashed, stored as a chunk unless held already. */
static int publish_block(void *arg, uint64_t b)
{
    struct publish_arg *a = arg;
    wtx *w = a->w;
    if (b >= a->nblocks)
        return 0; /* past the end: truncated since */
    ssize_t bl = block_load(w->s, w->txn, a->dt, a->id, a->base,
                            a->d->trunc, b, a->buf, NULL);
    if (bl < 0)
        return wtx_fail(w, (int)bl);
    uint64_t blen = a->d->size - b * MFS_CHUNK_SIZE;
    size_t len = (size_t)bl < blen ? (size_t)bl : (size_t)blen;
    len = trim_zeros(a->buf, len);
    uint8_t *h = a->hashes + b * HASH_LEN;
    if (len == 0) {
        memset(h, 0, HASH_LEN);
        return 0;
    }
    hash_block(h, a->buf, len);
    MDB_val cv;
    if (tget(w->s, w->txn, DB_CHUNKS, h, CHUNKS_KEY_LEN, &cv) != 0)
        chunk_store(w, h, a->buf, len);
    return w->err;
}

/* What a new version of id says about the file's deleted names, from one
 * walk over its names (publish is a hot path):
 *  - A file whose every name was deleted shows only through an edit
 *    concurrent with the delete (docs/ARCHITECTURE.md "The derived
 *    view"). A version published for it now (writes made before the
 *    delete arrived) supersedes what the deletes had seen: that content
 *    was deleted, and it does not come back beside the edit. So the file
 *    shows the same on every node, whether or not a node has collected
 *    the deleted versions yet. Those seen versions (other than base) go
 *    into parents (at most maxp); *np gets how many.
 *  - The deletes of its names that do not show (deleted, and not brought
 *    back by an edit concurrent with their delete) are known to the
 *    version: it does not bring them back, its writer had applied them.
 *    A name that shows again is not: its delete was concurrent with an
 *    edit, and an edit made since does not hide it. With kfloor (the
 *    largest hlc this store folded, oplog_floor_top; 0: none) the version
 *    knows every delete at or below it but those listed, and those listed
 *    above it: so known (*nk of them, at most OP_MAX_KNOWN, among the
 *    first TREE_NAMES_MAX names) gets the hidden names' deletes above
 *    kfloor and the shown names' at or below. A removed hard link whose
 *    delete was folded is collected (collect.c); its delete, at or below
 *    every later kfloor here, stays known without its entry, and a node
 *    that still holds the entry reads the version alike. */
static void deleted_names(wtx *w, mfs_id id, mfs_stamp base, uint64_t kfloor,
                          uint8_t *parents, uint32_t maxp, uint32_t *np,
                          uint8_t *known, uint32_t *nk)
{
    *np = *nk = 0;
    MDB_cursor *c;
    if (mdb_cursor_open(w->txn, w->s->db[DB_ILINKS], &c))
        return;
    uint8_t k[ID_KEY_LEN];
    id_put(k, id);
    MDB_val key = {ID_KEY_LEN, k}, val;
    uint32_t n = 0, nknown = 0, names = 0;
    bool all_deleted = true, any = false;
    int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == PAIR_KEY_LEN &&
           !memcmp(key.mv_data, k, ID_LEN)) {
        entry_rec er;
        mfs_op mv;
        bool first = names++ < TREE_NAMES_MAX;
        if (entry_get(w->s, w->txn, id_get((uint8_t *)key.mv_data + PAIR_KEY_B),
                      &er) == 0 &&
            er.exists) {
            any = true;
            if (!id_eq(er.parent, MFS_ID_TRASH)) {
                all_deleted = false;
            } else {
                if (all_deleted && parents &&
                    tree_last_move(w->s, w->txn, er.st, &mv, NULL) == 0)
                    for (uint32_t j = 0; j < mv.nseen && n < maxp; j++) {
                        const uint8_t *sv = mv.seen + (size_t)j * STAMP_LEN;
                        bool dup = stamp_eq(stamp_get(sv), base);
                        for (uint32_t i = 0; i < n && !dup; i++)
                            dup = !memcmp(parents + (size_t)i * STAMP_LEN, sv,
                                          STAMP_LEN);
                        if (!dup)
                            memcpy(parents + (size_t)(n++) * STAMP_LEN, sv,
                                   STAMP_LEN);
                    }
                bool hidden =
                    !w->s->hooks->crdt->deleted_shows(w->s, w->txn, &er);
                if (first && nknown < OP_MAX_KNOWN &&
                    hidden != (er.st.hlc <= kfloor))
                    stamp_put(known + (size_t)(nknown++) * STAMP_LEN, er.st);
            }
        }
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (any && all_deleted && n)
        *np = n;
    *nk = nknown;
}

void content_name_deletes(wtx *w, mfs_id id, mfs_op *op,
                          uint8_t known[OP_MAX_KNOWN * STAMP_LEN])
{
    uint32_t np;
    op->kfloor = oplog_floor_top(w->s, w->txn);
    deleted_names(w, id, (mfs_stamp){0, 0}, op->kfloor, NULL, 0, &np, known,
                  &op->nknown);
    op->known = known;
    op->flags |= (op->nknown ? OPF_KNOWN : 0) | (op->kfloor ? OPF_FLOOR : 0);
}

bool content_knows_delete(mfs_store *s, MDB_txn *txn, mfs_id id,
                          mfs_stamp ver, mfs_stamp del)
{
    version_view v;
    if (version_get(s, txn, id, ver, &v))
        return false;
    bool listed = false;
    for (uint32_t i = 0; i < v.nknown && !listed; i++)
        listed = stamp_eq(stamp_get(v.known + (size_t)i * STAMP_LEN), del);
    return listed != (v.kfloor && del.hlc <= v.kfloor);
}

/* ---- publishing content-defined chunks (cdc.h) ----
 * A version with extents is always the chunking of its whole content from
 * its first byte (the same bytes give the same chunks on every node). A
 * cut depends only on the bytes of the chunk it ends, so publishing
 * re-chunks only around the unpublished blocks: from the last old cut
 * before them until a new cut lands on an old cut past them, and keeps
 * the old chunks elsewhere. A base without extents (fixed blocks, an
 * older build's) is chunked whole once. Runs of zeros become one hole,
 * long ones without being read. */

/* A growing chunk list: hashes and big-endian ends, as a version has. */
typedef struct chunk_list {
    uint8_t *hashes, *ends;
    uint32_t n, cap;
} chunk_list;

static int chunk_list_add(chunk_list *l, const uint8_t *hash, uint64_t end)
{
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? 2 * l->cap : 256;
        if (cap > MFS_MAX_CHUNKS)
            return -EFBIG;
        uint8_t *nh = realloc(l->hashes, (size_t)cap * HASH_LEN);
        if (nh)
            l->hashes = nh;
        uint8_t *ne = nh ? realloc(l->ends, (size_t)cap * U64_LEN) : NULL;
        if (!ne)
            return -ENOMEM;
        l->ends = ne;
        l->cap = cap;
    }
    memcpy(l->hashes + (size_t)l->n * HASH_LEN, hash, HASH_LEN);
    mfs_be64_put(l->ends + (size_t)l->n * U64_LEN, end);
    l->n++;
    return 0;
}

static void chunk_list_free(chunk_list *l)
{
    free(l->hashes);
    free(l->ends);
    memset(l, 0, sizeof(*l));
}

#define CDC_BATCH 64

typedef struct cdc_pub {
    wtx *w;
    mfs_id id;
    const dinfo_rec *d;
    const version_view *base; /* with extents, else NULL: nothing kept */
    const version_view *below; /* what block_load reads under the blocks */
    MDB_txn *dt;
    uint64_t *blks; /* the blocks with unpublished data, ascending */
    uint32_t *pages; /* for each, the pages over it, or ALL_PAGES */
    size_t nblks, capblks;
    uint64_t lim; /* the base's bytes still in place: min(trunc, size) */
    uint64_t dcut; /* stream chunks hold data below this (not read for
                    * zeros) */
    uint8_t *win; /* CDC_WIN; bytes [wpos, wpos + wlen) of the new
                   * content at win + woff */
    uint64_t wpos;
    size_t wlen, woff;
    uint8_t *blk; /* MFS_CHUNK_SIZE */
    chunk_list out; /* the new version's */
    /* new chunks not hashed yet, hashed CDC_BATCH at a time (BLAKE2b on
     * SIMD lanes, mfs_blake2b256_many): their bytes, each in its
     * MFS_CHUNK_SIZE slot of pend, and their places in out */
    uint8_t *pend;
    size_t plen[CDC_BATCH], npend;
    uint32_t pidx[CDC_BATCH];
} cdc_pub;

#define CDC_WIN (4 * MFS_CHUNK_SIZE)

static int cdc_blk_add(void *arg, uint64_t b)
{
    cdc_pub *c = arg;
    if (c->nblks == c->capblks) {
        size_t cap = c->capblks ? 2 * c->capblks : 64;
        uint64_t *nb = realloc(c->blks, cap * sizeof(*nb));
        if (!nb)
            return -ENOMEM;
        c->blks = nb;
        c->capblks = cap;
    }
    c->blks[c->nblks++] = b;
    return 0;
}

static int cdc_ref_add(void *arg, uint64_t b, const MDB_val *v)
{
    (void)v;
    return cdc_blk_add(arg, b);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The index in c->blks of the first block with unpublished data at or
 * past block b (c->nblks when none). */
static size_t cdc_blk_index(const cdc_pub *c, uint64_t b)
{
    size_t lo = 0, hi = c->nblks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->blks[mid] < b)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* That block (UINT64_MAX when none). */
static uint64_t cdc_next_blk(const cdc_pub *c, uint64_t b)
{
    size_t i = cdc_blk_index(c, b);
    return i < c->nblks ? c->blks[i] : UINT64_MAX;
}

#define PAGES_PER_BLOCK (MFS_CHUNK_SIZE / MFS_DIRTY_PAGE)
#define ALL_PAGES ((uint32_t)((1ull << PAGES_PER_BLOCK) - 1))
_Static_assert(PAGES_PER_BLOCK <= 32, "a block's pages fit a mask");

/* Which pages of each unpublished block are unpublished: all of a block
 * with bytes or a reference, else those written over it as pages (a
 * random 4 KiB write re-chunks the chunk around that page, not the whole
 * block's). */
static int cdc_masks(cdc_pub *c)
{
    c->pages = c->nblks ? malloc(c->nblks * sizeof(*c->pages)) : NULL;
    if (c->nblks && !c->pages)
        return -ENOMEM;
    uint8_t ref[HASH_LEN];
    for (size_t i = 0; i < c->nblks; i++) {
        MDB_val v;
        uint64_t b = c->blks[i];
        bool whole = dirty_get(c->w->s, c->dt, c->id, b, &v) == 0 ||
                     dirty_ref_get(c->w->s, c->w->txn, c->id, b, ref) == 0;
        c->pages[i] = whole ? ALL_PAGES
                            : dirty_page_mask(c->w->s, c->dt, c->id, b);
        if (!c->pages[i])
            c->pages[i] = ALL_PAGES; /* (never so: counted as whole) */
    }
    return 0;
}

/* Does anything unpublished lie in [from, to] (to included: a cut may
 * have looked at the byte after its chunk)? */
static bool cdc_touched(const cdc_pub *c, uint64_t from, uint64_t to)
{
    for (size_t i = cdc_blk_index(c, from / MFS_CHUNK_SIZE);
         i < c->nblks && c->blks[i] <= to / MFS_CHUNK_SIZE;
         i++) {
        uint64_t b0 = c->blks[i] * MFS_CHUNK_SIZE;
        for (unsigned pg = 0; pg < PAGES_PER_BLOCK; pg++) {
            uint64_t ps = b0 + (uint64_t)pg * MFS_DIRTY_PAGE;
            if ((c->pages[i] >> pg & 1) && ps <= to &&
                ps + MFS_DIRTY_PAGE > from)
                return true;
        }
    }
    return false;
}

/* Old chunk i is the new content's chunk too when it starts where a new
 * chunk starts, no unpublished byte touches it, and its bytes are still
 * there; the base's last chunk (cut by the end of the file) only if the
 * file still ends there. */
static bool cdc_keeps(const cdc_pub *c, uint32_t i)
{
    const version_view *b = c->base;
    uint64_t cs = chunk_start(b->ends, b->size, i);
    uint64_t ce = chunk_end(b->ends, b->size, i);
    if (cdc_touched(c, cs, ce))
        return false;
    return ce < c->lim || (ce == b->size && c->lim == b->size &&
                           c->d->size == b->size);
}

/* Where the run of zeros that starts at pos surely ends (pos when the byte
 * there may not be zero), without reading: no unpublished block, and the
 * base has a hole there or no bytes in place. */
static uint64_t cdc_zeros_until(const cdc_pub *c, uint64_t pos)
{
    if (pos < c->dcut)
        return pos;
    uint64_t end = cdc_next_blk(c, pos / MFS_CHUNK_SIZE);
    end = end == UINT64_MAX ? c->d->size : end * MFS_CHUNK_SIZE;
    if (end > c->d->size)
        end = c->d->size;
    const version_view *b = c->below;
    if (b && pos < c->lim) {
        uint32_t i = chunk_at(b->ends, b->nchunks, pos);
        while (i < b->nchunks && chunk_start(b->ends, b->size, i) < end &&
               chunk_start(b->ends, b->size, i) < c->lim &&
               !memcmp(b->hashes + (size_t)i * HASH_LEN, zero_hash, HASH_LEN))
            i++;
        uint64_t upto = i < b->nchunks ? chunk_start(b->ends, b->size, i)
                                       : b->size;
        if (upto < c->lim && upto < end)
            end = upto;
    }
    return end > pos ? end : pos;
}

/* Makes the window hold the new content from pos on: a chunk's worth
 * (all a cut looks at), or up to the file's end. The window moves on
 * within its buffer and is moved back to the start only when a chunk's
 * worth no longer fits; a 4 KiB write re-chunks a chunk or two, so only
 * those are read (it was 256 KiB each, and moved at every cut: a tenth
 * of a publish after random writes). */
static int cdc_fill(cdc_pub *c, uint64_t pos)
{
    if (pos < c->wpos || pos > c->wpos + c->wlen) {
        c->wpos = pos;
        c->wlen = c->woff = 0;
    } else if (pos > c->wpos) {
        size_t drop = (size_t)(pos - c->wpos);
        c->woff += drop;
        c->wlen -= drop;
        c->wpos = pos;
    }
    if (c->woff + MFS_CDC_MAX > CDC_WIN) {
        memmove(c->win, c->win + c->woff, c->wlen);
        c->woff = 0;
    }
    while (c->wlen < MFS_CDC_MAX && c->wpos + c->wlen < c->d->size) {
        uint64_t at = c->wpos + c->wlen;
        uint64_t b = at / MFS_CHUNK_SIZE;
        size_t in = (size_t)(at % MFS_CHUNK_SIZE);
        uint8_t *dst = c->win + c->woff + c->wlen;
        size_t room = CDC_WIN - c->woff - c->wlen;
        size_t n = MFS_CHUNK_SIZE - in;
        if (n > room)
            n = room;
        if (n > c->d->size - at)
            n = (size_t)(c->d->size - at);
        bool direct = in == 0 && room >= MFS_CHUNK_SIZE; /* (no copy) */
        uint8_t *into = direct ? dst : c->blk;
        ssize_t bl = block_load(c->w->s, c->w->txn, c->dt, c->id, c->below,
                                c->d->trunc, b, into, NULL);
        if (bl < 0)
            return (int)bl;
        size_t have = (size_t)bl > in ? (size_t)bl - in : 0;
        have = have < n ? have : n;
        if (!direct)
            memcpy(dst, c->blk + in, have);
        memset(dst + have, 0, n - have);
        c->wlen += n;
    }
    return 0;
}

/* Appends a chunk ending at end (a hole when h is NULL) to the new
 * version; a hole after a hole makes it longer. */
static int cdc_emit(cdc_pub *c, const uint8_t *h, uint64_t end)
{
    chunk_list *l = &c->out;
    bool last_pends = c->npend && c->pidx[c->npend - 1] == l->n - 1;
    if (!h && l->n && !last_pends &&
        !memcmp(l->hashes + (size_t)(l->n - 1) * HASH_LEN, zero_hash,
                HASH_LEN)) {
        mfs_be64_put(l->ends + (size_t)(l->n - 1) * U64_LEN, end);
        return 0;
    }
    return chunk_list_add(l, h ? h : zero_hash, end);
}

/* Hashes the waiting new chunks, stores those not here yet, and puts
 * their hashes in their places. */
/* Hashes of n pieces (mfs_blake2b256_many), as a hash_job's fn. */
typedef struct hash_many {
    uint8_t *out;
    const uint8_t *const *data;
    const size_t *len;
    size_t n;
} hash_many;

static void hash_many_run(void *arg)
{
    hash_many *m = arg;
    if (m->n)
        mfs_blake2b256_many(m->out, m->data, m->len, m->n);
}

static int cdc_flush(cdc_pub *c)
{
    if (!c->npend)
        return 0;
    const uint8_t *data[CDC_BATCH];
    uint8_t h[CDC_BATCH * HASH_LEN];
    for (size_t i = 0; i < c->npend; i++)
        data[i] = c->pend + i * MFS_CHUNK_SIZE;
    /* half the batch on the store's hash helper when it is free (a
     * publish after random writes re-chunks thousands of chunks); not
     * for a few chunks: waking the helper takes longer than hashing them
     * (0.05-0.15 ms here; 16 chunks of 22 KiB take ~0.1 ms) */
    size_t half = c->npend >= CDC_BATCH / 2 ? c->npend / 2 : 0;
    hash_many hm = {h + half * HASH_LEN, data + half, c->plen + half,
                    c->npend - half};
    bool split = half && hasher_give(c->w->s->hasher,
                                     &(hash_job){.fn = hash_many_run,
                                                 .ctx = &hm});
    mfs_blake2b256_many(h, data, c->plen, split ? half : c->npend);
    if (split)
        hasher_wait(c->w->s->hasher);
    const uint8_t *hp[CDC_BATCH];
    size_t len[CDC_BATCH];
    for (size_t i = 0; i < c->npend; i++) {
        hp[i] = h + i * HASH_LEN;
        len[i] = c->plen[i];
        memcpy(c->out.hashes + (size_t)c->pidx[i] * HASH_LEN, hp[i], HASH_LEN);
    }
    chunks_store_new(c->w, c->npend, hp, data, len);
    c->npend = 0;
    return c->w->err;
}

/* Appends a new chunk of bytes p[0..len) (len > 0: its trailing zeros
 * trimmed) ending at end; it is hashed and stored with the next batch. */
static int cdc_emit_new(cdc_pub *c, const uint8_t *p, size_t len,
                        uint64_t end)
{
    if (!c->pend && !(c->pend = malloc((size_t)CDC_BATCH * MFS_CHUNK_SIZE)))
        return -ENOMEM;
    int rc = chunk_list_add(&c->out, zero_hash, end);
    if (rc)
        return rc;
    memcpy(c->pend + c->npend * MFS_CHUNK_SIZE, p, len);
    c->plen[c->npend] = len;
    c->pidx[c->npend++] = c->out.n - 1;
    return c->npend == CDC_BATCH ? cdc_flush(c) : 0;
}

/* The cut a run of zeros longer than a chunk gets, every time. */
static size_t cdc_zero_period(void)
{
    static size_t period;
    if (!period) {
        static const uint8_t zeros[MFS_CDC_MAX + 1];
        period = mfs_cdc_cut(zeros, sizeof(zeros), false);
    }
    return period;
}

/* New chunks from pos until one ends on a cut of the base that is kept
 * (or the file ends); returns where they stopped. */
static int cdc_rechunk(cdc_pub *c, uint64_t *posp, uint32_t *ip)
{
    uint64_t pos = *posp, size = c->d->size;
    uint32_t i = *ip;
    const version_view *b = c->base;
    size_t zp = cdc_zero_period();
    while (pos < size) {
        /* a long run of zeros: its chunks are holes of the period */
        uint64_t z = cdc_zeros_until(c, pos);
        if (z - pos > zp) {
            uint64_t k = (z - pos - 1) / zp;
            pos += k * zp;
            int rc = cdc_emit(c, NULL, pos);
            if (rc)
                return rc;
        } else {
            int rc = cdc_fill(c, pos);
            if (rc)
                return rc;
            size_t avail = c->wlen;
            const uint8_t *p = c->win + c->woff;
            size_t cut = mfs_cdc_cut(p, avail, pos + avail == size);
            if (!cut)
                return -EIO; /* (a full window always holds a cut) */
            size_t len = trim_zeros(p, cut);
            pos += cut;
            rc = len ? cdc_emit_new(c, p, len, pos)
                     : cdc_emit(c, NULL, pos);
            if (rc)
                return rc;
        }
        /* back on the base's cuts? */
        while (b && i < b->nchunks && chunk_start(b->ends, b->size, i) < pos)
            i++;
        if (b && i < b->nchunks && chunk_start(b->ends, b->size, i) == pos &&
            cdc_keeps(c, i))
            break;
    }
    *posp = pos;
    *ip = i;
    return 0;
}

/* What a file that was written as a stream holds already cut: the
 * base's chunks before the first stream chunk (the stream went on over
 * the version published from it), then the stream chunks. */
typedef struct cut_list {
    version_view v;
    chunk_list l;
    uint64_t first; /* where the stream chunks start */
} cut_list;

static int cut_add(void *arg, uint64_t start, const MDB_val *val)
{
    cut_list *cl = arg;
    chunk_list *l = &cl->l;
    if (val->mv_size != DCHUNKS_VAL_LEN)
        return -EIO;
    if (l->n == 0)
        cl->first = start;
    uint64_t at = l->n ? mfs_be64_get(l->ends + (size_t)(l->n - 1) * U64_LEN)
                       : cl->first;
    if (start != at)
        return -EIO; /* (never written so) */
    return chunk_list_add(l, val->mv_data,
                          start + mfs_be32_get((uint8_t *)val->mv_data +
                                               DCHUNKS_VAL_SIZE));
}

/* The cut list of id's stream chunks over base, into l (0, l->v.nchunks
 * 0 when there are none); -EAGAIN when they do not follow a cut of the
 * base (they are then read, not kept). */
static int stream_cuts(wtx *w, mfs_id id, const version_view *base,
                       cut_list *l)
{
    memset(l, 0, sizeof(*l));
    cut_list dl = {0};
    int rc = dirty_chunk_each(w->s, w->txn, id, cut_add, &dl);
    uint32_t k = 0; /* the base's chunks before the stream's */
    if (!rc && dl.l.n && dl.first) {
        if (!base || !base->ends)
            rc = -EAGAIN;
        else
            k = chunk_at(base->ends, base->nchunks, dl.first - 1) + 1;
        if (!rc && (k > base->nchunks ||
                    chunk_end(base->ends, base->size, k - 1) != dl.first))
            rc = -EAGAIN;
    }
    for (uint32_t i = 0; !rc && dl.l.n && i < k + dl.l.n; i++)
        rc = i < k ? chunk_list_add(&l->l, base->hashes + (size_t)i * HASH_LEN,
                                    chunk_end(base->ends, base->size, i))
                   : chunk_list_add(&l->l,
                                    dl.l.hashes + (size_t)(i - k) * HASH_LEN,
                                    mfs_be64_get(dl.l.ends +
                                                 (size_t)(i - k) * U64_LEN));
    if (!rc && l->l.n) {
        l->v.nchunks = l->l.n;
        l->v.hashes = l->l.hashes;
        l->v.ends = l->l.ends;
        l->v.size = chunk_end(l->l.ends, 0, l->l.n - 1);
        l->first = dl.first;
    }
    chunk_list_free(&dl.l);
    return rc;
}

/* The chunk list of id's content now (d, over base), into op's hashes,
 * ends and nchunks (the caller frees them). */
static int publish_cdc(wtx *w, mfs_id id, const dinfo_rec *d,
                       const version_view *base, mfs_op *op)
{
    cdc_pub c = {.w = w, .id = id, .d = d, .below = base,
                 .dt = dirty_wtxn(w)};
    c.base = base && base->ends ? base : NULL;
    c.lim = base ? (d->trunc < base->size ? d->trunc : base->size) : 0;
    /* a file written as a stream: its stream chunks are what is kept */
    cut_list cl;
    int src = stream_cuts(w, id, base, &cl);
    if (src && src != -EAGAIN)
        return wtx_fail(w, src);
    if (src == -EAGAIN || cl.v.nchunks) {
        c.base = cl.v.nchunks ? &cl.v : NULL;
        c.lim = cl.v.size;
        c.dcut = cl.v.nchunks ? cl.v.size : d->size;
    }
    /* the blocks with references, then those with bytes or pages: each
     * list in order, together sorted */
    int rc = dirty_ref_each(w->s, w->txn, id, cdc_ref_add, &c);
    size_t nrefs = c.nblks;
    if (!rc)
        rc = dirty_each(w->s, c.dt, id, cdc_blk_add, &c);
    if (!rc && nrefs && c.nblks > nrefs) {
        qsort(c.blks, c.nblks, sizeof(*c.blks), cmp_u64);
        size_t k = 0;
        for (size_t j = 0; j < c.nblks; j++)
            if (!k || c.blks[k - 1] != c.blks[j])
                c.blks[k++] = c.blks[j];
        c.nblks = k;
    }
    if (!rc)
        rc = cdc_masks(&c);
    c.win = rc ? NULL : malloc(CDC_WIN);
    c.blk = c.win ? malloc(MFS_CHUNK_SIZE) : NULL;
    if (!rc && !c.blk)
        rc = -ENOMEM;
    uint64_t pos = 0;
    uint32_t i = 0;
    const version_view *keep = c.base;
    while (!rc && pos < d->size) {
        if (keep && i < keep->nchunks &&
            chunk_start(keep->ends, keep->size, i) == pos &&
            cdc_keeps(&c, i)) {
            const uint8_t *h = keep->hashes + (size_t)i * HASH_LEN;
            pos = chunk_end(keep->ends, keep->size, i++);
            rc = cdc_emit(&c, memcmp(h, zero_hash, HASH_LEN) ? h : NULL, pos);
            continue;
        }
        rc = cdc_rechunk(&c, &pos, &i);
    }
    if (!rc)
        rc = cdc_flush(&c);
    free(c.pend);
    free(c.blks);
    free(c.pages);
    free(c.win);
    free(c.blk);
    chunk_list_free(&cl.l);
    if (rc) {
        chunk_list_free(&c.out);
        return wtx_fail(w, rc);
    }
    op->flags |= OPF_EXTENTS;
    op->hashes = c.out.hashes;
    op->ends = c.out.ends;
    op->nchunks = c.out.n;
    return 0;
}

static int publish_fixed(wtx *w, mfs_id id, const dinfo_rec *d,
                         const version_view *bp, mfs_op *op);

int content_publish(wtx *w, mfs_id id, bool force)
{
    (void)force;
    dinfo_rec d;
    int rc = dinfo_get(w->s, w->txn, id, &d);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return wtx_fail(w, rc);
    if (!has_visible_link(w->s, w->txn, id))
        return 0; /* unlinked but open: stays local until forgotten */
    version_view base, *bp = NULL;
    if (d.base.hlc) {
        if (version_get(w->s, w->txn, id, d.base, &base))
            return wtx_fail(w, -EIO);
        bp = &base;
    }
    mfs_op op = {.type = OP_VERSION,
                 .obj = id,
                 .size = d.size,
                 .mtime = d.mtime,
                 .ctime = d.ctime};
    if (w->s->cfg.fixed_chunks ? publish_fixed(w, id, &d, bp, &op)
                           : publish_cdc(w, id, &d, bp, &op))
        return w->err;
    uint8_t parents[OP_MAX_PARENTS * STAMP_LEN];
    op.parents = parents;
    if (d.base.hlc) {
        stamp_put(parents, d.base);
        op.nparents = 1;
    }
    uint8_t known[OP_MAX_KNOWN * STAMP_LEN];
    uint32_t ns;
    op.kfloor = oplog_floor_top(w->s, w->txn);
    deleted_names(w, id, d.base, op.kfloor, parents + op.nparents * STAMP_LEN,
                  OP_MAX_PARENTS - op.nparents, &ns, known, &op.nknown);
    op.nparents += ns;
    op.known = known;
    op.flags |= (op.nknown ? OPF_KNOWN : 0) | (op.kfloor ? OPF_FLOOR : 0);
    content_drop_dirty(w, id);
    op_local(w, &op);
    free(op.hashes);
    free(op.ends);
    if (!w->err && (op.flags & OPF_EXTENTS))
        stream_published(w->s, id, op.st);
    return w->err;
}

/* The chunk list of id's content now in fixed blocks: the base's, with
 * each unpublished block hashed in its place. */
static int publish_fixed(wtx *w, mfs_id id, const dinfo_rec *dp,
                         const version_view *bp, mfs_op *op)
{
    const dinfo_rec d = *dp;
    uint64_t nblocks = (d.size + MFS_CHUNK_SIZE - 1) / MFS_CHUNK_SIZE;
    uint8_t *hashes = nblocks ? calloc(nblocks, HASH_LEN) : NULL;
    if (nblocks && !hashes)
        return wtx_fail(w, -ENOMEM);
    for (uint64_t b = 0; bp && !bp->ends && b < nblocks && b < bp->nchunks;
         b++)
        if (b * MFS_CHUNK_SIZE < d.trunc)
            memcpy(hashes + b * HASH_LEN, bp->hashes + b * HASH_LEN, HASH_LEN);
    /* the dirty blocks: hash, store, and replace */
    MDB_txn *dt = dirty_wtxn(w);
    uint8_t *buf = malloc(MFS_CHUNK_SIZE);
    if (!buf) {
        free(hashes);
        return wtx_fail(w, -ENOMEM);
    }
    struct publish_arg pa = {w, &d, hashes, nblocks, id, bp, dt, buf};
    /* over content-defined chunks (a newer writer's): every block anew */
    for (uint64_t b = 0; bp && bp->ends && b < nblocks && !w->err; b++)
        publish_block(&pa, b);
    /* references first: a block's bytes, if it has both, are newer */
    int prc = bp && bp->ends
                  ? 0
                  : dirty_ref_each(w->s, w->txn, id, publish_ref, &pa);
    if (prc)
        wtx_fail(w, prc);
    if (dt && !w->err && !(bp && bp->ends)) {
        prc = dirty_each(w->s, dt, id, publish_block, &pa);
        if (prc && !w->err)
            wtx_fail(w, prc);
    }
    free(buf);
    if (w->err) {
        free(hashes);
        return w->err;
    }
    op->hashes = hashes;
    op->nchunks = (uint32_t)nblocks;
    return 0;
}

int content_version_hash(mfs_store *s, MDB_txn *txn, mfs_id id, mfs_stamp ver,
                         uint8_t out[HASH_LEN], uint64_t *size)
{
    version_view v;
    int rc = version_get(s, txn, id, ver, &v);
    if (rc)
        return rc;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, HASH_LEN);
    uint8_t sz[U64_LEN];
    mfs_be64_put(sz, v.size);
    crypto_generichash_update(&st, sz, U64_LEN);
    crypto_generichash_update(&st, v.hashes, (size_t)v.nchunks * HASH_LEN);
    if (v.ends) /* (holes of other lengths have the same hash) */
        crypto_generichash_update(&st, v.ends, (size_t)v.nchunks * U64_LEN);
    crypto_generichash_final(&st, out, HASH_LEN);
    *size = v.size;
    return 0;
}

int content_version_copy(mfs_store *s, MDB_txn *txn, mfs_id id,
                         mfs_stamp ver, mfs_op *op)
{
    version_view v;
    memset(op, 0, sizeof(*op));
    int rc = version_get(s, txn, id, ver, &v);
    if (rc)
        return rc;
    op->type = OP_VERSION;
    op->size = v.size;
    op->nchunks = v.nchunks;
    op->flags = v.flags & OPF_EXTENTS;
    op->hashes = v.nchunks ? malloc((size_t)v.nchunks * HASH_LEN) : NULL;
    op->ends = v.ends ? malloc((size_t)v.nchunks * U64_LEN) : NULL;
    if ((v.nchunks && !op->hashes) || (v.ends && !op->ends)) {
        op_clear(op);
        return -ENOMEM;
    }
    if (v.nchunks)
        memcpy(op->hashes, v.hashes, (size_t)v.nchunks * HASH_LEN);
    if (v.ends)
        memcpy(op->ends, v.ends, (size_t)v.nchunks * U64_LEN);
    return 0;
}

int content_version_chunks(mfs_store *s, MDB_txn *txn, mfs_id id, mfs_stamp ver,
                           uint8_t *out, size_t max, uint32_t *nchunks)
{
    version_view v;
    int rc = version_get(s, txn, id, ver, &v);
    if (rc)
        return rc;
    *nchunks = v.nchunks;
    if (out)
        memcpy(out, v.hashes,
               (size_t)(v.nchunks < max ? v.nchunks : max) * HASH_LEN);
    return 0;
}

bool content_seen(mfs_store *s, MDB_txn *txn, mfs_id id, const uint8_t *seen,
                  uint32_t nseen, mfs_stamp ver)
{
    mfs_stamp anc[256];
    uint32_t na = 0;
    for (uint32_t j = 0; j < nseen && na < 256; j++) {
        anc[na] = stamp_get(seen + (size_t)j * STAMP_LEN);
        if (stamp_eq(anc[na], ver))
            return true;
        na++;
    }
    /* breadth first through the parents of the seen versions, as far as
     * their records go */
    for (uint32_t i = 0; i < na; i++) {
        version_view v;
        if (version_get(s, txn, id, anc[i], &v))
            continue;
        for (uint32_t j = 0; j < v.nparents && na < 256; j++) {
            mfs_stamp p = stamp_get(v.parents + (size_t)j * STAMP_LEN);
            if (stamp_eq(p, ver))
                return true;
            bool dup = false;
            for (uint32_t k = 0; k < na && !dup; k++)
                dup = stamp_eq(anc[k], p);
            if (!dup)
                anc[na++] = p;
        }
    }
    return false;
}

int content_version_parents(mfs_store *s, MDB_txn *txn, mfs_id id,
                            mfs_stamp ver, mfs_stamp *out, uint32_t max,
                            uint32_t *n)
{
    version_view v;
    int rc = version_get(s, txn, id, ver, &v);
    if (rc)
        return rc;
    *n = v.nparents;
    for (uint32_t i = 0; i < v.nparents && i < max; i++)
        out[i] = stamp_get(v.parents + (size_t)i * STAMP_LEN);
    return 0;
}

ssize_t mfs_store_chunks_wanted_count(mfs_store *s)
{
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    MDB_stat st;
    rc = mdb_to_errno(mdb_stat(txn, s->db[DB_WANT], &st));
    store_read_end(s, txn);
    return rc ? rc : (ssize_t)st.ms_entries;
}
