/*
 * txn.c - the LMDB environment: opening and checking a store, the
 * single-writer lock, write transactions that keep their first error and
 * retry after growing the map, read transactions, persisted counters and the
 * local inode-number map.
 *
 * The bottom of the store (kv.h; docs/ARCHITECTURE.md "Layers"): what
 * the layers above must run at its fixed points (a new store's first
 * records, the census, collection and hashing set up at open and stopped
 * at close, the view before a commit, the census with the counters, the
 * collector woken after one) comes through s->hooks (open.c), never by a
 * call from here. It does call dirty.c and pack.c, of its own layer: the
 * unpublished blocks and the pack files' bytes are part of what a commit
 * makes durable, in a fixed order with the main environment (blocks
 * first, pack bytes synced before the references), which a hook would
 * only hide.
 *
 * LMDB codes are translated to negative errno here and nowhere else. The map
 * only grows when a commit hit MDB_MAP_FULL; ENOSPC reaches the caller only
 * when the disk itself is full, and then the transaction is aborted whole.
 */
#include "kv.h"
#include "lock.h"

#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

static const char *const db_names[DB_COUNT] = {
    "meta",    "ops",    "vv",     "moves",    "entries",    "rchild",
    "ilinks",  "inodes", "xattrs", "versions", "superseded", "vmissing",
    "want",    "chunks", "dirty",  "dinfo",    "ino2obj",    "obj2ino",
    "dirents", "vent",   "groups", "links",    "nsub",       "ccopy",
    "heads",   "tfrom",  "cdirs",  "nlink",    "drefs",      "gcq",
    "packs",   "dchunks",
};

static const char STORE_MAGIC[] = "meshfs-store";

void mfs_store_config_default(mfs_store_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_future_ms = 60000;
    cfg->map_size = (size_t)1 << 30;
    cfg->root_mode = 0755;
    cfg->new_mesh = 1;
    /* for tests and experiments: run any store with group commit */
    const char *cw = getenv("MESHFS_COMMIT_WINDOW_US");
    if (cw && *cw)
        cfg->commit_window_us = (unsigned)strtoul(cw, NULL, 10);
    /* for tests and benchmarks: new versions in fixed blocks */
    const char *fc = getenv("MESHFS_FIXED_CHUNKS");
    cfg->fixed_chunks = fc && *fc && strcmp(fc, "0");
}

int mdb_to_errno(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_NOTFOUND:
        return -ENOENT;
    case MDB_MAP_FULL:
        return -ENOSPC;
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
        return -EBADF;
    case MDB_READERS_FULL:
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
        return -EAGAIN;
    default:
        return rc > 0 ? -rc : (rc < 0 && rc > -4096 ? rc : -EIO);
    }
}

const char *mfs_store_strerror(int err)
{
    switch (err) {
    case -ENOENT:
        return "no meshfs store there (run 'meshfs init')";
    case -EPROTONOSUPPORT:
        return "the store has an unknown format version";
    case -EBADF:
        return "the directory holds something that is not a meshfs store";
    case -EBUSY:
        return "the store is in use by another meshfs process";
    case -ENOSPC:
        return "no space left on the store's disk";
    case -EACCES:
        return "permission denied on the store directory";
    default:
        return strerror(-err);
    }
}

/* ---- id sets ---- */

void idset_add(idset *s, mfs_id id)
{
    if (s->n && id_eq(s->v[s->n - 1], id))
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        mfs_id *v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            abort();
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = id;
}

bool idset_has(const idset *s, mfs_id id)
{
    for (size_t i = 0; i < s->n; i++)
        if (id_eq(s->v[i], id))
            return true;
    return false;
}

void idset_free(idset *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* ---- meta counters ---- */

static int meta_get_u64(mfs_store *s, MDB_txn *txn, const char *k, uint64_t *v)
{
    MDB_val val;
    int rc = tget(s, txn, DB_META, k, strlen(k), &val);
    if (rc)
        return rc;
    if (val.mv_size != META_U64_LEN)
        return -EBADF;
    *v = mfs_be64_get(val.mv_data);
    return 0;
}

static int meta_put_u64(wtx *w, const char *k, uint64_t v)
{
    uint8_t b[META_U64_LEN];
    mfs_be64_put(b, v);
    return tput(w, DB_META, k, strlen(k), b, META_U64_LEN);
}

static void counters_save(wtx *w)
{
    mfs_store *s = w->s;
    meta_put_u64(w, "hlc", s->hlc);
    __atomic_store_n(&s->hlc_pub, s->hlc, __ATOMIC_RELAXED);
    meta_put_u64(w, "seq", s->seq);
    meta_put_u64(w, "ctr", s->ctr);
    meta_put_u64(w, "ino", s->next_ino);
    s->hooks->save(w); /* the census (view.c) */
}

static struct counters counters_take(const mfs_store *s)
{
    return (struct counters){.hlc = s->hlc,
                             .seq = s->seq,
                             .ctr = s->ctr,
                             .next_ino = s->next_ino,
                             .census = s->census,
                             .census_put = s->census_put};
}

/* The hlc never goes back; the rest returns to save (a failed txn). */
static void counters_restore(mfs_store *s, const struct counters *save)
{
    s->hlc = save->hlc > s->hlc ? save->hlc : s->hlc;
    s->seq = save->seq;
    s->ctr = save->ctr;
    s->next_ino = save->next_ino;
    s->census = save->census;
    s->census_put = save->census_put;
}

/* ---- transactions ---- */

int wtx_fail(wtx *w, int rc)
{
    int e = rc > 0 || rc < -4096 ? mdb_to_errno(rc) : rc;
    if (rc == MDB_MAP_FULL)
        e = MDB_MAP_FULL; /* kept raw so store_write can grow the map */
    if (!w->err)
        w->err = e;
    return w->err;
}

/* Appends one record to u (out of memory: u is lost). */
static void undo_push(struct undo_log *u, MDB_dbi dbi, const MDB_val *key,
                      const MDB_val *old)
{
    if (u->lost)
        return;
    size_t need = key->mv_size + (old ? old->mv_size : 0);
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 64;
        struct undo_rec *r = realloc(u->r, cap * sizeof(*r));
        if (!r) {
            u->lost = true;
            return;
        }
        u->r = r;
        u->cap = cap;
    }
    if (u->len + need > u->bcap) {
        size_t cap = u->bcap ? u->bcap : 4096;
        while (cap < u->len + need)
            cap *= 2;
        uint8_t *b = realloc(u->buf, cap);
        if (!b) {
            u->lost = true;
            return;
        }
        u->buf = b;
        u->bcap = cap;
    }
    u->r[u->n++] =
        (struct undo_rec){.dbi = dbi,
                          .kl = (uint32_t)key->mv_size,
                          .vl = old ? (uint32_t)old->mv_size : UNDO_ABSENT,
                          .off = u->len};
    memcpy(u->buf + u->len, key->mv_data, key->mv_size);
    if (old && old->mv_size)
        memcpy(u->buf + u->len + key->mv_size, old->mv_data, old->mv_size);
    u->len += need;
}

void wtx_undo_note(wtx *w, int db, const void *k, size_t kl)
{
    struct undo_log *u = w->undo;
    if (!u || u->lost)
        return;
    MDB_val key = {kl, (void *)k}, old;
    int rc = mdb_get(w->txn, w->s->db[db], &key, &old);
    if (rc && rc != MDB_NOTFOUND)
        u->lost = true;
    else
        undo_push(u, w->s->db[db], &key, rc ? NULL : &old);
}

void wtx_undo_cursor(wtx *w, MDB_cursor *c)
{
    struct undo_log *u = w->undo;
    if (!u || u->lost)
        return;
    MDB_val key, old;
    if (mdb_cursor_get(c, &key, &old, MDB_GET_CURRENT))
        u->lost = true;
    else
        undo_push(u, mdb_cursor_dbi(c), &key, &old);
}

static void undo_reset(struct undo_log *u)
{
    u->n = 0;
    u->len = 0;
    u->lost = false;
}

static void undo_free(struct undo_log *u)
{
    free(u->r);
    free(u->buf);
    *u = (struct undo_log){0};
}

/* Takes back what the failed call in txn changed, newest first: 0, or an
 * LMDB error when it could not (the txn is then broken: LMDB marks a txn
 * whose put failed on its own errors). */
static int undo_apply(mfs_store *s, MDB_txn *txn, const struct undo_log *u)
{
    if (u->lost)
        return MDB_BAD_TXN;
    for (size_t i = u->n; i-- > 0;) {
        const struct undo_rec *r = &u->r[i];
        MDB_val key = {r->kl, u->buf + r->off};
        int rc;
        if (r->vl == UNDO_ABSENT) {
            rc = mdb_del(txn, r->dbi, &key, NULL);
            if (rc == MDB_NOTFOUND)
                rc = 0;
        } else {
            MDB_val val = {r->vl, u->buf + r->off + r->kl};
            rc = mdb_put(txn, r->dbi, &key, &val, 0);
        }
        if (rc)
            return rc;
    }
    /* a read fails too once LMDB marked the txn broken */
    MDB_val key = {3, (void *)"seq"}, val;
    int rc = mdb_get(txn, s->db[DB_META], &key, &val);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int tput(wtx *w, int db, const void *k, size_t kl, const void *v, size_t vl)
{
    if (w->err)
        return w->err;
    MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};
    w->written += kl + vl + 64;
    w->muts++;
    int rc;
    struct undo_log *u = w->undo;
    if (u && !u->lost) {
        /* a new key is put and noted absent in one search; an old one
         * comes back (MDB_KEYEXIST, val then points at it) and is noted */
        rc = mdb_put(w->txn, w->s->db[db], &key, &val, MDB_NOOVERWRITE);
        if (rc != MDB_KEYEXIST) {
            if (rc == 0)
                undo_push(u, w->s->db[db], &key, NULL);
            return rc ? wtx_fail(w, rc) : 0;
        }
        undo_push(u, w->s->db[db], &key, &val);
        val = (MDB_val){vl, (void *)v};
    }
    rc = mdb_put(w->txn, w->s->db[db], &key, &val, 0);
    return rc ? wtx_fail(w, rc) : 0;
}

int tdel(wtx *w, int db, const void *k, size_t kl)
{
    if (w->err)
        return w->err;
    MDB_val key = {kl, (void *)k};
    wtx_undo_note(w, db, k, kl);
    int rc = mdb_del(w->txn, w->s->db[db], &key, NULL);
    if (rc == MDB_NOTFOUND)
        return 0;
    w->muts++;
    return rc ? wtx_fail(w, rc) : 0;
}

int tdel_prefix(wtx *w, int db, const void *start, size_t kl, size_t plen)
{
    if (w->err)
        return w->err;
    MDB_cursor *c;
    int rc = mdb_cursor_open(w->txn, w->s->db[db], &c);
    if (rc)
        return wtx_fail(w, rc);
    int n = 0;
    MDB_val key = {kl, (void *)start}, val;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size >= plen &&
           !memcmp(key.mv_data, start, plen)) {
        if (w->undo)
            undo_push(w->undo, w->s->db[db], &key, &val);
        rc = mdb_cursor_del(c, 0);
        if (rc) {
            wtx_fail(w, rc);
            break;
        }
        n++;
        w->muts++;
        rc = mdb_cursor_get(c, &key, &val, MDB_GET_CURRENT);
    }
    mdb_cursor_close(c);
    return w->err ? w->err : n;
}

int tget(mfs_store *s, MDB_txn *txn, int db, const void *k, size_t kl,
         MDB_val *v)
{
    MDB_val key = {kl, (void *)k};
    int rc = mdb_get(txn, s->db[db], &key, v);
    return rc == MDB_NOTFOUND ? -ENOENT : mdb_to_errno(rc);
}

void wtx_change(wtx *w, int kind, uint64_t ino, const char *name)
{
    /* (callers say which local changes count: change_dirent, change_inode) */
    if (!w->s->change_cb || !ino)
        return;
    if (w->nchanges == w->capchanges) {
        size_t cap = w->capchanges ? w->capchanges * 2 : 32;
        change *c = realloc(w->changes, cap * sizeof(*c));
        if (!c)
            return; /* a lost notification only delays cache expiry */
        w->changes = c;
        w->capchanges = cap;
    }
    change *c = &w->changes[w->nchanges++];
    c->kind = kind;
    c->ino = ino;
    snprintf(c->name, sizeof(c->name), "%s", name ? name : "");
}

static bool wtx_unchanged(const wtx *w);

/* Runs fn in w, then what every write transaction ends with: the
 * pre-commit hook (the derived view) and the persisted counters. Returns
 * w's first error. */
static int wtx_run(wtx *w, int (*fn)(wtx *w, void *arg), void *arg)
{
    int rc = fn(w, arg);
    if (!rc)
        rc = w->err;
    if (!rc && wtx_unchanged(w))
        return 0; /* the caller drops it (wtx_unchanged) */
    if (!rc)
        rc = w->s->hooks->pre_commit(w);
    if (!rc && w->undo && !w->recount) {
        /* a call in the group's txn: the counters are put once, as the
         * group commits (gc_commit_locked) */
        __atomic_store_n(&w->s->hlc_pub, w->s->hlc, __ATOMIC_RELAXED);
    } else if (!rc) {
        counters_save(w);
        rc = w->err;
    }
    return rc;
}

/* A call that asked to commit nothing if it changed nothing, and did
 * not: its txns are aborted, as if it had never run. */
static bool wtx_unchanged(const wtx *w)
{
    return w->drop_if_unchanged && w->muts == 0 && !w->err;
}

static void wtx_release(wtx *w)
{
    dirty_abort(w); /* (committed already when the call succeeded) */
    idset_free(&w->touched_entries);
    idset_free(&w->touched_inodes);
    free(w->groups);
    free(w->gindex);
    free(w->changes);
}

/* Makes the dirty environment anew (dirty_shrink) once no txn of it is
 * open: readers are kept out by maplock, as for a resize. */
static void shrink_dirty(mfs_store *s)
{
    pthread_rwlock_wrlock(&s->maplock);
    pthread_mutex_lock(&s->poollock);
    while (s->ndpool > 0)
        mdb_txn_abort(s->dpool[--s->ndpool]);
    pthread_mutex_unlock(&s->poollock);
    if (dirty_shrink(s) == 0)
        mfs_log(LOG_INFO, "store %s: unpublished blocks' file made anew "
                "(it had grown past %llu MiB)", s->dir,
                (unsigned long long)(DIRTY_SHRINK_BYTES >> 20));
    pthread_rwlock_unlock(&s->maplock);
}

/* Doubles the map of the main environment, or with dirty that of the
 * dirty one. No write txn of that environment may be open; readers are
 * kept out by maplock (they read both environments under it). */
static int grow_map_of(mfs_store *s, bool dirty)
{
    pthread_rwlock_wrlock(&s->maplock);
    pthread_mutex_lock(&s->poollock);
    while (s->npool > 0) /* no txn handle outlives a resize */
        mdb_txn_abort(s->pool[--s->npool]);
    while (s->ndpool > 0)
        mdb_txn_abort(s->dpool[--s->ndpool]);
    pthread_mutex_unlock(&s->poollock);
    size_t *size = dirty ? &s->dmapsize : &s->mapsize;
    size_t want = *size * 2;
    int rc = mdb_env_set_mapsize(dirty ? s->denv : s->env, want);
    if (!rc)
        *size = want;
    pthread_rwlock_unlock(&s->maplock);
    if (rc) {
        mfs_log(LOG_ERR,
                "store %s: cannot grow the %smap to %zu bytes: %s; writes "
                "that need the room fail with ENOSPC, and a later one tries "
                "again",
                s->dir, dirty ? "dirty blocks' " : "", want, mdb_strerror(rc));
        return -ENOSPC;
    }
    mfs_log(LOG_INFO, "store %s: %smap grown to %zu MiB", s->dir,
            dirty ? "dirty blocks' " : "", want >> 20);
    return 0;
}

static int grow_map(mfs_store *s)
{
    return grow_map_of(s, false);
}

/* Room on the disk for the map to double (and a little more)? */
static bool disk_has_room(mfs_store *s)
{
    struct statvfs sv;
    if (statvfs(s->dir, &sv) != 0)
        return false;
    uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    return avail > ((uint64_t)4 << 20) && s->mapsize < ((uint64_t)1 << 46);
}

static MDB_txn *group_txn(mfs_store *s)
{
    return __atomic_load_n(&s->group_txn, __ATOMIC_ACQUIRE);
}

static void group_txn_set(mfs_store *s, MDB_txn *txn)
{
    __atomic_store_n(&s->group_txn, txn, __ATOMIC_RELEASE);
}

/* Is this thread the one that began the store's group (an explicit one,
 * mfs_store_group_begin)? Any thread asks, unlocked: the owner is stored
 * before the group's txn (release) and read after it (acquire), so a
 * thread that sees another's group sees that thread as its owner, not an
 * owner of an earlier group (itself, perhaps). */
static bool in_group(mfs_store *s)
{
    return group_txn(s) &&
           pthread_equal(__atomic_load_n(&s->group_owner, __ATOMIC_RELAXED),
                         pthread_self());
}

static void notify(mfs_store *s, wtx *w)
{
    s->hooks->committed(w);
    if (!s->change_cb)
        return;
    for (size_t i = 0; i < w->nchanges; i++)
        s->change_cb(s->change_arg, w->changes[i].kind, w->changes[i].ino,
                     w->changes[i].name);
}

/* A failed commit on a full disk comes back from LMDB as EIO (a short
 * write); say ENOSPC when that is what happened. */
int store_commit_errno(mfs_store *s, int rc)
{
    if (rc != -EIO)
        return rc;
    struct statvfs sv;
    if (statvfs(s->dir, &sv) == 0 &&
        (uint64_t)sv.f_bavail * sv.f_frsize < ((uint64_t)4 << 20))
        return -ENOSPC;
    return rc;
}

static void dseq_bump(mfs_store *s)
{
    __atomic_add_fetch(&s->dseq, 1, __ATOMIC_SEQ_CST);
}

/* Commits a group's dirty txn, then its main one (or aborts both when
 * the group failed), as one step for readers (dseq). */
static int group_commit_both(mfs_store *s, wtx *w)
{
    int rc = w->err;
    dseq_bump(s);
    if (!rc)
        rc = dirty_commit(w);
    if (!rc)
        rc = store_commit_errno(s, mdb_to_errno(mdb_txn_commit(w->txn)));
    else
        mdb_txn_abort(w->txn);
    if (!rc)
        __atomic_add_fetch(&s->commits, 1, __ATOMIC_RELAXED);
    dirty_abort(w);
    dseq_bump(s);
    return rc;
}

/* Inside a group the map cannot grow after MDB_MAP_FULL (LMDB then needs
 * the transaction aborted), so when the map is more than half used the
 * group's work so far is committed, the map grown, and the group goes on in
 * a new transaction: a group is atomic only between such splits. */
/* Is env's map at least half full, counting what the open transaction put
 * (pending bytes; pages it copied are not in the meta page yet: twice, for
 * copy-on-write of the tree above them)? */
static bool map_tight(MDB_env *env, uint64_t pending, size_t mapsize)
{
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(env, &info);
    mdb_env_stat(env, &st);
    uint64_t used =
        ((uint64_t)info.me_last_pgno + 1) * st.ms_psize + 2 * pending;
    return used >= mapsize / 2;
}

/* Before a call in a group: when either map is half full, commits the
 * group and doubles that map (both environments: the group's unpublished
 * blocks fill the dirty one; a group that filled it used to fail whole). */
static int group_make_room(mfs_store *s)
{
    wtx *w = s->group_w;
    bool main_tight = map_tight(s->env, w->written, s->mapsize);
    bool dirty_tight = s->denv && map_tight(s->denv, w->dwritten, s->dmapsize);
    if (!main_tight && !dirty_tight)
        return 0;
    counters_save(w);
    int rc = group_commit_both(s, w);
    w->txn = NULL;
    w->written = 0;
    w->dwritten = 0;
    group_txn_set(s, NULL);
    pthread_rwlock_unlock(&s->maplock);
    if (!rc && dirty_tight)
        rc = grow_map_of(s, true);
    if (!rc && main_tight)
        rc = grow_map(s);
    pthread_rwlock_rdlock(&s->maplock);
    int rc2 = mdb_txn_begin(s->env, NULL, 0, &w->txn);
    if (rc2) {
        w->err = mdb_to_errno(rc2);
        return w->err;
    }
    group_txn_set(s, w->txn);
    if (rc)
        w->err = rc;
    return rc;
}

/* ---- group commit ----
 * With cfg.commit_window_us > 0 (the daemon), all calls share one LMDB
 * write txn, committed by the commit thread (gc_main) when its window has
 * passed, when a caller asks (mfs_store_commit: close, fsync), or when it
 * grows large. A call that fails changes nothing, as before: a small call
 * (store_write_small) runs in the shared txn itself and notes each record
 * it puts or deletes with its value before (tput, tdel; undo_note), and a
 * failure puts those back (gc_take_back); any other call runs in a nested
 * txn of the shared one. (A nested txn copies every page it touches from
 * its parent and merges them back as it commits: for a small call touching
 * ~20 tables that was 40-60% of its time, bench/store with
 * MESHFS_COMMIT_WINDOW_US.) The counters (hlc, seq, ...) and the census are
 * put once, as the group commits. The env is opened with
 * MDB_NOMETASYNC: a commit writes its pages, fdatasyncs them, then writes
 * the meta page unsynced; a power cut therefore loses at most the last
 * commit and never leaves a meta page pointing at unwritten pages (LMDB
 * keeps the last two snapshots' pages intact). A durable commit adds one
 * mdb_env_sync for that meta page. */

#define GC_MAX_BYTES ((uint64_t)64 << 20) /* commit once this much is put */
/* mfs_store_commit_soon (a close published a new version, which leaves
 * for the mesh with its commit): commit as soon as no call has come for
 * GC_IDLE_US, else at the window's end. A commit stalls writers for a disk
 * flush, so a busy writer (tar x, a build) keeps the whole window while a
 * lone close reaches peers at once. */
#define GC_IDLE_US 1000u
#define GC_WINDOW_MAX 4 /* the window stretches to 4 times (gc_main) */
#define GC_PRESYNC_BYTES ((uint64_t)1 << 20) /* packs synced before the lock */
#define GC_PRESYNC_ROUNDS 4
/* Preallocation runs this far ahead of need (a fallocate per step). Chunk
 * bytes over PACK_INLINE go to pack files, so commits are small; a larger
 * step only keeps disk space from the user (du counts it). */
#define GC_RESERVE_STEP ((uint64_t)2 << 20)

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void gc_assert_locked(mfs_store *s)
{
    /* a gc_ field touched by a thread without wlock (lock.h) */
    assert(mfs_lock_order_held(&s->wlock));
    (void)s;
}

/* Bytes of env's file on its free list (pages earlier commits freed, which
 * later commits reuse before they grow the file): a walk of LMDB's free
 * list, read only when the disk is full. */
static uint64_t env_free_bytes(MDB_env *env)
{
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_stat st;
    uint64_t pages = 0;
    if (mdb_env_stat(env, &st) || mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))
        return 0;
    if (mdb_cursor_open(txn, 0 /* FREE_DBI */, &c) == 0) {
        MDB_val k, v;
        int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        while (rc == 0) {
            if (v.mv_size >= sizeof(size_t))
                pages += *(const size_t *)v.mv_data; /* an IDL: count first */
            rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(c);
    }
    mdb_txn_abort(txn);
    return pages * st.ms_psize;
}

int pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = pwrite(fd, b, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        b += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

int zero_write(int fd, uint64_t from, uint64_t to)
{
    static const char zeros[64 << 10];
    for (uint64_t at = from; at < to; at += sizeof zeros) {
        size_t n = to - at < sizeof zeros ? (size_t)(to - at) : sizeof zeros;
        int rc = pwrite_all(fd, zeros, n, at);
        if (rc)
            return rc;
    }
    return 0;
}

uint64_t free_share(int fd, uint64_t cap)
{
    struct statvfs sv;
    if (fstatvfs(fd, &sv) == 0 &&
        (uint64_t)sv.f_bavail * sv.f_frsize / 16 < cap)
        cap = (uint64_t)sv.f_bavail * sv.f_frsize / 16;
    return cap;
}

bool on_tmpfs(int fd)
{
    struct statfs sf;
    return fstatfs(fd, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
}

/* Writes zeros over [from, to) of fd (the file grows to `to`) and starts
 * their writeback. Best effort: a failed write leaves the rest unwritten. */
static void zero_fill(int fd, uint64_t from, uint64_t to)
{
    (void)zero_write(fd, from, to);
    (void)sync_file_range(fd, (off_t)from, (off_t)(to - from),
                          SYNC_FILE_RANGE_WRITE);
}

/* How far ahead the files are preallocated: a step, but never more than
 * 1/16 of the free space (on a nearly full disk the reserve must not
 * crowd out the packs). */
static uint64_t reserve_step(int fd)
{
    return free_share(fd, GC_RESERVE_STEP);
}

/* Keeps a step (reserve_step) past env's last page (`last`) written with
 * zeros, within the `reserved` bytes allocated; *zeroed remembers how
 * far. Not on tmpfs (no blocks to convert, and the zeros would take
 * memory). A commit flushes its pages with
 * fdatasync: into blocks that are only allocated (fallocate) or past the
 * end of the file, that flush must also write the file's extent map and
 * size (ext4: its journal, or without one, as here, the inode and extent
 * blocks); into written blocks it writes the pages alone.
 * One step, not the whole reserve: the file never shrinks, and a large
 * group's reserve would stay in it. */
static void zero_ahead(int fd, uint64_t last, uint64_t reserved,
                       uint64_t *zeroed)
{
    if (last + GC_RESERVE_STEP / 2 <= *zeroed)
        return;
    if (on_tmpfs(fd)) {
        *zeroed = UINT64_MAX;
        return;
    }
    uint64_t from = *zeroed, to = last + reserve_step(fd);
    if (to > reserved)
        to = reserved; /* (within what is allocated) */
    struct stat sb;
    if (fstat(fd, &sb) == 0 && (uint64_t)sb.st_size > from)
        from = (uint64_t)sb.st_size;
    if (from < to)
        zero_fill(fd, from, to);
    *zeroed = to;
}

/* Keeps env's file allocated `pending` bytes (twice, for copy-on-write)
 * past its last page; *reserved remembers how far. On a full disk, pages
 * that collection or deletes freed inside the file count instead. zeroed:
 * NULL, or also keep a step past the last page written (zero_ahead). */
static int reserve_env(MDB_env *env, uint64_t pending, uint64_t *reserved,
                       uint64_t *zeroed)
{
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(env, &info);
    mdb_env_stat(env, &st);
    uint64_t last = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    uint64_t need = last + 2 * pending + ((uint64_t)1 << 20);
    int fd;
    if (need <= *reserved) {
        if (zeroed && mdb_env_get_fd(env, &fd) == 0)
            zero_ahead(fd, last, *reserved, zeroed);
        return 0;
    }
    if (mdb_env_get_fd(env, &fd))
        return -EIO;
    uint64_t to = need + reserve_step(fd);
    if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)to) != 0) {
        int e = errno;
        if (e == EOPNOTSUPP)
            return 0; /* no preallocation here: commit errors stay possible */
        if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)need) != 0) {
            e = errno;
            if (e == ENOSPC &&
                env_free_bytes(env) >= 2 * pending + ((uint64_t)1 << 20))
                return 0; /* the commit reuses freed pages */
            return -e;
        }
        to = need;
    }
    *reserved = to;
    if (zeroed)
        zero_ahead(fd, last, to, zeroed);
    return 0;
}

/* Preallocates both environments' files so the group's commit cannot fail
 * for want of disk space: the call that would need more than the disk has
 * fails with ENOSPC now, and the changes already acknowledged still
 * commit. */
static int gc_reserve(mfs_store *s, const wtx *w)
{
    gc_assert_locked(s);
    /* (the unpublished blocks' file is never flushed: allocation only) */
    int rc = reserve_env(s->env, s->gc_written + w->written, &s->gc_reserved,
                         &s->gc_zeroed);
    if (!rc && s->denv && w->dwritten)
        rc = reserve_env(s->denv, s->gc_dwritten + w->dwritten,
                         &s->gc_dreserved, NULL);
    return rc;
}

/* Map usage after the shared txn commits, as group_make_room counts it. */
static bool gc_map_tight(mfs_store *s)
{
    return map_tight(s->env, s->gc_written, s->mapsize);
}

static bool gc_dmap_tight(mfs_store *s)
{
    return s->denv && map_tight(s->denv, s->gc_dwritten, s->dmapsize);
}

/* Is the caller the commit thread (gc_replay's writes)? */
static bool gc_self(const mfs_store *s)
{
    return s->gc_thread_started && pthread_equal(pthread_self(), s->gc_thread);
}

static void gc_abort(mfs_store *s);

/* A call in the group's txn failed with rc: takes back what it changed.
 * When that cannot be done (LMDB broke the txn: a put that failed for want
 * of map room or memory; a change the undo log could not note), the group
 * is lost as if its commit had failed: gc_poison makes the commit thread
 * end it that way (the intent log's records are applied again, gc_replay),
 * and grow the map if it was full. Nothing had changed in a group this is
 * the first call of, which then simply begins anew. */
static void gc_take_back(mfs_store *s, wtx *w, int rc)
{
    int urc = undo_apply(s, s->gc_txn, w->undo);
    if (!urc)
        return;
    if (rc == MDB_MAP_FULL || (rc == -ENOSPC && disk_has_room(s)))
        s->gc_grow = true;
    if (!s->gc_first_us) {
        gc_abort(s);                      /* nothing in it but this call */
        pthread_cond_signal(&s->gc_work); /* (begins the next) */
        return;
    }
    mfs_log(LOG_ERR,
            "store %s: a failed call (%s) could not be taken back from the "
            "group of changes (%s): the group is dropped, as if its commit "
            "had failed",
            s->dir,
            rc == MDB_MAP_FULL ? "map full" : strerror(rc < 0 ? -rc : rc),
            w->undo->lost ? "a change it could not note" : mdb_strerror(urc));
    s->gc_poison = rc == MDB_MAP_FULL || rc >= 0 ? -EIO : rc;
}

/* Room left in the main map for the group's next call to run in gc_txn
 * itself: a put that finds the map full breaks the txn it runs in (LMDB
 * marks it), which loses a group, where it lost only a nested txn. Each
 * call of the group may have dirtied GC_CALL_PAGES pages (a small call
 * touches ~20 tables, a few levels each; freed pages are reused first),
 * and GC_DIRECT_SLACK more must be left; otherwise calls nest as before,
 * and the group commits and the map grows at half full (gc_map_tight). */
#define GC_CALL_PAGES 128u
#define GC_DIRECT_SLACK ((uint64_t)16 << 20)

static bool gc_direct_room(mfs_store *s)
{
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(s->env, &info) || mdb_env_stat(s->env, &st))
        return false;
    uint64_t calls = s->gc_gen - s->gc_committed + 1;
    uint64_t need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize +
                    2 * s->gc_written + calls * GC_CALL_PAGES * st.ms_psize +
                    GC_DIRECT_SLACK;
    return need <= s->mapsize;
}

static int gc_write(mfs_store *s, int (*fn)(wtx *w, void *arg), void *arg,
                    bool small)
{
    int grows = 0;
    bool self = gc_self(s);
    mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
    for (;;) {
        /* a group that must commit before the map grows takes no more;
         * nor one that a failed commit's replay fills (gc_replay), and
         * while that replay fails, writes fail with the commit's error */
        while ((!s->gc_txn || s->gc_grow || s->gc_dgrow || s->gc_poison ||
                s->wal_replay == WAL_REPLAY_NOW) &&
               !s->gc_stop && !self)
            pthread_cond_wait(&s->gc_done, &s->wlock);
        int stop = !s->gc_txn ? -EIO /* closing, or cannot begin */
                   : self && (s->gc_grow || s->gc_dgrow) ? -ENOSPC
                   : s->wal_replay == WAL_REPLAY_FAILED && !self
                       ? (s->gc_fail_rc ? s->gc_fail_rc : -EIO)
                       : 0;
        if (stop) {
            mfs_lock_drop(&s->wlock);
            return stop;
        }
        struct counters save = counters_take(s);
        wtx w = {.s = s};
        int rc;
        /* A small call runs in the group's txn itself, noting what it
         * changes so that a failure takes it back (undo_apply); others
         * (and the commit thread's replay, gc_replay) nest. Its blocks'
         * txn is a child of gc_dtxn either way (dirty.c). */
        bool nest = self || !small || !gc_direct_room(s);
        if (nest) {
            rc = mdb_txn_begin(s->env, s->gc_txn, 0, &w.txn);
            if (rc) {
                mfs_lock_drop(&s->wlock);
                return mdb_to_errno(rc);
            }
        } else {
            w.txn = s->gc_txn;
            w.undo = &s->gc_undo;
            undo_reset(w.undo);
        }
        s->gc_in_call = true;
        rc = wtx_run(&w, fn, arg);
        if (!nest && !rc && s->test_fail_calls > 0) {
            s->test_fail_calls--;
            rc = wtx_fail(&w, -EIO);
            if (s->test_fail_lose)
                w.undo->lost = true;
        }
        if (!rc && wtx_unchanged(&w)) {
            if (nest)
                mdb_txn_abort(w.txn);
            dirty_abort(&w);
            s->gc_in_call = false;
            counters_restore(s, &save);
            mfs_lock_drop(&s->wlock);
            wtx_release(&w);
            return 0;
        }
        if (!rc)
            rc = gc_reserve(s, &w);
        if (!rc)
            rc = dirty_commit(&w); /* blocks first: see dirty.c */
        else
            /* its dirty partner is a child of gc_dtxn: end it while
             * wlock keeps the commit thread from ending the parent (a
             * full disk made gc_reserve fail here, and the later abort
             * crashed the daemon) */
            dirty_abort(&w);
        if (nest && !rc) {
            rc = mdb_txn_commit(w.txn); /* into gc_txn: no I/O */
            if (rc)
                rc = rc == MDB_MAP_FULL ? MDB_MAP_FULL : mdb_to_errno(rc);
        } else if (nest) {
            mdb_txn_abort(w.txn);
        } else if (rc) {
            gc_take_back(s, &w, rc);
        }
        s->gc_in_call = false;
        bool local_ops = !rc && s->seq != save.seq;
        if (rc)
            counters_restore(s, &save);
        if (s->gc_poison && !nest) {
            /* the group is lost (gc_take_back): the caller waits for the
             * commit thread to end it and apply the intent log again (and
             * grow the map if it was full, then runs fn again), so that
             * what it reads next holds every fsync'd change */
            bool full = s->gc_grow;
            pthread_cond_signal(&s->gc_work);
            while ((s->gc_poison || s->wal_replay == WAL_REPLAY_NOW) &&
                   !s->gc_stop)
                pthread_cond_wait(&s->gc_done, &s->wlock);
            if (full && !s->gc_stop) {
                wtx_release(&w);
                if (++grows > 8) {
                    mfs_lock_drop(&s->wlock);
                    return -ENOSPC;
                }
                continue; /* the map grew (gc_main): run fn again */
            }
        }
        if (rc == MDB_MAP_FULL || (rc == -ENOSPC && disk_has_room(s))) {
            /* commit what the group holds, grow the map, run fn again */
            wtx_release(&w);
            if (++grows > 8) {
                mfs_lock_drop(&s->wlock);
                return -ENOSPC; /* grown and grown, still full */
            }
            if (w.dfull)
                s->gc_dgrow = true;
            else
                s->gc_grow = true;
            if (self) { /* (gc_replay tries again once it grew) */
                mfs_lock_drop(&s->wlock);
                return -ENOSPC;
            }
            uint64_t gen = s->gc_gen;
            s->gc_want = s->gc_want > gen ? s->gc_want : gen;
            pthread_cond_signal(&s->gc_work);
            while ((s->gc_grow || s->gc_dgrow) && !s->gc_stop)
                pthread_cond_wait(&s->gc_done, &s->wlock);
            if (s->gc_stop) {
                mfs_lock_drop(&s->wlock);
                return -ENOSPC;
            }
            continue;
        }
        if (!rc) {
            s->gc_gen++;
            s->gc_last_us = mono_us();
            s->gc_written += w.written;
            s->gc_dwritten += w.dwritten;
            if (local_ops)
                s->gc_local_ops = true;
            if (!s->gc_first_us) {
                s->gc_first_us = mono_us();
                __atomic_store_n(&s->gc_dirty, 1, __ATOMIC_SEQ_CST);
                pthread_cond_signal(&s->gc_work); /* start the window */
            } else if (s->gc_written > GC_MAX_BYTES) {
                pthread_cond_signal(&s->gc_work);
            }
            /* commit while the maps have room for the commit itself (a
             * commit that hits MDB_MAP_FULL loses the group) */
            if (!s->gc_grow && gc_map_tight(s))
                s->gc_grow = true;
            if (!s->gc_dgrow && gc_dmap_tight(s))
                s->gc_dgrow = true;
            if (s->gc_grow || s->gc_dgrow)
                pthread_cond_signal(&s->gc_work);
        }
        mfs_lock_drop(&s->wlock);
        if (!rc)
            notify(s, &w);
        wtx_release(&w);
        return rc;
    }
}

/* A store idle this long after a commit syncs that commit's meta page,
 * so the durable vector (mfs_store_vv_durable) catches up. */
#define GC_DURABLE_IDLE_US 20000u

/* The wanted vector (hooks->held) of txn's state into *out while a peer
 * asks for it (mfs_store_vv_held); false when not kept: it reads every
 * wanted chunk's key, which a catch-up makes many. */
static bool held_read(mfs_store *s, MDB_txn *txn, mfs_vv *out)
{
    out->n = 0;
    out->e = NULL;
    return mono_us() < __atomic_load_n(&s->held_track_us, __ATOMIC_RELAXED) &&
           s->hooks->held(s, txn, out) == 0;
}

/* Did what the write concern sees change with the commit now durable: its
 * wanted vector differs from the one before it (vvlock)? */
static bool held_grew(const mfs_store *s)
{
    if (!s->held_commit_ok)
        return false;
    if (!s->held_durable_ok || s->vv_held_commit.n != s->vv_held_durable.n)
        return true;
    return s->vv_held_commit.n &&
           memcmp(s->vv_held_commit.e, s->vv_held_durable.e,
                  s->vv_held_commit.n * sizeof(*s->vv_held_commit.e)) != 0;
}

/* After a commit: the commit before it is durable now (this commit's
 * fdatasync wrote its meta page), and this one is not yet (wlock held). */
static void vv_note_commit(mfs_store *s)
{
    MDB_txn *txn;
    mfs_vv v, h;
    s->meta_unsynced = true;
    s->last_commit_us = mono_us();
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn))
        return;
    int rc = store_vv_read(s, txn, &v);
    bool hok = !rc && held_read(s, txn, &h);
    mdb_txn_abort(txn);
    if (rc)
        return;
    pthread_mutex_lock(&s->vvlock);
    if (mfs_vv_missing(&s->vv_commit, &s->vv_durable) || held_grew(s))
        s->gc_durable_grew = true;
    mfs_vv_free(&s->vv_durable);
    s->vv_durable = s->vv_commit;
    s->vv_commit = v;
    s->vv_durable_gen = s->vv_commit_gen;
    s->vv_commit_gen = s->gc_gen;
    mfs_vv_free(&s->vv_held_durable);
    s->vv_held_durable = s->vv_held_commit;
    s->held_durable_ok = s->held_commit_ok;
    s->vv_held_commit = h;
    s->held_commit_ok = hok;
    pthread_mutex_unlock(&s->vvlock);
}

/* After mdb_env_sync: the last commit is durable (wlock held, and no
 * commit came since that one). */
static void vv_note_sync(mfs_store *s)
{
    MDB_txn *txn;
    mfs_vv h;
    /* asked for since that commit: its state is still the last one */
    bool hok = s->held_commit_ok;
    if (!hok && mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) == 0) {
        hok = held_read(s, txn, &h);
        mdb_txn_abort(txn);
    }
    pthread_mutex_lock(&s->vvlock);
    if (hok && !s->held_commit_ok) {
        mfs_vv_free(&s->vv_held_commit);
        s->vv_held_commit = h;
        s->held_commit_ok = true;
    }
    if (held_grew(s))
        s->gc_durable_grew = true;
    mfs_vv d, hd = {0};
    /* the two durable vectors stay of one commit */
    bool hd_ok =
        s->held_commit_ok && store_vv_copy(&hd, &s->vv_held_commit) == 0;
    if (store_vv_copy(&d, &s->vv_commit) == 0) {
        if (mfs_vv_missing(&d, &s->vv_durable))
            s->gc_durable_grew = true;
        mfs_vv_free(&s->vv_durable);
        s->vv_durable = d;
        s->vv_durable_gen = s->vv_commit_gen;
    } else {
        hd_ok = false;
    }
    mfs_vv_free(&s->vv_held_durable);
    s->vv_held_durable = hd;
    s->held_durable_ok = hd_ok;
    pthread_mutex_unlock(&s->vvlock);
    s->meta_unsynced = false;
}

/* Commits gc_txn (wlock held, gc_txn dirty): 0 or -errno. */
static int gc_commit_locked(mfs_store *s)
{
    uint64_t gen = s->gc_gen;
    int rc = 0;
    dseq_bump(s); /* odd: the two environments commit one after the other */
    if (s->gc_dtxn) {
        /* blocks first, as in every store_write (dirty.c) */
        int drc = mdb_txn_commit(s->gc_dtxn);
        s->gc_dtxn = NULL;
        if (drc)
            /* the group's other changes still commit: of its unpublished
             * writes, files then show what was committed before */
            mfs_log(LOG_ERR,
                    "store %s: committing unpublished blocks failed: %s; "
                    "writes not yet closed or fsync'd in the last %llu "
                    "calls are lost",
                    s->dir, mdb_strerror(drc),
                    (unsigned long long)(gen - s->gc_committed));
    }
    /* the bytes before the references (pack.c). Without group commit
     * (tools, tests: MDB_NOSYNC, no promise until mfs_store_commit) packs
     * are synced only before mdb_env_sync. */
    rc = packs_sync(s);
    if (!rc && s->test_fail_commits > 0) {
        s->test_fail_commits--;
        rc = -EIO;
    }
    if (!rc && s->gc_poison)
        rc = s->gc_poison; /* a call broke the txn (gc_take_back) */
    if (!rc) {
        /* the counters, once for the group's calls (wtx_run) */
        wtx w = {.s = s, .txn = s->gc_txn};
        counters_save(&w);
        rc = w.err == MDB_MAP_FULL ? -ENOSPC : w.err;
        wtx_release(&w);
    }
    s->gc_poison = 0;
    if (rc)
        mdb_txn_abort(s->gc_txn);
    else
        rc = mdb_txn_commit(s->gc_txn);
    s->gc_txn = NULL;
    s->gc_first_us = 0;
    s->gc_soon = false;
    __atomic_store_n(&s->gc_dirty, 0, __ATOMIC_SEQ_CST);
    dseq_bump(s); /* even again */
    s->gc_written = 0;
    s->gc_dwritten = 0;
    if (rc) {
        rc = rc == MDB_MAP_FULL ? -ENOSPC
                                : store_commit_errno(s, mdb_to_errno(rc));
        mfs_log(LOG_ERR,
                "store %s: group commit failed: %s; the changes of the last "
                "%llu calls are lost, and fsync reports the error%s",
                s->dir, strerror(-rc),
                (unsigned long long)(gen - s->gc_committed),
                rc == -ENOSPC ? " (free some space on the store's disk)" : "");
        s->gc_fail_lo = s->gc_committed;
        s->gc_fail_hi = gen;
        s->gc_fail_rc = rc;
        /* the lost changes never happened: counters go back with them,
         * but for the inode numbers, which the kernel may have seen (a
         * number given again could name another file in its cache) */
        uint64_t ino = s->next_ino;
        counters_restore(s, &s->gc_saved);
        s->next_ino = ino;
        s->gc_local_ops = false;
        if (wal_failed(s)) /* the log's changes are not lost: gc_replay */
            mfs_log(LOG_WARNING,
                    "store %s: what fsync made durable since the last sync "
                    "is in the intent log: applying it again",
                    s->dir);
    } else {
        s->gc_saved = counters_take(s);
        vv_note_commit(s);
        wal_committed(s);
        __atomic_add_fetch(&s->commits, 1, __ATOMIC_RELAXED);
    }
    s->gc_committed = gen;
    return rc;
}

/* Begins the group's txns (wlock held, none open). */
static int gc_begin(mfs_store *s)
{
    int rc = mdb_txn_begin(s->env, NULL, 0, &s->gc_txn);
    if (rc) {
        s->gc_txn = NULL;
        return rc;
    }
    if (s->denv) {
        rc = mdb_txn_begin(s->denv, NULL, 0, &s->gc_dtxn);
        if (rc) {
            s->gc_dtxn = NULL;
            mdb_txn_abort(s->gc_txn);
            s->gc_txn = NULL;
        }
    }
    return rc;
}

/* Ends the group's txns without committing (wlock held). */
static void gc_abort(mfs_store *s)
{
    if (s->gc_dtxn)
        mdb_txn_abort(s->gc_dtxn);
    if (s->gc_txn)
        mdb_txn_abort(s->gc_txn);
    s->gc_dtxn = NULL;
    s->gc_txn = NULL;
}

#define GC_REPLAY_RETRY_US 1000000u /* a failed replay is tried again */

/* A failed commit took back ops the intent log holds (wal_failed): its
 * records applied again into the open group, which then commits, before
 * any other write joins it (gc_write waits meanwhile, and fails while
 * this fails). wlock held on entry and on return, the group open. */
static void gc_replay(mfs_store *s)
{
    mfs_lock_drop(&s->wlock);
    /* (an append in flight lands first: its record is in the file) */
    mfs_lock_take(&s->wal_mu, MFS_LOCK_STORE_LOG);
    int rc = s->hooks->replay(s);
    mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
    /* (a replay that failed half way commits its part: applied in order,
     * and the next try skips it as duplicates) */
    s->wal_replay = WAL_REPLAY_NONE;
    /* (no caller waits for the replay's own calls: the failed commit's
     * range stays what mfs_store_commit reports to those it lost) */
    uint64_t lo = s->gc_fail_lo, hi = s->gc_fail_hi;
    int frc = s->gc_fail_rc;
    int crc = s->gc_first_us ? gc_commit_locked(s) : 0;
    if (crc) {
        s->gc_fail_lo = lo;
        s->gc_fail_hi = hi;
        s->gc_fail_rc = frc;
    }
    bool again = crc ? s->wal_replay == WAL_REPLAY_NOW /* (else cleared) */
                     : rc != 0;
    if (!rc)
        rc = crc;
    if (!rc) {
        mfs_log(LOG_NOTICE,
                "store %s: the intent log applied again: no fsync'd change "
                "was lost",
                s->dir);
    } else if (again) {
        s->wal_replay = WAL_REPLAY_FAILED;
        s->wal_replay_us = mono_us() + GC_REPLAY_RETRY_US;
        mfs_log(LOG_ERR,
                "store %s: cannot apply the intent log again: %s; writes "
                "fail until it can (tried every second; a remount replays "
                "it too)",
                s->dir, strerror(-rc));
    }
    mfs_lock_drop(&s->wal_mu);
    if (!s->gc_txn && !s->gc_stop)
        gc_begin(s);
    pthread_cond_broadcast(&s->gc_done);
}

static void *gc_main(void *arg)
{
    mfs_store *s = arg;
    pthread_setname_np(pthread_self(), "mfs-commit"); /* top, perf */
    /* The window stretches under a steady stream of changes: a commit
     * stalls every caller for its page writes and its flush (about 1-2 ms
     * for a few dozen metadata calls), and one commit per 5 ms of such a
     * stream spent a fifth of the time in them. When calls were still
     * coming as a window closed, the next is twice as long, up to
     * GC_WINDOW_MAX times the configured one; the first pause brings it
     * back. fsync and every other asked-for commit are not delayed. */
    const uint64_t base = s->cfg.commit_window_us;
    uint64_t window = base;
    mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
    for (;;) {
        if (!s->gc_txn && !s->gc_stop) {
            int rc = gc_begin(s);
            if (rc) {
                mfs_log(LOG_ERR,
                        "store %s: cannot begin a write txn: %s; retried in "
                        "1 s",
                        s->dir, mdb_strerror(rc));
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 1;
                pthread_cond_timedwait(&s->gc_work, &s->wlock, &ts);
                continue;
            }
            pthread_cond_broadcast(&s->gc_done);
        }
        if (s->wal_replay == WAL_REPLAY_FAILED && !s->gc_stop &&
            mono_us() >= s->wal_replay_us)
            s->wal_replay = WAL_REPLAY_NOW;
        if (s->wal_replay == WAL_REPLAY_NOW && s->gc_txn && !s->gc_stop) {
            gc_replay(s);
            continue;
        }
        /* the write concern: what peers asked us to hold, in one record
         * of the intent log (one flush; a sync of LMDB takes two) */
        if (s->gc_want_hold && !s->gc_stop) {
            s->gc_want_hold = false;
            mfs_lock_drop(&s->wlock);
            int hr = wal_hold(s);
            mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
            if (hr) {
                gc_sync_soon(s); /* the old way */
            } else if (s->oplog_cb) {
                mfs_lock_drop(&s->wlock);
                s->oplog_cb(s->oplog_arg);
                mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
            }
            /* (then the commit's own decision, as every turn: a steady
             * stream of asks must not keep the group from committing) */
        }
        bool dirty = s->gc_first_us != 0;
        /* idle since a commit whose meta page is not synced: sync it */
        bool idle_sync = !dirty && s->meta_unsynced &&
                         mono_us() >= s->last_commit_us + GC_DURABLE_IDLE_US;
        bool sync =
            s->gc_want_durable > s->gc_durable || s->gc_stop || idle_sync;
        uint64_t due_us = s->gc_first_us + window;
        uint64_t idle =
            s->cfg.commit_idle_us ? s->cfg.commit_idle_us : GC_IDLE_US;
        if (s->gc_soon && s->gc_last_us + idle < due_us)
            due_us = s->gc_last_us + idle;
        bool now =
            sync || s->gc_grow || s->gc_dgrow || s->gc_poison ||
            (dirty && (s->gc_want > s->gc_committed ||
                       s->gc_written > GC_MAX_BYTES || mono_us() >= due_us));
        bool retry = s->wal_replay == WAL_REPLAY_FAILED;
        /* a hold asked for while the lock was dropped above (the oplog
         * callback after the last hold, a sync) signalled nobody: it
         * waited for the window's end (the write concern's p99 was the
         * commit window, 5 ms; 50 ms with a 50 ms window) */
        if (!now && s->gc_want_hold && !s->gc_stop)
            continue;
        if (!now) {
            if (!dirty && !s->meta_unsynced && !retry) {
                pthread_cond_wait(&s->gc_work, &s->wlock);
            } else {
                if (!dirty)
                    due_us = s->meta_unsynced
                                 ? s->last_commit_us + GC_DURABLE_IDLE_US
                                 : s->wal_replay_us;
                if (retry && s->wal_replay_us < due_us)
                    due_us = s->wal_replay_us;
                uint64_t left = due_us > mono_us() ? due_us - mono_us() : 0;
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                uint64_t ns = (uint64_t)ts.tv_nsec + left * 1000u;
                ts.tv_sec += (time_t)(ns / 1000000000u);
                ts.tv_nsec = (long)(ns % 1000000000u);
                pthread_cond_timedwait(&s->gc_work, &s->wlock, &ts);
            }
            continue;
        }
        bool ops = false;
        /* most of the group's chunk bytes reach the disk while writers
         * go on; the commit then flushes only what came meanwhile. Again
         * while a flush let another MiB in (a few rounds at most). */
        for (uint64_t done = 0, i = 0; dirty && i < GC_PRESYNC_ROUNDS; i++) {
            uint64_t u = packs_unsynced_bytes(s);
            if (u < done + GC_PRESYNC_BYTES)
                break;
            mfs_lock_drop(&s->wlock);
            packs_presync(s);
            mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
            done = u;
        }
        if (dirty) {
            uint64_t t = mono_us();
            /* (not while fsyncs come: each one that finds a commit
             * running waits for all of it) */
            bool streaming = t >= s->gc_first_us + window &&
                             t < s->gc_last_us + GC_IDLE_US &&
                             s->wal_gen < s->gc_committed;
            window = !streaming ? base
                     : window * 2 < base * GC_WINDOW_MAX ? window * 2
                                                         : base * GC_WINDOW_MAX;
            ops = s->gc_local_ops;
            s->gc_local_ops = false;
            gc_commit_locked(s);
        }
        if (s->gc_grow || s->gc_dgrow || (dirty && gc_map_tight(s))) {
            gc_abort(s); /* (if open, it was clean: nothing to commit) */
            /* (no txn of ours is open; waits for readers) */
            if (s->gc_dgrow)
                grow_map_of(s, true);
            if (s->gc_grow || !s->gc_dgrow)
                grow_map(s);
            s->gc_grow = s->gc_dgrow = false;
        }
        /* nothing unpublished left: give the dirty file's space back */
        if (dirty && !s->gc_stop && dirty_oversized(s)) {
            gc_abort(s); /* (if open, it was clean: nothing to commit) */
            shrink_dirty(s);
        }
        /* the next group may fill while this one's meta page syncs */
        if (!s->gc_stop && !s->gc_txn)
            gc_begin(s);
        if (sync) {
            uint64_t gen = s->gc_committed;
            mfs_lock_drop(&s->wlock);
            int rc =
                store_commit_errno(s, mdb_to_errno(mdb_env_sync(s->env, 1)));
            mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
            if (rc) {
                mfs_log(LOG_ERR,
                        "store %s: flushing the store to disk failed: %s; "
                        "the fsync calls waiting for it fail with that error",
                        s->dir, strerror(-rc));
                s->gc_fail_lo = s->gc_durable;
                s->gc_fail_hi = gen;
                s->gc_fail_rc = rc;
            } else if (gen == s->gc_committed) {
                vv_note_sync(s); /* (no commit came between) */
                wal_synced(s, gen);
            }
            s->gc_durable = gen;
        }
        pthread_cond_broadcast(&s->gc_done);
        /* the owner reports the durable vector (sync/'s STATE, which
         * collection on the peers waits for): tell it whenever it grew,
         * by a commit (the one before is durable now) or a sync, asked
         * for or idle; a durable commit with no local ops of its own
         * (pack.c's after a sweep) once left it untold for good */
        if (s->gc_durable_grew) {
            s->gc_durable_grew = false;
            ops = true;
        }
        if (ops && s->oplog_cb) {
            mfs_lock_drop(&s->wlock);
            s->oplog_cb(s->oplog_arg);
            mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
        }
        if (s->gc_stop && !s->gc_first_us) {
            gc_abort(s);
            break;
        }
    }
    s->gc_exited = true;
    pthread_cond_broadcast(&s->gc_done);
    mfs_lock_drop(&s->wlock);
    return NULL;
}

static int gc_start(mfs_store *s)
{
    /* what the store holds at open is durable */
    MDB_txn *txn;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) == 0) {
        if (store_vv_read(s, txn, &s->vv_commit) == 0 &&
            store_vv_read(s, txn, &s->vv_durable) != 0)
            mfs_vv_free(&s->vv_commit);
        mdb_txn_abort(txn);
    }
    pthread_cond_init(&s->gc_work, NULL);
    pthread_cond_init(&s->gc_done, NULL);
    s->gc_saved = counters_take(s);
    s->gc_on = true;
    int rc = pthread_create(&s->gc_thread, NULL, gc_main, s);
    if (rc) {
        s->gc_on = false;
        return -rc;
    }
    s->gc_thread_started = true;
    return 0;
}

/* Commits what is left, syncs and stops the commit thread. */
static void gc_finish(mfs_store *s)
{
    if (!s->gc_thread_started)
        return;
    mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
    s->gc_stop = true;
    pthread_cond_signal(&s->gc_work);
    mfs_lock_drop(&s->wlock);
    pthread_join(s->gc_thread, NULL);
    s->gc_thread_started = false;
    s->gc_on = false;
    pthread_cond_destroy(&s->gc_work);
    pthread_cond_destroy(&s->gc_done);
}

void gc_sync_soon(mfs_store *s)
{
    gc_assert_locked(s);
    if (s->gc_on && s->gc_want_durable < s->gc_gen) {
        s->gc_want_durable = s->gc_gen;
        pthread_cond_signal(&s->gc_work);
    }
}

/* A peer that asked for the held vector is served it this long after. */
#define HELD_TRACK_US 60000000u

int mfs_store_vv_held(mfs_store *s, mfs_vv *durable, mfs_vv *wanted)
{
    MDB_txn *txn;
    wanted->n = durable->n = 0;
    wanted->e = durable->e = NULL;
    if (!s->gc_on) { /* the last commit stands for durable (vv.c) */
        int rc = store_read_begin_committed(s, &txn);
        if (rc)
            return rc;
        rc = store_vv_read(s, txn, durable);
        if (!rc)
            rc = s->hooks->held(s, txn, wanted);
        store_read_end(s, txn);
        if (rc)
            mfs_vv_free(durable);
        return rc;
    }
    __atomic_store_n(&s->held_track_us, mono_us() + HELD_TRACK_US,
                     __ATOMIC_RELAXED);
    int rc = -EAGAIN;
    pthread_mutex_lock(&s->vvlock);
    /* the newer of the last durable commit and the intent log's last
     * record of peers' ops (wal_hold) */
    bool log = s->held_log_ok && s->held_log_gen > s->vv_durable_gen;
    if ((log || s->held_durable_ok) &&
        (rc = store_vv_copy(durable, log ? &s->vv_held_log : &s->vv_durable)) ==
            0 &&
        (rc = store_vv_copy(wanted, log ? &s->wanted_held_log
                                        : &s->vv_held_durable)) != 0)
        mfs_vv_free(durable);
    pthread_mutex_unlock(&s->vvlock);
    if (rc != -EAGAIN)
        return rc;
    /* not kept before: the last commit's state, if it is durable and
     * nothing waits to commit, else the next commit or sync keeps it */
    mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
    if (s->gc_first_us || s->meta_unsynced) {
        gc_sync_soon(s);
    } else if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) == 0) {
        mfs_vv h;
        bool ok = held_read(s, txn, &h);
        mdb_txn_abort(txn);
        pthread_mutex_lock(&s->vvlock);
        if (ok) {
            mfs_vv_free(&s->vv_held_commit);
            mfs_vv_free(&s->vv_held_durable);
            s->vv_held_commit = h;
            s->held_commit_ok = true;
            s->held_durable_ok = store_vv_copy(&s->vv_held_durable, &h) == 0;
        }
        if (s->held_durable_ok &&
            (rc = store_vv_copy(durable, &s->vv_durable)) == 0 &&
            (rc = store_vv_copy(wanted, &s->vv_held_durable)) != 0)
            mfs_vv_free(durable);
        pthread_mutex_unlock(&s->vvlock);
    }
    mfs_lock_drop(&s->wlock);
    return rc;
}

void mfs_store_test_fail_commits(mfs_store *s, int n)
{
    mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
    s->test_fail_commits = n;
    mfs_lock_drop(&s->wlock);
}

void mfs_store_test_fail_calls(mfs_store *s, int n, bool lose)
{
    mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
    s->test_fail_calls = n;
    s->test_fail_lose = lose;
    mfs_lock_drop(&s->wlock);
}

void mfs_store_commit_start(mfs_store *s)
{
    if (!s->gc_on)
        return;
    mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
    if (s->gc_want < s->gc_gen) {
        s->gc_want = s->gc_gen;
        pthread_cond_signal(&s->gc_work);
    }
    mfs_lock_drop(&s->wlock);
}

void mfs_store_hold_soon(mfs_store *s)
{
    if (!s->gc_on)
        return;
    mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
    if (s->wal_on && !s->wal_broken && !s->wal_fresh_over) {
        if (!s->gc_want_hold) {
            s->gc_want_hold = true;
            pthread_cond_signal(&s->gc_work);
        }
    } else {
        gc_sync_soon(s);
    }
    mfs_lock_drop(&s->wlock);
}

void mfs_store_sync_soon(mfs_store *s)
{
    if (!s->gc_on)
        return;
    mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
    gc_sync_soon(s);
    mfs_lock_drop(&s->wlock);
}

void mfs_store_commit_soon(mfs_store *s)
{
    if (!s->gc_on)
        return;
    mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
    if (s->gc_first_us && !s->gc_soon) {
        s->gc_soon = true;
        pthread_cond_signal(&s->gc_work);
    }
    mfs_lock_drop(&s->wlock);
}

int mfs_store_commit(mfs_store *s, int durable)
{
    if (s->rdonly)
        return -EROFS;
    if (!s->gc_on) {
        if (!durable || in_group(s))
            return 0; /* every call committed before it returned */
        pthread_rwlock_rdlock(&s->maplock);
        int rc = packs_sync(s);
        if (!rc)
            rc = store_commit_errno(s, mdb_to_errno(mdb_env_sync(s->env, 1)));
        pthread_rwlock_unlock(&s->maplock);
        return rc;
    }
    mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
    uint64_t gen = s->gc_gen; /* every call made so far */
    uint64_t *have = durable ? &s->gc_durable : &s->gc_committed;
    uint64_t *want = durable ? &s->gc_want_durable : &s->gc_want;
    if (*have < gen) {
        if (*want < gen)
            *want = gen;
        pthread_cond_signal(&s->gc_work);
        while (*have < gen && !s->gc_exited)
            pthread_cond_wait(&s->gc_done, &s->wlock);
    }
    int rc = 0;
    if (*have < gen)
        rc = -EIO; /* closing */
    else if (gen > s->gc_fail_lo && gen <= s->gc_fail_hi)
        rc = s->gc_fail_rc;
    mfs_lock_drop(&s->wlock);
    return rc;
}

/* Ends a store_write that commits nothing (no group commit): both txns
 * aborted, the counters as they were, the locks dropped. */
static void write_undo(mfs_store *s, wtx *w, const struct counters *save)
{
    dirty_abort(w);
    mdb_txn_abort(w->txn);
    counters_restore(s, save);
    pthread_rwlock_unlock(&s->maplock);
    mfs_lock_drop(&s->wlock);
    wtx_release(w);
}

int store_write_small(mfs_store *s, int (*fn)(wtx *w, void *arg), void *arg)
{
    if (s->gc_on && !s->rdonly)
        return gc_write(s, fn, arg, true);
    return store_write(s, fn, arg);
}

int store_write(mfs_store *s, int (*fn)(wtx *w, void *arg), void *arg)
{
    if (s->rdonly)
        return -EROFS;
    if (s->gc_on)
        return gc_write(s, fn, arg, false);
    if (in_group(s)) {
        wtx *w = s->group_w;
        if (w->err)
            return w->err == MDB_MAP_FULL ? -ENOSPC : w->err;
        int rc = group_make_room(s);
        if (rc)
            return rc;
        w = s->group_w;
        rc = fn(w, arg);
        if (!rc)
            rc = w->s->hooks->pre_commit(w);
        /* (the group's dirty txn commits with it: group_end) */
        if (rc == MDB_MAP_FULL)
            rc = -ENOSPC;
        return rc;
    }
    for (;;) {
        mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
        pthread_rwlock_rdlock(&s->maplock);
        struct counters save = counters_take(s);
        wtx w = {.s = s};
        int rc = mdb_txn_begin(s->env, NULL, 0, &w.txn);
        if (rc) {
            pthread_rwlock_unlock(&s->maplock);
            mfs_lock_drop(&s->wlock);
            return mdb_to_errno(rc);
        }
        rc = wtx_run(&w, fn, arg);
        if (!rc && wtx_unchanged(&w)) {
            write_undo(s, &w, &save);
            return 0;
        }
        bool pair = !rc && w.dtxn;
        /* The dirty environment commits first (dirty.c). A main commit
         * that then failed for want of map room (LMDB may need pages to
         * save its free list) left a publish's blocks deleted with the file
         * still unpublished, and the rerun below published holes: an
         * acknowledged write lost (test_store_threads, about 1 run in 25
         * on a loaded machine). So a pair commits only with room to spare,
         * as groups do (group_make_room, gc_map_tight); otherwise nothing
         * commits, the map grows and the call runs again. */
        if (pair && map_tight(s->env, w.written, s->mapsize)) {
            write_undo(s, &w, &save);
            if (grow_map_of(s, false))
                return -ENOSPC;
            continue;
        }
        if (pair)
            dseq_bump(s); /* odd: see store_read_begin */
        if (!rc)
            rc = dirty_commit(&w); /* blocks first: see dirty.c */
        if (!rc) {
            rc = mdb_txn_commit(w.txn);
            if (rc)
                rc = rc == MDB_MAP_FULL
                         ? MDB_MAP_FULL
                         : store_commit_errno(s, mdb_to_errno(rc));
            else
                __atomic_add_fetch(&s->commits, 1, __ATOMIC_RELAXED);
        } else {
            mdb_txn_abort(w.txn);
        }
        if (pair)
            dseq_bump(s);
        bool local_ops = !rc && s->seq != save.seq;
        if (rc)
            counters_restore(s, &save);
        pthread_rwlock_unlock(&s->maplock);
        mfs_lock_drop(&s->wlock);
        /* Some paths report a full map already translated to ENOSPC: when
         * the disk still has room, it was the map. */
        if (rc == MDB_MAP_FULL || (rc == -ENOSPC && disk_has_room(s))) {
            bool dirty = w.dfull;
            wtx_release(&w);
            if (grow_map_of(s, dirty))
                return -ENOSPC;
            continue;
        }
        if (!rc)
            notify(s, &w);
        if (local_ops && s->oplog_cb)
            s->oplog_cb(s->oplog_arg);
        wtx_release(&w);
        return rc;
    }
}

/* The dirty environment's read txn that goes with this thread's open main
 * read txn: both are begun while no writer runs (wlock), so they show the
 * same moment (a writer commits its blocks just before its main changes;
 * a reader seeing the blocks of a later publish gone, with the file still
 * dirty in its main snapshot, would read holes). */
static __thread MDB_txn *tl_dtxn;
static __thread const mfs_store *tl_dstore;
static __thread unsigned tl_depth;
/* The read-only snapshot this thread took last (store_read_begin_committed),
 * until it ends: only reads through it may fill the ino cache. */
static __thread MDB_txn *tl_snapshot;
static __thread bool tl_shared; /* tl_dtxn is the group's: not ours to end */

MDB_txn *store_read_dtxn(const mfs_store *s)
{
    return tl_depth && tl_dstore == s ? tl_dtxn : NULL;
}

static void dread_pair(mfs_store *s, MDB_txn *shared)
{
    if (tl_depth++ || !s->denv)
        return;
    tl_dstore = s;
    tl_shared = shared != NULL;
    if (shared) {
        tl_dtxn = shared;
        return;
    }
    /* a reset read txn from the pool: renewing costs far less than a
     * begin (lookups pay this on every call) */
    pthread_mutex_lock(&s->poollock);
    MDB_txn *t = s->ndpool ? s->dpool[--s->ndpool] : NULL;
    pthread_mutex_unlock(&s->poollock);
    if (t && mdb_txn_renew(t)) {
        mdb_txn_abort(t);
        t = NULL;
    }
    if (!t && dirty_read_begin(s, &t))
        t = NULL; /* content_read begins its own */
    tl_dtxn = t;
}

static void dread_unpair(mfs_store *s)
{
    if (tl_depth && --tl_depth == 0) {
        MDB_txn *t = tl_shared ? NULL : tl_dtxn;
        tl_dtxn = NULL;
        tl_dstore = NULL;
        tl_shared = false;
        if (!t)
            return;
        mdb_txn_reset(t);
        pthread_mutex_lock(&s->poollock);
        if (s->ndpool < (int)(sizeof(s->dpool) / sizeof(s->dpool[0]))) {
            s->dpool[s->ndpool++] = t;
            t = NULL;
        }
        pthread_mutex_unlock(&s->poollock);
        if (t)
            mdb_txn_abort(t);
    }
}

int store_read_begin(mfs_store *s, MDB_txn **txn)
{
    if (in_group(s) || s->rdonly)
        return store_read_begin_committed(s, txn);
    /* (never called inside a store_write: write functions read w->txn) */
    if (s->gc_on && __atomic_load_n(&s->gc_dirty, __ATOMIC_SEQ_CST)) {
        mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
        if (s->gc_txn && s->gc_first_us) {
            *txn = s->gc_txn; /* wlock stays held until store_read_end */
            dread_pair(s, s->gc_dtxn);
            return 0;
        }
        mfs_lock_drop(&s->wlock);
    }
    /* MVCC: a snapshot of each environment, taken while no writer
     * committed either (dseq even and unchanged around both begins) */
    for (unsigned spin = 0;; spin++) {
        uint64_t q = __atomic_load_n(&s->dseq, __ATOMIC_SEQ_CST);
        if (q & 1) {
            sched_yield();
            continue;
        }
        int rc = store_read_begin_committed(s, txn);
        if (rc)
            return rc;
        dread_pair(s, NULL);
        if (tl_depth > 1 || __atomic_load_n(&s->dseq, __ATOMIC_SEQ_CST) == q)
            return 0;
        store_read_end(s, *txn); /* a commit came between: again */
    }
}

int store_read_begin_scan(mfs_store *s, MDB_txn **txn)
{
    if (s->gc_on) {
        int rc = mfs_store_commit(s, 0);
        if (rc)
            return rc;
    }
    return store_read_begin_committed(s, txn);
}

int store_read_begin_committed(mfs_store *s, MDB_txn **txn)
{
    if (in_group(s)) {
        *txn = group_txn(s);
        return 0;
    }
    pthread_rwlock_rdlock(&s->maplock);
    /* an idle read txn from the pool saves LMDB's allocation per call */
    pthread_mutex_lock(&s->poollock);
    MDB_txn *t = s->npool ? s->pool[--s->npool] : NULL;
    pthread_mutex_unlock(&s->poollock);
    int rc = t ? mdb_txn_renew(t) : mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t);
    if (rc) {
        if (t)
            mdb_txn_abort(t);
        pthread_rwlock_unlock(&s->maplock);
        return mdb_to_errno(rc);
    }
    *txn = t;
    tl_snapshot = t;
    return 0;
}

void store_read_end(mfs_store *s, MDB_txn *txn)
{
    if (txn == group_txn(s) && in_group(s))
        return;
    if (s->gc_on && txn && txn == s->gc_txn) {
        /* gc_txn is only read with wlock held */
        dread_unpair(s);
        mfs_lock_drop(&s->wlock);
        return;
    }
    if (!s->rdonly)
        dread_unpair(s);
    if (txn == tl_snapshot)
        tl_snapshot = NULL;
    mdb_txn_reset(txn);
    pthread_mutex_lock(&s->poollock);
    if (s->npool < (int)(sizeof(s->pool) / sizeof(s->pool[0]))) {
        s->pool[s->npool++] = txn;
        txn = NULL;
    }
    pthread_mutex_unlock(&s->poollock);
    if (txn)
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->maplock);
}

int mfs_store_group_begin(mfs_store *s)
{
    if (s->rdonly)
        return -EROFS;
    if (s->gc_on)
        return 0; /* group commit already groups every call */
    if (in_group(s))
        return -EBUSY;
    mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
    pthread_rwlock_rdlock(&s->maplock);
    wtx *w = calloc(1, sizeof(*w));
    if (!w) {
        pthread_rwlock_unlock(&s->maplock);
        mfs_lock_drop(&s->wlock);
        return -ENOMEM;
    }
    w->s = s;
    int rc = mdb_txn_begin(s->env, NULL, 0, &w->txn);
    if (rc) {
        free(w);
        pthread_rwlock_unlock(&s->maplock);
        mfs_lock_drop(&s->wlock);
        return mdb_to_errno(rc);
    }
    s->group_w = w;
    __atomic_store_n(&s->group_owner, pthread_self(), __ATOMIC_RELAXED);
    group_txn_set(s, w->txn); /* (after the owner: see in_group) */
    return 0;
}

int mfs_store_group_end(mfs_store *s)
{
    if (s->gc_on)
        return mfs_store_commit(s, 0);
    if (!in_group(s))
        return -EINVAL;
    wtx *w = s->group_w;
    if (!w->err)
        counters_save(w);
    int rc = group_commit_both(s, w);
    if (rc == MDB_MAP_FULL)
        rc = -ENOSPC;
    group_txn_set(s, NULL);
    s->group_w = NULL;
    pthread_rwlock_unlock(&s->maplock);
    mfs_lock_drop(&s->wlock);
    if (!rc)
        notify(s, w);
    if (!rc && s->oplog_cb)
        s->oplog_cb(s->oplog_arg);
    wtx_release(w);
    free(w);
    return rc;
}

/* ---- inode numbers ---- */

objkey obj_inode(mfs_id id)
{
    objkey k = {.len = OBJKEY_INODE_LEN};
    k.b[OBJKEY_KIND] = OBJ_INODE;
    id_put(k.b + OBJKEY_ID, id);
    return k;
}

objkey obj_ccopy(mfs_id id, mfs_stamp v)
{
    objkey k = {.len = OBJKEY_CCOPY_LEN};
    k.b[OBJKEY_KIND] = OBJ_CCOPY;
    id_put(k.b + OBJKEY_ID, id);
    stamp_put(k.b + OBJKEY_STAMP, v);
    return k;
}

int ino_of_obj(mfs_store *s, MDB_txn *txn, const objkey *k, uint64_t *ino)
{
    MDB_val v;
    int rc = tget(s, txn, DB_OBJ2INO, k->b, k->len, &v);
    if (rc)
        return rc;
    *ino = mfs_be64_get(v.mv_data);
    return 0;
}

uint64_t ino_assign(wtx *w, const objkey *k)
{
    uint64_t ino;
    if (ino_of_obj(w->s, w->txn, k, &ino) == 0)
        return ino;
    ino = w->s->next_ino++;
    uint8_t b[INO_LEN];
    mfs_be64_put(b, ino);
    tput(w, DB_OBJ2INO, k->b, k->len, b, INO_LEN);
    tput(w, DB_INO2OBJ, b, INO_LEN, k->b, k->len);
    return w->err ? 0 : ino;
}

/* The ino cache: a committed mapping of an ino to an inode (OBJ_INODE) is
 * never changed (ino numbers are never reused; only a conflict copy's
 * OBJ_CCOPY mapping is ever rewritten, and those are not cached), so a slot
 * filled from a committed snapshot stays true; a mapping is removed only
 * when its inode is gone for good (ino_forget), which empties the slot
 * (and a stale hit would only lead to the inode's missing record).
 * Never filled from a write txn or from the shared group txn: a mapping
 * they hold may be rolled back with its ino number, which is then minted
 * again for another object. */
static struct icache_slot *icache_slot_of(mfs_store *s, uint64_t ino)
{
    return &s->icache[(ino * 0x9E3779B97F4A7C15ull) >> 52];
}

static bool icache_get(mfs_store *s, uint64_t ino, mfs_id *id)
{
    struct icache_slot *c = icache_slot_of(s, ino);
    uint64_t q = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
    if (q & 1)
        return false;
    uint64_t i = __atomic_load_n(&c->ino, __ATOMIC_RELAXED);
    mfs_id v = {__atomic_load_n(&c->node, __ATOMIC_RELAXED),
                __atomic_load_n(&c->ctr, __ATOMIC_RELAXED)};
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (i != ino || __atomic_load_n(&c->seq, __ATOMIC_RELAXED) != q)
        return false;
    *id = v;
    return true;
}

static void icache_put(mfs_store *s, uint64_t ino, mfs_id id)
{
    struct icache_slot *c = icache_slot_of(s, ino);
    uint64_t q = __atomic_load_n(&c->seq, __ATOMIC_RELAXED);
    if ((q & 1) || !__atomic_compare_exchange_n(&c->seq, &q, q + 1, false,
                                                __ATOMIC_ACQUIRE,
                                                __ATOMIC_RELAXED))
        return; /* another thread fills it: leave it to that one */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&c->ino, ino, __ATOMIC_RELAXED);
    __atomic_store_n(&c->node, id.node, __ATOMIC_RELAXED);
    __atomic_store_n(&c->ctr, id.seq, __ATOMIC_RELAXED);
    __atomic_store_n(&c->seq, q + 2, __ATOMIC_RELEASE);
}


static void icache_drop(mfs_store *s, uint64_t ino)
{
    struct icache_slot *c = icache_slot_of(s, ino);
    uint64_t q = __atomic_load_n(&c->seq, __ATOMIC_RELAXED);
    if ((q & 1) || __atomic_load_n(&c->ino, __ATOMIC_RELAXED) != ino ||
        !__atomic_compare_exchange_n(&c->seq, &q, q + 1, false,
                                     __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&c->ino, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&c->seq, q + 2, __ATOMIC_RELEASE);
}

void ino_forget(wtx *w, mfs_id id)
{
    objkey k = obj_inode(id);
    uint64_t ino;
    if (ino_of_obj(w->s, w->txn, &k, &ino) != 0 || ino == MFS_ROOT_INO)
        return;
    mfs_ino_busy_cb busy = atomic_load(&w->s->ino_busy_cb);
    if (busy && busy(atomic_load(&w->s->ino_busy_arg), ino))
        return; /* mfs_store_forget, once the kernel lets it go */
    uint8_t b[INO_LEN];
    mfs_be64_put(b, ino);
    tdel(w, DB_OBJ2INO, k.b, k.len);
    tdel(w, DB_INO2OBJ, b, INO_LEN);
    icache_drop(w->s, ino);
}

int ino_lookup_obj(mfs_store *s, MDB_txn *txn, uint64_t ino, objkey *out)
{
    mfs_id id;
    if (icache_get(s, ino, &id)) {
        *out = obj_inode(id);
        return 0;
    }
    uint8_t b[INO_LEN];
    mfs_be64_put(b, ino);
    MDB_val v;
    int rc = tget(s, txn, DB_INO2OBJ, b, INO_LEN, &v);
    if (rc)
        return rc;
    if (v.mv_size != OBJKEY_INODE_LEN && v.mv_size != OBJKEY_CCOPY_LEN)
        return -EIO;
    memcpy(out->b, v.mv_data, v.mv_size);
    out->len = v.mv_size;
    if (objkey_kind(out) == OBJ_INODE && txn == tl_snapshot)
        icache_put(s, ino, objkey_id(out));
    return 0;
}

/* ---- open / create ---- */

static int lock_store(mfs_store *s)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/store.lock", s->dir);
    s->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lockfd < 0)
        return -errno;
    if (flock(s->lockfd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno == EWOULDBLOCK ? -EBUSY : -errno;
        close(s->lockfd);
        s->lockfd = -1;
        return e;
    }
    return 0;
}

static int init_new(wtx *w, void *arg)
{
    mfs_store *s = w->s;
    const mfs_store_config *cfg = arg;
    uint32_t fmt = MFS_STORE_FORMAT;
    uint8_t b[META_FORMAT_LEN];
    mfs_be32_put(b, fmt);
    tput(w, DB_META, "magic", 5, STORE_MAGIC, sizeof(STORE_MAGIC) - 1);
    tput(w, DB_META, "format", 6, b, META_FORMAT_LEN);
    meta_put_u64(w, "node", s->node);
    objkey rk = obj_inode(MFS_ID_ROOT);
    uint8_t ib[INO_LEN];
    mfs_be64_put(ib, MFS_ROOT_INO);
    tput(w, DB_OBJ2INO, rk.b, rk.len, ib, INO_LEN);
    tput(w, DB_INO2OBJ, ib, INO_LEN, rk.b, rk.len);
    if (w->err)
        return w->err;
    /* the census, the root inode and a new mesh's first ops (open.c) */
    return s->hooks->format(w, cfg);
}

static int check_meta(mfs_store *s, MDB_txn *txn)
{
    MDB_val v;
    int rc = tget(s, txn, DB_META, "magic", 5, &v);
    if (rc == -ENOENT)
        return -ENOENT;
    if (rc)
        return rc;
    if (v.mv_size != sizeof(STORE_MAGIC) - 1 ||
        memcmp(v.mv_data, STORE_MAGIC, v.mv_size))
        return -EBADF;
    rc = tget(s, txn, DB_META, "format", 6, &v);
    if (rc || v.mv_size != META_FORMAT_LEN)
        return -EBADF;
    /* format 1 had no pack files, format 2 longer inode records: this
     * build reads both, and a writable open upgrades them (upgrade_format) */
    s->format = mfs_be32_get(v.mv_data);
    if (s->format < 1 || s->format > MFS_STORE_FORMAT)
        return -EPROTONOSUPPORT;
    if (meta_get_u64(s, txn, "node", &s->node))
        return -EBADF;
    meta_get_u64(s, txn, "hlc", &s->hlc);
    __atomic_store_n(&s->hlc_pub, s->hlc, __ATOMIC_RELAXED);
    meta_get_u64(s, txn, "seq", &s->seq);
    meta_get_u64(s, txn, "ctr", &s->ctr);
    if (meta_get_u64(s, txn, "ino", &s->next_ino))
        s->next_ino = MFS_ROOT_INO + 1;
    return 0; /* (the census: the opened hook) */
}

static int format_tx(wtx *w, void *arg)
{
    uint32_t from = *(const uint32_t *)arg;
    uint8_t b[META_FORMAT_LEN];
    mfs_be32_put(b, MFS_STORE_FORMAT);
    if (tput(w, DB_META, "format", 6, b, META_FORMAT_LEN) == 0 && from < 2)
        packs_count_inline(w); /* every chunk so far is inline */
    return w->err;
}

/* A store of an older format is upgraded when opened for writing; builds
 * of that format would misread what this one writes, and refuse the store
 * ("store format not supported") instead. Format 2: chunk bytes may live
 * in pack files (pack.c). Format 3: inode records are written compact
 * (content.c). Format 4: settled ops leave the op log (snapshot.c), which
 * older builds would take for ops never received. Format 5: the census
 * (view.c), which older builds would leave stale; it is counted once after
 * the upgrade. Format 6: versions of content-defined chunks record each
 * chunk's extent (OPF_EXTENTS), which older builds would read as fixed
 * blocks. Format 7: fsync's records may be in STORE/intent.log (wal.c),
 * which older builds would not replay after a crash (and would then use
 * the logged ops' sequence numbers again). Nothing is rewritten: older
 * records stay readable. */
static int upgrade_format(mfs_store *s)
{
    uint32_t from = s->format;
    int rc = store_write(s, format_tx, &from);
    if (!rc)
        rc = mfs_store_commit(s, 1);
    if (!rc) {
        mfs_log(LOG_NOTICE,
                "store %s: upgraded from format %u to %d (2: chunk bytes in "
                "pack files, 3: compact inode records, 4: settled ops folded "
                "out of the op log, 5: counts kept, 6: content-defined "
                "chunks, 7: fsync's intent log); older meshfs builds "
                "cannot open it",
                s->dir, from, MFS_STORE_FORMAT);
        s->format = MFS_STORE_FORMAT;
    }
    return rc;
}

/* Opens every table; create: a new store, all made. add: a store that
 * has "meta" (it is ours) gets the tables later builds added. */
static int open_dbis(mfs_store *s, bool create, bool add)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, create || add ? 0 : MDB_RDONLY, &txn);
    if (rc)
        return mdb_to_errno(rc);
    for (int i = 0; i < DB_COUNT; i++) {
        unsigned fl = create || (add && i != DB_META) ? MDB_CREATE : 0;
        rc = mdb_dbi_open(txn, db_names[i], fl, &s->db[i]);
        if (rc) {
            mdb_txn_abort(txn);
            return rc == MDB_NOTFOUND ? -ENOENT : mdb_to_errno(rc);
        }
    }
    rc = mdb_txn_commit(txn);
    return mdb_to_errno(rc);
}

int store_open(mfs_store **out, const char *dir, const mfs_store_config *cfg,
               unsigned flags, const store_hooks *hooks)
{
    mfs_store_config defcfg;
    if (!cfg) {
        mfs_store_config_default(&defcfg);
        cfg = &defcfg;
    }
    if (sodium_init() < 0)
        return -EIO;
    bool create = flags & MFS_STORE_CREATE;
    bool rdonly = flags & MFS_STORE_RDONLY;
    struct stat st;
    if (stat(dir, &st) < 0) {
        if (errno != ENOENT || !create)
            return -errno;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
            return -errno;
    } else if (!S_ISDIR(st.st_mode)) {
        return -ENOTDIR;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    bool exists = access(path, F_OK) == 0;
    if (!exists && (!create || rdonly))
        return -ENOENT;

    mfs_store *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->hooks = hooks;
    s->dir = strdup(dir);
    s->cfg = *cfg;
    s->lockfd = -1;
    s->wal_fd = -1;
    s->rdonly = rdonly;
    pthread_mutex_init(&s->wlock, NULL);
    pthread_mutex_init(&s->wal_mu, NULL);
    pthread_mutex_init(&s->poollock, NULL);
    pthread_mutex_init(&s->vvlock, NULL);
    /* Writers first: busy readers must not keep the map from growing.
     * (No thread ever takes maplock twice.) */
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->maplock, &ra);
    pthread_rwlockattr_destroy(&ra);
    int rc = 0;
    if (!rdonly && !(flags & MFS_STORE_NOLOCK)) {
        rc = lock_store(s);
        if (rc)
            goto fail;
    }
    rc = mdb_env_create(&s->env);
    if (rc) {
        rc = mdb_to_errno(rc);
        goto fail;
    }
    mdb_env_set_maxdbs(s->env, DB_COUNT + 2);
    mdb_env_set_maxreaders(s->env, 256);
    size_t map = cfg->map_size ? cfg->map_size : ((size_t)1 << 30);
    if (exists && stat(path, &st) == 0 && (size_t)st.st_size > map)
        map = (size_t)st.st_size;
    /* round up to a power of two times 1 MiB */
    size_t m = (size_t)1 << 20;
    while (m < map)
        m <<= 1;
    mdb_env_set_mapsize(s->env, m);
    s->mapsize = m;
    /* Group commit makes every commit safe against a power cut at the cost
     * of one fdatasync (MDB_NOMETASYNC, see "group commit" above); without
     * it (tools, tests) commits are unsynced and mfs_store_fsync syncs. */
    bool gc = cfg->commit_window_us > 0 && !rdonly;
    unsigned eflags =
        MDB_NOTLS | MDB_NORDAHEAD | (gc ? MDB_NOMETASYNC : MDB_NOSYNC);
    if (rdonly)
        eflags = MDB_NOTLS | MDB_RDONLY | MDB_NORDAHEAD;
    rc = mdb_env_open(s->env, dir, eflags, 0600);
    if (rc) {
        rc = rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH ? -EBADF
                                                             : mdb_to_errno(rc);
        goto fail;
    }
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    s->mapsize = info.me_mapsize;
    /* A store of an earlier build lacks the tables added since (all of
     * them local and empty at first): a writable open adds them. */
    rc = open_dbis(s, !exists && create, exists && !rdonly);
    if (rc == -ENOENT && exists)
        rc = -EBADF; /* an LMDB file, but not ours */
    if (rc)
        goto fail;
    rc = packs_open(s, !rdonly);
    if (rc)
        goto fail;
    if (!exists) {
        s->node = cfg->node_id;
        while (!s->node)
            randombytes_buf(&s->node, sizeof(s->node));
        s->next_ino = MFS_ROOT_INO + 1;
        rc = store_write(s, init_new, (void *)cfg);
        if (!rc)
            rc = mdb_to_errno(mdb_env_sync(s->env, 1));
        if (rc)
            goto fail;
    } else {
        MDB_txn *txn;
        rc = mdb_to_errno(mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn));
        if (rc)
            goto fail;
        rc = check_meta(s, txn);
        mdb_txn_abort(txn);
        if (rc == -ENOENT)
            rc = -EBADF;
        if (!rc && !rdonly && s->format < MFS_STORE_FORMAT)
            rc = upgrade_format(s);
        if (rc)
            goto fail;
    }
    if (!rdonly)
        rc = dirty_open(s);
    if (!rc && !rdonly)
        rc = wal_open(s); /* (its records are replayed by the top layer) */
    if (!rc)
        rc = hooks->opened(s); /* the census, the collector, the hasher */
    if (rc)
        goto fail;
    if (gc) {
        rc = gc_start(s);
        if (rc)
            goto fail;
    }
    *out = s;
    return 0;
fail:
    if (!exists && s->env) {
        /* a store we failed to create leaves nothing half-made behind */
        mdb_env_close(s->env);
        s->env = NULL;
        unlink(path);
        snprintf(path, sizeof(path), "%s/lock.mdb", dir);
        unlink(path);
    }
    mfs_store_close(s);
    return rc;
}

void mfs_store_close(mfs_store *s)
{
    if (!s)
        return;
    /* the collector's thread writes: before the commit thread ends */
    s->hooks->closing(s);
    gc_finish(s);
    wal_close(s);
    while (s->ndpool > 0)
        mdb_txn_abort(s->dpool[--s->ndpool]);
    dirty_close(s);
    while (s->npool > 0)
        mdb_txn_abort(s->pool[--s->npool]);
    if (s->env) {
        if (!s->rdonly && packs_sync(s) == 0)
            mdb_env_sync(s->env, 1);
        mdb_env_close(s->env);
    }
    packs_close(s);
    if (s->lockfd >= 0)
        close(s->lockfd);
    pthread_mutex_destroy(&s->wlock);
    pthread_mutex_destroy(&s->wal_mu);
    pthread_mutex_destroy(&s->poollock);
    pthread_mutex_destroy(&s->vvlock);
    mfs_vv_free(&s->vv_commit);
    mfs_vv_free(&s->vv_durable);
    mfs_vv_free(&s->vv_held_commit);
    mfs_vv_free(&s->vv_held_durable);
    mfs_vv_free(&s->vv_held_log);
    mfs_vv_free(&s->wanted_held_log);
    undo_free(&s->gc_undo);
    pthread_rwlock_destroy(&s->maplock);
    free(s->dir);
    free(s);
}

uint64_t mfs_store_node_id(const mfs_store *s)
{
    return s->node;
}

const char *mfs_store_dir(const mfs_store *s)
{
    return s->dir;
}

void mfs_store_set_oplog_cb(mfs_store *s, mfs_oplog_cb cb, void *arg)
{
    s->oplog_cb = cb;
    s->oplog_arg = arg;
}

void mfs_store_set_ino_busy_cb(mfs_store *s, mfs_ino_busy_cb cb, void *arg)
{
    atomic_store(&s->ino_busy_arg, arg);
    atomic_store(&s->ino_busy_cb, cb);
}

void mfs_store_set_change_cb(mfs_store *s, mfs_change_cb cb, void *arg)
{
    s->change_cb = cb;
    s->change_arg = arg;
}
