/*
 * snapshot.c - folding the op log, and snapshots for the nodes that need
 * ops it no longer holds.
 *
 * Folding. Once an op is settled (every member holds it: sync/ computes the
 * settled vector, docs/REPLICATION.md) no member will ask for it again, and
 * its effect is in the state: the collector deletes it from DB_OPS, oldest
 * first, a bounded number per write transaction (oplog_fold_tx). What is
 * kept of it is a per-origin floor in DB_META ("floor" + origin -> seq and
 * hlc of the last op folded): ops at or below it are held (they are below
 * the vector) but can no longer be sent. The floor's hlc answers "is this
 * stamp settled" for the collector once the op itself is gone.
 *
 * Snapshots. A node whose vector is below a floor (a new member; a member
 * cannot be: folding waits for every member) cannot be sent ops. It is
 * sent the replicated state instead, read from one committed read txn of
 * the store: the op log that is left, the vector and floors, the raw tree
 * (entries, their children and inode links, the undo log of moves), inode
 * records, xattrs (the member registry with them), which versions are
 * superseded, every version record and the collection queue. Nothing
 * local travels: inode numbers, chunks, unpublished writes, the derived
 * view. The receiver writes the tree tables as they are, puts back the
 * superseded marks, applies each version record as the version op it
 * came from (so which versions it waits for follows from the chunks it
 * holds, as for ops; one marked superseded lands superseded, as one that
 * arrives after its descendant does), and rebuilds the view from the tree:
 * it then holds exactly what the sender held, and chunks follow on demand.
 * The marks cannot be worked out again from the versions sent: the
 * sender may have collected the version that superseded one it still
 * holds (each goes once its own cause is settled, in any order) or that
 * superseded one still to arrive (marked before it arrived); without its
 * mark such a version became a head on the receiver only, a conflict copy
 * no other node showed (replication simulator, seed 17 with per-node
 * keys).
 * The receiver need not be empty (a new node that changed files before it
 * caught up, or that pulled part of the log from a peer that had folded
 * less): it keeps the ops it holds beyond the snapshot's vector, drops its
 * replicated state and view, installs the snapshot and applies those ops
 * on top, as remote ops are applied (ops commute: the result is the state
 * of both). Its chunks, inode numbers and unpublished writes stay. Only a
 * store that folded an op the snapshot lacks refuses it (-ENOTEMPTY): that
 * op could not be given back.
 *
 * Format (all big-endian): "MFSSNAP1", u32 format (3), 32-byte BLAKE2b of
 * everything after it, u64 sender's hlc, then records [u8 table][u16 key
 * length][u32 value length][key][value], and a last byte 0xFF. The table
 * numbers and the records are those of store format 4: a store format
 * that changes them must change the snapshot format too. Format 2 (store
 * format 6): a version record may carry extents (OPF_EXTENTS), which a
 * build of format 1 would misread. Format 3: DB_SUPERSEDED records (key
 * (inode, stamp), empty value), before every DB_VERSIONS record; a build
 * of format 2 refuses them. This build installs all three (the older two
 * without marks, as they were installed before).
 */
#include "blake2b.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SNAP_MAGIC "MFSSNAP1"
#define SNAP_FORMAT 3
#define SNAP_FORMAT_MARKS 3  /* the first that carries DB_SUPERSEDED */
#define SNAP_FORMAT_OLDEST 1 /* the oldest this build installs */
/* The head: magic, format, sum of what follows it, then the sender's
 * hlc (the first thing the sum covers). */
#define SNAP_MAGIC_LEN 8
#define SNAP_FORMAT_AT SNAP_MAGIC_LEN
#define SNAP_SUM_AT (SNAP_FORMAT_AT + U32_LEN)
#define SNAP_HEAD (SNAP_SUM_AT + MFS_BLAKE2B256_LEN)
#define SNAP_HLC_AT SNAP_HEAD
#define SNAP_RECORDS_AT (SNAP_HLC_AT + U64_LEN)
_Static_assert(sizeof(SNAP_MAGIC) - 1 == SNAP_MAGIC_LEN, "magic length");
_Static_assert(SNAP_HEAD == 44, "snapshot head as format 1 lays it out");
/* A record's header: table u8, key length u16, value length u32. */
#define SNAP_REC_TABLE 0
#define SNAP_REC_KLEN (SNAP_REC_TABLE + 1)
#define SNAP_REC_VLEN (SNAP_REC_KLEN + 2)
#define SNAP_REC_HEAD (SNAP_REC_VLEN + U32_LEN)
_Static_assert(SNAP_REC_HEAD == 7, "snapshot record head");
#define SNAP_END 0xFF
#define FOLD_STEP 1024 /* ops deleted per write transaction */

/* ---- floors ---- */

static void floor_key(uint8_t k[META_FLOOR_KEY_LEN], uint64_t origin)
{
    memcpy(k, META_FLOOR_PREFIX, META_FLOOR_PREFIX_LEN);
    mfs_be64_put(k + META_FLOOR_KEY_ORIGIN, origin);
}

int oplog_floor(mfs_store *s, MDB_txn *txn, uint64_t origin, uint64_t *seq,
                uint64_t *hlc)
{
    uint8_t k[META_FLOOR_KEY_LEN];
    floor_key(k, origin);
    MDB_val v;
    *seq = 0;
    *hlc = 0;
    int rc = tget(s, txn, DB_META, k, META_FLOOR_KEY_LEN, &v);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return rc;
    if (v.mv_size != META_FLOOR_LEN)
        return -EIO;
    *seq = mfs_be64_get((const uint8_t *)v.mv_data + META_FLOOR_SEQ);
    *hlc = mfs_be64_get((const uint8_t *)v.mv_data + META_FLOOR_HLC);
    return 0;
}

static int floor_below(void *arg, uint64_t origin, uint64_t seq, uint64_t hlc)
{
    (void)hlc;
    return mfs_vv_get(arg, origin) < seq ? -ESTALE : 0;
}

int oplog_check_have(mfs_store *s, MDB_txn *txn, const mfs_vv *have)
{
    return oplog_floors_each(s, txn, floor_below, (void *)have);
}

static int floor_add(void *arg, uint64_t origin, uint64_t seq, uint64_t hlc)
{
    (void)hlc;
    mfs_vv *vv = arg;
    mfs_vv_entry *e = realloc(vv->e, (vv->n + 1) * sizeof(*e));
    if (!e)
        return -ENOMEM;
    vv->e = e;
    vv->e[vv->n].node = origin;
    vv->e[vv->n].seq = seq;
    vv->n++;
    return 0;
}

int oplog_floors(mfs_store *s, MDB_txn *txn, mfs_vv *out)
{
    out->n = 0;
    out->e = NULL;
    int rc = oplog_floors_each(s, txn, floor_add, out);
    if (rc)
        mfs_vv_free(out);
    return rc;
}

int mfs_store_log_floor(mfs_store *s, mfs_vv *out)
{
    MDB_txn *txn;
    int rc = store_read_begin_committed(s, &txn);
    if (rc)
        return rc;
    rc = oplog_floors(s, txn, out);
    store_read_end(s, txn);
    return rc;
}

/* ---- folding ---- */

int oplog_fold_tx(wtx *w, void *arg)
{
    fold_step *a = arg;
    mfs_store *s = w->s;
    size_t left = FOLD_STEP;
    MDB_cursor *c;
    int rc = mdb_cursor_open(w->txn, s->db[DB_OPS], &c);
    if (rc)
        return wtx_fail(w, rc);
    while (a->next < a->settled->n && left && !w->err) {
        uint64_t origin = a->settled->e[a->next].node;
        uint64_t upto = a->settled->e[a->next].seq;
        uint64_t fseq, fhlc;
        if ((rc = oplog_floor(s, w->txn, origin, &fseq, &fhlc)) != 0) {
            wtx_fail(w, rc);
            break;
        }
        uint8_t k[OPS_KEY_LEN];
        ops_key_put(k, origin, fseq + 1);
        MDB_val key = {OPS_KEY_LEN, k}, val;
        uint64_t seq = fseq, hlc = fhlc;
        int r = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
        while (r == 0 && left && key.mv_size == OPS_KEY_LEN &&
               mfs_be64_get(key.mv_data) == origin &&
               mfs_be64_get((const uint8_t *)key.mv_data + OPS_KEY_SEQ) <=
                   upto) {
            seq = mfs_be64_get((const uint8_t *)key.mv_data + OPS_KEY_SEQ);
            op_head h;
            if (op_head_decode(val.mv_data, val.mv_size, &h) >= OP_HDR_OBJ)
                hlc = h.hlc;
            wtx_undo_cursor(w, c);
            r = mdb_cursor_del(c, 0);
            wtx_mut(w);
            if (r) {
                wtx_fail(w, r);
                break;
            }
            a->folded++;
            left--;
            r = cursor_after_del(c, &key, &val);
        }
        if (r && r != MDB_NOTFOUND && !w->err)
            wtx_fail(w, r);
        if (seq != fseq) {
            uint8_t fk[META_FLOOR_KEY_LEN], fv[META_FLOOR_LEN];
            floor_key(fk, origin);
            mfs_be64_put(fv + META_FLOOR_SEQ, seq);
            mfs_be64_put(fv + META_FLOOR_HLC, hlc);
            tput(w, DB_META, fk, META_FLOOR_KEY_LEN, fv, META_FLOOR_LEN);
        }
        if (left)
            a->next++; /* this origin is done up to its settled op */
    }
    mdb_cursor_close(c);
    a->done = a->next >= a->settled->n;
    return w->err;
}

/* ---- snapshots: building ----
 * A snapshot is written to a file, never held whole in memory (376 bytes a
 * file: 376 MB for a million files, twice over while the sender also
 * served it from memory). The file is in the store's directory, on the
 * store's disk rather than a small /tmp, and has no name: its space goes
 * back when its last descriptor closes, on every path and also when the
 * process dies. Records are gathered SNAP_WBUF bytes at a time, and the sum
 * is computed as they are written (libsodium's streaming BLAKE2b: the same
 * bytes as mfs_blake2b256, which is one-shot), then written into the head
 * last. */
#define SNAP_WBUF (1u << 20) /* bytes gathered per pwrite */

/* A new empty file in the store's directory, with no name (see above):
 * O_TMPFILE where the filesystem has it, else snapshot.WHAT.tmp, created
 * and unlinked at once (one a crash left in between is removed here, the
 * next time). */
static int snap_tmpfile(mfs_store *s, const char *what, int *fd)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/snapshot.%s.tmp", s->dir, what);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    if (unlink(path) == 0)
        mfs_log(LOG_NOTICE, "store %s: removed %s, left by an earlier run",
                s->dir, path);
    *fd = open(s->dir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
    if (*fd >= 0)
        return 0;
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
        return -errno;
    *fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (*fd < 0)
        return -errno;
    if (unlink(path)) {
        int rc = -errno;
        close(*fd);
        *fd = -1;
        return rc;
    }
    return 0;
}

int mfs_store_snapshot_spool_put(int fd, const void *p, size_t n, uint64_t off)
{
    return pwrite_all(fd, p, n, off);
}

int mfs_store_snapshot_spool(mfs_store *s, int *fd)
{
    return snap_tmpfile(s, "in", fd);
}

/* A snapshot being written to its file; keeps its first error. */
typedef struct swriter {
    int fd;
    uint8_t *buf; /* SNAP_WBUF bytes, n of them used */
    size_t n;
    uint64_t off;                 /* where buf[0] goes in the file */
    crypto_generichash_state sum; /* of everything after the head */
    int err;
} swriter;

static void sw_flush(swriter *w)
{
    if (w->err || !w->n)
        return;
    size_t skip = 0; /* the head is not summed */
    if (w->off < SNAP_HEAD)
        skip = SNAP_HEAD - w->off < w->n ? (size_t)(SNAP_HEAD - w->off) : w->n;
    crypto_generichash_update(&w->sum, w->buf + skip, w->n - skip);
    w->err = pwrite_all(w->fd, w->buf, w->n, w->off);
    w->off += w->n;
    w->n = 0;
}

static void sw_put(swriter *w, const void *d, size_t n)
{
    const uint8_t *p = d;
    while (n && !w->err) {
        if (w->n == SNAP_WBUF)
            sw_flush(w);
        size_t k = SNAP_WBUF - w->n < n ? SNAP_WBUF - w->n : n;
        memcpy(w->buf + w->n, p, k);
        w->n += k;
        p += k;
        n -= k;
    }
}

static void sw_record(swriter *w, uint8_t table, const MDB_val *k,
                      const MDB_val *v)
{
    uint8_t h[SNAP_REC_HEAD];
    h[SNAP_REC_TABLE] = table;
    h[SNAP_REC_KLEN] = (uint8_t)(k->mv_size >> 8);
    h[SNAP_REC_KLEN + 1] = (uint8_t)k->mv_size;
    mfs_be32_put(h + SNAP_REC_VLEN, (uint32_t)v->mv_size);
    sw_put(w, h, SNAP_REC_HEAD);
    sw_put(w, k->mv_data, k->mv_size);
    sw_put(w, v->mv_data, v->mv_size);
}

/* The tables a snapshot carries, in the order the receiver needs them:
 * inode records before the versions that update their times, superseded
 * marks before the versions they mark. */
static const uint8_t snap_tables[] = {
    DB_VV,    DB_OPS,    DB_MOVES,  DB_ENTRIES,    DB_RCHILD,   DB_ILINKS,
    DB_TFROM, DB_INODES, DB_XATTRS, DB_SUPERSEDED, DB_VERSIONS, DB_GCQ,
};

static bool snap_table(uint8_t t)
{
    for (size_t i = 0; i < sizeof(snap_tables); i++)
        if (snap_tables[i] == t)
            return true;
    return t == DB_META; /* floors only */
}

static int floor_record(void *arg, uint64_t origin, uint64_t seq, uint64_t hlc)
{
    uint8_t k[META_FLOOR_KEY_LEN], v[META_FLOOR_LEN];
    floor_key(k, origin);
    mfs_be64_put(v + META_FLOOR_SEQ, seq);
    mfs_be64_put(v + META_FLOOR_HLC, hlc);
    MDB_val key = {META_FLOOR_KEY_LEN, k}, val = {META_FLOOR_LEN, v};
    sw_record(arg, DB_META, &key, &val);
    return ((swriter *)arg)->err;
}

/* The records of one committed read txn, after the head. */
static int snap_records(mfs_store *s, swriter *w, mfs_snapshot_info *inf)
{
    MDB_txn *txn;
    int rc = store_read_begin_committed(s, &txn);
    if (rc)
        return rc;
    uint8_t head[SNAP_RECORDS_AT];
    memset(head, 0, sizeof(head));
    memcpy(head, SNAP_MAGIC, SNAP_MAGIC_LEN);
    mfs_be32_put(head + SNAP_FORMAT_AT, SNAP_FORMAT);
    /* read after the txn began: above every stamp it holds (the hlc as
     * the last write txn saved it: s->hlc itself is the writer's, under
     * wlock, and this runs on a thread of its own; ThreadSanitizer) */
    mfs_be64_put(head + SNAP_HLC_AT,
                 __atomic_load_n(&s->hlc_pub, __ATOMIC_RELAXED));
    sw_put(w, head, sizeof(head));
    rc = oplog_floors_each(s, txn, floor_record, w);
    for (size_t i = 0; !rc && !w->err && i < sizeof(snap_tables); i++) {
        MDB_cursor *c;
        rc = mdb_to_errno(mdb_cursor_open(txn, s->db[snap_tables[i]], &c));
        if (rc)
            break;
        MDB_val key, val;
        int r = mdb_cursor_get(c, &key, &val, MDB_FIRST);
        while (r == 0 && !w->err) {
            sw_record(w, snap_tables[i], &key, &val);
            inf->records++;
            if (snap_tables[i] == DB_OPS)
                inf->ops++;
            else if (snap_tables[i] == DB_INODES)
                inf->inodes++;
            else if (snap_tables[i] == DB_ENTRIES)
                inf->entries++;
            else if (snap_tables[i] == DB_VERSIONS)
                inf->versions++;
            r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
        }
        mdb_cursor_close(c);
        if (r && r != MDB_NOTFOUND)
            rc = mdb_to_errno(r);
    }
    store_read_end(s, txn);
    uint8_t end = SNAP_END;
    sw_put(w, &end, 1);
    return rc ? rc : w->err;
}

int mfs_store_snapshot_file(mfs_store *s, int *fd, uint64_t *len,
                            mfs_snapshot_info *info)
{
    *fd = -1;
    *len = 0;
    swriter w = {.fd = -1};
    mfs_snapshot_info inf = {0};
    uint8_t sum[MFS_BLAKE2B256_LEN];
    int rc = snap_tmpfile(s, "out", &w.fd);
    if (rc)
        return rc;
    if (!(w.buf = malloc(SNAP_WBUF))) {
        rc = -ENOMEM;
        goto out;
    }
    crypto_generichash_init(&w.sum, NULL, 0, MFS_BLAKE2B256_LEN);
    if ((rc = snap_records(s, &w, &inf)) != 0)
        goto out;
    sw_flush(&w);
    crypto_generichash_final(&w.sum, sum, sizeof(sum));
    if ((rc = w.err) != 0 ||
        (rc = pwrite_all(w.fd, sum, sizeof(sum), SNAP_SUM_AT)) != 0)
        goto out;
    inf.bytes = w.off;
    *fd = w.fd;
    *len = w.off;
    w.fd = -1;
    if (info)
        *info = inf;
out:
    free(w.buf);
    if (w.fd >= 0)
        close(w.fd);
    return rc;
}

/* ---- snapshots: installing ---- */

typedef struct install {
    const uint8_t *p;
    size_t len;
    uint32_t format;
    uint64_t hlc;
    mfs_vv vv; /* the snapshot's vector */
    mfs_snapshot_info info;
} install;

typedef struct rec {
    uint8_t table;
    MDB_val k, v;
} rec;

/* The record at *off, or -EBADMSG; 1 at the end mark. */
static int rec_next(const install *in, size_t *off, rec *r)
{
    if (*off >= in->len)
        return -EBADMSG;
    if (in->p[*off] == SNAP_END)
        return *off + 1 == in->len ? 1 : -EBADMSG;
    if (in->len - *off < SNAP_REC_HEAD)
        return -EBADMSG;
    const uint8_t *h = in->p + *off;
    r->table = h[SNAP_REC_TABLE];
    size_t kl = ((size_t)h[SNAP_REC_KLEN] << 8) | h[SNAP_REC_KLEN + 1];
    size_t vl = mfs_be32_get(h + SNAP_REC_VLEN);
    if (!snap_table(r->table) || kl == 0 || kl > 511 || vl > MFS_MAX_OP_BYTES ||
        in->len - *off - SNAP_REC_HEAD < kl + vl)
        return -EBADMSG;
    r->k = (MDB_val){kl, (void *)(h + SNAP_REC_HEAD)};
    r->v = (MDB_val){vl, (void *)(h + SNAP_REC_HEAD + kl)};
    *off += SNAP_REC_HEAD + kl + vl;
    return 0;
}

/* A version record (schema.h VERSION_*) as the op that made it. */
static int version_op(const rec *r, mfs_op *op)
{
    if (r->k.mv_size != VKEY_LEN)
        return -EBADMSG;
    memset(op, 0, sizeof(*op));
    op->type = OP_VERSION;
    op->obj = id_get((const uint8_t *)r->k.mv_data + VKEY_INODE);
    op->st = stamp_get((const uint8_t *)r->k.mv_data + VKEY_STAMP);
    version_view v;
    if (version_decode(r->v.mv_data, r->v.mv_size, &v) || !extents_valid(&v))
        return -EBADMSG;
    op->flags = v.flags;
    op->size = v.size;
    op->mtime = v.mtime;
    op->ctime = v.ctime;
    op->nparents = v.nparents;
    op->parents = v.parents;
    op->nchunks = v.nchunks;
    op->hashes = (uint8_t *)v.hashes;
    op->ends = (uint8_t *)v.ends;
    op->nknown = v.nknown;
    op->known = v.known;
    op->kfloor = v.kfloor;
    return 0;
}

/* Checks the whole snapshot before anything is written. */
static int install_check(install *in)
{
    size_t off = SNAP_RECORDS_AT;
    rec r;
    int rc;
    bool versions = false; /* a version record came: no mark may follow */
    while ((rc = rec_next(in, &off, &r)) == 0) {
        mfs_op op;
        switch (r.table) {
        case DB_VERSIONS:
            if (version_op(&r, &op))
                return -EBADMSG;
            versions = true;
            in->info.versions++;
            break;
        case DB_SUPERSEDED:
            /* a mark after a version it marks would come too late for it
             * (install_tx applies the records in order) */
            if (in->format < SNAP_FORMAT_MARKS || versions ||
                r.k.mv_size != VKEY_LEN || r.v.mv_size != 0)
                return -EBADMSG;
            break;
        case DB_OPS:
            if (r.k.mv_size != OPS_KEY_LEN ||
                op_decode(r.v.mv_data, r.v.mv_size, &op))
                return -EBADMSG;
            op_clear(&op);
            in->info.ops++;
            break;
        case DB_VV: {
            if (r.k.mv_size != VV_KEY_LEN || r.v.mv_size != VV_VAL_LEN)
                return -EBADMSG;
            mfs_vv_entry *e =
                realloc(in->vv.e, (in->vv.n + 1) * sizeof(*in->vv.e));
            if (!e)
                return -ENOMEM;
            in->vv.e = e;
            e[in->vv.n].node = mfs_be64_get(r.k.mv_data);
            e[in->vv.n].seq = mfs_be64_get(r.v.mv_data);
            in->vv.n++;
            break;
        }
        case DB_META:
            if (r.k.mv_size != META_FLOOR_KEY_LEN ||
                memcmp(r.k.mv_data, META_FLOOR_PREFIX, META_FLOOR_PREFIX_LEN) ||
                r.v.mv_size != META_FLOOR_LEN)
                return -EBADMSG;
            break;
        case DB_ENTRIES:
            in->info.entries++;
            break;
        case DB_INODES:
            if (r.k.mv_size != ID_KEY_LEN)
                return -EBADMSG;
            in->info.inodes++;
            break;
        default:
            break;
        }
        in->info.records++;
    }
    return rc == 1 ? 0 : rc;
}

static int floor_above(void *arg, uint64_t origin, uint64_t seq, uint64_t hlc)
{
    (void)hlc;
    return seq > mfs_vv_get(arg, origin) ? -ENOTEMPTY : 0;
}

/* The ops this store holds that vv lacks (logged: above vv), copied. */
typedef struct extra {
    uint8_t **raw;
    size_t *len;
    size_t n, cap;
} extra;

static void extra_free(extra *x)
{
    for (size_t i = 0; i < x->n; i++)
        free(x->raw[i]);
    free(x->raw);
    free(x->len);
    memset(x, 0, sizeof(*x));
}

static int extra_add(extra *x, const MDB_val *v)
{
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 64;
        uint8_t **raw = realloc(x->raw, cap * sizeof(*raw));
        if (raw)
            x->raw = raw;
        size_t *len = raw ? realloc(x->len, cap * sizeof(*len)) : NULL;
        if (!len)
            return -ENOMEM;
        x->len = len;
        x->cap = cap;
    }
    if (!(x->raw[x->n] = malloc(v->mv_size ? v->mv_size : 1)))
        return -ENOMEM;
    memcpy(x->raw[x->n], v->mv_data, v->mv_size);
    x->len[x->n++] = v->mv_size;
    return 0;
}

static int extra_read(mfs_store *s, MDB_txn *txn, const mfs_vv *vv, extra *x)
{
    MDB_cursor *c;
    int rc = mdb_to_errno(mdb_cursor_open(txn, s->db[DB_OPS], &c));
    MDB_val key, val;
    int r = rc ? MDB_NOTFOUND : mdb_cursor_get(c, &key, &val, MDB_FIRST);
    while (r == 0 && !rc) {
        uint64_t origin = mfs_be64_get(key.mv_data);
        uint64_t from = mfs_vv_get(vv, origin) + 1;
        uint8_t k[OPS_KEY_LEN];
        ops_key_put(k, origin, from);
        key = (MDB_val){OPS_KEY_LEN, k};
        r = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
        while (r == 0 && !rc && mfs_be64_get(key.mv_data) == origin) {
            rc = extra_add(x, &val);
            r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
        }
    }
    if (!rc)
        mdb_cursor_close(c);
    return rc;
}

/* Applies the ops this store held beyond the snapshot on top of it, as
 * remote ops are (they commute with the snapshot's). */
static void extra_apply(wtx *w, const extra *x)
{
    mfs_op *ops = calloc(x->n ? x->n : 1, sizeof(*ops));
    const mfs_op **moves = calloc(x->n ? x->n : 1, sizeof(*moves));
    size_t nmoves = 0, nops = 0;
    if (!ops || !moves)
        wtx_fail(w, -ENOMEM);
    for (size_t i = 0; i < x->n && !w->err; i++) {
        if (op_decode(x->raw[i], x->len[i], &ops[nops])) {
            wtx_fail(w, -EIO);
            break;
        }
        mfs_op *op = &ops[nops++];
        if (op_apply_remote(w, op, x->raw[i], x->len[i], true) == 0 &&
            op->type == OP_MOVE)
            moves[nmoves++] = op;
    }
    tree_apply_moves(w, moves, nmoves);
    for (size_t i = 0; i < nops; i++)
        op_clear(&ops[i]);
    free(ops);
    free(moves);
}

/* The replicated state and what is derived from it, all of which a
 * snapshot replaces; chunks, inode numbers and unpublished writes stay. */
static const uint8_t replaced[] = {
    DB_OPS,   DB_VV,      DB_MOVES,     DB_ENTRIES,  DB_RCHILD, DB_ILINKS,
    DB_TFROM, DB_INODES,  DB_XATTRS,    DB_VERSIONS, DB_GCQ,    DB_SUPERSEDED,
    DB_VMISSING, DB_WANT, DB_DIRENTS,   DB_VENT,     DB_GROUPS, DB_LINKS,
    DB_NSUB,  DB_CCOPY,   DB_HEADS,     DB_CDIRS,    DB_NLINK,
};

static int floor_del(void *arg, uint64_t origin, uint64_t seq, uint64_t hlc)
{
    (void)seq;
    (void)hlc;
    uint8_t k[META_FLOOR_KEY_LEN];
    floor_key(k, origin);
    return tdel(arg, DB_META, k, META_FLOOR_KEY_LEN);
}

/* Versions this node still reads that a snapshot may lack (its sender
 * collected them): the bases of unpublished writes and the versions open
 * files pin. Their records are read before the install and put back after
 * it when the snapshot lacks them, superseded and queued for collection,
 * which drops them once nothing here holds them: as they were on the
 * sender before it collected them. Their chunks stay (an install keeps
 * chunks). Without this, a file with unpublished writes lost the blocks it
 * had not rewritten, and an open file read -EIO (replication simulator,
 * seed 39). */
typedef struct held {
    size_t n, cap;
    uint8_t (*k)[VKEY_LEN];
    MDB_val *v; /* copies, owned */
} held;

static void held_add(wtx *w, held *h, mfs_id inode, mfs_stamp ver)
{
    uint8_t k[VKEY_LEN];
    vkey_put(k, inode, ver);
    for (size_t i = 0; i < h->n; i++)
        if (!memcmp(h->k[i], k, VKEY_LEN))
            return;
    MDB_val v;
    if ((!ver.hlc && !ver.node) ||
        tget(w->s, w->txn, DB_VERSIONS, k, VKEY_LEN, &v) != 0)
        return;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        uint8_t(*nk)[VKEY_LEN] = realloc(h->k, cap * sizeof(*nk));
        if (nk)
            h->k = nk;
        MDB_val *nv = nk ? realloc(h->v, cap * sizeof(*nv)) : NULL;
        if (nv)
            h->v = nv;
        if (!nk || !nv) {
            wtx_fail(w, -ENOMEM);
            return;
        }
        h->cap = cap;
    }
    void *copy = malloc(v.mv_size ? v.mv_size : 1);
    if (!copy) {
        wtx_fail(w, -ENOMEM);
        return;
    }
    memcpy(copy, v.mv_data, v.mv_size);
    memcpy(h->k[h->n], k, VKEY_LEN);
    h->v[h->n] = (MDB_val){v.mv_size, copy};
    h->n++;
}

static void held_read(wtx *w, held *h)
{
    MDB_cursor *c;
    if (mdb_cursor_open(w->txn, w->s->db[DB_DINFO], &c)) {
        wtx_fail(w, -EIO);
        return;
    }
    MDB_val key, val;
    int r = mdb_cursor_get(c, &key, &val, MDB_FIRST);
    while (r == 0 && !w->err) {
        dinfo_rec d;
        if (key.mv_size == ID_KEY_LEN &&
            dinfo_get(w->s, w->txn, id_get(key.mv_data), &d) == 0)
            held_add(w, h, id_get(key.mv_data), d.base);
        r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    mfs_id pin_inode[256];
    mfs_stamp pin_ver[256];
    size_t n = gc_pins_list(w->s, pin_inode, pin_ver, 256);
    for (size_t i = 0; i < n && i < 256 && !w->err; i++)
        held_add(w, h, pin_inode[i], pin_ver[i]);
}

static void held_restore(wtx *w, const held *h)
{
    for (size_t i = 0; i < h->n && !w->err; i++) {
        MDB_val v;
        if (tget(w->s, w->txn, DB_VERSIONS, h->k[i], VKEY_LEN, &v) == 0)
            continue; /* the snapshot has it */
        tput(w, DB_VERSIONS, h->k[i], VKEY_LEN, h->v[i].mv_data,
             h->v[i].mv_size);
        tput(w, DB_SUPERSEDED, h->k[i], VKEY_LEN, "", 0);
        mfs_stamp ver = stamp_get(h->k[i] + VKEY_STAMP);
        gc_queue(w, id_get(h->k[i] + VKEY_INODE), ver, ver);
    }
}

static void held_free(held *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->v[i].mv_data);
    free(h->k);
    free(h->v);
}

static int install_tx(wtx *w, void *arg)
{
    install *in = arg;
    mfs_store *s = w->s;
    w->remote = true;
    w->recount = true; /* the census counted what the install replaces */
    /* ops folded here that the snapshot lacks cannot be given back */
    int rc = oplog_floors_each(s, w->txn, floor_above, &in->vv);
    if (rc)
        return wtx_fail(w, rc);
    /* ops logged here that it lacks go on top of it */
    extra x = {0};
    if ((rc = extra_read(s, w->txn, &in->vv, &x)) != 0) {
        extra_free(&x);
        return wtx_fail(w, rc);
    }
    in->info.extra = x.n;
    held keep = {0};
    held_read(w, &keep);
    for (size_t i = 0; i < sizeof(replaced) && !w->err; i++) {
        wtx_undo_lost(w);
        rc = mdb_drop(w->txn, s->db[replaced[i]], 0);
        wtx_mut(w);
        if (rc)
            wtx_fail(w, rc);
    }
    oplog_floors_each(s, w->txn, floor_del, w);
    size_t off = SNAP_RECORDS_AT;
    rec r;
    while (!w->err && rec_next(in, &off, &r) == 0) {
        mfs_op op;
        switch (r.table) {
        case DB_VERSIONS:
            /* as the op it came from: what this store waits for follows
             * from the chunks it holds */
            if (version_op(&r, &op) == 0)
                content_apply_version(w, &op);
            break;
        case DB_INODES: {
            tput(w, DB_INODES, r.k.mv_data, ID_KEY_LEN, r.v.mv_data,
                 r.v.mv_size);
            inode_rec ir;
            mfs_id id = id_get(r.k.mv_data);
            if (inode_get(s, w->txn, id, &ir) != 0) {
                wtx_fail(w, -EBADMSG);
                break;
            }
            /* what shows is this store's to find (its chunks) */
            ir.shown = (mfs_stamp){0, 0};
            ir.size = ir.blocks = 0;
            ir.nheads = 0;
            inode_put(w, id, &ir);
            view_touch_inode(w, id);
            /* one the kernel may know (root, or a file of ours): its
             * attributes may have changed */
            uint64_t ino;
            objkey ok = obj_inode(id);
            if (ino_of_obj(s, w->txn, &ok, &ino) == 0)
                wtx_change(w, MFS_CHANGE_INODE, ino, NULL);
            break;
        }
        case DB_ENTRIES:
            tput(w, r.table, r.k.mv_data, r.k.mv_size, r.v.mv_data,
                 r.v.mv_size);
            if (r.k.mv_size == ID_KEY_LEN)
                view_touch_entry(w, id_get(r.k.mv_data));
            break;
        case DB_OPS: {
            const uint8_t *kb = r.k.mv_data;
            uint64_t origin = mfs_be64_get(kb + OPS_KEY_ORIGIN);
            if (origin == s->node) { /* our own ops, from before */
                uint64_t seq = mfs_be64_get(kb + OPS_KEY_SEQ);
                if (seq > s->seq)
                    s->seq = seq;
            }
            tput(w, r.table, r.k.mv_data, r.k.mv_size, r.v.mv_data,
                 r.v.mv_size);
            break;
        }
        case DB_SUPERSEDED: /* before the versions: those land superseded */
        default:
            tput(w, r.table, r.k.mv_data, r.k.mv_size, r.v.mv_data,
                 r.v.mv_size);
            break;
        }
    }
    if (in->hlc > s->hlc)
        s->hlc = in->hlc; /* every stamp it holds is below it */
    held_restore(w, &keep);
    held_free(&keep);
    extra_apply(w, &x);
    extra_free(&x);
    w->gc_queued = true;
    return w->err;
}

int mfs_store_snapshot_install(mfs_store *s, const uint8_t *buf, size_t len,
                               mfs_snapshot_info *info)
{
    if (len < SNAP_RECORDS_AT + 1 || memcmp(buf, SNAP_MAGIC, SNAP_MAGIC_LEN) ||
        mfs_be32_get(buf + SNAP_FORMAT_AT) < SNAP_FORMAT_OLDEST ||
        mfs_be32_get(buf + SNAP_FORMAT_AT) > SNAP_FORMAT)
        return -EBADMSG;
    uint8_t sum[MFS_BLAKE2B256_LEN];
    mfs_blake2b256(sum, buf + SNAP_HEAD, len - SNAP_HEAD);
    if (memcmp(sum, buf + SNAP_SUM_AT, sizeof(sum)))
        return -EBADMSG;
    install in = {.p = buf,
                  .len = len,
                  .format = mfs_be32_get(buf + SNAP_FORMAT_AT),
                  .hlc = mfs_be64_get(buf + SNAP_HLC_AT)};
    int rc = install_check(&in);
    if (rc) {
        mfs_vv_free(&in.vv);
        return rc;
    }
    in.info.bytes = len;
    /* what the group holds first: while install_tx holds the writer's
     * lock (seconds for a big one), a reader of a group not committed
     * yet would wait for it (store_read_begin), and the sync thread
     * reads the store while an install runs on a thread of its own */
    if (s->gc_on)
        rc = mfs_store_commit(s, 0);
    if (!rc)
        rc = store_write(s, install_tx, &in);
    mfs_snapshot_info counted = in.info;
    if (!rc)
        rc = mfs_store_commit(s, 1);
    if (!rc) {
        mfs_log(LOG_NOTICE,
                "store %s: installed a snapshot of %zu bytes: %" PRIu64
                " inodes, %" PRIu64 " entries, %" PRIu64 " versions, %" PRIu64
                " ops, and %" PRIu64 " ops of this store's on top",
                s->dir, len, counted.inodes, counted.entries, counted.versions,
                counted.ops, counted.extra);
        gc_wake(s);
    }
    if (info)
        *info = counted;
    mfs_vv_free(&in.vv);
    return rc;
}
