/*
 * dirty.c - unpublished file blocks, kept in a second LMDB environment
 * (STORE/dirty/) that is never synced.
 *
 * Why a second environment: the main one must survive a power cut, so each
 * of its commits flushes its pages to disk (MDB_NOMETASYNC, txn.c). File
 * data written but not yet published (closed, fsync'd, or the periodic
 * publish) needs no such promise: on a local disk, too, a crash may lose it.
 * Kept here, a write(2) costs a copy into the page cache and no flush, and
 * the main store's commits stay small. What must hold:
 *  - A kill -9 loses nothing committed here (the page cache keeps it), so
 *    the blocks are used again after a restart on the same boot.
 *  - After a power cut or reboot this environment may be torn (unsynced):
 *    it is thrown away whole, and every file's unpublished state (DB_DINFO
 *    in the main store) with it, so files show their last published
 *    version. Published and fsync'd data never lives only here: publish
 *    moves blocks into chunks of the main store before the dirty state is
 *    dropped.
 *  - Blocks are committed here before the main store's write that refers
 *    to them, and only when that write succeeded; blocks of an inode with
 *    no DB_DINFO record are stale (a kill -9 between the two) and are
 *    dropped when the inode next gets unpublished state.
 *  - Whole 4 KiB pages written inside a block are kept as pages (table
 *    "pages"), laid over the block's bytes, reference or base when read,
 *    so a random 4 KiB write copies 4 KiB here, not the block. A block
 *    has at most 8 pages over it (content.c folds them into its bytes on
 *    the next write); a truncate into it or a whole-block write drops
 *    them. An older build does not open "pages" and would not see them:
 *    they are unpublished writes, which only a crash leaves behind.
 *  - A block written whole is not kept here: the writer hashes it (outside
 *    the store's lock), it becomes a chunk of the main store at once, and
 *    DB_DREFS there records (inode, block) -> hash. The chunk and its
 *    reference commit together; publish only copies the hash. This halves
 *    what a large write copies, and moves its hashing out of close and
 *    fsync into the writing threads. References are unpublished state too:
 *    a new boot drops them with DB_DINFO (their chunks stay, unreferenced,
 *    until collection frees them).
 * Must never: be read by another process, or hold the only copy of data
 * that fsync() acknowledged.
 */
#include "kv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BOOT_ID "/proc/sys/kernel/random/boot_id"

static void dkey(uint8_t *k, mfs_id id, uint64_t blk)
{
    id_put(k, id);
    mfs_be64_put(k + DKEY_BLOCK, blk);
}

/* The running kernel's boot id ("" when unknown). */
static void boot_id(char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen(BOOT_ID, "r");
    if (!f)
        return;
    if (!fgets(out, (int)cap, f))
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
}

static void path_of(const mfs_store *s, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/dirty%s%s", s->dir, *name ? "/" : "", name);
}

/* Deletes every record of table db in the main store, calling each (if
 * not NULL) with it first; counts them in *n. */
static int drain(wtx *w, int db, size_t *n,
                 void (*each)(wtx *w, const MDB_val *k, const MDB_val *v))
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(w->txn, w->s->db[db], &c);
    if (rc)
        return wtx_fail(w, rc);
    MDB_val key, val;
    rc = mdb_cursor_get(c, &key, &val, MDB_FIRST);
    while (rc == 0 && !w->err) {
        if (each)
            each(w, &key, &val);
        rc = mdb_cursor_del(c, 0);
        wtx_mut(w);
        if (rc) {
            wtx_fail(w, rc);
            break;
        }
        (*n)++;
        rc = mdb_cursor_get(c, &key, &val, MDB_GET_CURRENT);
    }
    mdb_cursor_close(c);
    return w->err;
}

/* Drops every file's unpublished state in the main store (the blocks are
 * gone); *arg counts the files. */
static int tx_forget_all_dinfo(wtx *w, void *arg)
{
    size_t refs = 0;
    if (drain(w, DB_DREFS, &refs, NULL))
        return w->err;
    return drain(w, DB_DINFO, arg, NULL);
}

static void move_block(wtx *w, const MDB_val *k, const MDB_val *v)
{
    if (k->mv_size == DKEY_LEN)
        dirty_put(w, id_get(k->mv_data),
                  mfs_be64_get((uint8_t *)k->mv_data + DKEY_BLOCK), v->mv_data,
                  v->mv_size);
}

/* Moves blocks a store of an earlier build kept in the main store's
 * DB_DIRTY into this environment; *arg counts them. */
static int tx_migrate(wtx *w, void *arg)
{
    return drain(w, DB_DIRTY, arg, move_block);
}

/* Creates and opens the environment of directory dir (s->denv, its two
 * tables). */
static int env_open(mfs_store *s, const char *dir)
{
    int rc = mdb_env_create(&s->denv);
    if (rc)
        return mdb_to_errno(rc);
    mdb_env_set_maxdbs(s->denv, 3);
    mdb_env_set_maxreaders(s->denv, 256);
    char dfile[4096];
    struct stat st;
    path_of(s, "data.mdb", dfile, sizeof dfile);
    /* the first map size is the main store's (cfg.map_size): it grows on
     * demand, as that one does (txn.c) */
    s->dmapsize = s->cfg.map_size ? s->cfg.map_size : (size_t)1 << 30;
    while (stat(dfile, &st) == 0 && (size_t)st.st_size > s->dmapsize)
        s->dmapsize <<= 1;
    mdb_env_set_mapsize(s->denv, s->dmapsize);
    rc = mdb_env_open(s->denv, dir, MDB_NOTLS | MDB_NOSYNC | MDB_NORDAHEAD,
                      0600);
    MDB_txn *txn = NULL;
    if (!rc)
        rc = mdb_txn_begin(s->denv, NULL, 0, &txn);
    if (!rc)
        rc = mdb_dbi_open(txn, "dirty", MDB_CREATE, &s->ddb);
    if (!rc)
        rc = mdb_dbi_open(txn, "pages", MDB_CREATE, &s->dpdb);
    if (!rc)
        rc = mdb_txn_commit(txn);
    else if (txn)
        mdb_txn_abort(txn);
    if (rc) {
        mdb_env_close(s->denv);
        s->denv = NULL;
        return mdb_to_errno(rc);
    }
    return 0;
}

int dirty_open(mfs_store *s)
{
    char dir[4096], bootf[4096], boot[64], was[64] = "";
    path_of(s, "", dir, sizeof dir);
    path_of(s, "boot", bootf, sizeof bootf);
    boot_id(boot, sizeof boot);
    FILE *f = fopen(bootf, "r");
    if (f) {
        if (!fgets(was, sizeof was, f))
            was[0] = '\0';
        fclose(f);
        was[strcspn(was, "\n")] = '\0';
    }
    bool keep = *boot && !strcmp(boot, was);
    if (!keep) {
        /* a new boot (or a first open): whatever is there may be torn */
        char p[4096];
        path_of(s, "data.mdb", p, sizeof p);
        bool had = access(p, F_OK) == 0;
        unlink(p);
        path_of(s, "lock.mdb", p, sizeof p);
        unlink(p);
        size_t lost = 0;
        int rc = store_write(s, tx_forget_all_dinfo, &lost);
        if (rc)
            return rc;
        if (lost || had)
            mfs_log(LOG_WARNING,
                    "store %s: the machine restarted since the last mount: "
                    "unpublished writes of %zu file(s) were dropped (each "
                    "shows its last closed or fsync'd version)",
                    s->dir, lost);
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    int rc = env_open(s, dir);
    if (rc)
        return rc;
    if (!keep) {
        int fd = open(bootf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        size_t n = strlen(boot);
        boot[n] = '\n';
        bool ok = fd >= 0 && write(fd, boot, n + 1) == (ssize_t)(n + 1);
        if (fd >= 0 && close(fd) != 0)
            ok = false;
        if (!ok)
            return -EIO;
    }
    size_t moved = 0;
    rc = store_write(s, tx_migrate, &moved);
    if (moved)
        mfs_log(LOG_INFO, "store %s: moved %zu unpublished block(s) to %s",
                s->dir, moved, dir);
    return rc;
}

bool dirty_oversized(mfs_store *s)
{
    MDB_envinfo info;
    MDB_stat st, a, b;
    MDB_txn *t;
    if (!s->denv || mdb_env_info(s->denv, &info) || mdb_env_stat(s->denv, &st) ||
        ((uint64_t)info.me_last_pgno + 1) * st.ms_psize < DIRTY_SHRINK_BYTES ||
        mdb_txn_begin(s->denv, NULL, MDB_RDONLY, &t))
        return false;
    bool empty = mdb_stat(t, s->ddb, &a) == 0 && a.ms_entries == 0 &&
                 mdb_stat(t, s->dpdb, &b) == 0 && b.ms_entries == 0;
    mdb_txn_abort(t);
    return empty;
}

int dirty_shrink(mfs_store *s)
{
    char dir[4096], p[4096];
    path_of(s, "", dir, sizeof dir);
    path_of(s, "data.mdb", p, sizeof p);
    mdb_env_close(s->denv);
    s->denv = NULL;
    if (unlink(p) < 0)
        mfs_log(LOG_WARNING,
                "store %s: cannot delete %s to shrink it: %s; it is opened "
                "again at its old size",
                s->dir, p, strerror(errno));
    int rc = env_open(s, dir);
    if (rc)
        mfs_log(LOG_ERR,
                "store %s: cannot open %s again: %s; writes fail (read-only "
                "file system) until the store is mounted again",
                s->dir, dir, strerror(-rc));
    return rc;
}

void dirty_close(mfs_store *s)
{
    if (!s->denv)
        return;
    /* no file has unpublished writes (an unmount publishes them all): the
     * environment holds nothing, and its file, which keeps the size of
     * the most data ever unpublished at once, goes (the next open makes
     * a new one) */
    MDB_txn *txn;
    bool empty = false;
    if (s->env && mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) == 0) {
        MDB_stat st;
        empty = mdb_stat(txn, s->db[DB_DINFO], &st) == 0 && st.ms_entries == 0;
        mdb_txn_abort(txn);
    }
    mdb_env_close(s->denv);
    s->denv = NULL;
    if (empty) {
        char p[4096];
        path_of(s, "data.mdb", p, sizeof p);
        unlink(p);
        path_of(s, "lock.mdb", p, sizeof p);
        unlink(p);
    }
}

MDB_txn *dirty_wtxn(wtx *w)
{
    if (w->dtxn || w->err)
        return w->dtxn;
    if (!w->s->denv) {
        wtx_fail(w, -EROFS);
        return NULL;
    }
    /* under group commit, a call's blocks nest in the group's dirty txn
     * (its main changes go in the group's txn, txn.c gc_write), and both
     * commit together */
    MDB_txn *parent = NULL;
    if (w->s->gc_on && w->s->gc_in_call)
        parent = w->s->gc_dtxn;
    int rc = mdb_txn_begin(w->s->denv, parent, 0, &w->dtxn);
    if (rc) {
        w->dtxn = NULL;
        wtx_fail(w, rc);
    }
    return w->dtxn;
}

int dirty_commit(wtx *w)
{
    if (!w->dtxn)
        return 0;
    int rc = mdb_txn_commit(w->dtxn);
    w->dtxn = NULL;
    if (rc == MDB_MAP_FULL) {
        w->dfull = true;
        return MDB_MAP_FULL; /* raw: store_write grows the map, runs again */
    }
    return rc ? store_commit_errno(w->s, mdb_to_errno(rc)) : 0;
}

void dirty_abort(wtx *w)
{
    if (w->dtxn)
        mdb_txn_abort(w->dtxn);
    w->dtxn = NULL;
}

int dirty_read_begin(mfs_store *s, MDB_txn **txn)
{
    *txn = NULL;
    if (!s->denv)
        return 0; /* read-only open: no unpublished blocks to see */
    return mdb_to_errno(mdb_txn_begin(s->denv, NULL, MDB_RDONLY, txn));
}

void dirty_read_end(MDB_txn *txn)
{
    if (txn)
        mdb_txn_abort(txn);
}

int dirty_get(mfs_store *s, MDB_txn *dtxn, mfs_id id, uint64_t blk, MDB_val *v)
{
    if (!dtxn)
        return -ENOENT;
    uint8_t k[DKEY_LEN];
    dkey(k, id, blk);
    MDB_val key = {DKEY_LEN, k};
    int rc = mdb_get(dtxn, s->ddb, &key, v);
    return rc == MDB_NOTFOUND ? -ENOENT : mdb_to_errno(rc);
}

int dirty_put(wtx *w, mfs_id id, uint64_t blk, const void *data, size_t len)
{
    MDB_txn *t = dirty_wtxn(w);
    if (!t)
        return w->err;
    uint8_t k[DKEY_LEN];
    dkey(k, id, blk);
    MDB_val key = {DKEY_LEN, k}, val = {len, (void *)data};
    w->dwritten += len + 64;
    wtx_mut(w);
    int rc = mdb_put(t, w->s->ddb, &key, &val, 0);
    if (rc == MDB_MAP_FULL)
        w->dfull = true; /* (kept raw: store_write grows the map) */
    return rc ? wtx_fail(w, rc) : 0;
}

int dirty_del(wtx *w, mfs_id id, uint64_t blk)
{
    MDB_txn *t = dirty_wtxn(w);
    if (!t)
        return w->err;
    uint8_t k[DKEY_LEN];
    dkey(k, id, blk);
    MDB_val key = {DKEY_LEN, k};
    int rc = mdb_del(t, w->s->ddb, &key, NULL);
    if (rc == 0)
        wtx_mut(w);
    if (rc && rc != MDB_NOTFOUND)
        return wtx_fail(w, rc);
    return dirty_pages_del(w, id, blk);
}

/* Deletes id's records at or past block first from table dbi of txn. */
static int del_from(wtx *w, MDB_txn *txn, MDB_dbi dbi, mfs_id id,
                    uint64_t first)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, dbi, &c);
    if (rc)
        return wtx_fail(w, rc);
    uint8_t k[DKEY_LEN];
    dkey(k, id, first);
    MDB_val key = {DKEY_LEN, k}, val;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && !memcmp(key.mv_data, k, ID_LEN)) {
        rc = mdb_cursor_del(c, 0);
        wtx_mut(w);
        if (rc) {
            wtx_fail(w, rc);
            break;
        }
        rc = mdb_cursor_get(c, &key, &val, MDB_GET_CURRENT);
    }
    mdb_cursor_close(c);
    return w->err;
}

int dirty_del_from(wtx *w, mfs_id id, uint64_t first)
{
    MDB_txn *t = dirty_wtxn(w);
    if (!t)
        return w->err;
    if (del_from(w, t, w->s->ddb, id, first) ||
        del_from(w, t, w->s->dpdb, id, first) ||
        del_from(w, w->txn, w->s->db[DB_DCHUNKS], id,
                 first < UINT64_MAX / MFS_CHUNK_SIZE ? first * MFS_CHUNK_SIZE
                                                     : UINT64_MAX))
        return w->err;
    return del_from(w, w->txn, w->s->db[DB_DREFS], id, first);
}

/* Calls cb for each of id's records in table dbi of txn, in block order. */
static int each_in(MDB_txn *txn, MDB_dbi dbi, mfs_id id,
                   int (*cb)(void *arg, uint64_t blk, const MDB_val *v),
                   void *arg)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, dbi, &c);
    if (rc)
        return mdb_to_errno(rc);
    uint8_t k[DKEY_LEN];
    dkey(k, id, 0);
    MDB_val key = {DKEY_LEN, k}, val;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    int out = 0;
    while (rc == 0 && !memcmp(key.mv_data, k, ID_LEN)) {
        out = cb ? cb(arg, mfs_be64_get((uint8_t *)key.mv_data + DKEY_BLOCK),
                      &val)
                 : 0;
        if (out)
            break;
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return out;
}

/* Moves c to id's next record at or past block blk of its table; that
 * block in *out, or UINT64_MAX when id has no more. */
static int next_blk(MDB_cursor *c, mfs_id id, uint64_t blk, uint64_t *out)
{
    uint8_t k[DKEY_LEN];
    dkey(k, id, blk);
    MDB_val key = {DKEY_LEN, k}, val;
    int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    *out = UINT64_MAX;
    if (rc == 0 && key.mv_size >= DKEY_LEN && !memcmp(key.mv_data, k, ID_LEN))
        *out = mfs_be64_get((uint8_t *)key.mv_data + DKEY_BLOCK);
    return rc == MDB_NOTFOUND ? 0 : mdb_to_errno(rc);
}

int dirty_each(mfs_store *s, MDB_txn *dtxn, mfs_id id,
               int (*cb)(void *arg, uint64_t blk), void *arg)
{
    if (!dtxn)
        return 0;
    MDB_cursor *cb_, *cp;
    int rc = mdb_to_errno(mdb_cursor_open(dtxn, s->ddb, &cb_));
    if (rc)
        return rc;
    rc = mdb_to_errno(mdb_cursor_open(dtxn, s->dpdb, &cp));
    if (rc) {
        mdb_cursor_close(cb_);
        return rc;
    }
    /* the two tables merged by block: each block once */
    uint64_t b = 0, p = 0;
    rc = next_blk(cb_, id, 0, &b);
    if (!rc)
        rc = next_blk(cp, id, 0, &p);
    while (!rc && (b != UINT64_MAX || p != UINT64_MAX)) {
        uint64_t blk = b < p ? b : p;
        rc = cb(arg, blk);
        if (!rc && blk + 1 != 0) {
            if (b == blk)
                rc = next_blk(cb_, id, blk + 1, &b);
            if (!rc && p == blk)
                rc = next_blk(cp, id, blk + 1, &p);
        }
    }
    mdb_cursor_close(cb_);
    mdb_cursor_close(cp);
    return rc;
}

/* ---- pages: whole 4 KiB pages written over a block ---- */

static void pkey(uint8_t *k, mfs_id id, uint64_t blk, unsigned page)
{
    dkey(k, id, blk);
    k[PKEY_PAGE] = (uint8_t)page;
}

int dirty_page_put(wtx *w, mfs_id id, uint64_t blk, unsigned page,
                   const void *data)
{
    MDB_txn *t = dirty_wtxn(w);
    if (!t)
        return w->err;
    uint8_t k[PKEY_LEN];
    pkey(k, id, blk, page);
    MDB_val key = {PKEY_LEN, k}, val = {MFS_DIRTY_PAGE, (void *)data};
    /* (a value this size takes two pages of the file: LMDB's page header) */
    w->dwritten += 2 * MFS_DIRTY_PAGE + 64;
    wtx_mut(w);
    int rc = mdb_put(t, w->s->dpdb, &key, &val, 0);
    if (rc == MDB_MAP_FULL)
        w->dfull = true; /* (kept raw: store_write grows the map) */
    return rc ? wtx_fail(w, rc) : 0;
}

/* Calls fn for each page over block blk of id (dtxn), in order; counts
 * them in *n. */
static int pages_of(mfs_store *s, MDB_txn *dtxn, mfs_id id, uint64_t blk,
                    unsigned *n, void (*fn)(void *arg, unsigned page,
                                            const MDB_val *v),
                    void *arg)
{
    *n = 0;
    MDB_cursor *c;
    int rc = mdb_to_errno(mdb_cursor_open(dtxn, s->dpdb, &c));
    if (rc)
        return rc;
    uint8_t k[PKEY_LEN];
    pkey(k, id, blk, 0);
    MDB_val key = {PKEY_LEN, k}, val;
    int r = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (r == 0 && key.mv_size == PKEY_LEN &&
           !memcmp(key.mv_data, k, DKEY_LEN)) {
        if (fn)
            fn(arg, ((uint8_t *)key.mv_data)[PKEY_PAGE], &val);
        (*n)++;
        r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return r == MDB_NOTFOUND || r == 0 ? 0 : mdb_to_errno(r);
}

static void mask_page(void *arg, unsigned page, const MDB_val *v)
{
    (void)v;
    if (page < 32)
        *(uint32_t *)arg |= 1u << page;
}

uint32_t dirty_page_mask(mfs_store *s, MDB_txn *dtxn, mfs_id id, uint64_t blk)
{
    uint32_t mask = 0;
    unsigned n = 0;
    if (dtxn)
        (void)pages_of(s, dtxn, id, blk, &n, mask_page, &mask);
    return mask;
}

unsigned dirty_pages(mfs_store *s, MDB_txn *dtxn, mfs_id id, uint64_t blk)
{
    unsigned n = 0;
    if (dtxn)
        (void)pages_of(s, dtxn, id, blk, &n, NULL, NULL);
    return n;
}

struct overlay {
    uint8_t *out;
    size_t len;
};

static void overlay_page(void *arg, unsigned page, const MDB_val *v)
{
    struct overlay *o = arg;
    size_t at = (size_t)page * MFS_DIRTY_PAGE;
    if (page >= MFS_CHUNK_SIZE / MFS_DIRTY_PAGE || v->mv_size != MFS_DIRTY_PAGE)
        return; /* (never written: dirty_page_put writes whole pages) */
    if (at > o->len)
        memset(o->out + o->len, 0, at - o->len);
    memcpy(o->out + at, v->mv_data, MFS_DIRTY_PAGE);
    if (at + MFS_DIRTY_PAGE > o->len)
        o->len = at + MFS_DIRTY_PAGE;
}

ssize_t dirty_pages_over(mfs_store *s, MDB_txn *dtxn, mfs_id id, uint64_t blk,
                         uint8_t *out, size_t len)
{
    if (!dtxn)
        return (ssize_t)len;
    struct overlay o = {out, len};
    unsigned n;
    int rc = pages_of(s, dtxn, id, blk, &n, overlay_page, &o);
    return rc ? rc : (ssize_t)o.len;
}

int dirty_pages_del(wtx *w, mfs_id id, uint64_t blk)
{
    MDB_txn *t = dirty_wtxn(w);
    if (!t)
        return w->err;
    MDB_cursor *c;
    int rc = mdb_cursor_open(t, w->s->dpdb, &c);
    if (rc)
        return wtx_fail(w, rc);
    uint8_t k[PKEY_LEN];
    pkey(k, id, blk, 0);
    for (;;) {
        /* (looked up again after each delete: a cursor on a table that a
         * delete emptied is no longer positioned) */
        MDB_val key = {PKEY_LEN, k}, val;
        rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
        if (rc || key.mv_size != PKEY_LEN || memcmp(key.mv_data, k, DKEY_LEN))
            break;
        rc = mdb_cursor_del(c, 0);
        wtx_mut(w);
        if (rc)
            break;
    }
    mdb_cursor_close(c);
    return rc && rc != MDB_NOTFOUND ? wtx_fail(w, rc) : 0;
}

/* ---- block references (main store, DB_DREFS) ---- */

int dirty_ref_get(mfs_store *s, MDB_txn *txn, mfs_id id, uint64_t blk,
                  uint8_t hash[MFS_HASH_LEN])
{
    uint8_t k[DKEY_LEN];
    dkey(k, id, blk);
    MDB_val v;
    int rc = tget(s, txn, DB_DREFS, k, DKEY_LEN, &v);
    if (rc)
        return rc;
    if (v.mv_size != MFS_HASH_LEN)
        return -EIO;
    memcpy(hash, v.mv_data, MFS_HASH_LEN);
    return 0;
}

int dirty_ref_put(wtx *w, mfs_id id, uint64_t blk,
                  const uint8_t hash[MFS_HASH_LEN])
{
    if (dirty_del(w, id, blk))
        return w->err;
    uint8_t k[DKEY_LEN];
    dkey(k, id, blk);
    return tput(w, DB_DREFS, k, DKEY_LEN, hash, MFS_HASH_LEN);
}

int dirty_ref_del(wtx *w, mfs_id id, uint64_t blk)
{
    uint8_t k[DKEY_LEN];
    dkey(k, id, blk);
    return tdel(w, DB_DREFS, k, DKEY_LEN);
}

int dirty_ref_each(mfs_store *s, MDB_txn *txn, mfs_id id,
                   int (*cb)(void *arg, uint64_t blk, const MDB_val *v),
                   void *arg)
{
    return each_in(txn, s->db[DB_DREFS], id, cb, arg);
}

/* ---- stream chunks (DB_DCHUNKS) ---- */

int dirty_chunk_put(wtx *w, mfs_id id, uint64_t start,
                    const uint8_t hash[MFS_HASH_LEN], uint32_t len)
{
    uint8_t k[DKEY_LEN], v[DCHUNKS_VAL_LEN];
    dkey(k, id, start);
    memcpy(v + DCHUNKS_VAL_HASH, hash, MFS_HASH_LEN);
    mfs_be32_put(v + DCHUNKS_VAL_SIZE, len);
    return tput(w, DB_DCHUNKS, k, DKEY_LEN, v, DCHUNKS_VAL_LEN);
}

int dirty_chunk_at(mfs_store *s, MDB_txn *txn, mfs_id id, uint64_t pos,
                   uint64_t *start, uint32_t *len,
                   uint8_t hash[MFS_HASH_LEN])
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->db[DB_DCHUNKS], &c);
    if (rc)
        return mdb_to_errno(rc);
    uint8_t k[DKEY_LEN];
    dkey(k, id, pos);
    MDB_val key = {DKEY_LEN, k}, val, nk, nv;
    bool ours, next = false;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    if (rc == 0 && !memcmp(key.mv_data, k, ID_LEN)) {
        next = true; /* the first at or past pos */
        nk = key;
        nv = val;
    }
    if (!(next && mfs_be64_get((uint8_t *)nk.mv_data + DKEY_BLOCK) == pos)) {
        /* the one before may hold pos */
        rc = mdb_cursor_get(c, &key, &val, rc == 0 ? MDB_PREV : MDB_LAST);
        ours = rc == 0 && key.mv_size == DKEY_LEN &&
               !memcmp(key.mv_data, k, ID_LEN) &&
               val.mv_size == DCHUNKS_VAL_LEN &&
               mfs_be64_get((uint8_t *)key.mv_data + DKEY_BLOCK) +
                       mfs_be32_get((uint8_t *)val.mv_data +
                                    DCHUNKS_VAL_SIZE) >
                   pos;
        if (ours) {
            nk = key;
            nv = val;
            next = true;
        }
    }
    mdb_cursor_close(c);
    if (!next)
        return -ENOENT;
    if (nv.mv_size != DCHUNKS_VAL_LEN)
        return -EIO;
    *start = mfs_be64_get((uint8_t *)nk.mv_data + DKEY_BLOCK);
    *len = mfs_be32_get((uint8_t *)nv.mv_data + DCHUNKS_VAL_SIZE);
    memcpy(hash, (uint8_t *)nv.mv_data + DCHUNKS_VAL_HASH, MFS_HASH_LEN);
    return 0;
}

int dirty_chunk_del_from(wtx *w, mfs_id id, uint64_t start)
{
    return del_from(w, w->txn, w->s->db[DB_DCHUNKS], id, start);
}

int dirty_chunk_each(mfs_store *s, MDB_txn *txn, mfs_id id,
                     int (*cb)(void *arg, uint64_t start, const MDB_val *v),
                     void *arg)
{
    return each_in(txn, s->db[DB_DCHUNKS], id, cb, arg);
}
