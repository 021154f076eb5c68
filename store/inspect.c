/*
 * inspect.c - read-only views of a store for `meshfs stat` and tests:
 * counts, one file's version and chunks, conflict copies, and the canonical
 * dump that two converged replicas print byte for byte alike. Never writes.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>

static uint64_t db_entries(mfs_store *s, MDB_txn *txn, int db)
{
    MDB_stat st;
    return mdb_stat(txn, s->db[db], &st) ? 0 : st.ms_entries;
}

/* The counts of visible names the old way, by scans of every name,
 * chunk and listing. Conflicts: the names listed under a generated name,
 * conflict copies and renamed entries (what mfs_store_conflicts lists;
 * this counted the conflict-copy records before, which a listing may
 * still show for a moment after they went: the simulator's long seeds
 * 1010 and 1027). */
static void stats_scan(mfs_store *s, MDB_txn *txn, mfs_store_stats *out)
{
    store_count_files(s, txn, out);
    MDB_cursor *c;
    MDB_val key, val;
    if (mdb_cursor_open(txn, s->db[DB_CHUNKS], &c) == 0) {
        int r = mdb_cursor_get(c, &key, &val, MDB_FIRST);
        while (r == 0) {
            out->chunk_bytes += chunk_val_len(&val);
            r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
        }
        mdb_cursor_close(c);
    }
    /* entries shown under a conflict name */
    if (mdb_cursor_open(txn, s->db[DB_DIRENTS], &c) == 0) {
        int r = mdb_cursor_get(c, &key, &val, MDB_FIRST);
        while (r == 0) {
            dirent_rec d;
            if (view_dirent_decode(&val, &d) == 0 && d.kind == OBJ_CCOPY) {
                out->conflicts++;
            } else if (d.kind == OBJ_INODE) {
                entry_rec er;
                size_t n = key.mv_size - DIRENT_KEY_NAME;
                if (entry_get(s, txn, d.entry, &er) == 0 &&
                    (strlen(er.name) != n ||
                     memcmp(er.name, (uint8_t *)key.mv_data + DIRENT_KEY_NAME,
                            n)))
                    out->conflicts++;
            }
            r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
        }
        mdb_cursor_close(c);
    }
}

static int stats_read(mfs_store *s, mfs_store_stats *out, bool scan)
{
    memset(out, 0, sizeof(*out));
    out->node_id = s->node;
    out->commits = __atomic_load_n(&s->commits, __ATOMIC_RELAXED);
    char path[4096];
    snprintf(path, sizeof(path), "%s/data.mdb", s->dir);
    struct stat st;
    if (stat(path, &st) == 0)
        out->store_bytes = (uint64_t)st.st_size;
    snprintf(path, sizeof(path), "%s/intent.log", s->dir);
    if (stat(path, &st) == 0)
        out->log_bytes = (uint64_t)st.st_size;
    /* Pages in use, as of the last commit: a walk of LMDB's free list
     * (table 0; each record a count of page numbers, then the numbers) in
     * a read snapshot, which no writer waits for. */
    MDB_txn *txn;
    int rc = store_read_begin_committed(s, &txn);
    if (rc)
        return rc;
    {
        MDB_envinfo info;
        MDB_stat est;
        uint64_t freepg = 0;
        MDB_cursor *fc;
        MDB_val fk, fv;
        if (mdb_cursor_open(txn, 0, &fc) == 0) {
            while (mdb_cursor_get(fc, &fk, &fv, MDB_NEXT) == 0)
                if (fv.mv_size >= sizeof(size_t))
                    freepg += *(const size_t *)fv.mv_data;
            mdb_cursor_close(fc);
        }
        if (mdb_env_info(s->env, &info) == 0 &&
            mdb_env_stat(s->env, &est) == 0 &&
            info.me_last_pgno + 1 >= freepg)
            out->used_bytes =
                (uint64_t)(info.me_last_pgno + 1 - freepg) * est.ms_psize;
        out->map_bytes = info.me_mapsize;
    }
    store_read_end(s, txn);
    /* The counts: what every thread sees now. `meshfs stat` reads the
     * group's uncommitted txn under the writer lock for the few
     * microseconds the kept counts take (store_read_begin); it used to
     * commit the group first (a disk flush that writers, and replication
     * applying a batch, waited for). A scan commits, then reads a
     * snapshot: it would hold the lock too long. */
    rc = scan ? store_read_begin_scan(s, &txn) : store_read_begin(s, &txn);
    if (rc)
        return rc;
    out->ops = db_entries(s, txn, DB_OPS);
    {
        mfs_vv fl = {0};
        if (oplog_floors(s, txn, &fl) == 0)
            for (size_t i = 0; i < fl.n; i++)
                out->ops_folded += fl.e[i].seq;
        mfs_vv_free(&fl);
    }
    {
        uint8_t nk[VV_KEY_LEN];
        MDB_val v;
        mfs_be64_put(nk, s->node);
        if (tget(s, txn, DB_VV, nk, VV_KEY_LEN, &v) == 0 &&
            v.mv_size == VV_VAL_LEN)
            out->local_seq = mfs_be64_get(v.mv_data); /* not s->seq: no lock */
    }
    out->chunks = db_entries(s, txn, DB_CHUNKS);
    out->entry_records = db_entries(s, txn, DB_ENTRIES);
    out->move_records = db_entries(s, txn, DB_MOVES);
    out->inode_records = db_entries(s, txn, DB_INODES);
    out->ino_records = db_entries(s, txn, DB_INO2OBJ);
    uint64_t inline_live;
    packs_stats(s, txn, &out->pack_files, &out->pack_bytes, &out->pack_live,
                &inline_live);
    out->dirty_files = db_entries(s, txn, DB_DINFO);
    struct census c;
    if (!scan && census_get(s, txn, &c) == 0) {
        out->files = (uint64_t)c.files;
        out->dirs = (uint64_t)c.dirs;
        out->symlinks = (uint64_t)c.symlinks;
        out->others = (uint64_t)c.others;
        out->bytes = (uint64_t)c.bytes;
        out->conflicts = (uint64_t)c.conflicts;
        out->chunk_bytes = out->pack_live + inline_live;
    } else {
        stats_scan(s, txn, out); /* (a store of format 4 opened read-only) */
    }
    store_read_end(s, txn);
    return 0;
}
int mfs_store_stats_get(mfs_store *s, mfs_store_stats *out)
{
    return stats_read(s, out, false);
}

int mfs_store_stats_scan(mfs_store *s, mfs_store_stats *out)
{
    return stats_read(s, out, true);
}

int mfs_store_conflicts(mfs_store *s, void (*cb)(void *arg, const char *path),
                        void *arg, size_t max)
{
    /* as of the last commit (at most a group window, 5-20 ms, behind
     * what the mount shows): `meshfs stat` lists them, and neither forces
     * a commit nor holds the writer lock for a walk */
    MDB_txn *txn;
    int rc = store_read_begin_committed(s, &txn);
    if (rc)
        return rc;
    /* only directories that show generated names hold any (DB_CDIRS): a
     * walk of every listing took 0.25 s at a million files */
    MDB_cursor *c = NULL, *dc = NULL;
    MDB_val key, val, dkey, dval;
    size_t n = 0;
    if (mdb_cursor_open(txn, s->db[DB_DIRENTS], &c))
        c = NULL;
    else if (mdb_cursor_open(txn, s->db[DB_CDIRS], &dc))
        dc = NULL;
    if (c && dc) {
        int dr = mdb_cursor_get(dc, &dkey, &dval, MDB_FIRST);
        int r = MDB_NOTFOUND;
        if (dr == 0 && dkey.mv_size == ID_KEY_LEN) {
            key = (MDB_val){ID_KEY_LEN, dkey.mv_data};
            r = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
        }
        while (r == 0 && n < max) {
            if (key.mv_size < ID_LEN ||
                memcmp(key.mv_data, dkey.mv_data, ID_LEN)) {
                /* past this directory's names: the next one's */
                dr = mdb_cursor_get(dc, &dkey, &dval, MDB_NEXT);
                if (dr || dkey.mv_size != ID_KEY_LEN)
                    break;
                key = (MDB_val){ID_KEY_LEN, dkey.mv_data};
                r = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
                continue;
            }
            dirent_rec d;
            size_t nl = key.mv_size - DIRENT_KEY_NAME;
            char name[MFS_NAME_MAX + 1];
            memcpy(name, (uint8_t *)key.mv_data + DIRENT_KEY_NAME, nl);
            name[nl] = 0;
            bool conflict = false;
            if (view_dirent_decode(&val, &d) == 0) {
                entry_rec er;
                conflict = d.kind == OBJ_CCOPY ||
                           (entry_get(s, txn, d.entry, &er) == 0 &&
                            strcmp(er.name, name));
            }
            if (conflict) {
                char dir[4096], path[4096 + MFS_NAME_MAX + 2];
                if (view_path(s, txn, id_get(key.mv_data), dir, sizeof(dir)) ==
                    0) {
                    snprintf(path, sizeof(path), "%s%s%s", dir,
                             strcmp(dir, "/") ? "/" : "", name);
                    cb(arg, path);
                    n++;
                }
            }
            r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
        }
    }
    if (dc)
        mdb_cursor_close(dc);
    if (c)
        mdb_cursor_close(c);
    store_read_end(s, txn);
    return (int)n;
}

int mfs_store_file_info(mfs_store *s, uint64_t ino, mfs_file_info *out,
                        uint8_t *hashes, size_t max)
{
    memset(out, 0, sizeof(*out));
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    objkey k;
    rc = ino_lookup_obj(s, txn, ino, &k);
    inode_rec in;
    if (!rc) {
        out->ino = ino;
        out->id = objkey_id(&k);
        rc = inode_get(s, txn, out->id, &in);
    }
    if (!rc) {
        out->version =
            objkey_kind(&k) == OBJ_CCOPY ? objkey_stamp(&k) : in.shown;
        out->heads = in.nheads;
        dinfo_rec d;
        out->dirty = dinfo_get(s, txn, out->id, &d) == 0;
        if (out->version.hlc) {
            content_version_hash(s, txn, out->id, out->version, out->content,
                                 &out->size);
            content_version_chunks(s, txn, out->id, out->version, hashes,
                                   hashes ? max : 0, &out->nchunks);
        }
    }
    store_read_end(s, txn);
    return rc;
}

/* ---- canonical dump ---- */

typedef struct dumper {
    mfs_store *s;
    MDB_txn *txn;
    void (*cb)(void *arg, const char *line);
    void *arg;
    int err;
} dumper;

static void hex(char *out, const uint8_t *p, size_t n)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = 0;
}

static void dump_xattrs(dumper *d, mfs_id id, char *out, size_t cap)
{
    out[0] = 0;
    MDB_cursor *c;
    if (mdb_cursor_open(d->txn, d->s->db[DB_XATTRS], &c))
        return;
    uint8_t pk[ID_KEY_LEN];
    id_put(pk, id);
    MDB_val key = {ID_KEY_LEN, pk}, val;
    size_t len = 0;
    int r = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (r == 0 && key.mv_size > XATTR_KEY_NAME &&
           !memcmp(key.mv_data, pk, ID_LEN)) {
        if (val.mv_size >= XATTR_VAL_DATA &&
            ((uint8_t *)val.mv_data)[XATTR_VAL_PRESENT] == 1) {
            uint8_t h[16];
            crypto_generichash(h, 16, (uint8_t *)val.mv_data + XATTR_VAL_DATA,
                               val.mv_size - XATTR_VAL_DATA, NULL, 0);
            char hx[33];
            hex(hx, h, 16);
            int n = snprintf(out + len, cap - len, " x:%.*s=%s",
                             (int)(key.mv_size - XATTR_KEY_NAME),
                             (char *)key.mv_data + XATTR_KEY_NAME, hx);
            if (n < 0 || (size_t)n >= cap - len)
                break;
            len += (size_t)n;
        }
        r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
}

static void dump_dir(dumper *d, mfs_id dir, const char *path, int depth)
{
    if (depth > 256) {
        d->err = -ELOOP;
        return;
    }
    MDB_cursor *c;
    if (mdb_cursor_open(d->txn, d->s->db[DB_DIRENTS], &c)) {
        d->err = -EIO;
        return;
    }
    uint8_t pk[ID_KEY_LEN];
    id_put(pk, dir);
    MDB_val key = {ID_KEY_LEN, pk}, val;
    /* collect first: recursion opens more cursors */
    size_t n = 0, cap = 0;
    struct item {
        char name[MFS_NAME_MAX + 1];
        dirent_rec d;
    } *items = NULL;
    int r = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (r == 0 && key.mv_size > DIRENT_KEY_NAME &&
           !memcmp(key.mv_data, pk, ID_LEN)) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            struct item *ni = realloc(items, cap * sizeof(*ni));
            if (!ni) {
                d->err = -ENOMEM;
                break;
            }
            items = ni;
        }
        size_t nl = key.mv_size - DIRENT_KEY_NAME;
        memcpy(items[n].name, (uint8_t *)key.mv_data + DIRENT_KEY_NAME, nl);
        items[n].name[nl] = 0;
        view_dirent_decode(&val, &items[n].d);
        n++;
        r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    for (size_t i = 0; i < n && !d->err; i++) {
        dirent_rec *e = &items[i].d;
        char p[8192];
        snprintf(p, sizeof(p), "%s/%s", path, items[i].name);
        inode_rec in;
        if (inode_get(d->s, d->txn, e->inode, &in)) {
            d->err = -EIO;
            break;
        }
        char content[80] = "-";
        mfs_stamp ver = e->kind == OBJ_CCOPY ? e->ver : in.shown;
        uint64_t size = in.type == S_IFLNK ? in.targetlen : 0;
        if (in.type == S_IFREG && ver.hlc) {
            uint8_t h[HASH_LEN];
            if (content_version_hash(d->s, d->txn, e->inode, ver, h, &size))
                snprintf(content, sizeof content, "MISSING"); /* a fault */
            else
                hex(content, h, 16);
        }
        char xs[2048];
        dump_xattrs(d, e->inode, xs, sizeof(xs));
        char line[16384];
        snprintf(line, sizeof(line),
                 "%s %s ino=%016" PRIx64 ":%" PRIu64 " mode=%o uid=%u gid=%u "
                 "nlink=%u size=%" PRIu64 " atime=%" PRId64 " mtime=%" PRId64
                 " ctime=%" PRId64 " rdev=%" PRIu64 " data=%s%s%s%.*s",
                 e->kind == OBJ_CCOPY ? "copy" : "entry", p, e->inode.node,
                 e->inode.seq, in.type | in.mode.v, in.uid.v, in.gid.v,
                 e->kind == OBJ_CCOPY
                     ? 1
                     : view_nlink(d->s, d->txn, e->inode, in.type),
                 size, in.atime.v, in.mtime.v, in.ctime.v, in.rdev, content, xs,
                 in.type == S_IFLNK ? " -> " : "",
                 (int)(in.type == S_IFLNK ? in.targetlen : 0), in.target);
        d->cb(d->arg, line);
        if (in.type == S_IFDIR && e->kind == OBJ_INODE)
            dump_dir(d, e->inode, p, depth + 1);
    }
    free(items);
}

/* MESHFS_DUMP_RAW (tests' diagnostics): after the tree, every version
 * record with its state, the entries of its inode and what the deleting
 * moves had seen, and the collection queue. Not canonical: replicas that
 * collected at different times differ here. */
static void dump_raw(mfs_store *s, MDB_txn *txn,
                     void (*cb)(void *arg, const char *line), void *arg)
{
    MDB_cursor *c, *c2;
    MDB_val key, val, x;
    char line[1024];
    if (mdb_cursor_open(txn, s->db[DB_VERSIONS], &c))
        return;
    int r = mdb_cursor_get(c, &key, &val, MDB_FIRST);
    while (r == 0) {
        const uint8_t *k = key.mv_data;
        mfs_id id = id_get(k + VKEY_INODE);
        mfs_stamp st = stamp_get(k + VKEY_STAMP);
        mfs_stamp par[8];
        uint32_t np = 0;
        content_version_parents(s, txn, id, st, par, 8, &np);
        int n = snprintf(
            line, sizeof line,
            "raw version %016" PRIx64 ":%" PRIu64 " %" PRIx64 ".%016" PRIx64
            " missing=%d superseded=%d head=%d absent=%" PRIu64 " parents",
            id.node, id.seq, st.hlc, st.node,
            tget(s, txn, DB_VMISSING, k, VKEY_LEN, &x) == 0
                ? (int)mfs_be32_get(x.mv_data)
                : -1,
            tget(s, txn, DB_SUPERSEDED, k, VKEY_LEN, &x) == 0,
            tget(s, txn, DB_HEADS, k, VKEY_LEN, &x) == 0,
            version_absent(s, txn, id, st));
        for (uint32_t i = 0; i < np && i < 8 && n < 900; i++)
            n += snprintf(line + n, sizeof line - (size_t)n,
                          " %" PRIx64 ".%016" PRIx64, par[i].hlc, par[i].node);
        cb(arg, line);
        if (mdb_cursor_open(txn, s->db[DB_ILINKS], &c2) == 0) {
            MDB_val k2 = {ID_KEY_LEN, (void *)k}, v2;
            int r2 = mdb_cursor_get(c2, &k2, &v2, MDB_SET_RANGE);
            while (r2 == 0 && k2.mv_size == PAIR_KEY_LEN &&
                   !memcmp(k2.mv_data, k, ID_LEN)) {
                entry_rec er;
                mfs_op mv;
                int e1 = entry_get(
                    s, txn, id_get((uint8_t *)k2.mv_data + PAIR_KEY_B), &er);
                int e2 = e1 || !er.exists
                             ? -1
                             : tree_last_move(s, txn, er.st, &mv, NULL);
                n = snprintf(
                    line, sizeof line,
                    "  entry in_trash=%d last_move=%d st=%" PRIx64
                    ".%016" PRIx64 " known=%d seen",
                    !e1 && er.exists && id_eq(er.parent, MFS_ID_TRASH), e2,
                    e1 ? 0 : er.st.hlc, e1 ? 0 : er.st.node,
                    !e1 && content_knows_delete(s, txn, id, st, er.st));
                for (uint32_t j = 0; !e2 && j < mv.nseen && n < 900; j++)
                    n += snprintf(line + n, sizeof line - (size_t)n,
                                  " %" PRIx64 ".%016" PRIx64,
                                  stamp_get(mv.seen + STAMP_LEN * j).hlc,
                                  stamp_get(mv.seen + STAMP_LEN * j).node);
                cb(arg, line);
                r2 = mdb_cursor_get(c2, &k2, &v2, MDB_NEXT);
            }
            mdb_cursor_close(c2);
        }
        r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (mdb_cursor_open(txn, s->db[DB_GCQ], &c))
        return;
    r = mdb_cursor_get(c, &key, &val, MDB_FIRST);
    while (r == 0) {
        if (key.mv_size == GCQ_KEY_LEN) {
            const uint8_t *k = key.mv_data;
            mfs_id qid = id_get(k + GCQ_KEY_ID);
            mfs_stamp qst = stamp_get(k + GCQ_KEY_STAMP);
            snprintf(line, sizeof line,
                     "raw queued %" PRIu64 " %016" PRIx64 ":%" PRIu64
                     " %" PRIx64 ".%016" PRIx64,
                     mfs_be64_get(k + GCQ_KEY_TIME), qid.node, qid.seq, qst.hlc,
                     qst.node);
            cb(arg, line);
        }
        r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
}

int mfs_store_dump(mfs_store *s, void (*cb)(void *arg, const char *line),
                   void *arg)
{
    MDB_txn *txn;
    int rc = store_read_begin_scan(s, &txn);
    if (rc)
        return rc;
    dumper d = {s, txn, cb, arg, 0};
    inode_rec root;
    if (inode_get(s, txn, MFS_ID_ROOT, &root) == 0) {
        char line[256];
        snprintf(line, sizeof(line),
                 "root mode=%o uid=%u gid=%u mtime=%" PRId64, root.mode.v,
                 root.uid.v, root.gid.v, root.mtime.v);
        cb(arg, line);
    }
    dump_dir(&d, MFS_ID_ROOT, "", 0);
    if (getenv("MESHFS_DUMP_RAW"))
        dump_raw(s, txn, cb, arg);
    store_read_end(s, txn);
    return d.err;
}

/* The op at or after (origin, seq) in the log: its seq and hlc, or 0. */
static uint64_t op_at_or_after(MDB_cursor *c, uint64_t origin, uint64_t seq,
                               uint64_t *hlc)
{
    uint8_t k[OPS_KEY_LEN];
    ops_key_put(k, origin, seq);
    MDB_val key = {OPS_KEY_LEN, k}, val;
    op_head h;
    if (mdb_cursor_get(c, &key, &val, MDB_SET_RANGE) != 0 ||
        key.mv_size != OPS_KEY_LEN ||
        mfs_be64_get((const uint8_t *)key.mv_data + OPS_KEY_ORIGIN) != origin ||
        op_head_decode(val.mv_data, val.mv_size, &h) < OP_HDR_OBJ)
        return 0; /* (an op too short to hold its hlc) */
    *hlc = h.hlc;
    return mfs_be64_get((const uint8_t *)key.mv_data + OPS_KEY_SEQ);
}

/* The last seq of origin in the log (0: none). */
static uint64_t op_last_seq(MDB_cursor *c, uint64_t origin)
{
    uint8_t k[OPS_KEY_LEN];
    ops_key_put(k, origin + 1, 0);
    MDB_val key = {OPS_KEY_LEN, k}, val;
    int rc = origin == UINT64_MAX
                 ? mdb_cursor_get(c, &key, &val, MDB_LAST)
                 : mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    if (rc == 0 && origin != UINT64_MAX)
        rc = mdb_cursor_get(c, &key, &val, MDB_PREV);
    else if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(c, &key, &val, MDB_LAST);
    if (rc || key.mv_size != OPS_KEY_LEN ||
        mfs_be64_get((const uint8_t *)key.mv_data + OPS_KEY_ORIGIN) != origin)
        return 0;
    return mfs_be64_get((const uint8_t *)key.mv_data + OPS_KEY_SEQ);
}

uint64_t op_hlc_at(mfs_store *s, MDB_cursor *c, uint64_t origin, uint64_t seq)
{
    uint64_t hlc = 0, fseq, fhlc;
    if (op_at_or_after(c, origin, seq, &hlc) == seq)
        return hlc;
    /* folded: the floor keeps the hlc of the last op it took */
    if (oplog_floor(s, mdb_cursor_txn(c), origin, &fseq, &fhlc) == 0 &&
        fseq == seq)
        return fhlc;
    return 0;
}

int op_seq_of_stamp(mfs_store *s, MDB_cursor *c, mfs_stamp st, uint64_t *seq)
{
    /* folded out of the log: its seq is at most the floor's, which is
     * enough for "is it settled" and "does a peer hold it" */
    uint64_t fseq, fhlc;
    if (oplog_floor(s, mdb_cursor_txn(c), st.node, &fseq, &fhlc) == 0 &&
        fseq && st.hlc <= fhlc) {
        *seq = fseq;
        return 0;
    }
    /* one origin stamps its ops in sequence order: search by stamp,
     * between its first op and its last (log2 of its ops, not 64, steps) */
    uint64_t lo = fseq + 1, hi = op_last_seq(c, st.node), hlc = 0;
    while (lo <= hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        uint64_t got = op_at_or_after(c, st.node, mid, &hlc);
        if (!got) {
            if (mid == 0)
                break;
            hi = mid - 1;
            continue;
        }
        if (hlc == st.hlc) {
            *seq = got;
            return 0;
        }
        if (hlc < st.hlc)
            lo = got + 1;
        else {
            if (mid == 0)
                break;
            hi = mid - 1;
        }
    }
    return -ENOENT;
}

int store_ops_cursor(mfs_store *s, MDB_txn **txn, MDB_cursor **c)
{
    int rc = store_read_begin_committed(s, txn);
    if (rc)
        return rc;
    rc = mdb_to_errno(mdb_cursor_open(*txn, s->db[DB_OPS], c));
    if (rc)
        store_read_end(s, *txn);
    return rc;
}

static int vv_entry_cmp(const void *a, const void *b)
{
    uint64_t x = ((const mfs_vv_entry *)a)->node;
    uint64_t y = ((const mfs_vv_entry *)b)->node;
    return x < y ? -1 : x > y;
}

/* store_hooks.held: per origin, the least hlc of its versions that wait
 * for a chunk, as of txn (a version's stamp is its publish op's: an
 * origin's hlcs grow with its sequence numbers, so this says which of its
 * ops the store holds whole without looking them up, folded or not). */
int store_held(mfs_store *s, MDB_txn *txn, mfs_vv *out)
{
    MDB_cursor *c;
    size_t cap = 0;
    out->n = 0;
    out->e = NULL;
    int rc = mdb_to_errno(mdb_cursor_open(txn, s->db[DB_WANT], &c));
    if (rc)
        return rc;
    MDB_val key, val;
    int r = mdb_cursor_get(c, &key, &val, MDB_FIRST);
    for (; r == 0 && !rc; r = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
        if (key.mv_size != WANT_KEY_LEN)
            continue;
        mfs_stamp st = stamp_get((const uint8_t *)key.mv_data + WANT_KEY_STAMP);
        size_t i = 0;
        while (i < out->n && out->e[i].node != st.node)
            i++;
        if (i < out->n) {
            if (st.hlc < out->e[i].seq)
                out->e[i].seq = st.hlc;
            continue;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 8;
            mfs_vv_entry *g = realloc(out->e, cap * sizeof(*g));
            if (!g) {
                rc = -ENOMEM;
                break;
            }
            out->e = g;
        }
        out->e[out->n++] = (mfs_vv_entry){st.node, st.hlc};
    }
    mdb_cursor_close(c);
    if (rc)
        mfs_vv_free(out);
    else if (out->n) /* sorted by node, as every vector (none: e NULL) */
        qsort(out->e, out->n, sizeof(*out->e), vv_entry_cmp);
    return rc;
}

int mfs_store_op_hlc(mfs_store *s, uint64_t origin, uint64_t seq, uint64_t *hlc)
{
    MDB_txn *txn;
    MDB_cursor *c;
    *hlc = 0;
    if (!seq)
        return 0;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    rc = mdb_to_errno(mdb_cursor_open(txn, s->db[DB_OPS], &c));
    if (!rc) {
        *hlc = op_hlc_at(s, c, origin, seq);
        mdb_cursor_close(c);
        rc = *hlc ? 0 : -ENOENT;
    }
    store_read_end(s, txn);
    return rc;
}

int mfs_store_stamp_seq(mfs_store *s, mfs_stamp st, uint64_t *seq)
{
    MDB_txn *txn;
    MDB_cursor *c;
    int rc = store_ops_cursor(s, &txn, &c);
    if (rc)
        return rc;
    rc = op_seq_of_stamp(s, c, st, seq);
    mdb_cursor_close(c);
    store_read_end(s, txn);
    return rc;
}

/* Are all non-hole chunks of version (id, st) here? Counts the absent. */
uint64_t version_absent(mfs_store *s, MDB_txn *txn, mfs_id id, mfs_stamp st)
{
    uint32_t n = 0;
    if (content_version_chunks(s, txn, id, st, NULL, 0, &n) != 0)
        return 1; /* the record itself is gone */
    uint8_t *h = n ? malloc((size_t)n * MFS_HASH_LEN) : NULL;
    if (n && (!h || content_version_chunks(s, txn, id, st, h, n, &n) != 0)) {
        free(h);
        return 1;
    }
    static const uint8_t zero[MFS_HASH_LEN];
    uint64_t absent = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *x = h + (size_t)i * MFS_HASH_LEN;
        MDB_val v;
        if (memcmp(x, zero, MFS_HASH_LEN) &&
            tget(s, txn, DB_CHUNKS, x, MFS_HASH_LEN, &v) != 0)
            absent++;
    }
    free(h);
    return absent;
}

/* Calls fn for every record of table db (read txn txn). */
static void each_record(mfs_store *s, MDB_txn *txn, int db,
                        void (*fn)(mfs_store *s, MDB_txn *txn, const MDB_val *k,
                                   const MDB_val *v, uint64_t *absent),
                        uint64_t *absent)
{
    MDB_cursor *c;
    MDB_val key, val;
    if (mdb_cursor_open(txn, s->db[db], &c))
        return;
    int r = mdb_cursor_get(c, &key, &val, MDB_FIRST);
    while (r == 0) {
        fn(s, txn, &key, &val, absent);
        r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
}

/* a head: what a file or a conflict copy shows */
static void verify_head(mfs_store *s, MDB_txn *txn, const MDB_val *k,
                        const MDB_val *v, uint64_t *absent)
{
    (void)v;
    if (k->mv_size == VKEY_LEN)
        *absent +=
            version_absent(s, txn, id_get((uint8_t *)k->mv_data + VKEY_INODE),
                           stamp_get((uint8_t *)k->mv_data + VKEY_STAMP));
}

/* the base of a file's unpublished writes */
static void verify_base(mfs_store *s, MDB_txn *txn, const MDB_val *k,
                        const MDB_val *v, uint64_t *absent)
{
    (void)v;
    dinfo_rec d;
    if (k->mv_size == ID_KEY_LEN &&
        dinfo_get(s, txn, id_get(k->mv_data), &d) == 0 &&
        (d.base.hlc || d.base.node))
        *absent += version_absent(s, txn, id_get(k->mv_data), d.base);
}

/* a whole block written but not yet published */
static void verify_ref(mfs_store *s, MDB_txn *txn, const MDB_val *k,
                       const MDB_val *v, uint64_t *absent)
{
    (void)k;
    MDB_val x;
    if (v->mv_size == MFS_HASH_LEN &&
        tget(s, txn, DB_CHUNKS, v->mv_data, MFS_HASH_LEN, &x) != 0)
        (*absent)++;
}

int mfs_store_verify(mfs_store *s, uint64_t *absent)
{
    *absent = 0;
    MDB_txn *txn;
    int rc = store_read_begin_scan(s, &txn);
    if (rc)
        return rc;
    each_record(s, txn, DB_HEADS, verify_head, absent);
    each_record(s, txn, DB_DINFO, verify_base, absent);
    each_record(s, txn, DB_DREFS, verify_ref, absent);
    store_read_end(s, txn);
    return *absent ? -EIO : 0;
}
